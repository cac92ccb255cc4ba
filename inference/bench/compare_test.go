package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// benchLine is the format issue 11 asks for.
var benchLine = regexp.MustCompile(`^BENCH model=\S+ quant=\S+ threads=\d+ test=(pp|tg)\d+(x\d+)? impetus=[0-9.]+ llamacpp=([0-9.]+|-) ratio=([0-9.]+|-)$`)

func TestLineString(t *testing.T) {
	for _, tc := range []struct {
		l    Line
		want string
	}{
		{Line{"qwen0.5b", "q4_0", 2, "pp512", 250, 200}, "BENCH model=qwen0.5b quant=q4_0 threads=2 test=pp512 impetus=250.00 llamacpp=200.00 ratio=1.25"},
		{Line{"llama1b", "mlx4", 1, "tg128x4", 12.345, 0}, "BENCH model=llama1b quant=mlx4 threads=1 test=tg128x4 impetus=12.35 llamacpp=- ratio=-"},
	} {
		if got := tc.l.String(); got != tc.want || !benchLine.MatchString(got) {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// fakeLlamaBench writes a script answering like `llama-bench -o json` with
// fixed figures, and logs each call, so Compare's interleaving is checked
// without llama.cpp.
func fakeLlamaBench(t *testing.T) (dir, log string) {
	dir = t.TempDir()
	log = filepath.Join(dir, "calls")
	script := `#!/bin/sh
echo "$@" >> ` + log + `
case "$*" in *--no-warmup*) ;; *) exit 3 ;; esac
cat <<'EOF2'
[{"n_threads": 1, "n_prompt": 20, "n_gen": 0, "n_depth": 0, "avg_ts": 100},
 {"n_threads": 1, "n_prompt": 0, "n_gen": 3, "n_depth": 0, "avg_ts": 10}]
EOF2
`
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "llama-bench"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, log
}

func TestCompare(t *testing.T) {
	root := t.TempDir()
	gg, _, err := EnsureRandomGGUF(root, tinyGGUFShape, "q4_0", 1)
	if err != nil {
		t.Fatal(err)
	}
	mlx := t.TempDir()
	if err := MakeRandomModel(mlx, tinyGGUFShape, "mlx4", 1); err != nil {
		t.Fatal(err)
	}
	llama, calls := fakeLlamaBench(t)
	var out, progress bytes.Buffer
	lines, err := Compare(CompareOptions{Model: "tiny", Candidates: []Candidate{{"q4_0", gg}, {"mlx4", mlx}},
		GGUF: gg, LlamaCPP: llama, Threads: []int{1}, PromptLen: 20, DecodeLen: 3, Repeats: 3, Streams: []int{2},
		Progress: &progress, Lines: &out})
	// Streams against llama.cpp needs llama-server, which the fake folder lacks.
	if err == nil || !strings.Contains(err.Error(), "llama-server") {
		t.Fatalf("missing llama-server: %v", err)
	}
	lines, err = Compare(CompareOptions{Model: "tiny", Candidates: []Candidate{{"q4_0", gg}, {"mlx4", mlx}},
		GGUF: gg, LlamaCPP: llama, Threads: []int{1}, PromptLen: 20, DecodeLen: 3, Repeats: 3,
		Progress: &progress, Lines: &out})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4: %v", len(lines), lines)
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !benchLine.MatchString(l) {
			t.Errorf("line %q does not match the BENCH format", l)
		}
	}
	want := map[string]float64{"pp20": 100, "tg3": 10}
	for _, l := range lines {
		if l.LlamaCPP != want[l.Test] || !(l.Impetus > 0) {
			t.Errorf("line %v: llama.cpp %v, want %v", l, l.LlamaCPP, want[l.Test])
		}
	}
	log, _ := os.ReadFile(calls)
	if n := strings.Count(string(log), "-r 1"); n != 3 {
		t.Errorf("llama-bench ran %d times with -r 1, want 3 (once per repeat):\n%s", n, log)
	}
	if !strings.Contains(string(log), "-p 20 -n 3 -t 1") {
		t.Errorf("llama-bench arguments:\n%s", log)
	}

	// Our figures alone, with aggregate decode of 2 streams.
	out.Reset()
	lines, err = Compare(CompareOptions{Model: "tiny", Candidates: []Candidate{{"q4_0", gg}},
		Threads: []int{1, 2}, PromptLen: 20, DecodeLen: 3, Repeats: 1, Streams: []int{2}, Lines: &out})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 6 || lines[2].Test != "tg3x2" || lines[2].LlamaCPP != 0 || !strings.Contains(out.String(), "llamacpp=- ratio=-") {
		t.Errorf("lines %v", lines)
	}
}

func TestCompareBadOptions(t *testing.T) {
	for _, tc := range []struct {
		o     CompareOptions
		wants string
	}{
		{CompareOptions{}, "no model"},
		{CompareOptions{Candidates: []Candidate{{"q", "x"}}, GGUF: "x"}, "go together"},
		{CompareOptions{Candidates: []Candidate{{"q", "x"}}, Repeats: -1}, "positive"},
		{CompareOptions{Candidates: []Candidate{{"q", "x"}}, Threads: []int{0}}, "thread count"},
		{CompareOptions{Candidates: []Candidate{{"q", "x"}}, GGUF: "x", LlamaCPP: t.TempDir()}, "no llama-bench"},
		{CompareOptions{Candidates: []Candidate{{"q", filepath.Join(t.TempDir(), "none")}}}, "bench:"},
	} {
		if _, err := Compare(tc.o); err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("%+v: error %v, want it to mention %q", tc.o, err, tc.wants)
		}
	}
	if _, err := EnvList("A=1,B"); err == nil {
		t.Error("EnvList accepted an entry without =")
	}
	if env, err := EnvList("LD_PRELOAD=/x.so,A=b=c"); err != nil || len(env) != 2 {
		t.Errorf("EnvList: %v %v", env, err)
	}
}
