package manage

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
)

// specDoc is the parsed OpenAPI document.
func specDoc(t *testing.T) map[string]any {
	t.Helper()
	raw, err := openAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// responseSchema finds the JSON schema of one documented response.
func responseSchema(t *testing.T, doc map[string]any, method, path string, status int) map[string]any {
	t.Helper()
	op, _ := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if op == nil {
		t.Fatalf("%s %s not documented", method, path)
	}
	resp, _ := op["responses"].(map[string]any)[fmt.Sprint(status)].(map[string]any)
	if resp == nil {
		t.Fatalf("%s %s: status %d not documented", method, path, status)
	}
	schema, _ := resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	if schema == nil {
		t.Fatalf("%s %s %d: no JSON schema", method, path, status)
	}
	return schema
}

// checkSchema validates v (decoded JSON) against a schema of the document,
// strictly: an object member the schema does not declare is an error, so a
// body key missing from the spec fails the test.
func checkSchema(doc map[string]any, schema map[string]any, v any, at string) []string {
	if ref, ok := schema["$ref"].(string); ok {
		name := ref[strings.LastIndex(ref, "/")+1:]
		target, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
		if target == nil {
			return []string{at + ": unresolved " + ref}
		}
		return checkSchema(doc, target, v, at)
	}
	if alts, ok := schema["anyOf"].([]any); ok {
		var all []string
		for _, a := range alts {
			errs := checkSchema(doc, a.(map[string]any), v, at)
			if len(errs) == 0 {
				return nil
			}
			all = append(all, errs...)
		}
		return []string{fmt.Sprintf("%s: matches no alternative (%s)", at, strings.Join(all, "; "))}
	}
	if c, ok := schema["const"]; ok && fmt.Sprint(c) != fmt.Sprint(v) {
		return []string{fmt.Sprintf("%s: %v, want const %v", at, v, c)}
	}
	if e, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return fmt.Sprint(x) == fmt.Sprint(v) }) {
		return []string{fmt.Sprintf("%s: %v not in %v", at, v, e)}
	}
	if typ, ok := schema["type"]; ok {
		types := []string{}
		switch tt := typ.(type) {
		case string:
			types = append(types, tt)
		case []any:
			for _, x := range tt {
				types = append(types, x.(string))
			}
		}
		if !slices.Contains(types, jsonType(v)) && !(jsonType(v) == "integer" && slices.Contains(types, "number")) {
			return []string{fmt.Sprintf("%s: %s, want %v", at, jsonType(v), types)}
		}
	}
	var errs []string
	switch x := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		req, _ := schema["required"].([]any)
		for _, r := range req {
			if _, ok := x[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: missing required %s", at, r))
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, checkSchema(doc, ps, x[k], at+"."+k)...)
			} else if ap, ok := schema["additionalProperties"].(map[string]any); ok {
				errs = append(errs, checkSchema(doc, ap, x[k], at+"."+k)...)
			} else if props != nil && schema["additionalProperties"] != true {
				errs = append(errs, fmt.Sprintf("%s: undocumented member %q", at, k))
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range x {
				errs = append(errs, checkSchema(doc, items, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// mustMatch validates a raw JSON body against a documented response.
func mustMatch(t *testing.T, doc map[string]any, method, path string, status int, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, body)
	}
	if errs := checkSchema(doc, responseSchema(t, doc, method, path, status), v, "body"); len(errs) > 0 {
		t.Errorf("%s %s %d does not match the spec:\n%s", method, path, status, strings.Join(errs, "\n"))
	}
}
