// Entry points of the C kernels, called from backend_cgo.go. Each matrix or
// attention call covers one chunk [lo, hi) of output rows or (row, head)
// items, so the Go thread pool can split the work; the rest are whole
// operations. scratch is a per-worker buffer sized by the Go side.
#ifndef IMPETUS_KERNELS_H
#define IMPETUS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

enum { K_SCALAR = 0, K_AVX2 = 1, K_AVX512 = 2, K_NEON = 3 };

int k_detect(void);        // best level this CPU supports
int k_set_level(int lvl);  // force a level (tests); returns the level in use
int k_level(void);

// The packed int8 kernels (simd_packed*.c) that run at the current level:
// none (the float path), AVX2 (vpmaddubsw), AVX2 with AVX-VNNI (vpdpbusd on
// ymm), or AVX-512 VNNI. All read the same packed layout, so the level can
// change after weights are packed. k_set_avxvnni(0) holds AVX2 to
// vpmaddubsw on a CPU with AVX-VNNI (tests, benchmarks of older CPUs); it
// returns the previous setting.
enum { K_PKL_NONE = 0, K_PKL_AVX2 = 1, K_PKL_AVXVNNI = 2, K_PKL_AVX512 = 3 };
int k_pk_level(void);
int k_has_avxvnni(void);
int k_set_avxvnni(int on);

// Software prefetch of the packed kernels' weight stream. K_PF_DENSE
// prefetches every cache line of a block 4 KiB ahead (tuned on Intel, where
// it keeps memory busy at several activation rows); K_PF_SPARSE one line per
// 2 KiB, 16 KiB ahead, which on AMD Zen 5 lets the hardware prefetchers
// run far enough ahead to read about 40% faster on one core than with no
// hints or dense ones (simd_packed.c). K_PF_AUTO: sparse for single-row
// (decode) calls on AMD CPUs, dense otherwise. k_set_pk_prefetch returns
// the previous mode (tests, benchmarks).
enum { K_PF_AUTO = 0, K_PF_DENSE = 1, K_PF_SPARSE = 2 };
int k_set_pk_prefetch(int mode);

// k_read_stream reads n bytes at p with the current level's widest loads
// (with the sparse far prefetch when sparse is set) and returns a value
// that depends on every byte: the bench's memory bandwidth probe.
uint64_t k_read_stream(const uint8_t *p, size_t n, int sparse);

// Scratch needed by a matmul chunk, in floats.
size_t k_matmul_scratch(int n, int cols);

void k_matmul_f32(float *out, const float *x, int n, const float *w, int rows, int cols, int lo, int hi, float *scratch);
void k_matmul_bf16(float *out, const float *x, int n, const uint16_t *w, int rows, int cols, int lo, int hi, float *scratch);
void k_matmul_f16(float *out, const float *x, int n, const uint16_t *w, int rows, int cols, int lo, int hi, float *scratch);
// Weights in panels of 16 rows (panels.go); fmt 0 float32, 1 bfloat16, 2 half.
// lo is a multiple of 16 and hi one too or rows.
// Bidirectional attention of one sequence of n tokens for heads [lo, hi)
// (rows of q, k, v and out nh*hd apart; hd a multiple of 16); scratch holds
// k_attn_bidir_scratch(n, hd) floats.
void k_attn_bidir(float *out, const float *q, const float *k, const float *v, int n, int nh, int hd, float scale,
                  int lo, int hi, float *scratch);
size_t k_attn_bidir_scratch(int n, int hd);
void k_matmul_panels(float *out, const float *x, int n, const void *w, int fmt, int rows, int cols, int lo, int hi);
// Rearranges the activations for k_matmul_mlx at the current level into
// dst (n*cols floats); returns 0 when x is to be passed unchanged.
int k_mlx_prep(float *dst, const float *x, int n, int cols, int bits);
// x is the output of k_mlx_prep when that returned 1.
void k_matmul_mlx(float *out, const float *x, int n, const uint32_t *wq, const float *scales, const float *biases,
                  int rows, int cols, int bits, int group, int lo, int hi, float *scratch);

