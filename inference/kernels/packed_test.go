package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// packedCase is one weight in source and packed form, with its float values.
type packedCase struct {
	name string
	pk   *Packed
	wf   []float32                     // dequantized weight
	def  func(out, x []float32, n int) // the int8 definition, or nil
}

func packedCases(t *testing.T, r *rand.Rand, rows, cols int) []packedCase {
	var cs []packedCase
	for _, tc := range []struct {
		name string
		q8   bool
		bb   int
		pack func([]byte, int, int) *Packed
	}{{"Q8_0", true, quant.Q8_0BlockBytes, PackQ8_0}, {"Q4_0", false, quant.Q4_0BlockBytes, PackQ4_0}} {
		w := randGGUF(r, rows, cols, tc.bb)
		wf := make([]float32, rows*cols)
		if err := quant.DequantizeGGML(ggmlTypeOf[tc.name], w, wf); err != nil {
			t.Fatal(err)
		}
		q8 := tc.q8
		cs = append(cs, packedCase{tc.name, tc.pack(w, rows, cols), wf,
			func(out, x []float32, n int) { matMulInt8Ref(out, x, n, w, q8, rows, cols) }})
	}
	// Formats checked against the float reference only.
	for _, tc := range []struct {
		name string
		pack func([]byte, int, int) *Packed
	}{{"Q6_K", PackQ6_K}, {"Q5_0", PackQ5_0}, {"Q4_K", PackQ4_K},
		{"Q5_K", PackQ5_K}, {"Q4_1", PackQ4_1}, {"Q5_1", PackQ5_1}, {"Q3_K", PackQ3_K}, {"Q2_K", PackQ2_K}} {
		f := ggufFormatNamed(tc.name)
		if cols%f.elems != 0 {
			continue
		}
		w := f.random(r, rows, cols)
		wf := make([]float32, rows*cols)
		if err := quant.DequantizeGGML(ggmlTypeOf[tc.name], w, wf); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, packedCase{tc.name, tc.pack(w, rows, cols), wf, nil})
	}
	for _, g := range mlxGroups {
		if cols%g != 0 {
			continue
		}
		wq, sc0, bi0 := quantizeMLX(randSlice(r, rows*cols, 1), rows, cols, 4, g)
		ng := cols / g
		// Scales and biases exact in bfloat16, in half, and in neither.
		for _, f := range []struct {
			name  string
			sfmt  int
			round func(float32) float32
		}{
			{"bf16", packBF16, func(v float32) float32 { return quant.BF16ToF32(quant.F32ToBF16(v)) }},
			{"f16", packF16, func(v float32) float32 { return quant.F16ToF32(quant.F32ToF16(v)) }},
			{"f32", packF32, func(v float32) float32 { return v*(1+1e-7) + 1e-9 }},
		} {
			sc, bi := make([]float32, len(sc0)), make([]float32, len(bi0))
			for i := range sc {
				sc[i], bi[i] = f.round(sc0[i]), f.round(bi0[i])
			}
			wf := make([]float32, rows*cols)
			for o := 0; o < rows; o++ {
				dequantMLXRow(wf[o*cols:(o+1)*cols], wq[o*cols/8:(o+1)*cols/8], sc[o*ng:(o+1)*ng], bi[o*ng:(o+1)*ng], cols, 4, g)
			}
			pk := PackMLX4(wq, sc, bi, rows, cols, g)
			if pk != nil && pk.sfmt != f.sfmt {
				t.Fatalf("MLX4 g%d %s: scale format %d, want %d", g, f.name, pk.sfmt, f.sfmt)
			}
			cs = append(cs, packedCase{fmt.Sprintf("MLX4 g%d %s", g, f.name), pk, wf, nil})
		}
	}
	// The other MLX widths: nibbles (2, 3 bits) or bytes (5, 6, 8 bits).
	for _, bits := range []int{2, 3, 5, 6, 8} {
		for _, g := range []int{32, 128} {
			if cols%g != 0 {
				continue
			}
			wq, sc, bi := quantizeMLX(randSlice(r, rows*cols, 1), rows, cols, bits, g)
			ng, words := cols/g, cols*bits/32
			wf := make([]float32, rows*cols)
			for o := 0; o < rows; o++ {
				dequantMLXRow(wf[o*cols:(o+1)*cols], wq[o*words:(o+1)*words], sc[o*ng:(o+1)*ng], bi[o*ng:(o+1)*ng], cols, bits, g)
			}
			cs = append(cs, packedCase{fmt.Sprintf("MLX%d g%d", bits, g), PackMLX(wq, sc, bi, rows, cols, bits, g), wf, nil})
		}
	}
	return cs
}

