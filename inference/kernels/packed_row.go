package kernels

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/impetusllm/impetus/inference/quant"
)

// Row writes row r of the packed weight as float32 into dst (cols
// elements), the same values the source format dequantizes to. It lets a
// model read an embedding row from the packed copy, so the source's mapped
// pages can be released once the weight is packed.
func (p *Packed) Row(dst []float32, r int) {
	if r < 0 || r >= p.rows || len(dst) < p.cols {
		panic(fmt.Sprintf("kernels: Packed.Row: row %d of %d into %d elements (want %d)", r, p.rows, len(dst), p.cols))
	}
	g, lane := r/packedTile, r%packedTile
	nb, cb := p.cols/32, packCodeBytes[p.kind]
	switch {
	case p.affine:
		p.rowMLX(dst, g, lane)
	case p.kind == packQ4_K || p.kind == packQ5_K:
		p.rowQ4_K(dst, g, lane)
	case p.kind == packQ6_K || p.kind == packQ3_K:
		p.rowQ6_K(dst, g, lane)
	case p.kind == packQ2_K:
		p.rowQ2_K(dst, g, lane)
	default: // Q4_0, Q8_0, Q5_0: one f16 scale per 32-block
		for k := 0; k < nb; k++ {
			at := g*nb + k
			d := quant.F16ToF32(binary.LittleEndian.Uint16(p.scales[(at*packedTile+lane)*2:]))
			codes, out := p.codes[at*cb:], dst[32*k:32*k+32]
			for e := 0; e < 32; e++ {
				out[e] = float32(int(blockCode(p.kind, codes, lane, e))-p.off) * d
			}
		}
	}
}

// blockCode is element e (0..31) of lane r's 32-block in the Q4, Q8, Q5_0
// or a narrow layout (see the packers), as the unsigned code the source
// stored (plus 128 for Q8_0).
func blockCode(kind int, codes []byte, r, e int) byte {
	switch kind {
	case packQ8, packU8:
		return codes[(e/4)*64+r*4+e%4]
	case packQ2_K, packU2:
		return crumb(codes, r, e)
	case packQ3_K, packU3:
		return crumb(codes, r, e) | planeBit(codes[128:], r, e)<<2
	case packU5:
		return nibble(codes, r, e) | planeBit(codes[256:], r, e)<<4
	case packU6:
		return nibble(codes, r, e) | crumb(codes[256:], r, e)<<4
	case packQ5_0, packQ5U, packQ5_K:
		i, t := e%16/4, e%4
		b, h := codes[i*64+r*4+t], codes[256+r*4+t]
		if e < 16 {
			return b&15 | (h>>(4+i)&1)<<4
		}
		return (b>>4)<<1 | h>>(3-i)&1
	}
	return nibble(codes, r, e)
}

// nibble is element e of lane r's 32-block in the Q4 layout (putNibbles).
func nibble(codes []byte, r, e int) byte {
	b := codes[(e%16/4)*64+r*4+e%4]
	if e < 16 {
		return b & 15
	}
	return b >> 4
}

// crumb is element e of lane r's 32-block in a 2-bit pair (putPair2).
func crumb(codes []byte, r, e int) byte {
	i := e / 4
	return codes[(i/4)*64+r*4+e%4] >> (2 * (i % 4)) & 3
}

// planeBit is element e of lane r's 32-block in a 1-bit plane (putPlane1).
func planeBit(codes []byte, r, e int) byte { return codes[r*4+e%4] >> (e / 4) & 1 }

func (p *Packed) rowMLX(dst []float32, g, r int) {
	nb, ng := p.cols/32, p.cols/p.group
	for k := 0; k < nb; k++ {
		codes := p.codes[(g*nb+k)*packCodeBytes[p.kind]:]
		for e := 0; e < 32; e++ {
			c := 32*k + e
			at := (g*ng+c/p.group)*packedTile + r
			dst[c] = getScale(p.scales, at, p.sfmt)*float32(blockCode(p.kind, codes, r, e)) + getScale(p.biases, at, p.sfmt)
		}
	}
}

