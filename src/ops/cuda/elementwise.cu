/* elementwise.cu — the fused elementwise and row-wise slots of the CUDA table:
 * embedding, RMSNorm, residual add, SwiGLU, the mLSTM gates and output norm,
 * soft-capped cross-entropy, AdamW, the squared norm and scaling. Each slot
 * computes what its CPU slot (src/ops/cpu/ops_cpu.c) computes, over device
 * memory, in fp32, with the same formulas written in the same order (CUDA's
 * accurate expf/tanhf/log1pf instead of fastmath.h; no --use_fast_math). One
 * exception: training's cross-entropy over bf16 logits (xent_train_kernel
 * FAST: hardware-approximate exponentials and a fixed offset, within ~1e-5 of
 * the capped logits; opt-in with SWAX_XENT_FAST=1 until a GPU run has timed it).
 *
 * Kernels and launch shapes (W = 4: float4 loads and stores, used only when
 * the row length / stride is a multiple of 4 and every pointer involved is
 * 16-byte aligned, checked at run time; W = 1 otherwise):
 *   add, scale, adamw    flat, grid-stride over n/W groups (+ a scalar tail);
 *                        256 threads, at most 16 blocks per SM.
 *   embed_fwd            one block per row, threads over D/W columns.
 *   embed_bwd            grid (token segment, column tile): each thread owns
 *                        W columns of one token and adds the rows holding that
 *                        token in row order (see Determinism).
 *   rmsnorm_fwd          one block per row: block sum of x², then out.
 *   rmsnorm_bwd          one block per 64-row block (ROWBLK): per row a block
 *                        sum of g·w·x, dinp += ...; the block's dw partial over
 *                        its rows lives in shared memory (D floats) and is
 *                        written to partial[block]; colsum_add then adds the
 *                        partials into dw in block order (thread per column).
 *   swiglu_fwd/bwd       2-D grid: y over rows (stride loop), x over F/W groups.
 *   mlstm_gates_fwd      flat over N·NH.
 *   mlstm_gates_bwd      grid (64-row block, column tile of 64 threads): a
 *                        thread per gate column walks its 64 rows in order,
 *                        writes dpre and its partial; colsum_add into dbias.
 *   mlstm_out_fwd        one warp per (row, head): warp sums for mean, var.
 *   mlstm_out_bwd        one warp per (64-row block, head), up to 4 warps per
 *                        block: per row two warp sums; dw partial per warp in
 *                        shared memory (dv floats), written to partial[block];
 *                        colsum_add into dw.
 *   xent_fwd             one block per row (up to 1024 threads): caps in
 *                        place, pads with -inf, online max/sum per thread,
 *                        one block combine; thread 0 writes lse and loss.
 *   xent_bwd             one block per row, no reductions, no barriers.
 *   sumsq                sumsq_partial: one block per fixed chunk of 2^16
 *                        values (double sums), sumsq_final: one block sums the
 *                        partials; the host waits for the stream and copies
 *                        the double back (the slot returns a host value).
 *
 * Determinism (hard requirement): no atomics. Every reduction has an order
 * fixed by the sizes (and the alignment mode, which is a function of the
 * buffer addresses, fixed for a given model layout):
 *   - row sums: per-thread strided sums, then swax_warp_sum / swax_block_sum
 *     (fixed butterfly and warp order); the (max, sum) pairs of xent_fwd are
 *     combined with unfused products, so the combine is exactly commutative;
 *   - column sums (dw of rmsnorm_bwd and mlstm_out_bwd, dbias of gates_bwd):
 *     per 64-row block a sum in row order starting from 0, then the blocks
 *     in block order added onto the old value — the CPU's order;
 *   - embed_bwd: the token ids are copied to the host (a synchronous copy:
 *     KNOWN SYNC, to remove later, e.g. with a device radix sort), stably
 *     counting-sorted there, and the permutation and per-token segments are
 *     uploaded (scratch SWAX_SCRATCH_EMBED); each dwte element is then
 *     dwte + dout[r1] + dout[r2] + ... in row order — the CPU's order;
 *   - sumsq: chunks of 2^16 values (the CPU's block size), each thread owns
 *     fixed groups of 4 values (the same with or without vector loads).
 *
 * Kernels are templated on the activation element type T (only float is
 * instantiated; a bf16 mode would add ldv/stv/ldf/stf overloads). Parameters,
 * parameter gradients and per-row statistics stay fp32. */
#include <cuda_bf16.h>
#include <type_traits>
#include <stdint.h>
#include <string.h>

#include <vector>

#include "ops/cuda/cuda_common.cuh"

namespace {

constexpr int ROWBLK = 64;          /* rows per column-sum partial (as the CPU) */
constexpr int FLAT_THREADS = 256;   /* flat grid-stride kernels */
constexpr int SUMSQ_CHUNK = 1 << 16;
constexpr int SUMSQ_THREADS = 256;
constexpr int OUTB_WARPS = 4;       /* warps (heads) per block in mlstm_out_bwd */
constexpr size_t SMEM_DEFAULT = 48 * 1024;
constexpr size_t SMEM_MAX = 200 * 1024; /* below the 227 KiB opt-in limit of sm_90 */

/* ---------------------------------------------------------------- helpers */

__device__ __forceinline__ float ldf(const float *p) { return *p; }
__device__ __forceinline__ float ldf(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void stf(float *p, float v) { *p = v; }

/* W consecutive values; W = 4 needs p 16-byte aligned. */
__device__ __forceinline__ void ldv(const float *p, float (&a)[1]) { a[0] = *p; }
__device__ __forceinline__ void ldv(const float *p, float (&a)[4]) {
    const float4 v = *reinterpret_cast<const float4 *>(p);
    a[0] = v.x, a[1] = v.y, a[2] = v.z, a[3] = v.w;
}
/* bf16 storage (ops.h alloc_act): W = 4 needs p 8-byte aligned */
__device__ __forceinline__ void ldv(const __nv_bfloat16 *p, float (&a)[1]) { a[0] = __bfloat162float(*p); }
__device__ __forceinline__ void ldv(const __nv_bfloat16 *p, float (&a)[4]) {
    const uint2 u = *reinterpret_cast<const uint2 *>(p);
    const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&u.x));
    const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&u.y));
    a[0] = lo.x, a[1] = lo.y, a[2] = hi.x, a[3] = hi.y;
}
__device__ __forceinline__ void stv(float *p, const float (&a)[1]) { *p = a[0]; }
__device__ __forceinline__ void stv(float *p, const float (&a)[4]) {
    *reinterpret_cast<float4 *>(p) = make_float4(a[0], a[1], a[2], a[3]);
}
/* The same with a run-time alignment flag (for strided operands). */
template <int W, typename T>
__device__ __forceinline__ void ldv_al(const T *p, float (&a)[W], bool al) {
    if (W == 1 || al) {
        ldv(p, a);
    } else {
#pragma unroll
        for (int k = 0; k < W; k++) a[k] = ldf(p + k);
    }
}
template <int W, typename T>
__device__ __forceinline__ void stv_al(T *p, const float (&a)[W], bool al) {
    if (W == 1 || al) {
        stv(p, a);
    } else {
#pragma unroll
        for (int k = 0; k < W; k++) stf(p + k, a[k]);
    }
}

/* W bf16 values from W floats, rounded to nearest even (W = 4: one 8-byte store). */
__device__ __forceinline__ void stv_bf16(__nv_bfloat16 *p, const float (&a)[1]) { *p = __float2bfloat16_rn(a[0]); }
__device__ __forceinline__ void stv_bf16(__nv_bfloat16 *p, const float (&a)[4]) {
    const __nv_bfloat162 lo = __floats2bfloat162_rn(a[0], a[1]), hi = __floats2bfloat162_rn(a[2], a[3]);
    uint2 u;
    memcpy(&u.x, &lo, 4);
    memcpy(&u.y, &hi, 4);
    *reinterpret_cast<uint2 *>(p) = u;
}
/* W values stored back in the type they were loaded from (exact: each float came from a T) */
template <int W>
__device__ __forceinline__ void stv_as(float *p, const float (&a)[W]) {
    stv(p, a);
}
template <int W>
__device__ __forceinline__ void stv_as(__nv_bfloat16 *p, const float (&a)[W]) {
    stv_bf16(p, a);
}

__device__ __forceinline__ float logsigmoid_acc(float x) {
    return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x));
}

/* Sum of doubles over the block (blockDim.x a multiple of 32); shared holds
 * 32 doubles; every thread gets the result; fixed order. */
__device__ __forceinline__ double block_sum_d(double v, double *shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = swax_warp_sum_d(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < nw ? shared[lane] : 0.0;
    return swax_warp_sum_d(v);
}

/* (m, s) with s = Σ exp(z - m) over what a thread saw; (-inf, 0) is empty.
 * Unfused products (__fmul_rn) keep the combine exactly commutative, so the
 * xor butterfly leaves the same bits in every lane. */
__device__ __forceinline__ void ms_combine(float &m, float &s, float m2, float s2) {
    const float M = fmaxf(m, m2);
    if (M == -INFINITY) {
        m = M, s = 0.0f;
        return;
    }
    s = __fadd_rn(__fmul_rn(s, expf(m - M)), __fmul_rn(s2, expf(m2 - M)));
    m = M;
}
__device__ __forceinline__ void ms_warp(float &m, float &s) {
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
        ms_combine(m, s, m2, s2);
    }
}
/* Block-wide (m, s); shm and shs hold 32 floats each; every thread gets it. */
__device__ __forceinline__ void ms_block(float &m, float &s, float *shm, float *shs) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    ms_warp(m, s);
    __syncthreads();
    if (lane == 0) shm[warp] = m, shs[warp] = s;
    __syncthreads();
    m = lane < nw ? shm[lane] : -INFINITY;
    s = lane < nw ? shs[lane] : 0.0f;
    ms_warp(m, s);
}

/* ---------------------------------------------------------------- flat ops */

template <int W, typename T>
__global__ void __launch_bounds__(FLAT_THREADS) add_kernel(T *y, const T *x, size_t n) {
    swax_pdl_trigger(); /* a decode product launched with PDL may start (gemv.cu) */
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    const size_t ng = n / W;
    for (size_t k = tid; k < ng; k += stride) {
        float a[W], b[W];
        ldv(y + k * W, a);
        ldv(x + k * W, b);
#pragma unroll
        for (int j = 0; j < W; j++) a[j] += b[j];
        stv(y + k * W, a);
    }
    if (W > 1)
        for (size_t i = ng * W + tid; i < n; i += stride) stf(y + i, ldf(y + i) + ldf(x + i));
}

template <int W, typename T>
__global__ void __launch_bounds__(FLAT_THREADS) scale_kernel(T *x, size_t n, float s) {
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    const size_t ng = n / W;
    for (size_t k = tid; k < ng; k += stride) {
        float a[W];
        ldv(x + k * W, a);
#pragma unroll
        for (int j = 0; j < W; j++) a[j] *= s;
        stv(x + k * W, a);
    }
    if (W > 1)
        for (size_t i = ng * W + tid; i < n; i += stride) stf(x + i, ldf(x + i) * s);
}

/* decay = 1 - lr·wd, omb1 = 1 - b1, omb2 = 1 - b2, all computed on the host
 * as the CPU computes them. */
struct AdamArgs {
    float decay, b1, omb1, b2, omb2, eps, step_size, bc2_sqrt;
};

