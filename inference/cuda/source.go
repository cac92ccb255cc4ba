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
var gemvNames, gemvxNames, gemmNames, embedNames [numFormats]string

func init() {
	for f, name := range formatNames {
		gemvNames[f], gemvxNames[f], gemmNames[f], embedNames[f] = "gemv_"+name, "gemvx_"+name, "gemm_"+name, "embed_"+name
	}
}

// kernelNames lists the kernels Open looks up.
func kernelNames() []string {
	names := []string{"rmsnorm", "rope", "silu_mul", "gelu_mul", "add", "softcap", "copy_cols", "attention",
		"rope_qk", "attention_part", "attention_merge"}
	for _, f := range formatNames {
		names = append(names, "gemv_"+f, "gemvx_"+f, "gemm_"+f, "embed_"+f)
	}
	return names
}

func floatBits(f float32) uint32 { return math.Float32bits(f) }
