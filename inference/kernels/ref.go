package kernels

import (
	"math"

	"github.com/impetusllm/impetus/inference/quant"
)

// The *Ref functions are the plain-Go definition of each kernel: straight
// loops with float64 accumulation, written to be obviously right rather than
// fast. The optimised paths are tested against them, and other packages may
// use them the same way.

// MatMulF32Ref computes out[b][o] = sum_i x[b][i]*w[o][i].
func MatMulF32Ref(out, x []float32, n int, w []float32, rows, cols int) {
	for b := 0; b < n; b++ {
		xr := x[b*cols : (b+1)*cols]
		for o := 0; o < rows; o++ {
			wr := w[o*cols : (o+1)*cols]
			var s float64
			for i, v := range wr {
				s += float64(v) * float64(xr[i])
			}
			out[b*rows+o] = float32(s)
		}
	}
}

// MatMulBF16Ref is MatMulF32Ref with bfloat16 weights.
func MatMulBF16Ref(out, x []float32, n int, w []uint16, rows, cols int) {
	matMulConvRef(out, x, n, w, rows, cols, quant.BF16ToF32)
}

// MatMulF16Ref is MatMulF32Ref with IEEE half weights.
func MatMulF16Ref(out, x []float32, n int, w []uint16, rows, cols int) {
	matMulConvRef(out, x, n, w, rows, cols, quant.F16ToF32)
}

func matMulConvRef(out, x []float32, n int, w []uint16, rows, cols int, conv func(uint16) float32) {
	row := make([]float32, cols)
	for o := 0; o < rows; o++ {
		for i := range row {
			row[i] = conv(w[o*cols+i])
		}
		for b := 0; b < n; b++ {
			out[b*rows+o] = dotRef(row, x[b*cols:(b+1)*cols])
		}
	}
}

// MatMulMLXRef multiplies by an MLX affine-quantized weight, one dequantized
// row at a time.
func MatMulMLXRef(out, x []float32, n int, wq []uint32, scales, biases []float32, rows, cols, bits, groupSize int) {
	words := cols * bits / 32
	groups := cols / groupSize
	row := make([]float32, cols)
	for o := 0; o < rows; o++ {
		quant.DequantizeMLX(row, wq[o*words:(o+1)*words], scales[o*groups:(o+1)*groups], biases[o*groups:(o+1)*groups], 1, cols, bits, groupSize)
		for b := 0; b < n; b++ {
			out[b*rows+o] = dotRef(row, x[b*cols:(b+1)*cols])
		}
	}
}

func dotRef(a, b []float32) float32 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return float32(s)
}

// LayerNormRef is LayerNorm in float64: each row of x (plus add's, when add
// is not nil) less its mean, over its standard deviation, times weight plus
// bias. out may be x or add.
func LayerNormRef(out, x, add, weight, bias []float32, n, dim int, eps float32) {
	for r := 0; r < n; r++ {
		at := func(i int) float64 {
			if add != nil {
				return float64(x[r*dim+i] + add[r*dim+i])
			}
			return float64(x[r*dim+i])
		}
		var sum, ss float64
		for i := range dim {
			sum += at(i)
		}
		mean := sum / float64(dim)
		for i := range dim {
			d := at(i) - mean
			ss += d * d
		}
		inv := 1 / math.Sqrt(ss/float64(dim)+float64(eps))
		for i := range dim {
			out[r*dim+i] = float32((at(i)-mean)*inv)*weight[i] + bias[i]
		}
	}
}

// RMSNormRef normalises each of the n rows of x by its root mean square and
// multiplies by weight (or 1+weight when addOne, as Gemma stores it).
// out may be x.
func RMSNormRef(out, x, weight []float32, n, dim int, eps float32, addOne bool) {
	for b := 0; b < n; b++ {
		xr := x[b*dim : (b+1)*dim]
		var ss float64
		for _, v := range xr {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/float64(dim)+float64(eps))
		or := out[b*dim : (b+1)*dim]
		for i, v := range xr {
			w := float64(weight[i])
			if addOne {
				w++
			}
			or[i] = float32(float64(v) * inv * w)
		}
	}
}

// SoftmaxRef replaces x by exp(x-max)/sum in place.
func SoftmaxRef(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	var s float64
	for i, v := range x {
		e := math.Exp(float64(v - m))
		x[i] = float32(e)
		s += e
	}
	for i := range x {
		x[i] = float32(float64(x[i]) / s)
	}
}

