/* ops_bench.c — kernel timings of one ops table at the shapes of SPEC §8:
 * SWA forward+backward (B8 H16 T4096 d64, w 128 and 2048) and the mLSTM cell
 * forward+backward (B8 NH4 T4096, DQK 128, DV 256, chunks 64 and 128) and the Gated
 * DeltaNet layer's middle, gdn_fwd + gdn_bwd, at the same shape (FLA's
 * chunk_gated_delta_rule benchmark shape B8 T4096 H4 dk128 dv256; ours also
 * runs the short convolutions, the q/k norms, the gates and the gated
 * RMSNorm), on fresh random inputs, median of several runs after a warm-up. One JSON line per figure;
 * scripts/test_cuda.sh prints them beside the PyTorch figures
 * (scripts/gpu_baseline.py) measured on the same card. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/ops.h"

static void *dev_random(const SwaxOps *ops, SwaxRng *r, size_t n, float lo, float hi) {
    float *h = malloc(sizeof(float) * n);
    float *d = ops->alloc(sizeof(float) * n);
    if (!h || !d) {
        free(h);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) h[i] = lo + (hi - lo) * (float)swax_rng_uniform(r);
    ops->to_device(d, h, sizeof(float) * n);
    free(h);
    return d;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* median seconds of fn over reps runs (one warm-up) */
