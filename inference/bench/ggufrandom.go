package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/quant"
)

// ggufGenerator is stored in each random GGUF file (key impetus.bench.generator),
// so a file of an older layout is rebuilt rather than reused.
const ggufGenerator = "impetus-bench-random-gguf/2"

// ggufFileTypes are the GGUF quantizations WriteRandomGGUF writes, with the
// llama.cpp file type number llama-bench prints them by (general.file_type).
var ggufFileTypes = map[string]uint32{"bf16": 32, "q8_0": 7, "q4_0": 2, "q4_k_m": 15, "q2_k": 10, "q3_k_s": 11}

// IsGGUFQuant reports whether quantName is written as a GGUF file (q4_0,
// q8_0, q4_k_m, q2_k, q3_k_s, bf16) rather than an MLX folder (mlx4, ...).
func IsGGUFQuant(quantName string) bool {
	_, ok := ggufFileTypes[quantName]
	return ok && quantName != "bf16"
}

// role is what a matrix does, which decides its type in a mixed file.
type role int

const (
	roleOutput role = iota // the logits matrix: output.weight, or token_embd when tied
	roleEmbed              // token_embd of an untied model
	roleAttnQ
	roleAttnK
	roleAttnV
	roleAttnOut
	roleGate
	roleUp
	roleDown
)

// moreBits picks the layers a K-quant mix gives more bits: the first and last
// eighth of the stack and every third layer between.
func moreBits(layer, layers int) bool {
	return layer < layers/8 || layer >= 7*layers/8 || (layer-layers/8)%3 == 2
}

// mixType is the type of one matrix in a file of quantization q, following
// the mixes llama-quantize makes:
//   - q8_0: every matrix Q8_0; bf16: every matrix BF16.
//   - q4_0: Q4_0, except the logits matrix (token_embd when tied) in Q6_K.
//   - q4_k_m: Q4_K, except the logits matrix in Q6_K, and attn_v and ffn_down
//     in Q6_K in the layers moreBits picks.
//   - q2_k, q3_k_s: every matrix Q2_K or Q3_K, except the logits matrix in
//     Q6_K (simpler than llama-quantize's mixes: they test the narrowest
//     types, not reproduce a file).
//
// Then, as llama-quantize does, a type whose block does not divide the row
// length falls back: Q4_K to Q5_0, Q6_K to Q8_0 (Qwen2.5-0.5B's rows of 896
// are not whole 256-element super-blocks, so its q4_k_m file is mostly Q5_0
// and Q8_0, with Q4_K/Q6_K only in ffn_down), Q2_K and Q3_K here to Q4_0,
// and anything else to F16.
func mixType(q string, r role, layer, layers, rowLen int) (quant.GGMLType, error) {
	var t quant.GGMLType
	switch q {
	case "bf16":
		t = quant.GGMLBF16
	case "q8_0":
		t = quant.GGMLQ8_0
	case "q4_0":
		t = quant.GGMLQ4_0
		if r == roleOutput {
			t = quant.GGMLQ6_K
		}
	case "q4_k_m":
		t = quant.GGMLQ4_K
		if r == roleOutput || ((r == roleAttnV || r == roleDown) && moreBits(layer, layers)) {
			t = quant.GGMLQ6_K
		}
	case "q2_k", "q3_k_s":
		t = quant.GGMLQ2_K
		if q == "q3_k_s" {
			t = quant.GGMLQ3_K
		}
		if r == roleOutput {
			t = quant.GGMLQ6_K
		}
	default:
		return 0, fmt.Errorf("unknown GGUF quantization %q (want q4_0, q8_0, q4_k_m, q2_k, q3_k_s or bf16)", q)
	}
	if rowLen%t.BlockSize() != 0 {
		switch t {
		case quant.GGMLQ4_K:
			t = quant.GGMLQ5_0
		case quant.GGMLQ6_K:
			t = quant.GGMLQ8_0
		case quant.GGMLQ2_K, quant.GGMLQ3_K:
			t = quant.GGMLQ4_0
		}
	}
	if rowLen%t.BlockSize() != 0 {
		t = quant.GGMLF16
	}
	return t, nil
}

// ggufJob is one tensor of a random GGUF file.
type ggufJob struct {
	name       string
	rows, cols int // a vector has rows 0
	role       role
	layer      int
}

