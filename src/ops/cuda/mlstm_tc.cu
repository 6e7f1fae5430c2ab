/* mlstm_tc.cu — the mLSTM cell (SPEC §2) with its matrix products on tensor
 * cores, for the "cuda" table: swax_cuda_mlstm_cell_fwd_tc / _bwd_tc. The same
 * function, the same saved buffers and layouts (m_t, den_t, arg_t, Cs, ns, ms,
 * arg_end) and the same backward contract as mlstm.cu (its header has the
 * notation: b, m, arg, α, D, P, β, w, the ZERO / CARRY chunk flags), so the
 * two halves can even be mixed. Head sizes that are not multiples of 16 go to
 * mlstm.cu's fp32 kernels; otherwise any T, any L >= 1, dk <= 256, dv <= 512.
 *
 * Precision. Every matrix product is mma.sync.m16n8k16 bf16 × bf16 with fp32
 * accumulation: its operands (q̃ = q/√dk, k, v, w∘k, α∘q̃, P, dS, the state
 * C_prev, dnum = dh/N, dC) are rounded to bf16 (nearest-even), once each (in
 * the bf16 copies below, or when staged in shared memory); accumulators and
 * everything scalar are fp32. The scalar
 * path (cumsums, stabilisers and argmaxes, α, β, w, the normaliser, the
 * scalar gradients) uses mlstm.cu's expressions in the same order, so b,
 * m_t, arg_t, ms, arg_end, β, w, α are bit-identical to mlstm.cu and to the
 * CPU. Cs, ns and den are fp32; dC, P and dS travel between kernels as bf16
 * (they are only ever operands). Two choices keep the bf16 error from being
 * amplified where one key dominates a row (h ≈ v_s*, so the backward's dP =
 * dden + dnum·v_s cancels): den sums the bf16-rounded P that multiplies V
 * (h stays an exact weighted mean of the rounded v), and dden is formed from
 * the same bf16 dnum that multiplies V (tc_bwd_pre). Measured on the host
 * emulator against the fp32 CPU: 2e-3 to 9e-3 of each tensor's max on
 * well-conditioned inputs (the test allows 1e-2, or 4x the CPU's own
 * sensitivity to bf16-rounded inputs on ill-conditioned ones).
 *
 * Tensor-core tile (gemm_tc). A block of 256 threads (8 warps) owns a 64 ×
 * 64·NB output tile (NB = 1: NB = 2 spills); warp w owns rows 16·(w%4) .. +16
 * and columns 32·NB·(w/4) .. +32·NB, 4·NB m16n8 accumulator fragments (16·NB
 * fp32 registers per thread). K runs in slices of 32: each thread loads its
 * share of the next slice from global memory into registers while the warps
 * run mma.sync on the current one, then stores it as bf16 pairs into the
 * other shared buffer (double-buffered, one barrier per slice). The loads of a
 * slice must issue back to back: the operand sources (BfRow, BfCol, F32Row,
 * F32Col, SmemP) only load, from clamped indices (always inside the buffer),
 * and the masks (rows and k outside the valid range are zero) and the fp32 ->
 * bf16 rounding happen when the slice is stored. (The first version computed
 * each element while loading it, e.g. q·sc or dh·inv, behind a bounds branch;
 * the compiler then issued the slice's loads one after another, each waiting
 * for the previous one, and the kernels ran at ~3.5 µs per slice: 4.2 ms at
 * the benchmark shape. mlstm.cu's fp32 gemm() has the same pattern.) To make
 * every operand a plain load, the values the products round are made once per
 * pass as bf16 copies, [B·NH][T][d]: q̃ = q·(1/√dk), k, v and w∘k (forward,
 * tc_prep_fwd), q̃, k, v, α q̃ and dnum = dh/N (backward, tc_bwd_pre); the
 * same fp32 expressions rounded once, so the results are bit-identical to
 * rounding them in the products. Shared layout: A as [row][k], B as [col][k]
 * (k-contiguous, "row.col"), rows of KS/2 + 4 words so that the fragment
 * loads (lane 4g + t reads word g·stride + t) hit 32 distinct banks.
 * Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point
 * type"; g = lane>>2, t = lane&3; the lower-indexed element in the low half):
 *   A 16×16: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
 *   B 16×8:  b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
 *   C 16×8:  c0, c1 = C[g][2t], C[g][2t+1]; c2, c3 = C[g+8][2t], C[g+8][2t+1]
 * mma.sync rather than wmma: the accumulator layout is documented, so the
 * epilogues (P = S ⊙ D, dS, row and column sums) work on the fragments in
 * registers; 32-bit shared loads rather than ldmatrix: one documented layout
 * is less to get wrong. A host emulator (mma.sync rebuilt from these layouts,
 * bf16 rounding, one fiber per thread, barriers and shuffles, NaN-poisoned
 * shared memory and scratch, random block and thread order) checked the
 * kernels against the CPU, and reproduced the H200's error figures.
 *
 * Launches. Scalars first (mlstm_common.cuh's k_scalars / k_bwd_fin walk each
 * chunk's tokens through global memory one dependent load at a time from one
 * block per (b, h); here the same sequential sums run from shared memory):
 *   tc_gates     block per chunk: b = cumsum lf, g, max_s (g - b_s + ig_s), its argmax, ZERO
 *   tc_chain     block per (b, h): the m chain (m_prev, m', arg_end, β, CARRY), staged in shared memory
 * Forward (6 launches):
 *   tc_stab      thread per token: m_i, arg_i (the CPU's stab_i loop), α_i, w_i
 *   tc_prep_fwd  warp per token: the bf16 copies q̃, k, v, w∘k
 *   tc_fwd_scan  block per (b, h, 64-dk tile, 64-dv tile), sequential over chunks: C (fp32
 *                fragments in registers) stored to Cs at each chunk start, then (CARRY)
 *                C <- β C + (w∘K)ᵀ V over the chunk; n rides along as the extra column
 *                (SWAX_MLSTM_SCAN=pf: tc_fwd_scan_pf, the next chunk's first slice loading
 *                under this chunk's products; the same bits)
 *   tc_fwd_out   block per (b, h, chunk, 64-query tile, 64-dv tile): α Q̃ C_prev (+ α n·q̃ as
 *                the extra column), then per key tile S = Q̃ Kᵀ, P = S ⊙ D (masked), P as bf16 in
 *                shared memory, += P V; h = acc / (max(|den|, e^-m) + eps). mlstm.cu's fwd_att
 *                and fwd_out fused: S is recomputed per dv tile instead of a P round trip.
 * Backward (10 launches): tc_gates, tc_chain, tc_bwd_pre (warp per token: 1/N, the
 *   normaliser branch, dden, dm0, α, w, the bf16 copies), tc_bwd_scan (dC into each
 *   chunk end, stored as bf16, and the <dC, C_prev> + <dn, n_prev> partials; with
 *   SWAX_MLSTM_SCAN=pf tc_bwd_scan_pf, loads across chunk starts), tc_bwd_att
 *   (S, dP = dden + dnum Vᵀ, P and dS to scratch as bf16, row and column sums of dP ⊙ P),
 *   tc_bwd_dq (α (dnum C_prevᵀ + dden n_prev) + dS K), tc_bwd_dk (w (V dCᵀ + dn) +
 *   dSᵀ Q̃), tc_bwd_dv (w K dC + Pᵀ dnum), then tc_fin_chunk / tc_fin_chain /
 *   tc_fin_tok (mlstm.cu's bwd_fin steps 0-1, 2, 3-4: the scalar gradients from the
 *   same per-tile partials: alpart, wpart per 64-dk tile; rowp, colp per 64-token tile;
 *   pbeta per 64×64 state tile).
 * No atomics; every reduction in a fixed order (reruns give the same bits).
 * Registers (sm_90a): the scans and fwd_out 128 (256 threads × 2 blocks per
 * SM), att, dq, dk, dv 80 (3 blocks per SM), no spills. Dynamic shared memory:
 * 20.7 KB (scans, dv), 21.5-23.8 KB (att, dq, dk), 32 KB (fwd_out).
 *
 * Scratch (SWAX_SCRATCH_MLSTM, shared with mlstm.cu: the two never run at
 * once on the stream): forward 3·BH·T floats + BH·T ints + 6·BH·MC + the
 * copies (BH·T·(3·dk + dv) bf16), plus m, arg and the states in inference;
 * backward as mlstm.cu's with dC (BH·MC·dk·dv), P and dS (BH·T·Lp each) in
 * bf16, plus the copies (BH·T·(3·dk + 2·dv) bf16).
 *
 * Cost at the benchmark shape (B 8, NH 4, T 4096, dk 128, dv 256: BHT =
 * 131,072 token-heads). Tensor-core FLOPs as tiled (masked diagonal tiles and
 * S recomputed for each of the 4 dv tiles included); DRAM bytes with every
 * kernel reading each of its inputs once (q, k, v, h, dh, dproj and Cs fp32 —
 * Cs is 268 MB at L 64, 134 MB at L 128, written once and read three times;
 * the bf16 copies written once; re-reads of a tile by neighbouring blocks
 * from L2):
 *   L 64:  fwd 30 GFLOP, 1.35 GB; bwd 49 GFLOP, 2.81 GB
 *   L 128: fwd 36 GFLOP, 1.08 GB; bwd 57 GFLOP, 2.50 GB
 * Floors for fwd + bwd (FLOPs / 600 TFLOP/s; bytes / 3.5 TB/s):
 *   L 64:  0.13 ms compute, 1.19 ms memory;  L 128: 0.16 ms compute, 1.02 ms memory.
 * Predicted: ≈ 1.3-1.5 ms at L 128 and ≈ 1.5-1.7 ms at L 64 (the copy passes
 * at ~80% of DRAM bandwidth; the product kernels one memory round trip per
 * slice, ~0.5-0.8 µs, with 2-3 blocks per SM). Measured on the H200 before the
 * load fix: 4.24 ms (L 64), 4.35 ms (L 128); fp32 kernels 5.67 ms; target 2.2.
 * Recommended chunk size: L = 128 (Cs and dC, written or read five times,
 * halve; the intra-chunk work grows but is cheap on tensor cores). L = 256
 * moves about as many bytes as 128 (Cs halves again, P and dS double) and
 * lengthens the per-token stabiliser loops. */
