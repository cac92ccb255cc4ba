package model

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/safetensors"
)

// writeRandomBERT writes a random float32 BERT (hidden 16, 2 heads, 1
// layer) into dir, leaving out the tensor named skip.
func writeRandomBERT(t *testing.T, dir, skip string) {
	t.Helper()
	cfg := `{"model_type":"bert","vocab_size":40,"hidden_size":16,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":32,"max_position_embeddings":24,"type_vocab_size":2}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var ts []safetensors.Tensor
	add := func(name string, shape ...int) {
		if name == skip {
			return
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		b := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(r.NormFloat64()*0.3)))
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: b})
	}
	add("embeddings.word_embeddings.weight", 40, 16)
	add("embeddings.position_embeddings.weight", 24, 16)
	add("embeddings.token_type_embeddings.weight", 2, 16)
	add("embeddings.LayerNorm.weight", 16)
	add("embeddings.LayerNorm.bias", 16)
	p := "encoder.layer.0."
	for _, l := range []struct {
		name       string
		rows, cols int
	}{{"attention.self.query", 16, 16}, {"attention.self.key", 16, 16}, {"attention.self.value", 16, 16},
		{"attention.output.dense", 16, 16}, {"intermediate.dense", 32, 16}, {"output.dense", 16, 32}} {
		add(p+l.name+".weight", l.rows, l.cols)
		add(p+l.name+".bias", l.rows)
	}
	for _, n := range []string{"attention.output.LayerNorm", "output.LayerNorm"} {
		add(p+n+".weight", 16)
		add(p+n+".bias", 16)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
}

// TestEncoderBatchInvariance: on a random encoder, a sequence's states do
// not depend on the other sequences of its batch (no padding is involved),
// and a missing tensor is named in the load error.
func TestEncoderBatchInvariance(t *testing.T) {
	dir := t.TempDir()
	writeRandomBERT(t, dir, "")
	enc, err := LoadEncoder(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	seqs := [][]int32{{1, 2, 3}, {4}, {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}, {30, 31, 39}}
	all, err := enc.Hidden(seqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range seqs {
		alone, err := enc.Hidden([][]int32{s})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(alone[0], all[i]); d > 1e-5 || len(alone[0]) != len(s)*16 {
			t.Errorf("sequence %d: alone differs from batched by %.3g", i, d)
		}
		for _, v := range all[i] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("sequence %d: non-finite state", i)
			}
		}
	}
	for _, missing := range []string{"embeddings.LayerNorm.bias", "encoder.layer.0.intermediate.dense.weight"} {
		d := t.TempDir()
		writeRandomBERT(t, d, missing)
		if _, err := LoadEncoder(d); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: %v", missing, err)
		}
	}
}
