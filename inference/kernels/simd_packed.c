//go:build cgo

// Packed int8 kernels (packed.go): weights rearranged at load so that one
// 512-bit register holds four codes of each of 16 consecutive rows, one row
// per 32-bit lane. vpdpbusd against a broadcast quad of int8 activations then
// gives 16 row dot products at once, with no horizontal sums and one vector
// of 16 row scales per block, and each thread streams its rows as one
// sequential run of memory. Each (row, activation row) output sees the same
// sequence of operations whatever n, the chunk or the thread count is.
#include "kernels_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")

void pk_quant_avx512(int8_t *q, float *d, int32_t *c, float *e, const float *x, int n, int cols, int off, int hoff,
                     int group) {
    const int nb = cols / 32, bpg = group > 0 ? group / 32 : 0, ng = group > 0 ? cols / group : 0;
    for (int b = 0; b < n; b++) {
        float eg = 0;
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
            // A NaN in the block must reach the outputs, as in float.
            const int nan = (_mm512_cmp_ps_mask(a0, a0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(a1, a1, _CMP_UNORD_Q)) != 0;
            const float dk = nan ? NAN : amax / 127.0f;
            const int32_t s = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
            d[(size_t)b * nb + k] = dk;
            if (hoff) {
                // Two corrections per block, one per 16-element half.
                c[2 * ((size_t)b * nb + k)] = -off * _mm512_reduce_add_epi32(i0);
                c[2 * ((size_t)b * nb + k) + 1] = -hoff * _mm512_reduce_add_epi32(i1);
            } else {
                c[(size_t)b * nb + k] = -off * s;
            }
            if (bpg) {
                eg += dk * (float)s;
                if ((k + 1) % bpg == 0) {
                    e[(size_t)b * ng + k / bpg] = eg;
                    eg = 0;
                }
            }
        }
    }
}

// 16 scales (or biases) of one block or group in storage format sfmt.
static inline __m512 load16(const void *p, size_t at, int sfmt) {
    if (sfmt == K_PK_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + at)));
    if (sfmt == K_PK_BF16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + at))), 16));
    return _mm512_loadu_ps((const float *)p + at);
}

// Four activation codes broadcast to every lane, read straight from memory
// (an embedded broadcast of vpdpbusd, not a shuffle-port move from a GPR).
typedef int32_t __attribute__((may_alias, aligned(1))) i32u;
static inline int32_t quad(const int8_t *p) { return *(const i32u *)p; }

// One 32-block k of 16 rows against NB activation rows: the eight code
// vectors w[0..7] hold elements 4i..4i+3 of every row in w[i].
#define PK_BLOCK(NB, SCALE)                                                                                   \
    for (int bb = 0; bb < NB; bb++) {                                                                         \
        const int8_t *xb = xq + (size_t)bb * cols + (size_t)k * 32;                                           \
        __m512i a0 = _mm512_set1_epi32(KIND == K_PK_U8 ? 0 : xc[(size_t)bb * nb + k]);                       \
        __m512i a1 = _mm512_setzero_si512();                                                                  \
        a0 = _mm512_dpbusd_epi32(a0, w[0], _mm512_set1_epi32(quad(xb + 0)));                                 \
        a1 = _mm512_dpbusd_epi32(a1, w[1], _mm512_set1_epi32(quad(xb + 4)));                                 \
        a0 = _mm512_dpbusd_epi32(a0, w[2], _mm512_set1_epi32(quad(xb + 8)));                                 \
        a1 = _mm512_dpbusd_epi32(a1, w[3], _mm512_set1_epi32(quad(xb + 12)));                                \
        a0 = _mm512_dpbusd_epi32(a0, w[4], _mm512_set1_epi32(quad(xb + 16)));                                \
        a1 = _mm512_dpbusd_epi32(a1, w[5], _mm512_set1_epi32(quad(xb + 20)));                                \
        a0 = _mm512_dpbusd_epi32(a0, w[6], _mm512_set1_epi32(quad(xb + 24)));                                \
        a1 = _mm512_dpbusd_epi32(a1, w[7], _mm512_set1_epi32(quad(xb + 28)));                                \
        f[bb] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)),                                 \
                                _mm512_mul_ps(SCALE, _mm512_set1_ps(xd[(size_t)bb * nb + k])), f[bb]);        \
    }

