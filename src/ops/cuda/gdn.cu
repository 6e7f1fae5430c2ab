/* gdn.cu — the Gated DeltaNet layer (SPEC §2, pattern letter D), the gdn_fwd
 * and gdn_bwd slots of both CUDA tables: everything between the layer's input
 * and output projections, computing what the CPU slots compute
 * (ops/cpu/gdn_layer.c and the chunkwise cell of gdn_cell_impl.inc, per
 * (b, h)), with the same saved tensors (xc, qkv, rqk, beta, g, o, orstd, Ss)
 * and the same meaning of every SwaxGdnCall field, over device memory, in
 * fp32 on CUDA cores (no tensor cores, accurate expf, no fast math).
 *
 * Notation of gdn_cell_impl.inc: in a chunk of n tokens from c0 (local i, j)
 * entering with state S0 (dv×dk): G = cumsum(g), γ = e^G, M_ij = e^{G_i−G_j},
 * A_ij = β_i M_ij (k_i·k_j) (j < i), Tm = (I + A)⁻¹, U = Tm diag(β) V,
 * W = Tm diag(βγ) K, Δ = U − W S0ᵀ, o_i = γ_i S0 q_i + Σ_{j<=i} P_ij δ_j with
 * P_ij = M_ij (q_i·k_j), S' = γ_{n−1} S0 + Σ_j M_{n−1,j} δ_j k_jᵀ.
 *
 * Chunks follow the CPU's rule (swax_mlstm_chunk_starts: L tokens from 0, cut
 * at document starts); k_starts writes them per sequence to scratch (B, MC +
 * 1), padded with T (MC = c->max_chunks, which must hold every sequence's
 * count, as on the CPU). The chunk length L must be 1..128 (Tm and A of a
 * chunk live in shared memory). Any T, dk, dv, NH.
 *
 * Forward (7 launches):
 *   k_starts      thread per sequence: the chunk table.
 *   k_prep        block per row: causal conv (no look-back across a document
 *                 start), silu, per-head L2 norms of q and k (thread per head,
 *                 sequential sum), β, g. Saves xc, qkv, rqk, beta, g.
 *   k_chunk_prep  block per (b, h, chunk): G (one thread, sequential cumsum as
 *                 the CPU), γ, A; Tm by forward substitution, one thread per
 *                 column (column j of Tm depends only on column j); U, W.
 *                 To scratch: G, γ, Tm rows, U, W.
 *   k_fwd_scan    block per (b, h, 16 rows of dv), sequential over chunks:
 *                 the state rows (16×dk) in shared memory; at each chunk start
 *                 (zeroed at a document start) stored to Ss; Δ rows for the
 *                 block's dv columns (to scratch); S <- γ_{n−1} S + Σ_j
 *                 M_{n−1,j} δ_j k_jᵀ. The rows of S are independent, so dv
 *                 splits across blocks.
 *   k_delta_p     block per (b, h, chunk): P (to scratch).
 *   k_fwd_out     block per (b, h, chunk): o.
 *                 (k_delta_p_t / k_fwd_out_t, the default: the same with the
 *                 rows of K and S0 that a warp reads across staged transposed
 *                 in shared memory; k_chunk_prep's A and k_bwd_chunk's pair
 *                 products likewise; same bits; SWAX_GDN_KERNELS=old for the
 *                 first ones)
 *   k_out_norm    block per row: the gated per-head RMSNorm (y, orstd).
 * Backward (10 launches):
 *   k_starts, k_chunk_prep (recomputed: identical bits), k_delta_p (also Δ =
 *                 U − W Ssᵀ, bit-identical to the forward scan's),
 *   k_out_bwd     block per row: d gate (into dproj), d o (scratch).
 *   k_bwd_scan    block per (b, h, 16 rows of dv), reverse over chunks: the
 *                 gradient into each chunk's end state dS' (stored to scratch
 *                 when the next chunk continues from it), dΔ (scratch), and
 *                 dS0 = Σ_i γ_i dO_i q_iᵀ + γ_{n−1} dS' − dΔᵀ W, carried
 *                 unless the chunk starts at a reset.
 *   k_bwd_chunk   block per (b, h, chunk): everything else of the chunk, in
 *                 phases (dO·δ, dW, S0ᵀdO, dS'ᵀδ; dB = Tmᵀ d(U, W); dA, dv,
 *                 dβ; dq, dk; the scalars), then one thread the reverse
 *                 cumsum of dG + dγ·γ -> dg. d log M is summed as row sums
 *                 minus column sums of one matrix (the CPU's += / −= pairs).
 *   k_prep_bwd    block per row: the gates (into dproj), the L2 norms and silu
 *                 back to the conv outputs (in place).
 *   k_conv_bwd    thread per (row, channel): d proj of the conv inputs.
 *   k_partials, k_final: the small parameters' gradients, as the CPU: partial
 *                 sums per block of 64 rows (rows in order), then the blocks in
 *                 order added onto the gradient.
 * No atomics: every output element has one owner and every reduction runs in
 * a fixed order (reruns give identical bits). Matrix-like products are
 * thread-per-element sequential dot products over operands in global memory
 * (L1/L2) or shared memory: a first version, correct and deterministic, not
 * yet tuned (no register tiling, no tensor cores).
 *
 * Scratch (slot SWAX_SCRATCH_GDN; floats; BT = B·NH·T token rows): forward
 * BT·(2 + 2L + dk + 2dv) and B·(MC + 1) ints; the backward adds
 * BT·(4L + 4dk + 2dv) + B·NH·MC·dv·dk (dS' at chunk ends) + ceil(N/64)·(D +
 * 8D + 2NH) (partials); the backward also uses c->scratch (dO, d qkv, dβ, dg,
 * as the CPU).
 * Cost (FMAs per token and head): forward ≈ 3·dk·dv + L·(1.5dk + dv),
 * backward ≈ 7·dk·dv + L·(3dk + 3dv); the two scans are sequential over
 * chunks with B·NH·dv/16 blocks each. */
#include <string.h>

#include "ops/cuda/cuda_common.cuh"

/* SWAX_KERNEL_PROFILE=1: every launch timed (kprof.cuh) */
#define KPROF_TITLE "GDN kernel"
#include "ops/cuda/kprof.cuh"
#ifndef GDN_LAUNCH
#define GDN_LAUNCH KPROF_LAUNCH
#endif

extern __shared__ float gdn_smem[]; /* every kernel's dynamic shared memory */

