package hwinfo

import (
	"fmt"
	"strings"

	"github.com/shirou/gopsutil/v4/host"
)

// OS names the operating system and kernel.
type OS struct {
	Name          string `json:"name"`
	Platform      string `json:"platform"`
	Version       string `json:"version"`
	KernelVersion string `json:"kernel_version"`
	KernelArch    string `json:"kernel_arch"`
	// Virtualization is e.g. "kvm" (guest) when the host says so, else empty.
	Virtualization string `json:"virtualization"`
}

// String is a one-line description such as "debian 12.8 (linux 6.1.0)".
func (o OS) String() string {
	s := strings.TrimSpace(o.Platform + " " + o.Version)
	if s == "" {
		s = o.Name
	}
	if o.KernelVersion != "" {
		s += " (" + o.Name + " " + o.KernelVersion + ")"
	}
	return s
}

// ReadOS reads the OS description.
func ReadOS() (OS, error) {
	h, err := host.Info()
	if err != nil {
		return OS{}, fmt.Errorf("reading host info: %w", err)
	}
	o := OS{Name: h.OS, Platform: h.Platform, Version: h.PlatformVersion, KernelVersion: h.KernelVersion, KernelArch: h.KernelArch}
	if h.VirtualizationRole == "guest" {
		o.Virtualization = h.VirtualizationSystem
	}
	return o, nil
}
