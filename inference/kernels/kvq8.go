package kernels

import (
	"fmt"
	"math"

	"github.com/impetusllm/impetus/inference/quant"
)

// Q8KVBlock is the values per block of a q8_0 KV cache: the blocks of
// GGUF's Q8_0, an IEEE half scale then 32 int8 codes (34 bytes). The half
// scale keeps the row at 34 bytes per 32 values, 53% of a half cache; the
// codes, not the scale, bound the error (half a step of amax/127).
const Q8KVBlock = 32

const q8KVBlockBytes = 2 + Q8KVBlock

// Q8KVRowBytes is the bytes that n values (a multiple of Q8KVBlock) take
// in a q8_0 KV cache.
func Q8KVRowBytes(n int) int { return n / Q8KVBlock * q8KVBlockBytes }

// QuantizeQ8KV writes src (a multiple of Q8KVBlock values) into dst as
// q8_0 blocks: how keys and values enter a q8_0 KV cache. Each block's
// scale is amax/127 rounded to half; codes are src/scale rounded to the
// nearest (ties away from zero) with the half scale, clamped to ±127, so
// the stored scale is the one the codes were made with. A block of zeros
// gets scale 0.
func QuantizeQ8KV(dst []byte, src []float32) {
	if len(src)%Q8KVBlock != 0 || len(dst) < Q8KVRowBytes(len(src)) {
		panic(fmt.Sprintf("kernels: QuantizeQ8KV: %d values into %d bytes", len(src), len(dst)))
	}
	for b := 0; b < len(src)/Q8KVBlock; b++ {
		x := src[b*Q8KVBlock : (b+1)*Q8KVBlock]
		o := dst[b*q8KVBlockBytes : (b+1)*q8KVBlockBytes]
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		h := quant.F32ToF16(amax / 127)
		d := quant.F16ToF32(h)
		o[0], o[1] = byte(h), byte(h>>8)
		inv := float32(0)
		if d > 0 {
			inv = 1 / d
		}
		for i, v := range x {
			c := math.Round(float64(v * inv))
			o[2+i] = byte(int8(min(max(c, -127), 127)))
		}
	}
}

// DequantQ8KV writes the values of q8_0 blocks src into dst, each code
// times its block's scale (as the attention kernels read them).
func DequantQ8KV(dst []float32, src []byte) {
	if len(src)%q8KVBlockBytes != 0 || len(dst) < len(src)/q8KVBlockBytes*Q8KVBlock {
		panic(fmt.Sprintf("kernels: DequantQ8KV: %d bytes into %d values", len(src), len(dst)))
	}
	for b := 0; b < len(src)/q8KVBlockBytes; b++ {
		o := src[b*q8KVBlockBytes : (b+1)*q8KVBlockBytes]
		d := quant.F16ToF32(uint16(o[0]) | uint16(o[1])<<8)
		for i := range Q8KVBlock {
			dst[b*Q8KVBlock+i] = float32(int8(o[2+i])) * d
		}
	}
}
