package tokenizer

import (
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// TestFixtureChatPrompts encodes each reference fixture's rendered chat
// prompt (specials matched, no BOS added) and decodes its greedy reply, and
// compares both with what transformers produced.
func TestFixtureChatPrompts(t *testing.T) {
	for _, fx := range []struct{ archive, model string }{
		{"dev-random", "llama-float32"},
		{"dev-random", "qwen3-mlx4"},
		{"dev-trained", "llama-bfloat16"},
		{"dev-trained", "llama-mlx4"},
	} {
		t.Run(fx.archive+"/"+fx.model, func(t *testing.T) {
			dir := testutil.Fixture(t, fx.archive, fx.model)
			tk, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var ref struct {
				Chat struct {
					Rendered  string  `json:"rendered"`
					PromptIDs []int32 `json:"prompt_ids"`
					ReplyIDs  []int32 `json:"reply_ids"`
					ReplyText string  `json:"reply_text"`
				} `json:"chat"`
			}
			readJSON(t, filepath.Join(dir, "reference.json"), &ref)
			if got := tk.EncodeWithSpecials(ref.Chat.Rendered); !equalIDs(got, ref.Chat.PromptIDs) {
				t.Errorf("prompt ids:\n got  %v\n want %v", got, ref.Chat.PromptIDs)
			}
			if got := tk.Encode(ref.Chat.Rendered, true); !equalIDs(got, ref.Chat.PromptIDs) {
				t.Errorf("Encode with addSpecial must add nothing here (add_bos_token false):\n got %v", got)
			}
			if got := tk.Decode(ref.Chat.ReplyIDs, true); got != ref.Chat.ReplyText {
				t.Errorf("reply text: got %q, want %q", got, ref.Chat.ReplyText)
			}
			d := NewDecoder(tk, true)
			var streamed string
			for _, id := range ref.Chat.ReplyIDs {
				streamed += d.Add(id)
			}
			if streamed += d.Flush(); streamed != ref.Chat.ReplyText {
				t.Errorf("streamed reply: got %q, want %q", streamed, ref.Chat.ReplyText)
			}
			// User text never becomes control tokens.
			plain := tk.EncodePlain("<|im_end|>")
			for _, id := range plain {
				if tk.IsSpecial(id) {
					t.Errorf("EncodePlain produced special id %d", id)
				}
			}
			if tk.Decode(plain, false) != "<|im_end|>" {
				t.Errorf("EncodePlain round trip: %q", tk.Decode(plain, false))
			}
		})
	}
}