/* The CPU's arithmetic, operation by operation (no contraction into FMAs,
 * whose choice could differ between the kernels that inline this): every
 * AdamW path gives the same bits, and the same as the CPU's. */
__device__ __forceinline__ void adam_one(float &p, float g, float &m, float &v, const AdamArgs &a) {
    const float pi = __fmul_rn(p, a.decay);
    m = __fadd_rn(__fmul_rn(a.b1, m), __fmul_rn(a.omb1, g));
    v = __fadd_rn(__fmul_rn(a.b2, v), __fmul_rn(__fmul_rn(a.omb2, g), g));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), a.bc2_sqrt), a.eps);
    p = __fsub_rn(pi, __fdiv_rn(__fmul_rn(a.step_size, m), denom));
}

template <int W>
__global__ void __launch_bounds__(FLAT_THREADS) adamw_kernel(float *p, const float *g, float *m, float *v, size_t n,
                                                             AdamArgs a) {
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    const size_t ng = n / W;
    for (size_t k = tid; k < ng; k += stride) {
        float pp[W], gg[W], mm[W], vv[W];
        ldv(p + k * W, pp);
        ldv(g + k * W, gg);
        ldv(m + k * W, mm);
        ldv(v + k * W, vv);
#pragma unroll
        for (int j = 0; j < W; j++) adam_one(pp[j], gg[j], mm[j], vv[j], a);
        stv(p + k * W, pp);
        stv(m + k * W, mm);
        stv(v + k * W, vv);
    }
    if (W > 1)
        for (size_t i = ng * W + tid; i < n; i += stride) {
            float pp = p[i], mm = m[i], vv = v[i];
            adam_one(pp, g[i], mm, vv, a);
            p[i] = pp, m[i] = mm, v[i] = vv;
        }
}

/* AdamW over elements [lo, hi) of whole-array pointers, up to SEG_MAX
 * segments (absolute starts, decay bits) passed by value and copied to shared
 * memory; each group of W elements finds its segment by binary search and
 * steps across a boundary inside the group. Gradients times gscale first. */
constexpr int SEG_MAX = 256;
struct AdamSegs {
    unsigned long long start[SEG_MAX + 1];
    unsigned decay[SEG_MAX / 32];
    int nseg;
};

template <int W>
__global__ void __launch_bounds__(FLAT_THREADS) adamw_segs_kernel(float *p, const float *g, float *m, float *v,
                                                                  AdamArgs a, float gscale, const AdamSegs s) {
    __shared__ unsigned long long st[SEG_MAX + 1];
    __shared__ unsigned dec[SEG_MAX / 32];
    for (int i = threadIdx.x; i <= s.nseg; i += blockDim.x) st[i] = s.start[i];
    for (int i = threadIdx.x; i < SEG_MAX / 32; i += blockDim.x) dec[i] = s.decay[i];
    __syncthreads();
    const size_t lo = st[0], hi = st[s.nseg];
    const size_t g0 = lo / W, g1 = (hi + W - 1) / W;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t k = g0 + tid; k < g1; k += stride) {
        const size_t e0 = k * W;
        int a0 = 0, b0 = s.nseg - 1; /* the last segment starting at or before max(e0, lo) */
        const size_t key = e0 > lo ? e0 : lo;
        while (a0 < b0) {
            const int mid = (a0 + b0 + 1) >> 1;
            if (st[mid] <= key) a0 = mid;
            else b0 = mid - 1;
        }
        int seg = a0;
        if (W > 1 && e0 >= lo && e0 + W <= hi && st[seg + 1] >= e0 + W) { /* whole group, one segment */
            float pp[W], gg[W], mm[W], vv[W];
            ldv(p + e0, pp);
            ldv(g + e0, gg);
            ldv(m + e0, mm);
            ldv(v + e0, vv);
            AdamArgs b = a;
            if (!((dec[seg >> 5] >> (seg & 31)) & 1u)) b.decay = 1.0f;
#pragma unroll
            for (int j = 0; j < W; j++) adam_one(pp[j], gg[j] * gscale, mm[j], vv[j], b);
            stv(p + e0, pp);
            stv(m + e0, mm);
            stv(v + e0, vv);
        } else {
            for (int j = 0; j < W; j++) {
                const size_t i = e0 + j;
                if (i < lo || i >= hi) continue;
                while (st[seg + 1] <= i) seg++;
                AdamArgs b = a;
                if (!((dec[seg >> 5] >> (seg & 31)) & 1u)) b.decay = 1.0f;
                float pp = p[i], mm = m[i], vv = v[i];
                adam_one(pp, g[i] * gscale, mm, vv, b);
                p[i] = pp, m[i] = mm, v[i] = vv;
            }
        }
    }
}

/* Each block one chunk of SUMSQ_CHUNK values; thread t owns the groups of 4
 * values t, t + blockDim, ... of its chunk (vector or scalar loads, same
 * order), then the chunk's tail below 4. */
__global__ void __launch_bounds__(SUMSQ_THREADS) sumsq_partial_kernel(double *part, const float *x, size_t n, bool vec) {
    __shared__ double sh[32];
    const size_t lo = (size_t)blockIdx.x * SUMSQ_CHUNK;
    const size_t hi = lo + SUMSQ_CHUNK < n ? lo + SUMSQ_CHUNK : n;
    const size_t ng = (hi - lo) / 4;
    double s = 0.0;
    for (size_t k = threadIdx.x; k < ng; k += blockDim.x) {
        float a[4];
        ldv_al<4>(x + lo + 4 * k, a, vec);
#pragma unroll
        for (int j = 0; j < 4; j++) s += (double)a[j] * (double)a[j];
    }
    for (size_t i = lo + 4 * ng + threadIdx.x; i < hi; i += blockDim.x) s += (double)x[i] * (double)x[i];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void __launch_bounds__(1024) sumsq_final_kernel(double *out, const double *part, int nb) {
    __shared__ double sh[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < nb; i += blockDim.x) s += part[i];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) *out = s;
}

/* dst (ncol) += Σ_b part[b][:], b in order (thread per column). */
__global__ void colsum_add_kernel(float *dst, const float *part, int nblk, int ncol) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= ncol) return;
    float s = dst[c];
#pragma unroll 8
    for (int b = 0; b < nblk; b++) s += part[(size_t)b * ncol + c];
    dst[c] = s;
}

/* ---------------------------------------------------------------- embedding */

template <int W, typename T>
__global__ void embed_fwd_kernel(T *out, const int32_t *tok, const float *wte, int D) {
    const int r = blockIdx.x;
    const float *src = wte + (size_t)tok[r] * D;
    T *dst = out + (size_t)r * D;
    for (int c = threadIdx.x * W; c < D; c += blockDim.x * W) {
        float a[W];
        ldv(src + c, a);
        stv(dst + c, a);
    }
}

/* Segment s = blockIdx.x: rows perm[seg_start[s] .. seg_start[s+1]) (in row
 * order) all hold token seg_tok[s]. */
template <int W, typename T>
__global__ void embed_bwd_kernel(float *dwte, const T *dout, const int *perm, const int *seg_start,
                                 const int *seg_tok, int D) {
    const int s = blockIdx.x;
    const int c = (blockIdx.y * blockDim.x + threadIdx.x) * W;
    if (c >= D) return;
    const int lo = seg_start[s], hi = seg_start[s + 1];
    float *d = dwte + (size_t)seg_tok[s] * D + c;
    float acc[W];
    ldv(d, acc);
    for (int k = lo; k < hi; k++) {
        float g[W];
        ldv(dout + (size_t)perm[k] * D + c, g);
#pragma unroll
        for (int j = 0; j < W; j++) acc[j] += g[j];
    }
    stv(d, acc);
}

/* ---------------------------------------------------------------- RMSNorm */

/* ob (may be NULL): the same output rounded to bf16, dense (N, D), for the next
 * product's forward (the "cuda" table in training: no separate rounding pass);
 * out NULL: only that (a bf16-stored activation, ops.h alloc_act). */
template <int W, typename T>
__global__ void __launch_bounds__(512) rmsnorm_fwd_kernel(T *out, float *rstd, const T *inp, const float *w, int D,
                                                          float eps, __nv_bfloat16 *ob) {
    swax_pdl_trigger(); /* a decode product launched with PDL may start (gemv.cu) */
    __shared__ float sh[32];
    const int r = blockIdx.x;
    const T *x = inp + (size_t)r * D;
    T *o = out ? out + (size_t)r * D : NULL;
    __nv_bfloat16 *b = ob ? ob + (size_t)r * D : NULL;
    float ss = 0.0f;
    for (int c = threadIdx.x * W; c < D; c += blockDim.x * W) {
        float a[W];
        ldv(x + c, a);
#pragma unroll
        for (int j = 0; j < W; j++) ss += a[j] * a[j];
    }
    ss = swax_block_sum(ss, sh);
    const float rs = 1.0f / sqrtf(ss / D + eps);
    if (threadIdx.x == 0) rstd[r] = rs;
    for (int c = threadIdx.x * W; c < D; c += blockDim.x * W) {
        float a[W], wv[W];
        ldv(x + c, a);
        ldv(w + c, wv);
#pragma unroll
        for (int j = 0; j < W; j++) a[j] = a[j] * rs * wv[j];
        if (o) stv(o + c, a);
        if (b) stv_bf16(b + c, a);
    }
}

/* Block b: rows [64b, min(N, 64b + 64)). Thread t owns columns t·W + k·blockDim·W
 * for every row, so its shared partial slots are its own (no barrier). */
template <int W, typename T>
__global__ void __launch_bounds__(512) rmsnorm_bwd_kernel(T *dinp, float *part, const T *dout, const T *inp,
                                                          const float *w, const float *rstd, int N, int D,
                                                          __nv_bfloat16 *db) {
    extern __shared__ __align__(16) float spart[]; /* D floats */
    __shared__ float sh[32];
    const int b = blockIdx.x;
    const int r0 = b * ROWBLK, r1 = r0 + ROWBLK < N ? r0 + ROWBLK : N;
    for (int c = threadIdx.x * W; c < D; c += blockDim.x * W) {
        const float z[W] = {};
        stv(spart + c, z);
    }
    for (int r = r0; r < r1; r++) { /* uniform over the block */
        const T *x = inp + (size_t)r * D, *g = dout + (size_t)r * D;
        const float rs = rstd[r];
        float dot = 0.0f;
        for (int c = threadIdx.x * W; c < D; c += blockDim.x * W) {
            float gv[W], xv[W], wv[W], pv[W];
            ldv(g + c, gv);
            ldv(x + c, xv);
            ldv(w + c, wv);
            ldv(spart + c, pv);
#pragma unroll
            for (int j = 0; j < W; j++) {
                dot += gv[j] * wv[j] * xv[j];
                pv[j] += gv[j] * xv[j] * rs;
            }
            stv(spart + c, pv);
        }
        dot = swax_block_sum(dot, sh);
        const float cc = dot * rs * rs * rs / D;
        T *dx = dinp + (size_t)r * D;
        for (int c = threadIdx.x * W; c < D; c += blockDim.x * W) {
            float gv[W], xv[W], wv[W], dv[W];
            ldv(g + c, gv);
            ldv(x + c, xv);
            ldv(w + c, wv);
            ldv(dx + c, dv);
#pragma unroll
            for (int j = 0; j < W; j++) dv[j] += rs * gv[j] * wv[j] - cc * xv[j];
            stv(dx + c, dv);
            if (db) stv_bf16(db + (size_t)r * D + c, dv); /* the updated dinp, rounded */
        }
    }
    for (int c = threadIdx.x * W; c < D; c += blockDim.x * W) {
        float pv[W];
        ldv(spart + c, pv);
        stv(part + (size_t)b * D + c, pv);
    }
}

