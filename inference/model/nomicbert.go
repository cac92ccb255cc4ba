package model

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// rawNomicConfig is a nomic_bert config.json (nomic-embed-text-v1/v1.5, as
// the checkpoint's remote code writes it: GPT-2 style n_* names).
type rawNomicConfig struct {
	ModelType      string   `json:"model_type"`
	Vocab          int      `json:"vocab_size"`
	Hidden         int      `json:"n_embd"`
	Layers         int      `json:"n_layer"`
	Heads          int      `json:"n_head"`
	Inner          *int     `json:"n_inner"`
	Positions      int      `json:"n_positions"`
	TypeVocab      *int     `json:"type_vocab_size"`
	LayerNormEps   *float64 `json:"layer_norm_epsilon"`
	Activation     string   `json:"activation_function"`
	RotaryFraction *float64 `json:"rotary_emb_fraction"`
	RotaryBase     *float64 `json:"rotary_emb_base"`
	Interleaved    bool     `json:"rotary_emb_interleaved"`
	RotaryScale    any      `json:"rotary_emb_scale_base"`
	ScalingFactor  any      `json:"rotary_scaling_factor"`
	Causal         bool     `json:"causal"`
	Prenorm        bool     `json:"prenorm"`
	QKVBias        *bool    `json:"qkv_proj_bias"`
	FC1Bias        *bool    `json:"mlp_fc1_bias"`
	FC2Bias        *bool    `json:"mlp_fc2_bias"`
	RMSNorm        bool     `json:"use_rms_norm"`
	MoEEvery       int      `json:"moe_every_n_layers"`
	encoderQuantRaw
}

// parseNomicConfig reads a nomic_bert config.json into an EncoderConfig. The
// variant run is nomic-embed-text v1/v1.5's: post-norm blocks, rotary
// embeddings in place of a position table (rotate-half pairing), a SwiGLU
// MLP; other settings are refused by name rather than run wrongly.
func parseNomicConfig(data []byte) (EncoderConfig, error) {
	var r rawNomicConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return EncoderConfig{}, fmt.Errorf("parse config.json: %w", err)
	}
	c := EncoderConfig{Architecture: r.ModelType, Vocab: r.Vocab, Hidden: r.Hidden, Layers: r.Layers, Heads: r.Heads,
		Intermediate: 8 * r.Hidden / 3, MaxPositions: r.Positions, TypeVocab: 2, LayerNormEps: 1e-12,
		RopeBase: 10000, GatedMLP: true, QKVBias: true, MLPBias: true}
	if r.Inner != nil {
		c.Intermediate = *r.Inner
	}
	// nomic's model code sizes its gated MLP as n_inner (8/3 of the width
	// without it) rounded up to a multiple of 256: the weights it saves
	// have that width.
	c.Intermediate = (c.Intermediate + 255) / 256 * 256
	if r.TypeVocab != nil {
		c.TypeVocab = *r.TypeVocab
	}
	if r.LayerNormEps != nil {
		c.LayerNormEps = float32(*r.LayerNormEps)
	}
	if r.RotaryBase != nil {
		c.RopeBase = *r.RotaryBase
	}
	// NomicBertConfig's defaults: biases on unless the config turns them off.
	if r.QKVBias != nil {
		c.QKVBias = *r.QKVBias
	}
	if r.FC1Bias != nil && r.FC2Bias != nil && *r.FC1Bias != *r.FC2Bias {
		return c, fmt.Errorf("nomic_bert config: mlp_fc1_bias %v with mlp_fc2_bias %v is not supported", *r.FC1Bias, *r.FC2Bias)
	}
	if r.FC1Bias != nil {
		c.MLPBias = *r.FC1Bias
	}
	fraction := 1.0
	if r.RotaryFraction != nil {
		fraction = *r.RotaryFraction
	}
	for _, bad := range []struct {
		on   bool
		what string
	}{
		{r.Activation != "swiglu", fmt.Sprintf("activation_function %q (swiglu)", r.Activation)},
		{r.Causal, "causal true"},
		{r.Prenorm, "prenorm true"},
		{r.RMSNorm, "use_rms_norm true"},
		{r.Interleaved, "rotary_emb_interleaved true"},
		{r.RotaryScale != nil, "rotary_emb_scale_base"},
		{r.ScalingFactor != nil, "rotary_scaling_factor (dynamic NTK)"},
		{r.MoEEvery != 0, "moe_every_n_layers (nomic-bert-moe)"},
		{fraction <= 0 || fraction > 1, fmt.Sprintf("rotary_emb_fraction %g", fraction)},
		{c.RopeBase <= 0 || math.IsInf(c.RopeBase, 0) || math.IsNaN(c.RopeBase), fmt.Sprintf("rotary_emb_base %g", c.RopeBase)},
	} {
		if bad.on {
			return c, fmt.Errorf("nomic_bert config: %s is not supported", bad.what)
		}
	}
	var err error
	if c.Quantization, err = r.parse(r.ModelType); err != nil {
		return c, err
	}
	if err := c.check(); err != nil {
		return c, err
	}
	head := c.Hidden / c.Heads
	c.RotaryDim = int(float64(head) * fraction)
	c.RotaryDim -= c.RotaryDim % 2
	if c.RotaryDim == 0 {
		return c, fmt.Errorf("nomic_bert config: rotary_emb_fraction %g rotates no dimension of a %d-wide head", fraction, head)
	}
	return c, nil
}

