//go:build !unix

package safetensors

func mapFile(path string) ([]byte, func() error, bool, error) {
	b, release, err := readAll(path)
	return b, release, false, err
}
