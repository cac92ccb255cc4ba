package inference

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
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
// one generated token; the last has Finish set ("stop" or "length"), or Err.
type Event struct {
	Token int32
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

// ErrContextOverflow is returned when a prompt plus its max_tokens cannot fit
// the model's context.
var ErrContextOverflow = errors.New("context length exceeded")

// ErrUnloaded ends streams of a model that is being unloaded.
var ErrUnloaded = errors.New("model unloaded")

// scheduler runs every active sequence of one model: each step is one
// forward pass over all of them (prefill chunks and decode tokens together),
// so the weights stream once per step for the whole batch. Requests wait in a
// bounded FIFO queue until a slot and KV memory are free; finished sequences
// leave their KV in a prefix cache for later prompts that share a prefix.
type scheduler struct {
	lm        *LoadedModel
	eng       *Engine
	pageBytes int64 // KV bytes of one page of this model
	quit      chan struct{}
	done      chan struct{}
	wake      chan struct{} // poked by Generate and by cancellations

	mu      sync.Mutex // guards waiting and closed
	waiting waitQueue
	closed  error // why the scheduler stopped taking requests

	// Owned by the loop goroutine.
	running []*sequence
	prefix  *prefixCache
	asked   int64 // bytes this scheduler asked other models to free
	planBuf []planned

	// Figures for SchedulerStats, written by the loop.
	nRunning     atomic.Int64
	pagesUsed    atomic.Int64 // held by running sequences
	pagesCached  atomic.Int64 // held by the prefix cache
	hits, misses atomic.Uint64
	cachedTokens atomic.Uint64
	preemptions  atomic.Uint64
	entries      atomic.Int64 // prefix cache entries
	// stepStart is when the running step began (unix nanos), 0 between
	// steps: a step that never ends is what liveness reports.
	stepStart atomic.Int64
}

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
	admitted bool // holds a slot (and a key count)
	cached   int  // prompt tokens taken from the prefix cache
	sent     bool // the first event went out
	submit   time.Time
	last     time.Time // when the last token event went out
	stopWake func() bool
	// This step's tokens, chosen by plan; nextBuf holds a decode token.
	stepTokens []int32
	nextBuf    [1]int32
}

