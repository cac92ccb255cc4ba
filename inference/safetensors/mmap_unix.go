//go:build unix

package safetensors

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps path read-only. Weights stay in the page cache and are shared
// between processes; nothing is copied onto the Go heap.
func mapFile(path string) ([]byte, func() error, bool, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, false, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, nil, false, err
	}
	size := st.Size()
	if size == 0 {
		return []byte{}, func() error { return nil }, false, nil
	}
	if size != int64(int(size)) {
		return nil, nil, false, fmt.Errorf("%s: file too large to map", path)
	}
	data, err := syscall.Mmap(int(fh.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		b, release, err := readAll(path)
		return b, release, false, err
	}
	return data, func() error { return syscall.Munmap(data) }, true, nil
}
