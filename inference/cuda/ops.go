//go:build cgo && linux

package cuda

/*
#include "impcuda.h"
*/
import "C"

import (
	"fmt"
	"os"
	"sync/atomic"
)

// int8GEMV selects the int8-activation GEMV for Q4_0 and Q8_0 weights (see
// SetInt8).
var int8GEMV atomic.Bool

func init() { int8GEMV.Store(os.Getenv("IMPETUS_INT8") != "0") }

// SetInt8 turns the int8-activation matrix-vector kernels for Q4_0 and
// Q8_0 weights on or off and returns the previous setting. On (the default,
// unless the environment sets IMPETUS_INT8=0 as for the CPU's int8 path),
// decode steps quantize the activations per 32-value block as the CPU's
// int8 path does and take integer dot products (__dp4a), which reads a
// quarter of the activation bytes and does no int-to-float conversion per
// weight; results differ from float by the activations' int8 rounding
// (about 1e-2 relative). Off, every product is in float32.
func SetInt8(on bool) bool { return int8GEMV.Swap(on) }

// Int8 reports whether the int8-activation kernels are on (SetInt8).
func Int8() bool { return int8GEMV.Load() }

// usesInt8 tells whether a product with n activation rows by w takes the
// int8 kernels.
func usesInt8(n int, w *Weight) bool {
	return n <= gemvMaxRows && (w.Format == Q4_0 || w.Format == Q8_0) && w.Cols%32 == 0 && int8GEMV.Load()
}

// gemvMaxRows is the most activation rows the GEMV kernels take before the
// tiled GEMM pays: each GEMV block re-reads its weight rows per 4 rows.
const gemvMaxRows = 8

// MatMul queues out ([n][w.Rows]) = x ([n][w.Cols]) times w transposed,
// plus bias ([w.Rows]) when bias is not 0.
func (d *Device) MatMul(out, x Ptr, n int, w *Weight, bias Ptr) {
	if w.Format < 0 || w.Format >= numFormats {
		d.note(fmt.Errorf("cuda: matmul: bad format %d", int(w.Format)))
		return
	}
	args := []arg{parg(out), parg(x), iarg(n), parg(w.Data), parg(w.Scales), parg(w.Biases), parg(bias),
		iarg(w.Rows), iarg(w.Cols), iarg(w.Bits), iarg(w.Group)}
	if usesInt8(n, w) {
		d.gemvx(x, n, gxStore, w.Rows, Seg{W: w, Bias: bias, Out: out})
		return
	}
	if n <= gemvMaxRows {
		d.launch(gemvNames[w.Format], grid(w.Rows, 4), grid(n, 4), 128, args...)
		return
	}
	d.launch(gemmNames[w.Format], grid(w.Rows, 64), grid(n, 64), 256, args...)
}

// Seg is one matrix of a fused matrix-vector product: Out ([n][W.Rows])
// gets x times W transposed plus Bias (when not 0).
type Seg struct {
	W    *Weight
	Bias Ptr
	Out  Ptr
}

// The modes of the gemvx kernels (kernels.cu).
const (
	gxStore = iota
	gxAdd
	gxSiLU
	gxGELU
)

// fusable tells whether segs can share one gemvx launch: few activation
// rows and one format and width.
func fusable(n int, segs ...Seg) bool {
	if n > gemvMaxRows {
		return false
	}
	w0 := segs[0].W
	for _, s := range segs[1:] {
		if s.W.Format != w0.Format || s.W.Cols != w0.Cols || s.W.Bits != w0.Bits || s.W.Group != w0.Group {
			return false
		}
	}
	return w0.Format >= 0 && w0.Format < numFormats
}

