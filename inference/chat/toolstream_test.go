package chat

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// streamReply feeds text to a ToolStream step bytes at a time, as the
// streaming handler does with engine events, and returns what a client
// receives: the content, each call as name(arguments), the number of
// argument fragments sent before the end, and how the reply ended.
func streamReply(t testing.TB, format ToolFormat, parallel bool, text string, step int, truncated bool) (content string, calls []string, early int, end StreamEnd) {
	s := NewToolStream(format, parallel)
	var b strings.Builder
	names := map[int]string{}
	args := map[int]string{}
	apply := func(d CallDelta) {
		if d.First {
			if _, dup := names[d.Index]; dup {
				t.Fatalf("call %d started twice", d.Index)
			}
			names[d.Index] = d.Name
			return
		}
		if _, ok := names[d.Index]; !ok {
			t.Fatalf("arguments for call %d before its name", d.Index)
		}
		args[d.Index] += d.Arguments
	}
	for i := 0; i < len(text); i += step {
		c, ds := s.Push(text[i:min(i+step, len(text))])
		b.WriteString(c)
		for _, d := range ds {
			apply(d)
			if d.Arguments != "" {
				early++
			}
		}
	}
	end = s.Finish("", truncated)
	b.WriteString(end.Content)
	for _, d := range end.Deltas {
		apply(d)
	}
	for i := range len(names) {
		calls = append(calls, names[i]+"("+args[i]+")")
	}
	return b.String(), calls, early, end
}

// TestCallStream feeds Hermes replies a few bytes at a time and checks
// that the deltas reassemble into the calls parsed from the whole reply,
// with arguments sent before the end.
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
			truncated := strings.HasPrefix(c.name, "cut")
			if _, _, err := ParseReply(ToolFormatHermes, c.text, truncated); err != nil {
				t.Fatal(err)
			}
			content, got, early, end := streamReply(t, ToolFormatHermes, c.parallel, c.text, 3, truncated)
			if end.Mismatch {
				t.Fatalf("streamed calls disagree with the parse")
			}
			if content != "" || !end.ToolCalls {
				t.Errorf("content %q, tool calls %v", content, end.ToolCalls)
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

// TestToolStreamReplies is the streaming handler's tool logic without
// HTTP: whatever the pieces, a client reassembles the reply that the
// unstreamed response holds (content up to the spaces around calls).
func TestToolStreamReplies(t *testing.T) {
	cases := []struct {
		name      string
		format    ToolFormat
		text      string
		truncated bool
		content   string
		calls     []string
		toolCalls bool
	}{
		{"plain hermes text", ToolFormatHermes, "Hello <b>world</b> a < b", false, "Hello <b>world</b> a < b", nil, false},
		{"hermes text then call", ToolFormatHermes, "Let me check. <tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"é\"}}\n</tool_call>", false,
			"Let me check.", []string{`f({"q": "é"})`}, true},
		{"hermes text between calls", ToolFormatHermes, "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call> and <tool_call>{\"name\": \"g\", \"arguments\": {\"x\": 1}}</tool_call>", false,
			"and", []string{`f({})`, `g({"x": 1})`}, true},
		{"hermes broken call is text", ToolFormatHermes, "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": }}</tool_call>", false,
			"<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": }}</tool_call>", nil, false},
		{"hermes broken header is text", ToolFormatHermes, "<tool_call>{\"name\": \"f\" \"arguments\": {}}</tool_call>", false,
			"<tool_call>{\"name\": \"f\" \"arguments\": {}}</tool_call>", nil, false},
		{"hermes cut before the name", ToolFormatHermes, "Sure. <tool_call>\n{\"na", true, "Sure.", nil, false},
		{"hermes stop sequence cut the closing tag", ToolFormatHermes, "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_", false,
			"", []string{`f({})`}, true},
		{"mistral list", ToolFormatMistral, "Checking.[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}}]", false,
			"Checking.", []string{`f({"a": 1})`}, true},
		{"mistral name and args", ToolFormatMistral, "[TOOL_CALLS]f[ARGS]{\"a\": \"[x]\"}", false, "", []string{`f({"a": "[x]"})`}, true},
		{"mistral text", ToolFormatMistral, "No tools [TOOL today", false, "No tools [TOOL today", nil, false},
		{"llama call", ToolFormatLlama3, "  {\"name\": \"f\", \"parameters\": {\"a\": 1}}", false, "", []string{`f({"a": 1})`}, true},
		{"llama tagged calls", ToolFormatLlama3, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}; {\"name\": \"g\", \"parameters\": {\"b\": 2}}", false,
			"", []string{`f({})`, `g({"b": 2})`}, true},
		{"llama JSON that is no call", ToolFormatLlama3, "{\"answer\": 42}", false, "{\"answer\": 42}", nil, false},
		{"llama text", ToolFormatLlama3, "\n Sure, <|python_tag|> is a token.", false, "Sure, <|python_tag|> is a token.", nil, false},
		{"none", ToolFormatNone, "<tool_call>{\"name\": \"f\"}</tool_call>", false, "<tool_call>{\"name\": \"f\"}</tool_call>", nil, false},
	}
	for _, c := range cases {
		for _, step := range []int{1, 2, 5, 1 << 20} {
			t.Run(fmt.Sprintf("%s/%d", c.name, step), func(t *testing.T) {
				content, calls, _, end := streamReply(t, c.format, true, c.text, step, c.truncated)
				// A broken call whose name went out before its JSON broke.
				mismatch := strings.Contains(c.name, "broken call")
				if end.Mismatch != mismatch {
					t.Fatalf("mismatch %v", end.Mismatch)
				}
				if mismatch {
					calls = nil // the client drops calls that the rest of the reply contradicts
				}
				if strings.TrimSpace(content) != c.content || strings.Join(calls, " ") != strings.Join(c.calls, " ") || end.ToolCalls != c.toolCalls {
					t.Fatalf("content %q calls %q tool calls %v; want %q %q %v", content, calls, end.ToolCalls, c.content, c.calls, c.toolCalls)
				}
				want, wantCalls, _ := ParseReply(c.format, c.text, c.truncated)
				if strings.TrimSpace(want) != c.content || len(wantCalls) != len(c.calls) {
					t.Fatalf("ParseReply says %q %+v", want, wantCalls)
				}
			})
		}
	}
}

