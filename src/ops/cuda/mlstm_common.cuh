/* mlstm_common.cuh — what the two CUDA mLSTM cell implementations share:
 * mlstm.cu (fp32 products, the "cuda-fp32" table) and mlstm_tc.cu (bf16
 * tensor-core products, the "cuda" table). The geometry (Geo, make_geo), the
 * chunk table helpers, the scratch carver, and the scalar kernels that compute
 * the stabilisers, gates and normaliser in fp32 with the CPU's exact
 * arithmetic: k_scalars (per (b, h): cumsums, m chain, β, w), k_bwd_pre (per
 * token: dh·h, 1/N, the normaliser branch, α) and k_bwd_fin (per (b, h): the
 * scalar gradients from the per-tile partials). See mlstm.cu's header for the
 * notation and for what each computes; both files include this one inside
 * their own translation unit (everything here has internal linkage). */
#ifndef SWAX_MLSTM_COMMON_CUH
#define SWAX_MLSTM_COMMON_CUH

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_slots.h"

#include <limits.h>
#include <math.h>

namespace {

constexpr int TL = 64;     /* tile edge: tokens, dk, dv */
constexpr int SCAL_THREADS = 128, FIN_THREADS = 256, PRE_THREADS = 256;

enum { F_ZERO = 1, F_CARRY = 2 };

struct Geo {
    int B, T, NH, dk, dv;
    int MC;            /* max_chunks: a chunk-table row has MC + 1 entries */
    int Lcap;          /* longest chunk: min(L, T) */
    int Lp;            /* Lcap rounded up to TL: row length of the P / dS scratch */
    int NTP, NTK, NTV; /* tiles over a chunk's tokens, dk, dv */
    long ldp;
    float eps, scale;
    /* inference: state in (C0 NULL = zero) and out (C1 NULL = not wanted), per (b, h) */
    const float *C0, *n0, *m0;
    float *C1, *n1, *m1;
};

/* Per-chunk scalars, indexed bh·MC + ci. */
struct ChunkScr {
    float *mp, *me, *beta, *g;
    int *arge, *flag;
};

template <class E> struct IO;
template <> struct IO<float> {
    static __device__ __forceinline__ float ld(const float *p) { return *p; }
    static __device__ __forceinline__ void st(float *p, float v) { *p = v; }
};

/* Sum over the 16 lanes of a half-warp (the tx of one row group), butterfly:
 * every lane gets the same bits. Call from all 32 lanes. */
__device__ __forceinline__ float sum16(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 8);
    v += __shfl_xor_sync(0xffffffffu, v, 4);
    v += __shfl_xor_sync(0xffffffffu, v, 2);
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v;
}

struct Chunk {
    int b, h, ci, c0, n, fl;
    size_t tok0; /* per-token index (b, h, c0) in (B, NH, T) arrays and scratch */
    size_t row0; /* row of token c0 in (N, ·) arrays */
    size_t cb;   /* per-chunk index bh·MC + ci */
};

/* Fills c for chunk ci of (b, h) = bh; false for a padding entry. */
__device__ __forceinline__ bool chunk_of(const Geo &g, const int *chunks, const int *flag, int bh, int ci, Chunk &c) {
    c.b = bh / g.NH, c.h = bh % g.NH, c.ci = ci;
    const int *row = chunks + (size_t)c.b * (g.MC + 1);
    c.c0 = row[ci];
    if (c.c0 >= g.T) return false;
    c.n = row[ci + 1] - c.c0;
    c.tok0 = (size_t)bh * g.T + c.c0;
    c.row0 = (size_t)c.b * g.T + c.c0;
    c.cb = (size_t)bh * g.MC + ci;
    c.fl = flag[c.cb];
    return true;
}

__device__ __forceinline__ int num_chunks(const Geo &g, const int *chunks, int b) {
    const int *row = chunks + (size_t)b * (g.MC + 1);
    int n = 0;
    while (n < g.MC && row[n] < g.T) n++;
    return n;
}

/* ------------------------------------------------------------------ scalars */

