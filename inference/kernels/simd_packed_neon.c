//go:build cgo

// Int8 kernels for ARM64 (the packed ones of packed.go and the unpacked
// Q8_0, Q4_0 and MLX 4-bit ones of simd_vnni.c), chosen at run time among
// three variants of one body (simd_packed_neon.h):
//   - i8mm (ARMv8.6): smmla multiplies two weight rows by two activation
//     rows, 8 codes deep, for each pair of activation rows; sdot otherwise;
//   - dotprod (ARMv8.2): sdot, four codes of four rows against a broadcast
//     quad of activations, as vpdpbusd does on x86;
//   - base (every ARMv8-A): the same sums from smull and sadalp.
// Each variant is compiled with its own target pragma, so the binary runs on
// baseline armv8-a. All three give the same integers, and so the same
// results: the file's own codes and scales, activations rounded as on x86
// (k_packed_quant), and sdot, which is signed by signed where vpdpbusd is
// unsigned by signed, sees codes moved into int8 range (see pkn_load).
#include "kernels_internal.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

// Variants (macros, for the #if of simd_packed_neon.h).
#define PKN_BASE 0
#define PKN_DOTPROD 1
#define PKN_I8MM 2

// GCC compiles each variant under its own target pragma; clang builds only
// the variants its target already has (Apple M1 and later: dotprod).
#if !defined(__clang__) || defined(__ARM_FEATURE_DOTPROD)
#define PKN_HAVE_DOTPROD 1
#endif
#if !defined(__clang__) || (defined(__ARM_FEATURE_DOTPROD) && defined(__ARM_FEATURE_MATMUL_INT8))
#define PKN_HAVE_I8MM 1
#endif

static int pkn_has(const char *name) {
#if defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname(name, &v, &len, 0, 0) == 0 && v;
#else
    (void)name;
    return 0;
#endif
}

