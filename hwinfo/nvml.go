//go:build cgo && linux

package hwinfo

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <string.h>

// Our own declarations of the few NVML entry points we read, so that
// building needs nothing from NVIDIA: libnvidia-ml.so.1 (installed with the
// driver) is opened with dlopen at run time.
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;

static void *nvml;
static nvmlReturn_t (*p_init)(void);
static nvmlReturn_t (*p_count)(unsigned int *);
static nvmlReturn_t (*p_handle)(unsigned int, nvmlDevice_t *);
static nvmlReturn_t (*p_name)(nvmlDevice_t, char *, unsigned int);
static nvmlReturn_t (*p_mem)(nvmlDevice_t, nvmlMemory_t *);
static nvmlReturn_t (*p_util)(nvmlDevice_t, nvmlUtilization_t *);
static nvmlReturn_t (*p_driver)(char *, unsigned int);
static nvmlReturn_t (*p_cc)(nvmlDevice_t, int *, int *);
static nvmlReturn_t (*p_temp)(nvmlDevice_t, int, unsigned int *);
static nvmlReturn_t (*p_power)(nvmlDevice_t, unsigned int *);

// imp_nvml_open loads NVML and initializes it once: 0 on success, -1 when
// the library or a required symbol is missing, else NVML's error.
static int imp_nvml_open(void) {
	if (nvml) return 0;
	void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) return -1;
	p_init = dlsym(lib, "nvmlInit_v2");
	p_count = dlsym(lib, "nvmlDeviceGetCount_v2");
	p_handle = dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
	p_name = dlsym(lib, "nvmlDeviceGetName");
	p_mem = dlsym(lib, "nvmlDeviceGetMemoryInfo");
	p_util = dlsym(lib, "nvmlDeviceGetUtilizationRates");
	p_driver = dlsym(lib, "nvmlSystemGetDriverVersion");
	p_cc = dlsym(lib, "nvmlDeviceGetCudaComputeCapability");
	p_temp = dlsym(lib, "nvmlDeviceGetTemperature");
	p_power = dlsym(lib, "nvmlDeviceGetPowerUsage");
	if (!p_init || !p_count || !p_handle || !p_name) {
		dlclose(lib);
		return -1;
	}
	int r = p_init();
	if (r) {
		dlclose(lib);
		return r;
	}
	nvml = lib;
	return 0;
}

static int imp_nvml_count(unsigned int *n) { return p_count(n); }

// imp_nvml_read fills what it can of one GPU; ok[i] tells which reading
// worked: 0 memory, 1 utilization, 2 compute capability, 3 temperature,
// 4 power, 5 driver.
static int imp_nvml_read(unsigned int i, char *name, int nameLen, char *driver, int driverLen, nvmlMemory_t *mem,
                         nvmlUtilization_t *util, int *ccMajor, int *ccMinor, unsigned int *temp, unsigned int *mw, int *ok) {
	nvmlDevice_t d;
	int r = p_handle(i, &d);
	if (r) return r;
	r = p_name(d, name, nameLen);
	if (r) return r;
	ok[0] = p_mem && !p_mem(d, mem);
	ok[1] = p_util && !p_util(d, util);
	ok[2] = p_cc && !p_cc(d, ccMajor, ccMinor);
	ok[3] = p_temp && !p_temp(d, 0, temp);
	ok[4] = p_power && !p_power(d, mw);
	ok[5] = p_driver && !p_driver(driver, driverLen);
	return 0;
}
*/
import "C"

import (
	"fmt"
	"sync"
)

var nvmlMu sync.Mutex

// readNVML reads every GPU through NVML (libnvidia-ml.so.1, by dlopen).
// ok is false when NVML is not there; readings it cannot make are nil.
func readNVML() (gpus []GPU, ok bool, err error) {
	nvmlMu.Lock()
	defer nvmlMu.Unlock()
	if r := C.imp_nvml_open(); r != 0 {
		if r < 0 {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("nvmlInit: error %d", int(r))
	}
	var n C.uint
	if r := C.imp_nvml_count(&n); r != 0 {
		return nil, true, fmt.Errorf("nvmlDeviceGetCount: error %d", int(r))
	}
	gpus = make([]GPU, 0, int(n))
	for i := C.uint(0); i < n; i++ {
		var name, driver [96]C.char
		var mem C.nvmlMemory_t
		var util C.nvmlUtilization_t
		var maj, minr C.int
		var temp, mw C.uint
		var got [6]C.int
		if r := C.imp_nvml_read(i, &name[0], C.int(len(name)), &driver[0], C.int(len(driver)), &mem, &util, &maj, &minr, &temp, &mw, &got[0]); r != 0 {
			return nil, true, fmt.Errorf("nvml: gpu %d: error %d", int(i), int(r))
		}
		g := GPU{Index: int(i), Name: C.GoString(&name[0]), Vendor: "NVIDIA", Source: "nvml"}
		if got[0] != 0 {
			g.MemoryTotalMB = ptr(float64(mem.total) / (1 << 20))
			g.MemoryUsedMB = ptr(float64(mem.used) / (1 << 20))
		}
		if got[1] != 0 {
			g.UtilizationPercent = ptr(float64(util.gpu))
			g.MemoryUtilizationPercent = ptr(float64(util.memory))
		}
		if got[2] != 0 {
			cc := fmt.Sprintf("%d.%d", int(maj), int(minr))
			g.ComputeCapability = &cc
		}
		if got[3] != 0 {
			g.TemperatureC = ptr(float64(temp))
		}
		if got[4] != 0 {
			g.PowerDrawW = ptr(float64(mw) / 1000)
		}
		if got[5] != 0 {
			g.DriverVersion = C.GoString(&driver[0])
		}
		gpus = append(gpus, g)
	}
	return gpus, true, nil
}

func ptr(v float64) *float64 { return &v }
