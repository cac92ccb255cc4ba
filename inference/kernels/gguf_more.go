package kernels

import (
	"encoding/binary"

	"github.com/impetusllm/impetus/inference/quant"
)

// The rarer GGUF block types (FORMATS.md §1c): the legacy 32-element Q4_1,
// Q5_0 and Q5_1, and the K-quants Q5_K (Q5_K_M files), Q2_K and Q3_K.
const (
	// Q4_1BlockBytes: d, m (f16), 16 bytes of nibbles as in Q4_0; w = d*q + m.
	Q4_1BlockBytes = 20
	// Q5_0BlockBytes: d, 32 high bits (u32), nibbles as in Q4_0; w = d*(q-16).
	Q5_0BlockBytes = 22
	// Q5_1BlockBytes: d, m, 32 high bits, nibbles; w = d*q + m.
	Q5_1BlockBytes = 24
	// Q5_KBlockBytes: d, dmin, 12 scale bytes as Q4_K, qh[32], qs[128].
	Q5_KBlockBytes = 176
	// Q2_KBlockBytes: scales[16] (scale and min nibbles), qs[64], d, dmin.
	Q2_KBlockBytes = 84
	// Q3_KBlockBytes: hmask[32], qs[64], 12 bytes of 6-bit scales, d.
	Q3_KBlockBytes = 110
)

// ggml type ids of these formats.
const (
	ggmlQ4_1 = 3
	ggmlQ5_0 = 6
	ggmlQ5_1 = 7
	ggmlQ2_K = 10
	ggmlQ3_K = 11
	ggmlQ5_K = 13
)

func f16At(b []byte) float32 { return quant.F16ToF32(binary.LittleEndian.Uint16(b)) }

// DequantQ4_1Row expands one Q4_1 row of cols elements (cols/32 blocks).
func DequantQ4_1Row(dst []float32, src []byte, cols int) {
	for b := 0; b < cols/GGUFBlockElems; b++ {
		blk := src[b*Q4_1BlockBytes : (b+1)*Q4_1BlockBytes]
		d, m := f16At(blk), f16At(blk[2:])
		for i, q := range blk[4:20] {
			dst[b*32+i] = d*float32(q&15) + m
			dst[b*32+i+16] = d*float32(q>>4) + m
		}
	}
}

// DequantQ5_0Row expands one Q5_0 row: bit i of the u32 qh is the fifth bit
// of element i.
func DequantQ5_0Row(dst []float32, src []byte, cols int) {
	for b := 0; b < cols/GGUFBlockElems; b++ {
		blk := src[b*Q5_0BlockBytes : (b+1)*Q5_0BlockBytes]
		d, qh := f16At(blk), binary.LittleEndian.Uint32(blk[2:])
		for i, q := range blk[6:22] {
			lo := int(q&15) | int(qh>>i&1)<<4
			hi := int(q>>4) | int(qh>>(i+16)&1)<<4
			dst[b*32+i] = d * float32(lo-16)
			dst[b*32+i+16] = d * float32(hi-16)
		}
	}
}

// DequantQ5_1Row expands one Q5_1 row.
func DequantQ5_1Row(dst []float32, src []byte, cols int) {
	for b := 0; b < cols/GGUFBlockElems; b++ {
		blk := src[b*Q5_1BlockBytes : (b+1)*Q5_1BlockBytes]
		d, m, qh := f16At(blk), f16At(blk[2:]), binary.LittleEndian.Uint32(blk[4:])
		for i, q := range blk[8:24] {
			lo := uint32(q&15) | (qh>>i&1)<<4
			hi := uint32(q>>4) | (qh>>(i+16)&1)<<4
			dst[b*32+i] = d*float32(lo) + m
			dst[b*32+i+16] = d*float32(hi) + m
		}
	}
}

