// Body of the AVX2 packed kernels (simd_packed_avx2.c), included once per
// variant: PK2_VNNI 1 dots with AVX-VNNI (vpdpbusd on ymm, VEX encoded),
// 0 with vpmaddubsw + vpmaddwd. PK2_SFX names the variant.
//
// The layout is the AVX-512 one (simd_packed.c): each 64-byte code vector
// holds 16 rows, read here as two ymm halves of 8 rows. Every output lane
// sees the same integer sums and the same float operations, in the same
// order, as in the AVX-512 kernel, so the results are bit-identical.
//
// vpmaddubsw adds pairs of u8*s8 products with signed saturation to 16
// bits, so the weights must stay small: 4-bit and 5-bit codes go in as
// they are (and up to 16 or 8 products of a lane add up in 16 bits before
// vpmaddwd), Q5_0 and Q6_K second halves are shifted back from 8q and 4q to
// q, and Q8_0 codes take the sign trick: |q| against x with q's sign.

#define PK2_CAT2(a, b) a##_##b
#define PK2_CAT(a, b) PK2_CAT2(a, b)
#define PK2(name) PK2_CAT(name, PK2_SFX)
#define PK2_AI static inline __attribute__((always_inline))

// 8 scales (or biases) of one block or group in storage format sfmt.
PK2_AI __m256 PK2(load8)(const void *p, size_t at, int sfmt) {
    if (sfmt == K_PK_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + at)));
    if (sfmt == K_PK_BF16)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + at))), 16));
    return _mm256_loadu_ps((const float *)p + at);
}

// 8 int8 (or uint8) sub-block scales as floats times d.
PK2_AI __m256 PK2(sub8)(const uint8_t *p, __m256 d, int sgn) {
    const __m128i b = _mm_loadl_epi64((const __m128i *)p);
    return _mm256_mul_ps(d, _mm256_cvtepi32_ps(sgn ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b)));
}

// A narrow layout's block (kernels.h) for 8 rows: the byte vectors of the
// AVX-512 kernel's load (pk_load_narrow), then what PK2(load) does to those
// of its K_PK_BASE kind here. Each shift moves a field within its byte;
// the masks drop what crossed in.
PK2_AI void PK2(load_narrow)(__m256i w[8], const uint8_t *cp, const int LK) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    if (LK == K_PK_U5 || LK == K_PK_U6) {
        const __m256i h = _mm256_loadu_si256((const __m256i *)(cp + 256));
        const __m256i h2 = LK == K_PK_U6 ? _mm256_loadu_si256((const __m256i *)(cp + 320)) : h;
        const __m256i mh = _mm256_set1_epi8(LK == K_PK_U5 ? 0x10 : 0x30);
        for (int i = 0; i < 4; i++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(cp + 64 * i));
            const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            __m256i ha, hb;
            if (LK == K_PK_U5) { // bit i (and 4+i) of h to bit 4
                ha = i == 0 ? _mm256_slli_epi16(h, 4) : i == 1 ? _mm256_slli_epi16(h, 3)
                   : i == 2 ? _mm256_slli_epi16(h, 2) : _mm256_slli_epi16(h, 1);
                hb = i == 0 ? h : _mm256_srli_epi16(h, i);
            } else { // crumb i of h (w[i]) and of h2 (w[4+i]) to bits 4..5
                ha = i == 0 ? _mm256_slli_epi16(h, 4) : i == 1 ? _mm256_slli_epi16(h, 2)
                   : i == 2 ? h : _mm256_srli_epi16(h, 2);
                hb = i == 0 ? _mm256_slli_epi16(h2, 4) : i == 1 ? _mm256_slli_epi16(h2, 2)
                   : i == 2 ? h2 : _mm256_srli_epi16(h2, 2);
            }
            w[i] = _mm256_or_si256(lo, _mm256_and_si256(ha, mh));
            w[4 + i] = _mm256_or_si256(hi, _mm256_and_si256(hb, mh));
        }
        if (!PK2_VNNI) // as K_PK_U8: q, signed
            for (int i = 0; i < 8; i++) w[i] = _mm256_xor_si256(w[i], _mm256_set1_epi8((char)0x80));
        return;
    }
    const __m256i m3 = _mm256_set1_epi8(0x03);
    for (int j = 0; j < 2; j++) {
        const __m256i p = _mm256_loadu_si256((const __m256i *)(cp + 64 * j));
        w[4 * j] = _mm256_and_si256(p, m3);
        w[4 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(p, 2), m3);
        w[4 * j + 2] = _mm256_and_si256(_mm256_srli_epi16(p, 4), m3);
        w[4 * j + 3] = _mm256_and_si256(_mm256_srli_epi16(p, 6), m3);
    }
    if (LK == K_PK_Q3K || LK == K_PK_U3) { // bit i of h to bit 2
        const __m256i h = _mm256_loadu_si256((const __m256i *)(cp + 128)), m04 = _mm256_set1_epi8(0x04);
        for (int i = 0; i < 8; i++) {
            const __m256i hs = i == 0 ? _mm256_slli_epi16(h, 2) : i == 1 ? _mm256_slli_epi16(h, 1)
                             : i == 2 ? h : _mm256_srli_epi16(h, i - 2);
            w[i] = _mm256_or_si256(w[i], _mm256_and_si256(hs, m04));
        }
    }
    if (LK == K_PK_Q3K) { // K_PK_Q6K's q+28; its second half 4(q+28) with VNNI, else q+28 as PK2(load) leaves it
        const __m256i c28 = _mm256_set1_epi8(28);
        for (int i = 0; i < 8; i++) w[i] = _mm256_add_epi8(w[i], c28);
        if (PK2_VNNI)
            for (int i = 4; i < 8; i++) w[i] = _mm256_slli_epi16(w[i], 2);
    }
}

