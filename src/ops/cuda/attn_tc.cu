/* ==== Version 2 (2026-11-30): what changed, what should move (prediction
 * written before any GPU run; the lead fills in "measured") ====
 *
 * SWAX_ATTN_TC=old selects version 1 (the kernels as measured on 2026-11-29:
 * 1.68 ms fwd+bwd at w 128, 6.74 ms at w 2048, B8 H16 T4096 dh64, H200);
 * unset (or anything else): version 2. `swax bench kernels` and
 * tests/test_cuda_attn_tc time both in one run.
 *
 * Changes (same tiles, same schedule, same fragment code; templates FX):
 *  1. exp: ex2.approx.ftz.f32 (one MUFU.EX2) instead of exp2f, which without
 *     fast-math is ex2.approx.f32 and in SASS a range test, two
 *     conditional scalings and the MUFU: ~3 ALU instructions saved per score
 *     in each of fwd, dq and dkdv (p < 2^-126 now flushes to 0).
 *  2. forward: scores stay raw until the exponent; row max on raw scores
 *     (scale2 > 0); p = 2^(fma(s, scale2, −m·scale2)): one FFMA per score
 *     instead of FMUL + FADD (lse = (m·scale2 + log2 l)·ln 2, same meaning).
 *  3. staging: 16-byte loads, bf16x4 stores, thread per 4 columns (fwd: per
 *     4 rotation pairs), when qkv, out, dout are 16-byte aligned (else the
 *     version-1 warp-per-row kernels): a quarter of the memory instructions
 *     and 4× the bytes in flight per thread; same bits (Δ is summed in
 *     another fixed order: ~1e-6 absolute).
 * Instruction budget of a forward warp-tile (dh64, 16 rows × 64 keys, 32
 * scores a thread): version 1 ≈ 64 HMMA + 32 LDSM + ~350 other; version 2
 * ≈ 64 + 32 + ~190 (−4 per score). dq / dkdv per 16×32 step: ~−3 per score
 * (−48 of ~300).
 * Predicted (H200, B8 H16 T4096 dh64):
 *   staging (fwd 0.87 GB, bwd 0.94 GB): from ~0.40 + 0.43 ms (est. ~70 %
 *     of bandwidth with 4-byte loads and 2-byte stores) to ~0.30 + 0.32 ms
 *     (~90 %): −0.2 ms at either window;
 *   attention kernels: the forward is issue-bound at dh 64 (MUFU, FMUL and
 *     HMMA compete for issue slots): −15..25 % of fwd kernel time
 *     (w 2048: ~1.6 → ~1.3 ms); dq and dkdv −8..12 % (w 2048: ~4.1 → ~3.7).
 *   fwd+bwd:  w 128:  1.68 → ~1.40 ms;  w 2048: 6.74 → ~5.9 ms.
 *   measured: (lead)
 * Not reached by this version, and why (see the cost model below): at
 * w 128 the fp32 interface (read fp32 q, k, v, out, dout; write rotated q,
 * k in place, fp32 out, dq, dk, dv) moves ≥ 2.5 GB whatever the kernels do:
 * ~0.8 ms floor at 3.2 TB/s, while flex_attention (bf16 in and out, no
 * RoPE) moves ~0.6 GB; at w 2048 flex's 2.82 ms for the same 9 band
 * products (its backward recomputes S and dP in both its dq and dkdv
 * programs too) is ~330 TFLOP/s: wgmma territory; mma.sync kernels of the
 * FlashAttention-2 class reach ~300 fwd / ~200 bwd on Hopper, i.e. ~4.3 ms
 * here. Next levers, in order: (a) wgmma (m64nNk16, operands from shared
 * memory with the 128-byte swizzle) for QKᵀ, PV in the forward and the
 * four dkdv products; (b) a 32-key-per-warp dkdv (half the Q / dO ldmatrix
 * traffic, the shared-memory pipe is the next limit: 72 LDSM.x4 per 144
 * HMMA over fwd + bwd); (c) bf16 activations at the slot (halves the
 * staging bytes; ops.h / model work, not this file's).
 * ==== end of version 2 notes ==== */
/* attn_tc.cu — sliding-window attention (SWA) forward and backward with the
 * matrix products on tensor cores: bf16 operands, fp32 accumulation
 * (mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, operands fetched
 * with ldmatrix). Same semantics as the fp32 slots of attn.cu (which stay the
 * reference of the "cuda-fp32" table): the forward rotates q and k in place
 * (RoPE, float64 angles, the same bits as attn.cu) and writes out (N, H·dh)
 * and lse (B, H, T); the backward overwrites dqkv, then dq and dk are rotated
 * back. Softmax statistics, lse, Δ, P, dS and every rescaling stay fp32; only
 * the operands of the products (Q, K, V, dO, P, dS) are rounded to bf16.
 * Head dims 64 and 128 run here; any other dh calls the fp32 kernels.
 *
 * Masks (as attn.cu): query i sees key j iff lo_i <= j <= i, lo_i = max(i -
 * w + 1, doc_lo[i], 0), w = min(window, T). Tile ranges come from the
 * minimum (maximum) of lo over a tile, every score is masked element by
 * element; monotonic lo is never assumed.
 *
 * Pipeline of a call (one stream, no host synchronisation):
 *   forward:  rope_table   (cos, sin) of every (t, j < dh/2): float64 angles,
 *                          the expressions of attn.cu's rope kernel.
 *             stage_fwd    warp per (b, t, h): rotates q and k in place (fp32,
 *                          unfused products: the bits of attn.cu / the CPU),
 *                          writes bf16 copies of q, k, v in (B, H, Tp, dh)
 *                          layout (Tp = T rounded up to 128, pad rows zero)
 *                          and lo (B, Tp) (INT_MAX on pad rows).
 *             fwd          block per (query tile, h, b).
 *   backward: rope_table, stage_bwd (bf16 q, k, v, dO; Δ = Σ dout·out in
 *             fp32; lse·log2 e; lo), bwd_dq (block per query tile), bwd_dkdv
 *             (block per key tile); dq and dk rotated back in the epilogues
 *             of those two kernels (same fp32 expressions as attn.cu's
 *             inverse rope, table values), so no separate rope pass.
 * The staging copies make every tile load a plain 16-byte cp.async (double
 * buffered, no conversion in flight) and halve the bytes that the band's
 * reuse pulls from L2 (fp32 tiles would be ~9 GB of L2->SM traffic per
 * backward at w = 2048); the rounding is the one the kernels would do on
 * fp32 tiles (round to nearest even), so the results are the same.
 *
 * Tensor-core design (FlashAttention-2 style, no shared-memory round trip of
 * the scores): a warp owns 16·MW query rows (fwd, dq) or 16 key rows (dkdv);
 * its operand fragments stay in registers (Q in fwd; Q and dO in dq when
 * QREG; K and V in dkdv when KREG, else re-read with ldmatrix). Score tiles
 * are mma accumulators: thread (g = lane/4, t4 = lane%4) holds rows g, g+8,
 * columns 8n + 2·t4 + {0, 1} of each n8 tile. Row max / sum: xor shuffles 1
 * and 2 inside a quad. The accumulators of two adjacent n8 tiles ARE the A
 * fragment of the next product (P·V, dS·K, Pᵀ·dO, dSᵀ·Q) after packing to
 * bf16x2: no shared memory between the two products.
 * Fragment layouts (PTX ISA, m16n8k16 .bf16): A a0..a7 (4 regs): rows g
 * (regs 0, 2), g + 8 (regs 1, 3), columns 2·t4 + {0,1} (regs 0, 1), + 8
 * (regs 2, 3); B b0..b3 (2 regs): k rows 2·t4 + {0,1} (+8 for reg 1), column
 * g; C/D c0..c3: rows g (c0, c1), g + 8 (c2, c3), columns 2·t4 + {0,1}.
 * ldmatrix .x4: lane l addresses row l%8 of matrix l/8, register i gets
 * matrix i, lane l the pair (l/4, 2·(l%4)) (with .trans (2·(l%4), l/4)).
 * A from row-major [m][k] smem: plain ldmatrix; B of QKᵀ (K rows) plain;
 * B of PV (V rows are [k][n]) .trans.
 *
 * Shared memory: bf16 rows padded to dh + 8 elements (144 or 272 bytes), so
 * the 8 row addresses of an ldmatrix phase fall in 8 distinct 16-byte bank
 * groups (row stride ≡ 16 mod 128 bytes): no conflicts, no swizzle.
 * Skipping: key (query) tiles are aligned to their size and cover only the
 * band; inside a tile each warp skips the 16-key (16-query) chunks that none
 * of its rows can see, and skips the per-element mask where a chunk is fully
 * visible to all its rows. Cost O(T·w).
 *
 * Determinism: no atomics; dQ per query tile, dK/dV per key tile; fixed
 * loop orders and shuffle trees; mma accumulation order is fixed by the
 * hardware for a given instruction sequence: same inputs, same bits.
 *
 * Default tiles (registers from ptxas -v, sm_90a, nvcc 13.0; no spills, no
 * stack frame in any attention kernel; resident blocks per SM from
 * __launch_bounds__ and 228 KiB of shared memory; alternatives near the
 * entry points, swept by the timing test):
 *            tile                     warps          smem       regs  blocks/SM
 *   dh 64:  fwd  128 q × 64 k         4 × 32 rows    54.0 KiB   215   2 (8 warps)
 *           dq   128 q × 64 k         8 × 16 rows    72.0 KiB   128   2 (16 warps)
 *           dkdv  64 k × 64 q         4 × 16 keys    55.5 KiB   168   3 (12 warps)
 *   dh 128: fwd   64 q × 64 k         4 × 16 rows    85.0 KiB   195   2 (8 warps)
 *           dq    64 q × 64 k         4 × 16 rows   102.0 KiB   159   2 (8 warps)
 *           dkdv  64 k × 64 q         4 × 16 keys   103.5 KiB   242   2 (8 warps)
 *   staging kernels: 32-40 registers, no shared memory.
 * Register-resident operands: fwd Q; dq Q and dO (dh 64); dkdv K and V
 * (dh 64); at dh 128 those are re-read from shared memory (ldmatrix) to
 * stay under the register budget.
 *
 * Cost model, B8 H16 T4096 dh64 (N = 32768 token rows, R = 0.52 M (b, h, t)
 * rows). One product over the band = 2·R·w'·dh FLOPs, w' = mean number of
 * visible keys (126 at w = 128, 1536 at w = 2048): 8.5 GFLOP at w = 128,
 * 103 GFLOP at w = 2048. Forward 2 products; backward 7 (S and dP in both
 * kernels, then dQ, dK, dV: the price of no atomics). Executed work: ×1.3
 * at w = 128 (16-key chunks of 16- or 32-row warps), ×1.02 at w = 2048.
 * DRAM bytes (fp32 activations): forward stage 0.87 GB (read q, k, v; write
 * rotated q, k and bf16 q, k, v), attention 0.34 GB (bf16 q, k, v; out);
 * backward stage 0.94 GB (read q, k, v, out, dout; write bf16 q, k, v, dO),
 * dq 0.40 GB, dkdv 0.54 GB: 3.1 GB in all.
 *   floors (~600 TFLOP/s mma.sync bf16; 3.5 TB/s):
 *     w = 128:  compute 9 × 8.5 = 76 GFLOP: 0.13 ms; memory 3.1 GB: 0.88 ms
 *               (memory bound: ~0.9 ms fwd + bwd)
 *     w = 2048: compute 9 × 103 = 927 GFLOP: 1.55 ms; memory 0.88 ms
 *               (mostly overlapped: ~1.6 ms fwd + bwd)
 *   predicted (memory passes at ~80 % of bandwidth; mma.sync attention
 *   kernels at ~45-50 % of the mma peak, as FlashAttention-2 on Hopper):
 *     w = 128:  fwd ~0.45 ms (stage 0.32), bwd ~0.75 ms (stage 0.35, dq
 *               ~0.17, dkdv ~0.23): ~1.2 ms  (target 1.4)
 *     w = 2048: fwd ~1.0 ms (stage 0.32 + 0.7), bwd ~2.9 ms (stage 0.35,
 *               dq ~1.1, dkdv ~1.45): ~3.9 ms (target 3.0: needs the
 *               attention kernels at ~65 % of the mma peak, or wgmma, or a
 *               backward that does not recompute S and dP)
 * (These are predictions; measured numbers belong to the test's output.) */
#include <cuda_bf16.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_slots.h"
#include "ops/cuda/wgmma.cuh"

extern "C" void swax_cuda_attn_fwd_tc(SwaxAttnCall *c);
extern "C" void swax_cuda_attn_bwd_tc(SwaxAttnCall *c);
extern "C" void swax_cuda_attn_fwd_tc_bf16(SwaxAttnCall *c);
extern "C" void swax_cuda_attn_bwd_tc_bf16(SwaxAttnCall *c);
extern "C" void swax_cuda_attn_tc_tiles(int fwd, int dq, int dkdv);

namespace {

typedef __nv_bfloat16 bf16;

constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.69314718055994531f;
constexpr int TPAD = 128; /* staged rows per (b, h) are padded to a multiple of this */
constexpr int STAGE_THREADS = 256;

/* ---------------------------------------------------------------- PTX and shared-memory access */

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

/* Four 8×8 b16 matrices; lane l gives the address of row l%8 of matrix l/8. */
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
/* The same, each matrix transposed. */
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
/* d (16×8 fp32) += a (16×16 bf16, row) · b (16×8 bf16, col). */
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
/* 16 bytes global -> shared, asynchronous (L2 only); s a shared-window address, or a pointer. */
__device__ __forceinline__ void cp_async16(uint32_t s, const void *g) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(g) : "memory");
}
__device__ __forceinline__ void cp_async16(void *s, const void *g) { cp_async16(smem_addr(s), g); }
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
/* Plain shared-memory loads (8 and 16 bytes, aligned). */
__device__ __forceinline__ int2 lds_i2(const int *p) { return *reinterpret_cast<const int2 *>(p); }
__device__ __forceinline__ float4 lds_f4(const float2 *p) { return *reinterpret_cast<const float4 *>(p); }

/* ---------------------------------------------------------------- helpers */

/* Two floats as bf16x2 (round to nearest even), lo in the low half. */
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t *>(&v);
}

/* 2^x, one MUFU.EX2 (flushes subnormal results to 0: p < 2^-126 does not
 * matter next to the row's 1). exp2f without fast-math is ex2.approx.f32
 * (no .ftz), which ptxas wraps in a range test and two scalings. */
