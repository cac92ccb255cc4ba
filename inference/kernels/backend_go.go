//go:build !cgo

package kernels

import (
	"encoding/binary"
	"fmt"
)

// Without cgo every kernel runs the portable Go backend (impl_go.go).

func prepMatMul(p *pool, j *matMulJob) {}

// int8Available: the Go backend has no int8 path.
func int8Available() bool { return false }

// packedAvailable: the Go backend has no packed kernels.
func packedAvailable() bool { return false }

func setAVXVNNI(on bool) bool { return false }

// tileKernel: the Go backend has no tile kernel.
func tileKernel() bool { return false }

// The Go backend does not split attention over the cache (attnChunk 0)
// and its items are (query row, KV head) pairs (attnTile 1).
var attnChunk, attnTile = 0, 1

func attentionMerge(j *attnJob, scratch []float32) {}

func matMulRows(j *matMulJob, worker, lo, hi int)   { matMulRowsGo(j, worker, lo, hi) }
func attentionItems(j *attnJob, worker, lo, hi int) { attentionItemsGo(j, worker, lo, hi) }
func softmax(x []float32)                           { SoftmaxRef(x) }
func siluMul(gate, up []float32)                    { siluMulGo(gate, up) }
func geluMul(gate, up []float32)                    { geluMulGo(gate, up) }
func geluErf(x []float32)                           { GELUErfRef(x) }
func add(dst, src []float32)                        { addGo(dst, src) }
func rmsNorm(out, x, weight []float32, n, dim int, eps float32, addOne bool) {
	rmsNormGo(out, x, weight, n, dim, eps, addOne)
}
func layerNorm(out, x, add, weight, bias []float32, n, dim int, eps float32) {
	LayerNormRef(out, x, add, weight, bias, n, dim, eps)
}
func rope(x []float32, n, nHeads, headDim, rotDim int, positions []int32, invFreq []float32, neox bool, mscale float32) {
	ropeGo(x, n, nHeads, headDim, rotDim, positions, invFreq, neox, mscale)
}

func ropeTable(cos, sin []float32, npos, rotDim int, invFreq []float32, mscale float32) {
	ropeTableGo(cos, sin, npos, rotDim, invFreq, mscale)
}

func ropeApply(x []float32, n, nHeads, headDim, rotDim int, positions []int32, cos, sin []float32, neox bool) {
	ropeApplyGo(x, n, nHeads, headDim, rotDim, positions, cos, sin, neox)
}

// Features names the instruction set the kernels use.
func Features() string { return "go" }

// LevelName is "go": without cgo the kernels are plain Go.
func LevelName() string { return "go" }

// CheckLevel fails: without cgo there are no SIMD levels to choose.
func CheckLevel(name string) error { return SetLevel(name) }

// SetLevel fails: without cgo there are no SIMD levels to choose.
func SetLevel(name string) error {
	return fmt.Errorf("kernels: SIMD level %q: this build has no cgo, its kernels are plain Go", name)
}

// readStream is ReadStream in Go: eight independent sums keep the loads in
// flight; Go has no prefetch, so sparse is ignored.
func readStream(b []byte, sparse bool) uint64 {
	var s [8]uint64
	i := 0
	for ; i+64 <= len(b); i += 64 {
		q := b[i : i+64 : i+64]
		for j := range s {
			s[j] += binary.LittleEndian.Uint64(q[8*j:])
		}
	}
	t := s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7]
	for ; i < len(b); i++ {
		t += uint64(b[i])
	}
	return t
}

func (j *bidirJob) run(worker, lo, hi int) { attnBidirGo(j, worker, lo, hi) }
