package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/impetusllm/impetus/inference/gguf"
)

// FromGGUFWordPiece builds the WordPiece tokenizer of a GGUF whose
// tokenizer.ggml.model is "bert", as llama.cpp's converter stores it:
// special tokens (type control) as they are, word-initial pieces with a
// leading "▁" and "##" continuations without their prefix. The pieces are
// turned back into Hugging Face's vocabulary and the tokenizer is built as
// from a BERT tokenizer.json: BertNormalizer (lower-casing as
// tokenizer.ggml.normalizer.lowercase says, on when absent),
// BertPreTokenizer, [CLS] … [SEP] around each input.
func FromGGUFWordPiece(f *gguf.File) (*Tokenizer, error) {
	v, err := VocabFromGGUF(f)
	if err != nil {
		return nil, err
	}
	if v.Model != "bert" {
		return nil, fmt.Errorf("gguf tokenizer.ggml.model %q is not bert", v.Model)
	}
	n := len(v.Tokens)
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("gguf vocabulary has %d tokens but %d token types", n, len(v.Types))
	}
	special := func(key string) (string, error) {
		id, ok := f.Int("tokenizer.ggml." + key)
		if !ok {
			return "", fmt.Errorf("gguf bert vocabulary has no tokenizer.ggml.%s", key)
		}
		if id < 0 || id >= int64(n) {
			return "", fmt.Errorf("gguf tokenizer.ggml.%s %d is outside the %d-token vocabulary", key, id, n)
		}
		return v.Tokens[id], nil
	}
	cls, err := special("cls_token_id")
	if err != nil {
		if cls, err = special("bos_token_id"); err != nil {
			return nil, err
		}
	}
	sep, err := special("seperator_token_id")
	if err != nil {
		return nil, err
	}
	unk, err := special("unknown_token_id")
	if err != nil {
		return nil, err
	}
	type added struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	vocab := make(map[string]int, n)
	var specials []added
	for id, tok := range v.Tokens {
		typ := int32(TokenNormal)
		if v.Types != nil {
			typ = v.Types[id]
		}
		piece := tok
		switch typ {
		case TokenControl, TokenUnknown:
			specials = append(specials, added{ID: id, Content: tok, Special: true})
		case TokenNormal:
			if p, ok := strings.CutPrefix(tok, "\u2581"); ok {
				piece = p
			} else {
				piece = "##" + tok
			}
		}
		if piece == "" || piece == "##" {
			return nil, fmt.Errorf("gguf bert vocabulary: token %d %q is empty", id, tok)
		}
		if _, dup := vocab[piece]; !dup {
			vocab[piece] = id
		}
	}
	lower := true
	if b, ok := f.Bool("tokenizer.ggml.normalizer.lowercase"); ok {
		lower = b
	}
	st := func(tok string, typeID int) map[string]any {
		return map[string]any{"SpecialToken": map[string]any{"id": tok, "type_id": typeID}}
	}
	seq := func(id string, typeID int) map[string]any {
		return map[string]any{"Sequence": map[string]any{"id": id, "type_id": typeID}}
	}
	tj := map[string]any{
		"added_tokens":  specials,
		"normalizer":    map[string]any{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": nil, "lowercase": lower},
		"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"},
		"post_processor": map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{st(cls, 0), seq("A", 0), st(sep, 0)},
			"pair":   []any{st(cls, 0), seq("A", 0), st(sep, 0), seq("B", 1), st(sep, 1)},
			"special_tokens": map[string]any{
				cls: map[string]any{"id": cls, "ids": []int{vocab[cls]}, "tokens": []string{cls}},
				sep: map[string]any{"id": sep, "ids": []int{vocab[sep]}, "tokens": []string{sep}},
			},
		},
		"decoder": map[string]any{"type": "WordPiece", "prefix": "##", "cleanup": true},
		"model": map[string]any{"type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
			"max_input_chars_per_word": 100, "vocab": vocab},
	}
	raw, err := json.Marshal(tj)
	if err != nil {
		return nil, err
	}
	t, err := FromJSON(raw, nil)
	if err != nil {
		return nil, errors.Join(errors.New("gguf bert vocabulary"), err)
	}
	return t, nil
}
