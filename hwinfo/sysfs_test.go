package hwinfo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeSys writes files (path → content) under a temporary sysfs root.
func fakeSys(t *testing.T, files map[string]string) sysfs {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return sysfs(root)
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  string
	}{
		{"", nil, ""},
		{"0", []int{0}, ""},
		{"0-3", []int{0, 1, 2, 3}, ""},
		{"0-1,4,6-7\n", []int{0, 1, 4, 6, 7}, ""},
		{"a", nil, "bad number"},
		{"3-1", nil, "bad range"},
		{"-1", nil, "bad number"},
		{"0-99999999", nil, "too long"},
		{"1,", nil, "bad number"},
	} {
		got, err := parseCPUList(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseCPUList(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0-3", "0,2-5,7", "", "1-", "9-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := parseCPUList(s)
		if err == nil && len(cpus) > maxCPUList {
			t.Fatalf("%d cpus", len(cpus))
		}
	})
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"48K": 48 << 10, "2048K": 2 << 20, "32M": 32 << 20, "1G": 1 << 30, "512": 512} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "K", "-1K", "x", "99999999999999999999G", "18014398509481984G"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func cpuFiles(n int, extra map[string]string) map[string]string {
	files := map[string]string{"devices/system/cpu/online": "0-" + string(rune('0'+n-1))}
	for i := range n {
		d := "devices/system/cpu/cpu" + string(rune('0'+i)) + "/topology/"
		files[d+"core_id"] = string(rune('0' + i/2)) // two threads per core
		files[d+"physical_package_id"] = "0"
	}
	for k, v := range extra {
		files[k] = v
	}
	return files
}

func TestCoreTypes(t *testing.T) {
	for _, tc := range []struct {
		name           string
		files          map[string]string
		known, hybrid  bool
		perf, eff      []int
		perfPhys, effP int
	}{
		{name: "no hints", files: cpuFiles(4, nil)},
		{name: "intel hybrid", files: cpuFiles(6, map[string]string{"devices/cpu_core/cpus": "0-3", "devices/cpu_atom/cpus": "4-5"}),
			known: true, hybrid: true, perf: []int{0, 1, 2, 3}, eff: []int{4, 5}, perfPhys: 2, effP: 1},
		{name: "one PMU", files: cpuFiles(2, map[string]string{"devices/cpu/type": "4"}), known: true},
		{name: "arm big.LITTLE", files: cpuFiles(4, map[string]string{
			"devices/system/cpu/cpu0/cpu_capacity": "446", "devices/system/cpu/cpu1/cpu_capacity": "446",
			"devices/system/cpu/cpu2/cpu_capacity": "1024", "devices/system/cpu/cpu3/cpu_capacity": "871"}),
			known: true, hybrid: true, perf: []int{2, 3}, eff: []int{0, 1}, perfPhys: 1, effP: 1},
		{name: "arm uniform", files: cpuFiles(2, map[string]string{
			"devices/system/cpu/cpu0/cpu_capacity": "1024", "devices/system/cpu/cpu1/cpu_capacity": "1024"}), known: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeSys(t, tc.files)
			perf, eff, hybrid, known := coreTypes(s, onlineCPUs(s))
			if known != tc.known || hybrid != tc.hybrid || !slices.Equal(perf, tc.perf) || !slices.Equal(eff, tc.eff) {
				t.Fatalf("coreTypes = %v %v hybrid=%v known=%v", perf, eff, hybrid, known)
			}
			if tc.hybrid && (physicalCores(s, perf) != tc.perfPhys || physicalCores(s, eff) != tc.effP) {
				t.Fatalf("physical cores %d/%d", physicalCores(s, perf), physicalCores(s, eff))
			}
		})
	}
}

