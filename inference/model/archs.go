package model

// arch is one row of the architecture table: what a config.json
// model_type decides beyond the numbers the file spells out, that is the
// defaults of its transformers class and its per-layer rules. Every
// architecture runs the same block (forward.go); a row only sets switches.
// Adding an architecture is one row here plus a test in config_test.go.
type arch struct {
	modelType string
	// ggufArch is the GGUF general.architecture it converts to and loads
	// from; where several rows share one (mistral writes llama), the first
	// row is the one a GGUF file loads as.
	ggufArch string
	// ggufPermutedQK: GGUF converters store q/k rows permuted for
	// adjacent-pair RoPE.
	ggufPermutedQK bool
	// textConfig, for a multimodal wrapper, is the model_type of the
	// language model nested under text_config, whose tensors live under
	// language_model. The other fields come from that row.
	textConfig string

	// sizes fills the sizes a config may leave to transformers' defaults.
	sizes *sizeDefaults

	rmsNormEps    float32 // when rms_norm_eps is absent
	tieEmbeddings bool    // when tie_word_embeddings is absent
	qkvBias       bool    // q/k/v biases always, whatever attention_bias says
	qkNorm        bool    // RMSNorm over each q and k head
	fused         bool    // one qkv_proj and one gate_up_proj
	gemmaNorms    bool    // norms multiply by (1+w), with sandwich norms
	activation    Activation
	// queryPreAttn: q·k is scaled by query_pre_attn_scalar^-0.5 (default
	// head_dim), and embeddings by sqrt(hidden).
	queryPreAttn bool
	// embedScaleBF16: that sqrt(hidden) is held as a bfloat16.
	embedScaleBF16 bool

	// sliding reports, without layer_types in the config, whether layer i
	// uses sliding-window attention (window is sliding_window, 0 if none).
	sliding func(i int, r *rawConfig, window int) bool
	// window is the sliding window when sliding_window is absent.
	window int

	ropeTheta float64 // when rope_theta is absent
	// localRoPE: sliding layers have their own default RoPE, of theta
	// rope_local_base_freq (default 10000), unless rope_parameters gives
	// sliding_attention.
	localRoPE bool
	// noRoPEInterval: every n-th layer has no RoPE, unless no_rope_layers
	// lists them; 0 for none.
	noRoPEInterval int
}

// sizeDefaults are transformers' defaults for sizes a config may omit.
type sizeDefaults struct {
	hidden, intermediate, layers, heads, kvHeads, vocab, maxPos int
}

func noSliding(int, *rawConfig, int) bool { return false }

// archs is the architecture table, in the order GGUF loading prefers.
var archs = []arch{
	{modelType: "llama", ggufArch: "llama", ggufPermutedQK: true,
		rmsNormEps: 1e-5, activation: SiLU, sliding: noSliding, ropeTheta: 1e4},
	{modelType: "mistral", ggufArch: "llama", ggufPermutedQK: true,
		rmsNormEps: 1e-5, activation: SiLU, ropeTheta: 1e4,
		sliding: func(_ int, _ *rawConfig, window int) bool { return window > 0 }},
	{modelType: "smollm3", ggufArch: "smollm3", ggufPermutedQK: true,
		rmsNormEps: 1e-5, activation: SiLU, sliding: noSliding, ropeTheta: 1e4, noRoPEInterval: 4},
	{modelType: "qwen2", ggufArch: "qwen2",
		rmsNormEps: 1e-6, qkvBias: true, activation: SiLU, sliding: qwenSliding, ropeTheta: 1e4},
	{modelType: "qwen3", ggufArch: "qwen3",
		rmsNormEps: 1e-6, qkNorm: true, activation: SiLU, sliding: qwenSliding, ropeTheta: 1e4},
	{modelType: "phi3", ggufArch: "phi3",
		rmsNormEps: 1e-5, fused: true, activation: SiLU, ropeTheta: 1e4,
		sliding: func(_ int, _ *rawConfig, window int) bool { return window > 0 }},
	{modelType: "gemma2", ggufArch: "gemma2",
		rmsNormEps: 1e-6, tieEmbeddings: true, gemmaNorms: true, activation: GELUTanh, queryPreAttn: true, ropeTheta: 1e4,
		sliding: func(i int, _ *rawConfig, _ int) bool { return i%2 == 0 }},
	{modelType: "gemma3_text", ggufArch: "gemma3",
		sizes:      &sizeDefaults{hidden: 2304, intermediate: 9216, layers: 26, heads: 8, kvHeads: 4, vocab: 262208, maxPos: 131072},
		rmsNormEps: 1e-6, tieEmbeddings: true, qkNorm: true, gemmaNorms: true, activation: GELUTanh,
		queryPreAttn: true, embedScaleBF16: true, window: 4096, ropeTheta: 1e6, localRoPE: true,
		sliding: func(i int, r *rawConfig, _ int) bool {
			p := r.SlidingWindowPattern
			if p == 0 {
				p = 6
			}
			return (i+1)%p != 0
		}},
	{modelType: "gemma3", textConfig: "gemma3_text"},
}

// qwenSliding: with use_sliding_window, the layers from max_window_layers
// on slide.
func qwenSliding(i int, r *rawConfig, _ int) bool {
	return r.UseSlidingWindow != nil && *r.UseSlidingWindow && i >= r.MaxWindowLayers
}

// archFor returns the row of a config.json model_type.
func archFor(modelType string) (*arch, bool) {
	for i := range archs {
		if archs[i].modelType == modelType {
			return &archs[i], true
		}
	}
	return nil, false
}

// GGUFArch returns the GGUF general.architecture a config.json model_type
// converts to ("" when it has none), and whether GGUF converters store its
// q/k rows permuted for adjacent RoPE pairs.
func GGUFArch(modelType string) (arch string, permutedQK bool) {
	if r, ok := archFor(modelType); ok {
		return r.ggufArch, r.ggufPermutedQK
	}
	return "", false
}

// archForGGUF returns the row a GGUF general.architecture loads as.
func archForGGUF(ggufArch string) (*arch, bool) {
	for i := range archs {
		if archs[i].ggufArch == ggufArch && ggufArch != "" {
			return &archs[i], true
		}
	}
	return nil, false
}
