package model_test

import (
	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/model/modeltest"
)

func init() {
	model.SetConverter(modeltest.ConvertToGGUF)
	model.SetEncoderConverter(modeltest.ConvertEncoderToGGUF)
	model.SetRandomEncoderWriter(modeltest.WriteRandomEncoder)
	model.SetMLXQuantizer(func(src, qdir, fdir string, bits, group int, overrides map[string]any) error {
		return modeltest.QuantizeMLXFolder(src, qdir, fdir, modeltest.MLXPlan{Bits: bits, GroupSize: group, Overrides: overrides})
	})
}
