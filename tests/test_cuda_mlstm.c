/* test_cuda_mlstm.c — the CUDA mLSTM cell (src/ops/cuda/mlstm.cu) against the
 * CPU slots (the reference) on the same fresh random inputs: forward outputs
 * and saved state (h, m_t, den_t, arg_t, Cs, ns, ms, arg_end) and backward
 * gradients (dq, dk, dv columns of dproj, dig, dlf) to 1e-5 relative; the
 * stabilisers m_t / ms and the argmaxes arg_t / arg_end bit-identical (the
 * CUDA side computes them with the CPU's exact arithmetic). Every output is
 * poisoned before each run on both sides (floats 0xFF bytes = NaN; int outputs
 * 0x5A bytes, since 0xFF bytes = -1 is a legitimate argmax), so an element one
 * side leaves unwritten shows; proj has columns beyond q|k|v that dproj must
 * leave alone. Inference mode (m_t == NULL) must give the same h bits, and a
 * rerun of forward + backward the same bits everywhere.
 *
 * Inputs are chosen well-conditioned, so that 1e-5 measures the kernels and
 * not fp32 rounding amplified: h = num / |den| is ill-conditioned where den
 * cancels (q·k of both signs) yet stays above the floor e^-m, which happens
 * when ĩ is large (tiny floor). Mixed-sign q·k therefore runs with ĩ <= 1
 * (floor >= e^-1), large ĩ with one-signed q·k (den > 0 or den < 0). Each case
 * prints its share of |den|-branch tokens and its worst errors. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/cpu/mlstm_cell.h"
#include "ops/ops.h"
#include "test_cuda.h"

#define TOL 1e-5

typedef struct {
    int B, T, NH, dk, dv, L;
    float ig_lo, ig_hi; /* input-gate pre-activation ĩ ~ U[lo, hi) */
    float f_lo, f_hi;   /* lf = logsigmoid(U[f_lo, f_hi)) */
    float qs;           /* q, k, v ~ qs·U[-1, 1) */
    int docs;           /* document starts: 0 none, 1 random (+ t = 0, adjacent, last token) */
    uint64_t seed;
    int qk_sign;        /* 0: as above; 1: q, k >= 0 (den a sum of positive terms, no cancellation);
                           -1: q >= 0, k <= 0 (den < 0, no cancellation) */
} MCase;

/* One backend's buffers: host memory for the CPU, device memory for CUDA. */
typedef struct {
    float *proj, *ig, *lf, *h, *m_t, *den_t, *Cs, *ns, *ms, *dh, *dproj, *dig, *dlf;
    int *arg_t, *arg_end, *chunks;
    uint8_t *ds;
} Bufs;

typedef struct {
    MCase k;
    int N, MC, BH;
    long ldp;
    size_t n_proj, n_g, n_h, n_s, n_C, n_n, n_c, n_tab;
    /* host inputs */
    float *proj, *ig, *lf, *dh;
    uint8_t *ds;
    int *chunks;
    Bufs cpu, gpu;
} Setup;

static float logsigmoid(double x) { return (float)(x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x))); }

/* The CPU's rule (mlstm_cell_impl.inc chunk_end): a chunk ends after L tokens
 * or just before a document start. Fills row (max_chunks + 1 entries). */
static int chunk_row(int *row, int T, int L, const uint8_t *ds, int MC) {
    int n = 0;
    for (int c0 = 0; c0 < T;) {
        int e = c0 + L < T ? c0 + L : T;
        if (ds)
            for (int t = c0 + 1; t < e; t++)
                if (ds[t]) {
                    e = t;
                    break;
                }
        SWAX_ASSERT(n < MC);
        row[n++] = c0;
        c0 = e;
    }
    for (int i = n; i <= MC; i++) row[i] = T;
    return n;
}

static void *dev_poison(size_t bytes, int byte) {
    void *h = malloc(bytes ? bytes : 1);
    SWAX_ASSERT(h);
    memset(h, byte, bytes);
    void *d = dev_from(h, bytes);
    free(h);
    return d;
}
static void *host_poison(size_t bytes, int byte) {
    void *h = malloc(bytes ? bytes : 1);
    SWAX_ASSERT(h);
    memset(h, byte, bytes);
    return h;
}
static void repoison_dev(void *d, size_t bytes, int byte) {
    void *h = host_poison(bytes, byte);
    G->to_device(d, h, bytes);
    free(h);
}

