package quant

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestGGMLTypeGeometry(t *testing.T) {
	for _, c := range []struct {
		t        GGMLType
		name     string
		bs, size int
	}{
		{GGMLF32, "F32", 1, 4}, {GGMLF16, "F16", 1, 2}, {GGMLBF16, "BF16", 1, 2},
		{GGMLQ4_0, "Q4_0", 32, 18}, {GGMLQ4_1, "Q4_1", 32, 20}, {GGMLQ5_0, "Q5_0", 32, 22},
		{GGMLQ5_1, "Q5_1", 32, 24}, {GGMLQ8_0, "Q8_0", 32, 34}, {GGMLQ8_1, "Q8_1", 32, 36},
		{GGMLQ2_K, "Q2_K", 256, 84}, {GGMLQ3_K, "Q3_K", 256, 110}, {GGMLQ4_K, "Q4_K", 256, 144},
		{GGMLQ5_K, "Q5_K", 256, 176}, {GGMLQ6_K, "Q6_K", 256, 210}, {GGMLQ8_K, "Q8_K", 256, 292},
		{GGMLMXFP4, "MXFP4", 32, 17},
	} {
		if c.t.String() != c.name || c.t.BlockSize() != c.bs || c.t.TypeSize() != c.size {
			t.Errorf("%d: %s %d %d, want %s %d %d", uint32(c.t), c.t, c.t.BlockSize(), c.t.TypeSize(), c.name, c.bs, c.size)
		}
	}
	for _, id := range []GGMLType{4, 5, 31, 32, 33, 36, 43, 1000} {
		if id.Known() || id.BlockSize() != 0 || id.String() != "GGMLType("+itoa(int(id))+")" {
			t.Errorf("removed/unknown type %d reported as %s", uint32(id), id)
		}
	}
	if n, err := GGMLQ4_K.RowBytes(512); err != nil || n != 288 {
		t.Errorf("Q4_K RowBytes(512) = %d, %v", n, err)
	}
	if _, err := GGMLQ4_K.RowBytes(100); err == nil {
		t.Error("Q4_K RowBytes(100) accepted a partial block")
	}
	if _, err := GGMLF32.RowBytes(1 << 62); err == nil {
		t.Error("F32 RowBytes(2^62) did not overflow")
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func le16(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }

const (
	h1    = 0x3c00 // f16 1.0
	hHalf = 0x3800 // f16 0.5
	hQtr  = 0x3400 // f16 0.25
	hTwo  = 0x4000 // f16 2.0
	hNeg1 = 0xbc00 // f16 -1.0
)

func decode(t *testing.T, typ GGMLType, block []byte) []float32 {
	t.Helper()
	out := make([]float32, typ.BlockSize())
	if err := DequantizeGGML(typ, block, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// check compares every element with want, which holds the listed elements;
// all others must equal base.
func check(t *testing.T, got []float32, base float32, want map[int]float32) {
	t.Helper()
	for i, g := range got {
		w, ok := want[i]
		if !ok {
			w = base
		}
		if g != w {
			t.Errorf("element %d = %v, want %v", i, g, w)
		}
	}
}

func TestDequantQ4_0(t *testing.T) {
	b := make([]byte, 18)
	le16(b, hHalf)
	for j := range 16 {
		b[2+j] = byte(j) | byte(15-j)<<4
	}
	want := map[int]float32{}
	for j := range 16 {
		want[j] = float32(j-8) * 0.5       // low nibble: element j
		want[j+16] = float32(15-j-8) * 0.5 // high nibble: element j+16
	}
	check(t, decode(t, GGMLQ4_0, b), 0, want)
}

func TestDequantQ4_1(t *testing.T) {
	b := make([]byte, 20)
	le16(b, hQtr)
	le16(b[2:], hNeg1)
	for j := range 16 {
		b[4+j] = byte(j) | byte(15-j)<<4
	}
	want := map[int]float32{}
	for j := range 16 {
		want[j] = float32(j)*0.25 - 1
		want[j+16] = float32(15-j)*0.25 - 1
	}
	check(t, decode(t, GGMLQ4_1, b), 0, want)
}

func TestDequantQ5_0(t *testing.T) {
	b := make([]byte, 22)
	le16(b, h1)
	binary.LittleEndian.PutUint32(b[2:], 1|1<<16|1<<31) // fifth bits of elements 0, 16, 31
	for j := range 16 {
		b[6+j] = 0x21 // low nibble 1 (elements 0–15), high nibble 2 (16–31)
	}
	want := map[int]float32{0: 1, 16: 2, 31: 2}
	for j := 1; j < 16; j++ {
		want[j] = 1 - 16
	}
	for j := 17; j < 31; j++ {
		want[j] = 2 - 16
	}
	check(t, decode(t, GGMLQ5_0, b), 0, want)
}

func TestDequantQ5_1(t *testing.T) {
	b := make([]byte, 24)
	le16(b, hHalf)
	le16(b[2:], hTwo)
	binary.LittleEndian.PutUint32(b[4:], 1<<5|1<<20)
	for j := range 16 {
		b[8+j] = 0x0f
	}
	want := map[int]float32{5: 31*0.5 + 2, 20: 16*0.5 + 2}
	for j := range 16 {
		if j != 5 {
			want[j] = 15*0.5 + 2
		}
	}
	check(t, decode(t, GGMLQ5_1, b), 2, want)
}

func TestDequantQ8(t *testing.T) {
	b := make([]byte, 34)
	le16(b, hHalf)
	want := map[int]float32{}
	for j := range 32 {
		b[2+j] = byte(int8(j - 16))
		want[j] = float32(j-16) * 0.5
	}
	b[2] = 0x80
	want[0] = -64
	check(t, decode(t, GGMLQ8_0, b), 0, want)

	b1 := make([]byte, 36)
	le16(b1, hTwo)
	le16(b1[2:], 0x7bff) // s is a cached sum and must not affect decoding
	b1[4+3] = 0xff
	b1[4+31] = 100
	check(t, decode(t, GGMLQ8_1, b1), 0, map[int]float32{3: -2, 31: 200})

	bk := make([]byte, 292)
	binary.LittleEndian.PutUint32(bk, math.Float32bits(0.25))
	wantK := map[int]float32{}
	for j := range 256 {
		bk[4+j] = byte(int8(j - 128))
		wantK[j] = 0.25 * float32(j-128)
	}
	for k := range 16 {
		le16(bk[260+2*k:], 0xffff) // bsums are ignored
	}
	check(t, decode(t, GGMLQ8_K, bk), 0, wantK)
}

func TestKScaleMinUnpacking(t *testing.T) {
	q := []byte{0xC1, 0x42, 0x03, 0x84, 0x05, 0x46, 0x87, 0xC8, 0x9A, 0xBC, 0xDE, 0xF0}
	wantSc := []uint8{1, 2, 3, 4, 58, 28, 14, 32}
	wantM := []uint8{5, 6, 7, 8, 9, 27, 45, 63}
	for j := range 8 {
		sc, m := KScaleMin(q, j)
		if sc != wantSc[j] || m != wantM[j] {
			t.Errorf("pair %d: (%d, %d), want (%d, %d)", j, sc, m, wantSc[j], wantM[j])
		}
	}
}

func TestQ3ScaleUnpacking(t *testing.T) {
	s := []byte{0x21, 0x43, 0x65, 0x87, 0xA9, 0xCB, 0xED, 0x0F, 0xE4, 0x1B, 0x00, 0xFF}
	want := []int{-31, 19, -27, 23, -7, 11, -19, 31, 2, -12, -26, 24, 26, -20, -18, 16}
	for i, w := range want {
		if got := Q3KScale(s, i); got != w {
			t.Errorf("scale %d = %d, want %d", i, got, w)
		}
	}
}

func TestDequantQ4_K(t *testing.T) {
	b := make([]byte, 144)
	le16(b, h1)
	le16(b[2:], hHalf)
	copy(b[4:], []byte{0xC1, 0x42, 0x03, 0x84, 0x05, 0x46, 0x87, 0xC8, 0x9A, 0xBC, 0xDE, 0xF0})
	sc := []float32{1, 2, 3, 4, 58, 28, 14, 32}
	m := []float32{5, 6, 7, 8, 9, 27, 45, 63}
	want := map[int]float32{}
	for c := range 4 {
		for l := range 32 {
			lo, hi := l%16, 15-l%16
			b[16+32*c+l] = byte(lo) | byte(hi)<<4
			want[64*c+l] = sc[2*c]*float32(lo) - 0.5*m[2*c]
			want[64*c+32+l] = sc[2*c+1]*float32(hi) - 0.5*m[2*c+1]
		}
	}
	check(t, decode(t, GGMLQ4_K, b), 0, want)
}

func TestDequantQ5_K(t *testing.T) {
	b := make([]byte, 176)
	le16(b, h1)
	le16(b[2:], h1)
	scales := b[4:16]
	for j := range 4 {
		scales[j] = 1      // sc of pairs 0–3
		scales[8+j] = 0x01 // low nibble: sc of pairs 4–7; high nibble: their mins
	}
	scales[9] = 0x31 // pair 5: sc 1, min 3
	qh, qs := b[16:48], b[48:176]
	qs[0] = 0x21      // element 0 → 1, element 32 → 2
	qh[0] = 0b101     // bit 0: element 0 +16; bit 2: element 64 +16
	qh[31] = 0x80     // bit 7: element 3·64+32+31 = 255 +16
	qs[32*2+4] = 0xF0 // element 132 → 0, element 164 → 15 (pair 5)
	want := map[int]float32{0: 17, 32: 2, 64: 16, 255: 16}
	for i := 160; i < 192; i++ {
		want[i] = -3
	}
	want[164] = 15 - 3
	check(t, decode(t, GGMLQ5_K, b), 0, want)
}

func TestDequantQ6_K(t *testing.T) {
	b := make([]byte, 210)
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	le16(b[208:], hHalf) // d is the last field
	for i := range sc {
		sc[i] = 1
	}
	ql[0] = 0x35    // element 0 low 5; element 64 (k=2) low 3
	ql[32+1] = 0x72 // element 33 (k=1) low 2; element 97 (k=3) low 7
	qh[2] = 0xE4    // element 2: 0, 34: 1, 66: 2, 98: 3 (high bits)
	ql[64+3] = 0x0A // element 131 low 10
	qh[32+3] = 0x01 // element 131 high 1
	sc[1] = 2       // elements 16–31
	sc[8+2] = 0xfd  // -3: elements 160–175 (h=1, k=1, l<16)
	ql[64+32+5] = 1 // element 160+5 low 1
	base := float32(0.5 * -32)
	want := map[int]float32{
		0: 0.5 * (5 - 32), 64: 0.5 * (3 - 32), 33: 0.5 * (2 - 32), 97: 0.5 * (7 - 32),
		34: 0.5 * (16 - 32), 66: 0, 98: 0.5 * (48 - 32), 131: 0.5 * (26 - 32),
	}
	for l := 16; l < 32; l++ {
		want[l] = 0.5 * 2 * -32
	}
	for l := range 16 {
		want[160+l] = 0.5 * -3 * -32
	}
	want[165] = 0.5 * -3 * (1 - 32)
	check(t, decode(t, GGMLQ6_K, b), base, want)
}

func TestDequantQ2_K(t *testing.T) {
	b := make([]byte, 84)
	scales, qs := b[0:16], b[16:80]
	le16(b[80:], h1)    // d
	le16(b[82:], hHalf) // dmin
	for i := range scales {
		scales[i] = 0x21 // sc 1, min 2
	}
	scales[2] = 0x04 // sub-block 2 (elements 32–47): sc 4, min 0
	scales[9] = 0x35 // sub-block 9 (elements 144–159): sc 5, min 3
	qs[0] = 0xE4     // planes of qs[0]: elements 0, 32, 64, 96 get 0, 1, 2, 3
	qs[32+17] = 0x03 // element 128+17 gets 3
	want := map[int]float32{0: -1, 64: 2 - 1, 96: 3 - 1, 32: 4}
	for i := 33; i < 48; i++ {
		want[i] = 0
	}
	for i := 144; i < 160; i++ {
		want[i] = -1.5
	}
	want[145] = 15 - 1.5
	check(t, decode(t, GGMLQ2_K, b), -1, want)
}

func TestDequantQ3_K(t *testing.T) {
	b := make([]byte, 110)
	hmask, qs, scales := b[0:32], b[32:96], b[96:108]
	le16(b[108:], hHalf)
	for i := range hmask {
		hmask[i] = 0xff // high bit set: nothing subtracted
	}
	for i := range 8 {
		scales[i] = 0x11 // low nibbles 1 for all 16 scales
	}
	for i := 8; i < 12; i++ {
		scales[i] = 0xAA // high bit pairs 2: every scale is 33−32 = 1
	}
	scales[5] = 0xC1 // scale 13 low nibble 12
	scales[9] = 0x2A // scale 13 high pair 0 → 12−32 = −20
	qs[0] = 0xE4     // elements 0, 32, 64, 96 get 0, 1, 2, 3
	hmask[0] = 0xFD  // bit 1 clear: element 32 (n=0, j=1) loses 4
	hmask[5] = 0xEF  // bit 4 clear: element 128+5 (n=1, j=0) loses 4
	qs[32+16] = 0x30 // element 128+64+16 = 208 (scale 13) gets 3
	want := map[int]float32{0: 0, 32: 0.5 * (1 - 4), 64: 1, 96: 1.5, 133: 0.5 * -4, 208: 0.5 * -20 * 3}
	check(t, decode(t, GGMLQ3_K, b), 0, want)
}

func TestDequantMXFP4AndFloats(t *testing.T) {
	b := make([]byte, 17)
	b[0] = 127 // 2^0 / 2
	b[1] = 0x9F
	check(t, decode(t, GGMLMXFP4, b), 0, map[int]float32{0: -6, 16: -0.5})
	b[0] = 0 // smallest exponent: 2^-128, a float32 subnormal
	b[1] = 0x07
	check(t, decode(t, GGMLMXFP4, b), 0, map[int]float32{0: float32(math.Ldexp(12, -128))})

	out := make([]float32, 2)
	if err := DequantizeGGML(GGMLF16, []byte{0x00, 0x3c, 0x00, 0xc0}, out); err != nil || out[0] != 1 || out[1] != -2 {
		t.Errorf("F16: %v %v", out, err)
	}
	if err := DequantizeGGML(GGMLBF16, []byte{0x80, 0x3f, 0x40, 0xc0}, out); err != nil || out[0] != 1 || out[1] != -3 {
		t.Errorf("BF16: %v %v", out, err)
	}
	if err := DequantizeGGML(GGMLF32, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}, out); err != nil || out[0] != 1 || out[1] != -2 {
		t.Errorf("F32: %v %v", out, err)
	}
}

func TestDequantizeErrors(t *testing.T) {
	for _, c := range []struct {
		typ  GGMLType
		src  int
		dst  int
		want string
	}{
		{GGMLQ4_0, 18, 31, "whole number"},
		{GGMLQ4_0, 17, 32, "want 18"},
		{GGMLQ4_K, 144, 512, "want 288"},
		{GGMLIQ2_XXS, 66, 256, "no decoder for ggml type IQ2_XXS"},
		{GGMLType(4), 0, 0, "GGMLType(4)"},
	} {
		err := DequantizeGGML(c.typ, make([]byte, c.src), make([]float32, c.dst))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.typ, err, c.want)
		}
	}
	if err := QuantizeGGML(GGMLQ8_0, make([]float32, 32), make([]byte, 33)); err == nil {
		t.Error("QuantizeGGML accepted a short output")
	}
	if err := QuantizeGGML(GGMLMXFP4, make([]float32, 32), make([]byte, 17)); err == nil {
		t.Error("QuantizeGGML accepted MXFP4")
	}
}

// quantBound is the largest decoding error allowed for a block whose largest
// magnitude is amax: half a step (a full step where one side clamps, for
// Q4_0/Q5_0), widened for the rounding of the scales to their stored width.
func quantBound(typ GGMLType, amax float64) float64 {
	switch typ {
	case GGMLF32:
		return 0
	case GGMLF16: // relative 2^-11, or half the subnormal spacing 2^-24
		return amax*0x1p-11 + 0x1p-25
	case GGMLBF16:
		return amax * 0x1p-8
	case GGMLQ8_0, GGMLQ8_K:
		return amax * 0.5 / 127 * 1.01
	case GGMLQ4_0:
		return amax / 8 * 1.01
	case GGMLQ5_0:
		return amax / 16 * 1.01
	case GGMLQ4_1:
		return amax*(1.0/15)*1.02 + amax*0x1p-10
	case GGMLQ5_1:
		return amax*(1.0/31)*1.02 + amax*0x1p-10
	case GGMLQ2_K: // nmax 3 levels over [min(x,0), max], 4-bit scales
		return amax * (1.0 / 3) * (1 + 2.0/15) * 1.02
	case GGMLQ4_K:
		return amax * (1.0 / 15) * (1 + 2.0/63) * 1.02
	case GGMLQ5_K:
		return amax * (1.0 / 31) * (1 + 2.0/63) * 1.02
	case GGMLQ3_K: // signed, ±3 steps, 6-bit scales
		return amax * (0.5 / 3) * (1 + 2.0/31) * 1.02
	case GGMLQ6_K:
		return amax * (0.5 / 31) * (1 + 2.0/127) * 1.02
	}
	panic("no bound for " + typ.String())
}

var quantTypes = []GGMLType{GGMLF32, GGMLF16, GGMLBF16, GGMLQ4_0, GGMLQ4_1, GGMLQ5_0, GGMLQ5_1, GGMLQ8_0,
	GGMLQ2_K, GGMLQ3_K, GGMLQ4_K, GGMLQ5_K, GGMLQ6_K, GGMLQ8_K}

// testVectors returns 2048 values in several shapes: gaussian, sub-blocks of
// very different scales, all positive, all negative, constant, zero, one outlier.
func testVectors() map[string][]float32 {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 2048
	gen := func(f func(i int) float32) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	scales := make([]float32, n/16)
	for i := range scales {
		scales[i] = float32(math.Pow(10, r.Float64()*3-2))
	}
	return map[string][]float32{
		"gaussian": gen(func(int) float32 { return float32(r.NormFloat64()) }),
		"mixed":    gen(func(i int) float32 { return scales[i/16] * float32(r.NormFloat64()) }),
		"positive": gen(func(int) float32 { return 3 + r.Float32() }),
		"negative": gen(func(int) float32 { return -3 - r.Float32() }),
		"constant": gen(func(int) float32 { return 0.75 }),
		"zero":     gen(func(int) float32 { return 0 }),
		"outlier": gen(func(i int) float32 {
			return map[bool]float32{true: 50, false: 0.01 * float32(r.NormFloat64())}[i%97 == 0]
		}),
		"tiny-range": gen(func(int) float32 { return 1e-3 * float32(r.NormFloat64()) }),
	}
}

func TestQuantizeRoundTrip(t *testing.T) {
	for name, x := range testVectors() {
		for _, typ := range quantTypes {
			bs := typ.BlockSize()
			size, _ := typ.RowBytes(uint64(len(x)))
			blocks := make([]byte, size)
			if err := QuantizeGGML(typ, x, blocks); err != nil {
				t.Fatal(err)
			}
			y := make([]float32, len(x))
			if err := DequantizeGGML(typ, blocks, y); err != nil {
				t.Fatal(err)
			}
			// Bounds are per block of 256 (or the type's block if larger),
			// the span over which the scales are chosen.
			span := max(bs, 256)
			worst := 0.0
			for s := 0; s < len(x); s += span {
				amax := 0.0
				for _, v := range x[s : s+span] {
					amax = max(amax, math.Abs(float64(v)))
				}
				if bs < 256 { // Q4_0 etc.: bound each 32-block by its own range
					for b := s; b < s+span; b += bs {
						am := 0.0
						for _, v := range x[b : b+bs] {
							am = max(am, math.Abs(float64(v)))
						}
						for i := b; i < b+bs; i++ {
							e := math.Abs(float64(y[i] - x[i]))
							if e > quantBound(typ, am)+1e-30 {
								t.Fatalf("%s %s element %d: %v decoded as %v (error %g, bound %g)", name, typ, i, x[i], y[i], e, quantBound(typ, am))
							}
							worst = max(worst, e/max(am, 1e-30))
						}
					}
					continue
				}
				for i := s; i < s+span; i++ {
					e := math.Abs(float64(y[i] - x[i]))
					if e > quantBound(typ, amax)+1e-30 {
						t.Fatalf("%s %s element %d: %v decoded as %v (error %g, bound %g)", name, typ, i, x[i], y[i], e, quantBound(typ, amax))
					}
					worst = max(worst, e/max(amax, 1e-30))
				}
			}
			t.Logf("%-10s %-5s worst error / block max = %.4g", name, typ, worst)
		}
	}
}

// TestQuantizeDecodeStable checks that re-encoding decoded values is exact for
// the affine 32-blocks: a decoded block lies on its own grid.
func TestQuantizeDecodeStable(t *testing.T) {
	x := testVectors()["gaussian"]
	for _, typ := range []GGMLType{GGMLQ8_0, GGMLQ8_K} {
		size, _ := typ.RowBytes(uint64(len(x)))
		b1, b2 := make([]byte, size), make([]byte, size)
		y, z := make([]float32, len(x)), make([]float32, len(x))
		must(t, QuantizeGGML(typ, x, b1))
		must(t, DequantizeGGML(typ, b1, y))
		must(t, QuantizeGGML(typ, y, b2))
		must(t, DequantizeGGML(typ, b2, z))
		for i := range y {
			if math.Abs(float64(y[i]-z[i])) > quantBound(typ, 4)/64 {
				t.Fatalf("%s: element %d %v re-encoded as %v", typ, i, y[i], z[i])
			}
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestMLXEquivalence checks the lossless GGUF→MLX affine conversions of
// group 32: Q4_0 → scale d, bias −8d; Q4_1 → d, m; Q8_0 →
// d, −128d on byte XOR 0x80, with the Q4 nibbles reordered to element order.
func TestMLXEquivalence(t *testing.T) {
	x := testVectors()["mixed"][:256]
	for _, typ := range []GGMLType{GGMLQ4_0, GGMLQ4_1, GGMLQ8_0} {
		size, _ := typ.RowBytes(uint64(len(x)))
		blocks := make([]byte, size)
		must(t, QuantizeGGML(typ, x, blocks))
		want := make([]float32, len(x))
		must(t, DequantizeGGML(typ, blocks, want))
		ts := typ.TypeSize()
		for g := range len(x) / 32 {
			b := blocks[g*ts : (g+1)*ts]
			d := F16ToF32(binary.LittleEndian.Uint16(b))
			var scale, bias float32
			var q [32]uint32 // MLX element order
			switch typ {
			case GGMLQ4_0:
				scale, bias = d, -8*d
				for j := range 16 {
					q[j], q[j+16] = uint32(b[2+j]&0xf), uint32(b[2+j]>>4)
				}
			case GGMLQ4_1:
				scale, bias = d, F16ToF32(binary.LittleEndian.Uint16(b[2:]))
				for j := range 16 {
					q[j], q[j+16] = uint32(b[4+j]&0xf), uint32(b[4+j]>>4)
				}
			case GGMLQ8_0:
				scale, bias = d, -128*d
				for j := range 32 {
					q[j] = uint32(b[2+j] ^ 0x80)
				}
			}
			for j := range 32 {
				w := float32(scale*float32(q[j])) + bias
				if w != want[32*g+j] {
					t.Fatalf("%s group %d element %d: MLX form %v, GGUF %v", typ, g, j, w, want[32*g+j])
				}
			}
		}
	}
}

func FuzzDequantize(f *testing.F) {
	types := make([]GGMLType, 0, len(dequantizers))
	for _, typ := range []GGMLType{GGMLF32, GGMLF16, GGMLBF16, GGMLQ4_0, GGMLQ4_1, GGMLQ5_0, GGMLQ5_1, GGMLQ8_0, GGMLQ8_1,
		GGMLQ2_K, GGMLQ3_K, GGMLQ4_K, GGMLQ5_K, GGMLQ6_K, GGMLQ8_K, GGMLMXFP4} {
		if !typ.Dequantizable() {
			f.Fatalf("%s not dequantizable", typ)
		}
		types = append(types, typ)
	}
	f.Add(uint8(3), make([]byte, 18))
	f.Add(uint8(12), make([]byte, 210))
	f.Add(uint8(14), []byte(strings.Repeat("\xff", 292)))
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		typ := types[int(sel)%len(types)]
		nb := len(data) / typ.TypeSize()
		src := data[:nb*typ.TypeSize()]
		out := make([]float32, nb*typ.BlockSize())
		if err := DequantizeGGML(typ, src, out); err != nil {
			t.Fatal(err)
		}
		if typ.Quantizable() { // arbitrary floats (NaN, Inf) must not panic either
			if err := QuantizeGGML(typ, out, make([]byte, len(src))); err != nil {
				t.Fatal(err)
			}
		}
	})
}
