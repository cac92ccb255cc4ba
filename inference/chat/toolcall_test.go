package chat

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

func TestParseToolCalls(t *testing.T) {
	weather := ParsedCall{Name: "get_weather", Arguments: `{"location": "Paris", "unit": "celsius"}`}
	search := ParsedCall{Name: "search", Arguments: `{"q": "llamas"}`}
	tests := []struct {
		name        string
		format      ToolFormat
		text        string
		wantContent string
		wantCalls   []ParsedCall
		wantErr     bool
	}{
		{"hermes plain", ToolFormatHermes, "Just text.", "Just text.", nil, false},
		{"hermes one", ToolFormatHermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>", "", []ParsedCall{weather}, false},
		{"hermes two with content", ToolFormatHermes, "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"llamas\"}}\n</tool_call>", "Let me check.", []ParsedCall{weather, search}, false},
		{"hermes string arguments", ToolFormatHermes, `<tool_call>{"name": "search", "arguments": "{\"q\": \"llamas\"}"}</tool_call>`, "", []ParsedCall{search}, false},
		{"hermes no arguments", ToolFormatHermes, `<tool_call>{"name": "now"}</tool_call>`, "", []ParsedCall{{Name: "now", Arguments: "{}"}}, false},
		{"hermes unclosed at end", ToolFormatHermes, `<tool_call>{"name": "search", "arguments": {"q": "llamas"}}`, "", []ParsedCall{search}, false},
		{"hermes think then call", ToolFormatHermes, "<think>\nhmm\n</think>\n\n<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"llamas\"}}\n</tool_call>", "<think>\nhmm\n</think>", []ParsedCall{search}, false},
		{"hermes bad json", ToolFormatHermes, `<tool_call>{"name": "search", "arguments": {"q": }</tool_call>`, "", nil, true},
		{"hermes no name", ToolFormatHermes, `<tool_call>{"arguments": {}}</tool_call>`, "", nil, true},
		{"hermes arguments not object", ToolFormatHermes, `<tool_call>{"name": "x", "arguments": [1]}</tool_call>`, "", nil, true},
		{"hermes truncated", ToolFormatHermes, `<tool_call>{"name": "sea`, "", nil, true},

		{"llama plain", ToolFormatLlama3, "The weather is fine.", "The weather is fine.", nil, false},
		{"llama one", ToolFormatLlama3, `{"name": "get_weather", "parameters": {"location": "Paris", "unit": "celsius"}}`, "", []ParsedCall{weather}, false},
		{"llama python tag", ToolFormatLlama3, `<|python_tag|>{"name": "search", "parameters": {"q": "llamas"}}`, "", []ParsedCall{search}, false},
		{"llama two separated", ToolFormatLlama3, `{"name": "get_weather", "parameters": {"location": "Paris", "unit": "celsius"}}; {"name": "search", "parameters": {"q": "llamas"}}`, "", []ParsedCall{weather, search}, false},
		{"llama json content", ToolFormatLlama3, `{"answer": 42}`, `{"answer": 42}`, nil, false},
		{"llama truncated", ToolFormatLlama3, `{"name": "search", "parameters": {"q": `, "", nil, true},
		{"llama trailing text", ToolFormatLlama3, `{"name": "search", "parameters": {"q": "llamas"}} and more`, "", nil, true},
		{"llama tag builtin", ToolFormatLlama3, `<|python_tag|>brave_search.call(query="x")`, "", nil, true},

		{"mistral plain", ToolFormatMistral, "Bonjour.", "Bonjour.", nil, false},
		{"mistral list", ToolFormatMistral, `[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}, {"name": "search", "arguments": {"q": "llamas"}, "id": "abc123XYZ"}]`, "", []ParsedCall{weather, search}, false},
		{"mistral new format", ToolFormatMistral, `[TOOL_CALLS]get_weather[ARGS]{"location": "Paris", "unit": "celsius"}[TOOL_CALLS]search[ARGS]{"q": "llamas"}`, "", []ParsedCall{weather, search}, false},
		{"mistral call id", ToolFormatMistral, `Sure. [TOOL_CALLS]search[CALL_ID]abc123XYZ[ARGS]{"q": "llamas"}`, "Sure.", []ParsedCall{search}, false},
		{"mistral no args", ToolFormatMistral, `[TOOL_CALLS]search`, "", nil, true},
		{"mistral bad list", ToolFormatMistral, `[TOOL_CALLS][{"name": "x", "arguments": {]`, "", nil, true},
		{"mistral empty list", ToolFormatMistral, `[TOOL_CALLS][]`, "", nil, true},
		{"mistral trailing", ToolFormatMistral, `[TOOL_CALLS]search[ARGS]{"q": "llamas"} done`, "", nil, true},

		{"none format", ToolFormatNone, `<tool_call>{"name": "x"}</tool_call>`, `<tool_call>{"name": "x"}</tool_call>`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content, calls, err := ParseToolCalls(tt.format, tt.text)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformedToolCall) {
					t.Fatalf("want ErrMalformedToolCall, got %v", err)
				}
				if content != tt.text || calls != nil {
					t.Fatalf("malformed output must come back as content: %q %v", content, calls)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if content != tt.wantContent {
				t.Errorf("content %q, want %q", content, tt.wantContent)
			}
			if !reflect.DeepEqual(calls, tt.wantCalls) {
				t.Errorf("calls %+v, want %+v", calls, tt.wantCalls)
			}
		})
	}
}

