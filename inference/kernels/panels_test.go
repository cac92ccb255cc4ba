package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// panelCase is one weight in panels with its row-major reference product.
type panelCase struct {
	name string
	p    *Panels
	ref  func(out, x []float32, n int)
	row  func(dst []float32, r int)
}

func panelCases(r *rand.Rand, rows, cols int) []panelCase {
	w := randSlice(r, rows*cols, 1)
	bf, hf := toHalf(w, quant.F32ToBF16), toHalf(w, quant.F32ToF16)
	halfRow := func(h []uint16, conv func(uint16) float32) func([]float32, int) {
		return func(dst []float32, o int) {
			for k := range cols {
				dst[k] = conv(h[o*cols+k])
			}
		}
	}
	return []panelCase{
		{"f32", PackPanelsF32(w, rows, cols), func(out, x []float32, n int) { MatMulF32Ref(out, x, n, w, rows, cols) },
			func(dst []float32, o int) { copy(dst, w[o*cols:(o+1)*cols]) }},
		{"bf16", PackPanelsHalf(bf, true, rows, cols), func(out, x []float32, n int) { MatMulBF16Ref(out, x, n, bf, rows, cols) },
			halfRow(bf, quant.BF16ToF32)},
		{"f16", PackPanelsHalf(hf, false, rows, cols), func(out, x []float32, n int) { MatMulF16Ref(out, x, n, hf, rows, cols) },
			halfRow(hf, quant.F16ToF32)},
	}
}

// TestPanels checks the panel product against the row-major reference for
// each storage, shapes with a partial last panel and every tile remainder
// (n = 1..13), on 1 and 3 threads; every row of a batch has the bits of
// that row run alone (batch invariance), and Row gives back the weight.
func TestPanels(t *testing.T) {
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(91, 92))
	for _, shape := range [][2]int{{1, 1}, {15, 7}, {16, 16}, {17, 33}, {40, 96}, {100, 130}, {70, 768}} {
		rows, cols := shape[0], shape[1]
		for _, c := range panelCases(r, rows, cols) {
			name := fmt.Sprintf("%s %dx%d", c.name, rows, cols)
			const n = 13
			x := randSlice(r, n*cols, 1)
			want := make([]float32, n*rows)
			c.ref(want, x, n)
			alone := make([]float32, n*rows)
			for b := range n {
				c.p.MatMul(alone[b*rows:(b+1)*rows], x[b*cols:(b+1)*cols], 1)
			}
			closeTo(t, name+" n=1", alone, want, 1e-5)
			for _, th := range []int{1, 3} {
				SetThreads(th)
				for nb := 1; nb <= n; nb++ {
					got := make([]float32, nb*rows)
					c.p.MatMul(got, x, nb)
					for i, g := range got {
						if math.Float32bits(g) != math.Float32bits(alone[i]) {
							t.Fatalf("%s n=%d, %d threads: output %d is %g, alone %g", name, nb, th, i, g, alone[i])
						}
					}
				}
			}
			got, wantRow := make([]float32, cols), make([]float32, cols)
			for _, o := range []int{0, rows / 2, rows - 1} {
				c.p.Row(got, o)
				c.row(wantRow, o)
				closeTo(t, fmt.Sprintf("%s Row(%d)", name, o), got, wantRow, 0)
			}
		}
	}
	if b := PackPanelsHalf(make([]uint16, 17*3), false, 17, 3).Bytes(); b != 2*32*3 {
		t.Errorf("Bytes() = %d for 17×3 half, want %d (two panels)", b, 2*32*3)
	}
}

// TestPanelsErrors: a weight too short for its shape, or a product whose
// slices are, panics with the name of the call.
func TestPanelsErrors(t *testing.T) {
	for name, f := range map[string]func(){
		"PackPanelsF32":  func() { PackPanelsF32(make([]float32, 5), 2, 3) },
		"PackPanelsHalf": func() { PackPanelsHalf(make([]uint16, 6), false, 0, 3) },
		"Panels.MatMul":  func() { PackPanelsF32(make([]float32, 6), 2, 3).MatMul(make([]float32, 3), make([]float32, 6), 2) },
	} {
		func() {
			defer func() {
				if msg := fmt.Sprint(recover()); !strings.Contains(msg, name) {
					t.Errorf("%s: panic %q", name, msg)
				}
			}()
			f()
		}()
	}
}
