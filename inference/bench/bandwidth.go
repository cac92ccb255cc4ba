package bench

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/model"
)

// probeBytes is the buffer the bandwidth probe streams: far beyond any
// last-level cache, so reads come from memory.
const probeBytes = 256 << 20

// ReadBandwidth measures memory read bandwidth in bytes/s with threads
// goroutines each summing its share of a 256 MiB buffer (best of three
// passes). It is the ceiling decode approaches: decode reads every weight
// once per token. The Go loop keeps eight independent sums, enough to keep
// the loads in flight; a SIMD loop would read a little faster, so fractions
// of this ceiling are upper bounds of the true ones.
func ReadBandwidth(threads int) float64 {
	buf := make([]uint64, probeBytes/8)
	for i := range buf {
		buf[i] = uint64(i)
	}
	threads = max(threads, 1)
	best := 0.0
	var sink uint64
	var mu sync.Mutex
	for pass := 0; pass < 3; pass++ {
		var wg sync.WaitGroup
		start := time.Now()
		share := len(buf) / threads
		for t := 0; t < threads; t++ {
			wg.Add(1)
			go func(part []uint64) {
				defer wg.Done()
				s := sum8(part)
				mu.Lock()
				sink += s
				mu.Unlock()
			}(buf[t*share : (t+1)*share])
		}
		wg.Wait()
		best = max(best, float64(share*threads*8)/time.Since(start).Seconds())
	}
	runtime.KeepAlive(sink)
	return best
}

func sum8(p []uint64) uint64 {
	var s0, s1, s2, s3, s4, s5, s6, s7 uint64
	i := 0
	for ; i+8 <= len(p); i += 8 {
		q := p[i : i+8 : i+8]
		s0 += q[0]
		s1 += q[1]
		s2 += q[2]
		s3 += q[3]
		s4 += q[4]
		s5 += q[5]
		s6 += q[6]
		s7 += q[7]
	}
	for ; i < len(p); i++ {
		s0 += p[i]
	}
	return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7
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
