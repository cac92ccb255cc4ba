package model

import (
	"fmt"
	"sort"
	"strings"

	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/safetensors"
)

type weightKind uint8

const (
	wF32 weightKind = iota
	wBF16
	wF16
	wMLX
	wGGML // a GGUF block type (Q4_0, Q4_K, ...), see ggml
)

func (k weightKind) String() string {
	return [...]string{"f32", "bf16", "f16", "mlx", "ggml"}[k]
}

// matrix is a [rows][cols] weight in its stored format: float slices alias
// the file mapping; MLX codes alias it too, with scales and biases widened to
// float32 when the unpacked path first needs them (mlxFloats): a packed MLX
// matrix runs on its own copy of them, so the process keeps one copy.
type matrix struct {
	name       string
	kind       weightKind
	rows, cols int
	f32        []float32
	half       []uint16
	q          []uint32
	scales     []float32
	biases     []float32
	mlxSrc     [2]safetensors.Tensor // the file's scales and biases, widened by mlxFloats
	bits       int
	group      int
	ggml       quant.GGMLType  // wGGML: the block type of blocks
	blocks     []byte          // wGGML: rows*cols/blockSize blocks, aliasing the GGUF mapping
	packed     *kernels.Packed // the same weight repacked for the int8 kernels, or nil
	panels     *kernels.Panels // a float weight repacked for many-row products (panelize), or nil
}

// linear is a matrix plus an optional bias.
type linear struct {
	matrix
	bias []float32
}

// mul sets out ([n][rows]) to x ([n][cols]) times the transposed weight.
func (m *matrix) mul(out, x []float32, n int) {
	if m.panels != nil {
		m.panels.MatMul(out, x, n)
		return
	}
	if m.packed.Active() {
		m.packed.MatMul(out, x, n)
		return
	}
	switch m.kind {
	case wF32:
		kernels.MatMulF32(out, x, n, m.f32, m.rows, m.cols)
	case wBF16:
		kernels.MatMulBF16(out, x, n, m.half, m.rows, m.cols)
	case wF16:
		kernels.MatMulF16(out, x, n, m.half, m.rows, m.cols)
	case wMLX:
		m.mlxFloats()
		kernels.MatMulMLX(out, x, n, m.q, m.scales, m.biases, m.rows, m.cols, m.bits, m.group)
	case wGGML:
		kernels.MatMulGGUF(m.ggml, out, x, n, m.blocks, m.rows, m.cols)
	}
}

func (l *linear) forward(out, x []float32, n int) {
	l.mul(out, x, n)
	if l.bias != nil {
		for b := 0; b < n; b++ {
			kernels.Add(out[b*l.rows:(b+1)*l.rows], l.bias)
		}
	}
}

// row writes row r of the weight as float32 (embedding lookup).
func (m *matrix) row(dst []float32, r int) {
	if m.panels != nil { // the source's pages are released
		m.panels.Row(dst[:m.cols], r)
		return
	}
	if m.packed != nil { // the source's pages may be released
		m.packed.Row(dst[:m.cols], r)
		return
	}
	switch m.kind {
	case wF32:
		copy(dst, m.f32[r*m.cols:(r+1)*m.cols])
	case wBF16:
		for i, h := range m.half[r*m.cols : (r+1)*m.cols] {
			dst[i] = quant.BF16ToF32(h)
		}
	case wF16:
		for i, h := range m.half[r*m.cols : (r+1)*m.cols] {
			dst[i] = quant.F16ToF32(h)
		}
	case wMLX:
		m.mlxFloats()
		words, groups := m.cols*m.bits/32, m.cols/m.group
		quant.DequantizeMLX(dst[:m.cols], m.q[r*words:(r+1)*words], m.scales[r*groups:(r+1)*groups],
			m.biases[r*groups:(r+1)*groups], 1, m.cols, m.bits, m.group)
	case wGGML:
		m.ggmlRows(dst[:m.cols], r, 1)
	}
}