// Prefetch the block as plan pf says (k_set_pk_prefetch). Dense: every
// cache line 4 KiB ahead, since at a step's batch of several rows the
// compute per block is long enough that the hardware prefetcher alone
// leaves memory idle between blocks (2 KiB sat idle at 4 activation rows;
// 8 KiB helped the vocabulary matrix but not the layer-sized ones; noisy,
// one core). Sparse, for decode on AMD: one line per 2 KiB, 16 KiB ahead.
static inline __attribute__((always_inline)) void pk_prefetch(const uint8_t *cp, const size_t bytes, const k_pf pf) {
    k_pf_block(cp, bytes, pf);
}

static inline __attribute__((always_inline)) void pk_load(__m512i w[8], const uint8_t *cp, const int Q8) {
    if (Q8) {
        for (int i = 0; i < 8; i++) w[i] = _mm512_loadu_si512(cp + 64 * i);
    } else {
        const __m512i m4 = _mm512_set1_epi8(0x0f);
        for (int i = 0; i < 4; i++) {
            const __m512i v = _mm512_loadu_si512(cp + 64 * i);
            w[i] = _mm512_and_si512(v, m4);
            w[4 + i] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
    }
}

// One 32-block k whose halves (elements 0..15 in w[0..3], 16..31 in
// w[4..7]) accumulate apart: Q6_K gives them different sub-scales, and both
// Q6_K and Q5_0 store the second half scaled (see pk_load_q6, pk_load_q5).
// xc holds two corrections per block when HOFF, else one (for a0).
#define PK_HALVES(NB, HOFF, COMBINE)                                                                          \
    for (int bb = 0; bb < NB; bb++) {                                                                         \
        const int8_t *xb = xq + (size_t)bb * cols + (size_t)k * 32;                                           \
        const size_t at = (size_t)bb * nb + k;                                                                \
        __m512i a0 = _mm512_set1_epi32(KIND == K_PK_Q2K ? 0 : HOFF ? xc[2 * at] : KIND == K_PK_Q5 ? xc[at] : 0); \
        __m512i a1 = _mm512_set1_epi32(HOFF && KIND != K_PK_Q2K ? xc[2 * at + 1] : 0);                        \
        a0 = _mm512_dpbusd_epi32(a0, w[0], _mm512_set1_epi32(quad(xb + 0)));                                 \
        a1 = _mm512_dpbusd_epi32(a1, w[4], _mm512_set1_epi32(quad(xb + 16)));                                \
        a0 = _mm512_dpbusd_epi32(a0, w[1], _mm512_set1_epi32(quad(xb + 4)));                                 \
        a1 = _mm512_dpbusd_epi32(a1, w[5], _mm512_set1_epi32(quad(xb + 20)));                                \
        a0 = _mm512_dpbusd_epi32(a0, w[2], _mm512_set1_epi32(quad(xb + 8)));                                 \
        a1 = _mm512_dpbusd_epi32(a1, w[6], _mm512_set1_epi32(quad(xb + 24)));                                \
        a0 = _mm512_dpbusd_epi32(a0, w[3], _mm512_set1_epi32(quad(xb + 12)));                                \
        a1 = _mm512_dpbusd_epi32(a1, w[7], _mm512_set1_epi32(quad(xb + 28)));                                \
        const __m512 xdv = _mm512_set1_ps(xd[at]);                                                            \
        COMBINE                                                                                               \
    }

// Q6_K block: 256 bytes of nibbles in the Q4 layout, then two vectors of
// 2-bit fields (field i of each byte belongs to w[i] in the first, w[4+i]
// in the second). The first half is q = lo | hi<<4; the second half stores
// q>>2 in the high nibble and q&3 in its field, giving 4q without a shift
// of the nibbles (a1 is 4x, its correction -128*sum).
static inline __attribute__((always_inline)) void pk_load_q6(__m512i w[8], const uint8_t *cp) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30), m0c = _mm512_set1_epi8(0x0c),
                  mf0 = _mm512_set1_epi8((char)0xf0);
    const __m512i ha = _mm512_loadu_si512(cp + 256), hb = _mm512_loadu_si512(cp + 320);
    const __m512i sa[4] = {_mm512_slli_epi16(ha, 4), _mm512_slli_epi16(ha, 2), ha, _mm512_srli_epi16(ha, 2)};
    const __m512i sb[4] = {_mm512_slli_epi16(hb, 2), hb, _mm512_srli_epi16(hb, 2), _mm512_srli_epi16(hb, 4)};
    for (int i = 0; i < 4; i++) {
        const __m512i v = _mm512_loadu_si512(cp + 64 * i);
        w[i] = _mm512_ternarylogic_epi32(_mm512_and_si512(v, m4), sa[i], m30, 0xf8);     // A | (B & C)
        w[4 + i] = _mm512_ternarylogic_epi32(v, _mm512_and_si512(sb[i], m0c), mf0, 0xec); // (A & C) | B
    }
}

