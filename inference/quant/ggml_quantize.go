package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The quantizers below are simple reference encoders that produce valid
// blocks for tests and conversions. They do not reproduce llama.cpp's
// quantizers bit for bit (those search for error-minimising scales); each one
// picks scales from the block's range, rounds them to the stored precision
// first and then rounds every element against the stored scale, so the
// decoded error is at most about half a quantization step. Inputs should be
// finite: NaN encodes as the lowest level, never as a panic.

type quantFunc func(x []float32, block []byte)

var quantizers = map[GGMLType]quantFunc{
	GGMLF32:  quantF32,
	GGMLF16:  quantF16,
	GGMLBF16: quantBF16,
	GGMLQ4_0: func(x []float32, b []byte) { quantSymmetric(x, b, 4) },
	GGMLQ5_0: func(x []float32, b []byte) { quantSymmetric(x, b, 5) },
	GGMLQ4_1: func(x []float32, b []byte) { quantAffine(x, b, 4) },
	GGMLQ5_1: func(x []float32, b []byte) { quantAffine(x, b, 5) },
	GGMLQ8_0: quantQ8_0,
	GGMLQ2_K: quantQ2_K,
	GGMLQ3_K: quantQ3_K,
	GGMLQ4_K: func(x []float32, b []byte) { quantQ45_K(x, b, false) },
	GGMLQ5_K: func(x []float32, b []byte) { quantQ45_K(x, b, true) },
	GGMLQ6_K: quantQ6_K,
	GGMLQ8_K: quantQ8_K,
}

// Quantizable reports whether QuantizeGGML can encode type t.
func (t GGMLType) Quantizable() bool {
	_, ok := quantizers[t]
	return ok
}

// QuantizeGGML encodes src as whole blocks of type t into dst. len(src) must
// be a multiple of the block size and len(dst) exactly the bytes of the blocks.
func QuantizeGGML(t GGMLType, src []float32, dst []byte) error {
	fn, ok := quantizers[t]
	if !ok {
		return fmt.Errorf("quantize: no encoder for ggml type %s", t)
	}
	bs, ts := t.BlockSize(), t.TypeSize()
	if len(src)%bs != 0 {
		return fmt.Errorf("quantize %s: %d inputs is not a whole number of %d-element blocks", t, len(src), bs)
	}
	nb := len(src) / bs
	if len(dst) != nb*ts {
		return fmt.Errorf("quantize %s: %d bytes of output for %d blocks, want %d", t, len(dst), nb, nb*ts)
	}
	if bs == 1 {
		fn(src, dst)
		return nil
	}
	for i := range nb {
		fn(src[i*bs:(i+1)*bs], dst[i*ts:(i+1)*ts])
	}
	return nil
}

// nearest rounds x half away from zero and clamps it to [lo, hi]; NaN gives lo.
func nearest(x float32, lo, hi int) int {
	r := math.Round(float64(x))
	if !(r >= float64(lo)) {
		return lo
	}
	if r > float64(hi) {
		return hi
	}
	return int(r)
}

// ceilLevel is the smallest integer level whose step covers x, clamped to [0, hi].
func ceilLevel(x float32, hi int) int {
	r := math.Ceil(float64(x))
	if !(r >= 0) {
		return 0
	}
	if r > float64(hi) {
		return hi
	}
	return int(r)
}

// toHalf rounds v to f16 and returns both the bits and the value they hold.
func toHalf(v float32) (uint16, float32) {
	h := F32ToF16(v)
	return h, F16ToF32(h)
}

// putHalfAway stores v as the nearest f16 of at least its magnitude, so a scale
// never shrinks below what the block's range needs (this matters most when it
// lands among the f16 subnormals, spaced 2^-24 apart).
func putHalfAway(b []byte, v float32) float32 {
	h, r := toHalf(v)
	if math.Abs(float64(r)) < math.Abs(float64(v)) && h&0x7fff < 0x7c00 {
		h++
		r = F16ToF32(h)
	}
	binary.LittleEndian.PutUint16(b, h)
	return r
}

// putHalfDown stores v as the nearest f16 not above it.
func putHalfDown(b []byte, v float32) float32 {
	h, r := toHalf(v)
	if r > v {
		if h&0x7fff == 0 {
			h = 0x8001 // below ±0: the smallest negative subnormal
		} else if h&0x8000 != 0 {
			h++
		} else {
			h--
		}
		r = F16ToF32(h)
	}
	binary.LittleEndian.PutUint16(b, h)
	return r
}

