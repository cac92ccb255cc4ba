package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// TestWireDetails covers what OpenAI clients noticed on the wire: error
// types and codes, the order of legacy top_logprobs, distinct seeded
// choices, bounded whitespace in constrained JSON, and forced tool calls cut
// by max_tokens.
func TestWireDetails(t *testing.T) {
	base := toolServer(t)
	chatURL := base + "/v1/chat/completions"
	const user = `"messages":[{"role":"user","content":"Describe the weather."}]`

	t.Run("errors", func(t *testing.T) {
		errOf := func(r response) map[string]any { e, _ := r.body["error"].(map[string]any); return e }
		r := do(t, "GET", base+"/v1/models", "wrong")
		if e := errOf(r); r.status != 401 || e["type"] != "invalid_request_error" || e["code"] != "invalid_api_key" {
			t.Fatalf("wrong key: %d %v", r.status, r.body)
		}
		r = do(t, "GET", base+"/v1/nothing/here", "secret")
		if e := errOf(r); r.status != 404 || e["code"] != "unknown_url" || e["type"] != "invalid_request_error" {
			t.Fatalf("unknown path: %d %v", r.status, r.body)
		}
		r = do(t, "GET", base+"/v1/models/absent", "secret")
		if e := errOf(r); r.status != 404 || e["code"] != "model_not_found" {
			t.Fatalf("absent model: %d %v", r.status, r.body)
		}
	})

	t.Run("legacy top_logprobs are ordered by probability", func(t *testing.T) {
		code, out := post(t, base+"/v1/completions", "secret", `{"model":"llama-mlx4","prompt":"The weather today is","max_tokens":6,"logprobs":5,"temperature":0}`)
		var r struct {
			Choices []struct {
				Logprobs struct {
					TopLogprobs []json.RawMessage `json:"top_logprobs"`
				} `json:"logprobs"`
			} `json:"choices"`
		}
		if code != 200 || json.Unmarshal(out, &r) != nil || len(r.Choices) != 1 || len(r.Choices[0].Logprobs.TopLogprobs) == 0 {
			t.Fatalf("%d %s", code, out)
		}
		for i, raw := range r.Choices[0].Logprobs.TopLogprobs {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.Token() // {
			prev, n := 1.0, 0
			for dec.More() {
				key, _ := dec.Token()
				var lp float64
				if err := dec.Decode(&lp); err != nil {
					t.Fatalf("entry %d: %s: %v", i, raw, err)
				}
				if lp > prev {
					t.Fatalf("entry %d is not most probable first: %q after a smaller logprob in %s", i, key, raw)
				}
				prev, n = lp, n+1
			}
			if n == 0 {
				t.Fatalf("entry %d is empty: %s", i, raw)
			}
		}
	})

	t.Run("n > 1 with a seed", func(t *testing.T) {
		texts := func(seed, n int) []string {
			body := fmt.Sprintf(`{"model":"llama-mlx4",%s,"n":%d,"seed":%d,"temperature":1,"max_tokens":16}`, user, n, seed)
			code, out := post(t, chatURL, "secret", body)
			var r chatReply
			if code != 200 || json.Unmarshal(out, &r) != nil || len(r.Choices) != n {
				t.Fatalf("%d %s", code, out)
			}
			var got []string
			for _, c := range r.Choices {
				got = append(got, *c.Message.Content)
			}
			return got
		}
		batch := texts(7, 3)
		if again := texts(7, 3); strings.Join(again, "\x00") != strings.Join(batch, "\x00") {
			t.Fatalf("same request, same seed, other output:\n%q\n%q", batch, again)
		}
		for i := 1; i < 3; i++ {
			if single := texts(7+i, 1)[0]; single == batch[i] {
				t.Fatalf("choice %d of seed 7 repeats choice 0 of seed %d: %q", i, 7+i, single)
			}
		}
	})

	t.Run("constrained JSON closes within 32 tokens", func(t *testing.T) {
		// A free json_object lets the model choose keys and strings of any
		// length; the schemas bound everything but whitespace, so only
		// padding could keep them open.
		formats := []string{
			`{"type":"json_schema","json_schema":{"name":"ok","schema":{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}}}`,
			`{"type":"json_schema","json_schema":{"name":"w","strict":true,"schema":{"type":"object","properties":{"city":{"type":"string","maxLength":12},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","days"],"additionalProperties":false}}}`,
		}
		for _, f := range formats {
			for seed := range 3 {
				body := fmt.Sprintf(`{"model":"llama-mlx4",%s,"response_format":%s,"max_tokens":32,"temperature":0.7,"seed":%d}`, user, f, seed)
				code, out := post(t, chatURL, "secret", body)
				var r struct {
					chatReply
					Usage struct {
						CompletionTokens int `json:"completion_tokens"`
					} `json:"usage"`
				}
				if code != 200 || json.Unmarshal(out, &r) != nil || len(r.Choices) != 1 {
					t.Fatalf("%d %s", code, out)
				}
				c := r.Choices[0]
				var v map[string]any
				if c.FinishReason != "stop" || json.Unmarshal([]byte(*c.Message.Content), &v) != nil {
					t.Fatalf("%s seed %d: not closed in 32 tokens (%s, %d tokens): %q", f, seed, c.FinishReason, r.Usage.CompletionTokens, *c.Message.Content)
				}
			}
		}
	})

	t.Run("forced tool call cut by max_tokens", func(t *testing.T) {
		tools := `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":20},"unit":{"type":"string","enum":["c","f"]}},"required":["city","unit"],"additionalProperties":false},"strict":true}}]`
		request := func(maxTokens int, stream bool) string {
			return fmt.Sprintf(`{"model":"llama-tools",%s,"tools":%s,"tool_choice":{"type":"function","function":{"name":"get_weather"}},"max_tokens":%d,"temperature":0.7,"seed":3,"stream":%v}`, user, tools, maxTokens, stream)
		}
		type reply struct {
			content *string
			name    string
			args    string
			calls   int
			finish  string
			tokens  int
		}
		unstreamed := func(maxTokens int) reply {
			code, out := post(t, chatURL, "secret", request(maxTokens, false))
			var r struct {
				chatReply
				Usage struct {
					CompletionTokens int `json:"completion_tokens"`
				} `json:"usage"`
			}
			if code != 200 || json.Unmarshal(out, &r) != nil || len(r.Choices) != 1 {
				t.Fatalf("%d %s", code, out)
			}
			c := r.Choices[0]
			rep := reply{content: c.Message.Content, calls: len(c.Message.ToolCalls), finish: c.FinishReason, tokens: r.Usage.CompletionTokens}
			if rep.calls > 0 {
				rep.name, rep.args = c.Message.ToolCalls[0].Function.Name, c.Message.ToolCalls[0].Function.Arguments
			}
			return rep
		}
		full := unstreamed(150)
		if full.finish != "tool_calls" || full.calls != 1 || !json.Valid([]byte(full.args)) {
			t.Fatalf("uncut call: %+v", full)
		}
		// Cut inside the arguments, in the closing tag alone, and between.
		for _, n := range []int{full.tokens / 2, full.tokens - 3, full.tokens - 1} {
			got := unstreamed(n)
			if got.finish != "length" || got.content != nil || got.calls != 1 || got.name != "get_weather" || !strings.HasPrefix(full.args, got.args) {
				t.Fatalf("max_tokens %d: %+v (content %v); uncut arguments %s", n, got, deref(got.content), full.args)
			}
			content, calls, finish := streamToolCalls(t, chatURL, "secret", request(n, true))
			if content != "" || finish != "length" || len(calls) != 1 || calls[0]["name"] != got.name || calls[0]["arguments"] != got.args {
				t.Fatalf("max_tokens %d: stream content %q calls %v finish %q; unstreamed %+v", n, content, calls, finish, got)
			}
		}
		// The closing tag alone cut: the call is whole, the reason "length".
		if got := unstreamed(full.tokens - 1); got.args != full.args {
			t.Fatalf("closing tag cut: arguments %s, want %s", got.args, full.args)
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// TestRoutingProtectedHealth runs a back end that protects every path, its
// health endpoints included: the front's probes carry the route's
// upstream_key, so the back end stays up. A route with no healthy upstream
// answers an OpenAI-shaped 503 naming the model, though the front's site
// has no handle_errors.
func TestRoutingProtectedHealth(t *testing.T) {
	models := t.TempDir()
	copyDir(t, testutil.Fixture(t, "dev-trained", "llama-mlx4"), filepath.Join(models, "llama-mlx4"))
	backPort, frontPort, deadPort := freePort(t), freePort(t), freePort(t)
	back := startServer(t, fmt.Sprintf(`{
	admin 127.0.0.1:%d
	default_bind 127.0.0.1
	impetus {
		models_dir %s
	}
}

http://127.0.0.1:%d {
	impetus_auth {
		key front backend-key
	}
	impetus_openai
	impetus_api
	handle_errors {
		impetus_error
	}
}
`, freePort(t), models, backPort))
	back.waitReady(fmt.Sprintf("http://127.0.0.1:%d/api/health", backPort))
	if r := do(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/api/health/ready", backPort), ""); r.status != 401 {
		t.Fatalf("the back end's health endpoint is open: %d", r.status)
	}
	front := startServer(t, fmt.Sprintf(`{
	admin 127.0.0.1:%d
	default_bind 127.0.0.1
	impetus {
		models_dir %s
		route llama-mlx4 {
			to http://127.0.0.1:%d
			upstream_key backend-key
			health_interval 300ms
		}
		route ghost {
			to http://127.0.0.1:%d
			upstream_key backend-key
			health_interval 300ms
		}
	}
}

http://127.0.0.1:%d {
	impetus_auth {
		key main front-key
	}
	impetus_openai
}
`, freePort(t), t.TempDir(), backPort, deadPort, frontPort))
	base := fmt.Sprintf("http://127.0.0.1:%d", frontPort)
	front.waitReady(base + "/v1/models")
	time.Sleep(1500 * time.Millisecond) // several probe rounds

	chat := func(model string) (int, map[string]any, http.Header) {
		body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"temperature":0}`, model)
		req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer front-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %d, body is not JSON: %q", model, resp.StatusCode, raw)
		}
		return resp.StatusCode, m, resp.Header
	}
	for i := range 3 {
		if code, body, _ := chat("llama-mlx4"); code != 200 {
			t.Fatalf("request %d to the protected back end: %d %v", i, code, body)
		}
		time.Sleep(400 * time.Millisecond)
	}
	code, body, header := chat("ghost")
	e, _ := body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if code != 503 || e["type"] != "server_error" || e["code"] != "service_unavailable" || !strings.Contains(msg, "ghost") || header.Get("Retry-After") == "" {
		t.Fatalf("no healthy upstream: %d %v %v", code, body, header)
	}
}
