package jinja

import (
	"fmt"
	"strings"
)

// tokenKind classifies lexer output. Template text is split into data runs and
// the tokens inside {{ }}, {% %} (comments are dropped).
type tokenKind int

const (
	tokData tokenKind = iota
	tokVarBegin
	tokVarEnd
	tokBlockBegin
	tokBlockEnd
	tokName
	tokString
	tokInt
	tokFloat
	tokOp
	tokEOF
)

type token struct {
	kind tokenKind
	val  string
	line int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of template"
	case tokData:
		return "template data"
	case tokBlockEnd:
		return "end of statement block"
	case tokVarEnd:
		return "end of print statement"
	}
	return fmt.Sprintf("%q", t.val)
}

// lexer reproduces Jinja2's whitespace rules with trim_blocks and
// lstrip_blocks on, as transformers configures them: "-" strips all
// whitespace on that side, trim_blocks drops one newline after %} and #},
// lstrip_blocks drops spaces and tabs between a line start and {% or {#.
type lexer struct {
	src    string
	pos    int
	line   int
	toks   []token
	trimNL bool // the previous tag asked for trim_blocks on the following data
}

func tokenize(src string) ([]token, error) {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.ReplaceAll(src, "\r", "\n")
	// keep_trailing_newline is off: one trailing newline is dropped.
	src = strings.TrimSuffix(src, "\n")
	lx := &lexer{src: src, line: 1}
	if err := lx.run(); err != nil {
		return nil, err
	}
	return lx.toks, nil
}

func (lx *lexer) emit(kind tokenKind, val string) {
	lx.toks = append(lx.toks, token{kind: kind, val: val, line: lx.line})
}

func (lx *lexer) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", lx.line, fmt.Sprintf(format, args...))
}

// nextTag finds the next {{, {% or {# at or after from.
func (lx *lexer) nextTag(from int) int {
	for i := from; i+1 < len(lx.src); i++ {
		if lx.src[i] == '{' {
			switch lx.src[i+1] {
			case '{', '%', '#':
				return i
			}
		}
	}
	return -1
}

func (lx *lexer) run() error {
	for lx.pos < len(lx.src) {
		if lx.trimNL && lx.src[lx.pos] == '\n' {
			lx.pos++
			lx.line++
		}
		lx.trimNL = false
		start := lx.pos
		tag := lx.nextTag(start)
		end := tag
		if tag < 0 {
			end = len(lx.src)
		}
		text := lx.src[start:end]
		if tag >= 0 {
			kind := lx.src[tag+1]
			sign := byte(0)
			if tag+2 < len(lx.src) && (lx.src[tag+2] == '-' || lx.src[tag+2] == '+') {
				sign = lx.src[tag+2]
			}
			switch {
			case sign == '-':
				text = strings.TrimRight(text, " \t\n\r\f\v")
			case sign != '+' && kind != '{':
				// lstrip_blocks: whitespace between the line start and the tag.
				lpos := strings.LastIndexByte(text, '\n') + 1
				// Jinja2 also strips when the previous tag's match ended in a newline.
				lineStart := lpos > 0 || start == 0 || lx.src[start-1] == '\n'
				if lineStart && lpos < len(text) && strings.Trim(text[lpos:], " \t\f\v\r") == "" {
					text = text[:lpos]
				}
			}
		}
		if text != "" {
			lx.emit(tokData, text)
		}
		lx.line += strings.Count(lx.src[start:max(end, start)], "\n")
		if tag < 0 {
			lx.pos = len(lx.src)
			break
		}
		lx.pos = tag + 2
		if lx.pos < len(lx.src) && (lx.src[lx.pos] == '-' || lx.src[lx.pos] == '+') {
			lx.pos++
		}
		var err error
		switch lx.src[tag+1] {
		case '#':
			err = lx.comment()
		case '{':
			lx.emit(tokVarBegin, "{{")
			err = lx.inside("}}", tokVarEnd)
		case '%':
			lx.emit(tokBlockBegin, "{%")
			err = lx.inside("%}", tokBlockEnd)
		}
		if err != nil {
			return err
		}
	}
	lx.emit(tokEOF, "")
	return nil
}

