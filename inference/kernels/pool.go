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
	workers int              // including the caller
	wake    []chan *dispatch // one per background worker
	d       dispatch         // the operation in flight, guarded by mu
	scratch [][]float32      // per-worker scratch, guarded by mu
	xbuf    []float32        // rearranged activations (prepMatMul), guarded by mu
	qbuf    []int8           // int8 activations (prepMatMul), guarded by mu
	dbuf    []float32        // their block scales, guarded by mu
	sbuf    []int32          // their block sums, guarded by mu
	dvbuf   []float32        // their per-lane pair scales, guarded by mu
	cvbuf   []int32          // their per-lane offset corrections, guarded by mu
	ebuf    []float32        // packed MLX group sums (prepPacked), guarded by mu
	jobs    struct {
		mm matMulJob
		at attnJob
	} // reused job records, guarded by mu
}

type dispatch struct {
	job   rangeJob
	next  atomic.Int64
	total int
	grain int
	wg    sync.WaitGroup
}

var thePool = newPool(runtime.NumCPU())

func newPool(n int) *pool {
	p := &pool{}
	p.resize(n)
	return p
}

// resize replaces the background workers; the caller holds mu or owns p.
func (p *pool) resize(n int) {
	n = max(n, 1)
	for _, c := range p.wake {
		close(c)
	}
	p.wake = p.wake[:0]
	for i := 1; i < n; i++ {
		c := make(chan *dispatch, 1)
		p.wake = append(p.wake, c)
		go worker(i, c)
	}
	p.workers = n
	for len(p.scratch) < n {
		p.scratch = append(p.scratch, nil)
	}
}

func worker(id int, c chan *dispatch) {
	for d := range c {
		d.drain(id)
		d.wg.Done()
	}
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
	for i := 0; i < helpers; i++ {
		p.wake[i] <- d
	}
	d.drain(0)
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
