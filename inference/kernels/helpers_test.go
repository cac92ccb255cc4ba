package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// ggufMM, ggufRef and ggufDeq bind MatMulGGUF, MatMulGGUFRef and quant's
// decoder to one block type, for the tests' tables of formats.
func ggufMM(t quant.GGMLType) func(out, x []float32, n int, w []byte, rows, cols int) {
	return func(out, x []float32, n int, w []byte, rows, cols int) { MatMulGGUF(t, out, x, n, w, rows, cols) }
}

func ggufRef(t quant.GGMLType) func(out, x []float32, n int, w []byte, rows, cols int) {
	return func(out, x []float32, n int, w []byte, rows, cols int) { MatMulGGUFRef(t, out, x, n, w, rows, cols) }
}

func ggufDeq(t quant.GGMLType) func(dst []float32, src []byte, cols int) {
	return func(dst []float32, src []byte, cols int) {
		rb := cols / t.BlockSize() * t.TypeSize()
		if err := quant.DequantizeGGML(t, src[:rb], dst[:cols]); err != nil {
			panic(err)
		}
	}
}

// dequantMLXRow expands one row of an MLX weight with quant's decoder.
func dequantMLXRow(dst []float32, wq []uint32, scales, biases []float32, cols, bits, group int) {
	quant.DequantizeMLX(dst, wq, scales, biases, 1, cols, bits, group)
}

// quantizeMLX is the MLX affine quantizer, row by row:
// per group, the larger-magnitude extreme becomes the bias and the scale
// may be negative. It packs with packBits, independently of quant.DequantizeMLX.
func quantizeMLX(w []float32, rows, cols, bits, group int) (wq []uint32, scales, biases []float32) {
	groups := cols / group
	scales = make([]float32, rows*groups)
	biases = make([]float32, rows*groups)
	levels := float32(int(1)<<bits - 1)
	q := make([]int, cols)
	for o := 0; o < rows; o++ {
		for g := 0; g < groups; g++ {
			ws := w[o*cols+g*group : o*cols+(g+1)*group]
			lo, hi := ws[0], ws[0]
			for _, v := range ws {
				lo, hi = min(lo, v), max(hi, v)
			}
			s := max((hi-lo)/levels, 1e-7)
			edge := lo
			if !(abs32(lo) > abs32(hi)) {
				edge, s = hi, -s
			}
			bias := float32(0)
			if q0 := roundEven(edge / s); q0 != 0 {
				s, bias = edge/q0, edge
			}
			for i, v := range ws {
				q[g*group+i] = int(min(max(roundEven((v-bias)/s), 0), levels))
			}
			scales[o*groups+g], biases[o*groups+g] = s, bias
		}
		wq = append(wq, packBits(q, bits)...)
	}
	return wq, scales, biases
}

// packBits writes values as a little-endian LSB-first bit stream, one bit
// at a time into bytes, and reads the bytes back as uint32 words.
func packBits(q []int, bits int) []uint32 {
	buf := make([]byte, (len(q)*bits+31)/32*4)
	for j, v := range q {
		for k := 0; k < bits; k++ {
			if v>>k&1 == 1 {
				pos := j*bits + k
				buf[pos/8] |= 1 << (pos % 8)
			}
		}
	}
	words := make([]uint32, len(buf)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(buf[4*i:])
	}
	return words
}

func abs32(v float32) float32     { return float32(math.Abs(float64(v))) }
func roundEven(v float32) float32 { return float32(math.RoundToEven(float64(v))) }

func randSlice(r *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (r.Float32()*2 - 1) * scale
	}
	return s
}

// closeTo reports whether got matches want to within tol relative to the
// largest magnitude in want (dot products cancel, so a per-element relative
// error would be meaningless for small outputs).
func closeTo(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	var scale float64
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	scale = max(scale, 1e-30)
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > tol*scale || math.IsNaN(float64(got[i])) != math.IsNaN(float64(want[i])) {
			t.Fatalf("%s: element %d: got %g want %g (tol %g of %g)", name, i, got[i], want[i], tol, scale)
		}
	}
}
