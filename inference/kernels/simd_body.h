// SIMD kernel bodies, written once over a vector abstraction and included
// by simd_x86.c (AVX2, AVX-512) and simd_neon.c (NEON). The includer
// defines W (lanes), the vector types VF (float) and VI (int32), the V*
// operations, SF16 (one half to float), R_MAX and NB_MAX (weight rows and
// activation rows per register block, NB_CASES listing 1..NB_MAX), RQ_MAX
// (weight rows per block of quantized formats with several activation
// rows, which need more registers) and
// SFX(name), which gives each function its level suffix.
//
// Weights are little-endian; an MLX row is a byte stream in which, at 4
// bits, element 2i is the low nibble of byte i (the uint32 words of MLX's
// packed weights, read as bytes on a little-endian CPU).

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

// exp(x): x = n ln2 + r with |r| <= ln2/2, exp(r) by its Taylor series to
// degree 7 (relative error ~1e-7). Inputs above 88 give exp(88); inputs
// below -87 (including -inf, as from masked logits) give exactly 0.
static inline VF SFX(vexp)(VF x0) {
    const VF x = VMIN(VMAX(x0, VSET1(-87.0f)), VSET1(88.0f));
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
    return VKEEP_GE(VMUL(p, VPOW2I(n)), x0, VSET1(-87.0f));
}

/* ---- matrix multiplication ----
 *
 * Two register-blocked kernels serve every weight format (block: float
 * formats and GGUF blocks, decoded to weights; block_quant: MLX, raw codes
 * scaled once per group): up to R_MAX weight rows times up to NB_MAX activation
 * rows. Each 2W-element block of a weight row is decoded once into two
 * float vectors and multiplied into all the activation rows of the block;
 * each activation vector is loaded once for all the weight rows. Within a
 * chunk of rows the activation block is the outer loop, so it stays in
 * cache while the chunk's weights stream past; for decode (n <= NB_MAX)
 * every weight is read exactly once.
 *
 * Batch invariance: the blocking only decides which output elements are
 * computed together, never the order of the operations that make one
 * element, and the work is split across threads by output rows only. So
 * an activation row gives the same bits alone (decode) as in a batch, and
 * at any thread count: seeded sampling is reproducible.
 *
 * A 2W block's two vectors multiply x[k..k+W) and x[k+W..k+2W). For 4-bit
 * MLX the lanes hold the low and the high nibbles of W bytes, that is the
 * even and the odd elements, so x is pre-permuted to match (mlx_prep):
 * within each block x'[k+i] = x[k+2i] and x'[k+W+i] = x[k+2i+1].
 */

#define K_INLINE static inline __attribute__((always_inline))

// Widths other than 4 and 8: each int lane gathers the two bytes holding
// its code with a byte shuffle, then shifts and masks. Half h (the lo or hi
// vector of a 2W block) reads bx_bytes bytes from p + h*bx_hioff; the
// shuffle and shift patterns come from bitx_setup.
K_INLINE VI SFX(bits_load)(const k_weights *wd, int h, const uint8_t *p, size_t avail) {
    const VI v = VSHUF_BYTES(VLOAD_BYTES(p, wd->bx_bytes, avail), VLOADI(wd->bx_ctrl[h]));
    return VANDI(VSRLV(v, VLOADI(wd->bx_shift[h])), VSET1I((1 << wd->bits) - 1));
}

static void SFX(bitx_setup)(k_weights *wd) {
    const int b = wd->bits;
    // The hi half gets its own window when W codes end on a byte boundary;
    // otherwise (NEON, odd widths) both halves share one 2W-code window.
    wd->bx_hioff = (W * b) % 8 == 0 ? W * b / 8 : 0;
    wd->bx_bytes = wd->bx_hioff ? W * b / 8 : 2 * W * b / 8;
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < W; i++) {
            const int bit = (h * W + i) * b - 8 * h * wd->bx_hioff;
            wd->bx_ctrl[h][4 * i] = (int8_t)(bit / 8);
            wd->bx_ctrl[h][4 * i + 1] = (int8_t)(bit / 8 + 1);
            wd->bx_ctrl[h][4 * i + 2] = wd->bx_ctrl[h][4 * i + 3] = (int8_t)0x80;  // zero
            wd->bx_shift[h][i] = bit % 8;
        }
}

