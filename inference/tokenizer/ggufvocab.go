package tokenizer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/impetusllm/impetus/inference/gguf"
	"golang.org/x/text/unicode/norm"
)

// GGUF token types (tokenizer.ggml.token_type).
const (
	TokenUndefined   = 0
	TokenNormal      = 1
	TokenUnknown     = 2
	TokenControl     = 3
	TokenUserDefined = 4
	TokenUnused      = 5
	TokenByte        = 6
)

// GGUFVocab is the tokenizer part of GGUF metadata (tokenizer.ggml.*) as
// plain values. Ids are -1 when absent.
type GGUFVocab struct {
	Model  string    // "llama" (SentencePiece) or "gpt2" (byte-level BPE)
	Pre    string    // pre-tokenizer name for "gpt2" vocabularies
	Tokens []string  // id -> text
	Scores []float32 // "llama": merge priority of each token
	Types  []int32   // token types; nil means all normal
	Merges []string  // "gpt2": "a b" pairs by rank

	BOS, EOS, EOT, EOM, UNK, PAD int32

	AddBOS, AddEOS bool
	AddSpacePrefix bool // "llama": prefix text with ▁
}

// FromGGUF reads the vocabulary from an opened GGUF file.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	v, err := VocabFromGGUF(f)
	if err != nil {
		return nil, err
	}
	return FromGGUFVocab(v)
}

// VocabFromGGUF extracts tokenizer.ggml.* into a GGUFVocab, with llama.cpp's
// defaults for missing flags.
func VocabFromGGUF(f *gguf.File) (GGUFVocab, error) {
	v := GGUFVocab{BOS: -1, EOS: -1, EOT: -1, EOM: -1, UNK: -1, PAD: -1}
	var ok bool
	if v.Model, ok = f.String("tokenizer.ggml.model"); !ok {
		return v, errors.New("gguf has no tokenizer.ggml.model")
	}
	v.Pre, _ = f.String("tokenizer.ggml.pre")
	if v.Tokens, ok = f.Strings("tokenizer.ggml.tokens"); !ok {
		return v, errors.New("gguf has no tokenizer.ggml.tokens string array")
	}
	if _, present := f.Value("tokenizer.ggml.scores"); present {
		if v.Scores, ok = f.Float32s("tokenizer.ggml.scores"); !ok {
			return v, errors.New("gguf tokenizer.ggml.scores is not a float32 array")
		}
	}
	if _, present := f.Value("tokenizer.ggml.token_type"); present {
		if v.Types, ok = f.Int32s("tokenizer.ggml.token_type"); !ok {
			return v, errors.New("gguf tokenizer.ggml.token_type is not an integer array")
		}
	}
	if _, present := f.Value("tokenizer.ggml.merges"); present {
		if v.Merges, ok = f.Strings("tokenizer.ggml.merges"); !ok {
			return v, errors.New("gguf tokenizer.ggml.merges is not a string array")
		}
	}
	for key, dst := range map[string]*int32{
		"tokenizer.ggml.bos_token_id": &v.BOS, "tokenizer.ggml.eos_token_id": &v.EOS,
		"tokenizer.ggml.eot_token_id": &v.EOT, "tokenizer.ggml.eom_token_id": &v.EOM,
		"tokenizer.ggml.unknown_token_id": &v.UNK, "tokenizer.ggml.padding_token_id": &v.PAD,
	} {
		if id, ok := f.Int(key); ok && id >= 0 && id < int64(len(v.Tokens)) {
			*dst = int32(id)
		}
	}
	v.AddBOS = v.Model == "llama"
	v.AddSpacePrefix = v.Model == "llama"
	if b, ok := f.Bool("tokenizer.ggml.add_bos_token"); ok {
		v.AddBOS = b
	}
	if b, ok := f.Bool("tokenizer.ggml.add_eos_token"); ok {
		v.AddEOS = b
	}
	if b, ok := f.Bool("tokenizer.ggml.add_space_prefix"); ok {
		v.AddSpacePrefix = b
	}
	return v, nil
}

// Pre-tokenizer regexes of the DeepSeek tokenizers (from their tokenizer.json).
const (
	deepseekLLMLetters = "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943]+"
	deepseekLLMPunct   = "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+"
	cjkRun             = "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+"
)

// ggufPre maps llama.cpp's tokenizer.ggml.pre names to the Hugging Face
// pre-tokenizer of the original model.
func ggufPre(name string) (pre preTokenizer, normalizer normalizer, ignoreMerges bool, err error) {
	splits := func(patterns ...string) (preTokenizer, error) {
		var seq sequencePre
		for _, p := range patterns {
			m, err := newMatcher(p)
			if err != nil {
				return nil, err
			}
			seq = append(seq, splitPre{m: m, behavior: behaviorIsolated})
		}
		return append(seq, byteLevelPre{}), nil
	}
	switch name {
	case "", "default", "gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "jina-v2-code", "olmo", "mpt", "roberta-bpe":
		return byteLevelPre{useRegex: true}, nil, false, nil
	case "llama-bpe", "llama3", "llama-v3":
		p, err := splits(llama3Patten)
		return p, nil, true, err
	case "dbrx", "smaug-bpe":
		p, err := splits(llama3Patten)
		return p, nil, false, err
	case "qwen2", "deepseek-r1-qwen":
		p, err := splits(qwen2Pattern)
		return p, norm.NFC.String, false, err
	case "starcoder", "smollm", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
		return sequencePre{splitPre{m: runeClassMatcher(isDigitHF), behavior: behaviorIsolated}, byteLevelPre{useRegex: true}}, nil, false, nil
	case "deepseek-llm":
		p, err := splits("[\r\n]", deepseekLLMLetters, deepseekLLMPunct, `\s+$`, cjkRun, `\p{N}+`)
		return p, nil, false, err
	case "deepseek-coder":
		p, err := splits("[\r\n]", `\s?\p{L}+`, `\s?\p{P}+`, cjkRun, `\p{N}`)
		return p, nil, false, err
	}
	return nil, nil, false, fmt.Errorf("unsupported gguf pre-tokenizer %q", name)
}

