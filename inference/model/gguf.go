package model

// GGUF models. The hyperparameters come from the
// {arch}.* metadata keys and are mapped onto the same config.json fields
// ParseConfig reads, so both formats share one set of defaults and RoPE
// rules. The weights are used where they lie in the mapped file: F32, F16 and
// BF16 matrices through the float kernels, block types through
// kernels.MatMulGGUF.
//
// Two conventions of GGUF files differ from the safetensors ones:
//   - For arch llama and smollm3 the converter permuted the rows of q and k
//     within each head, so that HF's rotate-half pair (i, i+d/2) sits at
//     (2i, 2i+1). The loader keeps the rows as stored and sets
//     Config.RoPEAdjacentPairs, which rotates adjacent pairs instead. q and k
//     are permuted alike, so q·k, and everything after it, is unchanged;
//     this avoids copying (and, for block types, re-encoding) the matrices.
//   - Gemma files store every norm weight with the +1 already added, so
//     NormAddOne is off.

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// LoadGGUF maps a GGUF file and builds the model on it; the file stays
// mapped until Close.
func LoadGGUF(path string) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := FromGGUF(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// FromGGUF builds a model on an open GGUF file, which the model then owns
// (Model.Close closes it); on error the caller still owns f. name labels
// errors.
func FromGGUF(f *gguf.File, name string) (*Model, error) {
	cfg, err := GGUFConfig(f)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", name, err)
	}
	return buildGGUF(cfg, f, name)
}

