/* infer_gdn.c — see infer_gdn.h. The arithmetic is the training layer's
 * (ops/cpu/gdn_layer.c's rows, gdn_cell's chunkwise form and step): only where
 * the convolution's earlier inputs come from differs (the state's history).
 * The CUDA tables' infer_gdn slot (ops/cuda/gdn.cu) computes the same on the
 * device over the same state layout. */
#include "infer/infer_gdn.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/gdn_cell.h"
#include "ops/cpu/gdn_layer.h"

size_t swax_gdn_state_floats(const SwaxModel *m) {
    return (size_t)m->NHd * m->dkd * m->dvd + 3 * 2 * (size_t)m->cfg.d_model;
}

size_t swax_gdn_scratch_floats(const SwaxModel *m) { return 3 * (size_t)m->cfg.d_model + 4 * (size_t)m->NHd; }

int swax_gdn_infer(const SwaxModel *m, int l, int R, const float *mix, long ldm, float *const *state, int prefill,
                   long pos0, int L, float *scratch, float *y) {
    /* host memory only: a device model's layers go to its table's infer_gdn
     * slot (infer.c's gdn_layer_dev), the same arithmetic over the same state */
    SWAX_ASSERT(!m->ops->is_device);
    const BlockW *w = &m->w.blocks[l];
    const int D = m->cfg.d_model, C = 2 * D, NH = m->NHd, dk = m->dkd, dv = m->dvd;
    const size_t nS = (size_t)NH * dk * dv;
    /* scratch (R rows): qkv (2D), o (D), rqk (2NH), β, g (NH) */
    float *qkv = scratch, *o = qkv + (size_t)R * C, *rqk = o + (size_t)R * D, *beta = rqk + (size_t)R * 2 * NH;
    float *g = beta + (size_t)R * NH;
    int fail = 0;
    if (prefill) {
        float *hist = state[0] + nS; /* (3, 2D): positions pos0 − 3 .. pos0 − 1 */
#pragma omp parallel for schedule(static)
        for (int r = 0; r < R; r++) {
            const float *x[4];
            for (int j = 0; j < 4; j++) x[j] = r - j >= 0 ? mix + (size_t)(r - j) * ldm : hist + (size_t)(3 + r - j) * C;
            swax_gdn_prep_row(x, NH, dk, dv, w->conv_w, w->A_log, w->dt_bias, NULL, qkv + (size_t)r * C,
                              rqk + (size_t)r * 2 * NH, beta + (size_t)r * NH, g + (size_t)r * NH);
        }
        const int head = (int)((L - pos0 % L) % L) < R ? (int)((L - pos0 % L) % L) : R;
#pragma omp parallel for schedule(static) reduction(| : fail)
        for (int h = 0; h < NH; h++) {
            float *S = state[0] + (size_t)h * dk * dv;
            for (int part = 0; part < 2; part++) {
                const int r0 = part ? head : 0, n = part ? R - head : head;
                if (n <= 0) continue;
                GdnArgs_f a;
                memset(&a, 0, sizeof a);
                a.T = n, a.dk = dk, a.dv = dv, a.L = L;
                a.q = qkv + (size_t)r0 * C + (size_t)h * dk, a.ldq = C;
                a.k = qkv + (size_t)r0 * C + (size_t)NH * dk + (size_t)h * dk, a.ldk = C;
                a.v = qkv + (size_t)r0 * C + (size_t)D + (size_t)h * dv, a.ldv = C;
                a.beta = beta + (size_t)r0 * NH + h, a.g = g + (size_t)r0 * NH + h, a.ldg = NH;
                a.S0 = S, a.S1 = S;
                a.o = o + (size_t)r0 * D + (size_t)h * dv, a.ldo = D;
                fail |= swax_gdn_chunkwise_fwd_f(&a) != 0;
            }
        }
        /* the history takes the last 3 inputs of (history, rows) */
        for (int i = 0; i < 3; i++) {
            const int src = R - 3 + i;
            memmove(hist + (size_t)i * C, src >= 0 ? mix + (size_t)src * ldm : hist + (size_t)(3 + src) * C,
                    sizeof(float) * C);
        }
    } else {
#pragma omp parallel for schedule(static) if (R > 1)
        for (int r = 0; r < R; r++) {
            float *hist = state[r] + nS;
            const float *x[4] = {mix + (size_t)r * ldm, hist + 2 * (size_t)C, hist + (size_t)C, hist};
            swax_gdn_prep_row(x, NH, dk, dv, w->conv_w, w->A_log, w->dt_bias, NULL, qkv + (size_t)r * C,
                              rqk + (size_t)r * 2 * NH, beta + (size_t)r * NH, g + (size_t)r * NH);
            for (int h = 0; h < NH; h++) {
                const float *row = qkv + (size_t)r * C;
                swax_gdn_step_f(dk, dv, row + (size_t)h * dk, row + (size_t)NH * dk + (size_t)h * dk,
                                row + D + (size_t)h * dv, beta[(size_t)r * NH + h], g[(size_t)r * NH + h], 0,
                                state[r] + (size_t)h * dk * dv, o + (size_t)r * D + (size_t)h * dv);
            }
            memmove(hist, hist + C, sizeof(float) * 2 * C);
            memcpy(hist + 2 * (size_t)C, mix + (size_t)r * ldm, sizeof(float) * C);
        }
    }
    if (fail) return -1;
#pragma omp parallel for schedule(static) if (R > 1)
    for (int r = 0; r < R; r++)
        swax_gdn_out_row(o + (size_t)r * D, mix + (size_t)r * ldm + 2 * (size_t)D, w->mix_norm, NH, dv,
                         m->cfg.norm_eps, y + (size_t)r * D, NULL);
    return 0;
}