func (lx *lexer) comment() error {
	i := strings.Index(lx.src[lx.pos:], "#}")
	if i < 0 {
		return lx.errorf("unterminated comment")
	}
	body := lx.src[lx.pos : lx.pos+i]
	lx.line += strings.Count(body, "\n")
	end := lx.pos + i + 2
	if strings.HasSuffix(body, "-") {
		end = lx.skipSpace(end)
	} else if !strings.HasSuffix(body, "+") {
		lx.trimNL = true
	}
	lx.pos = end
	return nil
}

func (lx *lexer) skipSpace(i int) int {
	for i < len(lx.src) && strings.IndexByte(" \t\n\r\f\v", lx.src[i]) >= 0 {
		if lx.src[i] == '\n' {
			lx.line++
		}
		i++
	}
	return i
}

var operators = []string{"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"}

// inside tokenizes expression tokens until the closing delimiter.
func (lx *lexer) inside(closer string, endKind tokenKind) error {
	depth := 0
	for {
		for lx.pos < len(lx.src) && strings.IndexByte(" \t\n\r\f\v", lx.src[lx.pos]) >= 0 {
			if lx.src[lx.pos] == '\n' {
				lx.line++
			}
			lx.pos++
		}
		if lx.pos >= len(lx.src) {
			return lx.errorf("unexpected end of template, expected %q", closer)
		}
		rest := lx.src[lx.pos:]
		if depth == 0 {
			if strings.HasPrefix(rest, "-"+closer) {
				lx.emit(endKind, closer)
				lx.pos = lx.skipSpace(lx.pos + 3)
				return nil
			}
			if strings.HasPrefix(rest, "+"+closer) && endKind == tokBlockEnd {
				lx.emit(endKind, closer)
				lx.pos += 3
				return nil
			}
			if strings.HasPrefix(rest, closer) {
				lx.emit(endKind, closer)
				lx.pos += 2
				if endKind == tokBlockEnd {
					lx.trimNL = true
				}
				return nil
			}
		}
		c := rest[0]
		switch {
		case c == '"' || c == '\'':
			s, n, err := lx.stringLiteral(rest)
			if err != nil {
				return err
			}
			lx.emit(tokString, s)
			lx.pos += n
		case c >= '0' && c <= '9':
			n, isFloat := scanNumber(rest)
			kind := tokInt
			if isFloat {
				kind = tokFloat
			}
			lx.emit(kind, strings.ReplaceAll(rest[:n], "_", ""))
			lx.pos += n
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			n := 1
			for n < len(rest) && (rest[n] == '_' || rest[n] >= 'a' && rest[n] <= 'z' || rest[n] >= 'A' && rest[n] <= 'Z' || rest[n] >= '0' && rest[n] <= '9') {
				n++
			}
			lx.emit(tokName, rest[:n])
			lx.pos += n
		default:
			op := ""
			for _, o := range operators {
				if strings.HasPrefix(rest, o) {
					op = o
					break
				}
			}
			if op == "" {
				return lx.errorf("unexpected character %q", c)
			}
			switch op {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			}
			lx.emit(tokOp, op)
			lx.pos += len(op)
		}
	}
}

func scanNumber(s string) (n int, isFloat bool) {
	digits := func(i int) int {
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '_') {
			i++
		}
		return i
	}
	n = digits(0)
	if n+1 < len(s) && s[n] == '.' && s[n+1] >= '0' && s[n+1] <= '9' {
		n = digits(n + 1)
		isFloat = true
	}
	if n < len(s) && (s[n] == 'e' || s[n] == 'E') {
		j := n + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			n = digits(j)
			isFloat = true
		}
	}
	return n, isFloat
}

// stringLiteral decodes a Python string literal (the escapes Jinja2 accepts).
func (lx *lexer) stringLiteral(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
		case c == '\n':
			lx.line++
			b.WriteByte(c)
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\\', '\'', '"':
				b.WriteByte(e)
			case '\n':
				lx.line++
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'v':
				b.WriteByte('\v')
			case '0':
				b.WriteByte(0)
			case 'x', 'u', 'U':
				size := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if i+size >= len(s) {
					return "", 0, lx.errorf("truncated \\%c escape", e)
				}
				var r rune
				for _, h := range s[i+1 : i+1+size] {
					d := hexDigit(byte(h))
					if d < 0 {
						return "", 0, lx.errorf("bad \\%c escape", e)
					}
					r = r*16 + rune(d)
				}
				b.WriteRune(r)
				i += size
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, lx.errorf("unterminated string")
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