__device__ __forceinline__ float ex2_ftz(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ int warp_min(int v) { return __reduce_min_sync(0xffffffffu, v); }
__device__ __forceinline__ int warp_max(int v) { return __reduce_max_sync(0xffffffffu, v); }
__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/* First key query i may see (attn.cu's row_lo); dl = this sequence's doc_lo or NULL. */
__device__ __forceinline__ int row_lo(const int *dl, int i, int w) {
    int lo = i - w + 1;
    if (lo < 0) lo = 0;
    if (dl) {
        const int d = dl[i];
        if (d > lo) lo = d;
    }
    return lo;
}

struct TcArgs {
    int B, T, Tp, H, w; /* w = min(window, T); Tp = T rounded up to TPAD */
    int HD;             /* H·dh */
    long long ld;       /* row stride of qkv and dqkv: 3·H·dh */
    float scale;        /* 1/sqrt(dh), as the CPU */
    float scale2;       /* scale·log2 e: scores in base-2 units */
    bool vec2;          /* float2 stores to out / dqkv allowed (8-byte aligned) */
    bool vec4;          /* qkv, out, dout 16-byte aligned: the 16-byte staging kernels may run */
    const int *doc_lo;  /* (B, T) or NULL */
    float *qkv;         /* (N, 3HD) */
    float *out;         /* (N, HD) */
    float *lse;         /* (B, H, T) */
    const float *dout;  /* (N, HD) */
    float *dqkv;        /* (N, 3HD) */
    /* the "cuda" table's side copies (ops_cuda.cu): out and dqkv rounded to bf16, dense with the
     * fp32 arrays' indexing, for the products that read them next; NULL: none. dqkv_w32 = false:
     * dqkv exists only as that copy (swax_cuda_dout_bf16_only) */
    bf16 *out_b, *dqkv_b;
    bool dqkv_w32;
    bool staged; /* backward: qb, kb, vb hold the forward's staged copies (kept): stage dO, info, lo only */
    /* scratch (SWAX_SCRATCH_ATTN) */
    bf16 *qb, *kb, *vb, *ob; /* (B, H, Tp, dh) bf16 q, k, v, dO; pad rows zero */
    float2 *info;            /* (B, H, Tp): {lse·log2 e, Δ}; pad rows {0, 0} */
    int *lo;                 /* (B, Tp): lo_i; pad rows INT_MAX */
    float2 *rope;            /* (T, dh/2): {cos, sin} of t·θ^(-2j/dh) */
};

/* Rows [0, rows) of a (·, DH) bf16 global matrix into a shared tile with
 * row stride DH + 8, 16-byte cp.async chunks, all threads of the block. */
template <int DH, int NT>
__device__ __forceinline__ void load_tile(bf16 *s, const bf16 *g, int rows) {
    constexpr int CH = DH / 8, LDS = DH + 8;
    for (int idx = threadIdx.x; idx < rows * CH; idx += NT) {
        const int r = idx / CH, c = (idx % CH) * 8;
        cp_async16(s + r * LDS + c, g + (size_t)r * DH + c);
    }
}

/* Stores v0, v1 at p[0], p[1] (float2 when allowed). */
__device__ __forceinline__ void store2(float *p, float v0, float v1, bool vec2) {
    if (vec2) {
        *reinterpret_cast<float2 *>(p) = make_float2(v0, v1);
    } else {
        p[0] = v0;
        p[1] = v1;
    }
}

/* v0, v1 as bf16 at q[0], q[1] (q 4-byte aligned: an even index of a 4-byte aligned array) */
__device__ __forceinline__ void store2_bf16(bf16 *q, float v0, float v1) {
    *reinterpret_cast<__nv_bfloat162 *>(q) = __floats2bfloat162_rn(v0, v1);
}

/* ---------------------------------------------------------------- staging kernels */

/* (cos, sin) of t·θ^(-2j/dh) for t < T, j < dh/2: attn.cu's rope angles. */
__global__ void rope_table_kernel(float2 *tab, int T, int dh, double theta) {
    const int half = dh / 2;
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)T * half) return;
    const int t = (int)(idx / half), j = (int)(idx % half);
    const double inv_freq = pow(theta, -2.0 * j / dh); /* as swax_rope_f */
    const double ang = (double)t * inv_freq;
    tab[idx] = make_float2((float)cos(ang), (float)sin(ang));
}

/* Forward staging: warp per (b, t < Tp, h). Rotates q and k of row t in
 * place and writes bf16 q, k, v rows; pad rows (t >= T) get zeros. */
template <int DH>
__global__ void __launch_bounds__(STAGE_THREADS) stage_fwd_kernel(const TcArgs a) {
    constexpr int HALF = DH / 2;
    const size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= (size_t)a.B * a.Tp * a.H) return; /* whole warps leave */
    const int h = (int)(warp % a.H);
    const size_t bt = warp / a.H;
    const int t = (int)(bt % a.Tp), b = (int)(bt / a.Tp);
    const size_t srow = (((size_t)b * a.H + h) * a.Tp + t) * DH;
    bf16 *qs = a.qb + srow, *ks = a.kb + srow, *vs = a.vb + srow;
    if (t >= a.T) {
        const bf16 z = __float2bfloat16_rn(0.0f);
        for (int d = lane; d < DH; d += 32) qs[d] = z, ks[d] = z, vs[d] = z;
        if (h == 0 && lane == 0) a.lo[(size_t)b * a.Tp + t] = INT_MAX;
        return;
    }
    float *row = a.qkv + ((size_t)b * a.T + t) * (size_t)a.ld + (size_t)h * DH;
#pragma unroll
    for (int u = 0; u < HALF / 32; u++) {
        const int j = lane + 32 * u;
        const float2 cs = a.rope[(size_t)t * HALF + j];
        const float c = cs.x, s = cs.y;
#pragma unroll
        for (int part = 0; part < 2; part++) {
            float *x = row + (size_t)part * a.HD;
            bf16 *st = part ? ks : qs;
            const float x0 = x[j], x1 = x[j + HALF];
            const float y0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
            const float y1 = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
            x[j] = y0;
            x[j + HALF] = y1;
            st[j] = __float2bfloat16_rn(y0);
            st[j + HALF] = __float2bfloat16_rn(y1);
        }
        const float *v = row + 2 * (size_t)a.HD;
        vs[j] = __float2bfloat16_rn(v[j]);
        vs[j + HALF] = __float2bfloat16_rn(v[j + HALF]);
    }
    if (h == 0 && lane == 0)
        a.lo[(size_t)b * a.Tp + t] = row_lo(a.doc_lo ? a.doc_lo + (size_t)b * a.T : nullptr, t, a.w);
}

/* Backward staging: warp per (b, t < Tp, h): bf16 q, k, v (rotated), dO;
 * info = {lse·log2 e, Δ = Σ dout·out}; lo. Pad rows: zeros, {0, 0}, INT_MAX. */
template <int DH>
__global__ void __launch_bounds__(STAGE_THREADS) stage_bwd_kernel(const TcArgs a) {
    const size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= (size_t)a.B * a.Tp * a.H) return;
    const int h = (int)(warp % a.H);
    const size_t bt = warp / a.H;
    const int t = (int)(bt % a.Tp), b = (int)(bt / a.Tp);
    const size_t sr = ((size_t)b * a.H + h) * a.Tp + t, srow = sr * DH;
    bf16 *qs = a.qb + srow, *ks = a.kb + srow, *vs = a.vb + srow, *os = a.ob + srow;
    if (t >= a.T) {
        const bf16 z = __float2bfloat16_rn(0.0f);
        for (int d = lane; d < DH; d += 32) {
            if (!a.staged) qs[d] = z, ks[d] = z, vs[d] = z;
            os[d] = z;
        }
        if (lane == 0) a.info[sr] = make_float2(0.0f, 0.0f);
        if (h == 0 && lane == 0) a.lo[(size_t)b * a.Tp + t] = INT_MAX;
        return;
    }
    const size_t n = (size_t)b * a.T + t;
    const float *row = a.qkv + n * (size_t)a.ld + (size_t)h * DH;
    const float *o = a.out + n * a.HD + (size_t)h * DH, *g = a.dout + n * a.HD + (size_t)h * DH;
    float acc = 0.0f;
#pragma unroll
    for (int u = 0; u < DH / 32; u++) {
        const int d = lane + 32 * u;
        if (!a.staged) {
            qs[d] = __float2bfloat16_rn(row[d]);
            ks[d] = __float2bfloat16_rn(row[a.HD + d]);
            vs[d] = __float2bfloat16_rn(row[2 * (size_t)a.HD + d]);
        }
        const float gd = g[d];
        os[d] = __float2bfloat16_rn(gd);
        acc = fmaf(gd, o[d], acc);
    }
    acc = swax_warp_sum(acc);
    if (lane == 0) a.info[sr] = make_float2(a.lse[((size_t)b * a.H + h) * a.T + t] * LOG2E, acc);
    if (h == 0 && lane == 0)
        a.lo[(size_t)b * a.Tp + t] = row_lo(a.doc_lo ? a.doc_lo + (size_t)b * a.T : nullptr, t, a.w);
}

/* Version-2 staging (16-byte accesses; needs qkv, out, dout 16-byte aligned):
 * the same values as stage_fwd / stage_bwd with a quarter of the memory
 * instructions. Thread per (b, t < Tp, h, column group u of 4): four
 * consecutive columns per load and bf16x4 (8-byte) stores; u is the fastest
 * index, so a warp reads whole 64- or 128-byte runs of a head row. */

__device__ __forceinline__ uint2 pack4_bf16(float4 v) { return make_uint2(pack_bf16(v.x, v.y), pack_bf16(v.z, v.w)); }
__device__ __forceinline__ float4 ldg4(const float *p) { return *reinterpret_cast<const float4 *>(p); }
__device__ __forceinline__ void st4(float *p, float4 v) { *reinterpret_cast<float4 *>(p) = v; }
__device__ __forceinline__ void stb4(bf16 *p, uint2 v) { *reinterpret_cast<uint2 *>(p) = v; }

/* y0 = x0·c − x1·s, y1 = x1·c + x0·s, unfused (stage_fwd's bits), 4 lanes. */
__device__ __forceinline__ void rot4(float4 &x0, float4 &x1, float4 cs01, float4 cs23) {
    const float c[4] = {cs01.x, cs01.z, cs23.x, cs23.z}, sn[4] = {cs01.y, cs01.w, cs23.y, cs23.w};
    float a0[4] = {x0.x, x0.y, x0.z, x0.w}, a1[4] = {x1.x, x1.y, x1.z, x1.w};
#pragma unroll
    for (int e = 0; e < 4; e++) {
        const float y0 = __fsub_rn(__fmul_rn(a0[e], c[e]), __fmul_rn(a1[e], sn[e]));
        const float y1 = __fadd_rn(__fmul_rn(a1[e], c[e]), __fmul_rn(a0[e], sn[e]));
        a0[e] = y0, a1[e] = y1;
    }
    x0 = make_float4(a0[0], a0[1], a0[2], a0[3]);
    x1 = make_float4(a1[0], a1[1], a1[2], a1[3]);
}

/* Forward: u < dh/8 (groups of the first half; the thread rotates columns
 * 4u..4u+3 with their partners + dh/2, and copies v's same columns). */
template <int DH>
__global__ void __launch_bounds__(STAGE_THREADS) stage_fwd4_kernel(const TcArgs a) {
    constexpr int HALF = DH / 2, U = HALF / 4;
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)a.B * a.Tp * a.H * U) return;
    const int u = (int)(idx % U), j = 4 * u;
    const size_t r = idx / U;
    const int h = (int)(r % a.H);
    const size_t bt = r / a.H;
    const int t = (int)(bt % a.Tp), b = (int)(bt / a.Tp);
    const size_t srow = (((size_t)b * a.H + h) * a.Tp + t) * DH;
    bf16 *qs = a.qb + srow, *ks = a.kb + srow, *vs = a.vb + srow;
    if (t >= a.T) {
        const uint2 z = make_uint2(0u, 0u); /* bf16 +0 */
        stb4(qs + j, z), stb4(qs + j + HALF, z), stb4(ks + j, z), stb4(ks + j + HALF, z);
        stb4(vs + j, z), stb4(vs + j + HALF, z);
        if (h == 0 && u == 0) a.lo[(size_t)b * a.Tp + t] = INT_MAX;
        return;
    }
    float *row = a.qkv + ((size_t)b * a.T + t) * (size_t)a.ld + (size_t)h * DH;
    float *kr = row + a.HD;
    const float *vr = row + 2 * (size_t)a.HD;
    const float2 *rp = a.rope + (size_t)t * HALF + j;
    float4 q0 = ldg4(row + j), q1 = ldg4(row + j + HALF), k0 = ldg4(kr + j), k1 = ldg4(kr + j + HALF);
    const float4 v0 = ldg4(vr + j), v1 = ldg4(vr + j + HALF);
    const float4 cs01 = *reinterpret_cast<const float4 *>(rp), cs23 = *reinterpret_cast<const float4 *>(rp + 2);
    rot4(q0, q1, cs01, cs23);
    rot4(k0, k1, cs01, cs23);
    st4(row + j, q0), st4(row + j + HALF, q1), st4(kr + j, k0), st4(kr + j + HALF, k1);
    stb4(qs + j, pack4_bf16(q0)), stb4(qs + j + HALF, pack4_bf16(q1));
    stb4(ks + j, pack4_bf16(k0)), stb4(ks + j + HALF, pack4_bf16(k1));
    stb4(vs + j, pack4_bf16(v0)), stb4(vs + j + HALF, pack4_bf16(v1));
    if (h == 0 && u == 0)
        a.lo[(size_t)b * a.Tp + t] = row_lo(a.doc_lo ? a.doc_lo + (size_t)b * a.T : nullptr, t, a.w);
}

/* Backward: u < dh/4; Δ = Σ dout·out: each thread's 4 products in column
 * order (fmaf chain), then an xor tree over the dh/4 lanes of the head row
 * (aligned groups of 16 or 32 lanes: U divides 32). */
