package modeltest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// GGUF token types (llama.cpp's numbering).
const (
	tokNormal  int32 = 1
	tokControl int32 = 3
	tokUnused  int32 = 5
)

var (
	bertLayerName  = regexp.MustCompile(`^(?:bert\.)?encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$`)
	nomicLayerName = regexp.MustCompile(`^encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$`)
)

// encoderGGUFName maps a BERT or nomic_bert tensor name to the name
// llama.cpp's converter gives it ("" = not exported).
func encoderGGUFName(hf string, nomic bool) (string, error) {
	top := map[string]string{
		"embeddings.word_embeddings": "token_embd", "embeddings.position_embeddings": "position_embd",
		"embeddings.token_type_embeddings": "token_types", "embeddings.LayerNorm": "token_embd_norm", "emb_ln": "token_embd_norm",
	}
	name := strings.TrimPrefix(hf, "bert.")
	if name == "embeddings.position_ids" || strings.HasPrefix(name, "pooler.") {
		return "", nil
	}
	for _, sfx := range []string{".weight", ".bias"} {
		if base, ok := strings.CutSuffix(name, sfx); ok {
			if g, ok := top[base]; ok {
				return g + sfx, nil
			}
		}
	}
	re, names := bertLayerName, map[string]string{
		"attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
		"attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
		"intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm",
	}
	if nomic {
		re, names = nomicLayerName, map[string]string{
			"attn.Wqkv": "attn_qkv", "attn.out_proj": "attn_output", "mlp.fc11": "ffn_up", "mlp.fc12": "ffn_gate",
			"mlp.fc2": "ffn_down", "norm1": "attn_output_norm", "norm2": "layer_output_norm",
		}
	}
	if m := re.FindStringSubmatch(hf); m != nil {
		if g, ok := names[m[2]]; ok {
			return "blk." + m[1] + "." + g + "." + m[3], nil
		}
	}
	return "", fmt.Errorf("no GGUF name for %q", hf)
}

// ConvertEncoderToGGUF lays out a sentence-transformers BERT or nomic_bert
// folder as llama.cpp's converter does (arch "bert" or "nomic-bert", the
// pooling of its Pooling module, a "bert" WordPiece vocabulary in phantom
// space form padded to the embedding rows), with matrices stored as typ
// and vectors, position and token-type tables as F32. It writes in memory, so it suits small models.
func ConvertEncoderToGGUF(dir string, typ quant.GGMLType) (*gguf.Writer, error) {
	js, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	cfg, err := model.ParseEncoderConfig(js)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", dir, err)
	}
	spec, err := model.LoadEmbedSpec(dir)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", dir, err)
	}
	nomic := cfg.Architecture == "nomic_bert"
	arch := "bert"
	if nomic {
		arch = "nomic-bert"
	}
	w := gguf.NewWriter()
	var kvErr error
	kv := func(k string, v any) {
		if err := w.SetKV(k, v); err != nil && kvErr == nil {
			kvErr = err
		}
	}
	kv("general.architecture", arch)
	kv("general.name", filepath.Base(dir))
	p := arch + "."
	kv(p+"context_length", uint32(cfg.MaxPositions))
	kv(p+"embedding_length", uint32(cfg.Hidden))
	kv(p+"block_count", uint32(cfg.Layers))
	kv(p+"feed_forward_length", uint32(cfg.Intermediate))
	kv(p+"attention.head_count", uint32(cfg.Heads))
	kv(p+"attention.layer_norm_epsilon", cfg.LayerNormEps)
	kv(p+"attention.causal", false)
	kv(p+"pooling_type", map[model.Pooling]uint32{model.PoolMean: 1, model.PoolCLS: 2, model.PoolLastToken: 3}[spec.Pooling])
	if nomic {
		kv(p+"rope.freq_base", float32(cfg.RopeBase))
		kv(p+"rope.dimension_count", uint32(cfg.RotaryDim))
	}
	if err := addWordPieceVocab(kv, dir, cfg); err != nil {
		return nil, fmt.Errorf("convert %s: %w", dir, err)
	}
	if kvErr != nil {
		return nil, fmt.Errorf("convert %s: %w", dir, kvErr)
	}
	set, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	defer set.Close()
	names := set.Names()
	sort.Strings(names)
	for _, name := range names {
		g, err := encoderGGUFName(name, nomic)
		if err != nil {
			return nil, fmt.Errorf("convert %s: %w", dir, err)
		}
		if g == "" {
			continue
		}
		st, err := set.Tensor(name)
		if err != nil {
			return nil, fmt.Errorf("convert %s: %w", dir, err)
		}
		v, err := st.Floats()
		if err != nil {
			return nil, fmt.Errorf("convert %s: %w", dir, err)
		}
		dims, ttype, rowLen := []uint64{uint64(len(v))}, quant.GGMLF32, len(v)
		if len(st.Shape) == 2 {
			dims, rowLen = []uint64{uint64(st.Shape[1]), uint64(st.Shape[0])}, st.Shape[1]
			// As the converter does, the position and token-type tables
			// stay F32 (llama.cpp adds them to F32 activations directly).
			if g != "position_embd.weight" && g != "token_types.weight" {
				ttype = typ
			}
		}
		ttype, b, err := model.EncodeGGML(ttype, v, rowLen)
		if err == nil {
			err = w.AddTensor(g, ttype, dims, b)
		}
		if err != nil {
			return nil, fmt.Errorf("convert %s: tensor %s: %w", dir, name, err)
		}
	}
	return w, nil
}

