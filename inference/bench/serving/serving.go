// Package serving measures the engine as a server uses it: concurrent
// requests through the scheduler (batching, sampling, streaming), and the
// time to first token of the turns of a conversation with and without the
// prefix cache. It lives apart from package bench, which the engine's own
// tests import, because it drives the engine.
package serving

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/sample"
)

// greedyNoEOS is greedy decoding with the end-of-sequence tokens banned, so
// every stream runs its full length (llama-server's ignore_eos).
func greedyNoEOS(lm *inference.LoadedModel) sample.Params {
	p := sample.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1, LogitBias: map[int32]float32{}}
	for _, id := range lm.EOS() {
		p.LogitBias[id] = -100
	}
	return p
}

// randomPrompt returns n ordinary token ids below vocab.
func randomPrompt(r *rand.Rand, n, vocab int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(256 + r.IntN(max(1, min(vocab, 32000)-256)))
	}
	return p
}

// Streams runs streams concurrent requests of gen tokens each after a
// promptLen-token random prompt (distinct per stream, so no prefix is
// shared) and returns the generated tokens per second of wall time over all
// of them, as llama-server rounds are measured.
func Streams(lm *inference.LoadedModel, streams, promptLen, gen int, seed uint64) (float64, error) {
	r := rand.New(rand.NewPCG(seed, uint64(streams)))
	chans := make([]<-chan inference.Event, streams)
	start := time.Now()
	for i := range chans {
		req := inference.GenerateRequest{Prompt: randomPrompt(r, promptLen, lm.Meta.Vocab), MaxTokens: gen,
			Sampling: greedyNoEOS(lm), NoPrefixCache: true}
		ch, err := lm.Generate(context.Background(), req)
		if err != nil {
			return 0, fmt.Errorf("serving: stream %d: %w", i, err)
		}
		chans[i] = ch
	}
	counts := make([]int, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range ch {
				if ev.Err != nil {
					errs[i] = ev.Err
				}
				if ev.HasToken {
					counts[i]++
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("serving: %w", err)
	}
	total := 0
	for i, c := range counts {
		if c != gen {
			return 0, fmt.Errorf("serving: stream %d generated %d tokens, want %d", i, c, gen)
		}
		total += c
	}
	return float64(total) / elapsed, nil
}

// Conversation describes a multi-turn benchmark: a system prompt, then
// turns of a user message answered by a greedy reply.
type Conversation struct {
	System, User, Reply int // token counts
	Turns               int
}

// TTFT runs one conversation and returns the time to first token of each
// turn. With reuse off every request bypasses the prefix cache, so each turn
// prefills the whole conversation so far.
func TTFT(lm *inference.LoadedModel, c Conversation, reuse bool, seed uint64) ([]time.Duration, error) {
	r := rand.New(rand.NewPCG(seed, 7))
	prompt := randomPrompt(r, c.System, lm.Meta.Vocab)
	out := make([]time.Duration, 0, c.Turns)
	for turn := 1; turn <= c.Turns; turn++ {
		prompt = append(prompt, randomPrompt(r, c.User, lm.Meta.Vocab)...)
		start := time.Now()
		ch, err := lm.Generate(context.Background(), inference.GenerateRequest{Prompt: prompt, MaxTokens: c.Reply,
			Sampling: greedyNoEOS(lm), NoPrefixCache: !reuse})
		if err != nil {
			return nil, fmt.Errorf("serving: turn %d: %w", turn, err)
		}
		first := true
		for ev := range ch {
			if ev.Err != nil {
				return nil, fmt.Errorf("serving: turn %d: %w", turn, ev.Err)
			}
			if first {
				out = append(out, time.Since(start))
				first = false
			}
			if ev.HasToken {
				prompt = append(prompt, ev.Token)
			}
		}
	}
	return out, nil
}
