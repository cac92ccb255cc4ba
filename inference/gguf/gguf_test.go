package gguf

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/testutil"
)

func TestTinyLlama(t *testing.T) {
	path := testutil.SharedPath(t, "assets", "gguf-model", "llama-2-tiny-random.gguf")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Version != 3 || f.Alignment != 32 || f.DataOffset != 724416 {
		t.Errorf("version %d alignment %d data offset %d, want 3 32 724416", f.Version, f.Alignment, f.DataOffset)
	}
	if got := f.Architecture(); got != "llama" {
		t.Errorf("architecture %q", got)
	}
	if n := len(f.Tensors()); n != 12 {
		t.Errorf("%d tensors, want 12", n)
	}
	if v, ok := f.Uint("llama.embedding_length"); !ok || v != 8 {
		t.Errorf("embedding_length %d %v", v, ok)
	}
	if v, ok := f.Int("llama.attention.head_count"); !ok || v != 2 {
		t.Errorf("head_count %d %v", v, ok)
	}
	if v, ok := f.Float("llama.attention.layer_norm_rms_epsilon"); !ok || float32(v) != 1e-5 {
		t.Errorf("rms eps %v %v", v, ok)
	}
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) != 32000 || toks[1] != "<s>" || toks[3] != "<0x00>" {
		t.Errorf("tokens: ok %v len %d", ok, len(toks))
	}
	types, ok := f.Int32s("tokenizer.ggml.token_type")
	if !ok || len(types) != 32000 || types[0] != 2 || types[1] != 3 || types[3] != 6 {
		t.Errorf("token types: ok %v len %d", ok, len(types))
	}
	if scores, ok := f.Float32s("tokenizer.ggml.scores"); !ok || len(scores) != 32000 {
		t.Errorf("scores: ok %v len %d", ok, len(scores))
	}
	if _, ok := f.String("llama.embedding_length"); ok {
		t.Error("String accepted a uint32")
	}

	data, ti, err := f.TensorData("token_embd.weight")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ti.Dims, []uint64{8, 32000}) || ti.Type != quant.GGMLF16 || ti.Size != 8*32000*2 || len(data) != int(ti.Size) {
		t.Errorf("token_embd.weight: %+v, %d bytes", ti, len(data))
	}
	norm, ti, err := f.TensorData("output_norm.weight")
	if err != nil {
		t.Fatal(err)
	}
	if ti.Type != quant.GGMLF32 || len(norm) != 32 {
		t.Errorf("output_norm.weight: %+v", ti)
	}
	for i := 0; i < 8; i++ {
		v := math.Float32frombits(binary.LittleEndian.Uint32(norm[4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Errorf("output_norm[%d] = %v", i, v)
		}
	}
	if _, _, err := f.TensorData("missing"); err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("missing tensor: %v", err)
	}
}

func TestVocabFiles(t *testing.T) {
	dir := testutil.SharedPath(t, "assets", "gguf-vocab")
	paths, _ := filepath.Glob(filepath.Join(dir, "*.gguf"))
	if len(paths) == 0 {
		t.Skip("no vocab GGUFs")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			toks, ok := f.Strings("tokenizer.ggml.tokens")
			if !ok || len(toks) == 0 {
				t.Fatal("no tokenizer.ggml.tokens")
			}
			if types, ok := f.Int32s("tokenizer.ggml.token_type"); !ok || len(types) != len(toks) {
				t.Errorf("token_type: ok %v, %d for %d tokens", ok, len(types), len(toks))
			}
			model, _ := f.String("tokenizer.ggml.model")
			switch model {
			case "llama":
				if s, ok := f.Float32s("tokenizer.ggml.scores"); !ok || len(s) != len(toks) {
					t.Errorf("scores: ok %v, %d", ok, len(s))
				}
			case "gpt2":
				if m, ok := f.Strings("tokenizer.ggml.merges"); !ok || len(m) == 0 {
					t.Error("no merges")
				}
			default:
				t.Errorf("tokenizer model %q", model)
			}
			if _, ok := f.Uint("tokenizer.ggml.bos_token_id"); !ok {
				t.Error("no bos_token_id")
			}
			if f.Architecture() == "" {
				t.Error("no architecture")
			}
		})
	}
}

