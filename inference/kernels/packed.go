package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/impetusllm/impetus/inference/quant"
)

// Packed is a quantized weight matrix rearranged once at load for the int8
// kernels (simd_packed.c): one 512-bit register holds four codes of each of
// 16 consecutive rows, so vpdpbusd against a broadcast quad of int8
// activations yields 16 row dot products with no horizontal sums, and each
// thread reads its rows as one sequential run. The values are those of the
// source (same codes, same scales, same rounding of activations as the int8
// path) at the same bits per weight; only their order in memory (and the
// split of each code between nibble, 2-bit and 1-bit planes) changes; the
// rarer formats reuse these layouts (packed_more.go). On ARM64 (simd_packed_neon.c) the same layout feeds sdot (four
// rows per 128-bit quarter) and smmla (two rows, eight codes deep). The AVX2 kernels (simd_packed_avx2.c) read the same layout as
// two ymm halves of 8 rows and give the same bits, so the level may change
// after packing (SetLevel). Pack* return nil where the current level has no
// packed kernels (scalar, or a CPU without AVX2 or NEON) or the shape does not tile (rows%16, cols%32, and cols%256 for the K-quants), and the
// caller keeps using the source format.
type Packed struct {
	rows, cols int
	kind       int  // code layout: packQ4 ... packQ2_K
	mlx        bool // from an MLX file (its int8 path follows SetInt8MLX)
	affine     bool // scale and bias per group (MLX, Q4_1, Q5_1), in scales and biases
	sfmt       int  // storage of scales and biases: packF16, packBF16, packF32
	group      int  // MLX group size, 32 for Q4_K (its mins need block sums); 0 for the others
	off        int  // the weight code offset (8 for Q4_0, 128 for Q8_0, 0 for MLX)
	hoff       int  // nonzero: the offset of each block's second half, corrected apart (Q6_K)
	codes      []byte
	scales     []byte
	biases     []byte
}

// Code layouts (K_PK_Q4 ...).
const (
	packQ4   = 0 // 4-bit codes: Q4_0, MLX 4-bit
	packQ8   = 1 // Q8_0
	packQ6_K = 2
	packQ5_0 = 3
	packQ4_K = 4
	packU8   = 5 // unsigned 8-bit codes in packQ8's place: MLX 6- and 8-bit
	packQ5U  = 6 // packQ5_0's codes, unsigned, scale and bias per block: Q5_1
	packQ5_K = 7 // packQ5_0's codes, unsigned, packQ4_K's scales and mins
	// The narrow layouts (kernels.h): codes at their own width, loaded as
	// the byte vectors of a wider layout (packBase) whose kernel code runs.
	packQ2_K = 8  // 2-bit pair, scale and min nibbles per 16: Q2_K
	packQ3_K = 9  // 2-bit pair and 1-bit plane, loaded as packQ6_K's: Q3_K
	packU2   = 10 // 2-bit pair, loaded as packQ4's: MLX 2-bit
	packU3   = 11 // 2-bit pair and 1-bit plane, loaded as packQ4's: MLX 3-bit
	packU5   = 12 // nibbles and 1-bit plane, loaded as packU8's: MLX 5-bit
	packU6   = 13 // nibbles and 2-bit pair, loaded as packU8's: MLX 6-bit
)

// packCodeBytes is the code bytes of one 32-block of 16 rows per layout.
var packCodeBytes = [...]int{packQ4: 256, packQ8: 512, packQ6_K: 384, packQ5_0: 320, packQ4_K: 256,
	packU8: 512, packQ5U: 320, packQ5_K: 320, packQ2_K: 128, packQ3_K: 192, packU2: 128, packU3: 192,
	packU5: 320, packU6: 384}

const (
	packF16  = 0 // K_PK_F16
	packBF16 = 1 // K_PK_BF16
	packF32  = 2 // K_PK_F32
)

// packedTile is the row tile of packed weights.
const packedTile = 16

