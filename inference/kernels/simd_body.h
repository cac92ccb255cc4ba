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

/* ---- one weight row against one activation row (n = 1, streaming) ---- */

static float SFX(dot_bf16)(const uint16_t *w, const float *x, int n) {
    VF s0 = VZERO(), s1 = VZERO();
    int i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        s0 = VFMA(VLOAD_BF16(w + i), VLOAD(x + i), s0);
        s1 = VFMA(VLOAD_BF16(w + i + W), VLOAD(x + i + W), s1);
    }
    for (; i + W <= n; i += W) s0 = VFMA(VLOAD_BF16(w + i), VLOAD(x + i), s0);
    float s = VHSUM(VADD(s0, s1));
    for (; i < n; i++) s += k_bf16(w[i]) * x[i];
    return s;
}

static float SFX(dot_f16)(const uint16_t *w, const float *x, int n) {
    VF s0 = VZERO(), s1 = VZERO();
    int i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        s0 = VFMA(VLOAD_F16(w + i), VLOAD(x + i), s0);
        s1 = VFMA(VLOAD_F16(w + i + W), VLOAD(x + i + W), s1);
    }
    for (; i + W <= n; i += W) s0 = VFMA(VLOAD_F16(w + i), VLOAD(x + i), s0);
    float s = VHSUM(VADD(s0, s1));
    for (; i < n; i++) s += k_f16(w[i]) * x[i];
    return s;
}

// MLX rows use sum_j (s q_j + b) x_j = s sum_j q_j x_j + b sum_j x_j per
// group: the inner loop is one FMA per lane, and the group sums of x
// (xsum) are computed once per call and shared by all rows.
static float SFX(dot_mlx4)(const uint8_t *p, const float *sc, const float *bi, const float *xsum,
                           const float *x, int cols, int group) {
    VF acc = VZERO();
    float bsum = 0;
    for (int g = 0, j0 = 0; j0 < cols; g++, j0 += group) {
        VF a0 = VZERO(), a1 = VZERO();
        for (int k = j0; k < j0 + group; k += 2 * W) {
            a0 = VFMA(VLOAD_NIB(p + k / 2), VLOAD(x + k), a0);
            a1 = VFMA(VLOAD_NIB(p + (k + W) / 2), VLOAD(x + k + W), a1);
        }
        acc = VFMA(VADD(a0, a1), VSET1(sc[g]), acc);
        bsum += bi[g] * xsum[g];
    }
    return VHSUM(acc) + bsum;
}

static float SFX(dot_mlx8)(const uint8_t *p, const float *sc, const float *bi, const float *xsum,
                           const float *x, int cols, int group) {
    VF acc = VZERO();
    float bsum = 0;
    for (int g = 0, j0 = 0; j0 < cols; g++, j0 += group) {
        VF a0 = VZERO(), a1 = VZERO();
        for (int k = j0; k < j0 + group; k += 2 * W) {
            a0 = VFMA(VLOAD_U8(p + k), VLOAD(x + k), a0);
            a1 = VFMA(VLOAD_U8(p + k + W), VLOAD(x + k + W), a1);
        }
        acc = VFMA(VADD(a0, a1), VSET1(sc[g]), acc);
        bsum += bi[g] * xsum[g];
    }
    return VHSUM(acc) + bsum;
}

// Other widths unpack each group's codes with the scalar bit reader.
static float SFX(dot_mlxgen)(const uint8_t *p, const float *sc, const float *bi, const float *xsum,
                             const float *x, int cols, int bits, int group) {
    float qb[128];
    k_bitreader br = {p, 0, 0};
    VF acc = VZERO();
    float bsum = 0;
    for (int g = 0, j0 = 0; j0 < cols; g++, j0 += group) {
        k_unpack(&br, qb, group, bits);
        VF a0 = VZERO();
        for (int k = 0; k < group; k += W) a0 = VFMA(VLOAD(qb + k), VLOAD(x + j0 + k), a0);
        acc = VFMA(a0, VSET1(sc[g]), acc);
        bsum += bi[g] * xsum[g];
    }
    return VHSUM(acc) + bsum;
}

/* ---- decoding rows to float for the batched path ---- */

static void SFX(decode_bf16)(float *dst, const uint16_t *w, int n) {
    int i = 0;
    for (; i + W <= n; i += W) VSTORE(dst + i, VLOAD_BF16(w + i));
    for (; i < n; i++) dst[i] = k_bf16(w[i]);
}

static void SFX(decode_f16)(float *dst, const uint16_t *w, int n) {
    int i = 0;
    for (; i + W <= n; i += W) VSTORE(dst + i, VLOAD_F16(w + i));
    for (; i < n; i++) dst[i] = k_f16(w[i]);
}

static void SFX(decode_mlx)(float *dst, const uint8_t *p, const float *sc, const float *bi,
                            int cols, int bits, int group) {
    float qb[128];
    k_bitreader br = {p, 0, 0};
    for (int g = 0, j0 = 0; j0 < cols; g++, j0 += group) {
        VF s = VSET1(sc[g]), b = VSET1(bi[g]);
        if (bits == 4) {
            for (int k = j0; k < j0 + group; k += W) VSTORE(dst + k, VFMA(VLOAD_NIB(p + k / 2), s, b));
        } else if (bits == 8) {
            for (int k = j0; k < j0 + group; k += W) VSTORE(dst + k, VFMA(VLOAD_U8(p + k), s, b));
        } else {
            k_unpack(&br, qb, group, bits);
            for (int k = 0; k < group; k += W) VSTORE(dst + j0 + k, VFMA(VLOAD(qb + k), s, b));
        }
    }
}

