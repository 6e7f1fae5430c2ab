/* mlstm_tc.cu — the mLSTM cell (SPEC §2) with its matrix products on tensor
 * cores: the slots mlstm_cell_fwd / mlstm_cell_bwd of the "cuda" table, as
 * swax_cuda_mlstm_cell_fwd_tc / _bwd_tc. Same function, same saved buffers and
 * layouts (m_t, den_t, arg_t, Cs, ns, ms, arg_end) and the same backward
 * contract as mlstm.cu (read its header for the notation: b, m, arg, α, D, P,
 * β, w, the ZERO / CARRY chunk flags); the two halves can even be mixed.
 *
 * Precision. Every matrix product runs as mma.sync.m16n8k16 bf16 × bf16 with
 * fp32 accumulation: its operands (q̃ = q/√dk, k, v, w∘k, α∘q̃, P, dS, the
 * state C_prev, dnum = dh/N, dC) are rounded to bf16 (nearest-even) when they
 * are staged in shared memory; accumulators, and everything scalar, stay fp32.
 * The scalar path is mlstm.cu's, shared through mlstm_common.cuh or written
 * here with the same expressions in the same order (k_scalars, the per-row
 * stabiliser loop, k_bwd_pre, k_bwd_fin), so b, m_t, arg_t, ms, arg_end, β, w,
 * α are bit-identical to the fp32 kernels and to the CPU. Where mlstm.cu adds
 * an "extra column" (n·q̃, Σ_s w_s k_s, Σ_i α_i q̃_i dden_i) it is an fp32
 * dot product of the bf16-rounded staged operand with an fp32 vector. The
 * saved states C (Cs), n (ns) and the normaliser den are fp32; dC travels
 * between kernels as bf16 (it is only ever an operand), and so do P and dS.
 * Expected error against the fp32 CPU: ~2^-9 relative per rounded operand,
 * accumulated over a few chained products: ≈ 1e-3 of each tensor's max (the
 * test allows 1e-2).
 *
 * Fast path: dk and dv multiples of 16 (any T, any L >= 1, dk <= 256, dv <=
 * 512 as the fp32 path); other head sizes go to the fp32 kernels of mlstm.cu.
 *
 * Tensor-core tile (gemm_tc): a block of 256 threads (8 warps) owns a 64 ×
 * 64·NB output tile (NB = 1 or 2); warp w owns rows 16·(w%4).. +16 and columns
 * 32·NB·(w/4).. +32·NB, i.e. 4·NB m16n8 accumulator fragments (16·NB fp32 per
 * thread). The reduction runs over K in slices of KS (32, or 64 in the scans):
 * each thread loads its share of the next slice from global memory into
 * registers (fp32, through the caller's element functors, zero outside the
 * valid range, so partial tiles need no special case) while the warps run
 * mma.sync on the current slice, then rounds it to bf16 pairs and stores it in
 * the other shared buffer (double-buffered, one barrier per slice). Shared
 * layout: A as [row][k], B as [col][k] (both k-contiguous, "row.col"), rows of
 * KS/2 + 4 32-bit words so that the fragment loads (lane = 4·g + t reads word
 * g·stride + t) hit 32 distinct banks. Fragments (PTX ISA, "Matrix Fragments
 * for mma.m16n8k16 with floating point type"; g = lane>>2, t = lane&3; the
 * lower-indexed element in the low 16 bits):
 *   A 16×16: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
 *   B 16×8:  b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
 *   C 16×8:  c0, c1 = C[g][2t], C[g][2t+1]; c2, c3 = C[g+8][2t], C[g+8][2t+1]
 * (mma.sync with 32-bit shared loads, not wmma: the accumulator layout is
 * documented, so the epilogues — P = S ⊙ D, dS, row and column sums — work on
 * the fragments in registers without a shared-memory round trip; not ldmatrix:
 * the kernels are bound by global memory, and one documented layout is less to
 * get wrong. The host emulator checks the layouts; see the tests.)
 *
 * Forward (3 launches):
 *   k_scalars    (mlstm_common.cuh) per (b, h): b, g, the m chain, β, w.
 *   tc_fwd_scan  block per (b, h, 64-dk tile, 64-dv tile), sequential over
 *                chunks: C (fp32 fragments in registers) stored to Cs at each
 *                chunk start, then (CARRY) C <- β C + (w∘K)ᵀ V in 64-token
 *                slices; n rides along as the extra column (dv tile 0).
 *   tc_fwd_out   block per (b, h, chunk, 64-query tile, 128-dv tile): the
 *                stabiliser per row (CPU arithmetic), α Q̃ C_prev (+ α n·q̃ as
 *                the extra column), then per key tile S = Q̃ Kᵀ, P = S ⊙ D in
 *                fp32 (row sums for den), P as bf16 in shared memory, += P V;
 *                h = acc / (max(|den|, e^-m) + eps). Fuses mlstm.cu's fwd_att
 *                and fwd_out: S is recomputed per dv tile (2 tiles at dv 256)
 *                instead of a P round trip through memory.
 * Backward (8 launches): as mlstm.cu — k_scalars, k_bwd_pre, tc_bwd_scan (dC
 *   into each chunk end, stored as bf16; the <dC, C_prev> + <dn, n_prev>
 *   partials), tc_bwd_att (S, dP = dden + dnum Vᵀ, P and dS to scratch as
 *   bf16, row and column sums of dP ⊙ P), tc_bwd_dq (α (dnum C_prevᵀ + dden
 *   n_prev) + dS K), tc_bwd_dk (w (V dCᵀ + dn) + dSᵀ Q̃), tc_bwd_dv (w K dC +
 *   Pᵀ dnum, 128-wide dv tiles), k_bwd_fin — with the same per-tile partials
 *   (alpart, wpart per 64-dk tile; rowp, colp per 64-token tile; pbeta per
 *   64×64 state tile), so k_bwd_fin is shared unchanged.
 * No atomics; every reduction in a fixed order (reruns give the same bits).
 *
 * Scratch (SWAX_SCRATCH_MLSTM, shared with mlstm.cu: the two never run at
 * once on the stream): forward 2·BH·T (+ BH·T ints) + 6·BH·MC floats, plus the
 * states in inference; backward as mlstm.cu's but dC (BH·MC·dk·dv), P and dS
 * (BH·T·Lp each) in bf16.
 *
 * Cost at the benchmark shape (B 8, NH 4, T 4096, dk 128, dv 256; BHT = B·NH·T
 * = 131,072 token-heads), in tensor-core FLOPs as tiled (masked diagonal tiles
 * and the per-dv-tile recomputation of S included) and in DRAM bytes (each
 * kernel reading each input once; q, k, v, h, dh, dproj fp32; Cs fp32 at
 * BH·(T/L)·dk·dv·4 = 268 MB at L 64, 134 MB at L 128):
 *   L 64:  fwd 25.8 GFLOP, 1.27 GB; bwd 49.5 GFLOP, 2.83 GB
 *   L 128: fwd 29.9 GFLOP, 1.01 GB; bwd 56.8 GFLOP, 2.44 GB
 * Floors (FLOPs / 600 TFLOP/s; bytes / 3.5 TB/s), fwd + bwd:
 *   L 64:  0.13 ms compute, 1.17 ms memory;  L 128: 0.14 ms, 0.98 ms.
 * Memory-bound by a wide margin. Predicted (75% of DRAM bandwidth, plus the
 * latency-bound chunk scans ≈ 0.05 ms each and the scalar kernels ≈ 0.1 ms per
 * call): L 64 ≈ 0.55 ms fwd + 1.3 ms bwd ≈ 1.9 ms; L 128 ≈ 0.45 + 1.1 ≈ 1.6
 * ms. Recommended chunk size: L = 128 (the states Cs / dC, read or written
 * five times, halve; the intra-chunk work doubles but is cheap on tensor
 * cores). L = 256 moves roughly as many bytes as 128 (Cs halves again, P/dS
 * double) with longer per-row stabiliser loops. */
#include "ops/cuda/mlstm_common.cuh"

#include <stdint.h>

extern "C" void swax_cuda_mlstm_cell_fwd_tc(SwaxMlstmCall *c);
extern "C" void swax_cuda_mlstm_cell_bwd_tc(SwaxMlstmCall *c);

namespace {

/* ------------------------------------------------------- PTX wrappers
 * The only inline assembly of the file; the host emulator used to check the
 * kernels substitutes its own versions (SWAX_TC_EMU names its header). */
#ifdef SWAX_TC_EMU
#include SWAX_TC_EMU
#else
/* d (16×8 fp32 fragment) += A (16×16 bf16, row-major) · B (16×8 bf16, col-major). */
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
/* Two floats rounded to bf16 (nearest-even), lo in bits 0..15, hi in 16..31.
 * cvt.rn.bf16x2.f32 d, a, b puts a in the upper half. */
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
/* The block's dynamic shared memory. */
__device__ __forceinline__ unsigned char *tc_smem() {
    extern __shared__ __align__(16) unsigned char swax_tc_smem[];
    return swax_tc_smem;
}
#endif

__device__ __forceinline__ float bf_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf_hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }
/* One bf16 (a uint16_t in memory) as float: exact. */
__device__ __forceinline__ float bf_ld(const uint16_t *p) { return __uint_as_float((uint32_t)*p << 16); }

