package openai

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const userHi = `"messages":[{"role":"user","content":"hi"}]`

// chatBody builds a valid request plus extra top-level members.
func chatBody(extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return `{"model":"m",` + userHi + extra + `}`
}

// withMessages builds a request with the given messages array body.
func withMessages(msgs string) string {
	return `{"model":"m","messages":[` + msgs + `]}`
}

func paramOf(e *Error) string {
	if e.Param == nil {
		return "<nil>"
	}
	return *e.Param
}

func TestDecodeChatRequestErrors(t *testing.T) {
	big := `{"type":"object","description":"` + strings.Repeat("x", 200) + `"}`
	tests := []struct {
		name   string
		body   string
		limits Limits
		status int
		param  string
		msg    string
	}{
		// Body level.
		{"empty body", ``, Limits{}, 400, "<nil>", "request body is empty"},
		{"blank body", " \n\t", Limits{}, 400, "<nil>", "request body is empty"},
		{"invalid utf8", "{\"model\":\"\xff\"}", Limits{}, 400, "<nil>", "request body is not valid UTF-8"},
		{"truncated json", `{"model":"m",`, Limits{}, 400, "<nil>", "request body is not valid JSON: unexpected end of JSON input (at byte 13)"},
		{"trailing garbage", `{"model":"m"} x`, Limits{}, 400, "<nil>", "request body is not valid JSON: invalid character 'x' after top-level value (at byte 15)"},
		{"array root", `[1]`, Limits{}, 400, "<nil>", "request body must be a JSON object, got array"},
		{"too large", chatBody(""), Limits{MaxBodyBytes: 16}, 413, "<nil>", "request body exceeds the limit of 16 bytes"},
		{"duplicate key", `{"model":"m","model":"n",` + userHi + `}`, Limits{}, 400, "model", "model: duplicate field"},
		{"long unknown key clipped", chatBody(`"` + strings.Repeat("k", 100) + `":1`), Limits{}, 400, strings.Repeat("k", 64) + "…", "unrecognized request argument supplied: " + strings.Repeat("k", 64) + "…"},
		{"long nested key clipped", withMessages(`{"role":"user","content":"x","` + strings.Repeat("é", 40) + `":1}`), Limits{}, 400, "messages[0]." + strings.Repeat("é", 32) + "…", `messages[0]: unknown field "` + strings.Repeat("é", 32) + `…"`},
		{"long role clipped", withMessages(`{"role":"` + strings.Repeat("r", 1000) + `","content":"x"}`), Limits{}, 400, "messages[0].role", `messages[0].role: unknown role "` + strings.Repeat("r", 64) + `…"; expected one of system, developer, user, assistant, tool`},
		{"unknown top-level", chatBody(`"temprature":1`), Limits{}, 400, "temprature", "unrecognized request argument supplied: temprature"},

		// model and messages.
		{"model missing", `{` + userHi + `}`, Limits{}, 400, "model", "model: required field is missing"},
		{"model null", `{"model":null,` + userHi + `}`, Limits{}, 400, "model", "model: required field is missing"},
		{"model empty", `{"model":"",` + userHi + `}`, Limits{}, 400, "model", "model: must not be empty"},
		{"model number", `{"model":7,` + userHi + `}`, Limits{}, 400, "model", "model: expected string, got number"},
		{"messages missing", `{"model":"m"}`, Limits{}, 400, "messages", "messages: required field is missing"},
		{"messages object", `{"model":"m","messages":{}}`, Limits{}, 400, "messages", "messages: expected array, got object"},
		{"messages empty", `{"model":"m","messages":[]}`, Limits{}, 400, "messages", "messages: must contain at least one message"},
		{"messages too many", withMessages(`{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"user","content":"c"}`), Limits{MaxMessages: 2}, 400, "messages", "messages: at most 2 messages are allowed, got 3"},
		{"message not object", withMessages(`"hi"`), Limits{}, 400, "messages[0]", "messages[0]: expected object, got string"},
		{"role missing", withMessages(`{"content":"x"}`), Limits{}, 400, "messages[0].role", "messages[0].role: required field is missing"},
		{"role number", withMessages(`{"role":1,"content":"x"}`), Limits{}, 400, "messages[0].role", "messages[0].role: expected string, got number"},
		{"unknown role", withMessages(`{"role":"user","content":"x"},{"role":"function","content":"x"}`), Limits{}, 400, "messages[1].role", `messages[1].role: unknown role "function"; expected one of system, developer, user, assistant, tool`},
		{"content number", withMessages(`{"role":"user","content":"x"},{"content":5,"role":"user"}`), Limits{}, 400, "messages[1].content", "messages[1].content: expected string or array of content parts, got number"},
		{"content missing", withMessages(`{"role":"system"}`), Limits{}, 400, "messages[0].content", "messages[0].content: required field is missing"},
		{"content null user", withMessages(`{"role":"user","content":null}`), Limits{}, 400, "messages[0].content", "messages[0].content: required field is missing"},
		{"message unknown field", withMessages(`{"role":"user","content":"x","foo":1}`), Limits{}, 400, "messages[0].foo", `messages[0]: unknown field "foo"`},
		{"message duplicate field", withMessages(`{"role":"user","content":"x","content":"y"}`), Limits{}, 400, "messages[0].content", `messages[0].content: duplicate field`},
		{"name number", withMessages(`{"role":"user","content":"x","name":3}`), Limits{}, 400, "messages[0].name", "messages[0].name: expected string, got number"},
		{"tool_calls on user", withMessages(`{"role":"user","content":"x","tool_calls":[]}`), Limits{}, 400, "messages[0].tool_calls", `messages[0].tool_calls: not allowed on "user" messages`},
		{"reasoning_content on user", withMessages(`{"role":"user","content":"x","reasoning_content":"r"}`), Limits{}, 400, "messages[0].reasoning_content", `messages[0].reasoning_content: not allowed on "user" messages`},
		{"tool_call_id on assistant", withMessages(`{"role":"assistant","content":"x","tool_call_id":"c"}`), Limits{}, 400, "messages[0].tool_call_id", `messages[0].tool_call_id: not allowed on "assistant" messages`},
		{"chat_template_kwargs array", chatBody(`"chat_template_kwargs":[]`), Limits{}, 400, "chat_template_kwargs", "chat_template_kwargs: expected object, got array"},
		{"tool without id", withMessages(`{"role":"tool","content":"x"}`), Limits{}, 400, "messages[0].tool_call_id", `messages[0].tool_call_id: required on a "tool" message`},
		{"tool without content", withMessages(`{"role":"tool","tool_call_id":"c"}`), Limits{}, 400, "messages[0].content", `messages[0].content: required field is missing`},
		{"assistant empty", withMessages(`{"role":"assistant","content":null}`), Limits{}, 400, "messages[0].content", "messages[0].content: an assistant message needs content or tool_calls"},

		// Content parts.
		{"parts empty", withMessages(`{"role":"user","content":[]}`), Limits{}, 400, "messages[0].content", "messages[0].content: must contain at least one content part"},
		{"part not object", withMessages(`{"role":"user","content":["hi"]}`), Limits{}, 400, "messages[0].content[0]", "messages[0].content[0]: expected object, got string"},
		{"part type missing", withMessages(`{"role":"user","content":[{"text":"hi"}]}`), Limits{}, 400, "messages[0].content[0].type", "messages[0].content[0].type: required field is missing"},
		{"part type for role", withMessages(`{"role":"system","content":[{"type":"image_url","image_url":{"url":"x"}}]}`), Limits{}, 400, "messages[0].content[0].type", `messages[0].content[0].type: content part type "image_url" is not allowed in "system" messages; expected one of text`},
		{"part unknown type", withMessages(`{"role":"user","content":[{"type":"video","video":{}}]}`), Limits{}, 400, "messages[0].content[0].type", `messages[0].content[0].type: content part type "video" is not allowed in "user" messages; expected one of text, image_url, input_audio, file`},
		{"text part without text", withMessages(`{"role":"user","content":[{"type":"text"}]}`), Limits{}, 400, "messages[0].content[0].text", "messages[0].content[0].text: required field is missing"},
		{"text part number", withMessages(`{"role":"user","content":[{"type":"text","text":1}]}`), Limits{}, 400, "messages[0].content[0].text", "messages[0].content[0].text: expected string, got number"},
		{"text part extra", withMessages(`{"role":"user","content":[{"type":"text","text":"a","image_url":{}}]}`), Limits{}, 400, "messages[0].content[0].image_url", `messages[0].content[0]: unknown field "image_url"`},
		{"image part not object", withMessages(`{"role":"user","content":[{"type":"image_url","image_url":"u"}]}`), Limits{}, 400, "messages[0].content[0].image_url", "messages[0].content[0].image_url: expected object, got string"},

		// Assistant tool calls.
		{"tool_calls not array", withMessages(`{"role":"assistant","tool_calls":{}}`), Limits{}, 400, "messages[0].tool_calls", "messages[0].tool_calls: expected array, got object"},
		{"tool call missing id", withMessages(`{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}`), Limits{}, 400, "messages[0].tool_calls[0].id", "messages[0].tool_calls[0].id: required field is missing"},
		{"tool call bad type", withMessages(`{"role":"assistant","tool_calls":[{"id":"c","type":"custom","function":{"name":"f","arguments":"{}"}}]}`), Limits{}, 400, "messages[0].tool_calls[0].type", `messages[0].tool_calls[0].type: expected "function", got "custom"`},
		{"tool call no arguments", withMessages(`{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f"}}]}`), Limits{}, 400, "messages[0].tool_calls[0].function.arguments", "messages[0].tool_calls[0].function.arguments: required field is missing"},
		{"tool call object arguments", withMessages(`{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{}}}]}`), Limits{}, 400, "messages[0].tool_calls[0].function.arguments", "messages[0].tool_calls[0].function.arguments: expected string, got object"},

		// Sampling numbers.
		{"temperature high", chatBody(`"temperature":3`), Limits{}, 400, "temperature", "temperature: must be between 0 and 2, got 3"},
		{"temperature negative", chatBody(`"temperature":-0.1`), Limits{}, 400, "temperature", "temperature: must be between 0 and 2, got -0.1"},
		{"temperature string", chatBody(`"temperature":"hot"`), Limits{}, 400, "temperature", "temperature: expected number, got string"},
		{"temperature huge", chatBody(`"temperature":1e999`), Limits{}, 400, "temperature", "temperature: number out of range"},
		{"top_p zero", chatBody(`"top_p":0`), Limits{}, 400, "top_p", "top_p: must be greater than 0 and at most 1, got 0"},
		{"top_p high", chatBody(`"top_p":1.5`), Limits{}, 400, "top_p", "top_p: must be greater than 0 and at most 1, got 1.5"},
		{"top_k negative", chatBody(`"top_k":-1`), Limits{}, 400, "top_k", "top_k: must be an integer between 0 and 2147483647, got -1"},
		{"min_p high", chatBody(`"min_p":2`), Limits{}, 400, "min_p", "min_p: must be between 0 and 1, got 2"},
		{"frequency_penalty", chatBody(`"frequency_penalty":2.5`), Limits{}, 400, "frequency_penalty", "frequency_penalty: must be between -2 and 2, got 2.5"},
		{"presence_penalty", chatBody(`"presence_penalty":-3`), Limits{}, 400, "presence_penalty", "presence_penalty: must be between -2 and 2, got -3"},
		{"repetition_penalty zero", chatBody(`"repetition_penalty":0`), Limits{}, 400, "repetition_penalty", "repetition_penalty: must be greater than 0, got 0"},
		{"n zero", chatBody(`"n":0`), Limits{}, 400, "n", "n: must be an integer between 1 and 16, got 0"},
		{"n over limit", chatBody(`"n":3`), Limits{MaxN: 2}, 400, "n", "n: must be an integer between 1 and 2, got 3"},
		{"n fraction", chatBody(`"n":1.5`), Limits{}, 400, "n", "n: expected integer, got 1.5"},
		{"n string", chatBody(`"n":"2"`), Limits{}, 400, "n", "n: expected integer, got string"},
		{"max_tokens zero", chatBody(`"max_tokens":0`), Limits{}, 400, "max_tokens", "max_tokens: must be an integer between 1 and 32768, got 0"},
		{"max_tokens over limit", chatBody(`"max_tokens":40000`), Limits{}, 400, "max_tokens", "max_tokens: must be an integer between 1 and 32768, got 40000"},
		{"max_completion_tokens over", chatBody(`"max_completion_tokens":101`), Limits{MaxTokens: 100}, 400, "max_completion_tokens", "max_completion_tokens: must be an integer between 1 and 100, got 101"},
		{"max tokens disagree", chatBody(`"max_tokens":10,"max_completion_tokens":20`), Limits{}, 400, "max_tokens", "max_tokens: max_tokens (10) and max_completion_tokens (20) disagree; send only max_completion_tokens"},
		{"seed fraction", chatBody(`"seed":1.5`), Limits{}, 400, "seed", "seed: expected integer, got 1.5"},
		{"seed huge", chatBody(`"seed":1e30`), Limits{}, 400, "seed", "seed: integer out of range"},

		// logit_bias and logprobs.
		{"logit_bias array", chatBody(`"logit_bias":[1]`), Limits{}, 400, "logit_bias", "logit_bias: expected object, got array"},
		{"logit_bias word key", chatBody(`"logit_bias":{"hello":1}`), Limits{}, 400, "logit_bias.hello", `logit_bias.hello: expected a token id (non-negative integer) as key, got "hello"`},
		{"logit_bias negative key", chatBody(`"logit_bias":{"-1":1}`), Limits{}, 400, "logit_bias.-1", `logit_bias.-1: expected a token id (non-negative integer) as key, got "-1"`},
		{"logit_bias value", chatBody(`"logit_bias":{"50256":-101}`), Limits{}, 400, "logit_bias.50256", "logit_bias.50256: must be between -100 and 100, got -101"},
		{"logit_bias too many", chatBody(`"logit_bias":{"1":1,"2":2}`), Limits{MaxLogitBias: 1}, 400, "logit_bias", "logit_bias: at most 1 entries are allowed, got 2"},
		{"logit_bias string value", chatBody(`"logit_bias":{"1":"5"}`), Limits{}, 400, "logit_bias.1", "logit_bias.1: expected number, got string"},
		{"logprobs string", chatBody(`"logprobs":"yes"`), Limits{}, 400, "logprobs", "logprobs: expected boolean, got string"},
		{"top_logprobs high", chatBody(`"logprobs":true,"top_logprobs":21`), Limits{}, 400, "top_logprobs", "top_logprobs: must be an integer between 0 and 20, got 21"},
		{"top_logprobs alone", chatBody(`"top_logprobs":2`), Limits{}, 400, "top_logprobs", "top_logprobs: requires logprobs to be true"},
		{"top_logprobs logprobs false", chatBody(`"top_logprobs":2,"logprobs":false`), Limits{}, 400, "top_logprobs", "top_logprobs: requires logprobs to be true"},

		// stop.
		{"stop number", chatBody(`"stop":1`), Limits{}, 400, "stop", "stop: expected string or array of strings, got number"},
		{"stop empty string", chatBody(`"stop":""`), Limits{}, 400, "stop", "stop: stop sequences must not be empty"},
		{"stop too many", chatBody(`"stop":["a","b","c","d","e"]`), Limits{}, 400, "stop", "stop: at most 4 stop sequences are allowed, got 5"},
		{"stop item number", chatBody(`"stop":["a",2]`), Limits{}, 400, "stop[1]", "stop[1]: expected string, got number"},
		{"stop item empty", chatBody(`"stop":["a",""]`), Limits{}, 400, "stop[1]", "stop[1]: stop sequences must not be empty"},
		{"stop too long", chatBody(`"stop":["abcdef"]`), Limits{MaxStopBytes: 5}, 400, "stop[0]", "stop[0]: stop sequence is 6 bytes, more than the limit of 5"},

		// stream.
		{"stream string", chatBody(`"stream":"true"`), Limits{}, 400, "stream", "stream: expected boolean, got string"},
		{"stream_options without stream", chatBody(`"stream_options":{"include_usage":true}`), Limits{}, 400, "stream_options", "stream_options: only allowed when stream is true"},
		{"stream_options unknown", chatBody(`"stream":true,"stream_options":{"usage":true}`), Limits{}, 400, "stream_options.usage", `stream_options: unknown field "usage"`},
		{"include_usage string", chatBody(`"stream":true,"stream_options":{"include_usage":"yes"}`), Limits{}, 400, "stream_options.include_usage", "stream_options.include_usage: expected boolean, got string"},

		// tools.
		{"tools object", chatBody(`"tools":{}`), Limits{}, 400, "tools", "tools: expected array, got object"},
		{"tools too many", chatBody(`"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}]`), Limits{MaxTools: 1}, 400, "tools", "tools: at most 1 tools are allowed, got 2"},
		{"tool type", chatBody(`"tools":[{"type":"custom","function":{"name":"a"}}]`), Limits{}, 400, "tools[0].type", `tools[0].type: expected "function", got "custom"`},
		{"tool missing function", chatBody(`"tools":[{"type":"function"}]`), Limits{}, 400, "tools[0].function", "tools[0].function: required field is missing"},
		{"tool missing name", chatBody(`"tools":[{"type":"function","function":{"description":"d"}}]`), Limits{}, 400, "tools[0].function.name", "tools[0].function.name: required field is missing"},
		{"tool bad name", chatBody(`"tools":[{"type":"function","function":{"name":"get weather"}}]`), Limits{}, 400, "tools[0].function.name", `tools[0].function.name: must be 1 to 64 letters, digits, underscores or dashes, got "get weather"`},
		{"tool duplicate name", chatBody(`"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"a"}}]`), Limits{}, 400, "tools[1].function.name", `tools[1].function.name: duplicate function name "a"`},
		{"tool parameters array", chatBody(`"tools":[{"type":"function","function":{"name":"a","parameters":[]}}]`), Limits{}, 400, "tools[0].function.parameters", "tools[0].function.parameters: expected object, got array"},
		{"tool parameters too big", chatBody(`"tools":[{"type":"function","function":{"name":"a","parameters":` + big + `}}]`), Limits{MaxSchemaBytes: 100}, 400, "tools[0].function.parameters", "tools[0].function.parameters: schema is 234 bytes, more than the limit of 100"},
		{"tool unknown field", chatBody(`"tools":[{"type":"function","function":{"name":"a","params":{}}}]`), Limits{}, 400, "tools[0].function.params", `tools[0].function: unknown field "params"`},
		{"tool strict string", chatBody(`"tools":[{"type":"function","function":{"name":"a","strict":"yes"}}]`), Limits{}, 400, "tools[0].function.strict", "tools[0].function.strict: expected boolean, got string"},

		// tool_choice.
		{"tool_choice word", chatBody(`"tool_choice":"sometimes"`), Limits{}, 400, "tool_choice", `tool_choice: expected "none", "auto", "required" or {"type":"function","function":{"name":...}}, got "sometimes"`},
		{"tool_choice number", chatBody(`"tool_choice":1`), Limits{}, 400, "tool_choice", `tool_choice: expected "none", "auto", "required" or {"type":"function","function":{"name":...}}, got number`},
		{"tool_choice required no tools", chatBody(`"tool_choice":"required"`), Limits{}, 400, "tool_choice", `tool_choice: "required" requires tools`},
		{"tool_choice object type", chatBody(`"tool_choice":{"type":"allowed_tools","function":{"name":"a"}}`), Limits{}, 400, "tool_choice.type", `tool_choice.type: expected "function", got "allowed_tools"`},
		{"tool_choice no name", chatBody(`"tool_choice":{"type":"function","function":{}}`), Limits{}, 400, "tool_choice.function.name", "tool_choice.function.name: required field is missing"},
		{"tool_choice no function", chatBody(`"tool_choice":{"type":"function"}`), Limits{}, 400, "tool_choice.function", "tool_choice.function: required field is missing"},
		{"tool_choice unknown tool", chatBody(`"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}`), Limits{}, 400, "tool_choice.function.name", `tool_choice.function.name: no tool named "b" in tools`},
		{"parallel_tool_calls string", chatBody(`"parallel_tool_calls":"no"`), Limits{}, 400, "parallel_tool_calls", "parallel_tool_calls: expected boolean, got string"},

		// response_format.
		{"response_format string", chatBody(`"response_format":"json"`), Limits{}, 400, "response_format", "response_format: expected object, got string"},
		{"response_format no type", chatBody(`"response_format":{}`), Limits{}, 400, "response_format.type", "response_format.type: required field is missing"},
		{"response_format bad type", chatBody(`"response_format":{"type":"xml"}`), Limits{}, 400, "response_format.type", `response_format.type: expected "text", "json_object" or "json_schema", got "xml"`},
		{"json_schema missing", chatBody(`"response_format":{"type":"json_schema"}`), Limits{}, 400, "response_format.json_schema", `response_format.json_schema: required when type is "json_schema"`},
		{"json_schema on text", chatBody(`"response_format":{"type":"text","json_schema":{"name":"a"}}`), Limits{}, 400, "response_format.json_schema", `response_format.json_schema: only allowed when type is "json_schema"`},
		{"json_schema no name", chatBody(`"response_format":{"type":"json_schema","json_schema":{"schema":{}}}`), Limits{}, 400, "response_format.json_schema.name", "response_format.json_schema.name: required field is missing"},
		{"json_schema schema array", chatBody(`"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":[]}}`), Limits{}, 400, "response_format.json_schema.schema", "response_format.json_schema.schema: expected object, got array"},
		{"json_schema too big", chatBody(`"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":` + big + `}}`), Limits{MaxSchemaBytes: 100}, 400, "response_format.json_schema.schema", "response_format.json_schema.schema: schema is 234 bytes, more than the limit of 100"},

		// Extensions and newer fields.
		{"conversation_id number", chatBody(`"conversation_id":5`), Limits{}, 400, "conversation_id", "conversation_id: expected string, got number"},
		{"use_cache string", chatBody(`"use_cache":"true"`), Limits{}, 400, "use_cache", "use_cache: expected boolean, got string"},
		{"user number", chatBody(`"user":1`), Limits{}, 400, "user", "user: expected string, got number"},
		{"store string", chatBody(`"store":"yes"`), Limits{}, 400, "store", "store: expected boolean, got string"},
		{"metadata value", chatBody(`"metadata":{"k":1}`), Limits{}, 400, "metadata.k", "metadata.k: expected string, got number"},
		{"modalities string", chatBody(`"modalities":"text"`), Limits{}, 400, "modalities", "modalities: expected array, got string"},
		{"reasoning_effort number", chatBody(`"reasoning_effort":1`), Limits{}, 400, "reasoning_effort", "reasoning_effort: expected string, got number"},
		{"prediction string", chatBody(`"prediction":"x"`), Limits{}, 400, "prediction", "prediction: expected object, got string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, e := DecodeChatRequest(strings.NewReader(tt.body), tt.limits)
			if e == nil {
				t.Fatalf("decoded %+v, want error", req)
			}
			if req != nil {
				t.Errorf("got a request alongside the error")
			}
			if e.Status != tt.status || e.Message != tt.msg || paramOf(e) != tt.param {
				t.Errorf("got  %d %q param %q\nwant %d %q param %q", e.Status, e.Message, paramOf(e), tt.status, tt.msg, tt.param)
			}
			if e.Type != TypeInvalidRequest {
				t.Errorf("type %q, want %q", e.Type, TypeInvalidRequest)
			}
		})
	}
}

