/* infer.cu — the inference slots of the CUDA table (ops.h: infer_attn,
 * infer_mlstm_step, argmax, graph_run, graph_free), used by infer.c for a
 * model on the device. The state layout is the CPU's (infer.c's header): per
 * sequence one float block; an SWA layer's K ring (w, HD) then V ring (w, HD),
 * position p in slot p mod w, keys stored rotated; an mLSTM layer's C (NH, dk,
 * dv), n (NH, dk), m (NH). Everything fp32 (the "cuda" table's bf16 is in its
 * matrix products and its mLSTM prefill kernel, not here).
 *
 * infer_attn, three launches (so that every read of the ring completes before
 * the ring is written):
 *   rope      thread per (row, j < dh/2): the rotation of swax_rope_f (angle
 *             pos·θ^(-2j/dh) in double, cos and sin rounded to float,
 *             unfused products) at the row's absolute position, on q and k of
 *             every head, in place: the same bits as the CPU and the training
 *             kernel (attn.cu's rope_kernel).
 *   attention prefill (rows = consecutive positions pos0.. of one sequence):
 *             block per (tile of PQ = 32 queries, head), 128 threads, 4 per
 *             query row; the Q tile and each K/V tile of PK = 32 keys live in
 *             shared memory (keys before pos0 from the ring, later ones from
 *             the call's rows); scores by the 4 threads of a row over
 *             interleaved keys, online softmax (running max, rescale) in
 *             fp32, P through shared memory, each thread accumulates a quarter
 *             of the output columns. Visits keys [first row's p - w + 1, last
 *             row's p]: O(R·(w + PQ)) work, memory independent of context.
 *             Staged floats' addresses computed per element (default; with
 *             SWAX_INFER_KERNELS=new the tile's 32 K/V row addresses once
 *             per tile, which measured slower; same bits).
 *             decode (one row per sequence, seq and position from device
 *             arrays), where the (row, head) grid is under 2 blocks per SM
 *             (kernel_choice below): flash-decoding. Split kernel: block per
 *             (split of ks keys, head, row), 8 warps: scores (warp per group
 *             of 4 keys, lanes over dh, butterfly sums) into shared memory,
 *             the split's max, weights and sum, then P·V with a thread per
 *             column; writes (max, sum, Σ e·v) per split. ks is chosen so
 *             that R·H·splits fills ~4 blocks per SM (1.4b at batch 1: 64
 *             keys, 32 splits, 512 blocks instead of 16). Merge kernel:
 *             block per (head, row), the splits in split order, then this
 *             head's k and v into ring slot p mod w (no split reads that
 *             slot: it holds position p - w, outside the window; key p is
 *             read from qkv), so decode is rope, split, merge.
 *             Otherwise (and SWAX_INFER_KERNELS=old): block per (row, head), 8 warps; each
 *             warp takes every 8th group of KU = 4 keys, online softmax per
 *             warp, merged in warp order; then the ring launch.
 *   ring      (prefill, and the old decode) block per stored row: k and v of
 *             the last min(w, R) rows into slot p mod w of the row's sequence.
 * infer_mlstm_step, under 2 blocks per SM two launches: split per (jt rows of C, head,
 *   row), a thread per dv column: C' of its rows in place (the old kernel's
 *   arithmetic, the same bits), partial h over its rows (j order); merge per
 *   (head, row): den (old order, same bits), h = Σ splits in split order
 *   (one split: the old bits), then n' and m'. jt: ~2 blocks per SM over
 *   NH·R (1.4b at batch 1: 4 rows, 256 blocks instead of 32).
 *   SWAX_INFER_STEP_ROWS / SWAX_INFER_SPLIT_KEYS override jt / ks (tests).
 *   Otherwise (and SWAX_INFER_KERNELS=old), two launches: step per (dv tile of 64, head, row): the
 *   C rows of this tile updated in place, C' = f C + i k vᵀ, h_e = Σ_j C'_je
 *   q̃_j in j order, den = n'·q̃ (block sum in a fixed order, every tile the
 *   same bits); then state per (head, row): n' and m' written (after every
 *   step block has read the old n and m). Scalars as swax_mlstm_step_f:
 *   m' = max(lf + m, ig), f = e^{lf + m - m'}, i = e^{ig - m'}.
 * argmax: block per row, the first maximum over ids < Vused (NaN never wins;
 *   all -inf or NaN gives 0), as sample.c's greedy choice.
 * graph_run: decode steps as CUDA graphs (see ops.h). A graph keeps raw
 *   pointers into the backend's scratch arenas, which move when they grow
 *   (swax_cuda_scratch): each graph records the arenas' epoch and is dropped
 *   (and the step run directly, as a new warm-up) when it changed. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_slots.h"

namespace {

constexpr int ROPE_THREADS = 128;
constexpr int PQ = 32, PK = 32, PNT = 128; /* prefill: query rows, keys per tile, threads */
constexpr int DNW = 8, DKU = 4;            /* decode: warps per block, keys per warp step */
constexpr int STEP_ET = 64;                /* mLSTM step: dv columns per block (= threads) */
constexpr int ARG_THREADS = 256;

/* Position and sequence of row r. */
__device__ __forceinline__ long row_pos(const SwaxInferAttnCall &c, int r) {
    return c.seq >= 0 ? c.pos0 + r : c.rowpos[r];
}
__device__ __forceinline__ int row_seq(const SwaxInferAttnCall &c, int r) { return c.seq >= 0 ? c.seq : c.rowseq[r]; }

/* cos and sin of RoPE pair j at position p, float64 angles as swax_rope_f */
__device__ __forceinline__ void rope_cs(const SwaxInferAttnCall &c, int j, long p, float &cs, float &sn) {
    const double inv_freq = pow(c.rope_theta, -2.0 * j / c.dh);
    const double ang = (double)p * inv_freq;
    cs = (float)cos(ang), sn = (float)sin(ang);
}

/* the rotation of one pair (x0, x1) -> (y0, y1), unfused products (the bits of swax_rope_f); y may alias x */
__device__ __forceinline__ void rope_pair(float x0, float x1, float cs, float sn, float &y0, float &y1) {
    const float a = __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn)), b = __fadd_rn(__fmul_rn(x1, cs), __fmul_rn(x0, sn));
    y0 = a, y1 = b;
}

__global__ void k_rope_rows(SwaxInferAttnCall c) {
    const int half = c.dh / 2;
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)c.R * half) return;
    const int r = (int)(idx / half), j = (int)(idx % half);
    float cs, sn;
    rope_cs(c, j, row_pos(c, r), cs, sn);
    const int HD = c.H * c.dh;
    for (int part = 0; part < 2; part++)
        for (int h = 0; h < c.H; h++) {
            float *x = c.qkv + (size_t)r * c.ldq + (size_t)part * HD + (size_t)h * c.dh;
            rope_pair(x[j], x[j + half], cs, sn, x[j], x[j + half]);
        }
}

/* Key j of head h for a call whose own rows start at position p0 of sequence
 * seq: from the call's rows (j >= p0) or the ring. part 1 = k, 2 = v. */
__device__ __forceinline__ const float *key_row(const SwaxInferAttnCall &c, int seq, long p0, int r0, long j, int h,
                                                int part) {
    const int HD = c.H * c.dh;
    if (j >= p0) return c.qkv + (size_t)(r0 + (j - p0)) * c.ldq + (size_t)part * HD + (size_t)h * c.dh;
    const float *ring = c.state + (size_t)seq * c.per_seq + c.ring_off + (size_t)(part - 1) * c.window * HD;
    return ring + (size_t)(j % c.window) * HD + (size_t)h * c.dh;
}

