# Impetus: make run (development server on http://localhost:8080), make test.
GO        ?= go
BIN       := bin/impetus
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X github.com/impetusllm/impetus/caddymodule/buildinfo.version=$(VERSION)
# Tests write Caddy's data (certificates, autosave) under a throwaway folder.
TEST_XDG  ?= $(CURDIR)/.test-xdg

.PHONY: build run test test-deps test-arm64 test-nocgo fuzz lint bench clean test-gpu test-gpu-bins

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/impetus

# run serves Caddyfile.example. Without IMPETUS_API_KEY it makes a development
# key once, stores it in .impetus-dev-key (git-ignored) and prints it.
run: build
	@if [ -z "$$IMPETUS_API_KEY" ]; then \
		if [ ! -s .impetus-dev-key ]; then \
			umask 077; echo "impetus-dev-$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" > .impetus-dev-key; \
			echo "Created a development API key in .impetus-dev-key:"; cat .impetus-dev-key; \
		fi; \
	fi; \
	IMPETUS_API_KEY="$${IMPETUS_API_KEY:-$$(cat .impetus-dev-key)}" ./$(BIN) run --config Caddyfile.example --adapter caddyfile

# npm packages the tests use as oracles (pinned by package-lock.json).
NPM_TEST_DIRS := inference/tokenizer/testdata/oracle caddymodule/testdata/socketio caddymodule/testdata/openapi cmd/impetus/testdata/sdk cmd/impetus/testdata/langchain

test: build test-deps
	@mkdir -p $(TEST_XDG)/data $(TEST_XDG)/config
	$(GO) vet ./...
	@test -z "$$(gofmt -l caddymodule inference hwinfo cmd)" || { echo "gofmt needed:"; gofmt -l caddymodule inference hwinfo cmd; exit 1; }
	IMPETUS_BIN=$(CURDIR)/$(BIN) XDG_DATA_HOME=$(TEST_XDG)/data XDG_CONFIG_HOME=$(TEST_XDG)/config \
		$(GO) test -timeout 30m ./...
	$(ARM64_GO) vet ./inference/kernels ./inference/model
	$(MAKE) --no-print-directory test-arm64
	$(MAKE) --no-print-directory test-nocgo
	$(MAKE) --no-print-directory fuzz

# test-nocgo checks the portable build: without cgo the binary still builds
# and the kernels and models run on the pure Go path.
test-nocgo:
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/impetus
	CGO_ENABLED=0 $(GO) test -short ./inference/kernels ./inference/model

# Debian packages the suite uses: Node.js/npm (oracles, SDK and Socket.IO
# clients), promtool (metrics format), Chromium (the docs page), and the
# arm64 cross compiler, C library and qemu-user (test-arm64).
# command:package pairs (a path instead of a command: a file the package
# installs); only packages whose command or file is missing are installed.
APT_TEST_PKGS := node:nodejs npm:npm promtool:prometheus chromium:chromium \
	aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu /usr/aarch64-linux-gnu/include/stdio.h:libc6-dev-arm64-cross \
	qemu-aarch64-static:qemu-user-static

