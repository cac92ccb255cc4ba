package hwinfo

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/process"
)

// CPUUsage is CPU busy time as a percentage over the interval since the
// sampler's previous reading.
type CPUUsage struct {
	UsagePercent float64 `json:"usage_percent"`
	// PerCore follows the logical CPU numbering.
	PerCore []float64 `json:"per_core_usage"`
}

// CPUSampler measures CPU usage between its own readings, so that several
// samplers (the metrics endpoint, the event bus) do not disturb each other
// as gopsutil's shared "since last call" state would.
type CPUSampler struct {
	mu        sync.Mutex
	lastTotal cpu.TimesStat
	lastPer   []cpu.TimesStat
	primed    bool
}

// minSampleInterval is the shortest window a first reading measures over.
const minSampleInterval = 200 * time.Millisecond

// Sample returns usage since the previous Sample. The first call measures
// over a short window, so it blocks for minSampleInterval.
func (s *CPUSampler) Sample() (CPUUsage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.primed {
		if err := s.read(); err != nil {
			return CPUUsage{}, err
		}
		s.primed = true
		time.Sleep(minSampleInterval)
	}
	prevTotal, prevPer := s.lastTotal, s.lastPer
	if err := s.read(); err != nil {
		return CPUUsage{}, err
	}
	u := CPUUsage{UsagePercent: busyPercent(prevTotal, s.lastTotal), PerCore: make([]float64, 0, len(s.lastPer))}
	if len(prevPer) == len(s.lastPer) {
		for i := range s.lastPer {
			u.PerCore = append(u.PerCore, busyPercent(prevPer[i], s.lastPer[i]))
		}
	}
	return u, nil
}

func (s *CPUSampler) read() error {
	total, err := cpu.Times(false)
	if err != nil {
		return fmt.Errorf("reading cpu times: %w", err)
	}
	if len(total) == 0 {
		return errors.New("reading cpu times: no figures")
	}
	per, err := cpu.Times(true)
	if err != nil {
		return fmt.Errorf("reading per-cpu times: %w", err)
	}
	s.lastTotal, s.lastPer = total[0], per
	return nil
}

// busyPercent is the busy share of the time between two readings, in 0..100.
// Guest time is already counted in user time on Linux, so it is left out.
func busyPercent(a, b cpu.TimesStat) float64 {
	all := func(t cpu.TimesStat) (float64, float64) {
		tot := t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
		return tot, tot - t.Idle - t.Iowait
	}
	ta, ba := all(a)
	tb, bb := all(b)
	if tb <= ta {
		return 0
	}
	p := (bb - ba) / (tb - ta) * 100
	return min(100, max(0, p))
}

// LoadAverage returns the 1, 5 and 15 minute load averages.
func LoadAverage() ([3]float64, error) {
	a, err := load.Avg()
	if err != nil {
		return [3]float64{}, fmt.Errorf("reading load average: %w", err)
	}
	return [3]float64{a.Load1, a.Load5, a.Load15}, nil
}

// Process is this server process's resource use.
type Process struct {
	PID int32 `json:"pid"`
	// CPUPercent is CPU time over wall time since the previous reading, where
	// 100 is one full core.
	CPUPercent      *float64 `json:"cpu_percent"`
	MemoryMB        *float64 `json:"memory_mb"`
	MemoryPercent   *float64 `json:"memory_percent"`
	Threads         *int32   `json:"threads"`
	FileDescriptors *int32   `json:"file_descriptors"`
	Goroutines      int      `json:"goroutines"`
	UptimeSeconds   *float64 `json:"uptime_seconds"`
}

// ProcessSampler reads this process's stats; CPU percent is measured
// between its own readings.
type ProcessSampler struct {
	mu   sync.Mutex
	proc *process.Process
}

// Sample reads the process stats. Figures the OS does not give are null.
func (s *ProcessSampler) Sample() (Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		p, err := process.NewProcess(int32(os.Getpid()))
		if err != nil {
			return Process{}, fmt.Errorf("opening own process: %w", err)
		}
		s.proc = p
		if _, err := p.Percent(0); err != nil { // primes the CPU reading
			return Process{}, fmt.Errorf("reading process cpu: %w", err)
		}
		time.Sleep(minSampleInterval)
	}
	p := s.proc
	out := Process{PID: p.Pid, Goroutines: runtime.NumGoroutine()}
	if v, err := p.Percent(0); err == nil {
		out.CPUPercent = &v
	}
	if mi, err := p.MemoryInfo(); err == nil {
		v := float64(mi.RSS) / (1 << 20)
		out.MemoryMB = &v
	}
	if v, err := p.MemoryPercent(); err == nil {
		f := float64(v)
		out.MemoryPercent = &f
	}
	if v, err := p.NumThreads(); err == nil {
		out.Threads = &v
	}
	if v, err := p.NumFDs(); err == nil {
		out.FileDescriptors = &v
	}
	if ms, err := p.CreateTime(); err == nil {
		v := time.Since(time.UnixMilli(ms)).Seconds()
		out.UptimeSeconds = &v
	}
	return out, nil
}