/* Prefill on the training forward's kernels (prefill_tc below): row i of the
 * staging array st (T' = nprev + R rows of 3·H·dh) is position pos0 - nprev + i.
 * Rows < nprev come from the ring: q zero, k rotated back to unrotated (the
 * inverse of k_rope_rows' rotation at that position, the same angles), v as
 * stored; rows >= nprev are the call's rows as the projection wrote them
 * (before k_rope_rows). The forward rotates every row at its staging index:
 * RoPE makes q·k depend on the index difference only, which equals the
 * positions' difference. One block per staging row. */
__global__ void k_stage_prefill(SwaxInferAttnCall c, float *st, int nprev) {
    const int row = blockIdx.x, HD = c.H * c.dh, half = c.dh / 2;
    float *dst = st + (size_t)row * 3 * HD;
    if (row >= nprev) {
        const float *src = c.qkv + (size_t)(row - nprev) * c.ldq;
        for (int i = threadIdx.x; i < 3 * HD; i += blockDim.x) dst[i] = src[i];
        return;
    }
    const long p = c.pos0 - nprev + row;
    const float *kr = key_row(c, c.seq, c.pos0, 0, p, 0, 1), *vr = key_row(c, c.seq, c.pos0, 0, p, 0, 2);
    for (int i = threadIdx.x; i < HD; i += blockDim.x) dst[i] = 0.f, dst[2 * HD + i] = vr[i];
    for (int x = threadIdx.x; x < c.H * half; x += blockDim.x) {
        const int h = x / half, j = x % half;
        float cs, sn;
        rope_cs(c, j, p, cs, sn); /* k_rope_rows' angles */
        const float y0 = kr[h * c.dh + j], y1 = kr[h * c.dh + j + half];
        dst[HD + h * c.dh + j] = __fadd_rn(__fmul_rn(y0, cs), __fmul_rn(y1, sn));
        dst[HD + h * c.dh + j + half] = __fsub_rn(__fmul_rn(y1, cs), __fmul_rn(y0, sn));
    }
}

template <int DP> constexpr size_t prefill_smem() {
    return sizeof(float) * ((size_t)PQ * (DP + 4) + 2 * (size_t)PK * (DP + 4) + (size_t)PQ * (PK + 1));
}

/* FAST: each K/V tile's 32 row addresses are made once per tile (one ring
 * modulo per key, by 32 threads) instead of per element (two 64-bit modulos
 * and offset products per staged float): the same staged values, so the same
 * bits as the previous kernel (FAST = false, SWAX_INFER_KERNELS=old). */
template <int DP, bool FAST>
__global__ void __launch_bounds__(PNT) k_attn_prefill(SwaxInferAttnCall c) {
    extern __shared__ float4 smem4[];
    __shared__ const float *s_kp[PK], *s_vp[PK];
    float *smem = reinterpret_cast<float *>(smem4);
    constexpr int SP = DP + 4, NC = DP / 4, NU = PK / 4;
    float *sq = smem, *sk = sq + PQ * SP, *sv = sk + PK * SP, *sp = sv + PK * SP;
    const int h = blockIdx.y, i0 = blockIdx.x * PQ, tid = threadIdx.x, rl = tid >> 2, sub = tid & 3;
    const int dh = c.dh, HD = c.H * dh, R = c.R, w = c.window;
    const float scale = 1.0f / sqrtf((float)dh);
    const int nrow = min(PQ, R - i0);
    for (int x = tid; x < PQ * DP; x += PNT) {
        const int r = x / DP, d = x % DP;
        sq[r * SP + d] = r < nrow && d < dh ? c.qkv[(size_t)(i0 + r) * c.ldq + (size_t)h * dh + d] : 0.f;
    }
    const long pfirst = c.pos0 + i0, plast = c.pos0 + i0 + nrow - 1, prow = c.pos0 + i0 + rl;
    const bool rvalid = rl < nrow;
    const long jlo = pfirst - w + 1 > 0 ? pfirst - w + 1 : 0;
    float m = -INFINITY, l = 0.f, acc[NC];
#pragma unroll
    for (int q = 0; q < NC; q++) acc[q] = 0.f;
    for (long j0 = jlo; j0 <= plast; j0 += PK) {
        __syncthreads(); /* the previous tile's readers are done */
        if (FAST) {
            if (tid < PK) {
                const long j = j0 + tid;
                s_kp[tid] = j <= plast ? key_row(c, c.seq, c.pos0, 0, j, h, 1) : nullptr;
                s_vp[tid] = j <= plast ? key_row(c, c.seq, c.pos0, 0, j, h, 2) : nullptr;
            }
            __syncthreads();
            for (int x = tid; x < PK * DP; x += PNT) {
                const int kk = x / DP, d = x % DP;
                const float *kp = s_kp[kk], *vp = s_vp[kk];
                const bool ok = kp != nullptr && d < dh;
                sk[kk * SP + d] = ok ? kp[d] : 0.f;
                sv[kk * SP + d] = ok ? vp[d] : 0.f;
            }
        } else {
            for (int x = tid; x < PK * DP; x += PNT) {
                const int kk = x / DP, d = x % DP;
                const long j = j0 + kk;
                float kv = 0.f, vv = 0.f;
                if (j <= plast && d < dh) {
                    kv = key_row(c, c.seq, c.pos0, 0, j, h, 1)[d];
                    vv = key_row(c, c.seq, c.pos0, 0, j, h, 2)[d];
                }
                sk[kk * SP + d] = kv;
                sv[kk * SP + d] = vv;
            }
        }
        __syncthreads();
        float s[NU], bmx = -INFINITY;
#pragma unroll
        for (int u = 0; u < NU; u++) {
            const int kk = sub + 4 * u;
            const long j = j0 + kk;
            const float *qr = sq + rl * SP, *kr = sk + kk * SP;
            float dot = 0.f;
#pragma unroll 8
            for (int d = 0; d < DP; d++) dot = fmaf(qr[d], kr[d], dot);
            const bool ok = rvalid && j <= prow && j > prow - w;
            s[u] = ok ? dot * scale : -INFINITY;
            bmx = fmaxf(bmx, s[u]);
        }
        bmx = fmaxf(bmx, __shfl_xor_sync(0xffffffffu, bmx, 1));
        bmx = fmaxf(bmx, __shfl_xor_sync(0xffffffffu, bmx, 2));
        const float mn = fmaxf(m, bmx);
        const float rs = m == -INFINITY ? 0.f : expf(m - mn);
        l *= rs;
#pragma unroll
        for (int q = 0; q < NC; q++) acc[q] *= rs;
        m = mn;
#pragma unroll
        for (int u = 0; u < NU; u++) {
            const float e = s[u] == -INFINITY ? 0.f : expf(s[u] - m);
            sp[rl * (PK + 1) + sub + 4 * u] = e;
            l += e;
        }
        __syncwarp(); /* a row's 4 threads are one quad of one warp */
        for (int kk = 0; kk < PK; kk++) {
            const float e = sp[rl * (PK + 1) + kk];
            const float *vr = sv + kk * SP + sub;
#pragma unroll
            for (int q = 0; q < NC; q++) acc[q] = fmaf(e, vr[4 * q], acc[q]);
        }
    }
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    if (!rvalid) return;
    const float inv = 1.0f / l;
    float *o = c.out + (size_t)(i0 + rl) * HD + (size_t)h * dh;
#pragma unroll
    for (int q = 0; q < NC; q++) {
        const int d = sub + 4 * q;
        if (d < dh) o[d] = acc[q] * inv;
    }
}

