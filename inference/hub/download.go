package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options shape one Download.
type Options struct {
	// Revision is a branch, tag or commit; default "main".
	Revision string
	// AllowPatterns selects files by glob (path.Match on the full name or
	// the base name), e.g. "*Q4_K_M.gguf". Empty means ModelFiles' choice.
	AllowPatterns []string
	// Force downloads every selected file again even if its blob is cached
	// or partly downloaded.
	Force bool
	// KeepPartial keeps what a failed or cancelled download fetched (whole
	// blobs and blobs/*.incomplete), so that the next Download of the
	// repository resumes where this one stopped instead of starting over.
	// Without it, a failure removes what the call created.
	KeepPartial bool
	// Progress, when set, is called as bytes arrive (from several
	// goroutines, serialised by the client).
	Progress func(Progress)
}

// Progress reports a download's state.
type Progress struct {
	// Done counts bytes in place, including blobs already cached.
	Done  int64
	Total int64
	// Files and FilesDone count the selected files.
	Files, FilesDone int
}

// Snapshot is a completed download.
type Snapshot struct {
	Repo
	// Dir is the snapshot folder, snapshots/<commit>.
	Dir string `json:"dir"`
	// Selected lists the files linked into Dir by this download.
	Selected []File `json:"selected"`
	// Fetched counts the bytes transferred (0 when everything was cached).
	Fetched int64 `json:"fetched"`
}

// modelFileNames are the non-weight files a model needs.
var modelFileNames = map[string]bool{
	"config.json": true, "generation_config.json": true,
	"tokenizer.json": true, "tokenizer_config.json": true, "tokenizer.model": true,
	"special_tokens_map.json": true, "added_tokens.json": true,
	"vocab.json": true, "merges.txt": true,
	"chat_template.jinja": true, "chat_template.json": true,
	// sentence-transformers folders (embedding models): the module list,
	// the maximum sequence length and the prompts; the pooling config lives
	// in a numbered sub-folder (see poolingConfig).
	"modules.json": true, "sentence_bert_config.json": true,
	"config_sentence_transformers.json": true,
}

