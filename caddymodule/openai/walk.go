package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The decoder walks the body as json.RawMessage values (split by scan.go)
// rather than unmarshalling into structs, so that every error can name the
// exact path ("messages[1].content") and the expected type, unknown and
// duplicate keys are caught at every level, and raw JSON (schemas) keeps its
// key order. A JSON null is treated as an absent field everywhere.

// readBody reads at most max bytes, mapping an oversized body (whether seen
// here or by an http.MaxBytesReader underneath) to a 413.
func readBody(r io.Reader, max int64) ([]byte, *Error) {
	if r == nil {
		return nil, InvalidRequest("", "request body is empty")
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, TooLarge(tooBig.Limit)
		}
		return nil, InvalidRequest("", "could not read request body")
	}
	if int64(len(b)) > max {
		return nil, TooLarge(max)
	}
	return b, nil
}

// parseRoot checks that body is UTF-8 JSON holding one object.
func parseRoot(body []byte) (json.RawMessage, *Error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, InvalidRequest("", "request body is empty")
	}
	if !utf8.Valid(body) {
		return nil, InvalidRequest("", "request body is not valid UTF-8")
	}
	var raw json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, InvalidRequest("", fmt.Sprintf("request body is not valid JSON: %s (at byte %d)", syn.Error(), syn.Offset))
		}
		return nil, InvalidRequest("", "request body is not valid JSON")
	}
	if kindOf(raw) != "object" {
		return nil, InvalidRequest("", "request body must be a JSON object, got "+kindOf(raw))
	}
	return raw, nil
}

// kindOf names the JSON type of a valid raw value.
func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func isNull(raw json.RawMessage) bool { return kindOf(raw) == "null" }

func child(path, key string) string {
	key = clip(key)
	if path == "" {
		return key
	}
	return path + "." + key
}

// maxEcho bounds how much of a client-supplied string an error message
// repeats, so that a huge bogus value does not come back in full.
const maxEcho = 64

// clip shortens s to at most maxEcho bytes on a rune boundary, marking the cut.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// quote clips and quotes a client-supplied string for an error message.
func quote(s string) string { return strconv.Quote(clip(s)) }

func elem(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// errAt is a 400 whose message starts with the path and whose param is it.
func errAt(path, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return InvalidRequest(path, msg)
}

func typeErr(path, want string, raw json.RawMessage) *Error {
	return errAt(path, "expected %s, got %s", want, kindOf(raw))
}

type member struct {
	key string
	val json.RawMessage
}

// members splits an object into its key/value pairs in document order,
// rejecting duplicate keys (which JSON parsers resolve inconsistently).
func members(path string, raw json.RawMessage) ([]member, *Error) {
	if kindOf(raw) != "object" {
		return nil, typeErr(path, "object", raw)
	}
	ms, ok := splitObject(raw)
	if !ok {
		return nil, errAt(path, "invalid JSON object")
	}
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		if seen[m.key] {
			return nil, errAt(child(path, m.key), "duplicate field")
		}
		seen[m.key] = true
	}
	return ms, nil
}

// fieldFunc decodes one non-null member; path is the member's full path.
type fieldFunc func(path string, raw json.RawMessage) *Error

// decodeObject runs the matching fieldFunc for each member in document order.
// Null members are skipped. Unknown keys are rejected through unknown. It
// returns the keys that were present with non-null values.
func decodeObject(path string, raw json.RawMessage, fields map[string]fieldFunc, unknown func(path, key string) *Error) ([]string, *Error) {
	ms, e := members(path, raw)
	if e != nil {
		return nil, e
	}
	var present []string
	for _, m := range ms {
		f, ok := fields[m.key]
		if !ok {
			return nil, unknown(path, m.key)
		}
		if isNull(m.val) {
			continue
		}
		if e := f(child(path, m.key), m.val); e != nil {
			return nil, e
		}
		present = append(present, m.key)
	}
	return present, nil
}

// unknownNested rejects an unexpected key inside a nested object.
func unknownNested(path, key string) *Error {
	return InvalidRequest(child(path, key), fmt.Sprintf("%s: unknown field %s", path, quote(key)))
}

// unknownTop rejects an unexpected top-level key with OpenAI's wording.
func unknownTop(_, key string) *Error {
	key = clip(key)
	return InvalidRequest(key, "unrecognized request argument supplied: "+key)
}

