package chat

import (
	"encoding/json"
	"strings"
)

// CallDelta is one piece of a tool call as a stream sends it. A call's
// first delta (First) carries its Name; later ones carry Arguments text,
// which joined in order make the call's arguments.
type CallDelta struct {
	Index     int // the call's position in the reply
	First     bool
	Name      string
	Arguments string
}

// argumentFragment is the size of the pieces in which a call known only at
// the end of the reply has its arguments sent, as OpenAI streams them in
// several deltas.
const argumentFragment = 16

// appendCallDeltas renders call index i as it streams: a first delta with
// the name, then the arguments in fragments cut at UTF-8 boundaries.
func appendCallDeltas(out []CallDelta, i int, c ParsedCall) []CallDelta {
	out = append(out, CallDelta{Index: i, First: true, Name: c.Name})
	args := c.Arguments
	for len(args) > 0 {
		n := min(argumentFragment, len(args))
		for n < len(args) && args[n]&0xC0 == 0x80 {
			n++
		}
		out = append(out, CallDelta{Index: i, Arguments: args[:n]})
		args = args[n:]
	}
	return out
}

// CallDeltas renders whole calls as a stream sends them (see CallDelta).
func CallDeltas(calls []ParsedCall) []CallDelta {
	var out []CallDelta
	for i, c := range calls {
		out = appendCallDeltas(out, i, c)
	}
	return out
}

// ToolStream parses one choice's output while it is generated. Push
// releases the text that is certainly content and, for Hermes, each call
// once its name is written, then its arguments object as it grows; Finish
// parses the whole reply as ParseReply does and sends what is left. Each
// byte of output is read a bounded number of times, so a reply costs O(n)
// however it is cut into pieces.
type ToolStream struct {
	format   ToolFormat
	parallel bool
	buf      strings.Builder // all text so far
	released int             // text[:released] went out as content
	deltas   []CallDelta     // Push's result, reused

	open   markerSearch // the first call marker (Hermes, Mistral)
	lead   int          // Llama 3: where the first non-space byte is, or -1
	spaces int          // Llama 3: text[:spaces] is all spaces

	calls []streamedCall // Hermes calls whose name went out
	h     hermesReader
}

type streamedCall struct {
	name string
	args int // bytes of arguments sent
}

// NewToolStream starts parsing a reply in format; parallel false keeps only
// the first call, as parallel_tool_calls false asks.
func NewToolStream(format ToolFormat, parallel bool) *ToolStream {
	s := &ToolStream{format: format, parallel: parallel, lead: -1}
	s.open = markerSearch{marker: format.syntax().open, at: -1}
	return s
}

// SafeContentPrefix is for streaming: given all text generated so far, it
// returns n such that text[:n] is certainly plain content and may be sent as
// deltas now; text[n:] might be (the start of) a tool call and must be held
// until more text arrives or generation ends (then call ParseToolCalls on
// the whole text). n never decreases as text grows.
func SafeContentPrefix(format ToolFormat, text string) int {
	s := NewToolStream(format, true)
	s.buf.WriteString(text)
	return s.safe(text)
}

// MayBeToolCall reports whether some of text must be held back.
func MayBeToolCall(format ToolFormat, text string) bool {
	return SafeContentPrefix(format, text) < len(text)
}

// safe returns how much of all (the whole text so far) is certainly
// content.
func (s *ToolStream) safe(all string) int {
	switch s.format {
	case ToolFormatHermes, ToolFormatMistral:
		if i := s.open.find(all); i >= 0 {
			return i
		}
		return len(all) - partialSuffix(all, s.open.marker)
	case ToolFormatLlama3:
		// A Llama call is the whole reply: hold everything until the first
		// non-space bytes show it is not JSON or <|python_tag|>.
		if s.lead < 0 {
			rest := strings.TrimLeft(all[s.spaces:], " \t\r\n")
			if rest == "" {
				s.spaces = len(all)
				return 0
			}
			s.lead = len(all) - len(rest)
		}
		lead := all[s.lead:]
		if lead[0] == '{' || strings.HasPrefix(lead, pythonTag) || strings.HasPrefix(pythonTag, lead) {
			return 0
		}
		return len(all)
	}
	return len(all)
}

// Push adds newly generated text. It returns the text now certain to be
// content and the call deltas now certain; the deltas are valid until the
// next call.
func (s *ToolStream) Push(text string) (content string, deltas []CallDelta) {
	s.buf.WriteString(text)
	all := s.buf.String()
	s.deltas = s.deltas[:0]
	n := max(s.safe(all), s.released)
	content, s.released = all[s.released:n], n
	if s.format == ToolFormatHermes && s.open.at >= 0 {
		s.readHermes(all)
	}
	return content, s.deltas
}

// StreamEnd is what is left to send when a reply ends.
type StreamEnd struct {
	// Content is the rest of the content, not yet sent.
	Content string
	// Deltas finish the calls: the rest of those streamed, then the others
	// whole.
	Deltas []CallDelta
	// ToolCalls reports that the reply holds tool calls.
	ToolCalls bool
	// Err says why text that looked like a tool call is reported as
	// content (for the log).
	Err error
	// Mismatch: calls went out while streaming but the whole reply does not
	// parse to them (the model broke its JSON later). Content then holds all
	// the text not yet sent.
	Mismatch bool
}

