package model

import "github.com/impetusllm/impetus/inference/quant"

// EncodeGGML stores values as type typ, or as F32 when rows of rowLen
// elements are not whole blocks of typ (as converters fall back), and
// returns the type used.
func EncodeGGML(typ quant.GGMLType, v []float32, rowLen int) (quant.GGMLType, []byte, error) {
	if bs := typ.BlockSize(); bs == 0 || rowLen%bs != 0 {
		typ = quant.GGMLF32
	}
	n, err := typ.RowBytes(uint64(len(v)))
	if err != nil {
		return typ, nil, err
	}
	b := make([]byte, n)
	if err := quant.QuantizeGGML(typ, v, b); err != nil {
		return typ, nil, err
	}
	return typ, b, nil
}