// Active reports whether the packed kernel runs at the current settings
// (the int8 path on, at the AVX2, AVX-512 or NEON level); otherwise callers
// multiply by the source weights.
func (p *Packed) Active() bool {
	if p == nil || !int8Acts.Load() || !packedAvailable() {
		return false
	}
	return !p.mlx || mlxInt8.Load()
}

// Bytes is the memory the packed copy holds.
func (p *Packed) Bytes() int { return len(p.codes) + len(p.scales) + len(p.biases) }

func packable(rows, cols int) bool {
	return packedAvailable() && rows > 0 && cols > 0 && rows%packedTile == 0 && cols%32 == 0
}

// PackQ4_0 packs a GGUF Q4_0 matrix of rows×cols (w holds its blocks).
func PackQ4_0(w []byte, rows, cols int) *Packed {
	if !packable(rows, cols) {
		return nil
	}
	nb := cols / 32
	checkPackLen("PackQ4_0", len(w), rows*nb*quant.Q4_0BlockBytes)
	p := newPacked(rows, cols, packQ4, 2*rows*nb, 0)
	p.off, p.sfmt = 8, packF16
	packBlocks(p, w, quant.Q4_0BlockBytes, func(dst []byte, r int, blk []byte) {
		// Q4_0's byte j already holds elements j and j+16 (putNibbles' layout).
		for i := 0; i < 4; i++ {
			copy(dst[i*64+r*4:][:4], blk[2+4*i:])
		}
	})
	return p
}

// PackQ8_0 packs a GGUF Q8_0 matrix; codes are stored plus 128 (unsigned,
// as vpdpbusd wants) and the offset is taken back from the activation sums.
func PackQ8_0(w []byte, rows, cols int) *Packed {
	if !packable(rows, cols) {
		return nil
	}
	nb := cols / 32
	checkPackLen("PackQ8_0", len(w), rows*nb*quant.Q8_0BlockBytes)
	p := newPacked(rows, cols, packQ8, 2*rows*nb, 0)
	p.off, p.sfmt = 128, packF16
	packBlocks(p, w, quant.Q8_0BlockBytes, func(dst []byte, r int, blk []byte) {
		for i := 0; i < 8; i++ {
			for t := 0; t < 4; t++ {
				dst[i*64+r*4+t] = blk[2+4*i+t] ^ 0x80
			}
		}
	})
	return p
}

// PackQ5_0 packs a GGUF Q5_0 matrix, keeping 5 bits a weight: the nibbles
// in the Q4 layout and one vector of fifth bits per 32-block of 16 rows
// (pk_load_q5 in simd_packed.c); the second half of each block is stored as
// q>>1 and q&1 so that the kernel builds 8q without shifting nibbles.
func PackQ5_0(w []byte, rows, cols int) *Packed {
	if !packable(rows, cols) {
		return nil
	}
	nb := cols / 32
	checkPackLen("PackQ5_0", len(w), rows*nb*quant.Q5_0BlockBytes)
	p := newPacked(rows, cols, packQ5_0, 2*rows*nb, 0)
	p.off, p.sfmt = 16, packF16
	packBlocks(p, w, quant.Q5_0BlockBytes, func(dst []byte, r int, blk []byte) {
		qh := binary.LittleEndian.Uint32(blk[2:])
		putQ5(dst, r, func(e int) byte { return blk[6+e%16]>>(4*(e/16))&15 | byte(qh>>e&1)<<4 })
	})
	return p
}

// putQ5 writes row r's 5-bit codes of one 32-block in the Q5_0 layout
// (PackQ5_0); code(e) is element e (0..31) of the block.
func putQ5(dst []byte, r int, code func(e int) byte) {
	for t := 0; t < 4; t++ {
		var h byte
		for i := 0; i < 4; i++ {
			q1, q2 := code(4*i+t), code(16+4*i+t)
			dst[i*64+r*4+t] = q1&15 | (q2>>1)<<4
			h |= (q1>>4)<<(4+i) | (q2&1)<<(3-i)
		}
		dst[256+r*4+t] = h
	}
}

