package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// binary returns the impetus binary under test: $IMPETUS_BIN (make test sets
// it), else one built into a temporary folder.
func binary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("IMPETUS_BIN"); b != "" {
		return b
	}
	out := filepath.Join(t.TempDir(), "impetus")
	cmd := exec.Command("go", "build", "-o", out, ".")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building impetus: %v\n%s", err, msg)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	return testutil.FreePort(t)
}

// server is a running impetus process.
type server struct {
	t   *testing.T
	bin string
	dir string
	cmd *exec.Cmd
	log *bytes.Buffer
}

func siteConfig(adminAddr string, port int, modelsDir, keyLine string, burst int) string {
	return fmt.Sprintf(`{
	admin %s
	default_bind 127.0.0.1
	grace_period 5s
	impetus {
		models_dir %s
	}
}

http://127.0.0.1:%d {
	@protected not path /api/health /api/health/*
	impetus_auth @protected {
		%s
	}
	impetus_ratelimit {
		key {http.auth.user.id}
		requests 600
		burst %d
	}
	impetus_openai
	impetus_api
	handle_errors {
		impetus_error
	}
}
`, adminAddr, modelsDir, port, keyLine, burst)
}

// env is the test process's environment with XDG folders under dir, plus extra.
func testEnv(dir string, extra ...string) []string {
	env := append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir)
	return append(env, extra...)
}

func startServer(t *testing.T, config string, extraEnv ...string) *server {
	t.Helper()
	s := &server{t: t, bin: binary(t), dir: t.TempDir(), log: new(bytes.Buffer)}
	cfgPath := filepath.Join(s.dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(s.bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	s.cmd.Env = testEnv(s.dir, extraEnv...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	return s
}

// serveModels starts the binary on free ports with siteConfig over models
// (key id k, key "secret"), the config first passed through edit when edit
// is not nil, and waits until it answers. It returns the base URL.
func serveModels(t *testing.T, models string, edit func(cfg string) string, extraEnv ...string) (string, *server) {
	t.Helper()
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := siteConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, models, "key k secret", 1000)
	if edit != nil {
		cfg = edit(cfg)
	}
	s := startServer(t, cfg, extraEnv...)
	s.waitReady(base + "/api/health")
	return base, s
}

func (s *server) waitReady(url string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("server did not come up at %s\n%s", url, s.log.String())
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, method, url, key string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, url, raw)
		}
	}
	return r
}

