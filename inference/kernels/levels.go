package kernels

import (
	"fmt"
	"os"
)

// startLevel is the level after start-up: IMPETUS_SIMD's where it applied,
// else the CPU's best (ResetLevel returns to it).
var startLevel string

// envLevelErr is why IMPETUS_SIMD was not applied at start-up, if it was not.
var envLevelErr error

func init() {
	if v := os.Getenv("IMPETUS_SIMD"); v != "" {
		if err := SetLevel(v); err != nil {
			envLevelErr = fmt.Errorf("IMPETUS_SIMD=%q: %w", v, err)
			fmt.Fprintf(os.Stderr, "impetus: %v; the kernels stay at %s\n", envLevelErr, LevelName())
		}
	}
	if os.Getenv("IMPETUS_AVX_VNNI") == "0" {
		setAVXVNNI(false)
	}
	startLevel = LevelName()
}

// ResetLevel returns the kernels to the start-up level (IMPETUS_SIMD's, else
// the CPU's best), so that a config that drops its simd option undoes it.
func ResetLevel() {
	if LevelName() != startLevel {
		_ = SetLevel(startLevel) // it ran at start-up, so it runs now
	}
}

// EnvLevelError reports an IMPETUS_SIMD value that could not be applied at
// start-up (unknown, or beyond this CPU), so that a server can refuse to
// start rather than run at a level nobody asked for; nil otherwise.
// IMPETUS_SIMD=scalar|avx2|avx512|neon holds the kernels at that level as
// SetLevel does; IMPETUS_AVX_VNNI=0 keeps the AVX2 packed kernels off
// AVX-VNNI, as on CPUs older than Alder Lake and Zen 5.
func EnvLevelError() error { return envLevelErr }
