package model

import (
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/impetusllm/impetus/inference/kernels"
)

// KVCache holds one sequence's keys and values, contiguous per layer. Its
// owner sizes it with Grow; otherwise Forward grows it by doubling, up to the
// maximum length given to NewKVCache.
type KVCache struct {
	layers, kvDim int
	n, maxLen     int
	capacity      int
	kind          KVStorage   // which of the slices below hold the keys and values
	k, v          [][]float32 // per layer, for KVF32
	kh, vh        [][]uint16  // per layer, for KVF16 (IEEE half)
	kq, vq        [][]byte    // per layer, for KVQ8 (q8_0 blocks, kernels.QuantizeQ8KV)
	batchMark     uint64      // the Forward call that last saw this cache, to catch duplicates
	dev           *gpuKV      // the keys and values in GPU memory, for a model on a GPU (gpu.go)
}

// KVStorage is how a KV cache stores keys and values.
type KVStorage uint32

const (
	// KVF32 keeps float32: exact, 4 bytes a value.
	KVF32 KVStorage = iota
	// KVF16 rounds to IEEE half: 2 bytes a value, about 5e-4 relative error.
	KVF16
	// KVQ8 stores q8_0 blocks (32 int8 codes and a half scale, 34 bytes per
	// 32 values): about half of KVF16's bytes for attention to read at long
	// context, with an error of up to half a step of amax/127 per block. It
	// needs a head size that is a multiple of 32.
	KVQ8
)

// String is the storage's name as IMPETUS_KV and the kv_cache option spell it.
func (s KVStorage) String() string {
	switch s {
	case KVF32:
		return "f32"
	case KVF16:
		return "f16"
	case KVQ8:
		return "q8_0"
	}
	return fmt.Sprintf("KVStorage(%d)", uint32(s))
}

// ParseKVStorage reads "f32", "f16" or "q8_0".
func ParseKVStorage(s string) (KVStorage, error) {
	switch s {
	case "f32":
		return KVF32, nil
	case "f16":
		return KVF16, nil
	case "q8_0":
		return KVQ8, nil
	}
	return 0, fmt.Errorf("kv cache storage must be f16, f32 or q8_0, got %q", s)
}

// tokenBytes is the memory one token's keys or values of kvDim values take
// in one layer.
func (s KVStorage) tokenBytes(kvDim int) int {
	switch s {
	case KVF16:
		return 2 * kvDim
	case KVQ8:
		return kernels.Q8KVRowBytes(kvDim)
	}
	return 4 * kvDim
}

// NewKVCache returns an empty cache for up to maxLen tokens, stored as the
// model's KVStorage says.
func (m *Model) NewKVCache(maxLen int) *KVCache {
	c := &KVCache{layers: m.Config.Layers, kvDim: m.Config.KVHeads * m.Config.HeadDim, maxLen: maxLen, kind: m.KVStorage()}
	switch c.kind {
	case KVF16:
		c.kh, c.vh = make([][]uint16, c.layers), make([][]uint16, c.layers)
	case KVQ8:
		c.kq, c.vq = make([][]byte, c.layers), make([][]byte, c.layers)
	default:
		c.k, c.v = make([][]float32, c.layers), make([][]float32, c.layers)
	}
	if m.gpu != nil {
		// Kept in GPU memory instead (gpu.go).
		c.dropHost()
		c.dev = m.gpu.newKV(c)
	}
	return c
}

// dropHost forgets the host storage of a cache that moves to the GPU.
func (c *KVCache) dropHost() {
	c.kind, c.k, c.v, c.kh, c.vh, c.kq, c.vq = KVF32, nil, nil, nil, nil, nil, nil
}

// ErrKVQ8HeadDim is returned by SetKVStorage for q8_0 on a model whose
// head size is not a multiple of 32 (the q8_0 block).
var ErrKVQ8HeadDim = errors.New("q8_0 KV cache needs a head size that is a multiple of 32")

// SetKVStorage chooses the storage of caches made from now on. For q8_0 on
// a model whose head size is not a multiple of 32 it chooses f16 instead
// and says so with an error wrapping ErrKVQ8HeadDim. See kvStorageFor for
// the default.
func (m *Model) SetKVStorage(s KVStorage) error {
	if s == KVQ8 && m.Config.HeadDim%kernels.Q8KVBlock != 0 {
		m.kvKind.Store(uint32(KVF16))
		return fmt.Errorf("%w: head size %d, keys and values stay f16", ErrKVQ8HeadDim, m.Config.HeadDim)
	}
	m.kvKind.Store(uint32(s))
	return nil
}

