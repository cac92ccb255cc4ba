package chat

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// TestFixtureChatML renders reference.json chat.messages with each fixture
// model's own template and compares with transformers' chat.rendered.
func TestFixtureChatML(t *testing.T) {
	for _, fx := range []struct{ archive, model string }{
		{"dev-trained", "llama-bfloat16"},
		{"dev-random", "llama-float32"},
	} {
		t.Run(fx.archive, func(t *testing.T) {
			root := filepath.Dir(testutil.Fixture(t, fx.archive, fx.model))
			entries, err := os.ReadDir(root)
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, e := range entries {
				dir := filepath.Join(root, e.Name())
				if !e.IsDir() {
					continue
				}
				if _, err := os.Stat(filepath.Join(dir, "reference.json")); err != nil {
					continue
				}
				var ref struct {
					Chat struct {
						Messages []Message `json:"messages"`
						Rendered string    `json:"rendered"`
					} `json:"chat"`
				}
				readJSON(t, filepath.Join(dir, "reference.json"), &ref)
				tmpl, err := FromModelDir(dir)
				if err != nil {
					t.Fatalf("%s: %v", e.Name(), err)
				}
				got, err := tmpl.Render(Input{Messages: ref.Chat.Messages, AddGenerationPrompt: true})
				if err != nil {
					t.Fatalf("%s: %v", e.Name(), err)
				}
				if got != ref.Chat.Rendered {
					t.Errorf("%s: got %q, want %q", e.Name(), got, ref.Chat.Rendered)
				}
				checked++
			}
			if checked == 0 {
				t.Fatalf("no fixture models under %s", root)
			}
			t.Logf("%s: %d models matched chat.rendered", fx.archive, checked)
		})
	}
}
