package model

// Encoder GGUF files as llama.cpp's converter writes them for BERT
// (general.architecture "bert") and nomic-embed-text ("nomic-bert"): the
// sizes under {arch}.*, {arch}.attention.causal false, {arch}.pooling_type,
// and the tensors token_embd, token_types, position_embd (bert only),
// token_embd_norm, then per block attn_q/attn_k/attn_v or a fused attn_qkv,
// attn_output, attn_output_norm, ffn_up, ffn_gate (nomic-bert), ffn_down
// and layer_output_norm, each with a bias where the model has one. Rotary
// models rotate NeoX-style (pairs i, i+d/2), as HF's nomic_bert does, so
// no rows are permuted.

import (
	"fmt"
	"math"

	"github.com/impetusllm/impetus/inference/gguf"
)

// IsEncoderGGUFArch reports whether a GGUF general.architecture is an
// encoder this package runs.
func IsEncoderGGUFArch(arch string) bool { return arch == "bert" || arch == "nomic-bert" }

// GGUF pooling types ({arch}.pooling_type), as llama.cpp numbers them.
const (
	ggufPoolNone = 0
	ggufPoolMean = 1
	ggufPoolCLS  = 2
	ggufPoolLast = 3
	ggufPoolRank = 4
)

// LoadEncoderGGUF maps an encoder GGUF file and builds the encoder on it
// (the file stays mapped until Close). It returns the embedding spec the
// metadata gives: the pooling of {arch}.pooling_type (mean when absent, as
// for a folder without modules.json), normalisation on (llama-server
// normalises embeddings; converted sentence-transformers models end in
// Normalize), and the position limit as the longest input.
func LoadEncoderGGUF(path string) (*Encoder, EmbedSpec, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, EmbedSpec{}, err
	}
	e, spec, err := encoderFromGGUF(f, path)
	if err != nil {
		f.Close()
		return nil, EmbedSpec{}, fmt.Errorf("gguf %s: %w", path, err)
	}
	e.closer = f.Close
	return e, spec, nil
}

// EncoderGGUFConfig maps an encoder GGUF file's metadata onto an
// EncoderConfig and its pooling.
func EncoderGGUFConfig(f *gguf.File) (EncoderConfig, EmbedSpec, error) {
	arch := f.Architecture()
	spec := EmbedSpec{Pooling: PoolMean, Normalize: true}
	if !IsEncoderGGUFArch(arch) {
		return EncoderConfig{}, spec, fmt.Errorf("architecture %q is not a supported encoder (bert, nomic-bert)", arch)
	}
	p := arch + "."
	get := func(key string, dst *int) error {
		v, ok := f.Uint(p + key)
		if !ok {
			return fmt.Errorf("missing or non-integer metadata %s%s", p, key)
		}
		if v > 1<<30 {
			return fmt.Errorf("metadata %s%s = %d is out of range", p, key, v)
		}
		*dst = int(v)
		return nil
	}
	c := EncoderConfig{Architecture: "bert", TypeVocab: 2, LayerNormEps: 1e-12, QKVBias: true, MLPBias: true}
	if arch == "nomic-bert" {
		c.Architecture = "nomic_bert"
	}
	for _, k := range []struct {
		key string
		dst *int
	}{{"embedding_length", &c.Hidden}, {"block_count", &c.Layers}, {"attention.head_count", &c.Heads},
		{"feed_forward_length", &c.Intermediate}, {"context_length", &c.MaxPositions}} {
		if err := get(k.key, k.dst); err != nil {
			return c, spec, err
		}
	}
	if kv, ok := f.Uint(p + "attention.head_count_kv"); ok && int(kv) != c.Heads {
		return c, spec, fmt.Errorf("%sattention.head_count_kv %d differs from head_count %d: grouped attention is not supported for encoders", p, kv, c.Heads)
	}
	if causal, ok := f.Bool(p + "attention.causal"); ok && causal {
		return c, spec, fmt.Errorf("%sattention.causal is true: not an encoder", p)
	}
	if eps, ok := f.Float(p + "attention.layer_norm_epsilon"); ok {
		c.LayerNormEps = float32(eps)
	}
	if n, ok := f.Uint("tokenizer.ggml.token_type_count"); ok && n > 0 && n < 1<<16 {
		c.TypeVocab = int(n)
	}
	ti, ok := f.Tensor("token_embd.weight")
	if !ok || len(ti.Dims) != 2 {
		return c, spec, fmt.Errorf("missing or malformed tensor %q", "token_embd.weight")
	}
	c.Vocab = int(min(ti.Dims[1], 1<<30))
	if tt, ok := f.Tensor("token_types.weight"); ok && len(tt.Dims) == 2 {
		c.TypeVocab = int(min(tt.Dims[1], 1<<16))
	}
	if pt, ok := f.Uint(p + "pooling_type"); ok {
		switch pt {
		case ggufPoolMean:
			spec.Pooling = PoolMean
		case ggufPoolCLS:
			spec.Pooling = PoolCLS
		case ggufPoolLast:
			spec.Pooling = PoolLastToken
		case ggufPoolNone:
			return c, spec, fmt.Errorf("%spooling_type 0 (none) gives per-token vectors, not embeddings", p)
		case ggufPoolRank:
			return c, spec, fmt.Errorf("%spooling_type 4 (rank) is a reranker, not an embedding model", p)
		default:
			return c, spec, fmt.Errorf("%spooling_type %d is not known", p, pt)
		}
	}
	if arch == "nomic-bert" {
		if moe, ok := f.Uint(p + "moe_every_n_layers"); ok && moe != 0 {
			return c, spec, fmt.Errorf("%smoe_every_n_layers: nomic-bert-moe is not supported", p)
		}
		c.GatedMLP, c.RopeBase = true, 10000
		if b, ok := f.Float(p + "rope.freq_base"); ok {
			c.RopeBase = b
		}
		if c.RopeBase <= 0 || math.IsInf(c.RopeBase, 0) || math.IsNaN(c.RopeBase) {
			return c, spec, fmt.Errorf("%srope.freq_base %g is out of range", p, c.RopeBase)
		}
	}
	if err := c.check(); err != nil {
		return c, spec, err
	}
	if c.GatedMLP {
		c.RotaryDim = c.Hidden / c.Heads
		if rd, ok := f.Uint(p + "rope.dimension_count"); ok {
			if rd == 0 || int(rd) > c.RotaryDim || rd%2 != 0 {
				return c, spec, fmt.Errorf("%srope.dimension_count %d does not fit a %d-wide head", p, rd, c.RotaryDim)
			}
			c.RotaryDim = int(rd)
		}
	}
	return c, spec, nil
}

