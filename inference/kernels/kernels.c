//go:build cgo

// Run-time dispatch and the scalar C level, which every CPU can run and
// which the tests check like the SIMD levels.
#include <stdlib.h>

#include "kernels_internal.h"

static int level = -1;

int k_detect(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return K_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return K_AVX2;
#elif defined(__aarch64__)
    return K_NEON;
#endif
    return K_SCALAR;
}

int k_set_level(int lvl) {
    int best = k_detect();
    // Levels are ordered on x86 (scalar < AVX2 < AVX-512); NEON stands alone.
    if (lvl < 0 || (best == K_NEON ? (lvl != K_NEON && lvl != K_SCALAR) : lvl > best)) lvl = best;
    level = lvl;
    return level;
}

int k_level(void) {
    if (level < 0) level = k_detect();
    return level;
}

int k_has_avxvnni(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
#else
    return 0;
#endif
}

static int avxvnni_off = 0;

int k_set_avxvnni(int on) {
    const int prev = !avxvnni_off;
    avxvnni_off = !on;
    return prev;
}

static int pf_mode = K_PF_AUTO;

int k_set_pk_prefetch(int mode) {
    const int prev = pf_mode;
    pf_mode = mode == K_PF_DENSE || mode == K_PF_SPARSE ? mode : K_PF_AUTO;
    return prev;
}

static int is_amd(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_is("amd");
#else
    return 0;
#endif
}

k_pf k_pk_prefetch_plan(int n) {
    static int amd = -1;
    if (amd < 0) amd = is_amd();
    int m = pf_mode;
    if (m == K_PF_AUTO) m = n == 1 && amd ? K_PF_SPARSE : K_PF_DENSE;
    return m == K_PF_SPARSE ? (k_pf){16384, 2048} : (k_pf){4096, 64};
}

int k_pk_level(void) {
#if defined(__x86_64__)
    const int lvl = k_level();
    if (lvl != K_AVX2 && lvl != K_AVX512) return K_PKL_NONE;
    // AVX-512 without VNNI (Skylake-X) runs the AVX2 kernels.
    if (lvl == K_AVX512 && k_has_vnni()) return K_PKL_AVX512;
    return k_has_avxvnni() && !avxvnni_off ? K_PKL_AVXVNNI : K_PKL_AVX2;
#else
    return K_PKL_NONE;
#endif
}

size_t k_matmul_scratch(int n, int cols) {
    // The scalar level decodes one row at a time; the SIMD levels keep the
    // group sums of every activation row (groups of at least 32).
    const size_t sums = (size_t)n * (size_t)(cols / 32);
    return sums > (size_t)cols ? sums : (size_t)cols;
}

/* ------------------------------- scalar C --------------------------------- */

