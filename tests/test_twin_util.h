/* test_twin_util.h — the C tests' side of the PyTorch twin (reference/swax_ref.py):
 * the exchange file (tokens, targets, document starts, and optionally the C
 * model's logits, loss, gradients or losses) and the twin's float64 "truth"
 * (logits, loss and every gradient computed in float64 from a checkpoint). */
#ifndef SWAX_TEST_TWIN_UTIL_H
#define SWAX_TEST_TWIN_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "io/safetensors.h"

static inline const char *test_python(void) {
    const char *p = getenv("SWAX_PYTHON");
    return p ? p : "/usr/bin/python3";
}

/* A batch as the twin reads it. ds may be NULL (no documents). */
typedef struct {
    int B, T, window, chunk;
    const int32_t *tok, *tgt;
    const uint8_t *ds;
} TestExchange;

/* Writes the exchange file: the batch, then (logits != NULL) the logits, loss
 * and the model's gradients (host view), then (losses != NULL) a loss curve,
 * with "window", "chunk" and extra_meta (key, value, ..., NULL) as metadata. */
static inline int test_write_exchange(const char *path, SwaxModel *m, const TestExchange *x, const float *logits,
                                      float loss, const float *losses, int nlosses, const char *const *extra_meta) {
    const int nt = swax_model_num_tensors(m);
    SwaxSTTensor *ts = calloc((size_t)nt + 8, sizeof *ts);
    char (*names)[128] = calloc((size_t)nt, 128);
    if (!ts || !names) {
        free(ts), free(names);
        return SWAX_E_NOMEM;
    }
    int n = 0;
    static float lossv;
    ts[n++] = (SwaxSTTensor){"tokens", SWAX_DT_I32, 2, {x->B, x->T}, x->tok};
    ts[n++] = (SwaxSTTensor){"targets", SWAX_DT_I32, 2, {x->B, x->T}, x->tgt};
    if (x->ds) ts[n++] = (SwaxSTTensor){"doc_start", SWAX_DT_U8, 2, {x->B, x->T}, x->ds};
    if (logits) {
        ts[n++] = (SwaxSTTensor){"logits", SWAX_DT_F32, 3, {x->B, x->T, swax_model_config(m)->vocab_size}, logits};
        lossv = loss;
        ts[n++] = (SwaxSTTensor){"loss", SWAX_DT_F32, 1, {1}, &lossv};
        const float *g = swax_model_grads(m);
        for (int i = 0; i < nt; i++) {
            const char *name;
            size_t off;
            int nd;
            int64_t sh[2];
            swax_model_tensor(m, i, &name, &off, &nd, sh);
            snprintf(names[i], 128, "grad.%s", name);
            ts[n] = (SwaxSTTensor){names[i], SWAX_DT_F32, nd, {sh[0], sh[1]}, g + off};
            n++;
        }
    }
    if (losses) ts[n++] = (SwaxSTTensor){"losses", SWAX_DT_F32, 1, {nlosses}, losses};
    char wbuf[32], cbuf[32];
    snprintf(wbuf, sizeof wbuf, "%d", x->window);
    snprintf(cbuf, sizeof cbuf, "%d", x->chunk);
    const char *meta[32] = {"window", wbuf, "chunk", cbuf};
    int mi = 4;
    for (int i = 0; extra_meta && extra_meta[i] && mi < 30; i++) meta[mi++] = extra_meta[i];
    meta[mi] = NULL;
    const int rc = swax_st_write(path, ts, n, meta);
    free(ts);
    free(names);
    return rc;
}

/* The float64 truth of model m (its parameters as they are) on batch x:
 * logits (B·T·V), the loss and the gradients (n_params, in the model's flat
 * order), computed by the twin in float64 (chunkwise form, x->chunk).
 * Uses dir as scratch. Returns 0, or -1 (with a line on stdout) when the
 * twin cannot run here (no python3 with torch): the caller skips the check. */
static inline int test_twin_truth(SwaxModel *m, const TestExchange *x, const char *dir, double *logits,
                                  double *loss, double *grads) {
    char ex[600], out[600], cmd[2048];
    if (swax_model_save(m, dir) != 0) return -1;
    snprintf(ex, sizeof ex, "%s/exchange.safetensors", dir);
    snprintf(out, sizeof out, "%s/truth.safetensors", dir);
    if (test_write_exchange(ex, m, x, NULL, 0, NULL, 0, NULL) != 0) return -1;
    snprintf(cmd, sizeof cmd, "%s reference/swax_ref.py truth --model %s --exchange %s --out %s > %s/truth.log 2>&1",
             test_python(), dir, ex, out, dir);
    if (system(cmd) != 0) {
        printf("  (float64 twin not run: '%s' failed; see %s/truth.log)\n", cmd, dir);
        return -1;
    }
    SwaxSTFile f;
    if (swax_st_open(out, &f) != 0) return -1;
    int rc = 0;
    const size_t V = (size_t)swax_model_config(m)->vocab_size, N = (size_t)x->B * x->T;
    const SwaxSTEntry *e = swax_st_find(&f, "logits");
    const SwaxSTEntry *el = swax_st_find(&f, "loss");
    if (!e || e->dtype != SWAX_DT_F64 || e->nbytes != sizeof(double) * N * V || !el || el->dtype != SWAX_DT_F64 ||
        el->nbytes != sizeof(double))
        rc = -1;
    else {
        memcpy(logits, swax_st_data(&f, e), sizeof(double) * N * V);
        memcpy(loss, swax_st_data(&f, el), sizeof(double));
    }
    for (int i = 0; !rc && i < swax_model_num_tensors(m); i++) {
        const char *name;
        size_t off;
        int nd;
        int64_t sh[2];
        swax_model_tensor(m, i, &name, &off, &nd, sh);
        char key[160];
        snprintf(key, sizeof key, "grad.%s", name);
        const SwaxSTEntry *g = swax_st_find(&f, key);
        if (!g || g->dtype != SWAX_DT_F64 || g->nbytes != sizeof(double) * (size_t)sh[0] * (size_t)sh[1]) rc = -1;
        else memcpy(grads + off, swax_st_data(&f, g), sizeof(double) * (size_t)sh[0] * (size_t)sh[1]);
    }
    swax_st_close(&f);
    if (rc) printf("  (float64 twin output %s incomplete)\n", out);
    return rc;
}

#endif
