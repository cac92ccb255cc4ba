package model

import (
	"errors"
	"math"
	"path/filepath"
	"testing"
)

// TestBatchEqualsAlone runs sequences of different lengths, mixing prefill
// and decode, in one Forward and checks each against the same sequence run
// alone. The float32 random models cover every architecture switch.
func TestBatchEqualsAlone(t *testing.T) {
	for _, dir := range fixtureModels(t, "dev-random") {
		if !hasSuffix(dir, "-float32") {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ref := loadReference(t, dir)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			p := ref.PromptIDs
			seqs := [][]int32{p[:5], p, p[3:10], append(append([]int32{}, p...), ref.GreedyIDs...)}
			// Step 1 prefills all; step 2 decodes one token each, except the
			// third sequence, which gets a three-token chunk and no logits.
			step2 := [][]int32{{7}, {8}, {9, 10, 11}, {12}}
			want := make([][][]float32, len(seqs))
			for i, s := range seqs {
				c := m.NewKVCache(64)
				out := [][]float32{nil}
				for _, toks := range [][]int32{s, step2[i]} {
					if err := m.Forward([]SeqBatch{{Tokens: toks, Cache: c, WantLogits: true}}, out); err != nil {
						t.Fatal(err)
					}
					want[i] = append(want[i], append([]float32(nil), out[0]...))
				}
			}
			caches := make([]*KVCache, len(seqs))
			batch := make([]SeqBatch, len(seqs))
			for i := range seqs {
				caches[i] = m.NewKVCache(64)
				batch[i] = SeqBatch{Tokens: seqs[i], Cache: caches[i], WantLogits: true}
			}
			out := make([][]float32, len(seqs))
			if err := m.Forward(batch, out); err != nil {
				t.Fatal(err)
			}
			for i := range seqs {
				compareLogits(t, "prefill seq "+string(rune('A'+i)), out[i], want[i][0])
			}
			for i := range seqs {
				batch[i] = SeqBatch{Tokens: step2[i], Cache: caches[i], WantLogits: i != 2}
				out[i] = nil
			}
			if err := m.Forward(batch, out); err != nil {
				t.Fatal(err)
			}
			for i := range seqs {
				if i == 2 {
					if out[i] != nil {
						t.Errorf("seq C did not want logits but got some")
					}
					continue
				}
				compareLogits(t, "decode seq "+string(rune('A'+i)), out[i], want[i][1])
			}
			if caches[2].Len() != len(seqs[2])+3 {
				t.Errorf("seq C cache holds %d tokens, want %d", caches[2].Len(), len(seqs[2])+3)
			}
		})
	}
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

func compareLogits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", what, len(got), len(want))
	}
	for j := range got {
		if d := math.Abs(float64(got[j] - want[j])); d > 1e-4 {
			t.Fatalf("%s: logit %d is %g batched, %g alone", what, j, got[j], want[j])
		}
	}
}

// TestCacheReuse checks Truncate and Reset: recomputing after rewinding the
// cache gives the same logits as the first time.
func TestCacheReuse(t *testing.T) {
	dir := testFixture(t, "dev-random", "gemma2-float32")
	ref := loadReference(t, dir)
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.NewKVCache(32)
	out := [][]float32{nil}
	p := ref.PromptIDs
	if err := m.Forward([]SeqBatch{{Tokens: p, Cache: c, WantLogits: true}}, out); err != nil {
		t.Fatal(err)
	}
	full := append([]float32(nil), out[0]...)
	if err := c.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward([]SeqBatch{{Tokens: p[5:], Cache: c, WantLogits: true}}, out); err != nil {
		t.Fatal(err)
	}
	compareLogits(t, "after truncate", out[0], full)
	c.Reset()
	if err := m.Forward([]SeqBatch{{Tokens: p, Cache: c, WantLogits: true}}, out); err != nil {
		t.Fatal(err)
	}
	compareLogits(t, "after reset", out[0], full)
	if err := c.Truncate(99); err == nil {
		t.Error("Truncate past the end succeeded")
	}
}

func TestForwardErrors(t *testing.T) {
	dir := testFixture(t, "dev-random", "llama-mlx4")
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	other, err := Load(testFixture(t, "dev-random", "qwen3-float32"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c := m.NewKVCache(4)
	cases := []struct {
		name  string
		batch []SeqBatch
		slots int
	}{
		{"slots", []SeqBatch{{Tokens: []int32{1}, Cache: c}}, 0},
		{"nil cache", []SeqBatch{{Tokens: []int32{1}}}, 1},
		{"foreign cache", []SeqBatch{{Tokens: []int32{1}, Cache: other.NewKVCache(4)}}, 1},
		{"token out of range", []SeqBatch{{Tokens: []int32{int32(m.Config.Vocab)}, Cache: c}}, 1},
		{"negative token", []SeqBatch{{Tokens: []int32{-1}, Cache: c}}, 1},
		{"too long", []SeqBatch{{Tokens: []int32{1, 2, 3, 4, 5}, Cache: c}}, 1},
		{"logits without tokens", []SeqBatch{{Cache: c, WantLogits: true}}, 1},
		{"cache twice", []SeqBatch{{Tokens: []int32{1}, Cache: c}, {Tokens: []int32{2}, Cache: c}}, 2},
	}
	for _, tc := range cases {
		err := m.Forward(tc.batch, make([][]float32, tc.slots))
		if !errors.Is(err, ErrBatch) {
			t.Errorf("%s: error %v, want ErrBatch", tc.name, err)
		}
	}
	if c.Len() != 0 {
		t.Errorf("failed calls changed the cache: %d tokens", c.Len())
	}
	m.Close()
	if err := m.Forward([]SeqBatch{{Tokens: []int32{1}, Cache: c}}, make([][]float32, 1)); err == nil {
		t.Error("forward after Close succeeded")
	}
}

// testFixture returns one model folder of a fixture archive.
func testFixture(t *testing.T, archive, model string) string {
	return filepath.Join(fixtureRoot(t, archive), model)
}

// TestDecodeAllocs checks that a steady-state decode step allocates
// nothing, with the default KV storage and with q8_0 (on a fixture whose
// head size allows it).
func TestDecodeAllocs(t *testing.T) {
	t.Run("default", func(t *testing.T) { checkDecodeAllocs(t, "dev-random", "phi3-mlx4", nil) })
	t.Run("q8_0", func(t *testing.T) {
		checkDecodeAllocs(t, "dev-random", "qwen3-mlx4", func(m *Model) error { return m.SetKVStorage(KVQ8) })
	})
}

func checkDecodeAllocs(t *testing.T, archive, name string, setup func(*Model) error) {
	m, err := Load(testFixture(t, archive, name))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if setup != nil {
		if err := setup(m); err != nil {
			t.Fatal(err)
		}
	}
	caches := []*KVCache{m.NewKVCache(1024), m.NewKVCache(1024)}
	out := make([][]float32, 2)
	batch := []SeqBatch{{Tokens: []int32{3, 4, 5}, Cache: caches[0], WantLogits: true}, {Tokens: []int32{6}, Cache: caches[1], WantLogits: true}}
	if err := m.Forward(batch, out); err != nil {
		t.Fatal(err)
	}
	batch[0].Tokens = []int32{7}
	// Warm the caches' capacity so growth does not count.
	for _, c := range caches {
		c.reserve(600)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if err := m.Forward(batch, out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("decode step allocates %v times", allocs)
	}
}
