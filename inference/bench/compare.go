package bench

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/model"
)

// Candidate is one model the engine runs in a comparison; several may face
// the same llama.cpp file (an MLX model against the GGUF of its shape).
type Candidate struct {
	Quant string // label of BENCH lines: q4_0, mlx4, ...
	Path  string // model folder or GGUF file
}

// CompareOptions chooses what Compare measures.
type CompareOptions struct {
	Model      string // label of BENCH lines, e.g. qwen0.5b
	Candidates []Candidate
	// GGUF is the file llama.cpp runs; LlamaCPP its build folder (holding
	// bin/llama-bench, or llama-bench itself). Both empty: our figures alone.
	GGUF     string
	LlamaCPP string
	LlamaEnv []string // extra KEY=VALUE environment for llama.cpp's processes
	Threads  []int
	// PromptLen and DecodeLen are llama-bench's -p and -n (512 and 128 by
	// default); Repeats is how many interleaved runs give each median (5).
	PromptLen, DecodeLen, Repeats int
	// Streams adds, for each count N in it, aggregate decode of N concurrent
	// sequences of DecodeLen tokens (test tg<DecodeLen>x<N>), against
	// llama-server -np N.
	Streams []int
	// StreamRunner, when set, measures our side of a Streams test instead of
	// batched decode through the model: aggregate tokens/s of streams
	// concurrent requests of tokens each for candidate i, e.g. through the
	// engine's scheduler (package serving). ErrSkip leaves the candidate out.
	StreamRunner func(candidate, streams, tokens int) (float64, error)
	// Depth runs prefill and decode after that many tokens already in the
	// cache (llama-bench -d): tests pp512@d4096 and tg128@d4096.
	Depth int
	// Bandwidth measures memory read bandwidth at each thread count
	// (ReadBandwidth) and gives each decode line its fraction of the
	// ceiling that sets: bandwidth ÷ DecodeBytes.
	Bandwidth bool
	Progress  io.Writer // one line per run; nil discards
	Lines     io.Writer // each BENCH line as soon as its median is known; nil discards
}

// Line is one measurement: the medians of both engines in tokens/s,
// LlamaCPP 0 when llama.cpp was not run.
type Line struct {
	Model, Quant string
	Threads      int
	Test         string // pp512, tg128, tg128x4, tg128@d4096
	Impetus      float64
	LlamaCPP     float64
	Level        string  // the kernels' SIMD level (Level); empty: not printed
	Bandwidth    float64 // measured read bandwidth at Threads, bytes/s; 0: not measured
	Ceiling      float64 // Impetus as a fraction of Bandwidth ÷ decode bytes per token; 0: none
	KV           string  // with Ceiling: the KV cache storage counted in the bytes (f16, f32, q8_0)
}

// String is the machine-readable form:
// BENCH model=M quant=Q threads=N test=T impetus=X llamacpp=Y|- ratio=R|-
// followed, where known, by level=L and, for decode, bw=<GB/s> ceiling=<fraction>
// kv=<storage>.
func (l Line) String() string {
	llama, ratio := "-", "-"
	if l.LlamaCPP > 0 {
		llama, ratio = fmt.Sprintf("%.2f", l.LlamaCPP), fmt.Sprintf("%.2f", l.Impetus/l.LlamaCPP)
	}
	out := fmt.Sprintf("BENCH model=%s quant=%s threads=%d test=%s impetus=%.2f llamacpp=%s ratio=%s",
		l.Model, l.Quant, l.Threads, l.Test, l.Impetus, llama, ratio)
	if l.Level != "" {
		out += " level=" + l.Level
	}
	if l.Ceiling > 0 {
		out += fmt.Sprintf(" bw=%.1f ceiling=%.2f", l.Bandwidth/1e9, l.Ceiling)
		if l.KV != "" {
			out += " kv=" + l.KV
		}
	}
	return out
}

