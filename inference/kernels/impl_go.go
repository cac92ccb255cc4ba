package kernels

import (
	"fmt"
	"math"

	"github.com/impetusllm/impetus/inference/quant"
)

// The portable Go backend: float32 arithmetic, one weight row decoded at a
// time and reused across all n activation rows.

func matMulRowsGo(j *matMulJob, worker, lo, hi int) {
	if j.kind == kindPanels {
		matMulPanelsGo(j, worker, lo, hi)
		return
	}
	cols := j.cols
	var row []float32
	if j.kind != kindF32 {
		row = thePool.scratchFor(worker, cols)
	}
	for o := lo; o < hi; o++ {
		switch j.kind {
		case kindF32:
			row = j.wf[o*cols : (o+1)*cols]
		case kindBF16:
			for i, h := range j.wh[o*cols : (o+1)*cols] {
				row[i] = quant.BF16ToF32(h)
			}
		case kindF16:
			for i, h := range j.wh[o*cols : (o+1)*cols] {
				row[i] = quant.F16ToF32(h)
			}
		case kindMLX:
			w, g := j.wordsPerRow, j.groupsPerRow
			quant.DequantizeMLX(row, j.wq[o*w:(o+1)*w], j.scales[o*g:(o+1)*g], j.biases[o*g:(o+1)*g], 1, cols, j.bits, j.group)
		case kindGGUF:
			rb := cols / j.typ.BlockSize() * j.typ.TypeSize()
			if err := quant.DequantizeGGML(j.typ, j.wb[o*rb:(o+1)*rb], row); err != nil {
				panic(fmt.Sprintf("kernels: MatMulGGUF: %v", err)) // sizes were checked
			}
		}
		for b := 0; b < j.n; b++ {
			j.out[b*j.rows+o] = dotGo(row, j.x[b*cols:(b+1)*cols])
		}
	}
}

func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// attentionItemsGo computes items (query row t, KV head) = t*nKVHeads+kvh,
// every query head of the group in turn.
func attentionItemsGo(j *attnJob, worker, lo, hi int) {
	hd := j.headDim
	qs, kvs := j.nHeads*hd, j.nKVHeads*hd
	group := j.nHeads / j.nKVHeads
	buf := thePool.scratchFor(worker, j.nKV+2*hd)
	scores, acc, row := buf[:j.nKV], buf[j.nKV:j.nKV+hd], buf[j.nKV+hd:]
	// kvRow is cache row p of this head as float32 (a half or q8_0 cache
	// converted into row); at counts elements, for q8_0 as if in float.
	kvRow := func(f []float32, h []uint16, q []byte, at int) []float32 {
		switch {
		case q != nil:
			b := at / Q8KVBlock * q8KVBlockBytes
			DequantQ8KV(row, q[b:b+hd/Q8KVBlock*q8KVBlockBytes])
			return row
		case h == nil:
			return f[at : at+hd]
		}
		for i := range row {
			row[i] = quant.F16ToF32(h[at+i])
		}
		return row
	}
	for it := lo; it < hi; it++ {
		t, kvh := it/j.nKVHeads, it%j.nKVHeads
		pLo, pHi := attnRange(j.pos0+t, j.nKV, j.window)
		kvOff := kvh * hd
		for h := kvh * group; h < (kvh+1)*group; h++ {
			qv := j.q[t*qs+h*hd : t*qs+(h+1)*hd]
			m := float32(math.Inf(-1))
			for p := pLo; p < pHi; p++ {
				s := dotGo(qv, kvRow(j.k, j.kh, j.kq, p*kvs+kvOff)) * j.scale
				if j.softcap > 0 {
					s = float32(math.Tanh(float64(s/j.softcap))) * j.softcap
				}
				scores[p] = s
				m = max(m, s)
			}
			var sum float64
			for p := pLo; p < pHi; p++ {
				e := float32(math.Exp(float64(scores[p] - m)))
				scores[p] = e
				sum += float64(e)
			}
			clear(acc)
			for p := pLo; p < pHi; p++ {
				w := float32(float64(scores[p]) / sum)
				v := kvRow(j.v, j.vh, j.vq, p*kvs+kvOff)
				for i, vv := range v {
					acc[i] += w * vv
				}
			}
			copy(j.out[t*qs+h*hd:t*qs+(h+1)*hd], acc)
		}
	}
}

