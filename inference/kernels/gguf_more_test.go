package kernels

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// randBlocks makes rows of random blocks with small f16 values of either
// sign at the given byte offsets of each block (its scales and mins).
func randBlocks(r *rand.Rand, rows, cols, elems, blockBytes int, f16Offsets ...int) []byte {
	w := make([]byte, rows*cols/elems*blockBytes)
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	for b := 0; b < len(w); b += blockBytes {
		for _, off := range f16Offsets {
			binary.LittleEndian.PutUint16(w[b+off:], quant.F32ToF16((r.Float32()*2-1)*0.02))
		}
	}
	return w
}

// ggmlTypeOf maps the test table's names to the quant package's types.
var ggmlTypeOf = map[string]quant.GGMLType{
	"Q8_0": quant.GGMLQ8_0, "Q4_0": quant.GGMLQ4_0, "Q4_1": quant.GGMLQ4_1, "Q5_0": quant.GGMLQ5_0,
	"Q5_1": quant.GGMLQ5_1, "Q2_K": quant.GGMLQ2_K, "Q3_K": quant.GGMLQ3_K, "Q4_K": quant.GGMLQ4_K,
	"Q5_K": quant.GGMLQ5_K, "Q6_K": quant.GGMLQ6_K,
}

// TestMatMulGGUFFormats checks each block type's matmul against its
// reference on random blocks (run at every dispatch level by TestLevels).
func TestMatMulGGUFFormats(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	for _, f := range ggufFormats {
		for _, shape := range [][2]int{{1, 256}, {7, 512}, {33, 256}, {17, 1024}, {5, 1280}} {
			rows, cols := shape[0], shape[1]
			w := f.random(r, rows, cols)
			for _, n := range []int{1, 2, 3, 4, 5, 7} {
				x := randSlice(r, n*cols, 1)
				want, got := make([]float32, n*rows), make([]float32, n*rows)
				f.ref(want, x, n, w, rows, cols)
				f.mm(got, x, n, w, rows, cols)
				closeTo(t, fmt.Sprintf("%s n%d %dx%d", f.name, n, rows, cols), got, want, 1e-5)
			}
		}
	}
}
