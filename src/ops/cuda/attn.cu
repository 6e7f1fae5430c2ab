/* attn.cu — sliding-window attention (SWA) forward and backward, the attn_fwd
 * and attn_bwd slots of the CUDA table. Computes what the CPU slots
 * (src/ops/cpu/ops_cpu.c: RoPE then swax_swa_fwd/bwd_blocked_f per (b, h))
 * compute, over device memory, in fp32; no tensor cores (TF32 would not hold
 * the 1e-5 agreement with the CPU), accurate expf/logf, no --use_fast_math.
 *
 * Query i (position within its sequence) sees key j iff lo_i <= j <= i with
 * lo_i = max(i - w + 1, doc_lo[i], 0). lo_i is non-decreasing in i for real
 * data, but nothing below relies on it for correctness: tile ranges come from
 * the minimum of lo over a tile, and every score is masked element by element.
 *
 * Kernels (one thread block per (tile, head, batch); grid (tiles, H, B)):
 *   rope        thread per (t, j < dh/2): angle t·θ^(-2j/dh), cos and sin in
 *               double (as swax_rope_f), then rotates (x_j, x_{j+dh/2}) of q
 *               and k (or dq and dk, inverse) of every (b, h) at position t,
 *               with unfused products (the CPU compiles with contraction off),
 *               so GPU and CPU rotate to the same bits.
 *   fwd         per query tile of BQ rows: Q tile in shared memory; visits the
 *               key tiles [min_tile lo, last row] in steps of BK (tiles start
 *               at that minimum, not at multiples of BK: no wasted leading
 *               keys); K, V tiles in shared memory; S = Q·Kᵀ in registers,
 *               online softmax (running max m and per-thread partial sum l,
 *               fp32), P to shared memory, O += P·V in registers. Writes out
 *               = O / l and lse = m + log l.
 *   delta       warp per (row, head): Δ_i = Σ_d dout·out (scratch, (B, H, T)).
 *   bwd_dq      per query tile: Q and dO tiles stay in shared memory; over
 *               the same key tiles as fwd: S, dP = dO·Vᵀ, P = exp(S·scale −
 *               lse), dS = P·(dP − Δ)·scale to shared memory, dQ += dS·K.
 *   bwd_dkdv    per key tile of BK keys (aligned at multiples of BK): K and V
 *               stay in shared memory; over the query tiles [k0, last key +
 *               w − 1] in steps of BQ (a tile whose rows all start after the
 *               key tile is skipped: documents): Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ, P, dS,
 *               dV += Pᵀ·dO, dK += dSᵀ·Q.
 *   then rope (inverse) on the dq and dk columns.
 * dQ and dK/dV come from separate kernels so that every output element has
 * one owner: no atomics, fixed summation orders, bit-identical reruns. Scores
 * are the same fma chain over d in all three kernels (fwd, dq, dkdv), so P
 * and dS are bit-identical between the two backward kernels.
 *
 * Register tiling (all three attention kernels): tid -> (tr = tid/16, tc =
 * tid%16), TR = NT/16 row groups. For a score tile (R rows × C cols) a thread
 * owns rows tr + TR·a and columns tc + 16·b: row reductions are xor
 * butterflies over the 16 lanes of a half-warp, and the rows of P / dS that a
 * thread writes to shared memory are read back (for P·V, dS·K, ...) only by
 * its own half-warp, so __syncwarp suffices there. For an output tile (rows ×
 * DP) a thread owns the same rows and columns 4·tc + 64·m (float4 groups).
 * Shared rows are padded to DP + 4 floats: the column-owner reads of the dot
 * products (8 consecutive rows per quarter-warp, 16-byte loads) then hit 32
 * distinct banks; the row-owner reads are half-warp broadcasts.
 *
 * Head dims: DP = 64, 128 or 256 (templates); dh == 64 and dh == 128 are the
 * fast paths; any other even dh <= 256 runs in the next larger DP with zero
 * padding (zeros add exactly nothing to a dot product; padded output columns
 * are not stored). Global loads/stores use float4 when dh % 4 == 0 and every
 * buffer is 16-byte aligned (checked at run time), scalars otherwise.
 *
 * Tiles (query rows × keys per tile, threads, KiB of shared memory,
 * registers from ptxas -v for sm_90a, blocks per SM; no spills anywhere):
 *            fwd                          bwd_dq                       bwd_dkdv (keys × queries)
 *   DP  64   64×64, 128 thr,  68.0, 168, 3   64×32, 128 thr,  60.0, 168, 3   32×64, 128 thr,  60.25, 168, 3
 *   DP 128   64×32, 128 thr,  75.0, 191, 2   64×32, 256 thr, 108.0, 128, 2   32×64, 256 thr, 108.25, 128, 2
 *   DP 256   32×32, 128 thr, 102.0, 164, 1   32×32, 128 thr, 134.5, 168, 1   32×32, 256 thr, 134.9, 159, 1
 * (__launch_bounds__ minimum blocks = the last column; the d-loop of the dot
 * products is unrolled by 2 only: deeper unrolling made the dkdv kernels
 * spill under those bounds.)
 *
 * Cost: the forward does two products of B·H·T·w'·dh multiply-adds (QKᵀ,
 * PV; w' = the average number of visible keys, ~w for w << T, ~T/2 for
 * w >= T) divided by the useful fraction of the visited tiles, about
 * w/(w + BQ) (2/3 at w = 128, ~0.97 at w = 2048); the backward seven (S and
 * dP in each of its two kernels, then dQ, dK, dV): ~3.5× the forward. Rope
 * and delta are memory bound and small. fp32 FMA on CUDA cores (H200 peak
 * ~67 TFLOP/s); e.g. B2 H4 T2048 dh64 w128: 0.8 GFLOP forward, 2.8 backward,
 * so tens of µs forward at a fraction of peak, launch latency included.
 *
 * Everything is templated on the activation element type TI (only float is
 * instantiated; a bf16 mode adds ldf/ld4/stf/st4 overloads); lse, Δ and all
 * arithmetic stay fp32. */
