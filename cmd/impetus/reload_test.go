package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// reloadConfig is a site with the OpenAI API and (withAPI) the management
// API, no keys, and the given lines inside the global impetus block.
func reloadConfig(admin string, port int, models, options string, withAPI bool) string {
	api := "impetus_api"
	if !withAPI {
		api = ""
	}
	return fmt.Sprintf(`{
	admin %s
	default_bind 127.0.0.1
	grace_period 2s
	impetus {
		models_dir %s
		%s
	}
}

http://127.0.0.1:%d {
	impetus_openai
	%s
}
`, admin, models, options, port, api)
}

// loadConfig posts a Caddyfile to the admin API, as `impetus reload` does.
func loadConfig(t *testing.T, admin, cfg string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+admin+"/load", strings.NewReader(cfg))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = fmt.Fprint(&b, resp.Status)
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	return resp.StatusCode, b.String() + " " + string(buf[:n])
}

type engineStatus struct {
	Components struct {
		Engine struct {
			Threads         int            `json:"threads"`
			PerformanceMode string         `json:"performance_mode"`
			Settings        map[string]any `json:"settings"`
		} `json:"engine"`
		Models struct {
			Loaded       int `json:"loaded"`
			LoadedModels []struct {
				ID       string `json:"model_id"`
				LoadedAt string `json:"loaded_at"`
			} `json:"loaded_models"`
		} `json:"models"`
	} `json:"components"`
}

func readStatus(t *testing.T, base string) engineStatus {
	t.Helper()
	_, _, raw := getRaw(t, base+"/api/health/status", "")
	var st engineStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("status: %v: %s", err, raw)
	}
	return st
}

