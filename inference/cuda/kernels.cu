// Impetus CUDA kernels, compiled at load time by NVRTC (no headers).
// Layout as in package kernels: weights W are [rows][cols] in their stored
// format, activations x are [n][cols] float32 and outputs [n][rows].
// Each kernel mirrors a CPU kernel, which the tests use as the reference.

#define FMT_F32 0
#define FMT_F16 1
#define FMT_BF16 2
#define FMT_Q8_0 3
#define FMT_Q4_0 4
#define FMT_Q4_K 5
#define FMT_Q6_K 6
#define FMT_MLX 7
#define FMT_Q5_0 8

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;
#define IMP_INF __int_as_float(0x7f800000)

__device__ __forceinline__ float h2f(u16 h) {
	float f;
	asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
	return f;
}
__device__ __forceinline__ float bf2f(u16 h) { return __uint_as_float(((u32)h) << 16); }
__device__ __forceinline__ u16 ld16(const u8 *p) { return (u16)p[0] | ((u16)p[1] << 8); }

// load32 expands the 32 weights of row starting at column k0 (a multiple of
// 32) into o; columns past cols read as 0.
template <int FMT>
__device__ __forceinline__ void load32(const void *w, const float *sc, const float *bi, int row, int k0, int cols, int bits, int group, float *o) {
	if (FMT == FMT_F32) {
		const float *p = (const float *)w + (i64)row * cols + k0;
		if (k0 + 32 <= cols && (cols & 3) == 0) {
#pragma unroll
			for (int i = 0; i < 32; i += 4) {
				float4 v = *(const float4 *)(p + i);
				o[i] = v.x; o[i + 1] = v.y; o[i + 2] = v.z; o[i + 3] = v.w;
			}
		} else {
#pragma unroll
			for (int i = 0; i < 32; i++) o[i] = k0 + i < cols ? p[i] : 0.f;
		}
	} else if (FMT == FMT_F16 || FMT == FMT_BF16) {
		const u16 *p = (const u16 *)w + (i64)row * cols + k0;
		if (k0 + 32 <= cols && (cols & 7) == 0) {
#pragma unroll
			for (int i = 0; i < 32; i += 8) {
				uint4 v = *(const uint4 *)(p + i);
				u32 a[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
				for (int j = 0; j < 4; j++) {
					u16 lo = (u16)(a[j] & 0xffff), hi = (u16)(a[j] >> 16);
					o[i + 2 * j] = FMT == FMT_F16 ? h2f(lo) : bf2f(lo);
					o[i + 2 * j + 1] = FMT == FMT_F16 ? h2f(hi) : bf2f(hi);
				}
			}
		} else {
#pragma unroll
			for (int i = 0; i < 32; i++) o[i] = k0 + i < cols ? (FMT == FMT_F16 ? h2f(p[i]) : bf2f(p[i])) : 0.f;
		}
	} else if (FMT == FMT_Q8_0) {
		// Blocks are 34 bytes, so 2-byte aligned: read the codes in pairs.
		const u16 *b = (const u16 *)((const u8 *)w + ((i64)row * (cols / 32) + k0 / 32) * 34);
		float d = h2f(b[0]);
#pragma unroll
		for (int i = 0; i < 16; i++) {
			u16 v = b[1 + i];
			o[2 * i] = d * (float)(signed char)(v & 0xff);
			o[2 * i + 1] = d * (float)(signed char)(v >> 8);
		}
	} else if (FMT == FMT_Q4_0) {
		// Blocks are 18 bytes, so 2-byte aligned: read the codes in pairs.
		const u16 *b = (const u16 *)((const u8 *)w + ((i64)row * (cols / 32) + k0 / 32) * 18);
		float d = h2f(b[0]);
#pragma unroll
		for (int i = 0; i < 8; i++) {
			u16 v = b[1 + i];
			int q0 = v & 0xff, q1 = v >> 8;
			o[2 * i] = (float)((q0 & 15) - 8) * d;
			o[2 * i + 16] = (float)((q0 >> 4) - 8) * d;
			o[2 * i + 1] = (float)((q1 & 15) - 8) * d;
			o[2 * i + 17] = (float)((q1 >> 4) - 8) * d;
		}
	} else if (FMT == FMT_Q5_0) {
		// 22-byte blocks: f16 scale, 32 fifth bits, 16 bytes of nibbles;
		// byte j holds columns j (low) and j+16 (high), bit c of the
		// fifth bits belongs to column c. 2-byte aligned: read in pairs.
		const u16 *b = (const u16 *)((const u8 *)w + ((i64)row * (cols / 32) + k0 / 32) * 22);
		float d = h2f(b[0]);
		u32 qh = (u32)b[1] | ((u32)b[2] << 16);
#pragma unroll
		for (int i = 0; i < 8; i++) {
			u16 v = b[3 + i];
			int q0 = v & 0xff, q1 = v >> 8, j = 2 * i;
			int h0 = (int)(qh >> j), h1 = (int)(qh >> (j + 16)); // signed: the sums below go negative
			o[j] = (float)(((q0 & 15) | ((h0 & 1) << 4)) - 16) * d;
			o[j + 16] = (float)(((q0 >> 4) | ((h1 & 1) << 4)) - 16) * d;
			o[j + 1] = (float)(((q1 & 15) | ((h0 & 2) << 3)) - 16) * d;
			o[j + 17] = (float)(((q1 >> 4) | ((h1 & 2) << 3)) - 16) * d;
		}
	} else if (FMT == FMT_Q4_K) {
		const u8 *b = (const u8 *)w + ((i64)row * (cols / 256) + k0 / 256) * 144;
		float d = h2f(ld16(b)), dmin = h2f(ld16(b + 2));
		const u8 *s = b + 4, *qs = b + 16;
		int j = (k0 & 255) / 32, c = j / 2, hi = j & 1;
		int scv, mv;
		if (j < 4) {
			scv = s[j] & 63; mv = s[j + 4] & 63;
		} else {
			scv = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
			mv = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
		}
		float ds = d * (float)scv, dm = dmin * (float)mv;
#pragma unroll
		for (int l = 0; l < 32; l++) {
			u8 q = qs[32 * c + l];
			o[l] = ds * (float)(hi ? q >> 4 : q & 15) - dm;
		}
	} else if (FMT == FMT_Q6_K) {
		const u8 *b = (const u8 *)w + ((i64)row * (cols / 256) + k0 / 256) * 210;
		float d = h2f(ld16(b + 208));
		int j = (k0 & 255) / 32, h = j / 4, k = j & 3;
		const u8 *ql = b + 64 * h + 32 * (k & 1), *qh = b + 128 + 32 * h;
		const signed char *sc8 = (const signed char *)(b + 192 + 8 * h);
		float s0 = d * (float)sc8[2 * k], s1 = d * (float)sc8[1 + 2 * k];
#pragma unroll
		for (int l = 0; l < 32; l++) {
			int lo = k >= 2 ? ql[l] >> 4 : ql[l] & 15;
			int q = lo | (((qh[l] >> (2 * k)) & 3) << 4);
			o[l] = (l < 16 ? s0 : s1) * (float)(q - 32);
		}
	} else if (FMT == FMT_MLX) {
		int words = cols * bits / 32, groups = cols / group;
		const u32 *rw = (const u32 *)w + (i64)row * words;
		const float *srow = sc + (i64)row * groups, *brow = bi + (i64)row * groups;
		if (bits == 4 || bits == 8) {
			int per = 32 / bits, mask = (1 << bits) - 1;
			const u32 *p = rw + k0 / per;
#pragma unroll
			for (int i = 0; i < 32; i++) {
				u32 v = (p[i / per] >> (bits * (i % per))) & mask;
				int g = (k0 + i) / group;
				o[i] = srow[g] * (float)v + brow[g];
			}
		} else {
			for (int i = 0; i < 32; i++) {
				int jj = k0 + i, pos = jj * bits, wi = pos >> 5, off = pos & 31;
				u32 v = rw[wi] >> off;
				if (off + bits > 32) v |= rw[wi + 1] << (32 - off);
				v &= (1u << bits) - 1;
				int g = jj / group;
				o[i] = srow[g] * (float)v + brow[g];
			}
		}
	}
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

// q8_store is quant_q8 (below) done by a whole warp on the 32 values it
// has just computed, lane l holding value l of the block that starts at
// flat index idx - l (a multiple of 32): the producing kernel quantizes its
// output for an int8 product, saving that product a launch.
__device__ __forceinline__ void q8_store(signed char *xq, float2 *xd, i64 idx, float v) {
	float a = fabsf(v);
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, o));
	bool nan = __any_sync(0xffffffffu, v != v);
	float id = a > 0.f ? 127.f / a : 0.f;
	int q = nan ? 0 : __float2int_rn(v * id);
	xq[idx] = (signed char)q;
	int s = q;
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
	if ((idx & 31) == 0) {
		float d = nan ? __int_as_float(0x7fc00000) : a / 127.f;
		xd[idx >> 5] = make_float2(d, d * (float)s);
	}
}

