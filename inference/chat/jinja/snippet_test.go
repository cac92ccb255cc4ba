package jinja

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

var fixedNow = func() time.Time { return time.Date(2025, 3, 7, 9, 5, 3, 0, time.UTC) }

// TestSnippets compares small templates covering the supported Jinja
// subset with Python Jinja2 renderings (testdata/make_snippet_goldens.py).
func TestSnippets(t *testing.T) {
	var snippets [][3]json.RawMessage
	readJSON(t, "testdata/snippets.json", &snippets)
	var goldens map[string]struct {
		Rendered  *string `json:"rendered"`
		Error     string  `json:"error"`
		ErrorType string  `json:"error_type"`
	}
	readJSON(t, "testdata/snippet_goldens.json", &goldens)
	passed := 0
	for _, s := range snippets {
		var name, src string
		if err := json.Unmarshal(s[0], &name); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(s[1], &src); err != nil {
			t.Fatal(err)
		}
		vars := map[string]any{}
		d, err := FromJSON(s[2])
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range d.(*Dict).Keys() {
			vars[k], _ = d.(*Dict).Get(k)
		}
		want, ok := goldens[name]
		if !ok {
			t.Errorf("%s: no golden", name)
			continue
		}
		tmpl, err := Parse(src)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		got, err := tmpl.Render(vars, Options{Now: fixedNow})
		switch {
		case want.Rendered != nil:
			if err != nil {
				t.Errorf("%s: unexpected error %v", name, err)
				continue
			}
			if got != *want.Rendered {
				t.Errorf("%s:\n got %q\nwant %q", name, got, *want.Rendered)
				continue
			}
		case want.ErrorType == "TemplateError":
			var ex *Exception
			if !errors.As(err, &ex) || ex.Message != want.Error {
				t.Errorf("%s: want exception %q, got %v", name, want.Error, err)
				continue
			}
		default:
			if err == nil || !strings.Contains(err.Error(), want.Error) {
				t.Errorf("%s: want error containing %q, got %v (output %q)", name, want.Error, err, got)
				continue
			}
		}
		passed++
	}
	t.Logf("snippets matched: %d/%d", passed, len(snippets))
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