// PackQ6_K packs a GGUF Q6_K matrix (cols a multiple of 256). Codes keep
// 6 bits: per 32-block of 16 rows, the low 4 bits in the Q4 nibble layout
// and 2-bit fields in two more vectors (pk_load_q6 in simd_packed.c); the
// second half of each block is stored as q>>2 and q&3 so that the kernel
// builds 4q without shifting nibbles. d stays f16 and the sub-scales int8,
// per super-block: [d of 16 rows][16 sub-blocks][16 rows].
func PackQ6_K(w []byte, rows, cols int) *Packed {
	if !packable(rows, cols) || cols%quant.QK_K != 0 {
		return nil
	}
	checkPackLen("PackQ6_K", len(w), rows*cols/quant.QK_K*quant.Q6_KBlockBytes)
	return packQ6Like(w, rows, cols, packQ6_K, quant.Q6_KBlockBytes, 208, func(blk []byte, i int) byte { return blk[192+i] }, q6kCode)
}

// packQ6Like packs super-blocks of 256 codes with Q6_K's scales: d is the
// f16 at byte dAt of each block, scale(blk, i) the int8 scale of sub-block
// i (16 elements), code(blk, e) element e: 0..63 (weight d*scale*(code-32))
// in the Q6_K layout (kind packQ6_K), or 0..7 (weight d*scale*(code-4)) in
// the 3-bit one (packQ3_K).
func packQ6Like(w []byte, rows, cols, kind, blockBytes, dAt int, scale func(blk []byte, i int) byte,
	code func(blk []byte, e int) byte) *Packed {
	nb, nsb := cols/32, cols/quant.QK_K
	const sbBytes = 2*packedTile + 16*packedTile
	p := newPacked(rows, cols, kind, rows/packedTile*nsb*sbBytes, 0)
	p.off, p.hoff = 32, 128
	packRowGroups(rows, func(g int) {
		for r := 0; r < packedTile; r++ {
			src := w[(g*packedTile+r)*nsb*blockBytes:]
			for sb := 0; sb < nsb; sb++ {
				blk := src[sb*blockBytes : (sb+1)*blockBytes]
				ss := p.scales[(g*nsb+sb)*sbBytes:]
				copy(ss[2*r:2*r+2], blk[dAt:dAt+2])
				for i := 0; i < 16; i++ {
					ss[2*packedTile+i*packedTile+r] = scale(blk, i)
				}
				for kk := 0; kk < 8; kk++ {
					dst := p.codes[(g*nb+sb*8+kk)*packCodeBytes[kind]:]
					if kind == packQ3_K {
						putNarrow(kind, dst, r, func(e int) byte { return code(blk, 32*kk+e) })
						continue
					}
					for t := 0; t < 4; t++ {
						var ha, hb byte
						for i := 0; i < 4; i++ {
							q1 := code(blk, 32*kk+4*i+t)
							q2 := code(blk, 32*kk+16+4*i+t)
							dst[i*64+r*4+t] = q1&15 | (q2>>2)<<4
							ha |= (q1 >> 4) << (2 * i)
							hb |= (q2 & 3) << (2 * i)
						}
						dst[256+r*4+t], dst[320+r*4+t] = ha, hb
					}
				}
			}
		}
	})
	return p
}

// PackQ4_K packs a GGUF Q4_K matrix (cols a multiple of 256): codes in the
// Q4 nibble layout per 32-block; per super-block and 16 rows, d and dmin
// stay f16 and the 6-bit scales and mins become bytes: [d][dmin][8 scales
// of 16 rows][8 mins of 16 rows]. The mins need the activation block sums
// (d*sum per block, as MLX biases do with group 32).
func PackQ4_K(w []byte, rows, cols int) *Packed {
	if !packable(rows, cols) || cols%quant.QK_K != 0 {
		return nil
	}
	checkPackLen("PackQ4_K", len(w), rows*cols/quant.QK_K*quant.Q4_KBlockBytes)
	return packQ4Like(w, rows, cols, packQ4_K, quant.Q4_KBlockBytes, func(blk []byte) func(e int) byte {
		qs := blk[16:]
		// Element e of the super-block: chunk e/64, low nibbles for its first 32.
		return func(e int) byte { return qs[32*(e/64)+e%32] >> (4 * (e % 64 / 32)) & 15 }
	})
}

