package model

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func TestParseEncoderConfig(t *testing.T) {
	good := `{"model_type":"bert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":8}`
	c, err := ParseEncoderConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.TypeVocab != 2 || c.LayerNormEps != 1e-12 || c.Quantization != nil {
		t.Errorf("defaults: %+v", c)
	}
	q, err := ParseEncoderConfig([]byte(strings.Replace(good, `}`, `,"quantization":{"group_size":32,"bits":8,"encoder.layer.0.output.dense":false}}`, 1)))
	if err != nil || q.Quantization == nil || q.Quantization.Bits != 8 || q.Quantization.GroupSize != 32 {
		t.Errorf("quantized config: %+v, %v", q.Quantization, err)
	} else if ov, ok := q.Quantization.Overrides["encoder.layer.0.output.dense"]; !ok || ov != nil {
		t.Errorf("override false: %v %v", ov, ok)
	}
	for _, bad := range []struct{ json, want string }{
		{`{`, "parse config.json"},
		{`{"model_type":"llama"}`, `"llama" is not a supported encoder`},
		{strings.Replace(good, `"hidden_size":8`, `"hidden_size":9`, 1), "not a multiple"},
		{strings.Replace(good, `"vocab_size":10`, `"vocab_size":0`, 1), "vocab_size = 0"},
		{strings.Replace(good, `}`, `,"hidden_act":"relu"}`, 1), `hidden_act "relu"`},
		{strings.Replace(good, `}`, `,"position_embedding_type":"relative_key"}`, 1), "relative_key"},
		{strings.Replace(good, `"num_hidden_layers":1`, `"num_hidden_layers":100000`, 1), "implausible"},
		{strings.Replace(good, `}`, `,"quantization":{"group_size":64,"bits":7}}`, 1), "bert config: quantization: mlx: unsupported bits 7"},
		{strings.Replace(good, `}`, `,"quantization":{"group_size":48,"bits":4}}`, 1), "unsupported group size 48"},
		{strings.Replace(good, `}`, `,"quantization":{"group_size":32,"bits":4,"mode":"nvfp4"}}`, 1), `mode "nvfp4" is not supported`},
		{strings.Replace(good, `}`, `,"quantization_config":{"quant_method":"bitsandbytes"}}`, 1), `quant_method "bitsandbytes" is not MLX`},
	} {
		if _, err := ParseEncoderConfig([]byte(bad.json)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want %q", bad.json, err, bad.want)
		}
	}
}

// TestLoadEmbedSpec reads the fixture folders' sentence-transformers
// metadata and refuses folders it would misread.
func TestLoadEmbedSpec(t *testing.T) {
	for _, c := range []struct {
		dir    string
		pool   Pooling
		norm   bool
		prompt string
	}{{"bert-mean", PoolMean, true, ""}, {"bert-cls", PoolCLS, false, ""}, {"bert-last", PoolLastToken, true, "query"}} {
		s, err := LoadEmbedSpec(filepath.Join("testdata", "embed", c.dir))
		if err != nil {
			t.Fatal(err)
		}
		if s.Pooling != c.pool || s.Normalize != c.norm || s.MaxSeqLen != 48 || s.DefaultPrompt != c.prompt {
			t.Errorf("%s: %+v", c.dir, s)
		}
	}
	if s, err := LoadEmbedSpec(t.TempDir()); err != nil || s.Pooling != PoolMean || s.Normalize {
		t.Errorf("bare folder: %+v %v", s, err)
	}
	write := func(dir, name, body string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tr := `{"path":"","type":"sentence_transformers.models.Transformer"}`
	pool := `{"path":"1_Pooling","type":"sentence_transformers.models.Pooling"}`
	for _, c := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"modules.json": `{`}, "parse modules.json"},
		{map[string]string{"modules.json": `[` + pool + `]`, "1_Pooling/config.json": `{"pooling_mode_mean_tokens":true}`}, "no Transformer"},
		{map[string]string{"modules.json": `[` + tr + `,{"path":"2_Dense","type":"sentence_transformers.models.Dense"}]`}, "Dense"},
		{map[string]string{"modules.json": `[` + tr + `,{"path":"../x","type":"sentence_transformers.models.Pooling"}]`}, "plain sub-folder"},
		{map[string]string{"modules.json": `[` + tr + `,` + pool + `]`}, "pooling config"},
		{map[string]string{"modules.json": `[` + tr + `,` + pool + `]`, "1_Pooling/config.json": `{"pooling_mode_max_tokens":true}`}, "pooling_mode_max_tokens"},
		{map[string]string{"modules.json": `[` + tr + `,` + pool + `]`, "1_Pooling/config.json": `{"pooling_mode_mean_tokens":true,"pooling_mode_cls_token":true}`}, "2 pooling modes"},
		{map[string]string{"modules.json": `[` + tr + `,` + pool + `]`, "1_Pooling/config.json": `{"pooling_mode_mean_tokens":true,"include_prompt":false}`}, "include_prompt"},
		{map[string]string{"sentence_bert_config.json": `{"max_seq_length":0}`}, "not positive"},
		{map[string]string{"config_sentence_transformers.json": `{"prompts":{"q":"q: "},"default_prompt_name":"x"}`}, `"x" is not among`},
	} {
		dir := t.TempDir()
		for n, b := range c.files {
			write(dir, n, b)
		}
		if _, err := LoadEmbedSpec(dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.files, err, c.want)
		}
	}
}