// gemv_dot adds to acc[t] (t < nt) the dot product of weight row row with
// activation row t0+t, this lane's share: each lane dequantizes 32-column
// chunks; the caller sums over the warp.
#define GEMV_T 4
template <int FMT>
__device__ __forceinline__ void gemv_dot(float *acc, const float *x, int nt, int t0, const void *w, const float *sc, const float *bi, int row, int cols, int bits,
                                         int group, int lane) {
	float wv[32];
	for (int k0 = lane * 32; k0 < cols; k0 += 32 * 32) {
		load32<FMT>(w, sc, bi, row, k0, cols, bits, group, wv);
		int lim = min(32, cols - k0);
#pragma unroll
		for (int t = 0; t < GEMV_T; t++) {
			if (t < nt) {
				const float *xr = x + (i64)(t0 + t) * cols + k0;
				float s = 0.f;
				if (lim == 32 && (cols & 3) == 0) {
#pragma unroll
					for (int i = 0; i < 32; i += 4) {
						float4 v = *(const float4 *)(xr + i);
						s += wv[i] * v.x + wv[i + 1] * v.y + wv[i + 2] * v.z + wv[i + 3] * v.w;
					}
				} else {
					for (int i = 0; i < lim; i++) s += wv[i] * xr[i];
				}
				acc[t] += s;
			}
		}
	}
}

