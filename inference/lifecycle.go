package inference

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Model lifecycle: graceful and forced unloads, a cap on loaded models with
// least-recently-used eviction, and unloading of models left idle.
//
// A model being unloaded gracefully stops admitting requests: Generate on it
// and Load of its id fail with ErrUnloading (which wraps ErrUnloaded, so the
// API answers 503 "retry"). Once it is freed, the next Load loads it again.

// DefaultUnloadTimeout bounds a graceful unload's wait when
// Options.UnloadTimeout is zero.
const DefaultUnloadTimeout = 30 * time.Second

// Active is the number of the model's sequences that are running or waiting
// to run. A sequence stops counting before its final event goes out, so a
// client that has its answer finds the model idle; an accepted one is never
// missed.
func (m *LoadedModel) Active() int {
	s := m.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting.len() + int(s.nLive.Load())
}

// Unloading reports whether the model has stopped admitting requests: it is
// draining before an unload, or gone.
func (m *LoadedModel) Unloading() bool {
	s := m.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed != nil
}

// stopAdmitting makes Generate refuse new requests with ErrUnloading. With
// idleOnly it does so only if no sequence is running or waiting, checked
// under the same lock that admits requests, so an idle model cannot turn
// busy behind the caller's back. It reports false when it did nothing: the
// model is busy (idleOnly) or already stopping.
func (m *LoadedModel) stopAdmitting(idleOnly bool) bool {
	s := m.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed != nil {
		return false
	}
	if idleOnly && s.waiting.len()+int(s.nLive.Load()) > 0 {
		return false
	}
	s.closed = fmt.Errorf("%w: %s", ErrUnloading, m.Info.ID)
	return true
}

// resumeAdmitting undoes stopAdmitting after a graceful unload gave up.
func (m *LoadedModel) resumeAdmitting() {
	s := m.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.quit:
	default:
		if errors.Is(s.closed, ErrUnloading) {
			s.closed = nil
		}
	}
}

// free removes m from the loaded set (if it is still there) and frees it.
func (e *Engine) free(m *LoadedModel) {
	e.mu.Lock()
	if e.loaded[m.Info.ID] == m {
		delete(e.loaded, m.Info.ID)
	}
	e.mu.Unlock()
	m.close()
}

// UnloadModel frees a loaded model. With force, its running and queued
// sequences end at once with ErrUnloaded. Without force it stops admitting
// requests (they get ErrUnloading), waits for the running and queued ones to
// finish, then frees the model; the wait is bounded by ctx and by
// Options.UnloadTimeout. If the wait runs out, the model goes back to
// serving and the error wraps ErrModelBusy and the context's error.
func (e *Engine) UnloadModel(ctx context.Context, id string, force bool) error {
	m := e.LoadedModelByID(id)
	if m == nil {
		if e.embedderByID(id) != nil {
			return e.unloadEmbedding(ctx, id, force)
		}
		return fmt.Errorf("%w: %q is not loaded", ErrModelNotFound, id)
	}
	if force {
		e.free(m)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.o().UnloadTimeout)
	defer cancel()
	stopped := m.stopAdmitting(false)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if m.Active() == 0 {
			e.free(m)
			return nil
		}
		select {
		case <-m.gone: // freed by someone else meanwhile
			return nil
		case <-ctx.Done():
			n := m.Active()
			if stopped {
				m.resumeAdmitting()
			}
			return fmt.Errorf("%w: %s still has %d running or queued requests; unload with force to end them: %w", ErrModelBusy, id, n, ctx.Err())
		case <-tick.C:
		}
	}
}

// makeRoom evicts the least recently used idle models (chat or embedding)
// until loading one more keeps within Options.MaxLoadedModels, counting the
// loads in flight that have already made their room. Callers hold e.loadMu.
func (e *Engine) makeRoom() error {
	limit := e.o().MaxLoadedModels
	if limit <= 0 {
		return nil
	}
	models := e.evictionOrder()
	n := len(models) + e.embedPending
	for _, c := range e.loading {
		if c.counted {
			n++
		}
	}
	for _, m := range models {
		if n < limit {
			return nil
		}
		if m.evict() {
			n--
		}
	}
	if n < limit {
		return nil
	}
	return fmt.Errorf("%w: %d of at most %d models are loaded or loading and all are serving requests", ErrTooManyModels, n, limit)
}

// byLastUsed lists the loaded models, least recently used first.
func (e *Engine) byLastUsed() []*LoadedModel {
	e.mu.Lock()
	models := make([]*LoadedModel, 0, len(e.loaded))
	for _, m := range e.loaded {
		models = append(models, m)
	}
	e.mu.Unlock()
	sort.Slice(models, func(i, j int) bool {
		ti, tj := models[i].LastUsed(), models[j].LastUsed()
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return models[i].Info.ID < models[j].Info.ID
	})
	return models
}

// janitor unloads models idle for longer than Options.IdleUnload until the
// engine closes. It rereads the option when Reconfigure pokes it.
func (e *Engine) janitor() {
	defer close(e.janitorDone)
	for {
		ttl := e.o().IdleUnload
		var tick <-chan time.Time
		var t *time.Ticker
		if ttl > 0 {
			t = time.NewTicker(min(max(ttl/4, 10*time.Millisecond), 30*time.Second))
			tick = t.C
		}
		select {
		case <-e.stop:
			if t != nil {
				t.Stop()
			}
			return
		case <-e.retune:
		case now := <-tick:
			e.unloadIdle(now, ttl)
		}
		if t != nil {
			t.Stop()
		}
	}
}

// unloadIdle frees the models that have had no running or queued request
// for ttl. A model seen busy counts as used now, so a long generation does
// not make its model look idle the moment it ends.
func (e *Engine) unloadIdle(now time.Time, ttl time.Duration) []string {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	var freed []string
	for _, m := range e.byLastUsed() {
		if m.Active() > 0 {
			m.touch()
			continue
		}
		if now.Sub(m.LastUsed()) < ttl || !m.stopAdmitting(true) {
			continue
		}
		e.free(m)
		freed = append(freed, m.Info.ID)
	}
	return append(freed, e.unloadIdleEmbeddings(now, ttl)...)
}
