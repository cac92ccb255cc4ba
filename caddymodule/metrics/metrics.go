// Package metrics holds Impetus's Prometheus collectors: request counters
// and latency histograms fed by the OpenAI handler's Timer, and gauges read
// at scrape time from the running config's engine. The management API
// serves them at /api/metrics; Caddy's admin /metrics shows them too.
package metrics

import (
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/buildinfo"
	"github.com/impetusllm/impetus/caddymodule/pool"
	"github.com/impetusllm/impetus/hwinfo"
	"github.com/impetusllm/impetus/inference"

	"github.com/impetusllm/impetus/inference/kernels"
)

// The collectors are created once per process. Caddy hands each config load
// a new metrics registry (caddy.Context.GetMetricsRegistry), so every
// Provision registers these same
// collectors into it: counters keep counting across reloads, and Caddy's
// admin /metrics shows them too. /api/metrics serves ownRegistry, which
// holds only the impetus_* series.
var (
	// requestsTotal is the seed's unlabelled total; Prometheus allows one
	// label set per name, so the labelled family has a name of its own.
	requestsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "impetus_requests_total",
		Help: "Generation requests served, all endpoints, models and statuses.",
	})
	requestsByStatus = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "impetus_http_requests_total",
		Help: "Generation requests served, by endpoint, model and HTTP status.",
	}, []string{"endpoint", "model", "status"})
	tokensGenerated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "impetus_tokens_generated_total",
		Help: "Completion tokens generated, all models.",
	})
	promptTokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "impetus_prompt_tokens_total",
		Help: "Prompt tokens processed, by model and API key id.",
	}, []string{"model", "key_id"})
	completionTokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "impetus_completion_tokens_total",
		Help: "Completion tokens generated, by model and API key id.",
	}, []string{"model", "key_id"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "impetus_request_duration_seconds",
		Help:    "Generation request latency from arrival to the last byte, by endpoint and model.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12), // 50 ms .. 102 s
	}, []string{"endpoint", "model"})
	timeToFirstToken = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "impetus_time_to_first_token_seconds",
		Help:    "Time from request arrival to the first generated token, by model.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12), // 10 ms .. 20 s
	}, []string{"model"})
	interTokenLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "impetus_inter_token_latency_seconds",
		Help:    "Time between consecutive generated tokens of one choice, by model.",
		Buckets: prometheus.ExponentialBuckets(0.002, 2, 12), // 2 ms .. 4 s
	}, []string{"model"})
	state = newStateCollector()

	impetusCollectors = []prometheus.Collector{requestsTotal, requestsByStatus, tokensGenerated, promptTokens, completionTokens,
		requestDuration, timeToFirstToken, interTokenLatency, state}

	ownRegistry = func() *prometheus.Registry {
		r := prometheus.NewPedanticRegistry()
		r.MustRegister(impetusCollectors...)
		return r
	}()
	Handler = promhttp.HandlerFor(ownRegistry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
)

