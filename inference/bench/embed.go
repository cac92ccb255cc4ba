package bench

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/impetusllm/impetus/inference/gguf"
	"github.com/impetusllm/impetus/inference/kernels"
	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/quant"
)

// EncoderShape is an embedding encoder's dimensions (issue 19 measures a
// bge-small-shaped BERT and a nomic-embed-shaped nomic_bert).
type EncoderShape struct {
	Name, Arch   string // Arch: GGUF architecture, bert or nomic-bert
	Vocab        int
	Hidden       int
	Layers       int
	Heads        int
	Intermediate int
	MaxPositions int
}

// EncoderShapes are the shapes --embed knows, by name.
var EncoderShapes = []EncoderShape{
	{Name: "bge-small", Arch: "bert", Vocab: 30522, Hidden: 384, Layers: 12, Heads: 12, Intermediate: 1536, MaxPositions: 512},
	{Name: "nomic-embed", Arch: "nomic-bert", Vocab: 30528, Hidden: 768, Layers: 12, Heads: 12, Intermediate: 3072, MaxPositions: 2048},
}

// EncoderShapeByName finds a shape of EncoderShapes.
func EncoderShapeByName(name string) (EncoderShape, error) {
	for _, s := range EncoderShapes {
		if s.Name == name {
			return s, nil
		}
	}
	return EncoderShape{}, fmt.Errorf("unknown encoder shape %q (bge-small, nomic-embed)", name)
}

var encoderQuants = map[string]quant.GGMLType{"f32": quant.GGMLF32, "f16": quant.GGMLF16, "q8_0": quant.GGMLQ8_0, "q4_0": quant.GGMLQ4_0}

const encoderGenerator = "impetus-bench-random-encoder/1"

// Synthetic WordPiece vocabulary: the BERT specials first, then pieces.
const (
	encPAD, encUNK, encCLS, encSEP, encMASK = 0, 1, 2, 3, 4
	encFirstPiece                           = 5
)

