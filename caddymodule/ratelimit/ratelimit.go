// Package ratelimit is the impetus_ratelimit handler: request buckets per
// client key and, optionally, a budget of model tokens per minute that the
// OpenAI handler charges.
package ratelimit

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"golang.org/x/time/rate"
)

func init() {
	caddy.RegisterModule(RateLimit{})
	httpcaddyfile.RegisterHandlerDirective("impetus_ratelimit", parseRateLimit)
	httpcaddyfile.RegisterDirectiveOrder("impetus_ratelimit", httpcaddyfile.Before, "request_header")
}

// RateLimit limits requests per key with token buckets: Requests per Window
// on average, up to Burst at once. Every response carries X-RateLimit-Limit,
// X-RateLimit-Remaining and X-RateLimit-Reset; a refused request gets 429
// with Retry-After and an error body in its API's shape. With
// TokensPerMinute set, each key also has a budget of model tokens that the
// OpenAI handler charges (prompt plus max_tokens) before generating and
// refunds for what was not used.
type RateLimit struct {
	// Name of the zone. Zones with the same name share their buckets across
	// sites and survive config reloads. Default: "default".
	Zone string `json:"zone,omitempty"`
	// Requests allowed per Window. Default: 100.
	Requests int `json:"requests,omitempty"`
	// Window over which Requests refill. Default: 1m.
	Window caddy.Duration `json:"window,omitempty"`
	// Largest number of requests allowed at once. Default: 10.
	Burst int `json:"burst,omitempty"`
	// What identifies a client: a placeholder such as {http.auth.user.id}.
	// Default: the client IP ({http.request.remote.host}). A key that expands
	// to nothing falls back to the client IP.
	Key string `json:"key,omitempty"`
	// Model tokens (prompt and completion) each key may use per minute.
	// Default: 0, no token budget.
	TokensPerMinute int `json:"tokens_per_minute,omitempty"`
	// Limits for particular keys (matched against the expanded Key, e.g. an
	// API key id), overriding the zone's defaults field by field.
	KeyLimits []KeyLimit `json:"key_limits,omitempty"`

	zone    *limitZone
	zoneKey string            // the zone's key in the usage pool
	gen     uint64            // provision order: the newest config's limits win
	def     policy            // the limits this config asks for
	limits  map[string]policy // per-key overrides this config asks for
}

