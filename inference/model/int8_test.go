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
