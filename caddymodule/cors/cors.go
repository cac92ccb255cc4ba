// Package cors is the impetus_cors handler, which lets browser pages on the
// listed origins call the API.
package cors

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(CORS{})
	httpcaddyfile.RegisterHandlerDirective("impetus_cors", parseCORS)
	// Before authentication: browsers send preflights without credentials.
	httpcaddyfile.RegisterDirectiveOrder("impetus_cors", httpcaddyfile.Before, "basic_auth")
}

// CORS lets browser pages on the listed origins call the API. Without this
// handler no CORS header is sent, so cross-origin browser calls are refused:
// CORS is closed by default.
type CORS struct {
	// Origins allowed to call the API, such as "https://app.example.com", or
	// "*" for any origin. Required.
	Origins []string `json:"origins,omitempty"`
	// Request headers a page may send. Default: Authorization, Content-Type.
	Headers []string `json:"headers,omitempty"`
	// How long browsers may cache a preflight answer. Default: 10m.
	MaxAge caddy.Duration `json:"max_age,omitempty"`

	any     bool
	allowed map[string]bool
}

// CaddyModule returns the Caddy module information.
func (CORS) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.impetus_cors",
		New: func() caddy.Module { return new(CORS) },
	}
}

// Provision fills defaults.
func (c *CORS) Provision(ctx caddy.Context) error {
	if len(c.Headers) == 0 {
		c.Headers = []string{"Authorization", "Content-Type"}
	}
	if c.MaxAge == 0 {
		c.MaxAge = caddy.Duration(10 * time.Minute)
	}
	c.allowed = map[string]bool{}
	for _, o := range c.Origins {
		if o == "*" {
			c.any = true
		}
		c.allowed[strings.TrimSuffix(o, "/")] = true
	}
	return c.Validate()
}

// Validate requires at least one well-formed origin.
func (c *CORS) Validate() error {
	if len(c.Origins) == 0 {
		return fmt.Errorf("impetus_cors: at least one origin is required")
	}
	for _, o := range c.Origins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return fmt.Errorf("impetus_cors: origin %q must be * or start with http:// or https://", o)
		}
	}
	return nil
}

// ServeHTTP answers preflights and adds CORS headers for allowed origins.
func (c *CORS) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return next.ServeHTTP(w, r)
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !c.any && !c.allowed[origin] {
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.WriteHeader(http.StatusNoContent) // no allow headers: the browser refuses
			return nil
		}
		return next.ServeHTTP(w, r)
	}
	allow := origin
	if c.any {
		allow = "*"
	}
	h.Set("Access-Control-Allow-Origin", allow)
	h.Set("Access-Control-Expose-Headers", "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, X-RateLimit-Limit-Tokens, X-RateLimit-Remaining-Tokens")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", strings.Join(c.Headers, ", "))
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(time.Duration(c.MaxAge).Seconds())))
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return next.ServeHTTP(w, r)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	impetus_cors <origin...> {
//		headers <header...>   # default Authorization Content-Type
//		max_age <duration>    # default 10m
//	}
func (c *CORS) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	c.Origins = append(c.Origins, d.RemainingArgs()...)
	for d.NextBlock(0) {
		switch d.Val() {
		case "origins":
			c.Origins = append(c.Origins, d.RemainingArgs()...)
		case "headers":
			c.Headers = d.RemainingArgs()
			if len(c.Headers) == 0 {
				return d.ArgErr()
			}
		case "max_age":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("max_age must be a positive duration, got %q", d.Val())
			}
			c.MaxAge = caddy.Duration(dur)
		default:
			return d.Errf("unrecognized impetus_cors option %q", d.Val())
		}
	}
	if len(c.Origins) == 0 {
		return d.Err("impetus_cors needs at least one origin")
	}
	return nil
}

func parseCORS(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	c := new(CORS)
	err := c.UnmarshalCaddyfile(h.Dispenser)
	return c, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*CORS)(nil)
	_ caddy.Validator             = (*CORS)(nil)
	_ caddyhttp.MiddlewareHandler = (*CORS)(nil)
	_ caddyfile.Unmarshaler       = (*CORS)(nil)
)