static float dot_scalar(const float *a, const float *b, int n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

// Decodes one weight row at a time into scratch and reuses it for all n
// activation rows.
static void mm_rows_scalar(float *out, const float *x, int n, int rows, int cols, int lo, int hi, float *row,
                           const float *wf, const uint16_t *wh, int bf16, const uint32_t *wq, const float *sc,
                           const float *bi, int bits, int group) {
    for (int o = lo; o < hi; o++) {
        const float *r = row;
        if (wf) {
            r = wf + (size_t)o * cols;
        } else if (wh) {
            const uint16_t *h = wh + (size_t)o * cols;
            for (int i = 0; i < cols; i++) row[i] = bf16 ? k_bf16(h[i]) : k_f16(h[i]);
        } else {
            const int groups = cols / group;
            k_bitreader br = {(const uint8_t *)wq + (size_t)o * cols * bits / 8, 0, 0};
            k_unpack(&br, row, cols, bits);
            for (int i = 0; i < cols; i++)
                row[i] = sc[(size_t)o * groups + i / group] * row[i] + bi[(size_t)o * groups + i / group];
        }
        for (int b = 0; b < n; b++) out[(size_t)b * rows + o] = dot_scalar(r, x + (size_t)b * cols, cols);
    }
}

// The flash attention of the SIMD levels (simd_attn.h) in plain C: the same
// items, chunks and partials (m, l, weighted sum of values), read straight
// from the cache, whose storage is float, half or q8_0 (kv_type).
enum { KV_F32, KV_F16, KV_Q8 };

// kv_units is the size of a head row of hd values in units of the storage
// (floats, halves or bytes); kv_at reads element d of a head row.
static inline size_t kv_units(int type, int hd) { return type == KV_Q8 ? (size_t)hd / 32 * 34 : (size_t)hd; }

static inline const void *kv_off(const void *base, int type, size_t units) {
    return (const char *)base + units * (type == KV_F32 ? 4 : type == KV_F16 ? 2 : 1);
}

static inline float kv_at(const void *row, int type, int d) {
    switch (type) {
    case KV_F32: return ((const float *)row)[d];
    case KV_F16: return k_f16(((const uint16_t *)row)[d]);
    default: return k_kv_q8_at((const uint8_t *)row, d);
    }
}

static void attn_part_scalar(float *part, const float *q, int nh, const void *kc, const void *vc, int type,
                             size_t kvs, int a, int b, int hd, float scale, float softcap, float *scores) {
    const int ps = hd + 2;
    for (int j = 0; j < nh; j++) {
        const float *qj = q + (size_t)j * hd;
        float m = -INFINITY, l = 0;
        for (int p = a; p < b; p++) {
            const void *kr = kv_off(kc, type, (size_t)p * kvs);
            float s = 0;
            for (int d = 0; d < hd; d++) s += qj[d] * kv_at(kr, type, d);
            s *= scale;
            if (softcap > 0) s = tanhf(s / softcap) * softcap;
            scores[p - a] = s;
            if (s > m) m = s;
        }
        float *o = part + (size_t)j * ps;
        for (int d = 0; d < hd; d++) o[2 + d] = 0;
        for (int p = a; p < b; p++) {
            const void *vr = kv_off(vc, type, (size_t)p * kvs);
            const float e = expf(scores[p - a] - m);
            l += e;
            for (int d = 0; d < hd; d++) o[2 + d] += e * kv_at(vr, type, d);
        }
        o[0] = m;
        o[1] = l;
    }
}

static void attn_merge_scalar(float *s, const float *p, int hd) {
    const float m = s[0] > p[0] ? s[0] : p[0];
    const float al = expf(s[0] - m), be = expf(p[0] - m);
    s[0] = m;
    s[1] = s[1] * al + p[1] * be;
    for (int d = 0; d < hd; d++) s[2 + d] = s[2 + d] * al + p[2 + d] * be;
}

static void attn_init_scalar(float *s, int hd) {
    s[0] = -INFINITY;
    for (int d = 1; d < hd + 2; d++) s[d] = 0;
}

static void attn_out_scalar(float *o, const float *s, int hd) {
    for (int d = 0; d < hd; d++) o[d] = s[2 + d] / s[1];
}

static void attention_scalar(float *out, float *part, const float *q, int nq, int pos0, const void *kc,
                             const void *vc, int type, int nKV, int nHeads, int nKVHeads, int hd, float scale,
                             float softcap, int window, int lo, int hi, float *scratch) {
    const int qs = nHeads * hd, grp = nHeads / nKVHeads, ps = hd + 2;
    const size_t kvs = (size_t)nKVHeads * kv_units(type, hd);
    const int nC = (nKV + K_ATTN_CHUNK - 1) / K_ATTN_CHUNK;
    float *scores = scratch, *tmp = scores + K_ATTN_CHUNK, *st = tmp + ps;
    for (int it = lo; it < hi; it++) {
        int t0, t1, kvh, c0 = 0, c1 = nC;
        if (part) {
            const int tk = it / nC;
            t0 = tk / nKVHeads, t1 = t0 + 1, kvh = tk % nKVHeads, c0 = it % nC, c1 = c0 + 1;
        } else {
            t0 = it / nKVHeads * K_ATTN_TILE, t1 = t0 + K_ATTN_TILE < nq ? t0 + K_ATTN_TILE : nq, kvh = it % nKVHeads;
        }
        const size_t kvOff = (size_t)kvh * kv_units(type, hd);
        for (int t = t0; t < t1; t++) {
            int pLo, pHi;
            k_attn_range(pos0 + t, nKV, window, &pLo, &pHi);
            for (int j = 0; j < grp; j++) {
                const int h = kvh * grp + j;
                const float *qv = q + (size_t)t * qs + (size_t)h * hd;
                attn_init_scalar(st, hd);
                for (int c = c0; c < c1; c++) {
                    const int a = pLo > c * K_ATTN_CHUNK ? pLo : c * K_ATTN_CHUNK;
                    const int b = pHi < (c + 1) * K_ATTN_CHUNK ? pHi : (c + 1) * K_ATTN_CHUNK;
                    if (a >= b) continue;
                    float *pt = part ? part + ((size_t)it * grp + j) * ps : tmp;
                    attn_part_scalar(pt, qv, 1, kv_off(kc, type, kvOff), kv_off(vc, type, kvOff), type, kvs, a, b,
                                     hd, scale, softcap, scores);
                    if (!part) attn_merge_scalar(st, pt, hd);
                }
                if (!part) attn_out_scalar(out + (size_t)t * qs + (size_t)h * hd, st, hd);
            }
        }
    }
}

static void attention_merge_scalar(float *out, const float *part, int pos0, int nKV, int nHeads, int nKVHeads,
                                   int hd, int window, int lo, int hi, float *st) {
    const int qs = nHeads * hd, grp = nHeads / nKVHeads, ps = hd + 2;
    const int nC = (nKV + K_ATTN_CHUNK - 1) / K_ATTN_CHUNK;
    for (int it = lo; it < hi; it++) {
        const int t = it / nKVHeads, kvh = it % nKVHeads;
        int pLo, pHi;
        k_attn_range(pos0 + t, nKV, window, &pLo, &pHi);
        const float *pp = part + (size_t)it * nC * grp * ps;
        for (int j = 0; j < grp; j++) {
            attn_init_scalar(st, hd);
            if (pHi > pLo)
                for (int c = pLo / K_ATTN_CHUNK; c <= (pHi - 1) / K_ATTN_CHUNK; c++)
                    attn_merge_scalar(st, pp + ((size_t)c * grp + j) * ps, hd);
            attn_out_scalar(out + (size_t)t * qs + (size_t)(kvh * grp + j) * hd, st, hd);
        }
    }
}

size_t k_attention_scratch(int nHeads, int nKVHeads, int hd) {
    (void)nHeads, (void)nKVHeads;
    const size_t ps = (size_t)hd + 2, hb = 8;
    return 2 * K_ATTN_CHUNK * (size_t)hd + hb * K_ATTN_CHUNK + hb * ps + K_ATTN_TILE * hb * ps;
}

static void rmsnorm_scalar(float *out, const float *x, const float *w, int n, int dim, float eps, int addOne) {
    for (int b = 0; b < n; b++) {
        const float *xr = x + (size_t)b * dim;
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        const float inv = (float)(1.0 / sqrt(ss / dim + eps));
        for (int i = 0; i < dim; i++) out[(size_t)b * dim + i] = xr[i] * inv * (w[i] + (addOne ? 1.0f : 0.0f));
    }
}

static void softmax_scalar(float *x, size_t n) {
    if (n == 0) return;
    float m = x[0];
    for (size_t i = 1; i < n; i++) if (x[i] > m) m = x[i];
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

/* ------------------------------ entry points ------------------------------ */

#if defined(__x86_64__)
#define K_DISPATCH(lvl, call, scalar)   \
    switch (lvl) {                      \
    case K_AVX512: call(avx512); break; \
    case K_AVX2: call(avx2); break;     \
    default: scalar; break;             \
    }
#elif defined(__aarch64__)
#define K_DISPATCH(lvl, call, scalar) \
    switch (lvl) {                    \
    case K_NEON: call(neon); break;   \
    default: scalar; break;           \
    }
#else
#define K_DISPATCH(lvl, call, scalar) scalar
#endif

void k_matmul_f32(float *out, const float *x, int n, const float *w, int rows, int cols, int lo, int hi,
                  float *scratch) {
#define CALL(s) k_mm_f32_##s(out, x, n, w, rows, cols, lo, hi)
    K_DISPATCH(k_level(), CALL,
               mm_rows_scalar(out, x, n, rows, cols, lo, hi, scratch, w, NULL, 0, NULL, NULL, NULL, 0, 0))
#undef CALL
}

void k_matmul_bf16(float *out, const float *x, int n, const uint16_t *w, int rows, int cols, int lo, int hi,
                   float *scratch) {
#define CALL(s) k_mm_half_##s(out, x, n, w, rows, cols, lo, hi, scratch, 1)
    K_DISPATCH(k_level(), CALL,
               mm_rows_scalar(out, x, n, rows, cols, lo, hi, scratch, NULL, w, 1, NULL, NULL, NULL, 0, 0))
#undef CALL
}

void k_matmul_f16(float *out, const float *x, int n, const uint16_t *w, int rows, int cols, int lo, int hi,
                  float *scratch) {
#define CALL(s) k_mm_half_##s(out, x, n, w, rows, cols, lo, hi, scratch, 0)
    K_DISPATCH(k_level(), CALL,
               mm_rows_scalar(out, x, n, rows, cols, lo, hi, scratch, NULL, w, 0, NULL, NULL, NULL, 0, 0))
#undef CALL
}

// The scalar panel product: each output one fmaf chain over k in order, as
// every SIMD level runs it.
static void mm_panels_scalar(float *out, const float *x, int n, const void *w, int fmt, int rows, int cols, int lo,
                             int hi) {
    for (int o = lo; o < hi; o++) {
        const size_t at = (size_t)(o / 16) * cols * 16 + o % 16;
        for (int b = 0; b < n; b++) {
            const float *xb = x + (size_t)b * cols;
            float acc = 0;
            for (int k = 0; k < cols; k++) {
                const size_t i = at + (size_t)k * 16;
                const float wv = fmt == K_F32    ? ((const float *)w)[i]
                                 : fmt == K_BF16 ? k_bf16(((const uint16_t *)w)[i])
                                                 : k_f16(((const uint16_t *)w)[i]);
                acc = fmaf(wv, xb[k], acc);
            }
            out[(size_t)b * rows + o] = acc;
        }
    }
}

size_t k_attn_bidir_scratch(int n, int hd) {
    const size_t nk = ((size_t)n + K_BI_KEY_BLOCK - 1) / K_BI_KEY_BLOCK * K_BI_KEY_BLOCK;
    return ((size_t)hd + K_BI_MAX_ROWS) * nk;
}

static void attn_bidir_scalar(float *out, const float *q, const float *k, const float *v, int n, int nh, int hd,
                              float scale, int lo, int hi, float *sc) {
    const size_t rs = (size_t)nh * hd;
    for (int h = lo; h < hi; h++)
        for (int i = 0; i < n; i++) {
            const float *qi = q + (size_t)i * rs + (size_t)h * hd;
            float mx = -INFINITY, sum = 0;
            for (int j = 0; j < n; j++) {
                const float *kj = k + (size_t)j * rs + (size_t)h * hd;
                float s = 0;
                for (int d = 0; d < hd; d++) s += qi[d] * kj[d];
                sc[j] = s * scale;
                mx = sc[j] > mx ? sc[j] : mx;
            }
            for (int j = 0; j < n; j++) {
                sc[j] = expf(sc[j] - mx);
                sum += sc[j];
            }
            float *oi = out + (size_t)i * rs + (size_t)h * hd;
            for (int d = 0; d < hd; d++) {
                float a = 0;
                for (int j = 0; j < n; j++) a += sc[j] * v[(size_t)j * rs + (size_t)h * hd + d];
                oi[d] = a / sum;
            }
        }
}

void k_attn_bidir(float *out, const float *q, const float *k, const float *v, int n, int nh, int hd, float scale,
                  int lo, int hi, float *scratch) {
#define CALL(s) k_attn_bidir_##s(out, q, k, v, n, nh, hd, scale, lo, hi, scratch)
    K_DISPATCH(k_level(), CALL, attn_bidir_scalar(out, q, k, v, n, nh, hd, scale, lo, hi, scratch))
#undef CALL
}

void k_matmul_panels(float *out, const float *x, int n, const void *w, int fmt, int rows, int cols, int lo, int hi) {
#define CALL(s) k_mm_panels_##s(out, x, n, w, fmt, rows, cols, lo, hi)
    K_DISPATCH(k_level(), CALL, mm_panels_scalar(out, x, n, w, fmt, rows, cols, lo, hi))
#undef CALL
}

void k_matmul_mlx(float *out, const float *x, int n, const uint32_t *wq, const float *scales, const float *biases,
                  int rows, int cols, int bits, int group, int lo, int hi, float *scratch) {
#define CALL(s) k_mm_mlx_##s(out, x, n, wq, scales, biases, rows, cols, bits, group, lo, hi, scratch)
    K_DISPATCH(k_level(), CALL,
               mm_rows_scalar(out, x, n, rows, cols, lo, hi, scratch, NULL, NULL, 0, wq, scales, biases, bits, group))
#undef CALL
}

// Sub-block i's signed 6-bit Q3_K scale (see gguf_more.go).
static int q3k_scale(const uint8_t *s, int i) {
    const int lo = (s[i % 8] >> (4 * (i / 8))) & 15, hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (lo | hi << 4) - 32;
}

// One row of a GGUF block type to floats, with the block layouts of
// inference/quant (ggml_dequant.go says each in words).
void k_dequant_gguf_row(float *dst, const uint8_t *src, int type, int cols) {
    uint16_t h, hm;
    uint32_t qh;
    switch (type) {
    case 3:
    case 7: {  // Q4_1, Q5_1: d, m, (qh), nibbles; w = d*q + m
        const int bsize = type == 3 ? 20 : 24, qoff = type == 3 ? 4 : 8;
        for (int b = 0; b < cols / 32; b++) {
            const uint8_t *blk = src + (size_t)b * bsize;
            memcpy(&h, blk, 2);
            memcpy(&hm, blk + 2, 2);
            qh = 0;
            if (type == 7) memcpy(&qh, blk + 4, 4);
            const float d = k_f16(h), m = k_f16(hm);
            for (int i = 0; i < 16; i++) {
                const uint32_t lo = (blk[qoff + i] & 15) | ((qh >> i) & 1) << 4;
                const uint32_t hi = (blk[qoff + i] >> 4) | ((qh >> (i + 16)) & 1) << 4;
                dst[b * 32 + i] = d * (float)lo + m;
                dst[b * 32 + i + 16] = d * (float)hi + m;
            }
        }
        break;
    }
    case 6:  // Q5_0: d, qh, nibbles; w = d*(q-16)
        for (int b = 0; b < cols / 32; b++) {
            const uint8_t *blk = src + (size_t)b * 22;
            memcpy(&h, blk, 2);
            memcpy(&qh, blk + 2, 4);
            const float d = k_f16(h);
            for (int i = 0; i < 16; i++) {
                const int lo = (blk[6 + i] & 15) | (int)((qh >> i) & 1) << 4;
                const int hi = (blk[6 + i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4;
                dst[b * 32 + i] = d * (float)(lo - 16);
                dst[b * 32 + i + 16] = d * (float)(hi - 16);
            }
        }
        break;
    case 13:  // Q5_K
        for (int b = 0; b < cols / 256; b++) {
            const uint8_t *blk = src + (size_t)b * 176, *qhb = blk + 16, *qs = blk + 48;
            memcpy(&h, blk, 2);
            memcpy(&hm, blk + 2, 2);
            const float d = k_f16(h), dmin = k_f16(hm);
            float *out = dst + b * 256;
            for (int c = 0; c < 4; c++) {
                int sc0, m0, sc1, m1;
                k_q4k_scale_min(blk + 4, 2 * c, &sc0, &m0);
                k_q4k_scale_min(blk + 4, 2 * c + 1, &sc1, &m1);
                for (int l = 0; l < 32; l++) {
                    const int lo = (qs[32 * c + l] & 15) | ((qhb[l] >> (2 * c)) & 1) << 4;
                    const int hi = (qs[32 * c + l] >> 4) | ((qhb[l] >> (2 * c + 1)) & 1) << 4;
                    out[64 * c + l] = d * (float)sc0 * (float)lo - dmin * (float)m0;
                    out[64 * c + 32 + l] = d * (float)sc1 * (float)hi - dmin * (float)m1;
                }
            }
        }
        break;
    case 10:  // Q2_K: scale and min once per 16-element sub-block
        for (int b = 0; b < cols / 256; b++) {
            const uint8_t *blk = src + (size_t)b * 84, *qs = blk + 16;
            memcpy(&h, blk + 80, 2);
            memcpy(&hm, blk + 82, 2);
            const float d = k_f16(h), dmin = k_f16(hm);
            float *out = dst + b * 256;
            for (int hf = 0; hf < 2; hf++)
                for (int k = 0; k < 4; k++)
                    for (int j = 0; j < 2; j++) {
                        const uint8_t sc = blk[8 * hf + 2 * k + j];
                        const float dl = d * (float)(sc & 15), ml = dmin * (float)(sc >> 4);
                        const uint8_t *q = qs + 32 * hf + 16 * j;
                        float *o = out + 128 * hf + 32 * k + 16 * j;
                        for (int l = 0; l < 16; l++) o[l] = dl * (float)((q[l] >> (2 * k)) & 3) - ml;
                    }
        }
        break;
    case 11:  // Q3_K: scale once per 16-element sub-block
        for (int b = 0; b < cols / 256; b++) {
            const uint8_t *blk = src + (size_t)b * 110, *qs = blk + 32;
            memcpy(&h, blk + 108, 2);
            const float d = k_f16(h);
            float *out = dst + b * 256;
            for (int hf = 0; hf < 2; hf++)
                for (int k = 0; k < 4; k++)
                    for (int j = 0; j < 2; j++) {
                        const float dl = d * (float)q3k_scale(blk + 96, 8 * hf + 2 * k + j);
                        const uint8_t *q = qs + 32 * hf + 16 * j, *hmask = blk + 16 * j;
                        const int bit = 4 * hf + k;
                        float *o = out + 128 * hf + 32 * k + 16 * j;
                        for (int l = 0; l < 16; l++)
                            o[l] = dl * (float)(((q[l] >> (2 * k)) & 3) - 4 * !((hmask[l] >> bit) & 1));
                    }
        }
        break;
    case 8:
        for (int b = 0; b < cols / 32; b++) {
            const uint8_t *blk = src + (size_t)b * 34;
            memcpy(&h, blk, 2);
            const float d = k_f16(h);
            for (int i = 0; i < 32; i++) dst[b * 32 + i] = d * (float)(int8_t)blk[2 + i];
        }
        break;
    case 2:
        for (int b = 0; b < cols / 32; b++) {
            const uint8_t *blk = src + (size_t)b * 18;
            memcpy(&h, blk, 2);
            const float d = k_f16(h);
            for (int i = 0; i < 16; i++) {
                dst[b * 32 + i] = (float)((blk[2 + i] & 15) - 8) * d;
                dst[b * 32 + i + 16] = (float)((blk[2 + i] >> 4) - 8) * d;
            }
        }
        break;
    case 12:
        for (int b = 0; b < cols / 256; b++) {
            const uint8_t *blk = src + (size_t)b * 144;
            uint16_t hm;
            memcpy(&h, blk, 2);
            memcpy(&hm, blk + 2, 2);
            const float d = k_f16(h), dmin = k_f16(hm);
            float *out = dst + b * 256;
            for (int c = 0; c < 4; c++) {
                int sc0, m0, sc1, m1;
                k_q4k_scale_min(blk + 4, 2 * c, &sc0, &m0);
                k_q4k_scale_min(blk + 4, 2 * c + 1, &sc1, &m1);
                for (int l = 0; l < 32; l++) {
                    const uint8_t q = blk[16 + 32 * c + l];
                    out[64 * c + l] = d * (float)sc0 * (float)(q & 15) - dmin * (float)m0;
                    out[64 * c + 32 + l] = d * (float)sc1 * (float)(q >> 4) - dmin * (float)m1;
                }
            }
        }
        break;
    default:  // 14: Q6_K
        for (int b = 0; b < cols / 256; b++) {
            const uint8_t *blk = src + (size_t)b * 210;
            memcpy(&h, blk + 208, 2);
            const float d = k_f16(h);
            for (int half = 0; half < 2; half++) {
                const uint8_t *ql = blk + 64 * half, *qh = blk + 128 + 32 * half;
                const int8_t *sc = (const int8_t *)blk + 192 + 8 * half;
                float *out = dst + b * 256 + 128 * half;
                for (int l = 0; l < 32; l++)
                    for (int k = 0; k < 4; k++) {
                        int lo = ql[l + 32 * (k & 1)];
                        if (k >= 2) lo >>= 4;
                        const int q = (lo & 15) | (((qh[l] >> (2 * k)) & 3) << 4);
                        out[l + 32 * k] = d * (float)sc[l / 16 + 2 * k] * (float)(q - 32);
                    }
            }
        }
        break;
    }
}

static void mm_gguf_scalar(float *out, const float *x, int n, const uint8_t *w, int type, int rows, int cols, int lo,
                           int hi, float *row) {
    const size_t rowBytes = k_gguf_row_bytes(type, cols);
    for (int o = lo; o < hi; o++) {
        k_dequant_gguf_row(row, w + (size_t)o * rowBytes, type, cols);
        for (int b = 0; b < n; b++) out[(size_t)b * rows + o] = dot_scalar(row, x + (size_t)b * cols, cols);
    }
}

void k_matmul_gguf(float *out, const float *x, int n, const uint8_t *w, int type, int rows, int cols, int lo, int hi,
                   float *scratch) {
#define CALL(s) k_mm_gguf_##s(out, x, n, w, type, rows, cols, lo, hi, scratch)
    K_DISPATCH(k_level(), CALL, mm_gguf_scalar(out, x, n, w, type, rows, cols, lo, hi, scratch))
#undef CALL
}

int k_mlx_prep(float *dst, const float *x, int n, int cols, int bits) {
    int r = 0;
#define CALL(s) r = k_mlx_prep_##s(dst, x, n, cols, bits)
    K_DISPATCH(k_level(), CALL, (void)0)
#undef CALL
    return r;
}

void k_attention(float *out, float *part, const float *q, int nq, int pos0, const float *k, const float *v, int nKV,
                 int nHeads, int nKVHeads, int headDim, float scale, float softcap, int window, int lo, int hi,
                 float *scratch) {
#define CALL(s) \
    k_attention_##s(out, part, q, nq, pos0, k, v, nKV, nHeads, nKVHeads, headDim, scale, softcap, window, lo, hi, scratch)
    K_DISPATCH(k_level(), CALL,
               attention_scalar(out, part, q, nq, pos0, k, v, KV_F32, nKV, nHeads, nKVHeads, headDim, scale,
                                softcap, window, lo, hi, scratch))
#undef CALL
}

void k_attention_f16(float *out, float *part, const float *q, int nq, int pos0, const uint16_t *k,
                     const uint16_t *v, int nKV, int nHeads, int nKVHeads, int headDim, float scale, float softcap,
                     int window, int lo, int hi, float *scratch) {
#define CALL(s)                                                                                                    \
    k_attention_f16_##s(out, part, q, nq, pos0, k, v, nKV, nHeads, nKVHeads, headDim, scale, softcap, window, lo, hi, \
                        scratch)
    K_DISPATCH(k_level(), CALL,
               attention_scalar(out, part, q, nq, pos0, k, v, KV_F16, nKV, nHeads, nKVHeads, headDim, scale,
                                softcap, window, lo, hi, scratch))
#undef CALL
}

void k_attention_q8(float *out, float *part, const float *q, int nq, int pos0, const uint8_t *k, const uint8_t *v,
                    int nKV, int nHeads, int nKVHeads, int headDim, float scale, float softcap, int window, int lo,
                    int hi, float *scratch) {
#define CALL(s)                                                                                                   \
    k_attention_q8_##s(out, part, q, nq, pos0, k, v, nKV, nHeads, nKVHeads, headDim, scale, softcap, window, lo, hi, \
                       scratch)
    K_DISPATCH(k_level(), CALL,
               attention_scalar(out, part, q, nq, pos0, k, v, KV_Q8, nKV, nHeads, nKVHeads, headDim, scale,
                                softcap, window, lo, hi, scratch))
#undef CALL
}

void k_attention_merge(float *out, const float *part, int pos0, int nKV, int nHeads, int nKVHeads, int headDim,
                       int window, int lo, int hi, float *scratch) {
#define CALL(s) k_attention_merge_##s(out, part, pos0, nKV, nHeads, nKVHeads, headDim, window, lo, hi, scratch)
    K_DISPATCH(k_level(), CALL,
               attention_merge_scalar(out, part, pos0, nKV, nHeads, nKVHeads, headDim, window, lo, hi, scratch))
#undef CALL
}

void k_rmsnorm(float *out, const float *x, const float *w, int n, int dim, float eps, int addOne) {
#define CALL(s) k_rmsnorm_##s(out, x, w, n, dim, eps, addOne)
    K_DISPATCH(k_level(), CALL, rmsnorm_scalar(out, x, w, n, dim, eps, addOne))
#undef CALL
}

void k_softmax(float *x, size_t n) {
#define CALL(s) k_softmax_##s(x, n)
    K_DISPATCH(k_level(), CALL, softmax_scalar(x, n))
#undef CALL
}

void k_silu_mul(float *g, const float *u, size_t n) {
#define CALL(s) k_silu_mul_##s(g, u, n)
    K_DISPATCH(k_level(), CALL, for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i])
#undef CALL
}

void k_gelu_mul(float *g, const float *u, size_t n) {
#define CALL(s) k_gelu_mul_##s(g, u, n)
    K_DISPATCH(k_level(), CALL, for (size_t i = 0; i < n; i++) g[i] = k_gelu(g[i]) * u[i])
#undef CALL
}

void k_gelu_erf(float *x, size_t n) {
#define CALL(s) k_gelu_erf_##s(x, n)
    K_DISPATCH(k_level(), CALL, for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f)))