// Q2_K's 8 sub-block scales (hi 0) or mins (hi 1), from the nibbles of
// its bytes, as floats times d.
PK2_AI __m256 PK2(sub8n)(const uint8_t *p, __m256 d, int hi) {
    __m128i b = _mm_loadl_epi64((const __m128i *)p);
    if (hi) b = _mm_srli_epi16(b, 4);
    b = _mm_and_si128(b, _mm_set1_epi8(0x0f));
    return _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)));
}

// The eight code vectors of one 32-block for 8 rows (cp: the block plus
// 32 bytes for the second half of the rows). w[i] holds elements 4i..4i+3.
PK2_AI void PK2(load)(__m256i w[8], const uint8_t *cp, const int KIND) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    if (KIND == K_PK_Q2K || KIND >= K_PK_Q3K) {
        PK2(load_narrow)(w, cp, KIND);
    } else if (KIND == K_PK_Q8 || KIND == K_PK_U8) {
        for (int i = 0; i < 8; i++) {
            w[i] = _mm256_loadu_si256((const __m256i *)(cp + 64 * i));
            if (!PK2_VNNI) w[i] = _mm256_xor_si256(w[i], _mm256_set1_epi8((char)0x80)); // q, signed
        }
    } else if (KIND == K_PK_Q5 || KIND == K_PK_Q5U || KIND == K_PK_Q5K) {
        const __m256i m10 = _mm256_set1_epi8(0x10), m08 = _mm256_set1_epi8(0x08), mf0 = _mm256_set1_epi8((char)0xf0);
        const __m256i h = _mm256_loadu_si256((const __m256i *)(cp + 256));
        const __m256i sa[4] = {h, _mm256_srli_epi16(h, 1), _mm256_srli_epi16(h, 2), _mm256_srli_epi16(h, 3)};
        const __m256i sb[4] = {h, _mm256_slli_epi16(h, 1), _mm256_slli_epi16(h, 2), _mm256_slli_epi16(h, 3)};
        for (int i = 0; i < 4; i++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(cp + 64 * i));
            w[i] = _mm256_or_si256(_mm256_and_si256(v, m4), _mm256_and_si256(sa[i], m10));
            w[4 + i] = _mm256_or_si256(_mm256_and_si256(v, mf0), _mm256_and_si256(sb[i], m08)); // 8q
            if (!PK2_VNNI) w[4 + i] = _mm256_and_si256(_mm256_srli_epi16(w[4 + i], 3), _mm256_set1_epi8(0x1f));
        }
    } else if (KIND == K_PK_Q6K) {
        const __m256i m30 = _mm256_set1_epi8(0x30), m0c = _mm256_set1_epi8(0x0c), mf0 = _mm256_set1_epi8((char)0xf0);
        const __m256i ha = _mm256_loadu_si256((const __m256i *)(cp + 256));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(cp + 320));
        const __m256i sa[4] = {_mm256_slli_epi16(ha, 4), _mm256_slli_epi16(ha, 2), ha, _mm256_srli_epi16(ha, 2)};
        const __m256i sb[4] = {_mm256_slli_epi16(hb, 2), hb, _mm256_srli_epi16(hb, 2), _mm256_srli_epi16(hb, 4)};
        for (int i = 0; i < 4; i++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(cp + 64 * i));
            w[i] = _mm256_or_si256(_mm256_and_si256(v, m4), _mm256_and_si256(sa[i], m30));
            w[4 + i] = _mm256_or_si256(_mm256_and_si256(v, mf0), _mm256_and_si256(sb[i], m0c)); // 4q
            if (!PK2_VNNI) w[4 + i] = _mm256_and_si256(_mm256_srli_epi16(w[4 + i], 2), _mm256_set1_epi8(0x3f));
        }
    } else {
        for (int i = 0; i < 4; i++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(cp + 64 * i));
            w[i] = _mm256_and_si256(v, m4);
            w[4 + i] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
    }
}

#if PK2_VNNI
#define PK2_DP(acc, wv, xb) _mm256_dpbusd_avx_epi32(acc, wv, _mm256_set1_epi32(pk2_quad(xb)))
#endif
// u8 codes times a broadcast quad of activations, pairs added in 16 bits.
#define PK2_MB(wv, xb) _mm256_maddubs_epi16(wv, _mm256_set1_epi32(pk2_quad(xb)))
#define PK2_MADD(t) _mm256_madd_epi16(t, _mm256_set1_epi16(1))

