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
#define VHSUM(v) hsum_avx512(v)
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

// hsum_avx512 is the sum of a register's lanes, by a fixed tree (the one
// GCC's _mm512_reduce_add_ps uses): t[i] = v[i]+v[i+8], u[i] = t[i]+t[i+4],
// then (u[0]+u[2]) + (u[1]+u[3]). hsum_pair...hsums_last below compute the
// same tree for 16 registers at once, so the matmul's tile kernel and its block kernel
// give the same bits.
static inline float hsum_avx512(__m512 v) {
    const __m256 t = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    const __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
    return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}

// The horizontal sums of 16 registers a[0..15] at once: the same additions
// as 16 hsum_avx512 calls (each lane of the result is made by the same tree
// over one register), arranged as a transpose so that each step serves
// several registers: halves (hsum_pair of a[2i], a[2i+1]), quarters
// (hsum_quad of two pairs), pairs of lanes (hsum_oct of two quads), then the
// last pair of lanes and a permute (hsums_last of two octs), after which
// lane j holds the sum of a[j].
static inline __attribute__((always_inline)) __m512 hsum_pair_avx512(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
}
static inline __attribute__((always_inline)) __m512 hsum_quad_avx512(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
}
static inline __attribute__((always_inline)) __m512 hsum_oct_avx512(__m512 a, __m512 b) {
    const __m512d p = _mm512_castps_pd(a), q = _mm512_castps_pd(b);
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(p, q)), _mm512_castpd_ps(_mm512_unpackhi_pd(p, q)));
}
static inline __attribute__((always_inline)) __m512 hsums_last_avx512(__m512 v0, __m512 v1) {
    // Lane 4l+q of r holds the sum of a[4q+l].
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(v0, v1, 0x88), _mm512_shuffle_ps(v0, v1, 0xDD));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), r);
}

// tile_avx512 is block (simd_body.h) for float formats and many
// activation rows: 4 weight rows times 6 activation rows in 24 accumulator
// registers (with 4 weight registers and one activation register, 29 of
// 32), each weight vector decoded once for all 6 activation rows, and the
// horizontal sums done 16 registers at a time (hsum_pair...hsums_last). Every output
// element gets block's operations in block's order (the W-lane partial sums
// over whole 2W blocks in order, hsum_avx512's tree, then the scalar tail),
// so it equals block's result bit for bit: batch invariance holds across
// the two kernels. fmt is K_F32, K_BF16 or K_F16.
#define GEMM_R 4
#define GEMM_NB 6
static inline __attribute__((always_inline)) void tile_avx512(const int fmt, float *out, int ldo, const float *x,
                                                              const k_weights *wd, int o0) {
    const int cols = wd->cols, kend = cols - cols % 32;
    // a<v>[r]: activation row v, weight row r; six small arrays rather
    // than one, which GCC would keep in memory as well as in registers.
    __m512 a0[GEMM_R], a1[GEMM_R], a2[GEMM_R], a3[GEMM_R], a4[GEMM_R], a5[GEMM_R];
    for (int r = 0; r < GEMM_R; r++) a0[r] = a1[r] = a2[r] = a3[r] = a4[r] = a5[r] = _mm512_setzero_ps();
    const size_t base = (size_t)o0 * cols;
    for (int k = 0; k < kend; k += 16) {
        __m512 w[GEMM_R];
        for (int r = 0; r < GEMM_R; r++) {
            const size_t i = base + (size_t)r * cols + k;
            w[r] = fmt == K_F32 ? _mm512_loadu_ps(wd->wf + i) : fmt == K_BF16 ? VLOAD_BF16(wd->wh + i) : VLOAD_F16(wd->wh + i);
        }
#define ROW(v)                                                                     \
    {                                                                              \
        const __m512 xv = _mm512_loadu_ps(x + (size_t)v * cols + k);              \
        for (int r = 0; r < GEMM_R; r++) a##v[r] = _mm512_fmadd_ps(w[r], xv, a##v[r]); \
    }
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
    }
    // Lane 4v+r of s[h]: activation row 4h+v, weight row r (the last four
    // registers are zeros).
#define Q(a) hsum_quad_avx512(hsum_pair_avx512(a[0], a[1]), hsum_pair_avx512(a[2], a[3]))
    const __m512 s[2] = {hsums_last_avx512(hsum_oct_avx512(Q(a0), Q(a1)), hsum_oct_avx512(Q(a2), Q(a3))),
                         hsums_last_avx512(hsum_oct_avx512(Q(a4), Q(a5)), _mm512_setzero_ps())};
#undef Q
    for (int b = 0; b < GEMM_NB; b++) {
        const __m512 sv = s[b / 4];
        __m128 q = b % 4 == 0 ? _mm512_castps512_ps128(sv) : b % 4 == 1 ? _mm512_extractf32x4_ps(sv, 1)
                 : b % 4 == 2 ? _mm512_extractf32x4_ps(sv, 2) : _mm512_extractf32x4_ps(sv, 3);
        if (kend < cols) {  // the scalar tail, as block adds it
            float t[4];
            _mm_storeu_ps(t, q);
            for (int r = 0; r < GEMM_R; r++)
                for (int k = kend; k < cols; k++) {
                    const size_t i = base + (size_t)r * cols + k;
                    const float w = fmt == K_F32 ? wd->wf[i] : fmt == K_BF16 ? k_bf16(wd->wh[i]) : k_f16(wd->wh[i]);
                    t[r] += w * x[(size_t)b * cols + k];
                }
            q = _mm_loadu_ps(t);
        }
        _mm_storeu_ps(out + (size_t)b * ldo + o0, q);
    }
}
// Panel tiles (simd_body.h): 6 activation rows times 4 panels, or the wide
// tile, 12 rows times 2 panels, both 24 sums. The wide tile converts a
// panel's half weights once per 12 rows instead of 6. On Zen 5 the 6x4
// tile ran at 6/7 of the FMA peak, as if each conversion took an FMA's
// slot; the wide tile ran nomic-embed's K=768 products 3-4% faster.
#define PAN_PV 4
#define PAN_WIDE_NB 12
#define PAN_WIDE_PV 2
// Encoder attention (simd_body.h): 6 query rows per block, 24 sums.
#define BI_R 6
#define VTILE(fmt, out, ldo, x, wd, o0) tile_avx512(fmt, out, ldo, x, wd, o0)

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
#undef VTILE
#undef GEMM_R
#undef GEMM_NB

#pragma GCC pop_options

#endif
