package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/testutil"
)

// encoderGGUFCase is one fixture folder written as GGUF with one matrix type.
type encoderGGUFCase struct {
	dir    string
	pool   Pooling
	typ    quant.GGMLType
	minCos float64
}

func encoderGGUFCases() []encoderGGUFCase {
	var cs []encoderGGUFCase
	for _, f := range []struct {
		dir  string
		pool Pooling
	}{{"bert-mean", PoolMean}, {"bert-cls", PoolCLS}, {"nomic-mean", PoolMean}} {
		for _, q := range []struct {
			typ    quant.GGMLType
			minCos float64
		}{{quant.GGMLF32, 0.999999}, {quant.GGMLF16, 0.99999}, {quant.GGMLQ8_0, 0.999}, {quant.GGMLQ4_0, 0.978}} {
			cs = append(cs, encoderGGUFCase{f.dir, f.pool, q.typ, q.minCos})
		}
	}
	return cs
}

// writeEncoderGGUF converts a fixture folder into dir and returns the path.
func writeEncoderGGUF(t *testing.T, c encoderGGUFCase, dir string) string {
	t.Helper()
	w, err := convertEncoderGGUF(filepath.Join("testdata", "embed", c.dir), c.typ)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.gguf", c.dir, c.typ))
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// embedIDs are the token sequences the GGUF tests embed: the BERT
// reference's ([CLS] … [SEP], 3 to 41 tokens).
func embedIDs(t *testing.T) [][]int32 { return loadEmbedRef(t).IDs }

// TestEncoderGGUF writes the BERT (bert-mean F32 weights, bert-cls F16) and
// nomic_bert fixtures as llama.cpp lays encoder GGUFs out, with F32, F16,
// Q8_0 and Q4_0 matrices, and checks that the GGUF encoder gives the same
// pooled embeddings as the safetensors folder: F32 within 1e-5, every type
// at its cosine floor, and the pooling read back from {arch}.pooling_type.
// The floors: F16 0.99999, Q8_0 0.999, Q4_0 0.978: llama.cpp's own worst
// cosine to the float32 folder on the same Q4_0 files is 0.983 (bert-mean),
// 0.989 (bert-cls) and 0.987 (nomic-mean), and the floor allows a loss a
// quarter above its 0.017. That loss is the format's, not the fixtures'
// width: TestEncoderQuantRealistic sees the same on 384- and 768-wide
// models, and TestEncoderGGUFLlamaCpp holds the GGUF encoder to llama.cpp
// on these files.
func TestEncoderGGUF(t *testing.T) {
	tmp := t.TempDir()
	ids := embedIDs(t)
	for _, c := range encoderGGUFCases() {
		t.Run(c.dir+"/"+c.typ.String(), func(t *testing.T) {
			src, err := LoadEncoder(filepath.Join("testdata", "embed", c.dir))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			want, err := src.Hidden(ids)
			if err != nil {
				t.Fatal(err)
			}
			enc, spec, err := LoadEncoderGGUF(writeEncoderGGUF(t, c, tmp))
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			if spec.Pooling != c.pool || !spec.Normalize {
				t.Errorf("spec %+v, want pooling %v", spec, c.pool)
			}
			if enc.Config.Hidden != src.Config.Hidden || enc.Config.Vocab != src.Config.Vocab || enc.Config.RotaryDim != src.Config.RotaryDim {
				t.Fatalf("config %+v, want %+v", enc.Config, src.Config)
			}
			got, err := enc.Hidden(ids)
			if err != nil {
				t.Fatal(err)
			}
			worst, worstAbs := 1.0, 0.0
			for i := range ids {
				a := Pool(got[i], enc.Config.Hidden, c.pool, true)
				b := Pool(want[i], src.Config.Hidden, c.pool, true)
				worst, worstAbs = math.Min(worst, testutil.Cosine(a, b)), math.Max(worstAbs, maxAbsDiff(a, b))
			}
			if worst < c.minCos || (c.typ == quant.GGMLF32 && worstAbs > 1e-5) {
				t.Errorf("worst cosine %.7f (floor %v), max abs diff %.3g", worst, c.minCos, worstAbs)
			}
			t.Logf("worst cosine %.7f, max abs diff %.3g", worst, worstAbs)
		})
	}
}

// TestEncoderGGUFErrors: metadata an encoder cannot run is refused by name.
func TestEncoderGGUFErrors(t *testing.T) {
	tmp := t.TempDir()
	for _, c := range []struct {
		key  string
		val  any
		want string
	}{
		{"bert.attention.causal", true, "attention.causal is true"},
		{"bert.pooling_type", uint32(0), "pooling_type 0 (none)"},
		{"bert.pooling_type", uint32(4), "rank"},
		{"bert.pooling_type", uint32(9), "pooling_type 9"},
		{"bert.attention.head_count", uint32(5), "not a multiple"},
		{"general.architecture", "t5", `architecture "t5"`},
	} {
		w, err := convertEncoderGGUF(filepath.Join("testdata", "embed", "bert-mean"), quant.GGMLF32)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.SetKV(c.key, c.val); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(tmp, "bad.gguf")
		if err := w.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadEncoderGGUF(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s = %v: got %v, want an error naming %q", c.key, c.val, err, c.want)
		}
	}
}

// llamaCppEmbed runs testdata/llamacpp/embed.mjs (llama.cpp through
// node-llama-cpp, installed by npm ci there) once for all jobs and returns
// llama.cpp's pooled embedding of each. It skips the test when node or the
// package is missing.
func llamaCppEmbed(t *testing.T, jobs []llamaJob) [][]float32 {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "llamacpp"))
	if err != nil {
		t.Fatal(err)
	}
	if !haveLlamaCpp() {
		t.Skipf("node or node-llama-cpp (npm ci in %s) missing: skipping", dir)
	}
	node, _ := exec.LookPath("node")
	in, _ := json.Marshal(jobs)
	cmd := exec.Command(node, "embed.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("llama.cpp oracle: %v", err)
	}
	var res [][]float32
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(jobs) {
		t.Fatalf("llama.cpp oracle output %.200q: %v", out, err)
	}
	return res
}