#include <limits.h>
#include <stdint.h>

#include "ops/cuda/cuda_common.cuh"

namespace {

constexpr int ROPE_THREADS = 256;
constexpr int DELTA_THREADS = 256;

/* ---------------------------------------------------------------- helpers */

__device__ __forceinline__ float ldf(const float *p) { return *p; }
__device__ __forceinline__ float4 ld4(const float *p) { return *reinterpret_cast<const float4 *>(p); }
__device__ __forceinline__ void stf(float *p, float v) { *p = v; }
__device__ __forceinline__ void st4(float *p, float4 v) { *reinterpret_cast<float4 *>(p) = v; }

/* Component e of v (e is a compile-time constant after unrolling). */
__device__ __forceinline__ float comp(const float4 &v, int e) {
    return e == 0 ? v.x : (e == 1 ? v.y : (e == 2 ? v.z : v.w));
}

/* Max / sum over the 16 lanes of a half-warp (xor offsets < 16 stay inside
 * it); every lane of the half gets the same bits. All 32 lanes must call. */
__device__ __forceinline__ float half_max(float v) {
    for (int o = 8; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float half_sum(float v) {
    for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* First key query i may see; dl = this sequence's doc_lo or NULL. */
__device__ __forceinline__ int row_lo(const int *dl, int i, int w) {
    int lo = i - w + 1;
    if (lo < 0) lo = 0;
    if (dl) {
        const int d = dl[i];
        if (d > lo) lo = d;
    }
    return lo;
}

/* Smallest row_lo over rows [r0, min(r0 + n, T)), computed by each warp on
 * its own (so every warp of the block holds the same value). */
__device__ __forceinline__ int tile_min_lo(const int *dl, int r0, int n, int T, int w) {
    int v = INT_MAX;
    for (int r = threadIdx.x & 31; r < n; r += 32)
        if (r0 + r < T) v = min(v, row_lo(dl, r0 + r, w));
    return __reduce_min_sync(0xffffffffu, v);
}

template <typename TI>
struct SwaArgs {
    int B, T, H, dh, w; /* w = min(window, T) */
    int HD;             /* H·dh */
    long long ld;       /* row stride of qkv and dqkv: 3·H·dh */
    float scale;        /* 1/sqrt(dh) */
    bool vec;           /* float4 global accesses allowed */
    const int *doc_lo;  /* (B, T) or NULL */
    const TI *qkv;      /* (N, 3HD), q and k rotated */
    TI *out;            /* (N, HD) */
    float *lse;         /* (B, H, T) */
    const TI *dout;     /* (N, HD) */
    TI *dqkv;           /* (N, 3HD) */
    float *delta;       /* (B, H, T) scratch */
};

/* Rows [row0, row0 + nrows) of a (T, ldg) matrix, columns [0, dh), into a
 * shared tile of nrows × (DP + 4) floats; zeros past T and past dh. */
template <typename TI, int DP, int NT>
__device__ __forceinline__ void load_rows(float *__restrict__ dst, const TI *__restrict__ src, size_t ldg, int row0,
                                          int nrows, int T, int dh, bool vec) {
    constexpr int C4 = DP / 4, LD = DP + 4;
    for (int idx = threadIdx.x; idx < nrows * C4; idx += NT) {
        const int r = idx / C4, c = (idx % C4) * 4, t = row0 + r;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (t < T && c < dh) {
            const TI *g = src + (size_t)t * ldg + c;
            if (vec) {
                v = ld4(g);
            } else {
                v.x = ldf(g);
                if (c + 1 < dh) v.y = ldf(g + 1);
                if (c + 2 < dh) v.z = ldf(g + 2);
                if (c + 3 < dh) v.w = ldf(g + 3);
            }
        }
        *reinterpret_cast<float4 *>(dst + r * LD + c) = v;
    }
}

/* One output row's columns 4·tc + 64·m (m < OG) times mul, columns < dh. */
template <typename TI, int OG>
__device__ __forceinline__ void store_row(TI *dst, const float4 (&v)[OG], float mul, int tc, int dh, bool vec) {
#pragma unroll
    for (int m = 0; m < OG; m++) {
        const int c = 4 * tc + 64 * m;
        if (c >= dh) continue;
        const float4 x = make_float4(v[m].x * mul, v[m].y * mul, v[m].z * mul, v[m].w * mul);
        if (vec) {
            st4(dst + c, x);
        } else {
            stf(dst + c, x.x);
            if (c + 1 < dh) stf(dst + c + 1, x.y);
            if (c + 2 < dh) stf(dst + c + 2, x.z);
            if (c + 3 < dh) stf(dst + c + 3, x.w);
        }
    }
}

/* acc[a][b] = X[tr + TR·a] · Y[tc + 16·b] over DP (shared tiles, row stride
 * DP + 4), one fma chain in increasing d. */
template <int R, int CN, int TR, int DP>
__device__ __forceinline__ void tile_dot(float (&acc)[R][CN], const float *__restrict__ X,
                                         const float *__restrict__ Y, int tr, int tc) {
    constexpr int LD = DP + 4;
#pragma unroll
    for (int a = 0; a < R; a++)
#pragma unroll
        for (int b = 0; b < CN; b++) acc[a][b] = 0.0f;
#pragma unroll 2
    for (int d = 0; d < DP; d += 4) {
        float4 y[CN];
#pragma unroll
        for (int b = 0; b < CN; b++) y[b] = *reinterpret_cast<const float4 *>(Y + (tc + 16 * b) * LD + d);
#pragma unroll
        for (int a = 0; a < R; a++) {
            const float4 x = *reinterpret_cast<const float4 *>(X + (tr + TR * a) * LD + d);
#pragma unroll
            for (int b = 0; b < CN; b++) {
                acc[a][b] = fmaf(x.x, y[b].x, acc[a][b]);
                acc[a][b] = fmaf(x.y, y[b].y, acc[a][b]);
                acc[a][b] = fmaf(x.z, y[b].z, acc[a][b]);
                acc[a][b] = fmaf(x.w, y[b].w, acc[a][b]);
            }
        }
    }
}

/* acc[a][m] += Σ_{i < KD} A[tr + TR·a][i] · Z[i][4·tc + 64·m .. +3]
 * (A row stride LA, Z row stride DP + 4), in increasing i. */
template <int R, int OG, int TR, int KD, int LA, int DP>
__device__ __forceinline__ void tile_outer(float4 (&acc)[R][OG], const float *__restrict__ A,
                                           const float *__restrict__ Z, int tr, int tc) {
    constexpr int LZ = DP + 4;
#pragma unroll 2
    for (int i = 0; i < KD; i += 4) {
        float4 av[R];
#pragma unroll
        for (int a = 0; a < R; a++) av[a] = *reinterpret_cast<const float4 *>(A + (tr + TR * a) * LA + i);
#pragma unroll
        for (int e = 0; e < 4; e++) {
#pragma unroll
            for (int m = 0; m < OG; m++) {
                const float4 z = *reinterpret_cast<const float4 *>(Z + (i + e) * LZ + 4 * tc + 64 * m);
#pragma unroll
                for (int a = 0; a < R; a++) {
                    const float p = comp(av[a], e);
                    acc[a][m].x = fmaf(p, z.x, acc[a][m].x);
                    acc[a][m].y = fmaf(p, z.y, acc[a][m].y);
                    acc[a][m].z = fmaf(p, z.z, acc[a][m].z);
                    acc[a][m].w = fmaf(p, z.w, acc[a][m].w);
                }
            }
        }
    }
}

template <int R, int OG>
__device__ __forceinline__ void zero_acc(float4 (&acc)[R][OG]) {
#pragma unroll
    for (int a = 0; a < R; a++)
#pragma unroll
        for (int m = 0; m < OG; m++) acc[a][m] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
}

/* ---------------------------------------------------------------- kernels */

/* RoPE in place on `parts` consecutive HD-column groups of x (q, k), every
 * (b, h), position t: thread per (t, j < dh/2). inverse: rotates back. */
template <typename TI>
__global__ void rope_kernel(TI *x, long long ld, int B, int T, int H, int dh, int HD, int parts, double theta,
                            int inverse) {
    const int half = dh / 2;
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)T * half) return;
    const int t = (int)(idx / half), j = (int)(idx % half);
    const double inv_freq = pow(theta, -2.0 * j / dh); /* as swax_rope_f */
    const double ang = (double)t * inv_freq;
    const float c = (float)cos(ang), s = inverse ? -(float)sin(ang) : (float)sin(ang);
    for (int b = 0; b < B; b++)
        for (int part = 0; part < parts; part++)
            for (int h = 0; h < H; h++) {
                TI *row = x + ((size_t)b * T + t) * (size_t)ld + (size_t)part * HD + (size_t)h * dh;
                const float x0 = ldf(row + j), x1 = ldf(row + j + half);
                stf(row + j, __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s)));
                stf(row + j + half, __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s)));
            }
}