func inv(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

func quantF32(x []float32, b []byte) {
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
}

func quantF16(x []float32, b []byte) {
	for i, v := range x {
		binary.LittleEndian.PutUint16(b[2*i:], F32ToF16(v))
	}
}

func quantBF16(x []float32, b []byte) {
	for i, v := range x {
		binary.LittleEndian.PutUint16(b[2*i:], F32ToBF16(v))
	}
}

// maxMagnitude returns the element of largest absolute value, sign kept.
func maxMagnitude(x []float32) float32 {
	var best, amax float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, best = a, v
		}
	}
	return best
}

// quantSymmetric encodes Q4_0 (bits 4) or Q5_0 (bits 5): the element of
// largest magnitude maps to level 0 (value −half·d), as in ggml.
func quantSymmetric(x []float32, b []byte, bits int) {
	half := 1 << (bits - 1)
	d := putHalfAway(b, maxMagnitude(x)/float32(-half))
	id := inv(d)
	var q [32]int
	for j, v := range x {
		q[j] = nearest(v*id+float32(half), 0, 2*half-1)
	}
	if bits == 4 {
		packNibbles(q[:], b[2:18])
		return
	}
	packQ5(q[:], b[2:6], b[6:22])
}

// quantAffine encodes Q4_1 or Q5_1: d = (max−min)/levels, m = min.
func quantAffine(x []float32, b []byte, bits int) {
	lo, hi := x[0], x[0]
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	levels := 1<<bits - 1
	m := putHalfDown(b[2:], lo)
	d := putHalfAway(b, (hi-m)/float32(levels))
	id := inv(d)
	var q [32]int
	for j, v := range x {
		q[j] = nearest((v-m)*id, 0, levels)
	}
	if bits == 4 {
		packNibbles(q[:], b[4:20])
		return
	}
	packQ5(q[:], b[4:8], b[8:24])
}

// packNibbles stores element j in the low nibble and j+16 in the high nibble of qs[j].
func packNibbles(q []int, qs []byte) {
	for j := range 16 {
		qs[j] = byte(q[j]&0xf) | byte(q[j+16]&0xf)<<4
	}
}

// packQ5 stores the low nibbles like packNibbles and the fifth bits in qh (u32).
func packQ5(q []int, qh, qs []byte) {
	packNibbles(q, qs)
	var h uint32
	for j := range 32 {
		h |= uint32(q[j]>>4&1) << j
	}
	binary.LittleEndian.PutUint32(qh, h)
}

func quantQ8_0(x []float32, b []byte) {
	amax := float32(math.Abs(float64(maxMagnitude(x))))
	d := putHalfAway(b, amax/127)
	id := inv(d)
	for j, v := range x {
		b[2+j] = byte(int8(nearest(v*id, -128, 127)))
	}
}

func quantQ8_K(x []float32, b []byte) {
	amax := float32(math.Abs(float64(maxMagnitude(x))))
	d := amax / 127
	binary.LittleEndian.PutUint32(b, math.Float32bits(d))
	id := inv(d)
	for k := range 16 {
		sum := 0
		for l := range 16 {
			q := nearest(x[16*k+l]*id, -128, 127)
			b[4+16*k+l] = byte(int8(q))
			sum += q
		}
		binary.LittleEndian.PutUint16(b[260+2*k:], uint16(int16(sum)))
	}
}

// kMinScales chooses, for a k-quant with mins, the super-block scales d and
// dmin (stored as f16 at dOut and dminOut) and per-sub-block levels sc and m
// (each 0..scMax) so that every sub-block's range [min(x,0), max(x)] fits in
// nmax steps of d·sc starting at −dmin·m. It returns the effective steps and
// offsets exactly as the decoder will compute them.
func kMinScales(x []float32, sub, nmax, scMax int, dOut, dminOut []byte, sc, m []int) (step, off []float32) {
	n := len(x) / sub
	mins := make([]float32, n)
	his := make([]float32, n)
	var mmax float32
	for j := range n {
		lo, hi := float32(0), float32(0)
		for _, v := range x[j*sub : (j+1)*sub] {
			lo, hi = min(lo, v), max(hi, v)
		}
		mins[j], his[j] = -lo, hi
		mmax = max(mmax, -lo)
	}
	dmin := putHalfAway(dminOut, mmax/float32(scMax))
	off = make([]float32, n)
	spans := make([]float32, n)
	var smax float32
	for j := range n {
		m[j] = ceilLevel(mins[j]*inv(dmin), scMax)
		off[j] = dmin * float32(m[j])
		spans[j] = (his[j] + off[j]) / float32(nmax)
		smax = max(smax, spans[j])
	}
	d := putHalfAway(dOut, smax/float32(scMax))
	step = make([]float32, n)
	for j := range n {
		sc[j] = ceilLevel(spans[j]*inv(d), scMax)
		step[j] = d * float32(sc[j])
	}
	return step, off
}

