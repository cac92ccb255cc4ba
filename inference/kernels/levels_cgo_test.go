//go:build cgo

package kernels

import "testing"

// TestLevels reruns the kernel tests at every dispatch level this CPU
// supports, so the scalar C path and each SIMD path are checked here, not
// only the one picked at start-up.
func TestLevels(t *testing.T) {
	best := bestLevel()
	defer setLevel(best)
	levels := []int{0}
	switch best {
	case 1:
		levels = append(levels, 1)
	case 2:
		levels = append(levels, 1, 2)
	case 3:
		levels = append(levels, 3)
	}
	for _, l := range levels {
		if got := setLevel(l); got != l {
			t.Fatalf("setLevel(%d) = %d", l, got)
		}
		t.Run(levelNames[l], func(t *testing.T) {
			t.Logf("Features() = %q", Features())
			t.Run("MatMulKnown", TestMatMulKnown)
			t.Run("MatMulRandom", TestMatMulRandom)
			t.Run("ThreadCounts", TestThreadCounts)
			t.Run("AttentionKnown", TestAttentionKnown)
			t.Run("AttentionRandom", TestAttentionRandom)
			t.Run("RMSNorm", TestRMSNorm)
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
			t.Run("BatchInvarianceAttention", TestBatchInvarianceAttention)
			t.Run("BatchInvarianceRows", TestBatchInvarianceRows)
		})
	}
}
