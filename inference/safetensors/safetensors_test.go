package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func TestSharedAssets(t *testing.T) {
	dir := testutil.SharedPath(t, "assets", "safetensors")
	cases := []struct {
		file  string
		dtype DType
		shape []int
		first []byte
	}{
		{"tensor-1d-int32.safetensors", I32, []int{3}, []byte{1, 0, 0, 0}},
		{"tensor-2d-float64.safetensors", F64, []int{2, 3}, []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		{"tensor-3d-float32.safetensors", F32, []int{2, 2, 3}, f32bytes(22)},
		{"tensor-4d-float32.safetensors", F32, []int{2, 3, 1, 3}, f32bytes(11)},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			f, err := Open(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tn, ok := f.Tensor("embedding")
			if !ok {
				t.Fatalf("no tensor 'embedding' in %v", f.Names())
			}
			if tn.DType != c.dtype || !reflect.DeepEqual(tn.Shape, c.shape) {
				t.Fatalf("got %s %v, want %s %v", tn.DType, tn.Shape, c.dtype, c.shape)
			}
			if len(tn.Data) != tn.NumElements()*c.dtype.Size() {
				t.Fatalf("data is %d bytes", len(tn.Data))
			}
			if !bytes.HasPrefix(tn.Data, c.first) {
				t.Fatalf("data starts % x, want % x", tn.Data[:len(c.first)], c.first)
			}
		})
	}
	f, err := Open(filepath.Join(dir, "tensor-3d-float32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tn, _ := f.Tensor("embedding")
	v, err := tn.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{22, 23, 24, 11, 12, 13, 2, 3, 4, 1, 2, 3}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("Float32s = %v, want %v", v, want)
	}
}

func TestRoundTrip(t *testing.T) {
	in := []Tensor{
		{Name: "a", DType: F32, Shape: []int{2, 2}, Data: f32bytes(1, 2, 3, 4)},
		{Name: "b", DType: BF16, Shape: []int{3}, Data: []byte{1, 2, 3, 4, 5, 6}},
		{Name: "scalar", DType: U32, Shape: []int{}, Data: []byte{7, 0, 0, 0}},
		{Name: "empty", DType: F16, Shape: []int{0, 4}, Data: []byte{}},
		{Name: "q", DType: U8, Shape: []int{1}, Data: []byte{9}},
	}
	var buf bytes.Buffer
	if err := Write(&buf, in, map[string]string{"format": "mlx"}); err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(buf.Bytes()); n%8 != 0 {
		t.Fatalf("header length %d not padded to 8", n)
	}
	f, err := Parse("mem", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "mlx" {
		t.Fatalf("metadata %v", f.Metadata)
	}
	for _, w := range in {
		g, ok := f.Tensor(w.Name)
		if !ok {
			t.Fatalf("missing %q", w.Name)
		}
		if g.DType != w.DType || !reflect.DeepEqual(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("%q: got %+v, want %+v", w.Name, g, w)
		}
	}
	if s, _ := f.Tensor("scalar"); s.NumElements() != 1 {
		t.Fatalf("scalar has %d elements", s.NumElements())
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"a", "b", "scalar", "empty", "q"}) {
		t.Fatalf("Names = %v", got)
	}
	if _, err := (Tensor{Name: "x", DType: F16}).Float32s(); err == nil {
		t.Fatal("Float32s on F16 should fail")
	}
}

// file builds raw safetensors bytes from a header string and a data buffer.
func file(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestBadFiles(t *testing.T) {
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	over := make([]byte, 8)
	binary.LittleEndian.PutUint64(over, 50)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"absurd header length", append(huge, '{', '}'), "exceeds"},
		{"header past end", append(over, []byte("{}")...), "past the end"},
		{"not json", file("{nope", nil), "header JSON"},
		{"not an object", file("[1,2]", nil), "start with '{'"},
		{"trailing", file(`{} x`, nil), "header JSON"},
		{"bad utf8", file("{\"\xff\":1}", nil), "UTF-8"},
		{"unknown dtype", file(`{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), `tensor "w": unknown dtype "Q4"`},
		{"missing dtype", file(`{"w":{"shape":[1],"data_offsets":[0,1]}}`, []byte{0}), `tensor "w": missing dtype`},
		{"missing shape", file(`{"w":{"dtype":"U8","data_offsets":[0,1]}}`, []byte{0}), `tensor "w": missing shape`},
		{"negative dim", file(`{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, []byte{0}), "negative dimension"},
		{"float dim", file(`{"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, []byte{0}), `tensor "w"`},
		{"overflowing shape", file(`{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,1]}}`, []byte{0}), "overflows"},
		{"bad offsets", file(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}}`, []byte{0}), "data_offsets must be"},
		{"backwards offsets", file(`{"w":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}`, []byte{0}), "backwards"},
		{"size mismatch", file(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": 4 bytes for shape [2] of F32, want 8`},
		{"truncated data", file(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), "past the 4 byte data buffer"},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "overlap"},
		{"gap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), "gap"},
		{"unused tail", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 8)), "cover 4 of the 8"},
		{"bad metadata", file(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.safetensors", c.data)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.safetensors") {
				t.Fatalf("error %q does not name the file and mention %q", err, c.want)
			}
		})
	}
}