template <int DP>
__global__ void __launch_bounds__(DNW * 32) k_attn_decode(SwaxInferAttnCall c) {
    swax_pdl_trigger(); /* the output product, launched with PDL, may start loading weights (gemv.cu) */
    constexpr int NC = DP / 32;
    __shared__ float s_m[DNW], s_l[DNW], s_acc[DNW][DP];
    const int r = blockIdx.x, h = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int dh = c.dh, HD = c.H * dh, w = c.window;
    const int seq = c.rowseq[r];
    const long p = c.rowpos[r];
    const float scale = 1.0f / sqrtf((float)dh);
    const float *q = c.qkv + (size_t)r * c.ldq + (size_t)h * dh;
    float qv[NC], acc[NC];
#pragma unroll
    for (int u = 0; u < NC; u++) {
        const int d = lane + 32 * u;
        qv[u] = d < dh ? q[d] : 0.f;
        acc[u] = 0.f;
    }
    const long lo = p - w + 1 > 0 ? p - w + 1 : 0;
    float m = -INFINITY, l = 0.f;
    for (long j0 = lo + (long)warp * DKU; j0 <= p; j0 += (long)DNW * DKU) {
        const float *kp[DKU], *vp[DKU];
        float s[DKU];
#pragma unroll
        for (int u = 0; u < DKU; u++) {
            const long j = j0 + u;
            const long jj = j <= p ? j : p; /* clamped: a valid address, masked below */
            kp[u] = key_row(c, seq, p, r, jj, h, 1);
            vp[u] = key_row(c, seq, p, r, jj, h, 2);
            float part = 0.f;
#pragma unroll
            for (int t = 0; t < NC; t++) {
                const int d = lane + 32 * t;
                if (d < dh) part = fmaf(qv[t], kp[u][d], part);
            }
            s[u] = part;
        }
        float bmx = -INFINITY;
#pragma unroll
        for (int u = 0; u < DKU; u++) {
            s[u] = j0 + u <= p ? swax_warp_sum(s[u]) * scale : -INFINITY;
            bmx = fmaxf(bmx, s[u]);
        }
        const float mn = fmaxf(m, bmx);
        const float rs = m == -INFINITY ? 0.f : expf(m - mn);
        l *= rs;
#pragma unroll
        for (int t = 0; t < NC; t++) acc[t] *= rs;
        m = mn;
#pragma unroll
        for (int u = 0; u < DKU; u++) {
            const float e = s[u] == -INFINITY ? 0.f : expf(s[u] - m);
            l += e;
#pragma unroll
            for (int t = 0; t < NC; t++) {
                const int d = lane + 32 * t;
                if (d < dh) acc[t] = fmaf(e, vp[u][d], acc[t]);
            }
        }
    }
    if (lane == 0) s_m[warp] = m, s_l[warp] = l;
#pragma unroll
    for (int t = 0; t < NC; t++) s_acc[warp][lane + 32 * t] = acc[t];
    __syncthreads();
    float M = -INFINITY;
    for (int x = 0; x < DNW; x++) M = fmaxf(M, s_m[x]);
    float L = 0.f, f[DNW];
    for (int x = 0; x < DNW; x++) {
        f[x] = s_m[x] == -INFINITY ? 0.f : expf(s_m[x] - M);
        L += f[x] * s_l[x];
    }
    for (int d = threadIdx.x; d < dh; d += DNW * 32) {
        float a = 0.f;
        for (int x = 0; x < DNW; x++) a += f[x] * s_acc[x][d];
        c.out[(size_t)r * HD + (size_t)h * dh + d] = a / L;
    }
}

/* The one-launch decode kernels' arrival (every thread of the block calls it):
 * this block's global writes made visible, then one atomic increment of *cnt;
 * true in the block that arrives n-th, which then sees every other block's
 * writes. That block sets *cnt back to zero when done (for the next launch). */
__device__ __forceinline__ bool last_to_arrive(unsigned *cnt, unsigned n) {
    __shared__ int s_last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) s_last = atomicAdd(cnt, 1u) == n - 1;
    __syncthreads();
    if (s_last) __threadfence();
    return s_last;
}

/* The splits of (head h, row r) merged in split order (thread d < dh: column
 * d; at least DP threads): out = Σ_s e^{M_s − M} acc_s / Σ_s e^{M_s − M} l_s.
 * Then the row's k (rotated: kp, this head's dh values) and v into ring slot
 * p mod w: no split reads that slot (it holds position p − w, outside the
 * window; key p is read from qkv or kp), so nothing waits for the ring. The
 * partials are read through L2 (__ldcg: in the one-launch kernel other blocks
 * wrote them). */
template <int DP>
__device__ __forceinline__ void attn_merge(const SwaxInferAttnCall &c, int ks, int nsplit, const float *part, int h,
                                           int r, const float *kp) {
    const int tid = threadIdx.x, dh = c.dh, w = c.window, HD = c.H * dh;
    const int seq = c.rowseq[r];
    const long p = c.rowpos[r];
    const long lo = p - w + 1 > 0 ? p - w + 1 : 0;
    const int nact = (int)((p - lo) / ks) + 1;
    const float *pp = part + ((size_t)r * c.H + h) * nsplit * (DP + 2);
    float M = -INFINITY;
    for (int s = 0; s < nact; s++) M = fmaxf(M, __ldcg(pp + (size_t)s * (DP + 2)));
    float L = 0.f, a = 0.f;
    for (int s = 0; s < nact; s++) {
        const float *ps = pp + (size_t)s * (DP + 2);
        const float m_s = __ldcg(ps);
        const float f = m_s == -INFINITY ? 0.f : expf(m_s - M);
        L = fmaf(f, __ldcg(ps + 1), L);
        if (tid < dh) a = fmaf(f, __ldcg(ps + 2 + tid), a);
    }
    if (tid < dh) c.out[(size_t)r * HD + (size_t)h * dh + tid] = a / L;
    float *rk = c.state + (size_t)seq * c.per_seq + c.ring_off + (size_t)(p % w) * HD + (size_t)h * dh;
    float *rv = rk + (size_t)w * HD;
    const float *v = c.qkv + (size_t)r * c.ldq + 2 * (size_t)HD + (size_t)h * dh;
    for (int d = tid; d < dh; d += (int)blockDim.x) {
        rk[d] = kp[d];
        rv[d] = v[d];
    }
}

/* Decode, split keys (flash-decoding; the default): block per (split, head,
 * row), DS_T threads. A row's window [lo, p] is cut into splits of ks keys
 * from lo; split sp takes [lo + sp·ks, lo + sp·ks + ks) ∩ [lo, p] (empty
 * splits return at once: the merge never reads them). Scores: warp w takes
 * groups of DS_UK consecutive keys (lanes over dh, DS_UK rows in flight,
 * butterfly sums), into shared memory; then the split's max M, weights
 * e = exp(s − M) and their sum l (warp 0, lane-strided then butterfly); then
 * P·V with a thread per column and DS_T / DP key groups (keys i ≡ g), summed
 * over the groups in g order. Writes (M, l, Σ e·v) to part. Key p (the row's
 * own) comes from qkv, earlier ones from the ring (slot j mod w, one modulo
 * per block). Fixed order everywhere: the same bits for the same inputs.
 * FUSED (SWAX_DECODE_FUSED=1, decode_fused below): the whole decode attention in
 * one launch instead of three (rope, split, merge): each block rotates q and key
 * p itself (qkv stays unrotated; the ring gets the rotated key), and the last
 * split of a (head, row) to finish, told by an arrival counter, merges them
 * (attn_merge, the merge kernel's arithmetic and order: the same bits). */
