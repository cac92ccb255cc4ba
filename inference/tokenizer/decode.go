package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// A decodeStep is one Hugging Face decoder. chain transforms the whole token
// list exactly as Hugging Face does; local gives one token's contribution in
// isolation (used for TokenBytes and streaming).
type decodeStep interface {
	chain(toks []string) []string
	local(tok string) string
}

type byteLevelDec struct{}

func (byteLevelDec) chain(toks []string) []string {
	var raw []byte
	for _, t := range toks {
		raw = append(raw, byteLevelDecode(t)...)
	}
	return []string{string(appendLossy(nil, raw))}
}

func (byteLevelDec) local(tok string) string { return string(byteLevelDecode(tok)) }

type replaceDec struct {
	m       matcher
	content string
}

func (r replaceDec) chain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = replaceAll(t, r.m, r.content)
	}
	return out
}

func (r replaceDec) local(tok string) string { return replaceAll(tok, r.m, r.content) }

// byteFallbackDec turns "<0xXX>" tokens back into bytes; a run of them that
// is not valid UTF-8 becomes one U+FFFD per byte, as in Hugging Face.
type byteFallbackDec struct{}

func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	v := 0
	for _, c := range t[3:5] {
		switch {
		case c >= '0' && c <= '9':
			v = v*16 + int(c-'0')
		case c >= 'A' && c <= 'F':
			v = v*16 + int(c-'A'+10)
		case c >= 'a' && c <= 'f':
			v = v*16 + int(c-'a'+10)
		default:
			return 0, false
		}
	}
	return byte(v), true
}

func (byteFallbackDec) chain(toks []string) []string {
	out := make([]string, 0, len(toks))
	var run []byte
	flush := func() {
		if len(run) == 0 {
			return
		}
		if utf8.Valid(run) {
			out = append(out, string(run))
		} else {
			for range run {
				out = append(out, "\uFFFD")
			}
		}
		run = run[:0]
	}
	for _, t := range toks {
		if b, ok := parseByteToken(t); ok {
			run = append(run, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

func (byteFallbackDec) local(tok string) string {
	if b, ok := parseByteToken(tok); ok {
		return string([]byte{b})
	}
	return tok
}

type fuseDec struct{}

func (fuseDec) chain(toks []string) []string { return []string{strings.Join(toks, "")} }
func (fuseDec) local(tok string) string      { return tok }

// stripDec removes up to start leading and stop trailing copies of content
// from every token (after a Fuse, that means from the whole text).
type stripDec struct {
	content     rune
	start, stop int
	perToken    bool // no Fuse before it: strip applies to each token alone
}

func (s stripDec) strip(t string) string {
	for i := 0; i < s.start; i++ {
		r, n := utf8.DecodeRuneInString(t)
		if n == 0 || r != s.content {
			break
		}
		t = t[n:]
	}
	for i := 0; i < s.stop; i++ {
		r, n := utf8.DecodeLastRuneInString(t)
		if n == 0 || r != s.content {
			break
		}
		t = t[:len(t)-n]
	}
	return t
}

func (s stripDec) chain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = s.strip(t)
	}
	return out
}

func (s stripDec) local(tok string) string {
	if s.perToken {
		return s.strip(tok)
	}
	return tok
}

// metaspaceDec turns ▁ back into spaces; in the first token Hugging Face
// drops them instead unless the prepend scheme is "never".
type metaspaceDec struct {
	replacement string
	prepend     bool
}

func (m metaspaceDec) chain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		if i == 0 && m.prepend {
			out[i] = strings.ReplaceAll(t, m.replacement, "")
		} else {
			out[i] = strings.ReplaceAll(t, m.replacement, " ")
		}
	}
	return out
}

func (m metaspaceDec) local(tok string) string { return strings.ReplaceAll(tok, m.replacement, " ") }

// decoderPipeline is a full decoder plus what streaming needs to know about
// leading-space removal at the start of the text.
type decoderPipeline struct {
	steps     []decodeStep
	leadStrip int // spaces to drop at the very start of decoded text
}

func newDecoderPipeline(steps []decodeStep) *decoderPipeline {
	p := &decoderPipeline{steps: steps}
	fused := false
	for i, s := range steps {
		switch d := s.(type) {
		case fuseDec, byteLevelDec:
			fused = true
		case stripDec:
			d.perToken = !fused
			steps[i] = d
			if fused && d.content == ' ' {
				p.leadStrip += d.start
			}
		case metaspaceDec:
			if d.prepend {
				p.leadStrip++
			}
		case wordPieceDec:
			p.leadStrip++
		}
	}
	return p
}

func (p *decoderPipeline) decode(toks []string) string {
	if p == nil || len(p.steps) == 0 {
		return strings.Join(toks, " ")
	}
	for _, s := range p.steps {
		toks = s.chain(toks)
	}
	return strings.Join(toks, "")
}

func (p *decoderPipeline) local(tok string) []byte {
	if p == nil {
		return []byte(tok)
	}
	for _, s := range p.steps {
		tok = s.local(tok)
	}
	return []byte(tok)
}

// cleanUpSpaces is transformers' clean_up_tokenization_spaces: the same
// replacements, applied one after another.
func cleanUpSpaces(s string) string {
	for _, r := range [][2]string{
		{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
		{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

func (p *decoderPipeline) leadStripCount() int {
	if p == nil {
		return 0
	}
	return p.leadStrip
}