constexpr int TNT = 256; /* threads of every tensor-core block */
constexpr int NBV = 1;  /* NB of the products whose columns are dv (h, dv) */
constexpr int VT = TL * NBV; /* their dv tile */
constexpr int SMEM_MAX = 48 * 1024;

/* One K slice: A (64 rows) and B (64·NB columns), bf16 pairs, k-contiguous;
 * x: the extra column's fp32 vector. */
template <int NB, int KS> struct TcStage {
    static constexpr int KW = KS / 2 + 4; /* words per row; ≡ 4 (mod 8): conflict-free fragment loads */
    uint32_t a[TL][KW];
    uint32_t b[TL * NB][KW];
    float x[KS];
};
template <int NB, int KS> struct TcSmem {
    TcStage<NB, KS> st[2];
};

/* This thread's fragment coordinates in a 64 × 64·NB tile: rows r0, r0 + 8;
 * columns c0 + 8·nt + {0, 1}. Element acc[nt][i]: row r0 + 8·(i>>1), column
 * c0 + 8·nt + (i&1). */
template <int NB> __device__ __forceinline__ int frag_r0() { return ((threadIdx.x >> 5) & 3) * 16 + ((threadIdx.x & 31) >> 2); }
template <int NB> __device__ __forceinline__ int frag_c0() { return (threadIdx.x >> 7) * 32 * NB + 2 * (threadIdx.x & 3); }

/* acc (64 × 64·NB tile) += Σ_{k in [kbeg, kend)} A(row, k) B(k, col), operands
 * rounded to bf16, fp32 accumulation. fa(row, k), fb(k, col) are called only
 * for k < kend and must return 0 outside the tile's valid rows / columns. KCA
 * / KCB: the source is contiguous along k (consecutive threads read
 * consecutive k of one row / column), otherwise along the row / column index.
 * With xon, thread tid < 64 also accumulates the extra column xacc += Σ_k
 * bf16(A(tid, k)) fx(k) (fx fp32). Starts and ends with a barrier; call it from
 * every thread of the block. */
template <int NB, int KS, bool KCA, bool KCB, class FA, class FB, class FX>
__device__ __forceinline__ void gemm_tc(float (&acc)[4 * NB][4], int kbeg, int kend, const FA &fa, const FB &fb,
                                        bool xon, const FX &fx, float &xacc, TcSmem<NB, KS> &sm) {
    constexpr int KP = KS / 2;           /* k pairs per slice */
    constexpr int NC = TL * NB;          /* B columns */
    constexpr int PA = TL * KP / TNT;    /* A pairs per thread */
    constexpr int PB = NC * KP / TNT;    /* B pairs per thread */
    static_assert(PA * TNT == TL * KP && PB * TNT == NC * KP, "slice does not split evenly");
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3, wr = warp & 3, wc = warp >> 2;
    __syncthreads();
    if (kend <= kbeg) return;
    float ra[PA][2], rb[PB][2], rx = 0.f;
    auto fetch = [&](int k0) {
#pragma unroll
        for (int q = 0; q < PA; q++) {
            const int x = tid + q * TNT, r = KCA ? x / KP : x % TL, kp = KCA ? x % KP : x / TL, k = k0 + 2 * kp;
            ra[q][0] = k < kend ? fa(r, k) : 0.f;
            ra[q][1] = k + 1 < kend ? fa(r, k + 1) : 0.f;
        }
#pragma unroll
        for (int q = 0; q < PB; q++) {
            const int x = tid + q * TNT, c = KCB ? x / KP : x % NC, kp = KCB ? x % KP : x / NC, k = k0 + 2 * kp;
            rb[q][0] = k < kend ? fb(k, c) : 0.f;
            rb[q][1] = k + 1 < kend ? fb(k + 1, c) : 0.f;
        }
        if (xon && tid < KS) rx = k0 + tid < kend ? fx(k0 + tid) : 0.f;
    };
    auto put = [&](int buf) {
        TcStage<NB, KS> &s = sm.st[buf];
#pragma unroll
        for (int q = 0; q < PA; q++) {
            const int x = tid + q * TNT, r = KCA ? x / KP : x % TL, kp = KCA ? x % KP : x / TL;
            s.a[r][kp] = pack_bf16x2(ra[q][0], ra[q][1]);
        }
#pragma unroll
        for (int q = 0; q < PB; q++) {
            const int x = tid + q * TNT, c = KCB ? x / KP : x % NC, kp = KCB ? x % KP : x / NC;
            s.b[c][kp] = pack_bf16x2(rb[q][0], rb[q][1]);
        }
        if (xon && tid < KS) s.x[tid] = rx;
    };
    fetch(kbeg);
    put(0);
    __syncthreads();
    int buf = 0;
    for (int k0 = kbeg; k0 < kend; k0 += KS) {
        const bool more = k0 + KS < kend;
        if (more) fetch(k0 + KS);
        const TcStage<NB, KS> &s = sm.st[buf];
#pragma unroll
        for (int kk = 0; kk < KS / 16; kk++) {
            const int ar = wr * 16 + g, aw = kk * 8 + t;
            const uint32_t a[4] = {s.a[ar][aw], s.a[ar + 8][aw], s.a[ar][aw + 4], s.a[ar + 8][aw + 4]};
#pragma unroll
            for (int nt = 0; nt < 4 * NB; nt++) {
                const int bc = wc * 32 * NB + nt * 8 + g;
                const uint32_t b[2] = {s.b[bc][aw], s.b[bc][aw + 4]};
                mma_bf16_16816(acc[nt], a, b);
            }
        }
        if (xon && tid < TL) {
#pragma unroll
            for (int kp = 0; kp < KP; kp++) {
                const uint32_t w = s.a[tid][kp];
                xacc = fmaf(bf_lo(w), s.x[2 * kp], xacc);
                xacc = fmaf(bf_hi(w), s.x[2 * kp + 1], xacc);
            }
        }
        if (more) put(buf ^ 1);
        __syncthreads();
        buf ^= 1;
    }
}

/* Per-row sums of a 64 × 64·NB fragment tile: v0, v1 are this thread's sums
 * over its columns for rows r0 and r0 + 8; the 4 lanes of a quad are added
 * (butterfly), then red[wc][row] holds each column-warp's part. The caller
 * synchronises and adds red[0][row] + red[1][row] (fixed order). */
__device__ __forceinline__ void row_part(float v0, float v1, float (*red)[TL]) {
    v0 += __shfl_xor_sync(0xffffffffu, v0, 1);
    v0 += __shfl_xor_sync(0xffffffffu, v0, 2);
    v1 += __shfl_xor_sync(0xffffffffu, v1, 1);
    v1 += __shfl_xor_sync(0xffffffffu, v1, 2);
    if ((threadIdx.x & 3) == 0) {
        const int r0 = frag_r0<1>();
        red[threadIdx.x >> 7][r0] = v0;
        red[threadIdx.x >> 7][r0 + 8] = v1;
    }
}

struct NoX {
    __device__ float operator()(int) const { return 0.f; }
};

/* ------------------------------------------------------------------ forward */

using ScanSm = TcSmem<1, 32>;

__global__ void __launch_bounds__(TNT, 2)
k_tc_fwd_scan(Geo g, const int *chunks, const int *flag, const float *beta, const float *proj, const float *w,
              float *Cs, float *ns) {
    ScanSm &sm = *reinterpret_cast<ScanSm *>(tc_smem());
    const int bh = blockIdx.y, jt = blockIdx.x / g.NTV, et = blockIdx.x % g.NTV;
    const int j0 = jt * TL, e0 = et * TL, tid = threadIdx.x, dk = g.dk, dv = g.dv;
    const long ldp = g.ldp;
    const bool ncol = et == 0;
    const int r0 = frag_r0<1>(), c0 = frag_c0<1>();
    float acc[4][4] = {}, nacc = 0.f;
    for (int ci = 0; ci < g.MC; ci++) {
        Chunk c;
        if (!chunk_of(g, chunks, flag, bh, ci, c)) break;
        if (c.fl & F_ZERO) {
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int i = 0; i < 4; i++) acc[nt][i] = 0.f;
            nacc = 0.f;
        }
        float *C = Cs + c.cb * dk * dv;
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int j = j0 + r0 + 8 * (i >> 1), e = e0 + c0 + 8 * nt + (i & 1);
                if (j < dk && e < dv) C[(size_t)j * dv + e] = acc[nt][i];
            }
        if (ncol && tid < TL && j0 + tid < dk) ns[c.cb * dk + j0 + tid] = nacc;
        if (!(c.fl & F_CARRY)) continue;
        const float be = beta[c.cb];
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[nt][i] *= be;
        nacc *= be;
        const float *k = proj + c.row0 * ldp + (size_t)(g.NH + c.h) * dk + j0;
        const float *v = proj + c.row0 * ldp + (size_t)2 * g.NH * dk + (size_t)c.h * dv + e0;
        const float *ws = w + c.tok0;
        auto fa = [=](int j, int s) { return j0 + j < dk ? ws[s] * k[(size_t)s * ldp + j] : 0.f; };
        auto fb = [=](int s, int e) { return e0 + e < dv ? v[(size_t)s * ldp + e] : 0.f; };
        auto fx = [](int) { return 1.f; };
        gemm_tc<1, 32, false, false>(acc, 0, c.n, fa, fb, ncol, fx, nacc, sm);
    }
}

