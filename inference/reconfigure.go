package inference

import "sync/atomic"

// pokeAll wakes every scheduler, so new bounds (queue, batch, per-key
// limits, KV budget) apply at once rather than at the next request.
func (e *Engine) pokeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.loaded {
		m.sched.poke()
	}
}

// stepHook, when set, runs in every scheduler step just before the forward
// pass. It is a test seam: tests stall a step with it to see liveness fail.
var stepHook atomic.Pointer[func()]
