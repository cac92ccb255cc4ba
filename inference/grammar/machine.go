package grammar

import "sort"

// The matcher is a byte-level pushdown automaton. A stack of frames tracks
// the values being written (root, objects, arrays, strings, numbers, literal
// bytes); one byte at a time it is advanced deterministically, except where a
// value or an object key begins: there an anyOf, an enum or a choice between
// optional properties can fork it into several stacks, one per alternative.
// A State therefore holds a set of stacks (usually one); a stack that rejects
// a byte is dropped, and the output is valid while any stack survives.

// kind is the sort of value a node describes.
type kind uint8

const (
	kindRoot    kind = iota // the whole output: exactly one value of node.items
	kindObject              // {...}: declared props in order, or free keys
	kindArray               // [...] of node.items
	kindString              // "..."
	kindNumber              // JSON number
	kindInteger             // JSON number without fraction or exponent
	kindLiteral             // exactly the bytes of node.lit (true, null, const)
	kindEnum                // exactly one of node.lits (sorted): enum, boolean
	kindAnyOf               // one of node.alts
)

// Output limits that keep a model from looping forever inside one value.
const (
	indentUnit   = 4  // spaces of indentation allowed per open container after a newline
	maxIndent    = 64 // and never more than this many
	maxIntDigits = 16 // digits before the decimal point
	maxFracDigit = 16 // digits after it
	maxExpDigits = 2  // exponent digits: keeps every number inside float64 range

	// A bounded number (minimum/maximum) is checked exactly in int64 as
	// value·10^boundedFrac, so it has fewer digits and no exponent.
	boundedInt  = 10
	boundedFrac = 8
	maxDepth    = 64 // nesting of frames (values inside values)
)

// node is one compiled schema. Nodes form a graph ($ref and the any-value
// node are recursive); they are immutable once compiled.
type node struct {
	kind kind

	// object
	props   []prop
	nextReq []int // nextReq[i] = index of the first required prop ≥ i, or len(props)
	free    bool  // keys are arbitrary strings with values of extra
	noKeys  bool  // free but additionalProperties false: only {}
	extra   *node

	// array (items) and root (items = the value)
	items              *node
	minItems, maxItems int // maxItems < 0: unbounded

	// string
	minLen, maxLen int // in code points (an escape counts as one); maxLen < 0: unbounded

	// number and integer with minimum/maximum (see number.go)
	bounded bool
	lo, hi  int64 // allowed values times scale
	scale   int64 // 1 for integers, 10^boundedFrac for numbers

	lit  []byte   // literal
	lits [][]byte // enum, sorted
	alts []*node  // anyOf
}

// prop is one declared object property; key is its JSON-encoded name with
// quotes, which is the only spelling the matcher accepts.
type prop struct {
	name     string
	key      *node // literal node of the encoded key
	val      *node
	required bool
}

// canClose reports whether an object whose last written prop has index last
// may end: no required prop remains after it.
func (n *node) canClose(last int32) bool {
	return n.free || n.nextReq[last+1] == len(n.props)
}

// frame phases.
const (
	phRootStart uint8 = iota
	phRootDone

	phObjOpen  // after '{'
	phObjColon // after the key, before ':'
	phObjValue // after ':'
	phObjAfter // after a value, before ',' or '}'
	phObjComma // after ','

	phArrOpen  // after '['
	phArrAfter // after an item
	phArrComma // after ','

	phStr    // inside a string
	phStrEsc // after '\'
	phStrHex // inside \uXXXX; b = hex digits seen
	phStrU8  // inside a UTF-8 sequence; b = continuation bytes left, in [lo, hi]

	phNumStart // before the first byte
	phNumMinus // after '-'
	phNumZero  // after a leading 0
	phNumInt   // in the integer digits; a = count
	phNumDot   // after '.'
	phNumFrac  // in the fraction digits; a = count
	phNumE     // after 'e'
	phNumESign // after the exponent sign
	phNumExp   // in the exponent digits; a = count
)

// frame is one value being written.
type frame struct {
	n      *node
	phase  uint8
	ws     uint8 // whitespace run: 0 none, 1 one space, 2+k newline then k spaces
	lo, hi uint8 // allowed range of the next UTF-8 continuation byte
	a      int32 // object: last prop index; array: items; string: code points; number: digits; literal, enum: position
	b      int32 // string: hex digits or pending continuation bytes; number: 1 if negative; enum: first candidate
	v      int64 // bounded number: magnitude so far (scaled by node.scale once in the fraction); enum: end of candidates
}