// Elements k..k+2W of row o: the weights of float formats; for quantized
// ones the raw codes q (Q6_K's times their int8 sub-scale), or when scaled
// the weights s*q + b.
K_INLINE void SFX(decode2)(const int fmt, const int scaled, const k_weights *wd, int o, int k, VF s, VF b, VF *lo,
                           VF *hi) {
    switch (fmt) {
    case K_F32: {
        const float *p = wd->wf + (size_t)o * wd->cols + k;
        *lo = VLOAD(p);
        *hi = VLOAD(p + W);
        break;
    }
    case K_BF16: {
        const uint16_t *p = wd->wh + (size_t)o * wd->cols + k;
        *lo = VLOAD_BF16(p);
        *hi = VLOAD_BF16(p + W);
        break;
    }
    case K_F16: {
        const uint16_t *p = wd->wh + (size_t)o * wd->cols + k;
        *lo = VLOAD_F16(p);
        *hi = VLOAD_F16(p + W);
        break;
    }
    case K_MLX4: {
        const VI q = VLOAD_U8I(wd->wb + (size_t)o * wd->rowBytes + k / 2);
        *lo = VCVTI(VANDI(q, VSET1I(15)));
        *hi = VCVTI(VSRLI(q, 4));
        break;
    }
    case K_MLX8: {
        const uint8_t *p = wd->wb + (size_t)o * wd->rowBytes + k;
        *lo = VCVTI(VLOAD_U8I(p));
        *hi = VCVTI(VLOAD_U8I(p + W));
        break;
    }
    case K_Q8_0: {  // 32 int8 codes after each block's f16 scale
        const uint8_t *p = wd->wb + (size_t)o * wd->rowBytes + (size_t)(k / 32) * 34 + 2 + k % 32;
        *lo = VCVTSI(VLOAD_S8I(p));
        *hi = VCVTSI(VLOAD_S8I(p + W));
        break;
    }
    case K_Q4_0: {  // element e of a block: nibble e/16 of byte e%16
        const uint8_t *p = wd->wb + (size_t)o * wd->rowBytes + (size_t)(k / 32) * 18 + 2;
        const int e = k % 32;
        const VI ql = VLOAD_U8I(p + e % 16), qh = VLOAD_U8I(p + (e + W) % 16);
        *lo = VCVTI(e < 16 ? VANDI(ql, VSET1I(15)) : VSRLI(ql, 4));
        *hi = VCVTI(e + W < 16 ? VANDI(qh, VSET1I(15)) : VSRLI(qh, 4));
        break;
    }
    case K_Q4_1: {  // Q4_0's nibbles after d and m
        const uint8_t *p = wd->wb + (size_t)o * wd->rowBytes + (size_t)(k / 32) * 20 + 4;
        const int e = k % 32;
        const VI ql = VLOAD_U8I(p + e % 16), qh = VLOAD_U8I(p + (e + W) % 16);
        *lo = VCVTI(e < 16 ? VANDI(ql, VSET1I(15)) : VSRLI(ql, 4));
        *hi = VCVTI(e + W < 16 ? VANDI(qh, VSET1I(15)) : VSRLI(qh, 4));
        break;
    }
    case K_Q5_0:
    case K_Q5_1: {  // Q4_0's nibbles plus bit e of the u32 qh as a fifth bit
        const int bsize = fmt == K_Q5_0 ? 22 : 24, qhoff = fmt == K_Q5_0 ? 2 : 4;
        const uint8_t *blk = wd->wb + (size_t)o * wd->rowBytes + (size_t)(k / 32) * bsize, *p = blk + qhoff + 4;
        const int e = k % 32;
        uint32_t qh32;
        memcpy(&qh32, blk + qhoff, 4);
        const VI qhv = VSET1I((int)qh32), one = VSET1I(1);
        const VI ql = VLOAD_U8I(p + e % 16), qh = VLOAD_U8I(p + (e + W) % 16);
        const VI bl = VSLLI(VANDI(VSRLV(qhv, VLOADI(k_iota + e)), one), 4);
        const VI bh = VSLLI(VANDI(VSRLV(qhv, VLOADI(k_iota + e + W)), one), 4);
        *lo = VCVTI(VORI(e < 16 ? VANDI(ql, VSET1I(15)) : VSRLI(ql, 4), bl));
        *hi = VCVTI(VORI(e + W < 16 ? VANDI(qh, VSET1I(15)) : VSRLI(qh, 4), bh));
        break;
    }
    case K_Q5_K: {  // Q4_K's nibbles plus bit 2c (+1 for high nibbles) of qh[e]
        const int kq = k % 256, c = kq / 64, e = kq % 32, high = kq % 64 >= 32;
        const uint8_t *blk = wd->wb + (size_t)o * wd->rowBytes + (size_t)(k / 256) * 176;
        const uint8_t *p = blk + 48 + 32 * c + e, *qb = blk + 16 + e;
        const VI shift = VSET1I(2 * c + high), one = VSET1I(1);
        VI l0 = VLOAD_U8I(p), l1 = VLOAD_U8I(p + W);
        if (high) {
            l0 = VSRLI(l0, 4);
            l1 = VSRLI(l1, 4);
        } else {
            l0 = VANDI(l0, VSET1I(15));
            l1 = VANDI(l1, VSET1I(15));
        }
        *lo = VCVTI(VORI(l0, VSLLI(VANDI(VSRLV(VLOAD_U8I(qb), shift), one), 4)));
        *hi = VCVTI(VORI(l1, VSLLI(VANDI(VSRLV(VLOAD_U8I(qb + W), shift), one), 4)));
        break;
    }
    case K_Q4_K: {  // chunk c of 64: bytes 32c.. low nibbles, then high nibbles
        const int kq = k % 256, c = kq / 64, e = kq % 32;
        const uint8_t *p = wd->wb + (size_t)o * wd->rowBytes + (size_t)(k / 256) * 144 + 16 + 32 * c + e;
        const VI ql = VLOAD_U8I(p), qh = VLOAD_U8I(p + W);
        if (kq % 64 < 32) {
            *lo = VCVTI(VANDI(ql, VSET1I(15)));
            *hi = VCVTI(VANDI(qh, VSET1I(15)));
        } else {
            *lo = VCVTI(VSRLI(ql, 4));
            *hi = VCVTI(VSRLI(qh, 4));
        }
        break;
    }
    case K_Q6_K: {  // codes come out multiplied by their int8 sub-scale
        const int kq = k % 256, h = kq / 128, kk = (kq % 128) / 32, e = kq % 32;
        const uint8_t *base = wd->wb + (size_t)o * wd->rowBytes + (size_t)(k / 256) * 210;
        const uint8_t *ql = base + 64 * h + 32 * (kk & 1) + e, *qh = base + 128 + 32 * h + e;
        const int8_t *sc = (const int8_t *)base + 192 + 8 * h + 2 * kk;
        const VI shift = VSET1I(2 * kk), three = VSET1I(3);
        VI l0 = VLOAD_U8I(ql), l1 = VLOAD_U8I(ql + W);
        if (kk >= 2) {
            l0 = VSRLI(l0, 4);
            l1 = VSRLI(l1, 4);
        } else {
            l0 = VANDI(l0, VSET1I(15));
            l1 = VANDI(l1, VSET1I(15));
        }
        const VI q0 = VORI(l0, VSLLI(VANDI(VSRLV(VLOAD_U8I(qh), shift), three), 4));
        const VI q1 = VORI(l1, VSLLI(VANDI(VSRLV(VLOAD_U8I(qh + W), shift), three), 4));
        *lo = VMUL(VSUB(VCVTI(q0), VSET1(32.0f)), VSET1((float)sc[e / 16]));
        *hi = VMUL(VSUB(VCVTI(q1), VSET1(32.0f)), VSET1((float)sc[(e + W) / 16]));
        break;
    }
    case K_MLXG: {  // other MLX widths
        const size_t off = (size_t)k * wd->bits / 8;
        const uint8_t *p = wd->wb + (size_t)o * wd->rowBytes + off;
        *lo = VCVTI(SFX(bits_load)(wd, 0, p, wd->rowBytes - off));
        *hi = VCVTI(SFX(bits_load)(wd, 1, p + wd->bx_hioff, wd->rowBytes - off - wd->bx_hioff));
        break;
    }
    }
    if (fmt >= K_QUANT && scaled) {
        *lo = VFMA(*lo, s, b);
        *hi = VFMA(*hi, s, b);
    }
}

