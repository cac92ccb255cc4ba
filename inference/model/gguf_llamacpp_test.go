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

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/testutil"
)

// llamaJob is one model file and the token ids to run through llama.cpp.
type llamaJob struct {
	Model string  `json:"model"`
	IDs   []int32 `json:"ids"`
}

// llamaCppTopK runs testdata/llamacpp/logits.mjs (llama.cpp through the npm
// package node-llama-cpp, installed there by make test) once for all jobs
// and returns, per job, llama.cpp's top-5 [id, logprob] after each token. It
// skips the test when node or the package is missing.
func llamaCppTopK(t *testing.T, jobs []llamaJob) [][][][2]float64 {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "llamacpp"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-llama-cpp")); err != nil {
		t.Skipf("node-llama-cpp not installed in %s (npm ci there): skipping", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: skipping")
	}
	in, err := json.Marshal(jobs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "logits.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("llama.cpp oracle: %v", err)
	}
	var res [][][][2]float64
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(jobs) {
		t.Fatalf("llama.cpp oracle output %q: %v", out, err)
	}
	for i, r := range res {
		if len(r) != len(jobs[i].IDs) {
			t.Fatalf("llama.cpp oracle: %d results for %d tokens", len(r), len(jobs[i].IDs))
		}
	}
	return res
}

// addFixtureVocab copies a fixture's byte-level BPE tokenizer.json into GGUF
// tokenizer keys, which llama.cpp needs to load a model.
func addFixtureVocab(t *testing.T, w *gguf.Writer, dir string) {
	t.Helper()
	var tj struct {
		Model struct {
			Vocab  map[string]int `json:"vocab"`
			Merges [][2]string    `json:"merges"`
		} `json:"model"`
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &tj); err != nil {
		t.Fatal(err)
	}
	n := len(tj.Model.Vocab)
	for _, a := range tj.AddedTokens {
		n = max(n, a.ID+1)
	}
	tokens, types := make([]string, n), make([]int32, n)
	for i := range tokens {
		tokens[i], types[i] = fmt.Sprintf("[PAD%d]", i), 5
	}
	for s, id := range tj.Model.Vocab {
		tokens[id], types[id] = s, 1
	}
	for _, a := range tj.AddedTokens {
		tokens[a.ID], types[a.ID] = a.Content, 3
	}
	merges := make([]string, len(tj.Model.Merges))
	for i, m := range tj.Model.Merges {
		merges[i] = m[0] + " " + m[1]
	}
	for k, v := range map[string]any{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2",
		"tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types, "tokenizer.ggml.merges": merges} {
		if err := w.SetKV(k, v); err != nil {
			t.Fatal(err)
		}
	}
}

// compareWithLlamaCpp checks our top-5 log-probabilities after each token
// of job.IDs against llama.cpp's (want) on the same file and returns the
// largest difference.
func compareWithLlamaCpp(t *testing.T, job llamaJob, want [][][2]float64, tol float64) float64 {
	t.Helper()
	m, err := LoadGGUF(job.Model)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	steps, _ := promptLogits(t, m, job.IDs)
	worst := 0.0
	for i, s := range steps {
		lp := logSoftmax(s)
		for _, e := range want[i] {
			d := math.Abs(lp[int(e[0])] - e[1])
			worst = math.Max(worst, d)
			if d > tol {
				t.Errorf("position %d: logprob of token %d is %.5f, llama.cpp %.5f", i, int(e[0]), lp[int(e[0])], e[1])
			}
		}
	}
	return worst
}

// TestTinyLlamaMatchesLlamaCpp runs the real llama GGUF of the shared assets
// (converted by llama.cpp's own tools: permuted q/k rows) through llama.cpp.
func TestTinyLlamaMatchesLlamaCpp(t *testing.T) {
	path := testutil.SharedPath(t, "assets", "gguf-model", "llama-2-tiny-random.gguf")
	job := llamaJob{path, []int32{1, 450, 4996, 17354, 1701, 29916, 4719, 975, 278, 17366}}
	worst := compareWithLlamaCpp(t, job, llamaCppTopK(t, []llamaJob{job})[0], 5e-4)
	t.Logf("worst top-5 logprob difference %.2g", worst)
}