// Q5_0 block: nibbles in the Q4 layout, then one vector of fifth bits (bit
// 4+i of each byte for w[i], bit 3-i for w[4+i]). The second half stores
// q>>1 in the high nibble and q&1 in its bit, giving 8q; a1 >> 3 is exact.
static inline __attribute__((always_inline)) void pk_load_q5(__m512i w[8], const uint8_t *cp) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m10 = _mm512_set1_epi8(0x10), m08 = _mm512_set1_epi8(0x08),
                  mf0 = _mm512_set1_epi8((char)0xf0);
    const __m512i h = _mm512_loadu_si512(cp + 256);
    const __m512i sa[4] = {h, _mm512_srli_epi16(h, 1), _mm512_srli_epi16(h, 2), _mm512_srli_epi16(h, 3)};
    const __m512i sb[4] = {h, _mm512_slli_epi16(h, 1), _mm512_slli_epi16(h, 2), _mm512_slli_epi16(h, 3)};
    for (int i = 0; i < 4; i++) {
        const __m512i v = _mm512_loadu_si512(cp + 64 * i);
        w[i] = _mm512_ternarylogic_epi32(_mm512_and_si512(v, m4), sa[i], m10, 0xf8);
        w[4 + i] = _mm512_ternarylogic_epi32(v, _mm512_and_si512(sb[i], m08), mf0, 0xec);
    }
}

