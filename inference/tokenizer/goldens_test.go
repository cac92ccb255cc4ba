package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// llama3Tokenizer builds Llama 3.2 from the GPT-2 style files in shared assets.
func llama3Tokenizer(t testing.TB) *Tokenizer {
	dir := testutil.SharedPath(t, "assets", "tokenizers")
	enc, err := os.ReadFile(filepath.Join(dir, "llama3.2-encoder.json"))
	if err != nil {
		t.Fatal(err)
	}
	merges, err := os.ReadFile(filepath.Join(dir, "llama3.2-vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := FromGPT2Files(enc, merges, GPT2Options{Pre: "llama-bpe", Specials: Llama3Specials(),
		BOS: "<|begin_of_text|>", EOS: "<|end_of_text|>", AddBOS: true})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestLlama3VocabCases(t *testing.T) {
	tk := llama3Tokenizer(t)
	base := testutil.SharedPath(t, "assets", "gguf-vocab", "ggml-vocab-llama-bpe.gguf.inp")
	cases := readVocabCases(t, strings.TrimSuffix(base, ".inp"))
	ok := checkCases(t, tk, cases)
	t.Logf("llama-bpe with llama3.2 files: %d/%d cases match", ok, len(cases))
	if id, _ := tk.TokenID("<|eot_id|>"); id != 128009 {
		t.Errorf("<|eot_id|> = %d, want 128009", id)
	}
}

// TestSwiftTransformersGoldens checks the long French text encodings from
// swift-transformers (ids from Python transformers).
func TestSwiftTransformersGoldens(t *testing.T) {
	type golden struct {
		Text     string  `json:"text"`
		TokenIDs []int32 `json:"token_ids"`
		Decoded  string  `json:"decoded_text"`
	}
	cases := []struct {
		file       string
		tokenizer  func(t *testing.T) *Tokenizer
		addSpecial bool
	}{
		{"llama_encoded.json", func(t *testing.T) *Tokenizer {
			return loadGGUFTokenizer(t, testutil.SharedPath(t, "assets", "gguf-vocab", "ggml-vocab-llama-spm.gguf"))
		}, true},
		{"gpt2_encoded_tokens.json", func(t *testing.T) *Tokenizer {
			return loadGGUFTokenizer(t, testutil.SharedPath(t, "assets", "gguf-vocab", "ggml-vocab-gpt-2.gguf"))
		}, false},
		{"llama_3.2_encoded.json", func(t *testing.T) *Tokenizer { return llama3Tokenizer(t) }, true},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			var g golden
			readJSON(t, testutil.SharedPath(t, "assets", "tokenizer-goldens", c.file), &g)
			tk := c.tokenizer(t)
			want := g.TokenIDs
			got := tk.Encode(g.Text, c.addSpecial)
			if !equalIDs(got, want) {
				t.Errorf("ids:\n got  %v\n want %v", got, want)
			}
			if g.Decoded != "" {
				if d := tk.Decode(want, false); d != g.Decoded {
					t.Errorf("decode:\n got  %q\n want %q", d, g.Decoded)
				}
			}
		})
	}
}

// TestMultilingualGoldens checks the 30-entry multilingual corpus against
// the Python transformers baselines whose vocabularies we have.
func TestMultilingualGoldens(t *testing.T) {
	var inputs struct {
		Inputs []struct {
			ID   string `json:"id"`
			Text string `json:"text"`
		} `json:"inputs"`
	}
	dir := testutil.SharedPath(t, "assets", "tokenizer-goldens", "multilingual")
	readJSON(t, filepath.Join(dir, "inputs.json"), &inputs)
	type entry struct {
		IDs         []int32 `json:"input_ids"`
		WithSpecial string  `json:"decoded_with_special"`
		SkipSpecial string  `json:"decoded_skip_special"`
	}
	ggufVocab := func(name string) func(t *testing.T) *Tokenizer {
		return func(t *testing.T) *Tokenizer {
			return loadGGUFTokenizer(t, testutil.SharedPath(t, "assets", "gguf-vocab", name))
		}
	}
	for _, c := range []struct {
		baseline string
		load     func(t *testing.T) *Tokenizer
	}{
		{"TinyLlama__TinyLlama-1.1B-Chat-v1.0.json", ggufVocab("ggml-vocab-llama-spm.gguf")},
		{"openai-community__gpt2.json", ggufVocab("ggml-vocab-gpt-2.gguf")},
		// Qwen2.5 shares its vocabulary and merges with Qwen3's tokenizer.json.
		{"Qwen__Qwen2.5-0.5B.json", qwen3Tokenizer},
	} {
		t.Run(c.baseline, func(t *testing.T) {
			var base struct {
				Entries map[string]entry `json:"entries"`
			}
			readJSON(t, filepath.Join(dir, c.baseline), &base)
			tk := c.load(t)
			ok := 0
			for _, in := range inputs.Inputs {
				e, found := base.Entries[in.ID]
				if !found {
					t.Errorf("%s: no baseline", in.ID)
					continue
				}
				good := true
				if got := tk.Encode(in.Text, true); !equalIDs(got, e.IDs) {
					t.Errorf("%s %q ids:\n got  %v\n want %v", in.ID, in.Text, got, e.IDs)
					good = false
				}
				if got := tk.Decode(e.IDs, false); got != e.WithSpecial {
					t.Errorf("%s decode with specials:\n got  %q\n want %q", in.ID, got, e.WithSpecial)
					good = false
				}
				if got := tk.Decode(e.IDs, true); got != e.SkipSpecial {
					t.Errorf("%s decode skipping specials:\n got  %q\n want %q", in.ID, got, e.SkipSpecial)
					good = false
				}
				if good {
					ok++
				}
			}
			t.Logf("%s: %d/%d entries match (ids and both decodes)", c.baseline, ok, len(inputs.Inputs))
		})
	}
}
