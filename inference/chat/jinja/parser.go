package jinja

import (
	"fmt"
	"strconv"
)

// parser builds the statement tree with Jinja2's operator precedence:
// conditional < or < and < not < comparison < +/- < ~ < * / // % < ** <
// unary < postfix (attribute, item, call) and filters/tests.
type parser struct {
	toks []token
	pos  int
}

func parse(src string) ([]node, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	body, end, err := p.parseBody()
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, p.errorf("unexpected 'end of template'; tag %q has no opening block", end)
	}
	return body, nil
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", p.peek().line, fmt.Sprintf(format, args...))
}

func (p *parser) isOp(op string) bool {
	t := p.peek()
	return t.kind == tokOp && t.val == op
}

func (p *parser) isName(name string) bool {
	t := p.peek()
	return t.kind == tokName && t.val == name
}

func (p *parser) expectOp(op string) error {
	if !p.isOp(op) {
		return p.errorf("expected %q, got %s", op, p.peek())
	}
	p.next()
	return nil
}

func (p *parser) expectName() (string, error) {
	t := p.peek()
	if t.kind != tokName {
		return "", p.errorf("expected a name, got %s", t)
	}
	p.next()
	return t.val, nil
}

func (p *parser) expectBlockEnd() error {
	if p.peek().kind != tokBlockEnd {
		return p.errorf("expected end of statement block, got %s", p.peek())
	}
	p.next()
	return nil
}

// parseBody reads nodes until EOF or a block tag it does not own (endfor,
// else, ...), which it returns unconsumed as the tag name (the parser sits on
// that tag's name token).
func (p *parser) parseBody() ([]node, string, error) {
	var body []node
	for {
		t := p.peek()
		switch t.kind {
		case tokEOF:
			return body, "", nil
		case tokData:
			p.next()
			body = append(body, &textNode{text: t.val})
		case tokVarBegin:
			p.next()
			e, err := p.parseExpr()
			if err != nil {
				return nil, "", err
			}
			if p.peek().kind != tokVarEnd {
				return nil, "", p.errorf("expected end of print statement, got %s", p.peek())
			}
			p.next()
			body = append(body, &outputNode{expr: e})
		case tokBlockBegin:
			p.next()
			name := p.peek()
			if name.kind != tokName {
				return nil, "", p.errorf("expected a statement name, got %s", name)
			}
			switch name.val {
			case "endfor", "endif", "else", "elif", "endmacro", "endset", "endgeneration", "endfilter":
				return body, name.val, nil
			}
			n, err := p.parseStatement()
			if err != nil {
				return nil, "", err
			}
			if n != nil {
				body = append(body, n)
			}
		default:
			return nil, "", p.errorf("unexpected %s", t)
		}
	}
}

// parseEnd consumes the closing tag name and its %}.
func (p *parser) parseEnd(want string, got string) error {
	if got != want {
		if got == "" {
			return p.errorf("unexpected end of template, expected %q", want)
		}
		return p.errorf("unexpected %q, expected %q", got, want)
	}
	p.next()
	return p.expectBlockEnd()
}

func (p *parser) parseStatement() (node, error) {
	name := p.next()
	switch name.val {
	case "if":
		return p.parseIf()
	case "for":
		return p.parseFor(name.line)
	case "set":
		return p.parseSet(name.line)
	case "macro":
		return p.parseMacro()
	case "break":
		return &breakNode{}, p.expectBlockEnd()
	case "continue":
		return &continueNode{}, p.expectBlockEnd()
	case "generation":
		// transformers' {% generation %} only marks assistant spans; render the body.
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, end, err := p.parseBody()
		if err != nil {
			return nil, err
		}
		return &ifNode{conds: []expr{&constExpr{v: true}}, bodies: [][]node{body}}, p.parseEnd("endgeneration", end)
	}
	return nil, fmt.Errorf("line %d: unsupported statement %q", name.line, name.val)
}

func (p *parser) parseIf() (node, error) {
	n := &ifNode{}
	for {
		cond, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, end, err := p.parseBody()
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, cond)
		n.bodies = append(n.bodies, body)
		switch end {
		case "elif":
			p.next()
			continue
		case "else":
			p.next()
			if err := p.expectBlockEnd(); err != nil {
				return nil, err
			}
			body, end, err := p.parseBody()
			if err != nil {
				return nil, err
			}
			n.orElse = body
			return n, p.parseEnd("endif", end)
		default:
			return n, p.parseEnd("endif", end)
		}
	}
}

