package tokenizer

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// A normalizer rewrites a text segment before pre-tokenization.
type normalizer func(string) string

func sequenceNormalizer(ns []normalizer) normalizer {
	return func(s string) string {
		for _, n := range ns {
			s = n(s)
		}
		return s
	}
}

func unicodeNormalizer(f norm.Form) normalizer { return f.String }

// prependNormalizer adds a prefix to non-empty text (SentencePiece's "▁").
func prependNormalizer(prefix string) normalizer {
	return func(s string) string {
		if s == "" {
			return s
		}
		return prefix + s
	}
}

func replaceNormalizer(m matcher, content string) normalizer {
	return func(s string) string { return replaceAll(s, m, content) }
}

// replaceAll substitutes content for every match of m.
func replaceAll(s string, m matcher, content string) string {
	var b strings.Builder
	prev := 0
	m(s, func(a, e int) {
		b.WriteString(s[prev:a])
		b.WriteString(content)
		prev = e
	})
	if prev == 0 {
		return s
	}
	b.WriteString(s[prev:])
	return b.String()
}

// literalMatcher matches a fixed string.
func literalMatcher(lit string) matcher {
	return func(s string, emit func(a, b int)) {
		if lit == "" {
			return
		}
		for i := 0; ; {
			k := strings.Index(s[i:], lit)
			if k < 0 {
				return
			}
			emit(i+k, i+k+len(lit))
			i += k + len(lit)
		}
	}
}

func lowercaseNormalizer(s string) string { return strings.ToLower(s) }

func stripNormalizer(left, right bool) normalizer {
	return func(s string) string {
		if left {
			s = strings.TrimLeftFunc(s, unicode.IsSpace)
		}
		if right {
			s = strings.TrimRightFunc(s, unicode.IsSpace)
		}
		return s
	}
}