// packQ4Like packs super-blocks that start as Q4_K's (d, dmin, 12 bytes of
// 6-bit scales and mins) with codes(blk) giving element e of the block:
// Q4_K (kind packQ4_K) and Q5_K (packQ5_K).
func packQ4Like(w []byte, rows, cols, kind, blockBytes int, codes func(blk []byte) func(e int) byte) *Packed {
	nb, nsb := cols/32, cols/quant.QK_K
	const sbBytes = 4*packedTile + 16*packedTile
	p := newPacked(rows, cols, kind, rows/packedTile*nsb*sbBytes, 0)
	p.group = 32
	if kind == packQ5_K {
		p.off = 16 // see K_PK_Q5K in kernels.h
	}
	packRowGroups(rows, func(g int) {
		for r := 0; r < packedTile; r++ {
			src := w[(g*packedTile+r)*nsb*blockBytes:]
			for sb := 0; sb < nsb; sb++ {
				blk := src[sb*blockBytes : (sb+1)*blockBytes]
				ss := p.scales[(g*nsb+sb)*sbBytes:]
				copy(ss[2*r:2*r+2], blk[0:2])
				copy(ss[2*packedTile+2*r:][:2], blk[2:4])
				for j := 0; j < 8; j++ {
					sc, m := quant.KScaleMin(blk[4:16], j)
					ss[4*packedTile+j*packedTile+r] = sc
					ss[12*packedTile+j*packedTile+r] = m
				}
				code := codes(blk)
				for kk := 0; kk < 8; kk++ {
					dst, kc := p.codes[(g*nb+sb*8+kk)*packCodeBytes[kind]:], func(e int) byte { return code(32*kk + e) }
					if kind == packQ5_K {
						putQ5(dst, r, kc)
					} else {
						putNibbles(dst, r, kc)
					}
				}
			}
		}
	})
	return p
}

// q6kCode is the 6-bit code (0..63) of element e of a Q6_K super-block
// (quant.DequantizeGGML tells the layout).
func q6kCode(blk []byte, e int) byte {
	h, l, k := e/128, e%32, e%128/32
	lo := blk[64*h+l+32*(k&1)]
	if k >= 2 {
		lo >>= 4
	}
	return lo&15 | (blk[128+32*h+l]>>(2*k)&3)<<4
}

// PackMLX4 packs an MLX 4-bit matrix (see MatMulMLX for the arguments).
func PackMLX4(wq []uint32, scales, biases []float32, rows, cols, group int) *Packed {
	return PackMLX(wq, scales, biases, rows, cols, 4, group)
}

