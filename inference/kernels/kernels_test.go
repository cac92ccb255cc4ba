package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

var mlxBits = []int{2, 3, 4, 5, 6, 8}
var mlxGroups = []int{32, 64, 128}

func TestMatMulKnown(t *testing.T) {
	// W = [[1 2 3] [4 5 6]], x = [[1 0 -1] [2 1 0]].
	w := []float32{1, 2, 3, 4, 5, 6}
	x := []float32{1, 0, -1, 2, 1, 0}
	want := []float32{-2, -2, 4, 13}
	for _, tc := range []struct {
		name string
		f    func(out []float32)
	}{
		{"F32Ref", func(out []float32) { MatMulF32Ref(out, x, 2, w, 2, 3) }},
		{"F32", func(out []float32) { MatMulF32(out, x, 2, w, 2, 3) }},
		{"BF16", func(out []float32) { MatMulBF16(out, x, 2, toHalf(w, quant.F32ToBF16), 2, 3) }},
		{"F16", func(out []float32) { MatMulF16(out, x, 2, toHalf(w, quant.F32ToF16), 2, 3) }},
	} {
		out := make([]float32, 4)
		tc.f(out)
		for i := range want {
			if out[i] != want[i] {
				t.Errorf("%s: out = %v, want %v", tc.name, out, want)
				break
			}
		}
	}
}

func toHalf(w []float32, conv func(float32) uint16) []uint16 {
	h := make([]uint16, len(w))
	for i, v := range w {
		h[i] = conv(v)
	}
	return h
}

func TestDequantMLXRowKnown(t *testing.T) {
	// 4 bits: element 0 is bits 0-3 of word 0, element 1 bits 4-7 (LSB first).
	wq := []uint32{0x76543210, 0xfedcba98, 0, 0}
	dst := make([]float32, 32)
	dequantMLXRow(dst, wq, []float32{2}, []float32{-1}, 32, 4, 32)
	for j := 0; j < 16; j++ {
		if want := float32(2*j - 1); dst[j] != want {
			t.Fatalf("4-bit element %d = %g, want %g", j, dst[j], want)
		}
	}
	// 3 bits: element 10 occupies bits 30-32 and straddles words 0 and 1.
	wq = make([]uint32, 3)
	wq[0] = 0b10 << 30 // low two bits of element 10 = 2
	wq[1] = 1          // high bit of element 10 = 4
	dequantMLXRow(dst, wq, []float32{1}, []float32{0}, 32, 3, 32)
	if dst[10] != 6 || dst[9] != 0 || dst[11] != 0 {
		t.Fatalf("3-bit straddle: elements 9..11 = %v, want [0 6 0]", dst[9:12])
	}
}

func TestMLXQuantizeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 3, 256
	w := randSlice(r, rows*cols, 1)
	for _, bits := range mlxBits {
		for _, g := range mlxGroups {
			wq, sc, bi := quantizeMLX(w, rows, cols, bits, g)
			if len(wq) != rows*cols*bits/32 {
				t.Fatalf("bits %d: packed %d words, want %d", bits, len(wq), rows*cols*bits/32)
			}
			// Half a step, or a whole one where the refitted scale leaves the
			// far extreme clamped (MLX refits s so the edge is exact).
			negative := false
			row := make([]float32, cols)
			for o := 0; o < rows; o++ {
				words, groups := cols*bits/32, cols/g
				dequantMLXRow(row, wq[o*words:(o+1)*words], sc[o*groups:(o+1)*groups], bi[o*groups:(o+1)*groups], cols, bits, g)
				for j, v := range row {
					s := sc[o*groups+j/g]
					negative = negative || s < 0
					if d := math.Abs(float64(v - w[o*cols+j])); d > math.Abs(float64(s))*1.0001+1e-6 {
						t.Fatalf("bits %d group %d: w[%d][%d] = %g decoded as %g (scale %g)", bits, g, o, j, w[o*cols+j], v, s)
					}
				}
			}
			if !negative {
				t.Errorf("bits %d group %d: no negative scale exercised", bits, g)
			}
		}
	}
}

func TestMatMulRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, shape := range [][2]int{{1, 32}, {3, 5}, {9, 37}, {7, 64}, {33, 96}, {50, 256}, {17, 1024}} {
		rows, cols := shape[0], shape[1]
		for _, n := range []int{1, 2, 3, 4, 5, 7} {
			name := fmt.Sprintf("n%d_%dx%d", n, rows, cols)
			w := randSlice(r, rows*cols, 1)
			x := randSlice(r, n*cols, 1)
			want, got := make([]float32, n*rows), make([]float32, n*rows)
			MatMulF32Ref(want, x, n, w, rows, cols)
			MatMulF32(got, x, n, w, rows, cols)
			closeTo(t, "F32 "+name, got, want, 1e-5)

			wb := toHalf(w, quant.F32ToBF16)
			MatMulBF16Ref(want, x, n, wb, rows, cols)
			MatMulBF16(got, x, n, wb, rows, cols)
			closeTo(t, "BF16 "+name, got, want, 1e-5)

			wh := toHalf(w, quant.F32ToF16)
			MatMulF16Ref(want, x, n, wh, rows, cols)
			MatMulF16(got, x, n, wh, rows, cols)
			closeTo(t, "F16 "+name, got, want, 1e-5)

			for _, bits := range mlxBits {
				for _, g := range mlxGroups {
					if cols%g != 0 {
						continue
					}
					wq, sc, bi := quantizeMLX(w, rows, cols, bits, g)
					MatMulMLXRef(want, x, n, wq, sc, bi, rows, cols, bits, g)
					MatMulMLX(got, x, n, wq, sc, bi, rows, cols, bits, g)
					closeTo(t, fmt.Sprintf("MLX%d g%d %s", bits, g, name), got, want, 1e-5)
				}
			}
		}
	}
}

// TestMatMulMLXRefNaive checks the quantized reference against a product
// with the dequantized matrix written out in full.
func TestMatMulMLXRefNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n, rows, cols = 3, 5, 128
	x := randSlice(r, n*cols, 1)
	w := randSlice(r, rows*cols, 2)
	for _, bits := range mlxBits {
		wq, sc, bi := quantizeMLX(w, rows, cols, bits, 32)
		deq := make([]float32, rows*cols)
		words, groups := cols*bits/32, cols/32
		for o := 0; o < rows; o++ {
			dequantMLXRow(deq[o*cols:(o+1)*cols], wq[o*words:], sc[o*groups:], bi[o*groups:], cols, bits, 32)
		}
		want, got := make([]float32, n*rows), make([]float32, n*rows)
		MatMulF32Ref(want, x, n, deq, rows, cols)
		MatMulMLXRef(got, x, n, wq, sc, bi, rows, cols, bits, 32)
		closeTo(t, fmt.Sprintf("bits %d", bits), got, want, 1e-6)
	}
}

func TestThreadCounts(t *testing.T) {
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(7, 8))
	const n, rows, cols = 3, 301, 512
	w := randSlice(r, rows*cols, 1)
	x := randSlice(r, n*cols, 1)
	wq, sc, bi := quantizeMLX(w, rows, cols, 4, 64)
	want := make([]float32, n*rows)
	MatMulMLXRef(want, x, n, wq, sc, bi, rows, cols, 4, 64)
	for _, th := range []int{1, 2, 3, 8} {
		SetThreads(th)
		if Threads() != th {
			t.Fatalf("Threads() = %d after SetThreads(%d)", Threads(), th)
		}
		got := make([]float32, n*rows)
		MatMulMLX(got, x, n, wq, sc, bi, rows, cols, 4, 64)
		closeTo(t, fmt.Sprintf("threads %d", th), got, want, 1e-5)
	}
}

func TestNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const n, rows, cols = 2, 256, 512
	w := randSlice(r, rows*cols, 1)
	x := randSlice(r, n*cols, 1)
	wq, sc, bi := quantizeMLX(w, rows, cols, 4, 64)
	out := make([]float32, n*rows)
	q := randSlice(r, 4*8*64, 1)
	kv := randSlice(r, 64*2*64, 1)
	att := make([]float32, len(q))
	MatMulMLX(out, x, n, wq, sc, bi, rows, cols, 4, 64)
	Attention(att, q, 4, 60, kv, kv, 64, 8, 2, 64, 0.125, 0, 0)
	if a := testing.AllocsPerRun(20, func() { MatMulMLX(out, x, n, wq, sc, bi, rows, cols, 4, 64) }); a != 0 {
		t.Errorf("MatMulMLX allocates %v times per call", a)
	}
	if a := testing.AllocsPerRun(20, func() { Attention(att, q, 4, 60, kv, kv, 64, 8, 2, 64, 0.125, 0, 0) }); a != 0 {
		t.Errorf("Attention allocates %v times per call", a)
	}
}

func TestAttentionKnown(t *testing.T) {
	// One head, headDim 2, two cached positions. Query row 0 at position 0
	// sees only v0; row 1 at position 1 sees both with scores q·k.
	k := []float32{1, 0, 0, 1}
	v := []float32{10, 20, 30, 40}
	q := []float32{5, 5, float32(math.Log(3)), 0}
	out := make([]float32, 4)
	Attention(out, q, 2, 0, k, v, 2, 1, 1, 2, 1, 0, 0)
	// Row 1: scores ln3 and 0, weights 3/4 and 1/4.
	want := []float32{10, 20, 0.75*10 + 0.25*30, 0.75*20 + 0.25*40}
	closeTo(t, "causal", out, want, 1e-6)

	// A window of 1 leaves each row only its own position.
	Attention(out, q, 2, 0, k, v, 2, 1, 1, 2, 1, 0, 1)
	closeTo(t, "window", out, []float32{10, 20, 30, 40}, 1e-6)

	// Soft-capping at 0.5 squashes ln3 to 0.5*tanh(2 ln3) = 0.5*80/82.
	Attention(out, q, 2, 0, k, v, 2, 1, 1, 2, 1, 0.5, 0)
	c := 0.5 * 80.0 / 82
	w0 := math.Exp(c) / (math.Exp(c) + 1)
	want[2], want[3] = float32(w0*10+(1-w0)*30), float32(w0*20+(1-w0)*40)
	closeTo(t, "softcap", out, want, 1e-6)
}

func TestAttentionRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct {
		nq, pos0, nKV, heads, kvHeads, hd int
		softcap                           float32
		window                            int
	}{
		{1, 0, 1, 2, 1, 64, 0, 0},
		{1, 40, 41, 14, 2, 64, 0, 0},
		{7, 10, 17, 4, 4, 32, 0, 0},
		{5, 0, 5, 8, 2, 128, 50, 0},
		{9, 30, 39, 4, 1, 64, 0, 8},
		{3, 20, 40, 6, 3, 16, 0, 0}, // cache longer than the rows' positions
		{16, 0, 16, 32, 8, 64, 0, 0},
		{2, 298, 300, 8, 2, 64, 0, 0},
		{3, 5, 8, 2, 2, 80, 0, 0},
		{4, 100, 104, 4, 2, 96, 30, 50},
		{2, 0, 2, 1, 1, 7, 0, 0},
		{2, 10, 12, 16, 1, 64, 0, 0}, // more heads per KV head than one register block
		{1, 5, 6, 12, 1, 32, 0, 4},
		{1, 1000, 1001, 14, 2, 64, 0, 0}, // decode at depth
	} {
		name := fmt.Sprintf("%+v", tc)
		qs, kvs := tc.heads*tc.hd, tc.kvHeads*tc.hd
		q := randSlice(r, tc.nq*qs, 2)
		k := randSlice(r, tc.nKV*kvs, 2)
		v := randSlice(r, tc.nKV*kvs, 1)
		want, got := make([]float32, tc.nq*qs), make([]float32, tc.nq*qs)
		scale := float32(1 / math.Sqrt(float64(tc.hd)))
		AttentionRef(want, q, tc.nq, tc.pos0, k, v, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		Attention(got, q, tc.nq, tc.pos0, k, v, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		closeTo(t, name, got, want, 1e-5)

		// A half cache gives the reference's result on its values.
		kh, vh := toF16(k), toF16(v)
		AttentionRef(want, q, tc.nq, tc.pos0, fromF16(kh), fromF16(vh), tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		AttentionF16(got, q, tc.nq, tc.pos0, kh, vh, tc.nKV, tc.heads, tc.kvHeads, tc.hd, scale, tc.softcap, tc.window)
		closeTo(t, name+" f16", got, want, 1e-5)
	}
}

func toF16(x []float32) []uint16 {
	out := make([]uint16, len(x))
	for i, v := range x {
		out[i] = quant.F32ToF16(v)
	}
	return out
}

func fromF16(h []uint16) []float32 {
	out := make([]float32, len(h))
	for i, v := range h {
		out[i] = quant.F16ToF32(v)
	}
	return out
}

func TestRMSNorm(t *testing.T) {
	x := []float32{3, 4, 1, 1}
	w := []float32{1, 2}
	out := make([]float32, 4)
	inv := float32(1 / math.Sqrt(12.5))
	RMSNorm(out, x, w, 2, 2, 0, false)
	closeTo(t, "plain", out, []float32{3 * inv, 8 * inv, 1, 2}, 1e-6)
	RMSNorm(out, x, w, 2, 2, 0, true)
	closeTo(t, "addOne", out, []float32{6 * inv, 12 * inv, 2, 3}, 1e-6)

	r := rand.New(rand.NewPCG(13, 14))
	for _, dim := range []int{1, 7, 64, 896, 2051} {
		n := 3
		x := randSlice(r, n*dim, 3)
		w := randSlice(r, dim, 1)
		want, got := make([]float32, n*dim), make([]float32, n*dim)
		for _, addOne := range []bool{false, true} {
			RMSNormRef(want, x, w, n, dim, 1e-6, addOne)
			RMSNorm(got, x, w, n, dim, 1e-6, addOne)
			closeTo(t, fmt.Sprintf("dim %d", dim), got, want, 1e-5)
			in := append([]float32(nil), x...)
			RMSNorm(in, in, w, n, dim, 1e-6, addOne)
			closeTo(t, fmt.Sprintf("in place dim %d", dim), in, want, 1e-5)
		}
	}
}

func TestLayerNorm(t *testing.T) {
	// Rows (1, 3) and (2, 2)+(0, 4): mean 2, deviation 1 and 2.
	x, add := []float32{1, 3, 2, 2}, []float32{0, 0, 0, 4}
	w, b := []float32{1, 2}, []float32{0, 1}
	out := make([]float32, 4)
	LayerNorm(out, x, add, w, b, 2, 2, 0)
	closeTo(t, "known", out, []float32{-1, 3, -1, 3}, 1e-6)

	r := rand.New(rand.NewPCG(15, 16))
	for _, dim := range []int{1, 7, 64, 384, 768, 2051} {
		n := 3
		x, add := randSlice(r, n*dim, 3), randSlice(r, n*dim, 1)
		for i := range x {
			x[i] += 5 // a mean far from 0, as residual streams have
		}
		w, b := randSlice(r, dim, 1), randSlice(r, dim, 1)
		want, got := make([]float32, n*dim), make([]float32, n*dim)
		for _, a := range [][]float32{nil, add} {
			name := fmt.Sprintf("dim %d add %v", dim, a != nil)
			LayerNormRef(want, x, a, w, b, n, dim, 1e-12)
			LayerNorm(got, x, a, w, b, n, dim, 1e-12)
			closeTo(t, name, got, want, 2e-5)
			in := append([]float32(nil), x...)
			LayerNorm(in, in, a, w, b, n, dim, 1e-12)
			closeTo(t, "in place "+name, in, want, 2e-5)
			if a != nil {
				in := append([]float32(nil), a...)
				LayerNorm(in, x, in, w, b, n, dim, 1e-12)
				closeTo(t, "into add "+name, in, want, 2e-5)
			}
		}
	}
	// A constant row has no deviation: eps keeps it finite.
	LayerNorm(out[:2], []float32{4, 4}, nil, w, b, 1, 2, 1e-5)
	closeTo(t, "constant", out[:2], []float32{0, 1}, 1e-6)
}

func TestSoftmax(t *testing.T) {
	x := []float32{0, float32(math.Ln2)}
	Softmax(x)
	closeTo(t, "known", x, []float32{1. / 3, 2. / 3}, 1e-6)
	// exp(100) overflows float32 unless the maximum is subtracted first.
	x = []float32{100, 100 + float32(math.Ln2)}
	Softmax(x)
	closeTo(t, "large", x, []float32{1. / 3, 2. / 3}, 2e-5)
	Softmax(nil)
	// Masked entries (-inf) get exactly zero, on the SIMD lanes too.
	masked := make([]float32, 37)
	for i := range masked {
		masked[i] = float32(math.Inf(-1))
	}
	masked[20], masked[35] = 1, 1
	Softmax(masked)
	for i, v := range masked {
		if want := float32(0); i == 20 || i == 35 {
			if v != 0.5 {
				t.Fatalf("masked softmax: element %d = %g, want 0.5", i, v)
			}
		} else if v != want {
			t.Fatalf("masked softmax: element %d = %g, want exactly 0", i, v)
		}
	}

	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range []int{1, 5, 16, 17, 100, 151936} {
		x := randSlice(r, n, 20)
		want := append([]float32(nil), x...)
		SoftmaxRef(want)
		Softmax(x)
		closeTo(t, fmt.Sprintf("n %d", n), x, want, 1e-5)
	}
}

func TestActivations(t *testing.T) {
	g := []float32{0, 1, -1, 2}
	SiLUMul(g, []float32{1, 1, 1, 3})
	closeTo(t, "silu", g, []float32{0, 0.7310586, -0.26894143, 3 * 1.7615942}, 1e-6)
	g = []float32{0, 1, -1, 2}
	GELUTanhMul(g, []float32{1, 1, 1, 3})
	closeTo(t, "gelu", g, []float32{0, 0.8411920, -0.15880801, 3 * 1.9545977}, 1e-6)

	r := rand.New(rand.NewPCG(17, 18))
	for _, n := range []int{1, 15, 16, 33, 4864, 10001} {
		gate := randSlice(r, n, 12)
		up := randSlice(r, n, 2)
		for _, tc := range []struct {
			name     string
			ref, got func(a, b []float32)
		}{
			{"SiLUMul", SiLUMulRef, SiLUMul},
			{"GELUTanhMul", GELUTanhMulRef, GELUTanhMul},
			{"Add", AddRef, Add},
		} {
			want := append([]float32(nil), gate...)
			got := append([]float32(nil), gate...)
			tc.ref(want, up)
			tc.got(got, up)
			// Elementwise: compare each element to its own magnitude.
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 2e-6*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%s n %d: element %d: got %g want %g", tc.name, n, i, got[i], want[i])
				}
			}
		}
	}
}

