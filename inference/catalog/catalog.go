// Package catalog is the curated list of downloadable models behind
// GET /api/models/discover. Every entry names a real repository whose weight
// size was read from its public file listing; Source records where. Speed is
// never stored: Estimate derives it from this machine's measured memory
// bandwidth.
package catalog

import (
	"sort"
	"strings"
)

// Model is one catalog entry.
type Model struct {
	ID          string `json:"model_id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Category    string `json:"category"`
	Format      string `json:"format"` // "MLX" or "GGUF"
	// WeightBytes is the total size of the weight files, as the hub lists it
	// (decimal units, to the precision the listing shows).
	WeightBytes int64 `json:"weight_bytes"`
	// Parameters is the size class the model's name states, e.g. "1B".
	Parameters   string   `json:"parameters"`
	Architecture string   `json:"architecture"`
	Quantization string   `json:"quantization"`
	Tags         []string `json:"tags"`
	// File is the one GGUF file to fetch (a download pattern); empty for MLX.
	File string `json:"file,omitempty"`
	// Source is the public page the size was verified against.
	Source string `json:"source"`
}

// Categories lists the category names in display order.
var Categories = []string{"efficient", "general", "large"}

const gb = 1_000_000_000

// models is the catalog. Sizes are the weight files' sizes shown on the
// Source page (e.g. "model.safetensors 695 MB").
var models = []Model{
	{
		ID: "mlx-community/Qwen2.5-0.5B-Instruct-4bit", Name: "Qwen2.5 0.5B Instruct (MLX 4-bit)",
		Description: "Smallest Qwen2.5 instruct model; quick replies on any machine.",
		Category:    "efficient", Format: "MLX", WeightBytes: 278_000_000, Parameters: "0.5B", Architecture: "qwen2", Quantization: "MLX 4-bit",
		Tags: []string{"chat", "small", "mlx"}, Source: "https://huggingface.co/mlx-community/Qwen2.5-0.5B-Instruct-4bit/tree/main",
	},
	{
		ID: "mlx-community/Llama-3.2-1B-Instruct-4bit", Name: "Llama 3.2 1B Instruct (MLX 4-bit)",
		Description: "Meta's 1B instruct model, multilingual.",
		Category:    "efficient", Format: "MLX", WeightBytes: 695_000_000, Parameters: "1B", Architecture: "llama", Quantization: "MLX 4-bit",
		Tags: []string{"chat", "small", "mlx"}, Source: "https://huggingface.co/mlx-community/Llama-3.2-1B-Instruct-4bit/tree/main",
	},
	{
		ID: "mlx-community/Llama-3.2-3B-Instruct-4bit", Name: "Llama 3.2 3B Instruct (MLX 4-bit)",
		Description: "Meta's 3B instruct model, multilingual.",
		Category:    "efficient", Format: "MLX", WeightBytes: 1_810_000_000, Parameters: "3B", Architecture: "llama", Quantization: "MLX 4-bit",
		Tags: []string{"chat", "mlx"}, Source: "https://huggingface.co/mlx-community/Llama-3.2-3B-Instruct-4bit/tree/main",
	},
	{
		ID: "lmstudio-community/Qwen2.5-3B-Instruct-MLX-4bit", Name: "Qwen2.5 3B Instruct (MLX 4-bit)",
		Description: "Qwen2.5 3B instruct model.",
		Category:    "efficient", Format: "MLX", WeightBytes: 1_740_000_000, Parameters: "3B", Architecture: "qwen2", Quantization: "MLX 4-bit",
		Tags: []string{"chat", "mlx"}, Source: "https://huggingface.co/lmstudio-community/Qwen2.5-3B-Instruct-MLX-4bit/tree/main",
	},
	{
		ID: "mlx-community/Mistral-7B-Instruct-v0.3-4bit", Name: "Mistral 7B Instruct v0.3 (MLX 4-bit)",
		Description: "Mistral's 7B instruct model; the seed's default model.",
		Category:    "general", Format: "MLX", WeightBytes: 4_080_000_000, Parameters: "7B", Architecture: "mistral", Quantization: "MLX 4-bit",
		Tags: []string{"chat", "mlx"}, Source: "https://huggingface.co/mlx-community/Mistral-7B-Instruct-v0.3-4bit/tree/refs%2Fpr%2F2",
	},
	{
		ID: "lmstudio-community/Qwen2.5-7B-Instruct-MLX-4bit", Name: "Qwen2.5 7B Instruct (MLX 4-bit)",
		Description: "Qwen2.5 7B instruct model.",
		Category:    "general", Format: "MLX", WeightBytes: 4_280_000_000, Parameters: "7B", Architecture: "qwen2", Quantization: "MLX 4-bit",
		Tags: []string{"chat", "mlx"}, Source: "https://huggingface.co/lmstudio-community/Qwen2.5-7B-Instruct-MLX-4bit/tree/main",
	},
	{
		ID: "mlx-community/Qwen2.5-32B-Instruct-4bit", Name: "Qwen2.5 32B Instruct (MLX 4-bit)",
		Description: "Qwen2.5 32B instruct model in four weight shards.",
		Category:    "large", Format: "MLX", WeightBytes: 5_370_000_000 + 5_340_000_000 + 5_370_000_000 + 2_360_000_000, Parameters: "32B", Architecture: "qwen2", Quantization: "MLX 4-bit",
		Tags: []string{"chat", "large", "mlx"}, Source: "https://huggingface.co/mlx-community/Qwen2.5-32B-Instruct-4bit/tree/979ba94b6e21f4d59e5137ecc7a1454935e5218b",
	},
	{
		ID: "bartowski/Qwen2.5-0.5B-Instruct-GGUF", Name: "Qwen2.5 0.5B Instruct (GGUF Q4_K_M)",
		Description: "Smallest Qwen2.5 instruct model as one GGUF file.",
		Category:    "efficient", Format: "GGUF", WeightBytes: 398_000_000, Parameters: "0.5B", Architecture: "qwen2", Quantization: "Q4_K_M",
		Tags: []string{"chat", "small", "gguf"}, File: "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf",
		Source: "https://huggingface.co/bartowski/Qwen2.5-0.5B-Instruct-GGUF/blob/b26a58accf53b1a19fbc555d52fdb224bec473f5/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf",
	},
	{
		ID: "bartowski/Llama-3.2-1B-Instruct-GGUF", Name: "Llama 3.2 1B Instruct (GGUF Q4_K_M)",
		Description: "Meta's 1B instruct model as one GGUF file.",
		Category:    "efficient", Format: "GGUF", WeightBytes: 808_000_000, Parameters: "1B", Architecture: "llama", Quantization: "Q4_K_M",
		Tags: []string{"chat", "small", "gguf"}, File: "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
		Source: "https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF/blob/d52af3776f99ddf220e5ffd3f93b2a4e4df105be/Llama-3.2-1B-Instruct-Q4_K_M.gguf",
	},
	{
		ID: "bartowski/Llama-3.2-3B-Instruct-GGUF", Name: "Llama 3.2 3B Instruct (GGUF Q4_K_M)",
		Description: "Meta's 3B instruct model as one GGUF file.",
		Category:    "efficient", Format: "GGUF", WeightBytes: 2_020_000_000, Parameters: "3B", Architecture: "llama", Quantization: "Q4_K_M",
		Tags: []string{"chat", "gguf"}, File: "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
		Source: "https://huggingface.co/bartowski/Llama-3.2-3B-Instruct-GGUF/blob/c346bfc2029e79ba6d7edf026cf01fe44242db0d/Llama-3.2-3B-Instruct-Q4_K_M.gguf",
	},
}

// SizeGB is the weight size in decimal gigabytes.
func (m Model) SizeGB() float64 { return float64(m.WeightBytes) / gb }

// Filter selects catalog entries. Zero fields select everything.
type Filter struct {
	Category string
	// MaxSizeGB drops models whose weights exceed it; 0 means no limit.
	MaxSizeGB float64
	// Search matches id, name, description, architecture and tags, case-insensitively.
	Search string
}

// IsCategory reports whether c names a catalog category.
func IsCategory(c string) bool {
	for _, x := range Categories {
		if x == c {
			return true
		}
	}
	return false
}

// List returns the entries matching f, smallest first.
func List(f Filter) []Model {
	q := strings.ToLower(strings.TrimSpace(f.Search))
	var out []Model
	for _, m := range models {
		if f.Category != "" && m.Category != f.Category {
			continue
		}
		if f.MaxSizeGB > 0 && m.SizeGB() > f.MaxSizeGB {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(strings.Join(append([]string{m.ID, m.Name, m.Description, m.Architecture}, m.Tags...), " ")), q) {
			continue
		}
		m.Tags = append([]string(nil), m.Tags...)
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].WeightBytes < out[j].WeightBytes })
	return out
}

// Lookup returns the entry for id.
func Lookup(id string) (Model, bool) {
	for _, m := range models {
		if m.ID == id {
			return m, true
		}
	}
	return Model{}, false
}
