/* test_cuda_mlstm_tc.c — the tensor-core mLSTM cell (src/ops/cuda/mlstm_tc.cu:
 * swax_cuda_mlstm_cell_fwd_tc / _bwd_tc, bf16 operands, fp32 accumulation)
 * against the CPU slots (fp32, the reference), on the inputs of
 * test_cuda_mlstm.c (same generator, chunk tables, document starts, gate
 * regimes, poisoning: floats 0xFF bytes = NaN, int outputs 0x5A bytes, proj
 * with 3 foreign columns that dproj must leave alone).
 *
 * What must match exactly: the stabilisers m_t, ms and the argmaxes arg_t,
 * arg_end (the scalar path is mlstm.cu's fp32 arithmetic, unchanged); the
 * inference-mode h (same bits as training mode); a rerun of forward +
 * backward (same bits everywhere: no atomics, fixed-order reductions).
 *
 * What is compared with a bf16 tolerance, relative to each tensor's max |ref|:
 * h, den_t, Cs, ns (forward) and dq, dk, dv, dig, dlf (backward) within
 *     max(TOL = 1e-2, SENS_K = 4 × s),
 * where s is the same tensor's sensitivity: how far the CPU's own answer moves
 * when its inputs q, k, v, dh are rounded to bf16 (a bf16 implementation can
 * not do better than that). Why 1e-2: each operand rounding costs 2^-9 ≈ 2e-3
 * relative; h goes through two chained products (S = Q̃Kᵀ, then P V) and the
 * gradients through three (S, dP, then dS K or Pᵀ dnum), and the worst
 * element of a tensor sits a few standard deviations out: a host emulator of
 * the kernels (emulated mma.sync with round-to-nearest-even bf16 operands,
 * against this CPU) measured 2e-3 to 9e-3 on these well-conditioned inputs,
 * and at most 2.4 × max(s, 2.5e-3) over 150 shapes (120 random: B 1-3, NH
 * 1-3, T 1-300, L 1-200, dk 16-128, dv 16-256, all gate regimes; the largest
 * s, up to 2e-2, on one- and two-token sequences and at ĩ up to 4 with dk
 * 256), never above the bound.
 * Floors of the scale: dlf is relative to max(|dlf|, |dig|) (a single token in
 * the e^-m branch has dlf ≈ eps·h·dh, rounding noise on both sides), dq and dk
 * to max(|dq|, 1e-2·|dv|).
 *
 * The backward is checked on the GPU's own forward state: the CPU backward
 * runs on a copy of the GPU's saved h, m_t, den_t, arg_t, Cs, ns, ms, arg_end
 * (the CPU slot reads them, as the GPU one does). Otherwise a token whose |den|
 * sits within the bf16 error of its floor e^-m takes the other branch of the
 * normaliser on the two sides, and its gradient (which is discontinuous
 * there) differs by O(1): a property of max(), not of the kernels.
 *
 * The two functions are called directly (the table that uses them is
 * ops_cuda.cu's business); they are declared weak so that the CPU-only
 * sanitizer build, which has no CUDA objects and skips these tests, still
 * links. In a CUDA build libswax.a supplies them once something in the
 * library references mlstm_tc.o (the "cuda" table); a NULL here with a device
 * present is reported as a failure. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/cpu/mlstm_cell.h"
#include "ops/ops.h"
#include "test_cuda.h"

void swax_cuda_mlstm_cell_fwd_tc(SwaxMlstmCall *c) __attribute__((weak));
void swax_cuda_mlstm_cell_bwd_tc(SwaxMlstmCall *c) __attribute__((weak));

#define TOL 1e-2     /* bf16 operands, fp32 accumulation: see the header */
#define SENS_K 4.0   /* allowance over the CPU's own sensitivity to bf16 inputs */
#define TOL_FP32 1e-5 /* head sizes that are not multiples of 16 run mlstm.cu's fp32 kernels */

typedef struct {
    int B, T, NH, dk, dv, L;
    float ig_lo, ig_hi; /* input-gate pre-activation ĩ ~ U[lo, hi) */
    float f_lo, f_hi;   /* lf = logsigmoid(U[f_lo, f_hi)) */
    float qs;           /* q, k, v ~ qs·U[-1, 1) */
    int docs;           /* document starts: 0 none, 1 random (+ t = 0, adjacent, last token) */
    uint64_t seed;
    int qk_sign;        /* 0 mixed; 1: q, k >= 0; -1: q >= 0, k <= 0 */
} MCase;

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
    float *proj, *ig, *lf, *dh;
    float *proj_r, *dh_r; /* q, k, v, dh rounded to bf16 (for the sensitivity) */
    uint8_t *ds;
    int *chunks;
    Bufs cpu, gpu;
} Setup;

