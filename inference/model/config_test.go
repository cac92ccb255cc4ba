package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/impetusllm/impetus/inference/safetensors"
)

func mustParse(t *testing.T, js string) Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(js))
	if err != nil {
		t.Fatalf("ParseConfig(%s): %v", js, err)
	}
	return cfg
}

const base = `"hidden_size":64,"intermediate_size":128,"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100`

func TestParseConfigSwitches(t *testing.T) {
	cases := []struct {
		name  string
		js    string
		check func(t *testing.T, c Config)
	}{
		{"llama defaults", `{"model_type":"llama",` + base + `,"eos_token_id":[1,2],"bos_token_id":5}`, func(t *testing.T, c Config) {
			if c.HeadDim != 16 || c.RotaryDim != 16 || c.TieEmbeddings || c.AttentionBias || c.QKNorm || c.Activation != SiLU {
				t.Errorf("%+v", c)
			}
			if len(c.EOS) != 2 || c.BOS != 5 || c.LayerSpecs[0].Window != 0 || c.LayerSpecs[0].RoPE.Type != "default" {
				t.Errorf("eos %v bos %d spec %+v", c.EOS, c.BOS, c.LayerSpecs[0])
			}
			if math.Abs(float64(c.AttnScale)-0.25) > 1e-7 {
				t.Errorf("scale %g", c.AttnScale)
			}
		}},
		{"qwen2 bias", `{"model_type":"qwen2",` + base + `,"tie_word_embeddings":true}`, func(t *testing.T, c Config) {
			if !c.AttentionBias || !c.TieEmbeddings {
				t.Errorf("%+v", c)
			}
		}},
		{"qwen2 sliding from max_window_layers", `{"model_type":"qwen2",` + base + `,"use_sliding_window":true,"sliding_window":32,"max_window_layers":2}`, func(t *testing.T, c Config) {
			if c.LayerSpecs[1].Window != 0 || c.LayerSpecs[2].Window != 32 {
				t.Errorf("windows %+v", c.LayerSpecs)
			}
		}},
		{"mistral window on all layers", `{"model_type":"mistral",` + base + `,"sliding_window":4096}`, func(t *testing.T, c Config) {
			for _, s := range c.LayerSpecs {
				if s.Window != 4096 {
					t.Errorf("window %d", s.Window)
				}
			}
		}},
		{"phi3 partial rotary and fusion", `{"model_type":"phi3",` + base + `,"partial_rotary_factor":0.5}`, func(t *testing.T, c Config) {
			if !c.FusedQKV || !c.FusedGateUp || c.RotaryDim != 8 || len(c.LayerSpecs[0].RoPE.InvFreq) != 4 {
				t.Errorf("%+v", c)
			}
		}},
		{"gemma2", `{"model_type":"gemma2",` + base + `,"head_dim":32,"query_pre_attn_scalar":256,"sliding_window":8,"attn_logit_softcapping":50,"final_logit_softcapping":30}`, func(t *testing.T, c Config) {
			if !c.NormAddOne || !c.SandwichNorms || !c.TieEmbeddings || c.Activation != GELUTanh || c.EmbedScale != 8 {
				t.Errorf("%+v", c)
			}
			if c.AttnScale != 1.0/16 || c.AttnSoftcap != 50 || c.FinalSoftcap != 30 {
				t.Errorf("scale %g caps %g %g", c.AttnScale, c.AttnSoftcap, c.FinalSoftcap)
			}
			if c.LayerSpecs[0].Window != 8 || c.LayerSpecs[1].Window != 0 {
				t.Errorf("windows %+v", c.LayerSpecs)
			}
		}},
		{"gemma3 pattern and two bases", `{"model_type":"gemma3_text",` + strings.Replace(base, `"hidden_size":64`, `"hidden_size":2560`, 1) + `,"head_dim":16,"sliding_window":512,"sliding_window_pattern":2,"rope_theta":1000000,"rope_local_base_freq":10000,"rope_scaling":{"rope_type":"linear","factor":8}}`, func(t *testing.T, c Config) {
			if !c.QKNorm || c.LayerSpecs[0].Window != 512 || c.LayerSpecs[1].Window != 0 {
				t.Errorf("%+v", c.LayerSpecs)
			}
			local, global := c.LayerSpecs[0].RoPE, c.LayerSpecs[1].RoPE
			// inv_freq[1] = base^(-2/16), divided by 8 on global layers only.
			if want := math.Pow(1e4, -2.0/16); math.Abs(float64(local.InvFreq[1])-want) > 1e-6*want {
				t.Errorf("local inv_freq[1] %g, want %g", local.InvFreq[1], want)
			}
			if want := math.Pow(1e6, -2.0/16) / 8; math.Abs(float64(global.InvFreq[1])-want) > 1e-6*want {
				t.Errorf("global inv_freq[1] %g, want %g", global.InvFreq[1], want)
			}
			// sqrt(2560) = 50.596... held as bfloat16 is 50.5.
			if c.EmbedScale != 50.5 {
				t.Errorf("embed scale %g", c.EmbedScale)
			}
		}},
		{"gemma3 multimodal", `{"model_type":"gemma3","eos_token_id":[1,106],"text_config":{"model_type":"gemma3_text",` + base + `}}`, func(t *testing.T, c Config) {
			if c.Architecture != "gemma3_text" || c.TensorPrefix != "language_model.model." || c.LMHeadName != "language_model.lm_head.weight" || len(c.EOS) != 2 {
				t.Errorf("%+v", c)
			}
		}},
		{"smollm3 NoPE default", `{"model_type":"smollm3",` + base + `}`, func(t *testing.T, c Config) {
			for i, s := range c.LayerSpecs {
				if (s.RoPE == nil) != (i == 3) {
					t.Errorf("layer %d rope %v", i, s.RoPE != nil)
				}
			}
		}},
		{"smollm3 NoPE list", `{"model_type":"smollm3",` + base + `,"no_rope_layers":[0,1,1,1]}`, func(t *testing.T, c Config) {
			if c.LayerSpecs[0].RoPE != nil || c.LayerSpecs[1].RoPE == nil {
				t.Errorf("%+v", c.LayerSpecs)
			}
		}},
		{"rope_parameters v5", `{"model_type":"llama",` + base + `,"rope_parameters":{"rope_type":"linear","factor":2,"rope_theta":100}}`, func(t *testing.T, c Config) {
			r := c.LayerSpecs[0].RoPE
			if r.Type != "linear" || math.Abs(float64(r.InvFreq[0])-0.5) > 1e-9 {
				t.Errorf("%+v", r)
			}
		}},
		{"longrope", `{"model_type":"phi3",` + base + `,"max_position_embeddings":131072,"original_max_position_embeddings":4096,"rope_scaling":{"type":"longrope","short_factor":[1,1,1,1,1,1,1,1],"long_factor":[2,2,2,2,2,2,2,2]}}`, func(t *testing.T, c Config) {
			r := c.LayerSpecs[0].RoPE
			want := math.Sqrt(1 + math.Log(32)/math.Log(4096))
			if math.Abs(float64(r.Mscale)-want) > 1e-6 {
				t.Errorf("mscale %g, want %g", r.Mscale, want)
			}
			if &r.invFreqFor(4095)[0] != &r.InvFreq[0] || &r.invFreqFor(4096)[0] != &r.LongInvFreq[0] {
				t.Error("long factors not chosen past the original context")
			}
			if r.LongInvFreq[0] != r.InvFreq[0]/2 {
				t.Errorf("long %g short %g", r.LongInvFreq[0], r.InvFreq[0])
			}
		}},
		{"quantization overrides", `{"model_type":"llama",` + base + `,"quantization":{"group_size":64,"bits":4,"mode":"affine","lm_head":{"group_size":64,"bits":8},"model.layers.0.mlp.down_proj":false}}`, func(t *testing.T, c Config) {
			q := c.Quantization
			if q == nil || q.Bits != 4 || q.GroupSize != 64 || q.Overrides["lm_head"].Bits != 8 {
				t.Fatalf("%+v", q)
			}
			if ov, ok := q.Overrides["model.layers.0.mlp.down_proj"]; !ok || ov != nil {
				t.Errorf("false override: %v %v", ov, ok)
			}
		}},
		{"quantization_config only", `{"model_type":"llama",` + base + `,"quantization_config":{"group_size":32,"bits":8}}`, func(t *testing.T, c Config) {
			if c.Quantization == nil || c.Quantization.Bits != 8 {
				t.Errorf("%+v", c.Quantization)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t, mustParse(t, c.js)) })
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct{ name, js, want string }{
		{"not json", `{`, "unexpected"},
		{"unknown arch", `{"model_type":"gpt2",` + base + `}`, `unsupported model_type "gpt2"`},
		{"zero layers", `{"model_type":"llama","hidden_size":64,"intermediate_size":1,"num_attention_heads":4,"vocab_size":9}`, "num_hidden_layers"},
		{"gqa mismatch", `{"model_type":"llama",` + strings.Replace(base, `"num_key_value_heads":2`, `"num_key_value_heads":3`, 1) + `}`, "multiple"},
		{"odd head dim", `{"model_type":"llama",` + base + `,"head_dim":15}`, "odd"},
		{"layer_types length", `{"model_type":"qwen3",` + base + `,"layer_types":["full_attention"]}`, "layer_types"},
		{"layer_types value", `{"model_type":"qwen3",` + base + `,"layer_types":["a","b","c","d"]}`, `unsupported "a"`},
		{"sliding without window", `{"model_type":"qwen3",` + base + `,"layer_types":["sliding_attention","full_attention","full_attention","full_attention"]}`, "sliding_window"},
		{"rope type", `{"model_type":"llama",` + base + `,"rope_scaling":{"rope_type":"warp","factor":2}}`, `unsupported rope type "warp"`},
		{"llama3 params", `{"model_type":"llama",` + base + `,"rope_scaling":{"rope_type":"llama3","factor":8}}`, "llama3"},
		{"longrope factors", `{"model_type":"phi3",` + base + `,"original_max_position_embeddings":4096,"rope_scaling":{"type":"longrope","short_factor":[1],"long_factor":[1]}}`, "entries"},
		{"quant mode", `{"model_type":"llama",` + base + `,"quantization":{"group_size":32,"bits":4,"mode":"mxfp4"}}`, "mxfp4"},
		{"quant bits", `{"model_type":"llama",` + base + `,"quantization":{"group_size":32,"bits":7}}`, "bits 7"},
		{"quant method", `{"model_type":"llama",` + base + `,"quantization_config":{"quant_method":"gptq","bits":4}}`, "gptq"},
		{"eos type", `{"model_type":"llama",` + base + `,"eos_token_id":"x"}`, "eos_token_id"},
		{"activation", `{"model_type":"llama",` + base + `,"hidden_act":"relu"}`, "relu"},
		{"gemma3 without text", `{"model_type":"gemma3"}`, "text_config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.js))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"model_type":"llama",` + base + `}`))
	f.Add([]byte(`{"model_type":"gemma3","text_config":{"model_type":"gemma3_text",` + base + `,"sliding_window":4}}`))
	f.Add([]byte(`{"model_type":"phi3",` + base + `,"partial_rotary_factor":0.75,"rope_scaling":{"type":"longrope","short_factor":[1],"long_factor":[1]}}`))
	f.Add([]byte(`{"model_type":"smollm3",` + base + `,"no_rope_layers":[1,1,1,0],"quantization":{"bits":4,"group_size":64,"x":false}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		if len(cfg.LayerSpecs) != cfg.Layers || cfg.HeadDim <= 0 || cfg.RotaryDim > cfg.HeadDim || cfg.Heads%cfg.KVHeads != 0 {
			t.Fatalf("inconsistent config accepted: %+v", cfg)
		}
		for _, s := range cfg.LayerSpecs {
			if s.RoPE != nil && len(s.RoPE.InvFreq) != cfg.RotaryDim/2 {
				t.Fatalf("rope table of %d for rotary dim %d", len(s.RoPE.InvFreq), cfg.RotaryDim)
			}
		}
	})
}

func TestGenerationConfigOverride(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"llama",`+base+`,"eos_token_id":7,"bos_token_id":1}`), 0o644)
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id":[7,8,9],"bos_token_id":3}`), 0o644)
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.EOS) != 3 || cfg.EOS[2] != 9 || cfg.BOS != 3 {
		t.Errorf("eos %v bos %d", cfg.EOS, cfg.BOS)
	}
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id":{}}`), 0o644)
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), "generation_config.json") {
		t.Errorf("bad generation config: %v", err)
	}
	if _, err := LoadConfig(t.TempDir()); err == nil {
		t.Error("missing config.json accepted")
	}
}

