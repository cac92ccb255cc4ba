package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/bench"
	"github.com/impetusllm/impetus/inference/sample"
	"github.com/impetusllm/impetus/inference/testutil"
)

// tinyShape is a model small enough to build in a test: 4 KiB of KV per
// token, so a 1 MiB budget holds 256 tokens.
var tinyShape = bench.Shape{
	Name: "tiny", ModelType: "llama", Architecture: "LlamaForCausalLM",
	Hidden: 128, Intermediate: 256, Layers: 4, Heads: 4, KVHeads: 4, HeadDim: 32,
	Vocab: 320, ContextLength: 2048, RopeTheta: 10000, RMSNormEps: 1e-5, BOS: 1, EOS: []int{256},
}

const tinyEOS = 256

// writeTinyModel writes a random tiny model with a byte-level tokenizer
// (256 byte tokens and one end token) into dir/tiny.
func writeTinyModel(t testing.TB, dir string) { writeTinyModelAs(t, dir, "tiny") }

func writeTinyModelAs(t testing.TB, dir, name string) {
	t.Helper()
	md := filepath.Join(dir, name)
	if err := bench.MakeRandomModel(md, tinyShape, "bf16", 7); err != nil {
		t.Fatal(err)
	}
	writeByteTokenizer(t, md, tinyEOS)
}

