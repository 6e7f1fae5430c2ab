/* mlstm.cu — the mLSTM cell (SPEC §2), the mlstm_cell_fwd and mlstm_cell_bwd
 * slots of the CUDA table: the chunkwise forward and its exact backward
 * (through the stabiliser m, routed by the argmax arg_t / arg_end, and through
 * the normaliser max(|den|, e^-m) + eps), computing what the CPU slots
 * (ops_cpu.c -> mlstm_cell_impl.inc, swax_mlstm_chunkwise_fwd/bwd_f per
 * (b, h)) compute, over device memory, in fp32 on CUDA cores (no tensor cores,
 * accurate expf, no fast math).
 *
 * Chunks come from the device table c->chunks (B, max_chunks + 1): starts,
 * then T, padded with T. Per chunk of n tokens from c0 (local i, s; notation of
 * mlstm_cell_impl.inc): b_i = Σ_{r<=i} lf_r, m_prev, m_i, arg_i, α_i, D_is,
 * P_is = (q̃_i·k_s) D_is, g = b_{n-1}, chunk end m' and arg_end, β = e^{g +
 * m_prev - m'}, w_s = e^{g - b_s + ig_s - m'}. Flags per chunk: ZERO (the start
 * state is zero: first chunk or a document start), CARRY (the next chunk
 * exists and continues from this one's end state).
 *
 * Inference (prefill, infer.c) passes the state a sequence starts from (C0,
 * n0, m0 per (b, h): the first chunk is then not ZERO and its m_prev is m0;
 * fwd_scan starts from the C0 / n0 tile) and asks for the state after the
 * last token (C1, n1, m1: scalars gives the last chunk CARRY and writes m',
 * fwd_scan runs that chunk's update and stores its tile). In place is fine:
 * each block reads and writes only its own tile.
 *
 * The stabilisers (b, m_i, arg_i, m', arg_end) are computed with the CPU's
 * exact arithmetic (sequential cumsum, the same expression order, adds only),
 * so they and every argmax are bit-identical to the CPU's.
 *
 * Tiles: every product is a 64×64 output tile per block of 256 threads (thread
 * (ty, tx) = (tid/16, tid%16) owns rows 4ty..4ty+3 and columns 4tx..4tx+3),
 * reduced over K in slices of 16 staged in shared memory (double-buffered,
 * next slice prefetched into registers, one barrier per slice); see gemm().
 * Any dk, dv, T, L >= 1: partial tiles are zero-filled on load, masked on
 * store. A chunk's tokens are split into 64-token tiles (NTP = ceil(min(L,
 * T)/64) of them), dk into NTK, dv into NTV tiles of 64.
 *
 * Forward (4 launches):
 *   scalars   block per (b, h): per chunk (thread each) the cumsum b, g and
 *             max_s(g - b_s + ig_s) with its first argmax; then one thread
 *             chains m over chunks (m_prev, m', arg_end, β, flags; ms and
 *             arg_end saved); then w_s per token.
 *   fwd_scan  block per (b, h, dk tile, dv tile), sequential over chunks:
 *             the state tile C (64×64) lives in registers; at each chunk start
 *             (zeroed at a ZERO chunk) it is stored to Cs, then (if CARRY)
 *             C <- β C + Σ_s (w_s k_s) v_sᵀ; n rides along as an extra column
 *             of the product in the dv-tile-0 blocks (n <- β n + Σ_s w_s k_s).
 *   fwd_att   block per (b, h, chunk, 64-token query tile): m_i, arg_i, α_i
 *             (thread per row, O(i) loop as the CPU); over key tiles <= the
 *             query tile: S = Q̃Kᵀ, P = S ⊙ D (masked s <= i) stored to scratch;
 *             den_i = α_i n_prev·q̃_i + Σ_s P_is (n_prev·q̃ as the extra
 *             column); writes m_t, den_t, arg_t (if saving), α, 1/(N + eps).
 *   fwd_out   block per (b, h, chunk, query tile, dv tile):
 *             h = (α ⊙ Q̃ C_prev + P V) / (max(|den|, e^-m) + eps).
 * Backward (8 launches):
 *   scalars   as in the forward (recomputed, bit-identical; ms/arg_end unused).
 *   bwd_pre   warp per token: dh·h; inv, dden_i = ±dN_i (|den| branch) and
 *             dm0_i = -dN_i e^-m_i (e^-m branch), dN_i = -(dh_i·h_i) inv_i; α_i.
 *   bwd_scan  block per (b, h, dk tile, dv tile), reverse over chunks: the
 *             gradient into each chunk's end state dC (zero unless CARRY) is
 *             stored to scratch (dCe, dne), with the per-tile partial of
 *             <dC, C_prev> + <dn, n_prev> (for d log β); then (unless ZERO)
 *             dC <- β dC + Σ_i (α_i q̃_i) dnum_iᵀ, dnum_i = dh_i inv_i; dn rides
 *             along as the extra column (dden_i).
 *   bwd_att   block per (b, h, chunk, query tile, key tile <= query tile):
 *             S, dP = dden_i + dnum_i·v_s, P, dS = dP D, dlogD = dP P; P and dS
 *             to scratch; per-tile row sums and column sums of dlogD.
 *   bwd_dq    per (b, h, chunk, query tile, dk tile): dq̃ = α (C_prev dnum +
 *             dden n_prev) + dS K; the per-tile partial of q̃·(inter part) for
 *             d log α.
 *   bwd_dk    per (b, h, chunk, key tile, dk tile): dk = w (dC v + dn) + dSᵀQ̃;
 *             the partial of k·(dC v + dn) for d log w.
 *   bwd_dv    per (b, h, chunk, key tile, dv tile): dv = w dCᵀk + Pᵀ dnum.
 *   bwd_fin   block per (b, h): the scalar gradients, every sum in a fixed
 *             order: per token d log α, row/column sums, d log w, dm_i; per
 *             chunk (thread each) the routing of dm_i to arg_i (sequential),
 *             sums; one thread runs the dm chain over chunks in reverse
 *             (dm' = dm_next - Σ d log w - d log β, routed to arg_end or to
 *             m_prev); per token db, dig; dlf = reverse cumsum of db per chunk.
 * No atomics: every output element has one owner and every reduction runs in
 * a fixed order (reruns give identical bits).
 *
 * Scratch (slot SWAX_SCRATCH_MLSTM; floats; BH = B·NH, MC = max_chunks,
 * Lp = 64·NTP): forward 4·BH·T (+ BH·T ints) + 6·BH·MC + BH·T·Lp (P), plus in
 * inference (m_t == NULL) the chunk-start states BH·MC·(dk·dv + dk). Backward
 * 12·BH·T + BH·T·(2·NTK + 2·NTP) + BH·MC·(11 + NTK·NTV) + BH·MC·(dk·dv + dk)
 * (dC at chunk ends) + 2·BH·T·Lp (P, dS).
 * Cost (FMAs; Le ≈ L/2 + 32: the key columns a query row visits, whole 64-wide
 * tiles including the masked upper part of the diagonal one): forward
 * ≈ B·NH·T·(2·dk·dv + Le·(dk + dv)), backward ≈ B·NH·T·(4·dk·dv + 2·Le·(dk +
 * dv)), plus O(B·NH·T·L) scalar work (the per-row stabiliser loops). The two
 * scans are sequential over chunks, with B·NH·NTK·NTV blocks each: with few
 * heads they are the latency-bound part.
 *
 * q/k/v/h/dh/dproj are read and written through IO<E> (instantiated for float;
 * gates, states, normaliser and every accumulator are fp32).
 *
 * The geometry, chunk helpers, scratch carver and the three scalar kernels
 * (k_scalars, k_bwd_pre, k_bwd_fin) live in mlstm_common.cuh, shared with the
 * tensor-core version (mlstm_tc.cu); this file holds the fp32 products. */