// The integer dot of one 32-block of 8 rows with activation row xb (c:
// the correction the AVX-512 kernel starts from): its a0 + a1 for Q4, Q4_K,
// MLX, Q8_0 and unsigned 8-bit codes (K_PK_U8, whose c is the -128*sum(x)
// that the sign trick takes off and that the unsigned dot never has).
PK2_AI __m256i PK2(dot)(const __m256i w[8], const int8_t *xb, int32_t c, const int KIND) {
#if PK2_VNNI
    __m256i a0 = _mm256_set1_epi32(KIND == K_PK_U8 ? 0 : c), a1 = _mm256_setzero_si256();
    a0 = PK2_DP(a0, w[0], xb + 0);
    a1 = PK2_DP(a1, w[1], xb + 4);
    a0 = PK2_DP(a0, w[2], xb + 8);
    a1 = PK2_DP(a1, w[3], xb + 12);
    a0 = PK2_DP(a0, w[4], xb + 16);
    a1 = PK2_DP(a1, w[5], xb + 20);
    a0 = PK2_DP(a0, w[6], xb + 24);
    a1 = PK2_DP(a1, w[7], xb + 28);
    return _mm256_add_epi32(a0, a1);
#else
    if (KIND == K_PK_Q8 || KIND == K_PK_U8) {
        // (q+128)·x + c with c = -128·sum(x) is q·x: |q| against x signed as q.
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        for (int i = 0; i < 8; i += 2) {
            const __m256i x0 = _mm256_set1_epi32(pk2_quad(xb + 4 * i)), x1 = _mm256_set1_epi32(pk2_quad(xb + 4 * i + 4));
            a0 = _mm256_add_epi32(a0, PK2_MADD(_mm256_maddubs_epi16(_mm256_abs_epi8(w[i]), _mm256_sign_epi8(x0, w[i]))));
            a1 = _mm256_add_epi32(
                a1, PK2_MADD(_mm256_maddubs_epi16(_mm256_abs_epi8(w[i + 1]), _mm256_sign_epi8(x1, w[i + 1]))));
        }
        return KIND == K_PK_U8 ? _mm256_sub_epi32(_mm256_add_epi32(a0, a1), _mm256_set1_epi32(c))
                               : _mm256_add_epi32(a0, a1);
    }
    // 4-bit codes: 16 products of at most 15*127 fit a 16-bit lane.
    __m256i t0 = PK2_MB(w[0], xb + 0), t1 = PK2_MB(w[1], xb + 4);
    t0 = _mm256_add_epi16(t0, PK2_MB(w[2], xb + 8));
    t1 = _mm256_add_epi16(t1, PK2_MB(w[3], xb + 12));
    t0 = _mm256_add_epi16(t0, PK2_MB(w[4], xb + 16));
    t1 = _mm256_add_epi16(t1, PK2_MB(w[5], xb + 20));
    t0 = _mm256_add_epi16(t0, PK2_MB(w[6], xb + 24));
    t1 = _mm256_add_epi16(t1, PK2_MB(w[7], xb + 28));
    return _mm256_add_epi32(_mm256_set1_epi32(c), PK2_MADD(_mm256_add_epi16(t0, t1)));
#endif
}

// Q5_0: the AVX-512 kernel's a0 + (a1 >> 3).
PK2_AI __m256i PK2(dot_q5)(const __m256i w[8], const int8_t *xb, int32_t c) {
#if PK2_VNNI
    __m256i a0 = _mm256_set1_epi32(c), a1 = _mm256_setzero_si256();
    a0 = PK2_DP(a0, w[0], xb + 0);
    a1 = PK2_DP(a1, w[4], xb + 16);
    a0 = PK2_DP(a0, w[1], xb + 4);
    a1 = PK2_DP(a1, w[5], xb + 20);
    a0 = PK2_DP(a0, w[2], xb + 8);
    a1 = PK2_DP(a1, w[6], xb + 24);
    a0 = PK2_DP(a0, w[3], xb + 12);
    a1 = PK2_DP(a1, w[7], xb + 28);
    return _mm256_add_epi32(a0, _mm256_srai_epi32(a1, 3));
#else
    // 5-bit codes: 8 products of at most 31*127 per 16-bit lane.
    __m256i t0 = PK2_MB(w[0], xb + 0), t1 = PK2_MB(w[4], xb + 16);
    t0 = _mm256_add_epi16(t0, PK2_MB(w[1], xb + 4));
    t1 = _mm256_add_epi16(t1, PK2_MB(w[5], xb + 20));
    t0 = _mm256_add_epi16(t0, PK2_MB(w[2], xb + 8));
    t1 = _mm256_add_epi16(t1, PK2_MB(w[6], xb + 24));
    t0 = _mm256_add_epi16(t0, PK2_MB(w[3], xb + 12));
    t1 = _mm256_add_epi16(t1, PK2_MB(w[7], xb + 28));
    return _mm256_add_epi32(_mm256_add_epi32(_mm256_set1_epi32(c), PK2_MADD(t0)), PK2_MADD(t1));
#endif
}