func TestReadCPUFake(t *testing.T) {
	s := fakeSys(t, cpuFiles(4, map[string]string{
		"devices/cpu_core/cpus": "0-1", "devices/cpu_atom/cpus": "2-3",
		"devices/system/cpu/cpu0/cpufreq/base_frequency":       "2100000",
		"devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq":     "4900000",
		"devices/system/cpu/cpu2/cpufreq/cpuinfo_max_freq":     "3800000",
		"devices/system/cpu/cpu0/cache/index0/level":           "1",
		"devices/system/cpu/cpu0/cache/index0/type":            "Data",
		"devices/system/cpu/cpu0/cache/index0/size":            "48K",
		"devices/system/cpu/cpu0/cache/index0/shared_cpu_list": "0-1",
		"devices/system/cpu/cpu0/cache/index3/level":           "3",
		"devices/system/cpu/cpu0/cache/index3/type":            "Unified",
		"devices/system/cpu/cpu0/cache/index3/size":            "24576K",
		"devices/system/cpu/cpu0/cache/index3/shared_cpu_list": "0-3",
		"devices/system/cpu/cpu0/cache/index4/level":           "9",
		"devices/system/cpu/cpu0/cache/index4/type":            "Unified",
		"devices/system/cpu/cpu0/cache/index4/size":            "junk",
	}))
	c, err := readCPU(s)
	if err != nil {
		t.Fatal(err)
	}
	if c.TotalCores != 4 || *c.PhysicalCores != 2 || !*c.Hybrid || *c.PerformanceCores != 1 || *c.EfficiencyCores != 1 {
		t.Fatalf("cores: %+v", c)
	}
	if *c.BaseFrequencyGHz != 2.1 || *c.MaxFrequencyGHz != 4.9 {
		t.Fatalf("frequencies %v %v", *c.BaseFrequencyGHz, *c.MaxFrequencyGHz)
	}
	if perf, eff, ok := c.CoreSplit(); !ok || !slices.Equal(perf, []int{0, 1}) || !slices.Equal(eff, []int{2, 3}) {
		t.Fatalf("CoreSplit = %v %v %v", perf, eff, ok)
	}
	want := []Cache{{1, "Data", 48 << 10, 2}, {3, "Unified", 24 << 20, 4}}
	if !slices.Equal(c.Caches, want) {
		t.Fatalf("caches %+v", c.Caches)
	}
}

func TestCoreFrequencies(t *testing.T) {
	s := fakeSys(t, cpuFiles(2, map[string]string{
		"devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "1200000",
		"devices/system/cpu/cpu1/cpufreq/scaling_cur_freq": "3456789",
	}))
	if got := coreFrequencies(s, "/nonexistent"); !slices.Equal(got, []float64{1.2, 3.457}) {
		t.Fatalf("cpufreq: %v", got)
	}
	// Without cpufreq, /proc/cpuinfo's "cpu MHz" lines.
	s = fakeSys(t, cpuFiles(2, nil))
	info := filepath.Join(t.TempDir(), "cpuinfo")
	os.WriteFile(info, []byte("processor\t: 0\ncpu MHz\t\t: 2600.000\nprocessor\t: 1\ncpu MHz\t\t: 1999.5\ncpu MHz : bogus\n"), 0o644)
	if got := coreFrequencies(s, info); !slices.Equal(got, []float64{2.6, 2.0}) {
		t.Fatalf("cpuinfo: %v", got)
	}
	if got := coreFrequencies(s, "/nonexistent"); got != nil {
		t.Fatalf("no source: %v", got)
	}
}

func TestThrottleCount(t *testing.T) {
	s := fakeSys(t, cpuFiles(2, map[string]string{
		"devices/system/cpu/cpu0/thermal_throttle/core_throttle_count":    "3",
		"devices/system/cpu/cpu0/thermal_throttle/package_throttle_count": "5",
		"devices/system/cpu/cpu1/thermal_throttle/core_throttle_count":    "1",
	}))
	if n, ok := throttleCount(s); !ok || n != 9 {
		t.Fatalf("throttleCount = %d %v", n, ok)
	}
	if _, ok := throttleCount(fakeSys(t, cpuFiles(2, nil))); ok {
		t.Fatal("counted without counters")
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"48K", "2048K", "32M", "1G", "", "99999999999G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseSize(s) // must not panic; overflow is an error
	})
}
