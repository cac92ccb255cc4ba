package models

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/impetusllm/impetus/caddymodule/auth"
	"github.com/impetusllm/impetus/caddymodule/httperr"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/catalog"
	"github.com/impetusllm/impetus/inference/hub"
)

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

// DownloadView is the status of a download as the API reports it.
type DownloadView struct {
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

func (d *download) snapshot() DownloadView {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := DownloadView{
		DownloadID: d.ID, TaskID: d.ID, ModelID: d.ModelID, Revision: d.Revision, Status: d.status,
		DownloadedBytes: d.progress.Done, TotalBytes: d.progress.Total,
		DownloadedGB: httperr.RoundTo(float64(d.progress.Done)/1e9, 3), TotalGB: httperr.RoundTo(float64(d.progress.Total)/1e9, 3),
		FilesDone: d.progress.FilesDone, FilesTotal: d.progress.Files,
		AutoLoad: d.AutoLoad, Loaded: d.loaded, StartedAt: httperr.ISOTime(d.started), Snapshot: d.snapshotDir,
	}
	if d.progress.Total > 0 {
		v.Progress = httperr.RoundTo(float64(d.progress.Done)/float64(d.progress.Total), 4)
	}
	if d.status == "completed" {
		v.Progress = 1
	}
	if !d.firstAt.IsZero() && d.status == "downloading" {
		if el := time.Since(d.firstAt).Seconds(); el > 0 {
			rate := float64(d.progress.Done-d.firstDone) / el
			v.SpeedMBps = httperr.RoundTo(rate/1e6, 3)
			if rate > 0 {
				eta := httperr.RoundTo(float64(d.progress.Total-d.progress.Done)/rate, 1)
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
		f := httperr.ISOTime(d.finished)
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

func (m *Manager) startDownload(w http.ResponseWriter, r *http.Request) {
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
		httperr.WriteAPI(w, http.StatusBadRequest, "model_id must be a Hugging Face repository id (ORG/NAME)", err.Error())
		return
	}
	if !auth.AuthorizeModel(w, r, req.ModelID) {
		return
	}
	if req.Revision == "" {
		req.Revision = "main"
	}
	if err := hub.ValidateRevision(req.Revision); err != nil {
		httperr.WriteAPI(w, http.StatusBadRequest, "invalid revision", err.Error())
		return
	}
	if len(req.AllowPatterns) > 64 {
		httperr.WriteAPI(w, http.StatusBadRequest, "at most 64 allow_patterns")
		return
	}
	var estimate *float64
	entry, inCatalog := catalog.Lookup(req.ModelID)
	if inCatalog {
		gb := httperr.RoundTo(entry.SizeGB(), 2)
		estimate = &gb
		if len(req.AllowPatterns) == 0 && entry.File != "" {
			req.AllowPatterns = []string{entry.File}
		}
	}
	if _, err := hub.ModelFiles(nil, req.AllowPatterns); err != nil && !errors.Is(err, hub.ErrNoFiles) {
		httperr.WriteAPI(w, http.StatusBadRequest, "invalid allow_patterns", err.Error())
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
		httperr.WriteJSON(w, http.StatusOK, map[string]any{
			"success": true, "message": "a download of this model is already running",
			"data": map[string]any{"model_id": req.ModelID, "download_id": d.ID, "task_id": d.ID, "estimated_size_gb": estimate, "status": d.snapshot().Status},
		})
		return
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{
		"success": true,
		"message": "download started",
		"data":    map[string]any{"model_id": req.ModelID, "download_id": d.ID, "task_id": d.ID, "estimated_size_gb": estimate, "status": "pending"},
	})
}

// progressEvery spaces download_progress events.
const progressEvery = 250 * time.Millisecond

func (m *Manager) runDownload(ctx context.Context, d *download) {
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
		_, _, lerr := m.LoadChecked(ctx, d.ModelID)
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

func (m *Manager) forgetOldDownloads() {
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

func (m *Manager) getDownload(id string) *download {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.downloads[id]
}

func (m *Manager) downloadStatus(w http.ResponseWriter, id string) {
	d := m.getDownload(id)
	if d == nil {
		httperr.WriteAPI(w, http.StatusNotFound, "no such download: "+id)
		return
	}
	httperr.WriteJSON(w, http.StatusOK, d.snapshot())
}

// cancelDownload stops a running download and waits until its files are
// cleaned up, so the answer reflects the final state.
func (m *Manager) cancelDownload(w http.ResponseWriter, id string) {
	d := m.getDownload(id)
	if d == nil {
		httperr.WriteAPI(w, http.StatusNotFound, "no such download: "+id)
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
	httperr.WriteJSON(w, http.StatusOK, d.snapshot())
}

func (m *Manager) listDownloads(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	list := make([]*download, 0, len(m.downloads))
	for _, d := range m.downloads {
		list = append(list, d)
	}
	m.mu.Unlock()
	views := make([]DownloadView, 0, len(list))
	for _, d := range list {
		if auth.ModelAllowed(r, d.ModelID) {
			views = append(views, d.snapshot())
		}
	}
	sort.Slice(views, func(i, j int) bool { return views[i].StartedAt > views[j].StartedAt })
	httperr.WriteJSON(w, http.StatusOK, map[string]any{"downloads": views, "total": len(views), "timestamp": httperr.ISONow()})
}

// autoDownload fetches a missing model when the app's auto_download is on
// and id is a hub repository id, waiting at most auto_download_wait (the
// download goes on after that; the caller gets a 503 with Retry-After).
func (m *Manager) autoDownload(ctx context.Context, id string) (inference.LocalModel, error) {
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
		return inference.LocalModel{}, &LoadError{status: http.StatusServiceUnavailable, retryAfter: retryAfterFor(v),
			msg: fmt.Sprintf("model %s is downloading (%d of %d bytes); retry later or follow GET /api/models/download/%s", id, v.DownloadedBytes, v.TotalBytes, d.ID)}
	case <-ctx.Done():
		return inference.LocalModel{}, loadFailure(ctx.Err())
	}
	if v := d.snapshot(); v.Status != "completed" {
		msg := "downloading " + id + " failed"
		if v.Error != nil {
			msg += ": " + *v.Error
		}
		return inference.LocalModel{}, &LoadError{status: http.StatusBadGateway, msg: msg}
	}
	info, err := m.engine.FindModel(id)
	if err != nil {
		return inference.LocalModel{}, &LoadError{status: http.StatusInternalServerError, msg: fmt.Sprintf("%s was downloaded but is not a runnable model: %v", id, err), cause: err}
	}
	return info, nil
}

// retryAfterFor guesses when a download will be done, from its rate so far,
// within 1 s to 5 min.
func retryAfterFor(v DownloadView) int {
	s := 5
	if v.ETASeconds != nil {
		s = int(*v.ETASeconds) + 1
	}
	return min(max(s, 1), 300)
}

// beginDownload starts a download of a hub repository, or returns the one
// already running for it (started false).
func (m *Manager) beginDownload(modelID, revision string, patterns []string, autoLoad, force bool) (d *download, started bool) {
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