// poolingConfig reports whether name is a sentence-transformers pooling
// module's config, such as "1_Pooling/config.json": the one sub-folder file
// an embedding model needs.
func poolingConfig(name string) bool {
	dir, file, ok := strings.Cut(name, "/")
	if !ok || file != "config.json" {
		return false
	}
	num, mod, ok := strings.Cut(dir, "_")
	if !ok || mod != "Pooling" || num == "" {
		return false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ModelFiles chooses the files to fetch. With patterns, those matching any
// pattern. Without, the tokenizer/config files plus safetensors weights and
// their index; a repository without safetensors must hold exactly one GGUF
// file, else the caller has to pick one with a pattern.
func ModelFiles(files []File, patterns []string) ([]File, error) {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	var out []File
	if len(patterns) > 0 {
		for _, f := range files {
			for _, p := range patterns {
				full, _ := path.Match(p, f.Name)
				base, _ := path.Match(p, path.Base(f.Name))
				if full || base {
					out = append(out, f)
					break
				}
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: no file matches %q", ErrNoFiles, patterns)
		}
		return out, nil
	}
	var ggufs []File
	weights := false
	for _, f := range files {
		name := strings.ToLower(f.Name)
		switch {
		case poolingConfig(f.Name):
			out = append(out, f)
		case strings.Contains(f.Name, "/"):
			// Sub-folders hold other variants or training artefacts.
		case modelFileNames[f.Name]:
			out = append(out, f)
		case strings.HasSuffix(name, ".safetensors"):
			weights = true
			out = append(out, f)
		case strings.HasSuffix(name, ".safetensors.index.json"):
			out = append(out, f)
		case strings.HasSuffix(name, ".gguf"):
			ggufs = append(ggufs, f)
		}
	}
	if weights {
		return out, nil
	}
	switch len(ggufs) {
	case 0:
		return nil, fmt.Errorf("%w: the repository holds neither safetensors nor GGUF weights", ErrNoFiles)
	case 1:
		return append(out, ggufs[0]), nil
	}
	names := make([]string, len(ggufs))
	for i, g := range ggufs {
		names[i] = g.Name
	}
	return nil, fmt.Errorf("%w: the repository holds %d GGUF files (%s); choose one with a pattern such as \"*Q4_K_M.gguf\"", ErrNoFiles, len(ggufs), strings.Join(names, ", "))
}

// repoLocks serialises downloads of one repository within the process, so a
// second concurrent request waits and then finds the blobs in place.
var repoLocks sync.Map // cache folder -> *sync.Mutex

func lockRepo(dir string) func() {
	v, _ := repoLocks.LoadOrStore(dir, new(sync.Mutex))
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Download fetches a repository revision into the cache and returns its
// snapshot. It resolves the revision, downloads the selected files in
// parallel (resuming cut transfers with Range requests), verifies each one's
// size and hash, and only then links them into snapshots/<commit> and writes
// refs/<revision>. On failure or cancellation it removes what it created.
func (c *Client) Download(ctx context.Context, repoID string, opts Options) (snap Snapshot, err error) {
	if opts.Revision == "" {
		opts.Revision = "main"
	}
	if err := ValidateRepoID(repoID); err != nil {
		return Snapshot{}, err
	}
	if err := ValidateRevision(opts.Revision); err != nil {
		return Snapshot{}, err
	}
	if c.CacheDir == "" {
		return Snapshot{}, errors.New("hub client has no cache folder")
	}
	repoDir := filepath.Join(c.CacheDir, RepoFolderName(repoID))
	unlock := lockRepo(repoDir)
	defer unlock()
	if c.Offline {
		return c.cachedSnapshot(repoID, opts.Revision)
	}
	repo, err := c.Resolve(ctx, repoID, opts.Revision)
	if err != nil {
		return Snapshot{}, err
	}
	files, err := ModelFiles(repo.Files, opts.AllowPatterns)
	if err != nil {
		return Snapshot{}, fmt.Errorf("%s@%s: %w", repoID, opts.Revision, err)
	}

	_, statErr := os.Lstat(repoDir)
	createdRepo := errors.Is(statErr, fs.ErrNotExist)
	blobs := filepath.Join(repoDir, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return Snapshot{}, fmt.Errorf("cache folder: %w", err)
	}
	var created []string // blobs this call added
	var createdMu sync.Mutex
	defer func() {
		if err == nil || opts.KeepPartial {
			return
		}
		if createdRepo {
			os.RemoveAll(repoDir)
			return
		}
		for _, p := range created {
			os.Remove(p)
		}
	}()

	// What is missing, and is there room for it?
	// Identical contents share one blob: fetch each blob once.
	var uniq []File
	seenBlob := map[string]bool{}
	for _, f := range files {
		if !seenBlob[f.blobName()] {
			seenBlob[f.blobName()] = true
			uniq = append(uniq, f)
		}
	}
	var need []File
	var present int64
	for _, f := range uniq {
		if !opts.Force && blobComplete(filepath.Join(blobs, f.blobName()), f.Size) {
			present += f.Size
			continue
		}
		need = append(need, f)
	}
	if err := c.checkSpace(blobs, TotalSize(need)); err != nil {
		return Snapshot{}, err
	}

	tr := &tracker{total: TotalSize(uniq), files: len(uniq), filesDone: len(uniq) - len(need), report: opts.Progress}
	tr.done.Store(present)
	tr.emit()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parallel := c.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	var fetched atomic.Int64
	for _, f := range need {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errOnce.Do(func() { firstErr = ctx.Err() })
				return
			}
			defer func() { <-sem }()
			existed := blobComplete(filepath.Join(blobs, f.blobName()), f.Size)
			n, err := c.fetchBlob(ctx, repo, f, blobs, tr, opts)
			fetched.Add(n)
			if err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
				return
			}
			if !existed {
				createdMu.Lock()
				created = append(created, filepath.Join(blobs, f.blobName()))
				createdMu.Unlock()
			}
			tr.fileDone()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return Snapshot{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	dir, err := writeSnapshot(repoDir, repo.Commit, files)
	if err != nil {
		return Snapshot{}, err
	}
	if opts.Revision != repo.Commit {
		if err := writeRef(repoDir, opts.Revision, repo.Commit); err != nil {
			return Snapshot{}, err
		}
	}
	return Snapshot{Repo: repo, Dir: dir, Selected: files, Fetched: fetched.Load()}, nil
}

// cachedSnapshot serves an offline request from refs/ and snapshots/.
func (c *Client) cachedSnapshot(repoID, revision string) (Snapshot, error) {
	repoDir := filepath.Join(c.CacheDir, RepoFolderName(repoID))
	commit := revision
	if !isCommit(revision) {
		ref, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(revision)))
		if err != nil {
			return Snapshot{}, fmt.Errorf("%w: %s@%s", ErrOffline, repoID, revision)
		}
		commit = strings.TrimSpace(string(ref))
		if !isCommit(commit) {
			return Snapshot{}, fmt.Errorf("%w: refs/%s of %s holds no commit id", ErrOffline, revision, repoID)
		}
	}
	dir := filepath.Join(repoDir, "snapshots", commit)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return Snapshot{}, fmt.Errorf("%w: %s@%s", ErrOffline, repoID, revision)
	}
	return Snapshot{Repo: Repo{ID: repoID, Revision: revision, Commit: commit}, Dir: dir}, nil
}

func blobComplete(p string, size int64) bool {
	st, err := os.Lstat(p)
	return err == nil && st.Mode().IsRegular() && st.Size() == size
}

func (c *Client) checkSpace(dir string, need int64) error {
	if need == 0 {
		return nil
	}
	free := c.FreeSpace
	if free == nil {
		free = statfsFree
	}
	avail, err := free(dir)
	if err != nil {
		return nil // unknown: let writes report a full disk
	}
	if uint64(need) > avail {
		return fmt.Errorf("%w: need %d bytes in %s, %d free", ErrInsufficientStorage, need, dir, avail)
	}
	return nil
}

func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// tracker adds up progress from parallel transfers and reports it.
type tracker struct {
	done      atomic.Int64
	total     int64
	files     int
	filesDone int
	mu        sync.Mutex
	report    func(Progress)
}

func (t *tracker) add(n int64) {
	t.done.Add(n)
	t.emit()
}

func (t *tracker) fileDone() {
	t.mu.Lock()
	t.filesDone++
	t.mu.Unlock()
	t.emit()
}

func (t *tracker) emit() {
	if t.report == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.report(Progress{Done: t.done.Load(), Total: t.total, Files: t.files, FilesDone: t.filesDone})
}

// fetchBlob downloads one file into blobs/<id>.incomplete, resuming after cut
// connections and from what an earlier Download left there (unless
// opts.Force), verifies it and renames it into place. It returns the bytes
// transferred. The .incomplete file survives a cancellation or a transfer
// error when opts.KeepPartial is set; one that fails verification never does.
func (c *Client) fetchBlob(ctx context.Context, repo Repo, f File, blobs string, tr *tracker, opts Options) (fetched int64, err error) {
	final := filepath.Join(blobs, f.blobName())
	tmp := final + ".incomplete"
	flags := os.O_CREATE | os.O_RDWR
	if opts.Force {
		flags |= os.O_TRUNC
	}
	out, err := os.OpenFile(tmp, flags, 0o644)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.Name, err)
	}
	ok := false
	defer func() {
		out.Close()
		if !ok && (!opts.KeepPartial || errors.Is(err, ErrChecksum)) {
			os.Remove(tmp)
		}
	}()
	retries := c.Retries
	if retries <= 0 {
		retries = 5
	}
	// The hash is computed as bytes are written, so a large file is not
	// read back; a restart from byte zero resets it. Bytes left by an
	// earlier Download are read once, to resume the hash.
	h := newFileHash(f)
	have, err := resumePartial(out, f, h)
	if err != nil {
		return 0, fmt.Errorf("%s: resuming: %w", f.Name, err)
	}
	tr.add(have)
	for attempt := 0; ; attempt++ {
		n, err := c.transfer(ctx, repo, f, out, have, tr, &h)
		have += n
		fetched += n
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fetched, ctx.Err()
		}
		var perm permanentError
		if errors.As(err, &perm) || attempt >= retries {
			return fetched, fmt.Errorf("downloading %s: %w", f.Name, err)
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		case <-ctx.Done():
			return fetched, ctx.Err()
		}
	}
	if have != f.Size {
		return fetched, fmt.Errorf("downloading %s: got %d bytes, the hub lists %d: %w", f.Name, have, f.Size, ErrChecksum)
	}
	if err := out.Sync(); err != nil {
		return fetched, fmt.Errorf("%s: %w", f.Name, diskErr(err))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.blobName() {
		return fetched, fmt.Errorf("%w: %s has hash %s, the hub lists %s", ErrChecksum, f.Name, got, f.blobName())
	}
	if err := out.Close(); err != nil {
		return fetched, fmt.Errorf("%s: %w", f.Name, diskErr(err))
	}
	if err := os.Rename(tmp, final); err != nil {
		return fetched, fmt.Errorf("%s: %w", f.Name, err)
	}
	ok = true
	return fetched, nil
}

