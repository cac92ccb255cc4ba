package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/impetusllm/impetus/hwinfo"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/catalog"
	"github.com/impetusllm/impetus/inference/hub"
	"github.com/impetusllm/impetus/inference/sample"
)

func init() { apiRoutes = append(apiRoutes, serveModels) }

// serveModels routes /api/models/*. Model ids may contain "/" (raw or %2F:
// the route is the decoded path), so ids are taken as the whole rest of the
// path, with a known suffix split off where a route has one.
func serveModels(h *API, w http.ResponseWriter, r *http.Request, route string) bool {
	rest, ok := strings.CutPrefix(route, "/models/")
	if !ok {
		return false
	}
	m := managerFor(h.app)
	switch rest {
	case "list":
		h.only(w, r, http.MethodGet, m.list)
		return true
	case "load":
		h.only(w, r, http.MethodPost, adminOnly(m.load))
		return true
	case "unload":
		h.only(w, r, http.MethodPost, adminOnly(m.unload))
		return true
	case "download":
		h.only(w, r, http.MethodPost, adminOnly(m.startDownload))
		return true
	case "downloads":
		h.only(w, r, http.MethodGet, m.listDownloads)
		return true
	case "discover":
		h.only(w, r, http.MethodGet, m.discover)
		return true
	case "warmup/status":
		h.only(w, r, http.MethodGet, m.warmupStatus)
		return true
	}
	switch {
	case strings.HasPrefix(rest, "download/"):
		id := strings.TrimPrefix(rest, "download/")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if d := m.getDownload(id); d == nil || authorizeModel(w, r, d.ModelID) {
				m.downloadStatus(w, id)
			}
		case http.MethodDelete:
			if requireAdmin(w, r) {
				m.cancelDownload(w, id)
			}
		default:
			w.Header().Set("Allow", "GET, DELETE")
			writeAPIError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET or DELETE")
		}
		return true
	case strings.HasPrefix(rest, "benchmark/"):
		id := strings.TrimPrefix(rest, "benchmark/")
		if hist, ok := strings.CutSuffix(id, "/history"); ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if authorizeModel(w, r, hist) {
				m.benchmarkHistory(w, hist)
			}
			return true
		}
		h.only(w, r, http.MethodPost, adminOnly(func(w http.ResponseWriter, r *http.Request) {
			if authorizeModel(w, r, id) {
				m.benchmark(w, r, id)
			}
		}))
		return true
	case strings.HasPrefix(rest, "warmup/"):
		id := strings.TrimPrefix(rest, "warmup/")
		if base, ok := strings.CutSuffix(id, "/benchmark"); ok && !m.exists(id) {
			h.only(w, r, http.MethodPost, adminOnly(func(w http.ResponseWriter, r *http.Request) {
				if authorizeModel(w, r, base) {
					m.warmupBenchmark(w, r, base)
				}
			}))
			return true
		}
		h.only(w, r, http.MethodPost, adminOnly(func(w http.ResponseWriter, r *http.Request) {
			if authorizeModel(w, r, id) {
				m.warmup(w, r, id)
			}
		}))
		return true
	}
	return false
}

// modelManager holds the management state of one engine: downloads, warmup
// results and the models being loaded. It lives as long as the engine, so
// downloads survive config reloads.
type modelManager struct {
	engine *inference.Engine
	state  *engineEntry

	// The app's auto_download and auto_download_wait, from the latest
	// config (see load.go).
	autoDL     bool
	autoDLWait time.Duration

	mu        sync.Mutex
	downloads map[string]*download
	active    map[string]*download // model id -> running download
	loading   map[string]int64     // model id -> memory reserved for its load
	warm      map[string]*warmupResult
	nextID    int
}

func newModelManager(p *engineEntry) *modelManager {
	return &modelManager{
		engine: p.engine, state: p,
		downloads: map[string]*download{}, active: map[string]*download{},
		loading: map[string]int64{}, warm: map[string]*warmupResult{},
	}
}

// managerFor returns the manager of app's pooled engine.
func managerFor(app *App) *modelManager { return app.state.models }

// publish sends an event through the engine's Socket.IO bus when a config
// serves one; without impetus_events there is nobody to tell.
func (m *modelManager) publish(name string, payload any) { m.state.publish(name, payload) }