namespace {

constexpr int KW = 4;       /* conv taps */
constexpr int ROWBLK = 64;  /* rows per partial sum of the small parameters' gradients (the CPU's) */
constexpr int NT = 256;     /* threads of the cell kernels */
constexpr int NR = 128;     /* threads of the row kernels */
constexpr int EV = 16;      /* dv rows of the state per scan block */
constexpr int LMAX = 128;   /* largest chunk */
constexpr float QK_EPS = 1e-6f;

struct Gdn {
    int B, T, NH, dk, dv, L, MC, D, C, N, BH, SP; /* SP: shared row stride of a state tile */
    float eps;
    const uint8_t *ds;
    const float *proj;
    long ldp;
    const float *conv_w, *A_log, *dt_bias, *norm_w;
    float *y, *xc, *qkv, *rqk, *beta, *g, *o, *orstd, *Ss;
    const float *dy;
    float *dproj, *dconv_w, *dA_log, *ddt_bias, *dnorm_w;
    float *dO, *dX, *dB, *dG; /* c->scratch */
    int *cs;
    /* inference (the infer_gdn slot; 0 / NULL in training): the first chunk's
     * length when it is a head chunk up to an absolute multiple of L (0: none),
     * and the state the scan starts from and writes its end state back to
     * (B = 1: (NH, dv, dk), as Ss's per (b, h) blocks) */
    int head;
    float *Sio;
    float *G, *gam, *Tm, *U, *W, *Dl, *P;                                  /* forward scratch */
    float *dDl, *CM, *X, *E, *cA, *Z, *dW, *R, *dBv, *dBk, *dSe, *part; /* backward scratch */
};

__device__ __forceinline__ float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

/* How far back (0..3 rows) position t may look: not before 0, not before its document's start. */
__device__ __forceinline__ int look_back(const uint8_t *ds, int t) {
    int back = 0;
    while (back < KW - 1 && t - back > 0 && !(ds && ds[t - back])) back++;
    return back;
}

__device__ __forceinline__ float dotv(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

__device__ __forceinline__ const float *qrow(const Gdn &p, int b, int t, int h) {
    return p.qkv + ((size_t)b * p.T + t) * p.C + (size_t)h * p.dk;
}
__device__ __forceinline__ const float *krow(const Gdn &p, int b, int t, int h) {
    return p.qkv + ((size_t)b * p.T + t) * p.C + (size_t)(p.NH + h) * p.dk;
}
__device__ __forceinline__ const float *vrow(const Gdn &p, int b, int t, int h) {
    return p.qkv + ((size_t)b * p.T + t) * p.C + p.D + (size_t)h * p.dv;
}

/* Chunk ci of sequence b: start and length (0 past the last chunk). */
__device__ __forceinline__ void chunk_of(const Gdn &p, int b, int ci, int &c0, int &n) {
    const int *r = p.cs + (size_t)b * (p.MC + 1);
    c0 = r[ci];
    n = r[ci + 1] - c0;
    if (n > p.L) n = p.L; /* only when max_chunks was too small (a caller error): stay in bounds */
}

/* Whether chunk ci + 1 exists and continues from chunk ci's end state. */
__device__ __forceinline__ bool carries(const Gdn &p, int b, int ci) {
    if (ci + 1 >= p.MC) return false;
    const int c1 = p.cs[(size_t)b * (p.MC + 1) + ci + 1];
    return c1 < p.T && !(p.ds && p.ds[(size_t)b * p.T + c1]);
}

/* ---- forward ---- */

__global__ void k_starts(const Gdn p) {
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= p.B) return;
    int *row = p.cs + (size_t)b * (p.MC + 1);
    const uint8_t *ds = p.ds ? p.ds + (size_t)b * p.T : nullptr;
    int n = 0;
    for (int c0 = 0; c0 < p.T && n < p.MC; n++) {
        row[n] = c0;
        const int len = n == 0 && p.head > 0 ? p.head : p.L;
        int e = c0 + len < p.T ? c0 + len : p.T;
        if (ds)
            for (int t = c0 + 1; t < e; t++)
                if (ds[t]) {
                    e = t;
                    break;
                }
        c0 = e;
    }
    for (; n <= p.MC; n++) row[n] = p.T;
}

/* smem: u (C), scale (2NH) */
__global__ void k_prep(const Gdn p) {
    float *const smem = gdn_smem;
    float *u = smem, *sc = u + p.C;
    const int r = blockIdx.x, b = r / p.T, t = r % p.T, tid = threadIdx.x;
    const int back = look_back(p.ds ? p.ds + (size_t)b * p.T : nullptr, t);
    for (int ch = tid; ch < p.C; ch += blockDim.x) {
        const float *w = p.conv_w + (size_t)ch * KW;
        float acc = 0;
        for (int j = 0; j <= back; j++) acc += w[KW - 1 - j] * p.proj[(size_t)(r - j) * p.ldp + ch];
        p.xc[(size_t)r * p.C + ch] = acc;
        u[ch] = acc * sigm(acc);
    }
    __syncthreads();
    const float qs = 1.0f / sqrtf((float)p.dk);
    for (int ph = tid; ph < 2 * p.NH; ph += blockDim.x) {
        const float *x = u + (size_t)ph * p.dk;
        float ss = 0;
        for (int j = 0; j < p.dk; j++) ss += x[j] * x[j];
        const float rr = 1.0f / sqrtf(ss + QK_EPS);
        p.rqk[(size_t)r * 2 * p.NH + ph] = rr;
        sc[ph] = ph < p.NH ? rr * qs : rr;
    }
    __syncthreads();
    for (int ch = tid; ch < p.C; ch += blockDim.x) p.qkv[(size_t)r * p.C + ch] = ch < p.D ? u[ch] * sc[ch / p.dk] : u[ch];
    const float *pre = p.proj + (size_t)r * p.ldp + 3 * (size_t)p.D;
    for (int h = tid; h < p.NH; h += blockDim.x) {
        p.beta[(size_t)r * p.NH + h] = sigm(pre[h]);
        const float x = pre[p.NH + h] + p.dt_bias[h];
        p.g[(size_t)r * p.NH + h] = -expf(p.A_log[h]) * (x > 20.0f ? x : log1pf(expf(x)));
    }
}

/* smem: A, Tm (L×L each), G, γ, β (L each) */
/* Tiles of rows read across a warp, transposed in shared memory (the _t
 * kernels below): tile[d][c] = src[c * ld + d] for c < nc, d < dk. */
constexpr int GDN_TW = 32;
__device__ __forceinline__ void stage_t(float *tile, const float *src, size_t ld, int nc, int dk) {
    for (int x = threadIdx.x; x < nc * dk; x += blockDim.x) {
        const int c = x / dk, d = x % dk;
        tile[d * (GDN_TW + 1) + c] = src[(size_t)c * ld + d];
    }
}

__global__ void k_chunk_prep(const Gdn p, int tiled) {
    float *const smem = gdn_smem;
    const int L = p.L, ci = blockIdx.x, bh = blockIdx.y, b = bh / p.NH, h = bh % p.NH, tid = threadIdx.x;
    int c0, n;
    chunk_of(p, b, ci, c0, n);
    if (n <= 0) return;
    float *A = smem, *Tm = A + (size_t)L * L, *G = Tm + (size_t)L * L, *gam = G + L, *bet = gam + L;
    const size_t row0 = (size_t)b * p.T + c0, srow = (size_t)bh * p.T + c0;
    if (tid == 0) {
        float acc = 0;
        for (int i = 0; i < n; i++) {
            acc += p.g[(row0 + i) * p.NH + h];
            G[i] = acc;
            gam[i] = expf(acc);
            p.G[srow + i] = acc;
            p.gam[srow + i] = gam[i];
        }
    }
    for (int i = tid; i < n; i += blockDim.x) bet[i] = p.beta[(row0 + i) * p.NH + h];
    __syncthreads();
    if (!tiled) {
        for (int x = tid; x < n * n; x += blockDim.x) {
            const int i = x / n, j = x % n;
            if (j < i) A[i * L + j] = bet[i] * expf(G[i] - G[j]) * dotv(krow(p, b, c0 + i, h), krow(p, b, c0 + j, h), p.dk);
        }
    } else { /* k_j from a transposed tile of 32 rows (stage_t), k_i read along its row: the same products */
        float *tile = bet + L;
        for (int j0 = 0; j0 < n; j0 += GDN_TW) {
            const int nj = n - j0 < GDN_TW ? n - j0 : GDN_TW;
            __syncthreads();
            stage_t(tile, krow(p, b, c0 + j0, h), p.C, nj, p.dk);
            __syncthreads();
            for (int x = tid; x < n * GDN_TW; x += blockDim.x) {
                const int i = x / GDN_TW, jl = x % GDN_TW, j = j0 + jl;
                if (jl >= nj || j >= i) continue;
                const float *ki = krow(p, b, c0 + i, h);
                float s = 0;
                for (int d = 0; d < p.dk; d++) s += ki[d] * tile[d * (GDN_TW + 1) + jl];
                A[i * L + j] = bet[i] * expf(G[i] - G[j]) * s;
            }
        }
    }
    __syncthreads();
    /* Tm = (I + A)⁻¹: Tm_ij = −Σ_{j<=m<i} A_im Tm_mj, m ascending (the CPU's order) */
    for (int j = tid; j < n; j += blockDim.x) {
        for (int i = 0; i < j; i++) Tm[i * L + j] = 0;
        Tm[j * L + j] = 1;
        for (int i = j + 1; i < n; i++) {
            float acc = 0;
            for (int m = j; m < i; m++) acc += -A[i * L + m] * Tm[m * L + j];
            Tm[i * L + j] = acc;
        }
    }
    __syncthreads();
    for (int x = tid; x < n * n; x += blockDim.x) {
        const int i = x / n, j = x % n;
        p.Tm[(srow + i) * L + j] = Tm[i * L + j];
    }
    for (int x = tid; x < n * p.dv; x += blockDim.x) {
        const int i = x / p.dv, e = x % p.dv;
        float acc = 0;
        for (int j = 0; j <= i; j++) acc += Tm[i * L + j] * bet[j] * vrow(p, b, c0 + j, h)[e];
        p.U[(srow + i) * p.dv + e] = acc;
    }
    for (int x = tid; x < n * p.dk; x += blockDim.x) {
        const int i = x / p.dk, d = x % p.dk;
        float acc = 0;
        for (int j = 0; j <= i; j++) acc += Tm[i * L + j] * bet[j] * gam[j] * krow(p, b, c0 + j, h)[d];
        p.W[(srow + i) * p.dk + d] = acc;
    }
}

/* smem: S rows (EV × SP), e^{G_{n−1}−G_j} (L) */
__global__ void k_fwd_scan(const Gdn p) {
    float *const smem = gdn_smem;
    const int e0 = blockIdx.x * EV, bh = blockIdx.y, b = bh / p.NH, h = bh % p.NH, tid = threadIdx.x;
    const int ne = p.dv - e0 < EV ? p.dv - e0 : EV, dk = p.dk, SP = p.SP;
    float *S = smem, *ej = S + EV * SP;
    for (int x = tid; x < EV * SP; x += blockDim.x) {
        const int el = x / SP, d = x % SP;
        S[x] = p.Sio && el < ne && d < dk ? p.Sio[((size_t)bh * p.dv + e0 + el) * dk + d] : 0.0f;
    }
    __syncthreads();
    for (int ci = 0; ci < p.MC; ci++) {
        int c0, n;
        chunk_of(p, b, ci, c0, n);
        if (n <= 0) break;
        const size_t srow = (size_t)bh * p.T + c0;
        if (p.ds && p.ds[(size_t)b * p.T + c0]) {
            for (int x = tid; x < EV * SP; x += blockDim.x) S[x] = 0;
            __syncthreads();
        }
        float *Ss = p.Ss + ((size_t)bh * p.MC + ci) * p.dv * dk;
        for (int x = tid; x < ne * dk; x += blockDim.x) {
            const int el = x / dk, d = x % dk;
            Ss[(size_t)(e0 + el) * dk + d] = S[el * SP + d];
        }
        const float Gl = p.G[srow + n - 1], gl = p.gam[srow + n - 1];
        for (int j = tid; j < n; j += blockDim.x) ej[j] = expf(Gl - p.G[srow + j]);
        for (int x = tid; x < n * ne; x += blockDim.x) {
            const int i = x / ne, el = x % ne;
            const float acc = dotv(S + el * SP, p.W + (srow + i) * dk, dk);
            p.Dl[(srow + i) * p.dv + e0 + el] = p.U[(srow + i) * p.dv + e0 + el] - acc;
        }
        __syncthreads();
        for (int x = tid; x < ne * dk; x += blockDim.x) {
            const int el = x / dk, d = x % dk;
            float s = gl * S[el * SP + d];
            for (int j = 0; j < n; j++) s += ej[j] * p.Dl[(srow + j) * p.dv + e0 + el] * krow(p, b, c0 + j, h)[d];
            S[el * SP + d] = s;
        }
        __syncthreads();
    }
    if (p.Sio) /* inference: the end state back (these rows are this block's alone) */
        for (int x = tid; x < ne * dk; x += blockDim.x) {
            const int el = x / dk, d = x % dk;
            p.Sio[((size_t)bh * p.dv + e0 + el) * dk + d] = S[el * SP + d];
        }
}

/* P_ij = M_ij (q_i·k_j) (j <= i); with_delta: Δ = U − W S0ᵀ (the scan's arithmetic). smem: G (L) */
__global__ void k_delta_p(const Gdn p, int with_delta) {
    float *const smem = gdn_smem;
    const int L = p.L, ci = blockIdx.x, bh = blockIdx.y, b = bh / p.NH, h = bh % p.NH, tid = threadIdx.x;
    int c0, n;
    chunk_of(p, b, ci, c0, n);
    if (n <= 0) return;
    const size_t srow = (size_t)bh * p.T + c0;
    float *G = smem;
    for (int i = tid; i < n; i += blockDim.x) G[i] = p.G[srow + i];
    __syncthreads();
    for (int x = tid; x < n * n; x += blockDim.x) {
        const int i = x / n, j = x % n;
        if (j <= i)
            p.P[(srow + i) * L + j] = expf(G[i] - G[j]) * dotv(qrow(p, b, c0 + i, h), krow(p, b, c0 + j, h), p.dk);
    }
    if (with_delta) {
        const float *S0 = p.Ss + ((size_t)bh * p.MC + ci) * p.dv * p.dk;
        for (int x = tid; x < n * p.dv; x += blockDim.x) {
            const int i = x / p.dv, e = x % p.dv;
            const float acc = dotv(S0 + (size_t)e * p.dk, p.W + (srow + i) * p.dk, p.dk);
            p.Dl[(srow + i) * p.dv + e] = p.U[(srow + i) * p.dv + e] - acc;
        }
    }
}

__global__ void k_fwd_out(const Gdn p) {
    const int L = p.L, ci = blockIdx.x, bh = blockIdx.y, b = bh / p.NH, h = bh % p.NH, tid = threadIdx.x;
    int c0, n;
    chunk_of(p, b, ci, c0, n);
    if (n <= 0) return;
    const size_t srow = (size_t)bh * p.T + c0;
    const float *S0 = p.Ss + ((size_t)bh * p.MC + ci) * p.dv * p.dk;
    for (int x = tid; x < n * p.dv; x += blockDim.x) {
        const int i = x / p.dv, e = x % p.dv;
        float acc = p.gam[srow + i] * dotv(S0 + (size_t)e * p.dk, qrow(p, b, c0 + i, h), p.dk);
        const float *Pi = p.P + (srow + i) * L;
        for (int j = 0; j <= i; j++) acc += Pi[j] * p.Dl[(srow + j) * p.dv + e];
        p.o[((size_t)b * p.T + c0 + i) * p.D + (size_t)h * p.dv + e] = acc;
    }
}

/* The same two kernels with the operands that a warp would read across rows
 * (32 rows of S0 or of K, each walked along dk: 32 cache lines a load) staged
 * transposed in shared memory in tiles of GDN_TW rows, so a warp's reads are
 * consecutive words; every output keeps its thread, its operands and their
 * order (same bits). Thread x of a tile: row i = x / GDN_TW, column x % GDN_TW.
 * smem: tile (dk × (GDN_TW + 1)), then G (L). SWAX_GDN_KERNELS=old: the kernels above. */

__global__ void k_delta_p_t(const Gdn p, int with_delta) {
    float *const smem = gdn_smem;
    const int L = p.L, ci = blockIdx.x, bh = blockIdx.y, b = bh / p.NH, h = bh % p.NH, tid = threadIdx.x;
    const int dk = p.dk;
    int c0, n;
    chunk_of(p, b, ci, c0, n);
    if (n <= 0) return;
    const size_t srow = (size_t)bh * p.T + c0;
    float *tile = smem, *G = smem + (size_t)dk * (GDN_TW + 1);
    for (int i = tid; i < n; i += blockDim.x) G[i] = p.G[srow + i];
    for (int j0 = 0; j0 < n; j0 += GDN_TW) { /* P_ij = M_ij (q_i · k_j), k_j from the tile */
        const int nj = n - j0 < GDN_TW ? n - j0 : GDN_TW;
        __syncthreads();
        stage_t(tile, krow(p, b, c0 + j0, h), p.C, nj, dk);
        __syncthreads();
        for (int x = tid; x < n * GDN_TW; x += blockDim.x) {
            const int i = x / GDN_TW, jl = x % GDN_TW, j = j0 + jl;
            if (jl >= nj || j > i) continue;
            const float *q = qrow(p, b, c0 + i, h);
            float s = 0;
            for (int d = 0; d < dk; d++) s += q[d] * tile[d * (GDN_TW + 1) + jl];
            p.P[(srow + i) * L + j] = expf(G[i] - G[j]) * s;
        }
    }
    if (!with_delta) return;
    const float *S0 = p.Ss + ((size_t)bh * p.MC + ci) * p.dv * dk;
    for (int e0 = 0; e0 < p.dv; e0 += GDN_TW) { /* Δ = U − W S0ᵀ, rows of S0 from the tile */
        const int ne = p.dv - e0 < GDN_TW ? p.dv - e0 : GDN_TW;
        __syncthreads();
        stage_t(tile, S0 + (size_t)e0 * dk, dk, ne, dk);
        __syncthreads();
        for (int x = tid; x < n * GDN_TW; x += blockDim.x) {
            const int i = x / GDN_TW, el = x % GDN_TW;
            if (el >= ne) continue;
            const float *w = p.W + (srow + i) * dk;
            float s = 0;
            for (int d = 0; d < dk; d++) s += tile[d * (GDN_TW + 1) + el] * w[d];
            p.Dl[(srow + i) * p.dv + e0 + el] = p.U[(srow + i) * p.dv + e0 + el] - s;
        }
    }
}

__global__ void k_fwd_out_t(const Gdn p) {
    float *const smem = gdn_smem;
    const int L = p.L, ci = blockIdx.x, bh = blockIdx.y, b = bh / p.NH, h = bh % p.NH, tid = threadIdx.x;
    const int dk = p.dk;
    int c0, n;
    chunk_of(p, b, ci, c0, n);
    if (n <= 0) return;
    const size_t srow = (size_t)bh * p.T + c0;
    const float *S0 = p.Ss + ((size_t)bh * p.MC + ci) * p.dv * dk;
    float *tile = smem;
    for (int e0 = 0; e0 < p.dv; e0 += GDN_TW) {
        const int ne = p.dv - e0 < GDN_TW ? p.dv - e0 : GDN_TW;
        __syncthreads();
        stage_t(tile, S0 + (size_t)e0 * dk, dk, ne, dk);
        __syncthreads();
        for (int x = tid; x < n * GDN_TW; x += blockDim.x) {
            const int i = x / GDN_TW, el = x % GDN_TW, e = e0 + el;
            if (el >= ne) continue;
            const float *q = qrow(p, b, c0 + i, h);
            float s = 0;
            for (int d = 0; d < dk; d++) s += tile[d * (GDN_TW + 1) + el] * q[d];
            float acc = p.gam[srow + i] * s;
            const float *Pi = p.P + (srow + i) * L;
            for (int j = 0; j <= i; j++) acc += Pi[j] * p.Dl[(srow + j) * p.dv + e];
            p.o[((size_t)b * p.T + c0 + i) * p.D + (size_t)h * p.dv + e] = acc;
        }
    }
}

/* smem: rs (NH) */
__global__ void k_out_norm(const Gdn p) {
    float *const smem = gdn_smem;
    const int r = blockIdx.x, tid = threadIdx.x;
    const float *o = p.o + (size_t)r * p.D, *gate = p.proj + (size_t)r * p.ldp + 2 * (size_t)p.D;
    for (int h = tid; h < p.NH; h += blockDim.x) {
        const float *oh = o + (size_t)h * p.dv;
        float ss = 0;
        for (int e = 0; e < p.dv; e++) ss += oh[e] * oh[e];
        const float rs = 1.0f / sqrtf(ss / p.dv + p.eps);
        smem[h] = rs;
        p.orstd[(size_t)r * p.NH + h] = rs;
    }
    __syncthreads();
    for (int col = tid; col < p.D; col += blockDim.x) {
        const float gt = gate[col];
        p.y[(size_t)r * p.D + col] = o[col] * smem[col / p.dv] * p.norm_w[col] * gt * sigm(gt);
    }
}

/* ---- backward ---- */

/* smem: sdx (NH) */
__global__ void k_out_bwd(const Gdn p) {
    float *const smem = gdn_smem;
    const int r = blockIdx.x, tid = threadIdx.x;
    const float *o = p.o + (size_t)r * p.D, *dy = p.dy + (size_t)r * p.D;
    const float *gate = p.proj + (size_t)r * p.ldp + 2 * (size_t)p.D;
    float *dgate = p.dproj + (size_t)r * p.ldp + 2 * (size_t)p.D, *dor = p.dO + (size_t)r * p.D;
    for (int h = tid; h < p.NH; h += blockDim.x) {
        const float rs = p.orstd[(size_t)r * p.NH + h];
        float sdx = 0;
        for (int e = 0; e < p.dv; e++) {
            const int col = h * p.dv + e;
            const float silu = gate[col] * sigm(gate[col]), xh = o[col] * rs;
            sdx += dy[col] * silu * p.norm_w[col] * xh;
        }
        smem[h] = sdx / p.dv;
    }
    __syncthreads();
    for (int col = tid; col < p.D; col += blockDim.x) {
        const int h = col / p.dv;
        const float rs = p.orstd[(size_t)r * p.NH + h], gt = gate[col], s = sigm(gt), silu = gt * s;
        const float xh = o[col] * rs, on = xh * p.norm_w[col];
        dgate[col] = dy[col] * on * s * (1.0f + gt * (1.0f - s));
        dor[col] = rs * (dy[col] * silu * p.norm_w[col] - o[col] * rs * smem[h]);
    }
}

/* smem: dS' rows, new dS rows (EV × SP each), e^{G_{n−1}−G_j}, γ (L each) */
__global__ void k_bwd_scan(const Gdn p) {
    float *const smem = gdn_smem;
    const int e0 = blockIdx.x * EV, bh = blockIdx.y, b = bh / p.NH, h = bh % p.NH, tid = threadIdx.x;
    const int ne = p.dv - e0 < EV ? p.dv - e0 : EV, dk = p.dk, dv = p.dv, SP = p.SP, L = p.L;
    float *dS = smem, *nS = dS + EV * SP, *ej = nS + EV * SP, *gam = ej + L;
    int nch = 0;
    while (nch < p.MC && p.cs[(size_t)b * (p.MC + 1) + nch] < p.T) nch++;
    bool carry = false;
    for (int ci = nch - 1; ci >= 0; ci--) {
        int c0, n;
        chunk_of(p, b, ci, c0, n);
        const size_t srow = (size_t)bh * p.T + c0, row0 = (size_t)b * p.T + c0;
        const float Gl = p.G[srow + n - 1], gl = p.gam[srow + n - 1];
        for (int j = tid; j < n; j += blockDim.x) {
            ej[j] = expf(Gl - p.G[srow + j]);
            gam[j] = p.gam[srow + j];
        }
        if (carry) {
            float *dSe = p.dSe + ((size_t)bh * p.MC + ci) * dv * dk;
            for (int x = tid; x < ne * dk; x += blockDim.x) {
                const int el = x / dk, d = x % dk;
                dSe[(size_t)(e0 + el) * dk + d] = dS[el * SP + d];
            }
        }
        __syncthreads();
        /* dΔ_j = Σ_{i>=j} P_ij dO_i + M_{n−1,j} dS' k_j */
        for (int x = tid; x < n * ne; x += blockDim.x) {
            const int j = x / ne, el = x % ne, e = e0 + el;
            float acc = 0;
            for (int i = j; i < n; i++) acc += p.P[(srow + i) * L + j] * p.dO[(row0 + i) * p.D + (size_t)h * dv + e];
            if (carry) acc += ej[j] * dotv(dS + el * SP, krow(p, b, c0 + j, h), dk);
            p.dDl[(srow + j) * dv + e] = acc;
        }
        __syncthreads();
        /* dS0 = Σ_i γ_i dO_i q_iᵀ + γ_{n−1} dS' − dΔᵀ W */
        for (int x = tid; x < ne * dk; x += blockDim.x) {
            const int el = x / dk, d = x % dk, e = e0 + el;
            float acc = 0;
            for (int i = 0; i < n; i++) acc += gam[i] * p.dO[(row0 + i) * p.D + (size_t)h * dv + e] * qrow(p, b, c0 + i, h)[d];
            if (carry) acc += gl * dS[el * SP + d];
            for (int i = 0; i < n; i++) acc += -p.dDl[(srow + i) * dv + e] * p.W[(srow + i) * dk + d];
            nS[el * SP + d] = acc;
        }
        __syncthreads();
        const bool reset = c0 == 0 || (p.ds && p.ds[row0]);
        if (!reset)
            for (int x = tid; x < ne * dk; x += blockDim.x) {
                const int el = x / dk, d = x % dk;
                dS[el * SP + d] = nS[el * SP + d];
            }
        carry = !reset;
        __syncthreads();
    }
}

/* smem: G, γ, β, dγ, dβ, dG, x2 (L each), <dS', S0> per row of dv (dv); tiled: then the
 * transposed tiles (dv + 2·dk) × (GDN_TW + 1). tiled: steps 1 and 3's products over pairs
 * (i, j) read the j rows (of Δ; of U, W and K) from tiles of GDN_TW rows staged transposed,
 * as k_delta_p_t does: every output keeps its thread, operands and order (same bits). */
__global__ void k_bwd_chunk(const Gdn p, int tiled) {
    float *const smem = gdn_smem;
    const int L = p.L, ci = blockIdx.x, bh = blockIdx.y, b = bh / p.NH, h = bh % p.NH, tid = threadIdx.x;
    const int dk = p.dk, dv = p.dv, bd = blockDim.x;
    int c0, n;
    chunk_of(p, b, ci, c0, n);
    if (n <= 0) return;
    const bool carry = carries(p, b, ci);
    float *G = smem, *gam = G + L, *bet = gam + L, *dgam = bet + L, *dbet = dgam + L, *dGs = dbet + L, *x2 = dGs + L;
    float *sdot = x2 + L;
    float *tU = sdot + dv, *tW = tU + (size_t)dv * (GDN_TW + 1), *tK = tW + (size_t)dk * (GDN_TW + 1);
    const size_t srow = (size_t)bh * p.T + c0, row0 = (size_t)b * p.T + c0;
    const float *S0 = p.Ss + ((size_t)bh * p.MC + ci) * dv * dk, *dS = p.dSe + ((size_t)bh * p.MC + ci) * dv * dk;
#define DO(i) (p.dO + (row0 + (i)) * p.D + (size_t)h * dv)
#define MAT(buf, i, j) buf[(srow + (i)) * L + (j)]
    for (int i = tid; i < n; i += bd) {
        G[i] = p.G[srow + i];
        gam[i] = p.gam[srow + i];
        bet[i] = p.beta[(row0 + i) * p.NH + h];
    }
    __syncthreads();
    /* 1. dO_i·δ_j -> CM = M·(dO·δ) and X = (dO·δ)·P (j <= i); Z = S0ᵀ dO; dW = −S0ᵀ dΔ; R = dS'ᵀ (M_{n−1,·} δ) */
    if (!tiled) {
        for (int x = tid; x < n * n; x += bd) {
            const int i = x / n, j = x % n;
            if (j > i) continue;
            const float dp = dotv(DO(i), p.Dl + (srow + j) * dv, dv);
            MAT(p.CM, i, j) = expf(G[i] - G[j]) * dp;
            MAT(p.X, i, j) = j < i ? dp * MAT(p.P, i, j) : 0.0f;
        }
    } else { /* Δ_j from a transposed tile */
        for (int j0 = 0; j0 < n; j0 += GDN_TW) {
            const int nj = n - j0 < GDN_TW ? n - j0 : GDN_TW;
            __syncthreads();
            stage_t(tU, p.Dl + (srow + j0) * dv, dv, nj, dv);
            __syncthreads();
            for (int x = tid; x < n * GDN_TW; x += bd) {
                const int i = x / GDN_TW, jl = x % GDN_TW, j = j0 + jl;
                if (jl >= nj || j > i) continue;
                const float *dOi = DO(i);
                float dp = 0;
                for (int e = 0; e < dv; e++) dp += dOi[e] * tU[e * (GDN_TW + 1) + jl];
                MAT(p.CM, i, j) = expf(G[i] - G[j]) * dp;
                MAT(p.X, i, j) = j < i ? dp * MAT(p.P, i, j) : 0.0f;
            }
        }
    }
    for (int x = tid; x < n * dk; x += bd) {
        const int i = x / dk, d = x % dk;
        const float *dOi = DO(i), *dDi = p.dDl + (srow + i) * dv, *Di = p.Dl + (srow + i) * dv;
        float z = 0, w = 0, r = 0;
        for (int e = 0; e < dv; e++) {
            const float s = S0[(size_t)e * dk + d];
            z += dOi[e] * s;
            w += -dDi[e] * s;
        }
        p.Z[(srow + i) * dk + d] = z;
        p.dW[(srow + i) * dk + d] = w;
        if (carry) {
            const float ej = expf(G[n - 1] - G[i]);
            for (int e = 0; e < dv; e++) r += ej * Di[e] * dS[(size_t)e * dk + d];
            p.R[(srow + i) * dk + d] = r;
        }
    }
    if (carry)
        for (int e = tid; e < dv; e += bd) sdot[e] = dotv(dS + (size_t)e * dk, S0 + (size_t)e * dk, dk);
    __syncthreads();
    /* 2. dBv = Tmᵀ dΔ, dBk = Tmᵀ dW; dγ from the outputs; the carry's d log M terms */
    for (int x = tid; x < n * dv; x += bd) {
        const int j = x / dv, e = x % dv;
        float acc = 0;
        for (int i = j; i < n; i++) acc += MAT(p.Tm, i, j) * p.dDl[(srow + i) * dv + e];
        p.dBv[(srow + j) * dv + e] = acc;
    }
    for (int x = tid; x < n * dk; x += bd) {
        const int j = x / dk, d = x % dk;
        float acc = 0;
        for (int i = j; i < n; i++) acc += MAT(p.Tm, i, j) * p.dW[(srow + i) * dk + d];
        p.dBk[(srow + j) * dk + d] = acc;
    }
    for (int i = tid; i < n; i += bd) {
        dgam[i] = dotv(qrow(p, b, c0 + i, h), p.Z + (srow + i) * dk, dk);
        x2[i] = carry ? dotv(krow(p, b, c0 + i, h), p.R + (srow + i) * dk, dk) : 0.0f;
    }
    __syncthreads();
    /* 3. dA_ij = −(dBv_i·U_j + dBk_i·W_j) (j < i), A_ij = β_i M_ij (k_i·k_j); dv; dβ, dγ of U, W */
    if (!tiled) {
        for (int x = tid; x < n * n; x += bd) {
            const int i = x / n, j = x % n;
            if (j >= i) continue;
            const float dA = -(dotv(p.dBv + (srow + i) * dv, p.U + (srow + j) * dv, dv) +
                               dotv(p.dBk + (srow + i) * dk, p.W + (srow + j) * dk, dk));
            const float M = expf(G[i] - G[j]), kk = dotv(krow(p, b, c0 + i, h), krow(p, b, c0 + j, h), dk);
            MAT(p.E, i, j) = dA * M * kk;
            MAT(p.X, i, j) += dA * bet[i] * M * kk;
            MAT(p.cA, i, j) = dA * bet[i] * M;
        }
    } else { /* U_j, W_j, k_j from transposed tiles; the same three sums in the same order */
        for (int j0 = 0; j0 < n; j0 += GDN_TW) {
            const int nj = n - j0 < GDN_TW ? n - j0 : GDN_TW;
            __syncthreads();
            stage_t(tU, p.U + (srow + j0) * dv, dv, nj, dv);
            stage_t(tW, p.W + (srow + j0) * dk, dk, nj, dk);
            stage_t(tK, krow(p, b, c0 + j0, h), p.C, nj, dk);
            __syncthreads();
            for (int x = tid; x < n * GDN_TW; x += bd) {
                const int i = x / GDN_TW, jl = x % GDN_TW, j = j0 + jl;
                if (jl >= nj || j >= i) continue;
                const float *bv = p.dBv + (srow + i) * dv, *bk = p.dBk + (srow + i) * dk, *ki = krow(p, b, c0 + i, h);
                float s1 = 0, s2 = 0, kk = 0;
                for (int e = 0; e < dv; e++) s1 += bv[e] * tU[e * (GDN_TW + 1) + jl];
                for (int d = 0; d < dk; d++) s2 += bk[d] * tW[d * (GDN_TW + 1) + jl];
                for (int d = 0; d < dk; d++) kk += ki[d] * tK[d * (GDN_TW + 1) + jl];
                const float dA = -(s1 + s2), M = expf(G[i] - G[j]);
                MAT(p.E, i, j) = dA * M * kk;
                MAT(p.X, i, j) += dA * bet[i] * M * kk;
                MAT(p.cA, i, j) = dA * bet[i] * M;
            }
        }
    }
    for (int x = tid; x < n * dv; x += bd) {
        const int j = x / dv, e = x % dv;
        p.dX[(row0 + j) * p.C + p.D + (size_t)h * dv + e] = bet[j] * p.dBv[(srow + j) * dv + e];
    }
    __syncthreads(); /* dgam of step 2 is complete before step 3's += below */
    for (int j = tid; j < n; j += bd) {
        const float tk = dotv(krow(p, b, c0 + j, h), p.dBk + (srow + j) * dk, dk);
        dbet[j] = dotv(vrow(p, b, c0 + j, h), p.dBv + (srow + j) * dv, dv) + gam[j] * tk;
        dgam[j] += bet[j] * tk;
    }
    __syncthreads();
    /* 4. dq, dk; the scalars */
    for (int x = tid; x < n * dk; x += bd) {
        const int i = x / dk, d = x % dk;
        float acc = gam[i] * p.Z[(srow + i) * dk + d];
        for (int j = 0; j <= i; j++) acc += MAT(p.CM, i, j) * krow(p, b, c0 + j, h)[d];
        p.dX[(row0 + i) * p.C + (size_t)h * dk + d] = acc;
    }
    for (int x = tid; x < n * dk; x += bd) {
        const int j = x / dk, d = x % dk;
        float acc = 0;
        for (int i = j; i < n; i++) acc += MAT(p.CM, i, j) * qrow(p, b, c0 + i, h)[d];
        if (carry) acc += p.R[(srow + j) * dk + d];
        acc += bet[j] * gam[j] * p.dBk[(srow + j) * dk + d];
        for (int m = 0; m < j; m++) acc += MAT(p.cA, j, m) * krow(p, b, c0 + m, h)[d];
        for (int i = j + 1; i < n; i++) acc += MAT(p.cA, i, j) * krow(p, b, c0 + i, h)[d];
        p.dX[(row0 + j) * p.C + (size_t)(p.NH + h) * dk + d] = acc;
    }
    for (int i = tid; i < n; i += bd) {
        float db = dbet[i], dg = 0;
        for (int j = 0; j < i; j++) {
            db += MAT(p.E, i, j);
            dg += MAT(p.X, i, j);
        }
        for (int m = i + 1; m < n; m++) dg -= MAT(p.X, m, i);
        if (carry) {
            if (i == n - 1) {
                for (int j = 0; j < n - 1; j++) dg += x2[j];
                float s = 0;
                for (int e = 0; e < dv; e++) s += sdot[e];
                dgam[i] += s;
            } else {
                dg -= x2[i];
            }
        }
        dbet[i] = db;
        dGs[i] = dg;
    }
    __syncthreads();
    if (tid == 0) {
        float r = 0;
        for (int i = n - 1; i >= 0; i--) {
            r += dGs[i] + dgam[i] * gam[i];
            p.dG[(row0 + i) * p.NH + h] = r;
            p.dB[(row0 + i) * p.NH + h] = dbet[i];
        }
    }
#undef DO
#undef MAT
}

/* smem: dot (2NH) */
__global__ void k_prep_bwd(const Gdn p) {
    float *const smem = gdn_smem;
    const int r = blockIdx.x, tid = threadIdx.x, NH = p.NH, dk = p.dk;
    const float *pre = p.proj + (size_t)r * p.ldp + 3 * (size_t)p.D;
    float *dpre = p.dproj + (size_t)r * p.ldp + 3 * (size_t)p.D;
    for (int h = tid; h < NH; h += blockDim.x) {
        const float be = p.beta[(size_t)r * NH + h], dg = p.dG[(size_t)r * NH + h];
        dpre[h] = p.dB[(size_t)r * NH + h] * be * (1.0f - be);
        dpre[NH + h] = dg * -expf(p.A_log[h]) * sigm(pre[NH + h] + p.dt_bias[h]);
    }
    const float qs = 1.0f / sqrtf((float)dk);
    const float *u = p.qkv + (size_t)r * p.C, *xc = p.xc + (size_t)r * p.C;
    float *d = p.dX + (size_t)r * p.C;
    for (int ph = tid; ph < 2 * NH; ph += blockDim.x) {
        const float s = ph < NH ? qs : 1.0f;
        float dot = 0;
        for (int j = ph * dk; j < (ph + 1) * dk; j++) dot += (u[j] / s) * (d[j] * s);
        smem[ph] = dot;
    }
    __syncthreads();
    for (int ch = tid; ch < p.C; ch += blockDim.x) {
        float dd = d[ch];
        if (ch < p.D) {
            const int ph = ch / dk;
            const float s = ph < NH ? qs : 1.0f, rq = p.rqk[(size_t)r * 2 * NH + ph];
            dd = rq * (dd * s - (u[ch] / s) * smem[ph]);
        }
        const float sg = sigm(xc[ch]);
        d[ch] = dd * (sg * (1.0f + xc[ch] * (1.0f - sg)));
    }
}

__global__ void k_conv_bwd(const Gdn p) {
    const size_t x = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= (size_t)p.N * p.C) return;
    const int r = (int)(x / p.C), ch = (int)(x % p.C), b = r / p.T, t = r % p.T;
    const uint8_t *ds = p.ds ? p.ds + (size_t)b * p.T : nullptr;
    float acc = 0;
    for (int j = 0; j < KW && t + j < p.T; j++) {
        if (look_back(ds, t + j) < j) break;
        acc += p.conv_w[(size_t)ch * KW + KW - 1 - j] * p.dX[(size_t)(r + j) * p.C + ch];
    }
    p.dproj[(size_t)r * p.ldp + ch] = acc;
}

