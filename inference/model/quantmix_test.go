package model

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// TestMixedMLXQuantization re-quantizes a trained model with a mixed recipe
// (every bit width, all three group sizes, per-module overrides including
// false, a quantized tied embedding) and checks that its forward pass equals
// that of a float32 model holding the same dequantized weights.
func TestMixedMLXQuantization(t *testing.T) {
	src := testFixture(t, "dev-trained-more-a", "qwen2-bfloat16")
	global := QuantParams{Bits: 3, GroupSize: 32}
	plan := map[string]any{
		"model.embed_tokens":              map[string]any{"bits": 5, "group_size": 128},
		"model.layers.0.mlp.down_proj":    map[string]any{"bits": 6, "group_size": 64},
		"model.layers.1.mlp.down_proj":    map[string]any{"bits": 2, "group_size": 128, "mode": "affine"},
		"model.layers.1.self_attn.q_proj": map[string]any{"bits": 8, "group_size": 32},
		"model.layers.0.self_attn.o_proj": false,
		"model.layers.1.mlp.gate_proj":    map[string]any{"bits": 4},
	}
	set, err := safetensors.OpenModel(src)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var qTensors, fTensors []safetensors.Tensor
	for _, name := range set.Names() {
		tn, _ := set.Tensor(name)
		path := strings.TrimSuffix(name, ".weight")
		isMatrix := strings.HasSuffix(name, ".weight") && len(tn.Shape) == 2
		p := global
		if o, ok := plan[path]; ok {
			if o == false {
				isMatrix = false
			} else {
				m := o.(map[string]any)
				p.Bits = m["bits"].(int)
				if g, ok := m["group_size"]; ok {
					p.GroupSize = g.(int)
				}
			}
		}
		if !isMatrix {
			qTensors = append(qTensors, tn)
			fTensors = append(fTensors, tn)
			continue
		}
		w, err := tn.Floats()
		if err != nil {
			t.Fatal(err)
		}
		rows, cols := tn.Shape[0], tn.Shape[1]
		wq, scales, biases, err := quant.QuantizeMLX(w, rows, cols, p.Bits, p.GroupSize)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Store scales and biases as bfloat16, as modern mlx-community files do,
		// and dequantize with the stored values.
		sb, bb := make([]uint16, len(scales)), make([]uint16, len(biases))
		for i := range scales {
			sb[i], bb[i] = quant.F32ToBF16(scales[i]), quant.F32ToBF16(biases[i])
			scales[i], biases[i] = quant.BF16ToF32(sb[i]), quant.BF16ToF32(bb[i])
		}
		deq := make([]float32, rows*cols)
		quant.DequantizeMLX(deq, wq, scales, biases, rows, cols, p.Bits, p.GroupSize)
		groups := []int{rows, cols / p.GroupSize}
		qTensors = append(qTensors,
			safetensors.Tensor{Name: name, DType: safetensors.U32, Shape: []int{rows, len(wq) / rows}, Data: u32Bytes(wq)},
			safetensors.Tensor{Name: path + ".scales", DType: safetensors.BF16, Shape: groups, Data: u16Bytes(sb)},
			safetensors.Tensor{Name: path + ".biases", DType: safetensors.BF16, Shape: groups, Data: u16Bytes(bb)})
		fTensors = append(fTensors, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: tn.Shape, Data: f32Bytes(deq)})
	}
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	qdir, fdir := t.TempDir(), t.TempDir()
	writeModel(t, fdir, conf, fTensors)
	qconf := map[string]any{"bits": global.Bits, "group_size": global.GroupSize}
	for k, v := range plan {
		qconf[k] = v
	}
	conf["quantization"] = qconf
	writeModel(t, qdir, conf, qTensors)

	qm, err := Load(qdir)
	if err != nil {
		t.Fatal(err)
	}
	defer qm.Close()
	fm, err := Load(fdir)
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	info := qm.Info()
	if !strings.Contains(info.Quantization, "MLX 3-bit g32") || !strings.Contains(info.Quantization, "BF16") {
		t.Errorf("quantization description %q", info.Quantization)
	}
	if info.Params != fm.Info().Params {
		t.Errorf("quantized model counts %d parameters, float copy %d", info.Params, fm.Info().Params)
	}
	if qm.embed.kind != wMLX || qm.embed.bits != 5 || qm.embed.group != 128 || qm.lmHead != &qm.embed {
		t.Errorf("embedding not loaded as the tied 5-bit g128 table")
	}
	if o := qm.layers[0].o; o.kind != wBF16 {
		t.Errorf("layer 0 o_proj overridden to float is %s", o.kind)
	}
	if g := qm.layers[1].gate; g.kind != wMLX || g.bits != 4 || g.group != 32 {
		t.Errorf("layer 1 gate_proj is %s %d-bit g%d, want 4-bit with the global group 32", g.kind, g.bits, g.group)
	}
	ref := loadReference(t, src)
	qc, fc := qm.NewKVCache(64), fm.NewKVCache(64)
	qo, fo := [][]float32{nil}, [][]float32{nil}
	toks := ref.PromptIDs
	for step := 0; step < 4; step++ {
		if err := qm.Forward([]SeqBatch{{Tokens: toks, Cache: qc, WantLogits: true}}, qo); err != nil {
			t.Fatal(err)
		}
		if err := fm.Forward([]SeqBatch{{Tokens: toks, Cache: fc, WantLogits: true}}, fo); err != nil {
			t.Fatal(err)
		}
		for j := range qo[0] {
			if d := math.Abs(float64(qo[0][j] - fo[0][j])); d > 1e-3 {
				t.Fatalf("step %d: logit %d is %g quantized, %g dequantized float", step, j, qo[0][j], fo[0][j])
			}
		}
		toks = []int32{argmax(qo[0])}
	}
}

func writeModel(t *testing.T, dir string, conf map[string]any, tensors []safetensors.Tensor) {
	t.Helper()
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), tensors, map[string]string{"format": "mlx"}); err != nil {
		t.Fatal(err)
	}
}

func u32Bytes(v []uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

func u16Bytes(v []uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
