package openai_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/impetusllm/impetus/caddymodule/openai"
)

// A handler decodes the request, refuses what it does not implement by name,
// then streams chunks stamped by one ChatStream.
func Example() {
	handler := func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, openai.DefaultLimits().MaxBodyBytes)
		req, e := openai.DecodeChatRequest(r.Body, openai.Limits{})
		if e != nil {
			openai.WriteError(w, e)
			return
		}
		if req.Has("reasoning_effort") {
			openai.WriteError(w, openai.Unsupported("reasoning_effort", "reasoning_effort is not supported"))
			return
		}
		st := openai.ChatStream{ID: "chatcmpl-example", Created: 1700000000, Model: req.Model, IncludeUsage: req.IncludeUsage()}
		sse := openai.NewSSE(w)
		_ = sse.Send(st.Chunk(openai.ChunkChoice{Delta: openai.RoleDelta()}))
		_ = sse.Send(st.Chunk(openai.ChunkChoice{Delta: openai.TextDelta("Hi")}))
		_ = sse.Send(st.Chunk(openai.ChunkChoice{FinishReason: openai.FinishStop}))
		if req.IncludeUsage() {
			_ = sse.Send(st.UsageChunk(openai.NewUsage(9, 1)))
		}
		_ = sse.Done()
	}
	body := `{"model":"m","messages":[{"role":"user","content":"Hello"}],"stream":true,"stream_options":{"include_usage":true}}`
	rec := httptest.NewRecorder()
	handler(rec, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body)))
	fmt.Print(rec.Body.String())

	rec = httptest.NewRecorder()
	handler(rec, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[]}`)))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// data: {"id":"chatcmpl-example","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}
	//
	// data: {"id":"chatcmpl-example","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}
	//
	// data: {"id":"chatcmpl-example","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}
	//
	// data: {"id":"chatcmpl-example","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}
	//
	// data: [DONE]
	//
	// 400 {"error":{"message":"messages: must contain at least one message","type":"invalid_request_error","param":"messages","code":null}}
}
