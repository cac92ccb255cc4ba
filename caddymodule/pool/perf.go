package pool

import (
	"cmp"
	"fmt"
	"runtime"

	"github.com/impetusllm/impetus/inference/kernels"
)

// threadsFor is the compute thread count of a mode: the configured threads
// (default: every CPU this process may use) in balanced and performance
// mode, half of them (at least one) in efficiency mode.
func threadsFor(mode string, configured int) int {
	n := configured
	if n <= 0 {
		n = runtime.NumCPU()
	}
	if mode == ModeEfficiency {
		n = max(1, n/2)
	}
	return n
}

// SetMode switches to mode: the kernels' thread pool takes the mode's size.
// It returns the new state.
func (p *Entry) SetMode(mode string, configured int) PerformanceState {
	p.perfMu.Lock()
	defer p.perfMu.Unlock()
	p.mode = mode
	p.Engine.SetThreads(threadsFor(mode, configured))
	return p.performanceLocked()
}

// ApplyConfigMode takes a config's mode when the config's mode or threads
// changed since the last config, so a mode set through the API survives
// unrelated reloads. It returns the mode in force and its thread count,
// which the caller applies.
func (p *Entry) ApplyConfigMode(mode string, configured int) (string, int) {
	p.perfMu.Lock()
	defer p.perfMu.Unlock()
	if key := fmt.Sprintf("%s/%d", mode, configured); key != p.applied {
		p.applied, p.mode = key, mode
	}
	return p.mode, threadsFor(p.mode, configured)
}

// PerformanceState is the body of GET and POST /api/hardware/performance-mode.
type PerformanceState struct {
	Mode     string              `json:"mode"`
	Settings PerformanceSettings `json:"settings"`
}

// PerformanceSettings are what a mode sets.
type PerformanceSettings struct {
	// ComputeThreads is the size of the kernels' thread pool.
	ComputeThreads int `json:"compute_threads"`
	// AvailableCPUs is how many CPUs this process may run on.
	AvailableCPUs int `json:"available_cpus"`
}

// Performance reports the mode in force and the thread pool's size.
func (p *Entry) Performance() PerformanceState {
	p.perfMu.Lock()
	defer p.perfMu.Unlock()
	return p.performanceLocked()
}

func (p *Entry) performanceLocked() PerformanceState {
	return PerformanceState{Mode: cmp.Or(p.mode, ModeBalanced), Settings: PerformanceSettings{ComputeThreads: kernels.Threads(), AvailableCPUs: runtime.NumCPU()}}
}

// Performance modes, from frugal to fast.
const (
	ModeEfficiency  = "efficiency"
	ModeBalanced    = "balanced"
	ModePerformance = "performance"
)
