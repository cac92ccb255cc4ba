package inference

import (
	"cmp"
	"os"

	"github.com/impetusllm/impetus/inference/model"
)

// CheckKVCacheType reports why s is not a KV cache storage for
// Options.KVCacheType ("", f16, f32 or q8_0).
func CheckKVCacheType(s string) error {
	if s == "" {
		return nil
	}
	_, err := model.ParseKVStorage(s)
	return err
}

// setKVStorage applies Options.KVCacheType, else IMPETUS_KV, to a freshly
// loaded model, and logs a q8_0 request that the model's head size turns
// into f16. With neither set (or an unknown IMPETUS_KV) the model keeps its
// default.
func (e *Engine) setKVStorage(id string, mdl *model.Model) {
	s, err := model.ParseKVStorage(cmp.Or(e.o().KVCacheType, os.Getenv("IMPETUS_KV")))
	if err != nil {
		return
	}
	if err := mdl.SetKVStorage(s); err != nil {
		if logf := e.o().Logf; logf != nil {
			logf("model %s: %v", id, err)
		}
	}
}
