package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/impetusllm/impetus/caddymodule/openai"
	"github.com/impetusllm/impetus/inference"
	"github.com/impetusllm/impetus/inference/chat"
	"github.com/impetusllm/impetus/inference/grammar"
)

// outputPlan is how a chat request's output is shaped: which tools the
// template sees, how tool calls are parsed back, and the grammar (if any)
// each choice is constrained by.
type outputPlan struct {
	tools    []json.RawMessage // for the template; nil when tools are off
	format   chat.ToolFormat   // tool-call syntax to parse; ToolFormatNone: no parsing
	parallel bool              // more than one call per reply is allowed
	// grammar with its literal prefix and suffix, nil when unconstrained.
	grammar        *grammar.Grammar
	prefix, suffix string
	// trigger, when set, leaves the output free until the model writes it
	// (tool_choice auto with strict tools): only then is the grammar applied.
	trigger string
}

// constraint returns a fresh constraint for one choice, or nil.
func (p *outputPlan) constraint(lm *inference.LoadedModel) inference.Constraint {
	if p.grammar == nil {
		return nil
	}
	if p.trigger != "" {
		return lm.NewTriggeredConstraint(p.grammar, p.trigger, p.prefix, p.suffix, p.parallel)
	}
	return lm.NewConstraint(p.grammar, p.prefix, p.suffix)
}

// planOutput works out tools and response_format for a request.
//
//   - tool_choice "none" hides the tools from the template (so the model is
//     not prompted to call them) and parses nothing;
//   - "auto" (the default with tools) renders them and parses calls from the
//     output; response_format still constrains the output when set, so a
//     model then answers in content. Without response_format, when a tool
//     is strict and the syntax is Hermes, every call the model starts is
//     held to the tools' schemas from its "<tool_call>" on (the text around
//     calls stays free);
//   - "required" and a named function force one call with a grammar built
//     from the model's tool-call syntax around {"name", "arguments"} matching
//     the function's parameters; response_format is then not applied.
func planOutput(req *openai.ChatRequest, lm *inference.LoadedModel) (*outputPlan, *openai.Error) {
	p := &outputPlan{parallel: req.ParallelToolCalls == nil || *req.ParallelToolCalls}
	choice := openai.ToolChoiceAuto
	if req.ToolChoice != nil {
		choice = req.ToolChoice.Mode
	}
	if len(req.Tools) > 0 {
		for i, t := range req.Tools {
			if t.Function.Strict != nil && *t.Function.Strict {
				param := fmt.Sprintf("tools[%d].function.parameters", i)
				if t.Function.Parameters == nil {
					return nil, openai.InvalidRequest(param, "strict function calling requires parameters")
				}
				if err := checkStrictSchema(t.Function.Parameters); err != nil {
					return nil, openai.InvalidRequest(param, "invalid schema for strict function calling: "+err.Error())
				}
			}
		}
		if choice != openai.ToolChoiceNone {
			for _, t := range req.Tools {
				p.tools = append(p.tools, toolJSON(t))
			}
			p.format = chat.DetectToolFormat(lm.Template.Source())
		}
	}
	switch choice {
	case openai.ToolChoiceRequired, openai.ToolChoiceFunction:
		var forced []openai.Tool
		for _, t := range req.Tools {
			if choice == openai.ToolChoiceRequired || t.Function.Name == req.ToolChoice.Function {
				forced = append(forced, t)
			}
		}
		g, prefix, suffix, e := forcedCallGrammar(lm, p.format, forced)
		if e != nil {
			return nil, e
		}
		p.grammar, p.prefix, p.suffix = g, prefix, suffix
		return p, nil
	}
	if (req.ResponseFormat == nil || req.ResponseFormat.Type == openai.FormatText) && choice == openai.ToolChoiceAuto &&
		p.format == chat.ToolFormatHermes && slices.ContainsFunc(req.Tools, func(t openai.Tool) bool { return t.Function.Strict != nil && *t.Function.Strict }) {
		g, prefix, suffix, e := forcedCallGrammar(lm, p.format, req.Tools)
		if e != nil {
			return nil, e
		}
		p.grammar, p.trigger = g, strings.TrimSpace(prefix)
		p.prefix, p.suffix = strings.TrimPrefix(prefix, p.trigger), suffix
		return p, nil
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case openai.FormatJSONObject:
			g, err := grammar.CompileJSONObject()
			if err != nil {
				return nil, openai.Internal("compiling the json_object grammar failed")
			}
			p.grammar = g
		case openai.FormatJSONSchema:
			schema := rf.JSONSchema.Schema
			if schema == nil {
				return nil, openai.InvalidRequest("response_format.json_schema.schema", "a schema is required")
			}
			if rf.JSONSchema.Strict != nil && *rf.JSONSchema.Strict {
				if err := checkStrictSchema(schema); err != nil {
					return nil, openai.InvalidRequest("response_format", "invalid schema for response_format '"+rf.JSONSchema.Name+"': "+err.Error())
				}
			}
			g, err := grammar.CompileSchema(schema)
			if err != nil {
				return nil, openai.InvalidRequest("response_format", "invalid schema for response_format '"+rf.JSONSchema.Name+"': "+strings.TrimPrefix(err.Error(), "grammar: "))
			}
			p.grammar = g
		}
	}
	return p, nil
}

