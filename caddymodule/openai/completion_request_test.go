package openai

import (
	"reflect"
	"strings"
	"testing"
)

func complBody(extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return `{"model":"m","prompt":"The future of AI is"` + extra + `}`
}

func TestDecodeCompletionRequestErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		limits Limits
		status int
		param  string
		msg    string
	}{
		{"empty", ``, Limits{}, 400, "<nil>", "request body is empty"},
		{"too large", complBody(""), Limits{MaxBodyBytes: 10}, 413, "<nil>", "request body exceeds the limit of 10 bytes"},
		{"not object", `"x"`, Limits{}, 400, "<nil>", "request body must be a JSON object, got string"},
		{"unknown", complBody(`"messages":[]`), Limits{}, 400, "messages", "unrecognized request argument supplied: messages"},
		{"model missing", `{"prompt":"x"}`, Limits{}, 400, "model", "model: required field is missing"},
		{"model empty", `{"model":"","prompt":"x"}`, Limits{}, 400, "model", "model: must not be empty"},
		{"prompt missing", `{"model":"m"}`, Limits{}, 400, "prompt", "prompt: required field is missing"},
		{"prompt number", `{"model":"m","prompt":5}`, Limits{}, 400, "prompt", "prompt: expected string, array of strings, array of token ids or array of token-id arrays, got number"},
		{"prompt empty array", `{"model":"m","prompt":[]}`, Limits{}, 400, "prompt", "prompt: must not be empty"},
		{"prompt array of bools", `{"model":"m","prompt":[true]}`, Limits{}, 400, "prompt[0]", "prompt[0]: expected string, token id or array of token ids, got boolean"},
		{"prompt mixed", `{"model":"m","prompt":["a",[1]]}`, Limits{}, 400, "prompt[1]", "prompt[1]: expected string like the first element, got array"},
		{"prompt mixed tokens", `{"model":"m","prompt":[1,"a"]}`, Limits{}, 400, "prompt[1]", "prompt[1]: expected token id (integer), got string"},
		{"prompt negative token", `{"model":"m","prompt":[1,-2]}`, Limits{}, 400, "prompt[1]", "prompt[1]: must be an integer between 0 and 2147483647, got -2"},
		{"prompt fractional token", `{"model":"m","prompt":[[1,2.5]]}`, Limits{}, 400, "prompt[0][1]", "prompt[0][1]: expected integer, got 2.5"},
		{"prompt empty token list", `{"model":"m","prompt":[[1],[]]}`, Limits{}, 400, "prompt[1]", "prompt[1]: token-id array must not be empty"},
		{"prompt nested too deep", `{"model":"m","prompt":[[[1]]]}`, Limits{}, 400, "prompt[0][0]", "prompt[0][0]: expected token id (integer), got array"},
		{"too many prompts", `{"model":"m","prompt":["a","b","c"]}`, Limits{MaxPrompts: 2}, 400, "prompt", "prompt: at most 2 prompts are allowed, got 3"},
		{"suffix number", complBody(`"suffix":1`), Limits{}, 400, "suffix", "suffix: expected string, got number"},
		{"echo string", complBody(`"echo":"y"`), Limits{}, 400, "echo", "echo: expected boolean, got string"},
		{"logprobs bool", complBody(`"logprobs":true`), Limits{}, 400, "logprobs", "logprobs: expected integer, got boolean"},
		{"logprobs high", complBody(`"logprobs":6`), Limits{}, 400, "logprobs", "logprobs: must be an integer between 0 and 5, got 6"},
		{"best_of below n", complBody(`"n":3,"best_of":2`), Limits{}, 400, "best_of", "best_of: must be at least n (3), got 2"},
		{"best_of over limit", complBody(`"best_of":5`), Limits{MaxN: 4}, 400, "best_of", "best_of: must be an integer between 1 and 4, got 5"},
		{"n zero", complBody(`"n":0`), Limits{}, 400, "n", "n: must be an integer between 1 and 16, got 0"},
		{"max_tokens zero", complBody(`"max_tokens":0`), Limits{}, 400, "max_tokens", "max_tokens: must be an integer between 1 and 32768, got 0"},
		{"temperature", complBody(`"temperature":2.5`), Limits{}, 400, "temperature", "temperature: must be between 0 and 2, got 2.5"},
		{"stop too many", complBody(`"stop":["a","b","c"]`), Limits{MaxStop: 2}, 400, "stop", "stop: at most 2 stop sequences are allowed, got 3"},
		{"stream_options without stream", complBody(`"stream_options":{"include_usage":true}`), Limits{}, 400, "stream_options", "stream_options: only allowed when stream is true"},
		{"logit_bias", complBody(`"logit_bias":{"1":200}`), Limits{}, 400, "logit_bias.1", "logit_bias.1: must be between -100 and 100, got 200"},
		{"chat-only field", complBody(`"tools":[]`), Limits{}, 400, "tools", "unrecognized request argument supplied: tools"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, e := DecodeCompletionRequest(strings.NewReader(tt.body), tt.limits)
			if e == nil {
				t.Fatalf("decoded %+v, want error", req)
			}
			if e.Status != tt.status || e.Message != tt.msg || paramOf(e) != tt.param {
				t.Errorf("got  %d %q param %q\nwant %d %q param %q", e.Status, e.Message, paramOf(e), tt.status, tt.msg, tt.param)
			}
		})
	}
}