// pkn_detect is the best variant this CPU runs (i8mm only with dotprod).
static int pkn_detect(void) {
    int dp = 0, mm = 0;
#if defined(__linux__)
    dp = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    mm = (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#elif defined(__APPLE__)
    dp = pkn_has("hw.optional.arm.FEAT_DotProd");
    mm = pkn_has("hw.optional.arm.FEAT_I8MM");
#endif
    (void)pkn_has;
#ifndef PKN_HAVE_DOTPROD
    dp = 0;
#endif
#ifndef PKN_HAVE_I8MM
    mm = 0;
#endif
    return dp ? (mm ? PKN_I8MM : PKN_DOTPROD) : PKN_BASE;
}

static int pkn_variant = -1;

static int pkn_get(void) {
    if (pkn_variant < 0) pkn_variant = pkn_detect();
    return pkn_variant;
}

int k_has_vnni(void) { return 0; }
// Called once at package init, before any kernel runs, so that the variant
// is set before threads read it.
int k_has_neon_i8(void) {
    pkn_get();
    return 1;
}

int k_neon_i8_variant(void) { return pkn_get(); }

int k_neon_i8_set(int v) {
    const int best = pkn_detect();
    pkn_variant = v < 0 || v > best ? best : v;
    return pkn_variant;
}

/* ---------------------- shared parts (plain NEON) ------------------------ */

// sdot's sums from widening multiplies: lane i gets the products of bytes
// 4i..4i+3. Codes are at least -128 and activations at least -127, so a
// pair of products fits int16.
static inline __attribute__((always_inline)) int32x4_t pkn_dot_base(int32x4_t acc, int8x16_t w, int8x16_t x) {
    const int16x8_t p0 = vmull_s8(vget_low_s8(w), vget_low_s8(x)), p1 = vmull_high_s8(w, x);
    return vpadalq_s16(acc, vpaddq_s16(p0, p1));
}

// One quarter (4 rows) of a 16-row block: 16 bytes of each 64-byte vector
// of the x86 layout (cp is already at the quarter). w[i] holds elements
// 4i..4i+3 of each row, w[4+i] elements 16+4i..16+4i+3, as int8: Q8_0
// codes back from code+128; Q5_0 and Q6_K less their offset (16, 32) in the
// first half and their scaled second half (8q, 4q) less 128, which is the
// same offset scaled, so that their sums need no correction; 4-bit codes
// as they are (0..15), corrected by xc as on x86. The unsigned kinds
// (K_PK_U8 as K_PK_Q8, K_PK_Q5U and K_PK_Q5K as K_PK_Q5) load the same way
// and take xc (-128 or -16 times the activation sum) back off.
// The narrow layouts (kernels.h) build the unsigned byte vectors of the
// x86 load (pk_load_narrow) and then take what pkn_load takes from their
// K_PK_BASE kind's: 128 for K_PK_U8's, 32 and 128 (from 4q) for K_PK_Q6K's.
static inline __attribute__((always_inline)) void pkn_load_narrow(int8x16_t w[8], const uint8_t *cp, const int LK) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f), x80 = vdupq_n_u8(0x80);
    uint8x16_t u[8];
    if (LK == K_PK_U5 || LK == K_PK_U6) {
        const uint8x16_t h = vld1q_u8(cp + 256), h2 = LK == K_PK_U6 ? vld1q_u8(cp + 320) : h;
        const uint8x16_t mh = vdupq_n_u8(LK == K_PK_U5 ? 0x10 : 0x30);
        for (int i = 0; i < 4; i++) {
            const uint8x16_t v = vld1q_u8(cp + 64 * i);
            uint8x16_t ha, hb;
            if (LK == K_PK_U5) { // bit i (and 4+i) of h to bit 4
                ha = i == 0 ? vshlq_n_u8(h, 4) : i == 1 ? vshlq_n_u8(h, 3) : i == 2 ? vshlq_n_u8(h, 2) : vshlq_n_u8(h, 1);
                hb = i == 0 ? h : i == 1 ? vshrq_n_u8(h, 1) : i == 2 ? vshrq_n_u8(h, 2) : vshrq_n_u8(h, 3);
            } else { // crumb i of h (w[i]) and of h2 (w[4+i]) to bits 4..5
                ha = i == 0 ? vshlq_n_u8(h, 4) : i == 1 ? vshlq_n_u8(h, 2) : i == 2 ? h : vshrq_n_u8(h, 2);
                hb = i == 0 ? vshlq_n_u8(h2, 4) : i == 1 ? vshlq_n_u8(h2, 2) : i == 2 ? h2 : vshrq_n_u8(h2, 2);
            }
            u[i] = vorrq_u8(vandq_u8(v, m4), vandq_u8(ha, mh));
            u[4 + i] = vorrq_u8(vshrq_n_u8(v, 4), vandq_u8(hb, mh));
        }
        for (int i = 0; i < 8; i++) w[i] = vreinterpretq_s8_u8(veorq_u8(u[i], x80));
        return;
    }
    const uint8x16_t m3 = vdupq_n_u8(0x03);
    for (int j = 0; j < 2; j++) {
        const uint8x16_t p = vld1q_u8(cp + 64 * j);
        u[4 * j] = vandq_u8(p, m3);
        u[4 * j + 1] = vandq_u8(vshrq_n_u8(p, 2), m3);
        u[4 * j + 2] = vandq_u8(vshrq_n_u8(p, 4), m3);
        u[4 * j + 3] = vshrq_n_u8(p, 6);
    }
    if (LK == K_PK_Q3K || LK == K_PK_U3) { // bit i of h to bit 2
        const uint8x16_t h = vld1q_u8(cp + 128), m04 = vdupq_n_u8(0x04);
        const uint8x16_t hs[8] = {vshlq_n_u8(h, 2), vshlq_n_u8(h, 1), h, vshrq_n_u8(h, 1),
                                  vshrq_n_u8(h, 2), vshrq_n_u8(h, 3), vshrq_n_u8(h, 4), vshrq_n_u8(h, 5)};
        for (int i = 0; i < 8; i++) u[i] = vorrq_u8(u[i], vandq_u8(hs[i], m04));
    }
    if (LK == K_PK_Q3K) { // K_PK_Q6K's q+28 less 32, and 4(q+28) less 128
        for (int i = 0; i < 4; i++) {
            w[i] = vreinterpretq_s8_u8(vsubq_u8(u[i], vdupq_n_u8(4)));
            w[4 + i] = vreinterpretq_s8_u8(veorq_u8(vshlq_n_u8(vaddq_u8(u[4 + i], vdupq_n_u8(28)), 2), x80));
        }
        return;
    }
    for (int i = 0; i < 8; i++) w[i] = vreinterpretq_s8_u8(u[i]);
}

