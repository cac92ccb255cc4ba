// Package app is the impetus app (global option `impetus`): it owns the
// pooled engine every Impetus handler of a config serves from, applies the
// process-wide settings when a config starts, routes models to upstream
// servers through Caddy's reverse proxy, and ends streams cleanly on exit.
// Heavy state lives in the pool package, so config reloads reuse it.
package app

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/manage/models"
	"github.com/impetusllm/impetus/caddymodule/metrics"
	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/caddymodule/pool"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/kernels"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the impetus app: it owns the inference engine for every Impetus
// handler of the config. Configure it with the global option `impetus`.
type App struct {
	// Folder holding the models. Default: $IMPETUS_MODELS_DIR, else the
	// Hugging Face hub cache (~/.cache/huggingface/hub). Placeholders such as
	// {env.X} are expanded.
	ModelsDir string `json:"models_dir,omitempty"`

	// Compute threads for inference. Default: all CPU cores in "performance"
	// and "balanced" mode, half of them in "efficiency" mode.
	Threads int `json:"threads,omitempty"`

	// One of "efficiency", "balanced" or "performance". Default: "balanced".
	PerformanceMode string `json:"performance_mode,omitempty"`

	// Activations of quantized matrix products: "int8" quantizes them per
	// 32 values for integer dot products, with the weights repacked at load
	// on AVX2, AVX-512 and ARM64 CPUs (GGUF Q8_0, Q4_0, Q5_0, Q4_K, Q6_K and
	// MLX 4-bit; the README's Engine section lists the packed formats) and
	// with unpacked Q8_0, Q4_0 and MLX 4-bit ones with AVX-512 VNNI or on
	// ARM64 (about 2x faster prefill and decode on AVX-512). "float" keeps
	// float32 (results match transformers to float rounding). Default: int8,
	// unless the environment sets IMPETUS_INT8=0 (or IMPETUS_INT8_MLX=0 for
	// MLX weights). The setting is process-wide and follows each reload.
	Activations string `json:"activations,omitempty"`

	// SIMD level of the CPU kernels: "scalar", "avx2", "avx512" or "neon",
	// at most the CPU's best. Holds the engine at a lower level than it
	// would pick, to compare levels on one machine or to rule a kernel out.
	// Default: the CPU's best (or IMPETUS_SIMD where the environment sets
	// it). Process-wide; applies on reload.
	SIMD string `json:"simd,omitempty"`

	// How the KV cache stores keys and values: "f16" (half precision),
	// "f32" or "q8_0" (blocks of 32 int8 values with a half scale: 34
	// bytes per 32 values, about half of f16's memory and of the bytes
	// attention reads per token at long context, for a log-probability
	// error of up to about 0.07 on the reference fixtures against 0.006
	// for f16). q8_0 needs a head size that is a multiple of 32 (64 and 128
	// are); other models keep f16 and the log says so. The KV budget
	// (kv_cache_mb) counts each storage at its real size. Default: f16 with
	// int8 activations, f32 with float ones (transformers-exact), or
	// IMPETUS_KV where the environment sets it. Applies to models loaded
	// after a reload.
	KVCacheType string `json:"kv_cache_type,omitempty"`

	// Where models run: "auto" (an NVIDIA GPU when the driver is found and
	// the model fits its memory, else the CPU; the log says which and why),
	// "cpu", "cuda" (the first GPU) or "cuda:N". No CUDA toolkit is needed:
	// the driver and NVRTC are loaded at run time. Default: auto. Applies to
	// models loaded after a reload.
	Device string `json:"device,omitempty"`

	// When true, the readiness probe reports not ready until at least one
	// model is loaded. Default: false.
	RequireLoadedModel bool `json:"require_loaded_model,omitempty"`

	// Memory use (percent of physical memory) above which the readiness probe
	// reports not ready. Default: 95.
	MaxMemoryPercent float64 `json:"max_memory_percent,omitempty"`

	// Request limits of the OpenAI API. Zero fields take their defaults.
	Limits Limits `json:"limits,omitzero"`

	// KV cache memory in MiB, shared by all sequences of all loaded models
	// (the prefix cache included). Default: a quarter of physical memory.
	KVCacheMB int `json:"kv_cache_mb,omitempty"`
	// Sequences each loaded model runs at once. Default: 16.
	MaxSequences int `json:"max_sequences,omitempty"`
	// Tokens per forward step (decode tokens plus prompt chunks). Default: 512.
	MaxBatchTokens int `json:"max_batch_tokens,omitempty"`
	// Requests waiting per loaded model; beyond it requests get 429. Default: 256.
	MaxQueue int `json:"max_queue,omitempty"`
	// Running sequences per API key; 0 (the default) means no limit.
	MaxConcurrentPerKey int `json:"max_concurrent_per_key,omitempty"`
	// Models kept in memory at once; loading one more unloads the least
	// recently used idle model, or fails with 503 when all are busy. 0 (the
	// default) means no cap.
	MaxLoadedModels int `json:"max_loaded_models,omitempty"`
	// A model with no request for this long is unloaded. 0 (the default)
	// keeps models loaded.
	IdleUnload caddy.Duration `json:"idle_unload,omitempty"`
	// How long a non-force unload waits for the model's requests to finish.
	// Default: 30s.
	UnloadTimeout caddy.Duration `json:"unload_timeout,omitempty"`

	// When true, a request for a model that is not on disk and is named as a
	// Hugging Face repository (ORG/NAME) downloads it into models_dir first,
	// with download_progress events. Default: false (such requests get 404).
	AutoDownload bool `json:"auto_download,omitempty"`
	// How long a request waits for its model's auto_download; after that it
	// gets 503 with Retry-After while the download goes on. Default: 60s.
	AutoDownloadWait caddy.Duration `json:"auto_download_wait,omitempty"`

	// When true, /v1/embeddings cuts inputs longer than the model's maximum
	// to that maximum (keeping the start, as sentence-transformers does)
	// instead of answering 400 with the input's length. Default: false.
	EmbeddingsTruncate bool `json:"embeddings_truncate,omitempty"`

	// Models served by upstream servers through Caddy's reverse proxy.
	Routes []ModelRoute `json:"routes,omitempty"`

	ctx           caddy.Context
	stopRefresher context.CancelFunc
	state         *pool.Entry // the pooled state this config serves from
	engine        *inference.Engine
	poolKey       string
	logger        *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "impetus",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision fills defaults and takes a reference to the pooled engine. It
// loads no weights, so `impetus validate` stays cheap, and changes nothing
// process-wide: that waits for Start.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	a.ModelsDir = repl.ReplaceAll(a.ModelsDir, "")
	if a.ModelsDir == "" {
		a.ModelsDir = inference.DefaultModelsDir()
	}
	abs, err := filepath.Abs(a.ModelsDir)
	if err != nil {
		return fmt.Errorf("models_dir %q: %w", a.ModelsDir, err)
	}
	a.ModelsDir = abs
	if a.PerformanceMode == "" {
		a.PerformanceMode = pool.ModeBalanced
	}
	if a.MaxMemoryPercent == 0 {
		a.MaxMemoryPercent = 95
	}
	if a.AutoDownloadWait == 0 {
		a.AutoDownloadWait = caddy.Duration(models.DefaultAutoDownloadWait)
	}
	if err := a.Validate(); err != nil {
		return err
	}
	if err := a.provisionRoutes(ctx); err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	if err := metrics.Register(ctx); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	// The engine starts with this config's options when none runs for the
	// models directory; a running one is reconfigured in Start, once the
	// config commits. Threads stays 0: the thread pool is process-wide too.
	opts := a.engineOptions()
	opts.Threads = 0
	st, err := pool.Acquire(opts)
	if err != nil {
		return fmt.Errorf("starting engine: %w", err)
	}
	a.state, a.engine, a.poolKey = st, st.Engine, st.Key
	return nil
}

