// Package safetensors reads Hugging Face / MLX .safetensors files (one file or a
// sharded model folder) read-only and memory-mapped, validating the header
// strictly so a damaged or hostile file yields a clear error rather than a
// panic or an out-of-bounds tensor.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"sort"
	"unicode/utf8"
	"unsafe"

	"github.com/impetusllm/impetus/inference/quant"
)

// MaxHeaderLen caps the JSON header, as the reference reader does, so a bogus
// length cannot make us allocate or scan gigabytes.
const MaxHeaderLen = 100 << 20

// maxElements bounds a shape's product so byte counts cannot overflow.
const maxElements = 1 << 56

// Tensor is one named array. Data aliases the file mapping: it is valid until
// the owning File or Set is closed, and must not be written.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements is the product of the shape (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is one opened .safetensors file.
type File struct {
	path     string
	data     []byte // whole file
	release  func() error
	mapped   bool     // data is a file mapping (Release may drop its pages)
	names    []string // in header (offset) order
	tensors  map[string]Tensor
	Metadata map[string]string
}

// Open maps path read-only and validates its header.
func Open(path string) (*File, error) {
	data, release, mapped, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Parse(path, data)
	if err != nil {
		release()
		return nil, err
	}
	f.release, f.mapped = release, mapped
	return f, nil
}