/* Δ[b, h, t] = Σ_d dout·out: a warp per (row, head). */
template <typename TI>
__global__ void delta_kernel(const SwaArgs<TI> p) {
    const size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= (size_t)p.B * p.T * p.H) return; /* whole warps leave */
    const size_t n = warp / p.H;
    const int h = (int)(warp % p.H);
    const TI *g = p.dout + n * p.HD + (size_t)h * p.dh, *o = p.out + n * p.HD + (size_t)h * p.dh;
    float s = 0.0f;
    for (int d = lane; d < p.dh; d += 32) s = fmaf(ldf(g + d), ldf(o + d), s);
    s = swax_warp_sum(s);
    const size_t b = n / p.T, t = n % p.T;
    if (lane == 0) p.delta[(b * p.H + h) * p.T + t] = s;
}

/* Forward: one block per (query tile of BQ rows, head, sequence). */
template <typename TI, int DP, int BQ, int BK, int NT, int MINB>
__global__ void __launch_bounds__(NT, MINB) fwd_kernel(const SwaArgs<TI> p) {
    constexpr int TR = NT / 16, RS = BQ / TR, CS = BK / 16, OG = DP / 64, LD = DP + 4, LP = BK + 4;
    static_assert(NT % 32 == 0 && BQ % TR == 0 && BK % 16 == 0 && DP % 64 == 0 && BK % 4 == 0, "tile shape");
    extern __shared__ float4 smem_f4[];
    float *Qs = reinterpret_cast<float *>(smem_f4); /* BQ × LD */
    float *Ks = Qs + BQ * LD;                       /* BK × LD */
    float *Vs = Ks + BK * LD;                       /* BK × LD */
    float *Ps = Vs + BK * LD;                       /* BQ × LP, rows private to a half-warp */

    const int tid = threadIdx.x, tc = tid & 15, tr = tid >> 4;
    const int T = p.T, q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
    const int qlast = min(q0 + BQ, T) - 1;
    const int *dl = p.doc_lo ? p.doc_lo + (size_t)b * T : nullptr;
    const TI *qg = p.qkv + (size_t)b * T * (size_t)p.ld + (size_t)h * p.dh, *kg = qg + p.HD, *vg = kg + p.HD;

    const int kmin = tile_min_lo(dl, q0, BQ, T, p.w);
    int lo[RS];
    float m[RS], l[RS];
    float4 o[RS][OG];
#pragma unroll
    for (int a = 0; a < RS; a++) {
        const int i = q0 + tr + TR * a;
        lo[a] = i < T ? row_lo(dl, i, p.w) : INT_MAX; /* rows past T see nothing */
        m[a] = -INFINITY;
        l[a] = 0.0f;
    }
    zero_acc(o);
    load_rows<TI, DP, NT>(Qs, qg, (size_t)p.ld, q0, BQ, T, p.dh, p.vec);

    for (int k0 = kmin; k0 <= qlast; k0 += BK) {
        __syncthreads(); /* the previous tile's K, V are no longer read */
        load_rows<TI, DP, NT>(Ks, kg, (size_t)p.ld, k0, BK, T, p.dh, p.vec);
        load_rows<TI, DP, NT>(Vs, vg, (size_t)p.ld, k0, BK, T, p.dh, p.vec);
        __syncthreads();
        float s[RS][CS];
        tile_dot<RS, CS, TR, DP>(s, Qs, Ks, tr, tc);
#pragma unroll
        for (int a = 0; a < RS; a++) {
            const int i = q0 + tr + TR * a;
            float mt = -INFINITY;
#pragma unroll
            for (int c = 0; c < CS; c++) {
                const int j = k0 + tc + 16 * c;
                s[a][c] = (j >= lo[a] && j <= i) ? s[a][c] * p.scale : -INFINITY;
                mt = fmaxf(mt, s[a][c]);
            }
            mt = half_max(mt);
            const float mn = fmaxf(m[a], mt);
            const float base = mn == -INFINITY ? 0.0f : mn; /* nothing seen yet: p = 0, alpha = 0 */
            const float alpha = expf(m[a] - base);
            m[a] = mn;
            float ls = 0.0f;
#pragma unroll
            for (int c = 0; c < CS; c++) {
                const float pv = expf(s[a][c] - base);
                ls += pv;
                Ps[(tr + TR * a) * LP + tc + 16 * c] = pv;
            }
            l[a] = l[a] * alpha + ls;
#pragma unroll
            for (int mm = 0; mm < OG; mm++) {
                o[a][mm].x *= alpha, o[a][mm].y *= alpha, o[a][mm].z *= alpha, o[a][mm].w *= alpha;
            }
        }
        __syncwarp(); /* P rows are read only by the half-warp that wrote them */
        tile_outer<RS, OG, TR, BK, LP, DP>(o, Ps, Vs, tr, tc);
    }

    const size_t sbase = ((size_t)b * p.H + h) * T;
#pragma unroll
    for (int a = 0; a < RS; a++) {
        const float lsum = half_sum(l[a]);
        const int i = q0 + tr + TR * a;
        if (i < T) {
            store_row<TI, OG>(p.out + ((size_t)b * T + i) * p.HD + (size_t)h * p.dh, o[a], 1.0f / lsum, tc, p.dh,
                              p.vec);
            if (tc == 0) p.lse[sbase + i] = m[a] + logf(lsum);
        }
    }
}

