package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// GPT2Options describes what encoder.json + vocab.bpe do not carry.
type GPT2Options struct {
	Pre      string   // llama.cpp pre-tokenizer name: "gpt-2", "llama-bpe", "qwen2", ...
	Specials []string // control tokens appended after the vocabulary, in id order
	BOS, EOS string   // names of the BOS/EOS tokens ("" for none)
	AddBOS   bool     // Encode with addSpecial puts BOS first
}

// Llama3Specials lists the 256 Llama 3.1/3.2 control tokens, ids 128000–128255.
func Llama3Specials() []string {
	names := map[int]string{
		0: "<|begin_of_text|>", 1: "<|end_of_text|>", 4: "<|finetune_right_pad_id|>",
		6: "<|start_header_id|>", 7: "<|end_header_id|>", 8: "<|eom_id|>", 9: "<|eot_id|>", 10: "<|python_tag|>",
	}
	out := make([]string, 256)
	reserved := 0
	for i := range out {
		if n, ok := names[i]; ok {
			out[i] = n
			continue
		}
		out[i] = fmt.Sprintf("<|reserved_special_token_%d|>", reserved)
		reserved++
	}
	return out
}

// FromGPT2Files builds a byte-level BPE tokenizer from GPT-2 style
// encoder.json ({token: id}) and vocab.bpe (merges, one "a b" per line,
// optionally after a "#version" line).
func FromGPT2Files(encoderJSON, vocabBPE []byte, opt GPT2Options) (*Tokenizer, error) {
	var enc map[string]int32
	if err := json.Unmarshal(encoderJSON, &enc); err != nil {
		return nil, fmt.Errorf("parse encoder.json: %w", err)
	}
	n := 0
	for tok, id := range enc {
		if id < 0 || id > 1<<24 {
			return nil, fmt.Errorf("encoder.json: token %q has unreasonable id %d", tok, id)
		}
		n = max(n, int(id)+1)
	}
	v := GGUFVocab{Model: "gpt2", Pre: opt.Pre, BOS: -1, EOS: -1, EOT: -1, EOM: -1, UNK: -1, PAD: -1, AddBOS: opt.AddBOS}
	v.Tokens = make([]string, n, n+len(opt.Specials))
	v.Types = make([]int32, n, n+len(opt.Specials))
	for tok, id := range enc {
		v.Tokens[id] = tok
		v.Types[id] = TokenNormal
	}
	for i, tok := range v.Tokens {
		if tok == "" {
			v.Types[i] = TokenUnused
		}
	}
	for _, s := range opt.Specials {
		v.Tokens = append(v.Tokens, s)
		v.Types = append(v.Types, TokenControl)
	}
	for _, line := range strings.Split(string(vocabBPE), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#version") {
			continue
		}
		v.Merges = append(v.Merges, line)
	}
	find := func(name string) int32 {
		for i, tok := range v.Tokens {
			if tok == name && name != "" {
				return int32(i)
			}
		}
		return -1
	}
	v.BOS, v.EOS = find(opt.BOS), find(opt.EOS)
	if opt.AddBOS && v.BOS < 0 {
		return nil, fmt.Errorf("BOS token %q not in the vocabulary", opt.BOS)
	}
	return FromGGUFVocab(v)
}
