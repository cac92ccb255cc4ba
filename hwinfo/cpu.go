package hwinfo

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/cpu"
)

// CPU describes the host's processor. Pointer fields are null when the host
// does not report them (for example cpufreq is absent in most VMs).
type CPU struct {
	Brand  *string `json:"brand"`
	Vendor *string `json:"vendor"`
	// Architecture is the engine's GOARCH (amd64, arm64).
	Architecture string `json:"architecture"`
	// Hybrid is true when the kernel shows two core types (Intel P/E cores
	// via /sys/devices/cpu_core and cpu_atom, or Arm cores of unequal
	// cpu_capacity), false when it shows one, null when it tells neither.
	Hybrid *bool `json:"hybrid"`
	// PerformanceCores and EfficiencyCores count physical cores of each type;
	// on a CPU with one core type every core counts as a performance core.
	PerformanceCores *int `json:"performance_cores"`
	EfficiencyCores  *int `json:"efficiency_cores"`
	// TotalCores counts logical CPUs (hardware threads) online.
	TotalCores    int  `json:"total_cores"`
	PhysicalCores *int `json:"physical_cores"`
	// Frequencies from cpufreq (base_frequency, cpuinfo_max_freq).
	BaseFrequencyGHz *float64 `json:"base_frequency_ghz"`
	MaxFrequencyGHz  *float64 `json:"max_frequency_ghz"`
	// Features lists the SIMD extensions present that matter to the engine's
	// kernels (from the CPU flags).
	Features []string `json:"features"`
	// Caches are those of the first CPU.
	Caches []Cache `json:"caches"`

	online, perfCPUs, effCPUs []int // logical CPU numbers, by core type when hybrid
}

// CoreSplit lists the logical CPUs of each core type: on a CPU with one core
// type all online CPUs are performance CPUs. ok is false when the kernel
// does not tell the core types.
func (c CPU) CoreSplit() (perf, eff []int, ok bool) {
	if c.Hybrid == nil {
		return nil, nil, false
	}
	if *c.Hybrid {
		return c.perfCPUs, c.effCPUs, true
	}
	return c.online, []int{}, true
}

// Cache is one CPU cache level.
type Cache struct {
	Level     int    `json:"level"`
	Type      string `json:"type"`
	SizeBytes uint64 `json:"size_bytes"`
	// SharedBy is how many logical CPUs share this cache.
	SharedBy int `json:"shared_by"`
}

// simdFlags are the CPU flags (as /proc/cpuinfo names them) of the
// extensions the kernels use or could use.
var simdFlags = []string{
	"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile",
	"asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2",
}

// ReadCPU reads the processor description.
func ReadCPU() (CPU, error) { return readCPU(liveSys) }

func readCPU(s sysfs) (CPU, error) {
	c := CPU{Architecture: runtime.GOARCH, Features: []string{}, Caches: []Cache{}}
	infos, err := cpu.Info()
	if err != nil {
		return c, fmt.Errorf("reading cpu info: %w", err)
	}
	if len(infos) > 0 {
		if b := strings.TrimSpace(infos[0].ModelName); b != "" {
			c.Brand = &b
		}
		if v := strings.TrimSpace(infos[0].VendorID); v != "" {
			c.Vendor = &v
		}
		for _, f := range simdFlags {
			if slices.Contains(infos[0].Flags, f) {
				c.Features = append(c.Features, f)
			}
		}
	}
	online := onlineCPUs(s)
	c.online = online
	c.TotalCores = len(online)
	if c.TotalCores == 0 {
		n, err := cpu.Counts(true)
		if err != nil {
			return c, fmt.Errorf("counting cpus: %w", err)
		}
		c.TotalCores = n
	}
	if n := physicalCores(s, online); n > 0 {
		c.PhysicalCores = &n
	} else if n, err := cpu.Counts(false); err == nil && n > 0 {
		c.PhysicalCores = &n
	}
	perf, eff, hybrid, known := coreTypes(s, online)
	if known {
		c.Hybrid = &hybrid
		if hybrid {
			c.perfCPUs, c.effCPUs = perf, eff
			p, e := physicalCores(s, perf), physicalCores(s, eff)
			c.PerformanceCores, c.EfficiencyCores = &p, &e
		} else if c.PhysicalCores != nil {
			p, e := *c.PhysicalCores, 0
			c.PerformanceCores, c.EfficiencyCores = &p, &e
		}
	}
	if khz, ok := s.int("devices/system/cpu/cpu0/cpufreq/base_frequency"); ok && khz > 0 {
		c.BaseFrequencyGHz = ghz(khz)
	}
	var maxKHz int64
	for _, n := range online {
		if khz, ok := s.int("devices/system/cpu", "cpu"+strconv.Itoa(n), "cpufreq/cpuinfo_max_freq"); ok && khz > maxKHz {
			maxKHz = khz
		}
	}
	if maxKHz > 0 {
		c.MaxFrequencyGHz = ghz(maxKHz)
	}
	c.Caches = readCaches(s, 0)
	return c, nil
}

func ghz(khz int64) *float64 {
	v := float64(int64(float64(khz)/1e6*1000+0.5)) / 1000
	return &v
}