/* Backward, dQ: one block per (query tile of BQ rows, head, sequence). */
template <typename TI, int DP, int BQ, int BK, int NT, int MINB>
__global__ void __launch_bounds__(NT, MINB) bwd_dq_kernel(const SwaArgs<TI> p) {
    constexpr int TR = NT / 16, RS = BQ / TR, CS = BK / 16, OG = DP / 64, LD = DP + 4, LP = BK + 4;
    static_assert(NT % 32 == 0 && BQ % TR == 0 && BK % 16 == 0 && DP % 64 == 0, "tile shape");
    extern __shared__ float4 smem_f4[];
    float *Qs = reinterpret_cast<float *>(smem_f4); /* BQ × LD */
    float *dOs = Qs + BQ * LD;                      /* BQ × LD */
    float *Ks = dOs + BQ * LD;                      /* BK × LD */
    float *Vs = Ks + BK * LD;                       /* BK × LD */
    float *dSs = Vs + BK * LD;                      /* BQ × LP, rows private to a half-warp */

    const int tid = threadIdx.x, tc = tid & 15, tr = tid >> 4;
    const int T = p.T, q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
    const int qlast = min(q0 + BQ, T) - 1;
    const int *dl = p.doc_lo ? p.doc_lo + (size_t)b * T : nullptr;
    const TI *qg = p.qkv + (size_t)b * T * (size_t)p.ld + (size_t)h * p.dh, *kg = qg + p.HD, *vg = kg + p.HD;
    const TI *og = p.dout + (size_t)b * T * p.HD + (size_t)h * p.dh;
    const size_t sbase = ((size_t)b * p.H + h) * T;

    const int kmin = tile_min_lo(dl, q0, BQ, T, p.w);
    int lo[RS];
    float lse[RS], dlt[RS];
#pragma unroll
    for (int a = 0; a < RS; a++) {
        const int i = q0 + tr + TR * a;
        const bool ok = i < T;
        lo[a] = ok ? row_lo(dl, i, p.w) : INT_MAX;
        lse[a] = ok ? p.lse[sbase + i] : 0.0f;
        dlt[a] = ok ? p.delta[sbase + i] : 0.0f;
    }
    float4 acc[RS][OG];
    zero_acc(acc);
    load_rows<TI, DP, NT>(Qs, qg, (size_t)p.ld, q0, BQ, T, p.dh, p.vec);
    load_rows<TI, DP, NT>(dOs, og, (size_t)p.HD, q0, BQ, T, p.dh, p.vec);

    for (int k0 = kmin; k0 <= qlast; k0 += BK) {
        __syncthreads();
        load_rows<TI, DP, NT>(Ks, kg, (size_t)p.ld, k0, BK, T, p.dh, p.vec);
        load_rows<TI, DP, NT>(Vs, vg, (size_t)p.ld, k0, BK, T, p.dh, p.vec);
        __syncthreads();
        float s[RS][CS], dp[RS][CS];
        tile_dot<RS, CS, TR, DP>(s, Qs, Ks, tr, tc);
        tile_dot<RS, CS, TR, DP>(dp, dOs, Vs, tr, tc);
#pragma unroll
        for (int a = 0; a < RS; a++) {
            const int i = q0 + tr + TR * a;
#pragma unroll
            for (int c = 0; c < CS; c++) {
                const int j = k0 + tc + 16 * c;
                const float pv = (j >= lo[a] && j <= i) ? expf(s[a][c] * p.scale - lse[a]) : 0.0f;
                dSs[(tr + TR * a) * LP + tc + 16 * c] = pv * (dp[a][c] - dlt[a]) * p.scale;
            }
        }
        __syncwarp();
        tile_outer<RS, OG, TR, BK, LP, DP>(acc, dSs, Ks, tr, tc);
    }

#pragma unroll
    for (int a = 0; a < RS; a++) {
        const int i = q0 + tr + TR * a;
        if (i < T)
            store_row<TI, OG>(p.dqkv + ((size_t)b * T + i) * (size_t)p.ld + (size_t)h * p.dh, acc[a], 1.0f, tc, p.dh,
                              p.vec);
    }
}