func (p *Packed) rowQ4_K(dst []float32, g, r int) {
	const sbBytes = 4*packedTile + 16*packedTile
	nb, nsb := p.cols/32, p.cols/quant.QK_K
	for sb := 0; sb < nsb; sb++ {
		ss := p.scales[(g*nsb+sb)*sbBytes:]
		d := quant.F16ToF32(binary.LittleEndian.Uint16(ss[2*r:]))
		dmin := quant.F16ToF32(binary.LittleEndian.Uint16(ss[2*packedTile+2*r:]))
		for kk := 0; kk < 8; kk++ {
			sc, m := ss[4*packedTile+kk*packedTile+r], ss[12*packedTile+kk*packedTile+r]
			codes := p.codes[(g*nb+sb*8+kk)*packCodeBytes[p.kind]:]
			out := dst[sb*quant.QK_K+32*kk:]
			for e := 0; e < 32; e++ {
				out[e] = d*float32(sc)*float32(blockCode(p.kind, codes, r, e)) - dmin*float32(m)
			}
		}
	}
}

func (p *Packed) rowQ6_K(dst []float32, g, r int) {
	const sbBytes = 2*packedTile + 16*packedTile
	nb, nsb := p.cols/32, p.cols/quant.QK_K
	for sb := 0; sb < nsb; sb++ {
		ss := p.scales[(g*nsb+sb)*sbBytes:]
		d := quant.F16ToF32(binary.LittleEndian.Uint16(ss[2*r:]))
		for kk := 0; kk < 8; kk++ {
			codes := p.codes[(g*nb+sb*8+kk)*packCodeBytes[p.kind]:]
			out := dst[sb*quant.QK_K+32*kk:]
			for e := 0; e < 32; e++ {
				i, t := e%16/4, e%4
				var q byte
				switch {
				case p.kind == packQ3_K:
					q = blockCode(p.kind, codes, r, e) + 28 // Q6_K's range (PackQ3_K)
				case e < 16:
					q = codes[i*64+r*4+t]&15 | (codes[256+r*4+t]>>(2*i)&3)<<4
				default:
					q = (codes[i*64+r*4+t]>>4)<<2 | codes[320+r*4+t]>>(2*i)&3
				}
				sc := int8(ss[2*packedTile+(2*kk+e/16)*packedTile+r])
				out[e] = d * float32(sc) * float32(int(q)-32)
			}
		}
	}
}

func (p *Packed) rowQ2_K(dst []float32, g, r int) {
	nb, nsb := p.cols/32, p.cols/quant.QK_K
	for sb := 0; sb < nsb; sb++ {
		ss := p.scales[(g*nsb+sb)*q2kSBBytes:]
		d := quant.F16ToF32(binary.LittleEndian.Uint16(ss[2*r:]))
		dmin := quant.F16ToF32(binary.LittleEndian.Uint16(ss[2*packedTile+2*r:]))
		for kk := 0; kk < 8; kk++ {
			codes := p.codes[(g*nb+sb*8+kk)*packCodeBytes[packQ2_K]:]
			out := dst[sb*quant.QK_K+32*kk:]
			for e := 0; e < 32; e++ {
				i := 2*kk + e/16
				sm := ss[4*packedTile+i*packedTile+r]
				out[e] = d*float32(sm&15)*float32(crumb(codes, r, e)) - dmin*float32(sm>>4)
			}
		}
	}
}

func getScale(src []byte, at, sfmt int) float32 {
	switch sfmt {
	case packBF16:
		return quant.BF16ToF32(binary.LittleEndian.Uint16(src[2*at:]))
	case packF16:
		return quant.F16ToF32(binary.LittleEndian.Uint16(src[2*at:]))
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(src[4*at:]))
}

// PackWanted reports whether a weight loaded now should be packed: the
// packed kernels exist on this CPU and the int8 path that runs them is on
// (for MLX weights, with MLX int8 on too). A model loaded with float
// activations keeps only its source weights, so it holds one copy.
func PackWanted(mlx bool) bool {
	return packedAvailable() && Int8Activations() && (!mlx || mlxInt8.Load())
}
