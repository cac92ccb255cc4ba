package inference

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/sample"
	"github.com/impetusllm/impetus/inference/tokenizer"
)

// GenerateRequest asks for a continuation of a tokenised prompt.
type GenerateRequest struct {
	Prompt    []int32
	MaxTokens int
	Sampling  sample.Params
	// Stop strings end generation; they are never part of the output.
	Stop []string
	// Constraint, when set, restricts the tokens the sequence may produce
	// (JSON schemas, tool-call formats). It is used by one sequence only.
	Constraint Constraint
}

// Constraint restricts generation to the outputs of a grammar.
type Constraint interface {
	// Mask sets allowed[id] for every token id that keeps the output valid;
	// end-of-sequence ids must be allowed only when the output is complete.
	Mask(allowed []bool)
	// Advance records the chosen (non-EOS) token.
	Advance(token int32) error
	// Finished reports that the output is complete and nothing may follow,
	// so generation ends without waiting for an end-of-sequence token.
	Finished() bool
}

// Event is one step of a generation stream. Every event but the last carries
// one generated token; the last has Finish set ("stop" or "length"), or Err.
type Event struct {
	Token int32
	// Text is the output released by this event: complete UTF-8, never part of
	// a stop string. It may be empty while bytes are held back.
	Text string
	// Logprob and Top are set when the request asked for logprobs.
	Logprob float32
	Top     []sample.TokenLogprob
	// Finish is "stop" or "length" on the last event.
	Finish string
	Err    error
}

// ErrContextOverflow is returned when a prompt plus its max_tokens cannot fit
// the model's context.
var ErrContextOverflow = errors.New("context length exceeded")

// ErrUnloaded ends streams of a model that is being unloaded.
var ErrUnloaded = errors.New("model unloaded")

// maxStepTokens bounds the prompt tokens fed in one step, so that a long
// prefill is chunked and running sequences keep decoding between chunks.
const maxStepTokens = 512

// scheduler runs every active sequence of one model: each step is one
// forward pass over all of them (prefill chunks and decode tokens together),
// so the weights stream once per step for the whole batch.
type scheduler struct {
	lm     *LoadedModel
	eng    *Engine
	submit chan *sequence
	quit   chan struct{}
	done   chan struct{}
}

type sequence struct {
	ctx     context.Context
	req     GenerateRequest
	fed     int // prompt tokens already in the cache
	cache   *model.KVCache
	sampler *sample.Sampler
	gen     []int32
	next    int32
	dec     *tokenizer.StreamDecoder
	stop    *sample.StopMatcher
	logits  []float32
	allowed []bool // constraint mask scratch, nil without a constraint
	out     chan Event
}