/* ------------------------------------------------------------------ scalars
 * mlstm_common.cuh's k_scalars and k_bwd_fin run one block per (b, h) with a
 * thread per chunk walking its tokens through global memory, one dependent
 * load after another. Here the same sequential sums (same operations in the
 * same order, so the same bits) run from shared memory, a block per chunk:
 *   tc_gates     per chunk: b = cumsum lf, g, max_s (g - b_s + ig_s) and its first argmax, the ZERO flag
 *   tc_chain     per (b, h): the m chain over chunks (m_prev, m', arg_end, β, CARRY), staged in shared memory
 *   w_s and α_i are then per-token expressions (tc_stab in the forward, tc_bwd_pre in the backward);
 *   tc_fin_chunk per chunk: mlstm.cu's bwd_fin steps 0 and 1; tc_fin_chain per (b, h): step 2 (the dm
 *   chain); tc_fin_tok per chunk: steps 3 and 4.
 * A chunk longer than PIECE tokens keeps its per-token arrays in global memory
 * (generic pointers: the same code). */
constexpr int GATE_THREADS = 128, PIECE = 1024, CHAIN_THREADS = 128, CT = 1024;

__global__ void __launch_bounds__(GATE_THREADS)
k_tc_gates(Geo g, const int *chunks, const uint8_t *doc_start, const float *ig, const float *lf, float *bcum,
           int *cid, ChunkScr cs) {
    __shared__ float s_x[PIECE], s_b[PIECE];
    __shared__ float s_acc;
    const int ci = blockIdx.x, bh = blockIdx.y, b = bh / g.NH, h = bh % g.NH, NH = g.NH, tid = threadIdx.x;
    const int *row = chunks + (size_t)b * (g.MC + 1);
    const int c0 = row[ci];
    if (c0 >= g.T) return;
    const int n = row[ci + 1] - c0;
    if (n < 1 || n > g.Lcap) __trap(); /* a chunk table not made with this L */
    const size_t tb = (size_t)bh * g.T + c0, rb = (size_t)b * g.T + c0, cx = (size_t)bh * g.MC + ci;
    float acc = 0.f; /* thread 0: the running cumsum */
    for (int p0 = 0; p0 < n; p0 += PIECE) {
        const int pn = min(PIECE, n - p0);
        for (int t = tid; t < pn; t += GATE_THREADS) {
            s_x[t] = lf[(rb + p0 + t) * NH + h];
            cid[tb + p0 + t] = ci;
        }
        __syncthreads();
        if (tid == 0)
            for (int t = 0; t < pn; t++) {
                acc += s_x[t];
                s_b[t] = acc;
            }
        __syncthreads();
        for (int t = tid; t < pn; t += GATE_THREADS) bcum[tb + p0 + t] = s_b[t];
        __syncthreads();
    }
    if (tid == 0) s_acc = acc;
    __syncthreads();
    const float gg = s_acc;
    float best = 0.f;
    int arg = 0;
    for (int p0 = 0; p0 < n; p0 += PIECE) {
        const int pn = min(PIECE, n - p0);
        for (int t = tid; t < pn; t += GATE_THREADS) {
            s_x[t] = ig[(rb + p0 + t) * NH + h];
            if (n > PIECE) s_b[t] = bcum[tb + p0 + t]; /* else s_b still holds the one piece */
        }
        __syncthreads();
        if (tid == 0)
            for (int t = 0; t < pn; t++) {
                const float v = gg - s_b[t] + s_x[t];
                if (p0 + t == 0) best = v;
                else if (v > best) {
                    best = v;
                    arg = p0 + t;
                }
            }
        __syncthreads();
    }
    if (tid == 0) {
        cs.g[cx] = gg;
        cs.me[cx] = best;
        cs.arge[cx] = arg;
        cs.flag[cx] = (ci == 0 || (doc_start && doc_start[rb])) ? F_ZERO : 0;
    }
}

__global__ void __launch_bounds__(CHAIN_THREADS)
k_tc_chain(Geo g, const int *chunks, ChunkScr cs, float *ms_out, int *arge_out) {
    __shared__ float s_g[CT], s_me[CT], s_mp[CT], s_beta[CT];
    __shared__ int s_ae[CT], s_fl[CT];
    const int bh = blockIdx.x, b = bh / g.NH, tid = threadIdx.x;
    const int *row = chunks + (size_t)b * (g.MC + 1);
    const size_t cbb = (size_t)bh * g.MC;
    float m = 0.f; /* thread 0: the carried m */
    for (int t0 = 0; t0 < g.MC; t0 += CT) {
        const int tn = min(CT, g.MC - t0);
        if (row[t0] >= g.T) break; /* uniform: every thread reads the same entry */
        for (int t = tid; t < tn; t += CHAIN_THREADS) {
            const size_t x = cbb + t0 + t;
            const bool valid = row[t0 + t] < g.T;
            s_fl[t] = valid ? cs.flag[x] : -1;
            if (valid) s_g[t] = cs.g[x], s_me[t] = cs.me[x], s_ae[t] = cs.arge[x];
        }
        __syncthreads();
        if (tid == 0)
            for (int t = 0; t < tn && s_fl[t] >= 0; t++) {
                const int ci = t0 + t, z = s_fl[t] & F_ZERO;
                const float mp = z ? 0.f : m, base = s_g[t] + mp, a = s_me[t];
                float me;
                int ae;
                if (a > base) {
                    me = a;
                    ae = s_ae[t];
                } else {
                    me = base;
                    ae = -1;
                }
                s_mp[t] = mp;
                s_me[t] = me;
                s_ae[t] = ae;
                s_beta[t] = expf(base - me);
                if (ci > 0 && !z) {
                    if (t > 0) s_fl[t - 1] |= F_CARRY;
                    else cs.flag[cbb + ci - 1] |= F_CARRY; /* the previous tile's last chunk, already written */
                }
                m = me;
            }
        __syncthreads();
        for (int t = tid; t < tn; t += CHAIN_THREADS) {
            if (s_fl[t] < 0) continue;
            const size_t x = cbb + t0 + t;
            cs.mp[x] = s_mp[t], cs.me[x] = s_me[t], cs.arge[x] = s_ae[t], cs.beta[x] = s_beta[t];
            cs.flag[x] = s_fl[t];
            if (ms_out) ms_out[x] = s_mp[t], arge_out[x] = s_ae[t];
        }
        __syncthreads();
    }
}

/* Backward scalars, per chunk: mlstm.cu's bwd_fin step 0 (per token: d log α,
 * Σ_s dlogD, Σ_i dlogD, d log w, dm_i) and step 1 (in token order: dm_i routed
 * to arg_i or to m_prev; the chunk's sums). */
constexpr int FIN_CHUNK_THREADS = 128;

__global__ void __launch_bounds__(FIN_CHUNK_THREADS)
k_tc_fin_chunk(Geo g, const int *chunks, ChunkScr cs, const float *w, const float *dm0, const float *alpart,
               const float *rowp, const float *colp, const float *wpart, const float *pbeta, const int *arg_t,
               FinScr f) {
    __shared__ float s_dlal[PIECE], s_dmt[PIECE], s_dlw[PIECE], s_R[PIECE];
    __shared__ int s_arg[PIECE];
    const int ci = blockIdx.x, bh = blockIdx.y, b = bh / g.NH, tid = threadIdx.x;
    const int *row = chunks + (size_t)b * (g.MC + 1);
    const int c0 = row[ci];
    if (c0 >= g.T) return;
    const int n = row[ci + 1] - c0, nt = (n + TL - 1) / TL, ntile = g.NTK * g.NTV;
    const size_t x0 = (size_t)bh * g.T + c0, cx = (size_t)bh * g.MC + ci;
    const bool carry = cs.flag[cx] & F_CARRY, small = n <= PIECE;
    for (int i = tid; i < n; i += FIN_CHUNK_THREADS) {
        const size_t x = x0 + i;
        const int itl = i / TL;
        float al = 0.f, rs = 0.f, cs_ = 0.f, dw = 0.f;
        for (int j = 0; j < g.NTK; j++) al += alpart[x * g.NTK + j];
        for (int s = 0; s <= itl; s++) rs += rowp[x * g.NTP + s];
        for (int it = itl; it < nt; it++) cs_ += colp[x * g.NTP + it];
        if (carry) {
            for (int j = 0; j < g.NTK; j++) dw += wpart[x * g.NTK + j];
            dw *= w[x];
        }
        const float dmt = dm0[x] - al - rs;
        f.dlal[x] = al, f.rsum[x] = rs, f.csum[x] = cs_, f.dlw[x] = dw, f.dmt[x] = dmt, f.R[x] = 0.f;
        if (small) s_dlal[i] = al, s_dmt[i] = dmt, s_dlw[i] = dw, s_R[i] = 0.f, s_arg[i] = arg_t[x];
    }
    __syncthreads();
    if (tid == 0) {
        const float *dlal = small ? s_dlal : f.dlal + x0, *dmt = small ? s_dmt : f.dmt + x0;
        const float *dlw = small ? s_dlw : f.dlw + x0;
        const int *arg = small ? s_arg : arg_t + x0;
        float *R = small ? s_R : f.R + x0;
        float sal = 0.f, sdm = 0.f, sw = 0.f;
        for (int i = 0; i < n; i++) {
            sal += dlal[i];
            const int a = arg[i];
            if (a < 0) sdm += dmt[i];
            else R[a] += dmt[i];
            sw += dlw[i];
        }
        float dlb = 0.f;
        if (carry) {
            float s = 0.f;
            for (int j = 0; j < ntile; j++) s += pbeta[cx * ntile + j];
            dlb = s * cs.beta[cx];
        }
        f.base[cx] = sal + sdm + dlb;
        f.sumw[cx] = sw;
        f.dlb[cx] = dlb;
    }
    __syncthreads();
    if (small)
        for (int i = tid; i < n; i += FIN_CHUNK_THREADS) f.R[x0 + i] = s_R[i];
}