func encoderFromGGUF(f *gguf.File, file string) (*Encoder, EmbedSpec, error) {
	cfg, spec, err := EncoderGGUFConfig(f)
	if err != nil {
		return nil, spec, err
	}
	e := &Encoder{Config: cfg}
	ld := &ggufLoader{f: f, file: file}
	H, I := cfg.Hidden, cfg.Intermediate
	if e.word, err = ld.matrix("token_embd.weight", cfg.Vocab, H); err != nil {
		return nil, spec, err
	}
	if e.typ, err = ld.matrix("token_types.weight", cfg.TypeVocab, H); err != nil {
		return nil, spec, err
	}
	if cfg.RotaryDim == 0 {
		if e.pos, err = ld.matrix("position_embd.weight", cfg.MaxPositions, H); err != nil {
			return nil, spec, err
		}
	}
	if e.embNormW, e.embNormB, err = ggufNorm(ld, "token_embd_norm", H); err != nil {
		return nil, spec, err
	}
	e.layers = make([]encLayer, cfg.Layers)
	for i := range e.layers {
		L := &e.layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		if hasTensor(f, p+"attn_qkv.weight") {
			if L.qkv, err = ld.linear(p+"attn_qkv", 3*H, H); err != nil {
				return nil, spec, err
			}
		} else {
			for _, w := range []struct {
				dst  *linear
				name string
			}{{&L.q, "attn_q"}, {&L.k, "attn_k"}, {&L.v, "attn_v"}} {
				if *w.dst, err = ld.linear(p+w.name, H, H); err != nil {
					return nil, spec, err
				}
			}
		}
		ws := []struct {
			dst        *linear
			name       string
			rows, cols int
		}{{&L.o, "attn_output", H, H}, {&L.up, "ffn_up", I, H}, {&L.down, "ffn_down", H, I}}
		if cfg.GatedMLP {
			ws = append(ws, struct {
				dst        *linear
				name       string
				rows, cols int
			}{&L.gate, "ffn_gate", I, H})
		}
		for _, w := range ws {
			if *w.dst, err = ld.linear(p+w.name, w.rows, w.cols); err != nil {
				return nil, spec, err
			}
		}
		if L.attnNormW, L.attnNB, err = ggufNorm(ld, p+"attn_output_norm", H); err != nil {
			return nil, spec, err
		}
		if L.ffnNormW, L.ffnNormB, err = ggufNorm(ld, p+"layer_output_norm", H); err != nil {
			return nil, spec, err
		}
	}
	e.params, e.packed, e.released = ld.params, ld.packed, ld.released
	e.panelize(ld.f.Release)
	e.quant = "GGUF " + storageSummary(ld.kinds)
	for _, t := range f.Tensors() {
		e.fileSize += int64(t.Size)
	}
	e.initRotary()
	return e, spec, nil
}

func ggufNorm(ld *ggufLoader, name string, n int) (w, b []float32, err error) {
	if w, err = ld.vector(name+".weight", n); err != nil {
		return nil, nil, err
	}
	if b, err = ld.vector(name+".bias", n); err != nil {
		return nil, nil, err
	}
	return w, b, nil
}
