// Package testutil locates the project's shared test data (../shared beside the
// checkout) and unpacks reference fixtures, skipping tests cleanly when the data
// is absent so the core suite still runs on a bare clone.
package testutil

import (
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// RepoRoot returns the directory holding go.mod, found by walking up from the
// working directory (go test runs in the package directory).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("no go.mod above the test's working directory")
		}
		dir = parent
	}
}

// SharedDir returns the shared data folder: $IMPETUS_SHARED when set, else
// ../shared beside the repository. It skips the test when the folder is absent.
func SharedDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("IMPETUS_SHARED")
	if dir == "" {
		dir = filepath.Join(RepoRoot(tb), "..", "shared")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		tb.Skipf("shared test data not found at %s (set IMPETUS_SHARED): skipping", dir)
	}
	return dir
}

// SharedPath joins parts under SharedDir and skips the test if that path is absent.
func SharedPath(tb testing.TB, parts ...string) string {
	tb.Helper()
	p := filepath.Join(append([]string{SharedDir(tb)}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("shared test data %s not found: skipping", p)
	}
	return p
}

var unpackMu sync.Mutex

// Fixture returns the folder of one reference model, e.g. Fixture(t,
// "dev-random", "llama-mlx4"), unpacking shared/fixtures/<archive>.tar.xz once
// into a cache folder under the system temp dir. It skips when the archive is absent.
func Fixture(tb testing.TB, archive, model string) string {
	tb.Helper()
	src := SharedPath(tb, "fixtures", archive+".tar.xz")
	cache := filepath.Join(os.TempDir(), "impetus-fixtures")
	dst := filepath.Join(cache, archive)
	unpackMu.Lock()
	defer unpackMu.Unlock()
	if _, err := os.Stat(filepath.Join(dst, ".done")); err != nil {
		if err := os.MkdirAll(cache, 0o755); err != nil {
			tb.Fatalf("fixture cache: %v", err)
		}
		tmp, err := os.MkdirTemp(cache, archive+".tmp")
		if err != nil {
			tb.Fatalf("fixture cache: %v", err)
		}
		out, err := exec.Command("tar", "-xJf", src, "-C", tmp).CombinedOutput()
		if err != nil {
			os.RemoveAll(tmp)
			tb.Fatalf("unpacking %s: %v: %s", src, err, out)
		}
		// Archives hold one top folder, not always named after the archive
		// (dev-trained-more-a.tar.xz unpacks to dev-trained-more/).
		entries, err := os.ReadDir(tmp)
		if err != nil || len(entries) != 1 || !entries[0].IsDir() {
			os.RemoveAll(tmp)
			tb.Fatalf("unpacking %s: want one top-level folder", src)
		}
		os.RemoveAll(dst)
		if err := os.Rename(filepath.Join(tmp, entries[0].Name()), dst); err != nil {
			os.RemoveAll(tmp)
			tb.Fatalf("fixture cache: %v", err)
		}
		os.RemoveAll(tmp)
		if err := os.WriteFile(filepath.Join(dst, ".done"), nil, 0o644); err != nil {
			tb.Fatalf("fixture cache: %v", err)
		}
	}
	p := filepath.Join(dst, model)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("fixture %s/%s not in the archive", archive, model)
	}
	return p
}

// Cosine is the cosine similarity of two vectors, summed in float64: how
// the embedding tests compare a vector with its reference.
func Cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// handedOut holds every port FreePort has returned in this test process.
// The kernel may give a just-closed port to the next bind(0), and Caddy
// listens with SO_REUSEPORT, so a second listener on the same port (say a
// server's admin endpoint) starts without error and silently takes half of
// the connections: a CI run once sent /v1/completions to the admin API.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a loopback port that nothing listened on a moment ago and
// that no earlier call in this process has returned.
func FreePort(tb testing.TB) int {
	tb.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
	tb.Fatal("no unused loopback port after 100 tries")
	return 0
}