// Scale and bias of group g of row o: w = s*q + b.
K_INLINE void SFX(group_sb)(const int fmt, const k_weights *wd, int o, int g, float *s, float *b) {
    if (fmt == K_Q4_K || fmt == K_Q5_K) {
        const uint8_t *blk = wd->wb + (size_t)o * wd->rowBytes + (size_t)(g / 8) * (fmt == K_Q4_K ? 144 : 176);
        uint16_t d, dmin;
        memcpy(&d, blk, 2);
        memcpy(&dmin, blk + 2, 2);
        int sc, m;
        k_q4k_scale_min(blk + 4, g % 8, &sc, &m);
        *s = SF16(d) * (float)sc;
        *b = -SF16(dmin) * (float)m;
    } else if (fmt == K_Q6_K) {
        uint16_t d;
        memcpy(&d, wd->wb + (size_t)o * wd->rowBytes + (size_t)(g / 8) * 210 + 208, 2);
        *s = SF16(d);
        *b = 0;
    } else if (fmt == K_Q4_1 || fmt == K_Q5_0 || fmt == K_Q5_1) {
        const uint8_t *blk = wd->wb + (size_t)o * wd->rowBytes + (size_t)g * (fmt == K_Q4_1 ? 20 : fmt == K_Q5_0 ? 22 : 24);
        uint16_t d, m;
        memcpy(&d, blk, 2);
        *s = SF16(d);
        if (fmt == K_Q5_0) {
            *b = -16.0f * *s;
        } else {
            memcpy(&m, blk + 2, 2);
            *b = SF16(m);
        }
    } else if (fmt == K_Q8_0 || fmt == K_Q4_0) {
        const int bsize = fmt == K_Q8_0 ? 34 : 18;
        uint16_t d;
        memcpy(&d, wd->wb + (size_t)o * wd->rowBytes + (size_t)g * bsize, 2);
        *s = SF16(d);
        *b = fmt == K_Q8_0 ? 0.0f : -8.0f * *s;
    } else {
        *s = wd->sc[(size_t)o * wd->groups + g];
        *b = wd->bi[(size_t)o * wd->groups + g];
    }
}

// K-quant super-blocks hold 8 groups: their scales and biases are worked
// out once per super-block (at its first group) into ks/kb.
K_INLINE void SFX(group_sb_cached)(const int fmt, const k_weights *wd, int o, int g, float *ks, float *kb, float *s,
                                   float *b) {
    if (fmt != K_Q4_K && fmt != K_Q5_K && fmt != K_Q6_K) {
        SFX(group_sb)(fmt, wd, o, g, s, b);
        return;
    }
    if (g % 8 == 0) {
        if (fmt == K_Q4_K || fmt == K_Q5_K) {
            const uint8_t *blk = wd->wb + (size_t)o * wd->rowBytes + (size_t)(g / 8) * (fmt == K_Q4_K ? 144 : 176);
            uint16_t hd, hm;
            memcpy(&hd, blk, 2);
            memcpy(&hm, blk + 2, 2);
            const float d = SF16(hd), dmin = SF16(hm);
            for (int j = 0; j < 8; j++) {
                int sc, m;
                k_q4k_scale_min(blk + 4, j, &sc, &m);
                ks[j] = d * (float)sc;
                kb[j] = -dmin * (float)m;
            }
        } else {
            float d, bz;
            SFX(group_sb)(fmt, wd, o, g, &d, &bz);
            for (int j = 0; j < 8; j++) ks[j] = d, kb[j] = 0;
        }
    }
    *s = ks[g % 8];
    *b = kb[g % 8];
}