constexpr int DS_T = 256, DS_W = DS_T / 32, DS_UK = 4, DS_KMAX = 1024;

template <int DP, bool FUSED>
__global__ void __launch_bounds__(DS_T) k_attn_dsplit(SwaxInferAttnCall c, int ks, int nsplit, float *part,
                                                      unsigned *arrived) {
    constexpr int NC = DP / 32, KG = DS_T / DP > 1 ? DS_T / DP : 1, CPT = DP / DS_T > 1 ? DP / DS_T : 1;
    __shared__ float s_q[DP], s_e[DS_KMAX], s_acc[KG][DP], s_l, s_kp[FUSED ? DP : 1];
    if (FUSED) swax_pdl_trigger(); /* the output product, launched with PDL, may start loading weights (gemv.cu) */
    const int sp = blockIdx.x, h = blockIdx.y, r = blockIdx.z, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int dh = c.dh, w = c.window, HD = c.H * dh;
    const int seq = c.rowseq[r];
    const long p = c.rowpos[r];
    const long lo = p - w + 1 > 0 ? p - w + 1 : 0;
    const long j0 = lo + (long)sp * ks;
    if (j0 > p) return; /* the whole block: no barrier pending, not counted */
    const int n = (int)(p - j0 + 1 < ks ? p - j0 + 1 : ks);
    const float scale = 1.0f / sqrtf((float)dh);
    const float *q = c.qkv + (size_t)r * c.ldq + (size_t)h * dh;
    const float *rk = c.state + (size_t)seq * c.per_seq + c.ring_off + (size_t)h * dh; /* slot s at rk + s·HD */
    const float *rv = rk + (size_t)w * HD;
    const float *ck = c.qkv + (size_t)r * c.ldq + HD + (size_t)h * dh, *cv = ck + HD; /* key p */
    if (FUSED) { /* q and key p rotated here (k_rope_rows' arithmetic, the same bits), qkv left as it is */
        const int half = dh / 2;
        for (int j = tid; j < half; j += DS_T) {
            float cs, sn;
            rope_cs(c, j, p, cs, sn);
            rope_pair(q[j], q[j + half], cs, sn, s_q[j], s_q[j + half]);
            rope_pair(ck[j], ck[j + half], cs, sn, s_kp[j], s_kp[j + half]);
        }
        for (int d = dh + tid; d < DP; d += DS_T) s_q[d] = 0.f;
        ck = s_kp;
    } else {
        for (int d = tid; d < DP; d += DS_T) s_q[d] = d < dh ? q[d] : 0.f;
    }
    const int slot0 = (int)(j0 % w); /* slot0 + i < 2w for i < n <= w */
    __syncthreads();
    float qv[NC];
#pragma unroll
    for (int t = 0; t < NC; t++) qv[t] = s_q[lane + 32 * t];
    for (int kb = warp * DS_UK; kb < n; kb += DS_W * DS_UK) {
        float s[DS_UK];
#pragma unroll
        for (int u = 0; u < DS_UK; u++) {
            const int i = kb + u < n ? kb + u : n - 1; /* clamped: a valid address, dropped below */
            int sl = slot0 + i;
            sl = sl >= w ? sl - w : sl;
            const float *kr = j0 + i == p ? ck : rk + (size_t)sl * HD;
            float part_ = 0.f;
#pragma unroll
            for (int t = 0; t < NC; t++) {
                const int d = lane + 32 * t;
                if (d < dh) part_ = fmaf(qv[t], kr[d], part_);
            }
            s[u] = part_;
        }
#pragma unroll
        for (int u = 0; u < DS_UK; u++) {
            const float v = swax_warp_sum(s[u]) * scale;
            if (lane == 0 && kb + u < n) s_e[kb + u] = v;
        }
    }
    __syncthreads();
    float M = -INFINITY; /* every warp the same value (max is exact in any order) */
    for (int i = lane; i < n; i += 32) M = fmaxf(M, s_e[i]);
    M = swax_warp_max(M);
    __syncthreads(); /* every thread has M before the scores become weights */
    for (int i = tid; i < n; i += DS_T) s_e[i] = s_e[i] == -INFINITY ? 0.f : expf(s_e[i] - M);
    __syncthreads();
    if (warp == 0) {
        float l = 0.f;
        for (int i = lane; i < n; i += 32) l += s_e[i];
        l = swax_warp_sum(l);
        if (lane == 0) s_l = l;
    }
    const int g = KG > 1 ? tid / DP : 0;
#pragma unroll
    for (int cc = 0; cc < CPT; cc++) {
        const int d = (KG > 1 ? tid % DP : tid) + DS_T * cc;
        float acc = 0.f;
        if (d < dh) {
#pragma unroll 8
            for (int i = g; i < n; i += KG) {
                int sl = slot0 + i;
                sl = sl >= w ? sl - w : sl;
                const float *vr = j0 + i == p ? cv : rv + (size_t)sl * HD;
                acc = fmaf(s_e[i], vr[d], acc);
            }
        }
        s_acc[g][d] = acc;
    }
    __syncthreads();
    float *o = part + ((size_t)r * c.H * nsplit + (size_t)h * nsplit + sp) * (DP + 2);
    if (tid == 0) o[0] = M, o[1] = s_l;
    for (int d = tid; d < DP; d += DS_T) {
        float a = s_acc[0][d];
#pragma unroll
        for (int x = 1; x < KG; x++) a += s_acc[x][d];
        o[2 + d] = a;
    }
    if (FUSED) { /* the last split of (head, row) to arrive merges them all, in split order */
        const int nact = (int)((p - lo) / ks) + 1;
        unsigned *cnt = arrived + (size_t)r * c.H + h;
        if (!last_to_arrive(cnt, (unsigned)nact)) return;
        attn_merge<DP>(c, ks, nsplit, part, h, r, s_kp);
        if (tid == 0) *cnt = 0u; /* ready for the next launch */
    }
}

/* The splits of (head, row) = blockIdx (x, y) merged in split order:
 * out = Σ_s e^{M_s − M} acc_s / Σ_s e^{M_s − M} l_s. Then this head's k and v
 * of the row into ring slot p mod w: no split reads that slot (it holds
 * position p − w, outside the window; key p is read from qkv), so no third
 * launch is needed. */
template <int DP>
__global__ void __launch_bounds__(DP) k_attn_dmerge(SwaxInferAttnCall c, int ks, int nsplit, const float *part) {
    swax_pdl_trigger(); /* the output product, launched with PDL, may start loading weights (gemv.cu) */
    attn_merge<DP>(c, ks, nsplit, part, blockIdx.x, blockIdx.y,
                   c.qkv + (size_t)blockIdx.y * c.ldq + (size_t)c.H * c.dh + (size_t)blockIdx.x * c.dh);
}