func newScheduler(lm *LoadedModel, e *Engine) *scheduler {
	s := &scheduler{lm: lm, eng: e, submit: make(chan *sequence), quit: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *scheduler) close() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

// Generate starts a generation and returns its event stream, which ends with
// a Finish or Err event and is then closed. Cancelling ctx stops the sequence
// at the next step and frees its cache.
func (m *LoadedModel) Generate(ctx context.Context, req GenerateRequest) (<-chan Event, error) {
	if len(req.Prompt) == 0 {
		return nil, fmt.Errorf("empty prompt")
	}
	ctxLen := m.Meta.ContextLength
	if req.MaxTokens <= 0 {
		return nil, fmt.Errorf("max_tokens must be positive")
	}
	if len(req.Prompt)+req.MaxTokens > ctxLen {
		return nil, fmt.Errorf("%w: %d prompt tokens + %d max_tokens > %d tokens of context", ErrContextOverflow, len(req.Prompt), req.MaxTokens, ctxLen)
	}
	for _, id := range req.Prompt {
		if id < 0 || int(id) >= m.Meta.Vocab {
			return nil, fmt.Errorf("token id %d outside the vocabulary (0..%d)", id, m.Meta.Vocab-1)
		}
	}
	smp, err := sample.New(req.Sampling, m.Meta.Vocab)
	if err != nil {
		return nil, err
	}
	smp.SetPrompt(req.Prompt)
	buf := req.MaxTokens + 2
	if buf > 4096 {
		buf = 4096
	}
	seq := &sequence{
		ctx:     ctx,
		req:     req,
		cache:   m.model.NewKVCache(len(req.Prompt) + req.MaxTokens),
		sampler: smp,
		dec:     tokenizer.NewDecoder(m.Tokenizer, true),
		stop:    sample.NewStopMatcher(req.Stop),
		logits:  make([]float32, m.Meta.Vocab),
		out:     make(chan Event, buf),
	}
	if req.Constraint != nil {
		seq.allowed = make([]bool, m.Meta.Vocab)
	}
	m.touch()
	select {
	case m.sched.submit <- seq:
		return seq.out, nil
	case <-m.sched.quit:
		return nil, ErrUnloaded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *scheduler) loop() {
	defer close(s.done)
	var active []*sequence
	eos := map[int32]bool{}
	for _, id := range s.lm.EOS() {
		eos[id] = true
	}
	var batch []model.SeqBatch
	var logits [][]float32
	for {
		if len(active) == 0 {
			select {
			case seq := <-s.submit:
				active = append(active, seq)
			case <-s.quit:
				return
			}
		}
		// Admit whatever else arrived, without waiting.
	admit:
		for {
			select {
			case seq := <-s.submit:
				active = append(active, seq)
			case <-s.quit:
				for _, seq := range active {
					seq.finish(Event{Err: ErrUnloaded})
				}
				return
			default:
				break admit
			}
		}
		// Drop cancelled sequences: their caches go with them.
		live := active[:0]
		for _, seq := range active {
			if seq.ctx.Err() != nil {
				close(seq.out)
				continue
			}
			live = append(live, seq)
		}
		active = live
		if len(active) == 0 {
			continue
		}
		batch, logits = batch[:0], logits[:0]
		budget := maxStepTokens
		var stepSeqs []*sequence
		for _, seq := range active {
			if seq.fed < len(seq.req.Prompt) {
				if budget == 0 {
					continue
				}
				n := min(len(seq.req.Prompt)-seq.fed, budget)
				budget -= n
				chunk := seq.req.Prompt[seq.fed : seq.fed+n]
				seq.fed += n
				batch = append(batch, model.SeqBatch{Tokens: chunk, Cache: seq.cache, WantLogits: seq.fed == len(seq.req.Prompt)})
			} else {
				batch = append(batch, model.SeqBatch{Tokens: []int32{seq.next}, Cache: seq.cache, WantLogits: true})
			}
			logits = append(logits, seq.logits)
			stepSeqs = append(stepSeqs, seq)
		}
		s.eng.beat()
		if err := s.lm.model.Forward(batch, logits); err != nil {
			for _, seq := range stepSeqs {
				seq.finish(Event{Err: fmt.Errorf("forward pass: %w", err)})
			}
			active = remove(active, stepSeqs)
			continue
		}
		var finished []*sequence
		for i, seq := range stepSeqs {
			if !batch[i].WantLogits {
				continue
			}
			if seq.step(eos) {
				finished = append(finished, seq)
			}
		}
		active = remove(active, finished)
	}
}

// step samples the next token and emits it; it reports whether the sequence is done.
func (seq *sequence) step(eos map[int32]bool) bool {
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
		return true
	}
	if eos[tok] {
		seq.finish(Event{Token: -1, Text: seq.flush(), Finish: "stop"})
		return true
	}
	seq.gen = append(seq.gen, tok)
	if c := seq.req.Constraint; c != nil {
		if err := c.Advance(tok); err != nil {
			seq.finish(Event{Err: fmt.Errorf("constraint: %w", err)})
			return true
		}
	}
	text, stopped := seq.stop.Push(seq.dec.Add(tok))
	ev := Event{Token: tok, Text: text}
	if seq.req.Sampling.Logprobs {
		ev.Logprob = info.Logprob
		if len(info.Top) > 0 {
			ev.Top = append([]sample.TokenLogprob(nil), info.Top...)
		}
	}
	seq.out <- ev
	switch {
	case stopped:
		seq.finish(Event{Token: -1, Finish: "stop"})
		return true
	case seq.req.Constraint != nil && seq.req.Constraint.Finished():
		seq.finish(Event{Token: -1, Text: seq.flush(), Finish: "stop"})
		return true
	case len(seq.gen) >= seq.req.MaxTokens:
		seq.finish(Event{Token: -1, Text: seq.flush(), Finish: "length"})
		return true
	}
	seq.next = tok
	return false
}

// flush releases text still held back by the decoder and the stop matcher.
func (seq *sequence) flush() string {
	text, stopped := seq.stop.Push(seq.dec.Flush())
	if stopped {
		return text
	}
	return text + seq.stop.Flush()
}

func (seq *sequence) finish(ev Event) {
	if ev.Token == 0 && ev.Err != nil {
		ev.Token = -1
	}
	seq.out <- ev
	close(seq.out)
	seq.cache = nil
}

func remove(active, gone []*sequence) []*sequence {
	if len(gone) == 0 {
		return active
	}
	drop := make(map[*sequence]bool, len(gone))
	for _, g := range gone {
		drop[g] = true
	}
	out := active[:0]
	for _, s := range active {
		if !drop[s] {
			out = append(out, s)
		}
	}
	return out
}

// beat records that a scheduler made progress.
func (e *Engine) beat() { e.heartbeat.Store(time.Now().UnixNano()) }