// Rows o0..o0+R of the weights against activation rows 0..nb of x, the
// weights decoded to floats (GGUF blocks: s*q + b per element); out points
// at activation row 0 (row stride ldo). Every (weight row, activation row)
// pair runs the same sequence of operations whatever R and nb are, so a
// result does not depend on the rows computed beside it.
K_INLINE void SFX(block)(const int fmt, const int R, const int nb, float *out, int ldo, const float *x,
                         const k_weights *wd, int o0) {
    const int cols = wd->cols;
    const int quant = fmt >= K_QUANT;
    const int group = quant ? wd->group : cols;
    const int kend = quant ? cols : cols - cols % (2 * W);  // whole 2W blocks
    VF acc[R_MAX][NB_MAX];
    float ks[R_MAX][8], kb[R_MAX][8];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < nb; v++) acc[r][v] = VZERO();
    for (int j0 = 0, g = 0; j0 < kend; j0 += group, g++) {
        const int jend = j0 + group < kend ? j0 + group : kend;
        VF vs[R_MAX], vb[R_MAX];
        for (int r = 0; r < R; r++) {
            float sc = 0, bi = 0;
            if (quant) SFX(group_sb_cached)(fmt, wd, o0 + r, g, ks[r], kb[r], &sc, &bi);
            vs[r] = VSET1(sc);
            vb[r] = VSET1(bi);
        }
        for (int k = j0; k < jend; k += 2 * W) {
            VF wl[R_MAX], wh[R_MAX];
            for (int r = 0; r < R; r++) SFX(decode2)(fmt, 1, wd, o0 + r, k, vs[r], vb[r], &wl[r], &wh[r]);
            for (int v = 0; v < nb; v++) {
                const VF xl = VLOAD(x + (size_t)v * cols + k), xh = VLOAD(x + (size_t)v * cols + k + W);
                for (int r = 0; r < R; r++) {
                    acc[r][v] = VFMA(wl[r], xl, acc[r][v]);
                    acc[r][v] = VFMA(wh[r], xh, acc[r][v]);
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < nb; v++) {
            float s = VHSUM(acc[r][v]);
            for (int k = kend; k < cols; k++) {  // float formats only
                const size_t i = (size_t)(o0 + r) * cols + k;
                const float w = fmt == K_F32 ? wd->wf[i] : fmt == K_BF16 ? k_bf16(wd->wh[i]) : k_f16(wd->wh[i]);
                s += w * x[(size_t)v * cols + k];
            }
            out[(size_t)v * ldo + o0 + r] = s;
        }
}


// MLX rows o0..o0+R against activation rows 0..nb. Per group,
// sum_j (s q_j + b) x_j = s (q·x) + b sum_j x_j: the inner loop multiplies
// raw codes, the scale is applied once per group, and the bias terms use
// the group sums xsum ([nb][groups]) of x. With MLX's groups of 64 or 128
// this saves a multiply-add per weight vector; GGUF's 32-element groups
// are one or two vector steps, where block's decode-and-scale is as cheap
// at one activation row and cheaper at several. As in block, each output
// element's operations do not depend on R or nb: a row computed in a batch
// equals, bit for bit, the same row computed alone.
K_INLINE void SFX(block_quant)(const int fmt, const int R, const int nb, float *out, int ldo, const float *x,
                               const k_weights *wd, int o0, const float *xsum) {
    const int cols = wd->cols, group = wd->group, groups = wd->groups;
    VF acc[R_MAX][NB_MAX];
    float bsum[R_MAX][NB_MAX], ks[R_MAX][8], kb[R_MAX][8];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < nb; v++) {
            acc[r][v] = VZERO();
            bsum[r][v] = 0;
        }
    for (int j0 = 0, g = 0; j0 < cols; j0 += group, g++) {
        VF a[R_MAX][NB_MAX];
        for (int r = 0; r < R; r++)
            for (int v = 0; v < nb; v++) a[r][v] = VZERO();
        for (int k = j0; k < j0 + group; k += 2 * W) {
            VF wl[R_MAX], wh[R_MAX];
            for (int r = 0; r < R; r++) SFX(decode2)(fmt, 0, wd, o0 + r, k, VZERO(), VZERO(), &wl[r], &wh[r]);
            for (int v = 0; v < nb; v++) {
                const VF xl = VLOAD(x + (size_t)v * cols + k), xh = VLOAD(x + (size_t)v * cols + k + W);
                for (int r = 0; r < R; r++) {
                    a[r][v] = VFMA(wl[r], xl, a[r][v]);
                    a[r][v] = VFMA(wh[r], xh, a[r][v]);
                }
            }
        }
        for (int r = 0; r < R; r++) {
            float sc, bi;
            SFX(group_sb_cached)(fmt, wd, o0 + r, g, ks[r], kb[r], &sc, &bi);
            const VF vs = VSET1(sc);
            for (int v = 0; v < nb; v++) {
                acc[r][v] = VFMA(a[r][v], vs, acc[r][v]);
                bsum[r][v] += bi * xsum[(size_t)v * groups + g];
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < nb; v++) out[(size_t)v * ldo + o0 + r] = VHSUM(acc[r][v]) + bsum[r][v];
}

// scratch holds n*groups floats for MLX formats. Which kernel runs
// depends on the format alone, never on n: batch invariance.
K_INLINE void SFX(mm)(const int fmt, float *out, const float *x, int n, const k_weights *wd, int rows, int lo,
                      int hi, float *scratch) {
    const int mlx = fmt == K_MLX4 || fmt == K_MLX8 || fmt == K_MLXG;
    if (mlx) {
        // Group sums of every activation row. They are unchanged in value
        // by mlx_prep, which permutes within groups; n = 1 and n > 1 sum
        // the same (prepared) x the same way.
        for (int b = 0; b < n; b++)
            for (int g = 0; g < wd->groups; g++) {
                const float *xg = x + (size_t)b * wd->cols + (size_t)g * wd->group;
                VF s = VZERO();
                for (int k = 0; k < wd->group; k += W) s = VADD(s, VLOAD(xg + k));
                scratch[(size_t)b * wd->groups + g] = VHSUM(s);
            }
    }
    int b0 = 0;
#ifdef VTILE
    // Float weights, whole blocks of GEMM_NB activation rows: the level's
    // tile kernel (GEMM_R weight rows at a time, the same bits as block),
    // with block for the rows of the chunk that do not fill a tile.
    if (fmt < K_QUANT)
        for (; b0 + GEMM_NB <= n; b0 += GEMM_NB) {
            float *ob = out + (size_t)b0 * rows;
            const float *xb = x + (size_t)b0 * wd->cols;
            int o = lo;
            for (; o + GEMM_R <= hi; o += GEMM_R) VTILE(fmt, ob, rows, xb, wd, o);
            for (; o < hi; o++)
                for (int v = 0; v < GEMM_NB; v += NB_MAX) {
                    const int nb = GEMM_NB - v < NB_MAX ? GEMM_NB - v : NB_MAX;
#define CALL(k) case k: SFX(block)(fmt, 1, k, ob + (size_t)v * rows, rows, xb + (size_t)v * wd->cols, wd, o); break;
                    switch (nb) { NB_CASES(CALL) }
#undef CALL
                }
        }
#endif
    for (; b0 < n; b0 += NB_MAX) {
        const int nb = n - b0 < NB_MAX ? n - b0 : NB_MAX;
        float *ob = out + (size_t)b0 * rows;
        const float *xb = x + (size_t)b0 * wd->cols;
        int o = lo;
        if (mlx) {
            const float *xs = scratch + (size_t)b0 * wd->groups;
            // Fewer weight rows per block when several activation rows
            // need their own per-group partial sums (register pressure).
            if (nb == 1) {
                for (; o + R_MAX <= hi; o += R_MAX) SFX(block_quant)(fmt, R_MAX, 1, ob, rows, xb, wd, o, xs);
            } else {
#define CALL(k) case k: SFX(block_quant)(fmt, RQ_MAX, k, ob, rows, xb, wd, o, xs); break;
                for (; o + RQ_MAX <= hi; o += RQ_MAX) switch (nb) { NB_CASES(CALL) }
#undef CALL
            }
#define CALL(k) case k: SFX(block_quant)(fmt, 1, k, ob, rows, xb, wd, o, xs); break;
            for (; o < hi; o++) switch (nb) { NB_CASES(CALL) }
#undef CALL
            continue;
        }
#define CALL(k) case k: SFX(block)(fmt, R_MAX, k, ob, rows, xb, wd, o); break;
        for (; o + R_MAX <= hi; o += R_MAX) switch (nb) { NB_CASES(CALL) }
#undef CALL
#define CALL(k) case k: SFX(block)(fmt, 1, k, ob, rows, xb, wd, o); break;
        for (; o < hi; o++) switch (nb) { NB_CASES(CALL) }
#undef CALL
    }
}

static void SFX(mm_f32)(float *out, const float *x, int n, const float *w, int rows, int cols, int lo, int hi) {
    const k_weights wd = {.wf = w, .cols = cols};
    SFX(mm)(K_F32, out, x, n, &wd, rows, lo, hi, NULL);
}

static void SFX(mm_half)(float *out, const float *x, int n, const uint16_t *w, int rows, int cols, int lo, int hi,
                         float *scratch, int bf16) {
    (void)scratch;
    const k_weights wd = {.wh = w, .cols = cols};
    if (bf16) SFX(mm)(K_BF16, out, x, n, &wd, rows, lo, hi, NULL);
    else SFX(mm)(K_F16, out, x, n, &wd, rows, lo, hi, NULL);
}

/* ---- panels ----
 * Float weights repacked in panels of 16 rows (panels.go): value (i, k) of
 * panel p, that is w[16p+i][k], is at (p*cols + k)*16 + i. A tile of nb
 * activation rows times pv panels keeps its sums in registers as whole
 * rows of outputs: each step broadcasts one activation against the panels'
 * vectors at column k, so no horizontal sums are needed. Every output is
 * one fused multiply-add chain over k = 0, 1, ... cols-1 from zero, as the
 * scalar path (fmaf) runs it, whatever the tile, n or level: the same bits
 * everywhere.
 *
 * The tile is PAN_NB rows times PAN_PV panels. A level may also define a
 * wide tile, PAN_WIDE_NB rows times PAN_WIDE_PV panels, with as many sums
 * and fewer weight loads per step (each a conversion for half weights); it
 * runs unless a row of activations is a multiple of 4 KiB (cols % 1024 ==
 * 0), where the rows of a tile all fall in one set of the L1 cache and
 * more of them than its ways evict each other. */
#define PAN_V (16 / W)
#define PAN_NB 6
#ifndef PAN_PV
#define PAN_PV 1 // panels per tile: registers for PAN_NB * PAN_PV * PAN_V sums
#endif
#ifndef PAN_WIDE_NB
#define PAN_WIDE_NB PAN_NB
#define PAN_WIDE_PV PAN_PV
#endif
#define PAN_MAX_NB (PAN_WIDE_NB > PAN_NB ? PAN_WIDE_NB : PAN_NB)
#define PAN_MAX_PV (PAN_PV > PAN_WIDE_PV ? PAN_PV : PAN_WIDE_PV)
K_INLINE VF SFX(pan_load)(const int fmt, const void *w, size_t i) {
    return fmt == K_F32    ? VLOAD((const float *)w + i)
           : fmt == K_BF16 ? VLOAD_BF16((const uint16_t *)w + i)
                           : VLOAD_F16((const uint16_t *)w + i);
}
K_INLINE void SFX(pan_tile)(const int fmt, const int nb, const int pv, float *out, int rows, const float *x,
                            int cols, const void *w, int p0) {
    VF a[PAN_MAX_NB][PAN_MAX_PV * PAN_V];
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < pv * PAN_V; j++) a[b][j] = VZERO();
    const size_t stride = (size_t)cols * 16;
    const size_t base = (size_t)p0 * stride;
    for (int k = 0; k < cols; k++) {
        VF wv[PAN_MAX_PV * PAN_V];
        for (int p = 0; p < pv; p++)
            for (int v = 0; v < PAN_V; v++)
                wv[p * PAN_V + v] = SFX(pan_load)(fmt, w, base + p * stride + (size_t)k * 16 + v * W);
        for (int b = 0; b < nb; b++) {
            const VF xb = VSET1(x[(size_t)b * cols + k]);
            for (int j = 0; j < pv * PAN_V; j++) a[b][j] = VFMA(wv[j], xb, a[b][j]);
        }
    }
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < pv * PAN_V; j++) {
            const int o = p0 * 16 + j * W;
            float *dst = out + (size_t)b * rows + o;
            if (o + W <= rows) {
                VSTORE(dst, a[b][j]);
            } else if (o < rows) { // the zero padding of the last panel
                float t[W];
                VSTORE(t, a[b][j]);
                for (int i = 0; i < rows - o; i++) dst[i] = t[i];
            }
        }
}

// PAN_ROWS runs tiles of up to NB rows times PV panels (then single panels
// where PV > 1) over rows [lo, hi) of out for every activation row. The
// switches make every tile shape a compile-time one.
#define PAN_TILE(f, nbv, pv) SFX(pan_tile)(f, nbv, pv, ob, rows, xb, cols, w, p)
#define PAN_FMTS(nbv, pv)                                                    \
    switch (fmt) {                                                           \
    case K_F32: PAN_TILE(K_F32, nbv, pv); break;                             \
    case K_BF16: PAN_TILE(K_BF16, nbv, pv); break;                           \
    default: PAN_TILE(K_F16, nbv, pv); break;                                \
    }
#define PAN_CASE(nbv, pv)                                                    \
    case nbv: PAN_FMTS(nbv, pv) break;
#define PAN_ROWS(NB, PV)                                                     \
    for (int b0 = 0; b0 < n; b0 += NB) {                                     \
        const int nb = n - b0 < NB ? n - b0 : NB;                            \
        float *ob = out + (size_t)b0 * rows;                                 \
        const float *xb = x + (size_t)b0 * cols;                             \
        int p = lo / 16;                                                     \
        for (; p + PV <= pe; p += PV) {                                      \
            switch (nb) {                                                    \
                PAN_CASE(NB, PV)                                             \
                PAN_BELOW(NB, PV)                                            \
            }                                                                \
        }                                                                    \
        for (; PV > 1 && p < pe; p++) {                                      \
            switch (nb) {                                                    \
                PAN_CASE(NB, 1)                                              \
                PAN_BELOW(NB, 1)                                             \
            }                                                                \
        }                                                                    \
    }
// PAN_BELOW(NB, pv) lists the cases nb = 1 ... NB-1 (NB expanded first).
#define PAN_BELOW(NB, pv) PAN_BELOW_(NB, pv)
#define PAN_BELOW_(NB, pv) PAN_CASES_BELOW_##NB(pv)
#define PAN_CASES_BELOW_6(pv) PAN_CASE(1, pv) PAN_CASE(2, pv) PAN_CASE(3, pv) PAN_CASE(4, pv) PAN_CASE(5, pv)
#define PAN_CASES_BELOW_12(pv)                                                                          \
    PAN_CASES_BELOW_6(pv) PAN_CASE(6, pv) PAN_CASE(7, pv) PAN_CASE(8, pv) PAN_CASE(9, pv) PAN_CASE(10, pv) \
        PAN_CASE(11, pv)

// mm_panels sets rows [lo, hi) of out ([n][rows]); lo is a multiple of 16
// and hi one too or rows.
static void SFX(mm_panels)(float *out, const float *x, int n, const void *w, int fmt, int rows, int cols, int lo,
                           int hi) {
    const int pe = (hi + 15) / 16;
    if (PAN_WIDE_NB != PAN_NB && cols % 1024 != 0) {
        PAN_ROWS(PAN_WIDE_NB, PAN_WIDE_PV)
    } else {
        PAN_ROWS(PAN_NB, PAN_PV)
    }
}
#undef PAN_CASES_BELOW_12
#undef PAN_BELOW_
#undef PAN_BELOW
#undef PAN_CASES_BELOW_6
#undef PAN_ROWS
#undef PAN_CASE
#undef PAN_FMTS
#undef PAN_TILE
#undef PAN_MAX_PV
#undef PAN_MAX_NB
#undef PAN_WIDE_PV
#undef PAN_WIDE_NB
#undef PAN_NB
#undef PAN_V
#undef PAN_PV

/* ---- bidirectional attention (encoders) ----
 * One item per head of one sequence of n tokens (rows of q, k, v and out
 * nh*hd apart; hd a multiple of W). The head's keys are staged transposed
 * in scratch (hd rows of nk, n rounded up to BI_S*W, zero past n). Query
 * rows then go BI_R at a time, as a matrix product does: each step of the
 * scores loads BI_S vectors of keys and broadcasts BI_R query values
 * against them, and each key's value row, loaded once, takes the BI_R rows'
 * softmax weights (up to 4 vectors of the head at a time), so that a load
 * feeds BI_R fused multiply-adds instead of one and no horizontal sums are
 * needed. Every sum runs in an order fixed by d and the key positions, so a
 * row's result does not depend on its block or on the rest of the batch.
 * scratch: (hd + BI_R) * nk floats (k_attn_bidir_scratch). */
#ifndef BI_R
#define BI_R 2 // query rows per block
#endif
#define BI_S 4 // key vectors per score block
_Static_assert(BI_R <= K_BI_MAX_ROWS && BI_S * W <= K_BI_KEY_BLOCK, "k_attn_bidir_scratch is too small");

// bi_scores writes the scaled scores of nr query rows (q, rows rs apart)
// against all nk staged keys, row r at sc + r*nk.
K_INLINE void SFX(bi_scores)(const int nr, float *sc, int nk, const float *q, size_t rs, const float *kt, int hd,
                             VF vscale) {
    for (int j0 = 0; j0 < nk; j0 += BI_S * W) {
        VF a[BI_R][BI_S];
        for (int r = 0; r < nr; r++)
            for (int u = 0; u < BI_S; u++) a[r][u] = VZERO();
        const float *kr = kt + j0;
        for (int d = 0; d < hd; d++, kr += nk) {
            VF kv[BI_S];
            for (int u = 0; u < BI_S; u++) kv[u] = VLOAD(kr + u * W);
            for (int r = 0; r < nr; r++) {
                const VF qd = VSET1(q[(size_t)r * rs + d]);
                for (int u = 0; u < BI_S; u++) a[r][u] = VFMA(qd, kv[u], a[r][u]);
            }
        }
        for (int r = 0; r < nr; r++)
            for (int u = 0; u < BI_S; u++) VSTORE(sc + (size_t)r * nk + j0 + u * W, VMUL(a[r][u], vscale));
    }
}

// bi_values sets nv vectors of nr output rows (o, rows rs apart) to the
// rows' weights (sc, nk apart) times the value rows (v, rs apart), scaled
// by inv.
K_INLINE void SFX(bi_values)(const int nr, const int nv, float *o, size_t rs, const float *sc, int nk,
                             const float *v, int n, const float *inv) {
    VF a[BI_R][4];
    for (int r = 0; r < nr; r++)
        for (int u = 0; u < nv; u++) a[r][u] = VZERO();
    const float *vr = v;
    for (int j = 0; j < n; j++, vr += rs) {
        VF vv[4];
        for (int u = 0; u < nv; u++) vv[u] = VLOAD(vr + u * W);
        for (int r = 0; r < nr; r++) {
            const VF p = VSET1(sc[(size_t)r * nk + j]);
            for (int u = 0; u < nv; u++) a[r][u] = VFMA(p, vv[u], a[r][u]);
        }
    }
    for (int r = 0; r < nr; r++) {
        const VF s = VSET1(inv[r]);
        for (int u = 0; u < nv; u++) VSTORE(o + (size_t)r * rs + u * W, VMUL(a[r][u], s));
    }
}

// bi_block runs nr query rows of one head: q, o at the first row's head.
K_INLINE void SFX(bi_block)(const int nr, float *o, const float *q, const float *kt, const float *v, float *sc,
                            int n, int nk, size_t rs, int hd, VF vscale) {
    SFX(bi_scores)(nr, sc, nk, q, rs, kt, hd, vscale);
    float inv[BI_R];
    for (int r = 0; r < nr; r++) {
        float *sr = sc + (size_t)r * nk;
        for (int j = n; j < nk; j++) sr[j] = -INFINITY;
        VF vmx = VLOAD(sr);
        for (int j = W; j < nk; j += W) vmx = VMAX(vmx, VLOAD(sr + j));
        const VF vm = VSET1(VHMAX(vmx));
        VF vsum = VZERO();
        for (int j = 0; j < nk; j += W) {
            const VF e = SFX(vexp)(VSUB(VLOAD(sr + j), vm));
            VSTORE(sr + j, e);
            vsum = VADD(vsum, e);
        }
        inv[r] = 1.0f / VHSUM(vsum);
    }
    for (int d0 = 0; d0 < hd; d0 += 4 * W) {
        switch ((hd - d0) / W >= 4 ? 4 : (hd - d0) / W) {
        case 1: SFX(bi_values)(nr, 1, o + d0, rs, sc, nk, v + d0, n, inv); break;
        case 2: SFX(bi_values)(nr, 2, o + d0, rs, sc, nk, v + d0, n, inv); break;
        case 3: SFX(bi_values)(nr, 3, o + d0, rs, sc, nk, v + d0, n, inv); break;
        default: SFX(bi_values)(nr, 4, o + d0, rs, sc, nk, v + d0, n, inv); break;
        }
    }
}

static void SFX(attn_bidir)(float *out, const float *q, const float *k, const float *v, int n, int nh, int hd,
                            float scale, int lo, int hi, float *scratch) {
    const int nk = (n + BI_S * W - 1) / (BI_S * W) * (BI_S * W);
    const size_t rs = (size_t)nh * hd;
    float *kt = scratch, *sc = scratch + (size_t)hd * nk;
    const VF vscale = VSET1(scale);
    for (int h = lo; h < hi; h++) {
        for (int j = 0; j < n; j++) {
            const float *kj = k + (size_t)j * rs + (size_t)h * hd;
            for (int d = 0; d < hd; d++) kt[(size_t)d * nk + j] = kj[d];
        }
        for (int d = 0; d < hd; d++)
            for (int j = n; j < nk; j++) kt[(size_t)d * nk + j] = 0;
        const size_t hoff = (size_t)h * hd;
        int i = 0;
        for (; i + BI_R <= n; i += BI_R)
            SFX(bi_block)(BI_R, out + i * rs + hoff, q + i * rs + hoff, kt, v + hoff, sc, n, nk, rs, hd, vscale);
        for (; i < n; i++)
            SFX(bi_block)(1, out + i * rs + hoff, q + i * rs + hoff, kt, v + hoff, sc, n, nk, rs, hd, vscale);
    }
}
#undef BI_S
#undef BI_R

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
    k_weights wd = {.wb = (const uint8_t *)wq, .rowBytes = (size_t)cols * bits / 8, .sc = sc, .bi = bi,
                          .cols = cols, .bits = bits, .group = group, .groups = cols / group};
    if (bits != 4 && bits != 8) SFX(bitx_setup)(&wd);
    if (bits == 4) SFX(mm)(K_MLX4, out, x, n, &wd, rows, lo, hi, scratch);
    else if (bits == 8) SFX(mm)(K_MLX8, out, x, n, &wd, rows, lo, hi, scratch);
    else SFX(mm)(K_MLXG, out, x, n, &wd, rows, lo, hi, scratch);
}

