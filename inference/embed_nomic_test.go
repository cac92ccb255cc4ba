package inference

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// TestEmbedNomic: the nomic_bert fixture is found as an embedding model,
// its nomic task prompts ("search_query: ", ...) go before the text, and
// being Matryoshka-trained (its card says so) it shortens to any size up to
// its own, renormalized, while a size past it is ErrInvalidInput.
func TestEmbedNomic(t *testing.T) {
	fix, err := filepath.Abs(filepath.Join("model", "testdata", "embed", "nomic-mean"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(fix, filepath.Join(dir, "nomic-mean")); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{ModelsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	info, err := e.FindModel("nomic-mean")
	if err != nil || info.Kind != KindEmbedding {
		t.Fatalf("nomic-mean: %+v, %v", info, err)
	}
	q, err := e.Embed(ctx, "nomic-mean", EmbedInputs{Texts: []string{"hello"}}, EmbedOptions{Prompt: "query"})
	if err != nil {
		t.Fatal(err)
	}
	qp, err := e.Embed(ctx, "nomic-mean", EmbedInputs{Texts: []string{"search_query: hello"}}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := embMaxDiff(q.Embeddings[0], qp.Embeddings[0]); d > 1e-6 || q.Tokens[0] != qp.Tokens[0] {
		t.Errorf("query prompt: differs by %.3g, tokens %d vs %d", d, q.Tokens[0], qp.Tokens[0])
	}
	short, err := e.Embed(ctx, "nomic-mean", EmbedInputs{Texts: []string{"search_query: hello"}}, EmbedOptions{Dimensions: 8})
	if err != nil {
		t.Fatal(err)
	}
	v := short.Embeddings[0]
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if len(v) != 8 || math.Abs(n-1) > 1e-5 || testutil.Cosine(v, qp.Embeddings[0][:8]) < 0.99999 {
		t.Errorf("dimensions 8: %d entries, squared norm %v", len(v), n)
	}
	if _, err := e.Embed(ctx, "nomic-mean", EmbedInputs{Texts: []string{"x"}}, EmbedOptions{Dimensions: 33}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("dimensions 33: %v", err)
	}
}