/* ---- batched product of decoded rows with n activation rows ---- */

// out[b][o0+i] = w_i · x_b for the r rows of wr (row stride cols).
static void SFX(gemm)(float *out, int ldo, int o0, const float *wr, int r, const float *x, int n, int cols) {
    const int kv = cols - cols % W;
    int b = 0;
    for (; b + MK_NB <= n; b += MK_NB) {
        int i = 0;
        for (; i + 4 <= r; i += 4) {
            VF c[4][MK_NB];
            for (int u = 0; u < 4; u++)
                for (int v = 0; v < MK_NB; v++) c[u][v] = VZERO();
            const float *w0 = wr + (size_t)i * cols;
            for (int k = 0; k < kv; k += W) {
                VF wv[4];
                for (int u = 0; u < 4; u++) wv[u] = VLOAD(w0 + (size_t)u * cols + k);
                for (int v = 0; v < MK_NB; v++) {
                    VF xv = VLOAD(x + (size_t)(b + v) * cols + k);
                    for (int u = 0; u < 4; u++) c[u][v] = VFMA(wv[u], xv, c[u][v]);
                }
            }
            for (int u = 0; u < 4; u++)
                for (int v = 0; v < MK_NB; v++) {
                    float s = VHSUM(c[u][v]);
                    const float *wp = w0 + (size_t)u * cols, *xp = x + (size_t)(b + v) * cols;
                    for (int k = kv; k < cols; k++) s += wp[k] * xp[k];
                    out[(size_t)(b + v) * ldo + o0 + i + u] = s;
                }
        }
        for (; i < r; i++)
            for (int v = 0; v < MK_NB; v++)
                out[(size_t)(b + v) * ldo + o0 + i] = SFX(dot)(wr + (size_t)i * cols, x + (size_t)(b + v) * cols, cols);
    }
    for (; b < n; b++)
        for (int i = 0; i < r; i++)
            out[(size_t)b * ldo + o0 + i] = SFX(dot)(wr + (size_t)i * cols, x + (size_t)b * cols, cols);
}

static void SFX(mm_f32)(float *out, const float *x, int n, const float *w, int rows, int cols, int lo, int hi) {
    if (n == 1) {
        for (int o = lo; o < hi; o++) out[o] = SFX(dot)(w + (size_t)o * cols, x, cols);
        return;
    }
    for (int o = lo; o < hi; o += K_RB) {
        int r = hi - o < K_RB ? hi - o : K_RB;
        SFX(gemm)(out, rows, o, w + (size_t)o * cols, r, x, n, cols);
    }
}

static void SFX(mm_half)(float *out, const float *x, int n, const uint16_t *w, int rows, int cols,
                         int lo, int hi, float *scratch, int bf16) {
    if (n == 1) {
        for (int o = lo; o < hi; o++)
            out[o] = bf16 ? SFX(dot_bf16)(w + (size_t)o * cols, x, cols) : SFX(dot_f16)(w + (size_t)o * cols, x, cols);
        return;
    }
    int rb = k_row_block(cols);
    for (int o = lo; o < hi; o += rb) {
        int r = hi - o < rb ? hi - o : rb;
        for (int i = 0; i < r; i++) {
            if (bf16) SFX(decode_bf16)(scratch + (size_t)i * cols, w + (size_t)(o + i) * cols, cols);
            else SFX(decode_f16)(scratch + (size_t)i * cols, w + (size_t)(o + i) * cols, cols);
        }
        SFX(gemm)(out, rows, o, scratch, r, x, n, cols);
    }
}

static void SFX(mm_mlx)(float *out, const float *x, int n, const uint32_t *wq, const float *sc, const float *bi,
                        int rows, int cols, int bits, int group, int lo, int hi, float *scratch) {
    const size_t rowBytes = (size_t)cols * bits / 8;
    const int groups = cols / group;
    const uint8_t *base = (const uint8_t *)wq;
    if (n == 1) {
        float *xsum = scratch;
        for (int g = 0; g < groups; g++) {
            VF s = VZERO();
            for (int k = 0; k < group; k += W) s = VADD(s, VLOAD(x + g * group + k));
            xsum[g] = VHSUM(s);
        }
        for (int o = lo; o < hi; o++) {
            const uint8_t *p = base + (size_t)o * rowBytes;
            const float *s = sc + (size_t)o * groups, *b = bi + (size_t)o * groups;
            if (bits == 4) out[o] = SFX(dot_mlx4)(p, s, b, xsum, x, cols, group);
            else if (bits == 8) out[o] = SFX(dot_mlx8)(p, s, b, xsum, x, cols, group);
            else out[o] = SFX(dot_mlxgen)(p, s, b, xsum, x, cols, bits, group);
        }
        return;
    }
    int rb = k_row_block(cols);
    for (int o = lo; o < hi; o += rb) {
        int r = hi - o < rb ? hi - o : rb;
        for (int i = 0; i < r; i++)
            SFX(decode_mlx)(scratch + (size_t)i * cols, base + (size_t)(o + i) * rowBytes,
                            sc + (size_t)(o + i) * groups, bi + (size_t)(o + i) * groups, cols, bits, group);
        SFX(gemm)(out, rows, o, scratch, r, x, n, cols);
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
