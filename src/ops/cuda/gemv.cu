/* gemv.cu — the batch-small bf16 product of decode: out (N, OC) =
 * round_bf16(inp) (N, C) · w (OC, C)ᵀ for N = 1..8, fp32 accumulation
 * (gemv.h has the contract). At N <= 8 the product is a pass over the weights
 * (2·OC·C bytes against 2·N·OC·C flops), so the kernel is built to stream
 * them at the memory's rate and read each weight byte once for all N rows:
 *
 *  - a block is 256 threads, 8 warps; a warp owns R = 4 output rows and KS
 *    warps (1, 2, 4 or 8; KS chosen from OC, C and the SM count only) share a
 *    row group, splitting C between them: a block covers 8/KS row groups,
 *    32/KS rows, and walks its row groups grid-stride (a persistent grid of
 *    blocks-per-SM × SMs blocks, from the occupancy calculator);
 *  - lane `l` of k-warp `ks` reads the 16-byte vectors (8 bf16) v = ks·32 + l
 *    + m·32·KS of each of its 4 rows, m = 0, 1, ...: a warp load is 512
 *    contiguous bytes of one row, U vectors per row in one batch (U = 4 at
 *    N <= 2, else 2), R·U independent 16-byte loads (8 KB or 4 KB a warp) in
 *    flight before the first use (ld.global.nc.L1::no_allocate.v4);
 *  - the N input rows are rounded to bf16 once per block and staged in
 *    shared memory (N·C·2 bytes), read back as 16-byte vectors that line up
 *    with the weight vectors (conflict-free); the first batch of weight loads
 *    is issued before the staging, so staging hides under that latency;
 *  - each lane accumulates, for every (input row n, output row r), its
 *    vectors in ascending m and each vector's 8 elements in order (fmaf);
 *    then a butterfly sum over the warp (swax_warp_sum), then, for KS > 1, a
 *    sum over the k-warps in ascending ks through shared memory. No atomics;
 *    the order depends on KS only, so N does not change any row's bits.
 *
 *  - it launches with programmatic dependent launch (SWAX_PDL=0: not): its blocks
 *    may start while the previous kernel on the stream finishes (the kernels
 *    that precede decode products trigger early: swax_pdl_trigger) and load
 *    their first weights; everything else waits in swax_pdl_wait. So no
 *    kernel since the last launch without PDL may write the weights: each
 *    gemv triggers at once, so in X -> gemv -> gemv the second one's first
 *    loads may overlap X too. Decode reads the static bf16 shadow; a weight
 *    converted just before (the scratch copy) gets GEMV_NO_PDL.
 *
 * Shapes outside this (C % 8 != 0, w not 16-byte aligned, N > 8, staged
 * input beyond shared memory) return nonzero before launching: the caller
 * uses cuBLASLt. */
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/gemv.h"

namespace {

constexpr int GEMV_THREADS = 256;
constexpr int GEMV_WARPS = GEMV_THREADS / 32;
constexpr int GEMV_R = 4;     /* output rows per warp */
constexpr int GEMV_MAX_N = 8; /* input rows */
constexpr int GEMV_MAX_DEV = 64;

/* weight vectors per row per lane in one batch of loads */
template <int N>
struct GemvU {
    static constexpr int value = N <= 2 ? 4 : 2;
};

struct GemvArgs {
    float *out;
    long ldo;
    const float *resid; /* NULL, or added to each output in the store: (N, OC), stride ldo */
    const float *inp;
    long ldi;
    const uint4 *w; /* (OC, C8) 16-byte vectors of 8 bf16 */
    int C8, OC;
    int KS;  /* warps per row group (1, 2, 4, 8) */
    int T;   /* batches of loads per row group */
    int nBG; /* block row groups of 32/KS rows */
    int vec_in;
    int mode;         /* GEMV_IN_*: what the staging makes of the input rows */
    const float *nw;  /* GEMV_IN_RMSNORM: the norm's weights (C) */
    float eps;        /* GEMV_IN_RMSNORM */
};

/* A 16-byte load of weights that are read once (not kept in L1), predicated:
 * zero when `pred` is 0 (p is then not dereferenced). One predicated load, no
 * branch, whatever the compiler would make of a conditional. */
__device__ __forceinline__ uint4 ld_stream16(const uint4 *p, int pred) {
    uint4 v;
    asm("{\n\t.reg .pred p;\n\t"
        "setp.ne.b32 p, %5, 0;\n\t"
        "mov.b32 %0, 0;\n\tmov.b32 %1, 0;\n\tmov.b32 %2, 0;\n\tmov.b32 %3, 0;\n\t"
        "@p ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n\t}"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p), "r"(pred));
    return v;
}