/* rmsnorm_bwd_kernel when each thread owns exactly one W-vector of a row
 * (D = blockDim.x · W: D 256 … 2048 at W = 4): the same expressions in the
 * same order (the same bits), with the weights and the column partials in
 * registers instead of re-read, and the next row's g, x, dinp and rstd loaded
 * before this row's block sum, so the loads of one row overlap the barriers of
 * the other (run 7's profile: 0.254 ms a call for 32,768 × 1,024, ~79% of the
 * HBM bandwidth; one dependent round trip after another per row). */
template <int W, typename T>
__global__ void __launch_bounds__(512) rmsnorm_bwd_rows_kernel(T *dinp, float *part, const T *dout, const T *inp,
                                                               const float *w, const float *rstd, int N, int D,
                                                               __nv_bfloat16 *db) {
    __shared__ float sh[32];
    const int b = blockIdx.x, c = threadIdx.x * W;
    const int r0 = b * ROWBLK, r1 = r0 + ROWBLK < N ? r0 + ROWBLK : N;
    float wv[W], pv[W] = {}, gn[W], xn[W], dn[W];
    ldv(w + c, wv);
    float rn = 0.0f;
    if (r0 < r1) {
        ldv(dout + (size_t)r0 * D + c, gn);
        ldv(inp + (size_t)r0 * D + c, xn);
        ldv(dinp + (size_t)r0 * D + c, dn);
        rn = rstd[r0];
    }
    for (int r = r0; r < r1; r++) { /* uniform over the block */
        float gv[W], xv[W], dv[W];
        const float rs = rn;
#pragma unroll
        for (int j = 0; j < W; j++) gv[j] = gn[j], xv[j] = xn[j], dv[j] = dn[j];
        if (r + 1 < r1) { /* the next row's operands in flight across this row's barriers */
            ldv(dout + (size_t)(r + 1) * D + c, gn);
            ldv(inp + (size_t)(r + 1) * D + c, xn);
            ldv(dinp + (size_t)(r + 1) * D + c, dn);
            rn = rstd[r + 1];
        }
        float dot = 0.0f;
#pragma unroll
        for (int j = 0; j < W; j++) {
            dot += gv[j] * wv[j] * xv[j];
            pv[j] += gv[j] * xv[j] * rs;
        }
        dot = swax_block_sum(dot, sh);
        const float cc = dot * rs * rs * rs / D;
#pragma unroll
        for (int j = 0; j < W; j++) dv[j] += rs * gv[j] * wv[j] - cc * xv[j];
        stv(dinp + (size_t)r * D + c, dv);
        if (db) stv_bf16(db + (size_t)r * D + c, dv); /* the updated dinp, rounded */
    }
    stv(part + (size_t)b * D + c, pv);
}

/* ---------------------------------------------------------------- SwiGLU */

template <int W, typename T, typename G = T>
__global__ void swiglu_fwd_kernel(T *h, const G *gu, int N, int F, __nv_bfloat16 *hb) {
    swax_pdl_trigger(); /* a decode product launched with PDL may start (gemv.cu) */
    for (int r = blockIdx.y; r < N; r += gridDim.y) {
        const G *g = gu + (size_t)r * 2 * F;
        T *o = h ? h + (size_t)r * F : NULL;
        __nv_bfloat16 *b = hb ? hb + (size_t)r * F : NULL;
        for (int c = (blockIdx.x * blockDim.x + threadIdx.x) * W; c < F; c += gridDim.x * blockDim.x * W) {
            float gv[W], uv[W];
            ldv(g + c, gv);
            ldv(g + F + c, uv);
#pragma unroll
            for (int j = 0; j < W; j++) gv[j] = gv[j] * sigmoid_acc(gv[j]) * uv[j];
            if (o) stv(o + c, gv);
            if (b) stv_bf16(b + c, gv);
        }
    }
}

/* dbf (may be NULL): the same d(gate, up) rounded to bf16, dense (N, 2F), for
 * the gate/up product's backward (the "cuda" table: no separate rounding pass);
 * w32 = 0: only that copy (swax_cuda_dout_bf16_only). */
template <int W, typename T, typename G = T, typename H = T>
__global__ void swiglu_bwd_kernel(T *dgu, const H *dh, const G *gu, int N, int F, __nv_bfloat16 *dbf, int w32) {
    for (int r = blockIdx.y; r < N; r += gridDim.y) {
        const G *g = gu + (size_t)r * 2 * F;
        const H *d = dh + (size_t)r * F;
        T *dg = dgu + (size_t)r * 2 * F;
        __nv_bfloat16 *db = dbf ? dbf + (size_t)r * 2 * F : NULL;
        for (int c = (blockIdx.x * blockDim.x + threadIdx.x) * W; c < F; c += gridDim.x * blockDim.x * W) {
            float gv[W], uv[W], dv[W], dgv[W], duv[W];
            ldv(g + c, gv);
            ldv(g + F + c, uv);
            ldv(d + c, dv);
#pragma unroll
            for (int j = 0; j < W; j++) {
                const float s = sigmoid_acc(gv[j]), silu = gv[j] * s;
                dgv[j] = dv[j] * uv[j] * s * (1.0f + gv[j] * (1.0f - s));
                duv[j] = dv[j] * silu;
            }
            if (w32) {
                stv(dg + c, dgv);
                stv(dg + F + c, duv);
            }
            if (db) {
                stv_bf16(db + c, dgv);
                stv_bf16(db + F + c, duv);
            }
        }
    }
}

/* ---------------------------------------------------------------- mLSTM gates */

template <typename T>
__global__ void gates_fwd_kernel(float *ig, float *lf, const T *pre, long ldp, const float *bias, int N, int NH,
                                 float cap) {
    const size_t total = (size_t)N * NH, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const size_t r = i / NH;
        const int h = (int)(i - r * NH);
        const T *p = pre + r * ldp;
        const float ui = ldf(p + h) + bias[h], uf = ldf(p + NH + h) + bias[NH + h];
        ig[i] = cap * tanhf(ui / cap);
        lf[i] = logsigmoid_acc(cap * tanhf(uf / cap));
    }
}

/* Column j of the 2·NH gate columns (j < NH: input gate h = j; else forget
 * gate h = j - NH); block (b, ·) walks rows [64b, 64b + 64) in order. */
template <typename T>
__global__ void __launch_bounds__(64) gates_bwd_kernel(T *dpre, long ldp, float *part, const float *dig,
                                                       const float *dlf, const T *pre, long ldpre,
                                                       const float *bias, int N, int NH, float cap) {
    const int j = blockIdx.y * blockDim.x + threadIdx.x;
    if (j >= 2 * NH) return;
    const int b = blockIdx.x;
    const int r0 = b * ROWBLK, r1 = r0 + ROWBLK < N ? r0 + ROWBLK : N;
    const bool fgate = j >= NH;
    const int h = fgate ? j - NH : j;
    const float bj = bias[j];
    float acc = 0.0f;
    for (int r = r0; r < r1; r++) {
        const float th = tanhf((ldf(pre + (size_t)r * ldpre + j) + bj) / cap);
        float du;
        if (!fgate) {
            du = dig[(size_t)r * NH + h] * (1.0f - th * th);
        } else {
            const float ft = cap * th;
            const float sig_neg = 1.0f / (1.0f + expf(ft));
            du = dlf[(size_t)r * NH + h] * sig_neg * (1.0f - th * th);
        }
        stf(dpre + (size_t)r * ldp + j, du);
        acc += du;
    }
    part[(size_t)b * 2 * NH + j] = acc;
}

/* ---------------------------------------------------------------- mLSTM output norm */

/* Warp per (row, head) segment seg = r·NH + hd. W = 4 needs dv % 4 == 0 and
 * h, y, hn, w aligned (yb 8-byte); og has its own flag (its stride is 3D + 2NH).
 * yb (may be NULL): y rounded to bf16, dense (N, D), for the output projection. */
template <int W, typename T>
__global__ void __launch_bounds__(256) mlstm_out_fwd_kernel(T *y, T *hn, float *mean, float *rstd, const T *h,
                                                            const T *og, long ldog, bool og_al, const float *w,
                                                            int N, int NH, int dv, float eps, __nv_bfloat16 *yb) {
    swax_pdl_trigger(); /* a decode product launched with PDL may start (gemv.cu) */
    const int lane = threadIdx.x & 31;
    const size_t seg = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (seg >= (size_t)N * NH) return; /* whole warp */
    const size_t r = seg / NH;
    const int hd = (int)(seg - r * NH);
    const size_t D = (size_t)NH * dv;
    const T *x = h + r * D + (size_t)hd * dv;
    float s = 0.0f;
    for (int e = lane * W; e < dv; e += 32 * W) {
        float a[W];
        ldv(x + e, a);
#pragma unroll
        for (int j = 0; j < W; j++) s += a[j];
    }
    const float mu = swax_warp_sum(s) / dv;
    float q = 0.0f;
    for (int e = lane * W; e < dv; e += 32 * W) {
        float a[W];
        ldv(x + e, a);
#pragma unroll
        for (int j = 0; j < W; j++) q += (a[j] - mu) * (a[j] - mu);
    }
    const float rs = 1.0f / sqrtf(swax_warp_sum(q) / dv + eps);
    if (lane == 0) mean[seg] = mu, rstd[seg] = rs;
    for (int e = lane * W; e < dv; e += 32 * W) {
        const size_t col = (size_t)hd * dv + e;
        float a[W], wv[W], ov[W], nv[W], yv[W];
        ldv(x + e, a);
        ldv(w + col, wv);
        ldv_al<W>(og + r * ldog + col, ov, og_al);
#pragma unroll
        for (int j = 0; j < W; j++) {
            nv[j] = (a[j] - mu) * rs * wv[j];
            yv[j] = nv[j] * sigmoid_acc(ov[j]);
        }
        stv(hn + r * D + col, nv);
        stv(y + r * D + col, yv);
        if (yb) stv_bf16(yb + r * D + col, yv);
    }
}

/* Warp per (64-row block b = blockIdx.x, head hd); its dw partial over those
 * rows (dv floats) in shared memory, lane-owned slots (no barrier). */
