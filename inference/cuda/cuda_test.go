//go:build cgo && linux

package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/quant"
)

var (
	devOnce sync.Once
	dev     *Device
	devErr  error
)

// device opens cuda:0 once for the package's tests, skipping them with the
// reason when this machine has no usable GPU (CI has none).
func device(t *testing.T) *Device {
	t.Helper()
	devOnce.Do(func() { dev, devErr = Open(0) })
	if devErr != nil {
		if errors.Is(devErr, ErrNotAvailable) {
			t.Skipf("no GPU: %v", devErr)
		}
		t.Fatal(devErr)
	}
	return dev
}

func randVec(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64()) * scale
	}
	return v
}

// relErr is ‖got − want‖ / ‖want‖; NaN never passes.
func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if math.IsNaN(num) {
		return math.Inf(1)
	}
	return math.Sqrt(num / math.Max(den, 1e-30))
}

func put[T any](t *testing.T, d *Device, s []T) Ptr {
	t.Helper()
	p, err := AllocCopy(d, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Free(p) })
	return p
}

// poisoned allocates n float32 of NaN, so an unwritten output fails.
func poisoned(t *testing.T, d *Device, n int) Ptr {
	nan := make([]float32, n)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	return put(t, d, nan)
}

func get(t *testing.T, d *Device, p Ptr, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := DownloadTo(d, out, p); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenReportsDevice(t *testing.T) {
	d := device(t)
	t.Logf("%s; kernels %+v", d.Info(), d.Compile)
	free, err := d.FreeMemory()
	if err != nil || free == 0 {
		t.Fatalf("free memory %d, %v", free, err)
	}
	// A second open of the same GPU must load the kernels from the cache.
	d2, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if d.Compile.Path != "" && !d2.Compile.Cached {
		t.Errorf("second Open compiled again (%+v), want the cached %s", d2.Compile, d.Compile.Path)
	}
	t.Logf("second open: %+v", d2.Compile)
	if _, err := Open(99); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("Open(99) = %v, want ErrNotAvailable", err)
	}
}

// weightCase is one weight format with its CPU reference.
type weightCase struct {
	name string
	cols int
	make func(r *rand.Rand, rows, cols int) (w Weight, ref func(out, x []float32, n int), up func(t *testing.T, d *Device) Weight)
}

