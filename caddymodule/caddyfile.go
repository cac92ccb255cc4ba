package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
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
		case "require_loaded_model":
			app.RequireLoadedModel = true
		default:
			return nil, d.Errf("unrecognized impetus option %q", opt)
		}
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	}
	return httpcaddyfile.App{Name: "impetus", Value: caddyconfig.JSON(app, nil)}, nil
}