template <int W, typename T>
__global__ void __launch_bounds__(OUTB_WARPS * 32) mlstm_out_bwd_kernel(
    T *dh, T *dog, long lddog, bool dog_al, float *part, const T *dy, const T *hn, const T *h, const float *mean,
    const float *rstd, const T *og, long ldog, bool og_al, const float *w, int N, int NH, int dv) {
    extern __shared__ __align__(16) float smem[]; /* (blockDim/32, dv) */
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const int hd = blockIdx.y * (blockDim.x >> 5) + wid;
    if (hd >= NH) return; /* whole warp; no block barriers below */
    float *sp = smem + (size_t)wid * dv;
    const int b = blockIdx.x;
    const int r0 = b * ROWBLK, r1 = r0 + ROWBLK < N ? r0 + ROWBLK : N;
    const size_t D = (size_t)NH * dv;
    for (int e = lane * W; e < dv; e += 32 * W) {
        const float z[W] = {};
        stv(sp + e, z);
    }
    for (int r = r0; r < r1; r++) {
        const float mu = mean[(size_t)r * NH + hd], rs = rstd[(size_t)r * NH + hd];
        const size_t rowD = (size_t)r * D;
        float sdx = 0.0f, sdxx = 0.0f;
        for (int e = lane * W; e < dv; e += 32 * W) {
            const size_t col = (size_t)hd * dv + e;
            float ov[W], gv[W], hv[W], xv[W], wv[W], pv[W], dgv[W];
            ldv_al<W>(og + (size_t)r * ldog + col, ov, og_al);
            ldv(dy + rowD + col, gv);
            ldv(hn + rowD + col, hv);
            ldv(h + rowD + col, xv);
            ldv(w + col, wv);
            ldv(sp + e, pv);
#pragma unroll
            for (int j = 0; j < W; j++) {
                const float s = sigmoid_acc(ov[j]);
                dgv[j] = gv[j] * hv[j] * s * (1.0f - s);
                const float dn = gv[j] * s;
                const float xh = (xv[j] - mu) * rs;
                pv[j] += dn * xh;
                const float dxh = dn * wv[j];
                sdx += dxh;
                sdxx += dxh * xh;
            }
            stv_al<W>(dog + (size_t)r * lddog + col, dgv, dog_al);
            stv(sp + e, pv);
        }
        sdx = swax_warp_sum(sdx) / dv;
        sdxx = swax_warp_sum(sdxx) / dv;
        for (int e = lane * W; e < dv; e += 32 * W) {
            const size_t col = (size_t)hd * dv + e;
            float ov[W], gv[W], xv[W], wv[W], dhv[W];
            ldv_al<W>(og + (size_t)r * ldog + col, ov, og_al);
            ldv(dy + rowD + col, gv);
            ldv(h + rowD + col, xv);
            ldv(w + col, wv);
#pragma unroll
            for (int j = 0; j < W; j++) {
                const float s = sigmoid_acc(ov[j]);
                const float dxh = gv[j] * s * wv[j];
                const float xh = (xv[j] - mu) * rs;
                dhv[j] = rs * (dxh - sdx - xh * sdxx);
            }
            stv(dh + rowD + col, dhv);
        }
    }
    for (int e = lane * W; e < dv; e += 32 * W) {
        float pv[W];
        ldv(sp + e, pv);
        stv(part + (size_t)b * D + (size_t)hd * dv + e, pv);
    }
}

/* ---------------------------------------------------------------- cross-entropy */

/* The soft cap, the online (max, sum) update and the d logit of one entry:
 * the one set of expressions of the three cross-entropy kernels (same bits). */
__device__ __forceinline__ float xent_capped(float a, float cap, float inv_cap) {
    return cap > 0 ? cap * tanhf(a * inv_cap) : a;
}
__device__ __forceinline__ void ms_push(float &m, float &s, float v) {
    if (v > m) {
        s = s * expf(m - v) + 1.0f;
        m = v;
    } else {
        s += expf(v - m);
    }
}
/* zz: the capped logit; l: the row's log-sum-exp; target: whether it is the row's target */
__device__ __forceinline__ float xent_dlogit(float zz, float l, float cap, float inv_cap, float scale, bool target) {
    float v;
    if (cap > 0) {
        const float th = zz * inv_cap;
        v = expf(zz - l) * scale * (1.0f - th * th);
        if (target) v -= scale * (1.0f - zz * inv_cap * zz * inv_cap); /* the one-hot term */
    } else {
        v = expf(zz - l) * scale;
        if (target) v -= scale;
    }
    return v;
}

/* The fast arithmetic of xent_train_kernel for bf16 logits (FAST: 1 <= cap <=
 * XENT_FAST_CAP; opt-in, SWAX_XENT_FAST=1, until a GPU run has timed and
 * checked it: test cuda_bf16_xent_fast_matches_accurate). The logits are rounded to
 * 8 significant bits, so the accurate tanhf and expf (19 and 11 instructions
 * an element in SASS, beside ms_push's branch) buy nothing; instead:
 *   - exponentials as one MUFU.EX2 (ex2.approx.ftz, ~2 ulp) with log2(e)
 *     folded into the constants of one FMUL/FFMA;
 *   - the cap as cap·tanh(a/cap) = cap - 2·cap·r, r = 1/(e^(2a/cap) + 1)
 *     with rcp.approx (a large: e = inf, r = 0, cap; a very negative: r = 1,
 *     -cap). Its max absolute error against double over every finite bf16 a
 *     (a host check with ex2/rcp exact then rounded to float, and with them
 *     moved by ±2 / ±1 ulp, the hardware's bounds): 5.2e-6 / 1.1e-5 at cap
 *     30, 8.0e-6 / 1.4e-5 at cap 40 (tanhf: 3.7e-6); the rounding of e + 1
 *     where e is tiny and the ulps of r ≈ 1 times 2·cap dominate. bf16
 *     resolves a logit near 30 to 0.125;
 *   - a fixed offset instead of the online max: zz <= cap, so s = Σ e^(zz -
 *     cap) = Σ 2^(r·(-2·cap·log2 e)) cannot overflow, and its smallest term
 *     2^(-2·cap·log2 e) >= 2^-115.4 is above FLT_MIN even flushed: lse = cap +
 *     log(s); no branch, no dependent chain through m, one plain block sum.
 * Every expression is pinned (__fmul_rn etc.: no contraction that could differ
 * between the row places), so the three row places give the same bits. */
constexpr float XENT_FAST_CAP = 40.0f; /* 2·40·log2(e) = 115.4 < 126 */
constexpr float XENT_LOG2E = 1.44269504088896341f;

