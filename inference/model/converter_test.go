package model_test

import (
	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/model/modeltest"
)

func init() {
	model.SetConverter(modeltest.ConvertToGGUF)
	model.SetEncoderConverter(modeltest.ConvertEncoderToGGUF)
	model.SetRandomEncoderWriter(modeltest.WriteRandomEncoder)
}
