package quant

import "fmt"

// GGMLType is a ggml tensor type id as stored in GGUF tensor infos. It lives
// here, beside the dequantizers, so the GGUF reader and the kernels share one
// definition of block sizes.
type GGMLType uint32

// The ggml type ids, as GGUF tensor infos store them. Ids 4, 5 and 31–33,
// 36–38 belonged to removed types and are not defined.
const (
	GGMLF32     GGMLType = 0
	GGMLF16     GGMLType = 1
	GGMLQ4_0    GGMLType = 2
	GGMLQ4_1    GGMLType = 3
	GGMLQ5_0    GGMLType = 6
	GGMLQ5_1    GGMLType = 7
	GGMLQ8_0    GGMLType = 8
	GGMLQ8_1    GGMLType = 9
	GGMLQ2_K    GGMLType = 10
	GGMLQ3_K    GGMLType = 11
	GGMLQ4_K    GGMLType = 12
	GGMLQ5_K    GGMLType = 13
	GGMLQ6_K    GGMLType = 14
	GGMLQ8_K    GGMLType = 15
	GGMLIQ2_XXS GGMLType = 16
	GGMLIQ2_XS  GGMLType = 17
	GGMLIQ3_XXS GGMLType = 18
	GGMLIQ1_S   GGMLType = 19
	GGMLIQ4_NL  GGMLType = 20
	GGMLIQ3_S   GGMLType = 21
	GGMLIQ2_S   GGMLType = 22
	GGMLIQ4_XS  GGMLType = 23
	GGMLI8      GGMLType = 24
	GGMLI16     GGMLType = 25
	GGMLI32     GGMLType = 26
	GGMLI64     GGMLType = 27
	GGMLF64     GGMLType = 28
	GGMLIQ1_M   GGMLType = 29
	GGMLBF16    GGMLType = 30
	GGMLTQ1_0   GGMLType = 34
	GGMLTQ2_0   GGMLType = 35
	GGMLMXFP4   GGMLType = 39
	GGMLNVFP4   GGMLType = 40
	GGMLQ1_0    GGMLType = 41
	GGMLQ2_0    GGMLType = 42
)

// Block geometry of the GGUF weight types the kernels multiply by: a
// legacy block holds QK elements, a k-quant super-block QK_K, and each
// *BlockBytes is the size of one block (its layout is told at its
// dequantizer in ggml_dequant.go).
const (
	QK   = 32
	QK_K = 256

	Q4_0BlockBytes = 18
	Q4_1BlockBytes = 20
	Q5_0BlockBytes = 22
	Q5_1BlockBytes = 24
	Q8_0BlockBytes = 34
	Q2_KBlockBytes = 84
	Q3_KBlockBytes = 110
	Q4_KBlockBytes = 144
	Q5_KBlockBytes = 176
	Q6_KBlockBytes = 210
)

type ggmlTypeInfo struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

// ggmlTypes holds the block geometry of every type the reader accepts, as
// ggml defines its block structs; the oracle test (ggml_oracle_test.go)
// checks the whole table against libggml-base from node-llama-cpp 3.22.1.
var ggmlTypes = map[GGMLType]ggmlTypeInfo{
	GGMLF32:     {"F32", 1, 4},
	GGMLF16:     {"F16", 1, 2},
	GGMLQ4_0:    {"Q4_0", QK, Q4_0BlockBytes},
	GGMLQ4_1:    {"Q4_1", QK, Q4_1BlockBytes},
	GGMLQ5_0:    {"Q5_0", QK, Q5_0BlockBytes},
	GGMLQ5_1:    {"Q5_1", QK, Q5_1BlockBytes},
	GGMLQ8_0:    {"Q8_0", QK, Q8_0BlockBytes},
	GGMLQ8_1:    {"Q8_1", 32, 36},
	GGMLQ2_K:    {"Q2_K", QK_K, Q2_KBlockBytes},
	GGMLQ3_K:    {"Q3_K", QK_K, Q3_KBlockBytes},
	GGMLQ4_K:    {"Q4_K", QK_K, Q4_KBlockBytes},
	GGMLQ5_K:    {"Q5_K", QK_K, Q5_KBlockBytes},
	GGMLQ6_K:    {"Q6_K", QK_K, Q6_KBlockBytes},
	GGMLQ8_K:    {"Q8_K", QK_K, 292},
	GGMLIQ2_XXS: {"IQ2_XXS", QK_K, 66},
	GGMLIQ2_XS:  {"IQ2_XS", QK_K, 74},
	GGMLIQ3_XXS: {"IQ3_XXS", QK_K, 98},
	GGMLIQ1_S:   {"IQ1_S", QK_K, 50},
	GGMLIQ4_NL:  {"IQ4_NL", 32, 18},
	GGMLIQ3_S:   {"IQ3_S", QK_K, 110},
	GGMLIQ2_S:   {"IQ2_S", QK_K, 82},
	GGMLIQ4_XS:  {"IQ4_XS", QK_K, 136},
	GGMLI8:      {"I8", 1, 1},
	GGMLI16:     {"I16", 1, 2},
	GGMLI32:     {"I32", 1, 4},
	GGMLI64:     {"I64", 1, 8},
	GGMLF64:     {"F64", 1, 8},
	GGMLIQ1_M:   {"IQ1_M", QK_K, 56},
	GGMLBF16:    {"BF16", 1, 2},
	GGMLTQ1_0:   {"TQ1_0", QK_K, 54},
	GGMLTQ2_0:   {"TQ2_0", QK_K, 66},
	GGMLMXFP4:   {"MXFP4", 32, 17},
	GGMLNVFP4:   {"NVFP4", 64, 36},
	GGMLQ1_0:    {"Q1_0", 128, 18},
	GGMLQ2_0:    {"Q2_0", 64, 18},
}

// Known reports whether t is a type whose block geometry is defined here.
func (t GGMLType) Known() bool {
	_, ok := ggmlTypes[t]
	return ok
}

// String returns the ggml name (e.g. "Q4_K"), or "GGMLType(n)" if unknown.
func (t GGMLType) String() string {
	if info, ok := ggmlTypes[t]; ok {
		return info.name
	}
	return fmt.Sprintf("GGMLType(%d)", uint32(t))
}

// BlockSize is the number of elements per block (1 for plain types), 0 if unknown.
func (t GGMLType) BlockSize() int { return ggmlTypes[t].blockSize }

// TypeSize is the number of bytes per block, 0 if unknown.
func (t GGMLType) TypeSize() int { return ggmlTypes[t].typeSize }

// RowBytes returns the bytes needed for n elements of type t. n must be a
// whole number of blocks; the result must fit in an int64.
func (t GGMLType) RowBytes(n uint64) (uint64, error) {
	info, ok := ggmlTypes[t]
	if !ok {
		return 0, fmt.Errorf("unknown ggml type %d", uint32(t))
	}
	bs := uint64(info.blockSize)
	if n%bs != 0 {
		return 0, fmt.Errorf("%d elements is not a whole number of %s blocks of %d", n, info.name, bs)
	}
	blocks := n / bs
	ts := uint64(info.typeSize)
	if blocks > (1<<63-1)/ts {
		return 0, fmt.Errorf("%d elements of %s overflow the size", n, info.name)
	}
	return blocks * ts, nil
}