func TestDecodeCompletionPrompts(t *testing.T) {
	tests := []struct {
		prompt string
		want   Prompt
	}{
		{`"hello"`, Prompt{Texts: []string{"hello"}}},
		{`""`, Prompt{Texts: []string{""}}},
		{`["a","b"]`, Prompt{Texts: []string{"a", "b"}}},
		{`[1,2,3]`, Prompt{Tokens: [][]int{{1, 2, 3}}}},
		{`[[1],[2,3]]`, Prompt{Tokens: [][]int{{1}, {2, 3}}}},
	}
	for _, tt := range tests {
		r, e := DecodeCompletionRequest(strings.NewReader(`{"model":"m","prompt":`+tt.prompt+`}`), Limits{})
		if e != nil {
			t.Errorf("%s: %v", tt.prompt, e)
			continue
		}
		if !reflect.DeepEqual(r.Prompt, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.prompt, r.Prompt, tt.want)
		}
		if r.Prompt.Len() != len(tt.want.Texts)+len(tt.want.Tokens) {
			t.Errorf("%s: Len %d", tt.prompt, r.Prompt.Len())
		}
	}
}

func TestDecodeCompletionFull(t *testing.T) {
	body := `{"model":"m","prompt":"p","suffix":"s","echo":true,"best_of":3,"logprobs":5,"max_tokens":100,
	  "n":2,"stream":true,"stream_options":{"include_usage":true},"stop":"\n","temperature":0.7,"top_p":1.0,
	  "top_k":0,"min_p":0,"frequency_penalty":0,"presence_penalty":0,"repetition_penalty":1,
	  "logit_bias":{"7":1},"seed":42,"user":"u"}`
	r, e := DecodeCompletionRequest(strings.NewReader(body), Limits{})
	if e != nil {
		t.Fatal(e)
	}
	if *r.Suffix != "s" || !r.Echo || *r.BestOf != 3 || *r.Logprobs != 5 || *r.MaxTokens != 100 || r.Choices() != 2 ||
		!r.IncludeUsage() || r.Stop[0] != "\n" || *r.Temperature != 0.7 || *r.TopP != 1 || *r.TopK != 0 ||
		*r.Seed != 42 || r.LogitBias[7] != 1 || r.User != "u" || *r.RepetitionPenalty != 1 {
		t.Errorf("decoded %+v", r)
	}
	if !r.Has("suffix") || r.Has("messages") || len(r.Fields()) != 21 {
		t.Errorf("Has/Fields: %v", r.Fields())
	}
	r, e = DecodeCompletionRequest(strings.NewReader(`{"model":"m","prompt":"p","logprobs":null,"suffix":null}`), Limits{})
	if e != nil || r.Logprobs != nil || r.Suffix != nil || r.Choices() != 1 || r.IncludeUsage() {
		t.Errorf("nulls: %v %+v", e, r)
	}
}
