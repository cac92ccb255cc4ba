package inference

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"weak"

	"github.com/impetusllm/impetus/inference/grammar"
)

// vocabCache holds each loaded model's grammar vocabulary, built on first
// use (it walks the whole vocabulary, so it is built once per model). Keys
// are weak so an unloaded model's entry goes with it.
var vocabCache sync.Map // weak.Pointer[LoadedModel] -> *vocabEntry

type vocabEntry struct {
	once sync.Once
	v    *grammar.Vocab
}

// GrammarVocab returns the model's vocabulary arranged for grammar masking:
// each token's bytes (special tokens empty, so a grammar never picks them)
// and the model's end-of-sequence ids. Its size is the model's logit count.
func (m *LoadedModel) GrammarVocab() *grammar.Vocab {
	key := weak.Make(m)
	e, loaded := vocabCache.LoadOrStore(key, &vocabEntry{})
	if !loaded {
		runtime.AddCleanup(m, func(k weak.Pointer[LoadedModel]) { vocabCache.Delete(k) }, key)
	}
	entry := e.(*vocabEntry)
	entry.once.Do(func() {
		tokens := make([][]byte, m.Meta.Vocab)
		for i := range tokens {
			id := int32(i)
			if m.Tokenizer.IsSpecial(id) {
				continue
			}
			tokens[i] = m.Tokenizer.TokenBytes(id)
		}
		entry.v = grammar.NewVocab(tokens, m.EOS())
	})
	return entry.v
}

// NewConstraint returns a Constraint that makes a sequence's output exactly
// prefix, then a value of g, then suffix (prefix and suffix may be empty),
// then end. The literal parts let a tool call's syntax (for instance
// "<tool_call>\n" ... "\n</tool_call>") be forced around a JSON grammar.
// Each sequence needs its own Constraint.
func (m *LoadedModel) NewConstraint(g *grammar.Grammar, prefix, suffix string) Constraint {
	c := &grammarConstraint{vocab: m.GrammarVocab(), state: g.Start(), prefix: []byte(prefix), suffix: []byte(suffix)}
	if len(c.prefix) == 0 {
		c.phase = phaseValue
	}
	return c
}

// NewTriggeredConstraint returns a Constraint that leaves the output free
// until it writes trigger, then makes it continue with prefix, a value of g
// and suffix, as NewConstraint does. After the suffix the output is free
// again when repeat is set (more calls may follow), else it ends. This lets
// a model choose between text and a tool call while any call it starts is
// held to the function's schema. A token that would run past the trigger
// into what follows is not allowed, so the trigger is always written whole
// first.
func (m *LoadedModel) NewTriggeredConstraint(g *grammar.Grammar, trigger, prefix, suffix string, repeat bool) Constraint {
	c := &grammarConstraint{vocab: m.GrammarVocab(), grammar: g, prefix: []byte(prefix), suffix: []byte(suffix), trigger: []byte(trigger), repeat: repeat, phase: phaseFree}
	c.triggerEnds = tokensWith(c.vocab, c.trigger[len(c.trigger)-1])
	return c
}

// tokensWith lists the tokens holding byte b: the only ones that can
// complete a trigger ending in b.
func tokensWith(v *grammar.Vocab, b byte) []int32 {
	var ids []int32
	for i := range v.Size() {
		if bytes.IndexByte(v.Token(int32(i)), b) >= 0 {
			ids = append(ids, int32(i))
		}
	}
	return ids
}

// The phases of a grammarConstraint, in order.
const (
	phaseFree = iota - 1 // before the trigger (triggered constraints only)
	phasePrefix
	phaseValue
	phaseSuffix
	phaseDone
)

// grammarConstraint adapts a grammar.State (plus literal text around it)
// to the scheduler's Constraint interface.
type grammarConstraint struct {
	vocab          *grammar.Vocab
	state          *grammar.State
	prefix, suffix []byte
	phase          int
	pos            int // bytes of the current literal already written

	// Triggered constraints only: the free text's end that could still
	// grow into trigger, and the tokens that could complete it.
	grammar     *grammar.Grammar
	trigger     []byte
	tail        []byte
	triggerEnds []int32
	repeat      bool
	scratch     []byte
}

