/* optim.c — see optim.h. */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>

#include "model/model.h"

SwaxAdamWConfig swax_adamw_defaults(void) { return (SwaxAdamWConfig){0.9f, 0.95f, 1e-8f, 0.1f}; }

int swax_adamw_init(SwaxAdamW *o, const SwaxModel *m, SwaxAdamWConfig cfg) {
    o->cfg = cfg;
    o->n = m->n_params;
    o->step = 0;
    o->ops = m->ops;
    o->m = o->ops->alloc(o->n * sizeof(float));
    o->v = o->m ? o->ops->alloc(o->n * sizeof(float)) : NULL;
    if (!o->m || !o->v) {
        swax_adamw_free(o);
        return swax_error_wrap(SWAX_E_NOMEM, "AdamW moments for %zu parameters", o->n);
    }
    return 0;
}

void swax_adamw_free(SwaxAdamW *o) {
    if (o->ops) {
        o->ops->free(o->m);
        o->ops->free(o->v);
    }
    o->m = o->v = NULL;
}

void swax_adamw_get(const SwaxAdamW *o, float *m, float *v) {
    o->ops->to_host(m, o->m, o->n * sizeof(float));
    o->ops->to_host(v, o->v, o->n * sizeof(float));
}

void swax_adamw_set(SwaxAdamW *o, const float *m, const float *v) {
    o->ops->to_device(o->m, m, o->n * sizeof(float));
    o->ops->to_device(o->v, v, o->n * sizeof(float));
}

void swax_adamw_step(SwaxAdamW *o, SwaxModel *m, float lr) {
    float *g = swax_model_grads_dev(m);
    SWAX_ASSERT(g && o->n == m->n_params && o->ops == m->ops);
    o->step++;
    for (int i = 0; i < m->n_tensors; i++) {
        const SwaxTensor *t = &m->tensors[i];
        const size_t n = (size_t)t->shape[0] * (size_t)t->shape[1], off = t->offset;
        m->ops->adamw(m->params + off, g + off, o->m + off, o->v + off, n, lr, o->cfg.beta1, o->cfg.beta2,
                      o->cfg.eps, t->decay ? o->cfg.weight_decay : 0.0f, (int)o->step);
    }
    if (m->ops->params_updated) m->ops->params_updated(m->params, m->n_params);
}

double swax_grad_norm(SwaxModel *m) {
    float *g = swax_model_grads_dev(m);
    return g ? sqrt(m->ops->sumsq(g, m->n_params)) : 0.0;
}

double swax_grad_clip(SwaxModel *m, float max_norm) {
    const double norm = swax_grad_norm(m);
    /* PyTorch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1 */
    if (max_norm > 0 && isfinite(norm)) {
        const double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) m->ops->scale(m->grads, m->n_params, (float)coef);
    }
    return norm;
}