static inline __attribute__((always_inline)) void pkn_load(int8x16_t w[8], const uint8_t *cp, const int KIND) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f), mf0 = vdupq_n_u8(0xf0), x80 = vdupq_n_u8(0x80);
    if (KIND == K_PK_Q2K || KIND >= K_PK_Q3K) {
        pkn_load_narrow(w, cp, KIND);
    } else if (KIND == K_PK_Q8 || KIND == K_PK_U8) {
        for (int i = 0; i < 8; i++) w[i] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(cp + 64 * i), x80));
    } else if (KIND == K_PK_Q5 || KIND == K_PK_Q5U || KIND == K_PK_Q5K) {
        const uint8x16_t h = vld1q_u8(cp + 256), m10 = vdupq_n_u8(0x10), m08 = vdupq_n_u8(0x08);
        const uint8x16_t sa[4] = {h, vshrq_n_u8(h, 1), vshrq_n_u8(h, 2), vshrq_n_u8(h, 3)};
        const uint8x16_t sb[4] = {h, vshlq_n_u8(h, 1), vshlq_n_u8(h, 2), vshlq_n_u8(h, 3)};
        for (int i = 0; i < 4; i++) {
            const uint8x16_t v = vld1q_u8(cp + 64 * i);
            w[i] = vreinterpretq_s8_u8(vsubq_u8(vorrq_u8(vandq_u8(v, m4), vandq_u8(sa[i], m10)), m10));
            w[4 + i] = vreinterpretq_s8_u8(veorq_u8(vorrq_u8(vandq_u8(v, mf0), vandq_u8(sb[i], m08)), x80));
        }
    } else if (KIND == K_PK_Q6K) {
        const uint8x16_t ha = vld1q_u8(cp + 256), hb = vld1q_u8(cp + 320);
        const uint8x16_t m30 = vdupq_n_u8(0x30), m0c = vdupq_n_u8(0x0c), m20 = vdupq_n_u8(0x20);
        const uint8x16_t sa[4] = {vshlq_n_u8(ha, 4), vshlq_n_u8(ha, 2), ha, vshrq_n_u8(ha, 2)};
        const uint8x16_t sb[4] = {vshlq_n_u8(hb, 2), hb, vshrq_n_u8(hb, 2), vshrq_n_u8(hb, 4)};
        for (int i = 0; i < 4; i++) {
            const uint8x16_t v = vld1q_u8(cp + 64 * i);
            w[i] = vreinterpretq_s8_u8(vsubq_u8(vorrq_u8(vandq_u8(v, m4), vandq_u8(sa[i], m30)), m20));
            w[4 + i] = vreinterpretq_s8_u8(veorq_u8(vorrq_u8(vandq_u8(v, mf0), vandq_u8(sb[i], m0c)), x80));
        }
    } else {
        for (int i = 0; i < 4; i++) {
            const uint8x16_t v = vld1q_u8(cp + 64 * i);
            w[i] = vreinterpretq_s8_u8(vandq_u8(v, m4));
            w[4 + i] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
        }
    }
}

// 4 scales (or biases) of one quarter in storage format sfmt.
static inline __attribute__((always_inline)) float32x4_t pkn_load4(const void *p, size_t at, int sfmt) {
    if (sfmt == K_PK_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)p + at)));
    if (sfmt == K_PK_BF16) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)p + at), 16));
    return vld1q_f32((const float *)p + at);
}

// 4 int8 (or uint8) sub-block scales of one quarter as floats times d.
static inline __attribute__((always_inline)) float32x4_t pkn_sub4(const uint8_t *p, float32x4_t d, int sgn) {
    uint32_t t;
    memcpy(&t, p, 4);
    const uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(t));
    const float32x4_t s = sgn ? vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u8(b)))))
                              : vcvtq_f32_u32(vmovl_u16(vget_low_u16(vmovl_u8(b))));
    return vmulq_f32(d, s);
}