// toolJSON renders a tool as OpenAI sends it, for the template's tojson.
func toolJSON(t openai.Tool) json.RawMessage {
	var b bytes.Buffer
	name, _ := json.Marshal(t.Function.Name)
	b.WriteString(`{"type":"function","function":{"name":`)
	b.Write(name)
	if t.Function.Description != "" {
		desc, _ := json.Marshal(t.Function.Description)
		b.WriteString(`,"description":`)
		b.Write(desc)
	}
	if t.Function.Parameters != nil {
		b.WriteString(`,"parameters":`)
		b.Write(t.Function.Parameters)
	}
	b.WriteString("}}")
	return b.Bytes()
}

// forcedCallGrammar builds the grammar that makes the model emit exactly one
// call of one of tools, in the model's own tool-call syntax. A non-strict
// function whose parameters use keywords the grammar cannot enforce gets
// any arguments object; a strict one is a 400.
func forcedCallGrammar(lm *inference.LoadedModel, format chat.ToolFormat, tools []openai.Tool) (*grammar.Grammar, string, string, *openai.Error) {
	argsKey, prefix, suffix := "", "", ""
	switch format {
	case chat.ToolFormatHermes:
		argsKey, prefix, suffix = "arguments", "<tool_call>\n", "\n</tool_call>"
	case chat.ToolFormatLlama3:
		argsKey = "parameters"
	case chat.ToolFormatMistral:
		// [TOOL_CALLS] is a control token in Mistral tokenizers, which the
		// byte-level grammar cannot produce (auto parsing keeps its text).
		return nil, "", "", openai.InvalidRequest("tool_choice", "forcing a tool call is not supported for this model's tool-call format (mistral); use tool_choice \"auto\"")
	default:
		return nil, "", "", openai.InvalidRequest("tool_choice", "this model's chat template has no known tool-call syntax, so a tool call cannot be forced; use tool_choice \"auto\" or \"none\"")
	}
	for _, marker := range []string{strings.TrimSpace(prefix), strings.TrimSpace(suffix)} {
		if id, ok := lm.Tokenizer.TokenID(marker); marker != "" && ok && lm.Tokenizer.IsSpecial(id) {
			return nil, "", "", openai.InvalidRequest("tool_choice", fmt.Sprintf("forcing a tool call is not supported for this model: its %s marker is a control token", marker))
		}
	}
	var alts []string
	for _, t := range tools {
		params := t.Function.Parameters
		if params != nil {
			if _, err := grammar.CompileSchema(params); err != nil {
				if t.Function.Strict != nil && *t.Function.Strict {
					return nil, "", "", openai.InvalidRequest("tools", fmt.Sprintf("the parameters of strict function %q cannot be enforced: %s", t.Function.Name, strings.TrimPrefix(err.Error(), "grammar: ")))
				}
				params = nil // not strict: any arguments object will do
			}
		}
		if params == nil {
			params = json.RawMessage(`{"type":"object"}`)
		}
		name, _ := json.Marshal(t.Function.Name)
		alts = append(alts, fmt.Sprintf(`{"type":"object","properties":{"name":{"const":%s},%q:%s},"required":["name",%q],"additionalProperties":false}`, name, argsKey, params, argsKey))
	}
	schema := alts[0]
	if len(alts) > 1 {
		schema = `{"anyOf":[` + strings.Join(alts, ",") + `]}`
	}
	g, err := grammar.CompileSchema(json.RawMessage(schema))
	if err != nil {
		return nil, "", "", openai.InvalidRequest("tools", "a function's parameters cannot be enforced: "+strings.TrimPrefix(err.Error(), "grammar: "))
	}
	return g, prefix, suffix, nil
}