/* Backward, dK and dV: one block per (key tile of BK keys, head, sequence). */
template <typename TI, int DP, int BK, int BQ, int NT, int MINB>
__global__ void __launch_bounds__(NT, MINB) bwd_dkdv_kernel(const SwaArgs<TI> p) {
    constexpr int TR = NT / 16, RJ = BK / TR, CI = BQ / 16, OG = DP / 64, LD = DP + 4, LP = BQ + 4;
    static_assert(NT % 32 == 0 && BK % TR == 0 && BQ % 16 == 0 && DP % 64 == 0, "tile shape");
    extern __shared__ float4 smem_f4[];
    float *Ks = reinterpret_cast<float *>(smem_f4); /* BK × LD */
    float *Vs = Ks + BK * LD;                       /* BK × LD */
    float *Qs = Vs + BK * LD;                       /* BQ × LD */
    float *dOs = Qs + BQ * LD;                      /* BQ × LD */
    float *PdS = dOs + BQ * LD;                     /* BK × LP: Pᵀ, then dSᵀ; rows private to a half-warp */
    float *lse_s = PdS + BK * LP, *dlt_s = lse_s + BQ; /* the query tile's lse, Δ, lo (BQ each) */
    int *lo_s = reinterpret_cast<int *>(dlt_s + BQ);

    const int tid = threadIdx.x, tc = tid & 15, tr = tid >> 4;
    const int T = p.T, k0 = blockIdx.x * BK, h = blockIdx.y, b = blockIdx.z;
    const int klast = min(k0 + BK, T) - 1;
    const int qend = min(T - 1, klast + p.w - 1); /* the last query that can see a key of the tile */
    const int *dl = p.doc_lo ? p.doc_lo + (size_t)b * T : nullptr;
    const TI *qg = p.qkv + (size_t)b * T * (size_t)p.ld + (size_t)h * p.dh, *kg = qg + p.HD, *vg = kg + p.HD;
    const TI *og = p.dout + (size_t)b * T * p.HD + (size_t)h * p.dh;
    const size_t sbase = ((size_t)b * p.H + h) * T;

    float4 dk[RJ][OG], dv[RJ][OG];
    zero_acc(dk);
    zero_acc(dv);
    load_rows<TI, DP, NT>(Ks, kg, (size_t)p.ld, k0, BK, T, p.dh, p.vec);
    load_rows<TI, DP, NT>(Vs, vg, (size_t)p.ld, k0, BK, T, p.dh, p.vec);

    for (int qs = k0; qs <= qend; qs += BQ) {
        /* every row of the tile starts after the last key (a document
         * boundary): nothing to add. The same value in every warp. */
        if (tile_min_lo(dl, qs, BQ, T, p.w) > klast) continue;
        __syncthreads(); /* the previous tile's Q, dO are no longer read */
        load_rows<TI, DP, NT>(Qs, qg, (size_t)p.ld, qs, BQ, T, p.dh, p.vec);
        load_rows<TI, DP, NT>(dOs, og, (size_t)p.HD, qs, BQ, T, p.dh, p.vec);
        for (int r = tid; r < BQ; r += NT) {
            const int i = qs + r;
            const bool ok = i < T;
            lo_s[r] = ok ? row_lo(dl, i, p.w) : INT_MAX; /* rows past T see nothing */
            lse_s[r] = ok ? p.lse[sbase + i] : 0.0f;
            dlt_s[r] = ok ? p.delta[sbase + i] : 0.0f;
        }
        __syncthreads();
        float s[RJ][CI], dp[RJ][CI], ds[RJ][CI];
        tile_dot<RJ, CI, TR, DP>(s, Ks, Qs, tr, tc);
        tile_dot<RJ, CI, TR, DP>(dp, Vs, dOs, tr, tc);
#pragma unroll
        for (int a = 0; a < RJ; a++) {
            const int j = k0 + tr + TR * a;
#pragma unroll
            for (int c = 0; c < CI; c++) {
                const int r = tc + 16 * c, i = qs + r;
                const float pv = (j >= lo_s[r] && j <= i) ? expf(s[a][c] * p.scale - lse_s[r]) : 0.0f;
                ds[a][c] = pv * (dp[a][c] - dlt_s[r]) * p.scale;
                PdS[(tr + TR * a) * LP + tc + 16 * c] = pv;
            }
        }
        __syncwarp();
        tile_outer<RJ, OG, TR, BQ, LP, DP>(dv, PdS, dOs, tr, tc);
        __syncwarp(); /* the half-warp is done reading Pᵀ */
#pragma unroll
        for (int a = 0; a < RJ; a++)
#pragma unroll
            for (int c = 0; c < CI; c++) PdS[(tr + TR * a) * LP + tc + 16 * c] = ds[a][c];
        __syncwarp();
        tile_outer<RJ, OG, TR, BQ, LP, DP>(dk, PdS, Qs, tr, tc);
    }

#pragma unroll
    for (int a = 0; a < RJ; a++) {
        const int j = k0 + tr + TR * a;
        if (j < T) {
            TI *row = p.dqkv + ((size_t)b * T + j) * (size_t)p.ld + (size_t)h * p.dh;
            store_row<TI, OG>(row + p.HD, dk[a], 1.0f, tc, p.dh, p.vec);
            store_row<TI, OG>(row + 2 * (size_t)p.HD, dv[a], 1.0f, tc, p.dh, p.vec);
        }
    }
}

