package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/model"
)

// PrefillChunk is the most prompt tokens one Forward call takes; it matches
// the scheduler's step size so prefill is measured the way it is served.
const PrefillChunk = 512

// Options chooses what Run measures. Zero fields take the defaults.
type Options struct {
	ModelDir  string // a model folder, or a GGUF file
	Threads   []int  // kernel thread counts to try; default the current count
	Batch     []int  // concurrent sequences for aggregate decode; 1 (single stream) is always measured
	PromptLen int    // default 512
	DecodeLen int    // default 128
	Repeats   int    // runs per figure, the median is reported; default 3
	Seed      uint64
	Progress  io.Writer // optional: one line per finished run
}

// Result is what Run measured, printable with String.
type Result struct {
	Machine   Machine
	ModelDir  string
	Info      model.Info
	PromptLen int
	DecodeLen int
	Repeats   int
	Rows      []Row
}

// Machine describes where the figures were taken.
type Machine struct {
	CPU      string // model name from /proc/cpuinfo
	Cores    int    // logical CPUs the Go runtime sees
	Features string // SIMD level the kernels dispatched to
	OS, Arch string
}

// Test names a measurement.
type Test string

// The measurements Run makes.
const (
	Prefill Test = "prefill" // PromptLen tokens of one sequence
	Decode  Test = "decode"  // DecodeLen steps of Batch sequences, one token each
)

// Row is one figure: the median over the repeats and the spread.
type Row struct {
	Threads int
	Test    Test
	Batch   int // sequences decoded together (1 for prefill)
	Tokens  int // tokens processed per run
	TPS     float64
	Min     float64
	Max     float64
	// LlamaTPS is llama.cpp's figure for the same test and threads, 0 when
	// not compared (see AttachLlamaBench).
	LlamaTPS float64
}

func (o Options) withDefaults() (Options, error) {
	if o.ModelDir == "" {
		return o, errors.New("bench: no model folder")
	}
	if len(o.Threads) == 0 {
		o.Threads = []int{kernels.Threads()}
	}
	if o.PromptLen == 0 {
		o.PromptLen = 512
	}
	if o.DecodeLen == 0 {
		o.DecodeLen = 128
	}
	if o.Repeats == 0 {
		o.Repeats = 3
	}
	if o.PromptLen < 0 || o.DecodeLen < 0 || o.Repeats < 0 {
		return o, fmt.Errorf("bench: prompt %d, decode %d and repeats %d must not be negative", o.PromptLen, o.DecodeLen, o.Repeats)
	}
	for _, t := range o.Threads {
		if t < 1 || t > 1024 {
			return o, fmt.Errorf("bench: thread count %d out of range 1..1024", t)
		}
	}
	batch := []int{1}
	for _, b := range o.Batch {
		if b < 1 || b > 4096 {
			return o, fmt.Errorf("bench: batch %d out of range 1..4096", b)
		}
		if !containsInt(batch, b) {
			batch = append(batch, b)
		}
	}
	sort.Ints(batch)
	o.Batch = batch
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, nil
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Run loads the model in opts.ModelDir and, for each thread count, measures
// prefill of one PromptLen-token sequence (in PrefillChunk chunks, logits for
// the last token only), single-stream decode of DecodeLen tokens and, for each
// batch size B, aggregate decode: DecodeLen steps of one Forward over B
// sequences with one token each, every sequence asking for logits. Decode
// starts from an empty cache, as llama-bench's text-generation test does.
// Tokens are random ids. The kernels' thread count is restored afterwards.
func Run(opts Options) (Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Result{}, err
	}
	m, err := loadModel(opts.ModelDir)
	if err != nil {
		return Result{}, err
	}
	defer m.Close()
	prev := kernels.Threads()
	defer kernels.SetThreads(prev)

	res := Result{
		Machine: DescribeMachine(), ModelDir: opts.ModelDir, Info: m.Info(),
		PromptLen: opts.PromptLen, DecodeLen: opts.DecodeLen, Repeats: opts.Repeats,
	}
	r := &runner{m: m, vocab: m.Config.Vocab, rng: rand.New(rand.NewPCG(opts.Seed, 1))}
	maxBatch := opts.Batch[len(opts.Batch)-1]
	r.caches = make([]*model.KVCache, maxBatch)
	for i := range r.caches {
		n := opts.DecodeLen + 1
		if i == 0 {
			n = max(n, opts.PromptLen+1)
		}
		r.caches[i] = m.NewKVCache(n)
	}
	r.logits = make([][]float32, maxBatch)
	for _, t := range opts.Threads {
		kernels.SetThreads(t)
		// Warm-up: touches every weight page and the thread pool once.
		if err := r.decode(1, 2); err != nil {
			return res, err
		}
		if opts.PromptLen > 0 {
			row, err := measure(opts, t, Prefill, 1, opts.PromptLen, func() error { return r.prefill(opts.PromptLen) })
			if err != nil {
				return res, err
			}
			res.Rows = append(res.Rows, row)
		}
		if opts.DecodeLen > 0 {
			for _, b := range opts.Batch {
				row, err := measure(opts, t, Decode, b, b*opts.DecodeLen, func() error { return r.decode(b, opts.DecodeLen) })
				if err != nil {
					return res, err
				}
				res.Rows = append(res.Rows, row)
			}
		}
	}
	return res, nil
}

