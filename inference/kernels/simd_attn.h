/* Included only by simd_body.h (no include guard: instantiated twice). */
/* Attention template, included by simd_body.h with ATTN_FN, ATTN_STAGE and
 * ATTN_PART (the functions' names), KT (the KV storage unit), KHEAD(hd) (units of
 * KT per head row of hd values), KLOAD(s, x) and KSCALAR(s, x) (W values and
 * one value at element x of the head row s, as float); it undefines them at
 * the end. Float and half rows are hd elements; a q8_0 row is hd/32 blocks
 * of 34 bytes (an IEEE half scale, then 32 int8 codes), and since W divides
 * 32 a vector never straddles two blocks.
 * KPART_F32, when defined, is the float instance's ATTN_PART: prefill then
 * converts each chunk's values to float once per tile too, as it does the
 * keys, instead of once per query row (for q8_0, whose loads cost more than
 * a conversion from half). The values are the same floats either way.
 * Levels with W == 16 may define VDOTS16 (16 dot products with float keys).
 * The parts shared by both instances come with the first (ATTN_SHARED,
 * which simd_body.h undefines after the second).
 *
 * Flash attention: the cache is cut into chunks of K_ATTN_CHUNK positions
 * at absolute offsets. For one query row and one head, each chunk that the
 * row sees gives a partial result (its own maximum score m, the sum l of
 * exp(s-m) and the exp-weighted sum of values), and the partials are merged
 * in chunk order (attn_merge). How a row's chunks are computed never depends
 * on the other rows of the batch, nor on which thread computes them:
 *
 *   - decode (part != NULL): items are (row, KV head, chunk), so the
 *     threads share the chunks of a long cache; the partials go to part and
 *     k_attention_merge folds them into out;
 *   - prefill (part == NULL): items are (tile of K_ATTN_TILE rows, KV
 *     head); each chunk of the cache is converted to float once for the
 *     whole tile (and all the query heads sharing the KV head: GQA), and each
 *     row folds its partial into its running state at once.
 *
 * Scores of a block of 16 keys come from one KDOTS16 call (padding rows
 * past the row's range are zero and masked), so the 16-key blocking, set by
 * absolute positions, gives every key's score the same operations.
 */

#define HB 8

// ATTN_STAGE converts cache rows [s0, s1) of chunk base (one KV head: rows
// kvs units apart) into dst rows s0.. of hd floats; rows at or past nKV are zero.
static void ATTN_STAGE(float *dst, const KT *src, size_t kvs, int hd, int base, int s0, int s1, int nKV) {
    for (int i = s0; i < s1; i++) {
        float *d = dst + (size_t)i * hd;
        if (base + i >= nKV) {
            for (int x = 0; x < hd; x++) d[x] = 0;
            continue;
        }
        const KT *s = src + (size_t)(base + i) * kvs;
        int x = 0;
        for (; x + W <= hd; x += W) VSTORE(d + x, KLOAD(s, x));
        for (; x < hd; x++) d[x] = KSCALAR(s, x);
    }
}

#ifndef ATTN_SHARED
#define ATTN_SHARED