/* 8 bf16 (element 2i in the low half of word i) as 8 floats, exactly. */
__device__ __forceinline__ void unpack8(const uint4 u, float (&f)[8]) {
    f[0] = __uint_as_float(u.x << 16), f[1] = __uint_as_float(u.x & 0xffff0000u);
    f[2] = __uint_as_float(u.y << 16), f[3] = __uint_as_float(u.y & 0xffff0000u);
    f[4] = __uint_as_float(u.z << 16), f[5] = __uint_as_float(u.z & 0xffff0000u);
    f[6] = __uint_as_float(u.w << 16), f[7] = __uint_as_float(u.w & 0xffff0000u);
}

/* One batch: vectors vbase + j·vstride (j < U) of rows row0 .. row0 + R - 1.
 * Rows past OC read row OC - 1 (valid memory; never stored); vectors past the
 * row's end are zero (and skipped by gemv_fma). */
template <int N>
__device__ __forceinline__ void gemv_load(uint4 (&wv)[GemvU<N>::value][GEMV_R], const uint4 *__restrict__ w, int row0,
                                          int OC, int C8, int vbase, int vstride) {
#pragma unroll
    for (int r = 0; r < GEMV_R; r++) {
        const uint4 *wr = w + (size_t)min(row0 + r, OC - 1) * (size_t)C8;
#pragma unroll
        for (int j = 0; j < GemvU<N>::value; j++) {
            const int v = vbase + j * vstride;
            wv[j][r] = ld_stream16(wr + v, v < C8);
        }
    }
}

/* acc[n][r] += x[n][8v .. 8v+7] · w[r][8v .. 8v+7] for the batch's vectors,
 * in ascending vector order, each vector's elements in order. */
template <int N>
__device__ __forceinline__ void gemv_fma(float (&acc)[N][GEMV_R], const uint4 (&wv)[GemvU<N>::value][GEMV_R],
                                         const uint4 *xs, int C8, int vbase, int vstride) {
#pragma unroll
    for (int j = 0; j < GemvU<N>::value; j++) {
        const int v = vbase + j * vstride;
        if (v < C8) {
            float wf[GEMV_R][8];
#pragma unroll
            for (int r = 0; r < GEMV_R; r++) unpack8(wv[j][r], wf[r]);
#pragma unroll
            for (int n = 0; n < N; n++) {
                float xf[8];
                unpack8(xs[n * C8 + v], xf);
#pragma unroll
                for (int r = 0; r < GEMV_R; r++)
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[n][r] = __fmaf_rn(xf[e], wf[r][e], acc[n][r]);
            }
        }
    }
}

/* The input transforms of the staging (gemv.h: swax_cuda_gemv_bf16_in), each
 * the expression of the kernel it replaces (elementwise.cu), so the rounded
 * operand has those bits (RMSNorm: all but rs, whose sum of squares is
 * reduced in this block's order):
 *   GEMV_IN_RMSNORM  x · rs · nw[c], rs = 1 / sqrt(Σ x² / C + eps) per row;
 *   GEMV_IN_SWIGLU   g · σ(g) · u, g = row[c], u = row[C + c]. */
