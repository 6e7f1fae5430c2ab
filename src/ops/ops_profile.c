/* ops_profile.c — a table that wraps another one and times each slot
 * (SWAX_PROFILE=1), on the CPU as on a GPU: it waits for the device before
 * and after every call, so the times are exact per op and the whole run is slower. Matrix products are
 * keyed by their shape. `swax bench train` prints the report, and `swax bench
 * infer --device cuda` one per decode batch (graphs are off while profiling). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/ops.h"

enum { PROF_CAP = 128 };
static struct {
    char name[64];
    double seconds;
    long calls;
} prof[PROF_CAP];
static int n_prof;
static const SwaxOps *inner;
static SwaxOps wrapped;

static double prof_begin(void) {
    inner->sync();
    return swax_time_sec();
}

static void prof_end(const char *name, double t0) {
    inner->sync();
    const double dt = swax_time_sec() - t0;
    for (int i = 0; i < n_prof; i++)
        if (!strcmp(prof[i].name, name)) {
            prof[i].seconds += dt, prof[i].calls++;
            return;
        }
    if (n_prof < PROF_CAP) {
        snprintf(prof[n_prof].name, sizeof prof[n_prof].name, "%s", name);
        prof[n_prof].seconds = dt, prof[n_prof].calls = 1;
        n_prof++;
    }
}

#define TIMED(name, call)              \
    do {                               \
        const double t0_ = prof_begin(); \
        call;                          \
        prof_end(name, t0_);           \
    } while (0)

static void p_matmul_fwd(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC) {
    char nm[64];
    snprintf(nm, sizeof nm, "matmul_fwd %dx%d", C, OC);
    TIMED(nm, inner->matmul_fwd(out, ldo, inp, ldi, w, N, C, OC));
}
static void p_matmul_fwd_add(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC,
                             const float *resid) {
    char nm[64];
    snprintf(nm, sizeof nm, "matmul_fwd_add %dx%d", C, OC);
    TIMED(nm, inner->matmul_fwd_add(out, ldo, inp, ldi, w, N, C, OC, resid));
}
static int p_matmul_fwd_in(float *out, long ldo, const float *inp, long ldi, int mode, const float *nw, float eps,
                           const float *w, int N, int C, int OC, const float *resid) {
    char nm[64];
    snprintf(nm, sizeof nm, "matmul_fwd_%s%s %dx%d", mode == SWAX_MM_IN_RMSNORM ? "rmsnorm" : "swiglu",
             resid ? "_add" : "", C, OC);
    const double t0 = prof_begin();
    const int rc = inner->matmul_fwd_in(out, ldo, inp, ldi, mode, nw, eps, w, N, C, OC, resid);
    if (rc == 0) prof_end(nm, t0); /* a refused call runs as the separate kernels, timed as those */
    return rc;
}
static void p_matmul_bwd(float *dinp, long lddi, float *dw, const float *dout, long lddo, const float *inp, long ldi,
                         const float *w, int N, int C, int OC, int acc) {
    char nm[64];
    snprintf(nm, sizeof nm, "matmul_bwd %dx%d", C, OC);
    TIMED(nm, inner->matmul_bwd(dinp, lddi, dw, dout, lddo, inp, ldi, w, N, C, OC, acc));
}
static void p_embed_fwd(float *out, const int32_t *tok, const float *wte, int N, int D) {
    TIMED("embed_fwd", inner->embed_fwd(out, tok, wte, N, D));
}
static void p_embed_bwd(float *dwte, const float *dout, const int32_t *tok, int N, int D) {
    TIMED("embed_bwd", inner->embed_bwd(dwte, dout, tok, N, D));
}
static void p_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int N, int D, float eps) {
    TIMED("rmsnorm_fwd", inner->rmsnorm_fwd(out, rstd, inp, w, N, D, eps));
}
static void p_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                          const float *rstd, int N, int D) {
    TIMED("rmsnorm_bwd", inner->rmsnorm_bwd(dinp, dw, dout, inp, w, rstd, N, D));
}
static void p_add(float *y, const float *x, size_t n) { TIMED("add", inner->add(y, x, n)); }
static void p_swiglu_fwd(float *h, const float *gu, int N, int F) { TIMED("swiglu_fwd", inner->swiglu_fwd(h, gu, N, F)); }
static void p_swiglu_bwd(float *dgu, const float *dh, const float *gu, int N, int F) {
    TIMED("swiglu_bwd", inner->swiglu_bwd(dgu, dh, gu, N, F));
}
static void p_attn_fwd(SwaxAttnCall *c) { TIMED("attn_fwd", inner->attn_fwd(c)); }
static void p_attn_bwd(SwaxAttnCall *c) { TIMED("attn_bwd", inner->attn_bwd(c)); }
static void p_gates_fwd(float *ig, float *lf, const float *pre, long ldp, const float *bias, int N, int NH, float cap) {
    TIMED("mlstm_gates_fwd", inner->mlstm_gates_fwd(ig, lf, pre, ldp, bias, N, NH, cap));
}
static void p_gates_bwd(float *dpre, long ldp, float *dbias, const float *dig, const float *dlf, const float *pre,
                        long ldpre, const float *bias, int N, int NH, float cap) {
    TIMED("mlstm_gates_bwd", inner->mlstm_gates_bwd(dpre, ldp, dbias, dig, dlf, pre, ldpre, bias, N, NH, cap));
}
static void p_cell_fwd(SwaxMlstmCall *c) { TIMED("mlstm_cell_fwd", inner->mlstm_cell_fwd(c)); }
static void p_cell_bwd(SwaxMlstmCall *c) { TIMED("mlstm_cell_bwd", inner->mlstm_cell_bwd(c)); }
static void p_out_fwd(float *y, float *hn, float *mean, float *rstd, const float *h, const float *og, long ldog,
                      const float *w, int N, int NH, int dv, float eps) {
    TIMED("mlstm_out_fwd", inner->mlstm_out_fwd(y, hn, mean, rstd, h, og, ldog, w, N, NH, dv, eps));
}
static void p_out_bwd(float *dh, float *dog, long lddog, float *dw, const float *dy, const float *hn, const float *h,
                      const float *mean, const float *rstd, const float *og, long ldog, const float *w, int N, int NH,
                      int dv) {
    TIMED("mlstm_out_bwd", inner->mlstm_out_bwd(dh, dog, lddog, dw, dy, hn, h, mean, rstd, og, ldog, w, N, NH, dv));
}
static void p_xent_fwd(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V, int Vused,
                       float cap) {
    TIMED("xent_fwd", inner->xent_fwd(logits, lse, losses, targets, N, V, Vused, cap));
}
static void p_xent_bwd(float *logits, const float *lse, const int32_t *targets, int N, int V, int Vused, float cap,
                       float scale) {
    TIMED("xent_bwd", inner->xent_bwd(logits, lse, targets, N, V, Vused, cap, scale));
}
static void p_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                    float wd, int step) {
    TIMED("adamw", inner->adamw(p, g, m, v, n, lr, b1, b2, eps, wd, step));
}
static void p_adamw_segs(float *p, const float *g, float *m, float *v, size_t n, const size_t *start,
                         const uint8_t *decay, int nseg, float gscale, float lr, float b1, float b2, float eps, float wd,
                         int step) {
    TIMED("adamw_segs", inner->adamw_segs(p, g, m, v, n, start, decay, nseg, gscale, lr, b1, b2, eps, wd, step));
}
static void p_xent_train(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V, int Vused,
                         float cap, float scale) {
    TIMED("xent_train", inner->xent_train(logits, lse, losses, targets, N, V, Vused, cap, scale));
}
static double p_sumsq(const float *x, size_t n) {
    double r;
    TIMED("sumsq", r = inner->sumsq(x, n));
    return r;
}
static void p_scale(float *x, size_t n, float s) { TIMED("scale", inner->scale(x, n, s)); }
static void p_params_updated(const float *params, size_t n) {
    TIMED("params_updated", inner->params_updated(params, n));
}
static void p_to_device(void *dst, const void *src, size_t bytes) { TIMED("to_device", inner->to_device(dst, src, bytes)); }
static void p_to_host(void *dst, const void *src, size_t bytes) { TIMED("to_host", inner->to_host(dst, src, bytes)); }
static void p_zero(void *p, size_t bytes) { TIMED("zero", inner->zero(p, bytes)); }