template <int DH>
__global__ void __launch_bounds__(STAGE_THREADS) stage_bwd4_kernel(const TcArgs a) {
    constexpr int U = DH / 4;
    static_assert(32 % U == 0, "head row inside one warp");
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    /* whole warps stay (the shuffle tree); the grid is a multiple of 32 threads and U | 32 */
    const bool live = idx < (size_t)a.B * a.Tp * a.H * U;
    const size_t ic = live ? idx : 0;
    const int u = (int)(ic % U), j = 4 * u;
    const size_t r = ic / U;
    const int h = (int)(r % a.H);
    const size_t bt = r / a.H;
    const int t = (int)(bt % a.Tp), b = (int)(bt / a.Tp);
    const size_t sr = ((size_t)b * a.H + h) * a.Tp + t, srow = sr * DH + j;
    float acc = 0.0f;
    if (live && t < a.T) {
        const size_t n = (size_t)b * a.T + t;
        if (!a.staged) {
            const float *row = a.qkv + n * (size_t)a.ld + (size_t)h * DH + j;
            const float4 q = ldg4(row), k = ldg4(row + a.HD), v = ldg4(row + 2 * (size_t)a.HD);
            stb4(a.qb + srow, pack4_bf16(q)), stb4(a.kb + srow, pack4_bf16(k)), stb4(a.vb + srow, pack4_bf16(v));
        }
        const float4 o = ldg4(a.out + n * a.HD + (size_t)h * DH + j), gd = ldg4(a.dout + n * a.HD + (size_t)h * DH + j);
        stb4(a.ob + srow, pack4_bf16(gd));
        acc = fmaf(gd.x, o.x, acc);
        acc = fmaf(gd.y, o.y, acc);
        acc = fmaf(gd.z, o.z, acc);
        acc = fmaf(gd.w, o.w, acc);
    } else if (live) {
        const uint2 z = make_uint2(0u, 0u);
        if (!a.staged) stb4(a.qb + srow, z), stb4(a.kb + srow, z), stb4(a.vb + srow, z);
        stb4(a.ob + srow, z);
    }
#pragma unroll
    for (int o = 1; o < U; o <<= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (!live || u != 0) return;
    if (t >= a.T) {
        a.info[sr] = make_float2(0.0f, 0.0f);
        if (h == 0) a.lo[(size_t)b * a.Tp + t] = INT_MAX;
        return;
    }
    a.info[sr] = make_float2(a.lse[((size_t)b * a.H + h) * a.T + t] * LOG2E, acc);
    if (h == 0) a.lo[(size_t)b * a.Tp + t] = row_lo(a.doc_lo ? a.doc_lo + (size_t)b * a.T : nullptr, t, a.w);
}

/* ---------------------------------------------------------------- forward */

/* The forward's epilogue for one accumulator row pair (rows i = row g + 8·hh of a warp's 16):
 * out = o / l (fp32, and the bf16 side copy when asked), lse in natural-log units. */
template <int DH>
__device__ __forceinline__ void store_out_row(const TcArgs &a, int b, int h, int i, int hh, const float (&o)[DH / 8][4],
                                              float l, float m2, int t4) {
    if (i >= a.T) return;
    const float inv = 1.0f / l;
    const size_t off = ((size_t)b * a.T + i) * a.HD + (size_t)h * DH + 2 * t4;
    float *dst = a.out + off;
#pragma unroll
    for (int n = 0; n < DH / 8; n++) {
        const float v0 = o[n][2 * hh] * inv, v1 = o[n][2 * hh + 1] * inv;
        store2(dst + 8 * n, v0, v1, a.vec2);
        if (a.out_b) store2_bf16(a.out_b + off + 8 * n, v0, v1);
    }
    if (t4 == 0) a.lse[((size_t)b * a.H + h) * a.T + i] = (m2 + log2f(l)) * LN2; /* m2: the row max in base-2 units */
}

/* Block per (query tile of 16·MW·NW rows, h, b); warp w owns rows
 * q0 + 16·MW·w + [0, 16·MW); key tiles of BK, double buffered. */
template <int DH, int NW, int MW, int BK, int MINB, bool FX>
__global__ void __launch_bounds__(NW * 32, MINB) fwd_tc_kernel(const TcArgs a) {
    constexpr int NT = NW * 32, BQ = 16 * MW * NW, LDS = DH + 8, KD = DH / 16, ND = DH / 8, NC = BK / 16;
    static_assert(DH % 64 == 0 && BK % 16 == 0 && TPAD % BQ == 0 && TPAD % BK == 0, "tile shape");
    extern __shared__ uint4 smem_u4[];
    bf16 *Qs = reinterpret_cast<bf16 *>(smem_u4); /* BQ × LDS */
    bf16 *Ks = Qs + BQ * LDS;                     /* 2 × BK × LDS */
    bf16 *Vs = Ks + 2 * BK * LDS;                 /* 2 × BK × LDS */

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int T = a.T, q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
    const int qlast = min(q0 + BQ, T) - 1;
    const int *lo_g = a.lo + (size_t)b * a.Tp;
    const size_t sb = ((size_t)b * a.H + h) * a.Tp * DH;
    const bf16 *qg = a.qb + sb, *kg = a.kb + sb, *vg = a.vb + sb;

    /* this thread's rows: wr0 + 16m + g + 8hh */
    const int wr0 = q0 + 16 * MW * warp;
    int lo_r[MW][2];
    int lmin = INT_MAX, lmax = INT_MIN;
#pragma unroll
    for (int m = 0; m < MW; m++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            lo_r[m][hh] = lo_g[wr0 + 16 * m + g + 8 * hh]; /* INT_MAX past T */
            lmin = min(lmin, lo_r[m][hh]);
            lmax = max(lmax, lo_r[m][hh]);
        }
    const int wlo_min = warp_min(lmin), wlo_max = warp_max(lmax);
    const int whi = min(wr0 + 16 * MW - 1, T - 1); /* < wr0: no rows (then wlo_min = INT_MAX) */
    int kmin = INT_MAX;
    for (int r = lane; r < BQ; r += 32) kmin = min(kmin, lo_g[q0 + r]);
    kmin = warp_min(kmin);
    const int kt0 = kmin / BK * BK, ntiles = (qlast - kt0) / BK + 1;

    load_tile<DH, NT>(Qs, qg + (size_t)q0 * DH, BQ);
    load_tile<DH, NT>(Ks, kg + (size_t)kt0 * DH, BK);
    load_tile<DH, NT>(Vs, vg + (size_t)kt0 * DH, BK);
    cp_async_commit();

    uint32_t qf[MW][KD][4];
    float o[MW][ND][4];
    float mrow[MW][2], lrow[MW][2];
#pragma unroll
    for (int m = 0; m < MW; m++) {
#pragma unroll
        for (int n = 0; n < ND; n++) o[m][n][0] = o[m][n][1] = o[m][n][2] = o[m][n][3] = 0.0f;
        mrow[m][0] = mrow[m][1] = -INFINITY;
        lrow[m][0] = lrow[m][1] = 0.0f;
    }

    for (int it = 0; it < ntiles; it++) {
        cp_async_wait_all();
        __syncthreads(); /* tile it landed for all; tile it-1 no longer read */
        if (it == 0) {
#pragma unroll
            for (int m = 0; m < MW; m++)
#pragma unroll
                for (int kk = 0; kk < KD; kk++)
                    ldsm_x4(qf[m][kk], Qs + (16 * (MW * warp + m) + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8);
        }
        if (it + 1 < ntiles) {
            const int nb = (it + 1) & 1, kn = kt0 + (it + 1) * BK;
            load_tile<DH, NT>(Ks + nb * BK * LDS, kg + (size_t)kn * DH, BK);
            load_tile<DH, NT>(Vs + nb * BK * LDS, vg + (size_t)kn * DH, BK);
        }
        cp_async_commit();
        const bf16 *Kc = Ks + (it & 1) * BK * LDS, *Vc = Vs + (it & 1) * BK * LDS;
        const int k0 = kt0 + it * BK;

        bool act[NC], unm[NC];
        bool any = false;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            const int c0 = k0 + 16 * c;
            act[c] = c0 <= whi && c0 + 15 >= wlo_min;
            unm[c] = c0 >= wlo_max && c0 + 15 <= wr0;
            any = any || act[c];
        }
        if (!any) continue; /* warp-uniform */

        float s[MW][2 * NC][4];
#pragma unroll
        for (int m = 0; m < MW; m++)
#pragma unroll
            for (int n = 0; n < 2 * NC; n++) s[m][n][0] = s[m][n][1] = s[m][n][2] = s[m][n][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; kk++)
#pragma unroll
            for (int c = 0; c < NC; c++) {
                if (!act[c]) continue;
                uint32_t kb[4];
                ldsm_x4(kb, Kc + (16 * c + (lane & 7) + 8 * (lane >> 4)) * LDS + kk * 16 + 8 * ((lane >> 3) & 1));
#pragma unroll
                for (int m = 0; m < MW; m++) {
                    mma_bf16(s[m][2 * c], qf[m][kk], kb[0], kb[1]);
                    mma_bf16(s[m][2 * c + 1], qf[m][kk], kb[2], kb[3]);
                }
            }

        /* online softmax, base-2 units */
#pragma unroll
        for (int m = 0; m < MW; m++)
#pragma unroll
            for (int hh = 0; hh < 2; hh++) {
                const int i = wr0 + 16 * m + g + 8 * hh, lo = lo_r[m][hh];
                float mx = -INFINITY;
#pragma unroll
                for (int c = 0; c < NC; c++) {
                    if (!act[c]) continue;
#pragma unroll
                    for (int n = 2 * c; n < 2 * c + 2; n++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const int j = k0 + 8 * n + 2 * t4 + e;
                            /* FX: raw scores (scale2 > 0: the max commutes with it) */
                            float v = FX ? s[m][n][2 * hh + e] : s[m][n][2 * hh + e] * a.scale2;
                            if (!unm[c]) v = (j >= lo && j <= i) ? v : -INFINITY;
                            s[m][n][2 * hh + e] = v;
                            mx = fmaxf(mx, v);
                        }
                }
                mx = quad_max(mx);
                const float mnew = fmaxf(mrow[m][hh], mx);
                /* nothing seen yet: p = 0, alpha = 0; FX: base in base-2 units, p = 2^(s·scale2 − base) one FFMA */
                const float base = mnew == -INFINITY ? 0.0f : (FX ? mnew * a.scale2 : mnew);
                const float alpha = FX ? ex2_ftz(fmaf(mrow[m][hh], a.scale2, -base)) : exp2f(mrow[m][hh] - base);
                mrow[m][hh] = mnew;
                float ls = 0.0f;
#pragma unroll
                for (int c = 0; c < NC; c++) {
                    if (!act[c]) continue;
#pragma unroll
                    for (int n = 2 * c; n < 2 * c + 2; n++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const float p = FX ? ex2_ftz(fmaf(s[m][n][2 * hh + e], a.scale2, -base))
                                               : exp2f(s[m][n][2 * hh + e] - base);
                            s[m][n][2 * hh + e] = p;
                            ls += p;
                        }
                }
                lrow[m][hh] = lrow[m][hh] * alpha + ls;
#pragma unroll
                for (int n = 0; n < ND; n++) o[m][n][2 * hh] *= alpha, o[m][n][2 * hh + 1] *= alpha;
            }

        /* O += P·V */
#pragma unroll
        for (int c = 0; c < NC; c++) {
            if (!act[c]) continue;
            uint32_t pa[MW][4];
#pragma unroll
            for (int m = 0; m < MW; m++) {
                pa[m][0] = pack_bf16(s[m][2 * c][0], s[m][2 * c][1]);
                pa[m][1] = pack_bf16(s[m][2 * c][2], s[m][2 * c][3]);
                pa[m][2] = pack_bf16(s[m][2 * c + 1][0], s[m][2 * c + 1][1]);
                pa[m][3] = pack_bf16(s[m][2 * c + 1][2], s[m][2 * c + 1][3]);
            }
#pragma unroll
            for (int dn = 0; dn < KD; dn++) {
                uint32_t vb[4];
                ldsm_x4_t(vb, Vc + (16 * c + (lane & 7) + 8 * ((lane >> 3) & 1)) * LDS + dn * 16 + 8 * (lane >> 4));
#pragma unroll
                for (int m = 0; m < MW; m++) {
                    mma_bf16(o[m][2 * dn], pa[m], vb[0], vb[1]);
                    mma_bf16(o[m][2 * dn + 1], pa[m], vb[2], vb[3]);
                }
            }
        }
    }

#pragma unroll
    for (int m = 0; m < MW; m++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++)
            store_out_row<DH>(a, b, h, wr0 + 16 * m + g + 8 * hh, hh, o[m], quad_sum(lrow[m][hh]),
                              FX ? mrow[m][hh] * a.scale2 : mrow[m][hh], t4);
}

/* ---------------------------------------------------------------- backward: dQ */

/* Stores one accumulator row pair of dq or dk (times mul), rotated back:
 * columns 8n + 2·t4 + e, n < ND; (n, n + ND/2) are RoPE partners. */
template <int DH>
__device__ __forceinline__ void store_rot_row(float *dst, bf16 *dstb, bool w32, const float (&acc)[DH / 8][4], int hh,
                                              float mul, const float2 *rope_row, int t4, bool vec2) {
    constexpr int ND = DH / 8;
#pragma unroll
    for (int n = 0; n < ND / 2; n++) {
        const int j = 8 * n + 2 * t4;
        const float4 cs = *reinterpret_cast<const float4 *>(rope_row + j); /* (c, s) of j, j + 1 */
        float y0[2], y1[2];
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const float c = e ? cs.z : cs.x, sn = -(e ? cs.w : cs.y); /* inverse rotation */
            const float x0 = acc[n][2 * hh + e] * mul, x1 = acc[n + ND / 2][2 * hh + e] * mul;
            y0[e] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, sn));
            y1[e] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, sn));
        }
        if (w32) {
            store2(dst + j, y0[0], y0[1], vec2);
            store2(dst + j + DH / 2, y1[0], y1[1], vec2);
        }
        if (dstb) {
            store2_bf16(dstb + j, y0[0], y0[1]);
            store2_bf16(dstb + j + DH / 2, y1[0], y1[1]);
        }
    }
}

/* The dQ epilogue for query row i (row g + 8·hh of a warp's 16): scaled, rotated back, stored */
template <int DH>
__device__ __forceinline__ void store_dq_row(const TcArgs &a, int b, int h, int i, int hh, const float (&acc)[DH / 8][4],
                                             int t4) {
    if (i >= a.T) return;
    const size_t off = ((size_t)b * a.T + i) * (size_t)a.ld + (size_t)h * DH;
    store_rot_row<DH>(a.dqkv + off, a.dqkv_b ? a.dqkv_b + off : nullptr, a.dqkv_w32, acc, hh, a.scale,
                      a.rope + (size_t)i * (DH / 2), t4, a.vec2);
}

/* Block per (query tile of 16·MW·NW rows, h, b): dQ = scale · Σ dS·K with
 * dS = P ⊙ (dP − Δ), P = 2^(S·scale2 − lse2). QREG: Q and dO fragments in
 * registers, else re-read from shared memory per use. */
