package tokenizer

// StreamDecoder turns ids into text one at a time for streaming. It only
// ever returns complete UTF-8: bytes of a character split across tokens are
// held until the character is whole. Concatenating every Add and the final
// Flush gives Decode's text (up to the exact U+FFFD count for invalid bytes).
// A StreamDecoder is not safe for concurrent use.
type StreamDecoder struct {
	t           *Tokenizer
	skipSpecial bool
	pending     []byte
	buf         []byte // reused for the lossy conversion of released bytes
	leadStrip   int    // leading spaces still to drop at the start of the text
	begun       bool
}

// NewDecoder returns a streaming decoder for t.
func NewDecoder(t *Tokenizer, skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{t: t, skipSpecial: skipSpecial, leadStrip: t.dec.leadStripCount()}
}

// Add consumes one id and returns the text that became complete.
func (d *StreamDecoder) Add(id int32) string {
	if d.skipSpecial && d.t.IsSpecial(id) {
		return ""
	}
	b := d.t.TokenBytes(id)
	if !d.begun {
		for d.leadStrip > 0 && len(b) > 0 && b[0] == ' ' {
			b = b[1:]
			d.leadStrip--
		}
		if len(b) > 0 {
			d.begun = true
		}
	}
	if len(d.pending) == 0 && d.begun && len(b) == len(d.t.TokenBytes(id)) {
		if s, ok := d.t.tokenString(id); ok {
			return s // the common case: a whole token of valid text, no allocation
		}
	}
	d.pending = append(d.pending, b...)
	keep := incompleteTail(d.pending)
	ready := d.pending[:len(d.pending)-keep]
	if len(ready) == 0 {
		return ""
	}
	d.buf = appendLossy(d.buf[:0], ready)
	out := string(d.buf)
	d.pending = append(d.pending[:0], d.pending[len(d.pending)-keep:]...)
	return out
}

// Flush returns whatever is held back (as U+FFFD if it never completed) and
// resets the decoder to the middle-of-text state.
func (d *StreamDecoder) Flush() string {
	if len(d.pending) == 0 {
		return ""
	}
	out := string(appendLossy(nil, d.pending))
	d.pending = d.pending[:0]
	return out
}