// A narrow layout's block (kernels.h): the byte vectors of its K_PK_BASE
// kind's load, from 2-bit pairs, 1-bit planes and nibbles. Each shift
// below moves a field within its byte; the masks drop what crossed in.
static inline __attribute__((always_inline)) void pk_load_narrow(__m512i w[8], const uint8_t *cp, const int LK) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    if (LK == K_PK_U5 || LK == K_PK_U6) {
        const __m512i h = _mm512_loadu_si512(cp + 256);
        const __m512i h2 = LK == K_PK_U6 ? _mm512_loadu_si512(cp + 320) : h;
        for (int i = 0; i < 4; i++) {
            const __m512i v = _mm512_loadu_si512(cp + 64 * i);
            const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            if (LK == K_PK_U5) { // bit i (and 4+i) of h to bit 4
                const __m512i m10 = _mm512_set1_epi8(0x10);
                const __m512i ha = i == 0 ? _mm512_slli_epi16(h, 4) : i == 1 ? _mm512_slli_epi16(h, 3)
                                 : i == 2 ? _mm512_slli_epi16(h, 2) : _mm512_slli_epi16(h, 1);
                const __m512i hb = i == 0 ? h : _mm512_srli_epi16(h, i);
                w[i] = _mm512_ternarylogic_epi32(lo, ha, m10, 0xf8);
                w[4 + i] = _mm512_ternarylogic_epi32(hi, hb, m10, 0xf8);
            } else { // crumb i of h (w[i]) and of h2 (w[4+i]) to bits 4..5
                const __m512i m30 = _mm512_set1_epi8(0x30);
                const __m512i ha = i == 0 ? _mm512_slli_epi16(h, 4) : i == 1 ? _mm512_slli_epi16(h, 2)
                                 : i == 2 ? h : _mm512_srli_epi16(h, 2);
                const __m512i hb = i == 0 ? _mm512_slli_epi16(h2, 4) : i == 1 ? _mm512_slli_epi16(h2, 2)
                                 : i == 2 ? h2 : _mm512_srli_epi16(h2, 2);
                w[i] = _mm512_ternarylogic_epi32(lo, ha, m30, 0xf8);
                w[4 + i] = _mm512_ternarylogic_epi32(hi, hb, m30, 0xf8);
            }
        }
        return;
    }
    const __m512i m3 = _mm512_set1_epi8(0x03);
    for (int j = 0; j < 2; j++) {
        const __m512i p = _mm512_loadu_si512(cp + 64 * j);
        w[4 * j] = _mm512_and_si512(p, m3);
        w[4 * j + 1] = _mm512_and_si512(_mm512_srli_epi16(p, 2), m3);
        w[4 * j + 2] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m3);
        w[4 * j + 3] = _mm512_and_si512(_mm512_srli_epi16(p, 6), m3);
    }
    if (LK == K_PK_Q3K || LK == K_PK_U3) { // bit i of h to bit 2
        const __m512i h = _mm512_loadu_si512(cp + 128), m04 = _mm512_set1_epi8(0x04);
        for (int i = 0; i < 8; i++) {
            const __m512i hs = i == 0 ? _mm512_slli_epi16(h, 2) : i == 1 ? _mm512_slli_epi16(h, 1)
                             : i == 2 ? h : _mm512_srli_epi16(h, i - 2);
            w[i] = _mm512_ternarylogic_epi32(w[i], hs, m04, 0xf8);
        }
    }
    if (LK == K_PK_Q3K) { // K_PK_Q6K's q+28, and 4(q+28) in the second half
        const __m512i c28 = _mm512_set1_epi8(28);
        for (int i = 0; i < 8; i++) w[i] = _mm512_add_epi8(w[i], c28);
        for (int i = 4; i < 8; i++) w[i] = _mm512_slli_epi16(w[i], 2);
    }
}

// The code vectors of block cp in layout LK.
static inline __attribute__((always_inline)) void pk_load_any(__m512i w[8], const uint8_t *cp, const int LK) {
    if (LK == K_PK_Q6K) pk_load_q6(w, cp);
    else if (LK == K_PK_Q5 || LK == K_PK_Q5U || LK == K_PK_Q5K) pk_load_q5(w, cp);
    else if (LK == K_PK_Q8 || LK == K_PK_U8) pk_load(w, cp, 1);
    else if (LK == K_PK_Q4 || LK == K_PK_Q4K) pk_load(w, cp, 0);
    else pk_load_narrow(w, cp, LK);
}

// Q2_K's 16 sub-block scales (hi 0) or mins (hi 1) of one row group, from
// the nibbles of its bytes, as floats times d.
static inline __m512 sub16n(const uint8_t *p, __m512 d, int hi) {
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    if (hi) b = _mm_srli_epi16(b, 4);
    b = _mm_and_si128(b, _mm_set1_epi8(0x0f));
    return _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b)));
}

// 16 int8 (or uint8) sub-block scales of one row group as floats times d.
static inline __m512 sub16(const uint8_t *p, __m512 d, int sgn) {
    const __m128i b = _mm_loadu_si128((const __m128i *)p);
    return _mm512_mul_ps(d, _mm512_cvtepi32_ps(sgn ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b)));
}