template <int DH, int NW, int MW, int BK, bool QREG, int MINB, bool FX>
__global__ void __launch_bounds__(NW * 32, MINB) bwd_dq_tc_kernel(const TcArgs a) {
    constexpr int NT = NW * 32, BQ = 16 * MW * NW, LDS = DH + 8, KD = DH / 16, ND = DH / 8, NC = BK / 16;
    constexpr int HC = 2; /* chunks per step: 32 keys */
    static_assert(DH % 64 == 0 && BK % (16 * HC) == 0 && TPAD % BQ == 0 && TPAD % BK == 0, "tile shape");
    extern __shared__ uint4 smem_u4[];
    bf16 *Qs = reinterpret_cast<bf16 *>(smem_u4); /* BQ × LDS */
    bf16 *dOs = Qs + BQ * LDS;                    /* BQ × LDS */
    bf16 *Ks = dOs + BQ * LDS;                    /* 2 × BK × LDS */
    bf16 *Vs = Ks + 2 * BK * LDS;                 /* 2 × BK × LDS */

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int T = a.T, q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
    const int qlast = min(q0 + BQ, T) - 1;
    const int *lo_g = a.lo + (size_t)b * a.Tp;
    const size_t sr = ((size_t)b * a.H + h) * a.Tp, sb = sr * DH;
    const bf16 *qg = a.qb + sb, *kg = a.kb + sb, *vg = a.vb + sb, *og = a.ob + sb;

    const int wr0 = q0 + 16 * MW * warp;
    int lo_r[MW][2];
    float lse_r[MW][2], dl_r[MW][2];
    int lmin = INT_MAX, lmax = INT_MIN;
#pragma unroll
    for (int m = 0; m < MW; m++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int i = wr0 + 16 * m + g + 8 * hh; /* < Tp */
            lo_r[m][hh] = lo_g[i];
            const float2 inf = a.info[sr + i];
            lse_r[m][hh] = inf.x, dl_r[m][hh] = inf.y;
            lmin = min(lmin, lo_r[m][hh]);
            lmax = max(lmax, lo_r[m][hh]);
        }
    const int wlo_min = warp_min(lmin), wlo_max = warp_max(lmax);
    const int whi = min(wr0 + 16 * MW - 1, T - 1);
    int kmin = INT_MAX;
    for (int r = lane; r < BQ; r += 32) kmin = min(kmin, lo_g[q0 + r]);
    kmin = warp_min(kmin);
    const int kt0 = kmin / BK * BK, ntiles = (qlast - kt0) / BK + 1;

    load_tile<DH, NT>(Qs, qg + (size_t)q0 * DH, BQ);
    load_tile<DH, NT>(dOs, og + (size_t)q0 * DH, BQ);
    load_tile<DH, NT>(Ks, kg + (size_t)kt0 * DH, BK);
    load_tile<DH, NT>(Vs, vg + (size_t)kt0 * DH, BK);
    cp_async_commit();

    uint32_t qf[QREG ? MW : 1][QREG ? KD : 1][4], df[QREG ? MW : 1][QREG ? KD : 1][4];
    float acc[MW][ND][4];
#pragma unroll
    for (int m = 0; m < MW; m++)
#pragma unroll
        for (int n = 0; n < ND; n++) acc[m][n][0] = acc[m][n][1] = acc[m][n][2] = acc[m][n][3] = 0.0f;

    for (int it = 0; it < ntiles; it++) {
        cp_async_wait_all();
        __syncthreads();
        if (QREG && it == 0) {
#pragma unroll
            for (int m = 0; m < (QREG ? MW : 1); m++)
#pragma unroll
                for (int kk = 0; kk < (QREG ? KD : 1); kk++) {
                    const int off = (16 * (MW * warp + m) + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8;
                    ldsm_x4(qf[m][kk], Qs + off);
                    ldsm_x4(df[m][kk], dOs + off);
                }
        }
        if (it + 1 < ntiles) {
            const int nb = (it + 1) & 1, kn = kt0 + (it + 1) * BK;
            load_tile<DH, NT>(Ks + nb * BK * LDS, kg + (size_t)kn * DH, BK);
            load_tile<DH, NT>(Vs + nb * BK * LDS, vg + (size_t)kn * DH, BK);
        }
        cp_async_commit();
        const bf16 *Kc = Ks + (it & 1) * BK * LDS, *Vc = Vs + (it & 1) * BK * LDS;
        const int k0 = kt0 + it * BK;

#pragma unroll
        for (int cb = 0; cb < NC; cb += HC) {
            bool act[HC], unm[HC];
            bool any = false;
#pragma unroll
            for (int c = 0; c < HC; c++) {
                const int c0 = k0 + 16 * (cb + c);
                act[c] = c0 <= whi && c0 + 15 >= wlo_min;
                unm[c] = c0 >= wlo_max && c0 + 15 <= wr0;
                any = any || act[c];
            }
            if (!any) continue;
            float s[MW][2 * HC][4], dp[MW][2 * HC][4];
#pragma unroll
            for (int m = 0; m < MW; m++)
#pragma unroll
                for (int n = 0; n < 2 * HC; n++)
#pragma unroll
                    for (int e = 0; e < 4; e++) s[m][n][e] = dp[m][n][e] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KD; kk++) {
                uint32_t qa[MW][4], da[MW][4];
#pragma unroll
                for (int m = 0; m < MW; m++) {
                    if (QREG) {
#pragma unroll
                        for (int e = 0; e < 4; e++) qa[m][e] = qf[QREG ? m : 0][QREG ? kk : 0][e], da[m][e] = df[QREG ? m : 0][QREG ? kk : 0][e];
                    } else {
                        const int off = (16 * (MW * warp + m) + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8;
                        ldsm_x4(qa[m], Qs + off);
                        ldsm_x4(da[m], dOs + off);
                    }
                }
#pragma unroll
                for (int c = 0; c < HC; c++) {
                    if (!act[c]) continue;
                    const int off = (16 * (cb + c) + (lane & 7) + 8 * (lane >> 4)) * LDS + kk * 16 + 8 * ((lane >> 3) & 1);
                    uint32_t kb[4], vb[4];
                    ldsm_x4(kb, Kc + off);
                    ldsm_x4(vb, Vc + off);
#pragma unroll
                    for (int m = 0; m < MW; m++) {
                        mma_bf16(s[m][2 * c], qa[m], kb[0], kb[1]);
                        mma_bf16(s[m][2 * c + 1], qa[m], kb[2], kb[3]);
                        mma_bf16(dp[m][2 * c], da[m], vb[0], vb[1]);
                        mma_bf16(dp[m][2 * c + 1], da[m], vb[2], vb[3]);
                    }
                }
            }
            /* dS = P ⊙ (dP − Δ) into s */
#pragma unroll
            for (int m = 0; m < MW; m++)
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const int i = wr0 + 16 * m + g + 8 * hh, lo = lo_r[m][hh];
#pragma unroll
                    for (int c = 0; c < HC; c++) {
                        if (!act[c]) continue;
#pragma unroll
                        for (int n = 2 * c; n < 2 * c + 2; n++)
#pragma unroll
                            for (int e = 0; e < 2; e++) {
                                const int j = k0 + 16 * cb + 8 * n + 2 * t4 + e;
                                const bool ok = unm[c] || (j >= lo && j <= i);
                                const float p = ok ? (FX ? ex2_ftz(fmaf(s[m][n][2 * hh + e], a.scale2, -lse_r[m][hh]))
                                                     : exp2f(s[m][n][2 * hh + e] * a.scale2 - lse_r[m][hh])) : 0.0f;
                                s[m][n][2 * hh + e] = p * (dp[m][n][2 * hh + e] - dl_r[m][hh]);
                            }
                    }
                }
            /* dQ += dS·K */
#pragma unroll
            for (int c = 0; c < HC; c++) {
                if (!act[c]) continue;
                uint32_t pa[MW][4];
#pragma unroll
                for (int m = 0; m < MW; m++) {
                    pa[m][0] = pack_bf16(s[m][2 * c][0], s[m][2 * c][1]);
                    pa[m][1] = pack_bf16(s[m][2 * c][2], s[m][2 * c][3]);
                    pa[m][2] = pack_bf16(s[m][2 * c + 1][0], s[m][2 * c + 1][1]);
                    pa[m][3] = pack_bf16(s[m][2 * c + 1][2], s[m][2 * c + 1][3]);
                }
#pragma unroll
                for (int dn = 0; dn < KD; dn++) {
                    uint32_t kb[4];
                    ldsm_x4_t(kb, Kc + (16 * (cb + c) + (lane & 7) + 8 * ((lane >> 3) & 1)) * LDS + dn * 16 + 8 * (lane >> 4));
#pragma unroll
                    for (int m = 0; m < MW; m++) {
                        mma_bf16(acc[m][2 * dn], pa[m], kb[0], kb[1]);
                        mma_bf16(acc[m][2 * dn + 1], pa[m], kb[2], kb[3]);
                    }
                }
            }
        }
    }

#pragma unroll
    for (int m = 0; m < MW; m++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) store_dq_row<DH>(a, b, h, wr0 + 16 * m + g + 8 * hh, hh, acc[m], t4);
}

/* dK/dV kernels: the number of BQ-query tiles from k0 that reach a key in [k0, klast] (the last
 * query that sees one: max i <= min(T - 1, klast + w - 1) with lo_i <= klast); one warp's lanes */
__device__ __forceinline__ int dkdv_query_tiles(const TcArgs &a, const int *lo_g, int k0, int klast, int BQ) {
    int qend = INT_MIN;
    for (int i = k0 + (threadIdx.x & 31); i <= min(a.T - 1, klast + a.w - 1); i += 32)
        if (lo_g[i] <= klast) qend = max(qend, i);
    qend = warp_max(qend); /* >= klast: lo_i <= i */
    return (qend - k0) / BQ + 1;
}
/* {lse2, Δ} and lo of BQ queries from qs into shared memory (cp.async, all NT threads) */
template <int NT, int BQ>
__device__ __forceinline__ void load_info_lo(float2 *infs, int *los, const float2 *ig, const int *lo_g, int qs) {
    /* BQ float2 = BQ/2 chunks; BQ ints = BQ/4 chunks */
    for (int idx = threadIdx.x; idx < BQ / 2 + BQ / 4; idx += NT) {
        if (idx < BQ / 2)
            cp_async16(infs + 2 * idx, ig + qs + 2 * idx);
        else
            cp_async16(los + 4 * (idx - BQ / 2), lo_g + qs + 4 * (idx - BQ / 2));
    }
}
/* The dK/dV epilogue for key row j (row g + 8·hh of a warp's 16): dk rotated back and scaled, dv */
template <int DH>
__device__ __forceinline__ void store_dkdv_row(const TcArgs &a, int b, int h, int j, int hh, const float (&dk)[DH / 8][4],
                                               const float (&dv)[DH / 8][4], int t4) {
    if (j >= a.T) return;
    const size_t off = ((size_t)b * a.T + j) * (size_t)a.ld + (size_t)h * DH;
    float *row = a.dqkv + off;
    bf16 *rowb = a.dqkv_b ? a.dqkv_b + off : nullptr;
    store_rot_row<DH>(row + a.HD, rowb ? rowb + a.HD : nullptr, a.dqkv_w32, dk, hh, a.scale, a.rope + (size_t)j * (DH / 2), t4,
                      a.vec2);
    float *dst = row + 2 * (size_t)a.HD + 2 * t4;
#pragma unroll
    for (int n = 0; n < DH / 8; n++) {
        if (a.dqkv_w32) store2(dst + 8 * n, dv[n][2 * hh], dv[n][2 * hh + 1], a.vec2);
        if (rowb) store2_bf16(rowb + 2 * (size_t)a.HD + 2 * t4 + 8 * n, dv[n][2 * hh], dv[n][2 * hh + 1]);
    }
}

/* ---------------------------------------------------------------- backward: dK, dV */

/* Block per (key tile of 16·NW keys, h, b); warp w owns keys k0 + 16w +
 * [0, 16). Query tiles of BQ = 64 (Q, dO, {lse2, Δ}, lo), double buffered,
 * over [k0, the last query that sees a key of the tile]. Transposed scores:
 * Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ (keys are the rows), Pᵀ, dSᵀ; dV += Pᵀ·dO,
 * dK += dSᵀ·Q. KREG: K and V fragments in registers, else from shared. */
