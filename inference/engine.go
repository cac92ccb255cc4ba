// Package inference is the in-process LLM engine: it finds models on disk,
// loads them, and generates tokens for the server. It imports no HTTP server
// code, so it can be tested and benchmarked alone.
package inference

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/impetusllm/impetus/hwinfo"
)

// Options configure an Engine. The zero value works: defaults are filled in by New.
type Options struct {
	// ModelsDir holds the models; default DefaultModelsDir().
	ModelsDir string
	// Threads is the number of compute threads; default runtime.NumCPU().
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
	// Observe, when set, receives latency observations (time to first token,
	// inter-token latency) for histograms. It is called from the scheduler
	// goroutine, so it must be quick and must not block.
	Observe func(Observation)

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
	// Logf, when set, gets one line per model load naming its device and why.
	Logf func(format string, args ...any)
}

// ObservationKind names what an Observation measured.
type ObservationKind int

const (
	// ObserveTTFT is the time from Generate to the stream's first event.
	ObserveTTFT ObservationKind = iota
	// ObserveInterToken is the time between two consecutive token events of
	// one stream.
	ObserveInterToken
)

// Observation is one latency measurement of one stream.
type Observation struct {
	Model    string // model id
	Kind     ObservationKind
	Duration time.Duration
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

// Engine owns the models and the scheduler loop. One Engine serves many
// server configurations in turn: it outlives config reloads.
type Engine struct {
	opts    Options
	started time.Time

	mu     sync.Mutex
	loaded map[string]*LoadedModel // by model id
	loadMu sync.Mutex              // serialises loads

	kv   *kvPool     // KV memory shared by all sequences
	keys *keyLimiter // running sequences per API key

	heartbeat atomic.Int64 // unix nanos of the scheduler loop's last turn
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	janitorDone chan struct{} // closed when the idle-unload janitor ends

	device deviceChoice // parsed Options.Device
	gpus   gpus
}

// New starts an Engine. It loads no weights: models load on demand.
func New(opts Options) (*Engine, error) {
	if opts.ModelsDir == "" {
		opts.ModelsDir = DefaultModelsDir()
	}
	if opts.Threads < 0 {
		return nil, fmt.Errorf("threads must be positive, got %d", opts.Threads)
	}
	if opts.Threads == 0 {
		opts.Threads = runtime.NumCPU()
	}
	if opts.KVCacheMB < 0 || opts.MaxSequences < 0 || opts.MaxBatchTokens < 0 || opts.MaxQueue < 0 || opts.MaxConcurrentPerKey < 0 {
		return nil, fmt.Errorf("kv cache size, max sequences, max batch tokens, max queue and max concurrent per key must not be negative")
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
		return nil, fmt.Errorf("max batch tokens (%d) must be at least max sequences (%d), so every running sequence decodes each step", opts.MaxBatchTokens, opts.MaxSequences)
	}
	if opts.MaxQueue == 0 {
		opts.MaxQueue = 256
	}
	if opts.MaxLoadedModels < 0 || opts.IdleUnload < 0 || opts.UnloadTimeout < 0 {
		return nil, fmt.Errorf("max loaded models, idle unload and unload timeout must not be negative")
	}
	if opts.UnloadTimeout == 0 {
		opts.UnloadTimeout = DefaultUnloadTimeout
	}
	device, err := parseDevice(opts.Device)
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, device: device, started: time.Now(), loaded: map[string]*LoadedModel{}, stop: make(chan struct{}), done: make(chan struct{}),
		kv: newKVPool(int64(opts.KVCacheMB) << 20), keys: newKeyLimiter(opts.MaxConcurrentPerKey)}
	e.heartbeat.Store(time.Now().UnixNano())
	go e.loop()
	e.janitorDone = make(chan struct{})
	if opts.IdleUnload > 0 {
		go e.janitor()
	} else {
		close(e.janitorDone)
	}
	return e, nil
}

// loop is the scheduler loop; each turn records a heartbeat so health probes
// can tell a stalled engine from a live one.
func (e *Engine) loop() {
	defer close(e.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
			e.heartbeat.Store(time.Now().UnixNano())
		}
	}
}

// Options returns the engine's effective options.
func (e *Engine) Options() Options { return e.opts }

// Started is when the engine was created.
func (e *Engine) Started() time.Time { return e.started }

// Heartbeat is when the scheduler loop last turned.
func (e *Engine) Heartbeat() time.Time { return time.Unix(0, e.heartbeat.Load()) }

// Alive reports whether the scheduler loop has turned within maxAge.
func (e *Engine) Alive(maxAge time.Duration) bool {
	select {
	case <-e.done:
		return false
	default:
	}
	return time.Since(e.Heartbeat()) <= maxAge
}

// Models lists the models available in the models directory.
func (e *Engine) Models() ([]LocalModel, error) { return ScanModels(e.opts.ModelsDir) }

// ErrModelNotFound is returned for an id that names no model in the models directory.
var ErrModelNotFound = errors.New("model not found")

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

// Close stops the scheduler loop. It is safe to call more than once.
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
	})
	return nil
}