func TestServerEndToEnd(t *testing.T) {
	models := t.TempDir()
	if err := os.MkdirAll(filepath.Join(models, "org", "tiny"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(models, "org", "tiny", "config.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(models, "org", "tiny", "model.safetensors"), []byte("x"), 0o644)

	port, adminPort := freePort(t), freePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	s := startServer(t, siteConfig(admin, port, models, "key alpha {env.IMPETUS_TEST_KEY}", 1000), "IMPETUS_TEST_KEY=alpha-secret")
	s.waitReady(base + "/api/health")

	t.Run("health probes are public", func(t *testing.T) {
		r := do(t, "GET", base+"/api/health", "")
		if r.status != 200 || r.body["status"] != "healthy" || r.body["version"] == "" || r.body["uptime_seconds"] == nil {
			t.Fatalf("/api/health: %d %v", r.status, r.body)
		}
		if _, err := time.Parse(time.RFC3339, r.body["timestamp"].(string)); err != nil {
			t.Fatalf("timestamp not ISO-8601: %v", r.body["timestamp"])
		}
		r = do(t, "GET", base+"/api/health/ready", "")
		checks, _ := r.body["checks"].(map[string]any)
		if r.status != 200 || r.body["ready"] != true || checks["engine_available"] != true || r.body["message"] != "Ready" {
			t.Fatalf("/api/health/ready: %d %v", r.status, r.body)
		}
		r = do(t, "GET", base+"/api/health/live", "")
		if r.status != 200 || r.body["alive"] != true || r.body["last_heartbeat"] == nil {
			t.Fatalf("/api/health/live: %d %v", r.status, r.body)
		}
		r = do(t, "GET", base+"/api/health/status", "")
		comps, _ := r.body["components"].(map[string]any)
		if r.status != 200 || comps["engine"] == nil || comps["models"] == nil || comps["system"] == nil {
			t.Fatalf("/api/health/status: %d %v", r.status, r.body)
		}
		if m := comps["models"].(map[string]any); m["available"] != 1.0 {
			t.Fatalf("models component: %v", m)
		}
		if r := do(t, "POST", base+"/api/health", ""); r.status != 405 {
			t.Fatalf("POST /api/health: %d", r.status)
		}
	})

	t.Run("v1 needs a key", func(t *testing.T) {
		r := do(t, "GET", base+"/v1/models", "")
		e, _ := r.body["error"].(map[string]any)
		if r.status != 401 || e["type"] != "invalid_request_error" || e["code"] != "invalid_api_key" || !strings.Contains(e["message"].(string), "Missing API key") {
			t.Fatalf("no key: %d %v", r.status, r.body)
		}
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
		}
		r = do(t, "GET", base+"/v1/models", "wrong")
		if e, _ := r.body["error"].(map[string]any); r.status != 401 || e["message"] != "Invalid API key" {
			t.Fatalf("wrong key: %d %v", r.status, r.body)
		}
		r = do(t, "GET", base+"/api/models/list", "")
		if r.status != 401 || r.body["error"] == nil || r.body["timestamp"] == nil {
			t.Fatalf("/api without key: %d %v", r.status, r.body)
		}
		r = do(t, "GET", base+"/v1/models", "alpha-secret")
		data, _ := r.body["data"].([]any)
		if r.status != 200 || r.body["object"] != "list" || len(data) != 1 || data[0].(map[string]any)["id"] != "org/tiny" {
			t.Fatalf("with key: %d %v", r.status, r.body)
		}
		if r.header.Get("X-RateLimit-Limit") != "600" || r.header.Get("X-RateLimit-Remaining") == "" {
			t.Fatalf("rate-limit headers missing: %v", r.header)
		}
		r = do(t, "GET", base+"/v1/models/org%2Ftiny", "alpha-secret")
		if r.status != 200 || r.body["id"] != "org/tiny" {
			t.Fatalf("model by id: %d %v", r.status, r.body)
		}
		r = do(t, "GET", base+"/v1/models/org/absent", "alpha-secret")
		if e, _ := r.body["error"].(map[string]any); r.status != 404 || e["type"] != "not_found_error" || e["code"] != "model_not_found" {
			t.Fatalf("absent model: %d %v", r.status, r.body)
		}
		// An unknown path is not a missing model: OpenAI's unknown_url.
		r = do(t, "POST", base+"/v1/embeddingz", "alpha-secret")
		if e, _ := r.body["error"].(map[string]any); r.status != 404 || e["type"] != "invalid_request_error" || e["code"] != "unknown_url" {
			t.Fatalf("unknown /v1 path: %d %v", r.status, r.body)
		}
	})

	t.Run("reload changes the key while serving", func(t *testing.T) {
		var failures atomic.Int64
		var served atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(base + "/api/health")
				if err != nil {
					// No response at all: the reload closed an idle
					// keep-alive connection as the request went out on it,
					// or the old server's graceful shutdown closed a
					// connection it had just accepted (EOF, reset) before
					// reading a request. Nothing was processed, and clients
					// retry that on a new connection. A response with an
					// error status is never retried.
					resp, err = http.Get(base + "/api/health")
				}
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
				} else {
					served.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		cfg2 := filepath.Join(s.dir, "Caddyfile.v2")
		os.WriteFile(cfg2, []byte(siteConfig(admin, port, models, "key beta beta-secret", 1000)), 0o600)
		out, err := exec.Command(s.bin, "reload", "--config", cfg2, "--adapter", "caddyfile", "--address", admin).CombinedOutput()
		if err != nil {
			t.Fatalf("impetus reload: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
		close(stop)
		wg.Wait()
		if failures.Load() != 0 || served.Load() == 0 {
			t.Fatalf("during reload: %d failed, %d served", failures.Load(), served.Load())
		}
		if r := do(t, "GET", base+"/v1/models", "alpha-secret"); r.status != 401 {
			t.Fatalf("old key after reload: %d", r.status)
		}
		if r := do(t, "GET", base+"/v1/models", "beta-secret"); r.status != 200 {
			t.Fatalf("new key after reload: %d %v", r.status, r.body)
		}
	})
}

func TestRateLimitRefusesWithHeaders(t *testing.T) {
	port, adminPort := freePort(t), freePort(t)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := strings.Replace(siteConfig(admin, port, t.TempDir(), "key k1 secret-1", 2), "requests 600", "requests 2", 1)
	s := startServer(t, cfg)
	s.waitReady(base + "/api/health")
	// Probes share the IP bucket; use a key so the bucket is fresh.
	for i := 0; i < 2; i++ {
		if r := do(t, "GET", base+"/v1/models", "secret-1"); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := do(t, "GET", base+"/v1/models", "secret-1")
	e, _ := r.body["error"].(map[string]any)
	if r.status != 429 || e["type"] != "rate_limit_error" || r.header.Get("Retry-After") == "" || r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("third request: %d %v %v", r.status, r.body, r.header)
	}
}

func TestRefusesEmptyKey(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Caddyfile")
	os.WriteFile(cfg, []byte(siteConfig("127.0.0.1:0", freePort(t), dir, "key {env.IMPETUS_UNSET_KEY}", 10)), 0o600)
	cmd := exec.Command(binary(t), "validate", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = testEnv(dir, "IMPETUS_UNSET_KEY=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is empty") {
		t.Fatalf("validate with an empty key: err=%v\n%s", err, out)
	}
}

func TestExampleConfigValidates(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary(t), "validate", "--config", "../../Caddyfile.example", "--adapter", "caddyfile")
	cmd.Env = testEnv(dir, "IMPETUS_API_KEY=example-key", "IMPETUS_MODELS_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("validate Caddyfile.example: %v\n%s", err, out)
	}
	out, err := exec.Command(binary(t), "list-modules").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"impetus", "http.handlers.impetus_openai", "http.handlers.impetus_api", "http.handlers.impetus_ratelimit", "http.handlers.impetus_error", "http.authentication.providers.impetus_bearer"} {
		if !strings.Contains(string(out)+"\n", m+"\n") {
			t.Errorf("list-modules lacks %s", m)
		}
	}
}