/* Step 2, per (b, h): the dm chain, last chunk first (staged in shared memory). */
__global__ void __launch_bounds__(CHAIN_THREADS)
k_tc_fin_chain(Geo g, const int *chunks, ChunkScr cs, FinScr f) {
    __shared__ float s_base[CT], s_sumw[CT], s_dlb[CT], s_dmn[CT], s_dg[CT];
    __shared__ int s_fl[CT], s_ae[CT];
    __shared__ int s_nch;
    const int bh = blockIdx.x, tid = threadIdx.x;
    const size_t cbb = (size_t)bh * g.MC;
    if (tid == 0) s_nch = num_chunks(g, chunks, bh / g.NH);
    __syncthreads();
    const int nch = s_nch;
    float dm = 0.f; /* thread 0 */
    for (int t1 = nch; t1 > 0; t1 -= CT) {
        const int t0 = t1 > CT ? t1 - CT : 0, tn = t1 - t0;
        for (int t = tid; t < tn; t += CHAIN_THREADS) {
            const size_t x = cbb + t0 + t;
            s_base[t] = f.base[x], s_sumw[t] = f.sumw[x], s_dlb[t] = f.dlb[x];
            s_fl[t] = cs.flag[x], s_ae[t] = cs.arge[x];
        }
        __syncthreads();
        if (tid == 0)
            for (int t = tn - 1; t >= 0; t--) {
                float dmn = 0.f, dg = 0.f, dmp = s_base[t];
                if (s_fl[t] & F_CARRY) {
                    dmn = dm - s_sumw[t] - s_dlb[t];
                    dg = s_dlb[t] + s_sumw[t] + dmn;
                    if (s_ae[t] < 0) dmp += dmn;
                }
                s_dmn[t] = dmn;
                s_dg[t] = dg;
                dm = dmp;
            }
        __syncthreads();
        for (int t = tid; t < tn; t += CHAIN_THREADS) f.dmn[cbb + t0 + t] = s_dmn[t], f.dg[cbb + t0 + t] = s_dg[t];
        __syncthreads();
    }
}

/* Steps 3 and 4, per chunk: db and dig per token, then dlf = the reverse
 * cumsum of db within the chunk. */
__global__ void __launch_bounds__(FIN_CHUNK_THREADS)
k_tc_fin_tok(Geo g, const int *chunks, ChunkScr cs, FinScr f, float *dig, float *dlf) {
    __shared__ float s_db[PIECE];
    const int ci = blockIdx.x, bh = blockIdx.y, b = bh / g.NH, h = bh % g.NH, NH = g.NH, tid = threadIdx.x;
    const int *row = chunks + (size_t)b * (g.MC + 1);
    const int c0 = row[ci];
    if (c0 >= g.T) return;
    const int n = row[ci + 1] - c0;
    const size_t x0 = (size_t)bh * g.T + c0, r0 = (size_t)b * g.T + c0, cx = (size_t)bh * g.MC + ci;
    const bool carry = cs.flag[cx] & F_CARRY, small = n <= PIECE;
    const int ae = cs.arge[cx];
    const float dmn = f.dmn[cx], dgc = f.dg[cx];
    for (int li = tid; li < n; li += FIN_CHUNK_THREADS) {
        const size_t x = x0 + li;
        float db = f.dlal[x] + f.rsum[x] - f.csum[x] + f.dmt[x] - f.R[x];
        float di = f.csum[x] + f.R[x];
        if (carry) {
            db -= f.dlw[x];
            di += f.dlw[x];
            if (ae == li) {
                db -= dmn;
                di += dmn;
            }
            if (li == n - 1) db += dgc;
        }
        dig[(r0 + li) * NH + h] = di;
        if (small) s_db[li] = db;
        else dlf[(r0 + li) * NH + h] = db;
    }
    __syncthreads();
    if (tid == 0) {
        float r = 0.f;
        if (small)
            for (int t = n - 1; t >= 0; t--) {
                r += s_db[t];
                s_db[t] = r;
            }
        else
            for (int t = n - 1; t >= 0; t--) {
                float *p = dlf + (r0 + t) * NH + h;
                r += *p;
                *p = r;
            }
    }
    __syncthreads();
    if (small)
        for (int li = tid; li < n; li += FIN_CHUNK_THREADS) dlf[(r0 + li) * NH + h] = s_db[li];
}

/* Per token: the stabiliser m_i with its argmax and α_i = e^{b_i + m_prev - m_i},
 * exactly as the CPU's stab_i (and mlstm.cu's fwd_att), and w: a thread per token. */
constexpr int STAB_THREADS = 128;

__global__ void __launch_bounds__(STAB_THREADS)
k_tc_stab(Geo g, const int *chunks, const int *cid, ChunkScr cs, const float *ig, const float *bcum, float *m_out,
          int *arg_out, float *alpha, float *w) {
    const int bh = blockIdx.y, b = bh / g.NH, h = bh % g.NH, NH = g.NH;
    const int t = blockIdx.x * STAB_THREADS + threadIdx.x;
    if (t >= g.T) return;
    const size_t x = (size_t)bh * g.T + t;
    const int ci = cid[x], c0 = chunks[(size_t)b * (g.MC + 1) + ci], i = t - c0;
    const size_t tok0 = (size_t)bh * g.T + c0, row0 = (size_t)b * g.T + c0;
    const size_t cx = (size_t)bh * g.MC + ci;
    const float mp = cs.mp[cx], bi = bcum[x];
    float best = bi + mp;
    int arg = -1;
    for (int s = 0; s <= i; s++) {
        const float v = bi - bcum[tok0 + s] + ig[(row0 + s) * NH + h];
        if (v > best) {
            best = v;
            arg = s;
        }
    }
    m_out[x] = best;
    arg_out[x] = arg;
    alpha[x] = expf(bi + mp - best);
    /* w_s = e^{g - b_s + ig_s - m'} (k_scalars' step 3) */
    w[x] = expf(cs.g[cx] - bi + ig[(row0 + i) * NH + h] - cs.me[cx]);
}

struct FwdOutSm {
    union {
        TcSmem<1, 32> s1;
        TcSmem<NBV, 32> sv;
    } u;
    uint32_t P[TL][TL / 2 + 4]; /* the current P tile, bf16 pairs [row][key pair] */
    float b[TL], m[TL], al[TL], bs[TL], ig[TL], inv[TL];
    float rs[2][TL];
};