func ggufFormatNamed(name string) ggufFormat {
	for _, f := range ggufFormats {
		if f.name == name {
			return f
		}
	}
	panic("no format " + name)
}

// TestPacked checks the packed kernels against the int8 definition (every
// format by its dequantized values; Q8_0 and Q4_0 also by their codes) and
// the float reference, and that each output is bit-identical whatever n, the
// other rows of the batch and the thread count.
func TestPacked(t *testing.T) {
	defer SetInt8MLX(SetInt8MLX(true))
	withPacked(t, func(t *testing.T) {
		defer SetThreads(Threads())
		r := rand.New(rand.NewPCG(71, 72))
		for _, shape := range [][2]int{{16, 32}, {48, 96}, {32, 256}, {64, 1024}, {16, 4864}} {
			rows, cols := shape[0], shape[1]
			for _, c := range packedCases(t, r, rows, cols) {
				if c.pk == nil {
					t.Fatalf("%s %dx%d: not packed", c.name, rows, cols)
				}
				const nMax = 9
				x := randSlice(r, nMax*cols, 1)
				clear(x[cols : cols+32]) // an all-zero block
				SetThreads(1)
				single := make([]float32, nMax*rows)
				for b := 0; b < nMax; b++ {
					c.pk.MatMul(single[b*rows:(b+1)*rows], x[b*cols:(b+1)*cols], 1)
				}
				for _, threads := range []int{1, 2, 3} {
					SetThreads(threads)
					for _, n := range []int{1, 2, 3, 4, 5, 7, 9} {
						name := fmt.Sprintf("%s %dx%d n%d threads %d", c.name, rows, cols, n, threads)
						got := make([]float32, n*rows)
						c.pk.MatMul(got, x, n)
						for i, v := range got {
							if math.Float32bits(v) != math.Float32bits(single[i]) {
								t.Fatalf("%s: output %d is %g, alone %g", name, i, v, single[i])
							}
						}
					}
				}
				if c.def != nil {
					def := make([]float32, nMax*rows)
					c.def(def, x, nMax)
					closeTo(t, c.name+" vs int8 definition", single, def, 1e-4)
				}
				def := make([]float32, nMax*rows)
				matMulInt8Dequant(def, x, nMax, c.wf, rows, cols)
				closeTo(t, c.name+" vs int8 definition (dequantized)", single, def, 1e-4)
				fl := make([]float32, nMax*rows)
				MatMulF32Ref(fl, x, nMax, c.wf, rows, cols)
				int8Close(t, c.name+" vs float", single, fl, x, c.wf, nMax, rows, cols, 5e-3)
			}
		}
	})
}

// matMulInt8Dequant defines the int8 path for any weight format by its
// dequantized values wf: each activation rounded to int8 per 32-element
// block as in matMulInt8Ref and scaled back, times wf, summed in float64.
// The kernels' integer sums times the file's scales and biases are the same
// numbers up to float32 rounding.
func matMulInt8Dequant(out, x []float32, n int, wf []float32, rows, cols int) {
	xr := make([]float64, cols)
	for b := 0; b < n; b++ {
		for k := 0; k < cols/32; k++ {
			blk := x[b*cols+k*32 : b*cols+k*32+32]
			var amax float32
			for _, v := range blk {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			var id float32
			if amax > 0 {
				id = 127 / amax
			}
			for i, v := range blk {
				xr[k*32+i] = math.RoundToEven(float64(v*id)) * float64(amax/127)
			}
		}
		for o := 0; o < rows; o++ {
			var sum float64
			for e, w := range wf[o*cols : (o+1)*cols] {
				sum += float64(w) * xr[e]
			}
			out[b*rows+o] = float32(sum)
		}
	}
}

// withPacked runs f with the int8 path on, skipping where the current
// level has no packed kernels.
func withPacked(t *testing.T, f func(t *testing.T)) {
	prev := SetInt8Activations(true)
	defer SetInt8Activations(prev)
	if !packedAvailable() {
		t.Skipf("no packed kernels at level %q", Features())
	}
	f(t)
}

// TestPackedNaN checks that a NaN activation reaches its row's outputs only.
func TestPackedNaN(t *testing.T) {
	defer SetInt8MLX(SetInt8MLX(true))
	withPacked(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(73, 74))
		const rows = 16
		for _, cols := range []int{96, 256} {
			x := randSlice(r, 2*cols, 1)
			x[cols+40] = float32(math.NaN())
			for _, c := range packedCases(t, r, rows, cols) {
				out := make([]float32, 2*rows)
				c.pk.MatMul(out, x, 2)
				for i, v := range out {
					if isNaN := v != v; isNaN != (i >= rows) {
						t.Errorf("%s %d cols: output %d is %g", c.name, cols, i, v)
					}
				}
			}
		}
	})
}

