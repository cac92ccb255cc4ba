// Package kernels holds the numeric kernels of the CPU inference engine:
// matrix multiplication against weights in their stored format (float32,
// bfloat16, half, MLX affine-quantized, GGUF Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K),
// attention over a KV cache, RoPE, RMSNorm and the elementwise activations.
//
// All matrices are row-major float32 slices. A weight W is [rows][cols]
// (PyTorch's [out, in]); activations x are [n][cols] and outputs [n][rows].
// A matmul reads each weight once per block of up to four activation rows,
// so decoding a batch of sequences costs about one pass over the weights.
// Activations stay float32 (results match the dequantized reference to
// float rounding) except on the int8 path: Packed weights (GGUF Q8_0, Q4_0,
// Q5_0, Q4_K and Q6_K and MLX 4-bit, repacked at load so that one register
// holds codes of 16 rows) at the AVX2, AVX-512 and NEON levels, and
// unpacked Q8_0, Q4_0 and MLX 4-bit weights at AVX-512 with VNNI and at
// NEON. There each activation row is quantized to int8 per 32-element
// block (scale max|x|/127) and dotted in integers, as llama.cpp does for
// its quantized formats.
// IMPETUS_SIMD or SetLevel holds every kernel at a lower level than the
// CPU's best. IMPETUS_INT8=0 in
// the environment, or SetInt8Activations(false), keeps everything in float;
// IMPETUS_INT8_MLX=0 or SetInt8MLX(false) does so for MLX weights only. The
// kernels' own tests run in float and turn the int8 path on where they
// check it.
//
// Batch invariance: each output element is made by the same sequence of
// float operations whatever n is, whichever other rows share the call and
// however many threads run it (work is split across output rows, never
// across a sum). The int8 path keeps this: each activation row is
// quantized on its own, with the same code for every n. A sequence decoded in a batch, or beside other requests,
// gets the same bits as alone, so seeded sampling is reproducible.
//
// The matrix and attention kernels split their work over a persistent pool
// of threads (SetThreads); with cgo they run C code for the best SIMD level
// of the CPU, chosen at run time (Features: AVX-512, AVX2+FMA, NEON, or
// scalar C), otherwise plain Go. The *Ref functions define the results.
//
// Size mismatches are programming errors and panic.
//
// Testing: go test runs every kernel against the references at each level
// the CPU supports (TestLevels). The NEON level can be checked on x86 with
// gcc-aarch64-linux-gnu and qemu-user:
//
//	CGO_ENABLED=1 GOARCH=arm64 CC=aarch64-linux-gnu-gcc go test -c -o k.test ./inference/kernels
//	(cd inference/kernels && qemu-aarch64 -L /usr/aarch64-linux-gnu ../../k.test)
package kernels

import (
	"fmt"

	"github.com/impetusllm/impetus/inference/quant"
)

// weightKind is the storage of a matmul's weight.
type weightKind uint8

const (
	kindF32 weightKind = iota
	kindBF16
	kindF16
	kindMLX
	kindGGUF   // GGUF blocks of matMulJob.typ (gguf.go)
	kindPacked // a *Packed weight (packed.go)
	kindPanels // a *Panels weight (panels.go)
)

// matMulJob is one matrix multiplication, split by output rows.
type matMulJob struct {
	kind         weightKind
	typ          quant.GGMLType // kindGGUF
	out, x       []float32
	xp           []float32 // x as the backend wants it (prepMatMul)
	xq           []int8    // x quantized to int8 per 32-block, when the int8 path runs (prepMatMul)
	xd           []float32 // block scales of xq
	xs           []int32   // block sums of xq
	xdv          []float32 // per-lane scales of block pairs of xq
	xc           []int32   // per-lane weight-offset corrections of block pairs of xq (packed: per block)
	xe           []float32 // packed MLX: per-group sums of the block scales times block sums
	pk           *Packed   // kindPacked
	pn           *Panels   // kindPanels
	n            int
	wf           []float32 // kindF32
	wh           []uint16  // kindBF16, kindF16
	wq           []uint32  // kindMLX
	wb           []byte    // kindGGUF
	scales       []float32 // kindMLX
	biases       []float32 // kindMLX
	rows, cols   int
	bits, group  int
	wordsPerRow  int
	groupsPerRow int
}