func ggufJobs(s Shape) []ggufJob {
	H, I := s.Hidden, s.Intermediate
	qDim, kvDim := s.Heads*s.HeadDim, s.KVHeads*s.HeadDim
	embedRole := roleEmbed
	if s.Tied {
		embedRole = roleOutput
	}
	jobs := []ggufJob{{name: "token_embd.weight", rows: s.Vocab, cols: H, role: embedRole}}
	for i := 0; i < s.Layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		jobs = append(jobs,
			ggufJob{name: p + "attn_norm.weight", cols: H},
			ggufJob{name: p + "attn_q.weight", rows: qDim, cols: H, role: roleAttnQ, layer: i},
			ggufJob{name: p + "attn_k.weight", rows: kvDim, cols: H, role: roleAttnK, layer: i},
			ggufJob{name: p + "attn_v.weight", rows: kvDim, cols: H, role: roleAttnV, layer: i},
			ggufJob{name: p + "attn_output.weight", rows: H, cols: qDim, role: roleAttnOut, layer: i},
			ggufJob{name: p + "ffn_norm.weight", cols: H},
			ggufJob{name: p + "ffn_gate.weight", rows: I, cols: H, role: roleGate, layer: i},
			ggufJob{name: p + "ffn_up.weight", rows: I, cols: H, role: roleUp, layer: i},
			ggufJob{name: p + "ffn_down.weight", rows: H, cols: I, role: roleDown, layer: i},
		)
	}
	jobs = append(jobs, ggufJob{name: "output_norm.weight", cols: H})
	if !s.Tied {
		jobs = append(jobs, ggufJob{name: "output.weight", rows: s.Vocab, cols: H, role: roleOutput})
	}
	return jobs
}

