package pages

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

func TestInterior(t *testing.T) {
	ps := uintptr(os.Getpagesize())
	for _, c := range []struct {
		addr uintptr
		n    int
		lo   uintptr
		size int
	}{
		{ps, int(3 * ps), ps, int(3 * ps)},         // aligned
		{ps + 1, int(3 * ps), 2 * ps, int(2 * ps)}, // both ends partial
		{ps + 1, int(ps), 2 * ps, 0},               // within two pages, no whole one
		{2 * ps, int(ps) - 1, 2 * ps, 0},           // less than a page
		{ps - 10, int(ps) + 20, ps, int(ps)},       // one whole page in the middle
	} {
		lo, size := Interior(c.addr, c.n)
		if size != c.size || (size > 0 && lo != c.lo) {
			t.Errorf("Interior(%#x, %d) = %#x, %d; want %#x, %d", c.addr, c.n, lo, size, c.lo, c.size)
		}
	}
}

// TestReleaseKeepsBytes releases the pages of a file mapping and reads them
// back: the bytes are the file's, faulted in again.
func TestReleaseKeepsBytes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Release is a no-op here")
	}
	ps := os.Getpagesize()
	want := make([]byte, 8*ps)
	for i := range want {
		want[i] = byte(i*7 + i/ps)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, len(want), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer syscall.Munmap(m)
	if !bytes.Equal(m, want) {
		t.Fatal("mapping differs from the file")
	}
	if n := Release(m[100 : 6*ps+5]); n != 5*ps {
		t.Errorf("released %d bytes, want %d (the whole pages inside)", n, 5*ps)
	}
	if !bytes.Equal(m, want) {
		t.Error("bytes changed after Release")
	}
	if Release(nil) != 0 {
		t.Error("Release(nil) released something")
	}
}
