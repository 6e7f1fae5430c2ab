/* test_util.h — helpers shared by the model tests. */
#ifndef SWAX_TEST_UTIL_H
#define SWAX_TEST_UTIL_H

#include <math.h>
#include <string.h>

#include "core/common.h"
#include "train/optim.h"

/* Random values in every parameter (init leaves the gates at 0, which would
 * hide bugs): norm weights 1 + 0.2 z, gate biases 1.5 z, weights weight_sd z. */
static inline void test_randomize_params(SwaxModel *m, SwaxRng *r, double weight_sd) {
    float *p = swax_model_params(m);
    for (int i = 0; i < swax_model_num_tensors(m); i++) {
        const char *name;
        size_t off;
        int nd;
        int64_t sh[2];
        swax_model_tensor(m, i, &name, &off, &nd, sh);
        const size_t n = (size_t)sh[0] * (size_t)sh[1];
        for (size_t j = 0; j < n; j++) {
            const double z = swax_rng_normal(r);
            if (strstr(name, "norm")) p[off + j] = (float)(1.0 + 0.2 * z);
            else if (strstr(name, "bias")) p[off + j] = (float)(1.5 * z);
            else p[off + j] = (float)(weight_sd * z);
        }
    }
}

/* Worst per-tensor relative error of gradient a against b; names the tensor.
 * Each tensor's error is relative to its largest |b|, but never to less than
 * 1e-3 of the largest |b| over all tensors: some gradients are exactly zero
 * (W_q, W_k of an SWA layer at window 1, where softmax over one key is 1), and
 * both sides then hold only rounding noise. */
static inline double test_grad_err(SwaxModel *m, const float *a, const float *b, const char **worst) {
    double w = 0, gmax = 0;
    const size_t n = swax_model_num_params(m);
    for (size_t i = 0; i < n; i++) gmax = fabs(b[i]) > gmax ? fabs(b[i]) : gmax;
    *worst = "";
    for (int i = 0; i < swax_model_num_tensors(m); i++) {
        const char *name;
        size_t off;
        int nd;
        int64_t sh[2];
        swax_model_tensor(m, i, &name, &off, &nd, sh);
        double md = 0, mr = 1e-3 * gmax;
        for (size_t j = off; j < off + (size_t)sh[0] * (size_t)sh[1]; j++) {
            const double d = fabs((double)a[j] - (double)b[j]);
            if (!(d <= md)) md = d; /* NaN propagates */
            if (fabs(b[j]) > mr) mr = fabs(b[j]);
        }
        const double e = md / (mr > 1e-30 ? mr : 1e-30);
        if (!(e <= w)) w = e, *worst = name;
    }
    return w;
}

/* A second model with cm's config and weights, moved to `device` ("cuda-fp32", "cuda", ...). */
static inline SwaxModel *test_model_twin_on(SwaxModel *cm, const char *device) {
    SwaxModel *g;
    SWAX_ASSERT(swax_model_create(swax_model_config(cm), &g) == 0);
    memcpy(swax_model_params(g), swax_model_params(cm), sizeof(float) * swax_model_num_params(cm));
    SWAX_ASSERT(swax_model_set_device(g, device) == 0);
    return g;
}

/* Three AdamW steps two ways on two copies of a model with the same batch:
 * swax_grad_clip + one adamw call per tensor (the segment table switched
 * off) on a, the fused swax_adamw_step_scaled on b; with max_norm small enough
 * that the clipping acts. Returns 0 when the parameters and moments agree bit
 * for bit after every step, else the first step that differs. */
