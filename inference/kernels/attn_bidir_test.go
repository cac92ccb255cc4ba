package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttentionBidirectional: full attention matches AttentionRef with
// window -1 (every row sees every row, the later ones included) for short
// and long sequences, heads of a multiple of 16 (k_attn_bidir, with partial
// score and value blocks) and not (the tiled kernel), and a direct
// softmax(q·k)·v in float64 for one row.
func TestAttentionBidirectional(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct{ n, heads, hd int }{{1, 2, 8}, {3, 4, 16}, {17, 3, 32}, {70, 12, 64}, {130, 2, 80}, {200, 2, 144}, {5, 3, 24}} {
		w := c.heads * c.hd
		q, k, v := make([]float32, c.n*w), make([]float32, c.n*w), make([]float32, c.n*w)
		for _, s := range [][]float32{q, k, v} {
			for i := range s {
				s[i] = float32(r.NormFloat64())
			}
		}
		scale := float32(1 / math.Sqrt(float64(c.hd)))
		got, want := make([]float32, c.n*w), make([]float32, c.n*w)
		AttentionBidirectional(got, q, k, v, c.n, c.heads, c.hd, scale)
		AttentionRef(want, q, c.n, 0, k, v, c.n, c.heads, c.heads, c.hd, scale, 0, -1)
		for i := range got {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
				t.Fatalf("n=%d: out[%d] = %v, reference %v", c.n, i, got[i], want[i])
			}
		}
		// Row 0, head 0, directly: it must see the last row too.
		sc := make([]float64, c.n)
		mx := math.Inf(-1)
		for u := 0; u < c.n; u++ {
			for j := 0; j < c.hd; j++ {
				sc[u] += float64(q[j]) * float64(k[u*w+j])
			}
			sc[u] *= float64(scale)
			mx = math.Max(mx, sc[u])
		}
		var z float64
		for u := range sc {
			sc[u] = math.Exp(sc[u] - mx)
			z += sc[u]
		}
		for j := 0; j < c.hd; j++ {
			var o float64
			for u := range sc {
				o += sc[u] / z * float64(v[u*w+j])
			}
			if d := math.Abs(o - float64(got[j])); d > 1e-5 {
				t.Fatalf("n=%d: row 0 dim %d = %v, direct %v", c.n, j, got[j], o)
			}
		}
	}
}

// TestGELUErf: the SIMD exact-GELU kernel (and its scalar tail) stays
// within 2e-7·|x| + 2e-7 of GELUErfRef over the range activations take.
func TestGELUErf(t *testing.T) {
	var xs []float32
	for v := -12.0; v <= 12; v += 0.0137 {
		xs = append(xs, float32(v))
	}
	xs = append(xs, 0, -0, 1e-8, -1e-8, 30, -30)
	got := append([]float32(nil), xs...)
	GELUErf(got)
	want := append([]float32(nil), xs...)
	GELUErfRef(want)
	for i, x := range xs {
		if d := math.Abs(float64(got[i] - want[i])); d > 2e-7*math.Abs(float64(x))+2e-7 {
			t.Fatalf("gelu(%v) = %v, reference %v", x, got[i], want[i])
		}
	}
}