// TestDecodeMaxBytesReader checks that the handler's http.MaxBytesReader
// limit becomes a 413, not a generic read error.
func TestDecodeMaxBytesReader(t *testing.T) {
	body := chatBody(`"user":"` + strings.Repeat("u", 100) + `"`)
	rec := httptest.NewRecorder()
	r := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(body)), 50)
	_, e := DecodeChatRequest(r, Limits{})
	if e == nil || e.Status != http.StatusRequestEntityTooLarge || e.Message != "request body exceeds the limit of 50 bytes" {
		t.Fatalf("got %v, want 413 at 50 bytes", e)
	}
	if e.Code == nil || *e.Code != "request_too_large" {
		t.Errorf("code %v, want request_too_large", e.Code)
	}
	_, e = DecodeCompletionRequest(http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(body)), 50), Limits{})
	if e == nil || e.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("completions: got %v, want 413", e)
	}
}

func TestDecodeReadError(t *testing.T) {
	_, e := DecodeChatRequest(errReader{}, Limits{})
	if e == nil || e.Status != 400 || e.Message != "could not read request body" {
		t.Fatalf("got %v", e)
	}
	_, e = DecodeChatRequest(nil, Limits{})
	if e == nil || e.Status != 400 || e.Message != "request body is empty" {
		t.Fatalf("nil reader: got %v", e)
	}
}