#include "ops/cuda/mlstm_common.cuh"
/* SWAX_KERNEL_PROFILE=1: every launch below timed (kprof.cuh) */
#define KPROF_TITLE "mLSTM kernel"
#include "ops/cuda/kprof.cuh"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
__device__ __forceinline__ int frag_r0() { return ((threadIdx.x >> 5) & 3) * 16 + ((threadIdx.x & 31) >> 2); }
template <int NB> __device__ __forceinline__ int frag_c0() { return (threadIdx.x >> 7) * 32 * NB + 2 * (threadIdx.x & 3); }

/* Operand sources of gemm_tc. Each has
 *   kc                       true: consecutive k of one row are adjacent in memory
 *   Raw load(r, k) const     elements (r, k), (r, k + 1) of the operand (r: A's row or B's column):
 *                            loads only, from clamped indices (always inside the buffer), nothing
 *                            computed from the loaded data, so a slice's loads issue back to back
 *   uint32_t word(Raw) const the pair as bf16x2 (element k in the low half)
 * gemm_tc applies validity (r < rows, k < kend) when it stores the word. */
struct BfRow { /* bf16, element (r, k) at p[r·ld + k]: one 32-bit load (ld and k even) */
    const uint16_t *p;
    long ld;
    int rmax;
    static constexpr bool kc = true;
    using Raw = uint32_t;
    __device__ __forceinline__ Raw load(int r, int k) const {
        return *reinterpret_cast<const uint32_t *>(p + (size_t)min(r, rmax - 1) * ld + k);
    }
    __device__ __forceinline__ uint32_t word(Raw w) const { return w; }
};
struct BfCol { /* bf16, element (r, k) at p[k·ld + r]: two 16-bit loads */
    const uint16_t *p;
    long ld;
    int rmax, kmax;
    static constexpr bool kc = false;
    struct Raw {
        uint32_t a, b;
    };
    __device__ __forceinline__ Raw load(int r, int k) const {
        const uint16_t *q = p + min(r, rmax - 1);
        return {q[(size_t)min(k, kmax - 1) * ld], q[(size_t)min(k + 1, kmax - 1) * ld]};
    }
    __device__ __forceinline__ uint32_t word(Raw w) const { return w.a | (w.b << 16); }
};
struct F32Row { /* fp32, element (r, k) at p[r·ld + k] (k + 1 inside the row: its length is even) */
    const float *p;
    long ld;
    int rmax;
    static constexpr bool kc = true;
    struct Raw {
        float a, b;
    };
    __device__ __forceinline__ Raw load(int r, int k) const {
        const float *q = p + (size_t)min(r, rmax - 1) * ld + k;
        return {q[0], q[1]};
    }
    __device__ __forceinline__ uint32_t word(Raw w) const { return pack_bf16x2(w.a, w.b); }
};
struct F32Col { /* fp32, element (r, k) at p[k·ld + r] */
    const float *p;
    long ld;
    int rmax, kmax;
    static constexpr bool kc = false;
    struct Raw {
        float a, b;
    };
    __device__ __forceinline__ Raw load(int r, int k) const {
        const float *q = p + min(r, rmax - 1);
        return {q[(size_t)min(k, kmax - 1) * ld], q[(size_t)min(k + 1, kmax - 1) * ld]};
    }
    __device__ __forceinline__ uint32_t word(Raw w) const { return pack_bf16x2(w.a, w.b); }
};
constexpr int PW = TL / 2 + 4; /* words per row of a P tile in shared memory */
struct SmemP { /* a bf16 P tile in shared memory, [r][(k - k0) / 2] */
    const uint32_t (*P)[PW];
    int k0;
    static constexpr bool kc = true;
    using Raw = uint32_t;
    __device__ __forceinline__ Raw load(int r, int k) const { return P[r][(k - k0) >> 1]; }
    __device__ __forceinline__ uint32_t word(Raw w) const { return w; }
};
/* Extra-column vectors: load(k) from a clamped index. */
struct XVec {
    const float *p;
    int kmax;
    __device__ __forceinline__ float load(int k) const { return p[min(k, kmax - 1)]; }
};
struct XOne {
    __device__ __forceinline__ float load(int) const { return 1.f; }
};
struct XNone {
    __device__ __forceinline__ float load(int) const { return 0.f; }
};

/* One k slice of gemm_tc, in three steps: fetch (this thread's share of the
 * slice from global memory into registers: loads only, clamped indices, so
 * they issue back to back), put (the registers, masked and rounded to bf16,
 * into one of the two shared stages) and mma (the block's 64 × 64·NB tile +=
 * the staged slice; with xon, thread tid < 64 also accumulates the extra
 * column xacc += Σ_k bf16(A(tid, k)) x(k)). A slice is k in [k0, k0 + KS)
 * of the range [kbeg, kend) (kend: validity; klast = last(kend): the last
 * pair that starts inside it, which clamps the loads). gemm_tc and the prefetching forward scan
 * run the same three steps in the same order per slice: the same bits. */
template <int NB, int KS, class SA, class SB, class SX> struct TcSlice {
    static constexpr int KP = KS / 2;        /* k pairs per slice */
    static constexpr int NC = TL * NB;       /* B columns */
    static constexpr int PA = TL * KP / TNT; /* A pairs per thread */
    static constexpr int PB = NC * KP / TNT; /* B pairs per thread */
    static_assert(PA * TNT == TL * KP && PB * TNT == NC * KP, "slice does not split evenly");
    typename SA::Raw ra[PA];
    typename SB::Raw rb[PB];
    float rx = 0.f;
    /* (row, k pair) of this thread's q-th pair: KC, consecutive threads take consecutive pairs of a row */
    static __device__ __forceinline__ void amap(int q, int &r, int &kp) {
        const unsigned x = threadIdx.x + q * TNT;
        r = SA::kc ? x / KP : x % TL;
        kp = SA::kc ? x % KP : x / TL;
    }
    static __device__ __forceinline__ void bmap(int q, int &c, int &kp) {
        const unsigned x = threadIdx.x + q * TNT;
        c = SB::kc ? x / KP : x % NC;
        kp = SB::kc ? x % KP : x / NC;
    }
    static __device__ __forceinline__ uint32_t kmask(int k, int kend) {
        return (k < kend ? 0xffffu : 0u) | (k + 1 < kend ? 0xffff0000u : 0u);
    }
    /* klast = last(kend) */
    static __device__ __forceinline__ int last(int kend) { return (kend - 1) & ~1; }
    __device__ __forceinline__ void fetch(const SA &sa, const SB &sb, bool xon, const SX &sx, int k0, int kend,
                                          int klast) {
#pragma unroll
        for (int q = 0; q < PA; q++) {
            int r, kp;
            amap(q, r, kp);
            ra[q] = sa.load(r, min(k0 + 2 * kp, klast));
        }
#pragma unroll
        for (int q = 0; q < PB; q++) {
            int c, kp;
            bmap(q, c, kp);
            rb[q] = sb.load(c, min(k0 + 2 * kp, klast));
        }
        if (xon && threadIdx.x < KS) rx = sx.load(min(k0 + (int)threadIdx.x, kend - 1));
    }
    __device__ __forceinline__ void put(TcStage<NB, KS> &s, const SA &sa, int arows, const SB &sb, int bcols, bool xon,
                                        int k0, int kend) const {
#pragma unroll
        for (int q = 0; q < PA; q++) {
            int r, kp;
            amap(q, r, kp);
            s.a[r][kp] = r < arows ? sa.word(ra[q]) & kmask(k0 + 2 * kp, kend) : 0u;
        }
#pragma unroll
        for (int q = 0; q < PB; q++) {
            int c, kp;
            bmap(q, c, kp);
            s.b[c][kp] = c < bcols ? sb.word(rb[q]) & kmask(k0 + 2 * kp, kend) : 0u;
        }
        if (xon && threadIdx.x < KS) s.x[threadIdx.x] = k0 + (int)threadIdx.x < kend ? rx : 0.f;
    }
    static __device__ __forceinline__ void mma(const TcStage<NB, KS> &s, float (&acc)[4 * NB][4], bool xon,
                                               float &xacc) {
        const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
        const int g = lane >> 2, t = lane & 3, wr = warp & 3, wc = warp >> 2;
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
    }
};

