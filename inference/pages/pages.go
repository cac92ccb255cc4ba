// Package pages gives back the resident pages of parts of a read-only file
// mapping. After a weight is repacked at load, its bytes in the mapped file
// are no longer read; releasing them leaves one copy of the weight in
// memory instead of two.
package pages

import "os"

// Interior returns the offset and length of the whole pages inside b's
// address range [addr, addr+n): the part that can be released without
// touching a neighbour's bytes on a shared page.
func Interior(addr uintptr, n int) (lo uintptr, size int) {
	ps := uintptr(os.Getpagesize())
	lo = (addr + ps - 1) &^ (ps - 1)
	hi := (addr + uintptr(n)) &^ (ps - 1)
	if hi <= lo {
		return lo, 0
	}
	return lo, int(hi - lo)
}