__device__ __forceinline__ float ex2_ftz(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ float rcp_ftz(float x) {
    float y;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
/* A row's constants (the same in every thread): cap; 2·log2(e)/cap; -2·cap; -2·cap·log2(e) */
struct XentFast {
    float cap, k, c2, e2;
};
__device__ __forceinline__ XentFast xent_fast(float cap, float inv_cap) {
    return {cap, __fmul_rn(2.0f * XENT_LOG2E, inv_cap), -2.0f * cap, __fmul_rn(-2.0f * XENT_LOG2E, cap)};
}
/* r = 1/(e^(2a/cap) + 1) of a raw logit a */
__device__ __forceinline__ float xent_fast_r(float a, const XentFast &f) {
    return rcp_ftz(__fadd_rn(ex2_ftz(__fmul_rn(a, f.k)), 1.0f));
}
/* the capped logit cap·tanh(a/cap) from r */
__device__ __forceinline__ float xent_fast_capped(float r, const XentFast &f) { return __fmaf_rn(r, f.c2, f.cap); }
/* e^(zz - cap) from r (zz - cap = -2·cap·r) */
__device__ __forceinline__ float xent_fast_term(float r, const XentFast &f) { return ex2_ftz(__fmul_rn(r, f.e2)); }
/* The d logit of capped logit zz: e^(zz - l)·g, less g at the target, with
 * g = scale·(1 - (zz/cap)²); nl = -l·log2(e), nsc = -scale/cap². */
__device__ __forceinline__ float xent_fast_dlogit(float zz, float nl, float nsc, float scale, bool target) {
    const float p = ex2_ftz(__fmaf_rn(zz, XENT_LOG2E, nl));
    const float g = __fmaf_rn(__fmul_rn(zz, zz), nsc, scale);
    return __fmaf_rn(p, g, target ? -g : 0.0f);
}

/* A thread's elements of a row, in the order every cross-entropy kernel
 * visits them (i = tid·W, then + blockDim·W): U vectors are loaded before
 * any is used (XENT_U below), so U loads are in flight per thread, and each
 * vector then goes to f(i, a) in that same order (so the same bits as one
 * vector at a time). */
template <int U, int W, typename T, typename F>
__device__ __forceinline__ void xent_walk(const T *z, int V, F f) {
    const int step = blockDim.x * W;
    int i = threadIdx.x * W;
    for (; i + (U - 1) * step < V; i += U * step) {
        float a[U][W];
#pragma unroll
        for (int u = 0; u < U; u++) ldv(z + i + u * step, a[u]);
#pragma unroll
        for (int u = 0; u < U; u++) f(i + u * step, a[u]);
    }
    for (; i < V; i += step) {
        float a[W];
        ldv(z + i, a);
        f(i, a);
    }
}
/* loads in flight per thread in the cross-entropy passes (runs 8-9: the
 * row-per-block kernel took 0.83 ms for 4,096 rows of 50,304 bf16 logits, ~1/3
 * of the bandwidth, one 8-byte load at a time); 2 keeps xent_train_kernel at
 * 32 registers (two 1,024-thread blocks an SM) without spills, 4 did not */
constexpr int XENT_U = 2;

/* A block's first pass over a row: this thread's (max, sum) of the capped
 * logits (ids >= Vused left out); FAST: its sum of e^(zz - cap), m untouched;
 * the capped row (-inf past Vused) to dst when dst (in place: dst = z); the
 * raw row, as stored, to raw when raw (bf16 to bf16 and fp32 to fp32: exact). */
template <int W, bool FAST = false, typename T>
__device__ __forceinline__ void xent_scan(const T *z, float *dst, int V, int Vused, float cap, float inv_cap, float &m,
                                          float &s, T *raw = NULL) {
    const XentFast f = xent_fast(cap, inv_cap);
    xent_walk<XENT_U, W>(z, V, [&](int i, float (&a)[W]) {
        if (raw) stv_as(raw + i, a);
#pragma unroll
        for (int j = 0; j < W; j++) {
            const bool used = i + j < Vused;
            if constexpr (FAST) { /* no branch (the W elements' chains interleave): past Vused r = inf, */
                const float r = used ? xent_fast_r(a[j], f) : INFINITY; /* so the term is 0, the logit -inf */
                s = __fadd_rn(s, xent_fast_term(r, f));
                a[j] = xent_fast_capped(r, f); /* dead unless dst */
            } else if (used) {
                a[j] = xent_capped(a[j], cap, inv_cap);
                ms_push(m, s, a[j]);
            } else {
                a[j] = -INFINITY;
            }
        }
        if (dst) stv(dst + i, a);
    });
}

/* Block per row. W = 4 needs V % 4 == 0 and logits aligned. */
template <int W, typename T>
__global__ void __launch_bounds__(1024) xent_fwd_kernel(T *logits, float *lse, float *losses,
                                                        const int32_t *targets, int V, int Vused, float cap,
                                                        float inv_cap) {
    __shared__ float shm[32], shs[32];
    const int r = blockIdx.x;
    T *z = logits + (size_t)r * V;
    float m = -INFINITY, s = 0.0f;
    xent_scan<W>(z, z, V, Vused, cap, inv_cap, m, s);
    ms_block(m, s, shm, shs); /* its barriers also publish the capped row */
    if (threadIdx.x == 0) {
        const float l = m + logf(s);
        if (lse) lse[r] = l;
        if (losses) {
            const int t = targets ? targets[r] : -1;
            losses[r] = t >= 0 ? l - ldf(z + t) : 0.0f;
        }
    }
}


/* dbf (may be NULL): the same d logits rounded to bf16, dense (N, V), for
 * the head's backward product (the "cuda" table: no separate rounding pass). */
template <int W, typename T>
__global__ void __launch_bounds__(1024) xent_bwd_kernel(T *logits, const float *lse, const int32_t *targets, int V,
                                                        int Vused, float cap, float inv_cap, float scale,
                                                        __nv_bfloat16 *dbf) {
    const int r = blockIdx.x;
    T *z = logits + (size_t)r * V;
    __nv_bfloat16 *zb = dbf ? dbf + (size_t)r * V : NULL;
    const int t = targets[r];
    if (t < 0) { /* uniform over the block; no barriers in this kernel */
        const float zero[W] = {};
        for (int i = threadIdx.x * W; i < V; i += blockDim.x * W) {
            stv(z + i, zero);
            if (zb) stv_bf16(zb + i, zero);
        }
        return;
    }
    const float l = lse[r];
    for (int i = threadIdx.x * W; i < V; i += blockDim.x * W) {
        float a[W];
        ldv(z + i, a);
#pragma unroll
        for (int j = 0; j < W; j++) {
            const int idx = i + j;
            if (idx < Vused) {
                a[j] = xent_dlogit(a[j], l, cap, inv_cap, scale, idx == t);
            } else {
                a[j] = 0.0f;
            }
        }
        stv(z + i, a);
        if (zb) stv_bf16(zb + i, a);
    }
}

/* Training's head: xent_fwd then xent_bwd in one kernel, the same bits (the
 * same thread layout, reduction and formulas). The second pass reads, by
 * ROW (all three give the same bits):
 *   XR_GLOBAL  the raw row again from global memory and caps it again: at two
 *              1,024-thread blocks an SM, 264 rows in flight exceed an H100's
 *              50 MB L2, so that re-read mostly comes from DRAM (run 5: the
 *              first version, 6.7 ms a bench-gpu step);
 *   XR_CAPPED  the capped row, kept in shared memory (V floats: up to ~51k
 *              ids): one DRAM read, but one block an SM at V = 50,304 (201 KB)
 *              and no loads in flight while it computes its second pass (runs
 *              8–9: 6.6 ms a step, the same as XR_GLOBAL);
 *   XR_RAW     the raw row as stored, kept in shared memory, capped again: for
 *              bf16 logits half the bytes (100 KB at V = 50,304), so two blocks
 *              an SM, each one's second pass beside the other's loads.
 * d logits go to z in fp32 when w32, to dbf in bf16 when dbf; z is never
 * written with the capped row. FAST (bf16 logits, 1 <= cap <= XENT_FAST_CAP):
 * the arithmetic of XentFast above, within ~1e-5 of the capped logits instead
 * of the same bits as xent_fwd + xent_bwd. SASS (sm_90a, W = 4, the dynamic
 * path of the main loops: every id used, no new maximum), instructions an
 * element, first pass + second, old → FAST: XR_CAPPED 44.0 + 30.3 = 74.3 →
 * 15.6 + 12.6 = 28.3, XR_GLOBAL 41.6 + 51.4 → 12.6 + 20.0, XR_RAW 44.5 + 50.8
 * → 13.3 + 19.4; MUFU an element unchanged: 3 + 1 (XR_CAPPED), 3 + 3. */
enum { XR_GLOBAL = 0, XR_CAPPED = 1, XR_RAW = 2 };
template <int W, typename T, int ROW, bool FAST>
__global__ void __launch_bounds__(1024, 2) xent_train_kernel(T *logits, float *lse, float *losses,
                                                          const int32_t *targets, int V, int Vused, float cap,
                                                          float inv_cap, float scale, int w32, __nv_bfloat16 *dbf) {
    static_assert(!FAST || std::is_same<T, __nv_bfloat16>::value, "the fast arithmetic is for bf16 logits only");
    __shared__ float shm[32], shs[32];
    extern __shared__ __align__(16) float zrow[]; /* V floats (XR_CAPPED) or V T's (XR_RAW) */
    T *zraw = reinterpret_cast<T *>(zrow);
    const int r = blockIdx.x;
    T *z = logits + (size_t)r * V;
    __nv_bfloat16 *zb = dbf ? dbf + (size_t)r * V : NULL;
    const int t = targets[r];
    const XentFast f = xent_fast(cap, inv_cap);
    float m = -INFINITY, s = 0.0f;
    xent_scan<W, FAST>(z, ROW == XR_CAPPED ? zrow : (float *)NULL, V, Vused, cap, inv_cap, m, s,
                       ROW == XR_RAW ? zraw : (T *)NULL);
    float l; /* the block reduction's barriers also publish the shared row */
    if constexpr (FAST) {
        l = cap + logf(swax_block_sum(s, shs));
    } else {
        ms_block(m, s, shm, shs);
        l = m + logf(s);
    }
    auto capped = [&](float a) { return FAST ? xent_fast_capped(xent_fast_r(a, f), f) : xent_capped(a, cap, inv_cap); };
    if (threadIdx.x == 0) {
        if (lse) lse[r] = l;
        if (losses) {
            float zt = -INFINITY;
            if (t >= 0 && t < Vused) zt = ROW == XR_CAPPED ? zrow[t] : capped(ldf((ROW == XR_RAW ? zraw : z) + t));
            losses[r] = t >= 0 ? l - zt : 0.0f;
        }
    }
    __syncthreads(); /* thread 0 read z[t] before anyone overwrites it */
    auto put = [&](int i, float (&a)[W]) {
        if constexpr (std::is_same<T, float>::value) {
            if (w32) stv(z + i, a);
        }
        if (zb) stv_bf16(zb + i, a); /* bf16 logits: zb = z (this thread read these elements already) */
    };
    if (t < 0) { /* uniform over the block */
        for (int i = threadIdx.x * W; i < V; i += blockDim.x * W) {
            float a[W] = {};
            put(i, a);
        }
        return;
    }
    const float nl = __fmul_rn(-l, XENT_LOG2E), nsc = __fmul_rn(-scale, __fmul_rn(inv_cap, inv_cap)); /* FAST */
    auto dlogits = [&](int i, float (&a)[W]) {
#pragma unroll
        for (int j = 0; j < W; j++) {
            const int idx = i + j;
            if constexpr (FAST) { /* no branch, as in xent_scan */
                const float zz = ROW == XR_CAPPED ? a[j] : capped(a[j]);
                const float d = xent_fast_dlogit(zz, nl, nsc, scale, idx == t);
                a[j] = idx < Vused ? d : 0.0f;
            } else if (idx < Vused) {
                const float zz = ROW == XR_CAPPED ? a[j] : capped(a[j]);
                a[j] = xent_dlogit(zz, l, cap, inv_cap, scale, idx == t);
            } else {
                a[j] = 0.0f;
            }
        }
        put(i, a);
    };
    if (ROW == XR_CAPPED) xent_walk<XENT_U, W>(static_cast<const float *>(zrow), V, dlogits);
    else if (ROW == XR_RAW) xent_walk<XENT_U, W>(static_cast<const T *>(zraw), V, dlogits);
    else xent_walk<XENT_U, W>(static_cast<const T *>(z), V, dlogits);
}

/* ---------------------------------------------------------------- host helpers */

template <typename T>
inline bool al16(const T *p) {
    return ((uintptr_t)p & (4 * sizeof(T) - 1)) == 0;
}

/* Threads for `units` work items of a row: a multiple of 32 in [32, maxt]. */
inline int row_threads(size_t units, int maxt) {
    size_t t = (units + 31) / 32 * 32;
    if (t < 32) t = 32;
    if (t > (size_t)maxt) t = (size_t)maxt;
    return (int)t;
}

inline unsigned flat_blocks(size_t groups) {
    size_t b = (groups + FLAT_THREADS - 1) / FLAT_THREADS;
    const size_t cap = (size_t)swax_cuda_sm_count() * 16;
    if (b > cap) b = cap;
    return b ? (unsigned)b : 1u;
}

template <typename K>
void smem_optin(K kernel, size_t bytes) {
    SWAX_CUDA_REQUIRE(bytes <= SMEM_MAX);
    if (bytes > SMEM_DEFAULT)
        SWAX_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

/* dst (ncol) += the nblk partials (nblk, ncol) in block order. */
void colsum_add(float *dst, const float *part, int nblk, int ncol) {
    const int threads = 128;
    colsum_add_kernel<<<swax_ceil_div((size_t)ncol, threads), threads, 0, swax_cuda_stream()>>>(dst, part, nblk,
                                                                                               ncol);
    SWAX_CUDA_LAUNCHED();
}

} /* namespace */

/* ================================================================= slots */

extern "C" void swax_cuda_embed_fwd(float *out, const int32_t *tok, const float *wte, int N, int D) {
    SWAX_CUDA_REQUIRE(N >= 0 && D >= 0);
    if (N == 0 || D == 0) return;
    SWAX_CUDA_REQUIRE(out && tok && wte);
    cudaStream_t st = swax_cuda_stream();
    if (D % 4 == 0 && al16(out) && al16(wte)) {
        embed_fwd_kernel<4, float><<<N, row_threads((size_t)D / 4, 256), 0, st>>>(out, tok, wte, D);
    } else {
        embed_fwd_kernel<1, float><<<N, row_threads((size_t)D, 256), 0, st>>>(out, tok, wte, D);
    }
    SWAX_CUDA_LAUNCHED();
}

/* KNOWN SYNC: the token ids come to the host (the stream is drained) for a
 * stable counting sort; to be replaced by a device sort. */
extern "C" void swax_cuda_embed_bwd(float *dwte, const float *dout, const int32_t *tok, int N, int D) {
    SWAX_CUDA_REQUIRE(N >= 0 && D >= 0);
    if (N == 0 || D == 0) return;
    SWAX_CUDA_REQUIRE(dwte && dout && tok);
    cudaStream_t st = swax_cuda_stream();
    static std::vector<int32_t> h_tok, h_cnt, h_up;
    h_tok.resize((size_t)N);
    SWAX_CUDA_CHECK(cudaMemcpyAsync(h_tok.data(), tok, sizeof(int32_t) * (size_t)N, cudaMemcpyDeviceToHost, st));
    /* also guarantees the previous call's upload from h_up has completed */
    SWAX_CUDA_CHECK(cudaStreamSynchronize(st));
    int32_t vmin = h_tok[0], vmax = h_tok[0];
    for (int r = 1; r < N; r++) {
        vmin = h_tok[r] < vmin ? h_tok[r] : vmin;
        vmax = h_tok[r] > vmax ? h_tok[r] : vmax;
    }
    SWAX_CUDA_REQUIRE(vmin >= 0 && vmax < (1 << 26));
    h_cnt.assign((size_t)vmax + 1, 0);
    for (int r = 0; r < N; r++) h_cnt[h_tok[r]]++;
    int U = 0;
    for (int32_t v = 0; v <= vmax; v++) U += h_cnt[v] > 0;
    /* upload layout: perm (N), seg_start (U + 1), seg_tok (U) */
    const size_t nup = (size_t)N + 2 * (size_t)U + 1;
    h_up.resize(nup);
    int32_t *perm = h_up.data(), *seg_start = perm + N, *seg_tok = seg_start + U + 1;
    int pos = 0, u = 0;
    for (int32_t v = 0; v <= vmax; v++) {
        const int c = h_cnt[v];
        if (!c) continue;
        seg_tok[u] = v;
        seg_start[u] = pos;
        h_cnt[v] = pos; /* now the next free slot of token v */
        pos += c;
        u++;
    }
    seg_start[U] = N;
    for (int r = 0; r < N; r++) perm[h_cnt[h_tok[r]]++] = r; /* stable: row order within a token */
    int32_t *d_up = (int32_t *)swax_cuda_scratch(SWAX_SCRATCH_EMBED, sizeof(int32_t) * nup);
    SWAX_CUDA_CHECK(cudaMemcpyAsync(d_up, h_up.data(), sizeof(int32_t) * nup, cudaMemcpyHostToDevice, st));
    const int32_t *d_perm = d_up, *d_start = d_up + N, *d_tokseg = d_start + U + 1;
    if (D % 4 == 0 && al16(dwte) && al16(dout)) {
        const int threads = row_threads((size_t)D / 4, 256);
        const dim3 grid((unsigned)U, swax_ceil_div((size_t)D / 4, (size_t)threads));
        embed_bwd_kernel<4, float><<<grid, threads, 0, st>>>(dwte, dout, d_perm, d_start, d_tokseg, D);
    } else {
        const int threads = row_threads((size_t)D, 256);
        const dim3 grid((unsigned)U, swax_ceil_div((size_t)D, (size_t)threads));
        embed_bwd_kernel<1, float><<<grid, threads, 0, st>>>(dwte, dout, d_perm, d_start, d_tokseg, D);
    }
    SWAX_CUDA_LAUNCHED();
}

static void rmsnorm_fwd_launch(float *out, float *rstd, const float *inp, const float *w, int N, int D, float eps,
                               __nv_bfloat16 *ob) {
    SWAX_CUDA_REQUIRE(N >= 0 && D > 0);
    if (N == 0) return;
    SWAX_CUDA_REQUIRE((out || ob) && rstd && inp && w);
    cudaStream_t st = swax_cuda_stream();
    if (D % 4 == 0 && al16(out) && al16(inp) && al16(w) && (!ob || ((uintptr_t)ob & 7) == 0)) {
        rmsnorm_fwd_kernel<4, float><<<N, row_threads((size_t)D / 4, 512), 0, st>>>(out, rstd, inp, w, D, eps, ob);
    } else {
        rmsnorm_fwd_kernel<1, float><<<N, row_threads((size_t)D, 512), 0, st>>>(out, rstd, inp, w, D, eps, ob);
    }
    SWAX_CUDA_LAUNCHED();
}

extern "C" void swax_cuda_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int N, int D,
                                      float eps) {
    rmsnorm_fwd_launch(out, rstd, inp, w, N, D, eps, NULL);
}

/* The "cuda" table's slot: in training, also writes the output rounded to bf16
 * into the kept copy the next product's forward would make (ops_cuda.cu:
 * swax_cuda_fwd_bf16). */
extern "C" void swax_cuda_rmsnorm_fwd_bf16(float *out, float *rstd, const float *inp, const float *w, int N, int D,
                                           float eps) {
    if (N <= 0) return rmsnorm_fwd_launch(out, rstd, inp, w, N, D, eps, NULL);
    /* a bf16-stored activation (ops.h alloc_act): written only as bf16 */
    __nv_bfloat16 *ob = (__nv_bfloat16 *)swax_cuda_act_bf16(out, D, N, D);
    if (ob)
        rmsnorm_fwd_launch(NULL, rstd, inp, w, N, D, eps, ob);
    else
        rmsnorm_fwd_launch(out, rstd, inp, w, N, D, eps, (__nv_bfloat16 *)swax_cuda_fwd_bf16(out, D, N, D));
}

/* db (may be NULL): the updated dinp rounded to bf16, dense (N, D) */
static void rmsnorm_bwd_launch(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                               const float *rstd, int N, int D, __nv_bfloat16 *db) {
    SWAX_CUDA_REQUIRE(N >= 0 && D > 0);
    if (N == 0) return;
    SWAX_CUDA_REQUIRE(dinp && dw && dout && inp && w && rstd);
    cudaStream_t st = swax_cuda_stream();
    const int nblk = (N + ROWBLK - 1) / ROWBLK;
    float *part = (float *)swax_cuda_scratch(SWAX_SCRATCH_ELEMWISE, sizeof(float) * (size_t)nblk * D);
    const size_t smem = sizeof(float) * (size_t)D;
    const bool al4 = D % 4 == 0 && al16(dinp) && al16(dout) && al16(inp) && al16(w) && al16(part) &&
                     (!db || ((uintptr_t)db & 7) == 0);
    /* a thread per 4-vector of a row: the register-pipelined kernel (same bits; SWAX_RMSNORM_BWD=old: the
     * other, A/B and tests; read per call) */
    const char *e = getenv("SWAX_RMSNORM_BWD");
    if (al4 && D / 4 == row_threads((size_t)D / 4, 512) && !(e && !strcmp(e, "old"))) {
        rmsnorm_bwd_rows_kernel<4, float><<<nblk, D / 4, 0, st>>>(dinp, part, dout, inp, w, rstd, N, D, db);
    } else if (al4) {
        smem_optin(rmsnorm_bwd_kernel<4, float>, smem);
        rmsnorm_bwd_kernel<4, float><<<nblk, row_threads((size_t)D / 4, 512), smem, st>>>(dinp, part, dout, inp, w,
                                                                                         rstd, N, D, db);
    } else {
        smem_optin(rmsnorm_bwd_kernel<1, float>, smem);
        rmsnorm_bwd_kernel<1, float><<<nblk, row_threads((size_t)D, 512), smem, st>>>(dinp, part, dout, inp, w,
                                                                                     rstd, N, D, db);
    }
    SWAX_CUDA_LAUNCHED();
    colsum_add(dw, part, nblk, D);
}

extern "C" void swax_cuda_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                      const float *rstd, int N, int D) {
    rmsnorm_bwd_launch(dinp, dw, dout, inp, w, rstd, N, D, NULL);
}

