package inference

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/impetusllm/impetus/inference/chat"
	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/tokenizer"
)

// LoadedModel is a model whose weights are in memory (mmapped), with its
// tokenizer, chat template and the scheduler that runs its sequences.
type LoadedModel struct {
	Info      LocalModel
	Meta      model.Info
	LoadedAt  time.Time
	LoadTime  time.Duration
	Tokenizer *tokenizer.Tokenizer
	// Template is nil when the model ships no chat template.
	Template *chat.Template
	// Device is where the model runs: "cpu" or the GPU, e.g. "cuda:0 NVIDIA
	// H100 80GB HBM3 (sm_90, 79.2 GiB, driver 13.0)"; DeviceReason says why.
	Device, DeviceReason string

	model *model.Model
	sched *scheduler

	mu        sync.Mutex
	lastUsed  time.Time
	closeOnce sync.Once
	gone      chan struct{} // closed once the model is freed
}

// LastUsed is when a request last used the model.
func (m *LoadedModel) LastUsed() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastUsed
}

func (m *LoadedModel) touch() {
	m.mu.Lock()
	m.lastUsed = time.Now()
	m.mu.Unlock()
}

// EOS lists the token ids that end generation: the model's configured EOS ids
// plus the tokenizer's end-of-generation tokens.
func (m *LoadedModel) EOS() []int32 {
	seen := map[int32]bool{}
	var out []int32
	for _, id := range m.Meta.EOS {
		if !seen[int32(id)] {
			seen[int32(id)] = true
			out = append(out, int32(id))
		}
	}
	for _, id := range m.Tokenizer.EOG() {
		if id >= 0 && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// close frees the model once; later calls wait for nothing.
func (m *LoadedModel) close() {
	m.closeOnce.Do(func() {
		m.sched.close()
		m.model.Close()
		close(m.gone)
	})
}

// Loaded lists the ids of the models in memory, sorted.
func (e *Engine) Loaded() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return sortedIDs(e.loaded)
}

// LoadedModelByID returns a loaded model, or nil.
func (e *Engine) LoadedModelByID(id string) *LoadedModel {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.loaded[id]
}

// loadCall is one load in flight. Every caller asking for its id while it
// runs waits on done and shares m and err.
type loadCall struct {
	done chan struct{}
	m    *LoadedModel
	err  error
	// counted is set once makeRoom has counted this load against
	// Options.MaxLoadedModels, so concurrent loads cannot overshoot the cap.
	counted bool
}

// Load loads a model by id (a no-op if it is loaded already) and returns it.
// A loaded model is returned without waiting on any other load. Loads of
// different ids run in parallel; concurrent loads of one id load it once and
// share the result. The load runs on its own: a caller whose ctx ends stops
// waiting and gets ctx's error, while the load goes on for the others.
func (e *Engine) Load(ctx context.Context, id string) (*LoadedModel, error) {
	if m, err, ok := e.loadedFor(id); ok {
		return m, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.loadMu.Lock()
	if m, err, ok := e.loadedFor(id); ok {
		e.loadMu.Unlock()
		return m, err
	}
	c := e.loading[id]
	if c == nil {
		c = &loadCall{done: make(chan struct{})}
		if e.loading == nil {
			e.loading = map[string]*loadCall{}
		}
		e.loading[id] = c
		go e.runLoad(id, c)
	}
	e.loadMu.Unlock()
	select {
	case <-c.done:
		return c.m, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Loading lists the ids of the models being loaded now, sorted.
func (e *Engine) Loading() []string {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	return sortedIDs(e.loading)
}

// loadedFor answers Load from the loaded set: ok is false when id is not
// loaded.
func (e *Engine) loadedFor(id string) (*LoadedModel, error, bool) {
	m := e.LoadedModelByID(id)
	if m == nil {
		return nil, nil, false
	}
	if m.Unloading() {
		return nil, fmt.Errorf("%w: %s", ErrUnloading, id), true
	}
	return m, nil, true
}

// runLoad performs c's load and publishes its result to the waiters.
func (e *Engine) runLoad(id string, c *loadCall) {
	m, err := e.load(id, c)
	e.loadMu.Lock()
	select {
	case <-e.stop: // the engine closed meanwhile: nobody may keep the model
		if err == nil {
			m.close()
			m, err = nil, fmt.Errorf("loading %s: %w: the engine closed", id, ErrUnloaded)
		}
	default:
	}
	if err == nil {
		e.mu.Lock()
		e.loaded[id] = m
		e.mu.Unlock()
	}
	delete(e.loading, id)
	c.m, c.err = m, err
	e.loadMu.Unlock()
	close(c.done)
}

// load reads one model from disk. Only the check against
// Options.MaxLoadedModels holds e.loadMu; the reading itself holds no lock.
func (e *Engine) load(id string, c *loadCall) (*LoadedModel, error) {
	info, err := e.FindModel(id)
	if err != nil {
		return nil, err
	}
	if info.Kind == KindEmbedding {
		return nil, fmt.Errorf("%w: %s is an embedding model (use Embed)", ErrNotChatModel, id)
	}
	e.loadMu.Lock()
	err = e.makeRoom()
	if err == nil {
		c.counted = true
	}
	e.loadMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", id, err)
	}
	start := time.Now()
	var (
		mdl  *model.Model
		tok  *tokenizer.Tokenizer
		tmpl *chat.Template
	)
	switch info.Format {
	case FormatMLX:
		if mdl, err = model.Load(info.Path); err != nil {
			return nil, fmt.Errorf("loading %s: %w", id, err)
		}
		if tok, err = tokenizer.Load(info.Path); err != nil {
			mdl.Close()
			return nil, fmt.Errorf("loading tokenizer of %s: %w", id, err)
		}
		tmpl, err = chat.FromModelDir(info.Path)
		if err != nil {
			tmpl = nil // completions still work; chat requests get a clear error
		}
	case FormatGGUF:
		if mdl, tok, tmpl, err = loadGGUF(info.Path); err != nil {
			return nil, fmt.Errorf("loading %s: %w", id, err)
		}
	default:
		return nil, fmt.Errorf("%w: %s models are not runnable (%s)", ErrFormatUnsupported, info.Format, id)
	}
	e.setKVStorage(id, mdl)
	device, why, err := e.place(mdl)
	if err != nil {
		mdl.Close()
		return nil, fmt.Errorf("loading %s: %w", id, err)
	}
	if logf := e.o().Logf; logf != nil {
		logf("model %s runs on %s: %s", id, device, why)
	}
	lm := &LoadedModel{Info: info, Meta: mdl.Info(), Tokenizer: tok, Template: tmpl, Device: device, DeviceReason: why, model: mdl, LoadedAt: time.Now(), LoadTime: time.Since(start), gone: make(chan struct{})}
	lm.lastUsed = lm.LoadedAt
	lm.sched = newScheduler(lm, e)
	return lm, nil
}

// Unload frees a loaded model at once: its running and queued sequences end
// with ErrUnloaded. It is UnloadModel with force; see that for the graceful
// way.
func (e *Engine) Unload(id string) error {
	return e.UnloadModel(context.Background(), id, true)
}

// loadGGUF maps a GGUF file once for the weights, the embedded vocabulary
// and the chat template (tokenizer.chat_template). A missing or unparsable
// template leaves tmpl nil, as for MLX folders.
func loadGGUF(path string) (*model.Model, *tokenizer.Tokenizer, *chat.Template, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("tokenizer of %s: %w", path, err)
	}
	mdl, err := model.FromGGUF(f, path) // mdl owns f from here
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	var tmpl *chat.Template
	if src, ok := f.String("tokenizer.chat_template"); ok {
		if tmpl, err = chat.Parse(src); err == nil {
			if id := tok.BOS(); id >= 0 {
				tmpl.BOSToken = tok.TokenText(id)
			}
			if id := tok.EOS(); id >= 0 {
				tmpl.EOSToken = tok.TokenText(id)
			}
		} else {
			tmpl = nil
		}
	}
	return mdl, tok, tmpl, nil
}

// sortedIDs lists the keys of a map by model id, sorted (empty, not nil,
// when there are none).
func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
