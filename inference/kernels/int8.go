package kernels

import (
	"os"
	"sync/atomic"

	"github.com/impetusllm/impetus/inference/quant"
)

// int8Acts selects the int8-activation path where it exists (see the
// package doc); on by default, off when the environment sets
// IMPETUS_INT8=0 (to compare against the float path without rebuilding).
var int8Acts atomic.Bool

func init() { ResetInt8() }

// ResetInt8 restores the default int8 settings: on, unless the environment
// sets IMPETUS_INT8=0 (everything in float) or IMPETUS_INT8_MLX=0 (MLX
// weights in float).
func ResetInt8() {
	int8Acts.Store(os.Getenv("IMPETUS_INT8") != "0")
	mlxInt8.Store(os.Getenv("IMPETUS_INT8_MLX") != "0")
}

// mlxInt8 extends the int8 path to MLX 4-bit weights (SetInt8MLX); on by
// default, off when the environment sets IMPETUS_INT8_MLX=0.
var mlxInt8 atomic.Bool

// SetInt8MLX turns the int8-activation path for MLX 4-bit weights on or off
// (on by default, as for the GGUF formats; off, MLX weights run in float and
// match transformers to float rounding) and returns the previous setting.
func SetInt8MLX(on bool) bool { return mlxInt8.Swap(on) }

// SetInt8Activations turns the int8-activation path (Packed weights of every
// GGUF and MLX format, and unpacked Q8_0, Q4_0 and MLX 4-bit ones; see the
// package doc) on or off
// and returns the previous setting. Off, every matmul runs in float and
// matches the *Ref functions to float rounding; on (the default), those
// results differ from them by the int8 rounding of the activations (about
// 1e-2 relative) on CPUs that have the path.
func SetInt8Activations(on bool) bool { return int8Acts.Swap(on) }

// Int8Activations reports whether matmuls run with int8 activations on
// this CPU at the current settings: Packed weights (Q8_0, Q4_0, Q5_0, Q4_K,
// Q6_K, MLX 4-bit) at the AVX2, AVX-512 and NEON levels, and unpacked Q8_0,
// Q4_0 and MLX 4-bit ones at AVX-512 with VNNI and at NEON.
func Int8Activations() bool { return int8Acts.Load() && (int8Available() || packedAvailable()) }

// usesInt8 reports whether the unpacked matmul j takes the int8 path
// (simd_vnni.c with AVX-512 VNNI, simd_packed_neon.c on ARM64).
func (j *matMulJob) usesInt8() bool {
	ok := j.kind == kindGGUF && (j.typ == quant.GGMLQ8_0 || j.typ == quant.GGMLQ4_0) || (j.kind == kindMLX && j.bits == 4 && mlxInt8.Load())
	return ok && j.n > 0 && j.cols > 0 && int8Acts.Load() && int8Available()
}
