/* test_gdn.c — the Gated DeltaNet cell (gdn_cell.h): the chunkwise form equals
 * the recurrence in float64 to rounding (any T, any chunk, document starts, an
 * initial state, prefill split across calls), document starts equal separate
 * runs, float32 tracks float64, and the chunkwise backward equals central
 * finite differences (float64). */
#include <stdint.h>

#include <unistd.h>

#include "core/common.h"
#include "io/config_json.h"
#include "ops/cpu/gdn_cell.h"
#include "ops/cpu/mlstm_cell.h"
#include "test.h"

typedef struct {
    int T, dk, dv;
    double *q, *k, *v, *beta, *g;
    uint8_t *ds;
} Inp;

static SwaxRng rng;

static double *randn(size_t n, double s) {
    double *x = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) x[i] = s * swax_rng_normal(&rng);
    return x;
}

static void l2norm_rows(double *x, int T, int d, double scale) {
    for (int t = 0; t < T; t++) {
        double s = 0;
        for (int j = 0; j < d; j++) s += x[t * d + j] * x[t * d + j];
        for (int j = 0; j < d; j++) x[t * d + j] *= scale / sqrt(s + 1e-6);
    }
}

/* as the layer makes them: unit k, q/√dk, β ∈ (0,1), g = −a·softplus(·) spread
 * from ~0 (α ≈ 1) to strongly negative */
static Inp make_inp(int T, int dk, int dv, int docs) {
    Inp in = {T, dk, dv, randn((size_t)T * dk, 1), randn((size_t)T * dk, 1), randn((size_t)T * dv, 1),
              randn(T, 2), randn(T, 1.5), NULL};
    l2norm_rows(in.q, T, dk, 1 / sqrt(dk));
    l2norm_rows(in.k, T, dk, 1);
    for (int t = 0; t < T; t++) {
        in.beta[t] = 1 / (1 + exp(-in.beta[t]));
        in.g[t] = -0.5 * log1p(exp(in.g[t] - 1));
    }
    if (docs) {
        in.ds = calloc(T, 1);
        for (int t = 1; t < T; t++) in.ds[t] = swax_rng_uniform(&rng) < 0.08;
    }
    return in;
}

static void free_inp(Inp *in) { free(in->q), free(in->k), free(in->v), free(in->beta), free(in->g), free(in->ds); }

static GdnArgs_d args_d(const Inp *in, int L, double *o) {
    GdnArgs_d a = {0};
    a.T = in->T, a.dk = in->dk, a.dv = in->dv, a.L = L;
    a.q = in->q, a.ldq = in->dk, a.k = in->k, a.ldk = in->dk, a.v = in->v, a.ldv = in->dv;
    a.beta = in->beta, a.g = in->g, a.ldg = 1, a.doc_start = in->ds;
    a.o = o, a.ldo = in->dv;
    return a;
}

static double max_abs(const double *a, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, fabs(a[i]));
    return w;
}

static double max_abs_diff(const double *a, const double *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= w)) w = d;
    }
    return w;
}

