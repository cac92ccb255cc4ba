//go:build cgo && linux

package cuda

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "impcuda.h"
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"
)

var (
	openMu   sync.Mutex
	driverOK bool
)

func cuErr(what string, r C.int) error {
	if r == 0 {
		return nil
	}
	if r < 0 {
		return fmt.Errorf("cuda: %s: %s", what, C.GoString(C.imp_dlerror()))
	}
	return fmt.Errorf("cuda: %s: %s (error %d)", what, C.GoString(C.imp_error_string(C.CUresult(r))), int(r))
}

// openDriver loads libcuda.so.1 once.
func openDriver() error {
	openMu.Lock()
	defer openMu.Unlock()
	if driverOK {
		return nil
	}
	if r := C.imp_open_driver(); r != 0 {
		if r < 0 {
			return fmt.Errorf("%w: %s", ErrNotAvailable, C.GoString(C.imp_dlerror()))
		}
		return fmt.Errorf("%w: %v", ErrNotAvailable, cuErr("cuInit", r))
	}
	driverOK = true
	return nil
}

// Count reports how many GPUs the driver sees.
func Count() (int, error) {
	if err := openDriver(); err != nil {
		return 0, err
	}
	var n C.int
	if err := cuErr("cuDeviceGetCount", C.imp_device_count(&n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

func deviceInfo(ordinal int) (Info, error) {
	var name [256]C.char
	var maj, minr, sms C.int
	var total C.size_t
	var drv C.int
	if err := cuErr("device info", C.imp_device_info(C.int(ordinal), &name[0], C.int(len(name)), &maj, &minr, &sms, &total)); err != nil {
		return Info{}, err
	}
	if err := cuErr("cuDriverGetVersion", C.imp_driver_version(&drv)); err != nil {
		return Info{}, err
	}
	return Info{Ordinal: ordinal, Name: C.GoString(&name[0]), TotalBytes: uint64(total), ComputeMajor: int(maj),
		ComputeMinor: int(minr), Multiprocessors: int(sms), Driver: int(drv)}, nil
}

// Device is an opened GPU: its primary context and our compiled kernels.
// Its methods may be called from any goroutine; kernels run in order on the
// default stream, and a download waits for the work before it.
type Device struct {
	info Info
	ctx  C.CUcontext
	mod  C.CUmodule
	fn   map[string]C.CUfunction

	// Compile tells how the kernels were obtained.
	Compile CompileInfo

	mu   sync.Mutex
	args *[32]C.uint64_t // launch parameters, in C memory
	err  error           // the first launch error since the last Sync

	part      Ptr // split attention's partial results (attnScratch)
	partBytes int
	q8        Ptr // quantized activations of the int8 GEMV (quantize)
	q8Bytes   int
	// q8 holds q8x ([q8n][q8cols]) quantized when the last queued op made
	// it (markQ8); any launch clears this.
	q8x         Ptr
	q8n, q8cols int

	// step serializes forward passes (LockStep): the kernels of one pass
	// share the scratch buffers above.
	step sync.Mutex

	// CUDA graphs (CaptureBegin): our stream, NULL when graphs are off; the
	// executable graph of the last capture, updated in place while the
	// work keeps its shape.
	stream    C.CUstream
	exec      C.CUgraphExec
	capturing bool
	graphsOff bool // a graph failed to instantiate or launch
}

// graphsWanted is true when the environment sets IMPETUS_CUDA_GRAPHS=1.
// Off by default until a GPU run has measured and checked them (NOTES.md).
var graphsWanted = os.Getenv("IMPETUS_CUDA_GRAPHS") == "1"

// Graphs reports whether decode steps are captured into CUDA graphs: the
// driver has the entry points and IMPETUS_CUDA_GRAPHS=1 was set at Open.
func (d *Device) Graphs() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stream != nil && !d.graphsOff
}

// CaptureBegin starts recording the work queued from now on into a CUDA
// graph instead of running it, for CaptureEnd to run in one launch: the
// GPU then runs the step's kernels back to back, without a launch's gap
// between each. It returns false when graphs are off or the recording
// could not start; the work then runs as it is queued. The caller holds
// LockStep, and queues only kernels and device copies until CaptureEnd.
func (d *Device) CaptureBegin() bool {
	if d.stream == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil || d.graphsOff || C.imp_capture_begin(d.ctx, d.stream) != 0 {
		return false
	}
	d.capturing = true
	return true
}

// CaptureEnd ends the recording and runs it. It returns false when nothing
// ran: the recording failed (an operation that cannot be recorded, such as
// a scratch buffer growing) and the caller must queue the same work again,
// uncaptured. Errors noted while recording are dropped with it.
func (d *Device) CaptureEnd() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capturing = false
	var g C.CUgraph
	r := C.imp_capture_end(d.ctx, d.stream, &g)
	failed := d.err != nil || r != 0 || g == nil
	d.err = nil
	if failed {
		if g != nil {
			C.imp_graph_destroy(d.ctx, g)
		}
		return false
	}
	if r := C.imp_graph_run(d.ctx, g, &d.exec, d.stream); r != 0 {
		// Nothing ran: the caller queues the work again, and graphs stay
		// off on this device from now on.
		d.graphsOff = true
		return false
	}
	return true
}

// LockStep holds the device for one forward pass until UnlockStep: the
// passes of two models on one GPU must not interleave, because their
// kernels share the device's scratch (split attention's partial results,
// quantized activations).
func (d *Device) LockStep() { d.step.Lock() }

// UnlockStep ends what LockStep began.
func (d *Device) UnlockStep() { d.step.Unlock() }

// Open opens GPU ordinal and loads our kernels, compiling them with NVRTC
// unless the disk cache has them for this GPU, driver and source.
func Open(ordinal int) (*Device, error) {
	n, err := Count()
	if err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("%w: no GPU cuda:%d (%d found)", ErrNotAvailable, ordinal, n)
	}
	info, err := deviceInfo(ordinal)
	if err != nil {
		return nil, err
	}
	d := &Device{info: info, fn: map[string]C.CUfunction{}}
	if err := cuErr("primary context", C.imp_ctx_open(C.int(ordinal), &d.ctx)); err != nil {
		return nil, err
	}
	image, ci, err := kernelImage(info)
	if err != nil {
		C.imp_ctx_close(C.int(ordinal))
		return nil, err
	}
	d.Compile = ci
	cimg := C.CBytes(image)
	r := C.imp_module_load(d.ctx, cimg, &d.mod)
	C.free(cimg)
	if err := cuErr("loading kernels", r); err != nil {
		if ci.Path != "" {
			os.Remove(ci.Path) // a damaged cache file must not stick
		}
		C.imp_ctx_close(C.int(ordinal))
		return nil, err
	}
	for _, name := range kernelNames() {
		cs := C.CString(name)
		var f C.CUfunction
		r := C.imp_module_function(d.mod, cs, &f)
		C.free(unsafe.Pointer(cs))
		if err := cuErr("kernel "+name, r); err != nil {
			d.Close()
			return nil, err
		}
		d.fn[name] = f
	}
	d.args = (*[32]C.uint64_t)(C.malloc(C.size_t(unsafe.Sizeof([32]C.uint64_t{}))))
	if graphsWanted && C.imp_graphs_available() != 0 {
		if C.imp_stream_create(d.ctx, &d.stream) != 0 {
			d.stream = nil // graphs off; kernels run on the default stream
		}
	}
	return d, nil
}

