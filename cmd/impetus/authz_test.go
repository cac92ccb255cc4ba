package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// authzConfig serves two local models and one routed model with four keys:
// ops (admin, every model), lim (admin, only tiny-a), app (only tiny-a, not
// an admin) and user (every model, not an admin). /socket.io/ is left to
// impetus_events, which checks the same keys in the handshake.
func authzConfig(admin string, port int, models string, deadPort int) string {
	return fmt.Sprintf(`{
	admin %s
	default_bind 127.0.0.1
	impetus {
		models_dir %s
		route remote-model {
			to http://127.0.0.1:%d
		}
	}
}

(keys) {
	key ops ops-secret
	key lim lim-secret
	key app app-secret
	key user user-secret
	models lim tiny-a
	models app tiny-a
	admin ops lim
}

http://127.0.0.1:%d {
	@protected not path /api/health /api/health/* /socket.io/*
	impetus_auth @protected {
		import keys
	}
	impetus_ratelimit {
		key {http.auth.user.id}
		requests 1000
		burst 1000
		key_limit limited requests 1 window 1h burst 1
	}
	impetus_openai
	impetus_api
	impetus_events {
		auth {
			import keys
			key limited limited-secret
		}
	}
	handle_errors {
		impetus_error
	}
}
`, admin, models, deadPort, port)
}

func sendJSON(t *testing.T, method, url, key, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	json.NewDecoder(resp.Body).Decode(&r.body)
	return r
}

