package kernels

import (
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// TestPackedRow checks that every packed format gives back each row's
// dequantized values bit for bit, so embedding lookups can read the packed
// copy instead of the released source.
func TestPackedRow(t *testing.T) {
	if !packedAvailable() {
		t.Skip("no packed kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, shape := range [][2]int{{16, 32}, {48, 96}, {32, 256}, {32, 512}} {
		rows, cols := shape[0], shape[1]
		for _, c := range packedCases(t, r, rows, cols) {
			dst := make([]float32, cols)
			for row := 0; row < rows; row++ {
				c.pk.Row(dst, row)
				want := c.wf[row*cols : (row+1)*cols]
				for i := range dst {
					if dst[i] != want[i] {
						t.Fatalf("%s %dx%d: row %d element %d: %g, want %g", c.name, rows, cols, row, i, dst[i], want[i])
					}
				}
			}
		}
	}
}

func TestPackedRowBadRow(t *testing.T) {
	if !packedAvailable() {
		t.Skip("no packed kernels on this CPU")
	}
	pk := PackQ8_0(make([]byte, 16*quant.Q8_0BlockBytes), 16, 32)
	for _, row := range []int{-1, 16} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Row(%d) of 16 rows did not panic", row)
				}
			}()
			pk.Row(make([]float32, 32), row)
		}()
	}
}
