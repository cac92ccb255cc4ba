//go:build cgo && linux

#include "impcuda.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *drv, *rtc;
static char dlerr[512];

#define DRV_FUNCS(X) \
	X(cuInit, (unsigned)) \
	X(cuDriverGetVersion, (int *)) \
	X(cuDeviceGetCount, (int *)) \
	X(cuDeviceGet, (CUdevice *, int)) \
	X(cuDeviceGetName, (char *, int, CUdevice)) \
	X(cuDeviceGetAttribute, (int *, int, CUdevice)) \
	X(cuDeviceTotalMem_v2, (size_t *, CUdevice)) \
	X(cuDevicePrimaryCtxRetain, (CUcontext *, CUdevice)) \
	X(cuDevicePrimaryCtxRelease_v2, (CUdevice)) \
	X(cuCtxSetCurrent, (CUcontext)) \
	X(cuCtxSynchronize, (void)) \
	X(cuMemGetInfo_v2, (size_t *, size_t *)) \
	X(cuModuleLoadData, (CUmodule *, const void *)) \
	X(cuModuleUnload, (CUmodule)) \
	X(cuModuleGetFunction, (CUfunction *, CUmodule, const char *)) \
	X(cuMemAlloc_v2, (CUdeviceptr *, size_t)) \
	X(cuMemFree_v2, (CUdeviceptr)) \
	X(cuMemcpyHtoD_v2, (CUdeviceptr, const void *, size_t)) \
	X(cuMemcpyDtoH_v2, (void *, CUdeviceptr, size_t)) \
	X(cuMemcpyDtoDAsync_v2, (CUdeviceptr, CUdeviceptr, size_t, CUstream)) \
	X(cuLaunchKernel, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **)) \
	X(cuGetErrorString, (CUresult, const char **))

// Graph entry points, loaded when present (imp_graphs_available).
#define GRAPH_FUNCS(X) \
	X(cuStreamCreate, (CUstream *, unsigned)) \
	X(cuStreamDestroy_v2, (CUstream)) \
	X(cuStreamBeginCapture_v2, (CUstream, int)) \
	X(cuStreamEndCapture, (CUstream, CUgraph *)) \
	X(cuGraphInstantiateWithFlags, (CUgraphExec *, CUgraph, unsigned long long)) \
	X(cuGraphExecUpdate_v2, (CUgraphExec, CUgraph, void *)) \
	X(cuGraphLaunch, (CUgraphExec, CUstream)) \
	X(cuGraphDestroy, (CUgraph)) \
	X(cuGraphExecDestroy, (CUgraphExec))

#define RTC_FUNCS(X) \
	X(nvrtcVersion, (int *, int *)) \
	X(nvrtcGetErrorString, (nvrtcResult)) \
	X(nvrtcCreateProgram, (nvrtcProgram *, const char *, const char *, int, const char *const *, const char *const *)) \
	X(nvrtcCompileProgram, (nvrtcProgram, int, const char *const *)) \
	X(nvrtcGetCUBINSize, (nvrtcProgram, size_t *)) \
	X(nvrtcGetCUBIN, (nvrtcProgram, char *)) \
	X(nvrtcGetProgramLogSize, (nvrtcProgram, size_t *)) \
	X(nvrtcGetProgramLog, (nvrtcProgram, char *)) \
	X(nvrtcDestroyProgram, (nvrtcProgram *))

#define DECL(name, args) static CUresult(*p_##name) args;
DRV_FUNCS(DECL)
GRAPH_FUNCS(DECL)
#undef DECL
static int graphsOK;
static int (*p_nvrtcVersion)(int *, int *);
static const char *(*p_nvrtcGetErrorString)(nvrtcResult);
static nvrtcResult (*p_nvrtcCreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *, const char *const *);
static nvrtcResult (*p_nvrtcCompileProgram)(nvrtcProgram, int, const char *const *);
static nvrtcResult (*p_nvrtcGetCUBINSize)(nvrtcProgram, size_t *);
static nvrtcResult (*p_nvrtcGetCUBIN)(nvrtcProgram, char *);
static nvrtcResult (*p_nvrtcGetProgramLogSize)(nvrtcProgram, size_t *);
static nvrtcResult (*p_nvrtcGetProgramLog)(nvrtcProgram, char *);
static nvrtcResult (*p_nvrtcDestroyProgram)(nvrtcProgram *);

