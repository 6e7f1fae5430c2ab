/* swax.h — the public API of libswax.
 *
 * SWAX: sliding-window attention (SWA) layers interleaved with xLSTM mLSTM
 * layers (see docs/model.md). This header is small on purpose: a C or Python
 * (ctypes) user can build a model, run forward/backward, read and write
 * parameters, and load/save checkpoints. The CLI (`swax`) is a thin client.
 *
 * Conventions
 *  - Every call that can fail returns an int status (SWAX_OK = 0) and leaves a
 *    human-readable message in swax_last_error() (thread-local).
 *  - Weights are float32, row-major, PyTorch Linear layout (out, in).
 *  - Shapes in comments use one-letter dimensions: B batch, T time, D d_model,
 *    V vocab, H heads.
 */
#ifndef SWAX_H
#define SWAX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes double as the CLI's exit codes. */
typedef enum {
    SWAX_OK = 0,
    SWAX_E_INTERNAL = 1,   /* a bug or an unexpected system failure */
    SWAX_E_USAGE = 2,      /* bad flags / arguments / config values */
    SWAX_E_INPUT = 3,      /* a file or input that is missing, truncated, corrupt or mismatched */
    SWAX_E_NUMERIC = 4,    /* NaN/Inf loss or gradients */
    SWAX_E_NOMEM = 5,      /* allocation refused (config too large for this machine) */
    SWAX_E_IO = 6,         /* cannot write an output (disk full, permission) */
    SWAX_E_INTERRUPTED = 130
} SwaxStatus;

const char *swax_last_error(void);
const char *swax_version(void);

#define SWAX_MAX_PATTERN 64

typedef struct {
    int vocab_size;        /* rows of the embedding and LM head (may be padded) */
    int vocab_used;        /* ids >= vocab_used are padding: never win a softmax */
    int d_model;           /* D */
    int n_blocks;
    char pattern[SWAX_MAX_PATTERN + 1]; /* over 'A' (SWA), 'M' (mLSTM), 'D' (Gated DeltaNet); block i = pattern[i % len] */
    int attn_heads;        /* SWA heads */
    int head_dim;          /* SWA head width */
    double rope_theta;
    int window;            /* SWA window at evaluation/inference */
    int mlstm_heads;       /* NH; DQK = D/(2 NH), DV = D/NH */
    float gate_softcap;
    int ffn_dim;
    float logit_softcap;   /* 0 = off */
    float norm_eps;
    int tie_embeddings;
    float igate_bias_init; /* b_i initial value (xLSTM-7B: -10) */
    int eot_token;         /* end-of-text id (document separator), -1 if none */
    int gdn_heads;         /* Gated DeltaNet heads (pattern D); 0 = mlstm_heads. DK = D/(2 NH), DV = D/NH */
} SwaxConfig;

/* The Gated DeltaNet head count a config uses (gdn_heads, or mlstm_heads when 0). */
static inline int swax_config_gdn_heads(const SwaxConfig *c) { return c->gdn_heads > 0 ? c->gdn_heads : c->mlstm_heads; }

/* Fills defaults (SPEC §2) for the given sizes; the rest can be edited after. */
void swax_config_default(SwaxConfig *c, int vocab_size, int d_model, int n_blocks);
/* Presets: tiny, small, bench-cpu, bench-gpu, 1.4b, 7b. */
int swax_config_preset(const char *name, SwaxConfig *c);
const char *const *swax_preset_names(void); /* NULL-terminated */
/* Sets one field from "key=value" text (command-line --set). The value is read
 * as config.json holds it: true/false (or 0/1), numbers, "strings" (or bare). */
int swax_config_set(SwaxConfig *c, const char *assignment);
/* Checks every field; on failure the message names the field. */
int swax_config_validate(const SwaxConfig *c);

typedef struct SwaxModel SwaxModel;

int swax_model_create(const SwaxConfig *c, SwaxModel **out);  /* parameters zeroed */
void swax_model_init(SwaxModel *m, uint64_t seed);             /* SPEC §2 initialisation */
void swax_model_free(SwaxModel *m);
const SwaxConfig *swax_model_config(const SwaxModel *m);

/* Checkpoint: DIR/model.safetensors + DIR/config.json (written atomically). */
int swax_model_save(const SwaxModel *m, const char *dir);
/* DIR may also be a training run folder: its newest checkpoint (RUN/latest) is used. */
int swax_model_load(const char *dir, SwaxModel **out);
/* The checkpoint folder that DIR stands for (DIR itself, or RUN/latest's folder). */
int swax_checkpoint_dir(const char *dir, char *out, size_t cap);

