package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ToolFormat is how a model family writes tool calls in its output.
type ToolFormat int

const (
	// ToolFormatNone: the template shows no known tool-call syntax.
	ToolFormatNone ToolFormat = iota
	// ToolFormatHermes: <tool_call>{"name": ..., "arguments": {...}}</tool_call>,
	// one block per call (Qwen2.5, Qwen3, Hermes).
	ToolFormatHermes
	// ToolFormatLlama3: the whole reply is {"name": ..., "parameters": {...}},
	// optionally after <|python_tag|>, several separated by ";" (Llama 3.1/3.2).
	ToolFormatLlama3
	// ToolFormatMistral: [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...] or
	// the newer [TOOL_CALLS]name[ARGS]{...} (Mistral Nemo, Small 3.x).
	ToolFormatMistral
)

// toolSyntax is what the parser and the server need to know of one format:
// the markers around calls and the key under which a call object carries its
// arguments.
type toolSyntax struct {
	name string
	// open begins a call (or the list of calls), close ends one; either is
	// "" where the format has none. Content before open streams freely.
	open, close string
	// argsKey is the call object's arguments key.
	argsKey string
	// forcePrefix and forceSuffix surround one call written under a grammar
	// (tool_choice "required" or a named function).
	forcePrefix, forceSuffix string
}

var toolSyntaxes = [...]toolSyntax{
	ToolFormatNone:    {name: "none"},
	ToolFormatHermes:  {name: "hermes", open: hermesOpen, close: hermesClose, argsKey: "arguments", forcePrefix: hermesOpen + "\n", forceSuffix: "\n" + hermesClose},
	ToolFormatLlama3:  {name: "llama3", open: pythonTag, argsKey: "parameters"},
	ToolFormatMistral: {name: "mistral", open: mistralCalls, argsKey: "arguments"},
}

func (f ToolFormat) syntax() toolSyntax {
	if f < 0 || int(f) >= len(toolSyntaxes) {
		return toolSyntaxes[ToolFormatNone]
	}
	return toolSyntaxes[f]
}

func (f ToolFormat) String() string { return f.syntax().name }

// ArgumentsKey is the key under which the format's call object holds the
// arguments ("arguments", or "parameters" for Llama 3); "" for none.
func (f ToolFormat) ArgumentsKey() string { return f.syntax().argsKey }

// ForcedCallWrap returns the text around one call's JSON object when the
// call is written under a grammar: "<tool_call>\n" and "\n</tool_call>" for
// Hermes, nothing for Llama 3 (whose call is the bare object).
func (f ToolFormat) ForcedCallWrap() (prefix, suffix string) {
	s := f.syntax()
	return s.forcePrefix, s.forceSuffix
}

const (
	hermesOpen   = "<tool_call>"
	hermesClose  = "</tool_call>"
	pythonTag    = "<|python_tag|>"
	mistralCalls = "[TOOL_CALLS]"
	mistralArgs  = "[ARGS]"
	mistralID    = "[CALL_ID]"
)

// DetectToolFormat guesses the tool-call syntax from a chat template's source.
func DetectToolFormat(templateSource string) ToolFormat {
	switch {
	case strings.Contains(templateSource, mistralCalls):
		return ToolFormatMistral
	case strings.Contains(templateSource, hermesOpen):
		return ToolFormatHermes
	case strings.Contains(templateSource, pythonTag),
		strings.Contains(templateSource, "<|start_header_id|>") && strings.Contains(templateSource, `"parameters"`):
		return ToolFormatLlama3
	}
	return ToolFormatNone
}

// ParsedCall is one tool call found in model output. Arguments is the JSON
// object text as the model wrote it (trimmed), ready for OpenAI's
// function.arguments string.
type ParsedCall struct {
	Name      string
	Arguments string
}

// ErrMalformedToolCall marks output that looks like a tool call but does not
// parse; ParseToolCalls then returns the whole text as content.
var ErrMalformedToolCall = errors.New("malformed tool call")

// ParseToolCalls splits model output into plain content and tool calls.
// When the output holds no tool call, content is the text unchanged and
// calls is nil. When it looks like a tool call but does not parse, content
// is again the whole text, calls is nil and err (wrapping
// ErrMalformedToolCall) says why: the server can log it and reply with text.
func ParseToolCalls(format ToolFormat, text string) (content string, calls []ParsedCall, err error) {
	switch format {
	case ToolFormatHermes:
		content, calls, err = parseHermes(text)
	case ToolFormatLlama3:
		content, calls, err = parseLlama3(text)
	case ToolFormatMistral:
		content, calls, err = parseMistral(text)
	default:
		return text, nil, nil
	}
	if err != nil {
		return text, nil, fmt.Errorf("%w (%s): %v", ErrMalformedToolCall, format, err)
	}
	return content, calls, nil
}

