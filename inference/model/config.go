// Package model runs the forward pass of the decoder-only transformer
// architectures (Llama, Mistral, Qwen2/3, Phi-3, Gemma 2/3, SmolLM3) on weights
// loaded from Hugging Face / MLX safetensors folders. Every architecture is
// the same block with a few named switches (Config); the numbers are meant to
// match Hugging Face transformers computing in float32.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/impetusllm/impetus/inference/quant"
)

// Activation is the gated MLP's nonlinearity.
type Activation string

// The supported MLP activations.
const (
	SiLU     Activation = "silu"      // SwiGLU: silu(gate)*up
	GELUTanh Activation = "gelu_tanh" // GeGLU with the tanh approximation
)

// Config is an architecture reduced to the switches of the one block
// implementation. Load fills it from config.json; the zero value of each
// switch is plain Llama.
type Config struct {
	Architecture string // model_type, e.g. "llama", "gemma3_text"

	Hidden, Intermediate  int
	Layers                int
	Heads, KVHeads        int
	HeadDim               int
	Vocab                 int
	ContextLength         int // max_position_embeddings
	RMSNormEps            float32
	BOS                   int     // -1 when unknown
	EOS                   []int   // any of them ends generation
	TieEmbeddings         bool    // logits use the embedding table
	AttentionBias         bool    // q/k/v (and for Llama also o) projections carry biases
	QKNorm                bool    // RMSNorm over each q and k head before RoPE (Qwen3, Gemma 3)
	FusedQKV              bool    // one qkv_proj (Phi-3)
	FusedGateUp           bool    // one gate_up_proj, gate first (Phi-3)
	NormAddOne            bool    // norms multiply by (1+w) (Gemma)
	SandwichNorms         bool    // extra norms after attention and around the MLP (Gemma)
	EmbedScale            float32 // multiplies the embeddings, 0 = none (Gemma: sqrt(hidden))
	AttnScale             float32 // multiplies q·k; head_dim^-0.5 or query_pre_attn_scalar^-0.5
	AttnSoftcap           float32 // tanh soft-cap on attention scores, 0 = none
	FinalSoftcap          float32 // tanh soft-cap on the logits, 0 = none
	Activation            Activation
	RotaryDim             int // rotated dimensions per head (partial rotary when < HeadDim)
	LayerSpecs            []LayerSpec
	TensorPrefix          string // "model." or "language_model.model."
	LMHeadName            string // "lm_head.weight" or "language_model.lm_head.weight"
	Quantization          *QuantConfig
	OriginalContextLength int // rope scaling's original_max_position_embeddings, 0 if none
	// RoPEAdjacentPairs rotates dimension pairs (2i, 2i+1) instead of (i,
	// i+d/2): GGUF llama/smollm3 files store q/k rows permuted to that order.
	RoPEAdjacentPairs bool
}

// LayerSpec holds what varies between layers.
type LayerSpec struct {
	Window int   // sliding-window size in tokens, 0 = full attention
	RoPE   *RoPE // nil for NoPE layers (SmolLM3)
}

// QuantConfig is the MLX "quantization" block: global parameters plus
// per-module overrides (nil entry = kept in float).
type QuantConfig struct {
	GroupSize, Bits int
	Mode            string
	Overrides       map[string]*QuantParams
}

// QuantParams are one module's MLX affine parameters.
type QuantParams struct{ GroupSize, Bits int }

