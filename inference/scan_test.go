package inference

import (
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScanModelsLayouts(t *testing.T) {
	dir := t.TempDir()
	// Hugging Face cache entry with refs/main.
	snap := filepath.Join(dir, "models--mlx-community--Tiny-4bit", "snapshots", "abc123")
	write(t, filepath.Join(snap, "config.json"), "{}")
	write(t, filepath.Join(snap, "model.safetensors"), "12345678")
	write(t, filepath.Join(dir, "models--mlx-community--Tiny-4bit", "refs", "main"), "abc123\n")
	// Plain folder.
	write(t, filepath.Join(dir, "fixtures", "llama-mlx4", "config.json"), "{}")
	write(t, filepath.Join(dir, "fixtures", "llama-mlx4", "model.safetensors"), "1234")
	// Lone GGUF.
	write(t, filepath.Join(dir, "gguf", "small.Q4_0.gguf"), "GGUF")
	// Not models: a folder without weights, a hidden folder.
	write(t, filepath.Join(dir, "downloads", "partial.bin"), "x")
	write(t, filepath.Join(dir, ".trash", "x.gguf"), "GGUF")

	models, err := ScanModels(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]LocalModel{}
	for _, m := range models {
		got[m.ID] = m
	}
	want := map[string]Format{
		"mlx-community/Tiny-4bit": FormatMLX,
		"fixtures/llama-mlx4":     FormatMLX,
		"gguf/small.Q4_0":         FormatGGUF,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d models %v, want %v", len(got), models, want)
	}
	for id, f := range want {
		m, ok := got[id]
		if !ok || m.Format != f {
			t.Errorf("model %q: got %+v, want format %s", id, m, f)
		}
	}
	if got["mlx-community/Tiny-4bit"].SizeBytes != 8 {
		t.Errorf("size of HF model = %d, want 8", got["mlx-community/Tiny-4bit"].SizeBytes)
	}
}

func TestScanModelsMissingDir(t *testing.T) {
	models, err := ScanModels(filepath.Join(t.TempDir(), "absent"))
	if err != nil || len(models) != 0 {
		t.Fatalf("got %v, %v; want no models and no error", models, err)
	}
}

func TestFindModelRefusesTraversal(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a", "config.json"), "{}")
	write(t, filepath.Join(dir, "a", "model.safetensors"), "1")
	e, err := New(Options{ModelsDir: filepath.Join(dir, "a", "..")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, id := range []string{"../a", "a/../a", "/etc/passwd", "", "a/"} {
		if _, err := e.FindModel(id); err == nil {
			t.Errorf("FindModel(%q) succeeded, want not found", id)
		}
	}
	if _, err := e.FindModel("a"); err != nil {
		t.Errorf("FindModel(a): %v", err)
	}
}

func TestEngineHeartbeat(t *testing.T) {
	e, err := New(Options{ModelsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !e.Alive(5e9) {
		t.Fatal("new engine not alive")
	}
	e.Close()
	e.Close()
	if e.Alive(5e9) {
		t.Fatal("closed engine reports alive")
	}
}

// TestScanModelsFollowsSymlinks: a linked .gguf, a model folder reached
// through a linked folder (leading outside the models directory) and the
// Hugging Face cache's links into blobs/ are listed; a link loop is not
// followed forever and a broken link is skipped.
func TestScanModelsFollowsSymlinks(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	write(t, filepath.Join(elsewhere, "store", "weights.gguf"), "GGUF")
	write(t, filepath.Join(elsewhere, "collection", "qwen-mlx", "config.json"), "{}")
	write(t, filepath.Join(elsewhere, "collection", "qwen-mlx", "model.safetensors"), "12345678")
	link := func(target, name string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(elsewhere, "store", "weights.gguf"), filepath.Join(dir, "linked", "tiny.gguf"))
	link(filepath.Join(elsewhere, "collection"), filepath.Join(dir, "shelf"))
	link(filepath.Join(elsewhere, "missing.gguf"), filepath.Join(dir, "broken.gguf"))
	// A loop: dir/loop/again -> dir/loop.
	link(filepath.Join(dir, "loop"), filepath.Join(dir, "loop", "again"))
	// The HF cache: snapshot files are relative links into blobs/.
	repo := filepath.Join(dir, "models--org--cached")
	write(t, filepath.Join(repo, "blobs", "aaa"), "{}")
	write(t, filepath.Join(repo, "blobs", "bbb"), "123456")
	write(t, filepath.Join(repo, "refs", "main"), "rev1")
	link("../../blobs/aaa", filepath.Join(repo, "snapshots", "rev1", "config.json"))
	link("../../blobs/bbb", filepath.Join(repo, "snapshots", "rev1", "model.safetensors"))

	models, err := ScanModels(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]LocalModel{}
	for _, m := range models {
		got[m.ID] = m
	}
	if m, ok := got["linked/tiny"]; !ok || m.Format != FormatGGUF || m.SizeBytes != 4 {
		t.Errorf("linked .gguf: %+v in %v", m, models)
	}
	if m, ok := got["shelf/qwen-mlx"]; !ok || m.Format != FormatMLX || m.SizeBytes != 8 {
		t.Errorf("folder through a linked folder: %+v in %v", m, models)
	}
	if m, ok := got["org/cached"]; !ok || m.Format != FormatMLX || m.SizeBytes != 6 {
		t.Errorf("HF cache entry: %+v in %v", m, models)
	}
	if len(models) != 3 {
		t.Errorf("want exactly 3 models, got %v", models)
	}
	// A loop that passes through the root itself.
	link(dir, filepath.Join(dir, "linked", "root"))
	if again, err := ScanModels(dir); err != nil || len(again) != 3 {
		t.Errorf("with a link to the root: %v %v", again, err)
	}
}
