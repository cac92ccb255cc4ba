package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Writer builds a GGUF v3 file: metadata pairs and tensors in the order they
// are added, tensor data padded to the alignment (general.alignment if set as
// an unsigned integer, else 32).
type Writer struct {
	kvs     []KV
	kvIndex map[string]int
	tensors []writerTensor
	tIndex  map[string]bool
}

type writerTensor struct {
	info  TensorInfo
	data  []byte
	write func(io.Writer) error // streams the data instead, when set
}

// NewWriter returns an empty writer.
func NewWriter() *Writer {
	return &Writer{kvIndex: map[string]int{}, tIndex: map[string]bool{}}
}

// SetKV sets key to value, replacing an earlier value. The GGUF type follows the
// Go type: uint8, int8, uint16, int16, uint32, int32, float32, bool, string,
// uint64, int64, float64, a slice of one of those, or []any of such slices (an
// array of arrays).
func (w *Writer) SetKV(key string, value any) error {
	if key == "" {
		return errors.New("gguf writer: empty key")
	}
	t, err := valueTypeOf(value, 0)
	if err != nil {
		return fmt.Errorf("gguf writer: metadata %q: %w", key, err)
	}
	if key == "general.alignment" {
		a, ok := asUint(value)
		if !ok || a == 0 || a&(a-1) != 0 || a > 1<<30 {
			return fmt.Errorf("gguf writer: general.alignment %v must be a power of two up to 2^30", value)
		}
	}
	kv := KV{Key: key, Type: t, Value: value}
	if i, ok := w.kvIndex[key]; ok {
		w.kvs[i] = kv
		return nil
	}
	w.kvIndex[key] = len(w.kvs)
	w.kvs = append(w.kvs, kv)
	return nil
}

// AddTensor appends a tensor. dims are in ggml order (dims[0] is the row
// length); data must be exactly the size implied by dims and typ. The writer
// keeps data until WriteTo.
func (w *Writer) AddTensor(name string, typ GGMLType, dims []uint64, data []byte) error {
	info, err := w.checkTensor(name, typ, dims)
	if err != nil {
		return err
	}
	if uint64(len(data)) != info.Size {
		return fmt.Errorf("gguf writer: tensor %q: %d bytes of data, dims %v of %s need %d", name, len(data), dims, typ, info.Size)
	}
	w.tIndex[name] = true
	w.tensors = append(w.tensors, writerTensor{info: info, data: data})
	return nil
}

// AddTensorFunc appends a tensor whose bytes write produces during WriteTo, so
// a converter need not hold every tensor in memory. write must emit exactly
// the size implied by dims and typ.
func (w *Writer) AddTensorFunc(name string, typ GGMLType, dims []uint64, write func(io.Writer) error) error {
	info, err := w.checkTensor(name, typ, dims)
	if err != nil {
		return err
	}
	if write == nil {
		return fmt.Errorf("gguf writer: tensor %q: nil write function", name)
	}
	w.tIndex[name] = true
	w.tensors = append(w.tensors, writerTensor{info: info, write: write})
	return nil
}

func (w *Writer) checkTensor(name string, typ GGMLType, dims []uint64) (TensorInfo, error) {
	switch {
	case name == "":
		return TensorInfo{}, errors.New("gguf writer: empty tensor name")
	case len(name) > MaxTensorName:
		return TensorInfo{}, fmt.Errorf("gguf writer: tensor %q: name longer than %d bytes", name, MaxTensorName)
	case len(dims) > MaxDims:
		return TensorInfo{}, fmt.Errorf("gguf writer: tensor %q: %d dims, at most %d", name, len(dims), MaxDims)
	case w.tIndex[name]:
		return TensorInfo{}, fmt.Errorf("gguf writer: tensor %q added twice", name)
	}
	size, err := tensorSize(typ, dims)
	if err != nil {
		return TensorInfo{}, fmt.Errorf("gguf writer: tensor %q: %w", name, err)
	}
	return TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: typ, Size: size}, nil
}

func (w *Writer) alignment() uint64 {
	if i, ok := w.kvIndex["general.alignment"]; ok {
		a, _ := asUint(w.kvs[i].Value)
		return a
	}
	return DefaultAlignment
}

// WriteFile writes the file to path (created or truncated).
func (w *Writer) WriteFile(path string) error {
	fd, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("gguf writer: %w", err)
	}
	if _, err := w.WriteTo(fd); err != nil {
		fd.Close()
		return fmt.Errorf("gguf writer %s: %w", path, err)
	}
	if err := fd.Close(); err != nil {
		return fmt.Errorf("gguf writer %s: %w", path, err)
	}
	return nil
}