// rawConfig is the subset of config.json that any supported architecture reads.
type rawConfig struct {
	ModelType             string          `json:"model_type"`
	TextConfig            json.RawMessage `json:"text_config"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      int             `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	VocabSize             int             `json:"vocab_size"`
	MaxPositionEmbeddings int             `json:"max_position_embeddings"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	AttentionBias         *bool           `json:"attention_bias"`
	HiddenAct             string          `json:"hidden_act"`
	HiddenActivation      string          `json:"hidden_activation"`
	BOSTokenID            json.RawMessage `json:"bos_token_id"`
	EOSTokenID            json.RawMessage `json:"eos_token_id"`

	RopeTheta           *float64                   `json:"rope_theta"`
	RopeScaling         map[string]any             `json:"rope_scaling"`
	RopeParameters      map[string]json.RawMessage `json:"rope_parameters"`
	RopeLocalBaseFreq   *float64                   `json:"rope_local_base_freq"`
	PartialRotaryFactor *float64                   `json:"partial_rotary_factor"`
	OriginalMaxPos      int                        `json:"original_max_position_embeddings"`

	SlidingWindow        *int     `json:"sliding_window"`
	SlidingWindowPattern int      `json:"sliding_window_pattern"`
	LayerTypes           []string `json:"layer_types"`
	UseSlidingWindow     *bool    `json:"use_sliding_window"`
	MaxWindowLayers      int      `json:"max_window_layers"`
	NoRopeLayers         []int    `json:"no_rope_layers"`
	NoRopeLayerInterval  int      `json:"no_rope_layer_interval"`

	QueryPreAttnScalar    *float64 `json:"query_pre_attn_scalar"`
	AttnLogitSoftcapping  *float64 `json:"attn_logit_softcapping"`
	FinalLogitSoftcapping *float64 `json:"final_logit_softcapping"`

	Quantization       map[string]json.RawMessage `json:"quantization"`
	QuantizationConfig map[string]json.RawMessage `json:"quantization_config"`
}

// LoadConfig reads dir/config.json and, when present, the EOS/BOS override of
// dir/generation_config.json.
func LoadConfig(dir string) (Config, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("model config %s: %w", filepath.Join(dir, "config.json"), err)
	}
	gpath := filepath.Join(dir, "generation_config.json")
	if gb, err := os.ReadFile(gpath); err == nil {
		var g struct {
			BOS json.RawMessage `json:"bos_token_id"`
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if err := json.Unmarshal(gb, &g); err != nil {
			return Config{}, fmt.Errorf("model config %s: %w", gpath, err)
		}
		if ids, err := tokenIDs(g.EOS); err != nil {
			return Config{}, fmt.Errorf("model config %s: eos_token_id: %w", gpath, err)
		} else if len(ids) > 0 {
			cfg.EOS = ids
		}
		if ids, err := tokenIDs(g.BOS); err != nil {
			return Config{}, fmt.Errorf("model config %s: bos_token_id: %w", gpath, err)
		} else if len(ids) > 0 {
			cfg.BOS = ids[0]
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	return cfg, nil
}

// tokenIDs decodes null, an integer, or a list of integers.
func tokenIDs(raw json.RawMessage) ([]int, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want an integer or a list of integers, got %s", s)
	}
	return many, nil
}

// ParseConfig maps a config.json to the block switches.
func ParseConfig(data []byte) (Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return Config{}, err
	}
	cfg := Config{TensorPrefix: "model.", LMHeadName: "lm_head.weight", BOS: -1}
	quantRaw := r.Quantization
	if quantRaw == nil {
		quantRaw = r.QuantizationConfig
	}
	if a, ok := archFor(r.ModelType); ok && a.textConfig != "" {
		// Multimodal (Gemma 3): the language model's config is nested and
		// its tensors live under language_model.
		if len(r.TextConfig) == 0 {
			return Config{}, fmt.Errorf("%s config without text_config", r.ModelType)
		}
		var t rawConfig
		if err := json.Unmarshal(r.TextConfig, &t); err != nil {
			return Config{}, fmt.Errorf("text_config: %w", err)
		}
		if t.BOSTokenID == nil {
			t.BOSTokenID = r.BOSTokenID
		}
		if t.EOSTokenID == nil {
			t.EOSTokenID = r.EOSTokenID
		}
		if t.TieWordEmbeddings == nil {
			t.TieWordEmbeddings = r.TieWordEmbeddings
		}
		r = t
		r.ModelType = a.textConfig
		cfg.TensorPrefix, cfg.LMHeadName = "language_model.model.", "language_model.lm_head.weight"
	}
	cfg.Architecture = r.ModelType
	a, ok := archFor(r.ModelType)
	if !ok || a.textConfig != "" {
		return Config{}, fmt.Errorf("unsupported model_type %q", r.ModelType)
	}

	// Some configs (Gemma 3 text) may omit sizes that transformers defaults.
	if d := a.sizes; d != nil {
		defInt(&r.HiddenSize, d.hidden)
		defInt(&r.IntermediateSize, d.intermediate)
		defInt(&r.NumHiddenLayers, d.layers)
		defInt(&r.NumAttentionHeads, d.heads)
		defInt(&r.NumKeyValueHeads, d.kvHeads)
		defInt(&r.VocabSize, d.vocab)
		defInt(&r.MaxPositionEmbeddings, d.maxPos)
	}
	cfg.Hidden, cfg.Intermediate, cfg.Layers = r.HiddenSize, r.IntermediateSize, r.NumHiddenLayers
	cfg.Heads, cfg.KVHeads, cfg.Vocab = r.NumAttentionHeads, r.NumKeyValueHeads, r.VocabSize
	cfg.ContextLength = r.MaxPositionEmbeddings
	if cfg.KVHeads == 0 {
		cfg.KVHeads = cfg.Heads
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"hidden_size", cfg.Hidden}, {"intermediate_size", cfg.Intermediate}, {"num_hidden_layers", cfg.Layers},
		{"num_attention_heads", cfg.Heads}, {"vocab_size", cfg.Vocab}} {
		if f.v <= 0 {
			return Config{}, fmt.Errorf("%s must be positive, got %d", f.name, f.v)
		}
	}
	// Bounds far above any real model, so a hostile config cannot make the
	// loader allocate without limit before the weights are even checked.
	for _, f := range []struct {
		name   string
		v, max int
	}{{"hidden_size", cfg.Hidden, 1 << 20}, {"intermediate_size", cfg.Intermediate, 1 << 22}, {"num_hidden_layers", cfg.Layers, 1 << 12},
		{"num_attention_heads", cfg.Heads, 1 << 12}, {"num_key_value_heads", cfg.KVHeads, 1 << 12}, {"vocab_size", cfg.Vocab, 1 << 24}} {
		if f.v < 0 || f.v > f.max {
			return Config{}, fmt.Errorf("%s %d is out of range (0..%d)", f.name, f.v, f.max)
		}
	}
	if cfg.Heads%cfg.KVHeads != 0 {
		return Config{}, fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", cfg.Heads, cfg.KVHeads)
	}
	if r.HeadDim != nil && *r.HeadDim > 0 {
		cfg.HeadDim = *r.HeadDim
	} else {
		if cfg.Hidden%cfg.Heads != 0 {
			return Config{}, fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", cfg.Hidden, cfg.Heads)
		}
		cfg.HeadDim = cfg.Hidden / cfg.Heads
	}
	if cfg.HeadDim%2 != 0 || cfg.HeadDim > 1<<14 {
		return Config{}, fmt.Errorf("head_dim %d is odd or out of range", cfg.HeadDim)
	}
	cfg.RMSNormEps = a.rmsNormEps
	if r.RMSNormEps != nil {
		cfg.RMSNormEps = float32(*r.RMSNormEps)
	}
	if ids, err := tokenIDs(r.BOSTokenID); err != nil {
		return Config{}, fmt.Errorf("bos_token_id: %w", err)
	} else if len(ids) > 0 {
		cfg.BOS = ids[0]
	}
	ids, err := tokenIDs(r.EOSTokenID)
	if err != nil {
		return Config{}, fmt.Errorf("eos_token_id: %w", err)
	}
	cfg.EOS = ids

	// transformers' defaults for tie_word_embeddings differ per architecture.
	cfg.TieEmbeddings = a.tieEmbeddings
	if r.TieWordEmbeddings != nil {
		cfg.TieEmbeddings = *r.TieWordEmbeddings
	}
	cfg.AttentionBias = a.qkvBias
	if r.AttentionBias != nil && !a.qkvBias {
		cfg.AttentionBias = *r.AttentionBias
	}
	cfg.QKNorm = a.qkNorm
	cfg.FusedQKV, cfg.FusedGateUp = a.fused, a.fused
	cfg.NormAddOne, cfg.SandwichNorms = a.gemmaNorms, a.gemmaNorms

	act := r.HiddenActivation
	if act == "" {
		act = r.HiddenAct
	}
	switch act {
	case "":
		cfg.Activation = a.activation
	case "silu", "swish":
		cfg.Activation = SiLU
	case "gelu_pytorch_tanh", "gelu_tanh", "gelu_new":
		cfg.Activation = GELUTanh
	default:
		return Config{}, fmt.Errorf("unsupported activation %q", act)
	}

	cfg.AttnScale = float32(1 / math.Sqrt(float64(cfg.HeadDim)))
	if a.queryPreAttn {
		qpas := float64(cfg.HeadDim)
		if r.QueryPreAttnScalar != nil {
			qpas = *r.QueryPreAttnScalar
		}
		cfg.AttnScale = float32(1 / math.Sqrt(qpas))
		cfg.EmbedScale = float32(math.Sqrt(float64(cfg.Hidden)))
		if a.embedScaleBF16 {
			// Gemma 3 multiplies by sqrt(hidden) held as a bfloat16.
			cfg.EmbedScale = quant.BF16ToF32(quant.F32ToBF16(cfg.EmbedScale))
		}
	}
	if r.AttnLogitSoftcapping != nil {
		cfg.AttnSoftcap = float32(*r.AttnLogitSoftcapping)
	}
	if r.FinalLogitSoftcapping != nil {
		cfg.FinalSoftcap = float32(*r.FinalLogitSoftcapping)
	}

	if err := layerSpecs(&cfg, &r, a); err != nil {
		return Config{}, err
	}
	if quantRaw != nil {
		q, err := parseQuant(quantRaw)
		if err != nil {
			return Config{}, fmt.Errorf("quantization: %w", err)
		}
		cfg.Quantization = q
	}
	return cfg, nil
}

func defInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

// layerSpecs decides, per layer, the attention window and the RoPE table,
// following the layer_types rules of each transformers architecture.
func layerSpecs(cfg *Config, r *rawConfig, a *arch) error {
	n := cfg.Layers
	sliding := make([]bool, n)
	window := 0
	if r.SlidingWindow != nil {
		window = *r.SlidingWindow
	}
	switch {
	case len(r.LayerTypes) > 0:
		if len(r.LayerTypes) != n {
			return fmt.Errorf("layer_types has %d entries for %d layers", len(r.LayerTypes), n)
		}
		for i, t := range r.LayerTypes {
			switch t {
			case "sliding_attention":
				sliding[i] = true
			case "full_attention":
			default:
				return fmt.Errorf("layer_types[%d]: unsupported %q", i, t)
			}
		}
	default:
		for i := range sliding {
			sliding[i] = a.sliding(i, r, window)
		}
	}
	if a.window > 0 && window == 0 && r.SlidingWindow == nil {
		window = a.window
	}

	// Partial rotary.
	cfg.RotaryDim = cfg.HeadDim
	prf := r.PartialRotaryFactor
	global, local, err := ropeParams(r, a)
	if err != nil {
		return err
	}
	if prf == nil {
		prf = global.partialRotary
	}
	if prf != nil {
		cfg.RotaryDim = int(float64(cfg.HeadDim) * *prf)
		cfg.RotaryDim -= cfg.RotaryDim % 2
	}
	if cfg.RotaryDim <= 0 || cfg.RotaryDim > cfg.HeadDim {
		return fmt.Errorf("rotary dimension %d out of range for head_dim %d", cfg.RotaryDim, cfg.HeadDim)
	}
	origMax := r.OriginalMaxPos
	if global.OriginalMax > 0 {
		origMax = global.OriginalMax
	}
	cfg.OriginalContextLength = origMax
	globalRope, err := newRoPE(global, cfg.RotaryDim, cfg.ContextLength, origMax)
	if err != nil {
		return err
	}
	localRope := globalRope
	if local != nil {
		if localRope, err = newRoPE(*local, cfg.RotaryDim, cfg.ContextLength, origMax); err != nil {
			return err
		}
	}

	cfg.LayerSpecs = make([]LayerSpec, n)
	for i := range cfg.LayerSpecs {
		spec := LayerSpec{RoPE: globalRope}
		if sliding[i] {
			if window <= 0 {
				return fmt.Errorf("layer %d uses sliding attention but sliding_window is %d", i, window)
			}
			spec.Window, spec.RoPE = window, localRope
		}
		cfg.LayerSpecs[i] = spec
	}
	if a.noRoPEInterval > 0 {
		interval := r.NoRopeLayerInterval
		if interval == 0 {
			interval = a.noRoPEInterval
		}
		for i := range cfg.LayerSpecs {
			use := (i+1)%interval != 0
			if r.NoRopeLayers != nil {
				if len(r.NoRopeLayers) != n {
					return fmt.Errorf("no_rope_layers has %d entries for %d layers", len(r.NoRopeLayers), n)
				}
				use = r.NoRopeLayers[i] != 0
			}
			if !use {
				cfg.LayerSpecs[i].RoPE = nil
			}
		}
	}
	return nil
}

func parseQuant(raw map[string]json.RawMessage) (*QuantConfig, error) {
	q := &QuantConfig{Mode: "affine", Overrides: map[string]*QuantParams{}}
	for k, v := range raw {
		switch k {
		case "group_size":
			if err := json.Unmarshal(v, &q.GroupSize); err != nil {
				return nil, fmt.Errorf("group_size: %w", err)
			}
		case "bits":
			if err := json.Unmarshal(v, &q.Bits); err != nil {
				return nil, fmt.Errorf("bits: %w", err)
			}
		case "mode":
			if err := json.Unmarshal(v, &q.Mode); err != nil {
				return nil, fmt.Errorf("mode: %w", err)
			}
		case "quant_method":
			var m string
			json.Unmarshal(v, &m)
			return nil, fmt.Errorf("quant_method %q is not MLX affine quantization", m)
		default:
			var off bool
			if err := json.Unmarshal(v, &off); err == nil {
				if off {
					return nil, fmt.Errorf("override %q: true is not a parameter set", k)
				}
				q.Overrides[k] = nil
				continue
			}
			var p struct {
				GroupSize int    `json:"group_size"`
				Bits      int    `json:"bits"`
				Mode      string `json:"mode"`
			}
			if err := json.Unmarshal(v, &p); err != nil || p.Bits == 0 {
				// Unknown scalar keys are tolerated; only module overrides are objects.
				if len(v) > 0 && v[0] == '{' {
					return nil, fmt.Errorf("override %q: %s", k, v)
				}
				continue
			}
			if p.Mode != "" && p.Mode != "affine" {
				return nil, fmt.Errorf("override %q: mode %q is not supported (only affine)", k, p.Mode)
			}
			q.Overrides[k] = &QuantParams{GroupSize: p.GroupSize, Bits: p.Bits}
		}
	}
	if q.Mode != "affine" {
		return nil, fmt.Errorf("mode %q is not supported (only affine)", q.Mode)
	}
	if err := quant.MLXCheck(q.GroupSize, q.Bits, q.GroupSize); err != nil {
		return nil, err
	}
	return q, nil
}
