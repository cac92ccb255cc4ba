package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/hub/hubtest"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPullCommand: `impetus pull` fetches a repository into the hub cache
// layout the server scans, prints plain progress lines off a terminal, and
// after an interrupt (SIGINT, as Ctrl-C sends) resumes with a Range request
// instead of starting over. Bad ids and revisions are refused clearly.
func TestPullCommand(t *testing.T) {
	bin := binary(t)
	tiny := tinyGGUF(t)
	const commit = "fedcba9876543210fedcba9876543210fedcba98"
	fake := hubtest.New(&hubtest.Repo{ID: "huborg/tiny-GGUF", Commit: commit, Files: []hubtest.File{
		{Name: "tiny.gguf", Content: tiny, LFS: true},
		{Name: "README.md", Content: []byte("# tiny\n")},
	}})
	defer fake.Close()
	models := t.TempDir()
	pull := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"pull"}, args...)...)
		cmd.Env = testEnv(t.TempDir(), "HF_TOKEN=", "HF_HUB_OFFLINE=", "HF_ENDPOINT=http://127.0.0.1:1")
		return cmd
	}

	fake.Throttle(5 * time.Millisecond) // ~2 s for the 1.7 MB file
	cmd := pull("huborg/tiny-GGUF@main", "--models-dir", models, "--endpoint", fake.URL)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	moved := regexp.MustCompile(`downloaded 0\.[1-9]|downloaded [1-9]`)
	for !moved.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line: %q", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 || !strings.Contains(out.String(), "run the same command again to resume") {
		t.Fatalf("interrupted pull: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "\r") {
		t.Fatalf("progress off a terminal must be plain lines: %q", out.String())
	}
	partial, _ := filepath.Glob(filepath.Join(models, "models--huborg--tiny-GGUF", "blobs", "*.incomplete"))
	if len(partial) != 1 {
		t.Fatalf("the interrupted pull kept no partial file: %v", partial)
	}
	st, _ := os.Stat(partial[0])
	if st.Size() == 0 || st.Size() >= int64(len(tiny)) {
		t.Fatalf("partial file has %d of %d bytes", st.Size(), len(tiny))
	}

	fake.Throttle(0)
	cmd = pull("huborg/tiny-GGUF", "--models-dir", models, "--endpoint", fake.URL)
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(got), "resuming") || !strings.Contains(string(got), "done: huborg/tiny-GGUF@"+commit) {
		t.Fatalf("resumed pull: %v\n%s", err, got)
	}
	resumed := false
	for _, r := range fake.Ranges() {
		resumed = resumed || strings.HasPrefix(r, "bytes=") && !strings.HasPrefix(r, "bytes=0-")
	}
	if !resumed {
		t.Fatalf("the second pull sent no Range request: %v", fake.Ranges())
	}
	data, err := os.ReadFile(filepath.Join(models, "models--huborg--tiny-GGUF", "snapshots", commit, "tiny.gguf"))
	if err != nil || !bytes.Equal(data, tiny) {
		t.Fatalf("pulled file differs (%d of %d bytes): %v", len(data), len(tiny), err)
	}
	if left, _ := filepath.Glob(filepath.Join(models, "models--huborg--tiny-GGUF", "blobs", "*.incomplete")); len(left) != 0 {
		t.Fatalf("partial files left: %v", left)
	}

	// Pulled again: nothing to fetch.
	if got, err := pull("huborg/tiny-GGUF", "--models-dir", models, "--endpoint", fake.URL).CombinedOutput(); err != nil || !strings.Contains(string(got), "0.0 MB fetched") {
		t.Fatalf("second pull: %v\n%s", err, got)
	}

	for _, bad := range [][]string{
		{"not-a-repo"},
		{"huborg/tiny-GGUF@bad rev"},
		{"../etc/passwd"},
		{"huborg/absent"},
		{},
	} {
		got, err := pull(append(bad, "--models-dir", models, "--endpoint", fake.URL)...).CombinedOutput()
		if err == nil || !strings.Contains(string(got), "Error") && !strings.Contains(string(got), "error") {
			t.Errorf("pull %q: want a clear error, got %v\n%s", bad, err, got)
		}
	}
}
