package bench

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/quant"
)

// tinyGGUFShape has rows of 256 (K-quants fit) and a Llama 3 RoPE scaling.
var tinyGGUFShape = Shape{Name: "tiny-gguf", ModelType: "llama", Architecture: "LlamaForCausalLM",
	Hidden: 256, Intermediate: 512, Layers: 8, Heads: 4, KVHeads: 2, HeadDim: 64, Vocab: 700,
	ContextLength: 2048, Tied: true, RopeTheta: 500000, RMSNormEps: 1e-5, BOS: 690, EOS: []int{691, 699},
	RopeScaling: Llama32_1B.RopeScaling}

func TestRandomGGUFLoadsAndRuns(t *testing.T) {
	odd := tinyGGUFShape.LlamaArch()
	odd.Name, odd.Hidden, odd.Heads, odd.KVHeads, odd.HeadDim = "tiny-odd", 224, 7, 1, 32 // rows of 224: K-quants fall back
	odd.Tied, odd.RopeScaling = false, nil
	for _, shape := range []Shape{tinyGGUFShape, odd} {
		for _, q := range []string{"q4_0", "q8_0", "q4_k_m", "bf16"} {
			t.Run(shape.Name+"-"+q, func(t *testing.T) {
				path, made, err := EnsureRandomGGUF(t.TempDir(), shape, q, 5)
				if err != nil || !made {
					t.Fatalf("made %v, err %v", made, err)
				}
				m, err := model.LoadGGUF(path)
				if err != nil {
					t.Fatal(err)
				}
				info := m.Info()
				m.Close()
				if info.Params != shape.Params() {
					t.Errorf("params %d, want %d", info.Params, shape.Params())
				}
				res, err := Run(Options{ModelDir: path, Threads: []int{2}, Batch: []int{2}, PromptLen: 20, DecodeLen: 3, Repeats: 1})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Rows) != 3 {
					t.Fatalf("%d rows, want 3", len(res.Rows))
				}
			})
		}
	}
}

func TestRandomGGUFMix(t *testing.T) {
	dir := t.TempDir()
	path, _, err := EnsureRandomGGUF(dir, tinyGGUFShape, "q4_k_m", 1)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	typeOf := func(name string) quant.GGMLType {
		ti, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		return ti.Type
	}
	// 8 layers: more bits in layers 0, 3, 6 and 7.
	for _, tc := range []struct {
		name string
		want quant.GGMLType
	}{
		{"token_embd.weight", quant.GGMLQ6_K},
		{"blk.0.attn_v.weight", quant.GGMLQ6_K}, {"blk.1.attn_v.weight", quant.GGMLQ4_K},
		{"blk.3.ffn_down.weight", quant.GGMLQ6_K}, {"blk.4.ffn_down.weight", quant.GGMLQ4_K},
		{"blk.7.ffn_down.weight", quant.GGMLQ6_K}, {"blk.7.attn_q.weight", quant.GGMLQ4_K},
		{"blk.2.ffn_up.weight", quant.GGMLQ4_K}, {"output_norm.weight", quant.GGMLF32},
		{"rope_freqs.weight", quant.GGMLF32},
	} {
		if got := typeOf(tc.name); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	for _, key := range []string{"tokenizer.ggml.tokens", "tokenizer.ggml.merges", "llama.rope.freq_base"} {
		if _, ok := f.Value(key); !ok {
			t.Errorf("missing %s", key)
		}
	}
	if _, made, err := EnsureRandomGGUF(dir, tinyGGUFShape, "q4_k_m", 1); err != nil || made {
		t.Errorf("second call: made %v, err %v", made, err)
	}
	if _, made, err := EnsureRandomGGUF(dir, tinyGGUFShape, "q4_k_m", 2); err != nil || !made {
		t.Errorf("other seed: made %v, err %v", made, err)
	}
}

func TestMixTypeFallback(t *testing.T) {
	for _, tc := range []struct {
		q      string
		r      role
		rowLen int
		want   quant.GGMLType
	}{
		{"q4_k_m", roleUp, 896, quant.GGMLQ5_0},
		{"q4_k_m", roleOutput, 896, quant.GGMLQ8_0},
		{"q4_k_m", roleDown, 4864, quant.GGMLQ4_K},
		{"q4_0", roleOutput, 896, quant.GGMLQ8_0},
		{"q4_0", roleOutput, 2048, quant.GGMLQ6_K},
		{"q4_0", roleGate, 2048, quant.GGMLQ4_0},
		{"q8_0", roleOutput, 2048, quant.GGMLQ8_0},
		{"q4_0", roleGate, 100, quant.GGMLF16},
	} {
		got, err := mixType(tc.q, tc.r, 4, 24, tc.rowLen)
		if err != nil || got != tc.want {
			t.Errorf("%s role %d rows of %d: %s %v, want %s", tc.q, tc.r, tc.rowLen, got, err, tc.want)
		}
	}
	if _, err := mixType("q3_k", roleUp, 1, 2, 256); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("unknown quant: %v", err)
	}
	if err := WriteRandomGGUF(filepath.Join(t.TempDir(), "x.gguf"), tinyGGUFShape, "mlx4", 1); err == nil {
		t.Error("mlx4 accepted as a GGUF quantization")
	}
}

func TestSyntheticVocab(t *testing.T) {
	tokens, types, merges, err := syntheticVocab(70000, []int{5, 69999})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, tok := range tokens {
		if seen[tok] || strings.Contains(tok, " ") || tok == "" {
			t.Fatalf("token %d %q repeated, empty or with a space", i, tok)
		}
		seen[tok] = true
	}
	if types[5] != tokenControl || types[69999] != tokenControl || types[6] != tokenNormal {
		t.Error("control tokens not marked")
	}
	// Every merge joins two tokens into a third.
	for _, m := range merges {
		a, b, _ := strings.Cut(m, " ")
		if !seen[a] || !seen[b] || !seen[a+b] {
			t.Fatalf("merge %q joins unknown tokens", m)
		}
	}
	if len(merges) != 70000-2-256 {
		t.Errorf("%d merges", len(merges))
	}
	banned := bannedTokens(tokens, types)
	if len(banned) != 30+128 { // control bytes but tab and newline, and the bytes from 0x80
		t.Errorf("%d banned tokens, want %d", len(banned), 30+128)
	}
	for _, id := range banned {
		if len([]rune(tokens[id])) != 1 {
			t.Errorf("generated token %d %q banned", id, tokens[id])
		}
	}
	if _, _, _, err := syntheticVocab(100, nil); err == nil {
		t.Error("vocabulary below 256 tokens accepted")
	}
}