// Where insignificant whitespace may go, as a pretty-printer writes it.
const (
	wsNone    = iota // before ':' or ',', and where the container cannot close yet
	wsSpace          // after ':': one space
	wsNewline        // after '{', '[' or ',', and before '}' or ']': one space, or a newline and indentation
)

// space consumes c as insignificant whitespace if the run policy allows at
// this place (wsNone, wsSpace, wsNewline): a single space, or a newline
// followed by at most indentUnit spaces per open container (depth). Tabs,
// blank lines and longer runs are refused so a model cannot pad.
func (f *frame) space(c byte, where uint8, depth int) bool {
	if where == wsNone {
		return false
	}
	switch c {
	case ' ':
		if f.ws == 0 {
			f.ws = 1
			return true
		}
		if f.ws >= 2 && int(f.ws)-2 < min(indentUnit*depth, maxIndent) {
			f.ws++
			return true
		}
	case '\n':
		if f.ws == 0 && where == wsNewline {
			f.ws = 2
			return true
		}
	}
	return false
}

// action is what step asks its caller to do with the byte.
type action uint8

const (
	actReject action = iota
	actOK            // consumed
	actValue         // the byte starts a value of the returned node (parent already updated)
	actKey           // the byte ('"') starts a declared key of the top object
)

// step applies c to the stack in place. It returns the (possibly shorter or
// longer) stack and what remains to be done; value and key starts are left
// to expand because they can fork.
func step(stk []frame, c byte) ([]frame, action, *node) {
	for len(stk) > 0 {
		f := &stk[len(stk)-1]
		n := f.n
		switch n.kind {
		case kindRoot:
			if f.phase == phRootStart {
				f.phase = phRootDone
				return stk, actValue, n.items
			}
			return stk, actReject, nil

		case kindObject:
			where := uint8(wsNewline)
			switch {
			case f.phase == phObjColon:
				where = wsNone
			case f.phase == phObjValue:
				where = wsSpace
			case f.phase == phObjAfter && !n.canClose(f.a):
				where = wsNone // whitespace here could only be followed by ','
			}
			if f.space(c, where, len(stk)-1) {
				return stk, actOK, nil
			}
			spaced := f.ws != 0
			f.ws = 0
			switch f.phase {
			case phObjOpen, phObjComma:
				if c == '"' {
					switch {
					case n.noKeys:
					case n.free:
						if len(stk) >= maxDepth {
							return stk, actReject, nil
						}
						f.phase = phObjColon
						return append(stk, frame{n: keyString, phase: phStr}), actOK, nil
					case int(f.a)+1 < len(n.props):
						return stk, actKey, nil
					}
					return stk, actReject, nil
				}
				if c == '}' && f.phase == phObjOpen && n.canClose(f.a) {
					return stk[:len(stk)-1], actOK, nil
				}
			case phObjColon:
				if c == ':' {
					f.phase = phObjValue
					return stk, actOK, nil
				}
			case phObjValue:
				f.phase = phObjAfter
				if n.free {
					return stk, actValue, n.extra
				}
				return stk, actValue, n.props[f.a].val
			case phObjAfter:
				if c == ',' && !spaced && (n.free || int(f.a)+1 < len(n.props)) {
					f.phase = phObjComma
					return stk, actOK, nil
				}
				if c == '}' && n.canClose(f.a) {
					return stk[:len(stk)-1], actOK, nil
				}
			}
			return stk, actReject, nil

		case kindArray:
			where := uint8(wsNewline)
			if f.phase == phArrAfter && int(f.a) < n.minItems {
				where = wsNone // whitespace here could only be followed by ','
			}
			if f.space(c, where, len(stk)-1) {
				return stk, actOK, nil
			}
			spaced := f.ws != 0
			f.ws = 0
			switch f.phase {
			case phArrOpen, phArrAfter:
				if c == ']' && int(f.a) >= n.minItems {
					return stk[:len(stk)-1], actOK, nil
				}
				if f.phase == phArrAfter {
					if c == ',' && !spaced && (n.maxItems < 0 || int(f.a) < n.maxItems) {
						f.phase = phArrComma
						return stk, actOK, nil
					}
					return stk, actReject, nil
				}
				fallthrough
			case phArrComma:
				if n.maxItems >= 0 && int(f.a) >= n.maxItems {
					return stk, actReject, nil
				}
				f.a++
				f.phase = phArrAfter
				return stk, actValue, n.items
			}
			return stk, actReject, nil

		case kindString:
			return stringStep(stk, f, c)

		case kindNumber, kindInteger:
			if numberStep(f, c) {
				return stk, actOK, nil
			}
			if !numberDone(f) {
				return stk, actReject, nil
			}
			stk = stk[:len(stk)-1] // the number ended before c: give c to the parent

		case kindLiteral:
			if c != n.lit[f.a] {
				return stk, actReject, nil
			}
			f.a++
			if int(f.a) == len(n.lit) {
				stk = stk[:len(stk)-1]
			}
			return stk, actOK, nil

		case kindEnum:
			if enumStep(f, c) {
				if enumOnlyComplete(f) {
					stk = stk[:len(stk)-1]
				}
				return stk, actOK, nil
			}
			if !enumComplete(f) {
				return stk, actReject, nil
			}
			// A member ended before c (a number such as 1 among 1 and 12).
			stk = stk[:len(stk)-1]

		default:
			return stk, actReject, nil
		}
	}
	return stk, actReject, nil
}