__device__ __forceinline__ float gemv_in(const GemvArgs &a, const float *row, int n, int c, const float *rs) {
    if (a.mode == GEMV_IN_RMSNORM) return row[c] * rs[n] * a.nw[c];
    if (a.mode == GEMV_IN_SWIGLU) {
        const float g = row[c];
        return g * sigmoid_acc(g) * row[a.C8 * 8 + c];
    }
    return row[c];
}

/* The N input rows (transformed, gemv_in) rounded to bf16 (nearest even) into
 * shared memory, dense: row n at xs + n·C8 (C8 vectors of 8). vec_in: inp
 * 16-byte aligned and ldi % 4 == 0 (float4 loads). nrm: shared scratch of
 * (GEMV_WARPS + 1)·N floats for GEMV_IN_RMSNORM (its barriers are reached by
 * every thread). */
template <int N>
__device__ __forceinline__ void gemv_stage(uint4 *xs, const GemvArgs &a, float *nrm) {
    const float *__restrict__ inp = a.inp;
    const long ldi = a.ldi;
    const int C8 = a.C8, C = 8 * C8;
    __nv_bfloat162 *x2 = reinterpret_cast<__nv_bfloat162 *>(xs);
    const int C2 = C8 * 4; /* bf16 pairs per row */
    const float *rs = nrm + GEMV_WARPS * N;
    if (a.mode == GEMV_IN_RMSNORM) { /* Σ x² per row: thread partials, warp butterflies, warps in order */
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
        for (int n = 0; n < N; n++) {
            const float *src = inp + (size_t)n * (size_t)ldi;
            float ss = 0.0f;
            for (int i = threadIdx.x; i < C; i += GEMV_THREADS) ss += src[i] * src[i];
            ss = swax_warp_sum(ss);
            if (lane == 0) nrm[warp * N + n] = ss;
        }
        __syncthreads();
        if (threadIdx.x < N) {
            float t = 0.0f;
            for (int k = 0; k < GEMV_WARPS; k++) t += nrm[k * N + threadIdx.x];
            nrm[GEMV_WARPS * N + threadIdx.x] = 1.0f / sqrtf(t / C + a.eps);
        }
        __syncthreads();
    }
    if (a.mode == GEMV_IN_NONE && a.vec_in) {
#pragma unroll
        for (int n = 0; n < N; n++) {
            const float4 *src = reinterpret_cast<const float4 *>(inp + (size_t)n * (size_t)ldi);
            __nv_bfloat162 *dst = x2 + (size_t)n * C2;
#pragma unroll 4
            for (int i = threadIdx.x; i < 2 * C8; i += GEMV_THREADS) {
                const float4 f = src[i];
                dst[2 * i] = __floats2bfloat162_rn(f.x, f.y);
                dst[2 * i + 1] = __floats2bfloat162_rn(f.z, f.w);
            }
        }
    } else {
#pragma unroll
        for (int n = 0; n < N; n++) {
            const float *src = inp + (size_t)n * (size_t)ldi;
            __nv_bfloat162 *dst = x2 + (size_t)n * C2;
#pragma unroll 4
            for (int i = threadIdx.x; i < C2; i += GEMV_THREADS)
                dst[i] = __floats2bfloat162_rn(gemv_in(a, src, n, 2 * i, rs), gemv_in(a, src, n, 2 * i + 1, rs));
        }
    }
}

/* The warp's sums for its rows of block group starting at row `brow`: stored
 * (KS = 1), or summed over the KS k-warps in ascending order through `red`
 * (8 warps × N × R floats) and stored. The KS > 1 branch holds two barriers:
 * every warp of the block reaches it equally often. */
/* out[n][row] = s, or s + resid[n][row] (one fp32 add: the bits of a product then an add) */
__device__ __forceinline__ void gemv_store(const GemvArgs &a, int n, int row, float s) {
    const size_t i = (size_t)n * (size_t)a.ldo + (size_t)row;
    a.out[i] = a.resid ? s + a.resid[i] : s;
}

