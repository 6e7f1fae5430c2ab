/* cuda_slots.h — the CUDA backend's functions, one per ops.h slot, with the
 * slot's signature (all pointers device memory). Defined in elementwise.cu,
 * attn.cu, mlstm.cu, gdn.cu, infer.cu and ops_cuda.cu; gathered into the table by ops_cuda.cu. */
#ifndef SWAX_CUDA_SLOTS_H
#define SWAX_CUDA_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "ops/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

void swax_cuda_matmul_fwd(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC);
void swax_cuda_matmul_bwd(float *dinp, long lddi, float *dw, const float *dout, long lddo, const float *inp, long ldi,
                          const float *w, int N, int C, int OC, int accumulate_dinp);
void swax_cuda_matmul_fwd_add(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC,
                              const float *resid);
void swax_cuda_embed_fwd(float *out, const int32_t *tok, const float *wte, int N, int D);
void swax_cuda_embed_bwd(float *dwte, const float *dout, const int32_t *tok, int N, int D);
void swax_cuda_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int N, int D, float eps);
void swax_cuda_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                           const float *rstd, int N, int D);
void swax_cuda_add(float *y, const float *x, size_t n);
void swax_cuda_swiglu_fwd(float *h, const float *gu, int N, int F);
void swax_cuda_swiglu_bwd(float *dgu, const float *dh, const float *gu, int N, int F);
void swax_cuda_attn_fwd(SwaxAttnCall *c);
void swax_cuda_attn_bwd(SwaxAttnCall *c);
void swax_cuda_mlstm_gates_fwd(float *ig, float *lf, const float *pre, long ldp, const float *bias, int N, int NH,
                               float cap);
void swax_cuda_mlstm_gates_bwd(float *dpre, long ldp, float *dbias, const float *dig, const float *dlf,
                               const float *pre, long ldpre, const float *bias, int N, int NH, float cap);
void swax_cuda_mlstm_cell_fwd(SwaxMlstmCall *c);
void swax_cuda_mlstm_cell_bwd(SwaxMlstmCall *c);
/* bf16 tensor-core versions (attn_tc.cu, mlstm_tc.cu): the "cuda" table's; they
 * fall back to the fp32 kernels for shapes without a fast path */
void swax_cuda_attn_fwd_tc(SwaxAttnCall *c);
void swax_cuda_attn_bwd_tc(SwaxAttnCall *c);
/* the "cuda" table's: the same, with bf16 side copies of out and dqkv for the products next to them */
void swax_cuda_attn_fwd_tc_bf16(SwaxAttnCall *c);
void swax_cuda_attn_bwd_tc_bf16(SwaxAttnCall *c);
void swax_cuda_mlstm_cell_fwd_tc(SwaxMlstmCall *c);
void swax_cuda_mlstm_cell_bwd_tc(SwaxMlstmCall *c);
void swax_cuda_mlstm_out_fwd(float *y, float *hn, float *mean, float *rstd, const float *h, const float *og,
                             long ldog, const float *w, int N, int NH, int dv, float eps);
void swax_cuda_mlstm_out_bwd(float *dh, float *dog, long lddog, float *dw, const float *dy, const float *hn,
                             const float *h, const float *mean, const float *rstd, const float *og, long ldog,
                             const float *w, int N, int NH, int dv);
void swax_cuda_xent_fwd(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V, int Vused,
                        float cap);
void swax_cuda_xent_bwd(float *logits, const float *lse, const int32_t *targets, int N, int V, int Vused, float cap,
                        float scale);
/* xent_fwd then xent_bwd in one pass (training's head) */
void swax_cuda_xent_train(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V, int Vused,
                          float cap, float scale);
/* The "cuda" (bf16) table's variants of six slots: the same outputs, and a bf16
 * copy of them for the product that reads them next (ops_cuda.cu: the d-out and
 * forward-input copies). */
void swax_cuda_xent_bwd_bf16(float *logits, const float *lse, const int32_t *targets, int N, int V, int Vused,
                             float cap, float scale);
void swax_cuda_xent_train_bf16(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V,
                               int Vused, float cap, float scale);
void swax_cuda_swiglu_bwd_bf16(float *dgu, const float *dh, const float *gu, int N, int F);
void swax_cuda_swiglu_fwd_bf16(float *h, const float *gu, int N, int F);
void swax_cuda_rmsnorm_fwd_bf16(float *out, float *rstd, const float *inp, const float *w, int N, int D, float eps);
void swax_cuda_rmsnorm_bwd_bf16(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                 const float *rstd, int N, int D);
void swax_cuda_mlstm_out_fwd_bf16(float *y, float *hn, float *mean, float *rstd, const float *h, const float *og,
                                  long ldog, const float *w, int N, int NH, int dv, float eps);
void swax_cuda_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                     float wd, int step);
void swax_cuda_adamw_segs(float *p, const float *g, float *m, float *v, size_t n, const size_t *start,
                          const uint8_t *decay, int nseg, float gscale, float lr, float b1, float b2, float eps,
                          float wd, int step);
double swax_cuda_sumsq(const float *x, size_t n);
void swax_cuda_scale(float *x, size_t n, float s);

/* Gated DeltaNet layer (gdn.cu): fp32 CUDA-core kernels, in both tables */
void swax_cuda_gdn_fwd(SwaxGdnCall *c);
void swax_cuda_gdn_bwd(SwaxGdnCall *c);
void swax_cuda_infer_gdn(const SwaxInferGdnCall *c); /* inference: prefill and decode steps */

/* inference (infer.cu) */
void swax_cuda_infer_attn(const SwaxInferAttnCall *c);
void swax_cuda_infer_attn_bf16(const SwaxInferAttnCall *c); /* the "cuda" table's: tensor-core prefill */
void swax_cuda_infer_mlstm_step(const SwaxInferStepCall *c);
void swax_cuda_argmax(int32_t *out, const float *logits, int N, int V, int Vused);
void swax_cuda_graph_run(void **graph, void (*fn)(void *), void *arg);
void swax_cuda_graph_free(void *graph);
/* Counts the moves of the backend's scratch arenas (ops_cuda.cu): a captured
 * graph that holds scratch pointers is stale once it changed. */
unsigned long swax_cuda_scratch_epoch(void);

/* "NVIDIA H200 (device 0, 132 SMs, 140 GiB)"; -1 without a device. */
int swax_cuda_device_name(char *buf, size_t cap);
/* Device memory in use now (bytes), for the training log. */
size_t swax_cuda_peak_bytes(void);

#ifdef __cplusplus
}
#endif
#endif