// panelize repacks a float weight into panels (kernels.Panels), the
// layout of the encoders' many-row products, and returns its bytes; the
// stored copy is dropped, so the caller gives its file pages back. Other
// storage is left as it is (0).
func (m *matrix) panelize() int64 {
	if m.panels != nil || m.packed != nil || m.rows == 0 {
		return 0
	}
	switch m.kind {
	case wF32:
		m.panels = kernels.PackPanelsF32(m.f32, m.rows, m.cols)
		m.f32 = nil
	case wBF16, wF16:
		m.panels = kernels.PackPanelsHalf(m.half, m.kind == wBF16, m.rows, m.cols)
		m.half = nil
	default:
		return 0
	}
	return int64(m.panels.Bytes())
}

// mlxFloats widens an MLX matrix's scales and biases to float32 if they are
// not yet: at load for a matrix that is not packed, else on the first
// unpacked use (activations switched to float), reading the file's pages
// again. Calls come under the model's lock (Forward, load, GPU upload).
func (m *matrix) mlxFloats() {
	if m.kind != wMLX || m.scales != nil {
		return
	}
	// The tensors' types and shapes were checked at load, so Floats, a
	// plain conversion of mapped bytes, cannot fail here.
	m.scales, _ = m.mlxSrc[0].Floats()
	m.biases, _ = m.mlxSrc[1].Floats()
}

// params counts the logical elements of the weight.
func (m *matrix) params() int64 { return int64(m.rows) * int64(m.cols) }

// loader reads tensors from a safetensors Set. A module is MLX-quantized when
// the quantization config names it among its overrides (with its own bits
// and group size, or null for a float module) or, failing that, when the
// file holds its .scales.
type loader struct {
	set      *safetensors.Set
	quant    *QuantConfig
	params   int64
	packed   int64          // bytes of packed weights
	released int64          // bytes of mapped pages given back after packing
	int8     bool           // some matmul runs with int8 activations (kvStorageFor)
	kinds    map[string]int // storage description → count, for Model.Quantization
}

// vector loads a 1-D float tensor of length n.
func (ld *loader) vector(name string, n int) ([]float32, error) {
	t, err := ld.set.Tensor(name)
	if err != nil {
		return nil, err
	}
	if len(t.Shape) != 1 || t.Shape[0] != n {
		return nil, fmt.Errorf("tensor %q has shape %v, want [%d]", name, t.Shape, n)
	}
	v, err := t.Floats()
	if err != nil {
		return nil, err
	}
	ld.params += int64(n)
	return v, nil
}

// optVector is vector for a tensor that may be absent.
func (ld *loader) optVector(name string, n int) ([]float32, error) {
	if !ld.set.Has(name) {
		return nil, nil
	}
	return ld.vector(name, n)
}

// matrix loads the weight at module path (name without ".weight"), expecting
// logical shape [rows][cols], quantized or not as the loader rule says.
func (ld *loader) matrix(path string, rows, cols int) (matrix, error) {
	return ld.load(path, rows, cols, true)
}

// table loads an embedding table that is only looked up, never multiplied
// (an encoder's word, position and type embeddings): an MLX-quantized one
// stays in the file's codes, dequantized row by row on lookup, since a
// packed copy would serve no matmul.
func (ld *loader) table(path string, rows, cols int) (matrix, error) {
	return ld.load(path, rows, cols, false)
}