// writeModelsError writes the /api error shape with a type naming the cause
// for the statuses errors.go has no type for.
func writeModelsError(w http.ResponseWriter, status int, msg string, details ...string) {
	typ := apiErrorType(status)
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
	writeJSON(w, status, apiError{Error: msg, Type: typ, Details: details, Timestamp: isoNow()})
}

// decodeBody reads a JSON object body into v, refusing unknown fields; an
// empty body leaves v at its defaults.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "reading the request body failed")
		return false
	}
	if len(data) > 1<<20 {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "request body larger than 1 MiB")
		return false
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeAPIError(w, http.StatusBadRequest, "Request body must be valid JSON", err.Error())
		return false
	}
	return true
}

const mib = 1 << 20
const gib = 1 << 30

// ---- list ----

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
		return strconv.FormatFloat(roundTo(float64(n)/1e9, 2), 'f', -1, 64) + "B"
	case n >= 1e6:
		return strconv.FormatFloat(roundTo(float64(n)/1e6, 1), 'f', -1, 64) + "M"
	case n >= 1e3:
		return strconv.FormatFloat(roundTo(float64(n)/1e3, 1), 'f', -1, 64) + "K"
	}
	return strconv.FormatInt(n, 10)
}

func (m *modelManager) entryFor(info inference.LocalModel, lm *inference.LoadedModel) modelEntry {
	e := modelEntry{ModelID: info.ID, Status: "available", SizeMB: roundTo(float64(info.SizeBytes)/mib, 1), Format: string(info.Format), Path: info.Path}
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
		e.MemoryUsageMB = roundTo(float64(lm.Meta.WeightBytes())/mib, 1)
		lt := roundTo(lm.LoadTime.Seconds(), 3)
		e.LoadTimeSeconds = &lt
		lu := isoTime(lm.LastUsed())
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

func (m *modelManager) list(w http.ResponseWriter, r *http.Request) {
	onDisk, err := m.engine.Models()
	if err != nil {
		writeAPIError(w, http.StatusInternalServerError, "models directory unreadable", err.Error())
		return
	}
	entries := []modelEntry{}
	seen := map[string]bool{}
	var total float64
	for _, info := range onDisk {
		if !modelAllowed(r, info.ID) {
			continue
		}
		lm := m.engine.LoadedModelByID(info.ID)
		e := m.entryFor(info, lm)
		total += e.MemoryUsageMB
		entries = append(entries, e)
		seen[info.ID] = true
	}
	for _, id := range m.engine.Loaded() { // loaded, then removed from disk
		if lm := m.engine.LoadedModelByID(id); lm != nil && !seen[id] && modelAllowed(r, id) {
			e := m.entryFor(lm.Info, lm)
			total += e.MemoryUsageMB
			entries = append(entries, e)
			seen[id] = true
		}
	}
	m.mu.Lock()
	for id, d := range m.active {
		if !seen[id] && modelAllowed(r, id) {
			entries = append(entries, modelEntry{ModelID: id, Status: "downloading", SizeMB: roundTo(float64(d.snapshot().TotalBytes)/mib, 1)})
		}
	}
	m.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].ModelID < entries[j].ModelID })
	var avail any
	if mem, err := hwinfo.ReadMemory(); err == nil {
		avail = roundTo(float64(mem.AvailableBytes)/mib, 1)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"models":                entries,
		"total_memory_usage_mb": roundTo(total, 1),
		"available_memory_mb":   avail,
		"models_directory":      m.engine.Options().ModelsDir,
		"timestamp":             isoNow(),
	})
}

// exists reports whether id names a model on disk or in memory.
func (m *modelManager) exists(id string) bool {
	if m.engine.LoadedModelByID(id) != nil {
		return true
	}
	_, err := m.engine.FindModel(id)
	return err == nil
}

// ---- load / unload ----

// availableMemory is how much memory a load may use; tests replace it.
var availableMemory = func() (uint64, error) {
	mem, err := hwinfo.ReadMemory()
	if err != nil {
		return 0, err
	}
	return mem.AvailableBytes, nil
}