template <int DH, int NW, bool KREG, int MINB, bool FX>
__global__ void __launch_bounds__(NW * 32, MINB) bwd_dkdv_tc_kernel(const TcArgs a) {
    constexpr int NT = NW * 32, BKV = 16 * NW, BQ = 64, LDS = DH + 8, KD = DH / 16, ND = DH / 8, NC = BQ / 16;
    constexpr int HC = 2; /* query chunks per step: 32 queries */
    static_assert(DH % 64 == 0 && BKV % BQ == 0 && TPAD % BKV == 0, "tile shape");
    extern __shared__ uint4 smem_u4[];
    bf16 *Ks = reinterpret_cast<bf16 *>(smem_u4);                     /* BKV × LDS */
    bf16 *Vs = Ks + BKV * LDS;                                        /* BKV × LDS */
    bf16 *Qs = Vs + BKV * LDS;                                        /* 2 × BQ × LDS */
    bf16 *dOs = Qs + 2 * BQ * LDS;                                    /* 2 × BQ × LDS */
    float2 *infs = reinterpret_cast<float2 *>(dOs + 2 * BQ * LDS);     /* 2 × BQ */
    int *los = reinterpret_cast<int *>(infs + 2 * BQ);                /* 2 × BQ */

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int T = a.T, k0 = blockIdx.x * BKV, h = blockIdx.y, b = blockIdx.z;
    const int klast = min(k0 + BKV, T) - 1;
    const int *lo_g = a.lo + (size_t)b * a.Tp;
    const size_t sr = ((size_t)b * a.H + h) * a.Tp, sb = sr * DH;
    const bf16 *qg = a.qb + sb, *kg = a.kb + sb, *vg = a.vb + sb, *og = a.ob + sb;
    const float2 *ig = a.info + sr;

    const int ntiles = dkdv_query_tiles(a, lo_g, k0, klast, BQ);

    const int kw0 = k0 + 16 * warp, kwhi = min(kw0 + 15, T - 1); /* kwhi < kw0: the warp has no keys */

    auto load_q = [&](int buf, int qs) {
        load_tile<DH, NT>(Qs + buf * BQ * LDS, qg + (size_t)qs * DH, BQ);
        load_tile<DH, NT>(dOs + buf * BQ * LDS, og + (size_t)qs * DH, BQ);
        load_info_lo<NT, BQ>(infs + buf * BQ, los + buf * BQ, ig, lo_g, qs);
    };

    load_tile<DH, NT>(Ks, kg + (size_t)k0 * DH, BKV);
    load_tile<DH, NT>(Vs, vg + (size_t)k0 * DH, BKV);
    load_q(0, k0);
    cp_async_commit();

    uint32_t kf[KREG ? KD : 1][4], vf[KREG ? KD : 1][4];
    float dk[ND][4], dv[ND][4];
#pragma unroll
    for (int n = 0; n < ND; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[n][e] = dv[n][e] = 0.0f;

    for (int it = 0; it < ntiles; it++) {
        cp_async_wait_all();
        __syncthreads();
        if (KREG && it == 0) {
#pragma unroll
            for (int kk = 0; kk < (KREG ? KD : 1); kk++) {
                const int off = (16 * warp + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8;
                ldsm_x4(kf[kk], Ks + off);
                ldsm_x4(vf[kk], Vs + off);
            }
        }
        if (it + 1 < ntiles) load_q((it + 1) & 1, k0 + (it + 1) * BQ);
        cp_async_commit();
        const int buf = it & 1, qs = k0 + it * BQ;
        const bf16 *Qc = Qs + buf * BQ * LDS, *dOc = dOs + buf * BQ * LDS;
        const float2 *infc = infs + buf * BQ;
        const int *loc = los + buf * BQ;

        /* lo bounds per 16-query chunk: lanes 8c..8c+7 hold queries 16c..16c+15 */
        const int2 l2 = lds_i2(loc + 2 * lane);
        int cmn = min(l2.x, l2.y), cmx = max(l2.x, l2.y);
#pragma unroll
        for (int o = 1; o < 8; o <<= 1) {
            cmn = min(cmn, __shfl_xor_sync(0xffffffffu, cmn, o));
            cmx = max(cmx, __shfl_xor_sync(0xffffffffu, cmx, o));
        }
        bool act[NC], unm[NC];
#pragma unroll
        for (int c = 0; c < NC; c++) {
            const int mn = __shfl_sync(0xffffffffu, cmn, 8 * c), mx = __shfl_sync(0xffffffffu, cmx, 8 * c);
            const int c0 = qs + 16 * c;
            act[c] = kw0 <= kwhi && c0 + 15 >= kw0 && mn <= kwhi;
            unm[c] = mx <= kw0 && c0 >= kw0 + 15;
        }

#pragma unroll
        for (int cb = 0; cb < NC; cb += HC) {
            bool any = false;
#pragma unroll
            for (int c = 0; c < HC; c++) any = any || act[cb + c];
            if (!any) continue;
            float s[2 * HC][4], dp[2 * HC][4];
#pragma unroll
            for (int n = 0; n < 2 * HC; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[n][e] = dp[n][e] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KD; kk++) {
                uint32_t ka[4], va[4];
                if (KREG) {
#pragma unroll
                    for (int e = 0; e < 4; e++) ka[e] = kf[KREG ? kk : 0][e], va[e] = vf[KREG ? kk : 0][e];
                } else {
                    const int off = (16 * warp + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8;
                    ldsm_x4(ka, Ks + off);
                    ldsm_x4(va, Vs + off);
                }
#pragma unroll
                for (int c = 0; c < HC; c++) {
                    if (!act[cb + c]) continue;
                    const int off = (16 * (cb + c) + (lane & 7) + 8 * (lane >> 4)) * LDS + kk * 16 + 8 * ((lane >> 3) & 1);
                    uint32_t qb[4], ob[4];
                    ldsm_x4(qb, Qc + off);
                    ldsm_x4(ob, dOc + off);
                    mma_bf16(s[2 * c], ka, qb[0], qb[1]);
                    mma_bf16(s[2 * c + 1], ka, qb[2], qb[3]);
                    mma_bf16(dp[2 * c], va, ob[0], ob[1]);
                    mma_bf16(dp[2 * c + 1], va, ob[2], ob[3]);
                }
            }
            /* Pᵀ into s, dSᵀ into dp */
#pragma unroll
            for (int c = 0; c < HC; c++) {
                if (!act[cb + c]) continue;
#pragma unroll
                for (int n = 2 * c; n < 2 * c + 2; n++) {
                    const int r = 16 * cb + 8 * n + 2 * t4; /* query offset in the tile (e = 0) */
                    const float4 inf = lds_f4(infc + r); /* lse2, Δ of r, r + 1 */
                    const int2 lq = lds_i2(loc + r);
#pragma unroll
                    for (int hh = 0; hh < 2; hh++) {
                        const int j = kw0 + g + 8 * hh;
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const int i = qs + r + e, lo = e ? lq.y : lq.x;
                            const float lse2 = e ? inf.z : inf.x, dl = e ? inf.w : inf.y;
                            const bool ok = unm[cb + c] || (j >= lo && j <= i);
                            const float p = ok ? (FX ? ex2_ftz(fmaf(s[n][2 * hh + e], a.scale2, -lse2))
                                                 : exp2f(s[n][2 * hh + e] * a.scale2 - lse2)) : 0.0f;
                            s[n][2 * hh + e] = p;
                            dp[n][2 * hh + e] = p * (dp[n][2 * hh + e] - dl);
                        }
                    }
                }
            }
            /* dV += Pᵀ·dO, dK += dSᵀ·Q */
#pragma unroll
            for (int c = 0; c < HC; c++) {
                if (!act[cb + c]) continue;
                uint32_t pa[4], da[4];
                pa[0] = pack_bf16(s[2 * c][0], s[2 * c][1]);
                pa[1] = pack_bf16(s[2 * c][2], s[2 * c][3]);
                pa[2] = pack_bf16(s[2 * c + 1][0], s[2 * c + 1][1]);
                pa[3] = pack_bf16(s[2 * c + 1][2], s[2 * c + 1][3]);
                da[0] = pack_bf16(dp[2 * c][0], dp[2 * c][1]);
                da[1] = pack_bf16(dp[2 * c][2], dp[2 * c][3]);
                da[2] = pack_bf16(dp[2 * c + 1][0], dp[2 * c + 1][1]);
                da[3] = pack_bf16(dp[2 * c + 1][2], dp[2 * c + 1][3]);
#pragma unroll
                for (int dn = 0; dn < KD; dn++) {
                    const int off = (16 * (cb + c) + (lane & 7) + 8 * ((lane >> 3) & 1)) * LDS + dn * 16 + 8 * (lane >> 4);
                    uint32_t ob[4], qb[4];
                    ldsm_x4_t(ob, dOc + off);
                    ldsm_x4_t(qb, Qc + off);
                    mma_bf16(dv[2 * dn], pa, ob[0], ob[1]);
                    mma_bf16(dv[2 * dn + 1], pa, ob[2], ob[3]);
                    mma_bf16(dk[2 * dn], da, qb[0], qb[1]);
                    mma_bf16(dk[2 * dn + 1], da, qb[2], qb[3]);
                }
            }
        }
    }

#pragma unroll
    for (int hh = 0; hh < 2; hh++) store_dkdv_row<DH>(a, b, h, kw0 + g + 8 * hh, hh, dk, dv, t4);
}

/* ---------------------------------------------------------------- Hopper: wgmma kernels (dh 64)
 *
 * The same three kernels as above (forward, dQ, dK/dV: the same masks, the
 * same online softmax in base-2 units, the same epilogues and scratch), with
 * the products on wgmma (wgmma.cuh) instead of mma.sync: a warpgroup (4
 * warps) owns 64 rows and issues each product as m64nNk16 instructions whose
 * B operand (and A, where it is not P or dS in registers) the tensor cores
 * read from shared memory, so no ldmatrix runs and a product of 64 × N × 64
 * is 4 instructions. Tiles are 128-byte-swizzled (wgmma.cuh), loaded with
 * cp.async into their swizzled places from the staged (B, H, Tp, 64) copies.
 * The accumulator fragment of a warp is mma.sync's (rows 16·warp + g, + 8;
 * columns 8n + 2·t4 + {0, 1}), so the softmax, the masks and the stores are
 * the code above with MW = 1. Each product is issued, committed and waited
 * for before its result is used, so overlap comes from the other warpgroups
 * of the SM, except in forward 6 and dQ 5 (fwd_wg2_kernel, bwd_dq_wg2_kernel:
 * the next tile's products in flight during this tile's softmax). Rounding: the same operands
 * rounded the same way, accumulated in fp32 in the tensor cores' order
 * (which differs from mma.sync's: results differ in the last bits, not in
 * tolerance). Variant 3 and up of g_tiles_* (dh 64 only). */

/* rows × 64 bf16 of g (row stride 64) into the swizzled tile at shared address s; all NT threads */
template <int NT>
__device__ __forceinline__ void load_sw(uint32_t s, const bf16 *g, int rows) {
    for (int idx = threadIdx.x; idx < rows * 8; idx += NT) {
        const int r = idx >> 3, c = idx & 7;
        cp_async16(s + (uint32_t)(r * 128 + ((c ^ (r & 7)) << 4)), g + (size_t)r * 64 + c * 8);
    }
}
/* Every thread's cp.async copies complete, made visible to the tensor cores (async proxy), and the
 * block past a barrier: the tiles just loaded may be read by wgmma, the ones read before rewritten */
__device__ __forceinline__ void wg_landed() {
    cp_async_wait_all();
    swax_wg::fence_smem();
    __syncthreads();
}
/* The dynamic shared memory's first 1024-aligned address (launchers add 1024 bytes) */
__device__ __forceinline__ uint32_t smem_1k(const void *base) {
    const uint32_t s = smem_addr(base);
    return (s + 1023u) & ~1023u;
}
/* S (64 × N) = A (64 rows at sa) · B (N rows at sb)ᵀ over dh 64: 4 k steps */
template <int N>
__device__ __forceinline__ void wg_qk(float (&s)[N / 8][4], uint32_t sa, uint32_t sb) {
    float(&d)[N / 2] = reinterpret_cast<float(&)[N / 2]>(s);
#pragma unroll
    for (int ks = 0; ks < 4; ks++) {
        if constexpr (N == 128)
            swax_wg::mma_ss_n128(d, swax_wg::desc_sw128(sa + 32 * ks, 1024), swax_wg::desc_sw128(sb + 32 * ks, 1024), ks > 0);
        else
            swax_wg::mma_ss_n64(d, swax_wg::desc_sw128(sa + 32 * ks, 1024), swax_wg::desc_sw128(sb + 32 * ks, 1024), ks > 0);
    }
}
/* acc (64 × 64) += P (64 × 16·KS, A fragments in registers) · B (16·KS rows of 64 at sb) */
template <int KS>
__device__ __forceinline__ void wg_pv(float (&acc)[8][4], const uint32_t (&pa)[KS][4], uint32_t sb) {
    float(&d)[32] = reinterpret_cast<float(&)[32]>(acc);
#pragma unroll
    for (int ks = 0; ks < KS; ks++) swax_wg::mma_rs_n64_t(d, pa[ks], swax_wg::desc_sw128(sb + 2048 * ks, 1024), 1);
}
template <int R> __device__ __forceinline__ void wg_keep(float (&x)[R][4]) {
    swax_wg::fence_regs(reinterpret_cast<float(&)[4 * R]>(x));
}
/* Two adjacent n8 tiles of an accumulator as an A fragment (rows g, g + 8; 16 columns) */
__device__ __forceinline__ void pack_a(uint32_t (&pa)[4], const float (&s0)[4], const float (&s1)[4]) {
    pa[0] = pack_bf16(s0[0], s0[1]);
    pa[1] = pack_bf16(s0[2], s0[3]);
    pa[2] = pack_bf16(s1[0], s1[1]);
    pa[3] = pack_bf16(s1[2], s1[3]);
}
/* acc (64 × 64) += P (64 × 8·NB, the accumulator p of a product, packed to A fragments) · B (8·NB rows
 * of 64 at sb), issued, committed and waited for (with any product still in flight) */
template <int NB>
__device__ __forceinline__ void wg_pv_step(float (&acc)[8][4], const float (&p)[NB][4], uint32_t sb) {
    uint32_t pa[NB / 2][4];
#pragma unroll
    for (int ks = 0; ks < NB / 2; ks++) pack_a(pa[ks], p[2 * ks], p[2 * ks + 1]);
    wg_keep(acc);
    swax_wg::fence();
    wg_pv<NB / 2>(acc, pa, sb);
    swax_wg::commit();
    swax_wg::wait<0>();
    wg_keep(acc);
}
/* The next tile's accumulator (its product waited for) becomes this tile's */
template <int NB> __device__ __forceinline__ void wg_take(float (&cur)[NB][4], float (&next)[NB][4]) {
    wg_keep(next);
#pragma unroll
    for (int n = 0; n < NB; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) cur[n][e] = next[n][e];
}

/* A query-tile block's plan (wgmma kernels): its warpgroup's lo range and last row (every warp reads
 * all 64 rows: the same values in the 4 warps, so decisions on them are warpgroup-uniform), and the
 * key tiles of BK from the first one any of the block's BQ rows sees to the one of its last row */
struct WgPlan {
    int lo_min, lo_max, hi, kt0, ntiles;
};
template <int BQ, int BK>
__device__ __forceinline__ WgPlan wg_plan(const int *lo_g, int q0, int g0, int T) {
    const int lane = threadIdx.x & 31;
    const int la = lo_g[g0 + lane], lb = lo_g[g0 + 32 + lane];
    WgPlan p;
    p.lo_min = warp_min(min(la, lb)), p.lo_max = warp_max(max(la, lb));
    p.hi = min(g0 + 63, T - 1);
    int kmin = INT_MAX;
    for (int r = lane; r < BQ; r += 32) kmin = min(kmin, lo_g[q0 + r]);
    kmin = warp_min(kmin);
    p.kt0 = kmin / BK * BK;
    p.ntiles = (min(q0 + BQ, T) - 1 - p.kt0) / BK + 1;
    return p;
}
/* Key and value tile `it` of BK rows from kt0 into buffer it % NBUF of the swizzled K and V tiles */
template <int NT, int BK, int NBUF = 2>
__device__ __forceinline__ void wg_load_kv(uint32_t sK, uint32_t sV, const bf16 *kg, const bf16 *vg, int kt0, int it) {
    const uint32_t nb = (uint32_t)(it % NBUF) * BK * 128;
    const size_t r0 = (size_t)(kt0 + it * BK) * 64;
    load_sw<NT>(sK + nb, kg + r0, BK);
    load_sw<NT>(sV + nb, vg + r0, BK);
}

/* One key tile of the wgmma forwards' online softmax (base-2 units, raw scores until the exponent;
 * the mma.sync forward's FX arithmetic): rows i0 and i0 + 8 (hh), masked unless unm; s becomes P,
 * o is rescaled, the running max and sum move on. */
template <int NB>
__device__ __forceinline__ void wg_softmax(float (&s)[NB][4], float (&o)[8][4], float (&mrow)[2], float (&lrow)[2], int k0,
                                           int i0, const int (&lo_r)[2], bool unm, float scale2, int t4) {
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        const int i = i0 + 8 * hh, lo = lo_r[hh];
        float mx = -INFINITY;
#pragma unroll
        for (int n = 0; n < NB; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int j = k0 + 8 * n + 2 * t4 + e;
                float v = s[n][2 * hh + e];
                if (!unm) v = (j >= lo && j <= i) ? v : -INFINITY;
                s[n][2 * hh + e] = v;
                mx = fmaxf(mx, v);
            }
        mx = quad_max(mx);
        const float mnew = fmaxf(mrow[hh], mx);
        const float base = mnew == -INFINITY ? 0.0f : mnew * scale2;
        const float alpha = ex2_ftz(fmaf(mrow[hh], scale2, -base));
        mrow[hh] = mnew;
        float ls = 0.0f;
#pragma unroll
        for (int n = 0; n < NB; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const float p = ex2_ftz(fmaf(s[n][2 * hh + e], scale2, -base));
                s[n][2 * hh + e] = p;
                ls += p;
            }
        lrow[hh] = lrow[hh] * alpha + ls;
#pragma unroll
        for (int n = 0; n < 8; n++) o[n][2 * hh] *= alpha, o[n][2 * hh + 1] *= alpha;
    }
}

/* Forward: block per (query tile of 64·NWG rows, h, b), key tiles of BK, double buffered. */
template <int NWG, int BK, int MINB>
__global__ void __launch_bounds__(NWG * 128, MINB) fwd_wg_kernel(const TcArgs a) {
    constexpr int DH = 64, NT = NWG * 128, BQ = 64 * NWG, NB = BK / 8;
    extern __shared__ uint4 smem_u4[];
    const uint32_t sQ = smem_1k(smem_u4), sK = sQ + BQ * 128, sV = sK + 2 * BK * 128;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int wg = warp >> 2, wq = warp & 3;
    const int T = a.T, q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
    const int *lo_g = a.lo + (size_t)b * a.Tp;
    const size_t sb = ((size_t)b * a.H + h) * a.Tp * DH;
    const bf16 *qg = a.qb + sb, *kg = a.kb + sb, *vg = a.vb + sb;

    const int g0 = q0 + 64 * wg;      /* the warpgroup's first row */
    const int wr0 = g0 + 16 * wq;     /* the warp's */
    int lo_r[2];
    lo_r[0] = lo_g[wr0 + g], lo_r[1] = lo_g[wr0 + g + 8];
    const WgPlan pl = wg_plan<BQ, BK>(lo_g, q0, g0, T);
    const int glo_min = pl.lo_min, glo_max = pl.lo_max, ghi = pl.hi, kt0 = pl.kt0, ntiles = pl.ntiles;

    load_sw<NT>(sQ, qg + (size_t)q0 * DH, BQ);
    wg_load_kv<NT, BK>(sK, sV, kg, vg, kt0, 0);
    cp_async_commit();

    float o[8][4];
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;

    for (int it = 0; it < ntiles; it++) {
        wg_landed(); /* tile it landed for all; tile it-1 no longer read */
        if (it + 1 < ntiles) wg_load_kv<NT, BK>(sK, sV, kg, vg, kt0, it + 1);
        cp_async_commit();
        const uint32_t cb = (it & 1) * BK * 128;
        const int k0 = kt0 + it * BK;
        if (!(k0 <= ghi && k0 + BK - 1 >= glo_min)) continue; /* warpgroup-uniform */
        const bool unm = k0 >= glo_max && k0 + BK - 1 <= g0;

        float s[NB][4];
        swax_wg::fence();
        wg_qk<BK>(s, sQ + 64 * 128 * wg, sK + cb);
        swax_wg::commit();
        swax_wg::wait<0>();
        wg_keep(s);

        wg_softmax<NB>(s, o, mrow, lrow, k0, wr0 + g, lo_r, unm, a.scale2, t4);
        wg_pv_step<NB>(o, s, sV + cb);
    }

#pragma unroll
    for (int hh = 0; hh < 2; hh++) store_out_row<DH>(a, b, h, wr0 + g + 8 * hh, hh, o, quad_sum(lrow[hh]), mrow[hh] * a.scale2, t4);
}

/* Forward with the next tile's scores in flight during this tile's softmax (FlashAttention-3's
 * intra-warpgroup overlap, without its warp specialisation): block = one warpgroup of 64 rows,
 * key tiles of 64 in three buffers (tile it + 2 loads while S of tile it + 1 runs on the tensor
 * cores and the warps turn S of tile it into P). Every tile from kt0 is visible to some row of the
 * block (one warpgroup), so no tile is skipped. Tile variant 6. */
template <int MINB>
__global__ void __launch_bounds__(128, MINB) fwd_wg2_kernel(const TcArgs a) {
    constexpr int DH = 64, NT = 128, BQ = 64, BK = 64, NB = 8;
    extern __shared__ uint4 smem_u4[];
    const uint32_t sQ = smem_1k(smem_u4), sK = sQ + BQ * 128, sV = sK + 3 * BK * 128;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int T = a.T, q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
    const int *lo_g = a.lo + (size_t)b * a.Tp;
    const size_t sb = ((size_t)b * a.H + h) * a.Tp * DH;
    const bf16 *qg = a.qb + sb, *kg = a.kb + sb, *vg = a.vb + sb;
    const int wr0 = q0 + 16 * warp;
    const int lo_r[2] = {lo_g[wr0 + g], lo_g[wr0 + g + 8]};
    const WgPlan pl = wg_plan<BQ, BK>(lo_g, q0, q0, T);
    const int kt0 = pl.kt0, ntiles = pl.ntiles;
    /* tile it of K and V into buffer it % 3 */
    auto load_kv = [&](int it) { wg_load_kv<NT, BK, 3>(sK, sV, kg, vg, kt0, it); };

    load_sw<NT>(sQ, qg + (size_t)q0 * DH, BQ);
    load_kv(0);
    if (ntiles > 1) load_kv(1);
    cp_async_commit();
    wg_landed();

    float sc[NB][4], sn[NB][4], o[8][4];
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    swax_wg::fence();
    wg_qk<BK>(sc, sQ, sK);
    swax_wg::commit();
    swax_wg::wait<0>();
    wg_keep(sc);

    for (int it = 0; it < ntiles; it++) {
        /* tile it + 1 landed for all (loaded during tile it - 1); buffer (it + 2) % 3 = (it - 1) % 3 free */
        wg_landed();
        if (it + 2 < ntiles) load_kv(it + 2);
        cp_async_commit();
        const bool more = it + 1 < ntiles;
        if (more) { /* S of tile it + 1, in flight during this tile's softmax */
            swax_wg::fence();
            wg_qk<BK>(sn, sQ, sK + (uint32_t)((it + 1) % 3) * BK * 128);
            swax_wg::commit();
        }
        const int k0 = kt0 + it * BK;
        const bool unm = k0 >= pl.lo_max && k0 + BK - 1 <= q0;
        wg_softmax<NB>(sc, o, mrow, lrow, k0, wr0 + g, lo_r, unm, a.scale2, t4);
        wg_pv_step<NB>(o, sc, sV + (uint32_t)(it % 3) * BK * 128); /* waits for S of tile it + 1 too */
        if (more) wg_take(sc, sn);
    }
#pragma unroll
    for (int hh = 0; hh < 2; hh++) store_out_row<DH>(a, b, h, wr0 + g + 8 * hh, hh, o, quad_sum(lrow[hh]), mrow[hh] * a.scale2, t4);
}

/* The dQ kernels' per-row values for rows i and i + 8: lo, lse·log2 e, Δ */
__device__ __forceinline__ void wg_row_info(const TcArgs &a, const int *lo_g, size_t sr, int i, int (&lo_r)[2],
                                            float (&lse_r)[2], float (&dl_r)[2]) {
#pragma unroll
    for (int hh = 0; hh < 2; hh++) { /* i + 8·hh < Tp */
        lo_r[hh] = lo_g[i + 8 * hh];
        const float2 inf = a.info[sr + i + 8 * hh];
        lse_r[hh] = inf.x, dl_r[hh] = inf.y;
    }
}
/* dS = P ⊙ (dP − Δ) into s for rows i0, i0 + 8 of one 64-key tile (masked unless unm) */
__device__ __forceinline__ void wg_ds(float (&s)[8][4], const float (&dp)[8][4], int k0, int i0, const int (&lo_r)[2],
                                      const float (&lse_r)[2], const float (&dl_r)[2], bool unm, float scale2, int t4) {
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        const int i = i0 + 8 * hh, lo = lo_r[hh];
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int j = k0 + 8 * n + 2 * t4 + e;
                const bool ok = unm || (j >= lo && j <= i);
                const float p = ok ? ex2_ftz(fmaf(s[n][2 * hh + e], scale2, -lse_r[hh])) : 0.0f;
                s[n][2 * hh + e] = p * (dp[n][2 * hh + e] - dl_r[hh]);
            }
    }
}
/* dQ: block per (query tile of 64·NWG rows, h, b), key tiles of 64: S = Q·Kᵀ,
 * dP = dO·Vᵀ, dS = P ⊙ (dP − Δ), dQ += dS·K. */
