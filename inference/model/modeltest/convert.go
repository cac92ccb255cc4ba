// Package modeltest converts Hugging Face model folders to GGUF for tests:
// the converted file must run like its source (model's tests) and like
// llama.cpp runs it. It writes in memory, so it suits small models.
package modeltest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/safetensors"
)

var hfLayerName = regexp.MustCompile(`^model\.layers\.(\d+)\.(.+)$`)

// ggufName maps an HF tensor name to its GGUF name ("" = not exported).
func ggufName(hf string, gemma bool) (string, error) {
	switch hf {
	case "model.embed_tokens.weight":
		return "token_embd.weight", nil
	case "model.norm.weight":
		return "output_norm.weight", nil
	case "lm_head.weight":
		return "output.weight", nil
	}
	m := hfLayerName.FindStringSubmatch(hf)
	if m == nil {
		return "", fmt.Errorf("no GGUF name for %q", hf)
	}
	var base, suffix string
	for _, sfx := range []string{".weight", ".bias"} {
		if b, ok := strings.CutSuffix(m[2], sfx); ok {
			base, suffix = b, sfx
		}
	}
	if suffix == "" {
		return "", fmt.Errorf("no GGUF name for %q", hf)
	}
	names := map[string]string{
		"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
		"self_attn.o_proj": "attn_output", "self_attn.qkv_proj": "attn_qkv",
		"self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
		"mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "mlp.gate_up_proj": "ffn_up",
		"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
		"pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
	}
	if gemma {
		names["post_attention_layernorm"] = "post_attention_norm"
	}
	g, ok := names[base]
	if !ok {
		return "", fmt.Errorf("no GGUF name for %q", hf)
	}
	return "blk." + m[1] + "." + g + suffix, nil
}

// permuteRows reorders the rows of a [heads*hd][cols] matrix (cols 1 for a
// bias) within each head so that row 2i+a comes from row a*hd/2+i.
func permuteRows(w []float32, heads, cols int) []float32 {
	out := make([]float32, len(w))
	hd := len(w) / cols / heads
	for h := 0; h < heads; h++ {
		for i := 0; i < hd/2; i++ {
			for a := 0; a < 2; a++ {
				dst, src := h*hd+2*i+a, h*hd+a*hd/2+i
				copy(out[dst*cols:(dst+1)*cols], w[src*cols:(src+1)*cols])
			}
		}
	}
	return out
}

// rawFloat reads a number at a dotted path of a decoded JSON object.
func rawFloat(c map[string]any, path ...string) (float64, bool) {
	var cur any = c
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0, false
		}
		cur = m[p]
	}
	f, ok := cur.(float64)
	return f, ok
}