// q·k for one key row of float.
static inline float SFX(attn_dot)(const float *a, const float *b, int n) {
    VF s0 = VZERO(), s1 = VZERO();
    int i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        s0 = VFMA(VLOAD(a + i), VLOAD(b + i), s0);
        s1 = VFMA(VLOAD(a + i + W), VLOAD(b + i + W), s1);
    }
    for (; i + W <= n; i += W) s0 = VFMA(VLOAD(a + i), VLOAD(b + i), s0);
    float s = VHSUM(VADD(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}


// SFX(attn_merge) folds partial p into state s (same layout; the state
// starts as m = -inf, l = 0, sum 0): the two are rescaled to their common
// maximum.
static inline void SFX(attn_merge)(float *s, const float *p, int hd) {
    const float m = s[0] > p[0] ? s[0] : p[0];
    const float al = expf(s[0] - m), be = expf(p[0] - m);
    s[0] = m;
    s[1] = s[1] * al + p[1] * be;
    const VF va = VSET1(al), vb = VSET1(be);
    int d = 0;
    for (; d + W <= hd; d += W) VSTORE(s + 2 + d, VFMA(VLOAD(s + 2 + d), va, VMUL(VLOAD(p + 2 + d), vb)));
    for (; d < hd; d++) s[2 + d] = fmaf(s[2 + d], al, p[2 + d] * be);
}

static inline void SFX(attn_init)(float *s, int hd) {
    s[0] = -INFINITY;
    s[1] = 0;
    for (int d = 0; d < hd; d++) s[2 + d] = 0;
}

// SFX(attn_out) writes a merged state's weighted mean of values.
static inline void SFX(attn_out)(float *o, const float *s, int hd) {
    const float inv = 1.0f / s[1];
    const VF vi = VSET1(inv);
    int d = 0;
    for (; d + W <= hd; d += W) VSTORE(o + d, VMUL(VLOAD(s + 2 + d), vi));
    for (; d < hd; d++) o[d] = s[2 + d] * inv;
}

// SFX(attention_merge): items (row t, KV head) = t*nKVHeads+kvh; folds the
// chunk partials of k_attention's decode items in chunk order.
static void SFX(attention_merge)(float *out, const float *part, int pos0, int nKV, int nHeads, int nKVHeads, int hd,
                                 int window, int lo, int hi, float *st) {
    const int qs = nHeads * hd, grp = nHeads / nKVHeads, ps = hd + 2;
    const int nC = (nKV + K_ATTN_CHUNK - 1) / K_ATTN_CHUNK;
    for (int it = lo; it < hi; it++) {
        const int t = it / nKVHeads, kvh = it % nKVHeads;
        int pLo, pHi;
        k_attn_range(pos0 + t, nKV, window, &pLo, &pHi);
        const float *pp = part + (size_t)it * nC * grp * ps;
        for (int j = 0; j < grp; j++) {
            SFX(attn_init)(st, hd);
            if (pHi > pLo)
                for (int c = pLo / K_ATTN_CHUNK; c <= (pHi - 1) / K_ATTN_CHUNK; c++)
                    SFX(attn_merge)(st, pp + ((size_t)c * grp + j) * ps, hd);
            SFX(attn_out)(out + (size_t)t * qs + (size_t)(kvh * grp + j) * hd, st, hd);
        }
    }
}
#endif

// ATTN_PART computes the partials of nh query heads (q, hd apart) against
// rows [a, b) of a chunk: keys staged as float in ks (hd floats a row),
// values read from the cache at vs (kvs apart). For head j,
// part[j*(hd+2)] = m, [+1] = l, [+2..] = the exp(s-m)-weighted sum of
// values. scores: HB*K_ATTN_CHUNK floats.
static void ATTN_PART(float *part, const float *q, int nh, const float *ks, const KT *vs, size_t kvs, int a, int b,
                      int hd, float scale, float softcap, float *scores) {
    const int a0 = a & ~15, b16 = (b + 15) & ~15;
    const int ps = hd + 2;
    for (int j = 0; j < nh; j++) {
        const float *qj = q + (size_t)j * hd;
        float *sc = scores + (size_t)j * K_ATTN_CHUNK;
        float mx = -INFINITY;
#ifdef VDOTS16
        if (hd % 16 == 0) {
            const VF vscale = VSET1(scale);
            VF vmx = VSET1(-INFINITY);
            for (int p = a0; p < b16; p += 16) {
                const VF sv = VMUL(VDOTS16(qj, ks + (size_t)p * hd, (size_t)hd, hd), vscale);
                VSTORE(sc + p, sv);
                if (softcap > 0 || p < a || p + 16 > b) {
                    for (int i = p; i < p + 16; i++) {
                        if (i < a || i >= b) sc[i] = -INFINITY;
                        else if (softcap > 0) sc[i] = tanhf(sc[i] / softcap) * softcap;
                    }
                    vmx = VMAX(vmx, VLOAD(sc + p));
                } else {
                    vmx = VMAX(vmx, sv);
                }
            }
            mx = VHMAX(vmx);
        } else
#endif
        {
            for (int p = a; p < b; p++) {
                float s = SFX(attn_dot)(qj, ks + (size_t)p * hd, hd) * scale;
                if (softcap > 0) s = tanhf(s / softcap) * softcap;
                sc[p] = s;
                if (s > mx) mx = s;
            }
            for (int p = a0; p < a; p++) sc[p] = -INFINITY;
            for (int p = b; p < b16; p++) sc[p] = -INFINITY;
        }
        // exp(s - m) over whole aligned vectors (masked lanes give 0),
        // summed lane-wise: the lanes are fixed by absolute positions.
        const VF vm = VSET1(mx);
        VF vsum = VZERO();
        for (int p = a0; p < b16; p += W) {
            const VF e = SFX(vexp)(VSUB(VLOAD(sc + p), vm));
            VSTORE(sc + p, e);
            vsum = VADD(vsum, e);
        }
        part[(size_t)j * ps] = mx;
        part[(size_t)j * ps + 1] = VHSUM(vsum);
    }
    // One query head (no GQA) and a head of up to 4 vectors: the loop below
    // would run one chain of dependent FMAs per vector, bound by the FMA
    // latency. Here all the head's vectors run together, and the even and
    // odd positions of the chunk accumulate apart (added at the end), so
    // that up to 8 chains overlap. The split is fixed by the positions, so
    // a row's result does not depend on the rows computed beside it.
#define ATTN_PV1(NV)                                                                                  \
    case NV: {                                                                                        \
        VF e[NV], o[NV];                                                                              \
        for (int i = 0; i < NV; i++) e[i] = o[i] = VZERO();                                           \
        int p = a;                                                                                    \
        if (p < b && (p & 1)) {                                                                       \
            const VF s1 = VSET1(scores[p]);                                                           \
            for (int i = 0; i < NV; i++) o[i] = VFMA(s1, KLOAD(vs + (size_t)p * kvs, i * W), o[i]);   \
            p++;                                                                                      \
        }                                                                                             \
        for (; p + 1 < b; p += 2) {                                                                   \
            const VF s0 = VSET1(scores[p]), s1 = VSET1(scores[p + 1]);                                \
            for (int i = 0; i < NV; i++) {                                                            \
                e[i] = VFMA(s0, KLOAD(vs + (size_t)p * kvs, i * W), e[i]);                            \
                o[i] = VFMA(s1, KLOAD(vs + (size_t)(p + 1) * kvs, i * W), o[i]);                      \
            }                                                                                         \
        }                                                                                             \
        if (p < b) {                                                                                  \
            const VF s0 = VSET1(scores[p]);                                                           \
            for (int i = 0; i < NV; i++) e[i] = VFMA(s0, KLOAD(vs + (size_t)p * kvs, i * W), e[i]);   \
        }                                                                                             \
        for (int i = 0; i < NV; i++) VSTORE(part + 2 + i * W, VADD(e[i], o[i]));                      \
        return;                                                                                       \
    }
    if (nh == 1 && hd % W == 0) switch (hd / W) {
        ATTN_PV1(1)
        ATTN_PV1(2)
        ATTN_PV1(3)
        ATTN_PV1(4)
        }
#undef ATTN_PV1
    int d = 0;
    // The number of heads is a constant in each case, so that their
    // accumulators stay in registers.
#define ATTN_VACC(NH)                                                                                 \
    case NH:                                                                                          \
        for (; d + W <= hd; d += W) {                                                                 \
            VF acc[NH];                                                                               \
            for (int j = 0; j < NH; j++) acc[j] = VZERO();                                            \
            for (int p = a; p < b; p++) {                                                             \
                const VF v = KLOAD(vs + (size_t)p * kvs, d);                                          \
                for (int j = 0; j < NH; j++)                                                          \
                    acc[j] = VFMA(VSET1(scores[(size_t)j * K_ATTN_CHUNK + p]), v, acc[j]);            \
            }                                                                                         \
            for (int j = 0; j < NH; j++) VSTORE(part + (size_t)j * ps + 2 + d, acc[j]);               \
        }                                                                                             \
        break;
    switch (nh) {
        ATTN_VACC(1)
        ATTN_VACC(2)
        ATTN_VACC(3)
        ATTN_VACC(4)
        ATTN_VACC(5)
        ATTN_VACC(6)
        ATTN_VACC(7)
        ATTN_VACC(8)
    }
#undef ATTN_VACC
    for (; d < hd; d++)
        for (int j = 0; j < nh; j++) {
            float acc = 0;
            for (int p = a; p < b; p++)
                acc = fmaf(scores[(size_t)j * K_ATTN_CHUNK + p], KSCALAR(vs + (size_t)p * kvs, d), acc);
            part[(size_t)j * ps + 2 + d] = acc;
        }
}

// ATTN_FN: see the file comment. part == NULL: items (tile, kvh) =
// tile*nKVHeads+kvh; else items ((t*nKVHeads+kvh)*nC + c) for chunk c,
// partials at part + (((t*nKVHeads+kvh)*nC + c)*grp + j)*(hd+2).
static void ATTN_FN(float *out, float *part, const float *q, int nq, int pos0, const KT *kc, const KT *vc, int nKV,
                    int nHeads, int nKVHeads, int hd, float scale, float softcap, int window, int lo, int hi,
                    float *scratch) {
    const int qs = nHeads * hd, kh = KHEAD(hd), kvs = nKVHeads * kh, grp = nHeads / nKVHeads, ps = hd + 2;
    const int nC = (nKV + K_ATTN_CHUNK - 1) / K_ATTN_CHUNK;
    float *ks = scratch, *scores = ks + (size_t)K_ATTN_CHUNK * hd;
    float *tmp = scores + (size_t)HB * K_ATTN_CHUNK, *state = tmp + (size_t)HB * ps;
#ifdef KPART_F32
    float *vsf = state + (size_t)K_ATTN_TILE * HB * ps;  // a chunk's values as float (prefill)
#endif
    for (int it = lo; it < hi; it++) {
        if (part) {
            const int c = it % nC, tk = it / nC, t = tk / nKVHeads, kvh = tk % nKVHeads;
            int pLo, pHi;
            k_attn_range(pos0 + t, nKV, window, &pLo, &pHi);
            const int base = c * K_ATTN_CHUNK;
            const int a = (pLo > base ? pLo : base) - base, b = (pHi < base + K_ATTN_CHUNK ? pHi : base + K_ATTN_CHUNK) - base;
            if (a >= b) continue;
            const int s0 = a & ~15, s1 = (b + 15) & ~15;
            ATTN_STAGE(ks, kc + (size_t)kvh * kh, (size_t)kvs, hd, base, s0, s1, nKV);
            const KT *vb = vc + (size_t)kvh * kh + (size_t)base * kvs;
            for (int h0 = 0; h0 < grp; h0 += HB) {
                const int nh = grp - h0 < HB ? grp - h0 : HB;
                ATTN_PART(part + ((size_t)it * grp + h0) * ps, q + (size_t)t * qs + (size_t)(kvh * grp + h0) * hd, nh,
                          ks, vb, (size_t)kvs, a, b, hd, scale, softcap, scores);
            }
            continue;
        }
        const int tile = it / nKVHeads, kvh = it % nKVHeads;
        const int t0 = tile * K_ATTN_TILE, t1 = t0 + K_ATTN_TILE < nq ? t0 + K_ATTN_TILE : nq;
        int uLo = nKV, uHi = 0;
        for (int t = t0; t < t1; t++) {
            int pLo, pHi;
            k_attn_range(pos0 + t, nKV, window, &pLo, &pHi);
            if (pLo < pHi) {
                if (pLo < uLo) uLo = pLo;
                if (pHi > uHi) uHi = pHi;
            }
        }
        for (int h0 = 0; h0 < grp; h0 += HB) {
            const int nh = grp - h0 < HB ? grp - h0 : HB;
            for (int i = 0; i < (t1 - t0) * nh; i++) SFX(attn_init)(state + (size_t)i * ps, hd);
            if (uLo < uHi)
                for (int c = uLo / K_ATTN_CHUNK; c <= (uHi - 1) / K_ATTN_CHUNK; c++) {
                    const int base = c * K_ATTN_CHUNK;
                    const int ua = (uLo > base ? uLo : base) - base;
                    const int ub = (uHi < base + K_ATTN_CHUNK ? uHi : base + K_ATTN_CHUNK) - base;
                    const int s0 = ua & ~15, s1 = (ub + 15) & ~15;
                    ATTN_STAGE(ks, kc + (size_t)kvh * kh, (size_t)kvs, hd, base, s0, s1, nKV);
                    const KT *vb = vc + (size_t)kvh * kh + (size_t)base * kvs;
#ifdef KPART_F32
                    ATTN_STAGE(vsf, vc + (size_t)kvh * kh, (size_t)kvs, hd, base, s0, s1, nKV);
#endif
                    for (int t = t0; t < t1; t++) {
                        int pLo, pHi;
                        k_attn_range(pos0 + t, nKV, window, &pLo, &pHi);
                        const int a = (pLo > base ? pLo : base) - base;
                        const int b = (pHi < base + K_ATTN_CHUNK ? pHi : base + K_ATTN_CHUNK) - base;
                        if (a >= b) continue;
#ifdef KPART_F32
                        (void)vb;
                        KPART_F32(tmp, q + (size_t)t * qs + (size_t)(kvh * grp + h0) * hd, nh, ks, vsf, (size_t)hd, a, b,
                                  hd, scale, softcap, scores);
#else
                        ATTN_PART(tmp, q + (size_t)t * qs + (size_t)(kvh * grp + h0) * hd, nh, ks, vb, (size_t)kvs, a,
                                  b, hd, scale, softcap, scores);
#endif
                        float *st = state + (size_t)(t - t0) * nh * ps;
                        for (int j = 0; j < nh; j++) SFX(attn_merge)(st + (size_t)j * ps, tmp + (size_t)j * ps, hd);
                    }
                }
            for (int t = t0; t < t1; t++)
                for (int j = 0; j < nh; j++)
                    SFX(attn_out)(out + (size_t)t * qs + (size_t)(kvh * grp + h0 + j) * hd,
                                  state + ((size_t)(t - t0) * nh + j) * ps, hd);
        }
    }
}

#undef HB
#undef ATTN_FN
#undef ATTN_STAGE
#undef ATTN_PART
#undef KT
#undef KPART_F32
#undef KHEAD
#undef KLOAD
#undef KSCALAR