/* Row blockIdx.x of the stored rows: prefill stores rows R - n .. R - 1. */
__global__ void k_ring_write(SwaxInferAttnCall c, int first) {
    swax_pdl_trigger(); /* the output product, launched with PDL, may start loading weights (gemv.cu) */
    const int r = first + blockIdx.x, HD = c.H * c.dh;
    const int seq = row_seq(c, r);
    const long p = row_pos(c, r);
    float *rk = c.state + (size_t)seq * c.per_seq + c.ring_off + (size_t)(p % c.window) * HD;
    float *rv = rk + (size_t)c.window * HD;
    const float *src = c.qkv + (size_t)r * c.ldq + HD;
    for (int x = threadIdx.x; x < HD; x += blockDim.x) {
        rk[x] = src[x];
        rv[x] = src[HD + x];
    }
}

struct StepPtrs {
    float *C, *n, *m;
};
__device__ __forceinline__ StepPtrs step_ptrs(const SwaxInferStepCall &c, int r, int h) {
    float *base = c.state + (size_t)c.rowseq[r] * c.per_seq + c.off;
    const size_t dkv = (size_t)c.dk * c.dv;
    return {base + h * dkv, base + c.NH * dkv + (size_t)h * c.dk, base + c.NH * (dkv + c.dk) + h};
}

/* the step's scalars, as swax_mlstm_step_f */
__device__ __forceinline__ void step_gates(float lf, float m, float ig, float &mn, float &fp, float &ip) {
    const float lm = __fadd_rn(lf, m);
    mn = lm > ig ? lm : ig;
    fp = expf(__fsub_rn(lm, mn));
    ip = expf(__fsub_rn(ig, mn));
}

__global__ void __launch_bounds__(STEP_ET) k_mlstm_step(SwaxInferStepCall c) {
    extern __shared__ float4 step_smem4[];
    float *sq = reinterpret_cast<float *>(step_smem4), *sk = sq + c.dk;
    __shared__ float red[32];
    const int et = blockIdx.x, h = blockIdx.y, r = blockIdx.z, tid = threadIdx.x, dk = c.dk, dv = c.dv;
    const StepPtrs s = step_ptrs(c, r, h);
    const float *row = c.proj + (size_t)r * c.ldp;
    const float *q = row + (size_t)h * dk, *k = row + (size_t)(c.NH + h) * dk, *v = row + (size_t)2 * c.NH * dk + (size_t)h * dv;
    const float igv = c.ig[(size_t)r * c.NH + h], lfv = c.lf[(size_t)r * c.NH + h], m = *s.m;
    float mn, fp, ip;
    step_gates(lfv, m, igv, mn, fp, ip);
    const float scale = 1.0f / sqrtf((float)dk);
    float den_part = 0.f;
    for (int j = tid; j < dk; j += STEP_ET) {
        const float ik = __fmul_rn(ip, k[j]), qj = __fmul_rn(q[j], scale);
        sq[j] = qj;
        sk[j] = ik;
        den_part = fmaf(__fadd_rn(__fmul_rn(fp, s.n[j]), ik), qj, den_part);
    }
    const float den = swax_block_sum(den_part, red); /* also orders sq, sk */
    const int e = et * STEP_ET + tid;
    if (e < dv) {
        const float ve = v[e];
        float *__restrict__ Ce = s.C + e;
        float hacc = 0.f;
#pragma unroll 8
        for (int j = 0; j < dk; j++) {
            const float cn = __fadd_rn(__fmul_rn(fp, Ce[(size_t)j * dv]), __fmul_rn(sk[j], ve));
            Ce[(size_t)j * dv] = cn;
            hacc = __fadd_rn(hacc, __fmul_rn(cn, sq[j]));
        }
        const float em = expf(-mn), ad = fabsf(den);
        const float inv = 1.0f / ((ad >= em ? ad : em) + c.eps);
        c.h[(size_t)r * c.NH * dv + (size_t)h * dv + e] = hacc * inv;
    }
}

/* n' and m' of (row, head) = blockIdx (y, x), after every step block read n and m */
__global__ void k_mlstm_step_state(SwaxInferStepCall c) {
    const int h = blockIdx.x, r = blockIdx.y;
    const StepPtrs s = step_ptrs(c, r, h);
    const float *k = c.proj + (size_t)r * c.ldp + (size_t)(c.NH + h) * c.dk;
    const float m = *s.m;
    float mn, fp, ip;
    step_gates(c.lf[(size_t)r * c.NH + h], m, c.ig[(size_t)r * c.NH + h], mn, fp, ip);
    for (int j = threadIdx.x; j < c.dk; j += blockDim.x) s.n[j] = __fadd_rn(__fmul_rn(fp, s.n[j]), __fmul_rn(ip, k[j]));
    __syncthreads(); /* every thread has read m */
    if (threadIdx.x == 0) *s.m = mn;
}

/* mLSTM step, dk split (the default): block per (split of jt rows of C, head,
 * row), ST_T threads over the dv columns. Each updates its rows of C in place
 * with the previous kernel's arithmetic (the same bits of C) and writes its
 * partial h_e = Σ_{j in split} C'_je q̃_j (j order) to part. */
constexpr int ST_T = 256;
__device__ void step_merge(const SwaxInferStepCall &c, int nsplit, const float *part, int h, int r);
template <bool FUSED>
__global__ void __launch_bounds__(ST_T)
    k_mlstm_step_split(SwaxInferStepCall c, int jt, int nsplit, float *part, unsigned *arrived) {
    extern __shared__ float4 step_smem4[];
    float *sq = reinterpret_cast<float *>(step_smem4), *sk = sq + jt;
    const int sp = blockIdx.x, h = blockIdx.y, r = blockIdx.z, tid = threadIdx.x, dk = c.dk, dv = c.dv;
    const int j0 = sp * jt, nj = dk - j0 < jt ? dk - j0 : jt;
    const StepPtrs s = step_ptrs(c, r, h);
    const float *row = c.proj + (size_t)r * c.ldp;
    const float *q = row + (size_t)h * dk, *k = row + (size_t)(c.NH + h) * dk, *v = row + (size_t)2 * c.NH * dk + (size_t)h * dv;
    float mn, fp, ip;
    step_gates(c.lf[(size_t)r * c.NH + h], *s.m, c.ig[(size_t)r * c.NH + h], mn, fp, ip);
    const float scale = 1.0f / sqrtf((float)dk);
    for (int j = tid; j < nj; j += (int)blockDim.x) {
        sq[j] = __fmul_rn(q[j0 + j], scale);
        sk[j] = __fmul_rn(ip, k[j0 + j]);
    }
    __syncthreads();
    float *o = part + (((size_t)r * c.NH + h) * nsplit + sp) * dv;
    for (int e = tid; e < dv; e += (int)blockDim.x) {
        const float ve = v[e];
        float *__restrict__ Ce = s.C + (size_t)j0 * dv + e;
        float hacc = 0.f;
#pragma unroll 4
        for (int j = 0; j < nj; j++) {
            const float cn = __fadd_rn(__fmul_rn(fp, Ce[(size_t)j * dv]), __fmul_rn(sk[j], ve));
            Ce[(size_t)j * dv] = cn;
            hacc = __fadd_rn(hacc, __fmul_rn(cn, sq[j]));
        }
        o[e] = hacc;
    }
    if (FUSED) { /* the last split of (head, row) to arrive merges them (at least STEP_ET threads) */
        unsigned *cnt = arrived + (size_t)r * c.NH + h;
        if (!last_to_arrive(cnt, (unsigned)nsplit)) return;
        step_merge(c, nsplit, part, h, r);
        if (tid == 0) *cnt = 0u; /* ready for the next launch */
    }
}

