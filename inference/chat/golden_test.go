package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// fixedNow is the clock make_goldens.py gives strftime_now.
var fixedNow = func() time.Time { return time.Date(2025, 3, 7, 9, 5, 3, 0, time.UTC) }

type goldenCases struct {
	Templates map[string]struct {
		BOSToken string `json:"bos_token"`
		EOSToken string `json:"eos_token"`
	} `json:"templates"`
	Tools         []json.RawMessage `json:"tools"`
	Conversations map[string]struct {
		Only     []string                   `json:"only"`
		Tools    bool                       `json:"tools"`
		Kwargs   map[string]json.RawMessage `json:"kwargs"`
		Messages json.RawMessage            `json:"messages"`
	} `json:"conversations"`
}

type golden struct {
	Rendered  *string `json:"rendered"`
	Error     string  `json:"error"`
	ErrorType string  `json:"error_type"`
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

// stringifyArguments re-encodes tool-call arguments as OpenAI sends them: a
// JSON string holding the object text (key order kept by RawMessage).
func stringifyArguments(msgs []Message) []Message {
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = m
		if len(m.ToolCalls) == 0 {
			continue
		}
		out[i].ToolCalls = make([]ToolCall, len(m.ToolCalls))
		for j, tc := range m.ToolCalls {
			s, _ := json.Marshal(string(tc.Function.Arguments))
			tc.Function.Arguments = s
			out[i].ToolCalls[j] = tc
		}
	}
	return out
}

// TestGoldenTemplates renders the nine shared templates for every
// conversation in testdata/cases.json and compares with Python Jinja2.
func TestGoldenTemplates(t *testing.T) {
	var cases goldenCases
	readJSON(t, "testdata/cases.json", &cases)
	var goldens map[string]golden
	readJSON(t, "testdata/goldens.json", &goldens)
	dir := testutil.SharedPath(t, "assets", "chat-templates")

	names := make([]string, 0, len(cases.Templates))
	for n := range cases.Templates {
		names = append(names, n)
	}
	sort.Strings(names)
	passed, total := 0, 0
	for _, tname := range names {
		tokens := cases.Templates[tname]
		src, err := os.ReadFile(dir + "/" + tname)
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := Parse(string(src))
		if err != nil {
			t.Fatalf("%s: %v", tname, err)
		}
		tmpl.Now = fixedNow
		for cname, conv := range cases.Conversations {
			if len(conv.Only) > 0 && !slices.Contains(conv.Only, tname) {
				continue
			}
			var msgs []Message
			if err := json.Unmarshal(conv.Messages, &msgs); err != nil {
				t.Fatalf("%s: %v", cname, err)
			}
			variants := map[string][]Message{"": msgs}
			if conv.Tools {
				variants["/string-args"] = stringifyArguments(msgs)
			}
			for _, agp := range []bool{true, false} {
				name := fmt.Sprintf("%s/%s/agp=%v", tname, cname, agp)
				want, ok := goldens[name]
				if !ok {
					t.Errorf("%s: no golden (rerun make_goldens.py)", name)
					continue
				}
				for suffix, m := range variants {
					total++
					in := Input{Messages: m, AddGenerationPrompt: agp, BOSToken: tokens.BOSToken, EOSToken: tokens.EOSToken}
					if conv.Tools {
						in.Tools = cases.Tools
					}
					if len(conv.Kwargs) > 0 {
						in.Kwargs = map[string]any{}
						for k, v := range conv.Kwargs {
							in.Kwargs[k] = v
						}
					}
					if checkGolden(t, name+suffix, tmpl, in, want) {
						passed++
					}
				}
			}
		}
	}
	t.Logf("golden renderings matched: %d/%d", passed, total)
}

func checkGolden(t *testing.T, name string, tmpl *Template, in Input, want golden) bool {
	t.Helper()
	got, err := tmpl.Render(in)
	switch {
	case want.Rendered != nil:
		if err != nil {
			t.Errorf("%s: unexpected error: %v", name, err)
			return false
		}
		if got != *want.Rendered {
			t.Errorf("%s: rendering differs\n got: %q\nwant: %q", name, got, *want.Rendered)
			return false
		}
	case want.ErrorType == "TemplateError":
		var ex *Exception
		if !errors.As(err, &ex) || ex.Message != want.Error {
			t.Errorf("%s: want raise_exception %q, got %v (output %q)", name, want.Error, err, got)
			return false
		}
	default:
		if err == nil || !strings.Contains(err.Error(), want.Error) {
			t.Errorf("%s: want error containing %q, got %v", name, want.Error, err)
			return false
		}
	}
	return true
}