// TestToolStreamHoldsMarkers checks content release piece by piece: text
// that may begin a call is held, and released once it cannot.
func TestToolStreamHoldsMarkers(t *testing.T) {
	s := NewToolStream(ToolFormatHermes, true)
	for _, step := range []struct{ in, out string }{
		{"Hi <", "Hi "}, {"tool", ""}, {"box>", "<toolbox>"}, {" <tool_", " "}, {"call>{", ""}, {"\"x\"", ""},
	} {
		if got, _ := s.Push(step.in); got != step.out {
			t.Fatalf("Push(%q) released %q, want %q", step.in, got, step.out)
		}
	}
	end := s.Finish("", false)
	if end.Err == nil || end.ToolCalls || end.Content != "<tool_call>{\"x\"" {
		t.Fatalf("end %+v", end)
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

func TestCallDeltas(t *testing.T) {
	args := `{"city": "Zürich – très élevé", "unit": "c"}`
	deltas := CallDeltas([]ParsedCall{{Name: "get_weather", Arguments: args}, {Name: "noop", Arguments: "{}"}})
	got := map[int]string{}
	names := map[int]string{}
	for _, d := range deltas {
		if d.First {
			if names[d.Index] != "" || d.Arguments != "" {
				t.Fatalf("bad first fragment %+v", d)
			}
			names[d.Index] = d.Name
			continue
		}
		if !utf8.ValidString(d.Arguments) || len(d.Arguments) == 0 || d.Name != "" {
			t.Fatalf("fragment %q is not a valid non-empty UTF-8 piece", d.Arguments)
		}
		got[d.Index] += d.Arguments
	}
	if names[0] != "get_weather" || names[1] != "noop" || got[0] != args || got[1] != "{}" {
		t.Fatalf("reassembled %v %v", names, got)
	}
}

func TestToolFormatSyntax(t *testing.T) {
	for f, want := range map[ToolFormat]string{
		ToolFormatNone: "none||", ToolFormatHermes: "hermes|arguments|<tool_call>\n…\n</tool_call>",
		ToolFormatLlama3: "llama3|parameters|…", ToolFormatMistral: "mistral|arguments|…", ToolFormat(9): "none||",
	} {
		p, s := f.ForcedCallWrap()
		got := f.String() + "|" + f.ArgumentsKey() + "|"
		if f.ArgumentsKey() != "" {
			got += p + "…" + s
		}
		if got != want {
			t.Errorf("%d: got %q want %q", int(f), got, want)
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
		_, calls, _, end := streamReply(t, ToolFormatHermes, step%2 == 0, text, int(step)%8+1, step%3 == 0)
		if !end.Mismatch && end.ToolCalls {
			_, parsed, err := ParseReply(ToolFormatHermes, text, step%3 == 0)
			if err != nil || len(parsed) < len(calls) {
				t.Fatalf("calls %q but the parse has %+v (%v)", calls, parsed, err)
			}
		}
	})
}

// The streaming parser as it was before it became incremental: it
// re-split all held text on every piece. Kept as the oracle the
// incremental one must match.
var (
	refCallHeader = regexp.MustCompile(`^\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*\{`)
	refCallName   = regexp.MustCompile(`^\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")`)
)

func refSafe(format ToolFormat, text string) int {
	before := func(marker string) int {
		if i := strings.Index(text, marker); i >= 0 {
			return i
		}
		for k := min(len(marker)-1, len(text)); k > 0; k-- {
			if strings.HasSuffix(text, marker[:k]) {
				return len(text) - k
			}
		}
		return len(text)
	}
	switch format {
	case ToolFormatHermes:
		return before(hermesOpen)
	case ToolFormatMistral:
		return before(mistralCalls)
	case ToolFormatLlama3:
		s := strings.TrimLeft(text, " \t\r\n")
		if s == "" || s[0] == '{' || strings.HasPrefix(s, pythonTag) || strings.HasPrefix(pythonTag, s) {
			return 0
		}
	}
	return len(text)
}

type refCall struct{ name, args string }

func refProgress(calls *[]refCall, parallel bool, held string) []CallDelta {
	var out []CallDelta
	blocks := strings.Split(held, hermesOpen)[1:]
	for i, body := range blocks {
		if i > 0 && !parallel {
			break
		}
		if j := strings.Index(body, hermesClose); j >= 0 {
			body = body[:j]
		}
		m := refCallHeader.FindStringSubmatchIndex(body)
		if m == nil {
			break
		}
		if i == len(*calls) {
			var name string
			if json.Unmarshal([]byte(body[m[2]:m[3]]), &name) != nil {
				break
			}
			*calls = append(*calls, refCall{name: name})
			out = append(out, CallDelta{Index: i, First: true, Name: name})
		}
		start := m[1] - 1
		end := objectEnd(body[start:])
		if end < 0 {
			end = len(body) - start
		}
		args := body[start : start+end]
		c := &(*calls)[i]
		if len(args) > len(c.args) && strings.HasPrefix(args, c.args) {
			out = append(out, CallDelta{Index: i, Arguments: args[len(c.args):]})
			c.args = args
		}
	}
	return out
}

// FuzzToolStreamMatchesReference checks that the incremental parser
// releases the same content and deltas, piece by piece, as the old one.
func FuzzToolStreamMatchesReference(f *testing.F) {
	for _, s := range []string{
		"Hi <tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": \"}\"}}\n</tool_call>\n<tool_call>{\"name\":\"b\",\"arguments\":{\"y\":[1]}}</tool_call>",
		"<tool_call>{\"name\": \"a</tool_call>\", \"arguments\": {}}",
		"<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": \"<tool_call>\"}}</tool_call>",
		"<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": \"</tool_call>\"}}</tool_call>",
		"<tool_call>{\"name\": \"\\q\", \"arguments\": {}}<tool_call>{\"name\": \"b\", \"arguments\": {}}",
		"<tool_call>{\"arguments\": {}, \"name\": \"a\"}</tool_call><tool_call>{\"name\": \"b\", \"arguments\": {}}",
		" \n {\"name\": \"f\", \"parameters\": {}}", "<|python_tag|>{}", "<|pyt", "x[TOOL_CALLS]f[ARGS]{}", "[TOOL",
	} {
		for fmtID := range 4 {
			f.Add(s, uint8(fmtID), uint8(3))
		}
	}
	f.Fuzz(func(t *testing.T, text string, fmtID, step uint8) {
		format := ToolFormat(fmtID % 4)
		parallel := step&0x80 == 0
		n := int(step&0x7f)%9 + 1
		s := NewToolStream(format, parallel)
		var calls []refCall
		sent := 0
		for prev := 0; ; {
			end := min(prev+n, len(text))
			all := text[:end]
			content, deltas := s.Push(text[prev:end])
			prev = end
			safe := max(refSafe(format, all), sent)
			if want := all[sent:safe]; content != want {
				t.Fatalf("%q: released %q, want %q", all, content, want)
			}
			sent = safe
			var want []CallDelta
			if format == ToolFormatHermes {
				want = refProgress(&calls, parallel, all[safe:])
			}
			if fmt.Sprint(deltas) != fmt.Sprint(want) {
				t.Fatalf("%q: deltas %+v, want %+v", all, deltas, want)
			}
			if end == len(text) {
				break
			}
		}
	})
}

// FuzzHermesHeader checks the byte-at-a-time header match against the
// regular expressions it replaced.
func FuzzHermesHeader(f *testing.F) {
	for _, s := range []string{
		"{\"name\": \"a\", \"arguments\": {", " \n{ \"name\" :\"a\\\"b\" ,\t\"arguments\":{}}", "{\"name\": \"a\\\nb\", \"arguments\": {",
		"{\"name\": \"a\"", "{\"name\": \"a\", \"argum", "{\"arguments\": {}", "\f{\"name\":\"\",\"arguments\":{", "\v{\"name\":\"x\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		h := scanHermesHeader(body)
		name := refCallName.FindStringSubmatchIndex(body)
		head := refCallHeader.FindStringSubmatchIndex(body)
		switch {
		case name == nil && h.nameStart >= 0, name != nil && (h.nameStart != name[2] || h.nameEnd != name[3]):
			t.Fatalf("%q: name %d:%d, regexp %v", body, h.nameStart, h.nameEnd, name)
		case head == nil && h.argsStart >= 0, head != nil && h.argsStart != head[1]-1:
			t.Fatalf("%q: arguments at %d, regexp %v", body, h.argsStart, head)
		}
	})
}

// benchCall is one long Hermes call, as a model writes a file's contents
// into a tool call's arguments.
func benchCall(n int) string {
	return "<tool_call>\n{\"name\": \"write_file\", \"arguments\": {\"text\": \"" + strings.Repeat("lorem ipsum ", n/12) + "\"}}\n</tool_call>"
}

func BenchmarkToolStream(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		text := benchCall(size)
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			for b.Loop() {
				s := NewToolStream(ToolFormatHermes, true)
				for i := 0; i < len(text); i += 4 {
					s.Push(text[i:min(i+4, len(text))])
				}
				s.Finish("", false)
			}
		})
	}
}

// BenchmarkToolStreamReference is the old parser on the same input, for
// comparison: quadratic in the call's length.
func BenchmarkToolStreamReference(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		text := benchCall(size)
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			for b.Loop() {
				var calls []refCall
				for end := 4; end < len(text)+4; end += 4 {
					all := text[:min(end, len(text))]
					refProgress(&calls, true, all[refSafe(ToolFormatHermes, all):])
				}
			}
		})
	}
}
