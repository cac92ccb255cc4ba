//go:build !cgo || !linux

package hwinfo

// readNVML needs cgo on Linux; this build falls back to nvidia-smi.
func readNVML() ([]GPU, bool, error) { return nil, false, nil }
