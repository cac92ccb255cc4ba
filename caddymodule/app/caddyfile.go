package app

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/kernels"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("impetus", parseGlobalOption)
}

// parseGlobalOption reads the `impetus` global option. Syntax:
//
//	impetus {
//		models_dir <path>             # default $IMPETUS_MODELS_DIR, else the HF cache
//		threads <n>                   # default: all cores
//		performance_mode efficiency|balanced|performance
//		require_loaded_model          # readiness waits for a loaded model
//		max_memory_percent <p>        # readiness fails above this memory use
//		simd scalar|avx2|avx512|neon  # hold the CPU kernels at a lower level
//		device auto|cpu|cuda|cuda:<n> # where models run (default auto)
//		kv_cache_type f16|f32|q8_0    # KV storage of models loaded from now on
//		kv_cache_mb <n>               # KV cache memory shared by all requests
//		max_sequences <n>             # sequences each model runs at once
//		max_batch_tokens <n>          # tokens per forward step
//		max_queue <n>                 # waiting requests per model (then 429)
//		max_concurrent_per_key <n>    # running sequences per API key
//		max_loaded_models <n>         # models in memory at once (LRU idle one unloads)
//		idle_unload <duration>        # unload a model after this long without requests
//		unload_timeout <duration>     # how long a non-force unload waits (default 30s)
//		embeddings_truncate           # cut over-long /v1/embeddings inputs instead of a 400
//		route <model-pattern...> {    # serve these models from upstreams
//			to <url...>
//			upstream_key <key>        # sent upstream instead of the client's key
//			fallback                  # local when on disk, upstream otherwise
//			health_uri <path>         # default /api/health/ready
//			health_interval <dur>     # default 10s
//		}
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if existing != nil {
		return nil, d.Err("impetus: the global option may appear only once")
	}
	d.Next()
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "models_dir", "performance_mode":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			if opt == "models_dir" {
				app.ModelsDir = d.Val()
			} else {
				app.PerformanceMode = d.Val()
				if err := (&App{PerformanceMode: app.PerformanceMode}).Validate(); err != nil {
					return nil, d.Errf("%v", err)
				}
			}
		case "simd", "device":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			if opt == "simd" {
				if err := kernels.CheckLevel(d.Val()); err != nil {
					return nil, d.Errf("simd: %v", err)
				}
				app.SIMD = d.Val()
			} else {
				if err := inference.CheckDevice(d.Val()); err != nil {
					return nil, d.Errf("%v", err)
				}
				app.Device = d.Val()
			}
		case "kv_cache_type":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			if err := inference.CheckKVCacheType(d.Val()); err != nil {
				return nil, d.Errf("kv_cache_type: %v", err)
			}
			app.KVCacheType = d.Val()
		case "activations":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			if v := d.Val(); v != "int8" && v != "float" {
				return nil, d.Errf("activations must be int8 or float, got %q", v)
			}
			app.Activations = d.Val()
		case "threads":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n <= 0 {
				return nil, d.Errf("threads must be a positive integer, got %q", d.Val())
			}
			app.Threads = n
		case "max_memory_percent":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			p, err := strconv.ParseFloat(d.Val(), 64)
			if err != nil || p <= 0 || p > 100 {
				return nil, d.Errf("max_memory_percent must be within (0, 100], got %q", d.Val())
			}
			app.MaxMemoryPercent = p
		case "kv_cache_mb", "max_sequences", "max_batch_tokens", "max_queue", "max_concurrent_per_key":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n <= 0 {
				return nil, d.Errf("%s must be a positive integer, got %q", opt, d.Val())
			}
			*map[string]*int{"kv_cache_mb": &app.KVCacheMB, "max_sequences": &app.MaxSequences, "max_batch_tokens": &app.MaxBatchTokens,
				"max_queue": &app.MaxQueue, "max_concurrent_per_key": &app.MaxConcurrentPerKey}[opt] = n
		case "max_loaded_models":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n <= 0 {
				return nil, d.Errf("max_loaded_models must be a positive integer, got %q", d.Val())
			}
			app.MaxLoadedModels = n
		case "idle_unload", "unload_timeout":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return nil, d.Errf("%s must be a positive duration, got %q", opt, d.Val())
			}
			if opt == "idle_unload" {
				app.IdleUnload = caddy.Duration(dur)
			} else {
				app.UnloadTimeout = caddy.Duration(dur)
			}
		case "require_loaded_model":
			app.RequireLoadedModel = true
		case "auto_download":
			app.AutoDownload = true
		case "embeddings_truncate":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			app.EmbeddingsTruncate = true
		case "auto_download_wait":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return nil, d.Errf("auto_download_wait must be a positive duration, got %q", d.Val())
			}
			app.AutoDownloadWait = caddy.Duration(dur)
		case "route":
			rt, err := parseRoute(d)
			if err != nil {
				return nil, err
			}
			app.Routes = append(app.Routes, rt)
			continue
		default:
			return nil, d.Errf("unrecognized impetus option %q", opt)
		}
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	}
	return httpcaddyfile.App{Name: "impetus", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseRoute reads one `route` block of the impetus global option.
func parseRoute(d *caddyfile.Dispenser) (ModelRoute, error) {
	rt := ModelRoute{Models: d.RemainingArgs()}
	if len(rt.Models) == 0 {
		return rt, d.Err("route needs at least one model id or pattern")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "to":
			rt.Upstreams = append(rt.Upstreams, d.RemainingArgs()...)
		case "upstream_key", "health_uri":
			if !d.NextArg() {
				return rt, d.ArgErr()
			}
			if opt == "upstream_key" {
				rt.UpstreamKey = d.Val()
			} else {
				rt.HealthURI = d.Val()
			}
		case "health_interval":
			if !d.NextArg() {
				return rt, d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return rt, d.Errf("health_interval must be a positive duration, got %q", d.Val())
			}
			rt.HealthInterval = caddy.Duration(dur)
		case "fallback":
			rt.Fallback = true
		default:
			return rt, d.Errf("unrecognized route option %q", opt)
		}
	}
	if len(rt.Upstreams) == 0 {
		return rt, d.Err("route needs `to <upstream URL...>`")
	}
	return rt, nil
}
