package model

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// This file holds a small HF-safetensors → GGUF converter for tests, laid out
// as FORMATS.md §2 describes convert_hf_to_gguf's output: GGUF tensor names,
// q/k rows permuted for arch llama, Gemma norms with the +1 baked in,
// Llama 3 scaling as rope_freqs.weight, matrices in the requested type and
// vectors in F32.

// ggufArchOf maps a config.json model_type to general.architecture.
var ggufArchOf = map[string]string{
	"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3",
	"phi3": "phi3", "gemma2": "gemma2", "gemma3_text": "gemma3",
}

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

// encode stores values as type typ, or F32 when a row is not whole blocks.
func encode(t testing.TB, typ quant.GGMLType, v []float32, rowLen int) (quant.GGMLType, []byte) {
	if rowLen%typ.BlockSize() != 0 {
		typ = quant.GGMLF32
	}
	n, err := typ.RowBytes(uint64(len(v)))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if err := quant.QuantizeGGML(typ, v, b); err != nil {
		t.Fatal(err)
	}
	return typ, b
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

// convertToGGUF writes dir's model as a GGUF file whose matrices have type typ.
func convertToGGUF(t testing.TB, dir string, typ quant.GGMLType, out string) {
	t.Helper()
	js, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(js)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatal(err)
	}
	arch := ggufArchOf[cfg.Architecture]
	if arch == "" {
		t.Fatalf("no GGUF arch for %s", cfg.Architecture)
	}
	gemma := strings.HasPrefix(arch, "gemma")
	w := gguf.NewWriter()
	kv := func(k string, v any) {
		if err := w.SetKV(k, v); err != nil {
			t.Fatal(err)
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
		if theta, ok = rawFloat(raw, "rope_theta"); !ok {
			t.Fatal("no rope_theta")
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
	if rt, _ := raw["rope_scaling"].(map[string]any); rt != nil && rt["rope_type"] == "llama3" {
		factor, _ := rawFloat(rt, "factor")
		low, _ := rawFloat(rt, "low_freq_factor")
		high, _ := rawFloat(rt, "high_freq_factor")
		orig, _ := rawFloat(rt, "original_max_position_embeddings")
		div := make([]float32, cfg.RotaryDim/2)
		for i := range div {
			freq := 1 / math.Pow(theta, float64(2*i)/float64(cfg.RotaryDim))
			wave := 2 * math.Pi / freq
			switch {
			case wave < orig/high:
				div[i] = 1
			case wave > orig/low:
				div[i] = float32(factor)
			default:
				s := (orig/wave - low) / (high - low)
				div[i] = float32(1 / ((1-s)/factor + s))
			}
		}
		_, b := encode(t, quant.GGMLF32, div, 1)
		if err := w.AddTensor("rope_freqs.weight", quant.GGMLF32, []uint64{uint64(len(div))}, b); err != nil {
			t.Fatal(err)
		}
	}

	set, err := safetensors.OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for _, name := range set.Names() {
		if cfg.TieEmbeddings && name == "lm_head.weight" {
			continue
		}
		g, err := ggufName(name, gemma)
		if err != nil {
			t.Fatal(err)
		}
		st, err := set.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		v, err := floats(st)
		if err != nil {
			t.Fatal(err)
		}
		if arch == "llama" {
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
		ttype, b := encode(t, ttype, v, rowLen)
		if err := w.AddTensor(g, ttype, dims, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFile(out); err != nil {
		t.Fatal(err)
	}
}

// promptLogits runs ids token by token through m and returns the logits
// after each, plus the logits of the whole prompt run as one batch.
func promptLogits(t testing.TB, m *Model, ids []int32) (steps [][]float32, prefill []float32) {
	t.Helper()
	c := m.NewKVCache(len(ids))
	for _, id := range ids {
		out := [][]float32{nil}
		if err := m.Forward([]SeqBatch{{Tokens: []int32{id}, Cache: c, WantLogits: true}}, out); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, out[0])
	}
	out := [][]float32{nil}
	if err := m.Forward([]SeqBatch{{Tokens: ids, Cache: m.NewKVCache(len(ids)), WantLogits: true}}, out); err != nil {
		t.Fatal(err)
	}
	return steps, out[0]
}

// diffStats compares logits of a candidate with a baseline: the largest
// absolute logit difference, the largest log-probability difference over
// the baseline's top 5 tokens, and how often the argmax agrees.
type diffStats struct {
	logit, top5 float64
	agree, n    int
}

func (d *diffStats) add(base, cand []float32) {
	lb, lc := logSoftmax(base), logSoftmax(cand)
	for i := range base {
		d.logit = math.Max(d.logit, math.Abs(float64(base[i]-cand[i])))
	}
	for _, i := range topK(lb, 5) {
		d.top5 = math.Max(d.top5, math.Abs(lb[i]-lc[i]))
	}
	if argmax(base) == argmax(cand) {
		d.agree++
	}
	d.n++
}

func topK(v []float64, k int) []int {
	idx := make([]int, 0, k)
	for range k {
		best := -1
		for i, x := range v {
			taken := false
			for _, j := range idx {
				taken = taken || j == i
			}
			if !taken && (best < 0 || x > v[best]) {
				best = i
			}
		}
		idx = append(idx, best)
	}
	return idx
}

// TestGGUFMatchesSafetensors converts each fixture to GGUF in several types
// and compares the logits with the safetensors original run by this package.
// Float types must agree to float rounding. Quantized types are held to an
// absolute bound and to twice the error (plus 0.02) of the fixture's MLX
// variant of the same width against the same original: on these small,
// confident models even 8-bit weights move top-5 log-probabilities by up
// to ~0.1, so a fixed 5e-2 would only hold for the random ones.
func TestGGUFMatchesSafetensors(t *testing.T) {
	type variant struct {
		typ quant.GGMLType
		// bounds on the largest logit difference (float types only) and
		// top-5 log-probability difference, and the least fraction of
		// positions whose argmax agrees (trained models only)
		logit, top5, agree float64
		mlx                string // the MLX sibling whose error bounds ours, "" for float types
	}
	float32Variants := []variant{
		{quant.GGMLF32, 2e-5, 2e-5, 1, ""},
		{quant.GGMLF16, 1e-2, 5e-3, 1, ""},
		{quant.GGMLQ8_0, 0, 5e-2, 0, "mlx8"},
		{quant.GGMLQ4_0, 0, 1, 0, "mlx4"},
	}
	bf16Variants := []variant{
		{quant.GGMLF32, 2e-5, 2e-5, 1, ""},
		{quant.GGMLBF16, 2e-5, 2e-5, 1, ""},
		{quant.GGMLF16, 2e-2, 1e-2, 0.9, ""},
		{quant.GGMLQ8_0, 0, 0.25, 0.9, "mlx8"},
		{quant.GGMLQ4_0, 0, 2.5, 0.7, "mlx4"},
	}
	for _, a := range fixtureArchives {
		t.Run(a.name, func(t *testing.T) {
			for _, dir := range fixtureModels(t, a.name) {
				base := filepath.Base(dir)
				variants := float32Variants
				switch {
				case strings.HasSuffix(base, "-bfloat16"):
					variants = bf16Variants
				case !strings.HasSuffix(base, "-float32"):
					continue // MLX-quantized sources are not converted
				}
				t.Run(base, func(t *testing.T) {
					ref := loadReference(t, dir)
					trained := ref.TrainedSteps > 0
					orig, err := Load(dir)
					if err != nil {
						t.Fatal(err)
					}
					defer orig.Close()
					ids := append(append([]int32(nil), ref.PromptIDs...), ref.GreedyIDs...)
					wantSteps, wantPrefill := promptLogits(t, orig, ids)
					compare := func(m *Model) diffStats {
						steps, prefill := promptLogits(t, m, ids)
						var d diffStats
						for i := range steps {
							d.add(wantSteps[i], steps[i])
						}
						d.add(wantPrefill, prefill)
						return d
					}
					for _, v := range variants {
						t.Run(v.typ.String(), func(t *testing.T) {
							path := filepath.Join(t.TempDir(), "model.gguf")
							convertToGGUF(t, dir, v.typ, path)
							m, err := LoadGGUF(path)
							if err != nil {
								t.Fatal(err)
							}
							defer m.Close()
							d := compare(m)
							t.Logf("%s %s: max logit diff %.2g, top-5 logprob diff %.2g, argmax agrees %d/%d",
								base, v.typ, d.logit, d.top5, d.agree, d.n)
							if v.logit > 0 && d.logit > v.logit {
								t.Errorf("logits differ by up to %.3g (tolerance %g)", d.logit, v.logit)
							}
							if d.top5 > v.top5 {
								t.Errorf("top-5 log-probabilities differ by up to %.3g (tolerance %g)", d.top5, v.top5)
							}
							if trained && float64(d.agree) < v.agree*float64(d.n) {
								t.Errorf("argmax agrees at %d of %d positions, want %.0f%%", d.agree, d.n, 100*v.agree)
							}
							if v.mlx == "" {
								return
							}
							sib := strings.TrimSuffix(strings.TrimSuffix(dir, "-float32"), "-bfloat16") + "-" + v.mlx
							mm, err := Load(sib)
							if err != nil {
								t.Fatal(err)
							}
							defer mm.Close()
							dm := compare(mm)
							t.Logf("%s %s: top-5 logprob diff %.2g", base, v.mlx, dm.top5)
							if d.top5 > 2*dm.top5+0.02 {
								t.Errorf("top-5 log-probabilities differ by up to %.3g, more than twice the %s variant's %.3g", d.top5, v.mlx, dm.top5)
							}
						})
					}
				})
			}
		})
	}
}

// TestGGUFBlockTypesInModel runs a random llama-shaped model whose matrices
// are stored in each block type against the same model stored as F32 holding
// the dequantized values: only the kernels (or the fallback) differ.
func TestGGUFBlockTypesInModel(t *testing.T) {
	spec := newTinySpec(256, 512, 4, 2, 2, 300)
	ids := []int32{1, 17, 250, 3, 99, 42, 7, 199}
	for _, typ := range []quant.GGMLType{quant.GGMLQ4_0, quant.GGMLQ4_1, quant.GGMLQ5_0, quant.GGMLQ5_1, quant.GGMLQ8_0,
		quant.GGMLQ2_K, quant.GGMLQ3_K, quant.GGMLQ4_K, quant.GGMLQ5_K, quant.GGMLQ6_K, quant.GGMLF16, quant.GGMLBF16} {
		t.Run(typ.String(), func(t *testing.T) {
			dir := t.TempDir()
			qPath, fPath := filepath.Join(dir, "q.gguf"), filepath.Join(dir, "f.gguf")
			spec.write(t, qPath, typ, false)
			spec.write(t, fPath, typ, true)
			q, err := LoadGGUF(qPath)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			f, err := LoadGGUF(fPath)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got := q.Info().Quantization; got != "GGUF "+typ.String() {
				t.Errorf("quantization %q, want %q", got, "GGUF "+typ.String())
			}
			wantSteps, wantPrefill := promptLogits(t, f, ids)
			steps, prefill := promptLogits(t, q, ids)
			var d diffStats
			for i := range steps {
				d.add(wantSteps[i], steps[i])
			}
			d.add(wantPrefill, prefill)
			t.Logf("%s: max logit diff %.2g, top-5 logprob diff %.2g", typ, d.logit, d.top5)
			if d.logit > 1e-3 || d.agree != d.n {
				t.Errorf("%s: logits differ from the dequantized twin by up to %.3g, argmax agrees %d/%d", typ, d.logit, d.agree, d.n)
			}
		})
	}
}