__global__ void __launch_bounds__(SCAL_THREADS)
k_scalars(Geo g, const int *chunks, const uint8_t *doc_start, const float *ig, const float *lf, float *bcum,
          float *w, int *cid, ChunkScr cs, float *ms_out, int *arge_out) {
    const int bh = blockIdx.x, b = bh / g.NH, h = bh % g.NH, NH = g.NH;
    const int *row = chunks + (size_t)b * (g.MC + 1);
    const size_t tb = (size_t)bh * g.T, rb = (size_t)b * g.T, cbb = (size_t)bh * g.MC;
    /* 1. per chunk: cumsum, g, max_s (g - b_s + ig_s) with its first argmax */
    for (int ci = threadIdx.x; ci < g.MC; ci += blockDim.x) {
        const int c0 = row[ci];
        if (c0 >= g.T) continue;
        const int n = row[ci + 1] - c0;
        if (n < 1 || n > g.Lcap) __trap(); /* a chunk table not made with this L */
        float acc = 0.f;
        for (int t = 0; t < n; t++) {
            acc += lf[(rb + c0 + t) * NH + h];
            bcum[tb + c0 + t] = acc;
            cid[tb + c0 + t] = ci;
        }
        const float gg = acc;
        float best = gg - bcum[tb + c0] + ig[(rb + c0) * NH + h];
        int arg = 0;
        for (int s = 1; s < n; s++) {
            const float v = gg - bcum[tb + c0 + s] + ig[(rb + c0 + s) * NH + h];
            if (v > best) {
                best = v;
                arg = s;
            }
        }
        cs.g[cbb + ci] = gg;
        cs.me[cbb + ci] = best;
        cs.arge[cbb + ci] = arg;
        cs.flag[cbb + ci] = ((ci == 0 && !g.C0) || (doc_start && doc_start[rb + c0])) ? F_ZERO : 0;
    }
    __syncthreads();
    /* 2. the chain over chunks: m_prev, m' = max(g + m_prev, max_s ...), β */
    if (threadIdx.x == 0) {
        float m = g.C0 ? g.m0[bh] : 0.f; /* the initial state's stabiliser (inference) */
        int ci = 0;
        for (; ci < g.MC && row[ci] < g.T; ci++) {
            const size_t x = cbb + ci;
            const int z = cs.flag[x] & F_ZERO;
            const float mp = z ? 0.f : m, base = cs.g[x] + mp, a = cs.me[x];
            float me;
            int ae;
            if (a > base) {
                me = a;
                ae = cs.arge[x];
            } else {
                me = base;
                ae = -1;
            }
            cs.mp[x] = mp;
            cs.me[x] = me;
            cs.arge[x] = ae;
            cs.beta[x] = expf(base - me);
            if (ci > 0 && !z) cs.flag[x - 1] |= F_CARRY;
            if (ms_out) {
                ms_out[x] = mp;
                arge_out[x] = ae;
            }
            m = me;
        }
        if (g.C1 && ci > 0) { /* the final state is wanted: the scan runs the last chunk's update too */
            cs.flag[cbb + ci - 1] |= F_CARRY;
            g.m1[bh] = m;
        }
    }
    __syncthreads();
    /* 3. w_s = e^{g - b_s + ig_s - m'} */
    for (int ci = threadIdx.x; ci < g.MC; ci += blockDim.x) {
        const int c0 = row[ci];
        if (c0 >= g.T) continue;
        const int n = row[ci + 1] - c0;
        const float gg = cs.g[cbb + ci], me = cs.me[cbb + ci];
        for (int s = 0; s < n; s++)
            w[tb + c0 + s] = expf(gg - bcum[tb + c0 + s] + ig[(rb + c0 + s) * NH + h] - me);
    }
}

/* ----------------------------------------------------------------- backward */

template <class E>
__global__ void __launch_bounds__(PRE_THREADS)
k_bwd_pre(Geo g, const E *hbuf, const E *dh, const float *m_t, const float *den_t, const float *bcum,
          const int *cid, const float *cmp, float *alpha, float *inv, float *dden, float *dm0) {
    const int bh = blockIdx.y, b = bh / g.NH, h = bh % g.NH, lane = threadIdx.x & 31;
    const int t = blockIdx.x * (PRE_THREADS / 32) + (threadIdx.x >> 5);
    if (t >= g.T) return; /* whole warps */
    const size_t off = ((size_t)b * g.T + t) * g.NH * g.dv + (size_t)h * g.dv, x = (size_t)bh * g.T + t;
    float s = 0.f;
    for (int e = lane; e < g.dv; e += 32) s = fmaf(IO<E>::ld(dh + off + e), IO<E>::ld(hbuf + off + e), s);
    s = swax_warp_sum(s);
    if (lane == 0) {
        const float m = m_t[x], den = den_t[x];
        const float em = expf(-m), ad = fabsf(den);
        const bool use_den = ad >= em;
        const float iv = 1.f / ((use_den ? ad : em) + g.eps);
        const float dN = -s * iv;
        inv[x] = iv;
        dden[x] = use_den ? (den >= 0.f ? dN : -dN) : 0.f;
        dm0[x] = use_den ? 0.f : -(dN * em);
        alpha[x] = expf(bcum[x] + cmp[(size_t)bh * g.MC + cid[x]] - m);
    }
}

