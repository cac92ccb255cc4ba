package openai

import (
	"encoding/json"
	"io"
	"math"
	"slices"
)

// CompletionRequest is a decoded POST /v1/completions body.
type CompletionRequest struct {
	Model  string
	Prompt Prompt
	Sampling

	Suffix    *string // the server may refuse it: it needs fill-in-the-middle support
	Echo      bool
	BestOf    *int // n..Limits.MaxN
	Logprobs  *int // 0..5, OpenAI's limit for this endpoint
	MaxTokens *int // 1..Limits.MaxTokens; OpenAI's default is 16
	N         *int // 1..Limits.MaxN

	Stream        bool
	StreamOptions *StreamOptions // only with Stream
	User          string

	present []string
}

// Has reports whether the request carried top-level field name with a
// non-null value.
func (r *CompletionRequest) Has(name string) bool { return slices.Contains(r.present, name) }

// Fields lists the top-level fields sent with non-null values, in order.
func (r *CompletionRequest) Fields() []string { return slices.Clone(r.present) }

// Choices returns n, defaulting to 1 (per prompt).
func (r *CompletionRequest) Choices() int {
	if r.N == nil {
		return 1
	}
	return *r.N
}

// IncludeUsage reports whether a streamed response must end with a usage chunk.
func (r *CompletionRequest) IncludeUsage() bool {
	return r.Stream && r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// Prompt is the prompt field: either texts (a string or an array of
// strings) or token-id sequences (an array of ints or of int arrays). Exactly
// one of Texts and Tokens is non-nil, with at least one element.
type Prompt struct {
	Texts  []string
	Tokens [][]int
}

// Len is the number of prompts; each yields n choices.
func (p Prompt) Len() int { return len(p.Texts) + len(p.Tokens) }

// DecodeCompletionRequest reads and validates a legacy completions request.
// Errors are 400s naming the offending field, or a 413 when the body is too
// large.
func DecodeCompletionRequest(r io.Reader, limits Limits) (*CompletionRequest, *Error) {
	l := limits.withDefaults()
	body, e := readBody(r, l.MaxBodyBytes)
	if e != nil {
		return nil, e
	}
	root, e := parseRoot(body)
	if e != nil {
		return nil, e
	}
	req := &CompletionRequest{}
	req.present, e = decodeObject("", root, req.fields(l), unknownTop)
	if e != nil {
		return nil, e
	}
	if e := req.validate(); e != nil {
		return nil, e
	}
	return req, nil
}

func (r *CompletionRequest) fields(l Limits) map[string]fieldFunc {
	intPtr := func(dst **int, lo, hi int) fieldFunc {
		return func(p string, raw json.RawMessage) *Error {
			n, e := intIn(p, raw, int64(lo), int64(hi))
			*dst = &n
			return e
		}
	}
	f := map[string]fieldFunc{
		"model": func(p string, raw json.RawMessage) (e *Error) {
			r.Model, e = getString(p, raw)
			return e
		},
		"prompt": func(p string, raw json.RawMessage) (e *Error) {
			r.Prompt, e = decodePrompt(p, raw, l)
			return e
		},
		"suffix": func(p string, raw json.RawMessage) *Error {
			s, e := getString(p, raw)
			r.Suffix = &s
			return e
		},
		"echo": func(p string, raw json.RawMessage) (e *Error) {
			r.Echo, e = getBool(p, raw)
			return e
		},
		"best_of":    intPtr(&r.BestOf, 1, l.MaxN),
		"logprobs":   intPtr(&r.Logprobs, 0, 5),
		"max_tokens": intPtr(&r.MaxTokens, 1, l.MaxTokens),
		"n":          intPtr(&r.N, 1, l.MaxN),
		"stream": func(p string, raw json.RawMessage) (e *Error) {
			r.Stream, e = getBool(p, raw)
			return e
		},
		"stream_options": func(p string, raw json.RawMessage) (e *Error) {
			r.StreamOptions, e = decodeStreamOptions(p, raw)
			return e
		},
		"user": func(p string, raw json.RawMessage) (e *Error) {
			r.User, e = getString(p, raw)
			return e
		},
	}
	return mergeFields(f, samplingFields(&r.Sampling, l))
}

func (r *CompletionRequest) validate() *Error {
	if !r.Has("model") {
		return errAt("model", "required field is missing")
	}
	if r.Model == "" {
		return errAt("model", "must not be empty")
	}
	if !r.Has("prompt") {
		return errAt("prompt", "required field is missing")
	}
	if r.BestOf != nil && *r.BestOf < r.Choices() {
		return errAt("best_of", "must be at least n (%d), got %d", r.Choices(), *r.BestOf)
	}
	if r.StreamOptions != nil && !r.Stream {
		return errAt("stream_options", "only allowed when stream is true")
	}
	return nil
}

// decodePrompt accepts a string, []string, []int or [][]int.
func decodePrompt(path string, raw json.RawMessage, l Limits) (Prompt, *Error) {
	return decodeTexts(path, raw, l.MaxPrompts, "prompts", true)
}

// decodeTexts reads a string, []string, []int or [][]int: the prompts of a
// completion or the inputs of an embedding. An array may hold at most max
// items (named noun in the error); allowEmpty lets strings be empty.
func decodeTexts(path string, raw json.RawMessage, max int, noun string, allowEmpty bool) (Prompt, *Error) {
	const want = "string, array of strings, array of token ids or array of token-id arrays"
	str := func(path string, raw json.RawMessage) (string, *Error) {
		s, e := getString(path, raw)
		if e == nil && s == "" && !allowEmpty {
			e = errAt(path, "must not be an empty string")
		}
		return s, e
	}
	switch kindOf(raw) {
	case "string":
		s, e := str(path, raw)
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
	if len(items) > max {
		return Prompt{}, errAt(path, "at most %d %s are allowed, got %d", max, noun, len(items))
	}
	var p Prompt
	for i, it := range items {
		ip := elem(path, i)
		if kindOf(it) != first {
			return Prompt{}, typeErr(ip, first+" like the first element", it)
		}
		if first == "string" {
			s, e := str(ip, it)
			if e != nil {
				return Prompt{}, e
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

// decodeTokenIDs reads non-negative int32 token ids; the server checks them
// against the vocabulary.
func decodeTokenIDs(path string, items []json.RawMessage) ([]int, *Error) {
	ids := make([]int, len(items))
	for i, it := range items {
		p := elem(path, i)
		if kindOf(it) != "number" {
			return nil, typeErr(p, "token id (integer)", it)
		}
		n, e := intIn(p, it, 0, math.MaxInt32)
		if e != nil {
			return nil, e
		}
		ids[i] = n
	}
	return ids, nil
}