// checkFits refuses a model whose estimated footprint exceeds available memory.
func checkFits(info inference.LocalModel, available uint64) *loadError {
	need := inference.EstimateLoadBytes(info)
	if need > 0 && uint64(need) > available {
		return &loadError{status: http.StatusInsufficientStorage, msg: fmt.Sprintf("not enough memory to load %s: it needs about %.2f GB (weights %.2f GB plus overhead), %.2f GB is available; unload a model first",
			info.ID, float64(need)/gib, float64(info.SizeBytes)/gib, float64(available)/gib)}
	}
	return nil
}

func (m *modelManager) load(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ModelID     string `json:"model_id"`
		ForceReload bool   `json:"force_reload"`
		AutoWarmup  bool   `json:"auto_warmup"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.ModelID == "" {
		writeAPIError(w, http.StatusBadRequest, "model_id is required", "model_id: field required")
		return
	}
	if !authorizeModel(w, r, req.ModelID) {
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
	lm, loadedNow, err := m.loadChecked(r.Context(), req.ModelID)
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
		"memory_used_gb":    roundTo(float64(lm.Meta.WeightBytes())/gib, 3),
		"load_time_seconds": roundTo(lm.LoadTime.Seconds(), 3),
		"model":             m.entryFor(lm.Info, lm),
		"timestamp":         isoNow(),
	}
	if req.AutoWarmup {
		wr, err := m.runWarmup(r.Context(), lm)
		if err != nil {
			resp["warmup_error"] = err.Error()
		} else {
			resp["warmup"] = wr
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// unload frees a model. Without force it stops admitting requests to it
// (they get 503), waits for the running ones to finish (at most the engine's
// unload timeout) and answers after the wait; if they do not finish in time
// the model keeps serving and the answer is 409. With force, running
// requests end at once with a "model unloaded" error.
func (m *modelManager) unload(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ModelID string `json:"model_id"`
		Force   bool   `json:"force"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.ModelID == "" {
		writeAPIError(w, http.StatusBadRequest, "model_id is required", "model_id: field required")
		return
	}
	if !authorizeModel(w, r, req.ModelID) {
		return
	}
	lm := m.engine.LoadedModelByID(req.ModelID)
	if lm == nil {
		writeModelsError(w, http.StatusNotFound, "model not loaded: "+req.ModelID)
		return
	}
	freed := lm.Meta.FileSize + lm.Meta.PackedBytes
	active := lm.Active()
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
	writeJSON(w, http.StatusOK, map[string]any{
		"status":          "success",
		"model_id":        req.ModelID,
		"message":         msg,
		"force":           req.Force,
		"active_requests": active,
		"waited_seconds":  roundTo(time.Since(start).Seconds(), 3),
		"memory_freed_mb": roundTo(float64(freed)/mib, 1),
		"timestamp":       isoNow(),
	})
}

// ---- downloads ----

// download is one background download task.
type download struct {
	ID        string
	ModelID   string
	Revision  string
	Patterns  []string
	AutoLoad  bool
	Force     bool
	cancel    context.CancelFunc
	done      chan struct{}
	started   time.Time
	lastEvent time.Time

	mu          sync.Mutex
	status      string // pending, downloading, loading, completed, failed, cancelled
	progress    hub.Progress
	firstDone   int64
	firstAt     time.Time
	err         string
	finished    time.Time
	snapshotDir string
	loaded      bool
	loadErr     string
}

// downloadView is the status of a download as the API reports it.
type downloadView struct {
	DownloadID      string   `json:"download_id"`
	TaskID          string   `json:"task_id"`
	ModelID         string   `json:"model_id"`
	Revision        string   `json:"revision"`
	Status          string   `json:"status"`
	Progress        float64  `json:"progress"`
	DownloadedBytes int64    `json:"downloaded_bytes"`
	TotalBytes      int64    `json:"total_bytes"`
	DownloadedGB    float64  `json:"downloaded_gb"`
	TotalGB         float64  `json:"total_gb"`
	FilesDone       int      `json:"files_done"`
	FilesTotal      int      `json:"files_total"`
	SpeedMBps       float64  `json:"speed_mbps"`
	ETASeconds      *float64 `json:"eta_seconds"`
	Error           *string  `json:"error"`
	AutoLoad        bool     `json:"auto_load"`
	Loaded          bool     `json:"loaded"`
	LoadError       *string  `json:"load_error,omitempty"`
	StartedAt       string   `json:"started_at"`
	FinishedAt      *string  `json:"finished_at"`
	Snapshot        string   `json:"snapshot,omitempty"`
}

