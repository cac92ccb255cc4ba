package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// FuzzMatMulQuant compares the quantized matmuls with their references on
// shapes and bytes chosen by the fuzzer: weight bytes come from files, so no
// code value may change which memory a kernel touches or break its math.
func FuzzMatMulQuant(f *testing.F) {
	f.Add(uint8(0), uint8(1), uint8(3), uint8(1), []byte("seed"))
	f.Add(uint8(5), uint8(6), uint8(17), uint8(4), []byte{0xff, 0x7f, 0x80, 0x00})
	// 16 and 32 rows: packed too, each GGUF format and MLX width once.
	for c := 0; c < 10; c++ {
		f.Add(uint8(2), uint8(3), uint8(16), uint8(c+10*(c%3)), []byte{0x93, 0x11, 0xc4, 0x5a, 0x07})
	}
	for c := 0; c < 6; c++ {
		f.Add(uint8(5*c), uint8(2), uint8(32), uint8(c+6*(c%4)), []byte{0x3c, 0xe1, 0x88, 0x16})
	}
	f.Fuzz(func(t *testing.T, format, n8, rows8, cols8 uint8, data []byte) {
		n, rows := int(n8%9), int(rows8%40)
		next := byteStream(data)
		x := make([]float32, 0)
		var want, got []float32
		// Sums of large terms cancel, so the tolerance scales with
		// sum_i |w_i x_i| (deq writes row o of the dequantized weight).
		check := func(name string, cols int, deq func(dst []float32, o int), ref, opt func(out []float32)) {
			want, got = make([]float32, n*rows), make([]float32, n*rows)
			ref(want)
			opt(got)
			row := make([]float32, cols)
			for o := 0; o < rows; o++ {
				deq(row, o)
				for b := 0; b < n; b++ {
					var mag float64
					for i, v := range row {
						mag += math.Abs(float64(v) * float64(x[b*cols+i]))
					}
					i := b*rows + o
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*mag+1e-30 || math.IsNaN(d) {
						t.Fatalf("%s n=%d rows=%d cols=%d: element %d: got %g want %g (terms %g)", name, n, rows, cols, i, got[i], want[i], mag)
					}
				}
			}
		}
		// The packed copy, where the format and shape have one, against the
		// int8 definition on the dequantized weight (matMulInt8Dequant).
		checkPacked := func(name string, cols int, deq func(dst []float32, o int), pk *Packed) {
			if pk == nil || !pk.Active() || n == 0 {
				return
			}
			wf := make([]float32, rows*cols)
			for o := 0; o < rows; o++ {
				deq(wf[o*cols:(o+1)*cols], o)
			}
			want, got = make([]float32, n*rows), make([]float32, n*rows)
			matMulInt8Dequant(want, x, n, wf, rows, cols)
			pk.MatMul(got, x, n)
			for i := range got {
				b, o := i/rows, i%rows
				var mag float64
				for e, v := range wf[o*cols : (o+1)*cols] {
					mag += math.Abs(float64(v) * float64(x[b*cols+e]))
				}
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*mag+1e-30 || math.IsNaN(d) {
					t.Fatalf("packed %s n=%d rows=%d cols=%d: element %d: got %g want %g (terms %g)", name, n, rows, cols, i, got[i], want[i], mag)
				}
			}
		}
		mkx := func(cols int) {
			x = make([]float32, n*cols)
			for i := range x {
				x[i] = float32(int8(next())) / 64
			}
		}
		switch format % 5 {
		case 0, 1: // MLX, every width and group size
			bits := []int{2, 3, 4, 5, 6, 8}[int(cols8)%6]
			group := []int{32, 64, 128}[int(format/5)%3]
			cols := group * (1 + int(cols8/6)%4)
			mkx(cols)
			wq := make([]uint32, rows*cols*bits/32)
			for i := range wq {
				wq[i] = uint32(next()) | uint32(next())<<8 | uint32(next())<<16 | uint32(next())<<24
			}
			sc, bi := make([]float32, rows*cols/group), make([]float32, rows*cols/group)
			for i := range sc {
				sc[i], bi[i] = float32(int8(next()))/512, float32(int8(next()))/64
			}
			words, groups := cols*bits/32, cols/group
			check(fmt.Sprintf("MLX%d g%d", bits, group), cols,
				func(dst []float32, o int) {
					dequantMLXRow(dst, wq[o*words:], sc[o*groups:], bi[o*groups:], cols, bits, group)
				},
				func(o []float32) { MatMulMLXRef(o, x, n, wq, sc, bi, rows, cols, bits, group) },
				func(o []float32) { MatMulMLX(o, x, n, wq, sc, bi, rows, cols, bits, group) })
			checkPacked(fmt.Sprintf("MLX%d g%d", bits, group), cols,
				func(dst []float32, o int) {
					dequantMLXRow(dst, wq[o*words:], sc[o*groups:], bi[o*groups:], cols, bits, group)
				}, PackMLX(wq, sc, bi, rows, cols, bits, group))
		default: // GGUF blocks, with sane f16 scales so sums stay finite
			type gg struct {
				name       string
				elems, bsz int
				dOffs      []int
				deq        func(dst []float32, src []byte, cols int)
				ref, opt   func(out, x []float32, n int, w []byte, rows, cols int)
				pack       func(w []byte, rows, cols int) *Packed
			}
			all := []gg{
				{"Q8_0", 32, quant.Q8_0BlockBytes, []int{0}, ggufDeq(quant.GGMLQ8_0), ggufRef(quant.GGMLQ8_0), ggufMM(quant.GGMLQ8_0), PackQ8_0},
				{"Q4_0", 32, quant.Q4_0BlockBytes, []int{0}, ggufDeq(quant.GGMLQ4_0), ggufRef(quant.GGMLQ4_0), ggufMM(quant.GGMLQ4_0), PackQ4_0},
				{"Q4_1", 32, quant.Q4_1BlockBytes, []int{0, 2}, ggufDeq(quant.GGMLQ4_1), ggufRef(quant.GGMLQ4_1), ggufMM(quant.GGMLQ4_1), PackQ4_1},
				{"Q5_0", 32, quant.Q5_0BlockBytes, []int{0}, ggufDeq(quant.GGMLQ5_0), ggufRef(quant.GGMLQ5_0), ggufMM(quant.GGMLQ5_0), PackQ5_0},
				{"Q5_1", 32, quant.Q5_1BlockBytes, []int{0, 2}, ggufDeq(quant.GGMLQ5_1), ggufRef(quant.GGMLQ5_1), ggufMM(quant.GGMLQ5_1), PackQ5_1},
				{"Q2_K", 256, quant.Q2_KBlockBytes, []int{80, 82}, ggufDeq(quant.GGMLQ2_K), ggufRef(quant.GGMLQ2_K), ggufMM(quant.GGMLQ2_K), PackQ2_K},
				{"Q3_K", 256, quant.Q3_KBlockBytes, []int{108}, ggufDeq(quant.GGMLQ3_K), ggufRef(quant.GGMLQ3_K), ggufMM(quant.GGMLQ3_K), PackQ3_K},
				{"Q4_K", 256, quant.Q4_KBlockBytes, []int{0, 2}, ggufDeq(quant.GGMLQ4_K), ggufRef(quant.GGMLQ4_K), ggufMM(quant.GGMLQ4_K), PackQ4_K},
				{"Q5_K", 256, quant.Q5_KBlockBytes, []int{0, 2}, ggufDeq(quant.GGMLQ5_K), ggufRef(quant.GGMLQ5_K), ggufMM(quant.GGMLQ5_K), PackQ5_K},
				{"Q6_K", 256, quant.Q6_KBlockBytes, []int{208}, ggufDeq(quant.GGMLQ6_K), ggufRef(quant.GGMLQ6_K), ggufMM(quant.GGMLQ6_K), PackQ6_K},
			}
			g := all[int(cols8)%len(all)]
			cols := g.elems * (1 + int(cols8)/len(all)%3)
			mkx(cols)
			w := make([]byte, rows*cols/g.elems*g.bsz)
			for i := range w {
				w[i] = next()
			}
			for b := 0; b < len(w); b += g.bsz {
				for _, off := range g.dOffs {
					// exponent field 0..15 keeps |d| below 1.
					binary.LittleEndian.PutUint16(w[b+off:], binary.LittleEndian.Uint16(w[b+off:])&0xbfff)
				}
			}
			rb := cols / g.elems * g.bsz
			check(g.name, cols, func(dst []float32, o int) { g.deq(dst, w[o*rb:], cols) },
				func(o []float32) { g.ref(o, x, n, w, rows, cols) },
				func(o []float32) { g.opt(o, x, n, w, rows, cols) })
			if g.pack != nil {
				checkPacked(g.name, cols, func(dst []float32, o int) { g.deq(dst, w[o*rb:], cols) }, g.pack(w, rows, cols))
			}
		}
	})
}

// byteStream cycles through data (or zeros when empty).
func byteStream(data []byte) func() byte {
	i := 0
	return func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[i%len(data)] + byte(i/len(data))*31
		i++
		return b
	}
}

// TestConcurrentCallers runs matmuls and attention from several goroutines
// at once: the pool serialises them, and each must still get its own result.
func TestConcurrentCallers(t *testing.T) {
	const rows, cols = 96, 256
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			next := byteStream([]byte{byte(g), 3, 5, 7, byte(g * 11)})
			x := make([]float32, 2*cols)
			w := make([]float32, rows*cols)
			for i := range x {
				x[i] = float32(int8(next())) / 64
			}
			for i := range w {
				w[i] = float32(int8(next())) / 64
			}
			want, got := make([]float32, 2*rows), make([]float32, 2*rows)
			MatMulF32Ref(want, x, 2, w, rows, cols)
			for it := 0; it < 20; it++ {
				MatMulF32(got, x, 2, w, rows, cols)
				for i := range want {
					if math.Abs(float64(got[i]-want[i])) > 1e-3 {
						errs <- fmt.Errorf("goroutine %d: element %d: got %g want %g", g, i, got[i], want[i])
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
