package model

import (
	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/quant"
)

// convertGGUF is modeltest.ConvertToGGUF, which this package's own tests
// cannot import (modeltest imports model): converter_test.go, an external
// test file of the same test binary, hands it over before the tests run.
var convertGGUF func(dir string, typ quant.GGMLType) (*gguf.Writer, error)

// SetConverter sets convertGGUF.
func SetConverter(f func(dir string, typ quant.GGMLType) (*gguf.Writer, error)) { convertGGUF = f }

// convertEncoderGGUF is modeltest.ConvertEncoderToGGUF, set like convertGGUF.
var convertEncoderGGUF func(dir string, typ quant.GGMLType) (*gguf.Writer, error)

// SetEncoderConverter sets convertEncoderGGUF.
func SetEncoderConverter(f func(dir string, typ quant.GGMLType) (*gguf.Writer, error)) {
	convertEncoderGGUF = f
}

// writeRandomEncoder is modeltest.WriteRandomEncoder, set like convertGGUF.
var writeRandomEncoder func(dir, template string, cfg EncoderConfig, cls bool, seed uint64) error

// SetRandomEncoderWriter sets writeRandomEncoder.
func SetRandomEncoderWriter(f func(dir, template string, cfg EncoderConfig, cls bool, seed uint64) error) {
	writeRandomEncoder = f
}

// quantizeMLXFolder is modeltest.QuantizeMLXFolder (global bits and group
// size, per-module overrides as config.json holds them), set like
// convertGGUF.
var quantizeMLXFolder func(src, qdir, fdir string, bits, group int, overrides map[string]any) error

// SetMLXQuantizer sets quantizeMLXFolder.
func SetMLXQuantizer(f func(src, qdir, fdir string, bits, group int, overrides map[string]any) error) {
	quantizeMLXFolder = f
}