# test-deps installs what the suite needs beyond Go: the Debian packages
# above when a command is missing, then each oracle's pinned npm packages.
test-deps:
	@missing=""; for p in $(APT_TEST_PKGS); do c=$${p%%:*}; \
		case $$c in /*) [ -e $$c ];; *) command -v $$c >/dev/null 2>&1;; esac || missing="$$missing $${p#*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@for d in $(NPM_TEST_DIRS); do \
		[ -d $$d/node_modules ] || (cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	done

# ARM64 under qemu-user: the kernel and model tests cross-compiled for arm64
# and run with -cpu max (NEON with dotprod and i8mm; TestNEONInt8Variants
# also runs the int8 tests at the lower variants) and -cpu cortex-a53 (no
# dotprod: the base int8 variant, picked at run time). This checks results
# only; qemu says nothing about speed on ARM hardware. -short, the -run
# filters and skipping TestLevels/neon (the same tests as the top level there)
# keep it to a few minutes; make test runs it. TestEnvLevel re-executes its
# own binary, which qemu-user cannot start without binfmt, so it runs on the
# host only.
ARM64_GO   := GOARCH=arm64 CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc $(GO)
QEMU_ARM64 := qemu-aarch64-static -L /usr/aarch64-linux-gnu
ARM64_OUT  := $(CURDIR)/.test-arm64
# The model tests that take the int8 path (MLX 4-bit fixtures, GGUF Q4_0 and
# Q8_0 against safetensors on the random fixtures) or check batching, Info and
# the q8_0 KV cache.
ARM64_MODEL_RUN  := TestInt8Fixtures|TestGGUFMatchesSafetensors|TestBatchEqualsAlone|TestInfo|TestKVQ8Cache
ARM64_MODEL_SKIP := TestGGUFMatchesSafetensors/dev-trained

test-arm64: test-deps
	@mkdir -p $(ARM64_OUT)
	$(ARM64_GO) test -c -o $(ARM64_OUT)/kernels.test ./inference/kernels
	$(ARM64_GO) test -c -o $(ARM64_OUT)/model.test ./inference/model
	cd inference/kernels && $(QEMU_ARM64) -cpu max $(ARM64_OUT)/kernels.test -test.short -test.timeout 5m -test.skip 'TestLevels/neon|TestEnvLevel'
	cd inference/kernels && $(QEMU_ARM64) -cpu cortex-a53 $(ARM64_OUT)/kernels.test -test.short -test.timeout 5m \
		-test.run 'Packed|Int8|MatMulGGUF|MatMulKRandom|NEON'
	cd inference/model && $(QEMU_ARM64) -cpu max $(ARM64_OUT)/model.test -test.short -test.timeout 5m \
		-test.run '$(ARM64_MODEL_RUN)' -test.skip '$(ARM64_MODEL_SKIP)'

# Parsers of untrusted input, fuzzed for a bounded time on every test run
# (go test runs one fuzz target at a time). A count of inputs rather than a
# duration: a duration can end while a worker still runs, which go test
# reports as a failure on a loaded machine. Longer: make fuzz FUZZTIME=5m.
FUZZTIME ?= 200000x
FUZZ_TARGETS := ./caddymodule/openai:FuzzDecodeChatRequest ./caddymodule/openai:FuzzDecodeCompletionRequest \
	./caddymodule/socketio:FuzzDecodePacket ./inference/gguf:FuzzParse ./inference/safetensors:FuzzParse \
	./inference/tokenizer:FuzzFromJSON ./inference/tokenizer:FuzzEncodeDecode ./inference/chat/jinja:FuzzTemplate \
	./inference/grammar:FuzzCompileSchema ./inference/model:FuzzFromGGUF ./inference/model:FuzzParseConfig \
	./inference/hub:FuzzValidateFileName ./inference/chat:FuzzToolStreamMatchesReference ./inference/chat:FuzzHermesHeader \
	./inference/tokenizer:FuzzWordPiece ./inference/tokenizer:FuzzUnigram ./caddymodule/openai:FuzzDecodeEmbeddingRequest

fuzz:
	@passed=0; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		log=$$(mktemp); \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg >$$log 2>&1 || { cat $$log; rm -f $$log; echo "fuzz: $$passed passed, 1 failed"; exit 1; }; \
		rm -f $$log; passed=$$((passed+1)); \
	done; echo "fuzz: $$passed passed, 0 failed"

# test-gpu runs every GPU test on a machine with an NVIDIA GPU (its driver
# and NVRTC; building needs nothing from CUDA): the kernels against the CPU
# kernels, every reference fixture on the GPU against transformers at the
# CPU's tolerances, GGUF block types against their float twins, batched
# decode against the CPU, the engine's device choice, a chat reply through
# a server on the GPU, and GPUBENCH speed lines. Elsewhere these tests skip. For a GPU machine
# without Go, build with make test-gpu-bins, carry bin/gpu (with the shared
# fixtures in bin/gpu/shared/fixtures) and run
# sh inference/cuda/test-gpu.sh bin/gpu from the repository root there.
GPU_BIN ?= bin/gpu

test-gpu-bins:
	@mkdir -p $(GPU_BIN)
	$(GO) test -c -o $(GPU_BIN)/cuda.test ./inference/cuda
	$(GO) test -c -o $(GPU_BIN)/model.test ./inference/model
	$(GO) test -c -o $(GPU_BIN)/inference.test ./inference
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(GPU_BIN)/impetus ./cmd/impetus

test-gpu: test-gpu-bins
	sh inference/cuda/test-gpu.sh $(GPU_BIN)

lint:
	@test -z "$$(gofmt -l caddymodule inference hwinfo cmd)" || { gofmt -l caddymodule inference hwinfo cmd; exit 1; }
	$(GO) vet ./...

# bench measures the engine on random weights of real shapes (generated once
# into $TMPDIR/impetus-bench): pp512 and tg128 per thread count, median of
# BENCH_REPEATS runs, one BENCH line per figure (issue 11). With
# LLAMA_CPP=<llama.cpp build folder, outside this repository> llama-bench (and
# llama-server for tg128xN, N concurrent requests through our scheduler against
# llama-server -np N) runs on the same GGUF with the same threads, interleaved
# with ours, and each line carries the ratio. TTFT lines give the time to first
# token of each turn of a conversation with and without the prefix cache.
# LLAMA_ENV=KEY=VALUE,... is added to llama.cpp's environment only.
# Decode and prefill at depth 4096 (llama-bench -d), pp4096 and the Mistral-7B shape
# run at 2 threads. LLAMA_CPP_AVX2=<a llama.cpp build without AVX-512> adds
# runs of our engine held at AVX2 (IMPETUS_SIMD=avx2) against that build.
BENCH_THREADS ?= 1,2
BENCH_REPEATS ?= 5
BENCH_LLAMA    = $(if $(LLAMA_ENV),--llama-env '$(LLAMA_ENV)')
BENCH_FLAGS    = --threads $(BENCH_THREADS) --repeats $(BENCH_REPEATS) \
	$(if $(LLAMA_CPP),--llama-cpp $(LLAMA_CPP)) $(BENCH_LLAMA)
BENCH_FLAGS2   = --threads 2 --repeats $(BENCH_REPEATS) $(if $(LLAMA_CPP),--llama-cpp $(LLAMA_CPP)) $(BENCH_LLAMA)
BENCH_AVX2     = --threads $(BENCH_THREADS) --repeats $(BENCH_REPEATS) --llama-cpp $(LLAMA_CPP_AVX2) $(BENCH_LLAMA)
bench: build
	@echo "bench start $$(date -u +%H:%M:%S), load average $$(cut -d' ' -f1-3 /proc/loadavg)"
	./$(BIN) bench --random qwen0.5b --quant q4_0 --also mlx4 --streams 1,2,4,8 --turns 5 $(BENCH_FLAGS)
	./$(BIN) bench --random llama1b --quant q4_0 --also mlx4 $(BENCH_FLAGS)
	./$(BIN) bench --random qwen0.5b --quant q4_k_m $(BENCH_FLAGS)
	./$(BIN) bench --random qwen0.5b --quant q8_0 $(BENCH_FLAGS)
	./$(BIN) bench --random llama1b --quant q8_0 $(BENCH_FLAGS)
	./$(BIN) bench --random qwen0.5b --quant q4_0 --depth 4096 $(BENCH_FLAGS2)
	./$(BIN) bench --random qwen0.5b --quant q4_0 --prompt 4096 $(BENCH_FLAGS2)
	./$(BIN) bench --embed bge-small,nomic-embed --embed-quant f16 $(BENCH_FLAGS2)
	./$(BIN) bench --random mistral7b --quant q4_0 --also mlx4 $(BENCH_FLAGS2)
	./$(BIN) bench --random mistral7b --quant q4_k_m $(BENCH_FLAGS2)
	$(if $(LLAMA_CPP_AVX2),IMPETUS_SIMD=avx2 ./$(BIN) bench --random qwen0.5b --quant q4_0 --also mlx4 $(BENCH_AVX2))
	$(if $(LLAMA_CPP_AVX2),IMPETUS_SIMD=avx2 ./$(BIN) bench --random qwen0.5b --quant q8_0 $(BENCH_AVX2))
	$(if $(LLAMA_CPP_AVX2),IMPETUS_SIMD=avx2 ./$(BIN) bench --random qwen0.5b --quant q4_k_m $(BENCH_AVX2))
	@echo "bench end $$(date -u +%H:%M:%S), load average $$(cut -d' ' -f1-3 /proc/loadavg)"

clean:
	rm -rf bin $(TEST_XDG)