TEST(chunkwise_equals_recurrence_float64) {
    swax_rng_seed(&rng, 1, 0);
    int Ts[] = {1, 7, 64, 100};
    int Ls[] = {1, 3, 16, 64, 128};
    double worst = 0;
    for (int ti = 0; ti < 4; ti++)
        for (int docs = 0; docs < 2; docs++) {
            Inp in = make_inp(Ts[ti], 8, 12, docs);
            const size_t no = (size_t)in.T * in.dv, ns = (size_t)in.dk * in.dv;
            double *hr = calloc(no, 8), *hc = calloc(no, 8), *Sr = calloc(ns, 8), *Sc = calloc(ns, 8);
            double *S0 = randn(ns, 0.5);
            for (int withS0 = 0; withS0 < 2; withS0++) {
                GdnArgs_d a = args_d(&in, 0, hr);
                a.S0 = withS0 ? S0 : NULL, a.S1 = Sr;
                swax_gdn_recurrent_fwd_d(&a);
                const double scale = 1 + max_abs(hr, no), sscale = 1 + max_abs(Sr, ns);
                for (int li = 0; li < 5; li++) {
                    a = args_d(&in, Ls[li], hc);
                    a.S0 = withS0 ? S0 : NULL, a.S1 = Sc;
                    CHECK(swax_gdn_chunkwise_fwd_d(&a) == 0);
                    const double d = max_abs_diff(hr, hc, no) / scale, ds = max_abs_diff(Sr, Sc, ns) / sscale;
                    worst = fmax(worst, fmax(d, ds));
                    CHECKF(d <= 1e-13 && ds <= 1e-13, "T=%d L=%d docs=%d S0=%d: o %g S %g", in.T, Ls[li], docs,
                           withS0, d, ds);
                }
            }
            free(hr), free(hc), free(Sr), free(Sc), free(S0);
            free_inp(&in);
        }
    printf("  chunkwise vs recurrence (float64): worst relative difference %.2e\n", worst);
}

/* prefill in two calls (state out of the first into the second) = one call */
TEST(split_calls_equal_one_call) {
    swax_rng_seed(&rng, 2, 0);
    Inp in = make_inp(90, 6, 10, 0);
    const size_t no = (size_t)in.T * in.dv, ns = 60;
    double *h1 = calloc(no, 8), *h2 = calloc(no, 8), *S1 = calloc(ns, 8), *S2 = calloc(ns, 8);
    GdnArgs_d a = args_d(&in, 16, h1);
    a.S1 = S1;
    swax_gdn_chunkwise_fwd_d(&a);
    const int cut = 37;
    Inp p1 = in, p2 = in;
    p1.T = cut;
    p2.T = in.T - cut, p2.q += cut * 6, p2.k += cut * 6, p2.v += cut * 10, p2.beta += cut, p2.g += cut;
    GdnArgs_d b = args_d(&p1, 16, h2);
    b.S1 = S2;
    swax_gdn_chunkwise_fwd_d(&b);
    b = args_d(&p2, 16, h2 + cut * 10);
    b.S0 = S2, b.S1 = S2; /* in place */
    swax_gdn_chunkwise_fwd_d(&b);
    CHECKF(max_abs_diff(h1, h2, no) <= 1e-13 * (1 + max_abs(h1, no)), "o %g", max_abs_diff(h1, h2, no));
    CHECKF(max_abs_diff(S1, S2, ns) <= 1e-13 * (1 + max_abs(S1, ns)), "S %g", max_abs_diff(S1, S2, ns));
    free(h1), free(h2), free(S1), free(S2);
    free_inp(&in);
}

TEST(documents_equal_separate_runs) {
    swax_rng_seed(&rng, 3, 0);
    Inp in = make_inp(70, 4, 6, 1);
    in.ds[0] = 1;
    const size_t no = (size_t)in.T * in.dv;
    double *h = calloc(no, 8), *h2 = calloc(no, 8);
    GdnArgs_d a = args_d(&in, 16, h);
    swax_gdn_chunkwise_fwd_d(&a);
    int ndocs = 0;
    for (int s = 0; s < in.T; ndocs++) {
        int e = s + 1;
        while (e < in.T && !in.ds[e]) e++;
        Inp part = in;
        part.T = e - s, part.q += s * 4, part.k += s * 4, part.v += s * 6, part.beta += s, part.g += s;
        part.ds = NULL;
        GdnArgs_d b = args_d(&part, 16, h2 + s * 6);
        swax_gdn_chunkwise_fwd_d(&b);
        s = e;
    }
    CHECK(ndocs >= 3);
    CHECKF(max_abs_diff(h, h2, no) == 0, "diff %g", max_abs_diff(h, h2, no));
    free(h), free(h2);
    free_inp(&in);
}

