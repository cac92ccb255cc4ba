package inference

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Embedding models share the chat models' lifecycle: they count against
// Options.MaxLoadedModels (the least recently used idle model of either
// kind is evicted to make room), Options.IdleUnload frees them, and
// UnloadModel unloads them, gracefully or by force. An embedding model is
// busy while Embed calls hold it; an evicted or unloaded one is taken out of
// the loaded set at once, so the next call loads it again.

// embedLife tracks an embedding model's use.
type embedLife struct {
	mu       sync.Mutex
	active   int       // Embed calls holding the model
	lastUsed time.Time // when the last of them began or ended
	stopped  bool      // taken out of service: no new holders
	idle     chan struct{}
}

// acquire holds the model for one call; false when it is stopped.
func (l *embedLife) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false
	}
	l.active++
	l.lastUsed = time.Now()
	return true
}

func (l *embedLife) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active--
	l.lastUsed = time.Now()
	if l.active == 0 && l.idle != nil {
		close(l.idle)
		l.idle = nil
	}
}

// stop takes the model out of service. With idleOnly it does so only when
// no call holds it. It returns false when it did nothing, and otherwise a
// channel closed once no call holds the model.
func (l *embedLife) stop(idleOnly bool) (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || idleOnly && l.active > 0 {
		return false, nil
	}
	l.stopped = true
	done := make(chan struct{})
	if l.active == 0 {
		close(done)
	} else {
		l.idle = done
	}
	return true, done
}

func (l *embedLife) state() (active int, lastUsed time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active, l.lastUsed
}

// LoadEmbedding loads the embedding model id (a no-op when it is loaded)
// and returns it, first making room under Options.MaxLoadedModels. A chat
// model gets ErrNotEmbeddingModel.
func (e *Engine) LoadEmbedding(ctx context.Context, id string) (*EmbeddingModel, error) {
	if m := e.embedderByID(id); m != nil {
		return m, nil
	}
	e.embedLoadMu.Lock()
	defer e.embedLoadMu.Unlock()
	if m := e.embedderByID(id); m != nil {
		return m, nil
	}
	select {
	case <-e.stop:
		return nil, fmt.Errorf("%w: the engine is closed", ErrUnloaded)
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info, err := e.FindModel(id)
	if err != nil {
		return nil, err
	}
	if info.Kind != KindEmbedding {
		return nil, fmt.Errorf("%w: %s is a %s model", ErrNotEmbeddingModel, id, info.Kind)
	}
	e.loadMu.Lock()
	err = e.makeRoom()
	if err == nil {
		e.embedPending++
	}
	e.loadMu.Unlock()
	if err != nil {
		return nil, err
	}
	m, err := loadEmbeddingModel(info)
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	e.embedPending--
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", id, err)
	}
	m.life.lastUsed = time.Now()
	e.embedMu.Lock()
	defer e.embedMu.Unlock()
	select {
	case <-e.stop: // closed meanwhile: nobody may keep the model
		m.close()
		return nil, fmt.Errorf("loading %s: %w: the engine closed", id, ErrUnloaded)
	default:
	}
	if e.embedders == nil {
		e.embedders = map[string]*EmbeddingModel{}
	}
	e.embedders[id] = m
	return m, nil
}

