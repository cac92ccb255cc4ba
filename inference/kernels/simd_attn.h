/* Included only by simd_body.h (no include guard: instantiated twice). */
/* Attention template, included by simd_body.h with ATTN_FN and ATTN_DOT (the
 * functions' names), KT (the KV element type), KLOAD and KSCALAR (a vector
 * and one element of KT as float) and optionally KDOTS16 (16 dot products
 * with keys of KT); it undefines them at the end.
 *
 * One work item is one query row against one KV head, for all the query
 * heads that share it (GQA): each cached key and value row is read once
 * for the whole group instead of once per head. Heads are taken HB at a
 * time so their output accumulators fit in registers.
 * scores: HB*nKV floats.
 */

#define HB 8

// q·k for one key of KT.
static inline float ATTN_DOT(const float *a, const KT *b, int n) {
    VF s0 = VZERO(), s1 = VZERO();
    int i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        s0 = VFMA(VLOAD(a + i), KLOAD(b + i), s0);
        s1 = VFMA(VLOAD(a + i + W), KLOAD(b + i + W), s1);
    }
    for (; i + W <= n; i += W) s0 = VFMA(VLOAD(a + i), KLOAD(b + i), s0);
    float s = VHSUM(VADD(s0, s1));
    for (; i < n; i++) s += a[i] * KSCALAR(b[i]);
    return s;
}

static void ATTN_FN(float *out, const float *q, int pos0, const KT *kc, const KT *vc, int nKV,
                           int nHeads, int nKVHeads, int hd, float scale, float softcap, int window,
                           int lo, int hi, float *scores) {
    const int qs = nHeads * hd, kvs = nKVHeads * hd, grp = nHeads / nKVHeads;
    for (int it = lo; it < hi; it++) {
        const int t = it / nKVHeads, kvh = it % nKVHeads;
        int pLo, pHi;
        k_attn_range(pos0 + t, nKV, window, &pLo, &pHi);
        const KT *kb = kc + (size_t)kvh * hd, *vb = vc + (size_t)kvh * hd;
        for (int h0 = 0; h0 < grp; h0 += HB) {
            const int nh = grp - h0 < HB ? grp - h0 : HB;
            const float *qh = q + (size_t)t * qs + (size_t)(kvh * grp + h0) * hd;
            float *oh = out + (size_t)t * qs + (size_t)(kvh * grp + h0) * hd;
            float m[HB], inv[HB];
            for (int j = 0; j < nh; j++) m[j] = -INFINITY;
            int p0 = pLo;
#ifdef KDOTS16
            // Keys 16 at a time where the level has a 16-dot kernel; the
            // blocks depend only on the query's own range, so a row's
            // scores are the same whatever else is in the batch.
            if (hd % 16 == 0)
                for (; p0 + 16 <= pHi; p0 += 16) {
                    const KT *kp = kb + (size_t)p0 * kvs;
                    for (int j = 0; j < nh; j++) {
                        float *sj = scores + (size_t)j * nKV + p0;
                        const VF sv = VMUL(KDOTS16(qh + (size_t)j * hd, kp, (size_t)kvs, hd), VSET1(scale));
                        VSTORE(sj, sv);
                        if (softcap > 0) {
                            for (int i = 0; i < 16; i++) {
                                sj[i] = tanhf(sj[i] / softcap) * softcap;
                                if (sj[i] > m[j]) m[j] = sj[i];
                            }
                        } else {
                            const float mx = VHMAX(sv);  // KDOTS16 levels have W == 16
                            if (mx > m[j]) m[j] = mx;
                        }
                    }
                }
#endif
            for (int p = p0; p < pHi; p++) {
                const KT *kp = kb + (size_t)p * kvs;
                for (int j = 0; j < nh; j++) {
                    float s = ATTN_DOT(qh + (size_t)j * hd, kp, hd) * scale;
                    if (softcap > 0) s = tanhf(s / softcap) * softcap;
                    scores[(size_t)j * nKV + p] = s;
                    if (s > m[j]) m[j] = s;
                }
            }
            for (int j = 0; j < nh; j++) {
                float *sc = scores + (size_t)j * nKV;
                const VF vm = VSET1(m[j]);
                double sum = 0;  // runs of float lanes, as in softmax
                int p = pLo;
                while (p + W <= pHi) {
                    VF vs = VZERO();
                    for (int end = p + 256 * W; p + W <= pHi && p < end; p += W) {
                        const VF e = SFX(vexp)(VSUB(VLOAD(sc + p), vm));
                        VSTORE(sc + p, e);
                        vs = VADD(vs, e);
                    }
                    sum += VHSUM(vs);
                }
                for (; p < pHi; p++) {
                    sc[p] = expf(sc[p] - m[j]);
                    sum += sc[p];
                }
                inv[j] = (float)(1.0 / sum);
            }
            int d = 0;
            for (; d + W <= hd; d += W) {
                VF acc[HB];
                for (int j = 0; j < nh; j++) acc[j] = VZERO();
                for (int p = pLo; p < pHi; p++) {
                    const VF v = KLOAD(vb + (size_t)p * kvs + d);
                    for (int j = 0; j < nh; j++) acc[j] = VFMA(VSET1(scores[(size_t)j * nKV + p]), v, acc[j]);
                }
                for (int j = 0; j < nh; j++) VSTORE(oh + (size_t)j * hd + d, VMUL(acc[j], VSET1(inv[j])));
            }
            for (; d < hd; d++)
                for (int j = 0; j < nh; j++) {
                    float a = 0;
                    for (int p = pLo; p < pHi; p++) a += scores[(size_t)j * nKV + p] * KSCALAR(vb[(size_t)p * kvs + d]);
                    oh[(size_t)j * hd + d] = a * inv[j];
                }
        }
    }
}

#undef HB
#undef ATTN_FN
#undef ATTN_DOT
#undef KT
#undef KLOAD
#undef KSCALAR
#ifdef KDOTS16
#undef KDOTS16
#endif
