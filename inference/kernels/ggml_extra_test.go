package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// TestMatMulGGML checks matMulDequant, the tiled path MatMulGGUF takes for
// block types without a kernel of their own, against the float32 reference
// on the dequantized weight: on every type quant quantizes, several batch
// sizes and thread counts.
func TestMatMulGGML(t *testing.T) {
	defer SetThreads(Threads())
	rng := rand.New(rand.NewPCG(3, 5))
	types := []quant.GGMLType{quant.GGMLQ4_1, quant.GGMLQ5_0, quant.GGMLQ5_1, quant.GGMLQ2_K, quant.GGMLQ3_K, quant.GGMLQ5_K,
		quant.GGMLQ4_0, quant.GGMLQ8_0, quant.GGMLQ4_K, quant.GGMLQ6_K}
	for _, typ := range types {
		for _, shape := range []struct{ rows, cols, n int }{{37, 512, 1}, {53, 256, 3}, {150, 768, 9}, {5, 256, 0}} {
			for _, threads := range []int{1, 3} {
				t.Run(fmt.Sprintf("%s/%dx%d/n%d/t%d", typ, shape.rows, shape.cols, shape.n, threads), func(t *testing.T) {
					SetThreads(threads)
					rows, cols, n := shape.rows, shape.cols, shape.n
					wf := make([]float32, rows*cols)
					for i := range wf {
						wf[i] = float32(rng.NormFloat64())
					}
					nb, _ := typ.RowBytes(uint64(rows * cols))
					w := make([]byte, nb)
					if err := quant.QuantizeGGML(typ, wf, w); err != nil {
						t.Fatal(err)
					}
					if err := quant.DequantizeGGML(typ, w, wf); err != nil {
						t.Fatal(err)
					}
					x := make([]float32, n*cols)
					for i := range x {
						x[i] = float32(rng.NormFloat64())
					}
					want := make([]float32, n*rows)
					MatMulF32Ref(want, x, n, wf, rows, cols)
					got := make([]float32, n*rows)
					for i := range got {
						got[i] = float32(math.NaN())
					}
					matMulDequant(typ, got, x, n, w, rows, cols)
					for i := range want {
						if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-4*(1+math.Abs(float64(want[i])))) {
							t.Fatalf("out[%d] = %g, want %g", i, got[i], want[i])
						}
					}
				})
			}
		}
	}
}

func TestMatMulGGMLRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"no decoder", func() {
			MatMulGGUF(quant.GGMLType(99), make([]float32, 1), make([]float32, 32), 1, make([]byte, 64), 1, 32)
		}},
		{"partial block", func() {
			MatMulGGUF(quant.GGMLQ5_0, make([]float32, 1), make([]float32, 48), 1, make([]byte, 64), 1, 48)
		}},
		{"short weight", func() {
			MatMulGGUF(quant.GGMLQ5_0, make([]float32, 2), make([]float32, 32), 1, make([]byte, 22), 2, 32)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			c.f()
		})
	}
}

func BenchmarkMatMulGGML(b *testing.B) {
	rows, cols := 4864, 896
	for _, typ := range []quant.GGMLType{quant.GGMLQ5_0, quant.GGMLQ4_0} {
		nb, _ := typ.RowBytes(uint64(rows * cols))
		w := make([]byte, nb)
		wf := make([]float32, rows*cols)
		for i := range wf {
			wf[i] = float32(i%7) - 3
		}
		quant.QuantizeGGML(typ, wf, w)
		for _, n := range []int{1, 32} {
			x, out := make([]float32, n*cols), make([]float32, n*rows)
			b.Run(fmt.Sprintf("%s/n%d", typ, n), func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					matMulDequant(typ, out, x, n, w, rows, cols)
				}
			})
		}
	}
}