#include "ops/cuda/mlstm_common.cuh"

namespace {

constexpr int BK = 16;     /* reduction slice */
constexpr int NT = 256;    /* threads of every product block */
constexpr int SP = TL + 4; /* shared row stride (floats), keeps float4 alignment */

struct __align__(16) GemmSmem {
    float a[2][BK][SP]; /* A slice, [k][row] */
    float b[2][BK][SP]; /* B slice, [k][col] */
    float x[2][BK];     /* extra column of B */
};

/* Element x (0..1023) of a 64×16 slice -> (tile index, k). KC: the source is
 * contiguous along k (16 consecutive threads read 16 consecutive k of one
 * row); otherwise along the tile index (64 consecutive threads, one k). */
template <bool KC> __device__ __forceinline__ void slot(int x, int &idx, int &kk) {
    if (KC) {
        idx = x >> 4;
        kk = x & (BK - 1);
    } else {
        kk = x >> 6;
        idx = x & (TL - 1);
    }
}

/* acc (64×64 tile, this thread's 4×4) += Σ_{k in [kbeg, kend)} A(row, k) B(k, col).
 * fa(row, k), fb(k, col) are called only for k < kend and must return 0 for
 * rows / columns outside the tile's valid range. With xon, the block also
 * accumulates the extra column xacc(row = tid, tid < 64) += Σ_k A(tid, k) fx(k).
 * Starts and ends with a barrier; call it from every thread of the block. */
template <bool KCA, bool KCB, class FA, class FB, class FX>
__device__ __forceinline__ void gemm(float (&acc)[4][4], int kbeg, int kend, const FA &fa, const FB &fb, bool xon,
                                     const FX &fx, float &xacc, GemmSmem &sm) {
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    __syncthreads();
    if (kend <= kbeg) return;
    float ra[4], rb[4], rx = 0.f;
    auto fetch = [&](int k0) {
#pragma unroll
        for (int q = 0; q < 4; q++) {
            int i, kk;
            slot<KCA>(tid + q * NT, i, kk);
            ra[q] = k0 + kk < kend ? fa(i, k0 + kk) : 0.f;
            slot<KCB>(tid + q * NT, i, kk);
            rb[q] = k0 + kk < kend ? fb(k0 + kk, i) : 0.f;
        }
        if (xon && tid < BK) rx = k0 + tid < kend ? fx(k0 + tid) : 0.f;
    };
    auto put = [&](int buf) {
#pragma unroll
        for (int q = 0; q < 4; q++) {
            int i, kk;
            slot<KCA>(tid + q * NT, i, kk);
            sm.a[buf][kk][i] = ra[q];
            slot<KCB>(tid + q * NT, i, kk);
            sm.b[buf][kk][i] = rb[q];
        }
        if (xon && tid < BK) sm.x[buf][tid] = rx;
    };
    fetch(kbeg);
    put(0);
    __syncthreads();
    int buf = 0;
    for (int k0 = kbeg; k0 < kend; k0 += BK) {
        const bool more = k0 + BK < kend;
        if (more) fetch(k0 + BK);
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            const float4 a4 = *reinterpret_cast<const float4 *>(&sm.a[buf][kk][ty * 4]);
            const float4 b4 = *reinterpret_cast<const float4 *>(&sm.b[buf][kk][tx * 4]);
            const float av[4] = {a4.x, a4.y, a4.z, a4.w}, bv[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int c = 0; c < 4; c++) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
        }
        if (xon && tid < TL) {
#pragma unroll
            for (int kk = 0; kk < BK; kk++) xacc = fmaf(sm.a[buf][kk][tid], sm.x[buf][kk], xacc);
        }
        if (more) put(buf ^ 1);
        __syncthreads();
        buf ^= 1;
    }
}

/* ------------------------------------------------------------------ forward */

