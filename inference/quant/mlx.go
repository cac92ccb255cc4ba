package quant

import (
	"fmt"
	"math"
)

// MLXCheck validates MLX affine parameters for a [rows][cols] weight: bits
// 2, 3, 4, 5, 6 or 8, group size 32, 64 or 128 dividing cols.
func MLXCheck(cols, bits, groupSize int) error {
	switch bits {
	case 2, 3, 4, 5, 6, 8:
	default:
		return fmt.Errorf("mlx: unsupported bits %d", bits)
	}
	switch groupSize {
	case 32, 64, 128:
	default:
		return fmt.Errorf("mlx: unsupported group size %d", groupSize)
	}
	if cols <= 0 || cols%groupSize != 0 {
		return fmt.Errorf("mlx: %d columns is not a positive multiple of group size %d", cols, groupSize)
	}
	return nil
}

// MLXWordsPerRow is the number of packed uint32 words in one row of cols
// elements; rows are whole words because cols is a multiple of 32.
func MLXWordsPerRow(cols, bits int) int { return cols * bits / 32 }

// MLXCode returns the bits-wide code of element j of a packed row. The row is
// one little-endian, LSB-first bit stream, so element j occupies stream bits
// [j*bits, (j+1)*bits), which may straddle two words for 3, 5 and 6 bits.
func MLXCode(row []uint32, j, bits int) uint32 {
	pos := j * bits
	w, off := pos/32, pos%32
	v := row[w] >> off
	if off+bits > 32 {
		v |= row[w+1] << (32 - off)
	}
	return v & (1<<bits - 1)
}

// DequantizeMLX expands rows of an MLX affine-quantized weight into dst
// ([rows][cols]): w[j] = scales[g]*q[j] + biases[g] with g = j/groupSize.
// wq holds rows*MLXWordsPerRow words, scales and biases rows*cols/groupSize.
func DequantizeMLX(dst []float32, wq []uint32, scales, biases []float32, rows, cols, bits, groupSize int) {
	words, groups := MLXWordsPerRow(cols, bits), cols/groupSize
	for r := 0; r < rows; r++ {
		row := wq[r*words : (r+1)*words]
		out := dst[r*cols : (r+1)*cols]
		for j := range out {
			g := r*groups + j/groupSize
			out[j] = scales[g]*float32(MLXCode(row, j, bits)) + biases[g]
		}
	}
}

// QuantizeMLX quantizes a [rows][cols] float32 weight the way mlx.core.quantize
// does on the CPU: per group, the larger-magnitude extreme is
// the bias and is represented exactly, so scales may be negative. It returns
// the packed codes and float32 scales and biases (files store the latter in
// the weight's dtype; round them with F32ToF16/F32ToBF16 to mimic that).
func QuantizeMLX(w []float32, rows, cols, bits, groupSize int) (wq []uint32, scales, biases []float32, err error) {
	if err := MLXCheck(cols, bits, groupSize); err != nil {
		return nil, nil, nil, err
	}
	if len(w) != rows*cols {
		return nil, nil, nil, fmt.Errorf("mlx: weight has %d elements, want %d×%d", len(w), rows, cols)
	}
	words, groups := MLXWordsPerRow(cols, bits), cols/groupSize
	wq = make([]uint32, rows*words)
	scales = make([]float32, rows*groups)
	biases = make([]float32, rows*groups)
	levels := float32(int(1)<<bits - 1)
	for r := 0; r < rows; r++ {
		row := wq[r*words : (r+1)*words]
		for g := 0; g < groups; g++ {
			vals := w[r*cols+g*groupSize : r*cols+(g+1)*groupSize]
			lo, hi := vals[0], vals[0]
			for _, v := range vals {
				lo, hi = min(lo, v), max(hi, v)
			}
			s := max((hi-lo)/levels, 1e-7)
			edge := lo
			if abs32(lo) <= abs32(hi) {
				edge, s = hi, -s
			}
			var bias float32
			if q0 := roundEven(edge / s); q0 != 0 {
				s, bias = edge/q0, edge
			}
			scales[r*groups+g], biases[r*groups+g] = s, bias
			for i, v := range vals {
				q := min(max(roundEven((v-bias)/s), 0), levels)
				pos := (g*groupSize + i) * bits
				word, off := pos/32, pos%32
				code := uint32(q)
				row[word] |= code << off
				if off+bits > 32 {
					row[word+1] |= code >> (32 - off)
				}
			}
		}
	}
	return wq, scales, biases, nil
}

func abs32(x float32) float32 { return float32(math.Abs(float64(x))) }

func roundEven(x float32) float32 { return float32(math.RoundToEven(float64(x))) }
