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

void k_quant_act_i8(int8_t *q, float *d, int32_t *s, float *dv, int32_t *cv, const float *x, int n, int cols,
                    int type) {
    const int nb = cols / 32, q4 = type != 8;
    const int mlx = type == K_I8_MLX4;
    for (int b = 0; b < n; b++) {
        for (int k = 0; k < nb; k++) {
            const float *p = x + (size_t)b * cols + (size_t)k * 32;
            const __m512 a0 = _mm512_loadu_ps(p), a1 = _mm512_loadu_ps(p + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a0), _mm512_abs_ps(a1)));
            const float id = amax > 0 ? 127.0f / amax : 0.0f;
            const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(a0, _mm512_set1_ps(id)));
            const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(a1, _mm512_set1_ps(id)));
            int8_t *qp = q + (size_t)b * cols + (size_t)k * 32;
            // Q4_0 pairs of blocks interleave halves, [k lo, k+1 lo, k hi,
            // k+1 hi], to match the nibbles of two weight blocks in one
            // register; a last unpaired block keeps its order.
            int lo = 0, hi = 16;
            if (q4 && (k | 1) < nb) lo = (k & 1) ? -16 : 0, hi = lo + 32;
            if (type == K_I8_MLX4) {
                // MLX packs element pairs in a byte's low and high nibbles:
                // the even elements go first, then the odd ones.
                const __m512i perm = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                const __m512i perm1 = _mm512_add_epi32(perm, _mm512_set1_epi32(1));
                const __m512i ev = _mm512_permutex2var_epi32(i0, perm, i1), od = _mm512_permutex2var_epi32(i0, perm1, i1);
                _mm_storeu_si128((__m128i *)(qp + lo), _mm512_cvtsepi32_epi8(ev));
                _mm_storeu_si128((__m128i *)(qp + hi), _mm512_cvtsepi32_epi8(od));
            } else {
                _mm_storeu_si128((__m128i *)(qp + lo), _mm512_cvtsepi32_epi8(i0));
                _mm_storeu_si128((__m128i *)(qp + hi), _mm512_cvtsepi32_epi8(i1));
            }
            // A NaN in the block must reach the outputs, as in float.
            const int nan = (_mm512_cmp_ps_mask(a0, a0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(a1, a1, _CMP_UNORD_Q)) != 0;
            d[(size_t)b * nb + k] = nan ? NAN : amax / 127.0f;
            s[(size_t)b * nb + k] = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        }
        // Per 32-bit lane of each pair: the block scale, and minus the
        // weight offset (8 or 128) times the lane's four codes, so that
        // vpdpbusd on unsigned weight codes starts from the correction.
        const __m512i off = _mm512_set1_epi8(mlx ? 1 : q4 ? 8 : (char)0x80);
        for (int k = 0; k + 2 <= nb; k += 2) {
            const int8_t *qp = q + (size_t)b * cols + (size_t)k * 32;
            const __m512i c = _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, _mm512_loadu_si512(qp));
            const size_t at = ((size_t)b * nb + k) * 8;
            const float d0 = d[(size_t)b * nb + k], d1 = d[(size_t)b * nb + k + 1];
            const __m512 dd = q4 ? _mm512_setr_ps(d0, d0, d0, d0, d1, d1, d1, d1, d0, d0, d0, d0, d1, d1, d1, d1)
                                 : _mm512_setr_ps(d0, d0, d0, d0, d0, d0, d0, d0, d1, d1, d1, d1, d1, d1, d1, d1);
            _mm512_storeu_ps(dv + at, dd);
            if (mlx) // the scaled lane sums, for the MLX bias term
                _mm512_storeu_ps((float *)(cv + at), _mm512_mul_ps(dd, _mm512_cvtepi32_ps(c)));
            else
                _mm512_storeu_si512(cv + at, _mm512_sub_epi32(_mm512_setzero_si512(), c));
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

