package openai

import (
	"encoding/json"
	"io"
	"slices"
)

// MaxEmbeddingInputs is OpenAI's cap on the inputs of one embeddings request.
const MaxEmbeddingInputs = 2048

// Encoding formats of an embeddings response.
const (
	EncodingFloat  = "float"
	EncodingBase64 = "base64"
)

// EmbeddingRequest is a decoded POST /v1/embeddings body.
type EmbeddingRequest struct {
	Model string
	// Input holds the texts or token-id sequences to embed, in order; at
	// least one, none empty, at most MaxEmbeddingInputs.
	Input Prompt
	// EncodingFormat is EncodingFloat (the default) or EncodingBase64.
	EncodingFormat string
	// Dimensions, when positive, asks for vectors shortened to this size.
	Dimensions int
	// User is accepted and ignored, as OpenAI's abuse-tracking id.
	User string

	present []string
}

// Has reports whether the request carried top-level field name with a
// non-null value.
func (r *EmbeddingRequest) Has(name string) bool { return slices.Contains(r.present, name) }

// DecodeEmbeddingRequest reads and validates an embeddings request. Errors
// are 400s naming the offending field ("input[3]"), or a 413 when the body
// is too large.
func DecodeEmbeddingRequest(r io.Reader, limits Limits) (*EmbeddingRequest, *Error) {
	l := limits.withDefaults()
	body, e := readBody(r, l.MaxBodyBytes)
	if e != nil {
		return nil, e
	}
	root, e := parseRoot(body)
	if e != nil {
		return nil, e
	}
	req := &EmbeddingRequest{EncodingFormat: EncodingFloat}
	req.present, e = decodeObject("", root, req.fields(), unknownTop)
	if e != nil {
		return nil, e
	}
	if e := req.validate(); e != nil {
		return nil, e
	}
	return req, nil
}

func (r *EmbeddingRequest) fields() map[string]fieldFunc {
	return map[string]fieldFunc{
		"model": func(p string, raw json.RawMessage) (e *Error) {
			r.Model, e = getString(p, raw)
			return e
		},
		"input": func(p string, raw json.RawMessage) (e *Error) {
			r.Input, e = decodeEmbeddingInput(p, raw)
			return e
		},
		"encoding_format": func(p string, raw json.RawMessage) *Error {
			s, e := getString(p, raw)
			if e != nil {
				return e
			}
			if s != EncodingFloat && s != EncodingBase64 {
				return errAt(p, "must be %q or %q, got %s", EncodingFloat, EncodingBase64, quote(s))
			}
			r.EncodingFormat = s
			return nil
		},
		"dimensions": func(p string, raw json.RawMessage) (e *Error) {
			r.Dimensions, e = intIn(p, raw, 1, 1<<20)
			return e
		},
		"user": func(p string, raw json.RawMessage) (e *Error) {
			r.User, e = getString(p, raw)
			return e
		},
	}
}

func (r *EmbeddingRequest) validate() *Error {
	if !r.Has("model") {
		return errAt("model", "required field is missing")
	}
	if r.Model == "" {
		return errAt("model", "must not be empty")
	}
	if !r.Has("input") {
		return errAt("input", "required field is missing")
	}
	return nil
}

// decodeEmbeddingInput accepts a string, []string, []int or [][]int, as
// OpenAI does: no empty string, no empty array, at most MaxEmbeddingInputs
// inputs.
func decodeEmbeddingInput(path string, raw json.RawMessage) (Prompt, *Error) {
	return decodeTexts(path, raw, MaxEmbeddingInputs, "inputs", false)
}
