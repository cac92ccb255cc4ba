package models

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/impetusllm/impetus/caddymodule/httperr"
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

// LoadError is a load failure with the status it maps to. cause is the
// engine's error, when there is one.
type LoadError struct {
	status int
	msg    string
	cause  error
	// retryAfter, when set, is the Retry-After of a 503 (seconds).
	retryAfter int
}

func (e *LoadError) Error() string { return e.msg }
func (e *LoadError) Unwrap() error { return e.cause }

// LoadChecked loads a model after checking that it exists on disk (fetching
// it first when auto_download allows), fits in the memory left by the
// models loaded and those still loading, and is in a runnable format. It
// publishes model_status events. A loaded model is returned at once, whatever
// else is loading. loadedNow reports whether this call loaded it.
func (m *Manager) LoadChecked(ctx context.Context, id string) (lm *inference.LoadedModel, loadedNow bool, err error) {
	if lm := m.engine.LoadedModelByID(id); lm != nil {
		if lm.Unloading() {
			return nil, false, &LoadError{status: http.StatusServiceUnavailable, msg: "model is being unloaded; retry once it is gone: " + id, cause: inference.ErrUnloading}
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
		return nil, false, &LoadError{status: http.StatusInternalServerError, msg: err.Error(), cause: err}
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
func (m *Manager) watchLoad(id string) {
	m.publish("model_status", ModelStatus{Timestamp: httperr.ISONow(), ModelID: id, Status: "loading", LoadedModels: m.engine.Loaded()})
	_, err := m.engine.Load(context.Background(), id)
	m.mu.Lock()
	delete(m.loading, id)
	m.mu.Unlock()
	if err != nil {
		m.publish("model_status", ModelStatus{Timestamp: httperr.ISONow(), ModelID: id, Status: "load_failed", LoadedModels: m.engine.Loaded()})
	}
}

// loadFailure maps an engine load error to its status.
func loadFailure(err error) *LoadError {
	le := &LoadError{status: http.StatusInternalServerError, msg: err.Error(), cause: err}
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

// HowToGet tells how to fetch a model that is not on disk, when id names
// one the hub can serve: a catalog entry or an ORG/NAME repository id. It
// is empty otherwise.
func HowToGet(id string) string {
	if _, ok := catalog.Lookup(id); !ok && hub.ValidateRepoID(id) != nil {
		return ""
	}
	return fmt.Sprintf(`download it with POST /api/models/download {"model_id": %q} or run: impetus pull %s`, id, id)
}

// notFound is the 404 of a model that is not on disk.
func notFound(id string) *LoadError {
	msg := "model not found: " + id
	if hint := HowToGet(id); hint != "" {
		msg += "; it is not in the models directory: " + hint
	}
	return &LoadError{status: http.StatusNotFound, msg: msg, cause: inference.ErrModelNotFound}
}

// FindOrFetch finds a model on disk, fetching it first when auto_download
// allows, as LoadChecked does: for the loads that do not go through
// LoadChecked (embedding models). Its failures are *LoadError.
func (m *Manager) FindOrFetch(ctx context.Context, id string) (inference.LocalModel, error) {
	info, err := m.engine.FindModel(id)
	if errors.Is(err, inference.ErrModelNotFound) {
		return m.autoDownload(ctx, id)
	}
	if err != nil {
		return info, &LoadError{status: http.StatusInternalServerError, msg: err.Error(), cause: err}
	}
	return info, nil
}

// Configure takes the app's auto_download and auto_download_wait, from the
// latest config to serve.
func (m *Manager) Configure(autoDownload bool, wait time.Duration) {
	m.mu.Lock()
	m.autoDL, m.autoDLWait = autoDownload, wait
	m.mu.Unlock()
}

func writeLoadError(w http.ResponseWriter, err error) {
	var le *LoadError
	if errors.As(err, &le) {
		if le.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(le.retryAfter))
		}
		writeModelsError(w, le.status, le.msg)
		return
	}
	writeModelsError(w, http.StatusInternalServerError, err.Error())
}

// Status is the HTTP status the failure maps to.
func (e *LoadError) Status() int { return e.status }

// RetryAfter is the Retry-After of a 503 in seconds, or 0.
func (e *LoadError) RetryAfter() int { return e.retryAfter }
