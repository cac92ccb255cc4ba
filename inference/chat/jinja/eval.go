package jinja

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Exception is the error raised by a template's raise_exception(msg); its
// Error() is the message alone so a server can show it to the client as is.
type Exception struct{ Message string }

func (e *Exception) Error() string { return e.Message }

// Template is a parsed template, safe for concurrent Render calls.
type Template struct {
	body []node
}

// Parse parses template source with transformers' settings (trim_blocks,
// lstrip_blocks, loop controls).
func Parse(src string) (*Template, error) {
	body, err := parse(src)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	return &Template{body: body}, nil
}

// Options adjusts the environment of one render.
type Options struct {
	// Now is the clock behind strftime_now; time.Now when nil.
	Now func() time.Time
}

// maxDepth bounds macro recursion so hostile templates fail instead of
// exhausting the stack.
const maxDepth = 200

// maxRepeat bounds "str * n" and "list * n" results.
const maxRepeat = 1 << 24

var (
	errBreak    = errors.New("break outside a loop")
	errContinue = errors.New("continue outside a loop")
)

type scope struct {
	vars   map[string]any
	parent *scope
}

func (s *scope) lookup(name string) (any, bool) {
	for c := s; c != nil; c = c.parent {
		if v, ok := c.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

func newScope(parent *scope) *scope { return &scope{vars: map[string]any{}, parent: parent} }

type evaluator struct {
	root  *scope
	depth int
}

// Render executes the template with vars as its context. Values must be
// the types value.go lists; Convert and FromJSON build them from Go data.
func (t *Template) Render(vars map[string]any, opts Options) (out string, err error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	globals := newScope(nil)
	for k, v := range builtinGlobals(now) {
		globals.vars[k] = v
	}
	root := newScope(globals)
	for k, v := range vars {
		root.vars[k] = v
	}
	ev := &evaluator{root: root}
	var b strings.Builder
	if err := ev.execBody(t.body, root, &b); err != nil {
		if err == errBreak || err == errContinue {
			return "", fmt.Errorf("render template: %w", err)
		}
		var ex *Exception
		if errors.As(err, &ex) {
			return "", ex
		}
		return "", fmt.Errorf("render template: %w", err)
	}
	return b.String(), nil
}

func (ev *evaluator) execBody(body []node, sc *scope, out *strings.Builder) error {
	for _, n := range body {
		if err := ev.exec(n, sc, out); err != nil {
			return err
		}
	}
	return nil
}

func (ev *evaluator) exec(n node, sc *scope, out *strings.Builder) error {
	switch n := n.(type) {
	case *textNode:
		out.WriteString(n.text)
	case *outputNode:
		v, err := ev.eval(n.expr, sc)
		if err != nil {
			return err
		}
		out.WriteString(toStr(v))
	case *ifNode:
		for i, c := range n.conds {
			v, err := ev.eval(c, sc)
			if err != nil {
				return err
			}
			if truthy(v) {
				return ev.execBody(n.bodies[i], sc, out)
			}
		}
		return ev.execBody(n.orElse, sc, out)
	case *forNode:
		return ev.execFor(n, sc, out)
	case *setNode:
		return ev.execSet(n, sc)
	case *macroNode:
		sc.vars[n.name] = ev.makeMacro(n)
	case *breakNode:
		return errBreak
	case *continueNode:
		return errContinue
	default:
		return fmt.Errorf("unknown node %T", n)
	}
	return nil
}

func bindTargets(sc *scope, targets []string, item any) error {
	if len(targets) == 1 {
		sc.vars[targets[0]] = item
		return nil
	}
	seq, err := iterate(item)
	if err != nil || isUndefined(item) {
		return fmt.Errorf("cannot unpack %s into %d names", typeName(item), len(targets))
	}
	if len(seq) != len(targets) {
		return fmt.Errorf("expected %d values to unpack, got %d", len(targets), len(seq))
	}
	for i, t := range targets {
		sc.vars[t] = seq[i]
	}
	return nil
}

func (ev *evaluator) execFor(n *forNode, sc *scope, out *strings.Builder) error {
	seqV, err := ev.eval(n.iter, sc)
	if err != nil {
		return err
	}
	items, err := iterate(seqV)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.line, err)
	}
	if n.filter != nil {
		var kept []any
		for _, it := range items {
			fs := newScope(sc)
			if err := bindTargets(fs, n.targets, it); err != nil {
				return fmt.Errorf("line %d: %w", n.line, err)
			}
			ok, err := ev.eval(n.filter, fs)
			if err != nil {
				return err
			}
			if truthy(ok) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		return ev.execBody(n.orElse, sc, out)
	}
	loop := &loopInfo{items: items}
	for i, it := range items {
		// Jinja2 gives each iteration a fresh scope over the enclosing one.
		is := newScope(sc)
		loop.index0 = i
		is.vars["loop"] = loop
		if err := bindTargets(is, n.targets, it); err != nil {
			return fmt.Errorf("line %d: %w", n.line, err)
		}
		err := ev.execBody(n.body, is, out)
		if err == errBreak {
			break
		}
		if err != nil && err != errContinue {
			return err
		}
	}
	return nil
}

func (ev *evaluator) execSet(n *setNode, sc *scope) error {
	var v any
	if n.body != nil {
		var b strings.Builder
		if err := ev.execBody(n.body, sc, &b); err != nil {
			return err
		}
		v = b.String()
	} else {
		var err error
		if v, err = ev.eval(n.value, sc); err != nil {
			return err
		}
	}
	if n.nsName != "" {
		obj, _ := sc.lookup(n.nsName)
		ns, ok := obj.(*Namespace)
		if !ok {
			return fmt.Errorf("line %d: cannot assign attribute on non-namespace object", n.line)
		}
		ns.attrs.Set(n.nsAttr, v)
		return nil
	}
	if err := bindTargets(sc, n.targets, v); err != nil {
		return fmt.Errorf("line %d: %w", n.line, err)
	}
	return nil
}

func (ev *evaluator) makeMacro(n *macroNode) Func {
	return func(args []any, kwargs *Dict) (any, error) {
		if len(args) > len(n.params) {
			return nil, fmt.Errorf("macro %q takes not more than %d argument(s)", n.name, len(n.params))
		}
		if ev.depth >= maxDepth {
			return nil, fmt.Errorf("macro %q: recursion deeper than %d", n.name, maxDepth)
		}
		ms := newScope(ev.root)
		for i, p := range n.params {
			switch {
			case i < len(args):
				ms.vars[p] = args[i]
			case kwargs != nil && hasKey(kwargs, p):
				ms.vars[p], _ = kwargs.Get(p)
			case n.defaults[i] != nil:
				d, err := ev.eval(n.defaults[i], ms)
				if err != nil {
					return nil, err
				}
				ms.vars[p] = d
			default:
				ms.vars[p] = Undefined{hint: fmt.Sprintf("parameter '%s' was not provided", p)}
			}
		}
		if kwargs != nil {
			for _, k := range kwargs.keys {
				if !contains(n.params, k) {
					return nil, fmt.Errorf("macro %q takes no keyword argument %q", n.name, k)
				}
			}
		}
		ev.depth++
		defer func() { ev.depth-- }()
		var b strings.Builder
		if err := ev.execBody(n.body, ms, &b); err != nil {
			return nil, err
		}
		return b.String(), nil
	}
}

func hasKey(d *Dict, k string) bool { _, ok := d.m[k]; return ok }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// undefinedError is what Jinja2 raises when an Undefined is used beyond
// printing, testing or iterating.
func undefinedError(u Undefined) error {
	return errors.New(u.hint)
}

func (ev *evaluator) eval(e expr, sc *scope) (any, error) {
	switch e := e.(type) {
	case *constExpr:
		return e.v, nil
	case *nameExpr:
		if v, ok := sc.lookup(e.name); ok {
			return v, nil
		}
		return Undefined{hint: fmt.Sprintf("'%s' is undefined", e.name)}, nil
	case *attrExpr:
		obj, err := ev.eval(e.obj, sc)
		if err != nil {
			return nil, err
		}
		return getAttr(obj, e.name)
	case *itemExpr:
		obj, err := ev.eval(e.obj, sc)
		if err != nil {
			return nil, err
		}
		key, err := ev.eval(e.key, sc)
		if err != nil {
			return nil, err
		}
		return getItem(obj, key)
	case *sliceExpr:
		return ev.evalSlice(e, sc)
	case *callExpr:
		fn, err := ev.eval(e.fn, sc)
		if err != nil {
			return nil, err
		}
		args, kwargs, err := ev.evalArgs(e.args, e.kwargs, sc)
		if err != nil {
			return nil, err
		}
		return call(fn, args, kwargs)
	case *filterExpr:
		x, err := ev.eval(e.x, sc)
		if err != nil {
			return nil, err
		}
		args, kwargs, err := ev.evalArgs(e.args, e.kwargs, sc)
		if err != nil {
			return nil, err
		}
		v, err := ev.applyFilter(e.name, x, args, kwargs)
		if err != nil {
			return nil, fmt.Errorf("line %d: filter %s: %w", e.line, e.name, err)
		}
		return v, nil
	case *testExpr:
		x, err := ev.eval(e.x, sc)
		if err != nil {
			return nil, err
		}
		args, _, err := ev.evalArgs(e.args, nil, sc)
		if err != nil {
			return nil, err
		}
		ok, err := applyTest(e.name, x, args)
		if err != nil {
			return nil, fmt.Errorf("line %d: test %s: %w", e.line, e.name, err)
		}
		return ok != e.negate, nil
	case *notExpr:
		x, err := ev.eval(e.x, sc)
		if err != nil {
			return nil, err
		}
		return !truthy(x), nil
	case *andExpr:
		l, err := ev.eval(e.l, sc)
		if err != nil || !truthy(l) {
			return l, err
		}
		return ev.eval(e.r, sc)
	case *orExpr:
		l, err := ev.eval(e.l, sc)
		if err != nil || truthy(l) {
			return l, err
		}
		return ev.eval(e.r, sc)
	case *condExpr:
		c, err := ev.eval(e.cond, sc)
		if err != nil {
			return nil, err
		}
		if truthy(c) {
			return ev.eval(e.yes, sc)
		}
		if e.no == nil {
			return Undefined{hint: "the inline if-expression evaluated to false and no else section was defined."}, nil
		}
		return ev.eval(e.no, sc)
	case *negExpr:
		x, err := ev.eval(e.x, sc)
		if err != nil {
			return nil, err
		}
		switch v := x.(type) {
		case int:
			return -v, nil
		case float64:
			return -v, nil
		case bool:
			return -boolInt(v), nil
		case Undefined:
			return nil, undefinedError(v)
		}
		return nil, fmt.Errorf("bad operand type for unary -: '%s'", typeName(x))
	case *posExpr:
		x, err := ev.eval(e.x, sc)
		if err != nil {
			return nil, err
		}
		if _, ok := number(x); !ok {
			return nil, fmt.Errorf("bad operand type for unary +: '%s'", typeName(x))
		}
		return x, nil
	case *binExpr:
		l, err := ev.eval(e.l, sc)
		if err != nil {
			return nil, err
		}
		r, err := ev.eval(e.r, sc)
		if err != nil {
			return nil, err
		}
		v, err := binary(e.op, l, r)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", e.line, err)
		}
		return v, nil
	case *compareExpr:
		l, err := ev.eval(e.l, sc)
		if err != nil {
			return nil, err
		}
		for _, op := range e.ops {
			r, err := ev.eval(op.r, sc)
			if err != nil {
				return nil, err
			}
			ok, err := compare(op.op, l, r)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", e.line, err)
			}
			if !ok {
				return false, nil
			}
			l = r
		}
		return true, nil
	case *listExpr:
		out := make([]any, 0, len(e.items))
		for _, it := range e.items {
			v, err := ev.eval(it, sc)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case *tupleExpr:
		out := make(Tuple, 0, len(e.items))
		for _, it := range e.items {
			v, err := ev.eval(it, sc)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case *dictExpr:
		d := NewDict()
		for i := range e.keys {
			k, err := ev.eval(e.keys[i], sc)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("dict keys must be strings, got %s", typeName(k))
			}
			v, err := ev.eval(e.values[i], sc)
			if err != nil {
				return nil, err
			}
			d.Set(ks, v)
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown expression %T", e)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (ev *evaluator) evalArgs(argExprs []expr, kwExprs []kwarg, sc *scope) ([]any, *Dict, error) {
	args := make([]any, 0, len(argExprs))
	for _, a := range argExprs {
		v, err := ev.eval(a, sc)
		if err != nil {
			return nil, nil, err
		}
		args = append(args, v)
	}
	var kwargs *Dict
	if len(kwExprs) > 0 {
		kwargs = NewDict()
		for _, kw := range kwExprs {
			v, err := ev.eval(kw.value, sc)
			if err != nil {
				return nil, nil, err
			}
			kwargs.Set(kw.name, v)
		}
	}
	return args, kwargs, nil
}

func call(fn any, args []any, kwargs *Dict) (any, error) {
	switch f := fn.(type) {
	case Func:
		return f(args, kwargs)
	case Undefined:
		return nil, undefinedError(f)
	}
	return nil, fmt.Errorf("'%s' object is not callable", typeName(fn))
}

func (ev *evaluator) evalSlice(e *sliceExpr, sc *scope) (any, error) {
	obj, err := ev.eval(e.obj, sc)
	if err != nil {
		return nil, err
	}
	var bounds [3]*int
	for i, x := range []expr{e.start, e.stop, e.step} {
		if x == nil {
			continue
		}
		v, err := ev.eval(x, sc)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		n, ok := v.(int)
		if !ok {
			return nil, fmt.Errorf("slice indices must be integers or None, not %s", typeName(v))
		}
		bounds[i] = &n
	}
	switch x := obj.(type) {
	case string:
		runes := []rune(x)
		idx, err := sliceIndices(len(runes), bounds)
		if err != nil {
			return nil, err
		}
		out := make([]rune, 0, len(idx))
		for _, i := range idx {
			out = append(out, runes[i])
		}
		return string(out), nil
	case []any, Tuple:
		items, _ := asSeq(x)
		idx, err := sliceIndices(len(items), bounds)
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, len(idx))
		for _, i := range idx {
			out = append(out, items[i])
		}
		if _, isTuple := x.(Tuple); isTuple {
			return Tuple(out), nil
		}
		return out, nil
	case Undefined:
		return nil, undefinedError(x)
	}
	return nil, fmt.Errorf("'%s' object is not subscriptable", typeName(obj))
}

// sliceIndices is Python's slice.indices followed by range().
func sliceIndices(n int, b [3]*int) ([]int, error) {
	step := 1
	if b[2] != nil {
		step = *b[2]
	}
	if step == 0 {
		return nil, errors.New("slice step cannot be zero")
	}
	clamp := func(p *int, def, lo, hi int) int {
		if p == nil {
			return def
		}
		v := *p
		if v < 0 {
			v += n
			if v < lo {
				v = lo
			}
		} else if v > hi {
			v = hi
		}
		return v
	}
	var out []int
	if step > 0 {
		start, stop := clamp(b[0], 0, 0, n), clamp(b[1], n, 0, n)
		for i := start; i < stop; i += step {
			out = append(out, i)
		}
	} else {
		start, stop := clamp(b[0], n-1, -1, n-1), clamp(b[1], -1, -1, n-1)
		if b[1] != nil && *b[1] < 0 && *b[1]+n < 0 {
			stop = -1
		}
		for i := start; i > stop; i += step {
			out = append(out, i)
		}
	}
	return out, nil
}

// getAttr is Jinja2's environment.getattr: Python attribute first, then item.
func getAttr(obj any, name string) (any, error) {
	switch x := obj.(type) {
	case Undefined:
		return nil, undefinedError(x)
	case *Dict:
		if m := dictMethod(x, name); m != nil {
			return m, nil
		}
		if v, ok := x.m[name]; ok {
			return v, nil
		}
	case string:
		if m := strMethod(x, name); m != nil {
			return m, nil
		}
	case *Namespace:
		if v, ok := x.attrs.m[name]; ok {
			return v, nil
		}
	case *loopInfo:
		if v, ok := x.attr(name); ok {
			return v, nil
		}
	}
	return Undefined{hint: fmt.Sprintf("'%s object' has no attribute '%s'", typeName(obj), name)}, nil
}

// getItem is Jinja2's environment.getitem: item first, then attribute.
func getItem(obj any, key any) (any, error) {
	switch x := obj.(type) {
	case Undefined:
		return nil, undefinedError(x)
	case *Dict:
		if k, ok := key.(string); ok {
			if v, ok := x.m[k]; ok {
				return v, nil
			}
		}
	case []any, Tuple, string:
		if i, ok := key.(int); ok {
			if s, isStr := x.(string); isStr {
				runes := []rune(s)
				if i < 0 {
					i += len(runes)
				}
				if i >= 0 && i < len(runes) {
					return string(runes[i]), nil
				}
				break
			}
			items, _ := asSeq(x)
			if i < 0 {
				i += len(items)
			}
			if i >= 0 && i < len(items) {
				return items[i], nil
			}
		}
	}
	if k, ok := key.(string); ok {
		return getAttr(obj, k)
	}
	return Undefined{hint: fmt.Sprintf("'%s object' has no element %s", typeName(obj), repr(key))}, nil
}

func binary(op string, l, r any) (any, error) {
	if op == "~" {
		return toStr(l) + toStr(r), nil
	}
	if u, ok := l.(Undefined); ok {
		return nil, undefinedError(u)
	}
	if u, ok := r.(Undefined); ok {
		return nil, undefinedError(u)
	}
	switch op {
	case "+":
		switch a := l.(type) {
		case string:
			if b, ok := r.(string); ok {
				return a + b, nil
			}
			return nil, fmt.Errorf("can only concatenate str (not \"%s\") to str", typeName(r))
		case []any:
			if b, ok := r.([]any); ok {
				return append(append([]any{}, a...), b...), nil
			}
			return nil, fmt.Errorf("can only concatenate list (not \"%s\") to list", typeName(r))
		case Tuple:
			if b, ok := r.(Tuple); ok {
				return append(append(Tuple{}, a...), b...), nil
			}
			return nil, fmt.Errorf("can only concatenate tuple (not \"%s\") to tuple", typeName(r))
		}
	case "*":
		s, sOK := l.(string)
		n, nOK := r.(int)
		if !sOK || !nOK {
			s, sOK = r.(string)
			n, nOK = l.(int)
		}
		if sOK && nOK {
			if n > 0 && len(s) > maxRepeat/n {
				return nil, errors.New("repeated string too large")
			}
			return strings.Repeat(s, max(n, 0)), nil
		}
		if list, ok := l.([]any); ok {
			if n, ok := r.(int); ok {
				if n > 0 && len(list) > maxRepeat/n {
					return nil, errors.New("repeated list too large")
				}
				var out []any
				for range max(n, 0) {
					out = append(out, list...)
				}
				return out, nil
			}
		}
	}
	ai, aInt := intOf(l)
	bi, bInt := intOf(r)
	if aInt && bInt {
		switch op {
		case "+":
			return ai + bi, nil
		case "-":
			return ai - bi, nil
		case "*":
			return ai * bi, nil
		case "/":
			if bi == 0 {
				return nil, errors.New("division by zero")
			}
			return float64(ai) / float64(bi), nil
		case "//":
			if bi == 0 {
				return nil, errors.New("integer division or modulo by zero")
			}
			q := ai / bi
			if (ai%bi != 0) && ((ai < 0) != (bi < 0)) {
				q--
			}
			return q, nil
		case "%":
			if bi == 0 {
				return nil, errors.New("integer division or modulo by zero")
			}
			m := ai % bi
			if m != 0 && ((m < 0) != (bi < 0)) {
				m += bi
			}
			return m, nil
		case "**":
			if bi >= 0 && bi <= 64 {
				res := 1
				for range bi {
					next := res * ai
					if ai != 0 && next/ai != res {
						return math.Pow(float64(ai), float64(bi)), nil // beyond int range
					}
					res = next
				}
				return res, nil
			}
			return math.Pow(float64(ai), float64(bi)), nil
		}
	}
	a, aOK := number(l)
	b, bOK := number(r)
	if aOK && bOK {
		switch op {
		case "+":
			return a + b, nil
		case "-":
			return a - b, nil
		case "*":
			return a * b, nil
		case "/":
			if b == 0 {
				return nil, errors.New("float division by zero")
			}
			return a / b, nil
		case "//":
			if b == 0 {
				return nil, errors.New("float floor division by zero")
			}
			return math.Floor(a / b), nil
		case "%":
			if b == 0 {
				return nil, errors.New("float modulo")
			}
			m := math.Mod(a, b)
			if m != 0 && ((m < 0) != (b < 0)) {
				m += b
			}
			return m, nil
		case "**":
			return math.Pow(a, b), nil
		}
	}
	return nil, fmt.Errorf("unsupported operand type(s) for %s: '%s' and '%s'", op, typeName(l), typeName(r))
}

func intOf(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case bool:
		return boolInt(x), true
	}
	return 0, false
}