// GGUF blocks by ggml type id. All but Q2_K and Q3_K are handled as
// groups of 32 elements with a scale and a bias. Those two have 16-element
// sub-blocks, each with its own scale (and min): a row is expanded to
// floats in scratch, then multiplied into every activation row.
static void SFX(mm_gguf)(float *out, const float *x, int n, const uint8_t *w, int type, int rows, int cols, int lo,
                         int hi, float *scratch) {
    const k_weights wd = {.wb = w, .rowBytes = k_gguf_row_bytes(type, cols), .cols = cols, .group = 32,
                          .groups = cols / 32};
    switch (type) {
    case 8: SFX(mm)(K_Q8_0, out, x, n, &wd, rows, lo, hi, scratch); break;
    case 2: SFX(mm)(K_Q4_0, out, x, n, &wd, rows, lo, hi, scratch); break;
    case 3: SFX(mm)(K_Q4_1, out, x, n, &wd, rows, lo, hi, scratch); break;
    case 6: SFX(mm)(K_Q5_0, out, x, n, &wd, rows, lo, hi, scratch); break;
    case 7: SFX(mm)(K_Q5_1, out, x, n, &wd, rows, lo, hi, scratch); break;
    case 12: SFX(mm)(K_Q4_K, out, x, n, &wd, rows, lo, hi, scratch); break;
    case 13: SFX(mm)(K_Q5_K, out, x, n, &wd, rows, lo, hi, scratch); break;
    case 14: SFX(mm)(K_Q6_K, out, x, n, &wd, rows, lo, hi, scratch); break;
    default:
        for (int o = lo; o < hi; o++) {
            k_dequant_gguf_row(scratch, w + (size_t)o * wd.rowBytes, type, cols);
            for (int b = 0; b < n; b++) out[(size_t)b * rows + o] = SFX(dot)(scratch, x + (size_t)b * cols, cols);
        }
    }
}

