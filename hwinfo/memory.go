// Package hwinfo reads hardware facts and live metrics of the host as plain
// structs. Values a machine cannot report are left out, never invented.
package hwinfo

import (
	"fmt"

	"github.com/shirou/gopsutil/v4/mem"
)

// Memory is the host's physical memory as the OS reports it.
type Memory struct {
	TotalBytes     uint64  `json:"total_bytes"`
	AvailableBytes uint64  `json:"available_bytes"`
	UsedBytes      uint64  `json:"used_bytes"`
	UsedPercent    float64 `json:"usage_percent"`
}

// ReadMemory reads the current memory figures.
func ReadMemory() (Memory, error) {
	v, err := mem.VirtualMemory()
	if err != nil {
		return Memory{}, fmt.Errorf("reading memory: %w", err)
	}
	return Memory{TotalBytes: v.Total, AvailableBytes: v.Available, UsedBytes: v.Used, UsedPercent: v.UsedPercent}, nil
}
