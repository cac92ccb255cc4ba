package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/kernels"
)

// TestMain runs the model tests with float activations for MLX weights: the
// fixture tests check the float path against transformers to 0.03 in
// log-probability and exact greedy ids. The int8 path, on by default in the
// server as for GGUF Q4_0/Q8_0, is measured by TestInt8Fixtures.
func TestMain(m *testing.M) {
	kernels.SetInt8MLX(false)
	os.Exit(m.Run())
}

// int8Tolerance bounds the log-probability error of int8 activations on
// the MLX 4-bit fixtures. Worst seen: 0.28 (own smollm3-mlx4), 0.12-0.19 on
// the others; these tiny models' hidden sizes of 64 leave little averaging
// of the rounding, so real models see less.
const int8Tolerance = 0.4

// TestInt8Fixtures checks MLX 4-bit fixtures with int8 activations (the
// serving default) against transformers' float results.
func TestInt8Fixtures(t *testing.T) {
	defer kernels.SetInt8MLX(kernels.SetInt8MLX(true))
	defer kernels.SetInt8Activations(kernels.SetInt8Activations(true))
	if !kernels.Int8Activations() {
		t.Skipf("no int8 path at level %q", kernels.Features())
	}
	entries, err := os.ReadDir(ownFixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "-mlx4") {
			t.Run("own/"+e.Name(), func(t *testing.T) {
				checkReferenceTol(t, filepath.Join(ownFixtureDir, e.Name()), int8Tolerance)
			})
		}
	}
	for _, a := range fixtureArchives {
		t.Run(a.name, func(t *testing.T) {
			for _, dir := range fixtureModels(t, a.name) {
				if strings.HasSuffix(dir, "-mlx4") {
					t.Run(filepath.Base(dir), func(t *testing.T) { checkReferenceTol(t, dir, int8Tolerance) })
				}
			}
		})
	}
}

// TestPackedMLXFallsBackToFloat loads an MLX 4-bit model packed (int8 on),
// whose float32 scales and biases are then not kept, switches to float
// activations and checks that the unpacked path widens them again from the
// file: the logits equal those of the same model loaded with float
// activations, bit for bit.
func TestPackedMLXFallsBackToFloat(t *testing.T) {
	dir := filepath.Join(ownFixtureDir, "llama-mlx4")
	defer kernels.SetInt8MLX(kernels.SetInt8MLX(true))
	defer kernels.SetInt8Activations(kernels.SetInt8Activations(true))
	if !kernels.PackWanted(true) {
		t.Skipf("no packed kernels at level %q", kernels.Features())
	}
	packed, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer packed.Close()
	if packed.Info().PackedBytes == 0 {
		t.Fatal("the MLX model was not packed")
	}
	kernels.SetInt8Activations(false)
	plain, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for _, m := range []*Model{packed, plain} { // the KV default follows the activations at load
		if err := m.SetKVStorage(KVF32); err != nil {
			t.Fatal(err)
		}
	}
	tokens := []int32{1, 42, 7, 99, 3}
	var got, want [][]float32
	for _, c := range []struct {
		m   *Model
		out *[][]float32
	}{{packed, &got}, {plain, &want}} {
		*c.out = make([][]float32, 1)
		if err := c.m.Forward([]SeqBatch{{Tokens: tokens, Cache: c.m.NewKVCache(16), WantLogits: true}}, *c.out); err != nil {
			t.Fatal(err)
		}
	}
	for i := range want[0] {
		if got[0][i] != want[0][i] {
			t.Fatalf("logit %d: %v after the fallback, %v loaded float", i, got[0][i], want[0][i])
		}
	}
}
