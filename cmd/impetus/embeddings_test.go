package main

import (
	"context"
	"encoding/base64"
	le "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// embedFixtures is the folder of the tiny BERT embedding fixtures.
const embedFixtures = "../../inference/model/testdata/embed"

// embedReference is reference.json: token sequences ([CLS] … [SEP]) and
// the expected vectors per weight copy and pooling.
type embedReference struct {
	IDs        [][]int                           `json:"ids"`
	Embeddings map[string]map[string][][]float64 `json:"embeddings"`
}

func loadEmbedReference(t *testing.T) embedReference {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(embedFixtures, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref embedReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

// embedModels links bert-mean (F32, mean, normalized), bert-cls (F16,
// CLS) and nomic-mean (nomic_bert, Matryoshka-trained) into a fresh models
// folder.
func embedModels(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, m := range []string{"bert-mean", "bert-cls", "nomic-mean"} {
		src, err := filepath.Abs(filepath.Join(embedFixtures, m))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(src, filepath.Join(dir, m)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// embedConfig serves the models with keys: full (every model), only
// (bert-cls only) and budget (a 40-token-per-minute budget).
// serveEmbeddings starts the binary on models with embedConfig's settings
// and returns its base URL once it is ready.
func serveEmbeddings(t *testing.T, models string) string {
	t.Helper()
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startServer(t, embedConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, models, false)).waitReady(base + "/api/health")
	return base
}

// postEmbeddings sends body, JSON-encoded, to base's /v1/embeddings with
// the full-access key.
func postEmbeddings(t *testing.T, base string, body any) response {
	t.Helper()
	b, _ := json.Marshal(body)
	return sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", string(b))
}

func embedConfig(admin string, port int, models string, truncate bool) string {
	opt := ""
	if truncate {
		opt = "embeddings_truncate"
	}
	return fmt.Sprintf(`{
	admin %s
	default_bind 127.0.0.1
	impetus {
		models_dir %s
		%s
	}
}

http://127.0.0.1:%d {
	@protected not path /api/health /api/health/* /socket.io/*
	impetus_auth @protected {
		key full full-secret
		key only only-secret
		key budget budget-secret
		models only bert-cls
	}
	impetus_ratelimit {
		key {http.auth.user.id}
		requests 1000
		burst 1000
		key_limit budget tokens_per_minute 40
	}
	impetus_openai
	impetus_api
	impetus_events {
		auth {
			key full full-secret
		}
	}
	handle_errors {
		impetus_error
	}
}
`, admin, models, opt, port)
}

// referenceInputs are the reference sequences without [CLS]/[SEP], which
// the server adds around token inputs.
func referenceInputs(ref embedReference) [][]int {
	out := make([][]int, len(ref.IDs))
	for i, ids := range ref.IDs {
		out[i] = ids[1 : len(ids)-1]
	}
	return out
}

// checkVectors fails unless got matches a reference's vectors within 1e-4.
func checkVectors(t *testing.T, what string, got [][]float32, want [][]float64) {
	t.Helper()
	checkClose(t, what, got, want, 1e-4)
}

// checkClose fails unless got and want hold the same vectors within tol.
func checkClose[T float32 | float64](t *testing.T, what string, got [][]float32, want [][]T, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d vectors, want %d", what, len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s[%d]: %d dimensions, want %d", what, i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if d := math.Abs(float64(got[i][j]) - float64(want[i][j])); d > tol {
				t.Fatalf("%s[%d][%d] = %v, want %v (off by %.2g)", what, i, j, got[i][j], want[i][j], d)
			}
		}
	}
}

// embeddingsOf reads an embeddings response, checking its shape and order.
func embeddingsOf(t *testing.T, r response, model string, b64 bool) ([][]float32, int) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %v", r.status, r.body)
	}
	if r.body["object"] != "list" || r.body["model"] != model {
		t.Fatalf("response %v", r.body)
	}
	usage := r.body["usage"].(map[string]any)
	if usage["prompt_tokens"] != usage["total_tokens"] || len(usage) != 2 {
		t.Fatalf("usage %v", usage)
	}
	var out [][]float32
	for i, d := range r.body["data"].([]any) {
		item := d.(map[string]any)
		if item["object"] != "embedding" || item["index"] != float64(i) {
			t.Fatalf("data[%d] = %v", i, item)
		}
		var v []float32
		if b64 {
			raw, err := base64.StdEncoding.DecodeString(item["embedding"].(string))
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k+4 <= len(raw); k += 4 {
				v = append(v, math.Float32frombits(le.LittleEndian.Uint32(raw[k:])))
			}
		} else {
			for _, x := range item["embedding"].([]any) {
				v = append(v, float32(x.(float64)))
			}
		}
		out = append(out, v)
	}
	return out, int(usage["prompt_tokens"].(float64))
}

// wantOpenAIError checks an OpenAI-shaped error: status, param, and words
// of the message.
func wantOpenAIError(t *testing.T, what string, r response, status int, param string, words ...string) {
	t.Helper()
	e, _ := r.body["error"].(map[string]any)
	if r.status != status || e == nil {
		t.Errorf("%s: status %d, want %d; body %v", what, r.status, status, r.body)
		return
	}
	msg, _ := e["message"].(string)
	if p, _ := e["param"].(string); p != param {
		t.Errorf("%s: param %q, want %q (%s)", what, p, param, msg)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: message %q lacks %q", what, msg, w)
		}
	}
}

