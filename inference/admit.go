package inference

// Admission: waiting sequences enter the running set when a slot and KV
// memory are free, and leave it when they finish, are cancelled or are
// preempted.

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
		seq.live = &s.nLive
		s.nLive.Add(1)
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
	seq.ended() // with the push, under mu: Active never misses it
	s.waiting.pushFront(seq)
	s.mu.Unlock()
}

// retire removes a finished sequence. A sequence that ended normally leaves
// its KV in the prefix cache; others free it at once.
func (s *scheduler) retire(seq *sequence, keep bool) {
	seq.ended()
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
