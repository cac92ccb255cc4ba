package model_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/model/modeltest"
	"github.com/impetusllm/impetus/inference/quant"
)

// Realistic-width encoder shapes: bge-small's layers and nomic-embed's, with
// few layers and a small vocabulary to keep the files and the test short.
var (
	bgeSmallShape = modeltest.RandomEncoder{Arch: "bert", Vocab: 320, Hidden: 384, Layers: 2, Heads: 12,
		Intermediate: 1536, MaxPositions: 128}
	nomicShape = modeltest.RandomEncoder{Arch: "nomic_bert", Vocab: 320, Hidden: 768, Layers: 2, Heads: 12,
		Intermediate: 3072, MaxPositions: 128}
)

// quantSeqs are random inputs of the template tokenizer's pieces between
// [CLS] (2) and [SEP] (3), of 8 to 64 tokens.
func quantSeqs() [][]int32 {
	r := rand.New(rand.NewPCG(7, 19))
	var seqs [][]int32
	for _, n := range []int{8, 17, 33, 64} {
		s := []int32{2}
		for len(s) < n-1 {
			s = append(s, int32(5+r.IntN(254)))
		}
		seqs = append(seqs, append(s, 3))
	}
	return seqs
}

// embedOurs loads an encoder GGUF with int8 activations on or off (the
// packed copies are made at load with them on) and returns its pooled,
// normalised embeddings.
func embedOurs(t *testing.T, path string, int8 bool, seqs [][]int32) [][]float32 {
	t.Helper()
	defer kernels.SetInt8Activations(kernels.SetInt8Activations(int8))
	enc, spec, err := model.LoadEncoderGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return poolAll(t, enc, spec, seqs)
}

func poolAll(t *testing.T, enc *model.Encoder, spec model.EmbedSpec, seqs [][]int32) [][]float32 {
	t.Helper()
	hidden, err := enc.Hidden(seqs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(seqs))
	for i, h := range hidden {
		out[i] = model.Pool(h, enc.Config.Hidden, spec.Pooling, true)
	}
	return out
}

// worstCosine is the smallest cosine similarity between a[i] and b[i].
func worstCosine(a, b [][]float32) float64 {
	worst := 1.0
	for i := range a {
		var ab, aa, bb float64
		for j := range a[i] {
			ab += float64(a[i][j]) * float64(b[i][j])
			aa += float64(a[i][j]) * float64(a[i][j])
			bb += float64(b[i][j]) * float64(b[i][j])
		}
		worst = math.Min(worst, ab/math.Sqrt(aa*bb))
	}
	return worst
}

// llamaServerEmbed runs llama-server --embeddings (bin) on path and embeds
// seqs as one /v1/embeddings request of token ids (llama-server pools as
// the metadata says and normalises).
func llamaServerEmbed(t *testing.T, bin, path string, seqs [][]int32) [][]float32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx := strconv.Itoa(len(seqs) * 80)
	cmd := exec.Command(bin, "-m", path, "--embeddings", "-t", "2", "-np", strconv.Itoa(len(seqs)), "-c", ctx, "-b", ctx, "-ub", ctx,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("llama-server did not start: %s", stderr.String())
		}
	}
	body, _ := json.Marshal(map[string]any{"input": seqs})
	resp, err := http.Post(url+"/v1/embeddings", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Data) != len(seqs) {
		t.Fatalf("llama-server answer (status %d): %v", resp.StatusCode, err)
	}
	res := make([][]float32, len(seqs))
	for _, d := range out.Data {
		res[d.Index] = d.Embedding
	}
	return res
}

// TestEncoderQuantTable measures, on realistic-width random encoders, the
// cosine of each quantized GGUF's embeddings against the float32 model's,
// for this engine with int8 and float activations and (with
// IMPETUS_LLAMA_BIN naming a llama.cpp bin folder) for llama-server on the
// same files, including files llama-quantize made. A measurement, not a
// check: it runs only with IMPETUS_QUANT_TABLE=1.
func TestEncoderQuantTable(t *testing.T) {
	if os.Getenv("IMPETUS_QUANT_TABLE") == "" {
		t.Skip("a measurement: set IMPETUS_QUANT_TABLE=1")
	}
	llama := os.Getenv("IMPETUS_LLAMA_BIN")
	seqs := quantSeqs()
	for _, s := range []struct {
		name    string
		shape   modeltest.RandomEncoder
		fixture string // a committed tiny fixture in place of shape
	}{{name: "bge-small", shape: bgeSmallShape}, {name: "nomic-embed", shape: nomicShape},
		{name: "tiny-bert", fixture: "bert-mean"}, {name: "tiny-nomic", fixture: "nomic-mean"}} {
		if only := os.Getenv("IMPETUS_QUANT_SHAPE"); only != "" && !strings.Contains(only, s.name) {
			continue
		}
		tmp := t.TempDir()
		dir := filepath.Join(tmp, "st")
		if s.fixture != "" {
			dir = filepath.Join("testdata", "embed", s.fixture)
		} else if err := modeltest.WriteRandomEncoder(dir, filepath.Join("testdata", "embed", "bert-mean"), s.shape, 1); err != nil {
			t.Fatal(err)
		}
		src, err := model.LoadEncoder(dir)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := model.LoadEmbedSpec(dir)
		if err != nil {
			t.Fatal(err)
		}
		ref := poolAll(t, src, spec, seqs)
		src.Close()
		write := func(typ quant.GGMLType) string {
			w, err := modeltest.ConvertEncoderToGGUF(dir, typ)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(tmp, "ours-"+typ.String()+".gguf")
			if err := w.WriteFile(p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		f32 := write(quant.GGMLF32)
		type file struct{ name, path string }
		var files []file
		for _, typ := range []quant.GGMLType{quant.GGMLF32, quant.GGMLF16, quant.GGMLQ8_0, quant.GGMLQ6_K, quant.GGMLQ5_K, quant.GGMLQ5_0, quant.GGMLQ4_K, quant.GGMLQ4_0} {
			files = append(files, file{"ours " + typ.String(), write(typ)})
		}
		if llama != "" {
			for _, q := range strings.Fields(os.Getenv("IMPETUS_LLAMA_QUANTS")) {
				// "pure:TYPE" quantizes every matrix as TYPE (--pure).
				args := []string{f32}
				if typ, ok := strings.CutPrefix(q, "pure:"); ok {
					args = []string{"--pure", f32}
					q = typ + "-pure"
				}
				p := filepath.Join(tmp, "lq-"+q+".gguf")
				out, err := exec.Command(filepath.Join(llama, "llama-quantize"), append(args, p, strings.TrimSuffix(q, "-pure"))...).CombinedOutput()
				if err != nil {
					t.Logf("%-12s llama-quantize %s: %v (%s)", s.name, q, err, out[max(0, len(out)-300):])
					continue
				}
				files = append(files, file{"llama-quantize " + q, p})
			}
		}
		for _, f := range files {
			i8 := embedOurs(t, f.path, true, seqs)
			line := fmt.Sprintf("%-12s %-22s int8 %.6f  float %.6f", s.name, f.name,
				worstCosine(i8, ref), worstCosine(embedOurs(t, f.path, false, seqs), ref))
			if llama != "" {
				theirs := llamaServerEmbed(t, filepath.Join(llama, "llama-server"), f.path, seqs)
				line += fmt.Sprintf("  llama.cpp %.6f  int8 vs llama.cpp %.6f", worstCosine(theirs, ref), worstCosine(i8, theirs))
			}
			t.Log(line)
		}
	}
}