func (j *matMulJob) run(worker, lo, hi int) { matMulRows(j, worker, lo, hi) }

// rowAlign is the row tile the matmul chunks are rounded to.
const rowAlign = 16

// panelAlign is rowAlign for Panels: four panels, the widest panel tile
// (AVX-512's; its wide tile takes two), so that a chunk's rows run in
// whole tiles.
const panelAlign = 4 * panelRows

// batchChunkBytes bounds the weight bytes of one chunk of rows when the
// kernel must stream them once per block of activation rows (n > 4), so
// that the repeated passes hit the L2 cache instead of memory.
const batchChunkBytes = 256 << 10

// tileChunkBytes is batchChunkBytes for float weights where the level has
// a many-row tile kernel (tileKernel): each chunk of rows streams all the
// activation rows past its weights, so bigger chunks read the activations
// fewer times, and these CPUs' L2 holds twice as much.
const tileChunkBytes = 512 << 10

// decodeChunkBytes bounds the weight bytes of one chunk of rows for a few
// activation rows (decode), where the matmul streams its weights from
// memory once: with chunks of a quarter of a worker's share, a 7B model's
// 30 MB matrices went out in 4 MB pieces and two threads decoded about 20%
// slower on a 2-core Zen 5 than with 1 MiB pieces, which let the thread
// that streams faster take more of the matrix (small models' matrices are
// already split finer and do not change).
const decodeChunkBytes = 1 << 20

// runMatMul runs one matrix product on the pool. The job goes into the
// pool's reused record (no allocation per call), cleared after so that it
// keeps no slices alive.
func runMatMul(job matMulJob) {
	p := thePool
	p.mu.Lock()
	defer p.mu.Unlock()
	j := &p.jobs.mm
	*j = job
	p.matMul(j)
	*j = matMulJob{}
}

func (p *pool) matMul(j *matMulJob) {
	prepMatMul(p, j)
	align := rowAlign
	if j.kind == kindPanels {
		align = panelAlign
	}
	grain := p.grainFor(j.rows, align)
	if j.n > 4 {
		if rb := j.rowBytes(); rb > 0 {
			budget := batchChunkBytes
			if j.kind <= kindF16 && tileKernel() || j.kind == kindPanels {
				budget = tileChunkBytes
			}
			grain = min(grain, max(align, budget/rb/align*align))
		}
	}
	if j.n <= 4 {
		if rb := j.rowBytes(); rb > 0 {
			grain = min(grain, max(align, decodeChunkBytes/rb/align*align))
		}
	}
	p.parallel(j, j.rows, grain)
}

// rowBytes is the storage size of one weight row.
func (j *matMulJob) rowBytes() int {
	switch j.kind {
	case kindF32:
		return 4 * j.cols
	case kindBF16, kindF16:
		return 2 * j.cols
	case kindMLX:
		return 4*j.wordsPerRow + 8*j.groupsPerRow
	case kindGGUF:
		return j.cols / j.typ.BlockSize() * j.typ.TypeSize()
	case kindPacked:
		return j.pk.Bytes() / j.pk.rows
	case kindPanels:
		return j.pn.Bytes() / j.pn.rows
	}
	return 0
}

func checkMatMul(name string, out, x []float32, n, rows, cols, wlen, wwant int) {
	if n < 0 || rows < 0 || cols < 0 {
		panic(fmt.Sprintf("kernels: %s: negative size n=%d rows=%d cols=%d", name, n, rows, cols))
	}
	if len(out) < n*rows || len(x) < n*cols || wlen < wwant {
		panic(fmt.Sprintf("kernels: %s: short slice: len(out)=%d want %d, len(x)=%d want %d, weight %d want %d",
			name, len(out), n*rows, len(x), n*cols, wlen, wwant))
	}
}

// MatMulF32 sets out[b*rows+o] = sum_i x[b*cols+i]*w[o*cols+i] for b < n.
// Like every matmul here, out must not overlap x.
func MatMulF32(out, x []float32, n int, w []float32, rows, cols int) {
	checkMatMul("MatMulF32", out, x, n, rows, cols, len(w), rows*cols)
	runMatMul(matMulJob{kind: kindF32, out: out, x: x, n: n, wf: w, rows: rows, cols: cols})
}

