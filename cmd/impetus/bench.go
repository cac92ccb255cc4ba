package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/impetusllm/impetus/inference/bench"
	"github.com/impetusllm/impetus/inference/bench/serving"
)

func init() {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.String("model", "", "model to measure: a model folder or a GGUF file")
	fs.String("random", "", "measure random weights of a real shape instead: qwen0.5b, llama1b or mistral7b")
	fs.String("quant", "mlx4", "storage of the random model: q4_0, q8_0, q4_k_m, q2_k, q3_k_s (GGUF files), mlx2, mlx3, mlx4, mlx5, mlx6, mlx8 or bf16 (MLX folders)")
	fs.String("also", "", "comma-separated further random quantizations measured in the same runs against the same llama.cpp file, e.g. mlx4")
	fs.String("vs", "q4_0", "GGUF quantization llama.cpp runs when --quant is an MLX one")
	fs.String("cache", filepath.Join(os.TempDir(), "impetus-bench"), "folder keeping generated random models between runs")
	fs.Bool("write", false, "only generate the random model(s) and print their paths")
	fs.String("threads", strconv.Itoa(runtime.NumCPU()), "comma-separated kernel thread counts")
	fs.Int("prompt", 512, "prompt tokens of the prefill test")
	fs.Int("decode", 128, "decode steps of the generation tests")
	fs.Int("depth", 0, "tokens of context already in the cache when prefill and decode start (llama-bench -d)")
	fs.Int("repeats", 5, "interleaved runs per figure (the median is reported)")
	fs.String("llama-cpp", "", "llama.cpp build folder: compare with its llama-bench (and llama-server for --streams) on the same GGUF")
	fs.String("llama-env", "", "comma-separated KEY=VALUE environment for llama.cpp's processes")
	fs.String("streams", "", "comma-separated counts of concurrent requests whose aggregate decode is also measured through the engine's scheduler (against llama-server -np N), e.g. 1,2,4,8")
	fs.Int("turns", 0, "also measure the time to first token of each turn of a conversation of this many turns, with and without the prefix cache")
	fs.Bool("table", false, "print the older table (prefill, decode per --batch) instead of BENCH lines")
	fs.String("batch", "1", "with --table: comma-separated numbers of sequences decoded together")
	fs.String("llama-bench", "", "with --table: path to llama-bench, to compare on the same thread counts")
	fs.String("gguf", "", "GGUF model llama.cpp runs (default: the measured file, or the --vs file of a random MLX model)")
	fs.String("embed", "", "measure embeddings instead: comma-separated random encoder shapes (bge-small, nomic-embed)")
	fs.String("embed-quant", "f16", "with --embed: storage of the random encoder GGUF: f32, f16, q8_0 or q4_0")
	fs.Int("embed-batch", 32, "with --embed: inputs per batch")
	fs.Int("embed-tokens", 128, "with --embed: tokens per input, [CLS] and [SEP] included")
	fs.Int("embed-ubatch", 0, "with --embed --llama-cpp: llama-server's -ub (0: the whole batch in one ubatch)")
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "bench",
		Usage: "--model <dir|file.gguf> | --random qwen0.5b|llama1b|mistral7b | --embed bge-small,nomic-embed [--embed-quant f16] [--quant q4_0|q8_0|q4_k_m|mlx4|mlx8|bf16] [--also mlx4] [--threads 1,2] [--depth 4096] [--repeats 5] [--llama-cpp <build dir>] [--streams 1,2,4,8] [--turns 5] [--write]",
		Short: "Measures prefill and decode speed of the inference engine, beside llama.cpp",
		Long: `
Measures the inference engine in tokens per second: prefill of one prompt of
--prompt tokens and decode of --decode steps from an empty cache (llama-bench's
pp and tg tests), for each thread count, the median of --repeats runs. Each
figure ends in one line:

  BENCH model=<name> quant=<q> threads=<n> test=<pp512|tg128|tg128x4> impetus=<t/s> llamacpp=<t/s|-> ratio=<r|-> level=<simd> [bw=<GB/s> ceiling=<f> kv=<f16|f32|q8_0>]

quant is the file's own quantization with --model (general.file_type of a
GGUF, the bits of an MLX folder). level is the SIMD level the kernels run at
(IMPETUS_SIMD may hold it lower). Decode lines carry the memory read
bandwidth measured at that thread count in the same run and the fraction of
the ceiling it sets (tokens/s × bytes read per token ÷ bandwidth; the bytes
are the resident weights plus the KV cache at its storage's real size, named
by kv=; IMPETUS_KV=q8_0 stores 34 bytes per 32 values). --depth N starts prefill and
decode after N tokens of context (tests pp512@dN, tg128@dN; llama-bench -d N).

--random writes a model of a real shape with random weights (kept in --cache):
q4_0, q8_0 and q4_k_m as GGUF files of arch llama with a synthetic tokenizer
of the real vocabulary size (q4_k_m mixes types as llama-quantize does), mlx4,
mlx8 and bf16 as mlx-community folders. Qwen2.5-0.5B's dimensions are written
as a Llama block (no q/k/v biases), as llama.cpp comparisons measure them.

With --llama-cpp, llama.cpp's llama-bench runs on the same GGUF with the same
threads, one run after each of ours (interleaved, so machine noise hits both),
and the ratio impetus/llama.cpp is printed. --streams 1,2,4,8 adds aggregate
decode of that many concurrent requests through the engine's scheduler (GGUF
models), against llama-server -np N on a loopback port. --turns K adds the
time to first token of each of K turns of a conversation (200-token system
prompt, 40-token user messages, 32-token replies), with the prefix cache and
without it:

  TTFT model=<name> quant=<q> threads=<n> turn=<k> context=<tokens> reuse_ms=<ms> noreuse_ms=<ms>

--embed bge-small,nomic-embed measures embeddings per second instead: random
encoders of those shapes (a BERT of bge-small-en-v1.5's size, a nomic_bert of
nomic-embed-text-v1.5's) written as encoder GGUFs (--embed-quant), batches of
--embed-batch inputs of --embed-tokens tokens through one forward pass. With
--llama-cpp, llama-server --embeddings runs the same GGUF with the same threads
(one slot per input, one ubatch), interleaved:

  BENCH model=<shape> quant=<q> threads=<n> test=embed<B>x<T> impetus=<emb/s> llamacpp=<emb/s> ratio=<r> level=<simd>`,
		Flags: fs,
		Func:  cmdBench,
	})
}

