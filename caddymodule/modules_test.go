package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/impetusllm/impetus/inference/kernels"
)

func newCtx(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func TestAppProvisionAndValidate(t *testing.T) {
	t.Setenv("IMPETUS_MODELS_DIR", t.TempDir())
	cases := []struct {
		name    string
		app     App
		wantErr string
	}{
		{name: "defaults", app: App{}},
		{name: "bad mode", app: App{PerformanceMode: "turbo"}, wantErr: "performance_mode"},
		{name: "negative threads", app: App{Threads: -1}, wantErr: "threads"},
		{name: "bad memory percent", app: App{MaxMemoryPercent: 150}, wantErr: "max_memory_percent"},
		{name: "bad activations", app: App{Activations: "int4"}, wantErr: "activations"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.app
			err := a.Provision(newCtx(t))
			defer a.Cleanup()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want error containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.PerformanceMode != ModeBalanced || a.MaxMemoryPercent != 95 || a.Engine() == nil {
				t.Fatalf("defaults not filled: %+v", a)
			}
		})
	}
}

// Two configs on the same models dir share one engine, as across a reload.
func TestEngineSurvivesReload(t *testing.T) {
	dir := t.TempDir()
	old := App{ModelsDir: dir}
	if err := old.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	next := App{ModelsDir: dir}
	if err := next.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	if old.Engine() != next.Engine() {
		t.Fatal("reload built a second engine")
	}
	eng := next.Engine()
	old.Cleanup()
	if !eng.Alive(heartbeatMaxAge) {
		t.Fatal("engine stopped while the new config still uses it")
	}
	next.Cleanup()
	if eng.Alive(heartbeatMaxAge) {
		t.Fatal("engine still running after the last config released it")
	}
}

func TestBearerAuthProvision(t *testing.T) {
	t.Setenv("IMPETUS_TEST_KEY", "s3cret")
	sum := sha256.Sum256([]byte("hashed"))
	keyFile := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keyFile, []byte("# team keys\nteam-b b-secret\nlonely\n"), 0o600)
	cases := []struct {
		name    string
		auth    BearerAuth
		wantErr string
	}{
		{name: "env key", auth: BearerAuth{Keys: []APIKey{{Key: "{env.IMPETUS_TEST_KEY}"}}}},
		{name: "hash", auth: BearerAuth{Keys: []APIKey{{ID: "h", SHA256: hex.EncodeToString(sum[:])}}}},
		{name: "key file", auth: BearerAuth{KeyFile: keyFile}},
		{name: "unset env", auth: BearerAuth{Keys: []APIKey{{Key: "{env.IMPETUS_NOT_SET_ANYWHERE}"}}}, wantErr: "expanded to nothing"},
		{name: "no keys", auth: BearerAuth{}, wantErr: "no API keys"},
		{name: "bad hash", auth: BearerAuth{Keys: []APIKey{{SHA256: "abc"}}}, wantErr: "64 hex digits"},
		{name: "both", auth: BearerAuth{Keys: []APIKey{{Key: "a", SHA256: hex.EncodeToString(sum[:])}}}, wantErr: "not both"},
		{name: "duplicate ids", auth: BearerAuth{Keys: []APIKey{{ID: "x", Key: "a"}, {ID: "x", Key: "b"}}}, wantErr: "duplicate"},
		{name: "missing file", auth: BearerAuth{KeyFile: "/nonexistent/keys"}, wantErr: "key file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.auth
			err := b.Provision(newCtx(t))
			if c.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want error containing %q", err, c.wantErr)
				}
				return
			}
			for _, k := range b.Keys {
				if k.Key != "" {
					t.Fatal("plain key kept in memory after provisioning")
				}
			}
		})
	}
}