// R weight rows from o against NB activation rows: each activation load
// serves R rows, and every (row, activation row) pair sees the same
// sequence of operations whatever R and NB are.
static inline __attribute__((always_inline)) void rows_i8(float *out, const int8_t *xq, const float *xd,
                                                          const int32_t *xs, const float *xdv, const int32_t *xc,
                                                          const int R, const int NB, const uint8_t *w, int q8,
                                                          int rows, int cols, int o) {
    const int nb = cols / 32;
    const size_t bs = q8 ? 34 : 18, rb = (size_t)nb * bs;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m512i m4z = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8((char)0x80);
    const __m512i didx8 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i didx4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    __m512 z[4][4];
    for (int r = 0; r < R; r++)
        for (int bb = 0; bb < NB; bb++) z[r][bb] = _mm512_setzero_ps();
    int k = 0;
    // Two blocks per 512-bit register.
    for (; k + 2 <= nb; k += 2) {
        __m512i u[4];
        __m512 dw[4];
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + (size_t)(o + r) * rb + (size_t)k * bs;
            uint16_t h0, h1;
            memcpy(&h0, blk, 2);
            memcpy(&h1, blk + bs, 2);
            const __m128 dw2 = _mm_cvtph_ps(_mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1));
            dw[r] = _mm512_permutexvar_ps(q8 ? didx8 : didx4, _mm512_castps128_ps512(dw2));
            if (q8) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(blk + 2));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(blk + bs + 2));
                u[r] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1), flip);
            } else {
                const __m128i r0 = _mm_loadu_si128((const __m128i *)(blk + 2));
                const __m128i r1 = _mm_loadu_si128((const __m128i *)(blk + bs + 2));
                const __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(r0), r1, 1);
                u[r] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(y), _mm256_srli_epi16(y, 4), 1),
                                        m4z);
            }
        }
        for (int bb = 0; bb < NB; bb++) {
            const size_t at = ((size_t)bb * nb + k) * 8;
            const __m512i xv = _mm512_loadu_si512(xq + (size_t)bb * cols + (size_t)k * 32);
            const __m512i c = _mm512_loadu_si512(xc + at);
            const __m512 d = _mm512_loadu_ps(xdv + at);
            for (int r = 0; r < R; r++) {
                const __m512i di = _mm512_dpbusd_epi32(c, u[r], xv);
                z[r][bb] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(di), _mm512_mul_ps(dw[r], d), z[r][bb]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        __m256 a0[4];
        for (int bb = 0; bb < NB; bb++) a0[bb] = _mm256_setzero_ps();
        if (k < nb) { // a last unpaired block
            const uint8_t *blk = w + (size_t)(o + r) * rb + (size_t)k * bs;
            BLOCK_BODY(NB, a0);
        }
        for (int bb = 0; bb < NB; bb++)
            out[(size_t)bb * rows + o + r] = _mm512_reduce_add_ps(z[r][bb]) + hsum8(a0[bb]);
    }
}

#define ROWS_NB(R, NB) rows_i8(o, q, d, s, dv, c, R, NB, w, q8, rows, cols, r)
#define ROWS_R(R)                                      \
    switch (nbk) {                                     \
    case 1: ROWS_NB(R, 1); break;                      \
    case 2: ROWS_NB(R, 2); break;                      \
    case 3: ROWS_NB(R, 3); break;                      \
    default: ROWS_NB(R, 4); break;                     \
    }

void k_matmul_gguf_i8(float *out, const int8_t *xq, const float *xd, const int32_t *xs, const float *xdv,
                      const int32_t *xc, int n, const uint8_t *w, int type, int rows, int cols, int lo, int hi) {
    const int q8 = type == 8, nb = cols / 32;
    for (int b0 = 0; b0 < n; b0 += 4) {
        float *o = out + (size_t)b0 * rows;
        const int8_t *q = xq + (size_t)b0 * cols;
        const float *d = xd + (size_t)b0 * nb;
        const int32_t *s = xs + (size_t)b0 * nb;
        const float *dv = xdv + (size_t)b0 * nb * 8;
        const int32_t *c = xc + (size_t)b0 * nb * 8;
        const int nbk = n - b0 < 4 ? n - b0 : 4;
        int r = lo;
        for (; r + 4 <= hi; r += 4) ROWS_R(4)
        for (; r < hi; r++) ROWS_R(1)
    }
}