// Q6_K: the AVX-512 kernel's a0 and a1 (the second half 4x, as stored).
PK2_AI void PK2(dot_q6)(const __m256i w[8], const int8_t *xb, int32_t c0, int32_t c1, __m256i *r0, __m256i *r1) {
#if PK2_VNNI
    __m256i a0 = _mm256_set1_epi32(c0), a1 = _mm256_set1_epi32(c1);
    a0 = PK2_DP(a0, w[0], xb + 0);
    a1 = PK2_DP(a1, w[4], xb + 16);
    a0 = PK2_DP(a0, w[1], xb + 4);
    a1 = PK2_DP(a1, w[5], xb + 20);
    a0 = PK2_DP(a0, w[2], xb + 8);
    a1 = PK2_DP(a1, w[6], xb + 24);
    a0 = PK2_DP(a0, w[3], xb + 12);
    a1 = PK2_DP(a1, w[7], xb + 28);
    *r0 = a0, *r1 = a1;
#else
    // 6-bit codes: 4 products of at most 63*127 per 16-bit lane.
    const __m256i t0 = _mm256_add_epi16(PK2_MB(w[0], xb + 0), PK2_MB(w[1], xb + 4));
    const __m256i t1 = _mm256_add_epi16(PK2_MB(w[2], xb + 8), PK2_MB(w[3], xb + 12));
    const __m256i u0 = _mm256_add_epi16(PK2_MB(w[4], xb + 16), PK2_MB(w[5], xb + 20));
    const __m256i u1 = _mm256_add_epi16(PK2_MB(w[6], xb + 24), PK2_MB(w[7], xb + 28));
    *r0 = _mm256_add_epi32(_mm256_add_epi32(_mm256_set1_epi32(c0), PK2_MADD(t0)), PK2_MADD(t1));
    *r1 = _mm256_add_epi32(_mm256_set1_epi32(c1), _mm256_slli_epi32(_mm256_add_epi32(PK2_MADD(u0), PK2_MADD(u1)), 2));
#endif
}

// Q2_K: sums of 4-bit codes over each half apart, from 0 (with VNNI the
// Q6_K dot without corrections: it keeps the halves apart the same way).
PK2_AI void PK2(dot_halves)(const __m256i w[8], const int8_t *xb, __m256i *r0, __m256i *r1) {
#if PK2_VNNI
    PK2(dot_q6)(w, xb, 0, 0, r0, r1);
#else
    // 4-bit codes: 8 products of at most 15*127 per 16-bit lane.
    const __m256i t0 = _mm256_add_epi16(PK2_MB(w[0], xb + 0), PK2_MB(w[1], xb + 4));
    const __m256i t1 = _mm256_add_epi16(PK2_MB(w[2], xb + 8), PK2_MB(w[3], xb + 12));
    const __m256i u0 = _mm256_add_epi16(PK2_MB(w[4], xb + 16), PK2_MB(w[5], xb + 20));
    const __m256i u1 = _mm256_add_epi16(PK2_MB(w[6], xb + 24), PK2_MB(w[7], xb + 28));
    *r0 = PK2_MADD(_mm256_add_epi16(t0, t1));
    *r1 = PK2_MADD(_mm256_add_epi16(u0, u1));
#endif
}

