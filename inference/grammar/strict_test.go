package grammar

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckStrictSchema(t *testing.T) {
	cases := []struct {
		schema, err string // err: "" when valid, else a substring of the error
	}{
		{`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`, ""},
		{`{"type":"object","properties":{},"additionalProperties":false}`, ""},
		{`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`, `missing "a"`},
		{`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`, "additionalProperties"},
		{`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":true}`, "additionalProperties"},
		{`{"type":"array","items":{"type":"string"}}`, `type "object"`},
		{`[1,2]`, "JSON object"},
		{`{"type":"object"`, "not valid JSON"},
		// Nested objects are checked too: under properties, items, anyOf and $defs.
		{`{"type":"object","properties":{"o":{"type":"object","properties":{"b":{"type":"integer"}}}},"required":["o"],"additionalProperties":false}`, "#/properties/o"},
		{`{"type":"object","properties":{"l":{"type":"array","items":{"type":"object","properties":{"b":{"type":"integer"}},"additionalProperties":false}}},"required":["l"],"additionalProperties":false}`, "#/properties/l/items"},
		{`{"type":"object","properties":{"u":{"anyOf":[{"type":"string"},{"type":["object","null"],"properties":{}}]}},"required":["u"],"additionalProperties":false}`, "#/properties/u/anyOf/1"},
		{`{"type":"object","properties":{"r":{"$ref":"#/$defs/n"}},"required":["r"],"additionalProperties":false,"$defs":{"n":{"type":"object","properties":{"x":{"type":"string"}},"required":["x"]}}}`, "#/$defs/n"},
	}
	for _, c := range cases {
		err := CheckStrictSchema(json.RawMessage(c.schema))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.schema, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: got %v, want an error mentioning %q", c.schema, err, c.err)
		}
	}
}

func FuzzCheckStrictSchema(f *testing.F) {
	f.Add(`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`)
	f.Add(`{"type":"object","properties":{"o":{"items":{"anyOf":[{"properties":{"x":{}}}]}}}}`)
	f.Add(`{"type":["object"],"properties":7,"required":"a"}`)
	f.Fuzz(func(t *testing.T, s string) {
		_ = CheckStrictSchema(json.RawMessage(s)) // must not panic
	})
}
