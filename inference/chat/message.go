package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/impetusllm/impetus/inference/chat/jinja"
)

// Message is one OpenAI chat message as the template sees it.
type Message struct {
	Role       string     `json:"role"`
	Content    Content    `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Name       string     `json:"name,omitempty"`
}

// Content is a message's content: null, a string, or OpenAI content parts.
type Content struct {
	Text  *string       // set for string content
	Parts []ContentPart // set for an array of parts
}

// ContentPart is one element of array content such as {"type":"text","text":"..."}.
type ContentPart struct {
	Type string
	Text string
	Raw  json.RawMessage // the part as sent, passed through to templates that read parts
}

// TextContent returns string content.
func TextContent(s string) Content { return Content{Text: &s} }

// UnmarshalJSON accepts null, a string, or an array of parts.
func (c *Content) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	*c = Content{}
	switch {
	case bytes.Equal(data, []byte("null")):
		return nil
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("message content: %w", err)
		}
		c.Text = &s
		return nil
	case len(data) > 0 && data[0] == '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(data, &raws); err != nil {
			return fmt.Errorf("message content: %w", err)
		}
		c.Parts = make([]ContentPart, 0, len(raws))
		for i, raw := range raws {
			var p struct {
				Type string  `json:"type"`
				Text *string `json:"text"`
			}
			if err := json.Unmarshal(raw, &p); err != nil {
				return fmt.Errorf("message content part %d: %w", i, err)
			}
			if p.Type == "" {
				return fmt.Errorf("message content part %d: missing type", i)
			}
			part := ContentPart{Type: p.Type, Raw: append(json.RawMessage(nil), raw...)}
			if p.Text != nil {
				part.Text = *p.Text
			}
			if p.Type == "text" && p.Text == nil {
				return fmt.Errorf("message content part %d: text part without text", i)
			}
			c.Parts = append(c.Parts, part)
		}
		return nil
	}
	return fmt.Errorf("message content must be a string, an array of parts or null")
}

// MarshalJSON writes the content back in the form it was given.
func (c Content) MarshalJSON() ([]byte, error) {
	switch {
	case c.Text != nil:
		return json.Marshal(*c.Text)
	case c.Parts != nil:
		var b bytes.Buffer
		b.WriteByte('[')
		for i, p := range c.Parts {
			if i > 0 {
				b.WriteByte(',')
			}
			raw := p.Raw
			if len(raw) == 0 {
				var err error
				if raw, err = json.Marshal(map[string]string{"type": p.Type, "text": p.Text}); err != nil {
					return nil, err
				}
			}
			b.Write(raw)
		}
		b.WriteByte(']')
		return b.Bytes(), nil
	}
	return []byte("null"), nil
}

// ToolCall is an assistant's call of a function.
type ToolCall struct {
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and its arguments: OpenAI sends a JSON
// string holding an object; a JSON object is accepted too.
type FunctionCall struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// argumentsValue gives the template what transformers users pass: the
// arguments as a mapping (parsed from the OpenAI string, key order kept).
// Text that is not JSON is passed on as a string, which templates such as
// Qwen3's print verbatim; empty arguments become an empty mapping.
func argumentsValue(raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return jinja.NewDict(), nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("tool call arguments: %w", err)
		}
		if strings.TrimSpace(s) == "" {
			return jinja.NewDict(), nil
		}
		if v, err := jinja.FromJSON([]byte(s)); err == nil {
			return v, nil
		}
		return s, nil
	}
	v, err := jinja.FromJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("tool call arguments: %w", err)
	}
	return v, nil
}

// contentValue turns content into what the template reads: a string, None,
// or (for templates that iterate over content) the list of parts.
func contentValue(c Content, partsAsList bool) (any, error) {
	switch {
	case c.Text != nil:
		return *c.Text, nil
	case c.Parts == nil:
		return nil, nil
	case partsAsList:
		list := make([]any, 0, len(c.Parts))
		for _, p := range c.Parts {
			if len(p.Raw) == 0 {
				d := jinja.NewDict()
				d.Set("type", p.Type)
				d.Set("text", p.Text)
				list = append(list, d)
				continue
			}
			v, err := jinja.FromJSON(p.Raw)
			if err != nil {
				return nil, fmt.Errorf("content part: %w", err)
			}
			list = append(list, v)
		}
		return list, nil
	}
	texts := make([]string, 0, len(c.Parts))
	for _, p := range c.Parts {
		if p.Type != "text" {
			return nil, fmt.Errorf("content part type %q is not supported by this model's chat template", p.Type)
		}
		texts = append(texts, p.Text)
	}
	return strings.Join(texts, "\n"), nil
}

// messageValue builds the dict a template sees for one message, with keys
// in OpenAI order; optional keys are present only when set, since templates
// test "'tool_calls' in message" or "is defined".
func messageValue(m Message, partsAsList bool) (*jinja.Dict, error) {
	d := jinja.NewDict()
	d.Set("role", m.Role)
	content, err := contentValue(m.Content, partsAsList)
	if err != nil {
		return nil, err
	}
	d.Set("content", content)
	if len(m.ToolCalls) > 0 {
		calls := make([]any, 0, len(m.ToolCalls))
		for i, tc := range m.ToolCalls {
			c := jinja.NewDict()
			if tc.ID != "" {
				c.Set("id", tc.ID)
			}
			if tc.Type != "" {
				c.Set("type", tc.Type)
			}
			fn := jinja.NewDict()
			fn.Set("name", tc.Function.Name)
			args, err := argumentsValue(tc.Function.Arguments)
			if err != nil {
				return nil, fmt.Errorf("tool call %d: %w", i, err)
			}
			fn.Set("arguments", args)
			c.Set("function", fn)
			calls = append(calls, c)
		}
		d.Set("tool_calls", calls)
	}
	if m.ToolCallID != "" {
		d.Set("tool_call_id", m.ToolCallID)
	}
	if m.Name != "" {
		d.Set("name", m.Name)
	}
	return d, nil
}