// engineOptions are the engine options this config asks for; Threads is
// the configured count before the performance mode applies.
func (a *App) engineOptions() inference.Options {
	return inference.Options{ModelsDir: a.ModelsDir, Threads: a.Threads,
		KVCacheMB: a.KVCacheMB, MaxSequences: a.MaxSequences, MaxBatchTokens: a.MaxBatchTokens,
		MaxQueue: a.MaxQueue, MaxConcurrentPerKey: a.MaxConcurrentPerKey,
		MaxLoadedModels: a.MaxLoadedModels, IdleUnload: time.Duration(a.IdleUnload), UnloadTimeout: time.Duration(a.UnloadTimeout),
		Device: a.Device, KVCacheType: a.KVCacheType, Logf: a.logf}
}

// logf hands the engine's informational lines (where each model runs and
// why) to the app's logger.
func (a *App) logf(format string, args ...any) {
	if a.logger != nil {
		a.logger.Info(fmt.Sprintf(format, args...))
	}
}

// Validate checks the configuration.
func (a *App) Validate() error {
	switch a.PerformanceMode {
	case pool.ModeEfficiency, pool.ModeBalanced, pool.ModePerformance:
	default:
		return fmt.Errorf("performance_mode must be efficiency, balanced or performance, got %q", a.PerformanceMode)
	}
	if a.Threads < 0 {
		return fmt.Errorf("threads must be positive, got %d", a.Threads)
	}
	switch a.Activations {
	case "", "int8", "float":
	default:
		return fmt.Errorf("activations must be int8 or float, got %q", a.Activations)
	}
	if a.SIMD != "" {
		if err := kernels.CheckLevel(a.SIMD); err != nil {
			return fmt.Errorf("simd: %w", err)
		}
	}
	if err := inference.CheckDevice(a.Device); err != nil {
		return err
	}
	if err := inference.CheckKVCacheType(a.KVCacheType); err != nil {
		return fmt.Errorf("kv_cache_type: %w", err)
	}
	if a.Limits.MaxBodyBytes < 0 || a.Limits.MaxMessages < 0 || a.Limits.MaxN < 0 || a.Limits.MaxTokens < 0 {
		return fmt.Errorf("limits must be positive")
	}
	if a.KVCacheMB < 0 || a.MaxSequences < 0 || a.MaxBatchTokens < 0 || a.MaxQueue < 0 || a.MaxConcurrentPerKey < 0 {
		return fmt.Errorf("kv_cache_mb, max_sequences, max_batch_tokens, max_queue and max_concurrent_per_key must be positive")
	}
	if a.MaxLoadedModels < 0 || a.IdleUnload < 0 || a.UnloadTimeout < 0 {
		return fmt.Errorf("max_loaded_models, idle_unload and unload_timeout must not be negative")
	}
	if seqs := cmp.Or(a.MaxSequences, 16); a.MaxBatchTokens > 0 && a.MaxBatchTokens < seqs {
		return fmt.Errorf("max_batch_tokens (%d) must be at least max_sequences (%d), so every running sequence decodes each step", a.MaxBatchTokens, seqs)
	}
	if a.AutoDownloadWait < 0 {
		return fmt.Errorf("auto_download_wait must not be negative")
	}
	if a.MaxMemoryPercent < 0 || a.MaxMemoryPercent > 100 {
		return fmt.Errorf("max_memory_percent must be within 0..100, got %g", a.MaxMemoryPercent)
	}
	return nil
}

