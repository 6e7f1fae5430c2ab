/* wgmma.cuh — Hopper warpgroup matrix products (wgmma.mma_async, sm_90a) for
 * the attention kernels: bf16 operands, fp32 accumulators, B (and A where
 * not in registers) read by the tensor cores from shared memory through a
 * 64-bit matrix descriptor. The only layout used: tiles of 64-element bf16
 * rows (128 bytes) stored with the 128-byte swizzle, the tile base aligned
 * to 1024 bytes:
 *   byte offset of (r, c) = 128 r + 16 ((c / 8) XOR (r mod 8)) + 2 (c mod 8)
 * (sw128_off). Such a tile is read two ways (PTX ISA, "Matrix Descriptor
 * Format"; CUTLASS's canonical GMMA layouts):
 *   K-major: rows are M (or N) indices, the 64 columns are K. A k16 step
 *     starts 32 bytes further into the row; 8-row groups are SBO = 1024
 *     bytes apart; LBO unused. (Q and K of S = Q·Kᵀ.)
 *   MN-major (B transposed, trans-b = 1): rows are K indices, the 64 columns
 *     are N. A k16 step starts 16 rows (2048 bytes) further; its two 8-row
 *     groups are SBO = 1024 bytes apart; with N = 64 there is one atom
 *     along N, so LBO is unused. (V of O = P·V.)
 * Accumulator layout (m64nNk16, f32): warp w of the warpgroup holds rows
 * 16w + g and 16w + g + 8 (g = lane / 4, t = lane % 4); d[4i + 0, 1] are
 * row 16w + g, columns 8i + 2t + {0, 1}; d[4i + 2, 3] the same columns of
 * row 16w + g + 8 — mma.m16n8's C fragment, repeated over the N/8 tiles. A
 * from registers has mma.m16n8k16's A layout for the warp's 16 rows, so
 * the accumulators of two adjacent n8 tiles, packed to bf16x2, are the A
 * fragment of the next product (P of S -> A of P·V), as in attn_tc.cu.
 * Ordering: smem written by generic-proxy stores (st.shared, cp.async) must
 * be fenced (fence.proxy.async.shared::cta) by each writing thread before
 * the barrier that precedes the wgmma; registers the wgmma reads or writes
 * are fenced with wgmma.fence before the first wgmma of a group, and the
 * results are valid only after wgmma.wait_group. */
#ifndef SWAX_WGMMA_CUH
#define SWAX_WGMMA_CUH

#include <stdint.h>

namespace swax_wg {

__device__ __forceinline__ uint32_t sw128_off(int r, int c) {
    return (uint32_t)(r * 128 + ((((c >> 3) ^ (r & 7)) << 4) | ((c & 7) << 1)));
}

/* A descriptor for a 128-byte-swizzled operand at shared address saddr
 * (bytes; the 1024-byte-aligned tile base plus a k offset). */
__device__ __forceinline__ uint64_t desc_sw128(uint32_t saddr, uint32_t sbo) {
    uint64_t d = (uint64_t)((saddr & 0x3FFFF) >> 4);
    d |= (uint64_t)1 << 16; /* LBO: unused by these layouts */
    d |= (uint64_t)((sbo & 0x3FFFF) >> 4) << 32;
    d |= (uint64_t)1 << 62; /* 128-byte swizzle */
    return d;
}

__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* generic-proxy smem writes made visible to the tensor cores (then a barrier) */
__device__ __forceinline__ void fence_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
/* keeps the compiler from moving accumulator accesses across a wait */
template <int R> __device__ __forceinline__ void fence_regs(float (&d)[R]) {
#pragma unroll
    for (int i = 0; i < R; i++) asm volatile("" : "+f"(d[i])::"memory");
}

#define SWAX_WG_D8(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])

/* d (64 × 128) (+)= A (64 × 16, desc) · B (16 × 128: 128 K-major rows, desc); acc = 0: d = A·B */
__device__ __forceinline__ void mma_ss_n128(float (&d)[64], uint64_t da, uint64_t db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
        "%64, %65, p, 1, 1, 0, 0;\n}\n"
        : SWAX_WG_D8(0), SWAX_WG_D8(8), SWAX_WG_D8(16), SWAX_WG_D8(24), SWAX_WG_D8(32), SWAX_WG_D8(40),
          SWAX_WG_D8(48), SWAX_WG_D8(56)
        : "l"(da), "l"(db), "r"(acc));
}

/* d (64 × 64) (+)= A (64 × 16, desc) · B (16 × 64: 64 K-major rows, desc) */
__device__ __forceinline__ void mma_ss_n64(float (&d)[32], uint64_t da, uint64_t db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "%32, %33, p, 1, 1, 0, 0;\n}\n"
        : SWAX_WG_D8(0), SWAX_WG_D8(8), SWAX_WG_D8(16), SWAX_WG_D8(24)
        : "l"(da), "l"(db), "r"(acc));
}

/* d (64 × 64) (+)= A (64 × 16, registers: mma.m16n8k16's A fragment of the
 * warp's 16 rows) · B (16 × 64, MN-major rows of 64 N values, desc, trans-b) */
__device__ __forceinline__ void mma_rs_n64_t(float (&d)[32], const uint32_t (&a)[4], uint64_t db, int acc) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "{%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
        : SWAX_WG_D8(0), SWAX_WG_D8(8), SWAX_WG_D8(16), SWAX_WG_D8(24)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(acc));
}
#undef SWAX_WG_D8

} // namespace swax_wg

#endif