template <class E>
__global__ void __launch_bounds__(NT, 2)
k_fwd_scan(Geo g, const int *chunks, const int *flag, const float *beta, const E *proj, const float *w, float *Cs,
           float *ns) {
    const int bh = blockIdx.y, jt = blockIdx.x / g.NTV, et = blockIdx.x % g.NTV;
    const int j0 = jt * TL, e0 = et * TL, tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int dk = g.dk, dv = g.dv;
    const long ldp = g.ldp;
    const bool ncol = et == 0;
    __shared__ GemmSmem sm;
    float acc[4][4] = {}, nacc = 0.f;
    const size_t sb = (size_t)bh * dk * dv; /* this (b, h)'s state in C0 / C1 */
    if (g.C0) { /* inference: the carried state (this block's tile; n in the dv-tile-0 blocks) */
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int j = j0 + ty * 4 + r;
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int e = e0 + tx * 4 + q;
                acc[r][q] = j < dk && e < dv ? g.C0[sb + (size_t)j * dv + e] : 0.f;
            }
        }
        if (ncol && tid < TL && j0 + tid < dk) nacc = g.n0[(size_t)bh * dk + j0 + tid];
    }
    for (int ci = 0; ci < g.MC; ci++) {
        Chunk c;
        if (!chunk_of(g, chunks, flag, bh, ci, c)) break;
        if (c.fl & F_ZERO) {
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int q = 0; q < 4; q++) acc[r][q] = 0.f;
            nacc = 0.f;
        }
        float *C = Cs + c.cb * dk * dv;
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int j = j0 + ty * 4 + r;
            if (j >= dk) continue;
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int e = e0 + tx * 4 + q;
                if (e < dv) C[(size_t)j * dv + e] = acc[r][q];
            }
        }
        if (ncol && tid < TL && j0 + tid < dk) ns[c.cb * dk + j0 + tid] = nacc;
        if (!(c.fl & F_CARRY)) continue;
        const float be = beta[c.cb];
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[r][q] *= be;
        nacc *= be;
        const E *k = proj + c.row0 * ldp + (size_t)(g.NH + c.h) * dk + j0;
        const E *v = proj + c.row0 * ldp + (size_t)2 * g.NH * dk + (size_t)c.h * dv + e0;
        const float *ws = w + c.tok0;
        auto fa = [=](int j, int s) { return j0 + j < dk ? ws[s] * IO<E>::ld(k + (size_t)s * ldp + j) : 0.f; };
        auto fb = [=](int s, int e) { return e0 + e < dv ? IO<E>::ld(v + (size_t)s * ldp + e) : 0.f; };
        auto fx = [](int) { return 1.f; };
        gemm<false, false>(acc, 0, c.n, fa, fb, ncol, fx, nacc, sm);
    }
    if (g.C1) { /* inference: the state after the last chunk (k_scalars set its CARRY) */
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int j = j0 + ty * 4 + r;
            if (j >= dk) continue;
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int e = e0 + tx * 4 + q;
                if (e < dv) g.C1[sb + (size_t)j * dv + e] = acc[r][q];
            }
        }
        if (ncol && tid < TL && j0 + tid < dk) g.n1[(size_t)bh * dk + j0 + tid] = nacc;
    }
}

