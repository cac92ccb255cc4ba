package tokenizer

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// withAdded returns the tiny byte-level tokenizer plus extra added tokens.
func withAdded(t *testing.T, extra ...map[string]any) *Tokenizer {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(tinyByteLevelJSON(t), &doc); err != nil {
		t.Fatal(err)
	}
	added := doc["added_tokens"].([]any)
	next := 1000
	for _, e := range extra {
		e["id"] = next
		next++
		added = append(added, e)
	}
	doc["added_tokens"] = added
	b, _ := json.Marshal(doc)
	tk, err := FromJSON(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestAddedTokenOptions(t *testing.T) {
	tk := withAdded(t,
		map[string]any{"content": "<mask>", "lstrip": true, "special": true},
		map[string]any{"content": "<sep>", "rstrip": true, "special": true},
		map[string]any{"content": "fox", "single_word": true},
		map[string]any{"content": "<mask>x"},
	)
	id := func(s string) int32 {
		v, ok := tk.TokenID(s)
		if !ok {
			t.Fatalf("no token %q", s)
		}
		return v
	}
	cases := []struct {
		text string
		want []int32
	}{
		// lstrip swallows the space before <mask>; the space after stays.
		{"a <mask> b", []int32{id("a"), id("<mask>"), id("Ġ"), id("b")}},
		// rstrip swallows the spaces after <sep>.
		{"c<sep>  d", []int32{id("c"), id("<sep>"), id("d")}},
		// single_word: "fox" inside "foxy" is ordinary text; alone it matches.
		{"foxy fox", []int32{id("f"), id("o"), id("x"), id("y"), id("Ġ"), id("fox")}},
		// Longest match wins over a shorter added token at the same place.
		{"<mask>x", []int32{id("<mask>x")}},
	}
	for _, c := range cases {
		if got := tk.EncodeWithSpecials(c.text); !equalIDs(got, c.want) {
			t.Errorf("%q: got %v, want %v", c.text, got, c.want)
		}
	}
	// Plain encoding ignores special tokens but still matches non-special ones.
	got := tk.EncodePlain("<mask>x <mask>")
	if got[0] != id("<mask>x") {
		t.Errorf("non-special added token not matched in plain mode: %v", got)
	}
	for _, x := range got[1:] {
		if tk.IsSpecial(x) {
			t.Errorf("plain mode matched a special token: %v", got)
		}
	}
}

// TestMetaspaceVariant rebuilds Mistral's vocabulary with the newer
// Metaspace pre-tokenizer (prepend_scheme "first") and decoder: plain text
// encodes as with the legacy normalizer, but no ▁ is added after a special
// token, and decoding drops the first token's ▁.
func TestMetaspaceVariant(t *testing.T) {
	raw, err := os.ReadFile(testutil.SharedPath(t, "assets", "tokenizers", "mistral-7b-v0.1-hf", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["normalizer"] = nil
	doc["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
	doc["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{
		map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"},
		map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
	}}
	b, _ := json.Marshal(doc)
	meta, err := FromJSON(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := Load(testutil.SharedPath(t, "assets", "tokenizers", "mistral-7b-v0.1-hf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Hello world", "Hello  world ", "🦙 x\ny", "[INST] hi [/INST]"} {
		if a, b := meta.EncodePlain(s), legacy.EncodePlain(s); !equalIDs(a, b) {
			t.Errorf("%q: metaspace %v, legacy %v", s, a, b)
		}
		ids := meta.EncodePlain(s)
		if d := meta.Decode(ids, true); d != s {
			t.Errorf("%q decodes as %q", s, d)
		}
	}
	// Text that already starts with a space gets no second ▁ (unlike the
	// legacy Prepend normalizer), and decoding drops that first ▁.
	if got := meta.EncodePlain(" Hello"); !equalIDs(got, []int32{22557}) {
		t.Errorf("\" Hello\" = %v, want [22557]", got)
	}
	// After <s> the "first" scheme adds no ▁: "Hello" rather than "▁Hello".
	got := meta.EncodeWithSpecials("<s>Hello")
	hello, _ := meta.TokenID("Hello")
	if len(got) != 2 || got[0] != 1 || got[1] != hello {
		t.Errorf("<s>Hello = %v, want [1 %d]", got, hello)
	}
}

func TestEncodeWithSpecialsWhere(t *testing.T) {
	tk := withAdded(t)
	eot, _ := tk.TokenID("<|eot_id|>")
	user := "hi<|eot_id|>"
	text := user + "<|eot_id|>"
	// Only the template's own token (the second one) may become a control id.
	got := tk.EncodeWithSpecialsWhere(text, func(start, end int) bool { return start >= len(user) })
	want := append(tk.EncodePlain(user), eot)
	if !equalIDs(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if n := countID(tk.EncodeWithSpecials(text), eot); n != 2 {
		t.Errorf("EncodeWithSpecials matched %d control tokens, want 2", n)
	}
}

func countID(ids []int32, id int32) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

func TestSpecialTokensMap(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/tokenizer.json", tinyByteLevelJSON(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/special_tokens_map.json", []byte(`{"bos_token": {"content": "<|begin_of_text|>"}, "eos_token": "<|eot_id|>"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	eot, _ := tk.TokenID("<|eot_id|>")
	bos, _ := tk.TokenID("<|begin_of_text|>")
	if tk.EOS() != eot || tk.BOS() != bos || len(tk.EOG()) != 1 || tk.EOG()[0] != eot {
		t.Errorf("bos %d eos %d eog %v", tk.BOS(), tk.EOS(), tk.EOG())
	}
}
