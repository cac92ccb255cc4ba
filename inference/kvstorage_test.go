package inference

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/impetusllm/impetus/inference/bench"
	"github.com/impetusllm/impetus/inference/model"
)

// TestKVCacheType: Options.KVCacheType sets the KV storage of models loaded
// after it, the scheduler's KV pages count that storage at its real size
// (34 bytes per 32 values for q8_0), a q8_0 model generates, a model whose
// head size is not a multiple of 32 keeps f16 with a log line, and a bad
// value is refused.
func TestKVCacheType(t *testing.T) {
	var mu sync.Mutex
	var logs []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, fmt.Sprintf(format, args...))
	}
	e := lifecycleEngine(t, Options{KVCacheType: "q8_0", Logf: logf}, "a")
	h16 := tinyShape
	h16.Hidden, h16.HeadDim = 64, 16
	md := filepath.Join(e.o().ModelsDir, "h16")
	if err := bench.MakeRandomModel(md, h16, "bf16", 7); err != nil {
		t.Fatal(err)
	}
	writeByteTokenizer(t, md, tinyEOS)

	a := mustLoad(t, e, "a")
	kvDim := tinyShape.KVHeads * tinyShape.HeadDim
	if got := a.model.KVStorage(); got != model.KVQ8 {
		t.Fatalf("storage %v, want q8_0", got)
	}
	if want := int64(pageTokens * tinyShape.Layers * 2 * kvDim / 32 * 34); a.sched.pageBytes != want {
		t.Errorf("page bytes %d, want %d", a.sched.pageBytes, want)
	}
	ch, err := a.Generate(context.Background(), GenerateRequest{Prompt: []int32{'h', 'i'}, MaxTokens: 40, Sampling: greedy()})
	if err != nil {
		t.Fatal(err)
	}
	if r := collect(ch); r.err != nil || r.finish == "" {
		t.Fatalf("generation with a q8_0 cache: %+v", r)
	}

	h := mustLoad(t, e, "h16")
	if got := h.model.KVStorage(); got != model.KVF16 {
		t.Errorf("head size 16: storage %v, want f16", got)
	}
	mu.Lock()
	found := strings.Contains(strings.Join(logs, "\n"), "model h16: q8_0 KV cache needs a head size that is a multiple of 32")
	mu.Unlock()
	if !found {
		t.Errorf("no log line for the f16 fallback: %q", logs)
	}

	opts := e.Options()
	opts.KVCacheType = "f32"
	if err := e.Reconfigure(opts); err != nil {
		t.Fatal(err)
	}
	if a.model.KVStorage() != model.KVQ8 {
		t.Error("Reconfigure changed a loaded model's storage")
	}
	if err := e.Unload("a"); err != nil {
		t.Fatal(err)
	}
	if got := mustLoad(t, e, "a").model.KVStorage(); got != model.KVF32 {
		t.Errorf("after reload with f32: storage %v", got)
	}

	opts.KVCacheType = "q4_0"
	if err := e.Reconfigure(opts); err == nil || !strings.Contains(err.Error(), "f16, f32 or q8_0") {
		t.Errorf("Reconfigure with kv cache type q4_0: %v", err)
	}
	if _, err := New(Options{ModelsDir: t.TempDir(), KVCacheType: "int8"}); err == nil {
		t.Error("New accepted kv cache type int8")
	}
}