// GGUF block formats by ggml type id: 8 Q8_0, 2 Q4_0, 3 Q4_1, 6 Q5_0, 7 Q5_1,
// 10 Q2_K, 11 Q3_K, 12 Q4_K, 13 Q5_K, 14 Q6_K.
void k_matmul_gguf(float *out, const float *x, int n, const uint8_t *w, int type, int rows, int cols, int lo, int hi,
                   float *scratch);

// Int8 activations (simd_vnni.c): k_has_vnni reports AVX-512 VNNI;
// k_quant_act_i8 quantizes n rows of x to int8 per 32-element block for a
// Q8_0 (8) or Q4_0 (2) weight (q is n*cols bytes, d the block scales and s
// the block sums of q, n*cols/32 each; dv and cv the per-lane scales and
// offset corrections of block pairs, n*cols/4 each); k_matmul_gguf_i8
// multiplies them by the weight.
// Type K_I8_MLX4 is an MLX 4-bit weight (k_matmul_mlx4_i8, groups 32-128).
enum { K_I8_MLX4 = 100 };
int k_has_vnni(void);
void k_matmul_mlx4_i8(float *out, const int8_t *xq, const float *xd, const int32_t *xs, const float *xdv,
                      const int32_t *xc, int n, const uint32_t *wq, const float *sc, const float *bi, int group,
                      int rows, int cols, int lo, int hi);
void k_quant_act_i8(int8_t *q, float *d, int32_t *s, float *dv, int32_t *cv, const float *x, int n, int cols,
                    int type);
void k_matmul_gguf_i8(float *out, const int8_t *xq, const float *xd, const int32_t *xs, const float *xdv,
                      const int32_t *xc, int n, const uint8_t *w, int type, int rows, int cols, int lo, int hi);

