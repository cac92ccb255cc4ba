package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/impetusllm/impetus/caddymodule/openai"
	"go.uber.org/zap"
)

// ModelRoute sends requests for some models to upstream OpenAI-compatible
// servers (more Impetus nodes, vLLM, llama-server, a cloud API) through
// Caddy's reverse proxy: load balancing, active and passive health checks,
// retries and TLS to upstreams come from it.
type ModelRoute struct {
	// Model ids this route serves: exact ids, or patterns such as "org/*"
	// (path.Match syntax).
	Models []string `json:"models"`
	// Base URLs of the upstreams, e.g. "https://node2.example.com" or
	// "http://10.0.0.5:8080". All of one route share a scheme.
	Upstreams []string `json:"upstreams"`
	// Bearer key sent to the upstreams in place of the client's own
	// Authorization header (which is never forwarded). Placeholders such as
	// {env.UPSTREAM_KEY} are expanded. Default: none.
	UpstreamKey string `json:"upstream_key,omitempty"`
	// Serve the model locally when it is on this node's disk, and use the
	// upstreams only otherwise. Default: false (always upstream).
	Fallback bool `json:"fallback,omitempty"`
	// Path probed by active health checks. Default: /api/health/ready.
	HealthURI string `json:"health_uri,omitempty"`
	// How often to probe. Default: 10s.
	HealthInterval caddy.Duration `json:"health_interval,omitempty"`

	proxy caddyhttp.MiddlewareHandler
	key   string
	bases []*url.URL

	listing *routeListing
}

// routeListing is the last model listing fetched from a route's upstreams.
type routeListing struct {
	mu     sync.Mutex
	models []openai.Model
}

// AffinityHeader carries the key that the header-hash selection policy uses,
// so one conversation keeps hitting one upstream (and its prefix cache).
const AffinityHeader = "X-Impetus-Affinity"

// provisionRoutes validates the routes and builds one reverse proxy each.
func (a *App) provisionRoutes(ctx caddy.Context) error {
	maxBody := a.Limits.WithDefaults().MaxBodyBytes
	repl := caddy.NewReplacer()
	for i := range a.Routes {
		rt := &a.Routes[i]
		if len(rt.Models) == 0 || len(rt.Upstreams) == 0 {
			return fmt.Errorf("route %d: models and upstreams are required", i)
		}
		for _, m := range rt.Models {
			if _, err := path.Match(m, ""); err != nil {
				return fmt.Errorf("route %d: bad model pattern %q: %v", i, m, err)
			}
		}
		if rt.HealthURI == "" {
			rt.HealthURI = "/api/health/ready"
		}
		if rt.HealthInterval == 0 {
			rt.HealthInterval = caddy.Duration(10 * time.Second)
		}
		rt.key = repl.ReplaceAll(rt.UpstreamKey, "")
		rt.listing = new(routeListing)
		scheme := ""
		var dials []map[string]any
		for _, raw := range rt.Upstreams {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("route %d: upstream %q must be an http:// or https:// URL", i, raw)
			}
			if scheme != "" && u.Scheme != scheme {
				return fmt.Errorf("route %d: upstreams mix http and https", i)
			}
			scheme = u.Scheme
			host := u.Host
			if u.Port() == "" {
				host += map[string]string{"http": ":80", "https": ":443"}[u.Scheme]
			}
			dials = append(dials, map[string]any{"dial": host})
			rt.bases = append(rt.bases, u)
		}
		reqHeaders := map[string]any{
			"set":    map[string][]string{"Host": {"{http.reverse_proxy.upstream.hostport}"}},
			"delete": []string{"Authorization"},
		}
		if rt.key != "" {
			reqHeaders = map[string]any{"set": map[string][]string{
				"Host":          {"{http.reverse_proxy.upstream.hostport}"},
				"Authorization": {"Bearer " + rt.key},
			}}
		}
		active := map[string]any{"uri": rt.HealthURI, "interval": int64(rt.HealthInterval), "timeout": int64(5 * time.Second)}
		if rt.key != "" {
			// Probes carry the key too: a back end that protects every
			// path, its health endpoints included, would otherwise answer
			// 401 and be marked down.
			active["headers"] = map[string][]string{"Authorization": {"Bearer " + rt.key}}
		}
		cfg := map[string]any{
			"upstreams": dials,
			"load_balancing": map[string]any{
				"selection_policy": map[string]any{"policy": "header", "field": AffinityHeader},
				"retries":          2,
				"try_duration":     int64(5 * time.Second),
				// A transport error before any response (a dial failure, or
				// an idle connection closed by a stopping upstream) is safe
				// to retry for generation requests: the client got nothing.
				"retry_match": []map[string]any{{"method": []string{"POST"}}},
			},
			// Buffered so a retried request can send its body again; the
			// body is already bounded by the OpenAI handler's limit.
			"request_buffers": maxBody,
			"health_checks": map[string]any{
				"active":  active,
				"passive": map[string]any{"fail_duration": int64(30 * time.Second), "max_fails": 1},
			},
			"flush_interval": -1,
			"headers":        map[string]any{"request": reqHeaders},
		}
		if scheme == "https" {
			cfg["transport"] = map[string]any{"protocol": "http", "tls": map[string]any{}}
		}
		raw, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		mod, err := ctx.LoadModuleByID("http.handlers.reverse_proxy", raw)
		if err != nil {
			return fmt.Errorf("route %d: %w", i, err)
		}
		rt.proxy = mod.(caddyhttp.MiddlewareHandler)
	}
	return nil
}

