#!/bin/sh
# test-gpu.sh runs the GPU tests from test binaries built ahead (make
# test-gpu-bins), so a GPU machine without Go can run them: the kernels
# against the CPU kernels, then every reference fixture on the GPU against
# transformers, GGUF block types against their float twins, and batched
# decode against the CPU. Usage, from the repository root:
#   sh inference/cuda/test-gpu.sh BINDIR
# IMPETUS_SHARED (default BINDIR/shared when it exists, else ../shared) holds
# the shared fixtures. IMPETUS_GPU_PARTS picks parts (default all:
# "kernels models engine server"), for a run that carries fewer binaries.
set -eu
# The decode shortcuts that are off by default until checked on a GPU
# (CUDA graphs, quantizing norms) are on for these tests.
export IMPETUS_CUDA_GRAPHS="${IMPETUS_CUDA_GRAPHS:-1}" IMPETUS_CUDA_FUSE="${IMPETUS_CUDA_FUSE:-1}" IMPETUS_CUDA_Q5_0="${IMPETUS_CUDA_Q5_0:-1}"
parts=" ${IMPETUS_GPU_PARTS:-kernels models engine server} "
want() { case "$parts" in *" $1 "*) return 0 ;; esac; return 1; }
bin=$(cd "${1:-bin/gpu}" && pwd)
root=$(pwd)
if [ -z "${IMPETUS_SHARED:-}" ] && [ -d "$bin/shared" ]; then
	export IMPETUS_SHARED="$bin/shared"
fi
# Binaries may travel xz-compressed (the device machine's transfer limit).
for f in "$bin"/*.xz; do
	[ -e "$f" ] && [ ! -x "${f%.xz}" ] && xz -dk "$f" && chmod +x "${f%.xz}"
done
status=0
if want kernels; then
	echo "== cuda kernels against the CPU kernels"
	(cd "$root" && "$bin/cuda.test" -test.count=1 -test.v) >"$bin/cuda.log" 2>&1 || status=1
	grep -E '^(--- |ok|FAIL|PASS)|cuda_test.go' "$bin/cuda.log" | grep -v '^    --- PASS' || true
fi
if want models; then
	echo "== models on the GPU against transformers and the CPU"
	(cd "$root/inference/model" && IMPETUS_GPU_BENCH=1 "$bin/model.test" -test.count=1 -test.v -test.run 'GPU') >"$bin/model.log" 2>&1 || status=1
	grep -E '^(--- |ok|FAIL|PASS)|worst logprob|on the GPU:|no GPU|GPUBENCH' "$bin/model.log" | grep -v '^    --- PASS' || true
fi
if want engine; then
	echo "== engine on the GPU (device cuda and auto) against the CPU and transformers"
	(cd "$root/inference" && "$bin/inference.test" -test.count=1 -test.v -test.run 'Device|OnGPU') >"$bin/inference.log" 2>&1 || status=1
	grep -E '^(--- |ok|FAIL|PASS)|device_test.go' "$bin/inference.log" || true
fi
if want server && [ -x "$bin/impetus" ] && command -v python3 >/dev/null; then
	echo "== server on the GPU: the trained fixture's chat reply over HTTP against transformers"
	tmp=$(mktemp -d)
	tar -xJf "$IMPETUS_SHARED/fixtures/dev-trained.tar.xz" -C "$tmp"
	printf '{\n\tdefault_bind 127.0.0.1\n\timpetus {\n\t\tmodels_dir {env.IMPETUS_MODELS_DIR}\n\t}\n}\nhttp://localhost:8080 {\n\timpetus_auth {\n\t\tkey dev {env.IMPETUS_API_KEY}\n\t}\n\timpetus_openai\n\timpetus_api\n}\n' >"$tmp/Caddyfile"
	IMPETUS_MODELS_DIR="$tmp/dev-trained" IMPETUS_API_KEY=gpu-test-key XDG_DATA_HOME="$tmp/xdg" XDG_CONFIG_HOME="$tmp/xdg" \
		"$bin/impetus" run --config "$tmp/Caddyfile" --adapter caddyfile >"$bin/server.log" 2>&1 &
	pid=$!
	python3 - "$tmp/dev-trained/llama-bfloat16/reference.json" <<'PY' || status=1
import json, sys, time, urllib.request
ref = json.load(open(sys.argv[1]))["chat"]
for _ in range(100):
    try:
        urllib.request.urlopen("http://localhost:8080/api/health", timeout=1); break
    except Exception:
        time.sleep(0.2)
req = urllib.request.Request("http://localhost:8080/v1/chat/completions", method="POST",
    headers={"Authorization": "Bearer gpu-test-key", "Content-Type": "application/json"},
    data=json.dumps({"model": "llama-bfloat16", "messages": ref["messages"], "temperature": 0,
                     "max_tokens": len(ref["reply_ids"])}).encode())
t = time.time()
out = json.load(urllib.request.urlopen(req, timeout=120))
got = out["choices"][0]["message"]["content"]
print("server reply %r in %.2fs, transformers %r" % (got, time.time() - t, ref["reply_text"]))
ok = got.strip() == ref["reply_text"].strip()
def get(path):
    r = urllib.request.Request("http://localhost:8080" + path, headers={"Authorization": "Bearer gpu-test-key"})
    return urllib.request.urlopen(r, timeout=10).read().decode()
# The GPU shows in Prometheus (the engine's weights and KV on the device)
# and in /api/hardware/metrics (NVML utilization and memory, engine.gpus).
prom = [l for l in get("/api/metrics").splitlines() if l.startswith("impetus_gpu_")]
print("\n".join(prom))
weights = [l for l in prom if 'use="weights"' in l]
if not weights or float(weights[0].split()[-1]) <= 0:
    print("FAIL: no impetus_gpu_memory_bytes{use=\"weights\"} above 0"); ok = False
hm = json.loads(get("/api/hardware/metrics"))
g = hm["gpus"][0] if hm["gpus"] else {}
print("hardware/metrics: engine.device %s, gpus[0] util %s%% memory used %s MB (%s), engine.gpus %s" % (hm["engine"]["device"],
      g.get("utilization_percent"), g.get("memory_used_mb"), g.get("source"), json.dumps(hm["engine"]["gpus"])))
if not hm["engine"]["device"].startswith("cuda:") or g.get("utilization_percent") is None or g.get("memory_used_mb") is None:
    print("FAIL: hardware metrics lack the GPU"); ok = False
sys.exit(0 if ok else 1)
PY
	command -v nvidia-smi >/dev/null && nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv
	kill $pid
fi
if [ $status -ne 0 ]; then
	echo "FAILED: see $bin/cuda.log and $bin/model.log"
	grep -E -- '--- FAIL|_test.go:[0-9]+:' "$bin"/*.log | grep -v 'worst logprob' | head -40
fi
exit $status