func getString(path string, raw json.RawMessage) (string, *Error) {
	if kindOf(raw) != "string" {
		return "", typeErr(path, "string", raw)
	}
	s, ok := unquote(raw)
	if !ok {
		return "", errAt(path, "invalid JSON string")
	}
	return s, nil
}

// getFunctionType reads a tool's "type", which must be "function".
func getFunctionType(path string, raw json.RawMessage) (string, *Error) {
	s, e := getString(path, raw)
	if e == nil && s != "function" {
		e = errAt(path, "expected \"function\", got %s", quote(s))
	}
	return s, e
}

// requireFields reports the first of keys missing from present (the keys
// decodeObject saw in the object at path).
func requireFields(path string, present []string, keys ...string) *Error {
	for _, k := range keys {
		if !slices.Contains(present, k) {
			return errAt(child(path, k), "required field is missing")
		}
	}
	return nil
}

func getBool(path string, raw json.RawMessage) (bool, *Error) {
	var b bool
	if kindOf(raw) != "boolean" || json.Unmarshal(raw, &b) != nil {
		return false, typeErr(path, "boolean", raw)
	}
	return b, nil
}

func getFloat(path string, raw json.RawMessage) (float64, *Error) {
	if kindOf(raw) != "number" {
		return 0, typeErr(path, "number", raw)
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, errAt(path, "number out of range")
	}
	return f, nil
}

// maxExactInt is the largest integer a float64 holds exactly (2^53).
const maxExactInt = 1 << 53

// getInt accepts an integer, also written with a fraction or exponent when
// its value is integral (2.0, 1e3), as JSON Schema's "integer" does.
func getInt(path string, raw json.RawMessage) (int64, *Error) {
	if kindOf(raw) != "number" {
		return 0, typeErr(path, "integer", raw)
	}
	s := string(bytes.TrimSpace(raw))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) {
		return 0, errAt(path, "expected integer, got %s", s)
	}
	if math.Abs(f) > maxExactInt {
		return 0, errAt(path, "integer out of range")
	}
	return int64(f), nil
}

// intIn decodes an integer in [lo, hi].
func intIn(path string, raw json.RawMessage, lo, hi int64) (int, *Error) {
	n, e := getInt(path, raw)
	if e != nil {
		return 0, e
	}
	if n < lo || n > hi {
		return 0, errAt(path, "must be an integer between %d and %d, got %d", lo, hi, n)
	}
	return int(n), nil
}

// floatIn decodes a number in [lo, hi], or (lo, hi] when openLow.
func floatIn(path string, raw json.RawMessage, lo, hi float64, openLow bool) (float64, *Error) {
	f, e := getFloat(path, raw)
	if e != nil {
		return 0, e
	}
	if (openLow && f <= lo) || f < lo || f > hi {
		if openLow {
			return 0, errAt(path, "must be greater than %s and at most %s, got %s", fnum(lo), fnum(hi), fnum(f))
		}
		return 0, errAt(path, "must be between %s and %s, got %s", fnum(lo), fnum(hi), fnum(f))
	}
	return f, nil
}

func fnum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// getArray splits an array into its elements.
func getArray(path string, raw json.RawMessage) ([]json.RawMessage, *Error) {
	if kindOf(raw) != "array" {
		return nil, typeErr(path, "array", raw)
	}
	items, ok := splitArray(raw)
	if !ok {
		return nil, errAt(path, "invalid JSON array")
	}
	return items, nil
}

// getStringMap decodes an object of string values.
func getStringMap(path string, raw json.RawMessage) (map[string]string, *Error) {
	ms, e := members(path, raw)
	if e != nil {
		return nil, e
	}
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		s, e := getString(child(path, m.key), m.val)
		if e != nil {
			return nil, e
		}
		out[m.key] = s
	}
	return out, nil
}

// getObjectRaw checks that raw is an object of at most max bytes and returns
// a compacted copy that keeps key order.
func getObjectRaw(path string, raw json.RawMessage, max int) (json.RawMessage, *Error) {
	if kindOf(raw) != "object" {
		return nil, typeErr(path, "object", raw)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, errAt(path, "invalid JSON object")
	}
	if max > 0 && buf.Len() > max {
		return nil, errAt(path, "schema is %d bytes, more than the limit of %d", buf.Len(), max)
	}
	return json.RawMessage(buf.Bytes()), nil
}

// rawCopy keeps a value we accept but do not interpret.
func rawCopy(raw json.RawMessage) json.RawMessage {
	return append(json.RawMessage(nil), bytes.TrimSpace(raw)...)
}
