package openai

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// Object names used in responses.
const (
	ObjectChatCompletion      = "chat.completion"
	ObjectChatCompletionChunk = "chat.completion.chunk"
	ObjectTextCompletion      = "text_completion"
	ObjectModel               = "model"
	ObjectList                = "list"
)

// Finish reasons.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Usage counts the tokens the model really read and generated, never an
// estimate.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	// PromptTokensDetails reports prompt tokens served from the prefix
	// cache; omitted when nil.
	PromptTokensDetails *PromptTokensDetails `json:"prompt_tokens_details,omitempty"`
}

// NewUsage fills TotalTokens.
func NewUsage(prompt, completion int) Usage {
	return Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
}

// PromptTokensDetails is usage.prompt_tokens_details.
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// PerformanceMetrics is the seed API's chat response extra.
type PerformanceMetrics struct {
	InferenceTimeMS    float64 `json:"inference_time_ms"`
	TokensPerSecond    float64 `json:"tokens_per_second"`
	TimeToFirstTokenMS float64 `json:"time_to_first_token_ms"`
}

// Logprob is a log probability. It encodes -Inf (a token the sampler ruled
// out) as -9999.0, the value OpenAI documents for "very unlikely", and NaN as
// null (the first echoed token of a text completion has no logprob).
type Logprob float64

