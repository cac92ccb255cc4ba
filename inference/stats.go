package inference

import "sort"

// publish updates the gauges SchedulerStats reads.
func (s *scheduler) publish() {
	s.nRunning.Store(int64(len(s.running)))
	s.entries.Store(int64(s.prefix.len()))
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
