package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeEmbeddingRequestErrors(t *testing.T) {
	many := `["a"` + strings.Repeat(`,"a"`, MaxEmbeddingInputs) + `]`
	tests := []struct {
		name  string
		body  string
		param string
		msg   string
	}{
		{"model missing", `{"input":"x"}`, "model", "model: required field is missing"},
		{"model empty", `{"model":"","input":"x"}`, "model", "model: must not be empty"},
		{"input missing", `{"model":"m"}`, "input", "input: required field is missing"},
		{"input null", `{"model":"m","input":null}`, "input", "input: required field is missing"},
		{"input number", `{"model":"m","input":5}`, "input", "input: expected string, array of strings, array of token ids or array of token-id arrays, got number"},
		{"input empty string", `{"model":"m","input":""}`, "input", "input: must not be an empty string"},
		{"input empty array", `{"model":"m","input":[]}`, "input", "input: must not be empty"},
		{"input empty string in array", `{"model":"m","input":["a",""]}`, "input[1]", "input[1]: must not be an empty string"},
		{"input empty token list", `{"model":"m","input":[[1],[]]}`, "input[1]", "input[1]: token-id array must not be empty"},
		{"input mixed", `{"model":"m","input":["a",[1]]}`, "input[1]", "input[1]: expected string like the first element, got array"},
		{"input bool", `{"model":"m","input":[true]}`, "input[0]", "input[0]: expected string, token id or array of token ids, got boolean"},
		{"input negative token", `{"model":"m","input":[1,-2]}`, "input[1]", "input[1]: must be an integer between 0 and 2147483647, got -2"},
		{"too many inputs", `{"model":"m","input":` + many + `}`, "input", "input: at most 2048 inputs are allowed, got 2049"},
		{"encoding_format", `{"model":"m","input":"x","encoding_format":"int8"}`, "encoding_format", `encoding_format: must be "float" or "base64", got "int8"`},
		{"encoding_format number", `{"model":"m","input":"x","encoding_format":1}`, "encoding_format", "encoding_format: expected string, got number"},
		{"dimensions zero", `{"model":"m","input":"x","dimensions":0}`, "dimensions", "dimensions: must be an integer between 1 and 1048576, got 0"},
		{"dimensions string", `{"model":"m","input":"x","dimensions":"8"}`, "dimensions", "dimensions: expected integer, got string"},
		{"chat field", `{"model":"m","input":"x","messages":[]}`, "messages", "unrecognized request argument supplied: messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, e := DecodeEmbeddingRequest(strings.NewReader(tt.body), Limits{})
			if e == nil {
				t.Fatalf("decoded %+v, want error", req)
			}
			if e.Status != 400 || e.Message != tt.msg || paramOf(e) != tt.param {
				t.Errorf("got  %d %q param %q\nwant 400 %q param %q", e.Status, e.Message, paramOf(e), tt.msg, tt.param)
			}
		})
	}
}

func TestDecodeEmbeddingInputs(t *testing.T) {
	tests := []struct {
		input string
		want  Prompt
	}{
		{`"hello"`, Prompt{Texts: []string{"hello"}}},
		{`["a","b"]`, Prompt{Texts: []string{"a", "b"}}},
		{`[1,2,3]`, Prompt{Tokens: [][]int{{1, 2, 3}}}},
		{`[[1],[2,3]]`, Prompt{Tokens: [][]int{{1}, {2, 3}}}},
	}
	for _, tt := range tests {
		r, e := DecodeEmbeddingRequest(strings.NewReader(`{"model":"m","input":`+tt.input+`}`), Limits{})
		if e != nil {
			t.Errorf("%s: %v", tt.input, e)
			continue
		}
		if !reflect.DeepEqual(r.Input, tt.want) || r.EncodingFormat != EncodingFloat || r.Dimensions != 0 {
			t.Errorf("%s: got %+v", tt.input, r)
		}
	}
	r, e := DecodeEmbeddingRequest(strings.NewReader(`{"model":"m","input":"x","encoding_format":"base64","dimensions":8,"user":"u"}`), Limits{})
	if e != nil || r.EncodingFormat != EncodingBase64 || r.Dimensions != 8 || r.User != "u" {
		t.Errorf("full: %v %+v", e, r)
	}
}

func TestEmbeddingListJSON(t *testing.T) {
	vecs := [][]float32{{0.5, -1.25}, {float32(math.Pi), 0}}
	b, err := json.Marshal(EmbeddingList{Model: "m", Vectors: vecs, PromptTokens: 7})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1.25]},{"object":"embedding","index":1,"embedding":[3.1415927,0]}],"model":"m","usage":{"prompt_tokens":7,"total_tokens":7}}`
	if string(b) != want {
		t.Errorf("float:\n got %s\nwant %s", b, want)
	}
	b, err = json.Marshal(EmbeddingList{Model: "m", Vectors: vecs, Base64: true, PromptTokens: 7})
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Data []struct {
			Index     int    `json:"index"`
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for i, d := range out.Data {
		// Decode as the SDKs do: base64 → bytes → little-endian float32.
		raw, err := base64.StdEncoding.DecodeString(d.Embedding)
		if err != nil || d.Index != i {
			t.Fatalf("item %d: %v", i, err)
		}
		got := make([]float32, len(raw)/4)
		if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, vecs[i]) {
			t.Errorf("base64 item %d: %v, want %v", i, got, vecs[i])
		}
	}
}

var embeddingSeeds = []string{
	`{"model":"m","input":"hello"}`,
	`{"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":4,"user":"u"}`,
	`{"model":"m","input":[1,2,3]}`,
	`{"model":"m","input":[[1],[2,3]],"encoding_format":"float"}`,
	`{"model":"m","input":""}`, `{"model":"m","input":[[]]}`, `{"model":"m","input":["a",1]}`,
	`{"model":1e400}`, `[]`, `{`, "\xff", ``,
}

func FuzzDecodeEmbeddingRequest(f *testing.F) {
	for _, s := range embeddingSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := DecodeEmbeddingRequest(bytes.NewReader(body), fuzzLimits)
		checkDecodeResult(t, req != nil, e)
		if req == nil {
			return
		}
		n := req.Input.Len()
		if req.Model == "" || n == 0 || n > MaxEmbeddingInputs || (len(req.Input.Texts) > 0) == (len(req.Input.Tokens) > 0) {
			t.Fatalf("accepted invalid request: %+v", req)
		}
		for _, s := range req.Input.Texts {
			if s == "" {
				t.Fatal("accepted an empty string")
			}
		}
		for _, ids := range req.Input.Tokens {
			if len(ids) == 0 {
				t.Fatal("accepted an empty token list")
			}
		}
		if req.EncodingFormat != EncodingFloat && req.EncodingFormat != EncodingBase64 {
			t.Fatalf("encoding_format %q", req.EncodingFormat)
		}
	})
}
