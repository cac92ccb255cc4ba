package pages

import (
	"syscall"
	"unsafe"
)

// Release drops the whole pages inside b, which must lie in a read-only
// shared mapping of a file (never memory read into the heap: there the
// kernel would zero it). The mapping stays valid: a later read of b maps
// the pages again from the file (the page cache), so a fallback path that
// still reads b gets the same bytes, only at the cost of faulting them in.
// It returns the bytes released.
func Release(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo, n := Interior(addr, len(b))
	if n == 0 {
		return 0
	}
	off := int(lo - addr)
	if syscall.Madvise(b[off:off+n], syscall.MADV_DONTNEED) != nil {
		return 0
	}
	return n
}