func (o CompareOptions) withDefaults() (CompareOptions, error) {
	if len(o.Candidates) == 0 {
		return o, errors.New("compare: no model to measure")
	}
	if (o.GGUF == "") != (o.LlamaCPP == "") {
		return o, errors.New("compare: the llama.cpp folder and the GGUF file go together")
	}
	if o.PromptLen == 0 {
		o.PromptLen = 512
	}
	if o.DecodeLen == 0 {
		o.DecodeLen = 128
	}
	if o.Repeats == 0 {
		o.Repeats = 5
	}
	if o.Depth < 0 {
		return o, fmt.Errorf("compare: depth %d is negative", o.Depth)
	}
	if o.PromptLen < 1 || o.DecodeLen < 1 || o.Repeats < 1 || slices.ContainsFunc(o.Streams, func(n int) bool { return n < 1 }) {
		return o, fmt.Errorf("compare: prompt %d, decode %d, repeats %d and streams %v must be positive",
			o.PromptLen, o.DecodeLen, o.Repeats, o.Streams)
	}
	if len(o.Threads) == 0 {
		o.Threads = []int{kernels.Threads()}
	}
	for _, t := range o.Threads {
		if t < 1 || t > 1024 {
			return o, fmt.Errorf("compare: thread count %d out of range 1..1024", t)
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Lines == nil {
		o.Lines = io.Discard
	}
	return o, nil
}

// LlamaTool finds a llama.cpp program in a build folder: dir/bin/name or dir/name.
func LlamaTool(dir, name string) (string, error) {
	for _, p := range []string{filepath.Join(dir, "bin", name), filepath.Join(dir, name)} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s in %s or %s", name, filepath.Join(dir, "bin"), dir)
}

// Compare measures each candidate and, when a llama.cpp build is given,
// llama.cpp on the GGUF file with the same thread counts, interleaved: per
// repeat, every candidate's prefill and decode, then one llama-bench process
// (-r 1 --no-warmup: our engine is warmed once per thread count and keeps its
// state, llama-bench's single run is timed from the start of its process's
// first test, which loading has already warmed). The median of Repeats runs
// of each is reported. Prefill is PromptLen random tokens in one sequence
// (logits of the last only) and decode is DecodeLen steps from an empty cache,
// as llama-bench's pp and tg tests are. With Streams > 1, aggregate decode
// follows the same way against llama-server. The kernels' thread count is
// restored afterwards.
func Compare(opts CompareOptions) ([]Line, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var benchBin, serverBin string
	if opts.LlamaCPP != "" {
		if benchBin, err = LlamaTool(opts.LlamaCPP, "llama-bench"); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		if len(opts.Streams) > 0 {
			if serverBin, err = LlamaTool(opts.LlamaCPP, "llama-server"); err != nil {
				return nil, fmt.Errorf("compare: %w", err)
			}
		}
		if _, err := os.Stat(opts.GGUF); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
	}
	runners := make([]*runner, len(opts.Candidates))
	for i, c := range opts.Candidates {
		m, err := loadModel(c.Path)
		if err != nil {
			return nil, err
		}
		defer m.Close()
		streams := 1
		if opts.StreamRunner == nil {
			streams = max(streams, slices.Max(append([]int{1}, opts.Streams...)))
		}
		runners[i] = newRunner(m, streams, opts.PromptLen, opts.DecodeLen, uint64(i))
		if err := runners[i].setDepth(opts.Depth); err != nil {
			return nil, fmt.Errorf("compare: %s: %w", c.Quant, err)
		}
	}
	prev := kernels.Threads()
	defer kernels.SetThreads(prev)

	var lines []Line
	emit := func(l Line) {
		lines = append(lines, l)
		fmt.Fprintln(opts.Lines, l)
	}
	pp, tg := fmt.Sprintf("pp%d", opts.PromptLen), fmt.Sprintf("tg%d", opts.DecodeLen)
	if opts.Depth > 0 {
		pp, tg = pp+fmt.Sprintf("@d%d", opts.Depth), tg+fmt.Sprintf("@d%d", opts.Depth)
	}
	level := Level()
	for _, t := range opts.Threads {
		kernels.SetThreads(t)
		bw := 0.0
		if opts.Bandwidth {
			bw = ReadBandwidth(t)
			fmt.Fprintf(opts.Progress, "memory read bandwidth, %d threads: %.1f GB/s\n", t, bw/1e9)
		}
		for _, r := range runners {
			if err := r.prefill(opts.PromptLen); err != nil {
				return lines, fmt.Errorf("compare: warm-up: %w", err)
			}
		}
		ours := make([][2][]float64, len(runners)) // [candidate][pp, tg] runs
		var theirs [2][]float64
		for rep := 1; rep <= opts.Repeats; rep++ {
			for i, r := range runners {
				v, err := timed(opts.PromptLen, func() error { return r.prefill(opts.PromptLen) })
				if err != nil {
					return lines, fmt.Errorf("compare: %s prefill: %w", opts.Candidates[i].Quant, err)
				}
				ours[i][0] = append(ours[i][0], v)
				w, err := timed(opts.DecodeLen, func() error { return r.decode(1, opts.DecodeLen) })
				if err != nil {
					return lines, fmt.Errorf("compare: %s decode: %w", opts.Candidates[i].Quant, err)
				}
				ours[i][1] = append(ours[i][1], w)
				fmt.Fprintf(opts.Progress, "%s %s threads %d run %d/%d: impetus %s %.2f, %s %.2f t/s\n",
					opts.Model, opts.Candidates[i].Quant, t, rep, opts.Repeats, pp, v, tg, w)
			}
			if benchBin == "" {
				continue
			}
			args := []string{"-m", opts.GGUF,
				"-p", fmt.Sprint(opts.PromptLen), "-n", fmt.Sprint(opts.DecodeLen), "-t", fmt.Sprint(t),
				"-r", "1", "--no-warmup", "-o", "json"}
			if opts.Depth > 0 {
				args = append(args, "-d", fmt.Sprint(opts.Depth))
			}
			rows, err := runLlamaBench(benchBin, opts.LlamaEnv, args)
			if err != nil {
				return lines, fmt.Errorf("compare: %w", err)
			}
			var got [2]float64
			for _, row := range rows {
				if row.NDepth != opts.Depth {
					continue
				}
				switch {
				case row.NPrompt == opts.PromptLen && row.NGen == 0:
					got[0] = row.AvgTS
				case row.NGen == opts.DecodeLen && row.NPrompt == 0:
					got[1] = row.AvgTS
				}
			}
			if got[0] == 0 || got[1] == 0 {
				return lines, fmt.Errorf("compare: llama-bench reported no %s or %s test", pp, tg)
			}
			theirs[0], theirs[1] = append(theirs[0], got[0]), append(theirs[1], got[1])
			fmt.Fprintf(opts.Progress, "%s threads %d run %d/%d: llama.cpp %s %.2f, %s %.2f t/s\n",
				opts.Model, t, rep, opts.Repeats, pp, got[0], tg, got[1])
		}
		for k, test := range []string{pp, tg} {
			for i, c := range opts.Candidates {
				l := Line{Model: opts.Model, Quant: c.Quant, Threads: t, Test: test,
					Impetus: medianOf(ours[i][k]), LlamaCPP: medianOf(theirs[k]), Level: level}
				if k == 1 && bw > 0 {
					// Decode reads the KV cache at its mean depth over the run.
					bytes := DecodeBytes(runners[i].m, opts.Depth+opts.DecodeLen/2)
					l.Bandwidth, l.Ceiling, l.KV = bw, l.Impetus*float64(bytes)/bw, runners[i].m.KVStorage().String()
				}
				emit(l)
			}
		}
		for _, s := range opts.Streams {
			ls, err := compareStreams(opts, t, s, runners, serverBin)
			for _, l := range ls {
				emit(l)
			}
			if err != nil {
				return lines, err
			}
		}
	}
	return lines, nil
}

// ErrSkip is a StreamRunner's answer for a candidate it does not measure.
var ErrSkip = errors.New("not measured")

// compareStreams measures aggregate decode of s sequences at t threads,
// interleaved with llama-server rounds when serverBin is set.
func compareStreams(opts CompareOptions, t, s int, runners []*runner, serverBin string) ([]Line, error) {
	n := opts.DecodeLen
	var srv *llamaServer
	if serverBin != "" {
		var err error
		if srv, err = startLlamaServer(serverBin, opts.LlamaEnv, opts.GGUF, t, s, n); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		defer srv.stop()
		if _, err := srv.round(s, n); err != nil { // warm-up
			return nil, fmt.Errorf("compare: %w", err)
		}
	}
	ours := make([][]float64, len(runners))
	var theirs []float64
	for rep := 1; rep <= opts.Repeats; rep++ {
		for i, r := range runners {
			var v float64
			var err error
			if opts.StreamRunner != nil {
				v, err = opts.StreamRunner(i, s, n)
			} else {
				v, err = timed(s*n, func() error { return r.decode(s, n) })
			}
			if errors.Is(err, ErrSkip) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("compare: %s decode of %d streams: %w", opts.Candidates[i].Quant, s, err)
			}
			ours[i] = append(ours[i], v)
			fmt.Fprintf(opts.Progress, "%s %s threads %d run %d/%d: impetus tg%dx%d %.2f t/s\n",
				opts.Model, opts.Candidates[i].Quant, t, rep, opts.Repeats, n, s, v)
		}
		if srv == nil {
			continue
		}
		v, err := srv.round(s, n)
		if err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		theirs = append(theirs, v)
		fmt.Fprintf(opts.Progress, "%s threads %d run %d/%d: llama-server tg%dx%d %.2f t/s\n",
			opts.Model, t, rep, opts.Repeats, n, s, v)
	}
	var lines []Line
	for i, c := range opts.Candidates {
		if len(ours[i]) == 0 {
			continue
		}
		lines = append(lines, Line{Model: opts.Model, Quant: c.Quant, Threads: t, Test: fmt.Sprintf("tg%dx%d", n, s),
			Impetus: medianOf(ours[i]), LlamaCPP: medianOf(theirs), Level: Level()})
	}
	return lines, nil
}

// timed runs fn once and returns tokens per second.
func timed(tokens int, fn func() error) (float64, error) {
	start := time.Now()
	if err := fn(); err != nil {
		return 0, err
	}
	return float64(tokens) / time.Since(start).Seconds(), nil
}

// medianOf returns the median of xs (0 for none), leaving xs unchanged.
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return median(s)
}

// newRunner prepares caches for prefill of promptLen tokens in one sequence
// and decode of decodeLen steps in up to streams sequences.
func newRunner(m *model.Model, streams, promptLen, decodeLen int, seed uint64) *runner {
	r := &runner{m: m, vocab: m.Config.Vocab, rng: rand.New(rand.NewPCG(seed, 1))}
	r.caches = make([]*model.KVCache, streams)
	for i := range r.caches {
		n := decodeLen + 1
		if i == 0 {
			n = max(n, promptLen+1)
		}
		r.caches[i] = m.NewKVCache(n)
	}
	r.logits = make([][]float32, streams)
	return r
}

// EnvList splits "A=1,B=2" into KEY=VALUE pairs.
func EnvList(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, kv := range strings.Split(s, ",") {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", kv)
		}
		out = append(out, kv)
	}
	return out, nil
}
