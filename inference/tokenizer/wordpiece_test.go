package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadWordPiece(t testing.TB) *Tokenizer {
	t.Helper()
	tk, err := Load(filepath.Join("testdata", "wordpiece"))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestWordPiece spells out BERT tokenization on our small vocabulary (the
// JS oracle covers the full corpus when node is present): lower-casing and
// accent stripping, punctuation split, ## continuation, CJK split,
// [UNK] for a word with an unknown piece or over max_input_chars_per_word,
// and the [CLS]/[SEP] template.
func TestWordPiece(t *testing.T) {
	tk := loadWordPiece(t)
	toks := func(ids []int32) string {
		var s []string
		for _, id := range ids {
			s = append(s, tk.TokenText(id))
		}
		return strings.Join(s, " ")
	}
	cases := []struct{ in, want string }{
		{"Héllo, WORLD!", "[CLS] hello , world ! [SEP]"},
		{"Searching tokens", "[CLS] search ##ing token ##s [SEP]"},
		{"你好世界abc", "[CLS] 你 好 世 界 a ##b ##c [SEP]"},
		{"naïve ÅNGSTRÖM", "[CLS] n ##a ##i ##v ##e a ##n ##g ##s ##t ##r ##o ##m [SEP]"},
		{"€uro", "[CLS] [UNK] [SEP]"},
		{strings.Repeat("a", 101) + " ok", "[CLS] [UNK] ok [SEP]"},
		{"a\x00b\u200bc\td", "[CLS] a ##b ##c d [SEP]"},
		{"[MASK] is [mask]", "[CLS] [MASK] is [ m ##a ##s ##k ] [SEP]"},
		{"", "[CLS] [SEP]"},
	}
	for _, c := range cases {
		if got := toks(tk.Encode(c.in, true)); got != c.want {
			t.Errorf("%q:\n got  %s\n want %s", c.in, got, c.want)
		}
	}
	if got := tk.Decode(tk.Encode("Searching tokens, quickly!", true), true); got != "searching tokens, quickly!" {
		t.Errorf("decode: %q", got)
	}
	if tk.PAD() != 0 {
		t.Errorf("pad id %d, want 0", tk.PAD())
	}
	// Plain encoding never yields control ids from text.
	for _, id := range tk.EncodePlain("[CLS] hi") {
		if tk.IsSpecial(id) {
			t.Errorf("EncodePlain produced special id %d", id)
		}
	}
}

// FuzzWordPiece: any text encodes to in-vocabulary ids on the WordPiece
// tokenizer, and arbitrary WordPiece model sections parse or fail cleanly.
func FuzzWordPiece(f *testing.F) {
	tj, err := os.ReadFile(filepath.Join("testdata", "wordpiece", "tokenizer.json"))
	if err != nil {
		f.Fatal(err)
	}
	tk, err := FromJSON(tj, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("Héllo WÖRLD 你好 ##ing [CLS]", []byte(`{"type":"WordPiece","vocab":{"[UNK]":0,"a":1,"##":2,"":3},"unk_token":"[UNK]","continuing_subword_prefix":"","max_input_chars_per_word":3}`))
	f.Add("\x00\xff\u0301", []byte(`{"type":"WordPiece","vocab":{"[UNK]":0},"unk_token":"[UNK]"}`))
	f.Fuzz(func(t *testing.T, s string, model []byte) {
		for _, id := range tk.Encode(s, true) {
			if id < 0 || int(id) >= tk.VocabSize() {
				t.Fatalf("id %d out of range", id)
			}
		}
		_ = tk.Decode(tk.Encode(s, false), true)
		doc := `{"normalizer":{"type":"BertNormalizer"},"pre_tokenizer":{"type":"BertPreTokenizer"},"decoder":{"type":"WordPiece"},"model":` + string(model) + `}`
		t2, err := FromJSON([]byte(doc), nil)
		if err != nil {
			return
		}
		ids := t2.Encode(s, true)
		for _, id := range ids {
			if id < 0 || int(id) >= t2.VocabSize() {
				t.Fatalf("id %d out of range", id)
			}
		}
		_ = t2.Decode(ids, false)
	})
}