func weightCases() []weightCase {
	ggml := func(name string, typ quant.GGMLType, f Format) weightCase {
		return weightCase{name: name, cols: 512, make: func(r *rand.Rand, rows, cols int) (Weight, func(out, x []float32, n int), func(*testing.T, *Device) Weight) {
			src := randVec(r, rows*cols, 0.5)
			bs, _ := typ.RowBytes(uint64(rows * cols))
			blocks := make([]byte, bs)
			if err := quant.QuantizeGGML(typ, src, blocks); err != nil {
				panic(err)
			}
			w := Weight{Format: f, Rows: rows, Cols: cols}
			return w, func(out, x []float32, n int) { kernels.MatMulGGUFRef(typ, out, x, n, blocks, rows, cols) },
				func(t *testing.T, d *Device) Weight { w.Data = put(t, d, blocks); return w }
		}}
	}
	half := func(name string, f Format, conv func(float32) uint16, ref func(out, x []float32, n int, w []uint16, rows, cols int), cols int) weightCase {
		return weightCase{name: name, cols: cols, make: func(r *rand.Rand, rows, cols int) (Weight, func(out, x []float32, n int), func(*testing.T, *Device) Weight) {
			h := make([]uint16, rows*cols)
			for i, v := range randVec(r, rows*cols, 0.5) {
				h[i] = conv(v)
			}
			w := Weight{Format: f, Rows: rows, Cols: cols}
			return w, func(out, x []float32, n int) { ref(out, x, n, h, rows, cols) },
				func(t *testing.T, d *Device) Weight { w.Data = put(t, d, h); return w }
		}}
	}
	mlx := func(bits, group int) weightCase {
		return weightCase{name: fmt.Sprintf("mlx%d-g%d", bits, group), cols: 512, make: func(r *rand.Rand, rows, cols int) (Weight, func(out, x []float32, n int), func(*testing.T, *Device) Weight) {
			wq, sc, bi, err := quant.QuantizeMLX(randVec(r, rows*cols, 0.5), rows, cols, bits, group)
			if err != nil {
				panic(err)
			}
			w := Weight{Format: MLX, Rows: rows, Cols: cols, Bits: bits, Group: group}
			return w, func(out, x []float32, n int) { kernels.MatMulMLXRef(out, x, n, wq, sc, bi, rows, cols, bits, group) },
				func(t *testing.T, d *Device) Weight {
					w.Data, w.Scales, w.Biases = put(t, d, wq), put(t, d, sc), put(t, d, bi)
					return w
				}
		}}
	}
	return []weightCase{
		{name: "f32", cols: 200, make: func(r *rand.Rand, rows, cols int) (Weight, func(out, x []float32, n int), func(*testing.T, *Device) Weight) {
			f := randVec(r, rows*cols, 0.5)
			w := Weight{Format: F32, Rows: rows, Cols: cols}
			return w, func(out, x []float32, n int) { kernels.MatMulF32Ref(out, x, n, f, rows, cols) },
				func(t *testing.T, d *Device) Weight { w.Data = put(t, d, f); return w }
		}},
		half("f16", F16, quant.F32ToF16, kernels.MatMulF16Ref, 256),
		half("bf16", BF16, quant.F32ToBF16, kernels.MatMulBF16Ref, 256),
		half("bf16-odd", BF16, quant.F32ToBF16, kernels.MatMulBF16Ref, 72),
		ggml("q8_0", quant.GGMLQ8_0, Q8_0),
		ggml("q4_0", quant.GGMLQ4_0, Q4_0),
		ggml("q5_0", quant.GGMLQ5_0, Q5_0),
		ggml("q4_k", quant.GGMLQ4_K, Q4_K),
		ggml("q6_k", quant.GGMLQ6_K, Q6_K),
		mlx(4, 64), mlx(8, 32), mlx(3, 32), mlx(6, 64), mlx(2, 128), mlx(5, 32),
	}
}

// actsFor is the activations x ([n][cols]) as a product by w sees them: for
// the int8 kernels (usesInt8), each 32-value block quantized as quant_q8
// does and expanded back, so that the float reference then matches the GPU
// to float rounding; else x itself.
func actsFor(w *Weight, n int, x []float32) []float32 {
	if !usesInt8(n, w) {
		return x
	}
	return int8Round(x)
}

// int8Round is quant_q8 followed by expansion: per 32-value block, codes
// x*(127/max|x|) rounded to nearest even, times max|x|/127.
func int8Round(x []float32) []float32 {
	out := make([]float32, len(x))
	for b := 0; b+32 <= len(x); b += 32 {
		var a float32
		for _, v := range x[b : b+32] {
			a = max(a, float32(math.Abs(float64(v))))
		}
		if a == 0 {
			continue
		}
		id, dq := 127/a, a/127
		for i, v := range x[b : b+32] {
			out[b+i] = float32(math.RoundToEven(float64(v*id))) * dq
		}
	}
	return out
}

// TestInt8GEMVMatchesFloat checks the int8 kernels against the float ones
// on the same device at the activations' int8 rounding, and that SetInt8
// switches them: off, Q4_0 and Q8_0 products match the float reference to
// float rounding.
func TestInt8GEMVMatchesFloat(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(21, 22))
	for _, wc := range weightCases() {
		if wc.name != "q8_0" && wc.name != "q4_0" {
			continue
		}
		for _, n := range []int{1, 4, 8} {
			t.Run(fmt.Sprintf("%s/n%d", wc.name, n), func(t *testing.T) {
				rows, cols := 300, 4096
				w, ref, up := wc.make(r, rows, cols)
				dw := up(t, d)
				x := randVec(r, n*cols, 1)
				dx := put(t, d, x)
				want := make([]float32, n*rows)
				ref(want, x, n)
				out := poisoned(t, d, n*rows)
				d.MatMul(out, dx, n, &dw, 0)
				if e := relErr(get(t, d, out, n*rows), want); !usesInt8(n, &w) || e > 2e-2 {
					t.Errorf("int8: relative error %.3g against float (int8 on: %v)", e, usesInt8(n, &w))
				}
				defer SetInt8(SetInt8(false))
				out = poisoned(t, d, n*rows)
				d.MatMul(out, dx, n, &dw, 0)
				if e := relErr(get(t, d, out, n*rows), want); e > 2e-6*math.Sqrt(float64(cols)) {
					t.Errorf("int8 off: relative error %.3g", e)
				}
			})
		}
	}
}