// Row group g (rows 16g..16g+15) against NB activation rows.
static inline __attribute__((always_inline)) void pk_group(float *out, const int8_t *xq, const float *xd,
                                                           const int32_t *xc, const float *xe, const int NB,
                                                           const int LK, const uint8_t *codes, const void *sc,
                                                           const void *bi, int sfmt, int group, int rows, int cols,
                                                           int g, const k_pf pf) {
    // LK is the layout, KIND the kind whose code runs on its byte vectors.
    const int KIND = K_PK_BASE(LK), nb = cols / 32, nsb = cols / 256;
    const size_t cb = K_PK_CB(LK);
    const uint8_t *cp = codes + (size_t)g * nb * cb;
    __m512 f[4];
    for (int bb = 0; bb < NB; bb++) f[bb] = _mm512_setzero_ps();
    __m512i w[8];
    if (KIND == K_PK_Q6K) {
        // Per super-block: d[16 rows] (f16), then int8 scales[16 sub-blocks][16 rows].
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 288;
        for (int sb = 0; sb < nsb; sb++, sp += 288) {
            const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sp));
            const __m512 dv4 = _mm512_mul_ps(dv, _mm512_set1_ps(0.25f));
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                pk_prefetch(cp + (size_t)k * cb, cb, pf);
                pk_load_any(w, cp + (size_t)k * cb, LK);
                const __m512 s0 = sub16(sp + 32 + 32 * (k - sb * 8), dv, 1);
                const __m512 s1 = sub16(sp + 48 + 32 * (k - sb * 8), dv4, 1);
                PK_HALVES(NB, 1,
                          f[bb] = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_cvtepi32_ps(a1), s1,
                                                                  _mm512_mul_ps(_mm512_cvtepi32_ps(a0), s0)),
                                                  xdv, f[bb]);)
            }
        }
    } else if (KIND == K_PK_Q5 || KIND == K_PK_Q5U) {
        // Q5_1 (K_PK_Q5U) adds its bias per 32-block: group 32, xe per block.
        for (int k = 0; k < nb; k++) {
            pk_prefetch(cp + (size_t)k * cb, cb, pf);
            pk_load_any(w, cp + (size_t)k * cb, LK);
            const __m512 s = load16(sc, ((size_t)g * nb + k) * 16, sfmt);
            PK_HALVES(NB, 0,
                      f[bb] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, _mm512_srai_epi32(a1, 3))),
                                              _mm512_mul_ps(s, xdv), f[bb]);)
            if (KIND == K_PK_Q5U) {
                const __m512 bv = load16(bi, ((size_t)g * nb + k) * 16, sfmt);
                for (int bb = 0; bb < NB; bb++)
                    f[bb] = _mm512_fmadd_ps(bv, _mm512_set1_ps(xe[(size_t)bb * nb + k]), f[bb]);
            }
        }
    } else if (KIND == K_PK_Q5K) {
        // Q4_K's scales and mins (below) over Q5_0's code layout.
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 320;
        for (int sb = 0; sb < nsb; sb++, sp += 320) {
            const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sp));
            const __m512 mv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sp + 32)));
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                pk_prefetch(cp + (size_t)k * cb, cb, pf);
                pk_load_any(w, cp + (size_t)k * cb, LK);
                const __m512 s = sub16(sp + 64 + 16 * (k - sb * 8), dv, 0);
                const __m512 m = sub16(sp + 192 + 16 * (k - sb * 8), mv, 0);
                PK_HALVES(NB, 0,
                          f[bb] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, _mm512_srai_epi32(a1, 3))),
                                                  _mm512_mul_ps(s, xdv), f[bb]);)
                for (int bb = 0; bb < NB; bb++)
                    f[bb] = _mm512_fnmadd_ps(m, _mm512_set1_ps(xe[(size_t)bb * nb + k]), f[bb]);
            }
        }
    } else if (KIND == K_PK_Q2K) {
        // Per super-block: d, dmin [16 rows] (f16), then the scale and min
        // nibbles [16 sub-blocks of 16][16 rows]; xc holds the activation
        // sums of each half block, which the mins multiply.
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 320;
        for (int sb = 0; sb < nsb; sb++, sp += 320) {
            const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sp));
            const __m512 mv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sp + 32)));
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                const int j = k - sb * 8;
                pk_prefetch(cp + (size_t)k * cb, cb, pf);
                pk_load_any(w, cp + (size_t)k * cb, LK);
                const __m512 s0 = sub16n(sp + 64 + 32 * j, dv, 0), s1 = sub16n(sp + 80 + 32 * j, dv, 0);
                const __m512 m0 = sub16n(sp + 64 + 32 * j, mv, 1), m1 = sub16n(sp + 80 + 32 * j, mv, 1);
                PK_HALVES(NB, 1, {
                    const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1), s1, _mm512_mul_ps(_mm512_cvtepi32_ps(a0), s0));
                    const __m512 u = _mm512_fmadd_ps(m1, _mm512_set1_ps((float)xc[2 * at + 1]),
                                                     _mm512_mul_ps(m0, _mm512_set1_ps((float)xc[2 * at])));
                    f[bb] = _mm512_fmadd_ps(_mm512_sub_ps(t, u), xdv, f[bb]);
                })
            }
        }
    } else if (KIND == K_PK_Q4K) {
        // Per super-block: d, dmin [16 rows] (f16), then uint8 scales and
        // mins [8 sub-blocks][16 rows]; xe holds d*sum of each 32-block.
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 320;
        for (int sb = 0; sb < nsb; sb++, sp += 320) {
            const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sp));
            const __m512 mv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sp + 32)));
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                pk_prefetch(cp + (size_t)k * cb, cb, pf);
                pk_load_any(w, cp + (size_t)k * cb, LK);
                const __m512 s = sub16(sp + 64 + 16 * (k - sb * 8), dv, 0);
                const __m512 m = sub16(sp + 192 + 16 * (k - sb * 8), mv, 0);
                PK_BLOCK(NB, s)
                for (int bb = 0; bb < NB; bb++)
                    f[bb] = _mm512_fnmadd_ps(m, _mm512_set1_ps(xe[(size_t)bb * nb + k]), f[bb]);
            }
        }
    } else if (group == 0) {
        for (int k = 0; k < nb; k++) {
            pk_prefetch(cp + (size_t)k * cb, cb, pf);
            pk_load_any(w, cp + (size_t)k * cb, LK);
            const __m512 s = load16(sc, ((size_t)g * nb + k) * 16, sfmt);
            PK_BLOCK(NB, s)
        }
    } else {
        const int bpg = group / 32, ng = cols / group;
        for (int gi = 0; gi < ng; gi++) {
            const __m512 s = load16(sc, ((size_t)g * ng + gi) * 16, sfmt);
            const __m512 bv = load16(bi, ((size_t)g * ng + gi) * 16, sfmt);
            for (int k = gi * bpg; k < (gi + 1) * bpg; k++) {
                pk_prefetch(cp + (size_t)k * cb, cb, pf);
                pk_load_any(w, cp + (size_t)k * cb, LK);
                PK_BLOCK(NB, s)
            }
            for (int bb = 0; bb < NB; bb++)
                f[bb] = _mm512_fmadd_ps(bv, _mm512_set1_ps(xe[(size_t)bb * ng + gi]), f[bb]);
        }
    }
    for (int bb = 0; bb < NB; bb++) _mm512_storeu_ps(out + (size_t)bb * rows + (size_t)g * 16, f[bb]);
}

