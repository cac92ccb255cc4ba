package jinja

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Values are plain Go values with Python meaning:
//
//	nil        None
//	Undefined  a missing variable or attribute (Jinja2's default Undefined)
//	bool, int, float64, string
//	[]any      list
//	Tuple      tuple
//	*Dict      dict with insertion order kept
//	*Namespace namespace()
//	Func       a callable (global function, bound method, macro)
type (
	// Undefined is a missing name or attribute; hint names it for errors.
	Undefined struct{ hint string }
	// Tuple is a Python tuple (prints with parentheses).
	Tuple []any
	// Func is a callable value.
	Func func(args []any, kwargs *Dict) (any, error)
	// Namespace is the mutable object made by namespace().
	Namespace struct{ attrs *Dict }
)

// Dict is an insertion-ordered mapping with string keys, like a Python dict
// built from JSON. Go maps would lose the key order that tojson must keep.
type Dict struct {
	keys []string
	m    map[string]any
}

// NewDict returns an empty ordered dict.
func NewDict() *Dict { return &Dict{m: map[string]any{}} }

// Set stores v under k, appending k when new.
func (d *Dict) Set(k string, v any) {
	if _, ok := d.m[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.m[k] = v
}

// Get returns the value under k.
func (d *Dict) Get(k string) (any, bool) {
	v, ok := d.m[k]
	return v, ok
}

// Keys returns the keys in insertion order.
func (d *Dict) Keys() []string { return d.keys }

// Len returns the number of keys.
func (d *Dict) Len() int { return len(d.keys) }

func isUndefined(v any) bool {
	_, ok := v.(Undefined)
	return ok
}

// truthy is Python's bool().
func truthy(v any) bool {
	switch x := v.(type) {
	case nil, Undefined:
		return false
	case bool:
		return x
	case int:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case Tuple:
		return len(x) > 0
	case *Dict:
		return x.Len() > 0
	}
	return true
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case Undefined:
		return "Undefined"
	case bool:
		return "bool"
	case int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []any:
		return "list"
	case Tuple:
		return "tuple"
	case *Dict:
		return "dict"
	case *Namespace:
		return "Namespace"
	case Func:
		return "function"
	case *loopInfo:
		return "LoopContext"
	}
	return fmt.Sprintf("%T", v)
}

// toStr is Python's str() as Jinja2 prints values.
func toStr(v any) string {
	switch x := v.(type) {
	case Undefined:
		return ""
	case string:
		return x
	}
	return repr(v)
}

// repr is Python's repr().
func repr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case Undefined:
		return ""
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case float64:
		return formatFloat(x)
	case string:
		return reprString(x)
	case []any:
		return "[" + joinRepr(x) + "]"
	case Tuple:
		if len(x) == 1 {
			return "(" + repr(x[0]) + ",)"
		}
		return "(" + joinRepr(x) + ")"
	case *Dict:
		parts := make([]string, 0, x.Len())
		for _, k := range x.keys {
			parts = append(parts, reprString(k)+": "+repr(x.m[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case *Namespace:
		return "<Namespace " + repr(x.attrs) + ">"
	case Func:
		return "<function>"
	case *loopInfo:
		return "<LoopContext>"
	}
	return fmt.Sprint(v)
}

func joinRepr(items []any) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = repr(it)
	}
	return strings.Join(parts, ", ")
}

// formatFloat is Python's float repr: shortest round-trip digits, exponent
// form below 1e-4 or from 1e16, and always a decimal point otherwise.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Go writes e+16 / e-05 like Python; nothing more to do.
		return s
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

func reprString(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, "\"") {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && !unicode.IsPrint(r):
			switch {
			case r <= 0xff:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// equal is Python ==, deep for containers; 1 == 1.0 and True == 1.
func equal(a, b any) bool {
	switch x := a.(type) {
	case Undefined:
		return isUndefined(b)
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool, int, float64:
		fa, ok1 := number(a)
		fb, ok2 := number(b)
		return ok1 && ok2 && fa == fb
	case []any:
		y, ok := b.([]any)
		return ok && equalSlices(x, y)
	case Tuple:
		y, ok := b.(Tuple)
		return ok && equalSlices(x, y)
	case *Dict:
		y, ok := b.(*Dict)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for _, k := range x.keys {
			yv, ok := y.m[k]
			if !ok || !equal(x.m[k], yv) {
				return false
			}
		}
		return true
	}
	return a == b
}

func equalSlices(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// number converts bool/int/float to float64 for comparisons.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case int:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// less is Python < for numbers, strings and sequences.
func less(a, b any) (bool, error) {
	if fa, ok := number(a); ok {
		if fb, ok := number(b); ok {
			return fa < fb, nil
		}
	}
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			return sa < sb, nil
		}
	}
	la, okA := asSeq(a)
	lb, okB := asSeq(b)
	if okA && okB && typeName(a) == typeName(b) {
		for i := 0; i < len(la) && i < len(lb); i++ {
			if !equal(la[i], lb[i]) {
				return less(la[i], lb[i])
			}
		}
		return len(la) < len(lb), nil
	}
	return false, fmt.Errorf("'<' not supported between instances of '%s' and '%s'", typeName(a), typeName(b))
}

func asSeq(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case Tuple:
		return x, true
	}
	return nil, false
}

// iterate lists the items a for loop sees: list/tuple items, dict keys,
// string characters; Undefined iterates as empty.
func iterate(v any) ([]any, error) {
	switch x := v.(type) {
	case Undefined:
		return nil, nil
	case []any:
		return x, nil
	case Tuple:
		return x, nil
	case *Dict:
		out := make([]any, len(x.keys))
		for i, k := range x.keys {
			out[i] = k
		}
		return out, nil
	case string:
		out := make([]any, 0, utf8.RuneCountInString(x))
		for _, r := range x {
			out = append(out, string(r))
		}
		return out, nil
	}
	return nil, fmt.Errorf("'%s' object is not iterable", typeName(v))
}

// length is Python len().
func length(v any) (int, error) {
	switch x := v.(type) {
	case Undefined:
		return 0, nil
	case string:
		return utf8.RuneCountInString(x), nil
	case []any:
		return len(x), nil
	case Tuple:
		return len(x), nil
	case *Dict:
		return x.Len(), nil
	}
	return 0, fmt.Errorf("object of type '%s' has no len()", typeName(v))
}

// sortedKeys gives map keys in a stable order for Go maps passed as input.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