// Packed int8 kernels (simd_packed.c, packed.go; AVX-512 VNNI; on ARM64
// simd_packed_neon.c). Codes are
// [rows/16][cols/32][vectors][16 rows][4 bytes]: 4-bit codes (K_PK_Q4,
// K_PK_Q4K) hold elements j and j+16 of a 32-block in the low and high
// nibble of byte j, 8-bit codes (K_PK_Q8) hold code+128; K_PK_Q5 and
// K_PK_Q6K add one or two vectors of high bits per block (pk_load_q5,
// pk_load_q6). Scales (and MLX biases) are [rows/16][blocks or groups][16]
// in format sfmt; K-quant scales are per super-block (pk_group). group 0
// means one scale per 32-block and a weight offset (GGUF); otherwise w =
// scale*code + bias per group. k_packed_quant quantizes n activation rows to
// int8 per 32-block (q), with block scales d, corrections c = -off*sum(q)
// (with hoff != 0, two per block: -off*sum of the first 16, -hoff*sum of the
// last 16) and, for group > 0, the group sums e of d*sum(q).
enum { K_PK_F16 = 0, K_PK_BF16 = 1, K_PK_F32 = 2 };
// Kinds 5..7 read unsigned codes without an offset of their own in the
// layouts above: K_PK_U8 (MLX 8-bit: the code itself in K_PK_Q8's
// byte), K_PK_Q5U (Q5_1: K_PK_Q5 codes, scale and bias per 32-block) and
// K_PK_Q5K (Q5_K: K_PK_Q5 codes, K_PK_Q4K scales and mins). Their c holds
// -128*sum(q) (K_PK_U8) or -16*sum(q) (K_PK_Q5U, K_PK_Q5K), the offset the
// signed-code kernels (NEON, AVX2 vpmaddubsw for 8-bit codes) take from
// every code, so that they add it back; the kernels that multiply
// unsigned codes ignore it.
// Narrow layouts keep each code at its own width, in the same 64-byte
// vectors of 16 rows by 4 bytes, and their loads build exactly the byte
// vectors of a wider kind's load (K_PK_BASE), whose dot, scale and
// accumulation code then runs: so each lane's integer sums and float
// operations are those of the wider layout they replace. A 2-bit plane
// pair holds in bits 2s..2s+1 of byte (r,t) of plane j element 4(4j+s)+t
// (code vector 4j+s: a shift by 2s and a mask); a 1-bit plane holds in bit
// i of byte (r,t) element 4i+t. Per 32-block of 16 rows:
// K_PK_Q2K (Q2_K): a 2-bit pair (128 bytes), codes 0..3 as K_PK_Q4 loads
//   them; per super-block d, dmin (f16) and the file's byte per 16-element
//   sub-block, scale in the low and min in the high nibble; its c holds
//   the activation sums of both halves of each block (off = hoff = -1).
// K_PK_Q3K (Q3_K): a 2-bit pair and a plane of third bits (192 bytes),
//   loaded as K_PK_Q6K's vectors of q+28 (first half) and 4(q+28), so that
//   Q6_K's offset of 32 takes Q3_K's 4 off; Q6_K's d and int8 scales.
// K_PK_U2, K_PK_U3 (MLX 2- and 3-bit): as K_PK_Q2K's and K_PK_Q3K's
//   codes, loaded as K_PK_Q4's (the code itself).
// K_PK_U5, K_PK_U6 (MLX 5- and 6-bit): the low 4 bits in the Q4 nibble
//   layout, then a 1-bit plane (320 bytes) or a 2-bit pair (384 bytes) of
//   the high bits, loaded as K_PK_U8's.
enum {
    K_PK_Q4 = 0,
    K_PK_Q8 = 1,
    K_PK_Q6K = 2,
    K_PK_Q5 = 3,
    K_PK_Q4K = 4,
    K_PK_U8 = 5,
    K_PK_Q5U = 6,
    K_PK_Q5K = 7,
    K_PK_Q2K = 8,
    K_PK_Q3K = 9,
    K_PK_U2 = 10,
    K_PK_U3 = 11,
    K_PK_U5 = 12,
    K_PK_U6 = 13
};
// The kind whose byte vectors a layout's load builds (see above).
#define K_PK_BASE(KIND)                                                                                        \
    ((KIND) == K_PK_Q3K                        ? K_PK_Q6K                                                      \
     : (KIND) == K_PK_U2 || (KIND) == K_PK_U3 ? K_PK_Q4                                                       \
     : (KIND) == K_PK_U5 || (KIND) == K_PK_U6 ? K_PK_U8                                                       \
                                               : (KIND))
// Activation corrections per 32-block: two for the kinds with halves.
#define K_PK_NC(KIND) (K_PK_BASE(KIND) == K_PK_Q6K || (KIND) == K_PK_Q2K ? 2 : 1)
// Code bytes of one 32-block of 16 rows per kind.
#define K_PK_CB(KIND)                                                                                          \
    ((KIND) == K_PK_Q8 || (KIND) == K_PK_U8                                   ? (size_t)512                    \
     : (KIND) == K_PK_Q6K || (KIND) == K_PK_U6                                ? (size_t)384                    \
     : (KIND) == K_PK_Q5 || (KIND) == K_PK_Q5U || (KIND) == K_PK_Q5K || (KIND) == K_PK_U5 ? (size_t)320       \
     : (KIND) == K_PK_Q3K || (KIND) == K_PK_U3                                ? (size_t)192                    \
     : (KIND) == K_PK_Q2K || (KIND) == K_PK_U2                                ? (size_t)128                    \
                                                                              : (size_t)256)
void k_packed_quant(int8_t *q, float *d, int32_t *c, float *e, const float *x, int n, int cols, int off, int hoff,
                    int group);