// acquireEmbedding loads id if needed and holds it for one call. A model
// evicted between its lookup and the hold is loaded again.
func (e *Engine) acquireEmbedding(ctx context.Context, id string) (*EmbeddingModel, error) {
	for {
		m, err := e.LoadEmbedding(ctx, id)
		if err != nil {
			return nil, err
		}
		if m.life.acquire() {
			return m, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Stopped models leave embedders right after stopping; wait for it.
		time.Sleep(time.Millisecond)
	}
}

func (e *Engine) embedderByID(id string) *EmbeddingModel {
	e.embedMu.Lock()
	defer e.embedMu.Unlock()
	return e.embedders[id]
}

// stopEmbedding takes m out of service and out of the loaded set (with
// idleOnly only if no call holds it), returning a channel closed once no
// call holds it, or nil when it did nothing.
func (e *Engine) stopEmbedding(m *EmbeddingModel, idleOnly bool) <-chan struct{} {
	e.embedMu.Lock()
	defer e.embedMu.Unlock()
	ok, idle := m.life.stop(idleOnly)
	if !ok {
		return nil
	}
	if e.embedders[m.Info.ID] == m {
		delete(e.embedders, m.Info.ID)
	}
	return idle
}

// LoadedEmbeddings lists the ids of the embedding models in memory, sorted.
func (e *Engine) LoadedEmbeddings() []string {
	e.embedMu.Lock()
	defer e.embedMu.Unlock()
	ids := make([]string, 0, len(e.embedders))
	for id := range e.embedders {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// EmbeddingModelByID returns a loaded embedding model, or nil.
func (e *Engine) EmbeddingModelByID(id string) *EmbeddingModel { return e.embedderByID(id) }

// UnloadEmbedding frees a loaded embedding model at once; calls running on
// it get ErrUnloaded. An id that is not loaded is ErrModelNotFound.
func (e *Engine) UnloadEmbedding(id string) error {
	return e.unloadEmbedding(context.Background(), id, true)
}

// unloadEmbedding is UnloadModel for an embedding model. Without force it
// waits (bounded by ctx and Options.UnloadTimeout) for the calls holding
// the model to finish; new calls meanwhile load it afresh. If the wait runs
// out, the model goes back into service and the error wraps ErrModelBusy.
func (e *Engine) unloadEmbedding(ctx context.Context, id string, force bool) error {
	m := e.embedderByID(id)
	if m == nil {
		return fmt.Errorf("%w: embedding model %q is not loaded", ErrModelNotFound, id)
	}
	idle := e.stopEmbedding(m, false)
	if idle == nil {
		return fmt.Errorf("%w: embedding model %q is not loaded", ErrModelNotFound, id)
	}
	if !force {
		ctx, cancel := context.WithTimeout(ctx, e.o().UnloadTimeout)
		defer cancel()
		select {
		case <-idle:
		case <-ctx.Done():
			n, _ := m.life.state()
			e.embedMu.Lock()
			m.life.mu.Lock()
			m.life.stopped, m.life.idle = false, nil
			m.life.mu.Unlock()
			if e.embedders[id] == nil {
				e.embedders[id] = m
				e.embedMu.Unlock()
			} else { // loaded again meanwhile: keep that one
				e.embedMu.Unlock()
				go func() { <-idleOf(m); m.close() }()
			}
			return fmt.Errorf("%w: %s still has %d running requests; unload with force to end them: %w", ErrModelBusy, id, n, ctx.Err())
		}
	}
	m.close()
	return nil
}

// idleOf returns a channel closed once no call holds m.
func idleOf(m *EmbeddingModel) <-chan struct{} {
	m.life.mu.Lock()
	defer m.life.mu.Unlock()
	done := make(chan struct{})
	if m.life.active == 0 {
		close(done)
	} else {
		m.life.idle = done
	}
	return done
}

// lruCandidate is a loaded model of either kind, for eviction.
type lruCandidate struct {
	id       string
	lastUsed time.Time
	evict    func() bool // frees the model if it is idle
}

// evictionOrder lists the loaded chat and embedding models, least recently
// used first.
func (e *Engine) evictionOrder() []lruCandidate {
	var out []lruCandidate
	for _, m := range e.byLastUsed() {
		out = append(out, lruCandidate{id: m.Info.ID, lastUsed: m.LastUsed(), evict: func() bool {
			if !m.stopAdmitting(true) {
				return false
			}
			e.free(m)
			return true
		}})
	}
	e.embedMu.Lock()
	for _, m := range e.embedders {
		_, used := m.life.state()
		out = append(out, lruCandidate{id: m.Info.ID, lastUsed: used, evict: func() bool {
			if e.stopEmbedding(m, true) == nil {
				return false
			}
			m.close()
			return true
		}})
	}
	e.embedMu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].lastUsed.Equal(out[j].lastUsed) {
			return out[i].lastUsed.Before(out[j].lastUsed)
		}
		return out[i].id < out[j].id
	})
	return out
}

// unloadIdleEmbeddings frees the embedding models no call has held for ttl.
// Callers hold e.loadMu.
func (e *Engine) unloadIdleEmbeddings(now time.Time, ttl time.Duration) []string {
	e.embedMu.Lock()
	ms := make([]*EmbeddingModel, 0, len(e.embedders))
	for _, m := range e.embedders {
		ms = append(ms, m)
	}
	e.embedMu.Unlock()
	var freed []string
	for _, m := range ms {
		if active, used := m.life.state(); active > 0 || now.Sub(used) < ttl {
			continue
		}
		if e.stopEmbedding(m, true) == nil {
			continue
		}
		m.close()
		freed = append(freed, m.Info.ID)
	}
	return freed
}

// Active is the number of Embed calls holding the model.
func (m *EmbeddingModel) Active() int {
	n, _ := m.life.state()
	return n
}