// TestInfo checks the metadata of a fixture against its files.
func TestInfo(t *testing.T) {
	dir := testFixture(t, "dev-trained", "llama-bfloat16")
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	set, err := safetensors.OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var params int64
	for _, n := range set.Names() {
		tn, _ := set.Tensor(n)
		params += int64(tn.NumElements())
	}
	st, _ := os.Stat(filepath.Join(dir, "model.safetensors"))
	info := m.Info()
	want := Info{Architecture: "llama", Params: params, Quantization: "BF16", ContextLength: 512, Vocab: 2048, BOS: 0, EOS: []int{2}, FileSize: st.Size()}
	if got, _ := json.Marshal(info); string(got) != mustJSON(want) {
		t.Errorf("Info = %s, want %s", got, mustJSON(want))
	}
	q, err := Load(testFixture(t, "dev-trained", "llama-mlx4"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if qi := q.Info(); qi.Params != params || qi.Quantization != "MLX 4-bit g64" {
		t.Errorf("mlx4 Info = %+v, want %d params", qi, params)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestGemma3Multimodal loads a Gemma 3 text model repackaged the way the
// multimodal checkpoints are (nested config, language_model. prefix, vision
// tensors beside it) and expects the same logits as the original.
func TestGemma3Multimodal(t *testing.T) {
	src := testFixture(t, "dev-random", "gemma3_text-mlx4")
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var text map[string]any
	json.Unmarshal(raw, &text)
	quantBlock := text["quantization"]
	delete(text, "quantization")
	delete(text, "quantization_config")
	conf := map[string]any{"model_type": "gemma3", "text_config": text, "quantization": quantBlock}
	set, err := safetensors.OpenModel(src)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var tensors []safetensors.Tensor
	for _, n := range set.Names() {
		tn, _ := set.Tensor(n)
		tn.Name = "language_model." + n
		tensors = append(tensors, tn)
	}
	tensors = append(tensors, safetensors.Tensor{Name: "vision_tower.patch.weight", DType: safetensors.F32, Shape: []int{2}, Data: make([]byte, 8)})
	dir := t.TempDir()
	writeModel(t, dir, conf, tensors)

	a, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	toks := []int32{5, 9, 200, 31, 7}
	oa, ob := [][]float32{nil}, [][]float32{nil}
	if err := a.Forward([]SeqBatch{{Tokens: toks, Cache: a.NewKVCache(8), WantLogits: true}}, oa); err != nil {
		t.Fatal(err)
	}
	if err := b.Forward([]SeqBatch{{Tokens: toks, Cache: b.NewKVCache(8), WantLogits: true}}, ob); err != nil {
		t.Fatal(err)
	}
	compareLogits(t, "nested gemma3", ob[0], oa[0])
}

// TestYarn checks YaRN's defining properties: the fastest-rotating pairs keep
// their frequency, the slowest are divided by the factor, the blend between
// is monotonic, and cos/sin are scaled by 0.1*ln(factor)+1.
func TestYarn(t *testing.T) {
	c := mustParse(t, `{"model_type":"qwen3",`+base+`,"head_dim":128,"rope_theta":1000000,"max_position_embeddings":131072,"rope_scaling":{"rope_type":"yarn","factor":4,"original_max_position_embeddings":32768}}`)
	r := c.LayerSpecs[0].RoPE
	if r.Type != "yarn" || len(r.InvFreq) != 64 {
		t.Fatalf("%+v", r)
	}
	plain := func(i int) float64 { return math.Pow(1e6, -float64(2*i)/128) }
	if math.Abs(float64(r.InvFreq[0])-plain(0)) > 1e-7 {
		t.Errorf("fastest pair changed: %g", r.InvFreq[0])
	}
	if got, want := float64(r.InvFreq[63]), plain(63)/4; math.Abs(got-want) > 1e-6*want {
		t.Errorf("slowest pair %g, want %g", got, want)
	}
	for i := 1; i < 64; i++ {
		ratio := float64(r.InvFreq[i]) / plain(i)
		prev := float64(r.InvFreq[i-1]) / plain(i-1)
		if ratio > prev+1e-6 || ratio < 0.25-1e-6 {
			t.Fatalf("pair %d: ratio %g after %g", i, ratio, prev)
		}
	}
	if want := 0.1*math.Log(4) + 1; math.Abs(float64(r.Mscale)-want) > 1e-6 {
		t.Errorf("mscale %g, want %g", r.Mscale, want)
	}
}

// TestLlama3ScalingDivisors checks that the divisors GGUF writers store
// give back the inverse frequencies the loader computes from config.json.
func TestLlama3ScalingDivisors(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"model_type":"llama","hidden_size":512,"intermediate_size":64,"num_hidden_layers":1,
		"num_attention_heads":4,"vocab_size":8,"max_position_embeddings":131072,"rope_theta":500000,
		"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192}}`))
	if err != nil {
		t.Fatal(err)
	}
	div := Llama3Scaling{Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMax: 8192}.Divisors(500000, cfg.RotaryDim)
	inv := cfg.LayerSpecs[0].RoPE.InvFreq
	if len(div) != len(inv) || div[0] != 1 || div[len(div)-1] != 8 {
		t.Fatalf("divisors %v", div)
	}
	blended := 0
	for i, d := range div {
		if d != 1 && d != 8 {
			blended++
		}
		base := 1 / math.Pow(500000, float64(2*i)/float64(cfg.RotaryDim))
		if got := base / float64(d); math.Abs(got-float64(inv[i])) > 1e-6*float64(inv[i]) {
			t.Errorf("pair %d: base/divisor %g, loader %g", i, got, inv[i])
		}
	}
	if blended == 0 {
		t.Error("no frequency fell in the blended band")
	}
}
