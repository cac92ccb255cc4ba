package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/bench"
	"github.com/impetusllm/impetus/inference/hub/hubtest"
	"github.com/impetusllm/impetus/inference/testutil"
)

// tinyGGUF reads the shared tiny GGUF model (skipping when ../shared is absent).
func tinyGGUF(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(testutil.SharedPath(t, "assets", "gguf-model", "llama-2-tiny-random.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// chatStatus posts a one-token request for model and returns its status,
// body and how long it took: a chat, or a completion for the tiny GGUF
// models (they ship no chat template).
func chatStatus(t *testing.T, base, key, model string) (response, time.Duration) {
	t.Helper()
	start := time.Now()
	code, raw := post(t, base+generatePath(model), key, generateBody(model))
	took := time.Since(start)
	r := response{status: code}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("chat on %s: body is not JSON: %q", model, raw)
	}
	return r, took
}

func generatePath(model string) string {
	if strings.Contains(model, "llama-mlx4") || strings.HasPrefix(model, "mlx-community/") {
		return "/v1/chat/completions"
	}
	return "/v1/completions"
}

func generateBody(model string) string {
	if generatePath(model) == "/v1/completions" {
		return fmt.Sprintf(`{"model":%q,"max_tokens":1,"prompt":"hi"}`, model)
	}
	return fmt.Sprintf(`{"model":%q,"max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`, model)
}

// doChat posts a one-token chat and keeps the answer's headers.
func doChat(t *testing.T, base, key, model string) response {
	t.Helper()
	req, _ := http.NewRequest("POST", base+generatePath(model), strings.NewReader(generateBody(model)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil {
		t.Fatalf("chat on %s: %v", model, err)
	}
	return r
}

func modelStatusOf(t *testing.T, base, key, id string) string {
	t.Helper()
	m := findModel(do(t, "GET", base+"/api/models/list", key), id)
	if m == nil {
		return ""
	}
	s, _ := m["status"].(string)
	return s
}

// TestLoadingThroughTheServer covers the loading promises of issue 17: a
// chat on a loaded model does not wait while another model loads, chats load
// through the checked path (events, memory check), symlinked models are
// listed and served, and a 404 tells how to get a model.
func TestLoadingThroughTheServer(t *testing.T) {
	tiny := tinyGGUF(t)
	models, elsewhere := t.TempDir(), t.TempDir()
	// The tiny model is a link to a file outside the models directory, and
	// a folder model is reached through a linked folder.
	os.WriteFile(filepath.Join(elsewhere, "tiny.gguf"), tiny, 0o644)
	os.MkdirAll(filepath.Join(models, "org"), 0o755)
	if err := os.Symlink(filepath.Join(elsewhere, "tiny.gguf"), filepath.Join(models, "org", "tiny.gguf")); err != nil {
		t.Fatal(err)
	}
	copyDir(t, testutil.Fixture(t, "dev-trained", "llama-mlx4"), filepath.Join(elsewhere, "shelf", "llama-mlx4"))
	os.Symlink(filepath.Join(elsewhere, "shelf"), filepath.Join(models, "shelf"))
	os.Symlink(models, filepath.Join(models, "org", "loop")) // a loop back to the root
	// A sparse 1 TiB weight file: refused by the memory check, chat or not.
	os.MkdirAll(filepath.Join(models, "org", "huge"), 0o755)
	os.WriteFile(filepath.Join(models, "org", "huge", "config.json"), []byte(`{"model_type":"llama"}`), 0o644)
	if f, err := os.Create(filepath.Join(models, "org", "huge", "model.safetensors")); err == nil {
		f.Truncate(1 << 40)
		f.Close()
	}
	// A ~530 MB model: Qwen2.5-0.5B's shape with random Q8_0 weights.
	made := time.Now()
	if err := bench.WriteRandomGGUF(filepath.Join(models, "big", "qwen.gguf"), bench.Qwen25_05B.LlamaArch(), "q8_0", 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote the big model in %v", time.Since(made).Round(time.Millisecond))

	base, _ := serveModels(t, models, func(cfg string) string {
		return strings.Replace(cfg, "\timpetus_api\n", "\timpetus_api\n\timpetus_events\n", 1)
	})
	const key = "secret"

	t.Run("symlinked models are listed and served", func(t *testing.T) {
		r := do(t, "GET", base+"/api/models/list", key)
		for _, id := range []string{"org/tiny", "shelf/llama-mlx4", "big/qwen", "org/huge"} {
			if findModel(r, id) == nil {
				t.Fatalf("%s is not listed: %v", id, r.body)
			}
		}
		if n := len(r.body["models"].([]any)); n != 4 {
			t.Fatalf("want 4 models (the loop adds none), got %d: %v", n, r.body)
		}
		if r, _ := chatStatus(t, base, key, "shelf/llama-mlx4"); r.status != 200 {
			t.Fatalf("chat on the model behind a linked folder: %d %v", r.status, r.body)
		}
	})

	t.Run("a chat loads through the checked path", func(t *testing.T) {
		events := dialModelEvents(t, base, key)
		if r, _ := chatStatus(t, base, key, "org/tiny"); r.status != 200 {
			t.Fatalf("first chat on org/tiny: %d %v", r.status, r.body)
		}
		events.waitFor(t, `"model_status"`, `"org/tiny"`, `"loading"`)
		r, _ := chatStatus(t, base, key, "org/huge")
		e, _ := r.body["error"].(map[string]any)
		if r.status != 507 || e == nil || !strings.Contains(e["message"].(string), "not enough memory") {
			t.Fatalf("chat on a model too big for memory: %d %v", r.status, r.body)
		}
	})

	t.Run("a chat on a loaded model does not wait for another load", func(t *testing.T) {
		_, normal := chatStatus(t, base, key, "org/tiny")
		done := make(chan response, 1)
		go func() { done <- apiPost(t, base+"/api/models/load", key, `{"model_id":"big/qwen"}`) }()
		deadline := time.Now().Add(20 * time.Second)
		for modelStatusOf(t, base, key, "big/qwen") != "loading" {
			if time.Now().After(deadline) {
				t.Fatal("big/qwen never showed as loading")
			}
			time.Sleep(5 * time.Millisecond)
		}
		r, took := chatStatus(t, base, key, "org/tiny")
		still := modelStatusOf(t, base, key, "big/qwen")
		load := <-done
		t.Logf("chat on org/tiny: %v alone, %v while big/qwen loaded (its load took %vs)", normal.Round(time.Millisecond), took.Round(time.Millisecond), load.body["load_time_seconds"])
		if r.status != 200 || load.status != 200 {
			t.Fatalf("chat %d %v, load %d %v", r.status, r.body, load.status, load.body)
		}
		if still != "loading" {
			t.Fatalf("the chat answered only once big/qwen had loaded (status %q after %v)", still, took)
		}
		if took > normal+time.Second {
			t.Fatalf("the chat took %v while another model loaded, %v alone", took, normal)
		}
	})

	t.Run("a 404 says how to get the model", func(t *testing.T) {
		r, _ := chatStatus(t, base, key, "mlx-community/Qwen2.5-0.5B-Instruct-4bit")
		e, _ := r.body["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if r.status != 404 || e["code"] != "model_not_found" || !strings.Contains(msg, "POST /api/models/download") || !strings.Contains(msg, "impetus pull mlx-community/Qwen2.5-0.5B-Instruct-4bit") {
			t.Fatalf("chat on a catalog model not on disk: %d %v", r.status, r.body)
		}
		r = apiPost(t, base+"/api/models/load", key, `{"model_id":"someorg/some-model"}`)
		assertSeedError(t, "load of a hub id not on disk", r, 404)
		if msg := r.body["error"].(string); !strings.Contains(msg, "/api/models/download") || !strings.Contains(msg, "impetus pull someorg/some-model") {
			t.Fatalf("load 404: %v", r.body)
		}
		r, _ = chatStatus(t, base, key, "no-such-model")
		e, _ = r.body["error"].(map[string]any)
		if r.status != 404 || strings.Contains(e["message"].(string), "pull") {
			t.Fatalf("an id that is no hub repository gets no download hint: %d %v", r.status, r.body)
		}
	})
}

// TestAutoDownload: with auto_download, a chat for a hub model not on disk
// fetches it (download_progress events) and answers; a download slower than
// auto_download_wait gets 503 with Retry-After while it goes on.
func TestAutoDownload(t *testing.T) {
	tiny := tinyGGUF(t)
	const commit = "0123456789abcdef0123456789abcdef01234567"
	fake := hubtest.New(
		&hubtest.Repo{ID: "huborg/tiny-GGUF", Commit: commit, Files: []hubtest.File{{Name: "tiny.gguf", Content: tiny, LFS: true}}},
		&hubtest.Repo{ID: "huborg/slow-GGUF", Commit: commit, Files: []hubtest.File{{Name: "tiny.gguf", Content: tiny, LFS: true}}},
	)
	defer fake.Close()
	models := t.TempDir()
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := siteConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, models, "key k secret", 1000)
	cfg = strings.Replace(cfg, "\timpetus_api\n", "\timpetus_api\n\timpetus_events\n", 1)
	cfg = strings.Replace(cfg, "\t\tmodels_dir ", "\t\tauto_download\n\t\tauto_download_wait 500ms\n\t\tmodels_dir ", 1)
	s := startServer(t, cfg, "HF_ENDPOINT="+fake.URL, "HF_TOKEN=", "HF_HUB_OFFLINE=")
	s.waitReady(base + "/api/health")
	const key = "secret"

	events := dialModelEvents(t, base, key)
	r, _ := chatStatus(t, base, key, "huborg/tiny-GGUF")
	if r.status != 200 {
		t.Fatalf("chat with auto_download: %d %v", r.status, r.body)
	}
	events.waitFor(t, `"download_progress"`, `"huborg/tiny-GGUF"`)
	if _, err := os.Stat(filepath.Join(models, "models--huborg--tiny-GGUF", "snapshots", commit, "tiny.gguf")); err != nil {
		t.Fatalf("the model did not land in the hub cache layout: %v", err)
	}

	fake.Throttle(5 * time.Millisecond) // ~2 s for the 1.7 MB file
	resp := doChat(t, base, key, "huborg/slow-GGUF")
	if e, _ := resp.body["error"].(map[string]any); resp.status != 503 || resp.header.Get("Retry-After") == "" || e == nil || !strings.Contains(e["message"].(string), "downloading") {
		t.Fatalf("chat while a slow download runs: %d %v %v", resp.status, resp.header, resp.body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for resp.status != 200 {
		if resp.status != 503 || time.Now().After(deadline) {
			t.Fatalf("chat after the download: %d %v", resp.status, resp.body)
		}
		time.Sleep(200 * time.Millisecond)
		resp = doChat(t, base, key, "huborg/slow-GGUF")
	}

	// Not a hub repository id: a plain 404, nothing fetched.
	if r, _ := chatStatus(t, base, key, "plain-name"); r.status != 404 {
		t.Fatalf("auto_download of a non-hub id: %d %v", r.status, r.body)
	}
}