// Rows 16g+8h..16g+8h+7 against NB activation rows, as pk_group in
// simd_packed.c for one half of its rows. The halves run one after the
// other (the second reads the group's codes again from cache): 16 ymm
// registers hold the eight code vectors and four accumulators, not eight.
PK2_AI void PK2(half)(float *out, const int8_t *xq, const float *xd, const int32_t *xc, const float *xe,
                      const int NB, const int LK, const uint8_t *codes, const void *sc, const void *bi, int sfmt,
                      int group, int rows, int cols, int g, int h, const k_pf pf) {
    // LK is the layout, KIND the kind whose code runs on its byte vectors.
    const int KIND = K_PK_BASE(LK), nb = cols / 32, nsb = cols / 256;
    const size_t cb = K_PK_CB(LK);
    const uint8_t *cp = codes + (size_t)g * nb * cb + 32 * h;
    __m256 f[4];
    for (int bb = 0; bb < NB; bb++) f[bb] = _mm256_setzero_ps();
    __m256i w[8];
    if (KIND == K_PK_Q6K) {
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 288;
        for (int sb = 0; sb < nsb; sb++, sp += 288) {
            const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 16 * h)));
            const __m256 dv4 = _mm256_mul_ps(dv, _mm256_set1_ps(0.25f));
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                if (!h) pk2_prefetch(cp + (size_t)k * cb, cb);
                PK2(load)(w, cp + (size_t)k * cb, LK);
                const __m256 s0 = PK2(sub8)(sp + 32 + 32 * (k - sb * 8) + 8 * h, dv, 1);
                const __m256 s1 = PK2(sub8)(sp + 48 + 32 * (k - sb * 8) + 8 * h, dv4, 1);
                for (int bb = 0; bb < NB; bb++) {
                    const size_t at = (size_t)bb * nb + k;
                    __m256i a0, a1;
                    PK2(dot_q6)(w, xq + (size_t)bb * cols + (size_t)k * 32, xc[2 * at], xc[2 * at + 1], &a0, &a1);
                    f[bb] = _mm256_fmadd_ps(
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(a1), s1, _mm256_mul_ps(_mm256_cvtepi32_ps(a0), s0)),
                        _mm256_set1_ps(xd[at]), f[bb]);
                }
            }
        }
    } else if (KIND == K_PK_Q5 || KIND == K_PK_Q5U) {
        for (int k = 0; k < nb; k++) {
            if (!h) pk2_prefetch(cp + (size_t)k * cb, cb);
            PK2(load)(w, cp + (size_t)k * cb, LK);
            const __m256 s = PK2(load8)(sc, ((size_t)g * nb + k) * 16 + 8 * h, sfmt);
            for (int bb = 0; bb < NB; bb++) {
                const size_t at = (size_t)bb * nb + k;
                const __m256i a =
                    PK2(dot_q5)(w, xq + (size_t)bb * cols + (size_t)k * 32, KIND == K_PK_Q5 ? xc[at] : 0);
                f[bb] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(s, _mm256_set1_ps(xd[at])), f[bb]);
            }
            if (KIND == K_PK_Q5U) {
                const __m256 bv = PK2(load8)(bi, ((size_t)g * nb + k) * 16 + 8 * h, sfmt);
                for (int bb = 0; bb < NB; bb++)
                    f[bb] = _mm256_fmadd_ps(bv, _mm256_set1_ps(xe[(size_t)bb * nb + k]), f[bb]);
            }
        }
    } else if (KIND == K_PK_Q2K) {
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 320;
        for (int sb = 0; sb < nsb; sb++, sp += 320) {
            const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 16 * h)));
            const __m256 mv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 32 + 16 * h)));
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                const int j = k - sb * 8;
                if (!h) pk2_prefetch(cp + (size_t)k * cb, cb);
                PK2(load)(w, cp + (size_t)k * cb, LK);
                const __m256 s0 = PK2(sub8n)(sp + 64 + 32 * j + 8 * h, dv, 0);
                const __m256 s1 = PK2(sub8n)(sp + 80 + 32 * j + 8 * h, dv, 0);
                const __m256 m0 = PK2(sub8n)(sp + 64 + 32 * j + 8 * h, mv, 1);
                const __m256 m1 = PK2(sub8n)(sp + 80 + 32 * j + 8 * h, mv, 1);
                for (int bb = 0; bb < NB; bb++) {
                    const size_t at = (size_t)bb * nb + k;
                    __m256i a0, a1;
                    PK2(dot_halves)(w, xq + (size_t)bb * cols + (size_t)k * 32, &a0, &a1);
                    const __m256 t =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(a1), s1, _mm256_mul_ps(_mm256_cvtepi32_ps(a0), s0));
                    const __m256 u = _mm256_fmadd_ps(m1, _mm256_set1_ps((float)xc[2 * at + 1]),
                                                     _mm256_mul_ps(m0, _mm256_set1_ps((float)xc[2 * at])));
                    f[bb] = _mm256_fmadd_ps(_mm256_sub_ps(t, u), _mm256_set1_ps(xd[at]), f[bb]);
                }
            }
        }
    } else if (KIND == K_PK_Q5K) {
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 320;
        for (int sb = 0; sb < nsb; sb++, sp += 320) {
            const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 16 * h)));
            const __m256 mv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 32 + 16 * h)));
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                if (!h) pk2_prefetch(cp + (size_t)k * cb, cb);
                PK2(load)(w, cp + (size_t)k * cb, LK);
                const __m256 s = PK2(sub8)(sp + 64 + 16 * (k - sb * 8) + 8 * h, dv, 0);
                const __m256 m = PK2(sub8)(sp + 192 + 16 * (k - sb * 8) + 8 * h, mv, 0);
                for (int bb = 0; bb < NB; bb++) {
                    const size_t at = (size_t)bb * nb + k;
                    const __m256i a = PK2(dot_q5)(w, xq + (size_t)bb * cols + (size_t)k * 32, 0);
                    f[bb] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(s, _mm256_set1_ps(xd[at])), f[bb]);
                }
                for (int bb = 0; bb < NB; bb++)
                    f[bb] = _mm256_fnmadd_ps(m, _mm256_set1_ps(xe[(size_t)bb * nb + k]), f[bb]);
            }
        }
    } else if (KIND == K_PK_Q4K) {
        const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * 320;
        for (int sb = 0; sb < nsb; sb++, sp += 320) {
            const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 16 * h)));
            const __m256 mv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 32 + 16 * h)));
            for (int k = sb * 8; k < sb * 8 + 8; k++) {
                if (!h) pk2_prefetch(cp + (size_t)k * cb, cb);
                PK2(load)(w, cp + (size_t)k * cb, LK);
                const __m256 s = PK2(sub8)(sp + 64 + 16 * (k - sb * 8) + 8 * h, dv, 0);
                const __m256 m = PK2(sub8)(sp + 192 + 16 * (k - sb * 8) + 8 * h, mv, 0);
                for (int bb = 0; bb < NB; bb++) {
                    const size_t at = (size_t)bb * nb + k;
                    const __m256i a = PK2(dot)(w, xq + (size_t)bb * cols + (size_t)k * 32, xc[at], KIND);
                    const __m256 t =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(s, _mm256_set1_ps(xd[at])), f[bb]);
                    f[bb] = _mm256_fnmadd_ps(m, _mm256_set1_ps(xe[at]), t);
                }
            }
        }
    } else if (group == 0) {
        for (int k = 0; k < nb; k++) {
            if (!h) pk2_prefetch(cp + (size_t)k * cb, cb);
            PK2(load)(w, cp + (size_t)k * cb, LK);
            const __m256 s = PK2(load8)(sc, ((size_t)g * nb + k) * 16 + 8 * h, sfmt);
            for (int bb = 0; bb < NB; bb++) {
                const size_t at = (size_t)bb * nb + k;
                const __m256i a = PK2(dot)(w, xq + (size_t)bb * cols + (size_t)k * 32, xc[at], KIND);
                f[bb] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(s, _mm256_set1_ps(xd[at])), f[bb]);
            }
        }
    } else {
        // One flat loop over the blocks, the group's scale loaded at its
        // first block and its bias added after its last: the operations and
        // order of a loop per group. Nested loops made GCC spill f to the
        // stack, and MLX 4-bit prefill ran about 6% slower.
        const int bpg = group / 32, ng = cols / group;
        __m256 s = _mm256_setzero_ps();
        for (int k = 0, gi = 0, left = 0; k < nb; k++) {
            if (left == 0) {
                s = PK2(load8)(sc, ((size_t)g * ng + gi) * 16 + 8 * h, sfmt);
                left = bpg;
            }
            if (!h) pk2_prefetch(cp + (size_t)k * cb, cb);
            PK2(load)(w, cp + (size_t)k * cb, LK);
            for (int bb = 0; bb < NB; bb++) {
                const size_t at = (size_t)bb * nb + k;
                const __m256i a = PK2(dot)(w, xq + (size_t)bb * cols + (size_t)k * 32, xc[at], KIND);
                f[bb] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(s, _mm256_set1_ps(xd[at])), f[bb]);
            }
            if (--left == 0) {
                const __m256 bv = PK2(load8)(bi, ((size_t)g * ng + gi) * 16 + 8 * h, sfmt);
                for (int bb = 0; bb < NB; bb++)
                    f[bb] = _mm256_fmadd_ps(bv, _mm256_set1_ps(xe[(size_t)bb * ng + gi]), f[bb]);
                gi++;
            }
        }
    }
    for (int bb = 0; bb < NB; bb++) _mm256_storeu_ps(out + (size_t)bb * rows + (size_t)g * 16 + 8 * h, f[bb]);
}

