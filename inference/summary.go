package inference

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/impetusllm/impetus/inference/gguf"
)

// loadOverheadBytes is memory a load needs beyond the weight files: the
// float32 copies of MLX scales and biases, norms, scratch buffers and a first
// KV cache. It is a safety margin, not a measurement.
const loadOverheadBytes = 256 << 20

// EstimateLoadBytes is the memory a model is expected to occupy once loaded
// and faulted in: its weight files (mapped), an eighth more for the widened
// quantization scales and biases, and a fixed margin.
func EstimateLoadBytes(m LocalModel) int64 {
	return m.SizeBytes + m.SizeBytes/8 + loadOverheadBytes
}

// ConfigSummary is what config.json tells about a model without loading it.
type ConfigSummary struct {
	Architecture  string // model_type, e.g. "llama"
	Quantization  string // e.g. "MLX 4-bit g64", "BF16"; empty when unknown
	ContextLength int
	// Params counts weight elements; 0 when only a load would tell (the
	// packed MLX tensors hide it).
	Params int64
}

// maxConfigBytes bounds the config.json we read for a listing.
const maxConfigBytes = 4 << 20

// SummarizeConfig reads a model folder's config.json, or a GGUF file's
// header, without loading weights.
func SummarizeConfig(m LocalModel) (ConfigSummary, error) {
	if m.Format == FormatGGUF {
		return summarizeGGUF(m)
	}
	if m.Format != FormatMLX {
		return ConfigSummary{}, nil
	}
	p := filepath.Join(m.Path, "config.json")
	st, err := os.Stat(p)
	if err != nil {
		return ConfigSummary{}, fmt.Errorf("config of %s: %w", m.ID, err)
	}
	if st.Size() > maxConfigBytes {
		return ConfigSummary{}, fmt.Errorf("config of %s: larger than %d bytes", m.ID, maxConfigBytes)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return ConfigSummary{}, fmt.Errorf("config of %s: %w", m.ID, err)
	}
	return ParseConfigSummary(data)
}

// ParseConfigSummary extracts the summary fields from config.json bytes.
func ParseConfigSummary(data []byte) (ConfigSummary, error) {
	var raw struct {
		ModelType    string `json:"model_type"`
		TorchDType   string `json:"torch_dtype"`
		DType        string `json:"dtype"`
		MaxPos       int    `json:"max_position_embeddings"`
		Quantization *struct {
			Bits      int `json:"bits"`
			GroupSize int `json:"group_size"`
		} `json:"quantization"`
		TextConfig *struct {
			ModelType string `json:"model_type"`
			MaxPos    int    `json:"max_position_embeddings"`
		} `json:"text_config"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return ConfigSummary{}, fmt.Errorf("config.json: %w", err)
	}
	s := ConfigSummary{Architecture: raw.ModelType, ContextLength: raw.MaxPos}
	if raw.TextConfig != nil {
		if raw.TextConfig.ModelType != "" {
			s.Architecture = raw.TextConfig.ModelType
		}
		if s.ContextLength == 0 {
			s.ContextLength = raw.TextConfig.MaxPos
		}
	}
	if s.ContextLength < 0 {
		s.ContextLength = 0
	}
	switch q := raw.Quantization; {
	case q != nil && q.Bits > 0 && q.Bits <= 16 && q.GroupSize > 0:
		s.Quantization = fmt.Sprintf("MLX %d-bit g%d", q.Bits, q.GroupSize)
	case raw.TorchDType != "":
		s.Quantization = dtypeName(raw.TorchDType)
	case raw.DType != "":
		s.Quantization = dtypeName(raw.DType)
	}
	return s, nil
}

func dtypeName(d string) string {
	switch strings.ToLower(d) {
	case "bfloat16":
		return "BF16"
	case "float16":
		return "F16"
	case "float32":
		return "F32"
	}
	if len(d) > 32 {
		d = d[:32]
	}
	return d
}

// summarizeGGUF reads the architecture, context length, parameter count and
// dominant tensor type (by bytes) from a GGUF header.
func summarizeGGUF(m LocalModel) (ConfigSummary, error) {
	f, err := gguf.Open(m.Path)
	if err != nil {
		return ConfigSummary{}, fmt.Errorf("header of %s: %w", m.ID, err)
	}
	defer f.Close()
	s := ConfigSummary{Architecture: f.Architecture()}
	if n, ok := f.Uint(s.Architecture + ".context_length"); ok && n < 1<<31 {
		s.ContextLength = int(n)
	}
	bytesByType := map[string]uint64{}
	for _, t := range f.Tensors() {
		s.Params += int64(t.Elements())
		if len(t.Dims) >= 2 {
			bytesByType[t.Type.String()] += t.Size
		}
	}
	var best uint64
	for name, n := range bytesByType {
		if n > best || (n == best && name < s.Quantization) {
			best, s.Quantization = n, name
		}
	}
	return s, nil
}