// FromGGUFVocab builds a tokenizer that encodes like the Hugging Face
// tokenizer the GGUF vocabulary was converted from.
func FromGGUFVocab(v GGUFVocab) (*Tokenizer, error) {
	n := len(v.Tokens)
	if n == 0 {
		return nil, errors.New("gguf vocabulary is empty")
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("gguf vocabulary has %d tokens but %d token types", n, len(v.Types))
	}
	for _, id := range []int32{v.BOS, v.EOS, v.EOT, v.EOM, v.UNK, v.PAD} {
		if id < -1 || int(id) >= n {
			return nil, fmt.Errorf("gguf special id %d is outside the %d-token vocabulary", id, n)
		}
	}
	typeOf := func(id int) int32 {
		if v.Types == nil {
			return TokenNormal
		}
		return v.Types[id]
	}
	t := &Tokenizer{tokens: v.Tokens, vocab: make(map[string]int32, n), special: make([]bool, n),
		bos: v.BOS, eos: v.EOS, pad: v.PAD, unk: v.UNK}
	for id, tok := range v.Tokens {
		if _, dup := t.vocab[tok]; !dup {
			t.vocab[tok] = int32(id)
		}
	}
	model := &bpeModel{vocab: t.vocab, unk: -1}
	for b := range model.byteIDs {
		model.byteIDs[b] = -1
	}
	var added []*addedToken
	for id, tok := range v.Tokens {
		switch typeOf(id) {
		case TokenControl, TokenUnknown:
			t.special[id] = true
			added = append(added, &addedToken{id: int32(id), content: tok, special: true})
		case TokenUserDefined:
			// Stored as plain text (converters keep the Hugging Face added-token content).
			added = append(added, &addedToken{id: int32(id), content: tok})
		}
	}
	t.added = newAddedMatcher(added)
	if t.unk < 0 {
		for id := range v.Tokens {
			if typeOf(id) == TokenUnknown {
				t.unk = int32(id)
				break
			}
		}
	}
	model.unk = t.unk

	switch v.Model {
	case "llama":
		if len(v.Scores) != n {
			return nil, fmt.Errorf("gguf llama vocabulary has %d tokens but %d scores", n, len(v.Scores))
		}
		model.scores = v.Scores
		model.mergeable = make([]bool, n)
		for id := range v.Tokens {
			ty := typeOf(id)
			model.mergeable[id] = ty == TokenNormal || ty == TokenUndefined || ty == TokenUserDefined
		}
		model.byteFallback = true
		for b := 0; b < 256; b++ {
			if id, ok := t.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
				model.byteIDs[b] = id
			}
		}
		space := replaceNormalizer(literalMatcher(" "), "▁")
		t.norm = space
		steps := []decodeStep{replaceDec{m: literalMatcher("▁"), content: " "}, byteFallbackDec{}, fuseDec{}}
		if v.AddSpacePrefix {
			t.norm = sequenceNormalizer([]normalizer{prependNormalizer("▁"), space})
			steps = append(steps, stripDec{content: ' ', start: 1})
		}
		t.dec = newDecoderPipeline(steps)
	case "gpt2":
		pre, nrm, ignore, err := ggufPre(v.Pre)
		if err != nil {
			return nil, err
		}
		t.pre, t.norm = pre, nrm
		model.byteLevel = true
		model.ignoreMerges = ignore
		for b := 0; b < 256; b++ {
			if id, ok := t.vocab[string(byteToRune[b])]; ok {
				model.byteIDs[b] = id
			}
		}
		pairs := make([][2]string, 0, len(v.Merges))
		for _, m := range v.Merges {
			a, b, ok := strings.Cut(m, " ")
			if !ok {
				return nil, fmt.Errorf("gguf merge %q is not two tokens", m)
			}
			pairs = append(pairs, [2]string{a, b})
		}
		var err2 error
		if model.merges, err2 = buildMergeTable(t.vocab, pairs); err2 != nil {
			return nil, fmt.Errorf("gguf merges: %w", err2)
		}
		t.dec = newDecoderPipeline([]decodeStep{byteLevelDec{}})
	default:
		return nil, fmt.Errorf("unsupported gguf tokenizer model %q", v.Model)
	}
	t.model = model
	if v.AddBOS && t.bos >= 0 {
		t.prefix = []int32{t.bos}
	}
	if v.AddEOS && t.eos >= 0 {
		t.suffix = []int32{t.eos}
	}
	t.finish()
	t.addEOG(v.EOT)
	t.addEOG(v.EOM)
	return t, nil
}
