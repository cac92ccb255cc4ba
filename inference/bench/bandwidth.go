package bench

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/model"
)

// probeBytes is the buffer the bandwidth probe streams: far beyond any
// last-level cache, so reads come from memory.
const probeBytes = 256 << 20

// ReadBandwidth measures memory read bandwidth in bytes/s with threads
// goroutines each streaming its share of a 256 MiB buffer. It is the
// ceiling decode approaches: decode reads every weight once per token. The
// reads are the kernels' own (kernels.ReadStream: the level's widest loads),
// each pass once plain and once with the sparse far prefetch the packed
// decode kernels use on AMD, and the best of three passes of each counts,
// so the ceiling is the fastest read this machine gave our code.
func ReadBandwidth(threads int) float64 {
	buf := make([]byte, probeBytes)
	for i := range buf {
		buf[i] = byte(i)
	}
	threads = max(threads, 1)
	best := 0.0
	var sink atomic.Uint64
	share := len(buf) / threads
	for pass := 0; pass < 6; pass++ {
		sparse := pass%2 == 1
		var wg sync.WaitGroup
		start := time.Now()
		for t := 0; t < threads; t++ {
			wg.Add(1)
			go func(part []byte) {
				defer wg.Done()
				sink.Add(kernels.ReadStream(part, sparse))
			}(buf[t*share : (t+1)*share])
		}
		wg.Wait()
		best = max(best, float64(share*threads)/time.Since(start).Seconds())
	}
	runtime.KeepAlive(sink.Load())
	return best
}

// DecodeBytes is the memory one decode step reads: the resident weights
// (packed copies and the mapped bytes read in place; an untied embedding
// table, read one row a step, counts whole, so the figure errs high by its
// size) plus the KV cache at depth tokens, at its storage's real size
// (Model.KVTokenBytes: 34 bytes per 32 values for q8_0).
func DecodeBytes(m *model.Model, depth int) int64 {
	return m.Info().WeightBytes() + m.KVTokenBytes()*int64(depth)
}

// Level is the kernels' SIMD level as one word: scalar, avx2, avx512, neon
// or go (the build without cgo).
func Level() string {
	f := strings.Fields(kernels.Features())
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

// ggufFileTypeNames are llama.cpp's names of general.file_type values.
var ggufFileTypeNames = map[uint64]string{
	0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 7: "q8_0", 8: "q5_0", 9: "q5_1",
	10: "q2_k", 11: "q3_k_s", 12: "q3_k_m", 13: "q3_k_l", 14: "q4_k_s", 15: "q4_k_m",
	16: "q5_k_s", 17: "q5_k_m", 18: "q6_k", 32: "bf16",
}

// FileQuant names the quantization a model file declares: a GGUF's
// general.file_type (q4_0, q4_k_m, ...), an MLX folder's bits (mlx4), or
// "float" for an unquantized folder.
func FileQuant(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().IsRegular() {
		f, err := gguf.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		ft, ok := f.Uint("general.file_type")
		if !ok {
			return "", fmt.Errorf("%s: no general.file_type", path)
		}
		if name, ok := ggufFileTypeNames[ft]; ok {
			return name, nil
		}
		return fmt.Sprintf("ftype%d", ft), nil
	}
	cfg, err := model.LoadConfig(path)
	if err != nil {
		return "", err
	}
	if q := cfg.Quantization; q != nil && q.Bits > 0 {
		return fmt.Sprintf("mlx%d", q.Bits), nil
	}
	return "float", nil
}
