package modeltest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// WriteRandomEncoder writes a sentence-transformers folder of the sizes of s
// (Architecture bert or nomic_bert, Vocab at least the template tokenizer's
// size; the other fields are ignored) into dir: config.json,
// model.safetensors (float32, seeded random weights), modules.json
// (Transformer, Pooling, Normalize), 1_Pooling/config.json (mean, or CLS
// when cls), and the WordPiece tokenizer.json of the folder template (its
// vocabulary sits in the first rows; ConvertEncoderToGGUF pads the rest). The weights follow
// the statistics of a trained encoder rather than the tiny fixtures': matrix
// entries N(0, 1/cols) (about what bge-small's 384-wide layers hold),
// word embeddings N(0, 0.05²), position and type tables N(0, 0.02²),
// LayerNorm gains 1 ± 0.1 and biases of ±0.05, so quantization error relative
// to the signal is what a real model of that width sees.
func WriteRandomEncoder(dir, template string, s model.EncoderConfig, cls bool, seed uint64) error {
	if s.Architecture != "bert" && s.Architecture != "nomic_bert" {
		return fmt.Errorf("random encoder: architecture %q (bert, nomic_bert)", s.Architecture)
	}
	if s.Hidden <= 0 || s.Heads <= 0 || s.Hidden%s.Heads != 0 || s.Layers <= 0 || s.Intermediate <= 0 || s.Vocab <= 0 || s.MaxPositions <= 0 {
		return fmt.Errorf("random encoder: bad shape %+v", s)
	}
	if err := os.MkdirAll(filepath.Join(dir, "1_Pooling"), 0o755); err != nil {
		return fmt.Errorf("random encoder: %w", err)
	}
	tok, err := os.ReadFile(filepath.Join(template, "tokenizer.json"))
	if err != nil {
		return fmt.Errorf("random encoder: %w", err)
	}
	var cfg map[string]any
	if s.Architecture == "bert" {
		cfg = map[string]any{"architectures": []string{"BertModel"}, "model_type": "bert", "vocab_size": s.Vocab,
			"hidden_size": s.Hidden, "num_hidden_layers": s.Layers, "num_attention_heads": s.Heads,
			"intermediate_size": s.Intermediate, "hidden_act": "gelu", "max_position_embeddings": s.MaxPositions,
			"type_vocab_size": 2, "layer_norm_eps": 1e-12, "position_embedding_type": "absolute", "pad_token_id": 0}
	} else {
		cfg = map[string]any{"architectures": []string{"NomicBertModel"}, "model_type": "nomic_bert",
			"activation_function": "swiglu", "vocab_size": s.Vocab, "n_embd": s.Hidden, "n_layer": s.Layers,
			"n_head": s.Heads, "n_inner": s.Intermediate, "n_positions": s.MaxPositions, "type_vocab_size": 2,
			"layer_norm_epsilon": 1e-12, "causal": false, "prenorm": false, "qkv_proj_bias": false,
			"mlp_fc1_bias": false, "mlp_fc2_bias": false, "rotary_emb_base": 1000.0, "rotary_emb_fraction": 1.0,
			"rotary_emb_interleaved": false}
	}
	pool := map[string]any{"word_embedding_dimension": s.Hidden, "pooling_mode_cls_token": cls,
		"pooling_mode_mean_tokens": !cls}
	modules := []map[string]any{
		{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
		{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
		{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
	}
	files := map[string]any{"config.json": cfg, "1_Pooling/config.json": pool, "modules.json": modules,
		"sentence_bert_config.json": map[string]any{"max_seq_length": s.MaxPositions}}
	for name, v := range files {
		b, err := json.MarshalIndent(v, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			return fmt.Errorf("random encoder: %s: %w", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644); err != nil {
		return fmt.Errorf("random encoder: %w", err)
	}
	r := rand.New(rand.NewPCG(seed, 0x19))
	var ts []safetensors.Tensor
	add := func(name string, base, std float64, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		b := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(base+r.NormFloat64()*std)))
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: b})
	}
	mat := func(name string, rows, cols int, bias bool) {
		add(name+".weight", 0, 1/math.Sqrt(float64(cols)), rows, cols)
		if bias {
			add(name+".bias", 0, 0.05, rows)
		}
	}
	norm := func(name string) {
		add(name+".weight", 1, 0.1, s.Hidden)
		add(name+".bias", 0, 0.05, s.Hidden)
	}
	H, I := s.Hidden, s.Intermediate
	add("embeddings.word_embeddings.weight", 0, 0.05, s.Vocab, H)
	add("embeddings.token_type_embeddings.weight", 0, 0.02, 2, H)
	if s.Architecture == "bert" {
		add("embeddings.position_embeddings.weight", 0, 0.02, s.MaxPositions, H)
		norm("embeddings.LayerNorm")
		for l := 0; l < s.Layers; l++ {
			p := fmt.Sprintf("encoder.layer.%d.", l)
			mat(p+"attention.self.query", H, H, true)
			mat(p+"attention.self.key", H, H, true)
			mat(p+"attention.self.value", H, H, true)
			mat(p+"attention.output.dense", H, H, true)
			norm(p + "attention.output.LayerNorm")
			mat(p+"intermediate.dense", I, H, true)
			mat(p+"output.dense", H, I, true)
			norm(p + "output.LayerNorm")
		}
	} else {
		norm("emb_ln")
		for l := 0; l < s.Layers; l++ {
			p := fmt.Sprintf("encoder.layers.%d.", l)
			mat(p+"attn.Wqkv", 3*H, H, false)
			mat(p+"attn.out_proj", H, H, false)
			mat(p+"mlp.fc11", I, H, false)
			mat(p+"mlp.fc12", I, H, false)
			mat(p+"mlp.fc2", H, I, false)
			norm(p + "norm1")
			norm(p + "norm2")
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		return fmt.Errorf("random encoder: %w", err)
	}
	return nil
}