const char *imp_dlerror(void) { return dlerr; }

static int sym(void *lib, const char *name, void **dst) {
	*dst = dlsym(lib, name);
	if (!*dst) {
		snprintf(dlerr, sizeof dlerr, "symbol %s missing", name);
		return -1;
	}
	return 0;
}

int imp_open_driver(void) {
	if (drv) return 0;
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *e = dlerror();
		snprintf(dlerr, sizeof dlerr, "%s", e ? e : "dlopen libcuda.so.1 failed");
		return -1;
	}
#define LOAD(name, args) if (sym(lib, #name, (void **)&p_##name)) { dlclose(lib); return -1; }
	DRV_FUNCS(LOAD)
#undef LOAD
	CUresult r = p_cuInit(0);
	if (r) {
		dlclose(lib);
		return r;
	}
	graphsOK = 1;
#define LOADOPT(name, args) if (!(*(void **)&p_##name = dlsym(lib, #name))) graphsOK = 0;
	GRAPH_FUNCS(LOADOPT)
#undef LOADOPT
	drv = lib;
	return 0;
}

int imp_open_nvrtc(const char *path) {
	if (rtc) return 0;
	static const char *names[] = {
		"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2",
		"/usr/local/cuda/lib64/libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.12",
		"/usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so", 0,
	};
	void *lib = 0;
	if (path && *path) lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	for (int i = 0; !lib && names[i]; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(dlerr, sizeof dlerr, "no libnvrtc.so* found (tried %s, libnvrtc.so.13, .12, .11.2 and /usr/local/cuda/lib64)", path && *path ? path : "libnvrtc.so");
		return -1;
	}
#define LOAD(name, args) if (sym(lib, #name, (void **)&p_##name)) { dlclose(lib); return -1; }
	RTC_FUNCS(LOAD)
#undef LOAD
	rtc = lib;
	return 0;
}

const char *imp_error_string(CUresult r) {
	const char *s = 0;
	if (p_cuGetErrorString && p_cuGetErrorString(r, &s) == 0 && s) return s;
	return "unknown CUDA error";
}

const char *imp_nvrtc_error_string(nvrtcResult r) {
	return p_nvrtcGetErrorString ? p_nvrtcGetErrorString(r) : "unknown NVRTC error";
}

int imp_driver_version(int *v) { return p_cuDriverGetVersion(v); }
int imp_device_count(int *n) { return p_cuDeviceGetCount(n); }

int imp_device_info(int ordinal, char *name, int nameLen, int *ccMajor, int *ccMinor, int *sms, size_t *total) {
	CUdevice d;
	CUresult r = p_cuDeviceGet(&d, ordinal);
	if (!r) r = p_cuDeviceGetName(name, nameLen, d);
	if (!r) r = p_cuDeviceGetAttribute(ccMajor, IMP_ATTR_CC_MAJOR, d);
	if (!r) r = p_cuDeviceGetAttribute(ccMinor, IMP_ATTR_CC_MINOR, d);
	if (!r) r = p_cuDeviceGetAttribute(sms, IMP_ATTR_MULTIPROCESSORS, d);
	if (!r) r = p_cuDeviceTotalMem_v2(total, d);
	return r;
}

int imp_ctx_open(int ordinal, CUcontext *ctx) {
	CUdevice d;
	CUresult r = p_cuDeviceGet(&d, ordinal);
	if (!r) r = p_cuDevicePrimaryCtxRetain(ctx, d);
	return r;
}

int imp_ctx_close(int ordinal) {
	CUdevice d;
	CUresult r = p_cuDeviceGet(&d, ordinal);
	if (!r) r = p_cuDevicePrimaryCtxRelease_v2(d);
	return r;
}

#define CTX(ctx) do { CUresult r_ = p_cuCtxSetCurrent(ctx); if (r_) return r_; } while (0)

