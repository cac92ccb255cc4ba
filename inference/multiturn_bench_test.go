package inference

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// BenchmarkMultiTurnTTFT measures the time to first token of turn 2 and
// turn 5 of a conversation (a 60-token system prompt, 40-token user
// messages, 24-token greedy replies) on the trained reference llama, with
// the prefix cache and without it. With the cache, each turn prefills only
// its new user message, so its TTFT should not grow with the conversation.
func BenchmarkMultiTurnTTFT(b *testing.B) {
	dir := testutil.Fixture(b, "dev-trained", "llama-mlx4")
	for _, reuse := range []bool{true, false} {
		for _, turn := range []int{2, 5} {
			name := fmt.Sprintf("reuse=%v/turn=%d", reuse, turn)
			b.Run(name, func(b *testing.B) {
				_, lm := startEngine(b, Options{ModelsDir: filepath.Dir(dir), KVCacheMB: 256, DisablePrefixCache: !reuse}, "llama-mlx4")
				r := rand.New(rand.NewPCG(11, 12))
				words := func(n int) []int32 { // ordinary tokens of the vocabulary
					p := make([]int32, n)
					for i := range p {
						p[i] = int32(300 + r.IntN(1500))
					}
					return p
				}
				var total time.Duration
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					prompt := words(60) // a system prompt unique to this conversation
					var ttft time.Duration
					for k := 1; k <= turn; k++ {
						prompt = append(prompt, words(40)...)
						if k == turn {
							b.StartTimer()
						}
						start := time.Now()
						ch, err := lm.Generate(context.Background(), GenerateRequest{Prompt: prompt, MaxTokens: 24, Sampling: greedy()})
						if err != nil {
							b.Fatal(err)
						}
						first := true
						for ev := range ch {
							if first {
								ttft = time.Since(start)
								first = false
								if k == turn {
									b.StopTimer()
								}
							}
							if ev.Err != nil {
								b.Fatal(ev.Err)
							}
							if ev.HasToken {
								prompt = append(prompt, ev.Token)
							}
						}
					}
					total += ttft
				}
				b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ttft-ms")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