/* acc (64 × 64·NB tile) += Σ_{k in [kbeg, kend)} A(r, k) B(k, c) over A rows r
 * < arows and B columns c < bcols (the rest count as zero), operands rounded
 * to bf16, fp32 accumulation. With xon, thread tid < 64 also accumulates the
 * extra column xacc += Σ_k bf16(A(tid, k)) x(k) (x fp32). kbeg even. Starts
 * and ends with a barrier; call it from every thread of the block. Each
 * thread loads its share of the next slice while the warps multiply the
 * current one (double-buffered, one barrier per slice). */
template <int NB, int KS, class SA, class SB, class SX>
__device__ __forceinline__ void gemm_tc(float (&acc)[4 * NB][4], int kbeg, int kend, const SA &sa, int arows,
                                        const SB &sb, int bcols, bool xon, const SX &sx, float &xacc,
                                        TcSmem<NB, KS> &sm) {
    __syncthreads();
    if (kend <= kbeg) return;
    TcSlice<NB, KS, SA, SB, SX> sl;
    const int klast = sl.last(kend);
    sl.fetch(sa, sb, xon, sx, kbeg, kend, klast);
    sl.put(sm.st[0], sa, arows, sb, bcols, xon, kbeg, kend);
    __syncthreads();
    int buf = 0;
    for (int k0 = kbeg; k0 < kend; k0 += KS) {
        const bool more = k0 + KS < kend;
        if (more) sl.fetch(sa, sb, xon, sx, k0 + KS, kend, klast);
        sl.mma(sm.st[buf], acc, xon, xacc);
        if (more) sl.put(sm.st[buf ^ 1], sa, arows, sb, bcols, xon, k0 + KS, kend);
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
        const int r0 = frag_r0();
        red[threadIdx.x >> 7][r0] = v0;
        red[threadIdx.x >> 7][r0 + 8] = v1;
    }
}

/* bf16 operand copies, [B·NH][T][d] (row x = bh·T + t): made once per pass so
 * that the products load pairs of bf16 and compute nothing while loading. The
 * values are exactly the fp32 expressions the products round: q̃ = q/√dk, k,
 * v (both passes), w∘k (forward), α q̃ and dnum = dh/N (backward). */
struct Ops16 {
    uint16_t *qt, *kb, *vb, *wk, *aq, *dn;
};

/* A (tokens, ld) bf16 operand of chunk c as a product operand over its tokens: element (r, s) =
 * x[(c.tok0 + s)·ld + off + r], rows up to ld - off (the scans: off j0 of dk, or e0 of dv) */
__device__ __forceinline__ BfCol chunk_col(const uint16_t *x, const Chunk &c, int off, int ld) {
    return BfCol{x + c.tok0 * ld + off, ld, ld - off, c.n};
}

/* ------------------------------------------------------------------ forward */

/* The scans and the dQ kernel are instantiated for k slices of 32 and of 64 (SWAX_MLSTM_KS: at 64
 * a chunk of 64 tokens is one slice, one memory round trip instead of two; ptxas: no spills in
 * these three at 64, while the other product kernels spill there and keep 32) */
template <int KS> using ScanSm = TcSmem<1, KS>;

/* A forward scan block's state tile: C rows j0.., columns e0.. of a (dk, dv) matrix as fp32
 * fragments (acc), and, in the block of the first dv tile (ncol), n[j0 + tid] in thread tid < 64. */
__device__ __forceinline__ void scan_tile_load(const float *C, const float *n, int j0, int e0, int dk, int dv, bool ncol,
                                               float (&acc)[4][4], float &nacc) {
    const int r0 = frag_r0(), c0 = frag_c0<1>(), tid = threadIdx.x;
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int j = j0 + r0 + 8 * (i >> 1), e = e0 + c0 + 8 * nt + (i & 1);
            acc[nt][i] = j < dk && e < dv ? C[(size_t)j * dv + e] : 0.f;
        }
    if (ncol && tid < TL && j0 + tid < dk) nacc = n[j0 + tid];
}
__device__ __forceinline__ void scan_tile_store(float *C, float *n, int j0, int e0, int dk, int dv, bool ncol,
                                                const float (&acc)[4][4], float nacc) {
    const int r0 = frag_r0(), c0 = frag_c0<1>(), tid = threadIdx.x;
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int j = j0 + r0 + 8 * (i >> 1), e = e0 + c0 + 8 * nt + (i & 1);
            if (j < dk && e < dv) C[(size_t)j * dv + e] = acc[nt][i];
        }
    if (ncol && tid < TL && j0 + tid < dk) n[j0 + tid] = nacc;
}

/* A forward scan's chunk start: the state zeroed at a document start (ZERO), stored as the
 * chunk's C_prev / n_prev, then, when the chunk carries (its return value), scaled by β for the
 * chunk's products to add to. */
__device__ __forceinline__ bool scan_chunk_start(const Chunk &c, const float *beta, float *Cs, float *ns, int j0,
                                                 int e0, int dk, int dv, bool ncol, float (&acc)[4][4], float &nacc) {
    if (c.fl & F_ZERO) {
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[nt][i] = 0.f;
        nacc = 0.f;
    }
    scan_tile_store(Cs + c.cb * dk * dv, ns + c.cb * dk, j0, e0, dk, dv, ncol, acc, nacc);
    if (!(c.fl & F_CARRY)) return false;
    const float be = beta[c.cb];
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
        for (int i = 0; i < 4; i++) acc[nt][i] *= be;
    nacc *= be;
    return true;
}

template <int KS>
__global__ void __launch_bounds__(TNT, 2)
k_tc_fwd_scan(Geo g, const int *chunks, const int *flag, const float *beta, Ops16 o, float *Cs, float *ns) {
    ScanSm<KS> &sm = *reinterpret_cast<ScanSm<KS> *>(tc_smem());
    const int bh = blockIdx.y, jt = blockIdx.x / g.NTV, et = blockIdx.x % g.NTV;
    const int j0 = jt * TL, e0 = et * TL, dk = g.dk, dv = g.dv;
    const bool ncol = et == 0;
    float acc[4][4] = {}, nacc = 0.f;
    const size_t sb = (size_t)bh * dk * dv; /* this (b, h)'s state in C0 / C1 (inference) */
    if (g.C0) scan_tile_load(g.C0 + sb, g.n0 + (size_t)bh * dk, j0, e0, dk, dv, ncol, acc, nacc);
    for (int ci = 0; ci < g.MC; ci++) {
        Chunk c;
        if (!chunk_of(g, chunks, flag, bh, ci, c)) break;
        if (!scan_chunk_start(c, beta, Cs, ns, j0, e0, dk, dv, ncol, acc, nacc)) continue;
        /* A(j, s) = (w∘k)_s[j], B(s, e) = v_s[e] */
        gemm_tc<1, KS>(acc, 0, c.n, chunk_col(o.wk, c, j0, dk), dk - j0, chunk_col(o.vb, c, e0, dv), dv - e0, ncol,
                       XOne(), nacc, sm);
    }
    if (g.C1) /* the state after the last chunk (k_tc_chain set its CARRY) */
        scan_tile_store(g.C1 + sb, g.n1 + (size_t)bh * dk, j0, e0, dk, dv, ncol, acc, nacc);
}

/* k_tc_fwd_scan with the next slice's loads in flight across chunk ends
 * (SWAX_MLSTM_SCAN=pf, opt-in until a GPU run has timed it). k_tc_fwd_scan
 * runs one gemm_tc per chunk, whose first slice is fetched, stored and waited
 * for before any product: one exposed memory round trip per chunk, 64 of them
 * one after another per block at T 4,096 (run 8: 0.33 ms a call, ~5 µs a
 * chunk). Here the chunks' slices form one stream: while the warps multiply a
 * chunk's last slice, the first slice of the next chunk that carries is
 * already loading, and the chunk end's state store and β scaling run under
 * those loads. Per chunk the same steps in the same order (zero, store C and
 * n, β, the slices of TcSlice in k order): the same bits as k_tc_fwd_scan
 * (test_cuda_mlstm_tc compares every output bit for bit). */
