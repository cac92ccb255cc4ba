// Body of the ARM64 int8 kernels, included by simd_packed_neon.c once per
// variant with PKN_SFX (name suffix) and PKN_MODE set and that variant's
// target pragma in force. Every (row, activation row) output sees the same
// float operations whatever n, the chunk or the thread count, and the
// integer block sums are exact, so smmla for pairs of activation rows and
// sdot for a last odd one give the same bits.

#define PKN_CAT2(a, b) a##_##b
#define PKN_CAT(a, b) PKN_CAT2(a, b)
#define PKN(name) PKN_CAT(name, PKN_SFX)

#if PKN_MODE >= PKN_DOTPROD
#define PKN_DOT(acc, w, x) vdotq_s32(acc, w, x)
#define PKN_DOTL(acc, w, x, l) vdotq_laneq_s32(acc, w, x, l)
#else
#define PKN_DOT(acc, w, x) pkn_dot_base(acc, w, x)
#define PKN_DOTL(acc, w, x, l) pkn_dot_base(acc, w, vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x), l)))
#endif

// Integer sums of one quarter's block (w from pkn_load) against NB
// activation rows at xb (stride cols): a0 over elements 0..15, a1 over
// 16..31, one lane per row.
static inline __attribute__((always_inline)) void PKN(ints)(int32x4_t a0[4], int32x4_t a1[4], const int8x16_t w[8],
                                                            const int8_t *xb, int cols, const int NB) {
    int bb = 0;
#if PKN_MODE == PKN_I8MM
    if (NB >= 2) {
        // Rows (0,1) and (2,3) of each 8-element chunk j, as smmla's 2x8.
        int8x16_t z[8];
        for (int j = 0; j < 4; j++) {
            const int32x4_t u = vreinterpretq_s32_s8(w[2 * j]), v = vreinterpretq_s32_s8(w[2 * j + 1]);
            z[2 * j] = vreinterpretq_s8_s32(vzip1q_s32(u, v));
            z[2 * j + 1] = vreinterpretq_s8_s32(vzip2q_s32(u, v));
        }
        for (; bb + 2 <= NB; bb += 2) {
            const int8_t *p0 = xb + (size_t)bb * cols, *p1 = p0 + cols;
            // [row 2i x p0, row 2i x p1, row 2i+1 x p0, row 2i+1 x p1] per half.
            int32x4_t m[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
            for (int j = 0; j < 4; j++) {
                const int8x16_t xa = vcombine_s8(vld1_s8(p0 + 8 * j), vld1_s8(p1 + 8 * j));
                const int h = 2 * (j >> 1);
                m[h] = vmmlaq_s32(m[h], z[2 * j], xa);
                m[h + 1] = vmmlaq_s32(m[h + 1], z[2 * j + 1], xa);
            }
            a0[bb] = vuzp1q_s32(m[0], m[1]);
            a0[bb + 1] = vuzp2q_s32(m[0], m[1]);
            a1[bb] = vuzp1q_s32(m[2], m[3]);
            a1[bb + 1] = vuzp2q_s32(m[2], m[3]);
        }
    }
#endif
    for (; bb < NB; bb++) {
        const int8x16_t x0 = vld1q_s8(xb + (size_t)bb * cols), x1 = vld1q_s8(xb + (size_t)bb * cols + 16);
        int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
        s0 = PKN_DOTL(s0, w[0], x0, 0);
        s1 = PKN_DOTL(s1, w[4], x1, 0);
        s0 = PKN_DOTL(s0, w[1], x0, 1);
        s1 = PKN_DOTL(s1, w[5], x1, 1);
        s0 = PKN_DOTL(s0, w[2], x0, 2);
        s1 = PKN_DOTL(s1, w[6], x1, 2);
        s0 = PKN_DOTL(s0, w[3], x0, 3);
        s1 = PKN_DOTL(s1, w[7], x1, 3);
        a0[bb] = s0;
        a1[bb] = s1;
    }
}

// Row group g (rows 16g..16g+15) against NB activation rows, one quarter of
// 4 rows at a time inside each block so that the codes stream in order.
static inline __attribute__((always_inline)) void PKN(group)(float *out, const int8_t *xq, const float *xd,
                                                             const int32_t *xc, const float *xe, const int NB,
                                                             const int LK, const uint8_t *codes, const void *sc,
                                                             const void *bi, int sfmt, int group, int rows,
                                                             int cols, int g) {
    // LK is the layout, KIND the kind whose code runs on its byte vectors.
    const int KIND = K_PK_BASE(LK), nb = cols / 32, nsb = cols / 256;
    const size_t cb = K_PK_CB(LK);
    // 4-bit codes keep their offset (Q4_0) in xc; the others have none left,
    // and the unsigned kinds take it back off (pkn_load).
    const int corr = KIND == K_PK_Q4 || KIND == K_PK_Q4K, uncorr = KIND == K_PK_U8;
    const uint8_t *cp = codes + (size_t)g * nb * cb;
    float32x4_t f[4][4];
    for (int q = 0; q < 4; q++)
        for (int bb = 0; bb < NB; bb++) f[q][bb] = vdupq_n_f32(0);
    int8x16_t w[8];
    int32x4_t a0[4], a1[4];
    if (KIND == K_PK_Q6K) {
        // Per super-block: d[16 rows] (f16), then int8 scales[16 sub-blocks][16 rows].
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 288;
        for (int sb = 0; sb < nsb; sb++, sp += 288) {
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                const int j = k - sb * 8;
                for (int q = 0; q < 4; q++) {
                    const float32x4_t dv = pkn_load4(sp, 4 * q, K_PK_F16), dv4 = vmulq_f32(dv, vdupq_n_f32(0.25f));
                    pkn_load(w, cp + (size_t)k * cb + 16 * q, LK);
                    PKN(ints)(a0, a1, w, xq + (size_t)k * 32, cols, NB);
                    const float32x4_t s0 = pkn_sub4(sp + 32 + 32 * j + 4 * q, dv, 1);
                    const float32x4_t s1 = pkn_sub4(sp + 48 + 32 * j + 4 * q, dv4, 1);
                    for (int bb = 0; bb < NB; bb++) {
                        const float32x4_t t = vfmaq_f32(vmulq_f32(vcvtq_f32_s32(a0[bb]), s0), vcvtq_f32_s32(a1[bb]), s1);
                        f[q][bb] = vfmaq_f32(f[q][bb], t, vdupq_n_f32(xd[(size_t)bb * nb + k]));
                    }
                }
            }
        }
    } else if (KIND == K_PK_Q5 || KIND == K_PK_Q5U) {
        for (int k = 0; k < nb; k++) {
            for (int q = 0; q < 4; q++) {
                pkn_load(w, cp + (size_t)k * cb + 16 * q, LK);
                PKN(ints)(a0, a1, w, xq + (size_t)k * 32, cols, NB);
                const float32x4_t s = pkn_load4(sc, ((size_t)g * nb + k) * 16 + 4 * q, sfmt);
                for (int bb = 0; bb < NB; bb++) {
                    int32x4_t a = vaddq_s32(a0[bb], vshrq_n_s32(a1[bb], 3));
                    if (KIND == K_PK_Q5U) a = vsubq_s32(a, vdupq_n_s32(xc[(size_t)bb * nb + k]));
                    f[q][bb] = vfmaq_f32(f[q][bb], vcvtq_f32_s32(a), vmulq_f32(s, vdupq_n_f32(xd[(size_t)bb * nb + k])));
                }
                if (KIND == K_PK_Q5U) {
                    const float32x4_t bv = pkn_load4(bi, ((size_t)g * nb + k) * 16 + 4 * q, sfmt);
                    for (int bb = 0; bb < NB; bb++)
                        f[q][bb] = vfmaq_f32(f[q][bb], bv, vdupq_n_f32(xe[(size_t)bb * nb + k]));
                }
            }
        }
    } else if (KIND == K_PK_Q2K) {
        // Per super-block: d, dmin [16 rows] (f16), then the scale and min
        // nibbles [16 sub-blocks of 16][16 rows]; xc holds each half's
        // activation sum, which the mins multiply.
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 320;
        for (int sb = 0; sb < nsb; sb++, sp += 320) {
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                const int j = k - sb * 8;
                for (int q = 0; q < 4; q++) {
                    const float32x4_t dv = pkn_load4(sp, 4 * q, K_PK_F16), mv = pkn_load4(sp + 32, 4 * q, K_PK_F16);
                    pkn_load(w, cp + (size_t)k * cb + 16 * q, LK);
                    PKN(ints)(a0, a1, w, xq + (size_t)k * 32, cols, NB);
                    const float32x4_t s0 = pkn_sub4n(sp + 64 + 32 * j + 4 * q, dv, 0);
                    const float32x4_t s1 = pkn_sub4n(sp + 80 + 32 * j + 4 * q, dv, 0);
                    const float32x4_t m0 = pkn_sub4n(sp + 64 + 32 * j + 4 * q, mv, 1);
                    const float32x4_t m1 = pkn_sub4n(sp + 80 + 32 * j + 4 * q, mv, 1);
                    for (int bb = 0; bb < NB; bb++) {
                        const size_t at = (size_t)bb * nb + k;
                        const float32x4_t t = vfmaq_f32(vmulq_f32(vcvtq_f32_s32(a0[bb]), s0), vcvtq_f32_s32(a1[bb]), s1);
                        const float32x4_t u = vfmaq_f32(vmulq_f32(m0, vdupq_n_f32((float)xc[2 * at])), m1,
                                                        vdupq_n_f32((float)xc[2 * at + 1]));
                        f[q][bb] = vfmaq_f32(f[q][bb], vsubq_f32(t, u), vdupq_n_f32(xd[at]));
                    }
                }
            }
        }
    } else if (KIND == K_PK_Q5K) {
        // Q4_K's scales and mins (below) over Q5_0's code layout.
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 320;
        for (int sb = 0; sb < nsb; sb++, sp += 320) {
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                const int j = k - sb * 8;
                for (int q = 0; q < 4; q++) {
                    pkn_load(w, cp + (size_t)k * cb + 16 * q, LK);
                    PKN(ints)(a0, a1, w, xq + (size_t)k * 32, cols, NB);
                    const float32x4_t s = pkn_sub4(sp + 64 + 16 * j + 4 * q, pkn_load4(sp, 4 * q, K_PK_F16), 0);
                    const float32x4_t m = pkn_sub4(sp + 192 + 16 * j + 4 * q, pkn_load4(sp + 32, 4 * q, K_PK_F16), 0);
                    for (int bb = 0; bb < NB; bb++) {
                        const size_t at = (size_t)bb * nb + k;
                        const int32x4_t a = vsubq_s32(vaddq_s32(a0[bb], vshrq_n_s32(a1[bb], 3)), vdupq_n_s32(xc[at]));
                        f[q][bb] = vfmaq_f32(f[q][bb], vcvtq_f32_s32(a), vmulq_f32(s, vdupq_n_f32(xd[at])));
                        f[q][bb] = vfmsq_f32(f[q][bb], m, vdupq_n_f32(xe[at]));
                    }
                }
            }
        }
    } else if (KIND == K_PK_Q4K) {
        // Per super-block: d, dmin [16 rows] (f16), then uint8 scales and
        // mins [8 sub-blocks][16 rows]; xe holds d*sum of each 32-block.
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 320;
        for (int sb = 0; sb < nsb; sb++, sp += 320) {
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                const int j = k - sb * 8;
                for (int q = 0; q < 4; q++) {
                    pkn_load(w, cp + (size_t)k * cb + 16 * q, LK);
                    PKN(ints)(a0, a1, w, xq + (size_t)k * 32, cols, NB);
                    const float32x4_t s = pkn_sub4(sp + 64 + 16 * j + 4 * q, pkn_load4(sp, 4 * q, K_PK_F16), 0);
                    const float32x4_t m = pkn_sub4(sp + 192 + 16 * j + 4 * q, pkn_load4(sp + 32, 4 * q, K_PK_F16), 0);
                    for (int bb = 0; bb < NB; bb++) {
                        const size_t at = (size_t)bb * nb + k;
                        const int32x4_t a = vaddq_s32(vaddq_s32(a0[bb], a1[bb]), vdupq_n_s32(xc[at]));
                        f[q][bb] = vfmaq_f32(f[q][bb], vcvtq_f32_s32(a), vmulq_f32(s, vdupq_n_f32(xd[at])));
                        f[q][bb] = vfmsq_f32(f[q][bb], m, vdupq_n_f32(xe[at]));
                    }
                }
            }
        }
    } else {
        // One scale per 32-block (group 0: GGUF) or per MLX group, whose
        // biases add bias*sum(x) once the group's blocks are done.
        const int bpg = group > 0 ? group / 32 : 1, ng = group > 0 ? cols / group : nb;
        for (int gi = 0; gi < ng; gi++) {
            for (int q = 0; q < 4; q++) {
                const float32x4_t sg = group > 0 ? pkn_load4(sc, ((size_t)g * ng + gi) * 16 + 4 * q, sfmt) : vdupq_n_f32(0);
                for (int k = gi * bpg; k < (gi + 1) * bpg; k++) {
                    pkn_load(w, cp + (size_t)k * cb + 16 * q, LK);
                    PKN(ints)(a0, a1, w, xq + (size_t)k * 32, cols, NB);
                    const float32x4_t s = group > 0 ? sg : pkn_load4(sc, ((size_t)g * nb + k) * 16 + 4 * q, sfmt);
                    for (int bb = 0; bb < NB; bb++) {
                        const size_t at = (size_t)bb * nb + k;
                        int32x4_t a = vaddq_s32(a0[bb], a1[bb]);
                        if (corr) a = vaddq_s32(a, vdupq_n_s32(xc[at]));
                        if (uncorr) a = vsubq_s32(a, vdupq_n_s32(xc[at]));
                        f[q][bb] = vfmaq_f32(f[q][bb], vcvtq_f32_s32(a), vmulq_f32(s, vdupq_n_f32(xd[at])));
                    }
                }
                if (group > 0) {
                    const float32x4_t bv = pkn_load4(bi, ((size_t)g * ng + gi) * 16 + 4 * q, sfmt);
                    for (int bb = 0; bb < NB; bb++)
                        f[q][bb] = vfmaq_f32(f[q][bb], bv, vdupq_n_f32(xe[(size_t)bb * ng + gi]));
                }
            }
        }
    }
    for (int bb = 0; bb < NB; bb++)
        for (int q = 0; q < 4; q++) vst1q_f32(out + (size_t)bb * rows + (size_t)g * 16 + 4 * q, f[q][bb]);
}

