//go:build cgo && linux

package cuda

import "fmt"

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
	if n <= gemvMaxRows {
		d.launch(gemvNames[w.Format], grid(w.Rows, 4), grid(n, 4), 128, args...)
		return
	}
	d.launch(gemmNames[w.Format], grid(w.Rows, 64), grid(n, 64), 256, args...)
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
	d.launch("rmsnorm", uint(n), 1, 256, parg(out), parg(x), parg(weight), iarg(n), iarg(dim), farg(eps), barg(addOne))
}

// RoPE is kernels.RoPE; pos is a device array of n int32 and invFreq of
// rotDim/2 float32.
func (d *Device) RoPE(x Ptr, n, heads, headDim, rotDim int, pos, invFreq Ptr, neox bool, mscale float32) {
	total := n * heads * (rotDim / 2)
	d.launch("rope", grid(total, 256), 1, 256, parg(x), iarg(n), iarg(heads), iarg(headDim), iarg(rotDim),
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
	if headDim > MaxHeadDim {
		d.note(fmt.Errorf("cuda: attention: head dim %d above %d", headDim, MaxHeadDim))
		return
	}
	d.launch("attention", uint(heads), uint(nq), 128, parg(out), parg(q), iarg(nq), iarg(pos0), parg(k), parg(v),
		iarg(nKV), iarg(heads), iarg(kvHeads), iarg(headDim), farg(scale), farg(softcap), iarg(window))
}
