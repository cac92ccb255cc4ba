package inference

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/model/modeltest"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/testutil"
)

// TestEmbedGGUF serves encoder GGUFs written from the fixtures the way
// llama.cpp's converter lays them out: the scan lists them as embedding
// models (a chat model beside them stays chat), their WordPiece tokenizer
// comes from the GGUF vocabulary and splits texts exactly as the folder's
// tokenizer.json does, and the vectors match the folder's (F32 within 1e-5,
// Q8_0 at cosine ≥ 0.999) with the pooling the metadata names. A GGUF
// carries no Matryoshka claim, so dimensions is refused.
func TestEmbedGGUF(t *testing.T) {
	fix, dir := linkEmbedFixtures(t, "bert-mean", "nomic-mean")
	for _, g := range []struct {
		src, name string
		typ       quant.GGMLType
	}{{"bert-mean", "bert-f32", quant.GGMLF32}, {"bert-mean", "bert-q8", quant.GGMLQ8_0}, {"nomic-mean", "nomic-f32", quant.GGMLF32}} {
		w, err := modeltest.ConvertEncoderToGGUF(filepath.Join(fix, g.src), g.typ)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFile(filepath.Join(dir, g.name+".gguf")); err != nil {
			t.Fatal(err)
		}
	}
	writeTinyModel(t, dir)
	e, err := New(Options{ModelsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for id, want := range map[string]ModelKind{"bert-f32": KindEmbedding, "bert-q8": KindEmbedding, "nomic-f32": KindEmbedding, "tiny": KindChat} {
		if info, err := e.FindModel(id); err != nil || info.Kind != want {
			t.Errorf("%s: %+v, %v; want kind %s", id, info, err, want)
		}
	}
	ctx := context.Background()
	texts := []string{"hello world", "The SEA, the Sea!", "Café naïve résumé", "中文 text 123", "unknownword zzzq", "a"}
	for _, c := range []struct {
		folder, file string
		maxAbs       float64
		minCos       float64
	}{{"bert-mean", "bert-f32", 1e-5, 0.999999}, {"bert-mean", "bert-q8", 1, 0.999}, {"nomic-mean", "nomic-f32", 1e-5, 0.999999}} {
		want, err := e.Embed(ctx, c.folder, EmbedInputs{Texts: texts}, EmbedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Embed(ctx, c.file, EmbedInputs{Texts: texts}, EmbedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range texts {
			if got.Tokens[i] != want.Tokens[i] {
				t.Errorf("%s %q: %d tokens, the folder's tokenizer %d", c.file, texts[i], got.Tokens[i], want.Tokens[i])
			}
			if d, cs := embMaxDiff(got.Embeddings[i], want.Embeddings[i]), testutil.Cosine(got.Embeddings[i], want.Embeddings[i]); d > c.maxAbs || cs < c.minCos {
				t.Errorf("%s %q: max abs diff %.3g, cosine %.7f", c.file, texts[i], d, cs)
			}
		}
	}
	if _, err := e.Embed(ctx, "nomic-f32", EmbedInputs{Texts: []string{"x"}}, EmbedOptions{Dimensions: 8}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("dimensions on a GGUF: %v", err)
	}
}
