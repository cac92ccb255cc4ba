package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

func loadUnigram(t testing.TB) *Tokenizer {
	t.Helper()
	tk, err := Load(filepath.Join("testdata", "unigram"))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// loadCharsmap reads the Precompiled charsmap of dir's tokenizer.json.
func loadCharsmap(t testing.TB, dir string) *precompiledMap {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Normalizer struct {
			Normalizers []struct {
				Type     string `json:"type"`
				Charsmap string `json:"precompiled_charsmap"`
			} `json:"normalizers"`
		} `json:"normalizer"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	for _, n := range f.Normalizer.Normalizers {
		if n.Type == "Precompiled" {
			p, err := parsePrecompiled(n.Charsmap)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	t.Fatal("no Precompiled normalizer")
	return nil
}

// jsPrecompiled is what the JS oracle's Precompiled normalizer does
// whatever the charsmap: drop some controls, turn odd spaces into " ", NFKC
// (leaving U+FF5E alone).
func jsPrecompiled(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 1 && r <= 8 || r == 0x0B || r >= 0x0E && r <= 0x1F || r == 0x7F || r == 0x8F || r == 0x9F:
			return -1
		case r == 9 || r == 10 || r == 12 || r == 13 || r == 0xA0 || r == 0x1680 || r >= 0x2000 && r <= 0x200F ||
			r == 0x2028 || r == 0x2029 || r == 0x202F || r == 0x205F || r == 0x2581 || r == 0x3000 || r == 0xFEFF || r == 0xFFFD:
			return ' '
		}
		return r
	}, s)
	parts := strings.Split(s, "\uFF5E")
	for i, p := range parts {
		parts[i] = norm.NFKC.String(p)
	}
	return strings.Join(parts, "\uFF5E")
}

// rustDiffers reports whether Hugging Face's Rust Precompiled normalizer,
// which we follow, and the JS oracle's differ on s (after the fixture's
// collapse of space runs): Rust replaces a grapheme cluster under 6 bytes by
// the rule of its first character and drops the marks after it.
func (p *precompiledMap) rustDiffers(s string) bool {
	collapse := regexp.MustCompile(" {2,}")
	return collapse.ReplaceAllString(p.normalize(s), " ") != collapse.ReplaceAllString(jsPrecompiled(s), " ")
}

// TestUnigram spells out Viterbi segmentation on the fixture (the JS oracle
// covers the corpus when node is present): the highest-scoring split, the
// Metaspace ▁, fused unknown characters, the <s> … </s> template, the
// charsmap's rules (fullwidth, ligature, odd spaces, removed controls,
// composition) and decoding.
func TestUnigram(t *testing.T) {
	tk := loadUnigram(t)
	toks := func(ids []int32) string {
		var s []string
		for _, id := range ids {
			s = append(s, tk.TokenText(id))
		}
		return strings.Join(s, " ")
	}
	cases := []struct{ in, want string }{
		{"Hello world", "<s> ▁Hello ▁world </s>"},
		{"the quick brown fox", "<s> ▁the ▁quick ▁brown ▁fox </s>"},
		{"searching", "<s> ▁search ing </s>"},
		{"😀😀 ok", "<s> ▁ <unk> ▁ok </s>"},
		{"ＡＢＣ", "<s> ▁A B C </s>"},
		{"we\u3000\u3000say\x7f", "<s> ▁we ▁say </s>"},
		{"cafe\u0301", "<s> ▁café </s>"},
		{"<mask> is", "<s> <mask> ▁is </s>"},
		{"", "<s> </s>"},
	}
	for _, c := range cases {
		if got := toks(tk.Encode(c.in, true)); got != c.want {
			t.Errorf("%q:\n got  %s\n want %s", c.in, got, c.want)
		}
	}
	if got := tk.Decode(tk.Encode("Hello world, the café!", true), true); got != "Hello world, the café!" {
		t.Errorf("decode: %q", got)
	}
	if tk.BOS() != 0 || tk.EOS() != 2 || tk.PAD() != 1 {
		t.Errorf("bos/eos/pad %d/%d/%d, want 0/2/1", tk.BOS(), tk.EOS(), tk.PAD())
	}
	// Special pieces are not in the trie: plain text never encodes to them.
	for _, id := range tk.EncodePlain("<s> </s> <unk> <mask>") {
		if tk.IsSpecial(id) && id != tk.uni.unk {
			t.Errorf("EncodePlain produced special id %d (%s)", id, tk.TokenText(id))
		}
	}
}

// unigramDoc is a small tokenizer.json around a Unigram model section.
func unigramDoc(model, normalizer string) []byte {
	if normalizer == "" {
		normalizer = "null"
	}
	return []byte(`{"added_tokens":[{"id":0,"content":"<unk>","special":true}],"normalizer":` + normalizer +
		`,"pre_tokenizer":{"type":"Metaspace","replacement":"▁","add_prefix_space":true},` +
		`"decoder":{"type":"Sequence","decoders":[{"type":"Metaspace","replacement":"▁","add_prefix_space":true},{"type":"ByteFallback"},{"type":"Fuse"}]},"model":` + model + `}`)
}

// TestUnigramByteFallback: with byte_fallback, a run of unknown characters
// becomes its UTF-8 bytes when every <0xXX> piece exists, else one unk;
// without it, one unk per run.
func TestUnigramByteFallback(t *testing.T) {
	vocab := `[["<unk>",0],["▁",-2],["a",-3],["▁a",-2.5],["<0xF0>",-9],["<0x9F>",-9],["<0x98>",-9],["<0x80>",-9]]`
	for _, c := range []struct {
		fallback bool
		in, want string
	}{
		{true, "a😀a", "▁a <0xF0> <0x9F> <0x98> <0x80> a"},
		{true, "a😀😀", "▁a <0xF0> <0x9F> <0x98> <0x80> <0xF0> <0x9F> <0x98> <0x80>"},
		{true, "a€", "▁a <unk>"},
		{false, "a😀😀a", "▁a <unk> a"},
	} {
		model := `{"type":"Unigram","unk_id":0,"vocab":` + vocab + `,"byte_fallback":` + map[bool]string{true: "true", false: "false"}[c.fallback] + `}`
		tk, err := FromJSON(unigramDoc(model, ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids := tk.Encode(c.in, false)
		var s []string
		for _, id := range ids {
			s = append(s, tk.TokenText(id))
		}
		if got := strings.Join(s, " "); got != c.want {
			t.Errorf("%q (fallback %v):\n got  %s\n want %s", c.in, c.fallback, got, c.want)
		}
		if c.fallback && c.in != "a€" {
			if got := tk.Decode(ids, false); got != c.in {
				t.Errorf("decode %q: %q", c.in, got)
			}
		}
	}
}

// TestPrecompiledRustRules: the Precompiled normalizer as Hugging Face's
// Rust one does it, on the fixture's charsmap: a short grapheme cluster
// takes the rule of its shortest matching prefix (so the mark after an
// ideographic space is dropped), a long one goes character by character,
// CR LF is one cluster, and a null charsmap normalizes nothing.
func TestPrecompiledRustRules(t *testing.T) {
	p := loadCharsmap(t, filepath.Join("testdata", "unigram"))
	for _, c := range []struct{ in, want string }{
		{"ﬁ ＡＢ ½", "fi AB 1⁄2"},
		{"\u3000\u0308x", " x"},
		{"cafe\u0301", "café"},
		{"e\u0301\u0301\u0301", "e\u0301\u0301\u0301"},
		{"a\r\nb", "a b"},
		{"x\x01\x7fy", "xy"},
		{"plain ascii", "plain ascii"},
	} {
		if got := p.normalize(c.in); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
	tk, err := FromJSON(unigramDoc(`{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0],["▁Ａ",-1]]}`, `{"type":"Precompiled","precompiled_charsmap":null}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids := tk.Encode("Ａ", false); len(ids) != 1 || ids[0] != 1 {
		t.Errorf("null charsmap changed the text: %v", ids)
	}
}