// TestReloadAppliesEveryOption changes each option of the impetus app by
// reload and observes its effect; the loaded models stay loaded (same
// loaded_at: not read from disk again).
func TestReloadAppliesEveryOption(t *testing.T) {
	models := t.TempDir()
	for _, id := range []string{"a", "b", "c"} {
		copyDir(t, testutil.Fixture(t, "dev-trained", "llama-mlx4"), filepath.Join(models, id))
	}
	port, adminPort := freePort(t), freePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	s := startServer(t, reloadConfig(admin, port, models, "threads 2\n\t\tactivations float", true))
	s.waitReady(base + "/api/health")

	// The seed's series are there from the first scrape.
	_, _, first := getRaw(t, base+"/api/metrics", "")
	for _, series := range []string{"impetus_requests_total", "impetus_tokens_generated_total"} {
		if v := metricValue(first, series); v != "0" {
			t.Errorf("first scrape: %s = %q, want 0", series, v)
		}
	}
	if metricValue(first, "impetus_cpu_usage_percent") == "" {
		t.Errorf("first scrape: impetus_cpu_usage_percent missing:\n%s", first)
	}
	if bin, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(bin, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(first))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool: %v\n%s", err, out)
		}
	}

	chat := func(model string, maxTokens int) int {
		code, _ := post(t, base+"/v1/chat/completions", "", fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}],"max_tokens":%d}`, model, maxTokens))
		return code
	}
	for _, id := range []string{"a", "b"} {
		if code := chat(id, 1); code != 200 {
			t.Fatalf("chat %s: %d", id, code)
		}
	}
	before := readStatus(t, base)
	if before.Components.Engine.Threads != 2 || before.Components.Engine.Settings["int8_activations"] != false {
		t.Fatalf("initial config not applied: %+v", before.Components.Engine)
	}

	// A reload that fails validation changes nothing, process-wide
	// settings included.
	if code, msg := loadConfig(t, admin, reloadConfig(admin, port, models, "threads 1\n\t\tsimd scalar\n\t\tactivations int8\n\t\tmax_queue 3\n\t\tmax_memory_percent 200", true)); code < 400 {
		t.Fatalf("an invalid config was accepted: %s", msg)
	}
	if st := readStatus(t, base); st.Components.Engine.Threads != 2 || st.Components.Engine.Settings["int8_activations"] != false ||
		st.Components.Engine.Settings["max_queue"] != float64(256) || st.Components.Engine.Settings["simd"] != before.Components.Engine.Settings["simd"] {
		t.Fatalf("a failed reload changed settings: %+v", st.Components.Engine)
	}

	opts := `threads 4
		simd scalar
		device cpu
		performance_mode efficiency
		activations int8
		kv_cache_mb 64
		kv_cache_type q8_0
		max_sequences 1
		max_batch_tokens 32
		max_queue 1
		max_concurrent_per_key 2
		max_loaded_models 1
		unload_timeout 7s`
	if code, msg := loadConfig(t, admin, reloadConfig(admin, port, models, opts, true)); code != 200 {
		t.Fatalf("reload: %s", msg)
	}
	st := readStatus(t, base)
	want := map[string]any{"kv_cache_mb": 64.0, "max_sequences": 1.0, "max_batch_tokens": 32.0, "max_queue": 1.0,
		"max_concurrent_per_key": 2.0, "max_loaded_models": 1.0, "unload_timeout_seconds": 7.0, "threads": 2.0,
		"simd": "scalar", "device": "cpu", "kv_cache_type": "q8_0"}
	for k, v := range want {
		if st.Components.Engine.Settings[k] != v {
			t.Errorf("after reload %s = %v, want %v", k, st.Components.Engine.Settings[k], v)
		}
	}
	if st.Components.Engine.Threads != 2 || st.Components.Engine.PerformanceMode != "efficiency" {
		t.Errorf("threads %d (want 4 halved by efficiency), mode %s", st.Components.Engine.Threads, st.Components.Engine.PerformanceMode)
	}
	if _, _, m := getRaw(t, base+"/api/metrics", ""); metricValue(m, "impetus_compute_threads") != "2" ||
		metricValue(m, `impetus_kv_cache_bytes{state="free"}`) == "" {
		t.Errorf("metrics after reload: threads %q", metricValue(m, "impetus_compute_threads"))
	}
	// At the scalar level there is no int8 path, so the setting reads false.
	if st.Components.Engine.Settings["int8_activations"] != false {
		t.Errorf("int8 activations on at simd scalar")
	}
	if fmt.Sprint(st.Components.Models.LoadedModels) != fmt.Sprint(before.Components.Models.LoadedModels) {
		t.Fatalf("the reload reloaded models: %v, was %v", st.Components.Models.LoadedModels, before.Components.Models.LoadedModels)
	}

	// max_queue 1 with max_sequences 1: of several long requests at once,
	// some get 429.
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Go(func() { codes[i] = chat("a", 200) })
	}
	wg.Wait()
	n429 := 0
	for _, c := range codes {
		if c == http.StatusTooManyRequests {
			n429++
		} else if c != 200 {
			t.Errorf("concurrent chat: %d", c)
		}
	}
	if n429 == 0 {
		t.Errorf("no 429 at max_queue 1: %v", codes)
	}

	// max_loaded_models 1: loading c unloads the idle a and b.
	if code := chat("c", 1); code != 200 {
		t.Fatalf("chat c: %d", code)
	}
	if st := readStatus(t, base); st.Components.Models.Loaded != 1 || st.Components.Models.LoadedModels[0].ID != "c" {
		t.Fatalf("after loading c at max_loaded_models 1: %+v", st.Components.Models)
	}

	// idle_unload by reload: c goes once idle.
	if code, msg := loadConfig(t, admin, reloadConfig(admin, port, models, "idle_unload 300ms", true)); code != 200 {
		t.Fatalf("reload: %s", msg)
	}
	deadline := time.Now().Add(10 * time.Second)
	for readStatus(t, base).Components.Models.Loaded != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle_unload set by reload did not unload the idle model")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestThreadsWithoutAPI: threads and performance_mode apply with no
// impetus_api in the config; Caddy's admin /metrics shows the pool's size.
func TestThreadsWithoutAPI(t *testing.T) {
	models := t.TempDir()
	port, adminPort := freePort(t), freePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	s := startServer(t, reloadConfig(admin, port, models, "threads 3", false))
	s.waitReady(fmt.Sprintf("http://127.0.0.1:%d/v1/models", port))
	threads := func() string {
		_, _, m := getRaw(t, "http://"+admin+"/metrics", "")
		return metricValue(m, "impetus_compute_threads")
	}
	if got := threads(); got != "3" {
		t.Fatalf("impetus_compute_threads = %q, want 3", got)
	}
	if code, msg := loadConfig(t, admin, reloadConfig(admin, port, models, "threads 4\n\t\tperformance_mode efficiency", false)); code != 200 {
		t.Fatalf("reload: %s", msg)
	}
	if got := threads(); got != "2" {
		t.Fatalf("after reload impetus_compute_threads = %q, want 2", got)
	}
}
