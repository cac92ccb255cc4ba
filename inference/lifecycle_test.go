package inference

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// slowConstraint allows every token but the end token and takes a while over
// each, so a generation runs long enough to unload its model under it.
type slowConstraint struct{ per time.Duration }

func (c slowConstraint) Mask(allowed []bool) {
	time.Sleep(c.per)
	for i := range allowed {
		allowed[i] = i != tinyEOS
	}
}
func (slowConstraint) Advance(int32) error { return nil }
func (slowConstraint) Finished() bool      { return false }

// slowRequest generates n tokens at about per each.
func slowRequest(n int, per time.Duration) GenerateRequest {
	return GenerateRequest{Prompt: []int32{'h', 'i'}, MaxTokens: n, Sampling: greedy(), Constraint: slowConstraint{per}}
}

// lifecycleEngine starts an engine over tiny models with the given ids.
func lifecycleEngine(t *testing.T, opts Options, ids ...string) *Engine {
	t.Helper()
	dir := t.TempDir()
	for _, id := range ids {
		writeTinyModelAs(t, dir, id)
	}
	opts.ModelsDir = dir
	opts.KVCacheMB = 4
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func mustLoad(t *testing.T, e *Engine, id string) *LoadedModel {
	t.Helper()
	lm, err := e.Load(context.Background(), id)
	if err != nil {
		t.Fatalf("loading %s: %v", id, err)
	}
	return lm
}

// startSlow starts a slow generation and waits until it is running.
func startSlow(t *testing.T, lm *LoadedModel, n int, per time.Duration) <-chan Event {
	t.Helper()
	ch, err := lm.Generate(context.Background(), slowRequest(n, per))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the generation to run", func() bool { return lm.Active() == 1 })
	return ch
}

func TestActive(t *testing.T) {
	e := lifecycleEngine(t, Options{MaxSequences: 1}, "a")
	lm := mustLoad(t, e, "a")
	if n := lm.Active(); n != 0 {
		t.Fatalf("fresh model: Active() = %d", n)
	}
	first := startSlow(t, lm, 100, 5*time.Millisecond)
	second, err := lm.Generate(context.Background(), slowRequest(5, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if n := lm.Active(); n != 2 {
		t.Errorf("one running and one queued: Active() = %d", n)
	}
	for _, ch := range []<-chan Event{first, second} {
		if r := collect(ch); r.err != nil || r.finish != "length" {
			t.Fatalf("stream ended with %q, %v", r.finish, r.err)
		}
	}
	waitFor(t, "Active to drop to 0", func() bool { return lm.Active() == 0 })
}

func TestUnloadWaitsForRunning(t *testing.T) {
	e := lifecycleEngine(t, Options{}, "a")
	lm := mustLoad(t, e, "a")
	const n = 40
	ch := startSlow(t, lm, n, 5*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- e.UnloadModel(context.Background(), "a", false) }()
	waitFor(t, "the drain to start", lm.Unloading)

	// New work is refused while the model drains.
	if _, err := lm.Generate(context.Background(), slowRequest(1, 0)); !errors.Is(err, ErrUnloading) || !errors.Is(err, ErrUnloaded) {
		t.Errorf("Generate while draining: %v, want ErrUnloading (wrapping ErrUnloaded)", err)
	}
	if _, err := e.Load(context.Background(), "a"); !errors.Is(err, ErrUnloading) {
		t.Errorf("Load while draining: %v, want ErrUnloading", err)
	}
	select {
	case err := <-done:
		t.Fatalf("unload returned (%v) while a generation was running", err)
	default:
	}

	r := collect(ch)
	if r.err != nil || r.finish != "length" || len(r.ids) != n {
		t.Errorf("drained stream: %d tokens, finish %q, err %v; want %d tokens, length", len(r.ids), r.finish, r.err, n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ids := e.Loaded(); len(ids) != 0 {
		t.Errorf("still loaded after unload: %v", ids)
	}
	if st := e.SchedulerStats(); st.KVBytesUsed != 0 || st.KVBytesFree != st.KVBytesTotal {
		t.Errorf("KV memory not returned: %+v", st)
	}
	// Afterwards the model loads again and serves.
	again := mustLoad(t, e, "a")
	if again == lm {
		t.Fatal("Load returned the unloaded model")
	}
	run(t, again, GenerateRequest{Prompt: []int32{'x'}, MaxTokens: 3, Sampling: greedy()})
}

func TestUnloadForceCuts(t *testing.T) {
	e := lifecycleEngine(t, Options{}, "a")
	lm := mustLoad(t, e, "a")
	const n = 1000
	ch := startSlow(t, lm, n, 5*time.Millisecond)
	start := time.Now()
	if err := e.UnloadModel(context.Background(), "a", true); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("force unload took %v", d)
	}
	r := collect(ch)
	if !errors.Is(r.err, ErrUnloaded) || errors.Is(r.err, ErrUnloading) || len(r.ids) >= n {
		t.Errorf("cut stream: %d tokens, err %v; want fewer than %d and ErrUnloaded", len(r.ids), r.err, n)
	}
	if ids := e.Loaded(); len(ids) != 0 {
		t.Errorf("still loaded: %v", ids)
	}
}

func TestUnloadTimeoutKeepsServing(t *testing.T) {
	e := lifecycleEngine(t, Options{UnloadTimeout: 50 * time.Millisecond}, "a")
	lm := mustLoad(t, e, "a")
	ch := startSlow(t, lm, 1000, 5*time.Millisecond)
	err := e.UnloadModel(context.Background(), "a", false)
	if !errors.Is(err, ErrModelBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unload of a busy model past its timeout: %v, want ErrModelBusy and DeadlineExceeded", err)
	}
	if e.LoadedModelByID("a") != lm || lm.Unloading() {
		t.Fatal("the model did not go back to serving")
	}
	run(t, lm, GenerateRequest{Prompt: []int32{'x'}, MaxTokens: 2, Sampling: greedy()})
	if err := e.UnloadModel(context.Background(), "a", true); err != nil {
		t.Fatal(err)
	}
	if r := collect(ch); !errors.Is(r.err, ErrUnloaded) {
		t.Errorf("stream after force unload: %v", r.err)
	}
}

func TestUnloadNotLoaded(t *testing.T) {
	e := lifecycleEngine(t, Options{}, "a")
	for _, force := range []bool{false, true} {
		if err := e.UnloadModel(context.Background(), "a", force); !errors.Is(err, ErrModelNotFound) {
			t.Errorf("force=%v: %v, want ErrModelNotFound", force, err)
		}
	}
}

func TestMaxLoadedModelsEvictsLRU(t *testing.T) {
	e := lifecycleEngine(t, Options{MaxLoadedModels: 2}, "a", "b", "c")
	a := mustLoad(t, e, "a")
	time.Sleep(2 * time.Millisecond)
	mustLoad(t, e, "b")
	time.Sleep(2 * time.Millisecond)
	run(t, a, GenerateRequest{Prompt: []int32{'x'}, MaxTokens: 2, Sampling: greedy()}) // a is now the most recent
	waitFor(t, "a to go idle", func() bool { return a.Active() == 0 })

	mustLoad(t, e, "c")
	if got := e.Loaded(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after loading c: %v, want [a c] (b least recently used)", got)
	}
	mustLoad(t, e, "b")
	if got := e.Loaded(); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("after loading b: %v, want [b c] (a least recently used)", got)
	}
}

func TestMaxLoadedModelsSkipsBusy(t *testing.T) {
	e := lifecycleEngine(t, Options{MaxLoadedModels: 2}, "a", "b", "c")
	a := mustLoad(t, e, "a") // least recently used, but busy
	time.Sleep(2 * time.Millisecond)
	b := mustLoad(t, e, "b")
	chA := startSlow(t, a, 1000, 5*time.Millisecond)

	mustLoad(t, e, "c")
	if got := e.Loaded(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after loading c: %v, want [a c] (a is busy, b idle)", got)
	}
	if _, err := b.Generate(context.Background(), slowRequest(1, 0)); !errors.Is(err, ErrUnloaded) {
		t.Errorf("Generate on the evicted model: %v, want ErrUnloaded", err)
	}

	c := e.LoadedModelByID("c")
	chC := startSlow(t, c, 1000, 5*time.Millisecond)
	_, err := e.Load(context.Background(), "b")
	if !errors.Is(err, ErrTooManyModels) {
		t.Fatalf("load with every model busy: %v, want ErrTooManyModels", err)
	}
	if got := e.Loaded(); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("a refused load changed the loaded set: %v", got)
	}
	for _, id := range []string{"a", "c"} {
		if err := e.UnloadModel(context.Background(), id, true); err != nil {
			t.Fatal(err)
		}
	}
	collect(chA)
	collect(chC)
	mustLoad(t, e, "b")
}

func TestIdleUnloadJanitor(t *testing.T) {
	const ttl = 150 * time.Millisecond
	e := lifecycleEngine(t, Options{IdleUnload: ttl}, "a", "b")
	a := mustLoad(t, e, "a")
	mustLoad(t, e, "b")
	// a stays busy for several TTLs; b has nothing to do.
	ch := startSlow(t, a, 120, 5*time.Millisecond)
	waitFor(t, "b to be unloaded", func() bool { return slices.Equal(e.Loaded(), []string{"a"}) })
	if r := collect(ch); r.err != nil {
		t.Fatalf("the busy model's stream: %v", r.err)
	}
	ended := time.Now()
	if e.LoadedModelByID("a") == nil {
		t.Fatal("a was unloaded while it was generating")
	}
	waitFor(t, "a to be unloaded", func() bool { return len(e.Loaded()) == 0 })
	if d := time.Since(ended); d < ttl/2 {
		t.Errorf("a was unloaded %v after its generation ended, want about %v", d, ttl)
	}
}

func TestUnloadIdleDirect(t *testing.T) {
	e := lifecycleEngine(t, Options{}, "a", "b")
	a := mustLoad(t, e, "a")
	mustLoad(t, e, "b")
	now := time.Now()
	if freed := e.unloadIdle(now, time.Hour); len(freed) != 0 {
		t.Errorf("nothing idle for an hour, freed %v", freed)
	}
	ch := startSlow(t, a, 1000, 5*time.Millisecond)
	freed := e.unloadIdle(now.Add(2*time.Hour), time.Hour)
	if !slices.Equal(freed, []string{"b"}) || !slices.Equal(e.Loaded(), []string{"a"}) {
		t.Errorf("freed %v, loaded %v; want b freed and busy a kept", freed, e.Loaded())
	}
	e.Unload("a")
	collect(ch)
}

func TestLifecycleOptions(t *testing.T) {
	for _, opts := range []Options{{MaxLoadedModels: -1}, {IdleUnload: -time.Second}, {UnloadTimeout: -time.Second}} {
		if _, err := New(opts); err == nil {
			t.Errorf("New(%+v) accepted a negative value", opts)
		}
	}
	e, err := New(Options{ModelsDir: t.TempDir(), KVCacheMB: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.Options().UnloadTimeout; got != DefaultUnloadTimeout {
		t.Errorf("default unload timeout %v, want %v", got, DefaultUnloadTimeout)
	}
}

// TestConcurrentLoads: many callers loading the same ids at once load each
// once and share it; a caller whose context ends stops waiting without
// cancelling the load for the others; the cap on loaded models holds when
// loads of different ids race.
func TestConcurrentLoads(t *testing.T) {
	e := lifecycleEngine(t, Options{MaxLoadedModels: 2}, "org/a", "org/b", "org/c")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Load(ctx, "org/a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("load with an ended context: %v", err)
	}
	type result struct {
		m   *LoadedModel
		err error
	}
	results := make(chan result, 20)
	for i := range 20 {
		go func() {
			m, err := e.Load(context.Background(), []string{"org/a", "org/b"}[i%2])
			results <- result{m, err}
		}()
	}
	seen := map[string]*LoadedModel{}
	for range 20 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if prev := seen[r.m.Info.ID]; prev != nil && prev != r.m {
			t.Fatalf("%s was loaded twice", r.m.Info.ID)
		}
		seen[r.m.Info.ID] = r.m
	}
	if got := e.Loaded(); !slices.Equal(got, []string{"org/a", "org/b"}) {
		t.Fatalf("loaded %v", got)
	}
	// A third model evicts the least recently used idle one: never three.
	seen["org/b"].touch()
	mustLoad(t, e, "org/c")
	if got := e.Loaded(); !slices.Equal(got, []string{"org/b", "org/c"}) {
		t.Fatalf("after loading a third: %v", got)
	}
	// A waiter that gives up does not cancel the load.
	ctx, cancel = context.WithTimeout(context.Background(), time.Microsecond)
	defer cancel()
	e.Load(ctx, "org/a")
	if m := mustLoad(t, e, "org/a"); m == nil || len(e.Loading()) != 0 {
		t.Fatalf("load after a waiter gave up: %v, loading %v", m, e.Loading())
	}
	if n := len(e.Loaded()); n != 2 {
		t.Fatalf("%d models loaded, cap 2", n)
	}
}

// TestIdleOnceAnswered: the moment a client has its final event, the model
// counts as idle, so the next request's load may evict it. Before, the count
// dropped a step later and such a load could fail with ErrTooManyModels
// (a 503) although nothing was running.
func TestIdleOnceAnswered(t *testing.T) {
	e := lifecycleEngine(t, Options{MaxLoadedModels: 1}, "a", "b")
	ids := []string{"a", "b"}
	for i := range 40 {
		lm := mustLoad(t, e, ids[i%2])
		ch, err := lm.Generate(context.Background(), GenerateRequest{Prompt: []int32{'x'}, MaxTokens: 1 + i%3, Sampling: greedy()})
		if err != nil {
			t.Fatal(err)
		}
		for ev := range ch {
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			if ev.Finish != "" {
				break
			}
		}
		if n := lm.Active(); n != 0 {
			t.Fatalf("round %d: %d active right after the final event", i, n)
		}
		if _, err := e.Load(context.Background(), ids[(i+1)%2]); err != nil {
			t.Fatalf("round %d: loading the other model after an answered request: %v", i, err)
		}
	}
}