// gemv: one warp per weight row, up to GEMV_T activation rows per block
// (grid.y covers n).
template <int FMT>
__device__ void gemv(float *out, const float *x, int n, const void *w, const float *sc, const float *bi, const float *bias, int rows, int cols, int bits, int group) {
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int row = blockIdx.x * (blockDim.x >> 5) + warp;
	int t0 = blockIdx.y * GEMV_T;
	if (row >= rows) return;
	int nt = min(GEMV_T, n - t0);
	float acc[GEMV_T];
#pragma unroll
	for (int t = 0; t < GEMV_T; t++) acc[t] = 0.f;
	gemv_dot<FMT>(acc, x, nt, t0, w, sc, bi, row, cols, bits, group, lane);
#pragma unroll
	for (int t = 0; t < GEMV_T; t++) {
		float s = warp_sum(acc[t]);
		if (lane == 0 && t < nt) out[(i64)(t0 + t) * rows + row] = s + (bias ? bias[row] : 0.f);
	}
}

// The modes of gemvx.
#define GX_STORE 0 // out_s = x W_s^T + bias_s for each segment s
#define GX_ADD 1   // out_s += x W_s^T + bias_s (a residual add)
#define GX_SILU 2  // out_0 = silu(x W_0^T + b_0) * (x W_1^T + b_1)
#define GX_GELU 3  // out_0 = gelu_tanh(x W_0^T + b_0) * (x W_1^T + b_1)

// gemvx is gemv over up to three weight matrices of one format and width
// that read the same activations (segments), in one launch: the Q, K and V
// projections, or gate and up with the activation applied, or a projection
// added into the residual stream. In the GLU modes warp r makes row r of
// both segments 0 and 1.
template <int FMT>
__device__ void gemvx(const float *x, int n, int cols, int bits, int group, int mode, float *o0, const void *w0, const float *s0, const float *b0,
                      const float *bias0, int rows0, float *o1, const void *w1, const float *s1, const float *b1, const float *bias1, int rows1, float *o2,
                      const void *w2, const float *s2, const float *b2, const float *bias2, int rows2) {
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int r = blockIdx.x * (blockDim.x >> 5) + warp;
	int t0 = blockIdx.y * GEMV_T;
	int nt = min(GEMV_T, n - t0);
	float acc[GEMV_T];
#pragma unroll
	for (int t = 0; t < GEMV_T; t++) acc[t] = 0.f;
	if (mode == GX_SILU || mode == GX_GELU) {
		if (r >= rows0) return;
		float up[GEMV_T];
#pragma unroll
		for (int t = 0; t < GEMV_T; t++) up[t] = 0.f;
		gemv_dot<FMT>(acc, x, nt, t0, w0, s0, b0, r, cols, bits, group, lane);
		gemv_dot<FMT>(up, x, nt, t0, w1, s1, b1, r, cols, bits, group, lane);
#pragma unroll
		for (int t = 0; t < GEMV_T; t++) {
			float g = warp_sum(acc[t]), u = warp_sum(up[t]);
			if (lane == 0 && t < nt) {
				g += bias0 ? bias0[r] : 0.f;
				u += bias1 ? bias1[r] : 0.f;
				float a = mode == GX_SILU ? g / (1.f + expf(-g)) : 0.5f * g * (1.f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g)));
				o0[(i64)(t0 + t) * rows0 + r] = a * u;
			}
		}
		return;
	}
	float *o = o0;
	const void *w = w0;
	const float *sc = s0, *bi = b0, *bias = bias0;
	int rows = rows0, row = r;
	if (row >= rows0) {
		row -= rows0;
		o = o1, w = w1, sc = s1, bi = b1, bias = bias1, rows = rows1;
		if (row >= rows1) {
			row -= rows1;
			o = o2, w = w2, sc = s2, bi = b2, bias = bias2, rows = rows2;
			if (row >= rows2) return;
		}
	}
	gemv_dot<FMT>(acc, x, nt, t0, w, sc, bi, row, cols, bits, group, lane);
#pragma unroll
	for (int t = 0; t < GEMV_T; t++) {
		float s = warp_sum(acc[t]);
		if (lane == 0 && t < nt) {
			float *dst = o + (i64)(t0 + t) * rows + row;
			s += bias ? bias[row] : 0.f;
			*dst = mode == GX_ADD ? *dst + s : s;
		}
	}
}

