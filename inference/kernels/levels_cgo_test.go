//go:build cgo

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// levelVariant is one dispatch level, and for AVX2 whether its packed
// kernels may use AVX-VNNI.
type levelVariant struct {
	level   int
	avxVNNI bool
}

func (v levelVariant) String() string {
	if v.level == 1 && hasAVXVNNI() {
		if v.avxVNNI {
			return "avx2+avx-vnni"
		}
		return "avx2-no-vnni"
	}
	return levelNames[v.level]
}

// levelVariants lists every level this CPU runs, AVX2 with and without
// AVX-VNNI where the CPU has it.
func levelVariants() []levelVariant {
	vs := []levelVariant{{0, true}}
	switch bestLevel() {
	case 1, 2:
		vs = append(vs, levelVariant{1, true})
		if hasAVXVNNI() {
			vs = append(vs, levelVariant{1, false})
		}
		if bestLevel() == 2 {
			vs = append(vs, levelVariant{2, true})
		}
	case 3:
		vs = append(vs, levelVariant{3, true})
	}
	return vs
}

// use switches to v and returns a function restoring the start-up level.
func (v levelVariant) use(t *testing.T) func() {
	best := bestLevel()
	if got := setLevel(v.level); got != v.level {
		t.Fatalf("setLevel(%d) = %d", v.level, got)
	}
	prev := setAVXVNNI(v.avxVNNI)
	return func() {
		setAVXVNNI(prev)
		setLevel(best)
	}
}

// TestLevels reruns the kernel tests at every dispatch level this CPU
// supports, so the scalar C path and each SIMD path are checked here, not
// only the one picked at start-up.
func TestLevels(t *testing.T) {
	for _, v := range levelVariants() {
		restore := v.use(t)
		t.Run(v.String(), func(t *testing.T) {
			t.Logf("Features() = %q", Features())
			t.Run("MatMulKnown", TestMatMulKnown)
			t.Run("MatMulRandom", TestMatMulRandom)
			t.Run("ThreadCounts", TestThreadCounts)
			t.Run("AttentionKnown", TestAttentionKnown)
			t.Run("AttentionRandom", TestAttentionRandom)
			t.Run("AttentionBidirectional", TestAttentionBidirectional)
			t.Run("AttentionQ8", TestAttentionQ8)
			t.Run("RMSNorm", TestRMSNorm)
			t.Run("LayerNorm", TestLayerNorm)
			t.Run("Softmax", TestSoftmax)
			t.Run("Activations", TestActivations)
			t.Run("RoPE", TestRoPE)
			t.Run("RealMLXWeights", TestRealMLXWeights)
			t.Run("GGUFAsMLX", TestGGUFAsMLX)
			t.Run("MatMulGGUFRandom", TestMatMulGGUFRandom)
			t.Run("Q4_KAsMLX", TestQ4_KAsMLX)
			t.Run("MatMulKRandom", TestMatMulKRandom)
			t.Run("MatMulGGUFFormats", TestMatMulGGUFFormats)
			t.Run("BatchInvariance", TestBatchInvariance)
			t.Run("MatMulFloatTiles", TestMatMulFloatTiles)
			t.Run("Panels", TestPanels)
			t.Run("BatchInvarianceAttention", TestBatchInvarianceAttention)
			t.Run("BatchInvarianceAttentionQ8", TestBatchInvarianceAttentionQ8)
			t.Run("BatchInvarianceRows", TestBatchInvarianceRows)
			t.Run("Packed", TestPacked)
			t.Run("PackedNaN", TestPackedNaN)
		})
		restore()
	}
}

