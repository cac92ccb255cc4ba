package kernels

import (
	"fmt"

	"github.com/impetusllm/impetus/inference/quant"
)

// MatMulGGML sets out[b*rows+o] = sum_i x[b*cols+i]*W[o][i] for a GGUF weight
// w of block type t, for any type quant.DequantizeGGML decodes. It serves the
// block types without a dedicated kernel (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K,
// Q5_K): each worker expands a tile of its rows to float32 with the
// reference decoder and multiplies the tile with the float32 kernel, so the
// work is spread over the threads and no whole matrix is ever expanded.
// cols must be a multiple of t's block size.
func MatMulGGML(out, x []float32, n int, w []byte, t quant.GGMLType, rows, cols int) {
	bs, ts := t.BlockSize(), t.TypeSize()
	if !t.Dequantizable() || bs == 0 {
		panic(fmt.Sprintf("kernels: MatMulGGML: no decoder for ggml type %s", t))
	}
	if cols%bs != 0 {
		panic(fmt.Sprintf("kernels: MatMulGGML: cols %d not a multiple of the %s block of %d", cols, t, bs))
	}
	checkMatMul("MatMulGGML", out, x, n, rows, cols, len(w), rows*(cols/bs)*ts)
	p := thePool
	p.mu.Lock()
	defer p.mu.Unlock()
	tile := rowAlign
	if n > 4 && cols > 0 {
		// Larger tiles stream the activations fewer times.
		tile = min(8*rowAlign, max(rowAlign, batchChunkBytes/(4*cols)/rowAlign*rowAlign))
	}
	for len(ggmlScratch) < p.workers {
		ggmlScratch = append(ggmlScratch, [2][]float32{})
	}
	j := &ggmlTheJob
	*j = ggmlJob{out: out, x: x, n: n, w: w, typ: t, rows: rows, cols: cols, rowBytes: cols / bs * ts, tile: tile}
	p.parallel(j, rows, p.grainFor(rows, tile))
	*j = ggmlJob{}
}

// ggmlJob is one MatMulGGML call, split by tiles of output rows.
type ggmlJob struct {
	out, x         []float32
	n              int
	w              []byte
	typ            quant.GGMLType
	rows, cols     int
	rowBytes, tile int
}

var (
	ggmlTheJob ggmlJob // reused; guarded by thePool.mu
	// ggmlScratch holds, per worker, a tile of expanded rows and its
	// outputs; guarded by thePool.mu, each worker touching only its own.
	ggmlScratch [][2][]float32
)

func ggmlBuf(worker, k, n int) []float32 {
	s := &ggmlScratch[worker][k]
	if cap(*s) < n {
		*s = make([]float32, n)
	}
	return (*s)[:n]
}

func (j *ggmlJob) run(worker, lo, hi int) {
	for t0 := lo; t0 < hi; t0 += j.tile {
		nr := min(j.tile, hi-t0)
		wt := ggmlBuf(worker, 0, nr*j.cols)
		ot := ggmlBuf(worker, 1, j.n*nr)
		if err := quant.DequantizeGGML(j.typ, j.w[t0*j.rowBytes:(t0+nr)*j.rowBytes], wt); err != nil {
			panic(fmt.Sprintf("kernels: MatMulGGML: %v", err)) // sizes were checked
		}
		sub := matMulJob{kind: kindF32, out: ot, x: j.x, xp: j.x, n: j.n, wf: wt, rows: nr, cols: j.cols}
		matMulRows(&sub, worker, 0, nr)
		for b := 0; b < j.n; b++ {
			copy(j.out[b*j.rows+t0:b*j.rows+t0+nr], ot[b*nr:(b+1)*nr])
		}
	}
}
