package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/impetusllm/impetus/inference/hub/hubtest"
	"github.com/impetusllm/impetus/inference/testutil"
)

// hubRepoFromDir publishes a model folder as a fake hub repository, weights
// as LFS files (served through a redirect), the rest as git files.
func hubRepoFromDir(t *testing.T, id, commit, dir string) *hubtest.Repo {
	t.Helper()
	repo := &hubtest.Repo{ID: id, Commit: commit}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "reference.json" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		repo.Files = append(repo.Files, hubtest.File{Name: e.Name(), Content: data, LFS: strings.HasSuffix(e.Name(), ".safetensors")})
	}
	repo.Files = append(repo.Files, hubtest.File{Name: "README.md", Content: []byte("# test model\n")})
	return repo
}

// apiPost posts a JSON body and decodes the JSON answer.
func apiPost(t *testing.T, url, key, body string) response {
	t.Helper()
	code, raw := post(t, url, key, body)
	r := response{status: code}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("POST %s: body is not JSON: %q", url, raw)
		}
	}
	return r
}

// assertSeedError checks the /api error shape.
func assertSeedError(t *testing.T, what string, r response, status int) {
	t.Helper()
	_, hasDetails := r.body["details"].([]any)
	if r.status != status || r.body["error"] == nil || r.body["type"] == nil || !hasDetails || r.body["timestamp"] == nil {
		t.Fatalf("%s: got %d %v, want %d in the seed error shape", what, r.status, r.body, status)
	}
}

func findModel(r response, id string) map[string]any {
	models, _ := r.body["models"].([]any)
	for _, m := range models {
		if mm := m.(map[string]any); mm["model_id"] == id {
			return mm
		}
	}
	return nil
}

