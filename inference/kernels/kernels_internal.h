// Helpers shared by the scalar C kernels and the SIMD bodies.
#ifndef IMPETUS_KERNELS_INTERNAL_H
#define IMPETUS_KERNELS_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

// Weight formats of the SIMD matmul kernel, and its view of the weights.
// Formats from K_QUANT on have groups with a scale and a bias.
enum {
    K_F32, K_BF16, K_F16, K_QUANT, K_MLX4 = K_QUANT, K_MLX8, K_MLXG,
    K_Q8_0, K_Q4_0, K_Q4_1, K_Q5_0, K_Q5_1, K_Q4_K, K_Q5_K, K_Q6_K
};

// Bytes of one row of a GGUF block type (by ggml id).
static inline size_t k_gguf_row_bytes(int type, int cols) {
    switch (type) {
    case 8: return (size_t)(cols / 32) * 34;
    case 2: return (size_t)(cols / 32) * 18;
    case 3: return (size_t)(cols / 32) * 20;
    case 6: return (size_t)(cols / 32) * 22;
    case 7: return (size_t)(cols / 32) * 24;
    case 10: return (size_t)(cols / 256) * 84;
    case 11: return (size_t)(cols / 256) * 110;
    case 12: return (size_t)(cols / 256) * 144;
    case 13: return (size_t)(cols / 256) * 176;
    default: return (size_t)(cols / 256) * 210;
    }
}

// One row of a GGUF block type to floats (kernels.c).
void k_dequant_gguf_row(float *dst, const uint8_t *src, int type, int cols);

// Pair j (0..7) of the 6-bit scales and mins packed in 12 bytes (Q4_K).
static inline void k_q4k_scale_min(const uint8_t *q, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}
typedef struct {
    const float *wf;     // K_F32
    const uint16_t *wh;  // K_BF16, K_F16
    const uint8_t *wb;   // MLX codes
    size_t rowBytes;
    const float *sc, *bi;
    int cols, bits, group, groups;
    int8_t bx_ctrl[2][64];  // bit extraction for other widths (SIMD bitx_setup)
    int32_t bx_shift[2][16];
    int bx_bytes, bx_hioff;
} k_weights;

// 0, 1, 2, ...: per-lane shift counts (Q5_0, Q5_1).
static const int32_t k_iota[48] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                   16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                                   32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47};

static inline float k_bf16(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static inline float k_f16(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, b;
    if (exp == 0) {
        if (man == 0) {
            b = sign;
        } else {  // subnormal: normalise the mantissa
            uint32_t e = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; e--; }
            b = sign | e << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 0x1f) {
        b = sign | 0xffu << 23 | man << 13;
    } else {
        b = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &b, 4);
    return f;
}

// Reads a little-endian LSB-first bit stream one code at a time, touching
// only the bytes that hold the codes (never past the end of a row).
typedef struct {
    const uint8_t *p;
    uint64_t buf;
    int nb;
} k_bitreader;

static inline void k_unpack(k_bitreader *r, float *dst, int count, int bits) {
    const uint64_t mask = (1u << bits) - 1;
    for (int j = 0; j < count; j++) {
        while (r->nb < bits) {
            r->buf |= (uint64_t)*r->p++ << r->nb;
            r->nb += 8;
        }
        dst[j] = (float)(r->buf & mask);
        r->buf >>= bits;
        r->nb -= bits;
    }
}

// Flash attention's blocking (simd_attn.h): cache positions per chunk and
// query rows per prefill tile.
#define K_ATTN_CHUNK 128
#define K_ATTN_TILE 16

// Encoder attention's blocking (simd_body.h's attn_bidir), the most of any
// level: query rows per block and keys per score block.
#define K_BI_MAX_ROWS 6
#define K_BI_KEY_BLOCK 64

// Element x of a q8_0 KV head row (blocks of an IEEE half scale and 32
// int8 codes): the scalar form of the SIMD levels' q8_0 loads.
static inline float k_kv_q8_at(const uint8_t *row, int x) {
    const uint8_t *b = row + (size_t)(x >> 5) * 34;
    uint16_t h;
    memcpy(&h, b, 2);
    return (float)(int8_t)b[2 + (x & 31)] * k_f16(h);
}

static inline void k_attn_range(int pos, int nKV, int window, int *lo, int *hi) {
    if (window < 0) { /* bidirectional (encoders): every position */
        *lo = 0;
        *hi = nKV;
        return;
    }
    *hi = pos + 1 < nKV ? pos + 1 : nKV;
    *lo = 0;
    if (window > 0 && pos - window + 1 > 0) *lo = pos - window + 1;
}

static inline float k_gelu(float v) {
    float y = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    return v / (1.0f + expf(-2.0f * y));
}

// Where a packed kernel prefetches (k_set_pk_prefetch): every address that
// is a multiple of step within a block, dist bytes ahead.
typedef struct {
    size_t dist, step;
} k_pf;

// The prefetch plan of a packed matmul over n activation rows at a time.
k_pf k_pk_prefetch_plan(int n);

// Prefetches the block [cp, cp+bytes) as plan pf says: with step 64 every
// line (blocks are whole lines), with a larger step at most one line, so
// that only every step bytes of the stream get a hint.
static inline __attribute__((always_inline)) void k_pf_block(const uint8_t *cp, size_t bytes, k_pf pf) {
    uintptr_t a = ((uintptr_t)cp + pf.step - 1) & ~(uintptr_t)(pf.step - 1);
    for (; a < (uintptr_t)cp + bytes; a += pf.step) __builtin_prefetch((const void *)(a + pf.dist), 0, 3);
}

// Prefetches the first dist bytes of a run of blocks from p that a sparse
// plan would have prefetched before it, had the stream started earlier: a
// chunk of rows starts cold (a matrix, or a thread's next chunk).
static inline void k_pf_start(const uint8_t *p, k_pf pf) {
    if (pf.step <= 64) return;
    uintptr_t a = ((uintptr_t)p + pf.step - 1) & ~(uintptr_t)(pf.step - 1);
    for (; a < (uintptr_t)p + pf.dist; a += pf.step) __builtin_prefetch((const void *)a, 0, 3);
}

// Packed int8 kernels per x86 variant (simd_packed.c, simd_packed_avx2.c),
// with the arguments of k_packed_quant and k_matmul_packed.
#define K_DECLARE_PACKED(sfx)                                                                                  \
    void pk_matmul_##sfx(float *, const int8_t *, const float *, const int32_t *, const float *, int,          \
                         const uint8_t *, const void *, const void *, int, int, int, int, int, int, int);