// Q2_K's 4 sub-block scales (hi 0) or mins (hi 1), from the nibbles of
// its bytes, as floats times d.
static inline __attribute__((always_inline)) float32x4_t pkn_sub4n(const uint8_t *p, float32x4_t d, int hi) {
    uint32_t t;
    memcpy(&t, p, 4);
    uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(t));
    b = hi ? vshr_n_u8(b, 4) : vand_u8(b, vdup_n_u8(0x0f));
    return vmulq_f32(d, vcvtq_f32_u32(vmovl_u16(vget_low_u16(vmovl_u8(b)))));
}

// 32 floats to int8 as k_packed_quant does on x86: q = round-to-even(x *
// (127/amax)), d = amax/127 (NaN when the block holds one); returns d and
// sets s0, s1 to the sums of the codes of each half.
static inline float pkn_quant32(int8_t *q, const float *p, int32_t *s0, int32_t *s1) {
    float32x4_t a[8];
    float32x4_t m = vdupq_n_f32(0);
    uint32x4_t ok = vdupq_n_u32(~0u);
    for (int j = 0; j < 8; j++) {
        a[j] = vld1q_f32(p + 4 * j);
        m = vmaxq_f32(m, vabsq_f32(a[j]));
        ok = vandq_u32(ok, vceqq_f32(a[j], a[j]));
    }
    const int nan = vminvq_u32(ok) == 0;
    const float amax = nan ? 0.0f : vmaxvq_f32(m);
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    int32x4_t i[8];
    for (int j = 0; j < 8; j++) i[j] = vcvtnq_s32_f32(vmulq_f32(a[j], vdupq_n_f32(id)));
    for (int h = 0; h < 2; h++) {
        const int32x4_t *v = i + 4 * h;
        const int16x8_t lo = vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1]));
        const int16x8_t hi = vcombine_s16(vqmovn_s32(v[2]), vqmovn_s32(v[3]));
        vst1q_s8(q + 16 * h, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
    }
    *s0 = vaddvq_s32(vaddq_s32(vaddq_s32(i[0], i[1]), vaddq_s32(i[2], i[3])));
    *s1 = vaddvq_s32(vaddq_s32(vaddq_s32(i[4], i[5]), vaddq_s32(i[6], i[7])));
    return nan ? NAN : amax / 127.0f;
}

void k_packed_quant(int8_t *q, float *d, int32_t *c, float *e, const float *x, int n, int cols, int off, int hoff,
                    int group) {
    const int nb = cols / 32, bpg = group > 0 ? group / 32 : 0, ng = group > 0 ? cols / group : 0;
    for (int b = 0; b < n; b++) {
        float eg = 0;
        for (int k = 0; k < nb; k++) {
            int32_t s0, s1;
            const size_t at = (size_t)b * nb + k;
            const float dk = pkn_quant32(q + (size_t)b * cols + (size_t)k * 32, x + (size_t)b * cols + (size_t)k * 32,
                                         &s0, &s1);
            d[at] = dk;
            if (hoff) {
                c[2 * at] = -off * s0;
                c[2 * at + 1] = -hoff * s1;
            } else {
                c[at] = -off * (s0 + s1);
            }
            if (bpg) {
                eg += dk * (float)(s0 + s1);
                if ((k + 1) % bpg == 0) {
                    e[(size_t)b * ng + k / bpg] = eg;
                    eg = 0;
                }
            }
        }
    }
}