/* (head, row) = blockIdx (x, y), STEP_ET threads, after every split: den as
 * the previous kernel (same order, same bits), h_e = Σ_s part_s (split order;
 * one split gives the previous kernel's bits), then n' and m' written. */
__global__ void __launch_bounds__(STEP_ET) k_mlstm_step_merge(SwaxInferStepCall c, int nsplit, const float *part) {
    step_merge(c, nsplit, part, blockIdx.x, blockIdx.y);
}

/* The merge of (head h, row r) by a block of at least STEP_ET threads: den over
 * the first STEP_ET (the sum of swax_block_sum over STEP_ET threads: more
 * threads add exact zeros), h over all. The partials are read through L2
 * (__ldcg: in the one-launch kernel other blocks of the launch wrote them). */
__device__ void step_merge(const SwaxInferStepCall &c, int nsplit, const float *part, int h, int r) {
    __shared__ float red[32];
    const int tid = threadIdx.x, dk = c.dk, dv = c.dv;
    const StepPtrs s = step_ptrs(c, r, h);
    const float *row = c.proj + (size_t)r * c.ldp;
    const float *q = row + (size_t)h * dk, *k = row + (size_t)(c.NH + h) * dk;
    const float m = *s.m;
    float mn, fp, ip;
    step_gates(c.lf[(size_t)r * c.NH + h], m, c.ig[(size_t)r * c.NH + h], mn, fp, ip);
    const float scale = 1.0f / sqrtf((float)dk);
    float den_part = 0.f;
    for (int j = tid; tid < STEP_ET && j < dk; j += STEP_ET) {
        const float ik = __fmul_rn(ip, k[j]), qj = __fmul_rn(q[j], scale);
        const float nn = __fadd_rn(__fmul_rn(fp, s.n[j]), ik);
        den_part = fmaf(nn, qj, den_part);
        s.n[j] = nn; /* this thread's own j: read above, nobody else reads it */
    }
    const float den = swax_block_sum(den_part, red); /* its barriers: every thread has read m */
    const float em = expf(-mn), ad = fabsf(den);
    const float inv = 1.0f / ((ad >= em ? ad : em) + c.eps);
    const float *pp = part + ((size_t)r * c.NH + h) * nsplit * dv;
    for (int e = tid; e < dv; e += (int)blockDim.x) {
        float a = __ldcg(pp + e);
        for (int x = 1; x < nsplit; x++) a = __fadd_rn(a, __ldcg(pp + (size_t)x * dv + e));
        c.h[(size_t)r * c.NH * dv + (size_t)h * dv + e] = a * inv;
    }
    if (tid == 0) *s.m = mn;
}

__global__ void __launch_bounds__(ARG_THREADS) k_argmax(int32_t *out, const float *logits, int V, int Vused) {
    __shared__ float s_v[ARG_THREADS];
    __shared__ int s_i[ARG_THREADS];
    const float *z = logits + (size_t)blockIdx.x * V;
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int i = threadIdx.x; i < Vused; i += ARG_THREADS)
        if (z[i] > bv) bv = z[i], bi = i; /* NaN never compares greater; the first of equals */
    s_v[threadIdx.x] = bv;
    s_i[threadIdx.x] = bi;
    __syncthreads();
    for (int o = ARG_THREADS / 2; o > 0; o >>= 1) {
        if ((int)threadIdx.x < o) {
            const float v2 = s_v[threadIdx.x + o];
            const int i2 = s_i[threadIdx.x + o];
            if (v2 > s_v[threadIdx.x] || (v2 == s_v[threadIdx.x] && i2 < s_i[threadIdx.x]))
                s_v[threadIdx.x] = v2, s_i[threadIdx.x] = i2;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = s_i[0] == INT_MAX ? 0 : s_i[0];
}

template <int DP, bool FAST> void launch_prefill(const SwaxInferAttnCall *c) {
    static bool configured = false;
    constexpr size_t sm = prefill_smem<DP>();
    if (!configured) {
        SWAX_CUDA_CHECK(
            cudaFuncSetAttribute(k_attn_prefill<DP, FAST>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm));
        configured = true;
    }
    k_attn_prefill<DP, FAST><<<dim3(swax_ceil_div((size_t)c->R, PQ), c->H), PNT, sm, swax_cuda_stream()>>>(*c);
    SWAX_CUDA_LAUNCHED();
}
template <int DP> void launch_prefill(const SwaxInferAttnCall *c, bool old) {
    if (old) launch_prefill<DP, false>(c);
    else launch_prefill<DP, true>(c);
}

template <int DP> void launch_decode(const SwaxInferAttnCall *c) {
    k_attn_decode<DP><<<dim3(c->R, c->H), DNW * 32, 0, swax_cuda_stream()>>>(*c);
    SWAX_CUDA_LAUNCHED();
    k_ring_write<<<c->R, 128, 0, swax_cuda_stream()>>>(*c, 0);
    SWAX_CUDA_LAUNCHED();
}

/* Scratch for the split kernels' partial results and the one-launch kernels'
 * arrival counters (slots no other file uses). */
constexpr int SCR_DEC_ATTN = SWAX_SCRATCH_SLOTS - 1, SCR_DEC_STEP = SWAX_SCRATCH_SLOTS - 2;
constexpr int SCR_PRE_ATTN = SWAX_SCRATCH_SLOTS - 3, SCR_CNT_ATTN = SWAX_SCRATCH_SLOTS - 4;
constexpr int SCR_CNT_STEP = SWAX_SCRATCH_SLOTS - 5;
static_assert(SCR_CNT_STEP > SWAX_SCRATCH_GDN, "infer.cu's scratch slots collide with the enum");

/* n arrival counters in scratch slot `slot`, zero: zeroed when the arena is new
 * or grew (a memset queued before the first kernel that uses them; told by the
 * scratch epoch, which only an allocation moves, even one that comes back at
 * the same address), and every one-launch kernel's last block sets its counter back to
 * zero. A graph's warm-up step runs before its capture with the same sizes
 * (and the same SWAX_DECODE_FUSED), so no allocation is ever captured. */
static unsigned *arrival_counters(int slot, size_t n) {
    static size_t zeroed[SWAX_SCRATCH_SLOTS];
    const unsigned long ep = swax_cuda_scratch_epoch();
    unsigned *p = static_cast<unsigned *>(swax_cuda_scratch(slot, sizeof(unsigned) * n));
    if (swax_cuda_scratch_epoch() != ep) zeroed[slot] = 0; /* this call (re)allocated the slot */
    if (n > zeroed[slot]) {
        SWAX_CUDA_CHECK(
            cudaMemsetAsync(p + zeroed[slot], 0, sizeof(unsigned) * (n - zeroed[slot]), swax_cuda_stream()));
        zeroed[slot] = n;
    }
    return p;
}

/* Whether decode takes the one-launch kernels (SWAX_DECODE_FUSED=1; opt-in until a
 * GPU run times them): the attention in one launch instead of rope + split +
 * merge, the mLSTM step in one instead of split + merge, the same bits. Read at
 * every launch (a captured graph keeps the choice it was captured with). */
static bool decode_fused() {
    const char *e = getenv("SWAX_DECODE_FUSED");
    return e && !strcmp(e, "1");
}

/* Which decode and prefill kernels. The split decode kernels (attention per
 * (split of keys, head, row), the mLSTM step per (rows of C, head, row), each
 * with a merge launch) are for grids that would leave SMs idle: batch 1 of
 * the 1.4b preset runs 16 attention blocks without splitting. Where the
 * (row, head) grid already fills the card they only add a launch and the
 * partials' traffic (H200, 1.4b, batch 64: 4.82 ms a step split vs 4.29 per
 * (row, head)), so by default ("auto") a call takes the split kernels only
 * below 2 blocks per SM. Prefill: staging that computes every staged
 * float's address measured faster than the per-tile row addresses (H200,
 * 1.4b, 4k context: 11,410 vs 10,368 tokens/s; same bits), so auto takes it.
 * SWAX_INFER_KERNELS=old / new force one family everywhere (A/B runs, tests).
 * Read at every launch (host side; a captured graph keeps the choice it was
 * captured with). */
enum KernelChoice { K_AUTO, K_OLD, K_NEW };
static KernelChoice kernel_choice() {
    const char *e = getenv("SWAX_INFER_KERNELS");
    if (e && !strcmp(e, "old")) return K_OLD;
    if (e && !strcmp(e, "new")) return K_NEW;
    return K_AUTO;
}
/* whether a decode launch of `blocks` (row, head) blocks takes the split kernels */
static bool use_split(long blocks) {
    const KernelChoice k = kernel_choice();
    return k == K_NEW || (k == K_AUTO && blocks < 2L * swax_cuda_sm_count());
}
/* a positive integer from the environment, else def (tests: split sizes) */
static long env_long(const char *name, long def) {
    const char *e = getenv(name);
    const long v = e ? atol(e) : 0;
    return v > 0 ? v : def;
}

/* Keys per split: enough blocks for ~4 per SM over R·H (row, head) pairs,
 * in multiples of one pass of the block's warps (DS_W·DS_UK keys), at most
 * DS_KMAX (the score buffer); SWAX_INFER_SPLIT_KEYS overrides. */
static int decode_split_keys(const SwaxInferAttnCall *c) {
    const long RH = (long)c->R * c->H, pass = DS_W * DS_UK;
    long ns = (4L * swax_cuda_sm_count() + RH - 1) / RH;
    ns = ns < 1 ? 1 : ns;
    long ks = (c->window + ns - 1) / ns;
    ks = (ks + pass - 1) / pass * pass;
    ks = env_long("SWAX_INFER_SPLIT_KEYS", ks);
    return (int)(ks < 1 ? 1 : ks > DS_KMAX ? DS_KMAX : ks);
}

/* whether the split decode takes this call's shape of nsplit splits */
static bool decode_split_fits(const SwaxInferAttnCall *c, long nsplit) {
    return (long)c->R * c->H * nsplit <= 65536 && c->R <= 65535 && c->H <= 65535;
}

/* The split decode (decode_split_fits): rope, split, merge; or one launch (fused) */
template <int DP> void launch_decode_split(const SwaxInferAttnCall *c, int ks, long nsplit, bool fused) {
    cudaStream_t st = swax_cuda_stream();
    float *part = static_cast<float *>(
        swax_cuda_scratch(SCR_DEC_ATTN, sizeof(float) * (size_t)c->R * c->H * (size_t)nsplit * (DP + 2)));
    const dim3 grid((unsigned)nsplit, c->H, c->R);
    if (fused) {
        unsigned *cnt = arrival_counters(SCR_CNT_ATTN, (size_t)c->R * c->H);
        k_attn_dsplit<DP, true><<<grid, DS_T, 0, st>>>(*c, ks, (int)nsplit, part, cnt);
        SWAX_CUDA_LAUNCHED();
        return;
    }
    k_attn_dsplit<DP, false><<<grid, DS_T, 0, st>>>(*c, ks, (int)nsplit, part, nullptr);
    SWAX_CUDA_LAUNCHED();
    k_attn_dmerge<DP><<<dim3(c->H, c->R), DP, 0, st>>>(*c, ks, (int)nsplit, part);
    SWAX_CUDA_LAUNCHED();
}

struct Graph {
    cudaGraphExec_t exec;
    unsigned long epoch;
    int warm;
};

} // namespace

