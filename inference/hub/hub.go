// Package hub downloads model repositories from a Hugging Face hub into the
// hub's own cache layout (models--ORG--NAME/{blobs,snapshots,refs}), so models
// fetched by other tools are reused and ours are usable by them. Every file is
// checked against the size and hash the hub lists before it becomes visible.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultEndpoint is the public hub.
const DefaultEndpoint = "https://huggingface.co"

// Errors callers can test with errors.Is.
var (
	ErrUnauthorized        = errors.New("hub refused access (set HF_TOKEN for gated or private repositories)")
	ErrNotFound            = errors.New("repository or revision not found on the hub")
	ErrOffline             = errors.New("hub is offline (HF_HUB_OFFLINE) and the files are not in the cache")
	ErrChecksum            = errors.New("downloaded file does not match the hub's checksum")
	ErrInsufficientStorage = errors.New("not enough free disk space")
	ErrNoFiles             = errors.New("no files to download")
)

// Client talks to one hub and stores into one cache folder.
type Client struct {
	// Endpoint is the hub's base URL, e.g. https://huggingface.co.
	Endpoint string
	// Token is sent as a bearer token when set.
	Token string
	// Offline serves only what the cache holds.
	Offline bool
	// CacheDir is the hub cache (the folder holding models--ORG--NAME).
	CacheDir string
	// HTTP is the client used for requests; default has no overall timeout
	// (large files) but the transport's dial and header timeouts.
	HTTP *http.Client
	// Parallel is how many files download at once; default 4.
	Parallel int
	// Retries is how many times a cut transfer resumes; default 5.
	Retries int
	// FreeSpace reports free bytes on the file system holding dir; default
	// statfs. Tests replace it to simulate a full disk.
	FreeSpace func(dir string) (uint64, error)
}

// NewFromEnv returns a client for cacheDir configured from the environment:
// HF_ENDPOINT, HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) and HF_HUB_OFFLINE.
func NewFromEnv(cacheDir string) *Client {
	c := &Client{Endpoint: DefaultEndpoint, CacheDir: cacheDir}
	if e := strings.TrimSpace(os.Getenv("HF_ENDPOINT")); e != "" {
		c.Endpoint = e
	}
	c.Token = strings.TrimSpace(os.Getenv("HF_TOKEN"))
	if c.Token == "" {
		c.Token = strings.TrimSpace(os.Getenv("HUGGING_FACE_HUB_TOKEN"))
	}
	switch strings.ToLower(strings.TrimSpace(os.Getenv("HF_HUB_OFFLINE"))) {
	case "1", "true", "yes", "on":
		c.Offline = true
	}
	return c
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

var defaultHTTP = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	TLSHandshakeTimeout:   15 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	IdleConnTimeout:       90 * time.Second,
	MaxIdleConnsPerHost:   8,
}}

func (c *Client) endpoint() string { return strings.TrimRight(c.Endpoint, "/") }

// File is one file of a repository revision as the hub lists it.
type File struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// SHA256 is the LFS object id; empty for files stored in git itself.
	SHA256 string `json:"sha256,omitempty"`
	// BlobID is the git blob id (SHA-1 of "blob SIZE\x00" + content).
	BlobID string `json:"blob_id,omitempty"`
}

// blobName is the file's name under blobs/: the LFS sha256, else the git blob id.
func (f File) blobName() string {
	if f.SHA256 != "" {
		return f.SHA256
	}
	return f.BlobID
}

// Repo is a resolved revision: the commit it points at and its files.
type Repo struct {
	ID       string `json:"id"`
	Revision string `json:"revision"`
	Commit   string `json:"commit"`
	Files    []File `json:"files"`
}

// TotalSize sums the sizes of files.
func TotalSize(files []File) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}

