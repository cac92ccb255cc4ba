package jinja

import (
	"errors"
	"fmt"
	"html"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

func builtinGlobals(now func() time.Time) map[string]any {
	return map[string]any{
		"raise_exception": Func(func(args []any, _ *Dict) (any, error) {
			msg := ""
			if len(args) > 0 {
				msg = toStr(args[0])
			}
			return nil, &Exception{Message: msg}
		}),
		"strftime_now": Func(func(args []any, _ *Dict) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("strftime_now takes one format argument")
			}
			f, ok := args[0].(string)
			if !ok {
				return nil, fmt.Errorf("strftime_now format must be a string, not %s", typeName(args[0]))
			}
			return Strftime(now(), f), nil
		}),
		"namespace": Func(func(args []any, kwargs *Dict) (any, error) {
			ns := &Namespace{attrs: NewDict()}
			for _, a := range args {
				d, ok := a.(*Dict)
				if !ok {
					return nil, fmt.Errorf("namespace() takes a dict, not %s", typeName(a))
				}
				for _, k := range d.keys {
					ns.attrs.Set(k, d.m[k])
				}
			}
			if kwargs != nil {
				for _, k := range kwargs.keys {
					ns.attrs.Set(k, kwargs.m[k])
				}
			}
			return ns, nil
		}),
		"dict": Func(func(args []any, kwargs *Dict) (any, error) {
			d := NewDict()
			for _, a := range args {
				src, ok := a.(*Dict)
				if !ok {
					return nil, fmt.Errorf("dict() takes a dict, not %s", typeName(a))
				}
				for _, k := range src.keys {
					d.Set(k, src.m[k])
				}
			}
			if kwargs != nil {
				for _, k := range kwargs.keys {
					d.Set(k, kwargs.m[k])
				}
			}
			return d, nil
		}),
		"range": Func(func(args []any, _ *Dict) (any, error) {
			var ints []int
			for _, a := range args {
				n, ok := a.(int)
				if !ok {
					return nil, fmt.Errorf("range() takes integers, not %s", typeName(a))
				}
				ints = append(ints, n)
			}
			start, stop, step := 0, 0, 1
			switch len(ints) {
			case 1:
				stop = ints[0]
			case 2:
				start, stop = ints[0], ints[1]
			case 3:
				start, stop, step = ints[0], ints[1], ints[2]
			default:
				return nil, errors.New("range() takes 1 to 3 arguments")
			}
			if step == 0 {
				return nil, errors.New("range() arg 3 must not be zero")
			}
			var out []any
			for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
				if len(out) >= 100000 {
					return nil, errors.New("range() too large")
				}
				out = append(out, i)
			}
			return out, nil
		}),
	}
}

