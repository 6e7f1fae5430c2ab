/* cuda_common.cuh — what every CUDA file of the backend shares: the one
 * backend context (device, stream, cuBLASLt handle and workspace), error
 * checks that name file and line, and small device helpers (warp and block
 * sums in a fixed order, so results do not depend on scheduling).
 *
 * Conventions for the kernel files (attn.cu, mlstm.cu, elementwise.cu, ...):
 *  - each ops.h slot is an extern "C" function `swax_cuda_<slot>` with the
 *    slot's exact signature; ops_cuda.cu puts them in the table;
 *  - kernels first, then launchers; a launcher asserts its preconditions
 *    (SWAX_CUDA_REQUIRE), launches on swax_cuda_stream() and checks the launch
 *    (SWAX_CUDA_LAUNCHED); no launcher synchronises unless its slot returns a
 *    host value;
 *  - no float atomics anywhere: every reduction runs in a fixed order, so the
 *    same inputs give the same bits on the same card (exact resume). */
#ifndef SWAX_CUDA_COMMON_CUH
#define SWAX_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "ops/ops.h"
}

/* The backend's stream (created by swax_ops_cuda()). */
extern "C" cudaStream_t swax_cuda_stream(void);
/* Multiprocessor count of the device in use. */
extern "C" int swax_cuda_sm_count(void);
/* A fatal CUDA error inside a slot (ops.h slots return nothing): prints the
 * call, file and line and a hint, then exits with SWAX_E_INTERNAL (1). */
extern "C" void swax_cuda_fatal(cudaError_t e, const char *what, const char *file, int line);
/* A violated precondition of a launcher: prints it and exits with 1. */
extern "C" void swax_cuda_require_failed(const char *cond, const char *file, int line);
/* Scratch device memory owned by the backend, grown on demand, reused across
 * calls (stream-ordered: valid until the next call to the same slot id). Slot
 * ids below keep concurrent users apart. Never freed before exit. */
enum {
    SWAX_SCRATCH_ELEMWISE = 0,
    SWAX_SCRATCH_ATTN = 1,
    SWAX_SCRATCH_MLSTM = 2,
    SWAX_SCRATCH_MATMUL = 3,
    SWAX_SCRATCH_EMBED = 4,
    SWAX_SCRATCH_REDUCE = 5,
    SWAX_SCRATCH_BF16_A = 6, /* bf16 copies of matrix-product operands */
    SWAX_SCRATCH_BF16_B = 7,
    SWAX_SCRATCH_BF16_W = 8,
    SWAX_SCRATCH_GDN = 9,    /* the Gated DeltaNet layer (gdn.cu) */
    SWAX_SCRATCH_SLOTS = 15 /* 10..14: infer.cu's */
};
extern "C" void *swax_cuda_scratch(int slot, size_t bytes);
/* A bf16 buffer for rows x cols of src (row stride ld) rounded to bf16, which
 * the caller fills now; the next bf16 product backward with exactly that
 * dout uses it instead of rounding dout itself (NULL when switched off:
 * SWAX_BF16_DOUT=0). Any other write through the table's memory slots or a
 * forward product forgets it. */
extern "C" void *swax_cuda_dout_bf16(const float *src, long ld, int rows, int cols);
/* The same, for a producer that may then leave src unwritten (*only = 1): the
 * next backward product must take the copy (ops_cuda.cu). */
extern "C" void *swax_cuda_dout_bf16_only(const float *src, long ld, int rows, int cols, int *only);
/* The same for a product's forward input: the kept bf16 copy of src (rows x
 * cols, stride ld) that the next bf16 product forward with exactly that input
 * would make, which the caller (the kernel producing src) fills now; that
 * forward then uses it without rounding src again, and its backward finds it
 * as usual. NULL (the caller writes fp32 only) outside training, under stream
 * capture, past the keep budget, or with SWAX_BF16_FWD=0. Any other write
 * through the table's memory slots or any other product forgets it. */