// buildNomicEncoder maps a nomic_bert checkpoint's tensors (embeddings.*,
// emb_ln, encoder.layers.N.{attn.Wqkv, attn.out_proj, mlp.fc11, mlp.fc12,
// mlp.fc2, norm1, norm2}) onto the encoder; Wqkv stays one fused
// projection (one matmul, its output split per row).
func buildNomicEncoder(cfg EncoderConfig, set *safetensors.Set) (*Encoder, error) {
	e := &Encoder{Config: cfg, closer: set.Close, fileSize: set.Size()}
	ld := &loader{set: set, quant: cfg.Quantization}
	H, I := cfg.Hidden, cfg.Intermediate
	var err error
	if e.word, err = ld.table("embeddings.word_embeddings", cfg.Vocab, H); err != nil {
		return nil, err
	}
	if e.typ, err = ld.table("embeddings.token_type_embeddings", cfg.TypeVocab, H); err != nil {
		return nil, err
	}
	if e.embNormW, e.embNormB, err = ld.layerNorm("emb_ln", H); err != nil {
		return nil, err
	}
	e.layers = make([]encLayer, cfg.Layers)
	for i := range e.layers {
		L := &e.layers[i]
		p := fmt.Sprintf("encoder.layers.%d.", i)
		if L.qkv, err = ld.linear(p+"attn.Wqkv", 3*H, H); err != nil {
			return nil, err
		}
		for _, w := range []struct {
			dst        *linear
			name       string
			rows, cols int
		}{{&L.o, "attn.out_proj", H, H}, {&L.up, "mlp.fc11", I, H}, {&L.gate, "mlp.fc12", I, H}, {&L.down, "mlp.fc2", H, I}} {
			if *w.dst, err = ld.linear(p+w.name, w.rows, w.cols); err != nil {
				return nil, err
			}
		}
		if L.attnNormW, L.attnNB, err = ld.layerNorm(p+"norm1", H); err != nil {
			return nil, err
		}
		if L.ffnNormW, L.ffnNormB, err = ld.layerNorm(p+"norm2", H); err != nil {
			return nil, err
		}
	}
	e.setStorage(ld)
	e.initRotary()
	return e, nil
}

// initRotary fills the inverse frequencies of the rotary embedding:
// base^(-2i/rotaryDim) for each rotated pair i.
func (e *Encoder) initRotary() {
	d := e.Config.RotaryDim
	if d == 0 {
		return
	}
	e.invFreq = make([]float32, d/2)
	for i := range e.invFreq {
		e.invFreq[i] = float32(math.Pow(e.Config.RopeBase, -2*float64(i)/float64(d)))
	}
}

// ropeTable returns the rotary cos/sin table for positions below n at
// least, grown as longer sequences come (callers hold e.mu): built for the
// longest sequence seen rather than the configured maximum, which a config
// may set far beyond what is ever sent.
func (e *Encoder) ropeTable(n int) *kernels.RoPETable {
	if e.rope == nil || e.rope.Len() < n {
		e.rope = kernels.NewRoPETable(min(max(n, 512), e.Config.MaxPositions), e.Config.RotaryDim, e.invFreq, 1)
	}
	return e.rope
}