// WriteRandomEncoderGGUF writes a GGUF of shape s as llama.cpp's converter
// lays encoders out (see model.LoadEncoderGGUF), random weights stored as
// quantName (f32, f16, q8_0, q4_0; the position and token-type tables F32,
// norms ones and zeros), mean pooling and a synthetic WordPiece vocabulary
// of the real size, so llama-server loads it like a converted model.
func WriteRandomEncoderGGUF(path string, s EncoderShape, quantName string, seed uint64) error {
	typ, ok := encoderQuants[quantName]
	if !ok {
		return fmt.Errorf("random encoder: unknown quantization %q (f32, f16, q8_0, q4_0)", quantName)
	}
	w := gguf.NewWriter()
	var kvErr error
	kv := func(k string, v any) {
		if err := w.SetKV(k, v); err != nil && kvErr == nil {
			kvErr = err
		}
	}
	p := s.Arch + "."
	kv("general.architecture", s.Arch)
	kv("general.name", "impetus random "+s.Name)
	kv("impetus.bench.generator", fmt.Sprintf("%s seed %d", encoderGenerator, seed))
	kv(p+"context_length", uint32(s.MaxPositions))
	kv(p+"embedding_length", uint32(s.Hidden))
	kv(p+"block_count", uint32(s.Layers))
	kv(p+"feed_forward_length", uint32(s.Intermediate))
	kv(p+"attention.head_count", uint32(s.Heads))
	kv(p+"attention.layer_norm_epsilon", float32(1e-12))
	kv(p+"attention.causal", false)
	kv(p+"pooling_type", uint32(1))
	if s.Arch == "nomic-bert" {
		kv(p+"rope.freq_base", float32(1000))
	}
	tokens := make([]string, s.Vocab)
	types := make([]int32, s.Vocab)
	for i, t := range []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} {
		tokens[i], types[i] = t, 3
	}
	for i := encFirstPiece; i < s.Vocab; i++ {
		tokens[i], types[i] = fmt.Sprintf("\u2581w%d", i), 1
	}
	kv("tokenizer.ggml.model", "bert")
	kv("tokenizer.ggml.pre", "default")
	kv("tokenizer.ggml.tokens", tokens)
	kv("tokenizer.ggml.token_type", types)
	kv("tokenizer.ggml.token_type_count", uint32(2))
	for k, id := range map[string]uint32{"bos_token_id": encCLS, "cls_token_id": encCLS, "seperator_token_id": encSEP,
		"unknown_token_id": encUNK, "padding_token_id": encPAD, "mask_token_id": encMASK} {
		kv("tokenizer.ggml."+k, id)
	}
	if kvErr != nil {
		return fmt.Errorf("random encoder: %w", kvErr)
	}
	H, I := s.Hidden, s.Intermediate
	type tensor struct {
		name       string
		rows, cols int // rows 0: a vector
		ones, f32  bool
	}
	ts := []tensor{{name: "token_embd.weight", rows: s.Vocab, cols: H}, {name: "token_types.weight", rows: 2, cols: H, f32: true}}
	if s.Arch == "bert" {
		ts = append(ts, tensor{name: "position_embd.weight", rows: s.MaxPositions, cols: H, f32: true})
	}
	ts = append(ts, tensor{name: "token_embd_norm.weight", cols: H, ones: true}, tensor{name: "token_embd_norm.bias", cols: H})
	for l := 0; l < s.Layers; l++ {
		b := fmt.Sprintf("blk.%d.", l)
		if s.Arch == "bert" {
			for _, n := range []string{"attn_q", "attn_k", "attn_v"} {
				ts = append(ts, tensor{name: b + n + ".weight", rows: H, cols: H}, tensor{name: b + n + ".bias", cols: H})
			}
		} else {
			ts = append(ts, tensor{name: b + "attn_qkv.weight", rows: 3 * H, cols: H})
		}
		ts = append(ts, tensor{name: b + "attn_output.weight", rows: H, cols: H},
			tensor{name: b + "attn_output_norm.weight", cols: H, ones: true}, tensor{name: b + "attn_output_norm.bias", cols: H},
			tensor{name: b + "ffn_up.weight", rows: I, cols: H}, tensor{name: b + "ffn_down.weight", rows: H, cols: I},
			tensor{name: b + "layer_output_norm.weight", cols: H, ones: true}, tensor{name: b + "layer_output_norm.bias", cols: H})
		if s.Arch == "nomic-bert" {
			ts = append(ts, tensor{name: b + "ffn_gate.weight", rows: I, cols: H})
		} else {
			ts = append(ts, tensor{name: b + "attn_output.bias", cols: H}, tensor{name: b + "ffn_up.bias", cols: I}, tensor{name: b + "ffn_down.bias", cols: H})
		}
	}
	for id, t := range ts {
		if t.rows == 0 {
			v := make([]float32, t.cols)
			if t.ones {
				for i := range v {
					v[i] = 1
				}
			}
			if err := w.AddTensor(t.name, quant.GGMLF32, []uint64{uint64(t.cols)}, f32Bytes(v)); err != nil {
				return fmt.Errorf("random encoder: %w", err)
			}
			continue
		}
		tt := typ
		if t.f32 {
			tt = quant.GGMLF32
		}
		t, id := t, uint64(id)
		err := w.AddTensorFunc(t.name, tt, []uint64{uint64(t.cols), uint64(t.rows)}, func(out io.Writer) error {
			data, err := randomBlocks(t.rows, t.cols, tt, seed, id)
			if err != nil {
				return fmt.Errorf("tensor %s: %w", t.name, err)
			}
			_, err = out.Write(data)
			return err
		})
		if err != nil {
			return fmt.Errorf("random encoder: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("random encoder: %w", err)
	}
	tmp := path + ".partial"
	if err := w.WriteFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("random encoder: %w", err)
	}
	return os.Rename(tmp, path)
}

// EnsureRandomEncoderGGUF returns cacheRoot/<shape>-<quant>.gguf, writing it
// unless a file of the same generator and seed is there.
func EnsureRandomEncoderGGUF(cacheRoot string, s EncoderShape, quantName string, seed uint64) (path string, made bool, err error) {
	path = filepath.Join(cacheRoot, s.Name+"-"+quantName+".gguf")
	if f, err := gguf.Open(path); err == nil {
		got, _ := f.String("impetus.bench.generator")
		f.Close()
		if got == fmt.Sprintf("%s seed %d", encoderGenerator, seed) {
			return path, false, nil
		}
	}
	if err := WriteRandomEncoderGGUF(path, s, quantName, seed); err != nil {
		return "", false, err
	}
	return path, true, nil
}

// EmbedOptions configure EmbedCompare.
type EmbedOptions struct {
	Model    string // name printed in BENCH lines
	Quant    string
	GGUF     string // the encoder GGUF both engines run
	Threads  []int
	Batch    int // inputs per request
	SeqLen   int // tokens per input, [CLS] and [SEP] included
	Repeats  int
	LlamaCPP string    // llama.cpp build folder (bin/llama-server), or ""
	UBatch   int       // llama-server's -ub; 0: the whole batch in one ubatch
	LlamaEnv []string  // extra environment for llama-server
	Progress io.Writer // run-by-run figures
	Lines    io.Writer // BENCH lines
}

// EmbedResult is one thread count's medians, in embeddings per second.
type EmbedResult struct {
	Threads          int
	Impetus, Llama   float64 // Llama 0 without --llama-cpp
	ImpetusRuns, LRs []float64
}

// EmbedCompare measures embeddings per second for batches of Batch random
// inputs of SeqLen tokens: the encoder in process (one forward over the
// whole batch, mean pooling, normalisation), and, with LlamaCPP,
// llama-server --embeddings on the same GGUF with the same threads (one
// slot per input, the batch in one ubatch, one /v1/embeddings request of
// token-id inputs), one run each in turn, Repeats times; medians. Each
// figure ends in
//
//	BENCH model=<m> quant=<q> threads=<n> test=embed<B>x<T> impetus=<emb/s> llamacpp=<emb/s|-> ratio=<r|-> level=<simd>
func EmbedCompare(o EmbedOptions) ([]EmbedResult, error) {
	if o.Batch <= 0 || o.SeqLen < 3 || o.Repeats <= 0 {
		return nil, fmt.Errorf("embed bench: batch, repeats must be positive and sequences at least 3 tokens")
	}
	enc, _, err := model.LoadEncoderGGUF(o.GGUF)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	if o.SeqLen > enc.Config.MaxPositions {
		return nil, fmt.Errorf("embed bench: %d tokens is past the model's %d positions", o.SeqLen, enc.Config.MaxPositions)
	}
	r := rand.New(rand.NewPCG(19, 1))
	seqs := make([][]int32, o.Batch)
	for i := range seqs {
		s := make([]int32, o.SeqLen)
		s[0], s[len(s)-1] = encCLS, encSEP
		for j := 1; j < len(s)-1; j++ {
			s[j] = int32(encFirstPiece + r.IntN(enc.Config.Vocab-encFirstPiece))
		}
		seqs[i] = s
	}
	ours := func() (float64, error) {
		start := time.Now()
		hidden, err := enc.Hidden(seqs)
		if err != nil {
			return 0, err
		}
		for _, h := range hidden {
			model.Pool(h, enc.Config.Hidden, model.PoolMean, true)
		}
		return float64(len(seqs)) / time.Since(start).Seconds(), nil
	}
	var results []EmbedResult
	for _, th := range o.Threads {
		kernels.SetThreads(th)
		var srv *embedServer
		if o.LlamaCPP != "" {
			bin, err := LlamaTool(o.LlamaCPP, "llama-server")
			if err != nil {
				return results, err
			}
			if srv, err = startEmbedServer(bin, o.LlamaEnv, o.GGUF, th, o.Batch, o.SeqLen, o.UBatch); err != nil {
				return results, err
			}
		}
		res := EmbedResult{Threads: th}
		if _, err := ours(); err != nil { // warm-up: page in the weights
			srv.stop()
			return results, err
		}
		if srv != nil {
			if _, err := srv.round(seqs); err != nil {
				srv.stop()
				return results, err
			}
		}
		for rep := 0; rep < o.Repeats; rep++ {
			v, err := ours()
			if err != nil {
				srv.stop()
				return results, err
			}
			res.ImpetusRuns = append(res.ImpetusRuns, v)
			line := fmt.Sprintf("embed %s threads=%d run %d: impetus %.1f emb/s", o.Model, th, rep+1, v)
			if srv != nil {
				l, err := srv.round(seqs)
				if err != nil {
					srv.stop()
					return results, err
				}
				res.LRs = append(res.LRs, l)
				line += fmt.Sprintf(", llama-server %.1f emb/s", l)
			}
			if o.Progress != nil {
				fmt.Fprintln(o.Progress, line)
			}
		}
		srv.stop()
		res.Impetus = sortedMedian(res.ImpetusRuns)
		llama, ratio := "-", "-"
		if len(res.LRs) > 0 {
			res.Llama = sortedMedian(res.LRs)
			llama, ratio = fmt.Sprintf("%.1f", res.Llama), fmt.Sprintf("%.2f", res.Impetus/res.Llama)
		}
		if o.Lines != nil {
			fmt.Fprintf(o.Lines, "BENCH model=%s quant=%s threads=%d test=embed%dx%d impetus=%.1f llamacpp=%s ratio=%s level=%s\n",
				o.Model, o.Quant, th, o.Batch, o.SeqLen, res.Impetus, llama, ratio, kernels.LevelName())
		}
		results = append(results, res)
	}
	return results, nil
}

func sortedMedian(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return median(s)
}

// embedServer is llama-server --embeddings on a loopback port.
type embedServer struct{ *llamaServer }

// startEmbedServer starts llama-server with embeddings on, slots
// parallel inputs of up to seqLen tokens, and a batch holding all of them
// (one llama_decode per request), split into ubatches of ubatch tokens
// (whole sequences; 0: one ubatch, one forward pass).
func startEmbedServer(bin string, env []string, path string, threads, slots, seqLen, ubatch int) (*embedServer, error) {
	ctx := slots * (seqLen + 16)
	s, err := launchLlamaServer(bin, env, "-m", path, "--embeddings",
		"-t", strconv.Itoa(threads), "-tb", strconv.Itoa(threads), "-np", strconv.Itoa(slots),
		"-c", strconv.Itoa(ctx), "-b", strconv.Itoa(ctx), "-ub", strconv.Itoa(cmp.Or(ubatch, ctx)))
	if err != nil {
		return nil, err
	}
	return &embedServer{s}, nil
}

func (s *embedServer) stop() {
	if s != nil {
		s.llamaServer.stop()
	}
}

// round posts the sequences as one /v1/embeddings request of token-id
// inputs and returns embeddings per second of wall time.
func (s *embedServer) round(seqs [][]int32) (float64, error) {
	body, _ := json.Marshal(map[string]any{"input": seqs, "encoding_format": "float"})
	start := time.Now()
	resp, err := http.Post(s.url+"/v1/embeddings", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("llama-server /v1/embeddings: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<28))
	elapsed := time.Since(start).Seconds()
	if err != nil {
		return 0, fmt.Errorf("llama-server /v1/embeddings: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("llama-server /v1/embeddings: status %d: %.300s", resp.StatusCode, data)
	}
	var out struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return 0, fmt.Errorf("llama-server /v1/embeddings answer: %w", err)
	}
	if len(out.Data) != len(seqs) || len(out.Data[0].Embedding) == 0 {
		return 0, fmt.Errorf("llama-server /v1/embeddings: %d vectors for %d inputs", len(out.Data), len(seqs))
	}
	return float64(len(seqs)) / elapsed, nil
}
