package tokenizer

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// A matcher reports the successive non-overlapping, non-empty matches of a
// pattern in s, left to right, as byte offsets.
type matcher func(s string, emit func(start, end int))

// Pre-tokenizer regexes that appear verbatim in real tokenizer.json files and
// have hand-written scanners below (RE2 lacks the (?!\S) lookahead they need,
// and a scanner is several times faster than a backtracking engine).
const (
	gpt2Pattern  = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	llama3Patten = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// newMatcher returns a hand scanner for a known pattern, else compiles the
// pattern with regexp2 (which supports lookaround).
func newMatcher(pattern string) (matcher, error) {
	switch pattern {
	case gpt2Pattern:
		return scanGPT2, nil
	case llama3Patten:
		return scanLlama3(3), nil
	case qwen2Pattern:
		return scanLlama3(1), nil
	}
	return compileRegex(pattern)
}

// compileRegex adapts a Rust-regex pattern to regexp2. A trailing "$" means
// end of text in Rust but also "before a final newline" in .NET syntax.
func compileRegex(pattern string) (matcher, error) {
	p := pattern
	if strings.HasSuffix(p, "$") && !strings.HasSuffix(p, `\$`) {
		p = p[:len(p)-1] + `\z`
	}
	re, err := regexp2.Compile(p, regexp2.Unicode)
	if err != nil {
		return nil, fmt.Errorf("compile pre-tokenizer regex %q: %w", pattern, err)
	}
	return func(s string, emit func(start, end int)) {
		// regexp2 reports rune indices; map them back to byte offsets.
		var offs []int
		runeToByte := func(ri int) int {
			if offs == nil {
				offs = make([]int, 0, len(s)+1)
				for i := range s {
					offs = append(offs, i)
				}
				offs = append(offs, len(s))
			}
			return offs[ri]
		}
		m, err := re.FindStringMatch(s)
		for err == nil && m != nil {
			if m.Length > 0 {
				emit(runeToByte(m.Index), runeToByte(m.Index+m.Length))
			}
			m, err = re.FindNextMatch(m)
		}
	}, nil
}

func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }
func isS(r rune) bool { return unicode.IsSpace(r) }

// runeAt decodes the rune at byte offset i (RuneError, 1 for a bad byte).
func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// spanWhile advances from i over runes satisfying f.
func spanWhile(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		r, n := runeAt(s, i)
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// contraction matches 's 't 're 've 'm 'll 'd at i, ASCII case-insensitive
// (plus U+017F, which Unicode case-folds to s) when fold is set.
func contraction(s string, i int, fold bool) int {
	if i >= len(s) || s[i] != '\'' {
		return 0
	}
	lower := func(j int) (byte, int) {
		if j >= len(s) {
			return 0, 0
		}
		c := s[j]
		if fold {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if strings.HasPrefix(s[j:], "ſ") {
				return 's', len("ſ")
			}
		}
		return c, 1
	}
	c1, n1 := lower(i + 1)
	switch c1 {
	case 's', 't', 'm', 'd':
		return 1 + n1
	case 'r', 'v', 'l':
		c2, n2 := lower(i + 1 + n1)
		if (c1 == 'r' || c1 == 'v') && c2 == 'e' || c1 == 'l' && c2 == 'l' {
			return 1 + n1 + n2
		}
	}
	return 0
}

// whitespaceTail handles `\s+(?!\S)|\s+` at i (s[i] is whitespace): the run
// minus its last character when a non-space follows and the run is longer
// than one character.
func whitespaceTail(s string, i int) int {
	end := spanWhile(s, i, isS)
	if end < len(s) {
		_, lastLen := utf8.DecodeLastRuneInString(s[i:end])
		if end-lastLen > i {
			return end - lastLen
		}
	}
	return end
}

// scanGPT2 implements gpt2Pattern.
func scanGPT2(s string, emit func(start, end int)) {
	i := 0
	for i < len(s) {
		e := gpt2At(s, i)
		emit(i, e)
		i = e
	}
}

func gpt2At(s string, i int) int {
	if n := contraction(s, i, false); n > 0 {
		return i + n
	}
	j := i
	if s[i] == ' ' {
		j = i + 1
	}
	if r, _ := runeAt(s, j); r >= 0 {
		switch {
		case isL(r):
			return spanWhile(s, j, isL)
		case isN(r):
			return spanWhile(s, j, isN)
		case !isS(r):
			return spanWhile(s, j, func(r rune) bool { return !isS(r) && !isL(r) && !isN(r) })
		}
	}
	// Only whitespace is left at i (a lone leading space was handled above).
	return whitespaceTail(s, i)
}

// scanLlama3 implements llama3Patten (maxDigits 3) and qwen2Pattern (1).
func scanLlama3(maxDigits int) matcher {
	return func(s string, emit func(start, end int)) {
		i := 0
		for i < len(s) {
			e := llama3At(s, i, maxDigits)
			emit(i, e)
			i = e
		}
	}
}

func isNewline(r rune) bool { return r == '\r' || r == '\n' }

func llama3At(s string, i, maxDigits int) int {
	if n := contraction(s, i, true); n > 0 {
		return i + n
	}
	r, n := runeAt(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isL(r) {
		return spanWhile(s, i, isL)
	}
	if !isNewline(r) && !isN(r) {
		if r2, _ := runeAt(s, i+n); r2 >= 0 && isL(r2) {
			return spanWhile(s, i+n, isL)
		}
	}
	// \p{N}{1,3}
	if isN(r) {
		j := i
		for k := 0; k < maxDigits; k++ {
			r, n := runeAt(s, j)
			if r < 0 || !isN(r) {
				break
			}
			j += n
		}
		return j
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if r == ' ' {
		j = i + 1
	}
	if r2, _ := runeAt(s, j); r2 >= 0 && !isS(r2) && !isL(r2) && !isN(r2) {
		j = spanWhile(s, j, func(r rune) bool { return !isS(r) && !isL(r) && !isN(r) })
		return spanWhile(s, j, isNewline)
	}
	// \s*[\r\n]+ : the whitespace run up to and including its last newline.
	end := spanWhile(s, i, isS)
	lastNL := -1
	for k := i; k < end; k++ {
		if s[k] == '\r' || s[k] == '\n' {
			lastNL = k
		}
	}
	if lastNL >= 0 {
		return lastNL + 1
	}
	return whitespaceTail(s, i)
}
