// Package inference is the in-process LLM engine: it finds models on disk,
// loads them, and generates tokens for the server. It imports no HTTP server
// code, so it can be tested and benchmarked alone.
package inference

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/impetusllm/impetus/hwinfo"
	"github.com/impetusllm/impetus/inference/kernels"
)

// Options configure an Engine. The zero value works: defaults are filled in by New.
type Options struct {
	// ModelsDir holds the models; default DefaultModelsDir().
	ModelsDir string
	// Threads sizes the kernels' thread pool, which is process-wide: New
	// and Reconfigure set it when positive; 0 leaves the pool as it is (all
	// CPUs at process start). Options reports the pool's size.
	Threads int

	// KVCacheMB is the KV cache memory, in MiB, shared by every sequence of
	// every loaded model (finished sequences' prefix cache included). Default:
	// a quarter of physical memory, or 4096 when that is unknown.
	KVCacheMB int
	// MaxSequences bounds the sequences each loaded model runs at once (one
	// batch). Default 16.
	MaxSequences int
	// MaxBatchTokens bounds the tokens of one forward step (decode tokens
	// plus prompt chunks); longer prompts are prefilled over several steps.
	// Default 512; at least MaxSequences.
	MaxBatchTokens int
	// MaxQueue bounds the requests waiting for each loaded model beyond its
	// running ones; more get ErrQueueFull. Default 256.
	MaxQueue int
	// MaxConcurrentPerKey bounds the running sequences of one
	// GenerateRequest.Key across the engine; further ones wait their turn in
	// the queue. Default 0: no limit.
	MaxConcurrentPerKey int
	// DisablePrefixCache turns off keeping finished sequences' KV for reuse
	// by later prompts that share a prefix.
	DisablePrefixCache bool

	// MaxLoadedModels caps the models in memory at once. Loading one more
	// unloads the least recently used idle model; when every loaded model
	// is serving requests, Load fails with ErrTooManyModels. Default 0: no
	// cap.
	MaxLoadedModels int
	// IdleUnload unloads a model after it has had no running or queued
	// request for this long. Default 0: models stay loaded.
	IdleUnload time.Duration
	// UnloadTimeout bounds how long a graceful UnloadModel waits for a
	// model's requests to finish. Default DefaultUnloadTimeout.
	UnloadTimeout time.Duration

	// Device is where models run: "auto" (the default: NVIDIA GPU 0 when
	// the driver and NVRTC are found and the model fits its free memory
	// with 1 GiB to spare, else the CPU), "cpu", "cuda" (GPU 0) or
	// "cuda:N". An explicit cuda device that cannot take a model fails the
	// load; auto falls back to the CPU. LoadedModel.Device and DeviceReason
	// say which was chosen and why.
	Device string
	// KVCacheType is how new caches of models loaded from now on store keys
	// and values: "f16", "f32" or "q8_0" (model.ParseKVStorage). "" keeps
	// each model's default: IMPETUS_KV from the environment, else f16 when
	// its matmuls run with int8 activations and f32 when they run in float.
	// q8_0 (34 bytes per 32 values, for long contexts) needs a head size
	// that is a multiple of 32; other models keep f16, and Logf says so.
	// Models on a GPU keep their own storage.
	KVCacheType string
	// Logf, when set, gets one line per model load naming its device and why.
	Logf func(format string, args ...any)
}

// DefaultModelsDir is $IMPETUS_MODELS_DIR, else the Hugging Face hub cache
// ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub), so models fetched
// by other tools are found.
func DefaultModelsDir() string {
	if d := os.Getenv("IMPETUS_MODELS_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "huggingface", "hub")
	}
	return filepath.Join(home, ".cache", "huggingface", "hub")
}