// MatMulBF16 is MatMulF32 with w holding raw bfloat16 bits.
func MatMulBF16(out, x []float32, n int, w []uint16, rows, cols int) {
	matMulHalf("MatMulBF16", kindBF16, out, x, n, w, rows, cols)
}

// MatMulF16 is MatMulF32 with w holding raw IEEE half bits.
func MatMulF16(out, x []float32, n int, w []uint16, rows, cols int) {
	matMulHalf("MatMulF16", kindF16, out, x, n, w, rows, cols)
}

func matMulHalf(name string, kind weightKind, out, x []float32, n int, w []uint16, rows, cols int) {
	checkMatMul(name, out, x, n, rows, cols, len(w), rows*cols)
	runMatMul(matMulJob{kind: kind, out: out, x: x, n: n, wh: w, rows: rows, cols: cols})
}

// MatMulMLX multiplies by an MLX affine-quantized weight:
// wq is the packed [rows][cols*bits/32] matrix, scales and biases are
// [rows][cols/groupSize], and w[o][j] = scales[o][j/g]*q[o][j] + biases[o][j/g].
// bits is 2, 3, 4, 5, 6 or 8 and groupSize 32, 64 or 128.
func MatMulMLX(out, x []float32, n int, wq []uint32, scales, biases []float32, rows, cols, bits, groupSize int) {
	switch bits {
	case 2, 3, 4, 5, 6, 8:
	default:
		panic(fmt.Sprintf("kernels: MatMulMLX: unsupported bits %d", bits))
	}
	switch groupSize {
	case 32, 64, 128:
	default:
		panic(fmt.Sprintf("kernels: MatMulMLX: unsupported group size %d", groupSize))
	}
	if cols%groupSize != 0 {
		panic(fmt.Sprintf("kernels: MatMulMLX: cols %d not a multiple of group size %d", cols, groupSize))
	}
	words, groups := cols*bits/32, cols/groupSize
	checkMatMul("MatMulMLX", out, x, n, rows, cols, len(wq), rows*words)
	if len(scales) < rows*groups || len(biases) < rows*groups {
		panic(fmt.Sprintf("kernels: MatMulMLX: scales %d / biases %d, want %d", len(scales), len(biases), rows*groups))
	}
	runMatMul(matMulJob{kind: kindMLX, out: out, x: x, n: n, wq: wq, scales: scales, biases: biases,
		rows: rows, cols: cols, bits: bits, group: groupSize, wordsPerRow: words, groupsPerRow: groups})
}

// attnJob is one attention call. Its items are (tile of attnTile query
// rows, KV head) pairs, so that a tile and the query heads sharing a KV head
// read each chunk of the cache together; or, for decode (split), (query row,
// KV head, cache chunk) triples whose partial results go to part and are
// merged afterwards, so that all threads share a long cache.
type attnJob struct {
	out, q                    []float32
	nq, pos0                  int
	k, v                      []float32
	kh, vh                    []uint16 // a half-precision cache instead of k, v
	kq, vq                    []byte   // a q8_0 cache (Q8KVRowBytes) instead of k, v
	nKV                       int
	nHeads, nKVHeads, headDim int
	scale, softcap            float32
	window                    int
	part                      []float32 // split: the chunks' partial results
}

func (j *attnJob) run(worker, lo, hi int) { attentionItems(j, worker, lo, hi) }

// Attention computes causal multi-head attention for nq query rows of one
// sequence. q and out are [nq][nHeads*headDim]; kCache and vCache are
// [nKV][nKVHeads*headDim] with nKV >= pos0+nq (the rows' own keys and
// values are in the cache). Query row t sits at absolute position pos0+t and
// attends to cache positions p <= pos0+t and, when window > 0, p >
// pos0+t-window. Head h reads kv head h/(nHeads/nKVHeads). Scores are
// scale*q·k, soft-capped as tanh(s/softcap)*softcap when softcap > 0.
func Attention(out, q []float32, nq, pos0 int, kCache, vCache []float32, nKV, nHeads, nKVHeads, headDim int, scale, softcap float32, window int) {
	checkAttention(len(out), len(q), nq, pos0, len(kCache), len(vCache), nKV, nHeads, nKVHeads, headDim, nKVHeads*headDim)
	runAttention(attnJob{out: out, q: q, nq: nq, pos0: pos0, k: kCache, v: vCache, nKV: nKV,
		nHeads: nHeads, nKVHeads: nKVHeads, headDim: headDim, scale: scale, softcap: softcap, window: window})
}

