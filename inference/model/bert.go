package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// EncoderConfig is the part of a BERT config.json the encoder needs.
type EncoderConfig struct {
	Architecture string // model_type: "bert"
	Vocab        int
	Hidden       int
	Layers       int
	Heads        int
	Intermediate int
	MaxPositions int
	PosOffset    int // where position rows start (RoBERTa: padding_idx+1); MaxPositions counts those after
	TypeVocab    int
	LayerNormEps float32

	// RotaryDim, when positive, is how many dimensions of each head rotary
	// position embeddings turn (base RopeBase, rotate-half pairing); the
	// model then has no position table (nomic_bert).
	RotaryDim int
	RopeBase  float64
	// GatedMLP is a SwiGLU MLP, down(up(x)·silu(gate(x))), in place of
	// BERT's GELU one.
	GatedMLP bool
	// QKVBias and MLPBias say whether those projections carry biases
	// (BERT's always do; nomic_bert's config may turn them off).
	QKVBias, MLPBias bool
	// Quantization is the MLX "quantization" block of an MLX-quantized
	// folder (as mlx-embeddings writes them), or nil: the loader then
	// reads each module quantized or float by the decoder's rule.
	Quantization *QuantConfig
}

type rawEncoderConfig struct {
	ModelType    string   `json:"model_type"`
	Vocab        int      `json:"vocab_size"`
	Hidden       int      `json:"hidden_size"`
	Layers       int      `json:"num_hidden_layers"`
	Heads        int      `json:"num_attention_heads"`
	Intermediate int      `json:"intermediate_size"`
	MaxPositions int      `json:"max_position_embeddings"`
	TypeVocab    *int     `json:"type_vocab_size"`
	LayerNormEps *float64 `json:"layer_norm_eps"`
	HiddenAct    string   `json:"hidden_act"`
	PosEmbedType string   `json:"position_embedding_type"`
	PadTokenID   *int     `json:"pad_token_id"`
	encoderQuantRaw
}

// encoderQuantRaw is the MLX quantization block of an encoder config.json,
// under either of the names mlx writes.
type encoderQuantRaw struct {
	Quant       map[string]json.RawMessage `json:"quantization"`
	QuantConfig map[string]json.RawMessage `json:"quantization_config"`
}

// parse reads the block (nil when the config has none).
func (r encoderQuantRaw) parse(arch string) (*QuantConfig, error) {
	raw := r.Quant
	if raw == nil {
		raw = r.QuantConfig
	}
	if raw == nil {
		return nil, nil
	}
	q, err := parseQuant(raw)
	if err != nil {
		return nil, fmt.Errorf("%s config: quantization: %w", arch, err)
	}
	return q, nil
}

// IsEncoderType reports whether model_type names an encoder this package
// runs (bidirectional, for embeddings) rather than a causal LM.
func IsEncoderType(modelType string) bool {
	return modelType == "bert" || modelType == "nomic_bert" || isRobertaType(modelType)
}

// ParseEncoderConfig reads a BERT-family config.json.
func ParseEncoderConfig(data []byte) (EncoderConfig, error) {
	var r rawEncoderConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return EncoderConfig{}, fmt.Errorf("parse config.json: %w", err)
	}
	if r.ModelType == "nomic_bert" {
		return parseNomicConfig(data)
	}
	if !IsEncoderType(r.ModelType) {
		return EncoderConfig{}, fmt.Errorf("model_type %q is not a supported encoder (bert, nomic_bert)", r.ModelType)
	}
	c := EncoderConfig{Architecture: r.ModelType, Vocab: r.Vocab, Hidden: r.Hidden, Layers: r.Layers, Heads: r.Heads,
		Intermediate: r.Intermediate, MaxPositions: r.MaxPositions, TypeVocab: 2, LayerNormEps: 1e-12,
		QKVBias: true, MLPBias: true}
	if r.TypeVocab != nil {
		c.TypeVocab = *r.TypeVocab
	}
	if r.LayerNormEps != nil {
		c.LayerNormEps = float32(*r.LayerNormEps)
	}
	if isRobertaType(r.ModelType) {
		c.PosOffset = robertaPositionOffset(r.PadTokenID)
		c.MaxPositions -= c.PosOffset
	}
	switch r.HiddenAct {
	case "", "gelu":
	default:
		return c, fmt.Errorf("bert hidden_act %q is not supported (gelu)", r.HiddenAct)
	}
	if r.PosEmbedType != "" && r.PosEmbedType != "absolute" {
		return c, fmt.Errorf("bert position_embedding_type %q is not supported (absolute)", r.PosEmbedType)
	}
	var err error
	if c.Quantization, err = r.parse(r.ModelType); err != nil {
		return c, err
	}
	return c, c.check()
}

