// Package manage is the impetus_api handler: the management API under
// /api (health probes, models, hardware, metrics) and the API's
// documentation (an OpenAPI document and a Swagger UI page, also at /docs).
// ServeHTTP tries the areas of an explicit route table in turn.
package manage

import (
	"cmp"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/app"
	"github.com/impetusllm/impetus/caddymodule/buildinfo"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/caddymodule/metrics"
	"github.com/impetusllm/impetus/hwinfo"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/kernels"
)

func init() {
	caddy.RegisterModule(API{})
	httpcaddyfile.RegisterHandlerDirective("impetus_api", parseAPI)
	httpcaddyfile.RegisterDirectiveOrder("impetus_api", httpcaddyfile.Before, "reverse_proxy")
}

// API serves the management API under /api: health probes, model
// management, hardware, metrics and the API documentation (also at /docs).
// Requests outside /api pass on.
type API struct {
	app    *app.App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (API) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.impetus_api",
		New: func() caddy.Module { return new(API) },
	}
}

// Provision finds the impetus app (configuring a default one if the
// Caddyfile has no `impetus` global option).
func (h *API) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	a, err := ctx.App("impetus")
	if err != nil {
		return err
	}
	h.app = a.(*app.App)
	// Each config load has a new metrics registry; the collectors join it.
	return metrics.Register(ctx)
}

// routes are the /api areas in the order ServeHTTP tries them. Each serves
// the paths of its area and reports false for a route that is not its own;
// route is the path after "/api", without a trailing slash.
func (h *API) routes() []func(w http.ResponseWriter, r *http.Request, route string) bool {
	return []func(w http.ResponseWriter, r *http.Request, route string) bool{
		h.healthRoutes,
		h.docsRoutes,
		h.hardwareRoutes,
		h.metricsRoutes,
		h.app.Models().ServeAPI,
	}
}

// ServeHTTP routes /api requests.
func (h *API) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	path := r.URL.Path
	if path != "/api" && !strings.HasPrefix(path, "/api/") && path != "/docs" && path != "/docs/" {
		return next.ServeHTTP(w, r)
	}
	route := strings.TrimSuffix(strings.TrimPrefix(path, "/api"), "/")
	for _, serve := range h.routes() {
		if serve(w, r, route) {
			return nil
		}
	}
	httperr.WriteAPI(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+path)
	return nil
}

// healthRoutes serves the probes under /api/health.
func (h *API) healthRoutes(w http.ResponseWriter, r *http.Request, route string) bool {
	switch route {
	case "/health":
		httperr.Only(w, r, http.MethodGet, h.health)
	case "/health/ready":
		httperr.Only(w, r, http.MethodGet, h.ready)
	case "/health/live":
		httperr.Only(w, r, http.MethodGet, h.live)
	case "/health/status":
		httperr.Only(w, r, http.MethodGet, h.status)
	default:
		return false
	}
	return true
}

func uptimeSeconds() float64 { return httperr.RoundTo(time.Since(buildinfo.Started).Seconds(), 3) }

// health is the basic probe: healthy while the engine's heartbeat is
// recent (HeartbeatMaxAge).
func (h *API) health(w http.ResponseWriter, r *http.Request) {
	status, code := "healthy", http.StatusOK
	if !h.app.Engine().Alive(app.HeartbeatMaxAge) {
		status, code = "unhealthy", http.StatusServiceUnavailable
	}
	httperr.WriteJSON(w, code, map[string]any{
		"status":         status,
		"timestamp":      httperr.ISONow(),
		"version":        buildinfo.Version(),
		"uptime_seconds": uptimeSeconds(),
	})
}

type readiness struct {
	Ready     bool            `json:"ready"`
	Timestamp string          `json:"timestamp"`
	Checks    map[string]bool `json:"checks"`
	Message   string          `json:"message"`
}

// checkReady evaluates the readiness checks. mlx_available keeps the seed's
// key: it reports whether the engine that runs MLX-format models is up.
func (h *API) checkReady() readiness {
	engineUp := h.app.Engine().Alive(app.HeartbeatMaxAge)
	memOK := false
	if m, err := hwinfo.ReadMemory(); err == nil {
		memOK = m.UsedPercent < h.app.MaxMemoryPercent
	}
	modelsOK := true
	if h.app.RequireLoadedModel {
		modelsOK = len(h.app.Engine().Loaded()) > 0
	}
	rd := readiness{
		Timestamp: httperr.ISONow(),
		Checks: map[string]bool{
			"memory_available": memOK,
			"models_loaded":    modelsOK,
			"engine_available": engineUp,
			"mlx_available":    engineUp,
		},
	}
	rd.Ready = memOK && modelsOK && engineUp
	var failed []string
	for _, k := range []string{"memory_available", "models_loaded", "engine_available"} {
		if !rd.Checks[k] {
			failed = append(failed, k)
		}
	}
	rd.Message = "Ready"
	if !rd.Ready {
		rd.Message = "Not ready: " + strings.Join(failed, ", ")
	}
	return rd
}

