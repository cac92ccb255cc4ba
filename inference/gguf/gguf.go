// Package gguf reads and writes GGUF model files (versions 2 and 3): the
// key-value metadata, the tensor table and the tensor bytes. The reader maps the
// file read-only and validates every count, length and offset against the file
// size before using it, so a corrupt or hostile file gives an error, never a
// panic or a huge allocation.
package gguf

import (
	"fmt"
	"math"
	"sort"

	"github.com/impetusllm/impetus/inference/pages"
	"github.com/impetusllm/impetus/inference/quant"
)

// GGMLType is the tensor element type; the definition (ids, block geometry)
// is shared with the dequantizers in package quant.
type GGMLType = quant.GGMLType

// ValueType is the type tag of a metadata value.
type ValueType uint32

// The GGUF metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// fixedSize is the encoded size of a scalar type, 0 for string and array.
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// minSize is the smallest possible encoding of a value of type t, used to
// reject element counts that cannot fit in the remaining bytes.
func (t ValueType) minSize() int {
	switch t {
	case TypeString:
		return 8
	case TypeArray:
		return 12
	}
	return t.fixedSize()
}

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// MaxTensorName is the longest tensor name the format allows, in bytes.
const MaxTensorName = 64

// MaxDims is the largest number of dimensions a tensor may have.
const MaxDims = 4

// KV is one metadata pair. Value holds the Go form of the value: uint8, int8,
// uint16, int16, uint32, int32, float32, bool, string, uint64, int64, float64,
// or for arrays a typed slice of those ([]string, []float32, []int32, ...);
// an array of arrays is a []any whose elements are themselves such slices.
type KV struct {
	Key   string
	Type  ValueType
	Value any
}

// TensorInfo describes one tensor. Dims[0] is the fastest-varying dimension
// (ggml ne[0], the row length), so a PyTorch [out, in] weight has Dims [in, out].
// Offset is relative to the start of the data section; Size is in bytes.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   GGMLType
	Offset uint64
	Size   uint64
}

// Elements returns the number of elements (the product of Dims).
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// File is a parsed GGUF file. Tensor data slices returned by TensorData alias
// the file's memory and stay valid until Close.
type File struct {
	name       string // for error messages; empty for Parse
	Version    uint32
	Alignment  uint64
	DataOffset uint64 // absolute file offset of the data section

	kvs     []KV
	kvIndex map[string]int
	tensors []TensorInfo
	tIndex  map[string]int

	data  []byte
	unmap func() error
}

// Close releases the file mapping. Slices from TensorData must not be used after.
func (f *File) Close() error {
	if f.unmap == nil {
		f.data = nil
		return nil
	}
	err := f.unmap()
	f.unmap = nil
	f.data = nil
	if err != nil {
		return fmt.Errorf("gguf %s: unmap: %w", f.name, err)
	}
	return nil
}

// Keys returns the metadata keys in file order.
func (f *File) Keys() []string {
	keys := make([]string, len(f.kvs))
	for i, kv := range f.kvs {
		keys[i] = kv.Key
	}
	return keys
}

// KVs returns the metadata pairs in file order.
func (f *File) KVs() []KV { return f.kvs }

// Lookup returns the pair stored under key.
func (f *File) Lookup(key string) (KV, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return KV{}, false
	}
	return f.kvs[i], true
}

// Value returns the Go form of the value under key (see KV).
func (f *File) Value(key string) (any, bool) {
	kv, ok := f.Lookup(key)
	return kv.Value, ok
}

// String returns a string value.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Value(key)
	s, ok := v.(string)
	return s, ok
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Value(key)
	b, ok := v.(bool)
	return b, ok
}

// Uint returns an integer value of any integer type, if it is not negative.
// Writers disagree on the width of counts and ids, so any width is accepted.
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Value(key)
	return asUint(v)
}

// Int returns an integer value of any integer type, if it fits in an int64.
func (f *File) Int(key string) (int64, bool) {
	v, _ := f.Value(key)
	return asInt(v)
}

// Float returns a float32 or float64 value (integers are converted too).
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Value(key)
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := asInt(v); ok {
		return float64(i), true
	}
	if u, ok := asUint(v); ok {
		return float64(u), true
	}
	return 0, false
}

// Strings returns a string array.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Value(key)
	s, ok := v.([]string)
	return s, ok
}

// Float32s returns a float32 array.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, _ := f.Value(key)
	s, ok := v.([]float32)
	return s, ok
}

