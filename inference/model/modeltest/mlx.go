package modeltest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// MLXPlan says how QuantizeMLXFolder quantizes a folder: global bits and
// group size, and per-module overrides keyed by module path as an MLX
// config.json holds them (a map with "bits" and optionally "group_size",
// or false to keep the module in float).
type MLXPlan struct {
	Bits, GroupSize int
	Overrides       map[string]any
}

// QuantizeMLXFolder writes into qdir an MLX-quantized copy of the
// safetensors folder src, as mlx's nn.quantize and its converters leave
// one: every 2-D ".weight" tensor (Linear and Embedding alike) whose row
// length the group size divides, or that an override names, becomes U32
// codes with bfloat16 .scales and .biases (quant.QuantizeMLX, the §1b
// quantizer), and config.json gains the "quantization" block (also as
// "quantization_config"). When fdir is not empty it also writes there a
// float32 folder holding the dequantized weights (from the stored bfloat16
// scales and biases), whose forward pass the quantized one must equal.
// Every other file of src (tokenizer, sentence-transformers modules) is
// copied to both.
func QuantizeMLXFolder(src, qdir, fdir string, plan MLXPlan) error {
	set, err := safetensors.OpenModel(src)
	if err != nil {
		return fmt.Errorf("mlx quantize: %w", err)
	}
	defer set.Close()
	var qts, fts []safetensors.Tensor
	for _, name := range set.Names() {
		t, err := set.Tensor(name)
		if err != nil {
			return fmt.Errorf("mlx quantize: %w", err)
		}
		bits, group, ok := plan.params(t)
		if !ok {
			qts, fts = append(qts, t), append(fts, t)
			continue
		}
		w, err := t.Floats()
		if err != nil {
			return fmt.Errorf("mlx quantize: %w", err)
		}
		rows, cols := t.Shape[0], t.Shape[1]
		wq, scales, biases, err := quant.QuantizeMLX(w, rows, cols, bits, group)
		if err != nil {
			return fmt.Errorf("mlx quantize %s: %w", name, err)
		}
		sb, bb := make([]byte, 2*len(scales)), make([]byte, 2*len(biases))
		for i := range scales {
			s, b := quant.F32ToBF16(scales[i]), quant.F32ToBF16(biases[i])
			binary.LittleEndian.PutUint16(sb[2*i:], s)
			binary.LittleEndian.PutUint16(bb[2*i:], b)
			scales[i], biases[i] = quant.BF16ToF32(s), quant.BF16ToF32(b)
		}
		qb := make([]byte, 4*len(wq))
		for i, v := range wq {
			binary.LittleEndian.PutUint32(qb[4*i:], v)
		}
		path := strings.TrimSuffix(name, ".weight")
		gshape := []int{rows, cols / group}
		qts = append(qts,
			safetensors.Tensor{Name: name, DType: safetensors.U32, Shape: []int{rows, len(wq) / rows}, Data: qb},
			safetensors.Tensor{Name: path + ".scales", DType: safetensors.BF16, Shape: gshape, Data: sb},
			safetensors.Tensor{Name: path + ".biases", DType: safetensors.BF16, Shape: gshape, Data: bb})
		deq := make([]float32, rows*cols)
		quant.DequantizeMLX(deq, wq, scales, biases, rows, cols, bits, group)
		db := make([]byte, 4*len(deq))
		for i, v := range deq {
			binary.LittleEndian.PutUint32(db[4*i:], math.Float32bits(v))
		}
		fts = append(fts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: t.Shape, Data: db})
	}

	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		return fmt.Errorf("mlx quantize: %w", err)
	}
	var conf map[string]any
	if err := json.Unmarshal(raw, &conf); err != nil {
		return fmt.Errorf("mlx quantize: config.json: %w", err)
	}
	q := map[string]any{"bits": plan.Bits, "group_size": plan.GroupSize}
	for k, v := range plan.Overrides {
		q[k] = v
	}
	qconf := map[string]any{"quantization": q, "quantization_config": q}
	for k, v := range conf {
		qconf[k] = v
	}
	if err := writeFolder(src, qdir, qconf, qts); err != nil {
		return err
	}
	if fdir != "" {
		return writeFolder(src, fdir, conf, fts)
	}
	return nil
}

// writeFolder writes config.json and model.safetensors into dir, beside
// copies of src's other files.
func writeFolder(src, dir string, conf map[string]any, tensors []safetensors.Tensor) error {
	if err := copySideFiles(src, dir); err != nil {
		return fmt.Errorf("mlx quantize: %w", err)
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	}
	if err == nil {
		err = safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), tensors, map[string]string{"format": "mlx"})
	}
	if err != nil {
		return fmt.Errorf("mlx quantize: %w", err)
	}
	return nil
}

// params returns the bits and group size tensor t is quantized with, and
// whether it is.
func (p MLXPlan) params(t safetensors.Tensor) (bits, group int, ok bool) {
	if !strings.HasSuffix(t.Name, ".weight") || len(t.Shape) != 2 {
		return 0, 0, false
	}
	bits, group = p.Bits, p.GroupSize
	if o, named := p.Overrides[strings.TrimSuffix(t.Name, ".weight")]; named {
		m, isMap := o.(map[string]any)
		if !isMap {
			return 0, 0, false // false: kept in float
		}
		if b, ok := m["bits"].(int); ok {
			bits = b
		}
		if g, ok := m["group_size"].(int); ok {
			group = g
		}
		return bits, group, true
	}
	return bits, group, t.Shape[1]%group == 0
}

// copySideFiles copies every file of src but its weights and config.json
// into dst, keeping subfolders (1_Pooling/config.json).
func copySideFiles(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel == "config.json" || strings.HasSuffix(rel, ".safetensors") || rel == "model.safetensors.index.json" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}
