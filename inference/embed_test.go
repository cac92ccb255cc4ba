package inference

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/testutil"
)

// embedRef is model/testdata/embed/reference.json (sentence-transformers).
type embedRef struct {
	IDs        [][]int32                         `json:"ids"`
	Embeddings map[string]map[string][][]float32 `json:"embeddings"`
}

// embedFixtures reads the reference file refName of the embedding fixtures
// (inference/model/testdata/embed) into ref and returns a new models folder
// linking the named fixture models.
func embedFixtures(t *testing.T, refName string, ref any, models ...string) string {
	t.Helper()
	fix, dir := linkEmbedFixtures(t, models...)
	raw, err := os.ReadFile(filepath.Join(fix, refName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, ref); err != nil {
		t.Fatal(err)
	}
	return dir
}

// linkEmbedFixtures returns the embedding fixtures' folder
// (inference/model/testdata/embed) and a new models folder linking the
// named fixture models.
func linkEmbedFixtures(t *testing.T, models ...string) (fix, dir string) {
	t.Helper()
	fix, err := filepath.Abs(filepath.Join("model", "testdata", "embed"))
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	for _, m := range models {
		if err := os.Symlink(filepath.Join(fix, m), filepath.Join(dir, m)); err != nil {
			t.Fatal(err)
		}
	}
	return fix, dir
}

// embedEngine starts an engine over a models folder holding the BERT
// embedding fixtures (linked) and the tiny chat model.
func embedEngine(t *testing.T, opts Options) (*Engine, embedRef) {
	t.Helper()
	var ref embedRef
	dir := embedFixtures(t, "reference.json", &ref, "bert-mean", "bert-cls", "bert-last")
	writeTinyModel(t, dir)
	opts.ModelsDir = dir
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, ref
}

func embMaxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// TestEmbed checks the engine path end to end on the fixtures: the scan's
// kinds, token-id inputs against sentence-transformers' vectors for each
// folder's own pooling and normalisation, text inputs against their token
// ids, prompts, truncation and the token counts.
func TestEmbed(t *testing.T) {
	e, ref := embedEngine(t, Options{})
	models, err := e.Models()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]ModelKind{}
	for _, m := range models {
		kinds[m.ID] = m.Kind
	}
	if kinds["bert-mean"] != KindEmbedding || kinds["bert-cls"] != KindEmbedding || kinds["tiny"] != KindChat {
		t.Errorf("kinds %v", kinds)
	}
	ctx := context.Background()
	for _, c := range []struct{ id, dtype, key string }{
		{"bert-mean", "f32", "mean_norm"}, {"bert-cls", "f16", "cls"}, {"bert-last", "bf16", "lasttoken_norm"},
	} {
		var in EmbedInputs
		for _, ids := range ref.IDs {
			in.TokenIDs = append(in.TokenIDs, ids[1:len(ids)-1]) // Embed adds [CLS] and [SEP]
		}
		res, err := e.Embed(ctx, c.id, in, EmbedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for i, v := range res.Embeddings {
			want := ref.Embeddings[c.dtype][c.key][i]
			if d, cs := embMaxDiff(v, want), testutil.Cosine(v, want); d > 1e-4 || cs < 0.99999 {
				t.Errorf("%s input %d: max abs diff %.3g, cosine %.7f", c.id, i, d, cs)
			}
			if res.Tokens[i] != len(ref.IDs[i]) {
				t.Errorf("%s input %d: %d tokens, want %d", c.id, i, res.Tokens[i], len(ref.IDs[i]))
			}
			total += len(ref.IDs[i])
		}
		if res.PromptTokens != total || res.Model != c.id {
			t.Errorf("%s: prompt tokens %d (want %d), model %q", c.id, res.PromptTokens, total, res.Model)
		}
	}

	m, err := e.LoadEmbedding(ctx, "bert-mean")
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"Hello world!", "Searching documents quickly", "你好世界", "The quick brown fox jumps over the lazy dog."}
	byText, err := e.Embed(ctx, "bert-mean", EmbedInputs{Texts: texts}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]int32
	for _, s := range texts {
		ids = append(ids, m.Tokenizer.Encode(s, false))
	}
	byIDs, err := e.Embed(ctx, "bert-mean", EmbedInputs{TokenIDs: ids}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if d := embMaxDiff(byText.Embeddings[i], byIDs.Embeddings[i]); d > 1e-6 {
			t.Errorf("text %q and its ids differ by %.3g", texts[i], d)
		}
	}
	q, err := e.Embed(ctx, "bert-mean", EmbedInputs{Texts: []string{"hello"}}, EmbedOptions{Prompt: "query"})
	if err != nil {
		t.Fatal(err)
	}
	qp, err := e.Embed(ctx, "bert-mean", EmbedInputs{Texts: []string{"query: hello"}}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := embMaxDiff(q.Embeddings[0], qp.Embeddings[0]); d > 1e-6 || q.Tokens[0] != 5 {
		t.Errorf("prompt: differs by %.3g, %d tokens", d, q.Tokens[0])
	}
	// bert-last names "query" as its default prompt.
	dq, err := e.Embed(ctx, "bert-last", EmbedInputs{Texts: []string{"hello"}}, EmbedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dp, err := e.Embed(ctx, "bert-last", EmbedInputs{Texts: []string{"query: hello"}}, EmbedOptions{Prompt: "query"})
	if err != nil || dq.Tokens[0] != 5 || dp.Tokens[0] != 7 {
		t.Errorf("default prompt: %v, tokens %v %v", err, dq.Tokens, dp.Tokens)
	}
	long := strings.Repeat("hello ", 100)
	tr, err := e.Embed(ctx, "bert-mean", EmbedInputs{Texts: []string{long}}, EmbedOptions{Truncate: true})
	if err != nil || tr.Tokens[0] != 48 {
		t.Fatalf("truncate: %v %v", err, tr.Tokens)
	}
	cut := strings.Repeat("hello ", 46)
	cr, err := e.Embed(ctx, "bert-mean", EmbedInputs{Texts: []string{cut}}, EmbedOptions{})
	if err != nil || embMaxDiff(cr.Embeddings[0], tr.Embeddings[0]) > 1e-6 {
		t.Errorf("truncated input differs from its first 46 words: %v", err)
	}
}

// TestEmbedErrors: every bad request gets its typed error, with a message
// that says what is wrong.
func TestEmbedErrors(t *testing.T) {
	e, _ := embedEngine(t, Options{})
	ctx := context.Background()
	check := func(name string, err, want error, msg string) {
		t.Helper()
		if err == nil || !errors.Is(err, want) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want %v mentioning %q", name, err, want, msg)
		}
	}
	embed := func(in EmbedInputs, o EmbedOptions) error {
		_, err := e.Embed(ctx, "bert-mean", in, o)
		return err
	}
	check("no inputs", embed(EmbedInputs{}, EmbedOptions{}), ErrEmptyInput, "no inputs")
	check("empty string", embed(EmbedInputs{Texts: []string{"a", ""}}, EmbedOptions{}), ErrEmptyInput, "input 1 is an empty string")
	check("empty ids", embed(EmbedInputs{TokenIDs: [][]int32{{}}}, EmbedOptions{}), ErrEmptyInput, "input 0 has no tokens")
	check("too many", embed(EmbedInputs{Texts: make([]string, MaxEmbedInputs+1)}, EmbedOptions{}), ErrTooManyInputs, "2049 inputs, at most 2048")
	check("both", embed(EmbedInputs{Texts: []string{"a"}, TokenIDs: [][]int32{{5}}}, EmbedOptions{}), ErrInvalidInput, "texts and token ids")
	if err := embed(EmbedInputs{Texts: []string{}, TokenIDs: [][]int32{{5}}}, EmbedOptions{}); err != nil {
		t.Errorf("token ids beside an empty texts slice: %v", err)
	}
	check("bad id", embed(EmbedInputs{TokenIDs: [][]int32{{5, 259}}}, EmbedOptions{}), ErrInvalidInput, "token id 259 is outside the vocabulary (0..258)")
	check("prompt", embed(EmbedInputs{Texts: []string{"a"}}, EmbedOptions{Prompt: "nope"}), ErrInvalidInput, `no prompt named "nope"`)
	check("dimensions", embed(EmbedInputs{Texts: []string{"a"}}, EmbedOptions{Dimensions: 16}), ErrInvalidInput, "dimensions 16")
	err := embed(EmbedInputs{Texts: []string{"ok", strings.Repeat("hello ", 47)}}, EmbedOptions{})
	check("too long", err, ErrInputTooLong, "input 1 has 49 tokens, more than the model's maximum of 48")
	var tl *InputTooLongError
	if !errors.As(err, &tl) || tl.Index != 1 || tl.Tokens != 49 || tl.Max != 48 {
		t.Errorf("too long: %#v", tl)
	}
	if err := embed(EmbedInputs{Texts: []string{strings.Repeat("hello ", 46)}}, EmbedOptions{Dimensions: 32}); err != nil {
		t.Errorf("48 tokens and the full dimensions: %v", err)
	}
	_, err = e.Embed(ctx, "tiny", EmbedInputs{Texts: []string{"a"}}, EmbedOptions{})
	check("chat model", err, ErrNotEmbeddingModel, "tiny is a chat model")
	_, err = e.Load(ctx, "bert-mean")
	check("load for chat", err, ErrNotChatModel, "bert-mean is an embedding model")
	_, err = e.Embed(ctx, "missing", EmbedInputs{Texts: []string{"a"}}, EmbedOptions{})
	check("missing", err, ErrModelNotFound, `"missing"`)
	if got := e.LoadedEmbeddings(); len(got) != 1 || got[0] != "bert-mean" {
		t.Errorf("loaded embeddings %v", got)
	}
	if err := e.UnloadEmbedding("bert-mean"); err != nil || len(e.LoadedEmbeddings()) != 0 {
		t.Errorf("unload: %v, still loaded %v", err, e.LoadedEmbeddings())
	}
	check("unload missing", e.UnloadEmbedding("bert-mean"), ErrModelNotFound, "not loaded")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = e.Embed(cctx, "bert-cls", EmbedInputs{Texts: []string{"a"}}, EmbedOptions{})
	check("cancelled", err, context.Canceled, "canceled")
	e.Close()
	_, err = e.Embed(ctx, "bert-mean", EmbedInputs{Texts: []string{"a"}}, EmbedOptions{})
	check("closed", err, ErrUnloaded, "")
}

// TestEmbedChatProgress: a burst of embedding requests (8 clients, each
// sending requests of 64 inputs back to back) runs beside a chat stream on
// the same engine. Both must progress: within a minute the stream makes 20
// tokens while the burst runs and 24 embedding requests complete.
func TestEmbedChatProgress(t *testing.T) {
	e, _ := embedEngine(t, Options{KVCacheMB: 64})
	ctx := context.Background()
	lm, err := e.Load(ctx, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.LoadEmbedding(ctx, "bert-mean"); err != nil {
		t.Fatal(err)
	}
	req := GenerateRequest{Prompt: []int32{5, 6, 7}, MaxTokens: 2000, Sampling: greedy()}
	req.Sampling.LogitBias = map[int32]float32{tinyEOS: -100}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ch, err := lm.Generate(sctx, req)
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	var burst, quit atomic.Bool
	var tokens, done atomic.Int64
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for ev := range ch {
			if ev.Err == nil && ev.Token >= 0 && burst.Load() {
				tokens.Add(1)
			}
		}
	}()
	texts := make([]string, 64)
	for i := range texts {
		texts[i] = strings.Repeat("searching documents quickly ", 1+i%7) // up to 44 tokens
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	burst.Store(true)
	start := time.Now()
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !quit.Load() {
				res, err := e.Embed(ctx, "bert-mean", EmbedInputs{Texts: texts}, EmbedOptions{})
				if err != nil {
					errs <- err
					return
				}
				if len(res.Embeddings) != len(texts) {
					errs <- errors.New("short result")
					return
				}
				done.Add(1)
			}
		}()
	}
	for time.Since(start) < time.Minute && (tokens.Load() < 20 || done.Load() < 24) && len(errs) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	quit.Store(true)
	wg.Wait()
	burst.Store(false)
	took := time.Since(start)
	stop()
	<-streamDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("in %v: %d embedding requests (%d inputs) and %d chat tokens", took, done.Load(), done.Load()*int64(len(texts)), tokens.Load())
	if tokens.Load() < 20 || done.Load() < 24 {
		t.Errorf("within %v the chat stream made %d tokens (want 20) and %d embedding requests finished (want 24)", took, tokens.Load(), done.Load())
	}
}