// AttentionBidirectional computes full (unmasked) multi-head attention
// over one sequence of n rows, as encoders attend: q, k, v and out are
// [n][nHeads*headDim], every row attends to every row, scores scale*q·k.
// With heads of a multiple of 16 it runs one item per head (k_attn_bidir:
// keys staged transposed, scores and weighted values as whole vectors, no
// horizontal sums; attnBidirGo without cgo); otherwise the tiled kernel of
// Attention.
// AttentionRef with window -1 is its reference.
func AttentionBidirectional(out, q, k, v []float32, n, nHeads, headDim int, scale float32) {
	checkAttention(len(out), len(q), n, 0, len(k), len(v), n, nHeads, nHeads, headDim, nHeads*headDim)
	if headDim%16 == 0 {
		p := thePool
		p.mu.Lock()
		defer p.mu.Unlock()
		j := &p.jobs.bidir
		*j = bidirJob{out: out, q: q, k: k, v: v, n: n, nh: nHeads, hd: headDim, scale: scale}
		p.parallel(j, nHeads, 1)
		*j = bidirJob{}
		return
	}
	runAttention(attnJob{out: out, q: q, nq: n, k: k, v: v, nKV: n,
		nHeads: nHeads, nKVHeads: nHeads, headDim: headDim, scale: scale, window: -1})
}

// bidirJob is one sequence's bidirectional attention, one item per head
// (k_attn_bidir: keys staged transposed, scores and weighted values as
// whole vectors).
type bidirJob struct {
	out, q, k, v []float32
	n, nh, hd    int
	scale        float32
}

// AttentionF16 is Attention over a cache stored in half precision (IEEE
// binary16, as quant.F32ToF16 rounds): the KV cache's default storage,
// half the bytes to read per token at long context. Its results are those
// of AttentionRef on the cache converted to float32, to float rounding.
func AttentionF16(out, q []float32, nq, pos0 int, kCache, vCache []uint16, nKV, nHeads, nKVHeads, headDim int, scale, softcap float32, window int) {
	checkAttention(len(out), len(q), nq, pos0, len(kCache), len(vCache), nKV, nHeads, nKVHeads, headDim, nKVHeads*headDim)
	runAttention(attnJob{out: out, q: q, nq: nq, pos0: pos0, kh: kCache, vh: vCache, nKV: nKV,
		nHeads: nHeads, nKVHeads: nKVHeads, headDim: headDim, scale: scale, softcap: softcap, window: window})
}

// AttentionQ8 is Attention over a cache stored in q8_0 blocks
// (QuantizeQ8KV): a quarter of float32's bytes plus a scale per 32 values,
// for the longest contexts. headDim must be a multiple of 32. Keys and
// values are dequantized as they are read and everything else runs in
// float, so its results are those of AttentionRef on the cache dequantized
// (DequantQ8KV), to float rounding.
func AttentionQ8(out, q []float32, nq, pos0 int, kCache, vCache []byte, nKV, nHeads, nKVHeads, headDim int, scale, softcap float32, window int) {
	if headDim%Q8KVBlock != 0 {
		panic(fmt.Sprintf("kernels: AttentionQ8: head size %d is not a multiple of %d", headDim, Q8KVBlock))
	}
	checkAttention(len(out), len(q), nq, pos0, len(kCache), len(vCache), nKV, nHeads, nKVHeads, headDim, Q8KVRowBytes(nKVHeads*headDim))
	runAttention(attnJob{out: out, q: q, nq: nq, pos0: pos0, kq: kCache, vq: vCache, nKV: nKV,
		nHeads: nHeads, nKVHeads: nKVHeads, headDim: headDim, scale: scale, softcap: softcap, window: window})
}

