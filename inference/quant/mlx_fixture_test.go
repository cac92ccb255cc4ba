package quant_test

import (
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/safetensors"
	"github.com/impetusllm/impetus/inference/testutil"
)

// An external test: safetensors imports quant.

// TestMLXMatchesFixture quantizes the float32 weights of the dev-random
// reference models and compares with the MLX files that the reference script
// (a transcription of mlx.core.quantize) wrote from the same weights.
func TestMLXMatchesFixture(t *testing.T) {
	for _, arch := range []string{"llama", "qwen3"} {
		for _, bits := range []int{4, 8} {
			fdir := testutil.Fixture(t, "dev-random", arch+"-float32")
			qdir := testutil.Fixture(t, "dev-random", arch+"-mlx"+string(rune('0'+bits)))
			fs, err := safetensors.OpenModel(fdir)
			if err != nil {
				t.Fatal(err)
			}
			qs, err := safetensors.OpenModel(qdir)
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, name := range []string{"model.embed_tokens", "model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"} {
				wt, err := fs.Tensor(name + ".weight")
				if err != nil {
					t.Fatal(err)
				}
				w, _ := wt.Float32s()
				rows, cols := wt.Shape[0], wt.Shape[1]
				qt, _ := qs.Tensor(name + ".weight")
				st, _ := qs.Tensor(name + ".scales")
				bt, _ := qs.Tensor(name + ".biases")
				group := cols / st.Shape[1]
				wq, scales, biases, err := quant.QuantizeMLX(w, rows, cols, bits, group)
				if err != nil {
					t.Fatal(err)
				}
				fileQ, _ := qt.Uint32s()
				fileS, _ := st.Uint16s()
				fileB, _ := bt.Uint16s()
				mismatch := 0
				for i := range wq {
					if wq[i] != fileQ[i] {
						mismatch++
					}
				}
				for i := range scales {
					if quant.F32ToF16(scales[i]) != fileS[i] || quant.F32ToF16(biases[i]) != fileB[i] {
						t.Fatalf("%s %s: group %d scale/bias %g/%g vs file %g/%g", arch, name, i,
							scales[i], biases[i], quant.F16ToF32(fileS[i]), quant.F16ToF32(fileB[i]))
					}
				}
				// Any difference would be a packing or rounding disagreement.
				if mismatch > 0 {
					t.Fatalf("%s %s %d-bit: %d of %d words differ", arch, name, bits, mismatch, len(wq))
				}
				checked++
			}
			fs.Close()
			qs.Close()
			if checked != 3 {
				t.Fatal("nothing checked")
			}
		}
	}
}
