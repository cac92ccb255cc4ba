// Package cuda runs the inference kernels on an NVIDIA GPU without needing
// anything from CUDA at build time: the driver (libcuda.so.1) and the
// run-time compiler NVRTC (libnvrtc.so*) are opened with dlopen, through
// prototypes declared in our own header, and the kernels are CUDA C source
// embedded in the binary (kernels.cu). Open compiles them for the GPU found
// and keeps the machine code in the user cache folder, keyed by the source,
// the GPU architecture, the driver and the NVRTC version, so a restart loads
// it without compiling.
//
// Without cgo, or off Linux, Open reports ErrNotAvailable and the engine
// stays on the CPU.
//
// Device memory is addressed by Ptr. The kernels take float32 activations
// and read weights in their stored formats (Format), so quantized weights
// are uploaded as the file holds them; each kernel mirrors one CPU kernel of
// package kernels, which the tests use as the reference.
//
// Decode steps (few tokens) run Q4_0 and Q8_0 products on int8
// activations, quantized per 32 values as the CPU's int8 path does and
// dotted with __dp4a (IMPETUS_INT8=0 turns it off, as on the CPU). Two
// further shortcuts are written and tested here but off until a GPU run has
// checked and measured them (NOTES.md): IMPETUS_CUDA_FUSE=1 lets norms and
// the attention quantize their output for the int8 product in their own
// launch, and IMPETUS_CUDA_GRAPHS=1 records each decode step into a CUDA
// graph on the device's own stream and runs it in one launch.
package cuda

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotAvailable is wrapped by Open's error when this build or host cannot
// run CUDA: no cgo, no driver library, no NVRTC, or no GPU.
var ErrNotAvailable = errors.New("cuda: not available")

// Info describes one GPU.
type Info struct {
	Ordinal         int
	Name            string
	TotalBytes      uint64
	ComputeMajor    int
	ComputeMinor    int
	Multiprocessors int
	Driver          int // the driver's CUDA version, e.g. 13000 for 13.0
}

// Arch is the GPU's architecture name as NVRTC takes it, e.g. "sm_90".
func (i Info) Arch() string { return fmt.Sprintf("sm_%d%d", i.ComputeMajor, i.ComputeMinor) }

// String is a one-line description for logs.
func (i Info) String() string {
	return fmt.Sprintf("cuda:%d %s (%s, %.1f GiB, driver %d.%d)", i.Ordinal, i.Name, i.Arch(),
		float64(i.TotalBytes)/(1<<30), i.Driver/1000, i.Driver%1000/10)
}

// Ptr is a device address; 0 is none.
type Ptr uint64

// Add offsets p by bytes.
func (p Ptr) Add(bytes int) Ptr { return p + Ptr(bytes) }

// Format is a weight storage format the matrix kernels read in place.
type Format int

// The weight formats. The GGUF block formats are the file's blocks as
// stored; MLX is the packed codes with float32 scales and biases.
const (
	F32 Format = iota
	F16
	BF16
	Q8_0
	Q4_0
	Q4_K
	Q6_K
	MLX
	Q5_0
	numFormats
)

var formatNames = [...]string{"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k", "mlx", "q5_0"}

func (f Format) String() string {
	if f >= 0 && f < numFormats {
		return formatNames[f]
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// Weight is a [Rows][Cols] matrix in device memory. Scales and Biases are
// used by MLX (float32, [Rows][Cols/Group]); Bits is MLX's code width.
type Weight struct {
	Format         Format
	Data           Ptr
	Scales, Biases Ptr
	Rows, Cols     int
	Bits, Group    int
}

// Bytes is the device memory of a weight's data in format f.
func (f Format) Bytes(rows, cols, bits int) int {
	n := rows * cols
	switch f {
	case F32:
		return 4 * n
	case F16, BF16:
		return 2 * n
	case Q8_0:
		return n / 32 * 34
	case Q4_0:
		return n / 32 * 18
	case Q5_0:
		return n / 32 * 22
	case Q4_K:
		return n / 256 * 144
	case Q6_K:
		return n / 256 * 210
	case MLX:
		return n * bits / 8
	}
	return 0
}

// RowBytes is the device memory of one row of w's data; rows are stored
// one after another in every format.
func (w *Weight) RowBytes() int { return w.Format.Bytes(1, w.Cols, w.Bits) }

// Slice is rows [r0, r0+n) of w, in place: a part of a fused matrix such
// as Q/K/V or gate/up stored as one.
func (w *Weight) Slice(r0, n int) Weight {
	s := *w
	s.Rows = n
	s.Data = w.Data.Add(r0 * w.RowBytes())
	if w.Format == MLX {
		g := w.Cols / w.Group * 4
		s.Scales, s.Biases = w.Scales.Add(r0*g), w.Biases.Add(r0*g)
	}
	return s
}

// CompileInfo tells where a Device's kernels came from.
type CompileInfo struct {
	Cached   bool          // loaded from the disk cache
	Path     string        // the cache file ("" when it could not be written)
	Duration time.Duration // compile (or cache read) time
	NVRTC    string        // NVRTC version, "" when the cache served
}