// GGUFConfig maps a GGUF file's metadata (and the presence of a few tensors:
// output, rope_freqs, fused projections) to the block switches.
func GGUFConfig(f *gguf.File) (Config, error) {
	arch := f.Architecture()
	row, ok := archForGGUF(arch)
	if !ok {
		return Config{}, fmt.Errorf("unsupported architecture %q (general.architecture)", arch)
	}
	mt := row.modelType // the config.json model_type whose defaults apply
	raw := map[string]any{"model_type": mt}
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	count := func(suffix, field string, required bool) int {
		key := arch + "." + suffix
		v, present := f.Value(key)
		if !present {
			if required {
				fail(fmt.Errorf("missing metadata %s", key))
			}
			return 0
		}
		u, ok := f.Uint(key)
		if !ok || u > 1<<31 {
			fail(fmt.Errorf("metadata %s: want a count, got %v (%T)", key, v, v))
			return 0
		}
		if field != "" {
			raw[field] = u
		}
		return int(u)
	}
	float := func(suffix, field string) (float64, bool) {
		key := arch + "." + suffix
		v, present := f.Value(key)
		if !present {
			return 0, false
		}
		x, ok := f.Float(key)
		if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
			fail(fmt.Errorf("metadata %s: want a number, got %v (%T)", key, v, v))
			return 0, false
		}
		if field != "" {
			raw[field] = x
		}
		return x, true
	}

	hidden := count("embedding_length", "hidden_size", true)
	count("block_count", "num_hidden_layers", true)
	count("feed_forward_length", "intermediate_size", true)
	heads := count("attention.head_count", "num_attention_heads", true)
	count("attention.head_count_kv", "num_key_value_heads", false)
	count("context_length", "max_position_embeddings", false)
	headDim := count("attention.key_length", "head_dim", false)
	if vl := count("attention.value_length", "", false); vl != 0 && headDim != 0 && vl != headDim {
		fail(fmt.Errorf("attention.value_length %d differs from key_length %d, which is not supported", vl, headDim))
	}
	float("attention.layer_norm_rms_epsilon", "rms_norm_eps")
	float("rope.freq_base", "rope_theta")
	float("attn_logit_softcapping", "attn_logit_softcapping")
	float("final_logit_softcapping", "final_logit_softcapping")
	if w := count("attention.sliding_window", "sliding_window", false); w == 0 && arch == "gemma2" {
		raw["sliding_window"] = 4096 // transformers' Gemma 2 default
	}
	if firstErr != nil {
		return Config{}, firstErr
	}
	if headDim == 0 && heads > 0 {
		headDim = hidden / heads
	}
	if dc := count("rope.dimension_count", "", false); dc != 0 && headDim > 0 && dc != headDim {
		// ParseConfig truncates head_dim*factor; the half keeps the product
		// from landing just below dc through rounding.
		raw["partial_rotary_factor"] = (float64(dc) + 0.5) / float64(headDim)
	}
	if arch == "gemma3" {
		if v, ok := f.Value(arch + ".attention.sliding_window_pattern"); ok {
			switch p := v.(type) {
			case []bool: // per layer: true = sliding window
				types := make([]string, len(p))
				for i, swa := range p {
					types[i] = "full_attention"
					if swa {
						types[i] = "sliding_attention"
					}
				}
				raw["layer_types"] = types
			default:
				raw["sliding_window_pattern"] = count("attention.sliding_window_pattern", "", false)
			}
		}
		float("rope.freq_base_swa", "rope_local_base_freq")
	}

	// RoPE scaling: linear and YaRN are metadata; Llama 3's divisors and
	// Phi-3's longrope factors are tensors.
	scaling := map[string]any{}
	typ, _ := f.String(arch + ".rope.scaling.type")
	factor, hasFactor := float("rope.scaling.factor", "")
	if lin, ok := float("rope.scale_linear", ""); ok && typ == "" && lin != 1 {
		typ, factor, hasFactor = "linear", lin, true
	}
	orig := count("rope.scaling.original_context_length", "", false)
	switch typ {
	case "", "none":
	case "linear", "yarn":
		if !hasFactor {
			return Config{}, fmt.Errorf("rope scaling %s without %s.rope.scaling.factor", typ, arch)
		}
		scaling["rope_type"], scaling["factor"] = typ, factor
		if orig > 0 {
			scaling["original_max_position_embeddings"] = orig
		}
	case "longrope":
	default:
		return Config{}, fmt.Errorf("unsupported rope scaling type %q", typ)
	}
	if hasTensor(f, "rope_factors_long.weight") || hasTensor(f, "rope_factors_short.weight") {
		long, err := smallVector(f, "rope_factors_long.weight")
		if err != nil {
			return Config{}, err
		}
		short, err := smallVector(f, "rope_factors_short.weight")
		if err != nil {
			return Config{}, err
		}
		if orig == 0 {
			return Config{}, fmt.Errorf("longrope factors without %s.rope.scaling.original_context_length", arch)
		}
		scaling = map[string]any{"rope_type": "longrope", "long_factor": long, "short_factor": short,
			"original_max_position_embeddings": orig}
		if a, ok := float("rope.scaling.attn_factor", ""); ok {
			scaling["attention_factor"] = a
		}
	}
	if firstErr != nil {
		return Config{}, firstErr
	}
	if len(scaling) > 0 {
		raw["rope_scaling"] = scaling
	}

	embd, ok := f.Tensor("token_embd.weight")
	if !ok {
		return Config{}, fmt.Errorf("missing tensor %q", "token_embd.weight")
	}
	if len(embd.Dims) != 2 || embd.Dims[1] > 1<<31 {
		return Config{}, fmt.Errorf("tensor %q has dims %v, want [embedding_length vocab]", "token_embd.weight", embd.Dims)
	}
	raw["vocab_size"] = embd.Dims[1]
	raw["tie_word_embeddings"] = !hasTensor(f, "output.weight")
	if id, ok := f.Uint("tokenizer.ggml.bos_token_id"); ok && id < 1<<31 {
		raw["bos_token_id"] = id
	}
	if id, ok := f.Uint("tokenizer.ggml.eos_token_id"); ok && id < 1<<31 {
		raw["eos_token_id"] = id
	}
	if mt == "qwen2" || mt == "qwen3" {
		raw["use_sliding_window"] = false
	}

	js, err := json.Marshal(raw)
	if err != nil {
		return Config{}, err
	}
	cfg, err := ParseConfig(js)
	if err != nil {
		return Config{}, err
	}
	cfg.Architecture = arch
	cfg.TensorPrefix, cfg.LMHeadName = "", "output.weight"
	cfg.NormAddOne = false // Gemma converters bake the +1 in
	cfg.RoPEAdjacentPairs = row.ggufPermutedQK
	cfg.FusedQKV = hasTensor(f, "blk.0.attn_qkv.weight") && !hasTensor(f, "blk.0.attn_q.weight")
	cfg.FusedGateUp = arch == "phi3" && !hasTensor(f, "blk.0.ffn_gate.weight")
	// GGUF has no query_pre_attn_scalar. Gemma 2 27B (46 layers) and Gemma 3
	// 27B (62 layers) set it to hidden/heads instead of head_dim, and
	// llama.cpp recognises them by their layer count; so does this.
	if (arch == "gemma2" && cfg.Layers == 46) || (arch == "gemma3" && cfg.Layers == 62) {
		cfg.AttnScale = float32(1 / math.Sqrt(float64(cfg.Hidden/cfg.Heads)))
	}
	if s, ok := float("attention.scale", ""); ok && s > 0 {
		cfg.AttnScale = float32(s)
	}
	if hasTensor(f, "rope_freqs.weight") {
		if err := applyRopeFreqs(f, &cfg); err != nil {
			return Config{}, err
		}
	}
	return cfg, firstErr
}

