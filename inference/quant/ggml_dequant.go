package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The reference dequantizers below define the GGUF block layouts, each told
// at its function. Products are formed in the same order as ggml's
// scalar code (e.g. (d·sc)·q − dmin·m) and products that feed an addition
// are rounded by an explicit float32 conversion, which the Go spec says
// prevents fusing them into a multiply-add: results are the same everywhere.

type dequantFunc func(block []byte, out []float32)

var dequantizers = map[GGMLType]dequantFunc{
	GGMLF32:   dequantF32,
	GGMLF16:   dequantF16,
	GGMLBF16:  dequantBF16,
	GGMLQ4_0:  dequantQ4_0,
	GGMLQ4_1:  dequantQ4_1,
	GGMLQ5_0:  dequantQ5_0,
	GGMLQ5_1:  dequantQ5_1,
	GGMLQ8_0:  dequantQ8_0,
	GGMLQ8_1:  dequantQ8_1,
	GGMLQ2_K:  dequantQ2_K,
	GGMLQ3_K:  dequantQ3_K,
	GGMLQ4_K:  dequantQ4_K,
	GGMLQ5_K:  dequantQ5_K,
	GGMLQ6_K:  dequantQ6_K,
	GGMLQ8_K:  dequantQ8_K,
	GGMLMXFP4: dequantMXFP4,
}

// Dequantizable reports whether DequantizeGGML can decode type t.
func (t GGMLType) Dequantizable() bool {
	_, ok := dequantizers[t]
	return ok
}

// DequantizeGGML decodes whole blocks of type t from src into dst. len(dst)
// must be a multiple of the block size and src exactly the bytes of
// len(dst)/BlockSize blocks.
func DequantizeGGML(t GGMLType, src []byte, dst []float32) error {
	fn, ok := dequantizers[t]
	if !ok {
		return fmt.Errorf("dequantize: no decoder for ggml type %s", t)
	}
	bs, ts := t.BlockSize(), t.TypeSize()
	if len(dst)%bs != 0 {
		return fmt.Errorf("dequantize %s: %d outputs is not a whole number of %d-element blocks", t, len(dst), bs)
	}
	nb := len(dst) / bs
	if len(src) != nb*ts {
		return fmt.Errorf("dequantize %s: %d bytes of input for %d blocks, want %d", t, len(src), nb, nb*ts)
	}
	if bs == 1 { // plain types decode the whole run at once
		fn(src, dst)
		return nil
	}
	for i := range nb {
		fn(src[i*ts:(i+1)*ts], dst[i*bs:(i+1)*bs])
	}
	return nil
}

func half(b []byte) float32 { return F16ToF32(binary.LittleEndian.Uint16(b)) }