/* Where the model computes: "cpu" (the default), "cuda" (the CUDA backend:
 * bf16 operands in the matrix products, fp32 master weights, accumulation and
 * everything else) or "cuda-fp32" (fp32 everywhere, TF32 off: for tests).
 * SWAX_CUDA_DEVICE picks the GPU. Moves the parameters there
 * (gradients and activations are made again on first use). Fails with a
 * message when the backend is not available (no device, or a build without
 * CUDA). Checkpoints do not depend on the device. */
int swax_model_set_device(SwaxModel *m, const char *device);
const char *swax_model_device(const SwaxModel *m);
/* 1 where the model computes on a GPU ("cuda", "cuda-fp32"), 0 on the CPU ("cpu", "cpu-bf16"). */
int swax_model_on_device(const SwaxModel *m);
/* Waits for the model's queued device work (timing); no-op on the CPU. */
void swax_model_sync(SwaxModel *m);
/* Device memory in use now (bytes; 0 on the CPU). */
size_t swax_model_device_memory(const SwaxModel *m);
/* Training FLOPs per token (forward + backward) at sequence length T, window w
 * and mLSTM chunk L: 6 × (matrix-product parameters, the input embedding not
 * counted) plus the SWA and mLSTM cell FLOPs. The MFU denominator. */
double swax_model_train_flops_per_token(const SwaxConfig *c, int T, int window, int chunk);

/* Parameters and gradients: one contiguous float array each, carved into
 * named tensors (see docs/checkpoint.md for the names). Host memory always:
 * on a device model each call copies the device's current values into a host
 * view and returns it; after writing into the parameters' view call
 * swax_model_params_changed to copy them back. */
size_t swax_model_num_params(const SwaxModel *m);
float *swax_model_params(SwaxModel *m);
void swax_model_params_changed(SwaxModel *m); /* no-op on the CPU */
float *swax_model_grads(SwaxModel *m);  /* allocated (zeroed) on first use; NULL if out of memory */
int swax_model_num_tensors(const SwaxModel *m);
/* Name, offset into params (in floats), shape (ndim <= 2). */
int swax_model_tensor(const SwaxModel *m, int i, const char **name, size_t *offset,
                      int *ndim, int64_t shape[2]);

/* One batch of B sequences of T tokens. */
typedef struct {
    int B, T;
    const int32_t *tokens;    /* (B, T) */
    const int32_t *targets;   /* (B, T) or NULL (no loss); target < 0 = ignored */
    const uint8_t *doc_start; /* (B, T) 1 where a document starts, or NULL (one document) */
    int window;               /* SWA window (>= 1) */
    int chunk;                /* mLSTM chunk size (>= 1); 0 = default (64) */
} SwaxBatch;

/* Forward. If targets are given, *loss gets the mean cross-entropy over
 * non-ignored targets. Logits (B, T, V) after the soft cap stay readable
 * through swax_model_logits until the next call. */
int swax_forward(SwaxModel *m, const SwaxBatch *b, float *loss);
const float *swax_model_logits(const SwaxModel *m);
/* Training mode for the LM head (on = 1): a forward with targets computes the
 * loss and the head's backward in row chunks, keeping no (B·T, V) logits (6.6
 * GB in fp32 for 32k tokens of a 50k vocabulary); swax_model_logits then
 * returns NULL. A forward without targets computes full logits either way.
 * Same function, other summation order. Off by default; `swax train` turns it on. */
void swax_model_set_fused_head(SwaxModel *m, int on);
/* Activation recomputation (on = 1): the forward keeps only each block's input
 * (the residual stream) and one shared set of block activations; the backward
 * runs each block's forward again before its backward. About a third more
 * compute for a fraction of the activation memory; the same bits. */
void swax_model_set_recompute(SwaxModel *m, int on);
/* Backward of the last forward (which must have had targets). Gradients are
 * ACCUMULATED into swax_model_grads(m) with weight `scale` on the mean loss
 * (for gradient accumulation, scale = 1/steps). */
int swax_backward(SwaxModel *m, float scale);
void swax_zero_grad(SwaxModel *m);

/* Threads for OpenMP and BLAS (0 = leave as is). Also sets, for the calling thread, the OpenMP
 * policy swax relies on (no dynamic teams, one active level): swax sets it for the main thread when
 * it loads; a program that calls swax from threads of its own calls this on each of them. */
void swax_set_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