// resumePartial hashes the bytes an earlier download left in out and leaves
// out positioned after them. A partial file longer than f starts over.
func resumePartial(out *os.File, f File, h hash.Hash) (int64, error) {
	st, err := out.Stat()
	if err != nil {
		return 0, err
	}
	have := st.Size()
	if have > f.Size {
		if err := out.Truncate(0); err != nil {
			return 0, diskErr(err)
		}
		have = 0
	}
	if have > 0 {
		if _, err := io.Copy(h, io.LimitReader(out, have)); err != nil {
			return 0, err
		}
	}
	if _, err := out.Seek(have, io.SeekStart); err != nil {
		return 0, err
	}
	return have, nil
}

// permanentError marks failures that a retry cannot fix.
type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

// transfer requests the file from byte offset have on and appends to out.
func (c *Client) transfer(ctx context.Context, repo Repo, f File, out *os.File, have int64, tr *tracker, h *hash.Hash) (int64, error) {
	if have == f.Size && f.Size > 0 {
		return 0, nil
	}
	u := c.endpoint() + "/" + repo.ID + "/resolve/" + repo.Commit + "/" + escapePath(f.Name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, permanentError{err}
	}
	c.authorize(req)
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := checkHeaders(resp, repo, f); err != nil {
		return 0, permanentError{err}
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return 0, permanentError{fmt.Errorf("hub answered range %q for a request from byte %d", resp.Header.Get("Content-Range"), have)}
		}
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // the server ignored Range: start over
			if err := out.Truncate(0); err != nil {
				return 0, permanentError{diskErr(err)}
			}
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return 0, permanentError{err}
			}
			tr.add(-have)
			*h = newFileHash(f)
			return c.copyBody(resp.Body, out, *h, f, 0, tr, -have)
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return 0, permanentError{fmt.Errorf("hub refused range from byte %d of %d", have, f.Size)}
	default:
		if err := statusError(resp, repo.ID); err != nil {
			if resp.StatusCode >= 500 {
				return 0, err
			}
			return 0, permanentError{err}
		}
	}
	return c.copyBody(resp.Body, out, *h, f, have, tr, 0)
}

