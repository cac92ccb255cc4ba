package kernels

import "math/rand/v2"

// ggufFormat describes one GGUF block type for the table-driven tests.
type ggufFormat struct {
	name              string
	elems, blockBytes int // elements and bytes per block
	random            func(r *rand.Rand, rows, cols int) []byte
	mm, ref           func(out, x []float32, n int, w []byte, rows, cols int)
	deq               func(dst []float32, src []byte, cols int)
}

// ggufFormats lists every GGUF block type the kernels multiply by.
var ggufFormats = []ggufFormat{
	{"Q8_0", GGUFBlockElems, Q8_0BlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randGGUF(r, rows, cols, Q8_0BlockBytes) },
		MatMulQ8_0, MatMulQ8_0Ref, DequantQ8_0Row},
	{"Q4_0", GGUFBlockElems, Q4_0BlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randGGUF(r, rows, cols, Q4_0BlockBytes) },
		MatMulQ4_0, MatMulQ4_0Ref, DequantQ4_0Row},
	{"Q4_K", KBlockElems, Q4_KBlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randK(r, rows, cols, Q4_KBlockBytes, 0, 2) },
		MatMulQ4_K, MatMulQ4_KRef, DequantQ4_KRow},
	{"Q6_K", KBlockElems, Q6_KBlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randK(r, rows, cols, Q6_KBlockBytes, 208) },
		MatMulQ6_K, MatMulQ6_KRef, DequantQ6_KRow},
	{"Q4_1", GGUFBlockElems, Q4_1BlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randBlocks(r, rows, cols, 32, Q4_1BlockBytes, 0, 2) },
		MatMulQ4_1, MatMulQ4_1Ref, DequantQ4_1Row},
	{"Q5_0", GGUFBlockElems, Q5_0BlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randBlocks(r, rows, cols, 32, Q5_0BlockBytes, 0) },
		MatMulQ5_0, MatMulQ5_0Ref, DequantQ5_0Row},
	{"Q5_1", GGUFBlockElems, Q5_1BlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randBlocks(r, rows, cols, 32, Q5_1BlockBytes, 0, 2) },
		MatMulQ5_1, MatMulQ5_1Ref, DequantQ5_1Row},
	{"Q5_K", KBlockElems, Q5_KBlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randBlocks(r, rows, cols, 256, Q5_KBlockBytes, 0, 2) },
		MatMulQ5_K, MatMulQ5_KRef, DequantQ5_KRow},
	{"Q2_K", KBlockElems, Q2_KBlockBytes,
		func(r *rand.Rand, rows, cols int) []byte {
			return randBlocks(r, rows, cols, 256, Q2_KBlockBytes, 80, 82)
		},
		MatMulQ2_K, MatMulQ2_KRef, DequantQ2_KRow},
	{"Q3_K", KBlockElems, Q3_KBlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randBlocks(r, rows, cols, 256, Q3_KBlockBytes, 108) },
		MatMulQ3_K, MatMulQ3_KRef, DequantQ3_KRow},
}