/* ---------------------------------------------------------------- launchers */

/* Opts a kernel into `bytes` of dynamic shared memory and the largest
 * shared-memory carveout (the tiles above assume 2-3 blocks per SM fit in
 * 228 KiB); once per kernel. */
template <typename K>
void allow_smem(K kernel, size_t bytes, bool *done) {
    if (*done) return;
    if (bytes > 48 * 1024)
        SWAX_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    SWAX_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
    *done = true;
}

template <typename TI, int DP, int BQ, int BK, int NT, int MINB>
void launch_fwd(const SwaArgs<TI> &a) {
    constexpr size_t smem = sizeof(float) * ((size_t)(BQ + 2 * BK) * (DP + 4) + (size_t)BQ * (BK + 4));
    static bool done = false;
    allow_smem(fwd_kernel<TI, DP, BQ, BK, NT, MINB>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, BQ), (unsigned)a.H, (unsigned)a.B);
    fwd_kernel<TI, DP, BQ, BK, NT, MINB><<<grid, NT, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}

template <typename TI, int DP, int BQ, int BK, int NT, int MINB>
void launch_bwd_dq(const SwaArgs<TI> &a) {
    constexpr size_t smem = sizeof(float) * ((size_t)(2 * BQ + 2 * BK) * (DP + 4) + (size_t)BQ * (BK + 4));
    static bool done = false;
    allow_smem(bwd_dq_kernel<TI, DP, BQ, BK, NT, MINB>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, BQ), (unsigned)a.H, (unsigned)a.B);
    bwd_dq_kernel<TI, DP, BQ, BK, NT, MINB><<<grid, NT, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}