// Mask implements Constraint.
func (c *grammarConstraint) Mask(allowed []bool) {
	switch c.phase {
	case phaseFree:
		for i := range allowed {
			allowed[i] = true
		}
		for _, id := range c.triggerEnds {
			if end := c.triggerEnd(c.vocab.Token(id)); end >= 0 && end != len(c.tail)+len(c.vocab.Token(id)) {
				allowed[id] = false
			}
		}
	case phasePrefix:
		c.maskLiteral(c.prefix[c.pos:], allowed)
	case phaseValue:
		c.state.Mask(c.vocab, allowed)
		if len(c.suffix) > 0 {
			// The value is followed by the suffix, never by end of sequence.
			for i := range allowed {
				if allowed[i] && c.vocab.IsEOS(int32(i)) {
					allowed[i] = false
				}
			}
		}
	case phaseSuffix:
		c.maskLiteral(c.suffix[c.pos:], allowed)
	default:
		clear(allowed)
		for i := range allowed {
			allowed[i] = c.vocab.IsEOS(int32(i))
		}
	}
}

// maskLiteral allows the tokens that spell a non-empty prefix of rest.
// Tokens that would run past the literal into the value are not allowed:
// the literal is finished first.
func (c *grammarConstraint) maskLiteral(rest []byte, allowed []bool) {
	for i := range allowed {
		t := c.vocab.Token(int32(i))
		allowed[i] = len(t) > 0 && !c.vocab.IsEOS(int32(i)) && bytes.HasPrefix(rest, t)
	}
}

// Advance implements Constraint.
func (c *grammarConstraint) Advance(token int32) error {
	if token < 0 || int(token) >= c.vocab.Size() {
		return fmt.Errorf("token %d outside the vocabulary", token)
	}
	t := c.vocab.Token(token)
	switch c.phase {
	case phaseFree:
		end := c.triggerEnd(t)
		if end < 0 {
			buf := append(c.tail, t...)
			c.tail = append(c.tail[:0], buf[max(0, len(buf)-len(c.trigger)+1):]...)
			return nil
		}
		if end != len(c.tail)+len(t) {
			return fmt.Errorf("token %q runs past %q", t, c.trigger)
		}
		c.tail = c.tail[:0]
		c.state = c.grammar.Start()
		c.phase = phasePrefix
		if len(c.prefix) == 0 {
			c.phase = phaseValue
		}
	case phasePrefix, phaseSuffix:
		lit := c.prefix
		if c.phase == phaseSuffix {
			lit = c.suffix
		}
		if len(t) == 0 || !bytes.HasPrefix(lit[c.pos:], t) {
			return fmt.Errorf("token %q does not continue the required text %q", t, lit[c.pos:])
		}
		c.pos += len(t)
		if c.pos == len(lit) {
			c.pos = 0
			c.phase++
			if c.phase == phaseDone && c.repeat {
				c.phase = phaseFree
			}
		}
	case phaseValue:
		if err := c.state.Advance(t); err != nil {
			return err
		}
		if c.state.Finished() {
			c.phase = phaseSuffix
			if len(c.suffix) == 0 {
				c.phase = phaseDone
				if c.repeat {
					c.phase = phaseFree
				}
			}
		}
	default:
		return fmt.Errorf("token %q after the constrained output ended", t)
	}
	return nil
}

// Finished implements Constraint.
func (c *grammarConstraint) Finished() bool { return c.phase == phaseDone }

// triggerEnd returns where the trigger ends in the free text's tail followed
// by t (an offset into tail+t), or -1 when t does not complete it.
func (c *grammarConstraint) triggerEnd(t []byte) int {
	if len(t) == 0 {
		return -1
	}
	c.scratch = append(append(c.scratch[:0], c.tail...), t...)
	if i := bytes.Index(c.scratch, c.trigger); i >= 0 {
		return i + len(c.trigger)
	}
	return -1
}
