//go:build cgo && linux

package model

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/impetusllm/impetus/inference/cuda"
	"github.com/impetusllm/impetus/inference/quant"
)

// gpuModel is a Model's weights in GPU memory and the device buffers of its
// forward pass. Forward runs the same steps as on the CPU, through the
// kernels of package cuda; only the logits that are asked for come back.
type gpuModel struct {
	dev         *cuda.Device
	embed       gpuMatrix
	lmHead      *gpuMatrix
	norm        cuda.Ptr
	layers      []gpuLayer
	rope        map[*float32]cuda.Ptr // inverse-frequency tables by host table
	allocs      []cuda.Ptr            // everything above, freed by close
	weightBytes int64
	expanded    []string     // matrices widened to f32 at upload (no kernel for their format)
	kvBytes     atomic.Int64 // device memory of the KV caches made by newKV
	scratchSize atomic.Int64 // bytes of scratch

	// Forward scratch, carved from one allocation sized for capN tokens and
	// capOut logits rows.
	scratch      cuda.Ptr
	capN, capOut int
	b            gpuBuffers
	hostTP       []int32 // tokens then positions, uploaded together
}

type gpuMatrix struct {
	w    cuda.Weight
	bias cuda.Ptr
}

// slice is rows [r0, r0+n) of m with their bias.
func (m *gpuMatrix) slice(r0, n int) gpuMatrix {
	s := gpuMatrix{w: m.w.Slice(r0, n)}
	if m.bias != 0 {
		s.bias = m.bias.Add(r0 * 4)
	}
	return s
}

func (m *gpuMatrix) seg(out cuda.Ptr) cuda.Seg { return cuda.Seg{W: &m.w, Bias: m.bias, Out: out} }

type gpuLayer struct {
	attnNorm, ffnNorm, postAttn, postFFN, qNorm, kNorm cuda.Ptr
	q, k, v, qkv, o, gate, up, gateUp, down            gpuMatrix
}

type gpuBuffers struct {
	x, h, o, down, q, attn, k, v, gate, up, tok, pos, last, logits cuda.Ptr
}

// gpuKV is one sequence's keys and values in GPU memory: for each layer,
// capacity rows of K then capacity rows of V, float32 as on the CPU.
type gpuKV struct {
	dev          *cuda.Device
	used         *atomic.Int64 // the model's kvBytes
	ptr          cuda.Ptr
	capacity     int
	layers, kvDi int
}

func (kv *gpuKV) k(l int) cuda.Ptr { return kv.ptr.Add((2 * l) * kv.capacity * kv.kvDi * 4) }
func (kv *gpuKV) v(l int) cuda.Ptr { return kv.ptr.Add((2*l + 1) * kv.capacity * kv.kvDi * 4) }

// ensure makes room for capacity tokens, keeping the first n.
func (kv *gpuKV) ensure(capacity, n int) error {
	if capacity <= kv.capacity {
		return nil
	}
	p, err := kv.dev.Alloc(2 * kv.layers * capacity * kv.kvDi * 4)
	if err != nil {
		return fmt.Errorf("kv cache of %d tokens: %w", capacity, err)
	}
	old := *kv
	kv.ptr, kv.capacity = p, capacity
	kv.used.Add(int64(2*kv.layers*(capacity-old.capacity)) * int64(kv.kvDi) * 4)
	if old.ptr != 0 {
		for l := 0; l < kv.layers; l++ {
			kv.dev.Copy(kv.k(l), old.k(l), n*kv.kvDi*4)
			kv.dev.Copy(kv.v(l), old.v(l), n*kv.kvDi*4)
		}
		kv.dev.Free(old.ptr) // the default stream orders the free after the copies
	}
	return nil
}

func freeKV(kv *gpuKV) {
	if kv.ptr != 0 {
		kv.dev.Free(kv.ptr)
		kv.used.Add(-int64(2*kv.layers*kv.capacity) * int64(kv.kvDi) * 4)
		kv.ptr, kv.capacity = 0, 0
	}
}

