package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is a vocabulary entry matched as a whole in the input before
// normalization and BPE (Hugging Face "added_tokens"; GGUF control and
// user-defined tokens).
type addedToken struct {
	id         int32
	content    string
	special    bool // control token: matched only when specials are allowed
	lstrip     bool // swallow whitespace on the left
	rstrip     bool // swallow whitespace on the right
	singleWord bool // match only outside words
	normalized bool // matched against normalized text
}

// addedMatcher finds added tokens by longest match, indexed by first byte.
type addedMatcher struct {
	byFirst [256][]*addedToken
	any     bool
}

func newAddedMatcher(tokens []*addedToken) *addedMatcher {
	m := &addedMatcher{}
	for _, t := range tokens {
		if t.content == "" {
			continue
		}
		m.byFirst[t.content[0]] = append(m.byFirst[t.content[0]], t)
		m.any = true
	}
	for i := range m.byFirst {
		l := m.byFirst[i]
		sort.SliceStable(l, func(a, b int) bool { return len(l[a].content) > len(l[b].content) })
	}
	return m
}

// segment is either input text (id < 0) or one added token.
type segment struct {
	text  string
	id    int32
	start bool // text begins the whole input
}

func isWordChar(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }

// split cuts text around added tokens. normalized selects which tokens take
// part (those matched on raw or on normalized text); allowSpecial says
// whether control tokens may match.
func (m *addedMatcher) split(text string, start bool, normalized, allowSpecial bool, out []segment) []segment {
	if m == nil || !m.any {
		return append(out, segment{text: text, id: -1, start: start})
	}
	prev := 0 // end of the last emitted token
	emitText := func(a, b int) {
		if b > a {
			out = append(out, segment{text: text[a:b], id: -1, start: start && a == 0})
		}
	}
	for i := 0; i < len(text); {
		var hit *addedToken
		for _, t := range m.byFirst[text[i]] {
			if t.normalized != normalized || t.special && !allowSpecial || !strings.HasPrefix(text[i:], t.content) {
				continue
			}
			end := i + len(t.content)
			if t.singleWord {
				if r, _ := utf8.DecodeLastRuneInString(text[:i]); i > 0 && isWordChar(r) {
					continue
				}
				if r, _ := utf8.DecodeRuneInString(text[end:]); end < len(text) && isWordChar(r) {
					continue
				}
			}
			hit = t
			break
		}
		if hit == nil {
			_, n := utf8.DecodeRuneInString(text[i:])
			i += n
			continue
		}
		a, b := i, i+len(hit.content)
		if hit.lstrip {
			a = prev + len(strings.TrimRightFunc(text[prev:a], unicode.IsSpace))
		}
		if hit.rstrip {
			b = len(text) - len(strings.TrimLeftFunc(text[b:], unicode.IsSpace))
		}
		emitText(prev, a)
		out = append(out, segment{text: hit.content, id: hit.id})
		prev, i = b, b
	}
	emitText(prev, len(text))
	return out
}
