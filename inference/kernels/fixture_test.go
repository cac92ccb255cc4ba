package kernels

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/testutil"
)

// stTensor is one tensor of a trusted fixture file, read with a minimal
// safetensors reader (the real parser lives in inference/safetensors).
type stTensor struct {
	dtype string
	shape []int
	data  []byte
}

func readSafetensors(t *testing.T, path string) map[string]stTensor {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &hdr); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	body := raw[8+n:]
	out := map[string]stTensor{}
	for name, msg := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			Dtype   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &e); err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		out[name] = stTensor{e.Dtype, e.Shape, body[e.Offsets[0]:e.Offsets[1]]}
	}
	return out
}

func (s stTensor) u32() []uint32 {
	v := make([]uint32, len(s.data)/4)
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(s.data[4*i:])
	}
	return v
}

func (s stTensor) u16() []uint16 {
	v := make([]uint16, len(s.data)/2)
	for i := range v {
		v[i] = binary.LittleEndian.Uint16(s.data[2*i:])
	}
	return v
}

func (s stTensor) f32(t *testing.T) []float32 {
	h := s.u16()
	v := make([]float32, len(h))
	for i, x := range h {
		switch s.dtype {
		case "BF16":
			v[i] = quant.BF16ToF32(x)
		case "F16":
			v[i] = quant.F16ToF32(x)
		default:
			t.Fatalf("unexpected dtype %s", s.dtype)
		}
	}
	return v
}

// TestRealMLXWeights checks the kernels against weights that MLX itself
// quantized and packed (the dev-trained fixtures): each dequantized MLX
// weight must lie within a quantization step of the bfloat16 original, and
// every kernel level must match the reference on them.
func TestRealMLXWeights(t *testing.T) {
	root := testutil.Fixture(t, "dev-trained", "llama-bfloat16")
	orig := readSafetensors(t, filepath.Join(root, "model.safetensors"))
	for _, variant := range []string{"llama-mlx4", "llama-mlx8"} {
		q := readSafetensors(t, filepath.Join(filepath.Dir(root), variant, "model.safetensors"))
		var cfg struct {
			Quantization struct {
				Bits      int `json:"bits"`
				GroupSize int `json:"group_size"`
			} `json:"quantization"`
		}
		raw, err := os.ReadFile(filepath.Join(filepath.Dir(root), variant, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		bits, g := cfg.Quantization.Bits, cfg.Quantization.GroupSize
		for _, name := range []string{"model.layers.0.mlp.gate_proj", "model.layers.1.self_attn.o_proj", "model.layers.3.mlp.down_proj"} {
			wt, ok := q[name+".weight"]
			if !ok || wt.dtype != "U32" {
				t.Fatalf("%s: %s.weight missing or not U32", variant, name)
			}
			rows, cols := wt.shape[0], wt.shape[1]*32/bits
			wq := wt.u32()
			sc, bi := q[name+".scales"].f32(t), q[name+".biases"].f32(t)
			w := orig[name+".weight"].f32(t)
			if len(w) != rows*cols {
				t.Fatalf("%s %s: original has %d elements, quantized shape %dx%d", variant, name, len(w), rows, cols)
			}
			words, groups := cols*bits/32, cols/g
			// Rounding leaves each weight within half a step of the
			// original, except where MLX's refitted scale clamps a group's
			// far extreme (within a whole step); a wrong bit order would
			// put most weights many steps away.
			row := make([]float32, cols)
			beyondHalf := 0
			for o := 0; o < rows; o++ {
				dequantMLXRow(row, wq[o*words:(o+1)*words], sc[o*groups:(o+1)*groups], bi[o*groups:(o+1)*groups], cols, bits, g)
				for j, v := range row {
					step := math.Abs(float64(sc[o*groups+j/g]))
					d := math.Abs(float64(v - w[o*cols+j]))
					slack := 1e-2*step + 1e-3*math.Abs(float64(w[o*cols+j]))
					if d > step+slack {
						t.Fatalf("%s %s[%d][%d]: dequantized %g, original %g (step %g)", variant, name, o, j, v, w[o*cols+j], step)
					}
					if d > step/2+slack {
						beyondHalf++
					}
				}
			}
			if beyondHalf > rows*groups {
				t.Errorf("%s %s: %d weights more than half a step off, more than one per group", variant, name, beyondHalf)
			}
			t.Logf("%s %s: %dx%d, bits %d, group %d: %d weights clamped", variant, name, rows, cols, bits, g, beyondHalf)
			r := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
			for _, n := range []int{1, 3, 6} {
				x := randSlice(r, n*cols, 1)
				want, got := make([]float32, n*rows), make([]float32, n*rows)
				MatMulMLXRef(want, x, n, wq, sc, bi, rows, cols, bits, g)
				MatMulMLX(got, x, n, wq, sc, bi, rows, cols, bits, g)
				closeTo(t, fmt.Sprintf("%s %s n=%d", variant, name, n), got, want, 1e-5)
			}
		}
	}
}