// gemvx queues one gemvx launch over up to three segments; rows is the
// number of warps (rows) the grid covers.
func (d *Device) gemvx(x Ptr, n, mode, rows int, segs ...Seg) {
	w0 := segs[0].W
	if usesInt8(n, w0) {
		xq, xd, ok := d.quantize(x, n, w0.Cols)
		if !ok {
			return
		}
		var a [17]arg
		a[0], a[1], a[2], a[3], a[4] = parg(xq), parg(xd), iarg(n), iarg(w0.Cols), iarg(mode)
		for i, s := range segs {
			b := a[5+4*i:]
			b[0], b[1], b[2], b[3] = parg(s.Out), parg(s.W.Data), parg(s.Bias), iarg(s.W.Rows)
		}
		d.launch(gemvxI8Names[w0.Format], grid(rows, 4), grid(n, 4), 128, a[:]...)
		return
	}
	var a [24]arg
	a[0], a[1], a[2], a[3], a[4], a[5] = parg(x), iarg(n), iarg(w0.Cols), iarg(w0.Bits), iarg(w0.Group), iarg(mode)
	for i, s := range segs {
		b := a[6+6*i:]
		b[0], b[1], b[2], b[3], b[4], b[5] = parg(s.Out), parg(s.W.Data), parg(s.W.Scales), parg(s.W.Biases), parg(s.Bias), iarg(s.W.Rows)
	}
	d.launch(gemvxNames[w0.Format], grid(rows, 4), grid(n, 4), 128, a[:]...)
}

// MatMulSegs queues each segment's product with the same activations x
// ([n][Cols]): for few rows, one launch for all of them (the Q, K and V
// projections), else one MatMul each. At most three segments.
func (d *Device) MatMulSegs(x Ptr, n int, segs ...Seg) {
	if len(segs) == 0 || len(segs) > 3 {
		d.note(fmt.Errorf("cuda: MatMulSegs takes 1 to 3 segments, not %d", len(segs)))
		return
	}
	if !fusable(n, segs...) {
		for _, s := range segs {
			d.MatMul(s.Out, x, n, s.W, s.Bias)
		}
		return
	}
	rows := 0
	for _, s := range segs {
		rows += s.W.Rows
	}
	d.gemvx(x, n, gxStore, rows, segs...)
}

// MatMulAdd queues out += x times w transposed plus bias: the output
// projections that end in the residual stream. Many rows take a MatMul into
// tmp ([n][w.Rows]) and an Add.
func (d *Device) MatMulAdd(out, x Ptr, n int, w *Weight, bias, tmp Ptr) {
	s := Seg{W: w, Bias: bias, Out: out}
	if fusable(n, s) {
		d.gemvx(x, n, gxAdd, w.Rows, s)
		return
	}
	d.MatMul(tmp, x, n, w, bias)
	d.Add(out, tmp, n*w.Rows)
}

// MatMulGLU queues gate.Out = act(x gate^T + bias) * (x up^T + bias), act
// SiLU or GELU-tanh: the feed-forward input in one launch for few rows, else
// two MatMuls (up into up.Out) and the elementwise kernel.
func (d *Device) MatMulGLU(x Ptr, n int, gate, up Seg, gelu bool) {
	if gate.W.Rows != up.W.Rows {
		d.note(fmt.Errorf("cuda: MatMulGLU: gate has %d rows, up %d", gate.W.Rows, up.W.Rows))
		return
	}
	if fusable(n, gate, up) {
		mode := gxSiLU
		if gelu {
			mode = gxGELU
		}
		d.gemvx(x, n, mode, gate.W.Rows, gate, up)
		return
	}
	d.MatMul(gate.Out, x, n, gate.W, gate.Bias)
	d.MatMul(up.Out, x, n, up.W, up.Bias)
	if gelu {
		d.GELUTanhMul(gate.Out, up.Out, n*gate.W.Rows)
	} else {
		d.SiLUMul(gate.Out, up.Out, n*gate.W.Rows)
	}
}