func TestBearerAuthenticate(t *testing.T) {
	b := BearerAuth{Keys: []APIKey{{ID: "a", Key: "alpha"}, {ID: "b", Key: "beta", Models: []string{"m1"}}}}
	if err := b.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		header string
		ok     bool
		user   string
	}{
		{"Bearer alpha", true, "a"},
		{"bearer beta", true, "b"},
		{"Bearer  beta ", true, "b"},
		{"Bearer gamma", false, ""},
		{"Basic alpha", false, ""},
		{"Bearer ", false, ""},
		{"", false, ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/v1/models", nil)
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		w := httptest.NewRecorder()
		user, ok, err := b.Authenticate(w, r)
		if err != nil || ok != c.ok || user.ID != c.user {
			t.Errorf("%q: got (%q, %v, %v), want (%q, %v)", c.header, user.ID, ok, err, c.user, c.ok)
		}
		if !ok && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%q: no WWW-Authenticate challenge", c.header)
		}
		if c.user == "b" && user.Metadata["models"] != "m1" {
			t.Errorf("model allow-list not carried: %v", user.Metadata)
		}
	}
}

func TestErrorWriterShapes(t *testing.T) {
	for _, c := range []struct {
		path   string
		status int
		reason string
	}{{"/v1/chat/completions", 401, "Invalid API key"}, {"/api/models/list", 401, "Missing API key"}, {"/v1/models", 500, ""}} {
		r := httptest.NewRequest("GET", c.path, nil)
		ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{})
		ctx = context.WithValue(ctx, caddyhttp.ErrorCtxKey, error(caddyhttp.Error(c.status, os.ErrPermission)))
		r = r.WithContext(ctx)
		if c.reason != "" {
			caddyhttp.SetVar(r.Context(), errorReasonVar, c.reason)
		}
		w := httptest.NewRecorder()
		if err := new(ErrorWriter).ServeHTTP(w, r, nil); err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != c.status {
			t.Fatalf("%s: %d %q", c.path, w.Code, w.Body.String())
		}
		want := c.reason
		if want == "" {
			want = http.StatusText(c.status)
		}
		if strings.HasPrefix(c.path, "/v1") {
			e := body["error"].(map[string]any)
			if e["message"] != want || e["type"] == nil {
				t.Errorf("%s: %v", c.path, body)
			}
		} else if body["error"] != want || body["timestamp"] == nil || body["type"] == nil {
			t.Errorf("%s: %v", c.path, body)
		}
		if strings.Contains(w.Body.String(), "permission denied") {
			t.Errorf("%s: internal error text leaked: %s", c.path, w.Body.String())
		}
	}
}

func TestRateLimitUnmarshalAndDefaults(t *testing.T) {
	d := caddyfile.NewTestDispenser("impetus_ratelimit z1 {\n requests 5\n window 10s\n burst 2\n key {http.auth.user.id}\n}")
	var rl RateLimit
	if err := rl.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if err := rl.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	if rl.Zone != "z1" || rl.Requests != 5 || rl.Burst != 2 || rl.Key != "{http.auth.user.id}" {
		t.Fatalf("got %+v", rl)
	}
	var def RateLimit
	if err := def.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	if def.Requests != 100 || def.Burst != 10 || def.Key != "{http.request.remote.host}" {
		t.Fatalf("defaults: %+v", def)
	}
}

// TestActivationsFollowReload checks that the process-wide activation
// setting follows each started config, back to the default when a reload
// drops the option, and that provisioning alone changes nothing.
func TestActivationsFollowReload(t *testing.T) {
	t.Setenv("IMPETUS_MODELS_DIR", t.TempDir())
	t.Setenv("IMPETUS_INT8", "")
	t.Setenv("IMPETUS_INT8_MLX", "")
	defer kernels.ResetInt8()
	for _, c := range []struct {
		activations string
		int8, mlx   bool
	}{{"float", false, false}, {"", true, true}, {"float", false, false}, {"int8", true, true}} {
		read := func() (bool, bool) {
			on, mlx := kernels.SetInt8Activations(true), kernels.SetInt8MLX(true)
			kernels.SetInt8Activations(on)
			kernels.SetInt8MLX(mlx)
			return on, mlx
		}
		was, wasMLX := read()
		a := App{Activations: c.activations}
		if err := a.Provision(newCtx(t)); err != nil {
			t.Fatal(err)
		}
		if on, mlx := read(); on != was || mlx != wasMLX {
			t.Errorf("activations %q: Provision changed the setting", c.activations)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		on, mlx := read()
		a.Stop()
		if on != c.int8 || mlx != c.mlx {
			t.Errorf("activations %q: int8 %v, MLX int8 %v; want %v, %v", c.activations, on, mlx, c.int8, c.mlx)
		}
		a.Cleanup()
	}
}
