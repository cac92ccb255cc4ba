package model

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// embedRef is testdata/embed/reference.json: token ids and the reference
// embeddings of the three fixture folders. make_embed_fixture.py writes it
// with sentence-transformers; make_embed_fixture_stdlib.py writes the same
// layout from an independent float64 Python forward pass (see the
// "versions" entry for which one produced the committed file).
type embedRef struct {
	Versions   map[string]string                 `json:"versions"`
	IDs        [][]int32                         `json:"ids"`
	Embeddings map[string]map[string][][]float32 `json:"embeddings"`
}

func loadEmbedRef(t *testing.T) embedRef {
	return readJSON[embedRef](t, filepath.Join("testdata", "embed", "reference.json"))
}

// TestEncoderReference runs the tiny random BERT (float32, f16 and bf16
// weights of one model) over a batch of five sequences of 3 to 41 tokens and
// compares every pooling (mean, CLS, last token), with and without
// normalisation, with the reference embeddings: within 1e-4
// absolute and cosine ≥ 0.99999. Each sequence run alone must give the same
// vectors as in the batch.
func TestEncoderReference(t *testing.T) {
	ref := loadEmbedRef(t)
	t.Logf("reference from %v", ref.Versions)
	for _, c := range []struct{ dtype, dir string }{{"f32", "bert-mean"}, {"f16", "bert-cls"}, {"bf16", "bert-last"}} {
		t.Run(c.dtype, func(t *testing.T) {
			enc, err := LoadEncoder(filepath.Join("testdata", "embed", c.dir))
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			hidden, err := enc.Hidden(ref.IDs)
			if err != nil {
				t.Fatal(err)
			}
			worstAbs, worstCos := 0.0, 1.0
			for _, p := range []Pooling{PoolMean, PoolCLS, PoolLastToken} {
				for _, norm := range []bool{false, true} {
					key := p.String()
					if norm {
						key += "_norm"
					}
					want := ref.Embeddings[c.dtype][key]
					if len(want) != len(ref.IDs) {
						t.Fatalf("reference %s/%s has %d vectors", c.dtype, key, len(want))
					}
					for i, h := range hidden {
						got := Pool(h, enc.Config.Hidden, p, norm)
						d, cs := maxAbsDiff(got, want[i]), testutil.Cosine(got, want[i])
						worstAbs, worstCos = math.Max(worstAbs, d), math.Min(worstCos, cs)
						if d > 1e-4 || cs < 0.99999 {
							t.Errorf("%s seq %d (%d tokens): max abs diff %.3g, cosine %.7f", key, i, len(ref.IDs[i]), d, cs)
						}
					}
				}
			}
			t.Logf("%s: worst max abs diff %.3g, worst cosine %.8f", c.dtype, worstAbs, worstCos)
			for i, ids := range ref.IDs {
				alone, err := enc.Hidden([][]int32{ids})
				if err != nil {
					t.Fatal(err)
				}
				if d := maxAbsDiff(alone[0], hidden[i]); d > 1e-5 {
					t.Errorf("sequence %d alone differs from the batch by %.3g", i, d)
				}
			}
		})
	}
}

func TestEncoderBadInput(t *testing.T) {
	enc, err := LoadEncoder(filepath.Join("testdata", "embed", "bert-mean"))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	long := make([]int32, enc.Config.MaxPositions+1)
	if _, err := enc.Hidden([][]int32{long}); !errors.Is(err, ErrSequenceTooLong) {
		t.Errorf("too long: %v", err)
	}
	if _, err := enc.Hidden([][]int32{{2, 3}, {}}); err == nil || !strings.Contains(err.Error(), "sequence 1 is empty") {
		t.Errorf("empty: %v", err)
	}
	if _, err := enc.Hidden([][]int32{{2, 9999}}); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("bad id: %v", err)
	}
}
