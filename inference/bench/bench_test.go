package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/model"
)

// tinyShapes keep the generated models a few hundred kilobytes.
var tinyShapes = []Shape{
	{Name: "tiny-qwen", ModelType: "qwen2", Architecture: "Qwen2ForCausalLM", Hidden: 64, Intermediate: 128,
		Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 300, ContextLength: 1024, QKVBias: true, Tied: true,
		RopeTheta: 1e6, RMSNormEps: 1e-6, BOS: 1, EOS: []int{2}},
	{Name: "tiny-llama", ModelType: "llama", Architecture: "LlamaForCausalLM", Hidden: 128, Intermediate: 256,
		Layers: 2, Heads: 4, KVHeads: 1, HeadDim: 32, Vocab: 200, ContextLength: 4096, Tied: false,
		RopeTheta: 500000, RMSNormEps: 1e-5, BOS: 1, EOS: []int{2, 3}, RopeScaling: Llama32_1B.RopeScaling},
}

func TestRandomModelLoadsAndRuns(t *testing.T) {
	for _, shape := range tinyShapes {
		for _, q := range []string{"mlx4", "mlx8", "bf16"} {
			t.Run(shape.Name+"-"+q, func(t *testing.T) {
				dir := t.TempDir()
				if err := MakeRandomModel(dir, shape, q, 7); err != nil {
					t.Fatal(err)
				}
				m, err := model.Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				info := m.Info()
				m.Close()
				if info.Params != shape.Params() {
					t.Errorf("params %d, want %d", info.Params, shape.Params())
				}
				wantQ := map[string]string{"mlx4": "MLX 4-bit g64", "mlx8": "MLX 8-bit g64", "bf16": "BF16"}[q]
				if !strings.Contains(info.Quantization, wantQ) {
					t.Errorf("quantization %q, want %q", info.Quantization, wantQ)
				}
				var progress bytes.Buffer
				res, err := Run(Options{ModelDir: dir, Threads: []int{1, 2}, Batch: []int{3, 1}, PromptLen: 600,
					DecodeLen: 4, Repeats: 2, Progress: &progress})
				if err != nil {
					t.Fatal(err)
				}
				// Per thread count: prefill, decode batch 1, decode batch 3.
				if len(res.Rows) != 6 {
					t.Fatalf("%d rows, want 6:\n%s", len(res.Rows), res)
				}
				for _, row := range res.Rows {
					if !(row.TPS > 0) || row.Min > row.TPS || row.TPS > row.Max {
						t.Errorf("row %+v: figures not positive and ordered", row)
					}
				}
				if got := res.Rows[2]; got.Test != Decode || got.Batch != 3 || got.Tokens != 12 {
					t.Errorf("third row %+v, want decode batch 3 of 12 tokens", got)
				}
				table := res.String()
				for _, want := range []string{"machine:", "tokens/s", "prefill", "decode", res.Machine.Features} {
					if !strings.Contains(table, want) {
						t.Errorf("table lacks %q:\n%s", want, table)
					}
				}
				if strings.Count(progress.String(), "\n") != 12 {
					t.Errorf("progress has %d lines, want 12", strings.Count(progress.String(), "\n"))
				}
			})
		}
	}
}

func TestRandomModelIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := MakeRandomModel(d, tinyShapes[0], "mlx4", 3); err != nil {
			t.Fatal(err)
		}
	}
	fa, _ := os.ReadFile(filepath.Join(a, "model.safetensors"))
	fb, _ := os.ReadFile(filepath.Join(b, "model.safetensors"))
	if len(fa) == 0 || !bytes.Equal(fa, fb) {
		t.Fatal("same seed gave different weights")
	}
}

func TestEnsureRandomModelReuses(t *testing.T) {
	root := t.TempDir()
	dir, made, err := EnsureRandomModel(root, tinyShapes[0], "mlx4", 1)
	if err != nil || !made {
		t.Fatalf("first call: made %v, err %v", made, err)
	}
	if dir != filepath.Join(root, "tiny-qwen-mlx4") {
		t.Errorf("dir %s", dir)
	}
	if _, made, err = EnsureRandomModel(root, tinyShapes[0], "mlx4", 1); err != nil || made {
		t.Fatalf("second call: made %v, err %v", made, err)
	}
	if _, made, err = EnsureRandomModel(root, tinyShapes[0], "mlx4", 2); err != nil || !made {
		t.Fatalf("other seed: made %v, err %v", made, err)
	}
	// A folder whose marker is missing (interrupted run) is rebuilt.
	os.Remove(filepath.Join(dir, MarkerFile))
	if _, made, err = EnsureRandomModel(root, tinyShapes[0], "mlx4", 2); err != nil || !made {
		t.Fatalf("after interruption: made %v, err %v", made, err)
	}
}

func TestBadArguments(t *testing.T) {
	dir := t.TempDir()
	bad := tinyShapes[0]
	bad.KVHeads = 3
	odd := tinyShapes[0]
	odd.Hidden = 96 // not a multiple of the group size 64
	for _, tc := range []struct {
		name  string
		err   error
		wants string
	}{
		{"quant", MakeRandomModel(dir, tinyShapes[0], "q4_0", 1), "unknown quantization"},
		{"heads", MakeRandomModel(dir, bad, "bf16", 1), "not a multiple"},
		{"group", MakeRandomModel(dir, odd, "mlx4", 1), "tiny-qwen"},
		{"no model", func() error { _, err := Run(Options{}); return err }(), "no model folder"},
		{"threads", func() error { _, err := Run(Options{ModelDir: dir, Threads: []int{0}}); return err }(), "thread count"},
		{"batch", func() error { _, err := Run(Options{ModelDir: dir, Batch: []int{-1}}); return err }(), "batch"},
		{"missing", func() error { _, err := Run(Options{ModelDir: filepath.Join(dir, "none")}); return err }(), "bench:"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.wants) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, tc.err, tc.wants)
		}
	}
	if _, err := ShapeByName("gpt2"); err == nil || !strings.Contains(err.Error(), "llama1b") {
		t.Errorf("ShapeByName: %v", err)
	}
}

func TestShapeParams(t *testing.T) {
	// Published parameter counts of the real models.
	for _, tc := range []struct {
		s    Shape
		want int64
	}{{Qwen25_05B, 494032768}, {Llama32_1B, 1235814400}} {
		if got := tc.s.Params(); got != tc.want {
			t.Errorf("%s: %d params, want %d", tc.s.Name, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{1}, 1}, {[]float64{1, 2, 9}, 2}, {[]float64{1, 2, 4, 9}, 3}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