// applyRopeFreqs divides every layer's RoPE frequencies by the per-frequency
// divisors of rope_freqs.weight (how converters store Llama 3.1 scaling).
func applyRopeFreqs(f *gguf.File, cfg *Config) error {
	div, err := smallVector(f, "rope_freqs.weight")
	if err != nil {
		return err
	}
	if len(div) != cfg.RotaryDim/2 {
		return fmt.Errorf("tensor %q has %d entries, want %d (rotary dimensions / 2)", "rope_freqs.weight", len(div), cfg.RotaryDim/2)
	}
	for _, d := range div {
		if !(d > 0) || math.IsInf(float64(d), 0) {
			return fmt.Errorf("tensor %q: divisor %g is not a positive number", "rope_freqs.weight", d)
		}
	}
	scaled := map[*RoPE]*RoPE{}
	for i := range cfg.LayerSpecs {
		r := cfg.LayerSpecs[i].RoPE
		if r == nil {
			continue
		}
		if s, ok := scaled[r]; ok {
			cfg.LayerSpecs[i].RoPE = s
			continue
		}
		s := *r
		s.InvFreq = make([]float32, len(r.InvFreq))
		for j, v := range r.InvFreq {
			s.InvFreq[j] = float32(float64(v) / float64(div[j]))
		}
		s.Type = "llama3"
		scaled[r] = &s
		cfg.LayerSpecs[i].RoPE = &s
	}
	return nil
}

func hasTensor(f *gguf.File, name string) bool {
	_, ok := f.Tensor(name)
	return ok
}

// smallVector decodes a 1-D tensor of at most 1<<16 float elements.
func smallVector(f *gguf.File, name string) ([]float32, error) {
	ti, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("missing tensor %q", name)
	}
	if len(ti.Dims) != 1 || ti.Dims[0] > 1<<16 {
		return nil, fmt.Errorf("tensor %q has dims %v, want one short dimension", name, ti.Dims)
	}
	v, _, err := f.TensorFloat32(name)
	return v, err
}

// ggmlWeightTypes are the block types a weight matrix may have.
var ggmlWeightTypes = map[quant.GGMLType]bool{
	quant.GGMLQ4_0: true, quant.GGMLQ4_1: true, quant.GGMLQ5_0: true, quant.GGMLQ5_1: true,
	quant.GGMLQ8_0: true, quant.GGMLQ2_K: true, quant.GGMLQ3_K: true, quant.GGMLQ4_K: true,
	quant.GGMLQ5_K: true, quant.GGMLQ6_K: true,
}

// ggmlRows expands count rows from row r0 into dst.
func (m *matrix) ggmlRows(dst []float32, r0, count int) {
	rb := m.cols / m.ggml.BlockSize() * m.ggml.TypeSize()
	if err := quant.DequantizeGGML(m.ggml, m.blocks[r0*rb:(r0+count)*rb], dst[:count*m.cols]); err != nil {
		panic(fmt.Sprintf("model: matrix %s: %v", m.name, err)) // sizes are checked at load
	}
}

// ggufLoader reads tensors by GGUF name, checking dims and types.
type ggufLoader struct {
	f        *gguf.File
	file     string
	params   int64
	packed   int64 // bytes of packed weights
	released int64 // bytes of the mapping given back after packing
	int8     bool  // some matmul runs with int8 activations (kvStorageFor)
	kinds    map[string]int
}

func (ld *ggufLoader) errorf(tensor, format string, args ...any) error {
	return fmt.Errorf("gguf %s: tensor %q: %s", ld.file, tensor, fmt.Sprintf(format, args...))
}

func (ld *ggufLoader) data(name string) ([]byte, gguf.TensorInfo, error) {
	if !hasTensor(ld.f, name) {
		return nil, gguf.TensorInfo{}, fmt.Errorf("gguf %s: missing tensor %q", ld.file, name)
	}
	return ld.f.TensorData(name)
}

// vector decodes a norm weight or bias of n elements to float32.
func (ld *ggufLoader) vector(name string, n int) ([]float32, error) {
	data, ti, err := ld.data(name)
	if err != nil {
		return nil, err
	}
	if len(ti.Dims) != 1 || ti.Dims[0] != uint64(n) {
		return nil, ld.errorf(name, "has dims %v, want [%d]", ti.Dims, n)
	}
	if !ti.Type.Dequantizable() || n%ti.Type.BlockSize() != 0 {
		return nil, ld.errorf(name, "type %s is not supported for a vector", ti.Type)
	}
	out := make([]float32, n)
	if err := quant.DequantizeGGML(ti.Type, data, out); err != nil {
		return nil, ld.errorf(name, "%v", err)
	}
	ld.params += int64(n)
	return out, nil
}

func (ld *ggufLoader) optVector(name string, n int) ([]float32, error) {
	if !hasTensor(ld.f, name) {
		return nil, nil
	}
	return ld.vector(name, n)
}

