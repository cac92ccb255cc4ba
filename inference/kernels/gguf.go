package kernels

import (
	"encoding/binary"
	"fmt"

	"github.com/impetusllm/impetus/inference/quant"
)

// GGUF block formats (FORMATS.md §1c): every row of a weight is a run of
// 32-element blocks, each an f16 scale d followed by the codes.
const (
	// Q8_0BlockBytes is the size of a Q8_0 block: d, then 32 int8 codes; w = d*q.
	Q8_0BlockBytes = 34
	// Q4_0BlockBytes is the size of a Q4_0 block: d, then 16 bytes whose low
	// nibbles are elements 0..15 and high nibbles 16..31; w = (q-8)*d.
	Q4_0BlockBytes = 18
	// GGUFBlockElems is the number of elements in a Q8_0 or Q4_0 block.
	GGUFBlockElems = 32
)

// ggml type ids, as the C kernels take them.
const (
	ggmlQ4_0 = 2
	ggmlQ8_0 = 8
)

// DequantQ8_0Row expands one Q8_0 row of cols elements (cols/32 blocks).
func DequantQ8_0Row(dst []float32, src []byte, cols int) {
	for b := 0; b < cols/GGUFBlockElems; b++ {
		blk := src[b*Q8_0BlockBytes : (b+1)*Q8_0BlockBytes]
		d := quant.F16ToF32(binary.LittleEndian.Uint16(blk))
		for i, q := range blk[2:] {
			dst[b*GGUFBlockElems+i] = d * float32(int8(q))
		}
	}
}

// DequantQ4_0Row expands one Q4_0 row of cols elements (cols/32 blocks).
func DequantQ4_0Row(dst []float32, src []byte, cols int) {
	for b := 0; b < cols/GGUFBlockElems; b++ {
		blk := src[b*Q4_0BlockBytes : (b+1)*Q4_0BlockBytes]
		d := quant.F16ToF32(binary.LittleEndian.Uint16(blk))
		for i, q := range blk[2:] {
			dst[b*GGUFBlockElems+i] = float32(int(q&15)-8) * d
			dst[b*GGUFBlockElems+i+16] = float32(int(q>>4)-8) * d
		}
	}
}

// MatMulQ8_0Ref multiplies by a Q8_0 weight, one dequantized row at a time.
func MatMulQ8_0Ref(out, x []float32, n int, w []byte, rows, cols int) {
	matMulBlocksRef(out, x, n, w, rows, cols, Q8_0BlockBytes, DequantQ8_0Row)
}

// MatMulQ4_0Ref multiplies by a Q4_0 weight, one dequantized row at a time.
func MatMulQ4_0Ref(out, x []float32, n int, w []byte, rows, cols int) {
	matMulBlocksRef(out, x, n, w, rows, cols, Q4_0BlockBytes, DequantQ4_0Row)
}

func matMulBlocksRef(out, x []float32, n int, w []byte, rows, cols, blockBytes int, deq func([]float32, []byte, int)) {
	rowBytes := cols / GGUFBlockElems * blockBytes
	row := make([]float32, cols)
	for o := 0; o < rows; o++ {
		deq(row, w[o*rowBytes:(o+1)*rowBytes], cols)
		for b := 0; b < n; b++ {
			out[b*rows+o] = dotRef(row, x[b*cols:(b+1)*cols])
		}
	}
}

// MatMulQ8_0 sets out[b*rows+o] = sum_i x[b*cols+i]*W[o][i] for a GGUF Q8_0
// weight w of rows*cols/32 blocks; cols must be a multiple of 32.
func MatMulQ8_0(out, x []float32, n int, w []byte, rows, cols int) {
	matMulGGUF("MatMulQ8_0", kindQ8_0, Q8_0BlockBytes, out, x, n, w, rows, cols)
}

// MatMulQ4_0 is MatMulQ8_0 for a GGUF Q4_0 weight.
func MatMulQ4_0(out, x []float32, n int, w []byte, rows, cols int) {
	matMulGGUF("MatMulQ4_0", kindQ4_0, Q4_0BlockBytes, out, x, n, w, rows, cols)
}

func matMulGGUF(name string, kind weightKind, blockBytes int, out, x []float32, n int, w []byte, rows, cols int) {
	if cols%GGUFBlockElems != 0 {
		panic(fmt.Sprintf("kernels: %s: cols %d not a multiple of %d", name, cols, GGUFBlockElems))
	}
	checkMatMul(name, out, x, n, rows, cols, len(w), rows*cols/GGUFBlockElems*blockBytes)
	p := thePool
	p.mu.Lock()
	defer p.mu.Unlock()
	j := &p.jobs.mm
	*j = matMulJob{kind: kind, out: out, x: x, n: n, wb: w, rows: rows, cols: cols, group: GGUFBlockElems}
	p.matMul(j)
	*j = matMulJob{}
}