// sampleWriter builds a file with every value type and a few tensors.
func sampleWriter(t testing.TB, align uint32) *Writer {
	w := NewWriter()
	kvs := []struct {
		k string
		v any
	}{
		{"general.architecture", "llama"},
		{"general.alignment", align},
		{"u8", uint8(200)}, {"i8", int8(-5)}, {"u16", uint16(60000)}, {"i16", int16(-30000)},
		{"u32", uint32(4000000000)}, {"i32", int32(-2000000000)}, {"f32", float32(1.5)},
		{"bool", true}, {"str", "héllo"}, {"empty", ""}, {"u64", uint64(1) << 63}, {"i64", int64(-1) << 62},
		{"f64", math.Pi},
		{"a.u8", []uint8{1, 2, 3}}, {"a.i8", []int8{-1, 2}}, {"a.u16", []uint16{7}}, {"a.i16", []int16{-7, 8}},
		{"a.u32", []uint32{1, 2}}, {"a.i32", []int32{-3, 4}}, {"a.f32", []float32{0.5, -2}},
		{"a.bool", []bool{true, false}}, {"a.str", []string{"a", "", "ccc"}}, {"a.u64", []uint64{9}},
		{"a.i64", []int64{-9}}, {"a.f64", []float64{2.25}}, {"a.empty", []string{}},
		{"a.nested", []any{[]int32{1, 2}, []string{"x"}, []any{[]float32{3}}, []any{}}},
	}
	for _, kv := range kvs {
		if err := w.SetKV(kv.k, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	f32 := make([]byte, 4*3*2)
	for i := range 6 {
		binary.LittleEndian.PutUint32(f32[4*i:], math.Float32bits(float32(i)))
	}
	q40 := make([]byte, 18*2*5)
	for i := range q40 {
		q40[i] = byte(i * 7)
	}
	must(t, w.AddTensor("a", quant.GGMLF32, []uint64{3, 2}, f32))
	must(t, w.AddTensor("b", quant.GGMLQ4_0, []uint64{64, 5}, q40))
	must(t, w.AddTensor("c", quant.GGMLF16, []uint64{1}, []byte{0, 0x3c}))
	must(t, w.AddTensor("empty", quant.GGMLF32, []uint64{0, 4}, nil))
	return w
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	for _, align := range []uint32{32, 64, 1} {
		w := sampleWriter(t, align)
		var buf bytes.Buffer
		n, err := w.WriteTo(&buf)
		must(t, err)
		if n != int64(buf.Len()) {
			t.Errorf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
		}
		f, err := Parse(buf.Bytes())
		must(t, err)
		if f.Alignment != uint64(align) || f.DataOffset%uint64(align) != 0 {
			t.Errorf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
		}
		if !reflect.DeepEqual(f.KVs(), w.kvs) {
			t.Errorf("align %d: metadata differs:\n got %#v\nwant %#v", align, f.KVs(), w.kvs)
		}
		if len(f.Tensors()) != len(w.tensors) {
			t.Fatalf("%d tensors, want %d", len(f.Tensors()), len(w.tensors))
		}
		for i, wt := range w.tensors {
			data, ti, err := f.TensorData(wt.info.Name)
			must(t, err)
			if !reflect.DeepEqual(ti, wt.info) || !bytes.Equal(data, wt.data) || !reflect.DeepEqual(f.Tensors()[i], ti) {
				t.Errorf("tensor %s: got %+v, want %+v", wt.info.Name, ti, wt.info)
			}
			if ti.Offset%uint64(align) != 0 {
				t.Errorf("tensor %s offset %d unaligned", ti.Name, ti.Offset)
			}
		}
	}
}

func TestOpenWrittenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.gguf")
	must(t, sampleWriter(t, 32).WriteFile(path))
	f, err := Open(path)
	must(t, err)
	data, _, err := f.TensorData("c")
	must(t, err)
	if !bytes.Equal(data, []byte{0, 0x3c}) {
		t.Errorf("tensor c = %x", data)
	}
	if s, _ := f.String("str"); s != "héllo" {
		t.Errorf("str = %q", s)
	}
	if v, ok := f.Uint("i8"); ok {
		t.Errorf("Uint accepted negative int8: %d", v)
	}
	if v, ok := f.Int("u64"); ok {
		t.Errorf("Int accepted 2^63: %d", v)
	}
	if v, ok := f.Uint("u16"); !ok || v != 60000 {
		t.Errorf("Uint(u16) = %d %v", v, ok)
	}
	if v, ok := f.Int("i16"); !ok || v != -30000 {
		t.Errorf("Int(i16) = %d %v", v, ok)
	}
	if v, ok := f.Float("f64"); !ok || v != math.Pi {
		t.Errorf("Float(f64) = %v", v)
	}
	if v, ok := f.Bool("bool"); !ok || !v {
		t.Errorf("Bool = %v %v", v, ok)
	}
	if v, ok := f.Int32s("a.u16"); !ok || !reflect.DeepEqual(v, []int32{7}) {
		t.Errorf("Int32s(a.u16) = %v %v", v, ok)
	}
	if _, ok := f.Int32s("a.u32"); !ok {
		t.Error("Int32s(a.u32) of small values failed")
	}
	if _, ok := f.Int32s("a.u64"); !ok {
		t.Error("Int32s(a.u64) of small values failed")
	}
	if _, ok := f.Int32s("a.f32"); ok {
		t.Error("Int32s accepted floats")
	}
	if keys := f.Keys(); keys[0] != "general.architecture" || len(keys) != len(f.KVs()) {
		t.Errorf("keys %v", keys)
	}
	must(t, f.Close())
	if _, _, err := f.TensorData("c"); err == nil {
		t.Error("TensorData after Close succeeded")
	}
}

func TestWriterRejects(t *testing.T) {
	w := NewWriter()
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"int kv", w.SetKV("x", 3), "unsupported value type int"},
		{"nested non-array", w.SetKV("x", []any{"s"}), "not an array"},
		{"alignment", w.SetKV("general.alignment", uint32(48)), "power of two"},
		{"size", w.AddTensor("t", quant.GGMLF32, []uint64{4}, make([]byte, 15)), "need 16"},
		{"block", w.AddTensor("t", quant.GGMLQ4_0, []uint64{48}, make([]byte, 36)), "whole number"},
		{"unknown", w.AddTensor("t", quant.GGMLType(4), []uint64{1}, nil), "unknown ggml type 4"},
		{"dims", w.AddTensor("t", quant.GGMLF32, []uint64{1, 1, 1, 1, 1}, make([]byte, 4)), "at most 4"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, c.err, c.want)
		}
	}
}