func (d *download) snapshot() downloadView {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := downloadView{
		DownloadID: d.ID, TaskID: d.ID, ModelID: d.ModelID, Revision: d.Revision, Status: d.status,
		DownloadedBytes: d.progress.Done, TotalBytes: d.progress.Total,
		DownloadedGB: roundTo(float64(d.progress.Done)/1e9, 3), TotalGB: roundTo(float64(d.progress.Total)/1e9, 3),
		FilesDone: d.progress.FilesDone, FilesTotal: d.progress.Files,
		AutoLoad: d.AutoLoad, Loaded: d.loaded, StartedAt: isoTime(d.started), Snapshot: d.snapshotDir,
	}
	if d.progress.Total > 0 {
		v.Progress = roundTo(float64(d.progress.Done)/float64(d.progress.Total), 4)
	}
	if d.status == "completed" {
		v.Progress = 1
	}
	if !d.firstAt.IsZero() && d.status == "downloading" {
		if el := time.Since(d.firstAt).Seconds(); el > 0 {
			rate := float64(d.progress.Done-d.firstDone) / el
			v.SpeedMBps = roundTo(rate/1e6, 3)
			if rate > 0 {
				eta := roundTo(float64(d.progress.Total-d.progress.Done)/rate, 1)
				v.ETASeconds = &eta
			}
		}
	}
	if d.status == "completed" {
		zero := 0.0
		v.ETASeconds = &zero
	}
	if d.err != "" {
		e := d.err
		v.Error = &e
	}
	if d.loadErr != "" {
		e := d.loadErr
		v.LoadError = &e
	}
	if !d.finished.IsZero() {
		f := isoTime(d.finished)
		v.FinishedAt = &f
	}
	return v
}

func (d *download) setStatus(s string) {
	d.mu.Lock()
	d.status = s
	d.mu.Unlock()
}

// freeDisk reports free bytes where downloads land; tests replace it.
var freeDisk = func(dir string) (uint64, error) {
	for p := dir; ; p = filepath.Dir(p) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(p, &st); err == nil {
			return st.Bavail * uint64(st.Bsize), nil
		}
		if p == filepath.Dir(p) {
			return 0, errors.New("no existing folder to measure")
		}
	}
}