// Embed queues out[t] = row tokens[t] of w (times scale when scale != 0)
// for t < n; tokens is a device array of int32.
func (d *Device) Embed(out, tokens Ptr, n int, w *Weight, scale float32) {
	if w.Format < 0 || w.Format >= numFormats {
		d.note(fmt.Errorf("cuda: embed: bad format %d", int(w.Format)))
		return
	}
	d.launch(embedNames[w.Format], uint(n), 1, 128, parg(out), parg(tokens), iarg(n), parg(w.Data),
		parg(w.Scales), parg(w.Biases), iarg(w.Cols), iarg(w.Bits), iarg(w.Group), farg(scale))
}

// RMSNorm is kernels.RMSNorm on device rows; out may be x.
func (d *Device) RMSNorm(out, x, weight Ptr, n, dim int, eps float32, addOne bool) {
	d.RMSNormThen(out, x, weight, n, dim, eps, addOne, nil)
}

// RMSNormThen is RMSNorm whose output is next multiplied by next: when
// that product takes the int8 kernels, the same launch also quantizes the
// output for it, and the product (queued right after) skips its own
// quantization launch.
func (d *Device) RMSNormThen(out, x, weight Ptr, n, dim int, eps float32, addOne bool, next *Weight) {
	xq, xd, fused := d.fuseQ8(n, dim, next)
	d.launch("rmsnorm", uint(n), 1, 256, parg(out), parg(x), parg(weight), iarg(n), iarg(dim), farg(eps), barg(addOne), parg(xq), parg(xd))
	if fused {
		d.markQ8(out, n, dim)
	}
}

// fuseQ8Wanted turns the quantizing producers (RMSNormThen, AttentionThen)
// on: off by default until a GPU run has measured and checked them
// (NOTES.md); IMPETUS_CUDA_FUSE=1 in the environment or SetFuseQ8 turns it on.
var fuseQ8Wanted atomic.Bool

func init() { fuseQ8Wanted.Store(os.Getenv("IMPETUS_CUDA_FUSE") == "1") }

// SetFuseQ8 turns on or off the quantization of a norm's or the
// attention's output in its own launch for the int8 product that reads it
// (RMSNormThen, AttentionThen), and returns the previous setting.
func SetFuseQ8(on bool) bool { return fuseQ8Wanted.Swap(on) }

// fuseQ8 returns the int8 scratch for a producer of n rows of cols values
// that a product by next consumes, when that product is int8; else zeros.
func (d *Device) fuseQ8(n, cols int, next *Weight) (xq, xd Ptr, ok bool) {
	if next == nil || next.Cols != cols || !usesInt8(n, next) || !fuseQ8Wanted.Load() {
		return 0, 0, false
	}
	xq, xd, err := d.q8Buffers(n, cols)
	if err != nil {
		d.note(err)
		return 0, 0, false
	}
	return xq, xd, true
}

// markQ8 records that the int8 scratch holds x ([n][cols]) quantized by the
// op just queued; the next launch of any other kernel clears it.
func (d *Device) markQ8(x Ptr, n, cols int) {
	d.mu.Lock()
	d.q8x, d.q8n, d.q8cols = x, n, cols
	d.mu.Unlock()
}

// q8Ready tells whether the last queued op left x quantized in the scratch.
func (d *Device) q8Ready(x Ptr, n, cols int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.q8x == x && x != 0 && d.q8n == n && d.q8cols == cols
}

// RoPE is kernels.RoPE; pos is a device array of n int32 and invFreq of
// rotDim/2 float32.
func (d *Device) RoPE(x Ptr, n, heads, headDim, rotDim int, pos, invFreq Ptr, neox bool, mscale float32) {
	total := n * heads * (rotDim / 2)
	d.launch("rope", grid(total, 256), 1, 256, parg(x), iarg(n), iarg(heads), iarg(headDim), iarg(rotDim),
		parg(pos), parg(invFreq), barg(neox), farg(mscale))
}