// revisionInfo is the part of GET /api/models/{repo}/revision/{rev}?blobs=true we read.
type revisionInfo struct {
	ID       string `json:"id"`
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
		Size      *int64 `json:"size"`
		BlobID    string `json:"blobId"`
		LFS       *struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"lfs"`
	} `json:"siblings"`
}

// maxInfoBytes bounds the revision listing we accept.
const maxInfoBytes = 32 << 20

// ParseRevisionInfo decodes and checks the hub's revision listing: a commit
// id, and for every file a safe name, a size and a hash.
func ParseRevisionInfo(repoID, revision string, data []byte) (Repo, error) {
	var info revisionInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return Repo{}, fmt.Errorf("hub listing of %s: %w", repoID, err)
	}
	if !isCommit(info.SHA) {
		return Repo{}, fmt.Errorf("hub listing of %s: commit %q is not a 40-hex id", repoID, info.SHA)
	}
	r := Repo{ID: repoID, Revision: revision, Commit: info.SHA}
	seen := map[string]bool{}
	for _, s := range info.Siblings {
		if err := ValidateFileName(s.RFilename); err != nil {
			return Repo{}, fmt.Errorf("hub listing of %s: %w", repoID, err)
		}
		if seen[s.RFilename] {
			return Repo{}, fmt.Errorf("hub listing of %s: file %q listed twice", repoID, s.RFilename)
		}
		seen[s.RFilename] = true
		f := File{Name: s.RFilename, BlobID: strings.ToLower(s.BlobID)}
		switch {
		case s.LFS != nil:
			f.SHA256, f.Size = strings.ToLower(s.LFS.SHA256), s.LFS.Size
			if !isHex(f.SHA256, 64) {
				return Repo{}, fmt.Errorf("hub listing of %s: file %q has LFS id %q, not a sha256", repoID, f.Name, s.LFS.SHA256)
			}
		case s.Size != nil:
			f.Size = *s.Size
			if !isHex(f.BlobID, 40) {
				return Repo{}, fmt.Errorf("hub listing of %s: file %q has no git blob id to verify it by", repoID, f.Name)
			}
		default:
			return Repo{}, fmt.Errorf("hub listing of %s: file %q has no size", repoID, f.Name)
		}
		if f.Size < 0 {
			return Repo{}, fmt.Errorf("hub listing of %s: file %q has a negative size", repoID, f.Name)
		}
		r.Files = append(r.Files, f)
	}
	// A name that is also a folder of another name could turn a snapshot link
	// into a directory path; refuse such listings.
	for name := range seen {
		for dir := name; ; {
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
			if seen[dir] {
				return Repo{}, fmt.Errorf("hub listing of %s: %q is both a file and a folder", repoID, dir)
			}
		}
	}
	return r, nil
}

// Resolve asks the hub which commit revision names and which files it holds.
func (c *Client) Resolve(ctx context.Context, repoID, revision string) (Repo, error) {
	if revision == "" {
		revision = "main"
	}
	if err := ValidateRepoID(repoID); err != nil {
		return Repo{}, err
	}
	if err := ValidateRevision(revision); err != nil {
		return Repo{}, err
	}
	if c.Offline {
		return Repo{}, ErrOffline
	}
	u := c.endpoint() + "/api/models/" + repoID + "/revision/" + url.PathEscape(revision) + "?blobs=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Repo{}, fmt.Errorf("hub request: %w", err)
	}
	c.authorize(req)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return Repo{}, fmt.Errorf("resolving %s@%s: %w", repoID, revision, err)
	}
	defer resp.Body.Close()
	if err := statusError(resp, repoID); err != nil {
		return Repo{}, fmt.Errorf("resolving %s@%s: %w", repoID, revision, err)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxInfoBytes+1))
	if err != nil {
		return Repo{}, fmt.Errorf("resolving %s@%s: %w", repoID, revision, err)
	}
	if len(data) > maxInfoBytes {
		return Repo{}, fmt.Errorf("resolving %s@%s: listing larger than %d bytes", repoID, revision, maxInfoBytes)
	}
	return ParseRevisionInfo(repoID, revision, data)
}

func (c *Client) authorize(req *http.Request) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", "impetus-hub/1")
}

// statusError maps a hub response status to an error; nil for 2xx.
func statusError(resp *http.Response, repoID string) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := resp.Header.Get("X-Error-Message")
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		if msg != "" {
			return fmt.Errorf("%w: %s", ErrUnauthorized, msg)
		}
		return ErrUnauthorized
	case http.StatusNotFound:
		if msg != "" {
			return fmt.Errorf("%w: %s", ErrNotFound, msg)
		}
		return fmt.Errorf("%w: %s", ErrNotFound, repoID)
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("hub answered %d: %s", resp.StatusCode, msg)
}