// TestRoPETable: rotating with a precomputed table gives RoPE's results
// bit for bit, for both pair layouts, partial rotary and a scale; a
// position past the table panics.
func TestRoPETable(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const n, heads, hd, rot, npos = 9, 3, 24, 16, 600
	freqs := make([]float32, rot/2)
	for i := range freqs {
		freqs[i] = float32(math.Pow(10000, -2*float64(i)/rot))
	}
	pos := []int32{0, 1, 2, 7, 100, 511, 512, 598, 599}
	for _, neox := range []bool{true, false} {
		for _, mscale := range []float32{1, 1.25} {
			tab := NewRoPETable(npos, rot, freqs, mscale)
			if tab.Len() != npos {
				t.Fatalf("Len() = %d, want %d", tab.Len(), npos)
			}
			want := randSlice(r, n*heads*hd, 1)
			got := append([]float32(nil), want...)
			RoPE(want, n, heads, hd, rot, pos, freqs, neox, mscale)
			tab.Apply(got, n, heads, hd, pos, neox)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("neox=%v mscale=%v: element %d: table %v, RoPE %v", neox, mscale, i, got[i], want[i])
				}
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a position past the table did not panic")
		}
	}()
	NewRoPETable(4, rot, freqs, 1).Apply(make([]float32, heads*hd), 1, heads, hd, []int32{4}, true)
}