template <int NWG, int MINB>
__global__ void __launch_bounds__(NWG * 128, MINB) bwd_dq_wg_kernel(const TcArgs a) {
    constexpr int DH = 64, NT = NWG * 128, BQ = 64 * NWG, BK = 64;
    extern __shared__ uint4 smem_u4[];
    const uint32_t sQ = smem_1k(smem_u4), sO = sQ + BQ * 128, sK = sO + BQ * 128, sV = sK + 2 * BK * 128;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int wg = warp >> 2, wq = warp & 3;
    const int T = a.T, q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
    const int *lo_g = a.lo + (size_t)b * a.Tp;
    const size_t sr = ((size_t)b * a.H + h) * a.Tp, sb = sr * DH;
    const bf16 *qg = a.qb + sb, *kg = a.kb + sb, *vg = a.vb + sb, *og = a.ob + sb;

    const int g0 = q0 + 64 * wg, wr0 = g0 + 16 * wq;
    int lo_r[2];
    float lse_r[2], dl_r[2];
    wg_row_info(a, lo_g, sr, wr0 + g, lo_r, lse_r, dl_r);
    const WgPlan pl = wg_plan<BQ, BK>(lo_g, q0, g0, T);
    const int glo_min = pl.lo_min, glo_max = pl.lo_max, ghi = pl.hi, kt0 = pl.kt0, ntiles = pl.ntiles;

    load_sw<NT>(sQ, qg + (size_t)q0 * DH, BQ);
    load_sw<NT>(sO, og + (size_t)q0 * DH, BQ);
    wg_load_kv<NT, BK>(sK, sV, kg, vg, kt0, 0);
    cp_async_commit();

    float acc[8][4];
#pragma unroll
    for (int n = 0; n < 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

    for (int it = 0; it < ntiles; it++) {
        wg_landed();
        if (it + 1 < ntiles) wg_load_kv<NT, BK>(sK, sV, kg, vg, kt0, it + 1);
        cp_async_commit();
        const uint32_t cb = (it & 1) * BK * 128;
        const int k0 = kt0 + it * BK;
        if (!(k0 <= ghi && k0 + BK - 1 >= glo_min)) continue;
        const bool unm = k0 >= glo_max && k0 + BK - 1 <= g0;

        float s[8][4], dp[8][4];
        swax_wg::fence();
        wg_qk<64>(s, sQ + 64 * 128 * wg, sK + cb);
        wg_qk<64>(dp, sO + 64 * 128 * wg, sV + cb);
        swax_wg::commit();
        swax_wg::wait<0>();
        wg_keep(s);
        wg_keep(dp);
        wg_ds(s, dp, k0, wr0 + g, lo_r, lse_r, dl_r, unm, a.scale2, t4);
        wg_pv_step<8>(acc, s, sK + cb);
    }

#pragma unroll
    for (int hh = 0; hh < 2; hh++) store_dq_row<DH>(a, b, h, wr0 + g + 8 * hh, hh, acc, t4);
}

/* dQ with the next key tile's S and dP in flight during this tile's dS (as fwd_wg2_kernel): block
 * = one warpgroup of 64 query rows, key tiles of 64 in three buffers. dQ variant 5. */
template <int MINB>
__global__ void __launch_bounds__(128, MINB) bwd_dq_wg2_kernel(const TcArgs a) {
    constexpr int DH = 64, NT = 128, BQ = 64, BK = 64;
    extern __shared__ uint4 smem_u4[];
    const uint32_t sQ = smem_1k(smem_u4), sO = sQ + BQ * 128, sK = sO + BQ * 128, sV = sK + 3 * BK * 128;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int T = a.T, q0 = blockIdx.x * BQ, h = blockIdx.y, b = blockIdx.z;
    const int *lo_g = a.lo + (size_t)b * a.Tp;
    const size_t sr = ((size_t)b * a.H + h) * a.Tp, sb = sr * DH;
    const bf16 *qg = a.qb + sb, *kg = a.kb + sb, *vg = a.vb + sb, *og = a.ob + sb;
    const int wr0 = q0 + 16 * warp;
    int lo_r[2];
    float lse_r[2], dl_r[2];
    wg_row_info(a, lo_g, sr, wr0 + g, lo_r, lse_r, dl_r);
    const WgPlan pl = wg_plan<BQ, BK>(lo_g, q0, q0, T);
    const int kt0 = pl.kt0, ntiles = pl.ntiles;
    auto load_kv = [&](int it) { wg_load_kv<NT, BK, 3>(sK, sV, kg, vg, kt0, it); };
    auto issue_s_dp = [&](float (&s)[8][4], float (&dp)[8][4], int it) {
        const uint32_t nb = (uint32_t)(it % 3) * BK * 128;
        swax_wg::fence();
        wg_qk<64>(s, sQ, sK + nb);
        wg_qk<64>(dp, sO, sV + nb);
        swax_wg::commit();
    };

    load_sw<NT>(sQ, qg + (size_t)q0 * DH, BQ);
    load_sw<NT>(sO, og + (size_t)q0 * DH, BQ);
    load_kv(0);
    if (ntiles > 1) load_kv(1);
    cp_async_commit();
    wg_landed();

    float sc[8][4], dc[8][4], sn[8][4], dn[8][4], acc[8][4];
#pragma unroll
    for (int n = 0; n < 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
    issue_s_dp(sc, dc, 0);
    swax_wg::wait<0>();
    wg_keep(sc);
    wg_keep(dc);

    for (int it = 0; it < ntiles; it++) {
        wg_landed();
        if (it + 2 < ntiles) load_kv(it + 2);
        cp_async_commit();
        const bool more = it + 1 < ntiles;
        if (more) issue_s_dp(sn, dn, it + 1);
        const int k0 = kt0 + it * BK;
        const bool unm = k0 >= pl.lo_max && k0 + BK - 1 <= q0;
        wg_ds(sc, dc, k0, wr0 + g, lo_r, lse_r, dl_r, unm, a.scale2, t4);
        wg_pv_step<8>(acc, sc, sK + (uint32_t)(it % 3) * BK * 128); /* waits for S, dP of tile it + 1 too */
        if (more) wg_take(sc, sn), wg_take(dc, dn);
    }
#pragma unroll
    for (int hh = 0; hh < 2; hh++) store_dq_row<DH>(a, b, h, wr0 + g + 8 * hh, hh, acc, t4);
}

/* dK, dV: block per (key tile of 64·NWG keys, h, b); warpgroup wg owns keys
 * k0 + 64·wg + [0, 64). Query tiles of 64 (Q, dO, {lse2, Δ}, lo), double
 * buffered: Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ, Pᵀ, dSᵀ; dV += Pᵀ·dO, dK += dSᵀ·Q. */
template <int NWG, int MINB>
__global__ void __launch_bounds__(NWG * 128, MINB) bwd_dkdv_wg_kernel(const TcArgs a) {
    constexpr int DH = 64, NT = NWG * 128, BKV = 64 * NWG, BQ = 64;
    extern __shared__ uint4 smem_u4[];
    const uint32_t sK = smem_1k(smem_u4), sV = sK + BKV * 128, sQ = sV + BKV * 128, sO = sQ + 2 * BQ * 128;
    /* generic pointers to the 1024-aligned region's tail: {lse2, Δ} and lo of the two query tiles */
    unsigned char *gbase = reinterpret_cast<unsigned char *>(smem_u4) + (sK - smem_addr(smem_u4));
    float2 *infs = reinterpret_cast<float2 *>(gbase + (size_t)(2 * BKV + 4 * BQ) * 128); /* 2 × BQ */
    int *los = reinterpret_cast<int *>(infs + 2 * BQ);                                 /* 2 × BQ */

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int wg = warp >> 2, wq = warp & 3;
    const int T = a.T, k0 = blockIdx.x * BKV, h = blockIdx.y, b = blockIdx.z;
    const int klast = min(k0 + BKV, T) - 1;
    const int *lo_g = a.lo + (size_t)b * a.Tp;
    const size_t sr = ((size_t)b * a.H + h) * a.Tp, sb = sr * DH;
    const bf16 *qg = a.qb + sb, *kg = a.kb + sb, *vg = a.vb + sb, *og = a.ob + sb;
    const float2 *ig = a.info + sr;

    const int ntiles = dkdv_query_tiles(a, lo_g, k0, klast, BQ);

    const int kg0 = k0 + 64 * wg, kghi = min(kg0 + 63, T - 1); /* the warpgroup's keys; kghi < kg0: none */
    const int kw0 = kg0 + 16 * wq;                             /* the warp's */

    auto load_q = [&](int buf, int qs) {
        load_sw<NT>(sQ + buf * BQ * 128, qg + (size_t)qs * DH, BQ);
        load_sw<NT>(sO + buf * BQ * 128, og + (size_t)qs * DH, BQ);
        load_info_lo<NT, BQ>(infs + buf * BQ, los + buf * BQ, ig, lo_g, qs);
    };
    load_sw<NT>(sK, kg + (size_t)k0 * DH, BKV);
    load_sw<NT>(sV, vg + (size_t)k0 * DH, BKV);
    load_q(0, k0);
    cp_async_commit();

    float dk[8][4], dv[8][4];
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[n][e] = dv[n][e] = 0.0f;

    for (int it = 0; it < ntiles; it++) {
        wg_landed();
        if (it + 1 < ntiles) load_q((it + 1) & 1, k0 + (it + 1) * BQ);
        cp_async_commit();
        const int buf = it & 1, qs = k0 + it * BQ;
        const float2 *infc = infs + buf * BQ;
        const int *loc = los + buf * BQ;
        /* the tile's lo range: every warp reads all 64 (warpgroup-uniform) */
        const int2 l2 = lds_i2(loc + 2 * lane);
        const int lmn = warp_min(min(l2.x, l2.y)), lmx = warp_max(max(l2.x, l2.y));
        if (!(kg0 <= kghi && qs + BQ - 1 >= kg0 && lmn <= kghi)) continue;
        const bool unm = lmx <= kg0 && qs >= kg0 + 63;

        float s[8][4], dp[8][4];
        swax_wg::fence();
        wg_qk<64>(s, sK + 64 * 128 * wg, sQ + buf * BQ * 128);
        wg_qk<64>(dp, sV + 64 * 128 * wg, sO + buf * BQ * 128);
        swax_wg::commit();
        swax_wg::wait<0>();
        wg_keep(s);
        wg_keep(dp);
#pragma unroll
        for (int n = 0; n < 8; n++) {
            const int r = 8 * n + 2 * t4; /* query offset in the tile (e = 0) */
            const float4 inf = lds_f4(infc + r);
            const int2 lq = lds_i2(loc + r);
#pragma unroll
            for (int hh = 0; hh < 2; hh++) {
                const int j = kw0 + g + 8 * hh;
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int i = qs + r + e, lo = e ? lq.y : lq.x;
                    const float lse2 = e ? inf.z : inf.x, dl = e ? inf.w : inf.y;
                    const bool ok = unm || (j >= lo && j <= i);
                    const float p = ok ? ex2_ftz(fmaf(s[n][2 * hh + e], a.scale2, -lse2)) : 0.0f;
                    s[n][2 * hh + e] = p;
                    dp[n][2 * hh + e] = p * (dp[n][2 * hh + e] - dl);
                }
            }
        }
        uint32_t pa[4][4], da[4][4];
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            pack_a(pa[ks], s[2 * ks], s[2 * ks + 1]);
            pack_a(da[ks], dp[2 * ks], dp[2 * ks + 1]);
        }
        wg_keep(dv);
        wg_keep(dk);
        swax_wg::fence();
        wg_pv<4>(dv, pa, sO + buf * BQ * 128);
        wg_pv<4>(dk, da, sQ + buf * BQ * 128);
        swax_wg::commit();
        swax_wg::wait<0>();
        wg_keep(dv);
        wg_keep(dk);
    }

#pragma unroll
    for (int hh = 0; hh < 2; hh++) store_dkdv_row<DH>(a, b, h, kw0 + g + 8 * hh, hh, dk, dv, t4);
}