// TestMatMulMatchesCPU checks the GEMV (n <= 8) and GEMM kernels of every
// format against the CPU reference, with a bias, on row counts that leave
// partial tiles.
func TestMatMulMatchesCPU(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(1, 2))
	for _, wc := range weightCases() {
		for _, n := range []int{1, 3, 8, 9, 70} {
			t.Run(fmt.Sprintf("%s/n%d", wc.name, n), func(t *testing.T) {
				rows := 131
				w, ref, up := wc.make(r, rows, wc.cols)
				dw := up(t, d)
				x := randVec(r, n*wc.cols, 1)
				bias := randVec(r, rows, 1)
				want := make([]float32, n*rows)
				ref(want, actsFor(&w, n, x), n)
				for i := range want {
					want[i] += bias[i%rows]
				}
				out := poisoned(t, d, n*rows)
				d.MatMul(out, put(t, d, x), n, &dw, put(t, d, bias))
				got := get(t, d, out, n*rows)
				if e := relErr(got, want); e > 2e-6*math.Sqrt(float64(wc.cols)) {
					t.Errorf("relative error %.3g (got[0] %g, want %g)", e, got[0], want[0])
				}
			})
		}
	}
}

// TestFusedMatMulMatchesCPU checks the fused matrix-vector launches
// (MatMulSegs, MatMulAdd, MatMulGLU) of every format against the CPU
// reference, on slices of one stored matrix (as fused Q/K/V and gate/up
// are), for few rows (one launch) and many (the MatMul fallback).
func TestFusedMatMulMatchesCPU(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(11, 12))
	silu := func(v float32) float32 { return v / (1 + float32(math.Exp(float64(-v)))) }
	for _, wc := range weightCases() {
		for _, n := range []int{1, 5, 9} {
			t.Run(fmt.Sprintf("%s/n%d", wc.name, n), func(t *testing.T) {
				a, b, c := 40, 24, 24 // rows of the three slices
				rows := a + b + c
				w, ref, up := wc.make(r, rows, wc.cols)
				dw := up(t, d)
				x := randVec(r, n*wc.cols, 1)
				dx := put(t, d, x)
				bias := randVec(r, rows, 1)
				full := make([]float32, n*rows)
				ref(full, actsFor(&w, n, x), n)
				tol := 2e-6 * math.Sqrt(float64(wc.cols))
				part := func(r0, m int, add []float32) []float32 {
					out := make([]float32, n*m)
					for i := 0; i < n; i++ {
						for j := 0; j < m; j++ {
							out[i*m+j] = full[i*rows+r0+j] + bias[r0+j]
							if add != nil {
								out[i*m+j] += add[i*m+j]
							}
						}
					}
					return out
				}
				sa, sb, sc := dw.Slice(0, a), dw.Slice(a, b), dw.Slice(a+b, c)
				ba, bb, bc := put(t, d, bias[:a]), put(t, d, bias[a:a+b]), put(t, d, bias[a+b:])
				oa, ob, oc := poisoned(t, d, n*a), poisoned(t, d, n*b), poisoned(t, d, n*c)
				d.MatMulSegs(dx, n, Seg{&sa, ba, oa}, Seg{&sb, bb, ob}, Seg{&sc, bc, oc})
				for _, o := range []struct {
					name string
					p    Ptr
					want []float32
				}{{"q", oa, part(0, a, nil)}, {"k", ob, part(a, b, nil)}, {"v", oc, part(a+b, c, nil)}} {
					if e := relErr(get(t, d, o.p, len(o.want)), o.want); e > tol {
						t.Errorf("segs %s: relative error %.3g", o.name, e)
					}
				}
				res := randVec(r, n*a, 1)
				dres := put(t, d, res)
				d.MatMulAdd(dres, dx, n, &sa, ba, poisoned(t, d, n*a))
				if e := relErr(get(t, d, dres, n*a), part(0, a, res)); e > tol {
					t.Errorf("add: relative error %.3g", e)
				}
				for _, gelu := range []bool{false, true} {
					g, u := part(a, b, nil), part(a+b, c, nil)
					if gelu {
						kernels.GELUTanhMulRef(g, u)
					} else {
						for i := range g {
							g[i] = silu(g[i]) * u[i]
						}
					}
					og := poisoned(t, d, n*b)
					d.MatMulGLU(dx, n, Seg{&sb, bb, og}, Seg{&sc, bc, poisoned(t, d, n*c)}, gelu)
					if e := relErr(get(t, d, og, n*b), g); e > tol {
						t.Errorf("glu gelu=%v: relative error %.3g", gelu, e)
					}
				}
			})
		}
	}
}

