package model

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// loadPooled loads the encoder folder dir and returns it with its pooled,
// normalised embeddings of seqs.
func loadPooled(t *testing.T, dir string, seqs [][]int32) (*Encoder, [][]float32) {
	t.Helper()
	enc, err := LoadEncoder(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	spec, err := LoadEmbedSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	return enc, poolAll(t, enc, spec, seqs)
}

func worstAbsDiff(a, b [][]float32) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, maxAbsDiff(a[i], b[i]))
	}
	return d
}

// TestEncoderMLX quantizes float encoders into MLX folders at test time
// (every Linear and embedding table, bfloat16 scales and biases, as
// mlx-community's converters write them) and checks, for bert, nomic_bert
// and xlm-roberta:
//   - with float activations, the quantized folder's embeddings equal those
//     of a float32 folder holding the dequantized weights (the same math);
//   - its cosine to the original float model stays above a floor measured
//     on these realistic-width random encoders (0.999 at 8 bits);
//   - with int8 activations the matrices run packed (one copy: the file's
//     pages are given back) at the same floor, and switching activations
//     to float afterwards gives the unpacked result bit for bit.
func TestEncoderMLX(t *testing.T) {
	template := filepath.Join("testdata", "embed", "bert-mean")
	seqs := quantSeqs()
	// Floors from the worst cosines measured (Zen 5, float / int8
	// activations): bert 8-bit 0.99948 / 0.99948, 4-bit g64 0.97910 /
	// 0.97892, 4-bit g32 0.98493 / 0.98493; nomic 8-bit 0.99990 / 0.99988,
	// 4-bit 0.98425 / 0.98422; the mixed recipe (3 bits, a 2-bit MLP
	// matrix) 0.94198 / 0.94204. At 4 bits the quantized embedding tables
	// cost about 0.005 (bert g64 with them in float: 0.98479; g32: 0.98873,
	// where llama.cpp's Q4_0 of the same model keeps 0.98591, see
	// TestEncoderQuantRealistic).
	for _, c := range []struct {
		name, fixture string
		shape         EncoderConfig
		bits, group   int
		overrides     map[string]any
		floor         float64 // cosine to the float model, float and int8 activations
		kinds         []string
	}{
		{name: "bert-8bit", shape: bgeSmallShape, bits: 8, group: 64, floor: 0.999, kinds: []string{"MLX 8-bit g64"}},
		{name: "bert-4bit", shape: bgeSmallShape, bits: 4, group: 64, floor: 0.975, kinds: []string{"MLX 4-bit g64"}},
		{name: "bert-4bit-g32", shape: bgeSmallShape, bits: 4, group: 32, floor: 0.98, kinds: []string{"MLX 4-bit g32"}},
		{name: "nomic-8bit", shape: nomicShape, bits: 8, group: 64, floor: 0.999, kinds: []string{"MLX 8-bit g64"}},
		{name: "nomic-4bit", shape: nomicShape, bits: 4, group: 64, floor: 0.98, kinds: []string{"MLX 4-bit g64"}},
		// A mixed recipe: per-module overrides of bits and group size, one
		// matrix kept in float, the word table at 6 bits.
		{name: "bert-mixed", shape: bgeSmallShape, bits: 3, group: 32, floor: 0.93, overrides: map[string]any{
			"embeddings.word_embeddings":           map[string]any{"bits": 6, "group_size": 64},
			"encoder.layer.0.attention.self.value": map[string]any{"bits": 8},
			"encoder.layer.1.output.dense":         map[string]any{"bits": 5, "group_size": 128},
			"encoder.layer.1.intermediate.dense":   map[string]any{"bits": 2, "group_size": 64},
			"encoder.layer.0.attention.self.query": false,
		}, kinds: []string{"MLX 3-bit g32", "MLX 6-bit g64", "MLX 8-bit g32", "MLX 5-bit g128", "MLX 2-bit g64", "F32"}},
		// The tiny trained-shape fixtures (hidden 32): the equality only.
		{name: "tiny-bert-4bit", fixture: "bert-mean", bits: 4, group: 32, kinds: []string{"MLX 4-bit g32"}},
		{name: "tiny-nomic-8bit", fixture: "nomic-mean", bits: 8, group: 32, kinds: []string{"MLX 8-bit g32"}},
		// xlm-roberta shares the loader; its position table, quantized,
		// drops the rows before padding_idx+1.
		{name: "tiny-xlmr-4bit", fixture: "xlmr-mean", bits: 4, group: 32, kinds: []string{"MLX 4-bit g32"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer kernels.SetInt8MLX(kernels.SetInt8MLX(true))
			defer kernels.SetInt8Activations(kernels.SetInt8Activations(false))
			tmp := t.TempDir()
			src := filepath.Join(tmp, "float")
			if c.fixture != "" {
				src = filepath.Join("testdata", "embed", c.fixture)
			} else if err := writeRandomEncoder(src, template, c.shape, false, 1); err != nil {
				t.Fatal(err)
			}
			qdir, fdir := filepath.Join(tmp, "mlx"), filepath.Join(tmp, "dequantized")
			if err := quantizeMLXFolder(src, qdir, fdir, c.bits, c.group, c.overrides); err != nil {
				t.Fatal(err)
			}
			tseqs := seqs
			if c.fixture != "" {
				tseqs = tinySeqs(seqs)
			}
			orig, ref := loadPooled(t, src, tseqs)
			_, deq := loadPooled(t, fdir, tseqs)
			q, got := loadPooled(t, qdir, tseqs)
			for _, k := range c.kinds {
				if !strings.Contains(q.Quantization(), k) {
					t.Errorf("storage %q does not name %q", q.Quantization(), k)
				}
			}
			if q.Params() != orig.Params() {
				t.Errorf("quantized model counts %d parameters, float %d", q.Params(), orig.Params())
			}
			if q.PackedBytes() != 0 {
				t.Errorf("float activations: %d bytes packed", q.PackedBytes())
			}
			if d := worstAbsDiff(got, deq); d > 1e-4 {
				t.Errorf("quantized vs dequantized float32: max |Δ| %.3g", d)
			}
			cosFloat := worstCosine(got, ref)
			t.Logf("%s: %s, worst cosine to float32 %.6f (float activations), max |Δ| to dequantized %.2g",
				c.name, q.Quantization(), cosFloat, worstAbsDiff(got, deq))
			if cosFloat < c.floor {
				t.Errorf("cosine to float32 %.6f < %.4g", cosFloat, c.floor)
			}

			// int8 activations: packed at load.
			kernels.SetInt8Activations(true)
			if !kernels.PackWanted(true) {
				t.Skipf("no packed kernels at level %q", kernels.Features())
			}
			p, packedOut := loadPooled(t, qdir, tseqs)
			if p.PackedBytes() == 0 || p.ReleasedBytes() == 0 && c.fixture == "" {
				t.Errorf("int8 activations: %d bytes packed, %d released", p.PackedBytes(), p.ReleasedBytes())
			}
			cosInt8 := worstCosine(packedOut, ref)
			t.Logf("%s: worst cosine to float32 %.6f with int8 activations (packed %d KiB, released %d KiB)",
				c.name, cosInt8, p.PackedBytes()>>10, p.ReleasedBytes()>>10)
			if cosInt8 < c.floor {
				t.Errorf("int8 activations: cosine to float32 %.6f < %.4g", cosInt8, c.floor)
			}
			// Back to float: the packed model widens its scales again from
			// the file and equals the one loaded unpacked.
			kernels.SetInt8Activations(false)
			spec, err := LoadEmbedSpec(qdir)
			if err != nil {
				t.Fatal(err)
			}
			back := poolAll(t, p, spec, tseqs)
			for i := range back {
				for j := range back[i] {
					if back[i][j] != got[i][j] {
						t.Fatalf("sequence %d, dim %d: %v after the fallback, %v loaded unpacked", i, j, back[i][j], got[i][j])
					}
				}
			}
		})
	}
}

