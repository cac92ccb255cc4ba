package app

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/impetusllm/impetus/caddymodule/pool"
	"github.com/impetusllm/impetus/inference/kernels"
)

func newCtx(t *testing.T) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func TestAppProvisionAndValidate(t *testing.T) {
	t.Setenv("IMPETUS_MODELS_DIR", t.TempDir())
	cases := []struct {
		name    string
		app     App
		wantErr string
	}{
		{name: "defaults", app: App{}},
		{name: "bad mode", app: App{PerformanceMode: "turbo"}, wantErr: "performance_mode"},
		{name: "negative threads", app: App{Threads: -1}, wantErr: "threads"},
		{name: "bad memory percent", app: App{MaxMemoryPercent: 150}, wantErr: "max_memory_percent"},
		{name: "bad activations", app: App{Activations: "int4"}, wantErr: "activations"},
		{name: "kv_cache_type q8_0", app: App{KVCacheType: "q8_0"}},
		{name: "bad kv_cache_type", app: App{KVCacheType: "q4_0"}, wantErr: `kv_cache_type: kv cache storage must be f16, f32 or q8_0, got "q4_0"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.app
			err := a.Provision(newCtx(t))
			defer a.Cleanup()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want error containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.PerformanceMode != pool.ModeBalanced || a.MaxMemoryPercent != 95 || a.Engine() == nil {
				t.Fatalf("defaults not filled: %+v", a)
			}
		})
	}
}

// Two configs on the same models dir share one engine, as across a reload.
func TestEngineSurvivesReload(t *testing.T) {
	dir := t.TempDir()
	old := App{ModelsDir: dir}
	if err := old.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	next := App{ModelsDir: dir}
	if err := next.Provision(newCtx(t)); err != nil {
		t.Fatal(err)
	}
	if old.Engine() != next.Engine() {
		t.Fatal("reload built a second engine")
	}
	eng := next.Engine()
	old.Cleanup()
	if !eng.Alive(HeartbeatMaxAge) {
		t.Fatal("engine stopped while the new config still uses it")
	}
	next.Cleanup()
	if eng.Alive(HeartbeatMaxAge) {
		t.Fatal("engine still running after the last config released it")
	}
}

// TestActivationsFollowReload checks that the process-wide activation
// setting follows each started config, back to the default when a reload
// drops the option, and that provisioning alone changes nothing.
func TestActivationsFollowReload(t *testing.T) {
	t.Setenv("IMPETUS_MODELS_DIR", t.TempDir())
	t.Setenv("IMPETUS_INT8", "")
	t.Setenv("IMPETUS_INT8_MLX", "")
	defer kernels.ResetInt8()
	for _, c := range []struct {
		activations string
		int8, mlx   bool
	}{{"float", false, false}, {"", true, true}, {"float", false, false}, {"int8", true, true}} {
		read := func() (bool, bool) {
			on, mlx := kernels.SetInt8Activations(true), kernels.SetInt8MLX(true)
			kernels.SetInt8Activations(on)
			kernels.SetInt8MLX(mlx)
			return on, mlx
		}
		was, wasMLX := read()
		a := App{Activations: c.activations}
		if err := a.Provision(newCtx(t)); err != nil {
			t.Fatal(err)
		}
		if on, mlx := read(); on != was || mlx != wasMLX {
			t.Errorf("activations %q: Provision changed the setting", c.activations)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		on, mlx := read()
		a.Stop()
		if on != c.int8 || mlx != c.mlx {
			t.Errorf("activations %q: int8 %v, MLX int8 %v; want %v, %v", c.activations, on, mlx, c.int8, c.mlx)
		}
		a.Cleanup()
	}
}