/* Partial sums per block of ROWBLK rows, column x of [d norm_w (D) | d conv_w (C·4) | d A_log | d dt_bias (NH each)] */
__global__ void k_partials(const Gdn p) {
    const int PW = p.D + p.C * KW + 2 * p.NH;
    const int x = blockIdx.x * blockDim.x + threadIdx.x, bl = blockIdx.y;
    if (x >= PW) return;
    const int r0 = bl * ROWBLK, r1 = r0 + ROWBLK < p.N ? r0 + ROWBLK : p.N;
    float acc = 0;
    if (x < p.D) {
        const int h = x / p.dv;
        for (int r = r0; r < r1; r++) {
            const float gt = p.proj[(size_t)r * p.ldp + 2 * (size_t)p.D + x];
            const float silu = gt * sigm(gt), xh = p.o[(size_t)r * p.D + x] * p.orstd[(size_t)r * p.NH + h];
            acc += p.dy[(size_t)r * p.D + x] * silu * xh;
        }
    } else if (x < p.D + p.C * KW) {
        const int ch = (x - p.D) / KW, j = KW - 1 - (x - p.D) % KW;
        for (int r = r0; r < r1; r++) {
            const int b = r / p.T, t = r % p.T;
            if (look_back(p.ds ? p.ds + (size_t)b * p.T : nullptr, t) < j) continue;
            acc += p.dX[(size_t)r * p.C + ch] * p.proj[(size_t)(r - j) * p.ldp + ch];
        }
    } else if (x < p.D + p.C * KW + p.NH) {
        const int h = x - p.D - p.C * KW;
        for (int r = r0; r < r1; r++) acc += p.dG[(size_t)r * p.NH + h] * p.g[(size_t)r * p.NH + h];
    } else {
        const int h = x - p.D - p.C * KW - p.NH;
        for (int r = r0; r < r1; r++) acc += p.dproj[(size_t)r * p.ldp + 3 * (size_t)p.D + p.NH + h];
    }
    p.part[(size_t)bl * PW + x] = acc;
}