// TestPackedLevelsAgree checks that the packed kernels of every x86 level
// (AVX-512 VNNI, AVX2 with AVX-VNNI, AVX2 with vpmaddubsw) give the same
// bits for the same packed weights, batch sizes and thread counts: they
// share the layout, the int8 activations and the order of float operations.
// TestPanelsLevelsAgree: every level, the scalar C path included, gives
// the panel product the same bits (one fused multiply-add chain per output,
// in the same order), on 1 and 2 threads, for n = 1, 6 and 9.
func TestPanelsLevelsAgree(t *testing.T) {
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(93, 94))
	for _, shape := range [][2]int{{16, 32}, {37, 96}, {64, 768}} {
		rows, cols := shape[0], shape[1]
		for _, c := range panelCases(r, rows, cols) {
			const n = 9
			x := randSlice(r, n*cols, 1)
			x[2*cols+3] = float32(math.Inf(1))
			var want []float32
			for _, v := range levelVariants() {
				restore := v.use(t)
				for _, threads := range []int{1, 2} {
					SetThreads(threads)
					for _, nb := range []int{1, 6, n} {
						got := make([]float32, nb*rows)
						c.p.MatMul(got, x, nb)
						if want == nil {
							want = make([]float32, n*rows)
							c.p.MatMul(want, x, n)
						}
						for i, g := range got {
							if math.Float32bits(g) != math.Float32bits(want[i]) && !(g != g && want[i] != want[i]) {
								restore()
								t.Fatalf("%s %dx%d at %v, n=%d, %d threads: output %d is %g, at %v %g",
									c.name, rows, cols, v, nb, threads, i, g, levelVariants()[0], want[i])
							}
						}
					}
				}
				restore()
			}
		}
	}
}

func TestPackedLevelsAgree(t *testing.T) {
	defer SetInt8MLX(SetInt8MLX(true))
	defer SetInt8Activations(SetInt8Activations(true))
	defer SetThreads(Threads())
	var vs []levelVariant
	for _, v := range levelVariants() {
		restore := v.use(t)
		if packedAvailable() {
			t.Logf("%v: packed kernels %s", v, packedVariant())
			vs = append(vs, v)
		}
		restore()
	}
	if len(vs) < 2 {
		t.Skipf("fewer than two levels with packed kernels on this CPU (%v)", vs)
	}
	r := rand.New(rand.NewPCG(81, 82))
	for _, shape := range [][2]int{{16, 32}, {48, 96}, {32, 256}, {64, 1024}, {16, 4864}} {
		rows, cols := shape[0], shape[1]
		for _, c := range packedCases(t, r, rows, cols) {
			const n = 9
			x := randSlice(r, n*cols, 1)
			clear(x[cols : cols+32])
			x[3*cols+5] = float32(math.NaN())
			var want []float32
			for _, v := range vs {
				restore := v.use(t)
				for _, threads := range []int{1, 2} {
					SetThreads(threads)
					for _, nb := range []int{1, 4, n} {
						got := make([]float32, nb*rows)
						c.pk.MatMul(got, x, nb)
						if want == nil {
							want = make([]float32, n*rows)
							c.pk.MatMul(want, x, n)
						}
						for i, g := range got {
							if math.Float32bits(g) != math.Float32bits(want[i]) && !(g != g && want[i] != want[i]) {
								restore()
								t.Fatalf("%s %dx%d at %v, n=%d, %d threads: output %d is %g, at %v %g",
									c.name, rows, cols, v, nb, threads, i, g, vs[0], want[i])
							}
						}
					}
				}
				restore()
			}
		}
	}
}

