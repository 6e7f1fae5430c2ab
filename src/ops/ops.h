/* ops.h — the one narrow interface through which the model computes.
 *
 * The model (src/model/) never touches numbers itself: it holds buffers made
 * by `alloc` and calls these functions. The CPU table (src/ops/cpu/) is the
 * reference; the CUDA table (src/ops/cuda/) fills the same slots with kernels
 * over device memory, so the model does not change. Every pointer passed to a
 * slot lives where that table's `alloc` puts it (device memory for CUDA); the
 * model reads results on the host only through `to_host`.
 *
 * Shapes: N = B·T rows; matrices row-major; weights (out, in) as in PyTorch.
 * Backward functions ACCUMULATE into parameter gradients (dw += ...) and,
 * where said, into input gradients; everything else is overwritten. */
#ifndef SWAX_OPS_H
#define SWAX_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Everything one SWA layer call needs. */
typedef struct {
    int B, T, H, dh, window;
    double rope_theta;
    const int *doc_lo;   /* (B, T) start of each token's document, or NULL */
    float *qkv;          /* (N, 3·H·dh): q, k, v; q and k are rotated in place by fwd */
    float *out;          /* (N, H·dh) */
    float *lse;          /* (B, H, T) */
    /* backward */
    const float *dout;   /* (N, H·dh) */
    float *dqkv;         /* (N, 3·H·dh) */
} SwaxAttnCall;

/* Everything one mLSTM cell call needs (all heads, all sequences). */
typedef struct {
    int B, T, NH, dk, dv, L;
    float eps;
    const uint8_t *doc_start; /* (B, T) or NULL */
    const float *proj; long ldp; /* (N, ldp): q at 0, k at NH·dk, v at 2·NH·dk */
    const float *ig, *lf;     /* (N, NH) */
    float *h;                 /* (N, NH·dv) */
    /* saved for backward (NULL: inference) */
    float *m_t, *den_t; int *arg_t;          /* (B, NH, T) */
    float *Cs, *ns, *ms; int *arg_end; int max_chunks; /* (B, NH, max_chunks, ...) */
    /* (B, max_chunks + 1): each sequence's chunk starts (a chunk ends after L
     * tokens or before a document start), then T, padded with T. Built by the
     * model on the host and copied to the backend's memory; the CPU table
     * recomputes it and ignores this. */
    const int *chunks;
    /* backward */
    const float *dh;          /* (N, NH·dv) */
    float *dproj;             /* (N, ldp): writes the q, k, v columns */
    float *dig, *dlf;         /* (N, NH) */
    /* inference (forward only; NULL in training): the state each sequence
     * starts from, per (b, head): C0 (B, NH, dk, dv), n0 (B, NH, dk), m0
     * (B, NH) (C0 NULL = zero state, as the first chunk of training; a
     * document start still resets it), and the state after the last token
     * (C1, n1, m1; NULL = not wanted). C1/n1/m1 may be C0/n0/m0 (in place).
     * The CPU table runs its own chunks (from token 0 in steps of L). */
    const float *C0, *n0, *m0;
    float *C1, *n1, *m1;
} SwaxMlstmCall;

/* Inference (infer.c): windowed attention of R query rows over each row's
 * sequence ring plus the rows of the same call (infer_attn). Row r is
 * position p_r of sequence s_r: prefill (seq >= 0): p_r = pos0 + r, s_r =
 * seq; decode (seq < 0): one row per sequence, p_r = rowpos[r], s_r =
 * rowseq[r] (device arrays). The slot rotates q and k of every row at p_r in
 * place (RoPE, as swax_rope_f), writes softmax(q·kᵀ/sqrt(dh))·v over keys at
 * positions max(0, p_r - w + 1)..p_r (positions >= the call's first position
 * of that sequence from the call's rows, earlier ones from the ring, slot
 * position mod w), then stores the last min(w, R) rows' k and v into the ring
 * (decode: each row's). */