// randomModel returns the path of a random model of shape in quantName,
// generating it into cache when needed.
func randomModel(cache string, shape bench.Shape, quantName string) (string, error) {
	start := time.Now()
	var (
		path string
		made bool
		err  error
	)
	if bench.IsGGUFQuant(quantName) {
		path, made, err = bench.EnsureRandomGGUF(cache, shape, quantName, 1)
	} else {
		mlx := shape
		mlx.Name += "-llama" // apart from the Qwen2-block folders older versions wrote
		path, made, err = bench.EnsureRandomModel(cache, mlx, quantName, 1)
	}
	if err != nil {
		return "", err
	}
	if made {
		fmt.Fprintf(os.Stderr, "generated random %s %s model in %s (%.1fs)\n", shape.Name, quantName, path, time.Since(start).Seconds())
	}
	return path, nil
}

func cmdBench(fl caddycmd.Flags) (int, error) {
	fail := func(err error) (int, error) { return caddy.ExitCodeFailedStartup, fmt.Errorf("bench: %w", err) }
	if fl.String("embed") != "" {
		return benchEmbed(fl)
	}
	path, random := fl.String("model"), fl.String("random")
	if (path == "") == (random == "") {
		return fail(fmt.Errorf("give exactly one of --model and --random"))
	}
	threads, err := intList(fl.String("threads"))
	if err != nil {
		return fail(fmt.Errorf("--threads: %w", err))
	}
	env, err := bench.EnvList(fl.String("llama-env"))
	if err != nil {
		return fail(fmt.Errorf("--llama-env: %w", err))
	}
	name, q, gguf := "", fl.String("quant"), fl.String("gguf")
	var candidates []bench.Candidate
	if random != "" {
		shape, err := bench.ShapeByName(random)
		if err != nil {
			return fail(err)
		}
		shape, name = shape.LlamaArch(), shape.Name
		quants := []string{q}
		if also := strings.TrimSpace(fl.String("also")); also != "" {
			quants = append(quants, strings.Split(also, ",")...)
		}
		for _, qq := range quants {
			p, err := randomModel(fl.String("cache"), shape, strings.TrimSpace(qq))
			if err != nil {
				return fail(err)
			}
			candidates = append(candidates, bench.Candidate{Quant: strings.TrimSpace(qq), Path: p})
		}
		if gguf == "" && (fl.String("llama-cpp") != "" || fl.Bool("write")) {
			vs := q
			if !bench.IsGGUFQuant(q) {
				vs = fl.String("vs")
			}
			if gguf, err = randomModel(fl.String("cache"), shape, vs); err != nil {
				return fail(err)
			}
		}
	} else {
		name = strings.TrimSuffix(filepath.Base(filepath.Clean(path)), ".gguf")
		fq, err := bench.FileQuant(path)
		if err != nil {
			return fail(fmt.Errorf("--model: %w", err))
		}
		candidates = []bench.Candidate{{Quant: fq, Path: path}}
		if strings.HasSuffix(path, ".gguf") && gguf == "" {
			gguf = path
		}
	}
	if fl.Bool("write") {
		for _, c := range candidates {
			fmt.Println(c.Path)
		}
		if gguf != "" && gguf != candidates[0].Path {
			fmt.Println(gguf)
		}
		return 0, nil
	}
	if fl.Bool("table") {
		return benchTable(fl, candidates[0].Path, threads)
	}
	var streams []int
	if s := strings.TrimSpace(fl.String("streams")); s != "" {
		if streams, err = intList(s); err != nil {
			return fail(fmt.Errorf("--streams: %w", err))
		}
	}
	opts := bench.CompareOptions{Model: name, Candidates: candidates, Threads: threads,
		PromptLen: fl.Int("prompt"), DecodeLen: fl.Int("decode"), Repeats: fl.Int("repeats"),
		Depth: fl.Int("depth"), Bandwidth: true,
		Streams: streams, LlamaEnv: env, Progress: os.Stderr, Lines: os.Stdout}
	serve := newServingEngines(candidates, slices.Max(append([]int{1}, streams...)))
	defer serve.close()
	if len(streams) > 0 {
		opts.StreamRunner = serve.streams
	}
	if dir := fl.String("llama-cpp"); dir != "" {
		if gguf == "" {
			return fail(fmt.Errorf("--llama-cpp needs a GGUF file for llama.cpp: --gguf, or a .gguf --model"))
		}
		opts.LlamaCPP, opts.GGUF = dir, gguf
	}
	if opts.PromptLen <= 0 || opts.DecodeLen <= 0 || opts.Repeats <= 0 || fl.Int("turns") < 0 || opts.Depth < 0 {
		return fail(fmt.Errorf("--prompt, --decode and --repeats must be positive, --turns and --depth not negative"))
	}
	if _, err := bench.Compare(opts); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if turns := fl.Int("turns"); turns > 0 {
		conv := serving.Conversation{System: 200, User: 40, Reply: 32, Turns: turns}
		if err := serve.multiTurn(os.Stdout, os.Stderr, name, threads, conv, opts.Repeats); err != nil {
			return fail(err)
		}
	}
	return 0, nil
}

