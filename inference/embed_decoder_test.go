package inference

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// TestEmbedDecoder serves the tiny Qwen3-Embedding-style fixtures (float32
// and MLX 8-bit) through the engine: listed as embedding models, token ids
// (the tokenizer's <|endoftext|> appended) match the float64 reference of
// the last token's normalised hidden state (float32 within 1e-4, cosine
// 0.99999; MLX 8-bit on the int8 kernels at cosine 0.999), texts match their own ids, and
// the "query" prompt is the instruction put before the text.
func TestEmbedDecoder(t *testing.T) {
	var ref embedRef
	dir := embedFixtures(t, "qwen3-reference.json", &ref, "qwen3-last", "qwen3-last-mlx8")
	// A decoder folder pooling the mean is refused at load.
	mean := filepath.Join(dir, "qwen3-mean")
	if err := os.MkdirAll(filepath.Join(mean, "1_Pooling"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"config.json", "model.safetensors", "modules.json", "tokenizer.json", "tokenizer_config.json"} {
		if err := os.Symlink(filepath.Join(dir, "qwen3-last", n), filepath.Join(mean, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(mean, "1_Pooling", "config.json"), []byte(`{"word_embedding_dimension":32,"pooling_mode_mean_tokens":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{ModelsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	models, err := e.Models()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range models {
		if m.Kind != KindEmbedding {
			t.Errorf("%s is listed as %s", m.ID, m.Kind)
		}
	}
	ctx := context.Background()
	if _, err := e.LoadEmbedding(ctx, "qwen3-mean"); err == nil || !strings.Contains(err.Error(), "needs last-token pooling, not mean") {
		t.Errorf("mean-pooling decoder: %v", err)
	}
	// The float32 copy within 1e-4 and cosine 0.99999; the MLX copy runs
	// the int8 kernels (activations rounded to 8 bits), so cosine 0.999.
	for _, c := range []struct {
		id, key     string
		absTol, cos float64
	}{{"qwen3-last", "f32", 1e-4, 0.99999}, {"qwen3-last-mlx8", "mlx8", 5e-2, 0.999}} {
		var in EmbedInputs
		for _, ids := range ref.IDs[1:] { // the first is <|endoftext|> alone
			in.TokenIDs = append(in.TokenIDs, ids[:len(ids)-1]) // Embed appends <|endoftext|>
		}
		res, err := e.Embed(ctx, c.id, in, EmbedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range res.Embeddings {
			i := k + 1
			want := ref.Embeddings[c.key]["lasttoken_norm"][i]
			if d, cs := embMaxDiff(v, want), testutil.Cosine(v, want); d > c.absTol || cs < c.cos {
				t.Errorf("%s input %d: max abs diff %.3g, cosine %.7f", c.id, i, d, cs)
			}
			if res.Tokens[k] != len(ref.IDs[i]) {
				t.Errorf("%s input %d: %d tokens, want %d", c.id, i, res.Tokens[k], len(ref.IDs[i]))
			}
		}
	}
	m, err := e.LoadEmbedding(ctx, "qwen3-last")
	if err != nil {
		t.Fatal(err)
	}
	if m.MaxTokens != 128 || m.Dim != 32 {
		t.Errorf("max tokens %d, dim %d", m.MaxTokens, m.Dim)
	}
	texts := []string{"What is the capital of France?", "Paris is the capital of France.", "你好世界 😀"}
	byText, err := e.Embed(ctx, "qwen3-last", EmbedInputs{Texts: texts}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]int32
	for _, s := range texts {
		ids = append(ids, m.Tokenizer.Encode(s, false))
	}
	byIDs, err := e.Embed(ctx, "qwen3-last", EmbedInputs{TokenIDs: ids}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if d := embMaxDiff(byText.Embeddings[i], byIDs.Embeddings[i]); d > 1e-6 || byText.Tokens[i] != len(ids[i])+1 {
			t.Errorf("text %q: differs from its ids by %.3g, %d tokens", texts[i], d, byText.Tokens[i])
		}
	}
	instr := "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
	q, err := e.Embed(ctx, "qwen3-last", EmbedInputs{Texts: []string{"capital of France"}}, EmbedOptions{Prompt: "query"})
	if err != nil {
		t.Fatal(err)
	}
	qp, err := e.Embed(ctx, "qwen3-last", EmbedInputs{Texts: []string{instr + "capital of France"}}, EmbedOptions{Prompt: "document"})
	if err != nil || embMaxDiff(q.Embeddings[0], qp.Embeddings[0]) > 1e-6 || q.Tokens[0] != len(instr)+len("capital of France")+1 {
		t.Errorf("query prompt: %v, tokens %v %v", err, q.Tokens, qp.Tokens)
	}
}