func compare(op string, l, r any) (bool, error) {
	switch op {
	case "==":
		return equal(l, r), nil
	case "!=":
		return !equal(l, r), nil
	case "<":
		return less(l, r)
	case ">":
		return less(r, l)
	case "<=":
		lt, err := less(l, r)
		return lt || (err == nil && equal(l, r)), err
	case ">=":
		gt, err := less(r, l)
		return gt || (err == nil && equal(l, r)), err
	case "in":
		return in(l, r)
	case "notin":
		ok, err := in(l, r)
		return !ok, err
	}
	return false, fmt.Errorf("unknown comparison %s", op)
}

// in is Python's "l in r".
func in(l, r any) (bool, error) {
	switch c := r.(type) {
	case Undefined:
		return false, nil
	case string:
		s, ok := l.(string)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires string as left operand, not %s", typeName(l))
		}
		return strings.Contains(c, s), nil
	case *Dict:
		s, ok := l.(string)
		return ok && hasKey(c, s), nil
	case []any, Tuple:
		items, _ := asSeq(c)
		for _, it := range items {
			if equal(l, it) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("argument of type '%s' is not iterable", typeName(r))
}

// loopInfo is the "loop" variable inside a for block.
type loopInfo struct {
	items  []any
	index0 int
}

func (l *loopInfo) attr(name string) (any, bool) {
	n := len(l.items)
	switch name {
	case "index0":
		return l.index0, true
	case "index":
		return l.index0 + 1, true
	case "revindex":
		return n - l.index0, true
	case "revindex0":
		return n - l.index0 - 1, true
	case "first":
		return l.index0 == 0, true
	case "last":
		return l.index0 == n-1, true
	case "length":
		return n, true
	case "depth":
		return 1, true
	case "depth0":
		return 0, true
	case "previtem":
		if l.index0 > 0 {
			return l.items[l.index0-1], true
		}
		return Undefined{hint: "there is no previous item"}, true
	case "nextitem":
		if l.index0+1 < n {
			return l.items[l.index0+1], true
		}
		return Undefined{hint: "there is no next item"}, true
	case "cycle":
		idx := l.index0
		return Func(func(args []any, _ *Dict) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("no items for cycling given")
			}
			return args[idx%len(args)], nil
		}), true
	}
	return nil, false
}

// runeCount avoids importing utf8 in callers that only need a length.
func runeCount(s string) int { return utf8.RuneCountInString(s) }
