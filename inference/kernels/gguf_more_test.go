package kernels

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// randBlocks makes rows of random blocks with small f16 values of either
// sign at the given byte offsets of each block (its scales and mins).
func randBlocks(r *rand.Rand, rows, cols, elems, blockBytes int, f16Offsets ...int) []byte {
	w := make([]byte, rows*cols/elems*blockBytes)
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	for b := 0; b < len(w); b += blockBytes {
		for _, off := range f16Offsets {
			binary.LittleEndian.PutUint16(w[b+off:], quant.F32ToF16((r.Float32()*2-1)*0.02))
		}
	}
	return w
}

// ggmlTypeOf maps the test table's names to the quant package's types.
var ggmlTypeOf = map[string]quant.GGMLType{
	"Q8_0": quant.GGMLQ8_0, "Q4_0": quant.GGMLQ4_0, "Q4_1": quant.GGMLQ4_1, "Q5_0": quant.GGMLQ5_0,
	"Q5_1": quant.GGMLQ5_1, "Q2_K": quant.GGMLQ2_K, "Q3_K": quant.GGMLQ3_K, "Q4_K": quant.GGMLQ4_K,
	"Q5_K": quant.GGMLQ5_K, "Q6_K": quant.GGMLQ6_K,
}

// TestMatMulGGUFFormats checks each block type's matmul against its
// reference on random blocks (run at every dispatch level by TestLevels).
func TestMatMulGGUFFormats(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	for _, f := range ggufFormats {
		for _, shape := range [][2]int{{1, 256}, {7, 512}, {33, 256}, {17, 1024}, {5, 1280}} {
			rows, cols := shape[0], shape[1]
			w := f.random(r, rows, cols)
			for _, n := range []int{1, 2, 3, 4, 5, 7} {
				x := randSlice(r, n*cols, 1)
				want, got := make([]float32, n*rows), make([]float32, n*rows)
				f.ref(want, x, n, w, rows, cols)
				f.mm(got, x, n, w, rows, cols)
				closeTo(t, fmt.Sprintf("%s n%d %dx%d", f.name, n, rows, cols), got, want, 1e-5)
			}
		}
	}
}

// TestDequantMoreKnown decodes hand-made blocks.
func TestDequantMoreKnown(t *testing.T) {
	half := func(v float32) []byte { return binary.LittleEndian.AppendUint16(nil, quant.F32ToF16(v)) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	nib := make([]byte, 16) // element i: low nibble i%16 for i < 16, high nibble 15-i%16
	for i := range nib {
		nib[i] = byte(i) | byte(15-i)<<4
	}
	want41 := make([]float32, 32)
	want50 := make([]float32, 32)
	want51 := make([]float32, 32)
	for i := 0; i < 32; i++ {
		q := i
		if i >= 16 {
			q = 15 - (i - 16)
		}
		want41[i] = 0.5*float32(q) - 1
		hb := 0
		if i%3 == 0 { // qh bits set on every third element
			hb = 16
		}
		want50[i] = 0.25 * float32(q+hb-16)
		want51[i] = 0.25*float32(q+hb) + 2
	}
	var qh uint32
	for i := 0; i < 32; i += 3 {
		qh |= 1 << i
	}
	qhb := binary.LittleEndian.AppendUint32(nil, qh)
	for _, tc := range []struct {
		name string
		blk  []byte
		deq  func([]float32, []byte, int)
		want []float32
	}{
		{"Q4_1", cat(half(0.5), half(-1), nib), ggufDeq(quant.GGMLQ4_1), want41},
		{"Q5_0", cat(half(0.25), qhb, nib), ggufDeq(quant.GGMLQ5_0), want50},
		{"Q5_1", cat(half(0.25), half(2), qhb, nib), ggufDeq(quant.GGMLQ5_1), want51},
	} {
		got := make([]float32, 32)
		tc.deq(got, tc.blk, 32)
		closeTo(t, tc.name, got, tc.want, 0)
	}

	// Q2_K: every code 2 (0b10 in every pair), sub-block i has scale i%16
	// and min 1; d = 1, dmin = 0.5: w = 2*(i%16) - 0.5 in sub-block i.
	q2 := make([]byte, quant.Q2_KBlockBytes)
	for i := 0; i < 16; i++ {
		q2[i] = byte(i) | 1<<4
	}
	for i := 16; i < 80; i++ {
		q2[i] = 0b10101010
	}
	copy(q2[80:], half(1))
	copy(q2[82:], half(0.5))
	got := make([]float32, 256)
	ggufDeq(quant.GGMLQ2_K)(got, q2, 256)
	for e := range got {
		h, k, l := e/128, e%128/32, e%32
		sub := 8*h + 2*k + l/16
		if want := 2*float32(sub) - 0.5; got[e] != want {
			t.Fatalf("Q2_K element %d: got %g want %g", e, got[e], want)
		}
	}

	// Q3_K: all scale bits zero (scale -32), codes 1 with the high bit set
	// (q = 1) except element 0 (high bit clear: q = 1-4); d = 0.125.
	q3 := make([]byte, quant.Q3_KBlockBytes)
	for i := 0; i < 32; i++ {
		q3[i] = 0xff
	}
	q3[0] = 0xf0 // elements 0, 32, 64, 96 (h = 0, k = 0..3) lose the high bit
	for i := 32; i < 96; i++ {
		q3[i] = 0b01010101
	}
	copy(q3[108:], half(0.125))
	ggufDeq(quant.GGMLQ3_K)(got, q3, 256)
	for e := range got {
		q := float32(1)
		if e < 128 && e%32 == 0 {
			q = -3
		}
		if want := 0.125 * -32 * q; got[e] != want {
			t.Fatalf("Q3_K element %d: got %g want %g", e, got[e], want)
		}
	}
}