#define PKN_KIND(NB)                                                                                          \
    do {                                                                                                      \
        switch (kind) {                                                                                       \
        case K_PK_Q8: PKN(group)(o, q, d, c, e, NB, K_PK_Q8, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_Q6K: PKN(group)(o, q, d, c, e, NB, K_PK_Q6K, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_Q5: PKN(group)(o, q, d, c, e, NB, K_PK_Q5, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_Q4K: PKN(group)(o, q, d, c, e, NB, K_PK_Q4K, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_U8: PKN(group)(o, q, d, c, e, NB, K_PK_U8, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_Q5U: PKN(group)(o, q, d, c, e, NB, K_PK_Q5U, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_Q5K: PKN(group)(o, q, d, c, e, NB, K_PK_Q5K, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_Q2K: PKN(group)(o, q, d, c, e, NB, K_PK_Q2K, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_Q3K: PKN(group)(o, q, d, c, e, NB, K_PK_Q3K, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_U2: PKN(group)(o, q, d, c, e, NB, K_PK_U2, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_U3: PKN(group)(o, q, d, c, e, NB, K_PK_U3, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_U5: PKN(group)(o, q, d, c, e, NB, K_PK_U5, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        case K_PK_U6: PKN(group)(o, q, d, c, e, NB, K_PK_U6, codes, sc, bi, sfmt, group, rows, cols, g); break; \
        default: PKN(group)(o, q, d, c, e, NB, K_PK_Q4, codes, sc, bi, sfmt, group, rows, cols, g); break;      \
        }                                                                                                     \
    } while (0)

static void PKN(pkn_matmul_packed)(float *out, const int8_t *xq, const float *xd, const int32_t *xc, const float *xe,
                                   int n, const uint8_t *codes, const void *sc, const void *bi, int kind, int sfmt,
                                   int group, int rows, int cols, int lo, int hi) {
    const int nb = cols / 32, ng = group > 0 ? cols / group : 0, nc = K_PK_NC(kind) * nb;
    for (int b0 = 0; b0 < n; b0 += 4) {
        float *o = out + (size_t)b0 * rows;
        const int8_t *q = xq + (size_t)b0 * cols;
        const float *d = xd + (size_t)b0 * nb;
        const int32_t *c = xc + (size_t)b0 * nc;
        const float *e = xe ? xe + (size_t)b0 * ng : 0;
        const int nbk = n - b0 < 4 ? n - b0 : 4;
        for (int g = lo / 16; g < hi / 16; g++) {
            switch (nbk) {
            case 1: PKN_KIND(1); break;
            case 2: PKN_KIND(2); break;
            case 3: PKN_KIND(3); break;
            default: PKN_KIND(4); break;
            }
        }
    }
}

#undef PKN_KIND

// Unpacked GGUF Q8_0 (type 8) and Q4_0 rows: Q4_0 nibbles less 8, so that
// no block needs a correction; one float vector per (row, activation row),
// summed across at the end.
static void PKN(pkn_matmul_gguf_i8)(float *out, const int8_t *xq, const float *xd, const int32_t *xs, int n,
                                    const uint8_t *w, int type, int rows, int cols, int lo, int hi) {
    (void)xs;
    const int q8 = type == 8, nb = cols / 32;
    const size_t bs = q8 ? 34 : 18;
    const uint8x16_t m4 = vdupq_n_u8(0x0f), c8 = vdupq_n_u8(8);
    for (int o = lo; o < hi; o++) {
        const uint8_t *row = w + (size_t)o * nb * bs;
        for (int b = 0; b < n; b++) {
            const int8_t *x = xq + (size_t)b * cols;
            float32x4_t f = vdupq_n_f32(0);
            for (int k = 0; k < nb; k++) {
                const uint8_t *blk = row + (size_t)k * bs;
                uint16_t h;
                memcpy(&h, blk, 2);
                const float dw = vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
                int8x16_t w0, w1;
                if (q8) {
                    w0 = vld1q_s8((const int8_t *)blk + 2), w1 = vld1q_s8((const int8_t *)blk + 18);
                } else {
                    const uint8x16_t v = vld1q_u8(blk + 2);
                    w0 = vreinterpretq_s8_u8(vsubq_u8(vandq_u8(v, m4), c8));
                    w1 = vreinterpretq_s8_u8(vsubq_u8(vshrq_n_u8(v, 4), c8));
                }
                int32x4_t a = PKN_DOT(vdupq_n_s32(0), w0, vld1q_s8(x + (size_t)k * 32));
                a = PKN_DOT(a, w1, vld1q_s8(x + (size_t)k * 32 + 16));
                f = vfmaq_f32(f, vcvtq_f32_s32(a), vdupq_n_f32(dw * xd[(size_t)b * nb + k]));
            }
            out[(size_t)b * rows + o] = vaddvq_f32(f);
        }
    }
}

// Unpacked MLX 4-bit rows: w = s*q + b per group, so a block adds
// s*dx*dot(q, xq) + b*dx*sum(xq); activations come evens first
// (k_quant_act_i8), matching the low nibbles.
static void PKN(pkn_matmul_mlx4_i8)(float *out, const int8_t *xq, const float *xd, const int32_t *xs, int n,
                                    const uint32_t *wq, const float *sc, const float *bi, int group, int rows,
                                    int cols, int lo, int hi) {
    const int nb = cols / 32, ng = cols / group, bpg = group / 32;
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    for (int o = lo; o < hi; o++) {
        const uint8_t *row = (const uint8_t *)(wq + (size_t)o * (cols / 8));
        for (int b = 0; b < n; b++) {
            const int8_t *x = xq + (size_t)b * cols;
            float32x4_t f = vdupq_n_f32(0);
            float t = 0;
            for (int k = 0; k < nb; k++) {
                const uint8x16_t v = vld1q_u8(row + (size_t)k * 16);
                int32x4_t a = PKN_DOT(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(v, m4)), vld1q_s8(x + (size_t)k * 32));
                a = PKN_DOT(a, vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vld1q_s8(x + (size_t)k * 32 + 16));
                const float s = sc[(size_t)o * ng + k / bpg], bv = bi[(size_t)o * ng + k / bpg];
                const float dx = xd[(size_t)b * nb + k];
                f = vfmaq_f32(f, vcvtq_f32_s32(a), vdupq_n_f32(s * dx));
                t += bv * (dx * (float)xs[(size_t)b * nb + k]);
            }
            out[(size_t)b * rows + o] = vaddvq_f32(f) + t;
        }
    }
}

#undef PKN_DOT
#undef PKN_DOTL
#undef PKN
#undef PKN_CAT
#undef PKN_CAT2