static void setup_make(Setup *S, const MCase *k) {
    memset(S, 0, sizeof *S);
    S->k = *k;
    const int B = k->B, T = k->T, NH = k->NH, dk = k->dk, dv = k->dv;
    S->N = B * T, S->BH = B * NH;
    S->ldp = 2L * NH * dk + (long)NH * dv + 3; /* 3 columns that are not the cell's */
    SwaxRng r;
    swax_rng_seed(&r, k->seed, 7);
    S->n_proj = (size_t)S->N * S->ldp, S->n_g = (size_t)S->N * NH, S->n_h = (size_t)S->N * NH * dv;
    S->proj = malloc(sizeof(float) * S->n_proj);
    S->ig = malloc(sizeof(float) * S->n_g);
    S->lf = malloc(sizeof(float) * S->n_g);
    S->dh = malloc(sizeof(float) * S->n_h);
    SWAX_ASSERT(S->proj && S->ig && S->lf && S->dh);
    fill_uniform(&r, S->proj, S->n_proj, -k->qs, k->qs);
    if (k->qk_sign)
        for (int i = 0; i < S->N; i++)
            for (long j = 0; j < 2L * NH * dk; j++) {
                float *x = S->proj + (size_t)i * S->ldp + j;
                *x = j >= (long)NH * dk && k->qk_sign < 0 ? -fabsf(*x) : fabsf(*x);
            }
    fill_uniform(&r, S->ig, S->n_g, k->ig_lo, k->ig_hi);
    for (size_t i = 0; i < S->n_g; i++) S->lf[i] = logsigmoid(k->f_lo + (k->f_hi - k->f_lo) * swax_rng_uniform(&r));
    fill_uniform(&r, S->dh, S->n_h, -1.0f, 1.0f);
    if (k->docs) {
        S->ds = calloc((size_t)S->N, 1);
        SWAX_ASSERT(S->ds);
        for (int b = 0; b < B; b++) {
            uint8_t *d = S->ds + (size_t)b * T;
            for (int t = 0; t < T; t++) d[t] = swax_rng_uniform(&r) < 0.04;
            if (b == 0) d[0] = 1; /* a start at t = 0 (a no-op reset) */
            if (T > 9) d[8] = d[9] = 1; /* adjacent starts: a one-token document */
            if (T > 3 && b == B - 1) d[T - 1] = 1; /* the last token alone */
        }
    }
    int MC = 1;
    for (int b = 0; b < B; b++) {
        const int n = swax_mlstm_num_chunks(T, k->L, S->ds ? S->ds + (size_t)b * T : NULL);
        if (n > MC) MC = n;
    }
    S->MC = MC;
    S->n_tab = (size_t)B * (MC + 1);
    S->chunks = malloc(sizeof(int) * S->n_tab);
    SWAX_ASSERT(S->chunks);
    for (int b = 0; b < B; b++) {
        const int n = chunk_row(S->chunks + (size_t)b * (MC + 1), T, k->L > 0 ? k->L : 64,
                                S->ds ? S->ds + (size_t)b * T : NULL, MC);
        SWAX_ASSERT(n == swax_mlstm_num_chunks(T, k->L, S->ds ? S->ds + (size_t)b * T : NULL));
    }
    S->n_s = (size_t)S->BH * T, S->n_c = (size_t)S->BH * MC;
    S->n_C = S->n_c * dk * dv, S->n_n = S->n_c * dk;
    /* CPU buffers: inputs shared with the host arrays, outputs poisoned per run */
    Bufs *c = &S->cpu;
    c->proj = S->proj, c->ig = S->ig, c->lf = S->lf, c->dh = S->dh, c->ds = S->ds, c->chunks = S->chunks;
    c->h = host_poison(sizeof(float) * S->n_h, 0xFF);
    c->m_t = host_poison(sizeof(float) * S->n_s, 0xFF), c->den_t = host_poison(sizeof(float) * S->n_s, 0xFF);
    c->arg_t = host_poison(sizeof(int) * S->n_s, 0x5A);
    c->Cs = host_poison(sizeof(float) * S->n_C, 0xFF), c->ns = host_poison(sizeof(float) * S->n_n, 0xFF);
    c->ms = host_poison(sizeof(float) * S->n_c, 0xFF), c->arg_end = host_poison(sizeof(int) * S->n_c, 0x5A);
    c->dproj = host_poison(sizeof(float) * S->n_proj, 0xFF);
    c->dig = host_poison(sizeof(float) * S->n_g, 0xFF), c->dlf = host_poison(sizeof(float) * S->n_g, 0xFF);
    /* device buffers */
    Bufs *g = &S->gpu;
    g->proj = dev_from(S->proj, sizeof(float) * S->n_proj);
    g->ig = dev_from(S->ig, sizeof(float) * S->n_g), g->lf = dev_from(S->lf, sizeof(float) * S->n_g);
    g->dh = dev_from(S->dh, sizeof(float) * S->n_h);
    g->ds = S->ds ? dev_from(S->ds, (size_t)S->N) : NULL;
    g->chunks = dev_from(S->chunks, sizeof(int) * S->n_tab);
    g->h = dev_poison(sizeof(float) * S->n_h, 0xFF);
    g->m_t = dev_poison(sizeof(float) * S->n_s, 0xFF), g->den_t = dev_poison(sizeof(float) * S->n_s, 0xFF);
    g->arg_t = dev_poison(sizeof(int) * S->n_s, 0x5A);
    g->Cs = dev_poison(sizeof(float) * S->n_C, 0xFF), g->ns = dev_poison(sizeof(float) * S->n_n, 0xFF);
    g->ms = dev_poison(sizeof(float) * S->n_c, 0xFF), g->arg_end = dev_poison(sizeof(int) * S->n_c, 0x5A);
    g->dproj = dev_poison(sizeof(float) * S->n_proj, 0xFF);
    g->dig = dev_poison(sizeof(float) * S->n_g, 0xFF), g->dlf = dev_poison(sizeof(float) * S->n_g, 0xFF);
}