// DequantQ5_KRow expands one Q5_K row: Q4_K's layout, plus bit 2c (low
// nibbles of chunk c) or 2c+1 (high nibbles) of qh[l] worth 16.
func DequantQ5_KRow(dst []float32, src []byte, cols int) {
	for b := 0; b < cols/KBlockElems; b++ {
		blk := src[b*Q5_KBlockBytes : (b+1)*Q5_KBlockBytes]
		d, dmin := f16At(blk), f16At(blk[2:])
		scales, qh, qs := blk[4:16], blk[16:48], blk[48:176]
		out := dst[b*KBlockElems : (b+1)*KBlockElems]
		for c := 0; c < 4; c++ {
			sc0, m0 := q4kScaleMin(scales, 2*c)
			sc1, m1 := q4kScaleMin(scales, 2*c+1)
			for l := 0; l < 32; l++ {
				q := qs[32*c+l]
				lo := q&15 | (qh[l]>>(2*c)&1)<<4
				hi := q>>4 | (qh[l]>>(2*c+1)&1)<<4
				out[64*c+l] = d*float32(sc0)*float32(lo) - dmin*float32(m0)
				out[64*c+32+l] = d*float32(sc1)*float32(hi) - dmin*float32(m1)
			}
		}
	}
}

// DequantQ2_KRow expands one Q2_K row. Half h of a block reads
// qs[32h..32h+31]; bit pair k of qs[32h+l] is element 128h+32k+l, whose
// 16-element sub-block 8h+2k+l/16 has scale and min nibbles in scales[]:
// w = d*sc*q - dmin*m.
func DequantQ2_KRow(dst []float32, src []byte, cols int) {
	for b := 0; b < cols/KBlockElems; b++ {
		blk := src[b*Q2_KBlockBytes : (b+1)*Q2_KBlockBytes]
		scales, qs := blk[0:16], blk[16:80]
		d, dmin := f16At(blk[80:]), f16At(blk[82:])
		out := dst[b*KBlockElems : (b+1)*KBlockElems]
		for h := 0; h < 2; h++ {
			for k := 0; k < 4; k++ {
				for l := 0; l < 32; l++ {
					s := scales[8*h+2*k+l/16]
					q := qs[32*h+l] >> (2 * k) & 3
					out[128*h+32*k+l] = d*float32(s&15)*float32(q) - dmin*float32(s>>4)
				}
			}
		}
	}
}

// q3kScale is sub-block i's signed 6-bit Q3_K scale: low nibble from byte
// i (i < 8, low nibble) or i-8 (high nibble), top two bits from byte 8+i%4
// at bit 2*(i/4); stored with an offset of 32.
func q3kScale(s []byte, i int) int {
	lo := s[i%8] >> (4 * (i / 8)) & 15
	hi := s[8+i%4] >> (2 * (i / 4)) & 3
	return int(lo|hi<<4) - 32
}

// DequantQ3_KRow expands one Q3_K row: Q2_K's bit pairs, with bit 4h+k of
// hmask[l] as a third bit (clear: subtract 4); w = d*scale*q.
func DequantQ3_KRow(dst []float32, src []byte, cols int) {
	for b := 0; b < cols/KBlockElems; b++ {
		blk := src[b*Q3_KBlockBytes : (b+1)*Q3_KBlockBytes]
		hmask, qs, scales := blk[0:32], blk[32:96], blk[96:108]
		d := f16At(blk[108:])
		out := dst[b*KBlockElems : (b+1)*KBlockElems]
		for h := 0; h < 2; h++ {
			for k := 0; k < 4; k++ {
				for l := 0; l < 32; l++ {
					q := int(qs[32*h+l] >> (2 * k) & 3)
					if hmask[l]>>(4*h+k)&1 == 0 {
						q -= 4
					}
					out[128*h+32*k+l] = d * float32(q3kScale(scales, 8*h+2*k+l/16)) * float32(q)
				}
			}
		}
	}
}

// MatMulQ4_1Ref multiplies by a Q4_1 weight, one dequantized row at a time.
func MatMulQ4_1Ref(out, x []float32, n int, w []byte, rows, cols int) {
	matMulBlocksRef(out, x, n, w, rows, cols, Q4_1BlockBytes, DequantQ4_1Row)
}

// MatMulQ5_0Ref multiplies by a Q5_0 weight, one dequantized row at a time.
func MatMulQ5_0Ref(out, x []float32, n int, w []byte, rows, cols int) {
	matMulBlocksRef(out, x, n, w, rows, cols, Q5_0BlockBytes, DequantQ5_0Row)
}

// MatMulQ5_1Ref multiplies by a Q5_1 weight, one dequantized row at a time.
func MatMulQ5_1Ref(out, x []float32, n int, w []byte, rows, cols int) {
	matMulBlocksRef(out, x, n, w, rows, cols, Q5_1BlockBytes, DequantQ5_1Row)
}