K_DECLARE_PACKED(avx512)
K_DECLARE_PACKED(avx2)
K_DECLARE_PACKED(avxvnni)
void pk_quant_avx512(int8_t *, float *, int32_t *, float *, const float *, int, int, int, int, int);
void pk_quant_avx2(int8_t *, float *, int32_t *, float *, const float *, int, int, int, int, int);

#define K_DECLARE_LEVEL(sfx)                                                                                   \
    void k_mm_f32_##sfx(float *, const float *, int, const float *, int, int, int, int);                   \
    void k_mm_half_##sfx(float *, const float *, int, const uint16_t *, int, int, int, int, float *, int);  \
    void k_mm_mlx_##sfx(float *, const float *, int, const uint32_t *, const float *, const float *, int, int, \
                        int, int, int, int, float *);                                                      \
    void k_attention_##sfx(float *, float *, const float *, int, int, const float *, const float *, int, int, \
                           int, int, float, float, int, int, int, float *);                                \
    void k_attention_f16_##sfx(float *, float *, const float *, int, int, const uint16_t *, const uint16_t *, \
                               int, int, int, int, float, float, int, int, int, float *);                  \
    void k_attention_q8_##sfx(float *, float *, const float *, int, int, const uint8_t *, const uint8_t *,   \
                              int, int, int, int, float, float, int, int, int, float *);                   \
    void k_attention_merge_##sfx(float *, const float *, int, int, int, int, int, int, int, int, float *);   \
    void k_rmsnorm_##sfx(float *, const float *, const float *, int, int, float, int);                     \
    void k_softmax_##sfx(float *, size_t);                                                                 \
    void k_silu_mul_##sfx(float *, const float *, size_t);                                                 \
    void k_gelu_mul_##sfx(float *, const float *, size_t);                                                 \
    void k_gelu_erf_##sfx(float *, size_t);                                                                \
    void k_add_##sfx(float *, const float *, size_t);                                                     \
    void k_layernorm_##sfx(float *, const float *, const float *, const float *, const float *, int, int, float); \
    int k_mlx_prep_##sfx(float *, const float *, int, int, int);                                          \
    void k_mm_gguf_##sfx(float *, const float *, int, const uint8_t *, int, int, int, int, int, float *);   \
    void k_mm_panels_##sfx(float *, const float *, int, const void *, int, int, int, int, int);          \
    void k_attn_bidir_##sfx(float *, const float *, const float *, const float *, int, int, int, float, int, int, \
                            float *);

K_DECLARE_LEVEL(avx2)
K_DECLARE_LEVEL(avx512)
K_DECLARE_LEVEL(neon)

