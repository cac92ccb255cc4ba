//go:build cgo && arm64

package kernels

import "testing"

// TestNEONInt8Variants reruns the int8 and packed tests with each ARM64
// int8 variant below this CPU's best (under qemu -cpu max: base and
// dotprod), so the fallbacks are checked on a CPU that would not pick
// them; the other tests check the best one.
func TestNEONInt8Variants(t *testing.T) {
	best := setNEONInt8(-1)
	defer setNEONInt8(best)
	t.Logf("level %q, best int8 variant %s", Features(), neonInt8Names[best])
	for v := 0; v < best; v++ {
		if got := setNEONInt8(v); got != v {
			t.Fatalf("setNEONInt8(%d) = %d", v, got)
		}
		t.Run(neonInt8Names[v], func(t *testing.T) {
			t.Run("Packed", TestPacked)
			t.Run("PackedNaN", TestPackedNaN)
			t.Run("Int8Activations", TestInt8Activations)
			t.Run("Int8MLX", TestInt8MLX)
			t.Run("Int8NaN", TestInt8NaN)
			if !testing.Short() { // slow under qemu; the packed invariance is in TestPacked
				t.Run("Int8BatchInvariance", TestInt8BatchInvariance)
			}
		})
	}
}
