package models

import (
	"net/http"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference"
)

func TestCheckFits(t *testing.T) {
	m := inference.LocalModel{ID: "org/big", SizeBytes: 8 << 30}
	need := uint64(inference.EstimateLoadBytes(m))
	cases := []struct {
		avail uint64
		fits  bool
	}{{need, true}, {need + 1, true}, {need - 1, false}, {0, false}}
	for _, c := range cases {
		le := checkFits(m, c.avail)
		if (le == nil) != c.fits {
			t.Errorf("available %d: fits=%v, want %v", c.avail, le == nil, c.fits)
		}
		if le != nil && (le.status != http.StatusInsufficientStorage || !strings.Contains(le.msg, "org/big") || !strings.Contains(le.msg, "available")) {
			t.Errorf("refusal: %d %s", le.status, le.msg)
		}
	}
}

func TestHumanParams(t *testing.T) {
	cases := map[int64]string{494_032_768: "494M", 1_235_814_400: "1.24B", 7_000_000_000: "7B", 12_345: "12.3K", 7: "7"}
	for n, want := range cases {
		if got := humanParams(n); got != want {
			t.Errorf("%d: %s, want %s", n, got, want)
		}
	}
}
