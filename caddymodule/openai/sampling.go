package openai

import (
	"encoding/json"
	"math"
	"strconv"
)

// Sampling holds the sampling fields shared by chat and text completions.
// Nil pointers mean "not sent", so the server can apply its own defaults;
// every value present has passed the range check noted beside it.
type Sampling struct {
	Temperature       *float64 // 0..2; 0 means greedy
	TopP              *float64 // (0, 1]
	TopK              *int     // extension; >= 0, 0 disables
	MinP              *float64 // extension; 0..1
	FrequencyPenalty  *float64 // -2..2
	PresencePenalty   *float64 // -2..2
	RepetitionPenalty *float64 // extension; > 0, 1 disables
	// LogitBias maps token ids (>= 0; the server checks the vocabulary size)
	// to a bias in -100..100.
	LogitBias map[int]float64
	Seed      *int64
	// Stop holds up to Limits.MaxStop non-empty sequences; a single string
	// in the request becomes one element.
	Stop []string
}

// samplingFields returns the decoders for s's members.
func samplingFields(s *Sampling, l Limits) map[string]fieldFunc {
	setF := func(dst **float64, lo, hi float64, openLow bool) fieldFunc {
		return func(p string, raw json.RawMessage) *Error {
			f, e := floatIn(p, raw, lo, hi, openLow)
			*dst = &f
			return e
		}
	}
	return map[string]fieldFunc{
		"temperature":       setF(&s.Temperature, 0, 2, false),
		"top_p":             setF(&s.TopP, 0, 1, true),
		"min_p":             setF(&s.MinP, 0, 1, false),
		"frequency_penalty": setF(&s.FrequencyPenalty, -2, 2, false),
		"presence_penalty":  setF(&s.PresencePenalty, -2, 2, false),
		"repetition_penalty": func(p string, raw json.RawMessage) *Error {
			f, e := getFloat(p, raw)
			if e != nil {
				return e
			}
			if f <= 0 {
				return errAt(p, "must be greater than 0, got %s", fnum(f))
			}
			s.RepetitionPenalty = &f
			return nil
		},
		"top_k": func(p string, raw json.RawMessage) *Error {
			n, e := intIn(p, raw, 0, math.MaxInt32)
			s.TopK = &n
			return e
		},
		"seed": func(p string, raw json.RawMessage) *Error {
			n, e := getInt(p, raw)
			s.Seed = &n
			return e
		},
		"logit_bias": func(p string, raw json.RawMessage) *Error {
			ms, e := members(p, raw)
			if e != nil {
				return e
			}
			if len(ms) > l.MaxLogitBias {
				return errAt(p, "at most %d entries are allowed, got %d", l.MaxLogitBias, len(ms))
			}
			s.LogitBias = make(map[int]float64, len(ms))
			for _, m := range ms {
				id, err := strconv.ParseInt(m.key, 10, 32)
				if err != nil || id < 0 {
					return errAt(child(p, m.key), "expected a token id (non-negative integer) as key, got %s", quote(m.key))
				}
				b, e := floatIn(child(p, m.key), m.val, -100, 100, false)
				if e != nil {
					return e
				}
				s.LogitBias[int(id)] = b
			}
			return nil
		},
		"stop": func(p string, raw json.RawMessage) *Error {
			stop, e := decodeStop(p, raw, l)
			s.Stop = stop
			return e
		},
	}
}

// decodeStop accepts a string or an array of strings.
func decodeStop(path string, raw json.RawMessage, l Limits) ([]string, *Error) {
	check := func(p, s string) *Error {
		if s == "" {
			return errAt(p, "stop sequences must not be empty")
		}
		if len(s) > l.MaxStopBytes {
			return errAt(p, "stop sequence is %d bytes, more than the limit of %d", len(s), l.MaxStopBytes)
		}
		return nil
	}
	switch kindOf(raw) {
	case "string":
		s, e := getString(path, raw)
		if e != nil {
			return nil, e
		}
		return []string{s}, check(path, s)
	case "array":
		items, e := getArray(path, raw)
		if e != nil {
			return nil, e
		}
		if len(items) > l.MaxStop {
			return nil, errAt(path, "at most %d stop sequences are allowed, got %d", l.MaxStop, len(items))
		}
		out := make([]string, 0, len(items))
		for i, it := range items {
			s, e := getString(elem(path, i), it)
			if e != nil {
				return nil, e
			}
			if e := check(elem(path, i), s); e != nil {
				return nil, e
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, typeErr(path, "string or array of strings", raw)
}

// StreamOptions is stream_options; it is only allowed with stream: true.
type StreamOptions struct {
	IncludeUsage bool
	// IncludeObfuscation is a newer OpenAI option, kept for the server to
	// refuse or ignore; nil when not sent.
	IncludeObfuscation *bool
}

func decodeStreamOptions(path string, raw json.RawMessage) (*StreamOptions, *Error) {
	so := &StreamOptions{}
	_, e := decodeObject(path, raw, map[string]fieldFunc{
		"include_usage": func(p string, r json.RawMessage) (e *Error) {
			so.IncludeUsage, e = getBool(p, r)
			return e
		},
		"include_obfuscation": func(p string, r json.RawMessage) *Error {
			b, e := getBool(p, r)
			so.IncludeObfuscation = &b
			return e
		},
	}, unknownNested)
	return so, e
}

// mergeFields adds src's decoders to dst.
func mergeFields(dst, src map[string]fieldFunc) map[string]fieldFunc {
	for k, v := range src {
		dst[k] = v
	}
	return dst
}
