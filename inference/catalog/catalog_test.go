package catalog

import (
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/hub"
)

func TestEntriesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range models {
		if err := hub.ValidateRepoID(m.ID); err != nil {
			t.Errorf("%s: %v", m.ID, err)
		}
		if seen[m.ID] {
			t.Errorf("%s listed twice", m.ID)
		}
		seen[m.ID] = true
		if !strings.HasPrefix(m.Source, "https://huggingface.co/"+m.ID+"/") {
			t.Errorf("%s: source %s is not the repository's page", m.ID, m.Source)
		}
		if m.WeightBytes <= 0 || !IsCategory(m.Category) || m.Architecture == "" || m.Parameters == "" {
			t.Errorf("%s: incomplete entry %+v", m.ID, m)
		}
		if (m.Format == "GGUF") != (m.File != "") || (m.File != "" && !strings.Contains(m.Source, m.File)) {
			t.Errorf("%s: format %s with file %q", m.ID, m.Format, m.File)
		}
	}
}

func TestFilters(t *testing.T) {
	cases := []struct {
		f    Filter
		want func(Model) bool
	}{
		{Filter{Category: "efficient"}, func(m Model) bool { return m.Category == "efficient" }},
		{Filter{MaxSizeGB: 1}, func(m Model) bool { return m.SizeGB() <= 1 }},
		{Filter{Search: "LLAMA"}, func(m Model) bool { return strings.Contains(strings.ToLower(m.ID), "llama") }},
		{Filter{Search: "gguf", MaxSizeGB: 0.5}, func(m Model) bool { return m.Format == "GGUF" && m.SizeGB() <= 0.5 }},
	}
	for _, c := range cases {
		got := List(c.f)
		if len(got) == 0 {
			t.Errorf("%+v selected nothing", c.f)
		}
		for i, m := range got {
			if !c.want(m) {
				t.Errorf("%+v selected %s", c.f, m.ID)
			}
			if i > 0 && got[i-1].WeightBytes > m.WeightBytes {
				t.Errorf("%+v: not sorted by size", c.f)
			}
		}
	}
	if got := List(Filter{Search: "no-such-model"}); len(got) != 0 {
		t.Errorf("search for nothing gave %v", got)
	}
	if _, ok := Lookup("mlx-community/Llama-3.2-1B-Instruct-4bit"); !ok {
		t.Error("lookup failed")
	}
}

func TestBandwidthAndEstimate(t *testing.T) {
	b := measureBandwidth(2, 8<<20, 2)
	if b.BytesPerSecond <= 0 || b.Threads != 2 {
		t.Fatalf("bandwidth %+v", b)
	}
	e := EstimateSpeed(Bandwidth{BytesPerSecond: 20e9}, 4_000_000_000)
	if e.TokensPerSecond != 5 || !e.IsEstimate || !strings.HasPrefix(e.Method, "estimate") || e.TokensPerSecondM1 != nil {
		t.Fatalf("estimate %+v", e)
	}
	if e := EstimateSpeed(Bandwidth{BytesPerSecond: 20e9}, 0); e.TokensPerSecond != 0 {
		t.Fatalf("zero bytes: %+v", e)
	}
}
