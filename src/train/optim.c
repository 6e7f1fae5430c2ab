/* optim.c — see optim.h. */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>

#include "model/model.h"

SwaxAdamWConfig swax_adamw_defaults(void) { return (SwaxAdamWConfig){0.9f, 0.95f, 1e-8f, 0.1f}; }

int swax_adamw_init(SwaxAdamW *o, const SwaxModel *m, SwaxAdamWConfig cfg) {
    o->cfg = cfg;
    o->seg_start = NULL, o->seg_decay = NULL, o->nseg = 0;
    o->n = m->n_params;
    o->step = 0;
    o->ops = m->ops;
    o->m = o->ops->alloc(o->n * sizeof(float));
    o->v = o->m ? o->ops->alloc(o->n * sizeof(float)) : NULL;
    if (!o->m || !o->v) {
        swax_adamw_free(o);
        return swax_error_wrap(SWAX_E_NOMEM, "AdamW moments for %zu parameters", o->n);
    }
    /* runs of tensors (in memory order) with the same decay choice; a gap
     * between tensors (if any) joins a run without decay */
    o->seg_start = malloc(sizeof(size_t) * ((size_t)2 * m->n_tensors + 2));
    o->seg_decay = malloc((size_t)2 * m->n_tensors + 1);
    if (!o->seg_start || !o->seg_decay) {
        swax_adamw_free(o);
        return swax_error(SWAX_E_NOMEM, "AdamW segment table");
    }
    size_t pos = 0;
    int ns = 0;
    for (;;) {
        /* the tensor starting at pos, if any */
        int ti = -1;
        for (int i = 0; i < m->n_tensors; i++)
            if (m->tensors[i].offset == pos && (size_t)m->tensors[i].shape[0] * (size_t)m->tensors[i].shape[1] > 0) {
                ti = i;
                break;
            }
        size_t end;
        uint8_t d;
        if (ti >= 0) {
            end = pos + (size_t)m->tensors[ti].shape[0] * (size_t)m->tensors[ti].shape[1];
            d = m->tensors[ti].decay != 0;
        } else { /* a gap: up to the next tensor start (or the end) */
            end = o->n;
            for (int i = 0; i < m->n_tensors; i++)
                if (m->tensors[i].offset > pos && m->tensors[i].offset < end) end = m->tensors[i].offset;
            d = 0;
        }
        if (end <= pos) break;
        if (ns > 0 && o->seg_decay[ns - 1] == d) {
            o->seg_start[ns] = end;
        } else {
            o->seg_start[ns] = pos;
            o->seg_decay[ns] = d;
            ns++;
            o->seg_start[ns] = end;
        }
        pos = end;
        if (pos >= o->n || ns > 2 * m->n_tensors) break;
    }
    o->nseg = ns;
    return 0;
}

void swax_adamw_free(SwaxAdamW *o) {
    if (o->ops) {
        o->ops->free(o->m);
        o->ops->free(o->v);
    }
    o->m = o->v = NULL;
    free(o->seg_start);
    free(o->seg_decay);
    o->seg_start = NULL;
    o->seg_decay = NULL;
    o->nseg = 0;
}

void swax_adamw_get(const SwaxAdamW *o, float *m, float *v) {
    o->ops->to_host(m, o->m, o->n * sizeof(float));
    o->ops->to_host(v, o->v, o->n * sizeof(float));
}

void swax_adamw_set(SwaxAdamW *o, const float *m, const float *v) {
    o->ops->to_device(o->m, m, o->n * sizeof(float));
    o->ops->to_device(o->v, v, o->n * sizeof(float));
}

void swax_adamw_step(SwaxAdamW *o, SwaxModel *m, float lr) { swax_adamw_step_scaled(o, m, lr, 1.0f); }

void swax_adamw_step_scaled(SwaxAdamW *o, SwaxModel *m, float lr, float gscale) {
    float *g = swax_model_grads_dev(m);
    SWAX_ASSERT(g && o->n == m->n_params && o->ops == m->ops);
    o->step++;
    if (m->ops->adamw_segs && o->nseg > 0) {
        m->ops->adamw_segs(m->params, g, o->m, o->v, o->n, o->seg_start, o->seg_decay, o->nseg, gscale, lr,
                           o->cfg.beta1, o->cfg.beta2, o->cfg.eps, o->cfg.weight_decay, (int)o->step);
        if (m->ops->params_updated) m->ops->params_updated(m->params, m->n_params);
        return;
    }
    if (gscale != 1.0f) m->ops->scale(g, m->n_params, gscale);
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

float swax_clip_coef(double norm, float max_norm) {
    /* PyTorch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1 */
    if (max_norm > 0 && isfinite(norm)) {
        const double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) return (float)coef;
    }
    return 1.0f;
}

double swax_grad_clip(SwaxModel *m, float max_norm) {
    const double norm = swax_grad_norm(m);
    const float coef = swax_clip_coef(norm, max_norm);
    if (coef != 1.0f) m->ops->scale(m->grads, m->n_params, coef);
    return norm;
}
