package model

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// Model is a loaded checkpoint. Forward may be called from one goroutine at a
// time per Model (it serialises callers); its weights alias the mapped files
// until Close.
type Model struct {
	Config Config

	set      *safetensors.Set
	gf       *gguf.File // instead of set for GGUF models
	embed    matrix
	lmHead   *matrix // &embed when tied
	norm     []float32
	layers   []layer
	params   int64
	quant    string
	fileSize int64

	mu    sync.Mutex
	s     scratch
	calls uint64 // Forward calls, for KVCache.batchMark
}

// layer holds one block's weights. Which of them are set depends on the
// Config switches (fused or separate projections, Gemma's extra norms).
type layer struct {
	spec                   LayerSpec
	attnNorm, ffnNorm      []float32
	postAttn, postFFN      []float32 // SandwichNorms only
	qNorm, kNorm           []float32 // QKNorm only
	q, k, v, qkv, o        linear
	gate, up, gateUp, down linear
}

// Info is the model's metadata for listings and the API.
type Info struct {
	Architecture  string
	Params        int64  // logical weight elements, counting tied tables once
	Quantization  string // storage of the matrices, e.g. "BF16" or "MLX 4-bit g64"
	ContextLength int
	Vocab         int
	BOS           int // -1 when unknown
	EOS           []int
	FileSize      int64 // bytes of the weight files
}

// Load opens the safetensors weights and config of a model folder.
func Load(dir string) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	set, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	m, err := build(cfg, set)
	if err != nil {
		set.Close()
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	return m, nil
}

func build(cfg Config, set *safetensors.Set) (*Model, error) {
	m := &Model{Config: cfg, set: set, fileSize: set.Size()}
	ld := &loader{set: set, quant: cfg.Quantization}
	P := cfg.TensorPrefix
	H, I, hd := cfg.Hidden, cfg.Intermediate, cfg.HeadDim
	qDim, kvDim := cfg.Heads*hd, cfg.KVHeads*hd
	var err error
	if m.embed, err = ld.matrix(P+"embed_tokens", cfg.Vocab, H); err != nil {
		return nil, err
	}
	if m.norm, err = ld.vector(P+"norm.weight", H); err != nil {
		return nil, err
	}
	switch {
	case cfg.TieEmbeddings:
		m.lmHead = &m.embed
	case set.Has(cfg.LMHeadName):
		head, err := ld.matrix(strings.TrimSuffix(cfg.LMHeadName, ".weight"), cfg.Vocab, H)
		if err != nil {
			return nil, err
		}
		m.lmHead = &head
	default:
		return nil, fmt.Errorf("tie_word_embeddings is false but %s is missing", cfg.LMHeadName)
	}

	m.layers = make([]layer, cfg.Layers)
	for i := range m.layers {
		L := &m.layers[i]
		L.spec = cfg.LayerSpecs[i]
		p := fmt.Sprintf("%slayers.%d.", P, i)
		vec := func(dst *[]float32, name string, n int) {
			if err == nil {
				*dst, err = ld.vector(p+name, n)
			}
		}
		lin := func(dst *linear, name string, rows, cols int) {
			if err == nil {
				*dst, err = ld.linear(p+name, rows, cols)
			}
		}
		vec(&L.attnNorm, "input_layernorm.weight", H)
		if cfg.SandwichNorms {
			vec(&L.postAttn, "post_attention_layernorm.weight", H)
			vec(&L.ffnNorm, "pre_feedforward_layernorm.weight", H)
			vec(&L.postFFN, "post_feedforward_layernorm.weight", H)
		} else {
			vec(&L.ffnNorm, "post_attention_layernorm.weight", H)
		}
		if cfg.QKNorm {
			vec(&L.qNorm, "self_attn.q_norm.weight", hd)
			vec(&L.kNorm, "self_attn.k_norm.weight", hd)
		}
		if cfg.FusedQKV {
			lin(&L.qkv, "self_attn.qkv_proj", qDim+2*kvDim, H)
		} else {
			lin(&L.q, "self_attn.q_proj", qDim, H)
			lin(&L.k, "self_attn.k_proj", kvDim, H)
			lin(&L.v, "self_attn.v_proj", kvDim, H)
		}
		lin(&L.o, "self_attn.o_proj", H, qDim)
		if cfg.FusedGateUp {
			lin(&L.gateUp, "mlp.gate_up_proj", 2*I, H)
		} else {
			lin(&L.gate, "mlp.gate_proj", I, H)
			lin(&L.up, "mlp.up_proj", I, H)
		}
		lin(&L.down, "mlp.down_proj", H, I)
		if err != nil {
			return nil, err
		}
		if cfg.AttentionBias && !cfg.FusedQKV && (L.q.bias == nil || L.k.bias == nil || L.v.bias == nil) {
			return nil, fmt.Errorf("layer %d: attention_bias is set but q/k/v biases are missing", i)
		}
	}
	m.params = ld.params
	kinds := make([]string, 0, len(ld.kinds))
	for k := range ld.kinds {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if ld.kinds[kinds[i]] != ld.kinds[kinds[j]] {
			return ld.kinds[kinds[i]] > ld.kinds[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	m.quant = strings.Join(kinds, " + ")
	return m, nil
}

// Info returns the model's metadata.
func (m *Model) Info() Info {
	return Info{
		Architecture:  m.Config.Architecture,
		Params:        m.params,
		Quantization:  m.quant,
		ContextLength: m.Config.ContextLength,
		Vocab:         m.Config.Vocab,
		BOS:           m.Config.BOS,
		EOS:           append([]int(nil), m.Config.EOS...),
		FileSize:      m.fileSize,
	}
}

// Close unmaps the weights; the Model must not be used afterwards.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.set == nil && m.gf == nil {
		return nil
	}
	var err error
	if m.set != nil {
		err = m.set.Close()
	} else {
		err = m.gf.Close()
	}
	m.set, m.gf, m.layers, m.lmHead = nil, nil, nil, nil
	m.embed = matrix{}
	return err
}