// gemm: 64 weight rows x 64 activation rows per block of 256 threads, 32
// columns at a time through shared memory; each thread makes 4x4 outputs.
template <int FMT>
__device__ void gemm(float *out, const float *x, int n, const void *w, const float *sc, const float *bi, const float *bias, int rows, int cols, int bits, int group) {
	__shared__ float Ws[32][65];
	__shared__ float Xs[32][65];
	int r0 = blockIdx.x * 64, t0 = blockIdx.y * 64;
	int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
	float acc[4][4];
#pragma unroll
	for (int u = 0; u < 4; u++)
#pragma unroll
		for (int v = 0; v < 4; v++) acc[u][v] = 0.f;
	for (int k0 = 0; k0 < cols; k0 += 32) {
		if (tid < 64) {
			float wv[32];
			int r = r0 + tid;
			if (r < rows) {
				load32<FMT>(w, sc, bi, r, k0, cols, bits, group, wv);
			} else {
#pragma unroll
				for (int i = 0; i < 32; i++) wv[i] = 0.f;
			}
#pragma unroll
			for (int i = 0; i < 32; i++) Ws[i][tid] = wv[i];
		}
		for (int e = tid; e < 64 * 32; e += 256) {
			int t = e >> 5, i = e & 31, tt = t0 + t;
			Xs[i][t] = (tt < n && k0 + i < cols) ? x[(i64)tt * cols + k0 + i] : 0.f;
		}
		__syncthreads();
#pragma unroll 8
		for (int i = 0; i < 32; i++) {
			float a[4], b[4];
#pragma unroll
			for (int u = 0; u < 4; u++) a[u] = Ws[i][tx + 16 * u];
#pragma unroll
			for (int v = 0; v < 4; v++) b[v] = Xs[i][ty + 16 * v];
#pragma unroll
			for (int u = 0; u < 4; u++)
#pragma unroll
				for (int v = 0; v < 4; v++) acc[u][v] += a[u] * b[v];
		}
		__syncthreads();
	}
#pragma unroll
	for (int u = 0; u < 4; u++) {
		int r = r0 + tx + 16 * u;
		if (r >= rows) continue;
		float bv = bias ? bias[r] : 0.f;
#pragma unroll
		for (int v = 0; v < 4; v++) {
			int t = t0 + ty + 16 * v;
			if (t < n) out[(i64)t * rows + r] = acc[u][v] + bv;
		}
	}
}

// embed writes row tokens[t] of the weight, times scale when scale != 0.
template <int FMT>
__device__ void embed(float *out, const int *tokens, int n, const void *w, const float *sc, const float *bi, int cols, int bits, int group, float scale) {
	int t = blockIdx.x;
	if (t >= n) return;
	int row = tokens[t];
	float wv[32];
	for (int k0 = threadIdx.x * 32; k0 < cols; k0 += blockDim.x * 32) {
		load32<FMT>(w, sc, bi, row, k0, cols, bits, group, wv);
		for (int i = 0; i < 32 && k0 + i < cols; i++) out[(i64)t * cols + k0 + i] = scale != 0.f ? wv[i] * scale : wv[i];
	}
}

#define MATRIX_KERNELS(name, FMT)                                                                                                                      \
	extern "C" __global__ void __launch_bounds__(128) gemv_##name(float *out, const float *x, int n, const void *w, const float *sc, const float *bi, \
	                                                                const float *bias, int rows, int cols, int bits, int group) {                    \
		gemv<FMT>(out, x, n, w, sc, bi, bias, rows, cols, bits, group);                                                                            \
	}                                                                                                                                              \
	extern "C" __global__ void __launch_bounds__(256) gemm_##name(float *out, const float *x, int n, const void *w, const float *sc, const float *bi, \
	                                                                const float *bias, int rows, int cols, int bits, int group) {                    \
		gemm<FMT>(out, x, n, w, sc, bi, bias, rows, cols, bits, group);                                                                            \
	}                                                                                                                                              \
	extern "C" __global__ void __launch_bounds__(128)                                                                                               \
	    gemvx_##name(const float *x, int n, int cols, int bits, int group, int mode, float *o0, const void *w0, const float *s0, const float *b0,         \
	                 const float *bias0, int rows0, float *o1, const void *w1, const float *s1, const float *b1, const float *bias1, int rows1,          \
	                 float *o2, const void *w2, const float *s2, const float *b2, const float *bias2, int rows2) {                                      \
		gemvx<FMT>(x, n, cols, bits, group, mode, o0, w0, s0, b0, bias0, rows0, o1, w1, s1, b1, bias1, rows1, o2, w2, s2, b2, bias2, rows2);        \
	}                                                                                                                                              \
	extern "C" __global__ void embed_##name(float *out, const int *tokens, int n, const void *w, const float *sc, const float *bi, int cols,       \
	                                        int bits, int group, float scale) {                                                                    \
		embed<FMT>(out, tokens, n, w, sc, bi, cols, bits, group, scale);                                                                           \
	}

