package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/catalog"
	"github.com/impetusllm/impetus/inference/hub"
)

// DefaultAutoDownloadWait is how long a request waits for an auto_download
// before it gets 503 with Retry-After.
const DefaultAutoDownloadWait = 60 * time.Second

// The one checked path that loads a model, shared by /api/models/load, the
// downloads' auto_load, benchmarks, warmups and the OpenAI endpoints (a chat
// or completion for a model that is not loaded yet).

// loadError is a load failure with the status it maps to. cause is the
// engine's error, when there is one.
type loadError struct {
	status int
	msg    string
	cause  error
	// retryAfter, when set, is the Retry-After of a 503 (seconds).
	retryAfter int
}

func (e *loadError) Error() string { return e.msg }
func (e *loadError) Unwrap() error { return e.cause }

// loadChecked loads a model after checking that it exists on disk (fetching
// it first when auto_download allows), fits in the memory left by the
// models loaded and those still loading, and is in a runnable format. It
// publishes model_status events. A loaded model is returned at once, whatever
// else is loading. loadedNow reports whether this call loaded it.
func (m *modelManager) loadChecked(ctx context.Context, id string) (lm *inference.LoadedModel, loadedNow bool, err error) {
	if lm := m.engine.LoadedModelByID(id); lm != nil {
		if lm.Unloading() {
			return nil, false, &loadError{status: http.StatusServiceUnavailable, msg: "model is being unloaded; retry once it is gone: " + id, cause: inference.ErrUnloading}
		}
		return lm, false, nil
	}
	info, err := m.engine.FindModel(id)
	if errors.Is(err, inference.ErrModelNotFound) {
		if info, err = m.autoDownload(ctx, id); err != nil {
			return nil, false, err
		}
	}
	if err != nil {
		return nil, false, &loadError{status: http.StatusInternalServerError, msg: err.Error(), cause: err}
	}

	// The first caller for an id checks memory and reserves it until the
	// load ends; later callers join the engine's load of the same id.
	m.mu.Lock()
	if _, running := m.loading[id]; !running {
		if avail, err := availableMemory(); err == nil {
			var reserved uint64
			for _, n := range m.loading {
				reserved += uint64(n)
			}
			if le := checkFits(info, avail-min(avail, reserved)); le != nil {
				m.mu.Unlock()
				return nil, false, le
			}
		}
		m.loading[id] = inference.EstimateLoadBytes(info)
		loadedNow = true
		go m.watchLoad(id)
	}
	m.mu.Unlock()

	lm, err = m.engine.Load(ctx, id)
	if err != nil {
		return nil, false, loadFailure(err)
	}
	return lm, loadedNow, nil
}

// watchLoad runs the engine's load of id on behalf of every caller (so none
// of them cancels it by leaving), publishes its outcome and releases the
// memory reserved for it.
func (m *modelManager) watchLoad(id string) {
	m.publish("model_status", modelStatus{Timestamp: httperr.ISONow(), ModelID: id, Status: "loading", LoadedModels: m.engine.Loaded()})
	_, err := m.engine.Load(context.Background(), id)
	m.mu.Lock()
	delete(m.loading, id)
	m.mu.Unlock()
	if err != nil {
		m.publish("model_status", modelStatus{Timestamp: httperr.ISONow(), ModelID: id, Status: "load_failed", LoadedModels: m.engine.Loaded()})
	}
}

// loadFailure maps an engine load error to its status.
func loadFailure(err error) *loadError {
	le := &loadError{status: http.StatusInternalServerError, msg: err.Error(), cause: err}
	switch {
	case errors.Is(err, inference.ErrModelNotFound):
		le.status = http.StatusNotFound
	case errors.Is(err, inference.ErrFormatUnsupported):
		le.status = http.StatusNotImplemented
	case errors.Is(err, inference.ErrTooManyModels), errors.Is(err, inference.ErrUnloaded):
		le.status = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		le.status, le.msg = http.StatusServiceUnavailable, "load cancelled"
	}
	return le
}

// howToGet tells how to fetch a model that is not on disk, when id names
// one the hub can serve: a catalog entry or an ORG/NAME repository id. It
// is empty otherwise.
func howToGet(id string) string {
	if _, ok := catalog.Lookup(id); !ok && hub.ValidateRepoID(id) != nil {
		return ""
	}
	return fmt.Sprintf(`download it with POST /api/models/download {"model_id": %q} or run: impetus pull %s`, id, id)
}

// notFound is the 404 of a model that is not on disk.
func notFound(id string) *loadError {
	msg := "model not found: " + id
	if hint := howToGet(id); hint != "" {
		msg += "; it is not in the models directory: " + hint
	}
	return &loadError{status: http.StatusNotFound, msg: msg, cause: inference.ErrModelNotFound}
}

// configure takes the load options of app, the latest config to serve.
func (m *modelManager) configure(app *App) {
	m.mu.Lock()
	m.autoDL, m.autoDLWait = app.AutoDownload, time.Duration(app.AutoDownloadWait)
	m.mu.Unlock()
}