// waitDownload polls a download until it leaves the running states and
// returns the distinct byte counts seen on the way.
func waitDownload(t *testing.T, base, key, id string) (response, []float64) {
	t.Helper()
	var seen []float64
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := do(t, "GET", base+"/api/models/download/"+id, key)
		if r.status != 200 {
			t.Fatalf("download status: %d %v", r.status, r.body)
		}
		b, _ := r.body["downloaded_bytes"].(float64)
		if len(seen) == 0 || seen[len(seen)-1] != b {
			seen = append(seen, b)
		}
		switch r.body["status"] {
		case "completed", "failed", "cancelled":
			return r, seen
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("download %s did not finish", id)
	return response{}, nil
}

func TestModelManagementThroughTheServer(t *testing.T) {
	fixture := testutil.Fixture(t, "dev-trained", "llama-mlx4")
	var ref reference
	raw, err := os.ReadFile(filepath.Join(fixture, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &ref)

	models := t.TempDir()
	copyDir(t, fixture, filepath.Join(models, "org", "llama-mlx4"))
	ggufData, err := os.ReadFile(testutil.SharedPath(t, "assets", "gguf-model", "llama-2-tiny-random.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(models, "org", "tiny.gguf"), ggufData, 0o644)
	// A sparse 1 TiB weight file: listed at its size, refused before loading.
	os.MkdirAll(filepath.Join(models, "org", "huge"), 0o755)
	os.WriteFile(filepath.Join(models, "org", "huge", "config.json"), []byte(`{"model_type":"llama"}`), 0o644)
	if f, err := os.Create(filepath.Join(models, "org", "huge", "model.safetensors")); err == nil {
		f.Truncate(1 << 40)
		f.Close()
	}
	const commit = "89abcdef0123456789abcdef0123456789abcdef"
	bad := hubRepoFromDir(t, "huborg/corrupt", commit, fixture)
	private := hubRepoFromDir(t, "huborg/private", commit, fixture)
	private.Private = true
	ggufRepo := &hubtest.Repo{ID: "huborg/tiny-GGUF", Commit: commit, Files: []hubtest.File{
		{Name: "tiny-Q4_K_M.gguf", Content: ggufData, LFS: true},
		{Name: "tiny-Q8_0.gguf", Content: append(append([]byte(nil), ggufData...), 0), LFS: true},
	}}
	fake := hubtest.New(ggufRepo, hubRepoFromDir(t, "huborg/tiny-llama", commit, fixture), hubRepoFromDir(t, "huborg/slow", commit, fixture), bad, private)
	defer fake.Close()
	fake.Token = "hub-secret"

	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := strings.Replace(siteConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, models, "key k secret", 1000), "\timpetus_api\n", "\timpetus_api\n\timpetus_events\n", 1)
	s := startServer(t, cfg,
		"HF_ENDPOINT="+fake.URL, "HF_TOKEN=", "HF_HUB_OFFLINE=")
	s.waitReady(base + "/api/health")
	const key = "secret"

	t.Run("list, load, unload a local model", func(t *testing.T) {
		r := do(t, "GET", base+"/api/models/list", key)
		m := findModel(r, "org/llama-mlx4")
		if r.status != 200 || m == nil || m["status"] != "available" || m["format"] != "MLX" || m["architecture"] != "llama" || m["quantization"] != "MLX 4-bit g64" || m["size_mb"].(float64) <= 0 {
			t.Fatalf("list: %d %v", r.status, r.body)
		}
		if g := findModel(r, "org/tiny"); g == nil || g["format"] != "GGUF" || g["architecture"] != "llama" || g["parameters_count"].(float64) <= 0 || g["quantization"] == nil {
			t.Fatalf("GGUF entry: %v", g)
		}
		if r.body["available_memory_mb"] == nil || r.body["total_memory_usage_mb"] != 0.0 {
			t.Fatalf("list totals: %v", r.body)
		}
		r = apiPost(t, base+"/api/models/load", key, `{"model_id":"org/llama-mlx4"}`)
		if r.status != 200 || r.body["status"] != "success" {
			t.Fatalf("load: %d %v", r.status, r.body)
		}
		r = apiPost(t, base+"/api/models/load", key, `{"model_id":"org/llama-mlx4"}`)
		if r.status != 200 || r.body["status"] != "already_loaded" {
			t.Fatalf("second load: %d %v", r.status, r.body)
		}
		r = do(t, "GET", base+"/api/models/list", key)
		m = findModel(r, "org/llama-mlx4")
		if m["status"] != "loaded" || m["memory_usage_mb"].(float64) <= 0 || m["load_time_seconds"] == nil || m["last_used"] == nil || m["parameters"] == nil {
			t.Fatalf("loaded entry: %v", m)
		}
		n := 0
		for _, x := range r.body["models"].([]any) {
			if x.(map[string]any)["model_id"] == "org/llama-mlx4" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("the model is listed %d times", n)
		}
		r = apiPost(t, base+"/api/models/load", key, `{"model_id":"org/llama-mlx4","force_reload":true}`)
		if r.status != 200 || r.body["status"] != "success" {
			t.Fatalf("force reload: %d %v", r.status, r.body)
		}
		r = apiPost(t, base+"/api/models/unload", key, `{"model_id":"org/llama-mlx4"}`)
		if r.status != 200 || r.body["status"] != "success" {
			t.Fatalf("unload: %d %v", r.status, r.body)
		}
		assertSeedError(t, "second unload", apiPost(t, base+"/api/models/unload", key, `{"model_id":"org/llama-mlx4"}`), 404)
		assertSeedError(t, "load absent", apiPost(t, base+"/api/models/load", key, `{"model_id":"org/absent"}`), 404)
		r = apiPost(t, base+"/api/models/load", key, `{"model_id":"org/huge"}`)
		assertSeedError(t, "load of a model too big", r, 507)
		if msg := r.body["error"].(string); !strings.Contains(msg, "not enough memory") || r.body["type"] != "insufficient_resources" {
			t.Fatalf("507 body: %v", r.body)
		}
		assertSeedError(t, "load without id", apiPost(t, base+"/api/models/load", key, `{}`), 400)
		assertSeedError(t, "load bad json", apiPost(t, base+"/api/models/load", key, `{"model_id":`), 400)
		assertSeedError(t, "unknown field", apiPost(t, base+"/api/models/load", key, `{"model_id":"org/llama-mlx4","bogus":1}`), 400)
	})

	t.Run("download with auto_load, chat, unload, load, benchmark", func(t *testing.T) {
		events := dialModelEvents(t, base, key)
		r := apiPost(t, base+"/api/models/download", key, `{"model_id":"huborg/tiny-llama","auto_load":true}`)
		data, _ := r.body["data"].(map[string]any)
		if r.status != 200 || r.body["success"] != true || data["download_id"] == nil {
			t.Fatalf("download: %d %v", r.status, r.body)
		}
		id := data["download_id"].(string)
		final, _ := waitDownload(t, base, key, id)
		if final.body["status"] != "completed" || final.body["progress"] != 1.0 || final.body["loaded"] != true || final.body["total_bytes"].(float64) < 1_000_000 {
			t.Fatalf("download ended: %v", final.body)
		}
		events.waitFor(t, `"download_progress"`, `"status":"downloading"`, `"model_id":"huborg/tiny-llama"`)
		events.waitFor(t, `"model_status"`, `"status":"loading"`, `"model_id":"huborg/tiny-llama"`)
		events.waitFor(t, `"download_progress"`, `"status":"completed"`, `"loaded":true`, `"download_id":"`+id+`"`)
		if _, err := os.Lstat(filepath.Join(models, "models--huborg--tiny-llama", "snapshots", commit, "model.safetensors")); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		if _, err := os.Stat(filepath.Join(models, "models--huborg--tiny-llama", "snapshots", commit, "README.md")); err == nil {
			t.Fatal("README.md was downloaded")
		}
		msgs, _ := json.Marshal(ref.Chat.Messages)
		code, out := post(t, base+"/v1/chat/completions", key, fmt.Sprintf(`{"model":"huborg/tiny-llama","messages":%s,"temperature":0,"max_tokens":%d}`, msgs, len(ref.Chat.ReplyIDs)))
		var chat struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if code != 200 || json.Unmarshal(out, &chat) != nil || len(chat.Choices) != 1 || chat.Choices[0].Message.Content != ref.Chat.ReplyText {
			t.Fatalf("chat with the downloaded model: %d %s (want %q)", code, out, ref.Chat.ReplyText)
		}
		if r := apiPost(t, base+"/api/models/unload", key, `{"model_id":"huborg/tiny-llama","force":true}`); r.status != 200 {
			t.Fatalf("unload: %d %v", r.status, r.body)
		}
		if r := apiPost(t, base+"/api/models/load", key, `{"model_id":"huborg/tiny-llama"}`); r.status != 200 || r.body["status"] != "success" {
			t.Fatalf("load again: %d %v", r.status, r.body)
		}
		for _, path := range []string{"huborg%2Ftiny-llama", "huborg/tiny-llama"} {
			r := apiPost(t, base+"/api/models/benchmark/"+path, key, `{"num_samples":2,"max_tokens":8,"temperature":0,"include_memory_test":true,"include_warmup":true}`)
			samples, _ := r.body["samples"].([]any)
			if r.status != 200 || r.body["model_id"] != "huborg/tiny-llama" || len(samples) != 2 || r.body["tokens_per_second"].(float64) <= 0 || r.body["first_token_latency_ms"].(float64) <= 0 || r.body["memory_usage_mb"] == nil {
				t.Fatalf("benchmark %s: %d %v", path, r.status, r.body)
			}
			if _, ok := r.body["gpu_utilization_percent"]; !ok || r.body["total_tokens"].(float64) < 2 {
				t.Fatalf("benchmark fields: %v", r.body)
			}
		}
		r = do(t, "GET", base+"/api/models/benchmark/huborg/tiny-llama/history", key)
		if r.status != 200 || r.body["total"] != 2.0 {
			t.Fatalf("history: %d %v", r.status, r.body)
		}
		assertSeedError(t, "bad benchmark", apiPost(t, base+"/api/models/benchmark/huborg/tiny-llama", key, `{"num_samples":0}`), 400)
		assertSeedError(t, "benchmark of absent", apiPost(t, base+"/api/models/benchmark/org/absent", key, `{}`), 404)

		r = apiPost(t, base+"/api/models/warmup/huborg/tiny-llama", key, ``)
		if w, _ := r.body["warmup"].(map[string]any); r.status != 200 || w["warmed_up"] != true || w["cold_first_token_ms"].(float64) <= 0 {
			t.Fatalf("warmup: %d %v", r.status, r.body)
		}
		r = do(t, "GET", base+"/api/models/warmup/status", key)
		if ms, _ := r.body["models"].(map[string]any); r.status != 200 || ms["huborg/tiny-llama"] == nil {
			t.Fatalf("warmup status: %d %v", r.status, r.body)
		}
		r = apiPost(t, base+"/api/models/warmup/huborg%2Ftiny-llama/benchmark", key, ``)
		if r.status != 200 || r.body["model_id"] != "huborg/tiny-llama" || r.body["warm_first_token_ms"].(float64) <= 0 {
			t.Fatalf("warmup benchmark: %d %v", r.status, r.body)
		}
		r = do(t, "GET", base+"/api/models/list", key)
		if m := findModel(r, "huborg/tiny-llama"); m == nil || m["status"] != "loaded" || m["warmed_up"] != true {
			t.Fatalf("list after warmup: %v", r.body)
		}
	})

	t.Run("progress moves and cancel leaves nothing behind", func(t *testing.T) {
		fake.Throttle(10 * time.Millisecond)
		defer fake.Throttle(0)
		r := apiPost(t, base+"/api/models/download", key, `{"model_id":"huborg/slow"}`)
		id := r.body["data"].(map[string]any)["download_id"].(string)
		// A second request for the same model joins the running download.
		r2 := apiPost(t, base+"/api/models/download", key, `{"model_id":"huborg/slow"}`)
		if r2.body["data"].(map[string]any)["download_id"] != id {
			t.Fatalf("duplicate download got a new id: %v", r2.body)
		}
		var seen []float64
		var last response
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			last = do(t, "GET", base+"/api/models/download/"+id, key)
			b := last.body["downloaded_bytes"].(float64)
			if len(seen) == 0 || seen[len(seen)-1] != b {
				seen = append(seen, b)
			}
			if len(seen) >= 3 && b > 0 {
				break
			}
		}
		if len(seen) < 3 || last.body["speed_mbps"].(float64) <= 0 || last.body["eta_seconds"] == nil || last.body["status"] != "downloading" {
			t.Fatalf("progress did not move: %v, last %v", seen, last.body)
		}
		if l := findModel(do(t, "GET", base+"/api/models/list", key), "huborg/slow"); l == nil || l["status"] != "downloading" {
			t.Fatalf("list during download: %v", l)
		}
		r = do(t, "DELETE", base+"/api/models/download/"+id, key)
		if r.status != 200 || r.body["status"] != "cancelled" {
			t.Fatalf("cancel: %d %v", r.status, r.body)
		}
		if _, err := os.Lstat(filepath.Join(models, "models--huborg--slow")); err == nil {
			t.Fatal("cancelled download left models--huborg--slow behind")
		}
		assertSeedError(t, "cancel twice", do(t, "DELETE", base+"/api/models/download/"+id, key), 409)
		r = do(t, "GET", base+"/api/models/downloads", key)
		if r.status != 200 || r.body["total"].(float64) < 2 {
			t.Fatalf("downloads: %d %v", r.status, r.body)
		}
	})

	t.Run("hub failures are reported and clean", func(t *testing.T) {
		fake.Corrupt("model.safetensors")
		cases := []struct{ id, want string }{{"huborg/corrupt", "checksum"}, {"huborg/private", "HF_TOKEN"}, {"huborg/absent", "HF_TOKEN"}}
		for _, c := range cases {
			r := apiPost(t, base+"/api/models/download", key, fmt.Sprintf(`{"model_id":%q}`, c.id))
			final, _ := waitDownload(t, base, key, r.body["data"].(map[string]any)["download_id"].(string))
			msg, _ := final.body["error"].(string)
			if final.body["status"] != "failed" || !strings.Contains(msg, c.want) {
				t.Fatalf("%s: %v", c.id, final.body)
			}
			if _, err := os.Lstat(filepath.Join(models, "models--"+strings.ReplaceAll(c.id, "/", "--"))); err == nil {
				t.Fatalf("%s: failed download left files", c.id)
			}
		}
		assertSeedError(t, "bad repo id", apiPost(t, base+"/api/models/download", key, `{"model_id":"../etc"}`), 400)
		assertSeedError(t, "bad revision", apiPost(t, base+"/api/models/download", key, `{"model_id":"a/b","revision":"../x"}`), 400)
	})

	t.Run("a GGUF quant chosen by pattern", func(t *testing.T) {
		r := apiPost(t, base+"/api/models/download", key, `{"model_id":"huborg/tiny-GGUF","revision":"main"}`)
		final, _ := waitDownload(t, base, key, r.body["data"].(map[string]any)["download_id"].(string))
		if msg, _ := final.body["error"].(string); final.body["status"] != "failed" || !strings.Contains(msg, "pattern") {
			t.Fatalf("ambiguous GGUF: %v", final.body)
		}
		r = apiPost(t, base+"/api/models/download", key, `{"model_id":"huborg/tiny-GGUF","allow_patterns":["*Q4_K_M.gguf"]}`)
		final, _ = waitDownload(t, base, key, r.body["data"].(map[string]any)["download_id"].(string))
		if final.body["status"] != "completed" || final.body["files_total"] != 1.0 {
			t.Fatalf("GGUF by pattern: %v", final.body)
		}
		if g := findModel(do(t, "GET", base+"/api/models/list", key), "huborg/tiny-GGUF"); g == nil || g["format"] != "GGUF" || g["architecture"] != "llama" {
			t.Fatalf("downloaded GGUF entry: %v", g)
		}
	})

	t.Run("discover", func(t *testing.T) {
		r := do(t, "GET", base+"/api/models/discover?size_limit_gb=1", key)
		list, _ := r.body["models"].([]any)
		if r.status != 200 || len(list) == 0 || r.body["total_models"].(float64) != float64(len(list)) {
			t.Fatalf("discover: %d %v", r.status, r.body)
		}
		for _, x := range list {
			m := x.(map[string]any)
			est := m["performance_estimate"].(map[string]any)
			if m["size_gb"].(float64) > 1 || est["is_estimate"] != true || est["tokens_per_second"].(float64) <= 0 || m["is_downloaded"] != false || !strings.HasPrefix(m["source_url"].(string), "https://huggingface.co/") {
				t.Fatalf("entry %v", m)
			}
		}
		r = do(t, "GET", base+"/api/models/discover?category=efficient&search=llama", key)
		for _, x := range r.body["models"].([]any) {
			m := x.(map[string]any)
			if m["category"] != "efficient" || !strings.Contains(strings.ToLower(m["model_id"].(string)), "llama") {
				t.Fatalf("filtered entry %v", m)
			}
		}
		assertSeedError(t, "bad category", do(t, "GET", base+"/api/models/discover?category=nope", key), 400)
		assertSeedError(t, "bad size", do(t, "GET", base+"/api/models/discover?size_limit_gb=-1", key), 400)
	})

	t.Run("unknown routes and ids are 404 in the seed shape", func(t *testing.T) {
		assertSeedError(t, "absent download", do(t, "GET", base+"/api/models/download/dl-nope", key), 404)
		assertSeedError(t, "absent route", do(t, "GET", base+"/api/models/nothing", key), 404)
		assertSeedError(t, "warmup absent", apiPost(t, base+"/api/models/warmup/org%2Fabsent", key, ``), 404)
		assertSeedError(t, "wrong method", do(t, "GET", base+"/api/models/load", key), 405)
	})
}

// modelEvents is a Socket.IO client over a direct WebSocket.
type modelEvents struct {
	conn *websocket.Conn
	ctx  context.Context
}

func dialModelEvents(t *testing.T, base, key string) *modelEvents {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	e := &modelEvents{conn: conn, ctx: ctx}
	e.waitFor(t, "0{")
	if err := conn.Write(ctx, websocket.MessageText, []byte("40")); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "40")
	return e
}

// waitFor reads messages until one contains every part (answering pings).
func (e *modelEvents) waitFor(t *testing.T, parts ...string) string {
	t.Helper()
	for {
		_, b, err := e.conn.Read(e.ctx)
		if err != nil {
			t.Fatalf("waiting for an event with %q: %v", parts, err)
		}
		msg := string(b)
		if msg == "2" {
			e.conn.Write(e.ctx, websocket.MessageText, []byte("3"))
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(msg, p)
		}
		if all {
			return msg
		}
	}
}
