package bench

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/model"
)

// TestRandomEncoderGGUF: the random encoders load as GGUF encoders of
// their shapes and give finite, distinct embeddings (tiny versions of the
// shapes, to keep the test quick); EmbedCompare prints a BENCH line.
func TestRandomEncoderGGUF(t *testing.T) {
	dir := t.TempDir()
	for _, s := range EncoderShapes {
		s.Layers, s.Vocab = 2, 300
		for _, q := range []string{"f16", "q8_0"} {
			path := filepath.Join(dir, s.Name+"-"+q+".gguf")
			if err := WriteRandomEncoderGGUF(path, s, q, 1); err != nil {
				t.Fatal(err)
			}
			enc, spec, err := model.LoadEncoderGGUF(path)
			if err != nil {
				t.Fatal(err)
			}
			h, err := enc.Hidden([][]int32{{encCLS, 7, 8, encSEP}, {encCLS, 9, encSEP}})
			enc.Close()
			if err != nil {
				t.Fatal(err)
			}
			a, b := model.Pool(h[0], s.Hidden, spec.Pooling, true), model.Pool(h[1], s.Hidden, spec.Pooling, true)
			same := true
			for i := range a {
				if math.IsNaN(float64(a[i])) || math.IsInf(float64(a[i]), 0) {
					t.Fatalf("%s %s: non-finite embedding", s.Name, q)
				}
				same = same && a[i] == b[i]
			}
			if same || enc.Config.Hidden != s.Hidden {
				t.Errorf("%s %s: config %+v, distinct inputs give the same vector: %v", s.Name, q, enc.Config, same)
			}
		}
	}
	var out fakeWriter
	path := filepath.Join(dir, EncoderShapes[0].Name+"-f16.gguf")
	res, err := EmbedCompare(EmbedOptions{Model: "tiny", Quant: "f16", GGUF: path, Threads: []int{1}, Batch: 2, SeqLen: 8, Repeats: 1, Lines: &out})
	if err != nil || len(res) != 1 || res[0].Impetus <= 0 {
		t.Fatalf("EmbedCompare: %v %+v", err, res)
	}
	t.Logf("%s", out)
}

type fakeWriter []byte

func (w *fakeWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }

// BenchmarkEncoderEmbed runs one batch of 32 inputs of 128 tokens through
// the encoder GGUF at $IMPETUS_EMBED_GGUF (impetus bench --embed --write
// makes one).
func BenchmarkEncoderEmbed(b *testing.B) {
	path := os.Getenv("IMPETUS_EMBED_GGUF")
	if path == "" {
		b.Skip("set IMPETUS_EMBED_GGUF to an encoder GGUF")
	}
	enc, _, err := model.LoadEncoderGGUF(path)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	seqs := make([][]int32, 32)
	for i := range seqs {
		seqs[i] = make([]int32, 128)
		for j := range seqs[i] {
			seqs[i][j] = int32(5 + (i*131+j*17)%1000)
		}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := enc.Hidden(seqs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(32*b.N)/b.Elapsed().Seconds(), "emb/s")
}
