package bench

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/impetusllm/impetus/inference/quant"
	"github.com/impetusllm/impetus/inference/safetensors"
)

// mlxGroupSize is the group size mlx-community conversions use by default.
const mlxGroupSize = 64

// weightStd is the spread of the random weights: the usual initializer
// range, small enough that activations stay finite through every layer.
const weightStd = 0.02

// generator names the files' layout version in the marker, so a cache made by
// an older generator is rebuilt rather than reused.
const generator = "impetus-bench-random/1"

// MarkerFile is written last into a random model folder; its presence with the
// expected content means the folder is complete.
const MarkerFile = "impetus-bench.json"

// storage is how the matrices are stored: MLX affine codes or bfloat16.
type storage struct {
	name string
	bits int // 0 for bfloat16
}

func parseStorage(q string) (storage, error) {
	switch q {
	case "mlx2", "mlx3", "mlx4", "mlx5", "mlx6", "mlx8":
		return storage{q, int(q[3] - '0')}, nil
	case "bf16":
		return storage{q, 0}, nil
	}
	return storage{}, fmt.Errorf("unknown quantization %q (want mlx2, mlx3, mlx4, mlx5, mlx6, mlx8 or bf16)", q)
}

// marker identifies what a random model folder holds.
type marker struct {
	Generator string `json:"generator"`
	Shape     string `json:"shape"`
	Quant     string `json:"quant"`
	Seed      uint64 `json:"seed"`
}

// MakeRandomModel writes an mlx-community-style model folder (config.json with
// the quantization block, model.safetensors with bf16 norms, biases, scales
// and MLX biases) holding random weights of shape's real dimensions. quant is
// "mlx2" ... "mlx8" (2, 3, 4, 5, 6 or 8 bits, group size 64, embeddings
// included, as mlx_lm.convert does) or "bf16". The same seed gives the same file. The weights are written to a
// temporary name and renamed, and MarkerFile last, so an interrupted run never
// leaves a folder that looks complete.
func MakeRandomModel(dir string, shape Shape, quantName string, seed uint64) error {
	st, err := parseStorage(quantName)
	if err != nil {
		return err
	}
	if err := shape.validate(); err != nil {
		return err
	}
	if st.bits != 0 {
		for _, cols := range []int{shape.Hidden, shape.Heads * shape.HeadDim, shape.Intermediate} {
			if err := quant.MLXCheck(cols, st.bits, mlxGroupSize); err != nil {
				return fmt.Errorf("shape %q: %w", shape.Name, err)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("random model: %w", err)
	}
	os.Remove(filepath.Join(dir, MarkerFile))
	tensors, err := randomTensors(shape, st, seed)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "model.safetensors.partial")
	if err := safetensors.WriteFile(tmp, tensors, map[string]string{"format": "mlx"}); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("random model: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "model.safetensors")); err != nil {
		return fmt.Errorf("random model: %w", err)
	}
	cfg, err := configJSON(shape, st)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		return fmt.Errorf("random model: %w", err)
	}
	mk, _ := json.Marshal(marker{generator, shape.Name, quantName, seed})
	if err := os.WriteFile(filepath.Join(dir, MarkerFile), mk, 0o644); err != nil {
		return fmt.Errorf("random model: %w", err)
	}
	return nil
}

// EnsureRandomModel returns cacheRoot/<shape>-<quant>, generating the model
// there unless a complete one of the same shape, quantization and seed is
// already present. made reports whether it was generated now.
func EnsureRandomModel(cacheRoot string, shape Shape, quantName string, seed uint64) (dir string, made bool, err error) {
	dir = filepath.Join(cacheRoot, shape.Name+"-"+quantName)
	want, _ := json.Marshal(marker{generator, shape.Name, quantName, seed})
	if got, err := os.ReadFile(filepath.Join(dir, MarkerFile)); err == nil && string(got) == string(want) {
		return dir, false, nil
	}
	if err := MakeRandomModel(dir, shape, quantName, seed); err != nil {
		return "", false, err
	}
	return dir, true, nil
}

