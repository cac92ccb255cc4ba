//go:build cgo && linux

package model_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/bench"
	"github.com/impetusllm/impetus/inference/cuda"
	"github.com/impetusllm/impetus/inference/model"
)

// TestGPUSpeed measures prefill (512 tokens in one step) and decode (128
// single-token steps) on random weights of real shapes on the GPU. It runs
// only with IMPETUS_GPU_BENCH=1 (make test-gpu sets it), prints one
// GPUBENCH line per model and quantization, and checks nothing but that
// the steps run. IMPETUS_GPU_BENCH_SET (shape:quant,...) picks the models;
// IMPETUS_GPU_BENCH_KEEP names a folder that keeps the GGUF files, so a
// peer (llama-bench) can run on the same files.
func TestGPUSpeed(t *testing.T) {
	if os.Getenv("IMPETUS_GPU_BENCH") == "" {
		t.Skip("set IMPETUS_GPU_BENCH=1 to measure")
	}
	dev, err := cuda.Open(0)
	if err != nil {
		t.Skipf("no GPU: %v", err)
	}
	defer dev.Close()
	dir, keep := t.TempDir(), os.Getenv("IMPETUS_GPU_BENCH_KEEP")
	if keep != "" {
		dir = keep
	}
	set := os.Getenv("IMPETUS_GPU_BENCH_SET")
	if set == "" {
		set = "qwen0.5b:q4_0,qwen0.5b:q8_0,llama1b:q4_0,llama1b:q8_0,llama1b:q4_k_m"
	}
	for _, item := range strings.Split(set, ",") {
		name, q, _ := strings.Cut(item, ":")
		shape, err := bench.ShapeByName(name)
		if err != nil {
			t.Fatal(err)
		}
		c := struct {
			shape bench.Shape
			quant string
		}{shape, q}
		t.Run(c.shape.Name+"-"+c.quant, func(t *testing.T) {
			path, _, err := bench.EnsureRandomGGUF(dir, c.shape, c.quant, 1)
			if err != nil {
				t.Fatal(err)
			}
			if keep == "" {
				defer os.Remove(path)
			}
			m, err := model.LoadGGUF(path)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if err := m.UseDevice(dev, 0); err != nil {
				t.Fatal(err)
			}
			weights := m.GPUBytes()
			prompt := make([]int32, 512)
			for i := range prompt {
				prompt[i] = int32(1000 + i)
			}
			out := [][]float32{nil}
			run := func() (prefill, decode time.Duration) {
				c := m.NewKVCache(1024)
				start := time.Now()
				if err := m.Forward([]model.SeqBatch{{Tokens: prompt, Cache: c, WantLogits: true}}, out); err != nil {
					t.Fatal(err)
				}
				prefill = time.Since(start)
				start = time.Now()
				for i := 0; i < 128; i++ {
					if err := m.Forward([]model.SeqBatch{{Tokens: []int32{int32(2000 + i)}, Cache: c, WantLogits: true}}, out); err != nil {
						t.Fatal(err)
					}
				}
				return prefill, time.Since(start)
			}
			run() // warm-up: kernel load, allocations
			p, d := run()
			perTok := d / 128
			t.Logf("GPUBENCH model=%s quant=%s pp512=%.0f tok/s tg128=%.1f tok/s weights=%.0f MB decode bandwidth=%.0f GB/s int8=%v graphs=%v fuse=%s",
				c.shape.Name, c.quant, 512/p.Seconds(), 128/d.Seconds(), float64(weights)/1e6, float64(weights)/perTok.Seconds()/1e9,
				cuda.Int8(), dev.Graphs(), os.Getenv("IMPETUS_CUDA_FUSE"))
		})
	}
}