template <int KS>
__global__ void __launch_bounds__(TNT, 2)
k_tc_fwd_scan_pf(Geo g, const int *chunks, const int *flag, const float *beta, Ops16 o, float *Cs, float *ns) {
    ScanSm<KS> &sm = *reinterpret_cast<ScanSm<KS> *>(tc_smem());
    const int bh = blockIdx.y, jt = blockIdx.x / g.NTV, et = blockIdx.x % g.NTV;
    const int j0 = jt * TL, e0 = et * TL, dk = g.dk, dv = g.dv;
    const bool ncol = et == 0;
    float acc[4][4] = {}, nacc = 0.f;
    const size_t sb = (size_t)bh * dk * dv; /* this (b, h)'s state in C0 / C1 (inference) */
    if (g.C0) scan_tile_load(g.C0 + sb, g.n0 + (size_t)bh * dk, j0, e0, dk, dv, ncol, acc, nacc);
    /* A(j, s) = (w∘k)_s[j], B(s, e) = v_s[e] of a chunk */
    auto opa = [&](const Chunk &c) { return chunk_col(o.wk, c, j0, dk); };
    auto opb = [&](const Chunk &c) { return chunk_col(o.vb, c, e0, dv); };
    /* the fetch cursor: the slice at fk0 of chunk fc, or none */
    Chunk fc;
    int fk0 = 0;
    bool fon = false;
    auto next_carrying = [&](int from) { /* the first chunk >= from that carries: fc, fk0 = 0 */
        fon = false;
        for (int i = from; i < g.MC; i++) {
            if (!chunk_of(g, chunks, flag, bh, i, fc)) return;
            if (fc.fl & F_CARRY) {
                fk0 = 0, fon = true;
                return;
            }
        }
    };
    TcSlice<1, KS, BfCol, BfCol, XOne> sl;
    next_carrying(0);
    if (fon) sl.fetch(opa(fc), opb(fc), ncol, XOne(), 0, fc.n, sl.last(fc.n));
    int buf = 0;
    for (int ci = 0; ci < g.MC; ci++) {
        Chunk c;
        if (!chunk_of(g, chunks, flag, bh, ci, c)) break;
        if (!scan_chunk_start(c, beta, Cs, ns, j0, e0, dk, dv, ncol, acc, nacc)) continue;
        /* the cursor is at (ci, 0): this chunk is the first carrying one at or after the last */
        const BfCol A = opa(c), Bv = opb(c);
        for (int k0 = 0; k0 < c.n; k0 += KS) { /* the registers hold slice (ci, k0) */
            /* the cursor moves first (put reads only the registers): the chunk table's loads under the
             * stores and the barrier, not between the barrier and the products */
            if (k0 + KS < c.n) fk0 = k0 + KS;
            else next_carrying(ci + 1);
            sl.put(sm.st[buf], A, dk - j0, Bv, dv - e0, ncol, k0, c.n);
            __syncthreads(); /* the stage is complete; every warp is done with the other one */
            if (fon) sl.fetch(opa(fc), opb(fc), ncol, XOne(), fk0, fc.n, sl.last(fc.n)); /* in flight under the products */
            sl.mma(sm.st[buf], acc, ncol, nacc);
            buf ^= 1;
        }
    }
    if (g.C1) /* the state after the last chunk (k_tc_chain set its CARRY) */
        scan_tile_store(g.C1 + sb, g.n1 + (size_t)bh * dk, j0, e0, dk, dv, ncol, acc, nacc);
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
        cs.flag[cx] = ((ci == 0 && !g.C0) || (doc_start && doc_start[rb])) ? F_ZERO : 0;
    }
}

