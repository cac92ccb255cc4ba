//go:build cgo

// Int8-activation kernels for GGUF Q8_0 and Q4_0 on AVX-512 VNNI. Each
// activation row is quantized once per call to int8 per 32-element block
// (scale max|x|/127, round to nearest even), independently of every other
// row, and each weight block is then dotted in integers with vpdpbusd. The
// per-(row, output) sequence of operations is the same for every n, chunk
// and thread count, so the results stay batch-invariant.
#include "kernels_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

int k_has_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")

void k_quant_act_i8(int8_t *q, float *d, int32_t *s, const float *x, int n, int cols) {
    const int nb = cols / 32;
    for (int b = 0; b < n; b++) {
        for (int k = 0; k < nb; k++) {
            const float *p = x + (size_t)b * cols + (size_t)k * 32;
            const __m512 a0 = _mm512_loadu_ps(p), a1 = _mm512_loadu_ps(p + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a0), _mm512_abs_ps(a1)));
            const float id = amax > 0 ? 127.0f / amax : 0.0f;
            const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(a0, _mm512_set1_ps(id)));
            const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(a1, _mm512_set1_ps(id)));
            int8_t *qp = q + (size_t)b * cols + (size_t)k * 32;
            _mm_storeu_si128((__m128i *)qp, _mm512_cvtsepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(qp + 16), _mm512_cvtsepi32_epi8(i1));
            d[(size_t)b * nb + k] = amax / 127.0f;
            s[(size_t)b * nb + k] = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        }
    }
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One weight block against NB activation rows; acc is the accumulator pair
// chosen by the block's parity, so every row sees the same order of sums.
#define BLOCK_BODY(NB, ACC)                                                                                 \
    do {                                                                                                    \
        uint16_t h;                                                                                         \
        memcpy(&h, blk, 2);                                                                                 \
        const float dw = _cvtsh_ss(h);                                                                      \
        if (q8) {                                                                                           \
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(blk + 2));                              \
            const __m256i aw = _mm256_abs_epi8(wv);                                                         \
            for (int bb = 0; bb < NB; bb++) {                                                               \
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + (size_t)bb * cols + k * 32)); \
                const __m256i di = _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw, _mm256_sign_epi8(xv, wv)); \
                ACC[bb] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(di), _mm256_set1_ps(dw * xd[(size_t)bb * nb + k]), \
                                          ACC[bb]);                                                         \
            }                                                                                               \
        } else {                                                                                            \
            const __m128i r = _mm_loadu_si128((const __m128i *)(blk + 2));                                  \
            const __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(r, 4), r), m4);              \
            for (int bb = 0; bb < NB; bb++) {                                                               \
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + (size_t)bb * cols + k * 32)); \
                const __m256i c = _mm256_zextsi128_si256(_mm_cvtsi32_si128(-8 * xs[(size_t)bb * nb + k])); \
                const __m256i di = _mm256_dpbusd_epi32(c, u, xv);                                           \
                ACC[bb] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(di), _mm256_set1_ps(dw * xd[(size_t)bb * nb + k]), \
                                          ACC[bb]);                                                         \
            }                                                                                               \
        }                                                                                                   \
    } while (0)

static inline __attribute__((always_inline)) void rows_i8(float *out, const int8_t *xq, const float *xd,
                                                          const int32_t *xs, const int NB, const uint8_t *w,
                                                          int q8, int rows, int cols, int lo, int hi) {
    const int nb = cols / 32;
    const size_t bs = q8 ? 34 : 18, rb = (size_t)nb * bs;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int o = lo; o < hi; o++) {
        const uint8_t *wr = w + (size_t)o * rb;
        __m256 a0[4], a1[4];
        for (int bb = 0; bb < NB; bb++) a0[bb] = a1[bb] = _mm256_setzero_ps();
        int k = 0;
        for (; k + 2 <= nb; k += 2) {
            const uint8_t *blk = wr + (size_t)k * bs;
            BLOCK_BODY(NB, a0);
            k++;
            blk += bs;
            BLOCK_BODY(NB, a1);
            k--;
        }
        for (; k < nb; k++) {
            const uint8_t *blk = wr + (size_t)k * bs;
            BLOCK_BODY(NB, a0);
        }
        for (int bb = 0; bb < NB; bb++) out[(size_t)bb * rows + o] = hsum8(_mm256_add_ps(a0[bb], a1[bb]));
    }
}

void k_matmul_gguf_i8(float *out, const int8_t *xq, const float *xd, const int32_t *xs, int n, const uint8_t *w,
                      int type, int rows, int cols, int lo, int hi) {
    const int q8 = type == 8, nb = cols / 32;
    for (int b0 = 0; b0 < n; b0 += 4) {
        float *o = out + (size_t)b0 * rows;
        const int8_t *q = xq + (size_t)b0 * cols;
        const float *d = xd + (size_t)b0 * nb;
        const int32_t *s = xs + (size_t)b0 * nb;
        switch (n - b0 < 4 ? n - b0 : 4) {
        case 1: rows_i8(o, q, d, s, 1, w, q8, rows, cols, lo, hi); break;
        case 2: rows_i8(o, q, d, s, 2, w, q8, rows, cols, lo, hi); break;
        case 3: rows_i8(o, q, d, s, 3, w, q8, rows, cols, lo, hi); break;
        default: rows_i8(o, q, d, s, 4, w, q8, rows, cols, lo, hi); break;
        }
    }
}

#pragma GCC pop_options

#else

int k_has_vnni(void) { return 0; }
void k_quant_act_i8(int8_t *q, float *d, int32_t *s, const float *x, int n, int cols) {
    (void)q, (void)d, (void)s, (void)x, (void)n, (void)cols;
}
void k_matmul_gguf_i8(float *out, const int8_t *xq, const float *xd, const int32_t *xs, int n, const uint8_t *w,
                      int type, int rows, int cols, int lo, int hi) {
    (void)out, (void)xq, (void)xd, (void)xs, (void)n, (void)w, (void)type, (void)rows, (void)cols, (void)lo, (void)hi;
}

#endif
