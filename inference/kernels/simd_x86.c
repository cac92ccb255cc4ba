//go:build cgo

// AVX2+FMA and AVX-512 instances of simd_body.h. Each region is compiled
// for its own target, so the binary runs on any x86-64 and kernels.c picks
// the level at run time.
#if defined(__x86_64__)

#include <immintrin.h>

#include "kernels_internal.h"

/* ------------------------------- AVX2 + FMA ------------------------------- */
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float hmax_avx2(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// W*b/8 (= b <= 6) bytes at p into the low bytes of a 128-bit lane,
// broadcast to both lanes; reads 8 bytes when that stays inside the row.
static inline __m256i bytes_avx2(const uint8_t *p, int n, size_t avail) {
    uint64_t u = 0;
    if (avail >= 8) memcpy(&u, p, 8);
    else memcpy(&u, p, (size_t)n);
    return _mm256_broadcastsi128_si256(_mm_cvtsi64_si128((long long)u));
}

#define W 8
#define VF __m256
#define VLOADI(p) _mm256_loadu_si256((const __m256i *)(p))
#define VLOAD_BYTES(p, n, avail) bytes_avx2(p, n, avail)
#define VSHUF_BYTES(a, c) _mm256_shuffle_epi8(a, c)
#define VSRLV(a, s) _mm256_srlv_epi32(a, s)
#define VI __m256i
#define NB_MAX 4
#define R_MAX 2
#define RQ_MAX 2
#define NB_CASES(C) C(1) C(2) C(3) C(4)
#define SFX(name) name##_avx2
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSET1(f) _mm256_set1_ps(f)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VFNMA(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VDIV(a, b) _mm256_div_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VMIN(a, b) _mm256_min_ps(a, b)
#define VHSUM(v) hsum_avx2(v)
#define VHMAX(v) hmax_avx2(v)
#define VROUND(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2I(n) \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define VLOAD_BF16(p) \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#define VLOAD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define VSET1I(i) _mm256_set1_epi32(i)
#define VLOAD_U8I(p) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p)))
#define VANDI(a, b) _mm256_and_si256(a, b)
#define VSRLI(a, n) _mm256_srli_epi32(a, n)
#define VSLLI(a, n) _mm256_slli_epi32(a, n)
#define VORI(a, b) _mm256_or_si256(a, b)
#define VCVTI(a) _mm256_cvtepi32_ps(a)
#define VCVTSI(a) _mm256_cvtepi32_ps(a)
#define SF16(h) _cvtsh_ss(h)
#define VKEEP_GE(r, x, lim) _mm256_and_ps(r, _mm256_cmp_ps(x, lim, _CMP_GE_OQ))
#define VLOAD_S8I(p) _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p)))

#include "simd_body.h"
K_DEFINE_LEVEL(avx2)

#undef W
#undef VF
#undef VI
#undef VLOADI
#undef VLOAD_BYTES
#undef VSHUF_BYTES
#undef VSRLV
#undef NB_MAX
#undef R_MAX
#undef RQ_MAX
#undef NB_CASES
#undef SFX
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VFMA
#undef VFNMA
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef VMAX
#undef VMIN
#undef VHSUM
#undef VHMAX
#undef VROUND
#undef VPOW2I
#undef VLOAD_BF16
#undef VLOAD_F16
#undef VSET1I
#undef VLOAD_U8I
#undef VANDI
#undef VSRLI
#undef VSLLI
#undef VORI
#undef VCVTI
#undef VCVTSI
#undef SF16
#undef VKEEP_GE
#undef VLOAD_S8I
#pragma GCC pop_options

/* --------------------------------- AVX-512 -------------------------------- */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")

#define W 16
#define VF __m512
#define VLOADI(p) _mm512_loadu_si512((const void *)(p))
// A masked load never touches the bytes it leaves out.
#define VLOAD_BYTES(p, n, avail) \
    _mm512_broadcast_i32x4(_mm_maskz_loadu_epi8((__mmask16)((1u << (n)) - 1), (const void *)(p)))
#define VSHUF_BYTES(a, c) _mm512_shuffle_epi8(a, c)
#define VSRLV(a, s) _mm512_srlv_epi32(a, s)
#define VI __m512i
#define NB_MAX 4
#define R_MAX 4
#define RQ_MAX 2
#define NB_CASES(C) C(1) C(2) C(3) C(4)
#define SFX(name) name##_avx512
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSET1(f) _mm512_set1_ps(f)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VFNMA(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VMIN(a, b) _mm512_min_ps(a, b)
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VHMAX(v) _mm512_reduce_max_ps(v)
#define VROUND(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2I(n) \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define VLOAD_BF16(p) \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define VLOAD_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define VSET1I(i) _mm512_set1_epi32(i)
#define VLOAD_U8I(p) _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p)))
#define VANDI(a, b) _mm512_and_si512(a, b)
#define VSRLI(a, n) _mm512_srli_epi32(a, n)
#define VSLLI(a, n) _mm512_slli_epi32(a, n)
#define VORI(a, b) _mm512_or_si512(a, b)
#define VCVTI(a) _mm512_cvtepi32_ps(a)
#define VCVTSI(a) _mm512_cvtepi32_ps(a)
#define SF16(h) _cvtsh_ss(h)
#define VKEEP_GE(r, x, lim) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lim, _CMP_GE_OQ), r)
#define VLOAD_S8I(p) _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p)))

// sum16 sums each of 16 registers, lane i of the result holding a[i]'s sum,
// by a transpose tree (unpack, unpack, shuffle, shuffle).
static inline __m512 sum16_avx512(__m512 *a) {
    __m512 b[8], c[4];
    for (int i = 0; i < 8; i++)
        b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++) {
        const __m512d x = _mm512_castps_pd(b[2 * i]), y = _mm512_castps_pd(b[2 * i + 1]);
        c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    const __m512 e0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88), _mm512_shuffle_f32x4(c[0], c[1], 0xDD));
    const __m512 e1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], 0x88), _mm512_shuffle_f32x4(c[2], c[3], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(e0, e1, 0x88), _mm512_shuffle_f32x4(e0, e1, 0xDD));
}

// dots16 returns the 16 dot products of q with the rows k, k+ks, ...,
// k+15*ks (hd a multiple of 16): each row's products accumulate in one
// register, and sum16 adds up the 16 registers at once instead of 16
// horizontal reductions.
static inline __m512 dots16_avx512(const float *q, const float *k, size_t ks, int hd) {
    __m512 a[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d += 16) {
        const __m512 qv = _mm512_loadu_ps(q + d);
        for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k + (size_t)i * ks + d), a[i]);
    }
    return sum16_avx512(a);
}
#define VDOTS16(q, k, ks, hd) dots16_avx512(q, k, ks, hd)


#include "simd_body.h"
K_DEFINE_LEVEL(avx512)
#undef VDOTS16

#pragma GCC pop_options

#endif