__global__ void __launch_bounds__(CHAIN_THREADS)
k_tc_chain(Geo g, const int *chunks, ChunkScr cs, float *ms_out, int *arge_out) {
    __shared__ float s_g[CT], s_me[CT], s_mp[CT], s_beta[CT];
    __shared__ int s_ae[CT], s_fl[CT];
    const int bh = blockIdx.x, b = bh / g.NH, tid = threadIdx.x;
    const int *row = chunks + (size_t)b * (g.MC + 1);
    const size_t cbb = (size_t)bh * g.MC;
    float m = g.C0 ? g.m0[bh] : 0.f; /* thread 0: the carried m (inference: from the initial state) */
    int last = -1;                     /* thread 0: the last chunk */
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
                last = ci;
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
    if (tid == 0 && g.C1 && last >= 0) { /* the final state is wanted: the scan runs the last chunk's update */
        cs.flag[cbb + last] |= F_CARRY;
        g.m1[bh] = m;
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

/* The forward's bf16 copies, a warp per (token, head): q̃, k, v, w∘k. */
__global__ void __launch_bounds__(PRE_THREADS)
k_tc_prep_fwd(Geo g, const float *proj, const float *w, Ops16 o) {
    const int bh = blockIdx.y, b = bh / g.NH, h = bh % g.NH, lane = threadIdx.x & 31;
    const int t = blockIdx.x * (PRE_THREADS / 32) + (threadIdx.x >> 5);
    if (t >= g.T) return; /* whole warps */
    const int dk = g.dk, dv = g.dv, NH = g.NH;
    const size_t x = (size_t)bh * g.T + t;
    const float *row = proj + ((size_t)b * g.T + t) * g.ldp;
    const float *q = row + (size_t)h * dk, *k = row + (size_t)(NH + h) * dk, *v = row + (size_t)2 * NH * dk + (size_t)h * dv;
    const float sc = g.scale, ws = w[x];
    uint32_t *qt = reinterpret_cast<uint32_t *>(o.qt + x * dk), *kb = reinterpret_cast<uint32_t *>(o.kb + x * dk);
    uint32_t *wk = reinterpret_cast<uint32_t *>(o.wk + x * dk), *vb = reinterpret_cast<uint32_t *>(o.vb + x * dv);
    for (int j = lane; j < dk / 2; j += 32) {
        const float q0 = q[2 * j], q1 = q[2 * j + 1], k0 = k[2 * j], k1 = k[2 * j + 1];
        qt[j] = pack_bf16x2(q0 * sc, q1 * sc);
        kb[j] = pack_bf16x2(k0, k1);
        wk[j] = pack_bf16x2(ws * k0, ws * k1);
    }
    for (int e = lane; e < dv / 2; e += 32) vb[e] = pack_bf16x2(v[2 * e], v[2 * e + 1]);
}

struct FwdOutSm {
    union {
        TcSmem<1, 32> s1;
        TcSmem<NBV, 32> sv;
    } u;
    uint32_t P[TL][PW]; /* the current P tile, bf16 pairs [row][key pair] */
    float b[TL], m[TL], al[TL], bs[TL], ig[TL], inv[TL];
    float rs[2][TL];
};

__global__ void __launch_bounds__(TNT, 2)
k_tc_fwd_out(Geo g, const int *chunks, const int *flag, Ops16 o, const float *ig, const float *bcum,
             const float *mrow, const float *alpha, const float *Cs, const float *ns, float *hout, float *den_t) {
    const int nvo = (g.dv + VT - 1) / VT, per = g.NTP * nvo;
    const int ci = blockIdx.x / per, it = blockIdx.x % per / nvo, et = blockIdx.x % nvo;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int i0 = it * TL, e0 = et * VT, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (i0 >= n) return;
    FwdOutSm &sm = *reinterpret_cast<FwdOutSm *>(tc_smem());
    const int tid = threadIdx.x;
    if (tid < TL) {
        const size_t x = c.tok0 + min(i0 + tid, n - 1); /* clamped: the loads issue together */
        const float bv = bcum[x], mv = mrow[x], av = alpha[x];
        const bool ok = i0 + tid < n;
        sm.b[tid] = ok ? bv : 0.f;
        sm.m[tid] = ok ? mv : 0.f;
        sm.al[tid] = ok ? av : 0.f;
    }
    const BfRow Q{o.qt + (c.tok0 + i0) * dk, dk, n - i0};
    const int r0 = frag_r0(), c0s = frag_c0<1>(), c0h = frag_c0<NBV>();
    float accH[4 * NBV][4] = {}, xacc = 0.f, dummy = 0.f;
    if (!(c.fl & F_ZERO)) { /* α ⊙ (Q̃ C_prev), and n_prev·q̃ for den */
        const F32Col Cp{Cs + c.cb * dk * dv + e0, dv, dv - e0, dk};
        gemm_tc<NBV, 32>(accH, 0, dk, Q, n - i0, Cp, dv - e0, true, XVec{ns + c.cb * dk, dk}, xacc, sm.u.sv);
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
            const int s = min(s0 + tid, n - 1);
            const float bv = bcum[c.tok0 + s], iv = ig[(c.row0 + s) * NH + c.h];
            sm.bs[tid] = s0 + tid < n ? bv : 0.f;
            sm.ig[tid] = s0 + tid < n ? iv : 0.f;
        }
        float accS[4][4] = {};
        const BfRow K{o.kb + (c.tok0 + s0) * dk, dk, n - s0};
        gemm_tc<1, 32>(accS, 0, dk, Q, n - i0, K, n - s0, false, XNone(), dummy, sm.u.s1);
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
        const BfCol V{o.vb + c.tok0 * dv + e0, dv, dv - e0, n};
        gemm_tc<NBV, 32>(accH, s0, min(n, s0 + TL), SmemP{sm.P, s0}, TL, V, dv - e0, false, XNone(), dummy,
                         sm.u.sv);
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

/* Per token (a warp each), as mlstm_common.cuh's k_bwd_pre: 1/N, the
 * normaliser branch, dm0, α; also w (k_scalars' step 3) and the backward's
 * bf16 copies q̃, k, v, α q̃ and dnum = dh/N. The gradient into den is taken
 * through the same bf16 dnum that tc_bwd_att multiplies with V: dP_is = dden_i
 * + dnum_i·v_s cancels to dnum_i·(v_s - h_i) where one key dominates, and the
 * cancellation is clean only if both terms see the same rounded dnum. dm0 (the
 * e^-m branch) keeps the fp32 dh·h. */
__global__ void __launch_bounds__(PRE_THREADS)
k_tc_bwd_pre(Geo g, const float *proj, const float *hbuf, const float *dh, const float *m_t, const float *den_t,
             const float *bcum, const int *cid, ChunkScr cs, const float *ig, float *alpha, float *inv, float *dden,
             float *dm0, float *w, Ops16 o) {
    const int bh = blockIdx.y, b = bh / g.NH, h = bh % g.NH, lane = threadIdx.x & 31;
    const int t = blockIdx.x * (PRE_THREADS / 32) + (threadIdx.x >> 5);
    if (t >= g.T) return; /* whole warps */
    const int dk = g.dk, dv = g.dv, NH = g.NH;
    const size_t r = (size_t)b * g.T + t, off = r * NH * dv + (size_t)h * dv, x = (size_t)bh * g.T + t;
    const size_t cx = (size_t)bh * g.MC + cid[x];
    const float m = m_t[x], den = den_t[x], bx = bcum[x];
    const float em = expf(-m), ad = fabsf(den);
    const bool use_den = ad >= em;
    const float iv = 1.f / ((use_den ? ad : em) + g.eps);
    const float al = expf(bx + cs.mp[cx] - m);
    uint32_t *dn = reinterpret_cast<uint32_t *>(o.dn + x * dv);
    for (int e = lane; e < dv / 2; e += 32) dn[e] = pack_bf16x2(dh[off + 2 * e] * iv, dh[off + 2 * e + 1] * iv);
    float s = 0.f, sb = 0.f; /* dh·h in fp32, and with the bf16 dnum (the same values as dn above) */
    for (int e = lane; e < dv; e += 32) {
        const float d = dh[off + e], hv = hbuf[off + e];
        s = fmaf(d, hv, s);
        sb = fmaf(bf_lo(pack_bf16x2(d * iv, 0.f)), hv, sb);
    }
    const float *row = proj + r * g.ldp;
    const float *q = row + (size_t)h * dk, *k = row + (size_t)(NH + h) * dk, *v = row + (size_t)2 * NH * dk + (size_t)h * dv;
    const float sc = g.scale;
    uint32_t *qt = reinterpret_cast<uint32_t *>(o.qt + x * dk), *kb = reinterpret_cast<uint32_t *>(o.kb + x * dk);
    uint32_t *aq = reinterpret_cast<uint32_t *>(o.aq + x * dk), *vb = reinterpret_cast<uint32_t *>(o.vb + x * dv);
    for (int j = lane; j < dk / 2; j += 32) {
        const float q0 = q[2 * j] * sc, q1 = q[2 * j + 1] * sc, k0 = k[2 * j], k1 = k[2 * j + 1];
        qt[j] = pack_bf16x2(q0, q1);
        aq[j] = pack_bf16x2(al * q0, al * q1);
        kb[j] = pack_bf16x2(k0, k1);
    }
    for (int e = lane; e < dv / 2; e += 32) vb[e] = pack_bf16x2(v[2 * e], v[2 * e + 1]);
    s = swax_warp_sum(s);
    sb = swax_warp_sum(sb);
    if (lane == 0) {
        const float dN = -s * iv;
        inv[x] = iv;
        dden[x] = use_den ? (den >= 0.f ? -sb : sb) : 0.f;
        dm0[x] = use_den ? 0.f : -(dN * em);
        alpha[x] = al;
        w[x] = expf(cs.g[cx] - bx + ig[r * NH + h] - cs.me[cx]); /* k_scalars' step 3 */
    }
}

template <int KS> struct BwdScanSm {
    ScanSm<KS> s;
    float red[32];
};

/* A backward scan's chunk end (chunks walked last to first): for a chunk that carries, dC into
 * its end state stored (bf16, dCe) with dn (dne), and this block's part of <dC, C_prev> + <dn,
 * n_prev> to pbeta (a block sum: barriers); for one that does not, dC and dn start at zero. Then,
 * unless the chunk starts a document (ZERO: the gradient into a zero start state goes nowhere,
 * the return value false), dC and dn scaled by β for the chunk's products to add to. */
template <int KS>
__device__ __forceinline__ bool bwd_scan_chunk_end(const Geo &g, const Chunk &c, const float *beta, const float *Cs,
                                                   const float *ns, uint16_t *dCe, float *dne, float *pbeta, int j0,
                                                   int e0, bool ncol, BwdScanSm<KS> &sm, float (&acc)[4][4],
                                                   float &dn) {
    const int dk = g.dk, dv = g.dv, tid = threadIdx.x, r0 = frag_r0(), c0 = frag_c0<1>();
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
        float cv[4][2][2]; /* C_prev at this thread's elements: all loads first (clamped), then the sums */
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int hh = 0; hh < 2; hh++) {
                const int j = min(j0 + r0 + 8 * hh, dk - 1), e = min(e0 + c0 + 8 * nt, dv - 2);
                cv[nt][hh][0] = C[(size_t)j * dv + e], cv[nt][hh][1] = C[(size_t)j * dv + e + 1];
            }
        const float nv = ns[c.cb * dk + min(j0 + tid, dk - 1)];
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
                    part = fmaf(d0, cv[nt][hh][0], part);
                    part = fmaf(d1, cv[nt][hh][1], part);
                }
            }
        if (ncol && tid < TL && j0 + tid < dk) {
            dne[c.cb * dk + j0 + tid] = dn;
            if (!z) part = fmaf(dn, nv, part);
        }
        part = swax_block_sum(part, sm.red);
        if (tid == 0) pbeta[c.cb * (g.NTK * g.NTV) + blockIdx.x] = part;
    }
    if (c.fl & F_ZERO) return false;
    const float be = beta[c.cb];
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
        for (int i = 0; i < 4; i++) acc[nt][i] *= be;
    dn *= be;
    return true;
}

template <int KS>
__global__ void __launch_bounds__(TNT, 2)
k_tc_bwd_scan(Geo g, const int *chunks, const int *flag, const float *beta, Ops16 o, const float *dden,
              const float *Cs, const float *ns, uint16_t *dCe, float *dne, float *pbeta) {
    BwdScanSm<KS> &sm = *reinterpret_cast<BwdScanSm<KS> *>(tc_smem());
    const int bh = blockIdx.y, jt = blockIdx.x / g.NTV, et = blockIdx.x % g.NTV;
    const int j0 = jt * TL, e0 = et * TL, dk = g.dk, dv = g.dv;
    const bool ncol = et == 0;
    float acc[4][4] = {}, dn = 0.f;
    for (int ci = num_chunks(g, chunks, bh / g.NH) - 1; ci >= 0; ci--) {
        Chunk c;
        chunk_of(g, chunks, flag, bh, ci, c);
        if (!bwd_scan_chunk_end(g, c, beta, Cs, ns, dCe, dne, pbeta, j0, e0, ncol, sm, acc, dn)) continue;
        /* A(j, i) = (α q̃)_i[j], B(i, e) = dnum_i[e], x(i) = dden_i */
        gemm_tc<1, KS>(acc, 0, c.n, chunk_col(o.aq, c, j0, dk), dk - j0, chunk_col(o.dn, c, e0, dv), dv - e0, ncol,
                       XVec{dden + c.tok0, c.n}, dn, sm.s);
    }
}