// onlineCPUs lists the online logical CPUs; empty when sysfs does not say.
func onlineCPUs(s sysfs) []int {
	t, ok := s.text("devices/system/cpu/online")
	if !ok {
		return nil
	}
	cpus, err := parseCPUList(t)
	if err != nil {
		return nil
	}
	return cpus
}

// physicalCores counts distinct (package, core) pairs among cpus; 0 when
// the topology is not readable.
func physicalCores(s sysfs, cpus []int) int {
	seen := map[[2]int64]bool{}
	for _, n := range cpus {
		dir := "cpu" + strconv.Itoa(n)
		core, ok1 := s.int("devices/system/cpu", dir, "topology/core_id")
		pkg, ok2 := s.int("devices/system/cpu", dir, "topology/physical_package_id")
		if !ok1 || !ok2 {
			return 0
		}
		seen[[2]int64{pkg, core}] = true
	}
	return len(seen)
}

// coreTypes splits online CPUs into performance and efficiency cores. Intel
// hybrid parts expose a PMU per core type (devices/cpu_core, devices/cpu_atom);
// Arm big.LITTLE parts give smaller cores a smaller cpu_capacity, and the
// cores of the smallest capacity count as efficiency cores. known is false
// when sysfs tells neither.
func coreTypes(s sysfs, online []int) (perf, eff []int, hybrid, known bool) {
	if t, ok := s.text("devices/cpu_atom/cpus"); ok {
		eff, _ = parseCPUList(t)
		if t, ok := s.text("devices/cpu_core/cpus"); ok {
			perf, _ = parseCPUList(t)
		}
		if len(perf) > 0 && len(eff) > 0 {
			return perf, eff, true, true
		}
	}
	caps := map[int]int64{}
	for _, n := range online {
		v, ok := s.int("devices/system/cpu", "cpu"+strconv.Itoa(n), "cpu_capacity")
		if !ok {
			caps = nil
			break
		}
		caps[n] = v
	}
	if len(caps) > 0 {
		lo := int64(-1)
		for _, v := range caps {
			if lo < 0 || v < lo {
				lo = v
			}
		}
		for _, n := range online {
			if caps[n] == lo {
				eff = append(eff, n)
			} else {
				perf = append(perf, n)
			}
		}
		if len(perf) == 0 {
			return nil, nil, false, true
		}
		return perf, eff, true, true
	}
	if _, err := os.Stat(s.path("devices/cpu")); err == nil {
		// One core PMU: the kernel would show cpu_core/cpu_atom on a hybrid part.
		return nil, nil, false, true
	}
	return nil, nil, false, false
}

// readCaches reads the caches of one logical CPU, by level then type.
func readCaches(s sysfs, cpuN int) []Cache {
	dirs, _ := filepath.Glob(s.path("devices/system/cpu", "cpu"+strconv.Itoa(cpuN), "cache/index*"))
	out := []Cache{}
	for _, d := range dirs {
		rel, err := filepath.Rel(string(s), d)
		if err != nil {
			continue
		}
		level, ok1 := s.int(rel, "level")
		typ, ok2 := s.text(rel, "type")
		sz, ok3 := s.text(rel, "size")
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		size, err := parseSize(sz)
		if err != nil {
			continue
		}
		c := Cache{Level: int(level), Type: typ, SizeBytes: size}
		if t, ok := s.text(rel, "shared_cpu_list"); ok {
			if l, err := parseCPUList(t); err == nil {
				c.SharedBy = len(l)
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Level != out[j].Level {
			return out[i].Level < out[j].Level
		}
		return out[i].Type < out[j].Type
	})
	return out
}

// CoreFrequenciesGHz reads each online CPU's current frequency: cpufreq's
// scaling_cur_freq, else the "cpu MHz" lines of /proc/cpuinfo (x86). It is
// nil when neither is available.
func CoreFrequenciesGHz() []float64 { return coreFrequencies(liveSys, "/proc/cpuinfo") }

func coreFrequencies(s sysfs, cpuinfo string) []float64 {
	online := onlineCPUs(s)
	out := make([]float64, 0, len(online))
	for _, n := range online {
		khz, ok := s.int("devices/system/cpu", "cpu"+strconv.Itoa(n), "cpufreq/scaling_cur_freq")
		if !ok {
			out = nil
			break
		}
		out = append(out, *ghz(khz))
	}
	if len(out) > 0 {
		return out
	}
	f, err := os.Open(cpuinfo)
	if err != nil {
		return nil
	}
	defer f.Close()
	mhz := parseCPUInfoMHz(bufio.NewScanner(f))
	if len(mhz) == 0 {
		return nil
	}
	for i := range mhz {
		mhz[i] = float64(int64(mhz[i]+0.5)) / 1000
	}
	return mhz
}

// parseCPUInfoMHz collects the "cpu MHz" values of /proc/cpuinfo in order.
func parseCPUInfoMHz(sc *bufio.Scanner) []float64 {
	var out []float64
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f <= 0 || f > 1e6 {
			continue
		}
		out = append(out, f)
	}
	return out
}