/* The "cuda" table's slot: the updated dinp (the residual stream's gradient) also rounded to bf16 where
 * the next product's backward, which reads it as its dout (the output projections), looks for it
 * (ops_cuda.cu: swax_cuda_dout_bf16; the same bits as rounding it there) */
extern "C" void swax_cuda_rmsnorm_bwd_bf16(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                           const float *rstd, int N, int D) {
    rmsnorm_bwd_launch(dinp, dw, dout, inp, w, rstd, N, D,
                       N > 0 && D > 0 ? (__nv_bfloat16 *)swax_cuda_dout_bf16(dinp, D, N, D) : NULL);
}

extern "C" void swax_cuda_add(float *y, const float *x, size_t n) {
    if (n == 0) return;
    SWAX_CUDA_REQUIRE(y && x);
    cudaStream_t st = swax_cuda_stream();
    if (al16(y) && al16(x)) {
        add_kernel<4, float><<<flat_blocks(n / 4), FLAT_THREADS, 0, st>>>(y, x, n);
    } else {
        add_kernel<1, float><<<flat_blocks(n), FLAT_THREADS, 0, st>>>(y, x, n);
    }
    SWAX_CUDA_LAUNCHED();
}

/* 2-D grid for (N rows, F/W column groups). */
static dim3 rows_cols_grid(int N, size_t groups, int threads) {
    const unsigned gx = swax_ceil_div(groups, (size_t)threads);
    const unsigned gy = N < 65535 ? (unsigned)N : 65535u;
    return dim3(gx, gy);
}

/* gu: fp32 or a bf16-stored activation (ops.h alloc_act); h NULL: only hb. 4-wide when every
 * pointer allows it (gu: 16 bytes fp32, 8 bf16). */
template <typename G>
static void swiglu_fwd_go(float *h, const G *gu, int N, int F, __nv_bfloat16 *hb) {
    cudaStream_t st = swax_cuda_stream();
    if (F % 4 == 0 && al16(h) && al16(gu) && (!hb || ((uintptr_t)hb & 7) == 0)) {
        const int threads = row_threads((size_t)F / 4, 256);
        swiglu_fwd_kernel<4, float, G><<<rows_cols_grid(N, (size_t)F / 4, threads), threads, 0, st>>>(h, gu, N, F, hb);
    } else {
        const int threads = row_threads((size_t)F, 256);
        swiglu_fwd_kernel<1, float, G><<<rows_cols_grid(N, (size_t)F, threads), threads, 0, st>>>(h, gu, N, F, hb);
    }
    SWAX_CUDA_LAUNCHED();
}

/* side (the "cuda" table's slot): gu and h may be bf16-stored activations (ops.h alloc_act: read as
 * bf16; h written only as bf16); an fp32 h also gets, in training, its bf16 copy in the kept copy
 * the down product's forward would make (ops_cuda.cu: swax_cuda_fwd_bf16). */
static void swiglu_fwd_launch(float *h, const float *gu, int N, int F, bool side) {
    SWAX_CUDA_REQUIRE(N >= 0 && F >= 0);
    if (N == 0 || F == 0) return;
    SWAX_CUDA_REQUIRE(h && gu);
    const __nv_bfloat16 *gub = side ? (const __nv_bfloat16 *)swax_cuda_act_bf16(gu, 2L * F, N, 2 * F) : NULL;
    __nv_bfloat16 *hb = side ? (__nv_bfloat16 *)swax_cuda_act_bf16(h, F, N, F) : NULL;
    float *h32 = hb ? NULL : h;
    if (side && !hb) hb = (__nv_bfloat16 *)swax_cuda_fwd_bf16(h, F, N, F);
    if (gub)
        swiglu_fwd_go(h32, gub, N, F, hb);
    else
        swiglu_fwd_go(h32, gu, N, F, hb);
}

extern "C" void swax_cuda_swiglu_fwd(float *h, const float *gu, int N, int F) { swiglu_fwd_launch(h, gu, N, F, false); }
extern "C" void swax_cuda_swiglu_fwd_bf16(float *h, const float *gu, int N, int F) {
    swiglu_fwd_launch(h, gu, N, F, true);
}

/* gu and dh: fp32 or bf16-stored activations (ops.h alloc_act) */
template <typename G, typename H>
static void swiglu_bwd_go(float *dgu, const H *dh, const G *gu, int N, int F, __nv_bfloat16 *dbf, int w32) {
    cudaStream_t st = swax_cuda_stream();
    if (F % 4 == 0 && al16(dgu) && al16(dh) && al16(gu) && (!dbf || ((uintptr_t)dbf & 7) == 0)) {
        const int threads = row_threads((size_t)F / 4, 256);
        swiglu_bwd_kernel<4, float, G, H><<<rows_cols_grid(N, (size_t)F / 4, threads), threads, 0, st>>>(
            dgu, dh, gu, N, F, dbf, w32);
    } else {
        const int threads = row_threads((size_t)F, 256);
        swiglu_bwd_kernel<1, float, G, H><<<rows_cols_grid(N, (size_t)F, threads), threads, 0, st>>>(dgu, dh, gu, N, F,
                                                                                                     dbf, w32);
    }
    SWAX_CUDA_LAUNCHED();
}

template <typename G>
static void swiglu_bwd_dh(float *dgu, const float *dh, const __nv_bfloat16 *dhb, const G *gu, int N, int F,
                          __nv_bfloat16 *dbf, int w32) {
    if (dhb)
        swiglu_bwd_go(dgu, dhb, gu, N, F, dbf, w32);
    else
        swiglu_bwd_go(dgu, dh, gu, N, F, dbf, w32);
}

