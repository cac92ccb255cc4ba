package openai_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/caddymodule/openai"
)

const sdkModel = "mlx-community/Qwen3-0.6B-4bit"

// sdkHandler is a fake /v1 server built only from this package's exported
// API, with canned output, for the SDK check below.
func sdkHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		_ = openai.WriteJSON(w, 200, openai.ModelList{Data: []openai.Model{openai.NewModel(sdkModel, 1699553600)}})
	})
	mux.HandleFunc("GET /v1/models/{id...}", func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); id != sdkModel {
			openai.WriteError(w, openai.ModelNotFound(id))
			return
		}
		_ = openai.WriteJSON(w, 200, openai.NewModel(sdkModel, 1699553600))
	})
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		req, e := openai.DecodeChatRequest(r.Body, openai.Limits{})
		if e != nil {
			openai.WriteError(w, e)
			return
		}
		if req.Model != sdkModel {
			openai.WriteError(w, openai.ModelNotFound(req.Model))
			return
		}
		tool := ""
		if len(req.Tools) > 0 {
			tool = req.Tools[0].Function.Name
		}
		lp := func(tok string) *openai.ChoiceLogprobs {
			if !req.Logprobs {
				return nil
			}
			return &openai.ChoiceLogprobs{Content: []openai.TokenLogprob{{Token: tok, Logprob: -0.5, Bytes: openai.TokenBytes(tok),
				TopLogprobs: []openai.TopLogprob{{Token: tok, Logprob: -0.5, Bytes: openai.TokenBytes(tok)}}}}}
		}
		if !req.Stream {
			msg, fr := openai.ResponseMessage{Content: "Hello there"}, openai.FinishStop
			if tool != "" {
				msg = openai.ResponseMessage{ToolCalls: []openai.ToolCall{{ID: "call_abc", Type: "function",
					Function: openai.FunctionCall{Name: tool, Arguments: `{"city":"Paris"}`}}}}
				fr = openai.FinishToolCalls
			}
			var choices []openai.ChatChoice
			for i := range req.Choices() {
				choices = append(choices, openai.ChatChoice{Index: i, Message: msg, FinishReason: fr, Logprobs: lp("Hello")})
			}
			_ = openai.WriteJSON(w, 200, openai.ChatCompletion{ID: openai.NewChatID(), Created: openai.Created(), Model: req.Model,
				Choices: choices, Usage: openai.NewUsage(5, 2), ConversationID: "chat-1",
				PerformanceMetrics: &openai.PerformanceMetrics{InferenceTimeMS: 12, TokensPerSecond: 100, TimeToFirstTokenMS: 3}})
			return
		}
		st := openai.ChatStream{ID: openai.NewChatID(), Created: openai.Created(), Model: req.Model, IncludeUsage: req.IncludeUsage()}
		s := openai.NewSSE(w)
		if tool != "" {
			_ = s.Send(st.Chunk(openai.ChunkChoice{Delta: openai.Delta{Role: openai.RoleAssistant, ToolCalls: []openai.ToolCallDelta{
				{Index: 0, ID: "call_abc", Type: "function", Function: openai.FunctionDelta{Name: tool}}}}}))
			for _, frag := range []string{`{"ci`, `ty":"Pa`, `ris"}`} {
				_ = s.Send(st.Chunk(openai.ChunkChoice{Delta: openai.Delta{ToolCalls: []openai.ToolCallDelta{
					{Index: 0, Function: openai.FunctionDelta{Arguments: frag}}}}}))
			}
			_ = s.Send(st.Chunk(openai.ChunkChoice{FinishReason: openai.FinishToolCalls}))
		} else {
			_ = s.Send(st.Chunk(openai.ChunkChoice{Delta: openai.RoleDelta()}))
			for _, tok := range []string{"Hel", "lo ", "there"} {
				_ = s.Send(st.Chunk(openai.ChunkChoice{Delta: openai.TextDelta(tok), Logprobs: lp(tok)}))
			}
			if strings.Contains(req.Messages[0].Content, "fail") {
				_ = s.Error(openai.Unavailable("server is shutting down"))
				return
			}
			_ = s.Send(st.Chunk(openai.ChunkChoice{FinishReason: openai.FinishStop}))
		}
		if req.IncludeUsage() {
			_ = s.Send(st.UsageChunk(openai.NewUsage(5, 3)))
		}
		_ = s.Done()
	})
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) {
		req, e := openai.DecodeCompletionRequest(r.Body, openai.Limits{})
		if e != nil {
			openai.WriteError(w, e)
			return
		}
		if !req.Stream {
			var lps *openai.TextLogprobs
			if req.Logprobs != nil {
				lps = &openai.TextLogprobs{Tokens: []string{" bright"}, TokenLogprobs: []openai.Logprob{-0.5},
					TopLogprobs: []openai.TopLogprobMap{{{Token: " bright", Logprob: -0.5}}}, TextOffset: []int{0}}
			}
			u := openai.NewUsage(4, 1)
			_ = openai.WriteJSON(w, 200, openai.TextCompletion{ID: openai.NewCompletionID(), Created: openai.Created(), Model: req.Model,
				Choices: []openai.TextChoice{{Text: " bright", FinishReason: openai.FinishLength, Logprobs: lps}}, Usage: &u})
			return
		}
		st := openai.TextStream{ID: openai.NewCompletionID(), Created: openai.Created(), Model: req.Model, IncludeUsage: req.IncludeUsage()}
		s := openai.NewSSE(w)
		_ = s.Send(st.Chunk(openai.TextChoice{Text: " bri"}))
		_ = s.Send(st.Chunk(openai.TextChoice{Text: "ght", FinishReason: openai.FinishLength}))
		if req.IncludeUsage() {
			_ = s.Send(st.UsageChunk(openai.NewUsage(4, 2)))
		}
		_ = s.Done()
	})
	return mux
}

// TestOfficialNodeSDK runs testdata/sdkcheck/check.mjs, which drives the
// official OpenAI Node SDK against sdkHandler: models, chat (plain, n>1,
// logprobs, tools, streaming with usage, streamed tool calls through the
// SDK's accumulator, a mid-stream error event), error classes with
// status/param/code, and legacy completions. It needs node and the SDK:
//
//	npm install --prefix DIR openai
//	OPENAI_NODE_SDK=DIR go test ./caddymodule/openai -run OfficialNodeSDK
//
// and skips otherwise.
func TestOfficialNodeSDK(t *testing.T) {
	dir := os.Getenv("OPENAI_NODE_SDK")
	if dir == "" {
		t.Skip("OPENAI_NODE_SDK not set (a folder holding node_modules/openai)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		t.Skipf("no OpenAI SDK under %s: %v", dir, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	srv := httptest.NewServer(sdkHandler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, node, "testdata/sdkcheck/check.mjs", strings.TrimPrefix(srv.URL, "http://"), abs).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("SDK check failed: %v", err)
	}
	if !strings.Contains(string(out), "all 14 SDK checks passed") {
		t.Fatalf("SDK check did not finish")
	}
}