func configJSON(s Shape, st storage) ([]byte, error) {
	c := map[string]any{
		"architectures":           []string{s.Architecture},
		"model_type":              s.ModelType,
		"hidden_size":             s.Hidden,
		"intermediate_size":       s.Intermediate,
		"num_hidden_layers":       s.Layers,
		"num_attention_heads":     s.Heads,
		"num_key_value_heads":     s.KVHeads,
		"head_dim":                s.HeadDim,
		"vocab_size":              s.Vocab,
		"max_position_embeddings": s.ContextLength,
		"rms_norm_eps":            s.RMSNormEps,
		"rope_theta":              s.RopeTheta,
		"tie_word_embeddings":     s.Tied,
		"hidden_act":              "silu",
		"bos_token_id":            s.BOS,
		"eos_token_id":            s.EOS,
		"torch_dtype":             "bfloat16",
	}
	if s.ContextLength == 0 {
		c["max_position_embeddings"] = 4096
	}
	if s.RopeScaling != nil {
		c["rope_scaling"] = s.RopeScaling
	}
	if s.ModelType == "qwen2" {
		c["use_sliding_window"] = false
	} else {
		c["attention_bias"] = s.QKVBias
		c["mlp_bias"] = false
	}
	if st.bits != 0 {
		q := map[string]any{"group_size": mlxGroupSize, "bits": st.bits}
		c["quantization"] = q
		c["quantization_config"] = q
	}
	out, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("random model config: %w", err)
	}
	return out, nil
}

// job is one tensor's worth of generation: a matrix filled row block by row
// block (in parallel), or a constant/random vector.
type job struct {
	name       string
	rows, cols int
	vector     bool
	one        bool // vector of ones (norm weights)
}

