package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// matMulInt8Ref defines the int8 path: each activation row is quantized per
// 32-element block to q = roundEven(x*127/max|x|) with scale max|x|/127,
// and each block's integer dot with the weight codes is scaled by d_w*d_x.
func matMulInt8Ref(out, x []float32, n int, w []byte, q8 bool, rows, cols int) {
	bs := quant.Q4_0BlockBytes
	if q8 {
		bs = quant.Q8_0BlockBytes
	}
	nb := cols / 32
	xq := make([]int32, cols)
	xd := make([]float32, nb)
	for b := 0; b < n; b++ {
		for k := 0; k < nb; k++ {
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
				xq[k*32+i] = int32(math.RoundToEven(float64(v * id)))
			}
			xd[k] = amax / 127
		}
		for o := 0; o < rows; o++ {
			var sum float64
			for k := 0; k < nb; k++ {
				blk := w[(o*nb+k)*bs:]
				dw := quant.F16ToF32(binary.LittleEndian.Uint16(blk))
				var isum int32
				for i := 0; i < 32; i++ {
					var wq int32
					switch {
					case q8:
						wq = int32(int8(blk[2+i]))
					case i < 16:
						wq = int32(blk[2+i]&15) - 8
					default:
						wq = int32(blk[2+i-16]>>4) - 8
					}
					isum += wq * xq[k*32+i]
				}
				sum += float64(isum) * float64(dw*xd[k])
			}
			out[b*rows+o] = float32(sum)
		}
	}
}

// int8Close checks each output against the float reference to within tol
// of |x_b|*|w_o|, the scale of the int8 rounding error (a dot product with
// cancellation may be far smaller than its error).
func int8Close(t *testing.T, name string, got, want, x, wf []float32, n, rows, cols int, tol float64) {
	t.Helper()
	norm := func(v []float32) float64 {
		var s float64
		for _, e := range v {
			s += float64(e) * float64(e)
		}
		return math.Sqrt(s)
	}
	for b := 0; b < n; b++ {
		xn := norm(x[b*cols : (b+1)*cols])
		for o := 0; o < rows; o++ {
			i := b*rows + o
			if d := math.Abs(float64(got[i] - want[i])); d > tol*xn*norm(wf[o*cols:(o+1)*cols]) {
				t.Fatalf("%s: element %d: got %g want %g", name, i, got[i], want[i])
			}
		}
	}
}

// withInt8 runs f with the int8 path on, skipping where the CPU lacks it.
func withInt8(t *testing.T, f func(t *testing.T)) {
	prev := SetInt8Activations(true)
	defer SetInt8Activations(prev)
	if !Int8Activations() || !int8Available() {
		t.Skipf("no unpacked int8 path at level %q", Features())
	}
	f(t)
}

// TestInt8Activations checks the int8 path against its definition (to
// float rounding) and against the float reference (to the int8 rounding).
func TestInt8Activations(t *testing.T) {
	withInt8(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(61, 62))
		for _, shape := range [][2]int{{1, 32}, {7, 64}, {33, 96}, {50, 256}, {17, 1024}, {5, 4864}} {
			rows, cols := shape[0], shape[1]
			for _, n := range []int{1, 2, 3, 4, 5, 7, 9} {
				x := randSlice(r, n*cols, 1)
				x[r.IntN(len(x))] = 0
				if n > 1 {
					clear(x[cols : cols+32]) // an all-zero block
				}
				for _, tc := range []struct {
					name string
					q8   bool
					bb   int
					mm   func(out, x []float32, n int, w []byte, rows, cols int)
					ref  func(out, x []float32, n int, w []byte, rows, cols int)
				}{
					{"Q8_0", true, quant.Q8_0BlockBytes, ggufMM(quant.GGMLQ8_0), ggufRef(quant.GGMLQ8_0)},
					{"Q4_0", false, quant.Q4_0BlockBytes, ggufMM(quant.GGMLQ4_0), ggufRef(quant.GGMLQ4_0)},
				} {
					name := fmt.Sprintf("%s n%d %dx%d", tc.name, n, rows, cols)
					w := randGGUF(r, rows, cols, tc.bb)
					got, def, fl := make([]float32, n*rows), make([]float32, n*rows), make([]float32, n*rows)
					tc.mm(got, x, n, w, rows, cols)
					matMulInt8Ref(def, x, n, w, tc.q8, rows, cols)
					closeTo(t, name+" vs int8 definition", got, def, 1e-4)
					tc.ref(fl, x, n, w, rows, cols)
					wf := make([]float32, rows*cols)
					if err := quant.DequantizeGGML(ggmlTypeOf[tc.name], w, wf); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					int8Close(t, name+" vs float reference", got, fl, x, wf, n, rows, cols, 5e-3)
				}
			}
		}
	})
}