func (g *gpuModel) newKV(c *KVCache) *gpuKV {
	kv := &gpuKV{dev: g.dev, used: &g.kvBytes, layers: c.layers, kvDi: c.kvDim}
	runtime.AddCleanup(c, freeKV, kv)
	return kv
}

// copyPrefixDevice is CopyPrefix for caches in GPU memory.
func (c *KVCache) copyPrefixDevice(src *KVCache, n int) error {
	if c.dev == nil || src.dev == nil || c.dev.dev != src.dev.dev {
		return fmt.Errorf("kv cache: copy between a CPU and a GPU cache")
	}
	c.n = 0
	c.Grow(n)
	// Not while another model's pass is recorded into a graph.
	c.dev.dev.LockStep()
	defer c.dev.dev.UnlockStep()
	if err := c.dev.ensure(c.capacity, 0); err != nil {
		return err
	}
	for l := 0; l < c.layers; l++ {
		c.dev.dev.Copy(c.dev.k(l), src.dev.k(l), n*c.kvDim*4)
		c.dev.dev.Copy(c.dev.v(l), src.dev.v(l), n*c.kvDim*4)
	}
	c.n = n
	return nil
}

// gpuQ5_0 turns on the GPU's Q5_0 kernels (see gpuFormat).
var gpuQ5_0 = os.Getenv("IMPETUS_CUDA_Q5_0") == "1"

// gpuFormat maps a matrix to the kernels' format; ok is false for GGUF
// block types without a GPU kernel.
func gpuFormat(m *matrix) (f cuda.Format, ok bool) {
	switch m.kind {
	case wF32:
		return cuda.F32, true
	case wF16:
		return cuda.F16, true
	case wBF16:
		return cuda.BF16, true
	case wMLX:
		return cuda.MLX, true
	case wGGML:
		switch m.ggml {
		case quant.GGMLQ8_0:
			return cuda.Q8_0, true
		case quant.GGMLQ4_0:
			return cuda.Q4_0, true
		case quant.GGMLQ5_0:
			// Its kernels are checked against quant.DequantizeGGML on the
			// CPU only, not yet on a GPU: until then IMPETUS_CUDA_Q5_0=1
			// opts in, and by default the matrix is widened to float32.
			return cuda.Q5_0, gpuQ5_0
		case quant.GGMLQ4_K:
			return cuda.Q4_K, true
		case quant.GGMLQ6_K:
			return cuda.Q6_K, true
		}
	}
	return cuda.F32, false
}

// gpuMatrixBytes is the device memory a matrix takes.
func gpuMatrixBytes(m *matrix) int64 {
	f, ok := gpuFormat(m)
	if !ok {
		return int64(m.rows) * int64(m.cols) * 4
	}
	n := int64(f.Bytes(m.rows, m.cols, m.bits))
	if f == cuda.MLX {
		n += 2 * int64(m.rows) * int64(m.cols/m.group) * 4 // float32 scales and biases
	}
	return n
}

func (m *Model) eachMatrix(fn func(*matrix, []float32)) {
	fn(&m.embed, nil)
	if m.lmHead != &m.embed {
		fn(m.lmHead, nil)
	}
	for i := range m.layers {
		L := &m.layers[i]
		for _, lin := range []*linear{&L.q, &L.k, &L.v, &L.qkv, &L.o, &L.gate, &L.up, &L.gateUp, &L.down} {
			if lin.rows > 0 {
				fn(&lin.matrix, lin.bias)
			}
		}
	}
}

// GPUBytes estimates the device memory of the model's weights on a GPU.
func (m *Model) GPUBytes() int64 {
	var n int64
	m.eachMatrix(func(mx *matrix, bias []float32) { n += gpuMatrixBytes(mx) + int64(len(bias))*4 })
	return n + int64(m.Config.Layers)*int64(6*m.Config.Hidden)*4
}