__global__ void k_final(const Gdn p, int nblk) {
    const int PW = p.D + p.C * KW + 2 * p.NH;
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= PW) return;
    float *dst = x < p.D                      ? p.dnorm_w + x
                 : x < p.D + p.C * KW         ? p.dconv_w + (x - p.D)
                 : x < p.D + p.C * KW + p.NH ? p.dA_log + (x - p.D - p.C * KW)
                                              : p.ddt_bias + (x - p.D - p.C * KW - p.NH);
    float acc = *dst;
    for (int bl = 0; bl < nblk; bl++) acc += p.part[(size_t)bl * PW + x];
    *dst = acc;
}

/* ---- launchers ---- */

struct Arena {
    char *base;
    size_t off;
    template <class T> T *take(size_t n) {
        off = (off + 255) & ~(size_t)255;
        T *q = base ? reinterpret_cast<T *>(base + off) : nullptr;
        off += n * sizeof(T);
        return q;
    }
};

void carve(Arena &a, Gdn &p, bool bwd) {
    const size_t BT = (size_t)p.BH * p.T;
    p.cs = a.take<int>((size_t)p.B * (p.MC + 1));
    p.G = a.take<float>(BT), p.gam = a.take<float>(BT);
    p.Tm = a.take<float>(BT * p.L), p.P = a.take<float>(BT * p.L);
    p.U = a.take<float>(BT * p.dv), p.W = a.take<float>(BT * p.dk), p.Dl = a.take<float>(BT * p.dv);
    if (!bwd) return;
    p.dDl = a.take<float>(BT * p.dv), p.dBv = a.take<float>(BT * p.dv);
    p.CM = a.take<float>(BT * p.L), p.X = a.take<float>(BT * p.L), p.E = a.take<float>(BT * p.L);
    p.cA = a.take<float>(BT * p.L);
    p.Z = a.take<float>(BT * p.dk), p.dW = a.take<float>(BT * p.dk), p.R = a.take<float>(BT * p.dk);
    p.dBk = a.take<float>(BT * p.dk);
    p.dSe = a.take<float>((size_t)p.BH * p.MC * p.dv * p.dk);
    const size_t nblk = ((size_t)p.N + ROWBLK - 1) / ROWBLK;
    p.part = a.take<float>(nblk * ((size_t)p.D + (size_t)p.C * KW + 2 * (size_t)p.NH));
}

