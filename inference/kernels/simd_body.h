// SIMD kernel bodies, written once over a vector abstraction and included
// by simd_x86.c (AVX2, AVX-512) and simd_arm.c (NEON). The includer
// defines W (lanes), VF and the V* operations, MK_NB (activation rows per
// micro-kernel pass) and SFX(name), which gives each function its suffix.
//
// Weights are little-endian; an MLX row is a byte stream in which, at 4
// bits, element 2i is the low nibble of byte i (FORMATS.md §1b).

static inline float SFX(dot)(const float *a, const float *b, int n) {
    VF s0 = VZERO(), s1 = VZERO(), s2 = VZERO(), s3 = VZERO();
    int i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        s0 = VFMA(VLOAD(a + i), VLOAD(b + i), s0);
        s1 = VFMA(VLOAD(a + i + W), VLOAD(b + i + W), s1);
        s2 = VFMA(VLOAD(a + i + 2 * W), VLOAD(b + i + 2 * W), s2);
        s3 = VFMA(VLOAD(a + i + 3 * W), VLOAD(b + i + 3 * W), s3);
    }
    for (; i + W <= n; i += W) s0 = VFMA(VLOAD(a + i), VLOAD(b + i), s0);
    float s = VHSUM(VADD(VADD(s0, s1), VADD(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// exp(x) for x in [-87, 88] (clamped outside): x = n ln2 + r with |r| <=
// ln2/2, exp(r) by its Taylor series to degree 7 (relative error ~1e-7).
static inline VF SFX(vexp)(VF x) {
    x = VMIN(VMAX(x, VSET1(-87.0f)), VSET1(88.0f));
    VF n = VROUND(VMUL(x, VSET1(1.44269504088896341f)));
    VF r = VFNMA(n, VSET1(0.693359375f), x);   // ln2 split in two so that
    r = VFNMA(n, VSET1(-2.12194440e-4f), r);   // n*hi is exact
    VF p = VSET1(1.0f / 5040);
    p = VFMA(p, r, VSET1(1.0f / 720));
    p = VFMA(p, r, VSET1(1.0f / 120));
    p = VFMA(p, r, VSET1(1.0f / 24));
    p = VFMA(p, r, VSET1(1.0f / 6));
    p = VFMA(p, r, VSET1(0.5f));
    p = VFMA(p, r, VSET1(1.0f));
    p = VFMA(p, r, VSET1(1.0f));
    return VMUL(p, VPOW2I(n));
}

/* ---- matrix multiplication ----
 *
 * One kernel shape for every weight format: a weight row is decoded once
 * per block of up to NB_MAX activation rows and multiplied into all of
 * them while in registers. Within a chunk of rows the activation block is
 * the outer loop, so it stays in cache while the chunk's weights stream
 * past; for decode (n <= NB_MAX) each weight is read exactly once.
 * Each activation row keeps two accumulators (even and odd vectors) to
 * hide FMA latency when n = 1.
 */

#define K_INLINE static inline __attribute__((always_inline))

// Finishes nb rows: out[v*ldo] = sum of both accumulators plus a scalar tail.
#define K_STORE_NB(nb, a0, a1, tail_expr)                      \
    for (int v = 0; v < (nb); v++) {                            \
        float s_ = VHSUM(VADD(a0[v], a1[v]));                   \
        tail_expr;                                              \
        out[(size_t)v * ldo] = s_;                              \
    }

// Float-like weights (F32, BF16, F16): LOADW(ptr) yields W floats.
#define K_FLOAT_ROWS(name, T, LOADW, SCALARW)                                                             \
    K_INLINE void SFX(name)(float *out, int ldo, const float *x, int cols, const T *w, int lo, int hi,    \
                            const int nb) {                                                              \
        for (int o = lo; o < hi; o++, out++) {                                                            \
            const T *wr = w + (size_t)o * cols;                                                           \
            VF a0[NB_MAX], a1[NB_MAX];                                                                    \
            for (int v = 0; v < nb; v++) a0[v] = a1[v] = VZERO();                                         \
            int k = 0;                                                                                    \
            for (; k + 2 * W <= cols; k += 2 * W) {                                                       \
                VF w0 = LOADW(wr + k), w1 = LOADW(wr + k + W);                                            \
                for (int v = 0; v < nb; v++) {                                                            \
                    a0[v] = VFMA(w0, VLOAD(x + (size_t)v * cols + k), a0[v]);                             \
                    a1[v] = VFMA(w1, VLOAD(x + (size_t)v * cols + k + W), a1[v]);                         \
                }                                                                                         \
            }                                                                                             \
            if (k + W <= cols) {                                                                          \
                VF w0 = LOADW(wr + k);                                                                    \
                for (int v = 0; v < nb; v++) a0[v] = VFMA(w0, VLOAD(x + (size_t)v * cols + k), a0[v]);    \
                k += W;                                                                                   \
            }                                                                                             \
            K_STORE_NB(nb, a0, a1, for (int kk = k; kk < cols; kk++) s_ += SCALARW(wr[kk]) * x[(size_t)v * cols + kk]) \
        }                                                                                                 \
    }

#define K_ID(v) (v)
K_FLOAT_ROWS(rows_f32, float, VLOAD, K_ID)
K_FLOAT_ROWS(rows_bf16, uint16_t, VLOAD_BF16, k_bf16)
K_FLOAT_ROWS(rows_f16, uint16_t, VLOAD_F16, k_f16)

// MLX 4-bit. Each 2W-element block is W bytes; widening the bytes to int
// lanes gives the even elements in the low nibbles and the odd ones in the
// high nibbles, so x is pre-permuted (mlx_prep) to match: within each block,
// x'[i] = x[2i] and x'[W+i] = x[2i+1]. No byte shuffles are needed.
K_INLINE void SFX(rows_mlx4)(float *out, int ldo, const float *x, int cols, const uint8_t *base, size_t rowBytes,
                             const float *sc, const float *bi, int group, int lo, int hi, const int nb) {
    const int groups = cols / group;
    const VI mask = VSET1I(15);
    for (int o = lo; o < hi; o++, out++) {
        const uint8_t *p = base + (size_t)o * rowBytes;
        const float *s = sc + (size_t)o * groups, *b = bi + (size_t)o * groups;
        VF a0[NB_MAX], a1[NB_MAX];
        for (int v = 0; v < nb; v++) a0[v] = a1[v] = VZERO();
        for (int g = 0, j0 = 0; g < groups; g++, j0 += group) {
            const VF vs = VSET1(s[g]), vb = VSET1(b[g]);
            for (int k = j0; k < j0 + group; k += 2 * W) {
                const VI q = VLOAD_U8I(p + k / 2);
                const VF wlo = VFMA(VCVTI(VANDI(q, mask)), vs, vb);
                const VF whi = VFMA(VCVTI(VSRLI(q, 4)), vs, vb);
                for (int v = 0; v < nb; v++) {
                    a0[v] = VFMA(wlo, VLOAD(x + (size_t)v * cols + k), a0[v]);
                    a1[v] = VFMA(whi, VLOAD(x + (size_t)v * cols + k + W), a1[v]);
                }
            }
        }
        K_STORE_NB(nb, a0, a1, (void)0)
    }
}

K_INLINE void SFX(rows_mlx8)(float *out, int ldo, const float *x, int cols, const uint8_t *base, size_t rowBytes,
                             const float *sc, const float *bi, int group, int lo, int hi, const int nb) {
    const int groups = cols / group;
    for (int o = lo; o < hi; o++, out++) {
        const uint8_t *p = base + (size_t)o * rowBytes;
        const float *s = sc + (size_t)o * groups, *b = bi + (size_t)o * groups;
        VF a0[NB_MAX], a1[NB_MAX];
        for (int v = 0; v < nb; v++) a0[v] = a1[v] = VZERO();
        for (int g = 0, j0 = 0; g < groups; g++, j0 += group) {
            const VF vs = VSET1(s[g]), vb = VSET1(b[g]);
            for (int k = j0; k < j0 + group; k += 2 * W) {
                const VF w0 = VFMA(VCVTI(VLOAD_U8I(p + k)), vs, vb);
                const VF w1 = VFMA(VCVTI(VLOAD_U8I(p + k + W)), vs, vb);
                for (int v = 0; v < nb; v++) {
                    a0[v] = VFMA(w0, VLOAD(x + (size_t)v * cols + k), a0[v]);
                    a1[v] = VFMA(w1, VLOAD(x + (size_t)v * cols + k + W), a1[v]);
                }
            }
        }
        K_STORE_NB(nb, a0, a1, (void)0)
    }
}

// Other widths unpack each group's codes with the scalar bit reader.
K_INLINE void SFX(rows_mlxgen)(float *out, int ldo, const float *x, int cols, const uint8_t *base, size_t rowBytes,
                               const float *sc, const float *bi, int bits, int group, int lo, int hi, const int nb) {
    const int groups = cols / group;
    float qb[128];
    for (int o = lo; o < hi; o++, out++) {
        k_bitreader br = {base + (size_t)o * rowBytes, 0, 0};
        const float *s = sc + (size_t)o * groups, *b = bi + (size_t)o * groups;
        VF a0[NB_MAX], a1[NB_MAX];
        for (int v = 0; v < nb; v++) a0[v] = a1[v] = VZERO();
        for (int g = 0, j0 = 0; g < groups; g++, j0 += group) {
            const VF vs = VSET1(s[g]), vb = VSET1(b[g]);
            k_unpack(&br, qb, group, bits);
            for (int k = 0; k < group; k += 2 * W) {
                const VF w0 = VFMA(VLOAD(qb + k), vs, vb), w1 = VFMA(VLOAD(qb + k + W), vs, vb);
                for (int v = 0; v < nb; v++) {
                    a0[v] = VFMA(w0, VLOAD(x + (size_t)v * cols + j0 + k), a0[v]);
                    a1[v] = VFMA(w1, VLOAD(x + (size_t)v * cols + j0 + k + W), a1[v]);
                }
            }
        }
        K_STORE_NB(nb, a0, a1, (void)0)
    }
}

// Calls CALL(nb) with a compile-time nb for the current block size.
#define K_NB_SWITCH(nb, CALL) \
    switch (nb) { NB_CASES(CALL) }

#define K_BLOCKS(n, BODY)                                   \
    for (int b0 = 0; b0 < (n); b0 += NB_MAX) {              \
        const int nb = (n) - b0 < NB_MAX ? (n) - b0 : NB_MAX; \
        float *ob = out + (size_t)b0 * rows + lo;           \
        const float *xb = x + (size_t)b0 * cols;            \
        BODY                                                \
    }

static void SFX(mm_f32)(float *out, const float *x, int n, const float *w, int rows, int cols, int lo, int hi) {
#define CALL(k) case k: SFX(rows_f32)(ob, rows, xb, cols, w, lo, hi, k); break;
    K_BLOCKS(n, K_NB_SWITCH(nb, CALL))
#undef CALL
}

static void SFX(mm_half)(float *out, const float *x, int n, const uint16_t *w, int rows, int cols, int lo, int hi,
                         float *scratch, int bf16) {
    (void)scratch;
#define CALL(k) case k: if (bf16) SFX(rows_bf16)(ob, rows, xb, cols, w, lo, hi, k); \
                        else SFX(rows_f16)(ob, rows, xb, cols, w, lo, hi, k); break;
    K_BLOCKS(n, K_NB_SWITCH(nb, CALL))
#undef CALL
}

// mlx_prep writes the activation layout the 4-bit kernel wants; it
// returns 0 (x is used as is) for other widths.
static int SFX(mlx_prep)(float *dst, const float *x, int n, int cols, int bits) {
    if (bits != 4) return 0;
    for (int b = 0; b < n; b++)
        for (int j0 = 0; j0 < cols; j0 += 2 * W)
            for (int i = 0; i < W; i++) {
                dst[(size_t)b * cols + j0 + i] = x[(size_t)b * cols + j0 + 2 * i];
                dst[(size_t)b * cols + j0 + W + i] = x[(size_t)b * cols + j0 + 2 * i + 1];
            }
    return 1;
}

// x must be what mlx_prep produced when it returned 1.
static void SFX(mm_mlx)(float *out, const float *x, int n, const uint32_t *wq, const float *sc, const float *bi,
                        int rows, int cols, int bits, int group, int lo, int hi, float *scratch) {
    (void)scratch;
    const size_t rowBytes = (size_t)cols * bits / 8;
    const uint8_t *base = (const uint8_t *)wq;
    if (bits == 4) {
#define CALL(k) case k: SFX(rows_mlx4)(ob, rows, xb, cols, base, rowBytes, sc, bi, group, lo, hi, k); break;
        K_BLOCKS(n, K_NB_SWITCH(nb, CALL))
#undef CALL
    } else if (bits == 8) {
#define CALL(k) case k: SFX(rows_mlx8)(ob, rows, xb, cols, base, rowBytes, sc, bi, group, lo, hi, k); break;
        K_BLOCKS(n, K_NB_SWITCH(nb, CALL))
#undef CALL
    } else {
#define CALL(k) case k: SFX(rows_mlxgen)(ob, rows, xb, cols, base, rowBytes, sc, bi, bits, group, lo, hi, k); break;
        K_BLOCKS(n, K_NB_SWITCH(nb, CALL))
#undef CALL
    }
}

/* ---- attention ---- */

static void SFX(attention)(float *out, const float *q, int pos0, const float *kc, const float *vc, int nKV,
                           int nHeads, int nKVHeads, int hd, float scale, float softcap, int window,
                           int lo, int hi, float *scores) {
    const int qs = nHeads * hd, kvs = nKVHeads * hd, grp = nHeads / nKVHeads;
    for (int it = lo; it < hi; it++) {
        int t = it / nHeads, h = it % nHeads;
        int pLo, pHi;
        k_attn_range(pos0 + t, nKV, window, &pLo, &pHi);
        const float *qv = q + (size_t)t * qs + (size_t)h * hd;
        const float *kb = kc + (size_t)(h / grp) * hd, *vb = vc + (size_t)(h / grp) * hd;
        float m = -INFINITY;
        for (int p = pLo; p < pHi; p++) {
            float s = SFX(dot)(qv, kb + (size_t)p * kvs, hd) * scale;
            if (softcap > 0) s = tanhf(s / softcap) * softcap;
            scores[p] = s;
            if (s > m) m = s;
        }
        VF vm = VSET1(m), vs = VZERO();
        int p = pLo;
        for (; p + W <= pHi; p += W) {
            VF e = SFX(vexp)(VSUB(VLOAD(scores + p), vm));
            VSTORE(scores + p, e);
            vs = VADD(vs, e);
        }
        float sum = VHSUM(vs);
        for (; p < pHi; p++) {
            scores[p] = expf(scores[p] - m);
            sum += scores[p];
        }
        const float inv = 1.0f / sum;
        float *o = out + (size_t)t * qs + (size_t)h * hd;
        int d = 0;
        for (; d + 4 * W <= hd; d += 4 * W) {
            VF a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
            for (int pp = pLo; pp < pHi; pp++) {
                VF wv = VSET1(scores[pp]);
                const float *vp = vb + (size_t)pp * kvs + d;
                a0 = VFMA(wv, VLOAD(vp), a0);
                a1 = VFMA(wv, VLOAD(vp + W), a1);
                a2 = VFMA(wv, VLOAD(vp + 2 * W), a2);
                a3 = VFMA(wv, VLOAD(vp + 3 * W), a3);
            }
            VF vi = VSET1(inv);
            VSTORE(o + d, VMUL(a0, vi));
            VSTORE(o + d + W, VMUL(a1, vi));
            VSTORE(o + d + 2 * W, VMUL(a2, vi));
            VSTORE(o + d + 3 * W, VMUL(a3, vi));
        }
        for (; d + W <= hd; d += W) {
            VF a0 = VZERO();
            for (int pp = pLo; pp < pHi; pp++) a0 = VFMA(VSET1(scores[pp]), VLOAD(vb + (size_t)pp * kvs + d), a0);
            VSTORE(o + d, VMUL(a0, VSET1(inv)));
        }
        for (; d < hd; d++) {
            float a = 0;
            for (int pp = pLo; pp < pHi; pp++) a += scores[pp] * vb[(size_t)pp * kvs + d];
            o[d] = a * inv;
        }
    }
}

/* ---- elementwise ---- */

static void SFX(rmsnorm)(float *out, const float *x, const float *w, int n, int dim, float eps, int addOne) {
    const VF one = VSET1(addOne ? 1.0f : 0.0f);
    for (int b = 0; b < n; b++) {
        const float *xr = x + (size_t)b * dim;
        float *or_ = out + (size_t)b * dim;
        VF s0 = VZERO(), s1 = VZERO();
        int i = 0;
        for (; i + 2 * W <= dim; i += 2 * W) {
            VF a = VLOAD(xr + i), c = VLOAD(xr + i + W);
            s0 = VFMA(a, a, s0);
            s1 = VFMA(c, c, s1);
        }
        for (; i + W <= dim; i += W) {
            VF a = VLOAD(xr + i);
            s0 = VFMA(a, a, s0);
        }
        double ss = VHSUM(VADD(s0, s1));
        for (; i < dim; i++) ss += (double)xr[i] * xr[i];
        const float inv = (float)(1.0 / sqrt(ss / dim + eps));
        const VF vi = VSET1(inv);
        i = 0;
        for (; i + W <= dim; i += W) VSTORE(or_ + i, VMUL(VMUL(VLOAD(xr + i), vi), VADD(VLOAD(w + i), one)));
        for (; i < dim; i++) or_[i] = xr[i] * inv * (w[i] + (addOne ? 1.0f : 0.0f));
    }
}

static void SFX(softmax)(float *x, size_t n) {
    if (n == 0) return;
    VF vm = VSET1(x[0]);
    size_t i = 0;
    for (; i + W <= n; i += W) vm = VMAX(vm, VLOAD(x + i));
    float m = VHMAX(vm);
    for (; i < n; i++) if (x[i] > m) m = x[i];
    vm = VSET1(m);
    VF vs = VZERO();
    i = 0;
    for (; i + W <= n; i += W) {
        VF e = SFX(vexp)(VSUB(VLOAD(x + i), vm));
        VSTORE(x + i, e);
        vs = VADD(vs, e);
    }
    double sum = VHSUM(vs);
    for (; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    const VF vi = VSET1(inv);
    i = 0;
    for (; i + W <= n; i += W) VSTORE(x + i, VMUL(VLOAD(x + i), vi));
    for (; i < n; i++) x[i] *= inv;
}

// silu(g) = g*sigmoid(g).
static void SFX(silu_mul)(float *g, const float *u, size_t n) {
    const VF one = VSET1(1.0f), zero = VZERO();
    size_t i = 0;
    for (; i + W <= n; i += W) {
        VF v = VLOAD(g + i);
        VF e = SFX(vexp)(VSUB(zero, v));
        VSTORE(g + i, VMUL(VDIV(v, VADD(one, e)), VLOAD(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

// gelu_tanh(g) = g*(1+tanh(y))/2 = g*sigmoid(2y), y = sqrt(2/pi)(g+0.044715g^3):
// the sigmoid form has no cancellation for large negative g.
static void SFX(gelu_mul)(float *g, const float *u, size_t n) {
    const VF one = VSET1(1.0f), c = VSET1(-2.0f * 0.7978845608028654f), c3 = VSET1(0.044715f);
    size_t i = 0;
    for (; i + W <= n; i += W) {
        VF v = VLOAD(g + i);
        VF y2 = VMUL(VMUL(c, v), VFMA(VMUL(c3, v), v, one));  // -2y
        VF e = SFX(vexp)(y2);
        VSTORE(g + i, VMUL(VDIV(v, VADD(one, e)), VLOAD(u + i)));
    }
    for (; i < n; i++) g[i] = k_gelu(g[i]) * u[i];
}

static void SFX(add)(float *d, const float *s, size_t n) {
    size_t i = 0;
    for (; i + W <= n; i += W) VSTORE(d + i, VADD(VLOAD(d + i), VLOAD(s + i)));
    for (; i < n; i++) d[i] += s[i];
}