func stringStep(stk []frame, f *frame, c byte) ([]frame, action, *node) {
	n := f.n
	switch f.phase {
	case phStr:
		if c == '"' {
			if int(f.a) >= n.minLen {
				return stk[:len(stk)-1], actOK, nil
			}
			return stk, actReject, nil
		}
		if c < 0x20 || (n.maxLen >= 0 && int(f.a) >= n.maxLen) {
			return stk, actReject, nil
		}
		switch {
		case c == '\\':
			f.phase = phStrEsc
		case c < 0x80:
		case c >= 0xC2 && c <= 0xDF:
			f.phase, f.b, f.lo, f.hi = phStrU8, 1, 0x80, 0xBF
		case c == 0xE0:
			f.phase, f.b, f.lo, f.hi = phStrU8, 2, 0xA0, 0xBF // no overlong forms
		case c == 0xED:
			f.phase, f.b, f.lo, f.hi = phStrU8, 2, 0x80, 0x9F // no surrogates
		case c >= 0xE1 && c <= 0xEF:
			f.phase, f.b, f.lo, f.hi = phStrU8, 2, 0x80, 0xBF
		case c == 0xF0:
			f.phase, f.b, f.lo, f.hi = phStrU8, 3, 0x90, 0xBF
		case c >= 0xF1 && c <= 0xF3:
			f.phase, f.b, f.lo, f.hi = phStrU8, 3, 0x80, 0xBF
		case c == 0xF4:
			f.phase, f.b, f.lo, f.hi = phStrU8, 3, 0x80, 0x8F // not above U+10FFFF
		default:
			return stk, actReject, nil
		}
		f.a++
		return stk, actOK, nil
	case phStrU8:
		if c < f.lo || c > f.hi {
			return stk, actReject, nil
		}
		f.lo, f.hi = 0x80, 0xBF
		if f.b--; f.b == 0 {
			f.phase = phStr
		}
		return stk, actOK, nil
	case phStrEsc:
		switch c {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			f.phase = phStr
		case 'u':
			f.phase, f.b = phStrHex, 0
		default:
			return stk, actReject, nil
		}
		return stk, actOK, nil
	case phStrHex:
		if !isHex(c) {
			return stk, actReject, nil
		}
		if f.b++; f.b == 4 {
			f.phase = phStr
		}
		return stk, actOK, nil
	}
	return stk, actReject, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// startValue begins a value of node n (never anyOf) with its first byte c.
// It returns the frame to push, or push=false when c alone completes the
// value (a one-byte literal such as the number 5 in an enum).
func startValue(n *node, c byte) (f frame, push, ok bool) {
	switch n.kind {
	case kindObject:
		return frame{n: n, phase: phObjOpen, a: -1}, true, c == '{'
	case kindArray:
		return frame{n: n, phase: phArrOpen}, true, c == '['
	case kindString:
		return frame{n: n, phase: phStr}, true, c == '"'
	case kindNumber, kindInteger:
		f := frame{n: n, phase: phNumStart}
		return f, true, numberStep(&f, c)
	case kindLiteral:
		if c == n.lit[0] {
			return frame{n: n, a: 1}, len(n.lit) > 1, true
		}
	case kindEnum:
		f := frame{n: n, v: int64(len(n.lits))}
		if enumStep(&f, c) {
			return f, !enumOnlyComplete(&f), true
		}
	}
	return frame{}, false, false
}

// An enum frame tracks the members [b, v) of the sorted list that start with
// the a bytes written so far. Members sharing a prefix are contiguous, and
// the one that ends exactly there (if any) sorts first.

// enumStep narrows the candidates to those continuing with c.
func enumStep(f *frame, c byte) bool {
	lits, pos := f.n.lits, int(f.a)
	lo, hi := int(f.b), int(f.v)
	// key(i) = the byte at pos, or -1 for a member that has ended: ascending.
	key := func(i int) int {
		if len(lits[i]) == pos {
			return -1
		}
		return int(lits[i][pos])
	}
	first := lo + sort.Search(hi-lo, func(i int) bool { return key(lo+i) >= int(c) })
	end := lo + sort.Search(hi-lo, func(i int) bool { return key(lo+i) > int(c) })
	if first == end {
		return false
	}
	f.a, f.b, f.v = int32(pos+1), int32(first), int64(end)
	return true
}

// enumComplete reports whether a member ends at the current position.
func enumComplete(f *frame) bool { return len(f.n.lits[f.b]) == int(f.a) }

// enumOnlyComplete reports whether the single remaining member is complete,
// so the value is over.
func enumOnlyComplete(f *frame) bool { return f.v-int64(f.b) == 1 && enumComplete(f) }

// canEnd reports whether the stack holds a complete output: the root value is
// done, possibly with a finished number still open on top of it.
func canEnd(stk []frame) bool {
	for i := len(stk) - 1; i >= 0; i-- {
		f := &stk[i]
		switch f.n.kind {
		case kindRoot:
			return f.phase == phRootDone
		case kindNumber, kindInteger:
			if !numberDone(f) {
				return false
			}
		case kindEnum:
			if !enumComplete(f) {
				return false
			}
		default:
			return false
		}
	}
	return false
}

// stackSet is a set of stacks stored back to back in one buffer, so a state
// can be copied and advanced without allocating once its buffers have grown.
type stackSet struct {
	frames []frame
	ends   []int32 // stack i is frames[ends[i-1]:ends[i]]
	tmp    []frame // scratch for the stack being stepped
}

func (s *stackSet) reset() {
	s.frames = s.frames[:0]
	s.ends = s.ends[:0]
}

func (s *stackSet) len() int { return len(s.ends) }

func (s *stackSet) stack(i int) []frame {
	start := int32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.frames[start:s.ends[i]]
}

func (s *stackSet) push(stk []frame, extra ...frame) {
	s.frames = append(s.frames, stk...)
	s.frames = append(s.frames, extra...)
	s.ends = append(s.ends, int32(len(s.frames)))
}

func (s *stackSet) copyFrom(o *stackSet) {
	s.frames = append(s.frames[:0], o.frames...)
	s.ends = append(s.ends[:0], o.ends...)
}

// advance sets dst to the stacks of src that accept c, after c.
func advance(dst, src *stackSet, c byte) {
	dst.reset()
	for i := range src.len() {
		dst.tmp = append(dst.tmp[:0], src.stack(i)...)
		stk, act, val := step(dst.tmp, c)
		dst.tmp = stk
		switch act {
		case actOK:
			dst.push(stk)
		case actValue:
			expandValue(dst, stk, val, c, 0)
		case actKey:
			top := len(stk) - 1
			f := stk[top]
			n := f.n
			last := n.nextReq[f.a+1]
			if last == len(n.props) {
				last--
			}
			for p := int(f.a) + 1; p <= last; p++ {
				if len(stk) >= maxDepth {
					break
				}
				stk[top].a, stk[top].phase = int32(p), phObjColon
				dst.push(stk, frame{n: n.props[p].key, a: 1})
			}
		}
	}
}

// expandValue pushes one stack per alternative of n that c can start.
func expandValue(dst *stackSet, stk []frame, n *node, c byte, depth int) {
	if depth > maxDepth { // compile rejects anyOf cycles; this is a backstop
		return
	}
	if n.kind == kindAnyOf {
		for _, alt := range n.alts {
			expandValue(dst, stk, alt, c, depth+1)
		}
		return
	}
	f, push, ok := startValue(n, c)
	switch {
	case !ok:
	case !push:
		dst.push(stk)
	case len(stk) < maxDepth:
		dst.push(stk, f)
	}
}

// keyString is the node of free object keys: any string.
var keyString = &node{kind: kindString, maxLen: -1}
