/* model.h — the SWAX model's internals: weights carved from one allocation,
 * per-block activations kept for the backward, and the ops table it calls. */
#ifndef SWAX_MODEL_H
#define SWAX_MODEL_H

#include "core/common.h"
#include "ops/ops.h"
#include "swax.h"

typedef struct {
    char name[96];
    size_t offset;  /* floats into params */
    int ndim;
    int64_t shape[2];
    int decay;      /* AdamW weight decay applies (2-D weights) */
} SwaxTensor;

/* One block's weights: pointers into params (or grads, same layout). */
typedef struct {
    float *norm1;    /* (D) */
    float *w_mix;    /* A: (3·HD, D) = [wq; wk; wv];  M: (3D + 2NH, D) = [wq; wk; wv; wog; wi; wf] */
    float *b_gates;  /* M: (2NH) = [bi; bf] */
    float *mix_norm; /* M: (D) per-head LayerNorm weight */
    float *w_out;    /* A: (D, HD) W_ao;  M: (D, D) W_mo */
    float *norm2;    /* (D) */
    float *w_gu;     /* (2F, D) = [w_gate; w_up] */
    float *w_down;   /* (D, F) */
    /* D (Gated DeltaNet): w_mix (3D + 2NH, D) = [wq; wk; wv; wg; wb; wa], mix_norm (D), w_out (D, D) W_o, and */
    float *conv_w;   /* D: (2D, 4) = [conv_q; conv_k; conv_v] */
    float *A_log, *dt_bias; /* D: (NH) each */
} BlockW;

typedef struct {
    float *embed, *norm_f, *lm_head;
    BlockW *blocks;
} ModelW;

/* Activations of one block for a batch of N = B·T rows. */
typedef struct {
    float *ln1, *rstd1;          /* (N, D), (N) */
    float *mix;                  /* A: qkv (N, 3HD) rotated;  M: proj (N, 3D + 2NH) */
    float *att, *lse;            /* A: (N, HD), (B, H, T) */
    float *ig, *lf;              /* M: (N, NH) gates after cap / logsigmoid */
    float *h, *hn, *hmean, *hrstd, *y;  /* M: cell out, normed, stats (N, NH), gated (N, D) */
    float *m_t, *den_t;          /* M: (B, NH, T) */
    int *arg_t;                  /* M: (B, NH, T) */
    float *Cs, *ns, *ms;         /* M: chunk-start states */
    int *arg_end;
    float *res_mid;              /* (N, D) after the mixer's residual add */
    float *ln2, *rstd2;          /* (N, D), (N) */
    float *gu, *hf;              /* (N, 2F), (N, F) */
    /* D (Gated DeltaNet; SwaxGdnCall in ops.h): mix is proj (N, 3D + 2NH), y (N, D) */
    float *gd_xc, *gd_qkv, *gd_rqk;  /* (N, 2D), (N, 2D), (N, 2NH) */
    float *gd_beta, *gd_g, *gd_o, *gd_orstd; /* (N, NH), (N, NH), (N, D), (N, NH) */
    float *gd_Ss;                /* (B, NH, chunks, dv, dk) chunk start states */
} BlockActs;

struct SwaxModel {
    SwaxConfig cfg;
    const SwaxOps *ops;
    char kinds[4097];            /* per block: 'A', 'M' or 'D' */
    int HD, NH, dk, dv, P_m;     /* SWA width; mLSTM heads, DQK, DV, projection width */

    size_t n_params;
    float *params, *grads;       /* where the ops compute: host (CPU) or device memory */
    float *host_params, *host_grads; /* host views of a device model (NULL on the CPU) */
    int n_tensors;
    SwaxTensor *tensors;
    ModelW w, g;                 /* views into params and grads */

    /* activations, sized for cap_N rows and cap_chunks chunks */
    int cap_B, cap_T, cap_chunks;
    float **res;                 /* n_blocks + 1 residual streams (N, D) */
    BlockActs *acts;
    float *lnf, *rstdf, *logits, *losses, *lse;
    size_t cap_logit_rows;       /* rows of the logits buffer (all N, or a chunk with fused_head) */
    /* fused LM head (training): the forward computes the loss and the head's
     * backward chunk by chunk, so no (N, V) logits are kept; dhead holds the
     * head's weight gradient until swax_backward scales and adds it */
    int fused_head, fused_last;
    int recompute;               /* one shared set of block activations, made again in the backward */
    int act_sets;                /* sets of BlockActs allocated: n_blocks, or 1 with recompute */
    float *dhead;                /* (V, D) */
    int32_t *tokens, *targets;
    uint8_t *doc_start;
    int *doc_lo;
    int *chunks;                 /* (B, cap_chunks + 1) mLSTM chunk starts (ops.h) */
    /* host staging for what the batch computes on the host (doc_start, doc_lo,
     * chunks), per-row losses read back, and the logits of a device model */
    uint8_t *h_doc_start;
    int *h_doc_lo, *h_chunks;
    float *h_losses, *h_logits;
    /* backward scratch */
    float *dres, *dln, *dbig, *dmid, *dh2, *dig, *dlf;
    float *dhf;     /* d of the SwiGLU output (N, F): ops.h alloc_act */
    float *head_lg; /* the fused head's logits chunk (rows x V), when the table has alloc_act */
    size_t head_lg_rows;

    /* Gradient-ready hook (multi-GPU training, src/dist/): when set, swax_backward
     * calls it with a bucket index as soon as that bucket's gradients are final
     * for this backward (swax_model_bucket: the tail — final norm and LM head —
     * first, then the blocks from last to first, the embedding last), so the
     * caller can start reducing them while the backward goes on. NULL: none. */
    void (*grad_ready)(void *ud, int bucket);
    void *grad_ready_ud;

    /* last forward */
    int B, T, window, chunk, has_docs, has_targets;
    long n_targets;
    int logits_valid;
    /* Gated DeltaNet (pattern D): heads, DK, DV, projection width 3D + 2NH; backward scratch (N, 3D + 2NH) */
    int NHd, dkd, dvd, P_d;
    float *dgdn;
};

/* Builds the tensor table and the weight views for cfg (no allocation of activations). */
int swax_model_layout(SwaxModel *m);
void swax_model_views(SwaxModel *m, float *base, ModelW *w);
/* DIR of the newest checkpoint named by RUN/latest (a training run folder). */
int swax_run_latest(const char *run, char *dir, size_t cap);
int swax_model_ensure_acts(SwaxModel *m, int B, int T, int chunks);
/* The logits buffer with at least `rows` rows. */
int swax_model_ensure_logits(SwaxModel *m, size_t rows);
/* Rows of logits the fused head computes at a time. */
#define SWAX_HEAD_ROWS 4096
void swax_model_free_acts(SwaxModel *m);
/* Gradients where the ops compute (allocated on first use, zeroed); NULL + error if out of memory. */
float *swax_model_grads_dev(SwaxModel *m);
/* Buckets: contiguous ranges of the flat parameter (and gradient) array that
 * become final together in the backward, fixed by the model alone: 0 = the
 * embedding (with a tied LM head, the head's gradient too), 1 + l = block l,
 * n_blocks + 1 = the tail (final norm and an untied LM head). */
int swax_model_num_buckets(const SwaxModel *m);
void swax_model_bucket(const SwaxModel *m, int bucket, size_t *offset, size_t *count);
/* The host view of the parameters without a copy from the device (checkpoint save). */
const float *swax_model_params_view(const SwaxModel *m);

#endif