#undef CALL
}

void k_add(float *d, const float *s, size_t n) {
#define CALL(v) k_add_##v(d, s, n)
    K_DISPATCH(k_level(), CALL, for (size_t i = 0; i < n; i++) d[i] += s[i])
#undef CALL
}

// LayerNormRef's arithmetic (ref.go): double sums, one row at a time.
static void layernorm_scalar(float *out, const float *x, const float *add, const float *w, const float *b, int n,
                             int dim, float eps) {
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * dim, *ar = add ? add + (size_t)r * dim : NULL;
        float *o = out + (size_t)r * dim;
#define LN_X(i) ((double)(ar ? xr[i] + ar[i] : xr[i]))
        double sum = 0, ss = 0;
        for (int i = 0; i < dim; i++) sum += LN_X(i);
        const double mean = sum / dim;
        for (int i = 0; i < dim; i++) ss += (LN_X(i) - mean) * (LN_X(i) - mean);
        const double inv = 1.0 / sqrt(ss / dim + eps);
        for (int i = 0; i < dim; i++) o[i] = (float)((LN_X(i) - mean) * inv) * w[i] + b[i];
#undef LN_X
    }
}

void k_layernorm(float *out, const float *x, const float *add, const float *w, const float *b, int n, int dim,
                 float eps) {
#define CALL(v) k_layernorm_##v(out, x, add, w, b, n, dim, eps)
    K_DISPATCH(k_level(), CALL, layernorm_scalar(out, x, add, w, b, n, dim, eps))
#undef CALL
}

