package models

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/impetusllm/impetus/caddymodule/auth"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/inference"
)

// warmupResult records a model's warmup.
type warmupResult struct {
	ModelID          string  `json:"model_id"`
	WarmedUp         bool    `json:"warmed_up"`
	Timestamp        string  `json:"timestamp"`
	WarmupTimeMS     float64 `json:"warmup_time_ms"`
	ColdFirstTokenMS float64 `json:"cold_first_token_ms"`
	WarmFirstTokenMS float64 `json:"warm_first_token_ms"`
	Prompts          int     `json:"prompts"`
	loadedAt         time.Time
}

// runWarmup faults the weights in and runs the kernels once: a one-token
// generation (timed as the cold first token), then a few short prompts.
func (m *Manager) runWarmup(ctx context.Context, lm *inference.LoadedModel) (*warmupResult, error) {
	start := time.Now()
	cold, err := timedGenerate(ctx, lm, "Hello", 1, 0)
	if err != nil {
		return nil, fmt.Errorf("warmup: %w", err)
	}
	n := 0
	for _, p := range benchPrompts[:3] {
		if _, err := timedGenerate(ctx, lm, p, 8, 0); err != nil {
			return nil, fmt.Errorf("warmup: %w", err)
		}
		n++
	}
	warm, err := timedGenerate(ctx, lm, "Hello", 1, 0)
	if err != nil {
		return nil, fmt.Errorf("warmup: %w", err)
	}
	wr := &warmupResult{
		ModelID: lm.Info.ID, WarmedUp: true, Timestamp: httperr.ISONow(),
		WarmupTimeMS:     httperr.RoundTo(float64(time.Since(start).Microseconds())/1000, 3),
		ColdFirstTokenMS: cold.FirstTokenLatencyMS, WarmFirstTokenMS: warm.FirstTokenLatencyMS,
		Prompts: n, loadedAt: lm.LoadedAt,
	}
	m.mu.Lock()
	m.warm[lm.Info.ID] = wr
	m.mu.Unlock()
	return wr, nil
}

func (m *Manager) warmup(w http.ResponseWriter, r *http.Request, id string) {
	lm, _, err := m.LoadChecked(r.Context(), id)
	if err != nil {
		writeLoadError(w, err)
		return
	}
	wr, err := m.runWarmup(r.Context(), lm)
	if err != nil {
		writeModelsError(w, http.StatusInternalServerError, err.Error())
		return
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{"status": "warmed", "model_id": id, "warmup": wr})
}

// warmupBenchmark compares a first token now with the one measured cold,
// warming the model first if it has not been.
func (m *Manager) warmupBenchmark(w http.ResponseWriter, r *http.Request, id string) {
	lm, _, err := m.LoadChecked(r.Context(), id)
	if err != nil {
		writeLoadError(w, err)
		return
	}
	m.mu.Lock()
	wr := m.warm[id]
	m.mu.Unlock()
	if wr == nil || !wr.loadedAt.Equal(lm.LoadedAt) {
		if wr, err = m.runWarmup(r.Context(), lm); err != nil {
			writeModelsError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	var sum float64
	const runs = 3
	for range runs {
		s, err := timedGenerate(r.Context(), lm, "Hello", 1, 0)
		if err != nil {
			writeModelsError(w, http.StatusInternalServerError, err.Error())
			return
		}
		sum += s.FirstTokenLatencyMS
	}
	warmMS := httperr.RoundTo(sum/runs, 3)
	var speedup *float64
	if warmMS > 0 {
		s := httperr.RoundTo(wr.ColdFirstTokenMS/warmMS, 2)
		speedup = &s
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{
		"model_id": id, "cold_first_token_ms": wr.ColdFirstTokenMS, "warm_first_token_ms": warmMS,
		"speedup": speedup, "runs": runs, "timestamp": httperr.ISONow(),
	})
}

func (m *Manager) warmupStatus(w http.ResponseWriter, r *http.Request) {
	out := map[string]*warmupResult{}
	m.mu.Lock()
	for id, wr := range m.warm {
		if lm := m.engine.LoadedModelByID(id); lm != nil && wr.loadedAt.Equal(lm.LoadedAt) && auth.ModelAllowed(r, id) {
			out[id] = wr
		}
	}
	m.mu.Unlock()
	loaded := []string{}
	for _, id := range m.engine.Loaded() {
		if auth.ModelAllowed(r, id) {
			loaded = append(loaded, id)
		}
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{"models": out, "loaded_models": loaded, "timestamp": httperr.ISONow()})
}
