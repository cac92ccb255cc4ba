package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
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

// toQ8 quantizes a cache of rows of n values into q8_0 blocks.
func toQ8(x []float32) []byte {
	out := make([]byte, Q8KVRowBytes(len(x)))
	QuantizeQ8KV(out, x)
	return out
}

func fromQ8(b []byte) []float32 {
	out := make([]float32, len(b)/34*Q8KVBlock)
	DequantQ8KV(out, b)
	return out
}

// TestAttentionQ8 compares the q8_0 cache's kernel at the current level
// with AttentionRef on the dequantized cache: the attnCases whose head size
// is a multiple of 32 (long caches split over chunks, windows, soft caps,
// large groups, prefill tiles) and a few short ones. TestLevels runs it at
// every level, the scalar C path included.
func TestAttentionQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(77, 78))
	cases := append([]struct {
		nq, pos0, nKV, heads, kvHeads, hd int
		softcap                           float32
		window                            int
	}{
		{1, 0, 1, 2, 1, 64, 0, 0},
		{7, 10, 17, 4, 4, 32, 0, 0},
		{5, 0, 5, 8, 2, 128, 50, 0},
		{2, 10, 12, 16, 1, 64, 0, 0},
		{1, 5, 6, 12, 1, 32, 0, 4},
	}, attnCases...)
	for _, tc := range cases {
		if tc.hd%Q8KVBlock != 0 {
			continue
		}
		name := fmt.Sprintf("%+v", tc)
		qs, kvs := tc.heads*tc.hd, tc.kvHeads*tc.hd
		q := randSlice(r, tc.nq*qs, 2)
		kq, vq := toQ8(randSlice(r, tc.nKV*kvs, 2)), toQ8(randSlice(r, tc.nKV*kvs, 1))
		scale := float32(1 / math.Sqrt(float64(tc.hd)))
		want, got := make([]float32, tc.nq*qs), make([]float32, tc.nq*qs)
		AttentionRef(want, q, tc.nq, tc.pos0, fromQ8(kq), fromQ8(vq), tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		AttentionQ8(got, q, tc.nq, tc.pos0, kq, vq, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		closeTo(t, name+" q8_0", got, want, 1e-5)
	}
}

// TestBatchInvarianceAttentionQ8: with a q8_0 cache too, every row of a
// call gives the bits it gives alone, at 1, 2 and 3 threads.
func TestBatchInvarianceAttentionQ8(t *testing.T) {
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(79, 80))
	for _, tc := range attnCases {
		if tc.hd%Q8KVBlock != 0 {
			continue
		}
		qs, kvs := tc.heads*tc.hd, tc.kvHeads*tc.hd
		q := randSlice(r, tc.nq*qs, 2)
		kq, vq := toQ8(randSlice(r, tc.nKV*kvs, 2)), toQ8(randSlice(r, tc.nKV*kvs, 1))
		scale := float32(1 / math.Sqrt(float64(tc.hd)))
		SetThreads(1)
		want := make([]float32, tc.nq*qs)
		for i := 0; i < tc.nq; i++ {
			AttentionQ8(want[i*qs:], q[i*qs:], 1, tc.pos0+i, kq, vq, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		}
		for _, th := range []int{1, 2, 3} {
			SetThreads(th)
			got := make([]float32, tc.nq*qs)
			AttentionQ8(got, q, tc.nq, tc.pos0, kq, vq, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
			sameBits(t, fmt.Sprintf("%+v q8_0 threads=%d", tc, th), got, want)
		}
	}
}

// TestQuantizeQ8KV checks the q8_0 blocks: known codes and scale, every
// value within half a step of the input, a zero block, and the clamp at
// ±127 when the half scale rounds below amax/127.
func TestQuantizeQ8KV(t *testing.T) {
	x := make([]float32, 64)
	for i := range 32 {
		x[i] = float32(i-16) / 16 * 1.27 // amax 1.27: scale 0.01
	}
	b := toQ8(x)
	if len(b) != 68 {
		t.Fatalf("64 values took %d bytes, want 68", len(b))
	}
	if d := quant.F16ToF32(uint16(b[0]) | uint16(b[1])<<8); math.Abs(float64(d)-0.01) > 1e-5 {
		t.Errorf("scale %g, want 0.01", d)
	}
	if c := int8(b[2]); c != -127 {
		t.Errorf("code of -1.27 is %d, want -127", c)
	}
	if b[34] != 0 || b[35] != 0 || slices.ContainsFunc(b[36:], func(c byte) bool { return c != 0 }) {
		t.Errorf("a block of zeros gave %v", b[34:])
	}
	r := rand.New(rand.NewPCG(81, 82))
	y := randSlice(r, 32*100, 3)
	y[5] = 65504 * 127 // a scale that half rounds to its largest finite value
	got := fromQ8(toQ8(y))
	for blk := range 100 {
		var amax float64
		for _, v := range y[blk*32 : blk*32+32] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		step := amax / 127 * (1 + 1e-3) // the half scale is within 2^-11 of amax/127
		for i := blk * 32; i < blk*32+32; i++ {
			if e := math.Abs(float64(got[i] - y[i])); e > step/2*(1+1e-3) {
				t.Fatalf("value %d: %g back as %g (step %g)", i, y[i], got[i], step)
			}
		}
	}
	for _, n := range []int{31, 33} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("QuantizeQ8KV of %d values did not panic", n)
				}
			}()
			QuantizeQ8KV(make([]byte, 100), make([]float32, n))
		}()
	}
}
