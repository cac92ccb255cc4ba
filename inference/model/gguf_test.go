package model

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/testutil"
)

// tinySpec is a random llama-arch GGUF model: metadata plus tensors, which
// tests may edit before writing it.
type tinySpec struct {
	kv      map[string]any
	tensors []tinyTensor
}

type tinyTensor struct {
	name       string
	rows, cols int // rows 0 = vector
	v          []float32
}

func newTinySpec(H, I, heads, kvHeads, layers, vocab int) *tinySpec {
	hd := H / heads
	rng := rand.New(rand.NewPCG(7, 11))
	randn := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return v
	}
	norm := func(name string) tinyTensor {
		v := randn(H, 0.1)
		for i := range v {
			v[i]++
		}
		return tinyTensor{name, 0, H, v}
	}
	s := &tinySpec{kv: map[string]any{
		"general.architecture": "llama", "llama.embedding_length": uint32(H), "llama.block_count": uint32(layers),
		"llama.feed_forward_length": uint32(I), "llama.attention.head_count": uint32(heads),
		"llama.attention.head_count_kv": uint32(kvHeads), "llama.context_length": uint32(64),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5), "llama.rope.freq_base": float32(10000),
	}}
	s.tensors = []tinyTensor{{"token_embd.weight", vocab, H, randn(vocab*H, 1)}, {"output.weight", vocab, H, randn(vocab*H, 0.1)}, norm("output_norm.weight")}
	for l := 0; l < layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		s.tensors = append(s.tensors, norm(p+"attn_norm.weight"), norm(p+"ffn_norm.weight"),
			tinyTensor{p + "attn_q.weight", heads * hd, H, randn(heads*hd*H, 0.1)},
			tinyTensor{p + "attn_k.weight", kvHeads * hd, H, randn(kvHeads*hd*H, 0.1)},
			tinyTensor{p + "attn_v.weight", kvHeads * hd, H, randn(kvHeads*hd*H, 0.1)},
			tinyTensor{p + "attn_output.weight", H, heads * hd, randn(H*heads*hd, 0.1)},
			tinyTensor{p + "ffn_gate.weight", I, H, randn(I*H, 0.1)},
			tinyTensor{p + "ffn_up.weight", I, H, randn(I*H, 0.1)},
			tinyTensor{p + "ffn_down.weight", H, I, randn(H*I, 0.1)})
	}
	return s
}

