package model

import "testing"

// TestArchTable checks every row of the architecture table: a config of
// that model_type parses to the row's switches, model types are unique, and
// rows that share a GGUF architecture agree on how its files are laid out.
func TestArchTable(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range archs {
		if seen[a.modelType] {
			t.Errorf("model_type %q has two rows", a.modelType)
		}
		seen[a.modelType] = true
		if a.textConfig != "" {
			if w, ok := archFor(a.textConfig); !ok || w.textConfig != "" {
				t.Errorf("%s: text_config model_type %q has no row of its own", a.modelType, a.textConfig)
			}
			continue
		}
		if a.sliding == nil || a.activation == "" || a.rmsNormEps <= 0 || a.ropeTheta <= 0 || a.ggufArch == "" {
			t.Errorf("%s: incomplete row %+v", a.modelType, a)
			continue
		}
		c := mustParse(t, `{"model_type":"`+a.modelType+`",`+base+`,"sliding_window":16}`)
		if c.Architecture != a.modelType || c.RMSNormEps != a.rmsNormEps || c.TieEmbeddings != a.tieEmbeddings ||
			c.AttentionBias != a.qkvBias || c.QKNorm != a.qkNorm || c.FusedQKV != a.fused || c.FusedGateUp != a.fused ||
			c.NormAddOne != a.gemmaNorms || c.SandwichNorms != a.gemmaNorms || c.Activation != a.activation ||
			(c.EmbedScale != 0) != a.queryPreAttn {
			t.Errorf("%s: config %+v does not follow its row", a.modelType, c)
		}
		for i, s := range c.LayerSpecs {
			if want := a.sliding(i, &rawConfig{}, 16); (s.Window != 0) != want {
				t.Errorf("%s: layer %d window %d, row says sliding %v", a.modelType, i, s.Window, want)
			}
			if (s.RoPE == nil) != (a.noRoPEInterval > 0 && (i+1)%a.noRoPEInterval == 0) {
				t.Errorf("%s: layer %d RoPE %v", a.modelType, i, s.RoPE)
			}
		}
		g, ok := archForGGUF(a.ggufArch)
		if !ok || g.ggufPermutedQK != a.ggufPermutedQK {
			t.Errorf("%s: GGUF architecture %q loads as %+v", a.modelType, a.ggufArch, g)
		}
	}
	for gguf, want := range map[string]string{"llama": "llama", "gemma3": "gemma3_text", "smollm3": "smollm3", "qwen2": "qwen2"} {
		if a, ok := archForGGUF(gguf); !ok || a.modelType != want {
			t.Errorf("GGUF %s loads as %+v, want %s", gguf, a, want)
		}
	}
	if _, ok := archForGGUF(""); ok {
		t.Error("empty GGUF architecture found a row")
	}
	if _, ok := archForGGUF("mamba"); ok {
		t.Error("unknown GGUF architecture found a row")
	}
	if _, err := ParseConfig([]byte(`{"model_type":"mamba",` + base + `}`)); err == nil {
		t.Error("unknown model_type parsed")
	}
}