// Finish adds the last text of the reply and reconciles what was streamed
// with the reply parsed whole by ParseReply (truncated: max_tokens cut it).
func (s *ToolStream) Finish(last string, truncated bool) StreamEnd {
	s.buf.WriteString(last)
	all := s.buf.String()
	sent := s.released
	end := StreamEnd{Content: all[sent:]}
	content, calls, err := ParseReply(s.format, all, truncated)
	end.Err = err
	if !s.parallel && len(calls) > 1 {
		calls = calls[:1]
	}
	if len(calls) > 0 || len(s.calls) > 0 || (truncated && err == nil && content != all) {
		if deltas, ok := s.reconcile(all, calls); ok {
			// The held text was calls; send whatever content it still
			// holds beyond what already went out.
			end.Content = ""
			if after, found := strings.CutPrefix(content, strings.TrimSpace(all[:sent])); found && strings.TrimSpace(after) != "" {
				end.Content = after
			}
			end.Deltas = deltas
			end.ToolCalls = len(calls) > 0
		} else {
			end.Mismatch = true
		}
	}
	s.released = len(all)
	return end
}

// reconcile returns the deltas that complete calls given what was
// streamed; ok is false when the streamed calls disagree with them.
func (s *ToolStream) reconcile(all string, calls []ParsedCall) (deltas []CallDelta, ok bool) {
	if len(calls) < len(s.calls) {
		return nil, false
	}
	for i, c := range calls {
		if i >= len(s.calls) {
			deltas = appendCallDeltas(deltas, i, c)
			continue
		}
		sc := s.calls[i]
		sentArgs := all[s.h.argsAt[i] : s.h.argsAt[i]+sc.args]
		if sc.name != c.Name || !strings.HasPrefix(c.Arguments, sentArgs) {
			return nil, false
		}
		if rest := c.Arguments[len(sentArgs):]; rest != "" {
			deltas = append(deltas, CallDelta{Index: i, Arguments: rest})
		}
	}
	return deltas, true
}

// hermesReader follows Hermes calls after the first <tool_call>, one block
// (the text between two opening tags) at a time. A call goes out once its
// body starts {"name": "…", "arguments": {; its arguments then stream up to
// the end of that object, the body's end (a closing or opening tag) or the
// text's end, whichever comes first.
type hermesReader struct {
	started   bool
	stopped   bool // a call that is not name-first: later calls wait for Finish too
	block     int  // which call's block is read
	bodyStart int
	nextOpen  markerSearch // the next block's opening tag
	close     markerSearch // this block's closing tag
	pos       int          // next byte of the body to read
	header    headerScan
	argsDone  bool // the call's arguments are complete (the object or body ended)
	args      objectScan
	argsAt    []int // where each streamed call's arguments begin
}

func (s *ToolStream) readHermes(all string) {
	h := &s.h
	if !h.started {
		h.started = true
		h.startBlock(s.open.at + len(hermesOpen))
	}
	for !h.stopped {
		if h.block > 0 && !s.parallel {
			h.stopped = true
			return
		}
		// The body ends at this block's closing tag or the next opening
		// tag, whichever comes first.
		bodyEnd := -1
		if c := h.close.find(all); c >= 0 {
			bodyEnd = c
		}
		o := h.nextOpen.find(all)
		if o >= 0 && (bodyEnd < 0 || o < bodyEnd) {
			bodyEnd = o
		}
		limit := len(all)
		if bodyEnd >= 0 {
			limit = bodyEnd
		}
		if h.block == len(s.calls) { // the call's name has not gone out
			for h.pos < limit && h.header.state == headerReading {
				h.header.feed(all[h.pos], h.pos-h.bodyStart)
				h.pos++
			}
			if h.header.state == headerFailed || h.header.state == headerReading && bodyEnd >= 0 {
				h.stopped = true
				return
			}
			if h.header.state == headerReading {
				return // not yet
			}
			var name string
			if json.Unmarshal([]byte(all[h.bodyStart+h.header.nameStart:h.bodyStart+h.header.nameEnd]), &name) != nil {
				h.stopped = true
				return
			}
			s.calls = append(s.calls, streamedCall{name: name})
			h.argsAt = append(h.argsAt, h.pos-1) // the arguments object's "{"
			h.args = objectScan{depth: 1}
			s.deltas = append(s.deltas, CallDelta{Index: h.block, First: true, Name: name})
		}
		c := &s.calls[h.block]
		start := h.argsAt[h.block]
		if !h.argsDone {
			for h.pos < limit && !h.args.closed() {
				h.args.feed(all[h.pos])
				h.pos++
			}
			end := limit
			if h.args.closed() {
				end = h.pos
				h.argsDone = true
			}
			if bodyEnd >= 0 {
				h.argsDone = true
				end = min(end, bodyEnd)
			}
			if n := end - start; n > c.args {
				s.deltas = append(s.deltas, CallDelta{Index: h.block, Arguments: all[start+c.args : end]})
				c.args = n
			}
		}
		if o < 0 {
			return // this block is still growing
		}
		h.block++
		h.startBlock(o + len(hermesOpen))
	}
}

