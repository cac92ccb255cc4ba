package inference

import (
	"context"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// TestEmbedXLMRoberta serves the tiny XLM-R fixture (a sentence-transformers
// folder with a Unigram tokenizer, mean pooling, Normalize and e5's
// "query: " prompt) through the engine: listed as an embedding model, token
// ids match the float64 reference, multilingual texts match their own
// Unigram ids, the prompt is put before the text, and the 64-token maximum
// counts <s> and </s>.
func TestEmbedXLMRoberta(t *testing.T) {
	var ref struct {
		IDs        [][]int32              `json:"ids"`
		Embeddings map[string][][]float32 `json:"embeddings"`
	}
	dir := embedFixtures(t, "xlmr-reference.json", &ref, "xlmr-mean")
	e, err := New(Options{ModelsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	models, err := e.Models()
	if err != nil || len(models) != 1 || models[0].Kind != KindEmbedding {
		t.Fatalf("models %+v, %v", models, err)
	}
	ctx := context.Background()
	var in EmbedInputs
	for _, ids := range ref.IDs {
		in.TokenIDs = append(in.TokenIDs, ids[1:len(ids)-1]) // Embed adds <s> and </s>
	}
	res, err := e.Embed(ctx, "xlmr-mean", in, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range res.Embeddings {
		want := ref.Embeddings["mean_norm"][i]
		if d, cs := embMaxDiff(v, want), testutil.Cosine(v, want); d > 1e-4 || cs < 0.99999 {
			t.Errorf("input %d: max abs diff %.3g, cosine %.7f", i, d, cs)
		}
		if res.Tokens[i] != len(ref.IDs[i]) {
			t.Errorf("input %d: %d tokens, want %d", i, res.Tokens[i], len(ref.IDs[i]))
		}
	}
	m, err := e.LoadEmbedding(ctx, "xlmr-mean")
	if err != nil {
		t.Fatal(err)
	}
	if m.MaxTokens != 64 {
		t.Errorf("max tokens %d, want 64", m.MaxTokens)
	}
	texts := []string{"Hello world!", "Français : élève, café", "你好世界 日本語", "ＡＢＣ  the quick brown fox 😀"}
	byText, err := e.Embed(ctx, "xlmr-mean", EmbedInputs{Texts: texts}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]int32
	for _, s := range texts {
		ids = append(ids, m.Tokenizer.Encode(s, false))
	}
	byIDs, err := e.Embed(ctx, "xlmr-mean", EmbedInputs{TokenIDs: ids}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if d := embMaxDiff(byText.Embeddings[i], byIDs.Embeddings[i]); d > 1e-6 {
			t.Errorf("text %q and its ids differ by %.3g", texts[i], d)
		}
	}
	q, err := e.Embed(ctx, "xlmr-mean", EmbedInputs{Texts: []string{"hello"}}, EmbedOptions{Prompt: "query"})
	if err != nil {
		t.Fatal(err)
	}
	qp, err := e.Embed(ctx, "xlmr-mean", EmbedInputs{Texts: []string{"query: hello"}}, EmbedOptions{})
	if err != nil || embMaxDiff(q.Embeddings[0], qp.Embeddings[0]) > 1e-6 || q.Tokens[0] != qp.Tokens[0] {
		t.Errorf("prompt: %v, tokens %v %v", err, q.Tokens, qp.Tokens)
	}
	long := make([]int32, 63)
	for i := range long {
		long[i] = 10
	}
	if _, err := e.Embed(ctx, "xlmr-mean", EmbedInputs{TokenIDs: [][]int32{long}}, EmbedOptions{}); err == nil {
		t.Error("65 tokens with <s> and </s> accepted")
	}
	if r, err := e.Embed(ctx, "xlmr-mean", EmbedInputs{TokenIDs: [][]int32{long[:62]}}, EmbedOptions{}); err != nil || r.Tokens[0] != 64 {
		t.Errorf("64 tokens: %v", err)
	}
}
