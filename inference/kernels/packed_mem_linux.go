package kernels

import "syscall"

// allocPacked maps anonymous memory for packed weights, asking for
// transparent huge pages (fewer TLB misses while streaming the weights), and
// releases it when the returned slice's owner is collected (see newPacked).
// It falls back to the Go heap where mmap fails.
func allocPacked(n int) (mem []byte, free func()) {
	if n == 0 {
		return nil, func() {}
	}
	m, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]byte, n), func() {}
	}
	_ = syscall.Madvise(m, 14) // MADV_HUGEPAGE; advisory, errors ignored
	return m, func() { _ = syscall.Munmap(m) }
}