bool make(const SwaxGdnCall *c, Gdn &p, bool bwd) {
    memset(&p, 0, sizeof p);
    p.B = c->B, p.T = c->T, p.NH = c->NH, p.dk = c->dk, p.dv = c->dv, p.L = c->L > 0 ? c->L : 64;
    p.MC = c->max_chunks, p.D = c->NH * c->dv, p.C = 2 * p.D, p.N = c->B * c->T, p.BH = c->B * c->NH;
    p.SP = c->dk + 1;
    if (p.N <= 0 || p.NH <= 0) return false;
    SWAX_CUDA_REQUIRE(p.L >= 1 && p.L <= LMAX);
    SWAX_CUDA_REQUIRE(2 * p.NH * p.dk == p.D && p.MC >= 1);
    SWAX_CUDA_REQUIRE(c->proj && c->conv_w && c->A_log && c->dt_bias && c->norm_w && c->xc && c->qkv && c->rqk);
    SWAX_CUDA_REQUIRE(c->beta && c->g && c->o && c->orstd && c->Ss);
    p.eps = c->eps, p.ds = c->doc_start, p.proj = c->proj, p.ldp = c->ldp;
    p.conv_w = c->conv_w, p.A_log = c->A_log, p.dt_bias = c->dt_bias, p.norm_w = c->norm_w;
    p.y = c->y, p.xc = c->xc, p.qkv = c->qkv, p.rqk = c->rqk, p.beta = c->beta, p.g = c->g, p.o = c->o;
    p.orstd = c->orstd, p.Ss = c->Ss;
    if (bwd) {
        SWAX_CUDA_REQUIRE(c->dy && c->dproj && c->dconv_w && c->dA_log && c->ddt_bias && c->dnorm_w && c->scratch);
        p.dy = c->dy, p.dproj = c->dproj, p.dconv_w = c->dconv_w, p.dA_log = c->dA_log, p.ddt_bias = c->ddt_bias;
        p.dnorm_w = c->dnorm_w;
        p.dO = c->scratch, p.dX = p.dO + (size_t)p.N * p.D, p.dB = p.dX + (size_t)p.N * p.C;
        p.dG = p.dB + (size_t)p.N * p.NH;
    }
    Arena a = {nullptr, 0};
    carve(a, p, bwd);
    a = {static_cast<char *>(swax_cuda_scratch(SWAX_SCRATCH_GDN, a.off)), 0};
    carve(a, p, bwd);
    return true;
}

