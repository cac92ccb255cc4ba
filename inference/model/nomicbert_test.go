package model

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

func loadNomicRef(t *testing.T) embedRef {
	return readJSON[embedRef](t, filepath.Join("testdata", "embed", "nomic-reference.json"))
}

// checkEncoderAgainst runs enc over the reference sequences in one batch and
// compares every pooling, with and without normalisation, within maxAbs and
// minCos.
func checkEncoderAgainst(t *testing.T, enc *Encoder, ref embedRef, dtype string, maxAbs, minCos float64) {
	t.Helper()
	hidden, err := enc.Hidden(ref.IDs)
	if err != nil {
		t.Fatal(err)
	}
	checkHiddenAgainst(t, hidden, enc.Config.Hidden, ref, dtype, []Pooling{PoolMean, PoolCLS, PoolLastToken}, maxAbs, minCos)
}

// checkHiddenAgainst pools the hidden states of the reference sequences each
// given way, with and without normalisation, and compares them with the
// reference's vectors for dtype within maxAbs and minCos.
func checkHiddenAgainst(t *testing.T, hidden [][]float32, dim int, ref embedRef, dtype string, pools []Pooling, maxAbs, minCos float64) {
	t.Helper()
	worstAbs, worstCos := 0.0, 1.0
	for _, p := range pools {
		for _, norm := range []bool{false, true} {
			key := p.String()
			if norm {
				key += "_norm"
			}
			want := ref.Embeddings[dtype][key]
			if len(want) != len(ref.IDs) {
				t.Fatalf("reference %s/%s has %d vectors", dtype, key, len(want))
			}
			for i, h := range hidden {
				got := Pool(h, dim, p, norm)
				d, cs := maxAbsDiff(got, want[i]), testutil.Cosine(got, want[i])
				worstAbs, worstCos = math.Max(worstAbs, d), math.Min(worstCos, cs)
				if d > maxAbs || cs < minCos {
					t.Errorf("%s seq %d (%d tokens): max abs diff %.3g, cosine %.7f", key, i, len(ref.IDs[i]), d, cs)
				}
			}
		}
	}
	t.Logf("worst max abs diff %.3g, worst cosine %.8f", worstAbs, worstCos)
}

// TestNomicReference runs the tiny random nomic_bert (rotary positions,
// fused Wqkv, SwiGLU, no biases, vocabulary padded past the tokenizer's)
// over five sequences of 3 to 50 tokens and compares with the independent
// float64 reference of make_nomic_fixture_stdlib.py: within 1e-4 absolute
// and cosine ≥ 0.99999. A sequence alone gives the same states as in the
// batch (rotary positions restart per sequence).
func TestNomicReference(t *testing.T) {
	ref := loadNomicRef(t)
	enc, err := LoadEncoder(filepath.Join("testdata", "embed", "nomic-mean"))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if c := enc.Config; c.RotaryDim != 8 || !c.GatedMLP || c.QKVBias || c.MLPBias || c.RopeBase != 1000 {
		t.Fatalf("config %+v", c)
	}
	checkEncoderAgainst(t, enc, ref, "f32", 1e-4, 0.99999)
	all, err := enc.Hidden(ref.IDs)
	if err != nil {
		t.Fatal(err)
	}
	for i, ids := range ref.IDs {
		alone, err := enc.Hidden([][]int32{ids})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(alone[0], all[i]); d > 1e-5 {
			t.Errorf("sequence %d alone differs from the batch by %.3g", i, d)
		}
	}
}

