package models

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/testutil"
)

// slowConstraint keeps a generation going (no end token) at about per a
// token, so an unload can happen while it runs.
type slowConstraint struct {
	per time.Duration
	eos map[int32]bool
}

func (c slowConstraint) Mask(allowed []bool) {
	time.Sleep(c.per)
	for i := range allowed {
		allowed[i] = !c.eos[int32(i)]
	}
}
func (slowConstraint) Advance(int32) error { return nil }
func (slowConstraint) Finished() bool      { return false }

// unloadEngine starts an engine over copies of the dev-random llama-mlx4
// fixture (ids "org/llama-mlx4" and "org/second") and loads the first.
func unloadEngine(t *testing.T, opts inference.Options) (*inference.Engine, *inference.LoadedModel, *Manager) {
	t.Helper()
	src := testutil.Fixture(t, "dev-random", "llama-mlx4")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"llama-mlx4", "second"} {
		dst := filepath.Join(dir, "org", name)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	opts.ModelsDir, opts.KVCacheMB = dir, 16
	eng, err := inference.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	lm, err := eng.Load(context.Background(), "org/llama-mlx4")
	if err != nil {
		t.Fatal(err)
	}
	return eng, lm, NewManager(eng, func(string, any) {})
}

// startSlow starts a generation of n tokens at about per each.
func startSlow(t *testing.T, lm *inference.LoadedModel, n int, per time.Duration) <-chan inference.Event {
	t.Helper()
	eos := map[int32]bool{}
	for _, id := range lm.EOS() {
		eos[id] = true
	}
	req := inference.GenerateRequest{Prompt: []int32{1, 2, 3}, MaxTokens: n, Constraint: slowConstraint{per, eos}}
	req.Sampling.TopP, req.Sampling.RepetitionPenalty = 1, 1
	ch, err := lm.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for lm.Active() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the generation never started")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return ch
}

// drain reads a stream to its end: the tokens and the error, if any.
func drain(ch <-chan inference.Event) (tokens int, finish string, err error) {
	for ev := range ch {
		if ev.Err != nil {
			err = ev.Err
		} else if ev.HasToken {
			tokens++
		}
		if ev.Finish != "" {
			finish = ev.Finish
		}
	}
	return
}

func postUnload(m *Manager, body string) (int, map[string]any) {
	rec := httptest.NewRecorder()
	m.unload(rec, httptest.NewRequest("POST", "/api/models/unload", strings.NewReader(body)))
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func TestUnloadWaitsWithoutForce(t *testing.T) {
	eng, lm, m := unloadEngine(t, inference.Options{})
	const n = 60
	ch := startSlow(t, lm, n, 5*time.Millisecond)
	type answer struct {
		code int
		body map[string]any
		at   time.Time
	}
	done := make(chan answer, 1)
	go func() {
		code, body := postUnload(m, `{"model_id":"org/llama-mlx4"}`)
		done <- answer{code, body, time.Now()}
	}()
	for !lm.Unloading() {
		time.Sleep(time.Millisecond)
	}
	if _, _, err := m.LoadChecked(context.Background(), "org/llama-mlx4"); err == nil || err.(*LoadError).status != http.StatusServiceUnavailable {
		t.Errorf("load while unloading: %v, want 503", err)
	}
	tokens, finish, err := drain(ch)
	ended := time.Now()
	if err != nil || finish != "length" || tokens != n {
		t.Errorf("the running request: %d tokens, finish %q, err %v; want it to complete", tokens, finish, err)
	}
	a := <-done
	if a.code != http.StatusOK || a.body["active_requests"] != 1.0 || a.body["force"] != false {
		t.Fatalf("unload: %d %v", a.code, a.body)
	}
	if a.at.Before(ended) {
		t.Errorf("unload answered %v before the request ended", ended.Sub(a.at))
	}
	if ids := eng.Loaded(); len(ids) != 0 {
		t.Errorf("still loaded: %v", ids)
	}
}

func TestUnloadForceEndsStreams(t *testing.T) {
	eng, lm, m := unloadEngine(t, inference.Options{})
	const n = 500
	ch := startSlow(t, lm, n, 10*time.Millisecond)
	code, body := postUnload(m, `{"model_id":"org/llama-mlx4","force":true}`)
	if code != http.StatusOK || body["force"] != true {
		t.Fatalf("force unload: %d %v", code, body)
	}
	if tokens, _, err := drain(ch); !errors.Is(err, inference.ErrUnloaded) || tokens >= n {
		t.Errorf("cut stream: %d tokens, err %v; want ErrUnloaded early", tokens, err)
	}
	if ids := eng.Loaded(); len(ids) != 0 {
		t.Errorf("still loaded: %v", ids)
	}
	if code, _ := postUnload(m, `{"model_id":"org/llama-mlx4"}`); code != http.StatusNotFound {
		t.Errorf("second unload: %d, want 404", code)
	}
}

func TestUnloadBusyPastTimeout(t *testing.T) {
	eng, lm, m := unloadEngine(t, inference.Options{UnloadTimeout: 50 * time.Millisecond})
	ch := startSlow(t, lm, 500, 10*time.Millisecond)
	code, body := postUnload(m, `{"model_id":"org/llama-mlx4"}`)
	if code != http.StatusConflict {
		t.Fatalf("unload of a busy model past its timeout: %d %v, want 409", code, body)
	}
	if eng.LoadedModelByID("org/llama-mlx4") != lm || lm.Unloading() {
		t.Fatal("the model did not go back to serving")
	}
	if code, _ := postUnload(m, `{"model_id":"org/llama-mlx4","force":true}`); code != http.StatusOK {
		t.Fatalf("force unload: %d", code)
	}
	drain(ch)
}

func TestLoadPastMaxLoadedModels(t *testing.T) {
	eng, lm, m := unloadEngine(t, inference.Options{MaxLoadedModels: 1})
	ch := startSlow(t, lm, 500, 10*time.Millisecond)
	_, _, err := m.LoadChecked(context.Background(), "org/second")
	var le *LoadError
	if !errors.As(err, &le) || le.status != http.StatusServiceUnavailable || !strings.Contains(le.msg, "too many models") {
		t.Fatalf("load with the only slot busy: %v, want 503 too many models", err)
	}
	eng.Unload("org/llama-mlx4")
	drain(ch)
	if _, _, err := m.LoadChecked(context.Background(), "org/second"); err != nil {
		t.Fatalf("load once the slot is free: %v", err)
	}
}