// One activation row against all 16 rows of group g, for the kinds whose
// blocks are plain 32-blocks (Q4, Q8, U8, with or without MLX groups, Q5_0
// and Q5_1): both halves per block, so each activation quad is broadcast
// once for 16 rows and the group's codes are read once. Each lane's integer
// sums and float operations are those of PK2(half), so the results are
// bit-identical.
PK2_AI void PK2(pair1)(float *out, const int8_t *xq, const float *xd, const int32_t *xc, const float *xe,
                       const int LK, const uint8_t *codes, const void *sc, const void *bi, int sfmt, int group,
                       int cols, int g, const k_pf pf) {
    const int KIND = K_PK_BASE(LK), nb = cols / 32;
    const size_t cb = K_PK_CB(LK);
    const uint8_t *cp = codes + (size_t)g * nb * cb;
    const int bpg = group > 0 ? group / 32 : nb, ng = group > 0 ? cols / group : 1;
    __m256 f0 = _mm256_setzero_ps(), f1 = _mm256_setzero_ps();
    __m256i w[8];
    for (int gi = 0; gi < ng; gi++) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        if (group > 0) {
            s0 = PK2(load8)(sc, ((size_t)g * ng + gi) * 16, sfmt);
            s1 = PK2(load8)(sc, ((size_t)g * ng + gi) * 16 + 8, sfmt);
        }
        for (int k = gi * bpg; k < (gi + 1) * bpg; k++) {
            pk2_prefetch(cp + (size_t)k * cb, cb);
            if (group == 0) {
                s0 = PK2(load8)(sc, ((size_t)g * nb + k) * 16, sfmt);
                s1 = PK2(load8)(sc, ((size_t)g * nb + k) * 16 + 8, sfmt);
            }
            const __m256 dx = _mm256_set1_ps(xd[k]);
            if (KIND == K_PK_Q5 || KIND == K_PK_Q5U) {
                // PK2(half)'s Q5 branch; Q5_1 has groups of one block, so
                // its bias is added below after each block, as there.
                const int32_t c = KIND == K_PK_Q5 ? xc[k] : 0;
                PK2(load)(w, cp + (size_t)k * cb, LK);
                f0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(PK2(dot_q5)(w, xq + (size_t)k * 32, c)), _mm256_mul_ps(s0, dx), f0);
                PK2(load)(w, cp + (size_t)k * cb + 32, LK);
                f1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(PK2(dot_q5)(w, xq + (size_t)k * 32, c)), _mm256_mul_ps(s1, dx), f1);
                continue;
            }
            PK2(load)(w, cp + (size_t)k * cb, LK);
            const __m256i a0 = PK2(dot)(w, xq + (size_t)k * 32, xc[k], KIND);
            f0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a0), _mm256_mul_ps(s0, dx), f0);
            PK2(load)(w, cp + (size_t)k * cb + 32, LK);
            const __m256i a1 = PK2(dot)(w, xq + (size_t)k * 32, xc[k], KIND);
            f1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a1), _mm256_mul_ps(s1, dx), f1);
        }
        if (group > 0) {
            const __m256 ex = _mm256_set1_ps(xe[gi]);
            f0 = _mm256_fmadd_ps(PK2(load8)(bi, ((size_t)g * ng + gi) * 16, sfmt), ex, f0);
            f1 = _mm256_fmadd_ps(PK2(load8)(bi, ((size_t)g * ng + gi) * 16 + 8, sfmt), ex, f1);
        }
    }
    _mm256_storeu_ps(out + (size_t)g * 16, f0);
    _mm256_storeu_ps(out + (size_t)g * 16 + 8, f1);
}