// check bounds the sizes of a parsed config.
func (c EncoderConfig) check() error {
	const maxDim = 1 << 16
	for _, v := range []struct {
		name string
		n    int
	}{{"vocab_size", c.Vocab}, {"hidden_size", c.Hidden}, {"num_hidden_layers", c.Layers}, {"num_attention_heads", c.Heads},
		{"intermediate_size", c.Intermediate}, {"max_position_embeddings", c.MaxPositions}, {"type_vocab_size", c.TypeVocab}} {
		if v.n <= 0 || v.n > maxDim*64 {
			return fmt.Errorf("%s config: %s = %d is out of range", c.Architecture, v.name, v.n)
		}
	}
	if c.Hidden%c.Heads != 0 {
		return fmt.Errorf("%s config: hidden_size %d is not a multiple of num_attention_heads %d", c.Architecture, c.Hidden, c.Heads)
	}
	if c.Layers > 256 || c.Hidden > maxDim || c.Intermediate > 4*maxDim || c.MaxPositions > maxDim {
		return fmt.Errorf("%s config: sizes %d layers × %d hidden × %d positions are implausible", c.Architecture, c.Layers, c.Hidden, c.MaxPositions)
	}
	return nil
}

// Encoder is a loaded BERT encoder: token, position and type embeddings
// with LayerNorm, then post-LayerNorm blocks of bidirectional attention and
// a GELU MLP. It keeps no KV cache; each call encodes whole sequences.
// Hidden may be called concurrently (callers are serialised).
type Encoder struct {
	Config EncoderConfig

	closer             func() error // releases the mapped weights
	word, pos, typ     matrix       // pos is empty for rotary models
	invFreq            []float32
	rope               *kernels.RoPETable // rotary angles (ropeTable), under mu
	embNormW, embNormB []float32
	layers             []encLayer
	params             int64
	fileSize           int64
	packed, released   int64  // bytes of packed copies, and of mapped pages given back for them or for panels
	panels             int64  // bytes of float matrices repacked in panels
	quant              string // storage of the matrices, e.g. "MLX 4-bit g64 + F32"
	mu                 sync.Mutex
	scratch            encScratch // guarded by mu
}

type encLayer struct {
	q, k, v, o         linear
	qkv                linear // a fused [3H][H] projection in place of q, k, v when rows > 0
	attnNormW, attnNB  []float32
	up, down           linear
	gate               linear // GatedMLP only
	ffnNormW, ffnNormB []float32
}