template <int N>
__device__ __forceinline__ void gemv_finish(const GemvArgs &a, float (&acc)[N][GEMV_R], float *red, int brow, int rw,
                                            int lane, int warp) {
    constexpr int R = GEMV_R;
    if (a.KS == 1) {
        const int row0 = brow + rw * R;
#pragma unroll
        for (int n = 0; n < N; n++)
#pragma unroll
            for (int r = 0; r < R; r++) {
                const float s = swax_warp_sum(acc[n][r]);
                if (lane == n * R + r && row0 + r < a.OC) gemv_store(a, n, row0 + r, s);
            }
        return;
    }
#pragma unroll
    for (int n = 0; n < N; n++)
#pragma unroll
        for (int r = 0; r < R; r++) {
            const float s = swax_warp_sum(acc[n][r]);
            if (lane == n * R + r) red[(warp * N + n) * R + r] = s;
        }
    __syncthreads();
    const int RW = GEMV_WARPS / a.KS;
    for (int i = threadIdx.x; i < RW * N * R; i += GEMV_THREADS) {
        const int r = i % R, n = (i / R) % N, q = i / (R * N);
        const float *p = red + (q * a.KS * N + n) * R + r; /* warp q·KS + k at p + k·N·R */
        float s = p[0];
        for (int k = 1; k < a.KS; k++) s += p[k * N * R];
        const int row = brow + q * R + r;
        if (row < a.OC) gemv_store(a, n, row, s);
    }
    __syncthreads(); /* red is written again by the next group */
}

template <int N>
__global__ void __launch_bounds__(GEMV_THREADS, 2) k_gemv_bf16(const GemvArgs a) {
    constexpr int U = GemvU<N>::value, R = GEMV_R;
    extern __shared__ uint4 gemv_smem[];
    uint4 *xs = gemv_smem;                                       /* N × C8 vectors */
    float *red = reinterpret_cast<float *>(xs + (size_t)N * a.C8); /* 8 × N × R (KS > 1) */
    float *nrm = red + (a.KS > 1 ? GEMV_WARPS * N * GEMV_R : 0);    /* (8 + 1) × N (GEMV_IN_RMSNORM) */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int KS = a.KS, rw = warp / KS, ks = warp % KS;
    const int BR = (GEMV_WARPS / KS) * R; /* rows per block group */
    const int vstride = 32 * KS, v0 = ks * 32 + lane, vbatch = U * vstride;

    swax_pdl_trigger(); /* the next decode product may start loading its weights */
    /* the first batch in flight before the staging (and, launched with PDL, before the previous kernel is done:
     * the weights are the only memory read before swax_pdl_wait) */
    uint4 wv[U][R];
    int bg = blockIdx.x, t = 0;
    if (bg < a.nBG) {
        gemv_load<N>(wv, a.w, bg * BR + rw * R, a.OC, a.C8, v0, vstride);
    } else {
#pragma unroll
        for (int j = 0; j < U; j++)
#pragma unroll
            for (int r = 0; r < R; r++) wv[j][r] = make_uint4(0u, 0u, 0u, 0u);
    }
    swax_pdl_wait(); /* the input, the residual and the output: after every earlier grid */
    gemv_stage<N>(xs, a, nrm);
    __syncthreads();

    float acc[N][R];
#pragma unroll
    for (int n = 0; n < N; n++)
#pragma unroll
        for (int r = 0; r < R; r++) acc[n][r] = 0.0f;
    while (bg < a.nBG) { /* the same trip count for every warp of the block */
        gemv_fma<N>(acc, wv, xs, a.C8, v0 + t * vbatch, vstride);
        int nt = t + 1, nbg = bg;
        if (nt == a.T) nt = 0, nbg += gridDim.x;
        if (nbg < a.nBG) gemv_load<N>(wv, a.w, nbg * BR + rw * R, a.OC, a.C8, v0 + nt * vbatch, vstride);
        if (nt == 0) { /* the row group is done (the next one's loads are in flight) */
            gemv_finish<N>(a, acc, red, bg * BR, rw, lane, warp);
#pragma unroll
            for (int n = 0; n < N; n++)
#pragma unroll
                for (int r = 0; r < R; r++) acc[n][r] = 0.0f;
        }
        t = nt, bg = nbg;
    }
}

