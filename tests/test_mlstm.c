/* test_mlstm.c — the three forms of the mLSTM cell agree (float64 to 1e-12,
 * float32 to 1e-5), document resets equal separate runs, and the chunkwise
 * backward equals central finite differences (float64). */
#include <stdint.h>

#include "core/common.h"
#include "ops/cpu/mlstm_cell.h"
#include "test.h"

typedef struct {
    int T, dk, dv;
    double *q, *k, *v, *ig, *lf;
    uint8_t *ds;
} Inp;

static SwaxRng rng;
static double g_ig_shift; /* added to every ĩ: very negative makes exp(-m) win the normaliser */

static double *randn(size_t n, double s) {
    double *x = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) x[i] = s * swax_rng_normal(&rng);
    return x;
}

/* gates spread enough that the stabiliser matters: ĩ in ±8, f̃ in ±6 */
static Inp make_inp(int T, int dk, int dv, int docs) {
    Inp in = {T, dk, dv, randn((size_t)T * dk, 1), randn((size_t)T * dk, 1), randn((size_t)T * dv, 1),
              randn(T, 4), randn(T, 1), NULL};
    for (int t = 0; t < T; t++) {
        in.ig[t] += g_ig_shift;
        double f = 3 * in.lf[t] + 2;
        in.lf[t] = -log1p(exp(-f)); /* logsigmoid */
    }
    if (docs) {
        in.ds = calloc(T, 1);
        for (int t = 1; t < T; t++) in.ds[t] = swax_rng_uniform(&rng) < 0.08;
    }
    return in;
}

static void free_inp(Inp *in) {
    free(in->q), free(in->k), free(in->v), free(in->ig), free(in->lf), free(in->ds);
}

static MlstmArgs_d args_d(const Inp *in, int L, double *h) {
    MlstmArgs_d a = {0};
    a.T = in->T, a.dk = in->dk, a.dv = in->dv, a.L = L;
    a.q = in->q, a.ldq = in->dk, a.k = in->k, a.ldk = in->dk, a.v = in->v, a.ldv = in->dv;
    a.ig = in->ig, a.lf = in->lf, a.ldg = 1, a.doc_start = in->ds, a.eps = 1e-6;
    a.h = h, a.ldh = in->dv;
    return a;
}

static double max_abs_diff(const double *a, const double *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= w)) w = d;
    }
    return w;
}

static void recurrent(const Inp *in, double *h) {
    double *C = calloc((size_t)in->dk * in->dv, 8), *n = calloc(in->dk, 8), m = 0;
    for (int t = 0; t < in->T; t++)
        swax_mlstm_step_d(in->dk, in->dv, in->q + (size_t)t * in->dk, in->k + (size_t)t * in->dk,
                          in->v + (size_t)t * in->dv, in->ig[t], in->lf[t], t == 0 || (in->ds && in->ds[t]),
                          1e-6, C, n, &m, h + (size_t)t * in->dv);
    free(C), free(n);
}

TEST(three_forms_agree_float64) {
    swax_rng_seed(&rng, 1, 0);
    int Ts[] = {1, 7, 64, 100};
    int Ls[] = {1, 3, 16, 64, 128};
    for (int ti = 0; ti < 4; ti++)
        for (int docs = 0; docs < 2; docs++) {
            Inp in = make_inp(Ts[ti], 8, 12, docs);
            size_t nh = (size_t)in.T * in.dv;
            double *hp = calloc(nh, 8), *hr = calloc(nh, 8), *hc = calloc(nh, 8);
            MlstmArgs_d a = args_d(&in, 0, hp);
            swax_mlstm_parallel_fwd_d(&a);
            recurrent(&in, hr);
            double scale = 0;
            for (size_t i = 0; i < nh; i++) scale = fmax(scale, fabs(hp[i]));
            CHECKF(max_abs_diff(hp, hr, nh) <= 1e-12 * (1 + scale), "T=%d docs=%d rec %g", in.T, docs,
                   max_abs_diff(hp, hr, nh));
            for (int li = 0; li < 5; li++) {
                a = args_d(&in, Ls[li], hc);
                CHECK(swax_mlstm_chunkwise_fwd_d(&a) == 0);
                CHECKF(max_abs_diff(hp, hc, nh) <= 1e-12 * (1 + scale), "T=%d L=%d docs=%d: %g", in.T,
                       Ls[li], docs, max_abs_diff(hp, hc, nh));
            }
            free(hp), free(hr), free(hc);
            free_inp(&in);
        }
}