// TestConvertedFixturesMatchLlamaCpp runs the F32 GGUF conversions of the
// fixtures through llama.cpp: this checks the converter and the loader
// against llama.cpp's reading of the same file, independently of ours. The
// tolerance allows for llama.cpp's half-precision KV cache (differences of
// 1e-3 to 1e-2); a wrong RoPE pairing, norm offset or scale moves these
// log-probabilities by tenths. The committed fixtures (SmolLM3 among them)
// join the shared ones when present.
func TestConvertedFixturesMatchLlamaCpp(t *testing.T) {
	type model struct {
		name string
		job  llamaJob
	}
	var models []model
	tmp := t.TempDir()
	var dirs []string
	shared := os.Getenv("IMPETUS_SHARED")
	if shared == "" {
		shared = filepath.Join(testutil.RepoRoot(t), "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(shared, "fixtures")); err == nil {
		for _, a := range fixtureArchives {
			dirs = append(dirs, fixtureModels(t, a.name)...)
		}
	}
	for _, dir := range append(dirs, ownFloatFixtures(t)...) {
		base := filepath.Base(dir)
		if !strings.HasSuffix(base, "-float32") && !strings.HasSuffix(base, "-bfloat16") {
			continue
		}
		if strings.HasPrefix(dir, committedFixtures) {
			base = "own-" + base
		}
		w, err := convertGGUF(dir, quant.GGMLF32)
		if err != nil {
			t.Fatal(err)
		}
		addFixtureVocab(t, w, dir)
		path := filepath.Join(tmp, base+".gguf")
		if err := w.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		models = append(models, model{base, llamaJob{path, loadReference(t, dir).PromptIDs}})
	}
	if len(models) == 0 {
		t.Skip("no fixtures (shared or committed) to convert")
	}
	jobs := make([]llamaJob, len(models))
	for i, m := range models {
		jobs[i] = m.job
	}
	want := llamaCppTopK(t, jobs)
	for i, m := range models {
		t.Run(m.name, func(t *testing.T) {
			worst := compareWithLlamaCpp(t, m.job, want[i], 2e-2)
			t.Logf("%s: worst top-5 logprob difference %.2g", m.name, worst)
		})
	}
}

// byteVocab is a byte-level BPE vocabulary of n tokens without merges: the
// 256 GPT-2 byte symbols, then fillers. llama.cpp needs a vocabulary (with
// a newline token) to load a model.
func byteVocab(spec *tinySpec, n int) *tinySpec {
	tokens, types := make([]string, n), make([]int32, n)
	next := 256
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !(b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE) {
			r = rune(next)
			next++
		}
		tokens[b], types[b] = string(r), 1
	}
	for i := 256; i < n; i++ {
		tokens[i], types[i] = fmt.Sprintf("[T%d]", i), 1
	}
	return spec.withKV("tokenizer.ggml.model", "gpt2").withKV("tokenizer.ggml.pre", "gpt-2").
		withKV("tokenizer.ggml.tokens", tokens).withKV("tokenizer.ggml.token_type", types).
		withKV("tokenizer.ggml.merges", []string{})
}

// TestBlockTypesMatchLlamaCpp runs a random model stored in each block type
// through llama.cpp. llama.cpp multiplies quantized weights by activations
// rounded to 8 bits (bfloat16 for BF16), which moves these log-probabilities
// by up to ~0.2, as much as 8-bit weights do; so beside an absolute bound,
// for the types of 5 bits or fewer, whose own error is several times larger,
// our distance to llama.cpp must be well under the distance between the
// quantized model and the float original: a misread block layout would be
// at least that far off.
func TestBlockTypesMatchLlamaCpp(t *testing.T) {
	spec := byteVocab(newTinySpec(256, 512, 4, 2, 2, 300), 300)
	ids := []int32{1, 17, 250, 3, 99, 42, 7, 199, 64, 128}
	dir := t.TempDir()
	origPath := filepath.Join(dir, "f32.gguf")
	spec.write(t, origPath, quant.GGMLF32, false)
	orig, err := LoadGGUF(origPath)
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	origSteps, _ := promptLogits(t, orig, ids)
	cases := []struct {
		typ      quant.GGMLType
		relative bool
	}{
		{quant.GGMLF16, false}, {quant.GGMLBF16, false}, {quant.GGMLQ8_0, false}, {quant.GGMLQ6_K, false},
		{quant.GGMLQ4_0, true}, {quant.GGMLQ4_1, true}, {quant.GGMLQ5_0, true}, {quant.GGMLQ5_1, true},
		{quant.GGMLQ2_K, true}, {quant.GGMLQ3_K, true}, {quant.GGMLQ4_K, true}, {quant.GGMLQ5_K, true},
	}
	jobs := make([]llamaJob, len(cases))
	for i, c := range cases {
		jobs[i] = llamaJob{filepath.Join(dir, c.typ.String()+".gguf"), ids}
		spec.write(t, jobs[i].Model, c.typ, false)
	}
	want := llamaCppTopK(t, jobs)
	for i, c := range cases {
		t.Run(c.typ.String(), func(t *testing.T) {
			worst := compareWithLlamaCpp(t, jobs[i], want[i], 0.25)
			m, err := LoadGGUF(jobs[i].Model)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			steps, _ := promptLogits(t, m, ids)
			var q diffStats
			for i := range steps {
				q.add(origSteps[i], steps[i])
			}
			t.Logf("%s: top-5 logprob difference to llama.cpp %.2g, to the float original %.2g", c.typ, worst, q.top5)
			if c.relative && worst > q.top5/3 {
				t.Errorf("difference to llama.cpp %.3g is not well under the quantization error %.3g", worst, q.top5)
			}
		})
	}
}
