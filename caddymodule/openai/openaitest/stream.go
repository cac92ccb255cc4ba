package openaitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/impetusllm/impetus/caddymodule/openai"
)

// wireChunk is a chat or text completion chunk as a client decodes it, with
// raw members where null and absence must be told apart.
type wireChunk struct {
	ID      *string                       `json:"id"`
	Object  *string                       `json:"object"`
	Created *int64                        `json:"created"`
	Model   *string                       `json:"model"`
	Choices *[]map[string]json.RawMessage `json:"choices"`
	Error   json.RawMessage               `json:"error"`
}

type wireDelta struct {
	Role      *string `json:"role"`
	Content   *string `json:"content"`
	ToolCalls []struct {
		Index    *int    `json:"index"`
		ID       *string `json:"id"`
		Type     *string `json:"type"`
		Function *struct {
			Name      *string `json:"name"`
			Arguments *string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

var finishReasons = []string{openai.FinishStop, openai.FinishLength, openai.FinishToolCalls, openai.FinishContentFilter}

// StreamSummary is what CheckChatStream and CheckTextStream reassemble.
type StreamSummary struct {
	Text         map[int]string // per choice index
	FinishReason map[int]string
	ToolCalls    map[int][]openai.ToolCall // chat only, per choice index
	Usage        *openai.Usage
}

// CheckChatStream checks the events of a streamed chat completion (from
// ParseSSE) against OpenAI's streaming contract: every chunk is a
// "chat.completion.chunk" with the same id, created and model; each choice
// opens with role "assistant", keeps finish_reason null until its last chunk
// and gets exactly one finish_reason; tool-call fragments open with id, type
// and name and then carry only arguments; with includeUsage every chunk has
// "usage": null except a last one with no choices and consistent counts,
// and without it no chunk has a usage key. An error event is reported as an
// error. It returns the reassembled text, tool calls and usage.
func CheckChatStream(events []json.RawMessage, includeUsage bool) (*StreamSummary, error) {
	return checkStream(events, includeUsage, openai.ObjectChatCompletionChunk, "chatcmpl-")
}

// CheckTextStream is CheckChatStream for /v1/completions streams (object
// "text_completion", choices carry text instead of a delta).
func CheckTextStream(events []json.RawMessage, includeUsage bool) (*StreamSummary, error) {
	return checkStream(events, includeUsage, openai.ObjectTextCompletion, "cmpl-")
}

func checkStream(events []json.RawMessage, includeUsage bool, object, idPrefix string) (*StreamSummary, error) {
	sum := &StreamSummary{Text: map[int]string{}, FinishReason: map[int]string{}, ToolCalls: map[int][]openai.ToolCall{}}
	if len(events) == 0 {
		return sum, fmt.Errorf("stream has no events")
	}
	var id, model string
	var created int64
	seen := map[int]bool{}
	for i, ev := range events {
		at := fmt.Sprintf("event %d", i)
		var c wireChunk
		if err := json.Unmarshal(ev, &c); err != nil {
			return sum, fmt.Errorf("%s: %w", at, err)
		}
		if c.Error != nil {
			return sum, fmt.Errorf("%s: error event %s", at, c.Error)
		}
		if c.ID == nil || c.Object == nil || c.Created == nil || c.Model == nil || c.Choices == nil {
			return sum, fmt.Errorf("%s: missing id, object, created, model or choices", at)
		}
		if *c.Object != object {
			return sum, fmt.Errorf("%s: object %q, want %q", at, *c.Object, object)
		}
		if i == 0 {
			id, created, model = *c.ID, *c.Created, *c.Model
			if !strings.HasPrefix(id, idPrefix) {
				return sum, fmt.Errorf("%s: id %q does not start with %q", at, id, idPrefix)
			}
		} else if *c.ID != id || *c.Created != created || *c.Model != model {
			return sum, fmt.Errorf("%s: id, created or model changed mid-stream", at)
		}
		usage, hasUsage, err := usageOf(ev)
		if err != nil {
			return sum, fmt.Errorf("%s: %w", at, err)
		}
		last := i == len(events)-1
		switch {
		case !includeUsage && hasUsage:
			return sum, fmt.Errorf("%s: usage key present without stream_options.include_usage", at)
		case includeUsage && !hasUsage:
			return sum, fmt.Errorf("%s: usage key missing (must be null or, in the last chunk, filled)", at)
		case includeUsage && usage != nil:
			if !last {
				return sum, fmt.Errorf("%s: usage filled before the last chunk", at)
			}
			if len(*c.Choices) != 0 {
				return sum, fmt.Errorf("%s: the usage chunk must have no choices", at)
			}
			if usage.TotalTokens != usage.PromptTokens+usage.CompletionTokens {
				return sum, fmt.Errorf("%s: total_tokens %d != %d + %d", at, usage.TotalTokens, usage.PromptTokens, usage.CompletionTokens)
			}
			sum.Usage = usage
		case includeUsage && last:
			return sum, fmt.Errorf("%s: stream ends without the usage chunk", at)
		}
		for _, ch := range *c.Choices {
			if err := checkChoice(at, ch, object, seen, sum); err != nil {
				return sum, err
			}
		}
	}
	for idx := range seen {
		if _, ok := sum.FinishReason[idx]; !ok {
			return sum, fmt.Errorf("choice %d never got a finish_reason", idx)
		}
	}
	return sum, nil
}

func usageOf(ev json.RawMessage) (*openai.Usage, bool, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(ev, &m); err != nil {
		return nil, false, err
	}
	raw, ok := m["usage"]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil, ok, nil
	}
	var u openai.Usage
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, true, fmt.Errorf("usage: %w", err)
	}
	return &u, true, nil
}

func checkChoice(at string, ch map[string]json.RawMessage, object string, seen map[int]bool, sum *StreamSummary) error {
	var idx int
	if err := json.Unmarshal(ch["index"], &idx); err != nil {
		return fmt.Errorf("%s: choice index: %v", at, ch["index"])
	}
	at = fmt.Sprintf("%s choice %d", at, idx)
	fr, ok := ch["finish_reason"]
	if !ok {
		return fmt.Errorf("%s: finish_reason key missing (must be null until the last chunk)", at)
	}
	if _, ok := ch["logprobs"]; !ok {
		return fmt.Errorf("%s: logprobs key missing (null unless requested)", at)
	}
	if _, done := sum.FinishReason[idx]; done {
		return fmt.Errorf("%s: chunk after the choice's finish_reason", at)
	}
	first := !seen[idx]
	seen[idx] = true
	if object == openai.ObjectTextCompletion {
		var text string
		if err := json.Unmarshal(ch["text"], &text); err != nil {
			return fmt.Errorf("%s: text: %v", at, err)
		}
		sum.Text[idx] += text
	} else if err := checkDelta(at, ch["delta"], first, idx, sum); err != nil {
		return err
	}
	if !bytes.Equal(fr, []byte("null")) {
		var reason string
		if err := json.Unmarshal(fr, &reason); err != nil || !slices.Contains(finishReasons, reason) {
			return fmt.Errorf("%s: finish_reason %s", at, fr)
		}
		sum.FinishReason[idx] = reason
	}
	return nil
}

func checkDelta(at string, raw json.RawMessage, first bool, idx int, sum *StreamSummary) error {
	if raw == nil {
		return fmt.Errorf("%s: delta missing", at)
	}
	var d wireDelta
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("%s: delta: %v", at, err)
	}
	if first && (d.Role == nil || *d.Role != openai.RoleAssistant) {
		return fmt.Errorf("%s: the first delta of a choice must carry role \"assistant\"", at)
	}
	if !first && d.Role != nil {
		return fmt.Errorf("%s: role repeated after the first delta", at)
	}
	if d.Content != nil {
		sum.Text[idx] += *d.Content
	}
	calls := sum.ToolCalls[idx]
	for _, tc := range d.ToolCalls {
		if tc.Index == nil || tc.Function == nil || tc.Function.Arguments == nil {
			return fmt.Errorf("%s: tool call fragment needs index and function.arguments", at)
		}
		switch {
		case *tc.Index == len(calls): // a new call opens
			if tc.ID == nil || *tc.ID == "" || tc.Type == nil || *tc.Type != "function" || tc.Function.Name == nil || *tc.Function.Name == "" {
				return fmt.Errorf("%s: tool call %d opens without id, type \"function\" and name", at, *tc.Index)
			}
			calls = append(calls, openai.ToolCall{ID: *tc.ID, Type: *tc.Type, Function: openai.FunctionCall{Name: *tc.Function.Name}})
		case *tc.Index < len(calls):
			if tc.ID != nil || tc.Type != nil || tc.Function.Name != nil {
				return fmt.Errorf("%s: tool call %d repeats id, type or name", at, *tc.Index)
			}
		default:
			return fmt.Errorf("%s: tool call index %d skips ahead of %d", at, *tc.Index, len(calls))
		}
		calls[*tc.Index].Function.Arguments += *tc.Function.Arguments
	}
	if len(calls) > 0 {
		sum.ToolCalls[idx] = calls
	}
	return nil
}
