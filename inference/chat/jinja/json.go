package jinja

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
)

// ToJSON is transformers' tojson: Python json.dumps(x, ensure_ascii,
// indent, separators, sort_keys) with dict insertion order kept. Without
// indent the separators are ", " and ": "; with indent, "," and ": ".
func ToJSON(v any, indent any, separators any, ensureASCII, sortKeys bool) (string, error) {
	w := &jsonWriter{ascii: ensureASCII, sortKeys: sortKeys, item: ", ", key: ": "}
	switch in := indent.(type) {
	case nil:
	case int:
		w.indent, w.hasIndent = strings.Repeat(" ", max(in, 0)), true
	case string:
		w.indent, w.hasIndent = in, true
	default:
		return "", fmt.Errorf("indent must be an int or str, not %s", typeName(indent))
	}
	if w.hasIndent {
		w.item = ","
	}
	if separators != nil {
		seps, ok := asSeq(separators)
		if !ok || len(seps) != 2 {
			return "", errors.New("separators must be a pair of strings")
		}
		item, ok1 := seps[0].(string)
		key, ok2 := seps[1].(string)
		if !ok1 || !ok2 {
			return "", errors.New("separators must be a pair of strings")
		}
		w.item, w.key = item, key
	}
	if err := w.write(v, 0); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

type jsonWriter struct {
	b         strings.Builder
	ascii     bool
	sortKeys  bool
	hasIndent bool
	indent    string
	item, key string
}

func (w *jsonWriter) newline(level int) {
	if w.hasIndent {
		w.b.WriteByte('\n')
		for range level {
			w.b.WriteString(w.indent)
		}
	}
}

func (w *jsonWriter) write(v any, level int) error {
	if level > 1000 {
		return errors.New("tojson: nesting too deep")
	}
	switch x := v.(type) {
	case nil:
		w.b.WriteString("null")
	case bool:
		if x {
			w.b.WriteString("true")
		} else {
			w.b.WriteString("false")
		}
	case int:
		w.b.WriteString(strconv.Itoa(x))
	case float64:
		switch {
		case math.IsNaN(x):
			w.b.WriteString("NaN")
		case math.IsInf(x, 1):
			w.b.WriteString("Infinity")
		case math.IsInf(x, -1):
			w.b.WriteString("-Infinity")
		default:
			w.b.WriteString(formatFloat(x))
		}
	case string:
		w.writeString(x)
	case []any, Tuple:
		items, _ := asSeq(x)
		if len(items) == 0 {
			w.b.WriteString("[]")
			return nil
		}
		w.b.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				w.b.WriteString(w.item)
			}
			w.newline(level + 1)
			if err := w.write(it, level+1); err != nil {
				return err
			}
		}
		w.newline(level)
		w.b.WriteByte(']')
	case *Dict:
		if x.Len() == 0 {
			w.b.WriteString("{}")
			return nil
		}
		keys := x.keys
		if w.sortKeys {
			keys = append([]string(nil), keys...)
			sortStrings(keys)
		}
		w.b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				w.b.WriteString(w.item)
			}
			w.newline(level + 1)
			w.writeString(k)
			w.b.WriteString(w.key)
			if err := w.write(x.m[k], level+1); err != nil {
				return err
			}
		}
		w.newline(level)
		w.b.WriteByte('}')
	case Undefined:
		return errors.New("Object of type Undefined is not JSON serializable")
	default:
		return fmt.Errorf("Object of type %s is not JSON serializable", typeName(v))
	}
	return nil
}

// writeString escapes like Python's json: \" \\ \n \r \t \b \f, other
// controls as \u00XX, and with ensure_ascii all non-ASCII as \uXXXX.
func (w *jsonWriter) writeString(s string) {
	w.b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			w.b.WriteString(`\"`)
		case '\\':
			w.b.WriteString(`\\`)
		case '\n':
			w.b.WriteString(`\n`)
		case '\r':
			w.b.WriteString(`\r`)
		case '\t':
			w.b.WriteString(`\t`)
		case '\b':
			w.b.WriteString(`\b`)
		case '\f':
			w.b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20:
				fmt.Fprintf(&w.b, `\u%04x`, r)
			case w.ascii && r > 0x7e:
				if r > 0xffff {
					hi, lo := utf16.EncodeRune(r)
					fmt.Fprintf(&w.b, `\u%04x\u%04x`, hi, lo)
				} else {
					fmt.Fprintf(&w.b, `\u%04x`, r)
				}
			default:
				w.b.WriteRune(r)
			}
		}
	}
	w.b.WriteByte('"')
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// FromJSON decodes JSON text into template values, keeping object key order
// (as Python's json.loads does). Integers become int when they fit, other
// numbers float64. Duplicate keys keep the last value in the first position,
// like a Python dict.
func FromJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decode json: trailing data after the value")
	}
	return v, nil
}

const maxJSONDepth = 512

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := NewDict()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is %v, not a string", kt)
				}
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				d.Set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return d, nil
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return list, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		s := t.String()
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n == int64(int(n)) {
				return int(n), nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("bad number %s", s)
		}
		return f, nil
	default:
		return t, nil // string, bool, nil
	}
}

// Convert turns ordinary Go data into template values: maps become dicts
// with sorted keys (Go maps have no order; use FromJSON or *Dict to keep
// one), slices become lists, json.RawMessage is decoded with FromJSON.
func Convert(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int, float64, string, *Dict, Tuple, Func, *Namespace, Undefined:
		return v, nil
	case json.RawMessage:
		return FromJSON(x)
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			c, err := Convert(it)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		d := NewDict()
		for _, k := range sortedKeys(x) {
			c, err := Convert(x[k])
			if err != nil {
				return nil, err
			}
			d.Set(k, c)
		}
		return d, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			c, err := Convert(rv.Index(i).Interface())
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("convert: map keys must be strings, not %s", rv.Type().Key())
		}
		m := map[string]any{}
		for _, k := range rv.MapKeys() {
			m[k.String()] = rv.MapIndex(k).Interface()
		}
		return Convert(m)
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		return Convert(rv.Elem().Interface())
	}
	return nil, fmt.Errorf("convert: unsupported type %T", v)
}
