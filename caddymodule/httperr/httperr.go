// Package httperr writes Impetus's error bodies: the OpenAI shape under /v1
// and the management API's shape under /api, for the handlers and, through
// the impetus_error handler, for errors raised by Caddy middleware. It also
// holds what every /api body shares: the JSON writer, timestamps, rounding
// and the method check (Only).
package httperr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/impetusllm/impetus/caddymodule/openai"
)

func init() {
	caddy.RegisterModule(ErrorWriter{})
	httpcaddyfile.RegisterHandlerDirective("impetus_error", parseErrorWriter)
	httpcaddyfile.RegisterDirectiveOrder("impetus_error", httpcaddyfile.Before, "acme_server")
}

// ErrorWriter writes the error that stopped the handler chain as a JSON body:
// the OpenAI shape under /v1 and the seed API's shape elsewhere. Use it inside
// handle_errors so that failures raised by Caddy middleware (authentication,
// rate limits) carry the same bodies as the Impetus handlers' own errors.
type ErrorWriter struct{}

// CaddyModule returns the Caddy module information.
func (ErrorWriter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.impetus_error",
		New: func() caddy.Module { return new(ErrorWriter) },
	}
}

// ServeHTTP writes the error found in the request context; with no error it
// passes the request on.
func (*ErrorWriter) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	err, _ := r.Context().Value(caddyhttp.ErrorCtxKey).(error)
	if err == nil {
		return next.ServeHTTP(w, r)
	}
	status := http.StatusInternalServerError
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.StatusCode != 0 {
		status = he.StatusCode
	}
	msg := publicMessage(r, status)
	Write(w, r, status, msg)
	return nil
}

// publicMessage is the text a client sees for a middleware error: a reason
// that Impetus middleware recorded, else the status text. Internal error
// details never reach the body.
func publicMessage(r *http.Request, status int) string {
	if v, ok := caddyhttp.GetVar(r.Context(), ReasonVar).(string); ok && v != "" {
		return v
	}
	return http.StatusText(status)
}

// ReasonVar is the request variable where Impetus middleware leaves a
// client-safe explanation for the error writer.
const ReasonVar = "impetus.error_reason"

// IsOpenAIPath reports whether a request belongs to the OpenAI surface, whose
// clients parse OpenAI error objects.
func IsOpenAIPath(r *http.Request) bool {
	return r.URL.Path == "/v1" || strings.HasPrefix(r.URL.Path, "/v1/")
}

// Write writes an error body in the shape the request's API expects.
func Write(w http.ResponseWriter, r *http.Request, status int, msg string, details ...string) {
	if IsOpenAIPath(r) {
		WriteOpenAI(w, status, msg, "")
		return
	}
	WriteAPI(w, status, msg, details...)
}

// WriteOpenAI writes {"error":{"message","type","param","code"}}.
func WriteOpenAI(w http.ResponseWriter, status int, msg, param string) {
	openai.WriteError(w, openai.ForStatus(status, msg, param))
}

// APIError is the seed API's error shape for /api routes.
type APIError struct {
	Error     string   `json:"error"`
	Type      string   `json:"type"`
	Details   []string `json:"details"`
	Timestamp string   `json:"timestamp"`
}

// WriteAPI writes the /api error shape, its type following the status.
func WriteAPI(w http.ResponseWriter, status int, msg string, details ...string) {
	if details == nil {
		details = []string{}
	}
	WriteJSON(w, status, APIError{Error: msg, Type: APIErrorType(status), Details: details, Timestamp: ISONow()})
}

// APIErrorType is the /api error type of a status.
func APIErrorType(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return "validation_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	case http.StatusServiceUnavailable:
		return "service_unavailable"
	default:
		return "internal_error"
	}
}

// WriteJSON writes v as a JSON body with status, without HTML escaping.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// ISONow is the current time in RFC 3339 UTC with milliseconds, as every /api
// body uses.
func ISONow() string { return ISOTime(time.Now()) }

// ISOTime formats t as ISONow does.
func ISOTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	impetus_error
func (e *ErrorWriter) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("impetus_error takes no block")
	}
	return nil
}

func parseErrorWriter(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var e ErrorWriter
	err := e.UnmarshalCaddyfile(h.Dispenser)
	return &e, err
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*ErrorWriter)(nil)
	_ caddyfile.Unmarshaler       = (*ErrorWriter)(nil)
)

// Only runs fn for the given method (HEAD too, for GET) and answers 405 in
// the /api shape otherwise.
func Only(w http.ResponseWriter, r *http.Request, method string, fn func(http.ResponseWriter, *http.Request)) {
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", method)
		WriteAPI(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+method)
		return
	}
	fn(w, r)
}
