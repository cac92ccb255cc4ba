package model

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// ownFixtureDir holds the small trained reference models committed with the
// repository (made by its make.py), so the reference check runs on a bare
// clone without ../shared.
const ownFixtureDir = "../testdata/reference"

// ownFixtures names the model folders make.py writes; the test fails if one
// is missing rather than silently checking fewer.
var ownFixtures = []string{
	"gemma3_text-float32", "gemma3_text-mlx4",
	"llama-float32", "llama-mlx4", "llama-mlx8",
	"qwen2-float32", "qwen2-mlx4",
	"qwen3-float32", "qwen3-mlx4",
	"smollm3-float32", "smollm3-mlx4",
}

func TestOwnReferenceFixtures(t *testing.T) {
	entries, err := os.ReadDir(ownFixtureDir)
	if err != nil {
		t.Fatalf("committed fixtures: %v", err)
	}
	var found []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(ownFixtureDir, e.Name(), "reference.json")); err == nil {
			found = append(found, e.Name())
		}
	}
	for _, want := range ownFixtures {
		if !slices.Contains(found, want) {
			t.Errorf("committed fixture %s is missing from %s", want, ownFixtureDir)
		}
	}
	for _, name := range found {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(ownFixtureDir, name)
			if ref := loadReference(t, dir); ref.TrainedSteps == 0 {
				t.Errorf("%s: trained_steps is 0; the committed fixtures are trained so greedy ids must match exactly", name)
			}
			checkReference(t, dir)
		})
	}
}
