package inference

import (
	"path/filepath"
	"testing"

	"github.com/impetusllm/impetus/inference/testutil"
)

func TestParseConfigSummary(t *testing.T) {
	cases := []struct {
		in   string
		want ConfigSummary
		bad  bool
	}{
		{`{"model_type":"llama","max_position_embeddings":8192,"quantization":{"group_size":64,"bits":4}}`, ConfigSummary{Architecture: "llama", Quantization: "MLX 4-bit g64", ContextLength: 8192}, false},
		{`{"model_type":"qwen2","torch_dtype":"bfloat16"}`, ConfigSummary{Architecture: "qwen2", Quantization: "BF16"}, false},
		{`{"model_type":"gemma3","text_config":{"model_type":"gemma3_text","max_position_embeddings":4096}}`, ConfigSummary{Architecture: "gemma3_text", ContextLength: 4096}, false},
		{`{"model_type":"x","quantization":{"bits":99,"group_size":64},"dtype":"float16"}`, ConfigSummary{Architecture: "x", Quantization: "F16"}, false},
		{`{"max_position_embeddings":-3}`, ConfigSummary{}, false},
		{`[`, ConfigSummary{}, true},
		{`{"model_type":7}`, ConfigSummary{}, true},
	}
	for _, c := range cases {
		got, err := ParseConfigSummary([]byte(c.in))
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("%s: got %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func FuzzParseConfigSummary(f *testing.F) {
	f.Add([]byte(`{"model_type":"llama","quantization":{"group_size":64,"bits":4}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseConfigSummary(data)
		if err == nil && s.ContextLength < 0 {
			t.Fatalf("negative context %d", s.ContextLength)
		}
	})
}

func TestEstimateLoadBytes(t *testing.T) {
	if got := EstimateLoadBytes(LocalModel{SizeBytes: 800}); got != 800+100+loadOverheadBytes {
		t.Fatalf("got %d", got)
	}
}

func TestSummarizeGGUF(t *testing.T) {
	path := testutil.SharedPath(t, "assets", "gguf-model", "llama-2-tiny-random.gguf")
	s, err := SummarizeConfig(LocalModel{ID: "tiny", Path: path, Format: FormatGGUF})
	if err != nil {
		t.Fatal(err)
	}
	if s.Architecture != "llama" || s.Params <= 0 || s.Quantization == "" || s.ContextLength <= 0 {
		t.Fatalf("summary %+v", s)
	}
	if _, err := SummarizeConfig(LocalModel{ID: "x", Path: filepath.Join(t.TempDir(), "absent.gguf"), Format: FormatGGUF}); err == nil {
		t.Fatal("absent file summarised")
	}
}