// KVStorage is the storage of caches made now.
func (m *Model) KVStorage() KVStorage { return KVStorage(m.kvKind.Load()) }

// kvStorageFor is the default cache storage of a model whose matmuls do
// (int8) or do not run with int8 activations at load. Half where they do:
// its rounding (about 5e-4 relative) is far below theirs. Float32 where
// every matmul is in float, which stays transformers-exact: half keys and
// values move float models' log-probabilities by up to 0.01, twice the
// tolerance of their reference tests. IMPETUS_KV=f16, f32 or q8_0 in the
// environment overrides both; q8_0 falls back to f16 where the head size
// is not a multiple of 32 (the engine logs it).
func kvStorageFor(int8 bool, headDim int) KVStorage {
	if s, err := ParseKVStorage(os.Getenv("IMPETUS_KV")); err == nil {
		if s == KVQ8 && headDim%kernels.Q8KVBlock != 0 {
			return KVF16
		}
		return s
	}
	if int8 {
		return KVF16
	}
	return KVF32
}

// Len is the number of tokens whose keys and values are stored.
func (c *KVCache) Len() int { return c.n }

// MaxLen is the most tokens the cache may hold.
func (c *KVCache) MaxLen() int { return c.maxLen }

// Reset empties the cache, keeping its memory.
func (c *KVCache) Reset() { c.n = 0 }

// Truncate keeps the first n tokens, so a shared prompt prefix can be reused.
func (c *KVCache) Truncate(n int) error {
	if n < 0 || n > c.n {
		return fmt.Errorf("kv cache: truncate to %d of %d tokens", n, c.n)
	}
	c.n = n
	return nil
}

// Capacity is the number of tokens the cache's memory holds now; it is what
// the scheduler accounts against its memory budget.
func (c *KVCache) Capacity() int { return c.capacity }

// SetMaxLen changes the most tokens the cache may hold, for a cache handed
// from one sequence to another. It never shrinks below what is stored.
func (c *KVCache) SetMaxLen(n int) { c.maxLen = max(n, c.n, c.capacity) }

// Grow makes the cache's memory hold capacity tokens (at most MaxLen), so the
// scheduler, not Forward's doubling, decides how much memory a sequence takes.
// Storage stays one contiguous slice per layer (the attention kernel reads it
// so): growing copies what is stored.
func (c *KVCache) Grow(capacity int) {
	if capacity <= c.capacity {
		return
	}
	c.resize(min(capacity, c.maxLen))
}

// CopyPrefix replaces the cache's contents with the first n tokens of src, a
// cache of the same model, so a sequence can start from a cached prefix. Only
// the shape is checked: the caller keeps caches of different models apart.
func (c *KVCache) CopyPrefix(src *KVCache, n int) error {
	if src.layers != c.layers || src.kvDim != c.kvDim || src.kind != c.kind {
		return fmt.Errorf("kv cache: copy from a cache of another model")
	}
	if c.dev != nil || src.dev != nil {
		if n < 0 || n > src.n || n > c.maxLen {
			return fmt.Errorf("kv cache: copy %d tokens from a cache of %d into one of at most %d", n, src.n, c.maxLen)
		}
		return c.copyPrefixDevice(src, n)
	}
	if n < 0 || n > src.n || n > c.maxLen {
		return fmt.Errorf("kv cache: copy %d tokens from a cache of %d into one of at most %d", n, src.n, c.maxLen)
	}
	c.n = 0
	c.Grow(n)
	for l := 0; l < c.layers; l++ {
		switch c.kind {
		case KVF16:
			copy(c.kh[l], src.kh[l][:n*c.kvDim])
			copy(c.vh[l], src.vh[l][:n*c.kvDim])
		case KVQ8:
			rb := kernels.Q8KVRowBytes(c.kvDim)
			copy(c.kq[l], src.kq[l][:n*rb])
			copy(c.vq[l], src.vq[l][:n*rb])
		default:
			copy(c.k[l], src.k[l][:n*c.kvDim])
			copy(c.v[l], src.v[l][:n*c.kvDim])
		}
	}
	c.n = n
	return nil
}