#define PK_NB(NB)                                                                                             \
    do {                                                                                                      \
        switch (kind) {                                                                                       \
        case K_PK_Q8: pk_group(o, q, d, c, e, NB, K_PK_Q8, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_Q6K: pk_group(o, q, d, c, e, NB, K_PK_Q6K, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_Q5: pk_group(o, q, d, c, e, NB, K_PK_Q5, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_Q4K: pk_group(o, q, d, c, e, NB, K_PK_Q4K, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_U8: pk_group(o, q, d, c, e, NB, K_PK_U8, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_Q5U: pk_group(o, q, d, c, e, NB, K_PK_Q5U, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_Q5K: pk_group(o, q, d, c, e, NB, K_PK_Q5K, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_Q2K: pk_group(o, q, d, c, e, NB, K_PK_Q2K, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_Q3K: pk_group(o, q, d, c, e, NB, K_PK_Q3K, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_U2: pk_group(o, q, d, c, e, NB, K_PK_U2, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_U3: pk_group(o, q, d, c, e, NB, K_PK_U3, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_U5: pk_group(o, q, d, c, e, NB, K_PK_U5, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        case K_PK_U6: pk_group(o, q, d, c, e, NB, K_PK_U6, codes, sc, bi, sfmt, group, rows, cols, g, pf); break; \
        default: pk_group(o, q, d, c, e, NB, K_PK_Q4, codes, sc, bi, sfmt, group, rows, cols, g, pf); break;      \
        }                                                                                                     \
    } while (0)

// One activation row against rows [16*g0, 16*g1) of a Q4_0 or Q8_0 matrix
// (f16 scale per 32-block): pk_group's operations for NB 1, in a loop with
// nothing else in it. Decode streams these weights from memory, and this
// plain loop reads measurably faster than pk_group's (Zen 5).
static inline __attribute__((always_inline)) void pk_rows1(float *out, const int8_t *xq, const float *xd,
                                                           const int32_t *xc, const uint8_t *codes,
                                                           const uint16_t *sc, const int Q8, int cols, int g0, int g1,
                                                           const k_pf pf) {
    const int nb = cols / 32;
    const size_t cb = Q8 ? 512 : 256;
    const uint8_t *cp = codes + (size_t)g0 * nb * cb;
    const uint16_t *sp = sc + (size_t)g0 * nb * 16;
    for (int g = g0; g < g1; g++) {
        __m512 f = _mm512_setzero_ps();
        for (int k = 0; k < nb; k++, cp += cb, sp += 16) {
            pk_prefetch(cp, cb, pf);
            __m512i w[8];
            pk_load(w, cp, Q8);
            const int8_t *xb = xq + (size_t)k * 32;
            __m512i a0 = _mm512_set1_epi32(xc[k]), a1 = _mm512_setzero_si512();
            a0 = _mm512_dpbusd_epi32(a0, w[0], _mm512_set1_epi32(quad(xb + 0)));
            a1 = _mm512_dpbusd_epi32(a1, w[1], _mm512_set1_epi32(quad(xb + 4)));
            a0 = _mm512_dpbusd_epi32(a0, w[2], _mm512_set1_epi32(quad(xb + 8)));
            a1 = _mm512_dpbusd_epi32(a1, w[3], _mm512_set1_epi32(quad(xb + 12)));
            a0 = _mm512_dpbusd_epi32(a0, w[4], _mm512_set1_epi32(quad(xb + 16)));
            a1 = _mm512_dpbusd_epi32(a1, w[5], _mm512_set1_epi32(quad(xb + 20)));
            a0 = _mm512_dpbusd_epi32(a0, w[6], _mm512_set1_epi32(quad(xb + 24)));
            a1 = _mm512_dpbusd_epi32(a1, w[7], _mm512_set1_epi32(quad(xb + 28)));
            const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sp));
            f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), _mm512_mul_ps(s, _mm512_set1_ps(xd[k])), f);
        }
        _mm512_storeu_ps(out + (size_t)g * 16, f);
    }
}

void pk_matmul_avx512(float *out, const int8_t *xq, const float *xd, const int32_t *xc, const float *xe, int n,
                      const uint8_t *codes, const void *sc, const void *bi, int kind, int sfmt, int group, int rows,
                      int cols, int lo, int hi) {
    const int nb = cols / 32, ng = group > 0 ? cols / group : 0, nc = K_PK_NC(kind) * nb;
    for (int b0 = 0; b0 < n; b0 += 4) {
        float *o = out + (size_t)b0 * rows;
        const int8_t *q = xq + (size_t)b0 * cols;
        const float *d = xd + (size_t)b0 * nb;
        const int32_t *c = xc + (size_t)b0 * nc;
        const float *e = xe ? xe + (size_t)b0 * ng : 0;
        const int nbk = n - b0 < 4 ? n - b0 : 4;
        const k_pf pf = k_pk_prefetch_plan(nbk);
        k_pf_start(codes + (size_t)(lo / 16) * nb * K_PK_CB(kind), pf);
        if (nbk == 1 && group == 0 && sfmt == K_PK_F16 && (kind == K_PK_Q8 || kind == K_PK_Q4)) {
            if (kind == K_PK_Q8) pk_rows1(o, q, d, c, codes, sc, 1, cols, lo / 16, hi / 16, pf);
            else pk_rows1(o, q, d, c, codes, sc, 0, cols, lo / 16, hi / 16, pf);
            continue;
        }
        for (int g = lo / 16; g < hi / 16; g++) {
            switch (nbk) {
            case 1: PK_NB(1); break;
            case 2: PK_NB(2); break;
            case 3: PK_NB(3); break;
            default: PK_NB(4); break;
            }
        }
    }
}

#pragma GCC pop_options

// The x86 entry points pick the kernels of the current level (k_pk_level):
// AVX-512 VNNI here, AVX2 with or without AVX-VNNI in simd_packed_avx2.c.
// Both quantize the activations to the same bits.
void k_packed_quant(int8_t *q, float *d, int32_t *c, float *e, const float *x, int n, int cols, int off, int hoff,
                    int group) {
    if (k_pk_level() == K_PKL_AVX512)
        pk_quant_avx512(q, d, c, e, x, n, cols, off, hoff, group);
    else
        pk_quant_avx2(q, d, c, e, x, n, cols, off, hoff, group);
}

void k_matmul_packed(float *out, const int8_t *xq, const float *xd, const int32_t *xc, const float *xe, int n,
                     const uint8_t *codes, const void *sc, const void *bi, int kind, int sfmt, int group, int rows,
                     int cols, int lo, int hi) {
    switch (k_pk_level()) {
    case K_PKL_AVX512:
        pk_matmul_avx512(out, xq, xd, xc, xe, n, codes, sc, bi, kind, sfmt, group, rows, cols, lo, hi);
        break;
    case K_PKL_AVXVNNI:
        pk_matmul_avxvnni(out, xq, xd, xc, xe, n, codes, sc, bi, kind, sfmt, group, rows, cols, lo, hi);
        break;
    default:
        pk_matmul_avx2(out, xq, xd, xc, xe, n, codes, sc, bi, kind, sfmt, group, rows, cols, lo, hi);
    }
}

#elif !defined(__aarch64__) // ARM64: simd_packed_neon.c

void k_packed_quant(int8_t *q, float *d, int32_t *c, float *e, const float *x, int n, int cols, int off, int hoff,
                    int group) {
    (void)q, (void)d, (void)c, (void)e, (void)x, (void)n, (void)cols, (void)off, (void)hoff, (void)group;
}
void k_matmul_packed(float *out, const int8_t *xq, const float *xd, const int32_t *xc, const float *xe, int n,
                     const uint8_t *codes, const void *sc, const void *bi, int kind, int sfmt, int group, int rows,
                     int cols, int lo, int hi) {
    (void)out, (void)xq, (void)xd, (void)xc, (void)xe, (void)n, (void)codes, (void)sc, (void)bi, (void)kind,
        (void)sfmt, (void)group, (void)rows, (void)cols, (void)lo, (void)hi;
}

#endif
