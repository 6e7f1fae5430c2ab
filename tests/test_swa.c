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

/* A cached table (the CPU training path keeps one for positions 0 .. T-1 and serves shorter
 * sequences from its prefix) rotates as the per-call swax_rope_* does, bit for bit: a table
 * built for more rows than used, odd and even sizes, pos0 > 0, several theta, inverse. */
TEST(rope_table_bit_identical) {
    swax_rng_seed(&rng, 17, 0);
    const struct { int T, H, dh, extra; long pos0; double theta; } cases[] = {
        {1, 1, 2, 0, 0, 10000.0},    {7, 3, 6, 0, 0, 10000.0},   {33, 2, 64, 5, 0, 10000.0},
        {17, 4, 64, 0, 1000, 500000.0}, {5, 1, 10, 3, 123457, 10000.0}, {64, 2, 16, 0, 0, 1e6},
        {9, 3, 7, 0, 31, 10000.0},   {300, 1, 128, 0, 4095, 10000.0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int inverse = 0; inverse < 2; inverse++) {
            const int T = cases[ci].T, H = cases[ci].H, dh = cases[ci].dh, ld = H * dh + 3;
            const long n = (long)T * ld;
            float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
            float *cs = malloc(sizeof(float) * (size_t)(T + cases[ci].extra) * dh);
            double *ad = malloc(sizeof(double) * n), *bd = malloc(sizeof(double) * n);
            double *csd = malloc(sizeof(double) * (size_t)(T + cases[ci].extra) * dh);
            for (long i = 0; i < n; i++) a[i] = b[i] = (float)(ad[i] = bd[i] = 3 * swax_rng_normal(&rng));
            swax_rope_f(a, ld, T, H, dh, cases[ci].pos0, cases[ci].theta, inverse);
            swax_rope_table_f(cs, T + cases[ci].extra, dh, cases[ci].pos0, cases[ci].theta);
            swax_rope_apply_f(b, ld, T, H, dh, cs, inverse);
            CHECKF(memcmp(a, b, sizeof(float) * n) == 0, "float case %zu inverse %d differs", ci, inverse);
            swax_rope_d(ad, ld, T, H, dh, cases[ci].pos0, cases[ci].theta, inverse);
            swax_rope_table_d(csd, T + cases[ci].extra, dh, cases[ci].pos0, cases[ci].theta);
            swax_rope_apply_d(bd, ld, T, H, dh, csd, inverse);
            CHECKF(memcmp(ad, bd, sizeof(double) * n) == 0, "double case %zu inverse %d differs", ci, inverse);
            free(a), free(b), free(cs), free(ad), free(bd), free(csd);
        }
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

/* Each implementation behind swax_swa_*_blocked_f (the tiled vector kernels and the BLAS blocks)
 * equals the reference kernels: dh 16 to 256 (the tiled path's), window 1, windows around the
 * 8-row score groups and the 32-row tiles, window >= T, T not a multiple of 32, 16 or 8,
 * documents (short ones, long ones, none), flat and peaked softmax rows. q, k, v, dq, dk, dv
 * interleaved in rows of 3·dh + 5 floats (the model's strided qkv, unaligned); dq, dk, dv start
 * as garbage the kernels must overwrite. */
TEST(tiled_and_blas_equal_reference) {
    swax_rng_seed(&rng, 15, 0);
    /* T, window, dh, document-start probability in percent, input amplitude in tenths */
    static const int cfg[][5] = {
        {1, 1, 16, 0, 5},     {5, 3, 16, 15, 5},    {31, 1, 64, 0, 5},    {32, 32, 64, 0, 5},
        {33, 31, 64, 15, 5},  {37, 7, 32, 15, 5},   {64, 8, 64, 0, 30},   {100, 16, 64, 15, 5},
        {130, 64, 64, 0, 5},  {70, 300, 48, 15, 5}, {200, 17, 128, 15, 5}, {65, 65, 64, 0, 5},
        {300, 128, 64, 0, 5}, {257, 128, 64, 2, 5}, {300, 128, 64, 1, 30}, {91, 40, 80, 0, 5},
        {48, 33, 256, 15, 5}, {129, 2, 16, 2, 5},   {96, 95, 112, 0, 5},  {150, 9, 64, 2, 30},
        {77, 33, 64, 100, 5}};
    const int ncfg = (int)(sizeof cfg / sizeof cfg[0]);
    for (int c = 0; c < ncfg; c++) {
        const int T = cfg[c][0], w = cfg[c][1], dh = cfg[c][2], ld = 3 * dh + 5, n = T * ld;
        const float amp = cfg[c][4] / 10.0f;
        CHECK(swax_swa_tiled_ok(dh));
        double *xd = randn(n), *gd = randn(T * dh);
        float *x = to_f(xd, n), *g = to_f(gd, T * dh);
        for (int i = 0; i < n; i++) x[i] *= amp; /* 0.5: flat rows, 3: peaked ones */
        int *lo = malloc(sizeof(int) * T);
        for (int t = 0, cur = 0; t < T; t++) {
            if (t > 0 && swax_rng_uniform(&rng) < cfg[c][3] / 100.0) cur = t;
            lo[t] = cur;
        }
        float *o1 = calloc(T * dh, 4), *l1 = calloc(T, 4), *d1 = calloc(n, 4);
        SwaArgs_f a = {T, dh, w, x, ld, x + dh, ld, x + 2 * dh, ld, lo, o1, dh, l1, 1, g, d1, d1 + dh, d1 + 2 * dh};
        swax_swa_fwd_f(&a);
        swax_swa_bwd_f(&a);
        for (int impl = swax_swa_tiled_runs() ? 0 : 1; impl < 2; impl++) { /* tiled: where this CPU runs it */
            float *o2 = calloc(T * dh, 4), *l2 = calloc(T, 4), *d2 = malloc(sizeof(float) * n);
            for (int i = 0; i < n; i++) d2[i] = 1e30f; /* garbage the backward must overwrite */
            SwaArgs_f b = {T, dh, w, x, ld, x + dh, ld, x + 2 * dh, ld, lo, o2, dh, l2, 1, g, d2, d2 + dh, d2 + 2 * dh};
            if (impl == 0) swax_swa_fwd_tiled_f(&b), swax_swa_bwd_tiled_f(&b);
            else swax_swa_fwd_blas_f(&b), swax_swa_bwd_blas_f(&b);
            /* the 5 floats between rows are not the kernels' to write */
            for (int t = 0; t < T; t++)
                for (int e = 3 * dh; e < ld; e++) {
                    CHECKF(d2[(long)t * ld + e] == 1e30f, "cfg %d impl %d wrote outside its rows", c, impl);
                    d2[(long)t * ld + e] = d1[(long)t * ld + e];
                }
            /* peaked rows (amplitude 3: scores of ±10) carry the scores' rounding (~1e-5 of them)
             * into outputs and gradients of a few units: the absolute tolerance follows amp³ */
            const double at = amp > 1 ? 2e-6 * amp * amp * amp : 2e-6;
            long wo, wl, wd;
            WORST_OUTSIDE(o2, o1, (long)T * dh, at, 2e-5, wo);
            WORST_OUTSIDE(l2, l1, T, at, 2e-6, wl);
            WORST_OUTSIDE(d2, d1, n, 2.5 * at, 2e-5, wd);
            CHECKF(wo < 0, "cfg %d (T %d w %d dh %d) impl %s: out[%ld] %.9g vs %.9g", c, T, w, dh,
                   impl ? "blas" : "tiled", wo, o2[wo < 0 ? 0 : wo], o1[wo < 0 ? 0 : wo]);
            CHECKF(wl < 0, "cfg %d (T %d w %d dh %d) impl %s: lse[%ld] %.9g vs %.9g", c, T, w, dh,
                   impl ? "blas" : "tiled", wl, l2[wl < 0 ? 0 : wl], l1[wl < 0 ? 0 : wl]);
            CHECKF(wd < 0, "cfg %d (T %d w %d dh %d) impl %s: grad[%ld] %.9g vs %.9g", c, T, w, dh,
                   impl ? "blas" : "tiled", wd, d2[wd < 0 ? 0 : wd], d1[wd < 0 ? 0 : wd]);
            free(o2), free(l2), free(d2);
        }
        free(xd), free(gd), free(x), free(g), free(o1), free(l1), free(d1), free(lo);
    }
}

/* the switch between them: SWAX_SWA=blas gives the BLAS blocks' numbers, the default (tiled where
 * it is AVX-512 code on an AVX-512 CPU, dh permitting) the tiled kernels' — the same to fp32
 * rounding either way */
TEST(blocked_dispatch) {
    if (!swax_swa_tiled_runs()) {
        printf("  skipped: this build's tiled kernels need AVX-512, which this CPU lacks\n");
        return;
    }
    swax_rng_seed(&rng, 16, 0);
    const int T = 90, w = 20, dh = 64, ld = 3 * dh, n = T * ld;
    double *xd = randn(n), *gd = randn(T * dh);
    float *x = to_f(xd, n), *g = to_f(gd, T * dh);
    float *o[2], *l[2], *d[2];
    for (int k = 0; k < 2; k++) {
        o[k] = calloc(T * dh, 4), l[k] = calloc(T, 4), d[k] = calloc(n, 4);
        SwaArgs_f a = {T, dh, w, x, ld, x + dh, ld, x + 2 * dh, ld, NULL, o[k], dh, l[k], 1, g, d[k], d[k] + dh,
                       d[k] + 2 * dh};
        if (k == 0) swax_swa_fwd_blocked_f(&a), swax_swa_bwd_blocked_f(&a);
        else swax_swa_fwd_tiled_f(&a), swax_swa_bwd_tiled_f(&a);
    }
    const char *e = getenv("SWAX_SWA");
    const int tiled_default = swax_swa_tiled_native() ? !(e && !strcmp(e, "blas")) : (e && !strcmp(e, "tiled"));
    if (tiled_default) { /* the same code: the same bits */
        CHECK(!memcmp(o[0], o[1], sizeof(float) * T * dh) && !memcmp(d[0], d[1], sizeof(float) * n));
    } else {
        CHECK_CLOSE(o[0], o[1], T * dh, 2e-6, 2e-5);
        CHECK_CLOSE(d[0], d[1], n, 2e-6, 2e-5);
    }
    free(xd), free(gd), free(x), free(g);
    for (int k = 0; k < 2; k++) free(o[k]), free(l[k]), free(d[k]);
}

RUN_TESTS()