// Strftime formats t with Python's strftime directives (C locale).
func Strftime(t time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 >= len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			fmt.Fprintf(&b, "%d", t.Year())
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'e':
			fmt.Fprintf(&b, "%2d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'I':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			fmt.Fprintf(&b, "%02d", h)
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'f':
			fmt.Fprintf(&b, "%06d", t.Nanosecond()/1000)
		case 'p':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'b', 'h':
			b.WriteString(t.Month().String()[:3])
		case 'B':
			b.WriteString(t.Month().String())
		case 'a':
			b.WriteString(t.Weekday().String()[:3])
		case 'A':
			b.WriteString(t.Weekday().String())
		case 'w':
			fmt.Fprintf(&b, "%d", int(t.Weekday()))
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		case 'D':
			b.WriteString(t.Format("01/02/06"))
		case 'Z':
			name, _ := t.Zone()
			b.WriteString(name)
		case 'z':
			b.WriteString(t.Format("-0700"))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}

func argOr(args []any, kwargs *Dict, i int, name string, def any) any {
	if i < len(args) {
		return args[i]
	}
	if kwargs != nil {
		if v, ok := kwargs.m[name]; ok {
			return v
		}
	}
	return def
}

func (ev *evaluator) applyFilter(name string, v any, args []any, kwargs *Dict) (any, error) {
	switch name {
	case "tojson":
		return ToJSON(v, argOr(args, kwargs, 1, "indent", nil), argOr(args, kwargs, 2, "separators", nil),
			truthy(argOr(args, kwargs, 0, "ensure_ascii", false)), truthy(argOr(args, kwargs, 3, "sort_keys", false)))
	case "trim":
		if u, ok := v.(Undefined); ok {
			_ = u
			return "", nil
		}
		return pyStrip(toStr(v), argOr(args, kwargs, 0, "chars", nil), true, true)
	case "length", "count":
		return length(v)
	case "default", "d":
		def := argOr(args, kwargs, 0, "default_value", "")
		if isUndefined(v) || (truthy(argOr(args, kwargs, 1, "boolean", false)) && !truthy(v)) {
			return def, nil
		}
		return v, nil
	case "upper":
		return strings.ToUpper(toStr(v)), nil
	case "lower":
		return strings.ToLower(toStr(v)), nil
	case "capitalize":
		return capitalize(toStr(v)), nil
	case "title":
		return title(toStr(v)), nil
	case "string":
		return toStr(v), nil
	case "safe", "list":
		if name == "safe" {
			return v, nil
		}
		items, err := iterate(v)
		return append([]any{}, items...), err
	case "escape", "e":
		return html.EscapeString(toStr(v)), nil
	case "join":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		sep := toStr(argOr(args, kwargs, 0, "d", ""))
		attr := argOr(args, kwargs, 1, "attribute", nil)
		parts := make([]string, len(items))
		for i, it := range items {
			if attr != nil {
				if it, err = getItemPath(it, attr); err != nil {
					return nil, err
				}
			}
			parts[i] = toStr(it)
		}
		return strings.Join(parts, sep), nil
	case "first", "last":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return Undefined{hint: "No " + name + " item, sequence was empty."}, nil
		}
		if name == "first" {
			return items[0], nil
		}
		return items[len(items)-1], nil
	case "reverse":
		if s, ok := v.(string); ok {
			r := []rune(s)
			for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
				r[i], r[j] = r[j], r[i]
			}
			return string(r), nil
		}
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		for i, it := range items {
			out[len(items)-1-i] = it
		}
		return out, nil
	case "items":
		if isUndefined(v) {
			return []any{}, nil
		}
		d, ok := v.(*Dict)
		if !ok {
			return nil, errors.New("Can only get item pairs from a mapping.")
		}
		return dictItems(d), nil
	case "replace":
		s := toStr(v)
		if len(args) < 2 {
			return nil, errors.New("replace needs old and new strings")
		}
		n := -1
		if c := argOr(args, kwargs, 2, "count", nil); c != nil {
			ci, ok := c.(int)
			if !ok {
				return nil, fmt.Errorf("replace count must be an integer, not %s", typeName(c))
			}
			n = ci
		}
		return pyReplace(s, toStr(args[0]), toStr(args[1]), n), nil
	case "selectattr", "rejectattr", "select", "reject":
		return ev.selectFilter(name, v, args)
	case "map":
		return ev.mapFilter(v, args, kwargs)
	case "attr":
		if len(args) != 1 {
			return nil, errors.New("attr takes one name")
		}
		return getAttr(v, toStr(args[0]))
	case "int":
		return toInt(v, argOr(args, kwargs, 0, "default", 0)), nil
	case "float":
		return toFloat(v, argOr(args, kwargs, 0, "default", 0.0)), nil
	case "abs":
		switch x := v.(type) {
		case int:
			if x < 0 {
				return -x, nil
			}
			return x, nil
		case float64:
			return math.Abs(x), nil
		}
		return nil, fmt.Errorf("bad operand type for abs(): '%s'", typeName(v))
	case "round":
		f, ok := number(v)
		if !ok {
			return nil, fmt.Errorf("round needs a number, not %s", typeName(v))
		}
		prec, _ := argOr(args, kwargs, 0, "precision", 0).(int)
		method := toStr(argOr(args, kwargs, 1, "method", "common"))
		p := math.Pow(10, float64(prec))
		switch method {
		case "ceil":
			return math.Ceil(f*p) / p, nil
		case "floor":
			return math.Floor(f*p) / p, nil
		}
		return math.Round(f*p) / p, nil
	case "sum":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		var total any = argOr(args, kwargs, 1, "start", 0)
		for _, it := range items {
			if total, err = binary("+", total, it); err != nil {
				return nil, err
			}
		}
		return total, nil
	case "unique":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		var out []any
		for _, it := range items {
			dup := false
			for _, o := range out {
				if equal(o, it) {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, it)
			}
		}
		return out, nil
	case "sort", "min", "max":
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		sorted := append([]any{}, items...)
		var sortErr error
		sort.SliceStable(sorted, func(i, j int) bool {
			lt, err := less(sorted[i], sorted[j])
			if err != nil {
				sortErr = err
			}
			return lt
		})
		if sortErr != nil {
			return nil, sortErr
		}
		switch name {
		case "min", "max":
			if len(sorted) == 0 {
				return Undefined{hint: "No aggregated item, sequence was empty."}, nil
			}
			if name == "min" {
				return sorted[0], nil
			}
			return sorted[len(sorted)-1], nil
		}
		if truthy(argOr(args, kwargs, 0, "reverse", false)) {
			for i, j := 0, len(sorted)-1; i < j; i, j = i+1, j-1 {
				sorted[i], sorted[j] = sorted[j], sorted[i]
			}
		}
		return sorted, nil
	case "indent":
		return indent(toStr(v), argOr(args, kwargs, 0, "width", 4), truthy(argOr(args, kwargs, 1, "first", false)),
			truthy(argOr(args, kwargs, 2, "blank", false))), nil
	case "wordcount":
		return len(strings.Fields(toStr(v))), nil
	}
	return nil, fmt.Errorf("no filter named '%s'", name)
}