// WriteTo writes the whole file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	cw := &countWriter{w: bufio.NewWriterSize(out, 1<<20)}
	e := encoder{w: cw}
	align := w.alignment()
	e.raw([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Type))
		e.value(kv.Value)
	}
	offset := uint64(0)
	for i := range w.tensors {
		t := &w.tensors[i].info
		t.Offset = offset
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(t.Offset)
		offset = alignUp(offset+t.Size, align)
	}
	if len(w.tensors) > 0 { // a metadata-only file ends after the header, unpadded
		e.pad(align)
	}
	for _, t := range w.tensors {
		if t.write != nil && e.err == nil {
			start := cw.n
			if err := t.write(cw); err != nil {
				return cw.n, fmt.Errorf("tensor %q: %w", t.info.Name, err)
			}
			if got := uint64(cw.n - start); got != t.info.Size {
				return cw.n, fmt.Errorf("tensor %q: wrote %d bytes, want %d", t.info.Name, got, t.info.Size)
			}
		} else {
			e.raw(t.data)
		}
		e.pad(align)
	}
	if e.err == nil {
		e.err = cw.w.(*bufio.Writer).Flush()
	}
	return cw.n, e.err
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoder writes little-endian values, remembering the first error.
type encoder struct {
	w   *countWriter
	err error
	buf [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) pad(align uint64) {
	if r := uint64(e.w.n) % align; r != 0 {
		e.raw(make([]byte, align-r))
	}
}

func (e *encoder) u8(v uint8) { e.buf[0] = v; e.raw(e.buf[:1]) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.raw(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.raw(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.raw(e.buf[:8])
}
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// value writes v, whose type valueTypeOf has already accepted.
func (e *encoder) value(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		e.u8(boolByte(x))
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	default:
		e.array(v)
	}
}

func (e *encoder) array(v any) {
	et, n := arrayInfo(v)
	e.u32(uint32(et))
	e.u64(uint64(n))
	switch x := v.(type) {
	case []uint8:
		e.raw(x)
	case []int8:
		for _, y := range x {
			e.u8(uint8(y))
		}
	case []uint16:
		for _, y := range x {
			e.u16(y)
		}
	case []int16:
		for _, y := range x {
			e.u16(uint16(y))
		}
	case []uint32:
		for _, y := range x {
			e.u32(y)
		}
	case []int32:
		for _, y := range x {
			e.u32(uint32(y))
		}
	case []float32:
		for _, y := range x {
			e.u32(math.Float32bits(y))
		}
	case []bool:
		for _, y := range x {
			e.u8(boolByte(y))
		}
	case []string:
		for _, y := range x {
			e.str(y)
		}
	case []uint64:
		for _, y := range x {
			e.u64(y)
		}
	case []int64:
		for _, y := range x {
			e.u64(uint64(y))
		}
	case []float64:
		for _, y := range x {
			e.u64(math.Float64bits(y))
		}
	case []any:
		for _, y := range x {
			e.array(y)
		}
	}
}

// arrayInfo returns the element type and length of an array value.
func arrayInfo(v any) (ValueType, int) {
	switch x := v.(type) {
	case []uint8:
		return TypeUint8, len(x)
	case []int8:
		return TypeInt8, len(x)
	case []uint16:
		return TypeUint16, len(x)
	case []int16:
		return TypeInt16, len(x)
	case []uint32:
		return TypeUint32, len(x)
	case []int32:
		return TypeInt32, len(x)
	case []float32:
		return TypeFloat32, len(x)
	case []bool:
		return TypeBool, len(x)
	case []string:
		return TypeString, len(x)
	case []uint64:
		return TypeUint64, len(x)
	case []int64:
		return TypeInt64, len(x)
	case []float64:
		return TypeFloat64, len(x)
	case []any:
		return TypeArray, len(x)
	}
	return 0, -1
}

// valueTypeOf maps a Go value to its GGUF type, checking nested arrays.
func valueTypeOf(v any, depth int) (ValueType, error) {
	switch v.(type) {
	case uint8:
		return TypeUint8, nil
	case int8:
		return TypeInt8, nil
	case uint16:
		return TypeUint16, nil
	case int16:
		return TypeInt16, nil
	case uint32:
		return TypeUint32, nil
	case int32:
		return TypeInt32, nil
	case float32:
		return TypeFloat32, nil
	case bool:
		return TypeBool, nil
	case string:
		return TypeString, nil
	case uint64:
		return TypeUint64, nil
	case int64:
		return TypeInt64, nil
	case float64:
		return TypeFloat64, nil
	}
	if depth >= maxArrayDepth {
		return 0, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	if _, n := arrayInfo(v); n < 0 {
		return 0, fmt.Errorf("unsupported value type %T", v)
	}
	if elems, ok := v.([]any); ok {
		for i, x := range elems {
			if _, n := arrayInfo(x); n < 0 {
				return 0, fmt.Errorf("array element %d: %T is not an array", i, x)
			}
			if _, err := valueTypeOf(x, depth+1); err != nil {
				return 0, fmt.Errorf("array element %d: %w", i, err)
			}
		}
	}
	return TypeArray, nil
}