// Close unloads the kernels and releases the context; device memory
// allocated through d must have been freed.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mod != nil {
		C.imp_module_unload(d.ctx, d.mod)
		d.mod = nil
	}
	for _, p := range []*Ptr{&d.part, &d.q8} {
		if *p != 0 {
			C.imp_free(d.ctx, C.CUdeviceptr(*p))
			*p = 0
		}
	}
	d.partBytes, d.q8Bytes = 0, 0
	if d.args != nil {
		C.free(unsafe.Pointer(d.args))
		d.args = nil
	}
	if d.exec != nil {
		C.imp_graph_exec_destroy(d.ctx, d.exec)
		d.exec = nil
	}
	if d.stream != nil {
		C.imp_stream_destroy(d.ctx, d.stream)
		d.stream = nil
	}
	if d.ctx != nil {
		C.imp_ctx_close(C.int(d.info.Ordinal))
		d.ctx = nil
	}
	return nil
}

// Info describes the GPU.
func (d *Device) Info() Info { return d.info }

// FreeMemory is the device memory free now.
func (d *Device) FreeMemory() (uint64, error) {
	var free, total C.size_t
	if err := cuErr("cuMemGetInfo", C.imp_mem_info(d.ctx, &free, &total)); err != nil {
		return 0, err
	}
	return uint64(free), nil
}

// Alloc allocates bytes of device memory.
func (d *Device) Alloc(bytes int) (Ptr, error) {
	var p C.CUdeviceptr
	if err := cuErr(fmt.Sprintf("allocating %d bytes on %s", bytes, d.info.Name), C.imp_alloc(d.ctx, &p, C.size_t(max(bytes, 1)))); err != nil {
		return 0, err
	}
	return Ptr(p), nil
}