// tinySeqs clips seqs to the tiny fixtures' 32 positions and vocabulary.
func tinySeqs(seqs [][]int32) [][]int32 {
	out := make([][]int32, len(seqs))
	for i, s := range seqs {
		s = append([]int32(nil), s[:min(len(s), 32)]...)
		for j := range s {
			s[j] %= 250
		}
		out[i] = s
	}
	return out
}

// TestEncoderMLXErrors: a broken MLX-quantized encoder folder is refused
// with an error that names the problem.
func TestEncoderMLXErrors(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "mlx")
	if err := quantizeMLXFolder(filepath.Join("testdata", "embed", "bert-mean"), src, "", 4, 32, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEncoder(src); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	const dense = "encoder.layer.0.output.dense"
	for _, c := range []struct {
		name string
		conf func(map[string]any)
		drop string // a tensor left out of the weights
		want string
	}{
		{name: "missing scales", drop: dense + ".scales", want: `module "` + dense + `" is not quantized (no ` + dense + `.scales`},
		{name: "missing scales of an override", drop: dense + ".scales",
			conf: func(c map[string]any) { quantBlock(c)[dense] = map[string]any{"bits": 4} },
			want: `quantized module "` + dense + `"`},
		{name: "missing biases", drop: dense + ".biases", want: `quantized module "` + dense + `"`},
		{name: "unsupported bits", conf: func(c map[string]any) { quantBlock(c)["bits"] = 7 }, want: "unsupported bits 7"},
		{name: "unsupported override bits", conf: func(c map[string]any) { quantBlock(c)[dense] = map[string]any{"bits": 1} },
			want: `module "` + dense + `": mlx: unsupported bits 1`},
		{name: "group size not dividing the columns", conf: func(c map[string]any) { quantBlock(c)["group_size"] = 128 },
			want: "32 columns is not a positive multiple of group size 128"},
		{name: "bits unlike the file's", conf: func(c map[string]any) { quantBlock(c)["bits"] = 8 },
			want: "want U32 [259 8] for 259×32 at 8 bits"},
		{name: "not affine", conf: func(c map[string]any) { quantBlock(c)["mode"] = "mxfp4" }, want: `mode "mxfp4" is not supported`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(tmp, strings.ReplaceAll(c.name, " ", "-"))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			var conf map[string]any
			if err := json.Unmarshal(raw, &conf); err != nil {
				t.Fatal(err)
			}
			if c.conf != nil {
				c.conf(conf)
			}
			b, _ := json.Marshal(conf)
			if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			set, err := safetensors.OpenModel(src)
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			var ts []safetensors.Tensor
			for _, name := range set.Names() {
				if name != c.drop {
					tn, _ := set.Tensor(name)
					ts = append(ts, tn)
				}
			}
			if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
				t.Fatal(err)
			}
			_, err = LoadEncoder(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// quantBlock returns the quantization block of a parsed config.json (the
// loader reads "quantization" first).
func quantBlock(conf map[string]any) map[string]any {
	q, ok := conf["quantization"].(map[string]any)
	if !ok {
		panic(fmt.Sprintf("no quantization block in %v", conf))
	}
	return q
}