// TestPackUnpackable checks that shapes the kernels cannot tile stay unpacked.
func TestPackUnpackable(t *testing.T) {
	r := rand.New(rand.NewPCG(75, 76))
	if PackQ4_0(randGGUF(r, 15, 64, quant.Q4_0BlockBytes), 15, 64) != nil {
		t.Error("15 rows packed")
	}
	if PackQ6_K(make([]byte, 16*quant.Q6_KBlockBytes*2), 16, 480) != nil {
		t.Error("Q6_K with 480 columns packed")
	}
	if PackQ4_K(make([]byte, 16*quant.Q4_KBlockBytes*2), 16, 480) != nil {
		t.Error("Q4_K with 480 columns packed")
	}
	wq, sc, bi := quantizeMLX(randSlice(r, 16*96, 1), 16, 96, 4, 32)
	if PackMLX4(wq, sc, bi, 16, 96, 64) != nil {
		t.Error("96 columns in groups of 64 packed")
	}
}

// TestPackedBytes checks that every packed format holds at most 5% more
// than its file (the source's pages of a packed weight are released, so
// the packed copy is what stays resident): each code keeps its own width.
func TestPackedBytes(t *testing.T) {
	if !packedAvailable() {
		t.Skip("no packed kernels on this CPU")
	}
	defer SetInt8MLX(SetInt8MLX(true))
	r := rand.New(rand.NewPCG(77, 78))
	const rows, cols, limit = 64, 1024, 1.05
	check := func(name string, pk *Packed, file int) {
		t.Helper()
		if pk == nil {
			t.Fatalf("%s: not packed", name)
		}
		ratio := float64(pk.Bytes()) / float64(file)
		t.Logf("%s: packed %d bytes, file %d (%.3fx)", name, pk.Bytes(), file, ratio)
		if ratio > limit {
			t.Errorf("%s: packed %d bytes, %.3fx the file's %d (limit %.2fx)", name, pk.Bytes(), ratio, file, limit)
		}
	}
	packers := map[string]func([]byte, int, int) *Packed{"Q8_0": PackQ8_0, "Q4_0": PackQ4_0, "Q4_1": PackQ4_1,
		"Q5_0": PackQ5_0, "Q5_1": PackQ5_1, "Q2_K": PackQ2_K, "Q3_K": PackQ3_K, "Q4_K": PackQ4_K, "Q5_K": PackQ5_K,
		"Q6_K": PackQ6_K}
	for _, f := range ggufFormats {
		pack := packers[f.name]
		if pack == nil {
			continue
		}
		delete(packers, f.name)
		check(f.name, pack(f.random(r, rows, cols), rows, cols), rows*cols/f.elems*f.blockBytes)
	}
	if len(packers) != 0 {
		t.Errorf("formats not checked: %v", packers)
	}
	// MLX files hold bfloat16 scales and biases.
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, g := range []int{32, 64, 128} {
			wq, sc, bi := quantizeMLX(randSlice(r, rows*cols, 1), rows, cols, bits, g)
			for i := range sc {
				sc[i], bi[i] = quant.BF16ToF32(quant.F32ToBF16(sc[i])), quant.BF16ToF32(quant.F32ToBF16(bi[i]))
			}
			check(fmt.Sprintf("MLX%d g%d", bits, g), PackMLX(wq, sc, bi, rows, cols, bits, g), 4*len(wq)+2*(len(sc)+len(bi)))
		}
	}
}
