package kernels

import (
	"fmt"

	"github.com/impetusllm/impetus/inference/quant"
)

// ggufKernels are the GGUF block types with matmul kernels of their own
// (kernels.c, simd_*.c), which take the ggml type id as it is. Their block
// layouts are quant's; these kernels and quant.DequantizeGGML must agree.
var ggufKernels = map[quant.GGMLType]bool{
	quant.GGMLQ8_0: true, quant.GGMLQ4_0: true, quant.GGMLQ4_1: true, quant.GGMLQ5_0: true,
	quant.GGMLQ5_1: true, quant.GGMLQ2_K: true, quant.GGMLQ3_K: true, quant.GGMLQ4_K: true,
	quant.GGMLQ5_K: true, quant.GGMLQ6_K: true,
}

// MatMulGGUF sets out[b*rows+o] = sum_i x[b*cols+i]*W[o][i] for a GGUF
// weight w of block type t, rows*cols/t.BlockSize() blocks; cols must be a
// multiple of the block size. The types of ggufKernels run their own
// kernel; any other type quant.DequantizeGGML decodes is expanded a tile of
// rows at a time and multiplied in float32 (matMulDequant): the same
// results to float rounding, several times slower.
func MatMulGGUF(t quant.GGMLType, out, x []float32, n int, w []byte, rows, cols int) {
	if !ggufKernels[t] {
		matMulDequant(t, out, x, n, w, rows, cols)
		return
	}
	bs := t.BlockSize()
	if cols%bs != 0 {
		panic(fmt.Sprintf("kernels: MatMulGGUF: cols %d not a multiple of the %s block of %d", cols, t, bs))
	}
	checkMatMul("MatMulGGUF", out, x, n, rows, cols, len(w), rows*(cols/bs)*t.TypeSize())
	runMatMul(matMulJob{kind: kindGGUF, typ: t, out: out, x: x, n: n, wb: w, rows: rows, cols: cols})
}

// MatMulGGUFRef multiplies by a GGUF weight of block type t, one row
// expanded by quant.DequantizeGGML at a time.
func MatMulGGUFRef(t quant.GGMLType, out, x []float32, n int, w []byte, rows, cols int) {
	if !t.Dequantizable() || t.BlockSize() == 0 {
		panic(fmt.Sprintf("kernels: MatMulGGUFRef: no decoder for ggml type %s", t))
	}
	rb := cols / t.BlockSize() * t.TypeSize()
	row := make([]float32, cols)
	for o := 0; o < rows; o++ {
		if err := quant.DequantizeGGML(t, w[o*rb:(o+1)*rb], row); err != nil {
			panic(fmt.Sprintf("kernels: MatMulGGUFRef: %v", err))
		}
		for b := 0; b < n; b++ {
			out[b*rows+o] = dotRef(row, x[b*cols:(b+1)*cols])
		}
	}
}

// matMulDequant is MatMulGGUF for the block types without a kernel of
// their own: each worker expands a tile of its rows to float32 with quant's
// decoder and multiplies the tile with the float32 kernel, so the work is
// spread over the threads and no whole matrix is ever expanded.
func matMulDequant(t quant.GGMLType, out, x []float32, n int, w []byte, rows, cols int) {
	bs, ts := t.BlockSize(), t.TypeSize()
	if !t.Dequantizable() || bs == 0 {
		panic(fmt.Sprintf("kernels: MatMulGGUF: no decoder for ggml type %s", t))
	}
	if cols%bs != 0 {
		panic(fmt.Sprintf("kernels: MatMulGGUF: cols %d not a multiple of the %s block of %d", cols, t, bs))
	}
	checkMatMul("MatMulGGUF", out, x, n, rows, cols, len(w), rows*(cols/bs)*ts)
	p := thePool
	p.mu.Lock()
	defer p.mu.Unlock()
	tile := rowAlign
	if n > 4 && cols > 0 {
		// Larger tiles stream the activations fewer times.
		tile = min(8*rowAlign, max(rowAlign, batchChunkBytes/(4*cols)/rowAlign*rowAlign))
	}
	for len(dequantScratch) < p.workers {
		dequantScratch = append(dequantScratch, [2][]float32{})
	}
	j := &dequantTheJob
	*j = dequantJob{out: out, x: x, n: n, w: w, typ: t, rows: rows, cols: cols, rowBytes: cols / bs * ts, tile: tile}
	p.parallel(j, rows, p.grainFor(rows, tile))
	*j = dequantJob{}
}

// dequantJob is one matMulDequant call, split by tiles of output rows.
type dequantJob struct {
	out, x         []float32
	n              int
	w              []byte
	typ            quant.GGMLType
	rows, cols     int
	rowBytes, tile int
}

var (
	dequantTheJob dequantJob // reused; guarded by thePool.mu
	// dequantScratch holds, per worker, a tile of expanded rows and its
	// outputs; guarded by thePool.mu, each worker touching only its own.
	dequantScratch [][2][]float32
)

func dequantBuf(worker, k, n int) []float32 {
	s := &dequantScratch[worker][k]
	if cap(*s) < n {
		*s = make([]float32, n)
	}
	return (*s)[:n]
}

func (j *dequantJob) run(worker, lo, hi int) {
	for t0 := lo; t0 < hi; t0 += j.tile {
		nr := min(j.tile, hi-t0)
		wt := dequantBuf(worker, 0, nr*j.cols)
		ot := dequantBuf(worker, 1, j.n*nr)
		if err := quant.DequantizeGGML(j.typ, j.w[t0*j.rowBytes:(t0+nr)*j.rowBytes], wt); err != nil {
			panic(fmt.Sprintf("kernels: MatMulGGUF: %v", err)) // sizes were checked
		}
		sub := matMulJob{kind: kindF32, out: ot, x: j.x, xp: j.x, n: j.n, wf: wt, rows: nr, cols: j.cols}
		matMulRows(&sub, worker, 0, nr)
		for b := 0; b < j.n; b++ {
			copy(j.out[b*j.rows+t0:b*j.rows+t0+nr], ot[b*nr:(b+1)*nr])
		}
	}
}

// ggufPackers repack each GGUF block type that has a packed int8 layout.
var ggufPackers = map[quant.GGMLType]func(w []byte, rows, cols int) *Packed{
	quant.GGMLQ4_0: PackQ4_0, quant.GGMLQ8_0: PackQ8_0, quant.GGMLQ5_0: PackQ5_0,
	quant.GGMLQ4_K: PackQ4_K, quant.GGMLQ6_K: PackQ6_K,
	// Formats that reuse another format's packed layout (packed_more.go).
	quant.GGMLQ5_K: PackQ5_K, quant.GGMLQ4_1: PackQ4_1, quant.GGMLQ5_1: PackQ5_1,
	quant.GGMLQ3_K: PackQ3_K, quant.GGMLQ2_K: PackQ2_K,
}

// PackGGUF repacks a GGUF weight of block type t for the int8 kernels, or
// returns nil when t has no packed layout or the shape doesn't fit one.
func PackGGUF(t quant.GGMLType, w []byte, rows, cols int) *Packed {
	if pack := ggufPackers[t]; pack != nil {
		return pack(w, rows, cols)
	}
	return nil
}
