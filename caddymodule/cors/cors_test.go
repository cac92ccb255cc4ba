package cors

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestCORS(t *testing.T) {
	c := &CORS{Origins: []string{"https://app.example.com"}}
	if err := c.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(200); return nil })
	cases := []struct {
		name, method, origin string
		preflight            bool
		code                 int
		allow                string
	}{
		{"no origin", "GET", "", false, 200, ""},
		{"allowed", "GET", "https://app.example.com", false, 200, "https://app.example.com"},
		{"other origin", "GET", "https://evil.example", false, 200, ""},
		{"preflight allowed", "OPTIONS", "https://app.example.com", true, 204, "https://app.example.com"},
		{"preflight refused", "OPTIONS", "https://evil.example", true, 204, ""},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(tc.method, "/v1/models", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.preflight {
			r.Header.Set("Access-Control-Request-Method", "POST")
		}
		w := httptest.NewRecorder()
		if err := c.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		if w.Code != tc.code || w.Header().Get("Access-Control-Allow-Origin") != tc.allow {
			t.Errorf("%s: %d allow=%q", tc.name, w.Code, w.Header().Get("Access-Control-Allow-Origin"))
		}
		if tc.preflight && tc.allow != "" && w.Header().Get("Access-Control-Allow-Headers") != "Authorization, Content-Type" {
			t.Errorf("%s: allow-headers %q", tc.name, w.Header().Get("Access-Control-Allow-Headers"))
		}
	}
	if err := (&CORS{Origins: []string{"app.example.com"}}).Validate(); err == nil {
		t.Error("an origin without scheme must be refused")
	}
}

func newCtx(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}
