package openaihandler

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference/chat"
)

func TestToolCallDeltas(t *testing.T) {
	args := `{"city": "Zürich – très élevé", "unit": "c"}`
	var deltas []openai.ToolCallDelta
	for _, d := range chat.CallDeltas([]chat.ParsedCall{{Name: "get_weather", Arguments: args}, {Name: "noop", Arguments: "{}"}}) {
		deltas = append(deltas, toolCallDelta(d))
	}
	got := map[int]string{}
	names := map[int]string{}
	ids := map[string]bool{}
	for _, c := range deltas {
		if c.ID != "" {
			if ids[c.ID] || !strings.HasPrefix(c.ID, "call_") {
				t.Fatalf("bad or repeated id %q", c.ID)
			}
			ids[c.ID] = true
			if names[c.Index] != "" || c.Type != "function" || c.Function.Arguments != "" {
				t.Fatalf("bad first fragment %+v", c)
			}
			names[c.Index] = c.Function.Name
			continue
		}
		if !utf8.ValidString(c.Function.Arguments) || len(c.Function.Arguments) == 0 {
			t.Fatalf("fragment %q is not a valid non-empty UTF-8 piece", c.Function.Arguments)
		}
		got[c.Index] += c.Function.Arguments
	}
	if names[0] != "get_weather" || names[1] != "noop" || got[0] != args || got[1] != "{}" {
		t.Fatalf("reassembled %v %v", names, got)
	}
}

func TestToolJSONKeepsParameters(t *testing.T) {
	params := `{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"integer"}}}`
	raw := toolJSON(openai.Tool{Type: "function", Function: openai.FunctionDef{Name: "f", Description: `say "hi"`, Parameters: json.RawMessage(params)}})
	want := `{"type":"function","function":{"name":"f","description":"say \"hi\"","parameters":` + params + `}}`
	if string(raw) != want || !json.Valid(raw) {
		t.Fatalf("got %s\nwant %s", raw, want)
	}
}

func TestParseTruncatedHermesCall(t *testing.T) {
	p := &outputPlan{format: chat.ToolFormatHermes, parallel: true}
	for _, text := range []string{
		"<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>",
		"<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_",
		"<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n<",
		"<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}",
	} {
		for _, truncated := range []bool{false, true} {
			content, calls, err := p.parse(text, truncated)
			if err != nil || content != "" || len(calls) != 1 || calls[0].Function.Name != "f" || calls[0].Function.Arguments != `{"a": 1}` {
				t.Errorf("%q (truncated %v): content %q calls %+v err %v", text, truncated, content, calls, err)
			}
		}
	}
	// A reply that did not end by the length limit and holds broken JSON
	// stays content.
	text := "<tool_call>\n{\"name\": \"f\", \"argu"
	if content, calls, err := p.parse(text, false); err == nil || content != text || calls != nil {
		t.Errorf("broken JSON: %q %v %v", content, calls, err)
	}
	// Cut by max_tokens, a call is reported partial, as OpenAI does: the
	// name, and the arguments written so far; before its name, nothing.
	for _, c := range []struct{ text, content, call string }{
		{"<tool_call>\n{\"name\": \"f\", \"argu", "", "f()"},
		{"<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": \"x</", "", `f({"a": "x</)`},
		{"Sure. <tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1,\n", "Sure.", "f({\"a\": [1,\n)"},
		{"<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"g\", \"arguments\": {\"b", "", "f({}) g({\"b)"},
		{"<tool_call>\n{\"na", "", ""},
		{"no call at all", "no call at all", ""},
	} {
		content, calls, err := p.parse(c.text, true)
		var got []string
		for _, tc := range calls {
			got = append(got, tc.Function.Name+"("+tc.Function.Arguments+")")
		}
		if err != nil || content != c.content || strings.Join(got, " ") != c.call {
			t.Errorf("%q: content %q calls %q err %v; want %q and %q", c.text, content, got, err, c.content, c.call)
		}
	}
}