/* k_tc_bwd_scan with the next slice's loads in flight across chunk starts (SWAX_MLSTM_SCAN=pf,
 * as k_tc_fwd_scan_pf: the chunks' slices as one stream, walked last chunk first; the chunk
 * ends' stores and block sums run under the loads of the next product's first slice). The same
 * steps in the same order per chunk: the same bits as k_tc_bwd_scan. */
template <int KS>
__global__ void __launch_bounds__(TNT, 2)
k_tc_bwd_scan_pf(Geo g, const int *chunks, const int *flag, const float *beta, Ops16 o, const float *dden,
                 const float *Cs, const float *ns, uint16_t *dCe, float *dne, float *pbeta) {
    BwdScanSm<KS> &sm = *reinterpret_cast<BwdScanSm<KS> *>(tc_smem());
    const int bh = blockIdx.y, jt = blockIdx.x / g.NTV, et = blockIdx.x % g.NTV;
    const int j0 = jt * TL, e0 = et * TL, dk = g.dk, dv = g.dv;
    const bool ncol = et == 0;
    float acc[4][4] = {}, dn = 0.f;
    /* A(j, i) = (α q̃)_i[j], B(i, e) = dnum_i[e], x(i) = dden_i of a chunk */
    auto opa = [&](const Chunk &c) { return chunk_col(o.aq, c, j0, dk); };
    auto opb = [&](const Chunk &c) { return chunk_col(o.dn, c, e0, dv); };
    auto opx = [&](const Chunk &c) { return XVec{dden + c.tok0, c.n}; };
    /* the fetch cursor: the slice at fk0 of chunk fc, or none */
    Chunk fc;
    int fk0 = 0;
    bool fon = false;
    auto next_product = [&](int from) { /* the last chunk <= from with products (not ZERO) */
        fon = false;
        for (int i = from; i >= 0; i--) {
            chunk_of(g, chunks, flag, bh, i, fc);
            if (!(fc.fl & F_ZERO)) {
                fk0 = 0, fon = true;
                return;
            }
        }
    };
    TcSlice<1, KS, BfCol, BfCol, XVec> sl;
    const int nch = num_chunks(g, chunks, bh / g.NH);
    next_product(nch - 1);
    if (fon) sl.fetch(opa(fc), opb(fc), ncol, opx(fc), 0, fc.n, sl.last(fc.n));
    int buf = 0;
    for (int ci = nch - 1; ci >= 0; ci--) {
        Chunk c;
        chunk_of(g, chunks, flag, bh, ci, c);
        if (!bwd_scan_chunk_end(g, c, beta, Cs, ns, dCe, dne, pbeta, j0, e0, ncol, sm, acc, dn)) continue;
        const BfCol A = opa(c), Bd = opb(c); /* the cursor is at (ci, 0) */
        for (int k0 = 0; k0 < c.n; k0 += KS) { /* the registers hold slice (ci, k0) */
            if (k0 + KS < c.n) fk0 = k0 + KS; /* the cursor first, as in k_tc_fwd_scan_pf */
            else next_product(ci - 1);
            sl.put(sm.s.st[buf], A, dk - j0, Bd, dv - e0, ncol, k0, c.n);
            __syncthreads(); /* the stage is complete; every warp is done with the other one */
            if (fon) sl.fetch(opa(fc), opb(fc), ncol, opx(fc), fk0, fc.n, sl.last(fc.n)); /* under the products */
            sl.mma(sm.s.st[buf], acc, ncol, dn);
            buf ^= 1;
        }
    }
}

struct BwdAttSm {
    TcSmem<1, 32> s;
    float b[TL], m[TL], dd[TL], bs[TL], ig[TL];
    float rr[2][TL], cr[4][TL];
};

__global__ void __launch_bounds__(TNT, 3) /* 80 registers, no spills */
k_tc_bwd_att(Geo g, const int *chunks, const int *flag, Ops16 o, const float *ig, const float *bcum,
             const float *m_t, const float *dden, uint16_t *Pm, uint16_t *dSm, float *rowp, float *colp) {
    const int per = g.NTP * g.NTP;
    const int ci = blockIdx.x / per, it = blockIdx.x % per / g.NTP, st = blockIdx.x % g.NTP;
    if (st > it) return;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int i0 = it * TL, s0 = st * TL, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (i0 >= n) return;
    BwdAttSm &sm = *reinterpret_cast<BwdAttSm *>(tc_smem());
    const int tid = threadIdx.x;
    if (tid < TL) {
        const int i = min(i0 + tid, n - 1), s = min(s0 + tid, n - 1);
        const float bi = bcum[c.tok0 + i], mi = m_t[c.tok0 + i], di = dden[c.tok0 + i];
        const float bs = bcum[c.tok0 + s], is = ig[(c.row0 + s) * NH + c.h];
        const bool oki = i0 + tid < n, oks = s0 + tid < n;
        sm.b[tid] = oki ? bi : 0.f, sm.m[tid] = oki ? mi : 0.f, sm.dd[tid] = oki ? di : 0.f;
        sm.bs[tid] = oks ? bs : 0.f, sm.ig[tid] = oks ? is : 0.f;
    }
    float aS[4][4] = {}, aP[4][4] = {}, dummy = 0.f;
    gemm_tc<1, 32>(aS, 0, dk, BfRow{o.qt + (c.tok0 + i0) * dk, dk, n - i0}, n - i0,
                   BfRow{o.kb + (c.tok0 + s0) * dk, dk, n - s0}, n - s0, false, XNone(), dummy, sm.s);
    gemm_tc<1, 32>(aP, 0, dv, BfRow{o.dn + (c.tok0 + i0) * dv, dv, n - i0}, n - i0,
                   BfRow{o.vb + (c.tok0 + s0) * dv, dv, n - s0}, n - s0, false, XNone(), dummy, sm.s);
    const int r0 = frag_r0(), c0 = frag_c0<1>();
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
                const size_t off = (c.tok0 + i) * g.Lp + s0 + sl;
                *reinterpret_cast<uint32_t *>(Pm + off) = pack_bf16x2(p[0], p[1]);
                *reinterpret_cast<uint32_t *>(dSm + off) = pack_bf16x2(ds[0], ds[1]);
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

template <int KS> struct BwdDqSm {
    TcSmem<1, KS> s;
    float al[TL], dd[TL];
    float rr[2][TL];
};

template <int KS>
__global__ void __launch_bounds__(TNT, 3) /* 80 registers, no spills */
k_tc_bwd_dq(Geo g, const int *chunks, const int *flag, const float *proj, Ops16 o, const float *Cs,
            const float *ns, const float *alpha, const float *dden, const uint16_t *dSm, float *alpart,
            float *dproj) {
    const int per = g.NTP * g.NTK;
    const int ci = blockIdx.x / per, it = blockIdx.x % per / g.NTK, jt = blockIdx.x % g.NTK;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int i0 = it * TL, j0 = jt * TL, n = c.n, dk = g.dk, dv = g.dv;
    if (i0 >= n) return;
    BwdDqSm<KS> &sm = *reinterpret_cast<BwdDqSm<KS> *>(tc_smem());
    const int tid = threadIdx.x;
    const long ldp = g.ldp;
    const float sc = g.scale;
    if (tid < TL) {
        const size_t x = c.tok0 + min(i0 + tid, n - 1);
        const float av = alpha[x], dv_ = dden[x];
        sm.al[tid] = i0 + tid < n ? av : 0.f;
        sm.dd[tid] = i0 + tid < n ? dv_ : 0.f;
    }
    const int r0 = frag_r0(), c0 = frag_c0<1>();
    float acc[4][4] = {}, part[2] = {0.f, 0.f}, dummy = 0.f;
    const float *q = proj + (c.row0 + i0) * ldp + (size_t)c.h * dk + j0;
    if (!(c.fl & F_ZERO)) { /* α (dnum C_prevᵀ + dden n_prev) */
        const float *np = ns + c.cb * dk + j0;
        gemm_tc<1, KS>(acc, 0, dv, BfRow{o.dn + (c.tok0 + i0) * dv, dv, n - i0}, n - i0,
                       F32Row{Cs + (c.cb * dk + j0) * dv, dv, dk - j0}, dk - j0, false, XNone(), dummy, sm.s);
        float qv[2][4][2], nv[4][2]; /* loads first (clamped), then the arithmetic */
#pragma unroll
        for (int hh = 0; hh < 2; hh++)
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int il = min(r0 + 8 * hh, n - 1 - i0), jl = min(c0 + 8 * nt + e, dk - 1 - j0);
                    qv[hh][nt][e] = q[(size_t)il * ldp + jl];
                    if (hh == 0) nv[nt][e] = np[jl];
                }
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int il = r0 + 8 * hh;
            const float a = sm.al[il], ddi = sm.dd[il];
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int jl = c0 + 8 * nt + e;
                    const bool okj = j0 + jl < dk, ok = i0 + il < n && okj;
                    const float v = a * (acc[nt][2 * hh + e] + ddi * (okj ? nv[nt][e] : 0.f));
                    acc[nt][2 * hh + e] = v;
                    part[hh] = fmaf(ok ? qv[hh][nt][e] * sc : 0.f, v, part[hh]);
                }
        }
    }
    row_part(part[0], part[1], sm.rr);
    __syncthreads();
    if (tid < TL && i0 + tid < n) alpart[(c.tok0 + i0 + tid) * g.NTK + jt] = sm.rr[0][tid] + sm.rr[1][tid];
    /* + dS K over the keys s < min(n, i0 + 64) */
    gemm_tc<1, KS>(acc, 0, min(n, i0 + TL), BfRow{dSm + (c.tok0 + i0) * g.Lp, g.Lp, n - i0}, n - i0,
                   BfCol{o.kb + c.tok0 * dk + j0, dk, dk - j0, n}, dk - j0, false, XNone(), dummy, sm.s);
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