// MatMulQ5_KRef multiplies by a Q5_K weight, one dequantized row at a time.
func MatMulQ5_KRef(out, x []float32, n int, w []byte, rows, cols int) {
	matMulKRef(out, x, n, w, rows, cols, Q5_KBlockBytes, DequantQ5_KRow)
}

// MatMulQ2_KRef multiplies by a Q2_K weight, one dequantized row at a time.
func MatMulQ2_KRef(out, x []float32, n int, w []byte, rows, cols int) {
	matMulKRef(out, x, n, w, rows, cols, Q2_KBlockBytes, DequantQ2_KRow)
}

// MatMulQ3_KRef multiplies by a Q3_K weight, one dequantized row at a time.
func MatMulQ3_KRef(out, x []float32, n int, w []byte, rows, cols int) {
	matMulKRef(out, x, n, w, rows, cols, Q3_KBlockBytes, DequantQ3_KRow)
}

// MatMulQ4_1 multiplies by a GGUF Q4_1 weight; cols must be a multiple of 32.
func MatMulQ4_1(out, x []float32, n int, w []byte, rows, cols int) {
	matMulGGUF("MatMulQ4_1", kindQ4_1, Q4_1BlockBytes, out, x, n, w, rows, cols)
}

// MatMulQ5_0 multiplies by a GGUF Q5_0 weight; cols must be a multiple of 32.
func MatMulQ5_0(out, x []float32, n int, w []byte, rows, cols int) {
	matMulGGUF("MatMulQ5_0", kindQ5_0, Q5_0BlockBytes, out, x, n, w, rows, cols)
}

// MatMulQ5_1 multiplies by a GGUF Q5_1 weight; cols must be a multiple of 32.
func MatMulQ5_1(out, x []float32, n int, w []byte, rows, cols int) {
	matMulGGUF("MatMulQ5_1", kindQ5_1, Q5_1BlockBytes, out, x, n, w, rows, cols)
}

// MatMulQ5_K multiplies by a GGUF Q5_K weight; cols must be a multiple of 256.
func MatMulQ5_K(out, x []float32, n int, w []byte, rows, cols int) {
	matMulK("MatMulQ5_K", kindQ5_K, Q5_KBlockBytes, out, x, n, w, rows, cols)
}

// MatMulQ2_K multiplies by a GGUF Q2_K weight; cols must be a multiple of 256.
func MatMulQ2_K(out, x []float32, n int, w []byte, rows, cols int) {
	matMulK("MatMulQ2_K", kindQ2_K, Q2_KBlockBytes, out, x, n, w, rows, cols)
}

// MatMulQ3_K multiplies by a GGUF Q3_K weight; cols must be a multiple of 256.
func MatMulQ3_K(out, x []float32, n int, w []byte, rows, cols int) {
	matMulK("MatMulQ3_K", kindQ3_K, Q3_KBlockBytes, out, x, n, w, rows, cols)
}

// ggufKinds maps each GGUF weight kind to its ggml type id, block size in
// elements and bytes, and row dequantizer.
var ggufKinds = map[weightKind]struct {
	ggml, elems, bytes int
	deq                func(dst []float32, src []byte, cols int)
}{
	kindQ8_0: {ggmlQ8_0, GGUFBlockElems, Q8_0BlockBytes, DequantQ8_0Row},
	kindQ4_0: {ggmlQ4_0, GGUFBlockElems, Q4_0BlockBytes, DequantQ4_0Row},
	kindQ4_1: {ggmlQ4_1, GGUFBlockElems, Q4_1BlockBytes, DequantQ4_1Row},
	kindQ5_0: {ggmlQ5_0, GGUFBlockElems, Q5_0BlockBytes, DequantQ5_0Row},
	kindQ5_1: {ggmlQ5_1, GGUFBlockElems, Q5_1BlockBytes, DequantQ5_1Row},
	kindQ2_K: {ggmlQ2_K, KBlockElems, Q2_KBlockBytes, DequantQ2_KRow},
	kindQ3_K: {ggmlQ3_K, KBlockElems, Q3_KBlockBytes, DequantQ3_KRow},
	kindQ4_K: {ggmlQ4_K, KBlockElems, Q4_KBlockBytes, DequantQ4_KRow},
	kindQ5_K: {ggmlQ5_K, KBlockElems, Q5_KBlockBytes, DequantQ5_KRow},
	kindQ6_K: {ggmlQ6_K, KBlockElems, Q6_KBlockBytes, DequantQ6_KRow},
}