template <class E>
__global__ void __launch_bounds__(NT, 2)
k_fwd_att(Geo g, const int *chunks, const int *flag, const float *cmp, const E *proj, const float *ig,
          const float *bcum, const float *ns, float *Pm, float *alpha, float *inv, float *m_t, float *den_t,
          int *arg_t) {
    const int ci = blockIdx.x / g.NTP, it = blockIdx.x % g.NTP;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int i0 = it * TL, n = c.n, dk = g.dk, NH = g.NH;
    if (i0 >= n) return;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const long ldp = g.ldp;
    const float sc = g.scale;
    __shared__ GemmSmem sm;
    __shared__ float s_b[TL], s_m[TL], s_bs[TL], s_ig[TL], s_rs[TL];
    /* stabiliser of each query row, as the CPU's stab_i */
    const float mp = cmp[c.cb];
    float mi = 0.f, al = 0.f;
    int arg = -1;
    if (tid < TL) {
        const int i = i0 + tid;
        float bi = 0.f;
        if (i < n) {
            bi = bcum[c.tok0 + i];
            float best = bi + mp;
            for (int s = 0; s <= i; s++) {
                const float v = bi - bcum[c.tok0 + s] + ig[(c.row0 + s) * NH + c.h];
                if (v > best) {
                    best = v;
                    arg = s;
                }
            }
            mi = best;
            al = expf(bi + mp - mi);
        }
        s_b[tid] = bi;
        s_m[tid] = mi;
    }
    const E *q = proj + (c.row0 + i0) * ldp + (size_t)c.h * dk;
    const E *k = proj + c.row0 * ldp + (size_t)(NH + c.h) * dk;
    const float *np = ns + c.cb * dk;
    auto fq = [=](int i, int j) { return i0 + i < n ? IO<E>::ld(q + (size_t)i * ldp + j) * sc : 0.f; };
    auto fx = [=](int j) { return np[j]; };
    const bool xon = !(c.fl & F_ZERO);
    float xacc = 0.f, rs[4] = {0.f, 0.f, 0.f, 0.f};
    for (int st = 0; st <= it; st++) {
        const int s0 = st * TL;
        __syncthreads(); /* the previous tile's epilogue is done with s_bs, s_ig */
        if (tid < TL) {
            const int s = s0 + tid;
            s_bs[tid] = s < n ? bcum[c.tok0 + s] : 0.f;
            s_ig[tid] = s < n ? ig[(c.row0 + s) * NH + c.h] : 0.f;
        }
        auto fk = [=](int j, int s) { return s0 + s < n ? IO<E>::ld(k + (size_t)(s0 + s) * ldp + j) : 0.f; };
        float acc[4][4] = {};
        gemm<true, true>(acc, 0, dk, fq, fk, xon && st == 0, fx, xacc, sm);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int il = ty * 4 + r, i = i0 + il;
#pragma unroll
            for (int qq = 0; qq < 4; qq++) {
                const int sl = tx * 4 + qq, s = s0 + sl;
                float p = 0.f;
                if (i < n && s <= i) p = acc[r][qq] * expf(s_b[il] - s_bs[sl] + s_ig[sl] - s_m[il]);
                rs[r] += p;
                if (i < n) Pm[(c.tok0 + i) * g.Lp + s] = p;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) rs[r] = sum16(rs[r]);
    if (tx == 0) {
#pragma unroll
        for (int r = 0; r < 4; r++) s_rs[ty * 4 + r] = rs[r];
    }
    __syncthreads();
    if (tid < TL && i0 + tid < n) {
        const size_t t = c.tok0 + i0 + tid;
        const float den = al * xacc + s_rs[tid];
        const float em = expf(-mi), ad = fabsf(den);
        alpha[t] = al;
        inv[t] = 1.f / ((ad >= em ? ad : em) + g.eps);
        if (m_t) {
            m_t[t] = mi;
            den_t[t] = den;
            arg_t[t] = arg;
        }
    }
}

template <class E>
__global__ void __launch_bounds__(NT, 2)
k_fwd_out(Geo g, const int *chunks, const int *flag, const E *proj, const float *Cs, const float *Pm,
          const float *alpha, const float *inv, E *hout) {
    const int per = g.NTP * g.NTV;
    const int ci = blockIdx.x / per, it = blockIdx.x % per / g.NTV, et = blockIdx.x % g.NTV;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int i0 = it * TL, e0 = et * TL, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (i0 >= n) return;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const long ldp = g.ldp;
    const float sc = g.scale;
    __shared__ GemmSmem sm;
    __shared__ float s_al[TL], s_inv[TL];
    if (tid < TL) {
        const int i = i0 + tid;
        s_al[tid] = i < n ? alpha[c.tok0 + i] : 0.f;
        s_inv[tid] = i < n ? inv[c.tok0 + i] : 0.f;
    }
    float acc[4][4] = {}, dummy = 0.f;
    auto nox = [](int) { return 0.f; };
    if (!(c.fl & F_ZERO)) { /* α ⊙ Q̃ C_prev */
        const E *q = proj + (c.row0 + i0) * ldp + (size_t)c.h * dk;
        const float *C = Cs + c.cb * dk * dv + e0;
        auto fq = [=](int i, int j) { return i0 + i < n ? IO<E>::ld(q + (size_t)i * ldp + j) * sc : 0.f; };
        auto fC = [=](int j, int e) { return e0 + e < dv ? C[(size_t)j * dv + e] : 0.f; };
        gemm<true, false>(acc, 0, dk, fq, fC, false, nox, dummy, sm);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const float a = s_al[ty * 4 + r];
#pragma unroll
            for (int qq = 0; qq < 4; qq++) acc[r][qq] *= a;
        }
    }
    /* + P V */
    const E *v = proj + c.row0 * ldp + (size_t)2 * NH * dk + (size_t)c.h * dv + e0;
    const float *P = Pm + (c.tok0 + i0) * g.Lp;
    const int Lp = g.Lp;
    auto fP = [=](int i, int s) { return i0 + i < n ? P[(size_t)i * Lp + s] : 0.f; };
    auto fv = [=](int s, int e) { return e0 + e < dv ? IO<E>::ld(v + (size_t)s * ldp + e) : 0.f; };
    gemm<true, false>(acc, 0, min(n, i0 + TL), fP, fv, false, nox, dummy, sm);
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int il = ty * 4 + r, i = i0 + il;
        if (i >= n) continue;
        E *hr = hout + (c.row0 + i) * (size_t)NH * dv + (size_t)c.h * dv;
#pragma unroll
        for (int qq = 0; qq < 4; qq++) {
            const int e = e0 + tx * 4 + qq;
            if (e < dv) IO<E>::st(hr + e, acc[r][qq] * s_inv[il]);
        }
    }
}

/* ----------------------------------------------------------------- backward */

template <class E>
__global__ void __launch_bounds__(NT, 2)
k_bwd_scan(Geo g, const int *chunks, const int *flag, const float *beta, const E *proj, const E *dh,
           const float *alpha, const float *inv, const float *dden, const float *Cs, const float *ns, float *dCe,
           float *dne, float *pbeta) {
    const int bh = blockIdx.y, jt = blockIdx.x / g.NTV, et = blockIdx.x % g.NTV;
    const int j0 = jt * TL, e0 = et * TL, tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int dk = g.dk, dv = g.dv, NH = g.NH;
    const long ldp = g.ldp, ldh = (long)NH * dv;
    const float sc = g.scale;
    const bool ncol = et == 0;
    __shared__ GemmSmem sm;
    __shared__ float s_red[32];
    float acc[4][4] = {}, dn = 0.f;
    for (int ci = num_chunks(g, chunks, bh / NH) - 1; ci >= 0; ci--) {
        Chunk c;
        chunk_of(g, chunks, flag, bh, ci, c);
        if (!(c.fl & F_CARRY)) {
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int q = 0; q < 4; q++) acc[r][q] = 0.f;
            dn = 0.f;
        } else { /* dC into this chunk's end state: store it, and <dC, C_prev> */
            const bool z = c.fl & F_ZERO;
            float *D = dCe + c.cb * dk * dv;
            const float *C = Cs + c.cb * dk * dv;
            float part = 0.f;
#pragma unroll
            for (int r = 0; r < 4; r++) {
                const int j = j0 + ty * 4 + r;
                if (j >= dk) continue;
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    const int e = e0 + tx * 4 + q;
                    if (e >= dv) continue;
                    D[(size_t)j * dv + e] = acc[r][q];
                    if (!z) part = fmaf(acc[r][q], C[(size_t)j * dv + e], part);
                }
            }
            if (ncol && tid < TL && j0 + tid < dk) {
                dne[c.cb * dk + j0 + tid] = dn;
                if (!z) part = fmaf(dn, ns[c.cb * dk + j0 + tid], part);
            }
            part = swax_block_sum(part, s_red);
            if (tid == 0) pbeta[c.cb * (g.NTK * g.NTV) + blockIdx.x] = part;
        }
        if (c.fl & F_ZERO) continue; /* the gradient into a zero start state goes nowhere */
        const float be = beta[c.cb];
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[r][q] *= be;
        dn *= be;
        const E *q = proj + c.row0 * ldp + (size_t)c.h * dk + j0;
        const E *d = dh + c.row0 * ldh + (size_t)c.h * dv + e0;
        const float *al = alpha + c.tok0, *iv = inv + c.tok0, *dd = dden + c.tok0;
        auto fa = [=](int j, int i) { return j0 + j < dk ? al[i] * (IO<E>::ld(q + (size_t)i * ldp + j) * sc) : 0.f; };
        auto fb = [=](int i, int e) { return e0 + e < dv ? IO<E>::ld(d + (size_t)i * ldh + e) * iv[i] : 0.f; };
        auto fx = [=](int i) { return dd[i]; };
        gemm<false, false>(acc, 0, c.n, fa, fb, ncol, fx, dn, sm);
    }
}