static void setup_free(Setup *S) {
    Bufs *c = &S->cpu, *g = &S->gpu;
    free(c->h), free(c->m_t), free(c->den_t), free(c->arg_t), free(c->Cs), free(c->ns), free(c->ms);
    free(c->arg_end), free(c->dproj), free(c->dig), free(c->dlf);
    void *dv[] = {g->proj, g->ig, g->lf, g->dh, g->ds, g->chunks, g->h, g->m_t, g->den_t, g->arg_t,
                  g->Cs, g->ns, g->ms, g->arg_end, g->dproj, g->dig, g->dlf};
    for (size_t i = 0; i < sizeof dv / sizeof dv[0]; i++)
        if (dv[i]) G->free(dv[i]);
    free(S->proj), free(S->ig), free(S->lf), free(S->dh), free(S->ds), free(S->chunks);
}

static SwaxMlstmCall make_call(const Setup *S, const Bufs *b, int train) {
    SwaxMlstmCall c;
    memset(&c, 0, sizeof c);
    c.B = S->k.B, c.T = S->k.T, c.NH = S->k.NH, c.dk = S->k.dk, c.dv = S->k.dv, c.L = S->k.L;
    c.eps = 1e-6f;
    c.doc_start = b->ds;
    c.proj = b->proj, c.ldp = S->ldp, c.ig = b->ig, c.lf = b->lf, c.h = b->h;
    if (train) {
        c.m_t = b->m_t, c.den_t = b->den_t, c.arg_t = b->arg_t;
        c.Cs = b->Cs, c.ns = b->ns, c.ms = b->ms, c.arg_end = b->arg_end;
    }
    c.max_chunks = S->MC;
    c.chunks = b->chunks;
    c.dh = b->dh, c.dproj = b->dproj, c.dig = b->dig, c.dlf = b->dlf;
    return c;
}

static void poison_gpu_fwd(Setup *S) {
    Bufs *g = &S->gpu;
    repoison_dev(g->h, sizeof(float) * S->n_h, 0xFF);
    repoison_dev(g->m_t, sizeof(float) * S->n_s, 0xFF), repoison_dev(g->den_t, sizeof(float) * S->n_s, 0xFF);
    repoison_dev(g->arg_t, sizeof(int) * S->n_s, 0x5A);
    repoison_dev(g->Cs, sizeof(float) * S->n_C, 0xFF), repoison_dev(g->ns, sizeof(float) * S->n_n, 0xFF);
    repoison_dev(g->ms, sizeof(float) * S->n_c, 0xFF), repoison_dev(g->arg_end, sizeof(int) * S->n_c, 0x5A);
}
static void poison_gpu_bwd(Setup *S) {
    Bufs *g = &S->gpu;
    repoison_dev(g->dproj, sizeof(float) * S->n_proj, 0xFF);
    repoison_dev(g->dig, sizeof(float) * S->n_g, 0xFF), repoison_dev(g->dlf, sizeof(float) * S->n_g, 0xFF);
}

