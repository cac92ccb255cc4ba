// Package models manages the models of one engine for the management API
// and the OpenAI handler: the one checked load path (memory, format,
// auto_download), downloads from the Hugging Face hub, warm-ups and
// benchmarks, and the /api/models/* endpoints.
package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/impetusllm/impetus/caddymodule/auth"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/hwinfo"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/catalog"
)

// ServeAPI serves /api/models/* and reports false for any other route
// (the path after "/api"). Model ids may contain "/" (raw or %2F: the route
// is the decoded path), so ids are taken as the whole rest of the path, with
// a known suffix split off where a route has one.
func (m *Manager) ServeAPI(w http.ResponseWriter, r *http.Request, route string) bool {
	rest, ok := strings.CutPrefix(route, "/models/")
	if !ok {
		return false
	}
	switch rest {
	case "list":
		httperr.Only(w, r, http.MethodGet, m.list)
		return true
	case "load":
		httperr.Only(w, r, http.MethodPost, auth.AdminOnly(m.load))
		return true
	case "unload":
		httperr.Only(w, r, http.MethodPost, auth.AdminOnly(m.unload))
		return true
	case "download":
		httperr.Only(w, r, http.MethodPost, auth.AdminOnly(m.startDownload))
		return true
	case "downloads":
		httperr.Only(w, r, http.MethodGet, m.listDownloads)
		return true
	case "discover":
		httperr.Only(w, r, http.MethodGet, m.discover)
		return true
	case "warmup/status":
		httperr.Only(w, r, http.MethodGet, m.warmupStatus)
		return true
	}
	switch {
	case strings.HasPrefix(rest, "download/"):
		id := strings.TrimPrefix(rest, "download/")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if d := m.getDownload(id); d == nil || auth.AuthorizeModel(w, r, d.ModelID) {
				m.downloadStatus(w, id)
			}
		case http.MethodDelete:
			if auth.RequireAdmin(w, r) {
				m.cancelDownload(w, id)
			}
		default:
			w.Header().Set("Allow", "GET, DELETE")
			httperr.WriteAPI(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET or DELETE")
		}
		return true
	case strings.HasPrefix(rest, "benchmark/"):
		id := strings.TrimPrefix(rest, "benchmark/")
		if hist, ok := strings.CutSuffix(id, "/history"); ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if auth.AuthorizeModel(w, r, hist) {
				m.benchmarkHistory(w, hist)
			}
			return true
		}
		httperr.Only(w, r, http.MethodPost, auth.AdminOnly(func(w http.ResponseWriter, r *http.Request) {
			if auth.AuthorizeModel(w, r, id) {
				m.benchmark(w, r, id)
			}
		}))
		return true
	case strings.HasPrefix(rest, "warmup/"):
		id := strings.TrimPrefix(rest, "warmup/")
		if base, ok := strings.CutSuffix(id, "/benchmark"); ok && !m.exists(id) {
			httperr.Only(w, r, http.MethodPost, auth.AdminOnly(func(w http.ResponseWriter, r *http.Request) {
				if auth.AuthorizeModel(w, r, base) {
					m.warmupBenchmark(w, r, base)
				}
			}))
			return true
		}
		httperr.Only(w, r, http.MethodPost, auth.AdminOnly(func(w http.ResponseWriter, r *http.Request) {
			if auth.AuthorizeModel(w, r, id) {
				m.warmup(w, r, id)
			}
		}))
		return true
	}
	return false
}

// Manager holds the management state of one engine: downloads, warmup
// results and the models being loaded. It lives as long as the engine, so
// downloads survive config reloads.
type Manager struct {
	engine    *inference.Engine
	publishFn func(name string, payload any)

	// The app's auto_download and auto_download_wait, from the latest
	// config (see Configure).
	autoDL     bool
	autoDLWait time.Duration

	mu        sync.Mutex
	downloads map[string]*download
	active    map[string]*download // model id -> running download
	loading   map[string]int64     // model id -> memory reserved for its load
	warm      map[string]*warmupResult
	nextID    int
}