func TestEmbedMatchesCPU(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(3, 4))
	for _, wc := range weightCases() {
		t.Run(wc.name, func(t *testing.T) {
			rows, cols := 37, wc.cols
			_, ref, up := wc.make(r, rows, cols)
			dw := up(t, d)
			// Row j of W is W·e_j: take it from the reference matmul.
			eye := make([]float32, cols*cols)
			for i := 0; i < cols; i++ {
				eye[i*cols+i] = 1
			}
			full := make([]float32, cols*rows) // [cols][rows] = W^T
			ref(full, eye, cols)
			tokens := []int32{5, 0, 36, 5}
			want := make([]float32, len(tokens)*cols)
			for t, tok := range tokens {
				for j := 0; j < cols; j++ {
					want[t*cols+j] = full[j*rows+int(tok)] * 2
				}
			}
			out := poisoned(t, d, len(want))
			d.Embed(out, put(t, d, tokens), len(tokens), &dw, 2)
			if e := relErr(get(t, d, out, len(want)), want); e > 1e-6 {
				t.Errorf("relative error %.3g", e)
			}
		})
	}
}

func TestElementwiseMatchCPU(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(5, 6))
	n, dim := 7, 320
	x := randVec(r, n*dim, 2)
	w := randVec(r, dim, 1)
	for _, addOne := range []bool{false, true} {
		want := make([]float32, n*dim)
		kernels.RMSNormRef(want, x, w, n, dim, 1e-5, addOne)
		out := poisoned(t, d, n*dim)
		d.RMSNorm(out, put(t, d, x), put(t, d, w), n, dim, 1e-5, addOne)
		if e := relErr(get(t, d, out, n*dim), want); e > 1e-6 {
			t.Errorf("rmsnorm addOne=%v: relative error %.3g", addOne, e)
		}
	}
	up := randVec(r, n*dim, 1)
	for _, act := range []string{"silu", "gelu"} {
		g := append([]float32(nil), x...)
		dg := put(t, d, g)
		if act == "silu" {
			kernels.SiLUMulRef(g, up)
			d.SiLUMul(dg, put(t, d, up), len(g))
		} else {
			kernels.GELUTanhMulRef(g, up)
			d.GELUTanhMul(dg, put(t, d, up), len(g))
		}
		if e := relErr(get(t, d, dg, len(g)), g); e > 1e-6 {
			t.Errorf("%s: relative error %.3g", act, e)
		}
	}
	a := append([]float32(nil), x...)
	da := put(t, d, a)
	kernels.AddRef(a, up)
	d.Add(da, put(t, d, up), len(a))
	if e := relErr(get(t, d, da, len(a)), a); e > 1e-7 {
		t.Errorf("add: relative error %.3g", e)
	}
	s := append([]float32(nil), x...)
	ds := put(t, d, s)
	for i := range s {
		s[i] = float32(math.Tanh(float64(s[i]/1.5))) * 1.5
	}
	d.Softcap(ds, len(s), 1.5)
	if e := relErr(get(t, d, ds, len(s)), s); e > 1e-6 {
		t.Errorf("softcap: relative error %.3g", e)
	}
	// copy_cols: the middle 100 columns of each row.
	cc := make([]float32, n*100)
	for i := 0; i < n; i++ {
		copy(cc[i*100:], x[i*dim+50:i*dim+150])
	}
	dc := poisoned(t, d, n*100)
	d.CopyCols(dc, 100, put(t, d, x), dim, 50, n, 100)
	if e := relErr(get(t, d, dc, n*100), cc); e != 0 {
		t.Errorf("copy_cols: relative error %.3g", e)
	}
}