// PackMLX packs an MLX affine matrix of 2, 3, 4, 5, 6 or 8 bits (see
// MatMulMLX for the arguments), each code at its own width: 4-bit codes in
// the Q4 nibble layout, 8-bit ones as bytes (packU8), the others in the
// narrow layouts (packU2 ... packU6). Scales and biases keep 16 bits
// when every value is exact in bfloat16 or half (MLX stores them so), else
// float32.
func PackMLX(wq []uint32, scales, biases []float32, rows, cols, bits, group int) *Packed {
	if !packable(rows, cols) || group <= 0 || group%32 != 0 || cols%group != 0 ||
		bits < 2 || bits > 8 || bits == 7 {
		return nil
	}
	ng, words := cols/group, cols*bits/32
	checkPackLen("PackMLX", len(wq), rows*words)
	checkPackLen("PackMLX scales", min(len(scales), len(biases)), rows*ng)
	sfmt := scaleFormat(scales[:rows*ng], biases[:rows*ng])
	width := 2
	if sfmt == packF32 {
		width = 4
	}
	kind := [...]int{2: packU2, 3: packU3, 4: packQ4, 5: packU5, 6: packU6, 8: packU8}[bits]
	p := newPacked(rows, cols, kind, width*rows*ng, width*rows*ng)
	p.mlx, p.affine, p.group, p.sfmt = true, true, group, sfmt
	if bits > 4 {
		p.off = 128 // see K_PK_U8 in kernels.h
	}
	nb, mask := cols/32, uint64(1)<<bits-1
	packRowGroups(rows, func(g int) {
		for r := 0; r < packedTile; r++ {
			row := g*packedTile + r
			src := wq[row*words : (row+1)*words]
			code := func(e int) byte { // as quant.DequantizeMLX reads it
				word, off := e*bits/32, e*bits%32
				v := uint64(src[word]) >> off
				if off+bits > 32 {
					v |= uint64(src[word+1]) << (32 - off)
				}
				return byte(v & mask)
			}
			for k := 0; k < nb; k++ {
				dst := p.codes[(g*nb+k)*packCodeBytes[kind]:]
				switch kind {
				case packU8:
					for e := 0; e < 32; e++ {
						dst[(e/4)*64+r*4+e%4] = code(32*k + e)
					}
				case packQ4:
					putNibbles(dst, r, func(e int) byte { return code(32*k + e) })
				default:
					putNarrow(kind, dst, r, func(e int) byte { return code(32*k + e) })
				}
			}
			for gi := 0; gi < ng; gi++ {
				at := (g*ng+gi)*packedTile + r
				putScale(p.scales, at, sfmt, scales[row*ng+gi])
				putScale(p.biases, at, sfmt, biases[row*ng+gi])
			}
		}
	})
	return p
}

// packBlocks walks the 32-element blocks of a GGUF matrix whose blocks
// start with an f16 scale (Q4_0, Q8_0, Q5_0): it copies each scale into
// place and has put write the block's codes for row r of its 16-row group
// into dst, the codes of that group and block.
func packBlocks(p *Packed, w []byte, blockBytes int, put func(dst []byte, r int, blk []byte)) {
	nb, cb := p.cols/32, packCodeBytes[p.kind]
	packRowGroups(p.rows, func(g int) {
		for r := 0; r < packedTile; r++ {
			src := w[(g*packedTile+r)*nb*blockBytes:]
			for k := 0; k < nb; k++ {
				blk := src[k*blockBytes : (k+1)*blockBytes]
				at := g*nb + k
				copy(p.scales[(at*packedTile+r)*2:], blk[:2])
				put(p.codes[at*cb:], r, blk)
			}
		}
	})
}

// putNibbles writes row r's 4-bit codes of one 32-block in the Q4 layout:
// byte t of lane r in vector i holds elements 4i+t (low nibble) and
// 16+4i+t (high nibble); code(e) is element e (0..31) of the block.
func putNibbles(dst []byte, r int, code func(e int) byte) {
	for i := 0; i < 4; i++ {
		for t := 0; t < 4; t++ {
			dst[i*64+r*4+t] = code(4*i+t) | code(16+4*i+t)<<4
		}
	}
}

// putNarrow writes row r's codes of one 32-block in narrow layout kind
// (kernels.h); code(e) is element e (0..31) of the block.
func putNarrow(kind int, dst []byte, r int, code func(e int) byte) {
	switch kind {
	case packQ2_K, packU2:
		putPair2(dst, r, code)
	case packQ3_K, packU3:
		putPair2(dst, r, code)
		putPlane1(dst[128:], r, func(e int) byte { return code(e) >> 2 })
	case packU5:
		putNibbles(dst, r, func(e int) byte { return code(e) & 15 })
		putPlane1(dst[256:], r, func(e int) byte { return code(e) >> 4 })
	case packU6:
		putNibbles(dst, r, func(e int) byte { return code(e) & 15 })
		putPair2(dst[256:], r, func(e int) byte { return code(e) >> 4 })
	default:
		panic(fmt.Sprintf("kernels: putNarrow: layout %d", kind))
	}
}