// TestSetLevel checks the level switch: every level this CPU runs can be
// set by name and read back, others fail with a clear error, and the
// packed kernels follow the level.
func TestSetLevel(t *testing.T) {
	start := LevelName()
	defer func() {
		if err := SetLevel(start); err != nil {
			t.Fatal(err)
		}
	}()
	for _, v := range levelVariants() {
		name := levelNames[v.level]
		if err := SetLevel(name); err != nil {
			t.Fatalf("SetLevel(%q): %v", name, err)
		}
		if got := LevelName(); got != name {
			t.Fatalf("after SetLevel(%q), LevelName() = %q", name, got)
		}
		if want := v.level != 0; packedAvailable() != want {
			t.Errorf("level %s: packed kernels %v, want %v", name, packedAvailable(), want)
		}
		if v.level == 1 && int8Available() {
			t.Errorf("level avx2 runs the AVX-512 int8 kernels")
		}
	}
	for _, bad := range []string{"", "AVX2", "sse4", "avx512 ", "gpu"} {
		err := SetLevel(bad)
		if err == nil || !strings.Contains(err.Error(), "unknown SIMD level") {
			t.Errorf("SetLevel(%q) = %v, want an unknown-level error", bad, err)
		}
	}
	for i, name := range levelNames {
		if levelSupported(i) {
			continue
		}
		err := SetLevel(name)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("cannot run SIMD level %q", name)) {
			t.Errorf("SetLevel(%q) on a CPU without it = %v", name, err)
		}
		if LevelName() == name {
			t.Errorf("SetLevel(%q) failed but the level changed", name)
		}
	}
}

// With IMPETUS_BENCH_LEVELS=1 the packed benchmarks run every packed
// variant of the CPU (BenchmarkPackedQ4_0/.../avx512 ...), interleaved;
// with IMPETUS_BENCH_PREFETCH=1 each in turn with dense and sparse
// prefetch (.../avx512/dense, .../avx512/sparse).
func init() {
	levels, prefetch := os.Getenv("IMPETUS_BENCH_LEVELS") == "1", os.Getenv("IMPETUS_BENCH_PREFETCH") == "1"
	if !levels && !prefetch {
		return
	}
	packedBenchVariants = func() []benchVariant {
		vs := []levelVariant{{bestLevel(), true}}
		if levels {
			vs = vs[:0]
			for _, v := range levelVariants() {
				if v.level != 0 {
					vs = append(vs, v)
				}
			}
		}
		type prefetchMode struct {
			name string
			mode int
		}
		modes := []prefetchMode{{"", pkPrefetchAuto}}
		if prefetch {
			modes = []prefetchMode{{"dense", pkPrefetchDense}, {"sparse", pkPrefetchSparse}}
		}
		var bs []benchVariant
		for _, v := range vs {
			for _, m := range modes {
				name := v.String()
				if m.name != "" {
					name += "/" + m.name
				}
				bs = append(bs, benchVariant{name, func() func() {
					best := bestLevel()
					setLevel(v.level)
					prev := setAVXVNNI(v.avxVNNI)
					pf := setPackedPrefetch(m.mode)
					return func() {
						setPackedPrefetch(pf)
						setAVXVNNI(prev)
						setLevel(best)
					}
				}})
			}
		}
		return bs
	}
}

// TestEnvLevel runs this test binary again with IMPETUS_SIMD set: a level
// the CPU runs is applied at start-up, a bad one is reported (stderr and
// EnvLevelError) and leaves the best level.
func TestEnvLevel(t *testing.T) {
	if v := os.Getenv("IMPETUS_TEST_ENV_LEVEL"); v != "" {
		err := EnvLevelError()
		fmt.Printf("level=%s err=%v\n", LevelName(), err)
		return
	}
	best := levelNames[bestLevel()]
	for _, c := range []struct{ env, level, err string }{
		{"scalar", "scalar", "<nil>"},
		{best, best, "<nil>"},
		{"avx3", best, `IMPETUS_SIMD="avx3": kernels: unknown SIMD level "avx3"`},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnvLevel$", "-test.count=1")
		cmd.Env = append(os.Environ(), "IMPETUS_SIMD="+c.env, "IMPETUS_TEST_ENV_LEVEL=1")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("IMPETUS_SIMD=%s: %v\n%s%s", c.env, err, stdout.String(), stderr.String())
		}
		want := "level=" + c.level + " err=" + c.err
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("IMPETUS_SIMD=%s: output %q, want %q", c.env, stdout.String(), want)
		}
		if c.err != "<nil>" && !strings.Contains(stderr.String(), "impetus: "+c.err) {
			t.Errorf("IMPETUS_SIMD=%s: stderr %q names no error", c.env, stderr.String())
		}
	}
}
