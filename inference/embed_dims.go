package inference

import (
	"fmt"
	"math"
)

// CheckDimensions says whether the model can give d-dimensional vectors
// (OpenAI's "dimensions"; 0 is the full size): any size up to the full one
// for a Matryoshka-trained model, only the full size for the others.
func (m *EmbeddingModel) CheckDimensions(d int) error {
	switch {
	case d == 0 || d == m.Dim:
		return nil
	case !m.Spec.Matryoshka.Trained:
		return fmt.Errorf("model %s gives %d-dimensional vectors and is not trained for shortening them (Matryoshka); omit dimensions or pass %d",
			m.Info.ID, m.Dim, m.Dim)
	case d < 1 || d > m.Dim:
		return fmt.Errorf("model %s gives %d-dimensional vectors; dimensions must be between 1 and %d, got %d", m.Info.ID, m.Dim, m.Dim, d)
	}
	return nil
}

// shorten keeps the first d entries of v scaled to unit length (a zero
// vector stays zero), as sentence-transformers' truncate_dim followed by
// normalisation does.
func shorten(v []float32, d int) []float32 {
	out := v[:d:d]
	var ss float64
	for _, x := range out {
		ss += float64(x) * float64(x)
	}
	inv := 1 / math.Max(math.Sqrt(ss), 1e-12)
	for i, x := range out {
		out[i] = float32(float64(x) * inv)
	}
	return out
}