__global__ void __launch_bounds__(TNT, 3) /* 80 registers, no spills */
k_tc_bwd_dk(Geo g, const int *chunks, const int *flag, const float *proj, Ops16 o, const uint16_t *dCe,
            const float *dne, const float *w, const uint16_t *dSm, float *wpart, float *dproj) {
    const int per = g.NTP * g.NTK;
    const int ci = blockIdx.x / per, st = blockIdx.x % per / g.NTK, jt = blockIdx.x % g.NTK;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int s0 = st * TL, j0 = jt * TL, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (s0 >= n) return;
    BwdDkSm &sm = *reinterpret_cast<BwdDkSm *>(tc_smem());
    const int tid = threadIdx.x;
    const long ldp = g.ldp;
    if (tid < TL) {
        const float wv = w[c.tok0 + min(s0 + tid, n - 1)];
        sm.w[tid] = s0 + tid < n ? wv : 0.f;
    }
    const int r0 = frag_r0(), c0 = frag_c0<1>();
    float acc[4][4] = {}, part[2] = {0.f, 0.f}, dummy = 0.f;
    const bool carry = c.fl & F_CARRY;
    const float *k = proj + (c.row0 + s0) * ldp + (size_t)(NH + c.h) * dk + j0;
    if (carry) { /* w (V dCᵀ + dn) */
        const float *dn = dne + c.cb * dk + j0;
        gemm_tc<1, 32>(acc, 0, dv, BfRow{o.vb + (c.tok0 + s0) * dv, dv, n - s0}, n - s0,
                       BfRow{dCe + (c.cb * dk + j0) * dv, dv, dk - j0}, dk - j0, false, XNone(), dummy, sm.s);
        float kv[2][4][2], nv[4][2]; /* loads first (clamped), then the arithmetic */
#pragma unroll
        for (int hh = 0; hh < 2; hh++)
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int sl = min(r0 + 8 * hh, n - 1 - s0), jl = min(c0 + 8 * nt + e, dk - 1 - j0);
                    kv[hh][nt][e] = k[(size_t)sl * ldp + jl];
                    if (hh == 0) nv[nt][e] = dn[jl];
                }
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int sl = r0 + 8 * hh;
            const float ws = sm.w[sl];
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int jl = c0 + 8 * nt + e;
                    const bool okj = j0 + jl < dk, ok = s0 + sl < n && okj;
                    const float t = acc[nt][2 * hh + e] + (okj ? nv[nt][e] : 0.f);
                    part[hh] = fmaf(ok ? kv[hh][nt][e] : 0.f, t, part[hh]);
                    acc[nt][2 * hh + e] = ws * t;
                }
        }
        row_part(part[0], part[1], sm.rr);
        __syncthreads();
        if (tid < TL && s0 + tid < n) wpart[(c.tok0 + s0 + tid) * g.NTK + jt] = sm.rr[0][tid] + sm.rr[1][tid];
    }
    /* + dSᵀ Q̃ over the queries i in [s0, n) */
    gemm_tc<1, 32>(acc, s0, n, BfCol{dSm + c.tok0 * g.Lp + s0, g.Lp, TL, n}, n - s0,
                   BfCol{o.qt + c.tok0 * dk + j0, dk, dk - j0, n}, dk - j0, false, XNone(), dummy, sm.s);
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