// TestEmbeddingsAPI serves /v1/embeddings from the built binary with the
// BERT fixtures: vectors match the reference in float and base64, usage
// counts the tokens, each bad input gets a 400 naming the field, a too long
// input says its length and the maximum, per-key model restrictions and
// token budgets apply, models list their kind, and metrics count the
// requests.
func TestEmbeddingsAPI(t *testing.T) {
	ref := loadEmbedReference(t)
	models := embedModels(t)
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	s := startServer(t, embedConfig(admin, port, models, false))
	s.waitReady(base + "/api/health")
	url := base + "/v1/embeddings"
	post := func(key string, body any) response {
		b, _ := json.Marshal(body)
		return sendJSON(t, "POST", url, key, string(b))
	}
	inputs := referenceInputs(ref)
	wantTokens := 0
	for _, ids := range ref.IDs {
		wantTokens += len(ids)
	}

	got, tokens := embeddingsOf(t, post("full-secret", map[string]any{"model": "bert-mean", "input": inputs}), "bert-mean", false)
	checkVectors(t, "bert-mean float", got, ref.Embeddings["f32"]["mean_norm"])
	if tokens != wantTokens {
		t.Errorf("prompt_tokens %d, want %d", tokens, wantTokens)
	}
	got, _ = embeddingsOf(t, post("full-secret", map[string]any{"model": "bert-cls", "input": inputs, "encoding_format": "base64", "user": "u1"}), "bert-cls", true)
	checkVectors(t, "bert-cls base64", got, ref.Embeddings["f16"]["cls"])
	got, _ = embeddingsOf(t, post("full-secret", map[string]any{"model": "bert-mean", "input": inputs[2], "dimensions": 32}), "bert-mean", false)
	checkVectors(t, "one token list", got, ref.Embeddings["f32"]["mean_norm"][2:3])
	got, tokens = embeddingsOf(t, post("full-secret", map[string]any{"model": "bert-mean", "input": []string{"hello world", "the sea"}}), "bert-mean", false)
	if len(got) != 2 || len(got[0]) != 32 || tokens < 6 {
		t.Errorf("texts: %d vectors, %d tokens", len(got), tokens)
	}

	long := make([]int, 60)
	for i := range long {
		long[i] = 50
	}
	many := make([]string, 2049)
	for i := range many {
		many[i] = "a"
	}
	for _, tc := range []struct {
		what   string
		body   any
		status int
		param  string
		words  []string
	}{
		{"empty string", map[string]any{"model": "bert-mean", "input": ""}, 400, "input", []string{"empty string"}},
		{"empty array", map[string]any{"model": "bert-mean", "input": []string{}}, 400, "input", []string{"must not be empty"}},
		{"empty string in array", map[string]any{"model": "bert-mean", "input": []string{"a", ""}}, 400, "input[1]", []string{"empty string"}},
		{"empty token list", map[string]any{"model": "bert-mean", "input": [][]int{{5}, {}}}, 400, "input[1]", []string{"must not be empty"}},
		{"too many inputs", map[string]any{"model": "bert-mean", "input": many}, 400, "input", []string{"at most 2048", "2049"}},
		{"too long", map[string]any{"model": "bert-mean", "input": [][]int{{5}, long}}, 400, "input", []string{"input[1] has 62 tokens", "maximum of 48"}},
		{"token out of vocabulary", map[string]any{"model": "bert-mean", "input": []int{1 << 20}}, 400, "input", []string{"vocabulary"}},
		{"dimensions", map[string]any{"model": "bert-mean", "input": "x", "dimensions": 8}, 400, "dimensions", []string{"32-dimensional", "not trained for shortening"}},
		{"encoding_format", map[string]any{"model": "bert-mean", "input": "x", "encoding_format": "int8"}, 400, "encoding_format", []string{`"float" or "base64"`}},
		{"no input", map[string]any{"model": "bert-mean"}, 400, "input", []string{"required"}},
		{"unknown model", map[string]any{"model": "no-such", "input": "x"}, 404, "model", []string{"no-such"}},
	} {
		wantOpenAIError(t, tc.what, post("full-secret", tc.body), tc.status, tc.param, tc.words...)
	}

	// Per-key model restrictions and token budgets.
	wantForbidden(t, "restricted key", post("only-secret", map[string]any{"model": "bert-mean", "input": "x"}), true, "bert-mean")
	embeddingsOf(t, post("only-secret", map[string]any{"model": "bert-cls", "input": "x"}), "bert-cls", false)
	embeddingsOf(t, post("budget-secret", map[string]any{"model": "bert-mean", "input": inputs[:3]}), "bert-mean", false) // 29 tokens
	r := post("budget-secret", map[string]any{"model": "bert-mean", "input": inputs[:3]})
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("over the token budget: status %d %v", r.status, r.body)
	}

	// Listing shows each model's kind.
	r = do(t, "GET", base+"/v1/models", "full-secret")
	for _, m := range r.body["data"].([]any) {
		if m := m.(map[string]any); m["kind"] != "embedding" {
			t.Errorf("/v1/models entry %v", m)
		}
	}
	r = do(t, "GET", base+"/api/models/list", "full-secret")
	raw, _ := json.Marshal(r.body)
	if !strings.Contains(string(raw), `"kind":"embedding"`) || strings.Contains(string(raw), `"kind":"chat"`) {
		t.Errorf("/api/models/list: %s", raw)
	}

	// Metrics count embeddings by model and endpoint.
	_, _, metrics := getRaw(t, "http://"+admin+"/metrics", "")
	for _, want := range []string{`endpoint="embeddings"`, `model="bert-mean"`, "impetus_prompt_tokens_total"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestEmbeddingsTruncate: with embeddings_truncate an over-long input is
// cut to the model's maximum instead of refused, and a reload turns the
// option on and off with the model staying loaded.
func TestEmbeddingsTruncate(t *testing.T) {
	models := embedModels(t)
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	s := startServer(t, embedConfig(admin, port, models, true))
	s.waitReady(base + "/api/health")
	long := make([]int, 60)
	for i := range long {
		long[i] = 50
	}
	body := fmt.Sprintf(`{"model":"bert-mean","input":%s}`, mustJSON(long))
	got, tokens := embeddingsOf(t, sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", body), "bert-mean", false)
	if len(got) != 1 || tokens != 48 {
		t.Errorf("truncated: %d vectors, %d tokens, want 1 and 48", len(got), tokens)
	}
	if code, msg := loadConfig(t, admin, embedConfig(admin, port, models, false)); code != 200 {
		t.Fatalf("reload: %s", msg)
	}
	http.DefaultClient.CloseIdleConnections() // the old server's connections close
	wantOpenAIError(t, "after reload without the option", sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", body),
		400, "input", "input[0] has 62 tokens", "maximum of 48")
	if code, msg := loadConfig(t, admin, embedConfig(admin, port, models, true)); code != 200 {
		t.Fatalf("reload: %s", msg)
	}
	http.DefaultClient.CloseIdleConnections() // the old server's connections close
	embeddingsOf(t, sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", body), "bert-mean", false)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestEmbeddingModelKinds: a chat model at /v1/embeddings, or an embedding
// model at /v1/chat/completions or /v1/completions, gets a 400 that says
// which kind the model is; /v1/models lists both kinds.
func TestEmbeddingModelKinds(t *testing.T) {
	models := embedModels(t)
	copyDir(t, testutil.Fixture(t, "dev-trained", "llama-mlx4"), filepath.Join(models, "llama-mlx4"))
	base := serveEmbeddings(t, models)
	wantOpenAIError(t, "chat model at /v1/embeddings", sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", `{"model":"llama-mlx4","input":"hi"}`),
		400, "model", "llama-mlx4 is a chat model")
	wantOpenAIError(t, "embedding model at /v1/chat/completions", sendJSON(t, "POST", base+"/v1/chat/completions", "full-secret",
		`{"model":"bert-mean","messages":[{"role":"user","content":"hi"}]}`), 400, "model", "bert-mean is an embedding model")
	wantOpenAIError(t, "embedding model at /v1/completions", sendJSON(t, "POST", base+"/v1/completions", "full-secret",
		`{"model":"bert-cls","prompt":"hi"}`), 400, "model", "bert-cls is an embedding model")
	// And once the chat model is loaded.
	if r := sendJSON(t, "POST", base+"/v1/completions", "full-secret", `{"model":"llama-mlx4","prompt":"hi","max_tokens":1}`); r.status != 200 {
		t.Fatalf("completion: %d %v", r.status, r.body)
	}
	wantOpenAIError(t, "loaded chat model at /v1/embeddings", sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", `{"model":"llama-mlx4","input":"hi"}`),
		400, "model", "llama-mlx4 is a chat model")
	kinds := map[string]any{}
	for _, m := range do(t, "GET", base+"/v1/models", "full-secret").body["data"].([]any) {
		kinds[m.(map[string]any)["id"].(string)] = m.(map[string]any)["kind"]
	}
	if kinds["llama-mlx4"] != "chat" || kinds["bert-mean"] != "embedding" || kinds["bert-cls"] != "embedding" {
		t.Errorf("kinds %v", kinds)
	}
	if r := do(t, "GET", base+"/v1/models/bert-cls", "full-secret"); r.body["kind"] != "embedding" {
		t.Errorf("/v1/models/bert-cls: %v", r.body)
	}
}

// TestEmbeddingsNodeSDK runs testdata/sdk/embed.js, which calls
// client.embeddings.create of the official openai npm package against the
// binary: float, base64 (raw and as the SDK decodes it by default) and
// texts, compared with reference.json within 1e-4, the SDK's
// BadRequestError for an empty string, and dimensions: shortened vectors
// from the Matryoshka-trained nomic-mean, a BadRequestError from bert-mean.
func TestEmbeddingsNodeSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node; skipped in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed; the OpenAI SDK test needs node and npm (make test-deps installs them)")
	}
	dir := filepath.Join("testdata", "sdk")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		t.Skip("the openai npm package is not installed; run make test-deps")
	}
	models := embedModels(t)
	base := serveEmbeddings(t, models)
	refPath, err := filepath.Abs(filepath.Join(embedFixtures, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	nomicRef, err := filepath.Abs(filepath.Join(embedFixtures, "nomic-reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	passed := runNodeChecks(t, node, dir, "embed.js", base, "full-secret", refPath, nomicRef)
	if len(passed) != 7 && !t.Failed() {
		t.Errorf("passed %v, want 7 checks", passed)
	}
	t.Logf("openai SDK embedding checks passed: %v", passed)
}

// runNodeChecks runs a node script in dir that prints one JSON line of
// {"passed": [...], "failed": [{name, error}]}, reports each failed check
// and returns the passed ones.
func runNodeChecks(t *testing.T, node, dir, script string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var got struct {
		Passed []string
		Failed []struct{ Name, Error string }
	}
	if jerr := json.Unmarshal(out, &got); jerr != nil {
		t.Fatalf("%s: %v (%v)\n%s", script, err, jerr, out)
	}
	for _, f := range got.Failed {
		t.Errorf("%s: %s", f.Name, f.Error)
	}
	return got.Passed
}

// TestEmbeddingsLangChain runs testdata/langchain/embed.js: LangChain's
// OpenAIEmbeddings (embedDocuments in batches, embedQuery, dimensions on
// the Matryoshka-trained nomic-mean, an unknown model's error) gets the
// server's own float vectors for the same texts, in order.
func TestEmbeddingsLangChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node; skipped in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed; the LangChain test needs node and npm (make test-deps installs them)")
	}
	dir := filepath.Join("testdata", "langchain")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@langchain", "openai")); err != nil {
		t.Skip("@langchain/openai is not installed; run make test-deps")
	}
	base := serveEmbeddings(t, embedModels(t))
	passed := runNodeChecks(t, node, dir, "embed.js", base, "full-secret")
	if len(passed) != 4 && !t.Failed() {
		t.Errorf("passed %v, want 4 checks", passed)
	}
	t.Logf("LangChain embedding checks passed: %v", passed)
}

// TestEmbeddingsRouted: a front node routes /v1/embeddings by model to the
// back end serving it, as it routes chat; the vectors come back unchanged.
func TestEmbeddingsRouted(t *testing.T) {
	ref := loadEmbedReference(t)
	backPort, frontPort := freePort(t), freePort(t)
	backURL := fmt.Sprintf("http://127.0.0.1:%d", backPort)
	frontURL := fmt.Sprintf("http://127.0.0.1:%d", frontPort)
	back := startServer(t, backendConfig(fmt.Sprintf("127.0.0.1:%d", freePort(t)), backPort, embedModels(t), "A"))
	back.waitReady(backURL + "/api/health")
	front := startServer(t, fmt.Sprintf(`{
	admin 127.0.0.1:%d
	default_bind 127.0.0.1
	impetus {
		models_dir %s
		route bert-mean {
			to %s
			upstream_key backend-key
			health_interval 1s
		}
	}
}

http://127.0.0.1:%d {
	impetus_auth {
		key main front-key
		key other other-key
		models other bert-cls
	}
	impetus_openai
	handle_errors {
		impetus_error
	}
}
`, freePort(t), t.TempDir(), backURL, frontPort))
	front.waitReady(frontURL + "/v1/models")
	body := `{"model":"bert-mean","input":` + mustJSON(referenceInputs(ref)) + `}`
	var r response
	for range 50 { // until the first active health check marks the back end up
		if r = sendJSON(t, "POST", frontURL+"/v1/embeddings", "front-key", body); r.status != 503 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.header.Get("X-Backend") != "A" {
		t.Fatalf("not served by the back end: %d %v %v", r.status, r.header, r.body)
	}
	got, _ := embeddingsOf(t, r, "bert-mean", false)
	checkVectors(t, "routed", got, ref.Embeddings["f32"]["mean_norm"])
	wantForbidden(t, "routed, restricted key", sendJSON(t, "POST", frontURL+"/v1/embeddings", "other-key", body), true, "bert-mean")
}

// TestEmbeddingsInferenceStats: a Socket.IO client (Engine.IO v4
// long-polling, as socket.io-client speaks it) hears an inference_stats
// event for an embeddings request, with its model, endpoint and prompt
// tokens.
func TestEmbeddingsInferenceStats(t *testing.T) {
	base := serveEmbeddings(t, embedModels(t))
	poll := func(method, url, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, raw)
		}
		return string(raw)
	}
	open := poll("GET", base+"/socket.io/?EIO=4&transport=polling", "")
	var hs struct{ Sid string }
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil || hs.Sid == "" {
		t.Fatalf("open packet %q", open)
	}
	url := base + "/socket.io/?EIO=4&transport=polling&sid=" + hs.Sid
	poll("POST", url, `40{"token":"full-secret"}`)
	if got := poll("GET", url, ""); !strings.HasPrefix(got, "40") {
		t.Fatalf("connect answer %q", got)
	}
	embeddingsOf(t, sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", `{"model":"bert-mean","input":[[5,6,7],[8]]}`), "bert-mean", false)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, pkt := range strings.Split(poll("GET", url, ""), "\x1e") {
			if !strings.HasPrefix(pkt, `42["inference_stats",`) {
				continue
			}
			var ev []json.RawMessage
			var stats map[string]any
			if json.Unmarshal([]byte(pkt[2:]), &ev) != nil || len(ev) != 2 || json.Unmarshal(ev[1], &stats) != nil {
				t.Fatalf("packet %q", pkt)
			}
			if stats["model"] != "bert-mean" || stats["endpoint"] != "embeddings" || stats["prompt_tokens"] != float64(8) || stats["completion_tokens"] != float64(0) {
				t.Fatalf("inference_stats %v", stats)
			}
			return
		}
	}
	t.Fatal("no inference_stats event within 10s")
}
