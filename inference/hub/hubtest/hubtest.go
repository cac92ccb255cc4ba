// Package hubtest is a stand-in Hugging Face hub for tests: it serves the
// routes and headers the hub client uses (the revision listing with blob
// metadata, /resolve/ with redirects for LFS files, ETag, X-Repo-Commit,
// X-Linked-Size, Range) from repositories held in memory, and can cut
// connections, corrupt contents, throttle and demand a token.
package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// File is one file of a fake repository.
type File struct {
	Name    string
	Content []byte
	// LFS files are listed with an lfs block and served through a redirect.
	LFS bool
}

// Repo is a fake repository at one commit.
type Repo struct {
	ID     string
	Commit string // 40 hex
	Branch string // default "main"
	Files  []File
	// Private repositories answer 401 unless the token matches.
	Private bool
}

// Hub is the running fake hub.
type Hub struct {
	*httptest.Server
	Token string // the token private repositories accept

	mu       sync.Mutex
	repos    map[string]*Repo
	cutOnce  map[string]int64 // file name -> cut the body after this many bytes, once
	corrupt  map[string]bool  // file name -> serve flipped bytes
	delay    time.Duration    // pause per 4 KiB chunk
	gets     map[string]int   // file name -> content requests
	ranges   []string         // Range headers received
	badNames []string         // extra names listed without content
	commit   string           // X-Repo-Commit override
	noRange  bool             // answer Range requests with the whole file
}

// IgnoreRange makes the hub answer Range requests with 200 and the whole
// file, as servers without range support do.
func (h *Hub) IgnoreRange() { h.mu.Lock(); h.noRange = true; h.mu.Unlock() }

// ServeCommit makes /resolve/ answers name another commit in X-Repo-Commit,
// as a hub that moved between listing and download would.
func (h *Hub) ServeCommit(c string) { h.mu.Lock(); h.commit = c; h.mu.Unlock() }

// New starts a fake hub serving repos.
func New(repos ...*Repo) *Hub {
	h := &Hub{repos: map[string]*Repo{}, cutOnce: map[string]int64{}, corrupt: map[string]bool{}, gets: map[string]int{}}
	for _, r := range repos {
		h.Add(r)
	}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	return h
}

// Add publishes a repository.
func (h *Hub) Add(r *Repo) {
	if r.Branch == "" {
		r.Branch = "main"
	}
	h.mu.Lock()
	h.repos[r.ID] = r
	h.mu.Unlock()
}

// CutOnce makes the next transfer of name stop after n bytes.
func (h *Hub) CutOnce(name string, n int64) { h.mu.Lock(); h.cutOnce[name] = n; h.mu.Unlock() }

// Corrupt makes every transfer of name deliver wrong bytes of the right length.
func (h *Hub) Corrupt(name string) { h.mu.Lock(); h.corrupt[name] = true; h.mu.Unlock() }

// Throttle pauses d after every 4 KiB sent.
func (h *Hub) Throttle(d time.Duration) { h.mu.Lock(); h.delay = d; h.mu.Unlock() }

// ListExtra adds names to every listing (for path traversal tests).
func (h *Hub) ListExtra(names ...string) {
	h.mu.Lock()
	h.badNames = append(h.badNames, names...)
	h.mu.Unlock()
}

// Gets reports how many content requests name received.
func (h *Hub) Gets(name string) int { h.mu.Lock(); defer h.mu.Unlock(); return h.gets[name] }

// Ranges lists the Range headers received so far.
func (h *Hub) Ranges() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ranges...)
}

// SHA256 and BlobID are the hashes the hub lists for content.
func SHA256(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// BlobID is the git blob id of content.
func BlobID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// ETag is what the hub sends for a file: the LFS sha256 or the git blob id.
func (f File) ETag() string {
	if f.LFS {
		return SHA256(f.Content)
	}
	return BlobID(f.Content)
}

func (h *Hub) authorized(r *http.Request, repo *Repo) bool {
	return !repo.Private || (h.Token != "" && r.Header.Get("Authorization") == "Bearer "+h.Token)
}

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/api/models/"):
		h.serveInfo(w, r, strings.TrimPrefix(p, "/api/models/"))
	case strings.HasPrefix(p, "/cdn/"):
		h.serveCDN(w, r, strings.TrimPrefix(p, "/cdn/"))
	default:
		h.serveResolve(w, r, strings.TrimPrefix(p, "/"))
	}
}

func (h *Hub) lookup(id string) *Repo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.repos[id]
}

func notFound(w http.ResponseWriter, msg string) {
	w.Header().Set("X-Error-Code", "RepoNotFound")
	w.Header().Set("X-Error-Message", msg)
	http.Error(w, `{"error":"`+msg+`"}`, http.StatusNotFound)
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("X-Error-Message", "Invalid credentials in Authorization header")
	http.Error(w, `{"error":"Invalid credentials in Authorization header"}`, http.StatusUnauthorized)
}

