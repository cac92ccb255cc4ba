package catalog

import (
	"runtime"
	"sync"
	"time"
)

// Bandwidth is a measured memory copy rate.
type Bandwidth struct {
	BytesPerSecond float64
	Threads        int
	Measured       time.Time
}

var (
	bwOnce sync.Once
	bw     Bandwidth
)

// MemoryBandwidth measures, once per process, how fast all cores together
// stream memory: each core copies its own buffer far larger than the caches,
// and bytes read plus written per second are counted. Decoding a token reads
// every weight once, so this bounds tokens per second from above.
func MemoryBandwidth() Bandwidth {
	bwOnce.Do(func() {
		threads := runtime.GOMAXPROCS(0)
		// 128 MiB copied per round in all, at least 8 MiB per thread: beyond
		// the last-level cache of most machines, without a big allocation.
		bw = measureBandwidth(threads, max(8<<20, (128<<20)/threads), 3)
	})
	return bw
}

// measureBandwidth runs rounds of parallel copies of size bytes per thread and
// keeps the fastest round.
func measureBandwidth(threads, size, rounds int) Bandwidth {
	if threads < 1 {
		threads = 1
	}
	src := make([][]byte, threads)
	dst := make([][]byte, threads)
	for i := range src {
		src[i] = make([]byte, size)
		dst[i] = make([]byte, size)
		for j := 0; j < size; j += 4096 { // touch every page before timing
			src[i][j] = byte(j)
			dst[i][j] = 0
		}
	}
	best := 0.0
	for range rounds {
		var wg sync.WaitGroup
		start := time.Now()
		for i := range threads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				copy(dst[i], src[i])
			}()
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		if el <= 0 {
			continue
		}
		if rate := float64(2*size*threads) / el; rate > best {
			best = rate
		}
	}
	return Bandwidth{BytesPerSecond: best, Threads: threads, Measured: time.Now()}
}

// Estimate is a decoding speed derived from bandwidth, never measured.
type Estimate struct {
	TokensPerSecond   float64  `json:"tokens_per_second"`
	BandwidthGBPerSec float64  `json:"memory_bandwidth_gb_per_s"`
	BytesPerToken     int64    `json:"bytes_per_token"`
	IsEstimate        bool     `json:"is_estimate"`
	Method            string   `json:"method"`
	TokensPerSecondM1 *float64 `json:"tokens_per_second_m1"`
	TokensPerSecondM2 *float64 `json:"tokens_per_second_m2"`
	TokensPerSecondM3 *float64 `json:"tokens_per_second_m3"`
}

// EstimateSpeed bounds decode speed for a dense model whose weights total
// bytesPerToken: every token streams all of them once. The Apple-chip keys of
// the seed stay null: this engine runs on the CPU of this machine.
func EstimateSpeed(b Bandwidth, bytesPerToken int64) Estimate {
	e := Estimate{
		BandwidthGBPerSec: round(b.BytesPerSecond/1e9, 1),
		BytesPerToken:     bytesPerToken,
		IsEstimate:        true,
		Method:            "estimate: measured memory copy bandwidth of this machine divided by the weight bytes read per token (an upper bound; real speed is lower)",
	}
	if bytesPerToken > 0 && b.BytesPerSecond > 0 {
		e.TokensPerSecond = round(b.BytesPerSecond/float64(bytesPerToken), 1)
	}
	return e
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}