/* Dynamic shared memory above 48 KiB needs the kernel's opt-in (once per size). */
template <class K> void smem_optin(K kern, size_t bytes, size_t &done) {
    if (bytes > 48 * 1024 && bytes > done) {
        SWAX_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
        done = bytes;
    }
}

/* SWAX_GDN_KERNELS=old: the first k_chunk_prep (its A), k_delta_p, k_fwd_out and k_bwd_chunk (A/B; same bits) */
bool old_kernels() {
    const char *e = getenv("SWAX_GDN_KERNELS");
    return e && !strcmp(e, "old");
}

size_t optin_prep, optin_fscan, optin_bscan, optin_bchunk;

/* k_starts, k_chunk_prep: the chunk table and the chunk-local quantities (forward and backward) */
void launch_chunks(const Gdn &p) {
    GDN_LAUNCH(k_starts, swax_ceil_div(p.B, 64), 64, 0, p);
    const int tiled = !old_kernels();
    const size_t sm = swax_smem_f(2 * (size_t)p.L * p.L + 3 * (size_t)p.L + (tiled ? (size_t)p.dk * (GDN_TW + 1) : 0));
    smem_optin(k_chunk_prep, sm, optin_prep);
    GDN_LAUNCH(k_chunk_prep, dim3(p.MC, p.BH), NT, sm, p, tiled);
}