// bytes encodes the model with matrices of type typ (F32 where rows are not
// whole blocks); with dequantized, matrices are stored as F32 holding the
// values typ would decode to.
func (s *tinySpec) bytes(t testing.TB, typ quant.GGMLType, dequantized bool) []byte {
	t.Helper()
	w := gguf.NewWriter()
	keys := make([]string, 0, len(s.kv))
	for k := range s.kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := w.SetKV(k, s.kv[k]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range s.tensors {
		dims, ttype := []uint64{uint64(tt.cols)}, quant.GGMLF32
		if tt.rows > 0 {
			dims, ttype = []uint64{uint64(tt.cols), uint64(tt.rows)}, typ
		}
		ttype, b := encode(t, ttype, tt.v, tt.cols)
		if dequantized && ttype != quant.GGMLF32 {
			f := make([]float32, len(tt.v))
			if err := quant.DequantizeGGML(ttype, b, f); err != nil {
				t.Fatal(err)
			}
			ttype, b = encode(t, quant.GGMLF32, f, tt.cols)
		}
		if err := w.AddTensor(tt.name, ttype, dims, b); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (s *tinySpec) write(t testing.TB, path string, typ quant.GGMLType, dequantized bool) {
	t.Helper()
	if err := os.WriteFile(path, s.bytes(t, typ, dequantized), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (s *tinySpec) without(name string) *tinySpec {
	c := &tinySpec{kv: s.kv}
	for _, tt := range s.tensors {
		if tt.name != name {
			c.tensors = append(c.tensors, tt)
		}
	}
	return c
}

func (s *tinySpec) withKV(key string, v any) *tinySpec {
	c := &tinySpec{kv: map[string]any{}, tensors: s.tensors}
	for k, x := range s.kv {
		c.kv[k] = x
	}
	if v == nil {
		delete(c.kv, key)
	} else {
		c.kv[key] = v
	}
	return c
}

func finite(t *testing.T, what string, v []float32) {
	t.Helper()
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("%s: logit %d is %g", what, i, x)
		}
	}
}

// TestTinyLlamaGGUF loads the real llama GGUF of the shared assets (F16
// matrices, F32 norms, untied output, 32000-token vocabulary).
func TestTinyLlamaGGUF(t *testing.T) {
	path := testutil.SharedPath(t, "assets", "gguf-model", "llama-2-tiny-random.gguf")
	m, err := LoadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.Config
	if c.Architecture != "llama" || c.Hidden != 8 || c.Layers != 1 || c.Heads != 2 || c.KVHeads != 2 || c.HeadDim != 4 ||
		c.Intermediate != 32 || c.Vocab != 32000 || c.RotaryDim != 4 || !c.RoPEAdjacentPairs || c.TieEmbeddings ||
		c.NormAddOne || c.ContextLength != 4096 || c.BOS != 1 || !slices.Equal(c.EOS, []int{2}) || c.RMSNormEps != 1e-5 {
		t.Errorf("config %+v", c)
	}
	info := m.Info()
	if info.Quantization != "GGUF F16" || info.Params != 2*32000*8+4*64+3*256+3*8 {
		t.Errorf("info %+v", info)
	}
	if st, err := os.Stat(path); err != nil || info.FileSize != st.Size() {
		t.Errorf("file size %d, stat %v %v", info.FileSize, st.Size(), err)
	}
	ids := []int32{1, 450, 4996, 17354, 1701, 29916}
	steps, prefill := promptLogits(t, m, ids)
	for i, s := range steps {
		finite(t, fmt.Sprint("step ", i), s)
	}
	finite(t, "prefill", prefill)
	var d diffStats
	d.add(steps[len(steps)-1], prefill)
	if d.logit > 1e-5 {
		t.Errorf("prefill and token-by-token logits differ by %g", d.logit)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward([]SeqBatch{{Tokens: []int32{1}, Cache: m.NewKVCache(1)}}, [][]float32{nil}); err == nil {
		t.Error("forward on a closed model succeeded")
	}
}

// TestGGUFBadFiles checks that broken or unsupported models give errors
// naming the file and the tensor or key at fault.
func TestGGUFBadFiles(t *testing.T) {
	good := newTinySpec(64, 96, 4, 2, 1, 40)
	wrongDims := &tinySpec{kv: good.kv}
	for _, tt := range good.tensors {
		if tt.name == "blk.0.ffn_up.weight" {
			tt.rows, tt.cols = tt.cols, tt.rows
		}
		wrongDims.tensors = append(wrongDims.tensors, tt)
	}
	shortFreqs := &tinySpec{kv: good.kv, tensors: append(slices.Clone(good.tensors), tinyTensor{"rope_freqs.weight", 0, 3, []float32{1, 2, 3}})}
	cases := []struct {
		name string
		spec *tinySpec
		typ  quant.GGMLType
		want []string
	}{
		{"missing tensor", good.without("blk.0.ffn_down.weight"), quant.GGMLF32, []string{`missing tensor "blk.0.ffn_down.weight"`}},
		{"missing norm", good.without("output_norm.weight"), quant.GGMLF32, []string{`"output_norm.weight"`}},
		{"missing embeddings", good.without("token_embd.weight"), quant.GGMLF32, []string{`"token_embd.weight"`}},
		{"wrong dims", wrongDims, quant.GGMLF32, []string{`"blk.0.ffn_up.weight"`, "dims"}},
		{"unsupported weight type", newTinySpec(256, 256, 4, 2, 1, 8), quant.GGMLQ8_K, []string{`"token_embd.weight"`, "Q8_K", "not supported"}},
		{"unsupported arch", good.withKV("general.architecture", "mamba"), quant.GGMLF32, []string{`"mamba"`}},
		{"missing key", good.withKV("llama.block_count", nil), quant.GGMLF32, []string{"llama.block_count"}},
		{"key of wrong type", good.withKV("llama.embedding_length", "64"), quant.GGMLF32, []string{"llama.embedding_length"}},
		{"absurd key", good.withKV("llama.embedding_length", uint64(1)<<40), quant.GGMLF32, []string{"llama.embedding_length"}},
		{"heads not dividing", good.withKV("llama.attention.head_count_kv", uint32(3)), quant.GGMLF32, []string{"num_key_value_heads"}},
		{"unknown rope scaling", good.withKV("llama.rope.scaling.type", "wavy"), quant.GGMLF32, []string{`"wavy"`}},
		{"rope_freqs of wrong length", shortFreqs, quant.GGMLF32, []string{`"rope_freqs.weight"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.gguf")
			c.spec.write(t, path, c.typ, false)
			m, err := LoadGGUF(path)
			if err == nil {
				m.Close()
				t.Fatal("loaded")
			}
			for _, w := range append([]string{path}, c.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
	if _, err := LoadGGUF(filepath.Join(t.TempDir(), "absent.gguf")); err == nil || !strings.Contains(err.Error(), "absent.gguf") {
		t.Errorf("absent file: %v", err)
	}
}

// FuzzFromGGUF feeds mutated model files to the loader and, when one loads,
// runs a token through it: neither may panic. The seeds are kept small
// (a few KiB) because the fuzzer minimizes every new input it finds.
func FuzzFromGGUF(f *testing.F) {
	spec := newTinySpec(32, 32, 2, 1, 1, 4)
	f.Add(spec.bytes(f, quant.GGMLQ8_0, false))
	f.Add(spec.bytes(f, quant.GGMLQ4_K, false))
	f.Add(spec.withKV("llama.rope.scaling.type", "linear").withKV("llama.rope.scaling.factor", float32(2)).bytes(f, quant.GGMLF16, false))
	f.Fuzz(func(t *testing.T, data []byte) {
		gf, err := gguf.Parse(data)
		if err != nil {
			return
		}
		m, err := FromGGUF(gf, "fuzz")
		if err != nil {
			return
		}
		defer m.Close()
		if m.Config.Hidden*m.Config.Intermediate > 1<<20 {
			return // a valid but large model: loading was the point
		}
		out := [][]float32{nil}
		if err := m.Forward([]SeqBatch{{Tokens: []int32{0}, Cache: m.NewKVCache(2), WantLogits: true}}, out); err != nil {
			t.Fatal(err)
		}
	})
}

// parseMeta builds an in-memory GGUF with the given metadata, a token_embd
// of hidden×vocab and the given extra F32 vectors, and maps its config.
func parseMeta(t *testing.T, kv map[string]any, hidden, vocab int, vectors map[string][]float32) (Config, error) {
	t.Helper()
	spec := &tinySpec{kv: kv, tensors: []tinyTensor{{"token_embd.weight", vocab, hidden, make([]float32, vocab*hidden)}}}
	for name, v := range vectors {
		spec.tensors = append(spec.tensors, tinyTensor{name, 0, len(v), v})
	}
	f, err := gguf.Parse(spec.bytes(t, quant.GGMLF32, false))
	if err != nil {
		t.Fatal(err)
	}
	return GGUFConfig(f)
}

func TestGGUFConfigMapping(t *testing.T) {
	base := func(arch string, layers int) map[string]any {
		return map[string]any{
			"general.architecture": arch, arch + ".embedding_length": uint32(64), arch + ".block_count": uint32(layers),
			arch + ".feed_forward_length": uint32(128), arch + ".attention.head_count": uint32(4),
			arch + ".attention.head_count_kv": uint32(2), arch + ".context_length": uint32(8192),
		}
	}
	with := func(m map[string]any, kv ...any) map[string]any {
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name    string
		kv      map[string]any
		vectors map[string][]float32
		check   func(c Config) bool
	}{
		{"llama: adjacent pairs, tied without output.weight", base("llama", 2), nil, func(c Config) bool {
			return c.RoPEAdjacentPairs && c.TieEmbeddings && c.HeadDim == 16 && c.LayerSpecs[0].RoPE.Type == "default"
		}},
		{"qwen2 rotates halves and has biases", base("qwen2", 2), nil, func(c Config) bool {
			return !c.RoPEAdjacentPairs && c.AttentionBias
		}},
		{"partial rotary from dimension_count", with(base("phi3", 2), "phi3.rope.dimension_count", uint32(6)), nil, func(c Config) bool {
			return c.RotaryDim == 6 && c.FusedGateUp
		}},
		{"linear scaling", with(base("llama", 1), "llama.rope.scaling.type", "linear", "llama.rope.scaling.factor", float32(4), "llama.rope.freq_base", float32(10000)), nil, func(c Config) bool {
			r := c.LayerSpecs[0].RoPE
			return r.Type == "linear" && math.Abs(float64(r.InvFreq[0])-0.25) < 1e-7
		}},
		{"llama3 divisors", base("llama", 1), map[string][]float32{"rope_freqs.weight": {1, 2, 4, 8, 8, 8, 8, 8}}, func(c Config) bool {
			r := c.LayerSpecs[0].RoPE
			return r.Type == "llama3" && r.InvFreq[0] == 1 && r.InvFreq[1] == float32(float64(float32(1/math.Pow(10000, 2.0/16)))/2)
		}},
		{"phi3 longrope from tensors", with(base("phi3", 1), "phi3.rope.scaling.original_context_length", uint32(4096), "phi3.rope.scaling.attn_factor", float32(1.19)),
			map[string][]float32{"rope_factors_long.weight": {2, 2, 2, 2, 2, 2, 2, 2}, "rope_factors_short.weight": {1, 1, 1, 1, 1, 1, 1, 1}}, func(c Config) bool {
				r := c.LayerSpecs[0].RoPE
				return r.Type == "longrope" && r.OriginalMax == 4096 && r.Mscale == float32(float32(1.19)) && r.LongInvFreq[0] == 0.5
			}},
		{"gemma2 defaults, norms baked", base("gemma2", 4), nil, func(c Config) bool {
			return !c.NormAddOne && c.SandwichNorms && c.LayerSpecs[0].Window == 4096 && c.LayerSpecs[1].Window == 0 &&
				c.AttnScale == float32(1/math.Sqrt(16)) && c.Activation == GELUTanh
		}},
		{"gemma2 attention scale from head_dim", with(base("gemma2", 4), "gemma2.attention.key_length", uint32(32)), nil, func(c Config) bool {
			return c.HeadDim == 32 && c.AttnScale == float32(1/math.Sqrt(32))
		}},
		{"gemma2 27B attention scale from hidden/heads", with(base("gemma2", 46), "gemma2.attention.key_length", uint32(32)), nil, func(c Config) bool {
			return c.HeadDim == 32 && c.AttnScale == float32(1/math.Sqrt(16))
		}},
		{"gemma3 pattern and local base", with(base("gemma3", 6), "gemma3.attention.sliding_window", uint32(512), "gemma3.rope.freq_base", float32(1e6)), nil, func(c Config) bool {
			return c.QKNorm && c.LayerSpecs[0].Window == 512 && c.LayerSpecs[5].Window == 0 &&
				c.LayerSpecs[0].RoPE.InvFreq[1] == float32(1/math.Pow(1e4, 2.0/16)) && c.LayerSpecs[5].RoPE.InvFreq[1] == float32(1/math.Pow(1e6, 2.0/16))
		}},
		{"gemma3 per-layer sliding flags", with(base("gemma3", 3), "gemma3.attention.sliding_window", uint32(8), "gemma3.attention.sliding_window_pattern", []bool{true, false, true}), nil, func(c Config) bool {
			return c.LayerSpecs[0].Window == 8 && c.LayerSpecs[1].Window == 0 && c.LayerSpecs[2].Window == 8
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseMeta(t, c.kv, 64, 10, c.vectors)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}
