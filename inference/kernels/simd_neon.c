//go:build cgo

// NEON instance of simd_body.h: every AArch64 CPU has Advanced SIMD with
// fused multiply-add and half-precision conversion, so no run-time check.
#if defined(__aarch64__)

#include <arm_neon.h>

#include "kernels_internal.h"

// One 32-bit code lane per byte of 4 bytes.
static inline uint32x4_t u8x4_neon(const uint8_t *p) {
    uint32_t t;
    memcpy(&t, p, 4);
    return vmovl_u16(vget_low_u16(vmovl_u8(vcreate_u8(t))));
}

// n (<= 8) bytes at p into the low bytes of a vector; reads 8 bytes when
// that stays inside the row.
static inline uint32x4_t bytes_neon(const uint8_t *p, int n, size_t avail) {
    uint64_t u = 0;
    if (avail >= 8) memcpy(&u, p, 8);
    else memcpy(&u, p, (size_t)n);
    return vreinterpretq_u32_u64(vcombine_u64(vcreate_u64(u), vcreate_u64(0)));
}

// Four sign-extended int8 codes, as unsigned lanes (VCVTSI reads them signed).
static inline uint32x4_t s8x4_neon(const uint8_t *p) {
    uint32_t t;
    memcpy(&t, p, 4);
    return vreinterpretq_u32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u32(vcreate_u32(t))))));
}

#define W 4
#define VF float32x4_t
#define VI uint32x4_t
#define NB_MAX 4
#define R_MAX 4
#define RQ_MAX 2
#define NB_CASES(C) C(1) C(2) C(3) C(4)
#define SFX(name) name##_neon
#define VZERO() vdupq_n_f32(0.0f)
#define VLOAD(p) vld1q_f32(p)
#define VSTORE(p, v) vst1q_f32(p, v)
#define VSET1(f) vdupq_n_f32(f)
#define VFMA(a, b, c) vfmaq_f32(c, a, b)
#define VFNMA(a, b, c) vfmsq_f32(c, a, b)
#define VADD(a, b) vaddq_f32(a, b)
#define VSUB(a, b) vsubq_f32(a, b)
#define VMUL(a, b) vmulq_f32(a, b)
#define VDIV(a, b) vdivq_f32(a, b)
#define VMAX(a, b) vmaxq_f32(a, b)
#define VMIN(a, b) vminq_f32(a, b)
#define VHSUM(v) vaddvq_f32(v)
#define VHMAX(v) vmaxvq_f32(v)
#define VROUND(v) vrndnq_f32(v)
#define VPOW2I(n) vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23))
#define VLOAD_BF16(p) vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16))
#define VLOAD_F16(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))
#define VSET1I(i) vdupq_n_u32(i)
#define VLOADI(p) vreinterpretq_u32_u8(vld1q_u8((const uint8_t *)(p)))
#define VLOAD_U8I(p) u8x4_neon(p)
#define VANDI(a, b) vandq_u32(a, b)
#define VSRLI(a, n) vshrq_n_u32(a, n)
#define VSLLI(a, n) vshlq_n_u32(a, n)
#define VORI(a, b) vorrq_u32(a, b)
#define VSRLV(a, s) vshlq_u32(a, vnegq_s32(vreinterpretq_s32_u32(s)))
#define VCVTI(a) vcvtq_f32_u32(a)
#define SF16(h) vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0)
#define VKEEP_GE(r, x, lim) vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(r), vcgeq_f32(x, lim)))
#define VCVTSI(a) vcvtq_f32_s32(vreinterpretq_s32_u32(a))
#define VLOAD_S8I(p) s8x4_neon(p)
#define VLOAD_BYTES(p, n, avail) bytes_neon(p, n, avail)
#define VSHUF_BYTES(a, c) vreinterpretq_u32_u8(vqtbl1q_u8(vreinterpretq_u8_u32(a), vreinterpretq_u8_u32(c)))

// Encoder attention (simd_body.h): 4 query rows per block, 16 sums of the
// 32 registers.
#define BI_R 4

#include "simd_body.h"
K_DEFINE_LEVEL(neon)

#endif
