package tokenizer

import (
	"strings"
	"unicode"
)

// A piece is a pre-token. start reports whether it begins the whole input
// (Metaspace's "first" prepend scheme needs to know).
type piece struct {
	text  string
	start bool
}

// A preTokenizer splits pieces further, in Hugging Face pipeline order.
type preTokenizer interface {
	split(in []piece) []piece
}

// splitBehavior says what happens to the matched delimiters.
type splitBehavior int

const (
	behaviorRemoved splitBehavior = iota
	behaviorIsolated
	behaviorMergedWithPrevious
	behaviorMergedWithNext
	behaviorContiguous
)

// span is a byte range of a piece and whether it is a delimiter.
type span struct {
	start, end int
	match      bool
}

// splitWith cuts s at the matches of m and arranges the parts by behavior.
func splitWith(s string, m matcher, behavior splitBehavior, invert bool) []span {
	var spans []span
	prev := 0
	m(s, func(a, b int) {
		if a > prev {
			spans = append(spans, span{prev, a, invert})
		}
		spans = append(spans, span{a, b, !invert})
		prev = b
	})
	if prev < len(s) {
		spans = append(spans, span{prev, len(s), invert})
	}
	var out []span
	switch behavior {
	case behaviorRemoved:
		for _, sp := range spans {
			if !sp.match {
				out = append(out, sp)
			}
		}
	case behaviorIsolated:
		out = spans
	case behaviorMergedWithPrevious:
		prevMatch := false
		for _, sp := range spans {
			if sp.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, sp)
			}
			prevMatch = sp.match
		}
	case behaviorMergedWithNext:
		prevMatch := false
		for i := len(spans) - 1; i >= 0; i-- {
			sp := spans[i]
			if sp.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].start = sp.start
			} else {
				out = append(out, sp)
			}
			prevMatch = sp.match
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	case behaviorContiguous:
		prevMatch := false
		for _, sp := range spans {
			if sp.match && prevMatch && len(out) > 0 {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, sp)
			}
			prevMatch = sp.match
		}
	}
	return out
}

// splitPieces applies a split to every piece, keeping the start flag on the
// first part of a piece that had it.
func splitPieces(in []piece, m matcher, behavior splitBehavior, invert bool) []piece {
	out := make([]piece, 0, len(in)*2)
	for _, p := range in {
		for i, sp := range splitWith(p.text, m, behavior, invert) {
			if sp.end > sp.start {
				out = append(out, piece{p.text[sp.start:sp.end], p.start && i == 0 && sp.start == 0})
			}
		}
	}
	return out
}

// splitPre is the Split pre-tokenizer (and the building block of others).
type splitPre struct {
	m        matcher
	behavior splitBehavior
	invert   bool
}

func (s splitPre) split(in []piece) []piece { return splitPieces(in, s.m, s.behavior, s.invert) }

// byteLevelPre is the ByteLevel pre-tokenizer: an optional prefix space and
// the GPT-2 regex split. The byte-to-alphabet mapping itself happens in the
// model, which reads raw bytes.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

func (b byteLevelPre) split(in []piece) []piece {
	if b.addPrefixSpace {
		cp := make([]piece, len(in))
		for i, p := range in {
			if !strings.HasPrefix(p.text, " ") {
				p.text = " " + p.text
			}
			cp[i] = p
		}
		in = cp
	}
	if !b.useRegex {
		return in
	}
	return splitPieces(in, scanGPT2, behaviorIsolated, false)
}

// metaspacePre replaces spaces with the replacement character (▁), prepends
// one per the scheme, and optionally splits so each piece starts with ▁.
type metaspacePre struct {
	replacement string
	scheme      string // "always", "first" or "never"
	split_      bool
}

func (m metaspacePre) split(in []piece) []piece {
	out := make([]piece, 0, len(in))
	for _, p := range in {
		t := strings.ReplaceAll(p.text, " ", m.replacement)
		if !strings.HasPrefix(t, m.replacement) && (m.scheme == "always" || m.scheme == "first" && p.start) {
			t = m.replacement + t
		}
		out = append(out, piece{t, p.start})
	}
	if !m.split_ {
		return out
	}
	return splitPieces(out, literalMatcher(m.replacement), behaviorMergedWithNext, false)
}

// runeClassMatcher matches single runes satisfying f.
func runeClassMatcher(f func(rune) bool) matcher {
	return func(s string, emit func(a, b int)) {
		for i, r := range s {
			if f(r) {
				emit(i, i+len(string(r)))
			}
		}
	}
}

// runRunMatcher matches maximal runs of runes satisfying f.
func runMatcher(f func(rune) bool) matcher {
	return func(s string, emit func(a, b int)) {
		i := 0
		for i < len(s) {
			r, n := runeAt(s, i)
			if !f(r) {
				i += n
				continue
			}
			e := spanWhile(s, i, f)
			emit(i, e)
			i = e
		}
	}
}

func isDigitHF(r rune) bool { return unicode.IsNumber(r) }

// isWordHF approximates the regex \w (alphanumeric, marks, connector punctuation).
func isWordHF(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r)
}

func isPunctHF(r rune) bool {
	return r < 128 && unicode.IsPunct(r) || r < 128 && unicode.IsSymbol(r) || unicode.IsPunct(r)
}

// whitespacePre is the Whitespace pre-tokenizer: `\w+|[^\w\s]+` kept, the rest dropped.
func whitespaceMatcher(s string, emit func(a, b int)) {
	i := 0
	notWordSpace := func(r rune) bool { return !isWordHF(r) && !unicode.IsSpace(r) }
	for i < len(s) {
		r, n := runeAt(s, i)
		switch {
		case isWordHF(r):
			e := spanWhile(s, i, isWordHF)
			emit(i, e)
			i = e
		case notWordSpace(r):
			e := spanWhile(s, i, notWordSpace)
			emit(i, e)
			i = e
		default:
			i += n
		}
	}
}

// sequencePre runs pre-tokenizers in order.
type sequencePre []preTokenizer

func (s sequencePre) split(in []piece) []piece {
	for _, p := range s {
		in = p.split(in)
	}
	return in
}
