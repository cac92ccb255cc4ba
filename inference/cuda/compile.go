//go:build cgo && linux

package cuda

/*
#include <stdlib.h>
#include "impcuda.h"
*/
import "C"

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"
)

// nvrtcVersion opens NVRTC ($IMPETUS_NVRTC, else the usual names) and
// returns its version.
func nvrtcVersion() (string, error) {
	p := C.CString(os.Getenv("IMPETUS_NVRTC"))
	defer C.free(unsafe.Pointer(p))
	openMu.Lock()
	r := C.imp_open_nvrtc(p)
	openMu.Unlock()
	if r != 0 {
		return "", fmt.Errorf("%w: %s; set IMPETUS_NVRTC to its path", ErrNotAvailable, C.GoString(C.imp_dlerror()))
	}
	var maj, minr C.int
	if r := C.imp_nvrtc_version(&maj, &minr); r != 0 {
		return "", fmt.Errorf("cuda: nvrtcVersion: %s", C.GoString(C.imp_nvrtc_error_string(C.nvrtcResult(r))))
	}
	return fmt.Sprintf("%d.%d", maj, minr), nil
}

// cacheFile is where the machine code for this source, GPU and driver lives.
// NVRTC's version is not part of the key, so a cached image serves without
// loading NVRTC at all.
func cacheFile(info Info) (string, error) {
	dir := os.Getenv("IMPETUS_CUDA_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(base, "impetus", "cuda")
	}
	h := sha256.New()
	h.Write([]byte(kernelSource))
	fmt.Fprintf(h, "\x00%s\x00%d", info.Arch(), info.Driver)
	return filepath.Join(dir, hex.EncodeToString(h.Sum(nil))[:32]+"-"+info.Arch()+".cubin"), nil
}

// kernelImage returns the CUBIN of kernels.cu for info's GPU, from the disk
// cache when it is there, else compiled by NVRTC and stored.
func kernelImage(info Info) ([]byte, CompileInfo, error) {
	start := time.Now()
	path, perr := cacheFile(info)
	if perr == nil {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b, CompileInfo{Cached: true, Path: path, Duration: time.Since(start)}, nil
		}
	}
	ver, err := nvrtcVersion()
	if err != nil {
		return nil, CompileInfo{}, err
	}
	src := C.CString(kernelSource)
	defer C.free(unsafe.Pointer(src))
	arch := C.CString(info.Arch())
	defer C.free(unsafe.Pointer(arch))
	var out, log *C.char
	var n C.size_t
	r := C.imp_nvrtc_compile(src, arch, &out, &n, &log)
	msg := ""
	if log != nil {
		msg = C.GoString(log)
		C.free(unsafe.Pointer(log))
	}
	if r != 0 {
		return nil, CompileInfo{}, fmt.Errorf("cuda: compiling kernels for %s with NVRTC %s: %s\n%s", info.Arch(), ver, C.GoString(C.imp_nvrtc_error_string(C.nvrtcResult(r))), msg)
	}
	image := C.GoBytes(unsafe.Pointer(out), C.int(n))
	C.free(unsafe.Pointer(out))
	ci := CompileInfo{NVRTC: ver, Duration: time.Since(start)}
	if perr == nil && writeAtomic(path, image) == nil {
		ci.Path = path
	}
	return image, ci, nil
}

// writeAtomic writes through a temporary file and a rename, so a reader
// never sees half a file.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
