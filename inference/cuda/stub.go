//go:build !cgo || !linux

package cuda

import "fmt"

// Device is an opened GPU; this build has none.
type Device struct {
	Compile CompileInfo
}

// Count reports how many GPUs the driver sees; this build sees none.
func Count() (int, error) {
	return 0, fmt.Errorf("%w: built without cgo or not on Linux", ErrNotAvailable)
}

// Open fails: this build cannot reach the driver.
func Open(ordinal int) (*Device, error) {
	return nil, fmt.Errorf("%w: built without cgo or not on Linux", ErrNotAvailable)
}

// Info is empty in this build.
func (d *Device) Info() Info { return Info{} }

// FreeMemory is 0 in this build.
func (d *Device) FreeMemory() (uint64, error) { return 0, ErrNotAvailable }