/* Columns [c0, c0 + w) of an (N, ld) matrix, as an (N, w) copy. */
static float *cols(const float *x, int N, long ld, long c0, long w) {
    float *o = malloc(sizeof(float) * (size_t)N * w + 1);
    SWAX_ASSERT(o);
    for (int r = 0; r < N; r++) memcpy(o + (size_t)r * w, x + (size_t)r * ld + c0, sizeof(float) * w);
    return o;
}

/* All bits of the GPU outputs of one forward + backward, for the rerun check. */
typedef struct {
    void *p[11];
    size_t n[11];
} Snap;
static void snap_take(Snap *s, const Setup *S) {
    const Bufs *g = &S->gpu;
    const void *src[11] = {g->h, g->m_t, g->den_t, g->arg_t, g->Cs, g->ns, g->ms, g->arg_end, g->dproj, g->dig, g->dlf};
    const size_t n[11] = {S->n_h * 4, S->n_s * 4, S->n_s * 4, S->n_s * 4, S->n_C * 4, S->n_n * 4,
                          S->n_c * 4, S->n_c * 4, S->n_proj * 4, S->n_g * 4, S->n_g * 4};
    for (int i = 0; i < 11; i++) s->p[i] = host_from(src[i], n[i]), s->n[i] = n[i];
}
static void snap_free(Snap *s) {
    for (int i = 0; i < 11; i++) free(s->p[i]);
}

static double g_worst_fwd, g_worst_bwd; /* of the current case, printed after it */
#define NOTE(w, got, ref, n)                                                               \
    do {                                                                                   \
        const double e_ = rel_err((got), (ref), (n));                                      \
        if (e_ > (w)) (w) = e_;                                                            \
    } while (0)

/* Runs one case: CPU and GPU forward + backward, compared. timing: prints the
 * GPU's and the CPU's times. rerun: GPU forward + backward again, same bits. */