typedef struct {
    int R, H, dh, window;
    double rope_theta;
    float *qkv; long ldq;       /* (R, ldq): q at column 0, k at H·dh, v at 2·H·dh */
    float *out;                 /* (R, H·dh) */
    float *state;               /* the state array: sequence s at state + s·per_seq */
    size_t per_seq, ring_off;   /* floats; the layer's K ring (w, H·dh) at ring_off, its V ring right after */
    int seq; long pos0;         /* prefill */
    const int *rowseq;          /* decode: (R) */
    const long *rowpos;         /* decode: (R) */
} SwaxInferAttnCall;

/* Inference: one recurrent mLSTM step for each of R rows (decode), the
 * arithmetic of swax_mlstm_step_f with fp32 state (C, n, m) updated in place. */
typedef struct {
    int R, NH, dk, dv;
    float eps;
    const float *proj; long ldp; /* (R, ldp): q at 0, k at NH·dk, v at 2·NH·dk */
    const float *ig, *lf;        /* (R, NH) */
    float *h;                    /* (R, NH·dv) */
    float *state;                /* sequence s's C (NH, dk, dv), n (NH, dk), m (NH) at state + s·per_seq + off */
    size_t per_seq, off;
    const int *rowseq;           /* (R) */
} SwaxInferStepCall;
/* Inference (infer.c): the Gated DeltaNet layer between its projections for R
 * rows, the arithmetic of swax_gdn_infer (infer_gdn.c). The state of
 * sequence s lies at state + s·per_seq + off: S (NH, dv, dk), then the
 * convolution history (3, 2D), the q, k, v conv inputs of the last 3
 * positions, oldest first (infer_gdn.h). Each row's convolution takes its
 * earlier inputs from the call's rows of its sequence or from the history;
 * then silu, L2-normalised q/k, β, g as the training layer. Prefill (seq >=
 * 0): the rows are positions pos0.. of sequence seq; the chunkwise form with
 * S carried in and out, chunks at absolute multiples of L (a head chunk up to
 * the next one, then L-sized; a table may cap L: the CUDA one at 128). Decode
 * (seq < 0): row r is the next token of sequence rowseq[r] (distinct
 * sequences, a device array), the recurrent step. Both: the gated per-head
 * RMSNorm into y, and the history takes the last 3 inputs. Scratch is the
 * table's own. */
typedef struct {
    int R, NH, dk, dv, L;
    float eps;                    /* the output RMSNorm's (norm_eps) */
    const float *proj; long ldp;  /* (R, ldp): the columns of SwaxGdnCall's proj */
    const float *conv_w, *A_log, *dt_bias, *norm_w;
    float *y;                     /* out (R, NH·dv) */
    float *state;                 /* the state array */
    size_t per_seq, off;          /* floats: a sequence's block, the layer's offset in it */
    int seq; long pos0;           /* prefill */
    const int *rowseq;            /* decode: (R) */
} SwaxInferGdnCall;

/* Everything one Gated DeltaNet layer call needs between its input projection
 * and its output projection (SPEC §2, pattern letter D): the short causal
 * convolutions, silu, L2-normalised q/k, the gates, the cell (all heads, all
 * sequences) and the gated per-head RMSNorm. D = NH·dv, qk width D/2. */
typedef struct {
    int B, T, NH, dk, dv, L;
    float eps;                /* the output RMSNorm's (norm_eps) */
    const uint8_t *doc_start; /* (B, T) or NULL: state and convolution restart there */
    /* (N, ldp): q at 0, k at D/2, v at D (conv inputs), output gate at 2D,
     * β pre-activation at 3D, a (decay) pre-activation at 3D + NH */
    const float *proj; long ldp;
    const float *conv_w;      /* (2D, 4): q, k, v channels; out[t] = Σ_i w[c,i] x[t−3+i] */
    const float *A_log, *dt_bias; /* (NH) */
    const float *norm_w;      /* (D) */
    float *y;                 /* out (N, D) = RMSNorm_head(o)·w ⊙ silu(gate) */
    /* saved for the backward */
    float *xc;                /* (N, 2D) convolution outputs (before silu) */
    float *qkv;               /* (N, 2D) cell inputs: q̂/√dk, k̂, v */
    float *rqk;               /* (N, 2NH) rsqrt(Σq² + 1e-6), rsqrt(Σk² + 1e-6) per head */
    float *beta, *g;          /* (N, NH) β = sigmoid, g = −e^A_log·softplus(a + dt_bias) */
    float *o;                 /* (N, D) cell output */
    float *orstd;             /* (N, NH) the output RMSNorm's rsqrt */
    float *Ss; int max_chunks; /* (B, NH, max_chunks, dv, dk) chunk start states */
    /* backward */
    const float *dy;          /* (N, D) */
    float *dproj;             /* (N, ldp): all 3D + 2NH columns written */
    float *dconv_w, *dA_log, *ddt_bias, *dnorm_w; /* += */
    float *scratch;           /* (N, 3D + 2NH) */
} SwaxGdnCall;

