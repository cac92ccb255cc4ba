package openai

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestErrorConstructors(t *testing.T) {
	tests := []struct {
		e      *Error
		status int
		typ    string
		param  string
		code   string
		msg    string
	}{
		{InvalidRequest("n", "n: bad"), 400, "invalid_request_error", "n", "<nil>", "n: bad"},
		{InvalidRequest("", "bad"), 400, "invalid_request_error", "<nil>", "<nil>", "bad"},
		{Unsupported("reasoning_effort", "not supported"), 400, "invalid_request_error", "reasoning_effort", "unsupported_parameter", "not supported"},
		{UnsupportedValue("n", "n must be 1"), 400, "invalid_request_error", "n", "unsupported_value", "n must be 1"},
		{ContextLengthExceeded("max_tokens", 4096, 4000, 200), 400, "invalid_request_error", "max_tokens", "context_length_exceeded",
			"the model's context holds 4096 tokens, but the prompt has 4000 and max_tokens asks for 200 more (4200 in all); shorten the prompt or lower max_tokens"},
		{ContextLengthExceeded("messages", 4096, 5000, 0), 400, "invalid_request_error", "messages", "context_length_exceeded",
			"the model's context holds 4096 tokens, but the prompt has 5000; shorten the prompt"},
		{Unauthorized("invalid api key"), 401, "invalid_request_error", "<nil>", "invalid_api_key", "invalid api key"},
		{Forbidden("no"), 403, "permission_error", "<nil>", "<nil>", "no"},
		{NotFound("no such route"), 404, "not_found_error", "<nil>", "<nil>", "no such route"},
		{ModelNotFound("org/x"), 404, "not_found_error", "model", "model_not_found", `the model "org/x" does not exist or is not available`},
		{TooLarge(1024), 413, "invalid_request_error", "<nil>", "request_too_large", "request body exceeds the limit of 1024 bytes"},
		{RateLimited("slow down"), 429, "rate_limit_error", "<nil>", "rate_limit_exceeded", "slow down"},
		{Internal("boom"), 500, "server_error", "<nil>", "<nil>", "boom"},
		{Unavailable("loading"), 503, "server_error", "<nil>", "service_unavailable", "loading"},
	}
	for _, tt := range tests {
		code := "<nil>"
		if tt.e.Code != nil {
			code = *tt.e.Code
		}
		if tt.e.Status != tt.status || tt.e.Type != tt.typ || paramOf(tt.e) != tt.param || code != tt.code || tt.e.Message != tt.msg {
			t.Errorf("%+v: want %d %s %s %s %q", tt.e, tt.status, tt.typ, tt.param, tt.code, tt.msg)
		}
	}
}

func TestErrorWithDoesNotMutate(t *testing.T) {
	base := Internal("x")
	p := base.WithParam("a").WithCode("c")
	if base.Param != nil || base.Code != nil || *p.Param != "a" || *p.Code != "c" {
		t.Errorf("base %+v, derived %+v", base, p)
	}
	var err error = p
	var target *Error
	if !errors.As(err, &target) || err.Error() != "500 server_error (param a): x" {
		t.Errorf("as error: %q", err.Error())
	}
	if Internal("y").Error() != "500 server_error: y" {
		t.Errorf("Error() without param")
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		e      *Error
		status int
		body   string
	}{
		{ModelNotFound("m"), 404, `{"error":{"message":"the model \"m\" does not exist or is not available","type":"not_found_error","param":"model","code":"model_not_found"}}` + "\n"},
		{nil, 500, `{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}` + "\n"},
		// A status that is not an error must never go out: it becomes a 500.
		{NewError(200, TypeServer, "odd"), 500, `{"error":{"message":"odd","type":"server_error","param":null,"code":null}}` + "\n"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		WriteError(rec, tt.e)
		if rec.Code != tt.status || rec.Body.String() != tt.body {
			t.Errorf("got %d %s\nwant %d %s", rec.Code, rec.Body, tt.status, tt.body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := WriteJSON(rec, http.StatusOK, ModelList{Data: []Model{NewModel("a<b", 1)}}); err != nil {
		t.Fatal(err)
	}
	want := `{"object":"list","data":[{"id":"a<b","object":"model","created":1,"owned_by":"impetus","permission":[],"root":"a<b","parent":null}]}` + "\n"
	if rec.Code != 200 || rec.Body.String() != want || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	if err := WriteJSON(rec, http.StatusOK, func() {}); err == nil || rec.Code != 500 {
		t.Errorf("unencodable value: err %v, status %d", err, rec.Code)
	}
}
