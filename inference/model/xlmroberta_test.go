package model

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

// TestXLMRobertaReference runs the tiny random XLM-R encoder
// (testdata/embed/xlmr-mean, from make_xlmr_fixture_stdlib.py) over five
// sequences of 3 to 64 tokens, the last filling every position row, and
// compares mean and CLS pooling, with and without normalisation, with the
// float64 reference: within 1e-4 absolute and cosine ≥ 0.99999. A copy
// whose tensors carry transformers' "roberta." prefix gives the same.
func TestXLMRobertaReference(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "embed", "xlmr-reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		IDs        [][]int32              `json:"ids"`
		Embeddings map[string][][]float32 `json:"embeddings"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "embed", "xlmr-mean")
	prefixed := t.TempDir()
	for _, n := range []string{"config.json"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(prefixed, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	renameTensors(t, filepath.Join(dir, "model.safetensors"), filepath.Join(prefixed, "model.safetensors"), "roberta.")
	for _, folder := range []string{dir, prefixed} {
		enc, err := LoadEncoder(folder)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		if c := enc.Config; c.Architecture != "xlm-roberta" || c.PosOffset != 2 || c.MaxPositions != 64 || c.TypeVocab != 1 {
			t.Fatalf("config %+v", c)
		}
		hidden, err := enc.Hidden(ref.IDs)
		if err != nil {
			t.Fatal(err)
		}
		worstAbs, worstCos := 0.0, 1.0
		for _, p := range []Pooling{PoolMean, PoolCLS} {
			for _, norm := range []bool{false, true} {
				key := p.String()
				if norm {
					key += "_norm"
				}
				for i, h := range hidden {
					got, want := Pool(h, enc.Config.Hidden, p, norm), ref.Embeddings[key][i]
					d, cs := maxAbsDiff(got, want), testutil.Cosine(got, want)
					worstAbs, worstCos = math.Max(worstAbs, d), math.Min(worstCos, cs)
					if d > 1e-4 || cs < 0.99999 {
						t.Errorf("%s %s seq %d (%d tokens): max abs diff %.3g, cosine %.7f", folder, key, i, len(ref.IDs[i]), d, cs)
					}
				}
			}
		}
		t.Logf("%s: worst max abs diff %.3g, worst cosine %.8f", folder, worstAbs, worstCos)
		if _, err := enc.Hidden([][]int32{make([]int32, 65)}); !errors.Is(err, ErrSequenceTooLong) {
			t.Errorf("65 tokens: %v", err)
		}
	}
}

// renameTensors copies a safetensors file with prefix put before every
// tensor name.
func renameTensors(t *testing.T, src, dst, prefix string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for k, v := range hdr {
		if k != "__metadata__" {
			k = prefix + k
		}
		out[k] = v
	}
	h, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	file = append(append(file, h...), b[8+n:]...)
	if err := os.WriteFile(dst, file, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestXLMRobertaConfig: the position offset follows pad_token_id, and a
// position table too small for it is refused.
func TestXLMRobertaConfig(t *testing.T) {
	base := `"vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"type_vocab_size":1`
	c, err := ParseEncoderConfig([]byte(`{"model_type":"xlm-roberta",` + base + `,"max_position_embeddings":514,"pad_token_id":1}`))
	if err != nil || c.PosOffset != 2 || c.MaxPositions != 512 {
		t.Errorf("xlm-roberta: %+v %v", c, err)
	}
	c, err = ParseEncoderConfig([]byte(`{"model_type":"roberta",` + base + `,"max_position_embeddings":40,"pad_token_id":5}`))
	if err != nil || c.PosOffset != 6 || c.MaxPositions != 34 {
		t.Errorf("roberta pad 5: %+v %v", c, err)
	}
	if !IsEncoderType("xlm-roberta") || !IsEncoderType("roberta") {
		t.Error("xlm-roberta/roberta are not encoder types")
	}
	_, err = ParseEncoderConfig([]byte(`{"model_type":"xlm-roberta",` + base + `,"max_position_embeddings":2}`))
	if err == nil || !strings.Contains(err.Error(), "max_position_embeddings") {
		t.Errorf("table smaller than the offset: %v", err)
	}
}
