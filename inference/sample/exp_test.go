package sample

import (
	"math"
	"testing"
)

func TestExp32(t *testing.T) {
	worst := 0.0
	for x := float32(-87.3); x <= 0; x += 0.000731 {
		want := math.Exp(float64(x))
		got := float64(exp32(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	// 2 ulp of float32 is about 2.4e-7.
	if worst > 2.4e-7 {
		t.Errorf("worst relative error %g", worst)
	}
	for _, x := range []float32{0, -1e-30, float32(math.Inf(-1)), -88, -1000, float32(math.NaN())} {
		want := float32(math.Exp(float64(x)))
		if want < math.SmallestNonzeroFloat32*(1<<23) || math.IsNaN(float64(x)) {
			want = 0
		}
		if got := exp32(x); got != want {
			t.Errorf("exp32(%v) = %v, want %v", x, got, want)
		}
	}
}