__global__ void __launch_bounds__(TNT, 2)
k_tc_fwd_out(Geo g, const int *chunks, const int *flag, const float *proj, const float *ig, const float *bcum,
             const float *mrow, const float *alpha, const float *Cs, const float *ns, float *hout, float *den_t) {
    const int nvo = (g.dv + VT - 1) / VT, per = g.NTP * nvo;
    const int ci = blockIdx.x / per, it = blockIdx.x % per / nvo, et = blockIdx.x % nvo;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int i0 = it * TL, e0 = et * VT, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (i0 >= n) return;
    FwdOutSm &sm = *reinterpret_cast<FwdOutSm *>(tc_smem());
    const int tid = threadIdx.x;
    const long ldp = g.ldp;
    const float sc = g.scale;
    if (tid < TL) {
        const int i = i0 + tid;
        sm.b[tid] = i < n ? bcum[c.tok0 + i] : 0.f;
        sm.m[tid] = i < n ? mrow[c.tok0 + i] : 0.f;
        sm.al[tid] = i < n ? alpha[c.tok0 + i] : 0.f;
    }
    const float *q = proj + (c.row0 + i0) * ldp + (size_t)c.h * dk;
    const float *k = proj + c.row0 * ldp + (size_t)(NH + c.h) * dk;
    const float *v = proj + c.row0 * ldp + (size_t)2 * NH * dk + (size_t)c.h * dv + e0;
    auto fq = [=](int i, int j) { return i0 + i < n ? q[(size_t)i * ldp + j] * sc : 0.f; };
    const int r0 = frag_r0<1>(), c0s = frag_c0<1>(), c0h = frag_c0<NBV>();
    float accH[4 * NBV][4] = {}, xacc = 0.f, dummy = 0.f;
    if (!(c.fl & F_ZERO)) { /* α ⊙ (Q̃ C_prev), and n_prev·q̃ for den */
        const float *C = Cs + c.cb * dk * dv + e0, *np = ns + c.cb * dk;
        auto fC = [=](int j, int e) { return e0 + e < dv ? C[(size_t)j * dv + e] : 0.f; };
        auto fx = [=](int j) { return np[j]; };
        gemm_tc<NBV, 32, true, false>(accH, 0, dk, fq, fC, true, fx, xacc, sm.u.sv);
        const float a0 = sm.al[r0], a1 = sm.al[r0 + 8];
#pragma unroll
        for (int nt = 0; nt < 4 * NBV; nt++) {
            accH[nt][0] *= a0, accH[nt][1] *= a0;
            accH[nt][2] *= a1, accH[nt][3] *= a1;
        }
    }
    float rs0 = 0.f, rs1 = 0.f; /* Σ_s P over this thread's columns, rows r0, r0 + 8 */
    for (int st = 0; st <= it; st++) {
        const int s0 = st * TL;
        __syncthreads(); /* the previous tile is done with bs, ig, P */
        if (tid < TL) {
            const int s = s0 + tid;
            sm.bs[tid] = s < n ? bcum[c.tok0 + s] : 0.f;
            sm.ig[tid] = s < n ? ig[(c.row0 + s) * NH + c.h] : 0.f;
        }
        float accS[4][4] = {};
        auto fk = [=](int j, int s) { return s0 + s < n ? k[(size_t)(s0 + s) * ldp + j] : 0.f; };
        gemm_tc<1, 32, true, true>(accS, 0, dk, fq, fk, false, NoX(), dummy, sm.u.s1);
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int rl = r0 + 8 * hh, i = i0 + rl;
            const float bi = sm.b[rl], mr = sm.m[rl];
            float rsum = 0.f;
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                const int sl = c0s + 8 * nt;
                float p[2];
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int s = s0 + sl + e;
                    p[e] = (i < n && s <= i) ? accS[nt][2 * hh + e] * expf(bi - sm.bs[sl + e] + sm.ig[sl + e] - mr)
                                             : 0.f;
                }
                const uint32_t pw = pack_bf16x2(p[0], p[1]);
                sm.P[rl][sl >> 1] = pw;
                rsum += bf_lo(pw) + bf_hi(pw); /* den sums the P that multiplies V: h stays a weighted mean */
            }
            if (hh == 0) rs0 += rsum;
            else rs1 += rsum;
        }
        /* += P V over this key tile */
        auto fP = [&](int i, int s) {
            const uint32_t wv = sm.P[i][(s - s0) >> 1];
            return ((s - s0) & 1) ? bf_hi(wv) : bf_lo(wv);
        };
        auto fv = [=](int s, int e) { return e0 + e < dv ? v[(size_t)s * ldp + e] : 0.f; };
        gemm_tc<NBV, 32, true, false>(accH, s0, min(n, s0 + TL), fP, fv, false, NoX(), dummy, sm.u.sv);
    }
    row_part(rs0, rs1, sm.rs);
    __syncthreads();
    if (tid < TL) {
        float iv = 0.f;
        if (i0 + tid < n) {
            const float den = sm.al[tid] * xacc + (sm.rs[0][tid] + sm.rs[1][tid]);
            const float em = expf(-sm.m[tid]), ad = fabsf(den);
            iv = 1.f / ((ad >= em ? ad : em) + g.eps);
            if (den_t && et == 0) den_t[c.tok0 + i0 + tid] = den;
        }
        sm.inv[tid] = iv;
    }
    __syncthreads();
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        const int rl = r0 + 8 * hh, i = i0 + rl;
        if (i >= n) continue;
        const float iv = sm.inv[rl];
        float *hr = hout + (c.row0 + i) * (size_t)NH * dv + (size_t)c.h * dv + e0;
#pragma unroll
        for (int nt = 0; nt < 4 * NBV; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int el = c0h + 8 * nt + e;
                if (e0 + el < dv) hr[el] = accH[nt][2 * hh + e] * iv;
            }
    }
}

/* ----------------------------------------------------------------- backward */

/* Per token (warp each), as mlstm_common.cuh's k_bwd_pre, except that the
 * gradient into den is taken through the same bf16 dnum = bf16(dh/N) that
 * tc_bwd_att multiplies with V: dP_is = dden_i + dnum_i·v_s cancels to
 * dnum_i·(v_s - h_i) where one key dominates, and the cancellation is clean
 * only if both terms see the same rounded dnum. dm0 (the e^-m branch) keeps the
 * fp32 dh·h. Also w (k_scalars' step 3). */
__global__ void __launch_bounds__(PRE_THREADS)
k_tc_bwd_pre(Geo g, const float *hbuf, const float *dh, const float *m_t, const float *den_t, const float *bcum,
             const int *cid, ChunkScr cs, const float *ig, float *alpha, float *inv, float *dden, float *dm0,
             float *w) {
    const int bh = blockIdx.y, b = bh / g.NH, h = bh % g.NH, lane = threadIdx.x & 31;
    const int t = blockIdx.x * (PRE_THREADS / 32) + (threadIdx.x >> 5);
    if (t >= g.T) return; /* whole warps */
    const size_t off = ((size_t)b * g.T + t) * g.NH * g.dv + (size_t)h * g.dv, x = (size_t)bh * g.T + t;
    const float m = m_t[x], den = den_t[x];
    const float em = expf(-m), ad = fabsf(den);
    const bool use_den = ad >= em;
    const float iv = 1.f / ((use_den ? ad : em) + g.eps);
    float s = 0.f, sb = 0.f;
    for (int e = lane; e < g.dv; e += 32) {
        const float d = dh[off + e], hv = hbuf[off + e];
        s = fmaf(d, hv, s);
        sb = fmaf(bf_lo(pack_bf16x2(d * iv, 0.f)), hv, sb);
    }
    s = swax_warp_sum(s);
    sb = swax_warp_sum(sb);
    if (lane == 0) {
        const float dN = -s * iv;
        inv[x] = iv;
        dden[x] = use_den ? (den >= 0.f ? -sb : sb) : 0.f;
        dm0[x] = use_den ? 0.f : -(dN * em);
        const size_t cx = (size_t)bh * g.MC + cid[x];
        alpha[x] = expf(bcum[x] + cs.mp[cx] - m);
        w[x] = expf(cs.g[cx] - bcum[x] + ig[((size_t)b * g.T + t) * g.NH + h] - cs.me[cx]); /* k_scalars' step 3 */
    }
}

struct BwdScanSm {
    ScanSm s;
    float red[32];
};

__global__ void __launch_bounds__(TNT, 2)
k_tc_bwd_scan(Geo g, const int *chunks, const int *flag, const float *beta, const float *proj, const float *dh,
              const float *alpha, const float *inv, const float *dden, const float *Cs, const float *ns,
              uint16_t *dCe, float *dne, float *pbeta) {
    BwdScanSm &sm = *reinterpret_cast<BwdScanSm *>(tc_smem());
    const int bh = blockIdx.y, jt = blockIdx.x / g.NTV, et = blockIdx.x % g.NTV;
    const int j0 = jt * TL, e0 = et * TL, tid = threadIdx.x;
    const int dk = g.dk, dv = g.dv, NH = g.NH;
    const long ldp = g.ldp, ldh = (long)NH * dv;
    const float sc = g.scale;
    const bool ncol = et == 0;
    const int r0 = frag_r0<1>(), c0 = frag_c0<1>();
    float acc[4][4] = {}, dn = 0.f;
    for (int ci = num_chunks(g, chunks, bh / NH) - 1; ci >= 0; ci--) {
        Chunk c;
        chunk_of(g, chunks, flag, bh, ci, c);
        if (!(c.fl & F_CARRY)) {
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int i = 0; i < 4; i++) acc[nt][i] = 0.f;
            dn = 0.f;
        } else { /* dC into this chunk's end state: store it (bf16), and <dC, C_prev> */
            const bool z = c.fl & F_ZERO;
            uint16_t *D = dCe + c.cb * dk * dv;
            const float *C = Cs + c.cb * dk * dv;
            float part = 0.f;
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const int j = j0 + r0 + 8 * hh, e = e0 + c0 + 8 * nt; /* e even, dv even: e < dv => e + 1 < dv */
                    if (j >= dk || e >= dv) continue;
                    const float d0 = acc[nt][2 * hh], d1 = acc[nt][2 * hh + 1];
                    *reinterpret_cast<uint32_t *>(D + (size_t)j * dv + e) = pack_bf16x2(d0, d1);
                    if (!z) {
                        part = fmaf(d0, C[(size_t)j * dv + e], part);
                        part = fmaf(d1, C[(size_t)j * dv + e + 1], part);
                    }
                }
            if (ncol && tid < TL && j0 + tid < dk) {
                dne[c.cb * dk + j0 + tid] = dn;
                if (!z) part = fmaf(dn, ns[c.cb * dk + j0 + tid], part);
            }
            part = swax_block_sum(part, sm.red);
            if (tid == 0) pbeta[c.cb * (g.NTK * g.NTV) + blockIdx.x] = part;
        }
        if (c.fl & F_ZERO) continue; /* the gradient into a zero start state goes nowhere */
        const float be = beta[c.cb];
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[nt][i] *= be;
        dn *= be;
        const float *q = proj + c.row0 * ldp + (size_t)c.h * dk + j0;
        const float *d = dh + c.row0 * ldh + (size_t)c.h * dv + e0;
        const float *al = alpha + c.tok0, *iv = inv + c.tok0, *dd = dden + c.tok0;
        auto fa = [=](int j, int i) { return j0 + j < dk ? al[i] * (q[(size_t)i * ldp + j] * sc) : 0.f; };
        auto fb = [=](int i, int e) { return e0 + e < dv ? d[(size_t)i * ldh + e] * iv[i] : 0.f; };
        auto fx = [=](int i) { return dd[i]; };
        gemm_tc<1, 32, false, false>(acc, 0, c.n, fa, fb, ncol, fx, dn, sm.s);
    }
}

