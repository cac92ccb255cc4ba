package model

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/kernels"
)

// kvQ8Tolerance bounds the log-probability error, against transformers,
// of the fixtures run with a q8_0 KV cache (float activations). Measured
// (AMD EPYC Zen 5, AVX-512) on the 21 shared fixtures whose head size is a
// multiple of 32, over checkReference's prefill, token-by-token and greedy
// passes: worst 0.069 with q8_0 KV (dev-trained-more-b/gemma2-mlx8), against 0.0061
// with f16 KV on the same runs. The bound is 0.1: the measured worst with
// about 45% margin, for other SIMD levels' rounding.
const kvQ8Tolerance = 0.1

// TestKVQ8Fixtures measures the q8_0 KV cache on the shared fixtures: each
// fixture with a head size that is a multiple of 32 runs checkReference's
// prefill, token-by-token and greedy passes with f16 and then q8_0 keys and
// values, and both worst errors are logged. Fixtures with other head sizes
// must refuse q8_0 (ErrKVQ8HeadDim) and keep f16.
func TestKVQ8Fixtures(t *testing.T) {
	worst16, worst8, n := 0.0, 0.0, 0
	for _, a := range fixtureArchives {
		t.Run(a.name, func(t *testing.T) {
			for _, dir := range fixtureModels(t, a.name) {
				t.Run(filepath.Base(dir), func(t *testing.T) {
					m, err := Load(dir)
					if err != nil {
						t.Fatal(err)
					}
					hd := m.Config.HeadDim
					err = m.SetKVStorage(KVQ8)
					m.Close()
					if hd%kernels.Q8KVBlock != 0 {
						if !errors.Is(err, ErrKVQ8HeadDim) || m.KVStorage() != KVF16 {
							t.Errorf("q8_0 with head size %d: %v, storage %v; want ErrKVQ8HeadDim and f16", hd, err, m.KVStorage())
						}
						t.Skipf("head size %d: q8_0 falls back to f16", hd)
					}
					if err != nil {
						t.Fatal(err)
					}
					w16 := checkReferenceOn(t, dir, kvQ8Tolerance, func(t *testing.T, m *Model) { must(t, m.SetKVStorage(KVF16)) })
					w8 := checkReferenceOn(t, dir, kvQ8Tolerance, func(t *testing.T, m *Model) { must(t, m.SetKVStorage(KVQ8)) })
					t.Logf("worst logprob error: f16 KV %.4f, q8_0 KV %.4f", w16, w8)
					worst16, worst8, n = math.Max(worst16, w16), math.Max(worst8, w8), n+1
				})
			}
		})
	}
	t.Logf("%d fixtures: worst logprob error f16 KV %.4f, q8_0 KV %.4f (tolerance %g)", n, worst16, worst8, kvQ8Tolerance)
}

// TestKVQ8Greedy decodes each trained fixture's chat reply greedily with
// f16 and with q8_0 KV. f16 must give transformers' reply. q8_0 gives it on
// 16 of the 18 trained fixtures with a head size that is a multiple of 32;
// on qwen2-mlx4 (dev-trained-more-a) and mistral-mlx4 (dev-trained-more-b)
// it picks another token at a near tie (logged), so the test requires only
// that where q8_0 departs, transformers' token was within kvQ8Tolerance of
// its choice.
func TestKVQ8Greedy(t *testing.T) {
	same, total := 0, 0
	for _, a := range fixtureArchives {
		t.Run(a.name, func(t *testing.T) {
			for _, dir := range fixtureModels(t, a.name) {
				ref := loadReference(t, dir)
				if ref.TrainedSteps == 0 {
					continue
				}
				t.Run(filepath.Base(dir), func(t *testing.T) {
					m, err := Load(dir)
					if err != nil {
						t.Fatal(err)
					}
					defer m.Close()
					if m.Config.HeadDim%kernels.Q8KVBlock != 0 {
						t.Skipf("head size %d: no q8_0 KV", m.Config.HeadDim)
					}
					must(t, m.SetKVStorage(KVF16))
					if step, gap := greedyChat(t, m, ref); step >= 0 {
						t.Errorf("f16 KV: the reply departs from transformers' at step %d (logprob gap %.4f)", step, gap)
					}
					must(t, m.SetKVStorage(KVQ8))
					step, gap := greedyChat(t, m, ref)
					total++
					if step < 0 {
						same++
						return
					}
					t.Logf("q8_0 KV: the reply departs from transformers' at step %d of %d, logprob gap %.4f", step, len(ref.Chat.ReplyIDs), gap)
					if gap > kvQ8Tolerance {
						t.Errorf("q8_0 KV: departs at step %d by a logprob gap of %.4f, above %g", step, gap, kvQ8Tolerance)
					}
				})
			}
		})
	}
	t.Logf("q8_0 KV: %d of %d trained fixtures give transformers' greedy chat reply", same, total)
}

// greedyChat decodes the reference's chat reply greedily and returns the
// first step where it departs from transformers' (-1 if none) with the
// log-probability gap between our token and theirs there.
func greedyChat(t *testing.T, m *Model, ref reference) (int, float64) {
	t.Helper()
	c := m.NewKVCache(len(ref.Chat.PromptIDs) + len(ref.Chat.ReplyIDs) + 1)
	out := [][]float32{nil}
	tokens := ref.Chat.PromptIDs
	for i, want := range ref.Chat.ReplyIDs {
		if err := m.Forward([]SeqBatch{{Tokens: tokens, Cache: c, WantLogits: true}}, out); err != nil {
			t.Fatal(err)
		}
		if got := argmax(out[0]); got != want {
			lp := logSoftmax(out[0])
			return i, lp[got] - lp[want]
		}
		tokens = []int32{want}
	}
	return -1, 0
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