// ConvertToGGUF converts a Hugging Face model folder with float weights
// (F32, F16, BF16 safetensors) to GGUF as llama.cpp's Hugging Face converter
// writes it: GGUF tensor names and hyperparameter keys,
// q/k rows permuted for arch llama, Gemma norms with the +1 baked in, Llama 3
// scaling as rope_freqs.weight, matrices as typ (F32 where rows are not whole
// blocks) and vectors as F32. It writes no tokenizer: callers add the
// tokenizer.* keys to the returned Writer. The converted tensors are held in
// memory, so it suits small models (tests, fixtures).
func ConvertToGGUF(dir string, typ quant.GGMLType) (*gguf.Writer, error) {
	js, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	cfg, err := model.ParseConfig(js)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", dir, err)
	}
	if cfg.Quantization != nil {
		return nil, fmt.Errorf("convert %s: MLX-quantized sources are not supported", dir)
	}
	var raw map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, fmt.Errorf("convert %s: %w", dir, err)
	}
	arch, permutedQK := model.GGUFArch(cfg.Architecture)
	if arch == "" {
		return nil, fmt.Errorf("convert %s: no GGUF architecture for %s", dir, cfg.Architecture)
	}
	gemma := strings.HasPrefix(arch, "gemma")
	w := gguf.NewWriter()
	var kvErr error
	kv := func(k string, v any) {
		if err := w.SetKV(k, v); err != nil && kvErr == nil {
			kvErr = err
		}
	}
	kv("general.architecture", arch)
	p := arch + "."
	kv(p+"context_length", uint32(cfg.ContextLength))
	kv(p+"embedding_length", uint32(cfg.Hidden))
	kv(p+"block_count", uint32(cfg.Layers))
	kv(p+"feed_forward_length", uint32(cfg.Intermediate))
	kv(p+"attention.head_count", uint32(cfg.Heads))
	kv(p+"attention.head_count_kv", uint32(cfg.KVHeads))
	kv(p+"attention.layer_norm_rms_epsilon", cfg.RMSNormEps)
	kv(p+"attention.key_length", uint32(cfg.HeadDim))
	kv(p+"attention.value_length", uint32(cfg.HeadDim))
	kv(p+"rope.dimension_count", uint32(cfg.RotaryDim))
	theta, ok := rawFloat(raw, "rope_parameters", "full_attention", "rope_theta")
	if !ok {
		if theta, ok = rawFloat(raw, "rope_parameters", "rope_theta"); !ok {
			if theta, ok = rawFloat(raw, "rope_theta"); !ok {
				theta = 10000
			}
		}
	}
	kv(p+"rope.freq_base", float32(theta))
	if local, ok := rawFloat(raw, "rope_parameters", "sliding_attention", "rope_theta"); ok {
		kv(p+"rope.freq_base_swa", float32(local))
	}
	if win, ok := rawFloat(raw, "sliding_window"); ok && (gemma || arch == "phi3") {
		kv(p+"attention.sliding_window", uint32(win))
	}
	if pat, ok := rawFloat(raw, "sliding_window_pattern"); ok && arch == "gemma3" {
		kv(p+"attention.sliding_window_pattern", uint32(pat))
	}
	for _, k := range []string{"attn_logit_softcapping", "final_logit_softcapping"} {
		if v, ok := rawFloat(raw, k); ok {
			kv(p+k, float32(v))
		}
	}
	if cfg.BOS >= 0 {
		kv("tokenizer.ggml.bos_token_id", uint32(cfg.BOS))
	}
	if len(cfg.EOS) > 0 {
		kv("tokenizer.ggml.eos_token_id", uint32(cfg.EOS[0]))
	}
	rt, _ := raw["rope_scaling"].(map[string]any)
	if rt == nil {
		rt, _ = raw["rope_parameters"].(map[string]any)
	}
	rtype, _ := rt["rope_type"].(string)
	if rtype == "" {
		rtype, _ = rt["type"].(string)
	}
	switch rtype {
	case "", "default", "llama3":
	default:
		return nil, fmt.Errorf("convert %s: rope scaling %q is not supported", dir, rtype)
	}
	if rtype == "llama3" {
		factor, _ := rawFloat(rt, "factor")
		low, _ := rawFloat(rt, "low_freq_factor")
		high, _ := rawFloat(rt, "high_freq_factor")
		orig, _ := rawFloat(rt, "original_max_position_embeddings")
		div := model.Llama3Scaling{Factor: factor, LowFreqFactor: low, HighFreqFactor: high, OriginalMax: orig}.Divisors(theta, cfg.RotaryDim)
		_, b, err := model.EncodeGGML(quant.GGMLF32, div, 1)
		if err == nil {
			err = w.AddTensor("rope_freqs.weight", quant.GGMLF32, []uint64{uint64(len(div))}, b)
		}
		if err != nil {
			return nil, fmt.Errorf("convert %s: %w", dir, err)
		}
	}
	if kvErr != nil {
		return nil, fmt.Errorf("convert %s: %w", dir, kvErr)
	}

	set, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	defer set.Close()
	for _, name := range set.Names() {
		if cfg.TieEmbeddings && name == "lm_head.weight" {
			continue
		}
		g, err := ggufName(name, gemma)
		if err != nil {
			return nil, fmt.Errorf("convert %s: %w", dir, err)
		}
		st, err := set.Tensor(name)
		if err != nil {
			return nil, fmt.Errorf("convert %s: %w", dir, err)
		}
		v, err := st.Floats()
		if err != nil {
			return nil, fmt.Errorf("convert %s: %w", dir, err)
		}
		if permutedQK {
			cols := 1
			if len(st.Shape) == 2 {
				cols = st.Shape[1]
			}
			switch {
			case strings.Contains(name, "q_proj"):
				v = permuteRows(v, cfg.Heads, cols)
			case strings.Contains(name, "k_proj"):
				v = permuteRows(v, cfg.KVHeads, cols)
			}
		}
		if gemma && strings.HasSuffix(name, "norm.weight") {
			for i := range v {
				v[i]++
			}
		}
		var dims []uint64
		ttype, rowLen := quant.GGMLF32, len(v)
		if len(st.Shape) == 2 {
			dims = []uint64{uint64(st.Shape[1]), uint64(st.Shape[0])}
			ttype, rowLen = typ, st.Shape[1]
		} else {
			dims = []uint64{uint64(len(v))}
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
