package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// TestOpenAINodeSDK runs testdata/sdk/sdk.js, which uses the official openai
// npm package (and ajv for JSON Schema validation), against the real binary
// serving the trained fixture: chat and completions, streamed and not,
// usage, logprobs, stop strings, n=2, seeds, json_schema, a tool-call round
// trip, and the SDK's error classes for 400, 401, 404 and 429.
func TestOpenAINodeSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node; skipped in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed; the OpenAI SDK test needs node and npm (make test-deps installs them)")
	}
	dir := filepath.Join("testdata", "sdk")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("npm not installed; the OpenAI SDK test needs it to install the openai package")
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("npm ci failed (offline?): %v\n%s", err, out)
		}
	}

	models := t.TempDir()
	copyDir(t, testutil.Fixture(t, "dev-trained", "llama-mlx4"), filepath.Join(models, "llama-mlx4"))
	toolModel(t, models, "llama-tools")
	base, _ := serveModels(t, models, nil)
	// A second server whose rate limit allows a burst of one request.
	lport, ladmin := freePort(t), freePort(t)
	limited := fmt.Sprintf("http://127.0.0.1:%d", lport)
	ls := startServer(t, siteConfig(fmt.Sprintf("127.0.0.1:%d", ladmin), lport, models, "key k secret", 1))
	ls.waitReady(limited + "/api/health")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "sdk.js", base, "secret", limited)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var got struct {
		Passed []string
		Failed []struct{ Name, Error string }
	}
	if jerr := json.Unmarshal(out, &got); jerr != nil {
		t.Fatalf("sdk.js: %v (%v)\n%s", err, jerr, out)
	}
	for _, f := range got.Failed {
		t.Errorf("%s: %s", f.Name, f.Error)
	}
	want := []string{"chat", "chat stream with usage", "chat logprobs", "stop strings", "n=2", "seed reproducibility",
		"completions", "json_schema validated by ajv", "tool round trip", "tool round trip (stream)",
		"400 BadRequestError", "401 AuthenticationError", "404 NotFoundError", "429 RateLimitError"}
	passed := map[string]bool{}
	for _, p := range got.Passed {
		passed[p] = true
	}
	for _, w := range want {
		if !passed[w] && !t.Failed() {
			t.Errorf("check %q did not run", w)
		}
	}
	t.Logf("openai SDK checks passed: %d of %d", len(got.Passed), len(want))
}
