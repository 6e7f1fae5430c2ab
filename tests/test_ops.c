/* test_ops.c — each CPU op's backward against central finite differences
 * (float32 ops, loss accumulated in double, tolerances stated per check), and
 * the vectorised exp/tanh against libm in double. The SWA and mLSTM kernels
 * have their own float64 tests (test_swa.c, test_mlstm.c). */
#include "core/common.h"
#include "ops/cpu/blas_core.h"
#include "ops/cpu/fastmath.h"
#include "ops/gemm_picks.h"
#include "ops/ops.h"
#include "test.h"

#include <unistd.h>

static SwaxRng rng;
static float *randf(size_t n, float s) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = (float)(s * swax_rng_normal(&rng));
    return x;
}
static double dotd(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Perturbs x[i] by ±h, evaluates f, returns the central difference. */
#define FD(x, i, h, expr)                          \
    ({                                             \
        float x0_ = (x)[i];                        \
        (x)[i] = x0_ + (h);                        \
        double lp_ = (expr);                       \
        (x)[i] = x0_ - (h);                        \
        double lm_ = (expr);                       \
        (x)[i] = x0_;                              \
        (lp_ - lm_) / (2.0 * (h));                 \
    })

#define CHECK_GRAD(an, fd, what, idx) \
    CHECKF(fabs((an) - (fd)) <= 2e-3 + 2e-2 * fabs(fd), "%s[%d]: analytic %.6g, finite difference %.6g", what, idx, (double)(an), (fd))

static const SwaxOps *ops;

static double rms_loss(float *out, float *rstd, const float *x, const float *w, const float *R, int N, int D) {
    ops->rmsnorm_fwd(out, rstd, x, w, N, D, 1e-6f);
    return dotd(out, R, (size_t)N * D);
}

TEST(rmsnorm_backward) {
    ops = swax_ops_cpu();
    swax_rng_seed(&rng, 1, 0);
    int N = 3, D = 7;
    float *x = randf(N * D, 1), *w = randf(D, 1), *R = randf(N * D, 1), *out = randf(N * D, 1), *rstd = randf(N, 1);
    float *dx = calloc(N * D, 4), *dw = calloc(D, 4);
    rms_loss(out, rstd, x, w, R, N, D);
    ops->rmsnorm_bwd(dx, dw, R, x, w, rstd, N, D);
    for (int i = 0; i < N * D; i++) CHECK_GRAD(dx[i], FD(x, i, 1e-2f, rms_loss(out, rstd, x, w, R, N, D)), "dx", i);
    for (int i = 0; i < D; i++) CHECK_GRAD(dw[i], FD(w, i, 1e-2f, rms_loss(out, rstd, x, w, R, N, D)), "dw", i);
    free(x), free(w), free(R), free(out), free(rstd), free(dx), free(dw);
}

static double swiglu_loss(float *h, const float *gu, const float *R, int N, int F) {
    ops->swiglu_fwd(h, gu, N, F);
    return dotd(h, R, (size_t)N * F);
}

TEST(swiglu_backward) {
    ops = swax_ops_cpu();
    swax_rng_seed(&rng, 2, 0);
    int N = 4, F = 9;
    float *gu = randf(N * 2 * F, 1.5), *R = randf(N * F, 1), *h = calloc(N * F, 4), *dgu = calloc(N * 2 * F, 4);
    swiglu_loss(h, gu, R, N, F);
    ops->swiglu_bwd(dgu, R, gu, N, F);
    for (int i = 0; i < N * 2 * F; i++) CHECK_GRAD(dgu[i], FD(gu, i, 1e-2f, swiglu_loss(h, gu, R, N, F)), "dgu", i);
    free(gu), free(R), free(h), free(dgu);
}

static double gates_loss(float *ig, float *lf, const float *pre, const float *b, const float *Ri, const float *Rf,
                         int N, int NH) {
    ops->mlstm_gates_fwd(ig, lf, pre, 2 * NH, b, N, NH, 5.0f);
    return dotd(ig, Ri, (size_t)N * NH) + dotd(lf, Rf, (size_t)N * NH);
}

TEST(mlstm_gates_backward) {
    ops = swax_ops_cpu();
    swax_rng_seed(&rng, 3, 0);
    int N = 5, NH = 3;
    float *pre = randf(N * 2 * NH, 3), *b = randf(2 * NH, 2), *Ri = randf(N * NH, 1), *Rf = randf(N * NH, 1);
    float *ig = calloc(N * NH, 4), *lf = calloc(N * NH, 4), *dpre = calloc(N * 2 * NH, 4), *db = calloc(2 * NH, 4);
    gates_loss(ig, lf, pre, b, Ri, Rf, N, NH);
    ops->mlstm_gates_bwd(dpre, 2 * NH, db, Ri, Rf, pre, 2 * NH, b, N, NH, 5.0f);
    for (int i = 0; i < N * 2 * NH; i++)
        CHECK_GRAD(dpre[i], FD(pre, i, 1e-2f, gates_loss(ig, lf, pre, b, Ri, Rf, N, NH)), "dpre", i);
    for (int i = 0; i < 2 * NH; i++)
        CHECK_GRAD(db[i], FD(b, i, 1e-2f, gates_loss(ig, lf, pre, b, Ri, Rf, N, NH)), "dbias", i);
    free(pre), free(b), free(Ri), free(Rf), free(ig), free(lf), free(dpre), free(db);
}

typedef struct {
    float *y, *hn, *mean, *rstd;
} OutBufs;

static double out_loss(OutBufs *o, const float *h, const float *og, const float *w, const float *R, int N, int NH,
                       int dv) {
    ops->mlstm_out_fwd(o->y, o->hn, o->mean, o->rstd, h, og, NH * dv, w, N, NH, dv, 1e-6f);
    return dotd(o->y, R, (size_t)N * NH * dv);
}

TEST(mlstm_headnorm_and_output_gate_backward) {
    ops = swax_ops_cpu();
    swax_rng_seed(&rng, 4, 0);
    int N = 3, NH = 2, dv = 5, D = NH * dv;
    float *h = randf(N * D, 1), *og = randf(N * D, 1.5), *w = randf(D, 1), *R = randf(N * D, 1);
    OutBufs o = {calloc(N * D, 4), calloc(N * D, 4), calloc(N * NH, 4), calloc(N * NH, 4)};
    float *dh = calloc(N * D, 4), *dog = calloc(N * D, 4), *dw = calloc(D, 4);
    out_loss(&o, h, og, w, R, N, NH, dv);
    ops->mlstm_out_bwd(dh, dog, D, dw, R, o.hn, h, o.mean, o.rstd, og, D, w, N, NH, dv);
    for (int i = 0; i < N * D; i++) CHECK_GRAD(dh[i], FD(h, i, 1e-2f, out_loss(&o, h, og, w, R, N, NH, dv)), "dh", i);
    for (int i = 0; i < N * D; i++) CHECK_GRAD(dog[i], FD(og, i, 1e-2f, out_loss(&o, h, og, w, R, N, NH, dv)), "dog", i);
    for (int i = 0; i < D; i++) CHECK_GRAD(dw[i], FD(w, i, 1e-2f, out_loss(&o, h, og, w, R, N, NH, dv)), "dw", i);
    free(h), free(og), free(w), free(R), free(o.y), free(o.hn), free(o.mean), free(o.rstd), free(dh), free(dog), free(dw);
}

static double xent_loss(float *work, const float *raw, float *lse, float *losses, const int32_t *t, int N, int V,
                        int Vu, float cap) {
    memcpy(work, raw, sizeof(float) * N * V);
    ops->xent_fwd(work, lse, losses, t, N, V, Vu, cap);
    long cnt = 0;
    for (int i = 0; i < N; i++) cnt += t[i] >= 0;
    double s = 0;
    for (int i = 0; i < N; i++) s += losses[i];
    return s / (double)cnt;
}

TEST(softcap_cross_entropy_backward) {
    ops = swax_ops_cpu();
    swax_rng_seed(&rng, 5, 0);
    int N = 4, V = 11, Vu = 9;
    int32_t t[4] = {3, -1, 8, 0};
    float caps[2] = {0.0f, 4.0f};
    for (int c = 0; c < 2; c++) {
        float *raw = randf(N * V, 3), *work = calloc(N * V, 4), *lse = calloc(N, 4), *losses = calloc(N, 4);
        xent_loss(work, raw, lse, losses, t, N, V, Vu, caps[c]);
        for (int i = Vu; i < V; i++) CHECK(isinf(work[i]) && work[i] < 0); /* padded ids at -inf */
        /* analytic gradient of the mean loss over the 3 counted targets, then finite differences */
        float *grad = malloc(4 * N * V);
        xent_loss(work, raw, lse, losses, t, N, V, Vu, caps[c]);
        ops->xent_bwd(work, lse, t, N, V, Vu, caps[c], 1.0f / 3.0f);
        memcpy(grad, work, 4 * N * V);
        for (int i = 0; i < N * V; i++)
            CHECK_GRAD(grad[i], FD(raw, i, 1e-2f, xent_loss(work, raw, lse, losses, t, N, V, Vu, caps[c])), "dlogits", i);
        for (int r = 0; r < N; r++)
            for (int i = Vu; i < V; i++) CHECK(grad[r * V + i] == 0);
        free(raw), free(work), free(lse), free(losses), free(grad);
    }
}

TEST(fast_exp_and_tanh_match_libm) {
    double we = 0, wt = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.0173f) {
        double e = exp((double)x);
        we = fmax(we, fabs(swax_expf(x) - e) / e);
    }
    for (float x = -20.0f; x < 20.0f; x += 0.00091f) {
        double t = tanh((double)x);
        if (t != 0) wt = fmax(wt, fabs(swax_tanhf(x) - t) / fabs(t));
    }
    printf("  max relative error: exp %.3g, tanh %.3g\n", we, wt);
    CHECK(we < 3e-7 && wt < 3e-7);
    CHECK(swax_expf(-1000.0f) < 1e-37f && swax_tanhf(0.0f) == 0.0f && swax_tanhf(50.0f) == 1.0f);
}