// Int32s returns an array of any integer type whose values all fit in int32
// (token types are int32 in most files, but not all writers agree).
func (f *File) Int32s(key string) ([]int32, bool) {
	v, _ := f.Value(key)
	if s, ok := v.([]int32); ok {
		return s, true
	}
	return convertInts(v, math.MinInt32, math.MaxInt32, func(x int64) int32 { return int32(x) })
}

func convertInts[T any](v any, lo, hi int64, conv func(int64) T) ([]T, bool) {
	var n int
	var at func(int) (int64, bool)
	switch s := v.(type) {
	case []uint8:
		n, at = len(s), func(i int) (int64, bool) { return int64(s[i]), true }
	case []int8:
		n, at = len(s), func(i int) (int64, bool) { return int64(s[i]), true }
	case []uint16:
		n, at = len(s), func(i int) (int64, bool) { return int64(s[i]), true }
	case []int16:
		n, at = len(s), func(i int) (int64, bool) { return int64(s[i]), true }
	case []uint32:
		n, at = len(s), func(i int) (int64, bool) { return int64(s[i]), true }
	case []int32:
		n, at = len(s), func(i int) (int64, bool) { return int64(s[i]), true }
	case []uint64:
		n, at = len(s), func(i int) (int64, bool) { return int64(s[i]), s[i] <= math.MaxInt64 }
	case []int64:
		n, at = len(s), func(i int) (int64, bool) { return s[i], true }
	default:
		return nil, false
	}
	out := make([]T, n)
	for i := range n {
		x, ok := at(i)
		if !ok || x < lo || x > hi {
			return nil, false
		}
		out[i] = conv(x)
	}
	return out, true
}

func asUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}

// Architecture returns general.architecture (e.g. "llama"), or "" if absent.
func (f *File) Architecture() string {
	s, _ := f.String("general.architecture")
	return s
}

// Tensors returns the tensor table in file order.
func (f *File) Tensors() []TensorInfo { return f.tensors }

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tIndex[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.tensors[i], true
}

// TensorData returns the bytes of the named tensor without copying; they alias
// the mapped file (read-only memory) and are valid until Close.
func (f *File) TensorData(name string) ([]byte, TensorInfo, error) {
	ti, ok := f.Tensor(name)
	if !ok {
		return nil, TensorInfo{}, fmt.Errorf("gguf %s: no tensor %q", f.label(), name)
	}
	if f.data == nil {
		return nil, ti, fmt.Errorf("gguf %s: file is closed", f.label())
	}
	start := f.DataOffset + ti.Offset // validated at parse time
	return f.data[start : start+ti.Size : start+ti.Size], ti, nil
}

// Release gives back the resident pages of the named tensor's data, for a
// tensor the caller has copied (repacked) and no longer reads: they stop
// counting in the process's memory, and a later read of TensorData maps
// them in again from the file. It returns the bytes released: none when the
// file was read into memory instead of mapped, or the tensor is unknown.
func (f *File) Release(name string) int64 {
	if f.unmap == nil {
		return 0 // Parse, or the read fallback: heap memory, never released
	}
	data, _, err := f.TensorData(name)
	if err != nil {
		return 0
	}
	return int64(pages.Release(data))
}

// TensorFloat32 decodes the named tensor to float32 (F32, F16, BF16 and the
// block types quant.DequantizeGGML knows), in ggml element order.
func (f *File) TensorFloat32(name string) ([]float32, TensorInfo, error) {
	data, ti, err := f.TensorData(name)
	if err != nil {
		return nil, ti, err
	}
	n := ti.Elements()
	if n > uint64(len(data))*8 { // every type uses at least 1 bit per element
		return nil, ti, fmt.Errorf("gguf %s: tensor %q: %d elements in %d bytes", f.label(), name, n, len(data))
	}
	out := make([]float32, n)
	if err := quant.DequantizeGGML(ti.Type, data, out); err != nil {
		return nil, ti, fmt.Errorf("gguf %s: tensor %q: %w", f.label(), name, err)
	}
	return out, ti, nil
}

func (f *File) label() string {
	if f.name == "" {
		return "data"
	}
	return f.name
}

// sortedByOffset returns tensor indexes ordered by offset, for overlap checks.
func sortedByOffset(ts []TensorInfo) []int {
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ts[idx[a]].Offset < ts[idx[b]].Offset })
	return idx
}