// Engine owns the loaded models, each run by a scheduler of its own, and
// the KV budget they share. One Engine serves many server configurations in
// turn: it outlives config reloads.
type Engine struct {
	opts atomic.Pointer[Options] // replaced whole by Reconfigure

	mu     sync.Mutex
	loaded map[string]*LoadedModel // by model id
	loadMu sync.Mutex              // guards loading and the room check
	// loading holds the loads in flight, by model id; guarded by loadMu.
	loading map[string]*loadCall

	kv   *kvPool     // KV memory shared by all sequences
	keys *keyLimiter // running sequences per API key

	heartbeat atomic.Int64  // unix nanos of Close, for Heartbeat afterwards
	retune    chan struct{} // poked by Reconfigure for the janitor
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	janitorDone chan struct{} // closed when the idle-unload janitor ends

	gpus gpus

	embedMu   sync.Mutex                 // guards embedders
	embedders map[string]*EmbeddingModel // loaded embedding models, by id

	// embedLoadMu serialises embedding loads (held while one reads its
	// weights); embedPending counts those that made their room under
	// Options.MaxLoadedModels and are not in embedders yet (guarded by
	// loadMu).
	embedLoadMu  sync.Mutex
	embedPending int
}

// New starts an Engine. It loads no weights: models load on demand.
func New(opts Options) (*Engine, error) {
	opts, err := withDefaults(opts)
	if err != nil {
		return nil, err
	}
	e := &Engine{loaded: map[string]*LoadedModel{}, stop: make(chan struct{}), done: make(chan struct{}),
		retune: make(chan struct{}, 1), kv: newKVPool(int64(opts.KVCacheMB) << 20), keys: newKeyLimiter(opts.MaxConcurrentPerKey)}
	e.opts.Store(&opts)
	if opts.Threads > 0 {
		kernels.SetThreads(opts.Threads)
	}
	e.heartbeat.Store(time.Now().UnixNano())
	go e.loop()
	e.janitorDone = make(chan struct{})
	go e.janitor()
	return e, nil
}

// withDefaults checks opts and fills in the defaults.
func withDefaults(opts Options) (Options, error) {
	if opts.ModelsDir == "" {
		opts.ModelsDir = DefaultModelsDir()
	}
	if _, err := parseDevice(opts.Device); err != nil {
		return opts, err
	}
	if err := CheckKVCacheType(opts.KVCacheType); err != nil {
		return opts, err
	}
	if opts.Threads < 0 {
		return opts, fmt.Errorf("threads must be positive, got %d", opts.Threads)
	}
	if opts.KVCacheMB < 0 || opts.MaxSequences < 0 || opts.MaxBatchTokens < 0 || opts.MaxQueue < 0 || opts.MaxConcurrentPerKey < 0 {
		return opts, fmt.Errorf("kv cache size, max sequences, max batch tokens, max queue and max concurrent per key must not be negative")
	}
	if opts.KVCacheMB == 0 {
		opts.KVCacheMB = 4096
		if m, err := hwinfo.ReadMemory(); err == nil && m.TotalBytes > 0 {
			opts.KVCacheMB = max(int(m.TotalBytes>>20)/4, 64)
		}
	}
	if opts.MaxSequences == 0 {
		opts.MaxSequences = 16
	}
	if opts.MaxBatchTokens == 0 {
		opts.MaxBatchTokens = max(512, opts.MaxSequences)
	}
	if opts.MaxBatchTokens < opts.MaxSequences {
		return opts, fmt.Errorf("max batch tokens (%d) must be at least max sequences (%d), so every running sequence decodes each step", opts.MaxBatchTokens, opts.MaxSequences)
	}
	if opts.MaxQueue == 0 {
		opts.MaxQueue = 256
	}
	if opts.MaxLoadedModels < 0 || opts.IdleUnload < 0 || opts.UnloadTimeout < 0 {
		return opts, fmt.Errorf("max loaded models, idle unload and unload timeout must not be negative")
	}
	if opts.UnloadTimeout == 0 {
		opts.UnloadTimeout = DefaultUnloadTimeout
	}
	return opts, nil
}