func TestDecodeChatRequestFull(t *testing.T) {
	body := `{
	  "model": "mlx-community/Qwen3-0.6B-4bit",
	  "messages": [
	    {"role": "system", "content": "Be brief."},
	    {"role": "developer", "content": [{"type": "text", "text": "Rule 1"}, {"type": "text", "text": "Rule 2"}]},
	    {"content": "Weather in Paris?", "role": "user", "name": "ann"},
	    {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]},
	    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"c\"}"}}]},
	    {"role": "tool", "tool_call_id": "call_1", "content": "21C", "name": "get_weather"},
	    {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}], "reasoning_content": "hmm"}
	  ],
	  "temperature": 0, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
	  "frequency_penalty": -2, "presence_penalty": 2, "repetition_penalty": 1.1,
	  "logit_bias": {"50256": -100, "13": 2.5},
	  "logprobs": true, "top_logprobs": 20,
	  "max_tokens": 64, "max_completion_tokens": 64.0, "n": 2, "seed": -9007199254740993,
	  "stop": "\n\n", "stream": true, "stream_options": {"include_usage": true},
	  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d", "strict": true,
	     "parameters": {"type": "object", "required": ["city"], "properties": {"unit": {"type": "string"}, "city": {"type": "string"}}}}}],
	  "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
	  "parallel_tool_calls": false, "user": "u-1",
	  "response_format": {"type": "json_schema", "json_schema": {"name": "out", "strict": true, "schema": {"z": 1, "a": 2}}},
	  "conversation_id": "chat-12345", "use_cache": false,
	  "reasoning_effort": "low", "store": false, "metadata": {"k": "v"}, "service_tier": "auto",
	  "modalities": ["text"], "verbosity": "low", "prompt_cache_key": "p", "safety_identifier": "s",
	  "prediction": {"type": "content", "content": "x"}, "audio": {"voice": "v", "format": "wav"},
	  "web_search_options": {}, "functions": [], "function_call": "auto", "chat_template_kwargs": {"enable_thinking": false},
	  "suffix": null
	}`
	// suffix is not a chat field even when null.
	if _, e := DecodeChatRequest(strings.NewReader(body), Limits{}); e == nil || paramOf(e) != "suffix" {
		t.Fatalf("suffix: got %v, want unknown-field error", e)
	}
	body = strings.Replace(body, `,
	  "suffix": null`, "", 1)
	r, e := DecodeChatRequest(strings.NewReader(body), Limits{})
	if e != nil {
		t.Fatal(e)
	}
	if r.Model != "mlx-community/Qwen3-0.6B-4bit" || len(r.Messages) != 7 {
		t.Fatalf("model %q, %d messages", r.Model, len(r.Messages))
	}
	if m := r.Messages[1]; m.Role != RoleDeveloper || m.Content != "" || len(m.Parts) != 2 || m.Text() != "Rule 1\nRule 2" {
		t.Errorf("developer message: %+v text %q", m, m.Text())
	}
	if m := r.Messages[2]; m.Role != RoleUser || m.Content != "Weather in Paris?" || m.Name != "ann" || m.Text() != m.Content || !m.HasContent {
		t.Errorf("user message: %+v", m)
	}
	if p := r.Messages[3].Parts[1]; p.Type != PartImageURL || string(p.Raw) != `{"type": "image_url", "image_url": {"url": "http://x/y.png"}}` {
		t.Errorf("image part: %+v raw %s", p, p.Raw)
	}
	if r.Messages[3].Text() != "look" {
		t.Errorf("text of mixed parts: %q", r.Messages[3].Text())
	}
	m := r.Messages[4]
	if m.HasContent || len(m.ToolCalls) != 1 {
		t.Fatalf("assistant tool message: %+v", m)
	}
	if tc := m.ToolCalls[0]; tc.ID != "call_1" || tc.Type != "function" || tc.Function.Name != "get_weather" || tc.Function.Arguments != `{"city":"Paris","unit":"c"}` {
		t.Errorf("tool call: %+v", tc)
	}
	if m := r.Messages[5]; m.ToolCallID != "call_1" || m.Content != "21C" || m.Name != "get_weather" {
		t.Errorf("tool message: %+v", m)
	}
	if p := r.Messages[6].Parts[0]; p.Type != PartRefusal || p.Text != "no" || r.Messages[6].Text() != "" || r.Messages[6].ReasoningContent != "hmm" {
		t.Errorf("refusal part: %+v", p)
	}
	s := r.Sampling
	if *s.Temperature != 0 || *s.TopP != 0.9 || *s.TopK != 40 || *s.MinP != 0.05 || *s.FrequencyPenalty != -2 ||
		*s.PresencePenalty != 2 || *s.RepetitionPenalty != 1.1 || *s.Seed != -9007199254740993 {
		t.Errorf("sampling: %+v", s)
	}
	if len(s.LogitBias) != 2 || s.LogitBias[50256] != -100 || s.LogitBias[13] != 2.5 {
		t.Errorf("logit_bias: %v", s.LogitBias)
	}
	if len(s.Stop) != 1 || s.Stop[0] != "\n\n" {
		t.Errorf("stop: %q", s.Stop)
	}
	if !r.Logprobs || *r.TopLogprobs != 20 || *r.N != 2 || r.Choices() != 2 {
		t.Errorf("logprobs/n: %v %v %v", r.Logprobs, *r.TopLogprobs, *r.N)
	}
	if n, ok := r.MaxOutputTokens(); !ok || n != 64 {
		t.Errorf("MaxOutputTokens = %d, %v", n, ok)
	}
	if !r.Stream || !r.IncludeUsage() {
		t.Errorf("stream %v include_usage %v", r.Stream, r.IncludeUsage())
	}
	if len(r.Tools) != 1 {
		t.Fatalf("tools: %+v", r.Tools)
	}
	fn := r.Tools[0].Function
	// Key order of the schema survives (properties: unit before city), compacted.
	if fn.Name != "get_weather" || fn.Description != "d" || !*fn.Strict ||
		string(fn.Parameters) != `{"type":"object","required":["city"],"properties":{"unit":{"type":"string"},"city":{"type":"string"}}}` {
		t.Errorf("function: %+v params %s", fn, fn.Parameters)
	}
	if *r.ToolChoice != (ToolChoice{Mode: ToolChoiceFunction, Function: "get_weather"}) || r.ToolChoice.String() != "function:get_weather" {
		t.Errorf("tool_choice: %+v", r.ToolChoice)
	}
	if *r.ParallelToolCalls || r.User != "u-1" {
		t.Errorf("parallel_tool_calls/user")
	}
	rf := r.ResponseFormat
	if rf.Type != FormatJSONSchema || rf.JSONSchema.Name != "out" || !*rf.JSONSchema.Strict || string(rf.JSONSchema.Schema) != `{"z":1,"a":2}` {
		t.Errorf("response_format: %+v schema %s", rf, rf.JSONSchema.Schema)
	}
	if r.ConversationID != "chat-12345" || *r.UseCache {
		t.Errorf("extensions: %q %v", r.ConversationID, *r.UseCache)
	}
	if r.ReasoningEffort != "low" || *r.Store || r.Metadata["k"] != "v" || r.ServiceTier != "auto" ||
		len(r.Modalities) != 1 || r.Verbosity != "low" || r.PromptCacheKey != "p" || r.SafetyIdentifier != "s" ||
		string(r.Prediction) != `{"type": "content", "content": "x"}` || r.Audio == nil || r.WebSearchOptions == nil ||
		string(r.Functions) != "[]" || string(r.FunctionCall) != `"auto"` || string(r.ChatTemplateKwargs) != `{"enable_thinking": false}` {
		t.Errorf("newer fields: %+v", r)
	}
	for _, f := range []string{"reasoning_effort", "store", "function_call", "model"} {
		if !r.Has(f) {
			t.Errorf("Has(%q) = false", f)
		}
	}
	if r.Has("temprature") || r.Has("suffix") {
		t.Errorf("Has reports absent fields")
	}
	if got := r.Fields(); len(got) != 40 || got[0] != "model" || got[1] != "messages" {
		t.Errorf("Fields() = %d %v", len(got), got)
	}
}