void launch_delta_p(const Gdn &p, int with_delta) {
    if (old_kernels()) GDN_LAUNCH(k_delta_p, dim3(p.MC, p.BH), NT, swax_smem_f(p.L), p, with_delta);
    else GDN_LAUNCH(k_delta_p_t, dim3(p.MC, p.BH), NT, swax_smem_f((size_t)p.dk * (GDN_TW + 1) + p.L), p, with_delta);
}

void launch_fwd_out(const Gdn &p) {
    if (old_kernels()) GDN_LAUNCH(k_fwd_out, dim3(p.MC, p.BH), NT, 0, p);
    else GDN_LAUNCH(k_fwd_out_t, dim3(p.MC, p.BH), NT, swax_smem_f((size_t)p.dk * (GDN_TW + 1)), p);
}

} // namespace

extern "C" void swax_cuda_gdn_fwd(SwaxGdnCall *c) {
    Gdn p;
    if (!make(c, p, false)) return;
    SWAX_CUDA_REQUIRE(c->y);
    GDN_LAUNCH(k_prep, p.N, NR, swax_smem_f(p.C + 2 * (size_t)p.NH), p);
    launch_chunks(p);
    const size_t sm = swax_smem_f((size_t)EV * p.SP + p.L);
    smem_optin(k_fwd_scan, sm, optin_fscan);
    GDN_LAUNCH(k_fwd_scan, dim3(swax_ceil_div(p.dv, EV), p.BH), NT, sm, p);
    launch_delta_p(p, 0);
    launch_fwd_out(p);
    GDN_LAUNCH(k_out_norm, p.N, NR, swax_smem_f(p.NH), p);
}

extern "C" void swax_cuda_gdn_bwd(SwaxGdnCall *c) {
    Gdn p;
    if (!make(c, p, true)) return;
    GDN_LAUNCH(k_out_bwd, p.N, NR, swax_smem_f(p.NH), p);
    launch_chunks(p);
    launch_delta_p(p, 1);
    const size_t sm = swax_smem_f(2 * (size_t)EV * p.SP + 2 * (size_t)p.L);
    smem_optin(k_bwd_scan, sm, optin_bscan);
    GDN_LAUNCH(k_bwd_scan, dim3(swax_ceil_div(p.dv, EV), p.BH), NT, sm, p);
    const int tiled = !old_kernels();
    const size_t smc =
        swax_smem_f(7 * (size_t)p.L + p.dv + (tiled ? ((size_t)p.dv + 2 * (size_t)p.dk) * (GDN_TW + 1) : 0));
    smem_optin(k_bwd_chunk, smc, optin_bchunk);
    GDN_LAUNCH(k_bwd_chunk, dim3(p.MC, p.BH), NT, smc, p, tiled);
    GDN_LAUNCH(k_prep_bwd, p.N, NR, swax_smem_f(2 * (size_t)p.NH), p);
    GDN_LAUNCH(k_conv_bwd, swax_ceil_div((size_t)p.N * p.C, 256), 256, 0, p);
    const int PW = p.D + p.C * KW + 2 * p.NH, nblk = (int)swax_ceil_div(p.N, ROWBLK);
    GDN_LAUNCH(k_partials, dim3(swax_ceil_div(PW, 128), nblk), 128, 0, p);
    GDN_LAUNCH(k_final, swax_ceil_div(PW, 128), 128, 0, p, nblk);
}

/* ---- inference: the infer_gdn slot (ops.h SwaxInferGdnCall) ----
 *
 * The arithmetic of swax_gdn_infer (infer_gdn.c) over the state layout of
 * infer_gdn.h, in fp32 in both tables:
 *   k_inf_prep   block per row: the convolution with the earlier inputs from
 *                the call's rows or the sequence's history (rows before the
 *                call's first: history row 3 + r − j), silu, the per-head L2
 *                norms, β, g (k_prep's arithmetic). Decode: each thread then
 *                shifts its own channels of the row's history (the reads of
 *                that channel are done; rows are distinct sequences).
 * Prefill (B = 1, T = R; chunks as on the CPU: a head chunk up to the next
 *   absolute multiple of L, then L-sized; L capped at LMAX = 128, the chunk
 *   kernels' limit, aligned to multiples of the capped L):
 *   k_inf_hist   thread per channel: the history takes the last 3 inputs of
 *                (history, rows), in slot order (slot i reads slot R + i > i,
 *                not yet written), after k_inf_prep has read it.
 *   k_starts (with the head chunk), k_chunk_prep, k_fwd_scan (starting from
 *   the sequence's S and writing the end state back, Sio), k_delta_p,
 *   k_fwd_out, k_out_norm: the training forward's kernels.
 * Decode:
 *   k_inf_step   block per (8 rows of S, head, row), a warp per row e of S
 *                (dk across lanes, coalesced): u = β (v_e − α S_e·k),
 *                S_e ← α S_e + u k, o_e = S_e·q (swax_gdn_step_f; the rows of
 *                S are independent); warp sums in butterfly order.
 *   k_out_norm.
 * Scratch (slot SWAX_SCRATCH_GDN): R·(2D + D + 3NH) floats; prefill adds the
 * forward's chunk scratch (B = 1) and Ss (NH·MC·dv·dk). A decode step queues
 * the same launches with the same scratch every time (graph capture). */
