package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// attnCases cross the flash kernel's cache chunks (128 positions) and
// query tiles (16 rows): long caches, windows starting mid-chunk, head
// sizes that are and are not multiples of the vector width, groups of
// more than 8 heads, and decode batches that split over chunks (nq <=
// attnSplitRows) beside prefill tiles.
var attnCases = []struct {
	nq, pos0, nKV, heads, kvHeads, hd int
	softcap                           float32
	window                            int
}{
	{1, 4000, 4001, 14, 2, 64, 0, 0},
	{4, 1000, 1004, 8, 1, 64, 0, 0},
	{3, 600, 603, 14, 2, 64, 30, 300},
	{20, 300, 320, 14, 2, 64, 0, 0},
	{37, 90, 127, 16, 2, 64, 0, 0},
	{18, 250, 268, 4, 2, 80, 0, 0},
	{5, 1000, 1005, 12, 1, 96, 0, 200},
	{17, 120, 140, 10, 1, 7, 0, 0},
	{2, 126, 130, 4, 4, 32, 0, 0},
	{33, 0, 33, 14, 2, 64, 0, 5},
}

// TestAttentionChunks compares the flash kernel with AttentionRef, for a
// float and a half cache.
func TestAttentionChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	for _, tc := range attnCases {
		name := fmt.Sprintf("%+v", tc)
		qs, kvs := tc.heads*tc.hd, tc.kvHeads*tc.hd
		q := randSlice(r, tc.nq*qs, 2)
		k := randSlice(r, tc.nKV*kvs, 2)
		v := randSlice(r, tc.nKV*kvs, 1)
		scale := float32(1 / math.Sqrt(float64(tc.hd)))
		want, got := make([]float32, tc.nq*qs), make([]float32, tc.nq*qs)
		AttentionRef(want, q, tc.nq, tc.pos0, k, v, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		Attention(got, q, tc.nq, tc.pos0, k, v, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		closeTo(t, name, got, want, 1e-5)

		kh, vh := toF16(k), toF16(v)
		AttentionRef(want, q, tc.nq, tc.pos0, fromF16(kh), fromF16(vh), tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		AttentionF16(got, q, tc.nq, tc.pos0, kh, vh, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		closeTo(t, name+" f16", got, want, 1e-5)
	}
}

// TestBatchInvarianceAttentionChunks checks, for both caches, that every
// row of a call gives the bits it gives alone (a decode call, split over
// the cache's chunks), at 1, 2 and 3 threads.
func TestBatchInvarianceAttentionChunks(t *testing.T) {
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(73, 74))
	for _, tc := range attnCases {
		qs, kvs := tc.heads*tc.hd, tc.kvHeads*tc.hd
		q := randSlice(r, tc.nq*qs, 2)
		k := randSlice(r, tc.nKV*kvs, 2)
		v := randSlice(r, tc.nKV*kvs, 1)
		kh, vh := toF16(k), toF16(v)
		scale := float32(1 / math.Sqrt(float64(tc.hd)))
		for _, half := range []bool{false, true} {
			run := func(out, q []float32, nq, pos0 int) {
				if half {
					AttentionF16(out, q, nq, pos0, kh, vh, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
				} else {
					Attention(out, q, nq, pos0, k, v, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
				}
			}
			SetThreads(1)
			want := make([]float32, tc.nq*qs)
			for i := 0; i < tc.nq; i++ {
				run(want[i*qs:], q[i*qs:], 1, tc.pos0+i)
			}
			for _, th := range []int{1, 2, 3} {
				SetThreads(th)
				got := make([]float32, tc.nq*qs)
				run(got, q, tc.nq, tc.pos0)
				sameBits(t, fmt.Sprintf("%+v half=%v threads=%d", tc, half, th), got, want)
			}
		}
	}
}

// TestAttentionNoAlloc: the split path's partials live in the pool.
func TestAttentionNoAlloc(t *testing.T) {
	r := rand.New(rand.NewPCG(75, 76))
	const heads, kvHeads, hd, nKV = 14, 2, 64, 1000
	q := randSlice(r, heads*hd, 1)
	kh := toF16(randSlice(r, nKV*kvHeads*hd, 1))
	out := make([]float32, heads*hd)
	AttentionF16(out, q, 1, nKV-1, kh, kh, nKV, heads, kvHeads, hd, 0.125, 0, 0)
	if a := testing.AllocsPerRun(20, func() { AttentionF16(out, q, 1, nKV-1, kh, kh, nKV, heads, kvHeads, hd, 0.125, 0, 0) }); a != 0 {
		t.Errorf("AttentionF16 decode allocates %v times per call", a)
	}
}