/* ---- attention ----
 * simd_attn.h is instantiated once per KV storage: float32, half (the KV
 * cache's default storage, half the bytes to stream at depth), and q8_0
 * (blocks of 32 int8 codes with a half scale: 34 bytes per 32 values). */

#define ATTN_FN SFX(attention)
#define ATTN_STAGE SFX(attn_stage)
#define ATTN_PART SFX(attn_part)
#define KT float
#define KHEAD(hd) (hd)
#define KLOAD(s, x) VLOAD((s) + (x))
#define KSCALAR(s, x) ((s)[x])
#include "simd_attn.h"

#define ATTN_FN SFX(attention_f16)
#define ATTN_STAGE SFX(attn_stage_f16)
#define ATTN_PART SFX(attn_part_f16)
#define KT uint16_t
#define KHEAD(hd) (hd)
#define KLOAD(s, x) VLOAD_F16((s) + (x))
#define KSCALAR(s, x) SF16((s)[x])
#include "simd_attn.h"

// W values at element x (a multiple of W) of a q8_0 head row: the codes of
// one block times its scale, code * scale as the scalar path rounds it.
static inline VF SFX(kv_q8_load)(const uint8_t *row, int x) {
    const uint8_t *b = row + (size_t)(x >> 5) * 34;
    uint16_t h;
    memcpy(&h, b, 2);
    return VMUL(VCVTSI(VLOAD_S8I(b + 2 + (x & 31))), VSET1(SF16(h)));
}