TEST(float32_matches_float64) {
    swax_rng_seed(&rng, 4, 0);
    Inp in = make_inp(77, 16, 16, 1);
    const size_t no = (size_t)in.T * in.dv, nk = (size_t)in.T * 16;
    double *hd = calloc(no, 8);
    GdnArgs_d a = args_d(&in, 16, hd);
    swax_gdn_chunkwise_fwd_d(&a);
    float *q = malloc(4 * nk), *k = malloc(4 * nk), *v = malloc(4 * no), *be = malloc(4 * in.T), *g = malloc(4 * in.T),
          *h = malloc(4 * no), *hs = malloc(4 * no), *S = calloc(256, 4);
    for (size_t i = 0; i < nk; i++) q[i] = (float)in.q[i], k[i] = (float)in.k[i];
    for (size_t i = 0; i < no; i++) v[i] = (float)in.v[i];
    for (int i = 0; i < in.T; i++) be[i] = (float)in.beta[i], g[i] = (float)in.g[i];
    GdnArgs_f f = {0};
    f.T = in.T, f.dk = 16, f.dv = 16, f.L = 32, f.q = q, f.ldq = 16, f.k = k, f.ldk = 16, f.v = v, f.ldv = 16;
    f.beta = be, f.g = g, f.ldg = 1, f.doc_start = in.ds, f.o = h, f.ldo = 16;
    CHECK(swax_gdn_chunkwise_fwd_f(&f) == 0);
    CHECK_CLOSE(h, hd, no, 1e-5, 1e-4);
    /* the float step (decode) against the float64 chunkwise form */
    for (int t = 0; t < in.T; t++)
        swax_gdn_step_f(16, 16, q + t * 16, k + t * 16, v + t * 16, be[t], g[t], in.ds[t], S, hs + t * 16);
    CHECK_CLOSE(hs, hd, no, 1e-5, 1e-4);
    free(hd), free(q), free(k), free(v), free(be), free(g), free(h), free(hs), free(S);
    free_inp(&in);
}

/* loss = Σ o ⊙ R ; the analytic gradient against central differences */
static double loss_of(Inp *in, int L, const double *R) {
    const size_t no = (size_t)in->T * in->dv;
    double *h = calloc(no, 8);
    GdnArgs_d a = args_d(in, L, h);
    swax_gdn_chunkwise_fwd_d(&a);
    double s = 0;
    for (size_t i = 0; i < no; i++) s += h[i] * R[i];
    free(h);
    return s;
}

static void grad_check(int T, int dk, int dv, int L, int docs) {
    Inp in = make_inp(T, dk, dv, docs);
    const size_t no = (size_t)T * dv, nk = (size_t)T * dk;
    double *R = randn(no, 1), *h = calloc(no, 8);
    const int nch = swax_mlstm_num_chunks(T, L, in.ds);
    GdnArgs_d a = args_d(&in, L, h);
    a.Ss = calloc((size_t)nch * dk * dv, 8), a.max_chunks = nch;
    CHECK(swax_gdn_chunkwise_fwd_d(&a) == 0);
    a.dout = R;
    a.dq = calloc(nk, 8), a.dk_ = calloc(nk, 8), a.dv_ = calloc(no, 8), a.dbeta = calloc(T, 8), a.dg = calloc(T, 8);
    CHECK(swax_gdn_chunkwise_bwd_d(&a) == 0);
    struct {
        double *x, *g;
        size_t n;
        const char *name;
    } vars[] = {{in.q, a.dq, nk, "q"},         {in.k, a.dk_, nk, "k"},           {in.v, a.dv_, no, "v"},
                {in.beta, a.dbeta, (size_t)T, "beta"}, {in.g, a.dg, (size_t)T, "g"}};
    for (int vi = 0; vi < 5; vi++)
        for (size_t i = 0; i < vars[vi].n; i++) {
            const double x0 = vars[vi].x[i], e = 1e-6;
            vars[vi].x[i] = x0 + e;
            const double lp = loss_of(&in, L, R);
            vars[vi].x[i] = x0 - e;
            const double lm = loss_of(&in, L, R);
            vars[vi].x[i] = x0;
            const double fd = (lp - lm) / (2 * e), an = vars[vi].g[i];
            CHECKF(fabs(fd - an) <= 1e-6 * (1 + fabs(fd)), "T=%d L=%d docs=%d d%s[%zu]: analytic %.10g fd %.10g", T, L,
                   docs, vars[vi].name, i, an, fd);
        }
    free(R), free(h), free(a.Ss), free(a.dq), free(a.dk_), free(a.dv_), free(a.dbeta), free(a.dg);
    free_inp(&in);
}