TEST(final_state_matches_recurrent) {
    swax_rng_seed(&rng, 2, 0);
    Inp in = make_inp(45, 6, 10, 1);
    size_t nC = 60;
    double *C = calloc(nC, 8), *n = calloc(6, 8), m = 0, *h = calloc(45 * 10, 8);
    for (int t = 0; t < in.T; t++)
        swax_mlstm_step_d(6, 10, in.q + t * 6, in.k + t * 6, in.v + t * 10, in.ig[t], in.lf[t],
                          t == 0 || in.ds[t], 1e-6, C, n, &m, h + t * 10);
    double *C1 = calloc(nC, 8), *n1 = calloc(6, 8), m1;
    MlstmArgs_d a = args_d(&in, 8, h);
    a.C1 = C1, a.n1 = n1, a.m1 = &m1;
    swax_mlstm_chunkwise_fwd_d(&a);
    /* states equal up to the common factor exp(m): compare C·e^m */
    for (size_t i = 0; i < nC; i++) CHECKF(fabs(C[i] * exp(m) - C1[i] * exp(m1)) <= 1e-10 * (1 + fabs(C[i] * exp(m))), "C[%zu]", i);
    CHECKF(fabs(m - m1) < 1e-12, "m %g vs %g", m, m1);
    free(C), free(n), free(h), free(C1), free(n1);
    free_inp(&in);
}

TEST(documents_equal_separate_runs) {
    swax_rng_seed(&rng, 3, 0);
    Inp in = make_inp(70, 4, 6, 1);
    in.ds[0] = 1;
    size_t nh = (size_t)in.T * in.dv;
    double *h = calloc(nh, 8), *h2 = calloc(nh, 8);
    MlstmArgs_d a = args_d(&in, 16, h);
    swax_mlstm_chunkwise_fwd_d(&a);
    for (int s = 0; s < in.T;) {
        int e = s + 1;
        while (e < in.T && !in.ds[e]) e++;
        Inp part = in;
        part.T = e - s, part.q += s * 4, part.k += s * 4, part.v += s * 6, part.ig += s, part.lf += s;
        part.ds = NULL;
        MlstmArgs_d b = args_d(&part, 16, h2 + s * 6);
        swax_mlstm_chunkwise_fwd_d(&b);
        s = e;
    }
    CHECKF(max_abs_diff(h, h2, nh) == 0, "diff %g", max_abs_diff(h, h2, nh));
    free(h), free(h2);
    free_inp(&in);
}

TEST(float32_matches_float64) {
    swax_rng_seed(&rng, 4, 0);
    Inp in = make_inp(77, 16, 16, 1);
    size_t nh = (size_t)in.T * in.dv;
    double *hd = calloc(nh, 8);
    MlstmArgs_d a = args_d(&in, 16, hd);
    swax_mlstm_chunkwise_fwd_d(&a);
    float *q = malloc(4 * in.T * 16), *k = malloc(4 * in.T * 16), *v = malloc(4 * nh), *ig = malloc(4 * in.T),
          *lf = malloc(4 * in.T), *h = malloc(4 * nh);
    for (int i = 0; i < in.T * 16; i++) q[i] = in.q[i], k[i] = in.k[i];
    for (size_t i = 0; i < nh; i++) v[i] = in.v[i];
    for (int i = 0; i < in.T; i++) ig[i] = in.ig[i], lf[i] = in.lf[i];
    MlstmArgs_f f = {0};
    f.T = in.T, f.dk = 16, f.dv = 16, f.L = 32, f.q = q, f.ldq = 16, f.k = k, f.ldk = 16, f.v = v, f.ldv = 16;
    f.ig = ig, f.lf = lf, f.ldg = 1, f.doc_start = in.ds, f.eps = 1e-6f, f.h = h, f.ldh = 16;
    swax_mlstm_chunkwise_fwd_f(&f);
    CHECK_CLOSE(h, hd, nh, 1e-5, 1e-4);
    free(hd), free(q), free(k), free(v), free(ig), free(lf), free(h);
    free_inp(&in);
}

/* loss = Σ h ⊙ R ; compare the analytic gradient with central differences */
static double loss_of(Inp *in, int L, const double *R) {
    size_t nh = (size_t)in->T * in->dv;
    double *h = calloc(nh, 8);
    MlstmArgs_d a = args_d(in, L, h);
    swax_mlstm_chunkwise_fwd_d(&a);
    double s = 0;
    for (size_t i = 0; i < nh; i++) s += h[i] * R[i];
    free(h);
    return s;
}

