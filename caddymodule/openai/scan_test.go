package openai

import (
	"bytes"
	"encoding/json"
	"testing"
)

// referenceMembers splits an object with encoding/json's token decoder.
func referenceMembers(t *testing.T, raw []byte) []member {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, member{tok.(string), v})
	}
	return out
}

func compact(t *testing.T, raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("compact %q: %v", raw, err)
	}
	return b.String()
}

// checkSplit compares the splitter with encoding/json on valid JSON.
func checkSplit(t *testing.T, data []byte) {
	if !json.Valid(data) {
		return
	}
	switch kindOf(data) {
	case "object":
		got, ok := splitObject(data)
		if !ok {
			t.Fatalf("splitObject rejected valid %q", data)
		}
		want := referenceMembers(t, data)
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, want %d", data, len(got), len(want))
		}
		for i := range got {
			if got[i].key != want[i].key || compact(t, got[i].val) != compact(t, want[i].val) {
				t.Fatalf("%q member %d: got %q=%s, want %q=%s", data, i, got[i].key, got[i].val, want[i].key, want[i].val)
			}
			checkSplit(t, got[i].val)
		}
	case "array":
		got, ok := splitArray(data)
		if !ok {
			t.Fatalf("splitArray rejected valid %q", data)
		}
		var want []json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d items, want %d", data, len(got), len(want))
		}
		for i := range got {
			if compact(t, got[i]) != compact(t, want[i]) {
				t.Fatalf("%q item %d: got %s, want %s", data, i, got[i], want[i])
			}
			checkSplit(t, got[i])
		}
	case "string":
		got, ok := unquote(data)
		var want string
		if err := json.Unmarshal(data, &want); err != nil || !ok || got != want {
			t.Fatalf("unquote(%q) = %q %v, want %q", data, got, ok, want)
		}
	}
}

var splitSeeds = []string{
	`{}`, `[]`, ` { "a" : 1 , "b":[1, {"c":"]}"}], "d\"e":"x\\"} `, `[ "a", -1.5e3, true, null, {"k":[[]]} ]`,
	`{"a":"\u00e9\n","b":{"x":{"y":{}}}}`, `"plain"`, `"esc\"aped\\"`, `[{},[],"",0]`,
}

func TestSplitMatchesEncodingJSON(t *testing.T) {
	for _, s := range splitSeeds {
		checkSplit(t, []byte(s))
	}
}

func TestSplitRejectsMalformed(t *testing.T) {
	for _, s := range []string{`{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `[1,]`, `[1 2]`, `[`, `{1:2}`, `"abc`, `["a]`, ``} {
		if _, ok := splitObject([]byte(s)); ok && kindOf([]byte(s)) == "object" && s != `{}` {
			t.Errorf("splitObject accepted %q", s)
		}
		if _, ok := splitArray([]byte(s)); ok {
			t.Errorf("splitArray accepted %q", s)
		}
	}
	if _, ok := unquote([]byte("\"a\x01\"")); ok {
		t.Errorf("unquote accepted a raw control character")
	}
}

// FuzzSplit checks the hand-written splitter against encoding/json on every
// valid JSON input, and that it never panics on invalid input.
func FuzzSplit(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		splitObject(data)
		splitArray(data)
		unquote(data)
		checkSplit(t, data)
	})
}
