package inference

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/tokenizer"
)

// loadGGUFEmbeddingModel loads an encoder GGUF (bert, nomic-bert): the
// pooling comes from its metadata, the WordPiece tokenizer from its
// tokenizer.ggml keys. Such a file carries no prompts and no Matryoshka
// claim, so dimensions other than the full size are refused.
func loadGGUFEmbeddingModel(info LocalModel) (*EmbeddingModel, error) {
	enc, spec, err := model.LoadEncoderGGUF(info.Path)
	if err != nil {
		return nil, err
	}
	f, err := gguf.Open(info.Path)
	if err != nil {
		enc.Close()
		return nil, err
	}
	tk, err := tokenizer.FromGGUFWordPiece(f)
	f.Close()
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return startEmbeddingModel(info, encoderBackend{enc}, spec, tk)
}

// ggufKind tells an encoder GGUF from a chat one by general.architecture.
// Converters write that key first, so the header's first entry usually
// answers without parsing the vocabulary; otherwise the file is parsed.
func ggufKind(path string) ModelKind {
	arch, ok := firstGGUFArch(path)
	if !ok {
		f, err := gguf.Open(path)
		if err != nil {
			return KindChat // the load reports what is wrong
		}
		arch = f.Architecture()
		f.Close()
	}
	if model.IsEncoderGGUFArch(arch) {
		return KindEmbedding
	}
	return KindChat
}

// firstGGUFArch reads general.architecture when it is the header's first
// key-value entry.
func firstGGUFArch(path string) (string, bool) {
	fh, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer fh.Close()
	var hdr [24]byte // magic, version, tensor count, kv count
	if _, err := io.ReadFull(fh, hdr[:]); err != nil || string(hdr[:4]) != "GGUF" {
		return "", false
	}
	readStr := func(max uint64) (string, bool) {
		var n [8]byte
		if _, err := io.ReadFull(fh, n[:]); err != nil {
			return "", false
		}
		l := binary.LittleEndian.Uint64(n[:])
		if l > max {
			return "", false
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(fh, b); err != nil {
			return "", false
		}
		return string(b), true
	}
	key, ok := readStr(256)
	if !ok || key != "general.architecture" {
		return "", false
	}
	var typ [4]byte
	if _, err := io.ReadFull(fh, typ[:]); err != nil || binary.LittleEndian.Uint32(typ[:]) != 8 { // 8: string
		return "", false
	}
	return readStr(256)
}
