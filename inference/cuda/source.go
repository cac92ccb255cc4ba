package cuda

import (
	_ "embed"
	"math"
)

// kernelSource is compiled by NVRTC at load time.
//
//go:embed kernels.cu
var kernelSource string

// The matrix kernels' names by format, so a launch builds no string.
var gemvNames, gemvxNames, gemmNames, embedNames, gemvxI8Names [numFormats]string

// i8Formats have int8-activation GEMV kernels (gemvx_i8_*).
var i8Formats = []Format{Q8_0, Q4_0}

func init() {
	for f, name := range formatNames {
		gemvNames[f], gemvxNames[f], gemmNames[f], embedNames[f] = "gemv_"+name, "gemvx_"+name, "gemm_"+name, "embed_"+name
	}
	for _, f := range i8Formats {
		gemvxI8Names[f] = "gemvx_i8_" + formatNames[f]
	}
}

// kernelNames lists the kernels Open looks up.
func kernelNames() []string {
	names := []string{"rmsnorm", "rope", "silu_mul", "gelu_mul", "add", "softcap", "copy_cols", "attention",
		"rope_qk", "attention_part", "attention_merge", "quant_q8"}
	for _, f := range i8Formats {
		names = append(names, gemvxI8Names[f])
	}
	for _, f := range formatNames {
		names = append(names, "gemv_"+f, "gemvx_"+f, "gemm_"+f, "embed_"+f)
	}
	return names
}

func floatBits(f float32) uint32 { return math.Float32bits(f) }