// Register adds the collectors to the config's registry (Caddy's
// admin /metrics); the impetus app calls it too, so the series are there
// without impetus_api.
func Register(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	for _, c := range impetusCollectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// stateCollector reports gauges read at scrape time: host CPU and memory,
// loaded models, uptime, build info and the performance mode.
type stateCollector struct {
	entry   atomic.Pointer[pool.Entry] // the running config's, set by Watch
	sampler hwinfo.CPUSampler

	cpu, memPct, memAvail, modelsLoaded, modelLoaded, loadSeconds, uptime, info, mode, threads *prometheus.Desc
	// Scheduler state (SchedulerStats).
	queued, running, kvBytes, kvPages, prefixHits, prefixMisses, prefixTokens, preemptions *prometheus.Desc
	// GPUs the engine opened (Engine.GPUs); absent on a CPU-only host.
	gpuInfo, gpuTotal, gpuFree, gpuUsed *prometheus.Desc
}

func newStateCollector() *stateCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &stateCollector{
		cpu:          d("impetus_cpu_usage_percent", "Host CPU busy percentage since the previous scrape."),
		memPct:       d("impetus_memory_usage_percent", "Host memory in use, percent."),
		memAvail:     d("impetus_memory_available_bytes", "Host memory available for new allocations."),
		modelsLoaded: d("impetus_models_loaded", "Models loaded in the engine."),
		modelLoaded:  d("impetus_model_loaded", "1 for each loaded model.", "model"),
		loadSeconds:  d("impetus_model_load_seconds", "How long the loaded model took to load.", "model"),
		uptime:       d("impetus_uptime_seconds", "Seconds since the server process started."),
		info:         d("impetus_info", "Build information; always 1.", "version", "go_version", "simd"),
		mode:         d("impetus_performance_mode", "1 for the current performance mode.", "mode"),
		threads:      d("impetus_compute_threads", "Threads the compute kernels use."),
		queued:       d("impetus_queue_depth", "Requests waiting for admission, all models."),
		running:      d("impetus_running_sequences", "Sequences running, all models."),
		kvBytes:      d("impetus_kv_cache_bytes", "KV cache memory by state: used (running sequences), cached (prefix cache), free.", "state"),
		kvPages:      d("impetus_kv_cache_pages", "KV cache pages by state: used, cached, free.", "state"),
		prefixHits:   d("impetus_prefix_cache_hits_total", "Admissions that started from cached KV."),
		prefixMisses: d("impetus_prefix_cache_misses_total", "Admissions that found no cached prefix."),
		prefixTokens: d("impetus_prefix_cache_tokens_total", "Prompt tokens not prefilled thanks to the prefix cache."),
		preemptions:  d("impetus_preemptions_total", "Sequences paused to free KV memory."),
		gpuInfo:      d("impetus_gpu_info", "1 for each GPU the engine opened (a model was placed there).", "gpu", "name", "compute_capability", "driver"),
		gpuTotal:     d("impetus_gpu_memory_total_bytes", "GPU memory of the device.", "gpu"),
		gpuFree:      d("impetus_gpu_memory_free_bytes", "GPU memory free now, every process's use counted; left out when the driver cannot say.", "gpu"),
		gpuUsed: d("impetus_gpu_memory_bytes",
			"GPU memory the engine holds by use: weights, kv (KV caches, prefix cache included) and activations.", "gpu", "use"),
	}
}

// Describe sends every descriptor.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpu, c.memPct, c.memAvail, c.modelsLoaded, c.modelLoaded, c.loadSeconds, c.uptime, c.info, c.mode, c.threads,
		c.queued, c.running, c.kvBytes, c.kvPages, c.prefixHits, c.prefixMisses, c.prefixTokens, c.preemptions,
		c.gpuInfo, c.gpuTotal, c.gpuFree, c.gpuUsed} {
		ch <- d
	}
}

var collectLogOnce sync.Once

// Collect reads the current values. A reading that fails is left out rather
// than reported as zero.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if u, err := c.sampler.Sample(); err == nil {
		gauge(c.cpu, u.UsagePercent)
	} else {
		collectLogOnce.Do(func() { caddy.Log().Warn("metrics: reading cpu", zap.Error(err)) })
	}
	if m, err := hwinfo.ReadMemory(); err == nil {
		gauge(c.memPct, m.UsedPercent)
		gauge(c.memAvail, float64(m.AvailableBytes))
	}
	p := c.entry.Load()
	if p != nil {
		e := p.Engine
		ids := e.Loaded()
		gauge(c.modelsLoaded, float64(len(ids)))
		for _, id := range ids {
			gauge(c.modelLoaded, 1, id)
			if m := e.LoadedModelByID(id); m != nil {
				gauge(c.loadSeconds, m.LoadTime.Seconds(), id)
			}
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
		}
		ss := e.SchedulerStats()
		gauge(c.queued, float64(ss.Queued))
		gauge(c.running, float64(ss.Running))
		gauge(c.kvBytes, float64(ss.KVBytesUsed), "used")
		gauge(c.kvBytes, float64(ss.KVBytesCached), "cached")
		gauge(c.kvBytes, float64(ss.KVBytesFree), "free")
		gauge(c.kvPages, float64(ss.KVPagesUsed), "used")
		gauge(c.kvPages, float64(ss.KVPagesCached), "cached")
		gauge(c.kvPages, float64(ss.KVPagesFree), "free")
		// Counters reset when a model unloads (SchedulerStats sums loaded
		// models); Prometheus rate() handles resets.
		counter(c.prefixHits, float64(ss.PrefixHits))
		counter(c.prefixMisses, float64(ss.PrefixMisses))
		counter(c.prefixTokens, float64(ss.PrefixCachedTokens))
		counter(c.preemptions, float64(ss.Preemptions))
		c.collectGPUs(e.GPUs(), gauge)
	}
	gauge(c.uptime, time.Since(buildinfo.Started).Seconds())
	gauge(c.info, 1, buildinfo.Version(), runtime.Version(), kernels.Features())
	if p != nil {
		gauge(c.mode, 1, p.Performance().Mode)
	}
	gauge(c.threads, float64(kernels.Threads()))
}

