package inference

import (
	"context"
	"fmt"

	"github.com/impetusllm/impetus/inference/sample"
	"github.com/impetusllm/impetus/inference/tokenizer"
)

// The generate API: a request, the constraint it may carry, and the
// events of its stream.

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
	// Key identifies the tenant (API key) for Options.MaxConcurrentPerKey;
	// empty means no per-key limit.
	Key string
	// KeepTokens are special tokens whose text stays in the output (the
	// decoder drops special tokens otherwise): a tool-call marker such as
	// Mistral's [TOOL_CALLS] that the server parses.
	KeepTokens []int32
	// NoPrefixCache keeps this request out of the prefix cache: it neither
	// starts from cached KV nor leaves its KV behind (the seed API's
	// use_cache: false).
	NoPrefixCache bool
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
// one generated token (HasToken); the last has Finish set ("stop" or
// "length"), or Err, and no token.
type Event struct {
	Token    int32
	HasToken bool
	// Text is the output released by this event: complete UTF-8, never part of
	// a stop string. It may be empty while bytes are held back.
	Text string
	// Logprob and Top are set when the request asked for logprobs.
	Logprob float32
	Top     []sample.TokenLogprob
	// CachedTokens, set on the stream's first event only, is how many prompt
	// tokens came from the prefix cache instead of being prefilled (the API's
	// usage.prompt_tokens_details.cached_tokens).
	CachedTokens int
	// Finish is "stop" or "length" on the last event.
	Finish string
	Err    error
}

// MaxSequenceTokens is the most tokens (prompt plus output) one request can
// have: the model's context, or less when the engine's KV budget is smaller.
func (m *LoadedModel) MaxSequenceTokens() int {
	_, total := m.sched.eng.kv.usage()
	budget := int(total/m.sched.pageBytes) * pageTokens
	return min(m.Meta.ContextLength, budget)
}

// Generate starts a generation and returns its event stream, which ends with
// a Finish or Err event and is then closed. Cancelling ctx stops the sequence
// at the next step, frees its KV memory and closes the stream without a
// final event. Errors: ErrContextOverflow and ErrTooLarge for requests that
// can never run, ErrQueueFull when the queue is full, ErrShuttingDown and
// ErrUnloaded when the model is going away.
func (m *LoadedModel) Generate(ctx context.Context, req GenerateRequest) (<-chan Event, error) {
	if len(req.Prompt) == 0 {
		return nil, fmt.Errorf("empty prompt")
	}
	ctxLen := m.Meta.ContextLength
	if req.MaxTokens <= 0 {
		return nil, fmt.Errorf("max_tokens must be positive")
	}
	need := len(req.Prompt) + req.MaxTokens
	if need > ctxLen {
		return nil, fmt.Errorf("%w: %d prompt tokens + %d max_tokens > %d tokens of context", ErrContextOverflow, len(req.Prompt), req.MaxTokens, ctxLen)
	}
	s := m.sched
	if _, total := s.eng.kv.usage(); int64(pagesFor(need))*s.pageBytes > total {
		return nil, fmt.Errorf("%w (%w): %d prompt tokens + %d max_tokens need %d MiB of KV cache, the budget is %d MiB (at most %d tokens)",
			ErrTooLarge, ErrContextOverflow, len(req.Prompt), req.MaxTokens, int64(pagesFor(need))*s.pageBytes>>20, total>>20, m.MaxSequenceTokens())
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
	buf := min(req.MaxTokens+2, 4096)
	seq := &sequence{
		ctx:     ctx,
		req:     req,
		feed:    req.Prompt,
		maxLen:  need,
		sampler: smp,
		dec:     tokenizer.NewDecoder(m.Tokenizer, true),
		tok:     m.Tokenizer,
		stop:    sample.NewStopMatcher(req.Stop),
		logits:  make([]float32, m.Meta.Vocab),
		out:     make(chan Event, buf),
	}
	if req.Constraint != nil {
		seq.allowed = make([]bool, m.Meta.Vocab)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.touch()
	s.mu.Lock()
	switch {
	case s.closed != nil:
		err = s.closed
	case s.waiting.len() >= s.eng.o().MaxQueue:
		err = fmt.Errorf("%w: %d requests are waiting for %s", ErrQueueFull, s.waiting.len(), m.Info.ID)
	default:
		s.waiting.push(seq)
		seq.stopWake = context.AfterFunc(ctx, s.poke)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.poke()
	return seq.out, nil
}