// haveLlamaCpp reports whether node and testdata/llamacpp's node-llama-cpp
// are there to run llama.cpp.
func haveLlamaCpp() bool {
	_, err := os.Stat(filepath.Join("testdata", "llamacpp", "node_modules", "node-llama-cpp"))
	_, nodeErr := exec.LookPath("node")
	return err == nil && nodeErr == nil
}

// TestEncoderGGUFLlamaCpp embeds the reference sequences with llama.cpp
// (node-llama-cpp's embedding context over the same GGUF files) and with
// the GGUF encoder: cosine ≥ 0.999 for every fixture and type, which shows
// the metadata and tensor layout are what llama.cpp expects; and against
// the float32 folder the GGUF encoder loses no more than llama.cpp does on
// the same file (its cosine at most 0.001 below llama.cpp's), which shows
// the quantized types' floors in TestEncoderGGUF are the formats' own loss.
func TestEncoderGGUFLlamaCpp(t *testing.T) {
	tmp := t.TempDir()
	ids := embedIDs(t)
	cases := encoderGGUFCases()
	var jobs []llamaJob
	paths := make([]string, len(cases))
	for i, c := range cases {
		paths[i] = writeEncoderGGUF(t, c, tmp)
		for _, s := range ids {
			jobs = append(jobs, llamaJob{Model: paths[i], IDs: s})
		}
	}
	res := llamaCppEmbed(t, jobs)
	for i, c := range cases {
		src, err := LoadEncoder(filepath.Join("testdata", "embed", c.dir))
		if err != nil {
			t.Fatal(err)
		}
		ref, err := src.Hidden(ids)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		enc, spec, err := LoadEncoderGGUF(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		hidden, err := enc.Hidden(ids)
		enc.Close()
		if err != nil {
			t.Fatal(err)
		}
		worst, ours, theirs := 1.0, 1.0, 1.0
		for k := range ids {
			got := Pool(hidden[k], enc.Config.Hidden, spec.Pooling, true)
			want := Pool(ref[k], enc.Config.Hidden, spec.Pooling, true)
			l := res[i*len(ids)+k]
			if len(l) != len(got) {
				t.Fatalf("%s %s: llama.cpp gave %d dimensions, want %d", c.dir, c.typ, len(l), len(got))
			}
			worst = math.Min(worst, testutil.Cosine(got, l))
			ours, theirs = math.Min(ours, testutil.Cosine(got, want)), math.Min(theirs, testutil.Cosine(l, want))
		}
		if worst < 0.999 {
			t.Errorf("%s %s: worst cosine with llama.cpp %.6f", c.dir, c.typ, worst)
		}
		if ours < theirs-0.001 {
			t.Errorf("%s %s: worst cosine with the float32 folder %.6f, llama.cpp's %.6f", c.dir, c.typ, ours, theirs)
		}
		t.Logf("%s %s: worst cosine with llama.cpp %.7f; with the float32 folder %.7f (llama.cpp %.7f)", c.dir, c.typ, worst, ours, theirs)
	}
}