static void run_case(const MCase *k, int timing, int rerun) {
    Setup S;
    setup_make(&S, k);
    const int NH = k->NH, dk = k->dk, dv = k->dv, N = S.N;
    char what[200];
    snprintf(what, sizeof what, "B%d T%d NH%d dk%d dv%d L%d ig[%g,%g) f[%g,%g) docs%d chunks%d", k->B, k->T, NH, dk,
             dv, k->L, k->ig_lo, k->ig_hi, k->f_lo, k->f_hi, k->docs, S.MC);
    SwaxMlstmCall cc = make_call(&S, &S.cpu, 1), gc = make_call(&S, &S.gpu, 1);

    /* forward */
    double t0 = swax_time_sec();
    C->mlstm_cell_fwd(&cc);
    const double cpu_fwd = swax_time_sec() - t0;
    G->mlstm_cell_fwd(&gc);
    G->sync();
    float *h = host_from(S.gpu.h, sizeof(float) * S.n_h);
    float *m_t = host_from(S.gpu.m_t, sizeof(float) * S.n_s), *den_t = host_from(S.gpu.den_t, sizeof(float) * S.n_s);
    int *arg_t = host_from(S.gpu.arg_t, sizeof(int) * S.n_s);
    float *Cs = host_from(S.gpu.Cs, sizeof(float) * S.n_C), *ns = host_from(S.gpu.ns, sizeof(float) * S.n_n);
    float *ms = host_from(S.gpu.ms, sizeof(float) * S.n_c);
    int *arg_end = host_from(S.gpu.arg_end, sizeof(int) * S.n_c);
    g_worst_fwd = g_worst_bwd = 0;
    NOTE(g_worst_fwd, h, S.cpu.h, S.n_h);
    NOTE(g_worst_fwd, den_t, S.cpu.den_t, S.n_s);
    NOTE(g_worst_fwd, Cs, S.cpu.Cs, S.n_C);
    NOTE(g_worst_fwd, ns, S.cpu.ns, S.n_n);
    CHECK_REL(h, S.cpu.h, S.n_h, TOL, "%s", what);
    CHECK_REL(den_t, S.cpu.den_t, S.n_s, TOL, "%s", what);
    CHECK_REL(Cs, S.cpu.Cs, S.n_C, TOL, "%s", what);
    CHECK_REL(ns, S.cpu.ns, S.n_n, TOL, "%s", what);
    CHECKF(memcmp(m_t, S.cpu.m_t, sizeof(float) * S.n_s) == 0, "m_t not bit-identical (rel %.3g): %s",
           rel_err(m_t, S.cpu.m_t, S.n_s), what);
    CHECKF(memcmp(ms, S.cpu.ms, sizeof(float) * S.n_c) == 0, "ms not bit-identical (rel %.3g): %s",
           rel_err(ms, S.cpu.ms, S.n_c), what);
    CHECKF(memcmp(arg_t, S.cpu.arg_t, sizeof(int) * S.n_s) == 0, "arg_t differs: %s", what);
    CHECKF(memcmp(arg_end, S.cpu.arg_end, sizeof(int) * S.n_c) == 0, "arg_end differs: %s", what);

    /* inference mode: nothing saved, the same h */
    {
        SwaxMlstmCall ic = make_call(&S, &S.gpu, 0);
        repoison_dev(S.gpu.h, sizeof(float) * S.n_h, 0xFF);
        G->mlstm_cell_fwd(&ic);
        G->sync();
        float *h2 = host_from(S.gpu.h, sizeof(float) * S.n_h);
        const int same = memcmp(h2, h, sizeof(float) * S.n_h) == 0;
        free(h2);
        CHECKF(same, "inference-mode h differs from training-mode h: %s", what);
        /* the saved buffers were not touched: m_t still as the training run left it */
        float *m2 = host_from(S.gpu.m_t, sizeof(float) * S.n_s);
        const int same_m = memcmp(m2, m_t, sizeof(float) * S.n_s) == 0;
        free(m2);
        CHECKF(same_m, "inference mode wrote m_t: %s", what);
    }

    /* backward */
    t0 = swax_time_sec();
    C->mlstm_cell_bwd(&cc);
    const double cpu_bwd = swax_time_sec() - t0;
    G->mlstm_cell_bwd(&gc);
    G->sync();
    float *dproj = host_from(S.gpu.dproj, sizeof(float) * S.n_proj);
    float *dig = host_from(S.gpu.dig, sizeof(float) * S.n_g), *dlf = host_from(S.gpu.dlf, sizeof(float) * S.n_g);
    const long qw = (long)NH * dk, vw = (long)NH * dv, ow = S.ldp - 2 * qw - vw;
    float *gq = cols(dproj, N, S.ldp, 0, qw), *cq = cols(S.cpu.dproj, N, S.ldp, 0, qw);
    float *gk = cols(dproj, N, S.ldp, qw, qw), *ck = cols(S.cpu.dproj, N, S.ldp, qw, qw);
    float *gv = cols(dproj, N, S.ldp, 2 * qw, vw), *cv = cols(S.cpu.dproj, N, S.ldp, 2 * qw, vw);
    float *go = cols(dproj, N, S.ldp, 2 * qw + vw, ow);
    NOTE(g_worst_bwd, gq, cq, (size_t)N * qw);
    NOTE(g_worst_bwd, gk, ck, (size_t)N * qw);
    NOTE(g_worst_bwd, gv, cv, (size_t)N * vw);
    NOTE(g_worst_bwd, dig, S.cpu.dig, S.n_g);
    /* dlf relative to max(|dlf|, |dig|): one token in the e^-m branch (the T = 1 case) has dlf
     * analytically 0 (m cancels between numerator and floor), ~1e-15 of noise on both sides */
    const double e_lf = rel_err_floor(dlf, S.cpu.dlf, S.n_g, maxabs(S.cpu.dig, S.n_g));
    if (e_lf > g_worst_bwd) g_worst_bwd = e_lf;
    size_t nden = 0; /* tokens where the |den| branch of the normaliser wins */
    for (size_t i = 0; i < S.n_s; i++) nden += fabsf(S.cpu.den_t[i]) >= expf(-S.cpu.m_t[i]);
    printf("  %s: |den| branch %.0f%%; worst rel err fwd %.2g, bwd %.2g\n", what, 100.0 * nden / S.n_s,
           g_worst_fwd, g_worst_bwd);
    CHECK_REL(gq, cq, (size_t)N * qw, TOL, "dq: %s", what);
    CHECK_REL(gk, ck, (size_t)N * qw, TOL, "dk: %s", what);
    CHECK_REL(gv, cv, (size_t)N * vw, TOL, "dv: %s", what);
    for (size_t i = 0; i < (size_t)N * ow; i++) CHECKF(isnan(go[i]), "dproj column beyond q|k|v written: %s", what);
    CHECK_REL(dig, S.cpu.dig, S.n_g, TOL, "dig: %s", what);
    CHECKF(e_lf <= TOL, "dlf vs S.cpu.dlf rel err %.3g (scale max(|dlf|, |dig|)) > %.3g: %s", e_lf, TOL, what);
    free(gq), free(cq), free(gk), free(ck), free(gv), free(cv), free(go);

    if (rerun) {
        Snap a, b;
        snap_take(&a, &S);
        poison_gpu_fwd(&S);
        poison_gpu_bwd(&S);
        G->mlstm_cell_fwd(&gc);
        G->mlstm_cell_bwd(&gc);
        G->sync();
        snap_take(&b, &S);
        int same = 1;
        for (int i = 0; i < 11; i++) same &= memcmp(a.p[i], b.p[i], a.n[i]) == 0;
        snap_free(&a), snap_free(&b);
        CHECKF(same, "a rerun of forward + backward gave different bits: %s", what);
    }
    if (timing) {
        const int reps = 5;
        G->sync();
        double t = swax_time_sec();
        for (int i = 0; i < reps; i++) G->mlstm_cell_fwd(&gc);
        G->sync();
        const double g_fwd = (swax_time_sec() - t) / reps;
        t = swax_time_sec();
        for (int i = 0; i < reps; i++) {
            G->mlstm_cell_fwd(&gc);
            G->mlstm_cell_bwd(&gc);
        }
        G->sync();
        const double g_all = (swax_time_sec() - t) / reps;
        printf("  mlstm cell %s:\n    GPU fwd %.3f ms, fwd+bwd %.3f ms; CPU fwd %.1f ms, fwd+bwd %.1f ms\n", what,
               1e3 * g_fwd, 1e3 * g_all, 1e3 * cpu_fwd, 1e3 * (cpu_fwd + cpu_bwd));
    }
    free(h), free(m_t), free(den_t), free(arg_t), free(Cs), free(ns), free(ms), free(arg_end);
    free(dproj), free(dig), free(dlf);
    setup_free(&S);
}