// TestNomicConfigErrors: settings of nomic_bert this encoder does not run
// are refused by name.
func TestNomicConfigErrors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "embed", "nomic-mean", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	good := string(raw)
	if _, err := ParseEncoderConfig(raw); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, want string }{
		{`"activation_function": "swiglu"`, `"activation_function": "gelu"`, `activation_function "gelu"`},
		{`"causal": false`, `"causal": true`, "causal true"},
		{`"prenorm": false`, `"prenorm": true`, "prenorm true"},
		{`"rotary_emb_interleaved": false`, `"rotary_emb_interleaved": true`, "rotary_emb_interleaved"},
		{`"rotary_scaling_factor": null`, `"rotary_scaling_factor": 2`, "dynamic NTK"},
		{`"rotary_emb_fraction": 1.0`, `"rotary_emb_fraction": 0.1`, "rotates no dimension"},
		{`"rotary_emb_fraction": 1.0`, `"rotary_emb_fraction": 1.5`, "rotary_emb_fraction 1.5"},
		{`"mlp_fc1_bias": false`, `"mlp_fc1_bias": true`, "mlp_fc1_bias true with mlp_fc2_bias false"},
		{`"n_head": 4`, `"n_head": 5`, "not a multiple"},
		{`"n_embd": 32`, `"n_embd": 0`, "out of range"},
		{`"causal": false`, `"causal": false, "quantization": {"group_size": 64, "bits": 9}`, "nomic_bert config: quantization: mlx: unsupported bits 9"},
	} {
		bad := strings.Replace(good, c.from, c.to, 1)
		if bad == good {
			t.Fatalf("%q not in the fixture config", c.from)
		}
		if _, err := ParseEncoderConfig([]byte(bad)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming %q", c.to, err, c.want)
		}
	}
	// A missing tensor is named.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEncoder(dir); err == nil || !strings.Contains(err.Error(), "safetensors") && !strings.Contains(err.Error(), "no such file") {
		t.Errorf("no weights: %v", err)
	}
}

// TestNomicMLPWidth: the gated MLP is as wide as nomic's model code makes
// it, n_inner (8/3 of the width without one) rounded up to a multiple of
// 256, the width of the weights it saves.
func TestNomicMLPWidth(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "embed", "nomic-mean", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, to string
		want     int
	}{
		{`"n_inner": 256`, `"n_inner": 256`, 256},
		{`"n_inner": 256`, `"n_inner": 200`, 256},
		{`"n_inner": 256`, `"n_inner": 3072`, 3072},
	} {
		cfg, err := ParseEncoderConfig([]byte(strings.Replace(string(raw), c.from, c.to, 1)))
		if err != nil || cfg.Intermediate != c.want {
			t.Errorf("%s: intermediate %d, %v; want %d", c.to, cfg.Intermediate, err, c.want)
		}
	}
	noInner := strings.Replace(string(raw), `"n_inner": 256,`, "", 1)
	noInner = strings.Replace(noInner, `"n_embd": 32`, `"n_embd": 768`, 1)
	noInner = strings.Replace(noInner, `"n_head": 4`, `"n_head": 12`, 1)
	if cfg, err := ParseEncoderConfig([]byte(noInner)); err != nil || cfg.Intermediate != 2048 {
		t.Errorf("no n_inner, n_embd 768: intermediate %d, %v; want 2048", cfg.Intermediate, err)
	}
}

// TestRoPETableGrows: the rotary table is built for the longest sequence
// seen (at least 512 positions, at most the configured maximum), not for
// a maximum a config may set far beyond what is sent, and grows as longer
// sequences come.
func TestRoPETableGrows(t *testing.T) {
	e := &Encoder{Config: EncoderConfig{RotaryDim: 8, MaxPositions: 1 << 30}}
	e.invFreq = []float32{1, 0.1, 0.01, 0.001}
	for _, c := range []struct{ n, want int }{{3, 512}, {512, 512}, {513, 513}, {100, 513}, {4000, 4000}} {
		if got := e.ropeTable(c.n).Len(); got != c.want {
			t.Fatalf("after a sequence of %d: table of %d positions, want %d", c.n, got, c.want)
		}
	}
	e = &Encoder{Config: EncoderConfig{RotaryDim: 8, MaxPositions: 64}}
	e.invFreq = []float32{1, 0.1, 0.01, 0.001}
	if got := e.ropeTable(10).Len(); got != 64 {
		t.Fatalf("table of %d positions, want the model's maximum 64", got)
	}
}
