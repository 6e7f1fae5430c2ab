/* optim.h — AdamW with PyTorch's semantics (decoupled weight decay applied as
 * p *= 1 - lr·wd before the Adam update), weight decay on 2-D weights only
 * (SPEC §4), and global-norm gradient clipping. */
#ifndef SWAX_OPTIM_H
#define SWAX_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "swax.h"

typedef struct {
    float beta1, beta2, eps, weight_decay;
} SwaxAdamWConfig;

struct SwaxOps;

typedef struct {
    SwaxAdamWConfig cfg;
    size_t n;
    float *m, *v;   /* first and second moments, one per parameter, where the model computes */
    long step;      /* completed steps */
    const struct SwaxOps *ops; /* the model's ops when the moments were made */
    /* the parameter array as runs of tensors with the same weight-decay choice
     * (one adamw_segs call per step): seg_start (nseg + 1), seg_decay (nseg) */
    size_t *seg_start;
    uint8_t *seg_decay;
    int nseg;
} SwaxAdamW;

SwaxAdamWConfig swax_adamw_defaults(void); /* β 0.9/0.95, eps 1e-8, wd 0.1 */
int swax_adamw_init(SwaxAdamW *o, const SwaxModel *m, SwaxAdamWConfig cfg);
void swax_adamw_free(SwaxAdamW *o);
/* Host copies of the moments (checkpoints): read into / write from m and v (n floats each). */
void swax_adamw_get(const SwaxAdamW *o, float *m, float *v);
void swax_adamw_set(SwaxAdamW *o, const float *m, const float *v);
/* One update with learning rate lr from the model's gradients. */
void swax_adamw_step(SwaxAdamW *o, SwaxModel *m, float lr);
/* The same with every gradient multiplied by gscale first (swax_clip_coef): the
 * clipping and the update in one pass over the parameters, the same bits as
 * swax_grad_clip followed by swax_adamw_step. */
void swax_adamw_step_scaled(SwaxAdamW *o, SwaxModel *m, float lr, float gscale);

/* ‖g‖₂ over all gradients (fixed-order reduction). */
double swax_grad_norm(SwaxModel *m);
/* PyTorch's clip_grad_norm_ factor for a gradient of this norm: max_norm / (norm
 * + 1e-6) when that is below 1; else (and for max_norm <= 0 or a non-finite norm) 1. */
float swax_clip_coef(double norm, float max_norm);
/* Scales gradients so that the norm is at most max_norm (no-op if 0); returns the norm before. */
double swax_grad_clip(SwaxModel *m, float max_norm);

#endif