namespace {

constexpr int SW = 8; /* decode: rows of S (warps) per block */

struct GdnInf {
    int R, NH, dk, dv, D, C;
    const float *proj;
    long ldp;
    const float *conv_w, *A_log, *dt_bias;
    float *state;
    size_t per_seq, off, nS; /* nS: floats of S (NH·dv·dk); the history follows */
    int seq;
    const int *rowseq;
    float *qkv, *beta, *g, *o;
};

__device__ __forceinline__ float *inf_layer(const GdnInf &q, int r) {
    const int seq = q.seq >= 0 ? q.seq : q.rowseq[r];
    return q.state + (size_t)seq * q.per_seq + q.off;
}

/* smem: u (C), scale (2NH) */
__global__ void k_inf_prep(const GdnInf q) {
    float *const smem = gdn_smem;
    float *u = smem, *sc = u + q.C;
    const int r = blockIdx.x, tid = threadIdx.x, C = q.C;
    const bool dec = q.seq < 0;
    float *hist = inf_layer(q, r) + q.nS;
    const int rl = dec ? 0 : r; /* the row's place among the call's rows of its sequence */
    const float *xr[KW];
    for (int j = 0; j < KW; j++)
        xr[j] = rl - j >= 0 ? q.proj + (size_t)(r - j) * q.ldp : hist + (size_t)(KW - 1 + rl - j) * C;
    for (int ch = tid; ch < C; ch += blockDim.x) {
        const float *w = q.conv_w + (size_t)ch * KW;
        float acc = 0;
        for (int j = 0; j < KW; j++) acc += w[KW - 1 - j] * xr[j][ch];
        u[ch] = acc * sigm(acc);
        if (dec) { /* this channel's history: its reads above are done */
            const float x0 = xr[0][ch];
            hist[ch] = hist[(size_t)C + ch];
            hist[(size_t)C + ch] = hist[2 * (size_t)C + ch];
            hist[2 * (size_t)C + ch] = x0;
        }
    }
    __syncthreads();
    const float qs = 1.0f / sqrtf((float)q.dk);
    for (int ph = tid; ph < 2 * q.NH; ph += blockDim.x) {
        const float *x = u + (size_t)ph * q.dk;
        float ss = 0;
        for (int j = 0; j < q.dk; j++) ss += x[j] * x[j];
        const float rr = 1.0f / sqrtf(ss + QK_EPS);
        sc[ph] = ph < q.NH ? rr * qs : rr;
    }
    __syncthreads();
    for (int ch = tid; ch < C; ch += blockDim.x) q.qkv[(size_t)r * C + ch] = ch < q.D ? u[ch] * sc[ch / q.dk] : u[ch];
    const float *pre = q.proj + (size_t)r * q.ldp + 3 * (size_t)q.D;
    for (int h = tid; h < q.NH; h += blockDim.x) {
        q.beta[(size_t)r * q.NH + h] = sigm(pre[h]);
        const float x = pre[q.NH + h] + q.dt_bias[h];
        q.g[(size_t)r * q.NH + h] = -expf(q.A_log[h]) * (x > 20.0f ? x : log1pf(expf(x)));
    }
}

/* prefill: thread per channel of the sequence's history */
__global__ void k_inf_hist(const GdnInf q) {
    const int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= q.C) return;
    float *hist = inf_layer(q, 0) + q.nS;
    for (int i = 0; i < KW - 1; i++) {
        const int src = q.R - (KW - 1) + i;
        hist[(size_t)i * q.C + ch] =
            src >= 0 ? q.proj[(size_t)src * q.ldp + ch] : hist[(size_t)(KW - 1 + src) * q.C + ch];
    }
}

__global__ void __launch_bounds__(SW * 32) k_inf_step(const GdnInf q) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int e = blockIdx.x * SW + warp, h = blockIdx.y, r = blockIdx.z, dk = q.dk;
    if (e >= q.dv) return; /* a whole warp: no block-wide synchronisation below */
    float *S = inf_layer(q, r) + ((size_t)h * q.dv + e) * dk;
    const float *row = q.qkv + (size_t)r * q.C;
    const float *qq = row + (size_t)h * dk, *kk = row + (size_t)(q.NH + h) * dk;
    const float v = row[q.D + (size_t)h * q.dv + e];
    const float al = expf(q.g[(size_t)r * q.NH + h]), be = q.beta[(size_t)r * q.NH + h];
    float sk = 0;
    for (int j = lane; j < dk; j += 32) sk += S[j] * kk[j];
    sk = swax_warp_sum(sk);
    const float u = be * (v - al * sk);
    float so = 0;
    for (int j = lane; j < dk; j += 32) {
        const float s = al * S[j] + u * kk[j];
        S[j] = s;
        so += s * qq[j];
    }
    so = swax_warp_sum(so);
    if (lane == 0) q.o[(size_t)r * q.D + (size_t)h * q.dv + e] = so;
}

/* The inference scratch: the row buffers, then (prefill) Ss and the chunk scratch. */
void carve_inf(Arena &a, Gdn &p, GdnInf &q, bool prefill) {
    const size_t R = (size_t)q.R;
    p.qkv = a.take<float>(R * q.C), p.beta = a.take<float>(R * q.NH), p.g = a.take<float>(R * q.NH);
    p.o = a.take<float>(R * q.D), p.orstd = a.take<float>(R * q.NH);
    q.qkv = p.qkv, q.beta = p.beta, q.g = p.g, q.o = p.o;
    if (!prefill) return;
    p.Ss = a.take<float>((size_t)p.BH * p.MC * p.dv * p.dk);
    carve(a, p, false);
}

size_t optin_inf_prep;

} // namespace

extern "C" void swax_cuda_infer_gdn(const SwaxInferGdnCall *c) {
    if (c->R <= 0) return;
    const bool prefill = c->seq >= 0;
    SWAX_CUDA_REQUIRE(c->NH > 0 && c->dk > 0 && c->dv > 0 && 2 * c->NH * c->dk == c->NH * c->dv);
    SWAX_CUDA_REQUIRE(c->proj && c->conv_w && c->A_log && c->dt_bias && c->norm_w && c->y && c->state);
    SWAX_CUDA_REQUIRE(prefill ? c->pos0 >= 0 && c->L >= 1 : c->rowseq && c->R <= 65535);
    GdnInf q;
    memset(&q, 0, sizeof q);
    q.R = c->R, q.NH = c->NH, q.dk = c->dk, q.dv = c->dv, q.D = c->NH * c->dv, q.C = 2 * q.D;
    q.proj = c->proj, q.ldp = c->ldp, q.conv_w = c->conv_w, q.A_log = c->A_log, q.dt_bias = c->dt_bias;
    q.state = c->state, q.per_seq = c->per_seq, q.off = c->off, q.nS = (size_t)q.NH * q.dv * q.dk;
    q.seq = c->seq, q.rowseq = c->rowseq;
    /* the forward's kernels see one sequence of T = R rows */
    Gdn p;
    memset(&p, 0, sizeof p);
    p.B = 1, p.T = c->R, p.NH = c->NH, p.dk = c->dk, p.dv = c->dv, p.D = q.D, p.C = q.C, p.N = c->R, p.BH = c->NH;
    p.SP = c->dk + 1, p.eps = c->eps, p.proj = c->proj, p.ldp = c->ldp, p.conv_w = c->conv_w;
    p.A_log = c->A_log, p.dt_bias = c->dt_bias, p.norm_w = c->norm_w, p.y = c->y;
    if (prefill) {
        const int L = c->L < LMAX ? c->L : LMAX;
        const int head0 = (int)((L - c->pos0 % L) % L), head = head0 < c->R ? head0 : c->R;
        p.L = L, p.head = head;
        p.MC = (head > 0 ? 1 : 0) + (int)swax_ceil_div((size_t)(c->R - head), (size_t)L);
        p.Sio = c->state + (size_t)c->seq * c->per_seq + c->off;
    }
    Arena a = {nullptr, 0};
    carve_inf(a, p, q, prefill);
    a = {static_cast<char *>(swax_cuda_scratch(SWAX_SCRATCH_GDN, a.off)), 0};
    carve_inf(a, p, q, prefill);
    const size_t sm_prep = swax_smem_f(q.C + 2 * (size_t)q.NH);
    smem_optin(k_inf_prep, sm_prep, optin_inf_prep);
    GDN_LAUNCH(k_inf_prep, c->R, NR, sm_prep, q);
    if (prefill) {
        GDN_LAUNCH(k_inf_hist, swax_ceil_div(q.C, NR), NR, 0, q);
        launch_chunks(p);
        const size_t sm = swax_smem_f((size_t)EV * p.SP + p.L);
        smem_optin(k_fwd_scan, sm, optin_fscan);
        GDN_LAUNCH(k_fwd_scan, dim3(swax_ceil_div(p.dv, EV), p.BH), NT, sm, p);
        launch_delta_p(p, 0);
        launch_fwd_out(p);
    } else {
        GDN_LAUNCH(k_inf_step, dim3(swax_ceil_div(q.dv, SW), q.NH, c->R), SW * 32, 0, q);
    }
    GDN_LAUNCH(k_out_norm, c->R, NR, swax_smem_f(q.NH), p);
}
