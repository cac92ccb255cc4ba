package openai

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Message roles accepted in chat requests.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Content part types. Only text (and refusal, on assistant messages) carry
// text the engine can read; the others are kept raw so that the server can
// refuse them by name.
const (
	PartText       = "text"
	PartRefusal    = "refusal"
	PartImageURL   = "image_url"
	PartInputAudio = "input_audio"
	PartFile       = "file"
)

// ChatRequest is a decoded POST /v1/chat/completions body.
type ChatRequest struct {
	Model    string
	Messages []Message
	Sampling

	Logprobs    bool
	TopLogprobs *int // 0..20; only with Logprobs

	// MaxTokens (deprecated by OpenAI) and MaxCompletionTokens are both in
	// 1..Limits.MaxTokens; if both are sent they must agree. See
	// MaxOutputTokens.
	MaxTokens           *int
	MaxCompletionTokens *int

	N              *int // 1..Limits.MaxN
	ResponseFormat *ResponseFormat
	Stream         bool
	StreamOptions  *StreamOptions // only with Stream

	Tools             []Tool
	ToolChoice        *ToolChoice
	ParallelToolCalls *bool
	User              string

	// Impetus extensions from the seed API document.
	ConversationID string
	UseCache       *bool

	// Newer or deprecated OpenAI fields, checked for type only so that the
	// server can refuse or ignore them by name (see Has).
	ReasoningEffort  string
	Verbosity        string
	ServiceTier      string
	Store            *bool
	Metadata         map[string]string
	Modalities       []string
	PromptCacheKey   string
	SafetyIdentifier string
	Prediction       json.RawMessage
	Audio            json.RawMessage
	WebSearchOptions json.RawMessage
	// ChatTemplateKwargs is an extension (from vLLM, widely used with Qwen3
	// models): extra variables for the chat template, e.g.
	// {"enable_thinking": false}; the raw object, nil when absent.
	ChatTemplateKwargs json.RawMessage
	Functions          json.RawMessage // deprecated form of tools
	FunctionCall       json.RawMessage // deprecated form of tool_choice

	present []string
}

// Has reports whether the request carried top-level field name with a
// non-null value. The server uses it to refuse fields it does not implement.
func (r *ChatRequest) Has(name string) bool { return slices.Contains(r.present, name) }

// Fields lists the top-level fields sent with non-null values, in order.
func (r *ChatRequest) Fields() []string { return slices.Clone(r.present) }

// MaxOutputTokens returns the requested completion-token cap from
// max_completion_tokens or max_tokens, and false if neither was sent.
func (r *ChatRequest) MaxOutputTokens() (int, bool) {
	switch {
	case r.MaxCompletionTokens != nil:
		return *r.MaxCompletionTokens, true
	case r.MaxTokens != nil:
		return *r.MaxTokens, true
	}
	return 0, false
}

// Choices returns n, defaulting to 1.
func (r *ChatRequest) Choices() int {
	if r.N == nil {
		return 1
	}
	return *r.N
}

