package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/model/modeltest"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/testutil"
)

// addGPT2Vocab copies a byte-level BPE tokenizer.json (the fixtures' kind)
// and the chat template of tokenizer_config.json into GGUF tokenizer keys.
func addGPT2Vocab(t *testing.T, w *gguf.Writer, dir string) {
	t.Helper()
	var tj struct {
		Model struct {
			Type   string            `json:"type"`
			Vocab  map[string]int    `json:"vocab"`
			Merges []json.RawMessage `json:"merges"`
		} `json:"model"`
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens"`
	}
	var tc struct {
		ChatTemplate string `json:"chat_template"`
		BOS          string `json:"bos_token"`
		EOS          string `json:"eos_token"`
		AddBOS       bool   `json:"add_bos_token"`
	}
	for name, dst := range map[string]any{"tokenizer.json": &tj, "tokenizer_config.json": &tc} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	if tj.Model.Type != "BPE" {
		t.Fatalf("tokenizer model %q, want BPE", tj.Model.Type)
	}
	n := len(tj.Model.Vocab)
	for _, a := range tj.AddedTokens {
		n = max(n, a.ID+1)
	}
	tokens, types := make([]string, n), make([]int32, n)
	for s, id := range tj.Model.Vocab {
		tokens[id], types[id] = s, 1
	}
	ids := map[string]uint32{}
	for _, a := range tj.AddedTokens {
		tokens[a.ID], types[a.ID] = a.Content, 4
		if a.Special {
			types[a.ID] = 3
		}
		ids[a.Content] = uint32(a.ID)
	}
	merges := make([]string, len(tj.Model.Merges))
	for i, m := range tj.Model.Merges {
		var pair []string
		if json.Unmarshal(m, &pair) == nil && len(pair) == 2 {
			merges[i] = pair[0] + " " + pair[1]
		} else if err := json.Unmarshal(m, &merges[i]); err != nil {
			t.Fatalf("merge %d: %s", i, m)
		}
	}
	for k, v := range map[string]any{
		"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2", "tokenizer.ggml.tokens": tokens,
		"tokenizer.ggml.token_type": types, "tokenizer.ggml.merges": merges,
		"tokenizer.ggml.bos_token_id": ids[tc.BOS], "tokenizer.ggml.eos_token_id": ids[tc.EOS],
		"tokenizer.ggml.add_bos_token": tc.AddBOS, "tokenizer.chat_template": tc.ChatTemplate,
	} {
		if err := w.SetKV(k, v); err != nil {
			t.Fatal(err)
		}
	}
}

// TestChatOnGGUF converts the trained llama fixture to GGUF (weights,
// vocabulary and chat template in one file) and chats with it through the
// real server: the F32 file must give transformers' greedy reply, the Q8_0
// file a well-formed one.
func TestChatOnGGUF(t *testing.T) {
	src := testutil.Fixture(t, "dev-trained", "llama-bfloat16")
	models := t.TempDir()
	for _, typ := range []quant.GGMLType{quant.GGMLF32, quant.GGMLQ8_0} {
		w, err := modeltest.ConvertToGGUF(src, typ)
		if err != nil {
			t.Fatal(err)
		}
		addGPT2Vocab(t, w, src)
		if err := w.WriteFile(filepath.Join(models, "llama-"+typ.String()+".gguf")); err != nil {
			t.Fatal(err)
		}
	}
	var ref reference
	raw, err := os.ReadFile(filepath.Join(src, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	msgs, _ := json.Marshal(ref.Chat.Messages)

	base, _ := serveModels(t, models, nil)

	for _, typ := range []string{"F32", "Q8_0"} {
		t.Run(typ, func(t *testing.T) {
			id := "llama-" + typ
			body := fmt.Sprintf(`{"model":%q,"messages":%s,"temperature":0,"max_tokens":%d}`, id, msgs, len(ref.Chat.ReplyIDs))
			code, out := post(t, base+"/v1/chat/completions", "secret", body)
			var resp struct {
				Model   string `json:"model"`
				Choices []struct {
					Message struct {
						Role    string `json:"role"`
						Content string `json:"content"`
					} `json:"message"`
					FinishReason string `json:"finish_reason"`
				} `json:"choices"`
				Usage struct {
					PromptTokens, CompletionTokens int
				} `json:"usage"`
			}
			if code != 200 || json.Unmarshal(out, &resp) != nil || len(resp.Choices) != 1 {
				t.Fatalf("chat: %d %s", code, out)
			}
			got := resp.Choices[0].Message.Content
			t.Logf("%s: %q (%s)", id, got, resp.Choices[0].FinishReason)
			if typ == "F32" && got != ref.Chat.ReplyText {
				t.Errorf("greedy reply differs from transformers:\n got %q\nwant %q", got, ref.Chat.ReplyText)
			}
			if got == "" || resp.Choices[0].Message.Role != "assistant" {
				t.Errorf("reply %+v", resp.Choices[0])
			}
			streamBody := body[:len(body)-1] + `,"stream":true}`
			text, finish, _ := streamText(t, base+"/v1/chat/completions", "secret", streamBody)
			if text != got || finish != resp.Choices[0].FinishReason {
				t.Errorf("stream (%q, %s) differs from non-stream (%q, %s)", text, finish, got, resp.Choices[0].FinishReason)
			}
		})
	}
}