MATRIX_KERNELS(f32, FMT_F32)
MATRIX_KERNELS(f16, FMT_F16)
MATRIX_KERNELS(bf16, FMT_BF16)
MATRIX_KERNELS(q8_0, FMT_Q8_0)
MATRIX_KERNELS(q4_0, FMT_Q4_0)
MATRIX_KERNELS(q4_k, FMT_Q4_K)
MATRIX_KERNELS(q6_k, FMT_Q6_K)
MATRIX_KERNELS(mlx, FMT_MLX)
MATRIX_KERNELS(q5_0, FMT_Q5_0)

// rmsnorm: one block per row; out may be x. With xq set (dim a multiple
// of 32, blocks of a multiple of 32 threads) it also writes the output
// quantized as quant_q8 does: each warp's 32 values of a step are one block.
extern "C" __global__ void rmsnorm(float *out, const float *x, const float *weight, int n, int dim, float eps, int addOne, signed char *xq,
                                   float2 *xd) {
	__shared__ float part[32];
	int r = blockIdx.x;
	if (r >= n) return;
	const float *xr = x + (i64)r * dim;
	float ss = 0.f;
	for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
	ss = warp_sum(ss);
	if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
	__syncthreads();
	if (threadIdx.x < 32) {
		float v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.f;
		v = warp_sum(v);
		if (threadIdx.x == 0) part[0] = v;
	}
	__syncthreads();
	float inv = rsqrtf(part[0] / (float)dim + eps);
	float *orow = out + (i64)r * dim;
	for (int i = threadIdx.x; i < dim; i += blockDim.x) {
		float w = weight[i] + (addOne ? 1.f : 0.f);
		float v = xr[i] * inv * w;
		orow[i] = v;
		if (xq) q8_store(xq, xd, (i64)r * dim + i, v);
	}
}

// rope rotates the first rotDim dimensions of each head of each row; the
// angle is formed in float32 and rotated in double, as RoPERef does.
extern "C" __global__ void rope(float *x, int n, int heads, int headDim, int rotDim, const int *pos, const float *invFreq, int neox, float mscale) {
	int half = rotDim / 2;
	i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	i64 total = (i64)n * heads * half;
	if (idx >= total) return;
	int i = idx % half;
	i64 th = idx / half;
	int h = th % heads, t = th / heads;
	float ang = (float)pos[t] * invFreq[i];
	double s, c;
	sincos((double)ang, &s, &c);
	c *= mscale;
	s *= mscale;
	float *base = x + ((i64)t * heads + h) * headDim;
	int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
	double a = base[i0], b = base[i1];
	base[i0] = (float)(a * c - b * s);
	base[i1] = (float)(a * s + b * c);
}

// rope_qk is rope on the query rows q ([n][heads*headDim]) and the key
// rows k ([n][kvHeads*headDim]) in one launch.
extern "C" __global__ void rope_qk(float *q, float *k, int n, int heads, int kvHeads, int headDim, int rotDim, const int *pos, const float *invFreq, int neox,
                                   float mscale) {
	int half = rotDim / 2, all = heads + kvHeads;
	i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	if (idx >= (i64)n * all * half) return;
	int i = idx % half;
	i64 th = idx / half;
	int h = th % all, t = th / all;
	float ang = (float)pos[t] * invFreq[i];
	double s, c;
	sincos((double)ang, &s, &c);
	c *= mscale;
	s *= mscale;
	float *base = h < heads ? q + ((i64)t * heads + h) * headDim : k + ((i64)t * kvHeads + (h - heads)) * headDim;
	int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
	double a = base[i0], b = base[i1];
	base[i0] = (float)(a * c - b * s);
	base[i1] = (float)(a * s + b * c);
}

extern "C" __global__ void silu_mul(float *gate, const float *up, i64 n) {
	i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) {
		float v = gate[i];
		gate[i] = v / (1.f + expf(-v)) * up[i];
	}
}

extern "C" __global__ void gelu_mul(float *gate, const float *up, i64 n) {
	i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) {
		float v = gate[i];
		gate[i] = 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v))) * up[i];
	}
}

extern "C" __global__ void add(float *dst, const float *src, i64 n) {
	i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) dst[i] += src[i];
}

extern "C" __global__ void softcap(float *x, i64 n, float c) {
	i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) x[i] = (float)(tanh((double)(x[i] / c)) * c);
}

// copy_cols copies cols columns from offset srcOff of each of rows rows.
extern "C" __global__ void copy_cols(float *dst, int dstStride, const float *src, int srcStride, int srcOff, int rows, int cols) {
	i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (i64)rows * cols) return;
	int r = i / cols, c = i % cols;
	dst[(i64)r * dstStride + c] = src[(i64)r * srcStride + srcOff + c];
}

