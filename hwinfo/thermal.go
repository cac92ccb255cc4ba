package hwinfo

import (
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/shirou/gopsutil/v4/sensors"
)

// Thermal is the CPU's thermal state from hwmon (or thermal zones when no
// hwmon driver is loaded). Fields are null when the host has no sensors, as
// in most VMs and containers.
type Thermal struct {
	CPUTemperatureC *float64 `json:"cpu_temperature_c"`
	// ThermalState compares the CPU sensor with its own trip points:
	// "nominal" below the high mark, "serious" at or above it, "critical" at
	// or above the critical mark; null when the sensor has no trip points.
	ThermalState *string `json:"thermal_state"`
	// Throttling is true when the kernel's thermal throttle counters
	// (devices/system/cpu/cpu*/thermal_throttle) rose since the previous
	// reading in this process; null on the first reading or without counters.
	Throttling *bool `json:"throttling"`
	// ThrottleEvents is the kernel's total of package and core throttle events.
	ThrottleEvents *int64   `json:"throttle_events"`
	Sensors        []Sensor `json:"sensors"`
}

// Sensor is one temperature reading.
type Sensor struct {
	Name         string   `json:"name"`
	TemperatureC float64  `json:"temperature_c"`
	HighC        *float64 `json:"high_c"`
	CriticalC    *float64 `json:"critical_c"`
}

// cpuSensorPrefixes name hwmon drivers and thermal zones that measure the
// CPU package, best first.
var cpuSensorPrefixes = []string{"coretemp_package", "k10temp_tctl", "k10temp_tdie", "zenpower", "x86_pkg_temp", "cpu_thermal", "cpu-thermal", "coretemp", "k10temp", "soc_thermal"}

var throttle struct {
	sync.Mutex
	last  int64
	known bool
}

// ReadThermal reads temperatures and throttling.
func ReadThermal() Thermal {
	temps, _ := sensors.SensorsTemperatures() // partial results come with warnings
	t := thermalFrom(temps)
	if n, ok := throttleCount(liveSys); ok {
		t.ThrottleEvents = &n
		throttle.Lock()
		if throttle.known {
			rose := n > throttle.last
			t.Throttling = &rose
		}
		throttle.last, throttle.known = n, true
		throttle.Unlock()
	}
	return t
}

func thermalFrom(temps []sensors.TemperatureStat) Thermal {
	t := Thermal{Sensors: []Sensor{}}
	for _, s := range temps {
		if s.Temperature <= -273 || s.Temperature > 200 {
			continue // disconnected or broken sensors report nonsense
		}
		sn := Sensor{Name: s.SensorKey, TemperatureC: s.Temperature}
		if s.High > 0 {
			h := s.High
			sn.HighC = &h
		}
		if s.Critical > 0 {
			c := s.Critical
			sn.CriticalC = &c
		}
		t.Sensors = append(t.Sensors, sn)
	}
	sort.SliceStable(t.Sensors, func(i, j int) bool { return t.Sensors[i].Name < t.Sensors[j].Name })
	var best *Sensor
	for _, p := range cpuSensorPrefixes {
		for i := range t.Sensors {
			s := &t.Sensors[i]
			if strings.HasPrefix(strings.ToLower(s.Name), p) && (best == nil || s.TemperatureC > best.TemperatureC) {
				best = s
			}
		}
		if best != nil {
			break
		}
	}
	if best == nil {
		return t
	}
	v := best.TemperatureC
	t.CPUTemperatureC = &v
	var state string
	switch {
	case best.CriticalC != nil && v >= *best.CriticalC:
		state = "critical"
	case best.HighC != nil && v >= *best.HighC:
		state = "serious"
	case best.HighC != nil || best.CriticalC != nil:
		state = "nominal"
	}
	if state != "" {
		t.ThermalState = &state
	}
	return t
}

// throttleCount sums the thermal throttle counters of all online CPUs.
func throttleCount(s sysfs) (int64, bool) {
	var total int64
	found := false
	for _, n := range onlineCPUs(s) {
		dir := "cpu" + strconv.Itoa(n)
		for _, f := range []string{"core_throttle_count", "package_throttle_count"} {
			if v, ok := s.int("devices/system/cpu", dir, "thermal_throttle", f); ok {
				total += v
				found = true
			}
		}
	}
	return total, found
}