// raw builds GGUF bytes field by field, for files the Writer refuses to make.
type raw struct{ bytes.Buffer }

func (r *raw) u32(v uint32) *raw { binary.Write(&r.Buffer, binary.LittleEndian, v); return r }
func (r *raw) u64(v uint64) *raw { binary.Write(&r.Buffer, binary.LittleEndian, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }
func (r *raw) head(version uint32, tensors, kvs uint64) *raw {
	r.WriteString("GGUF")
	return r.u32(version).u64(tensors).u64(kvs)
}
func (r *raw) tensor(name string, typ uint32, offset uint64, dims ...uint64) *raw {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(typ).u64(offset)
}
func (r *raw) padded(size int) []byte {
	b := append([]byte(nil), r.Bytes()...)
	for len(b)%32 != 0 {
		b = append(b, 0)
	}
	return append(b, make([]byte, size)...)
}

func TestCorruptFiles(t *testing.T) {
	valid := func() []byte {
		var buf bytes.Buffer
		_, err := sampleWriter(t, 32).WriteTo(&buf)
		must(t, err)
		return buf.Bytes()
	}()
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a GGUF file"},
		{"magic", []byte("GGML\x03\x00\x00\x00"), "magic"},
		{"v1", new(raw).head(1, 0, 0).Bytes(), "version 1 is not supported"},
		{"v4", new(raw).head(4, 0, 0).Bytes(), "unsupported GGUF version 4"},
		{"big endian", append([]byte("GGUF"), 0, 0, 0, 3), "big-endian"},
		{"short counts", []byte("GGUF\x03\x00\x00\x00\x00"), "tensor count"},
		{"huge kv count", new(raw).head(3, 0, 1<<60).Bytes(), "metadata count"},
		{"huge tensor count", new(raw).head(3, 1<<40, 0).Bytes(), "tensor count"},
		{"long key", new(raw).head(3, 0, 1).u64(1 << 50).u64(0).u64(0).Bytes(), "runs past the end"},
		{"long string", new(raw).head(3, 0, 1).str("k").u32(8).u64(100).Bytes(), `metadata "k"`},
		{"bad value type", new(raw).head(3, 0, 1).str("k").u32(13).u64(0).Bytes(), "unknown value type 13"},
		{"bad bool", append(new(raw).head(3, 0, 1).str("k").u32(7).Bytes(), 2), "neither 0 nor 1"},
		{"huge array", new(raw).head(3, 0, 1).str("k").u32(9).u32(4).u64(1 << 62).Bytes(), "array length"},
		{"huge string array", new(raw).head(3, 0, 1).str("k").u32(9).u32(8).u64(100).u64(0).Bytes(), "array length 100 is impossible"},
		{"bad array type", new(raw).head(3, 0, 1).str("k").u32(9).u32(13).u64(0).Bytes(), "unknown array element type"},
		{"deep array", func() []byte {
			r := new(raw).head(3, 0, 1).str("k").u32(9)
			for range 20 {
				r.u32(9).u64(1)
			}
			return r.u32(4).u64(0).Bytes()
		}(), "nested deeper"},
		{"duplicate key", new(raw).head(3, 0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2).Bytes(), `"k" appears twice`},
		{"alignment type", new(raw).head(3, 0, 1).str("general.alignment").u32(8).str("x").Bytes(), "want an unsigned integer"},
		{"alignment value", new(raw).head(3, 0, 1).str("general.alignment").u32(4).u32(24).Bytes(), "power of two"},
		{"too many dims", new(raw).head(3, 1, 0).tensor("w", 0, 0, 1, 1, 1, 1, 1).padded(4), `tensor "w": n_dims 5`},
		{"unknown type", new(raw).head(3, 1, 0).tensor("w", 5, 0, 1).padded(4), `tensor "w": unknown ggml type 5`},
		{"partial block", new(raw).head(3, 1, 0).tensor("w", 2, 0, 48).padded(64), "whole number of Q4_0 blocks"},
		{"size overflow", new(raw).head(3, 1, 0).tensor("w", 0, 0, 1<<40, 1<<40).padded(4), "overflow"},
		{"long name", new(raw).head(3, 1, 0).tensor(strings.Repeat("n", 65), 0, 0, 1).padded(4), "longer than the limit"},
		{"duplicate tensor", new(raw).head(3, 2, 0).tensor("w", 0, 0, 1).tensor("w", 0, 32, 1).padded(64), `"w" appears twice`},
		{"unaligned", new(raw).head(3, 1, 0).tensor("w", 0, 4, 1).padded(64), "not a multiple of the alignment"},
		{"out of bounds", new(raw).head(3, 1, 0).tensor("w", 0, 32, 8).padded(40), "run past its end"},
		{"overlap", new(raw).head(3, 2, 0).tensor("a", 0, 0, 16).tensor("b", 0, 32, 1).padded(64), `"b" at offset 32 overlaps tensor "a"`},
		{"truncated tensor info", new(raw).head(3, 1, 0).str("w").u32(2).u64(4).u32(0).Bytes(), `tensor "w": dim 1`},
		{"truncated data", valid[:len(valid)-1], "run past its end"},
		{"truncated header", valid[:300], "metadata"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.data)
			if err == nil {
				t.Fatalf("parsed without error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "gguf data: ") {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestOpenNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.gguf")
	must(t, os.WriteFile(path, []byte("GGUF\x01\x00\x00\x00"), 0o644))
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v does not name %s", err, path)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "absent.gguf")); err == nil {
		t.Error("opened a missing file")
	}
}

func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	if _, err := sampleWriter(f, 32).WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(new(raw).head(3, 1, 0).tensor("w", 2, 0, 32, 2).padded(36))
	f.Add(new(raw).head(2, 0, 1).str("k").u32(9).u32(9).u64(1).u32(8).u64(1).str("s").Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		for _, k := range file.Keys() {
			file.Value(k)
			file.Uint(k)
			file.Int(k)
			file.Float(k)
			file.Int32s(k)
			file.Strings(k)
		}
		for _, ti := range file.Tensors() {
			b, _, err := file.TensorData(ti.Name)
			if err != nil || uint64(len(b)) != ti.Size {
				t.Fatalf("tensor %s: %d bytes, err %v", ti.Name, len(b), err)
			}
			if ti.Type.Dequantizable() && ti.Elements() <= 1<<16 {
				if _, _, err := file.TensorFloat32(ti.Name); err != nil {
					t.Fatalf("tensor %s: %v", ti.Name, err)
				}
			}
		}
	})
}