// matrix returns a [rows][cols] weight (GGUF dims [cols rows]) aliasing the mapping.
func (ld *ggufLoader) matrix(name string, rows, cols int) (matrix, error) {
	m := matrix{name: name, rows: rows, cols: cols}
	data, ti, err := ld.data(name)
	if err != nil {
		return m, err
	}
	if len(ti.Dims) != 2 || ti.Dims[0] != uint64(cols) || ti.Dims[1] != uint64(rows) {
		return m, ld.errorf(name, "has dims %v, want [%d %d] (row length first)", ti.Dims, cols, rows)
	}
	if want, err := ti.Type.RowBytes(uint64(rows) * uint64(cols)); err != nil || want != uint64(len(data)) {
		return m, ld.errorf(name, "%d bytes for %d×%d %s", len(data), rows, cols, ti.Type)
	}
	st := safetensors.Tensor{Name: name, Data: data}
	switch ti.Type {
	case quant.GGMLF32:
		st.DType = safetensors.F32
		m.kind = wF32
		m.f32, err = st.Float32s()
	case quant.GGMLF16, quant.GGMLBF16:
		st.DType = safetensors.F16
		m.kind = wF16
		if ti.Type == quant.GGMLBF16 {
			m.kind = wBF16
		}
		m.half, err = st.Uint16s()
	default:
		if !ggmlWeightTypes[ti.Type] {
			return m, ld.errorf(name, "type %s is not supported for weights (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K are)", ti.Type)
		}
		if cols%ti.Type.BlockSize() != 0 {
			return m, ld.errorf(name, "row length %d is not a multiple of the %s block of %d", cols, ti.Type, ti.Type.BlockSize())
		}
		m.kind, m.ggml, m.blocks = wGGML, ti.Type, data
		if kernels.PackWanted(false) {
			m.packed = kernels.PackGGUF(ti.Type, data, rows, cols)
		}
	}
	if err != nil {
		return m, ld.errorf(name, "%v", err)
	}
	if ld.kinds == nil {
		ld.kinds = map[string]int{}
	}
	ld.kinds[ti.Type.String()]++
	ld.params += m.params()
	ld.int8 = ld.int8 || m.packed != nil ||
		((ti.Type == quant.GGMLQ4_0 || ti.Type == quant.GGMLQ8_0) && kernels.Int8Activations())
	if m.packed != nil {
		// Only the packed copy is read from now on (embedding rows too,
		// see matrix.row): the file's pages of this tensor go back.
		ld.packed += int64(m.packed.Bytes())
		ld.released += ld.f.Release(name)
	}
	return m, nil
}

func (ld *ggufLoader) linear(name string, rows, cols int) (linear, error) {
	m, err := ld.matrix(name+".weight", rows, cols)
	if err != nil {
		return linear{}, err
	}
	b, err := ld.optVector(name+".bias", rows)
	return linear{matrix: m, bias: b}, err
}

// buildGGUF loads every weight the Config calls for, by GGUF tensor name.
func buildGGUF(cfg Config, f *gguf.File, file string) (*Model, error) {
	m := &Model{Config: cfg, gf: f}
	for _, t := range f.Tensors() {
		m.fileSize = max(m.fileSize, int64(f.DataOffset+t.Offset+t.Size))
	}
	ld := &ggufLoader{f: f, file: file}
	H := cfg.Hidden
	var err error
	if m.embed, err = ld.matrix("token_embd.weight", cfg.Vocab, H); err != nil {
		return nil, err
	}
	if m.norm, err = ld.vector("output_norm.weight", H); err != nil {
		return nil, err
	}
	if cfg.TieEmbeddings {
		m.lmHead = &m.embed
	} else {
		head, err := ld.matrix("output.weight", cfg.Vocab, H)
		if err != nil {
			return nil, err
		}
		m.lmHead = &head
	}
	m.layers = make([]layer, cfg.Layers)
	for i := range m.layers {
		L := &m.layers[i]
		L.spec = cfg.LayerSpecs[i]
		p := fmt.Sprintf("blk.%d.", i)
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
		bindLayer(L, cfg, ggufLayerNames, vec, lin)
		if err != nil {
			return nil, err
		}
		if cfg.AttentionBias && !cfg.FusedQKV && (L.q.bias == nil || L.k.bias == nil || L.v.bias == nil) {
			return nil, fmt.Errorf("gguf %s: layer %d: %s needs q/k/v biases (blk.%d.attn_q.bias ...)", file, i, cfg.Architecture, i)
		}
	}
	m.params, m.packed, m.released = ld.params, ld.packed, ld.released
	m.kvKind.Store(uint32(kvStorageFor(ld.int8, m.Config.HeadDim)))
	m.quant = "GGUF " + storageSummary(ld.kinds)
	return m, nil
}