func TestRoPEMatchesCPU(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(7, 8))
	for _, neox := range []bool{true, false} {
		n, heads, hd, rot := 5, 3, 64, 48
		x := randVec(r, n*heads*hd, 1)
		pos := []int32{0, 1, 7, 300, 4095}
		inv := make([]float32, rot/2)
		for i := range inv {
			inv[i] = float32(math.Pow(10000, -2*float64(i)/float64(rot)))
		}
		dx := put(t, d, x)
		kernels.RoPERef(x, n, heads, hd, rot, pos, inv, neox, 1.2)
		d.RoPE(dx, n, heads, hd, rot, put(t, d, pos), put(t, d, inv), neox, 1.2)
		if e := relErr(get(t, d, dx, len(x)), x); e > 1e-6 {
			t.Errorf("neox=%v: relative error %.3g", neox, e)
		}
		// RoPEQK: queries and keys (fewer heads) in one launch.
		kvHeads := 2
		q, k := randVec(r, n*heads*hd, 1), randVec(r, n*kvHeads*hd, 1)
		dq, dk := put(t, d, q), put(t, d, k)
		kernels.RoPERef(q, n, heads, hd, rot, pos, inv, neox, 1.2)
		kernels.RoPERef(k, n, kvHeads, hd, rot, pos, inv, neox, 1.2)
		d.RoPEQK(dq, dk, n, heads, kvHeads, hd, rot, put(t, d, pos), put(t, d, inv), neox, 1.2)
		if e := relErr(get(t, d, dq, len(q)), q); e > 1e-6 {
			t.Errorf("rope_qk neox=%v: q relative error %.3g", neox, e)
		}
		if e := relErr(get(t, d, dk, len(k)), k); e > 1e-6 {
			t.Errorf("rope_qk neox=%v: k relative error %.3g", neox, e)
		}
	}
}

func TestAttentionMatchesCPU(t *testing.T) {
	d := device(t)
	r := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct {
		nq, pos0, heads, kvHeads, hd, window int
		softcap                              float32
	}{
		{1, 0, 4, 2, 64, 0, 0},     // first token
		{1, 200, 8, 2, 128, 0, 0},  // decode, GQA
		{13, 0, 4, 4, 32, 0, 0},    // prefill
		{9, 30, 4, 1, 256, 16, 0},  // windowed, head dim 256
		{5, 40, 2, 1, 80, 0, 50},   // soft-capped, odd head dim
		{70, 100, 14, 2, 64, 0, 0}, // prefill after a prefix
		// split-K decode (attention_part and attention_merge)
		{1, 700, 8, 2, 128, 0, 0},
		{1, 5000, 14, 2, 64, 0, 0},
		{4, 1000, 4, 1, 64, 300, 0},
		{2, 900, 2, 1, 80, 0, 50},
		{8, 130, 4, 2, 256, 0, 0},
	} {
		t.Run(fmt.Sprintf("nq%d-pos%d-h%d-kv%d-d%d-w%d-c%g", c.nq, c.pos0, c.heads, c.kvHeads, c.hd, c.window, c.softcap), func(t *testing.T) {
			nKV := c.pos0 + c.nq
			q := randVec(r, c.nq*c.heads*c.hd, 1)
			k := randVec(r, nKV*c.kvHeads*c.hd, 1)
			v := randVec(r, nKV*c.kvHeads*c.hd, 1)
			scale := float32(1 / math.Sqrt(float64(c.hd)))
			want := make([]float32, len(q))
			kernels.AttentionRef(want, q, c.nq, c.pos0, k, v, nKV, c.heads, c.kvHeads, c.hd, scale, c.softcap, c.window)
			out := poisoned(t, d, len(q))
			d.Attention(out, put(t, d, q), c.nq, c.pos0, put(t, d, k), put(t, d, v), nKV, c.heads, c.kvHeads, c.hd, scale, c.softcap, c.window)
			if e := relErr(get(t, d, out, len(q)), want); e > 1e-5 {
				t.Errorf("relative error %.3g", e)
			}
		})
	}
}