/* SWAX_GEMM_PICKS files: good lines read, comments and blank lines skipped;
 * every malformed line refused with FILE:LINE; a missing file refused. */
static int picks_from(const char *text, SwaxGemmPick **p, int *n) {
    char path[] = "/tmp/swax_test_picks_XXXXXX";
    const int fd = mkstemp(path);
    SWAX_ASSERT(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    const int rc = swax_gemm_picks_read(path, 31, p, n);
    unlink(path);
    return rc;
}

TEST(gemm_picks_file) {
    SwaxGemmPick *p;
    int n;
    CHECK(picks_from("# ta tb m n k accumulate index\n\n1 0 1024 32768 1024 1 3\n  0 1 1024 5504 32768 1 0\n"
                     "1 0 5504 32768 1024 0 6 bf16\n1 0 5504 32768 1024 0 2 f32\n",
                     &p, &n) == 0);
    CHECK(n == 4 && p[0].m == 1024 && p[0].n == 32768 && p[0].index == 3 && p[1].tb == 1 && !p[0].out16 && p[2].out16);
    CHECK(swax_gemm_pick_find(p, n, 1, 0, 1024, 32768, 1024, 1, 0) == 3);
    CHECK(swax_gemm_pick_find(p, n, 1, 0, 1024, 32768, 1024, 0, 0) == 0); /* accumulate differs */
    CHECK(swax_gemm_pick_find(p, n, 1, 0, 1024, 32768, 1024, 1, 1) == 0); /* output type differs */
    CHECK(swax_gemm_pick_find(p, n, 1, 0, 5504, 32768, 1024, 0, 1) == 6);
    CHECK(swax_gemm_pick_find(p, n, 1, 0, 5504, 32768, 1024, 0, 0) == 2);
    CHECK(swax_gemm_pick_find(p, n, 0, 0, 1, 1, 1, 0, 0) == 0);
    free(p);
    static const char *bad[] = {"1 0 1024 32768 1024 1\n",      /* a field missing */
                                "1 0 1024 32768 1024 1 3 7\n",  /* an 8th field that is no type */
                                "1 0 1024 32768 1024 1 3 bf16 1\n", /* one too many */
                                "1 0 1024 32768 1024 1 3 fp16\n", /* not a type we have */
                                "2 0 1024 32768 1024 1 3\n",    /* ta not 0/1 */
                                "1 0 0 32768 1024 1 3\n",       /* m < 1 */
                                "1 0 1024 32768 1024 1 32\n",   /* index past 31 */
                                "1 0 1024 32768 1024 1 -1\n",   /* negative index */
                                "1 0 1024 x 1024 1 3\n"};       /* not a number */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "# ok\n1 0 8 8 8 0 1\n%s", bad[i]);
        const int rc = picks_from(text, &p, &n);
        CHECKF(rc == SWAX_E_INPUT && strstr(swax_last_error(), ":3: expected") && n == 0 && !p, "bad line %zu: rc %d, %s",
               i, rc, swax_last_error());
    }
    CHECK(swax_gemm_picks_read("/nonexistent/picks.txt", 31, &p, &n) == SWAX_E_IO &&
          strstr(swax_last_error(), "/nonexistent/picks.txt"));
}