/* ---------------------------------------------------------------- launchers */

/* Opts a kernel into `bytes` of dynamic shared memory and the largest carveout; once per kernel. */
template <typename K>
void allow_smem(K kernel, size_t bytes, bool *done) {
    if (*done) return;
    if (bytes > 48 * 1024)
        SWAX_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    SWAX_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
    *done = true;
}

template <int DH, int NW, int MW, int BK, int MINB, bool FX>
void launch_fwd1(const TcArgs &a) {
    constexpr int BQ = 16 * MW * NW;
    constexpr size_t smem = sizeof(bf16) * (size_t)(BQ + 4 * BK) * (DH + 8);
    static bool done = false;
    allow_smem(fwd_tc_kernel<DH, NW, MW, BK, MINB, FX>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, BQ), (unsigned)a.H, (unsigned)a.B);
    fwd_tc_kernel<DH, NW, MW, BK, MINB, FX><<<grid, NW * 32, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}

template <int DH, int NW, int MW, int BK, bool QREG, int MINB, bool FX>
void launch_bwd_dq1(const TcArgs &a) {
    constexpr int BQ = 16 * MW * NW;
    constexpr size_t smem = sizeof(bf16) * (size_t)(2 * BQ + 4 * BK) * (DH + 8);
    static bool done = false;
    allow_smem(bwd_dq_tc_kernel<DH, NW, MW, BK, QREG, MINB, FX>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, BQ), (unsigned)a.H, (unsigned)a.B);
    bwd_dq_tc_kernel<DH, NW, MW, BK, QREG, MINB, FX><<<grid, NW * 32, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}

template <int DH, int NW, bool KREG, int MINB, bool FX>
void launch_bwd_dkdv1(const TcArgs &a) {
    constexpr int BKV = 16 * NW, BQ = 64;
    constexpr size_t smem =
        sizeof(bf16) * (size_t)(2 * BKV + 4 * BQ) * (DH + 8) + 2 * BQ * (sizeof(float2) + sizeof(int));
    static bool done = false;
    allow_smem(bwd_dkdv_tc_kernel<DH, NW, KREG, MINB, FX>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, BKV), (unsigned)a.H, (unsigned)a.B);
    bwd_dkdv_tc_kernel<DH, NW, KREG, MINB, FX><<<grid, NW * 32, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}

/* The wgmma kernels (dh 64): the dynamic shared memory is aligned to 1024 bytes inside the kernel */
template <int NWG, int BK, int MINB>
void launch_fwd_wg(const TcArgs &a) {
    constexpr size_t smem = 1024 + (size_t)(64 * NWG + 4 * BK) * 128;
    static bool done = false;
    allow_smem(fwd_wg_kernel<NWG, BK, MINB>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, 64 * NWG), (unsigned)a.H, (unsigned)a.B);
    fwd_wg_kernel<NWG, BK, MINB><<<grid, NWG * 128, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}
template <int MINB>
void launch_fwd_wg2(const TcArgs &a) {
    constexpr size_t smem = 1024 + (size_t)(64 + 6 * 64) * 128;
    static bool done = false;
    allow_smem(fwd_wg2_kernel<MINB>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, 64), (unsigned)a.H, (unsigned)a.B);
    fwd_wg2_kernel<MINB><<<grid, 128, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}
template <int NWG, int MINB>
void launch_bwd_dq_wg(const TcArgs &a) {
    constexpr size_t smem = 1024 + (size_t)(2 * 64 * NWG + 4 * 64) * 128;
    static bool done = false;
    allow_smem(bwd_dq_wg_kernel<NWG, MINB>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, 64 * NWG), (unsigned)a.H, (unsigned)a.B);
    bwd_dq_wg_kernel<NWG, MINB><<<grid, NWG * 128, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}
template <int MINB>
void launch_bwd_dq_wg2(const TcArgs &a) {
    constexpr size_t smem = 1024 + (size_t)(2 * 64 + 6 * 64) * 128;
    static bool done = false;
    allow_smem(bwd_dq_wg2_kernel<MINB>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, 64), (unsigned)a.H, (unsigned)a.B);
    bwd_dq_wg2_kernel<MINB><<<grid, 128, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}
template <int NWG, int MINB>
void launch_bwd_dkdv_wg(const TcArgs &a) {
    constexpr size_t smem = 1024 + (size_t)(2 * 64 * NWG + 4 * 64) * 128 + 2 * 64 * (sizeof(float2) + sizeof(int));
    static bool done = false;
    allow_smem(bwd_dkdv_wg_kernel<NWG, MINB>, smem, &done);
    const dim3 grid(swax_ceil_div((size_t)a.T, 64 * NWG), (unsigned)a.H, (unsigned)a.B);
    bwd_dkdv_wg_kernel<NWG, MINB><<<grid, NWG * 128, smem, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}

/* The version of this call: g_fx (set per entry call from SWAX_ATTN_TC)
 * picks the FX kernels; the old ones otherwise. */
bool g_fx = true;

template <int DH, int NW, int MW, int BK, int MINB>
void launch_fwd(const TcArgs &a) {
    if (g_fx)
        launch_fwd1<DH, NW, MW, BK, MINB, true>(a);
    else
        launch_fwd1<DH, NW, MW, BK, MINB, false>(a);
}
template <int DH, int NW, int MW, int BK, bool QREG, int MINB>
void launch_bwd_dq(const TcArgs &a) {
    if (g_fx)
        launch_bwd_dq1<DH, NW, MW, BK, QREG, MINB, true>(a);
    else
        launch_bwd_dq1<DH, NW, MW, BK, QREG, MINB, false>(a);
}
template <int DH, int NW, bool KREG, int MINB>
void launch_bwd_dkdv(const TcArgs &a) {
    if (g_fx)
        launch_bwd_dkdv1<DH, NW, KREG, MINB, true>(a);
    else
        launch_bwd_dkdv1<DH, NW, KREG, MINB, false>(a);
}

bool aligned8(const void *p) { return ((uintptr_t)p & 7) == 0; }
bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

/* Preconditions (as attn.cu); false: nothing to do (empty call). */
bool check_call(const SwaxAttnCall *c) {
    SWAX_CUDA_REQUIRE(c != NULL);
    SWAX_CUDA_REQUIRE(c->B >= 0 && c->T >= 0 && c->H >= 0);
    if (c->B == 0 || c->T == 0 || c->H == 0) return false;
    SWAX_CUDA_REQUIRE(c->dh >= 2 && c->dh % 2 == 0 && c->dh <= 256);
    SWAX_CUDA_REQUIRE(c->window >= 1);
    SWAX_CUDA_REQUIRE(c->H <= 65535 && c->B <= 65535);
    SWAX_CUDA_REQUIRE(c->T <= (1 << 30) - TPAD);
    SWAX_CUDA_REQUIRE((long long)c->H * c->dh * 3 <= INT_MAX);
    SWAX_CUDA_REQUIRE(c->rope_theta > 0);
    SWAX_CUDA_REQUIRE(c->qkv != NULL && c->out != NULL && c->lse != NULL);
    return true;
}

/* Arguments and the scratch carve-up: bf16 q, k, v, dO (B·H·Tp·dh each),
 * info (B·H·Tp float2), lo (B·Tp int), rope table (T·dh/2 float2). */
TcArgs make_args(SwaxAttnCall *c) {
    TcArgs a;
    a.B = c->B, a.T = c->T, a.H = c->H;
    a.Tp = (c->T + TPAD - 1) / TPAD * TPAD;
    a.w = c->window < c->T ? c->window : c->T;
    a.HD = c->H * c->dh;
    a.ld = 3LL * a.HD;
    a.scale = 1.0f / sqrtf((float)c->dh); /* as the CPU */
    a.scale2 = a.scale * LOG2E;
    a.vec2 = aligned8(c->out) && (!c->dqkv || aligned8(c->dqkv));
    a.vec4 = aligned16(c->qkv) && aligned16(c->out) && (!c->dout || aligned16(c->dout));
    a.doc_lo = c->doc_lo;
    a.qkv = c->qkv, a.out = c->out, a.lse = c->lse, a.dout = c->dout, a.dqkv = c->dqkv;
    a.out_b = a.dqkv_b = nullptr, a.dqkv_w32 = true, a.staged = false;
    const size_t rows = (size_t)c->B * c->H * a.Tp;
    SWAX_CUDA_REQUIRE(rows / 8 + 1 < (size_t)INT_MAX); /* stage grids: 8 warps per block */
    SWAX_CUDA_REQUIRE(rows * (c->dh / 4) / STAGE_THREADS + 1 < (size_t)INT_MAX); /* stage4 grids */
    const size_t sz_x = align256(sizeof(bf16) * rows * c->dh), sz_i = align256(sizeof(float2) * rows);
    const size_t sz_l = align256(sizeof(int) * (size_t)c->B * a.Tp);
    const size_t sz_r = align256(sizeof(float2) * (size_t)c->T * (c->dh / 2));
    char *s = (char *)swax_cuda_scratch(SWAX_SCRATCH_ATTN, 4 * sz_x + sz_i + sz_l + sz_r);
    SWAX_CUDA_REQUIRE(s != NULL);
    a.qb = (bf16 *)s, a.kb = (bf16 *)(s + sz_x), a.vb = (bf16 *)(s + 2 * sz_x), a.ob = (bf16 *)(s + 3 * sz_x);
    a.info = (float2 *)(s + 4 * sz_x);
    a.lo = (int *)(s + 4 * sz_x + sz_i);
    a.rope = (float2 *)(s + 4 * sz_x + sz_i + sz_l);
    return a;
}

void launch_rope_table(const TcArgs &a, int dh, double theta) {
    const size_t n = (size_t)a.T * (dh / 2);
    rope_table_kernel<<<swax_ceil_div(n, 256), 256, 0, swax_cuda_stream()>>>(a.rope, a.T, dh, theta);
    SWAX_CUDA_LAUNCHED();
}