/* Whether a prefill call of the "cuda" table runs its attention on the
 * training forward's tensor-core kernels (attn_tc.cu: bf16 operands, fp32
 * softmax): head dims 64 and 128, the default; SWAX_PREFILL_ATTN=fp32 keeps
 * the fp32 CUDA-core kernel (k_attn_prefill). Run 9 (H100, 1.4b): 35k -> 102k
 * tokens/s at 32k context, flat to 1M (docs/performance.md). */
static bool prefill_tc(const SwaxInferAttnCall *c, bool table_bf16) {
    const char *e = getenv("SWAX_PREFILL_ATTN");
    return table_bf16 && (c->dh == 64 || c->dh == 128) && !(e && !strcmp(e, "fp32"));
}

/* Stage ring + rows (k_stage_prefill), run the forward over T' = nprev + R
 * rows with the layer's window, keep the last R rows' outputs. The staging
 * reads the rows before k_rope_rows rotates them and the ring before
 * k_ring_write overwrites it (stream order). Extra work: the nprev staged
 * rows' queries (zero: their outputs are dropped), nprev / T' of the forward. */
static void prefill_attn_tc(const SwaxInferAttnCall *c, cudaStream_t st) {
    const int nprev = (int)(c->pos0 < (long)c->window - 1 ? c->pos0 : (long)c->window - 1);
    const int Tp = nprev + c->R, HD = c->H * c->dh;
    const size_t nq = (size_t)Tp * 3 * HD, no = (size_t)Tp * HD, nl = (size_t)c->H * Tp;
    float *buf = static_cast<float *>(swax_cuda_scratch(SCR_PRE_ATTN, sizeof(float) * (nq + no + nl)));
    float *qkv = buf, *out = buf + nq, *lse = out + no;
    k_stage_prefill<<<Tp, 256, 0, st>>>(*c, qkv, nprev);
    SWAX_CUDA_LAUNCHED();
    SwaxAttnCall a;
    memset(&a, 0, sizeof a);
    a.B = 1, a.T = Tp, a.H = c->H, a.dh = c->dh, a.window = c->window, a.rope_theta = c->rope_theta;
    a.qkv = qkv, a.out = out, a.lse = lse;
    swax_cuda_attn_fwd_tc(&a);
    SWAX_CUDA_CHECK(cudaMemcpyAsync(c->out, out + (size_t)nprev * HD, sizeof(float) * (size_t)c->R * HD,
                                    cudaMemcpyDeviceToDevice, st));
}

