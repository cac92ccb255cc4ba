package inference

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestEmbeddingMaxLoadedModels: embedding and chat models share
// MaxLoadedModels. With a cap of one, loading either kind evicts the idle
// other; a busy embedding model is not evicted (ErrTooManyModels), and an
// evicted one loads again on its next call.
func TestEmbeddingMaxLoadedModels(t *testing.T) {
	e, _ := embedEngine(t, Options{MaxLoadedModels: 1})
	ctx := context.Background()
	if _, err := e.Load(ctx, "tiny"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Embed(ctx, "bert-mean", EmbedInputs{Texts: []string{"hello"}}, EmbedOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, emb := e.Loaded(), e.LoadedEmbeddings(); len(got) != 0 || !slices.Equal(emb, []string{"bert-mean"}) {
		t.Fatalf("after embedding: chat %v, embedding %v", got, emb)
	}
	if _, err := e.Embed(ctx, "bert-cls", EmbedInputs{Texts: []string{"hello"}}, EmbedOptions{}); err != nil {
		t.Fatal(err)
	}
	if emb := e.LoadedEmbeddings(); !slices.Equal(emb, []string{"bert-cls"}) {
		t.Fatalf("second embedding model: loaded %v", emb)
	}
	// Hold bert-cls as a running call does: the chat load finds no room.
	m := e.EmbeddingModelByID("bert-cls")
	if m == nil || !m.life.acquire() {
		t.Fatal("bert-cls not loaded")
	}
	if _, err := e.Load(ctx, "tiny"); !errors.Is(err, ErrTooManyModels) {
		t.Errorf("load beside a busy embedding model: %v", err)
	}
	m.life.release()
	if _, err := e.Load(ctx, "tiny"); err != nil {
		t.Fatal(err)
	}
	if got, emb := e.Loaded(), e.LoadedEmbeddings(); !slices.Equal(got, []string{"tiny"}) || len(emb) != 0 {
		t.Fatalf("after chat load: chat %v, embedding %v", got, emb)
	}
	if _, err := e.Embed(ctx, "bert-cls", EmbedInputs{Texts: []string{"again"}}, EmbedOptions{}); err != nil {
		t.Fatalf("evicted model does not load again: %v", err)
	}
}

// TestEmbeddingIdleUnload: IdleUnload frees an embedding model no call has
// held for that long, and the next call loads it again.
func TestEmbeddingIdleUnload(t *testing.T) {
	e, _ := embedEngine(t, Options{IdleUnload: 100 * time.Millisecond})
	ctx := context.Background()
	if _, err := e.Embed(ctx, "bert-mean", EmbedInputs{Texts: []string{"hello"}}, EmbedOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.LoadedEmbeddings()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still loaded after 5s: %v", e.LoadedEmbeddings())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := e.Embed(ctx, "bert-mean", EmbedInputs{Texts: []string{"hello"}}, EmbedOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestEmbeddingUnloadModel: UnloadModel unloads an embedding model. A
// graceful unload waits for the call holding it; one that runs out of time
// is ErrModelBusy and leaves the model serving; force frees it at once.
func TestEmbeddingUnloadModel(t *testing.T) {
	e, _ := embedEngine(t, Options{})
	ctx := context.Background()
	if _, err := e.LoadEmbedding(ctx, "bert-mean"); err != nil {
		t.Fatal(err)
	}
	m := e.EmbeddingModelByID("bert-mean")
	m.life.acquire()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := e.UnloadModel(short, "bert-mean", false)
	cancel()
	if !errors.Is(err, ErrModelBusy) || e.EmbeddingModelByID("bert-mean") != m {
		t.Fatalf("busy unload: %v, loaded %v", err, e.LoadedEmbeddings())
	}
	done := make(chan error, 1)
	go func() { done <- e.UnloadModel(ctx, "bert-mean", false) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("graceful unload did not wait: %v", err)
	default:
	}
	m.life.release()
	if err := <-done; err != nil || len(e.LoadedEmbeddings()) != 0 {
		t.Fatalf("graceful unload: %v, loaded %v", err, e.LoadedEmbeddings())
	}
	if _, err := e.LoadEmbedding(ctx, "bert-mean"); err != nil {
		t.Fatal(err)
	}
	if err := e.UnloadModel(ctx, "bert-mean", true); err != nil || len(e.LoadedEmbeddings()) != 0 {
		t.Fatalf("forced unload: %v, loaded %v", err, e.LoadedEmbeddings())
	}
	if err := e.UnloadModel(ctx, "bert-mean", true); !errors.Is(err, ErrModelNotFound) {
		t.Errorf("unload of an unloaded model: %v", err)
	}
}