// Exported wrappers for one SIMD level, placed after simd_body.h.
#define K_DEFINE_LEVEL(sfx)                                                                                      \
    void k_mm_f32_##sfx(float *o, const float *x, int n, const float *w, int rows, int cols, int lo, int hi) {   \
        mm_f32_##sfx(o, x, n, w, rows, cols, lo, hi);                                                          \
    }                                                                                                          \
    void k_mm_half_##sfx(float *o, const float *x, int n, const uint16_t *w, int rows, int cols, int lo, int hi, \
                         float *s, int bf16) {                                                                 \
        mm_half_##sfx(o, x, n, w, rows, cols, lo, hi, s, bf16);                                                \
    }                                                                                                          \
    void k_mm_panels_##sfx(float *o, const float *x, int n, const void *w, int fmt, int rows, int cols, int lo, \
                           int hi) {                                                                           \
        mm_panels_##sfx(o, x, n, w, fmt, rows, cols, lo, hi);                                                  \
    }                                                                                                          \
    void k_attn_bidir_##sfx(float *o, const float *q, const float *k, const float *v, int n, int nh, int hd,   \
                            float scale, int lo, int hi, float *s) {                                           \
        attn_bidir_##sfx(o, q, k, v, n, nh, hd, scale, lo, hi, s);                                             \
    }                                                                                                          \
    void k_mm_mlx_##sfx(float *o, const float *x, int n, const uint32_t *wq, const float *sc, const float *bi,  \
                        int rows, int cols, int bits, int group, int lo, int hi, float *s) {                   \
        mm_mlx_##sfx(o, x, n, wq, sc, bi, rows, cols, bits, group, lo, hi, s);                                 \
    }                                                                                                          \
    void k_attention_##sfx(float *o, float *pt, const float *q, int nq, int pos0, const float *k, const float *v, \
                           int nKV, int nh, int nkv, int hd, float scale, float cap, int win, int lo, int hi,   \
                           float *s) {                                                                         \
        attention_##sfx(o, pt, q, nq, pos0, k, v, nKV, nh, nkv, hd, scale, cap, win, lo, hi, s);               \
    }                                                                                                          \
    void k_attention_f16_##sfx(float *o, float *pt, const float *q, int nq, int pos0, const uint16_t *k,       \
                               const uint16_t *v, int nKV, int nh, int nkv, int hd, float scale, float cap,    \
                               int win, int lo, int hi, float *s) {                                            \
        attention_f16_##sfx(o, pt, q, nq, pos0, k, v, nKV, nh, nkv, hd, scale, cap, win, lo, hi, s);           \
    }                                                                                                          \
    void k_attention_q8_##sfx(float *o, float *pt, const float *q, int nq, int pos0, const uint8_t *k,         \
                              const uint8_t *v, int nKV, int nh, int nkv, int hd, float scale, float cap,      \
                              int win, int lo, int hi, float *s) {                                             \
        attention_q8_##sfx(o, pt, q, nq, pos0, k, v, nKV, nh, nkv, hd, scale, cap, win, lo, hi, s);            \
    }                                                                                                          \
    void k_attention_merge_##sfx(float *o, const float *pt, int pos0, int nKV, int nh, int nkv, int hd,        \
                                 int win, int lo, int hi, float *s) {                                          \
        attention_merge_##sfx(o, pt, pos0, nKV, nh, nkv, hd, win, lo, hi, s);                                  \
    }                                                                                                          \
    void k_rmsnorm_##sfx(float *o, const float *x, const float *w, int n, int dim, float eps, int addOne) {     \
        rmsnorm_##sfx(o, x, w, n, dim, eps, addOne);                                                           \
    }                                                                                                          \
    void k_softmax_##sfx(float *x, size_t n) { softmax_##sfx(x, n); }                                          \
    void k_silu_mul_##sfx(float *g, const float *u, size_t n) { silu_mul_##sfx(g, u, n); }                     \
    void k_gelu_mul_##sfx(float *g, const float *u, size_t n) { gelu_mul_##sfx(g, u, n); }                     \
    void k_gelu_erf_##sfx(float *x, size_t n) { gelu_erf_##sfx(x, n); }                                        \
    void k_add_##sfx(float *d, const float *s, size_t n) { add_##sfx(d, s, n); }                              \
    void k_layernorm_##sfx(float *o, const float *x, const float *a, const float *w, const float *b, int n, int dim, \
                           float eps) {                                                                        \
        layernorm_##sfx(o, x, a, w, b, n, dim, eps);                                                           \
    }                                                                                                          \
    int k_mlx_prep_##sfx(float *d, const float *x, int n, int cols, int bits) { return mlx_prep_##sfx(d, x, n, cols, bits); } \
    void k_mm_gguf_##sfx(float *o, const float *x, int n, const uint8_t *w, int type, int rows, int cols, int lo, int hi, \
                         float *s) {                                                                              \
        mm_gguf_##sfx(o, x, n, w, type, rows, cols, lo, hi, s);                                                  \
    }

#endif
