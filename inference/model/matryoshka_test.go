package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadMatryoshka covers each way a folder says it is Matryoshka
// trained, the folders that do not, and malformed matryoshka_dims.
func TestLoadMatryoshka(t *testing.T) {
	for _, c := range []struct {
		name    string
		files   map[string]string
		trained bool
		source  string
		err     string
	}{
		{"bare", map[string]string{"config.json": `{"model_type":"bert"}`}, false, "", ""},
		{"st dims", map[string]string{"config_sentence_transformers.json": `{"prompts":{},"matryoshka_dims":[768,256,64]}`}, true, "config_sentence_transformers.json", ""},
		{"config dims", map[string]string{"config.json": `{"matryoshka_dims":[32,16]}`}, true, "config.json", ""},
		{"st card tag", map[string]string{"README.md": "---\ntags:\n- sentence-transformers\n- loss:MatryoshkaLoss\n- loss:MultipleNegativesRankingLoss\n---\n# m\n"}, true, "README.md", ""},
		{"card text", map[string]string{"README.md": "# nomic\nIt utilizes Matryoshka Representation Learning, so...\n"}, true, "README.md", ""},
		{"tag outside front matter", map[string]string{"README.md": "# m\n\n- loss:MatryoshkaLoss\n"}, false, "", ""},
		{"other card", map[string]string{"README.md": "---\ntags:\n- sentence-transformers\n---\nA BERT model.\n"}, false, "", ""},
		{"empty dims", map[string]string{"config.json": `{"matryoshka_dims":[]}`}, false, "", "matryoshka_dims is empty"},
		{"bad dims", map[string]string{"config_sentence_transformers.json": `{"matryoshka_dims":[64,0]}`}, false, "", "size 0"},
		{"bad json", map[string]string{"config_sentence_transformers.json": `{"matryoshka_dims":`}, false, "", "parse config_sentence_transformers.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m, err := LoadMatryoshka(dir)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil || m.Trained != c.trained || m.Source != c.source {
				t.Fatalf("got %+v, %v; want trained %v from %q", m, err, c.trained, c.source)
			}
		})
	}
}