// LoadEncoder opens the config.json and safetensors weights of a BERT folder
// (tensors named as transformers' BertModel saves them, with or without a
// "bert." prefix).
func LoadEncoder(dir string) (*Encoder, error) {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	cfg, err := ParseEncoderConfig(data)
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	set, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	build := buildEncoder
	if cfg.Architecture == "nomic_bert" {
		build = buildNomicEncoder
	}
	e, err := build(cfg, set)
	if err != nil {
		set.Close()
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	return e, nil
}

func buildEncoder(cfg EncoderConfig, set *safetensors.Set) (*Encoder, error) {
	e := &Encoder{Config: cfg, closer: set.Close, fileSize: set.Size()}
	ld := &loader{set: set, quant: cfg.Quantization}
	P := ""
	if set.Has("bert.embeddings.word_embeddings.weight") {
		P = "bert."
	} else if set.Has("roberta.embeddings.word_embeddings.weight") {
		P = "roberta."
	}
	H, I := cfg.Hidden, cfg.Intermediate
	var err error
	if e.word, err = ld.table(P+"embeddings.word_embeddings", cfg.Vocab, H); err != nil {
		return nil, err
	}
	if e.pos, err = ld.table(P+"embeddings.position_embeddings", cfg.PosOffset+cfg.MaxPositions, H); err != nil {
		return nil, err
	}
	if cfg.PosOffset > 0 {
		if e.pos, err = e.pos.dropRows(cfg.PosOffset); err != nil {
			return nil, err
		}
	}
	if e.typ, err = ld.table(P+"embeddings.token_type_embeddings", cfg.TypeVocab, H); err != nil {
		return nil, err
	}
	if e.embNormW, e.embNormB, err = ld.layerNorm(P+"embeddings.LayerNorm", H); err != nil {
		return nil, err
	}
	e.layers = make([]encLayer, cfg.Layers)
	for i := range e.layers {
		L := &e.layers[i]
		p := fmt.Sprintf("%sencoder.layer.%d.", P, i)
		for _, w := range []struct {
			dst        *linear
			name       string
			rows, cols int
		}{
			{&L.q, "attention.self.query", H, H}, {&L.k, "attention.self.key", H, H}, {&L.v, "attention.self.value", H, H},
			{&L.o, "attention.output.dense", H, H}, {&L.up, "intermediate.dense", I, H}, {&L.down, "output.dense", H, I},
		} {
			if *w.dst, err = ld.linear(p+w.name, w.rows, w.cols); err != nil {
				return nil, err
			}
		}
		if L.attnNormW, L.attnNB, err = ld.layerNorm(p+"attention.output.LayerNorm", H); err != nil {
			return nil, err
		}
		if L.ffnNormW, L.ffnNormB, err = ld.layerNorm(p+"output.LayerNorm", H); err != nil {
			return nil, err
		}
	}
	e.setStorage(ld)
	return e, nil
}

// panelize repacks the layers' float matrices for the batched products
// (matrix.panelize) and gives their file pages back through release (by
// tensor name): an encoder runs every matrix on many rows at once.
func (e *Encoder) panelize(release func(name string) int64) {
	for i := range e.layers {
		L := &e.layers[i]
		for _, l := range []*linear{&L.q, &L.k, &L.v, &L.qkv, &L.o, &L.up, &L.gate, &L.down} {
			if b := l.panelize(); b > 0 {
				e.panels += b
				e.released += release(l.name)
			}
		}
	}
}

// setStorage records what the loader made of the weights.
// The float matrices then go into panels, the tensors' pages back.
func (e *Encoder) setStorage(ld *loader) {
	e.params, e.packed, e.released = ld.params, ld.packed, ld.released
	e.quant = storageSummary(ld.kinds)
	e.panelize(func(path string) int64 { return ld.set.Release(path + ".weight") })
}

func (ld *loader) layerNorm(path string, n int) (w, b []float32, err error) {
	if w, err = ld.vector(path+".weight", n); err != nil {
		return nil, nil, err
	}
	if b, err = ld.vector(path+".bias", n); err != nil {
		return nil, nil, err
	}
	return w, b, nil
}

// Close releases the mapped weights.
func (e *Encoder) Close() error { return e.closer() }

// Params is the number of weight elements.
func (e *Encoder) Params() int64 { return e.params }

// FileSize is the bytes of the weight files.
func (e *Encoder) FileSize() int64 { return e.fileSize }

// PackedBytes is the memory of the weights repacked at load for the int8
// kernels, PanelBytes that of the float weights repacked in panels;
// ReleasedBytes the mapped pages given back for both.
func (e *Encoder) PackedBytes() int64   { return e.packed }
func (e *Encoder) PanelBytes() int64    { return e.panels }
func (e *Encoder) ReleasedBytes() int64 { return e.released }

// Quantization names the storage of the matrices, the most common first
// ("MLX 4-bit g64 + F32", "GGUF Q8_0 + F32").
func (e *Encoder) Quantization() string { return e.quant }

// ErrSequenceTooLong is returned for a sequence longer than the encoder's
// position table.
var ErrSequenceTooLong = errors.New("sequence longer than the model's maximum")

// Hidden runs the encoder over each sequence (token type 0 throughout) and
// returns its last hidden states, [len(seq)][Hidden] flattened. The
// sequences run as one batch through the linear layers; attention stays
// within each sequence, so no padding is involved and a sequence's result
// does not depend on its batch.
func (e *Encoder) Hidden(seqs [][]int32) ([][]float32, error) {
	cfg := &e.Config
	H := cfg.Hidden
	total := 0
	for i, s := range seqs {
		if len(s) == 0 {
			return nil, fmt.Errorf("sequence %d is empty", i)
		}
		if len(s) > cfg.MaxPositions {
			return nil, fmt.Errorf("sequence %d has %d tokens: %w (%d)", i, len(s), ErrSequenceTooLong, cfg.MaxPositions)
		}
		for _, id := range s {
			if id < 0 || int(id) >= cfg.Vocab {
				return nil, fmt.Errorf("sequence %d: token id %d is outside the vocabulary (%d)", i, id, cfg.Vocab)
			}
		}
		total += len(s)
	}
	e.mu.Lock()
	defer e.mu.Unlock()

	x := make([]float32, total*H)
	tmp := make([]float32, H)
	typ0 := make([]float32, H)
	e.typ.row(typ0, 0)
	var positions []int32
	var rope *kernels.RoPETable
	if cfg.RotaryDim > 0 {
		positions = make([]int32, total)
		longest := 0
		for _, s := range seqs {
			longest = max(longest, len(s))
		}
		rope = e.ropeTable(longest)
	}
	t := 0
	for _, s := range seqs {
		for p, id := range s {
			row := x[t*H : (t+1)*H]
			e.word.row(row, int(id))
			if positions != nil {
				positions[t] = int32(p)
			} else {
				e.pos.row(tmp, p)
				kernels.Add(row, tmp)
			}
			kernels.Add(row, typ0)
			t++
		}
	}
	layerNorm(x, x, nil, e.embNormW, e.embNormB, total, H, cfg.LayerNormEps)

	// The work buffers are kept between calls (x is not: the results are
	// slices of it): a batch of thousands of tokens needs hundreds of MB,
	// which fresh allocations would fault in page by page on every call.
	sc := &e.scratch
	q, k, v := keep(&sc.q, total*H), keep(&sc.k, total*H), keep(&sc.v, total*H)
	att, proj, mid := keep(&sc.att, total*H), keep(&sc.proj, total*H), keep(&sc.mid, total*cfg.Intermediate)
	var gate, qkv []float32
	if e.layers[0].qkv.rows > 0 {
		qkv = keep(&sc.qkv, total*3*H)
	}
	if cfg.GatedMLP {
		gate = keep(&sc.gate, total*cfg.Intermediate)
	}
	scale := float32(1 / math.Sqrt(float64(H/cfg.Heads)))
	for li := range e.layers {
		L := &e.layers[li]
		if L.qkv.rows > 0 {
			L.qkv.forward(qkv, x, total)
			parallelRows(total, func(r0, r1 int) {
				splitRows(q[r0*H:r1*H], k[r0*H:r1*H], v[r0*H:r1*H], qkv[r0*3*H:r1*3*H], r1-r0, H)
			})
		} else {
			L.q.forward(q, x, total)
			L.k.forward(k, x, total)
			L.v.forward(v, x, total)
		}
		if positions != nil {
			d := H / cfg.Heads
			parallelRows(total, func(r0, r1 int) {
				rope.Apply(q[r0*H:r1*H], r1-r0, cfg.Heads, d, positions[r0:r1], true)
				rope.Apply(k[r0*H:r1*H], r1-r0, cfg.Heads, d, positions[r0:r1], true)
			})
		}
		off := 0
		for _, s := range seqs {
			n := len(s)
			kernels.AttentionBidirectional(att[off*H:(off+n)*H], q[off*H:(off+n)*H], k[off*H:(off+n)*H], v[off*H:(off+n)*H],
				n, cfg.Heads, H/cfg.Heads, scale)
			off += n
		}
		L.o.forward(proj, att, total)
		layerNorm(x, proj, x, L.attnNormW, L.attnNB, total, H, cfg.LayerNormEps)
		L.up.forward(mid, x, total)
		if cfg.GatedMLP {
			L.gate.forward(gate, x, total)
			parallelRows(total, func(r0, r1 int) {
				kernels.SiLUMul(gate[r0*cfg.Intermediate:r1*cfg.Intermediate], mid[r0*cfg.Intermediate:r1*cfg.Intermediate])
			})
			mid, gate = gate, mid
		} else {
			parallelRows(total, func(r0, r1 int) { kernels.GELUErf(mid[r0*cfg.Intermediate : r1*cfg.Intermediate]) })
		}
		L.down.forward(proj, mid, total)
		layerNorm(x, proj, x, L.ffnNormW, L.ffnNormB, total, H, cfg.LayerNormEps)
	}
	out := make([][]float32, len(seqs))
	off := 0
	for i, s := range seqs {
		out[i] = x[off*H : (off+len(s))*H : (off+len(s))*H]
		off += len(s)
	}
	return out, nil
}

// encScratch holds Hidden's work buffers between calls (guarded by mu).
type encScratch struct{ q, k, v, att, proj, mid, gate, qkv []float32 }

// keep grows the kept buffer *buf to n elements and returns it.
func keep(buf *[]float32, n int) []float32 {
	*buf = grow(*buf, n)
	return *buf
}

// splitRows copies each row of a fused [n][3H] projection into q, k and v.
func splitRows(q, k, v, qkv []float32, n, H int) {
	for t := 0; t < n; t++ {
		row := qkv[t*3*H : (t+1)*3*H]
		copy(q[t*H:(t+1)*H], row[:H])
		copy(k[t*H:(t+1)*H], row[H:2*H])
		copy(v[t*H:(t+1)*H], row[2*H:])
	}
}

// parallelRows splits rows [0, n) into chunks run on up to
// kernels.Threads() goroutines (the element-wise steps between matmuls:
// GELU and LayerNorm would otherwise run on one core).
func parallelRows(n int, fn func(r0, r1 int)) {
	workers := min(kernels.Threads(), n/16)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		r0, r1 := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(r0, r1)
		}()
	}
	wg.Wait()
}

// layerNorm sets out to x plus add (the residual, when not nil) normalised
// per row of dim (kernels.LayerNorm), the rows split across the threads.
// out may be x or add.
func layerNorm(out, x, add, w, b []float32, n, dim int, eps float32) {
	parallelRows(n, func(r0, r1 int) {
		var a []float32
		if add != nil {
			a = add[r0*dim : r1*dim]
		}
		kernels.LayerNorm(out[r0*dim:r1*dim], x[r0*dim:r1*dim], a, w, b, r1-r0, dim, eps)
	})
}