func randomTensors(s Shape, st storage, seed uint64) ([]safetensors.Tensor, error) {
	H, I := s.Hidden, s.Intermediate
	qDim, kvDim := s.Heads*s.HeadDim, s.KVHeads*s.HeadDim
	jobs := []job{{name: "model.embed_tokens", rows: s.Vocab, cols: H}}
	for i := 0; i < s.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		jobs = append(jobs,
			job{name: p + "input_layernorm.weight", rows: H, vector: true, one: true},
			job{name: p + "post_attention_layernorm.weight", rows: H, vector: true, one: true},
			job{name: p + "self_attn.q_proj", rows: qDim, cols: H},
			job{name: p + "self_attn.k_proj", rows: kvDim, cols: H},
			job{name: p + "self_attn.v_proj", rows: kvDim, cols: H},
			job{name: p + "self_attn.o_proj", rows: H, cols: qDim},
			job{name: p + "mlp.gate_proj", rows: I, cols: H},
			job{name: p + "mlp.up_proj", rows: I, cols: H},
			job{name: p + "mlp.down_proj", rows: H, cols: I},
		)
		if s.QKVBias {
			jobs = append(jobs,
				job{name: p + "self_attn.q_proj.bias", rows: qDim, vector: true},
				job{name: p + "self_attn.k_proj.bias", rows: kvDim, vector: true},
				job{name: p + "self_attn.v_proj.bias", rows: kvDim, vector: true},
			)
		}
	}
	jobs = append(jobs, job{name: "model.norm.weight", rows: H, vector: true, one: true})
	if !s.Tied {
		jobs = append(jobs, job{name: "lm_head", rows: s.Vocab, cols: H})
	}

	var out []safetensors.Tensor
	for id, j := range jobs {
		if j.vector {
			out = append(out, vectorTensor(j, seed, uint64(id)))
			continue
		}
		ts, err := matrixTensors(j, st, seed, uint64(id))
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

func vectorTensor(j job, seed, id uint64) safetensors.Tensor {
	data := make([]byte, 2*j.rows)
	r := rand.New(rand.NewPCG(seed, id<<32))
	for i := 0; i < j.rows; i++ {
		v := float32(1)
		if !j.one {
			v = (r.Float32()*2 - 1) * weightStd
		}
		binary.LittleEndian.PutUint16(data[2*i:], quant.F32ToBF16(v))
	}
	return safetensors.Tensor{Name: j.name, DType: safetensors.BF16, Shape: []int{j.rows}, Data: data}
}

// blockRows is the unit of parallel work; each block has its own random
// stream so the output does not depend on the number of workers.
const blockRows = 64

// matrixTensors draws a [rows][cols] weight uniformly with standard deviation
// weightStd and stores it as bf16, or quantizes it block by block into MLX
// codes with bf16 scales and biases, never holding the whole float matrix.
func matrixTensors(j job, st storage, seed, id uint64) ([]safetensors.Tensor, error) {
	const halfRange = weightStd * 1.7320508 // uniform on [-a, a] has std a/sqrt(3)
	var wData, sData, bData []byte
	words := 0
	groups := j.cols / mlxGroupSize
	if st.bits == 0 {
		wData = make([]byte, 2*j.rows*j.cols)
	} else {
		words = quant.MLXWordsPerRow(j.cols, st.bits)
		wData = make([]byte, 4*j.rows*words)
		sData = make([]byte, 2*j.rows*groups)
		bData = make([]byte, 2*j.rows*groups)
	}
	blocks := (j.rows + blockRows - 1) / blockRows
	next := make(chan int, blocks)
	for b := 0; b < blocks; b++ {
		next <- b
	}
	close(next)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]float32, blockRows*j.cols)
			for b := range next {
				r0 := b * blockRows
				n := min(blockRows, j.rows-r0)
				vals := buf[:n*j.cols]
				fillUniform(vals, rand.New(rand.NewPCG(seed, id<<32|uint64(b))), halfRange)
				if st.bits == 0 {
					dst := wData[2*r0*j.cols:]
					for i, v := range vals {
						binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToBF16(v))
					}
					continue
				}
				wq, scales, biases, err := quant.QuantizeMLX(vals, n, j.cols, st.bits, mlxGroupSize)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("random model %s: %w", j.name, err)
					}
					mu.Unlock()
					return
				}
				dst := wData[4*r0*words:]
				for i, q := range wq {
					binary.LittleEndian.PutUint32(dst[4*i:], q)
				}
				sd, bd := sData[2*r0*groups:], bData[2*r0*groups:]
				for i := range scales {
					binary.LittleEndian.PutUint16(sd[2*i:], quant.F32ToBF16(scales[i]))
					binary.LittleEndian.PutUint16(bd[2*i:], quant.F32ToBF16(biases[i]))
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if st.bits == 0 {
		return []safetensors.Tensor{{Name: j.name + ".weight", DType: safetensors.BF16, Shape: []int{j.rows, j.cols}, Data: wData}}, nil
	}
	return []safetensors.Tensor{
		{Name: j.name + ".weight", DType: safetensors.U32, Shape: []int{j.rows, words}, Data: wData},
		{Name: j.name + ".scales", DType: safetensors.BF16, Shape: []int{j.rows, groups}, Data: sData},
		{Name: j.name + ".biases", DType: safetensors.BF16, Shape: []int{j.rows, groups}, Data: bData},
	}, nil
}

// fillUniform writes values uniform on [-a, a), two per 64-bit draw.
func fillUniform(dst []float32, r *rand.Rand, a float32) {
	scale := a / (1 << 31)
	i := 0
	for ; i+1 < len(dst); i += 2 {
		u := r.Uint64()
		dst[i] = float32(int32(u)) * scale
		dst[i+1] = float32(int32(u>>32)) * scale
	}
	if i < len(dst) {
		dst[i] = float32(int32(r.Uint64())) * scale
	}
}
