package inference

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/sample"
)

// A special token listed in KeepTokens keeps its text in the output; others
// are dropped as usual.
func TestKeepTokens(t *testing.T) {
	e, err := New(Options{ModelsDir: filepath.Join("testdata", "reference")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	lm, err := e.Load(context.Background(), "llama-float32")
	if err != nil {
		t.Fatal(err)
	}
	start, ok := lm.Tokenizer.TokenID("<|im_start|>")
	if !ok || !lm.Tokenizer.IsSpecial(start) {
		t.Fatal("fixture tokenizer lacks the <|im_start|> special token")
	}
	run := func(keep []int32) string {
		p := sample.DefaultParams()
		p.Temperature = 0
		p.LogitBias = map[int32]float32{start: 100}
		ch, err := lm.Generate(context.Background(), GenerateRequest{Prompt: lm.Tokenizer.EncodePlain("Hello"), MaxTokens: 2, Sampling: p, KeepTokens: keep})
		if err != nil {
			t.Fatal(err)
		}
		text := ""
		for ev := range ch {
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			text += ev.Text
		}
		return text
	}
	if got := run(nil); got != "" {
		t.Fatalf("special tokens leaked into the text: %q", got)
	}
	if got := run([]int32{start}); got != "<|im_start|><|im_start|>" {
		t.Fatalf("kept token text: %q", got)
	}
}