// MarshalJSON implements json.Marshaler.
func (l Logprob) MarshalJSON() ([]byte, error) {
	f := float64(l)
	switch {
	case math.IsNaN(f):
		return []byte("null"), nil
	case math.IsInf(f, -1) || f < -9999:
		f = -9999
	case math.IsInf(f, 1):
		f = 0
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// NoLogprob marks a missing logprob (encoded as null).
var NoLogprob = Logprob(math.NaN())

// TokenBytes returns the UTF-8 bytes of a token as the int array OpenAI
// sends ([]byte would encode as base64).
func TokenBytes(token string) []int {
	out := make([]int, len(token))
	for i := 0; i < len(token); i++ {
		out[i] = int(token[i])
	}
	return out
}

// TokenLogprob is one entry of choices[].logprobs.content.
type TokenLogprob struct {
	Token   string
	Logprob Logprob
	// Bytes are the token's raw bytes (a token may be part of a UTF-8
	// character); nil encodes as null.
	Bytes       []int
	TopLogprobs []TopLogprob
}

// TopLogprob is one alternative in TokenLogprob.TopLogprobs.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob Logprob `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// MarshalJSON always writes top_logprobs as an array, as OpenAI does.
func (t TokenLogprob) MarshalJSON() ([]byte, error) {
	top := t.TopLogprobs
	if top == nil {
		top = []TopLogprob{}
	}
	return marshal(struct {
		Token       string       `json:"token"`
		Logprob     Logprob      `json:"logprob"`
		Bytes       []int        `json:"bytes"`
		TopLogprobs []TopLogprob `json:"top_logprobs"`
	}{t.Token, t.Logprob, t.Bytes, top})
}

// ChoiceLogprobs is choices[].logprobs of a chat completion or chunk.
type ChoiceLogprobs struct {
	Content []TokenLogprob
	Refusal []TokenLogprob
}

// MarshalJSON writes content as an array and refusal as null when empty.
func (c ChoiceLogprobs) MarshalJSON() ([]byte, error) {
	content := c.Content
	if content == nil {
		content = []TokenLogprob{}
	}
	return marshal(struct {
		Content []TokenLogprob `json:"content"`
		Refusal []TokenLogprob `json:"refusal"`
	}{content, c.Refusal})
}

// ChatCompletion is the non-streaming /v1/chat/completions response.
type ChatCompletion struct {
	ID                string // "chatcmpl-…", see NewChatID
	Created           int64  // Unix seconds
	Model             string
	Choices           []ChatChoice
	Usage             Usage
	SystemFingerprint string // omitted when empty

	// Seed API extras; omitted when empty.
	ConversationID     string
	PerformanceMetrics *PerformanceMetrics
}

// MarshalJSON writes the OpenAI shape with object "chat.completion".
func (c ChatCompletion) MarshalJSON() ([]byte, error) {
	choices := c.Choices
	if choices == nil {
		choices = []ChatChoice{}
	}
	return marshal(struct {
		ID                 string              `json:"id"`
		Object             string              `json:"object"`
		Created            int64               `json:"created"`
		Model              string              `json:"model"`
		Choices            []ChatChoice        `json:"choices"`
		Usage              Usage               `json:"usage"`
		SystemFingerprint  string              `json:"system_fingerprint,omitempty"`
		ConversationID     string              `json:"conversation_id,omitempty"`
		PerformanceMetrics *PerformanceMetrics `json:"performance_metrics,omitempty"`
	}{c.ID, ObjectChatCompletion, c.Created, c.Model, choices, c.Usage,
		c.SystemFingerprint, c.ConversationID, c.PerformanceMetrics})
}

// ChatChoice is one choice of a ChatCompletion.
type ChatChoice struct {
	Index        int             `json:"index"`
	Message      ResponseMessage `json:"message"`
	Logprobs     *ChoiceLogprobs `json:"logprobs"` // null unless requested
	FinishReason string          `json:"finish_reason"`
}

// ResponseMessage is the assistant message of a ChatChoice.
type ResponseMessage struct {
	Role      string // "assistant" when empty
	Content   string
	Refusal   string
	ToolCalls []ToolCall
	// ReasoningContent is an extension for reasoning models: the thinking
	// text split from the answer; omitted when empty.
	ReasoningContent string
}

// MarshalJSON writes content as null when the message carries only tool
// calls or a refusal, refusal as null when empty, and omits empty tool_calls.
func (m ResponseMessage) MarshalJSON() ([]byte, error) {
	role := m.Role
	if role == "" {
		role = RoleAssistant
	}
	var content, refusal *string
	if m.Content != "" || (len(m.ToolCalls) == 0 && m.Refusal == "") {
		content = &m.Content
	}
	if m.Refusal != "" {
		refusal = &m.Refusal
	}
	return marshal(struct {
		Role             string     `json:"role"`
		Content          *string    `json:"content"`
		Refusal          *string    `json:"refusal"`
		ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
		ReasoningContent string     `json:"reasoning_content,omitempty"`
	}{role, content, refusal, m.ToolCalls, m.ReasoningContent})
}

// ChatCompletionChunk is one SSE event of a streamed chat completion. Build
// chunks with a ChatStream so that id, created and model stay the same.
type ChatCompletionChunk struct {
	ID                string
	Created           int64
	Model             string
	SystemFingerprint string // omitted when empty
	Choices           []ChunkChoice
	// Usage is set only on the final usage chunk. When IncludeUsage is true
	// (the client sent stream_options.include_usage) a nil Usage encodes as
	// "usage": null; otherwise the key is omitted.
	Usage        *Usage
	IncludeUsage bool

	// Seed API extras, for the last chunk; omitted when empty.
	ConversationID     string
	PerformanceMetrics *PerformanceMetrics
}

// MarshalJSON writes object "chat.completion.chunk" and choices as an array
// (empty in the usage chunk).
func (c ChatCompletionChunk) MarshalJSON() ([]byte, error) {
	choices := c.Choices
	if choices == nil {
		choices = []ChunkChoice{}
	}
	return marshal(struct {
		ID                 string              `json:"id"`
		Object             string              `json:"object"`
		Created            int64               `json:"created"`
		Model              string              `json:"model"`
		SystemFingerprint  string              `json:"system_fingerprint,omitempty"`
		Choices            []ChunkChoice       `json:"choices"`
		Usage              json.RawMessage     `json:"usage,omitempty"`
		ConversationID     string              `json:"conversation_id,omitempty"`
		PerformanceMetrics *PerformanceMetrics `json:"performance_metrics,omitempty"`
	}{c.ID, ObjectChatCompletionChunk, c.Created, c.Model, c.SystemFingerprint, choices,
		usageField(c.Usage, c.IncludeUsage), c.ConversationID, c.PerformanceMetrics})
}

// usageField encodes the three states of a chunk's usage: a value, null, or
// absent.
func usageField(u *Usage, include bool) json.RawMessage {
	if u != nil {
		b, _ := marshal(u) // ints only: cannot fail
		return b
	}
	if include {
		return json.RawMessage("null")
	}
	return nil
}

// ChunkChoice is one choice of a ChatCompletionChunk.
type ChunkChoice struct {
	Index        int
	Delta        Delta
	Logprobs     *ChoiceLogprobs // null unless requested
	FinishReason string          // null until the choice's last chunk
}

// MarshalJSON writes finish_reason as null while it is empty.
func (c ChunkChoice) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		Index        int             `json:"index"`
		Delta        Delta           `json:"delta"`
		Logprobs     *ChoiceLogprobs `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	}{c.Index, c.Delta, c.Logprobs, nullIfEmpty(c.FinishReason)})
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Delta is the incremental message of a chunk; empty fields are omitted, so
// the last chunk's delta is {}.
type Delta struct {
	Role      string          `json:"role,omitempty"`
	Content   *string         `json:"content,omitempty"`
	ToolCalls []ToolCallDelta `json:"tool_calls,omitempty"`
	// ReasoningContent is the extension of ResponseMessage.ReasoningContent
	// for streams.
	ReasoningContent string `json:"reasoning_content,omitempty"`
}

// RoleDelta is the first delta of a choice: the role and empty content.
func RoleDelta() Delta {
	empty := ""
	return Delta{Role: RoleAssistant, Content: &empty}
}

// TextDelta carries a piece of generated text.
func TextDelta(text string) Delta { return Delta{Content: &text} }

// ToolCallDelta is one fragment of a streamed tool call: the first fragment
// of a call carries ID, Type and Function.Name; later ones only Index and a
// piece of Function.Arguments.
type ToolCallDelta struct {
	Index    int           `json:"index"`
	ID       string        `json:"id,omitempty"`
	Type     string        `json:"type,omitempty"`
	Function FunctionDelta `json:"function"`
}

// FunctionDelta is the function part of a ToolCallDelta; arguments is always
// present (possibly "") so that clients can append it.
type FunctionDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// ChatStream stamps every chunk of one streamed chat completion with the
// same id, created, model and usage mode.
type ChatStream struct {
	ID                string
	Created           int64
	Model             string
	SystemFingerprint string
	IncludeUsage      bool
}

// Chunk builds a content chunk.
func (s ChatStream) Chunk(choices ...ChunkChoice) ChatCompletionChunk {
	return ChatCompletionChunk{ID: s.ID, Created: s.Created, Model: s.Model,
		SystemFingerprint: s.SystemFingerprint, Choices: choices, IncludeUsage: s.IncludeUsage}
}

// UsageChunk builds the final include_usage chunk: no choices, filled usage.
func (s ChatStream) UsageChunk(u Usage) ChatCompletionChunk {
	c := s.Chunk()
	c.Usage = &u
	return c
}

// TextCompletion is the /v1/completions response, and with Stream set one
// streamed chunk of it (both use object "text_completion").
type TextCompletion struct {
	ID                string // "cmpl-…", see NewCompletionID
	Created           int64
	Model             string
	SystemFingerprint string // omitted when empty
	Choices           []TextChoice
	// Usage is always written in a non-streaming response (Stream false).
	// In a stream it follows the chunk rules of ChatCompletionChunk.
	Usage        *Usage
	Stream       bool
	IncludeUsage bool
}

// MarshalJSON writes object "text_completion".
func (c TextCompletion) MarshalJSON() ([]byte, error) {
	choices := c.Choices
	if choices == nil {
		choices = []TextChoice{}
	}
	usage := usageField(c.Usage, c.IncludeUsage)
	if !c.Stream && c.Usage == nil {
		usage, _ = marshal(Usage{})
	}
	return marshal(struct {
		ID                string          `json:"id"`
		Object            string          `json:"object"`
		Created           int64           `json:"created"`
		Model             string          `json:"model"`
		SystemFingerprint string          `json:"system_fingerprint,omitempty"`
		Choices           []TextChoice    `json:"choices"`
		Usage             json.RawMessage `json:"usage,omitempty"`
	}{c.ID, ObjectTextCompletion, c.Created, c.Model, c.SystemFingerprint, choices, usage})
}

// TextChoice is one choice of a TextCompletion.
type TextChoice struct {
	Text         string
	Index        int
	Logprobs     *TextLogprobs // null unless requested
	FinishReason string        // null while empty (stream chunks)
}

// MarshalJSON writes finish_reason as null while it is empty.
func (c TextChoice) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		Text         string        `json:"text"`
		Index        int           `json:"index"`
		Logprobs     *TextLogprobs `json:"logprobs"`
		FinishReason *string       `json:"finish_reason"`
	}{c.Text, c.Index, c.Logprobs, nullIfEmpty(c.FinishReason)})
}

// TextLogprobs is the legacy logprobs object: parallel arrays, one entry per
// token. A nil TopLogprobs entry (the first echoed token) encodes as null.
type TextLogprobs struct {
	Tokens        []string
	TokenLogprobs []Logprob
	TopLogprobs   []TopLogprobMap
	TextOffset    []int
}

// MarshalJSON writes each array as [] when empty.
func (l TextLogprobs) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		Tokens        []string        `json:"tokens"`
		TokenLogprobs []Logprob       `json:"token_logprobs"`
		TopLogprobs   []TopLogprobMap `json:"top_logprobs"`
		TextOffset    []int           `json:"text_offset"`
	}{orEmpty(l.Tokens), orEmpty(l.TokenLogprobs), orEmpty(l.TopLogprobs), orEmpty(l.TextOffset)})
}

// TopLogprobMap is one legacy top_logprobs entry: an object from token text
// to logprob. Clients read it in order as OpenAI writes it, most probable
// first, which a Go map (keys sorted) would lose. Two tokens that decode to
// the same text keep the more probable one; nil encodes as null.
type TopLogprobMap []TopLogprob

// MarshalJSON writes the object most probable first.
func (m TopLogprobMap) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	sorted := slices.Clone(m)
	slices.SortStableFunc(sorted, func(a, b TopLogprob) int { return cmp.Compare(b.Logprob, a.Logprob) })
	var buf bytes.Buffer
	buf.WriteByte('{')
	seen := make(map[string]bool, len(sorted))
	for _, t := range sorted {
		if seen[t.Token] {
			continue
		}
		seen[t.Token] = true
		if len(seen) > 1 {
			buf.WriteByte(',')
		}
		k, err := marshal(t.Token)
		if err != nil {
			return nil, err
		}
		v, err := t.Logprob.MarshalJSON()
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// TextStream stamps every chunk of one streamed text completion.
type TextStream struct {
	ID                string
	Created           int64
	Model             string
	SystemFingerprint string
	IncludeUsage      bool
}

// Chunk builds a content chunk.
func (s TextStream) Chunk(choices ...TextChoice) TextCompletion {
	return TextCompletion{ID: s.ID, Created: s.Created, Model: s.Model,
		SystemFingerprint: s.SystemFingerprint, Choices: choices, Stream: true, IncludeUsage: s.IncludeUsage}
}

// UsageChunk builds the final include_usage chunk.
func (s TextStream) UsageChunk(u Usage) TextCompletion {
	c := s.Chunk()
	c.Usage = &u
	return c
}

// ModelList is the GET /v1/models response.
type ModelList struct {
	Data []Model
}

// MarshalJSON writes {"object":"list","data":[...]}.
func (l ModelList) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		Object string  `json:"object"`
		Data   []Model `json:"data"`
	}{ObjectList, orEmpty(l.Data)})
}

// Model is one entry of GET /v1/models, and the GET /v1/models/{id} body, in
// the seed API document's shape.
type Model struct {
	ID      string
	Created int64 // Unix seconds
	OwnedBy string
	Root    string
	Parent  string // null when empty
	// Kind is "chat" or "embedding", an extra member OpenAI's SDKs
	// ignore; empty (omitted) for upstream models of servers that do not
	// say.
	Kind string
}

// NewModel builds a model entry owned by "impetus" with root = id.
func NewModel(id string, created int64) Model {
	return Model{ID: id, Created: created, OwnedBy: "impetus", Root: id}
}

// UnmarshalJSON reads a model entry of another OpenAI-compatible server's
// /v1/models list; a missing root is the id.
func (m *Model) UnmarshalJSON(data []byte) error {
	var v struct {
		ID      string  `json:"id"`
		Created int64   `json:"created"`
		OwnedBy string  `json:"owned_by"`
		Root    string  `json:"root"`
		Parent  *string `json:"parent"`
		Kind    string  `json:"kind"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*m = Model{ID: v.ID, Created: v.Created, OwnedBy: v.OwnedBy, Root: v.Root, Kind: v.Kind}
	if m.Root == "" {
		m.Root = m.ID
	}
	if v.Parent != nil {
		m.Parent = *v.Parent
	}
	return nil
}

// MarshalJSON writes object "model", permission [] and parent null.
func (m Model) MarshalJSON() ([]byte, error) {
	return marshal(struct {
		ID         string   `json:"id"`
		Object     string   `json:"object"`
		Created    int64    `json:"created"`
		OwnedBy    string   `json:"owned_by"`
		Permission []string `json:"permission"`
		Root       string   `json:"root"`
		Parent     *string  `json:"parent"`
		Kind       string   `json:"kind,omitempty"`
	}{m.ID, ObjectModel, m.Created, m.OwnedBy, []string{}, m.Root, nullIfEmpty(m.Parent), m.Kind})
}
