package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMLXCodeLayout pins the bit layout with hand-packed words: at 4 bits
// element 0 is bits 0-3 of word 0; at 3 bits element 10 straddles words 0 and 1.
func TestMLXCodeLayout(t *testing.T) {
	row := []uint32{0x76543210, 0xfedcba98}
	for j := 0; j < 16; j++ {
		if got := MLXCode(row, j, 4); got != uint32(j) {
			t.Fatalf("4-bit element %d = %d", j, got)
		}
	}
	// 3-bit codes 0..7 repeated: build the stream by hand.
	var stream [3]uint32
	for j := 0; j < 32; j++ {
		pos := j * 3
		for b := 0; b < 3; b++ {
			if (j%8)>>b&1 == 1 {
				stream[(pos+b)/32] |= 1 << ((pos + b) % 32)
			}
		}
	}
	for j := 0; j < 32; j++ {
		if got := MLXCode(stream[:], j, 3); got != uint32(j%8) {
			t.Fatalf("3-bit element %d = %d, want %d", j, got, j%8)
		}
	}
	if got := MLXCode([]uint32{0x000000ff, 0}, 0, 8); got != 255 {
		t.Fatalf("8-bit = %d", got)
	}
}

func TestMLXRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, group := range []int{32, 64, 128} {
			rows, cols := 5, 256
			w := make([]float32, rows*cols)
			for i := range w {
				w[i] = float32(rng.NormFloat64()) * 0.1
			}
			// One row all negative and one constant, to exercise both
			// scale signs and the zero-edge branch.
			for j := 0; j < cols; j++ {
				w[cols+j] = -0.5 - float32(j)*0.001
				w[2*cols+j] = 0
			}
			wq, scales, biases, err := QuantizeMLX(w, rows, cols, bits, group)
			if err != nil {
				t.Fatal(err)
			}
			if len(wq) != rows*cols*bits/32 {
				t.Fatalf("bits %d: %d words", bits, len(wq))
			}
			deq := make([]float32, rows*cols)
			DequantizeMLX(deq, wq, scales, biases, rows, cols, bits, group)
			negScale, posScale := false, false
			for _, s := range scales {
				negScale = negScale || s < 0
				posScale = posScale || s > 0
			}
			if !negScale || !posScale {
				t.Errorf("bits %d group %d: expected scales of both signs", bits, group)
			}
			for r := 0; r < rows; r++ {
				for g := 0; g < cols/group; g++ {
					s := scales[r*cols/group+g]
					b := biases[r*cols/group+g]
					// Every value is within half a step of its reconstruction,
					// unless it was clamped to an end code (the exact-edge
					// adjustment can shrink the step so the far extreme clamps).
					for j := g * group; j < (g+1)*group; j++ {
						i := r*cols + j
						code := MLXCode(wq[r*cols*bits/32:], j, bits)
						if code == 0 || code == 1<<bits-1 {
							continue
						}
						if err := math.Abs(float64(deq[i] - w[i])); err > math.Abs(float64(s))/2*1.0001+1e-7 {
							t.Fatalf("bits %d group %d: w[%d]=%g deq %g (scale %g bias %g)", bits, group, i, w[i], deq[i], s, b)
						}
					}
				}
			}
		}
	}
}

// TestMLXQuantizeExample follows QuantizeMLX's rule by hand on one group of
// 32 at 2 bits:
// min -1, max 0.5 → |min| > |max|, edge = min, s = 1.5/3 = 0.5, q0 = -2,
// s = -1/-2 = 0.5, bias = -1, so codes are round((w+1)/0.5).
func TestMLXQuantizeExample(t *testing.T) {
	w := make([]float32, 32)
	w[0], w[1], w[2] = -1, 0.5, -0.5
	wq, s, b, err := QuantizeMLX(w, 1, 32, 2, 32)
	if err != nil {
		t.Fatal(err)
	}
	if s[0] != 0.5 || b[0] != -1 {
		t.Fatalf("scale %g bias %g", s[0], b[0])
	}
	want := []uint32{0, 3, 1, 2}
	for j, c := range want {
		if got := MLXCode(wq, j, 2); got != c {
			t.Fatalf("code %d = %d, want %d", j, got, c)
		}
	}
	// Positive-dominant group: edge = max and the scale is negative.
	w2 := make([]float32, 32)
	w2[0], w2[1] = 1, -0.2
	_, s2, b2, _ := QuantizeMLX(w2, 1, 32, 4, 32)
	if s2[0] >= 0 || b2[0] != 1 {
		t.Fatalf("scale %g bias %g, want negative scale and bias 1", s2[0], b2[0])
	}
}

func TestMLXCheck(t *testing.T) {
	for _, c := range []struct{ cols, bits, group int }{{64, 7, 32}, {64, 4, 16}, {48, 4, 32}, {0, 4, 32}} {
		if MLXCheck(c.cols, c.bits, c.group) == nil {
			t.Errorf("MLXCheck(%v) accepted", c)
		}
	}
	if _, _, _, err := QuantizeMLX(make([]float32, 10), 1, 32, 4, 32); err == nil {
		t.Error("QuantizeMLX accepted a short weight")
	}
}
