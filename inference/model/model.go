package model

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

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
	packed   int64 // bytes of packed weights (Info.PackedBytes)
	released int64 // bytes of the mapped files given back (Info.ReleasedBytes)

	gpu *gpuModel // set by UseDevice: Forward runs on the GPU

	mu     sync.Mutex
	kvKind atomic.Uint32 // the KVStorage of new caches (SetKVStorage)
	s      scratch
	calls  uint64 // Forward calls, for KVCache.batchMark
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
	// PackedBytes is the memory of weights repacked at load for the int8
	// kernels (kernels.Packed), held beside the mapped files.
	PackedBytes int64
	// ReleasedBytes is the part of the mapped files given back after
	// packing: those tensors are read only from their packed copy.
	ReleasedBytes int64
}

// WeightBytes is the memory the weights hold once loaded: the mapped files
// less their released pages, plus the packed copies.
func (i Info) WeightBytes() int64 { return i.FileSize - i.ReleasedBytes + i.PackedBytes }

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
	if !set.Has(P+"embed_tokens.weight") && set.Has("embed_tokens.weight") {
		P = "" // saved from the bare model class (Qwen3-Embedding's Qwen3Model)
	}
	H := cfg.Hidden
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
		bindLayer(L, cfg, hfLayerNames(cfg.SandwichNorms), vec, lin)
		if err != nil {
			return nil, err
		}
		if cfg.AttentionBias && !cfg.FusedQKV && (L.q.bias == nil || L.k.bias == nil || L.v.bias == nil) {
			return nil, fmt.Errorf("layer %d: attention_bias is set but q/k/v biases are missing", i)
		}
	}
	m.params, m.packed, m.released = ld.params, ld.packed, ld.released
	m.kvKind.Store(uint32(kvStorageFor(ld.int8, cfg.HeadDim)))
	m.quant = storageSummary(ld.kinds)
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
		PackedBytes:   m.packed,
		ReleasedBytes: m.released,
	}
}

// Close unmaps the weights; the Model must not be used afterwards.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.set == nil && m.gf == nil {
		return nil
	}
	if m.gpu != nil {
		m.gpu.close()
		m.gpu = nil
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

// layerNames are one file format's tensor names for the parts of a block,
// relative to the block's prefix. One binding (bindLayer) serves every format.
type layerNames struct {
	attnNorm, ffnNorm, postAttn, postFFN string
	qNorm, kNorm                         string
	qkv, q, k, v, o                      string
	gateUp, gate, up, down               string
}

// hfLayerNames are the Hugging Face / MLX names. With Gemma's sandwich norms
// post_attention_layernorm is the post-attention norm; elsewhere it is the
// norm before the MLP.
func hfLayerNames(sandwich bool) layerNames {
	n := layerNames{
		attnNorm: "input_layernorm.weight", ffnNorm: "post_attention_layernorm.weight",
		qNorm: "self_attn.q_norm.weight", kNorm: "self_attn.k_norm.weight",
		qkv: "self_attn.qkv_proj", q: "self_attn.q_proj", k: "self_attn.k_proj", v: "self_attn.v_proj", o: "self_attn.o_proj",
		gateUp: "mlp.gate_up_proj", gate: "mlp.gate_proj", up: "mlp.up_proj", down: "mlp.down_proj",
	}
	if sandwich {
		n.postAttn, n.ffnNorm, n.postFFN = "post_attention_layernorm.weight", "pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight"
	}
	return n
}

// ggufLayerNames are llama.cpp's names (blk.N.…); a fused gate_up is ffn_up
// at twice the width.
var ggufLayerNames = layerNames{
	attnNorm: "attn_norm.weight", ffnNorm: "ffn_norm.weight", postAttn: "post_attention_norm.weight", postFFN: "post_ffw_norm.weight",
	qNorm: "attn_q_norm.weight", kNorm: "attn_k_norm.weight",
	qkv: "attn_qkv", q: "attn_q", k: "attn_k", v: "attn_v", o: "attn_output",
	gateUp: "ffn_up", gate: "ffn_gate", up: "ffn_up", down: "ffn_down",
}

// bindLayer loads one block's norms (vec) and matrices (lin) by the format's
// names, taking only the parts the architecture's switches call for.
func bindLayer(L *layer, cfg Config, n layerNames, vec func(*[]float32, string, int), lin func(*linear, string, int, int)) {
	H, I, hd := cfg.Hidden, cfg.Intermediate, cfg.HeadDim
	qDim, kvDim := cfg.Heads*hd, cfg.KVHeads*hd
	vec(&L.attnNorm, n.attnNorm, H)
	vec(&L.ffnNorm, n.ffnNorm, H)
	if cfg.SandwichNorms {
		vec(&L.postAttn, n.postAttn, H)
		vec(&L.postFFN, n.postFFN, H)
	}
	if cfg.QKNorm {
		vec(&L.qNorm, n.qNorm, hd)
		vec(&L.kNorm, n.kNorm, hd)
	}
	if cfg.FusedQKV {
		lin(&L.qkv, n.qkv, qDim+2*kvDim, H)
	} else {
		lin(&L.q, n.q, qDim, H)
		lin(&L.k, n.k, kvDim, H)
		lin(&L.v, n.v, kvDim, H)
	}
	lin(&L.o, n.o, H, qDim)
	if cfg.FusedGateUp {
		lin(&L.gateUp, n.gateUp, 2*I, H)
	} else {
		lin(&L.gate, n.gate, I, H)
		lin(&L.up, n.up, I, H)
	}
	lin(&L.down, n.down, H, I)
}