int imp_mem_info(CUcontext ctx, size_t *free, size_t *total) { CTX(ctx); return p_cuMemGetInfo_v2(free, total); }
int imp_module_load(CUcontext ctx, const void *image, CUmodule *mod) { CTX(ctx); return p_cuModuleLoadData(mod, image); }
int imp_module_unload(CUcontext ctx, CUmodule mod) { CTX(ctx); return p_cuModuleUnload(mod); }
int imp_module_function(CUmodule mod, const char *name, CUfunction *fn) { return p_cuModuleGetFunction(fn, mod, name); }
int imp_alloc(CUcontext ctx, CUdeviceptr *p, size_t bytes) { CTX(ctx); return p_cuMemAlloc_v2(p, bytes); }
int imp_free(CUcontext ctx, CUdeviceptr p) { CTX(ctx); return p_cuMemFree_v2(p); }
int imp_upload(CUcontext ctx, CUdeviceptr dst, const void *src, size_t bytes) { CTX(ctx); return p_cuMemcpyHtoD_v2(dst, src, bytes); }
int imp_download(CUcontext ctx, void *dst, CUdeviceptr src, size_t bytes) { CTX(ctx); return p_cuMemcpyDtoH_v2(dst, src, bytes); }
int imp_copy(CUcontext ctx, CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) { CTX(ctx); return p_cuMemcpyDtoDAsync_v2(dst, src, bytes, s); }
int imp_sync(CUcontext ctx) { CTX(ctx); return p_cuCtxSynchronize(); }

int imp_launch(CUcontext ctx, CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shmem, uint64_t *args, int nargs,
               CUstream s) {
	void *params[32];
	if (nargs > 32) return -1;
	for (int i = 0; i < nargs; i++) params[i] = &args[i];
	CTX(ctx);
	return p_cuLaunchKernel(fn, gx, gy, gz, bx, by, bz, shmem, s, params, 0);
}

int imp_graphs_available(void) { return graphsOK; }
int imp_stream_create(CUcontext ctx, CUstream *s) { CTX(ctx); return p_cuStreamCreate(s, 0); }
int imp_stream_destroy(CUcontext ctx, CUstream s) { CTX(ctx); return p_cuStreamDestroy_v2(s); }
// Capture mode 2 is CU_STREAM_CAPTURE_MODE_RELAXED.
int imp_capture_begin(CUcontext ctx, CUstream s) { CTX(ctx); return p_cuStreamBeginCapture_v2(s, 2); }
int imp_capture_end(CUcontext ctx, CUstream s, CUgraph *g) { CTX(ctx); *g = 0; return p_cuStreamEndCapture(s, g); }

int imp_graph_run(CUcontext ctx, CUgraph g, CUgraphExec *exec, CUstream s) {
	CTX(ctx);
	CUresult r = 1;
	if (*exec) {
		// CUgraphExecUpdateResultInfo: a result code and two node handles.
		unsigned char info[64];
		r = p_cuGraphExecUpdate_v2(*exec, g, info);
		if (r) {
			p_cuGraphExecDestroy(*exec);
			*exec = 0;
		}
	}
	if (r) r = p_cuGraphInstantiateWithFlags(exec, g, 0);
	p_cuGraphDestroy(g);
	if (r) {
		*exec = 0;
		return r;
	}
	return p_cuGraphLaunch(*exec, s);
}

int imp_graph_exec_destroy(CUcontext ctx, CUgraphExec e) { CTX(ctx); return p_cuGraphExecDestroy(e); }
int imp_graph_destroy(CUcontext ctx, CUgraph g) { CTX(ctx); return p_cuGraphDestroy(g); }

int imp_nvrtc_version(int *major, int *minor) { return p_nvrtcVersion(major, minor); }

int imp_nvrtc_compile(const char *src, const char *arch, char **out, size_t *outLen, char **log) {
	nvrtcProgram prog;
	*out = 0;
	*log = 0;
	nvrtcResult r = p_nvrtcCreateProgram(&prog, src, "impetus_kernels.cu", 0, 0, 0);
	if (r) return r;
	char archOpt[64];
	snprintf(archOpt, sizeof archOpt, "--gpu-architecture=%s", arch);
	const char *opts[] = {archOpt, "--std=c++17", "--device-as-default-execution-space"};
	nvrtcResult cr = p_nvrtcCompileProgram(prog, 3, opts);
	size_t n = 0;
	if (!p_nvrtcGetProgramLogSize(prog, &n) && n > 1) {
		*log = malloc(n);
		if (*log && p_nvrtcGetProgramLog(prog, *log)) {
			free(*log);
			*log = 0;
		}
	}
	if (!cr) {
		cr = p_nvrtcGetCUBINSize(prog, outLen);
		if (!cr) {
			*out = malloc(*outLen);
			cr = *out ? p_nvrtcGetCUBIN(prog, *out) : -1;
		}
	}
	p_nvrtcDestroyProgram(&prog);
	return cr;
}
