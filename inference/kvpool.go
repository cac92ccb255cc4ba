package inference

import (
	"sync"
	"sync/atomic"
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
