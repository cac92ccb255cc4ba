package hwinfo

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/shirou/gopsutil/v4/sensors"
)

func TestParseNvidiaSMI(t *testing.T) {
	out := "0, NVIDIA H100 80GB HBM3, 81559, 1, 0, 31, 71.52, 550.54.15, 9.0, 3\n" +
		"1, NVIDIA A10, [N/A], 512, [Not Supported], 40, [N/A], 550.54.15, [N/A], [N/A]\n"
	gpus, err := parseNvidiaSMI(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 2 || gpus[0].Name != "NVIDIA H100 80GB HBM3" || *gpus[0].MemoryTotalMB != 81559 || *gpus[0].PowerDrawW != 71.52 || gpus[0].DriverVersion != "550.54.15" ||
		*gpus[0].ComputeCapability != "9.0" || *gpus[0].MemoryUtilizationPercent != 3 || gpus[0].Source != "nvidia-smi" {
		t.Fatalf("first gpu: %+v", gpus[0])
	}
	if g := gpus[1]; g.Index != 1 || g.MemoryTotalMB != nil || *g.MemoryUsedMB != 512 || g.UtilizationPercent != nil || g.PowerDrawW != nil || g.ComputeCapability != nil || g.MemoryUtilizationPercent != nil {
		t.Fatalf("second gpu: %+v", g)
	}
	if gpus, err := parseNvidiaSMI(""); err != nil || len(gpus) != 0 {
		t.Fatalf("empty output: %v %v", gpus, err)
	}
	for _, bad := range []string{"0, A, 1\n", "0, A, 1, 1, 1, 1, 1, d\n", "x, A, 1, 1, 1, 1, 1, d, 9.0, 1\n", "-1, A, 1, 1, 1, 1, 1, d, 9.0, 1\n", "\"0, A, 1, 1, 1, 1, 1, d, 9.0, 1\n"} {
		if _, err := parseNvidiaSMI(bad); err == nil || !strings.Contains(err.Error(), "nvidia-smi") {
			t.Errorf("parseNvidiaSMI(%q) error = %v", bad, err)
		}
	}
}

func FuzzParseNvidiaSMI(f *testing.F) {
	f.Add("0, NVIDIA H100, 81559, 1, 0, 31, 71.52, 550.54.15, 9.0, 4\n")
	f.Add("1, X, [N/A], NaN, -1, 1e999, , v, x.y, NaN\n")
	f.Fuzz(func(t *testing.T, s string) {
		gpus, err := parseNvidiaSMI(s)
		if err != nil {
			return
		}
		for _, g := range gpus {
			for _, p := range []*float64{g.MemoryTotalMB, g.MemoryUsedMB, g.UtilizationPercent, g.TemperatureC, g.PowerDrawW, g.MemoryUtilizationPercent} {
				if p != nil && (*p != *p || *p < 0) {
					t.Fatalf("bad number %v in %+v", *p, g)
				}
			}
		}
	})
}

func TestThermalFrom(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []sensors.TemperatureStat
		temp  float64 // 0: null
		state string  // "": null
	}{
		{name: "no sensors"},
		{name: "nvme only", in: []sensors.TemperatureStat{{SensorKey: "nvme_composite", Temperature: 40}}},
		{name: "coretemp package", in: []sensors.TemperatureStat{
			{SensorKey: "coretemp_core_0", Temperature: 70, High: 80, Critical: 100},
			{SensorKey: "coretemp_package_id_0", Temperature: 65, High: 80, Critical: 100}}, temp: 65, state: "nominal"},
		{name: "hot", in: []sensors.TemperatureStat{{SensorKey: "k10temp_tctl", Temperature: 91, High: 90}}, temp: 91, state: "serious"},
		{name: "critical", in: []sensors.TemperatureStat{{SensorKey: "cpu_thermal", Temperature: 105, Critical: 100}}, temp: 105, state: "critical"},
		{name: "no trip points", in: []sensors.TemperatureStat{{SensorKey: "x86_pkg_temp", Temperature: 50}}, temp: 50},
		{name: "broken sensor", in: []sensors.TemperatureStat{{SensorKey: "coretemp_package_id_0", Temperature: 255}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := thermalFrom(tc.in)
			if (th.CPUTemperatureC == nil) != (tc.temp == 0) || (th.CPUTemperatureC != nil && *th.CPUTemperatureC != tc.temp) {
				t.Fatalf("cpu temperature %v", th.CPUTemperatureC)
			}
			if (th.ThermalState == nil) != (tc.state == "") || (th.ThermalState != nil && *th.ThermalState != tc.state) {
				t.Fatalf("state %v", th.ThermalState)
			}
		})
	}
}