// MLX 4-bit rows: w = s*q + b per group, so a block adds
// s*dx*dot(q, xq) + b*dx*sum(xq); the pairs' lane sums come scaled (cv).
static inline __attribute__((always_inline)) void rows_mlx4(float *out, const int8_t *xq, const float *xd,
                                                            const int32_t *xs, const float *xdv, const float *xev,
                                                            const int R, const int NB, const uint32_t *wq,
                                                            const float *sc, const float *bi, int group, int rows,
                                                            int cols, int o) {
    const int nb = cols / 32, ng = cols / group;
    const size_t rw = (size_t)cols / 8;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m512i sidx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    __m512 z[4][4];
    for (int r = 0; r < R; r++)
        for (int bb = 0; bb < NB; bb++) z[r][bb] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 2 <= nb; k += 2) {
        __m512i u[4];
        __m512 sv[4], bv[4];
        for (int r = 0; r < R; r++) {
            const uint8_t *p = (const uint8_t *)(wq + (size_t)(o + r) * rw) + (size_t)k * 16;
            const __m256i y = _mm256_loadu_si256((const __m256i *)p);
            u[r] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(y, m4)),
                                      _mm256_and_si256(_mm256_srli_epi16(y, 4), m4), 1);
            const float *s = sc + (size_t)(o + r) * ng, *b = bi + (size_t)(o + r) * ng;
            const int g = k * 32 / group;
            if (group == 32) {
                sv[r] = _mm512_permutexvar_ps(sidx, _mm512_castps128_ps512(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(s + g)))));
                bv[r] = _mm512_permutexvar_ps(sidx, _mm512_castps128_ps512(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(b + g)))));
            } else {
                sv[r] = _mm512_set1_ps(s[g]);
                bv[r] = _mm512_set1_ps(b[g]);
            }
        }
        for (int bb = 0; bb < NB; bb++) {
            const size_t at = ((size_t)bb * nb + k) * 8;
            const __m512i xv = _mm512_loadu_si512(xq + (size_t)bb * cols + (size_t)k * 32);
            const __m512 d = _mm512_loadu_ps(xdv + at), e = _mm512_loadu_ps(xev + at);
            for (int r = 0; r < R; r++) {
                const __m512i di = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[r], xv);
                z[r][bb] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(di), _mm512_mul_ps(sv[r], d), z[r][bb]);
                z[r][bb] = _mm512_fmadd_ps(bv[r], e, z[r][bb]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        float t[4] = {0, 0, 0, 0};
        if (k < nb) { // a last unpaired block (group 32 only)
            const uint8_t *p = (const uint8_t *)(wq + (size_t)(o + r) * rw) + (size_t)k * 16;
            const __m128i y = _mm_loadu_si128((const __m128i *)p);
            const __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(y, 4), y), m4);
            const float s = sc[(size_t)(o + r) * ng + k], b = bi[(size_t)(o + r) * ng + k];
            for (int bb = 0; bb < NB; bb++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + (size_t)bb * cols + (size_t)k * 32));
                const __m256i di = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, xv);
                const float dx = xd[(size_t)bb * nb + k];
                t[bb] = hsum8(_mm256_cvtepi32_ps(di)) * (s * dx) + b * (dx * (float)xs[(size_t)bb * nb + k]);
            }
        }
        for (int bb = 0; bb < NB; bb++) out[(size_t)bb * rows + o + r] = _mm512_reduce_add_ps(z[r][bb]) + t[bb];
    }
}

#define MLX_NB(R, NB) rows_mlx4(o, q, d, s, dv, e, R, NB, wq, sc, bi, group, rows, cols, r)
#define MLX_R(R)                                       \
    switch (nbk) {                                     \
    case 1: MLX_NB(R, 1); break;                       \
    case 2: MLX_NB(R, 2); break;                       \
    case 3: MLX_NB(R, 3); break;                       \
    default: MLX_NB(R, 4); break;                      \
    }

void k_matmul_mlx4_i8(float *out, const int8_t *xq, const float *xd, const int32_t *xs, const float *xdv,
                      const int32_t *xc, int n, const uint32_t *wq, const float *sc, const float *bi, int group,
                      int rows, int cols, int lo, int hi) {
    const int nb = cols / 32;
    for (int b0 = 0; b0 < n; b0 += 4) {
        float *o = out + (size_t)b0 * rows;
        const int8_t *q = xq + (size_t)b0 * cols;
        const float *d = xd + (size_t)b0 * nb;
        const int32_t *s = xs + (size_t)b0 * nb;
        const float *dv = xdv + (size_t)b0 * nb * 8;
        const float *e = (const float *)(xc + (size_t)b0 * nb * 8);
        const int nbk = n - b0 < 4 ? n - b0 : 4;
        int r = lo;
        for (; r + 4 <= hi; r += 4) MLX_R(4)
        for (; r < hi; r++) MLX_R(1)
    }
}

#pragma GCC pop_options

#elif !defined(__aarch64__) // ARM64: simd_packed_neon.c

int k_has_vnni(void) { return 0; }
void k_matmul_mlx4_i8(float *out, const int8_t *xq, const float *xd, const int32_t *xs, const float *xdv,
                      const int32_t *xc, int n, const uint32_t *wq, const float *sc, const float *bi, int group,
                      int rows, int cols, int lo, int hi) {
    (void)out, (void)xq, (void)xd, (void)xs, (void)xdv, (void)xc, (void)n, (void)wq, (void)sc, (void)bi, (void)group,
        (void)rows, (void)cols, (void)lo, (void)hi;
}
void k_quant_act_i8(int8_t *q, float *d, int32_t *s, float *dv, int32_t *cv, const float *x, int n, int cols,
                    int type) {
    (void)q, (void)d, (void)s, (void)dv, (void)cv, (void)x, (void)n, (void)cols, (void)type;
}
void k_matmul_gguf_i8(float *out, const int8_t *xq, const float *xd, const int32_t *xs, const float *xdv,
                      const int32_t *xc, int n, const uint8_t *w, int type, int rows, int cols, int lo, int hi) {
    (void)out, (void)xq, (void)xd, (void)xs, (void)xdv, (void)xc, (void)n, (void)w, (void)type, (void)rows, (void)cols, (void)lo, (void)hi;
}

#endif