// Reconfigure applies new options to the running engine, so a config reload
// changes every setting without reloading a model or failing a request:
//   - MaxQueue, MaxSequences, MaxBatchTokens and MaxConcurrentPerKey bound
//     the next admission and step (running sequences finish);
//   - KVCacheMB resizes the KV budget; when it shrinks below what is in use,
//     prefix-cache entries are evicted and sequences preempted as they grow,
//     and no new memory is handed out until use is under the budget;
//   - MaxLoadedModels applies at the next load, IdleUnload at the janitor's
//     next turn, UnloadTimeout at the next unload;
//   - Threads, when positive, resizes the kernels' thread pool.
//
// ModelsDir cannot change (the loaded models come from it): that needs a new
// engine. Zero fields take their defaults, as in New.
func (e *Engine) Reconfigure(opts Options) error {
	opts, err := withDefaults(opts)
	if err != nil {
		return err
	}
	if old := e.o(); opts.ModelsDir != old.ModelsDir {
		return fmt.Errorf("models directory %q differs from the engine's %q: start a new engine", opts.ModelsDir, old.ModelsDir)
	}
	if opts.Threads > 0 {
		kernels.SetThreads(opts.Threads)
	}
	e.kv.resize(int64(opts.KVCacheMB) << 20)
	e.keys.setLimit(opts.MaxConcurrentPerKey)
	e.opts.Store(&opts)
	select {
	case e.retune <- struct{}{}:
	default:
	}
	e.pokeAll()
	return nil
}

// SetThreads resizes the kernels' process-wide thread pool (the
// performance mode's lever); n < 1 means 1.
func (e *Engine) SetThreads(n int) { kernels.SetThreads(n) }

// o returns the current options; callers must not modify them.
func (e *Engine) o() *Options { return e.opts.Load() }

// loop only waits for Close (the schedulers run the models); Alive reports
// false once it has ended.
func (e *Engine) loop() {
	defer close(e.done)
	<-e.stop
	e.heartbeat.Store(time.Now().UnixNano())
}

// Options returns the engine's effective options; Threads is the size of
// the kernels' thread pool.
func (e *Engine) Options() Options {
	o := *e.o()
	o.Threads = kernels.Threads()
	return o
}

// Heartbeat is the time up to which every scheduler has made progress: now
// while each is idle or between steps, else when the oldest running step
// began. A step that stalls (a wedged kernel, a deadlock) holds it back, so
// Alive turns false once the step has run longer than the probe allows.
func (e *Engine) Heartbeat() time.Time {
	select {
	case <-e.done:
		return time.Unix(0, e.heartbeat.Load())
	default:
	}
	hb := time.Now().UnixNano()
	e.mu.Lock()
	for _, m := range e.loaded {
		if st := m.sched.stepStart.Load(); st != 0 && st < hb {
			hb = st
		}
	}
	e.mu.Unlock()
	return time.Unix(0, hb)
}

// Alive reports whether the engine runs and no scheduler step has been
// running for longer than maxAge.
func (e *Engine) Alive(maxAge time.Duration) bool {
	select {
	case <-e.done:
		return false
	default:
	}
	return time.Since(e.Heartbeat()) <= maxAge
}

// Models lists the models available in the models directory.
func (e *Engine) Models() ([]LocalModel, error) { return ScanModels(e.o().ModelsDir) }

// FindModel resolves a model id by matching it against the scanned list, never
// by joining it into a path, so ids cannot escape the models directory.
func (e *Engine) FindModel(id string) (LocalModel, error) {
	models, err := e.Models()
	if err != nil {
		return LocalModel{}, err
	}
	for _, m := range models {
		if m.ID == id {
			return m, nil
		}
	}
	return LocalModel{}, fmt.Errorf("%w: %q", ErrModelNotFound, id)
}

// Close stops the idle-unload janitor and every model's scheduler, ending
// their streams, and frees the models. It is safe to call more than once.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		close(e.stop)
		<-e.done
		<-e.janitorDone
		e.mu.Lock()
		models := e.loaded
		e.loaded = map[string]*LoadedModel{}
		e.mu.Unlock()
		for _, m := range models {
			m.close()
		}
		e.closeEmbedders()
	})
	return nil
}