// RoPEQK is RoPE on query rows q ([n][heads*headDim]) and key rows k
// ([n][kvHeads*headDim]) in one launch.
func (d *Device) RoPEQK(q, k Ptr, n, heads, kvHeads, headDim, rotDim int, pos, invFreq Ptr, neox bool, mscale float32) {
	total := n * (heads + kvHeads) * (rotDim / 2)
	d.launch("rope_qk", grid(total, 256), 1, 256, parg(q), parg(k), iarg(n), iarg(heads), iarg(kvHeads), iarg(headDim), iarg(rotDim),
		parg(pos), parg(invFreq), barg(neox), farg(mscale))
}

// SiLUMul is kernels.SiLUMul over n elements.
func (d *Device) SiLUMul(gate, up Ptr, n int) {
	d.launch("silu_mul", grid(n, 256), 1, 256, parg(gate), parg(up), larg(int64(n)))
}

// GELUTanhMul is kernels.GELUTanhMul over n elements.
func (d *Device) GELUTanhMul(gate, up Ptr, n int) {
	d.launch("gelu_mul", grid(n, 256), 1, 256, parg(gate), parg(up), larg(int64(n)))
}

// Add is kernels.Add: dst += src over n elements.
func (d *Device) Add(dst, src Ptr, n int) {
	d.launch("add", grid(n, 256), 1, 256, parg(dst), parg(src), larg(int64(n)))
}

// Softcap sets x = tanh(x/c)*c over n elements.
func (d *Device) Softcap(x Ptr, n int, c float32) {
	d.launch("softcap", grid(n, 256), 1, 256, parg(x), larg(int64(n)), farg(c))
}

// CopyCols copies cols float32 columns starting at srcOff of each of rows
// rows of src (row stride srcStride) into dst (row stride dstStride).
func (d *Device) CopyCols(dst Ptr, dstStride int, src Ptr, srcStride, srcOff, rows, cols int) {
	d.launch("copy_cols", grid(rows*cols, 256), 1, 256, parg(dst), iarg(dstStride), parg(src), iarg(srcStride),
		iarg(srcOff), iarg(rows), iarg(cols))
}

// MaxHeadDim is the largest head dimension Attention takes.
const MaxHeadDim = 256

// Attention is kernels.Attention on device memory: q and out are
// [nq][heads*headDim], the caches [nKV][kvHeads*headDim].
func (d *Device) Attention(out, q Ptr, nq, pos0 int, k, v Ptr, nKV, heads, kvHeads, headDim int, scale, softcap float32, window int) {
	d.AttentionThen(out, q, nq, pos0, k, v, nKV, heads, kvHeads, headDim, scale, softcap, window, nil)
}

// AttentionThen is Attention whose output is next multiplied by next (the
// output projection): as RMSNormThen, the attention output is quantized in
// the same launch when that product is int8.
func (d *Device) AttentionThen(out, q Ptr, nq, pos0 int, k, v Ptr, nKV, heads, kvHeads, headDim int, scale, softcap float32, window int, next *Weight) {
	if headDim > MaxHeadDim {
		d.note(fmt.Errorf("cuda: attention: head dim %d above %d", headDim, MaxHeadDim))
		return
	}
	if splits := attnSplits(nq, pos0, nKV, window); splits > 1 {
		part, err := d.attnScratch(nq * heads * splits * (headDim + 2) * 4)
		if err != nil {
			d.note(err)
			return
		}
		d.launch3("attention_part", uint(heads), uint(nq), uint(splits), 128, parg(part), parg(q), iarg(nq), iarg(pos0), parg(k), parg(v),
			iarg(nKV), iarg(heads), iarg(kvHeads), iarg(headDim), farg(scale), farg(softcap), iarg(window), iarg(splits))
		xq, xd, fused := d.fuseQ8(nq, heads*headDim, next)
		d.launch("attention_merge", uint(heads), uint(nq), 128, parg(out), parg(part), iarg(nq), iarg(heads), iarg(headDim), iarg(splits),
			parg(xq), parg(xd))
		if fused {
			d.markQ8(out, nq, heads*headDim)
		}
		return
	}
	xq, xd, fused := d.fuseQ8(nq, heads*headDim, next)
	d.launch("attention", uint(heads), uint(nq), 128, parg(out), parg(q), iarg(nq), iarg(pos0), parg(k), parg(v),
		iarg(nKV), iarg(heads), iarg(kvHeads), iarg(headDim), farg(scale), farg(softcap), iarg(window), parg(xq), parg(xd))
	if fused {
		d.markQ8(out, nq, heads*headDim)
	}
}