func newScheduler(lm *LoadedModel, e *Engine) *scheduler {
	s := &scheduler{
		lm: lm, eng: e,
		pageBytes: int64(pageTokens) * lm.model.KVTokenBytes(),
		quit:      make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1),
		prefix: newPrefixCache(),
	}
	go s.loop()
	return s
}

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *scheduler) close() {
	s.mu.Lock()
	select {
	case <-s.quit: // closed already
	default:
		// This replaces ErrUnloading too: a drain cut short ends its
		// sequences as unloaded.
		s.closed = ErrUnloaded
		select {
		case <-s.eng.stop:
			s.closed = errShutdown
		default:
		}
		close(s.quit)
	}
	s.mu.Unlock()
	<-s.done
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
		submit:  time.Now(),
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

func (s *scheduler) loop() {
	defer close(s.done)
	eos := map[int32]bool{}
	for _, id := range s.lm.EOS() {
		eos[id] = true
	}
	var batch []model.SeqBatch
	var logits [][]float32
	for {
		s.stepStart.Store(0)
		select {
		case <-s.quit:
			s.shutdown()
			return
		default:
		}
		s.dropCancelled()
		s.shed()
		s.admit()
		if len(s.running) == 0 {
			s.mu.Lock()
			blocked := s.waiting.len() > 0
			s.mu.Unlock()
			var retry <-chan time.Time
			if blocked {
				// Nothing runs yet the head cannot be placed: another
				// model holds the memory, and frees it without a poke.
				retry = time.After(10 * time.Millisecond)
			}
			select {
			case <-s.wake:
			case <-s.quit:
			case <-retry:
			}
			continue
		}
		s.stepStart.Store(time.Now().UnixNano())
		stepSeqs := s.plan()
		if len(stepSeqs) == 0 {
			// Everything was preempted for memory another model holds:
			// wait for a change instead of spinning.
			select {
			case <-s.wake:
			case <-s.quit:
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		batch, logits = batch[:0], logits[:0]
		for _, p := range stepSeqs {
			batch = append(batch, model.SeqBatch{Tokens: p.tokens, Cache: p.seq.cache, WantLogits: p.wantLogits})
			logits = append(logits, p.seq.logits)
		}
		if h := stepHook.Load(); h != nil {
			(*h)()
		}
		if err := s.lm.model.Forward(batch, logits); err != nil {
			for _, p := range stepSeqs {
				p.seq.finish(Event{Err: fmt.Errorf("forward pass: %w", err)})
				s.retire(p.seq, false)
			}
			continue
		}
		for _, p := range stepSeqs {
			seq := p.seq
			seq.toks = append(seq.toks, p.tokens...)
			if seq.fed < len(seq.feed) {
				seq.fed += len(p.tokens)
			}
			if !p.wantLogits {
				continue
			}
			if done, ok := seq.step(eos, s); done {
				s.retire(seq, ok)
			}
		}
		s.publish()
	}
}

// planned is one sequence's share of a step.
type planned struct {
	seq        *sequence
	tokens     []int32
	wantLogits bool
}

// plan picks this step's tokens: one decode token for every running sequence
// past its prompt, then prompt chunks, oldest first, up to MaxBatchTokens.
// It makes room in each cache, preempting the youngest sequences when the KV
// budget runs out.
func (s *scheduler) plan() []planned {
	budget := s.eng.o().MaxBatchTokens
	for _, seq := range s.running {
		seq.stepTokens = nil
		if seq.fed == len(seq.feed) && budget > 0 {
			seq.nextBuf[0] = seq.next
			seq.stepTokens = seq.nextBuf[:]
			budget--
		}
	}
	for _, seq := range s.running {
		if seq.fed < len(seq.feed) && budget > 0 {
			n := min(len(seq.feed)-seq.fed, budget)
			budget -= n
			seq.stepTokens = seq.feed[seq.fed : seq.fed+n]
		}
	}
	out := s.planBuf[:0]
	for i := 0; i < len(s.running); i++ {
		seq := s.running[i]
		toks := seq.stepTokens
		if toks == nil {
			continue
		}
		for !s.growTo(seq.cache, seq.cache.Len()+len(toks), nil) {
			victim := s.running[len(s.running)-1]
			s.preempt(victim)
			if victim == seq {
				break
			}
		}
		if i >= len(s.running) || s.running[i] != seq {
			break // seq itself was preempted; everything younger already was
		}
		decoding := seq.fed == len(seq.feed)
		out = append(out, planned{seq: seq, tokens: toks, wantLogits: decoding || seq.fed+len(toks) == len(seq.feed)})
	}
	s.planBuf = out
	return out
}

// growTo makes cache hold at least n tokens, taking pages from the KV budget
// and evicting prefix-cache entries (but not keep) when it is short. It grows
// by half again so decoding copies rarely, falling back to the exact need.
func (s *scheduler) growTo(c *model.KVCache, n int, keep *prefixEntry) bool {
	have := c.Capacity()
	if n <= have {
		return true
	}
	for _, target := range []int{max(n, have+have/2), n} {
		target = min(pagesFor(target)*pageTokens, c.MaxLen())
		if target < n {
			target = n
		}
		delta := pagesFor(target) - pagesFor(have)
		if s.reserve(delta, keep) {
			c.Grow(target)
			s.pagesUsed.Add(int64(delta))
			return true
		}
	}
	return false
}

// reserve takes pages from the engine's budget, evicting least recently used
// prefix-cache entries other than keep until they fit.
func (s *scheduler) reserve(pages int, keep *prefixEntry) bool {
	n := int64(pages) * s.pageBytes
	for !s.eng.kv.take(n) {
		e := s.prefix.oldest(keep)
		if e == nil {
			// Other models' prefix caches may hold the memory: ask them.
			if s.eng.kv.wanted.Load() < n {
				s.eng.kv.wanted.Store(n)
				s.asked = n
			}
			s.eng.pokeOthers(s)
			return false
		}
		s.prefix.remove(e)
		s.dropCached(e)
	}
	if s.asked > 0 {
		s.eng.kv.wanted.CompareAndSwap(s.asked, 0)
		s.asked = 0
	}
	return true
}

// shed evicts this model's prefix-cache entries for memory another model's
// scheduler is waiting for.
func (s *scheduler) shed() {
	want := s.eng.kv.wanted.Load()
	if want <= 0 {
		return
	}
	var freed int64
	for freed < want {
		e := s.prefix.oldest(nil)
		if e == nil {
			break
		}
		s.prefix.remove(e)
		s.dropCached(e)
		freed += int64(pagesFor(e.cache.Capacity())) * s.pageBytes
	}
	if freed > 0 {
		s.eng.kv.wanted.CompareAndSwap(want, max(want-freed, 0))
		s.eng.pokeOthers(s)
	}
}

// pokeOthers wakes the schedulers of the other loaded models.
func (e *Engine) pokeOthers(s *scheduler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.loaded {
		if m.sched != s {
			m.sched.poke()
		}
	}
}

// dropCached frees the memory of an entry that left the prefix cache.
func (s *scheduler) dropCached(e *prefixEntry) {
	p := pagesFor(e.cache.Capacity())
	s.eng.kv.give(int64(p) * s.pageBytes)
	s.pagesCached.Add(-int64(p))
}

// release returns a sequence's KV memory to the budget.
func (s *scheduler) release(seq *sequence) {
	if seq.cache == nil {
		return
	}
	p := pagesFor(seq.cache.Capacity())
	s.eng.kv.give(int64(p) * s.pageBytes)
	s.pagesUsed.Add(-int64(p))
	seq.cache = nil
}

// admit moves waiting sequences into the running set, oldest first, while a
// slot and KV memory for the whole prompt are free. A sequence whose key is at
// its limit is passed over (keeping its place); one that needs more memory
// than is free blocks those behind it, so large requests do not starve.
func (s *scheduler) admit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < s.waiting.len() && len(s.running) < s.eng.o().MaxSequences; {
		seq := s.waiting.items[i]
		if !s.eng.keys.acquire(seq.req.Key) {
			i++
			continue
		}
		if !s.place(seq) {
			s.eng.keys.release(seq.req.Key)
			break
		}
		s.waiting.removeAt(i)
		seq.admitted = true
		s.running = append(s.running, seq)
	}
	s.publish()
}

// place gives seq a KV cache holding its whole feed, starting from the
// longest cached prefix. It reports false when the memory is not free.
func (s *scheduler) place(seq *sequence) bool {
	var e *prefixEntry
	shared := 0
	if !s.eng.o().DisablePrefixCache && !seq.req.NoPrefixCache {
		e, shared = s.prefix.lookup(seq.feed)
	}
	reuse := min(shared, len(seq.feed)-1) // the last feed token must run for its logits
	if e != nil && reuse > 0 && shared == len(e.tokens) && len(seq.feed) > len(e.tokens) {
		// The prompt extends the whole entry (the next turn of a
		// conversation): take the entry's cache instead of copying it.
		s.prefix.remove(e)
		p := int64(pagesFor(e.cache.Capacity()))
		s.pagesCached.Add(-p)
		s.pagesUsed.Add(p)
		seq.cache = e.cache
		seq.cache.SetMaxLen(seq.maxLen)
		if !s.growTo(seq.cache, len(seq.feed), nil) {
			// Put it back rather than hold memory while waiting.
			s.pagesUsed.Add(-p)
			s.pagesCached.Add(p)
			dropped, inserted := s.prefix.insert(e.tokens, e.cache)
			for _, d := range dropped {
				s.dropCached(d)
			}
			if !inserted {
				s.dropCached(e)
			}
			seq.cache = nil
			return false
		}
		s.started(seq, e.tokens[:reuse])
		return true
	}
	c := s.lm.model.NewKVCache(seq.maxLen)
	if !s.growTo(c, len(seq.feed), e) {
		if e == nil || !s.growTo(c, len(seq.feed), nil) {
			return false
		}
		reuse = 0 // e was evicted to make room
	}
	seq.cache = c
	if e != nil && reuse > 0 {
		if err := c.CopyPrefix(e.cache, reuse); err != nil {
			reuse = 0
		}
	} else {
		reuse = 0
	}
	s.started(seq, seq.feed[:reuse])
	return true
}

// started records where a placed sequence's prefill begins.
func (s *scheduler) started(seq *sequence, reused []int32) {
	if err := seq.cache.Truncate(len(reused)); err != nil {
		seq.cache.Reset()
		reused = nil
	}
	seq.toks = append(seq.toks[:0], reused...)
	seq.fed = len(reused)
	if !seq.sent { // a resumed sequence already reported its first event
		seq.cached = len(reused)
	}
	if len(reused) > 0 {
		s.hits.Add(1)
		s.cachedTokens.Add(uint64(len(reused)))
	} else {
		s.misses.Add(1)
	}
}

// preempt stops a running sequence to free its memory: it goes back to the
// head of the queue and, when admitted again, prefills its prompt and output
// so far (perhaps from the prefix cache) and carries on where it stopped.
func (s *scheduler) preempt(seq *sequence) {
	s.running = removeSeq(s.running, seq)
	s.release(seq)
	s.eng.keys.release(seq.req.Key)
	seq.admitted = false
	seq.feed = append(append([]int32(nil), seq.req.Prompt...), seq.gen...)
	seq.fed = 0
	seq.toks = nil
	s.preemptions.Add(1)
	s.mu.Lock()
	s.waiting.pushFront(seq)
	s.mu.Unlock()
}

// retire removes a finished sequence. A sequence that ended normally leaves
// its KV in the prefix cache; others free it at once.
func (s *scheduler) retire(seq *sequence, keep bool) {
	s.running = removeSeq(s.running, seq)
	if seq.admitted {
		s.eng.keys.release(seq.req.Key)
		seq.admitted = false
	}
	if seq.stopWake != nil {
		seq.stopWake()
	}
	if keep && !s.eng.o().DisablePrefixCache && !seq.req.NoPrefixCache && seq.cache != nil && seq.cache.Len() == len(seq.toks) {
		p := int64(pagesFor(seq.cache.Capacity()))
		dropped, inserted := s.prefix.insert(seq.toks, seq.cache)
		for _, e := range dropped {
			s.dropCached(e)
		}
		if inserted {
			s.pagesUsed.Add(-p)
			s.pagesCached.Add(p)
			seq.cache = nil
		}
	}
	s.release(seq)
}

// dropCancelled ends sequences whose context is done, freeing their memory
// at once; their streams close without a final event.
func (s *scheduler) dropCancelled() {
	for i := len(s.running) - 1; i >= 0; i-- { // retire removes from running
		if i >= len(s.running) {
			continue
		}
		if seq := s.running[i]; seq.ctx.Err() != nil {
			s.retire(seq, false)
			close(seq.out)
		}
	}
	s.mu.Lock()
	for i := 0; i < s.waiting.len(); {
		seq := s.waiting.items[i]
		if seq.ctx.Err() == nil {
			i++
			continue
		}
		s.waiting.removeAt(i)
		if seq.stopWake != nil {
			seq.stopWake()
		}
		close(seq.out)
	}
	s.mu.Unlock()
	s.publish()
}

// shutdown ends every sequence with the reason the scheduler stopped and
// returns all of the model's KV memory, the prefix cache's included.
func (s *scheduler) shutdown() {
	s.mu.Lock()
	why := s.closed
	waiting := s.waiting.items
	s.waiting.items = nil
	s.mu.Unlock()
	for _, seq := range append(append([]*sequence(nil), s.running...), waiting...) {
		seq.finish(Event{Err: why})
		s.retire(seq, false)
	}
	for e := s.prefix.oldest(nil); e != nil; e = s.prefix.oldest(nil) {
		s.prefix.remove(e)
		s.dropCached(e)
	}
	s.publish()
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
		seq.emit(Event{Token: -1, Text: seq.flush(), Finish: "stop"}, s)
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
	ev := Event{Token: tok, Text: text}
	if seq.req.Sampling.Logprobs {
		ev.Logprob = info.Logprob
		if len(info.Top) > 0 {
			ev.Top = append([]sample.TokenLogprob(nil), info.Top...)
		}
	}
	seq.emit(ev, s)
	var last Event
	switch {
	case stopped:
		last = Event{Token: -1, Finish: "stop"}
	case seq.req.Constraint != nil && seq.req.Constraint.Finished():
		last = Event{Token: -1, Text: seq.flush(), Finish: "stop"}
	case len(seq.gen) >= seq.req.MaxTokens:
		last = Event{Token: -1, Text: seq.flush(), Finish: "length"}
	default:
		seq.next = tok
		return false, false
	}
	seq.send(last)
	close(seq.out)
	return true, true
}

// emit sends a token event (or a final event that comes first), stamping the
// first with CachedTokens and reporting latencies to Options.Observe.
func (seq *sequence) emit(ev Event, s *scheduler) {
	now := time.Now()
	if !seq.sent {
		ev.CachedTokens = seq.cached
		seq.sent = true
		s.observe(ObserveTTFT, now.Sub(seq.submit))
	} else {
		s.observe(ObserveInterToken, now.Sub(seq.last))
	}
	seq.last = now
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
	if ev.Token == 0 && ev.Err != nil {
		ev.Token = -1
	}
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

// publish updates the gauges SchedulerStats reads.
func (s *scheduler) publish() {
	s.nRunning.Store(int64(len(s.running)))
	s.entries.Store(int64(s.prefix.len()))
}

func (s *scheduler) observe(kind ObservationKind, d time.Duration) {
	if f := s.eng.o().Observe; f != nil {
		f(Observation{Model: s.lm.Info.ID, Kind: kind, Duration: d})
	}
}

// SchedulerStats is a snapshot of the engine's scheduling state for
// metrics. Counters (hits, misses, cached tokens, preemptions) only grow
// while a model stays loaded; the others are gauges.
type SchedulerStats struct {
	Queued  int // requests waiting for admission, all models
	Running int // sequences running, all models
	// KV memory: bytes of the budget, held by running sequences, held by the
	// prefix cache (evictable on demand), and free.
	KVBytesTotal, KVBytesUsed, KVBytesCached, KVBytesFree int64
	// The same in pages (PageTokens tokens of each model); KVPagesFree counts
	// pages of the loaded model with the largest pages (so at least that many
	// pages are free for any model), 0 when none is loaded.
	PageTokens                              int
	KVPagesUsed, KVPagesCached, KVPagesFree int
	PrefixHits, PrefixMisses                uint64 // admissions that did / did not start from cached KV
	PrefixCachedTokens                      uint64 // prompt tokens not prefilled thanks to the cache
	Preemptions                             uint64 // sequences paused to free KV memory
	Models                                  []ModelSchedulerStats
}

// ModelSchedulerStats is one loaded model's share of SchedulerStats.
type ModelSchedulerStats struct {
	Model                                   string
	Queued, Running                         int
	PageBytes                               int64
	KVPagesUsed, KVPagesCached, KVPagesFree int
	PrefixEntries                           int // conversations held in the prefix cache (approximate while it changes)
	PrefixHits, PrefixMisses                uint64
	PrefixCachedTokens                      uint64
	Preemptions                             uint64
}

// SchedulerStats returns the current scheduling figures of every loaded model.
func (e *Engine) SchedulerStats() SchedulerStats {
	used, total := e.kv.usage()
	st := SchedulerStats{KVBytesTotal: total, KVBytesFree: total - used, PageTokens: pageTokens}
	e.mu.Lock()
	models := make([]*LoadedModel, 0, len(e.loaded))
	for _, m := range e.loaded {
		models = append(models, m)
	}
	e.mu.Unlock()
	sort.Slice(models, func(i, j int) bool { return models[i].Info.ID < models[j].Info.ID })
	var maxPage int64
	for _, m := range models {
		s := m.sched
		s.mu.Lock()
		queued := s.waiting.len()
		s.mu.Unlock()
		ms := ModelSchedulerStats{
			Model: m.Info.ID, Queued: queued, Running: int(s.nRunning.Load()), PageBytes: s.pageBytes,
			KVPagesUsed: int(s.pagesUsed.Load()), KVPagesCached: int(s.pagesCached.Load()),
			KVPagesFree: int((total - used) / s.pageBytes),
			PrefixHits:  s.hits.Load(), PrefixMisses: s.misses.Load(), PrefixCachedTokens: s.cachedTokens.Load(),
			Preemptions:   s.preemptions.Load(),
			PrefixEntries: int(s.entries.Load()),
		}
		st.Models = append(st.Models, ms)
		st.Queued += ms.Queued
		st.Running += ms.Running
		st.KVPagesUsed += ms.KVPagesUsed
		st.KVPagesCached += ms.KVPagesCached
		st.KVBytesUsed += int64(ms.KVPagesUsed) * s.pageBytes
		st.KVBytesCached += int64(ms.KVPagesCached) * s.pageBytes
		st.PrefixHits += ms.PrefixHits
		st.PrefixMisses += ms.PrefixMisses
		st.PrefixCachedTokens += ms.PrefixCachedTokens
		st.Preemptions += ms.Preemptions
		if s.pageBytes > maxPage {
			maxPage = s.pageBytes
			st.KVPagesFree = ms.KVPagesFree
		}
	}
	return st
}
