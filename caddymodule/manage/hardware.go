package manage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/auth"
	"github.com/impetusllm/impetus/caddymodule/buildinfo"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/caddymodule/pool"
	"github.com/impetusllm/impetus/hwinfo"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/kernels"
)

// hardwareRoutes serves /api/hardware/*.
func (h *API) hardwareRoutes(w http.ResponseWriter, r *http.Request, route string) bool {
	switch route {
	case "/hardware/info":
		httperr.Only(w, r, http.MethodGet, h.hardwareInfo)
	case "/hardware/metrics":
		httperr.Only(w, r, http.MethodGet, h.hardwareMetrics)
	case "/hardware/performance-mode":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			httperr.WriteJSON(w, http.StatusOK, h.app.Pool().Performance())
			return true
		}
		httperr.Only(w, r, http.MethodPost, auth.AdminOnly(h.setPerformanceMode))
	default:
		return false
	}
	return true
}

// performanceModeRequest is the body of POST /api/hardware/performance-mode.
type performanceModeRequest struct {
	// Mode is efficiency, balanced or performance.
	Mode string `json:"mode"`
}

// decodePerformanceMode reads a performance-mode request body (at most 4 KiB)
// and returns the mode, or a message and details for a 400.
func decodePerformanceMode(body io.Reader) (mode string, msg string, details string) {
	var req performanceModeRequest
	dec := json.NewDecoder(io.LimitReader(body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", "invalid request body", "body must be a JSON object {\"mode\": \"efficiency\" | \"balanced\" | \"performance\"}: " + err.Error()
	}
	if dec.More() {
		return "", "invalid request body", "body must hold one JSON object"
	}
	switch req.Mode {
	case pool.ModeEfficiency, pool.ModeBalanced, pool.ModePerformance:
		return req.Mode, "", ""
	}
	return "", "invalid performance mode", fmt.Sprintf("mode must be efficiency, balanced or performance, got %q", req.Mode)
}

func (h *API) setPerformanceMode(w http.ResponseWriter, r *http.Request) {
	mode, msg, details := decodePerformanceMode(r.Body)
	if mode == "" {
		httperr.WriteAPI(w, http.StatusBadRequest, msg, details)
		return
	}
	st := h.app.Pool().SetMode(mode, h.app.Threads)
	h.logger.Info("performance mode set", zap.String("mode", st.Mode), zap.Int("compute_threads", st.Settings.ComputeThreads))
	httperr.WriteJSON(w, http.StatusOK, st)
}

// memoryGB is the seed's memory object, with exact byte counts beside it.
type memoryGB struct {
	TotalGB        float64 `json:"total_gb"`
	AvailableGB    float64 `json:"available_gb"`
	UsedGB         float64 `json:"used_gb"`
	UsagePercent   float64 `json:"usage_percent"`
	TotalBytes     uint64  `json:"total_bytes"`
	AvailableBytes uint64  `json:"available_bytes"`
}

func readMemoryGB() (memoryGB, error) {
	m, err := hwinfo.ReadMemory()
	if err != nil {
		return memoryGB{}, err
	}
	const gb = 1 << 30
	return memoryGB{
		TotalGB: httperr.RoundTo(float64(m.TotalBytes)/gb, 2), AvailableGB: httperr.RoundTo(float64(m.AvailableBytes)/gb, 2),
		UsedGB: httperr.RoundTo(float64(m.UsedBytes)/gb, 2), UsagePercent: httperr.RoundTo(m.UsedPercent, 1),
		TotalBytes: m.TotalBytes, AvailableBytes: m.AvailableBytes,
	}, nil
}

// gpuSummary is the seed's gpu object for the first GPU. The Apple-only
// fields compute_units, metal_support and unified_memory are null: nvidia-smi
// does not report an SM count, and Metal exists only on Apple platforms.
type gpuSummary struct {
	Name          string   `json:"name"`
	Vendor        string   `json:"vendor"`
	MemoryGB      *float64 `json:"memory_gb"`
	ComputeUnits  *int     `json:"compute_units"`
	MetalSupport  *bool    `json:"metal_support"`
	UnifiedMemory *bool    `json:"unified_memory"`
}

// engineState is the engine's side of the hardware picture.
type engineState struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	// Device is where the loaded models run: "cpu", or the GPUs that hold
	// models ("cuda:0", "cuda:0,cuda:1").
	Device string `json:"device"`
	// GPUs are the GPUs the engine opened (a model was placed there with
	// device auto or cuda) and the memory its models hold on each: weights,
	// KV caches and activations. Empty on a CPU-only host.
	GPUs []inference.GPUState `json:"gpus"`
	// SIMD is the kernel level chosen for this CPU (e.g. "avx2 fma", "avx512", "neon").
	SIMD            string `json:"simd"`
	PerformanceMode string `json:"performance_mode"`
	ComputeThreads  int    `json:"compute_threads"`
}

func currentEngineState(p *pool.Entry) engineState {
	st := p.Performance()
	es := engineState{Version: buildinfo.Version(), GoVersion: runtime.Version(), Device: "cpu", SIMD: kernels.Features(),
		PerformanceMode: st.Mode, ComputeThreads: st.Settings.ComputeThreads, GPUs: []inference.GPUState{}}
	if p.Engine != nil {
		es.GPUs = p.Engine.GPUs()
	}
	var on []string
	for _, g := range es.GPUs {
		if len(g.Models) > 0 {
			on = append(on, fmt.Sprintf("cuda:%d", g.Ordinal))
		}
	}
	if len(on) > 0 {
		es.Device = strings.Join(on, ",")
	}
	return es
}

// hardwareInfo is the body of GET /api/hardware/info. chip_type,
// chip_variant, mlx_version and python_version are Apple/MLX-only keys of the
// seed and are null here: the engine is Go code on any CPU.
type hardwareInfo struct {
	ChipType      *string        `json:"chip_type"`
	ChipVariant   *string        `json:"chip_variant"`
	CPU           hwinfo.CPU     `json:"cpu"`
	Memory        memoryGB       `json:"memory"`
	GPU           *gpuSummary    `json:"gpu"`
	GPUs          []hwinfo.GPU   `json:"gpus"`
	Thermal       hwinfo.Thermal `json:"thermal"`
	OSVersion     string         `json:"os_version"`
	OS            hwinfo.OS      `json:"os"`
	MLXVersion    *string        `json:"mlx_version"`
	PythonVersion *string        `json:"python_version"`
	Engine        engineState    `json:"engine"`
}

// cpuFacts are read once: they do not change while the process runs.
var cpuFacts = sync.OnceValues(hwinfo.ReadCPU)

// readGPUs reads NVIDIA GPUs; an empty list without nvidia-smi.
func readGPUs(ctx context.Context, logger *zap.Logger) []hwinfo.GPU {
	gpus, err := hwinfo.ReadGPUs(ctx)
	if err != nil {
		if !errors.Is(err, hwinfo.ErrNoGPUTool) {
			logger.Warn("reading gpus", zap.Error(err))
		}
		return []hwinfo.GPU{}
	}
	return gpus
}

func (h *API) hardwareInfo(w http.ResponseWriter, r *http.Request) {
	c, err := cpuFacts()
	if err != nil {
		h.logger.Error("reading cpu", zap.Error(err))
		httperr.WriteAPI(w, http.StatusInternalServerError, "could not read the cpu description")
		return
	}
	mem, err := readMemoryGB()
	if err != nil {
		h.logger.Error("reading memory", zap.Error(err))
		httperr.WriteAPI(w, http.StatusInternalServerError, "could not read memory figures")
		return
	}
	info := hardwareInfo{CPU: c, Memory: mem, GPUs: readGPUs(r.Context(), h.logger), Thermal: hwinfo.ReadThermal(), Engine: currentEngineState(h.app.Pool())}
	if len(info.GPUs) > 0 {
		g := info.GPUs[0]
		s := gpuSummary{Name: g.Name, Vendor: g.Vendor}
		if g.MemoryTotalMB != nil {
			v := httperr.RoundTo(*g.MemoryTotalMB/1024, 2)
			s.MemoryGB = &v
		}
		info.GPU = &s
	}
	if o, err := hwinfo.ReadOS(); err == nil {
		info.OS, info.OSVersion = o, o.String()
	} else {
		h.logger.Warn("reading os", zap.Error(err))
		info.OS.Name, info.OSVersion = runtime.GOOS, runtime.GOOS
	}
	httperr.WriteJSON(w, http.StatusOK, info)
}

// cpuMetrics is the cpu object of GET /api/hardware/metrics.
type cpuMetrics struct {
	UsagePercent float64   `json:"usage_percent"`
	PerCoreUsage []float64 `json:"per_core_usage"`
	// PerformanceCoreUsage and EfficiencyCoreUsage split per_core_usage by
	// core type; null when the kernel does not tell core types.
	PerformanceCoreUsage []float64 `json:"performance_core_usage"`
	EfficiencyCoreUsage  []float64 `json:"efficiency_core_usage"`
	// FrequencyGHz is each CPU's current clock; null without cpufreq or cpuinfo.
	FrequencyGHz []float64 `json:"frequency_ghz"`
	LoadAverage  []float64 `json:"load_average"`
}

// hardwareMetricsBody is the body of GET /api/hardware/metrics. metal is the
// seed's Apple GPU object and is always null; NVIDIA GPUs are under gpus.
type hardwareMetricsBody struct {
	Timestamp string         `json:"timestamp"`
	CPU       cpuMetrics     `json:"cpu"`
	Memory    memoryGB       `json:"memory"`
	Thermal   hwinfo.Thermal `json:"thermal"`
	Metal     *struct{}      `json:"metal"`
	GPUs      []hwinfo.GPU   `json:"gpus"`
	Process   hwinfo.Process `json:"process"`
	Engine    engineState    `json:"engine"`
}

// Samplers for the metrics endpoint: usage is measured between its calls.
var (
	apiCPUSampler  hwinfo.CPUSampler
	apiProcSampler hwinfo.ProcessSampler
)

func (h *API) hardwareMetrics(w http.ResponseWriter, r *http.Request) {
	body, err := readHardwareMetricsBody(r.Context(), h.app.Pool(), h.logger)
	if err != nil {
		h.logger.Error("reading hardware metrics", zap.Error(err))
		httperr.WriteAPI(w, http.StatusInternalServerError, "could not read hardware metrics")
		return
	}
	httperr.WriteJSON(w, http.StatusOK, body)
}

func readHardwareMetricsBody(ctx context.Context, p *pool.Entry, logger *zap.Logger) (hardwareMetricsBody, error) {
	b := hardwareMetricsBody{Timestamp: httperr.ISONow(), Engine: currentEngineState(p)}
	u, err := apiCPUSampler.Sample()
	if err != nil {
		return b, err
	}
	b.CPU.UsagePercent = httperr.RoundTo(u.UsagePercent, 1)
	b.CPU.PerCoreUsage = make([]float64, len(u.PerCore))
	for i, v := range u.PerCore {
		b.CPU.PerCoreUsage[i] = httperr.RoundTo(v, 1)
	}
	if c, err := cpuFacts(); err == nil {
		if perfCPUs, effCPUs, ok := c.CoreSplit(); ok {
			b.CPU.PerformanceCoreUsage = pick(b.CPU.PerCoreUsage, perfCPUs)
			b.CPU.EfficiencyCoreUsage = pick(b.CPU.PerCoreUsage, effCPUs)
		}
	}
	b.CPU.FrequencyGHz = hwinfo.CoreFrequenciesGHz()
	la, err := hwinfo.LoadAverage()
	if err != nil {
		return b, err
	}
	b.CPU.LoadAverage = []float64{httperr.RoundTo(la[0], 2), httperr.RoundTo(la[1], 2), httperr.RoundTo(la[2], 2)}
	if b.Memory, err = readMemoryGB(); err != nil {
		return b, err
	}
	b.Thermal = hwinfo.ReadThermal()
	b.GPUs = readGPUs(ctx, logger)
	if b.Process, err = apiProcSampler.Sample(); err != nil {
		return b, err
	}
	return b, nil
}

// pick returns usage[i] for each logical CPU number i in cpus.
func pick(usage []float64, cpus []int) []float64 {
	out := make([]float64, 0, len(cpus))
	for _, c := range cpus {
		if c < len(usage) {
			out = append(out, usage[c])
		}
	}
	return out
}
