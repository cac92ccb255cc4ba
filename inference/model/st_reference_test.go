package model

import (
	"path/filepath"
	"testing"
)

// stReference is testdata/embed/st-reference.json, written by
// make_st_reference.py with sentence-transformers over the committed
// fixture folders: per folder, the reference token sequences pooled every
// way from the model transformers loads (the part read here; the engine's
// test reads the encode of texts).
type stReference struct {
	Versions map[string]string `json:"versions"`
	Fixtures map[string]struct {
		Weights struct {
			Checked int `json:"checked"`
		} `json:"weights"`
		IDs        [][]int32              `json:"ids"`
		Embeddings map[string][][]float32 `json:"embeddings"`
		ModelClass string                 `json:"model_class"`
	} `json:"fixtures"`
}

func loadSTReference(t *testing.T) stReference {
	return readJSON[stReference](t, filepath.Join("testdata", "embed", "st-reference.json"))
}

// TestSentenceTransformersReference compares every embedding fixture with
// sentence-transformers (the model class transformers loads, nomic's own
// model code for nomic_bert, MLX weights dequantized) on the reference
// token sequences, in one padded batch: encoders for each pooling with and
// without Normalize, decoders for last-token pooling; within 1e-4 absolute
// and cosine ≥ 0.99999.
func TestSentenceTransformersReference(t *testing.T) {
	ref := loadSTReference(t)
	t.Logf("reference from %v", ref.Versions)
	for _, name := range []string{"bert-mean", "bert-cls", "bert-last", "nomic-mean", "xlmr-mean", "qwen3-last", "qwen3-last-mlx8"} {
		t.Run(name, func(t *testing.T) {
			fx, ok := ref.Fixtures[name]
			if !ok {
				t.Fatalf("st-reference.json has no %s", name)
			}
			t.Logf("%s: %d tensors checked in the loaded model", fx.ModelClass, fx.Weights.Checked)
			one := embedRef{IDs: fx.IDs, Embeddings: map[string]map[string][][]float32{"st": fx.Embeddings}}
			dir := filepath.Join("testdata", "embed", name)
			if name == "qwen3-last" || name == "qwen3-last-mlx8" {
				m, err := Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				checkHiddenAgainst(t, decoderHidden(t, m, fx.IDs), m.Config.Hidden, one, "st", []Pooling{PoolLastToken}, 1e-4, 0.99999)
				return
			}
			enc, err := LoadEncoder(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			checkEncoderAgainst(t, enc, one, "st", 1e-4, 0.99999)
		})
	}
}
