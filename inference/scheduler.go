package inference

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/impetusllm/impetus/inference/model"
)

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
	nRunning atomic.Int64
	// nLive counts admitted sequences whose stream has not ended. It drops
	// before a final event goes out, so a client that has its answer never
	// finds the model still busy (eviction and unload read it).
	nLive        atomic.Int64
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