func TestRoPE(t *testing.T) {
	// One head of dim 4, rotDim 4, position 1, invFreq {pi/2, 0}: the first
	// pair turns by 90 degrees and the second not at all.
	invFreq := []float32{math.Pi / 2, 0}
	x := []float32{1, 2, 3, 4}
	RoPE(x, 1, 1, 4, 4, []int32{1}, invFreq, true, 1) // pairs (0,2), (1,3)
	closeTo(t, "neox", x, []float32{-3, 2, 1, 4}, 1e-6)
	x = []float32{1, 2, 3, 4}
	RoPE(x, 1, 1, 4, 4, []int32{1}, invFreq, false, 2) // pairs (0,1), (2,3)
	closeTo(t, "adjacent", x, []float32{-4, 2, 6, 8}, 1e-6)

	// GGUF's permuted rows with adjacent pairs equal HF rows with
	// rotate-half (GGUF llama files permute the q/k rows so); partial rotary
	// leaves the tail alone.
	r := rand.New(rand.NewPCG(19, 20))
	const n, heads, hd, rot = 5, 3, 16, 12
	freqs := make([]float32, rot/2)
	for i := range freqs {
		freqs[i] = float32(math.Pow(10000, -2*float64(i)/rot))
	}
	pos := []int32{0, 1, 7, 100, 4095}
	hf := randSlice(r, n*heads*hd, 1)
	gg := make([]float32, len(hf))
	for t := 0; t < n*heads; t++ {
		h := hf[t*hd : (t+1)*hd]
		g := gg[t*hd : (t+1)*hd]
		for i := 0; i < rot/2; i++ {
			g[2*i], g[2*i+1] = h[i], h[i+rot/2]
		}
		copy(g[rot:], h[rot:])
	}
	want := append([]float32(nil), hf...)
	RoPERef(want, n, heads, hd, rot, pos, freqs, true, 1)
	RoPE(hf, n, heads, hd, rot, pos, freqs, true, 1)
	closeTo(t, "neox vs ref", hf, want, 1e-6)
	RoPE(gg, n, heads, hd, rot, pos, freqs, false, 1)
	for t2 := 0; t2 < n*heads; t2++ {
		h := hf[t2*hd : (t2+1)*hd]
		g := gg[t2*hd : (t2+1)*hd]
		for i := 0; i < rot/2; i++ {
			if math.Abs(float64(g[2*i]-h[i])) > 1e-5 || math.Abs(float64(g[2*i+1]-h[i+rot/2])) > 1e-5 {
				t.Fatalf("row/head %d pair %d: adjacent (%g,%g) vs neox (%g,%g)", t2, i, g[2*i], g[2*i+1], h[i], h[i+rot/2])
			}
		}
		for i := rot; i < hd; i++ {
			if g[i] != h[i] {
				t.Fatalf("row/head %d dim %d beyond rotDim changed", t2, i)
			}
		}
	}
}

func TestBadShapesPanic(t *testing.T) {
	for name, f := range map[string]func(){
		"short out":  func() { MatMulF32(make([]float32, 1), make([]float32, 4), 1, make([]float32, 8), 2, 4) },
		"mlx bits 7": func() { MatMulMLX(nil, nil, 0, nil, nil, nil, 0, 32, 7, 32) },
		"mlx group":  func() { MatMulMLX(nil, nil, 0, nil, nil, nil, 0, 32, 4, 16) },
		"gqa":        func() { Attention(nil, nil, 0, 0, nil, nil, 0, 3, 2, 4, 1, 0, 0) },
		"no cache": func() {
			Attention(make([]float32, 4), make([]float32, 4), 1, 1, make([]float32, 4), make([]float32, 4), 1, 1, 1, 4, 1, 0, 0)
		},
		"rope odd":  func() { RoPE(make([]float32, 4), 1, 1, 4, 3, []int32{0}, []float32{1}, true, 1) },
		"add short": func() { Add(make([]float32, 3), make([]float32, 2)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