// KeyLimit overrides the limits of one client key. Zero fields keep the
// zone's values.
type KeyLimit struct {
	// The client key this applies to, e.g. an API key id.
	Key             string         `json:"key"`
	Requests        int            `json:"requests,omitempty"`
	Window          caddy.Duration `json:"window,omitempty"`
	Burst           int            `json:"burst,omitempty"`
	TokensPerMinute int            `json:"tokens_per_minute,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (RateLimit) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.impetus_ratelimit",
		New: func() caddy.Module { return new(RateLimit) },
	}
}

// Provision fills defaults and attaches the shared zone. The zone takes this
// config's limits at its first request (existing clients' buckets
// included), not here: a config that fails to load never changes them.
func (rl *RateLimit) Provision(ctx caddy.Context) error {
	if rl.Zone == "" {
		rl.Zone = "default"
	}
	if rl.Requests == 0 {
		rl.Requests = 100
	}
	if rl.Window == 0 {
		rl.Window = caddy.Duration(time.Minute)
	}
	if rl.Burst == 0 {
		rl.Burst = 10
	}
	if rl.Key == "" {
		rl.Key = "{http.request.remote.host}"
	}
	if err := rl.Validate(); err != nil {
		return err
	}
	def := policy{requests: rl.Requests, window: time.Duration(rl.Window), burst: rl.Burst, tpm: rl.TokensPerMinute}
	overrides := make(map[string]policy, len(rl.KeyLimits))
	for _, kl := range rl.KeyLimits {
		p := def
		if kl.Requests > 0 {
			p.requests = kl.Requests
		}
		if kl.Window > 0 {
			p.window = time.Duration(kl.Window)
		}
		if kl.Burst > 0 {
			p.burst = kl.Burst
		}
		if kl.TokensPerMinute > 0 {
			p.tpm = kl.TokensPerMinute
		}
		overrides[kl.Key] = p
	}
	rl.def, rl.limits, rl.gen = def, overrides, zoneGen.Add(1)
	rl.zoneKey = "impetus_ratelimit.zone:" + rl.Zone
	val, _, err := zones.LoadOrNew(rl.zoneKey, func() (caddy.Destructor, error) {
		return &limitZone{buckets: map[string]*bucket{}}, nil
	})
	if err != nil {
		return fmt.Errorf("rate limit zone %q: %w", rl.Zone, err)
	}
	rl.zone = val.(*limitZone)
	return nil
}

// Cleanup releases this config's use of the zone; the zone and its buckets
// go when no config uses it any more.
func (rl *RateLimit) Cleanup() error {
	if rl.zoneKey != "" {
		_, _ = zones.Delete(rl.zoneKey)
		rl.zoneKey = "" // rl.zone stays for requests still in flight

	}
	return nil
}

// Validate checks the limits.
func (rl *RateLimit) Validate() error {
	if rl.Requests < 0 || rl.Burst < 0 || rl.TokensPerMinute < 0 {
		return fmt.Errorf("requests, burst and tokens_per_minute must be positive")
	}
	if rl.Window < 0 {
		return fmt.Errorf("window must be positive")
	}
	seen := map[string]bool{}
	for _, kl := range rl.KeyLimits {
		if kl.Key == "" {
			return fmt.Errorf("key_limits: an entry has no key")
		}
		if seen[kl.Key] {
			return fmt.Errorf("key_limits: key %q appears twice", kl.Key)
		}
		seen[kl.Key] = true
		if kl.Requests < 0 || kl.Burst < 0 || kl.Window < 0 || kl.TokensPerMinute < 0 {
			return fmt.Errorf("key_limits %q: values must be positive", kl.Key)
		}
	}
	return nil
}

// ServeHTTP admits or refuses the request.
func (rl *RateLimit) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	key := repl.ReplaceAll(rl.Key, "")
	if key == "" {
		key, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	now := time.Now()
	rl.zone.adopt(rl)
	b, pol := rl.zone.bucket(key, now)
	lim := b.requests
	ok := lim.AllowN(now, 1)
	tokens := lim.TokensAt(now)
	limitPerSec := float64(lim.Limit())
	remaining := int(math.Max(0, math.Floor(tokens)))
	// Seconds until the bucket is full again.
	reset := 0
	if limitPerSec > 0 {
		reset = int(math.Ceil((float64(lim.Burst()) - tokens) / limitPerSec))
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(pol.requests))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(reset))
	if !ok {
		wait := 1
		if limitPerSec > 0 {
			wait = int(math.Ceil((1 - tokens) / limitPerSec))
		}
		if wait < 1 {
			wait = 1
		}
		h.Set("Retry-After", strconv.Itoa(wait))
		httperr.Write(w, r, http.StatusTooManyRequests, fmt.Sprintf("Rate limit exceeded: %d requests per %s; retry after %d s", pol.requests, pol.window, wait))
		return nil
	}
	if b.tokens != nil {
		caddyhttp.SetVar(r.Context(), TokenBudgetVar, b.tokens)
	}
	caddyhttp.SetVar(r.Context(), rateLimitVar, rl) // for ChargeSocket
	return next.ServeHTTP(w, r)
}

// policy is the effective limit of one client key.
type policy struct {
	requests int
	window   time.Duration
	burst    int
	tpm      int
}

func (p policy) rate() rate.Limit { return rate.Limit(float64(p.requests) / p.window.Seconds()) }

// limitZone holds one bucket pair per client key.
type limitZone struct {
	mu        sync.Mutex
	def       policy
	overrides map[string]policy
	buckets   map[string]*bucket
	lastScan  time.Time
	gen       uint64 // provision order of the limits in force
}

// Destruct lets the usage pool drop the zone.
func (z *limitZone) Destruct() error { return nil }

// adopt installs rl's limits when rl comes from a newer config than the
// limits in force, so requests still in an old config's handlers during a
// reload do not bring old limits back.
func (z *limitZone) adopt(rl *RateLimit) {
	z.mu.Lock()
	newer := rl.gen > z.gen
	z.mu.Unlock()
	if newer {
		z.configure(rl.gen, rl.def, rl.limits)
	}
}

type bucket struct {
	requests *rate.Limiter
	tokens   *TokenBudget // nil without a token budget
	lastSeen time.Time
}

// zones holds the rate-limit zones by name (in their own pool, so the names
// cannot collide with other pooled state); a reload keeps a zone and its
// buckets, and a zone no config names goes away.
var zones = caddy.NewUsagePool()

// zoneGen numbers provisions of rate limiters.
var zoneGen atomic.Uint64

func (z *limitZone) policyFor(key string) policy {
	if p, ok := z.overrides[key]; ok {
		return p
	}
	return z.def
}

// configure installs new limits and applies them to existing buckets.
func (z *limitZone) configure(gen uint64, def policy, overrides map[string]policy) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if gen <= z.gen {
		return
	}
	z.gen, z.def, z.overrides = gen, def, overrides
	now := time.Now()
	for key, b := range z.buckets {
		p := z.policyFor(key)
		b.requests.SetLimitAt(now, p.rate())
		b.requests.SetBurstAt(now, p.burst)
		switch {
		case p.tpm == 0:
			b.tokens = nil
		case b.tokens == nil:
			b.tokens = newTokenBudget(p.tpm, now)
		default:
			b.tokens.setCapacity(p.tpm)
		}
	}
}

// idleAfter is how long an untouched, refilled bucket is kept.
const idleAfter = 10 * time.Minute

func (z *limitZone) bucket(key string, now time.Time) (*bucket, policy) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if now.Sub(z.lastScan) > time.Minute {
		z.lastScan = now
		for k, b := range z.buckets {
			if now.Sub(b.lastSeen) > idleAfter {
				delete(z.buckets, k)
			}
		}
	}
	p := z.policyFor(key)
	b := z.buckets[key]
	if b == nil {
		b = &bucket{requests: rate.NewLimiter(p.rate(), p.burst)}
		if p.tpm > 0 {
			b.tokens = newTokenBudget(p.tpm, now)
		}
		z.buckets[key] = b
	}
	b.lastSeen = now
	return b, p
}

// TokenBudgetVar is the request variable holding the client's *TokenBudget.
const TokenBudgetVar = "impetus.token_budget"

// TokenBudget is a bucket of model tokens refilling at capacity per minute.
// Unlike x/time/rate it can refund: a request is charged its worst case
// before generating and credited what it did not use.
type TokenBudget struct {
	mu       sync.Mutex
	capacity float64
	tokens   float64
	last     time.Time
}

func newTokenBudget(perMinute int, now time.Time) *TokenBudget {
	return &TokenBudget{capacity: float64(perMinute), tokens: float64(perMinute), last: now}
}

func (t *TokenBudget) refill(now time.Time) {
	if now.Before(t.last) {
		return // clocks read out of order by concurrent callers
	}
	t.tokens = math.Min(t.capacity, t.tokens+now.Sub(t.last).Minutes()*t.capacity)
	t.last = now
}

func (t *TokenBudget) setCapacity(perMinute int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(time.Now())
	t.capacity = float64(perMinute)
	t.tokens = math.Min(t.tokens, t.capacity)
}

// charge takes n tokens. When they are not there it reports how long until
// they are; a request larger than the whole budget can never pass.
func (t *TokenBudget) charge(n int, now time.Time) (ok bool, wait time.Duration, remaining int, capacity int, tooLarge bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(now)
	capacity = int(t.capacity)
	if float64(n) > t.capacity {
		return false, 0, int(t.tokens), capacity, true
	}
	if float64(n) > t.tokens {
		missing := float64(n) - t.tokens
		return false, time.Duration(missing / t.capacity * float64(time.Minute)), int(t.tokens), capacity, false
	}
	t.tokens -= float64(n)
	return true, 0, int(t.tokens), capacity, false
}

func (t *TokenBudget) refund(n int, now time.Time) {
	if n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(now)
	t.tokens = math.Min(t.capacity, t.tokens+float64(n))
}

// Exhausted reports whether the budget has nothing left.
func (t *TokenBudget) Exhausted(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(now)
	return t.tokens < 1
}

// Spend takes n tokens already used (reported by an upstream), even below
// zero: the key then waits until the budget has refilled.
func (t *TokenBudget) Spend(n int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill(now)
	t.tokens -= float64(n)
}

// ChargeTokens charges n model tokens to the request's token budget, if the
// rate limiter gave it one, and sets X-RateLimit-*-Tokens headers. It returns
// a function that refunds the part of n that was not used.
func ChargeTokens(w http.ResponseWriter, r *http.Request, n int) (refund func(used int), errMsg string, retryAfter int) {
	t, _ := caddyhttp.GetVar(r.Context(), TokenBudgetVar).(*TokenBudget)
	if t == nil {
		return func(int) {}, "", 0
	}
	ok, wait, remaining, capacity, tooLarge := t.charge(n, time.Now())
	h := w.Header()
	h.Set("X-RateLimit-Limit-Tokens", strconv.Itoa(capacity))
	h.Set("X-RateLimit-Remaining-Tokens", strconv.Itoa(remaining))
	switch {
	case tooLarge:
		return nil, fmt.Sprintf("Token budget exceeded: this request may use %d tokens (prompt plus max_tokens) but the budget is %d tokens per minute; lower max_tokens", n, capacity), 60
	case !ok:
		secs := int(math.Ceil(wait.Seconds()))
		if secs < 1 {
			secs = 1
		}
		return nil, fmt.Sprintf("Token budget exceeded: %d tokens per minute; %d remain and this request needs %d; retry after %d s", capacity, remaining, n, secs), secs
	}
	return func(used int) { t.refund(n-used, time.Now()) }, "", 0
}

// UnmarshalCaddyfile sets up the limiter from Caddyfile tokens. Syntax:
//
//	impetus_ratelimit [<zone>] {
//		requests <n>      # per window, default 100
//		window <duration> # default 1m
//		burst <n>         # default 10
//		key <placeholder> # default {http.request.remote.host}
//		tokens_per_minute <n>   # model-token budget per key; default none
//		key_limit <key> [requests <n>] [window <d>] [burst <n>] [tokens_per_minute <n>]
//	}
func (rl *RateLimit) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		rl.Zone = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt == "key_limit" {
			kl, err := parseKeyLimit(d)
			if err != nil {
				return err
			}
			rl.KeyLimits = append(rl.KeyLimits, kl)
			continue
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		val := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "requests", "burst", "tokens_per_minute":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return d.Errf("%s must be a positive integer, got %q", opt, val)
			}
			switch opt {
			case "requests":
				rl.Requests = n
			case "burst":
				rl.Burst = n
			default:
				rl.TokensPerMinute = n
			}
		case "window":
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return d.Errf("window must be a positive duration, got %q", val)
			}
			rl.Window = caddy.Duration(dur)
		case "key":
			rl.Key = val
		default:
			return d.Errf("unrecognized impetus_ratelimit option %q", opt)
		}
	}
	return nil
}

// parseKeyLimit reads: key_limit <key> [requests <n>] [window <d>] [burst <n>] [tokens_per_minute <n>]
func parseKeyLimit(d *caddyfile.Dispenser) (KeyLimit, error) {
	args := d.RemainingArgs()
	if len(args) < 3 || len(args)%2 != 1 {
		return KeyLimit{}, d.Errf("key_limit takes <key> followed by option/value pairs")
	}
	kl := KeyLimit{Key: args[0]}
	for i := 1; i < len(args); i += 2 {
		opt, val := args[i], args[i+1]
		if opt == "window" {
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return kl, d.Errf("key_limit window must be a positive duration, got %q", val)
			}
			kl.Window = caddy.Duration(dur)
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil || n <= 0 {
			return kl, d.Errf("key_limit %s must be a positive integer, got %q", opt, val)
		}
		switch opt {
		case "requests":
			kl.Requests = n
		case "burst":
			kl.Burst = n
		case "tokens_per_minute":
			kl.TokensPerMinute = n
		default:
			return kl, d.Errf("unrecognized key_limit option %q", opt)
		}
	}
	return kl, nil
}

func parseRateLimit(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	rl := new(RateLimit)
	err := rl.UnmarshalCaddyfile(h.Dispenser)
	return rl, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*RateLimit)(nil)
	_ caddy.Validator             = (*RateLimit)(nil)
	_ caddy.CleanerUpper          = (*RateLimit)(nil)
	_ caddyhttp.MiddlewareHandler = (*RateLimit)(nil)
	_ caddyfile.Unmarshaler       = (*RateLimit)(nil)
)

// ChargeSocket takes one request from the key's rate-limit bucket, as the
// HTTP API would for a request by that key.
func ChargeSocket(r *http.Request, keyID string) error {
	rl, _ := caddyhttp.GetVar(r.Context(), rateLimitVar).(*RateLimit)
	if rl == nil || rl.zone == nil {
		return nil
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return nil
	}
	repl.Set("http.auth.user.id", keyID)
	key := repl.ReplaceAll(rl.Key, "")
	if key == "" {
		return nil
	}
	b, pol := rl.zone.bucket(key, time.Now())
	if !b.requests.Allow() {
		return fmt.Errorf("Rate limit exceeded: %d requests per %s", pol.requests, pol.window)
	}
	return nil
}

// rateLimitVar carries the RateLimit handler that admitted a request, so a
// Socket.IO connection can be charged to its key's bucket as well.
const rateLimitVar = "impetus.ratelimit"