// attn_range is one block's online softmax for query row t of head h over
// keys [a, b): each of the ATT_W warps takes every ATT_W-th key, then the
// warps are merged. On return sacc[w] holds warp w's weighted values, f[w]
// its factor against the block's maximum *M, and *L the block's sum.
#define ATT_W 4
__device__ __forceinline__ void attn_range(float (*sacc)[256], float *sm, float *sl, float *f, float *M, float *L, const float *q, int t, int h, int a, int b,
                                           const float *kc, const float *vc, int nHeads, int nKVHeads, int hd, float scale, float softcap) {
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int qs = nHeads * hd, kvs = nKVHeads * hd, kvOff = (h / (nHeads / nKVHeads)) * hd;
	const float *qv = q + (i64)t * qs + h * hd;
	float qr[8], acc[8];
#pragma unroll
	for (int j = 0; j < 8; j++) {
		int d = lane + 32 * j;
		qr[j] = d < hd ? qv[d] : 0.f;
		acc[j] = 0.f;
	}
	float m = -IMP_INF, l = 0.f;
	for (int p = a + warp; p < b; p += ATT_W) {
		const float *kr = kc + (i64)p * kvs + kvOff;
		float s = 0.f;
#pragma unroll
		for (int j = 0; j < 8; j++) {
			int d = lane + 32 * j;
			if (d < hd) s += qr[j] * kr[d];
		}
		s = warp_sum(s) * scale;
		if (softcap > 0.f) s = tanhf(s / softcap) * softcap;
		float mn = fmaxf(m, s);
		float corr = m == -IMP_INF ? 0.f : expf(m - mn);
		float e = expf(s - mn);
		l = l * corr + e;
		const float *vr = vc + (i64)p * kvs + kvOff;
#pragma unroll
		for (int j = 0; j < 8; j++) {
			int d = lane + 32 * j;
			acc[j] = acc[j] * corr + (d < hd ? e * vr[d] : 0.f);
		}
		m = mn;
	}
	if (lane == 0) {
		sm[warp] = m;
		sl[warp] = l;
	}
#pragma unroll
	for (int j = 0; j < 8; j++) {
		int d = lane + 32 * j;
		if (d < 256) sacc[warp][d] = acc[j];
	}
	__syncthreads();
	float mx = -IMP_INF;
	for (int w = 0; w < ATT_W; w++) mx = fmaxf(mx, sm[w]);
	float sum = 0.f;
	for (int w = 0; w < ATT_W; w++) {
		f[w] = sm[w] == -IMP_INF ? 0.f : expf(sm[w] - mx);
		sum += sl[w] * f[w];
	}
	*M = mx;
	*L = sum;
}

// attention: one block per (head, query row) over all its keys. With xq
// set (hd a multiple of 32) the output is also quantized (q8_store).
extern "C" __global__ void __launch_bounds__(128) attention(float *out, const float *q, int nq, int pos0, const float *kc, const float *vc, int nKV,
                                                            int nHeads, int nKVHeads, int hd, float scale, float softcap, int window,
                                                            signed char *xq, float2 *xd) {
	__shared__ float sm[ATT_W], sl[ATT_W];
	__shared__ float sacc[ATT_W][256];
	int h = blockIdx.x, t = blockIdx.y;
	int pos = pos0 + t;
	int hi = min(pos + 1, nKV), lo = window > 0 ? max(0, pos - window + 1) : 0;
	float f[ATT_W], M, L;
	attn_range(sacc, sm, sl, f, &M, &L, q, t, h, lo, hi, kc, vc, nHeads, nKVHeads, hd, scale, softcap);
	i64 o0 = (i64)t * nHeads * hd + h * hd;
	for (int d = threadIdx.x; d < hd; d += blockDim.x) {
		float s = 0.f;
		for (int w = 0; w < ATT_W; w++) s += sacc[w][d] * f[w];
		out[o0 + d] = s / L;
		if (xq) q8_store(xq, xd, o0 + d, s / L);
	}
}

// attention_part is split-K attention for few query rows (decode): block
// (h, t, s) takes the s-th of splits equal runs of row t's keys and writes
// its maximum, sum and unnormalized values, hd+2 floats, to part;
// attention_merge combines the runs.
extern "C" __global__ void __launch_bounds__(128) attention_part(float *part, const float *q, int nq, int pos0, const float *kc, const float *vc, int nKV,
                                                                 int nHeads, int nKVHeads, int hd, float scale, float softcap, int window, int splits) {
	__shared__ float sm[ATT_W], sl[ATT_W];
	__shared__ float sacc[ATT_W][256];
	int h = blockIdx.x, t = blockIdx.y, sp = blockIdx.z;
	int pos = pos0 + t;
	int hi = min(pos + 1, nKV), lo = window > 0 ? max(0, pos - window + 1) : 0;
	int run = (hi - lo + splits - 1) / splits;
	int a = min(hi, lo + sp * run), b = min(hi, a + run);
	float f[ATT_W], M, L;
	attn_range(sacc, sm, sl, f, &M, &L, q, t, h, a, b, kc, vc, nHeads, nKVHeads, hd, scale, softcap);
	float *o = part + (((i64)t * nHeads + h) * splits + sp) * (hd + 2);
	if (threadIdx.x == 0) {
		o[0] = M;
		o[1] = L;
	}
	for (int d = threadIdx.x; d < hd; d += blockDim.x) {
		float s = 0.f;
		for (int w = 0; w < ATT_W; w++) s += sacc[w][d] * f[w];
		o[2 + d] = s;
	}
}

