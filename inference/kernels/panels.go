package kernels

import (
	"fmt"
	"math"
	"runtime"

	"github.com/impetusllm/impetus/inference/quant"
)

// Panels is a float weight matrix (float32, bfloat16 or half) repacked for
// products with many activation rows, as an encoder runs a batch of inputs
// through each matrix at once. Rows go in panels of 16: value (i, k) of
// panel p, w[16p+i][k], is stored at (p*cols+k)*16+i, the last panel padded
// with zeros. The kernel keeps whole vectors of outputs in registers and
// broadcasts one activation at a time against a panel's 16 values of a
// column, so it needs no horizontal sums: on a 2-core Zen 5 it ran the
// f16 matrices of a nomic-embed-shaped encoder about a fifth faster than
// the row-major kernel.
//
// Every output is one fused multiply-add chain over the columns in order,
// from zero, whatever n, the tile or the SIMD level (the scalar C path runs
// fmaf in the same order): a sequence's result never depends on its batch,
// and the levels agree bit for bit.
type Panels struct {
	kind       weightKind // kindF32, kindBF16 or kindF16
	rows, cols int
	f          []float32 // kindF32
	h          []uint16  // kindBF16, kindF16
}

// panelRows is the height of a panel: one AVX-512 vector of float32.
const panelRows = 16

// PackPanelsF32 repacks a row-major [rows][cols] float32 matrix.
func PackPanelsF32(w []float32, rows, cols int) *Panels {
	checkPanels("PackPanelsF32", len(w), rows, cols)
	p := &Panels{kind: kindF32, rows: rows, cols: cols, f: make([]float32, panelLen(rows, cols))}
	repack(p.f, w, rows, cols)
	return p
}

// PackPanelsHalf repacks a row-major [rows][cols] matrix of bfloat16 (bf16)
// or IEEE half bits.
func PackPanelsHalf(w []uint16, bf16 bool, rows, cols int) *Panels {
	checkPanels("PackPanelsHalf", len(w), rows, cols)
	p := &Panels{kind: kindF16, rows: rows, cols: cols, h: make([]uint16, panelLen(rows, cols))}
	if bf16 {
		p.kind = kindBF16
	}
	repack(p.h, w, rows, cols)
	return p
}

func checkPanels(name string, n, rows, cols int) {
	if rows <= 0 || cols <= 0 || n < rows*cols {
		panic(fmt.Sprintf("kernels: %s: %d values for %d×%d", name, n, rows, cols))
	}
}

func panelLen(rows, cols int) int {
	return (rows + panelRows - 1) / panelRows * panelRows * cols
}

func repack[T float32 | uint16](dst, w []T, rows, cols int) {
	for o := 0; o < rows; o++ {
		at := o/panelRows*cols*panelRows + o%panelRows
		for k, v := range w[o*cols : (o+1)*cols] {
			dst[at+k*panelRows] = v
		}
	}
}

// Bytes is the memory the repacked weight holds.
func (p *Panels) Bytes() int { return 4*len(p.f) + 2*len(p.h) }

// at is weight (o, k) as float32.
func (p *Panels) at(o, k int) float32 {
	i := o/panelRows*p.cols*panelRows + o%panelRows + k*panelRows
	switch p.kind {
	case kindF32:
		return p.f[i]
	case kindBF16:
		return quant.BF16ToF32(p.h[i])
	}
	return quant.F16ToF32(p.h[i])
}

// Row writes row r of the weight as float32 (embedding lookup).
func (p *Panels) Row(dst []float32, r int) {
	for k := range dst[:p.cols] {
		dst[k] = p.at(r, k)
	}
}

// MatMul sets out ([n][rows]) to x ([n][cols]) times the transposed weight.
func (p *Panels) MatMul(out, x []float32, n int) {
	checkMatMul("Panels.MatMul", out, x, n, p.rows, p.cols, 0, 0)
	runMatMul(matMulJob{kind: kindPanels, out: out, x: x, n: n, pn: p, rows: p.rows, cols: p.cols})
	runtime.KeepAlive(p)
}

// matMulPanelsGo is the portable panel product: the same chain per output
// (math.FMA, rounded to float32 at each step, which can differ from fmaf
// in the last bit by double rounding).
func matMulPanelsGo(j *matMulJob, worker, lo, hi int) {
	p, cols := j.pn, j.cols
	row := thePool.scratchFor(worker, cols)
	for o := lo; o < hi; o++ {
		p.Row(row, o)
		for b := 0; b < j.n; b++ {
			var acc float32
			for k, xv := range j.x[b*cols : (b+1)*cols] {
				acc = fma32(row[k], xv, acc)
			}
			j.out[b*j.rows+o] = acc
		}
	}
}

func fma32(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }
