package kernels

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/impetusllm/impetus/inference/quant"
)

// Weight shapes (rows = out features, cols = in features) of the models
// the engine targets first.
var benchShapes = []struct {
	name       string
	rows, cols int
}{
	{"qwen0.5b_qo_896x896", 896, 896},
	{"qwen0.5b_gate_4864x896", 4864, 896},
	{"qwen0.5b_down_896x4864", 896, 4864},
	{"llama1b_q_2048x2048", 2048, 2048},
	{"llama1b_gate_8192x2048", 8192, 2048},
	{"llama1b_down_2048x8192", 2048, 8192},
	{"qwen0.5b_vocab_151936x896", 151936, 896},
}

var benchN = []int{1, 4, 16, 64}

var benchThreads = flag.Int("kthreads", 0, "kernel threads for benchmarks (0: default)")

var benchInt8MLX = flag.Bool("kint8mlx", false, "int8 activations in the MLX 4-bit benchmarks")

var benchInt8 = flag.Bool("kint8", true, "int8 activations in the Q8_0/Q4_0 benchmarks (false: float path)")

func TestMain(m *testing.M) {
	flag.Parse()
	// The reference comparisons expect float activations; int8_test.go and
	// the Q8_0/Q4_0 benchmarks turn the int8 path on where they want it.
	SetInt8Activations(false)
	if *benchThreads > 0 {
		SetThreads(*benchThreads)
	}
	os.Exit(m.Run())
}

// cpuTime is the process's user and system CPU time: on a shared machine
// it measures a kernel better than the wall clock does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU records the CPU time per operation since c0 (all threads).
func reportCPU(b *testing.B, c0 time.Duration) {
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

// reportWeights records the weight bytes one call streams, as GB/s.
func reportWeights(b *testing.B, bytes int) {
	b.SetBytes(int64(bytes))
	b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

func benchMLX(b *testing.B, bits int) {
	r := rand.New(rand.NewPCG(1, 1))
	defer SetInt8Activations(SetInt8Activations(*benchInt8))
	defer SetInt8MLX(SetInt8MLX(*benchInt8MLX))
	for _, s := range benchShapes {
		const g = 64
		w := randSlice(r, s.rows*s.cols, 1)
		wq, sc, bi := quantizeMLX(w, s.rows, s.cols, bits, g)
		w = nil
		bytes := len(wq)*4 + 2*2*len(sc) // scales and biases are bf16 on disk
		for _, n := range benchN {
			x := randSlice(r, n*s.cols, 1)
			out := make([]float32, n*s.rows)
			b.Run(fmt.Sprintf("%s/n=%d", s.name, n), func(b *testing.B) {
				for b.Loop() {
					MatMulMLX(out, x, n, wq, sc, bi, s.rows, s.cols, bits, g)
				}
				reportWeights(b, bytes)
			})
		}
	}
}

func BenchmarkMatMulMLX4(b *testing.B) { benchMLX(b, 4) }
func BenchmarkMatMulMLX8(b *testing.B) { benchMLX(b, 8) }
func BenchmarkMatMulMLX3(b *testing.B) { benchMLX(b, 3) }
func BenchmarkMatMulMLX6(b *testing.B) { benchMLX(b, 6) }

func BenchmarkMatMulBF16(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, s := range benchShapes[:6] {
		w := toHalf(randSlice(r, s.rows*s.cols, 1), quant.F32ToBF16)
		for _, n := range benchN {
			x := randSlice(r, n*s.cols, 1)
			out := make([]float32, n*s.rows)
			b.Run(fmt.Sprintf("%s/n=%d", s.name, n), func(b *testing.B) {
				for b.Loop() {
					MatMulBF16(out, x, n, w, s.rows, s.cols)
				}
				reportWeights(b, 2*len(w))
			})
		}
	}
}

func BenchmarkMatMulF32(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, s := range benchShapes[:6] {
		w := randSlice(r, s.rows*s.cols, 1)
		for _, n := range benchN {
			x := randSlice(r, n*s.cols, 1)
			out := make([]float32, n*s.rows)
			b.Run(fmt.Sprintf("%s/n=%d", s.name, n), func(b *testing.B) {
				for b.Loop() {
					MatMulF32(out, x, n, w, s.rows, s.cols)
				}
				reportWeights(b, 4*len(w))
			})
		}
	}
}

// BenchmarkAttention measures one decode step (nq=1) and a prefill chunk
// against a cache of ctx positions, Qwen2.5-0.5B head layout.
func BenchmarkAttention(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	const heads, kvHeads, hd = 14, 2, 64
	for _, tc := range []struct{ nq, ctx int }{{1, 512}, {1, 4096}, {64, 512}, {64, 4096}} {
		q := randSlice(r, tc.nq*heads*hd, 1)
		k := randSlice(r, tc.ctx*kvHeads*hd, 1)
		v := randSlice(r, tc.ctx*kvHeads*hd, 1)
		out := make([]float32, len(q))
		b.Run(fmt.Sprintf("nq=%d/ctx=%d", tc.nq, tc.ctx), func(b *testing.B) {
			c0 := cpuTime()
			for b.Loop() {
				Attention(out, q, tc.nq, tc.ctx-tc.nq, k, v, tc.ctx, heads, kvHeads, hd, 0.125, 0, 0)
			}
			reportCPU(b, c0)
			reportWeights(b, 2*4*len(k))
		})
		kh, vh := toF16(k), toF16(v)
		b.Run(fmt.Sprintf("f16/nq=%d/ctx=%d", tc.nq, tc.ctx), func(b *testing.B) {
			c0 := cpuTime()
			for b.Loop() {
				AttentionF16(out, q, tc.nq, tc.ctx-tc.nq, kh, vh, tc.ctx, heads, kvHeads, hd, 0.125, 0, 0)
			}
			reportCPU(b, c0)
			reportWeights(b, 2*2*len(k))
		})
		kq, vq := toQ8(k), toQ8(v)
		b.Run(fmt.Sprintf("q8_0/nq=%d/ctx=%d", tc.nq, tc.ctx), func(b *testing.B) {
			c0 := cpuTime()
			for b.Loop() {
				AttentionQ8(out, q, tc.nq, tc.ctx-tc.nq, kq, vq, tc.ctx, heads, kvHeads, hd, 0.125, 0, 0)
			}
			reportCPU(b, c0)
			reportWeights(b, len(kq)+len(vq))
		})
	}
}

// BenchmarkAttentionDepth measures the attention of one decode step of a
// Qwen2.5-0.5B-shaped model at depth 4096: its 24 layers' caches in turn,
// 50 MB in half precision and 26 MB in q8_0, so the cache streams from
// memory as in a real decode rather than staying in the CPU's caches.
func BenchmarkAttentionDepth(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 6))
	const heads, kvHeads, hd, layers, ctx = 14, 2, 64, 24, 4096
	q := randSlice(r, heads*hd, 1)
	out := make([]float32, len(q))
	kh, vh := make([][]uint16, layers), make([][]uint16, layers)
	kq, vq := make([][]byte, layers), make([][]byte, layers)
	for l := range layers {
		k, v := randSlice(r, ctx*kvHeads*hd, 1), randSlice(r, ctx*kvHeads*hd, 1)
		kh[l], vh[l], kq[l], vq[l] = toF16(k), toF16(v), toQ8(k), toQ8(v)
	}
	b.Run("f16", func(b *testing.B) {
		c0 := cpuTime()
		for b.Loop() {
			for l := range layers {
				AttentionF16(out, q, 1, ctx-1, kh[l], vh[l], ctx, heads, kvHeads, hd, 0.125, 0, 0)
			}
		}
		reportCPU(b, c0)
		reportWeights(b, layers*2*2*len(kh[0]))
	})
	b.Run("q8_0", func(b *testing.B) {
		c0 := cpuTime()
		for b.Loop() {
			for l := range layers {
				AttentionQ8(out, q, 1, ctx-1, kq[l], vq[l], ctx, heads, kvHeads, hd, 0.125, 0, 0)
			}
		}
		reportCPU(b, c0)
		reportWeights(b, layers*2*len(kq[0]))
	})
}

func BenchmarkSiLUMul(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	g, u := randSlice(r, 8192, 4), randSlice(r, 8192, 1)
	for b.Loop() {
		SiLUMul(g, u)
	}
}

func BenchmarkSoftmaxVocab(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 6))
	x := randSlice(r, 151936, 10)
	for b.Loop() {
		Softmax(x)
	}
}

func benchGGUF(b *testing.B, blockBytes int, mm func(out, x []float32, n int, w []byte, rows, cols int)) {
	r := rand.New(rand.NewPCG(7, 7))
	defer SetInt8Activations(SetInt8Activations(*benchInt8))
	for _, s := range benchShapes[:6] {
		w := randGGUF(r, s.rows, s.cols, blockBytes)
		for _, n := range benchN {
			x := randSlice(r, n*s.cols, 1)
			out := make([]float32, n*s.rows)
			b.Run(fmt.Sprintf("%s/n=%d", s.name, n), func(b *testing.B) {
				for b.Loop() {
					mm(out, x, n, w, s.rows, s.cols)
				}
				reportWeights(b, len(w))
			})
		}
	}
}

func BenchmarkMatMulQ8_0(b *testing.B) { benchGGUF(b, quant.Q8_0BlockBytes, ggufMM(quant.GGMLQ8_0)) }
func BenchmarkMatMulQ4_0(b *testing.B) { benchGGUF(b, quant.Q4_0BlockBytes, ggufMM(quant.GGMLQ4_0)) }
func BenchmarkMatMulQ5_0(b *testing.B) { benchGGUF(b, quant.Q5_0BlockBytes, ggufMM(quant.GGMLQ5_0)) }

func benchK(b *testing.B, blockBytes int, dOffsets []int, mm func(out, x []float32, n int, w []byte, rows, cols int)) {
	r := rand.New(rand.NewPCG(8, 8))
	for _, s := range benchShapes[:6] {
		if s.cols%quant.QK_K != 0 {
			continue // such rows get a 32-element type in real files
		}
		w := randK(r, s.rows, s.cols, blockBytes, dOffsets...)
		for _, n := range benchN {
			x := randSlice(r, n*s.cols, 1)
			out := make([]float32, n*s.rows)
			b.Run(fmt.Sprintf("%s/n=%d", s.name, n), func(b *testing.B) {
				for b.Loop() {
					mm(out, x, n, w, s.rows, s.cols)
				}
				reportWeights(b, len(w))
			})
		}
	}
}

func BenchmarkMatMulQ4_K(b *testing.B) {
	benchK(b, quant.Q4_KBlockBytes, []int{0, 2}, ggufMM(quant.GGMLQ4_K))
}
func BenchmarkMatMulQ6_K(b *testing.B) {
	benchK(b, quant.Q6_KBlockBytes, []int{208}, ggufMM(quant.GGMLQ6_K))
}

// BenchmarkMatMulGGUFMore covers the rarer block types on one shape.
func BenchmarkMatMulGGUFMore(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	const rows, cols = 2048, 2048
	for _, f := range ggufFormats {
		w := f.random(r, rows, cols)
		for _, n := range []int{1, 4, 16} {
			x := randSlice(r, n*cols, 1)
			out := make([]float32, n*rows)
			b.Run(fmt.Sprintf("%s/n=%d", f.name, n), func(b *testing.B) {
				for b.Loop() {
					f.mm(out, x, n, w, rows, cols)
				}
				reportWeights(b, len(w))
			})
		}
	}
}

func benchPacked(b *testing.B, blockBytes int, pack func([]byte, int, int) *Packed) {
	benchPackedOf(b, 32, func(r *rand.Rand, rows, cols int) []byte { return randGGUF(r, rows, cols, blockBytes) }, pack)
}

// benchPackedOf runs a packed kernel on the shapes that tile its blocks of
// elems (a K-quant super-block or a 32-block).
func benchPackedOf(b *testing.B, elems int, random func(r *rand.Rand, rows, cols int) []byte, pack func([]byte, int, int) *Packed) {
	r := rand.New(rand.NewPCG(7, 7))
	defer SetInt8Activations(SetInt8Activations(true))
	for _, s := range benchShapes {
		if s.cols%elems != 0 {
			continue
		}
		pk := pack(random(r, s.rows, s.cols), s.rows, s.cols)
		if pk == nil {
			b.Skip("no packed kernels on this CPU")
		}
		for _, n := range benchN {
			x := randSlice(r, n*s.cols, 1)
			out := make([]float32, n*s.rows)
			// Every packed variant of the CPU in turn, interleaved per shape.
			for _, v := range packedBenchVariants() {
				name := fmt.Sprintf("%s/n=%d", s.name, n)
				if v.name != "" {
					name += "/" + v.name
				}
				restore := v.use()
				b.Run(name, func(b *testing.B) {
					for b.Loop() {
						pk.MatMul(out, x, n)
					}
					reportWeights(b, pk.Bytes())
				})
				restore()
			}
		}
	}
}

func BenchmarkPackedQ8_0(b *testing.B) { benchPacked(b, quant.Q8_0BlockBytes, PackQ8_0) }
func BenchmarkPackedQ4_0(b *testing.B) { benchPacked(b, quant.Q4_0BlockBytes, PackQ4_0) }
func BenchmarkPackedQ5_0(b *testing.B) {
	benchPackedOf(b, 32, func(r *rand.Rand, rows, cols int) []byte {
		return randBlocks(r, rows, cols, 32, quant.Q5_0BlockBytes, 0)
	}, PackQ5_0)
}
func BenchmarkPackedQ4_K(b *testing.B) {
	benchPackedOf(b, quant.QK_K, func(r *rand.Rand, rows, cols int) []byte { return randK(r, rows, cols, quant.Q4_KBlockBytes, 0, 2) }, PackQ4_K)
}
func BenchmarkPackedQ6_K(b *testing.B) {
	benchPackedOf(b, quant.QK_K, func(r *rand.Rand, rows, cols int) []byte { return randK(r, rows, cols, quant.Q6_KBlockBytes, 208) }, PackQ6_K)
}

// benchVariant is a dispatch setting a benchmark runs under.
type benchVariant struct {
	name string
	use  func() (restore func())
}

// packedBenchVariants lists the packed kernel variants to measure: the
// current one alone unless levels_cgo_test.go knows the CPU's others.
var packedBenchVariants = func() []benchVariant {
	return []benchVariant{{"", func() func() { return func() {} }}}
}