// WriteRandomGGUF writes a GGUF file of arch llama with shape's dimensions
// (q/k/v biases are left out: llama has none), random weights as quantName
// lays them out (see mixType), norms of ones, Llama 3 RoPE scaling as
// rope_freqs.weight, and a synthetic byte-level BPE tokenizer of the real
// vocabulary size (syntheticVocab), so llama.cpp loads it like a converted
// model. The same seed gives the same file. It is written under a temporary
// name and renamed, so an interrupted run leaves no file at path.
func WriteRandomGGUF(path string, shape Shape, quantName string, seed uint64) error {
	ftype, ok := ggufFileTypes[quantName]
	if !ok {
		return fmt.Errorf("random gguf: unknown quantization %q (want q4_0, q8_0, q4_k_m, q2_k, q3_k_s or bf16)", quantName)
	}
	if err := shape.validate(); err != nil {
		return fmt.Errorf("random gguf: %w", err)
	}
	w := gguf.NewWriter()
	var kvErr error
	kv := func(k string, v any) {
		if err := w.SetKV(k, v); err != nil && kvErr == nil {
			kvErr = err
		}
	}
	kv("general.architecture", "llama")
	kv("general.name", "impetus random "+shape.Name)
	kv("general.file_type", ftype)
	kv("general.quantization_version", uint32(2))
	kv("impetus.bench.generator", fmt.Sprintf("%s seed %d", ggufGenerator, seed))
	ctx := shape.ContextLength
	if ctx == 0 {
		ctx = 4096
	}
	kv("llama.context_length", uint32(ctx))
	kv("llama.embedding_length", uint32(shape.Hidden))
	kv("llama.block_count", uint32(shape.Layers))
	kv("llama.feed_forward_length", uint32(shape.Intermediate))
	kv("llama.attention.head_count", uint32(shape.Heads))
	kv("llama.attention.head_count_kv", uint32(shape.KVHeads))
	kv("llama.attention.key_length", uint32(shape.HeadDim))
	kv("llama.attention.value_length", uint32(shape.HeadDim))
	kv("llama.attention.layer_norm_rms_epsilon", float32(shape.RMSNormEps))
	kv("llama.rope.freq_base", float32(shape.RopeTheta))
	kv("llama.rope.dimension_count", uint32(shape.HeadDim))
	kv("llama.vocab_size", uint32(shape.Vocab))

	control := append([]int{shape.BOS}, shape.EOS...)
	tokens, types, merges, err := syntheticVocab(shape.Vocab, control)
	if err != nil {
		return fmt.Errorf("random gguf: %w", err)
	}
	kv("tokenizer.ggml.model", "gpt2")
	kv("tokenizer.ggml.tokens", tokens)
	kv("tokenizer.ggml.token_type", types)
	kv("tokenizer.ggml.merges", merges)
	kv("tokenizer.ggml.bos_token_id", uint32(shape.BOS))
	if len(shape.EOS) > 0 {
		kv("tokenizer.ggml.eos_token_id", uint32(shape.EOS[0]))
	}
	kv("tokenizer.ggml.add_bos_token", false)
	if kvErr != nil {
		return fmt.Errorf("random gguf: %w", kvErr)
	}

	if div := llama3Divisors(shape); div != nil {
		if err := w.AddTensor("rope_freqs.weight", quant.GGMLF32, []uint64{uint64(len(div))}, f32Bytes(div)); err != nil {
			return fmt.Errorf("random gguf: %w", err)
		}
	}
	for id, j := range ggufJobs(shape) {
		if j.rows == 0 {
			ones := make([]float32, j.cols)
			for i := range ones {
				ones[i] = 1
			}
			if err := w.AddTensor(j.name, quant.GGMLF32, []uint64{uint64(j.cols)}, f32Bytes(ones)); err != nil {
				return fmt.Errorf("random gguf: %w", err)
			}
			continue
		}
		typ, err := mixType(quantName, j.role, j.layer, shape.Layers, j.cols)
		if err != nil {
			return fmt.Errorf("random gguf: %w", err)
		}
		j, id := j, uint64(id)
		err = w.AddTensorFunc(j.name, typ, []uint64{uint64(j.cols), uint64(j.rows)}, func(out io.Writer) error {
			data, err := randomBlocks(j.rows, j.cols, typ, seed, id)
			if err != nil {
				return fmt.Errorf("tensor %s: %w", j.name, err)
			}
			_, err = out.Write(data)
			return err
		})
		if err != nil {
			return fmt.Errorf("random gguf: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("random gguf: %w", err)
	}
	tmp := path + ".partial"
	if err := w.WriteFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("random gguf: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("random gguf: %w", err)
	}
	return nil
}

// EnsureRandomGGUF returns cacheRoot/<shape>-<quant>.gguf, writing it unless
// a file of the same generator and seed is already there. made reports
// whether it was written now.
func EnsureRandomGGUF(cacheRoot string, shape Shape, quantName string, seed uint64) (path string, made bool, err error) {
	path = filepath.Join(cacheRoot, shape.Name+"-"+quantName+".gguf")
	if f, err := gguf.Open(path); err == nil {
		got, _ := f.String("impetus.bench.generator")
		f.Close()
		if got == fmt.Sprintf("%s seed %d", ggufGenerator, seed) {
			return path, false, nil
		}
	}
	if err := WriteRandomGGUF(path, shape, quantName, seed); err != nil {
		return "", false, err
	}
	return path, true, nil
}

// llama3Divisors are the per-frequency divisors of Llama 3 RoPE scaling, as
// converters store them in rope_freqs.weight; nil for other shapes.
func llama3Divisors(s Shape) []float32 {
	if s.RopeScaling == nil || s.RopeScaling["rope_type"] != "llama3" {
		return nil
	}
	num := func(k string) float64 {
		switch v := s.RopeScaling[k].(type) {
		case float64:
			return v
		case int:
			return float64(v)
		}
		return 0
	}
	l3 := model.Llama3Scaling{Factor: num("factor"), LowFreqFactor: num("low_freq_factor"), HighFreqFactor: num("high_freq_factor"),
		OriginalMax: num("original_max_position_embeddings")}
	return l3.Divisors(s.RopeTheta, s.HeadDim)
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// randomBlocks draws a [rows][cols] matrix like matrixTensors does and
// encodes it as typ, row block by row block on every core.
func randomBlocks(rows, cols int, typ quant.GGMLType, seed, id uint64) ([]byte, error) {
	const halfRange = weightStd * 1.7320508
	rowBytes, err := typ.RowBytes(uint64(cols))
	if err != nil {
		return nil, err
	}
	out := make([]byte, uint64(rows)*rowBytes)
	blocks := (rows + blockRows - 1) / blockRows
	next := make(chan int, blocks)
	for b := 0; b < blocks; b++ {
		next <- b
	}
	close(next)
	var wg sync.WaitGroup
	errs := make(chan error, runtime.NumCPU())
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]float32, blockRows*cols)
			for b := range next {
				r0 := b * blockRows
				n := min(blockRows, rows-r0)
				vals := buf[:n*cols]
				fillUniform(vals, rand.New(rand.NewPCG(seed, id<<32|uint64(b))), halfRange)
				dst := out[uint64(r0)*rowBytes : uint64(r0+n)*rowBytes]
				if err := quant.QuantizeGGML(typ, vals, dst); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return out, nil
}