extern "C" __global__ void attention_merge(float *out, const float *part, int nq, int nHeads, int hd, int splits, signed char *xq, float2 *xd) {
	int h = blockIdx.x, t = blockIdx.y;
	const float *pp = part + ((i64)t * nHeads + h) * splits * (hd + 2);
	float M = -IMP_INF;
	for (int s = 0; s < splits; s++) M = fmaxf(M, pp[(i64)s * (hd + 2)]);
	float L = 0.f;
	for (int s = 0; s < splits; s++) {
		float m = pp[(i64)s * (hd + 2)];
		if (m != -IMP_INF) L += pp[(i64)s * (hd + 2) + 1] * expf(m - M);
	}
	i64 o0 = (i64)t * nHeads * hd + h * hd;
	for (int d = threadIdx.x; d < hd; d += blockDim.x) {
		float acc = 0.f;
		for (int s = 0; s < splits; s++) {
			float m = pp[(i64)s * (hd + 2)];
			if (m != -IMP_INF) acc += pp[(i64)s * (hd + 2) + 2 + d] * expf(m - M);
		}
		out[o0 + d] = acc / L;
		if (xq) q8_store(xq, xd, o0 + d, acc / L);
	}
}

// Int8-activation matrix-vector products for Q4_0 and Q8_0 weights (decode),
// as the CPU's int8 path computes them: quant_q8 quantizes each activation
// row per 32-column block (d = max|x|/127, codes x*127/max rounded to
// nearest even, a NaN in the block makes d NaN), then each weight block is
// dotted with the codes in integers (__dp4a) and scaled once.

