/* gemm_bf16.h — matrix products with bf16 operands and fp32 accumulation on the CPU, through
 * oneDNN's matmul (Debian's OpenBLAS 0.3.21 is built without its bf16 GEMM). The "cpu-bf16"
 * table uses them for the model's matrix products, the way the "cuda" table uses cuBLASLt:
 * fp32 master weights and activations, operands rounded to bf16 (nearest even) per call.
 *
 * oneDNN is loaded at run time (dlopen "libdnnl.so.2", Debian's libdnnl2), so the swax binary
 * needs it only where "cpu-bf16" is asked for. On a CPU with AVX512-BF16 (Cooper Lake, Zen 4)
 * or AMX (Sapphire Rapids) the products run at 2x (AMX: several times) the fp32 rate; on other
 * AVX-512 CPUs oneDNN emulates them (no faster than fp32); without AVX-512 it has none and
 * swax_bf16_gemm_init says so. */
#ifndef SWAX_GEMM_BF16_H
#define SWAX_GEMM_BF16_H

/* Loads oneDNN and checks that it has a bf16 matmul for this CPU. 0, or an error (swax_error
 * set: what is missing and how to get it). Safe to call again. */
int swax_bf16_gemm_init(void);

/* The oneDNN implementation that runs the products ("brg:avx512_core_bf16", ...); "" before init. */
const char *swax_bf16_gemm_impl(void);

/* C (M, N), row stride ldc, = beta·C + op(A) · op(B), with op(A) (M, K) and op(B) (K, N) rounded
 * to bf16: ta = 0: A is (M, K), row stride lda; ta = 1: A is stored (K, M), row stride lda (the
 * same for B with tb, (K, N) or (N, K), ldb). beta is 0 or 1. Sizes of 0 are allowed. */
void swax_bf16_gemm(int ta, int tb, int M, int N, int K, const float *A, long lda, const float *B, long ldb,
                    float beta, float *C, long ldc);

/* The same; reuse_a = 1: A is unchanged since the previous call, so where that call's A was the
 * same stored matrix (pointer, lda, stored shape; transposed or not), its bf16 packing is used again
 * (the backward's two products read dout in the same stored layout). */
void swax_bf16_gemm_ex(int ta, int tb, int M, int N, int K, const float *A, long lda, const float *B, long ldb,
                       float beta, float *C, long ldc, int reuse_a);

/* oneDNN's fp32 GEMM (dnnl_sgemm), row-major, the cblas_sgemm arguments: the CPU table's products
 * (the default where oneDNN loads; SWAX_SGEMM=openblas for OpenBLAS's: ops_cpu.c). init: 0, or an
 * error as above (needs only the library, not a bf16 product). */
int swax_onednn_sgemm_init(void);
void swax_onednn_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, long lda, const float *B,
                       long ldb, float beta, float *C, long ldc);

/* x (n) rounded to bf16 and widened back (round to nearest even; NaN stays NaN): the operand
 * rounding swax_bf16_gemm applies, for references. */
void swax_bf16_round(float *x, long n);

#endif