func dequantF32(src []byte, out []float32) {
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func dequantF16(src []byte, out []float32) {
	for i := range out {
		out[i] = half(src[2*i:])
	}
}

func dequantBF16(src []byte, out []float32) {
	for i := range out {
		out[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// Q4_0: d, qs[16]; element j is the low nibble of qs[j], j+16 the high nibble.
func dequantQ4_0(b []byte, out []float32) {
	d := half(b)
	qs := b[2:18]
	for j := range 16 {
		out[j] = float32(int(qs[j]&0xf)-8) * d
		out[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

// Q4_1: d, m, qs[16]; q·d + m.
func dequantQ4_1(b []byte, out []float32) {
	d, m := half(b), half(b[2:])
	qs := b[4:20]
	for j := range 16 {
		lo := float32(float32(qs[j]&0xf) * d)
		hi := float32(float32(qs[j]>>4) * d)
		out[j] = lo + m
		out[j+16] = hi + m
	}
}

// Q5_0: d, qh (u32), qs[16]; bit j of qh is the 5th bit of element j.
func dequantQ5_0(b []byte, out []float32) {
	d := half(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	for j := range 16 {
		lo := int(qs[j]&0xf) | int(qh>>j&1)<<4
		hi := int(qs[j]>>4) | int(qh>>(j+16)&1)<<4
		out[j] = float32(lo-16) * d
		out[j+16] = float32(hi-16) * d
	}
}

// Q5_1: d, m, qh (u32), qs[16]; q·d + m.
func dequantQ5_1(b []byte, out []float32) {
	d, m := half(b), half(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:24]
	for j := range 16 {
		lo := int(qs[j]&0xf) | int(qh>>j&1)<<4
		hi := int(qs[j]>>4) | int(qh>>(j+16)&1)<<4
		a := float32(float32(lo) * d)
		c := float32(float32(hi) * d)
		out[j] = a + m
		out[j+16] = c + m
	}
}

// Q8_0: d, int8 qs[32].
func dequantQ8_0(b []byte, out []float32) {
	d := half(b)
	for j := range 32 {
		out[j] = float32(int8(b[2+j])) * d
	}
}

// Q8_1: d, s (d·Σq, unused here), int8 qs[32].
func dequantQ8_1(b []byte, out []float32) {
	d := half(b)
	for j := range 32 {
		out[j] = float32(int8(b[4+j])) * d
	}
}

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
// Two halves of 128; in half n, the four 2-bit planes of qs[32n..32n+31]
// (shift 2j) give elements 128n+32j+l, with sub-block 8n+2j+l/16.
func dequantQ2_K(b []byte, out []float32) {
	scales, qs := b[0:16], b[16:80]
	d, dmin := half(b[80:]), half(b[82:])
	for n := range 2 {
		q := qs[32*n : 32*n+32]
		for j := range 4 {
			for l := range 32 {
				sc := scales[8*n+2*j+l/16]
				dl := d * float32(sc&0xf)
				ml := dmin * float32(sc>>4)
				v := float32(dl * float32(q[l]>>(2*j)&3))
				out[128*n+32*j+l] = v - ml
			}
		}
	}
}

// Q3KScale unpacks the i-th 6-bit scale of Q3_K: the low 4 bits are a nibble of
// bytes 0–7, the high 2 bits a bit pair of bytes 8–11.
func Q3KScale(s []byte, i int) int {
	var lo byte
	if i < 8 {
		lo = s[i] & 0xf
	} else {
		lo = s[i-8] >> 4
	}
	hi := s[8+i%4] >> (2 * (i / 4)) & 3
	return int(lo|hi<<4) - 32
}

// Q3_K: hmask[32], qs[64], scales[12], d. Like Q2_K's planes; the high bit of
// element 128n+32j+l is bit 4n+j of hmask[l], and a clear bit subtracts 4.
func dequantQ3_K(b []byte, out []float32) {
	hmask, qs, scales := b[0:32], b[32:96], b[96:108]
	d := half(b[108:])
	for n := range 2 {
		q := qs[32*n : 32*n+32]
		for j := range 4 {
			bit := byte(1) << (4*n + j)
			for l := range 32 {
				dl := d * float32(Q3KScale(scales, 8*n+2*j+l/16))
				v := int(q[l] >> (2 * j) & 3)
				if hmask[l]&bit == 0 {
					v -= 4
				}
				out[128*n+32*j+l] = dl * float32(v)
			}
		}
	}
}

// KScaleMin unpacks pair j (0–7) of the 6-bit scales and mins of Q4_K/Q5_K.
func KScaleMin(q []byte, j int) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// Q4_K: d, dmin, scales[12], qs[128]. Chunk c of 64 reads qs[32c..]: low
// nibbles with pair 2c, then high nibbles with pair 2c+1.
func dequantQ4_K(b []byte, out []float32) {
	d, dmin := half(b), half(b[2:])
	scales, qs := b[4:16], b[16:144]
	for c := range 4 {
		sc1, m1 := KScaleMin(scales, 2*c)
		sc2, m2 := KScaleMin(scales, 2*c+1)
		d1, mn1 := d*float32(sc1), dmin*float32(m1)
		d2, mn2 := d*float32(sc2), dmin*float32(m2)
		q := qs[32*c : 32*c+32]
		for l := range 32 {
			a := float32(d1 * float32(q[l]&0xf))
			e := float32(d2 * float32(q[l]>>4))
			out[64*c+l] = a - mn1
			out[64*c+32+l] = e - mn2
		}
	}
}

// Q5_K: d, dmin, scales[12], qh[32], qs[128]; as Q4_K, with bit 2c (first
// half) or 2c+1 (second half) of qh[l] worth 16.
func dequantQ5_K(b []byte, out []float32) {
	d, dmin := half(b), half(b[2:])
	scales, qh, qs := b[4:16], b[16:48], b[48:176]
	for c := range 4 {
		sc1, m1 := KScaleMin(scales, 2*c)
		sc2, m2 := KScaleMin(scales, 2*c+1)
		d1, mn1 := d*float32(sc1), dmin*float32(m1)
		d2, mn2 := d*float32(sc2), dmin*float32(m2)
		q := qs[32*c : 32*c+32]
		for l := range 32 {
			lo := q[l]&0xf | (qh[l]>>(2*c)&1)<<4
			hi := q[l]>>4 | (qh[l]>>(2*c+1)&1)<<4
			a := float32(d1 * float32(lo))
			e := float32(d2 * float32(hi))
			out[64*c+l] = a - mn1
			out[64*c+32+l] = e - mn2
		}
	}
}

// Q6_K: ql[128], qh[64], int8 scales[16], d (last). In half h, element
// 128h+l+32k takes its low nibble from ql[64h+l] (k=0,2) or ql[64h+l+32]
// (k=1,3), low for k<2 and high for k≥2, its top two bits from qh[32h+l]>>2k,
// and scale scales[8h+l/16+2k].
func dequantQ6_K(b []byte, out []float32) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := half(b[208:])
	for h := range 2 {
		for k := range 4 {
			for l := range 32 {
				src := ql[64*h+l+32*(k&1)]
				lo := src & 0xf
				if k >= 2 {
					lo = src >> 4
				}
				q := int(lo|(qh[32*h+l]>>(2*k)&3)<<4) - 32
				ds := d * float32(int8(sc[8*h+l/16+2*k]))
				out[128*h+32*k+l] = ds * float32(q)
			}
		}
	}
}

// Q8_K: f32 d, int8 qs[256], int16 bsums[16] (ignored when decoding).
func dequantQ8_K(b []byte, out []float32) {
	d := math.Float32frombits(binary.LittleEndian.Uint32(b))
	for j := range 256 {
		out[j] = d * float32(int8(b[4+j]))
	}
}

// mxfp4Values are the E2M1 codes doubled (ggml keeps them as integers and
// halves the E8M0 scale instead).
var mxfp4Values = [16]int8{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

// MXFP4: E8M0 exponent e, qs[16] with Q4_0's nibble order; kvalue·2^(e−127)/2.
func dequantMXFP4(b []byte, out []float32) {
	d := float32(math.Ldexp(1, int(b[0])-128))
	qs := b[1:17]
	for j := range 16 {
		out[j] = float32(mxfp4Values[qs[j]&0xf]) * d
		out[j+16] = float32(mxfp4Values[qs[j]>>4]) * d
	}
}