func ids(t *testing.T, list any, field string) []string {
	t.Helper()
	var out []string
	items, _ := list.([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		id, _ := m[field].(string)
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// wantForbidden checks a 403 in the path's error shape whose message
// contains want.
func wantForbidden(t *testing.T, what string, r response, openAI bool, want string) {
	t.Helper()
	if r.status != http.StatusForbidden {
		t.Errorf("%s: status %d, want 403; body %v", what, r.status, r.body)
		return
	}
	msg := ""
	if openAI {
		e, _ := r.body["error"].(map[string]any)
		msg, _ = e["message"].(string)
		if e["type"] != "permission_error" {
			t.Errorf("%s: OpenAI error type %v, want permission_error", what, e["type"])
		}
	} else {
		msg, _ = r.body["error"].(string)
		if r.body["type"] != "permission_error" {
			t.Errorf("%s: /api error type %v, want permission_error; body %v", what, r.body["type"], r.body)
		}
	}
	if !strings.Contains(msg, want) {
		t.Errorf("%s: message %q does not contain %q", what, msg, want)
	}
}

// TestModelRestrictionsOnEveryPath: a key restricted to tiny-a can neither
// see nor use tiny-b on any path, and only admin keys change server state.
func TestModelRestrictionsOnEveryPath(t *testing.T) {
	models := t.TempDir()
	fx := testutil.Fixture(t, "dev-trained", "llama-mlx4")
	copyDir(t, fx, filepath.Join(models, "tiny-a"))
	copyDir(t, fx, filepath.Join(models, "tiny-b"))
	port, adminPort, dead := freePort(t), freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	s := startServer(t, authzConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, models, dead))
	s.waitReady(base + "/api/health")

	// Listing: only what the key may use; another model is a 404, as OpenAI does.
	if got := ids(t, do(t, "GET", base+"/v1/models", "app-secret").body["data"], "id"); !slices.Equal(got, []string{"tiny-a"}) {
		t.Errorf("/v1/models for app: %v", got)
	}
	if got := ids(t, do(t, "GET", base+"/v1/models", "ops-secret").body["data"], "id"); !slices.Equal(got, []string{"tiny-a", "tiny-b"}) {
		t.Errorf("/v1/models for ops: %v", got)
	}
	if r := do(t, "GET", base+"/v1/models/tiny-b", "app-secret"); r.status != 404 {
		t.Errorf("/v1/models/tiny-b for app: %d", r.status)
	}
	if r := do(t, "GET", base+"/v1/models/remote-model", "app-secret"); r.status != 404 {
		t.Errorf("/v1/models/remote-model for app: %d", r.status)
	}
	if r := do(t, "GET", base+"/v1/models/tiny-a", "app-secret"); r.status != 200 {
		t.Errorf("/v1/models/tiny-a for app: %d", r.status)
	}
	if got := ids(t, do(t, "GET", base+"/api/models/list", "app-secret").body["models"], "model_id"); !slices.Equal(got, []string{"tiny-a"}) {
		t.Errorf("/api/models/list for app: %v", got)
	}

	// Generation, local and routed (the upstream is down: the check comes first).
	chat := `{"model":"%s","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`
	comp := `{"model":"%s","prompt":"hi","max_tokens":1}`
	wantForbidden(t, "chat tiny-b", sendJSON(t, "POST", base+"/v1/chat/completions", "app-secret", fmt.Sprintf(chat, "tiny-b")), true, "may not use the model 'tiny-b'")
	wantForbidden(t, "completion tiny-b", sendJSON(t, "POST", base+"/v1/completions", "app-secret", fmt.Sprintf(comp, "tiny-b")), true, "may not use the model 'tiny-b'")
	wantForbidden(t, "routed chat", sendJSON(t, "POST", base+"/v1/chat/completions", "app-secret", fmt.Sprintf(chat, "remote-model")), true, "may not use the model 'remote-model'")
	wantForbidden(t, "routed completion", sendJSON(t, "POST", base+"/v1/completions", "app-secret", fmt.Sprintf(comp, "remote-model")), true, "may not use the model 'remote-model'")
	if r := sendJSON(t, "POST", base+"/v1/chat/completions", "app-secret", fmt.Sprintf(chat, "tiny-a")); r.status != 200 {
		t.Errorf("chat tiny-a for app: %d %v", r.status, r.body)
	}

	// Management by an admin key restricted to tiny-a: the model check.
	wantForbidden(t, "load tiny-b", sendJSON(t, "POST", base+"/api/models/load", "lim-secret", `{"model_id":"tiny-b"}`), false, "may not use the model 'tiny-b'")
	wantForbidden(t, "warmup tiny-b", sendJSON(t, "POST", base+"/api/models/warmup/tiny-b", "lim-secret", ``), false, "may not use the model 'tiny-b'")
	wantForbidden(t, "benchmark tiny-b", sendJSON(t, "POST", base+"/api/models/benchmark/tiny-b", "lim-secret", `{"num_samples":1,"max_tokens":1}`), false, "may not use the model 'tiny-b'")
	wantForbidden(t, "download", sendJSON(t, "POST", base+"/api/models/download", "lim-secret", `{"model_id":"some-org/big-model"}`), false, "may not use the model 'some-org/big-model'")
	// A download of another model is invisible to the restricted key.
	dl := sendJSON(t, "POST", base+"/api/models/download", "ops-secret", `{"model_id":"some-org/other-model"}`)
	data, _ := dl.body["data"].(map[string]any)
	dlID, _ := data["download_id"].(string)
	if dl.status != 200 || dlID == "" {
		t.Fatalf("ops download: %d %v", dl.status, dl.body)
	}
	wantForbidden(t, "download status", do(t, "GET", base+"/api/models/download/"+dlID, "app-secret"), false, "may not use the model 'some-org/other-model'")
	if got := ids(t, do(t, "GET", base+"/api/models/downloads", "app-secret").body["downloads"], "model_id"); len(got) != 0 {
		t.Errorf("downloads listed for app: %v", got)
	}
	if r := do(t, "GET", base+"/api/models/download/"+dlID, "ops-secret"); r.status != 200 {
		t.Errorf("ops download status: %d", r.status)
	}
	if r := sendJSON(t, "POST", base+"/api/models/load", "ops-secret", `{"model_id":"tiny-b"}`); r.status != 200 {
		t.Fatalf("ops load tiny-b: %d %v", r.status, r.body)
	}
	wantForbidden(t, "unload tiny-b", sendJSON(t, "POST", base+"/api/models/unload", "lim-secret", `{"model_id":"tiny-b"}`), false, "may not use the model 'tiny-b'")
	if r := sendJSON(t, "POST", base+"/api/models/load", "lim-secret", `{"model_id":"tiny-a"}`); r.status != 200 {
		t.Errorf("lim load tiny-a: %d %v", r.status, r.body)
	}
	if r := sendJSON(t, "POST", base+"/api/models/warmup/tiny-a", "lim-secret", ``); r.status != 200 {
		t.Errorf("lim warmup tiny-a: %d %v", r.status, r.body)
	}
	ws := do(t, "GET", base+"/api/models/warmup/status", "app-secret")
	if loaded, _ := ws.body["loaded_models"].([]any); len(loaded) != 1 || loaded[0] != "tiny-a" {
		t.Errorf("warmup status for app lists %v", ws.body["loaded_models"])
	}

	// Keys that are not admins change nothing, restricted or not.
	const notAdmin = "is not an admin key"
	for _, key := range []string{"app-secret", "user-secret"} {
		wantForbidden(t, key+" load", sendJSON(t, "POST", base+"/api/models/load", key, `{"model_id":"tiny-a"}`), false, notAdmin)
		wantForbidden(t, key+" unload", sendJSON(t, "POST", base+"/api/models/unload", key, `{"model_id":"tiny-a"}`), false, notAdmin)
		wantForbidden(t, key+" warmup", sendJSON(t, "POST", base+"/api/models/warmup/tiny-a", key, ``), false, notAdmin)
		wantForbidden(t, key+" benchmark", sendJSON(t, "POST", base+"/api/models/benchmark/tiny-a", key, `{}`), false, notAdmin)
		wantForbidden(t, key+" download", sendJSON(t, "POST", base+"/api/models/download", key, `{"model_id":"org/name"}`), false, notAdmin)
		wantForbidden(t, key+" cancel download", sendJSON(t, "DELETE", base+"/api/models/download/dl-1", key, ``), false, notAdmin)
		wantForbidden(t, key+" performance mode", sendJSON(t, "POST", base+"/api/hardware/performance-mode", key, `{"mode":"efficiency"}`), false, notAdmin)
	}
	if r := sendJSON(t, "POST", base+"/api/hardware/performance-mode", "ops-secret", `{"mode":"balanced"}`); r.status != 200 {
		t.Errorf("ops performance mode: %d %v", r.status, r.body)
	}
	// A key that is not an admin still reads.
	if r := do(t, "GET", base+"/api/hardware/performance-mode", "user-secret"); r.status != 200 {
		t.Errorf("user reads performance mode: %d", r.status)
	}

	t.Run("socket.io-node", func(t *testing.T) { socketIONode(t, base) })
	t.Run("socket.io-chromium", func(t *testing.T) { socketIOChromium(t, base) })
}

// TestAdminDefaultKeepsOldConfigs: with no key named admin, keys without a
// model restriction keep management rights and restricted keys have none.
func TestAdminDefaultKeepsOldConfigs(t *testing.T) {
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	s := startServer(t, siteConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, t.TempDir(), "key full full-secret\n\t\tkey some some-secret\n\t\tmodels some m", 1000))
	s.waitReady(base + "/api/health")
	if r := sendJSON(t, "POST", base+"/api/hardware/performance-mode", "full-secret", `{"mode":"balanced"}`); r.status != 200 {
		t.Errorf("unrestricted key: %d %v", r.status, r.body)
	}
	wantForbidden(t, "restricted key", sendJSON(t, "POST", base+"/api/hardware/performance-mode", "some-secret", `{"mode":"balanced"}`), false, "is not an admin key")
}

// socketIONode connects with the official socket.io-client over WebSocket
// only, the key in the handshake's auth, as a browser must.
func socketIONode(t *testing.T, base string) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed (make test-deps)")
	}
	dir := filepath.Join("..", "..", "caddymodule", "testdata", "socketio")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client")); err != nil {
		t.Skip("socket.io-client not installed: run make test-deps")
	}
	run := func(mode, key string) (got struct {
		Connected   bool   `json:"connected"`
		Error       string `json:"error"`
		ModelStatus struct {
			Status       string   `json:"status"`
			LoadedModels []string `json:"loaded_models"`
		} `json:"model_status"`
	}) {
		t.Helper()
		cmd := exec.Command(node, "auth.js", base, mode, key)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node auth.js %s: %v\n%s", mode, err, out)
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("node output %q: %v", out, err)
		}
		return got
	}
	// ops sees both loaded models, app only its own.
	for _, tc := range []struct{ mode, key, want string }{
		{"token", "ops-secret", "tiny-a,tiny-b"},
		{"bearer", "ops-secret", "tiny-a,tiny-b"},
		{"token", "app-secret", "tiny-a"},
	} {
		got := run(tc.mode, tc.key)
		slices.Sort(got.ModelStatus.LoadedModels)
		if !got.Connected || got.Error != "" || got.ModelStatus.Status != "snapshot" || strings.Join(got.ModelStatus.LoadedModels, ",") != tc.want {
			t.Errorf("%s %s: %+v, want snapshot of %s", tc.mode, tc.key, got, tc.want)
		}
	}
	for _, tc := range []struct{ mode, key, want string }{
		{"none", "", "Missing API key"},
		{"token", "wrong-secret", "Invalid API key"},
		{"query", "ops-secret", "Missing API key"},
	} {
		got := run(tc.mode, tc.key)
		if got.Connected || !strings.Contains(got.Error, tc.want) {
			t.Errorf("%s %q: %+v, want refused with %q", tc.mode, tc.key, got, tc.want)
		}
	}
	// The key's rate limit holds for the handshake: one request per hour.
	if got := run("token", "limited-secret"); !got.Connected {
		t.Errorf("first connect of the limited key: %+v", got)
	}
	if got := run("token", "limited-secret"); got.Connected || !strings.Contains(got.Error, "Rate limit exceeded") {
		t.Errorf("second connect of the limited key: %+v", got)
	}
}