template <class E>
__global__ void __launch_bounds__(NT, 2)
k_bwd_att(Geo g, const int *chunks, const int *flag, const E *proj, const E *dh, const float *ig,
          const float *bcum, const float *m_t, const float *inv, const float *dden, float *Pm, float *dSm,
          float *rowp, float *colp) {
    const int per = g.NTP * g.NTP;
    const int ci = blockIdx.x / per, it = blockIdx.x % per / g.NTP, st = blockIdx.x % g.NTP;
    if (st > it) return;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int i0 = it * TL, s0 = st * TL, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (i0 >= n) return;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const long ldp = g.ldp, ldh = (long)NH * dv;
    const float sc = g.scale;
    __shared__ GemmSmem sm;
    __shared__ float s_b[TL], s_m[TL], s_dd[TL], s_iv[TL], s_bs[TL], s_ig[TL];
    __shared__ float red[16][TL];
    if (tid < TL) {
        const int i = i0 + tid, s = s0 + tid;
        s_b[tid] = i < n ? bcum[c.tok0 + i] : 0.f;
        s_m[tid] = i < n ? m_t[c.tok0 + i] : 0.f;
        s_dd[tid] = i < n ? dden[c.tok0 + i] : 0.f;
        s_iv[tid] = i < n ? inv[c.tok0 + i] : 0.f;
        s_bs[tid] = s < n ? bcum[c.tok0 + s] : 0.f;
        s_ig[tid] = s < n ? ig[(c.row0 + s) * NH + c.h] : 0.f;
    }
    float aS[4][4] = {}, aP[4][4] = {}, dummy = 0.f;
    auto nox = [](int) { return 0.f; };
    {
        const E *q = proj + (c.row0 + i0) * ldp + (size_t)c.h * dk;
        const E *k = proj + (c.row0 + s0) * ldp + (size_t)(NH + c.h) * dk;
        auto fq = [=](int i, int j) { return i0 + i < n ? IO<E>::ld(q + (size_t)i * ldp + j) * sc : 0.f; };
        auto fk = [=](int j, int s) { return s0 + s < n ? IO<E>::ld(k + (size_t)s * ldp + j) : 0.f; };
        gemm<true, true>(aS, 0, dk, fq, fk, false, nox, dummy, sm);
    }
    {
        const E *d = dh + (c.row0 + i0) * ldh + (size_t)c.h * dv;
        const E *v = proj + (c.row0 + s0) * ldp + (size_t)2 * NH * dk + (size_t)c.h * dv;
        const float *siv = s_iv;
        auto fd = [=](int i, int e) { return i0 + i < n ? IO<E>::ld(d + (size_t)i * ldh + e) * siv[i] : 0.f; };
        auto fv = [=](int e, int s) { return s0 + s < n ? IO<E>::ld(v + (size_t)s * ldp + e) : 0.f; };
        gemm<true, true>(aP, 0, dv, fd, fv, false, nox, dummy, sm);
    }
    float rv[4] = {0.f, 0.f, 0.f, 0.f}, cv[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int il = ty * 4 + r, i = i0 + il;
#pragma unroll
        for (int qq = 0; qq < 4; qq++) {
            const int sl = tx * 4 + qq, s = s0 + sl;
            float p = 0.f, ds = 0.f;
            if (i < n && s <= i) {
                const float D = expf(s_b[il] - s_bs[sl] + s_ig[sl] - s_m[il]);
                const float dP = s_dd[il] + aP[r][qq];
                p = aS[r][qq] * D;
                ds = dP * D;
                const float dl = dP * p;
                rv[r] += dl;
                cv[qq] += dl;
            }
            if (i < n) {
                Pm[(c.tok0 + i) * g.Lp + s] = p;
                dSm[(c.tok0 + i) * g.Lp + s] = ds;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        rv[r] = sum16(rv[r]);
        const int i = i0 + ty * 4 + r;
        if (tx == 0 && i < n) rowp[(c.tok0 + i) * g.NTP + st] = rv[r];
    }
#pragma unroll
    for (int qq = 0; qq < 4; qq++) red[ty][tx * 4 + qq] = cv[qq];
    __syncthreads();
    if (tid < TL && s0 + tid < n) {
        float s = 0.f;
        for (int y = 0; y < 16; y++) s += red[y][tid];
        colp[(c.tok0 + s0 + tid) * g.NTP + it] = s;
    }
}

template <class E>
__global__ void __launch_bounds__(NT, 2)
k_bwd_dq(Geo g, const int *chunks, const int *flag, const E *proj, const E *dh, const float *Cs, const float *ns,
         const float *alpha, const float *inv, const float *dden, const float *dSm, float *alpart, E *dproj) {
    const int per = g.NTP * g.NTK;
    const int ci = blockIdx.x / per, it = blockIdx.x % per / g.NTK, jt = blockIdx.x % g.NTK;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int i0 = it * TL, j0 = jt * TL, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (i0 >= n) return;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const long ldp = g.ldp, ldh = (long)NH * dv;
    const float sc = g.scale;
    __shared__ GemmSmem sm;
    __shared__ float s_al[TL], s_dd[TL], s_iv[TL];
    if (tid < TL) {
        const int i = i0 + tid;
        s_al[tid] = i < n ? alpha[c.tok0 + i] : 0.f;
        s_dd[tid] = i < n ? dden[c.tok0 + i] : 0.f;
        s_iv[tid] = i < n ? inv[c.tok0 + i] : 0.f;
    }
    float acc[4][4] = {}, part[4] = {0.f, 0.f, 0.f, 0.f}, dummy = 0.f;
    auto nox = [](int) { return 0.f; };
    const E *q = proj + (c.row0 + i0) * ldp + (size_t)c.h * dk + j0;
    if (!(c.fl & F_ZERO)) { /* α (C_prev dnum + dden n_prev) */
        const E *d = dh + (c.row0 + i0) * ldh + (size_t)c.h * dv;
        const float *C = Cs + (c.cb * dk + j0) * dv, *np = ns + c.cb * dk + j0, *siv = s_iv;
        auto fd = [=](int i, int e) { return i0 + i < n ? IO<E>::ld(d + (size_t)i * ldh + e) * siv[i] : 0.f; };
        auto fC = [=](int e, int j) { return j0 + j < dk ? C[(size_t)j * dv + e] : 0.f; };
        gemm<true, true>(acc, 0, dv, fd, fC, false, nox, dummy, sm);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int il = ty * 4 + r;
#pragma unroll
            for (int qq = 0; qq < 4; qq++) {
                const int jl = tx * 4 + qq;
                const bool ok = i0 + il < n && j0 + jl < dk;
                const float v = s_al[il] * (acc[r][qq] + s_dd[il] * (j0 + jl < dk ? np[jl] : 0.f));
                acc[r][qq] = v;
                const float qv = ok ? IO<E>::ld(q + (size_t)il * ldp + jl) * sc : 0.f;
                part[r] = fmaf(qv, v, part[r]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        part[r] = sum16(part[r]);
        const int i = i0 + ty * 4 + r;
        if (tx == 0 && i < n) alpart[(c.tok0 + i) * g.NTK + jt] = part[r];
    }
    /* + dS K */
    const E *k = proj + c.row0 * ldp + (size_t)(NH + c.h) * dk + j0;
    const float *S = dSm + (c.tok0 + i0) * g.Lp;
    const int Lp = g.Lp;
    auto fS = [=](int i, int s) { return i0 + i < n ? S[(size_t)i * Lp + s] : 0.f; };
    auto fk = [=](int s, int j) { return j0 + j < dk ? IO<E>::ld(k + (size_t)s * ldp + j) : 0.f; };
    gemm<true, false>(acc, 0, min(n, i0 + TL), fS, fk, false, nox, dummy, sm);
    E *dq = dproj + (c.row0 + i0) * ldp + (size_t)c.h * dk + j0;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int il = ty * 4 + r;
        if (i0 + il >= n) continue;
#pragma unroll
        for (int qq = 0; qq < 4; qq++) {
            const int jl = tx * 4 + qq;
            if (j0 + jl < dk) IO<E>::st(dq + (size_t)il * ldp + jl, acc[r][qq] * sc);
        }
    }
}

template <class E>
__global__ void __launch_bounds__(NT, 2)
k_bwd_dk(Geo g, const int *chunks, const int *flag, const E *proj, const float *dCe, const float *dne,
         const float *w, const float *dSm, float *wpart, E *dproj) {
    const int per = g.NTP * g.NTK;
    const int ci = blockIdx.x / per, st = blockIdx.x % per / g.NTK, jt = blockIdx.x % g.NTK;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int s0 = st * TL, j0 = jt * TL, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (s0 >= n) return;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const long ldp = g.ldp;
    const float sc = g.scale;
    __shared__ GemmSmem sm;
    __shared__ float s_w[TL];
    if (tid < TL) s_w[tid] = s0 + tid < n ? w[c.tok0 + s0 + tid] : 0.f;
    float acc[4][4] = {}, part[4] = {0.f, 0.f, 0.f, 0.f}, dummy = 0.f;
    auto nox = [](int) { return 0.f; };
    const bool carry = c.fl & F_CARRY;
    const E *k = proj + (c.row0 + s0) * ldp + (size_t)(NH + c.h) * dk + j0;
    if (carry) { /* w (dC v + dn) */
        const E *v = proj + (c.row0 + s0) * ldp + (size_t)2 * NH * dk + (size_t)c.h * dv;
        const float *D = dCe + (c.cb * dk + j0) * dv, *dn = dne + c.cb * dk + j0;
        auto fv = [=](int s, int e) { return s0 + s < n ? IO<E>::ld(v + (size_t)s * ldp + e) : 0.f; };
        auto fD = [=](int e, int j) { return j0 + j < dk ? D[(size_t)j * dv + e] : 0.f; };
        gemm<true, true>(acc, 0, dv, fv, fD, false, nox, dummy, sm);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int sl = ty * 4 + r;
#pragma unroll
            for (int qq = 0; qq < 4; qq++) {
                const int jl = tx * 4 + qq;
                const bool ok = s0 + sl < n && j0 + jl < dk;
                const float t = acc[r][qq] + (j0 + jl < dk ? dn[jl] : 0.f);
                const float kv = ok ? IO<E>::ld(k + (size_t)sl * ldp + jl) : 0.f;
                part[r] = fmaf(kv, t, part[r]);
                acc[r][qq] = s_w[sl] * t;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        part[r] = sum16(part[r]);
        const int s = s0 + ty * 4 + r;
        if (carry && tx == 0 && s < n) wpart[(c.tok0 + s) * g.NTK + jt] = part[r];
    }
    /* + dSᵀ Q̃ over the queries i >= s0 */
    const E *q = proj + c.row0 * ldp + (size_t)c.h * dk + j0;
    const float *S = dSm + c.tok0 * g.Lp + s0;
    const int Lp = g.Lp;
    auto fS = [=](int s, int i) { return s0 + s < n ? S[(size_t)i * Lp + s] : 0.f; };
    auto fq = [=](int i, int j) { return j0 + j < dk ? IO<E>::ld(q + (size_t)i * ldp + j) * sc : 0.f; };
    gemm<false, false>(acc, s0, n, fS, fq, false, nox, dummy, sm);
    E *dkp = dproj + (c.row0 + s0) * ldp + (size_t)(NH + c.h) * dk + j0;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int sl = ty * 4 + r;
        if (s0 + sl >= n) continue;
#pragma unroll
        for (int qq = 0; qq < 4; qq++) {
            const int jl = tx * 4 + qq;
            if (j0 + jl < dk) IO<E>::st(dkp + (size_t)sl * ldp + jl, acc[r][qq]);
        }
    }
}

template <class E>
__global__ void __launch_bounds__(NT, 2)
k_bwd_dv(Geo g, const int *chunks, const int *flag, const E *proj, const E *dh, const float *dCe, const float *w,
         const float *inv, const float *Pm, E *dproj) {
    const int per = g.NTP * g.NTV;
    const int ci = blockIdx.x / per, st = blockIdx.x % per / g.NTV, et = blockIdx.x % g.NTV;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int s0 = st * TL, e0 = et * TL, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (s0 >= n) return;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const long ldp = g.ldp, ldh = (long)NH * dv;
    __shared__ GemmSmem sm;
    __shared__ float s_w[TL];
    if (tid < TL) s_w[tid] = s0 + tid < n ? w[c.tok0 + s0 + tid] : 0.f;
    float acc[4][4] = {}, dummy = 0.f;
    auto nox = [](int) { return 0.f; };
    if (c.fl & F_CARRY) { /* w dCᵀ k */
        const E *k = proj + (c.row0 + s0) * ldp + (size_t)(NH + c.h) * dk;
        const float *D = dCe + c.cb * dk * dv + e0;
        auto fk = [=](int s, int j) { return s0 + s < n ? IO<E>::ld(k + (size_t)s * ldp + j) : 0.f; };
        auto fD = [=](int j, int e) { return e0 + e < dv ? D[(size_t)j * dv + e] : 0.f; };
        gemm<true, false>(acc, 0, dk, fk, fD, false, nox, dummy, sm);
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const float a = s_w[ty * 4 + r];
#pragma unroll
            for (int qq = 0; qq < 4; qq++) acc[r][qq] *= a;
        }
    }
    /* + Pᵀ dnum over the queries i >= s0 */
    const E *d = dh + c.row0 * ldh + (size_t)c.h * dv + e0;
    const float *P = Pm + c.tok0 * g.Lp + s0, *iv = inv + c.tok0;
    const int Lp = g.Lp;
    auto fP = [=](int s, int i) { return s0 + s < n ? P[(size_t)i * Lp + s] : 0.f; };
    auto fd = [=](int i, int e) { return e0 + e < dv ? IO<E>::ld(d + (size_t)i * ldh + e) * iv[i] : 0.f; };
    gemm<false, false>(acc, s0, n, fP, fd, false, nox, dummy, sm);
    E *dvp = dproj + (c.row0 + s0) * ldp + (size_t)2 * NH * dk + (size_t)c.h * dv + e0;
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int sl = ty * 4 + r;
        if (s0 + sl >= n) continue;
#pragma unroll
        for (int qq = 0; qq < 4; qq++) {
            const int el = tx * 4 + qq;
            if (e0 + el < dv) IO<E>::st(dvp + (size_t)sl * ldp + el, acc[r][qq]);
        }
    }
}

struct FwdScr {
    float *bcum, *w, *alpha, *inv, *P, *Cs, *ns;
    int *cid;
    ChunkScr cs;
};

static void carve_fwd(Arena &a, const Geo &g, bool infer, FwdScr &s) {
    const size_t BH = (size_t)g.B * g.NH, nt = BH * g.T, nc = BH * g.MC;
    s.bcum = a.take<float>(nt), s.w = a.take<float>(nt), s.alpha = a.take<float>(nt), s.inv = a.take<float>(nt);
    s.cid = a.take<int>(nt);
    carve_chunks(a, nc, s.cs);
    s.P = a.take<float>(nt * g.Lp);
    s.Cs = infer ? a.take<float>(nc * g.dk * g.dv) : nullptr;
    s.ns = infer ? a.take<float>(nc * g.dk) : nullptr;
}

struct BwdScr {
    float *bcum, *w, *alpha, *inv, *dden, *dm0, *alpart, *wpart, *rowp, *colp, *pbeta, *dCe, *dne, *P, *dS;
    int *cid;
    ChunkScr cs;
    FinScr f;
};

static void carve_bwd(Arena &a, const Geo &g, BwdScr &s) {
    const size_t BH = (size_t)g.B * g.NH, nt = BH * g.T, nc = BH * g.MC;
    s.bcum = a.take<float>(nt), s.w = a.take<float>(nt), s.alpha = a.take<float>(nt), s.inv = a.take<float>(nt);
    s.dden = a.take<float>(nt), s.dm0 = a.take<float>(nt);
    s.cid = a.take<int>(nt);
    s.alpart = a.take<float>(nt * g.NTK), s.wpart = a.take<float>(nt * g.NTK);
    s.rowp = a.take<float>(nt * g.NTP), s.colp = a.take<float>(nt * g.NTP);
    carve_chunks(a, nc, s.cs);
    s.pbeta = a.take<float>(nc * g.NTK * g.NTV);
    s.dCe = a.take<float>(nc * g.dk * g.dv), s.dne = a.take<float>(nc * g.dk);
    s.P = a.take<float>(nt * g.Lp), s.dS = a.take<float>(nt * g.Lp);
    s.f.dlal = a.take<float>(nt), s.f.rsum = a.take<float>(nt), s.f.csum = a.take<float>(nt);
    s.f.dlw = a.take<float>(nt), s.f.dmt = a.take<float>(nt), s.f.R = a.take<float>(nt);
    s.f.base = a.take<float>(nc), s.f.sumw = a.take<float>(nc), s.f.dlb = a.take<float>(nc);
    s.f.dmn = a.take<float>(nc), s.f.dg = a.take<float>(nc);
}

} // namespace

