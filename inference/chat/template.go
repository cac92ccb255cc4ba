// Package chat renders Hugging Face chat templates exactly as transformers
// does (Jinja2 with trim_blocks, lstrip_blocks, loop controls,
// raise_exception, strftime_now and a Python-compatible tojson) and parses
// tool calls out of model output.
package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/impetusllm/impetus/inference/chat/jinja"
)

// Template is a model's chat template, ready to render.
type Template struct {
	source  string
	tmpl    *jinja.Template
	toolUse *jinja.Template // the "tool_use" variant, when the model has one
	// partsAsList is set when the template iterates over message content
	// itself, so OpenAI content parts are passed through as a list.
	partsAsList bool

	// BOSToken and EOSToken are the defaults for Input fields left empty
	// (FromModelDir reads them from tokenizer_config.json).
	BOSToken, EOSToken string
	// Now is the clock behind strftime_now; time.Now when nil. Tests fix it.
	Now func() time.Time
}

// Exception is the error a template raises with raise_exception(msg). Its
// Error() is the message alone, fit to return to the client as a 400.
type Exception = jinja.Exception

// Parse compiles template source.
func Parse(src string) (*Template, error) {
	t, err := jinja.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	return &Template{source: src, tmpl: t, partsAsList: iteratesContent(src)}, nil
}

// Source returns the template text (the default variant).
func (t *Template) Source() string { return t.source }

// contentLoop matches templates that walk message content themselves.
var contentLoop = regexp.MustCompile(`for\s+\w+\s+in\s+(message|msg|m)(\.content|\[\s*['"]content['"]\s*\])`)

func iteratesContent(src string) bool { return contentLoop.MatchString(src) }

// Input is one render request.
type Input struct {
	Messages []Message
	// Tools are OpenAI tool definitions, kept as raw JSON so key order
	// survives into tojson. Empty means no tools (the template sees None).
	Tools               []json.RawMessage
	AddGenerationPrompt bool
	// BOSToken and EOSToken override the template's defaults when set.
	BOSToken, EOSToken string
	// Kwargs are extra template variables such as enable_thinking;
	// json.RawMessage values keep their key order.
	Kwargs map[string]any
}

// Render produces the prompt text. Errors from raise_exception can be
// recognised with errors.As(err, **Exception).
func (t *Template) Render(in Input) (string, error) {
	vars := map[string]any{
		"add_generation_prompt": in.AddGenerationPrompt,
		"tools":                 nil,
		"documents":             nil,
	}
	if bos := firstNonEmpty(in.BOSToken, t.BOSToken); bos != "" {
		vars["bos_token"] = bos
	}
	if eos := firstNonEmpty(in.EOSToken, t.EOSToken); eos != "" {
		vars["eos_token"] = eos
	}
	msgs := make([]any, 0, len(in.Messages))
	for i, m := range in.Messages {
		d, err := messageValue(m, t.partsAsList)
		if err != nil {
			return "", fmt.Errorf("message %d: %w", i, err)
		}
		msgs = append(msgs, d)
	}
	vars["messages"] = msgs
	tmpl := t.tmpl
	if len(in.Tools) > 0 {
		tools := make([]any, 0, len(in.Tools))
		for i, raw := range in.Tools {
			v, err := jinja.FromJSON(raw)
			if err != nil {
				return "", fmt.Errorf("tool %d: %w", i, err)
			}
			tools = append(tools, v)
		}
		vars["tools"] = tools
		if t.toolUse != nil {
			tmpl = t.toolUse
		}
	}
	for k, v := range in.Kwargs {
		c, err := jinja.Convert(v)
		if err != nil {
			return "", fmt.Errorf("template kwarg %s: %w", k, err)
		}
		vars[k] = c
	}
	out, err := tmpl.Render(vars, jinja.Options{Now: t.Now})
	if err != nil {
		var ex *Exception
		if errors.As(err, &ex) {
			return "", ex
		}
		return "", fmt.Errorf("chat template: %w", err)
	}
	return out, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// FromModelDir loads the chat template of a Hugging Face / mlx-community
// model folder: tokenizer_config.json "chat_template" (a string, or a list
// of {name, template} from which "default" and "tool_use" are taken), else
// chat_template.jinja; BOS/EOS tokens come from tokenizer_config.json.
func FromModelDir(dir string) (*Template, error) {
	var cfg struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOSToken     json.RawMessage `json:"bos_token"`
		EOSToken     json.RawMessage `json:"eos_token"`
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(cfgPath)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read %s: %w", cfgPath, err)
	}
	if err == nil {
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("parse %s: %w", cfgPath, err)
		}
	}
	defaultSrc, toolSrc, err := templateSources(cfg.ChatTemplate)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if defaultSrc == "" {
		jinjaPath := filepath.Join(dir, "chat_template.jinja")
		b, err := os.ReadFile(jinjaPath)
		if err != nil {
			if os.IsNotExist(err) {
				return nil, fmt.Errorf("no chat template in %s (tokenizer_config.json or chat_template.jinja)", dir)
			}
			return nil, fmt.Errorf("read %s: %w", jinjaPath, err)
		}
		defaultSrc = string(b)
	}
	t, err := Parse(defaultSrc)
	if err != nil {
		return nil, err
	}
	if toolSrc != "" {
		tu, err := jinja.Parse(toolSrc)
		if err != nil {
			return nil, fmt.Errorf("tool_use chat template: %w", err)
		}
		t.toolUse = tu
		t.partsAsList = t.partsAsList || iteratesContent(toolSrc)
	}
	if t.BOSToken, err = tokenText(cfg.BOSToken); err != nil {
		return nil, fmt.Errorf("%s bos_token: %w", cfgPath, err)
	}
	if t.EOSToken, err = tokenText(cfg.EOSToken); err != nil {
		return nil, fmt.Errorf("%s eos_token: %w", cfgPath, err)
	}
	return t, nil
}

// templateSources reads chat_template as a string or a named list.
func templateSources(raw json.RawMessage) (def, toolUse string, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", "", nil
	}
	if raw[0] == '"' {
		err = json.Unmarshal(raw, &def)
		return def, "", err
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", "", fmt.Errorf("chat_template must be a string or a list of {name, template}: %w", err)
	}
	for _, n := range named {
		switch n.Name {
		case "default":
			def = n.Template
		case "tool_use":
			toolUse = n.Template
		}
	}
	if def == "" && len(named) > 0 {
		return "", "", errors.New(`chat_template list has no "default" entry`)
	}
	return def, toolUse, nil
}

// tokenText reads a special token given as a string or {"content": ...}.
func tokenText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("expected a string or {content}: %w", err)
	}
	return obj.Content, nil
}