struct BwdAttSm {
    TcSmem<1, 32> s;
    float b[TL], m[TL], dd[TL], iv[TL], bs[TL], ig[TL];
    float rr[2][TL], cr[4][TL];
};

__global__ void __launch_bounds__(TNT, 2)
k_tc_bwd_att(Geo g, const int *chunks, const int *flag, const float *proj, const float *dh, const float *ig,
             const float *bcum, const float *m_t, const float *inv, const float *dden, uint16_t *Pm, uint16_t *dSm,
             float *rowp, float *colp) {
    const int per = g.NTP * g.NTP;
    const int ci = blockIdx.x / per, it = blockIdx.x % per / g.NTP, st = blockIdx.x % g.NTP;
    if (st > it) return;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int i0 = it * TL, s0 = st * TL, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (i0 >= n) return;
    BwdAttSm &sm = *reinterpret_cast<BwdAttSm *>(tc_smem());
    const int tid = threadIdx.x;
    const long ldp = g.ldp, ldh = (long)NH * dv;
    const float sc = g.scale;
    if (tid < TL) {
        const int i = i0 + tid, s = s0 + tid;
        sm.b[tid] = i < n ? bcum[c.tok0 + i] : 0.f;
        sm.m[tid] = i < n ? m_t[c.tok0 + i] : 0.f;
        sm.dd[tid] = i < n ? dden[c.tok0 + i] : 0.f;
        sm.iv[tid] = i < n ? inv[c.tok0 + i] : 0.f;
        sm.bs[tid] = s < n ? bcum[c.tok0 + s] : 0.f;
        sm.ig[tid] = s < n ? ig[(c.row0 + s) * NH + c.h] : 0.f;
    }
    float aS[4][4] = {}, aP[4][4] = {}, dummy = 0.f;
    {
        const float *q = proj + (c.row0 + i0) * ldp + (size_t)c.h * dk;
        const float *k = proj + (c.row0 + s0) * ldp + (size_t)(NH + c.h) * dk;
        auto fq = [=](int i, int j) { return i0 + i < n ? q[(size_t)i * ldp + j] * sc : 0.f; };
        auto fk = [=](int j, int s) { return s0 + s < n ? k[(size_t)s * ldp + j] : 0.f; };
        gemm_tc<1, 32, true, true>(aS, 0, dk, fq, fk, false, NoX(), dummy, sm.s);
    }
    {
        const float *d = dh + (c.row0 + i0) * ldh + (size_t)c.h * dv;
        const float *v = proj + (c.row0 + s0) * ldp + (size_t)2 * NH * dk + (size_t)c.h * dv;
        const float *siv = sm.iv;
        auto fd = [=](int i, int e) { return i0 + i < n ? d[(size_t)i * ldh + e] * siv[i] : 0.f; };
        auto fv = [=](int e, int s) { return s0 + s < n ? v[(size_t)s * ldp + e] : 0.f; };
        gemm_tc<1, 32, true, true>(aP, 0, dv, fd, fv, false, NoX(), dummy, sm.s);
    }
    const int r0 = frag_r0<1>(), c0 = frag_c0<1>();
    float rv[2] = {0.f, 0.f}, cv[4][2] = {};
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        const int rl = r0 + 8 * hh, i = i0 + rl;
        const float bi = sm.b[rl], mr = sm.m[rl], ddi = sm.dd[rl];
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
            const int sl = c0 + 8 * nt;
            float p[2], ds[2];
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int s = s0 + sl + e;
                p[e] = 0.f, ds[e] = 0.f;
                if (i < n && s <= i) {
                    const float D = expf(bi - sm.bs[sl + e] + sm.ig[sl + e] - mr);
                    const float dP = ddi + aP[nt][2 * hh + e];
                    p[e] = aS[nt][2 * hh + e] * D;
                    ds[e] = dP * D;
                    const float dl = dP * p[e];
                    rv[hh] += dl;
                    cv[nt][e] += dl;
                }
            }
            if (i < n) {
                const size_t o = (c.tok0 + i) * g.Lp + s0 + sl;
                *reinterpret_cast<uint32_t *>(Pm + o) = pack_bf16x2(p[0], p[1]);
                *reinterpret_cast<uint32_t *>(dSm + o) = pack_bf16x2(ds[0], ds[1]);
            }
        }
    }
    row_part(rv[0], rv[1], sm.rr);
    /* column sums: over the 8 row groups of the warp (lanes g = 0..7), then the 4 row warps */
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            float x = cv[nt][e];
            x += __shfl_xor_sync(0xffffffffu, x, 4);
            x += __shfl_xor_sync(0xffffffffu, x, 8);
            x += __shfl_xor_sync(0xffffffffu, x, 16);
            if ((tid & 31) < 4) sm.cr[(tid >> 5) & 3][c0 + 8 * nt + e] = x;
        }
    __syncthreads();
    if (tid < TL) {
        const int i = i0 + tid, s = s0 + tid;
        if (i < n) rowp[(c.tok0 + i) * g.NTP + st] = sm.rr[0][tid] + sm.rr[1][tid];
        if (s < n) colp[(c.tok0 + s) * g.NTP + it] = ((sm.cr[0][tid] + sm.cr[1][tid]) + sm.cr[2][tid]) + sm.cr[3][tid];
    }
}

struct BwdDqSm {
    TcSmem<1, 32> s;
    float al[TL], dd[TL], iv[TL];
    float rr[2][TL];
};

__global__ void __launch_bounds__(TNT, 2)
k_tc_bwd_dq(Geo g, const int *chunks, const int *flag, const float *proj, const float *dh, const float *Cs,
            const float *ns, const float *alpha, const float *inv, const float *dden, const uint16_t *dSm,
            float *alpart, float *dproj) {
    const int per = g.NTP * g.NTK;
    const int ci = blockIdx.x / per, it = blockIdx.x % per / g.NTK, jt = blockIdx.x % g.NTK;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int i0 = it * TL, j0 = jt * TL, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (i0 >= n) return;
    BwdDqSm &sm = *reinterpret_cast<BwdDqSm *>(tc_smem());
    const int tid = threadIdx.x;
    const long ldp = g.ldp, ldh = (long)NH * dv;
    const float sc = g.scale;
    if (tid < TL) {
        const int i = i0 + tid;
        sm.al[tid] = i < n ? alpha[c.tok0 + i] : 0.f;
        sm.dd[tid] = i < n ? dden[c.tok0 + i] : 0.f;
        sm.iv[tid] = i < n ? inv[c.tok0 + i] : 0.f;
    }
    const int r0 = frag_r0<1>(), c0 = frag_c0<1>();
    float acc[4][4] = {}, part[2] = {0.f, 0.f}, dummy = 0.f;
    const float *q = proj + (c.row0 + i0) * ldp + (size_t)c.h * dk + j0;
    if (!(c.fl & F_ZERO)) { /* α (dnum C_prevᵀ + dden n_prev) */
        const float *d = dh + (c.row0 + i0) * ldh + (size_t)c.h * dv;
        const float *C = Cs + (c.cb * dk + j0) * dv, *np = ns + c.cb * dk + j0, *siv = sm.iv;
        auto fd = [=](int i, int e) { return i0 + i < n ? d[(size_t)i * ldh + e] * siv[i] : 0.f; };
        auto fC = [=](int e, int j) { return j0 + j < dk ? C[(size_t)j * dv + e] : 0.f; };
        gemm_tc<1, 32, true, true>(acc, 0, dv, fd, fC, false, NoX(), dummy, sm.s);
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int il = r0 + 8 * hh;
            const float a = sm.al[il], ddi = sm.dd[il];
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int jl = c0 + 8 * nt + e;
                    const bool ok = i0 + il < n && j0 + jl < dk;
                    const float v = a * (acc[nt][2 * hh + e] + ddi * (j0 + jl < dk ? np[jl] : 0.f));
                    acc[nt][2 * hh + e] = v;
                    const float qv = ok ? q[(size_t)il * ldp + jl] * sc : 0.f;
                    part[hh] = fmaf(qv, v, part[hh]);
                }
        }
    }
    row_part(part[0], part[1], sm.rr);
    __syncthreads();
    if (tid < TL && i0 + tid < n) alpart[(c.tok0 + i0 + tid) * g.NTK + jt] = sm.rr[0][tid] + sm.rr[1][tid];
    /* + dS K */
    const float *k = proj + c.row0 * ldp + (size_t)(NH + c.h) * dk + j0;
    const uint16_t *S = dSm + (c.tok0 + i0) * g.Lp;
    const int Lp = g.Lp;
    auto fS = [=](int i, int s) { return i0 + i < n ? bf_ld(S + (size_t)i * Lp + s) : 0.f; };
    auto fk = [=](int s, int j) { return j0 + j < dk ? k[(size_t)s * ldp + j] : 0.f; };
    gemm_tc<1, 32, true, false>(acc, 0, min(n, i0 + TL), fS, fk, false, NoX(), dummy, sm.s);
    float *dq = dproj + (c.row0 + i0) * ldp + (size_t)c.h * dk + j0;
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        const int il = r0 + 8 * hh;
        if (i0 + il >= n) continue;
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int jl = c0 + 8 * nt + e;
                if (j0 + jl < dk) dq[(size_t)il * ldp + jl] = acc[nt][2 * hh + e] * sc;
            }
    }
}

