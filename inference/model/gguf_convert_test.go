package model

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/quant"
)

// convertToGGUF writes dir's model as a GGUF file whose matrices have type typ.
func convertToGGUF(t testing.TB, dir string, typ quant.GGMLType, out string) {
	t.Helper()
	w, err := convertGGUF(dir, typ)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(out); err != nil {
		t.Fatal(err)
	}
}

// encode is EncodeGGML for tests.
func encode(t testing.TB, typ quant.GGMLType, v []float32, rowLen int) (quant.GGMLType, []byte) {
	t.Helper()
	typ, b, err := EncodeGGML(typ, v, rowLen)
	if err != nil {
		t.Fatal(err)
	}
	return typ, b
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
	// The float twin is the reference: compare the float block kernels with
	// it (the int8-activation path has its own tests in kernels).
	defer kernels.SetInt8Activations(kernels.SetInt8Activations(false))
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

// TestGGUFQuantMix loads a file mixed the way "Q4_K_M" files are: Q4_K
// matrices, Q6_K output, Q5_0 where rows are not whole
// super-blocks, F32 norms; it must match its dequantized twin.
func TestGGUFQuantMix(t *testing.T) {
	// As in TestGGUFBlockTypesInModel: the float kernels against the float
	// twin (packed Q5_0, Q4_K and Q6_K run int8 activations, tested in kernels).
	defer kernels.SetInt8Activations(kernels.SetInt8Activations(false))
	spec := newTinySpec(256, 320, 4, 2, 2, 300) // ffn_down rows of 320: not whole Q4_K blocks
	typeOf := func(name string, cols int) quant.GGMLType {
		switch {
		case cols%256 != 0:
			return quant.GGMLQ5_0
		case name == "output.weight":
			return quant.GGMLQ6_K
		}
		return quant.GGMLQ4_K
	}
	dir := t.TempDir()
	write := func(path string, dequantized bool) {
		w := gguf.NewWriter()
		for k, v := range spec.kv {
			if err := w.SetKV(k, v); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range spec.tensors {
			dims, typ := []uint64{uint64(tt.cols)}, quant.GGMLF32
			if tt.rows > 0 {
				dims, typ = []uint64{uint64(tt.cols), uint64(tt.rows)}, typeOf(tt.name, tt.cols)
			}
			typ, b := encode(t, typ, tt.v, tt.cols)
			if dequantized {
				f := make([]float32, len(tt.v))
				if err := quant.DequantizeGGML(typ, b, f); err != nil {
					t.Fatal(err)
				}
				typ, b = encode(t, quant.GGMLF32, f, tt.cols)
			}
			if err := w.AddTensor(tt.name, typ, dims, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteFile(path); err != nil {
			t.Fatal(err)
		}
	}
	qPath, fPath := filepath.Join(dir, "mix.gguf"), filepath.Join(dir, "f32.gguf")
	write(qPath, false)
	write(fPath, true)
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
	if got, want := q.Info().Quantization, "GGUF Q4_K + Q5_0 + Q6_K"; got != want {
		t.Errorf("quantization %q, want %q", got, want)
	}
	ids := []int32{5, 100, 299, 0, 42}
	wantSteps, wantPrefill := promptLogits(t, f, ids)
	steps, prefill := promptLogits(t, q, ids)
	var d diffStats
	for i := range steps {
		d.add(wantSteps[i], steps[i])
	}
	d.add(wantPrefill, prefill)
	if d.logit > 1e-3 {
		t.Errorf("logits differ from the dequantized twin by up to %.3g", d.logit)
	}
}

// committedFixtures is where the repository keeps its own small reference
// models (made by their make.py).
const committedFixtures = "../testdata/reference"

// ownFloatFixtures lists the float32 models among the fixtures committed
// under ../testdata/reference (they include SmolLM3, which the shared
// archives lack); none when that folder is absent.
func ownFloatFixtures(t *testing.T) []string {
	dirs, _ := filepath.Glob(filepath.Join(committedFixtures, "*-float32"))
	var out []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "reference.json")); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// TestOwnFixturesAsGGUF converts the committed float32 fixtures to F32 GGUF:
// logits must match the safetensors originals to float rounding.
func TestOwnFixturesAsGGUF(t *testing.T) {
	dirs := ownFloatFixtures(t)
	if len(dirs) == 0 {
		t.Skipf("no float32 fixtures under %s", committedFixtures)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ref := loadReference(t, dir)
			orig, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer orig.Close()
			path := filepath.Join(t.TempDir(), "model.gguf")
			convertToGGUF(t, dir, quant.GGMLF32, path)
			m, err := LoadGGUF(path)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ids := append(append([]int32(nil), ref.PromptIDs...), ref.GreedyIDs...)
			wantSteps, wantPrefill := promptLogits(t, orig, ids)
			steps, prefill := promptLogits(t, m, ids)
			var d diffStats
			for i := range steps {
				d.add(wantSteps[i], steps[i])
			}
			d.add(wantPrefill, prefill)
			t.Logf("%s: max logit diff %.2g, argmax agrees %d/%d", filepath.Base(dir), d.logit, d.agree, d.n)
			if d.logit > 1e-4 || d.agree != d.n {
				t.Errorf("logits differ by up to %.3g, argmax agrees %d/%d", d.logit, d.agree, d.n)
			}
		})
	}
}
