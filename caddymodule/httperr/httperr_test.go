package httperr

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/impetusllm/impetus/caddymodule/openai"
)

// TestOpenAIErrorShapes: a 503 has one type and code whichever writer makes
// it (a handler's openai.Unavailable, or impetus_error for a middleware's
// 503); 401 and an unknown URL are typed as OpenAI types them.
func TestOpenAIErrorShapes(t *testing.T) {
	body := func(write func(w http.ResponseWriter)) map[string]any {
		rec := httptest.NewRecorder()
		write(rec)
		var b struct {
			Error map[string]any `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatalf("%q: %v", rec.Body.String(), err)
		}
		return b.Error
	}
	direct := body(func(w http.ResponseWriter) { openai.WriteError(w, openai.Unavailable("x")) })
	viaStatus := body(func(w http.ResponseWriter) { WriteOpenAI(w, http.StatusServiceUnavailable, "x", "") })
	if direct["type"] != "server_error" || direct["code"] != "service_unavailable" || viaStatus["type"] != direct["type"] || viaStatus["code"] != direct["code"] {
		t.Fatalf("503 bodies differ: %v vs %v", direct, viaStatus)
	}
	for _, c := range []struct {
		status    int
		param     string
		typ, code string
	}{
		{http.StatusUnauthorized, "", "invalid_request_error", "invalid_api_key"},
		{http.StatusNotFound, "", "invalid_request_error", "unknown_url"},
		{http.StatusNotFound, "model", "not_found_error", "model_not_found"},
	} {
		e := body(func(w http.ResponseWriter) { WriteOpenAI(w, c.status, "x", c.param) })
		if e["type"] != c.typ || e["code"] != c.code {
			t.Errorf("%d (param %q): %v, want %s/%s", c.status, c.param, e, c.typ, c.code)
		}
	}
	if e := body(func(w http.ResponseWriter) { openai.WriteError(w, openai.Unauthorized("x")) }); e["type"] != "invalid_request_error" || e["code"] != "invalid_api_key" {
		t.Errorf("openai.Unauthorized: %v", e)
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
			caddyhttp.SetVar(r.Context(), ReasonVar, c.reason)
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
