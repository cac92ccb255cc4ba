package quant

import (
	"math"
	"testing"
)

func TestF16RoundTripAllValues(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		if math.IsNaN(float64(f)) {
			if !math.IsNaN(float64(F16ToF32(F32ToF16(f)))) {
				t.Fatalf("NaN %#04x did not survive", h)
			}
			continue
		}
		if got := F32ToF16(f); got != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)=%g) = %#04x", h, f, got)
		}
	}
}

func TestF16Known(t *testing.T) {
	cases := []struct {
		h uint16
		f float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.9604645e-08}, {0x3555, 0.33325195}}
	for _, c := range cases {
		if got := F16ToF32(c.h); got != c.f {
			t.Errorf("F16ToF32(%#04x) = %g, want %g", c.h, got, c.f)
		}
	}
	if got := F32ToF16(1e6); got != 0x7c00 {
		t.Errorf("overflow: got %#04x, want +Inf", got)
	}
}

func TestBF16(t *testing.T) {
	for _, f := range []float32{0, 1, -1.5, 3.140625, 1e30, -1e-30} {
		if got := BF16ToF32(F32ToBF16(f)); math.Abs(float64(got-f)) > math.Abs(float64(f))/128 {
			t.Errorf("bf16 round trip of %g gave %g", f, got)
		}
	}
	if got := F32ToBF16(1.00390625); got != 0x3f80 { // halfway: rounds to even
		t.Errorf("round-to-even: got %#04x", got)
	}
}