// quant_q8 writes the int8 codes xq and, per block, xd = (d, d * sum of
// the codes); one warp per block of 32 values, nblocks blocks in all.
extern "C" __global__ void quant_q8(signed char *xq, float2 *xd, const float *x, int nblocks) {
	int blk = (int)(((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
	if (blk >= nblocks) return;
	float v = x[(i64)blk * 32 + lane];
	float a = fabsf(v);
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, o));
	bool nan = __any_sync(0xffffffffu, v != v);
	float id = a > 0.f ? 127.f / a : 0.f;
	int q = nan ? 0 : __float2int_rn(v * id);
	xq[(i64)blk * 32 + lane] = (signed char)q;
	int s = q;
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
	if (lane == 0) {
		float d = nan ? __int_as_float(0x7fc00000) : a / 127.f;
		xd[blk] = make_float2(d, d * (float)s);
	}
}

// dot_i8 adds to acc[t] (t < nt) this lane's share of the dot product of
// weight row wrow with quantized activation row t0+t: lane pairs take one
// 32-column block each (each lane half of its codes), 16 blocks a step,
// so a warp's loads of both the weights and the codes are contiguous.
template <int FMT>
__device__ __forceinline__ void dot_i8(float *acc, const signed char *xq, const float2 *xd, int nt, int t0, int cols, const u8 *wrow, int lane) {
	int nb = cols >> 5, h = lane & 1;
#pragma unroll 4
	for (int b = lane >> 1; b < nb; b += 16) {
		if (FMT == FMT_Q4_0) {
			// 18-byte blocks: f16 scale, 16 bytes of nibbles; byte j holds
			// column j (low) and j+16 (high). Lane half h takes bytes 8h..8h+7.
			const u16 *p = (const u16 *)(wrow + (i64)b * 18);
			float dw = h2f(p[0]);
			const u16 *c = p + 1 + 4 * h;
			u32 v0 = (u32)c[0] | ((u32)c[1] << 16), v1 = (u32)c[2] | ((u32)c[3] << 16);
			int lo0 = (int)(v0 & 0x0F0F0F0Fu), lo1 = (int)(v1 & 0x0F0F0F0Fu);
			int hi0 = (int)((v0 >> 4) & 0x0F0F0F0Fu), hi1 = (int)((v1 >> 4) & 0x0F0F0F0Fu);
#pragma unroll
			for (int t = 0; t < GEMV_T; t++) {
				if (t < nt) {
					const int *xi = (const int *)(xq + (i64)(t0 + t) * cols + (i64)b * 32);
					int2 a = *(const int2 *)(xi + 2 * h), e = *(const int2 *)(xi + 4 + 2 * h);
					int s = __dp4a(lo0, a.x, 0);
					s = __dp4a(lo1, a.y, s);
					s = __dp4a(hi0, e.x, s);
					s = __dp4a(hi1, e.y, s);
					float2 d = xd[(i64)(t0 + t) * nb + b];
					// The codes are stored plus 8: the lane of half 0 takes
					// the block's whole correction.
					acc[t] += dw * (d.x * (float)s - (h == 0 ? 8.f * d.y : 0.f));
				}
			}
		} else {
			// Q8_0: 34-byte blocks, f16 scale then 32 int8 codes; lane half
			// h takes columns 16h..16h+15.
			const u16 *p = (const u16 *)(wrow + (i64)b * 34);
			float dw = h2f(p[0]);
			const u16 *c = p + 1 + 8 * h;
			int v[4];
#pragma unroll
			for (int i = 0; i < 4; i++) v[i] = (int)((u32)c[2 * i] | ((u32)c[2 * i + 1] << 16));
#pragma unroll
			for (int t = 0; t < GEMV_T; t++) {
				if (t < nt) {
					const int *xi = (const int *)(xq + (i64)(t0 + t) * cols + (i64)b * 32);
					int4 a = *(const int4 *)(xi + 4 * h);
					int s = __dp4a(v[0], a.x, 0);
					s = __dp4a(v[1], a.y, s);
					s = __dp4a(v[2], a.z, s);
					s = __dp4a(v[3], a.w, s);
					acc[t] += dw * xd[(i64)(t0 + t) * nb + b].x * (float)s;
				}
			}
		}
	}
}

// gemvx_i8 is gemvx (same modes and segments) on quantized activations.
template <int FMT>
__device__ void gemvx_i8(const signed char *xq, const float2 *xd, int n, int cols, int mode, float *o0, const u8 *w0, const float *bias0, int rows0,
                         float *o1, const u8 *w1, const float *bias1, int rows1, float *o2, const u8 *w2, const float *bias2, int rows2) {
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int r = blockIdx.x * (blockDim.x >> 5) + warp;
	int t0 = blockIdx.y * GEMV_T;
	int nt = min(GEMV_T, n - t0);
	i64 rb = (i64)(cols >> 5) * (FMT == FMT_Q4_0 ? 18 : 34);
	float acc[GEMV_T];
#pragma unroll
	for (int t = 0; t < GEMV_T; t++) acc[t] = 0.f;
	if (mode == GX_SILU || mode == GX_GELU) {
		if (r >= rows0) return;
		float up[GEMV_T];
#pragma unroll
		for (int t = 0; t < GEMV_T; t++) up[t] = 0.f;
		dot_i8<FMT>(acc, xq, xd, nt, t0, cols, w0 + r * rb, lane);
		dot_i8<FMT>(up, xq, xd, nt, t0, cols, w1 + r * rb, lane);
#pragma unroll
		for (int t = 0; t < GEMV_T; t++) {
			float g = warp_sum(acc[t]), u = warp_sum(up[t]);
			if (lane == 0 && t < nt) {
				g += bias0 ? bias0[r] : 0.f;
				u += bias1 ? bias1[r] : 0.f;
				float a = mode == GX_SILU ? g / (1.f + expf(-g)) : 0.5f * g * (1.f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g)));
				o0[(i64)(t0 + t) * rows0 + r] = a * u;
			}
		}
		return;
	}
	float *o = o0;
	const u8 *w = w0;
	const float *bias = bias0;
	int rows = rows0, row = r;
	if (row >= rows0) {
		row -= rows0;
		o = o1, w = w1, bias = bias1, rows = rows1;
		if (row >= rows1) {
			row -= rows1;
			o = o2, w = w2, bias = bias2, rows = rows2;
			if (row >= rows2) return;
		}
	}
	dot_i8<FMT>(acc, xq, xd, nt, t0, cols, w + row * rb, lane);
#pragma unroll
	for (int t = 0; t < GEMV_T; t++) {
		float s = warp_sum(acc[t]);
		if (lane == 0 && t < nt) {
			float *dst = o + (i64)(t0 + t) * rows + row;
			s += bias ? bias[row] : 0.f;
			*dst = mode == GX_ADD ? *dst + s : s;
		}
	}
}

#define I8_KERNELS(name, FMT)                                                                                                                           \
	extern "C" __global__ void __launch_bounds__(128)                                                                                                   \
	    gemvx_i8_##name(const signed char *xq, const float2 *xd, int n, int cols, int mode, float *o0, const u8 *w0, const float *bias0, int rows0,     \
	                    float *o1, const u8 *w1, const float *bias1, int rows1, float *o2, const u8 *w2, const float *bias2, int rows2) {               \
		gemvx_i8<FMT>(xq, xd, n, cols, mode, o0, w0, bias0, rows0, o1, w1, bias1, rows1, o2, w2, bias2, rows2);                                       \
	}

I8_KERNELS(q8_0, FMT_Q8_0)
I8_KERNELS(q4_0, FMT_Q4_0)