func indent(s string, width any, first, blank bool) string {
	pad := ""
	switch w := width.(type) {
	case int:
		pad = strings.Repeat(" ", w)
	case string:
		pad = w
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if i == 0 && !first {
			continue
		}
		if l == "" && !blank {
			continue
		}
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n")
}

func toInt(v any, def any) any {
	switch x := v.(type) {
	case int:
		return x
	case bool:
		return boolInt(x)
	case float64:
		return int(x)
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return n
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return int(f)
		}
	}
	return def
}

func toFloat(v any, def any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	case bool:
		return float64(boolInt(x))
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f
		}
	}
	return def
}

// getItemPath follows a dotted attribute path as Jinja2's attribute= arguments do.
func getItemPath(v any, attr any) (any, error) {
	if i, ok := attr.(int); ok {
		return getItem(v, i)
	}
	var err error
	for _, part := range strings.Split(toStr(attr), ".") {
		var key any = part
		if n, convErr := strconv.Atoi(part); convErr == nil {
			key = n
		}
		if v, err = getItem(v, key); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (ev *evaluator) selectFilter(name string, v any, args []any) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	byAttr := name == "selectattr" || name == "rejectattr"
	want := name == "selectattr" || name == "select"
	var attr any
	if byAttr {
		if len(args) == 0 {
			return nil, errors.New("missing attribute name")
		}
		attr, args = args[0], args[1:]
	}
	var out []any
	for _, it := range items {
		x := it
		if byAttr {
			if x, err = getItemPath(it, attr); err != nil {
				return nil, err
			}
		}
		var ok bool
		if len(args) == 0 {
			ok = truthy(x)
		} else {
			if ok, err = applyTest(toStr(args[0]), x, args[1:]); err != nil {
				return nil, err
			}
		}
		if ok == want {
			out = append(out, it)
		}
	}
	return out, nil
}

func (ev *evaluator) mapFilter(v any, args []any, kwargs *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(items))
	if kwargs != nil && hasKey(kwargs, "attribute") {
		attr := kwargs.m["attribute"]
		def, hasDef := kwargs.m["default"]
		for _, it := range items {
			x, err := getItemPath(it, attr)
			if err != nil {
				return nil, err
			}
			if isUndefined(x) && hasDef {
				x = def
			}
			out = append(out, x)
		}
		return out, nil
	}
	if len(args) == 0 {
		return nil, errors.New("map needs a filter name or attribute=")
	}
	fname := toStr(args[0])
	for _, it := range items {
		x, err := ev.applyFilter(fname, it, args[1:], nil)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func applyTest(name string, v any, args []any) (bool, error) {
	arg := func() (any, error) {
		if len(args) < 1 {
			return nil, fmt.Errorf("test %s needs an argument", name)
		}
		return args[0], nil
	}
	switch name {
	case "defined":
		return !isUndefined(v), nil
	case "undefined":
		return isUndefined(v), nil
	case "none":
		return v == nil, nil
	case "string":
		_, ok := v.(string)
		return ok, nil
	case "mapping":
		_, ok := v.(*Dict)
		return ok, nil
	case "sequence":
		switch v.(type) {
		case string, []any, Tuple, *Dict:
			return true, nil
		}
		return false, nil
	case "iterable":
		switch v.(type) {
		case string, []any, Tuple, *Dict, Undefined:
			return true, nil
		}
		return false, nil
	case "number":
		switch v.(type) {
		case int, float64, bool:
			return true, nil
		}
		return false, nil
	case "integer":
		_, ok := v.(int)
		return ok, nil
	case "float":
		_, ok := v.(float64)
		return ok, nil
	case "boolean":
		_, ok := v.(bool)
		return ok, nil
	case "true":
		b, ok := v.(bool)
		return ok && b, nil
	case "false":
		b, ok := v.(bool)
		return ok && !b, nil
	case "callable":
		_, ok := v.(Func)
		return ok, nil
	case "lower":
		s := toStr(v)
		return s == strings.ToLower(s), nil
	case "upper":
		s := toStr(v)
		return s == strings.ToUpper(s), nil
	case "odd", "even":
		n, ok := v.(int)
		if !ok {
			return false, fmt.Errorf("test %s needs an integer", name)
		}
		return (n%2 != 0) == (name == "odd"), nil
	case "divisibleby":
		a, err := arg()
		if err != nil {
			return false, err
		}
		n, ok1 := v.(int)
		d, ok2 := a.(int)
		if !ok1 || !ok2 || d == 0 {
			return false, errors.New("divisibleby needs non-zero integers")
		}
		return n%d == 0, nil
	case "equalto", "eq", "==", "ne", "!=", "lt", "<", "le", "<=", "gt", ">", "ge", ">=", "in", "sameas":
		a, err := arg()
		if err != nil {
			return false, err
		}
		op := map[string]string{"equalto": "==", "eq": "==", "sameas": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[name]
		if op == "" {
			op = name
		}
		if name == "sameas" {
			if v == nil || a == nil {
				return v == nil && a == nil, nil
			}
			if _, ok := v.(bool); ok {
				return equal(v, a) && typeName(v) == typeName(a), nil
			}
		}
		return compare(op, v, a)
	}
	return false, fmt.Errorf("no test named '%s'", name)
}

func dictItems(d *Dict) []any {
	out := make([]any, len(d.keys))
	for i, k := range d.keys {
		out[i] = Tuple{k, d.m[k]}
	}
	return out
}

func dictMethod(d *Dict, name string) Func {
	switch name {
	case "get":
		return func(args []any, kwargs *Dict) (any, error) {
			if len(args) < 1 || len(args) > 2 {
				return nil, errors.New("get expected 1 or 2 arguments")
			}
			if k, ok := args[0].(string); ok {
				if v, ok := d.m[k]; ok {
					return v, nil
				}
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return nil, nil
		}
	case "items":
		return func([]any, *Dict) (any, error) { return dictItems(d), nil }
	case "keys":
		return func([]any, *Dict) (any, error) {
			out := make([]any, len(d.keys))
			for i, k := range d.keys {
				out[i] = k
			}
			return out, nil
		}
	case "values":
		return func([]any, *Dict) (any, error) {
			out := make([]any, len(d.keys))
			for i, k := range d.keys {
				out[i] = d.m[k]
			}
			return out, nil
		}
	}
	return nil
}

// pyIsSpace is Python's str.isspace for one character.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}

func pyStrip(s string, chars any, left, right bool) (string, error) {
	match := pyIsSpace
	if chars != nil {
		cs, ok := chars.(string)
		if !ok {
			return "", fmt.Errorf("strip arg must be None or str, not %s", typeName(chars))
		}
		match = func(r rune) bool { return strings.ContainsRune(cs, r) }
	}
	if left {
		s = strings.TrimLeftFunc(s, match)
	}
	if right {
		s = strings.TrimRightFunc(s, match)
	}
	return s, nil
}

// pyReplace is str.replace; a negative count replaces all.
func pyReplace(s, old, repl string, count int) string {
	return strings.Replace(s, old, repl, count)
}

func capitalize(s string) string {
	r := []rune(strings.ToLower(s))
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}

func title(s string) string {
	r := []rune(s)
	prevLetter := false
	for i, c := range r {
		if unicode.IsLetter(c) {
			if prevLetter {
				r[i] = unicode.ToLower(c)
			} else {
				r[i] = unicode.ToUpper(c)
			}
			prevLetter = true
		} else {
			prevLetter = false
		}
	}
	return string(r)
}

func strMethod(s string, name string) Func {
	strip := func(left, right bool) Func {
		return func(args []any, _ *Dict) (any, error) {
			return pyStrip(s, argOr(args, nil, 0, "", nil), left, right)
		}
	}
	affix := func(test func(string, string) bool) Func {
		return func(args []any, _ *Dict) (any, error) {
			if len(args) < 1 {
				return nil, fmt.Errorf("%s takes at least 1 argument", name)
			}
			switch a := args[0].(type) {
			case string:
				return test(s, a), nil
			case Tuple, []any:
				items, _ := asSeq(a)
				for _, it := range items {
					if p, ok := it.(string); ok && test(s, p) {
						return true, nil
					}
				}
				return false, nil
			}
			return nil, fmt.Errorf("%s first arg must be str or a tuple of str, not %s", name, typeName(args[0]))
		}
	}
	switch name {
	case "strip":
		return strip(true, true)
	case "lstrip":
		return strip(true, false)
	case "rstrip":
		return strip(false, true)
	case "startswith":
		return affix(strings.HasPrefix)
	case "endswith":
		return affix(strings.HasSuffix)
	case "upper":
		return func([]any, *Dict) (any, error) { return strings.ToUpper(s), nil }
	case "lower":
		return func([]any, *Dict) (any, error) { return strings.ToLower(s), nil }
	case "title":
		return func([]any, *Dict) (any, error) { return title(s), nil }
	case "capitalize":
		return func([]any, *Dict) (any, error) { return capitalize(s), nil }
	case "replace":
		return func(args []any, kwargs *Dict) (any, error) {
			if len(args) < 2 {
				return nil, errors.New("replace expected at least 2 arguments")
			}
			old, ok1 := args[0].(string)
			repl, ok2 := args[1].(string)
			if !ok1 || !ok2 {
				return nil, errors.New("replace arguments must be str")
			}
			n := -1
			if c := argOr(args, kwargs, 2, "count", -1); c != nil {
				ci, ok := c.(int)
				if !ok {
					return nil, fmt.Errorf("replace count must be an integer, not %s", typeName(c))
				}
				n = ci
			}
			return pyReplace(s, old, repl, n), nil
		}
	case "split", "rsplit":
		return func(args []any, kwargs *Dict) (any, error) {
			sep := argOr(args, kwargs, 0, "sep", nil)
			maxsplit := -1
			if m, ok := argOr(args, kwargs, 1, "maxsplit", -1).(int); ok {
				maxsplit = m
			}
			var parts []string
			if sep == nil {
				parts = splitWhitespace(s, maxsplit, name == "rsplit")
			} else {
				ss, ok := sep.(string)
				if !ok || ss == "" {
					return nil, errors.New("split separator must be a non-empty str")
				}
				parts = splitSep(s, ss, maxsplit, name == "rsplit")
			}
			out := make([]any, len(parts))
			for i, p := range parts {
				out[i] = p
			}
			return out, nil
		}
	case "splitlines":
		return func([]any, *Dict) (any, error) {
			var out []any
			for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
				out = append(out, strings.TrimSuffix(l, "\r"))
			}
			if s == "" {
				out = []any{}
			}
			return out, nil
		}
	case "join":
		return func(args []any, _ *Dict) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("join takes one argument")
			}
			items, err := iterate(args[0])
			if err != nil {
				return nil, err
			}
			parts := make([]string, len(items))
			for i, it := range items {
				p, ok := it.(string)
				if !ok {
					return nil, fmt.Errorf("sequence item %d: expected str instance, %s found", i, typeName(it))
				}
				parts[i] = p
			}
			return strings.Join(parts, s), nil
		}
	case "find", "count", "index":
		return func(args []any, _ *Dict) (any, error) {
			if len(args) < 1 {
				return nil, fmt.Errorf("%s takes at least 1 argument", name)
			}
			sub, ok := args[0].(string)
			if !ok {
				return nil, fmt.Errorf("%s argument must be str", name)
			}
			if name == "count" {
				if sub == "" {
					return runeCount(s) + 1, nil
				}
				return strings.Count(s, sub), nil
			}
			i := strings.Index(s, sub)
			if i >= 0 {
				i = runeCount(s[:i])
			} else if name == "index" {
				return nil, errors.New("substring not found")
			}
			return i, nil
		}
	case "isdigit", "isalpha", "isspace", "isupper", "islower":
		return func([]any, *Dict) (any, error) {
			if s == "" {
				return false, nil
			}
			switch name {
			case "isupper":
				return s == strings.ToUpper(s) && s != strings.ToLower(s), nil
			case "islower":
				return s == strings.ToLower(s) && s != strings.ToUpper(s), nil
			}
			for _, r := range s {
				ok := map[string]bool{"isdigit": unicode.IsDigit(r), "isalpha": unicode.IsLetter(r), "isspace": pyIsSpace(r)}[name]
				if !ok {
					return false, nil
				}
			}
			return true, nil
		}
	}
	return nil
}

func splitWhitespace(s string, maxsplit int, fromRight bool) []string {
	if maxsplit < 0 {
		return strings.FieldsFunc(s, pyIsSpace)
	}
	var out []string
	if !fromRight {
		rest := strings.TrimLeftFunc(s, pyIsSpace)
		for len(out) < maxsplit && rest != "" {
			i := strings.IndexFunc(rest, pyIsSpace)
			if i < 0 {
				break
			}
			out = append(out, rest[:i])
			rest = strings.TrimLeftFunc(rest[i:], pyIsSpace)
		}
		if rest != "" {
			out = append(out, rest)
		}
		return out
	}
	rest := strings.TrimRightFunc(s, pyIsSpace)
	for len(out) < maxsplit && rest != "" {
		i := strings.LastIndexFunc(rest, pyIsSpace)
		if i < 0 {
			break
		}
		_, size := decodeRuneAt(rest, i)
		out = append([]string{rest[i+size:]}, out...)
		rest = strings.TrimRightFunc(rest[:i], pyIsSpace)
	}
	if rest != "" {
		out = append([]string{rest}, out...)
	}
	return out
}

func decodeRuneAt(s string, i int) (rune, int) {
	for j, r := range s[i:] {
		_ = j
		return r, len(string(r))
	}
	return 0, 1
}

func splitSep(s, sep string, maxsplit int, fromRight bool) []string {
	if maxsplit < 0 || !fromRight {
		n := -1
		if maxsplit >= 0 {
			n = maxsplit + 1
		}
		return strings.SplitN(s, sep, n)
	}
	var out []string
	rest := s
	for len(out) < maxsplit {
		i := strings.LastIndex(rest, sep)
		if i < 0 {
			break
		}
		out = append([]string{rest[i+len(sep):]}, out...)
		rest = rest[:i]
	}
	return append([]string{rest}, out...)
}