// serveInfo answers /api/models/{org}/{name}/revision/{rev}.
func (h *Hub) serveInfo(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) != 4 || parts[2] != "revision" {
		notFound(w, "no such route")
		return
	}
	repo := h.lookup(parts[0] + "/" + parts[1])
	if repo == nil {
		unauthorized(w) // the hub hides missing repositories from anonymous callers
		return
	}
	if !h.authorized(r, repo) {
		unauthorized(w)
		return
	}
	rev := strings.ReplaceAll(parts[3], "%2F", "/")
	if rev != repo.Branch && rev != repo.Commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		notFound(w, "Invalid rev id: "+rev)
		return
	}
	type lfs struct {
		SHA256 string `json:"sha256"`
		Size   int    `json:"size"`
	}
	type sibling struct {
		RFilename string `json:"rfilename"`
		Size      int    `json:"size"`
		BlobID    string `json:"blobId"`
		LFS       *lfs   `json:"lfs,omitempty"`
	}
	var sibs []sibling
	for _, f := range repo.Files {
		s := sibling{RFilename: f.Name, Size: len(f.Content), BlobID: BlobID(f.Content)}
		if f.LFS {
			s.LFS = &lfs{SHA256: SHA256(f.Content), Size: len(f.Content)}
			s.BlobID = BlobID([]byte("version https://git-lfs.github.com/spec/v1\noid sha256:" + SHA256(f.Content)))
		}
		sibs = append(sibs, s)
	}
	h.mu.Lock()
	for _, n := range h.badNames {
		sibs = append(sibs, sibling{RFilename: n, Size: 1, BlobID: BlobID([]byte("x"))})
	}
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"id": repo.ID, "modelId": repo.ID, "sha": repo.Commit, "siblings": sibs})
}

// serveResolve answers /{org}/{name}/resolve/{rev}/{file}: git files
// directly, LFS files with a 302 to /cdn/.
func (h *Hub) serveResolve(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 5)
	if len(parts) != 5 || parts[2] != "resolve" {
		notFound(w, "no such route")
		return
	}
	repo := h.lookup(parts[0] + "/" + parts[1])
	if repo == nil || !h.authorized(r, repo) {
		unauthorized(w)
		return
	}
	if parts[3] != repo.Branch && parts[3] != repo.Commit {
		notFound(w, "Invalid rev id: "+parts[3])
		return
	}
	var file *File
	for i := range repo.Files {
		if repo.Files[i].Name == parts[4] {
			file = &repo.Files[i]
		}
	}
	if file == nil {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		notFound(w, "Entry not found")
		return
	}
	h.mu.Lock()
	served := h.commit
	h.mu.Unlock()
	if served == "" {
		served = repo.Commit
	}
	w.Header().Set("X-Repo-Commit", served)
	w.Header().Set("ETag", `"`+file.ETag()+`"`)
	if file.LFS {
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(file.Content)))
		w.Header().Set("X-Linked-Etag", `"`+file.ETag()+`"`)
		http.Redirect(w, r, "/cdn/"+repo.ID+"/"+file.Name, http.StatusFound)
		return
	}
	h.sendContent(w, r, file)
}

// serveCDN answers the redirect target of LFS files.
func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 {
		notFound(w, "no such object")
		return
	}
	repo := h.lookup(parts[0] + "/" + parts[1])
	if repo == nil {
		notFound(w, "no such object")
		return
	}
	for i := range repo.Files {
		if repo.Files[i].Name == parts[2] {
			h.sendContent(w, r, &repo.Files[i])
			return
		}
	}
	notFound(w, "no such object")
}

// sendContent honours "Range: bytes=N-", cuts and corruption.
func (h *Hub) sendContent(w http.ResponseWriter, r *http.Request, f *File) {
	h.mu.Lock()
	h.gets[f.Name]++
	cut, doCut := h.cutOnce[f.Name]
	delete(h.cutOnce, f.Name)
	bad := h.corrupt[f.Name]
	delay := h.delay
	noRange := h.noRange
	if rg := r.Header.Get("Range"); rg != "" {
		h.ranges = append(h.ranges, rg)
	}
	h.mu.Unlock()

	body := f.Content
	if bad {
		body = append([]byte(nil), body...)
		for i := range body {
			body[i] ^= 0xff
		}
	}
	start := 0
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" && !noRange {
		spec, ok := strings.CutPrefix(rg, "bytes=")
		from, _, _ := strings.Cut(spec, "-")
		n, err := strconv.Atoi(from)
		if !ok || err != nil || n < 0 || n >= len(body) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(body)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start, status = n, http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(body)-1, len(body)))
	}
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)-start))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(status)
	rest := body[start:]
	if doCut && int(cut) < len(rest) {
		w.Write(rest[:cut])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		// Drop the connection mid-body.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	}
	for len(rest) > 0 {
		n := min(4096, len(rest))
		if _, err := w.Write(rest[:n]); err != nil {
			return
		}
		rest = rest[n:]
		if delay > 0 {
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
	}
}