extern "C" void swax_cuda_mlstm_cell_fwd(SwaxMlstmCall *c) {
    Geo g;
    if (!make_geo(c, &g)) return;
    const bool save = c->m_t != NULL;
    if (save) SWAX_CUDA_REQUIRE(c->den_t && c->arg_t && c->Cs && c->ns && c->ms && c->arg_end);
    FwdScr s;
    Arena a = {nullptr, 0};
    carve_fwd(a, g, !save, s);
    a = {static_cast<char *>(swax_cuda_scratch(SWAX_SCRATCH_MLSTM, a.off)), 0};
    carve_fwd(a, g, !save, s);
    float *Cs = save ? c->Cs : s.Cs, *ns = save ? c->ns : s.ns;
    const unsigned BH = (unsigned)(g.B * g.NH);
    cudaStream_t st = swax_cuda_stream();
    k_scalars<<<BH, SCAL_THREADS, 0, st>>>(g, c->chunks, c->doc_start, c->ig, c->lf, s.bcum, s.w, s.cid, s.cs,
                                           save ? c->ms : nullptr, save ? c->arg_end : nullptr);
    SWAX_CUDA_LAUNCHED();
    k_fwd_scan<float><<<dim3(g.NTK * g.NTV, BH), NT, 0, st>>>(g, c->chunks, s.cs.flag, s.cs.beta, c->proj, s.w, Cs,
                                                               ns);
    SWAX_CUDA_LAUNCHED();
    k_fwd_att<float><<<dim3(g.MC * g.NTP, BH), NT, 0, st>>>(g, c->chunks, s.cs.flag, s.cs.mp, c->proj, c->ig, s.bcum,
                                                             ns, s.P, s.alpha, s.inv, c->m_t, c->den_t, c->arg_t);
    SWAX_CUDA_LAUNCHED();
    k_fwd_out<float><<<dim3(g.MC * g.NTP * g.NTV, BH), NT, 0, st>>>(g, c->chunks, s.cs.flag, c->proj, Cs, s.P,
                                                                     s.alpha, s.inv, c->h);
    SWAX_CUDA_LAUNCHED();
}

