package jinja

import (
	"errors"
	"strings"
	"testing"
)

func render(t *testing.T, src string, vars map[string]any) (string, error) {
	t.Helper()
	tmpl, err := Parse(src)
	if err != nil {
		return "", err
	}
	return tmpl.Render(vars, Options{Now: fixedNow})
}

func TestGenerationTag(t *testing.T) {
	got, err := render(t, "{% generation %}kept{% endgeneration %}", nil)
	if err != nil || got != "kept" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestParseErrors(t *testing.T) {
	bad := map[string]string{
		"unclosed if":      "{% if x %}a",
		"unclosed for":     "{% for x in y %}",
		"stray endif":      "{% endif %}",
		"unclosed var":     "{{ x ",
		"unclosed comment": "{# x",
		"unclosed string":  "{{ 'abc }}",
		"bad token":        "{{ x ? y }}",
		"unknown stmt":     "{% include 'x' %}",
		"empty subscript":  "{{ x[] }}",
		"missing in":       "{% for x y %}{% endfor %}",
		"eof expr":         "{{",
		"kw then pos":      "{{ f(a=1, 2) }}",
	}
	for name, src := range bad {
		if _, err := Parse(src); err == nil {
			t.Errorf("%s: %q parsed without error", name, src)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	bad := map[string]string{
		"unknown filter":   "{{ 1 | nope }}",
		"unknown test":     "{{ 1 is nope }}",
		"call non func":    "{{ 'a'() }}",
		"set non ns":       "{% set x = 1 %}{% set x.a = 2 %}",
		"huge repeat":      "{{ 'ab' * 100000000 }}",
		"tojson undefined": "{{ missing | tojson }}",
		"deep recursion":   "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
		"unpack mismatch":  "{% for a, b in [[1]] %}{% endfor %}",
	}
	for name, src := range bad {
		if _, err := render(t, src, nil); err == nil {
			t.Errorf("%s: %q rendered without error", name, src)
		}
	}
}

func TestExceptionMessage(t *testing.T) {
	_, err := render(t, "{{ raise_exception('Only user roles!') }}", nil)
	var ex *Exception
	if !errors.As(err, &ex) || err.Error() != "Only user roles!" {
		t.Fatalf("got %v", err)
	}
}

func TestFromJSONKeepsOrder(t *testing.T) {
	v, err := FromJSON([]byte(`{"z": 1, "a": {"y": [1, 2.0, 3e2], "b": null}, "z2": "é"}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ToJSON(v, nil, nil, false, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"z": 1, "a": {"y": [1, 2.0, 300.0], "b": null}, "z2": "é"}`
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `[1,]`, `{"a":1} x`, `{1: 2}`, strings.Repeat("[", 600) + strings.Repeat("]", 600)} {
		if _, err := FromJSON([]byte(bad)); err == nil {
			t.Errorf("FromJSON(%.20q) accepted bad input", bad)
		}
	}
}

func TestStrftime(t *testing.T) {
	got := Strftime(fixedNow(), "%d %b %Y|%A|%I%p|%j|%%|%q")
	if want := "07 Mar 2025|Friday|09AM|066|%|%q"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// FuzzTemplate parses and renders arbitrary template text: it may fail but
// must not panic or hang.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"{% for m in messages %}{{ m.role ~ ': ' ~ m.content | trim }}{% endfor %}",
		"{%- if x is defined and x.y[::-1] -%}{{ x | tojson(indent=2) }}{%- endif %}",
		"{% set ns = namespace(a=1) %}{% set ns.a = ns.a * 2 %}{{ ns.a }}",
		"{% macro m(a, b=2) %}{{ a + b }}{% endmacro %}{{ m(1) }}",
		"{{ 'a b'.split() | map('upper') | join(',') }}{# c #}",
		"{{ raise_exception('x') }}",
	} {
		f.Add(s)
	}
	msgs, _ := FromJSON([]byte(`[{"role": "user", "content": "hi"}, {"role": "assistant", "content": null}]`))
	x, _ := FromJSON([]byte(`{"y": [1, "two", {"3": 4.5}]}`))
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := Parse(src)
		if err != nil {
			return
		}
		_, _ = tmpl.Render(map[string]any{"messages": msgs, "x": x}, Options{Now: fixedNow})
	})
}

// FuzzFromJSON decodes arbitrary bytes: what decodes must encode with ToJSON
// to JSON that decodes to the same text again.
func FuzzFromJSON(f *testing.F) {
	for _, s := range []string{`{"a": [1, 2.5, "x"]}`, `[]`, `"\u00e9\ud83e\udd99"`, `1e400`, `-0`, `{"a": {"a": {}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := FromJSON(data)
		if err != nil {
			return
		}
		out, err := ToJSON(v, nil, nil, false, false)
		if err != nil {
			t.Fatalf("ToJSON of decoded %q: %v", data, err)
		}
		if strings.Contains(out, "Infinity") || strings.Contains(out, "NaN") {
			return // Python's json.dumps writes these too; they are not JSON
		}
		v2, err := FromJSON([]byte(out))
		if err != nil {
			t.Fatalf("re-decoding %q: %v", out, err)
		}
		out2, err := ToJSON(v2, nil, nil, false, false)
		if err != nil || out2 != out {
			t.Fatalf("not stable: %q then %q (%v)", out, out2, err)
		}
	})
}