template <int DH>
void launch_stage(const TcArgs &a, bool bwd) {
    if (g_fx && a.vec4) {
        const size_t threads = (size_t)a.B * a.Tp * a.H * (bwd ? DH / 4 : DH / 8);
        const unsigned grid4 = swax_ceil_div(threads, STAGE_THREADS);
        if (bwd)
            stage_bwd4_kernel<DH><<<grid4, STAGE_THREADS, 0, swax_cuda_stream()>>>(a);
        else
            stage_fwd4_kernel<DH><<<grid4, STAGE_THREADS, 0, swax_cuda_stream()>>>(a);
        SWAX_CUDA_LAUNCHED();
        return;
    }
    const size_t warps = (size_t)a.B * a.Tp * a.H;
    const unsigned grid = swax_ceil_div(warps * 32, STAGE_THREADS);
    if (bwd)
        stage_bwd_kernel<DH><<<grid, STAGE_THREADS, 0, swax_cuda_stream()>>>(a);
    else
        stage_fwd_kernel<DH><<<grid, STAGE_THREADS, 0, swax_cuda_stream()>>>(a);
    SWAX_CUDA_LAUNCHED();
}

/* ---------------------------------------------------------------- entry points */

/* Tile variants (tests/test_cuda_attn_tc.c times them all; 0 is the
 * default). Registers from ptxas -v (sm_90a), resident warps per SM:
 *  dh 64  fwd  0: 128 q × 64 k, 4 warps × 32 rows  215 regs, 2 blocks: 8 warps
 *              1: 128 q × 64 k, 8 warps × 16 rows  126 regs, 2 blocks: 16 warps
 *              2:  64 q × 64 k, 4 warps × 16 rows  131 regs, 3 blocks: 12 warps
 *         dq   0: 128 q, 8 warps × 16 rows, Q/dO in registers    128 regs, 16 warps
 *              1:  64 q, 4 warps × 16 rows, Q/dO in registers    148 regs, 12 warps
 *              2: 128 q, 4 warps × 32 rows, Q/dO from shared     205 regs,  8 warps
 *         dkdv 0:  64 k, 4 warps, K/V in registers   168 regs, 3 blocks: 12 warps
 *              1: 128 k, 8 warps, K/V in registers   192 regs, 1 block:   8 warps
 *              2:  64 k, 4 warps, K/V from shared    160 regs, 3 blocks: 12 warps
 *  dh 128 fwd  0: 64 q × 64 k (195 regs, 8 warps); 1: 64 q × 32 k (166, 12 warps)
 *         dq   0: 64 q, 4 warps (159, 8 warps);    1: 128 q, 8 warps (159, 8 warps)
 *         dkdv 0: 64 k, 4 warps, K/V from shared (242 regs, 8 warps)
 *  dh 64, wgmma (Hopper; not yet measured, so not the default):
 *         fwd  3: 2 warpgroups × 64 q, 64-key tiles (117 regs, 2 blocks); 4: 1 × 64 q, 128-key tiles
 *              (168, 2); 5: 2 × 64 q, 128-key tiles (168, 1); 6: 1 × 64 q, 64-key tiles, the next
 *              tile's S in flight during the softmax (146, 3)
 *         dq   3: 1 warpgroup (158, 3); 4: 2 (160, 1); 5: 1, the next tile's S and dP in flight (218, 2)
 *         dkdv 3: 1 warpgroup × 64 keys (196, 2); 4: 2 (196, 1) */
/* Defaults. dh 64: the wgmma kernels 4, 3, 3, measured on an H100 (2026-12-07, run 7, B8 H16
 * T4096, fwd+bwd): 1.29 vs 1.63 ms (the mma.sync 1, 0, 0) at w 128, 3.71 vs 6.32 at w 2048; the
 * bench-gpu step +1.2% / +9.3%. dh 128 (no wgmma kernels): forward variant 1, the fastest on an
 * H200 (2026-11-29), and the backward variants 0; a dh-64 variant >= 3 leaves dh 128 on those. */
int g_tiles_fwd = 4, g_tiles_dq = 3, g_tiles_dkdv = 3;

/* SWAX_ATTN_TC=old: the version-1 kernels (exp2f, pre-scaled scores, scalar
 * staging), kept selectable until version 2 is proven on the GPU. Read at
 * every call (a getenv per launch group: nothing next to the kernels). */
bool use_old_version() {
    const char *e = getenv("SWAX_ATTN_TC");
    return e && strcmp(e, "old") == 0;
}

/* The forward's staged bf16 q, k, v, kept for the backward (training, the
 * "cuda" table's slots): the backward staging then reads only out and dout
 * (per SWA layer at bench-gpu ~0.6 GB of traffic less) and the kernels use the
 * forward's copies, which are the values the backward would stage (the same
 * rounding of the same rotated q, k and v). One entry per qkv array and shape,
 * first come first kept within a budget (a sixteenth of the card, and only
 * while a tenth of the card, at least 4 GiB, stays free besides: the keep must
 * never be what makes a run that fits run out of memory); an entry is valid
 * from its forward until the table's memory slots (to_device, zero, copy) or a
 * product (ops_cuda.cu's gemm_c: every output) write into its qkv
 * (swax_cuda_attn_keep_forget), or the table frees memory. The model writes
 * qkv only through the qkv projection, which comes before the forward that
 * stages it again. */
struct StageKeep {
    const float *qkv;
    int B, T, H, dh;
    bf16 *buf; /* 3 x B·H·Tp·dh */
    size_t bytes;
    bool valid;
};
constexpr int KEEP_CAP = 64;
StageKeep g_keep[KEEP_CAP];
size_t g_keep_bytes;

size_t keep_budget() {
    static size_t b;
    if (!b) {
        size_t fr = 0, tot = 0;
        SWAX_CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
        b = tot / 16;
    }
    return b;
}

/* The entry of this call's qkv and shape: found, or made now when make; NULL when not kept. */
StageKeep *keep_entry(const SwaxAttnCall *c, const TcArgs &a, bool make) {
    static int off = -1;
    if (off < 0) {
        const char *e = getenv("SWAX_ATTN_KEEP");
        off = e && !strcmp(e, "0");
    }
    if (off || !swax_cuda_keeps_training_copies()) return nullptr;
    const size_t bytes = 3 * sizeof(bf16) * (size_t)a.B * a.H * a.Tp * c->dh;
    StageKeep *fr = nullptr;
    for (int i = 0; i < KEEP_CAP; i++) {
        StageKeep &k = g_keep[i];
        if (k.buf && k.qkv == c->qkv && k.B == c->B && k.T == c->T && k.H == c->H && k.dh == c->dh) return &k;
        if (!k.buf && !fr) fr = &k;
    }
    if (!make || !fr || g_keep_bytes + bytes > keep_budget()) return nullptr;
    size_t fre = 0, tot = 0;
    SWAX_CUDA_CHECK(cudaMemGetInfo(&fre, &tot));
    const size_t margin = tot / 10 > ((size_t)4 << 30) ? tot / 10 : ((size_t)4 << 30);
    if (fre < bytes + margin) return nullptr;
    if (cudaMalloc(&fr->buf, bytes) != cudaSuccess) {
        cudaGetLastError();
        fr->buf = nullptr;
        return nullptr;
    }
    g_keep_bytes += bytes;
    fr->qkv = c->qkv, fr->B = c->B, fr->T = c->T, fr->H = c->H, fr->dh = c->dh, fr->bytes = bytes, fr->valid = false;
    return fr;
}

void keep_use(const StageKeep *k, TcArgs &a, int dh) {
    const size_t per = (size_t)a.B * a.H * a.Tp * dh;
    a.qb = k->buf, a.kb = k->buf + per, a.vb = k->buf + 2 * per;
}

} /* namespace */

extern "C" void swax_cuda_attn_tc_tiles(int fwd, int dq, int dkdv) {
    g_tiles_fwd = fwd, g_tiles_dq = dq, g_tiles_dkdv = dkdv;
}

/* SWAX_ATTN_TILES=F,D,K: the tile variants (fwd, dq, dkdv) for the whole run, read at the first
 * call (benchmarks of a whole step with other variants; e.g. 4,3,3: the wgmma kernels) */
static void tiles_from_env() {
    static bool read = false;
    if (read) return;
    read = true;
    const char *e = getenv("SWAX_ATTN_TILES");
    int f, d, k;
    if (e && sscanf(e, "%d,%d,%d", &f, &d, &k) == 3 && f >= 0 && f <= 6 && d >= 0 && d <= 5 && k >= 0 && k <= 4)
        swax_cuda_attn_tc_tiles(f, d, k);
    else if (e)
        fprintf(stderr, "swax: SWAX_ATTN_TILES=%s ignored (want F,D,K with F 0-6, D 0-5, K 0-4)\n", e);
}


/* side: the "cuda" table's slot, with the side copies (TcArgs out_b, dqkv_b) */
static void attn_fwd_tc(SwaxAttnCall *c, bool side) {
    if (!check_call(c)) return;
    tiles_from_env();
    g_fx = !use_old_version();
    if (c->dh != 64 && c->dh != 128) {
        swax_cuda_attn_fwd(c); /* fp32 kernels (attn.cu) */
        return;
    }
    TcArgs a = make_args(c);
    StageKeep *keep = nullptr;
    if (side) { /* out's kept bf16 copy for the output projection (training only; NULL otherwise) */
        const long HD = (long)c->H * c->dh;
        a.out_b = (bf16 *)swax_cuda_fwd_bf16(c->out, HD, c->B * c->T, (int)HD);
        if ((keep = keep_entry(c, a, true))) keep_use(keep, a, c->dh); /* stage q, k, v into the kept buffers */
    }
    launch_rope_table(a, c->dh, c->rope_theta);
    if (c->dh == 64) {
        launch_stage<64>(a, false);
        switch (!g_fx && g_tiles_fwd >= 3 ? 1 : g_tiles_fwd) { /* old version: no wgmma kernels */
        case 1: launch_fwd<64, 8, 1, 64, 2>(a); break;
        case 2: launch_fwd<64, 4, 1, 64, 3>(a); break;
        case 3: launch_fwd_wg<2, 64, 2>(a); break;
        case 4: launch_fwd_wg<1, 128, 2>(a); break;
        case 5: launch_fwd_wg<2, 128, 1>(a); break;
        case 6: launch_fwd_wg2<3>(a); break;
        default: launch_fwd<64, 4, 2, 64, 2>(a); break;
        }
    } else {
        launch_stage<128>(a, false);
        if (g_tiles_fwd == 1 || g_tiles_fwd >= 3)
            launch_fwd<128, 4, 1, 32, 3>(a);
        else
            launch_fwd<128, 4, 1, 64, 2>(a);
    }
    if (keep) keep->valid = true;
}

static void attn_bwd_tc(SwaxAttnCall *c, bool side) {
    if (!check_call(c)) return;
    SWAX_CUDA_REQUIRE(c->dout != NULL && c->dqkv != NULL);
    SWAX_CUDA_REQUIRE(c->dqkv != c->qkv);
    tiles_from_env();
    g_fx = !use_old_version();
    if (c->dh != 64 && c->dh != 128) {
        swax_cuda_attn_bwd(c);
        return;
    }
    TcArgs a = make_args(c);
    if (side) { /* dqkv rounded to bf16 for the projection's backward, and only there (its fp32 is read by nobody) */
        int only = 0;
        a.dqkv_b = (bf16 *)swax_cuda_dout_bf16_only(c->dqkv, a.ld, c->B * c->T, (int)a.ld, &only);
        a.dqkv_w32 = !a.dqkv_b || !only;
        const StageKeep *keep = keep_entry(c, a, false); /* the forward's staged q, k, v, if still valid */
        if (keep && keep->valid) keep_use(keep, a, c->dh), a.staged = true;
    }
    launch_rope_table(a, c->dh, c->rope_theta);
    if (c->dh == 64) {
        launch_stage<64>(a, true);
        switch (!g_fx && g_tiles_dq >= 3 ? 0 : g_tiles_dq) {
        case 1: launch_bwd_dq<64, 4, 1, 64, true, 3>(a); break;
        case 2: launch_bwd_dq<64, 4, 2, 64, false, 2>(a); break;
        case 3: launch_bwd_dq_wg<1, 3>(a); break;
        case 4: launch_bwd_dq_wg<2, 1>(a); break;
        case 5: launch_bwd_dq_wg2<2>(a); break;
        default: launch_bwd_dq<64, 8, 1, 64, true, 2>(a); break;
        }
        switch (!g_fx && g_tiles_dkdv >= 3 ? 0 : g_tiles_dkdv) {
        case 1: launch_bwd_dkdv<64, 8, true, 1>(a); break;
        case 2: launch_bwd_dkdv<64, 4, false, 3>(a); break;
        case 3: launch_bwd_dkdv_wg<1, 2>(a); break;
        case 4: launch_bwd_dkdv_wg<2, 1>(a); break;
        default: launch_bwd_dkdv<64, 4, true, 3>(a); break;
        }
    } else {
        launch_stage<128>(a, true);
        if (g_tiles_dq == 1)
            launch_bwd_dq<128, 8, 1, 64, false, 1>(a);
        else
            launch_bwd_dq<128, 4, 1, 64, false, 2>(a);
        launch_bwd_dkdv<128, 4, false, 2>(a);
    }
}

extern "C" void swax_cuda_attn_fwd_tc(SwaxAttnCall *c) { attn_fwd_tc(c, false); }
extern "C" void swax_cuda_attn_bwd_tc(SwaxAttnCall *c) { attn_bwd_tc(c, false); }
/* The "cuda" table's slots: the same, and the bf16 side copies of out (forward, training) and dqkv
 * (backward: only that copy), which the output projection's forward and the qkv projection's
 * backward take instead of rounding the fp32 arrays (ops_cuda.cu: swax_cuda_fwd_bf16 /
 * swax_cuda_dout_bf16_only; the same bits) */
extern "C" void swax_cuda_attn_fwd_tc_bf16(SwaxAttnCall *c) { attn_fwd_tc(c, true); }
extern "C" void swax_cuda_attn_bwd_tc_bf16(SwaxAttnCall *c) { attn_bwd_tc(c, true); }

/* The qkv array p is being freed: its kept stagings go too (the caller has synchronised the stream) */
extern "C" void swax_cuda_attn_keep_release(const void *p) {
    for (int i = 0; i < KEEP_CAP; i++) {
        StageKeep &k = g_keep[i];
        if (!k.buf || (const void *)k.qkv != p) continue;
        SWAX_CUDA_CHECK(cudaFree(k.buf));
        g_keep_bytes -= k.bytes;
        k = StageKeep{};
    }
}

/* Anything written into [p, p + bytes) (ops_cuda.cu: the memory slots and the products' outputs): a kept
 * staging of a qkv array there is no longer the forward's; p NULL: every one (memory freed) */
extern "C" void swax_cuda_attn_keep_forget(const void *p, size_t bytes) {
    const char *lo = (const char *)p, *hi = lo + bytes;
    for (int i = 0; i < KEEP_CAP; i++) {
        StageKeep &k = g_keep[i];
        if (!k.buf || !k.valid) continue;
        if (!p) {
            k.valid = false;
            continue;
        }
        const char *a = (const char *)k.qkv, *b = a + sizeof(float) * (size_t)k.B * k.T * 3 * k.H * k.dh;
        if (a < hi && lo < b) k.valid = false;
    }
}
