package kernels

import (
	"math/rand/v2"

	"github.com/impetusllm/impetus/inference/quant"
)

// ggufFormat describes one GGUF block type for the table-driven tests.
type ggufFormat struct {
	name              string
	elems, blockBytes int // elements and bytes per block
	random            func(r *rand.Rand, rows, cols int) []byte
	mm, ref           func(out, x []float32, n int, w []byte, rows, cols int)
}

// ggufFormats lists every GGUF block type the kernels multiply by.
var ggufFormats = []ggufFormat{
	{"Q8_0", quant.QK, quant.Q8_0BlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randGGUF(r, rows, cols, quant.Q8_0BlockBytes) },
		ggufMM(quant.GGMLQ8_0), ggufRef(quant.GGMLQ8_0)},
	{"Q4_0", quant.QK, quant.Q4_0BlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randGGUF(r, rows, cols, quant.Q4_0BlockBytes) },
		ggufMM(quant.GGMLQ4_0), ggufRef(quant.GGMLQ4_0)},
	{"Q4_K", quant.QK_K, quant.Q4_KBlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randK(r, rows, cols, quant.Q4_KBlockBytes, 0, 2) },
		ggufMM(quant.GGMLQ4_K), ggufRef(quant.GGMLQ4_K)},
	{"Q6_K", quant.QK_K, quant.Q6_KBlockBytes,
		func(r *rand.Rand, rows, cols int) []byte { return randK(r, rows, cols, quant.Q6_KBlockBytes, 208) },
		ggufMM(quant.GGMLQ6_K), ggufRef(quant.GGMLQ6_K)},
	{"Q4_1", quant.QK, quant.Q4_1BlockBytes,
		func(r *rand.Rand, rows, cols int) []byte {
			return randBlocks(r, rows, cols, 32, quant.Q4_1BlockBytes, 0, 2)
		},
		ggufMM(quant.GGMLQ4_1), ggufRef(quant.GGMLQ4_1)},
	{"Q5_0", quant.QK, quant.Q5_0BlockBytes,
		func(r *rand.Rand, rows, cols int) []byte {
			return randBlocks(r, rows, cols, 32, quant.Q5_0BlockBytes, 0)
		},
		ggufMM(quant.GGMLQ5_0), ggufRef(quant.GGMLQ5_0)},
	{"Q5_1", quant.QK, quant.Q5_1BlockBytes,
		func(r *rand.Rand, rows, cols int) []byte {
			return randBlocks(r, rows, cols, 32, quant.Q5_1BlockBytes, 0, 2)
		},
		ggufMM(quant.GGMLQ5_1), ggufRef(quant.GGMLQ5_1)},
	{"Q5_K", quant.QK_K, quant.Q5_KBlockBytes,
		func(r *rand.Rand, rows, cols int) []byte {
			return randBlocks(r, rows, cols, 256, quant.Q5_KBlockBytes, 0, 2)
		},
		ggufMM(quant.GGMLQ5_K), ggufRef(quant.GGMLQ5_K)},
	{"Q2_K", quant.QK_K, quant.Q2_KBlockBytes,
		func(r *rand.Rand, rows, cols int) []byte {
			return randBlocks(r, rows, cols, 256, quant.Q2_KBlockBytes, 80, 82)
		},
		ggufMM(quant.GGMLQ2_K), ggufRef(quant.GGMLQ2_K)},
	{"Q3_K", quant.QK_K, quant.Q3_KBlockBytes,
		func(r *rand.Rand, rows, cols int) []byte {
			return randBlocks(r, rows, cols, 256, quant.Q3_KBlockBytes, 108)
		},
		ggufMM(quant.GGMLQ3_K), ggufRef(quant.GGMLQ3_K)},
}
