// Our own declarations of the few CUDA driver and NVRTC entry points we use,
// so that building needs nothing from NVIDIA: both libraries are opened with
// dlopen at run time.
#ifndef IMPETUS_CUDA_H
#define IMPETUS_CUDA_H

#include <stddef.h>
#include <stdint.h>

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;
typedef unsigned long long CUdeviceptr;
typedef struct _nvrtcProgram *nvrtcProgram;
typedef int nvrtcResult;

enum {
	IMP_ATTR_MULTIPROCESSORS = 16,
	IMP_ATTR_CC_MAJOR = 75,
	IMP_ATTR_CC_MINOR = 76,
};

// imp_open_driver loads libcuda.so.1 and calls cuInit; 0 on success, else
// a CUresult or -1 when the library or a symbol is missing (imp_dlerror).
int imp_open_driver(void);
// imp_open_nvrtc tries the given path (a file name or NULL) then the usual names.
int imp_open_nvrtc(const char *path);
const char *imp_dlerror(void);
const char *imp_error_string(CUresult r);
const char *imp_nvrtc_error_string(nvrtcResult r);

int imp_driver_version(int *v);
int imp_device_count(int *n);
int imp_device_info(int ordinal, char *name, int nameLen, int *ccMajor, int *ccMinor, int *sms, size_t *total);
int imp_ctx_open(int ordinal, CUcontext *ctx);
int imp_ctx_close(int ordinal);
int imp_mem_info(CUcontext ctx, size_t *free, size_t *total);
int imp_module_load(CUcontext ctx, const void *image, CUmodule *mod);
int imp_module_unload(CUcontext ctx, CUmodule mod);
int imp_module_function(CUmodule mod, const char *name, CUfunction *fn);
int imp_alloc(CUcontext ctx, CUdeviceptr *p, size_t bytes);
int imp_free(CUcontext ctx, CUdeviceptr p);
int imp_upload(CUcontext ctx, CUdeviceptr dst, const void *src, size_t bytes);
int imp_download(CUcontext ctx, void *dst, CUdeviceptr src, size_t bytes);
int imp_copy(CUcontext ctx, CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s);
int imp_sync(CUcontext ctx);
// imp_launch launches fn with nargs parameters, each held in the low bytes
// of one 64-bit slot of args (little-endian), on stream s (NULL: the default stream).
int imp_launch(CUcontext ctx, CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shmem, uint64_t *args, int nargs,
               CUstream s);

// CUDA graphs, optional: imp_graphs_available is 0 when the driver lacks
// an entry point. imp_stream_create makes a stream that synchronizes with
// the default one (so the synchronous copies stay ordered with it).
int imp_graphs_available(void);
int imp_stream_create(CUcontext ctx, CUstream *s);
int imp_stream_destroy(CUcontext ctx, CUstream s);
// imp_capture_begin records the work queued on s from now on (relaxed mode)
// instead of running it; imp_capture_end returns the recording.
int imp_capture_begin(CUcontext ctx, CUstream s);
int imp_capture_end(CUcontext ctx, CUstream s, CUgraph *g);
// imp_graph_run makes *exec run g: it updates *exec in place when g has
// its shape, else (or when *exec is NULL) instantiates g anew; then it
// launches *exec on s. g is destroyed either way.
int imp_graph_run(CUcontext ctx, CUgraph g, CUgraphExec *exec, CUstream s);
int imp_graph_exec_destroy(CUcontext ctx, CUgraphExec e);
int imp_graph_destroy(CUcontext ctx, CUgraph g);

int imp_nvrtc_version(int *major, int *minor);
// imp_nvrtc_compile compiles src for arch (e.g. "sm_90") into a CUBIN, which
// it mallocs into *out; *log gets the compiler's log (malloc'd, may be NULL).
int imp_nvrtc_compile(const char *src, const char *arch, char **out, size_t *outLen, char **log);

#endif
