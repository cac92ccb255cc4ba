package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// batchMatMul is one weight in one format, multiplied by n activation rows.
type batchMatMul struct {
	name string
	mm   func(out, x []float32, n int)
}

// batchFormats makes a random rows x cols weight in every format whose
// block size divides cols.
func batchFormats(r *rand.Rand, rows, cols int) []batchMatMul {
	w := randSlice(r, rows*cols, 1)
	wb, wh := toHalf(w, quant.F32ToBF16), toHalf(w, quant.F32ToF16)
	fs := []batchMatMul{
		{"F32", func(out, x []float32, n int) { MatMulF32(out, x, n, w, rows, cols) }},
		{"BF16", func(out, x []float32, n int) { MatMulBF16(out, x, n, wb, rows, cols) }},
		{"F16", func(out, x []float32, n int) { MatMulF16(out, x, n, wh, rows, cols) }},
	}
	for _, bits := range mlxBits {
		for _, g := range mlxGroups {
			if cols%g != 0 {
				continue
			}
			wq, sc, bi := quantizeMLX(w, rows, cols, bits, g)
			fs = append(fs, batchMatMul{fmt.Sprintf("MLX%d_g%d", bits, g), func(out, x []float32, n int) {
				MatMulMLX(out, x, n, wq, sc, bi, rows, cols, bits, g)
			}})
		}
	}
	for _, f := range ggufFormats {
		if cols%f.elems != 0 {
			continue
		}
		wq := f.random(r, rows, cols)
		fs = append(fs, batchMatMul{f.name, func(out, x []float32, n int) { f.mm(out, x, n, wq, rows, cols) }})
	}
	return fs
}

// sameBits fails unless got and want are identical bit for bit.
func sameBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d: got %g (%#08x) want %g (%#08x)", name, i,
				got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// TestBatchInvariance checks that a matmul over n activation rows gives,
// bit for bit, what n separate single-row calls give, at several thread
// counts: batching must never change a sequence's numbers, so that seeded
// sampling reproduces.
func TestBatchInvariance(t *testing.T) {
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(41, 42))
	shapes := [][2]int{{1, 256}, {5, 512}, {19, 256}, {37, 768}, {70, 1024}, {3, 96}}
	for i := 0; i < 3; i++ {
		shapes = append(shapes, [2]int{1 + r.IntN(80), 256 * (1 + r.IntN(4))})
	}
	for _, shape := range shapes {
		rows, cols := shape[0], shape[1]
		for _, f := range batchFormats(r, rows, cols) {
			for _, n := range []int{2, 3, 4, 5, 9, 17} {
				x := randSlice(r, n*cols, 1)
				SetThreads(1)
				want := make([]float32, n*rows)
				for b := 0; b < n; b++ {
					f.mm(want[b*rows:(b+1)*rows], x[b*cols:(b+1)*cols], 1)
				}
				for _, th := range []int{1, 2, 3} {
					SetThreads(th)
					got := make([]float32, n*rows)
					f.mm(got, x, n)
					sameBits(t, fmt.Sprintf("%s %dx%d n=%d threads=%d", f.name, rows, cols, n, th), got, want)
					one := make([]float32, rows)
					f.mm(one, x[(n-1)*cols:], 1)
					sameBits(t, fmt.Sprintf("%s %dx%d last row alone, threads=%d", f.name, rows, cols, th),
						one, want[(n-1)*rows:])
				}
			}
		}
	}
}

