package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/safetensors"
)

// TestMixedMLXQuantization re-quantizes a trained model with a mixed recipe
// (every bit width, all three group sizes, per-module overrides including
// false, a quantized tied embedding) and checks that its forward pass equals
// that of a float32 model holding the same dequantized weights
// (modeltest.QuantizeMLXFolder writes both).
func TestMixedMLXQuantization(t *testing.T) {
	src := testFixture(t, "dev-trained-more-a", "qwen2-bfloat16")
	global := QuantParams{Bits: 3, GroupSize: 32}
	plan := map[string]any{
		"model.embed_tokens":              map[string]any{"bits": 5, "group_size": 128},
		"model.layers.0.mlp.down_proj":    map[string]any{"bits": 6, "group_size": 64},
		"model.layers.1.mlp.down_proj":    map[string]any{"bits": 2, "group_size": 128, "mode": "affine"},
		"model.layers.1.self_attn.q_proj": map[string]any{"bits": 8, "group_size": 32},
		"model.layers.0.self_attn.o_proj": false,
		"model.layers.1.mlp.gate_proj":    map[string]any{"bits": 4},
	}
	qdir, fdir := t.TempDir(), t.TempDir()
	if err := quantizeMLXFolder(src, qdir, fdir, global.Bits, global.GroupSize, plan); err != nil {
		t.Fatal(err)
	}
	qm, err := Load(qdir)
	if err != nil {
		t.Fatal(err)
	}
	defer qm.Close()
	fm, err := Load(fdir)
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	info := qm.Info()
	if !strings.Contains(info.Quantization, "MLX 3-bit g32") || !strings.Contains(info.Quantization, "BF16") {
		t.Errorf("quantization description %q", info.Quantization)
	}
	if info.Params != fm.Info().Params {
		t.Errorf("quantized model counts %d parameters, float copy %d", info.Params, fm.Info().Params)
	}
	if qm.embed.kind != wMLX || qm.embed.bits != 5 || qm.embed.group != 128 || qm.lmHead != &qm.embed {
		t.Errorf("embedding not loaded as the tied 5-bit g128 table")
	}
	if o := qm.layers[0].o; o.kind != wBF16 {
		t.Errorf("layer 0 o_proj overridden to float is %s", o.kind)
	}
	if g := qm.layers[1].gate; g.kind != wMLX || g.bits != 4 || g.group != 32 {
		t.Errorf("layer 1 gate_proj is %s %d-bit g%d, want 4-bit with the global group 32", g.kind, g.bits, g.group)
	}
	ref := loadReference(t, src)
	qc, fc := qm.NewKVCache(64), fm.NewKVCache(64)
	qo, fo := [][]float32{nil}, [][]float32{nil}
	toks := ref.PromptIDs
	for step := 0; step < 4; step++ {
		if err := qm.Forward([]SeqBatch{{Tokens: toks, Cache: qc, WantLogits: true}}, qo); err != nil {
			t.Fatal(err)
		}
		if err := fm.Forward([]SeqBatch{{Tokens: toks, Cache: fc, WantLogits: true}}, fo); err != nil {
			t.Fatal(err)
		}
		for j := range qo[0] {
			if d := math.Abs(float64(qo[0][j] - fo[0][j])); d > 1e-3 {
				t.Fatalf("step %d: logit %d is %g quantized, %g dequantized float", step, j, qo[0][j], fo[0][j])
			}
		}
		toks = []int32{argmax(qo[0])}
	}
}

func writeModel(t *testing.T, dir string, conf map[string]any, tensors []safetensors.Tensor) {
	t.Helper()
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), tensors, map[string]string{"format": "mlx"}); err != nil {
		t.Fatal(err)
	}
}