// checkAttention panics on a bad shape; kvRow is the length of one token's
// row of the cache slices (elements, or bytes for q8_0).
func checkAttention(nOut, nQ, nq, pos0, nK, nV, nKV, nHeads, nKVHeads, headDim, kvRow int) {
	if nq < 0 || pos0 < 0 || nKV < 0 || nHeads <= 0 || nKVHeads <= 0 || headDim <= 0 || nHeads%nKVHeads != 0 {
		panic(fmt.Sprintf("kernels: Attention: bad shape nq=%d pos0=%d nKV=%d heads=%d kvHeads=%d headDim=%d",
			nq, pos0, nKV, nHeads, nKVHeads, headDim))
	}
	if nq > 0 && pos0+nq > nKV {
		panic(fmt.Sprintf("kernels: Attention: position %d has no cache entry (nKV=%d)", pos0+nq-1, nKV))
	}
	qs := nHeads * headDim
	if nOut < nq*qs || nQ < nq*qs || nK < nKV*kvRow || nV < nKV*kvRow {
		panic(fmt.Sprintf("kernels: Attention: short slice: out %d q %d (want %d), k %d v %d (want %d)",
			nOut, nQ, nq*qs, nK, nV, nKV*kvRow))
	}
}

// attnSplitRows is the most query rows an attention call splits over the
// cache's chunks (decode and small decode batches); longer calls split
// over tiles of rows.
const attnSplitRows = 4

func runAttention(job attnJob) {
	p := thePool
	p.mu.Lock()
	defer p.mu.Unlock()
	j := &p.jobs.at
	*j = job
	if j.nq > 0 && j.nq <= attnSplitRows && attnChunk > 0 {
		// One item per (row, KV head, chunk): the split is fixed by the
		// cache positions, so the result does not depend on the threads.
		nC := (j.nKV + attnChunk - 1) / attnChunk
		grp := j.nHeads / j.nKVHeads
		n := j.nq * j.nKVHeads * nC * grp * (j.headDim + 2)
		if cap(p.abuf) < n {
			p.abuf = make([]float32, n)
		}
		j.part = p.abuf[:n]
		items := j.nq * j.nKVHeads * nC
		p.parallel(j, items, max(1, items/(4*p.workers)))
		attentionMerge(j, p.scratchFor(0, j.headDim+2))
	} else {
		items := (j.nq + attnTile - 1) / attnTile * j.nKVHeads
		p.parallel(j, items, 1)
	}
	*j = attnJob{}
}

// RMSNorm sets each row of out to x/rms(x)*weight, or *(1+weight) when
// addOne (Gemma's stored form). out may be x.
func RMSNorm(out, x, weight []float32, n, dim int, eps float32, addOne bool) {
	if len(out) < n*dim || len(x) < n*dim || len(weight) < dim {
		panic(fmt.Sprintf("kernels: RMSNorm: short slice: out %d x %d want %d, weight %d want %d",
			len(out), len(x), n*dim, len(weight), dim))
	}
	rmsNorm(out, x, weight, n, dim, eps, addOne)
}

// LayerNorm sets each row of out to the row of x plus the row of add (when
// add is not nil: a residual connection), normalised to mean 0 and
// variance 1, times weight plus bias (BERT's LayerNorm). out may be x or
// add.
func LayerNorm(out, x, add, weight, bias []float32, n, dim int, eps float32) {
	if len(out) < n*dim || len(x) < n*dim || (add != nil && len(add) < n*dim) || len(weight) < dim || len(bias) < dim {
		panic(fmt.Sprintf("kernels: LayerNorm: short slice: out %d x %d add %d want %d, weight %d bias %d want %d",
			len(out), len(x), len(add), n*dim, len(weight), len(bias), dim))
	}
	if n > 0 && dim > 0 {
		layerNorm(out, x, add, weight, bias, n, dim, eps)
	}
}

// Softmax replaces x by its softmax, subtracting the maximum first.
func Softmax(x []float32) { softmax(x) }

// SiLUMul sets gate[i] = silu(gate[i])*up[i] (the SwiGLU product).
func SiLUMul(gate, up []float32) {
	checkPair("SiLUMul", gate, up)
	siluMul(gate, up)
}

// GELUTanhMul sets gate[i] = gelu_tanh(gate[i])*up[i] (Gemma's GeGLU).
func GELUTanhMul(gate, up []float32) {
	checkPair("GELUTanhMul", gate, up)
	geluMul(gate, up)
}