// writeByteTokenizer writes a byte-level tokenizer (256 byte tokens and, for
// a small eos id, an end token) into a model folder.
func writeByteTokenizer(t testing.TB, md string, eos int) {
	t.Helper()
	vocab := map[string]int{}
	next := 256
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !(b >= 33 && b <= 126 || b >= 161 && b <= 172 || b >= 174) {
			r = rune(next)
			next++
		}
		vocab[string(r)] = b
	}
	tok := map[string]any{
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false},
		"decoder":       map[string]any{"type": "ByteLevel"},
	}
	if eos < 512 { // the tokenizer refuses ids far beyond its vocabulary
		tok["added_tokens"] = []map[string]any{{"id": eos, "content": "<|end|>", "special": true}}
	}
	b, _ := json.Marshal(tok)
	if err := os.WriteFile(filepath.Join(md, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(md, "tokenizer_config.json"), []byte(`{"eos_token":"<|end|>"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

var tinyDir struct {
	once sync.Once
	dir  string
	err  error
}

// tinyEngine starts an engine over the tiny model and loads it.
func tinyEngine(t testing.TB, opts Options) (*Engine, *LoadedModel) {
	t.Helper()
	tinyDir.once.Do(func() {
		tinyDir.dir, tinyDir.err = os.MkdirTemp("", "impetus-sched-test")
		if tinyDir.err == nil {
			writeTinyModel(t, tinyDir.dir)
		}
	})
	if tinyDir.err != nil {
		t.Fatal(tinyDir.err)
	}
	opts.ModelsDir = tinyDir.dir
	return startEngine(t, opts, "tiny")
}

func startEngine(t testing.TB, opts Options, id string) (*Engine, *LoadedModel) {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	lm, err := e.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e, lm
}

func greedy() sample.Params { return sample.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1} }

// result is one finished stream.
type result struct {
	ids    []int32
	text   string
	finish string
	cached int
	err    error
}

func collect(ch <-chan Event) result {
	var r result
	first := true
	for ev := range ch {
		if first {
			r.cached = ev.CachedTokens
			first = false
		}
		if ev.Err != nil {
			r.err = ev.Err
		}
		if ev.Finish != "" {
			r.finish = ev.Finish
		}
		if ev.HasToken && (ev.Err != nil || ev.Finish != "") {
			r.err = fmt.Errorf("a final event carries token %d", ev.Token)
		}
		if ev.HasToken && ev.Err == nil {
			r.ids = append(r.ids, ev.Token)
		}
		r.text += ev.Text
	}
	return r
}

func run(t testing.TB, lm *LoadedModel, req GenerateRequest) result {
	t.Helper()
	ch, err := lm.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r := collect(ch)
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r
}

func randomPrompt(r *rand.Rand, n int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(r.IntN(256))
	}
	return p
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func idle(e *Engine) func() bool {
	return func() bool {
		st := e.SchedulerStats()
		return st.Running == 0 && st.Queued == 0 && st.KVPagesUsed == 0
	}
}

// sameOutputs runs the requests one at a time on one engine and all at once
// on another and checks that each gets the same tokens.
func sameOutputs(t *testing.T, start func() (*Engine, *LoadedModel), reqs []GenerateRequest) {
	_, solo := start()
	want := make([]result, len(reqs))
	for i, req := range reqs {
		want[i] = run(t, solo, req)
	}
	e, lm := start()
	got := make([]result, len(reqs))
	chans := make([]<-chan Event, len(reqs))
	for i, req := range reqs {
		ch, err := lm.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		chans[i] = ch
	}
	var wg sync.WaitGroup
	for i, ch := range chans {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = collect(ch) }()
	}
	wg.Wait()
	total := 0
	for _, w := range want {
		total += len(w.ids)
	}
	if total < len(reqs)*2 {
		t.Fatalf("outputs too short to compare: %d tokens over %d requests", total, len(reqs))
	}
	for i := range reqs {
		if got[i].err != nil {
			t.Fatalf("request %d: %v", i, got[i].err)
		}
		if fmt.Sprint(got[i].ids) != fmt.Sprint(want[i].ids) || got[i].finish != want[i].finish {
			t.Errorf("request %d (prompt %d tokens): batched %v (%s), alone %v (%s)", i, len(reqs[i].Prompt), got[i].ids, got[i].finish, want[i].ids, want[i].finish)
		}
	}
	waitFor(t, "pages to return", idle(e))
}

func TestBatchedEqualsAlone(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var reqs []GenerateRequest
	for _, n := range []int{3, 40, 700, 17, 129, 1, 300} {
		reqs = append(reqs, GenerateRequest{Prompt: randomPrompt(r, n), MaxTokens: 24, Sampling: greedy()})
	}
	sameOutputs(t, func() (*Engine, *LoadedModel) { return tinyEngine(t, Options{KVCacheMB: 64}) }, reqs)
}

// TestPreemptionKeepsOutputs runs more work than the KV budget holds at once,
// so sequences wait or are paused and resumed; outputs must not change.
func TestPreemptionKeepsOutputs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var reqs []GenerateRequest
	for _, n := range []int{60, 90, 30, 120, 75, 10} {
		reqs = append(reqs, GenerateRequest{Prompt: randomPrompt(r, n), MaxTokens: 100, Sampling: greedy()})
	}
	var last *Engine
	sameOutputs(t, func() (*Engine, *LoadedModel) {
		e, lm := tinyEngine(t, Options{KVCacheMB: 1})
		last = e
		return e, lm
	}, reqs)
	if st := last.SchedulerStats(); st.Preemptions == 0 {
		t.Errorf("no sequence was preempted: %+v", st)
	} else {
		t.Logf("%d preemptions", st.Preemptions)
	}
}

func TestPrefixCache(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	prompt := randomPrompt(r, 100)
	e, lm := tinyEngine(t, Options{KVCacheMB: 64})
	cold := run(t, lm, GenerateRequest{Prompt: prompt, MaxTokens: 8, Sampling: greedy()})
	if cold.cached != 0 {
		t.Errorf("cold run reports %d cached tokens", cold.cached)
	}
	waitFor(t, "idle", idle(e))
	st := e.SchedulerStats()
	if st.PrefixMisses != 1 || st.PrefixHits != 0 || st.KVPagesCached == 0 {
		t.Fatalf("after a cold run: %+v", st)
	}
	// The same prompt again: all but its last token come from the cache.
	warm := run(t, lm, GenerateRequest{Prompt: prompt, MaxTokens: 8, Sampling: greedy()})
	if fmt.Sprint(warm.ids) != fmt.Sprint(cold.ids) {
		t.Errorf("cache hit gave %v, cold run %v", warm.ids, cold.ids)
	}
	if warm.cached != len(prompt)-1 {
		t.Errorf("cache hit reports %d cached tokens, want %d", warm.cached, len(prompt)-1)
	}
	// The next turn: the prompt extends the first turn's prompt and output.
	turn2 := append(append(append([]int32(nil), prompt...), cold.ids...), randomPrompt(r, 20)...)
	hot := run(t, lm, GenerateRequest{Prompt: turn2, MaxTokens: 8, Sampling: greedy()})
	if want := len(prompt) + len(cold.ids) - 1; hot.cached != want {
		t.Errorf("next turn reports %d cached tokens, want %d", hot.cached, want)
	}
	waitFor(t, "idle", idle(e))
	st = e.SchedulerStats()
	if st.PrefixHits != 2 || st.PrefixCachedTokens != uint64(warm.cached+hot.cached) {
		t.Errorf("stats after two hits: %+v", st)
	}
	_, fresh := tinyEngine(t, Options{KVCacheMB: 64})
	want := run(t, fresh, GenerateRequest{Prompt: turn2, MaxTokens: 8, Sampling: greedy()})
	if fmt.Sprint(hot.ids) != fmt.Sprint(want.ids) {
		t.Errorf("next turn from the cache gave %v, cold %v", hot.ids, want.ids)
	}
}

// TestPrefixEviction fills a small budget with cached conversations: old
// entries are evicted for new work and every request still runs.
func TestPrefixEviction(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	e, lm := tinyEngine(t, Options{KVCacheMB: 1})
	for i := 0; i < 10; i++ {
		run(t, lm, GenerateRequest{Prompt: randomPrompt(r, 80), MaxTokens: 10, Sampling: greedy()})
	}
	waitFor(t, "idle", idle(e))
	st := e.SchedulerStats()
	if st.KVBytesUsed+st.KVBytesCached > st.KVBytesTotal || st.KVBytesFree != st.KVBytesTotal-st.KVBytesCached {
		t.Errorf("accounting is off: %+v", st)
	}
	if n := st.Models[0].PrefixEntries; n == 0 || n >= 10 {
		t.Errorf("%d prefix entries after 10 conversations in a 256-token budget", n)
	}
}

func TestRefusals(t *testing.T) {
	_, lm := tinyEngine(t, Options{KVCacheMB: 1})
	cases := []struct {
		name string
		req  GenerateRequest
		want error
	}{
		{"over the budget", GenerateRequest{Prompt: make([]int32, 100), MaxTokens: 200}, ErrTooLarge},
		{"over the context", GenerateRequest{Prompt: make([]int32, 10), MaxTokens: 5000}, ErrContextOverflow},
	}
	for _, tc := range cases {
		if _, err := lm.Generate(context.Background(), tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := lm.MaxSequenceTokens(); got != 256 {
		t.Errorf("MaxSequenceTokens = %d, want 256", got)
	}
}

func TestQueueFull(t *testing.T) {
	e, lm := tinyEngine(t, Options{KVCacheMB: 64, MaxSequences: 1, MaxQueue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	long := GenerateRequest{Prompt: []int32{1, 2, 3}, MaxTokens: 1500, Sampling: greedy()}
	long.Sampling.LogitBias = map[int32]float32{tinyEOS: -100}
	a, err := lm.Generate(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a running sequence", func() bool { return e.SchedulerStats().Running == 1 })
	b, err := lm.Generate(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lm.Generate(ctx, long); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third request: %v, want ErrQueueFull", err)
	}
	if st := e.SchedulerStats(); st.Queued != 1 {
		t.Errorf("queued = %d, want 1", st.Queued)
	}
	cancel()
	for range a {
	}
	for range b {
	}
	waitFor(t, "pages to return", idle(e))
}

func TestCancelFreesPages(t *testing.T) {
	e, lm := tinyEngine(t, Options{KVCacheMB: 64})
	r := rand.New(rand.NewPCG(9, 10))
	var cancels []context.CancelFunc
	var chans []<-chan Event
	for i := 0; i < 6; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		req := GenerateRequest{Prompt: randomPrompt(r, 50+30*i), MaxTokens: 1000, Sampling: greedy()}
		req.Sampling.LogitBias = map[int32]float32{tinyEOS: -100}
		ch, err := lm.Generate(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		cancels, chans = append(cancels, cancel), append(chans, ch)
	}
	for _, ch := range chans {
		<-ch // every sequence has produced a token
	}
	if st := e.SchedulerStats(); st.KVPagesUsed == 0 || st.Running == 0 {
		t.Fatalf("nothing running: %+v", st)
	}
	for _, c := range cancels {
		c()
	}
	for _, ch := range chans {
		for range ch {
		}
	}
	waitFor(t, "pages to return after cancellation", idle(e))
	if st := e.SchedulerStats(); st.KVPagesCached != 0 {
		t.Errorf("cancelled sequences were cached: %+v", st)
	}
}

// TestKeyLimit checks admission: a key at its limit is passed over, keeping
// its place, while other keys run. It drives admit on a scheduler without
// its loop.
func TestKeyLimit(t *testing.T) {
	e, lm := tinyEngine(t, Options{KVCacheMB: 64, MaxConcurrentPerKey: 1, MaxSequences: 3})
	s := &scheduler{lm: lm, eng: e, pageBytes: lm.sched.pageBytes, prefix: newPrefixCache(), wake: make(chan struct{}, 1)}
	mk := func(key string) *sequence {
		return &sequence{ctx: context.Background(), req: GenerateRequest{Prompt: []int32{1, 2}, MaxTokens: 4, Key: key}, feed: []int32{1, 2}, maxLen: 6}
	}
	a1, a2, b1, a3 := mk("a"), mk("a"), mk("b"), mk("a")
	for _, q := range []*sequence{a1, a2, b1, a3} {
		s.waiting.push(q)
	}
	s.admit()
	if len(s.running) != 2 || s.running[0] != a1 || s.running[1] != b1 {
		t.Fatalf("running %d sequences, want a1 and b1", len(s.running))
	}
	if s.waiting.len() != 2 || s.waiting.items[0] != a2 {
		t.Fatalf("waiting queue lost its order")
	}
	s.retire(a1, false)
	s.admit()
	if len(s.running) != 2 || s.running[1] != a2 {
		t.Fatalf("a2 was not admitted after a1 finished")
	}
	for _, q := range append([]*sequence(nil), s.running...) {
		s.retire(q, false)
	}
	if s.pagesUsed.Load() != 0 {
		t.Errorf("%d pages still used", s.pagesUsed.Load())
	}
}

func TestShutdown(t *testing.T) {
	e, lm := tinyEngine(t, Options{KVCacheMB: 64})
	req := GenerateRequest{Prompt: []int32{5, 6, 7}, MaxTokens: 1500, Sampling: greedy()}
	req.Sampling.LogitBias = map[int32]float32{tinyEOS: -100}
	ch, err := lm.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	e.Close()
	if r := collect(ch); !errors.Is(r.err, ErrShuttingDown) {
		t.Errorf("running stream ended with %v, want ErrShuttingDown", r.err)
	}
	if _, err := lm.Generate(context.Background(), req); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Generate after Close: %v, want ErrShuttingDown", err)
	}
	if used, _ := e.kv.usage(); used != 0 {
		t.Errorf("%d KV bytes still taken after Close", used)
	}
}

// TestBatchedEqualsAloneTrained repeats the batching check on the trained
// reference model (real tokenizer, confident logits) with English prompts.
func TestBatchedEqualsAloneTrained(t *testing.T) {
	dir := testutil.Fixture(t, "dev-trained", "llama-mlx4")
	start := func() (*Engine, *LoadedModel) {
		return startEngine(t, Options{ModelsDir: filepath.Dir(dir), KVCacheMB: 64}, "llama-mlx4")
	}
	_, lm := start()
	var reqs []GenerateRequest
	for _, text := range []string{
		"Once upon a time",
		"The old house at the end of the street had been empty for years, and the children of the village told stories about it. One evening,",
		"She opened the door and",
		"It was a cold morning in the north. The river had frozen over during the night, and the ferryman, who had crossed it every day for forty years, stood on the bank and looked at the ice. He did not know what to do. His wife came out of the cottage and",
	} {
		reqs = append(reqs, GenerateRequest{Prompt: lm.Tokenizer.Encode(text, true), MaxTokens: 32, Sampling: greedy()})
	}
	sameOutputs(t, start, reqs)
}

// TestSoakPages is the engine-level soak: 200 requests from 16 goroutines on
// a budget too small for them all (so they queue, are preempted and evict the
// prefix cache), some cancelled mid-stream, some too large. Greedy outputs
// must equal the solo ones and, at the end, no page may be left in use.
func TestSoakPages(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	system := randomPrompt(r, 40)
	var prompts [][]int32
	for i := 0; i < 8; i++ {
		prompts = append(prompts, append(append([]int32(nil), system...), randomPrompt(r, 5+10*i)...))
	}
	mk := func(i int) GenerateRequest {
		req := GenerateRequest{Prompt: prompts[i%len(prompts)], MaxTokens: 30, Sampling: greedy(), Key: fmt.Sprint(i % 5)}
		if i%10 == 3 {
			req.MaxTokens = 1000 // fits the context, not the 1 MiB budget
		}
		return req
	}
	_, solo := tinyEngine(t, Options{KVCacheMB: 64})
	want := map[int]string{}
	for i, p := range prompts {
		want[i] = fmt.Sprint(run(t, solo, GenerateRequest{Prompt: p, MaxTokens: 30, Sampling: greedy()}).ids)
	}
	e, lm := tinyEngine(t, Options{KVCacheMB: 1, MaxSequences: 6, MaxQueue: 200, MaxConcurrentPerKey: 2})
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fails []string
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ctx, cancel := context.WithCancel(context.Background())
				ch, err := lm.Generate(ctx, mk(i))
				var got string
				switch {
				case i%10 == 3:
					if !errors.Is(err, ErrTooLarge) {
						got = fmt.Sprintf("error %v, want ErrTooLarge", err)
					}
				case err != nil:
					got = err.Error()
				case i%10 == 7:
					<-ch
					cancel()
					for range ch {
					}
				default:
					if res := collect(ch); res.err != nil || fmt.Sprint(res.ids) != want[i%len(prompts)] {
						got = fmt.Sprintf("got %v (%v), want %s", res.ids, res.err, want[i%len(prompts)])
					}
				}
				cancel()
				if got != "" {
					mu.Lock()
					fails = append(fails, fmt.Sprintf("request %d: %s", i, got))
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < 200; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, f := range fails {
		t.Error(f)
	}
	waitFor(t, "pages to return", idle(e))
	st := e.SchedulerStats()
	t.Logf("stats: hits %d, misses %d, cached tokens %d, preemptions %d, pages cached %d", st.PrefixHits, st.PrefixMisses, st.PrefixCachedTokens, st.Preemptions, st.KVPagesCached)
	if used, _ := e.kv.usage(); used != st.KVBytesCached {
		t.Errorf("%d KV bytes taken with nothing running, the prefix cache holds %d", used, st.KVBytesCached)
	}
}

// TestModelsShareBudget runs two models on one small budget at once: each
// takes memory as it needs and every request completes.
func TestModelsShareBudget(t *testing.T) {
	dir := t.TempDir()
	writeTinyModelAs(t, dir, "a")
	writeTinyModelAs(t, dir, "b")
	e, a := startEngine(t, Options{ModelsDir: dir, KVCacheMB: 1}, "a")
	b, err := e.Load(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(15, 16))
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		lm := []*LoadedModel{a, b}[i%2]
		req := GenerateRequest{Prompt: randomPrompt(r, 40+5*i), MaxTokens: 60, Sampling: greedy()}
		req.Sampling.LogitBias = map[int32]float32{tinyEOS: -100}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, err := lm.Generate(context.Background(), req)
			if err != nil {
				t.Error(err)
				return
			}
			if res := collect(ch); res.err != nil || len(res.ids) != 60 {
				t.Errorf("got %d tokens, %v", len(res.ids), res.err)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "pages to return", idle(e))
	st := e.SchedulerStats()
	if len(st.Models) != 2 || st.KVBytesUsed != 0 || st.KVBytesFree != st.KVBytesTotal-st.KVBytesCached {
		t.Errorf("stats: %+v", st)
	}
	if err := e.Unload("b"); err != nil {
		t.Fatal(err)
	}
	if st := e.SchedulerStats(); st.KVBytesFree != st.KVBytesTotal-st.KVBytesCached || len(st.Models) != 1 {
		t.Errorf("unloading did not return b's cached pages: %+v", st)
	}
}