// TestRewriteIsIdentical re-encodes real files with the Writer: the metadata
// and tensors read back must produce the original bytes, which checks the
// writer's layout (order, padding, alignment) against the tools that made them.
func TestRewriteIsIdentical(t *testing.T) {
	model := testutil.SharedPath(t, "assets", "gguf-model", "llama-2-tiny-random.gguf")
	vocabs, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(model)), "gguf-vocab", "*.gguf"))
	for _, path := range append([]string{model}, vocabs...) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			orig, err := os.ReadFile(path)
			must(t, err)
			f, err := Parse(orig)
			must(t, err)
			w := NewWriter()
			for _, kv := range f.KVs() {
				must(t, w.SetKV(kv.Key, kv.Value))
			}
			for _, ti := range f.Tensors() {
				data, _, err := f.TensorData(ti.Name)
				must(t, err)
				must(t, w.AddTensor(ti.Name, ti.Type, ti.Dims, data))
			}
			var buf bytes.Buffer
			_, err = w.WriteTo(&buf)
			must(t, err)
			got := buf.Bytes()
			if !bytes.Equal(got, orig) {
				i := 0
				for i < min(len(got), len(orig)) && got[i] == orig[i] {
					i++
				}
				t.Errorf("rewrite differs: %d bytes vs %d, first difference at offset %d", len(got), len(orig), i)
			}
		})
	}
}