// meminfoKB reads one field of /proc/meminfo.
func meminfoKB(t *testing.T, key string) uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Skip("no /proc/meminfo")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if k == key {
			n, _ := strconv.ParseUint(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	t.Fatalf("%s not in /proc/meminfo", key)
	return 0
}

func TestLiveReadingsMatchOS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("compares with Linux /proc and sysfs")
	}
	c, err := ReadCPU()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("getconf", "_NPROCESSORS_ONLN").Output()
	if err == nil {
		if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); n != c.TotalCores {
			t.Errorf("total_cores %d, getconf says %d", c.TotalCores, n)
		}
	}
	if c.PhysicalCores == nil || *c.PhysicalCores < 1 || *c.PhysicalCores > c.TotalCores {
		t.Errorf("physical cores %v of %d", c.PhysicalCores, c.TotalCores)
	}
	if c.PerformanceCores != nil && *c.PerformanceCores+*c.EfficiencyCores != *c.PhysicalCores {
		t.Errorf("core types %d+%d != %d physical", *c.PerformanceCores, *c.EfficiencyCores, *c.PhysicalCores)
	}
	if c.MaxFrequencyGHz != nil && (*c.MaxFrequencyGHz < 0.1 || *c.MaxFrequencyGHz > 10) {
		t.Errorf("max frequency %v GHz", *c.MaxFrequencyGHz)
	}
	if c.Architecture != runtime.GOARCH || c.Brand == nil {
		t.Errorf("arch %q brand %v", c.Architecture, c.Brand)
	}
	if runtime.GOARCH == "amd64" && !strings.Contains(strings.Join(c.Features, " "), "sse4_2") {
		t.Errorf("amd64 without sse4_2: %v", c.Features)
	}
	m, err := ReadMemory()
	if err != nil {
		t.Fatal(err)
	}
	if want := meminfoKB(t, "MemTotal") * 1024; m.TotalBytes != want {
		t.Errorf("total memory %d, /proc/meminfo says %d", m.TotalBytes, want)
	}
	if f := CoreFrequenciesGHz(); f != nil && len(f) != c.TotalCores {
		t.Errorf("%d frequencies for %d cpus", len(f), c.TotalCores)
	}
	var s CPUSampler
	u, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if u.UsagePercent < 0 || u.UsagePercent > 100 || len(u.PerCore) != c.TotalCores {
		t.Errorf("usage %+v", u)
	}
	la, err := LoadAverage()
	if err != nil || la[0] < 0 {
		t.Errorf("load average %v %v", la, err)
	}
	var ps ProcessSampler
	p, err := ps.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != int32(os.Getpid()) || p.MemoryMB == nil || *p.MemoryMB <= 0 || p.Threads == nil || *p.Threads < 1 || p.FileDescriptors == nil || p.UptimeSeconds == nil {
		t.Errorf("process %+v", p)
	}
	if o, err := ReadOS(); err != nil || o.Name != runtime.GOOS || o.KernelVersion == "" {
		t.Errorf("os %+v %v", o, err)
	}
	th := ReadThermal()
	if th.CPUTemperatureC != nil && (*th.CPUTemperatureC < -40 || *th.CPUTemperatureC > 150) {
		t.Errorf("cpu temperature %v", *th.CPUTemperatureC)
	}
}

// TestReadGPUs reads the GPUs (through NVML where the driver installed it)
// where nvidia-smi is installed and checks each against nvidia-smi -L.
func TestReadGPUs(t *testing.T) {
	gpus, err := ReadGPUs(context.Background())
	if errors.Is(err, ErrNoGPUTool) {
		t.Skip("no NVIDIA GPU here: neither NVML nor nvidia-smi is installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("nvidia-smi", "-L").Output()
	if err != nil {
		t.Skipf("read %d GPUs, but nvidia-smi -L to check them against failed: %v", len(gpus), err)
	}
	if n := strings.Count(string(list), "GPU "); n != len(gpus) {
		t.Fatalf("%d gpus parsed, nvidia-smi -L lists %d", len(gpus), n)
	}
	for _, g := range gpus {
		if !strings.Contains(string(list), g.Name) || g.MemoryTotalMB == nil || *g.MemoryTotalMB <= 0 {
			t.Errorf("gpu %+v", g)
		}
		if g.ComputeCapability == nil || g.DriverVersion == "" || g.UtilizationPercent == nil {
			t.Errorf("gpu %d: compute capability, driver or utilization missing: %+v", g.Index, g)
		}
		t.Logf("gpu %d (%s): %s, %v MB, %v MB used, cc %v, driver %s, util %v%%, memory util %v%%", g.Index, g.Source, g.Name,
			*g.MemoryTotalMB, deref(g.MemoryUsedMB), deref2(g.ComputeCapability), g.DriverVersion, deref(g.UtilizationPercent), deref(g.MemoryUtilizationPercent))
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func deref2(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}