func TestDecodeChatRequestMinimal(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":""}],"temperature":null,"tools":null,"stop":["a","b","c","d"],"stream_options":null,"n":1e0}`
	r, e := DecodeChatRequest(strings.NewReader(body), Limits{})
	if e != nil {
		t.Fatal(e)
	}
	if r.Temperature != nil || r.Tools != nil || r.StreamOptions != nil || r.Has("temperature") {
		t.Errorf("null fields must read as absent: %+v", r)
	}
	if len(r.Stop) != 4 || *r.N != 1 || !r.Messages[0].HasContent {
		t.Errorf("stop %q n %v", r.Stop, *r.N)
	}
	if _, ok := r.MaxOutputTokens(); ok || r.IncludeUsage() || r.Stream {
		t.Errorf("defaults wrong")
	}
	if got := r.Fields(); len(got) != 4 {
		t.Errorf("Fields() = %v", got)
	}
}

func TestDecodeChatToolChoiceModes(t *testing.T) {
	tools := `"tools":[{"type":"function","function":{"name":"a"}}]`
	for _, mode := range []string{"none", "auto", "required"} {
		r, e := DecodeChatRequest(strings.NewReader(chatBody(tools+`,"tool_choice":"`+mode+`"`)), Limits{})
		if e != nil || r.ToolChoice.Mode != mode || r.ToolChoice.String() != mode {
			t.Errorf("%s: %v %+v", mode, e, r)
		}
	}
	// none and auto need no tools.
	for _, mode := range []string{"none", "auto"} {
		if _, e := DecodeChatRequest(strings.NewReader(chatBody(`"tool_choice":"`+mode+`"`)), Limits{}); e != nil {
			t.Errorf("%s without tools: %v", mode, e)
		}
	}
}

