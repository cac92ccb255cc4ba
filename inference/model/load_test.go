package model

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/safetensors"
)

// brokenCopy writes a copy of a fixture model with its config and tensors
// edited, for testing how Load reports bad models.
func brokenCopy(t *testing.T, src string, editConf func(map[string]any), keep func(name string) bool) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	if editConf != nil {
		editConf(conf)
	}
	set, err := safetensors.OpenModel(src)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var tensors []safetensors.Tensor
	for _, n := range set.Names() {
		if keep == nil || keep(n) {
			tn, _ := set.Tensor(n)
			tensors = append(tensors, tn)
		}
	}
	dir := t.TempDir()
	writeModel(t, dir, conf, tensors)
	return dir
}

func TestLoadErrors(t *testing.T) {
	llama := testFixture(t, "dev-random", "llama-mlx4")
	qwen2 := testFixture(t, "dev-random", "qwen2-float32")
	without := func(name string) func(string) bool { return func(n string) bool { return n != name } }
	cases := []struct {
		name string
		dir  func() string
		want string
	}{
		{"missing tensor", func() string {
			return brokenCopy(t, llama, nil, without("model.layers.1.mlp.up_proj.weight"))
		}, `"model.layers.1.mlp.up_proj.weight"`},
		{"missing biases of a quantized module", func() string {
			return brokenCopy(t, llama, nil, without("model.layers.0.self_attn.k_proj.biases"))
		}, `quantized module "model.layers.0.self_attn.k_proj"`},
		{"bits disagree with the packing", func() string {
			return brokenCopy(t, llama, func(c map[string]any) { c["quantization"] = map[string]any{"bits": 8, "group_size": 64} }, nil)
		}, "want U32"},
		{"group size disagrees with scales", func() string {
			return brokenCopy(t, llama, func(c map[string]any) { c["quantization"] = map[string]any{"bits": 4, "group_size": 32} }, nil)
		}, "group size 32"},
		{"shape disagrees with config", func() string {
			return brokenCopy(t, qwen2, func(c map[string]any) { c["intermediate_size"] = 128 }, nil)
		}, "want [128 64]"},
		{"untied without lm_head", func() string {
			return brokenCopy(t, llama, nil, func(n string) bool { return !strings.HasPrefix(n, "lm_head") })
		}, "lm_head.weight is missing"},
		{"qwen2 without q bias", func() string {
			return brokenCopy(t, qwen2, nil, without("model.layers.0.self_attn.q_proj.bias"))
		}, "biases are missing"},
		{"no weights", func() string {
			dir := t.TempDir()
			b, _ := os.ReadFile(filepath.Join(qwen2, "config.json"))
			os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
			return dir
		}, "no .safetensors"},
		{"no config", func() string { return t.TempDir() }, "config.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Load(c.dir())
			if err == nil {
				m.Close()
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q lacks %q", err, c.want)
			}
		})
	}
}
