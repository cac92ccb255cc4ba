package tokenizer

import (
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

// addedMatcher finds added tokens by longest match with a byte trie, so
// vocabularies with thousands of added tokens (Gemma 3) stay fast.
type addedMatcher struct {
	root  [256]int32 // first byte -> node index (0 = none)
	nodes []trieNode
	any   bool
}

type trieNode struct {
	next map[byte]int32
	tok  *addedToken // token ending here, if any
}

func newAddedMatcher(tokens []*addedToken) *addedMatcher {
	m := &addedMatcher{nodes: make([]trieNode, 1)} // node 0 is unused
	for _, t := range tokens {
		if t.content == "" {
			continue
		}
		m.any = true
		n := m.root[t.content[0]]
		if n == 0 {
			n = int32(len(m.nodes))
			m.nodes = append(m.nodes, trieNode{})
			m.root[t.content[0]] = n
		}
		for k := 1; k < len(t.content); k++ {
			c := t.content[k]
			nx, ok := m.nodes[n].next[c]
			if !ok {
				nx = int32(len(m.nodes))
				m.nodes = append(m.nodes, trieNode{})
				if m.nodes[n].next == nil {
					m.nodes[n].next = map[byte]int32{}
				}
				m.nodes[n].next[c] = nx
			}
			n = nx
		}
		if m.nodes[n].tok == nil || t.id < m.nodes[n].tok.id {
			m.nodes[n].tok = t
		}
	}
	return m
}

// candidates appends the eligible tokens that start at text[i:], shortest first.
func (m *addedMatcher) candidates(text string, i int, normalized bool, sp specialPolicy, buf []*addedToken) []*addedToken {
	n := m.root[text[i]]
	for k := i + 1; n != 0; k++ {
		if t := m.nodes[n].tok; t != nil && t.normalized == normalized && (!t.special || sp.allows(i, i+len(t.content))) {
			buf = append(buf, t)
		}
		if k >= len(text) {
			break
		}
		n = m.nodes[n].next[text[k]]
	}
	return buf
}

// specialPolicy says where special tokens written in the text may match:
// everywhere (all), nowhere, or where at approves the byte range.
type specialPolicy struct {
	all bool
	at  func(start, end int) bool
}

func (p specialPolicy) allows(start, end int) bool {
	return p.all || p.at != nil && p.at(start, end)
}

// segment is either input text (id < 0) or one added token.
type segment struct {
	text  string
	id    int32
	start bool // text begins the whole input
}

func isWordChar(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }

// split cuts text around added tokens. normalized selects which tokens take
// part (those matched on raw or on normalized text); sp says where control
// tokens may match.
func (m *addedMatcher) split(text string, start bool, normalized bool, sp specialPolicy, out []segment) []segment {
	if m == nil || !m.any {
		return append(out, segment{text: text, id: -1, start: start})
	}
	prev := 0 // end of the last emitted token
	emitText := func(a, b int) {
		if b > a {
			out = append(out, segment{text: text[a:b], id: -1, start: start && a == 0})
		}
	}
	var cands []*addedToken
	for i := 0; i < len(text); {
		var hit *addedToken
		if m.root[text[i]] != 0 {
			cands = m.candidates(text, i, normalized, sp, cands[:0])
			for c := len(cands) - 1; c >= 0; c-- {
				t := cands[c]
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
