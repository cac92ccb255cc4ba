package kernels

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// randK makes rows of random K-quant blocks with small f16 scales.
func randK(r *rand.Rand, rows, cols, blockBytes int, dOffsets ...int) []byte {
	w := make([]byte, rows*cols/quant.QK_K*blockBytes)
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	for b := 0; b < len(w); b += blockBytes {
		for _, off := range dOffsets {
			binary.LittleEndian.PutUint16(w[b+off:], quant.F32ToF16((r.Float32()*2-1)*0.01))
		}
	}
	return w
}

// TestQ4_KAsMLX checks Q4_K against the MLX path: each 32-element run is
// an affine group with scale d*sc and bias -dmin*m.
func TestQ4_KAsMLX(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	const n, rows, cols = 3, 5, 512
	w := randK(r, rows, cols, quant.Q4_KBlockBytes, 0, 2)
	var codes []int
	var sc, bi []float32
	for b := 0; b < len(w); b += quant.Q4_KBlockBytes {
		blk := w[b : b+quant.Q4_KBlockBytes]
		d := quant.F16ToF32(binary.LittleEndian.Uint16(blk))
		dmin := quant.F16ToF32(binary.LittleEndian.Uint16(blk[2:]))
		for j := 0; j < 8; j++ {
			s, m := quant.KScaleMin(blk[4:16], j)
			sc, bi = append(sc, d*float32(s)), append(bi, -dmin*float32(m))
			for l := 0; l < 32; l++ {
				q := blk[16+32*(j/2)+l]
				if j%2 == 1 {
					q >>= 4
				}
				codes = append(codes, int(q&15))
			}
		}
	}
	x := randSlice(r, n*cols, 1)
	want, got := make([]float32, n*rows), make([]float32, n*rows)
	MatMulMLXRef(want, x, n, packBits(codes, 4), sc, bi, rows, cols, 4, 32)
	MatMulGGUF(quant.GGMLQ4_K, got, x, n, w, rows, cols)
	closeTo(t, "Q4_K", got, want, 1e-5)
}

func TestMatMulKRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, shape := range [][2]int{{1, 256}, {7, 512}, {33, 256}, {17, 1024}} {
		rows, cols := shape[0], shape[1]
		for _, n := range []int{1, 2, 3, 4, 5, 7} {
			x := randSlice(r, n*cols, 1)
			want, got := make([]float32, n*rows), make([]float32, n*rows)
			w4 := randK(r, rows, cols, quant.Q4_KBlockBytes, 0, 2)
			MatMulGGUFRef(quant.GGMLQ4_K, want, x, n, w4, rows, cols)
			MatMulGGUF(quant.GGMLQ4_K, got, x, n, w4, rows, cols)
			closeTo(t, fmt.Sprintf("Q4_K n%d %dx%d", n, rows, cols), got, want, 1e-5)
			w6 := randK(r, rows, cols, quant.Q6_KBlockBytes, 208)
			MatMulGGUFRef(quant.GGMLQ6_K, want, x, n, w6, rows, cols)
			MatMulGGUF(quant.GGMLQ6_K, got, x, n, w6, rows, cols)
			closeTo(t, fmt.Sprintf("Q6_K n%d %dx%d", n, rows, cols), got, want, 1e-5)
		}
	}
}

func TestMatMulKBadShapes(t *testing.T) {
	for name, f := range map[string]func(){
		"cols": func() {
			MatMulGGUF(quant.GGMLQ4_K, make([]float32, 1), make([]float32, 128), 1, make([]byte, 144), 1, 128)
		},
		"short": func() {
			MatMulGGUF(quant.GGMLQ6_K, make([]float32, 2), make([]float32, 256), 1, make([]byte, quant.Q6_KBlockBytes), 2, 256)
		},
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