// NewManager returns the manager of engine; publish sends its events
// (model_status, download_progress) to the event bus, if any.
func NewManager(engine *inference.Engine, publish func(name string, payload any)) *Manager {
	return &Manager{
		engine: engine, publishFn: publish,
		downloads: map[string]*download{}, active: map[string]*download{},
		loading: map[string]int64{}, warm: map[string]*warmupResult{},
	}
}

// publish sends an event through the engine's Socket.IO bus when a config
// serves one; without impetus_events there is nobody to tell.
func (m *Manager) publish(name string, payload any) { m.publishFn(name, payload) }

// writeModelsError writes the /api error shape with a type naming the cause
// for the statuses httperr.APIErrorType has no type for.
func writeModelsError(w http.ResponseWriter, status int, msg string, details ...string) {
	typ := httperr.APIErrorType(status)
	switch status {
	case http.StatusConflict:
		typ = "conflict"
	case http.StatusInsufficientStorage:
		typ = "insufficient_resources"
	case http.StatusNotImplemented:
		typ = "not_implemented"
	case http.StatusBadGateway:
		typ = "upstream_error"
	}
	if details == nil {
		details = []string{}
	}
	httperr.WriteJSON(w, status, httperr.APIError{Error: msg, Type: typ, Details: details, Timestamp: httperr.ISONow()})
}

// requireModel answers 400 when a body names no model_id and 403 when the
// key may not use it, and reports whether the request may go on.
func requireModel(w http.ResponseWriter, r *http.Request, id string) bool {
	if id == "" {
		httperr.WriteAPI(w, http.StatusBadRequest, "model_id is required", "model_id: field required")
		return false
	}
	return auth.AuthorizeModel(w, r, id)
}

// decodeBody reads a JSON object body into v, refusing unknown fields; an
// empty body leaves v at its defaults.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		httperr.WriteAPI(w, http.StatusBadRequest, "reading the request body failed")
		return false
	}
	if len(data) > 1<<20 {
		httperr.WriteAPI(w, http.StatusRequestEntityTooLarge, "request body larger than 1 MiB")
		return false
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httperr.WriteAPI(w, http.StatusBadRequest, "Request body must be valid JSON", err.Error())
		return false
	}
	return true
}

const mib = 1 << 20
const gib = 1 << 30

