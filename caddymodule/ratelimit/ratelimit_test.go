package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestTokenBudget(t *testing.T) {
	now := time.Now()
	b := newTokenBudget(600, now)
	if ok, _, rem, _, _ := b.charge(500, now); !ok || rem != 100 {
		t.Fatalf("first charge: ok=%v remaining=%d", ok, rem)
	}
	ok, wait, _, _, tooLarge := b.charge(200, now)
	if ok || tooLarge || wait < 9*time.Second || wait > 11*time.Second {
		t.Fatalf("over budget: ok=%v wait=%v tooLarge=%v (want ~10s: 100 tokens at 10/s)", ok, wait, tooLarge)
	}
	b.refund(300, now)
	if ok, _, rem, _, _ := b.charge(350, now); !ok || rem != 50 {
		t.Fatalf("after refund: ok=%v remaining=%d", ok, rem)
	}
	if _, _, _, _, tooLarge := b.charge(601, now); !tooLarge {
		t.Fatal("a request above the whole budget must be refused as too large")
	}
	// Refill: a minute later the bucket is full again, never above capacity.
	if ok, _, rem, _, _ := b.charge(0, now.Add(2*time.Minute)); !ok || rem != 600 {
		t.Fatalf("refill: remaining=%d", rem)
	}
}

// serve runs one request through rl as client key.
func serveLimited(t *testing.T, rl *RateLimit, key string) (*httptest.ResponseRecorder, *http.Request) {
	t.Helper()
	r := httptest.NewRequest("GET", "/v1/models", nil)
	repl := caddy.NewReplacer()
	repl.Set("http.auth.user.id", key)
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	r = r.WithContext(ctx)
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(204); return nil })
	if err := rl.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	return w, r
}

func TestRateLimitPerKeyOverrideAndTokens(t *testing.T) {
	rl := &RateLimit{Zone: t.Name(), Requests: 2, Burst: 2, Key: "{http.auth.user.id}", TokensPerMinute: 100,
		KeyLimits: []KeyLimit{{Key: "gold", Requests: 5, Burst: 5, TokensPerMinute: 1000}}}
	if err := rl.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if w, _ := serveLimited(t, rl, "basic"); w.Code != 204 {
			t.Fatalf("basic request %d: %d", i, w.Code)
		}
	}
	if w, _ := serveLimited(t, rl, "basic"); w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("third basic request: %d", w.Code)
	}
	for i := 0; i < 4; i++ {
		w, _ := serveLimited(t, rl, "gold")
		if w.Code != 204 || w.Header().Get("X-RateLimit-Limit") != "5" {
			t.Fatalf("gold request %d: %d limit %s", i, w.Code, w.Header().Get("X-RateLimit-Limit"))
		}
	}
	// Token budget travels with the request: gold may spend 800, basic may not.
	_, r := serveLimited(t, rl, "gold")
	w2 := httptest.NewRecorder()
	refund, msg, _ := ChargeTokens(w2, r, 800)
	if msg != "" || w2.Header().Get("X-RateLimit-Limit-Tokens") != "1000" {
		t.Fatalf("gold charge: %q %v", msg, w2.Header())
	}
	refund(100)
	if got := w2.Header().Get("X-RateLimit-Remaining-Tokens"); got != "200" {
		t.Fatalf("remaining tokens header %q", got)
	}
	rlBasic := &RateLimit{Zone: t.Name() + "b", Key: "{http.auth.user.id}", TokensPerMinute: 100}
	rlBasic.Provision(newCtx(t))
	_, rb := serveLimited(t, rlBasic, "basic")
	if _, msg, _ := ChargeTokens(httptest.NewRecorder(), rb, 800); !strings.Contains(msg, "budget is 100") {
		t.Fatalf("oversize charge: %q", msg)
	}
	// A reload that lowers the override applies to the existing bucket.
	rl.KeyLimits[0].Requests = 1
	rl.KeyLimits[0].Burst = 1
	if err := rl.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	if w, _ := serveLimited(t, rl, "gold"); w.Header().Get("X-RateLimit-Limit") != "1" {
		t.Fatalf("reloaded limit not applied: %v", w.Header())
	}
}

// A config that never serves (one whose load failed) does not change a
// zone's limits; the zone lives while a config names it.
func TestRateLimitZoneFollowsCommittedConfig(t *testing.T) {
	running := &RateLimit{Zone: t.Name(), Requests: 3, Burst: 3, Key: "{http.auth.user.id}"}
	if err := running.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	if w, _ := serveLimited(t, running, "k"); w.Header().Get("X-RateLimit-Limit") != "3" {
		t.Fatalf("limit %q, want 3", w.Header().Get("X-RateLimit-Limit"))
	}
	failed := &RateLimit{Zone: t.Name(), Requests: 1, Burst: 1, Key: "{http.auth.user.id}"}
	if err := failed.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	failed.Cleanup()
	if w, _ := serveLimited(t, running, "k"); w.Header().Get("X-RateLimit-Limit") != "3" {
		t.Fatalf("a config that never served changed the limit to %q", w.Header().Get("X-RateLimit-Limit"))
	}
	// The next committed config (newer) applies at its first request, and
	// the old config's requests in flight do not bring the old limit back.
	next := &RateLimit{Zone: t.Name(), Requests: 5, Burst: 5, Key: "{http.auth.user.id}"}
	if err := next.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	if w, _ := serveLimited(t, next, "k"); w.Header().Get("X-RateLimit-Limit") != "5" {
		t.Fatalf("new config's limit %q, want 5", w.Header().Get("X-RateLimit-Limit"))
	}
	if w, _ := serveLimited(t, running, "k"); w.Header().Get("X-RateLimit-Limit") != "5" {
		t.Fatalf("an old config's request restored limit %q", w.Header().Get("X-RateLimit-Limit"))
	}
	running.Cleanup()
	if refs, ok := zones.References("impetus_ratelimit.zone:" + t.Name()); !ok || refs != 1 {
		t.Fatalf("zone references %d (%v), want 1", refs, ok)
	}
	next.Cleanup()
	if _, ok := zones.References("impetus_ratelimit.zone:" + t.Name()); ok {
		t.Fatal("a zone no config names is still held")
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

func newCtx(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}
