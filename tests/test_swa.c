/* test_swa.c — sliding-window attention equals dense masked attention for
 * w = 1, w < T, w >= T (with and without documents); its backward and RoPE's
 * equal central finite differences (float64). */
#include "core/common.h"
#include "ops/cpu/swa.h"
#include "test.h"

static SwaxRng rng;
static double *randn(size_t n) {
    double *x = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) x[i] = swax_rng_normal(&rng);
    return x;
}

static int *make_doc_lo(int T, int docs) {
    int *lo = malloc(sizeof(int) * T);
    int cur = 0;
    for (int t = 0; t < T; t++) {
        if (docs && t > 0 && swax_rng_uniform(&rng) < 0.15) cur = t;
        lo[t] = cur;
    }
    return lo;
}

TEST(sliding_equals_dense) {
    swax_rng_seed(&rng, 11, 0);
    int Ts[] = {1, 5, 33};
    int ws[] = {1, 2, 4, 32, 33, 100};
    for (int ti = 0; ti < 3; ti++)
        for (int wi = 0; wi < 6; wi++)
            for (int docs = 0; docs < 2; docs++) {
                int T = Ts[ti], dh = 6;
                double *q = randn(T * dh), *k = randn(T * dh), *v = randn(T * dh);
                double *o1 = calloc(T * dh, 8), *o2 = calloc(T * dh, 8), *lse = calloc(T, 8);
                int *lo = make_doc_lo(T, docs);
                SwaArgs_d a = {T, dh, ws[wi], q, dh, k, dh, v, dh, lo, o1, dh, lse, 1, NULL, NULL, NULL, NULL};
                swax_swa_fwd_d(&a);
                a.out = o2;
                swax_swa_dense_fwd_d(&a);
                CHECK_CLOSE(o1, o2, T * dh, 1e-13, 1e-13);
                if (ws[wi] == 1) CHECK_CLOSE(o1, v, T * dh, 1e-15, 0); /* w = 1: each token sees itself */
                free(q), free(k), free(v), free(o1), free(o2), free(lse), free(lo);
            }
}

static double swa_loss(SwaArgs_d *a, const double *R, int n) {
    swax_swa_fwd_d(a);
    double s = 0;
    for (int i = 0; i < n; i++) s += a->out[i] * R[i];
    return s;
}

TEST(backward_matches_finite_differences) {
    swax_rng_seed(&rng, 12, 0);
    int cfg[][3] = {{7, 1, 0}, {9, 3, 0}, {12, 4, 1}, {6, 50, 0}};
    for (int c = 0; c < 4; c++) {
        int T = cfg[c][0], w = cfg[c][1], dh = 4, n = T * dh;
        double *q = randn(n), *k = randn(n), *v = randn(n), *R = randn(n), *o = calloc(n, 8), *lse = calloc(T, 8);
        double *dq = calloc(n, 8), *dk = calloc(n, 8), *dv = calloc(n, 8);
        int *lo = make_doc_lo(T, cfg[c][2]);
        SwaArgs_d a = {T, dh, w, q, dh, k, dh, v, dh, lo, o, dh, lse, 1, R, dq, dk, dv};
        swax_swa_fwd_d(&a);
        swax_swa_bwd_d(&a);
        double *xs[] = {q, k, v}, *gs[] = {dq, dk, dv};
        for (int vi = 0; vi < 3; vi++)
            for (int i = 0; i < n; i++) {
                double x0 = xs[vi][i], e = 1e-6;
                xs[vi][i] = x0 + e;
                double lp = swa_loss(&a, R, n);
                xs[vi][i] = x0 - e;
                double lm = swa_loss(&a, R, n);
                xs[vi][i] = x0;
                double fd = (lp - lm) / (2 * e);
                CHECKF(fabs(fd - gs[vi][i]) <= 1e-7 * (1 + fabs(fd)), "cfg %d var %d [%d]: %g vs %g", c, vi, i,
                       gs[vi][i], fd);
            }
        free(q), free(k), free(v), free(R), free(o), free(lse), free(dq), free(dk), free(dv), free(lo);
    }
}

