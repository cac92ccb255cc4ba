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
var benchLine = regexp.MustCompile(`^BENCH model=\S+ quant=\S+ threads=\d+ test=(pp|tg)\d+(x\d+)?(@d\d+)? impetus=[0-9.]+ llamacpp=([0-9.]+|-) ratio=([0-9.]+|-)( level=\w+)?( bw=[0-9.]+ ceiling=[0-9.]+( kv=\w+)?)?$`)

func TestLineString(t *testing.T) {
	for _, tc := range []struct {
		l    Line
		want string
	}{
		{Line{Model: "qwen0.5b", Quant: "q4_0", Threads: 2, Test: "pp512", Impetus: 250, LlamaCPP: 200},
			"BENCH model=qwen0.5b quant=q4_0 threads=2 test=pp512 impetus=250.00 llamacpp=200.00 ratio=1.25"},
		{Line{Model: "llama1b", Quant: "mlx4", Threads: 1, Test: "tg128x4", Impetus: 12.345},
			"BENCH model=llama1b quant=mlx4 threads=1 test=tg128x4 impetus=12.35 llamacpp=- ratio=-"},
		{Line{Model: "qwen0.5b", Quant: "q4_0", Threads: 2, Test: "tg128@d4096", Impetus: 40, LlamaCPP: 32, Level: "avx512",
			Bandwidth: 31.7e9, Ceiling: 0.5}, "BENCH model=qwen0.5b quant=q4_0 threads=2 test=tg128@d4096 impetus=40.00 llamacpp=32.00 ratio=1.25 level=avx512 bw=31.7 ceiling=0.50"},
		{Line{Model: "qwen0.5b", Quant: "q4_0", Threads: 2, Test: "tg128@d4096", Impetus: 40, Level: "avx512",
			Bandwidth: 31.7e9, Ceiling: 0.5, KV: "q8_0"}, "BENCH model=qwen0.5b quant=q4_0 threads=2 test=tg128@d4096 impetus=40.00 llamacpp=- ratio=- level=avx512 bw=31.7 ceiling=0.50 kv=q8_0"},
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
d=0; prev=
for a in "$@"; do [ "$prev" = -d ] && d=$a; prev=$a; done
cat <<EOF2
[{"n_threads": 1, "n_prompt": 20, "n_gen": 0, "n_depth": $d, "avg_ts": 100},
 {"n_threads": 1, "n_prompt": 0, "n_gen": 3, "n_depth": $d, "avg_ts": 10}]
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

	// At depth: llama-bench gets -d, the tests are named pp20@d7 and tg3@d7.
	out.Reset()
	lines, err = Compare(CompareOptions{Model: "tiny", Candidates: []Candidate{{"q4_0", gg}},
		GGUF: gg, LlamaCPP: llama, Threads: []int{1}, PromptLen: 20, DecodeLen: 3, Repeats: 1, Depth: 7,
		Lines: &out})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Test != "pp20@d7" || lines[1].Test != "tg3@d7" || lines[0].LlamaCPP != 100 || lines[1].LlamaCPP != 10 {
		t.Errorf("depth lines %v", lines)
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !benchLine.MatchString(l) || !strings.Contains(l, " level=") {
			t.Errorf("line %q does not match the BENCH format with a level", l)
		}
	}
	if log, _ := os.ReadFile(calls); !strings.Contains(string(log), "-d 7") {
		t.Errorf("llama-bench got no -d 7:\n%s", log)
	}
	if _, err := Compare(CompareOptions{Model: "tiny", Candidates: []Candidate{{"q4_0", gg}}, Depth: -1}); err == nil {
		t.Error("negative depth accepted")
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

func TestFileQuantAndBandwidth(t *testing.T) {
	root := t.TempDir()
	for _, q := range []string{"q4_0", "q8_0"} {
		gg, _, err := EnsureRandomGGUF(root, tinyGGUFShape, q, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := FileQuant(gg); err != nil || got != q {
			t.Errorf("FileQuant(%s file) = %q, %v", q, got, err)
		}
	}
	dir, _, err := EnsureRandomModel(root, tinyShapes[0], "mlx4", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := FileQuant(dir); err != nil || got != "mlx4" {
		t.Errorf("FileQuant(mlx4 folder) = %q, %v", got, err)
	}
	if _, err := FileQuant(filepath.Join(root, "none")); err == nil {
		t.Error("FileQuant of a missing path: no error")
	}
	if bw := ReadBandwidth(1); !(bw > 1e8) {
		t.Errorf("read bandwidth %.3g bytes/s", bw)
	}
}