// One activation row against all 16 rows of group g for the K-quants with
// 256-element super-blocks (Q4_K, Q5_K, Q6_K): as PK2(pair1), both halves
// per block with the operations of PK2(half), so the results are the same.
PK2_AI void PK2(pairk)(float *out, const int8_t *xq, const float *xd, const int32_t *xc, const float *xe,
                       const int LK, const uint8_t *codes, const void *sc, int cols, int g, const k_pf pf) {
    const int KIND = K_PK_BASE(LK), nb = cols / 32, nsb = cols / 256;
    const size_t cb = K_PK_CB(LK), sbb = KIND == K_PK_Q6K ? 288 : 320;
    const uint8_t *cp = codes + (size_t)g * nb * cb;
    const uint8_t *sp = (const uint8_t *)sc + (size_t)g * nsb * sbb;
    __m256 f[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256i w[8];
    for (int sb = 0; sb < nsb; sb++, sp += sbb) {
        __m256 dv[2], mv[2];
        for (int h = 0; h < 2; h++) {
            dv[h] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 16 * h)));
            mv[h] = KIND == K_PK_Q6K ? _mm256_mul_ps(dv[h], _mm256_set1_ps(0.25f))
                                     : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sp + 32 + 16 * h)));
        }
        for (int k = sb * 8; k < sb * 8 + 8; k++) {
            const int j = k - sb * 8;
            const int8_t *xb = xq + (size_t)k * 32;
            const __m256 dx = _mm256_set1_ps(xd[k]);
            pk2_prefetch(cp + (size_t)k * cb, cb);
            for (int h = 0; h < 2; h++) {
                PK2(load)(w, cp + (size_t)k * cb + 32 * h, LK);
                if (KIND == K_PK_Q6K) {
                    const __m256 s0 = PK2(sub8)(sp + 32 + 32 * j + 8 * h, dv[h], 1);
                    const __m256 s1 = PK2(sub8)(sp + 48 + 32 * j + 8 * h, mv[h], 1);
                    __m256i a0, a1;
                    PK2(dot_q6)(w, xb, xc[2 * k], xc[2 * k + 1], &a0, &a1);
                    f[h] = _mm256_fmadd_ps(
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(a1), s1, _mm256_mul_ps(_mm256_cvtepi32_ps(a0), s0)), dx,
                        f[h]);
                } else {
                    const __m256 s = PK2(sub8)(sp + 64 + 16 * j + 8 * h, dv[h], 0);
                    const __m256 m = PK2(sub8)(sp + 192 + 16 * j + 8 * h, mv[h], 0);
                    if (KIND == K_PK_Q5K) {
                        const __m256i a = PK2(dot_q5)(w, xb, 0);
                        f[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(s, dx), f[h]);
                        f[h] = _mm256_fnmadd_ps(m, _mm256_set1_ps(xe[k]), f[h]);
                    } else {
                        const __m256i a = PK2(dot)(w, xb, xc[k], KIND);
                        const __m256 t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(s, dx), f[h]);
                        f[h] = _mm256_fnmadd_ps(m, _mm256_set1_ps(xe[k]), t);
                    }
                }
            }
        }
    }
    _mm256_storeu_ps(out + (size_t)g * 16, f[0]);
    _mm256_storeu_ps(out + (size_t)g * 16 + 8, f[1]);
}

