//go:build cgo

package kernels

/*
#cgo CFLAGS: -O3 -std=c11
#cgo LDFLAGS: -lm
#include "kernels.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// With cgo the kernels run in C (kernels.c, simd_*.c); the Go pool splits
// matmul rows and attention items into chunks, one cgo call per chunk.

func fp(s []float32) *C.float   { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }
func hp(s []uint16) *C.uint16_t { return (*C.uint16_t)(unsafe.Pointer(unsafe.SliceData(s))) }
func bp(s []byte) *C.uint8_t    { return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(s))) }

func matMulRows(j *matMulJob, worker, lo, hi int) {
	if j.n == 0 || j.cols == 0 {
		clearRows(j, lo, hi)
		return
	}
	n, rows, cols, clo, chi := C.int(j.n), C.int(j.rows), C.int(j.cols), C.int(lo), C.int(hi)
	if j.kind == kindPacked { // needs no scratch
		pk := j.pk
		var bi unsafe.Pointer
		var xe *C.float
		if pk.affine {
			bi = unsafe.Pointer(unsafe.SliceData(pk.biases))
		}
		if pk.group > 0 {
			xe = fp(j.xe)
		}
		C.k_matmul_packed(fp(j.out), (*C.int8_t)(unsafe.SliceData(j.xq)), fp(j.xd), (*C.int32_t)(unsafe.SliceData(j.xc)),
			xe, n, (*C.uint8_t)(unsafe.SliceData(pk.codes)), unsafe.Pointer(unsafe.SliceData(pk.scales)), bi,
			C.int(pk.kind), C.int(pk.sfmt), C.int(pk.group), rows, cols, clo, chi)
		return
	}
	if j.kind == kindPanels {
		w := unsafe.Pointer(unsafe.SliceData(j.pn.h))
		if j.pn.kind == kindF32 {
			w = unsafe.Pointer(unsafe.SliceData(j.pn.f))
		}
		C.k_matmul_panels(fp(j.out), fp(j.x), n, w, C.int(j.pn.kind), rows, cols, clo, chi)
		return
	}
	scratch := fp(thePool.scratchFor(worker, int(C.k_matmul_scratch(C.int(j.n), C.int(j.cols)))))
	switch j.kind {
	case kindF32:
		C.k_matmul_f32(fp(j.out), fp(j.x), n, fp(j.wf), rows, cols, clo, chi, scratch)
	case kindBF16:
		C.k_matmul_bf16(fp(j.out), fp(j.x), n, hp(j.wh), rows, cols, clo, chi, scratch)
	case kindF16:
		C.k_matmul_f16(fp(j.out), fp(j.x), n, hp(j.wh), rows, cols, clo, chi, scratch)
	case kindMLX:
		if j.xq != nil {
			C.k_matmul_mlx4_i8(fp(j.out), (*C.int8_t)(unsafe.SliceData(j.xq)), fp(j.xd),
				(*C.int32_t)(unsafe.SliceData(j.xs)), fp(j.xdv), (*C.int32_t)(unsafe.SliceData(j.xc)), n,
				(*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(j.wq))), fp(j.scales), fp(j.biases), C.int(j.group),
				rows, cols, clo, chi)
			return
		}
		C.k_matmul_mlx(fp(j.out), fp(j.xp), n, (*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(j.wq))),
			fp(j.scales), fp(j.biases), rows, cols, C.int(j.bits), C.int(j.group), clo, chi, scratch)
	case kindGGUF:
		if j.xq != nil {
			C.k_matmul_gguf_i8(fp(j.out), (*C.int8_t)(unsafe.SliceData(j.xq)), fp(j.xd),
				(*C.int32_t)(unsafe.SliceData(j.xs)), fp(j.xdv), (*C.int32_t)(unsafe.SliceData(j.xc)), n, (*C.uint8_t)(unsafe.SliceData(j.wb)),
				C.int(j.typ), rows, cols, clo, chi)
			return
		}
		C.k_matmul_gguf(fp(j.out), fp(j.x), n, (*C.uint8_t)(unsafe.SliceData(j.wb)), C.int(j.typ), rows, cols, clo, chi, scratch)
	}
}

// clearRows handles an empty inner dimension: every dot product is zero.
func clearRows(j *matMulJob, lo, hi int) {
	for b := 0; b < j.n; b++ {
		clear(j.out[b*j.rows+lo : b*j.rows+hi])
	}
}

// tileKernel reports whether the float matmuls (F32, BF16, F16) run the
// many-row tile kernel at the current level (AVX-512) when n > 4.
func tileKernel() bool { return C.k_level() == C.K_AVX512 }

// hasVNNI is whether the CPU has AVX-512 VNNI (the int8 path's need).
var hasVNNI = C.k_has_vnni() != 0

// hasNEONInt8 is whether the ARM64 int8 kernels are built (every AArch64
// CPU runs them; simd_packed_neon.c picks sdot or smmla at run time).
var hasNEONInt8 = C.k_has_neon_i8() != 0

// packedAvailable reports whether packed kernels (simd_packed*.c) run at
// the current level: AVX2 or AVX-512 on x86, NEON on ARM64.
func packedAvailable() bool {
	return C.k_pk_level() != C.K_PKL_NONE || hasNEONInt8 && C.k_level() == C.K_NEON
}

// packedVariant names the packed kernels of the current level, "" if none.
func packedVariant() string {
	switch C.k_pk_level() {
	case C.K_PKL_AVX2:
		return "avx2"
	case C.K_PKL_AVXVNNI:
		return "avx-vnni"
	case C.K_PKL_AVX512:
		return "avx512-vnni"
	}
	if hasNEONInt8 && C.k_level() == C.K_NEON {
		return "neon-int8"
	}
	return ""
}

// hasAVXVNNI reports whether the CPU has AVX-VNNI (vpdpbusd on ymm, VEX).
func hasAVXVNNI() bool { return C.k_has_avxvnni() != 0 }

// setAVXVNNI lets the AVX2 packed kernels use AVX-VNNI where the CPU has it
// (the default), or holds them to vpmaddubsw; it returns the previous setting.
func setAVXVNNI(on bool) bool {
	v := C.int(0)
	if on {
		v = 1
	}
	return C.k_set_avxvnni(v) != 0
}

// Prefetch modes of the packed kernels (k_set_pk_prefetch).
const (
	pkPrefetchAuto   = C.K_PF_AUTO
	pkPrefetchDense  = C.K_PF_DENSE
	pkPrefetchSparse = C.K_PF_SPARSE
)

// setPackedPrefetch sets how the packed kernels prefetch their weights
// (pkPrefetchAuto picks by CPU and activation rows); it returns the
// previous mode. The results do not depend on it.
func setPackedPrefetch(mode int) int { return int(C.k_set_pk_prefetch(C.int(mode))) }

// int8Available reports whether the int8 path runs at the current level:
// AVX-512 with VNNI, or NEON, so that the lower levels stay float when forced.
func int8Available() bool {
	l := C.k_level()
	return hasVNNI && l == C.K_AVX512 || hasNEONInt8 && l == C.K_NEON
}

// i8Type is the weight type code of k_quant_act_i8.
func i8Type(j *matMulJob) int {
	if j.kind == kindMLX {
		return C.K_I8_MLX4
	}
	return int(j.typ)
}

// prepMatMul runs once per matmul, before the rows are split: the MLX
// kernels may want the activations rearranged (k_mlx_prep), and the int8
// path quantizes each activation row once (k_quant_act_i8).
func prepMatMul(p *pool, j *matMulJob) {
	j.xp = j.x
	j.xq, j.xd, j.xs, j.xdv, j.xc, j.xe = nil, nil, nil, nil, nil, nil
	if j.kind == kindPacked {
		prepPacked(p, j)
		return
	}
	if j.usesInt8() {
		nq, nb := j.n*j.cols, j.n*(j.cols/32)
		p.qbuf, p.dbuf, p.sbuf = grown(p.qbuf, nq), grown(p.dbuf, nb), grown(p.sbuf, nb)
		p.dvbuf, p.cvbuf = grown(p.dvbuf, nq/4), grown(p.cvbuf, nq/4)
		j.xq, j.xd, j.xs, j.xdv, j.xc = p.qbuf, p.dbuf, p.sbuf, p.dvbuf, p.cvbuf
		C.k_quant_act_i8((*C.int8_t)(unsafe.SliceData(j.xq)), fp(j.xd), (*C.int32_t)(unsafe.SliceData(j.xs)),
			fp(j.xdv), (*C.int32_t)(unsafe.SliceData(j.xc)), fp(j.x), C.int(j.n), C.int(j.cols),
			C.int(i8Type(j)))
		return
	}
	if j.kind != kindMLX || j.n == 0 || j.cols == 0 {
		return
	}
	p.xbuf = grown(p.xbuf, j.n*j.cols)
	if C.k_mlx_prep(fp(p.xbuf), fp(j.x), C.int(j.n), C.int(j.cols), C.int(j.bits)) != 0 {
		j.xp = p.xbuf
	}
}

// prepPacked quantizes the activations for k_matmul_packed.
func prepPacked(p *pool, j *matMulJob) {
	nq, nb := j.n*j.cols, j.n*(j.cols/32)
	nc := nb
	if j.pk.hoff != 0 {
		nc = 2 * nb
	}
	p.qbuf, p.dbuf, p.sbuf = grown(p.qbuf, nq), grown(p.dbuf, nb), grown(p.sbuf, nc)
	j.xq, j.xd, j.xc = p.qbuf, p.dbuf, p.sbuf
	var e *C.float
	if j.pk.group > 0 {
		p.ebuf = grown(p.ebuf, j.n*(j.cols/j.pk.group))
		j.xe = p.ebuf
		e = fp(j.xe)
	}
	if j.n == 0 {
		return
	}
	C.k_packed_quant((*C.int8_t)(unsafe.SliceData(j.xq)), fp(j.xd), (*C.int32_t)(unsafe.SliceData(j.xc)), e,
		fp(j.x), C.int(j.n), C.int(j.cols), C.int(j.pk.off), C.int(j.pk.hoff), C.int(j.pk.group))
}

// grown returns buf resliced to n elements, reallocated when too small.
func grown[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}

// attnChunk and attnTile are the C kernels' chunk of cache positions and
// tile of query rows (k_attention).
var attnChunk, attnTile = int(C.k_attention_chunk()), int(C.k_attention_tile())

func attentionItems(j *attnJob, worker, lo, hi int) {
	scratch := thePool.scratchFor(worker, int(C.k_attention_scratch(C.int(j.nHeads), C.int(j.nKVHeads), C.int(j.headDim))))
	var part *C.float
	if j.part != nil {
		part = fp(j.part)
	}
	if j.kq != nil {
		C.k_attention_q8(fp(j.out), part, fp(j.q), C.int(j.nq), C.int(j.pos0), bp(j.kq), bp(j.vq), C.int(j.nKV),
			C.int(j.nHeads), C.int(j.nKVHeads), C.int(j.headDim), C.float(j.scale), C.float(j.softcap),
			C.int(j.window), C.int(lo), C.int(hi), fp(scratch))
		return
	}
	if j.kh != nil {
		C.k_attention_f16(fp(j.out), part, fp(j.q), C.int(j.nq), C.int(j.pos0), hp(j.kh), hp(j.vh), C.int(j.nKV),
			C.int(j.nHeads), C.int(j.nKVHeads), C.int(j.headDim), C.float(j.scale), C.float(j.softcap),
			C.int(j.window), C.int(lo), C.int(hi), fp(scratch))
		return
	}
	C.k_attention(fp(j.out), part, fp(j.q), C.int(j.nq), C.int(j.pos0), fp(j.k), fp(j.v), C.int(j.nKV),
		C.int(j.nHeads), C.int(j.nKVHeads), C.int(j.headDim), C.float(j.scale), C.float(j.softcap),
		C.int(j.window), C.int(lo), C.int(hi), fp(scratch))
}

// attentionMerge folds a split call's partials into its output.
func attentionMerge(j *attnJob, scratch []float32) {
	C.k_attention_merge(fp(j.out), fp(j.part), C.int(j.pos0), C.int(j.nKV), C.int(j.nHeads), C.int(j.nKVHeads),
		C.int(j.headDim), C.int(j.window), 0, C.int(j.nq*j.nKVHeads), fp(scratch))
}

func rmsNorm(out, x, weight []float32, n, dim int, eps float32, addOne bool) {
	if n == 0 || dim == 0 {
		return
	}
	a := C.int(0)
	if addOne {
		a = 1
	}
	C.k_rmsnorm(fp(out), fp(x), fp(weight), C.int(n), C.int(dim), C.float(eps), a)
}

func layerNorm(out, x, add, weight, bias []float32, n, dim int, eps float32) {
	var a *C.float
	if add != nil {
		a = fp(add)
	}
	C.k_layernorm(fp(out), fp(x), a, fp(weight), fp(bias), C.int(n), C.int(dim), C.float(eps))
}

func softmax(x []float32) {
	if len(x) > 0 {
		C.k_softmax(fp(x), C.size_t(len(x)))
	}
}

func siluMul(gate, up []float32) {
	if len(gate) > 0 {
		C.k_silu_mul(fp(gate), fp(up), C.size_t(len(gate)))
	}
}

func geluMul(gate, up []float32) {
	if len(gate) > 0 {
		C.k_gelu_mul(fp(gate), fp(up), C.size_t(len(gate)))
	}
}

func geluErf(x []float32) {
	if len(x) > 0 {
		C.k_gelu_erf(fp(x), C.size_t(len(x)))
	}
}

func add(dst, src []float32) {
	if len(dst) > 0 {
		C.k_add(fp(dst), fp(src), C.size_t(len(dst)))
	}
}

func rope(x []float32, n, nHeads, headDim, rotDim int, positions []int32, invFreq []float32, neox bool, mscale float32) {
	if n == 0 || nHeads == 0 || rotDim == 0 {
		return
	}
	nx := C.int(0)
	if neox {
		nx = 1
	}
	C.k_rope(fp(x), C.int(n), C.int(nHeads), C.int(headDim), C.int(rotDim),
		(*C.int32_t)(unsafe.Pointer(unsafe.SliceData(positions))), fp(invFreq), nx, C.float(mscale))
}

func ropeTable(cos, sin []float32, npos, rotDim int, invFreq []float32, mscale float32) {
	if npos == 0 || rotDim == 0 {
		return
	}
	C.k_rope_table(fp(cos), fp(sin), C.int(npos), C.int(rotDim), fp(invFreq), C.float(mscale))
}

func ropeApply(x []float32, n, nHeads, headDim, rotDim int, positions []int32, cos, sin []float32, neox bool) {
	if n == 0 || nHeads == 0 || rotDim == 0 {
		return
	}
	nx := C.int(0)
	if neox {
		nx = 1
	}
	C.k_rope_apply(fp(x), C.int(n), C.int(nHeads), C.int(headDim), C.int(rotDim),
		(*C.int32_t)(unsafe.Pointer(unsafe.SliceData(positions))), fp(cos), fp(sin), nx)
}

// Level names, indexed by the C enum (K_SCALAR ...).
var levelNames = [...]string{"scalar", "avx2", "avx512", "neon"}

// Features names the SIMD level the C kernels run at and, where weights
// are packed, the packed int8 kernels of that level.
func Features() string {
	f := levelNames[C.k_level()]
	if f == "avx2" {
		f = "avx2 fma"
	}
	if v := packedVariant(); v != "" {
		f += " packed=" + v
	}
	return f
}

// LevelName is the SIMD level the kernels run at: scalar, avx2, avx512 or
// neon.
func LevelName() string { return levelNames[C.k_level()] }

// SetLevel holds every kernel of the process at the named SIMD level
// (scalar, avx2, avx512 or neon), which must be one this CPU runs: the
// matmuls, attention and elementwise kernels and the packed int8 kernels of
// that level, never those of a higher one. At scalar (and at avx2 with the
// pure-Go backend) packed weights are not used; packed copies made at
// avx2 or avx512 serve both. Meant for start-up (IMPETUS_SIMD, the app's
// simd option) and benchmarks; it waits for running matmuls.
func SetLevel(name string) error {
	l, err := levelByName(name)
	if err != nil {
		return err
	}
	p := thePool
	p.mu.Lock()
	defer p.mu.Unlock()
	setLevel(l)
	return nil
}

// CheckLevel reports why the named SIMD level cannot run on this CPU, or
// nil when SetLevel would accept it.
func CheckLevel(name string) error {
	_, err := levelByName(name)
	return err
}

// levelByName finds a level this CPU runs by its name.
func levelByName(name string) (int, error) {
	l := -1
	for i, n := range levelNames {
		if n == name {
			l = i
		}
	}
	if l < 0 {
		return 0, fmt.Errorf("kernels: unknown SIMD level %q (want scalar, avx2, avx512 or neon)", name)
	}
	if !levelSupported(l) {
		return 0, fmt.Errorf("kernels: this CPU cannot run SIMD level %q (its best is %s)", name, levelNames[bestLevel()])
	}
	return l, nil
}

// levelSupported reports whether the CPU runs level l: on x86 every level up
// to the best one, on ARM64 neon and scalar.
func levelSupported(l int) bool {
	best := bestLevel()
	if l == C.K_SCALAR || l == best {
		return true
	}
	return best != C.K_NEON && l != C.K_NEON && l < best
}

// setLevel forces a dispatch level (tests); it returns the level in use,
// which is the best available when the CPU lacks the one asked for.
func setLevel(l int) int { return int(C.k_set_level(C.int(l))) }

// bestLevel is the level chosen at start-up.
func bestLevel() int { return int(C.k_detect()) }

// neonInt8Names names the ARM64 int8 variants (k_neon_i8_variant).
var neonInt8Names = [...]string{"base", "dotprod", "i8mm"}

// setNEONInt8 forces an ARM64 int8 variant at most the CPU's best (tests);
// it returns the one in use, -1 off ARM64.
func setNEONInt8(v int) int { return int(C.k_neon_i8_set(C.int(v))) }

// readStream is ReadStream in C (stream.c).
func readStream(b []byte, sparse bool) uint64 {
	s := C.int(0)
	if sparse {
		s = 1
	}
	return uint64(C.k_read_stream(bp(b), C.size_t(len(b)), s))
}

func (j *bidirJob) run(worker, lo, hi int) {
	s := thePool.scratchFor(worker, int(C.k_attn_bidir_scratch(C.int(j.n), C.int(j.hd))))
	C.k_attn_bidir(fp(j.out), fp(j.q), fp(j.k), fp(j.v), C.int(j.n), C.int(j.nh), C.int(j.hd), C.float(j.scale),
		C.int(lo), C.int(hi), fp(s))
}
