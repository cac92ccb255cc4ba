package kernels

import (
	"encoding/binary"

	"github.com/impetusllm/impetus/inference/quant"
)

// Packers for the GGUF formats that reuse a layout of packed.go: Q4_1 and
// Q5_1 as affine groups of 32 (scale d and bias m per block, as MLX), Q5_K
// as Q5_0's codes under Q4_K's scales and mins, Q3_K and Q2_K in narrow
// layouts at 3 and 2 bits a code. Values are the file's own: the same
// codes, scales and mins, only placed and offset differently.

// PackQ4_1 packs a GGUF Q4_1 matrix: w = d*q + m per 32-block, in the Q4
// nibble layout with d and m as f16 scale and bias of groups of 32.
func PackQ4_1(w []byte, rows, cols int) *Packed {
	if !packable(rows, cols) {
		return nil
	}
	checkPackLen("PackQ4_1", len(w), rows*cols/32*quant.Q4_1BlockBytes)
	p := newAffine(rows, cols, packQ4)
	packAffineBlocks(p, w, quant.Q4_1BlockBytes, func(dst []byte, r int, blk []byte) {
		// Byte j holds elements j and j+16, as in Q4_0 and the Q4 layout.
		for i := 0; i < 4; i++ {
			copy(dst[i*64+r*4:][:4], blk[4+4*i:])
		}
	})
	return p
}

// PackQ5_1 packs a GGUF Q5_1 matrix: w = d*q + m per 32-block, in the
// Q5_0 code layout (packQ5U) with d and m as f16 scale and bias.
func PackQ5_1(w []byte, rows, cols int) *Packed {
	if !packable(rows, cols) {
		return nil
	}
	checkPackLen("PackQ5_1", len(w), rows*cols/32*quant.Q5_1BlockBytes)
	p := newAffine(rows, cols, packQ5U)
	p.off = 16 // see K_PK_Q5U in kernels.h
	packAffineBlocks(p, w, quant.Q5_1BlockBytes, func(dst []byte, r int, blk []byte) {
		qh := binary.LittleEndian.Uint32(blk[4:])
		putQ5(dst, r, func(e int) byte { return blk[8+e%16]>>(4*(e/16))&15 | byte(qh>>e&1)<<4 })
	})
	return p
}

// PackQ5_K packs a GGUF Q5_K matrix (cols a multiple of 256): Q4_K's
// scales and mins (PackQ4_K), codes in the Q5_0 layout.
func PackQ5_K(w []byte, rows, cols int) *Packed {
	if !packable(rows, cols) || cols%quant.QK_K != 0 {
		return nil
	}
	checkPackLen("PackQ5_K", len(w), rows*cols/quant.QK_K*quant.Q5_KBlockBytes)
	return packQ4Like(w, rows, cols, packQ5_K, quant.Q5_KBlockBytes, func(blk []byte) func(e int) byte {
		qh, qs := blk[16:48], blk[48:176]
		// Element e: chunk c = e/64, its low (first 32) or high nibbles,
		// with bit 2c or 2c+1 of qh[e%32] worth 16 (DequantQ5_KRow).
		return func(e int) byte {
			c, hi, l := e/64, e%64/32, e%32
			return qs[32*c+l]>>(4*hi)&15 | (qh[l]>>(2*c+hi)&1)<<4
		}
	})
}

// PackQ3_K packs a GGUF Q3_K matrix (cols a multiple of 256) at 3 bits a
// code (packQ3_K: a 2-bit pair and a plane of third bits, as the file's
// qs and hmask), with Q6_K's scales: d as f16 and the 6-bit scales as
// int8. The kernels load its codes as Q6_K's vectors of q+28, so that
// Q6_K's offset of 32 takes Q3_K's 4 off (weight d*scale*(q-4)).
func PackQ3_K(w []byte, rows, cols int) *Packed {
	if !packable(rows, cols) || cols%quant.QK_K != 0 {
		return nil
	}
	checkPackLen("PackQ3_K", len(w), rows*cols/quant.QK_K*quant.Q3_KBlockBytes)
	return packQ6Like(w, rows, cols, packQ3_K, quant.Q3_KBlockBytes, 108,
		func(blk []byte, i int) byte { return byte(int8(quant.Q3KScale(blk[96:108], i))) },
		func(blk []byte, e int) byte {
			// Element 128h+32k+l: bit pair k of qs[32h+l], bit 4h+k of hmask[l] (DequantQ3_KRow).
			h, k, l := e/128, e%128/32, e%32
			q := blk[32+32*h+l] >> (2 * k) & 3
			return q | (blk[l]>>(4*h+k)&1)<<2
		})
}

