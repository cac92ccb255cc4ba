package grammar

import (
	"errors"
	"fmt"
)

// Grammar is a compiled response format: the set of outputs it accepts.
// It is immutable and may be shared by any number of sequences.
type Grammar struct {
	root *node
}

// State is one sequence's position in the grammar. It is not safe for
// concurrent use; Clone it to branch (e.g. for n > 1 or speculation).
type State struct {
	cur        stackSet
	next       stackSet   // Advance's double buffer
	saved      stackSet   // Advance's undo copy
	fast, slow stackSet   // Mask's partition of cur
	levels     []stackSet // per-depth scratch for Mask's trie walk
}

// Start returns the state before any output.
func (g *Grammar) Start() *State {
	s := &State{}
	s.cur.push(nil, frame{n: &node{kind: kindRoot, items: g.root}})
	return s
}

// Clone returns an independent copy of s.
func (s *State) Clone() *State {
	c := &State{}
	c.cur.copyFrom(&s.cur)
	return c
}

// Advance consumes the bytes of a chosen token. On error the state is left
// unchanged.
func (s *State) Advance(tokenBytes []byte) error {
	if len(tokenBytes) == 0 {
		return errors.New("grammar: empty token (special tokens are not JSON)")
	}
	if at := s.tryAdvance(tokenBytes); at >= 0 {
		return fmt.Errorf("grammar: byte %q at offset %d of token %q breaks the required JSON", tokenBytes[at], at, tokenBytes)
	}
	return nil
}

// tryAdvance consumes tokenBytes, or returns the offset of the first byte
// refused (leaving the state unchanged); -1 means success.
func (s *State) tryAdvance(tokenBytes []byte) int {
	s.saved.copyFrom(&s.cur)
	for i, c := range tokenBytes {
		advance(&s.next, &s.cur, c)
		if s.next.len() == 0 {
			s.cur.copyFrom(&s.saved)
			return i
		}
		s.cur, s.next = s.next, s.cur
	}
	return -1
}

// Mask sets allowed[i] (len = v.Size()) to whether token i keeps the output a
// valid prefix; EOS tokens are allowed exactly when Done. Special tokens
// (empty bytes) are never allowed.
func (s *State) Mask(v *Vocab, allowed []bool) {
	if len(allowed) != len(v.tokens) {
		panic(fmt.Sprintf("grammar: mask has %d entries for a vocabulary of %d", len(allowed), len(v.tokens)))
	}
	for len(s.levels) < v.maxLen {
		s.levels = append(s.levels, stackSet{})
	}
	clear(allowed)
	// Stacks inside a string (at a character boundary) decide plain tokens
	// from the table, bounded by the room left under maxLength, and walk only
	// the quoteish trie; the others walk the whole trie.
	s.fast.reset()
	s.slow.reset()
	room := int32(-1) // the most code points any fast stack's string may still take
	for i := range s.cur.len() {
		stk := s.cur.stack(i)
		top := &stk[len(stk)-1]
		if top.n.kind != kindString || top.phase != phStr {
			s.slow.push(stk)
			continue
		}
		s.fast.push(stk)
		if top.n.maxLen < 0 {
			room = v.maxChars
		} else {
			room = max(room, int32(top.n.maxLen)-top.a)
		}
	}
	if s.fast.len() > 0 {
		if room >= v.maxChars {
			copy(allowed, v.plainOK)
		} else {
			for i, ok := range v.plainOK {
				allowed[i] = ok && v.plainChars[i] <= room
			}
		}
		s.walk(&v.quoteish, 0, &s.fast, 0, allowed)
	}
	if s.slow.len() > 0 {
		s.walk(&v.all, 0, &s.slow, 0, allowed)
	}
	if s.Done() {
		for _, id := range v.eos {
			allowed[id] = true
		}
	}
}

// walk marks every token below trie node nd that cur accepts, pruning a
// subtree at the first byte no stack accepts.
func (s *State) walk(t *trie, nd int32, cur *stackSet, depth int, allowed []bool) {
	next := &s.levels[depth]
	for e := t.edgeLo[nd]; e < t.edgeHi[nd]; e++ {
		advance(next, cur, t.edgeByte[e])
		if next.len() == 0 {
			continue
		}
		child := t.edgeChild[e]
		for _, id := range t.ids[t.tokLo[child]:t.tokHi[child]] {
			allowed[id] = true
		}
		if t.edgeLo[child] < t.edgeHi[child] {
			s.walk(t, child, next, depth+1, allowed)
		}
	}
}

// Done reports whether the output so far is a complete value, so that EOS
// may be sampled. A complete top-level number could still take more digits.
func (s *State) Done() bool {
	for i := range s.cur.len() {
		if canEnd(s.cur.stack(i)) {
			return true
		}
	}
	return false
}

// Finished reports whether the output is complete and nothing more may
// follow, so generation can stop without sampling an EOS token.
func (s *State) Finished() bool {
	for i := range s.cur.len() {
		stk := s.cur.stack(i)
		if len(stk) != 1 || stk[0].phase != phRootDone {
			return false
		}
	}
	return s.cur.len() > 0
}