static void infer_attn(const SwaxInferAttnCall *c, bool table_bf16) {
    SWAX_CUDA_REQUIRE(c->R >= 0 && c->H >= 1 && c->dh >= 2 && c->dh % 2 == 0 && c->dh <= 256 && c->window >= 1);
    SWAX_CUDA_REQUIRE(c->qkv && c->out && c->state && c->rope_theta > 0);
    SWAX_CUDA_REQUIRE(c->seq >= 0 ? c->pos0 >= 0 : (c->rowseq && c->rowpos));
    if (c->R == 0) return;
    cudaStream_t st = swax_cuda_stream();
    const bool tc = c->seq >= 0 && prefill_tc(c, table_bf16);
    if (tc) prefill_attn_tc(c, st);
    /* decode: split kernels (use_split) where the shape fits, in one launch (rope included) when fused */
    int ks = 0;
    long nsplit = 0;
    if (c->seq < 0) ks = decode_split_keys(c), nsplit = (c->window + ks - 1) / ks;
    const bool split = c->seq < 0 && use_split((long)c->R * c->H) && decode_split_fits(c, nsplit);
    const bool fused = split && decode_fused();
    if (!fused) {
        const size_t nrope = (size_t)c->R * (c->dh / 2);
        k_rope_rows<<<swax_ceil_div(nrope, ROPE_THREADS), ROPE_THREADS, 0, st>>>(*c); /* the ring takes rotated keys */
        SWAX_CUDA_LAUNCHED();
    }
    if (c->seq >= 0) {
        const bool old = kernel_choice() != K_NEW;
        if (!tc) { /* else prefill_attn_tc wrote out above */
            if (c->dh <= 64) launch_prefill<64>(c, old);
            else if (c->dh <= 128) launch_prefill<128>(c, old);
            else launch_prefill<256>(c, old);
        }
        const int first = c->R > c->window ? c->R - c->window : 0;
        k_ring_write<<<c->R - first, 128, 0, st>>>(*c, first);
        SWAX_CUDA_LAUNCHED();
    } else if (split) { /* decode: the ring write is in the launch sequence of the kernel taken */
        if (c->dh <= 64) launch_decode_split<64>(c, ks, nsplit, fused);
        else if (c->dh <= 128) launch_decode_split<128>(c, ks, nsplit, fused);
        else launch_decode_split<256>(c, ks, nsplit, fused);
    } else {
        if (c->dh <= 64) launch_decode<64>(c);
        else if (c->dh <= 128) launch_decode<128>(c);
        else launch_decode<256>(c);
    }
}

extern "C" void swax_cuda_infer_attn(const SwaxInferAttnCall *c) { infer_attn(c, false); }
/* the "cuda" table's: may take the tensor-core prefill (prefill_tc) */
extern "C" void swax_cuda_infer_attn_bf16(const SwaxInferAttnCall *c) { infer_attn(c, true); }

extern "C" void swax_cuda_infer_mlstm_step(const SwaxInferStepCall *c) {
    SWAX_CUDA_REQUIRE(c->R >= 0 && c->NH >= 1 && c->dk >= 1 && c->dv >= 1);
    if (c->R == 0) return;
    SWAX_CUDA_REQUIRE(c->proj && c->ig && c->lf && c->h && c->state && c->rowseq);
    SWAX_CUDA_REQUIRE(c->R <= 65535 && c->NH <= 65535);
    const size_t sm = swax_smem_f(2 * (size_t)c->dk);
    SWAX_CUDA_REQUIRE(sm <= 48 * 1024);
    cudaStream_t st = swax_cuda_stream();
    if (use_split((long)swax_ceil_div((size_t)c->dv, STEP_ET) * c->NH * c->R)) {
        /* rows of C per split: ~2 blocks per SM over NH·R (head, row) pairs;
         * SWAX_INFER_STEP_ROWS overrides */
        const long HR = (long)c->NH * c->R;
        long ns = (2L * swax_cuda_sm_count() + HR - 1) / HR;
        ns = ns < 1 ? 1 : ns > c->dk ? c->dk : ns;
        long jt = env_long("SWAX_INFER_STEP_ROWS", (c->dk + ns - 1) / ns);
        jt = jt > c->dk ? c->dk : jt;
        const long nsplit = (c->dk + jt - 1) / jt;
        const bool fused = decode_fused();
        int threads = c->dv >= ST_T ? ST_T : (int)swax_ceil_div((size_t)c->dv, 32) * 32;
        if (fused && threads < STEP_ET) threads = STEP_ET; /* its merge's den is over STEP_ET threads */
        float *part = static_cast<float *>(
            swax_cuda_scratch(SCR_DEC_STEP, sizeof(float) * (size_t)HR * (size_t)nsplit * (size_t)c->dv));
        const dim3 grid((unsigned)nsplit, c->NH, c->R);
        const size_t sm_split = swax_smem_f(2 * (size_t)jt);
        if (fused) { /* one launch: the last split of each (head, row) merges */
            unsigned *cnt = arrival_counters(SCR_CNT_STEP, (size_t)HR);
            k_mlstm_step_split<true><<<grid, threads, sm_split, st>>>(*c, (int)jt, (int)nsplit, part, cnt);
            SWAX_CUDA_LAUNCHED();
            return;
        }
        k_mlstm_step_split<false><<<grid, threads, sm_split, st>>>(*c, (int)jt, (int)nsplit, part, nullptr);
        SWAX_CUDA_LAUNCHED();
        k_mlstm_step_merge<<<dim3(c->NH, c->R), STEP_ET, 0, st>>>(*c, (int)nsplit, part);
        SWAX_CUDA_LAUNCHED();
        return;
    }
    k_mlstm_step<<<dim3(swax_ceil_div((size_t)c->dv, STEP_ET), c->NH, c->R), STEP_ET, sm, st>>>(*c);
    SWAX_CUDA_LAUNCHED();
    k_mlstm_step_state<<<dim3(c->NH, c->R), 128, 0, st>>>(*c);
    SWAX_CUDA_LAUNCHED();
}

extern "C" void swax_cuda_argmax(int32_t *out, const float *logits, int N, int V, int Vused) {
    SWAX_CUDA_REQUIRE(N >= 0 && V >= 1 && Vused >= 1 && Vused <= V);
    if (N == 0) return;
    k_argmax<<<N, ARG_THREADS, 0, swax_cuda_stream()>>>(out, logits, V, Vused);
    SWAX_CUDA_LAUNCHED();
}

extern "C" void swax_cuda_graph_run(void **graph, void (*fn)(void *), void *arg) {
    Graph *g = static_cast<Graph *>(*graph);
    if (!g) {
        g = static_cast<Graph *>(calloc(1, sizeof *g));
        SWAX_CUDA_REQUIRE(g != NULL);
        *graph = g;
    }
    if (g->exec && g->epoch != swax_cuda_scratch_epoch()) { /* scratch moved: the graph points at freed memory */
        SWAX_CUDA_CHECK(cudaGraphExecDestroy(g->exec));
        g->exec = nullptr;
        g->warm = 0;
    }
    if (!g->exec) {
        if (!g->warm) { /* warm-up: plans, scratch sizes */
            fn(arg);
            g->warm = 1;
            return;
        }
        cudaStream_t st = swax_cuda_stream();
        const unsigned long ep = swax_cuda_scratch_epoch();
        cudaGraph_t gr;
        SWAX_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
        fn(arg);
        SWAX_CUDA_CHECK(cudaStreamEndCapture(st, &gr));
        SWAX_CUDA_REQUIRE(swax_cuda_scratch_epoch() == ep); /* nothing may grow inside a capture */
        SWAX_CUDA_CHECK(cudaGraphInstantiate(&g->exec, gr, 0));
        SWAX_CUDA_CHECK(cudaGraphDestroy(gr));
        g->epoch = ep;
    }
    SWAX_CUDA_CHECK(cudaGraphLaunch(g->exec, swax_cuda_stream()));
}

extern "C" void swax_cuda_graph_free(void *graph) {
    Graph *g = static_cast<Graph *>(graph);
    if (!g) return;
    if (g->exec) {
        SWAX_CUDA_CHECK(cudaStreamSynchronize(swax_cuda_stream()));
        SWAX_CUDA_CHECK(cudaGraphExecDestroy(g->exec));
    }
    free(g);
}
