package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const sampleLlamaJSON = `[
  {"build_commit": "abc", "cpu_info": "Test CPU", "model_type": "qwen2 0.5B Q4_0", "n_threads": 2,
   "n_prompt": 512, "n_gen": 0, "n_depth": 0, "avg_ts": 200.5, "stddev_ts": 1.5},
  {"build_commit": "abc", "cpu_info": "Test CPU", "model_type": "qwen2 0.5B Q4_0", "n_threads": 2,
   "n_prompt": 0, "n_gen": 128, "n_depth": 0, "avg_ts": 40, "stddev_ts": 0.5}
]`

func TestParseLlamaBench(t *testing.T) {
	rows, err := ParseLlamaBench([]byte(sampleLlamaJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].NPrompt != 512 || rows[1].NGen != 128 || rows[1].AvgTS != 40 || rows[0].Threads != 2 {
		t.Fatalf("rows %+v", rows)
	}
}

func TestParseLlamaBenchBadInput(t *testing.T) {
	for _, tc := range []struct{ in, wants string }{
		{``, "llama-bench output"},
		{`{}`, "llama-bench output"},
		{`[]`, "no tests"},
		{`[{"n_threads": 0, "n_prompt": 512, "avg_ts": 1}]`, "threads 0"},
		{`[{"n_threads": 1, "n_prompt": 512, "n_gen": 128, "avg_ts": 1}]`, "mixes"},
		{`[{"n_threads": 1, "n_prompt": 0, "n_gen": 0, "avg_ts": 1}]`, "lacks"},
		{`[{"n_threads": 1, "n_prompt": 512, "avg_ts": 0}]`, "avg_ts"},
		{`[{"n_threads": 1, "n_prompt": -5, "avg_ts": 3}]`, "n_prompt -5"},
		{`[{"n_threads": "two"}]`, "llama-bench output"},
	} {
		if _, err := ParseLlamaBench([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("%q: error %v, want it to mention %q", tc.in, err, tc.wants)
		}
	}
}

func FuzzParseLlamaBench(f *testing.F) {
	f.Add([]byte(sampleLlamaJSON))
	f.Add([]byte(`[{"n_threads": 1, "n_prompt": 1, "avg_ts": 1e308}]`))
	f.Add([]byte(`[null]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ParseLlamaBench(data)
		if err == nil && len(rows) == 0 {
			t.Fatal("no error and no rows")
		}
	})
}

func TestLlamaBenchMissingBinary(t *testing.T) {
	gguf := filepath.Join(t.TempDir(), "m.gguf")
	os.WriteFile(gguf, []byte("GGUF"), 0o644)
	_, err := LlamaBench(filepath.Join(t.TempDir(), "llama-bench"), gguf, []int{1}, 512, 128, 1)
	if err == nil || !strings.Contains(err.Error(), "llama-bench binary") {
		t.Errorf("missing binary: %v", err)
	}
	_, err = LlamaBench("/bin/sh", filepath.Join(t.TempDir(), "none.gguf"), []int{1}, 512, 128, 1)
	if err == nil || !strings.Contains(err.Error(), "llama-bench model") {
		t.Errorf("missing gguf: %v", err)
	}
}

// TestLlamaBenchFake runs a stand-in script that checks the arguments and
// prints llama-bench's JSON, then attaches the figures to a result.
func TestLlamaBenchFake(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell script")
	}
	dir := t.TempDir()
	gguf := filepath.Join(dir, "m.gguf")
	os.WriteFile(gguf, []byte("GGUF"), 0o644)
	script := "#!/bin/sh\n" +
		"[ \"$*\" = \"-m " + gguf + " -p 512 -n 128 -t 2 -r 3 -o json\" ] || { echo \"bad args: $*\" >&2; exit 1; }\n" +
		"cat <<'JSON'\n" + sampleLlamaJSON + "\nJSON\n"
	bin := filepath.Join(dir, "llama-bench")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	rows, err := LlamaBench(bin, gguf, []int{2}, 512, 128, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LlamaBench(bin, gguf, []int{1}, 512, 128, 3); err == nil || !strings.Contains(err.Error(), "bad args") {
		t.Errorf("failing binary: %v", err)
	}
	res := Result{PromptLen: 512, DecodeLen: 128, Repeats: 3, Rows: []Row{
		{Threads: 2, Test: Prefill, Batch: 1, Tokens: 512, TPS: 100, Min: 90, Max: 110},
		{Threads: 2, Test: Decode, Batch: 1, Tokens: 128, TPS: 20, Min: 19, Max: 21},
		{Threads: 2, Test: Decode, Batch: 4, Tokens: 512, TPS: 60, Min: 59, Max: 61},
		{Threads: 1, Test: Decode, Batch: 1, Tokens: 128, TPS: 12, Min: 11, Max: 13},
	}}
	res.AttachLlamaBench(rows)
	got := []float64{res.Rows[0].LlamaTPS, res.Rows[1].LlamaTPS, res.Rows[2].LlamaTPS, res.Rows[3].LlamaTPS}
	if got[0] != 200.5 || got[1] != 40 || got[2] != 0 || got[3] != 0 {
		t.Errorf("attached %v, want [200.5 40 0 0]", got)
	}
	table := res.String()
	if !strings.Contains(table, "0.50") || !strings.Contains(table, "llama.cpp t/s") {
		t.Errorf("table lacks the ratio:\n%s", table)
	}
}