struct BwdDkSm {
    TcSmem<1, 32> s;
    float w[TL];
    float rr[2][TL];
};

__global__ void __launch_bounds__(TNT, 2)
k_tc_bwd_dk(Geo g, const int *chunks, const int *flag, const float *proj, const uint16_t *dCe, const float *dne,
            const float *w, const uint16_t *dSm, float *wpart, float *dproj) {
    const int per = g.NTP * g.NTK;
    const int ci = blockIdx.x / per, st = blockIdx.x % per / g.NTK, jt = blockIdx.x % g.NTK;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int s0 = st * TL, j0 = jt * TL, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (s0 >= n) return;
    BwdDkSm &sm = *reinterpret_cast<BwdDkSm *>(tc_smem());
    const int tid = threadIdx.x;
    const long ldp = g.ldp;
    const float sc = g.scale;
    if (tid < TL) sm.w[tid] = s0 + tid < n ? w[c.tok0 + s0 + tid] : 0.f;
    const int r0 = frag_r0<1>(), c0 = frag_c0<1>();
    float acc[4][4] = {}, part[2] = {0.f, 0.f}, dummy = 0.f;
    const bool carry = c.fl & F_CARRY;
    const float *k = proj + (c.row0 + s0) * ldp + (size_t)(NH + c.h) * dk + j0;
    if (carry) { /* w (V dCᵀ + dn) */
        const float *v = proj + (c.row0 + s0) * ldp + (size_t)2 * NH * dk + (size_t)c.h * dv;
        const uint16_t *D = dCe + (c.cb * dk + j0) * dv;
        const float *dn = dne + c.cb * dk + j0;
        auto fv = [=](int s, int e) { return s0 + s < n ? v[(size_t)s * ldp + e] : 0.f; };
        auto fD = [=](int e, int j) { return j0 + j < dk ? bf_ld(D + (size_t)j * dv + e) : 0.f; };
        gemm_tc<1, 32, true, true>(acc, 0, dv, fv, fD, false, NoX(), dummy, sm.s);
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int sl = r0 + 8 * hh;
            const float ws = sm.w[sl];
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int jl = c0 + 8 * nt + e;
                    const bool ok = s0 + sl < n && j0 + jl < dk;
                    const float t = acc[nt][2 * hh + e] + (j0 + jl < dk ? dn[jl] : 0.f);
                    const float kv = ok ? k[(size_t)sl * ldp + jl] : 0.f;
                    part[hh] = fmaf(kv, t, part[hh]);
                    acc[nt][2 * hh + e] = ws * t;
                }
        }
        row_part(part[0], part[1], sm.rr);
        __syncthreads();
        if (tid < TL && s0 + tid < n) wpart[(c.tok0 + s0 + tid) * g.NTK + jt] = sm.rr[0][tid] + sm.rr[1][tid];
    }
    /* + dSᵀ Q̃ over the queries i >= s0 */
    const float *q = proj + c.row0 * ldp + (size_t)c.h * dk + j0;
    const uint16_t *S = dSm + c.tok0 * g.Lp + s0;
    const int Lp = g.Lp;
    auto fS = [=](int s, int i) { return s0 + s < n ? bf_ld(S + (size_t)i * Lp + s) : 0.f; };
    auto fq = [=](int i, int j) { return j0 + j < dk ? q[(size_t)i * ldp + j] * sc : 0.f; };
    gemm_tc<1, 32, false, false>(acc, s0, n, fS, fq, false, NoX(), dummy, sm.s);
    float *dkp = dproj + (c.row0 + s0) * ldp + (size_t)(NH + c.h) * dk + j0;
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        const int sl = r0 + 8 * hh;
        if (s0 + sl >= n) continue;
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int jl = c0 + 8 * nt + e;
                if (j0 + jl < dk) dkp[(size_t)sl * ldp + jl] = acc[nt][2 * hh + e];
            }
    }
}

struct BwdDvSm {
    TcSmem<NBV, 32> s;
    float w[TL];
};

__global__ void __launch_bounds__(TNT, 2)
k_tc_bwd_dv(Geo g, const int *chunks, const int *flag, const float *proj, const float *dh, const uint16_t *dCe,
            const float *w, const float *inv, const uint16_t *Pm, float *dproj) {
    const int nvo = (g.dv + VT - 1) / VT, per = g.NTP * nvo;
    const int ci = blockIdx.x / per, st = blockIdx.x % per / nvo, et = blockIdx.x % nvo;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int s0 = st * TL, e0 = et * VT, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (s0 >= n) return;
    BwdDvSm &sm = *reinterpret_cast<BwdDvSm *>(tc_smem());
    const int tid = threadIdx.x;
    const long ldp = g.ldp, ldh = (long)NH * dv;
    if (tid < TL) sm.w[tid] = s0 + tid < n ? w[c.tok0 + s0 + tid] : 0.f;
    const int r0 = frag_r0<NBV>(), c0 = frag_c0<NBV>();
    float acc[4 * NBV][4] = {}, dummy = 0.f;
    if (c.fl & F_CARRY) { /* w K dC */
        const float *k = proj + (c.row0 + s0) * ldp + (size_t)(NH + c.h) * dk;
        const uint16_t *D = dCe + c.cb * dk * dv + e0;
        auto fk = [=](int s, int j) { return s0 + s < n ? k[(size_t)s * ldp + j] : 0.f; };
        auto fD = [=](int j, int e) { return e0 + e < dv ? bf_ld(D + (size_t)j * dv + e) : 0.f; };
        gemm_tc<NBV, 32, true, false>(acc, 0, dk, fk, fD, false, NoX(), dummy, sm.s);
        const float w0 = sm.w[r0], w1 = sm.w[r0 + 8];
#pragma unroll
        for (int nt = 0; nt < 4 * NBV; nt++) {
            acc[nt][0] *= w0, acc[nt][1] *= w0;
            acc[nt][2] *= w1, acc[nt][3] *= w1;
        }
    }
    /* + Pᵀ dnum over the queries i >= s0 */
    const float *d = dh + c.row0 * ldh + (size_t)c.h * dv + e0;
    const uint16_t *P = Pm + c.tok0 * g.Lp + s0;
    const float *iv = inv + c.tok0;
    const int Lp = g.Lp;
    auto fP = [=](int s, int i) { return s0 + s < n ? bf_ld(P + (size_t)i * Lp + s) : 0.f; };
    auto fd = [=](int i, int e) { return e0 + e < dv ? d[(size_t)i * ldh + e] * iv[i] : 0.f; };
    gemm_tc<NBV, 32, false, false>(acc, s0, n, fP, fd, false, NoX(), dummy, sm.s);
    float *dvp = dproj + (c.row0 + s0) * ldp + (size_t)2 * NH * dk + (size_t)c.h * dv + e0;
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        const int sl = r0 + 8 * hh;
        if (s0 + sl >= n) continue;
#pragma unroll
        for (int nt = 0; nt < 4 * NBV; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int el = c0 + 8 * nt + e;
                if (e0 + el < dv) dvp[(size_t)sl * ldp + el] = acc[nt][2 * hh + e];
            }
    }
}

static_assert(sizeof(ScanSm) <= SMEM_MAX && sizeof(BwdScanSm) <= SMEM_MAX && sizeof(FwdOutSm) <= SMEM_MAX &&
                  sizeof(BwdAttSm) <= SMEM_MAX && sizeof(BwdDqSm) <= SMEM_MAX && sizeof(BwdDkSm) <= SMEM_MAX &&
                  sizeof(BwdDvSm) <= SMEM_MAX,
              "dynamic shared memory above the 48 KiB default");

/* ------------------------------------------------------------------ launchers */

struct TcFwdScr {
    float *bcum, *w, *alpha, *m, *Cs, *ns;
    int *cid, *arg;
    ChunkScr cs;
};

static void carve_tc_fwd(Arena &a, const Geo &g, bool infer, TcFwdScr &s) {
    const size_t BH = (size_t)g.B * g.NH, nt = BH * g.T, nc = BH * g.MC;
    s.bcum = a.take<float>(nt), s.w = a.take<float>(nt), s.alpha = a.take<float>(nt);
    s.cid = a.take<int>(nt);
    carve_chunks(a, nc, s.cs);
    s.m = infer ? a.take<float>(nt) : nullptr;
    s.arg = infer ? a.take<int>(nt) : nullptr;
    s.Cs = infer ? a.take<float>(nc * g.dk * g.dv) : nullptr;
    s.ns = infer ? a.take<float>(nc * g.dk) : nullptr;
}

