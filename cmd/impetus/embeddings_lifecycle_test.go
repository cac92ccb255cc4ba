package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/hub/hubtest"
)

// linkEmbedFixture links one more fixture folder into a models folder.
func linkEmbedFixture(t *testing.T, models, name string) {
	t.Helper()
	src, err := filepath.Abs(filepath.Join(embedFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(src, filepath.Join(models, name)); err != nil {
		t.Fatal(err)
	}
}

// modelStatus reads a model's status from /api/models/list.
func modelStatus(t *testing.T, base, id string) string {
	t.Helper()
	r := do(t, "GET", base+"/api/models/list", "full-secret")
	list, _ := r.body["models"].([]any)
	for _, m := range list {
		if e := m.(map[string]any); e["model_id"] == id {
			return fmt.Sprint(e["status"])
		}
	}
	t.Fatalf("%s not in /api/models/list: %d %v", id, r.status, r.body)
	return ""
}

// TestEmbeddingsLifecycle serves the BERT fixtures and the Qwen3-Embedding
// style decoder (last token, <|endoftext|> appended, instruction prompt)
// from the built binary with max_loaded_models 1: the decoder's vectors
// match its float64 reference, loading one embedding model evicts the idle
// other, /api/models/unload unloads an embedding model (404 once gone), and
// inference_stats for embeddings carry tokens_per_second of the tokens
// embedded.
func TestEmbeddingsLifecycle(t *testing.T) {
	models := embedModels(t)
	linkEmbedFixture(t, models, "qwen3-last")
	raw, err := os.ReadFile(filepath.Join(embedFixtures, "qwen3-reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref embedReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := embedConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, models, false)
	cfg = strings.Replace(cfg, "\t\tmodels_dir ", "\t\tmax_loaded_models 1\n\t\tmodels_dir ", 1)
	s := startServer(t, cfg)
	s.waitReady(base + "/api/health")
	events := dialModelEvents(t, base, "full-secret")

	embeddingsOf(t, sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", `{"model":"bert-mean","input":[[5,6,7],[8]]}`), "bert-mean", false)
	msg := events.waitFor(t, `"inference_stats"`, `"endpoint":"embeddings"`)
	var ev []json.RawMessage
	var stats map[string]any
	if json.Unmarshal([]byte(msg[2:]), &ev) != nil || len(ev) != 2 || json.Unmarshal(ev[1], &stats) != nil {
		t.Fatalf("event %q", msg)
	}
	if tps, _ := stats["tokens_per_second"].(float64); tps <= 0 || stats["prompt_tokens"] != float64(8) {
		t.Errorf("inference_stats for embeddings: %v", stats)
	}
	if st := modelStatus(t, base, "bert-mean"); st != "loaded" {
		t.Errorf("bert-mean status %q after its request", st)
	}

	var inputs [][]int
	for _, ids := range ref.IDs[1:] { // without <|endoftext|>, which the server appends
		inputs = append(inputs, ids[:len(ids)-1])
	}
	b, _ := json.Marshal(map[string]any{"model": "qwen3-last", "input": inputs})
	got, tokens := embeddingsOf(t, sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", string(b)), "qwen3-last", false)
	checkVectors(t, "qwen3-last", got, ref.Embeddings["f32"]["lasttoken_norm"][1:])
	want := 0
	for _, ids := range ref.IDs[1:] {
		want += len(ids)
	}
	if tokens != want {
		t.Errorf("qwen3-last prompt_tokens %d, want %d", tokens, want)
	}
	if a, b := modelStatus(t, base, "bert-mean"), modelStatus(t, base, "qwen3-last"); a != "available" || b != "loaded" {
		t.Errorf("with max_loaded_models 1: bert-mean %q, qwen3-last %q", a, b)
	}

	r := sendJSON(t, "POST", base+"/api/models/unload", "full-secret", `{"model_id":"qwen3-last"}`)
	if r.status != 200 || r.body["message"] != "model unloaded" {
		t.Fatalf("unload: %d %v", r.status, r.body)
	}
	if st := modelStatus(t, base, "qwen3-last"); st != "available" {
		t.Errorf("qwen3-last status %q after unload", st)
	}
	if r := sendJSON(t, "POST", base+"/api/models/unload", "full-secret", `{"model_id":"qwen3-last"}`); r.status != 404 {
		t.Errorf("second unload: %d %v", r.status, r.body)
	}
}

// TestEmbeddingsIdleUnload: with idle_unload, an embedding model nobody
// has used for that long is unloaded, and the next request loads it again.
func TestEmbeddingsIdleUnload(t *testing.T) {
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := embedConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, embedModels(t), false)
	cfg = strings.Replace(cfg, "\t\tmodels_dir ", "\t\tidle_unload 1s\n\t\tmodels_dir ", 1)
	s := startServer(t, cfg)
	s.waitReady(base + "/api/health")
	embeddingsOf(t, sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", `{"model":"bert-mean","input":"hello"}`), "bert-mean", false)
	if st := modelStatus(t, base, "bert-mean"); st != "loaded" {
		t.Fatalf("status %q after a request", st)
	}
	deadline := time.Now().Add(15 * time.Second)
	for modelStatus(t, base, "bert-mean") != "available" {
		if time.Now().After(deadline) {
			t.Fatal("bert-mean still loaded 15s after its last request with idle_unload 1s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	embeddingsOf(t, sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", `{"model":"bert-mean","input":"hello"}`), "bert-mean", false)
}

// TestEmbeddingsAutoDownload: with auto_download, /v1/embeddings for a hub
// embedding model not on disk fetches the sentence-transformers repository
// (pooling and Normalize modules included) and answers with the reference
// vectors.
func TestEmbeddingsAutoDownload(t *testing.T) {
	const commit = "89abcdef0123456789abcdef0123456789abcdef"
	var files []hubtest.File
	src := filepath.Join(embedFixtures, "bert-mean")
	for _, n := range []string{"config.json", "model.safetensors", "modules.json", "1_Pooling/config.json",
		"config_sentence_transformers.json", "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, hubtest.File{Name: n, Content: b, LFS: strings.HasSuffix(n, ".safetensors")})
	}
	fake := hubtest.New(&hubtest.Repo{ID: "huborg/bert-mean", Commit: commit, Files: files})
	defer fake.Close()
	ref := loadEmbedReference(t)
	port, adminPort := freePort(t), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := embedConfig(fmt.Sprintf("127.0.0.1:%d", adminPort), port, t.TempDir(), false)
	cfg = strings.Replace(cfg, "\t\tmodels_dir ", "\t\tauto_download\n\t\tauto_download_wait 30s\n\t\tmodels_dir ", 1)
	s := startServer(t, cfg, "HF_ENDPOINT="+fake.URL, "HF_TOKEN=", "HF_HUB_OFFLINE=")
	s.waitReady(base + "/api/health")
	b, _ := json.Marshal(map[string]any{"model": "huborg/bert-mean", "input": referenceInputs(ref)})
	got, _ := embeddingsOf(t, sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", string(b)), "huborg/bert-mean", false)
	checkVectors(t, "auto-downloaded bert-mean", got, ref.Embeddings["f32"]["mean_norm"])
	// Not a hub repository id: a plain 404, nothing fetched.
	wantOpenAIError(t, "non-hub id", sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", `{"model":"plain-name","input":"hi"}`),
		404, "model", "plain-name")
}

// TestEmbeddingsXLMRoberta serves the tiny XLM-R fixture (Unigram
// tokenizer with a Precompiled normalizer, RoBERTa positions, mean pooling,
// Normalize) from the built binary: token inputs match the float64
// reference, and multilingual texts embed with their Unigram token counts.
func TestEmbeddingsXLMRoberta(t *testing.T) {
	models := t.TempDir()
	linkEmbedFixture(t, models, "xlmr-mean")
	raw, err := os.ReadFile(filepath.Join(embedFixtures, "xlmr-reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		IDs        [][]int                `json:"ids"`
		Embeddings map[string][][]float64 `json:"embeddings"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	base := serveEmbeddings(t, models)
	var inputs [][]int
	for _, ids := range ref.IDs {
		inputs = append(inputs, ids[1:len(ids)-1]) // the server adds <s> and </s>
	}
	b, _ := json.Marshal(map[string]any{"model": "xlmr-mean", "input": inputs})
	got, _ := embeddingsOf(t, sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", string(b)), "xlmr-mean", false)
	checkVectors(t, "xlmr-mean", got, ref.Embeddings["mean_norm"])
	b, _ = json.Marshal(map[string]any{"model": "xlmr-mean", "input": []string{"Hello world", "Français : élève", "你好世界", "ＡＢＣ 😀"}})
	got, tokens := embeddingsOf(t, sendJSON(t, "POST", base+"/v1/embeddings", "full-secret", string(b)), "xlmr-mean", false)
	if len(got) != 4 || len(got[0]) != 32 || tokens < 12 {
		t.Errorf("texts: %d vectors, %d tokens", len(got), tokens)
	}
}
