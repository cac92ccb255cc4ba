# Impetus: make run (development server on http://localhost:8080), make test.
GO        ?= go
BIN       := bin/impetus
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X github.com/impetusllm/impetus/caddymodule.version=$(VERSION)
# Tests write Caddy's data (certificates, autosave) under a throwaway folder.
TEST_XDG  ?= $(CURDIR)/.test-xdg

.PHONY: build run test test-deps lint bench clean

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
NPM_TEST_DIRS := inference/tokenizer/testdata/oracle caddymodule/testdata/socketio

test: build test-deps
	@mkdir -p $(TEST_XDG)/data $(TEST_XDG)/config
	$(GO) vet ./...
	@test -z "$$(gofmt -l caddymodule inference hwinfo cmd)" || { echo "gofmt needed:"; gofmt -l caddymodule inference hwinfo cmd; exit 1; }
	IMPETUS_BIN=$(CURDIR)/$(BIN) XDG_DATA_HOME=$(TEST_XDG)/data XDG_CONFIG_HOME=$(TEST_XDG)/config \
		$(GO) test -timeout 30m ./...

# test-deps installs what the suite needs beyond Go: Node.js and npm from
# Debian when absent, then each oracle's pinned npm packages.
test-deps:
	@command -v npm >/dev/null 2>&1 || { echo "installing nodejs and npm (apt)"; apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
	@for d in $(NPM_TEST_DIRS); do \
		[ -d $$d/node_modules ] || (cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	done

lint:
	@test -z "$$(gofmt -l caddymodule inference hwinfo cmd)" || { gofmt -l caddymodule inference hwinfo cmd; exit 1; }
	$(GO) vet ./...

# bench measures the engine on random weights of real shapes (generated once
# into $TMPDIR/impetus-bench): pp512 and tg128 per thread count, median of
# BENCH_REPEATS runs, one BENCH line per figure (issue 11). With
# LLAMA_CPP=<llama.cpp build folder, outside this repository> llama-bench (and
# llama-server for tg128x4, 4 concurrent streams) runs on the same GGUF with the
# same threads, interleaved with ours, and each line carries the ratio.
# LLAMA_ENV=KEY=VALUE,... is added to llama.cpp's environment only.
BENCH_THREADS ?= 1,2
BENCH_REPEATS ?= 5
BENCH_FLAGS    = --threads $(BENCH_THREADS) --repeats $(BENCH_REPEATS) \
	$(if $(LLAMA_CPP),--llama-cpp $(LLAMA_CPP)) $(if $(LLAMA_ENV),--llama-env '$(LLAMA_ENV)')
bench: build
	@echo "bench start $$(date -u +%H:%M:%S), load average $$(cut -d' ' -f1-3 /proc/loadavg)"
	./$(BIN) bench --random qwen0.5b --quant q4_0 --also mlx4 --streams 4 $(BENCH_FLAGS)
	./$(BIN) bench --random llama1b --quant q4_0 $(BENCH_FLAGS)
	./$(BIN) bench --random qwen0.5b --quant q4_k_m $(BENCH_FLAGS)
	./$(BIN) bench --random qwen0.5b --quant q8_0 $(BENCH_FLAGS)
	@echo "bench end $$(date -u +%H:%M:%S), load average $$(cut -d' ' -f1-3 /proc/loadavg)"

clean:
	rm -rf bin $(TEST_XDG)
