package openaitest

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/caddymodule/openai"
)

func TestParseSSE(t *testing.T) {
	events, done, err := ParseSSE(strings.NewReader("data: {\"a\":1}\n\n: ping\n\ndata: [1]\n\ndata: [DONE]\n\n"))
	if err != nil || !done || len(events) != 2 || string(events[0]) != `{"a":1}` || string(events[1]) != `[1]` {
		t.Fatalf("got %q %v %v", events, done, err)
	}
	events, done, err = ParseSSE(strings.NewReader("data: {}\n\n"))
	if err != nil || done || len(events) != 1 {
		t.Fatalf("stream without [DONE]: %q %v %v", events, done, err)
	}
	tests := []struct{ name, in, want string }{
		{"after done", "data: [DONE]\n\ndata: {}\n\n", "line 3: data after [DONE]"},
		{"no blank line", "data: {}\ndata: {}\n\n", "line 2: event not followed by a blank line"},
		{"stray blank", "\n", "line 1: blank line without an event"},
		{"bad json", "data: {x}\n\n", "line 1: event is not valid JSON"},
		{"no space", "data:{}\n\n", `line 1: expected "data: " or a comment, got "data:{}"`},
		{"event field", "event: x\n\n", `line 1: expected "data: " or a comment, got "event: x"`},
		{"crlf", "data: {}\r\n\r\n", `line 1: carriage return (OpenAI streams end lines with \n only)`},
		{"truncated", "data: {}\n", "stream ends inside an event"},
		{"comment without blank", ": ping\ndata: {}\n\n", "line 2: comment not followed by a blank line"},
		{"comment at end", ": ping", "line 1: comment not followed by a blank line"},
	}
	for _, tt := range tests {
		if _, _, err := ParseSSE(strings.NewReader(tt.in)); err == nil || err.Error() != tt.want {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

func FuzzParseSSE(f *testing.F) {
	for _, s := range []string{"data: {}\n\ndata: [DONE]\n\n", ": ping\n\n", "data: x\n", "\n\n", "data: [DONE]\n\n: x\n\n",
		`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]},"logprobs":null,"finish_reason":null}]}` + "\n\n" +
			`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":"stop"}],"usage":null}` + "\n\ndata: [DONE]\n\n",
		`data: {"id":"cmpl-x","object":"text_completion","created":1,"model":"m","choices":[{"text":"a","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":null}` + "\n\n" +
			`data: {"id":"cmpl-x","object":"text_completion","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}` + "\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		events, _, err := ParseSSE(strings.NewReader(string(in)))
		for _, ev := range events {
			if !json.Valid(ev) {
				t.Fatalf("returned invalid JSON %q", ev)
			}
		}
		if err == nil {
			// Whatever parses also checks as a stream without panicking.
			_, _ = CheckChatStream(events, false)
			_, _ = CheckTextStream(events, true)
		}
	})
}

// streamOf writes chunks through the real SSE writer and parses them back.
func streamOf(t *testing.T, chunks ...any) []json.RawMessage {
	t.Helper()
	rec := httptest.NewRecorder()
	s := openai.NewSSE(rec)
	for _, c := range chunks {
		if err := s.Send(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Done(); err != nil {
		t.Fatal(err)
	}
	events, done, err := ParseSSE(rec.Body)
	if err != nil || !done {
		t.Fatalf("parse: %v done=%v", err, done)
	}
	return events
}

func TestCheckChatStreamAccepts(t *testing.T) {
	st := openai.ChatStream{ID: "chatcmpl-1", Created: 5, Model: "m", IncludeUsage: true}
	events := streamOf(t,
		st.Chunk(openai.ChunkChoice{Index: 0, Delta: openai.RoleDelta()}, openai.ChunkChoice{Index: 1, Delta: openai.Delta{Role: openai.RoleAssistant,
			ToolCalls: []openai.ToolCallDelta{{Index: 0, ID: "call_a", Type: "function", Function: openai.FunctionDelta{Name: "f"}}}}}),
		st.Chunk(openai.ChunkChoice{Index: 0, Delta: openai.TextDelta("Hel")}),
		st.Chunk(openai.ChunkChoice{Index: 1, Delta: openai.Delta{ToolCalls: []openai.ToolCallDelta{{Index: 0, Function: openai.FunctionDelta{Arguments: `{"x":`}}}}}),
		st.Chunk(openai.ChunkChoice{Index: 1, Delta: openai.Delta{ToolCalls: []openai.ToolCallDelta{{Index: 0, Function: openai.FunctionDelta{Arguments: `1}`}},
			{Index: 1, ID: "call_b", Type: "function", Function: openai.FunctionDelta{Name: "g", Arguments: "{}"}}}}}),
		st.Chunk(openai.ChunkChoice{Index: 0, Delta: openai.TextDelta("lo"), FinishReason: openai.FinishLength}),
		st.Chunk(openai.ChunkChoice{Index: 1, FinishReason: openai.FinishToolCalls}),
		st.UsageChunk(openai.NewUsage(3, 4)),
	)
	sum, err := CheckChatStream(events, true)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := []openai.ToolCall{{ID: "call_a", Type: "function", Function: openai.FunctionCall{Name: "f", Arguments: `{"x":1}`}},
		{ID: "call_b", Type: "function", Function: openai.FunctionCall{Name: "g", Arguments: "{}"}}}
	if sum.Text[0] != "Hello" || sum.FinishReason[0] != openai.FinishLength || sum.FinishReason[1] != openai.FinishToolCalls ||
		!reflect.DeepEqual(sum.ToolCalls[1], wantCalls) || *sum.Usage != openai.NewUsage(3, 4) {
		t.Errorf("summary %+v", sum)
	}

	// Without include_usage there is no usage key at all.
	plain := openai.ChatStream{ID: "chatcmpl-1", Created: 5, Model: "m"}
	events = streamOf(t, plain.Chunk(openai.ChunkChoice{Delta: openai.RoleDelta()}), plain.Chunk(openai.ChunkChoice{Delta: openai.TextDelta("x"), FinishReason: openai.FinishStop}))
	if sum, err := CheckChatStream(events, false); err != nil || sum.Text[0] != "x" {
		t.Errorf("plain stream: %v", err)
	}

	ts := openai.TextStream{ID: "cmpl-1", Created: 5, Model: "m", IncludeUsage: true}
	events = streamOf(t, ts.Chunk(openai.TextChoice{Text: "a"}), ts.Chunk(openai.TextChoice{Text: "b", FinishReason: openai.FinishStop}), ts.UsageChunk(openai.NewUsage(1, 2)))
	if sum, err := CheckTextStream(events, true); err != nil || sum.Text[0] != "ab" || sum.FinishReason[0] != openai.FinishStop {
		t.Errorf("text stream: %v %+v", err, sum)
	}
}

func TestCheckChatStreamRejects(t *testing.T) {
	st := openai.ChatStream{ID: "chatcmpl-1", Created: 5, Model: "m"}
	us := openai.ChatStream{ID: "chatcmpl-1", Created: 5, Model: "m", IncludeUsage: true}
	role := openai.ChunkChoice{Delta: openai.RoleDelta()}
	stop := openai.ChunkChoice{FinishReason: openai.FinishStop}
	other := st
	other.Model = "n"
	tests := []struct {
		name         string
		includeUsage bool
		chunks       []any
		want         string
	}{
		{"empty", false, nil, "stream has no events"},
		{"error event", false, []any{st.Chunk(role), openai.Internal("boom")}, `event 1: error event {"message":"boom","type":"server_error","param":null,"code":null}`},
		{"wrong object", false, []any{openai.TextStream{ID: "chatcmpl-1"}.Chunk()}, `event 0: object "text_completion", want "chat.completion.chunk"`},
		{"bad id", false, []any{openai.ChatStream{ID: "x"}.Chunk(role, stop)}, `event 0: id "x" does not start with "chatcmpl-"`},
		{"model changes", false, []any{st.Chunk(role), other.Chunk(stop)}, "event 1: id, created or model changed mid-stream"},
		{"no role first", false, []any{st.Chunk(openai.ChunkChoice{Delta: openai.TextDelta("x")})}, `event 0 choice 0: the first delta of a choice must carry role "assistant"`},
		{"role twice", false, []any{st.Chunk(role), st.Chunk(role)}, "event 1 choice 0: role repeated after the first delta"},
		{"chunk after finish", false, []any{st.Chunk(role), st.Chunk(stop), st.Chunk(openai.ChunkChoice{Delta: openai.TextDelta("x")})}, "event 2 choice 0: chunk after the choice's finish_reason"},
		{"never finished", false, []any{st.Chunk(role)}, "choice 0 never got a finish_reason"},
		{"usage without option", false, []any{us.Chunk(role, stop)}, "event 0: usage key present without stream_options.include_usage"},
		{"usage key missing", true, []any{st.Chunk(role, stop)}, "event 0: usage key missing (must be null or, in the last chunk, filled)"},
		{"no usage chunk", true, []any{us.Chunk(role, stop)}, "event 0: stream ends without the usage chunk"},
		{"usage early", true, []any{us.UsageChunk(openai.NewUsage(1, 1)), us.Chunk(role, stop)}, "event 0: usage filled before the last chunk"},
		{"usage bad total", true, []any{us.Chunk(role, stop), us.UsageChunk(openai.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 3})}, "event 1: total_tokens 3 != 1 + 1"},
		{"tool call without id", false, []any{st.Chunk(openai.ChunkChoice{Delta: openai.Delta{Role: openai.RoleAssistant, ToolCalls: []openai.ToolCallDelta{{Function: openai.FunctionDelta{Name: "f"}}}}})}, `event 0 choice 0: tool call 0 opens without id, type "function" and name`},
		{"tool call repeats name", false, []any{st.Chunk(openai.ChunkChoice{Delta: openai.Delta{Role: openai.RoleAssistant, ToolCalls: []openai.ToolCallDelta{{ID: "c", Type: "function", Function: openai.FunctionDelta{Name: "f"}}}}}),
			st.Chunk(openai.ChunkChoice{Delta: openai.Delta{ToolCalls: []openai.ToolCallDelta{{Function: openai.FunctionDelta{Name: "f"}}}}})}, "event 1 choice 0: tool call 0 repeats id, type or name"},
		{"tool call skips", false, []any{st.Chunk(openai.ChunkChoice{Delta: openai.Delta{Role: openai.RoleAssistant, ToolCalls: []openai.ToolCallDelta{{Index: 1, ID: "c", Type: "function", Function: openai.FunctionDelta{Name: "f"}}}}})}, "event 0 choice 0: tool call index 1 skips ahead of 0"},
		{"unknown finish reason", false, []any{st.Chunk(role, openai.ChunkChoice{Index: 1, Delta: openai.RoleDelta(), FinishReason: "error"})}, `event 0 choice 1: finish_reason "error"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckChatStream(streamOf(t, tt.chunks...), tt.includeUsage)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
		})
	}
	// Hand-written chunks: a missing finish_reason key is caught too.
	raw := []json.RawMessage{json.RawMessage(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"logprobs":null}]}`)}
	if _, err := CheckChatStream(raw, false); err == nil || err.Error() != "event 0 choice 0: finish_reason key missing (must be null until the last chunk)" {
		t.Errorf("missing finish_reason: %v", err)
	}
}

// TestWriterStreamParses reads back, as a client does, the stream that
// openai's TestSSEThroughCaddyLikeWriter writes.
func TestWriterStreamParses(t *testing.T) {
	rec := httptest.NewRecorder()
	s := openai.NewSSE(rec)
	st := openai.ChatStream{ID: "chatcmpl-x", Created: 1, Model: "m", IncludeUsage: true}
	steps := []func() error{
		func() error { return s.Send(st.Chunk(openai.ChunkChoice{Delta: openai.RoleDelta()})) },
		func() error { return s.Send(st.Chunk(openai.ChunkChoice{Delta: openai.TextDelta("a<b")})) },
		func() error { return s.Comment("keep\nalive") },
		func() error { return s.Send(st.Chunk(openai.ChunkChoice{FinishReason: openai.FinishStop})) },
		func() error { return s.Send(st.UsageChunk(openai.NewUsage(1, 2))) },
		s.Done,
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	events, done, err := ParseSSE(strings.NewReader(rec.Body.String()))
	if err != nil || !done {
		t.Fatalf("ParseSSE: %v, done %v", err, done)
	}
	if sum, err := CheckChatStream(events, true); err != nil || sum.Text[0] != "a<b" || sum.Usage.TotalTokens != 3 {
		t.Errorf("CheckChatStream: %v", err)
	}
}