func (ld *loader) load(path string, rows, cols int, pack bool) (matrix, error) {
	m := matrix{name: path, rows: rows, cols: cols}
	t, err := ld.set.Tensor(path + ".weight")
	if err != nil {
		return m, err
	}
	var qp *QuantParams
	if ld.quant != nil {
		if ov, ok := ld.quant.Overrides[path]; ok {
			qp = ov
			if qp != nil && qp.GroupSize == 0 {
				qp = &QuantParams{GroupSize: ld.quant.GroupSize, Bits: qp.Bits}
			}
		} else if ld.set.Has(path + ".scales") {
			qp = &QuantParams{GroupSize: ld.quant.GroupSize, Bits: ld.quant.Bits}
		}
	}
	if qp == nil {
		if t.DType == safetensors.U32 {
			return m, fmt.Errorf("tensor %q holds U32 codes but module %q is not quantized (no %s.scales, or config.json's quantization keeps it in float)", t.Name, path, path)
		}
		if len(t.Shape) != 2 || t.Shape[0] != rows || t.Shape[1] != cols {
			return m, fmt.Errorf("tensor %q has shape %v, want [%d %d]", t.Name, t.Shape, rows, cols)
		}
		switch t.DType {
		case safetensors.F32:
			m.kind = wF32
			m.f32, err = t.Float32s()
		case safetensors.BF16:
			m.kind = wBF16
			m.half, err = t.Uint16s()
		case safetensors.F16:
			m.kind = wF16
			m.half, err = t.Uint16s()
		default:
			return m, fmt.Errorf("tensor %q: dtype %s is not a supported weight type (quantized without .scales?)", t.Name, t.DType)
		}
		if err != nil {
			return m, err
		}
		ld.note(strings.ToUpper(m.kind.String()))
		ld.params += m.params()
		return m, nil
	}
	if err := quant.MLXCheck(cols, qp.Bits, qp.GroupSize); err != nil {
		return m, fmt.Errorf("module %q: %w", path, err)
	}
	words := quant.MLXWordsPerRow(cols, qp.Bits)
	if t.DType != safetensors.U32 || len(t.Shape) != 2 || t.Shape[0] != rows || t.Shape[1] != words {
		return m, fmt.Errorf("tensor %q is %s %v, want U32 [%d %d] for %d×%d at %d bits", t.Name, t.DType, t.Shape, rows, words, rows, cols, qp.Bits)
	}
	if m.q, err = t.Uint32s(); err != nil {
		return m, err
	}
	groups := cols / qp.GroupSize
	for i, suffix := range []string{".scales", ".biases"} {
		st, err := ld.set.Tensor(path + suffix)
		if err != nil {
			return m, fmt.Errorf("quantized module %q: %w", path, err)
		}
		if len(st.Shape) != 2 || st.Shape[0] != rows || st.Shape[1] != groups {
			return m, fmt.Errorf("tensor %q has shape %v, want [%d %d] (group size %d)", st.Name, st.Shape, rows, groups, qp.GroupSize)
		}
		v, err := st.Floats()
		if err != nil {
			return m, fmt.Errorf("quantized module %q: %w", path, err)
		}
		if i == 0 {
			m.scales = v
		} else {
			m.biases = v
		}
		m.mlxSrc[i] = st // to widen again after a packed matrix drops them
	}
	m.kind, m.bits, m.group = wMLX, qp.Bits, qp.GroupSize
	if pack && kernels.PackWanted(true) {
		m.packed = kernels.PackMLX(m.q, m.scales, m.biases, rows, cols, qp.Bits, qp.GroupSize)
		ld.int8 = ld.int8 || m.packed != nil || qp.Bits == 4
		if m.packed != nil {
			// The packed copy holds codes, scales and biases: drop the
			// float32 copies and give the file's pages back.
			m.scales, m.biases = nil, nil
			ld.packed += int64(m.packed.Bytes())
			for _, suffix := range []string{".weight", ".scales", ".biases"} {
				ld.released += ld.set.Release(path + suffix)
			}
		}
	}
	ld.note(fmt.Sprintf("MLX %d-bit g%d", qp.Bits, qp.GroupSize))
	ld.params += m.params()
	return m, nil
}

func (ld *loader) linear(path string, rows, cols int) (linear, error) {
	m, err := ld.matrix(path, rows, cols)
	if err != nil {
		return linear{}, err
	}
	b, err := ld.optVector(path+".bias", rows)
	return linear{matrix: m, bias: b}, err
}

func (ld *loader) note(kind string) {
	if ld.kinds == nil {
		ld.kinds = map[string]int{}
	}
	ld.kinds[kind]++
}

// storageSummary names the storage kinds of a model's matrices for
// Model.Quantization, the most common first: "Q4_K + Q6_K".
func storageSummary(kinds map[string]int) string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if kinds[names[i]] != kinds[names[j]] {
			return kinds[names[i]] > kinds[names[j]]
		}
		return names[i] < names[j]
	})
	return strings.Join(names, " + ")
}