/* ---------------------------------------------------------------- launch */

/* What a launch needs to know about the device, read once per device. */
typedef struct {
    int ready, sms, smem_optin;
    int attr_set[GEMV_MAX_N + 1];
} GemvDev;
static GemvDev gemv_dev[GEMV_MAX_DEV];

/* Blocks per SM from the occupancy calculator, per (device, N, shared bytes). */
typedef struct {
    int dev, N, bps;
    size_t smem;
} GemvOcc;
enum { GEMV_OCC_CAP = 128 };
static GemvOcc gemv_occ[GEMV_OCC_CAP];
static int gemv_nocc;

static GemvDev *gemv_device(int *dev_out) {
    int dev = -1;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= GEMV_MAX_DEV) {
        cudaGetLastError();
        return nullptr;
    }
    GemvDev *d = &gemv_dev[dev];
    if (!d->ready) {
        if (cudaDeviceGetAttribute(&d->sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&d->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess ||
            d->sms < 1) {
            cudaGetLastError();
            return nullptr;
        }
        d->ready = 1;
    }
    *dev_out = dev;
    return d;
}

/* Warps per row group: 1, doubled (up to 8) while the row groups times KS
 * give fewer than 8 warps per SM and every k-warp still gets at least one
 * 32-vector stretch of a row. Depends on OC, C and the SM count only (the
 * summation order follows it). */
static int gemv_ks(int OC, int C8, int sms) {
    const long groups = ((long)OC + GEMV_R - 1) / GEMV_R;
    int ks = 1;
    while (ks < GEMV_WARPS && groups * ks < 8L * sms && 64L * ks <= C8) ks *= 2;
    return ks;
}

/* The launch configuration of one call: KS, batches per group, block groups,
 * shared bytes, grid (blocks-per-SM × SMs at most). Nonzero when the shape
 * cannot run (shared memory, occupancy). */
typedef struct {
    int KS, T, nBG, grid;
    size_t smem;
} GemvPlan;

template <int N>
static int gemv_plan(GemvPlan *p, int dev, GemvDev *d, int C8, int OC, int mode) {
    constexpr int U = GemvU<N>::value;
    p->KS = gemv_ks(OC, C8, d->sms);
    const int M = (C8 + 32 * p->KS - 1) / (32 * p->KS); /* vectors per lane per row, at most */
    p->T = (M + U - 1) / U;
    const int BR = (GEMV_WARPS / p->KS) * GEMV_R;
    p->nBG = (int)(((long)OC + BR - 1) / BR);
    p->smem = sizeof(uint4) * (size_t)N * (size_t)C8 +
              (p->KS > 1 ? sizeof(float) * (size_t)GEMV_WARPS * N * GEMV_R : 0) +
              (mode == GEMV_IN_RMSNORM ? sizeof(float) * (size_t)(GEMV_WARPS + 1) * N : 0);
    if (p->smem > (size_t)d->smem_optin) return 1;
    if (!d->attr_set[N]) { /* once per device and N: any size up to the opt-in limit; shared over L1 */
        if (cudaFuncSetAttribute(k_gemv_bf16<N>, cudaFuncAttributeMaxDynamicSharedMemorySize, d->smem_optin) !=
                cudaSuccess ||
            cudaFuncSetAttribute(k_gemv_bf16<N>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                 cudaSharedmemCarveoutMaxShared) != cudaSuccess) {
            cudaGetLastError();
            return 1;
        }
        d->attr_set[N] = 1;
    }
    int bps = -1;
    for (int i = 0; i < gemv_nocc; i++)
        if (gemv_occ[i].dev == dev && gemv_occ[i].N == N && gemv_occ[i].smem == p->smem) bps = gemv_occ[i].bps;
    if (bps < 0) {
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&bps, k_gemv_bf16<N>, GEMV_THREADS, p->smem) !=
            cudaSuccess) {
            cudaGetLastError();
            return 1;
        }
        if (gemv_nocc < GEMV_OCC_CAP) gemv_occ[gemv_nocc++] = GemvOcc{dev, N, bps, p->smem};
    }
    if (bps < 1) return 1;
    p->grid = (int)std::min<long>((long)p->nBG, (long)bps * d->sms);
    return 0;
}

