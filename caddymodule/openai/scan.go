package openai

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// A minimal splitter for JSON that encoding/json has already validated
// (parseRoot checks the whole body once). Splitting objects and arrays by
// hand instead of re-running the standard decoder at every level keeps
// decoding to about one pass over the body. Every function still checks
// bounds and reports malformed input as !ok, so a broken invariant becomes
// an error, never a panic.

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] == '"'.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd returns the index just past the value starting at b[i], or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := stringEnd(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// splitArray returns the elements of a JSON array.
func splitArray(raw []byte) ([]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '[' || raw[len(raw)-1] != ']' {
		return nil, false
	}
	items := []json.RawMessage{}
	i := skipSpace(raw, 1)
	if raw[i] == ']' {
		return items, i == len(raw)-1
	}
	for {
		end := valueEnd(raw, i)
		if end < 0 {
			return nil, false
		}
		items = append(items, json.RawMessage(raw[i:end]))
		i = skipSpace(raw, end)
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case ']':
			return items, i == len(raw)-1
		default:
			return nil, false
		}
	}
}

// splitObject returns the members of a JSON object in document order.
func splitObject(raw []byte) ([]member, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return nil, false
	}
	var out []member
	i := skipSpace(raw, 1)
	if raw[i] == '}' {
		return out, i == len(raw)-1
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return nil, false
		}
		kend := stringEnd(raw, i)
		if kend < 0 {
			return nil, false
		}
		key, ok := unquote(raw[i:kend])
		if !ok {
			return nil, false
		}
		i = skipSpace(raw, kend)
		if i >= len(raw) || raw[i] != ':' {
			return nil, false
		}
		i = skipSpace(raw, i+1)
		end := valueEnd(raw, i)
		if end < 0 {
			return nil, false
		}
		out = append(out, member{key, json.RawMessage(raw[i:end])})
		i = skipSpace(raw, end)
		if i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return out, i == len(raw)-1
		default:
			return nil, false
		}
	}
}

// unquote decodes a JSON string literal; literals without escapes (most
// text) are sliced directly. Invalid UTF-8 (which parseRoot has already
// refused) takes the slow path, where encoding/json substitutes U+FFFD.
func unquote(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) {
		for _, c := range inner {
			if c < 0x20 {
				return "", false
			}
		}
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}