// KVTokenBytes is the memory one token takes in a cache of this model made
// now (see SetKVStorage): keys and values of every layer, at the storage's
// real size (34 bytes per 32 values for q8_0). On a GPU the caches store
// float32 whatever the storage says, so the KV budget counts them at full
// size there.
func (m *Model) KVTokenBytes() int64 {
	kv := m.Config.KVHeads * m.Config.HeadDim
	if m.GPUDevice() != nil {
		return int64(m.Config.Layers) * 2 * int64(KVF32.tokenBytes(kv))
	}
	return int64(m.Config.Layers) * 2 * int64(m.KVStorage().tokenBytes(kv))
}

// reserve makes room for need tokens in total.
func (c *KVCache) reserve(need int) {
	if need <= c.capacity {
		return
	}
	capacity := max(need, 2*c.capacity, 16)
	c.resize(min(capacity, c.maxLen))
}

func (c *KVCache) resize(capacity int) {
	if c.dev != nil {
		// GPU memory grows in Forward (gpuKV.ensure), copying what is stored.
		c.capacity = capacity
		return
	}
	for l := 0; l < c.layers; l++ {
		switch c.kind {
		case KVF16:
			c.kh[l], c.vh[l] = regrow(c.kh[l], capacity*c.kvDim, c.n*c.kvDim), regrow(c.vh[l], capacity*c.kvDim, c.n*c.kvDim)
		case KVQ8:
			rb := kernels.Q8KVRowBytes(c.kvDim)
			c.kq[l], c.vq[l] = regrow(c.kq[l], capacity*rb, c.n*rb), regrow(c.vq[l], capacity*rb, c.n*rb)
		default:
			c.k[l], c.v[l] = regrow(c.k[l], capacity*c.kvDim, c.n*c.kvDim), regrow(c.v[l], capacity*c.kvDim, c.n*c.kvDim)
		}
	}
	c.capacity = capacity
}

// regrow returns a slice of n elements holding the first keep of s.
func regrow[T float32 | uint16 | byte](s []T, n, keep int) []T {
	out := make([]T, n)
	copy(out, s[:keep])
	return out
}

// store writes n tokens' keys and values (float32 rows of kvDim) at the
// cache's end in layer l, rounded to half or quantized to q8_0 blocks as
// the cache's storage says.
func (c *KVCache) store(l int, k, v []float32) {
	switch c.kind {
	case KVF16:
		at := c.n * c.kvDim
		kernels.ToF16(c.kh[l][at:at+len(k)], k)
		kernels.ToF16(c.vh[l][at:at+len(v)], v)
	case KVQ8:
		at := c.n * kernels.Q8KVRowBytes(c.kvDim)
		kernels.QuantizeQ8KV(c.kq[l][at:at+kernels.Q8KVRowBytes(len(k))], k)
		kernels.QuantizeQ8KV(c.vq[l][at:at+kernels.Q8KVRowBytes(len(v))], v)
	default:
		at := c.n * c.kvDim
		copy(c.k[l][at:], k)
		copy(c.v[l][at:], v)
	}
}

// attention runs the attention kernel for n query rows against layer l.
func (c *KVCache) attention(out, q []float32, n, l int, cfg *Config, window int) {
	switch c.kind {
	case KVF16:
		kernels.AttentionF16(out, q, n, c.n, c.kh[l], c.vh[l], c.n+n,
			cfg.Heads, cfg.KVHeads, cfg.HeadDim, cfg.AttnScale, cfg.AttnSoftcap, window)
		return
	case KVQ8:
		kernels.AttentionQ8(out, q, n, c.n, c.kq[l], c.vq[l], c.n+n,
			cfg.Heads, cfg.KVHeads, cfg.HeadDim, cfg.AttnScale, cfg.AttnSoftcap, window)
		return
	}
	kernels.Attention(out, q, n, c.n, c.k[l], c.v[l], c.n+n,
		cfg.Heads, cfg.KVHeads, cfg.HeadDim, cfg.AttnScale, cfg.AttnSoftcap, window)
}

// SeqBatch is one sequence's share of a forward pass: Tokens are appended at
// the cache's current length.
type SeqBatch struct {
	Tokens     []int32
	Cache      *KVCache
	WantLogits bool // return the logits of the last token
	// WantHidden returns, in place of logits, the last token's hidden state
	// after the final norm (Config.Hidden values): what last-token pooling
	// of a decoder embedding model takes.
	WantHidden bool
}

