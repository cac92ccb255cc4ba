package inference

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/bench"
)

// BenchmarkSchedulerDecode measures aggregate decode tokens per second
// through the scheduler (Generate, batching, sampling, streaming) with 1, 2,
// 4 and 8 concurrent greedy streams of 128 tokens after a 32-token prompt.
// The model is the tiny test model, or random weights of the bench shape
// named by $IMPETUS_SCHED_BENCH_SHAPE (e.g. qwen0.5b, MLX 4-bit), generated
// once under the temp dir.
func BenchmarkSchedulerDecode(b *testing.B) {
	var e *Engine
	var lm *LoadedModel
	if name := os.Getenv("IMPETUS_SCHED_BENCH_SHAPE"); name != "" {
		shape, err := bench.ShapeByName(name)
		if err != nil {
			b.Fatal(err)
		}
		root := filepath.Join(os.TempDir(), "impetus-sched-bench")
		dir, _, err := bench.EnsureRandomModel(root, shape, "mlx4", 1)
		if err != nil {
			b.Fatal(err)
		}
		writeByteTokenizer(b, dir, shape.EOS[0])
		e, lm = startEngine(b, Options{ModelsDir: root, KVCacheMB: 4096}, filepath.Base(dir))
	} else {
		e, lm = tinyEngine(b, Options{KVCacheMB: 256})
	}
	_ = e
	for _, streams := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			const prompt, gen = 32, 128
			var tokens int
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				var wg sync.WaitGroup
				var mu sync.Mutex
				for s := 0; s < streams; s++ {
					p := make([]int32, prompt)
					for j := range p {
						p[j] = int32(1 + (i*7919+s*104729+j*31)%250) // distinct prompts: no prefix hits
					}
					req := GenerateRequest{Prompt: p, MaxTokens: gen, Sampling: greedy()}
					req.Sampling.LogitBias = map[int32]float32{}
					for _, id := range lm.EOS() {
						req.Sampling.LogitBias[id] = -100
					}
					ch, err := lm.Generate(context.Background(), req)
					if err != nil {
						b.Fatal(err)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						n := len(collect(ch).ids)
						mu.Lock()
						tokens += n
						mu.Unlock()
					}()
				}
				wg.Wait()
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(tokens)/elapsed.Seconds(), "tok/s")
		})
	}
}