// checkStrictSchema enforces OpenAI's structured-output rules for strict
// schemas: the root is an object; every object schema lists all of its
// properties in required and sets additionalProperties to false. Nested
// schemas are checked under properties, items, anyOf, allOf, $defs and
// definitions. (Keyword support is the grammar compiler's business: it
// refuses what it cannot enforce.)
func checkStrictSchema(schema json.RawMessage) error {
	var root any
	if err := json.Unmarshal(schema, &root); err != nil {
		return fmt.Errorf("schema is not valid JSON: %v", err)
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return fmt.Errorf("the schema must be a JSON object")
	}
	if t, _ := obj["type"].(string); t != "object" {
		return fmt.Errorf("the root schema must have type \"object\"")
	}
	return strictWalk(obj, "#", 0)
}

func strictWalk(v any, path string, depth int) error {
	if depth > 64 {
		return fmt.Errorf("schema nests more than 64 levels at %s", path)
	}
	s, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	props, hasProps := s["properties"].(map[string]any)
	isObject := hasProps || s["type"] == "object"
	if list, ok := s["type"].([]any); ok {
		for _, t := range list {
			if t == "object" {
				isObject = true
			}
		}
	}
	if isObject {
		if ap, ok := s["additionalProperties"].(bool); !ok || ap {
			return fmt.Errorf("'additionalProperties' is required to be supplied and to be false at %s", path)
		}
		req := map[string]bool{}
		if list, ok := s["required"].([]any); ok {
			for _, r := range list {
				if name, ok := r.(string); ok {
					req[name] = true
				}
			}
		}
		names := make([]string, 0, len(props))
		for name := range props {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if !req[name] {
				return fmt.Errorf("'required' at %s must list every property; missing %q", path, name)
			}
		}
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "properties", "$defs", "definitions":
			m, _ := s[k].(map[string]any)
			names := make([]string, 0, len(m))
			for name := range m {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				if err := strictWalk(m[name], path+"/"+k+"/"+name, depth+1); err != nil {
					return err
				}
			}
		case "items":
			if err := strictWalk(s[k], path+"/items", depth+1); err != nil {
				return err
			}
		case "anyOf", "allOf":
			list, _ := s[k].([]any)
			for i, sub := range list {
				if err := strictWalk(sub, fmt.Sprintf("%s/%s/%d", path, k, i), depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// toolCalls turns parsed calls into the response's tool_calls, honouring
// parallel_tool_calls false by keeping only the first.
func (p *outputPlan) toolCalls(calls []chat.ParsedCall) []openai.ToolCall {
	if !p.parallel && len(calls) > 1 {
		calls = calls[:1]
	}
	out := make([]openai.ToolCall, len(calls))
	for i, c := range calls {
		out[i] = openai.ToolCall{ID: openai.NewToolCallID(), Type: "function", Function: openai.FunctionCall{Name: c.Name, Arguments: c.Arguments}}
	}
	return out
}

// parse splits a finished choice's text into content and tool calls. When
// max_tokens cut the reply (truncated), a call cut short comes back partial,
// as OpenAI reports it (chat.ParseTruncatedToolCalls).
func (p *outputPlan) parse(text string, truncated bool) (string, []openai.ToolCall, error) {
	if p.format == chat.ToolFormatNone {
		return text, nil, nil
	}
	parse := chat.ParseToolCalls
	if truncated {
		parse = chat.ParseTruncatedToolCalls
	}
	content, calls, err := parse(p.format, text)
	if err != nil && p.format == chat.ToolFormatHermes {
		// A stop sequence may also cut the closing tag short; the call
		// before it is complete.
		if k := partialSuffix(text, "</tool_call>"); k > 0 {
			if c2, calls2, err2 := chat.ParseToolCalls(p.format, text[:len(text)-k]); err2 == nil {
				content, calls, err = c2, calls2, nil
			}
		}
	}
	switch {
	case err != nil:
		return text, nil, err
	case len(calls) > 0:
		return content, p.toolCalls(calls), nil
	case truncated:
		return content, nil, nil // a call cut before its name: markup dropped
	}
	return text, nil, nil
}

// argumentFragment is the size of the pieces in which a call known only at
// the end of the reply has its arguments sent, as OpenAI streams them in
// several deltas.
const argumentFragment = 16

// toolCallDeltas renders calls as OpenAI streams them: a first delta with
// id, type and name, then the arguments in fragments.
func toolCallDeltas(calls []openai.ToolCall) [][]openai.ToolCallDelta {
	var out [][]openai.ToolCallDelta
	for i, c := range calls {
		out = append(out, []openai.ToolCallDelta{{Index: i, ID: c.ID, Type: c.Type, Function: openai.FunctionDelta{Name: c.Function.Name}}})
		args := c.Function.Arguments
		for len(args) > 0 {
			n := min(argumentFragment, len(args))
			// Cut at a UTF-8 boundary so every fragment is valid text.
			for n < len(args) && args[n]&0xC0 == 0x80 {
				n++
			}
			out = append(out, []openai.ToolCallDelta{{Index: i, Function: openai.FunctionDelta{Arguments: args[:n]}}})
			args = args[n:]
		}
	}
	return out
}

// partialSuffix returns the length of the longest proper prefix of marker
// that text ends with, or 0.
func partialSuffix(text, marker string) int {
	for k := min(len(marker)-1, len(text)); k > 0; k-- {
		if strings.HasSuffix(text, marker[:k]) {
			return k
		}
	}
	return 0
}

// callStream streams one choice's Hermes tool calls as they are written:
// a call's first delta goes out once its name is known, then its arguments
// object in fragments as the model writes it. Other formats (and calls not
// written name-first) are sent whole when the reply ends.
type callStream struct {
	plan  *outputPlan
	calls []streamedCall
}

type streamedCall struct {
	id, name string
	args     string // arguments sent so far
}

const (
	hermesOpenTag  = "<tool_call>"
	hermesCloseTag = "</tool_call>"
)

// progress returns the deltas that held, the text after the last content
// sent (it begins with a tool-call marker), newly makes certain.
func (cs *callStream) progress(held string) []openai.ToolCallDelta {
	if cs.plan.format != chat.ToolFormatHermes {
		return nil
	}
	var out []openai.ToolCallDelta
	blocks := strings.Split(held, hermesOpenTag)[1:]
	for i, body := range blocks {
		if i > 0 && !cs.plan.parallel {
			break
		}
		if j := strings.Index(body, hermesCloseTag); j >= 0 {
			body = body[:j]
		}
		m := chat.HermesCallHeader.FindStringSubmatchIndex(body)
		if m == nil {
			break // not yet (or not name-first): later calls wait too
		}
		if i == len(cs.calls) {
			var name string
			if json.Unmarshal([]byte(body[m[2]:m[3]]), &name) != nil {
				break
			}
			c := streamedCall{id: openai.NewToolCallID(), name: name}
			cs.calls = append(cs.calls, c)
			out = append(out, openai.ToolCallDelta{Index: i, ID: c.id, Type: "function", Function: openai.FunctionDelta{Name: name}})
		}
		if i >= len(cs.calls) {
			break
		}
		start := m[1] - 1 // the arguments object's "{"
		end := objectEnd(body[start:])
		if end < 0 {
			end = len(body) - start
		}
		args := body[start : start+end] // whole characters: engine text is complete UTF-8
		c := &cs.calls[i]
		if len(args) > len(c.args) && strings.HasPrefix(args, c.args) {
			out = append(out, openai.ToolCallDelta{Index: i, Function: openai.FunctionDelta{Arguments: args[len(c.args):]}})
			c.args = args
		}
	}
	return out
}

// finish reconciles what was streamed with the calls parsed from the whole
// reply and returns the remaining deltas. ok is false when the streamed
// calls disagree with the parsed ones (the model broke its JSON after the
// arguments began); the caller then reports the reply as text.
func (cs *callStream) finish(calls []openai.ToolCall) (deltas [][]openai.ToolCallDelta, ok bool) {
	if len(calls) < len(cs.calls) {
		return nil, false
	}
	for i, c := range calls {
		if i >= len(cs.calls) {
			for _, d := range toolCallDeltas(calls[i : i+1]) {
				d[0].Index = i
				deltas = append(deltas, d)
			}
			continue
		}
		s := cs.calls[i]
		if s.name != c.Function.Name || !strings.HasPrefix(c.Function.Arguments, s.args) {
			return nil, false
		}
		if rest := c.Function.Arguments[len(s.args):]; rest != "" {
			deltas = append(deltas, []openai.ToolCallDelta{{Index: i, Function: openai.FunctionDelta{Arguments: rest}}})
		}
	}
	return deltas, true
}

// objectEnd returns the length of the JSON object s begins with, or -1 when
// it is not closed yet. s[0] must be '{'.
func objectEnd(s string) int {
	depth, inString, escaped := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
