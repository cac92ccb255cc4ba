package tokenizer

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/testutil"
)

// vocabCase is one line of llama.cpp's ggml-vocab-*.gguf.inp/.out pairs,
// whose ids were produced by the Hugging Face tokenizer without BOS.
type vocabCase struct {
	text string
	ids  []int32
}

func readVocabCases(t *testing.T, base string) []vocabCase {
	t.Helper()
	inp, err := os.ReadFile(base + ".inp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(base + ".out")
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	texts := strings.Split(strings.TrimSuffix(string(inp), sep), sep)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(texts) != len(lines) {
		t.Fatalf("%s: %d inputs but %d outputs", base, len(texts), len(lines))
	}
	cases := make([]vocabCase, len(texts))
	for i := range texts {
		cases[i].text = texts[i]
		for _, f := range strings.Fields(lines[i]) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s line %d: %v", base, i+1, err)
			}
			cases[i].ids = append(cases[i].ids, int32(v))
		}
	}
	return cases
}

func loadGGUFTokenizer(t *testing.T, path string) *Tokenizer { return loadGGUFTokenizerTB(t, path) }

func loadGGUFTokenizerTB(t testing.TB, path string) *Tokenizer {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tk, err := FromGGUF(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tk
}

// checkCases encodes every case and reports mismatches; it returns the number matched.
func checkCases(t *testing.T, tk *Tokenizer, cases []vocabCase) int {
	t.Helper()
	ok := 0
	for i, c := range cases {
		got := tk.Encode(c.text, false)
		if !equalIDs(got, c.ids) {
			t.Errorf("case %d %q:\n got  %v\n want %v", i, c.text, got, c.ids)
			continue
		}
		ok++
	}
	return ok
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGGUFVocabularies(t *testing.T) {
	for _, name := range []string{"llama-spm", "phi-3", "gpt-2", "starcoder", "deepseek-coder", "deepseek-llm"} {
		t.Run(name, func(t *testing.T) {
			path := testutil.SharedPath(t, "assets", "gguf-vocab", "ggml-vocab-"+name+".gguf")
			tk := loadGGUFTokenizer(t, path)
			cases := readVocabCases(t, path)
			ok := checkCases(t, tk, cases)
			t.Logf("%s: %d/%d cases match", name, ok, len(cases))
		})
	}
}

// TestGGUFModelFile reads the vocabulary embedded in a real model GGUF.
func TestGGUFModelFile(t *testing.T) {
	tk := loadGGUFTokenizer(t, testutil.SharedPath(t, "assets", "gguf-model", "llama-2-tiny-random.gguf"))
	if got, want := tk.Encode("Hello world", true), []int32{1, 15043, 3186}; !equalIDs(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if tk.VocabSize() != 32000 || tk.BOS() != 1 || tk.EOS() != 2 || !tk.IsSpecial(1) || tk.IsSpecial(15043) {
		t.Errorf("vocab %d bos %d eos %d", tk.VocabSize(), tk.BOS(), tk.EOS())
	}
	if got := tk.Decode([]int32{1, 15043, 3186}, true); got != "Hello world" {
		t.Errorf("Decode = %q", got)
	}
}

// TestConcurrentEncode shares one tokenizer (and its cache) between goroutines.
func TestConcurrentEncode(t *testing.T) {
	tk := loadGGUFTokenizer(t, testutil.SharedPath(t, "assets", "gguf-vocab", "ggml-vocab-gpt-2.gguf"))
	text := englishText(20000)
	want := tk.EncodePlain(text)
	done := make(chan []int32)
	for g := 0; g < 4; g++ {
		go func() { done <- tk.EncodePlain(text) }()
	}
	for g := 0; g < 4; g++ {
		if got := <-done; !equalIDs(got, want) {
			t.Error("concurrent encodings differ")
		}
	}
}
