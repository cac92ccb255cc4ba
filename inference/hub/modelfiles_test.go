package hub

import (
	"slices"
	"testing"
)

// TestModelFilesSentenceTransformers: the default choice for an embedding
// model's repository keeps what the loader reads (module list, pooling
// config in its numbered folder, sequence length, prompts) and still skips
// other sub-folders such as ONNX exports.
func TestModelFilesSentenceTransformers(t *testing.T) {
	var files []File
	for _, n := range []string{
		"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
		"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
		"1_Pooling/config.json", "2_Normalize/.gitkeep", "onnx/model.onnx", "onnx/config.json",
		"x_Pooling/config.json", "1_Pooling/notes.json", "README.md",
	} {
		files = append(files, File{Name: n})
	}
	got, err := ModelFiles(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range got {
		names = append(names, f.Name)
	}
	want := []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
		"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json"}
	if !slices.Equal(names, want) {
		t.Fatalf("chose %q\nwant %q", names, want)
	}
}
