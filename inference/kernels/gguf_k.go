package kernels

import (
	"encoding/binary"
	"fmt"

	"github.com/impetusllm/impetus/inference/quant"
)

// GGUF K-quant super-blocks of 256 elements (FORMATS.md §1c), the formats
// of the common "Q4_K_M" files: Q4_K for most weights, Q6_K for some.
const (
	// KBlockElems is the number of elements in a K-quant super-block.
	KBlockElems = 256
	// Q4_KBlockBytes: d, dmin (f16), 12 bytes of 6-bit scale/min pairs, 128 bytes of nibbles.
	Q4_KBlockBytes = 144
	// Q6_KBlockBytes: ql[128], qh[64], int8 scales[16], then d (f16).
	Q6_KBlockBytes = 210
)

const (
	ggmlQ4_K = 12
	ggmlQ6_K = 14
)

// q4kScaleMin unpacks pair j (0..7) of the 12 packed 6-bit scale bytes.
func q4kScaleMin(q []byte, j int) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// DequantQ4_KRow expands one Q4_K row of cols elements (cols/256 blocks):
// chunk c of 64 elements reads bytes 32c..32c+31 of qs, low nibbles with
// scale pair 2c, high nibbles with pair 2c+1; w = d*sc*q - dmin*m.
func DequantQ4_KRow(dst []float32, src []byte, cols int) {
	for b := 0; b < cols/KBlockElems; b++ {
		blk := src[b*Q4_KBlockBytes : (b+1)*Q4_KBlockBytes]
		d := quant.F16ToF32(binary.LittleEndian.Uint16(blk))
		dmin := quant.F16ToF32(binary.LittleEndian.Uint16(blk[2:]))
		scales, qs := blk[4:16], blk[16:]
		out := dst[b*KBlockElems : (b+1)*KBlockElems]
		for c := 0; c < 4; c++ {
			sc0, m0 := q4kScaleMin(scales, 2*c)
			sc1, m1 := q4kScaleMin(scales, 2*c+1)
			for l := 0; l < 32; l++ {
				q := qs[32*c+l]
				out[64*c+l] = d*float32(sc0)*float32(q&15) - dmin*float32(m0)
				out[64*c+32+l] = d*float32(sc1)*float32(q>>4) - dmin*float32(m1)
			}
		}
	}
}

// DequantQ6_KRow expands one Q6_K row of cols elements (cols/256 blocks).
// Half h of a block uses ql[64h:], qh[32h:] and scales[8h:]; its element
// l+32k (l < 32, k < 4) takes the low nibble (k < 2) or high nibble of
// ql[l] (k = 0, 2) or ql[l+32] (k = 1, 3), two high bits (qh[l]>>2k)&3 and
// scale scales[l/16+2k]: w = d*sc*(q-32).
func DequantQ6_KRow(dst []float32, src []byte, cols int) {
	for b := 0; b < cols/KBlockElems; b++ {
		blk := src[b*Q6_KBlockBytes : (b+1)*Q6_KBlockBytes]
		d := quant.F16ToF32(binary.LittleEndian.Uint16(blk[208:]))
		for h := 0; h < 2; h++ {
			ql, qh, sc := blk[64*h:], blk[128+32*h:], blk[192+8*h:]
			out := dst[b*KBlockElems+128*h:]
			for l := 0; l < 32; l++ {
				for k := 0; k < 4; k++ {
					lo := ql[l+32*(k&1)]
					if k >= 2 {
						lo >>= 4
					}
					q := int(lo&15) | int(qh[l]>>(2*k)&3)<<4
					out[l+32*k] = d * float32(int8(sc[l/16+2*k])) * float32(q-32)
				}
			}
		}
	}
}

// MatMulQ4_KRef multiplies by a Q4_K weight, one dequantized row at a time.
func MatMulQ4_KRef(out, x []float32, n int, w []byte, rows, cols int) {
	matMulKRef(out, x, n, w, rows, cols, Q4_KBlockBytes, DequantQ4_KRow)
}

// MatMulQ6_KRef multiplies by a Q6_K weight, one dequantized row at a time.
func MatMulQ6_KRef(out, x []float32, n int, w []byte, rows, cols int) {
	matMulKRef(out, x, n, w, rows, cols, Q6_KBlockBytes, DequantQ6_KRow)
}

func matMulKRef(out, x []float32, n int, w []byte, rows, cols, blockBytes int, deq func([]float32, []byte, int)) {
	rowBytes := cols / KBlockElems * blockBytes
	row := make([]float32, cols)
	for o := 0; o < rows; o++ {
		deq(row, w[o*rowBytes:(o+1)*rowBytes], cols)
		for b := 0; b < n; b++ {
			out[b*rows+o] = dotRef(row, x[b*cols:(b+1)*cols])
		}
	}
}

// MatMulQ4_K multiplies by a GGUF Q4_K weight (rows*cols/256 blocks); cols
// must be a multiple of 256.
func MatMulQ4_K(out, x []float32, n int, w []byte, rows, cols int) {
	matMulK("MatMulQ4_K", kindQ4_K, Q4_KBlockBytes, out, x, n, w, rows, cols)
}

// MatMulQ6_K multiplies by a GGUF Q6_K weight (rows*cols/256 blocks); cols
// must be a multiple of 256.
func MatMulQ6_K(out, x []float32, n int, w []byte, rows, cols int) {
	matMulK("MatMulQ6_K", kindQ6_K, Q6_KBlockBytes, out, x, n, w, rows, cols)
}

func matMulK(name string, kind weightKind, blockBytes int, out, x []float32, n int, w []byte, rows, cols int) {
	if cols%KBlockElems != 0 {
		panic(fmt.Sprintf("kernels: %s: cols %d not a multiple of %d", name, cols, KBlockElems))
	}
	checkMatMul(name, out, x, n, rows, cols, len(w), rows*cols/KBlockElems*blockBytes)
	p := thePool
	p.mu.Lock()
	defer p.mu.Unlock()
	j := &p.jobs.mm
	*j = matMulJob{kind: kind, out: out, x: x, n: n, wb: w, rows: rows, cols: cols}
	p.matMul(j)
	*j = matMulJob{}
}
