package kernels

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// randGGUF makes rows of random blocks with f16 scales of either sign.
func randGGUF(r *rand.Rand, rows, cols, blockBytes int) []byte {
	w := make([]byte, rows*cols/quant.QK*blockBytes)
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	for b := 0; b < len(w); b += blockBytes {
		binary.LittleEndian.PutUint16(w[b:], quant.F32ToF16((r.Float32()*2-1)*0.05))
	}
	return w
}

// TestGGUFAsMLX checks the GGUF decoders against the MLX path through the
// lossless conversions: Q4_0 is MLX group 32 with scale d
// and bias -8d (nibbles reordered); Q8_0 is scale d, bias -128d on the
// codes XOR 0x80.
func TestGGUFAsMLX(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const n, rows, cols = 3, 9, 128
	x := randSlice(r, n*cols, 1)
	for _, tc := range []struct {
		name       string
		blockBytes int
		bits       int
		mm         func(out, x []float32, n int, w []byte, rows, cols int)
		codes      func(blk []byte) []int
		bias       float32
	}{
		{"Q8_0", quant.Q8_0BlockBytes, 8, ggufMM(quant.GGMLQ8_0), func(blk []byte) []int {
			q := make([]int, 32)
			for i, c := range blk[2:] {
				q[i] = int(c ^ 0x80)
			}
			return q
		}, -128},
		{"Q4_0", quant.Q4_0BlockBytes, 4, ggufMM(quant.GGMLQ4_0), func(blk []byte) []int {
			q := make([]int, 32)
			for i, c := range blk[2:] {
				q[i], q[i+16] = int(c&15), int(c>>4)
			}
			return q
		}, -8},
	} {
		w := randGGUF(r, rows, cols, tc.blockBytes)
		var codes []int
		var sc, bi []float32
		for b := 0; b < len(w); b += tc.blockBytes {
			d := quant.F16ToF32(binary.LittleEndian.Uint16(w[b:]))
			codes = append(codes, tc.codes(w[b:b+tc.blockBytes])...)
			sc, bi = append(sc, d), append(bi, tc.bias*d)
		}
		wq := packBits(codes, tc.bits)
		want, got := make([]float32, n*rows), make([]float32, n*rows)
		MatMulMLXRef(want, x, n, wq, sc, bi, rows, cols, tc.bits, 32)
		tc.mm(got, x, n, w, rows, cols)
		closeTo(t, tc.name, got, want, 1e-5)
	}
}

func TestMatMulGGUFRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, shape := range [][2]int{{1, 32}, {7, 64}, {33, 96}, {50, 256}, {17, 1024}} {
		rows, cols := shape[0], shape[1]
		for _, n := range []int{1, 2, 3, 4, 5, 7} {
			x := randSlice(r, n*cols, 1)
			want, got := make([]float32, n*rows), make([]float32, n*rows)
			w8 := randGGUF(r, rows, cols, quant.Q8_0BlockBytes)
			MatMulGGUFRef(quant.GGMLQ8_0, want, x, n, w8, rows, cols)
			MatMulGGUF(quant.GGMLQ8_0, got, x, n, w8, rows, cols)
			closeTo(t, fmt.Sprintf("Q8_0 n%d %dx%d", n, rows, cols), got, want, 1e-5)
			w4 := randGGUF(r, rows, cols, quant.Q4_0BlockBytes)
			MatMulGGUFRef(quant.GGMLQ4_0, want, x, n, w4, rows, cols)
			MatMulGGUF(quant.GGMLQ4_0, got, x, n, w4, rows, cols)
			closeTo(t, fmt.Sprintf("Q4_0 n%d %dx%d", n, rows, cols), got, want, 1e-5)
		}
	}
}

func TestMatMulGGUFBadShapes(t *testing.T) {
	for name, f := range map[string]func(){
		"cols": func() {
			MatMulGGUF(quant.GGMLQ8_0, make([]float32, 48), make([]float32, 48), 1, make([]byte, 100), 1, 48)
		},
		"short weight": func() {
			MatMulGGUF(quant.GGMLQ4_0, make([]float32, 2), make([]float32, 64), 1, make([]byte, 2*quant.Q4_0BlockBytes+1), 2, 64)
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
