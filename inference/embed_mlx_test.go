package inference

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/model/modeltest"
	"github.com/impetusllm/impetus/inference/testutil"
)

// TestEmbedMLX serves MLX-quantized encoder folders, written at test time
// from the bert and nomic_bert fixtures as mlx-community's converters lay
// them out (quantized Linear and embedding tables, the
// sentence-transformers side files kept): the scan lists them as embedding
// models with their quantization, and the engine's embeddings of texts
// (int8 activations on the packed kernels, the serving default) keep
// cosine ≥ 0.999 to the float folder's at 8 bits and a measured floor at
// 4 bits, with the same token counts. A chat model beside them stays chat.
func TestEmbedMLX(t *testing.T) {
	fix, dir := linkEmbedFixtures(t, "bert-mean", "nomic-mean")
	cases := []struct {
		src, name, quant string
		bits             int
		// minCos: the worst measured (Zen 5, int8 activations) was bert
		// 8-bit 0.99979, nomic 8-bit 0.99979, bert 4-bit 0.94915: the
		// 3-token "a" on this 32-wide model averages little error away
		// (the other texts keep 0.9798 to 0.9911; float activations alike).
		minCos float64
	}{
		{"bert-mean", "bert-mlx8", "MLX 8-bit g32", 8, 0.999},
		{"bert-mean", "bert-mlx4", "MLX 4-bit g32", 4, 0.94},
		{"nomic-mean", "nomic-mlx8", "MLX 8-bit g32", 8, 0.999},
	}
	for _, c := range cases {
		if err := modeltest.QuantizeMLXFolder(filepath.Join(fix, c.src), filepath.Join(dir, c.name), "",
			modeltest.MLXPlan{Bits: c.bits, GroupSize: 32}); err != nil {
			t.Fatal(err)
		}
	}
	writeTinyModel(t, dir)
	e, err := New(Options{ModelsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	texts := []string{"hello world", "The SEA, the Sea!", "Café naïve résumé", "中文 text 123", "unknownword zzzq", "a"}
	for _, c := range cases {
		info, err := e.FindModel(c.name)
		if err != nil || info.Kind != KindEmbedding || info.Format != FormatMLX {
			t.Errorf("%s: %+v, %v; want an MLX folder of kind embedding", c.name, info, err)
			continue
		}
		if s, err := SummarizeConfig(info); err != nil || s.Quantization != c.quant {
			t.Errorf("%s: summary %+v, %v; want quantization %q", c.name, s, err, c.quant)
		}
		want, err := e.Embed(ctx, c.src, EmbedInputs{Texts: texts}, EmbedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Embed(ctx, c.name, EmbedInputs{Texts: texts}, EmbedOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		worst := 1.0
		for i := range texts {
			if got.Tokens[i] != want.Tokens[i] {
				t.Errorf("%s %q: %d tokens, the float folder %d", c.name, texts[i], got.Tokens[i], want.Tokens[i])
			}
			worst = min(worst, testutil.Cosine(got.Embeddings[i], want.Embeddings[i]))
		}
		t.Logf("%s: worst cosine to the float folder %.6f", c.name, worst)
		if worst < c.minCos {
			t.Errorf("%s: worst cosine %.6f < %.3g", c.name, worst, c.minCos)
		}
	}
	if info, err := e.FindModel("tiny"); err != nil || info.Kind != KindChat {
		t.Errorf("tiny: %+v, %v; want kind chat", info, err)
	}
}