// benchTable is the older report: a table of prefill and decode per batch size.
func benchTable(fl caddycmd.Flags, dir string, threads []int) (int, error) {
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

// benchEmbed is --embed: embeddings per second of random encoders, beside
// llama-server with --llama-cpp.
func benchEmbed(fl caddycmd.Flags) (int, error) {
	fail := func(err error) (int, error) { return caddy.ExitCodeFailedStartup, fmt.Errorf("bench --embed: %w", err) }
	threads, err := intList(fl.String("threads"))
	if err != nil {
		return fail(fmt.Errorf("--threads: %w", err))
	}
	env, err := bench.EnvList(fl.String("llama-env"))
	if err != nil {
		return fail(fmt.Errorf("--llama-env: %w", err))
	}
	q := fl.String("embed-quant")
	for _, name := range strings.Split(fl.String("embed"), ",") {
		shape, err := bench.EncoderShapeByName(strings.TrimSpace(name))
		if err != nil {
			return fail(err)
		}
		start := time.Now()
		path, made, err := bench.EnsureRandomEncoderGGUF(fl.String("cache"), shape, q, 1)
		if err != nil {
			return fail(err)
		}
		if made {
			fmt.Fprintf(os.Stderr, "generated random %s %s encoder in %s (%.1fs)\n", shape.Name, q, path, time.Since(start).Seconds())
		}
		if fl.Bool("write") {
			fmt.Println(path)
			continue
		}
		_, err = bench.EmbedCompare(bench.EmbedOptions{Model: shape.Name, Quant: q, GGUF: path, Threads: threads,
			Batch: fl.Int("embed-batch"), SeqLen: fl.Int("embed-tokens"), Repeats: fl.Int("repeats"),
			LlamaCPP: fl.String("llama-cpp"), LlamaEnv: env, UBatch: fl.Int("embed-ubatch"), Progress: os.Stderr, Lines: os.Stdout})
		if err != nil {
			return fail(err)
		}
	}
	return 0, nil
}
