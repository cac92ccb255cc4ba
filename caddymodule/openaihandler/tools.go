package openaihandler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
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
				if err := grammar.CheckStrictSchema(t.Function.Parameters); err != nil {
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
				if err := grammar.CheckStrictSchema(schema); err != nil {
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
	argsKey := format.ArgumentsKey()
	prefix, suffix := format.ForcedCallWrap()
	switch format {
	case chat.ToolFormatHermes, chat.ToolFormatLlama3:
		// A JSON object, with text around it the grammar can write.
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

// parse splits a finished choice's text into content and tool calls
// (chat.ParseReply). When max_tokens cut the reply (truncated), a call cut
// short comes back partial, as OpenAI reports it.
func (p *outputPlan) parse(text string, truncated bool) (string, []openai.ToolCall, error) {
	content, calls, err := chat.ParseReply(p.format, text, truncated)
	if len(calls) == 0 {
		return content, nil, err
	}
	return content, p.toolCalls(calls), err
}

// toolStream starts one choice's streaming parse, or returns nil when tool
// calls are not parsed.
func (p *outputPlan) toolStream() *chat.ToolStream {
	if p.format == chat.ToolFormatNone {
		return nil
	}
	return chat.NewToolStream(p.format, p.parallel)
}

// toolCallDelta renders a streamed piece of a call as OpenAI sends it: a
// call's first delta has its id, type and name.
func toolCallDelta(d chat.CallDelta) openai.ToolCallDelta {
	out := openai.ToolCallDelta{Index: d.Index, Function: openai.FunctionDelta{Name: d.Name, Arguments: d.Arguments}}
	if d.First {
		out.ID, out.Type = openai.NewToolCallID(), "function"
	}
	return out
}
