package inference

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/impetusllm/impetus/inference/cuda"
	"github.com/impetusllm/impetus/inference/model"
)

// gpuReserveBytes is the GPU memory auto placement keeps free beside a
// model's weights, for its KV cache and activations.
const gpuReserveBytes = 1 << 30

// deviceChoice is a parsed Options.Device.
type deviceChoice struct {
	auto, cuda bool
	ordinal    int
}

// parseDevice reads "auto" (or ""), "cpu", "cuda" or "cuda:N".
func parseDevice(s string) (deviceChoice, error) {
	switch s = strings.TrimSpace(strings.ToLower(s)); {
	case s == "" || s == "auto":
		return deviceChoice{auto: true}, nil
	case s == "cpu":
		return deviceChoice{}, nil
	case s == "cuda":
		return deviceChoice{cuda: true}, nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || n < 0 {
			return deviceChoice{}, fmt.Errorf("device %q: want cuda:N with N a GPU number from 0", s)
		}
		return deviceChoice{cuda: true, ordinal: n}, nil
	}
	return deviceChoice{}, fmt.Errorf("device %q: want auto, cpu, cuda or cuda:N", s)
}

// gpus opens each GPU once and keeps it for the engine's life.
type gpus struct {
	mu   sync.Mutex
	devs map[int]*cuda.Device
	errs map[int]error
}

func (g *gpus) open(ordinal int) (*cuda.Device, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d := g.devs[ordinal]; d != nil {
		return d, nil
	}
	if err := g.errs[ordinal]; err != nil {
		return nil, err
	}
	d, err := cuda.Open(ordinal)
	if g.devs == nil {
		g.devs, g.errs = map[int]*cuda.Device{}, map[int]error{}
	}
	if err != nil {
		g.errs[ordinal] = err
		return nil, err
	}
	g.devs[ordinal] = d
	return d, nil
}

// CheckDevice reports why s is not a device choice (auto, cpu, cuda or
// cuda:N), or nil; "" means auto.
func CheckDevice(s string) error {
	_, err := parseDevice(s)
	return err
}

// place moves a freshly loaded model to the device Options.Device asks for.
// It returns where the model runs and why; err is set only when an explicit
// cuda device could not take the model.
func (e *Engine) place(mdl *model.Model) (device, reason string, err error) {
	ch, _ := parseDevice(e.o().Device) // checked by withDefaults
	if !ch.auto && !ch.cuda {
		return "cpu", "device cpu was asked for", nil
	}
	dev, err := e.gpus.open(ch.ordinal)
	if err != nil {
		if ch.auto {
			if errors.Is(err, cuda.ErrNotAvailable) {
				return "cpu", "no usable NVIDIA GPU: " + err.Error(), nil
			}
			return "cpu", "the GPU could not be opened: " + err.Error(), nil
		}
		return "", "", err
	}
	reserve := int64(0)
	if ch.auto {
		reserve = gpuReserveBytes
	}
	if err := mdl.UseDevice(dev, reserve); err != nil {
		if ch.auto {
			return "cpu", "the model does not fit the GPU: " + err.Error(), nil
		}
		return "", "", fmt.Errorf("%s: %w", dev.Info(), err)
	}
	reason = "device cuda was asked for"
	if ch.auto {
		reason = "device auto found a GPU and the model fits"
	}
	if c := dev.Compile; c.Cached {
		reason += "; kernels from the cache"
	} else {
		reason += fmt.Sprintf("; kernels compiled by NVRTC %s in %s", c.NVRTC, c.Duration.Round(1e6))
	}
	if x := mdl.ExpandedOnGPU(); len(x) > 0 {
		reason += fmt.Sprintf("; %d matrices widened to float32 (no GPU kernel for their format): %s", len(x), strings.Join(x, ", "))
	}
	return mdl.Device(), reason, nil
}

// GPUState is one GPU the engine opened, with the memory its loaded models
// hold there: for /api/hardware/info, /api/hardware/metrics and Prometheus.
type GPUState struct {
	Ordinal           int    `json:"ordinal"`
	Name              string `json:"name"`
	ComputeCapability string `json:"compute_capability"` // e.g. "9.0"
	Driver            string `json:"driver"`             // the driver's CUDA version, e.g. "13.0"
	TotalBytes        uint64 `json:"total_bytes"`
	// FreeBytes is the device's free memory now (every process's use
	// counted); nil when the driver could not say.
	FreeBytes *uint64 `json:"free_bytes"`
	// The engine's own use: weights, KV caches (prefix cache included) and
	// forward-pass activations of the models on this GPU.
	WeightsBytes    int64    `json:"weights_bytes"`
	KVBytes         int64    `json:"kv_bytes"`
	ActivationBytes int64    `json:"activation_bytes"`
	Models          []string `json:"models"`
}

// GPUs lists the GPUs the engine has opened (none until a model was placed
// with device auto or cuda), sorted by ordinal.
func (e *Engine) GPUs() []GPUState {
	e.gpus.mu.Lock()
	devs := make([]*cuda.Device, 0, len(e.gpus.devs))
	for _, d := range e.gpus.devs {
		devs = append(devs, d)
	}
	e.gpus.mu.Unlock()
	sort.Slice(devs, func(i, j int) bool { return devs[i].Info().Ordinal < devs[j].Info().Ordinal })
	e.mu.Lock()
	loaded := make([]*LoadedModel, 0, len(e.loaded))
	for _, m := range e.loaded {
		loaded = append(loaded, m)
	}
	e.mu.Unlock()
	out := make([]GPUState, 0, len(devs))
	for _, d := range devs {
		info := d.Info()
		st := GPUState{Ordinal: info.Ordinal, Name: info.Name, TotalBytes: info.TotalBytes, Models: []string{},
			ComputeCapability: fmt.Sprintf("%d.%d", info.ComputeMajor, info.ComputeMinor),
			Driver:            fmt.Sprintf("%d.%d", info.Driver/1000, info.Driver%1000/10)}
		if free, err := d.FreeMemory(); err == nil {
			st.FreeBytes = &free
		}
		for _, m := range loaded {
			if m.model == nil || m.model.GPUDevice() != d {
				continue
			}
			w, kv, act := m.model.GPUMemory()
			st.WeightsBytes += w
			st.KVBytes += kv
			st.ActivationBytes += act
			st.Models = append(st.Models, m.Info.ID)
		}
		sort.Strings(st.Models)
		out = append(out, st)
	}
	return out
}