// TestGraphemeLen checks the cluster rules the normalizer relies on.
func TestGraphemeLen(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"\r\nx", "\r\n"},
		{"e\u0301\u0302x", "e\u0301\u0302"},
		{"\u1100\u1161\u11A8x", "\u1100\u1161\u11A8"},
		{"한국", "한"},
		{"🇫🇷🇩🇪", "🇫🇷"},
		{"👍🏽!", "👍🏽"},
		{"😶\u200d🌫\ufe0fx", "😶\u200d🌫\ufe0f"},
		{"\u0600\u0661x", "\u0600\u0661"},
		{"\u0915\u093F", "\u0915\u093F"},
		{"\x00a", "\x00"},
		{"ab", "a"},
	} {
		if n := graphemeLen(c.in); c.in[:n] != c.want {
			t.Errorf("%q: first cluster %q, want %q", c.in, c.in[:n], c.want)
		}
	}
}

// TestUnigramBadInput: malformed Unigram sections and charsmaps fail with
// a clear error.
func TestUnigramBadInput(t *testing.T) {
	okModel := `{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0],["a",-1]]}`
	pre := func(b []byte) string {
		return `{"type":"Precompiled","precompiled_charsmap":"` + base64.StdEncoding.EncodeToString(b) + `"}`
	}
	cases := []struct{ name, model, normalizer, want string }{
		{"empty vocab", `{"type":"Unigram","unk_id":0,"vocab":[]}`, "", "empty vocab"},
		{"no unk", `{"type":"Unigram","vocab":[["a",-1]]}`, "", "no unk_id"},
		{"unk out of range", `{"type":"Unigram","unk_id":5,"vocab":[["a",-1]]}`, "", "outside the 1 pieces"},
		{"not a pair", `{"type":"Unigram","unk_id":0,"vocab":[["a"]]}`, "", "not a [piece, score] pair"},
		{"score not a number", `{"type":"Unigram","unk_id":0,"vocab":[["a","x"]]}`, "", "entry 0 score"},
		{"empty piece", `{"type":"Unigram","unk_id":0,"vocab":[["",0]]}`, "", "empty piece"},
		{"vocab not a list", `{"type":"Unigram","unk_id":0,"vocab":{"a":0}}`, "", "parse Unigram model"},
		{"charsmap not base64", okModel, `{"type":"Precompiled","precompiled_charsmap":"!!"}`, "not base64"},
		{"charsmap too short", okModel, pre([]byte{1, 0}), "too short"},
		{"charsmap trie too big", okModel, pre([]byte{64, 0, 0, 0, 1, 2, 3, 4}), "does not fit"},
		{"charsmap trie not units", okModel, pre([]byte{2, 0, 0, 0, 1, 2}), "does not fit"},
		{"charsmap bad utf8", okModel, pre([]byte{0, 0, 0, 0, 0xff, 0}), "not valid UTF-8"},
	}
	for _, c := range cases {
		_, err := FromJSON(unigramDoc(c.model, c.normalizer), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

// FuzzUnigram: any text encodes to in-vocabulary ids on the Unigram
// fixture, and arbitrary Unigram sections with arbitrary charsmap bytes
// parse or fail cleanly, never reading outside the trie.
func FuzzUnigram(f *testing.F) {
	tk := loadUnigram(f)
	f.Add("Héllo ＷＯＲＬＤ 你好 ing <s>\u3000\u0308", []byte(`{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0],["▁a",-1],["a",-2],["<0x61>",-3]],"byte_fallback":true}`), []byte{8, 0, 0, 0, 0, 4, 0, 0, 97, 1, 0, 0, 98, 0})
	f.Add("\x00\xff\u0301😀", []byte(`{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0]]}`), []byte{4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, s string, model, charsmap []byte) {
		for _, id := range tk.Encode(s, true) {
			if id < 0 || int(id) >= tk.VocabSize() {
				t.Fatalf("id %d out of range", id)
			}
		}
		_ = tk.Decode(tk.Encode(s, false), true)
		norm := `{"type":"Precompiled","precompiled_charsmap":"` + base64.StdEncoding.EncodeToString(charsmap) + `"}`
		t2, err := FromJSON(unigramDoc(string(model), norm), nil)
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

// BenchmarkUnigramEncode encodes the oracle corpus with the Unigram
// fixture (Precompiled normalizer, Metaspace, Viterbi); cold, the
// word cache is cleared each round so the segmentation itself is measured.
func BenchmarkUnigramEncode(b *testing.B) {
	for _, cold := range []bool{false, true} {
		b.Run(map[bool]string{false: "warm", true: "cold"}[cold], func(b *testing.B) { benchUnigram(b, cold) })
	}
}

func benchUnigram(b *testing.B, cold bool) {
	tk := loadUnigram(b)
	raw, err := os.ReadFile(filepath.Join("testdata", "oracle", "corpus.json"))
	if err != nil {
		b.Fatal(err)
	}
	var c struct {
		Texts []string `json:"texts"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		b.Fatal(err)
	}
	bytes := 0
	for _, s := range c.Texts {
		bytes += len(s)
	}
	b.SetBytes(int64(bytes))
	for b.Loop() {
		if cold {
			tk.cache = wordCache{}
		}
		for _, s := range c.Texts {
			tk.Encode(s, true)
		}
	}
}