// putPair2 writes the low 2 bits of row r's codes of one 32-block as two
// 64-byte planes: bits 2s..2s+1 of byte t of lane r in plane j hold
// element 4(4j+s)+t, so that a shift by 2s and a mask give code vector
// 4j+s of the Q4 layout's order.
func putPair2(dst []byte, r int, code func(e int) byte) {
	for j := 0; j < 2; j++ {
		for t := 0; t < 4; t++ {
			var b byte
			for s := 0; s < 4; s++ {
				b |= (code(4*(4*j+s)+t) & 3) << (2 * s)
			}
			dst[j*64+r*4+t] = b
		}
	}
}

// putPlane1 writes the lowest bit of row r's codes of one 32-block as one
// 64-byte plane: bit i of byte t of lane r holds element 4i+t.
func putPlane1(dst []byte, r int, code func(e int) byte) {
	for t := 0; t < 4; t++ {
		var b byte
		for i := 0; i < 8; i++ {
			b |= (code(4*i+t) & 1) << i
		}
		dst[r*4+t] = b
	}
}

func checkPackLen(name string, have, want int) {
	if have < want {
		panic(fmt.Sprintf("kernels: %s: %d elements, want %d", name, have, want))
	}
}

func newPacked(rows, cols, kind int, scaleBytes, biasBytes int) *Packed {
	codeBytes := rows / packedTile * cols / 32 * packCodeBytes[kind]
	mem, free := allocPacked(codeBytes + scaleBytes + biasBytes)
	p := &Packed{rows: rows, cols: cols, kind: kind,
		codes:  mem[:codeBytes:codeBytes],
		scales: mem[codeBytes : codeBytes+scaleBytes : codeBytes+scaleBytes],
		biases: mem[codeBytes+scaleBytes:]}
	if biasBytes == 0 {
		p.biases = nil
	}
	runtime.SetFinalizer(p, func(*Packed) { free() })
	return p
}

// packRowGroups runs f for every group of 16 rows, spread over the CPUs.
func packRowGroups(rows int, f func(g int)) {
	groups := rows / packedTile
	workers := min(runtime.NumCPU(), groups)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := w; g < groups; g += workers {
				f(g)
			}
		}()
	}
	wg.Wait()
}

// scaleFormat picks the narrowest storage that holds every value exactly.
func scaleFormat(vs ...[]float32) int {
	bf, h := true, true
	for _, v := range vs {
		for _, x := range v {
			b := math.Float32bits(x)
			if b&0xffff != 0 {
				bf = false
			}
			if quant.F16ToF32(quant.F32ToF16(x)) != x && !math.IsNaN(float64(x)) {
				h = false
			}
		}
	}
	switch {
	case bf:
		return packBF16
	case h:
		return packF16
	}
	return packF32
}

func putScale(dst []byte, at, sfmt int, v float32) {
	switch sfmt {
	case packBF16:
		binary.LittleEndian.PutUint16(dst[2*at:], uint16(math.Float32bits(v)>>16))
	case packF16:
		binary.LittleEndian.PutUint16(dst[2*at:], quant.F32ToF16(v))
	default:
		binary.LittleEndian.PutUint32(dst[4*at:], math.Float32bits(v))
	}
}

// MatMul sets out ([n][rows]) to x ([n][cols]) times the transposed weight,
// with int8 activations. It panics unless Active.
func (p *Packed) MatMul(out, x []float32, n int) {
	if !p.Active() {
		panic("kernels: Packed.MatMul: the packed path is off")
	}
	checkMatMul("Packed.MatMul", out, x, n, p.rows, p.cols, 0, 0)
	runMatMul(matMulJob{kind: kindPacked, out: out, x: x, n: n, pk: p, rows: p.rows, cols: p.cols})
	runtime.KeepAlive(p)
}