TEST(rope_inverse_and_relative) {
    swax_rng_seed(&rng, 13, 0);
    int T = 5, H = 2, dh = 8, ld = H * dh;
    double *x = randn(T * ld), *x0 = malloc(8 * T * ld);
    memcpy(x0, x, 8 * T * ld);
    swax_rope_d(x, ld, T, H, dh, 1000000, 10000.0, 0);
    swax_rope_d(x, ld, T, H, dh, 1000000, 10000.0, 1);
    CHECK_CLOSE(x, x0, T * ld, 1e-12, 0);
    /* relative: <R(p)a, R(p+d)b> depends only on d */
    double a[8], b[8], a2[8], b2[8];
    for (int i = 0; i < 8; i++) a[i] = a2[i] = swax_rng_normal(&rng), b[i] = b2[i] = swax_rng_normal(&rng);
    swax_rope_d(a, 8, 1, 1, 8, 3, 10000.0, 0);
    swax_rope_d(b, 8, 1, 1, 8, 10, 10000.0, 0);
    swax_rope_d(a2, 8, 1, 1, 8, 503, 10000.0, 0);
    swax_rope_d(b2, 8, 1, 1, 8, 510, 10000.0, 0);
    double d1 = 0, d2 = 0;
    for (int i = 0; i < 8; i++) d1 += a[i] * b[i], d2 += a2[i] * b2[i];
    CHECKF(fabs(d1 - d2) < 1e-10, "%g vs %g", d1, d2);
    /* rotate-half convention on a unit vector at position 1, j = 0: angle 1 rad */
    double e[4] = {1, 0, 0, 0};
    swax_rope_d(e, 4, 1, 1, 4, 1, 10000.0, 0);
    CHECK(fabs(e[0] - cos(1.0)) < 1e-15 && fabs(e[2] - sin(1.0)) < 1e-15);
    free(x), free(x0);
}

static float *to_f(const double *x, int n) {
    float *y = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

/* the blocked BLAS kernels equal the reference kernels (float32, 2e-6) */
TEST(blocked_equals_reference) {
    swax_rng_seed(&rng, 14, 0);
    int cfg[][3] = {{1, 1, 0}, {37, 1, 0}, {100, 7, 1}, {130, 64, 0}, {70, 300, 1}, {200, 16, 1}, {65, 65, 0}};
    for (int c = 0; c < 7; c++) {
        int T = cfg[c][0], w = cfg[c][1], dh = 8, ld = 3 * dh, n = T * ld;
        double *xd = randn(n), *gd = randn(T * dh);
        float *x = to_f(xd, n), *g = to_f(gd, T * dh);
        float *o1 = calloc(T * dh, 4), *o2 = calloc(T * dh, 4), *l1 = calloc(T, 4), *l2 = calloc(T, 4);
        float *d1 = calloc(n, 4), *d2 = calloc(n, 4);
        int *lo = make_doc_lo(T, cfg[c][2]);
        SwaArgs_f a = {T, dh, w, x, ld, x + dh, ld, x + 2 * dh, ld, lo, o1, dh, l1, 1, g, d1, d1 + dh, d1 + 2 * dh};
        swax_swa_fwd_f(&a);
        swax_swa_bwd_f(&a);
        SwaArgs_f b = {T, dh, w, x, ld, x + dh, ld, x + 2 * dh, ld, lo, o2, dh, l2, 1, g, d2, d2 + dh, d2 + 2 * dh};
        swax_swa_fwd_blocked_f(&b);
        swax_swa_bwd_blocked_f(&b);
        CHECK_CLOSE(o2, o1, T * dh, 2e-6, 2e-5);
        CHECK_CLOSE(l2, l1, T, 2e-6, 2e-6);
        CHECK_CLOSE(d2, d1, n, 2e-6, 2e-5);
        free(xd), free(gd), free(x), free(g), free(o1), free(o2), free(l1), free(l2), free(d1), free(d2), free(lo);
    }
}

RUN_TESTS()
