package model

import (
	"fmt"

	"github.com/impetusllm/impetus/inference/quant"
)

// RoBERTa and XLM-R (multilingual-e5, bge-m3's dense vectors,
// paraphrase-multilingual) are BERT encoders whose position ids start after
// the padding id: token p of a sequence takes position row
// padding_idx+1+p, and the rows before are never used. Loading drops those
// rows from the position table, so the BERT forward pass runs unchanged.
// (transformers gives a padding token written inside a sequence the
// padding row; texts never tokenize to it, and ids given as they are do not
// get that special case.)

// isRobertaType reports the model_types that carry the RoBERTa position
// offset.
func isRobertaType(modelType string) bool {
	return modelType == "xlm-roberta" || modelType == "roberta"
}

// robertaPositionOffset is padding_idx+1, with the padding id of config.json
// (1 when it does not say, as in transformers).
func robertaPositionOffset(padTokenID *int) int {
	if padTokenID != nil && *padTokenID >= 0 {
		return *padTokenID + 1
	}
	return 2
}

// dropRows returns m without its first k rows (sharing the weights).
func (m matrix) dropRows(k int) (matrix, error) {
	if k < 0 || k >= m.rows {
		return m, fmt.Errorf("%s: cannot drop %d of %d rows", m.name, k, m.rows)
	}
	switch m.kind {
	case wF32:
		m.f32 = m.f32[k*m.cols:]
	case wF16, wBF16:
		m.half = m.half[k*m.cols:]
	case wMLX:
		if m.packed != nil || m.scales == nil {
			return m, fmt.Errorf("%s: cannot drop rows of a packed table", m.name) // tables are loaded unpacked
		}
		words, groups := quant.MLXWordsPerRow(m.cols, m.bits), m.cols/m.group
		m.q, m.scales, m.biases = m.q[k*words:], m.scales[k*groups:], m.biases[k*groups:]
	default:
		return m, fmt.Errorf("%s: position embeddings must be float32, float16, bfloat16 or MLX-quantized", m.name)
	}
	m.rows -= k
	return m, nil
}
