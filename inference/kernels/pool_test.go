package kernels

import (
	"sync/atomic"
	"testing"
	"time"
)

// countJob counts the items each run covers, so a lost or doubled chunk shows.
type countJob struct{ n atomic.Int64 }

func (j *countJob) run(_, lo, hi int) { j.n.Add(int64(hi - lo)) }

// TestPoolHandshake hands out many small operations with pauses between
// them, so the workers alternate between spinning and parking: a wake-up
// lost in that handshake hangs the test (caught by -test.timeout, with every
// goroutine's stack). It runs under qemu-user too (make test-arm64), where
// a plain store followed by a load is not ordered as the ARM architecture
// promises.
func TestPoolHandshake(t *testing.T) {
	iters := 3000
	if testing.Short() {
		iters = 600
	}
	for _, workers := range []int{2, 3, 5} {
		p := newPool(workers)
		var j countJob
		for i := range iters {
			p.mu.Lock()
			p.parallel(&j, 64, 1)
			if i%7 == 0 {
				p.resize(workers) // replaced workers must exit, new ones must start
			}
			p.mu.Unlock()
			if i%3 == 0 {
				time.Sleep(time.Duration(i%5) * 50 * time.Microsecond) // long enough to park
			}
		}
		if got, want := j.n.Load(), int64(64*iters); got != want {
			t.Fatalf("%d workers: items run %d, want %d", workers, got, want)
		}
		p.mu.Lock()
		p.resize(1)
		p.mu.Unlock()
	}
}
