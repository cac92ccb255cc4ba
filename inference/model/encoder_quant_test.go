package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/testutil"
)

// Realistic-width encoder shapes: bge-small's layers and nomic-embed's, with
// two layers and one and a small vocabulary to keep the files and the test
// short.
var (
	bgeSmallShape = EncoderConfig{Architecture: "bert", Vocab: 320, Hidden: 384, Layers: 2, Heads: 12,
		Intermediate: 1536, MaxPositions: 128}
	nomicShape = EncoderConfig{Architecture: "nomic_bert", Vocab: 320, Hidden: 768, Layers: 1, Heads: 12,
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
	enc, spec, err := LoadEncoderGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return poolAll(t, enc, spec, seqs)
}

func poolAll(t *testing.T, enc *Encoder, spec EmbedSpec, seqs [][]int32) [][]float32 {
	t.Helper()
	hidden, err := enc.Hidden(seqs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(seqs))
	for i, h := range hidden {
		out[i] = Pool(h, enc.Config.Hidden, spec.Pooling, true)
	}
	return out
}

// worstCosine is the smallest cosine similarity between a[i] and b[i].
func worstCosine(a, b [][]float32) float64 {
	worst := 1.0
	for i := range a {
		worst = math.Min(worst, testutil.Cosine(a[i], b[i]))
	}
	return worst
}

// llamaServerEmbed runs llama-server --embeddings (bin) on path and embeds
// seqs as one /v1/embeddings request of token ids (llama-server pools as
// the metadata says and normalises).
func llamaServerEmbed(t *testing.T, bin, path string, seqs [][]int32) [][]float32 {
	t.Helper()
	port := testutil.FreePort(t)
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
// same files, and on files its llama-quantize made of the float32 GGUF
// (IMPETUS_LLAMA_QUANTS: type names, "pure:TYPE" for --pure).
// IMPETUS_QUANT_SHAPE limits the models (bge-small, nomic-embed, and the
// tiny fixtures tiny-bert, tiny-nomic). A measurement, not a check: it runs
// only with IMPETUS_QUANT_TABLE=1, e.g.
//
//	IMPETUS_QUANT_TABLE=1 IMPETUS_LLAMA_BIN=…/build/bin IMPETUS_LLAMA_QUANTS="Q4_0 Q4_K_M pure:Q4_K" \
//		go test ./inference/model -run TestEncoderQuantTable -v
func TestEncoderQuantTable(t *testing.T) {
	if os.Getenv("IMPETUS_QUANT_TABLE") == "" {
		t.Skip("a measurement: set IMPETUS_QUANT_TABLE=1")
	}
	llama := os.Getenv("IMPETUS_LLAMA_BIN")
	seqs := quantSeqs()
	for _, s := range []struct {
		name    string
		shape   EncoderConfig
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
		} else {
			writeRandomShape(t, dir, s.shape)
		}
		ref := floatReference(t, dir, seqs)
		write := func(typ quant.GGMLType) string {
			w, err := convertEncoderGGUF(dir, typ)
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

// quantFloor is what a GGUF type's embeddings must keep of the float32
// model's: cosine ≥ 0.999 for 8 bits; for fewer, where llama has
// llama.cpp's worst cosine on the same file, a loss (1 − cosine) at most a
// quarter above llama.cpp's.
type quantFloor struct {
	typ   quant.GGMLType
	llama float64 // 0: an 8-bit type
}

func (q quantFloor) floor() float64 {
	if q.llama == 0 {
		return 0.999
	}
	return 1 - 1.25*(1-q.llama)
}

// TestEncoderQuantRealistic writes a bge-small-shaped BERT (two layers) and
// a nomic-embed-shaped nomic_bert (one layer), of realistic widths and
// weight statistics (see modeltest.WriteRandomEncoder), as float32 folders,
// converts them to GGUF types and checks the pooled, normalised embeddings
// of four inputs of 8 to 64 tokens against the float32 folder's, with int8
// and with float activations:
//   - Q8_0 at cosine ≥ 0.999 (issue 19's floor for quantized formats);
//   - the 4-, 5- and 6-bit types losing (1 − cosine) at most a quarter more
//     than llama.cpp does on the same file (its worst cosines pinned below,
//     the lower of llama-server 3f545bec's and node-llama-cpp 3.21.1's).
//     4 and 5 bits lose 0.002 to 0.014 of cosine here, in llama.cpp as in
//     this engine: the error each quantized matmul adds relative to its
//     output does not shrink with the width, so 0.999 is out of their reach;
//   - with node-llama-cpp installed (testdata/llamacpp), llama.cpp runs the
//     same files: ours within 0.999 of its embeddings and no more than
//     0.001 further from the float32 model than it.
//
// The K-quants are checked on the nomic shape only: bge-small's rows of
// 384 are not whole 256-element super-blocks, so the converter would leave
// most matrices F32.
func TestEncoderQuantRealistic(t *testing.T) {
	seqs := quantSeqs()
	for _, s := range []struct {
		name  string
		shape EncoderConfig
		types []quantFloor
	}{
		{"bge-small", bgeSmallShape, []quantFloor{{quant.GGMLQ8_0, 0}, {quant.GGMLQ5_0, 0.996222}, {quant.GGMLQ4_0, 0.985913}}},
		{"nomic-embed", nomicShape, []quantFloor{{quant.GGMLQ8_0, 0}, {quant.GGMLQ6_K, 0.999450}, {quant.GGMLQ5_K, 0.997967},
			{quant.GGMLQ4_K, 0.991233}, {quant.GGMLQ4_0, 0.990511}}},
	} {
		t.Run(s.name, func(t *testing.T) {
			tmp := t.TempDir()
			dir := filepath.Join(tmp, "st")
			writeRandomShape(t, dir, s.shape)
			ref := floatReference(t, dir, seqs)
			var jobs []llamaJob
			ours := make([][][]float32, len(s.types))
			for i, q := range s.types {
				w, err := convertEncoderGGUF(dir, q.typ)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(tmp, q.typ.String()+".gguf")
				if err := w.WriteFile(path); err != nil {
					t.Fatal(err)
				}
				ours[i] = embedOurs(t, path, true, seqs)
				i8, fl := worstCosine(ours[i], ref), worstCosine(embedOurs(t, path, false, seqs), ref)
				if i8 < q.floor() || fl < q.floor() {
					t.Errorf("%s: worst cosine to float32 %.6f (int8 activations), %.6f (float); floor %.6f", q.typ, i8, fl, q.floor())
				}
				t.Logf("%s: worst cosine to float32 %.6f (int8 activations), %.6f (float)", q.typ, i8, fl)
				for _, ids := range seqs {
					jobs = append(jobs, llamaJob{Model: path, IDs: ids})
				}
			}
			if !haveLlamaCpp() {
				return
			}
			res := llamaCppEmbed(t, jobs)
			for i, q := range s.types {
				theirs := res[i*len(seqs) : (i+1)*len(seqs)]
				for k := range theirs {
					if len(theirs[k]) != s.shape.Hidden {
						t.Fatalf("%s: llama.cpp gave %d dimensions", q.typ, len(theirs[k]))
					}
				}
				same, ourLoss, theirLoss := worstCosine(ours[i], theirs), worstCosine(ours[i], ref), worstCosine(theirs, ref)
				if same < 0.999 || ourLoss < theirLoss-0.001 {
					t.Errorf("%s: worst cosine with llama.cpp %.6f; to float32 %.6f, llama.cpp's %.6f", q.typ, same, ourLoss, theirLoss)
				}
				t.Logf("%s: worst cosine with llama.cpp %.6f; llama.cpp's to float32 %.6f", q.typ, same, theirLoss)
			}
		})
	}
}

// writeRandomShape writes a random encoder of shape into dir, with
// bert-mean's tokenizer and sentence-transformers files.
func writeRandomShape(t *testing.T, dir string, shape EncoderConfig) {
	t.Helper()
	if err := writeRandomEncoder(dir, filepath.Join("testdata", "embed", "bert-mean"), shape, false, 1); err != nil {
		t.Fatal(err)
	}
}

// floatReference is the float model's pooled embeddings of seqs.
func floatReference(t *testing.T, dir string, seqs [][]int32) [][]float32 {
	t.Helper()
	src, err := LoadEncoder(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	spec, err := LoadEmbedSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	return poolAll(t, src, spec, seqs)
}