// UseDevice moves the model's weights to dev; Forward then runs there and
// KV caches made afterwards live in GPU memory. It fails, leaving the model
// on the CPU, when the weights don't fit the free memory with headroom
// (reserve bytes) for the KV cache and activations.
func (m *Model) UseDevice(dev *cuda.Device, reserve int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.layers == nil {
		return fmt.Errorf("model: UseDevice on a closed model")
	}
	if m.gpu != nil {
		return fmt.Errorf("model: already on %s", m.gpu.dev.Info())
	}
	need := m.GPUBytes()
	free, err := dev.FreeMemory()
	if err != nil {
		return err
	}
	if uint64(need+reserve) > free {
		return fmt.Errorf("model needs %.2f GiB of GPU memory for weights plus %.2f GiB reserved, %s has %.2f GiB free",
			float64(need)/(1<<30), float64(reserve)/(1<<30), dev.Info().Name, float64(free)/(1<<30))
	}
	g := &gpuModel{dev: dev, rope: map[*float32]cuda.Ptr{}}
	// The uploads use the default stream, which must stay idle while another
	// model's pass is recorded into a graph.
	dev.LockStep()
	err = g.upload(m)
	dev.UnlockStep()
	if err != nil {
		g.close()
		return err
	}
	m.gpu = g
	// The CPU's repacked copies are not used any more.
	m.eachMatrix(func(mx *matrix, _ []float32) { mx.packed = nil })
	m.packed = 0
	return nil
}

// Device describes where Forward runs: "cpu" or the GPU.
func (m *Model) Device() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gpu == nil {
		return "cpu"
	}
	return m.gpu.dev.Info().String()
}

// GPUDevice is the GPU the model runs on, nil on the CPU.
func (m *Model) GPUDevice() *cuda.Device {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gpu == nil {
		return nil
	}
	return m.gpu.dev
}

// GPUMemory is the device memory the model holds: weights, KV caches
// (every live cache, finished sequences' prefix cache included) and the
// forward pass's activations; all 0 on the CPU.
func (m *Model) GPUMemory() (weights, kv, activations int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gpu == nil {
		return 0, 0, 0
	}
	return m.gpu.weightBytes, m.gpu.kvBytes.Load(), m.gpu.scratchSize.Load()
}

// ExpandedOnGPU lists the matrices whose format has no GPU kernel and were
// widened to float32 at upload.
func (m *Model) ExpandedOnGPU() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gpu == nil {
		return nil
	}
	return append([]string(nil), m.gpu.expanded...)
}

func (g *gpuModel) put(err *error, s any) cuda.Ptr {
	if *err != nil {
		return 0
	}
	var p cuda.Ptr
	switch v := s.(type) {
	case []float32:
		if v == nil {
			return 0
		}
		p, *err = cuda.AllocCopy(g.dev, v)
		g.weightBytes += int64(len(v)) * 4
	case []uint16:
		p, *err = cuda.AllocCopy(g.dev, v)
		g.weightBytes += int64(len(v)) * 2
	case []uint32:
		p, *err = cuda.AllocCopy(g.dev, v)
		g.weightBytes += int64(len(v)) * 4
	case []byte:
		p, *err = cuda.AllocCopy(g.dev, v)
		g.weightBytes += int64(len(v))
	case []int32:
		p, *err = cuda.AllocCopy(g.dev, v)
	default:
		*err = fmt.Errorf("model: cannot upload %T", s)
	}
	if *err == nil {
		g.allocs = append(g.allocs, p)
	}
	return p
}

func (g *gpuModel) matrix(err *error, m *matrix, bias []float32) gpuMatrix {
	if m.rows == 0 {
		return gpuMatrix{}
	}
	f, ok := gpuFormat(m)
	gm := gpuMatrix{w: cuda.Weight{Format: f, Rows: m.rows, Cols: m.cols, Bits: m.bits, Group: m.group}}
	switch {
	case !ok:
		full := make([]float32, m.rows*m.cols)
		m.ggmlRows(full, 0, m.rows)
		gm.w.Data = g.put(err, full)
		g.expanded = append(g.expanded, fmt.Sprintf("%s (%s)", m.name, m.ggml))
	case f == cuda.F32:
		gm.w.Data = g.put(err, m.f32)
	case f == cuda.F16 || f == cuda.BF16:
		gm.w.Data = g.put(err, m.half)
	case f == cuda.MLX:
		m.mlxFloats()
		gm.w.Data, gm.w.Scales, gm.w.Biases = g.put(err, m.q), g.put(err, m.scales), g.put(err, m.biases)
	default:
		gm.w.Data = g.put(err, m.blocks)
	}
	gm.bias = g.put(err, bias)
	if *err != nil {
		*err = fmt.Errorf("uploading %s: %w", m.name, *err)
	}
	return gm
}

