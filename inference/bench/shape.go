// Package bench measures the inference engine at model level: prompt
// processing, single-stream decode and batched decode in tokens per second,
// on real checkpoints or on random weights of real model shapes, so engine
// speed can be tracked (and compared with llama.cpp) without downloading
// models.
package bench

import (
	"fmt"
	"sort"
	"strings"
)

// Shape is a decoder-only architecture's dimensions and config.json fields:
// enough to write a checkpoint the engine loads exactly like the real one.
type Shape struct {
	Name          string // short name for the command line, e.g. "qwen0.5b"
	ModelType     string // config.json model_type: "qwen2" or "llama"
	Architecture  string // config.json architectures[0]
	Hidden        int
	Intermediate  int
	Layers        int
	Heads         int
	KVHeads       int
	HeadDim       int
	Vocab         int
	ContextLength int
	QKVBias       bool // q/k/v projections carry biases (Qwen2)
	Tied          bool // logits use the embedding table
	RopeTheta     float64
	RopeScaling   map[string]any // nil when the model has none
	RMSNormEps    float64
	BOS           int
	EOS           []int
}

// Qwen25_05B is Qwen2.5-0.5B(-Instruct).
var Qwen25_05B = Shape{
	Name: "qwen0.5b", ModelType: "qwen2", Architecture: "Qwen2ForCausalLM",
	Hidden: 896, Intermediate: 4864, Layers: 24, Heads: 14, KVHeads: 2, HeadDim: 64,
	Vocab: 151936, ContextLength: 32768, QKVBias: true, Tied: true,
	RopeTheta: 1e6, RMSNormEps: 1e-6, BOS: 151643, EOS: []int{151645},
}

// Llama32_1B is Llama-3.2-1B(-Instruct), with its llama3 RoPE scaling.
var Llama32_1B = Shape{
	Name: "llama1b", ModelType: "llama", Architecture: "LlamaForCausalLM",
	Hidden: 2048, Intermediate: 8192, Layers: 16, Heads: 32, KVHeads: 8, HeadDim: 64,
	Vocab: 128256, ContextLength: 131072, Tied: true,
	RopeTheta: 500000, RMSNormEps: 1e-5, BOS: 128000, EOS: []int{128001, 128008, 128009},
	RopeScaling: map[string]any{
		"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
		"high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
	},
}

// Mistral7B is Mistral-7B-Instruct-v0.3, the seed's example model: a
// Llama block with grouped-query attention and an untied output matrix.
var Mistral7B = Shape{
	Name: "mistral7b", ModelType: "llama", Architecture: "MistralForCausalLM",
	Hidden: 4096, Intermediate: 14336, Layers: 32, Heads: 32, KVHeads: 8, HeadDim: 128,
	Vocab: 32768, ContextLength: 32768, RopeTheta: 1e6, RMSNormEps: 1e-5, BOS: 1, EOS: []int{2},
}

// Shapes lists the named shapes the command line accepts.
var Shapes = map[string]Shape{
	Qwen25_05B.Name: Qwen25_05B,
	Llama32_1B.Name: Llama32_1B,
	Mistral7B.Name:  Mistral7B,
}

// ShapeByName returns a shape of Shapes.
func ShapeByName(name string) (Shape, error) {
	if s, ok := Shapes[name]; ok {
		return s, nil
	}
	names := make([]string, 0, len(Shapes))
	for n := range Shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return Shape{}, fmt.Errorf("unknown model shape %q (known: %s)", name, strings.Join(names, ", "))
}

// Params is the number of logical weight elements, the tied table once.
func (s Shape) Params() int64 {
	H, I, hd := int64(s.Hidden), int64(s.Intermediate), int64(s.HeadDim)
	q, kv := int64(s.Heads)*hd, int64(s.KVHeads)*hd
	perLayer := H*(q+2*kv) + q*H + 3*H*I + 2*H
	if s.QKVBias {
		perLayer += q + 2*kv
	}
	n := int64(s.Vocab)*H + int64(s.Layers)*perLayer + H
	if !s.Tied {
		n += int64(s.Vocab) * H
	}
	return n
}

func (s Shape) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"hidden", s.Hidden}, {"intermediate", s.Intermediate}, {"layers", s.Layers}, {"heads", s.Heads},
		{"kv heads", s.KVHeads}, {"head dim", s.HeadDim}, {"vocab", s.Vocab}} {
		if f.v <= 0 {
			return fmt.Errorf("shape %q: %s must be positive, got %d", s.Name, f.name, f.v)
		}
	}
	if s.Heads%s.KVHeads != 0 {
		return fmt.Errorf("shape %q: %d heads are not a multiple of %d kv heads", s.Name, s.Heads, s.KVHeads)
	}
	if s.ModelType != "qwen2" && s.ModelType != "llama" {
		return fmt.Errorf("shape %q: model type %q is not qwen2 or llama", s.Name, s.ModelType)
	}
	return nil
}

// LlamaArch is the shape as a plain Llama block (no q/k/v biases, model_type
// llama), the way issue 11 measures Qwen2.5-0.5B's dimensions in llama.cpp:
// every file of one comparison then has the same blocks, whatever its format.
func (s Shape) LlamaArch() Shape {
	s.ModelType, s.Architecture, s.QKVBias = "llama", "LlamaForCausalLM", false
	return s
}