func (h *hermesReader) startBlock(at int) {
	h.bodyStart, h.pos = at, at
	h.nextOpen = markerSearch{marker: hermesOpen, from: at, at: -1}
	h.close = markerSearch{marker: hermesClose, from: at, at: -1}
	h.header = headerScan{nameStart: -1, nameEnd: -1}
	h.argsDone = false
}

// markerSearch finds the first marker in a growing text, reading each byte
// a bounded number of times.
type markerSearch struct {
	marker string
	from   int // no occurrence starts before from
	at     int // the marker's position, -1 until found
}

func (m *markerSearch) find(text string) int {
	if m.at >= 0 || m.marker == "" || m.from >= len(text) {
		return m.at
	}
	if i := strings.Index(text[m.from:], m.marker); i >= 0 {
		m.at = m.from + i
		return m.at
	}
	m.from = max(m.from, len(text)-len(m.marker)+1)
	return -1
}

// partialSuffix returns the length of the longest proper prefix of marker
// that text ends with, or 0.
func partialSuffix(text, marker string) int {
	for k := min(len(marker)-1, len(text)); k > 0; k-- {
		if strings.HasSuffix(text, marker[:k]) {
			return k
		}
	}
	return 0
}

// headerScan matches the start of a Hermes call body byte by byte:
// optional spaces, {"name": "…", "arguments": { with spaces allowed between
// the tokens (\s as RE2 has it: tab, newline, form feed, carriage return,
// space). The name is a JSON-like string whose escapes are not checked.
type headerScan struct {
	state     int
	tok, off  int
	escaped   bool
	nameStart int // the name's opening quote, relative to the body; -1 until seen
	nameEnd   int // just past its closing quote; -1 until seen
}

const (
	headerReading = iota
	headerMatched
	headerFailed
)

// headerTokens are the header's pieces; "" stands for the name string.
var headerTokens = [...]string{"{", `"name"`, ":", "", ",", `"arguments"`, ":", "{"}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// feed reads byte c at offset i of the body.
func (h *headerScan) feed(c byte, i int) {
	tok := headerTokens[h.tok]
	switch {
	case h.off == 0 && isSpace(c):
		return
	case tok == "" && h.off == 0:
		if c != '"' {
			h.state = headerFailed
			return
		}
		h.nameStart, h.off = i, 1
		return
	case tok == "":
		switch {
		case h.escaped:
			h.escaped = false
			if c == '\n' {
				h.state = headerFailed
			}
		case c == '\\':
			h.escaped = true
		case c == '"':
			h.nameEnd = i + 1
			h.tok, h.off = h.tok+1, 0
		}
		return
	}
	if c != tok[h.off] {
		h.state = headerFailed
		return
	}
	h.off++
	if h.off == len(tok) {
		h.tok, h.off = h.tok+1, 0
		if h.tok == len(headerTokens) {
			h.state = headerMatched
		}
	}
}

// hermesHeader is headerScan's result on a whole body.
type hermesHeader struct {
	nameStart, nameEnd int // the quoted name; -1 when the body does not start {"name": "…"
	argsStart          int // the arguments object's "{"; -1 when the header is incomplete
}

// scanHermesHeader matches the start of a Hermes call body up to its name
// and, when complete, its arguments object.
func scanHermesHeader(body string) hermesHeader {
	h := headerScan{nameStart: -1, nameEnd: -1}
	i := 0
	for ; i < len(body) && h.state == headerReading; i++ {
		h.feed(body[i], i)
	}
	r := hermesHeader{nameStart: h.nameStart, nameEnd: h.nameEnd, argsStart: -1}
	if h.nameEnd < 0 {
		r.nameStart = -1
	}
	if h.state == headerMatched {
		r.argsStart = i - 1
	}
	return r
}

// objectScan follows a JSON object's nesting byte by byte, strings and
// escapes included, to find where it closes.
type objectScan struct {
	depth            int
	inString, escape bool
}

func (o *objectScan) closed() bool { return o.depth == 0 }

func (o *objectScan) feed(c byte) {
	switch {
	case o.inString:
		switch {
		case o.escape:
			o.escape = false
		case c == '\\':
			o.escape = true
		case c == '"':
			o.inString = false
		}
	case c == '"':
		o.inString = true
	case c == '{' || c == '[':
		o.depth++
	case c == '}' || c == ']':
		o.depth--
	}
}

// objectEnd returns the length of the JSON object s begins with, or -1 when
// it is not closed yet. s[0] must be '{'.
func objectEnd(s string) int {
	var o objectScan
	for i := 0; i < len(s); i++ {
		o.feed(s[i])
		if o.closed() {
			return i + 1
		}
	}
	return -1
}