func TestDecodeResponseFormats(t *testing.T) {
	for _, typ := range []string{"text", "json_object"} {
		r, e := DecodeChatRequest(strings.NewReader(chatBody(`"response_format":{"type":"`+typ+`"}`)), Limits{})
		if e != nil || r.ResponseFormat.Type != typ || r.ResponseFormat.JSONSchema != nil {
			t.Errorf("%s: %v", typ, e)
		}
	}
	r, e := DecodeChatRequest(strings.NewReader(chatBody(`"response_format":{"type":"json_schema","json_schema":{"name":"x"}}`)), Limits{})
	if e != nil || r.ResponseFormat.JSONSchema.Schema != nil || r.ResponseFormat.JSONSchema.Strict != nil {
		t.Errorf("json_schema without schema: %v", e)
	}
}

// The decoded JSON of an accepted request is reachable without panics for
// values outside the ASCII range and escaped text.
func TestDecodeUnicode(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":"h\u00e9llo \ud83d\ude00 日本"}],"stop":["。"]}`
	r, e := DecodeChatRequest(strings.NewReader(body), Limits{})
	if e != nil {
		t.Fatal(e)
	}
	if r.Messages[0].Content != "héllo 😀 日本" || r.Stop[0] != "。" {
		t.Errorf("content %q stop %q", r.Messages[0].Content, r.Stop)
	}
}
