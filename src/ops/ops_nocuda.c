/* ops_nocuda.c — swax_ops_cuda() for a build without the CUDA backend
 * (CUDA=0, no nvcc, or the sanitizer build): it says so. The Makefile leaves
 * this file out of CUDA builds. */
#include "core/common.h"
#include "ops/ops.h"

const SwaxOps *swax_ops_cuda(void) {
    swax_error(SWAX_E_USAGE, "this swax was built without the CUDA backend (no nvcc found, or CUDA=0); "
                             "rebuild with `make CUDA=1` on a machine with the CUDA toolkit");
    return NULL;
}
const SwaxOps *swax_ops_cuda_bf16(void) { return swax_ops_cuda(); }
int swax_cuda_gemm_tune(FILE *out, int count) {
    (void)out, (void)count;
    swax_ops_cuda();
    return SWAX_E_USAGE;
}

/* The tensor-core kernels' entry points, which the GPU tests call directly:
 * in a build without CUDA they are never reached (the tests skip first). */
#include <stdlib.h>
static void no_cuda(const char *fn) {
    fprintf(stderr, "swax: %s called in a build without the CUDA backend\n", fn);
    abort();
}
void swax_cuda_attn_fwd_tc(SwaxAttnCall *c);
void swax_cuda_attn_bwd_tc(SwaxAttnCall *c);
void swax_cuda_attn_tc_tiles(int fwd, int dq, int dkdv);
void swax_cuda_mlstm_cell_fwd_tc(SwaxMlstmCall *c);
void swax_cuda_mlstm_cell_bwd_tc(SwaxMlstmCall *c);
void swax_cuda_attn_fwd_tc(SwaxAttnCall *c) { (void)c, no_cuda(__func__); }
void swax_cuda_attn_bwd_tc(SwaxAttnCall *c) { (void)c, no_cuda(__func__); }
void swax_cuda_attn_tc_tiles(int fwd, int dq, int dkdv) { (void)fwd, (void)dq, (void)dkdv, no_cuda(__func__); }
void swax_cuda_mlstm_cell_fwd_tc(SwaxMlstmCall *c) { (void)c, no_cuda(__func__); }
void swax_cuda_mlstm_cell_bwd_tc(SwaxMlstmCall *c) { (void)c, no_cuda(__func__); }

/* gemv.cu's entry points and the backend's stream (test_cuda_gemv) */
#include "ops/cuda/gemv.h"
void *swax_cuda_stream(void);
int swax_cuda_gemv_bf16(float *out, long ldo, const float *inp, long ldi, const void *w_bf16, int N, int C, int OC,
                        void *stream) {
    (void)out, (void)ldo, (void)inp, (void)ldi, (void)w_bf16, (void)N, (void)C, (void)OC, (void)stream;
    no_cuda(__func__);
    return -1;
}
int swax_cuda_gemv_bf16_add(float *out, long ldo, const float *inp, long ldi, const void *w_bf16, int N, int C,
                            int OC, const float *resid, void *stream) {
    (void)resid;
    return swax_cuda_gemv_bf16(out, ldo, inp, ldi, w_bf16, N, C, OC, stream);
}
int swax_cuda_gemv_bf16_in(float *out, long ldo, const float *inp, long ldi, const void *w_bf16, int N, int C, int OC,
                           const float *resid, int mode, const float *nw, float eps, void *stream) {
    (void)out, (void)ldo, (void)inp, (void)ldi, (void)w_bf16, (void)N, (void)C, (void)OC, (void)resid, (void)mode,
        (void)nw, (void)eps, (void)stream;
    return 1; /* nothing done: no CUDA in this build */
}
double swax_cuda_gemv_bench_us(int N, int C, int OC, int reps) {
    (void)N, (void)C, (void)OC, (void)reps;
    no_cuda(__func__);
    return -1;
}
double swax_cuda_copy_bench_us(long bytes, int reps) {
    (void)bytes, (void)reps;
    no_cuda(__func__);
    return -1;
}
void *swax_cuda_stream(void) {
    no_cuda(__func__);
    return NULL;
}
void swax_cuda_add(float *y, const float *x, size_t n); /* elementwise.cu (test_cuda_gemv's producer kernel) */
void swax_cuda_add(float *y, const float *x, size_t n) { (void)y, (void)x, (void)n, no_cuda(__func__); }

/* wgmma_probe.cu (test_cuda_wgmma) */
int swax_cuda_wgmma_probe(int form, const float *A, const float *B, float *D);
int swax_cuda_wgmma_probe(int form, const float *A, const float *B, float *D) {
    (void)form, (void)A, (void)B, (void)D;
    no_cuda(__func__);
    return -1;
}
