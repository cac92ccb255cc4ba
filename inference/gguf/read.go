package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"unicode/utf8"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// maxArrayDepth bounds nested arrays so a hostile file cannot exhaust the stack.
const maxArrayDepth = 16

// Open maps path read-only and parses it. Close the File when done.
func Open(path string) (*File, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	f, err := parse(data, path)
	if err != nil {
		if unmap != nil {
			_ = unmap()
		}
		return nil, err
	}
	f.unmap = unmap
	return f, nil
}

// Parse parses a GGUF file held in memory. The File keeps data (tensor
// slices alias it).
func Parse(data []byte) (*File, error) { return parse(data, "") }

// decoder walks the header; every read checks the remaining length first.
type decoder struct {
	buf []byte
	pos uint64
}

var errShort = errors.New("unexpected end of file")

func (d *decoder) remaining() uint64 { return uint64(len(d.buf)) - d.pos }

func (d *decoder) take(n uint64) ([]byte, error) {
	if n > d.remaining() {
		return nil, fmt.Errorf("%w at offset %d (need %d bytes, %d left)", errShort, d.pos, n, d.remaining())
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

func (d *decoder) u8() (uint8, error) {
	b, err := d.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (d *decoder) u16() (uint16, error) {
	b, err := d.take(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (d *decoder) str() (string, error) {
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > d.remaining() {
		return "", fmt.Errorf("string of %d bytes at offset %d runs past the end of the file (%d bytes left)", n, d.pos-8, d.remaining())
	}
	b, _ := d.take(n)
	return string(b), nil
}

// count reads an element count and checks that count items of at least
// minSize bytes each can fit in what is left, before anything is allocated.
func (d *decoder) count(what string, minSize int) (uint64, error) {
	n, err := d.u64()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if err := d.fits(what, n, minSize); err != nil {
		return 0, err
	}
	return n, nil
}

func (d *decoder) fits(what string, n uint64, minSize int) error {
	if minSize > 0 && n > d.remaining()/uint64(minSize) {
		return fmt.Errorf("%s %d is impossible: %d bytes left, each needs at least %d", what, n, d.remaining(), minSize)
	}
	return nil
}

func parse(data []byte, name string) (*File, error) {
	f, err := parseHeader(data, name)
	if err != nil {
		label := name
		if label == "" {
			label = "data"
		}
		return nil, fmt.Errorf("gguf %s: %w", label, err)
	}
	return f, nil
}

func parseHeader(data []byte, name string) (*File, error) {
	d := &decoder{buf: data}
	magic, err := d.take(4)
	if err != nil {
		return nil, fmt.Errorf("not a GGUF file: %w", err)
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("not a GGUF file: magic %q, want %q", magic, Magic)
	}
	version, err := d.u32()
	if err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	switch {
	case version == 1:
		return nil, errors.New("GGUF version 1 is not supported (it used 32-bit counts); convert the model again with a current tool")
	case version == 2 || version == 3:
	case bits.ReverseBytes32(version) == 2 || bits.ReverseBytes32(version) == 3:
		return nil, fmt.Errorf("big-endian GGUF (version %d) is not supported", bits.ReverseBytes32(version))
	default:
		return nil, fmt.Errorf("unsupported GGUF version %d (want 2 or 3)", version)
	}
	f := &File{name: name, Version: version, data: data, Alignment: DefaultAlignment}

	nTensors, err := d.u64()
	if err != nil {
		return nil, fmt.Errorf("tensor count: %w", err)
	}
	nKV, err := d.u64()
	if err != nil {
		return nil, fmt.Errorf("metadata count: %w", err)
	}
	if err := d.fits("metadata count", nKV, 8+4+1); err != nil {
		return nil, err
	}
	if err := d.fits("tensor count", nTensors, 8+4+4+8); err != nil {
		return nil, err
	}

	f.kvs = make([]KV, 0, nKV)
	f.kvIndex = make(map[string]int, nKV)
	for i := range nKV {
		kv, err := d.kv()
		if err != nil {
			if kv.Key != "" {
				return nil, fmt.Errorf("metadata %q: %w", kv.Key, err)
			}
			return nil, fmt.Errorf("metadata pair %d: %w", i, err)
		}
		if _, dup := f.kvIndex[kv.Key]; dup {
			return nil, fmt.Errorf("metadata %q appears twice", kv.Key)
		}
		f.kvIndex[kv.Key] = len(f.kvs)
		f.kvs = append(f.kvs, kv)
	}
	if kv, ok := f.Lookup("general.alignment"); ok {
		a, isInt := asUint(kv.Value)
		if !isInt || kv.Type == TypeBool {
			return nil, fmt.Errorf("metadata \"general.alignment\" has type %s, want an unsigned integer", kv.Type)
		}
		if a == 0 || a&(a-1) != 0 || a > 1<<30 {
			return nil, fmt.Errorf("metadata \"general.alignment\" = %d is not a power of two up to 2^30", a)
		}
		f.Alignment = a
	}

	if err := d.fits("tensor count", nTensors, 8+4+4+8); err != nil {
		return nil, err
	}
	f.tensors = make([]TensorInfo, 0, nTensors)
	f.tIndex = make(map[string]int, nTensors)
	for i := range nTensors {
		ti, err := d.tensorInfo()
		if err != nil {
			if ti.Name != "" {
				return nil, fmt.Errorf("tensor %q: %w", ti.Name, err)
			}
			return nil, fmt.Errorf("tensor %d: %w", i, err)
		}
		if _, dup := f.tIndex[ti.Name]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", ti.Name)
		}
		f.tIndex[ti.Name] = len(f.tensors)
		f.tensors = append(f.tensors, ti)
	}

	// The data section starts at the next multiple of the alignment.
	f.DataOffset = (d.pos + f.Alignment - 1) / f.Alignment * f.Alignment
	var dataLen uint64
	if f.DataOffset <= uint64(len(data)) {
		dataLen = uint64(len(data)) - f.DataOffset
	}
	for _, ti := range f.tensors {
		if ti.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", ti.Name, ti.Offset, f.Alignment)
		}
		if ti.Offset > dataLen || ti.Size > dataLen-ti.Offset {
			return nil, fmt.Errorf("tensor %q: bytes [%d, %d) of the data section run past its end (%d bytes; file truncated?)", ti.Name, ti.Offset, ti.Offset+ti.Size, dataLen)
		}
	}
	order := sortedByOffset(f.tensors)
	for k := 1; k < len(order); k++ {
		prev, cur := f.tensors[order[k-1]], f.tensors[order[k]]
		if cur.Offset < prev.Offset+prev.Size {
			return nil, fmt.Errorf("tensor %q at offset %d overlaps tensor %q [%d, %d)", cur.Name, cur.Offset, prev.Name, prev.Offset, prev.Offset+prev.Size)
		}
	}
	return f, nil
}

// kv reads one key-value pair; on error the returned KV carries the key if it
// was read, so the caller can name it.
func (d *decoder) kv() (KV, error) {
	key, err := d.str()
	if err != nil {
		return KV{}, fmt.Errorf("key: %w", err)
	}
	kv := KV{Key: key}
	if key == "" {
		return kv, errors.New("empty key")
	}
	if !utf8.ValidString(key) {
		return KV{}, fmt.Errorf("key %q is not valid UTF-8", key)
	}
	t, err := d.u32()
	if err != nil {
		return kv, fmt.Errorf("value type: %w", err)
	}
	kv.Type = ValueType(t)
	kv.Value, err = d.value(kv.Type, 0)
	return kv, err
}

func (d *decoder) value(t ValueType, depth int) (any, error) {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		v, err := d.u8()
		return int8(v), err
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		v, err := d.u16()
		return int16(v), err
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		v, err := d.u32()
		return int32(v), err
	case TypeFloat32:
		v, err := d.u32()
		return math.Float32frombits(v), err
	case TypeBool:
		v, err := d.u8()
		if err != nil {
			return nil, err
		}
		if v > 1 {
			return nil, fmt.Errorf("bool byte %d is neither 0 nor 1", v)
		}
		return v == 1, nil
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		v, err := d.u64()
		return int64(v), err
	case TypeFloat64:
		v, err := d.u64()
		return math.Float64frombits(v), err
	case TypeArray:
		et, err := d.u32()
		if err != nil {
			return nil, fmt.Errorf("array element type: %w", err)
		}
		return d.array(ValueType(et), depth+1)
	}
	return nil, fmt.Errorf("unknown value type %d", uint32(t))
}

func (d *decoder) array(et ValueType, depth int) (any, error) {
	if depth > maxArrayDepth {
		return nil, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	if et > TypeFloat64 {
		return nil, fmt.Errorf("unknown array element type %d", uint32(et))
	}
	n, err := d.count("array length", et.minSize())
	if err != nil {
		return nil, err
	}
	if size := et.fixedSize(); size > 0 {
		raw, _ := d.take(n * uint64(size)) // fits() checked the length
		return decodeFixed(et, raw, int(n))
	}
	switch et {
	case TypeString:
		out := make([]string, n)
		for i := range out {
			if out[i], err = d.str(); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return out, nil
	default: // nested array
		out := make([]any, n)
		for i := range out {
			sub, err := d.u32()
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			if out[i], err = d.array(ValueType(sub), depth+1); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return out, nil
	}
}

func decodeFixed(et ValueType, raw []byte, n int) (any, error) {
	le := binary.LittleEndian
	switch et {
	case TypeUint8:
		return append([]uint8(nil), raw...), nil
	case TypeInt8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out, nil
	case TypeBool:
		out := make([]bool, n)
		for i := range out {
			if raw[i] > 1 {
				return nil, fmt.Errorf("element %d: bool byte %d is neither 0 nor 1", i, raw[i])
			}
			out[i] = raw[i] == 1
		}
		return out, nil
	case TypeUint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(raw[2*i:])
		}
		return out, nil
	case TypeInt16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(raw[2*i:]))
		}
		return out, nil
	case TypeUint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(raw[4*i:])
		}
		return out, nil
	case TypeInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case TypeFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case TypeUint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(raw[8*i:])
		}
		return out, nil
	case TypeInt64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		return out, nil
	case TypeFloat64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown array element type %d", uint32(et))
}

// tensorInfo reads one tensor-table entry and computes its size; on error the
// returned info carries the name if it was read.
func (d *decoder) tensorInfo() (TensorInfo, error) {
	name, err := d.str()
	if err != nil {
		return TensorInfo{}, fmt.Errorf("name: %w", err)
	}
	ti := TensorInfo{Name: name}
	if name == "" {
		return ti, errors.New("empty tensor name")
	}
	if len(name) > MaxTensorName {
		return ti, fmt.Errorf("name is %d bytes, longer than the limit of %d", len(name), MaxTensorName)
	}
	nDims, err := d.u32()
	if err != nil {
		return ti, fmt.Errorf("n_dims: %w", err)
	}
	if nDims > MaxDims {
		return ti, fmt.Errorf("n_dims %d exceeds %d", nDims, MaxDims)
	}
	ti.Dims = make([]uint64, nDims)
	for i := range ti.Dims {
		if ti.Dims[i], err = d.u64(); err != nil {
			return ti, fmt.Errorf("dim %d: %w", i, err)
		}
	}
	t, err := d.u32()
	if err != nil {
		return ti, fmt.Errorf("type: %w", err)
	}
	ti.Type = GGMLType(t)
	if ti.Offset, err = d.u64(); err != nil {
		return ti, fmt.Errorf("offset: %w", err)
	}
	ti.Size, err = tensorSize(ti.Type, ti.Dims)
	return ti, err
}

// tensorSize is ne[0]/block × type_size × ne[1] × ne[2] × ne[3], checked for
// overflow (the result must fit in an int64, as ggml sizes do).
func tensorSize(t GGMLType, dims []uint64) (uint64, error) {
	if !t.Known() {
		return 0, fmt.Errorf("unknown ggml type %d", uint32(t))
	}
	ne0 := uint64(1)
	if len(dims) > 0 {
		ne0 = dims[0]
	}
	size, err := t.RowBytes(ne0)
	if err != nil {
		return 0, fmt.Errorf("dims %v: %w", dims, err)
	}
	for _, n := range dims[min(1, len(dims)):] {
		hi, lo := bits.Mul64(size, n)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("dims %v of %s overflow the size", dims, t)
		}
		size = lo
	}
	// Each dim and the element count must fit in an int64, as in ggml.
	elems := uint64(1)
	for _, n := range dims {
		hi, lo := bits.Mul64(elems, n)
		if n > math.MaxInt64 || hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("dims %v overflow the element count", dims)
		}
		elems = lo
	}
	return size, nil
}

// readFile is the fallback when mapping is unavailable.
func readFile(path string) ([]byte, func() error, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return b, nil, nil
}