#define PK2_NB(NB)                                                                                                 \
    do {                                                                                                           \
        switch (kind) {                                                                                            \
        case K_PK_Q8: PK2(half)(o, q, d, c, e, NB, K_PK_Q8, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;    \
        case K_PK_Q6K: PK2(half)(o, q, d, c, e, NB, K_PK_Q6K, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;  \
        case K_PK_Q5: PK2(half)(o, q, d, c, e, NB, K_PK_Q5, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;    \
        case K_PK_Q4K: PK2(half)(o, q, d, c, e, NB, K_PK_Q4K, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;  \
        case K_PK_U8: PK2(half)(o, q, d, c, e, NB, K_PK_U8, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;    \
        case K_PK_Q5U: PK2(half)(o, q, d, c, e, NB, K_PK_Q5U, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;  \
        case K_PK_Q5K: PK2(half)(o, q, d, c, e, NB, K_PK_Q5K, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;  \
        case K_PK_Q2K: PK2(half)(o, q, d, c, e, NB, K_PK_Q2K, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;  \
        case K_PK_Q3K: PK2(half)(o, q, d, c, e, NB, K_PK_Q3K, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;  \
        case K_PK_U2: PK2(half)(o, q, d, c, e, NB, K_PK_U2, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;  \
        case K_PK_U3: PK2(half)(o, q, d, c, e, NB, K_PK_U3, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;  \
        case K_PK_U5: PK2(half)(o, q, d, c, e, NB, K_PK_U5, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;  \
        case K_PK_U6: PK2(half)(o, q, d, c, e, NB, K_PK_U6, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;  \
        default: PK2(half)(o, q, d, c, e, NB, K_PK_Q4, codes, sc, bi, sfmt, group, rows, cols, g, h, pf); break;         \
        }                                                                                                          \
    } while (0)

void PK2(pk_matmul)(float *out, const int8_t *xq, const float *xd, const int32_t *xc, const float *xe, int n,
                    const uint8_t *codes, const void *sc, const void *bi, int kind, int sfmt, int group, int rows,
                    int cols, int lo, int hi) {
    const int nb = cols / 32, ng = group > 0 ? cols / group : 0, nc = K_PK_NC(kind) * nb;
    for (int b0 = 0; b0 < n; b0 += 4) {
        float *o = out + (size_t)b0 * rows;
        const int8_t *q = xq + (size_t)b0 * cols;
        const float *d = xd + (size_t)b0 * nb;
        const int32_t *c = xc + (size_t)b0 * nc;
        const float *e = xe ? xe + (size_t)b0 * ng : 0;
        const int nbk = n - b0 < 4 ? n - b0 : 4;
        const int base = K_PK_BASE(kind);
        const k_pf pf = k_pk_prefetch_plan(nbk);
        k_pf_start(codes + (size_t)(lo / 16) * nb * K_PK_CB(kind), pf);
        if (nbk == 1 && (base == K_PK_Q4 || base == K_PK_Q8 || base == K_PK_U8 || kind == K_PK_Q5 || kind == K_PK_Q5U)) {
            for (int g = lo / 16; g < hi / 16; g++) {
                switch (kind) {
                case K_PK_Q5: PK2(pair1)(o, q, d, c, e, K_PK_Q5, codes, sc, bi, sfmt, group, cols, g, pf); break;
                case K_PK_Q5U: PK2(pair1)(o, q, d, c, e, K_PK_Q5U, codes, sc, bi, sfmt, group, cols, g, pf); break;
                case K_PK_Q8: PK2(pair1)(o, q, d, c, e, K_PK_Q8, codes, sc, bi, sfmt, group, cols, g, pf); break;
                case K_PK_U8: PK2(pair1)(o, q, d, c, e, K_PK_U8, codes, sc, bi, sfmt, group, cols, g, pf); break;
                case K_PK_U2: PK2(pair1)(o, q, d, c, e, K_PK_U2, codes, sc, bi, sfmt, group, cols, g, pf); break;
                case K_PK_U3: PK2(pair1)(o, q, d, c, e, K_PK_U3, codes, sc, bi, sfmt, group, cols, g, pf); break;
                case K_PK_U5: PK2(pair1)(o, q, d, c, e, K_PK_U5, codes, sc, bi, sfmt, group, cols, g, pf); break;
                case K_PK_U6: PK2(pair1)(o, q, d, c, e, K_PK_U6, codes, sc, bi, sfmt, group, cols, g, pf); break;
                default: PK2(pair1)(o, q, d, c, e, K_PK_Q4, codes, sc, bi, sfmt, group, cols, g, pf); break;
                }
            }
            continue;
        }
        if (nbk == 1 && (kind == K_PK_Q4K || kind == K_PK_Q5K || base == K_PK_Q6K)) {
            for (int g = lo / 16; g < hi / 16; g++) {
                if (kind == K_PK_Q4K) PK2(pairk)(o, q, d, c, e, K_PK_Q4K, codes, sc, cols, g, pf);
                else if (kind == K_PK_Q5K) PK2(pairk)(o, q, d, c, e, K_PK_Q5K, codes, sc, cols, g, pf);
                else if (kind == K_PK_Q3K) PK2(pairk)(o, q, d, c, e, K_PK_Q3K, codes, sc, cols, g, pf);
                else PK2(pairk)(o, q, d, c, e, K_PK_Q6K, codes, sc, cols, g, pf);
            }
            continue;
        }
        for (int g = lo / 16; g < hi / 16; g++) {
            for (int h = 0; h < 2; h++) {
                switch (nbk) {
                case 1: PK2_NB(1); break;
                case 2: PK2_NB(2); break;
                case 3: PK2_NB(3); break;
                default: PK2_NB(4); break;
                }
            }
        }
    }
}

#undef PK2_NB
#undef PK2_DP
#undef PK2_MB
#undef PK2_MADD
#undef PK2_AI
#undef PK2
#undef PK2_CAT
#undef PK2_CAT2