// loadModel opens a model folder, or a GGUF file.
func loadModel(path string) (*model.Model, error) {
	var m *model.Model
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().IsRegular() {
		m, err = model.LoadGGUF(path)
	} else {
		m, err = model.Load(path)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return m, nil
}

// measure times fn opts.Repeats times and reports tokens/s.
func measure(opts Options, threads int, test Test, batch, tokens int, fn func() error) (Row, error) {
	tps := make([]float64, 0, opts.Repeats)
	for i := 0; i < opts.Repeats; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			return Row{}, fmt.Errorf("bench: %s batch %d, %d threads: %w", test, batch, threads, err)
		}
		v := float64(tokens) / time.Since(start).Seconds()
		tps = append(tps, v)
		fmt.Fprintf(opts.Progress, "threads %d %s batch %d run %d/%d: %.2f tokens/s\n", threads, test, batch, i+1, opts.Repeats, v)
	}
	sort.Float64s(tps)
	return Row{Threads: threads, Test: test, Batch: batch, Tokens: tokens,
		TPS: median(tps), Min: tps[0], Max: tps[len(tps)-1]}, nil
}

// median of sorted xs; the mean of the middle two for an even count.
func median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

type runner struct {
	m      *model.Model
	vocab  int
	rng    *rand.Rand
	caches []*model.KVCache
	logits [][]float32
	// depth tokens of context each prefill and single-stream decode start
	// from, computed once into base and copied (setDepth).
	depth int
	base  *model.KVCache
}

// setDepth makes the runner's prefill and single-stream decode start after
// depth tokens of random context, computed once here (untimed) and copied
// into the cache before each run.
func (r *runner) setDepth(depth int) error {
	if depth == 0 {
		return nil
	}
	r.depth = depth
	r.base = r.m.NewKVCache(depth)
	prompt := r.tokens(depth)
	for fed := 0; fed < depth; {
		k := min(PrefillChunk, depth-fed)
		if err := r.m.Forward([]model.SeqBatch{{Tokens: prompt[fed : fed+k], Cache: r.base}}, r.logits[:1]); err != nil {
			return err
		}
		fed += k
	}
	c := r.caches[0]
	c.SetMaxLen(c.MaxLen() + depth)
	return nil
}

// start empties cache i, or fills it with the depth context (cache 0).
func (r *runner) start(i int) error {
	c := r.caches[i]
	c.Reset()
	if i == 0 && r.depth > 0 {
		return c.CopyPrefix(r.base, r.depth)
	}
	return nil
}

func (r *runner) tokens(n int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(r.rng.IntN(r.vocab))
	}
	return t
}

// prefill feeds one sequence of n tokens in scheduler-sized chunks.
func (r *runner) prefill(n int) error {
	c := r.caches[0]
	if err := r.start(0); err != nil {
		return err
	}
	prompt := r.tokens(n)
	for fed := 0; fed < n; {
		k := min(PrefillChunk, n-fed)
		batch := []model.SeqBatch{{Tokens: prompt[fed : fed+k], Cache: c, WantLogits: fed+k == n}}
		if err := r.m.Forward(batch, r.logits[:1]); err != nil {
			return err
		}
		fed += k
	}
	return nil
}

// decode runs steps forward passes over b sequences, one token each.
func (r *runner) decode(b, steps int) error {
	batch := make([]model.SeqBatch, b)
	for i := range batch {
		if err := r.start(i); err != nil {
			return err
		}
		batch[i] = model.SeqBatch{Cache: r.caches[i], WantLogits: true}
	}
	toks := r.tokens(b * steps)
	for s := 0; s < steps; s++ {
		for i := range batch {
			batch[i].Tokens = toks[s*b+i : s*b+i+1]
		}
		if err := r.m.Forward(batch, r.logits[:b]); err != nil {
			return err
		}
	}
	return nil
}

// DescribeMachine reports the CPU model, core count and kernel features.
func DescribeMachine() Machine {
	return Machine{CPU: cpuModel(), Cores: runtime.NumCPU(), Features: kernels.Features(),
		OS: runtime.GOOS, Arch: runtime.GOARCH}
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "model name", "Model", "cpu model":
			if v := strings.TrimSpace(val); v != "" {
				return v
			}
		}
	}
	return "unknown"
}