/* side (the "cuda" table's slot): d(gate, up) rounded to bf16 where the gate/up product's backward
 * will look for them (ops_cuda.cu: swax_cuda_dout_bf16; ~8.7 GB a bench-gpu step not read and
 * rounded again), and only there (swax_cuda_dout_bf16_only: another 8.7 GB of fp32 not written);
 * gu and dh may be bf16-stored activations. */
static void swiglu_bwd_launch(float *dgu, const float *dh, const float *gu, int N, int F, bool side) {
    SWAX_CUDA_REQUIRE(N >= 0 && F >= 0);
    if (N == 0 || F == 0) return;
    SWAX_CUDA_REQUIRE(dgu && dh && gu);
    int only = 0;
    __nv_bfloat16 *dbf = side ? (__nv_bfloat16 *)swax_cuda_dout_bf16_only(dgu, 2L * F, N, 2 * F, &only) : NULL;
    const __nv_bfloat16 *gub = side ? (const __nv_bfloat16 *)swax_cuda_act_bf16(gu, 2L * F, N, 2 * F) : NULL;
    const __nv_bfloat16 *dhb = side ? (const __nv_bfloat16 *)swax_cuda_act_bf16(dh, F, N, F) : NULL;
    if (gub)
        swiglu_bwd_dh(dgu, dh, dhb, gub, N, F, dbf, !only);
    else
        swiglu_bwd_dh(dgu, dh, dhb, gu, N, F, dbf, !only);
}

extern "C" void swax_cuda_swiglu_bwd(float *dgu, const float *dh, const float *gu, int N, int F) {
    swiglu_bwd_launch(dgu, dh, gu, N, F, false);
}
extern "C" void swax_cuda_swiglu_bwd_bf16(float *dgu, const float *dh, const float *gu, int N, int F) {
    swiglu_bwd_launch(dgu, dh, gu, N, F, true);
}

extern "C" void swax_cuda_mlstm_gates_fwd(float *ig, float *lf, const float *pre, long ldp, const float *bias, int N,
                                          int NH, float cap) {
    SWAX_CUDA_REQUIRE(N >= 0 && NH > 0 && ldp >= 2L * NH);
    if (N == 0) return;
    SWAX_CUDA_REQUIRE(ig && lf && pre && bias);
    const size_t total = (size_t)N * NH;
    gates_fwd_kernel<float><<<flat_blocks(total), FLAT_THREADS, 0, swax_cuda_stream()>>>(ig, lf, pre, ldp, bias, N,
                                                                                         NH, cap);
    SWAX_CUDA_LAUNCHED();
}

extern "C" void swax_cuda_mlstm_gates_bwd(float *dpre, long ldp, float *dbias, const float *dig, const float *dlf,
                                          const float *pre, long ldpre, const float *bias, int N, int NH,
                                          float cap) {
    SWAX_CUDA_REQUIRE(N >= 0 && NH > 0 && ldp >= 2L * NH && ldpre >= 2L * NH);
    if (N == 0) return;
    SWAX_CUDA_REQUIRE(dpre && dbias && dig && dlf && pre && bias);
    cudaStream_t st = swax_cuda_stream();
    const int nblk = (N + ROWBLK - 1) / ROWBLK, ncol = 2 * NH;
    float *part = (float *)swax_cuda_scratch(SWAX_SCRATCH_ELEMWISE, sizeof(float) * (size_t)nblk * ncol);
    const dim3 grid((unsigned)nblk, swax_ceil_div((size_t)ncol, 64));
    gates_bwd_kernel<float><<<grid, 64, 0, st>>>(dpre, ldp, part, dig, dlf, pre, ldpre, bias, N, NH, cap);
    SWAX_CUDA_LAUNCHED();
    colsum_add(dbias, part, nblk, ncol);
}

static void mlstm_out_fwd_launch(float *y, float *hn, float *mean, float *rstd, const float *h, const float *og,
                                 long ldog, const float *w, int N, int NH, int dv, float eps, __nv_bfloat16 *yb) {
    SWAX_CUDA_REQUIRE(N >= 0 && NH > 0 && dv > 0 && ldog >= (long)NH * dv);
    if (N == 0) return;
    SWAX_CUDA_REQUIRE(y && hn && mean && rstd && h && og && w);
    cudaStream_t st = swax_cuda_stream();
    const size_t segs = (size_t)N * NH;
    const int threads = 256, wpb = threads / 32;
    const unsigned blocks = swax_ceil_div(segs, (size_t)wpb);
    const bool og_al = al16(og) && ldog % 4 == 0;
    if (dv % 4 == 0 && al16(y) && al16(hn) && al16(h) && al16(w) && (!yb || ((uintptr_t)yb & 7) == 0)) {
        mlstm_out_fwd_kernel<4, float><<<blocks, threads, 0, st>>>(y, hn, mean, rstd, h, og, ldog, og_al, w, N, NH,
                                                                   dv, eps, yb);
    } else {
        mlstm_out_fwd_kernel<1, float><<<blocks, threads, 0, st>>>(y, hn, mean, rstd, h, og, ldog, false, w, N, NH,
                                                                   dv, eps, yb);
    }
    SWAX_CUDA_LAUNCHED();
}

extern "C" void swax_cuda_mlstm_out_fwd(float *y, float *hn, float *mean, float *rstd, const float *h,
                                        const float *og, long ldog, const float *w, int N, int NH, int dv,
                                        float eps) {
    mlstm_out_fwd_launch(y, hn, mean, rstd, h, og, ldog, w, N, NH, dv, eps, NULL);
}

/* The "cuda" table's slot: in training, also writes y rounded to bf16 into the kept copy the output
 * projection's forward would make (ops_cuda.cu: swax_cuda_fwd_bf16; the same bits) */
extern "C" void swax_cuda_mlstm_out_fwd_bf16(float *y, float *hn, float *mean, float *rstd, const float *h,
                                             const float *og, long ldog, const float *w, int N, int NH, int dv,
                                             float eps) {
    const int D = NH * dv;
    mlstm_out_fwd_launch(y, hn, mean, rstd, h, og, ldog, w, N, NH, dv, eps,
                         N > 0 && D > 0 ? (__nv_bfloat16 *)swax_cuda_fwd_bf16(y, D, N, D) : NULL);
}

extern "C" void swax_cuda_mlstm_out_bwd(float *dh, float *dog, long lddog, float *dw, const float *dy,
                                        const float *hn, const float *h, const float *mean, const float *rstd,
                                        const float *og, long ldog, const float *w, int N, int NH, int dv) {
    SWAX_CUDA_REQUIRE(N >= 0 && NH > 0 && dv > 0 && ldog >= (long)NH * dv && lddog >= (long)NH * dv);
    if (N == 0) return;
    SWAX_CUDA_REQUIRE(dh && dog && dw && dy && hn && h && mean && rstd && og && w);
    cudaStream_t st = swax_cuda_stream();
    const int D = NH * dv;
    const int nblk = (N + ROWBLK - 1) / ROWBLK;
    float *part = (float *)swax_cuda_scratch(SWAX_SCRATCH_ELEMWISE, sizeof(float) * (size_t)nblk * D);
    const int wpb = NH < OUTB_WARPS ? NH : OUTB_WARPS;
    const dim3 grid((unsigned)nblk, swax_ceil_div((size_t)NH, (size_t)wpb));
    const size_t smem = sizeof(float) * (size_t)wpb * dv;
    const bool og_al = al16(og) && ldog % 4 == 0, dog_al = al16(dog) && lddog % 4 == 0;
    if (dv % 4 == 0 && al16(dh) && al16(dy) && al16(hn) && al16(h) && al16(w) && al16(part)) {
        smem_optin(mlstm_out_bwd_kernel<4, float>, smem);
        mlstm_out_bwd_kernel<4, float><<<grid, wpb * 32, smem, st>>>(dh, dog, lddog, dog_al, part, dy, hn, h, mean,
                                                                      rstd, og, ldog, og_al, w, N, NH, dv);
    } else {
        smem_optin(mlstm_out_bwd_kernel<1, float>, smem);
        mlstm_out_bwd_kernel<1, float><<<grid, wpb * 32, smem, st>>>(dh, dog, lddog, false, part, dy, hn, h, mean,
                                                                      rstd, og, ldog, false, w, N, NH, dv);
    }
    SWAX_CUDA_LAUNCHED();
    colsum_add(dw, part, nblk, D);
}

extern "C" void swax_cuda_xent_fwd(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V,
                                   int Vused, float cap) {
    SWAX_CUDA_REQUIRE(N >= 0 && V > 0 && Vused >= 1 && Vused <= V);
    if (N == 0) return;
    SWAX_CUDA_REQUIRE(logits);
    cudaStream_t st = swax_cuda_stream();
    const float inv_cap = cap > 0 ? 1.0f / cap : 0.0f;
    if (V % 4 == 0 && al16(logits)) {
        xent_fwd_kernel<4, float><<<N, row_threads((size_t)V / 4, 1024), 0, st>>>(logits, lse, losses, targets, V,
                                                                                  Vused, cap, inv_cap);
    } else {
        xent_fwd_kernel<1, float><<<N, row_threads((size_t)V, 1024), 0, st>>>(logits, lse, losses, targets, V, Vused,
                                                                              cap, inv_cap);
    }
    SWAX_CUDA_LAUNCHED();
}

static void xent_bwd_launch(float *logits, const float *lse, const int32_t *targets, int N, int V, int Vused, float cap,
                            float scale, __nv_bfloat16 *dbf) {
    SWAX_CUDA_REQUIRE(N >= 0 && V > 0 && Vused >= 1 && Vused <= V);
    if (N == 0) return;
    SWAX_CUDA_REQUIRE(logits && lse && targets);
    cudaStream_t st = swax_cuda_stream();
    const float inv_cap = cap > 0 ? 1.0f / cap : 0.0f;
    if (V % 4 == 0 && al16(logits) && (!dbf || ((uintptr_t)dbf & 7) == 0)) {
        xent_bwd_kernel<4, float><<<N, row_threads((size_t)V / 4, 1024), 0, st>>>(logits, lse, targets, V, Vused, cap,
                                                                                  inv_cap, scale, dbf);
    } else {
        xent_bwd_kernel<1, float><<<N, row_threads((size_t)V, 1024), 0, st>>>(logits, lse, targets, V, Vused, cap,
                                                                              inv_cap, scale, dbf);
    }
    SWAX_CUDA_LAUNCHED();
}

extern "C" void swax_cuda_xent_bwd(float *logits, const float *lse, const int32_t *targets, int N, int V, int Vused,
                                   float cap, float scale) {
    xent_bwd_launch(logits, lse, targets, N, V, Vused, cap, scale, NULL);
}

/* The "cuda" table's slot: also leaves the d logits rounded to bf16 where the
 * head's backward product will look for them (ops_cuda.cu: swax_cuda_dout_bf16). */
extern "C" void swax_cuda_xent_bwd_bf16(float *logits, const float *lse, const int32_t *targets, int N, int V,
                                        int Vused, float cap, float scale) {
    __nv_bfloat16 *dbf = N > 0 ? (__nv_bfloat16 *)swax_cuda_dout_bf16(logits, V, N, V) : NULL;
    xent_bwd_launch(logits, lse, targets, N, V, Vused, cap, scale, dbf);
}