TEST(backward_matches_finite_differences) {
    swax_rng_seed(&rng, 5, 0);
    grad_check(1, 3, 4, 4, 0);
    grad_check(9, 4, 5, 4, 0);   /* T not a multiple of L */
    grad_check(13, 4, 3, 1, 0);  /* chunk of one */
    grad_check(20, 3, 4, 6, 1);  /* document resets */
    grad_check(11, 4, 4, 64, 0); /* one chunk, L > T */
    grad_check(30, 5, 3, 8, 0);  /* several chunks: the state gradient carried back */
}

/* ---- the layer in the model: config, checkpoint, device ---------------- */

static void small_config(SwaxConfig *c, const char *pattern) {
    swax_config_default(c, 29, 16, 2);
    snprintf(c->pattern, sizeof c->pattern, "%s", pattern);
    c->attn_heads = 2, c->head_dim = 8, c->mlstm_heads = 2, c->ffn_dim = 24, c->window = 4, c->eot_token = -1;
}

TEST(bad_configs_give_clear_errors) {
    SwaxConfig c;
    small_config(&c, "AX");
    CHECK(swax_config_validate(&c) == SWAX_E_USAGE);
    CHECKF(strstr(swax_last_error(), "'D' (Gated DeltaNet)"), "message: %s", swax_last_error());
    small_config(&c, "AD");
    c.gdn_heads = 3; /* 3 does not divide D/2 = 8 */
    CHECK(swax_config_validate(&c) == SWAX_E_USAGE);
    CHECKF(strstr(swax_last_error(), "gdn_heads 3") && strstr(swax_last_error(), "d_model/2 = 8"), "message: %s",
           swax_last_error());
    printf("  e.g. %s\n", swax_last_error());
    c.gdn_heads = -1;
    CHECK(swax_config_validate(&c) == SWAX_E_USAGE);
    c.gdn_heads = 0, c.mlstm_heads = 16; /* 0 = mlstm_heads, which is too many for a D layer */
    CHECK(swax_config_validate(&c) == SWAX_E_USAGE);
    CHECKF(strstr(swax_last_error(), "from mlstm_heads"), "message: %s", swax_last_error());
    c.gdn_heads = 8; /* one channel pair per head: allowed */
    CHECK(swax_config_validate(&c) == 0);
    small_config(&c, "AM");
    c.gdn_heads = 3; /* no D layer: not checked */
    CHECK(swax_config_validate(&c) == 0);
    CHECK(swax_config_set(&c, "pattern=AD") == 0 && swax_config_set(&c, "gdn_heads=4") == 0);
    CHECK(!strcmp(c.pattern, "AD") && c.gdn_heads == 4 && swax_config_validate(&c) == 0);
}

