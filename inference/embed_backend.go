package inference

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/impetusllm/impetus/inference/model"
)

// embedBackend is the network of an embedding model: a bidirectional
// encoder (BERT, XLM-R), or a causal decoder (Qwen3-Embedding) whose final
// hidden state at the last token is the embedding.
type embedBackend interface {
	// hidden returns, per sequence, the hidden states pooling reads,
	// [tokens][dim] flattened: every token's for an encoder, only the last
	// token's (after the final norm) for a decoder.
	hidden(seqs [][]int32) ([][]float32, error)
	vocab() int
	dim() int
	maxPositions() int
	close() error
}

type encoderBackend struct{ enc *model.Encoder }

func (b encoderBackend) hidden(seqs [][]int32) ([][]float32, error) { return b.enc.Hidden(seqs) }
func (b encoderBackend) vocab() int                                 { return b.enc.Config.Vocab }
func (b encoderBackend) dim() int                                   { return b.enc.Config.Hidden }
func (b encoderBackend) maxPositions() int                          { return b.enc.Config.MaxPositions }
func (b encoderBackend) close() error                               { return b.enc.Close() }

// decoderBackend runs a chat-architecture model (safetensors or MLX
// quantized) over each sequence with causal attention in a KV cache made
// for the call and dropped after it. Each sequence starts at position 0, so
// its vector does not depend on the others in the batch (transformers pads
// on the left, which shifts every position alike: RoPE sees no change).
type decoderBackend struct{ m *model.Model }

func (b decoderBackend) hidden(seqs [][]int32) ([][]float32, error) {
	batch := make([]model.SeqBatch, len(seqs))
	for i, s := range seqs {
		batch[i] = model.SeqBatch{Tokens: s, Cache: b.m.NewKVCache(len(s)), WantHidden: true}
	}
	out := make([][]float32, len(seqs))
	if err := b.m.Forward(batch, out); err != nil {
		return nil, err
	}
	return out, nil
}
func (b decoderBackend) vocab() int        { return b.m.Config.Vocab }
func (b decoderBackend) dim() int          { return b.m.Config.Hidden }
func (b decoderBackend) maxPositions() int { return b.m.Config.ContextLength }
func (b decoderBackend) close() error      { return b.m.Close() }

// openEmbedBackend loads the network of an embedding folder: an encoder
// when config.json's model_type is one, else a decoder, which must pool
// its last token (the only state it computes for embeddings).
func openEmbedBackend(dir string, spec model.EmbedSpec) (embedBackend, error) {
	var c struct {
		ModelType string `json:"model_type"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("embedding model %s: %w", dir, err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("embedding model %s: parse config.json: %w", dir, err)
	}
	if model.IsEncoderType(c.ModelType) {
		enc, err := model.LoadEncoder(dir)
		if err != nil {
			return nil, err
		}
		return encoderBackend{enc}, nil
	}
	if spec.Pooling != model.PoolLastToken {
		return nil, fmt.Errorf("embedding model %s: a decoder (model_type %q) needs last-token pooling, not %s", dir, c.ModelType, spec.Pooling)
	}
	m, err := model.Load(dir)
	if err != nil {
		return nil, err
	}
	return decoderBackend{m}, nil
}