// checkHeaders compares what the hub says about the file it is sending with
// the listing: X-Repo-Commit (the commit served) and ETag (the blob id), when
// the final response carries them. A redirected LFS response comes from the
// storage host, which sends neither in the hub's form.
func checkHeaders(resp *http.Response, repo Repo, f File) error {
	if resp.StatusCode >= 300 {
		return nil
	}
	if c := resp.Header.Get("X-Repo-Commit"); c != "" && c != repo.Commit {
		return fmt.Errorf("hub served commit %s of %s, the listing named %s", c, f.Name, repo.Commit)
	}
	if resp.Request != nil && resp.Request.Response == nil { // not redirected
		etag := strings.Trim(strings.TrimPrefix(resp.Header.Get("ETag"), "W/"), `"`)
		if etag != "" && isHex(etag, len(etag)) && (len(etag) == 40 || len(etag) == 64) && etag != f.blobName() {
			return fmt.Errorf("%w: hub sent %s with ETag %s, the listing names %s", ErrChecksum, f.Name, etag, f.blobName())
		}
	}
	return nil
}

// copyBody appends body to out, never past the listed size. offset is what
// the returned count is relative to (negative after a restart from zero).
func (c *Client) copyBody(body io.Reader, out *os.File, h hash.Hash, f File, have int64, tr *tracker, offset int64) (int64, error) {
	buf := make([]byte, 256<<10)
	written := int64(0)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if have+written+int64(n) > f.Size {
				return offset + written, permanentError{fmt.Errorf("hub sent more than the listed %d bytes: %w", f.Size, ErrChecksum)}
			}
			if _, err := out.Write(buf[:n]); err != nil {
				return offset + written, permanentError{diskErr(err)}
			}
			h.Write(buf[:n])
			written += int64(n)
			tr.add(int64(n))
		}
		if rerr == io.EOF {
			if have+written < f.Size {
				return offset + written, io.ErrUnexpectedEOF
			}
			return offset + written, nil
		}
		if rerr != nil {
			return offset + written, rerr
		}
	}
}

func diskErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", ErrInsufficientStorage, err)
	}
	return err
}

func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

func escapePath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// newFileHash starts the hash the hub lists for f: SHA-256 for LFS files,
// the git blob SHA-1 (over "blob SIZE\x00" + content) otherwise.
func newFileHash(f File) hash.Hash {
	if f.SHA256 != "" {
		return sha256.New()
	}
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", f.Size)
	return h
}

// writeSnapshot links every file into snapshots/<commit>: a new snapshot is
// built in a temporary folder and renamed into place, so it appears whole;
// an existing one gets each link replaced atomically.
func writeSnapshot(repoDir, commit string, files []File) (string, error) {
	snaps := filepath.Join(repoDir, "snapshots")
	if err := os.MkdirAll(snaps, 0o755); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	final := filepath.Join(snaps, commit)
	if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
		// Built beside snapshots/, not in it, so no scan sees it half made;
		// its relative links resolve once it is renamed into place.
		tmp, err := os.MkdirTemp(repoDir, ".tmp-snapshot-")
		if err != nil {
			return "", fmt.Errorf("snapshot: %w", err)
		}
		if err := linkFiles(tmp, files); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
		if err := os.Rename(tmp, final); err == nil {
			return final, nil
		}
		os.RemoveAll(tmp) // lost a race with another writer: fall through
	}
	if st, err := os.Lstat(final); err != nil || !st.IsDir() {
		return "", fmt.Errorf("snapshot %s is not a folder", final)
	}
	return final, linkFiles(final, files)
}

// linkFiles creates dir/<name> -> ../../blobs/<id> (one more ../ per folder
// level) for each file, refusing to pass through anything but real folders.
func linkFiles(dir string, files []File) error {
	for _, f := range files {
		if err := ValidateFileName(f.Name); err != nil {
			return err
		}
		parts := strings.Split(f.Name, "/")
		parent := dir
		for _, p := range parts[:len(parts)-1] {
			parent = filepath.Join(parent, p)
			st, err := os.Lstat(parent)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				if err := os.Mkdir(parent, 0o755); err != nil {
					return fmt.Errorf("snapshot: %w", err)
				}
			case err != nil:
				return fmt.Errorf("snapshot: %w", err)
			case !st.IsDir():
				return fmt.Errorf("snapshot: %s is not a real folder", parent)
			}
		}
		target := strings.Repeat("../", len(parts)+1) + "blobs/" + f.blobName()
		link := filepath.Join(dir, filepath.FromSlash(f.Name))
		tmp := link + ".tmp-" + randomSuffix()
		if err := os.Symlink(target, tmp); err != nil {
			return fmt.Errorf("snapshot link %s: %w", f.Name, err)
		}
		if err := os.Rename(tmp, link); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("snapshot link %s: %w", f.Name, err)
		}
	}
	return nil
}

// writeRef records refs/<revision> = commit, atomically.
func writeRef(repoDir, revision, commit string) error {
	p := filepath.Join(repoDir, "refs", filepath.FromSlash(revision))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("ref %s: %w", revision, err)
	}
	tmp := p + ".tmp-" + randomSuffix()
	if err := os.WriteFile(tmp, []byte(commit), 0o644); err != nil {
		return fmt.Errorf("ref %s: %w", revision, diskErr(err))
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ref %s: %w", revision, err)
	}
	return nil
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