// collectGPUs reports each opened GPU's memory: the device's total and free
// memory and the engine's own use by kind.
func (c *stateCollector) collectGPUs(gpus []inference.GPUState, gauge func(*prometheus.Desc, float64, ...string)) {
	for _, g := range gpus {
		id := strconv.Itoa(g.Ordinal)
		gauge(c.gpuInfo, 1, id, g.Name, g.ComputeCapability, g.Driver)
		gauge(c.gpuTotal, float64(g.TotalBytes), id)
		if g.FreeBytes != nil {
			gauge(c.gpuFree, float64(*g.FreeBytes), id)
		}
		gauge(c.gpuUsed, float64(g.WeightsBytes), id, "weights")
		gauge(c.gpuUsed, float64(g.KVBytes), id, "kv")
		gauge(c.gpuUsed, float64(g.ActivationBytes), id, "activations")
	}
}

// Timer measures one generation request for the metrics. The
// OpenAI handlers create one per request with StartRequest, call Token for
// each generated token, and Finish once the response is written.
type Timer struct {
	endpoint, keyID string
	start           time.Time

	mu    sync.Mutex
	model string      // set by SetModel
	last  []time.Time // per choice: when its previous token came
	first time.Time   // when the first token came; zero before it
}

// StartRequest starts timing a request to endpoint ("chat.completions",
// "completions") when it arrives; the key id comes from
// {http.auth.user.id}. Call SetModel once the request's model has loaded:
// until then the request counts under model "unknown", so that labels only
// ever hold ids of models that exist.
func StartRequest(r *http.Request, endpoint string) *Timer {
	keyID := ""
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		keyID, _ = repl.GetString("http.auth.user.id")
	}
	return NewTimer(endpoint, "", keyID, time.Now())
}

// SetModel names the model serving the request.
func (t *Timer) SetModel(id string) {
	if id == "" {
		return
	}
	t.mu.Lock()
	t.model = id
	t.mu.Unlock()
}

// NewTimer starts timing a request that arrived at start; StartRequest is
// the usual way in.
func NewTimer(endpoint, model, keyID string, start time.Time) *Timer {
	if model == "" {
		model = "unknown"
	}
	if keyID == "" {
		keyID = "anonymous"
	}
	return &Timer{endpoint: endpoint, keyID: keyID, start: start, model: model}
}

// Token records that choice produced a token now: the first token of the
// request gives the time to first token, later ones of the same choice the
// inter-token latency.
func (t *Timer) Token(choice int) { t.tokenAt(choice, time.Now()) }

func (t *Timer) tokenAt(choice int, now time.Time) {
	if choice < 0 || choice > 1<<10 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.first.IsZero() {
		t.first = now
		timeToFirstToken.WithLabelValues(t.model).Observe(now.Sub(t.start).Seconds())
	}
	for len(t.last) <= choice {
		t.last = append(t.last, time.Time{})
	}
	if prev := t.last[choice]; !prev.IsZero() {
		interTokenLatency.WithLabelValues(t.model).Observe(now.Sub(prev).Seconds())
	}
	t.last[choice] = now
}

// Started is when the request arrived.
func (t *Timer) Started() time.Time { return t.start }

// FirstToken is when the request's first token came, or the zero time
// before it did. This is the one measurement of the time to first token:
// the histogram and the response's performance_metrics both read it.
func (t *Timer) FirstToken() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.first
}

// Finish records the request's outcome: its HTTP status and the prompt and
// completion token counts of its usage.
func (t *Timer) Finish(status, prompt, completion int) {
	t.finishAt(status, prompt, completion, time.Now())
}

func (t *Timer) finishAt(status, prompt, completion int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	requestsTotal.Inc()
	requestsByStatus.WithLabelValues(t.endpoint, t.model, strconv.Itoa(status)).Inc()
	requestDuration.WithLabelValues(t.endpoint, t.model).Observe(now.Sub(t.start).Seconds())
	if prompt > 0 {
		promptTokens.WithLabelValues(t.model, t.keyID).Add(float64(prompt))
	}
	if completion > 0 {
		completionTokens.WithLabelValues(t.model, t.keyID).Add(float64(completion))
		tokensGenerated.Add(float64(completion))
	}
}

// Watch points the scrape-time gauges at p, the pooled state of the config
// that just started.
func Watch(p *pool.Entry) { state.entry.Store(p) }
