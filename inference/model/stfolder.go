package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Pooling turns an encoder's per-token states into one vector.
type Pooling int

const (
	PoolMean      Pooling = iota // average over the tokens
	PoolCLS                      // the first token's state
	PoolLastToken                // the last token's state
)

func (p Pooling) String() string {
	return [...]string{"mean", "cls", "lasttoken"}[p]
}

// EmbedSpec is how a sentence-transformers folder turns hidden states into
// an embedding: its pooling and Normalize modules, the longest input
// (sentence_bert_config.json's max_seq_length) and the named prompts of
// config_sentence_transformers.json.
type EmbedSpec struct {
	Pooling       Pooling
	Normalize     bool
	MaxSeqLen     int               // 0: the encoder's position limit
	Prompts       map[string]string // name → text put before the input ("query" and "document" always there)
	DefaultPrompt string            // name of the prompt used when none is asked for, or ""
	Matryoshka    MatryoshkaInfo    // whether vectors may be shortened (see LoadMatryoshka)
}

type stModule struct {
	Path string `json:"path"`
	Type string `json:"type"`
}

// LoadEmbedSpec reads the sentence-transformers metadata of dir. A folder
// without modules.json gets sentence-transformers' own default for a bare
// transformer: mean pooling, no normalisation.
func LoadEmbedSpec(dir string) (EmbedSpec, error) {
	spec := EmbedSpec{Pooling: PoolMean}
	raw, err := os.ReadFile(filepath.Join(dir, "modules.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return spec, fmt.Errorf("embedding folder: %w", err)
	default:
		var mods []stModule
		if err := json.Unmarshal(raw, &mods); err != nil {
			return spec, fmt.Errorf("parse modules.json: %w", err)
		}
		seenTransformer := false
		for _, m := range mods {
			kind := m.Type[strings.LastIndex(m.Type, ".")+1:]
			switch kind {
			case "Transformer":
				if m.Path != "" {
					return spec, fmt.Errorf("modules.json: the Transformer module at %q is not the folder itself", m.Path)
				}
				seenTransformer = true
			case "Pooling":
				if spec.Pooling, err = readPooling(dir, m.Path); err != nil {
					return spec, err
				}
			case "Normalize":
				spec.Normalize = true
			default:
				return spec, fmt.Errorf("modules.json: sentence-transformers module %q is not supported (Transformer, Pooling, Normalize)", m.Type)
			}
		}
		if !seenTransformer {
			return spec, errors.New("modules.json has no Transformer module")
		}
	}
	var sb struct {
		MaxSeqLength *int `json:"max_seq_length"`
	}
	if err := readOptionalJSON(filepath.Join(dir, "sentence_bert_config.json"), &sb); err != nil {
		return spec, err
	}
	if sb.MaxSeqLength != nil {
		if *sb.MaxSeqLength <= 0 {
			return spec, fmt.Errorf("sentence_bert_config.json: max_seq_length %d is not positive", *sb.MaxSeqLength)
		}
		spec.MaxSeqLen = *sb.MaxSeqLength
	}
	var cst struct {
		Prompts       map[string]string `json:"prompts"`
		DefaultPrompt *string           `json:"default_prompt_name"`
	}
	if err := readOptionalJSON(filepath.Join(dir, "config_sentence_transformers.json"), &cst); err != nil {
		return spec, err
	}
	// sentence-transformers (v5 on) knows the task names "query" and
	// "document" for every model, as no prompt where the folder has none.
	spec.Prompts = map[string]string{"query": "", "document": ""}
	for name, text := range cst.Prompts {
		spec.Prompts[name] = text
	}
	if cst.DefaultPrompt != nil && *cst.DefaultPrompt != "" {
		if _, ok := cst.Prompts[*cst.DefaultPrompt]; !ok {
			return spec, fmt.Errorf("config_sentence_transformers.json: default_prompt_name %q is not among the prompts", *cst.DefaultPrompt)
		}
		spec.DefaultPrompt = *cst.DefaultPrompt
	}
	if spec.Matryoshka, err = LoadMatryoshka(dir); err != nil {
		return spec, err
	}
	return spec, nil
}

func readOptionalJSON(file string, v any) error {
	raw, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("parse %s: %w", filepath.Base(file), err)
	}
	return nil
}

// readPooling reads a Pooling module's config.json; exactly one of mean,
// CLS and last-token pooling must be on.
func readPooling(dir, sub string) (Pooling, error) {
	clean := path.Clean("/" + filepath.ToSlash(sub))[1:]
	if clean == "" || clean != filepath.ToSlash(sub) || strings.HasPrefix(clean, "..") {
		return 0, fmt.Errorf("modules.json: pooling path %q is not a plain sub-folder", sub)
	}
	var c map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(clean), "config.json"))
	if err != nil {
		return 0, fmt.Errorf("pooling config: %w", err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return 0, fmt.Errorf("parse %s/config.json: %w", clean, err)
	}
	on := func(k string) bool { b, _ := c[k].(bool); return b }
	if mode, ok := c["pooling_mode"].(string); ok { // older single-field form
		c["pooling_mode_"+map[string]string{"mean": "mean_tokens", "cls": "cls_token", "lasttoken": "lasttoken"}[mode]] = true
	}
	if v, ok := c["include_prompt"].(bool); ok && !v {
		return 0, fmt.Errorf("%s/config.json: include_prompt false is not supported yet", clean)
	}
	var modes []Pooling
	for _, m := range []struct {
		key string
		p   Pooling
	}{{"pooling_mode_mean_tokens", PoolMean}, {"pooling_mode_cls_token", PoolCLS}, {"pooling_mode_lasttoken", PoolLastToken}} {
		if on(m.key) {
			modes = append(modes, m.p)
		}
	}
	for _, k := range []string{"pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens"} {
		if on(k) {
			return 0, fmt.Errorf("%s/config.json: %s is not supported (mean, cls, lasttoken)", clean, k)
		}
	}
	if len(modes) != 1 {
		return 0, fmt.Errorf("%s/config.json: %d pooling modes are on; exactly one of mean, cls and lasttoken is supported", clean, len(modes))
	}
	return modes[0], nil
}

// Pool reduces hidden ([n][dim] flattened) to one vector as p says, and
// scales it to unit length when normalize is set (a zero vector stays zero).
func Pool(hidden []float32, dim int, p Pooling, normalize bool) []float32 {
	n := len(hidden) / dim
	out := make([]float32, dim)
	switch p {
	case PoolCLS:
		copy(out, hidden[:dim])
	case PoolLastToken:
		copy(out, hidden[(n-1)*dim:n*dim])
	default:
		acc := make([]float64, dim)
		for t := 0; t < n; t++ {
			for i, v := range hidden[t*dim : (t+1)*dim] {
				acc[i] += float64(v)
			}
		}
		for i := range out {
			out[i] = float32(acc[i] / float64(n))
		}
	}
	if normalize {
		var ss float64
		for _, v := range out {
			ss += float64(v) * float64(v)
		}
		// sentence-transformers' Normalize divides by max(norm, 1e-12).
		inv := 1 / math.Max(math.Sqrt(ss), 1e-12)
		for i := range out {
			out[i] = float32(float64(out[i]) * inv)
		}
	}
	return out
}