// RoPE is cheap next to the matmuls around it: scalar at every level, with
// each angle's cos/sin computed once and applied to all heads.
static inline void rope_angle(float *c, float *s, int32_t pos, float invFreq, float mscale) {
    const float ang = (float)pos * invFreq;
    *c = (float)cos((double)ang) * mscale;
    *s = (float)sin((double)ang) * mscale;
}

static inline void rope_rotate(float *restrict row, int nHeads, int headDim, int half, int i, float c, float s,
                               int neox) {
    const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
    for (int h = 0; h < nHeads; h++) {
        float *hp = row + (size_t)h * headDim;
        const float a = hp[i0], b = hp[i1];
        hp[i0] = a * c - b * s;
        hp[i1] = a * s + b * c;
    }
}

void k_rope(float *x, int n, int nHeads, int headDim, int rotDim, const int32_t *pos, const float *invFreq,
            int neox, float mscale) {
    const int half = rotDim / 2;
    for (int t = 0; t < n; t++) {
        float *row = x + (size_t)t * nHeads * headDim;
        for (int i = 0; i < half; i++) {
            float c, s;
            rope_angle(&c, &s, pos[t], invFreq[i], mscale);
            rope_rotate(row, nHeads, headDim, half, i, c, s, neox);
        }
    }
}