// socketIOChromium connects from a page in headless Chromium with
// socket.io-client over WebSocket, the key in auth.token, and waits for an
// event.
func socketIOChromium(t *testing.T, base string) {
	bundle, err := os.ReadFile(filepath.Join("..", "..", "caddymodule", "testdata", "socketio", "node_modules", "socket.io-client", "dist", "socket.io.min.js"))
	if err != nil {
		t.Skip("socket.io-client not installed: run make test-deps")
	}
	c := startChromium(t)
	c.call("Page.navigate", map[string]any{"url": base + "/api/health"})
	c.waitFor("document.readyState", "complete")
	c.eval(string(bundle) + "; typeof io")
	connect := func(key string) string {
		c.eval(fmt.Sprintf(`window.__got = null;
			window.__s && window.__s.close();
			window.__s = io(%q, {transports: ['websocket'], reconnection: false, auth: {token: %q}});
			window.__s.on('model_status', (m) => { window.__got = 'event:' + m.status + ':' + m.loaded_models.join(','); });
			window.__s.on('connect_error', (e) => { window.__got = 'refused:' + e.message; }); 0`, base, key))
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if v, ok := c.eval("window.__got").(string); ok {
				return v
			}
		}
		t.Fatalf("no Socket.IO event or error in Chromium; page errors: %v", c.errs)
		return ""
	}
	if got := connect("app-secret"); got != "event:snapshot:tiny-a" {
		t.Errorf("browser with app key: %q", got)
	}
	if got := connect("wrong"); got != "refused:Invalid API key" {
		t.Errorf("browser with a wrong key: %q", got)
	}
}
