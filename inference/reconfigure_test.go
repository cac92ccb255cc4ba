package inference

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/kernels"
)

// Reconfigure applies every option to the running engine: the loaded model
// stays (no second read from disk), a running sequence finishes, and the new
// bounds hold at once.
func TestReconfigureLive(t *testing.T) {
	e := lifecycleEngine(t, Options{MaxQueue: 4}, "a", "b", "c")
	a := mustLoad(t, e, "a")
	running := startSlow(t, a, 40, 5*time.Millisecond)
	waitFor(t, "the sequence to be admitted", func() bool { return e.SchedulerStats().Running == 1 })
	threads := kernels.Threads()
	t.Cleanup(func() { kernels.SetThreads(threads) })

	opts := e.Options()
	opts.MaxQueue, opts.MaxSequences, opts.MaxBatchTokens = 1, 1, 64
	opts.MaxConcurrentPerKey, opts.MaxLoadedModels = 3, 1
	opts.IdleUnload, opts.UnloadTimeout, opts.KVCacheMB, opts.Threads = time.Hour, 2*time.Second, 8, 1
	if err := e.Reconfigure(opts); err != nil {
		t.Fatal(err)
	}
	got := e.Options()
	if got.MaxQueue != 1 || got.MaxSequences != 1 || got.MaxBatchTokens != 64 || got.MaxConcurrentPerKey != 3 ||
		got.MaxLoadedModels != 1 || got.IdleUnload != time.Hour || got.UnloadTimeout != 2*time.Second || got.KVCacheMB != 8 || got.Threads != 1 {
		t.Fatalf("options after Reconfigure: %+v", got)
	}
	if kernels.Threads() != 1 {
		t.Fatalf("kernel threads %d, want 1", kernels.Threads())
	}
	if st := e.SchedulerStats(); st.KVBytesTotal != 8<<20 {
		t.Fatalf("KV budget %d, want %d", st.KVBytesTotal, 8<<20)
	}
	if e.LoadedModelByID("a") != a {
		t.Fatal("the loaded model was replaced")
	}
	// One sequence runs (max_sequences 1), one more may wait (max_queue 1),
	// the next gets ErrQueueFull.
	q1, err := a.Generate(context.Background(), slowRequest(2, time.Millisecond))
	if err != nil {
		t.Fatalf("queued request: %v", err)
	}
	if _, err := a.Generate(context.Background(), slowRequest(2, time.Millisecond)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("over the new queue bound: %v, want ErrQueueFull", err)
	}
	if r := collect(running); r.err != nil || r.finish == "" {
		t.Fatalf("the running sequence did not finish cleanly: %+v", r)
	}
	if r := collect(q1); r.err != nil {
		t.Fatalf("queued request: %v", r.err)
	}
	// max_loaded_models 1: loading b evicts a (idle now).
	mustLoad(t, e, "b")
	if ids := e.Loaded(); len(ids) != 1 || ids[0] != "b" {
		t.Fatalf("loaded after the new cap: %v, want [b]", ids)
	}
	// idle_unload lowered: the janitor rereads it.
	opts.IdleUnload, opts.MaxLoadedModels = 50*time.Millisecond, 0
	if err := e.Reconfigure(opts); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.Loaded()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ids := e.Loaded(); len(ids) != 0 {
		t.Fatalf("idle_unload set by Reconfigure did not unload: %v", ids)
	}
}

func TestReconfigureRefuses(t *testing.T) {
	e := lifecycleEngine(t, Options{}, "a")
	before := e.Options()
	bad := []Options{
		{ModelsDir: t.TempDir()},
		{ModelsDir: before.ModelsDir, MaxQueue: -1},
		{ModelsDir: before.ModelsDir, MaxSequences: 64, MaxBatchTokens: 8},
		{ModelsDir: before.ModelsDir, Threads: -2},
	}
	for _, o := range bad {
		if err := e.Reconfigure(o); err == nil {
			t.Errorf("Reconfigure(%+v) accepted", o)
		}
	}
	if after := e.Options(); after.MaxQueue != before.MaxQueue || after.MaxSequences != before.MaxSequences || after.MaxBatchTokens != before.MaxBatchTokens || after.Threads != before.Threads {
		t.Fatalf("a refused Reconfigure changed the options: %+v, was %+v", after, before)
	}
}

// TestLivenessStalledStep stalls a step inside the forward pass: the engine
// stays alive while idle, turns dead once the step outlasts maxAge, and
// alive again when the step ends.
func TestLivenessStalledStep(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	hook := func() {
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
	}
	e := lifecycleEngine(t, Options{}, "a")
	a := mustLoad(t, e, "a")
	time.Sleep(60 * time.Millisecond)
	if !e.Alive(50 * time.Millisecond) {
		t.Fatal("an idle engine reported dead")
	}
	stepHook.Store(&hook)
	t.Cleanup(func() { stepHook.Store(nil) })
	ch, err := a.Generate(context.Background(), slowRequest(3, 0))
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	time.Sleep(100 * time.Millisecond)
	if e.Alive(50 * time.Millisecond) {
		t.Fatal("a step stalled for 100ms reported alive with maxAge 50ms")
	}
	if !e.Alive(time.Minute) {
		t.Fatal("a step stalled for 100ms reported dead with maxAge 1m")
	}
	close(release)
	if r := collect(ch); r.err != nil {
		t.Fatal(r.err)
	}
	if !e.Alive(50 * time.Millisecond) {
		t.Fatal("the engine stayed dead after the step ended")
	}
	e.Close()
	if e.Alive(time.Hour) {
		t.Fatal("a closed engine reported alive")
	}
}