func (m *modelManager) startDownload(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ModelID       string   `json:"model_id"`
		AutoLoad      bool     `json:"auto_load"`
		ForceDownload bool     `json:"force_download"`
		Revision      string   `json:"revision"`
		AllowPatterns []string `json:"allow_patterns"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if err := hub.ValidateRepoID(req.ModelID); err != nil {
		writeAPIError(w, http.StatusBadRequest, "model_id must be a Hugging Face repository id (ORG/NAME)", err.Error())
		return
	}
	if !authorizeModel(w, r, req.ModelID) {
		return
	}
	if req.Revision == "" {
		req.Revision = "main"
	}
	if err := hub.ValidateRevision(req.Revision); err != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid revision", err.Error())
		return
	}
	if len(req.AllowPatterns) > 64 {
		writeAPIError(w, http.StatusBadRequest, "at most 64 allow_patterns")
		return
	}
	var estimate *float64
	entry, inCatalog := catalog.Lookup(req.ModelID)
	if inCatalog {
		gb := roundTo(entry.SizeGB(), 2)
		estimate = &gb
		if len(req.AllowPatterns) == 0 && entry.File != "" {
			req.AllowPatterns = []string{entry.File}
		}
	}
	if _, err := hub.ModelFiles(nil, req.AllowPatterns); err != nil && !errors.Is(err, hub.ErrNoFiles) {
		writeAPIError(w, http.StatusBadRequest, "invalid allow_patterns", err.Error())
		return
	}
	dir := m.engine.Options().ModelsDir
	if inCatalog {
		if free, err := freeDisk(dir); err == nil && float64(free) < 1.2*float64(entry.WeightBytes) {
			writeModelsError(w, http.StatusInsufficientStorage, fmt.Sprintf("not enough disk space for %s: about %.2f GB needed with margin, %.2f GB free in %s", req.ModelID, 1.2*entry.SizeGB(), float64(free)/1e9, dir))
			return
		}
	}

	d, started := m.beginDownload(req.ModelID, req.Revision, req.AllowPatterns, req.AutoLoad, req.ForceDownload)
	if !started {
		writeJSON(w, http.StatusOK, map[string]any{
			"success": true, "message": "a download of this model is already running",
			"data": map[string]any{"model_id": req.ModelID, "download_id": d.ID, "task_id": d.ID, "estimated_size_gb": estimate, "status": d.snapshot().Status},
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"success": true,
		"message": "download started",
		"data":    map[string]any{"model_id": req.ModelID, "download_id": d.ID, "task_id": d.ID, "estimated_size_gb": estimate, "status": "pending"},
	})
}

// progressEvery spaces download_progress events.
const progressEvery = 250 * time.Millisecond

func (m *modelManager) runDownload(ctx context.Context, d *download) {
	defer close(d.done)
	defer func() {
		m.mu.Lock()
		if m.active[d.ModelID] == d {
			delete(m.active, d.ModelID)
		}
		m.mu.Unlock()
		m.publish("download_progress", d.snapshot())
	}()
	client := hub.NewFromEnv(m.engine.Options().ModelsDir)
	d.setStatus("downloading")
	m.publish("download_progress", d.snapshot())
	snap, err := client.Download(ctx, d.ModelID, hub.Options{
		Revision: d.Revision, AllowPatterns: d.Patterns, Force: d.Force,
		Progress: func(p hub.Progress) {
			d.mu.Lock()
			if d.firstAt.IsZero() {
				d.firstAt, d.firstDone = time.Now(), p.Done
			}
			d.progress = p
			send := time.Since(d.lastEvent) >= progressEvery
			if send {
				d.lastEvent = time.Now()
			}
			d.mu.Unlock()
			if send {
				m.publish("download_progress", d.snapshot())
			}
		},
	})
	if err != nil {
		d.mu.Lock()
		d.finished = time.Now()
		if errors.Is(err, context.Canceled) {
			d.status, d.err = "cancelled", "cancelled by request"
		} else {
			d.status, d.err = "failed", err.Error()
		}
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	d.snapshotDir = snap.Dir
	if d.progress.Total == 0 { // everything was cached: no progress calls with sizes
		d.progress = hub.Progress{Done: hub.TotalSize(snap.Selected), Total: hub.TotalSize(snap.Selected), Files: len(snap.Selected), FilesDone: len(snap.Selected)}
	}
	d.mu.Unlock()
	if d.AutoLoad {
		d.setStatus("loading")
		m.publish("download_progress", d.snapshot())
		_, _, lerr := m.loadChecked(ctx, d.ModelID)
		d.mu.Lock()
		if lerr != nil {
			d.loadErr = lerr.Error()
		} else {
			d.loaded = true
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.status, d.finished = "completed", time.Now()
	d.mu.Unlock()
}

// keptDownloads bounds how many downloads the manager remembers; the oldest
// finished ones are forgotten first. Callers hold m.mu.
const keptDownloads = 200

func (m *modelManager) forgetOldDownloads() {
	for len(m.downloads) >= keptDownloads {
		var oldest *download
		for _, d := range m.downloads {
			select {
			case <-d.done:
				if oldest == nil || d.started.Before(oldest.started) {
					oldest = d
				}
			default:
			}
		}
		if oldest == nil {
			return
		}
		delete(m.downloads, oldest.ID)
	}
}

func (m *modelManager) getDownload(id string) *download {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.downloads[id]
}

func (m *modelManager) downloadStatus(w http.ResponseWriter, id string) {
	d := m.getDownload(id)
	if d == nil {
		writeAPIError(w, http.StatusNotFound, "no such download: "+id)
		return
	}
	writeJSON(w, http.StatusOK, d.snapshot())
}

// cancelDownload stops a running download and waits until its files are
// cleaned up, so the answer reflects the final state.
func (m *modelManager) cancelDownload(w http.ResponseWriter, id string) {
	d := m.getDownload(id)
	if d == nil {
		writeAPIError(w, http.StatusNotFound, "no such download: "+id)
		return
	}
	select {
	case <-d.done:
		v := d.snapshot()
		writeModelsError(w, http.StatusConflict, "download "+id+" already ended with status "+v.Status)
		return
	default:
	}
	d.cancel()
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
	}
	writeJSON(w, http.StatusOK, d.snapshot())
}

func (m *modelManager) listDownloads(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	list := make([]*download, 0, len(m.downloads))
	for _, d := range m.downloads {
		list = append(list, d)
	}
	m.mu.Unlock()
	views := make([]downloadView, 0, len(list))
	for _, d := range list {
		if modelAllowed(r, d.ModelID) {
			views = append(views, d.snapshot())
		}
	}
	sort.Slice(views, func(i, j int) bool { return views[i].StartedAt > views[j].StartedAt })
	writeJSON(w, http.StatusOK, map[string]any{"downloads": views, "total": len(views), "timestamp": isoNow()})
}

// ---- discover ----

func (m *modelManager) discover(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := catalog.Filter{Category: q.Get("category"), Search: q.Get("search")}
	if f.Category != "" && !catalog.IsCategory(f.Category) {
		writeAPIError(w, http.StatusBadRequest, "unknown category "+strconv.Quote(f.Category), "category: one of "+strings.Join(catalog.Categories, ", "))
		return
	}
	if s := q.Get("size_limit_gb"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			writeAPIError(w, http.StatusBadRequest, "size_limit_gb must be a positive number", "size_limit_gb: "+s)
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
			"size_gb":               roundTo(e.SizeGB(), 3),
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
	writeJSON(w, http.StatusOK, map[string]any{
		"models":       out,
		"total_models": len(out),
		"categories":   catalog.Categories,
		"hardware_compatibility": map[string]any{
			"mlx_support":               true,
			"metal_support":             false,
			"memory_bandwidth_gb_per_s": roundTo(bw.BytesPerSecond/1e9, 1),
			"bandwidth_threads":         bw.Threads,
			"bandwidth_measured_at":     isoTime(bw.Measured),
		},
		"timestamp": isoNow(),
	})
}

// ---- benchmark and warmup ----

// benchPrompts are the benchmark's prompts, cycled over the samples.
var benchPrompts = []string{
	"Write a short story about a lighthouse keeper.",
	"Explain how a refrigerator works.",
	"List five uses for a paperclip.",
	"Write a Python function that reverses a string.",
}

// sampleResult is one timed generation.
type sampleResult struct {
	Prompt              string  `json:"prompt"`
	PromptTokens        int     `json:"prompt_tokens"`
	Tokens              int     `json:"tokens"`
	TimeSeconds         float64 `json:"time_seconds"`
	TokensPerSecond     float64 `json:"tokens_per_second"`
	FirstTokenLatencyMS float64 `json:"first_token_latency_ms"`
	FinishReason        string  `json:"finish_reason"`
}

// timedGenerate runs one generation and times its first token and whole.
func timedGenerate(ctx context.Context, lm *inference.LoadedModel, prompt string, maxTokens int, temperature float32) (sampleResult, error) {
	ids := lm.Tokenizer.Encode(prompt, true)
	res := sampleResult{Prompt: prompt, PromptTokens: len(ids)}
	room := lm.Meta.ContextLength - len(ids)
	if room < 1 {
		return res, fmt.Errorf("prompt of %d tokens does not fit the %d-token context", len(ids), lm.Meta.ContextLength)
	}
	maxTokens = min(maxTokens, room)
	p := sample.DefaultParams()
	p.Temperature = temperature
	start := time.Now()
	ch, err := lm.Generate(ctx, inference.GenerateRequest{Prompt: ids, MaxTokens: maxTokens, Sampling: p})
	if err != nil {
		return res, err
	}
	var first time.Duration
	for ev := range ch {
		if ev.Err != nil {
			return res, ev.Err
		}
		if ev.HasToken {
			if res.Tokens == 0 {
				first = time.Since(start)
			}
			res.Tokens++
		}
		if ev.Finish != "" {
			res.FinishReason = ev.Finish
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	el := time.Since(start)
	res.TimeSeconds = roundTo(el.Seconds(), 4)
	res.FirstTokenLatencyMS = roundTo(float64(first.Microseconds())/1000, 3)
	if el > 0 {
		res.TokensPerSecond = roundTo(float64(res.Tokens)/el.Seconds(), 2)
	}
	return res, nil
}

func processRSS() (uint64, error) {
	p, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		return 0, err
	}
	mi, err := p.MemoryInfo()
	if err != nil {
		return 0, err
	}
	return mi.RSS, nil
}

// benchmarkRecord is a benchmark result as returned and kept in history.
type benchmarkRecord struct {
	ModelID               string         `json:"model_id"`
	Timestamp             string         `json:"timestamp"`
	TokensPerSecond       float64        `json:"tokens_per_second"`
	FirstTokenLatencyMS   float64        `json:"first_token_latency_ms"`
	TotalTokens           int            `json:"total_tokens"`
	TotalTimeSeconds      float64        `json:"total_time_seconds"`
	MemoryUsageMB         *float64       `json:"memory_usage_mb"`
	MemoryDeltaMB         *float64       `json:"memory_delta_mb,omitempty"`
	GPUUtilizationPercent *float64       `json:"gpu_utilization_percent"`
	WarmupTimeMS          *float64       `json:"warmup_time_ms,omitempty"`
	NumSamples            int            `json:"num_samples"`
	MaxTokens             int            `json:"max_tokens"`
	Temperature           float64        `json:"temperature"`
	Threads               int            `json:"threads"`
	Samples               []sampleResult `json:"samples"`
}

func (m *modelManager) benchmark(w http.ResponseWriter, r *http.Request, id string) {
	req := struct {
		NumSamples        int      `json:"num_samples"`
		MaxTokens         int      `json:"max_tokens"`
		Temperature       *float64 `json:"temperature"`
		IncludeMemoryTest *bool    `json:"include_memory_test"`
		IncludeWarmup     *bool    `json:"include_warmup"`
	}{NumSamples: 10, MaxTokens: 100}
	if !decodeBody(w, r, &req) {
		return
	}
	temp := 0.7
	if req.Temperature != nil {
		temp = *req.Temperature
	}
	var bad []string
	if req.NumSamples < 1 || req.NumSamples > 100 {
		bad = append(bad, "num_samples: must be within 1..100")
	}
	if req.MaxTokens < 1 || req.MaxTokens > 4096 {
		bad = append(bad, "max_tokens: must be within 1..4096")
	}
	if temp < 0 || temp > 2 || math.IsNaN(temp) {
		bad = append(bad, "temperature: must be within 0..2")
	}
	if len(bad) > 0 {
		writeAPIError(w, http.StatusBadRequest, "Invalid request data", bad...)
		return
	}
	memTest := req.IncludeMemoryTest == nil || *req.IncludeMemoryTest
	warm := req.IncludeWarmup == nil || *req.IncludeWarmup
	lm, _, err := m.loadChecked(r.Context(), id)
	if err != nil {
		writeLoadError(w, err)
		return
	}
	rec := benchmarkRecord{ModelID: id, NumSamples: req.NumSamples, MaxTokens: req.MaxTokens, Temperature: temp, Threads: m.engine.Options().Threads, Samples: []sampleResult{}}
	var rssBefore uint64
	if memTest {
		rssBefore, _ = processRSS()
	}
	if warm {
		start := time.Now()
		if _, err := timedGenerate(r.Context(), lm, "Hello", 4, 0); err != nil {
			writeModelsError(w, http.StatusInternalServerError, "benchmark warmup failed: "+err.Error())
			return
		}
		ms := roundTo(float64(time.Since(start).Microseconds())/1000, 3)
		rec.WarmupTimeMS = &ms
	}
	var ttft, total float64
	for i := range req.NumSamples {
		s, err := timedGenerate(r.Context(), lm, benchPrompts[i%len(benchPrompts)], req.MaxTokens, float32(temp))
		if err != nil {
			writeModelsError(w, http.StatusInternalServerError, fmt.Sprintf("benchmark sample %d failed: %v", i+1, err))
			return
		}
		rec.Samples = append(rec.Samples, s)
		rec.TotalTokens += s.Tokens
		total += s.TimeSeconds
		ttft += s.FirstTokenLatencyMS
	}
	rec.TotalTimeSeconds = roundTo(total, 4)
	if total > 0 {
		rec.TokensPerSecond = roundTo(float64(rec.TotalTokens)/total, 2)
	}
	rec.FirstTokenLatencyMS = roundTo(ttft/float64(len(rec.Samples)), 3)
	if memTest {
		if after, err := processRSS(); err == nil {
			mb := roundTo(float64(after)/mib, 1)
			delta := roundTo((float64(after)-float64(rssBefore))/mib, 1)
			rec.MemoryUsageMB, rec.MemoryDeltaMB = &mb, &delta
		}
	}
	rec.Timestamp = isoNow()
	if err := appendHistory(rec); err != nil {
		writeModelsError(w, http.StatusInternalServerError, "benchmark ran but its history could not be saved: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// historyPath is where benchmark results are kept, one JSON object a line.
func historyPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "impetus", "benchmarks.jsonl"), nil
}

var historyMu sync.Mutex

func appendHistory(rec benchmarkRecord) error {
	p, err := historyPath()
	if err != nil {
		return err
	}
	historyMu.Lock()
	defer historyMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	line, err := json.Marshal(rec)
	if err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// maxHistory bounds how many past results one answer returns.
const maxHistory = 100

func (m *modelManager) benchmarkHistory(w http.ResponseWriter, id string) {
	out := []benchmarkRecord{}
	p, err := historyPath()
	if err == nil {
		historyMu.Lock()
		data, rerr := os.ReadFile(p)
		historyMu.Unlock()
		if rerr == nil {
			for _, line := range strings.Split(string(data), "\n") {
				var rec benchmarkRecord
				if line == "" || json.Unmarshal([]byte(line), &rec) != nil || rec.ModelID != id {
					continue
				}
				out = append(out, rec)
			}
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > maxHistory {
		out = out[:maxHistory]
	}
	if len(out) == 0 && !m.exists(id) {
		writeAPIError(w, http.StatusNotFound, "model not found and no benchmark history: "+id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"model_id": id, "results": out, "total": len(out)})
}

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
func (m *modelManager) runWarmup(ctx context.Context, lm *inference.LoadedModel) (*warmupResult, error) {
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
		ModelID: lm.Info.ID, WarmedUp: true, Timestamp: isoNow(),
		WarmupTimeMS:     roundTo(float64(time.Since(start).Microseconds())/1000, 3),
		ColdFirstTokenMS: cold.FirstTokenLatencyMS, WarmFirstTokenMS: warm.FirstTokenLatencyMS,
		Prompts: n, loadedAt: lm.LoadedAt,
	}
	m.mu.Lock()
	m.warm[lm.Info.ID] = wr
	m.mu.Unlock()
	return wr, nil
}

func (m *modelManager) warmup(w http.ResponseWriter, r *http.Request, id string) {
	lm, _, err := m.loadChecked(r.Context(), id)
	if err != nil {
		writeLoadError(w, err)
		return
	}
	wr, err := m.runWarmup(r.Context(), lm)
	if err != nil {
		writeModelsError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "warmed", "model_id": id, "warmup": wr})
}

// warmupBenchmark compares a first token now with the one measured cold,
// warming the model first if it has not been.
func (m *modelManager) warmupBenchmark(w http.ResponseWriter, r *http.Request, id string) {
	lm, _, err := m.loadChecked(r.Context(), id)
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
	warmMS := roundTo(sum/runs, 3)
	var speedup *float64
	if warmMS > 0 {
		s := roundTo(wr.ColdFirstTokenMS/warmMS, 2)
		speedup = &s
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"model_id": id, "cold_first_token_ms": wr.ColdFirstTokenMS, "warm_first_token_ms": warmMS,
		"speedup": speedup, "runs": runs, "timestamp": isoNow(),
	})
}

func (m *modelManager) warmupStatus(w http.ResponseWriter, r *http.Request) {
	out := map[string]*warmupResult{}
	m.mu.Lock()
	for id, wr := range m.warm {
		if lm := m.engine.LoadedModelByID(id); lm != nil && wr.loadedAt.Equal(lm.LoadedAt) && modelAllowed(r, id) {
			out[id] = wr
		}
	}
	m.mu.Unlock()
	loaded := []string{}
	for _, id := range m.engine.Loaded() {
		if modelAllowed(r, id) {
			loaded = append(loaded, id)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": out, "loaded_models": loaded, "timestamp": isoNow()})
}