// TestBatchInvarianceAttention checks that query rows computed together
// equal each row computed alone at its position, at several thread counts.
func TestBatchInvarianceAttention(t *testing.T) {
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(43, 44))
	for _, tc := range []struct {
		nq, pos0, nKV, heads, kvHeads, hd int
		softcap                           float32
		window                            int
	}{
		{7, 10, 17, 4, 4, 32, 0, 0},
		{16, 0, 16, 14, 2, 64, 0, 0},
		{5, 40, 60, 8, 2, 128, 30, 0},
		{9, 30, 39, 4, 1, 64, 0, 8},
		{4, 3, 7, 16, 1, 80, 0, 0},
		{33, 0, 33, 3, 3, 7, 0, 0},
	} {
		qs, kvs := tc.heads*tc.hd, tc.kvHeads*tc.hd
		q := randSlice(r, tc.nq*qs, 2)
		k := randSlice(r, tc.nKV*kvs, 2)
		v := randSlice(r, tc.nKV*kvs, 1)
		scale := float32(1 / math.Sqrt(float64(tc.hd)))
		SetThreads(1)
		want := make([]float32, tc.nq*qs)
		for i := 0; i < tc.nq; i++ {
			Attention(want[i*qs:], q[i*qs:], 1, tc.pos0+i, k, v, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		}
		for _, th := range []int{1, 2, 3} {
			SetThreads(th)
			got := make([]float32, tc.nq*qs)
			Attention(got, q, tc.nq, tc.pos0, k, v, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
			sameBits(t, fmt.Sprintf("%+v threads=%d", tc, th), got, want)
		}
	}
}

// TestBatchInvarianceRows checks RMSNorm and RoPE row by row.
func TestBatchInvarianceRows(t *testing.T) {
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(45, 46))
	for _, th := range []int{1, 2, 3} {
		SetThreads(th)
		for _, dim := range []int{7, 64, 896, 2051} {
			const n = 11
			x := randSlice(r, n*dim, 3)
			w := randSlice(r, dim, 1)
			got, want := make([]float32, n*dim), make([]float32, n*dim)
			RMSNorm(got, x, w, n, dim, 1e-6, dim%2 == 1)
			for b := 0; b < n; b++ {
				RMSNorm(want[b*dim:], x[b*dim:], w, 1, dim, 1e-6, dim%2 == 1)
			}
			sameBits(t, fmt.Sprintf("RMSNorm dim=%d threads=%d", dim, th), got, want)
		}
		for _, neox := range []bool{false, true} {
			const n, heads, hd, rot = 9, 6, 64, 48
			x := randSlice(r, n*heads*hd, 2)
			pos := make([]int32, n)
			for i := range pos {
				pos[i] = int32(r.IntN(5000))
			}
			inv := make([]float32, rot/2)
			for i := range inv {
				inv[i] = float32(math.Pow(10000, -2*float64(i)/rot))
			}
			got := append([]float32(nil), x...)
			want := append([]float32(nil), x...)
			RoPE(got, n, heads, hd, rot, pos, inv, neox, 1)
			for b := 0; b < n; b++ {
				RoPE(want[b*heads*hd:], 1, heads, hd, rot, pos[b:], inv, neox, 1)
			}
			sameBits(t, fmt.Sprintf("RoPE neox=%v threads=%d", neox, th), got, want)
		}
	}
}

// TestMatMulFloatTiles covers the float formats at batch sizes that fill the
// many-row tile kernel (AVX-512: 4 weight rows × 6 activation rows) and
// leave ragged edges: weight rows that do not fill a tile, inner sizes with
// a scalar tail past the last whole 32-element block, activation rows past
// the last whole tile. Each result must equal, bit for bit, the row computed
// alone (the one-row kernel), and the reference to float rounding.
func TestMatMulFloatTiles(t *testing.T) {
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(47, 48))
	for _, shape := range [][2]int{{4, 32}, {7, 33}, {13, 770}, {64, 96}, {33, 47}, {9, 16}, {21, 300}} {
		rows, cols := shape[0], shape[1]
		w := randSlice(r, rows*cols, 1)
		wb, wh := toHalf(w, quant.F32ToBF16), toHalf(w, quant.F32ToF16)
		for _, f := range []struct {
			name string
			mm   func(out, x []float32, n int)
			ref  func(out, x []float32, n int)
		}{
			{"F32", func(out, x []float32, n int) { MatMulF32(out, x, n, w, rows, cols) },
				func(out, x []float32, n int) { MatMulF32Ref(out, x, n, w, rows, cols) }},
			{"BF16", func(out, x []float32, n int) { MatMulBF16(out, x, n, wb, rows, cols) },
				func(out, x []float32, n int) { MatMulBF16Ref(out, x, n, wb, rows, cols) }},
			{"F16", func(out, x []float32, n int) { MatMulF16(out, x, n, wh, rows, cols) },
				func(out, x []float32, n int) { MatMulF16Ref(out, x, n, wh, rows, cols) }},
		} {
			for _, n := range []int{6, 7, 12, 13, 31} {
				name := fmt.Sprintf("%s %dx%d n=%d", f.name, rows, cols, n)
				x := randSlice(r, n*cols, 1)
				want := make([]float32, n*rows)
				f.ref(want, x, n)
				alone := make([]float32, n*rows)
				SetThreads(1)
				for b := 0; b < n; b++ {
					f.mm(alone[b*rows:(b+1)*rows], x[b*cols:(b+1)*cols], 1)
				}
				for _, th := range []int{1, 2} {
					SetThreads(th)
					got := make([]float32, n*rows)
					f.mm(got, x, n)
					closeTo(t, name, got, want, 1e-5)
					sameBits(t, fmt.Sprintf("%s threads=%d against rows alone", name, th), got, alone)
				}
			}
		}
	}
}
