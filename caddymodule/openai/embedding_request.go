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
	const want = "string, array of strings, array of token ids or array of token-id arrays"
	switch kindOf(raw) {
	case "string":
		s, e := getString(path, raw)
		if e == nil && s == "" {
			e = errAt(path, "must not be an empty string")
		}
		return Prompt{Texts: []string{s}}, e
	case "array":
	default:
		return Prompt{}, typeErr(path, want, raw)
	}
	items, e := getArray(path, raw)
	if e != nil {
		return Prompt{}, e
	}
	if len(items) == 0 {
		return Prompt{}, errAt(path, "must not be empty")
	}
	first := kindOf(items[0])
	switch first {
	case "number": // one token sequence
		ids, e := decodeTokenIDs(path, items)
		return Prompt{Tokens: [][]int{ids}}, e
	case "string", "array":
	default:
		return Prompt{}, typeErr(elem(path, 0), "string, token id or array of token ids", items[0])
	}
	if len(items) > MaxEmbeddingInputs {
		return Prompt{}, errAt(path, "at most %d inputs are allowed, got %d", MaxEmbeddingInputs, len(items))
	}
	var p Prompt
	for i, it := range items {
		ip := elem(path, i)
		if kindOf(it) != first {
			return Prompt{}, typeErr(ip, first+" like the first element", it)
		}
		if first == "string" {
			s, e := getString(ip, it)
			if e != nil {
				return Prompt{}, e
			}
			if s == "" {
				return Prompt{}, errAt(ip, "must not be an empty string")
			}
			p.Texts = append(p.Texts, s)
			continue
		}
		seq, e := getArray(ip, it)
		if e != nil {
			return Prompt{}, e
		}
		if len(seq) == 0 {
			return Prompt{}, errAt(ip, "token-id array must not be empty")
		}
		ids, e := decodeTokenIDs(ip, seq)
		if e != nil {
			return Prompt{}, e
		}
		p.Tokens = append(p.Tokens, ids)
	}
	return p, nil
}
