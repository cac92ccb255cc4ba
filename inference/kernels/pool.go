package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// rangeJob is one parallel operation split into index ranges. run is called
// with the id of the worker (0 is the caller) and a half-open range.
type rangeJob interface {
	run(worker, lo, hi int)
}

// pool is a persistent set of worker goroutines. One operation runs at a
// time: every kernel already uses all workers, so concurrent callers queue on
// mu rather than oversubscribing the cores. Work is handed out in chunks
// from an atomic counter, so a worker that is descheduled (the cores are
// shared) does not hold the others up.
type pool struct {
	mu      sync.Mutex
	workers int           // including the caller
	wake    []*workerSlot // one per background worker
	d       dispatch      // the operation in flight, guarded by mu
	scratch [][]float32   // per-worker scratch, guarded by mu
	xbuf    []float32     // rearranged activations (prepMatMul), guarded by mu
	qbuf    []int8        // int8 activations (prepMatMul), guarded by mu
	dbuf    []float32     // their block scales, guarded by mu
	sbuf    []int32       // their block sums, guarded by mu
	dvbuf   []float32     // their per-lane pair scales, guarded by mu
	cvbuf   []int32       // their per-lane offset corrections, guarded by mu
	ebuf    []float32     // packed MLX group sums (prepPacked), guarded by mu
	abuf    []float32     // attention's partial results (runAttention), guarded by mu
	jobs    struct {
		mm    matMulJob
		at    attnJob
		bidir bidirJob
	} // reused job records, guarded by mu
}

type dispatch struct {
	job     rangeJob
	next    atomic.Int64
	total   int
	grain   int
	pending atomic.Int32 // helpers still draining
	wg      sync.WaitGroup
}

// workerSlot hands operations to one background worker. Between the
// operations of a forward pass (microseconds apart) the worker spins on seq
// instead of sleeping, since a futex wake-up costs about as much as a small
// matmul; after spinIters idle checks it parks on c.
type workerSlot struct {
	seq    atomic.Uint64 // operations handed out
	parked atomic.Bool
	c      chan struct{} // a wake-up token for a parked worker
	d      *dispatch
	quit   atomic.Bool
}

// spinIters bounds the busy wait of an idle worker and of a caller waiting
// for its helpers (about 50-100µs of atomic loads).
const spinIters = 1 << 16

var thePool = newPool(runtime.NumCPU())

func newPool(n int) *pool {
	p := &pool{}
	p.resize(n)
	return p
}

// resize replaces the background workers; the caller holds mu or owns p.
func (p *pool) resize(n int) {
	n = max(n, 1)
	for _, w := range p.wake {
		w.quit.Store(true)
		w.seq.Add(1)
		select {
		case w.c <- struct{}{}:
		default:
		}
	}
	p.wake = p.wake[:0]
	for i := 1; i < n; i++ {
		w := &workerSlot{c: make(chan struct{}, 1), d: &p.d}
		p.wake = append(p.wake, w)
		go w.run(i)
	}
	p.workers = n
	for len(p.scratch) < n {
		p.scratch = append(p.scratch, nil)
	}
}

func (w *workerSlot) run(id int) {
	var done uint64
	for {
		if !w.await(done) {
			continue
		}
		if w.quit.Load() {
			return
		}
		done++
		w.d.drain(id)
		w.d.pending.Add(-1)
		w.d.wg.Done()
	}
}

// await reports whether an operation beyond done was handed out, spinning
// first and then parking until a token arrives (a spurious token makes it
// report false, and the caller asks again).
func (w *workerSlot) await(done uint64) bool {
	for i := 0; i < spinIters; i++ {
		if w.seq.Load() != done {
			return true
		}
	}
	// A swap, not a store: parking is a store-then-load handshake with
	// parallel's add-then-load, correct only if neither side's load can pass
	// its own write. Go promises that for plain atomics, but qemu-user's
	// arm64 emulation on x86 lets a store-release pass a later load-acquire,
	// which lost wake-ups there; a read-modify-write is a full barrier on
	// every host and costs nothing measurable on this slow path.
	w.parked.Swap(true)
	if w.seq.Load() != done {
		w.parked.Store(false)
		return true
	}
	<-w.c
	w.parked.Store(false)
	return w.seq.Load() != done
}

func (d *dispatch) drain(id int) {
	for {
		lo := int(d.next.Add(int64(d.grain))) - d.grain
		if lo >= d.total {
			return
		}
		d.job.run(id, lo, min(lo+d.grain, d.total))
	}
}

// parallel runs job over [0,total) in chunks of grain; the caller holds mu.
func (p *pool) parallel(job rangeJob, total, grain int) {
	if total <= 0 {
		return
	}
	grain = max(grain, 1)
	chunks := (total + grain - 1) / grain
	helpers := min(len(p.wake), chunks-1)
	if helpers <= 0 {
		job.run(0, 0, total)
		return
	}
	d := &p.d
	d.job, d.total, d.grain = job, total, grain
	d.next.Store(0)
	d.wg.Add(helpers)
	d.pending.Store(int32(helpers))
	for _, w := range p.wake[:helpers] {
		w.seq.Add(1)
		if w.parked.Load() {
			select {
			case w.c <- struct{}{}:
			default:
			}
		}
	}
	d.drain(0)
	for i := 0; i < spinIters && d.pending.Load() > 0; i++ {
	}
	d.wg.Wait()
	d.job = nil
}

// grainFor splits total items into about four chunks per worker, each a
// multiple of align, so that uneven progress balances out.
func (p *pool) grainFor(total, align int) int {
	g := (total + 4*p.workers - 1) / (4 * p.workers)
	g = (g + align - 1) / align * align
	return max(g, align)
}

// scratchFor returns worker w's scratch buffer with at least n elements.
func (p *pool) scratchFor(w, n int) []float32 {
	if cap(p.scratch[w]) < n {
		p.scratch[w] = make([]float32, n)
	}
	return p.scratch[w][:n]
}

// SetThreads sets the number of threads (the caller plus background
// workers) used by the matrix and attention kernels; n < 1 means 1.
func SetThreads(n int) {
	thePool.mu.Lock()
	defer thePool.mu.Unlock()
	thePool.resize(n)
}

// Threads reports the number of threads the kernels use.
func Threads() int {
	thePool.mu.Lock()
	defer thePool.mu.Unlock()
	return thePool.workers
}