// TestInt8MLX checks the MLX 4-bit int8 path against the float reference
// to the int8 rounding, for every group size and odd block counts.
func TestInt8MLX(t *testing.T) {
	defer SetInt8MLX(SetInt8MLX(true))
	withInt8(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(63, 64))
		for _, shape := range [][2]int{{1, 32}, {7, 64}, {33, 96}, {50, 256}, {17, 1024}, {5, 4864}} {
			rows, cols := shape[0], shape[1]
			for _, g := range mlxGroups {
				if cols%g != 0 {
					continue
				}
				w := randSlice(r, rows*cols, 1)
				wq, sc, bi := quantizeMLX(w, rows, cols, 4, g)
				wf := make([]float32, rows*cols)
				for o := 0; o < rows; o++ {
					ng := cols / g
					dequantMLXRow(wf[o*cols:(o+1)*cols], wq[o*cols/8:(o+1)*cols/8], sc[o*ng:(o+1)*ng], bi[o*ng:(o+1)*ng], cols, 4, g)
				}
				for _, n := range []int{1, 2, 3, 4, 5, 7, 9} {
					x := randSlice(r, n*cols, 1)
					got, fl := make([]float32, n*rows), make([]float32, n*rows)
					MatMulMLX(got, x, n, wq, sc, bi, rows, cols, 4, g)
					MatMulMLXRef(fl, x, n, wq, sc, bi, rows, cols, 4, g)
					int8Close(t, fmt.Sprintf("MLX4 g%d n%d %dx%d", g, n, rows, cols), got, fl, x, wf, n, rows, cols, 5e-3)
				}
			}
		}
	})
}

// TestInt8NaN checks that a NaN activation makes the outputs of its row
// NaN, as in float, and leaves the other rows alone.
func TestInt8NaN(t *testing.T) {
	defer SetInt8MLX(SetInt8MLX(true))
	withInt8(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(65, 66))
		const rows, cols = 5, 96
		x := randSlice(r, 2*cols, 1)
		x[cols+40] = float32(math.NaN())
		wq, sc, bi := quantizeMLX(randSlice(r, rows*cols, 1), rows, cols, 4, 32)
		w8, w4 := randGGUF(r, rows, cols, quant.Q8_0BlockBytes), randGGUF(r, rows, cols, quant.Q4_0BlockBytes)
		for name, mm := range map[string]func(out []float32){
			"Q8_0": func(out []float32) { MatMulGGUF(quant.GGMLQ8_0, out, x, 2, w8, rows, cols) },
			"Q4_0": func(out []float32) { MatMulGGUF(quant.GGMLQ4_0, out, x, 2, w4, rows, cols) },
			"MLX4": func(out []float32) { MatMulMLX(out, x, 2, wq, sc, bi, rows, cols, 4, 32) },
		} {
			out := make([]float32, 2*rows)
			mm(out)
			for i, v := range out {
				if isNaN := v != v; isNaN != (i >= rows) {
					t.Errorf("%s: output %d is %g", name, i, v)
				}
			}
		}
	})
}

// TestInt8BatchInvariance reruns the invariance tests (n, other rows and
// thread counts) with the int8 path on, MLX 4-bit included.
func TestInt8BatchInvariance(t *testing.T) {
	defer SetInt8MLX(SetInt8MLX(true))
	withInt8(t, func(t *testing.T) {
		t.Run("BatchInvariance", TestBatchInvariance)
		t.Run("BatchInvarianceRows", TestBatchInvarianceRows)
	})
}
