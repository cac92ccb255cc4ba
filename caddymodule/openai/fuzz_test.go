package openai

import (
	"bytes"
	"encoding/json"
	"testing"
)

// fuzzLimits are small so that the fuzzer reaches every limit check.
var fuzzLimits = Limits{MaxBodyBytes: 4096, MaxMessages: 4, MaxN: 3, MaxTokens: 100,
	MaxStop: 2, MaxStopBytes: 8, MaxTools: 2, MaxSchemaBytes: 64, MaxPrompts: 3, MaxLogitBias: 3}

var chatSeeds = []string{
	chatBody(""),
	chatBody(`"temperature":0.5,"top_p":1,"n":2,"stop":["a"],"logprobs":true,"top_logprobs":3,"seed":1`),
	chatBody(`"stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"max_completion_tokens":5`),
	chatBody(`"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}}`),
	chatBody(`"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"b":1,"a":2}}}`),
	chatBody(`"logit_bias":{"1":-100},"metadata":{"a":"b"},"conversation_id":"c","use_cache":true`),
	withMessages(`{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"}`),
	withMessages(`{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}}]}`),
	`{"model":"m","messages":[{"role":"user","content":"x","content":"y"}]}`,
	`{"model":1e400}`, `[]`, `{`, "\xff", ``,
}

func FuzzDecodeChatRequest(f *testing.F) {
	for _, s := range chatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := DecodeChatRequest(bytes.NewReader(body), fuzzLimits)
		checkDecodeResult(t, req != nil, e)
		if req == nil {
			return
		}
		if req.Model == "" || len(req.Messages) == 0 || len(req.Messages) > fuzzLimits.MaxMessages {
			t.Fatalf("accepted invalid request: %+v", req)
		}
		if req.N != nil && (*req.N < 1 || *req.N > fuzzLimits.MaxN) {
			t.Fatalf("accepted n=%d", *req.N)
		}
		if n, ok := req.MaxOutputTokens(); ok && (n < 1 || n > fuzzLimits.MaxTokens) {
			t.Fatalf("accepted max tokens %d", n)
		}
		if len(req.Stop) > fuzzLimits.MaxStop || len(req.Tools) > fuzzLimits.MaxTools {
			t.Fatalf("accepted %d stops, %d tools", len(req.Stop), len(req.Tools))
		}
		for _, tool := range req.Tools {
			if tool.Function.Parameters != nil && !json.Valid(tool.Function.Parameters) {
				t.Fatalf("invalid raw schema %q", tool.Function.Parameters)
			}
		}
		// Differential check: encoding/json reads the same model and text.
		var ref struct {
			Model    string `json:"model"`
			Messages []struct {
				Role    string `json:"role"`
				Content any    `json:"content"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("accepted body that encoding/json rejects: %v", err)
		}
		if ref.Model != req.Model || len(ref.Messages) != len(req.Messages) {
			t.Fatalf("model %q/%q, %d/%d messages", req.Model, ref.Model, len(req.Messages), len(ref.Messages))
		}
		for i, m := range req.Messages {
			if m.Role != ref.Messages[i].Role {
				t.Fatalf("message %d role %q, reference %q", i, m.Role, ref.Messages[i].Role)
			}
			if s, ok := ref.Messages[i].Content.(string); ok && s != m.Content {
				t.Fatalf("message %d content %q, reference %q", i, m.Content, s)
			}
			_ = m.Text()
		}
	})
}

func FuzzDecodeCompletionRequest(f *testing.F) {
	for _, s := range []string{
		complBody(""),
		complBody(`"echo":true,"logprobs":2,"best_of":2,"n":1,"suffix":"s","stop":"x"`),
		`{"model":"m","prompt":["a","b"]}`,
		`{"model":"m","prompt":[1,2,3]}`,
		`{"model":"m","prompt":[[1],[2,3]]}`,
		`{"model":"m","prompt":[[1],"a"]}`,
		`{"model":"m","prompt":[]}`,
		`{"model":"m","prompt":"p","stream":true,"stream_options":{"include_usage":false}}`,
		`{"model":"m","prompt":[1.0, 2e0]}`,
		`{}`, `null`, "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := DecodeCompletionRequest(bytes.NewReader(body), fuzzLimits)
		checkDecodeResult(t, req != nil, e)
		if req == nil {
			return
		}
		p := req.Prompt
		if req.Model == "" || p.Len() == 0 || (p.Texts != nil) == (p.Tokens != nil) {
			t.Fatalf("accepted invalid request: %+v", req)
		}
		for _, seq := range p.Tokens {
			if len(seq) == 0 {
				t.Fatalf("accepted empty token sequence")
			}
			for _, id := range seq {
				if id < 0 {
					t.Fatalf("accepted token id %d", id)
				}
			}
		}
		if req.BestOf != nil && *req.BestOf < req.Choices() {
			t.Fatalf("accepted best_of %d < n %d", *req.BestOf, req.Choices())
		}
	})
}

// checkDecodeResult asserts the contract: exactly one of a request and an
// error, and only 400 or 413 errors whose body encodes.
func checkDecodeResult(t *testing.T, gotReq bool, e *Error) {
	t.Helper()
	if gotReq == (e != nil) {
		t.Fatalf("request %v with error %v", gotReq, e)
	}
	if e == nil {
		return
	}
	if e.Status != 400 && e.Status != 413 {
		t.Fatalf("status %d: %v", e.Status, e)
	}
	if e.Message == "" || e.Type != TypeInvalidRequest {
		t.Fatalf("bad error %+v", e)
	}
	b, err := e.MarshalJSON()
	if err != nil || !json.Valid(b) {
		t.Fatalf("error body %q: %v", b, err)
	}
}