func (h *API) ready(w http.ResponseWriter, r *http.Request) {
	rd := h.checkReady()
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	httperr.WriteJSON(w, code, rd)
}

func (h *API) live(w http.ResponseWriter, r *http.Request) {
	alive := h.app.Engine().Alive(app.HeartbeatMaxAge)
	code := http.StatusOK
	if !alive {
		code = http.StatusServiceUnavailable
	}
	httperr.WriteJSON(w, code, map[string]any{
		"alive":          alive,
		"timestamp":      httperr.ISONow(),
		"uptime_seconds": uptimeSeconds(),
		"last_heartbeat": httperr.ISOTime(h.app.Engine().Heartbeat()),
	})
}

// status reports each component's state; the HTTP status is 503 when the
// server is not ready, so it can serve as a probe too.
func (h *API) status(w http.ResponseWriter, r *http.Request) {
	rd := h.checkReady()
	eng := h.app.Engine()
	engineState := "healthy"
	if !rd.Checks["engine_available"] {
		engineState = "unhealthy"
	}
	models, scanErr := eng.Models()
	loaded := []map[string]any{}
	for _, id := range eng.Loaded() {
		if lm := eng.LoadedModelByID(id); lm != nil {
			loaded = append(loaded, map[string]any{"model_id": id, "loaded_at": httperr.ISOTime(lm.LoadedAt), "load_time_seconds": httperr.RoundTo(lm.LoadTime.Seconds(), 3)})
		}
	}
	modelsComp := map[string]any{
		"status":        "healthy",
		"models_dir":    eng.Options().ModelsDir,
		"available":     len(models),
		"loaded":        len(loaded),
		"loaded_models": loaded,
	}
	if scanErr != nil {
		modelsComp["status"] = "unhealthy"
		modelsComp["error"] = "models directory unreadable"
	} else if h.app.RequireLoadedModel && !rd.Checks["models_loaded"] {
		modelsComp["status"] = "degraded"
	}
	system := map[string]any{"status": "healthy", "goroutines": runtime.NumGoroutine()}
	if m, err := hwinfo.ReadMemory(); err == nil {
		system["memory_total_bytes"] = m.TotalBytes
		system["memory_available_bytes"] = m.AvailableBytes
		system["memory_usage_percent"] = httperr.RoundTo(m.UsedPercent, 1)
		if !rd.Checks["memory_available"] {
			system["status"] = "degraded"
		}
	} else {
		system["status"] = "unknown"
	}
	overall := "healthy"
	code := http.StatusOK
	if !rd.Ready {
		overall, code = "unhealthy", http.StatusServiceUnavailable
	}
	httperr.WriteJSON(w, code, map[string]any{
		"status":         overall,
		"timestamp":      httperr.ISONow(),
		"version":        buildinfo.Version(),
		"uptime_seconds": uptimeSeconds(),
		"checks":         rd.Checks,
		"components": map[string]any{
			"engine": map[string]any{
				"status":           engineState,
				"last_heartbeat":   httperr.ISOTime(eng.Heartbeat()),
				"threads":          kernels.Threads(),
				"performance_mode": h.app.Pool().Performance().Mode,
				"settings":         engineSettings(eng.Options()),
			},
			"models": modelsComp,
			"system": system,
		},
	})
}

// engineSettings are the options the engine runs with now, so an operator
// can see that a reload took effect.
func engineSettings(o inference.Options) map[string]any {
	return map[string]any{
		"kv_cache_mb":            o.KVCacheMB,
		"max_sequences":          o.MaxSequences,
		"max_batch_tokens":       o.MaxBatchTokens,
		"max_queue":              o.MaxQueue,
		"max_concurrent_per_key": o.MaxConcurrentPerKey,
		"max_loaded_models":      o.MaxLoadedModels,
		"idle_unload_seconds":    o.IdleUnload.Seconds(),
		"unload_timeout_seconds": o.UnloadTimeout.Seconds(),
		"threads":                o.Threads,
		"int8_activations":       kernels.Int8Activations(),
		"simd":                   kernels.LevelName(),
		"device":                 cmp.Or(o.Device, "auto"),
		"kv_cache_type":          cmp.Or(o.KVCacheType, "default"),
	}
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	impetus_api
func (h *API) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("impetus_api takes no block")
	}
	return nil
}

func parseAPI(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	api := new(API)
	err := api.UnmarshalCaddyfile(h.Dispenser)
	return api, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*API)(nil)
	_ caddyhttp.MiddlewareHandler = (*API)(nil)
	_ caddyfile.Unmarshaler       = (*API)(nil)
)

// metricsRoutes serves the Prometheus text at /api/metrics and (the seed's
// path) /api/health/metrics.
func (h *API) metricsRoutes(w http.ResponseWriter, r *http.Request, route string) bool {
	if route != "/metrics" && route != "/health/metrics" {
		return false
	}
	httperr.Only(w, r, http.MethodGet, metrics.Handler.ServeHTTP)
	return true
}