typedef void (*bench_fn)(void *ctx, int phase);
static double time_median(const SwaxOps *ops, bench_fn fn, void *ctx, int phase, int reps) {
    double t[32];
    if (reps > 32) reps = 32;
    fn(ctx, phase);
    ops->sync();
    for (int i = 0; i < reps; i++) {
        const double t0 = swax_time_sec();
        fn(ctx, phase);
        ops->sync();
        t[i] = swax_time_sec() - t0;
    }
    qsort(t, reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

typedef struct {
    const SwaxOps *ops;
    SwaxAttnCall c;
} AttnCtx;

/* (the forward rotates q, k in place each run: rotations keep their norms) */
static void attn_run(void *p, int phase) {
    AttnCtx *a = p;
    if (phase == 0 || phase == 2) a->ops->attn_fwd(&a->c);
    if (phase == 1 || phase == 2) a->ops->attn_bwd(&a->c);
}

typedef struct {
    const SwaxOps *ops;
    SwaxMlstmCall c;
} MlstmCtx;

static void mlstm_run(void *p, int phase) {
    MlstmCtx *m = p;
    if (phase == 0 || phase == 2) m->ops->mlstm_cell_fwd(&m->c);
    if (phase == 1 || phase == 2) m->ops->mlstm_cell_bwd(&m->c);
}

typedef struct {
    const SwaxOps *ops;
    SwaxGdnCall c;
} GdnCtx;

static void gdn_run(void *p, int phase) {
    GdnCtx *g = p;
    if (phase == 0 || phase == 2) g->ops->gdn_fwd(&g->c);
    if (phase == 1 || phase == 2) g->ops->gdn_bwd(&g->c);
}

/* Gated DeltaNet: B8 T4096 NH4 dk128 dv256 (D 1024, bench-gpu's layer), chunk 64, no documents */
static int gdn_bench(const SwaxOps *ops, SwaxRng *r, FILE *out, int reps) {
    const int B = 8, NH = 4, T = 4096, dk = 128, dv = 256, L = 64, nC = (T + L - 1) / L, D = NH * dv;
    const size_t N = (size_t)B * T, ldp = 3 * (size_t)D + 2 * (size_t)NH;
    GdnCtx g = {ops, {0}};
    SwaxGdnCall *c = &g.c;
    c->B = B, c->T = T, c->NH = NH, c->dk = dk, c->dv = dv, c->L = L, c->eps = 1e-5f, c->max_chunks = nC;
    c->proj = dev_random(ops, r, N * ldp, -1, 1), c->ldp = (long)ldp;
    c->conv_w = dev_random(ops, r, 2 * (size_t)D * 4, -0.5f, 0.5f);
    c->A_log = dev_random(ops, r, NH, 0, 2.7f);
    c->dt_bias = dev_random(ops, r, NH, -4, -1);
    c->norm_w = dev_random(ops, r, D, 1, 1);
    c->y = dev_random(ops, r, N * D, 0, 0);
    c->xc = dev_random(ops, r, N * 2 * D, 0, 0);
    c->qkv = dev_random(ops, r, N * 2 * D, 0, 0);
    c->rqk = dev_random(ops, r, N * 2 * NH, 0, 0);
    c->beta = dev_random(ops, r, N * NH, 0, 0);
    c->g = dev_random(ops, r, N * NH, 0, 0);
    c->o = dev_random(ops, r, N * D, 0, 0);
    c->orstd = dev_random(ops, r, N * NH, 0, 0);
    c->Ss = dev_random(ops, r, (size_t)B * NH * nC * dk * dv, 0, 0);
    c->dy = dev_random(ops, r, N * D, -1, 1);
    c->dproj = dev_random(ops, r, N * ldp, 0, 0);
    c->dconv_w = dev_random(ops, r, 2 * (size_t)D * 4, 0, 0);
    c->dA_log = dev_random(ops, r, NH, 0, 0);
    c->ddt_bias = dev_random(ops, r, NH, 0, 0);
    c->dnorm_w = dev_random(ops, r, D, 0, 0);
    c->scratch = dev_random(ops, r, N * ldp, 0, 0);
    void *ptrs[] = {(void *)c->proj, (void *)c->conv_w, (void *)c->A_log, (void *)c->dt_bias, (void *)c->norm_w,
                    c->y, c->xc, c->qkv, c->rqk, c->beta, c->g, c->o, c->orstd, c->Ss, (void *)c->dy, c->dproj,
                    c->dconv_w, c->dA_log, c->ddt_bias, c->dnorm_w, c->scratch};
    const size_t np = sizeof ptrs / sizeof ptrs[0];
    int ok = 1;
    for (size_t i = 0; i < np; i++) ok &= ptrs[i] != NULL;
    if (ok) {
        const double tf = time_median(ops, gdn_run, &g, 0, reps);
        const double tb = time_median(ops, gdn_run, &g, 1, reps);
        fprintf(out,
                "{\"bench\": \"gdn\", \"device\": \"%s\", \"B\": %d, \"NH\": %d, \"T\": %d, \"dk\": %d, \"dv\": %d, "
                "\"chunk\": %d, \"fwd_ms\": %.3f, \"bwd_ms\": %.3f, \"fwdbwd_ms\": %.3f}\n",
                ops->name, B, NH, T, dk, dv, L, tf * 1e3, tb * 1e3, (tf + tb) * 1e3);
        fflush(out);
    }
    for (size_t i = 0; i < np; i++)
        if (ptrs[i]) ops->free(ptrs[i]);
    return ok ? 0 : SWAX_E_NOMEM;
}

int swax_ops_bench(const SwaxOps *ops, FILE *out) {
    SwaxRng r;
    swax_rng_seed(&r, 42, 0);
    const int reps = 9;
    /* SWA: B8 H16 T4096 d64 */
    {
        const int B = 8, H = 16, T = 4096, dh = 64, HD = H * dh;
        const size_t N = (size_t)B * T;
        AttnCtx a = {ops, {0}};
        a.c.B = B, a.c.T = T, a.c.H = H, a.c.dh = dh, a.c.rope_theta = 10000;
        a.c.qkv = dev_random(ops, &r, N * 3 * HD, -1, 1);
        a.c.out = dev_random(ops, &r, N * HD, 0, 0);
        a.c.lse = dev_random(ops, &r, N * H, 0, 0);
        a.c.dout = dev_random(ops, &r, N * HD, -1, 1);
        a.c.dqkv = dev_random(ops, &r, N * 3 * HD, 0, 0);
        if (!a.c.qkv || !a.c.out || !a.c.lse || !a.c.dout || !a.c.dqkv) return SWAX_E_NOMEM;
        const int windows[2] = {128, 2048};
        /* The tensor-core table ("cuda") runs attn_tc.cu's current kernels
         * and, through SWAX_ATTN_TC=old, the previous ones: both are timed
         * (one line each, "attn_tc": "new" / "old") unless the caller set
         * SWAX_ATTN_TC itself. Other tables: one line ("attn_tc": "-"). */
        const char *env = getenv("SWAX_ATTN_TC");
        const int both = !env && strcmp(ops->name, "cuda") == 0;
        for (int wi = 0; wi < 2; wi++)
            for (int ver = 0; ver < (both ? 2 : 1); ver++) {
                if (both) {
                    if (ver) setenv("SWAX_ATTN_TC", "old", 1);
                    else unsetenv("SWAX_ATTN_TC");
                }
                a.c.window = windows[wi];
                const double tf = time_median(ops, attn_run, &a, 0, reps);
                const double tb = time_median(ops, attn_run, &a, 1, reps);
                const double w = windows[wi], w_eff = (w * (w + 1) / 2 + (T - w) * w) / T;
                const double flops_fwd = 4.0 * N * H * dh * w_eff;
                const char *ver_name = both ? (ver ? "old" : "new") : (env ? env : "-");
                fprintf(out,
                        "{\"bench\": \"swa\", \"device\": \"%s\", \"attn_tc\": \"%s\", \"B\": %d, \"H\": %d, "
                        "\"T\": %d, \"dh\": %d, \"window\": %d, \"fwd_ms\": %.3f, \"bwd_ms\": %.3f, \"fwdbwd_ms\": %.3f, "
                        "\"tflops\": %.1f}\n",
                        ops->name, ver_name, B, H, T, dh, windows[wi], tf * 1e3, tb * 1e3, (tf + tb) * 1e3,
                        3.5 * flops_fwd / (tf + tb) / 1e12);
                fflush(out);
            }
        if (both) unsetenv("SWAX_ATTN_TC");
        void *ptrs[] = {a.c.qkv, a.c.out, a.c.lse, (void *)a.c.dout, a.c.dqkv};
        for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) ops->free(ptrs[i]);
    }
    /* mLSTM: B8 NH4 T4096 DQK128 DV256, chunk 64 (the training default) and 128 (TFLA's) */
    static const int chunks[] = {64, 128};
    for (size_t li = 0; li < sizeof chunks / sizeof chunks[0]; li++) {
        const int B = 8, NH = 4, T = 4096, dk = 128, dv = 256, L = chunks[li], nC = (T + L - 1) / L;
        const size_t N = (size_t)B * T, ldp = (size_t)NH * (2 * dk + dv);
        MlstmCtx m = {ops, {0}};
        SwaxMlstmCall *c = &m.c;
        c->B = B, c->T = T, c->NH = NH, c->dk = dk, c->dv = dv, c->L = L, c->eps = 1e-6f;
        c->proj = dev_random(ops, &r, N * ldp, -1, 1), c->ldp = (long)ldp;
        c->ig = dev_random(ops, &r, N * NH, -4, 2);
        c->lf = dev_random(ops, &r, N * NH, -0.3f, -0.01f);
        c->h = dev_random(ops, &r, N * NH * dv, 0, 0);
        c->m_t = dev_random(ops, &r, N * NH, 0, 0);
        c->den_t = dev_random(ops, &r, N * NH, 0, 0);
        c->arg_t = ops->alloc(sizeof(int) * N * NH);
        c->max_chunks = nC;
        const size_t S = (size_t)B * NH * nC;
        c->Cs = dev_random(ops, &r, S * dk * dv, 0, 0);
        c->ns = dev_random(ops, &r, S * dk, 0, 0);
        c->ms = dev_random(ops, &r, S, 0, 0);
        c->arg_end = ops->alloc(sizeof(int) * S);
        int *tab = malloc(sizeof(int) * B * (nC + 1));
        int *dtab = ops->alloc(sizeof(int) * B * (nC + 1));
        if (!tab || !dtab) return SWAX_E_NOMEM;
        for (int b = 0; b < B; b++)
            for (int i = 0; i <= nC; i++) tab[b * (nC + 1) + i] = i * L < T ? i * L : T;
        ops->to_device(dtab, tab, sizeof(int) * B * (nC + 1));
        free(tab);
        c->chunks = dtab;
        c->dh = dev_random(ops, &r, N * NH * dv, -1, 1);
        c->dproj = dev_random(ops, &r, N * ldp, 0, 0);
        c->dig = dev_random(ops, &r, N * NH, 0, 0);
        c->dlf = dev_random(ops, &r, N * NH, 0, 0);
        if (!c->proj || !c->h || !c->Cs || !c->dproj) return SWAX_E_NOMEM;
        const double tf = time_median(ops, mlstm_run, &m, 0, reps);
        const double tb = time_median(ops, mlstm_run, &m, 1, reps);
        fprintf(out,
                "{\"bench\": \"mlstm\", \"device\": \"%s\", \"B\": %d, \"NH\": %d, \"T\": %d, \"dk\": %d, \"dv\": %d, "
                "\"chunk\": %d, \"fwd_ms\": %.3f, \"bwd_ms\": %.3f, \"fwdbwd_ms\": %.3f}\n",
                ops->name, B, NH, T, dk, dv, L, tf * 1e3, tb * 1e3, (tf + tb) * 1e3);
        void *ptrs[] = {(void *)c->proj, (void *)c->ig, (void *)c->lf, c->h, c->m_t, c->den_t, c->arg_t, c->Cs,
                        c->ns, c->ms, c->arg_end, dtab, (void *)c->dh, c->dproj, c->dig, c->dlf};
        for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) ops->free(ptrs[i]);
    }
    if (ops->gdn_fwd && ops->gdn_bwd) return gdn_bench(ops, &r, out, reps);
    return 0;
}
