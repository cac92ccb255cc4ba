//go:build !cgo || !linux

package model

import (
	"fmt"

	"github.com/impetusllm/impetus/inference/cuda"
)

// gpuModel and gpuKV exist only where the cuda package can reach a GPU.
type gpuModel struct{}
type gpuKV struct{}

func (g *gpuModel) newKV(*KVCache) *gpuKV { return nil }
func (g *gpuModel) close()                {}

func (c *KVCache) copyPrefixDevice(src *KVCache, n int) error {
	return fmt.Errorf("kv cache: %w", cuda.ErrNotAvailable)
}

func (m *Model) forwardGPU(batch []SeqBatch, logits [][]float32, N, nOut int) error {
	return fmt.Errorf("model: %w", cuda.ErrNotAvailable)
}

// GPUBytes is 0: this build has no GPU path.
func (m *Model) GPUBytes() int64 { return 0 }

// UseDevice fails: this build has no GPU path.
func (m *Model) UseDevice(dev *cuda.Device, reserve int64) error {
	return fmt.Errorf("model: %w", cuda.ErrNotAvailable)
}

// Device is always "cpu" in this build.
func (m *Model) Device() string { return "cpu" }

// ExpandedOnGPU is always empty in this build.
func (m *Model) ExpandedOnGPU() []string { return nil }

// GPUMemory is all 0 in this build.
func (m *Model) GPUMemory() (weights, kv, activations int64) { return 0, 0, 0 }

// GPUDevice is nil in this build.
func (m *Model) GPUDevice() *cuda.Device { return nil }