/* inference slots (bench infer's decode report) */
static void p_gdn_fwd(SwaxGdnCall *c) { TIMED("gdn_fwd", inner->gdn_fwd(c)); }
static void p_gdn_bwd(SwaxGdnCall *c) { TIMED("gdn_bwd", inner->gdn_bwd(c)); }
static void p_infer_attn(const SwaxInferAttnCall *c) { TIMED("infer_attn", inner->infer_attn(c)); }
static void p_infer_mlstm_step(const SwaxInferStepCall *c) { TIMED("infer_mlstm_step", inner->infer_mlstm_step(c)); }
static void p_infer_gdn(const SwaxInferGdnCall *c) { TIMED("infer_gdn", inner->infer_gdn(c)); }
static void p_argmax(int32_t *out, const float *logits, int N, int V, int Vused) {
    TIMED("argmax", inner->argmax(out, logits, N, V, Vused));
}

const SwaxOps *swax_ops_profiled(const SwaxOps *ops) {
    inner = ops;
    wrapped = *ops;
    wrapped.matmul_fwd = p_matmul_fwd, wrapped.matmul_bwd = p_matmul_bwd;
    wrapped.embed_fwd = p_embed_fwd, wrapped.embed_bwd = p_embed_bwd;
    wrapped.rmsnorm_fwd = p_rmsnorm_fwd, wrapped.rmsnorm_bwd = p_rmsnorm_bwd, wrapped.add = p_add;
    wrapped.swiglu_fwd = p_swiglu_fwd, wrapped.swiglu_bwd = p_swiglu_bwd;
    wrapped.attn_fwd = p_attn_fwd, wrapped.attn_bwd = p_attn_bwd;
    wrapped.mlstm_gates_fwd = p_gates_fwd, wrapped.mlstm_gates_bwd = p_gates_bwd;
    wrapped.mlstm_cell_fwd = p_cell_fwd, wrapped.mlstm_cell_bwd = p_cell_bwd;
    wrapped.mlstm_out_fwd = p_out_fwd, wrapped.mlstm_out_bwd = p_out_bwd;
    wrapped.xent_fwd = p_xent_fwd, wrapped.xent_bwd = p_xent_bwd;
    wrapped.adamw = p_adamw, wrapped.sumsq = p_sumsq, wrapped.scale = p_scale;
    wrapped.to_device = p_to_device, wrapped.to_host = p_to_host, wrapped.zero = p_zero;
    if (ops->params_updated) wrapped.params_updated = p_params_updated;
    if (ops->adamw_segs) wrapped.adamw_segs = p_adamw_segs;
    if (ops->xent_train) wrapped.xent_train = p_xent_train;
    if (ops->matmul_fwd_add) wrapped.matmul_fwd_add = p_matmul_fwd_add;
    if (ops->matmul_fwd_in) wrapped.matmul_fwd_in = p_matmul_fwd_in;
    if (ops->gdn_fwd) wrapped.gdn_fwd = p_gdn_fwd;
    if (ops->gdn_bwd) wrapped.gdn_bwd = p_gdn_bwd;
    if (ops->infer_attn) wrapped.infer_attn = p_infer_attn;
    if (ops->infer_mlstm_step) wrapped.infer_mlstm_step = p_infer_mlstm_step;
    if (ops->infer_gdn) wrapped.infer_gdn = p_infer_gdn;
    if (ops->argmax) wrapped.argmax = p_argmax;
    return &wrapped;
}