// Free releases memory from Alloc; Free(0) does nothing.
func (d *Device) Free(p Ptr) {
	if p != 0 {
		C.imp_free(d.ctx, C.CUdeviceptr(p))
	}
}

// Upload copies bytes from host memory at src to dst.
func (d *Device) Upload(dst Ptr, src unsafe.Pointer, bytes int) error {
	if bytes == 0 {
		return nil
	}
	return cuErr("upload", C.imp_upload(d.ctx, C.CUdeviceptr(dst), src, C.size_t(bytes)))
}

// Download waits for the queued work and copies bytes from src to host
// memory at dst. It returns the first launch error since the last Sync.
func (d *Device) Download(dst unsafe.Pointer, src Ptr, bytes int) error {
	if err := d.takeErr(); err != nil {
		return err
	}
	if bytes == 0 {
		return nil
	}
	return cuErr("download", C.imp_download(d.ctx, dst, C.CUdeviceptr(src), C.size_t(bytes)))
}

// Copy queues a device-to-device copy.
func (d *Device) Copy(dst, src Ptr, bytes int) {
	if bytes > 0 {
		if r := C.imp_copy(d.ctx, C.CUdeviceptr(dst), C.CUdeviceptr(src), C.size_t(bytes), d.stream); r != 0 {
			d.note(cuErr("copy", r))
		}
	}
}

// Sync waits for the queued work and returns the first error since the last Sync.
func (d *Device) Sync() error {
	if err := d.takeErr(); err != nil {
		return err
	}
	return cuErr("synchronize", C.imp_sync(d.ctx))
}

func (d *Device) note(err error) {
	if err == nil {
		return
	}
	d.mu.Lock()
	if d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
}

func (d *Device) takeErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.err
	d.err = nil
	return err
}

// arg packs one kernel parameter into a 64-bit slot.
type arg = uint64

func iarg(v int) arg     { return arg(uint32(int32(v))) }
func farg(v float32) arg { return arg(floatBits(v)) }
func parg(p Ptr) arg     { return arg(p) }
func larg(v int64) arg   { return arg(v) }
func barg(v bool) arg {
	if v {
		return 1
	}
	return 0
}
func grid(n, per int) uint { return uint((n + per - 1) / per) }

// launch queues kernel name on a gx×gy grid of bx threads.
func (d *Device) launch(name string, gx, gy, bx uint, args ...arg) {
	d.launch3(name, gx, gy, 1, bx, args...)
}

// launch3 queues kernel name on a gx×gy×gz grid of bx threads.
func (d *Device) launch3(name string, gx, gy, gz, bx uint, args ...arg) {
	f, ok := d.fn[name]
	if !ok {
		d.note(fmt.Errorf("cuda: no kernel %q", name))
		return
	}
	if gx == 0 || gy == 0 || gz == 0 {
		return
	}
	d.mu.Lock()
	d.q8x = 0
	for i, a := range args {
		d.args[i] = C.uint64_t(a)
	}
	r := C.imp_launch(d.ctx, f, C.uint(gx), C.uint(gy), C.uint(gz), C.uint(bx), 1, 1, 0, &d.args[0], C.int(len(args)), d.stream)
	d.mu.Unlock()
	if r != 0 {
		d.note(cuErr("launching "+name, r))
	}
}

// AllocCopy allocates device memory holding a copy of s.
func AllocCopy[T any](d *Device, s []T) (Ptr, error) {
	var zero T
	bytes := len(s) * int(unsafe.Sizeof(zero))
	p, err := d.Alloc(bytes)
	if err != nil {
		return 0, err
	}
	if len(s) > 0 {
		if err := d.Upload(p, unsafe.Pointer(&s[0]), bytes); err != nil {
			d.Free(p)
			return 0, err
		}
	}
	return p, nil
}

// UploadTo copies s to device memory at dst.
func UploadTo[T any](d *Device, dst Ptr, s []T) error {
	if len(s) == 0 {
		return nil
	}
	return d.Upload(dst, unsafe.Pointer(&s[0]), len(s)*int(unsafe.Sizeof(s[0])))
}

// DownloadTo waits for the queued work and fills dst from device memory at src.
func DownloadTo[T any](d *Device, dst []T, src Ptr) error {
	if len(dst) == 0 {
		return d.takeErr()
	}
	return d.Download(unsafe.Pointer(&dst[0]), src, len(dst)*int(unsafe.Sizeof(dst[0])))
}