/* Launch the products with programmatic dependent launch unless SWAX_PDL=0 (read per call: A/B runs and
 * tests in one process). Run 10 (H100, 1.4b decode at batch 1): 2.014 -> 1.913 ms a step. */
static bool gemv_pdl() {
    const char *e = getenv("SWAX_PDL");
    return !(e && !strcmp(e, "0"));
}

template <int N>
static int gemv_launch(GemvArgs a, cudaStream_t st, bool pdl) {
    int dev = -1;
    GemvDev *d = gemv_device(&dev);
    if (!d) return 1;
    GemvPlan p;
    if (gemv_plan<N>(&p, dev, d, a.C8, a.OC, a.mode)) return 1;
    a.KS = p.KS, a.T = p.T, a.nBG = p.nBG;
    if (pdl) { /* programmatic dependent launch: may start while the previous kernel finishes */
        cudaLaunchConfig_t cfg = {};
        cudaLaunchAttribute at[1];
        at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.gridDim = dim3((unsigned)p.grid), cfg.blockDim = dim3(GEMV_THREADS), cfg.dynamicSmemBytes = p.smem;
        cfg.stream = st, cfg.attrs = at, cfg.numAttrs = 1;
        SWAX_CUDA_CHECK(cudaLaunchKernelEx(&cfg, k_gemv_bf16<N>, a));
    } else {
        k_gemv_bf16<N><<<p.grid, GEMV_THREADS, p.smem, st>>>(a);
    }
    SWAX_CUDA_LAUNCHED();
    return 0;
}

} // namespace

extern "C" int swax_cuda_gemv_bf16(float *out, long ldo, const float *inp, long ldi, const void *w_bf16, int N, int C,
                                   int OC, void *stream) {
    return swax_cuda_gemv_bf16_add(out, ldo, inp, ldi, w_bf16, N, C, OC, NULL, stream);
}

extern "C" int swax_cuda_gemv_bf16_add(float *out, long ldo, const float *inp, long ldi, const void *w_bf16, int N,
                                       int C, int OC, const float *resid, void *stream) {
    return swax_cuda_gemv_bf16_in(out, ldo, inp, ldi, w_bf16, N, C, OC, resid, GEMV_IN_NONE, NULL, 0.0f, stream);
}