// TestFusedQuantizeMatchesSeparate checks the producers that quantize their
// output for the int8 product that reads it next (RMSNormThen,
// AttentionThen, direct and split): the product must come out bit for bit
// as with the separate quantization launch, and the outputs themselves
// unchanged.
func TestFusedQuantizeMatchesSeparate(t *testing.T) {
	d := device(t)
	defer SetFuseQ8(SetFuseQ8(true))
	r := rand.New(rand.NewPCG(31, 32))
	for _, wc := range weightCases() {
		if wc.name != "q8_0" && wc.name != "q4_0" {
			continue
		}
		for _, n := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/n%d", wc.name, n), func(t *testing.T) {
				const heads, kvHeads, hd, rows = 8, 2, 64, 40
				cols := heads * hd
				_, _, up := wc.make(r, rows, cols)
				w := up(t, d)
				x := put(t, d, randVec(r, n*cols, 1))
				nw := put(t, d, randVec(r, cols, 1))
				product := func(name string, produce func(out Ptr, next *Weight)) {
					out1, out2 := poisoned(t, d, n*cols), poisoned(t, d, n*cols)
					o1, o2 := poisoned(t, d, n*rows), poisoned(t, d, n*rows)
					produce(out1, nil)
					d.MatMul(o1, out1, n, &w, 0)
					produce(out2, &w)
					if !d.q8Ready(out2, n, cols) {
						t.Errorf("%s: the fused launch did not leave its output quantized", name)
					}
					d.MatMul(o2, out2, n, &w, 0)
					a, b := get(t, d, o1, n*rows), get(t, d, o2, n*rows)
					for i := range a {
						if a[i] != b[i] {
							t.Fatalf("%s: product %d is %g fused, %g with its own quantization", name, i, b[i], a[i])
						}
					}
					if e := relErr(get(t, d, out2, n*cols), get(t, d, out1, n*cols)); e != 0 {
						t.Errorf("%s: output differs when fused (%.3g)", name, e)
					}
				}
				product("rmsnorm", func(out Ptr, next *Weight) { d.RMSNormThen(out, x, nw, n, cols, 1e-5, false, next) })
				for _, pos0 := range []int{10, 900} { // one block per head, then split
					nKV := pos0 + n
					k, v := put(t, d, randVec(r, nKV*kvHeads*hd, 1)), put(t, d, randVec(r, nKV*kvHeads*hd, 1))
					product(fmt.Sprintf("attention pos %d", pos0), func(out Ptr, next *Weight) {
						d.AttentionThen(out, x, n, pos0, k, v, nKV, heads, kvHeads, hd, 0.125, 0, 0, next)
					})
				}
			})
		}
	}
}