TEST(config_json_round_trip) {
    SwaxConfig a, b;
    small_config(&a, "AD");
    char *txt;
    CHECK(swax_config_to_json(&a, &txt) == 0);
    CHECKF(!strstr(txt, "gdn_heads"), "0 (= mlstm_heads) is not written: %s", txt);
    CHECK(swax_config_from_json(txt, strlen(txt), "t", &b) == 0 && b.gdn_heads == 0);
    free(txt);
    a.gdn_heads = 4;
    CHECK(swax_config_to_json(&a, &txt) == 0);
    CHECK(strstr(txt, "\"gdn_heads\":\t4"));
    CHECK(swax_config_from_json(txt, strlen(txt), "t", &b) == 0);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    free(txt);
}

TEST(checkpoint_round_trip_and_names) {
    SwaxConfig c;
    small_config(&c, "DA");
    c.gdn_heads = 4;
    SwaxModel *m, *m2;
    CHECK(swax_model_create(&c, &m) == 0);
    swax_model_init(m, 3);
    /* the names of docs/checkpoint.md, in order, and the SPEC initialisation */
    const char *want[] = {"blocks.0.gdn.wq.weight", "blocks.0.gdn.wk.weight", "blocks.0.gdn.wv.weight",
                          "blocks.0.gdn.wg.weight", "blocks.0.gdn.wb.weight", "blocks.0.gdn.wa.weight",
                          "blocks.0.gdn.conv_q.weight", "blocks.0.gdn.conv_k.weight", "blocks.0.gdn.conv_v.weight",
                          "blocks.0.gdn.A_log", "blocks.0.gdn.dt_bias", "blocks.0.gdn.norm.weight",
                          "blocks.0.gdn.wo.weight"};
    const float *p = swax_model_params(m);
    for (int i = 0; i < 13; i++) {
        const char *name;
        size_t off;
        int nd;
        int64_t sh[2];
        CHECK(swax_model_tensor(m, 2 + i, &name, &off, &nd, sh) == 0);
        CHECKF(!strcmp(name, want[i]), "tensor %d: %s, expected %s", 2 + i, name, want[i]);
        const size_t n = (size_t)sh[0] * sh[1];
        for (size_t j = 0; j < n; j++) {
            const float x = p[off + j];
            if (strstr(name, "conv_")) CHECK(nd == 2 && sh[1] == 4 && fabsf(x) <= 0.5f);
            if (strstr(name, "A_log")) CHECK(sh[0] == 4 && x >= 0 && x <= logf(16) + 1e-6f);
            if (strstr(name, "dt_bias")) { /* softplus(dt_bias) in [0.001, 0.1] */
                const double dt = log1p(exp((double)x));
                CHECKF(dt >= 0.001 * 0.999 && dt <= 0.1 * 1.001, "dt %g", dt);
            }
        }
    }
    char dir[] = "/tmp/swax_test_gdn_XXXXXX";
    CHECK(mkdtemp(dir));
    CHECK(swax_model_save(m, dir) == 0);
    CHECK(swax_model_load(dir, &m2) == 0);
    CHECK(memcmp(swax_model_params(m), swax_model_params(m2), 4 * swax_model_num_params(m)) == 0);
    CHECK(memcmp(swax_model_config(m), swax_model_config(m2), sizeof(SwaxConfig)) == 0);
    int32_t tok[11] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    SwaxBatch b = {1, 11, tok, NULL, NULL, 4, 4};
    CHECK(swax_forward(m, &b, NULL) == 0 && swax_forward(m2, &b, NULL) == 0);
    CHECK(memcmp(swax_model_logits(m), swax_model_logits(m2), 4 * 11 * 29) == 0);
    /* --device cuda-fp32: refused with a clear message without a GPU (or in a
     * build without CUDA); with one, the CUDA tables have every D slot
     * (training and inference; test_cuda_gdn, test_cuda_gdn_infer) */
    if (swax_model_set_device(m, "cuda-fp32") != 0) printf("  --device cuda-fp32: %s\n", swax_last_error());
    else CHECK(swax_model_set_device(m, "cpu") == 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    swax_model_free(m);
    swax_model_free(m2);
}

RUN_TESTS()