// Parse validates an in-memory safetensors file. name is only used in errors.
// The returned File aliases data.
func Parse(name string, data []byte) (*File, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("safetensors: %s: %s", name, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 {
		return nil, fail("file is %d bytes, too short for the header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderLen {
		return nil, fail("header length %d exceeds the %d byte limit", n, MaxHeaderLen)
	}
	if n > uint64(len(data)-8) {
		return nil, fail("header length %d runs past the end of the %d byte file", n, len(data))
	}
	header := data[8 : 8+n]
	if len(header) == 0 || header[0] != '{' {
		return nil, fail("header does not start with '{'")
	}
	if !utf8.Valid(header) {
		return nil, fail("header is not valid UTF-8")
	}
	buf := data[8+n:]

	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, fail("header JSON: %v", err)
	}

	f := &File{path: name, data: data, tensors: make(map[string]Tensor, len(raw))}
	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(raw))
	for key, val := range raw {
		if key == "__metadata__" {
			if err := json.Unmarshal(val, &f.Metadata); err != nil {
				return nil, fail("__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		var e struct {
			DType       *string  `json:"dtype"`
			Shape       []int64  `json:"shape"`
			DataOffsets []uint64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(val, &e); err != nil {
			return nil, fail("tensor %q: %v", key, err)
		}
		if e.DType == nil {
			return nil, fail("tensor %q: missing dtype", key)
		}
		dt := DType(*e.DType)
		if !dt.Known() {
			return nil, fail("tensor %q: unknown dtype %q", key, *e.DType)
		}
		if e.Shape == nil {
			return nil, fail("tensor %q: missing shape", key)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fail("tensor %q: data_offsets must be [begin, end]", key)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin > end {
			return nil, fail("tensor %q: data_offsets [%d, %d] run backwards", key, begin, end)
		}
		if end > uint64(len(buf)) {
			return nil, fail("tensor %q: data_offsets end %d is past the %d byte data buffer", key, end, len(buf))
		}
		shape := make([]int, len(e.Shape))
		numel := uint64(1)
		for i, d := range e.Shape {
			if d < 0 {
				return nil, fail("tensor %q: negative dimension %d", key, d)
			}
			hi, lo := bits.Mul64(numel, uint64(d))
			if hi != 0 || lo > maxElements {
				return nil, fail("tensor %q: shape %v overflows", key, e.Shape)
			}
			numel = lo
			shape[i] = int(d)
		}
		if want := numel * uint64(dt.Size()); end-begin != want {
			return nil, fail("tensor %q: %d bytes for shape %v of %s, want %d", key, end-begin, e.Shape, dt, want)
		}
		f.tensors[key] = Tensor{Name: key, DType: dt, Shape: shape, Data: buf[begin:end:end]}
		spans = append(spans, span{key, begin, end})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var at uint64
	for _, s := range spans {
		if s.begin != at {
			if s.begin < at {
				return nil, fail("tensor %q: data_offsets [%d, %d] overlap the previous tensor", s.name, s.begin, s.end)
			}
			return nil, fail("tensor %q: gap before data_offsets [%d, %d] (previous tensor ends at %d)", s.name, s.begin, s.end, at)
		}
		at = s.end
		f.names = append(f.names, s.name)
	}
	if at != uint64(len(buf)) {
		return nil, fail("tensors cover %d of the %d byte data buffer", at, len(buf))
	}
	return f, nil
}

// Path is the file name given to Open.
func (f *File) Path() string { return f.path }

// Size is the file's length in bytes.
func (f *File) Size() int64 { return int64(len(f.data)) }

// Names lists the tensors in data order.
func (f *File) Names() []string { return f.names }

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (Tensor, bool) {
	t, ok := f.tensors[name]
	return t, ok
}

// Close releases the mapping; tensors obtained from f must no longer be used.
func (f *File) Close() error {
	if f.release == nil {
		return nil
	}
	err := f.release()
	f.release, f.data, f.tensors = nil, nil, nil
	return err
}

// ErrNotFound is wrapped by the errors of Set.Tensor for absent names.
var ErrNotFound = errors.New("tensor not found")

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Float32s views an F32 tensor as []float32 without copying when the data is
// aligned (it always is for files written by the usual tools), else copies.
func (t Tensor) Float32s() ([]float32, error) {
	if t.DType != F32 {
		return nil, fmt.Errorf("tensor %q is %s, not F32", t.Name, t.DType)
	}
	n := len(t.Data) / 4
	if n == 0 {
		return []float32{}, nil
	}
	if littleEndian && uintptr(unsafe.Pointer(&t.Data[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&t.Data[0])), n), nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

// Floats reads a float tensor (F32, F16 or BF16) as a new float32 slice,
// for tensors small enough to copy (norms, biases, scales) and conversions.
func (t Tensor) Floats() ([]float32, error) {
	switch t.DType {
	case F32:
		v, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		return append([]float32(nil), v...), nil
	case F16, BF16:
		h, err := t.Uint16s()
		if err != nil {
			return nil, err
		}
		conv := quant.F16ToF32
		if t.DType == BF16 {
			conv = quant.BF16ToF32
		}
		out := make([]float32, len(h))
		for i, x := range h {
			out[i] = conv(x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor %q: dtype %s is not a float type", t.Name, t.DType)
}

// Uint16s views a 2-byte tensor (F16, BF16, U16, I16) as raw uint16 words.
func (t Tensor) Uint16s() ([]uint16, error) {
	if t.DType.Size() != 2 {
		return nil, fmt.Errorf("tensor %q is %s, not a 2-byte type", t.Name, t.DType)
	}
	n := len(t.Data) / 2
	if n == 0 {
		return []uint16{}, nil
	}
	if littleEndian && uintptr(unsafe.Pointer(&t.Data[0]))%2 == 0 {
		return unsafe.Slice((*uint16)(unsafe.Pointer(&t.Data[0])), n), nil
	}
	out := make([]uint16, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(t.Data[2*i:])
	}
	return out, nil
}

// Uint32s views a 4-byte integer tensor (U32, I32) as raw uint32 words.
func (t Tensor) Uint32s() ([]uint32, error) {
	if t.DType != U32 && t.DType != I32 {
		return nil, fmt.Errorf("tensor %q is %s, not U32", t.Name, t.DType)
	}
	n := len(t.Data) / 4
	if n == 0 {
		return []uint32{}, nil
	}
	if littleEndian && uintptr(unsafe.Pointer(&t.Data[0]))%4 == 0 {
		return unsafe.Slice((*uint32)(unsafe.Pointer(&t.Data[0])), n), nil
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(t.Data[4*i:])
	}
	return out, nil
}

// readAll is the fallback where mmap is unavailable.
func readAll(path string) ([]byte, func() error, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
