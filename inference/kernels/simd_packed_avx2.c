//go:build cgo

// Packed int8 kernels at the AVX2 level (packed.go): the layout, the int8
// activations and the results of the AVX-512 kernels (simd_packed.c), for
// CPUs without AVX-512 VNNI or held at the AVX2 level. The body is
// simd_packed_avx2.h, compiled twice with per-function targets: with
// AVX-VNNI (Alder Lake and later, Zen 5) and with plain AVX2, so that the
// binary still runs on any x86-64.
#include "kernels_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

typedef int32_t __attribute__((may_alias, aligned(1))) pk2_i32u;
static inline int32_t pk2_quad(const int8_t *p) { return *(const pk2_i32u *)p; }

// As pk_prefetch in simd_packed.c, by plan pf (k_set_pk_prefetch).
#define pk2_prefetch(cp, bytes) k_pf_block((cp), (bytes), pf)

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

static inline int32_t pk2_hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

// Quantizes as pk_quant_avx512 does, to the same bits: per 32-block, scale
// max|x|/127, x*127/max rounded to nearest even.
void pk_quant_avx2(int8_t *q, float *d, int32_t *c, float *e, const float *x, int n, int cols, int off, int hoff,
                   int group) {
    const int nb = cols / 32, bpg = group > 0 ? group / 32 : 0, ng = group > 0 ? cols / group : 0;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n; b++) {
        float eg = 0;
        for (int k = 0; k < nb; k++) {
            const float *p = x + (size_t)b * cols + (size_t)k * 32;
            __m256 a[4];
            for (int j = 0; j < 4; j++) a[j] = _mm256_loadu_ps(p + 8 * j);
            __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, a[0]), _mm256_andnot_ps(sign, a[1])),
                                     _mm256_max_ps(_mm256_andnot_ps(sign, a[2]), _mm256_andnot_ps(sign, a[3])));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            const float amax = _mm_cvtss_f32(m4);
            const float id = amax > 0 ? 127.0f / amax : 0.0f;
            __m256i v[4];
            for (int j = 0; j < 4; j++) v[j] = _mm256_cvtps_epi32(_mm256_mul_ps(a[j], _mm256_set1_ps(id)));
            // Saturating packs interleave 128-bit lanes; the permute restores order.
            const __m256i w16a = _mm256_packs_epi32(v[0], v[1]), w16b = _mm256_packs_epi32(v[2], v[3]);
            const __m256i w8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w16a, w16b),
                                                           _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(q + (size_t)b * cols + (size_t)k * 32), w8);
            int nan = 0;
            for (int j = 0; j < 4; j++) nan |= _mm256_movemask_ps(_mm256_cmp_ps(a[j], a[j], _CMP_UNORD_Q));
            const float dk = nan ? NAN : amax / 127.0f;
            const __m256i s0 = _mm256_add_epi32(v[0], v[1]), s1 = _mm256_add_epi32(v[2], v[3]);
            const int32_t h0 = pk2_hsum(s0), h1 = pk2_hsum(s1), s = h0 + h1;
            d[(size_t)b * nb + k] = dk;
            if (hoff) {
                c[2 * ((size_t)b * nb + k)] = -off * h0;
                c[2 * ((size_t)b * nb + k) + 1] = -hoff * h1;
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

#define PK2_VNNI 0
#define PK2_SFX avx2
#include "simd_packed_avx2.h"
#undef PK2_VNNI
#undef PK2_SFX

#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avxvnni")

#define PK2_VNNI 1
#define PK2_SFX avxvnni
#include "simd_packed_avx2.h"
#undef PK2_VNNI
#undef PK2_SFX

#pragma GCC pop_options

#endif
