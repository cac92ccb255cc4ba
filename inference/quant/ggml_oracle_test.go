package quant

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests compare the reference codecs with ggml's own, through a
// prebuilt libggml-base.so driven by testdata/ggml_oracle.c. They run only
// when IMPETUS_LIBGGML names that library, e.g. after
//
//	npm i -E @node-llama-cpp/linux-x64@3.22.1
//	export IMPETUS_LIBGGML=$PWD/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so
//
// and need a C compiler.

type ggmlOracle struct{ bin, lib string }

func newOracle(t *testing.T) ggmlOracle {
	t.Helper()
	lib := os.Getenv("IMPETUS_LIBGGML")
	if lib == "" {
		t.Skip("IMPETUS_LIBGGML not set: skipping the libggml cross-check")
	}
	if _, err := os.Stat(lib); err != nil {
		t.Skipf("IMPETUS_LIBGGML: %v", err)
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler: skipping the libggml cross-check")
	}
	bin := filepath.Join(t.TempDir(), "ggml_oracle")
	if out, err := exec.Command(cc, "-O1", "-o", bin, filepath.Join("testdata", "ggml_oracle.c"), "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("building the oracle: %v\n%s", err, out)
	}
	return ggmlOracle{bin: bin, lib: lib}
}

func (o ggmlOracle) run(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(o.bin, append([]string{o.lib}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oracle %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// symbolName is the ggml symbol spelling: lower case but for the K of k-quants.
func symbolName(t GGMLType) string {
	s := strings.ToLower(t.String())
	if strings.HasSuffix(s, "_k") {
		s = s[:len(s)-1] + "K"
	}
	return s
}

func (o ggmlOracle) dequantize(t *testing.T, typ GGMLType, src []byte, n int) []float32 {
	out := o.run(t, src, "deq", symbolName(typ), fmt.Sprint(n), fmt.Sprint(uint32(typ)))
	f := make([]float32, n)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:]))
	}
	return f
}

func (o ggmlOracle) quantize(t *testing.T, typ GGMLType, x []float32) []byte {
	in := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(in[4*i:], math.Float32bits(v))
	}
	return o.run(t, in, "quant", symbolName(typ), fmt.Sprint(len(x)), fmt.Sprint(uint32(typ)))
}

func TestGGMLTypeTableMatchesLibggml(t *testing.T) {
	o := newOracle(t)
	lines := strings.Split(strings.TrimSpace(string(o.run(t, nil, "table", "43"))), "\n")
	for _, line := range lines {
		f := strings.Fields(line) // id, name (may contain spaces), block size, type size
		var id uint32
		var bs, size int
		_, err1 := fmt.Sscan(f[0], &id)
		_, err2 := fmt.Sscan(f[len(f)-2], &bs)
		_, err3 := fmt.Sscan(f[len(f)-1], &size)
		if len(f) < 4 || err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("table line %q", line)
		}
		name := f[1]
		typ := GGMLType(id)
		if size == 0 {
			if typ.Known() {
				t.Errorf("%d: removed in ggml but known here as %s", id, typ)
			}
			continue
		}
		if !strings.EqualFold(typ.String(), name) || typ.BlockSize() != bs || typ.TypeSize() != size {
			t.Errorf("%d: here %s %d %d, ggml %s %d %d", id, typ, typ.BlockSize(), typ.TypeSize(), name, bs, size)
		}
	}
}

// oracleTypes are the block types both sides decode (ggml has no
// dequantize_row_q8_1; plain types are not row codecs there).
var oracleTypes = []GGMLType{GGMLQ4_0, GGMLQ4_1, GGMLQ5_0, GGMLQ5_1, GGMLQ8_0,
	GGMLQ2_K, GGMLQ3_K, GGMLQ4_K, GGMLQ5_K, GGMLQ6_K, GGMLQ8_K, GGMLMXFP4}

func sameFloat(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

func TestDequantizeMatchesLibggml(t *testing.T) {
	o := newOracle(t)
	r := rand.New(rand.NewPCG(3, 4))
	gauss := make([]float32, 64*256)
	for i := range gauss {
		gauss[i] = float32(r.NormFloat64()) * float32(math.Pow(10, float64(i/256%5)-2))
	}
	for _, typ := range oracleTypes {
		n := len(gauss)
		size, _ := typ.RowBytes(uint64(n))
		// Random bytes (NaN and infinite scales included), then ggml's own
		// quantization of real-looking data.
		random := make([]byte, size)
		for i := range random {
			random[i] = byte(r.Uint32())
		}
		inputs := map[string][]byte{"random bytes": random, "ggml-quantized": o.quantize(t, typ, gauss)}
		for what, src := range inputs {
			want := o.dequantize(t, typ, src, n)
			got := make([]float32, n)
			if err := DequantizeGGML(typ, src, got); err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i := range got {
				if !sameFloat(got[i], want[i]) {
					if bad < 5 {
						t.Errorf("%s %s element %d: %v, ggml %v", typ, what, i, got[i], want[i])
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%s %s: %d of %d elements differ", typ, what, bad, n)
			}
		}
	}
}

// TestQuantizerErrorVsLibggml logs the RMS error of these quantizers beside
// ggml's reference ones and fails if ours is more than twice as large.
func TestQuantizerErrorVsLibggml(t *testing.T) {
	o := newOracle(t)
	r := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 32*256)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	rms := func(y []float32) float64 {
		s := 0.0
		for i := range y {
			d := float64(y[i] - x[i])
			s += d * d
		}
		return math.Sqrt(s / float64(len(y)))
	}
	for _, typ := range quantTypes {
		if typ.BlockSize() == 1 {
			continue
		}
		size, _ := typ.RowBytes(uint64(len(x)))
		mine := make([]byte, size)
		must(t, QuantizeGGML(typ, x, mine))
		y := make([]float32, len(x))
		must(t, DequantizeGGML(typ, mine, y))
		theirs := make([]float32, len(x))
		must(t, DequantizeGGML(typ, o.quantize(t, typ, x), theirs))
		a, b := rms(y), rms(theirs)
		t.Logf("%-5s RMS error %.5f, ggml reference quantizer %.5f (ratio %.2f)", typ, a, b, a/b)
		if a > 2*b {
			t.Errorf("%s: RMS error %.5f is more than twice ggml's %.5f", typ, a, b)
		}
	}
}
