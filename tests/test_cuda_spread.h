/* test_cuda_spread.h — fp32's own rounding spread on a case, the yardstick the
 * GPU model tests hold the fp32 GPU path to (after test_cuda.h and test_util.h). */
#ifndef SWAX_TEST_CUDA_SPREAD_H
#define SWAX_TEST_CUDA_SPREAD_H

#include <math.h>

#include "model/model.h"

/* fp32's own spread on a case: the CPU path again with every product's output
 * moved by at most half an ulp (a random factor 1 + u 2^-24, |u| <= 1). On
 * the chaotic random models here one such draw moves some gradients by 1e-3
 * (case 2: 0.9e-4 to 1.6e-3 from the float64 truth over 40 draws, median
 * 7e-4), so one CPU run's distance from the truth is not a yardstick; the
 * largest over a few draws is. */
static SwaxRng nudge_rng;
static void nudged_matmul_fwd(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int Cc, int OC) {
    C->matmul_fwd(out, ldo, inp, ldi, w, N, Cc, OC);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OC; j++) {
            float *o = &out[(size_t)i * ldo + j];
            *o = (float)(*o * (1.0 + (2.0 * swax_rng_uniform(&nudge_rng) - 1.0) * 0x1p-24));
        }
}

/* The largest distance from reference logits tl and gradients tg (the float64
 * truth, or the plain CPU run) over `draws` nudged CPU runs of cm on b: *el,
 * *eg. Seed nudge_rng first. */
static void cpu_fp32_spread(SwaxModel *cm, const SwaxBatch *b, const float *tl, const float *tg, int draws, double *el,
                            double *eg) {
    SwaxOps nudged = *C;
    nudged.matmul_fwd = nudged_matmul_fwd;
    const SwaxOps *keep = cm->ops;
    cm->ops = &nudged;
    const size_t nl = (size_t)b->B * b->T * swax_model_config(cm)->vocab_size;
    *el = *eg = 0;
    for (int d = 0; d < draws; d++) {
        float loss;
        const char *w;
        swax_zero_grad(cm);
        SWAX_ASSERT(swax_forward(cm, b, &loss) == 0);
        *el = fmax(*el, rel_err(swax_model_logits(cm), tl, nl));
        SWAX_ASSERT(swax_backward(cm, 1.0f) == 0);
        *eg = fmax(*eg, test_grad_err(cm, swax_model_grads(cm), tg, &w));
    }
    cm->ops = keep;
}

#endif
