package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// LlamaRow is one test of llama.cpp's llama-bench JSON output.
type LlamaRow struct {
	Threads   int     `json:"n_threads"`
	NPrompt   int     `json:"n_prompt"`
	NGen      int     `json:"n_gen"`
	NDepth    int     `json:"n_depth"`
	AvgTS     float64 `json:"avg_ts"`
	StddevTS  float64 `json:"stddev_ts"`
	ModelType string  `json:"model_type"`
	CPUInfo   string  `json:"cpu_info"`
	Commit    string  `json:"build_commit"`
}

// maxLlamaRows bounds what ParseLlamaBench accepts from a subprocess.
const maxLlamaRows = 10000

// ParseLlamaBench decodes `llama-bench -o json` output: a JSON array of test
// objects. It checks the fields Run's comparison relies on.
func ParseLlamaBench(data []byte) ([]LlamaRow, error) {
	var rows []LlamaRow
	if err := json.Unmarshal(bytes.TrimSpace(data), &rows); err != nil {
		return nil, fmt.Errorf("llama-bench output: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("llama-bench output: no tests")
	}
	if len(rows) > maxLlamaRows {
		return nil, fmt.Errorf("llama-bench output: %d tests, more than %d", len(rows), maxLlamaRows)
	}
	for i, r := range rows {
		if r.Threads < 1 || r.NPrompt < 0 || r.NGen < 0 || r.NDepth < 0 {
			return nil, fmt.Errorf("llama-bench output: test %d has threads %d, n_prompt %d, n_gen %d, n_depth %d", i, r.Threads, r.NPrompt, r.NGen, r.NDepth)
		}
		if (r.NPrompt == 0) == (r.NGen == 0) {
			return nil, fmt.Errorf("llama-bench output: test %d mixes or lacks prompt (%d) and generation (%d) tokens", i, r.NPrompt, r.NGen)
		}
		if math.IsNaN(r.AvgTS) || math.IsInf(r.AvgTS, 0) || r.AvgTS <= 0 {
			return nil, fmt.Errorf("llama-bench output: test %d has avg_ts %v", i, r.AvgTS)
		}
	}
	return rows, nil
}

// LlamaBench runs llama.cpp's llama-bench binary on gguf once per thread count
// with the same prompt and generation lengths (`-p P -n N -t T -r R -o json`)
// and returns its tests.
func LlamaBench(bin, gguf string, threads []int, promptLen, decodeLen, repeats int) ([]LlamaRow, error) {
	path, err := CheckLlamaBench(bin, gguf)
	if err != nil {
		return nil, err
	}
	if len(threads) == 0 {
		return nil, errors.New("llama-bench: no thread counts")
	}
	var all []LlamaRow
	for _, t := range threads {
		args := []string{"-m", gguf, "-p", strconv.Itoa(promptLen), "-n", strconv.Itoa(decodeLen),
			"-t", strconv.Itoa(t), "-r", strconv.Itoa(max(repeats, 1)), "-o", "json"}
		rows, err := runLlamaBench(path, nil, args)
		if err != nil {
			return nil, err
		}
		all = append(all, rows...)
	}
	return all, nil
}

// runLlamaBench runs llama-bench once with args (which must ask for JSON) and
// extra environment env, and parses its output.
func runLlamaBench(path string, env, args []string) ([]LlamaRow, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("llama-bench %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.String(), 5))
	}
	return ParseLlamaBench(stdout.Bytes())
}

// CheckLlamaBench resolves the llama-bench binary and checks the GGUF file
// exists, so a bad path is reported before a long benchmark rather than after.
func CheckLlamaBench(bin, gguf string) (path string, err error) {
	path, err = exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("llama-bench binary %q: %w", bin, err)
	}
	if _, err := os.Stat(gguf); err != nil {
		return "", fmt.Errorf("llama-bench model: %w", err)
	}
	return path, nil
}

// AttachLlamaBench fills LlamaTPS of the single-sequence rows that have a
// llama.cpp test with the same thread count and length (at depth 0).
func (r *Result) AttachLlamaBench(rows []LlamaRow) {
	for i := range r.Rows {
		row := &r.Rows[i]
		if row.Batch != 1 {
			continue
		}
		for _, l := range rows {
			if l.Threads != row.Threads || l.NDepth != 0 {
				continue
			}
			if (row.Test == Prefill && l.NGen == 0 && l.NPrompt == r.PromptLen) ||
				(row.Test == Decode && l.NPrompt == 0 && l.NGen == r.DecodeLen) {
				row.LlamaTPS = l.AvgTS
			}
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
