package openai

import (
	"encoding/json"
	"math"
	"testing"
)

// mustJSON encodes v as WriteJSON and SSE.Send put it on the wire.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return string(b)
}

func TestResponseGolden(t *testing.T) {
	const id, created, model = "chatcmpl-abc123", 1699553600, "mlx-community/Mistral-7B-Instruct-v0.3-4bit"
	stream := ChatStream{ID: id, Created: created, Model: model}
	usageStream := ChatStream{ID: id, Created: created, Model: model, IncludeUsage: true}
	minus := math.Inf(-1)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"seed document chat response", ChatCompletion{
			ID: id, Created: created, Model: model,
			Choices: []ChatChoice{{Index: 0, Message: ResponseMessage{
				Content: "Hello! I'm doing well, thank you for asking. How can I help you today?"}, FinishReason: FinishStop}},
			Usage:              NewUsage(10, 16),
			ConversationID:     "chat-12345",
			PerformanceMetrics: &PerformanceMetrics{InferenceTimeMS: 1250, TokensPerSecond: 12.8, TimeToFirstTokenMS: 95.5},
		}, `{"id":"chatcmpl-abc123","object":"chat.completion","created":1699553600,"model":"mlx-community/Mistral-7B-Instruct-v0.3-4bit",` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! I'm doing well, thank you for asking. How can I help you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
			`"usage":{"prompt_tokens":10,"completion_tokens":16,"total_tokens":26},"conversation_id":"chat-12345",` +
			`"performance_metrics":{"inference_time_ms":1250,"tokens_per_second":12.8,"time_to_first_token_ms":95.5}}`},
		{"tool call response, content null", ChatCompletion{
			ID: id, Created: created, Model: "m", SystemFingerprint: "fp_1",
			Choices: []ChatChoice{{Message: ResponseMessage{ToolCalls: []ToolCall{{ID: "call_1", Type: "function",
				Function: FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris","unit":"c"}`}}}}, FinishReason: FinishToolCalls}},
			Usage: Usage{PromptTokens: 5, CompletionTokens: 7, TotalTokens: 12, PromptTokensDetails: &PromptTokensDetails{CachedTokens: 4}},
		}, `{"id":"chatcmpl-abc123","object":"chat.completion","created":1699553600,"model":"m",` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"c\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],` +
			`"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":4}},"system_fingerprint":"fp_1"}`},
		{"empty content and html stay verbatim", ResponseMessage{Content: ""},
			`{"role":"assistant","content":"","refusal":null}`},
		{"reasoning extension", ResponseMessage{Content: "4", ReasoningContent: "2+2"},
			`{"role":"assistant","content":"4","refusal":null,"reasoning_content":"2+2"}`},
		{"reasoning delta", Delta{ReasoningContent: "hm"}, `{"reasoning_content":"hm"}`},
		{"refusal", ResponseMessage{Refusal: "I can't <help>"},
			`{"role":"assistant","content":null,"refusal":"I can't <help>"}`},
		{"logprobs", ChatChoice{Index: 1, Message: ResponseMessage{Content: "Hi"}, FinishReason: FinishLength,
			Logprobs: &ChoiceLogprobs{Content: []TokenLogprob{{Token: "Hi", Logprob: -0.25, Bytes: TokenBytes("Hi"),
				TopLogprobs: []TopLogprob{{Token: "Hi", Logprob: -0.25, Bytes: []int{72, 105}}, {Token: "\xe2", Logprob: Logprob(minus), Bytes: []int{226}}}},
				{Token: "!", Logprob: -1}}}},
			`{"index":1,"message":{"role":"assistant","content":"Hi","refusal":null},"logprobs":{"content":[` +
				`{"token":"Hi","logprob":-0.25,"bytes":[72,105],"top_logprobs":[{"token":"Hi","logprob":-0.25,"bytes":[72,105]},{"token":"\ufffd","logprob":-9999,"bytes":[226]}]},` +
				`{"token":"!","logprob":-1,"bytes":null,"top_logprobs":[]}],"refusal":null},"finish_reason":"length"}`},
		{"empty logprobs", ChoiceLogprobs{}, `{"content":[],"refusal":null}`},
		{"first chunk", stream.Chunk(ChunkChoice{Delta: RoleDelta()}),
			`{"id":"chatcmpl-abc123","object":"chat.completion.chunk","created":1699553600,"model":"mlx-community/Mistral-7B-Instruct-v0.3-4bit",` +
				`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`},
		{"content chunk with include_usage", usageStream.Chunk(ChunkChoice{Delta: TextDelta("Hel")}),
			`{"id":"chatcmpl-abc123","object":"chat.completion.chunk","created":1699553600,"model":"mlx-community/Mistral-7B-Instruct-v0.3-4bit",` +
				`"choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}],"usage":null}`},
		{"last content chunk", stream.Chunk(ChunkChoice{Index: 1, FinishReason: FinishStop}),
			`{"id":"chatcmpl-abc123","object":"chat.completion.chunk","created":1699553600,"model":"mlx-community/Mistral-7B-Instruct-v0.3-4bit",` +
				`"choices":[{"index":1,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`},
		{"usage chunk", usageStream.UsageChunk(NewUsage(3, 4)),
			`{"id":"chatcmpl-abc123","object":"chat.completion.chunk","created":1699553600,"model":"mlx-community/Mistral-7B-Instruct-v0.3-4bit",` +
				`"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`},
		{"tool call chunks", ChatStream{ID: "c", Created: 1, Model: "m", SystemFingerprint: "fp"}.Chunk(
			ChunkChoice{Delta: Delta{Role: RoleAssistant, ToolCalls: []ToolCallDelta{{Index: 0, ID: "call_1", Type: "function", Function: FunctionDelta{Name: "f"}}}}},
			ChunkChoice{Index: 1, Delta: Delta{ToolCalls: []ToolCallDelta{{Index: 0, Function: FunctionDelta{Arguments: `{"a":`}}}}}),
			`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[` +
				`{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"logprobs":null,"finish_reason":null},` +
				`{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]},"logprobs":null,"finish_reason":null}]}`},
		{"text completion", TextCompletion{ID: "cmpl-1", Created: 2, Model: "m",
			Choices: []TextChoice{{Text: " bright", FinishReason: FinishLength, Logprobs: &TextLogprobs{
				Tokens: []string{"The", " bright"}, TokenLogprobs: []Logprob{NoLogprob, -0.5},
				TopLogprobs: []TopLogprobMap{nil, {{Token: " dark", Logprob: -1.5}, {Token: " bright", Logprob: -0.5}, {Token: " bright", Logprob: -2}}}, TextOffset: []int{0, 3}}}},
			Usage: &Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}},
			`{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","choices":[{"text":" bright","index":0,"logprobs":` +
				`{"tokens":["The"," bright"],"token_logprobs":[null,-0.5],"top_logprobs":[null,{" bright":-0.5," dark":-1.5}],"text_offset":[0,3]},` +
				`"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`},
		{"text completion without usage set", TextCompletion{ID: "cmpl-1", Created: 2, Model: "m"},
			`{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`},
		{"empty text logprobs", TextLogprobs{}, `{"tokens":[],"token_logprobs":[],"top_logprobs":[],"text_offset":[]}`},
		{"text chunk", TextStream{ID: "cmpl-1", Created: 2, Model: "m"}.Chunk(TextChoice{Text: "x"}),
			`{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","choices":[{"text":"x","index":0,"logprobs":null,"finish_reason":null}]}`},
		{"text chunk with include_usage", TextStream{ID: "cmpl-1", Created: 2, Model: "m", IncludeUsage: true}.Chunk(TextChoice{Text: "x", FinishReason: FinishStop}),
			`{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","choices":[{"text":"x","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":null}`},
		{"text usage chunk", TextStream{ID: "cmpl-1", Created: 2, Model: "m", IncludeUsage: true}.UsageChunk(NewUsage(1, 2)),
			`{"id":"cmpl-1","object":"text_completion","created":2,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`},
		{"seed document model list", ModelList{Data: []Model{NewModel("mlx-community/Mistral-7B-Instruct-v0.3-4bit", 1699553600)}},
			`{"object":"list","data":[{"id":"mlx-community/Mistral-7B-Instruct-v0.3-4bit","object":"model","created":1699553600,"owned_by":"impetus",` +
				`"permission":[],"root":"mlx-community/Mistral-7B-Instruct-v0.3-4bit","parent":null}]}`},
		{"empty model list", ModelList{}, `{"object":"list","data":[]}`},
		{"model with parent", Model{ID: "a", Created: 1, OwnedBy: "o", Root: "r", Parent: "p"},
			`{"id":"a","object":"model","created":1,"owned_by":"o","permission":[],"root":"r","parent":"p"}`},
		{"error", InvalidRequest("messages[1].content", "messages[1].content: expected string"),
			`{"error":{"message":"messages[1].content: expected string","type":"invalid_request_error","param":"messages[1].content","code":null}}`},
		{"error without param", Internal("boom"),
			`{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustJSON(t, tt.v); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// The seed document's chat response must decode into the same values we
// encode, so a client written against the document reads our output.
func TestSeedChatResponseShape(t *testing.T) {
	seed := `{"id":"chatcmpl-abc123","object":"chat.completion","created":1699553600,"model":"mlx-community/Mistral-7B-Instruct-v0.3-4bit",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! I'm doing well, thank you for asking. How can I help you today?"},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":10,"completion_tokens":16,"total_tokens":26},"conversation_id":"chat-12345",` +
		`"performance_metrics":{"inference_time_ms":1250,"tokens_per_second":12.8}}`
	ours := mustJSON(t, ChatCompletion{ID: "chatcmpl-abc123", Created: 1699553600, Model: "mlx-community/Mistral-7B-Instruct-v0.3-4bit",
		Choices: []ChatChoice{{Message: ResponseMessage{Content: "Hello! I'm doing well, thank you for asking. How can I help you today?"}, FinishReason: "stop"}},
		Usage:   NewUsage(10, 16), ConversationID: "chat-12345",
		PerformanceMetrics: &PerformanceMetrics{InferenceTimeMS: 1250, TokensPerSecond: 12.8}})
	var a, b map[string]any
	if err := json.Unmarshal([]byte(seed), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(ours), &b); err != nil {
		t.Fatal(err)
	}
	// Every documented key is present with the documented value.
	var check func(path string, want, got any)
	check = func(path string, want, got any) {
		switch w := want.(type) {
		case map[string]any:
			g, ok := got.(map[string]any)
			if !ok {
				t.Errorf("%s: got %T", path, got)
				return
			}
			for k, v := range w {
				check(path+"."+k, v, g[k])
			}
		case []any:
			g, ok := got.([]any)
			if !ok || len(g) != len(w) {
				t.Errorf("%s: got %v", path, got)
				return
			}
			for i := range w {
				check(path, w[i], g[i])
			}
		default:
			if want != got {
				t.Errorf("%s: got %v, want %v", path, got, want)
			}
		}
	}
	check("", a, b)
}

func TestLogprobEncoding(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want string
	}{{0, "0"}, {-1.5, "-1.5"}, {math.Inf(-1), "-9999"}, {-1e300, "-9999"}, {math.Inf(1), "0"}, {math.NaN(), "null"}} {
		if got := mustJSON(t, Logprob(tt.in)); got != tt.want {
			t.Errorf("Logprob(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
