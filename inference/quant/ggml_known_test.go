package quant_test

import (
	"encoding/binary"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
)

// Hand-made blocks of the GGUF weight types with the values they must
// decode to (written for the kernels' row decoders, which quant's replaced).

// deqRow decodes the whole blocks of src into dst.
func deqRow(t *testing.T, typ quant.GGMLType, dst []float32, src []byte) {
	t.Helper()
	if err := quant.DequantizeGGML(typ, src, dst[:len(src)/typ.TypeSize()*typ.BlockSize()]); err != nil {
		t.Fatal(err)
	}
}

func TestDequantGGUFKnown(t *testing.T) {
	q8 := make([]byte, quant.Q8_0BlockBytes)
	binary.LittleEndian.PutUint16(q8, 0x3800) // d = 0.5
	q8[2], q8[3], q8[33] = 1, 0xfe, 0x80      // 1, -2, ..., -128
	dst := make([]float32, 32)
	deqRow(t, quant.GGMLQ8_0, dst, q8)
	if dst[0] != 0.5 || dst[1] != -1 || dst[2] != 0 || dst[31] != -64 {
		t.Errorf("Q8_0: got %v", dst)
	}

	q4 := make([]byte, quant.Q4_0BlockBytes)
	binary.LittleEndian.PutUint16(q4, 0x4000) // d = 2
	q4[2] = 0x9f                              // element 0 = 15, element 16 = 9
	q4[17] = 0x08                             // element 15 = 8, element 31 = 0
	deqRow(t, quant.GGMLQ4_0, dst, q4)
	if dst[0] != 14 || dst[16] != 2 || dst[15] != 0 || dst[31] != -16 || dst[1] != -16 {
		t.Errorf("Q4_0: got %v", dst)
	}
}

func TestDequantQ4_KKnown(t *testing.T) {
	blk := make([]byte, quant.Q4_KBlockBytes)
	binary.LittleEndian.PutUint16(blk, 0x3c00)     // d = 1
	binary.LittleEndian.PutUint16(blk[2:], 0x3800) // dmin = 0.5
	sc := blk[4:16]
	sc[0], sc[4] = 0x42, 3 // pair 0: sc 2, m 3; bit 6 of sc[0] feeds pair 4's scale
	sc[1], sc[5] = 5, 1    // pair 1: sc 5, m 1
	sc[8] = 0x21           // pair 4: sc 1|1<<4 = 17, m 2
	qs := blk[16:]
	qs[0] = 0x73  // element 0 (pair 0) = 3, element 32 (pair 1) = 7
	qs[64] = 0x0a // element 128 (pair 4) = 10
	dst := make([]float32, quant.QK_K)
	deqRow(t, quant.GGMLQ4_K, dst, blk)
	for _, c := range []struct {
		i    int
		want float32
	}{{0, 1*2*3 - 0.5*3}, {1, -0.5 * 3}, {32, 1*5*7 - 0.5*1}, {128, 1*17*10 - 0.5*2}, {129, -0.5 * 2}} {
		if dst[c.i] != c.want {
			t.Errorf("element %d = %g, want %g", c.i, dst[c.i], c.want)
		}
	}
}

func TestDequantQ6_KKnown(t *testing.T) {
	blk := make([]byte, quant.Q6_KBlockBytes)
	binary.LittleEndian.PutUint16(blk[208:], 0x3800) // d = 0.5
	ql, qh, sc := blk[0:128], blk[128:192], blk[192:208]
	sc[0], sc[1], sc[2], sc[4], sc[6], sc[8] = 2, 0xff, 3, 4, 0xfe, 1 // 0xff = -1, 0xfe = -2
	ql[0] = 0x5a                                                      // element 0 low 4 bits 10; element 64 low 4 bits 5
	qh[0] = 0xe4                                                      // high bits of elements 0, 32, 64, 96: 0, 1, 2, 3
	ql[32] = 0x07                                                     // element 32 low 4 bits 7; element 96 low 4 bits 0
	ql[16] = 0x01                                                     // element 16 = 1, scale sc[1]
	ql[64] = 0x0f                                                     // second half: element 128 low 4 bits 15
	qh[32] = 0x03                                                     // element 128 high bits 3
	dst := make([]float32, quant.QK_K)
	deqRow(t, quant.GGMLQ6_K, dst, blk)
	for _, c := range []struct {
		i    int
		want float32
	}{{0, (10 - 32) * 2 * 0.5}, {1, -32 * 2 * 0.5}, {64, (37 - 32) * 4 * 0.5}, {32, (23 - 32) * 3 * 0.5},
		{96, (48 - 32) * -2 * 0.5}, {16, (1 - 32) * -1 * 0.5}, {128, (63 - 32) * 1 * 0.5}} {
		if dst[c.i] != c.want {
			t.Errorf("element %d = %g, want %g", c.i, dst[c.i], c.want)
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
		typ  quant.GGMLType
		want []float32
	}{
		{"Q4_1", cat(half(0.5), half(-1), nib), quant.GGMLQ4_1, want41},
		{"Q5_0", cat(half(0.25), qhb, nib), quant.GGMLQ5_0, want50},
		{"Q5_1", cat(half(0.25), half(2), qhb, nib), quant.GGMLQ5_1, want51},
	} {
		got := make([]float32, 32)
		deqRow(t, tc.typ, got, tc.blk)
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("%s element %d: got %g want %g", tc.name, i, got[i], tc.want[i])
			}
		}
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
	deqRow(t, quant.GGMLQ2_K, got, q2)
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
	deqRow(t, quant.GGMLQ3_K, got, q3)
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
