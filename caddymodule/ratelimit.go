package caddymodule

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
// with Retry-After and an error body in its API's shape.
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

	zone *limitZone
}

// CaddyModule returns the Caddy module information.
func (RateLimit) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.impetus_ratelimit",
		New: func() caddy.Module { return new(RateLimit) },
	}
}

// Provision fills defaults and attaches the shared zone, updating its limits
// in place so a reload applies new limits to existing clients at once.
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
	rl.zone = getZone(rl.Zone)
	rl.zone.configure(rate.Limit(float64(rl.Requests)/time.Duration(rl.Window).Seconds()), rl.Burst)
	return nil
}

// Validate checks the limits.
func (rl *RateLimit) Validate() error {
	if rl.Requests < 0 || rl.Burst < 0 {
		return fmt.Errorf("requests and burst must be positive")
	}
	if rl.Window < 0 {
		return fmt.Errorf("window must be positive")
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
	lim := rl.zone.limiter(key, now)
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
	h.Set("X-RateLimit-Limit", strconv.Itoa(rl.Requests))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(reset))
	if ok {
		return next.ServeHTTP(w, r)
	}
	wait := 1
	if limitPerSec > 0 {
		wait = int(math.Ceil((1 - tokens) / limitPerSec))
	}
	if wait < 1 {
		wait = 1
	}
	h.Set("Retry-After", strconv.Itoa(wait))
	writeError(w, r, http.StatusTooManyRequests, fmt.Sprintf("Rate limit exceeded: %d requests per %s; retry after %d s", rl.Requests, time.Duration(rl.Window), wait))
	return nil
}

// limitZone holds one token bucket per client key.
type limitZone struct {
	mu       sync.Mutex
	limit    rate.Limit
	burst    int
	buckets  map[string]*bucket
	lastScan time.Time
}

type bucket struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

var (
	zonesMu sync.Mutex
	zones   = map[string]*limitZone{}
)

func getZone(name string) *limitZone {
	zonesMu.Lock()
	defer zonesMu.Unlock()
	z := zones[name]
	if z == nil {
		z = &limitZone{buckets: map[string]*bucket{}}
		zones[name] = z
	}
	return z
}

func (z *limitZone) configure(limit rate.Limit, burst int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.limit, z.burst = limit, burst
	now := time.Now()
	for _, b := range z.buckets {
		b.lim.SetLimitAt(now, limit)
		b.lim.SetBurstAt(now, burst)
	}
}

// idleAfter is how long an untouched, refilled bucket is kept.
const idleAfter = 10 * time.Minute

func (z *limitZone) limiter(key string, now time.Time) *rate.Limiter {
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
	b := z.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(z.limit, z.burst)}
		z.buckets[key] = b
	}
	b.lastSeen = now
	return b.lim
}

// UnmarshalCaddyfile sets up the limiter from Caddyfile tokens. Syntax:
//
//	impetus_ratelimit [<zone>] {
//		requests <n>      # per window, default 100
//		window <duration> # default 1m
//		burst <n>         # default 10
//		key <placeholder> # default {http.request.remote.host}
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
		if !d.NextArg() {
			return d.ArgErr()
		}
		val := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		switch opt {
		case "requests", "burst":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return d.Errf("%s must be a positive integer, got %q", opt, val)
			}
			if opt == "requests" {
				rl.Requests = n
			} else {
				rl.Burst = n
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

func parseRateLimit(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	rl := new(RateLimit)
	err := rl.UnmarshalCaddyfile(h.Dispenser)
	return rl, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*RateLimit)(nil)
	_ caddy.Validator             = (*RateLimit)(nil)
	_ caddyhttp.MiddlewareHandler = (*RateLimit)(nil)
	_ caddyfile.Unmarshaler       = (*RateLimit)(nil)
)