// RouteFor returns the route serving model, if any.
func (a *App) RouteFor(model string) *ModelRoute {
	for i := range a.Routes {
		for _, m := range a.Routes[i].Models {
			if ok, _ := path.Match(m, model); ok {
				return &a.Routes[i]
			}
		}
	}
	return nil
}

// refreshRouteModels fetches each route's upstream model lists in the
// background, so listing never waits on an upstream.
func (a *App) refreshRouteModels(ctx context.Context) {
	client := &http.Client{Timeout: 5 * time.Second}
	refresh := func() {
		for i := range a.Routes {
			rt := &a.Routes[i]
			seen := map[string]bool{}
			var found []openai.Model
			for _, base := range rt.bases {
				for _, m := range fetchModels(ctx, client, base, rt.key) {
					if !seen[m.ID] && rt.serves(m.ID) {
						seen[m.ID] = true
						found = append(found, m)
					}
				}
			}
			rt.listing.mu.Lock()
			rt.listing.models = found
			rt.listing.mu.Unlock()
		}
	}
	refresh()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			refresh()
		}
	}
}

func (rt *ModelRoute) serves(model string) bool {
	for _, m := range rt.Models {
		if ok, _ := path.Match(m, model); ok {
			return true
		}
	}
	return false
}

func fetchModels(ctx context.Context, client *http.Client, base *url.URL, key string) []openai.Model {
	u := *base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var list struct {
		Data []openai.Model `json:"data"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&list) != nil {
		return nil
	}
	return list.Data
}

// UpstreamModels is every routed model currently listed by an upstream.
func (a *App) UpstreamModels() []openai.Model {
	var out []openai.Model
	for i := range a.Routes {
		rt := &a.Routes[i]
		rt.listing.mu.Lock()
		out = append(out, rt.listing.models...)
		rt.listing.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// routeLogFields describes routes for the startup log.
func routeLogFields(routes []ModelRoute) zap.Field {
	var parts []string
	for i := range routes {
		rt := &routes[i]
		parts = append(parts, strings.Join(rt.Models, ",")+" → "+strings.Join(rt.Upstreams, ","))
	}
	return zap.Strings("routes", parts)
}

// Proxy sends the request to the route's upstreams through its reverse
// proxy.
func (rt *ModelRoute) Proxy(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return rt.proxy.ServeHTTP(w, r, next)
}