// autoDownload fetches a missing model when the app's auto_download is on
// and id is a hub repository id, waiting at most auto_download_wait (the
// download goes on after that; the caller gets a 503 with Retry-After).
func (m *modelManager) autoDownload(ctx context.Context, id string) (inference.LocalModel, error) {
	m.mu.Lock()
	on, limit := m.autoDL, m.autoDLWait
	m.mu.Unlock()
	if !on || hub.ValidateRepoID(id) != nil {
		return inference.LocalModel{}, notFound(id)
	}
	d, _ := m.beginDownload(id, "main", nil, false, false)
	wait := time.NewTimer(limit)
	defer wait.Stop()
	select {
	case <-d.done:
	case <-wait.C:
		v := d.snapshot()
		return inference.LocalModel{}, &loadError{status: http.StatusServiceUnavailable, retryAfter: retryAfterFor(v),
			msg: fmt.Sprintf("model %s is downloading (%d of %d bytes); retry later or follow GET /api/models/download/%s", id, v.DownloadedBytes, v.TotalBytes, d.ID)}
	case <-ctx.Done():
		return inference.LocalModel{}, loadFailure(ctx.Err())
	}
	if v := d.snapshot(); v.Status != "completed" {
		msg := "downloading " + id + " failed"
		if v.Error != nil {
			msg += ": " + *v.Error
		}
		return inference.LocalModel{}, &loadError{status: http.StatusBadGateway, msg: msg}
	}
	info, err := m.engine.FindModel(id)
	if err != nil {
		return inference.LocalModel{}, &loadError{status: http.StatusInternalServerError, msg: fmt.Sprintf("%s was downloaded but is not a runnable model: %v", id, err), cause: err}
	}
	return info, nil
}

// retryAfterFor guesses when a download will be done, from its rate so far,
// within 1 s to 5 min.
func retryAfterFor(v downloadView) int {
	s := 5
	if v.ETASeconds != nil {
		s = int(*v.ETASeconds) + 1
	}
	return min(max(s, 1), 300)
}

// beginDownload starts a download of a hub repository, or returns the one
// already running for it (started false).
func (m *modelManager) beginDownload(modelID, revision string, patterns []string, autoLoad, force bool) (d *download, started bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := m.active[modelID]; d != nil {
		return d, false
	}
	if e, ok := catalog.Lookup(modelID); ok && len(patterns) == 0 && e.File != "" {
		patterns = []string{e.File}
	}
	m.nextID++
	ctx, cancel := context.WithCancel(context.Background())
	d = &download{
		ID: fmt.Sprintf("dl-%d-%d", time.Now().Unix(), m.nextID), ModelID: modelID, Revision: revision,
		Patterns: patterns, AutoLoad: autoLoad, Force: force,
		cancel: cancel, done: make(chan struct{}), started: time.Now(), status: "pending",
	}
	m.forgetOldDownloads()
	m.downloads[d.ID] = d
	m.active[modelID] = d
	go m.runDownload(ctx, d)
	return d, true
}

func writeLoadError(w http.ResponseWriter, err error) {
	var le *loadError
	if errors.As(err, &le) {
		if le.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(le.retryAfter))
		}
		writeModelsError(w, le.status, le.msg)
		return
	}
	writeModelsError(w, http.StatusInternalServerError, err.Error())
}

// loadForRequest loads the model of an OpenAI request through loadChecked
// and answers failures in the OpenAI error shape; a 503 that has a
// Retry-After sets it on w.
func (h *OpenAI) loadForRequest(w http.ResponseWriter, r *http.Request, id string) (*inference.LoadedModel, *openai.Error) {
	lm, _, err := managerFor(h.app).loadChecked(r.Context(), id)
	if err == nil {
		return lm, nil
	}
	var le *loadError
	if !errors.As(err, &le) {
		return nil, engineError(err, id)
	}
	if le.retryAfter > 0 && w != nil {
		w.Header().Set("Retry-After", strconv.Itoa(le.retryAfter))
	}
	switch le.status {
	case http.StatusNotFound:
		e := openai.ModelNotFound(id)
		if hint := howToGet(id); hint != "" {
			e.Message += "; it is not on this server's disk: " + hint
		}
		return nil, e
	case http.StatusInsufficientStorage:
		return nil, openai.NewError(http.StatusInsufficientStorage, openai.TypeServer, le.msg).WithCode("insufficient_memory")
	case http.StatusServiceUnavailable:
		if le.cause != nil {
			return nil, engineError(le.cause, id)
		}
		return nil, openai.Unavailable(le.msg)
	case http.StatusBadGateway:
		return nil, openai.NewError(http.StatusBadGateway, openai.TypeServer, le.msg).WithCode("download_failed")
	case http.StatusNotImplemented:
		return nil, engineError(le.cause, id)
	}
	h.logger.Error("loading model", zap.String("model", id), zap.Error(err))
	return nil, openai.Internal("loading the model failed")
}
