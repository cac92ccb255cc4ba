package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Error types used in the "type" member of an error body, as OpenAI's API
// sends them.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "server_error"
)

// Error is an OpenAI-shaped API error: the HTTP status plus the body
// {"error":{"message","type","param","code"}}. Param and Code are JSON null
// when nil, as OpenAI SDKs expect a string or null in both.
type Error struct {
	Status  int
	Message string
	Type    string
	Param   *string
	Code    *string
}

// Error makes *Error usable as a Go error, for logging and wrapping.
func (e *Error) Error() string {
	if e.Param != nil {
		return fmt.Sprintf("%d %s (param %s): %s", e.Status, e.Type, *e.Param, e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message)
}

// WithParam returns a copy of e naming the offending request parameter.
func (e *Error) WithParam(param string) *Error {
	c := *e
	c.Param = &param
	return &c
}

// WithCode returns a copy of e carrying a machine-readable code.
func (e *Error) WithCode(code string) *Error {
	c := *e
	c.Code = &code
	return &c
}

type errorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// MarshalJSON writes the OpenAI envelope {"error":{...}}; the status is not
// part of the body.
func (e *Error) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		Error errorBody `json:"error"`
	}{errorBody{e.Message, e.Type, e.Param, e.Code}})
}

// NewError builds an error with any status and type; prefer the named
// constructors below.
func NewError(status int, typ, message string) *Error {
	return &Error{Status: status, Type: typ, Message: message}
}

// InvalidRequest is a 400 invalid_request_error; param names the offending
// field (a path such as "messages[1].content") or is empty for none.
func InvalidRequest(param, message string) *Error {
	e := NewError(http.StatusBadRequest, TypeInvalidRequest, message)
	if param != "" {
		e.Param = &param
	}
	return e
}

// Unsupported is the 400 for a valid field this server does not implement,
// with code "unsupported_parameter" as OpenAI uses; message should say what to
// do instead. Refusing loudly beats silently ignoring a field the client
// relies on.
func Unsupported(param, message string) *Error {
	return InvalidRequest(param, message).WithCode("unsupported_parameter")
}

// UnsupportedValue is the 400 for a field whose value this server does not
// implement (e.g. n > 1 on a model that cannot batch), code
// "unsupported_value".
func UnsupportedValue(param, message string) *Error {
	return InvalidRequest(param, message).WithCode("unsupported_value")
}

// ContextLengthExceeded is the 400 for a prompt plus max_tokens that does
// not fit the model's context, with code "context_length_exceeded", which
// clients (agent frameworks that trim history) test for. param is "messages"
// (or "prompt") when the prompt alone is too long, else "max_tokens".
func ContextLengthExceeded(param string, contextLen, promptTokens, maxTokens int) *Error {
	var msg string
	if maxTokens > 0 {
		msg = fmt.Sprintf("the model's context holds %d tokens, but the prompt has %d and max_tokens asks for %d more (%d in all); shorten the prompt or lower max_tokens",
			contextLen, promptTokens, maxTokens, promptTokens+maxTokens)
	} else {
		msg = fmt.Sprintf("the model's context holds %d tokens, but the prompt has %d; shorten the prompt", contextLen, promptTokens)
	}
	return InvalidRequest(param, msg).WithCode("context_length_exceeded")
}

// Unauthorized is a 401 invalid_request_error with code "invalid_api_key",
// the type and code OpenAI sends for a missing or wrong key.
func Unauthorized(message string) *Error {
	return NewError(http.StatusUnauthorized, TypeInvalidRequest, message).WithCode("invalid_api_key")
}

// Forbidden is a 403 permission_error.
func Forbidden(message string) *Error {
	return NewError(http.StatusForbidden, TypePermission, message)
}

// NotFound is a 404 not_found_error.
func NotFound(message string) *Error {
	return NewError(http.StatusNotFound, TypeNotFound, message)
}

// ModelNotFound is the 404 for an unknown model id, with param "model" and
// code "model_not_found" as OpenAI sends.
func ModelNotFound(model string) *Error {
	return NotFound(fmt.Sprintf("the model %s does not exist or is not available", quote(model))).
		WithParam("model").WithCode("model_not_found")
}

// TooLarge is the 413 for a request body over limit bytes.
func TooLarge(limit int64) *Error {
	return NewError(http.StatusRequestEntityTooLarge, TypeInvalidRequest,
		"request body exceeds the limit of "+strconv.FormatInt(limit, 10)+" bytes").
		WithCode("request_too_large")
}

// RateLimited is a 429 rate_limit_error with code "rate_limit_exceeded"; the
// handler sets Retry-After itself.
func RateLimited(message string) *Error {
	return NewError(http.StatusTooManyRequests, TypeRateLimit, message).WithCode("rate_limit_exceeded")
}

// Internal is a 500 server_error. Keep internals out of message: it reaches
// the client.
func Internal(message string) *Error {
	return NewError(http.StatusInternalServerError, TypeServer, message)
}

// Unavailable is a 503 server_error with code "service_unavailable" (a
// string: OpenAI SDKs expect code to be a string or null and break on an
// integer), for a model that is loading, a full queue, or shutdown.
func Unavailable(message string) *Error {
	return NewError(http.StatusServiceUnavailable, TypeServer, message).WithCode("service_unavailable")
}

// ForStatus is the error for a bare HTTP status, as middleware (the
// authentication provider, the rate limiter) and the router raise them,
// typed and coded as OpenAI answers that status: 401 as Unauthorized, 403
// as Forbidden, 429 as RateLimited, 503 as Unavailable, other 4xx as
// invalid_request_error and 5xx as server_error. A 404 is a missing model
// (ModelNotFound's type and code) when param is "model", else an unknown
// URL (invalid_request_error, code "unknown_url"). param, when not empty,
// names the request parameter at fault.
func ForStatus(status int, message, param string) *Error {
	var e *Error
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
		e = NewError(status, TypeInvalidRequest, message)
	case http.StatusUnauthorized:
		e = Unauthorized(message)
	case http.StatusForbidden:
		e = Forbidden(message)
	case http.StatusNotFound:
		if param == "model" {
			e = NotFound(message).WithCode("model_not_found")
		} else {
			e = NewError(status, TypeInvalidRequest, message).WithCode("unknown_url")
		}
	case http.StatusTooManyRequests:
		e = RateLimited(message)
	case http.StatusServiceUnavailable:
		e = Unavailable(message)
	default:
		e = NewError(status, TypeServer, message)
	}
	if param != "" {
		e = e.WithParam(param)
	}
	return e
}

// WriteError writes e as a JSON error response with its status. A nil e
// writes a generic 500 so that a caller bug never produces a 200.
func WriteError(w http.ResponseWriter, e *Error) {
	if e == nil {
		e = Internal("internal error")
	}
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	body, err := e.MarshalJSON()
	if err != nil { // unreachable: only strings and string pointers
		body = []byte(`{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// WriteJSON writes v as a JSON response with the given status, without HTML
// escaping (so "<" stays "<", as OpenAI sends it).
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := marshal(v)
	if err != nil {
		WriteError(w, Internal("could not encode response"))
		return fmt.Errorf("encoding response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if _, err := w.Write(append(body, '\n')); err != nil {
		return fmt.Errorf("writing response: %w", err)
	}
	return nil
}

// marshal encodes v like json.Marshal but without HTML escaping, so text such
// as "<b>" travels as OpenAI sends it.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