// addWordPieceVocab writes the folder's WordPiece vocabulary as GGUF
// tokenizer keys the way llama.cpp's converter does: special tokens as
// they are (type control), word-initial pieces with a leading "▁", "##"
// continuations without their prefix, padded with "[PADn]" (type unused)
// to the model's vocabulary size.
func addWordPieceVocab(kv func(string, any), dir string, cfg model.EncoderConfig) error {
	raw, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return err
	}
	var tj struct {
		Model struct {
			Type  string           `json:"type"`
			Vocab map[string]int32 `json:"vocab"`
		} `json:"model"`
		Normalizer struct {
			Lowercase *bool `json:"lowercase"`
		} `json:"normalizer"`
		AddedTokens []struct {
			ID      int32  `json:"id"`
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(raw, &tj); err != nil {
		return fmt.Errorf("tokenizer.json: %w", err)
	}
	if tj.Model.Type != "WordPiece" {
		return fmt.Errorf("tokenizer.json: model %q, want WordPiece", tj.Model.Type)
	}
	n := len(tj.Model.Vocab)
	if n > cfg.Vocab {
		return fmt.Errorf("tokenizer has %d tokens, the model %d", n, cfg.Vocab)
	}
	tokens := make([]string, cfg.Vocab)
	types := make([]int32, cfg.Vocab)
	special := map[string]bool{}
	for _, a := range tj.AddedTokens {
		special[a.Content] = a.Special
	}
	ids := map[string]int32{}
	for tok, id := range tj.Model.Vocab {
		if id < 0 || int(id) >= n {
			return fmt.Errorf("tokenizer.json: token %q has id %d outside 0..%d", tok, id, n-1)
		}
		switch {
		case special[tok]:
			tokens[id], types[id] = tok, tokControl
		case strings.HasPrefix(tok, "##"):
			tokens[id], types[id] = tok[2:], tokNormal
		default:
			tokens[id], types[id] = "\u2581"+tok, tokNormal
		}
		ids[tok] = id
	}
	for i := n; i < cfg.Vocab; i++ {
		tokens[i], types[i] = fmt.Sprintf("[PAD%d]", i), tokUnused
	}
	kv("tokenizer.ggml.model", "bert")
	kv("tokenizer.ggml.pre", "default")
	kv("tokenizer.ggml.tokens", tokens)
	kv("tokenizer.ggml.token_type", types)
	kv("tokenizer.ggml.token_type_count", uint32(cfg.TypeVocab))
	lower := true
	if tj.Normalizer.Lowercase != nil {
		lower = *tj.Normalizer.Lowercase
	}
	kv("tokenizer.ggml.normalizer.lowercase", lower)
	for _, s := range []struct{ key, tok string }{
		{"bos_token_id", "[CLS]"}, {"cls_token_id", "[CLS]"}, {"seperator_token_id", "[SEP]"},
		{"unknown_token_id", "[UNK]"}, {"padding_token_id", "[PAD]"}, {"mask_token_id", "[MASK]"},
	} {
		if id, ok := ids[s.tok]; ok {
			kv("tokenizer.ggml."+s.key, uint32(id))
		}
	}
	return nil
}