// SiLUMulRef sets gate[i] = silu(gate[i])*up[i], silu(v) = v/(1+exp(-v)).
func SiLUMulRef(gate, up []float32) {
	for i, g := range gate {
		v := float64(g)
		gate[i] = float32(v / (1 + math.Exp(-v)) * float64(up[i]))
	}
}

// GELUTanhMulRef sets gate[i] = gelu_tanh(gate[i])*up[i], the tanh
// approximation 0.5v(1+tanh(sqrt(2/pi)(v+0.044715v^3))).
func GELUTanhMulRef(gate, up []float32) {
	for i, g := range gate {
		gate[i] = float32(geluTanh(float64(g)) * float64(up[i]))
	}
}

// GELUErfRef sets x[i] = x[i]·Φ(x[i]), the exact GELU of BERT's "gelu".
func GELUErfRef(x []float32) {
	for i, v := range x {
		x[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
	}
}

func geluTanh(v float64) float64 {
	return 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
}

// AddRef sets dst[i] += src[i].
func AddRef(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}

// AttentionRef is causal (optionally windowed, soft-capped) multi-head
// attention of nq query rows at positions pos0.. against a KV cache; see
// Attention for the layout. window -1 attends to every position
// (AttentionBidirectional).
func AttentionRef(out, q []float32, nq, pos0 int, kCache, vCache []float32, nKV, nHeads, nKVHeads, headDim int, scale, softcap float32, window int) {
	qStride := nHeads * headDim
	kvStride := nKVHeads * headDim
	group := nHeads / nKVHeads
	scores := make([]float64, nKV)
	acc := make([]float64, headDim)
	for t := 0; t < nq; t++ {
		lo, hi := attnRange(pos0+t, nKV, window)
		for h := 0; h < nHeads; h++ {
			qv := q[t*qStride+h*headDim : t*qStride+(h+1)*headDim]
			kvOff := (h / group) * headDim
			m := math.Inf(-1)
			for p := lo; p < hi; p++ {
				k := kCache[p*kvStride+kvOff : p*kvStride+kvOff+headDim]
				var s float64
				for i, v := range qv {
					s += float64(v) * float64(k[i])
				}
				s *= float64(scale)
				if softcap > 0 {
					s = math.Tanh(s/float64(softcap)) * float64(softcap)
				}
				scores[p] = s
				m = math.Max(m, s)
			}
			var sum float64
			for p := lo; p < hi; p++ {
				scores[p] = math.Exp(scores[p] - m)
				sum += scores[p]
			}
			clear(acc)
			for p := lo; p < hi; p++ {
				v := vCache[p*kvStride+kvOff : p*kvStride+kvOff+headDim]
				w := scores[p] / sum
				for i, vv := range v {
					acc[i] += w * float64(vv)
				}
			}
			o := out[t*qStride+h*headDim : t*qStride+(h+1)*headDim]
			for i := range o {
				o[i] = float32(acc[i])
			}
		}
	}
}

// attnRange returns the half-open range of cache positions that a query at
// absolute position pos may attend to (all of them when window < 0).
func attnRange(pos, nKV, window int) (lo, hi int) {
	if window < 0 { // bidirectional: every position
		return 0, nKV
	}
	hi = min(pos+1, nKV)
	if window > 0 {
		lo = max(0, pos-window+1)
	}
	return lo, hi
}

// RoPERef rotates the first rotDim dimensions of every head of every row of x
// by angle position*invFreq[i], pairing (i, i+rotDim/2) when neox, else
// (2i, 2i+1); cos and sin are multiplied by mscale.
func RoPERef(x []float32, n, nHeads, headDim, rotDim int, positions []int32, invFreq []float32, neox bool, mscale float32) {
	half := rotDim / 2
	for t := 0; t < n; t++ {
		for i := 0; i < half; i++ {
			// The angle is formed in float32, as transformers and MLX do.
			ang := float64(float32(positions[t]) * invFreq[i])
			c := math.Cos(ang) * float64(mscale)
			s := math.Sin(ang) * float64(mscale)
			for h := 0; h < nHeads; h++ {
				base := t*nHeads*headDim + h*headDim
				i0, i1 := base+2*i, base+2*i+1
				if neox {
					i0, i1 = base+i, base+i+half
				}
				a, b := float64(x[i0]), float64(x[i1])
				x[i0] = float32(a*c - b*s)
				x[i1] = float32(a*s + b*c)
			}
		}
	}
}
