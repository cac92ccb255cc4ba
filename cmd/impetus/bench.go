package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/impetusllm/impetus/inference/bench"
)

func init() {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.String("model", "", "model folder to measure")
	fs.String("random", "", "measure random weights of a real shape instead: qwen0.5b or llama1b")
	fs.String("quant", "mlx4", "storage of the random model: mlx4, mlx8 or bf16")
	fs.String("cache", filepath.Join(os.TempDir(), "impetus-bench"), "folder keeping generated random models between runs")
	fs.String("threads", strconv.Itoa(runtime.NumCPU()), "comma-separated kernel thread counts")
	fs.String("batch", "1", "comma-separated numbers of sequences decoded together")
	fs.Int("prompt", 512, "prompt tokens of the prefill test")
	fs.Int("decode", 128, "decode steps of the generation tests")
	fs.Int("repeats", 3, "runs per figure (the median is reported)")
	fs.String("llama-bench", "", "path to llama.cpp's llama-bench binary, to compare on the same thread counts")
	fs.String("gguf", "", "GGUF model for --llama-bench")
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "bench",
		Usage: "--model <dir> | --random qwen0.5b|llama1b [--quant mlx4] [--threads 1,2] [--batch 1,2,4,8] [--prompt 512] [--decode 128] [--repeats 3] [--llama-bench <bin> --gguf <file>]",
		Short: "Measures prefill and decode speed of the inference engine",
		Long: `
Measures the inference engine in tokens per second: prefill of one prompt
(in the scheduler's 512-token chunks), single-stream decode and aggregate
decode of several sequences stepped together, for each thread count; each
figure is the median of --repeats runs.

--random generates a model with random weights of a real shape (kept in
--cache, so later runs start at once) instead of loading --model.
With --llama-bench and --gguf, llama.cpp's llama-bench runs on the same thread
counts and lengths and the table shows the ratio of the two.`,
		Flags: fs,
		Func:  cmdBench,
	})
}

func cmdBench(fl caddycmd.Flags) (int, error) {
	dir, random := fl.String("model"), fl.String("random")
	if (dir == "") == (random == "") {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("bench: give exactly one of --model and --random")
	}
	threads, err := intList(fl.String("threads"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("bench: --threads: %w", err)
	}
	batch, err := intList(fl.String("batch"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("bench: --batch: %w", err)
	}
	llamaBin, gguf := fl.String("llama-bench"), fl.String("gguf")
	if (llamaBin == "") != (gguf == "") {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("bench: --llama-bench and --gguf go together")
	}
	if llamaBin != "" {
		if _, err := bench.CheckLlamaBench(llamaBin, gguf); err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("bench: %w", err)
		}
	}
	if random != "" {
		shape, err := bench.ShapeByName(random)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("bench: %w", err)
		}
		start := time.Now()
		var made bool
		dir, made, err = bench.EnsureRandomModel(fl.String("cache"), shape, fl.String("quant"), 1)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("bench: %w", err)
		}
		if made {
			fmt.Fprintf(os.Stderr, "generated random %s %s model in %s (%.1fs)\n", shape.Name, fl.String("quant"), dir, time.Since(start).Seconds())
		}
	}
	opts := bench.Options{ModelDir: dir, Threads: threads, Batch: batch, PromptLen: fl.Int("prompt"),
		DecodeLen: fl.Int("decode"), Repeats: fl.Int("repeats"), Progress: os.Stderr}
	if opts.PromptLen <= 0 || opts.DecodeLen <= 0 || opts.Repeats <= 0 {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("bench: --prompt, --decode and --repeats must be positive")
	}
	res, err := bench.Run(opts)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if llamaBin != "" {
		rows, err := bench.LlamaBench(llamaBin, gguf, threads, opts.PromptLen, opts.DecodeLen, opts.Repeats)
		if err != nil {
			fmt.Print(res)
			return caddy.ExitCodeFailedStartup, fmt.Errorf("bench: %w", err)
		}
		res.AttachLlamaBench(rows)
	}
	fmt.Print(res)
	return 0, nil
}

// intList parses "1,2,4" into positive integers.
func intList(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a comma-separated list of positive integers", s)
		}
		out = append(out, n)
	}
	return out, nil
}