void k_matmul_packed(float *out, const int8_t *xq, const float *xd, const int32_t *xc, const float *xe, int n,
                     const uint8_t *codes, const void *sc, const void *bi, int kind, int sfmt, int group, int rows,
                     int cols, int lo, int hi);

// ARM64 (simd_packed_neon.c): the int8 and packed entry points above run on
// every AArch64 CPU at the NEON level, with sdot (dotprod) and smmla (i8mm)
// where the CPU has them; k_has_neon_i8 reports them built (0 elsewhere),
// k_neon_i8_variant the one in use (0 base, 1 dotprod, 2 i8mm; -1 none),
// and k_neon_i8_set forces a lower one (tests) and returns the one in use.
int k_has_neon_i8(void);
int k_neon_i8_variant(void);
int k_neon_i8_set(int v);

// Flash attention (simd_attn.h). part == NULL: items are (tile of
// K_ATTN_TILE query rows, KV head) = tile*nKVHeads+kvh, written to out.
// Otherwise items are ((t*nKVHeads+kvh)*nC + c) for the nC =
// ceil(nKV/K_ATTN_CHUNK) chunks of the cache, each writing its partials
// to part (nq*nKVHeads*nC*(nHeads/nKVHeads)*(headDim+2) floats), and
// k_attention_merge's items (t*nKVHeads+kvh) fold them into out.
// scratch: k_attention_scratch floats per worker.
size_t k_attention_scratch(int nHeads, int nKVHeads, int headDim);
int k_attention_chunk(void);
int k_attention_tile(void);
void k_attention(float *out, float *part, const float *q, int nq, int pos0, const float *k, const float *v, int nKV,
                 int nHeads, int nKVHeads, int headDim, float scale, float softcap, int window, int lo, int hi,
                 float *scratch);
// The same with a half-precision (IEEE binary16) KV cache.
void k_attention_f16(float *out, float *part, const float *q, int nq, int pos0, const uint16_t *k,
                     const uint16_t *v, int nKV, int nHeads, int nKVHeads, int headDim, float scale, float softcap,
                     int window, int lo, int hi, float *scratch);
// k_attention_q8: the cache in q8_0 blocks (headDim a multiple of 32): per
// token and KV head, headDim/32 blocks of an IEEE half scale and 32 int8
// codes, so a token's row is nKVHeads*headDim/32*34 bytes.
void k_attention_q8(float *out, float *part, const float *q, int nq, int pos0, const uint8_t *k, const uint8_t *v,
                    int nKV, int nHeads, int nKVHeads, int headDim, float scale, float softcap, int window, int lo,
                    int hi, float *scratch);
void k_attention_merge(float *out, const float *part, int pos0, int nKV, int nHeads, int nKVHeads, int headDim,
                       int window, int lo, int hi, float *scratch);

void k_rmsnorm(float *out, const float *x, const float *w, int n, int dim, float eps, int addOne);
void k_layernorm(float *out, const float *x, const float *add, const float *w, const float *b, int n, int dim,
                 float eps);
void k_softmax(float *x, size_t n);
void k_silu_mul(float *gate, const float *up, size_t n);
void k_gelu_mul(float *gate, const float *up, size_t n);
void k_gelu_erf(float *x, size_t n);
void k_add(float *dst, const float *src, size_t n);
void k_rope(float *x, int n, int nHeads, int headDim, int rotDim, const int32_t *pos, const float *invFreq,
            int neox, float mscale);
// k_rope_table writes k_rope's cos and sin for positions [0, npos), each
// [npos][rotDim/2]; k_rope_apply then rotates as k_rope does, bit for bit,
// for positions below npos.
void k_rope_table(float *cs, float *sn, int npos, int rotDim, const float *invFreq, float mscale);
void k_rope_apply(float *x, int n, int nHeads, int headDim, int rotDim, const int32_t *pos, const float *cs,
                  const float *sn, int neox);

#endif
