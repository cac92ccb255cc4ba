package inference

import (
	"sync"
	"sync/atomic"

	"github.com/impetusllm/impetus/inference/model"
)

// pageTokens is the accounting unit of KV memory: a sequence holds whole
// pages of this many tokens. Storage itself stays one contiguous block per
// sequence and layer (the attention kernel reads it so); pages are how the
// budget is counted, so a sequence takes memory as it grows instead of a
// fixed share of the context.
const pageTokens = 16

// kvPool is the engine's KV memory budget, shared by every sequence of every
// loaded model. It counts bytes because models differ in the size of a page;
// each scheduler takes and returns whole pages of its own model.
type kvPool struct {
	mu    sync.Mutex
	total int64
	used  int64
	// wanted is memory a scheduler could not get after emptying its own
	// prefix cache: the other models' schedulers evict theirs for it.
	wanted atomic.Int64
}

func newKVPool(total int64) *kvPool { return &kvPool{total: total} }

// take reserves n bytes if they are free.
func (p *kvPool) take(n int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used+n > p.total {
		return false
	}
	p.used += n
	return true
}

// give returns n bytes taken earlier.
func (p *kvPool) give(n int64) {
	p.mu.Lock()
	p.used = max(p.used-n, 0)
	p.mu.Unlock()
}

// resize sets the budget. Memory in use beyond a smaller budget stays with
// its holders; take refuses until enough of it comes back.
func (p *kvPool) resize(total int64) {
	p.mu.Lock()
	p.total = total
	p.mu.Unlock()
}

// usage reports the bytes in use and the budget.
func (p *kvPool) usage() (used, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used, p.total
}

// pagesFor is the number of pages that hold n tokens.
func pagesFor(n int) int { return (n + pageTokens - 1) / pageTokens }

// A scheduler's share of the budget: pages taken as caches grow,
// prefix-cache entries evicted when short, and other models asked to shed
// theirs.

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
