package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference/chat"
)

func TestCheckStrictSchema(t *testing.T) {
	cases := []struct {
		schema, err string // err: "" when valid, else a substring of the error
	}{
		{`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`, ""},
		{`{"type":"object","properties":{},"additionalProperties":false}`, ""},
		{`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`, `missing "a"`},
		{`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`, "additionalProperties"},
		{`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":true}`, "additionalProperties"},
		{`{"type":"array","items":{"type":"string"}}`, `type "object"`},
		{`[1,2]`, "JSON object"},
		{`{"type":"object"`, "not valid JSON"},
		// Nested objects are checked too: under properties, items, anyOf and $defs.
		{`{"type":"object","properties":{"o":{"type":"object","properties":{"b":{"type":"integer"}}}},"required":["o"],"additionalProperties":false}`, "#/properties/o"},
		{`{"type":"object","properties":{"l":{"type":"array","items":{"type":"object","properties":{"b":{"type":"integer"}},"additionalProperties":false}}},"required":["l"],"additionalProperties":false}`, "#/properties/l/items"},
		{`{"type":"object","properties":{"u":{"anyOf":[{"type":"string"},{"type":["object","null"],"properties":{}}]}},"required":["u"],"additionalProperties":false}`, "#/properties/u/anyOf/1"},
		{`{"type":"object","properties":{"r":{"$ref":"#/$defs/n"}},"required":["r"],"additionalProperties":false,"$defs":{"n":{"type":"object","properties":{"x":{"type":"string"}},"required":["x"]}}}`, "#/$defs/n"},
	}
	for _, c := range cases {
		err := checkStrictSchema(json.RawMessage(c.schema))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.schema, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: got %v, want an error mentioning %q", c.schema, err, c.err)
		}
	}
}

func FuzzCheckStrictSchema(f *testing.F) {
	f.Add(`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`)
	f.Add(`{"type":"object","properties":{"o":{"items":{"anyOf":[{"properties":{"x":{}}}]}}}}`)
	f.Add(`{"type":["object"],"properties":7,"required":"a"}`)
	f.Fuzz(func(t *testing.T, s string) {
		_ = checkStrictSchema(json.RawMessage(s)) // must not panic
	})
}

func TestToolCallDeltas(t *testing.T) {
	args := `{"city": "Zürich – très élevé", "unit": "c"}`
	deltas := toolCallDeltas([]openai.ToolCall{
		{ID: "call_a", Type: "function", Function: openai.FunctionCall{Name: "get_weather", Arguments: args}},
		{ID: "call_b", Type: "function", Function: openai.FunctionCall{Name: "noop", Arguments: "{}"}},
	})
	got := map[int]string{}
	names := map[int]string{}
	for _, d := range deltas {
		if len(d) != 1 {
			t.Fatalf("delta with %d calls", len(d))
		}
		c := d[0]
		if c.ID != "" {
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

// TestCallStream feeds Hermes replies a few bytes at a time, as the
// streaming handler does, and checks that the deltas reassemble into the
// calls parsed from the whole reply, with arguments sent before the end.
func TestCallStream(t *testing.T) {
	cases := []struct {
		name     string
		text     string
		parallel bool
		want     []string // name(arguments) per call
	}{
		{"one call", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich {x}\", \"n\": [1, {\"a\": \"\\\"}\"}]}}\n</tool_call>", true,
			[]string{`get_weather({"city": "Zürich {x}", "n": [1, {"a": "\"}"}]})`}},
		{"two calls", "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>", true,
			[]string{`a({"x": 1})`, `b({})`}},
		{"parallel off keeps the first", "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>", false,
			[]string{`a({"x": 1})`}},
		{"arguments first: sent whole at the end", "<tool_call>\n{\"arguments\": {\"x\": 1}, \"name\": \"a\"}\n</tool_call>", true,
			[]string{`a({"x": 1})`}},
		{"cut by max_tokens", "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool", true,
			[]string{`a({"x": 1})`}},
		{"cut by max_tokens inside the arguments", "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, 2", true,
			[]string{`a({"x": [1, 2)`}},
		{"cut by max_tokens in the second call", "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {\"y\": \"z", true,
			[]string{`a({})`, `b({"y": "z)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := &outputPlan{format: chat.ToolFormatHermes, parallel: c.parallel}
			cs := &callStream{plan: plan}
			names := map[int]string{}
			args := map[int]string{}
			apply := func(d openai.ToolCallDelta) {
				if d.ID != "" {
					names[d.Index] = d.Function.Name
				}
				args[d.Index] += d.Function.Arguments
			}
			early := 0
			for end := 3; ; end += 3 {
				end = min(end, len(c.text))
				for _, d := range cs.progress(c.text[:end]) {
					apply(d)
					if d.Function.Arguments != "" {
						early++
					}
				}
				if end == len(c.text) {
					break
				}
			}
			_, calls, err := plan.parse(c.text, strings.HasPrefix(c.name, "cut"))
			if err != nil {
				t.Fatal(err)
			}
			rest, ok := cs.finish(calls)
			if !ok {
				t.Fatalf("streamed calls disagree with the parse: %+v vs %+v", cs.calls, calls)
			}
			for _, d := range rest {
				apply(d[0])
			}
			var got []string
			for i := range len(names) {
				got = append(got, names[i]+"("+args[i]+")")
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("got %q want %q", got, c.want)
			}
			if strings.Contains(c.name, "whole") != (early == 0) {
				t.Errorf("%d argument fragments before the end", early)
			}
		})
	}
}

func TestObjectEnd(t *testing.T) {
	for s, want := range map[string]int{
		`{}`: 2, `{"a": "}"}x`: 10, `{"a": [1, {"b": 2}]} rest`: 20, `{"a": "\"}"`: -1, `{"a": {`: -1,
	} {
		if got := objectEnd(s); got != want {
			t.Errorf("objectEnd(%q) = %d, want %d", s, got, want)
		}
	}
}

// FuzzCallStream feeds arbitrary model output through the streaming call
// parser: it must never panic, and when the whole reply parses, the deltas
// it sent must agree with the parse or be reported as disagreeing.
func FuzzCallStream(f *testing.F) {
	f.Add("<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": \"}\"}}\n</tool_call>", uint8(3))
	f.Add("hi <tool_call>{\"name\": \"a\", \"arguments\": {\"x\": 1}}</tool_call><tool_call>{\"name\": \"b\", \"arguments\": {", uint8(1))
	f.Add("<tool_call>{\"name\": \"\\u00e9\", \"arguments\": {}}", uint8(7))
	f.Fuzz(func(t *testing.T, text string, step uint8) {
		if !utf8.ValidString(text) {
			return // engine text is always valid UTF-8
		}
		plan := &outputPlan{format: chat.ToolFormatHermes, parallel: step%2 == 0}
		cs := &callStream{plan: plan}
		n := int(step)%8 + 1
		for end := n; ; end += n {
			end = min(end, len(text))
			safe := chat.SafeContentPrefix(plan.format, text[:end])
			cs.progress(text[safe:end])
			if end == len(text) {
				break
			}
		}
		if _, calls, err := plan.parse(text, step%3 == 0); err == nil {
			cs.finish(calls)
		}
	})
}
