package hwinfo

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// GPU is one NVIDIA GPU as NVML (or, without it, nvidia-smi) reports it.
// Readings that cannot be made are null.
type GPU struct {
	Index              int      `json:"index"`
	Name               string   `json:"name"`
	Vendor             string   `json:"vendor"`
	MemoryTotalMB      *float64 `json:"memory_total_mb"`
	MemoryUsedMB       *float64 `json:"memory_used_mb"`
	UtilizationPercent *float64 `json:"utilization_percent"`
	TemperatureC       *float64 `json:"temperature_c"`
	PowerDrawW         *float64 `json:"power_draw_w"`
	DriverVersion      string   `json:"driver_version"`
	// ComputeCapability is "major.minor", e.g. "9.0" for Hopper.
	ComputeCapability *string `json:"compute_capability"`
	// MemoryUtilizationPercent is the share of the last sample period in
	// which device memory was read or written.
	MemoryUtilizationPercent *float64 `json:"memory_utilization_percent"`
	// Source is where the readings came from: "nvml" or "nvidia-smi".
	Source string `json:"source"`
}

// gpuQuery is the nvidia-smi field list, in the order parseNvidiaSMI expects.
const gpuQuery = "index,name,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,driver_version,compute_cap,utilization.memory"

// ErrNoGPUTool means neither NVML (libnvidia-ml.so.1) nor nvidia-smi is
// installed: the host has no NVIDIA GPU this process can see.
var ErrNoGPUTool = errors.New("no NVML library and no nvidia-smi")

// ReadGPUs reads the NVIDIA GPUs through NVML, opened with dlopen (cheap
// enough for every metrics scrape), else by running nvidia-smi (at most
// 5 s). It returns ErrNoGPUTool when neither is there.
func ReadGPUs(ctx context.Context) ([]GPU, error) {
	if gpus, ok, err := readNVML(); ok {
		return gpus, err
	}
	bin, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return nil, ErrNoGPUTool
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--query-gpu="+gpuQuery, "--format=csv,noheader,nounits").Output()
	if err != nil {
		return nil, fmt.Errorf("running nvidia-smi: %w", err)
	}
	return parseNvidiaSMI(string(out))
}

// parseNvidiaSMI parses nvidia-smi's CSV output for gpuQuery. Values it
// cannot read ("[N/A]", "[Not Supported]") become null.
func parseNvidiaSMI(out string) ([]GPU, error) {
	r := csv.NewReader(strings.NewReader(out))
	r.TrimLeadingSpace = true
	r.FieldsPerRecord = 10
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parsing nvidia-smi output: %w", err)
	}
	gpus := make([]GPU, 0, len(recs))
	for i, rec := range recs {
		idx, err := strconv.Atoi(strings.TrimSpace(rec[0]))
		if err != nil || idx < 0 {
			return nil, fmt.Errorf("parsing nvidia-smi output: line %d: bad index %q", i+1, rec[0])
		}
		gpus = append(gpus, GPU{
			Index: idx, Name: strings.TrimSpace(rec[1]), Vendor: "NVIDIA",
			MemoryTotalMB: number(rec[2]), MemoryUsedMB: number(rec[3]),
			UtilizationPercent: number(rec[4]), TemperatureC: number(rec[5]), PowerDrawW: number(rec[6]),
			DriverVersion: strings.TrimSpace(rec[7]), MemoryUtilizationPercent: number(rec[9]), Source: "nvidia-smi",
		})
		if cc := strings.TrimSpace(rec[8]); number(cc) != nil {
			gpus[len(gpus)-1].ComputeCapability = &cc
		}
	}
	return gpus, nil
}

// number parses a numeric nvidia-smi field; nil for "[N/A]" and the like.
func number(s string) *float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v != v || v < 0 || v > 1e12 {
		return nil
	}
	return &v
}