static int by_time(const void *a, const void *b) {
    const double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return x < y ? 1 : x > y ? -1 : 0;
}

void swax_ops_profile_report(FILE *f, long steps) {
    if (!n_prof) return;
    double total = 0;
    for (int i = 0; i < n_prof; i++) total += prof[i].seconds;
    /* sort by time: (seconds, index) pairs */
    double order[PROF_CAP][2];
    for (int i = 0; i < n_prof; i++) order[i][0] = prof[i].seconds, order[i][1] = i;
    qsort(order, n_prof, sizeof order[0], by_time);
    fprintf(f, "| op (per step) | ms | share | calls |\n|---|---|---|---|\n");
    for (int j = 0; j < n_prof; j++) {
        const int i = (int)order[j][1];
        fprintf(f, "| %s | %.3f | %.1f%% | %ld |\n", prof[i].name, 1e3 * prof[i].seconds / (steps ? steps : 1),
                100 * prof[i].seconds / total, prof[i].calls / (steps ? steps : 1));
    }
    fprintf(f, "| total | %.3f | | |\n", 1e3 * total / (steps ? steps : 1));
}

void swax_ops_profile_reset(void) { n_prof = 0; }

int swax_ops_profile_on(void) {
    const char *p = getenv("SWAX_PROFILE");
    return p && atoi(p) > 0;
}