#define ATTN_FN SFX(attention_q8)
#define ATTN_STAGE SFX(attn_stage_q8)
#define ATTN_PART SFX(attn_part_q8)
#define KT uint8_t
#define KHEAD(hd) ((hd) / 32 * 34)
#define KLOAD(s, x) SFX(kv_q8_load)(s, x)
#define KSCALAR(s, x) k_kv_q8_at(s, x)
#define KPART_F32 SFX(attn_part)
#include "simd_attn.h"
#undef ATTN_SHARED

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
    // Float lanes summed over short runs, the runs in double: a vocabulary
    // of 150k terms would otherwise lose ~1e-5 relative in the lanes.
    double sum = 0;
    i = 0;
    while (i + W <= n) {
        VF vs = VZERO();
        for (size_t end = i + 256 * W; i + W <= n && i < end; i += W) {
            VF e = SFX(vexp)(VSUB(VLOAD(x + i), vm));
            VSTORE(x + i, e);
            vs = VADD(vs, e);
        }
        sum += VHSUM(vs);
    }
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

// gelu_erf(x) = x*Phi(x) = (x + |x|*erf(|x|/sqrt2))/2, BERT's exact GELU,
// with erf by Abramowitz and Stegun 7.1.26 (absolute error < 1.5e-7): the
// |x| form needs no select for the sign.
static void SFX(gelu_erf)(float *x, size_t n) {
    const VF one = VSET1(1.0f), zero = VZERO(), half = VSET1(0.5f), rs2 = VSET1(0.70710678118654752f);
    size_t i = 0;
    for (; i + W <= n; i += W) {
        VF v = VLOAD(x + i);
        VF a = VMAX(v, VSUB(zero, v));
        VF z = VMUL(a, rs2);
        VF t = VDIV(one, VFMA(VSET1(0.3275911f), z, one));
        VF p = VFMA(VSET1(1.061405429f), t, VSET1(-1.453152027f));
        p = VFMA(p, t, VSET1(1.421413741f));
        p = VFMA(p, t, VSET1(-0.284496736f));
        p = VFMA(p, t, VSET1(0.254829592f));
        p = VMUL(p, t);
        VF e = VSUB(one, VMUL(p, SFX(vexp)(VSUB(zero, VMUL(z, z)))));
        VSTORE(x + i, VMUL(half, VFMA(a, e, v)));
    }
    for (; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

static void SFX(add)(float *d, const float *s, size_t n) {
    size_t i = 0;
    for (; i + W <= n; i += W) VSTORE(d + i, VADD(VLOAD(d + i), VLOAD(s + i)));
    for (; i < n; i++) d[i] += s[i];
}

// Row r of x plus row r of add (when add is not NULL), normalised to mean 0
// and variance 1, times w plus b (BERT's residual add and LayerNorm in one
// pass over the row). Sums run in W float lanes, then in double; out may
// be x or add.
static void SFX(layernorm)(float *out, const float *x, const float *add, const float *w, const float *b, int n,
                           int dim, float eps) {
#define LN_AT(r, i) (add ? VADD(VLOAD((r) + (i)), VLOAD(ar + (i))) : VLOAD((r) + (i)))
#define LN_SC(r, i) (add ? (r)[i] + ar[i] : (r)[i])
    for (int row = 0; row < n; row++) {
        const float *xr = x + (size_t)row * dim, *ar = add ? add + (size_t)row * dim : NULL;
        float *or_ = out + (size_t)row * dim;
        VF s0 = VZERO(), s1 = VZERO();
        int i = 0;
        for (; i + 2 * W <= dim; i += 2 * W) {
            s0 = VADD(s0, LN_AT(xr, i));
            s1 = VADD(s1, LN_AT(xr, i + W));
        }
        for (; i + W <= dim; i += W) s0 = VADD(s0, LN_AT(xr, i));
        double sum = VHSUM(VADD(s0, s1));
        for (; i < dim; i++) sum += LN_SC(xr, i);
        const float mean = (float)(sum / dim);
        const VF vm = VSET1(mean);
        s0 = VZERO(), s1 = VZERO();
        i = 0;
        for (; i + 2 * W <= dim; i += 2 * W) {
            const VF d0 = VSUB(LN_AT(xr, i), vm), d1 = VSUB(LN_AT(xr, i + W), vm);
            s0 = VFMA(d0, d0, s0);
            s1 = VFMA(d1, d1, s1);
        }
        for (; i + W <= dim; i += W) {
            const VF d0 = VSUB(LN_AT(xr, i), vm);
            s0 = VFMA(d0, d0, s0);
        }
        double ss = VHSUM(VADD(s0, s1));
        for (; i < dim; i++) {
            const double d = (double)LN_SC(xr, i) - mean;
            ss += d * d;
        }
        const float inv = (float)(1.0 / sqrt(ss / dim + eps));
        const VF vi = VSET1(inv);
        i = 0;
        for (; i + W <= dim; i += W)
            VSTORE(or_ + i, VFMA(VMUL(VSUB(LN_AT(xr, i), vm), vi), VLOAD(w + i), VLOAD(b + i)));
        for (; i < dim; i++) or_[i] = (LN_SC(xr, i) - mean) * inv * w[i] + b[i];
    }
#undef LN_AT
#undef LN_SC
}