void k_rope_table(float *cs, float *sn, int npos, int rotDim, const float *invFreq, float mscale) {
    const int half = rotDim / 2;
    for (int p = 0; p < npos; p++)
        for (int i = 0; i < half; i++) rope_angle(cs + (size_t)p * half + i, sn + (size_t)p * half + i, p, invFreq[i], mscale);
}

void k_rope_apply(float *x, int n, int nHeads, int headDim, int rotDim, const int32_t *pos, const float *cs,
                  const float *sn, int neox) {
    const int half = rotDim / 2;
    for (int t = 0; t < n; t++) {
        float *row = x + (size_t)t * nHeads * headDim;
        const float *c = cs + (size_t)pos[t] * half, *s = sn + (size_t)pos[t] * half;
        if (neox) {
            // Whole heads at a time, so that the compiler can vectorize i.
            for (int h = 0; h < nHeads; h++) {
                float *restrict lo = row + (size_t)h * headDim, *restrict hi = lo + half;
                for (int i = 0; i < half; i++) {
                    const float a = lo[i], b = hi[i];
                    lo[i] = a * c[i] - b * s[i];
                    hi[i] = a * s[i] + b * c[i];
                }
            }
        } else {
            for (int i = 0; i < half; i++) rope_rotate(row, nHeads, headDim, half, i, c[i], s[i], 0);
        }
    }
}

int k_attention_chunk(void) { return K_ATTN_CHUNK; }
int k_attention_tile(void) { return K_ATTN_TILE; }