/* OpenBLAS's fallback kernels are replaced only on a CPU that can run better ones, and good
 * or unknown picks are left alone (ops/cpu/blas_core.h) */
TEST(blas_core_replaces_only_fallback_kernels) {
    CHECK(swax_blas_better_core("Prescott", 1, 0) && !strcmp(swax_blas_better_core("Prescott", 1, 0), "Haswell"));
    CHECK(swax_blas_better_core("nehalem", 1, 1) && !strcmp(swax_blas_better_core("nehalem", 1, 1), "SkylakeX"));
    CHECK(swax_blas_better_core("Sandybridge", 1, 0) && !strcmp(swax_blas_better_core("Sandybridge", 1, 0), "Haswell"));
    CHECK(swax_blas_better_core("unknown", 1, 1) != NULL);
    CHECK(swax_blas_better_core("Prescott", 0, 0) == NULL); /* no AVX2 + FMA: nothing better */
    static const char *const good[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "Excavator"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) CHECKF(!swax_blas_better_core(good[i], 1, 1), "%s", good[i]);
    CHECK(swax_blas_better_core("SomeFutureCore", 1, 1) == NULL);
    CHECK(swax_blas_better_core(NULL, 1, 1) == NULL);
    /* the running OpenBLAS names a kernel set */
    CHECK(swax_blas_corename() != NULL && swax_blas_corename()[0] != 0);
}

RUN_TESTS()
