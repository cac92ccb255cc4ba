package chat

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const chatML = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFromModelDir(t *testing.T) {
	user := []Message{{Role: "user", Content: TextContent("hi")}}
	tool := json.RawMessage(`{"type": "function", "function": {"name": "f"}}`)

	t.Run("named list with tool_use", func(t *testing.T) {
		dir := t.TempDir()
		cfg, _ := json.Marshal(map[string]any{
			"chat_template": []map[string]string{
				{"name": "default", "template": "D{{ bos_token }}{{ eos_token }}"},
				{"name": "tool_use", "template": "T{{ tools | length }}"},
			},
			"bos_token": map[string]any{"content": "<s>", "lstrip": false},
			"eos_token": "</s>",
		})
		writeFile(t, dir, "tokenizer_config.json", string(cfg))
		tmpl, err := FromModelDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tmpl.Render(Input{Messages: user}); err != nil || got != "D<s></s>" {
			t.Errorf("default: %q %v", got, err)
		}
		if got, err := tmpl.Render(Input{Messages: user, Tools: []json.RawMessage{tool}}); err != nil || got != "T1" {
			t.Errorf("tool_use: %q %v", got, err)
		}
		if got, _ := tmpl.Render(Input{Messages: user, BOSToken: "B"}); got != "DB</s>" {
			t.Errorf("BOS override: %q", got)
		}
	})
	t.Run("chat_template.jinja fallback", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "tokenizer_config.json", `{"eos_token": "<|im_end|>", "bos_token": null}`)
		writeFile(t, dir, "chat_template.jinja", chatML)
		tmpl, err := FromModelDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tmpl.Render(Input{Messages: user, AddGenerationPrompt: true})
		if want := "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"; err != nil || got != want {
			t.Errorf("got %q %v", got, err)
		}
		if tmpl.EOSToken != "<|im_end|>" || tmpl.BOSToken != "" {
			t.Errorf("tokens %q %q", tmpl.BOSToken, tmpl.EOSToken)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for name, files := range map[string]map[string]string{
			"no template":    {"tokenizer_config.json": `{}`},
			"bad json":       {"tokenizer_config.json": `{`},
			"bad list":       {"tokenizer_config.json": `{"chat_template": [{"name": "other", "template": "x"}]}`},
			"bad type":       {"tokenizer_config.json": `{"chat_template": 3}`},
			"bad syntax":     {"tokenizer_config.json": `{"chat_template": "{% if %}"}`},
			"bad bos":        {"tokenizer_config.json": `{"chat_template": "x", "bos_token": [1]}`},
			"empty dir":      {},
			"bad jinja file": {"chat_template.jinja": "{{"},
		} {
			dir := t.TempDir()
			for n, c := range files {
				writeFile(t, dir, n, c)
			}
			if _, err := FromModelDir(dir); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
	})
}

func TestContentParts(t *testing.T) {
	var msgs []Message
	err := json.Unmarshal([]byte(`[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]`), &msgs)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := Parse(chatML)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render(Input{Messages: msgs})
	if want := "<|im_start|>user\na\nb<|im_end|>\n"; err != nil || got != want {
		t.Errorf("joined parts: %q %v", got, err)
	}
	var img []Message
	_ = json.Unmarshal([]byte(`[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]`), &img)
	if _, err := tmpl.Render(Input{Messages: img}); err == nil || !strings.Contains(err.Error(), "image_url") {
		t.Errorf("image part on a text-only template: %v", err)
	}
	out, err := json.Marshal(msgs[0].Content)
	if err != nil || string(out) != `[{"type":"text","text":"a"},{"type":"text","text":"b"}]` {
		t.Errorf("marshal parts: %s %v", out, err)
	}
	for _, bad := range []string{`3`, `{"a": 1}`, `[{"text": "no type"}]`, `[{"type": "text"}]`, `[1]`, `"unterminated`} {
		var c Content
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("content %s accepted", bad)
		}
	}
}

func TestToolCallArguments(t *testing.T) {
	tmpl, err := Parse("{% for m in messages %}{% for c in m.tool_calls %}{{ c.function.arguments | tojson }}|{{ c.function.arguments is string }};{% endfor %}{% endfor %}")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	err = json.Unmarshal([]byte(`[{"role": "assistant", "content": null, "tool_calls": [
		{"id": "1", "type": "function", "function": {"name": "a", "arguments": "{\"z\": 1, \"a\": [true]}"}},
		{"function": {"name": "b", "arguments": {"y": "é", "b": null}}},
		{"function": {"name": "c", "arguments": "not json"}},
		{"function": {"name": "d", "arguments": ""}},
		{"function": {"name": "e"}}]}]`), &msgs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render(Input{Messages: msgs})
	want := `{"z": 1, "a": [true]}|False;{"y": "é", "b": null}|False;"not json"|True;{}|False;{}|False;`
	if err != nil || got != want {
		t.Errorf("got %q %v\nwant %q", got, err, want)
	}
	msgs[0].ToolCalls[0].Function.Arguments = json.RawMessage(`{bad`)
	if _, err := tmpl.Render(Input{Messages: msgs}); err == nil {
		t.Error("bad arguments JSON accepted")
	}
}

func TestRenderException(t *testing.T) {
	tmpl, err := Parse("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tmpl.Render(Input{Messages: []Message{{Role: "system", Content: TextContent("x")}}})
	var ex *Exception
	if !errors.As(err, &ex) || err.Error() != "System role not supported" {
		t.Fatalf("got %v", err)
	}
}

func TestBadTool(t *testing.T) {
	tmpl, _ := Parse(chatML)
	if _, err := tmpl.Render(Input{Tools: []json.RawMessage{json.RawMessage(`{`)}}); err == nil {
		t.Error("bad tool JSON accepted")
	}
}

// FuzzRender feeds arbitrary request JSON through message decoding and a
// ChatML and a tool-using template: errors are fine, panics are not.
func FuzzRender(f *testing.F) {
	f.Add([]byte(`[{"role": "user", "content": "hi"}]`), []byte(`{"type": "function"}`))
	f.Add([]byte(`[{"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "x", "arguments": "{\"a\": 1}"}}]}]`), []byte(`[]`))
	f.Add([]byte(`[{"role": "user", "content": [{"type": "text", "text": "a"}]}]`), []byte(`{}`))
	plain, _ := Parse(chatML)
	tools, _ := Parse(`{% for t in tools %}{{ t | tojson(indent=2) }}{% endfor %}{% for m in messages %}{% if m.tool_calls %}{% for c in m.tool_calls %}{{ c.function.arguments | tojson }}{% endfor %}{% endif %}{{ m.content is string }}{% endfor %}`)
	f.Fuzz(func(t *testing.T, msgJSON, toolJSON []byte) {
		var msgs []Message
		if json.Unmarshal(msgJSON, &msgs) != nil {
			return
		}
		in := Input{Messages: msgs, Tools: []json.RawMessage{toolJSON}, AddGenerationPrompt: true}
		_, _ = plain.Render(in)
		_, _ = tools.Render(in)
	})
}
