package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// TestDecoderHiddenReference runs the tiny Qwen3 embedding fixtures
// (make_qwen3_fixture_stdlib.py: float32 without the "model." prefix, and
// MLX 8-bit) over five sequences of 1 to 100 tokens in one batch with
// WantHidden, and compares the last token's final hidden state, raw and
// normalised, with the float64 reference: within 1e-4 absolute and cosine
// ≥ 0.99999 (the MLX reference uses the dequantized weights). Each sequence
// alone gives the same, and a batch mixing hidden states with logits gives
// each what it asked for.
func TestDecoderHiddenReference(t *testing.T) {
	ref := readJSON[embedRef](t, filepath.Join("testdata", "embed", "qwen3-reference.json"))
	for _, c := range []struct{ key, dir string }{{"f32", "qwen3-last"}, {"mlx8", "qwen3-last-mlx8"}} {
		t.Run(c.key, func(t *testing.T) {
			m, err := Load(filepath.Join("testdata", "embed", c.dir))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			hidden := decoderHidden(t, m, ref.IDs)
			worstAbs, worstCos := 0.0, 1.0
			for _, norm := range []bool{false, true} {
				key := "lasttoken"
				if norm {
					key += "_norm"
				}
				for i, h := range hidden {
					got, want := Pool(h, m.Config.Hidden, PoolLastToken, norm), ref.Embeddings[c.key][key][i]
					d, cs := maxAbsDiff(got, want), testutil.Cosine(got, want)
					worstAbs, worstCos = math.Max(worstAbs, d), math.Min(worstCos, cs)
					if d > 1e-4 || cs < 0.99999 {
						t.Errorf("%s seq %d (%d tokens): max abs diff %.3g, cosine %.7f", key, i, len(ref.IDs[i]), d, cs)
					}
				}
			}
			t.Logf("%s: worst max abs diff %.3g, worst cosine %.8f", c.key, worstAbs, worstCos)
			for i, ids := range ref.IDs {
				if d := maxAbsDiff(decoderHidden(t, m, [][]int32{ids})[0], hidden[i]); d > 1e-5 {
					t.Errorf("sequence %d alone differs from the batch by %.3g", i, d)
				}
			}
			// Mixed batch: logits for one sequence, hidden for another.
			mixed := []SeqBatch{
				{Tokens: ref.IDs[2], Cache: m.NewKVCache(len(ref.IDs[2])), WantLogits: true},
				{Tokens: ref.IDs[3], Cache: m.NewKVCache(len(ref.IDs[3])), WantHidden: true},
			}
			out := make([][]float32, 2)
			if err := m.Forward(mixed, out); err != nil {
				t.Fatal(err)
			}
			if len(out[0]) != m.Config.Vocab || maxAbsDiff(out[1], hidden[3]) > 1e-5 {
				t.Errorf("mixed batch: %d logits, hidden differs by %.3g", len(out[0]), maxAbsDiff(out[1], hidden[3]))
			}
			// Tied embeddings: the logits are the hidden state times the
			// embedding table.
			row := make([]float32, m.Config.Hidden)
			for _, tok := range []int{0, 7, 256} {
				m.embed.row(row, tok)
				var dot float64
				for j, v := range row {
					dot += float64(v) * float64(hidden[2][j])
				}
				if math.Abs(dot-float64(out[0][tok])) > 1e-4 {
					t.Errorf("logit %d: %g, hidden·embedding %g", tok, out[0][tok], dot)
				}
			}
		})
	}
}

func decoderHidden(t *testing.T, m *Model, seqs [][]int32) [][]float32 {
	t.Helper()
	batch := make([]SeqBatch, len(seqs))
	for i, s := range seqs {
		batch[i] = SeqBatch{Tokens: s, Cache: m.NewKVCache(len(s)), WantHidden: true}
	}
	out := make([][]float32, len(seqs))
	if err := m.Forward(batch, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDecoderHiddenTransformers checks WantHidden against transformers on
// the shared reference fixtures (qwen3 float32 and MLX 8-bit, qwen2 with
// tied embeddings): the final hidden state at the last prompt token, times
// the output head, gives transformers' last-position logits.
func TestDecoderHiddenTransformers(t *testing.T) {
	for _, name := range []string{"qwen3-float32", "qwen3-mlx8", "qwen2-float32"} {
		t.Run(name, func(t *testing.T) {
			dir := testutil.Fixture(t, "dev-random", name)
			raw, err := os.ReadFile(filepath.Join(dir, "reference.json"))
			if err != nil {
				t.Fatal(err)
			}
			var ref struct {
				PromptIDs  []int32   `json:"prompt_ids"`
				LastLogits []float64 `json:"last_logits"`
			}
			if err := json.Unmarshal(raw, &ref); err != nil {
				t.Fatal(err)
			}
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			h := decoderHidden(t, m, [][]int32{ref.PromptIDs})[0]
			logits := make([]float32, m.Config.Vocab)
			m.lmHead.mul(logits, h, 1)
			worst := 0.0
			for i, want := range ref.LastLogits {
				worst = math.Max(worst, math.Abs(float64(logits[i])-want))
			}
			if worst > 1e-4 {
				t.Errorf("hidden·lm_head differs from transformers' logits by up to %g", worst)
			}
			t.Logf("%s: %d prompt tokens, logits from the hidden state within %.3g of transformers", name, len(ref.PromptIDs), worst)
		})
	}
}