func (p *parser) parseTargets() ([]string, error) {
	var names []string
	paren := p.isOp("(")
	if paren {
		p.next()
	}
	for {
		n, err := p.expectName()
		if err != nil {
			return nil, err
		}
		names = append(names, n)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if paren {
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
	}
	return names, nil
}

func (p *parser) parseFor(line int) (node, error) {
	targets, err := p.parseTargets()
	if err != nil {
		return nil, err
	}
	if !p.isName("in") {
		return nil, p.errorf("expected 'in', got %s", p.peek())
	}
	p.next()
	iter, err := p.parseTupleOrExpr(false)
	if err != nil {
		return nil, err
	}
	n := &forNode{targets: targets, iter: iter, line: line}
	if p.isName("if") {
		p.next()
		if n.filter, err = p.parseExpr(); err != nil {
			return nil, err
		}
	}
	if p.isName("recursive") {
		return nil, p.errorf("recursive loops are not supported")
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	body, end, err := p.parseBody()
	if err != nil {
		return nil, err
	}
	n.body = body
	if end == "else" {
		p.next()
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		if n.orElse, end, err = p.parseBody(); err != nil {
			return nil, err
		}
	}
	return n, p.parseEnd("endfor", end)
}

func (p *parser) parseSet(line int) (node, error) {
	n := &setNode{line: line}
	first, err := p.expectName()
	if err != nil {
		return nil, err
	}
	if p.isOp(".") {
		p.next()
		attr, err := p.expectName()
		if err != nil {
			return nil, err
		}
		n.nsName, n.nsAttr = first, attr
	} else {
		n.targets = []string{first}
		for p.isOp(",") {
			p.next()
			t, err := p.expectName()
			if err != nil {
				return nil, err
			}
			n.targets = append(n.targets, t)
		}
	}
	if p.peek().kind == tokBlockEnd && n.nsName == "" && len(n.targets) == 1 {
		p.next()
		body, end, err := p.parseBody()
		if err != nil {
			return nil, err
		}
		n.body = body
		if n.body == nil {
			n.body = []node{}
		}
		return n, p.parseEnd("endset", end)
	}
	if err := p.expectOp("="); err != nil {
		return nil, err
	}
	if n.value, err = p.parseTupleOrExpr(true); err != nil {
		return nil, err
	}
	return n, p.expectBlockEnd()
}

func (p *parser) parseMacro() (node, error) {
	name, err := p.expectName()
	if err != nil {
		return nil, err
	}
	n := &macroNode{name: name}
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	for !p.isOp(")") {
		if len(n.params) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		param, err := p.expectName()
		if err != nil {
			return nil, err
		}
		var def expr
		if p.isOp("=") {
			p.next()
			if def, err = p.parseExpr(); err != nil {
				return nil, err
			}
		}
		n.params = append(n.params, param)
		n.defaults = append(n.defaults, def)
	}
	p.next()
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	body, end, err := p.parseBody()
	if err != nil {
		return nil, err
	}
	n.body = body
	return n, p.parseEnd("endmacro", end)
}

// parseTupleOrExpr parses "a, b" as a tuple where Jinja2 allows it (set
// values, for iterables).
func (p *parser) parseTupleOrExpr(allowCond bool) (expr, error) {
	parseOne := p.parseExpr
	if !allowCond {
		parseOne = p.parseOr
	}
	e, err := parseOne()
	if err != nil {
		return nil, err
	}
	if !p.isOp(",") {
		return e, nil
	}
	items := []expr{e}
	for p.isOp(",") {
		p.next()
		if p.peek().kind == tokBlockEnd {
			break
		}
		e, err := parseOne()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	return &tupleExpr{items: items}, nil
}

func (p *parser) parseExpr() (expr, error) {
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	for p.isName("if") {
		p.next()
		cond, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		var no expr
		if p.isName("else") {
			p.next()
			if no, err = p.parseExpr(); err != nil {
				return nil, err
			}
		}
		e = &condExpr{cond: cond, yes: e, no: no}
	}
	return e, nil
}

func (p *parser) parseOr() (expr, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isName("or") {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &orExpr{l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseAnd() (expr, error) {
	l, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.isName("and") {
		p.next()
		r, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l = &andExpr{l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseNot() (expr, error) {
	if p.isName("not") {
		p.next()
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &notExpr{x: x}, nil
	}
	return p.parseCompare()
}

func (p *parser) parseCompare() (expr, error) {
	line := p.peek().line
	l, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	var ops []compareOp
	for {
		var op string
		t := p.peek()
		switch {
		case t.kind == tokOp && (t.val == "==" || t.val == "!=" || t.val == "<" || t.val == "<=" || t.val == ">" || t.val == ">="):
			op = t.val
			p.next()
		case p.isName("in"):
			op = "in"
			p.next()
		case p.isName("not") && p.pos+1 < len(p.toks) && p.toks[p.pos+1].kind == tokName && p.toks[p.pos+1].val == "in":
			op = "notin"
			p.pos += 2
		default:
			if len(ops) == 0 {
				return l, nil
			}
			return &compareExpr{l: l, ops: ops, line: line}, nil
		}
		r, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		ops = append(ops, compareOp{op: op, r: r})
	}
}

func (p *parser) parseBinary(ops []string, operand func() (expr, error)) (expr, error) {
	l, err := operand()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		matched := ""
		if t.kind == tokOp {
			for _, op := range ops {
				if t.val == op {
					matched = op
				}
			}
		}
		if matched == "" {
			return l, nil
		}
		p.next()
		r, err := operand()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: matched, l: l, r: r, line: t.line}
	}
}

func (p *parser) parseMath1() (expr, error) {
	return p.parseBinary([]string{"+", "-"}, p.parseConcat)
}

func (p *parser) parseConcat() (expr, error) {
	return p.parseBinary([]string{"~"}, p.parseMath2)
}

func (p *parser) parseMath2() (expr, error) {
	return p.parseBinary([]string{"*", "/", "//", "%"}, p.parsePow)
}

func (p *parser) parsePow() (expr, error) {
	return p.parseBinary([]string{"**"}, func() (expr, error) { return p.parseUnary(true) })
}

func (p *parser) parseUnary(withFilter bool) (expr, error) {
	var e expr
	var err error
	switch {
	case p.isOp("-"):
		p.next()
		x, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		e = &negExpr{x: x}
	case p.isOp("+"):
		p.next()
		x, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		e = &posExpr{x: x}
	default:
		if e, err = p.parsePrimary(); err != nil {
			return nil, err
		}
	}
	if e, err = p.parsePostfix(e); err != nil {
		return nil, err
	}
	if withFilter {
		return p.parseFilterTest(e)
	}
	return e, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.next()
	switch t.kind {
	case tokName:
		switch t.val {
		case "true", "True":
			return &constExpr{v: true}, nil
		case "false", "False":
			return &constExpr{v: false}, nil
		case "none", "None":
			return &constExpr{v: nil}, nil
		}
		return &nameExpr{name: t.val, line: t.line}, nil
	case tokString:
		s := t.val
		for p.peek().kind == tokString {
			s += p.next().val
		}
		return &constExpr{v: s}, nil
	case tokInt:
		n, err := strconv.ParseInt(t.val, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: integer %s out of range", t.line, t.val)
		}
		return &constExpr{v: int(n)}, nil
	case tokFloat:
		f, err := strconv.ParseFloat(t.val, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad float %s", t.line, t.val)
		}
		return &constExpr{v: f}, nil
	case tokOp:
		switch t.val {
		case "(":
			if p.isOp(")") {
				p.next()
				return &tupleExpr{}, nil
			}
			e, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			if p.isOp(",") {
				items := []expr{e}
				for p.isOp(",") {
					p.next()
					if p.isOp(")") {
						break
					}
					e, err := p.parseExpr()
					if err != nil {
						return nil, err
					}
					items = append(items, e)
				}
				e = &tupleExpr{items: items}
			}
			return e, p.expectOp(")")
		case "[":
			items, err := p.parseList("]")
			if err != nil {
				return nil, err
			}
			return &listExpr{items: items}, nil
		case "{":
			d := &dictExpr{}
			for !p.isOp("}") {
				if len(d.keys) > 0 {
					if err := p.expectOp(","); err != nil {
						return nil, err
					}
					if p.isOp("}") {
						break
					}
				}
				k, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				if err := p.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				d.keys = append(d.keys, k)
				d.values = append(d.values, v)
			}
			p.next()
			return d, nil
		}
	}
	return nil, fmt.Errorf("line %d: unexpected %s", t.line, t)
}

func (p *parser) parseList(closer string) ([]expr, error) {
	var items []expr
	for !p.isOp(closer) {
		if len(items) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
			if p.isOp(closer) {
				break
			}
		}
		e, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	p.next()
	return items, nil
}

func (p *parser) parsePostfix(e expr) (expr, error) {
	for {
		t := p.peek()
		switch {
		case p.isOp("."):
			p.next()
			nt := p.next()
			switch nt.kind {
			case tokName:
				e = &attrExpr{obj: e, name: nt.val, line: nt.line}
			case tokInt:
				n, _ := strconv.Atoi(nt.val)
				e = &itemExpr{obj: e, key: &constExpr{v: n}, line: nt.line}
			default:
				return nil, fmt.Errorf("line %d: expected an attribute name, got %s", nt.line, nt)
			}
		case p.isOp("["):
			p.next()
			sub, err := p.parseSubscript(e, t.line)
			if err != nil {
				return nil, err
			}
			e = sub
		case p.isOp("("):
			call, err := p.parseCall(e, t.line)
			if err != nil {
				return nil, err
			}
			e = call
		default:
			return e, nil
		}
	}
}

func (p *parser) parseSubscript(obj expr, line int) (expr, error) {
	var parts [3]expr
	idx := 0
	isSlice := false
	for {
		if p.isOp("]") {
			p.next()
			break
		}
		if p.isOp(":") {
			p.next()
			isSlice = true
			idx++
			if idx > 2 {
				return nil, p.errorf("too many colons in slice")
			}
			continue
		}
		e, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if parts[idx] != nil {
			return nil, p.errorf("expected ']' or ':', got %s", p.peek())
		}
		parts[idx] = e
	}
	if !isSlice {
		if parts[0] == nil {
			return nil, p.errorf("empty subscript")
		}
		return &itemExpr{obj: obj, key: parts[0], line: line}, nil
	}
	return &sliceExpr{obj: obj, start: parts[0], stop: parts[1], step: parts[2]}, nil
}

func (p *parser) parseArgs() ([]expr, []kwarg, error) {
	if err := p.expectOp("("); err != nil {
		return nil, nil, err
	}
	var args []expr
	var kwargs []kwarg
	for !p.isOp(")") {
		if len(args)+len(kwargs) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, nil, err
			}
			if p.isOp(")") {
				break
			}
		}
		if p.peek().kind == tokName && p.pos+1 < len(p.toks) && p.toks[p.pos+1].kind == tokOp && p.toks[p.pos+1].val == "=" {
			name := p.next().val
			p.next()
			v, err := p.parseExpr()
			if err != nil {
				return nil, nil, err
			}
			kwargs = append(kwargs, kwarg{name: name, value: v})
			continue
		}
		if len(kwargs) > 0 {
			return nil, nil, p.errorf("positional argument after keyword argument")
		}
		e, err := p.parseExpr()
		if err != nil {
			return nil, nil, err
		}
		args = append(args, e)
	}
	p.next()
	return args, kwargs, nil
}

func (p *parser) parseCall(fn expr, line int) (expr, error) {
	args, kwargs, err := p.parseArgs()
	if err != nil {
		return nil, err
	}
	return &callExpr{fn: fn, args: args, kwargs: kwargs, line: line}, nil
}

func (p *parser) parseFilterTest(e expr) (expr, error) {
	for {
		switch {
		case p.isOp("|"):
			p.next()
			line := p.peek().line
			name, err := p.expectName()
			if err != nil {
				return nil, err
			}
			f := &filterExpr{x: e, name: name, line: line}
			if p.isOp("(") {
				if f.args, f.kwargs, err = p.parseArgs(); err != nil {
					return nil, err
				}
			}
			e = f
		case p.isName("is"):
			p.next()
			line := p.peek().line
			negate := false
			if p.isName("not") {
				p.next()
				negate = true
			}
			name, err := p.expectName()
			if err != nil {
				return nil, err
			}
			te := &testExpr{x: e, name: name, negate: negate, line: line}
			if p.isOp("(") {
				args, _, err := p.parseArgs()
				if err != nil {
					return nil, err
				}
				te.args = args
			} else if p.startsTestArg() {
				arg, err := p.parseUnary(false)
				if err != nil {
					return nil, err
				}
				te.args = []expr{arg}
			}
			e = te
		case p.isOp("("):
			call, err := p.parseCall(e, p.peek().line)
			if err != nil {
				return nil, err
			}
			e = call
		default:
			return e, nil
		}
	}
}

// startsTestArg mirrors Jinja2: a test takes one bare argument when the next
// token can start an expression and is not a keyword that continues the outer one.
func (p *parser) startsTestArg() bool {
	t := p.peek()
	switch t.kind {
	case tokString, tokInt, tokFloat:
		return true
	case tokName:
		switch t.val {
		case "else", "or", "and", "if", "in", "is", "not":
			return false
		}
		return true
	case tokOp:
		return t.val == "[" || t.val == "{" || t.val == "-" || t.val == "+"
	}
	return false
}
