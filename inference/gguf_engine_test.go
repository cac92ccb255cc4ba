package inference

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/chat"
	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/sample"
	"github.com/impetusllm/impetus/inference/testutil"
)

// llama2Template is a Llama 2 style chat template for the test model, which
// ships none.
const llama2Template = `{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}`

// ggufWithTemplate copies the shared tiny llama GGUF into dir, adding a
// tokenizer.chat_template.
func ggufWithTemplate(t *testing.T, dst string) {
	t.Helper()
	src := testutil.SharedPath(t, "assets", "gguf-model", "llama-2-tiny-random.gguf")
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KVs() {
		if err := w.SetKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.SetKV("tokenizer.chat_template", llama2Template); err != nil {
		t.Fatal(err)
	}
	for _, ti := range f.Tensors() {
		data, _, err := f.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(dst); err != nil {
		t.Fatal(err)
	}
}

// TestEngineRunsGGUF loads a GGUF model through Engine.Load (weights,
// embedded vocabulary and chat template from one file) and generates from a
// rendered chat prompt.
func TestEngineRunsGGUF(t *testing.T) {
	dir := t.TempDir()
	ggufWithTemplate(t, filepath.Join(dir, "gguf", "tiny-llama.gguf"))
	e, err := New(Options{ModelsDir: dir, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := e.Load(ctx, "gguf/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	if m.Info.Format != FormatGGUF || m.Meta.Architecture != "llama" || m.Meta.Vocab != 32000 || m.Meta.Quantization != "GGUF F16" {
		t.Errorf("loaded %+v / %+v", m.Info, m.Meta)
	}
	if m.Template == nil {
		t.Fatal("no chat template")
	}
	if got := m.EOS(); len(got) == 0 || got[0] != 2 {
		t.Errorf("EOS ids %v, want 2 first", got)
	}
	hi := "Hello there"
	prompt, err := m.Template.Render(chat.Input{Messages: []chat.Message{{Role: "user", Content: chat.Content{Text: &hi}}}, AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	if prompt != "<s>[INST] Hello there [/INST]" {
		t.Errorf("rendered %q", prompt)
	}
	ids := m.Tokenizer.EncodeWithSpecials(prompt)
	if len(ids) < 5 || ids[0] != 1 || (len(ids) > 1 && ids[1] == 1) {
		t.Errorf("prompt ids %v: want one BOS first", ids)
	}
	params := sample.DefaultParams()
	params.Temperature = 0
	run := func() []int32 {
		events, err := m.Generate(ctx, GenerateRequest{Prompt: ids, MaxTokens: 6, Sampling: params})
		if err != nil {
			t.Fatal(err)
		}
		var toks []int32
		var text strings.Builder
		for ev := range events {
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			if ev.Finish != "" {
				if ev.Finish != "length" && ev.Finish != "stop" {
					t.Errorf("finish %q", ev.Finish)
				}
				break
			}
			toks = append(toks, ev.Token)
			text.WriteString(ev.Text)
		}
		if len(toks) == 0 {
			t.Fatal("no tokens generated")
		}
		t.Logf("generated %v %q", toks, text.String())
		return toks
	}
	a, b := run(), run()
	if len(a) != len(b) {
		t.Fatalf("greedy runs differ: %v, %v", a, b)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("greedy runs differ: %v, %v", a, b)
		}
	}
	if err := e.Unload("gguf/tiny-llama"); err != nil {
		t.Fatal(err)
	}
}