/* Per-token and per-chunk scratch of the scalar pass (bwd_fin). */
struct FinScr {
    float *dlal, *rsum, *csum, *dlw, *dmt, *R;       /* per token */
    float *base, *sumw, *dlb, *dmn, *dg;             /* per chunk */
};

__global__ void __launch_bounds__(FIN_THREADS)
k_bwd_fin(Geo g, const int *chunks, ChunkScr cs, const int *cid, const float *w, const float *dm0,
          const float *alpart, const float *rowp, const float *colp, const float *wpart, const float *pbeta,
          const int *arg_t, FinScr f, float *dig, float *dlf) {
    const int bh = blockIdx.x, b = bh / g.NH, h = bh % g.NH, NH = g.NH, T = g.T;
    const int *row = chunks + (size_t)b * (g.MC + 1);
    const size_t tb = (size_t)bh * T, rb = (size_t)b * T, cbb = (size_t)bh * g.MC;
    const int nch = num_chunks(g, chunks, b), ntile = g.NTK * g.NTV;
    /* 0. per token: d log α, Σ_s dlogD_is, Σ_i dlogD_is, d log w, dm_i */
    for (int t = threadIdx.x; t < T; t += blockDim.x) {
        const size_t x = tb + t;
        const int ci = cid[x], c0 = row[ci], n = row[ci + 1] - c0, li = t - c0;
        const int itl = li / TL, nt = (n + TL - 1) / TL;
        float al = 0.f, rs = 0.f, cs_ = 0.f, dw = 0.f;
        for (int j = 0; j < g.NTK; j++) al += alpart[x * g.NTK + j];
        for (int s = 0; s <= itl; s++) rs += rowp[x * g.NTP + s];
        for (int i = itl; i < nt; i++) cs_ += colp[x * g.NTP + i];
        if (cs.flag[cbb + ci] & F_CARRY) {
            for (int j = 0; j < g.NTK; j++) dw += wpart[x * g.NTK + j];
            dw *= w[x];
        }
        f.dlal[x] = al;
        f.rsum[x] = rs;
        f.csum[x] = cs_;
        f.dlw[x] = dw;
        f.dmt[x] = dm0[x] - al - rs;
        f.R[x] = 0.f;
    }
    __syncthreads();
    /* 1. per chunk, in token order: route dm_i to arg_i (or to m_prev), sums */
    for (int ci = threadIdx.x; ci < nch; ci += blockDim.x) {
        const int c0 = row[ci], n = row[ci + 1] - c0;
        const size_t x0 = tb + c0, cx = cbb + ci;
        float sal = 0.f, sdm = 0.f, sw = 0.f;
        for (int i = 0; i < n; i++) {
            sal += f.dlal[x0 + i];
            const int a = arg_t[x0 + i];
            if (a < 0) sdm += f.dmt[x0 + i];
            else f.R[x0 + a] += f.dmt[x0 + i];
            sw += f.dlw[x0 + i];
        }
        float dlb = 0.f;
        if (cs.flag[cx] & F_CARRY) {
            float s = 0.f;
            for (int j = 0; j < ntile; j++) s += pbeta[cx * ntile + j];
            dlb = s * cs.beta[cx];
        }
        f.base[cx] = sal + sdm + dlb;
        f.sumw[cx] = sw;
        f.dlb[cx] = dlb;
    }
    __syncthreads();
    /* 2. the dm chain, last chunk first */
    if (threadIdx.x == 0) {
        float dm = 0.f;
        for (int ci = nch - 1; ci >= 0; ci--) {
            const size_t cx = cbb + ci;
            float dmn = 0.f, dg = 0.f, dmp = f.base[cx];
            if (cs.flag[cx] & F_CARRY) {
                dmn = dm - f.sumw[cx] - f.dlb[cx];
                dg = f.dlb[cx] + f.sumw[cx] + dmn;
                if (cs.arge[cx] < 0) dmp += dmn;
            }
            f.dmn[cx] = dmn;
            f.dg[cx] = dg;
            dm = dmp;
        }
    }
    __syncthreads();
    /* 3. per token: db (into dlf for now) and dig */
    for (int t = threadIdx.x; t < T; t += blockDim.x) {
        const size_t x = tb + t;
        const int ci = cid[x], c0 = row[ci], n = row[ci + 1] - c0, li = t - c0;
        const size_t cx = cbb + ci;
        float db = f.dlal[x] + f.rsum[x] - f.csum[x] + f.dmt[x] - f.R[x];
        float di = f.csum[x] + f.R[x];
        if (cs.flag[cx] & F_CARRY) {
            db -= f.dlw[x];
            di += f.dlw[x];
            if (cs.arge[cx] == li) {
                db -= f.dmn[cx];
                di += f.dmn[cx];
            }
            if (li == n - 1) db += f.dg[cx];
        }
        dlf[(rb + t) * NH + h] = db;
        dig[(rb + t) * NH + h] = di;
    }
    __syncthreads();
    /* 4. dlf = reverse cumsum of db within each chunk */
    for (int ci = threadIdx.x; ci < nch; ci += blockDim.x) {
        const int c0 = row[ci], c1 = row[ci + 1];
        float r = 0.f;
        for (int t = c1 - 1; t >= c0; t--) {
            float *p = dlf + (rb + t) * NH + h;
            r += *p;
            *p = r;
        }
    }
}