func TestSafeContentPrefix(t *testing.T) {
	tests := []struct {
		format ToolFormat
		text   string
		want   int
	}{
		{ToolFormatHermes, "Hello", 5},
		{ToolFormatHermes, "Hello <tool", 6},
		{ToolFormatHermes, "Hello <tool_call>{", 6},
		{ToolFormatHermes, "a < b", 5},
		{ToolFormatHermes, "a <", 2},
		{ToolFormatMistral, "Hi [TOOL", 3},
		{ToolFormatMistral, "[TOOL_CALLS]x", 0},
		{ToolFormatLlama3, "", 0},
		{ToolFormatLlama3, "  ", 0},
		{ToolFormatLlama3, " {\"name\"", 0},
		{ToolFormatLlama3, "<|python", 0},
		{ToolFormatLlama3, "<b>", 3},
		{ToolFormatLlama3, "Sure", 4},
		{ToolFormatNone, "<tool_call>", 11},
	}
	for _, tt := range tests {
		if got := SafeContentPrefix(tt.format, tt.text); got != tt.want {
			t.Errorf("%v %q: got %d, want %d", tt.format, tt.text, got, tt.want)
		}
	}
	if !MayBeToolCall(ToolFormatHermes, "x <tool_c") || MayBeToolCall(ToolFormatHermes, "x") {
		t.Error("MayBeToolCall disagrees with SafeContentPrefix")
	}
}

func TestDetectToolFormat(t *testing.T) {
	want := map[string]ToolFormat{
		"HuggingFaceTB-SmolLM3-3B.jinja":             ToolFormatNone,
		"Mistral-Small-3.2-24B-Instruct-2506.jinja":  ToolFormatMistral,
		"Qwen-Qwen2.5-7B-Instruct.jinja":             ToolFormatHermes,
		"Qwen-Qwen3-0.6B.jinja":                      ToolFormatHermes,
		"google-gemma-2-2b-it.jinja":                 ToolFormatNone,
		"meta-llama-Llama-3.1-8B-Instruct.jinja":     ToolFormatLlama3,
		"meta-llama-Llama-3.2-3B-Instruct.jinja":     ToolFormatLlama3,
		"microsoft-Phi-3.5-mini-instruct.jinja":      ToolFormatNone,
		"mistralai-Mistral-Nemo-Instruct-2407.jinja": ToolFormatMistral,
	}
	dir := testutil.SharedPath(t, "assets", "chat-templates")
	for name, f := range want {
		src, err := os.ReadFile(dir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if got := DetectToolFormat(string(src)); got != f {
			t.Errorf("%s: got %v, want %v", name, got, f)
		}
	}
}

// FuzzParseToolCalls checks that any output parses without panicking, that
// failures hand the text back as content, that parsed arguments are JSON
// objects, and that the streaming hold-back never shrinks as text grows.
func FuzzParseToolCalls(f *testing.F) {
	seeds := []string{
		"", "hello", "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>",
		"<tool_call>", "<tool_call>{\"name\": \"a\", \"arguments\": \"{\\\"x\\\": 1}\"}",
		"{\"name\": \"a\", \"parameters\": {\"b\": [1, 2]}}; {\"name\": \"c\"}",
		"<|python_tag|>{\"name\": \"a\"}", "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}]",
		"[TOOL_CALLS]a[ARGS]{}[TOOL_CALLS]b[CALL_ID]123456789[ARGS]{\"x\": null}", "[TOOL_CALLS]",
	}
	for _, s := range seeds {
		for fmtID := range 4 {
			f.Add(uint8(fmtID), s)
		}
	}
	f.Fuzz(func(t *testing.T, fmtID uint8, text string) {
		format := ToolFormat(fmtID % 4)
		content, calls, err := ParseToolCalls(format, text)
		if err != nil {
			if content != text || calls != nil {
				t.Fatalf("error %v but content/calls not the raw text", err)
			}
		}
		for _, c := range calls {
			var obj map[string]json.RawMessage
			if c.Name == "" || json.Unmarshal([]byte(c.Arguments), &obj) != nil {
				t.Fatalf("bad call %+v", c)
			}
		}
		prev := 0
		for i := 0; i <= len(text); i++ {
			n := SafeContentPrefix(format, text[:i])
			if n < prev || n > i {
				t.Fatalf("SafeContentPrefix(%q) = %d after %d", text[:i], n, prev)
			}
			prev = n
		}
		if format == ToolFormatHermes && strings.Contains(text[:prev], hermesOpen) {
			t.Fatalf("released a tool-call marker as content")
		}
	})
}