extern "C" int swax_cuda_gemv_bf16_in(float *out, long ldo, const float *inp, long ldi, const void *w_bf16, int N,
                                      int C, int OC, const float *resid, int mode, const float *nw, float eps,
                                      void *stream) {
    const bool pdl = !(mode & GEMV_NO_PDL) && gemv_pdl();
    mode &= ~GEMV_NO_PDL;
    const long need = mode == GEMV_IN_SWIGLU ? 2L * C : C; /* a SwiGLU row holds gate and up */
    if (N < 1 || N > GEMV_MAX_N || C < 8 || C % 8 != 0 || OC < 1 || ldi < need || ldo < OC) return 1;
    if (!out || !inp || !w_bf16 || ((uintptr_t)w_bf16 & 15) != 0 || resid == out) return 1;
    if (mode != GEMV_IN_NONE && mode != GEMV_IN_RMSNORM && mode != GEMV_IN_SWIGLU) return 1;
    if (mode == GEMV_IN_RMSNORM && !nw) return 1;
    GemvArgs a;
    a.out = out, a.ldo = ldo, a.resid = resid, a.inp = inp, a.ldi = ldi;
    a.w = static_cast<const uint4 *>(w_bf16);
    a.C8 = C / 8, a.OC = OC;
    a.KS = 1, a.T = 1, a.nBG = 0;
    a.vec_in = ((uintptr_t)inp & 15) == 0 && ldi % 4 == 0;
    a.mode = mode, a.nw = nw, a.eps = eps;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    switch (N) {
    case 1: return gemv_launch<1>(a, st, pdl);
    case 2: return gemv_launch<2>(a, st, pdl);
    case 3: return gemv_launch<3>(a, st, pdl);
    case 4: return gemv_launch<4>(a, st, pdl);
    case 5: return gemv_launch<5>(a, st, pdl);
    case 6: return gemv_launch<6>(a, st, pdl);
    case 7: return gemv_launch<7>(a, st, pdl);
    default: return gemv_launch<8>(a, st, pdl);
    }
}

/* ---------------------------------------------------------------- timing */