/* gates: ĩ in a mixed range, forget gates from 0.05 to 0.9975. Both branches
 * of the normaliser occur, and since m <= max ĩ the floor e^-m stays >= e^-1:
 * a den that cancels (q·k of both signs) sits below it, so h and the gradients
 * stay well-conditioned (with ĩ up to 4 the worst token's condition number
 * reached ~1e2 and the GPU-vs-CPU error 8e-6 of 1e-5). */
#define MIXED -6.0f, 1.0f, -3.0f, 6.0f

TEST(mlstm_tiny_lengths) {
    const MCase cs[] = {
        /* one token: in the |den| branch h = v·p/(|p| + eps) does not depend
         * on q, k (their gradients are rounding noise), so use the e^-m branch */
        {1, 1, 1, 4, 8, 16, -12.0f, -8.0f, -3.0f, 6.0f, 1.0f, 0, 11, 0},
        {2, 7, 2, 4, 8, 16, MIXED, 1.0f, 0, 12, 0},
        {2, 7, 1, 4, 8, 16, MIXED, 1.0f, 1, 13, 0},
        {1, 2, 3, 4, 8, 1, MIXED, 1.0f, 0, 14, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        run_case(&cs[i], 0, 0);
        if (g_test_failed) return;
    }
}

TEST(mlstm_partial_chunks) { /* T not a multiple of L */
    const MCase cs[] = {
        {2, 100, 3, 12, 24, 16, MIXED, 1.0f, 0, 21, 0},
        {1, 300, 2, 12, 24, 64, MIXED, 1.0f, 0, 22, 0},
        {2, 100, 4, 4, 8, 64, MIXED, 1.0f, 0, 23, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        run_case(&cs[i], 0, 0);
        if (g_test_failed) return;
    }
}

TEST(mlstm_chunk_one) { /* L = 1: every token its own chunk */
    const MCase cs[] = {
        {1, 37, 2, 4, 8, 1, MIXED, 1.0f, 0, 31, 0},
        {2, 41, 1, 12, 24, 1, MIXED, 1.0f, 1, 32, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        run_case(&cs[i], 0, 0);
        if (g_test_failed) return;
    }
}

TEST(mlstm_chunk_longer_than_seq) { /* L > T; L not a multiple of 64 (several token tiles per chunk) */
    const MCase cs[] = {
        {2, 50, 1, 12, 24, 64, MIXED, 1.0f, 0, 41, 0},
        {1, 50, 2, 12, 24, 200, MIXED, 1.0f, 0, 42, 0},
        {1, 300, 2, 12, 24, 100, MIXED, 1.0f, 1, 43, 0},
        {1, 333, 1, 4, 8, 150, MIXED, 1.0f, 0, 44, 0},
        {1, 200, 1, 12, 24, 0, MIXED, 1.0f, 0, 45, 0}, /* L 0 = the default 64 */
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        run_case(&cs[i], 0, 0);
        if (g_test_failed) return;
    }
}

TEST(mlstm_documents) { /* random starts, one at t = 0, adjacent ones, a one-token last document */
    const MCase cs[] = {
        {2, 300, 2, 12, 24, 16, MIXED, 1.0f, 1, 51, 0},
        {3, 200, 3, 4, 8, 64, MIXED, 1.0f, 1, 52, 0},
        {2, 130, 4, 12, 24, 32, MIXED, 1.0f, 1, 53, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        run_case(&cs[i], 0, 0);
        if (g_test_failed) return;
    }
}

TEST(mlstm_gate_regimes) {
    const MCase cs[] = {
        /* ĩ ≈ -10 (the real initialisation): the normaliser's e^-m branch wins */
        {2, 100, 2, 12, 24, 16, -12.0f, -8.0f, -3.0f, 6.0f, 1.0f, 1, 61, 0},
        /* large ĩ: the stabiliser's argmax moves from token to token. e^-m is
         * then tiny and a den that cancels (q·k of both signs) can sit just
         * above it, where h = num/|den| is ill-conditioned (seen: κ ~ 1e3), so
         * q·k has one sign: den > 0, then den < 0 */
        {2, 150, 2, 12, 24, 64, 0.0f, 15.0f, -3.0f, 6.0f, 1.0f, 1, 62, 1},
        {2, 150, 2, 12, 24, 64, 0.0f, 15.0f, -3.0f, 6.0f, 1.0f, 1, 65, -1},
        /* strong forgetting and large ĩ: α and β far below 1 */
        {1, 200, 2, 12, 24, 64, -2.0f, 15.0f, -6.0f, 0.0f, 1.0f, 0, 63, 1},
        /* forget gates near 1, larger q, k, v; den < 0 */
        {1, 200, 1, 12, 24, 32, -4.0f, 4.0f, 4.0f, 9.0f, 2.0f, 0, 64, -1},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        run_case(&cs[i], 0, 0);
        if (g_test_failed) return;
    }
}

TEST(mlstm_partial_tiles) { /* dk, dv just past a 64 tile, odd */
    const MCase cs[] = {
        {1, 130, 2, 65, 130, 64, MIXED, 1.0f, 1, 71, 0},
        {1, 90, 1, 33, 77, 48, MIXED, 1.0f, 0, 72, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        run_case(&cs[i], 0, 0);
        if (g_test_failed) return;
    }
}

TEST(mlstm_real_dims) { /* bench-gpu (dk 128, dv 256) with a rerun; the 7b preset (dk 256, dv 512) */
    const MCase a = {2, 200, 2, 128, 256, 64, MIXED, 1.0f, 1, 81, 0};
    run_case(&a, 0, 1);
    if (g_test_failed) return;
    const MCase b = {1, 70, 2, 256, 512, 64, -12.0f, 4.0f, -3.0f, 6.0f, 1.0f, 1, 82, 0};
    run_case(&b, 0, 0);
}

TEST(mlstm_timing) { /* the bench-gpu shape at T 2048, compared and timed */
    const MCase a = {2, 2048, 4, 128, 256, 64, MIXED, 1.0f, 0, 91, 0};
    run_case(&a, 1, 0);
}

RUN_CUDA_TESTS()
