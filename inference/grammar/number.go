package grammar

// Numbers. A number frame is advanced digit by digit; with minimum/maximum
// the frame also carries the magnitude written so far, and a byte is refused
// as soon as no continuation of the digits could land inside the bounds, so a
// bounded number can always be finished validly.

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// intDigits returns how many integer digits n allows.
func (n *node) intDigits() int32 {
	if n.bounded && n.kind == kindNumber {
		return boundedInt
	}
	return maxIntDigits
}

// numberStep consumes c if it continues the number (and, when bounded, the
// result can still reach the bounds); on refusal f is unchanged.
func numberStep(f *frame, c byte) bool {
	if !f.n.bounded {
		return numberSyntax(f, c)
	}
	g := *f
	if !numberSyntax(&g, c) || !feasible(&g) {
		return false
	}
	*f = g
	return true
}

// numberSyntax is the JSON number grammar with digit caps.
func numberSyntax(f *frame, c byte) bool {
	n := f.n
	real := n.kind == kindNumber
	fracDigits := int32(maxFracDigit)
	if n.bounded {
		fracDigits = boundedFrac
	}
	d := int64(c - '0')
	switch f.phase {
	case phNumStart, phNumMinus:
		switch {
		case c == '-' && f.phase == phNumStart:
			f.phase, f.b = phNumMinus, 1
		case c == '0':
			f.phase, f.v = phNumZero, 0
		case isDigit(c):
			f.phase, f.a, f.v = phNumInt, 1, d
		default:
			return false
		}
		return true
	case phNumZero, phNumInt:
		switch {
		case isDigit(c) && f.phase == phNumInt && f.a < n.intDigits():
			f.a++
			f.v = f.v*10 + d
		case real && c == '.':
			f.phase = phNumDot
			f.v *= n.scale
		case real && !n.bounded && (c == 'e' || c == 'E'):
			f.phase = phNumE
		default:
			return false
		}
		return true
	case phNumDot, phNumFrac:
		switch {
		case isDigit(c) && f.phase == phNumDot:
			f.phase, f.a = phNumFrac, 1
		case isDigit(c) && f.a < fracDigits:
			f.a++
		case f.phase == phNumFrac && !n.bounded && (c == 'e' || c == 'E'):
			f.phase = phNumE
			return true
		default:
			return false
		}
		if n.bounded {
			f.v += d * pow10[boundedFrac-f.a]
		}
		return true
	case phNumE:
		if c == '+' || c == '-' {
			f.phase = phNumESign
			return true
		}
		fallthrough
	case phNumESign:
		if isDigit(c) {
			f.phase, f.a = phNumExp, 1
			return true
		}
	case phNumExp:
		if isDigit(c) && f.a < maxExpDigits {
			f.a++
			return true
		}
	}
	return false
}

func numberComplete(phase uint8) bool {
	return phase == phNumZero || phase == phNumInt || phase == phNumFrac || phase == phNumExp
}

// numberDone reports whether the number may end here.
func numberDone(f *frame) bool {
	if !numberComplete(f.phase) {
		return false
	}
	if !f.n.bounded {
		return true
	}
	v := f.v
	if f.phase != phNumFrac {
		v *= f.n.scale
	}
	if f.b == 1 {
		v = -v
	}
	return f.n.lo <= v && v <= f.n.hi
}

// feasible reports whether some continuation of a bounded number's digits
// ends inside [lo, hi]: the magnitudes still reachable form a few intervals
// (one per count of further integer digits), each checked against the bounds.
func feasible(f *frame) bool {
	n := f.n
	s := n.scale
	hits := func(a, b int64) bool { // magnitudes [a, b]
		if f.b == 1 {
			return -b <= n.hi && -a >= n.lo
		}
		return a <= n.hi && b >= n.lo
	}
	switch f.phase {
	case phNumMinus:
		return hits(0, pow10[n.intDigits()]*s-1)
	case phNumZero:
		return hits(0, s-1)
	case phNumInt:
		for m := int32(0); f.a+m <= n.intDigits(); m++ {
			p := pow10[m] * s
			if hits(f.v*p, (f.v+1)*p-1) {
				return true
			}
		}
		return false
	case phNumDot:
		return hits(f.v, f.v+s-1)
	case phNumFrac:
		return hits(f.v, f.v+pow10[boundedFrac-f.a]-1)
	}
	return false
}
