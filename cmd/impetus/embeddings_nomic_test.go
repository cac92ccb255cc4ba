package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestEmbeddingsMatryoshka serves the nomic_bert fixture (whose model card
// names Matryoshka Representation Learning) from the built binary: full
// vectors match the float64 reference, dimensions 16 gives the first 16
// entries renormalised, dimensions past the model's size is a 400 naming
// the field, and a BERT without the claim still refuses to shorten.
func TestEmbeddingsMatryoshka(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(embedFixtures, "nomic-reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref embedReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	models := embedModels(t)
	base := serveEmbeddings(t, models)
	inputs := referenceInputs(ref)
	got, _ := embeddingsOf(t, postEmbeddings(t, base, map[string]any{"model": "nomic-mean", "input": inputs}), "nomic-mean", false)
	checkVectors(t, "nomic-mean full", got, ref.Embeddings["f32"]["mean_norm"])
	for _, dims := range []int{16, 1, 32} {
		want := make([][]float64, len(inputs))
		for i, v := range ref.Embeddings["f32"]["mean"] {
			var n float64
			for _, x := range v[:dims] {
				n += x * x
			}
			for _, x := range v[:dims] {
				want[i] = append(want[i], x/math.Sqrt(n))
			}
		}
		got, _ = embeddingsOf(t, postEmbeddings(t, base, map[string]any{"model": "nomic-mean", "input": inputs, "dimensions": dims, "encoding_format": "base64"}), "nomic-mean", true)
		checkVectors(t, fmt.Sprintf("nomic-mean dimensions %d", dims), got, want)
	}
	wantOpenAIError(t, "too many dimensions", postEmbeddings(t, base, map[string]any{"model": "nomic-mean", "input": "x", "dimensions": 33}), 400, "dimensions", "between 1 and 32", "got 33")
	wantOpenAIError(t, "bert dimensions", postEmbeddings(t, base, map[string]any{"model": "bert-mean", "input": "x", "dimensions": 16}), 400, "dimensions", "not trained for shortening")
}
