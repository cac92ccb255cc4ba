package manage

import (
	"strings"
	"testing"

	"github.com/impetusllm/impetus/caddymodule/pool"
)

func TestDecodePerformanceMode(t *testing.T) {
	for _, tc := range []struct{ body, mode, msg string }{
		{`{"mode":"efficiency"}`, "efficiency", ""},
		{` {"mode":"performance"} `, "performance", ""},
		{`{"mode":"turbo"}`, "", "invalid performance mode"},
		{`{"mode":null}`, "", "invalid performance mode"},
		{`{"mode":1}`, "", "invalid request body"},
		{`{"mode":"balanced","extra":true}`, "", "invalid request body"},
		{`{"mode":"balanced"} {}`, "", "invalid request body"},
		{`[]`, "", "invalid request body"},
		{``, "", "invalid request body"},
		{`{"mode":"balanced"` + strings.Repeat(" ", 5000) + `}`, "", "invalid request body"},
	} {
		mode, msg, _ := decodePerformanceMode(strings.NewReader(tc.body))
		if mode != tc.mode || msg != tc.msg {
			t.Errorf("%.40q: mode %q msg %q; want %q %q", tc.body, mode, msg, tc.mode, tc.msg)
		}
	}
}

func FuzzDecodePerformanceMode(f *testing.F) {
	f.Add(`{"mode":"efficiency"}`)
	f.Add(`{"mode":"x"}`)
	f.Add(`{`)
	f.Fuzz(func(t *testing.T, body string) {
		mode, msg, _ := decodePerformanceMode(strings.NewReader(body))
		switch mode {
		case "":
			if msg == "" {
				t.Fatal("refused without a message")
			}
		case pool.ModeEfficiency, pool.ModeBalanced, pool.ModePerformance:
		default:
			t.Fatalf("accepted mode %q", mode)
		}
	})
}