type modelEntry struct {
	ModelID         string   `json:"model_id"`
	Status          string   `json:"status"`
	SizeMB          float64  `json:"size_mb"`
	MemoryUsageMB   float64  `json:"memory_usage_mb"`
	LoadTimeSeconds *float64 `json:"load_time_seconds"`
	LastUsed        *string  `json:"last_used"`
	Format          string   `json:"format"`
	Architecture    *string  `json:"architecture"`
	Parameters      *string  `json:"parameters"`
	ParametersCount *int64   `json:"parameters_count"`
	Quantization    *string  `json:"quantization"`
	ContextLength   *int     `json:"context_length"`
	Path            string   `json:"path,omitempty"`
	WarmedUp        bool     `json:"warmed_up"`
	// Kind is "chat" or "embedding" (served by /v1/embeddings).
	Kind string `json:"kind,omitempty"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// humanParams writes a parameter count the way model names do: 494M, 1.24B.
func humanParams(n int64) string {
	switch {
	case n >= 1e9:
		return strconv.FormatFloat(httperr.RoundTo(float64(n)/1e9, 2), 'f', -1, 64) + "B"
	case n >= 1e6:
		return strconv.FormatFloat(httperr.RoundTo(float64(n)/1e6, 1), 'f', -1, 64) + "M"
	case n >= 1e3:
		return strconv.FormatFloat(httperr.RoundTo(float64(n)/1e3, 1), 'f', -1, 64) + "K"
	}
	return strconv.FormatInt(n, 10)
}

func (m *Manager) entryFor(info inference.LocalModel, lm *inference.LoadedModel) modelEntry {
	e := modelEntry{ModelID: info.ID, Status: "available", SizeMB: httperr.RoundTo(float64(info.SizeBytes)/mib, 1), Format: string(info.Format), Path: info.Path, Kind: string(kindOf(info))}
	if e.Kind == string(inference.KindEmbedding) && slices.Contains(m.engine.LoadedEmbeddings(), info.ID) {
		e.Status = "loaded"
	}
	m.mu.Lock()
	if _, ok := m.loading[info.ID]; ok {
		e.Status = "loading"
	}
	if wr := m.warm[info.ID]; wr != nil && wr.WarmedUp && lm != nil && wr.loadedAt.Equal(lm.LoadedAt) {
		e.WarmedUp = true
	}
	m.mu.Unlock()
	if lm != nil {
		e.Status = "loaded"
		e.MemoryUsageMB = httperr.RoundTo(float64(lm.Meta.WeightBytes())/mib, 1)
		lt := httperr.RoundTo(lm.LoadTime.Seconds(), 3)
		e.LoadTimeSeconds = &lt
		lu := httperr.ISOTime(lm.LastUsed())
		e.LastUsed = &lu
		e.Architecture = strPtr(lm.Meta.Architecture)
		e.Quantization = strPtr(lm.Meta.Quantization)
		if lm.Meta.Params > 0 {
			p := lm.Meta.Params
			e.ParametersCount = &p
			e.Parameters = strPtr(humanParams(p))
		}
		if lm.Meta.ContextLength > 0 {
			c := lm.Meta.ContextLength
			e.ContextLength = &c
		}
		return e
	}
	if s, err := inference.SummarizeConfig(info); err == nil {
		e.Architecture = strPtr(s.Architecture)
		e.Quantization = strPtr(s.Quantization)
		if s.ContextLength > 0 {
			c := s.ContextLength
			e.ContextLength = &c
		}
		if s.Params > 0 {
			p := s.Params
			e.ParametersCount = &p
			e.Parameters = strPtr(humanParams(p))
		}
	}
	return e
}

// kindOf is the model's kind, chat when the scan did not say.
func kindOf(info inference.LocalModel) inference.ModelKind {
	if info.Kind == "" {
		return inference.KindChat
	}
	return info.Kind
}

func (m *Manager) list(w http.ResponseWriter, r *http.Request) {
	onDisk, err := m.engine.Models()
	if err != nil {
		httperr.WriteAPI(w, http.StatusInternalServerError, "models directory unreadable", err.Error())
		return
	}
	entries := []modelEntry{}
	seen := map[string]bool{}
	var total float64
	for _, info := range onDisk {
		if !auth.ModelAllowed(r, info.ID) {
			continue
		}
		lm := m.engine.LoadedModelByID(info.ID)
		e := m.entryFor(info, lm)
		total += e.MemoryUsageMB
		entries = append(entries, e)
		seen[info.ID] = true
	}
	for _, id := range m.engine.Loaded() { // loaded, then removed from disk
		if lm := m.engine.LoadedModelByID(id); lm != nil && !seen[id] && auth.ModelAllowed(r, id) {
			e := m.entryFor(lm.Info, lm)
			total += e.MemoryUsageMB
			entries = append(entries, e)
			seen[id] = true
		}
	}
	m.mu.Lock()
	for id, d := range m.active {
		if !seen[id] && auth.ModelAllowed(r, id) {
			entries = append(entries, modelEntry{ModelID: id, Status: "downloading", SizeMB: httperr.RoundTo(float64(d.snapshot().TotalBytes)/mib, 1)})
		}
	}
	m.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].ModelID < entries[j].ModelID })
	var avail any
	if mem, err := hwinfo.ReadMemory(); err == nil {
		avail = httperr.RoundTo(float64(mem.AvailableBytes)/mib, 1)
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{
		"models":                entries,
		"total_memory_usage_mb": httperr.RoundTo(total, 1),
		"available_memory_mb":   avail,
		"models_directory":      m.engine.Options().ModelsDir,
		"timestamp":             httperr.ISONow(),
	})
}

// exists reports whether id names a model on disk or in memory.
func (m *Manager) exists(id string) bool {
	if m.engine.LoadedModelByID(id) != nil {
		return true
	}
	_, err := m.engine.FindModel(id)
	return err == nil
}

// availableMemory is how much memory a load may use; tests replace it.
var availableMemory = func() (uint64, error) {
	mem, err := hwinfo.ReadMemory()
	if err != nil {
		return 0, err
	}
	return mem.AvailableBytes, nil
}

// checkFits refuses a model whose estimated footprint exceeds available memory.
func checkFits(info inference.LocalModel, available uint64) *LoadError {
	need := inference.EstimateLoadBytes(info)
	if need > 0 && uint64(need) > available {
		return &LoadError{status: http.StatusInsufficientStorage, msg: fmt.Sprintf("not enough memory to load %s: it needs about %.2f GB (weights %.2f GB plus overhead), %.2f GB is available; unload a model first",
			info.ID, float64(need)/gib, float64(info.SizeBytes)/gib, float64(available)/gib)}
	}
	return nil
}

func (m *Manager) load(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ModelID     string `json:"model_id"`
		ForceReload bool   `json:"force_reload"`
		AutoWarmup  bool   `json:"auto_warmup"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if !requireModel(w, r, req.ModelID) {
		return
	}
	if req.ForceReload && m.engine.LoadedModelByID(req.ModelID) != nil {
		if _, err := m.engine.FindModel(req.ModelID); err != nil {
			writeModelsError(w, http.StatusNotFound, "model not found on disk, not reloading: "+req.ModelID)
			return
		}
		if err := m.engine.Unload(req.ModelID); err != nil && !errors.Is(err, inference.ErrModelNotFound) {
			writeModelsError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	lm, loadedNow, err := m.LoadChecked(r.Context(), req.ModelID)
	if err != nil {
		writeLoadError(w, err)
		return
	}
	status, msg := "success", "model loaded"
	if !loadedNow {
		status, msg = "already_loaded", "model was already loaded"
	}
	resp := map[string]any{
		"status":            status,
		"model_id":          req.ModelID,
		"message":           msg,
		"memory_used_gb":    httperr.RoundTo(float64(lm.Meta.WeightBytes())/gib, 3),
		"load_time_seconds": httperr.RoundTo(lm.LoadTime.Seconds(), 3),
		"model":             m.entryFor(lm.Info, lm),
		"timestamp":         httperr.ISONow(),
	}
	if req.AutoWarmup {
		wr, err := m.runWarmup(r.Context(), lm)
		if err != nil {
			resp["warmup_error"] = err.Error()
		} else {
			resp["warmup"] = wr
		}
	}
	httperr.WriteJSON(w, http.StatusOK, resp)
}

// unload frees a model. Without force it stops admitting requests to it
// (they get 503), waits for the running ones to finish (at most the engine's
// unload timeout) and answers after the wait; if they do not finish in time
// the model keeps serving and the answer is 409. With force, running
// requests end at once with a "model unloaded" error.
func (m *Manager) unload(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ModelID string `json:"model_id"`
		Force   bool   `json:"force"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if !requireModel(w, r, req.ModelID) {
		return
	}
	var freed int64
	var active int
	if lm := m.engine.LoadedModelByID(req.ModelID); lm != nil {
		freed, active = lm.Meta.FileSize+lm.Meta.PackedBytes, lm.Active()
	} else if em := m.engine.EmbeddingModelByID(req.ModelID); em != nil {
		freed, active = em.Info.SizeBytes, em.Active()
	} else {
		writeModelsError(w, http.StatusNotFound, "model not loaded: "+req.ModelID)
		return
	}
	start := time.Now()
	if err := m.engine.UnloadModel(r.Context(), req.ModelID, req.Force); err != nil {
		switch {
		case errors.Is(err, inference.ErrModelNotFound):
			writeModelsError(w, http.StatusNotFound, "model not loaded: "+req.ModelID)
		case errors.Is(err, inference.ErrModelBusy):
			writeModelsError(w, http.StatusConflict, err.Error())
		default:
			writeModelsError(w, http.StatusInternalServerError, err.Error())
		}
		return
	}
	m.mu.Lock()
	delete(m.warm, req.ModelID)
	m.mu.Unlock()
	msg := "model unloaded"
	switch {
	case active > 0 && req.Force:
		msg = fmt.Sprintf("model unloaded; %d running or queued requests ended with an error", active)
	case active > 0:
		msg = fmt.Sprintf("model unloaded after its %d running or queued requests finished", active)
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{
		"status":          "success",
		"model_id":        req.ModelID,
		"message":         msg,
		"force":           req.Force,
		"active_requests": active,
		"waited_seconds":  httperr.RoundTo(time.Since(start).Seconds(), 3),
		"memory_freed_mb": httperr.RoundTo(float64(freed)/mib, 1),
		"timestamp":       httperr.ISONow(),
	})
}

func (m *Manager) discover(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := catalog.Filter{Category: q.Get("category"), Search: q.Get("search")}
	if f.Category != "" && !catalog.IsCategory(f.Category) {
		httperr.WriteAPI(w, http.StatusBadRequest, "unknown category "+strconv.Quote(f.Category), "category: one of "+strings.Join(catalog.Categories, ", "))
		return
	}
	if s := q.Get("size_limit_gb"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			httperr.WriteAPI(w, http.StatusBadRequest, "size_limit_gb must be a positive number", "size_limit_gb: "+s)
			return
		}
		f.MaxSizeGB = v
	}
	onDisk := map[string]bool{}
	if local, err := m.engine.Models(); err == nil {
		for _, l := range local {
			onDisk[l.ID] = true
		}
	}
	bw := catalog.MemoryBandwidth()
	out := []map[string]any{}
	for _, e := range catalog.List(f) {
		need := inference.EstimateLoadBytes(inference.LocalModel{SizeBytes: e.WeightBytes})
		out = append(out, map[string]any{
			"model_id":              e.ID,
			"name":                  e.Name,
			"description":           e.Description,
			"category":              e.Category,
			"format":                e.Format,
			"size_gb":               httperr.RoundTo(e.SizeGB(), 3),
			"parameters":            e.Parameters,
			"architecture":          e.Architecture,
			"quantization":          e.Quantization,
			"performance_estimate":  catalog.EstimateSpeed(bw, e.WeightBytes),
			"recommended_memory_gb": math.Ceil(float64(need)/1e9*10) / 10,
			"tags":                  e.Tags,
			"is_downloaded":         onDisk[e.ID],
			"download_pattern":      strPtr(e.File),
			"source_url":            e.Source,
		})
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{
		"models":       out,
		"total_models": len(out),
		"categories":   catalog.Categories,
		"hardware_compatibility": map[string]any{
			"mlx_support":               true,
			"metal_support":             false,
			"memory_bandwidth_gb_per_s": httperr.RoundTo(bw.BytesPerSecond/1e9, 1),
			"bandwidth_threads":         bw.Threads,
			"bandwidth_measured_at":     httperr.ISOTime(bw.Measured),
		},
		"timestamp": httperr.ISONow(),
	})
}

// ModelStatus is the model_status event payload. ModelID is empty for a snapshot.
type ModelStatus struct {
	Timestamp    string   `json:"timestamp"`
	ModelID      string   `json:"model_id,omitempty"`
	Status       string   `json:"status"` // "loaded", "unloaded" or "snapshot"
	LoadedModels []string `json:"loaded_models"`
}