struct TcBwdScr {
    float *bcum, *w, *alpha, *inv, *dden, *dm0, *alpart, *wpart, *rowp, *colp, *pbeta, *dne;
    uint16_t *dCe, *P, *dS;
    int *cid;
    ChunkScr cs;
    FinScr f;
};

static void carve_tc_bwd(Arena &a, const Geo &g, TcBwdScr &s) {
    const size_t BH = (size_t)g.B * g.NH, nt = BH * g.T, nc = BH * g.MC;
    s.bcum = a.take<float>(nt), s.w = a.take<float>(nt), s.alpha = a.take<float>(nt), s.inv = a.take<float>(nt);
    s.dden = a.take<float>(nt), s.dm0 = a.take<float>(nt);
    s.cid = a.take<int>(nt);
    s.alpart = a.take<float>(nt * g.NTK), s.wpart = a.take<float>(nt * g.NTK);
    s.rowp = a.take<float>(nt * g.NTP), s.colp = a.take<float>(nt * g.NTP);
    carve_chunks(a, nc, s.cs);
    s.pbeta = a.take<float>(nc * g.NTK * g.NTV);
    s.dCe = a.take<uint16_t>(nc * g.dk * g.dv), s.dne = a.take<float>(nc * g.dk);
    s.P = a.take<uint16_t>(nt * g.Lp), s.dS = a.take<uint16_t>(nt * g.Lp);
    s.f.dlal = a.take<float>(nt), s.f.rsum = a.take<float>(nt), s.f.csum = a.take<float>(nt);
    s.f.dlw = a.take<float>(nt), s.f.dmt = a.take<float>(nt), s.f.R = a.take<float>(nt);
    s.f.base = a.take<float>(nc), s.f.sumw = a.take<float>(nc), s.f.dlb = a.take<float>(nc);
    s.f.dmn = a.take<float>(nc), s.f.dg = a.take<float>(nc);
}

/* The tensor-core path takes dk, dv multiples of 16. */
static bool tc_dims(const SwaxMlstmCall *c) { return c->dk % 16 == 0 && c->dv % 16 == 0; }

} // namespace

extern "C" void swax_cuda_mlstm_cell_fwd_tc(SwaxMlstmCall *c) {
    if (!tc_dims(c)) {
        swax_cuda_mlstm_cell_fwd(c);
        return;
    }
    Geo g;
    if (!make_geo(c, &g)) return;
    const bool save = c->m_t != NULL;
    if (save) SWAX_CUDA_REQUIRE(c->den_t && c->arg_t && c->Cs && c->ns && c->ms && c->arg_end);
    TcFwdScr s;
    Arena a = {nullptr, 0};
    carve_tc_fwd(a, g, !save, s);
    a = {static_cast<char *>(swax_cuda_scratch(SWAX_SCRATCH_MLSTM, a.off)), 0};
    carve_tc_fwd(a, g, !save, s);
    float *Cs = save ? c->Cs : s.Cs, *ns = save ? c->ns : s.ns, *m = save ? c->m_t : s.m;
    int *arg = save ? c->arg_t : s.arg;
    const unsigned BH = (unsigned)(g.B * g.NH), nvo = (unsigned)swax_ceil_div((size_t)g.dv, VT);
    cudaStream_t st = swax_cuda_stream();
    k_tc_gates<<<dim3(g.MC, BH), GATE_THREADS, 0, st>>>(g, c->chunks, c->doc_start, c->ig, c->lf, s.bcum, s.cid,
                                                         s.cs);
    SWAX_CUDA_LAUNCHED();
    k_tc_chain<<<BH, CHAIN_THREADS, 0, st>>>(g, c->chunks, s.cs, save ? c->ms : nullptr, save ? c->arg_end : nullptr);
    SWAX_CUDA_LAUNCHED();
    k_tc_stab<<<dim3(swax_ceil_div((size_t)g.T, STAB_THREADS), BH), STAB_THREADS, 0, st>>>(
        g, c->chunks, s.cid, s.cs, c->ig, s.bcum, m, arg, s.alpha, s.w);
    SWAX_CUDA_LAUNCHED();
    k_tc_fwd_scan<<<dim3(g.NTK * g.NTV, BH), TNT, sizeof(ScanSm), st>>>(g, c->chunks, s.cs.flag, s.cs.beta, c->proj,
                                                                        s.w, Cs, ns);
    SWAX_CUDA_LAUNCHED();
    k_tc_fwd_out<<<dim3(g.MC * g.NTP * nvo, BH), TNT, sizeof(FwdOutSm), st>>>(
        g, c->chunks, s.cs.flag, c->proj, c->ig, s.bcum, m, s.alpha, Cs, ns, c->h, c->den_t);
    SWAX_CUDA_LAUNCHED();
}

extern "C" void swax_cuda_mlstm_cell_bwd_tc(SwaxMlstmCall *c) {
    if (!tc_dims(c)) {
        swax_cuda_mlstm_cell_bwd(c);
        return;
    }
    Geo g;
    if (!make_geo(c, &g)) return;
    SWAX_CUDA_REQUIRE(c->m_t && c->den_t && c->arg_t && c->Cs && c->ns);
    SWAX_CUDA_REQUIRE(c->dh && c->dproj && c->dig && c->dlf);
    TcBwdScr s;
    Arena a = {nullptr, 0};
    carve_tc_bwd(a, g, s);
    a = {static_cast<char *>(swax_cuda_scratch(SWAX_SCRATCH_MLSTM, a.off)), 0};
    carve_tc_bwd(a, g, s);
    const unsigned BH = (unsigned)(g.B * g.NH), nvo = (unsigned)swax_ceil_div((size_t)g.dv, VT);
    cudaStream_t st = swax_cuda_stream();
    k_tc_gates<<<dim3(g.MC, BH), GATE_THREADS, 0, st>>>(g, c->chunks, c->doc_start, c->ig, c->lf, s.bcum, s.cid,
                                                         s.cs);
    SWAX_CUDA_LAUNCHED();
    k_tc_chain<<<BH, CHAIN_THREADS, 0, st>>>(g, c->chunks, s.cs, nullptr, nullptr);
    SWAX_CUDA_LAUNCHED();
    k_tc_bwd_pre<<<dim3(swax_ceil_div((size_t)g.T, PRE_THREADS / 32), BH), PRE_THREADS, 0, st>>>(
        g, c->h, c->dh, c->m_t, c->den_t, s.bcum, s.cid, s.cs, c->ig, s.alpha, s.inv, s.dden, s.dm0, s.w);
    SWAX_CUDA_LAUNCHED();
    k_tc_bwd_scan<<<dim3(g.NTK * g.NTV, BH), TNT, sizeof(BwdScanSm), st>>>(
        g, c->chunks, s.cs.flag, s.cs.beta, c->proj, c->dh, s.alpha, s.inv, s.dden, c->Cs, c->ns, s.dCe, s.dne,
        s.pbeta);
    SWAX_CUDA_LAUNCHED();
    k_tc_bwd_att<<<dim3(g.MC * g.NTP * g.NTP, BH), TNT, sizeof(BwdAttSm), st>>>(
        g, c->chunks, s.cs.flag, c->proj, c->dh, c->ig, s.bcum, c->m_t, s.inv, s.dden, s.P, s.dS, s.rowp, s.colp);
    SWAX_CUDA_LAUNCHED();
    k_tc_bwd_dq<<<dim3(g.MC * g.NTP * g.NTK, BH), TNT, sizeof(BwdDqSm), st>>>(
        g, c->chunks, s.cs.flag, c->proj, c->dh, c->Cs, c->ns, s.alpha, s.inv, s.dden, s.dS, s.alpart, c->dproj);
    SWAX_CUDA_LAUNCHED();
    k_tc_bwd_dk<<<dim3(g.MC * g.NTP * g.NTK, BH), TNT, sizeof(BwdDkSm), st>>>(
        g, c->chunks, s.cs.flag, c->proj, s.dCe, s.dne, s.w, s.dS, s.wpart, c->dproj);
    SWAX_CUDA_LAUNCHED();
    k_tc_bwd_dv<<<dim3(g.MC * g.NTP * nvo, BH), TNT, sizeof(BwdDvSm), st>>>(g, c->chunks, s.cs.flag, c->proj, c->dh,
                                                                           s.dCe, s.w, s.inv, s.P, c->dproj);
    SWAX_CUDA_LAUNCHED();
    k_tc_fin_chunk<<<dim3(g.MC, BH), FIN_CHUNK_THREADS, 0, st>>>(g, c->chunks, s.cs, s.w, s.dm0, s.alpart, s.rowp,
                                                                  s.colp, s.wpart, s.pbeta, c->arg_t, s.f);
    SWAX_CUDA_LAUNCHED();
    k_tc_fin_chain<<<BH, CHAIN_THREADS, 0, st>>>(g, c->chunks, s.cs, s.f);
    SWAX_CUDA_LAUNCHED();
    k_tc_fin_tok<<<dim3(g.MC, BH), FIN_CHUNK_THREADS, 0, st>>>(g, c->chunks, s.cs, s.f, c->dig, c->dlf);
    SWAX_CUDA_LAUNCHED();
}