// Limits bound what one request may ask for.
type Limits struct {
	// Largest request body in bytes. Default: 8 MiB.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
	// Most messages in one chat request. Default: 1024.
	MaxMessages int `json:"max_messages,omitempty"`
	// Largest n (choices per request). Default: 16.
	MaxN int `json:"max_n,omitempty"`
	// Largest max_tokens. Default: 32768 (further capped by the model's context).
	MaxTokens int `json:"max_tokens,omitempty"`
}

// WithDefaults is the wire package's limits with this config's non-zero
// fields applied.
func (l Limits) WithDefaults() openai.Limits {
	d := openai.DefaultLimits()
	if l.MaxBodyBytes > 0 {
		d.MaxBodyBytes = l.MaxBodyBytes
	}
	if l.MaxMessages > 0 {
		d.MaxMessages = l.MaxMessages
	}
	if l.MaxN > 0 {
		d.MaxN = l.MaxN
	}
	if l.MaxTokens > 0 {
		d.MaxTokens = l.MaxTokens
	}
	return d
}

// Start applies this config to the process, now that it has committed: the
// int8 activation choice and the kernels' thread count (process-wide), and
// every engine option (the pooled engine is reconfigured live). A config
// that fails to provision or validate never gets here, so it changes
// nothing. It also records the http app's grace period for the exit watcher.
func (a *App) Start() error {
	noteGracePeriod(a.ctx)
	// Every start sets the process-wide choice, so a reload that drops the
	// option returns to the default.
	if a.Activations == "" {
		kernels.ResetInt8()
	} else {
		kernels.SetInt8Activations(a.Activations == "int8")
		kernels.SetInt8MLX(a.Activations == "int8")
	}
	if a.SIMD == "" {
		kernels.ResetLevel()
	} else if err := kernels.SetLevel(a.SIMD); err != nil {
		return fmt.Errorf("simd: %w", err)
	}
	mode, threads := a.state.ApplyConfigMode(a.PerformanceMode, a.Threads)
	opts := a.engineOptions()
	opts.Threads = threads
	if err := a.engine.Reconfigure(opts); err != nil {
		return fmt.Errorf("applying the impetus options: %w", err)
	}
	a.state.Models.Configure(a.AutoDownload, time.Duration(a.AutoDownloadWait))
	metrics.Watch(a.state)
	a.logger.Info("impetus engine ready", zap.String("models_dir", a.ModelsDir), zap.String("performance_mode", mode),
		zap.Int("compute_threads", threads), zap.String("activations", cmp.Or(a.Activations, "default")),
		zap.String("simd", kernels.LevelName()), zap.String("device", cmp.Or(a.Device, "auto")),
		zap.String("kv_cache_type", cmp.Or(a.KVCacheType, "default")))
	if len(a.Routes) > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		a.stopRefresher = cancel
		go a.refreshRouteModels(ctx)
		a.logger.Info("model routes", routeLogFields(a.Routes))
	}
	return nil
}

// Stop ends this generation's upstream model refresher; the pooled engine
// outlives the config generation.
func (a *App) Stop() error {
	if a.stopRefresher != nil {
		a.stopRefresher()
	}
	return nil
}

// Cleanup releases this config's reference to the engine; the engine shuts
// down when no config uses it any more.
func (a *App) Cleanup() error {
	if a.poolKey != "" {
		pool.Release(a.poolKey)
		a.poolKey, a.engine, a.state = "", nil, nil
	}
	return nil
}

// Engine returns the engine this config serves from.
func (a *App) Engine() *inference.Engine { return a.engine }

// Pool returns the pooled state this config serves from.
func (a *App) Pool() *pool.Entry { return a.state }

// Models returns the model manager of this config's engine.
func (a *App) Models() *models.Manager { return a.state.Models }

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

// HeartbeatMaxAge is how stale the engine's heartbeat may be before the
// server reports itself unhealthy.
const HeartbeatMaxAge = 30 * time.Second