/* ------------------------------------------------------------------ launchers */

/* Carves one scratch buffer into arrays (256-byte aligned). A first pass with
 * base == NULL measures. */
struct Arena {
    char *base;
    size_t off;
    template <class T> T *take(size_t n) {
        off = (off + 255) & ~(size_t)255;
        T *p = base ? reinterpret_cast<T *>(base + off) : nullptr;
        off += n * sizeof(T);
        return p;
    }
};

static void carve_chunks(Arena &a, size_t nc, ChunkScr &cs) {
    cs.mp = a.take<float>(nc), cs.me = a.take<float>(nc), cs.beta = a.take<float>(nc), cs.g = a.take<float>(nc);
    cs.arge = a.take<int>(nc), cs.flag = a.take<int>(nc);
}


/* The call's geometry; false when there is nothing to do. */
static bool make_geo(const SwaxMlstmCall *c, Geo *g) {
    SWAX_CUDA_REQUIRE(c->B >= 0 && c->T >= 0);
    if (c->B == 0 || c->T == 0) return false;
    SWAX_CUDA_REQUIRE(c->NH >= 1 && c->dk >= 1 && c->dv >= 1);
    SWAX_CUDA_REQUIRE(c->chunks != NULL && c->max_chunks >= 1);
    SWAX_CUDA_REQUIRE(c->proj && c->ig && c->lf && c->h);
    SWAX_CUDA_REQUIRE(c->ldp >= 2L * c->NH * c->dk + (long)c->NH * c->dv);
    const int L = c->L > 0 ? c->L : 64;
    g->B = c->B, g->T = c->T, g->NH = c->NH, g->dk = c->dk, g->dv = c->dv, g->MC = c->max_chunks;
    g->Lcap = L < c->T ? L : c->T;
    g->NTP = (int)swax_ceil_div((size_t)g->Lcap, TL);
    g->Lp = g->NTP * TL;
    g->NTK = (int)swax_ceil_div((size_t)c->dk, TL);
    g->NTV = (int)swax_ceil_div((size_t)c->dv, TL);
    g->ldp = c->ldp;
    g->eps = c->eps;
    g->scale = 1.0f / sqrtf((float)c->dk);
    g->C0 = c->C0, g->n0 = c->n0, g->m0 = c->m0, g->C1 = c->C1, g->n1 = c->n1, g->m1 = c->m1;
    SWAX_CUDA_REQUIRE(!c->C0 || (c->n0 && c->m0));
    SWAX_CUDA_REQUIRE(!c->C1 || (c->n1 && c->m1));
    SWAX_CUDA_REQUIRE((size_t)c->B * c->NH <= 65535);
    /* grid.x of the per-chunk kernels: MC · NTP · max(NTP, NTK, NTV) */
    int widest = g->NTP > g->NTK ? g->NTP : g->NTK;
    if (g->NTV > widest) widest = g->NTV;
    SWAX_CUDA_REQUIRE((size_t)g->MC * g->NTP * widest <= (size_t)INT_MAX);
    return true;
}

} // namespace

#endif