/* xent_train_kernel<W, T, ROW, FAST>: the shared row's bytes opted in where there is one */
template <int W, typename T, int ROW, bool FAST>
void xent_train_at(size_t row_bytes, cudaStream_t st, T *logits, float *lse, float *losses, const int32_t *targets,
                   int N, int V, int Vused, float cap, float inv_cap, float scale, int w32, __nv_bfloat16 *dbf) {
    const size_t smem = ROW == XR_GLOBAL ? 0 : row_bytes;
    if (smem) smem_optin(xent_train_kernel<W, T, ROW, FAST>, smem);
    xent_train_kernel<W, T, ROW, FAST><<<N, row_threads((size_t)V / W, 1024), smem, st>>>(
        logits, lse, losses, targets, V, Vused, cap, inv_cap, scale, w32, dbf);
}

/* xent_train_kernel<W> with its second pass from row (XR_*) and that row's shared bytes; T: the logits' type */
template <int W, bool FAST = false, typename T>
void xent_train_go(int row, size_t row_bytes, cudaStream_t st, T *logits, float *lse, float *losses,
                   const int32_t *targets, int N, int V, int Vused, float cap, float inv_cap, float scale, int w32,
                   __nv_bfloat16 *dbf) {
    if (row == XR_CAPPED)
        xent_train_at<W, T, XR_CAPPED, FAST>(row_bytes, st, logits, lse, losses, targets, N, V, Vused, cap, inv_cap,
                                             scale, w32, dbf);
    else if (row == XR_RAW)
        xent_train_at<W, T, XR_RAW, FAST>(row_bytes, st, logits, lse, losses, targets, N, V, Vused, cap, inv_cap,
                                          scale, w32, dbf);
    else
        xent_train_at<W, T, XR_GLOBAL, FAST>(row_bytes, st, logits, lse, losses, targets, N, V, Vused, cap, inv_cap,
                                             scale, w32, dbf);
}

/* Whether bf16 logits take xent_train_kernel's fast arithmetic (FAST: where 1 <= cap <= XENT_FAST_CAP; below 1
 * its 1/cap² term could overflow for absurd caps, so those take the accurate kernel);
 * SWAX_XENT_FAST=1 (opt-in until a GPU run has timed and checked it; read per call, like SWAX_XENT_ROW, so
 * that tests switch it in one process). */
static bool xent_fast_on(float cap) {
    const char *e = getenv("SWAX_XENT_FAST");
    return cap >= 1.0f && cap <= XENT_FAST_CAP && e && !strcmp(e, "1");
}

/* Where the second pass reads the row (xent_train_kernel): SWAX_XENT_ROW=0 re-reads it from global memory,
 * =raw keeps the raw row in shared memory, otherwise (default) the capped row; each where it fits (read per
 * call: A/B runs and tests in one process). Every choice gives the same bits. */
static int xent_row_choice(size_t V, size_t elem, size_t *bytes) {
    const char *e = getenv("SWAX_XENT_ROW");
    if (e && !strcmp(e, "0")) return XR_GLOBAL;
    const bool raw = e && !strcmp(e, "raw");
    *bytes = raw ? ((elem * V + 15) / 16) * 16 + sizeof(float) * SWAX_SMEM_SLACK : swax_smem_f(V);
    return *bytes <= SMEM_MAX ? (raw ? XR_RAW : XR_CAPPED) : XR_GLOBAL;
}

/* logits fp32, or (lb) a bf16-stored chunk whose d logits are written in place in bf16 */
static void xent_train_launch(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V,
                              int Vused, float cap, float scale, __nv_bfloat16 *dbf, int only,
                              __nv_bfloat16 *lb = NULL) {
    SWAX_CUDA_REQUIRE(N >= 0 && V > 0 && Vused >= 1 && Vused <= V);
    if (N == 0) return;
    SWAX_CUDA_REQUIRE(logits && targets);
    cudaStream_t st = swax_cuda_stream();
    const float inv_cap = cap > 0 ? 1.0f / cap : 0.0f;
    const int w32 = !dbf || !only;
    size_t row_bytes = 0;
    const int row = xent_row_choice((size_t)V, lb ? sizeof(__nv_bfloat16) : sizeof(float), &row_bytes);
    if (lb) {
        SWAX_CUDA_REQUIRE(dbf == lb && !w32);
        const bool vec = V % 4 == 0 && al16(lb), fast = xent_fast_on(cap);
        if (vec && fast)
            xent_train_go<4, true>(row, row_bytes, st, lb, lse, losses, targets, N, V, Vused, cap, inv_cap, scale, 0,
                                   lb);
        else if (vec)
            xent_train_go<4>(row, row_bytes, st, lb, lse, losses, targets, N, V, Vused, cap, inv_cap, scale, 0, lb);
        else if (fast)
            xent_train_go<1, true>(row, row_bytes, st, lb, lse, losses, targets, N, V, Vused, cap, inv_cap, scale, 0,
                                   lb);
        else
            xent_train_go<1>(row, row_bytes, st, lb, lse, losses, targets, N, V, Vused, cap, inv_cap, scale, 0, lb);
    } else if (V % 4 == 0 && al16(logits) && (!dbf || ((uintptr_t)dbf & 7) == 0)) {
        xent_train_go<4>(row, row_bytes, st, logits, lse, losses, targets, N, V, Vused, cap, inv_cap, scale, w32, dbf);
    } else {
        xent_train_go<1>(row, row_bytes, st, logits, lse, losses, targets, N, V, Vused, cap, inv_cap, scale, w32, dbf);
    }
    SWAX_CUDA_LAUNCHED();
}

extern "C" void swax_cuda_xent_train(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V,
                                     int Vused, float cap, float scale) {
    xent_train_launch(logits, lse, losses, targets, N, V, Vused, cap, scale, NULL, 0);
}

/* The "cuda" table's slot: the d logits only as the bf16 copy the head's
 * backward product takes (the fp32 row is neither capped in place nor
 * overwritten: ~13 GB a bench-gpu step not written or read); in fp32 too
 * when that copy is off (SWAX_BF16_DOUT=0) or not alone (SWAX_BF16_ONLY=0). */
extern "C" void swax_cuda_xent_train_bf16(float *logits, float *lse, float *losses, const int32_t *targets, int N,
                                          int V, int Vused, float cap, float scale) {
    /* a bf16-stored logits chunk (ops.h alloc_act): read as bf16, the d logits written over it in bf16 (the head's
     * backward product takes them from there) */
    __nv_bfloat16 *lb = N > 0 ? (__nv_bfloat16 *)swax_cuda_act_bf16(logits, V, N, V) : NULL;
    if (lb) return xent_train_launch(logits, lse, losses, targets, N, V, Vused, cap, scale, lb, 1, lb);
    int only = 0;
    __nv_bfloat16 *dbf = N > 0 ? (__nv_bfloat16 *)swax_cuda_dout_bf16_only(logits, V, N, V, &only) : NULL;
    xent_train_launch(logits, lse, losses, targets, N, V, Vused, cap, scale, dbf, only);
}

/* The step's constants, computed on the host exactly as the CPU computes them. */
static AdamArgs adam_args(float lr, float b1, float b2, float eps, float wd, int step) {
    const float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
    AdamArgs a;
    a.decay = 1.0f - lr * wd;
    a.b1 = b1, a.omb1 = 1.0f - b1;
    a.b2 = b2, a.omb2 = 1.0f - b2;
    a.eps = eps;
    a.step_size = lr / bc1;
    a.bc2_sqrt = sqrtf(bc2);
    return a;
}

extern "C" void swax_cuda_adamw_segs(float *p, const float *g, float *m, float *v, size_t n, const size_t *start,
                                     const uint8_t *decay, int nseg, float gscale, float lr, float b1, float b2,
                                     float eps, float wd, int step) {
    if (n == 0) return;
    SWAX_CUDA_REQUIRE(p && g && m && v && step >= 1 && nseg >= 1 && start[0] == 0 && start[nseg] == n);
    const AdamArgs a = adam_args(lr, b1, b2, eps, wd, step);
    cudaStream_t st = swax_cuda_stream();
    const bool vec = al16(p) && al16(g) && al16(m) && al16(v);
    for (int s0 = 0; s0 < nseg; s0 += SEG_MAX) { /* one launch per SEG_MAX segments */
        AdamSegs sg;
        memset(&sg, 0, sizeof sg);
        sg.nseg = nseg - s0 < SEG_MAX ? nseg - s0 : SEG_MAX;
        for (int i = 0; i <= sg.nseg; i++) sg.start[i] = start[s0 + i];
        for (int i = 0; i < sg.nseg; i++)
            if (decay[s0 + i]) sg.decay[i >> 5] |= 1u << (i & 31);
        const size_t len = sg.start[sg.nseg] - sg.start[0];
        if (vec) adamw_segs_kernel<4><<<flat_blocks(len / 4 + 2), FLAT_THREADS, 0, st>>>(p, g, m, v, a, gscale, sg);
        else adamw_segs_kernel<1><<<flat_blocks(len), FLAT_THREADS, 0, st>>>(p, g, m, v, a, gscale, sg);
        SWAX_CUDA_LAUNCHED();
    }
}

extern "C" void swax_cuda_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2,
                                float eps, float wd, int step) {
    if (n == 0) return;
    SWAX_CUDA_REQUIRE(p && g && m && v && step >= 1);
    const AdamArgs a = adam_args(lr, b1, b2, eps, wd, step);
    cudaStream_t st = swax_cuda_stream();
    if (al16(p) && al16(g) && al16(m) && al16(v)) {
        adamw_kernel<4><<<flat_blocks(n / 4), FLAT_THREADS, 0, st>>>(p, g, m, v, n, a);
    } else {
        adamw_kernel<1><<<flat_blocks(n), FLAT_THREADS, 0, st>>>(p, g, m, v, n, a);
    }
    SWAX_CUDA_LAUNCHED();
}

/* Waits for the stream: the slot returns a host value. */
extern "C" double swax_cuda_sumsq(const float *x, size_t n) {
    if (n == 0) return 0.0;
    SWAX_CUDA_REQUIRE(x);
    const size_t nb = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    SWAX_CUDA_REQUIRE(nb < (size_t)INT32_MAX);
    cudaStream_t st = swax_cuda_stream();
    double *buf = (double *)swax_cuda_scratch(SWAX_SCRATCH_REDUCE, sizeof(double) * (nb + 1));
    sumsq_partial_kernel<<<(unsigned)nb, SUMSQ_THREADS, 0, st>>>(buf + 1, x, n, al16(x));
    SWAX_CUDA_LAUNCHED();
    sumsq_final_kernel<<<1, 1024, 0, st>>>(buf, buf + 1, (int)nb);
    SWAX_CUDA_LAUNCHED();
    double s = 0.0;
    SWAX_CUDA_CHECK(cudaMemcpyAsync(&s, buf, sizeof(double), cudaMemcpyDeviceToHost, st));
    SWAX_CUDA_CHECK(cudaStreamSynchronize(st));
    return s;
}

extern "C" void swax_cuda_scale(float *x, size_t n, float s) {
    if (n == 0) return;
    SWAX_CUDA_REQUIRE(x);
    cudaStream_t st = swax_cuda_stream();
    if (al16(x)) {
        scale_kernel<4, float><<<flat_blocks(n / 4), FLAT_THREADS, 0, st>>>(x, n, s);
    } else {
        scale_kernel<1, float><<<flat_blocks(n), FLAT_THREADS, 0, st>>>(x, n, s);
    }
    SWAX_CUDA_LAUNCHED();
}
