package inference

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/sample"
	"github.com/impetusllm/impetus/inference/tokenizer"
)

// sequence is one request from Generate to its last event: its prompt and
// output so far, its KV cache while it runs, and its stream.
type sequence struct {
	ctx      context.Context
	req      GenerateRequest
	feed     []int32 // tokens to prefill: the prompt, or prompt+output after preemption
	fed      int     // feed tokens already in the cache
	toks     []int32 // the tokens whose KV the cache holds, in order
	cache    *model.KVCache
	maxLen   int // prompt + max_tokens
	sampler  *sample.Sampler
	gen      []int32
	next     int32
	dec      *tokenizer.StreamDecoder
	tok      *tokenizer.Tokenizer
	stop     *sample.StopMatcher
	logits   []float32
	allowed  []bool // constraint mask scratch, nil without a constraint
	out      chan Event
	admitted bool          // holds a slot (and a key count)
	live     *atomic.Int64 // the scheduler's nLive while counted in it
	cached   int           // prompt tokens taken from the prefix cache
	sent     bool          // the first event went out
	stopWake func() bool
	// This step's tokens, chosen by plan; nextBuf holds a decode token.
	stepTokens []int32
	nextBuf    [1]int32
}

// step samples the next token and emits it. done reports that the sequence
// ended; ok that it ended normally (stop or length), so its KV may be cached.
func (seq *sequence) step(eos map[int32]bool, s *scheduler) (done, ok bool) {
	var tok int32
	var info sample.TokenInfo
	if c := seq.req.Constraint; c != nil {
		c.Mask(seq.allowed)
		tok, info = seq.sampler.SampleAllowed(seq.logits, seq.gen, seq.allowed)
	} else {
		tok, info = seq.sampler.Sample(seq.logits, seq.gen)
	}
	if tok < 0 {
		seq.finish(Event{Err: errors.New("every token was excluded (logit_bias, grammar or non-finite logits)")})
		return true, false
	}
	if eos[tok] {
		seq.ended()
		seq.emit(Event{Text: seq.flush(), Finish: "stop"})
		close(seq.out)
		return true, true
	}
	seq.gen = append(seq.gen, tok)
	if c := seq.req.Constraint; c != nil {
		if err := c.Advance(tok); err != nil {
			seq.finish(Event{Err: fmt.Errorf("constraint: %w", err)})
			return true, false
		}
	}
	piece := seq.dec.Add(tok)
	if slices.Contains(seq.req.KeepTokens, tok) {
		piece += seq.dec.Flush() + seq.tok.TokenText(tok)
	}
	text, stopped := seq.stop.Push(piece)
	ev := Event{Token: tok, HasToken: true, Text: text}
	if seq.req.Sampling.Logprobs {
		ev.Logprob = info.Logprob
		if len(info.Top) > 0 {
			ev.Top = append([]sample.TokenLogprob(nil), info.Top...)
		}
	}
	seq.emit(ev)
	var last Event
	switch {
	case stopped:
		last = Event{Finish: "stop"}
	case seq.req.Constraint != nil && seq.req.Constraint.Finished():
		last = Event{Text: seq.flush(), Finish: "stop"}
	case len(seq.gen) >= seq.req.MaxTokens:
		last = Event{Text: seq.flush(), Finish: "length"}
	default:
		seq.next = tok
		return false, false
	}
	seq.ended()
	seq.send(last)
	close(seq.out)
	return true, true
}

// ended takes the sequence out of the scheduler's live count, once, before
// its final event is sent.
func (seq *sequence) ended() {
	if seq.live != nil {
		seq.live.Add(-1)
		seq.live = nil
	}
}

// emit sends a token event (or a final event that comes first), stamping the
// first with CachedTokens. Latencies are measured by the server
// (caddymodule/metrics.Timer), where the client sees them.
func (seq *sequence) emit(ev Event) {
	if !seq.sent {
		ev.CachedTokens = seq.cached
		seq.sent = true
	}
	seq.send(ev)
}

// send delivers ev unless the consumer has gone away.
func (seq *sequence) send(ev Event) {
	select {
	case seq.out <- ev:
	case <-seq.ctx.Done():
	}
}

// flush releases text still held back by the decoder and the stop matcher.
func (seq *sequence) flush() string {
	text, stopped := seq.stop.Push(seq.dec.Flush())
	if stopped {
		return text
	}
	return text + seq.stop.Flush()
}

// finish ends the stream with an error event.
func (seq *sequence) finish(ev Event) {
	seq.ended()
	if !seq.sent {
		ev.CachedTokens = seq.cached
		seq.sent = true
	}
	seq.send(ev)
	close(seq.out)
}

func removeSeq(seqs []*sequence, gone *sequence) []*sequence {
	for i, s := range seqs {
		if s == gone {
			return append(seqs[:i], seqs[i+1:]...)
		}
	}
	return seqs
}