static float logsigmoid(double x) { return (float)(x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x))); }

/* The CPU's rule (mlstm_cell_impl.inc chunk_end). */
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
    S->proj_r = malloc(sizeof(float) * S->n_proj);
    S->dh_r = malloc(sizeof(float) * S->n_h);
    SWAX_ASSERT(S->proj_r && S->dh_r);
    for (size_t i = 0; i < S->n_proj; i++) S->proj_r[i] = bf16_round(S->proj[i]);
    for (size_t i = 0; i < S->n_h; i++) S->dh_r[i] = bf16_round(S->dh[i]);
    if (k->docs) {
        S->ds = calloc((size_t)S->N, 1);
        SWAX_ASSERT(S->ds);
        for (int b = 0; b < B; b++) {
            uint8_t *d = S->ds + (size_t)b * T;
            for (int t = 0; t < T; t++) d[t] = swax_rng_uniform(&r) < 0.04;
            if (b == 0) d[0] = 1;
            if (T > 9) d[8] = d[9] = 1;
            if (T > 3 && b == B - 1) d[T - 1] = 1;
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
    Bufs *c = &S->cpu;
    c->proj = S->proj, c->ig = S->ig, c->lf = S->lf, c->dh = S->dh, c->ds = S->ds, c->chunks = S->chunks;
    c->h = host_poison(sizeof(float) * S->n_h, 0xFF);
    c->m_t = host_poison(sizeof(float) * S->n_s, 0xFF), c->den_t = host_poison(sizeof(float) * S->n_s, 0xFF);
    c->arg_t = host_poison(sizeof(int) * S->n_s, 0x5A);
    c->Cs = host_poison(sizeof(float) * S->n_C, 0xFF), c->ns = host_poison(sizeof(float) * S->n_n, 0xFF);
    c->ms = host_poison(sizeof(float) * S->n_c, 0xFF), c->arg_end = host_poison(sizeof(int) * S->n_c, 0x5A);
    c->dproj = host_poison(sizeof(float) * S->n_proj, 0xFF);
    c->dig = host_poison(sizeof(float) * S->n_g, 0xFF), c->dlf = host_poison(sizeof(float) * S->n_g, 0xFF);
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
    free(S->proj), free(S->ig), free(S->lf), free(S->dh), free(S->proj_r), free(S->dh_r), free(S->ds);
    free(S->chunks);
}

/* A call over the first Bc sequences (Bc <= B: the (B, ...) arrays are b-major,
 * so the first Bc sequences are a prefix of every buffer). */
static SwaxMlstmCall make_call(const Setup *S, const Bufs *b, int train, int Bc) {
    SwaxMlstmCall c;
    memset(&c, 0, sizeof c);
    c.B = Bc, c.T = S->k.T, c.NH = S->k.NH, c.dk = S->k.dk, c.dv = S->k.dv, c.L = S->k.L;
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

/* Host copies of everything the forward saves (and h). */
typedef struct {
    float *h, *m_t, *den_t, *Cs, *ns, *ms;
    int *arg_t, *arg_end;
} Saved;

static void saved_from_gpu(Saved *v, const Setup *S) {
    const Bufs *g = &S->gpu;
    v->h = host_from(g->h, sizeof(float) * S->n_h);
    v->m_t = host_from(g->m_t, sizeof(float) * S->n_s), v->den_t = host_from(g->den_t, sizeof(float) * S->n_s);
    v->arg_t = host_from(g->arg_t, sizeof(int) * S->n_s);
    v->Cs = host_from(g->Cs, sizeof(float) * S->n_C), v->ns = host_from(g->ns, sizeof(float) * S->n_n);
    v->ms = host_from(g->ms, sizeof(float) * S->n_c), v->arg_end = host_from(g->arg_end, sizeof(int) * S->n_c);
}
static void saved_free(Saved *v) {
    free(v->h), free(v->m_t), free(v->den_t), free(v->arg_t), free(v->Cs), free(v->ns), free(v->ms), free(v->arg_end);
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

/* Columns [c0, c0 + w) of the first N rows of an (·, ld) matrix, as an (N, w) copy. */
static float *cols(const float *x, int N, long ld, long c0, long w) {
    float *o = malloc(sizeof(float) * (size_t)N * w + 1);
    SWAX_ASSERT(o);
    for (int r = 0; r < N; r++) memcpy(o + (size_t)r * w, x + (size_t)r * ld + c0, sizeof(float) * w);
    return o;
}

/* One compared tensor: the error of the tensor-core result, the CPU's own
 * sensitivity to bf16 inputs, and the bound. */
typedef struct {
    const char *name;
    double err, sens, bound;
} Cmp;

static Cmp cmp_make(const char *name, double err, double sens, double tol) {
    Cmp c = {name, err, sens, tol};
    if (SENS_K * sens > c.bound) c.bound = SENS_K * sens;
    return c;
}

/* The CPU's q/k/v/dh gradients as (rows, w) copies of the first `rows` rows. */
typedef struct {
    float *q, *k, *v;
} Grads;
static void grads_take(Grads *g, const float *dproj, int rows, long ldp, long qw, long vw) {
    g->q = cols(dproj, rows, ldp, 0, qw), g->k = cols(dproj, rows, ldp, qw, qw), g->v = cols(dproj, rows, ldp, 2 * qw, vw);
}
static void grads_free(Grads *g) { free(g->q), free(g->k), free(g->v); }

static int tc_linked(void) {
    if (swax_cuda_mlstm_cell_fwd_tc && swax_cuda_mlstm_cell_bwd_tc) return 1;
    fprintf(stderr, "  FAIL: swax_cuda_mlstm_cell_fwd_tc / _bwd_tc are not linked in: nothing in libswax.a "
                    "references mlstm_tc.o yet (wire them into the \"cuda\" table in ops_cuda.cu)\n");
    g_test_failed = 1;
    return 0;
}

/* g_rerun_env (NAME=value): the reruns run with it set (a variant that must
 * give the same bits); g_force_rerun: every case reruns. */
static const char *g_rerun_env;
static int g_force_rerun;

/* Runs one case: GPU forward + backward against the CPU on the first Bc
 * sequences (Bc = 0: all). sens: measure the CPU's sensitivity (two more CPU
 * runs). timing: prints GPU (and CPU) times. rerun: GPU forward + backward
 * again (under g_rerun_env when set; always when g_force_rerun), same bits. */
static void run_case(const MCase *k, int Bc, int sens, int timing, int rerun) {
    if (!tc_linked()) return;
    rerun |= g_force_rerun;
    Setup S;
    setup_make(&S, k);
    if (Bc <= 0 || Bc > k->B) Bc = k->B;
    const int NH = k->NH, dk = k->dk, dv = k->dv, T = k->T, Nc = Bc * T;
    const int fp32 = dk % 16 != 0 || dv % 16 != 0; /* the fallback: mlstm.cu's fp32 kernels */
    const double tol = fp32 ? TOL_FP32 : TOL;
    const size_t nh = (size_t)Nc * NH * dv, ns = (size_t)Bc * NH * T, nc = (size_t)Bc * NH * S.MC;
    const size_t nC = nc * dk * dv, nn = nc * dk, ng = (size_t)Nc * NH;
    const long qw = (long)NH * dk, vw = (long)NH * dv, ow = S.ldp - 2 * qw - vw;
    char what[220];
    snprintf(what, sizeof what, "B%d T%d NH%d dk%d dv%d L%d ig[%g,%g) f[%g,%g) qk%d docs%d chunks%d%s", k->B, T, NH,
             dk, dv, k->L, k->ig_lo, k->ig_hi, k->f_lo, k->f_hi, k->qk_sign, k->docs, S.MC, fp32 ? " (fp32 fallback)" : "");
    SwaxMlstmCall cc = make_call(&S, &S.cpu, 1, Bc), gc = make_call(&S, &S.gpu, 1, k->B);

    /* forward: CPU (and on bf16-rounded inputs), GPU */
    double t0 = swax_time_sec();
    C->mlstm_cell_fwd(&cc);
    const double cpu_fwd = swax_time_sec() - t0;
    Saved R = {0}; /* the CPU's forward on rounded inputs */
    if (sens && !fp32) {
        R.h = host_poison(sizeof(float) * S.n_h, 0xFF), R.m_t = host_poison(sizeof(float) * S.n_s, 0xFF);
        R.den_t = host_poison(sizeof(float) * S.n_s, 0xFF), R.arg_t = host_poison(sizeof(int) * S.n_s, 0x5A);
        R.Cs = host_poison(sizeof(float) * S.n_C, 0xFF), R.ns = host_poison(sizeof(float) * S.n_n, 0xFF);
        R.ms = host_poison(sizeof(float) * S.n_c, 0xFF), R.arg_end = host_poison(sizeof(int) * S.n_c, 0x5A);
        SwaxMlstmCall rc = cc;
        rc.proj = S.proj_r, rc.h = R.h, rc.m_t = R.m_t, rc.den_t = R.den_t, rc.arg_t = R.arg_t;
        rc.Cs = R.Cs, rc.ns = R.ns, rc.ms = R.ms, rc.arg_end = R.arg_end;
        C->mlstm_cell_fwd(&rc);
    }
    swax_cuda_mlstm_cell_fwd_tc(&gc);
    G->sync();
    Saved V; /* the GPU's forward */
    saved_from_gpu(&V, &S);
    const int nf = 4;
    Cmp cf[4] = {
        cmp_make("h", rel_err(V.h, S.cpu.h, nh), R.h ? rel_err(R.h, S.cpu.h, nh) : 0, tol),
        cmp_make("den_t", rel_err(V.den_t, S.cpu.den_t, ns), R.h ? rel_err(R.den_t, S.cpu.den_t, ns) : 0, tol),
        cmp_make("Cs", rel_err(V.Cs, S.cpu.Cs, nC), R.h ? rel_err(R.Cs, S.cpu.Cs, nC) : 0, tol),
        cmp_make("ns", rel_err(V.ns, S.cpu.ns, nn), R.h ? rel_err(R.ns, S.cpu.ns, nn) : 0, tol),
    };
    if (R.h) saved_free(&R);
    int ok_f = 1;
    for (int i = 0; i < nf; i++) ok_f &= cf[i].err <= cf[i].bound;
    const int bits_m = memcmp(V.m_t, S.cpu.m_t, sizeof(float) * ns) == 0;
    const int bits_ms = memcmp(V.ms, S.cpu.ms, sizeof(float) * nc) == 0;
    const int bits_a = memcmp(V.arg_t, S.cpu.arg_t, sizeof(int) * ns) == 0;
    const int bits_ae = memcmp(V.arg_end, S.cpu.arg_end, sizeof(int) * nc) == 0;

    /* inference mode: nothing saved, the same h */
    int inf_same = 1, inf_untouched = 1;
    {
        SwaxMlstmCall ic = make_call(&S, &S.gpu, 0, k->B);
        repoison_dev(S.gpu.h, sizeof(float) * S.n_h, 0xFF);
        swax_cuda_mlstm_cell_fwd_tc(&ic);
        G->sync();
        float *h2 = host_from(S.gpu.h, sizeof(float) * S.n_h);
        inf_same = memcmp(h2, V.h, sizeof(float) * S.n_h) == 0;
        free(h2);
        float *m2 = host_from(S.gpu.m_t, sizeof(float) * S.n_s);
        inf_untouched = memcmp(m2, V.m_t, sizeof(float) * S.n_s) == 0;
        free(m2);
    }

    /* backward: GPU; the CPU on the GPU's saved state (and on bf16-rounded inputs) */
    swax_cuda_mlstm_cell_bwd_tc(&gc);
    G->sync();
    float *dproj = host_from(S.gpu.dproj, sizeof(float) * S.n_proj);
    float *dig = host_from(S.gpu.dig, sizeof(float) * S.n_g), *dlf = host_from(S.gpu.dlf, sizeof(float) * S.n_g);
    memcpy(S.cpu.h, V.h, sizeof(float) * nh);
    memcpy(S.cpu.m_t, V.m_t, sizeof(float) * ns), memcpy(S.cpu.den_t, V.den_t, sizeof(float) * ns);
    memcpy(S.cpu.arg_t, V.arg_t, sizeof(int) * ns);
    memcpy(S.cpu.Cs, V.Cs, sizeof(float) * nC), memcpy(S.cpu.ns, V.ns, sizeof(float) * nn);
    memcpy(S.cpu.ms, V.ms, sizeof(float) * nc), memcpy(S.cpu.arg_end, V.arg_end, sizeof(int) * nc);
    t0 = swax_time_sec();
    C->mlstm_cell_bwd(&cc);
    const double cpu_bwd = swax_time_sec() - t0;
    Grads cg, gg, rg = {0};
    grads_take(&cg, S.cpu.dproj, Nc, S.ldp, qw, vw);
    grads_take(&gg, dproj, Nc, S.ldp, qw, vw);
    float *rdig = NULL, *rdlf = NULL;
    if (sens && !fp32) {
        float *rdproj = host_poison(sizeof(float) * S.n_proj, 0xFF);
        rdig = host_poison(sizeof(float) * S.n_g, 0xFF), rdlf = host_poison(sizeof(float) * S.n_g, 0xFF);
        SwaxMlstmCall rc = cc;
        rc.proj = S.proj_r, rc.dh = S.dh_r, rc.dproj = rdproj, rc.dig = rdig, rc.dlf = rdlf;
        C->mlstm_cell_bwd(&rc);
        grads_take(&rg, rdproj, Nc, S.ldp, qw, vw);
        free(rdproj);
    }
    const size_t nq = (size_t)Nc * qw, nv = (size_t)Nc * vw;
    const double fl_qk = 1e-2 * maxabs(cg.v, nv), fl_lf = maxabs(S.cpu.dig, ng);
    const int nb = 5;
    Cmp cb[5] = {
        cmp_make("dq", rel_err_floor(gg.q, cg.q, nq, fl_qk), rg.q ? rel_err_floor(rg.q, cg.q, nq, fl_qk) : 0, tol),
        cmp_make("dk", rel_err_floor(gg.k, cg.k, nq, fl_qk), rg.k ? rel_err_floor(rg.k, cg.k, nq, fl_qk) : 0, tol),
        cmp_make("dv", rel_err(gg.v, cg.v, nv), rg.v ? rel_err(rg.v, cg.v, nv) : 0, tol),
        cmp_make("dig", rel_err(dig, S.cpu.dig, ng), rdig ? rel_err(rdig, S.cpu.dig, ng) : 0, tol),
        cmp_make("dlf", rel_err_floor(dlf, S.cpu.dlf, ng, fl_lf), rdlf ? rel_err_floor(rdlf, S.cpu.dlf, ng, fl_lf) : 0,
                 tol),
    };
    int ok_b = 1;
    for (int i = 0; i < nb; i++) ok_b &= cb[i].err <= cb[i].bound;
    int foreign = 0; /* dproj columns beyond q|k|v written */
    for (int r = 0; r < S.N; r++)
        for (long j = 0; j < ow; j++) foreign |= !isnan(dproj[(size_t)r * S.ldp + 2 * qw + vw + j]);
    size_t nden = 0; /* tokens where the |den| branch of the normaliser wins */
    for (size_t i = 0; i < ns; i++) nden += fabsf(V.den_t[i]) >= expf(-V.m_t[i]);
    printf("  %s: |den| branch %.0f%%; rel err (bound)", what, 100.0 * nden / ns);
    for (int i = 0; i < nf; i++) printf(" %s %.2g (%.2g)", cf[i].name, cf[i].err, cf[i].bound);
    for (int i = 0; i < nb; i++) printf(" %s %.2g (%.2g)", cb[i].name, cb[i].err, cb[i].bound);
    printf("\n");
    fflush(stdout);
    grads_free(&cg), grads_free(&gg);
    if (rg.q) grads_free(&rg);
    free(rdig), free(rdlf);

    if (rerun) {
        Saved A;
        float *dproj2, *dig2, *dlf2;
        poison_gpu_fwd(&S);
        poison_gpu_bwd(&S);
        char env[64] = "";
        if (g_rerun_env) snprintf(env, sizeof env, "%s", g_rerun_env);
        char *eq = strchr(env, '=');
        if (eq) *eq = 0, setenv(env, eq + 1, 1);
        swax_cuda_mlstm_cell_fwd_tc(&gc);
        swax_cuda_mlstm_cell_bwd_tc(&gc);
        G->sync();
        if (eq) unsetenv(env);
        saved_from_gpu(&A, &S);
        dproj2 = host_from(S.gpu.dproj, sizeof(float) * S.n_proj);
        dig2 = host_from(S.gpu.dig, sizeof(float) * S.n_g), dlf2 = host_from(S.gpu.dlf, sizeof(float) * S.n_g);
        const int same = memcmp(A.h, V.h, sizeof(float) * S.n_h) == 0 &&
                         memcmp(A.m_t, V.m_t, sizeof(float) * S.n_s) == 0 &&
                         memcmp(A.den_t, V.den_t, sizeof(float) * S.n_s) == 0 &&
                         memcmp(A.arg_t, V.arg_t, sizeof(int) * S.n_s) == 0 &&
                         memcmp(A.Cs, V.Cs, sizeof(float) * S.n_C) == 0 && memcmp(A.ns, V.ns, sizeof(float) * S.n_n) == 0 &&
                         memcmp(A.ms, V.ms, sizeof(float) * S.n_c) == 0 &&
                         memcmp(A.arg_end, V.arg_end, sizeof(int) * S.n_c) == 0 &&
                         memcmp(dproj2, dproj, sizeof(float) * S.n_proj) == 0 &&
                         memcmp(dig2, dig, sizeof(float) * S.n_g) == 0 && memcmp(dlf2, dlf, sizeof(float) * S.n_g) == 0;
        saved_free(&A), free(dproj2), free(dig2), free(dlf2);
        if (!same) {
            fprintf(stderr, "  FAIL: a rerun of forward + backward%s%s gave different bits: %s\n",
                    g_rerun_env ? " under " : "", g_rerun_env ? g_rerun_env : "", what);
            g_test_failed = 1;
        }
    }
    if (timing) {
        const int reps = 10;
        G->sync();
        double t = swax_time_sec();
        for (int i = 0; i < reps; i++) swax_cuda_mlstm_cell_fwd_tc(&gc);
        G->sync();
        const double g_fwd = (swax_time_sec() - t) / reps;
        t = swax_time_sec();
        for (int i = 0; i < reps; i++) swax_cuda_mlstm_cell_bwd_tc(&gc);
        G->sync();
        const double g_bwd = (swax_time_sec() - t) / reps;
        printf("  mlstm cell (tensor cores) %s:\n    GPU fwd %.3f ms, bwd %.3f ms, fwd+bwd %.3f ms; CPU (%d of %d "
               "sequences) fwd %.1f ms, bwd %.1f ms\n",
               what, 1e3 * g_fwd, 1e3 * g_bwd, 1e3 * (g_fwd + g_bwd), Bc, k->B, 1e3 * cpu_fwd, 1e3 * cpu_bwd);
    }
    saved_free(&V), free(dproj), free(dig), free(dlf);
    setup_free(&S);
    for (int i = 0; i < nf; i++)
        CHECKF(cf[i].err <= cf[i].bound, "%s rel err %.3g > %.3g (sensitivity %.3g): %s", cf[i].name, cf[i].err,
               cf[i].bound, cf[i].sens, what);
    CHECKF(ok_f, "forward: %s", what);
    CHECKF(bits_m, "m_t not bit-identical to the CPU's: %s", what);
    CHECKF(bits_ms, "ms not bit-identical to the CPU's: %s", what);
    CHECKF(bits_a, "arg_t differs from the CPU's: %s", what);
    CHECKF(bits_ae, "arg_end differs from the CPU's: %s", what);
    CHECKF(inf_same, "inference-mode h differs from training-mode h: %s", what);
    CHECKF(inf_untouched, "inference mode wrote m_t: %s", what);
    for (int i = 0; i < nb; i++)
        CHECKF(cb[i].err <= cb[i].bound, "%s rel err %.3g > %.3g (sensitivity %.3g): %s", cb[i].name, cb[i].err,
               cb[i].bound, cb[i].sens, what);
    CHECKF(ok_b, "backward: %s", what);
    CHECKF(!foreign, "dproj column beyond q|k|v written: %s", what);
}

static void run_all(const MCase *cs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        run_case(&cs[i], 0, 1, 0, 0);
        if (g_test_failed) return;
    }
}

/* ĩ in a mixed range, forget gates from 0.05 to 0.9975 (test_cuda_mlstm.c):
 * both normaliser branches occur, the floor e^-m stays >= e^-1. */
#define MIXED -6.0f, 1.0f, -3.0f, 6.0f

TEST(mlstm_tc_tiny_lengths) { /* T = 1, 2, 7 */
    const MCase cs[] = {
        /* one token in the e^-m branch (in the |den| branch h = v·sign(p) does not depend on q, k) */
        {1, 1, 1, 64, 64, 16, -12.0f, -8.0f, -3.0f, 6.0f, 1.0f, 0, 11, 0},
        {2, 7, 2, 16, 32, 16, MIXED, 1.0f, 0, 12, 0},
        {2, 7, 1, 32, 16, 16, MIXED, 1.0f, 1, 13, 0},
        {1, 2, 3, 16, 16, 1, MIXED, 1.0f, 0, 14, 0},
    };
    run_all(cs, sizeof cs / sizeof cs[0]);
}

TEST(mlstm_tc_partial_chunks) { /* T not a multiple of L: 100, 300 */
    const MCase cs[] = {
        {2, 100, 3, 32, 48, 16, MIXED, 1.0f, 0, 21, 0},
        {1, 300, 2, 32, 64, 64, MIXED, 1.0f, 0, 22, 0},
        {2, 100, 4, 16, 32, 64, MIXED, 1.0f, 0, 23, 0},
    };
    run_all(cs, sizeof cs / sizeof cs[0]);
}

TEST(mlstm_tc_chunk_one) { /* L = 1: every token its own chunk */
    const MCase cs[] = {
        {1, 37, 2, 16, 32, 1, MIXED, 1.0f, 0, 31, 0},
        {2, 41, 1, 32, 48, 1, MIXED, 1.0f, 1, 32, 0},
    };
    run_all(cs, sizeof cs / sizeof cs[0]);
}

TEST(mlstm_tc_chunk_longer_than_seq) { /* L > T; L not a multiple of 64 (several token tiles per chunk) */
    const MCase cs[] = {
        {2, 50, 1, 32, 48, 64, MIXED, 1.0f, 0, 41, 0},
        {1, 50, 2, 32, 32, 200, MIXED, 1.0f, 0, 42, 0},
        {1, 300, 2, 16, 32, 100, MIXED, 1.0f, 1, 43, 0},
        {1, 333, 1, 16, 16, 150, MIXED, 1.0f, 0, 44, 0},
        {1, 200, 1, 32, 48, 0, MIXED, 1.0f, 0, 45, 0}, /* L 0 = the default 64 */
    };
    run_all(cs, sizeof cs / sizeof cs[0]);
}

TEST(mlstm_tc_documents) { /* random starts, one at t = 0, adjacent ones, a one-token last document */
    const MCase cs[] = {
        {2, 300, 2, 32, 48, 16, MIXED, 1.0f, 1, 51, 0},
        {3, 200, 3, 16, 16, 64, MIXED, 1.0f, 1, 52, 0},
        {2, 130, 4, 32, 32, 32, MIXED, 1.0f, 1, 53, 0},
        {2, 257, 2, 64, 64, 128, MIXED, 1.0f, 1, 54, 0},
    };
    run_all(cs, sizeof cs / sizeof cs[0]);
}

TEST(mlstm_tc_gate_regimes) {
    const MCase cs[] = {
        /* ĩ ≈ -10 (the real initialisation): the normaliser's e^-m branch wins */
        {2, 100, 2, 32, 48, 16, -12.0f, -8.0f, -3.0f, 6.0f, 1.0f, 1, 61, 0},
        /* large ĩ, one-signed q·k: the argmax moves, den > 0 then den < 0 */
        {2, 150, 2, 32, 48, 64, 0.0f, 15.0f, -3.0f, 6.0f, 1.0f, 1, 62, 1},
        {2, 150, 2, 32, 48, 64, 0.0f, 15.0f, -3.0f, 6.0f, 1.0f, 1, 65, -1},
        /* strong forgetting and large ĩ: α and β far below 1 */
        {1, 200, 2, 32, 48, 64, -2.0f, 15.0f, -6.0f, 0.0f, 1.0f, 0, 63, 1},
        /* forget gates near 1, larger q, k, v; den < 0 */
        {1, 200, 1, 32, 48, 32, -4.0f, 4.0f, 4.0f, 9.0f, 2.0f, 0, 64, -1},
        /* moderate forgetting, ĩ in [0, 3): the argmax moves inside chunks, so α varies from row to row
         * while the carried state still matters (the inter-chunk term's α is checked per row) */
        {1, 300, 2, 32, 48, 64, 0.0f, 3.0f, 0.0f, 2.0f, 1.0f, 0, 66, 1},
    };
    run_all(cs, sizeof cs / sizeof cs[0]);
}

TEST(mlstm_tc_partial_tiles) { /* multiples of 16 that are not multiples of 64 */
    const MCase cs[] = {
        {1, 130, 2, 80, 144, 64, MIXED, 1.0f, 1, 71, 0},
        {1, 90, 1, 48, 112, 48, MIXED, 1.0f, 0, 72, 0},
    };
    run_all(cs, sizeof cs / sizeof cs[0]);
}

TEST(mlstm_tc_real_dims) { /* dk 128 / dv 256 at L 64 and 128 (with a rerun); the 7b preset's 256 / 512 */
    const MCase a = {2, 200, 2, 128, 256, 64, MIXED, 1.0f, 1, 81, 0};
    run_case(&a, 0, 1, 0, 1);
    if (g_test_failed) return;
    const MCase b = {1, 300, 3, 128, 256, 128, MIXED, 1.0f, 0, 83, 0};
    run_case(&b, 0, 1, 0, 1);
    if (g_test_failed) return;
    const MCase c = {1, 70, 2, 256, 512, 64, -12.0f, 4.0f, -3.0f, 6.0f, 1.0f, 1, 82, 0};
    run_case(&c, 0, 1, 0, 0);
    if (g_test_failed) return;
    /* the timing path at a small size: the CPU on sequence 0 of 3, timed, rerun */
    const MCase d = {3, 150, 2, 128, 256, 128, MIXED, 1.0f, 0, 84, 0};
    run_case(&d, 1, 0, 1, 1);
}

TEST(mlstm_tc_fallback) { /* head sizes that are not multiples of 16: mlstm.cu's fp32 kernels, fp32 tolerance */
    const MCase cs[] = {
        {2, 100, 2, 12, 24, 32, MIXED, 1.0f, 1, 91, 0},
        {1, 7, 1, 4, 8, 16, MIXED, 1.0f, 0, 92, 0},
    };
    run_all(cs, sizeof cs / sizeof cs[0]);
}

TEST(mlstm_tc_timing) { /* the bench shape B8 NH4 T4096 dk128 dv256 at L 64 and 128; the CPU checks sequence 0 */
    const MCase a = {8, 4096, 4, 128, 256, 64, MIXED, 1.0f, 0, 95, 0};
    run_case(&a, 1, 0, 1, 1);
    if (g_test_failed) return;
    const MCase b = {8, 4096, 4, 128, 256, 128, MIXED, 1.0f, 0, 96, 0};
    run_case(&b, 1, 0, 1, 1);
}

/* The scans and dQ with k slices of 64 (SWAX_MLSTM_KS=64, mlstm_tc.cu): the cases above again,
 * the same tolerances, and the bench shape timed beside the 32-slice figures of mlstm_tc_timing */
TEST(mlstm_tc_slices_of_64) {
    static const test_fn again[] = {mlstm_tc_tiny_lengths, mlstm_tc_partial_chunks, mlstm_tc_chunk_one,
                                    mlstm_tc_chunk_longer_than_seq, mlstm_tc_documents, mlstm_tc_gate_regimes,
                                    mlstm_tc_partial_tiles, mlstm_tc_real_dims, mlstm_tc_timing};
    setenv("SWAX_MLSTM_KS", "64", 1);
    for (size_t i = 0; i < sizeof again / sizeof again[0] && !g_test_failed; i++) again[i]();
    unsetenv("SWAX_MLSTM_KS");
}

/* The scans that load the next chunk's first slice under the current chunk's products
 * (SWAX_MLSTM_SCAN=pf: k_tc_fwd_scan_pf, k_tc_bwd_scan_pf): every case above, rerun under it, must give the default
 * scan's bits in every output (forward and backward), at k slices of 32 and of 64; and the bench
 * shape timed with it (beside mlstm_tc_timing's default figures). */
TEST(mlstm_tc_prefetching_scan_gives_the_same_bits) {
    static const test_fn again[] = {mlstm_tc_tiny_lengths,        mlstm_tc_partial_chunks, mlstm_tc_chunk_one,
                                    mlstm_tc_chunk_longer_than_seq, mlstm_tc_documents,    mlstm_tc_gate_regimes,
                                    mlstm_tc_partial_tiles,        mlstm_tc_real_dims};
    unsetenv("SWAX_MLSTM_SCAN"); /* the baseline runs the default scans, whatever the caller's environment */
    g_force_rerun = 1;
    g_rerun_env = "SWAX_MLSTM_SCAN=pf";
    for (int ks = 0; ks < 2 && !g_test_failed; ks++) {
        if (ks) setenv("SWAX_MLSTM_KS", "64", 1);
        for (size_t i = 0; i < sizeof again / sizeof again[0] && !g_test_failed; i++) again[i]();
        unsetenv("SWAX_MLSTM_KS");
    }
    g_force_rerun = 0;
    g_rerun_env = NULL;
    if (g_test_failed) return;
    setenv("SWAX_MLSTM_SCAN", "pf", 1);
    mlstm_tc_timing();
    unsetenv("SWAX_MLSTM_SCAN");
}

RUN_CUDA_TESTS()
