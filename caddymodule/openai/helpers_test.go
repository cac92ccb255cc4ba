package openai

import "errors"

// errReader fails every read, like a client that disconnects mid-body.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
