package tokenizer

import (
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// Mistral 7B v0.1's tokenizer.json: SentencePiece-style BPE with byte
// fallback (<0xXX> = 3 + byte), a Prepend/Replace normalizer and a
// TemplateProcessing BOS. The expected ids follow from its vocabulary
// (▁ = 28705, ▁Hello = 22557, ▁world = 1526) and the well-known
// Mistral instruct prompt ids ("[INST]" = ▁[ INST ]).
func TestMistralTokenizerJSON(t *testing.T) {
	tk, err := Load(testutil.SharedPath(t, "assets", "tokenizers", "mistral-7b-v0.1-hf"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		text string
		ids  []int32 // with BOS
		dec  string  // Decode(ids, skipSpecial=true)
	}{
		{"Hello world", []int32{1, 22557, 1526}, "Hello world"},
		{" Hello", []int32{1, 28705, 22557}, " Hello"},
		{"", []int32{1}, ""},
		{"\n", []int32{1, 28705, 13}, "\n"},
		{"🦙", []int32{1, 28705, 243, 162, 169, 156}, "🦙"},
		{"[INST]", []int32{1, 733, 16289, 28793}, "[INST]"},
		{"[/INST]", []int32{1, 733, 28748, 16289, 28793}, "[/INST]"},
		{"<s>", []int32{1, 1}, ""},
	}
	for _, c := range cases {
		got := tk.Encode(c.text, true)
		if !equalIDs(got, c.ids) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.ids)
		}
		if d := tk.Decode(c.ids, true); d != c.dec {
			t.Errorf("Decode(%v) = %q, want %q", c.ids, d, c.dec)
		}
	}
	if !tk.AddsBOS() || tk.BOS() != 1 || tk.EOS() != 2 {
		t.Errorf("BOS/EOS: adds=%v bos=%d eos=%d", tk.AddsBOS(), tk.BOS(), tk.EOS())
	}
	// Plain encoding spells "<s>" as text.
	if ids := tk.EncodePlain("<s>"); len(ids) < 2 || tk.Decode(ids, false) != "<s>" {
		t.Errorf("EncodePlain(<s>) = %v (%q)", ids, tk.Decode(ids, false))
	}
	// HF keeps the space after an unskipped BOS: "<s> Hello".
	if d := tk.Decode([]int32{1, 22557}, false); d != "<s> Hello" {
		t.Errorf("Decode with BOS = %q", d)
	}
	if b := string(tk.TokenBytes(22557)); b != " Hello" {
		t.Errorf("TokenBytes(▁Hello) = %q", b)
	}
	if b := tk.TokenBytes(13); len(b) != 1 || b[0] != '\n' {
		t.Errorf("TokenBytes(<0x0A>) = %q", b)
	}
}

func TestStreamDecoder(t *testing.T) {
	mistral, err := Load(testutil.SharedPath(t, "assets", "tokenizers", "mistral-7b-v0.1-hf"))
	if err != nil {
		t.Fatal(err)
	}
	gpt2 := loadGGUFTokenizer(t, testutil.SharedPath(t, "assets", "gguf-vocab", "ggml-vocab-gpt-2.gguf"))
	texts := []string{
		"Hello world", " leading space", "🦙 llamas 😶‍🌫️ and 中文 text", "Führer Cửa Việt",
		"line\n\n  indented\ttab", "ℝ∞≠ 👨‍👩‍👧‍👦",
	}
	for name, tk := range map[string]*Tokenizer{"mistral": mistral, "gpt2": gpt2} {
		for _, text := range texts {
			ids := tk.Encode(text, true)
			want := tk.Decode(ids, true)
			d := NewDecoder(tk, true)
			var got string
			for _, id := range ids {
				piece := d.Add(id)
				if !validUTF8NoReplacement(piece) {
					t.Errorf("%s %q: Add emitted a broken piece %q", name, text, piece)
				}
				got += piece
			}
			got += d.Flush()
			if got != want {
				t.Errorf("%s %q: streamed %q, Decode %q", name, text, got, want)
			}
		}
	}
	// A lone lead byte waits; a bad byte becomes U+FFFD at flush.
	d := NewDecoder(mistral, true)
	if s := d.Add(3 + 0xF0); s != "" {
		t.Errorf("partial character emitted %q", s)
	}
	if s := d.Flush(); s != "\uFFFD" {
		t.Errorf("flush of a lone lead byte = %q", s)
	}
}

func validUTF8NoReplacement(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' {
			return false
		}
	}
	return true
}