// quantQ45_K encodes Q4_K, or Q5_K when five is set.
func quantQ45_K(x []float32, b []byte, five bool) {
	nmax := 15
	if five {
		nmax = 31
	}
	var sc, m [8]int
	step, off := kMinScales(x, 32, nmax, 63, b[0:2], b[2:4], sc[:], m[:])
	scales := b[4:16]
	for j := range 4 {
		scales[j] = byte(sc[j]) | byte(sc[j+4]>>4)<<6
		scales[j+4] = byte(m[j]) | byte(m[j+4]>>4)<<6
		scales[j+8] = byte(sc[j+4]&0xf) | byte(m[j+4]&0xf)<<4
	}
	var qh []byte
	qs := b[16:144]
	if five {
		qh, qs = b[16:48], b[48:176]
		clear(qh)
	}
	for c := range 4 {
		for l := range 32 {
			i1, i2 := 64*c+l, 64*c+32+l
			q1 := nearest((x[i1]+off[2*c])*inv(step[2*c]), 0, nmax)
			q2 := nearest((x[i2]+off[2*c+1])*inv(step[2*c+1]), 0, nmax)
			qs[32*c+l] = byte(q1&0xf) | byte(q2&0xf)<<4
			if five {
				qh[l] |= byte(q1>>4&1)<<(2*c) | byte(q2>>4&1)<<(2*c+1)
			}
		}
	}
}

func quantQ2_K(x []float32, b []byte) {
	var sc, m [16]int
	step, off := kMinScales(x, 16, 3, 15, b[80:82], b[82:84], sc[:], m[:])
	for j := range 16 {
		b[j] = byte(sc[j]) | byte(m[j])<<4
	}
	qs := b[16:80]
	clear(qs)
	for n := range 2 {
		for j := range 4 {
			for l := range 32 {
				s := 8*n + 2*j + l/16
				q := nearest((x[128*n+32*j+l]+off[s])*inv(step[s]), 0, 3)
				qs[32*n+l] |= byte(q) << (2 * j)
			}
		}
	}
}

// signedScales picks d (stored as f16 at dOut) and positive per-sub-block
// levels sc (1..scMax) so that nmax steps of d·sc cover each sub-block's
// largest magnitude; it returns the steps as the decoder computes them.
func signedScales(x []float32, sub, nmax, scMax int, dOut []byte, sc []int) []float32 {
	n := len(x) / sub
	spans := make([]float32, n)
	var smax float32
	for j := range n {
		a := float32(math.Abs(float64(maxMagnitude(x[j*sub : (j+1)*sub]))))
		spans[j] = a / float32(nmax)
		smax = max(smax, spans[j])
	}
	d := putHalfAway(dOut, smax/float32(scMax))
	step := make([]float32, n)
	for j := range n {
		sc[j] = ceilLevel(spans[j]*inv(d), scMax)
		step[j] = d * float32(sc[j])
	}
	return step
}

func quantQ3_K(x []float32, b []byte) {
	var sc [16]int
	step := signedScales(x, 16, 3, 31, b[108:110], sc[:])
	hmask, qs, scales := b[0:32], b[32:96], b[96:108]
	clear(hmask)
	clear(qs)
	clear(scales)
	for i := range 16 {
		v := byte(sc[i] + 32)
		if i < 8 {
			scales[i] |= v & 0xf
		} else {
			scales[i-8] |= (v & 0xf) << 4
		}
		scales[8+i%4] |= (v >> 4) << (2 * (i / 4))
	}
	for n := range 2 {
		for j := range 4 {
			for l := range 32 {
				s := 8*n + 2*j + l/16
				q := nearest(x[128*n+32*j+l]*inv(step[s]), -4, 3) + 4
				qs[32*n+l] |= byte(q&3) << (2 * j)
				hmask[l] |= byte(q>>2) << (4*n + j)
			}
		}
	}
}

func quantQ6_K(x []float32, b []byte) {
	var sc [16]int
	step := signedScales(x, 16, 31, 127, b[208:210], sc[:])
	ql, qh, scales := b[0:128], b[128:192], b[192:208]
	clear(ql)
	clear(qh)
	for i := range 16 {
		scales[i] = byte(int8(sc[i]))
	}
	for h := range 2 {
		for k := range 4 {
			for l := range 32 {
				s := 8*h + l/16 + 2*k
				q := nearest(x[128*h+32*k+l]*inv(step[s]), -32, 31) + 32
				lo := byte(q & 0xf)
				if k >= 2 {
					lo <<= 4
				}
				ql[64*h+l+32*(k&1)] |= lo
				qh[32*h+l] |= byte(q>>4) << (2 * k)
			}
		}
	}
}