func (g *gpuModel) upload(m *Model) error {
	var err error
	g.embed = g.matrix(&err, &m.embed, nil)
	g.lmHead = &g.embed
	if m.lmHead != &m.embed {
		h := g.matrix(&err, m.lmHead, nil)
		g.lmHead = &h
	}
	g.norm = g.put(&err, m.norm)
	g.layers = make([]gpuLayer, len(m.layers))
	for i := range m.layers {
		L, G := &m.layers[i], &g.layers[i]
		G.attnNorm, G.ffnNorm = g.put(&err, L.attnNorm), g.put(&err, L.ffnNorm)
		G.postAttn, G.postFFN = g.put(&err, L.postAttn), g.put(&err, L.postFFN)
		G.qNorm, G.kNorm = g.put(&err, L.qNorm), g.put(&err, L.kNorm)
		for _, p := range []struct {
			dst *gpuMatrix
			src *linear
		}{{&G.q, &L.q}, {&G.k, &L.k}, {&G.v, &L.v}, {&G.qkv, &L.qkv}, {&G.o, &L.o}, {&G.gate, &L.gate}, {&G.up, &L.up}, {&G.gateUp, &L.gateUp}, {&G.down, &L.down}} {
			*p.dst = g.matrix(&err, &p.src.matrix, p.src.bias)
		}
		// Fused matrices are used through row slices, so the forward pass
		// needs no column copies.
		if G.qkv.w.Rows > 0 {
			qDim, kvDim := m.Config.Heads*m.Config.HeadDim, m.Config.KVHeads*m.Config.HeadDim
			G.q, G.k, G.v = G.qkv.slice(0, qDim), G.qkv.slice(qDim, kvDim), G.qkv.slice(qDim+kvDim, kvDim)
		}
		if G.gateUp.w.Rows > 0 {
			I := m.Config.Intermediate
			G.gate, G.up = G.gateUp.slice(0, I), G.gateUp.slice(I, I)
		}
		if r := L.spec.RoPE; r != nil {
			for _, t := range [][]float32{r.InvFreq, r.LongInvFreq} {
				if len(t) > 0 && g.rope[&t[0]] == 0 {
					g.rope[&t[0]] = g.put(&err, t)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	if err == nil && m.Config.HeadDim > cuda.MaxHeadDim {
		err = fmt.Errorf("head dim %d is above the GPU attention kernel's %d", m.Config.HeadDim, cuda.MaxHeadDim)
	}
	return err
}

func (g *gpuModel) close() {
	for _, p := range g.allocs {
		g.dev.Free(p)
	}
	g.dev.Free(g.scratch)
	g.allocs, g.scratch = nil, 0
}

// reserveScratch sizes the forward buffers for N tokens and nOut logits rows.
func (g *gpuModel) reserveScratch(cfg *Config, N, nOut int) error {
	if N <= g.capN && nOut <= g.capOut {
		return nil
	}
	capN, capOut := max(N, g.capN), max(nOut, g.capOut, 1)
	H, I, qDim, kvDim := cfg.Hidden, cfg.Intermediate, cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	sizes := []int{capN * H, capN * H, capN * H, capN * H, capN * qDim, capN * qDim, capN * kvDim, capN * kvDim,
		capN * I, capN * I, 2 * capN, 0, capOut * H, capOut * cfg.Vocab}
	total := 0
	for _, s := range sizes {
		total += (s*4 + 255) &^ 255
	}
	p, err := g.dev.Alloc(total)
	if err != nil {
		return fmt.Errorf("activations for %d tokens: %w", capN, err)
	}
	g.dev.Free(g.scratch)
	g.scratch, g.capN, g.capOut = p, capN, capOut
	g.scratchSize.Store(int64(total))
	dst := []*cuda.Ptr{&g.b.x, &g.b.h, &g.b.o, &g.b.down, &g.b.q, &g.b.attn, &g.b.k, &g.b.v, &g.b.gate,
		&g.b.up, &g.b.tok, &g.b.pos, &g.b.last, &g.b.logits}
	off := 0
	for i, s := range sizes {
		*dst[i] = p.Add(off)
		off += (s*4 + 255) &^ 255
	}
	return nil
}

func (g *gpuModel) linear(out, x cuda.Ptr, n int, l *gpuMatrix) {
	g.dev.MatMul(out, x, n, &l.w, l.bias)
}

// forwardGPU is Forward's body on the GPU; Forward has checked the batch.
func (m *Model) forwardGPU(batch []SeqBatch, logits [][]float32, N, nOut int) error {
	g, cfg := m.gpu, &m.Config
	d, b := g.dev, &g.b
	if err := g.reserveScratch(cfg, N, nOut); err != nil {
		return err
	}
	if cap(g.hostTP) < 2*N {
		g.hostTP = make([]int32, 2*g.capN)
	}
	// The pass's kernels share the device's scratch with other models', and
	// a recorded graph must hold this pass's work alone.
	d.LockStep()
	defer d.UnlockStep()
	tp := g.hostTP[:2*N]
	row := 0
	for i, sb := range batch {
		c := sb.Cache
		if c.dev == nil {
			if c.n > 0 {
				return fmt.Errorf("%w: sequence %d: a cache filled on the CPU", ErrBatch, i)
			}
			c.dropHost()
			c.dev = g.newKV(c)
		}
		c.reserve(c.n + len(sb.Tokens))
		if err := c.dev.ensure(c.capacity, c.n); err != nil {
			return err
		}
		for j, t := range sb.Tokens {
			tp[row], tp[N+row] = t, int32(c.n+j)
			row++
		}
	}
	// Tokens then positions, in one upload.
	b.pos = b.tok.Add(N * 4)
	if err := cuda.UploadTo(d, b.tok, tp); err != nil {
		return err
	}
	// Decode steps are recorded into a CUDA graph and run in one launch
	// (kernels back to back); a recording that fails runs uncaptured.
	if N > gpuGraphMaxTokens || !d.CaptureBegin() {
		m.queueForward(batch, N, nOut)
	} else if !d.CaptureEnd() {
		m.queueForward(batch, N, nOut)
	}
	if nOut == 0 {
		if err := d.Sync(); err != nil {
			return err
		}
		for _, sb := range batch {
			sb.Cache.n += len(sb.Tokens)
		}
		return nil
	}
	V := cfg.Vocab
	j := 0
	for i, sb := range batch {
		if !sb.WantLogits {
			continue
		}
		if len(logits[i]) < V {
			logits[i] = make([]float32, V)
		}
		if err := d.Download(unsafe.Pointer(&logits[i][0]), b.logits.Add(j*V*4), V*4); err != nil {
			return err
		}
		j++
	}
	if err := d.Sync(); err != nil {
		return err
	}
	for _, sb := range batch {
		sb.Cache.n += len(sb.Tokens)
	}
	return nil
}

// gpuGraphMaxTokens is the most tokens a step may have to be recorded into
// a CUDA graph: decode steps, whose many small launches the graph saves.
const gpuGraphMaxTokens = 8

// queueForward queues the forward pass of batch (N tokens, whose ids and
// positions are uploaded) up to the nOut logits rows asked for; it runs no
// host code that waits for the GPU, so it may be recorded into a graph.
func (m *Model) queueForward(batch []SeqBatch, N, nOut int) {
	g, cfg := m.gpu, &m.Config
	d, b := g.dev, &g.b
	H, hd := cfg.Hidden, cfg.HeadDim
	qDim, kvDim := cfg.Heads*hd, cfg.KVHeads*hd
	d.Embed(b.x, b.tok, N, &g.embed.w, cfg.EmbedScale)
	eps, addOne := cfg.RMSNormEps, cfg.NormAddOne
	gelu := cfg.Activation == GELUTanh
	// With one sequence, K and V go straight into its cache.
	direct := len(batch) == 1
	for l := range m.layers {
		L, G := &m.layers[l], &g.layers[l]
		// Each norm (and the attention) quantizes its output in the same
		// launch when the product that reads it is int8 (RMSNormThen).
		d.RMSNormThen(b.h, b.x, G.attnNorm, N, H, eps, addOne, &G.q.w)
		kOut, vOut := b.k, b.v
		if direct {
			c := batch[0].Cache
			kOut, vOut = c.dev.k(l).Add(c.n*kvDim*4), c.dev.v(l).Add(c.n*kvDim*4)
		}
		d.MatMulSegs(b.h, N, G.q.seg(b.q), G.k.seg(kOut), G.v.seg(vOut))
		if cfg.QKNorm {
			d.RMSNorm(b.q, b.q, G.qNorm, N*cfg.Heads, hd, eps, addOne)
			d.RMSNorm(kOut, kOut, G.kNorm, N*cfg.KVHeads, hd, eps, addOne)
		}
		off := 0
		for _, sb := range batch {
			n, c := len(sb.Tokens), sb.Cache
			if n == 0 {
				continue
			}
			q, k, v := b.q.Add(off*qDim*4), b.k.Add(off*kvDim*4), b.v.Add(off*kvDim*4)
			if direct {
				k = kOut
			}
			if r := L.spec.RoPE; r != nil {
				inv := r.invFreqFor(c.n + n - 1)
				dinv := g.rope[&inv[0]]
				d.RoPEQK(q, k, n, cfg.Heads, cfg.KVHeads, hd, cfg.RotaryDim, b.pos.Add(off*4), dinv, !cfg.RoPEAdjacentPairs, r.Mscale)
			}
			if !direct {
				d.Copy(c.dev.k(l).Add(c.n*kvDim*4), k, n*kvDim*4)
				d.Copy(c.dev.v(l).Add(c.n*kvDim*4), v, n*kvDim*4)
			}
			var next *cuda.Weight
			if direct {
				next = &G.o.w // one sequence: this launch makes all of b.attn
			}
			d.AttentionThen(b.attn.Add(off*qDim*4), q, n, c.n, c.dev.k(l), c.dev.v(l), c.n+n,
				cfg.Heads, cfg.KVHeads, hd, cfg.AttnScale, cfg.AttnSoftcap, L.spec.Window, next)
			off += n
		}
		if cfg.SandwichNorms {
			g.linear(b.o, b.attn, N, &G.o)
			d.RMSNorm(b.o, b.o, G.postAttn, N, H, eps, addOne)
			d.Add(b.x, b.o, N*H)
		} else {
			d.MatMulAdd(b.x, b.attn, N, &G.o.w, G.o.bias, b.o)
		}

		d.RMSNormThen(b.h, b.x, G.ffnNorm, N, H, eps, addOne, &G.gate.w)
		d.MatMulGLU(b.h, N, G.gate.seg(b.gate), G.up.seg(b.up), gelu)
		if cfg.SandwichNorms {
			g.linear(b.down, b.gate, N, &G.down)
			d.RMSNorm(b.down, b.down, G.postFFN, N, H, eps, addOne)
			d.Add(b.x, b.down, N*H)
		} else {
			d.MatMulAdd(b.x, b.gate, N, &G.down.w, G.down.bias, b.down)
		}
	}
	if nOut == 0 {
		return
	}
	V := cfg.Vocab
	row, j := 0, 0
	for _, sb := range batch {
		row += len(sb.Tokens)
		if sb.WantLogits {
			d.Copy(b.last.Add(j*H*4), b.x.Add((row-1)*H*4), H*4)
			j++
		}
	}
	d.RMSNormThen(b.last, b.last, g.norm, nOut, H, eps, addOne, &g.lmHead.w)
	g.linear(b.logits, b.last, nOut, g.lmHead)
	if c := cfg.FinalSoftcap; c > 0 {
		d.Softcap(b.logits, nOut*V, c)
	}
}
