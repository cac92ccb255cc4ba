package hub_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/hub"
	"github.com/impetusllm/impetus/inference/hub/hubtest"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

func weights(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func mlxRepo(id string) *hubtest.Repo {
	return &hubtest.Repo{ID: id, Commit: commit, Files: []hubtest.File{
		{Name: ".gitattributes", Content: []byte("*.safetensors filter=lfs\n")},
		{Name: "README.md", Content: []byte("# model card\n")},
		{Name: "config.json", Content: []byte(`{"model_type":"llama"}`)},
		{Name: "tokenizer.json", Content: []byte(`{"model":{}}`)},
		{Name: "tokenizer_config.json", Content: []byte(`{}`)},
		{Name: "model.safetensors", Content: weights(300_000), LFS: true},
		{Name: "extra/other.safetensors", Content: weights(1000), LFS: true},
	}}
}

func newClient(t *testing.T, h *hubtest.Hub) *hub.Client {
	c := &hub.Client{Endpoint: h.URL, CacheDir: t.TempDir()}
	return c
}

func TestDownloadLaysOutTheCache(t *testing.T) {
	h := hubtest.New(mlxRepo("org/model"))
	defer h.Close()
	c := newClient(t, h)
	var last hub.Progress
	var calls int
	snap, err := c.Download(context.Background(), "org/model", hub.Options{Progress: func(p hub.Progress) { last = p; calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(c.CacheDir, "models--org--model")
	if snap.Dir != filepath.Join(repoDir, "snapshots", commit) || snap.Commit != commit {
		t.Fatalf("snapshot %+v", snap)
	}
	want := map[string]bool{"config.json": true, "tokenizer.json": true, "tokenizer_config.json": true, "model.safetensors": true}
	entries, _ := os.ReadDir(snap.Dir)
	if len(entries) != len(want) {
		t.Fatalf("snapshot holds %v", entries)
	}
	for _, f := range mlxRepo("org/model").Files {
		if !want[f.Name] {
			continue
		}
		link := filepath.Join(snap.Dir, f.Name)
		target, err := os.Readlink(link)
		if err != nil || target != "../../blobs/"+f.ETag() {
			t.Errorf("%s -> %q (%v)", f.Name, target, err)
		}
		got, err := os.ReadFile(link)
		if err != nil || !bytes.Equal(got, f.Content) {
			t.Errorf("%s content differs (%v)", f.Name, err)
		}
	}
	ref, _ := os.ReadFile(filepath.Join(repoDir, "refs", "main"))
	if string(ref) != commit {
		t.Fatalf("refs/main = %q", ref)
	}
	if last.Done != last.Total || last.Total != snap.Fetched || last.FilesDone != 4 || calls < 3 {
		t.Fatalf("progress %+v after %d calls, fetched %d", last, calls, snap.Fetched)
	}
	// The engine's scan finds the model under its hub id.
	models, err := inference.ScanModels(c.CacheDir)
	if err != nil || len(models) != 1 || models[0].ID != "org/model" || models[0].Format != inference.FormatMLX || models[0].SizeBytes != 300_000 {
		t.Fatalf("scan: %+v %v", models, err)
	}
	// A second download reuses every blob.
	again, err := c.Download(context.Background(), "org/model", hub.Options{})
	if err != nil || again.Fetched != 0 {
		t.Fatalf("second download fetched %d (%v)", again.Fetched, err)
	}
	if n := h.Gets("model.safetensors"); n != 1 {
		t.Fatalf("weights fetched %d times", n)
	}
	// Offline, the cached snapshot is served; an unknown repo is refused.
	off := &hub.Client{Endpoint: "http://127.0.0.1:1", CacheDir: c.CacheDir, Offline: true}
	if s, err := off.Download(context.Background(), "org/model", hub.Options{}); err != nil || s.Dir != snap.Dir {
		t.Fatalf("offline: %+v %v", s, err)
	}
	if _, err := off.Download(context.Background(), "org/absent", hub.Options{}); !errors.Is(err, hub.ErrOffline) {
		t.Fatalf("offline absent: %v", err)
	}
}

func TestResumeAfterCutConnection(t *testing.T) {
	h := hubtest.New(mlxRepo("org/model"))
	defer h.Close()
	h.CutOnce("model.safetensors", 100_000)
	c := newClient(t, h)
	snap, err := c.Download(context.Background(), "org/model", hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Ranges(); len(got) != 1 || got[0] != "bytes=100000-" {
		t.Fatalf("range requests %v", got)
	}
	data, _ := os.ReadFile(filepath.Join(snap.Dir, "model.safetensors"))
	if !bytes.Equal(data, weights(300_000)) {
		t.Fatal("resumed file differs")
	}
}

func TestRestartWhenRangeIsIgnored(t *testing.T) {
	h := hubtest.New(mlxRepo("org/model"))
	defer h.Close()
	h.CutOnce("model.safetensors", 100_000)
	h.IgnoreRange()
	c := newClient(t, h)
	var last hub.Progress
	snap, err := c.Download(context.Background(), "org/model", hub.Options{Progress: func(p hub.Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(snap.Dir, "model.safetensors"))
	if !bytes.Equal(data, weights(300_000)) || h.Gets("model.safetensors") != 2 || last.Done != last.Total {
		t.Fatalf("restarted download: equal=%v gets=%d progress %+v", bytes.Equal(data, weights(300_000)), h.Gets("model.safetensors"), last)
	}
}

// assertNoTrace checks that a failed download left nothing in the cache.
func assertNoTrace(t *testing.T, cache string) {
	t.Helper()
	var left []string
	filepath.Walk(cache, func(p string, info os.FileInfo, err error) error {
		if p != cache {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Fatalf("failed download left %v", left)
	}
}

func TestFailuresLeaveNothingBehind(t *testing.T) {
	cases := []struct {
		name  string
		setup func(h *hubtest.Hub, c *hub.Client)
		repo  string
		want  error
	}{
		{"bad checksum", func(h *hubtest.Hub, c *hub.Client) { h.Corrupt("model.safetensors") }, "org/model", hub.ErrChecksum},
		{"bad checksum of a git file", func(h *hubtest.Hub, c *hub.Client) { h.Corrupt("config.json") }, "org/model", hub.ErrChecksum},
		{"401 without token", nil, "org/private", hub.ErrUnauthorized},
		{"401 with a wrong token", func(h *hubtest.Hub, c *hub.Client) { c.Token = "wrong" }, "org/private", hub.ErrUnauthorized},
		{"missing repository", nil, "org/absent", hub.ErrUnauthorized},
		{"disk full", func(h *hubtest.Hub, c *hub.Client) {
			c.FreeSpace = func(string) (uint64, error) { return 1000, nil }
		}, "org/model", hub.ErrInsufficientStorage},
		{"traversal name in listing", func(h *hubtest.Hub, c *hub.Client) { h.ListExtra("../../escape.json") }, "org/model", nil},
		{"absolute name in listing", func(h *hubtest.Hub, c *hub.Client) { h.ListExtra("/etc/passwd") }, "org/model", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			priv := mlxRepo("org/private")
			priv.Private = true
			h := hubtest.New(mlxRepo("org/model"), priv)
			h.Token = "good"
			defer h.Close()
			c := newClient(t, h)
			if tc.setup != nil {
				tc.setup(h, c)
			}
			_, err := c.Download(context.Background(), tc.repo, hub.Options{})
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			assertNoTrace(t, c.CacheDir)
		})
	}
}

func TestTokenOpensPrivateRepo(t *testing.T) {
	priv := mlxRepo("org/private")
	priv.Private = true
	h := hubtest.New(priv)
	h.Token = "good"
	defer h.Close()
	t.Setenv("HF_TOKEN", "good")
	t.Setenv("HF_ENDPOINT", h.URL)
	t.Setenv("HF_HUB_OFFLINE", "")
	c := hub.NewFromEnv(t.TempDir())
	if c.Endpoint != h.URL || c.Token != "good" || c.Offline {
		t.Fatalf("env client %+v", c)
	}
	if _, err := c.Download(context.Background(), "org/private", hub.Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownRevisionIs404(t *testing.T) {
	h := hubtest.New(mlxRepo("org/model"))
	defer h.Close()
	c := newClient(t, h)
	_, err := c.Download(context.Background(), "org/model", hub.Options{Revision: "nope"})
	if !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
	assertNoTrace(t, c.CacheDir)
}

func TestCancelMidDownload(t *testing.T) {
	h := hubtest.New(mlxRepo("org/model"))
	defer h.Close()
	h.Throttle(5 * time.Millisecond)
	c := newClient(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	_, err := c.Download(ctx, "org/model", hub.Options{Progress: func(p hub.Progress) {
		if p.Done > 20_000 {
			once.Do(cancel)
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	assertNoTrace(t, c.CacheDir)
}

func TestConcurrentDownloadsShareTheWork(t *testing.T) {
	h := hubtest.New(mlxRepo("org/model"))
	defer h.Close()
	h.Throttle(time.Millisecond)
	c := newClient(t, h)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Download(context.Background(), "org/model", hub.Options{})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := h.Gets("model.safetensors"); n != 1 {
		t.Fatalf("weights fetched %d times", n)
	}
}

func TestGGUFNeedsAPatternWhenSeveral(t *testing.T) {
	repo := &hubtest.Repo{ID: "org/model-GGUF", Commit: commit, Files: []hubtest.File{
		{Name: "model-Q4_K_M.gguf", Content: weights(5000), LFS: true},
		{Name: "model-Q8_0.gguf", Content: weights(9000), LFS: true},
		{Name: "README.md", Content: []byte("card")},
	}}
	h := hubtest.New(repo)
	defer h.Close()
	c := newClient(t, h)
	if _, err := c.Download(context.Background(), "org/model-GGUF", hub.Options{}); !errors.Is(err, hub.ErrNoFiles) || !strings.Contains(err.Error(), "model-Q8_0.gguf") {
		t.Fatalf("no pattern: %v", err)
	}
	snap, err := c.Download(context.Background(), "org/model-GGUF", hub.Options{AllowPatterns: []string{"*Q4_K_M.gguf"}})
	if err != nil || len(snap.Selected) != 1 || snap.Selected[0].Name != "model-Q4_K_M.gguf" {
		t.Fatalf("pattern: %+v %v", snap.Selected, err)
	}
	if n := h.Gets("model-Q8_0.gguf"); n != 0 {
		t.Fatal("unselected quant was fetched")
	}
	models, _ := inference.ScanModels(c.CacheDir)
	if len(models) != 1 || models[0].Format != inference.FormatGGUF || models[0].SizeBytes != 5000 {
		t.Fatalf("scan: %+v", models)
	}
}

func TestNestedFilesLinkRelative(t *testing.T) {
	repo := mlxRepo("org/model")
	h := hubtest.New(repo)
	defer h.Close()
	c := newClient(t, h)
	snap, err := c.Download(context.Background(), "org/model", hub.Options{AllowPatterns: []string{"extra/*", "config.json"}})
	if err != nil {
		t.Fatal(err)
	}
	target, _ := os.Readlink(filepath.Join(snap.Dir, "extra", "other.safetensors"))
	if target != "../../../blobs/"+hubtest.SHA256(weights(1000)) {
		t.Fatalf("nested link -> %q", target)
	}
	if data, err := os.ReadFile(filepath.Join(snap.Dir, "extra", "other.safetensors")); err != nil || len(data) != 1000 {
		t.Fatalf("nested read: %v", err)
	}
}

func TestForceAndCommitRevision(t *testing.T) {
	h := hubtest.New(mlxRepo("org/model"))
	defer h.Close()
	c := newClient(t, h)
	snap, err := c.Download(context.Background(), "org/model", hub.Options{Revision: commit})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.CacheDir, "models--org--model", "refs")); err == nil {
		t.Fatal("a download by commit wrote a ref")
	}
	again, err := c.Download(context.Background(), "org/model", hub.Options{Force: true})
	if err != nil || again.Fetched != snap.Fetched || h.Gets("model.safetensors") != 2 {
		t.Fatalf("forced download fetched %d of %d (%v), weights requested %d times", again.Fetched, snap.Fetched, err, h.Gets("model.safetensors"))
	}
}

func TestMismatchedHeadersAreRefused(t *testing.T) {
	h := hubtest.New(mlxRepo("org/model"))
	defer h.Close()
	h.ServeCommit("fedcba9876543210fedcba9876543210fedcba98")
	c := newClient(t, h)
	if _, err := c.Download(context.Background(), "org/model", hub.Options{}); err == nil || !strings.Contains(err.Error(), "commit") {
		t.Fatalf("got %v", err)
	}
	assertNoTrace(t, c.CacheDir)
}

func TestValidateNames(t *testing.T) {
	good := []string{"config.json", "a/b.safetensors", "model-00001-of-00002.safetensors", "x..y"}
	bad := []string{"", "/abs", "../x", "a/../b", "a//b", "./a", "a/.", `a\b`, "c:x", ".git/config", "a\x00b", "a/"}
	for _, n := range good {
		if err := hub.ValidateFileName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := hub.ValidateFileName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
	for _, id := range []string{"mlx-community/Llama-3.2-1B-Instruct-4bit", "bartowski/Qwen2.5-0.5B-Instruct-GGUF", "a/b"} {
		if err := hub.ValidateRepoID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range []string{"", "a", "a/b/c", "../b", "a/..", "a--b/c", "a/b c", "a/.b", "/b", "a/"} {
		if err := hub.ValidateRepoID(id); err == nil {
			t.Errorf("repo %q accepted", id)
		}
	}
	for _, rev := range []string{"", "..", "a/../b", "a b", "refs//x"} {
		if err := hub.ValidateRevision(rev); err == nil {
			t.Errorf("revision %q accepted", rev)
		}
	}
}

func TestParseRevisionInfoRejects(t *testing.T) {
	cases := map[string]string{
		"not json":       `{`,
		"short sha":      `{"sha":"abc","siblings":[]}`,
		"traversal":      `{"sha":"` + commit + `","siblings":[{"rfilename":"../x","size":1,"blobId":"` + commit + `"}]}`,
		"no hash":        `{"sha":"` + commit + `","siblings":[{"rfilename":"x","size":1}]}`,
		"bad lfs":        `{"sha":"` + commit + `","siblings":[{"rfilename":"x","lfs":{"sha256":"zz","size":1}}]}`,
		"no size":        `{"sha":"` + commit + `","siblings":[{"rfilename":"x","blobId":"` + commit + `"}]}`,
		"duplicate":      `{"sha":"` + commit + `","siblings":[{"rfilename":"x","size":1,"blobId":"` + commit + `"},{"rfilename":"x","size":1,"blobId":"` + commit + `"}]}`,
		"file is folder": `{"sha":"` + commit + `","siblings":[{"rfilename":"a","size":1,"blobId":"` + commit + `"},{"rfilename":"a/b","size":1,"blobId":"` + commit + `"}]}`,
		"negative size":  `{"sha":"` + commit + `","siblings":[{"rfilename":"x","size":-1,"blobId":"` + commit + `"}]}`,
	}
	for name, body := range cases {
		if _, err := hub.ParseRevisionInfo("a/b", "main", []byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseRevisionInfo(f *testing.F) {
	f.Add([]byte(`{"sha":"` + commit + `","siblings":[{"rfilename":"a/b.json","size":3,"blobId":"` + commit + `"}]}`))
	f.Add([]byte(`{"sha":"` + commit + `","siblings":[{"rfilename":"w.safetensors","lfs":{"sha256":"` + strings.Repeat("a", 64) + `","size":9}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := hub.ParseRevisionInfo("a/b", "main", data)
		if err != nil {
			return
		}
		for _, f := range r.Files {
			if hub.ValidateFileName(f.Name) != nil || f.Size < 0 {
				t.Fatalf("accepted bad file %+v", f)
			}
		}
	})
}

func FuzzValidateFileName(f *testing.F) {
	for _, s := range []string{"config.json", "../x", "a/b", "/x", "a/./b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if hub.ValidateFileName(name) != nil {
			return
		}
		p := filepath.Join("/root/snap", filepath.FromSlash(name))
		if !strings.HasPrefix(p, "/root/snap/") {
			t.Fatalf("%q escapes to %s", name, p)
		}
	})
}
