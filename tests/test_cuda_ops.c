/* test_cuda_ops.c — the elementwise / row-wise CUDA slots (src/ops/cuda/
 * elementwise.cu) against the CPU slots: fresh random inputs, the same inputs
 * to C->slot (host memory) and G->slot (device memory), every output
 * compared (rel_err: max abs difference over max abs reference). Outputs a
 * slot overwrites start as NaN (0xFF bytes) on both sides, outputs it
 * accumulates into start nonzero. Awkward sizes (odd N, D not a multiple of
 * 4, strides not 16-byte aligned, pointers moved by one float) reach the
 * scalar fallbacks. Every reducing / accumulating slot is run twice from the
 * same state and must give the same bits. */
#include <float.h>
#include <stdint.h>

#include "test_cuda.h"

static SwaxRng rng;

static float *urand(size_t n, float lo, float hi) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    SWAX_ASSERT(x);
    fill_uniform(&rng, x, n, lo, hi);
    return x;
}
static float *nanbuf(size_t n) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    SWAX_ASSERT(x);
    memset(x, 0xFF, sizeof(float) * n);
    return x;
}
static int32_t *irand(size_t n, int lo, int hi) { /* in [lo, hi) */
    int32_t *t = malloc(sizeof(int32_t) * (n ? n : 1));
    SWAX_ASSERT(t);
    for (size_t i = 0; i < n; i++) t[i] = lo + (int32_t)(swax_rng_u64(&rng) % (uint64_t)(hi - lo));
    return t;
}
static int same_bits(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

/* A device buffer of n floats starting `off` floats into its allocation
 * (off = 1: not 16-byte aligned). */
typedef struct {
    float *base, *p;
    size_t n;
} DBuf;
/* Uploads h, or NaN bytes when h is NULL. */
static void dset(DBuf b, const float *h) {
    if (!b.n) return;
    if (h) {
        G->to_device(b.p, h, sizeof(float) * b.n);
    } else {
        float *x = nanbuf(b.n);
        G->to_device(b.p, x, sizeof(float) * b.n);
        free(x);
    }
}
static DBuf dbuf(const float *h, size_t n, int off) {
    DBuf b;
    b.base = G->alloc(sizeof(float) * (n + (size_t)off + 1));
    SWAX_ASSERT(b.base);
    b.p = b.base + off;
    b.n = n;
    dset(b, h);
    return b;
}
static float *dget(DBuf b) {
    G->sync();
    return host_from(b.p, sizeof(float) * b.n);
}
static void dfree(DBuf b) { G->free(b.base); }

/* ------------------------------------------------------------------ embedding */

static void embed_fwd_case(int N, int D, int vocab, int off) {
    int32_t *tok = irand((size_t)N, 0, vocab);
    float *wte = urand((size_t)vocab * D, -1, 1), *out = nanbuf((size_t)N * D);
    C->embed_fwd(out, tok, wte, N, D);
    int32_t *d_tok = dev_from(tok, sizeof(int32_t) * N);
    DBuf d_wte = dbuf(wte, (size_t)vocab * D, off), d_out = dbuf(NULL, (size_t)N * D, off);
    G->embed_fwd(d_out.p, d_tok, d_wte.p, N, D);
    float *got = dget(d_out);
    CHECK_REL(got, out, (size_t)N * D, 0.0, "embed_fwd N=%d D=%d off=%d", N, D, off);
    free(got), free(tok), free(wte), free(out);
    G->free(d_tok), dfree(d_wte), dfree(d_out);
}

TEST(cuda_embed_fwd) {
    swax_rng_seed(&rng, 101, 0);
    const int cases[][4] = {{1, 8, 5, 0},      {7, 130, 29, 0}, {1000, 1024, 50, 0},
                            {4099, 24, 7, 0},  {7, 4096, 11, 0}, {1000, 1024, 50, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        embed_fwd_case(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
}

static void embed_bwd_case(int N, int D, int vocab, int off) {
    int32_t *tok = irand((size_t)N, 0, vocab);
    const size_t nw = (size_t)vocab * D;
    float *dout = urand((size_t)N * D, -1, 1), *dwte0 = urand(nw, -1, 1), *dwte = host_copy(dwte0, nw);
    C->embed_bwd(dwte, dout, tok, N, D);
    int32_t *d_tok = dev_from(tok, sizeof(int32_t) * N);
    DBuf d_dout = dbuf(dout, (size_t)N * D, off), d_dwte = dbuf(dwte0, nw, off);
    G->embed_bwd(d_dwte.p, d_dout.p, d_tok, N, D);
    float *got = dget(d_dwte);
    /* the same additions in the same (row) order: the same bits */
    CHECK_REL(got, dwte, nw, 0.0, "embed_bwd N=%d D=%d vocab=%d off=%d", N, D, vocab, off);
    dset(d_dwte, dwte0);
    G->embed_bwd(d_dwte.p, d_dout.p, d_tok, N, D);
    float *again = dget(d_dwte);
    CHECKF(same_bits(got, again, sizeof(float) * nw), "embed_bwd not deterministic N=%d D=%d", N, D);
    free(got), free(again), free(tok), free(dout), free(dwte0), free(dwte);
    G->free(d_tok), dfree(d_dout), dfree(d_dwte);
}

TEST(cuda_embed_bwd) {
    swax_rng_seed(&rng, 102, 0);
    /* a vocabulary of 5 ids over 1000 rows: ~200 rows per id */
    const int cases[][4] = {{1, 8, 5, 0},       {1000, 1024, 5, 0}, {1000, 130, 5, 0}, {4099, 24, 29, 0},
                            {7, 4096, 3, 0},    {1000, 1024, 5, 1}, {4099, 8, 50304, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        embed_bwd_case(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
}

/* ------------------------------------------------------------------ RMSNorm */

static void rmsnorm_fwd_case(int N, int D, int off) {
    const size_t nd = (size_t)N * D;
    const float eps = 1e-5f;
    float *x = urand(nd, -2, 2), *w = urand((size_t)D, 0.5f, 1.5f), *out = nanbuf(nd), *rstd = nanbuf((size_t)N);
    C->rmsnorm_fwd(out, rstd, x, w, N, D, eps);
    DBuf d_x = dbuf(x, nd, off), d_w = dbuf(w, (size_t)D, off), d_out = dbuf(NULL, nd, off),
         d_rstd = dbuf(NULL, (size_t)N, 0);
    G->rmsnorm_fwd(d_out.p, d_rstd.p, d_x.p, d_w.p, N, D, eps);
    float *g_out = dget(d_out), *g_rstd = dget(d_rstd);
    CHECK_REL(g_out, out, nd, 1e-5, "rmsnorm_fwd out N=%d D=%d off=%d", N, D, off);
    CHECK_REL(g_rstd, rstd, (size_t)N, 1e-5, "rmsnorm_fwd rstd N=%d D=%d off=%d", N, D, off);
    dset(d_out, NULL), dset(d_rstd, NULL);
    G->rmsnorm_fwd(d_out.p, d_rstd.p, d_x.p, d_w.p, N, D, eps);
    float *a_out = dget(d_out), *a_rstd = dget(d_rstd);
    CHECKF(same_bits(g_out, a_out, sizeof(float) * nd) && same_bits(g_rstd, a_rstd, sizeof(float) * N),
           "rmsnorm_fwd not deterministic N=%d D=%d", N, D);
    free(x), free(w), free(out), free(rstd), free(g_out), free(g_rstd), free(a_out), free(a_rstd);
    dfree(d_x), dfree(d_w), dfree(d_out), dfree(d_rstd);
}

TEST(cuda_rmsnorm_fwd) {
    swax_rng_seed(&rng, 103, 0);
    const int cases[][3] = {{1, 8, 0},       {7, 24, 0},    {1000, 130, 0}, {4099, 1024, 0},
                            {257, 4096, 0},  {7, 1024, 1},  {1, 4096, 0},   {1000, 8, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        rmsnorm_fwd_case(cases[i][0], cases[i][1], cases[i][2]);
}

static void rmsnorm_bwd_case(int N, int D, int off) {
    const size_t nd = (size_t)N * D;
    float *x = urand(nd, -2, 2), *w = urand((size_t)D, 0.5f, 1.5f), *g = urand(nd, -1, 1);
    float *out = nanbuf(nd), *rstd = nanbuf((size_t)N);
    C->rmsnorm_fwd(out, rstd, x, w, N, D, 1e-5f);
    float *dinp0 = urand(nd, -1, 1), *dw0 = urand((size_t)D, -1, 1);
    float *dinp = host_copy(dinp0, nd), *dw = host_copy(dw0, (size_t)D);
    C->rmsnorm_bwd(dinp, dw, g, x, w, rstd, N, D);
    DBuf d_x = dbuf(x, nd, off), d_w = dbuf(w, (size_t)D, off), d_g = dbuf(g, nd, off),
         d_rstd = dbuf(rstd, (size_t)N, 0), d_dinp = dbuf(dinp0, nd, off), d_dw = dbuf(dw0, (size_t)D, 0);
    G->rmsnorm_bwd(d_dinp.p, d_dw.p, d_g.p, d_x.p, d_w.p, d_rstd.p, N, D);
    float *g_dinp = dget(d_dinp), *g_dw = dget(d_dw);
    CHECK_REL(g_dinp, dinp, nd, 1e-5, "rmsnorm_bwd dinp N=%d D=%d off=%d", N, D, off);
    CHECK_REL(g_dw, dw, (size_t)D, 1e-5, "rmsnorm_bwd dw N=%d D=%d off=%d", N, D, off);
    dset(d_dinp, dinp0), dset(d_dw, dw0);
    G->rmsnorm_bwd(d_dinp.p, d_dw.p, d_g.p, d_x.p, d_w.p, d_rstd.p, N, D);
    float *a_dinp = dget(d_dinp), *a_dw = dget(d_dw);
    CHECKF(same_bits(g_dinp, a_dinp, sizeof(float) * nd) && same_bits(g_dw, a_dw, sizeof(float) * D),
           "rmsnorm_bwd not deterministic N=%d D=%d", N, D);
    /* the register-pipelined kernel (a thread per 4-vector: D 128 … 2048) and the other: the same bits */
    dset(d_dinp, dinp0), dset(d_dw, dw0);
    setenv("SWAX_RMSNORM_BWD", "old", 1);
    G->rmsnorm_bwd(d_dinp.p, d_dw.p, d_g.p, d_x.p, d_w.p, d_rstd.p, N, D);
    unsetenv("SWAX_RMSNORM_BWD");
    float *o_dinp = dget(d_dinp), *o_dw = dget(d_dw);
    CHECKF(same_bits(g_dinp, o_dinp, sizeof(float) * nd) && same_bits(g_dw, o_dw, sizeof(float) * D),
           "rmsnorm_bwd: SWAX_RMSNORM_BWD=old gives other bits N=%d D=%d off=%d", N, D, off);
    free(x), free(w), free(g), free(out), free(rstd), free(dinp0), free(dw0), free(dinp), free(dw);
    free(g_dinp), free(g_dw), free(a_dinp), free(a_dw), free(o_dinp), free(o_dw);
    dfree(d_x), dfree(d_w), dfree(d_g), dfree(d_rstd), dfree(d_dinp), dfree(d_dw);
}

TEST(cuda_rmsnorm_bwd) {
    swax_rng_seed(&rng, 104, 0);
    const int cases[][3] = {{1, 8, 0},      {7, 130, 0},     {1000, 24, 0}, {4099, 1024, 0},
                            {65, 4096, 0},  {1000, 1024, 1}, {4099, 130, 0}, {128, 8, 0},
                            {131, 2048, 0}, {64, 256, 0},    {1, 128, 0},   {200, 512, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        rmsnorm_bwd_case(cases[i][0], cases[i][1], cases[i][2]);
}

/* ------------------------------------------------------------------ add, scale */

static void add_case(size_t n, int offy, int offx) {
    float *y0 = urand(n, -1, 1), *x = urand(n, -1, 1), *y = host_copy(y0, n);
    C->add(y, x, n);
    DBuf d_y = dbuf(y0, n, offy), d_x = dbuf(x, n, offx);
    G->add(d_y.p, d_x.p, n);
    float *got = dget(d_y);
    CHECK_REL(got, y, n, 0.0, "add n=%zu offy=%d offx=%d", n, offy, offx);
    free(y0), free(x), free(y), free(got);
    dfree(d_y), dfree(d_x);
}

TEST(cuda_add) {
    swax_rng_seed(&rng, 105, 0);
    const size_t ns[] = {1, 3, 7, 1000, 4099, (1u << 20) + 3};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) add_case(ns[i], 0, 0);
    add_case(4099, 1, 1);
    add_case(4099, 0, 1);
    add_case(7, 2, 0);
}

static void scale_case(size_t n, int off, float s) {
    float *x0 = urand(n, -3, 3), *x = host_copy(x0, n);
    C->scale(x, n, s);
    DBuf d_x = dbuf(x0, n, off);
    G->scale(d_x.p, n, s);
    float *got = dget(d_x);
    CHECK_REL(got, x, n, 0.0, "scale n=%zu off=%d", n, off);
    free(x0), free(x), free(got);
    dfree(d_x);
}

TEST(cuda_scale) {
    swax_rng_seed(&rng, 106, 0);
    const size_t ns[] = {1, 7, 1000, 4099, (1u << 20) + 3};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) scale_case(ns[i], 0, -0.37f);
    scale_case(4099, 1, 1.0f / 3.0f);
    scale_case(5, 3, 0.0f);
}

/* ------------------------------------------------------------------ SwiGLU */

static void swiglu_case(int N, int F, int off) {
    const size_t nf = (size_t)N * F;
    float *gu = urand(2 * nf, -6, 6), *dh = urand(nf, -1, 1), *h = nanbuf(nf), *dgu = nanbuf(2 * nf);
    C->swiglu_fwd(h, gu, N, F);
    C->swiglu_bwd(dgu, dh, gu, N, F);
    DBuf d_gu = dbuf(gu, 2 * nf, off), d_dh = dbuf(dh, nf, off), d_h = dbuf(NULL, nf, off),
         d_dgu = dbuf(NULL, 2 * nf, off);
    G->swiglu_fwd(d_h.p, d_gu.p, N, F);
    G->swiglu_bwd(d_dgu.p, d_dh.p, d_gu.p, N, F);
    float *g_h = dget(d_h), *g_dgu = dget(d_dgu);
    CHECK_REL(g_h, h, nf, 1e-5, "swiglu_fwd N=%d F=%d off=%d", N, F, off);
    CHECK_REL(g_dgu, dgu, 2 * nf, 1e-5, "swiglu_bwd N=%d F=%d off=%d", N, F, off);
    free(gu), free(dh), free(h), free(dgu), free(g_h), free(g_dgu);
    dfree(d_gu), dfree(d_dh), dfree(d_h), dfree(d_dgu);
}

TEST(cuda_swiglu) {
    swax_rng_seed(&rng, 107, 0);
    /* 66000 rows: more than one pass of the 65535-row grid */
    const int cases[][3] = {{1, 11, 0},    {7, 704, 0},  {1000, 11, 0}, {1000, 704, 0},
                            {257, 2752, 0}, {7, 2752, 1}, {66000, 4, 0}, {4099, 12, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) swiglu_case(cases[i][0], cases[i][1], cases[i][2]);
}

/* ------------------------------------------------------------------ mLSTM gates */

/* The model's layout: proj (N, P = 3D + 2NH), gate pre-activations at 3D. */
static void gates_case(int N, int NH, int D, float cap) {
    const long P = 3L * D + 2L * NH;
    const size_t np = (size_t)N * P, nh = (size_t)N * NH;
    float *mix = urand(np, -8, 8), *bias = urand(2 * (size_t)NH, -1, 1);
    float *ig = nanbuf(nh), *lf = nanbuf(nh);
    C->mlstm_gates_fwd(ig, lf, mix + 3 * D, P, bias, N, NH, cap);
    DBuf d_mix = dbuf(mix, np, 0), d_bias = dbuf(bias, 2 * (size_t)NH, 0), d_ig = dbuf(NULL, nh, 0),
         d_lf = dbuf(NULL, nh, 0);
    G->mlstm_gates_fwd(d_ig.p, d_lf.p, d_mix.p + 3 * D, P, d_bias.p, N, NH, cap);
    float *g_ig = dget(d_ig), *g_lf = dget(d_lf);
    CHECK_REL(g_ig, ig, nh, 1e-5, "gates_fwd ig N=%d NH=%d D=%d cap=%g", N, NH, D, cap);
    CHECK_REL(g_lf, lf, nh, 1e-5, "gates_fwd lf N=%d NH=%d D=%d cap=%g", N, NH, D, cap);

    float *dig = urand(nh, -1, 1), *dlf = urand(nh, -1, 1), *dbig = nanbuf(np);
    float *dbias0 = urand(2 * (size_t)NH, -1, 1), *dbias = host_copy(dbias0, 2 * (size_t)NH);
    C->mlstm_gates_bwd(dbig + 3 * D, P, dbias, dig, dlf, mix + 3 * D, P, bias, N, NH, cap);
    DBuf d_dig = dbuf(dig, nh, 0), d_dlf = dbuf(dlf, nh, 0), d_dbig = dbuf(NULL, np, 0),
         d_dbias = dbuf(dbias0, 2 * (size_t)NH, 0);
    G->mlstm_gates_bwd(d_dbig.p + 3 * D, P, d_dbias.p, d_dig.p, d_dlf.p, d_mix.p + 3 * D, P, d_bias.p, N, NH, cap);
    float *g_dbig = dget(d_dbig), *g_dbias = dget(d_dbias);
    /* the whole (N, P) buffer: the other columns must stay NaN */
    CHECK_REL(g_dbig, dbig, np, 1e-5, "gates_bwd dpre N=%d NH=%d D=%d cap=%g", N, NH, D, cap);
    CHECK_REL(g_dbias, dbias, 2 * (size_t)NH, 1e-5, "gates_bwd dbias N=%d NH=%d D=%d cap=%g", N, NH, D, cap);
    dset(d_dbig, NULL), dset(d_dbias, dbias0);
    G->mlstm_gates_bwd(d_dbig.p + 3 * D, P, d_dbias.p, d_dig.p, d_dlf.p, d_mix.p + 3 * D, P, d_bias.p, N, NH, cap);
    float *a_dbig = dget(d_dbig), *a_dbias = dget(d_dbias);
    CHECKF(same_bits(g_dbig, a_dbig, sizeof(float) * np) && same_bits(g_dbias, a_dbias, sizeof(float) * 2 * NH),
           "gates_bwd not deterministic N=%d NH=%d", N, NH);
    free(mix), free(bias), free(ig), free(lf), free(g_ig), free(g_lf), free(dig), free(dlf), free(dbig);
    free(dbias0), free(dbias), free(g_dbig), free(g_dbias), free(a_dbig), free(a_dbias);
    dfree(d_mix), dfree(d_bias), dfree(d_ig), dfree(d_lf), dfree(d_dig), dfree(d_dlf), dfree(d_dbig), dfree(d_dbias);
}

TEST(cuda_mlstm_gates) {
    swax_rng_seed(&rng, 108, 0);
    gates_case(1, 1, 8, 5.0f);
    gates_case(7, 2, 128, 5.0f); /* ldp = 388 */
    gates_case(1000, 3, 130, 15.0f);
    gates_case(4099, 8, 1024, 5.0f);
    gates_case(1000, 4, 64, 5.0f);
    gates_case(65, 5, 40, 3.0f);
}

/* ------------------------------------------------------------------ mLSTM output norm */

static void mlstm_out_case(int N, int NH, int dv) {
    const int D = NH * dv;
    const long P = 3L * D + 2L * NH;
    const size_t np = (size_t)N * P, nd = (size_t)N * D, nh = (size_t)N * NH;
    const float eps = 1e-5f;
    float *mix = urand(np, -4, 4), *h = urand(nd, -1, 3), *w = urand((size_t)D, 0.5f, 1.5f);
    float *y = nanbuf(nd), *hn = nanbuf(nd), *mean = nanbuf(nh), *rstd = nanbuf(nh);
    C->mlstm_out_fwd(y, hn, mean, rstd, h, mix + 2 * D, P, w, N, NH, dv, eps);
    DBuf d_mix = dbuf(mix, np, 0), d_h = dbuf(h, nd, 0), d_w = dbuf(w, (size_t)D, 0), d_y = dbuf(NULL, nd, 0),
         d_hn = dbuf(NULL, nd, 0), d_mean = dbuf(NULL, nh, 0), d_rstd = dbuf(NULL, nh, 0);
    G->mlstm_out_fwd(d_y.p, d_hn.p, d_mean.p, d_rstd.p, d_h.p, d_mix.p + 2 * D, P, d_w.p, N, NH, dv, eps);
    float *g_y = dget(d_y), *g_hn = dget(d_hn), *g_mean = dget(d_mean), *g_rstd = dget(d_rstd);
    CHECK_REL(g_y, y, nd, 1e-5, "out_fwd y N=%d NH=%d dv=%d", N, NH, dv);
    CHECK_REL(g_hn, hn, nd, 1e-5, "out_fwd hn N=%d NH=%d dv=%d", N, NH, dv);
    CHECK_REL(g_mean, mean, nh, 1e-5, "out_fwd mean N=%d NH=%d dv=%d", N, NH, dv);
    CHECK_REL(g_rstd, rstd, nh, 1e-5, "out_fwd rstd N=%d NH=%d dv=%d", N, NH, dv);
    dset(d_y, NULL), dset(d_hn, NULL), dset(d_mean, NULL), dset(d_rstd, NULL);
    G->mlstm_out_fwd(d_y.p, d_hn.p, d_mean.p, d_rstd.p, d_h.p, d_mix.p + 2 * D, P, d_w.p, N, NH, dv, eps);
    float *a_y = dget(d_y), *a_rstd = dget(d_rstd);
    CHECKF(same_bits(g_y, a_y, sizeof(float) * nd) && same_bits(g_rstd, a_rstd, sizeof(float) * nh),
           "out_fwd not deterministic N=%d NH=%d dv=%d", N, NH, dv);

    /* backward from the CPU's saved hn, mean, rstd (the same inputs to both) */
    float *dy = urand(nd, -1, 1), *dh = nanbuf(nd), *dbig = nanbuf(np);
    float *dw0 = urand((size_t)D, -1, 1), *dw = host_copy(dw0, (size_t)D);
    C->mlstm_out_bwd(dh, dbig + 2 * D, P, dw, dy, hn, h, mean, rstd, mix + 2 * D, P, w, N, NH, dv);
    DBuf d_dy = dbuf(dy, nd, 0), d_shn = dbuf(hn, nd, 0), d_smean = dbuf(mean, nh, 0), d_srstd = dbuf(rstd, nh, 0),
         d_dh = dbuf(NULL, nd, 0), d_dbig = dbuf(NULL, np, 0), d_dw = dbuf(dw0, (size_t)D, 0);
    G->mlstm_out_bwd(d_dh.p, d_dbig.p + 2 * D, P, d_dw.p, d_dy.p, d_shn.p, d_h.p, d_smean.p, d_srstd.p,
                     d_mix.p + 2 * D, P, d_w.p, N, NH, dv);
    float *g_dh = dget(d_dh), *g_dbig = dget(d_dbig), *g_dw = dget(d_dw);
    CHECK_REL(g_dh, dh, nd, 1e-5, "out_bwd dh N=%d NH=%d dv=%d", N, NH, dv);
    CHECK_REL(g_dbig, dbig, np, 1e-5, "out_bwd dog N=%d NH=%d dv=%d", N, NH, dv);
    CHECK_REL(g_dw, dw, (size_t)D, 1e-5, "out_bwd dw N=%d NH=%d dv=%d", N, NH, dv);
    dset(d_dh, NULL), dset(d_dbig, NULL), dset(d_dw, dw0);
    G->mlstm_out_bwd(d_dh.p, d_dbig.p + 2 * D, P, d_dw.p, d_dy.p, d_shn.p, d_h.p, d_smean.p, d_srstd.p,
                     d_mix.p + 2 * D, P, d_w.p, N, NH, dv);
    float *a_dh = dget(d_dh), *a_dbig = dget(d_dbig), *a_dw = dget(d_dw);
    CHECKF(same_bits(g_dh, a_dh, sizeof(float) * nd) && same_bits(g_dbig, a_dbig, sizeof(float) * np) &&
               same_bits(g_dw, a_dw, sizeof(float) * D),
           "out_bwd not deterministic N=%d NH=%d dv=%d", N, NH, dv);

    free(mix), free(h), free(w), free(y), free(hn), free(mean), free(rstd);
    free(g_y), free(g_hn), free(g_mean), free(g_rstd), free(a_y), free(a_rstd);
    free(dy), free(dh), free(dbig), free(dw0), free(dw), free(g_dh), free(g_dbig), free(g_dw);
    free(a_dh), free(a_dbig), free(a_dw);
    dfree(d_mix), dfree(d_h), dfree(d_w), dfree(d_y), dfree(d_hn), dfree(d_mean), dfree(d_rstd);
    dfree(d_dy), dfree(d_shn), dfree(d_smean), dfree(d_srstd), dfree(d_dh), dfree(d_dbig), dfree(d_dw);
}

TEST(cuda_mlstm_out) {
    swax_rng_seed(&rng, 109, 0);
    const int cases[][3] = {
        {1, 1, 8},      {7, 3, 24},    {1000, 4, 64},
        {1000, 3, 128}, /* og stride 3D + 6: not 16-byte aligned */
        {257, 8, 130},  /* dv not a multiple of 4 */
        {100, 1, 512},  {4099, 2, 256}, {64, 8, 512}, {130, 5, 12}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        mlstm_out_case(cases[i][0], cases[i][1], cases[i][2]);
}

/* ------------------------------------------------------------------ cross-entropy */

/* Raw logits and targets (about one in five ignored, -1; row 0 counted, row 1
 * ignored when it exists). */
static float *xent_logits(int N, int V, float cap) {
    const float a = cap > 0 ? 2.0f * cap : 20.0f;
    return urand((size_t)N * V, -a, a);
}
static int32_t *xent_targets(int N, int Vused) {
    int32_t *t = irand((size_t)N, 0, Vused);
    for (int r = 0; r < N; r++)
        if (swax_rng_u64(&rng) % 5 == 0) t[r] = -1;
    t[0] = Vused - 1;
    if (N > 1) t[1] = -1;
    return t;
}

/* mode 0: targets, lse, losses; 1: no targets (losses all 0); 2: nothing but
 * the logits (inference); 3: targets and lse, losses NULL on the GPU. */
static void xent_fwd_case(int N, int V, int Vused, float cap, int mode) {
    const size_t nv = (size_t)N * V;
    float *raw = xent_logits(N, V, cap), *z = host_copy(raw, nv);
    int32_t *t = xent_targets(N, Vused);
    float *lse = nanbuf((size_t)N), *losses = nanbuf((size_t)N);
    C->xent_fwd(z, mode == 2 ? NULL : lse, mode == 2 ? NULL : losses, mode == 1 || mode == 2 ? NULL : t, N, V, Vused,
                cap);
    int32_t *d_t = dev_from(t, sizeof(int32_t) * N);
    DBuf d_z = dbuf(raw, nv, 0), d_lse = dbuf(NULL, (size_t)N, 0), d_losses = dbuf(NULL, (size_t)N, 0);
    const int with_lse = mode != 2, with_losses = mode == 0 || mode == 1, with_t = mode == 0 || mode == 3;
    G->xent_fwd(d_z.p, with_lse ? d_lse.p : NULL, with_losses ? d_losses.p : NULL, with_t ? d_t : NULL, N, V, Vused,
                cap);
    float *g_z = dget(d_z), *g_lse = dget(d_lse), *g_losses = dget(d_losses);
    CHECK_REL(g_z, z, nv, 1e-5, "xent_fwd logits N=%d V=%d Vu=%d cap=%g mode=%d", N, V, Vused, cap, mode);
    if (with_lse) CHECK_REL(g_lse, lse, (size_t)N, 1e-6, "xent_fwd lse N=%d V=%d cap=%g mode=%d", N, V, cap, mode);
    if (with_losses)
        CHECK_REL(g_losses, losses, (size_t)N, 1e-6, "xent_fwd losses N=%d V=%d cap=%g mode=%d", N, V, cap, mode);
    float *untouched = nanbuf((size_t)N);
    if (!with_losses) CHECKF(same_bits(g_losses, untouched, sizeof(float) * N), "xent_fwd wrote losses (mode %d)", mode);
    if (!with_lse) CHECKF(same_bits(g_lse, untouched, sizeof(float) * N), "xent_fwd wrote lse (mode %d)", mode);
    free(untouched);
    dset(d_z, raw), dset(d_lse, NULL), dset(d_losses, NULL);
    G->xent_fwd(d_z.p, with_lse ? d_lse.p : NULL, with_losses ? d_losses.p : NULL, with_t ? d_t : NULL, N, V, Vused,
                cap);
    float *a_z = dget(d_z), *a_lse = dget(d_lse), *a_losses = dget(d_losses);
    CHECKF(same_bits(g_z, a_z, sizeof(float) * nv) && same_bits(g_lse, a_lse, sizeof(float) * N) &&
               same_bits(g_losses, a_losses, sizeof(float) * N),
           "xent_fwd not deterministic N=%d V=%d", N, V);
    free(raw), free(z), free(t), free(lse), free(losses), free(g_z), free(g_lse), free(g_losses);
    free(a_z), free(a_lse), free(a_losses);
    G->free(d_t), dfree(d_z), dfree(d_lse), dfree(d_losses);
}

TEST(cuda_xent_fwd) {
    swax_rng_seed(&rng, 110, 0);
    xent_fwd_case(1, 29, 25, 30.0f, 0);
    xent_fwd_case(7, 29, 25, 30.0f, 0);
    xent_fwd_case(7, 29, 25, 0.0f, 0);
    xent_fwd_case(1000, 29, 25, 30.0f, 0);
    xent_fwd_case(4, 29, 29, 30.0f, 0);    /* no padding */
    xent_fwd_case(7, 1000, 997, 30.0f, 0); /* float4 rows, Vused % 4 != 0 */
    xent_fwd_case(3, 50304, 50257, 30.0f, 0);
    xent_fwd_case(3, 50304, 50257, 0.0f, 0);
    xent_fwd_case(5, 29, 25, 30.0f, 1);
    xent_fwd_case(5, 50304, 50257, 30.0f, 2);
    xent_fwd_case(6, 1000, 997, 0.0f, 3);
}

static void xent_bwd_case(int N, int V, int Vused, float cap, int off) {
    const size_t nv = (size_t)N * V;
    const float scale = 1.0f / 37.0f;
    float *z0 = xent_logits(N, V, cap), *lse = nanbuf((size_t)N), *losses = nanbuf((size_t)N);
    int32_t *t = xent_targets(N, Vused);
    C->xent_fwd(z0, lse, losses, t, N, V, Vused, cap); /* z0: capped logits, the backward's input */
    float *dz = host_copy(z0, nv);
    C->xent_bwd(dz, lse, t, N, V, Vused, cap, scale);
    int32_t *d_t = dev_from(t, sizeof(int32_t) * N);
    DBuf d_z = dbuf(z0, nv, off), d_lse = dbuf(lse, (size_t)N, 0);
    G->xent_bwd(d_z.p, d_lse.p, d_t, N, V, Vused, cap, scale);
    float *got = dget(d_z);
    CHECK_REL(got, dz, nv, 1e-5, "xent_bwd N=%d V=%d Vu=%d cap=%g off=%d", N, V, Vused, cap, off);
    free(z0), free(lse), free(losses), free(t), free(dz), free(got);
    G->free(d_t), dfree(d_z), dfree(d_lse);
}

TEST(cuda_xent_bwd) {
    swax_rng_seed(&rng, 111, 0);
    xent_bwd_case(1, 29, 25, 30.0f, 0);
    xent_bwd_case(7, 29, 25, 30.0f, 0);
    xent_bwd_case(7, 29, 25, 0.0f, 0);
    xent_bwd_case(1000, 29, 25, 30.0f, 0);
    xent_bwd_case(7, 1000, 997, 30.0f, 0);
    xent_bwd_case(7, 1000, 997, 30.0f, 1);
    xent_bwd_case(3, 50304, 50257, 30.0f, 0);
    xent_bwd_case(3, 50304, 50257, 0.0f, 0);
}

/* The fused head slot (xent_train) against xent_fwd then xent_bwd on the same
 * table: the same lse and losses bits and, through the head's backward product
 * (the bf16 table keeps the d logits only in the copy that product takes), the
 * same d input and d weight bits; on the fp32 table the d logits themselves. */
static void xent_train_case(const SwaxOps *t, int N, int V, int Vused, float cap, int D) {
    const size_t nv = (size_t)N * V;
    const float scale = 1.0f / 37.0f;
    float *raw = xent_logits(N, V, cap), *x = urand((size_t)N * D, -1, 1), *w = urand((size_t)V * D, -0.1f, 0.1f);
    int32_t *tg = xent_targets(N, Vused), *d_t = dev_from(tg, sizeof(int32_t) * N);
    DBuf d_x = dbuf(x, (size_t)N * D, 0), d_w = dbuf(w, (size_t)V * D, 0);
    float *res[2][5] = {{0}}; /* run: lse, losses, dinp, dw, logits afterwards */
    for (int run = 0; run < 2; run++) {
        DBuf d_z = dbuf(raw, nv, 0), d_lse = dbuf(NULL, (size_t)N, 0), d_losses = dbuf(NULL, (size_t)N, 0);
        DBuf d_di = dbuf(NULL, (size_t)N * D, 0), d_dw = dbuf(NULL, (size_t)V * D, 0);
        t->zero(d_dw.p, sizeof(float) * (size_t)V * D);
        if (run == 0) {
            t->xent_fwd(d_z.p, d_lse.p, d_losses.p, d_t, N, V, Vused, cap);
            t->xent_bwd(d_z.p, d_lse.p, d_t, N, V, Vused, cap, scale);
        } else {
            t->xent_train(d_z.p, d_lse.p, d_losses.p, d_t, N, V, Vused, cap, scale);
        }
        t->matmul_bwd(d_di.p, D, d_dw.p, d_z.p, V, d_x.p, D, d_w.p, N, D, V, 0);
        res[run][0] = dget(d_lse), res[run][1] = dget(d_losses), res[run][2] = dget(d_di), res[run][3] = dget(d_dw);
        res[run][4] = dget(d_z);
        dfree(d_z), dfree(d_lse), dfree(d_losses), dfree(d_di), dfree(d_dw);
    }
    const size_t n[5] = {(size_t)N, (size_t)N, (size_t)N * D, (size_t)V * D, nv};
    const char *name[5] = {"lse", "losses", "dinp", "dw", "d logits"};
    const int nk = t->is_device && !strcmp(t->name, "cuda") ? 4 : 5; /* the bf16 table: logits undefined after */
    for (int k = 0; k < nk; k++)
        CHECKF(same_bits(res[0][k], res[1][k], sizeof(float) * n[k]),
               "%s: xent_train vs xent_fwd + xent_bwd: %s differs (N %d V %d Vused %d cap %g)", t->name, name[k], N, V,
               Vused, cap);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 5; k++) free(res[r][k]);
    free(raw), free(x), free(w), free(tg);
    G->free(d_t), dfree(d_x), dfree(d_w);
}

TEST(cuda_xent_train_equals_fwd_then_bwd) {
    const SwaxOps *B16 = swax_ops_cuda_bf16();
    SWAX_ASSERT(B16 && G->xent_train && B16->xent_train);
    swax_rng_seed(&rng, 113, 0);
    for (int k = 0; k < 6; k++) { /* fp32, bf16 table; then both with the row re-read, then with the raw row shared */
        const SwaxOps *t = k % 2 ? B16 : G;
        if (k == 2) setenv("SWAX_XENT_ROW", "0", 1);
        if (k == 4) setenv("SWAX_XENT_ROW", "raw", 1);
        xent_train_case(t, 1, 29, 25, 30.0f, 8);
        xent_train_case(t, 7, 29, 25, 0.0f, 8);   /* scalar rows (V odd) */
        xent_train_case(t, 9, 1000, 997, 30.0f, 16); /* float4 rows, Vused % 4 != 0 */
        xent_train_case(t, 3, 50304, 50257, 30.0f, 64);
        xent_train_case(t, 2, 50304, 50257, 0.0f, 32);
        xent_train_case(t, 2, 60000, 59999, 30.0f, 8); /* too wide for the fp32 row (re-read; raw bf16 fits) */
        xent_train_case(t, 2, 50257, 50257, 30.0f, 8); /* wide and odd: the scalar loop, two loads in flight */
    }
    unsetenv("SWAX_XENT_ROW");
}

/* ------------------------------------------------------------------ AdamW */

static void adamw_case(size_t n, int step, int off) {
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
    float *p0 = urand(n, -1, 1), *g = urand(n, -1, 1), *m0 = urand(n, -0.1f, 0.1f), *v0 = urand(n, 0, 0.01f);
    float *p = host_copy(p0, n), *m = host_copy(m0, n), *v = host_copy(v0, n);
    C->adamw(p, g, m, v, n, lr, b1, b2, eps, wd, step);
    DBuf d_p = dbuf(p0, n, off), d_g = dbuf(g, n, off), d_m = dbuf(m0, n, off), d_v = dbuf(v0, n, off);
    G->adamw(d_p.p, d_g.p, d_m.p, d_v.p, n, lr, b1, b2, eps, wd, step);
    float *g_p = dget(d_p), *g_m = dget(d_m), *g_v = dget(d_v);
    CHECK_REL(g_p, p, n, 1e-6, "adamw p n=%zu step=%d off=%d", n, step, off);
    CHECK_REL(g_m, m, n, 1e-6, "adamw m n=%zu step=%d off=%d", n, step, off);
    CHECK_REL(g_v, v, n, 1e-6, "adamw v n=%zu step=%d off=%d", n, step, off);
    free(p0), free(g), free(m0), free(v0), free(p), free(m), free(v), free(g_p), free(g_m), free(g_v);
    dfree(d_p), dfree(d_g), dfree(d_m), dfree(d_v);
}

TEST(cuda_adamw) {
    swax_rng_seed(&rng, 112, 0);
    adamw_case(1, 1, 0);
    adamw_case(7, 10, 0);
    adamw_case(1000, 1, 0);
    adamw_case(4099, 1000, 0);
    adamw_case((1u << 20) + 3, 3, 0);
    adamw_case(4099, 7, 1);
}

/* ------------------------------------------------------------------ sumsq */

static void sumsq_case(size_t n, int off) {
    float *x = urand(n, -2, 2);
    long double ref = 0;
    for (size_t i = 0; i < n; i++) ref += (long double)x[i] * x[i];
    const double c = C->sumsq(x, n);
    DBuf d_x = dbuf(x, n, off);
    const double g = G->sumsq(d_x.p, n), again = G->sumsq(d_x.p, n);
    const double tol = 1e-12 * (double)ref;
    CHECKF(fabs(g - (double)ref) <= tol, "sumsq n=%zu off=%d: %.17g vs %.17Lg", n, off, g, ref);
    CHECKF(fabs(g - c) <= tol, "sumsq n=%zu off=%d: %.17g vs CPU %.17g", n, off, g, c);
    CHECKF(same_bits(&g, &again, sizeof g), "sumsq not deterministic n=%zu", n);
    free(x);
    dfree(d_x);
}

TEST(cuda_sumsq) {
    swax_rng_seed(&rng, 113, 0);
    const size_t ns[] = {0, 1, 7, 1000, 4099, 65536, 65537, 3 * (1u << 20) + 5};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) sumsq_case(ns[i], 0);
    sumsq_case(65537, 1);
    sumsq_case(3 * (1u << 20) + 5, 3);
}

/* ---------------------------------------------------------- bf16 products */

/* The "cuda" table's matrix products round both operands to bf16 (on the way
 * in: strided activations, weights that are not parameters) and accumulate in
 * fp32: they must equal the CPU's fp32 product of the same operands rounded
 * on the host, up to the order of the fp32 sums. Strided and offset inputs
 * (ld > C, pointers one float off) reach the scalar conversion; dense,
 * aligned ones with C % 4 == 0 the vectorised one. A backward reuses the
 * forward's bf16 copy of the input only while the input is unchanged. */
static void bf16_matmul_case(const SwaxOps *B16, int N, int Cc, int OC, long ldi, int off) {
    float *inp = urand((size_t)N * ldi, -2, 2), *w = urand((size_t)OC * Cc, -1, 1);
    float *dout = urand((size_t)N * OC, -1, 1), *dw0 = urand((size_t)OC * Cc, -1, 1);
    float *ri = bf16_rounded(inp, ldi, N, Cc), *rw = bf16_rounded(w, Cc, OC, Cc), *rg = bf16_rounded(dout, OC, N, OC);
    float *out = nanbuf((size_t)N * OC), *dinp = nanbuf((size_t)N * Cc), *dw = host_copy(dw0, (size_t)OC * Cc);
    C->matmul_fwd(out, OC, ri, Cc, rw, N, Cc, OC);
    C->matmul_bwd(dinp, Cc, dw, rg, OC, ri, Cc, rw, N, Cc, OC, 0);
    DBuf d_inp = dbuf(inp, (size_t)N * ldi, off), d_w = dbuf(w, (size_t)OC * Cc, off);
    DBuf d_dout = dbuf(dout, (size_t)N * OC, off), d_out = dbuf(NULL, (size_t)N * OC, off);
    DBuf d_dinp = dbuf(NULL, (size_t)N * Cc, off), d_dw = dbuf(dw0, (size_t)OC * Cc, off);
    B16->matmul_fwd(d_out.p, OC, d_inp.p, ldi, d_w.p, N, Cc, OC);
    B16->matmul_bwd(d_dinp.p, Cc, d_dw.p, d_dout.p, OC, d_inp.p, ldi, d_w.p, N, Cc, OC, 0);
    float *g_out = dget(d_out), *g_dinp = dget(d_dinp), *g_dw = dget(d_dw);
    CHECK_REL(g_out, out, (size_t)N * OC, 1e-5, "bf16 matmul_fwd N=%d C=%d OC=%d ldi=%ld off=%d", N, Cc, OC, ldi, off);
    CHECK_REL(g_dinp, dinp, (size_t)N * Cc, 1e-5, "bf16 matmul_bwd dinp N=%d C=%d OC=%d", N, Cc, OC);
    CHECK_REL(g_dw, dw, (size_t)OC * Cc, 1e-5, "bf16 matmul_bwd dw N=%d C=%d OC=%d", N, Cc, OC);
    /* the input replaced (to_device) between forward and backward: the backward
     * must round the new values, not reuse the forward's kept copy */
    float *inp2 = urand((size_t)N * ldi, -2, 2), *ri2 = bf16_rounded(inp2, ldi, N, Cc);
    memcpy(dw, dw0, sizeof(float) * (size_t)OC * Cc);
    C->matmul_bwd(NULL, Cc, dw, rg, OC, ri2, Cc, rw, N, Cc, OC, 0);
    dset(d_inp, inp2);
    dset(d_dw, dw0);
    B16->matmul_bwd(NULL, Cc, d_dw.p, d_dout.p, OC, d_inp.p, ldi, d_w.p, N, Cc, OC, 0);
    free(g_dw);
    g_dw = dget(d_dw);
    CHECK_REL(g_dw, dw, (size_t)OC * Cc, 1e-5, "bf16 matmul_bwd dw after a new input N=%d C=%d OC=%d", N, Cc, OC);
    free(inp2), free(ri2);
    free(inp), free(w), free(dout), free(dw0), free(ri), free(rw), free(rg), free(out), free(dinp), free(dw);
    free(g_out), free(g_dinp), free(g_dw);
    dfree(d_inp), dfree(d_w), dfree(d_dout), dfree(d_out), dfree(d_dinp), dfree(d_dw);
}

/* matmul_fwd_add (the residual in the product's epilogue) against matmul_fwd
 * then add on the same table: the same bits, and the residual left alone. */
static void fwd_add_case(const SwaxOps *t, int N, int Cc, int OC, long ldi, int off) {
    float *inp = urand((size_t)N * ldi, -2, 2), *w = urand((size_t)OC * Cc, -1, 1), *r = urand((size_t)N * OC, -3, 3);
    DBuf d_inp = dbuf(inp, (size_t)N * ldi, off), d_w = dbuf(w, (size_t)OC * Cc, off), d_r = dbuf(r, (size_t)N * OC, off);
    DBuf d_a = dbuf(NULL, (size_t)N * OC, off), d_b = dbuf(NULL, (size_t)N * OC, off);
    t->matmul_fwd(d_a.p, OC, d_inp.p, ldi, d_w.p, N, Cc, OC);
    t->add(d_a.p, d_r.p, (size_t)N * OC);
    t->matmul_fwd_add(d_b.p, OC, d_inp.p, ldi, d_w.p, N, Cc, OC, d_r.p);
    float *ga = dget(d_a), *gb = dget(d_b), *gr = dget(d_r);
    CHECKF(same_bits(ga, gb, sizeof(float) * (size_t)N * OC),
           "%s matmul_fwd_add vs matmul_fwd + add differ (N %d C %d OC %d ldi %ld off %d)", t->name, N, Cc, OC, ldi, off);
    CHECKF(same_bits(gr, r, sizeof(float) * (size_t)N * OC), "%s matmul_fwd_add changed the residual", t->name);
    free(inp), free(w), free(r), free(ga), free(gb), free(gr);
    dfree(d_inp), dfree(d_w), dfree(d_r), dfree(d_a), dfree(d_b);
}

TEST(cuda_matmul_fwd_add_equals_product_then_add) {
    const SwaxOps *B16 = swax_ops_cuda_bf16();
    SWAX_ASSERT(B16 && G->matmul_fwd_add && B16->matmul_fwd_add);
    swax_rng_seed(&rng, 128, 0);
    for (int k = 0; k < 2; k++) {
        const SwaxOps *t = k ? B16 : G;
        fwd_add_case(t, 1, 7, 3, 7, 0);
        fwd_add_case(t, 37, 13, 5, 13, 1);    /* misaligned */
        fwd_add_case(t, 64, 128, 96, 130, 0); /* strided input */
        fwd_add_case(t, 300, 256, 72, 256, 0);
        fwd_add_case(t, 2048, 512, 256, 512, 0); /* big enough for a split-K plan */
    }
}

TEST(cuda_bf16_matmul_rounds_operands_like_the_cpu) {
    const SwaxOps *B16 = swax_ops_cuda_bf16();
    SWAX_ASSERT(B16);
    swax_rng_seed(&rng, 127, 0);
    bf16_matmul_case(B16, 1, 7, 3, 7, 0);
    bf16_matmul_case(B16, 37, 13, 5, 13, 1);
    bf16_matmul_case(B16, 64, 128, 96, 130, 0);  /* strided rows */
    bf16_matmul_case(B16, 65, 96, 40, 101, 1);   /* strided, odd stride, misaligned */
    bf16_matmul_case(B16, 300, 256, 72, 256, 0); /* dense, vectorised */
    bf16_matmul_case(B16, 129, 64, 3 * 64 + 8, 64, 1);
}

/* The "cuda" table's backward kernels whose output the next product's backward
 * reads (cross-entropy: d logits; SwiGLU: d(gate, up)) also write it rounded to
 * bf16, and that product uses their copy instead of rounding again: the same
 * bits as rounding afresh (forced by a write in between, which forgets the
 * copy), and the same fp32 outputs as the plain CUDA slots. */
static void side_copy_case(const SwaxOps *B16, int which, int N, int F, int C2) {
    /* which 0: SwiGLU, dout = d(gate, up) (N, 2F); 1: cross-entropy, dout = d logits (N, V = 2F) */
    const int OC = 2 * F;
    float *gu = urand((size_t)N * OC, -3, 3), *dh = urand((size_t)N * F, -1, 1), *inp = urand((size_t)N * C2, -1, 1);
    float *w = urand((size_t)OC * C2, -0.5f, 0.5f);
    int32_t *tg = malloc(sizeof(int32_t) * (size_t)N);
    for (int i = 0; i < N; i++) tg[i] = i % 5 == 0 ? -1 : (int32_t)(swax_rng_u64(&rng) % (uint64_t)(OC - 3));
    int32_t *d_tg = dev_from(tg, sizeof(int32_t) * (size_t)N);
    DBuf d_gu = dbuf(gu, (size_t)N * OC, 0), d_dh = dbuf(dh, (size_t)N * F, 0), d_inp = dbuf(inp, (size_t)N * C2, 0);
    DBuf d_w = dbuf(w, (size_t)OC * C2, 0), d_dout = dbuf(NULL, (size_t)N * OC, 0), d_lse = dbuf(NULL, (size_t)N, 0);
    DBuf d_x = dbuf(NULL, 4, 0);
    float *res[3][3] = {{0}}; /* run: dout, dinp, dw */
    for (int run = 0; run < 3; run++) {
        /* the bf16 SwiGLU backward leaves d(gate, up) only in its copy (ops.h): no write may come
         * between it and the product, so its run 1 is the plain slot's fp32 rounded afresh */
        const SwaxOps *t = run == 2 || (run == 1 && which == 0) ? G : B16;
        DBuf d_dinp = dbuf(NULL, (size_t)N * C2, 0), d_dw = dbuf(NULL, (size_t)OC * C2, 0);
        B16->zero(d_dw.p, sizeof(float) * (size_t)OC * C2);
        if (which == 0) {
            t->swiglu_bwd(d_dout.p, d_dh.p, d_gu.p, N, F);
        } else {
            G->to_device(d_dout.p, gu, sizeof(float) * (size_t)N * OC);
            G->xent_fwd(d_dout.p, d_lse.p, NULL, d_tg, N, OC, OC - 3, 30.0f);
            t->xent_bwd(d_dout.p, d_lse.p, d_tg, N, OC, OC - 3, 30.0f, 0.25f);
        }
        if (run == 1) B16->zero(d_x.p, sizeof(float) * 4); /* any write in between: the copy is forgotten */
        B16->matmul_bwd(d_dinp.p, C2, d_dw.p, d_dout.p, OC, d_inp.p, C2, d_w.p, N, C2, OC, 0);
        res[run][0] = dget(d_dout), res[run][1] = dget(d_dinp), res[run][2] = dget(d_dw);
        dfree(d_dinp), dfree(d_dw);
    }
    const size_t n[3] = {(size_t)N * OC, (size_t)N * C2, (size_t)OC * C2};
    const char *name[3] = {"dout", "dinp", "dw"};
    for (int k = which == 0; k < 3; k++) { /* the bf16 SwiGLU backward's fp32 dout is not written */
        CHECKF(!memcmp(res[0][k], res[1][k], sizeof(float) * n[k]), "%s side copy vs rounded afresh: %s differs (N %d F %d)",
               which ? "xent" : "swiglu", name[k], N, F);
        CHECKF(!memcmp(res[0][k], res[2][k], sizeof(float) * n[k]), "%s bf16 slot vs plain slot: %s differs (N %d F %d)",
               which ? "xent" : "swiglu", name[k], N, F);
    }
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 3; k++) free(res[r][k]);
    free(gu), free(dh), free(inp), free(w), free(tg);
    G->free(d_tg);
    dfree(d_gu), dfree(d_dh), dfree(d_inp), dfree(d_w), dfree(d_dout), dfree(d_lse), dfree(d_x);
}

/* The same for the RMSNorm backward: the updated dinp (the residual stream's
 * gradient) rounded to bf16 for the output projection's backward, which reads
 * it as its dout next; fp32 dinp written as always. */
static void norm_side_case(const SwaxOps *B16, int N, int D, int C2) {
    float *x = urand((size_t)N * D, -2, 2), *nw = urand((size_t)D, 0.5f, 1.5f), *dy = urand((size_t)N * D, -1, 1);
    float *d0 = urand((size_t)N * D, -1, 1), *inp = urand((size_t)N * C2, -1, 1), *w = urand((size_t)D * C2, -0.5f, 0.5f);
    float *rstd = urand((size_t)N, 0.5f, 2.0f);
    DBuf d_x = dbuf(x, (size_t)N * D, 0), d_nw = dbuf(nw, (size_t)D, 0), d_dy = dbuf(dy, (size_t)N * D, 0);
    DBuf d_inp = dbuf(inp, (size_t)N * C2, 0), d_w = dbuf(w, (size_t)D * C2, 0), d_rs = dbuf(rstd, (size_t)N, 0);
    DBuf d_z = dbuf(NULL, 4, 0);
    float *res[3][4] = {{0}}; /* run: dinp of the norm, its d w, the product's dinp, dw */
    for (int run = 0; run < 3; run++) {
        const SwaxOps *t = run == 2 ? G : B16;
        DBuf d_d = dbuf(d0, (size_t)N * D, 0), d_gw = dbuf(NULL, (size_t)D, 0);
        DBuf d_pi = dbuf(NULL, (size_t)N * C2, 0), d_pw = dbuf(NULL, (size_t)D * C2, 0);
        B16->zero(d_gw.p, sizeof(float) * (size_t)D);
        B16->zero(d_pw.p, sizeof(float) * (size_t)D * C2);
        t->rmsnorm_bwd(d_d.p, d_gw.p, d_dy.p, d_x.p, d_nw.p, d_rs.p, N, D);
        if (run == 1) B16->zero(d_z.p, sizeof(float) * 4); /* any write in between: the copy is forgotten */
        B16->matmul_bwd(d_pi.p, C2, d_pw.p, d_d.p, D, d_inp.p, C2, d_w.p, N, C2, D, 0);
        res[run][0] = dget(d_d), res[run][1] = dget(d_gw), res[run][2] = dget(d_pi), res[run][3] = dget(d_pw);
        dfree(d_d), dfree(d_gw), dfree(d_pi), dfree(d_pw);
    }
    const size_t n[4] = {(size_t)N * D, (size_t)D, (size_t)N * C2, (size_t)D * C2};
    const char *name[4] = {"norm dinp", "norm dw", "product dinp", "product dw"};
    for (int k = 0; k < 4; k++) {
        CHECKF(!memcmp(res[0][k], res[1][k], sizeof(float) * n[k]), "rmsnorm_bwd side copy vs rounded afresh: %s differs "
               "(N %d D %d)", name[k], N, D);
        CHECKF(!memcmp(res[0][k], res[2][k], sizeof(float) * n[k]), "rmsnorm_bwd bf16 slot vs plain slot: %s differs "
               "(N %d D %d)", name[k], N, D);
    }
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 4; k++) free(res[r][k]);
    free(x), free(nw), free(dy), free(d0), free(inp), free(w), free(rstd);
    dfree(d_x), dfree(d_nw), dfree(d_dy), dfree(d_inp), dfree(d_w), dfree(d_rs), dfree(d_z);
}

TEST(cuda_bf16_side_copies_equal_rounding_afresh) {
    const SwaxOps *B16 = swax_ops_cuda_bf16();
    SWAX_ASSERT(B16);
    swax_rng_seed(&rng, 131, 0);
    for (int which = 0; which < 2; which++) {
        side_copy_case(B16, which, 1, 4, 8);
        side_copy_case(B16, which, 37, 13, 24); /* F odd: the scalar kernel */
        side_copy_case(B16, which, 130, 64, 96);
    }
    norm_side_case(B16, 1, 8, 4);
    norm_side_case(B16, 37, 13, 24); /* odd width: the scalar kernel */
    norm_side_case(B16, 130, 64, 96);
}

/* In training, the "cuda" table's RMSNorm, SwiGLU and mLSTM output forwards also write their
 * output rounded to bf16 into the kept copy the next product would make, and
 * that product (and its backward) use it: the same bits as rounding afresh
 * (forced by a write in between), and the plain slots' fp32 outputs. */
static void fwd_side_case(const SwaxOps *B16, int which, int N, int K, int OC) {
    /* which 0: RMSNorm (N, K) -> product; 1: SwiGLU (N, 2K) -> h (N, K) -> product; 2: the mLSTM output
     * norm and gate, h (N, K = 2 heads x K/2) and og (stride K + 3) -> y (N, K) -> product */
    const int IW = which == 1 ? 2 * K : K, NH = 2, ldog = K + 3;
    float *og = urand((size_t)N * ldog, -3, 3);
    DBuf d_og = dbuf(og, (size_t)N * ldog, 0), d_hn = dbuf(NULL, (size_t)N * K, 0);
    DBuf d_mu = dbuf(NULL, (size_t)N * NH, 0), d_rs = dbuf(NULL, (size_t)N * NH, 0);
    float *x = urand((size_t)N * IW, -2, 2), *nw = urand((size_t)K, 0.5f, 1.5f), *w = urand((size_t)OC * K, -0.5f, 0.5f);
    float *dy = urand((size_t)N * OC, -1, 1);
    DBuf d_x = dbuf(x, (size_t)N * IW, 0), d_nw = dbuf(nw, (size_t)K, 0), d_w = dbuf(w, (size_t)OC * K, 0);
    DBuf d_dy = dbuf(dy, (size_t)N * OC, 0), d_a = dbuf(NULL, (size_t)N * K, 0), d_r = dbuf(NULL, (size_t)N, 0);
    DBuf d_z = dbuf(NULL, 4, 0);
    float *res[3][4] = {{0}}; /* run: activation, product, dinp, dw */
    for (int run = 0; run < 3; run++) {
        const SwaxOps *t = run == 2 ? G : B16;
        DBuf d_y = dbuf(NULL, (size_t)N * OC, 0), d_di = dbuf(NULL, (size_t)N * K, 0), d_dw = dbuf(NULL, (size_t)OC * K, 0);
        B16->zero(d_dw.p, sizeof(float) * (size_t)OC * K);
        if (which == 0) t->rmsnorm_fwd(d_a.p, d_r.p, d_x.p, d_nw.p, N, K, 1e-6f);
        else if (which == 1) t->swiglu_fwd(d_a.p, d_x.p, N, K);
        else t->mlstm_out_fwd(d_a.p, d_hn.p, d_mu.p, d_rs.p, d_x.p, d_og.p, ldog, d_nw.p, N, NH, K / NH, 1e-5f);
        if (run == 1) B16->zero(d_z.p, sizeof(float) * 4); /* any write in between: the copy is not taken */
        B16->matmul_fwd(d_y.p, OC, d_a.p, K, d_w.p, N, K, OC);
        B16->matmul_bwd(d_di.p, K, d_dw.p, d_dy.p, OC, d_a.p, K, d_w.p, N, K, OC, 0);
        res[run][0] = dget(d_a), res[run][1] = dget(d_y), res[run][2] = dget(d_di), res[run][3] = dget(d_dw);
        dfree(d_y), dfree(d_di), dfree(d_dw);
    }
    const size_t n[4] = {(size_t)N * K, (size_t)N * OC, (size_t)N * K, (size_t)OC * K};
    const char *name[4] = {"activation", "product", "dinp", "dw"};
    static const char *const what[3] = {"rmsnorm", "swiglu", "mlstm_out"};
    for (int k = 0; k < 4; k++) {
        CHECKF(!memcmp(res[0][k], res[1][k], sizeof(float) * n[k]),
               "%s producer copy vs rounded afresh: %s differs (N %d K %d OC %d)", what[which], name[k], N, K, OC);
        CHECKF(!memcmp(res[0][k], res[2][k], sizeof(float) * n[k]),
               "%s bf16 slot vs plain slot: %s differs (N %d K %d OC %d)", what[which], name[k], N, K, OC);
    }
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 4; k++) free(res[r][k]);
    free(x), free(nw), free(w), free(dy), free(og);
    dfree(d_x), dfree(d_nw), dfree(d_w), dfree(d_dy), dfree(d_a), dfree(d_r), dfree(d_z);
    dfree(d_og), dfree(d_hn), dfree(d_mu), dfree(d_rs);
}

TEST(cuda_bf16_forward_producer_copies_equal_rounding_afresh) {
    const SwaxOps *B16 = swax_ops_cuda_bf16();
    SWAX_ASSERT(B16);
    swax_rng_seed(&rng, 137, 0);
    /* copies are kept (and made by producers) once a backward product has run in the process:
     * this first case's first run sets that; every later run takes the producer path */
    fwd_side_case(B16, 0, 2, 8, 4);
    for (int which = 0; which < 3; which++) {
        fwd_side_case(B16, which, 1, 8, 4);
        fwd_side_case(B16, which, 37, which == 2 ? 14 : 13, 24); /* odd width (mlstm_out: odd head width): scalar */
        fwd_side_case(B16, which, 130, 64, 96);
    }
}

/* The "cuda" table stores the FFN's activations in bf16 (ops.h alloc_act: the
 * normed input, gate/up, the SwiGLU output and its d): a block's FFN forward and backward
 * through such activations must equal the CPU's fp32 slots on operands rounded
 * to bf16 where the table rounds them (the products' operands, and gate/up
 * itself, which the product now writes in bf16), up to the order of the fp32
 * sums and a rounding tie flipped by it: rel 4e-3 (a value read as fp32 from
 * a bf16 array, or written to the wrong one, is off by O(1)). */
static void act_bf16_case(const SwaxOps *B16, int N, int D, int F) {
    float *x = urand((size_t)N * D, -2, 2), *nw = urand((size_t)D, 0.5f, 1.5f);
    float *wgu = urand((size_t)2 * F * D, -0.3f, 0.3f), *wdn = urand((size_t)D * F, -0.3f, 0.3f);
    float *dy = urand((size_t)N * D, -1, 1);
    /* host reference: CPU slots on bf16-rounded operands */
    float *ln = nanbuf((size_t)N * D), *rstd = nanbuf((size_t)N), *gu = nanbuf((size_t)N * 2 * F);
    float *h = nanbuf((size_t)N * F), *y = nanbuf((size_t)N * D), *dh = nanbuf((size_t)N * F);
    float *dgu = nanbuf((size_t)N * 2 * F), *dln = nanbuf((size_t)N * D);
    float *dwgu = calloc((size_t)2 * F * D, sizeof(float)), *dwdn = calloc((size_t)D * F, sizeof(float));
    float *rwgu = bf16_rounded(wgu, D, 2 * F, D), *rwdn = bf16_rounded(wdn, F, D, F), *rdy = bf16_rounded(dy, D, N, D);
    C->rmsnorm_fwd(ln, rstd, x, nw, N, D, 1e-6f);
    float *rln = bf16_rounded(ln, D, N, D);
    C->matmul_fwd(gu, 2L * F, rln, D, rwgu, N, D, 2 * F);
    float *rgu = bf16_rounded(gu, 2L * F, N, 2 * F);
    C->swiglu_fwd(h, rgu, N, F);
    float *rh = bf16_rounded(h, F, N, F);
    C->matmul_fwd(y, D, rh, F, rwdn, N, F, D);
    C->matmul_bwd(dh, F, dwdn, rdy, D, rh, F, rwdn, N, F, D, 0);
    float *rdh = bf16_rounded(dh, F, N, F);
    C->swiglu_bwd(dgu, rdh, rgu, N, F);
    float *rdgu = bf16_rounded(dgu, 2L * F, N, 2 * F);
    C->matmul_bwd(dln, D, dwgu, rdgu, 2L * F, rln, D, rwgu, N, D, 2 * F, 0);
    /* the "cuda" table, activations from alloc_act */
    SWAX_ASSERT(B16->alloc_act);
    float *a_ln = B16->alloc_act((size_t)N * D), *a_gu = B16->alloc_act((size_t)N * 2 * F);
    float *a_h = B16->alloc_act((size_t)N * F), *a_dh = B16->alloc_act((size_t)N * F);
    SWAX_ASSERT(a_ln && a_gu && a_h && a_dh);
    DBuf d_x = dbuf(x, (size_t)N * D, 0), d_nw = dbuf(nw, (size_t)D, 0), d_wgu = dbuf(wgu, (size_t)2 * F * D, 0);
    DBuf d_wdn = dbuf(wdn, (size_t)D * F, 0), d_dy = dbuf(dy, (size_t)N * D, 0), d_rstd = dbuf(NULL, (size_t)N, 0);
    DBuf d_y = dbuf(NULL, (size_t)N * D, 0);
    DBuf d_dgu = dbuf(NULL, (size_t)N * 2 * F, 0), d_dln = dbuf(NULL, (size_t)N * D, 0);
    DBuf d_dwgu = dbuf(NULL, (size_t)2 * F * D, 0), d_dwdn = dbuf(NULL, (size_t)D * F, 0);
    B16->zero(d_dwgu.p, sizeof(float) * (size_t)2 * F * D);
    B16->zero(d_dwdn.p, sizeof(float) * (size_t)D * F);
    B16->rmsnorm_fwd(a_ln, d_rstd.p, d_x.p, d_nw.p, N, D, 1e-6f);
    B16->matmul_fwd(a_gu, 2L * F, a_ln, D, d_wgu.p, N, D, 2 * F);
    B16->swiglu_fwd(a_h, a_gu, N, F);
    B16->matmul_fwd(d_y.p, D, a_h, F, d_wdn.p, N, F, D);
    B16->matmul_bwd(a_dh, F, d_dwdn.p, d_dy.p, D, a_h, F, d_wdn.p, N, F, D, 0);
    B16->swiglu_bwd(d_dgu.p, a_dh, a_gu, N, F);
    B16->matmul_bwd(d_dln.p, D, d_dwgu.p, d_dgu.p, 2L * F, a_ln, D, d_wgu.p, N, D, 2 * F, 0);
    float *g_rstd = dget(d_rstd), *g_y = dget(d_y), *g_dln = dget(d_dln);
    float *g_dwgu = dget(d_dwgu), *g_dwdn = dget(d_dwdn);
    CHECK_REL(g_rstd, rstd, (size_t)N, 1e-5, "bf16 activations: rstd N=%d D=%d F=%d", N, D, F);
    CHECK_REL(g_y, y, (size_t)N * D, 4e-3, "bf16 activations: FFN output N=%d D=%d F=%d", N, D, F);
    CHECK_REL(g_dln, dln, (size_t)N * D, 4e-3, "bf16 activations: d ln N=%d D=%d F=%d", N, D, F);
    CHECK_REL(g_dwgu, dwgu, (size_t)2 * F * D, 4e-3, "bf16 activations: d W_gu N=%d D=%d F=%d", N, D, F);
    CHECK_REL(g_dwdn, dwdn, (size_t)D * F, 4e-3, "bf16 activations: d W_down N=%d D=%d F=%d", N, D, F);
    B16->free(a_ln), B16->free(a_gu), B16->free(a_h), B16->free(a_dh);
    free(x), free(nw), free(wgu), free(wdn), free(dy), free(ln), free(rstd), free(gu), free(h), free(y), free(dh);
    free(dgu), free(dln), free(dwgu), free(dwdn), free(rwgu), free(rwdn), free(rdy), free(rln), free(rgu), free(rh);
    free(rdgu), free(rdh), free(g_rstd), free(g_y), free(g_dln), free(g_dwgu), free(g_dwdn);
    dfree(d_x), dfree(d_nw), dfree(d_wgu), dfree(d_wdn), dfree(d_dy), dfree(d_rstd), dfree(d_y);
    dfree(d_dgu), dfree(d_dln), dfree(d_dwgu), dfree(d_dwdn);
}

TEST(cuda_bf16_stored_activations_match_rounded_cpu) {
    const SwaxOps *B16 = swax_ops_cuda_bf16();
    SWAX_ASSERT(B16);
    swax_rng_seed(&rng, 139, 0);
    act_bf16_case(B16, 1, 8, 4);
    act_bf16_case(B16, 37, 24, 13);  /* F odd: the scalar SwiGLU kernels */
    act_bf16_case(B16, 130, 64, 96);
    act_bf16_case(B16, 257, 128, 344); /* bench-gpu's FFN ratio */
}

/* The fused head's logits chunk stored in bf16 (ops.h alloc_act): the product
 * writes the logits in bf16, xent_train reads them so and writes the d logits
 * over them in bf16, the product's backward takes those as its operand. Against
 * the CPU slots on the same roundings (x, W, the logits, the d logits): lse and
 * losses from logits that differ only where a rounding tie fell the other way
 * (rel 2e-3), d inputs and d W within 4e-3 (a logit read as fp32 from the bf16
 * buffer, or d logits left unwritten, are off by O(1)). Every place the second
 * pass reads the row from (SWAX_XENT_ROW), and V too wide for a shared row. */
static void head_bf16_case(const SwaxOps *B16, int N, int V, int Vused, float cap, int D) {
    const size_t nv = (size_t)N * V;
    const float scale = 1.0f / 37.0f;
    float *x = urand((size_t)N * D, -1, 1), *w = urand((size_t)V * D, -0.3f, 0.3f);
    int32_t *tg = xent_targets(N, Vused), *d_t = dev_from(tg, sizeof(int32_t) * N);
    float *rx = bf16_rounded(x, D, N, D), *rw = bf16_rounded(w, D, V, D);
    float *z = nanbuf(nv), *lse = nanbuf((size_t)N), *losses = nanbuf((size_t)N);
    float *dinp = nanbuf((size_t)N * D), *dw = calloc((size_t)V * D, sizeof(float));
    C->matmul_fwd(z, V, rx, D, rw, N, D, V);
    float *rz = bf16_rounded(z, V, N, V);
    C->xent_fwd(rz, lse, losses, tg, N, V, Vused, cap);
    C->xent_bwd(rz, lse, tg, N, V, Vused, cap, scale);
    float *rg = bf16_rounded(rz, V, N, V);
    C->matmul_bwd(dinp, D, dw, rg, V, rx, D, rw, N, D, V, 0);
    /* the second pass's row from each place (SWAX_XENT_ROW: default the capped row in shared memory, 0 re-read,
     * raw the raw bf16 row in shared memory): each within the bounds, all three the same bits */
    const char *rows[3] = {NULL, "0", "raw"};
    float *g[3][4] = {{0}};
    for (int ri = 0; ri < 3; ri++) {
        if (rows[ri]) setenv("SWAX_XENT_ROW", rows[ri], 1);
        else unsetenv("SWAX_XENT_ROW");
        float *lg = B16->alloc_act(nv);
        SWAX_ASSERT(lg);
        DBuf d_x = dbuf(x, (size_t)N * D, 0), d_w = dbuf(w, (size_t)V * D, 0), d_lse = dbuf(NULL, (size_t)N, 0);
        DBuf d_losses = dbuf(NULL, (size_t)N, 0), d_di = dbuf(NULL, (size_t)N * D, 0);
        DBuf d_dw = dbuf(NULL, (size_t)V * D, 0);
        B16->zero(d_dw.p, sizeof(float) * (size_t)V * D);
        B16->matmul_fwd(lg, V, d_x.p, D, d_w.p, N, D, V);
        B16->xent_train(lg, d_lse.p, d_losses.p, d_t, N, V, Vused, cap, scale);
        B16->matmul_bwd(d_di.p, D, d_dw.p, lg, V, d_x.p, D, d_w.p, N, D, V, 0);
        g[ri][0] = dget(d_lse), g[ri][1] = dget(d_losses), g[ri][2] = dget(d_di), g[ri][3] = dget(d_dw);
        const char *rn = rows[ri] ? rows[ri] : "default";
        CHECK_REL(g[ri][0], lse, (size_t)N, 2e-3, "bf16 head (row %s): lse N=%d V=%d cap %g", rn, N, V, cap);
        CHECK_REL(g[ri][1], losses, (size_t)N, 2e-3, "bf16 head (row %s): losses N=%d V=%d cap %g", rn, N, V, cap);
        CHECK_REL(g[ri][2], dinp, (size_t)N * D, 4e-3, "bf16 head (row %s): d inputs N=%d V=%d cap %g", rn, N, V,
                  cap);
        CHECK_REL(g[ri][3], dw, (size_t)V * D, 4e-3, "bf16 head (row %s): d W N=%d V=%d cap %g", rn, N, V, cap);
        const size_t n[4] = {(size_t)N, (size_t)N, (size_t)N * D, (size_t)V * D};
        for (int k = 0; k < 4 && ri > 0; k++)
            CHECKF(same_bits(g[0][k], g[ri][k], sizeof(float) * n[k]),
                   "bf16 head: SWAX_XENT_ROW=%s gives other bits than the default (output %d, N %d V %d)", rn, k, N,
                   V);
        B16->free(lg);
        dfree(d_x), dfree(d_w), dfree(d_lse), dfree(d_losses), dfree(d_di), dfree(d_dw);
    }
    unsetenv("SWAX_XENT_ROW");
    for (int ri = 0; ri < 3; ri++)
        for (int k = 0; k < 4; k++) free(g[ri][k]);
    free(x), free(w), free(tg), free(rx), free(rw), free(z), free(lse), free(losses), free(dinp), free(dw), free(rz);
    free(rg);
    G->free(d_t);
}

TEST(cuda_bf16_head_logits_match_rounded_cpu) {
    const SwaxOps *B16 = swax_ops_cuda_bf16();
    SWAX_ASSERT(B16 && B16->xent_train);
    swax_rng_seed(&rng, 141, 0);
    head_bf16_case(B16, 1, 29, 25, 30.0f, 8);
    head_bf16_case(B16, 7, 29, 25, 0.0f, 8);      /* scalar rows (V odd) */
    head_bf16_case(B16, 9, 1000, 997, 30.0f, 16); /* 4-wide rows, Vused % 4 != 0 */
    head_bf16_case(B16, 3, 50304, 50257, 30.0f, 64);
    head_bf16_case(B16, 2, 60000, 59999, 30.0f, 8); /* too wide for the fp32 row (re-read; raw bf16 fits) */
    head_bf16_case(B16, 3, 5001, 4999, 30.0f, 16);  /* odd V: the scalar loop in every row place */
}

/* The fast arithmetic of the bf16-logit training cross-entropy (elementwise.cu XentFast: ex2/rcp.approx, a
 * fixed offset; opt-in with SWAX_XENT_FAST=1, the accurate kernel otherwise) against the accurate kernel on the same
 * bf16 logits. Both travel through the bf16 table's own products exactly: x is one-hot (row r is e_r), so the
 * logits x·Wᵀ are W's bf16-rounded columns, and d W = (d logits)ᵀ·x holds the bf16 d logits (one nonzero
 * product per sum). Bounds, from the capped logits' errors (fast ≤ 1.4e-5, tanhf ≤ 4e-6 against double: both
 * within Δz = 2e-5 of each other) and fp32 sums of at most ~60 positive terms per thread and block (~4e-6
 * relative each way), exp's argument rounding (≤ 5e-6 relative) and the log's and last add's roundings
 * (≤ 4e-6): lse and losses within 1e-4 absolute (lse ~ 30-41; about 2× the sum of those); a d logit, before
 * rounding, within η = 1e-4 relative (e^(Δlse + Δz)) plus scale·2Δz/cap (the factor 1 - (z/cap)², which a
 * saturated logit makes tiny), plus η·scale at the target (its d is (p - 1)·…, with p's error η·p); after
 * rounding to bf16 (8 significant bits) up to one more ulp, 2^-7 relative: |fast - old| ≤ (2^-7 + η)·|old| +
 * scale·(2e-6 + [target] η) + FLT_MIN (a flushed ex2). Each place the second pass reads the row from
 * (SWAX_XENT_ROW) gives the fast arithmetic's same bits; caps outside (0, 40] (here 0 and 50) fall back to
 * the accurate kernel: the same bits with the switch on or off. */
typedef struct {
    float *lse, *losses, *dlog; /* (N), (N), (N, V) */
} XentRun;
static XentRun xent_bf16_run(const SwaxOps *B16, const float *x, const float *w, const int32_t *d_t, int N, int V,
                             int Vused, float cap, float scale, int D, const char *row, int fast) {
    if (row) setenv("SWAX_XENT_ROW", row, 1);
    else unsetenv("SWAX_XENT_ROW");
    if (fast) setenv("SWAX_XENT_FAST", "1", 1);
    else unsetenv("SWAX_XENT_FAST");
    float *lg = B16->alloc_act((size_t)N * V);
    SWAX_ASSERT(lg);
    DBuf d_x = dbuf(x, (size_t)N * D, 0), d_w = dbuf(w, (size_t)V * D, 0), d_lse = dbuf(NULL, (size_t)N, 0);
    DBuf d_losses = dbuf(NULL, (size_t)N, 0), d_dw = dbuf(NULL, (size_t)V * D, 0);
    B16->zero(d_dw.p, sizeof(float) * (size_t)V * D);
    B16->matmul_fwd(lg, V, d_x.p, D, d_w.p, N, D, V);
    B16->xent_train(lg, d_lse.p, d_losses.p, d_t, N, V, Vused, cap, scale);
    B16->matmul_bwd(NULL, D, d_dw.p, lg, V, d_x.p, D, d_w.p, N, D, V, 0);
    XentRun o = {dget(d_lse), dget(d_losses), malloc(sizeof(float) * (size_t)N * V)};
    float *dw = dget(d_dw);
    SWAX_ASSERT(o.dlog);
    for (int r = 0; r < N; r++)
        for (int v = 0; v < V; v++) o.dlog[(size_t)r * V + v] = dw[(size_t)v * D + r];
    free(dw);
    B16->free(lg);
    dfree(d_x), dfree(d_w), dfree(d_lse), dfree(d_losses), dfree(d_dw);
    unsetenv("SWAX_XENT_ROW");
    unsetenv("SWAX_XENT_FAST");
    return o;
}
static void xent_run_free(XentRun o) { free(o.lse), free(o.losses), free(o.dlog); }
static int xent_run_same(XentRun a, XentRun b, int N, int V) {
    return same_bits(a.lse, b.lse, sizeof(float) * N) && same_bits(a.losses, b.losses, sizeof(float) * N) &&
           same_bits(a.dlog, b.dlog, sizeof(float) * (size_t)N * V);
}

static void xent_fast_case(const SwaxOps *B16, int V, int Vused, float cap) {
    enum { N = 8, D = 8 };
    const float scale = 1.0f / 37.0f, a = 2.5f * (cap > 0 ? cap : 20.0f);
    /* rows: 0 the target the last used id, 1 ignored, 2 every logit deep below -cap (the smallest sum), 3 with
     * ±1e30 among them, 4-7 random (or ignored) targets */
    int32_t tg[N];
    for (int r = 0; r < N; r++) tg[r] = swax_rng_u64(&rng) % 4 == 0 ? -1 : (int32_t)(swax_rng_u64(&rng) % Vused);
    tg[0] = Vused - 1, tg[1] = -1, tg[2] = 0;
    float *x = calloc((size_t)N * D, sizeof(float)), *w = urand((size_t)V * D, -a, a);
    SWAX_ASSERT(x);
    for (int r = 0; r < N; r++) x[r * D + r] = 1.0f;
    for (int v = 0; v < V; v++) {
        w[(size_t)v * D + 2] = -1e3f - 9e3f * (float)swax_rng_uniform(&rng);
        if (v % 97 == 0) w[(size_t)v * D + 3] = v % 194 ? 1e30f : -1e30f;
    }
    int32_t *d_t = dev_from(tg, sizeof tg);
    const char *rows[3] = {NULL, "0", "raw"}; /* default (the capped row shared), re-read, the raw row shared */
    XentRun old = xent_bf16_run(B16, x, w, d_t, N, V, Vused, cap, scale, D, NULL, 0), f[3];
    for (int ri = 0; ri < 3; ri++) f[ri] = xent_bf16_run(B16, x, w, d_t, N, V, Vused, cap, scale, D, rows[ri], 1);
    if (cap <= 0 || cap > 40) {
        for (int ri = 0; ri < 3; ri++) {
            XentRun o = ri ? xent_bf16_run(B16, x, w, d_t, N, V, Vused, cap, scale, D, rows[ri], 0) : old;
            const int same = xent_run_same(f[ri], o, N, V);
            if (ri) xent_run_free(o);
            CHECKF(same, "bf16 xent, cap %g (the accurate kernel either way): SWAX_XENT_FAST changes the bits (row "
                         "%s, V %d)", cap, rows[ri] ? rows[ri] : "default", V);
        }
    } else {
        double wl = 0, wd = 0; /* worst |Δ| of lse and losses; worst |Δ| / bound of the d logits */
        for (int r = 0; r < N; r++) {
            wl = fmax(wl, fmax(fabs((double)f[0].lse[r] - old.lse[r]), fabs((double)f[0].losses[r] - old.losses[r])));
            for (int v = 0; v < V; v++) {
                const double o = old.dlog[(size_t)r * V + v], g = f[0].dlog[(size_t)r * V + v];
                const double tol = (0x1p-7 + 1e-4) * fabs(o) + scale * (2e-6 + (v == tg[r] ? 1e-4 : 0)) + FLT_MIN;
                wd = fmax(wd, isfinite(g) ? fabs(g - o) / tol : INFINITY);
            }
        }
        CHECKF(wl <= 1e-4, "bf16 xent fast vs accurate: lse or a loss off by %.3g > 1e-4 (V %d, cap %g)", wl, V, cap);
        CHECKF(wd <= 1.0, "bf16 xent fast vs accurate: a d logit off by %.3g of its bound (V %d, cap %g)", wd, V, cap);
        for (int ri = 1; ri < 3; ri++)
            CHECKF(xent_run_same(f[ri], f[0], N, V),
                   "bf16 xent fast: SWAX_XENT_ROW=%s gives other bits than the default (V %d, cap %g)", rows[ri], V,
                   cap);
    }
    for (int ri = 0; ri < 3; ri++) xent_run_free(f[ri]);
    xent_run_free(old);
    free(x), free(w);
    G->free(d_t);
}

TEST(cuda_bf16_xent_fast_matches_accurate) {
    const SwaxOps *B16 = swax_ops_cuda_bf16();
    SWAX_ASSERT(B16 && B16->xent_train && B16->alloc_act);
    swax_rng_seed(&rng, 143, 0);
    xent_fast_case(B16, 29, 25, 30.0f);       /* scalar rows */
    xent_fast_case(B16, 1000, 997, 30.0f);    /* 4-wide rows, 1000 = 4·256 - 24, Vused % 4 != 0 */
    xent_fast_case(B16, 5001, 4999, 30.0f);   /* odd V: the scalar loop in every row place */
    xent_fast_case(B16, 50304, 50257, 30.0f); /* bench-gpu's: 50304 = 12·4·1024 + 1152 */
    xent_fast_case(B16, 60000, 59999, 30.0f); /* too wide for the fp32 row (re-read; raw bf16 fits) */
    xent_fast_case(B16, 1000, 997, 40.0f);    /* the largest cap that takes the fixed offset */
    xent_fast_case(B16, 1000, 997, 7.0f);
    xent_fast_case(B16, 50304, 50257, 0.0f);  /* no cap: the accurate kernel */
    xent_fast_case(B16, 1000, 997, 50.0f);    /* cap > 40: the accurate kernel */
    xent_fast_case(B16, 5001, 4999, 50.0f);
}

RUN_CUDA_TESTS()