// TestGraphCapture records a decode-like sequence of launches into a CUDA
// graph and checks that running it gives the same bits as queuing the
// launches directly, on the first recording (instantiated), on a second one
// with other arguments (updated in place) and one of another shape
// (instantiated again); and that a recording during which a scratch buffer
// would grow fails cleanly, so that the caller's uncaptured rerun is right.
func TestGraphCapture(t *testing.T) {
	d := device(t)
	if !d.Graphs() {
		t.Skip("CUDA graphs are off (IMPETUS_CUDA_GRAPHS=1 not set, or the driver lacks them)")
	}
	defer SetFuseQ8(SetFuseQ8(true))
	r := rand.New(rand.NewPCG(41, 42))
	var q4 weightCase
	for _, wc := range weightCases() {
		if wc.name == "q4_0" {
			q4 = wc
		}
	}
	record := func(queue func()) bool {
		d.LockStep()
		defer d.UnlockStep()
		if !d.CaptureBegin() {
			t.Fatal("the recording did not start")
		}
		queue()
		return d.CaptureEnd()
	}
	same := func(what string, a, b []float32) {
		t.Helper()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s: output %d is %g from the graph, %g queued directly", what, i, b[i], a[i])
			}
		}
	}
	const heads, kvHeads, hd, rows = 4, 2, 64, 48
	cols := heads * hd
	_, _, up := q4.make(r, rows, cols)
	w := up(t, d)
	nw := put(t, d, randVec(r, cols, 1))
	for _, c := range []struct{ n, pos0 int }{{1, 300}, {1, 310}, {2, 40}, {1, 320}} {
		x := put(t, d, randVec(r, c.n*cols, 1))
		nKV := c.pos0 + c.n
		k, v := put(t, d, randVec(r, nKV*kvHeads*hd, 1)), put(t, d, randVec(r, nKV*kvHeads*hd, 1))
		h, tmp := poisoned(t, d, c.n*cols), poisoned(t, d, c.n*rows)
		queue := func(out Ptr) func() {
			return func() {
				d.RMSNormThen(h, x, nw, c.n, cols, 1e-5, false, &w)
				d.MatMul(out, h, c.n, &w, 0)
				d.AttentionThen(h, x, c.n, c.pos0, k, v, nKV, heads, kvHeads, hd, 0.125, 0, 0, &w)
				d.MatMulAdd(out, h, c.n, &w, 0, tmp)
			}
		}
		direct, graph := poisoned(t, d, c.n*rows), poisoned(t, d, c.n*rows)
		queue(direct)()
		if !record(queue(graph)) {
			t.Fatalf("n %d pos %d: the recording failed", c.n, c.pos0)
		}
		same(fmt.Sprintf("n %d pos %d", c.n, c.pos0), get(t, d, direct, c.n*rows), get(t, d, graph, c.n*rows))
	}
	// Split attention of 8 rows of 32 heads over 5000 keys needs far more
	// partial-result scratch than anything before it.
	const bigHeads, bigHD, nq, pos0 = 32, 128, 8, 5000
	q := put(t, d, randVec(r, nq*bigHeads*bigHD, 1))
	k, v := put(t, d, randVec(r, (pos0+nq)*bigHeads*bigHD, 1)), put(t, d, randVec(r, (pos0+nq)*bigHeads*bigHD, 1))
	attn := func(out Ptr) func() {
		return func() {
			d.Attention(out, q, nq, pos0, k, v, pos0+nq, bigHeads, bigHeads, bigHD, 0.1, 0, 0)
		}
	}
	graph, direct := poisoned(t, d, nq*bigHeads*bigHD), poisoned(t, d, nq*bigHeads*bigHD)
	if record(attn(graph)) {
		t.Fatal("a recording that grew a scratch buffer ran")
	}
	attn(graph)() // the caller's rerun, uncaptured
	attn(direct)()
	same("after a failed recording", get(t, d, direct, nq*bigHeads*bigHD), get(t, d, graph, nq*bigHeads*bigHD))
	if !d.Graphs() {
		t.Error("graphs went off after a recording failed")
	}
}

func TestMain(m *testing.M) {
	// Keep the tests' compile cache apart from the user's.
	dir := ""
	if os.Getenv("IMPETUS_CUDA_CACHE") == "" {
		if d, err := os.MkdirTemp("", "impetus-cuda-cache"); err == nil {
			dir = d
			os.Setenv("IMPETUS_CUDA_CACHE", dir)
		}
	}
	code := m.Run()
	if dev != nil {
		dev.Close()
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}
