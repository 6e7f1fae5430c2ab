/* gemv.h — the batch-small bf16 matrix-vector product for decode (gemv.cu),
 * C-compatible: the GPU tests call it directly, ops_cuda.cu's bf16_matmul_fwd
 * tries it before cuBLASLt.
 *
 * swax_cuda_gemv_bf16: out (N, OC) = round_bf16(inp) (N, C) · w (OC, C)ᵀ with
 * fp32 accumulation, for N = 1..8 rows. inp is fp32 (row stride ldi >= C),
 * each element rounded to nearest even bf16 (__float2bfloat16_rn, as the
 * cuBLASLt path rounds it); w is a dense row-major (OC, C) bf16 matrix (row
 * stride C); out is fp32 (row stride ldo >= OC). Every weight byte is read
 * once for all N rows. Deterministic: no atomics, a fixed summation order that
 * depends only on (C, OC) and the device's multiprocessor count (not on N,
 * the strides or the stream), so each output row has the same bits whether it
 * is computed alone or in a batch of up to 8. stream: a cudaStream_t (NULL =
 * the legacy default stream). Asynchronous like any launcher.
 * Returns 0 when launched; nonzero, launching nothing and touching nothing,
 * when the call is outside what it handles, so the caller uses cuBLASLt:
 * N outside 1..8, C < 8 or C % 8 != 0, OC < 1, ldi < C, ldo < OC, w not
 * 16-byte aligned, N·C·2 bytes of staged input beyond the block's shared
 * memory (C > ~14000 at N = 8), or no usable device. */
#ifndef SWAX_CUDA_GEMV_H
#define SWAX_CUDA_GEMV_H

#ifdef __cplusplus
extern "C" {
#endif

int swax_cuda_gemv_bf16(float *out, long ldo, const float *inp, long ldi, const void *w_bf16, int N, int C, int OC,
                        void *stream);
/* The same with a residual: out = resid + the product, one fp32 add per
 * element (the bits of swax_cuda_gemv_bf16 then an add); resid (N, OC) has
 * out's stride and must not be out (nonzero, nothing launched, if it is);
 * NULL = swax_cuda_gemv_bf16. */
int swax_cuda_gemv_bf16_add(float *out, long ldo, const float *inp, long ldi, const void *w_bf16, int N, int C, int OC,
                            const float *resid, void *stream);

/* The same with the input transformed in the staging, before the rounding,
 * instead of by a kernel of its own (decode: a launch fewer each):
 *   GEMV_IN_NONE     the input as it is (= swax_cuda_gemv_bf16_add);
 *   GEMV_IN_RMSNORM  RMSNorm of each row with weights nw (C) and eps: x · rs ·
 *                    nw[c], rs = 1 / sqrt(Σ x² / C + eps), the expressions of
 *                    the rmsnorm kernel (only rs's sum is in another order);
 *   GEMV_IN_SWIGLU   inp rows of 2C (ldi >= 2C): gate then up; the SwiGLU
 *                    g · σ(g) · u of the swiglu kernel, the same bits.
 * GEMV_NO_PDL or'ed into mode: launch without programmatic dependent launch,
 * which is otherwise the default (SWAX_PDL=0 turns it off everywhere): w_bf16
 * was just written by a kernel on the stream, and a PDL launch reads its first
 * weights before that kernel is done.
 * Nonzero, nothing launched, outside what it handles (as above, or a mode
 * it does not know, or RMSNORM without nw). */
enum { GEMV_IN_NONE = 0, GEMV_IN_RMSNORM = 1, GEMV_IN_SWIGLU = 2, GEMV_NO_PDL = 0x100 };
int swax_cuda_gemv_bf16_in(float *out, long ldo, const float *inp, long ldi, const void *w_bf16, int N, int C, int OC,
                           const float *resid, int mode, const float *nw, float eps, void *stream);

/* Timing helpers for the tests (they allocate, time and free; negative on
 * failure). swax_cuda_gemv_bench_us: the median device time (microseconds, CUDA
 * events) of one swax_cuda_gemv_bf16 call on random data, rotating over
 * enough weight copies that the L2 cache cannot hold them.
 * swax_cuda_copy_bench_us: the median time of one device-to-device copy of
 * `bytes` (which reads and writes `bytes` each), the bandwidth ceiling. */
double swax_cuda_gemv_bench_us(int N, int C, int OC, int reps);
double swax_cuda_copy_bench_us(long bytes, int reps);

#ifdef __cplusplus
}
#endif

#endif
