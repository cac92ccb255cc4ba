package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/bench"
	"github.com/impetusllm/impetus/inference/bench/serving"
	"github.com/impetusllm/impetus/inference/kernels"
)

// servingEngines runs the GGUF candidates of a comparison in the engine, so
// that --streams measures requests through the scheduler as a server runs
// them (batching, sampling, streaming) against llama-server's.
type servingEngines struct {
	candidates []bench.Candidate
	maxSeqs    int
	engines    []*inference.Engine
	models     []*inference.LoadedModel
	// conversations counts the multi-turn conversations run, for their seeds.
	conversations uint64
}

func newServingEngines(candidates []bench.Candidate, maxSeqs int) *servingEngines {
	return &servingEngines{candidates: candidates, maxSeqs: max(maxSeqs, 1),
		engines: make([]*inference.Engine, len(candidates)), models: make([]*inference.LoadedModel, len(candidates))}
}

// model loads candidate i on first use; MLX folders written by --random have
// no tokenizer for the engine, so they are skipped (bench.ErrSkip).
func (s *servingEngines) model(i int) (*inference.LoadedModel, error) {
	if s.models[i] != nil {
		return s.models[i], nil
	}
	path := s.candidates[i].Path
	if !strings.HasSuffix(path, ".gguf") {
		return nil, bench.ErrSkip
	}
	e, err := inference.New(inference.Options{ModelsDir: filepath.Dir(path), KVCacheMB: 4096,
		MaxSequences: s.maxSeqs, MaxBatchTokens: max(512, s.maxSeqs)})
	if err != nil {
		return nil, err
	}
	lm, err := e.Load(context.Background(), strings.TrimSuffix(filepath.Base(path), ".gguf"))
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("loading %s in the engine: %w", path, err)
	}
	s.engines[i], s.models[i] = e, lm
	return lm, nil
}

// streams is a bench.CompareOptions.StreamRunner.
func (s *servingEngines) streams(i, n, tokens int) (float64, error) {
	lm, err := s.model(i)
	if err != nil {
		return 0, err
	}
	return serving.Streams(lm, n, 4, tokens, uint64(time.Now().UnixNano()))
}

func (s *servingEngines) close() {
	for _, e := range s.engines {
		if e != nil {
			e.Close()
		}
	}
}

// multiTurn prints, for each thread count, the median time to first token
// of every turn of a conversation with the prefix cache and without it:
//
//	TTFT model=<name> quant=<q> threads=<n> turn=<k> context=<tokens> reuse_ms=<ms> noreuse_ms=<ms>
func (s *servingEngines) multiTurn(w io.Writer, progress io.Writer, name string, threads []int, c serving.Conversation, repeats int) error {
	prev := kernels.Threads()
	defer kernels.SetThreads(prev)
	for i, cand := range s.candidates {
		lm, err := s.model(i)
		if err == bench.ErrSkip {
			continue
		}
		if err != nil {
			return err
		}
		for _, t := range threads {
			kernels.SetThreads(t)
			runs := map[bool][][]time.Duration{}
			for rep := 0; rep < repeats; rep++ {
				for _, reuse := range []bool{true, false} {
					// A conversation of its own each time: one seen before
					// would be in the prefix cache from its first turn.
					s.conversations++
					d, err := serving.TTFT(lm, c, reuse, s.conversations)
					if err != nil {
						return err
					}
					runs[reuse] = append(runs[reuse], d)
					fmt.Fprintf(progress, "%s %s threads %d run %d/%d: ttft reuse=%v %v\n", name, cand.Quant, t, rep+1, repeats, reuse, d)
				}
			}
			for turn := 0; turn < c.Turns; turn++ {
				med := func(reuse bool) float64 {
					var xs []float64
					for _, r := range runs[reuse] {
						xs = append(xs, float64(r[turn].Microseconds())/1000)
					}
					slices.Sort(xs)
					return xs[len(xs)/2]
				}
				ctx := c.System + turn*(c.User+c.Reply) + c.User
				fmt.Fprintf(w, "TTFT model=%s quant=%s threads=%d turn=%d context=%d reuse_ms=%.1f noreuse_ms=%.1f\n",
					name, cand.Quant, t, turn+1, ctx, med(true), med(false))
			}
		}
	}
	return nil
}
