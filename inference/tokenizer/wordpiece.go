package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// wordPieceModel is BERT's WordPiece: each pre-token is cut greedily into
// the longest vocabulary entries from the left, pieces after the first
// spelled with the continuation prefix ("##"). A word with a piece missing
// from the vocabulary, or longer than maxChars characters, becomes the
// unknown token as a whole.
type wordPieceModel struct {
	vocab    map[string]int32
	prefix   string
	unk      int32
	maxChars int
}

func (m *wordPieceModel) encode(w string, out []int32) []int32 {
	if w == "" {
		return out
	}
	if utf8.RuneCountInString(w) > m.maxChars {
		return append(out, m.unk)
	}
	n := len(out)
	var buf []byte
	for start := 0; start < len(w); {
		end := len(w)
		found := int32(-1)
		for end > start {
			var id int32
			var ok bool
			if start == 0 {
				id, ok = m.vocab[w[:end]]
			} else {
				buf = append(append(buf[:0], m.prefix...), w[start:end]...)
				id, ok = m.vocab[string(buf)]
			}
			if ok {
				found = id
				break
			}
			_, sz := utf8.DecodeLastRuneInString(w[start:end])
			end -= sz
		}
		if found < 0 {
			return append(out[:n], m.unk)
		}
		out = append(out, found)
		start = end
	}
	return out
}

// bertNormalizer is Hugging Face's BertNormalizer: clean_text drops NUL,
// U+FFFD and control characters and turns whitespace into spaces;
// handle_chinese_chars puts spaces around CJK ideographs; strip_accents
// (by default when lowercasing) removes nonspacing marks after NFD.
func bertNormalizer(cleanText, chinese, lowercase bool, stripAccents *bool) normalizer {
	strip := lowercase
	if stripAccents != nil {
		strip = *stripAccents
	}
	return func(s string) string {
		var b strings.Builder
		b.Grow(len(s) + 8)
		for _, r := range s {
			if cleanText {
				if r == 0 || r == utf8.RuneError || isBertControl(r) {
					continue
				}
				if unicode.IsSpace(r) {
					r = ' '
				}
			}
			if chinese && isCJK(r) {
				b.WriteByte(' ')
				b.WriteRune(r)
				b.WriteByte(' ')
				continue
			}
			b.WriteRune(r)
		}
		s = b.String()
		if strip {
			s = stripMarks(norm.NFD.String(s))
		}
		if lowercase {
			s = strings.ToLower(s)
		}
		return s
	}
}

// isBertControl: control, format and private-use characters, except the
// tab and line breaks that clean_text turns into spaces.
func isBertControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co)
}

// isCJK reports CJK Unified Ideographs (and extensions, compatibility
// ideographs), the ranges BERT's tokenizer splits into single characters.
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF || r >= 0x2A700 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x2F800 && r <= 0x2FA1F
}

func stripMarks(s string) string {
	if !strings.ContainsFunc(s, isMn) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isMn(r) {
			return -1
		}
		return r
	}, s)
}

func isMn(r rune) bool { return unicode.Is(unicode.Mn, r) }

// bertPre is BertPreTokenizer: split on whitespace (dropped), then every
// punctuation character is a pre-token of its own.
var bertPre = sequencePre{
	splitPre{m: runMatcher(isS), behavior: behaviorRemoved},
	splitPre{m: runeClassMatcher(isPunctHF), behavior: behaviorIsolated},
}

// wordPieceDec is the WordPiece decoder: pieces with the continuation
// prefix join the previous one, other tokens after the first get a space,
// and with cleanup each token gets transformers' space clean-up.
type wordPieceDec struct {
	prefix  string
	cleanup bool
}

func (d wordPieceDec) chain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		if i > 0 {
			if d.prefix != "" && strings.HasPrefix(t, d.prefix) {
				t = strings.Replace(t, d.prefix, "", 1)
			} else {
				t = " " + t
			}
		}
		if d.cleanup {
			t = cleanUpSpaces(t)
		}
		out[i] = t
	}
	return out
}

func (d wordPieceDec) local(tok string) string {
	if d.prefix != "" && strings.HasPrefix(tok, d.prefix) {
		return tok[len(d.prefix):]
	}
	return " " + tok
}