static void grad_check(int T, int dk, int dv, int L, int docs, double eps_scale) {
    Inp in = make_inp(T, dk, dv, docs);
    size_t nh = (size_t)T * dv;
    double *R = randn(nh, 1), *h = calloc(nh, 8);
    int nch = swax_mlstm_num_chunks(T, L, in.ds);
    MlstmArgs_d a = args_d(&in, L, h);
    a.m_t = calloc(T, 8), a.den_t = calloc(T, 8), a.arg_t = calloc(T, sizeof(int)), a.lds = 1;
    a.Cs = calloc((size_t)nch * dk * dv, 8), a.ns = calloc((size_t)nch * dk, 8), a.ms = calloc(nch, 8);
    a.arg_end = calloc(nch, sizeof(int)), a.max_chunks = nch;
    swax_mlstm_chunkwise_fwd_d(&a);
    a.dh = R;
    a.dq = calloc((size_t)T * dk, 8), a.dk_ = calloc((size_t)T * dk, 8), a.dv_ = calloc(nh, 8);
    a.dig = calloc(T, 8), a.dlf = calloc(T, 8);
    swax_mlstm_chunkwise_bwd_d(&a);
    struct {
        double *x, *g;
        size_t n;
        const char *name;
    } vars[] = {{in.q, a.dq, (size_t)T * dk, "q"}, {in.k, a.dk_, (size_t)T * dk, "k"}, {in.v, a.dv_, nh, "v"},
                {in.ig, a.dig, (size_t)T, "ig"}, {in.lf, a.dlf, (size_t)T, "lf"}};
    for (int vi = 0; vi < 5; vi++) {
        for (size_t i = 0; i < vars[vi].n; i++) {
            double x0 = vars[vi].x[i], e = 1e-6 * eps_scale;
            vars[vi].x[i] = x0 + e;
            double lp = loss_of(&in, L, R);
            vars[vi].x[i] = x0 - e;
            double lm = loss_of(&in, L, R);
            vars[vi].x[i] = x0;
            double fd = (lp - lm) / (2 * e), an = vars[vi].g[i];
            CHECKF(fabs(fd - an) <= 1e-6 * (1 + fabs(fd)), "T=%d L=%d d%s[%zu]: analytic %.10g fd %.10g",
                   T, L, vars[vi].name, i, an, fd);
        }
    }
    free(R), free(h), free(a.m_t), free(a.den_t), free(a.arg_t), free(a.Cs), free(a.ns), free(a.ms);
    free(a.arg_end), free(a.dq), free(a.dk_), free(a.dv_), free(a.dig), free(a.dlf);
    free_inp(&in);
}

TEST(backward_matches_finite_differences) {
    swax_rng_seed(&rng, 5, 0);
    grad_check(1, 3, 4, 4, 0, 1);
    grad_check(9, 4, 5, 4, 0, 1);   /* T not a multiple of L */
    grad_check(13, 4, 3, 1, 0, 1);  /* chunk of one */
    grad_check(20, 3, 4, 6, 1, 1);  /* document resets */
    grad_check(11, 4, 4, 64, 0, 1); /* one chunk, L > T */
}

/* gates that make the normaliser's exp(-m) branch win (tiny |den|) */
TEST(backward_normaliser_branch) {
    swax_rng_seed(&rng, 6, 0);
    g_ig_shift = -9;
    /* check the branch is taken: |den| < exp(-m) for most tokens */
    Inp in = make_inp(12, 3, 3, 0);
    double *h = calloc(36, 8), *m = calloc(12, 8), *den = calloc(12, 8);
    int *arg = calloc(12, sizeof(int));
    MlstmArgs_d a = args_d(&in, 4, h);
    a.m_t = m, a.den_t = den, a.arg_t = arg, a.lds = 1;
    a.Cs = calloc(9 * 3, 8), a.ns = calloc(9, 8), a.ms = calloc(3, 8), a.arg_end = calloc(3, sizeof(int));
    a.max_chunks = 3;
    swax_mlstm_chunkwise_fwd_d(&a);
    int taken = 0;
    for (int t = 0; t < 12; t++) taken += fabs(den[t]) < exp(-m[t]);
    free(h), free(m), free(den), free(arg), free(a.Cs), free(a.ns), free(a.ms), free(a.arg_end);
    free_inp(&in);
    CHECKF(taken >= 6, "normaliser branch taken %d/12", taken);
    grad_check(12, 3, 3, 4, 0, 1);
    g_ig_shift = 0;
}

RUN_TESTS()
