//go:build unix

package gguf

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps path read-only, falling back to reading it when the file is
// empty or cannot be mapped (e.g. a pipe).
func mapFile(path string) ([]byte, func() error, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if !st.Mode().IsRegular() || size == 0 || size != int64(int(size)) {
		return readFile(path)
	}
	data, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		b, _, rerr := readFile(path)
		if rerr != nil {
			return nil, nil, fmt.Errorf("mmap: %v; read: %w", err, rerr)
		}
		return b, nil, nil
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