namespace {

__device__ __forceinline__ float hash_unit(size_t i, uint32_t seed) { /* in [-1, 1) */
    uint32_t x = (uint32_t)i * 2654435761u ^ (uint32_t)(i >> 32) * 40503u ^ seed;
    x ^= x >> 16, x *= 0x7feb352du, x ^= x >> 15, x *= 0x846ca68bu, x ^= x >> 16;
    return (float)(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

__global__ void k_fill_bf16(__nv_bfloat16 *p, size_t n, uint32_t seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = __float2bfloat16_rn(hash_unit(i, seed));
}

__global__ void k_fill_f32(float *p, size_t n, uint32_t seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = 2.0f * hash_unit(i, seed);
}

int cmp_float(const void *x, const void *y) {
    const float a = *static_cast<const float *>(x), b = *static_cast<const float *>(y);
    return (a > b) - (a < b);
}

/* Median elapsed time (microseconds) of reps intervals, each between ev[2i]
 * and ev[2i + 1]; negative on failure. */
double median_us(cudaEvent_t *ev, int reps) {
    float *ms = static_cast<float *>(malloc(sizeof(float) * (size_t)reps));
    if (!ms) return -1;
    for (int i = 0; i < reps; i++)
        if (cudaEventElapsedTime(&ms[i], ev[2 * i], ev[2 * i + 1]) != cudaSuccess) {
            free(ms);
            return -1;
        }
    qsort(ms, (size_t)reps, sizeof(float), cmp_float);
    const double med = reps % 2 ? ms[reps / 2] : 0.5 * ((double)ms[reps / 2 - 1] + ms[reps / 2]);
    free(ms);
    return med * 1000.0;
}

/* 2·reps events (NULL on failure) and their destruction. */
cudaEvent_t *events_new(int reps) {
    cudaEvent_t *ev = static_cast<cudaEvent_t *>(calloc((size_t)2 * reps, sizeof(cudaEvent_t)));
    if (!ev) return nullptr;
    for (int i = 0; i < 2 * reps; i++)
        if (cudaEventCreate(&ev[i]) != cudaSuccess) {
            for (int k = 0; k < i; k++) cudaEventDestroy(ev[k]);
            free(ev);
            return nullptr;
        }
    return ev;
}
void events_free(cudaEvent_t *ev, int reps) {
    if (!ev) return;
    for (int i = 0; i < 2 * reps; i++) cudaEventDestroy(ev[i]);
    free(ev);
}

} // namespace

extern "C" double swax_cuda_gemv_bench_us(int N, int C, int OC, int reps) {
    if (reps < 1 || N < 1 || C < 8 || OC < 1) return -1;
    int dev = 0, l2 = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    const size_t wn = (size_t)OC * C, wstride = (wn * 2 + 255) / 256 * 256;
    size_t nw = (4 * (size_t)l2 + wstride - 1) / wstride; /* copies: 4 L2s of weights at least */
    nw = std::max<size_t>(2, std::min<size_t>(nw, 64));
    char *w = nullptr;
    float *inp = nullptr, *out = nullptr;
    cudaStream_t st = nullptr;
    cudaEvent_t *ev = nullptr;
    double us = -1;
    if (cudaMalloc(&w, nw * wstride) != cudaSuccess || cudaMalloc(&inp, sizeof(float) * (size_t)N * C) != cudaSuccess ||
        cudaMalloc(&out, sizeof(float) * (size_t)N * OC) != cudaSuccess ||
        cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) != cudaSuccess || !(ev = events_new(reps)))
        goto done;
    for (size_t k = 0; k < nw; k++)
        k_fill_bf16<<<1024, 256, 0, st>>>(reinterpret_cast<__nv_bfloat16 *>(w + k * wstride), wn, 1234u + (uint32_t)k);
    k_fill_f32<<<64, 256, 0, st>>>(inp, (size_t)N * C, 99u);
    if (cudaGetLastError() != cudaSuccess) goto done;
    for (size_t k = 0; k < nw + 2; k++) /* warm-up: module load, plans, every copy touched */
        if (swax_cuda_gemv_bf16(out, OC, inp, C, w + (k % nw) * wstride, N, C, OC, st)) goto done;
    for (int i = 0; i < reps; i++) {
        if (cudaEventRecord(ev[2 * i], st) != cudaSuccess) goto done;
        if (swax_cuda_gemv_bf16(out, OC, inp, C, w + ((size_t)i % nw) * wstride, N, C, OC, st)) goto done;
        if (cudaEventRecord(ev[2 * i + 1], st) != cudaSuccess) goto done;
    }
    if (cudaStreamSynchronize(st) != cudaSuccess) goto done;
    us = median_us(ev, reps);
done:
    if (st) cudaStreamSynchronize(st);
    cudaGetLastError();
    events_free(ev, reps);
    if (st) cudaStreamDestroy(st);
    cudaFree(w), cudaFree(inp), cudaFree(out);
    cudaGetLastError();
    return us;
}

extern "C" double swax_cuda_copy_bench_us(long bytes, int reps) {
    if (reps < 1 || bytes < 1) return -1;
    char *a = nullptr, *b = nullptr;
    cudaStream_t st = nullptr;
    cudaEvent_t *ev = nullptr;
    double us = -1;
    if (cudaMalloc(&a, (size_t)bytes) != cudaSuccess || cudaMalloc(&b, (size_t)bytes) != cudaSuccess ||
        cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) != cudaSuccess || !(ev = events_new(reps)))
        goto done;
    if (cudaMemsetAsync(a, 1, (size_t)bytes, st) != cudaSuccess) goto done;
    for (int i = 0; i < 3; i++)
        if (cudaMemcpyAsync(b, a, (size_t)bytes, cudaMemcpyDeviceToDevice, st) != cudaSuccess) goto done;
    for (int i = 0; i < reps; i++) {
        if (cudaEventRecord(ev[2 * i], st) != cudaSuccess ||
            cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, (size_t)bytes, cudaMemcpyDeviceToDevice, st) != cudaSuccess ||
            cudaEventRecord(ev[2 * i + 1], st) != cudaSuccess)
            goto done;
    }
    if (cudaStreamSynchronize(st) != cudaSuccess) goto done;
    us = median_us(ev, reps);
done:
    if (st) cudaStreamSynchronize(st);
    cudaGetLastError();
    events_free(ev, reps);
    if (st) cudaStreamDestroy(st);
    cudaFree(a), cudaFree(b);
    cudaGetLastError();
    return us;
}