extern "C" void *swax_cuda_fwd_bf16(const float *src, long ld, int rows, int cols);
/* p as bf16 storage when it is an activation made by the "cuda" table's
 * alloc_act (ops.h: the n elements live there as bf16), else NULL (fp32). Such
 * an activation must be used whole-row dense (ld = cols, rows·cols within n):
 * anything else is an internal error. */
extern "C" void *swax_cuda_act_bf16(const float *p, long ld, int rows, int cols);
/* Whether the "cuda" table keeps bf16 copies from a forward for its backward now (training, not under
 * stream capture, SWAX_BF16_KEEP not 0): ops_cuda.cu's rule, for the kernels that keep copies of their own */
extern "C" int swax_cuda_keeps_training_copies(void);
/* [p, p + bytes) was written (p NULL: memory was freed): attn_tc.cu's kept staging of q, k, v there is stale */
extern "C" void swax_cuda_attn_keep_forget(const void *p, size_t bytes);
/* the array p is freed: attn_tc.cu's stagings kept for it are freed too */
extern "C" void swax_cuda_attn_keep_release(const void *p);

#define SWAX_CUDA_CHECK(call)                                                         \
    do {                                                                              \
        cudaError_t e_ = (call);                                                      \
        if (e_ != cudaSuccess) swax_cuda_fatal(e_, #call, __FILE__, __LINE__);        \
    } while (0)

#define SWAX_CUDA_LAUNCHED() SWAX_CUDA_CHECK(cudaGetLastError())

#define SWAX_CUDA_REQUIRE(cond)                                                       \
    do {                                                                              \
        if (!(cond)) swax_cuda_require_failed(#cond, __FILE__, __LINE__);             \
    } while (0)

static inline unsigned swax_ceil_div(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

/* Programmatic dependent launch (sm_90; no-ops below and when the kernel was
 * not launched so). A kernel calls swax_pdl_trigger() early to let the next
 * kernel on the stream, if launched with the programmatic-serialization
 * attribute, start; that kernel may only read weights nothing in flight writes
 * until swax_pdl_wait(), which returns once every earlier grid has completed
 * and its writes are visible (gemv.cu: the decode products). */
__device__ __forceinline__ void swax_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void swax_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/* The logistic function, the one expression of every kernel that takes it
 * (the SwiGLU, the mLSTM output gate, decode's gemv staging): the same bits. */
__device__ __forceinline__ float sigmoid_acc(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Sum over a warp, butterfly order: every lane gets the same bits. */
__device__ __forceinline__ float swax_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double swax_warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float swax_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over a block of blockDim.x threads (a multiple of 32, at most 1024);
 * `shared` holds 32 floats. Every thread gets the result. Fixed order. */
__device__ __forceinline__ float swax_block_sum(float v, float *shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = swax_warp_sum(v);
    __syncthreads(); /* shared may still be read by a previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < nw ? shared[lane] : 0.0f;
    return swax_warp_sum(v);
}

/* Bytes of dynamic shared memory for a kernel's n floats, plus SWAX_SMEM_SLACK
 * floats past the last array. ptxas may turn the remainder of an unrolled loop
 * over a shared array (ej[j], ej[j + 1], ej[j + 2] under j < n) into one wider
 * load that reads past the last element used: compute-sanitizer showed a
 * 12-byte read at ej[0] in k_fwd_scan's state update (the case dk 8, L 1 of
 * test_cuda_gdn's gdn_documents, whose allocation ended 4 bytes after ej[0]).
 * The hardware allocates shared memory in larger granules, so the results were
 * right, but the read left the launch's allocation; the slack (16 bytes: any
 * read of up to 16 bytes that starts at a used element) keeps it inside. Same
 * in infer.cu's mLSTM decode step (a 12-byte read at sq[0] with one row a split). */
constexpr size_t SWAX_SMEM_SLACK = 4;
static inline size_t swax_smem_f(size_t n) { return sizeof(float) * (n + SWAX_SMEM_SLACK); }

#endif