// IncludeUsage reports whether a streamed response must end with a usage chunk.
func (r *ChatRequest) IncludeUsage() bool {
	return r.Stream && r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// Message is one entry of messages.
type Message struct {
	Role string
	// Content holds string content. When the request sent an array of parts
	// instead, Parts holds them and Content is empty; use Text for both.
	Content string
	Parts   []ContentPart
	// HasContent is false when content was absent or null (allowed only for
	// assistant messages with tool calls, a refusal, audio or function_call).
	HasContent bool
	Name       string     // optional participant name
	ToolCalls  []ToolCall // assistant only
	ToolCallID string     // tool only, required there
	Refusal    string     // assistant only
	// ReasoningContent is an extension: the reasoning ("thinking") text of an
	// earlier assistant turn, as servers for reasoning models return it and
	// clients send it back; chat templates such as Qwen3's read it.
	ReasoningContent string

	Audio        json.RawMessage // assistant only, raw {"id"}
	FunctionCall json.RawMessage // assistant only, deprecated
}

// Text returns the message's text: Content, or its text parts joined with
// "\n" (parts are usually separate paragraphs). Non-text parts are skipped;
// the server should refuse them before relying on Text.
func (m *Message) Text() string {
	if m.Parts == nil {
		return m.Content
	}
	var texts []string
	for _, p := range m.Parts {
		if p.Type == PartText {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n")
}

// ContentPart is one element of an array content. Text holds the text of a
// "text" part or the refusal of a "refusal" part; Raw holds the whole part as
// sent for the other types.
type ContentPart struct {
	Type string
	Text string
	Raw  json.RawMessage
}

// ToolCall is a call made by the assistant, in requests and responses.
// Arguments is the JSON text the model produced, kept verbatim (key order
// included); it is not required to be valid JSON.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is the function part of a ToolCall.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Tool is one entry of tools; only type "function" exists in this API.
type Tool struct {
	Type     string
	Function FunctionDef
}

// FunctionDef describes a callable function.
type FunctionDef struct {
	Name        string
	Description string
	// Parameters is the JSON Schema object as sent (compacted, key order
	// kept), or nil when absent.
	Parameters json.RawMessage
	Strict     *bool
}

// Tool choice modes. A named function has Mode ToolChoiceFunction.
const (
	ToolChoiceNone     = "none"
	ToolChoiceAuto     = "auto"
	ToolChoiceRequired = "required"
	ToolChoiceFunction = "function"
)

// ToolChoice is tool_choice: a mode, or a named function to force.
type ToolChoice struct {
	Mode     string // none, auto, required or function
	Function string // the forced function's name when Mode is "function"
}

// Response format types.
const (
	FormatText       = "text"
	FormatJSONObject = "json_object"
	FormatJSONSchema = "json_schema"
)

// ResponseFormat is response_format.
type ResponseFormat struct {
	Type       string      // text, json_object or json_schema
	JSONSchema *JSONSchema // set for json_schema
}

// JSONSchema is response_format.json_schema.
type JSONSchema struct {
	Name        string
	Description string
	Schema      json.RawMessage // compacted, key order kept; nil when absent
	Strict      *bool
}

// namePattern is OpenAI's documented rule for function and schema names.
var namePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

func checkName(path, name string) *Error {
	if !namePattern.MatchString(name) {
		return errAt(path, "must be 1 to 64 letters, digits, underscores or dashes, got %s", quote(name))
	}
	return nil
}

// DecodeChatRequest reads and validates a chat completions request. Errors
// are 400s naming the offending field, or a 413 when the body is too large.
func DecodeChatRequest(r io.Reader, limits Limits) (*ChatRequest, *Error) {
	l := limits.withDefaults()
	body, e := readBody(r, l.MaxBodyBytes)
	if e != nil {
		return nil, e
	}
	root, e := parseRoot(body)
	if e != nil {
		return nil, e
	}
	req := &ChatRequest{}
	req.present, e = decodeObject("", root, req.fields(l), unknownTop)
	if e != nil {
		return nil, e
	}
	if e := req.validate(l); e != nil {
		return nil, e
	}
	return req, nil
}

func (r *ChatRequest) fields(l Limits) map[string]fieldFunc {
	str := func(dst *string) fieldFunc {
		return func(p string, raw json.RawMessage) (e *Error) {
			*dst, e = getString(p, raw)
			return e
		}
	}
	boolPtr := func(dst **bool) fieldFunc {
		return func(p string, raw json.RawMessage) *Error {
			b, e := getBool(p, raw)
			*dst = &b
			return e
		}
	}
	intPtr := func(dst **int, lo, hi int) fieldFunc {
		return func(p string, raw json.RawMessage) *Error {
			n, e := intIn(p, raw, int64(lo), int64(hi))
			*dst = &n
			return e
		}
	}
	objRaw := func(dst *json.RawMessage) fieldFunc {
		return func(p string, raw json.RawMessage) *Error {
			if kindOf(raw) != "object" {
				return typeErr(p, "object", raw)
			}
			*dst = rawCopy(raw)
			return nil
		}
	}
	f := map[string]fieldFunc{
		"model": str(&r.Model),
		"messages": func(p string, raw json.RawMessage) (e *Error) {
			r.Messages, e = decodeMessages(p, raw, l)
			return e
		},
		"logprobs": func(p string, raw json.RawMessage) (e *Error) {
			r.Logprobs, e = getBool(p, raw)
			return e
		},
		"top_logprobs":          intPtr(&r.TopLogprobs, 0, 20),
		"max_tokens":            intPtr(&r.MaxTokens, 1, l.MaxTokens),
		"max_completion_tokens": intPtr(&r.MaxCompletionTokens, 1, l.MaxTokens),
		"n":                     intPtr(&r.N, 1, l.MaxN),
		"response_format": func(p string, raw json.RawMessage) (e *Error) {
			r.ResponseFormat, e = decodeResponseFormat(p, raw, l)
			return e
		},
		"stream": func(p string, raw json.RawMessage) (e *Error) {
			r.Stream, e = getBool(p, raw)
			return e
		},
		"stream_options": func(p string, raw json.RawMessage) (e *Error) {
			r.StreamOptions, e = decodeStreamOptions(p, raw)
			return e
		},
		"tools": func(p string, raw json.RawMessage) (e *Error) {
			r.Tools, e = decodeTools(p, raw, l)
			return e
		},
		"tool_choice": func(p string, raw json.RawMessage) (e *Error) {
			r.ToolChoice, e = decodeToolChoice(p, raw)
			return e
		},
		"parallel_tool_calls": boolPtr(&r.ParallelToolCalls),
		"user":                str(&r.User),
		"conversation_id":     str(&r.ConversationID),
		"use_cache":           boolPtr(&r.UseCache),
		"reasoning_effort":    str(&r.ReasoningEffort),
		"verbosity":           str(&r.Verbosity),
		"service_tier":        str(&r.ServiceTier),
		"store":               boolPtr(&r.Store),
		"metadata": func(p string, raw json.RawMessage) (e *Error) {
			r.Metadata, e = getStringMap(p, raw)
			return e
		},
		"modalities": func(p string, raw json.RawMessage) *Error {
			items, e := getArray(p, raw)
			if e != nil {
				return e
			}
			r.Modalities = make([]string, len(items))
			for i, it := range items {
				if r.Modalities[i], e = getString(elem(p, i), it); e != nil {
					return e
				}
			}
			return nil
		},
		"prompt_cache_key":     str(&r.PromptCacheKey),
		"safety_identifier":    str(&r.SafetyIdentifier),
		"prediction":           objRaw(&r.Prediction),
		"audio":                objRaw(&r.Audio),
		"web_search_options":   objRaw(&r.WebSearchOptions),
		"chat_template_kwargs": objRaw(&r.ChatTemplateKwargs),
		"functions": func(p string, raw json.RawMessage) *Error {
			if kindOf(raw) != "array" {
				return typeErr(p, "array", raw)
			}
			r.Functions = rawCopy(raw)
			return nil
		},
		"function_call": func(p string, raw json.RawMessage) *Error {
			if k := kindOf(raw); k != "string" && k != "object" {
				return typeErr(p, "string or object", raw)
			}
			r.FunctionCall = rawCopy(raw)
			return nil
		},
	}
	return mergeFields(f, samplingFields(&r.Sampling, l))
}

// validate applies the rules that span fields.
func (r *ChatRequest) validate(l Limits) *Error {
	if !r.Has("model") {
		return errAt("model", "required field is missing")
	}
	if r.Model == "" {
		return errAt("model", "must not be empty")
	}
	if !r.Has("messages") {
		return errAt("messages", "required field is missing")
	}
	if r.TopLogprobs != nil && !r.Logprobs {
		return errAt("top_logprobs", "requires logprobs to be true")
	}
	if r.MaxTokens != nil && r.MaxCompletionTokens != nil && *r.MaxTokens != *r.MaxCompletionTokens {
		return errAt("max_tokens", "max_tokens (%d) and max_completion_tokens (%d) disagree; send only max_completion_tokens",
			*r.MaxTokens, *r.MaxCompletionTokens)
	}
	if r.StreamOptions != nil && !r.Stream {
		return errAt("stream_options", "only allowed when stream is true")
	}
	if r.ToolChoice != nil {
		switch r.ToolChoice.Mode {
		case ToolChoiceRequired:
			if len(r.Tools) == 0 {
				return errAt("tool_choice", "%q requires tools", ToolChoiceRequired)
			}
		case ToolChoiceFunction:
			found := slices.ContainsFunc(r.Tools, func(t Tool) bool { return t.Function.Name == r.ToolChoice.Function })
			if !found {
				return errAt("tool_choice.function.name", "no tool named %s in tools", quote(r.ToolChoice.Function))
			}
		}
	}
	return nil
}

func decodeMessages(path string, raw json.RawMessage, l Limits) ([]Message, *Error) {
	items, e := getArray(path, raw)
	if e != nil {
		return nil, e
	}
	if len(items) == 0 {
		return nil, errAt(path, "must contain at least one message")
	}
	if len(items) > l.MaxMessages {
		return nil, errAt(path, "at most %d messages are allowed, got %d", l.MaxMessages, len(items))
	}
	out := make([]Message, len(items))
	for i, it := range items {
		if e := decodeMessage(elem(path, i), it, &out[i]); e != nil {
			return nil, e
		}
	}
	return out, nil
}

var roles = []string{RoleSystem, RoleDeveloper, RoleUser, RoleAssistant, RoleTool}

// partTypes lists the content part types each role may send.
var partTypes = map[string][]string{
	RoleSystem:    {PartText},
	RoleDeveloper: {PartText},
	RoleUser:      {PartText, PartImageURL, PartInputAudio, PartFile},
	RoleAssistant: {PartText, PartRefusal},
	RoleTool:      {PartText},
}

func decodeMessage(path string, raw json.RawMessage, m *Message) *Error {
	ms, e := members(path, raw)
	if e != nil {
		return e
	}
	// The role decides which other fields are allowed, so read it first.
	roleAt := slices.IndexFunc(ms, func(x member) bool { return x.key == "role" })
	if roleAt < 0 || isNull(ms[roleAt].val) {
		return errAt(child(path, "role"), "required field is missing")
	}
	rp := child(path, "role")
	if m.Role, e = getString(rp, ms[roleAt].val); e != nil {
		return e
	}
	if !slices.Contains(roles, m.Role) {
		return errAt(rp, "unknown role %s; expected one of %s", quote(m.Role), strings.Join(roles, ", "))
	}
	fields := map[string]fieldFunc{
		"role": func(string, json.RawMessage) *Error { return nil },
		"content": func(p string, raw json.RawMessage) *Error {
			m.HasContent = true
			return decodeContent(p, raw, m)
		},
	}
	// name is accepted on every role: OpenAI documents it for all but tool
	// messages, yet common clients (LangChain) send the tool's name there too.
	fields["name"] = func(p string, raw json.RawMessage) (e *Error) {
		m.Name, e = getString(p, raw)
		return e
	}
	switch m.Role {
	case RoleAssistant:
		fields["tool_calls"] = func(p string, raw json.RawMessage) (e *Error) {
			m.ToolCalls, e = decodeToolCalls(p, raw)
			return e
		}
		fields["refusal"] = func(p string, raw json.RawMessage) (e *Error) {
			m.Refusal, e = getString(p, raw)
			return e
		}
		fields["reasoning_content"] = func(p string, raw json.RawMessage) (e *Error) {
			m.ReasoningContent, e = getString(p, raw)
			return e
		}
		fields["audio"] = func(p string, raw json.RawMessage) *Error {
			if kindOf(raw) != "object" {
				return typeErr(p, "object", raw)
			}
			m.Audio = rawCopy(raw)
			return nil
		}
		fields["function_call"] = func(p string, raw json.RawMessage) *Error {
			if kindOf(raw) != "object" {
				return typeErr(p, "object", raw)
			}
			m.FunctionCall = rawCopy(raw)
			return nil
		}
	case RoleTool:
		fields["tool_call_id"] = func(p string, raw json.RawMessage) (e *Error) {
			m.ToolCallID, e = getString(p, raw)
			return e
		}
	}
	unknown := func(p, key string) *Error {
		switch key {
		case "tool_calls", "refusal", "reasoning_content", "audio", "function_call", "tool_call_id":
			return errAt(child(p, key), "not allowed on %q messages", m.Role)
		}
		return unknownNested(p, key)
	}
	if _, e := decodeObject(path, raw, fields, unknown); e != nil {
		return e
	}
	switch m.Role {
	case RoleAssistant:
		if !m.HasContent && len(m.ToolCalls) == 0 && m.Refusal == "" && m.Audio == nil && m.FunctionCall == nil {
			return errAt(child(path, "content"), "an assistant message needs content or tool_calls")
		}
	case RoleTool:
		if m.ToolCallID == "" {
			return errAt(child(path, "tool_call_id"), "required on a \"tool\" message")
		}
		fallthrough
	default:
		if !m.HasContent {
			return errAt(child(path, "content"), "required field is missing")
		}
	}
	return nil
}

func decodeContent(path string, raw json.RawMessage, m *Message) *Error {
	const want = "string or array of content parts"
	switch kindOf(raw) {
	case "string":
		s, e := getString(path, raw)
		m.Content = s
		return e
	case "array":
	default:
		return typeErr(path, want, raw)
	}
	items, e := getArray(path, raw)
	if e != nil {
		return e
	}
	if len(items) == 0 {
		return errAt(path, "must contain at least one content part")
	}
	m.Parts = make([]ContentPart, len(items))
	for i, it := range items {
		if e := decodePart(elem(path, i), it, m.Role, &m.Parts[i]); e != nil {
			return e
		}
	}
	return nil
}

func decodePart(path string, raw json.RawMessage, role string, part *ContentPart) *Error {
	ms, e := members(path, raw)
	if e != nil {
		return e
	}
	typeAt := slices.IndexFunc(ms, func(x member) bool { return x.key == "type" })
	if typeAt < 0 || isNull(ms[typeAt].val) {
		return errAt(child(path, "type"), "required field is missing")
	}
	tp := child(path, "type")
	if part.Type, e = getString(tp, ms[typeAt].val); e != nil {
		return e
	}
	allowed := partTypes[role]
	if !slices.Contains(allowed, part.Type) {
		return errAt(tp, "content part type %s is not allowed in %q messages; expected one of %s",
			quote(part.Type), role, strings.Join(allowed, ", "))
	}
	fields := map[string]fieldFunc{"type": func(string, json.RawMessage) *Error { return nil }}
	var got bool
	switch part.Type {
	case PartText, PartRefusal:
		fields[part.Type] = func(p string, raw json.RawMessage) (e *Error) {
			got = true
			part.Text, e = getString(p, raw)
			return e
		}
	default: // image_url, input_audio, file: an object the server may refuse
		fields[part.Type] = func(p string, raw json.RawMessage) *Error {
			got = true
			if kindOf(raw) != "object" {
				return typeErr(p, "object", raw)
			}
			return nil
		}
	}
	if _, e := decodeObject(path, raw, fields, unknownNested); e != nil {
		return e
	}
	if !got {
		return errAt(child(path, part.Type), "required field is missing")
	}
	if part.Type != PartText && part.Type != PartRefusal {
		part.Raw = rawCopy(raw)
	}
	return nil
}

func decodeToolCalls(path string, raw json.RawMessage) ([]ToolCall, *Error) {
	items, e := getArray(path, raw)
	if e != nil {
		return nil, e
	}
	out := make([]ToolCall, len(items))
	for i, it := range items {
		p := elem(path, i)
		tc := &out[i]
		var fnRaw json.RawMessage
		present, e := decodeObject(p, it, map[string]fieldFunc{
			"id": func(p string, raw json.RawMessage) (e *Error) {
				tc.ID, e = getString(p, raw)
				return e
			},
			"type": func(p string, raw json.RawMessage) (e *Error) {
				tc.Type, e = getFunctionType(p, raw)
				return e
			},
			"function": func(p string, raw json.RawMessage) *Error {
				fnRaw = raw
				return nil
			},
		}, unknownNested)
		if e != nil {
			return nil, e
		}
		if e := requireFields(p, present, "id", "type", "function"); e != nil {
			return nil, e
		}
		fp := child(p, "function")
		fpresent, e := decodeObject(fp, fnRaw, map[string]fieldFunc{
			"name": func(p string, raw json.RawMessage) (e *Error) {
				tc.Function.Name, e = getString(p, raw)
				return e
			},
			"arguments": func(p string, raw json.RawMessage) (e *Error) {
				tc.Function.Arguments, e = getString(p, raw)
				return e
			},
		}, unknownNested)
		if e != nil {
			return nil, e
		}
		if e := requireFields(fp, fpresent, "name", "arguments"); e != nil {
			return nil, e
		}
	}
	return out, nil
}

func decodeTools(path string, raw json.RawMessage, l Limits) ([]Tool, *Error) {
	items, e := getArray(path, raw)
	if e != nil {
		return nil, e
	}
	if len(items) > l.MaxTools {
		return nil, errAt(path, "at most %d tools are allowed, got %d", l.MaxTools, len(items))
	}
	out := make([]Tool, len(items))
	names := map[string]bool{}
	for i, it := range items {
		p := elem(path, i)
		t := &out[i]
		var fnRaw json.RawMessage
		present, e := decodeObject(p, it, map[string]fieldFunc{
			"type": func(p string, raw json.RawMessage) (e *Error) {
				t.Type, e = getFunctionType(p, raw)
				return e
			},
			"function": func(p string, raw json.RawMessage) *Error {
				fnRaw = raw
				return nil
			},
		}, unknownNested)
		if e != nil {
			return nil, e
		}
		if e := requireFields(p, present, "type", "function"); e != nil {
			return nil, e
		}
		fp := child(p, "function")
		fn := &t.Function
		fpresent, e := decodeObject(fp, fnRaw, namedSchemaFields(&fn.Name, &fn.Description, "parameters", &fn.Parameters, &fn.Strict, l), unknownNested)
		if e != nil {
			return nil, e
		}
		if e := requireFields(fp, fpresent, "name"); e != nil {
			return nil, e
		}
		if names[fn.Name] {
			return nil, errAt(child(fp, "name"), "duplicate function name %q", fn.Name)
		}
		names[fn.Name] = true
	}
	return out, nil
}

func decodeToolChoice(path string, raw json.RawMessage) (*ToolChoice, *Error) {
	const want = `"none", "auto", "required" or {"type":"function","function":{"name":...}}`
	switch kindOf(raw) {
	case "string":
		s, e := getString(path, raw)
		if e != nil {
			return nil, e
		}
		switch s {
		case ToolChoiceNone, ToolChoiceAuto, ToolChoiceRequired:
			return &ToolChoice{Mode: s}, nil
		}
		return nil, errAt(path, "expected %s, got %s", want, quote(s))
	case "object":
	default:
		return nil, typeErr(path, want, raw)
	}
	tc := &ToolChoice{}
	present, e := decodeObject(path, raw, map[string]fieldFunc{
		"type": func(p string, raw json.RawMessage) (e *Error) {
			_, e = getFunctionType(p, raw)
			return e
		},
		"function": func(p string, raw json.RawMessage) *Error {
			fpresent, e := decodeObject(p, raw, map[string]fieldFunc{
				"name": func(p string, raw json.RawMessage) (e *Error) {
					tc.Function, e = getString(p, raw)
					return e
				},
			}, unknownNested)
			if e == nil {
				e = requireFields(p, fpresent, "name")
			}
			return e
		},
	}, unknownNested)
	if e != nil {
		return nil, e
	}
	if e := requireFields(path, present, "type", "function"); e != nil {
		return nil, e
	}
	tc.Mode = ToolChoiceFunction
	return tc, nil
}

func decodeResponseFormat(path string, raw json.RawMessage, l Limits) (*ResponseFormat, *Error) {
	rf := &ResponseFormat{}
	var schemaRaw json.RawMessage
	present, e := decodeObject(path, raw, map[string]fieldFunc{
		"type": func(p string, raw json.RawMessage) (e *Error) {
			rf.Type, e = getString(p, raw)
			if e != nil {
				return e
			}
			switch rf.Type {
			case FormatText, FormatJSONObject, FormatJSONSchema:
				return nil
			}
			return errAt(p, "expected %q, %q or %q, got %s", FormatText, FormatJSONObject, FormatJSONSchema, quote(rf.Type))
		},
		"json_schema": func(p string, raw json.RawMessage) *Error {
			schemaRaw = raw
			return nil
		},
	}, unknownNested)
	if e != nil {
		return nil, e
	}
	if e := requireFields(path, present, "type"); e != nil {
		return nil, e
	}
	jp := child(path, "json_schema")
	if rf.Type != FormatJSONSchema {
		if schemaRaw != nil {
			return nil, errAt(jp, "only allowed when type is %q", FormatJSONSchema)
		}
		return rf, nil
	}
	if schemaRaw == nil {
		return nil, errAt(jp, "required when type is %q", FormatJSONSchema)
	}
	js := &JSONSchema{}
	jpresent, e := decodeObject(jp, schemaRaw, namedSchemaFields(&js.Name, &js.Description, "schema", &js.Schema, &js.Strict, l), unknownNested)
	if e != nil {
		return nil, e
	}
	if e := requireFields(jp, jpresent, "name"); e != nil {
		return nil, e
	}
	rf.JSONSchema = js
	return rf, nil
}

// String renders a tool choice as it would appear in a request, for logs.
func (t ToolChoice) String() string {
	if t.Mode == ToolChoiceFunction {
		return fmt.Sprintf("function:%s", t.Function)
	}
	return t.Mode
}

// namedSchemaFields decodes the fields that a function definition and a
// json_schema response format share: a checked name, a description, a raw
// JSON schema under schemaKey ("parameters" or "schema") and strict.
func namedSchemaFields(name, desc *string, schemaKey string, schema *json.RawMessage, strict **bool, l Limits) map[string]fieldFunc {
	return map[string]fieldFunc{
		"name": func(p string, raw json.RawMessage) (e *Error) {
			if *name, e = getString(p, raw); e != nil {
				return e
			}
			return checkName(p, *name)
		},
		"description": func(p string, raw json.RawMessage) (e *Error) {
			*desc, e = getString(p, raw)
			return e
		},
		schemaKey: func(p string, raw json.RawMessage) (e *Error) {
			*schema, e = getObjectRaw(p, raw, l.MaxSchemaBytes)
			return e
		},
		"strict": func(p string, raw json.RawMessage) *Error {
			b, e := getBool(p, raw)
			*strict = &b
			return e
		},
	}
}