// callObject is the {"name", "arguments"|"parameters"} object models emit.
func callObject(raw []byte) (ParsedCall, error) {
	var obj struct {
		Name       *string         `json:"name"`
		Arguments  json.RawMessage `json:"arguments"`
		Parameters json.RawMessage `json:"parameters"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return ParsedCall{}, fmt.Errorf("call is not a JSON object: %v", err)
	}
	if obj.Name == nil || *obj.Name == "" {
		return ParsedCall{}, errors.New(`call has no "name"`)
	}
	args := obj.Arguments
	if args == nil {
		args = obj.Parameters
	}
	a, err := argumentsText(args)
	if err != nil {
		return ParsedCall{}, fmt.Errorf("call %q: %v", *obj.Name, err)
	}
	return ParsedCall{Name: *obj.Name, Arguments: a}, nil
}

// argumentsText accepts an object, or a string holding an object; absent
// arguments are an empty object.
func argumentsText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "{}", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		raw = bytes.TrimSpace([]byte(s))
		if len(raw) == 0 {
			return "{}", nil
		}
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return "", errors.New("arguments are not a JSON object")
	}
	return string(raw), nil
}

func parseHermes(text string) (string, []ParsedCall, error) {
	if !strings.Contains(text, hermesOpen) {
		return text, nil, nil
	}
	var content strings.Builder
	var calls []ParsedCall
	rest := text
	for {
		i := strings.Index(rest, hermesOpen)
		if i < 0 {
			content.WriteString(rest)
			break
		}
		content.WriteString(rest[:i])
		rest = rest[i+len(hermesOpen):]
		body := rest
		if j := strings.Index(rest, hermesClose); j >= 0 {
			body, rest = rest[:j], rest[j+len(hermesClose):]
		} else {
			rest = "" // generation stopped before the closing tag
		}
		call, err := callObject([]byte(strings.TrimSpace(body)))
		if err != nil {
			return "", nil, err
		}
		calls = append(calls, call)
	}
	return strings.TrimSpace(content.String()), calls, nil
}

func parseLlama3(text string) (string, []ParsedCall, error) {
	s := strings.TrimSpace(text)
	tagged := strings.HasPrefix(s, pythonTag)
	if tagged {
		s = strings.TrimSpace(strings.TrimPrefix(s, pythonTag))
	}
	if !strings.HasPrefix(s, "{") {
		if tagged {
			return "", nil, errors.New("<|python_tag|> is not followed by a JSON call")
		}
		return text, nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	var calls []ParsedCall
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", nil, fmt.Errorf("call %d: %v", len(calls), err)
		}
		call, err := callObject(raw)
		if err != nil {
			if len(calls) == 0 && !tagged {
				// A JSON reply that is not a call is ordinary content.
				return text, nil, nil
			}
			return "", nil, err
		}
		calls = append(calls, call)
		rest := strings.TrimSpace(s[dec.InputOffset():])
		rest = strings.TrimSpace(strings.TrimPrefix(rest, ";"))
		if rest == "" {
			return "", calls, nil
		}
		if !strings.HasPrefix(rest, "{") {
			return "", nil, fmt.Errorf("unexpected text after call %d", len(calls))
		}
		s = rest
		dec = json.NewDecoder(strings.NewReader(s))
	}
}

func parseMistral(text string) (string, []ParsedCall, error) {
	i := strings.Index(text, mistralCalls)
	if i < 0 {
		return text, nil, nil
	}
	content := strings.TrimSpace(text[:i])
	var calls []ParsedCall
	rest := text[i:]
	for strings.HasPrefix(rest, mistralCalls) {
		rest = strings.TrimSpace(rest[len(mistralCalls):])
		if strings.HasPrefix(rest, "[") {
			// [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
			dec := json.NewDecoder(strings.NewReader(rest))
			var list []json.RawMessage
			if err := dec.Decode(&list); err != nil {
				return "", nil, fmt.Errorf("call list: %v", err)
			}
			if len(list) == 0 {
				return "", nil, errors.New("empty call list")
			}
			for _, raw := range list {
				call, err := callObject(raw)
				if err != nil {
					return "", nil, err
				}
				calls = append(calls, call)
			}
			rest = strings.TrimSpace(rest[dec.InputOffset():])
			continue
		}
		// [TOOL_CALLS]name[CALL_ID]id[ARGS]{...}
		a := strings.Index(rest, mistralArgs)
		if a < 0 {
			return "", nil, errors.New("[TOOL_CALLS] without a call list or [ARGS]")
		}
		name := rest[:a]
		if c := strings.Index(name, mistralID); c >= 0 {
			name = name[:c]
		}
		name = strings.TrimSpace(name)
		if name == "" || strings.ContainsAny(name, "{}[]\"\n") {
			return "", nil, fmt.Errorf("bad function name %q", name)
		}
		rest = strings.TrimSpace(rest[a+len(mistralArgs):])
		dec := json.NewDecoder(strings.NewReader(rest))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", nil, fmt.Errorf("call %q arguments: %v", name, err)
		}
		args, err := argumentsText(raw)
		if err != nil {
			return "", nil, fmt.Errorf("call %q: %v", name, err)
		}
		calls = append(calls, ParsedCall{Name: name, Arguments: args})
		rest = strings.TrimSpace(rest[dec.InputOffset():])
	}
	if rest != "" {
		return "", nil, fmt.Errorf("unexpected text after the tool calls: %.40q", rest)
	}
	return content, calls, nil
}

// ParseTruncatedToolCalls parses output that the length limit cut short,
// the way OpenAI reports such a reply. Complete calls parse as in
// ParseToolCalls, including one whose closing tag alone was cut. A Hermes
// call cut inside its arguments becomes a partial call: its name and the
// arguments text written so far, which is not valid JSON (OpenAI sends the
// same). A call cut before its name is complete is dropped: it is markup
// that never became a call. Other formats have no partial form and parse
// as ParseToolCalls does.
func ParseTruncatedToolCalls(format ToolFormat, text string) (content string, calls []ParsedCall, err error) {
	if format != ToolFormatHermes {
		return ParseToolCalls(format, text)
	}
	i := strings.LastIndex(text, hermesOpen)
	if i < 0 {
		return text, nil, nil
	}
	body := text[i+len(hermesOpen):]
	if strings.Contains(body, hermesClose) {
		return ParseToolCalls(format, text) // the last call closed
	}
	content, calls, err = ParseToolCalls(format, text[:i])
	if err != nil {
		return text, nil, err
	}
	content = strings.TrimSpace(content) // as parseHermes leaves content around calls
	// The closing tag alone may be cut.
	whole := body[:len(body)-partialSuffix(body, hermesClose)]
	if c, err := callObject([]byte(strings.TrimSpace(whole))); err == nil {
		return content, append(calls, c), nil
	}
	h := scanHermesHeader(body)
	if h.nameEnd < 0 {
		return content, calls, nil
	}
	var name string
	if json.Unmarshal([]byte(body[h.nameStart:h.nameEnd]), &name) != nil || name == "" {
		return content, calls, nil
	}
	args := ""
	if h.argsStart >= 0 {
		args = body[h.argsStart:] // from the arguments object's "{", as written
	}
	return content, append(calls, ParsedCall{Name: name, Arguments: args}), nil
}

// ParseReply splits a finished reply into content and tool calls, as the
// server answers it. When max_tokens cut the reply (truncated), a call cut
// short comes back partial (ParseTruncatedToolCalls) and markup that never
// became a call is dropped from the content. A Hermes reply whose closing
// tag a stop sequence cut short still yields the call before it. Without
// calls, or when the calls do not parse (err says why), content is the
// whole text.
func ParseReply(format ToolFormat, text string, truncated bool) (content string, calls []ParsedCall, err error) {
	if format == ToolFormatNone {
		return text, nil, nil
	}
	parse := ParseToolCalls
	if truncated {
		parse = ParseTruncatedToolCalls
	}
	content, calls, err = parse(format, text)
	if err != nil && format == ToolFormatHermes {
		if k := partialSuffix(text, hermesClose); k > 0 {
			if c2, calls2, err2 := ParseToolCalls(format, text[:len(text)-k]); err2 == nil {
				content, calls, err = c2, calls2, nil
			}
		}
	}
	switch {
	case err != nil:
		return text, nil, err
	case len(calls) > 0:
		return content, calls, nil
	case truncated:
		return content, nil, nil // a call cut before its name: markup dropped
	}
	return text, nil, nil
}