/* matmul_fwd_in's input transforms */
enum { SWAX_MM_IN_RMSNORM = 1, SWAX_MM_IN_SWIGLU = 2 };

typedef struct SwaxOps {
    const char *name;
    int is_device;                /* 0: host memory (CPU); 1: device memory (CUDA) */
    void (*sync)(void);           /* waits for queued work; reports asynchronous errors */
    size_t (*mem_used)(void);     /* device memory in use (bytes); 0 on the CPU */
    /* The whole parameter array [params, params + n) was written (optimizer
     * step, upload): a table that keeps a low-precision copy refreshes it. NULL = none. */
    void (*params_updated)(const float *params, size_t n);
    void *(*alloc)(size_t bytes); /* zeroed; NULL + swax_error on failure */
    void (*free)(void *p);
    /* Optional (NULL: alloc(4·n)): an activation of n elements that only these
     * ops touch, and only as these arguments: written by rmsnorm_fwd (out),
     * swiglu_fwd (h), matmul_fwd (out) or matmul_bwd (dinp, not accumulated),
     * read by matmul_fwd / matmul_bwd (inp) or swiglu_fwd / swiglu_bwd (gu, dh);
     * or the logits of xent_train (written by matmul_fwd, then overwritten by
     * xent_train with the d logits, which matmul_bwd reads as its dout);
     * always dense (ld = its row width), and freed with free. A table may store it in bf16 (2 bytes an element: the
     * "cuda" table, where the products round their operands to bf16 anyway);
     * the pointer is then opaque: never read, write or copy it otherwise. */
    float *(*alloc_act)(size_t n);
    void (*to_device)(void *dst, const void *src, size_t bytes);
    void (*to_host)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);

    /* out (N, OC) = inp (N, C) · w (OC, C)ᵀ ; ld* are row strides */
    void (*matmul_fwd)(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC);
    /* dinp (N, C) (+)= dout · w ; dw (OC, C) += doutᵀ · inp. dinp may be NULL.
     * When a matmul_fwd saw the same inp (pointer, ldi, N, C), inp must be
     * unchanged since, except through to_device / zero / copy / free: a
     * backend may reuse what it derived from it (the "cuda" table keeps the
     * forward's bf16 copy). */
    void (*matmul_bwd)(float *dinp, long lddi, float *dw, const float *dout, long lddo, const float *inp,
                       long ldi, const float *w, int N, int C, int OC, int accumulate_dinp);
    /* Optional (NULL: matmul_fwd, then add): out (N, OC) = inp · wᵀ + resid, resid (N, OC) with out's
     * stride, not overlapping out; the same bits as the two calls (a residual connection). */
    void (*matmul_fwd_add)(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC,
                           const float *resid);
    /* Optional (NULL, or nonzero returned: out and resid untouched (a table may have made a bf16 copy of w);
     * the caller runs rmsnorm_fwd or swiglu_fwd, then
     * matmul_fwd / matmul_fwd_add): out (N, OC) = f(inp) · wᵀ, + resid when resid (as matmul_fwd_add), with
     * the input transform f made inside the product (decode on a device: a launch fewer each):
     * SWAX_MM_IN_RMSNORM the RMSNorm of each row (C wide; weights nw, eps), SWAX_MM_IN_SWIGLU the SwiGLU of
     * rows of 2C (gate, then up; ldi >= 2C). Returns 0 when done. */
    int (*matmul_fwd_in)(float *out, long ldo, const float *inp, long ldi, int mode, const float *nw, float eps,
                         const float *w, int N, int C, int OC, const float *resid);
    void (*embed_fwd)(float *out, const int32_t *tok, const float *wte, int N, int D);
    void (*embed_bwd)(float *dwte, const float *dout, const int32_t *tok, int N, int D);
    void (*rmsnorm_fwd)(float *out, float *rstd, const float *inp, const float *w, int N, int D, float eps);
    /* dinp += ..., dw += ... */
    void (*rmsnorm_bwd)(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                        const float *rstd, int N, int D);
    void (*add)(float *y, const float *x, size_t n); /* y += x */
    /* h (N, F) = silu(gu[:, :F]) ⊙ gu[:, F:] */
    void (*swiglu_fwd)(float *h, const float *gu, int N, int F);
    /* dgu (N, 2F) written. A backend may leave it only in a copy that the next matmul_bwd with exactly
     * this dout takes (the bf16 table, as xent_train): the model's next op is that product. */
    void (*swiglu_bwd)(float *dgu, const float *dh, const float *gu, int N, int F);

    void (*attn_fwd)(SwaxAttnCall *c);
    void (*attn_bwd)(SwaxAttnCall *c);

    /* mLSTM pieces. gates: ig = cap·tanh((pre_i + b_i)/cap), lf = logsigmoid(cap·tanh((pre_f + b_f)/cap)) */
    void (*mlstm_gates_fwd)(float *ig, float *lf, const float *pre, long ldp, const float *bias, int N, int NH,
                            float cap);
    /* dpre (gate columns of dproj) written; dbias += */
    void (*mlstm_gates_bwd)(float *dpre, long ldp, float *dbias, const float *dig, const float *dlf,
                            const float *pre, long ldpre, const float *bias, int N, int NH, float cap);
    void (*mlstm_cell_fwd)(SwaxMlstmCall *c);
    void (*mlstm_cell_bwd)(SwaxMlstmCall *c);
    /* per-head LayerNorm (no bias) then the output gate: y = sigmoid(og) ⊙ LN(h)·w.
     * Saves hn = LN(h)·w, mean and rstd (N, NH). */
    void (*mlstm_out_fwd)(float *y, float *hn, float *mean, float *rstd, const float *h, const float *og, long ldog,
                          const float *w, int N, int NH, int dv, float eps);
    /* dh written, dog written (stride ldog), dw += */
    void (*mlstm_out_bwd)(float *dh, float *dog, long lddog, float *dw, const float *dy, const float *hn,
                          const float *h, const float *mean, const float *rstd, const float *og, long ldog,
                          const float *w, int N, int NH, int dv);

    /* Soft-capped logits and cross-entropy. logits (N, V) in place: raw -> capped,
     * ids >= Vused at -inf. lse (N, or NULL): log-sum-exp per row (kept for the backward).
     * losses (N, or NULL): per-row loss (0 where target < 0). The caller counts the targets. */
    void (*xent_fwd)(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V, int Vused,
                     float cap);
    /* logits (capped, from xent_fwd) -> d raw logits in place, scaled by `scale` per counted target. */
    void (*xent_bwd)(float *logits, const float *lse, const int32_t *targets, int N, int V, int Vused, float cap,
                     float scale);
    /* Optional (NULL: the model calls the two above): training's head, xent_fwd then xent_bwd on the same
     * rows in one pass with the same lse, losses and d logits. The d logits may be left only in a copy
     * that the next matmul_bwd with exactly this dout takes (the bf16 table); then logits' contents are
     * undefined until written again. targets required. */
    void (*xent_train)(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V, int Vused,
                       float cap, float scale);

    /* AdamW (PyTorch semantics) over n values. */
    void (*adamw)(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                  float wd, int step);
    double (*sumsq)(const float *x, size_t n); /* fixed-order reduction (waits for the device) */
    void (*scale)(float *x, size_t n, float s);

    /* ---- inference on a device table (infer.c; NULL in the CPU table, whose
     * inference infer.c computes itself) ---- */
    void (*copy)(void *dst, const void *src, size_t bytes); /* both in this table's memory */
    void (*infer_attn)(const SwaxInferAttnCall *c);
    void (*infer_mlstm_step)(const SwaxInferStepCall *c);
    /* Runs fn(arg), which queues work on the table's stream, through a graph
     * kept in *graph: the first call (and the first after the backend's scratch
     * memory moved) runs fn directly (warm-up); the next captures fn once and
     * launches the capture; later calls launch it. fn must queue the same work
     * every time (inputs in fixed buffers), with no allocation and no host
     * synchronisation. graph_free(NULL) is a no-op. */
    void (*graph_run)(void **graph, void (*fn)(void *), void *arg);
    void (*graph_free)(void *graph);
    /* out[r] = the first argmax over ids < Vused of logits row r (N, V) (greedy decode without the copy) */
    void (*argmax)(int32_t *out, const float *logits, int N, int V, int Vused);

    /* AdamW over the whole parameter array in one pass (PyTorch semantics, the
     * arithmetic of `adamw`): segment i = [start[i], start[i + 1]) (start[0] =
     * 0, start[nseg] = n) decays with wd when decay[i] != 0, else not; every
     * gradient is multiplied by gscale first (global-norm clipping without a
     * pass of its own; 1 = none). start and decay are host arrays. */
    void (*adamw_segs)(float *p, const float *g, float *m, float *v, size_t n, const size_t *start,
                       const uint8_t *decay, int nseg, float gscale, float lr, float b1, float b2, float eps, float wd,
                       int step);
    /* Gated DeltaNet (pattern D): proj -> y, and dy -> dproj and the layer's
     * small parameters' gradients. NULL in a table that lacks them (the model
     * refuses pattern D there). */
    void (*gdn_fwd)(SwaxGdnCall *c);
    void (*gdn_bwd)(SwaxGdnCall *c);
    /* Gated DeltaNet inference on a device table (SwaxInferGdnCall; NULL in
     * the CPU table, whose inference infer_gdn.c computes) */
    void (*infer_gdn)(const SwaxInferGdnCall *c);
} SwaxOps;

