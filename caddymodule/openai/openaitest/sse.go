// Package openaitest reads OpenAI event streams back as a client does and
// checks them against OpenAI's framing and chunk rules, for handler and
// end-to-end tests.
package openaitest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ParseSSE reads an OpenAI event stream as a client would and checks its
// framing strictly: every event is a single "data: <json>" line followed by
// a blank line, comment lines (":...") may appear between events, and
// "data: [DONE]" ends the stream with nothing after it. It returns the JSON
// payloads in order and whether [DONE] arrived. It is meant for tests of
// handlers that stream, and for conformance checks of real output.
func ParseSSE(r io.Reader) (events []json.RawMessage, done bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	sc.Split(scanLF)
	line := 0
	var pending json.RawMessage // a data line waiting for its blank line
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if bytes.IndexByte(text, '\r') >= 0 {
			return events, done, fmt.Errorf("line %d: carriage return (OpenAI streams end lines with \\n only)", line)
		}
		switch {
		case done:
			return events, done, fmt.Errorf("line %d: data after [DONE]", line)
		case len(text) == 0:
			if pending == nil {
				return events, done, fmt.Errorf("line %d: blank line without an event", line)
			}
			if string(pending) == "[DONE]" {
				done = true
			} else {
				events = append(events, pending)
			}
			pending = nil
		case pending != nil:
			return events, done, fmt.Errorf("line %d: event not followed by a blank line", line)
		case text[0] == ':':
			// A comment (keep-alive); must stand alone like an event.
			if !sc.Scan() {
				return events, done, fmt.Errorf("line %d: comment not followed by a blank line", line)
			}
			line++
			if len(sc.Bytes()) != 0 {
				return events, done, fmt.Errorf("line %d: comment not followed by a blank line", line)
			}
		case bytes.HasPrefix(text, []byte("data: ")):
			payload := bytes.Clone(text[len("data: "):])
			if string(payload) != "[DONE]" && !json.Valid(payload) {
				return events, done, fmt.Errorf("line %d: event is not valid JSON", line)
			}
			pending = payload
		default:
			return events, done, fmt.Errorf("line %d: expected \"data: \" or a comment, got %q", line, clip(string(text)))
		}
	}
	if err := sc.Err(); err != nil {
		return events, done, fmt.Errorf("reading stream: %w", err)
	}
	if pending != nil {
		return events, done, errors.New("stream ends inside an event")
	}
	return events, done, nil
}

// scanLF splits on "\n" only, so that a stray "\r" shows up as a framing
// error instead of being forgiven.
func scanLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// clip shortens an offending line for an error message to 64 bytes (on a
// rune boundary), as the openai package echoes client input.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