func TestOpenTruncatedFile(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, []Tensor{{Name: "w", DType: F32, Shape: []int{4}, Data: f32bytes(1, 2, 3, 4)}}, nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "trunc.safetensors")
	if err := os.WriteFile(p, buf.Bytes()[:buf.Len()-3], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `"w"`) {
		t.Fatalf("Open truncated file: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "absent.safetensors")); err == nil {
		t.Fatal("Open of a missing file succeeded")
	}
}

func writeFile(t *testing.T, path string, ts ...Tensor) {
	t.Helper()
	if err := WriteFile(path, ts, nil); err != nil {
		t.Fatal(err)
	}
}

func TestOpenModel(t *testing.T) {
	a := Tensor{Name: "model.a", DType: F32, Shape: []int{1}, Data: f32bytes(1)}
	b := Tensor{Name: "model.b", DType: F32, Shape: []int{1}, Data: f32bytes(2)}

	t.Run("single", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "model.safetensors"), a, b)
		s, err := OpenModel(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if !reflect.DeepEqual(s.Names(), []string{"model.a", "model.b"}) || s.Size() == 0 {
			t.Fatalf("names %v size %d", s.Names(), s.Size())
		}
		_, err = s.Tensor("nope")
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing tensor error %v", err)
		}
	})
	t.Run("glob shards", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), a)
		writeFile(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), b)
		writeFile(t, filepath.Join(dir, "adapter.safetensors"), a) // not model*: ignored
		s, err := OpenModel(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tb, err := s.Tensor("model.b")
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := tb.Float32s(); v[0] != 2 {
			t.Fatalf("model.b = %v", v)
		}
		if len(s.Files()) != 2 {
			t.Fatalf("%d files", len(s.Files()))
		}
	})
	t.Run("index", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "s1.safetensors"), a)
		writeFile(t, filepath.Join(dir, "s2.safetensors"), b)
		os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"metadata":{"total_size":8},"weight_map":{"model.a":"s1.safetensors","model.b":"s2.safetensors"}}`), 0o644)
		s, err := OpenModel(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if !s.Has("model.a") || !s.Has("model.b") {
			t.Fatal("missing tensors")
		}
	})
	bad := []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"no files", func(string) {}, "no .safetensors"},
		{"duplicate across shards", func(dir string) {
			writeFile(t, filepath.Join(dir, "model-1.safetensors"), a)
			writeFile(t, filepath.Join(dir, "model-2.safetensors"), a)
		}, `"model.a" is in both`},
		{"index escapes folder", func(dir string) {
			os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"weight_map":{"model.a":"../x.safetensors"}}`), 0o644)
		}, "not a file in the folder"},
		{"index wrong shard", func(dir string) {
			writeFile(t, filepath.Join(dir, "s1.safetensors"), a)
			writeFile(t, filepath.Join(dir, "s2.safetensors"), b)
			os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"weight_map":{"model.a":"s2.safetensors","model.b":"s1.safetensors"}}`), 0o644)
		}, "does not hold it"},
		{"index bad json", func(dir string) {
			os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{`), 0o644)
		}, IndexFile},
		{"bad shard", func(dir string) {
			os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte("garbage!garbage"), 0o644)
		}, "model.safetensors"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.setup(dir)
			s, err := OpenModel(dir)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q lacks %q", err, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, []Tensor{
		{Name: "a", DType: F32, Shape: []int{2}, Data: f32bytes(1, 2)},
		{Name: "b", DType: U32, Shape: []int{1, 1}, Data: []byte{1, 2, 3, 4}},
	}, map[string]string{"format": "pt"})
	f.Add(buf.Bytes())
	f.Add(file(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(file(`{}`, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		for _, n := range file.Names() {
			tn, _ := file.Tensor(n)
			if len(tn.Data) != tn.NumElements()*tn.DType.Size() {
				t.Fatalf("%q: %d bytes for %v", n, len(tn.Data), tn.Shape)
			}
		}
	})
}
