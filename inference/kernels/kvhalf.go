package kernels

import (
	"fmt"

	"github.com/impetusllm/impetus/inference/quant"
)

// ToF16 rounds src to IEEE half precision into dst (round to nearest even,
// as quant.F32ToF16): how keys and values enter a half KV cache.
func ToF16(dst []uint16, src []float32) {
	if len(dst) < len(src) {
		panic(fmt.Sprintf("kernels: ToF16: %d slots for %d values", len(dst), len(src)))
	}
	for i, v := range src {
		dst[i] = quant.F32ToF16(v)
	}
}
