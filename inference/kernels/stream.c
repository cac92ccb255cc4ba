//go:build cgo

// The memory read probe behind impetus bench's bandwidth ceiling: the
// widest loads of the current level, optionally with the sparse far
// prefetch the packed decode kernels use on AMD (k_pk_prefetch_plan), so
// the ceiling is what this machine's cores can actually stream.
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static uint64_t stream_avx512(const uint8_t *p, size_t n, int sparse) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        if (sparse && (i & 2047) == 0) _mm_prefetch((const char *)p + i + 16384, _MM_HINT_T0);
        a0 = _mm512_xor_si512(a0, _mm512_loadu_si512((const void *)(p + i)));
        a1 = _mm512_xor_si512(a1, _mm512_loadu_si512((const void *)(p + i + 64)));
        a2 = _mm512_xor_si512(a2, _mm512_loadu_si512((const void *)(p + i + 128)));
        a3 = _mm512_xor_si512(a3, _mm512_loadu_si512((const void *)(p + i + 192)));
    }
    a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    uint64_t lanes[8], s = 0;
    _mm512_storeu_si512((void *)lanes, a0);
    for (int j = 0; j < 8; j++) s ^= lanes[j];
    for (; i < n; i++) s += p[i];
    return s;
}

__attribute__((target("avx2"))) static uint64_t stream_avx2(const uint8_t *p, size_t n, int sparse) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        if (sparse && (i & 2047) == 0) _mm_prefetch((const char *)p + i + 16384, _MM_HINT_T0);
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t lanes[4], s = 0;
    _mm256_storeu_si256((__m256i *)lanes, a0);
    for (int j = 0; j < 4; j++) s ^= lanes[j];
    for (; i < n; i++) s += p[i];
    return s;
}
#endif

// stream_words is the portable loop: eight independent 64-bit sums, which
// compilers turn into the target's vector loads (NEON on ARM64).
static uint64_t stream_words(const uint8_t *p, size_t n) {
    const uint64_t *w = (const uint64_t *)p;
    const size_t m = n / 8;
    uint64_t s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int j = 0; j < 8; j++) s[j] += w[i + j];
    uint64_t t = 0;
    for (int j = 0; j < 8; j++) t += s[j];
    for (i *= 8; i < n; i++) t += p[i];
    return t;
}

uint64_t k_read_stream(const uint8_t *p, size_t n, int sparse) {
#if defined(__x86_64__)
    switch (k_level()) {
    case K_AVX512:
        return stream_avx512(p, n, sparse);
    case K_AVX2:
        return stream_avx2(p, n, sparse);
    }
#endif
    (void)sparse;
    return stream_words(p, n);
}