// scratch holds the activations of one forward pass, reused across calls.
type scratch struct {
	x, h, q, k, v, attn, o []float32
	qkv, gate, up, gateUp  []float32
	down                   []float32
	pos                    []int32
	last, logits           []float32
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// ErrBatch is wrapped by Forward's errors about its arguments.
var ErrBatch = errors.New("bad forward batch")

// Forward appends each sequence's tokens to its cache and, for sequences with
// WantLogits, writes the logits of their last token into logits[i] (allocated
// when shorter than the vocabulary), or with WantHidden its final hidden
// state. All tokens of the batch go through each
// weight as one matrix multiplication; attention runs per sequence.
func (m *Model) Forward(batch []SeqBatch, logits [][]float32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.layers == nil {
		return errors.New("model: forward on a closed model")
	}
	cfg := &m.Config
	if len(logits) != len(batch) {
		return fmt.Errorf("%w: %d logits slots for %d sequences", ErrBatch, len(logits), len(batch))
	}
	N, nOut := 0, 0
	m.calls++
	defer func() {
		// A failed validation may have marked some caches; a new mark next
		// call makes that harmless.
		m.calls++
	}()
	for i, sb := range batch {
		c := sb.Cache
		if c == nil || c.layers != cfg.Layers || c.kvDim != cfg.KVHeads*cfg.HeadDim {
			return fmt.Errorf("%w: sequence %d: missing cache or a cache of another model", ErrBatch, i)
		}
		if c.batchMark == m.calls {
			return fmt.Errorf("%w: sequence %d: cache used twice in one batch", ErrBatch, i)
		}
		c.batchMark = m.calls
		if c.n+len(sb.Tokens) > c.maxLen {
			return fmt.Errorf("%w: sequence %d: %d cached + %d new tokens exceed the cache's %d", ErrBatch, i, c.n, len(sb.Tokens), c.maxLen)
		}
		if sb.WantLogits || sb.WantHidden {
			if len(sb.Tokens) == 0 {
				return fmt.Errorf("%w: sequence %d: logits wanted but no tokens given", ErrBatch, i)
			}
			if sb.WantHidden && m.gpu != nil {
				return fmt.Errorf("%w: sequence %d: hidden states are computed on the CPU only", ErrBatch, i)
			}
			nOut++
		}
		for _, t := range sb.Tokens {
			if t < 0 || int(t) >= cfg.Vocab {
				return fmt.Errorf("%w: sequence %d: token %d outside the vocabulary of %d", ErrBatch, i, t, cfg.Vocab)
			}
		}
		N += len(sb.Tokens)
	}
	if N == 0 {
		return nil
	}
	if m.gpu != nil {
		return m.forwardGPU(batch, logits, N, nOut)
	}

	H, I, hd := cfg.Hidden, cfg.Intermediate, cfg.HeadDim
	qDim, kvDim := cfg.Heads*hd, cfg.KVHeads*hd
	s := &m.s
	s.x, s.h, s.o, s.down = grow(s.x, N*H), grow(s.h, N*H), grow(s.o, N*H), grow(s.down, N*H)
	s.q, s.attn = grow(s.q, N*qDim), grow(s.attn, N*qDim)
	s.k, s.v = grow(s.k, N*kvDim), grow(s.v, N*kvDim)
	if cfg.FusedQKV {
		s.qkv = grow(s.qkv, N*(qDim+2*kvDim))
	}
	s.gate, s.up = grow(s.gate, N*I), grow(s.up, N*I)
	if cfg.FusedGateUp {
		s.gateUp = grow(s.gateUp, N*2*I)
	}
	if cap(s.pos) < N {
		s.pos = make([]int32, N)
	}
	s.pos = s.pos[:N]

	// Embeddings and positions.
	row := 0
	for _, sb := range batch {
		sb.Cache.reserve(sb.Cache.n + len(sb.Tokens))
		for j, t := range sb.Tokens {
			x := s.x[row*H : (row+1)*H]
			m.embed.row(x, int(t))
			if cfg.EmbedScale != 0 {
				for i := range x {
					x[i] *= cfg.EmbedScale
				}
			}
			s.pos[row] = int32(sb.Cache.n + j)
			row++
		}
	}

	for l := range m.layers {
		L := &m.layers[l]
		// Attention.
		kernels.RMSNorm(s.h, s.x, L.attnNorm, N, H, cfg.RMSNormEps, cfg.NormAddOne)
		if cfg.FusedQKV {
			L.qkv.forward(s.qkv, s.h, N)
			w := qDim + 2*kvDim
			for r := 0; r < N; r++ {
				src := s.qkv[r*w : (r+1)*w]
				copy(s.q[r*qDim:(r+1)*qDim], src[:qDim])
				copy(s.k[r*kvDim:(r+1)*kvDim], src[qDim:qDim+kvDim])
				copy(s.v[r*kvDim:(r+1)*kvDim], src[qDim+kvDim:])
			}
		} else {
			L.q.forward(s.q, s.h, N)
			L.k.forward(s.k, s.h, N)
			L.v.forward(s.v, s.h, N)
		}
		if cfg.QKNorm {
			kernels.RMSNorm(s.q, s.q, L.qNorm, N*cfg.Heads, hd, cfg.RMSNormEps, cfg.NormAddOne)
			kernels.RMSNorm(s.k, s.k, L.kNorm, N*cfg.KVHeads, hd, cfg.RMSNormEps, cfg.NormAddOne)
		}
		off := 0
		for _, sb := range batch {
			n, c := len(sb.Tokens), sb.Cache
			if n == 0 {
				continue
			}
			q, k, v := s.q[off*qDim:(off+n)*qDim], s.k[off*kvDim:(off+n)*kvDim], s.v[off*kvDim:(off+n)*kvDim]
			if r := L.spec.RoPE; r != nil {
				inv := r.invFreqFor(c.n + n - 1)
				neox := !cfg.RoPEAdjacentPairs
				kernels.RoPE(q, n, cfg.Heads, hd, cfg.RotaryDim, s.pos[off:off+n], inv, neox, r.Mscale)
				kernels.RoPE(k, n, cfg.KVHeads, hd, cfg.RotaryDim, s.pos[off:off+n], inv, neox, r.Mscale)
			}
			c.store(l, k, v)
			c.attention(s.attn[off*qDim:(off+n)*qDim], q, n, l, cfg, L.spec.Window)
			off += n
		}
		L.o.forward(s.o, s.attn, N)
		if cfg.SandwichNorms {
			kernels.RMSNorm(s.o, s.o, L.postAttn, N, H, cfg.RMSNormEps, cfg.NormAddOne)
		}
		kernels.Add(s.x, s.o)

		// MLP.
		kernels.RMSNorm(s.h, s.x, L.ffnNorm, N, H, cfg.RMSNormEps, cfg.NormAddOne)
		if cfg.FusedGateUp {
			L.gateUp.forward(s.gateUp, s.h, N)
			for r := 0; r < N; r++ {
				src := s.gateUp[r*2*I : (r+1)*2*I]
				copy(s.gate[r*I:(r+1)*I], src[:I])
				copy(s.up[r*I:(r+1)*I], src[I:])
			}
		} else {
			L.gate.forward(s.gate, s.h, N)
			L.up.forward(s.up, s.h, N)
		}
		if cfg.Activation == GELUTanh {
			kernels.GELUTanhMul(s.gate, s.up)
		} else {
			kernels.SiLUMul(s.gate, s.up)
		}
		L.down.forward(s.down, s.gate, N)
		if cfg.SandwichNorms {
			kernels.RMSNorm(s.down, s.down, L.postFFN, N, H, cfg.RMSNormEps, cfg.NormAddOne)
		}
		kernels.Add(s.x, s.down)
	}
	for _, sb := range batch {
		sb.Cache.n += len(sb.Tokens)
	}
	if nOut == 0 {
		return nil
	}

	// Final norm, then the logits or hidden state of the last token of each
	// sequence that wants them.
	V := cfg.Vocab
	s.last = grow(s.last, nOut*H)
	row, j := 0, 0
	wantLogits := false
	for _, sb := range batch {
		row += len(sb.Tokens)
		if sb.WantLogits || sb.WantHidden {
			copy(s.last[j*H:(j+1)*H], s.x[(row-1)*H:row*H])
			j++
		}
		wantLogits = wantLogits || sb.WantLogits && !sb.WantHidden
	}
	kernels.RMSNorm(s.last, s.last, m.norm, nOut, H, cfg.RMSNormEps, cfg.NormAddOne)
	if wantLogits {
		s.logits = grow(s.logits, nOut*V)
		m.lmHead.mul(s.logits, s.last, nOut)
		if c := cfg.FinalSoftcap; c > 0 {
			for i, v := range s.logits {
				s.logits[i] = float32(math.Tanh(float64(v/c))) * c
			}
		}
	}
	j = 0
	for i, sb := range batch {
		switch {
		case sb.WantHidden:
			logits[i] = append(logits[i][:0], s.last[j*H:(j+1)*H]...)
		case sb.WantLogits:
			if len(logits[i]) < V {
				logits[i] = make([]float32, V)
			}
			copy(logits[i], s.logits[j*V:(j+1)*V])
		default:
			continue
		}
		j++
	}
	return nil
}