func TestTensorFloat32(t *testing.T) {
	path := testutil.SharedPath(t, "assets", "gguf-model", "llama-2-tiny-random.gguf")
	f, err := Open(path)
	must(t, err)
	defer f.Close()
	raw, _, err := f.TensorData("blk.0.ffn_down.weight")
	must(t, err)
	vals, ti, err := f.TensorFloat32("blk.0.ffn_down.weight")
	must(t, err)
	if len(vals) != 32*8 || ti.Elements() != 256 {
		t.Fatalf("%d values for %+v", len(vals), ti)
	}
	for i, v := range vals {
		if want := quant.F16ToF32(binary.LittleEndian.Uint16(raw[2*i:])); v != want {
			t.Fatalf("element %d = %v, want %v", i, v, want)
		}
	}
	norm, _, err := f.TensorFloat32("output_norm.weight")
	must(t, err)
	if len(norm) != 8 {
		t.Errorf("output_norm: %d values", len(norm))
	}
}

func TestAddTensorFunc(t *testing.T) {
	x := make([]float32, 512)
	for i := range x {
		x[i] = float32(i%37) - 18
	}
	q := make([]byte, 2*144)
	must(t, quant.QuantizeGGML(quant.GGMLQ4_K, x, q))
	w := NewWriter()
	must(t, w.SetKV("general.architecture", "test"))
	must(t, w.AddTensorFunc("q", quant.GGMLQ4_K, []uint64{256, 2}, func(out io.Writer) error {
		_, err := out.Write(q)
		return err
	}))
	must(t, w.AddTensor("after", quant.GGMLF32, []uint64{1}, []byte{0, 0, 0x80, 0x3f}))
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	must(t, err)
	f, err := Parse(buf.Bytes())
	must(t, err)
	got, _, err := f.TensorFloat32("q")
	must(t, err)
	want := make([]float32, 512)
	must(t, quant.DequantizeGGML(quant.GGMLQ4_K, q, want))
	if !reflect.DeepEqual(got, want) {
		t.Error("Q4_K tensor decoded differently after the round trip")
	}
	if v, _, err := f.TensorFloat32("after"); err != nil || v[0] != 1 {
		t.Errorf("after = %v, %v", v, err)
	}

	short := NewWriter()
	must(t, short.AddTensorFunc("q", quant.GGMLQ8_0, []uint64{32}, func(out io.Writer) error {
		_, err := out.Write(make([]byte, 10))
		return err
	}))
	if _, err := short.WriteTo(io.Discard); err == nil || !strings.Contains(err.Error(), "wrote 10 bytes, want 34") {
		t.Errorf("short tensor: %v", err)
	}
}