// newAffine allocates a GGUF matrix of scale and bias per 32-block (f16).
func newAffine(rows, cols, kind int) *Packed {
	nb := cols / 32
	p := newPacked(rows, cols, kind, 2*rows*nb, 2*rows*nb)
	p.affine, p.group, p.sfmt = true, 32, packF16
	return p
}

// packAffineBlocks is packBlocks for blocks that start with f16 d and m:
// d goes to the scales, m to the biases.
func packAffineBlocks(p *Packed, w []byte, blockBytes int, put func(dst []byte, r int, blk []byte)) {
	nb, cb := p.cols/32, packCodeBytes[p.kind]
	packRowGroups(p.rows, func(g int) {
		for r := 0; r < packedTile; r++ {
			src := w[(g*packedTile+r)*nb*blockBytes:]
			for k := 0; k < nb; k++ {
				blk := src[k*blockBytes : (k+1)*blockBytes]
				at := g*nb + k
				copy(p.scales[(at*packedTile+r)*2:][:2], blk[:2])
				copy(p.biases[(at*packedTile+r)*2:][:2], blk[2:4])
				put(p.codes[at*cb:], r, blk)
			}
		}
	})
}

// q2kSBBytes is the scale bytes of one Q2_K super-block of 16 rows:
// [d][dmin] (f16) [16 sub-blocks][16 rows] of the file's scale (low
// nibble) and min (high nibble) bytes.
const q2kSBBytes = 4*packedTile + 16*packedTile

// PackQ2_K packs a GGUF Q2_K matrix (cols a multiple of 256) at the file's
// size: its 2-bit codes in a 2-bit pair (packQ2_K), d and dmin as f16 and
// the bytes holding the 4-bit scale and min of each 16-element sub-block
// as they are. The mins multiply the activation sums of each half block,
// which the quantizer hands over with off = hoff = -1.
func PackQ2_K(w []byte, rows, cols int) *Packed {
	if !packable(rows, cols) || cols%quant.QK_K != 0 {
		return nil
	}
	nb, nsb := cols/32, cols/quant.QK_K
	checkPackLen("PackQ2_K", len(w), rows*nsb*quant.Q2_KBlockBytes)
	p := newPacked(rows, cols, packQ2_K, rows/packedTile*nsb*q2kSBBytes, 0)
	p.off, p.hoff = -1, -1
	packRowGroups(rows, func(g int) {
		for r := 0; r < packedTile; r++ {
			src := w[(g*packedTile+r)*nsb*quant.Q2_KBlockBytes:]
			for sb := 0; sb < nsb; sb++ {
				blk := src[sb*quant.Q2_KBlockBytes : (sb+1)*quant.Q2_KBlockBytes]
				ss := p.scales[(g*nsb+sb)*q2kSBBytes:]
				copy(ss[2*r:2*r+2], blk[80:82])
				copy(ss[2*packedTile+2*r:][:2], blk[82:84])
				for i := 0; i < 16; i++ {
					ss[4*packedTile+i*packedTile+r] = blk[i]
				}
				// Element 128h+32k+l: bit pair k of qs[32h+l] (DequantQ2_KRow).
				code := func(e int) byte { return blk[16+32*(e/128)+e%32] >> (2 * (e % 128 / 32)) & 3 }
				for kk := 0; kk < 8; kk++ {
					putPair2(p.codes[(g*nb+sb*8+kk)*packCodeBytes[packQ2_K]:], r, func(e int) byte { return code(32*kk + e) })
				}
			}
		}
	})
	return p
}