// GELUErf sets x[i] = x[i]·Φ(x[i]) (the exact GELU BERT encoders use),
// with erf approximated to within 1.5e-7.
func GELUErf(x []float32) { geluErf(x) }

// Add sets dst[i] += src[i] for i < len(dst).
func Add(dst, src []float32) {
	checkPair("Add", dst, src)
	add(dst, src)
}

func checkPair(name string, a, b []float32) {
	if len(b) < len(a) {
		panic(fmt.Sprintf("kernels: %s: second slice has %d elements, want %d", name, len(b), len(a)))
	}
}

// RoPE rotates, in place, the first rotDim dimensions of each head of the n
// rows of x ([n][nHeads*headDim]) by angle positions[t]*invFreq[i] (invFreq
// has rotDim/2 entries). neox pairs dimension i with i+rotDim/2 (HF, MLX);
// otherwise 2i with 2i+1 (GGUF llama). cos and sin are scaled by mscale.
func RoPE(x []float32, n, nHeads, headDim, rotDim int, positions []int32, invFreq []float32, neox bool, mscale float32) {
	if rotDim > headDim || rotDim%2 != 0 || rotDim < 0 {
		panic(fmt.Sprintf("kernels: RoPE: rotDim %d with headDim %d", rotDim, headDim))
	}
	if len(x) < n*nHeads*headDim || len(positions) < n || len(invFreq) < rotDim/2 {
		panic(fmt.Sprintf("kernels: RoPE: short slice: x %d want %d, positions %d want %d, invFreq %d want %d",
			len(x), n*nHeads*headDim, len(positions), n, len(invFreq), rotDim/2))
	}
	rope(x, n, nHeads, headDim, rotDim, positions, invFreq, neox, mscale)
}

// RoPETable holds RoPE's cos and sin for positions [0, Len()), computed
// once: an encoder's sequences all start at position 0, and a batch of
// them would otherwise compute the same angles for every token.
type RoPETable struct {
	rotDim   int
	cos, sin []float32 // [position][rotDim/2], times mscale
}

// NewRoPETable computes the table for positions [0, n) (RoPE's arguments).
func NewRoPETable(n, rotDim int, invFreq []float32, mscale float32) *RoPETable {
	if n < 0 || rotDim < 0 || rotDim%2 != 0 || len(invFreq) < rotDim/2 {
		panic(fmt.Sprintf("kernels: NewRoPETable: n %d, rotDim %d, invFreq %d", n, rotDim, len(invFreq)))
	}
	t := &RoPETable{rotDim: rotDim, cos: make([]float32, n*rotDim/2), sin: make([]float32, n*rotDim/2)}
	ropeTable(t.cos, t.sin, n, rotDim, invFreq, mscale)
	return t
}

// Len is the number of positions the table holds.
func (t *RoPETable) Len() int {
	if t.rotDim == 0 {
		return 0
	}
	return len(t.cos) / (t.rotDim / 2)
}

// Apply is RoPE with the table's angles, with the same results bit for
// bit; every position must be below Len().
func (t *RoPETable) Apply(x []float32, n, nHeads, headDim int, positions []int32, neox bool) {
	if t.rotDim > headDim {
		panic(fmt.Sprintf("kernels: RoPETable.Apply: rotDim %d with headDim %d", t.rotDim, headDim))
	}
	if len(x) < n*nHeads*headDim || len(positions) < n {
		panic(fmt.Sprintf("kernels: RoPETable.Apply: short slice: x %d want %d, positions %d want %d",
			len(x), n*nHeads*headDim, len(positions), n))
	}
	for _, p := range positions[:n] {
		if p < 0 || int(p) >= t.Len() {
			panic(fmt.Sprintf("kernels: RoPETable.Apply: position %d outside the table's %d", p, t.Len()))
		}
	}
	ropeApply(x, n, nHeads, headDim, t.rotDim, positions, t.cos, t.sin, neox)
}

// ReadStream reads every byte of b as fast as the current level can, for
// the bench's memory bandwidth probe; sparse adds the far prefetch the packed
// decode kernels use on AMD. The result depends on every byte, so the
// reads cannot be dropped.
func ReadStream(b []byte, sparse bool) uint64 { return readStream(b, sparse) }