__global__ void __launch_bounds__(TNT, 3) /* 80 registers, no spills */
k_tc_bwd_dv(Geo g, const int *chunks, const int *flag, Ops16 o, const uint16_t *dCe, const float *w,
            const uint16_t *Pm, float *dproj) {
    const int nvo = (g.dv + VT - 1) / VT, per = g.NTP * nvo;
    const int ci = blockIdx.x / per, st = blockIdx.x % per / nvo, et = blockIdx.x % nvo;
    Chunk c;
    if (!chunk_of(g, chunks, flag, blockIdx.y, ci, c)) return;
    const int s0 = st * TL, e0 = et * VT, n = c.n, dk = g.dk, dv = g.dv, NH = g.NH;
    if (s0 >= n) return;
    BwdDvSm &sm = *reinterpret_cast<BwdDvSm *>(tc_smem());
    const int tid = threadIdx.x;
    const long ldp = g.ldp;
    if (tid < TL) {
        const float wv = w[c.tok0 + min(s0 + tid, n - 1)];
        sm.w[tid] = s0 + tid < n ? wv : 0.f;
    }
    const int r0 = frag_r0(), c0 = frag_c0<NBV>();
    float acc[4 * NBV][4] = {}, dummy = 0.f;
    if (c.fl & F_CARRY) { /* w K dC */
        gemm_tc<NBV, 32>(acc, 0, dk, BfRow{o.kb + (c.tok0 + s0) * dk, dk, n - s0}, n - s0,
                         BfCol{dCe + c.cb * dk * dv + e0, dv, dv - e0, dk}, dv - e0, false, XNone(), dummy, sm.s);
        const float w0 = sm.w[r0], w1 = sm.w[r0 + 8];
#pragma unroll
        for (int nt = 0; nt < 4 * NBV; nt++) {
            acc[nt][0] *= w0, acc[nt][1] *= w0;
            acc[nt][2] *= w1, acc[nt][3] *= w1;
        }
    }
    /* + Pᵀ dnum over the queries i in [s0, n) */
    gemm_tc<NBV, 32>(acc, s0, n, BfCol{Pm + c.tok0 * g.Lp + s0, g.Lp, TL, n}, n - s0,
                     BfCol{o.dn + c.tok0 * dv + e0, dv, dv - e0, n}, dv - e0, false, XNone(), dummy, sm.s);
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

static_assert(sizeof(ScanSm<64>) <= SMEM_MAX && sizeof(BwdScanSm<64>) <= SMEM_MAX && sizeof(FwdOutSm) <= SMEM_MAX &&
                  sizeof(BwdAttSm) <= SMEM_MAX && sizeof(BwdDqSm<64>) <= SMEM_MAX && sizeof(BwdDkSm) <= SMEM_MAX &&
                  sizeof(BwdDvSm) <= SMEM_MAX,
              "dynamic shared memory above the 48 KiB default");

/* ------------------------------------------------------------------ launchers */

/* SWAX_MLSTM_KS=64: the scans and dQ take k slices of 64 (tests/test_cuda_mlstm_tc runs both; the
 * same products, accumulated in slices of another length: results differ in the last bits only);
 * unset or 32: slices of 32 (measured; 64 becomes the default once measured faster). Read at every
 * call: a getenv per launch group. */
static bool ks64() {
    const char *e = getenv("SWAX_MLSTM_KS");
    return e && !strcmp(e, "64");
}
/* SWAX_MLSTM_SCAN=pf: the scans with the next chunk's first slice loading under the current
 * chunk's products (k_tc_fwd_scan_pf, k_tc_bwd_scan_pf: the same bits; opt-in until a GPU run has
 * timed them). Read at every call. */
static bool scan_pf() {
    const char *e = getenv("SWAX_MLSTM_SCAN");
    return e && !strcmp(e, "pf");
}

/* The bf16 copies: q̃, k (and w∘k or α q̃) are (BH·T, dk), v and dnum (BH·T, dv). */
static void carve_ops16(Arena &a, const Geo &g, bool fwd, Ops16 &o) {
    const size_t nt = (size_t)g.B * g.NH * g.T;
    o.qt = a.take<uint16_t>(nt * g.dk), o.kb = a.take<uint16_t>(nt * g.dk), o.vb = a.take<uint16_t>(nt * g.dv);
    o.wk = fwd ? a.take<uint16_t>(nt * g.dk) : nullptr;
    o.aq = fwd ? nullptr : a.take<uint16_t>(nt * g.dk);
    o.dn = fwd ? nullptr : a.take<uint16_t>(nt * g.dv);
}

struct TcFwdScr {
    float *bcum, *w, *alpha, *m, *Cs, *ns;
    int *cid, *arg;
    ChunkScr cs;
    Ops16 o;
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
    carve_ops16(a, g, true, s.o);
}

struct TcBwdScr {
    float *bcum, *w, *alpha, *inv, *dden, *dm0, *alpart, *wpart, *rowp, *colp, *pbeta, *dne;
    uint16_t *dCe, *P, *dS;
    int *cid;
    ChunkScr cs;
    FinScr f;
    Ops16 o;
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
    carve_ops16(a, g, false, s.o);
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
    KPROF_LAUNCH(k_tc_gates, dim3(g.MC, BH), GATE_THREADS, 0, g, c->chunks, c->doc_start, c->ig, c->lf, s.bcum, s.cid,
                 s.cs);
    KPROF_LAUNCH(k_tc_chain, BH, CHAIN_THREADS, 0, g, c->chunks, s.cs, save ? c->ms : nullptr,
                 save ? c->arg_end : nullptr);
    KPROF_LAUNCH(k_tc_stab, dim3(swax_ceil_div((size_t)g.T, STAB_THREADS), BH), STAB_THREADS, 0, g, c->chunks, s.cid,
                 s.cs, c->ig, s.bcum, m, arg, s.alpha, s.w);
    KPROF_LAUNCH(k_tc_prep_fwd, dim3(swax_ceil_div((size_t)g.T, PRE_THREADS / 32), BH), PRE_THREADS, 0, g, c->proj, s.w,
                 s.o);
    const dim3 sgrid(g.NTK * g.NTV, BH);
    if (scan_pf() && ks64())
        KPROF_LAUNCH(k_tc_fwd_scan_pf<64>, sgrid, TNT, sizeof(ScanSm<64>), g, c->chunks, s.cs.flag, s.cs.beta, s.o, Cs,
                     ns);
    else if (scan_pf())
        KPROF_LAUNCH(k_tc_fwd_scan_pf<32>, sgrid, TNT, sizeof(ScanSm<32>), g, c->chunks, s.cs.flag, s.cs.beta, s.o, Cs,
                     ns);
    else if (ks64())
        KPROF_LAUNCH(k_tc_fwd_scan<64>, sgrid, TNT, sizeof(ScanSm<64>), g, c->chunks, s.cs.flag, s.cs.beta, s.o, Cs, ns);
    else
        KPROF_LAUNCH(k_tc_fwd_scan<32>, sgrid, TNT, sizeof(ScanSm<32>), g, c->chunks, s.cs.flag, s.cs.beta, s.o, Cs, ns);
    KPROF_LAUNCH(k_tc_fwd_out, dim3(g.MC * g.NTP * nvo, BH), TNT, sizeof(FwdOutSm), g, c->chunks, s.cs.flag, s.o, c->ig,
                 s.bcum, m, s.alpha, Cs, ns, c->h, c->den_t);
}

extern "C" void swax_cuda_mlstm_cell_bwd_tc(SwaxMlstmCall *c) {
    if (!tc_dims(c)) {
        swax_cuda_mlstm_cell_bwd(c);
        return;
    }
    Geo g;
    if (!make_geo(c, &g)) return;
    SWAX_CUDA_REQUIRE(c->m_t && c->den_t && c->arg_t && c->Cs && c->ns);
    SWAX_CUDA_REQUIRE(!c->C0 && !c->C1); /* the state in / out is inference-only */
    SWAX_CUDA_REQUIRE(c->dh && c->dproj && c->dig && c->dlf);
    TcBwdScr s;
    Arena a = {nullptr, 0};
    carve_tc_bwd(a, g, s);
    a = {static_cast<char *>(swax_cuda_scratch(SWAX_SCRATCH_MLSTM, a.off)), 0};
    carve_tc_bwd(a, g, s);
    const unsigned BH = (unsigned)(g.B * g.NH), nvo = (unsigned)swax_ceil_div((size_t)g.dv, VT);
    KPROF_LAUNCH(k_tc_gates, dim3(g.MC, BH), GATE_THREADS, 0, g, c->chunks, c->doc_start, c->ig, c->lf, s.bcum, s.cid,
                 s.cs);
    KPROF_LAUNCH(k_tc_chain, BH, CHAIN_THREADS, 0, g, c->chunks, s.cs, nullptr, nullptr);
    KPROF_LAUNCH(k_tc_bwd_pre, dim3(swax_ceil_div((size_t)g.T, PRE_THREADS / 32), BH), PRE_THREADS, 0, g, c->proj, c->h,
                 c->dh, c->m_t, c->den_t, s.bcum, s.cid, s.cs, c->ig, s.alpha, s.inv, s.dden, s.dm0, s.w, s.o);
    const bool k64 = ks64(), pf = scan_pf();
    const dim3 sgrid(g.NTK * g.NTV, BH);
    if (pf && k64)
        KPROF_LAUNCH(k_tc_bwd_scan_pf<64>, sgrid, TNT, sizeof(BwdScanSm<64>), g, c->chunks, s.cs.flag, s.cs.beta, s.o,
                     s.dden, c->Cs, c->ns, s.dCe, s.dne, s.pbeta);
    else if (pf)
        KPROF_LAUNCH(k_tc_bwd_scan_pf<32>, sgrid, TNT, sizeof(BwdScanSm<32>), g, c->chunks, s.cs.flag, s.cs.beta, s.o,
                     s.dden, c->Cs, c->ns, s.dCe, s.dne, s.pbeta);
    else if (k64)
        KPROF_LAUNCH(k_tc_bwd_scan<64>, sgrid, TNT, sizeof(BwdScanSm<64>), g, c->chunks, s.cs.flag, s.cs.beta, s.o,
                     s.dden, c->Cs, c->ns, s.dCe, s.dne, s.pbeta);
    else
        KPROF_LAUNCH(k_tc_bwd_scan<32>, sgrid, TNT, sizeof(BwdScanSm<32>), g, c->chunks, s.cs.flag, s.cs.beta, s.o,
                     s.dden, c->Cs, c->ns, s.dCe, s.dne, s.pbeta);
    KPROF_LAUNCH(k_tc_bwd_att, dim3(g.MC * g.NTP * g.NTP, BH), TNT, sizeof(BwdAttSm), g, c->chunks, s.cs.flag, s.o,
                 c->ig, s.bcum, c->m_t, s.dden, s.P, s.dS, s.rowp, s.colp);
    if (k64)
        KPROF_LAUNCH(k_tc_bwd_dq<64>, dim3(g.MC * g.NTP * g.NTK, BH), TNT, sizeof(BwdDqSm<64>), g, c->chunks, s.cs.flag,
                     c->proj, s.o, c->Cs, c->ns, s.alpha, s.dden, s.dS, s.alpart, c->dproj);
    else
        KPROF_LAUNCH(k_tc_bwd_dq<32>, dim3(g.MC * g.NTP * g.NTK, BH), TNT, sizeof(BwdDqSm<32>), g, c->chunks, s.cs.flag,
                     c->proj, s.o, c->Cs, c->ns, s.alpha, s.dden, s.dS, s.alpart, c->dproj);
    KPROF_LAUNCH(k_tc_bwd_dk, dim3(g.MC * g.NTP * g.NTK, BH), TNT, sizeof(BwdDkSm), g, c->chunks, s.cs.flag, c->proj,
                 s.o, s.dCe, s.dne, s.w, s.dS, s.wpart, c->dproj);
    KPROF_LAUNCH(k_tc_bwd_dv, dim3(g.MC * g.NTP * nvo, BH), TNT, sizeof(BwdDvSm), g, c->chunks, s.cs.flag, s.o, s.dCe,
                 s.w, s.P, c->dproj);
    KPROF_LAUNCH(k_tc_fin_chunk, dim3(g.MC, BH), FIN_CHUNK_THREADS, 0, g, c->chunks, s.cs, s.w, s.dm0, s.alpart, s.rowp,
                 s.colp, s.wpart, s.pbeta, c->arg_t, s.f);
    KPROF_LAUNCH(k_tc_fin_chain, BH, CHAIN_THREADS, 0, g, c->chunks, s.cs, s.f);
    KPROF_LAUNCH(k_tc_fin_tok, dim3(g.MC, BH), FIN_CHUNK_THREADS, 0, g, c->chunks, s.cs, s.f, c->dig, c->dlf);
}