// Unpacked path: every block of x in natural order, except that MLX 4-bit
// blocks put their even elements first (the low nibbles of the weight
// bytes), then the odd ones. s holds the block sums; dv and cv, which the
// x86 kernels fill, are not used here.
void k_quant_act_i8(int8_t *q, float *d, int32_t *s, float *dv, int32_t *cv, const float *x, int n, int cols,
                    int type) {
    (void)dv, (void)cv;
    const int nb = cols / 32;
    float t[32];
    for (int b = 0; b < n; b++) {
        for (int k = 0; k < nb; k++) {
            const float *p = x + (size_t)b * cols + (size_t)k * 32;
            if (type == K_I8_MLX4) {
                const float32x4x2_t u0 = vld2q_f32(p), u1 = vld2q_f32(p + 8), u2 = vld2q_f32(p + 16),
                                    u3 = vld2q_f32(p + 24);
                vst1q_f32(t, u0.val[0]), vst1q_f32(t + 4, u1.val[0]), vst1q_f32(t + 8, u2.val[0]);
                vst1q_f32(t + 12, u3.val[0]), vst1q_f32(t + 16, u0.val[1]), vst1q_f32(t + 20, u1.val[1]);
                vst1q_f32(t + 24, u2.val[1]), vst1q_f32(t + 28, u3.val[1]);
                p = t;
            }
            int32_t s0, s1;
            d[(size_t)b * nb + k] = pkn_quant32(q + (size_t)b * cols + (size_t)k * 32, p, &s0, &s1);
            s[(size_t)b * nb + k] = s0 + s1;
        }
    }
}

/* ------------------------------ variants --------------------------------- */

#define PKN_SFX base
#define PKN_MODE PKN_BASE
#include "simd_packed_neon.h"
#undef PKN_SFX
#undef PKN_MODE

#ifdef PKN_HAVE_DOTPROD
#ifndef __clang__
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#define PKN_SFX dotprod
#define PKN_MODE PKN_DOTPROD
#include "simd_packed_neon.h"
#undef PKN_SFX
#undef PKN_MODE
#ifndef __clang__
#pragma GCC pop_options
#endif
#define PKN_CASE_DOTPROD(call) case PKN_DOTPROD: call(dotprod); break;
#else
#define PKN_CASE_DOTPROD(call)
#endif

#ifdef PKN_HAVE_I8MM
#ifndef __clang__
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod+i8mm")
#endif
#define PKN_SFX i8mm
#define PKN_MODE PKN_I8MM
#include "simd_packed_neon.h"
#undef PKN_SFX
#undef PKN_MODE
#ifndef __clang__
#pragma GCC pop_options
#endif
#define PKN_CASE_I8MM(call) case PKN_I8MM: call(i8mm); break;
#else
#define PKN_CASE_I8MM(call)
#endif

#define PKN_DISPATCH(call)                             \
    switch (pkn_get()) {                               \
    PKN_CASE_I8MM(call)                                \
    PKN_CASE_DOTPROD(call)                             \
    default: call(base); break;                        \
    }

void k_matmul_packed(float *out, const int8_t *xq, const float *xd, const int32_t *xc, const float *xe, int n,
                     const uint8_t *codes, const void *sc, const void *bi, int kind, int sfmt, int group, int rows,
                     int cols, int lo, int hi) {
#define PKN_CALL(sfx) pkn_matmul_packed_##sfx(out, xq, xd, xc, xe, n, codes, sc, bi, kind, sfmt, group, rows, cols, lo, hi)
    PKN_DISPATCH(PKN_CALL)
#undef PKN_CALL
}

void k_matmul_gguf_i8(float *out, const int8_t *xq, const float *xd, const int32_t *xs, const float *xdv,
                      const int32_t *xc, int n, const uint8_t *w, int type, int rows, int cols, int lo, int hi) {
    (void)xdv, (void)xc;
#define PKN_CALL(sfx) pkn_matmul_gguf_i8_##sfx(out, xq, xd, xs, n, w, type, rows, cols, lo, hi)
    PKN_DISPATCH(PKN_CALL)
#undef PKN_CALL
}

void k_matmul_mlx4_i8(float *out, const int8_t *xq, const float *xd, const int32_t *xs, const float *xdv,
                      const int32_t *xc, int n, const uint32_t *wq, const float *sc, const float *bi, int group,
                      int rows, int cols, int lo, int hi) {
    (void)xdv, (void)xc;
#define PKN_CALL(sfx) pkn_matmul_mlx4_i8_##sfx(out, xq, xd, xs, n, wq, sc, bi, group, rows, cols, lo, hi)
    PKN_DISPATCH(PKN_CALL)
#undef PKN_CALL
}

#else

int k_has_neon_i8(void) { return 0; }
int k_neon_i8_variant(void) { return -1; }
int k_neon_i8_set(int v) {
    (void)v;
    return -1;
}

#endif
