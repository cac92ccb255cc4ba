package main

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/bench"
	"github.com/impetusllm/impetus/inference/testutil"
)

// TestShutdownEndsStreamsWithAnErrorEvent stops the server while a stream
// runs: before the grace period ends the stream gets a final error event, so
// the client learns why it ended.
func TestShutdownEndsStreamsWithAnErrorEvent(t *testing.T) {
	models := t.TempDir()
	dir := filepath.Join(models, "slow")
	// A random model big enough that 480 tokens take longer than the grace
	// period, with the vocabulary of the trained fixture's tokenizer.
	shape := bench.Shape{Name: "slow", ModelType: "llama", Architecture: "LlamaForCausalLM",
		Hidden: 1024, Intermediate: 2816, Layers: 12, Heads: 16, KVHeads: 4, HeadDim: 64,
		Vocab: 2048, ContextLength: 512, Tied: true, RopeTheta: 10000, RMSNormEps: 1e-5, BOS: 0, EOS: []int{2}}
	if err := bench.MakeRandomModel(dir, shape, "mlx4", 1); err != nil {
		t.Fatal(err)
	}
	src := testutil.Fixture(t, "dev-trained", "llama-mlx4")
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), data, 0o644)
	}
	base, s := serveModels(t, models, func(cfg string) string { return strings.Replace(cfg, "grace_period 5s", "grace_period 1s", 1) })

	body := `{"model":"slow","prompt":"Once upon a time","max_tokens":480,"temperature":0,"stream":true,"logit_bias":{"0":-100,"1":-100,"2":-100}}`
	req, _ := http.NewRequest("POST", base+"/v1/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for sc.Scan() {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
			break
		}
	}
	start := time.Now()
	s.cmd.Process.Signal(os.Interrupt)
	for sc.Scan() {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	took := time.Since(start)
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, `data: {"error"`) || !strings.Contains(last, "shutting down") {
		t.Fatalf("after %d lines the stream ended with %q, want a shutting-down error event", len(lines), last)
	}
	if took > 4*time.Second {
		t.Fatalf("the stream ended %v after the signal; the grace period is 1s", took)
	}
	for _, l := range lines {
		if l == "data: [DONE]" {
			t.Fatal("a cut stream must not claim completion with [DONE]")
		}
	}
	t.Logf("%d events, cut %v after the signal", len(lines), took.Round(time.Millisecond))
}