const SwaxOps *swax_ops_cpu(void);
/* "cpu-bf16": the CPU table with bf16 operands (fp32 accumulation) in the model's matrix products,
 * through oneDNN (src/ops/cpu/gemm_bf16.h); NULL with swax_error set where oneDNN or a bf16 product
 * for this CPU is missing. */
const SwaxOps *swax_ops_cpu_bf16(void);
/* The CUDA table, or NULL (with swax_error set) when this build has no CUDA or
 * no usable device: the message says which. Initialises the device on first call. */
const SwaxOps *swax_ops_cuda(void);      /* "cuda-fp32": fp32 everywhere, TF32 off */
const SwaxOps *swax_ops_cuda_bf16(void); /* "cuda": bf16 operands in the matrix products */

/* SWAX_PROFILE=1: a table that times every slot of another (ops_profile.c);
 * the report gives milliseconds per step over `steps` steps since the reset. */
const SwaxOps *swax_ops_profiled(const SwaxOps *ops);
int swax_ops_profile_on(void); /* SWAX_PROFILE set to a positive number */
void swax_ops_profile_reset(void);
void swax_ops_profile_report(FILE *f, long steps);

/* Kernel timings of a table at SPEC §8's shapes (ops_bench.c): JSON lines to out. */
int swax_ops_bench(const SwaxOps *ops, FILE *out);
/* `swax bench gemm`: the bench-gpu step's bf16 products under the planned algorithm and each of cuBLASLt's
 * next `count` candidates (ops_cuda.cu); a build without CUDA says so. */
int swax_cuda_gemm_tune(FILE *out, int count);

#endif