template <typename TI, int DP, int BK, int BQ, int NT, int MINB>
void launch_bwd_dkdv(const SwaArgs<TI> &a) {
    constexpr size_t smem = sizeof(float) * ((size_t)(2 * BK + 2 * BQ) * (DP + 4) + (size_t)BK * (BQ + 4) + 3 * BQ);
    static bool done = false;
    allow_smem(bwd_dkdv_kernel<TI, DP, BK, BQ, NT, MINB>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, BK), (unsigned)a.H, (unsigned)a.B);
    bwd_dkdv_kernel<TI, DP, BK, BQ, NT, MINB><<<grid, NT, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}

template <typename TI>
void launch_rope(TI *x, const SwaxAttnCall *c, int inverse) {
    const size_t n = (size_t)c->T * (c->dh / 2);
    const int HD = c->H * c->dh;
    rope_kernel<TI><<<swax_ceil_div(n, ROPE_THREADS), ROPE_THREADS, 0, swax_cuda_stream()>>>(
        x, 3LL * HD, c->B, c->T, c->H, c->dh, HD, 2, c->rope_theta, inverse);
    SWAX_CUDA_LAUNCHED();
}

/* The head-dim template a call runs in: the smallest of 64, 128, 256 >= dh. */
int padded_dim(int dh) { return dh <= 64 ? 64 : (dh <= 128 ? 128 : 256); }

bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* Preconditions shared by both slots; false: nothing to do (empty call). */
bool check_call(const SwaxAttnCall *c) {
    SWAX_CUDA_REQUIRE(c != NULL);
    SWAX_CUDA_REQUIRE(c->B >= 0 && c->T >= 0 && c->H >= 0);
    if (c->B == 0 || c->T == 0 || c->H == 0) return false;
    SWAX_CUDA_REQUIRE(c->dh >= 2 && c->dh % 2 == 0 && c->dh <= 256);
    SWAX_CUDA_REQUIRE(c->window >= 1);
    SWAX_CUDA_REQUIRE(c->H <= 65535 && c->B <= 65535);
    SWAX_CUDA_REQUIRE(c->T <= (1 << 30));
    SWAX_CUDA_REQUIRE((long long)c->H * c->dh * 3 <= INT_MAX);
    SWAX_CUDA_REQUIRE(c->rope_theta > 0);
    SWAX_CUDA_REQUIRE(c->qkv != NULL && c->out != NULL && c->lse != NULL);
    return true;
}

SwaArgs<float> make_args(const SwaxAttnCall *c) {
    SwaArgs<float> a;
    a.B = c->B, a.T = c->T, a.H = c->H, a.dh = c->dh;
    a.w = c->window < c->T ? c->window : c->T;
    a.HD = c->H * c->dh;
    a.ld = 3LL * a.HD;
    a.scale = 1.0f / sqrtf((float)c->dh); /* as the CPU */
    a.vec = c->dh % 4 == 0 && aligned16(c->qkv) && aligned16(c->out) && (!c->dout || aligned16(c->dout)) &&
            (!c->dqkv || aligned16(c->dqkv));
    a.doc_lo = c->doc_lo;
    a.qkv = c->qkv, a.out = c->out, a.lse = c->lse;
    a.dout = c->dout, a.dqkv = c->dqkv, a.delta = NULL;
    return a;
}

} /* namespace */

/* ---------------------------------------------------------------- slots */

extern "C" void swax_cuda_attn_fwd(SwaxAttnCall *c) {
    if (!check_call(c)) return;
    launch_rope<float>(c->qkv, c, 0); /* q and k rotated in place */
    const SwaArgs<float> a = make_args(c);
    switch (padded_dim(c->dh)) {
    case 64: launch_fwd<float, 64, 64, 64, 128, 3>(a); break;
    case 128: launch_fwd<float, 128, 64, 32, 128, 2>(a); break;
    default: launch_fwd<float, 256, 32, 32, 128, 1>(a); break;
    }
}

extern "C" void swax_cuda_attn_bwd(SwaxAttnCall *c) {
    if (!check_call(c)) return;
    SWAX_CUDA_REQUIRE(c->dout != NULL && c->dqkv != NULL);
    SWAX_CUDA_REQUIRE(c->dqkv != c->qkv);
    SwaArgs<float> a = make_args(c);
    a.delta = (float *)swax_cuda_scratch(SWAX_SCRATCH_ATTN, sizeof(float) * (size_t)c->B * c->H * c->T);
    SWAX_CUDA_REQUIRE(a.delta != NULL);
    const size_t warps = (size_t)c->B * c->T * c->H;
    delta_kernel<float><<<swax_ceil_div(warps * 32, DELTA_THREADS), DELTA_THREADS, 0, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
    switch (padded_dim(c->dh)) {
    case 64:
        launch_bwd_dq<float, 64, 64, 32, 128, 3>(a);
        launch_bwd_dkdv<float, 64, 32, 64, 128, 3>(a);
        break;
    case 128:
        launch_bwd_dq<float, 128, 64, 32, 256, 2>(a);
        launch_bwd_dkdv<float, 128, 32, 64, 256, 2>(a);
        break;
    default:
        launch_bwd_dq<float, 256, 32, 32, 128, 1>(a);
        launch_bwd_dkdv<float, 256, 32, 32, 256, 1>(a);
        break;
    }
    launch_rope<float>(c->dqkv, c, 1); /* dq, dk back to the unrotated q, k */
}