extern "C" void swax_cuda_mlstm_cell_bwd(SwaxMlstmCall *c) {
    Geo g;
    if (!make_geo(c, &g)) return;
    SWAX_CUDA_REQUIRE(c->m_t && c->den_t && c->arg_t && c->Cs && c->ns);
    SWAX_CUDA_REQUIRE(c->dh && c->dproj && c->dig && c->dlf);
    SWAX_CUDA_REQUIRE(!c->C0 && !c->C1); /* the state in / out is inference-only */
    BwdScr s;
    Arena a = {nullptr, 0};
    carve_bwd(a, g, s);
    a = {static_cast<char *>(swax_cuda_scratch(SWAX_SCRATCH_MLSTM, a.off)), 0};
    carve_bwd(a, g, s);
    const unsigned BH = (unsigned)(g.B * g.NH);
    cudaStream_t st = swax_cuda_stream();
    k_scalars<<<BH, SCAL_THREADS, 0, st>>>(g, c->chunks, c->doc_start, c->ig, c->lf, s.bcum, s.w, s.cid, s.cs,
                                           nullptr, nullptr);
    SWAX_CUDA_LAUNCHED();
    k_bwd_pre<float><<<dim3(swax_ceil_div((size_t)g.T, PRE_THREADS / 32), BH), PRE_THREADS, 0, st>>>(
        g, c->h, c->dh, c->m_t, c->den_t, s.bcum, s.cid, s.cs.mp, s.alpha, s.inv, s.dden, s.dm0);
    SWAX_CUDA_LAUNCHED();
    k_bwd_scan<float><<<dim3(g.NTK * g.NTV, BH), NT, 0, st>>>(g, c->chunks, s.cs.flag, s.cs.beta, c->proj, c->dh,
                                                               s.alpha, s.inv, s.dden, c->Cs, c->ns, s.dCe, s.dne,
                                                               s.pbeta);
    SWAX_CUDA_LAUNCHED();
    k_bwd_att<float><<<dim3(g.MC * g.NTP * g.NTP, BH), NT, 0, st>>>(g, c->chunks, s.cs.flag, c->proj, c->dh, c->ig,
                                                                     s.bcum, c->m_t, s.inv, s.dden, s.P, s.dS,
                                                                     s.rowp, s.colp);
    SWAX_CUDA_LAUNCHED();
    k_bwd_dq<float><<<dim3(g.MC * g.NTP * g.NTK, BH), NT, 0, st>>>(g, c->chunks, s.cs.flag, c->proj, c->dh, c->Cs,
                                                                    c->ns, s.alpha, s.inv, s.dden, s.dS, s.alpart,
                                                                    c->dproj);
    SWAX_CUDA_LAUNCHED();
    k_bwd_dk<float><<<dim3(g.MC * g.NTP * g.NTK, BH), NT, 0, st>>>(g, c->chunks, s.cs.flag, c->proj, s.dCe, s.dne,
                                                                    s.w, s.dS, s.wpart, c->dproj);
    SWAX_CUDA_LAUNCHED();
    k_bwd_dv<float><<<dim3(g.MC * g.NTP * g.NTV, BH), NT, 0, st>>>(g, c->chunks, s.cs.flag, c->proj, c->dh, s.dCe,
                                                                    s.w, s.inv, s.P, c->dproj);
    SWAX_CUDA_LAUNCHED();
    k_bwd_fin<<<BH, FIN_THREADS, 0, st>>>(g, c->chunks, s.cs, s.cid, s.w, s.dm0, s.alpart, s.rowp, s.colp, s.wpart,
                                          s.pbeta, c->arg_t, s.f, c->dig, c->dlf);
    SWAX_CUDA_LAUNCHED();
}