static inline int test_fused_adamw_differs(SwaxModel *a, SwaxModel *b, const SwaxBatch *batch, float max_norm) {
    SwaxAdamW oa, ob;
    SWAX_ASSERT(swax_adamw_init(&oa, a, swax_adamw_defaults()) == 0);
    SWAX_ASSERT(swax_adamw_init(&ob, b, swax_adamw_defaults()) == 0);
    SWAX_ASSERT(ob.nseg >= 1 && ob.seg_start[ob.nseg] == swax_model_num_params(b));
    const int nseg = oa.nseg;
    oa.nseg = 0; /* per tensor */
    const size_t n = swax_model_num_params(a);
    float *ha = malloc(sizeof(float) * 2 * n), *hb = malloc(sizeof(float) * 2 * n);
    int bad = 0;
    for (int s = 1; s <= 3 && !bad; s++) {
        float la, lb;
        swax_zero_grad(a), swax_zero_grad(b);
        SWAX_ASSERT(swax_forward(a, batch, &la) == 0 && swax_backward(a, 1.0f) == 0);
        SWAX_ASSERT(swax_forward(b, batch, &lb) == 0 && swax_backward(b, 1.0f) == 0);
        swax_grad_clip(a, max_norm);
        swax_adamw_step(&oa, a, 1e-2f);
        swax_adamw_step_scaled(&ob, b, 1e-2f, swax_clip_coef(swax_grad_norm(b), max_norm));
        if (memcmp(swax_model_params(a), swax_model_params(b), sizeof(float) * n) != 0) bad = s;
        swax_adamw_get(&oa, ha, ha + n);
        swax_adamw_get(&ob, hb, hb + n);
        if (memcmp(ha, hb, sizeof(float) * 2 * n) != 0) bad = s;
    }
    printf("  fused AdamW (%d segments) vs clip + per-tensor steps: %s\n", nseg, bad ? "DIFFER" : "bit-identical");
    free(ha), free(hb);
    oa.nseg = nseg;
    swax_adamw_free(&oa), swax_adamw_free(&ob);
    return bad;
}

/* Buffers for two batches of n tokens (tokens, targets, document starts). */
typedef struct {
    int32_t *tok[2], *tgt[2];
    uint8_t *ds[2];
} TestTwoBatches;
static inline TestTwoBatches test_two_batches(int n) {
    TestTwoBatches t;
    for (int i = 0; i < 2; i++) {
        t.tok[i] = malloc(sizeof(int32_t) * n), t.tgt[i] = malloc(sizeof(int32_t) * n), t.ds[i] = malloc(n);
        SWAX_ASSERT(t.tok[i] && t.tgt[i] && t.ds[i]);
    }
    return t;
}
static inline void test_two_batches_free(TestTwoBatches *t) {
    for (int i = 0; i < 2; i++) free(t->tok[i]), free(t->tgt[i]), free(t->ds[i]);
}

/* The stochastic window schedule's trap: a step at one window must leave
 * nothing behind (saved activations, scratch sized by the first window seen,
 * kept copies, tile choices) that a later step at another reads. Two fresh
 * twins of m on `device`: one runs a forward and backward of b1 (another
 * window and batch) and then of b2, the other only b2. Returns 0 when the
 * loss and every gradient at b2 are the same bits in both; 1: the loss
 * differs; 2: a gradient; 3: b1 gave b2's loss (the check would see
 * nothing). swax_model_grads copies to the host on a device. */
static inline int test_window_trace(SwaxModel *m, const char *device, const SwaxBatch *b2, const SwaxBatch *b1) {
    SwaxModel *a = test_model_twin_on(m, device), *c = test_model_twin_on(m, device);
    const size_t n = swax_model_num_params(m);
    float la, lc, lx;
    /* c first: before b1 has touched anything the process keeps (a device's scratch, plans, kept copies) */
    SWAX_ASSERT(swax_forward(c, b2, &lc) == 0 && swax_backward(c, 1.0f) == 0);
    SWAX_ASSERT(swax_forward(a, b1, &lx) == 0 && swax_backward(a, 1.0f) == 0);
    swax_zero_grad(a);
    SWAX_ASSERT(swax_forward(a, b2, &la) == 0 && swax_backward(a, 1.0f) == 0);
    const int rc = memcmp(&la, &lc, sizeof la)                                                 ? 1
                   : memcmp(swax_model_grads(a), swax_model_grads(c), sizeof(float) * n) != 0 ? 2
                   : lx == lc                                                                  ? 3
                                                                                               : 0;
    swax_model_free(a), swax_model_free(c);
    return rc;
}

#endif