// quantize queues quant_q8 of x ([n][cols], cols a multiple of 32) into the
// device's int8 scratch: the codes xq ([n][cols] int8) and per 32-value
// block xd (scale, scale times the codes' sum; float pairs). ok is false
// (and the error noted) when the scratch could not be had. Kernels run in
// order on one stream, so each product's quantization is consumed before
// the next one overwrites the scratch.
func (d *Device) quantize(x Ptr, n, cols int) (xq, xd Ptr, ok bool) {
	ready := d.q8Ready(x, n, cols)
	xq, xd, err := d.q8Buffers(n, cols)
	if err != nil {
		d.note(err)
		return 0, 0, false
	}
	if !ready {
		blocks := n * cols / 32
		d.launch("quant_q8", grid(blocks*32, 256), 1, 256, parg(xq), parg(xd), parg(x), iarg(blocks))
	}
	return xq, xd, true
}

// q8Buffers is the int8 scratch for n rows of cols values: the codes, then
// the block scales.
func (d *Device) q8Buffers(n, cols int) (xq, xd Ptr, err error) {
	qBytes := (n*cols + 255) &^ 255
	p, err := d.scratch(&d.q8, &d.q8Bytes, qBytes+n*cols/32*8)
	if err != nil {
		return 0, 0, err
	}
	return p, p.Add(qBytes), nil
}

// attnSplitKeys is about how many keys one block of split attention takes;
// attnMaxSplits bounds the runs (and the scratch).
const (
	attnSplitKeys = 64
	attnMaxSplits = 64
)

// attnSplits is how many runs the keys of each query row are cut into: one
// (a block per head and row) when there are enough rows to fill the GPU or
// few keys, else up to attnMaxSplits (flash-decoding).
func attnSplits(nq, pos0, nKV, window int) int {
	if nq > gemvMaxRows {
		return 1
	}
	keys := min(pos0+nq, nKV)
	if window > 0 {
		keys = min(keys, window)
	}
	return max(1, min(attnMaxSplits, keys/attnSplitKeys))
}

// attnScratch is device memory of at least bytes for split attention's
// partial results, kept and grown by the device.
func (d *Device) attnScratch(bytes int) (Ptr, error) { return d.scratch(&d.part, &d.partBytes, bytes) }

// scratch returns *p, a device buffer of *size bytes kept by the device,
// grown to at least bytes first.
func (d *Device) scratch(p *Ptr, size *int, bytes int) (Ptr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if bytes <= *size {
		return *p, nil
	}
	if d.capturing {
		// Growing waits for the queued work, which a recording cannot:
		// CaptureEnd fails and the step runs again uncaptured.
		return 0, fmt.Errorf("cuda: a scratch buffer must grow while a graph is recorded")
	}
	bytes = max(bytes, 1<<20)
	var np Ptr
	if err := cuErr("allocating scratch", C.imp_alloc(d.ctx, (*C.CUdeviceptr)(&np), C.size_t(bytes))); err != nil {
		return 0, err
	}
	if *p != 0 {
		C.imp_sync(d.ctx) // the queued kernels may still read the old one
		C.imp_free(d.ctx, C.CUdeviceptr(*p))
	}
	*p, *size = np, bytes
	return np, nil
}