func rmsNormGo(out, x, weight []float32, n, dim int, eps float32, addOne bool) {
	off := float32(0)
	if addOne {
		off = 1
	}
	for b := 0; b < n; b++ {
		xr := x[b*dim : (b+1)*dim]
		var ss float64
		for _, v := range xr {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(ss/float64(dim)+float64(eps)))
		or := out[b*dim : (b+1)*dim]
		for i, v := range xr {
			or[i] = v * inv * (weight[i] + off)
		}
	}
}

func siluMulGo(gate, up []float32) {
	for i, g := range gate {
		gate[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
	}
}

func geluMulGo(gate, up []float32) {
	for i, g := range gate {
		gate[i] = float32(geluTanh(float64(g))) * up[i]
	}
}

func addGo(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

func ropeGo(x []float32, n, nHeads, headDim, rotDim int, positions []int32, invFreq []float32, neox bool, mscale float32) {
	half := rotDim / 2
	for t := 0; t < n; t++ {
		for i := 0; i < half; i++ {
			c, s := ropeAngle(positions[t], invFreq[i], mscale)
			ropeRotate(x[t*nHeads*headDim:], nHeads, headDim, half, i, c, s, neox)
		}
	}
}

func ropeAngle(pos int32, invFreq, mscale float32) (c, s float32) {
	ang := float64(float32(pos) * invFreq)
	return float32(math.Cos(ang)) * mscale, float32(math.Sin(ang)) * mscale
}

func ropeRotate(row []float32, nHeads, headDim, half, i int, c, s float32, neox bool) {
	for h := 0; h < nHeads; h++ {
		base := h * headDim
		i0, i1 := base+2*i, base+2*i+1
		if neox {
			i0, i1 = base+i, base+i+half
		}
		a, b := row[i0], row[i1]
		row[i0] = a*c - b*s
		row[i1] = a*s + b*c
	}
}

func ropeTableGo(cos, sin []float32, npos, rotDim int, invFreq []float32, mscale float32) {
	half := rotDim / 2
	for p := 0; p < npos; p++ {
		for i := 0; i < half; i++ {
			cos[p*half+i], sin[p*half+i] = ropeAngle(int32(p), invFreq[i], mscale)
		}
	}
}

func ropeApplyGo(x []float32, n, nHeads, headDim, rotDim int, positions []int32, cos, sin []float32, neox bool) {
	half := rotDim / 2
	for t := 0; t < n; t++ {
		at := int(positions[t]) * half
		for i := 0; i < half; i++ {
			ropeRotate(x[t*nHeads*headDim:], nHeads, headDim, half, i, cos[at+i], sin[at+i], neox)
		}
	}
}

// attnBidirGo is k_attn_bidir's scalar path in Go: heads [lo, hi) of one
// sequence, each row's scores, softmax and weighted sum of values.
func attnBidirGo(j *bidirJob, worker, lo, hi int) {
	rs, hd := j.nh*j.hd, j.hd
	sc := thePool.scratchFor(worker, j.n)
	for h := lo; h < hi; h++ {
		for i := 0; i < j.n; i++ {
			qi := j.q[i*rs+h*hd : i*rs+(h+1)*hd]
			mx := float32(math.Inf(-1))
			for t := 0; t < j.n; t++ {
				sc[t] = dotGo(qi, j.k[t*rs+h*hd:t*rs+(h+1)*hd]) * j.scale
				mx = max(mx, sc[t])
			}
			var sum float32
			for t := range sc {
				sc[t] = float32(math.Exp(float64(sc[t] - mx)))
				sum += sc[t]
			}
			oi := j.out[i*rs+h*hd : i*rs+(h+1)*hd]
			clear(oi)
			for t, p := range sc {
				for d, vv := range j.v[t*rs+h*hd : t*rs+(h+1)*hd] {
					oi[d] += p * vv
				}
			}
			for d := range oi {
				oi[d] /= sum
			}
		}
	}
}
