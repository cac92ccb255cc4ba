package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/model/modeltest"
	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/testutil"
)

// inProcessEmbeddings embeds seqs (whole, [CLS] … [SEP]) with the encoder
// GGUF at path in this process: the vectors the server must return.
func inProcessEmbeddings(t *testing.T, path string, seqs [][]int) [][]float32 {
	t.Helper()
	enc, spec, err := model.LoadEncoderGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	ids := make([][]int32, len(seqs))
	for i, s := range seqs {
		for _, id := range s {
			ids[i] = append(ids[i], int32(id))
		}
	}
	hidden, err := enc.Hidden(ids)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(seqs))
	for i, h := range hidden {
		out[i] = model.Pool(h, enc.Config.Hidden, spec.Pooling, spec.Normalize)
	}
	return out
}

// TestEmbeddingsGGUF converts the bert-mean fixture to GGUF at test time
// (F32 and Q8_0, as llama.cpp's converter lays encoders out, with the
// WordPiece vocabulary in the metadata) and serves both files, beside the
// safetensors folder, from the built binary: token-id inputs in float and
// base64 give the vectors the engine computes in process within 1e-5 (and
// the F32 file the float64 reference within 1e-4, Q8_0 cosine ≥ 0.999 to
// it), usage counts the [CLS]/[SEP] the server adds, texts tokenized by the
// GGUF vocabulary embed as the folder's tokenizer.json does, the models are
// listed with kind "embedding", and a chat request to one gets the 400 that
// names its kind.
func TestEmbeddingsGGUF(t *testing.T) {
	ref := loadEmbedReference(t)
	models := embedModels(t)
	src, err := filepath.Abs(filepath.Join(embedFixtures, "bert-mean"))
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, typ := range []quant.GGMLType{quant.GGMLF32, quant.GGMLQ8_0} {
		w, err := modeltest.ConvertEncoderToGGUF(src, typ)
		if err != nil {
			t.Fatal(err)
		}
		id := "bert-gguf-" + strings.ToLower(typ.String())
		paths[id] = filepath.Join(models, id+".gguf")
		if err := w.WriteFile(paths[id]); err != nil {
			t.Fatal(err)
		}
	}
	base := serveEmbeddings(t, models)
	inputs := referenceInputs(ref)
	wantTokens := 0
	for _, ids := range ref.IDs {
		wantTokens += len(ids)
	}
	texts := []string{"hello world", "The sea, the sea!"}
	folder, _ := embeddingsOf(t, postEmbeddings(t, base, map[string]any{"model": "bert-mean", "input": texts}), "bert-mean", false)

	for _, id := range []string{"bert-gguf-f32", "bert-gguf-q8_0"} {
		t.Run(id, func(t *testing.T) {
			want := inProcessEmbeddings(t, paths[id], ref.IDs)
			got, tokens := embeddingsOf(t, postEmbeddings(t, base, map[string]any{"model": id, "input": inputs}), id, false)
			checkClose(t, "float", got, want, 1e-5)
			if tokens != wantTokens {
				t.Errorf("prompt_tokens %d, want %d", tokens, wantTokens)
			}
			got, _ = embeddingsOf(t, postEmbeddings(t, base, map[string]any{"model": id, "input": inputs, "encoding_format": "base64"}), id, true)
			checkClose(t, "base64", got, want, 1e-5)
			got, _ = embeddingsOf(t, postEmbeddings(t, base, map[string]any{"model": id, "input": inputs[3]}), id, false)
			checkClose(t, "one token list", got, want[3:4], 1e-5)
			got, _ = embeddingsOf(t, postEmbeddings(t, base, map[string]any{"model": id, "input": texts}), id, false)
			if id == "bert-gguf-f32" {
				checkVectors(t, "against the reference", want, ref.Embeddings["f32"]["mean_norm"])
				checkClose(t, "texts against the folder", got, folder, 1e-5)
			} else {
				// Q8_0: the same tokens, weights within the format's loss.
				for i, w := range ref.Embeddings["f32"]["mean_norm"] {
					v := make([]float32, len(w))
					for j, x := range w {
						v[j] = float32(x)
					}
					if c := testutil.Cosine(want[i], v); c < 0.999 {
						t.Errorf("input %d: cosine to the reference %.6f", i, c)
					}
				}
				for i := range texts {
					if c := testutil.Cosine(got[i], folder[i]); c < 0.999 {
						t.Errorf("text %d: cosine to the folder's %.6f", i, c)
					}
				}
			}
			wantOpenAIError(t, "dimensions", postEmbeddings(t, base, map[string]any{"model": id, "input": "x", "dimensions": 8}), 400, "dimensions", "not trained for shortening")
			wantOpenAIError(t, "chat", sendJSON(t, "POST", base+"/v1/chat/completions", "full-secret",
				fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}]}`, id)), 400, "model", id+" is an embedding model")
			if r := do(t, "GET", base+"/v1/models/"+id, "full-secret"); r.status != 200 || r.body["kind"] != "embedding" {
				t.Errorf("/v1/models/%s: %d %v", id, r.status, r.body)
			}
		})
	}
	kinds := map[string]any{}
	for _, m := range do(t, "GET", base+"/v1/models", "full-secret").body["data"].([]any) {
		kinds[m.(map[string]any)["id"].(string)] = m.(map[string]any)["kind"]
	}
	if kinds["bert-gguf-f32"] != "embedding" || kinds["bert-gguf-q8_0"] != "embedding" {
		t.Errorf("/v1/models kinds %v", kinds)
	}
}
