/* test_cuda_attn.c — the CUDA attn_fwd / attn_bwd slots against the CPU slots
 * on the same random inputs: rotated q and k (v untouched), out, lse, and the
 * dq, dk, dv parts of dqkv, each within 1e-5 relative error (max abs diff /
 * max |ref|). Outputs are poisoned with NaN bytes on both sides before every
 * run, so an element the kernels do not write fails the comparison.
 * Covers T not a multiple of any tile (1, 37, 200, 1000), windows 1, < T, = T,
 * > T and huge, document masking, B > 1, H 1..5, dh 2..256 (64 and 128 are
 * the fast paths, the rest runs zero-padded), magnitudes up to 4, buffers
 * that are not 16-byte aligned (scalar loads), bit-identical reruns, and the
 * realistic shapes B2 H4 T2048 dh64 (w 128 and 2048) and dh128 (w 512,
 * documents), with GPU and CPU timings (best of 5 GPU runs).
 *
 * dq and dk vanish mathematically where a query sees a single key (w = 1,
 * T = 1, a document's first token): dS = P·(dP − Δ)·scale with dP = Δ, so
 * both sides hold rounding noise only. Their errors are therefore measured
 * against max(max |ref|, 0.05·sqrt(dh)·amp²), 5% of the size of the
 * terms that cancel (scale·dh·|dout|·|v|·|k|); elsewhere max |ref| is larger. */
#include <stdint.h>

#include "test_cuda.h"

static SwaxRng rng;

typedef struct {
    int B, T, H, dh, window;
    int docs;     /* random document starts (doc_lo), else NULL */
    float amp;    /* qkv uniform in [-amp, amp) */
    int misalign; /* device buffers start one float past a 16-byte boundary */
} Case;

typedef struct {
    float *qkv, *out, *lse, *dqkv; /* host copies of the results */
    double t_fwd, t_bwd;           /* seconds */
} Result;

static const double TOL = 1e-5;
static const double THETA = 10000.0;

/* The worst error seen per quantity since the last report. */
static double worst[7];
static const char *const worst_name[7] = {"q", "k", "out", "lse", "dq", "dk", "dv"};

static void report_worst(const char *what) {
    printf("  %s worst rel err:", what);
    for (int i = 0; i < 7; i++) printf(" %s %.2g", worst_name[i], worst[i]);
    printf("\n");
    memset(worst, 0, sizeof(worst));
}

static void describe(const Case *k, char *buf, size_t cap) {
    snprintf(buf, cap, "B%d T%d H%d dh%d w%d%s amp%g%s", k->B, k->T, k->H, k->dh, k->window, k->docs ? " docs" : "",
             (double)k->amp, k->misalign ? " misaligned" : "");
}

/* (B, T) document starts: each sequence gets its own start rate. */
static int *make_doc_lo(int B, int T) {
    int *lo = malloc(sizeof(int) * (size_t)B * T);
    SWAX_ASSERT(lo);
    for (int b = 0; b < B; b++) {
        const double p = b % 2 ? 0.1 : 0.02;
        int cur = 0;
        for (int t = 0; t < T; t++) {
            if (t > 0 && swax_rng_uniform(&rng) < p) cur = t;
            lo[(size_t)b * T + t] = cur;
        }
    }
    return lo;
}

static float *poisoned(size_t n) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    SWAX_ASSERT(x);
    memset(x, 0xFF, sizeof(float) * n);
    return x;
}

static SwaxAttnCall make_call(const Case *k, const int *lo, float *qkv, float *out, float *lse, const float *dout,
                              float *dqkv) {
    SwaxAttnCall c = {.B = k->B, .T = k->T, .H = k->H, .dh = k->dh, .window = k->window, .rope_theta = THETA,
                      .doc_lo = lo, .qkv = qkv, .out = out, .lse = lse, .dout = dout, .dqkv = dqkv};
    return c;
}

static void run_cpu(const Case *k, const float *qkv0, const float *dout, const int *lo, Result *r) {
    const size_t N = (size_t)k->B * k->T, HD = (size_t)k->H * k->dh;
    r->qkv = host_copy(qkv0, N * 3 * HD);
    r->out = poisoned(N * HD);
    r->lse = poisoned((size_t)k->B * k->H * k->T);
    r->dqkv = poisoned(N * 3 * HD);
    SwaxAttnCall c = make_call(k, lo, r->qkv, r->out, r->lse, dout, r->dqkv);
    const double t0 = swax_time_sec();
    C->attn_fwd(&c);
    const double t1 = swax_time_sec();
    C->attn_bwd(&c);
    r->t_fwd = t1 - t0, r->t_bwd = swax_time_sec() - t1;
}

/* A device buffer of n floats (plus one when misaligned) holding poison or data. */
static float *dev_buf(size_t n, int off, const float *data, const float *poison) {
    float *d = G->alloc(sizeof(float) * (n + (size_t)off + 1));
    SWAX_ASSERT(d);
    if (n) G->to_device(d + off, data ? data : poison, sizeof(float) * n);
    return d;
}

/* GPU forward and backward; reps > 0 times that many more runs (minimum). */
static void run_gpu(const Case *k, const float *qkv0, const float *dout, const int *lo, Result *r, int reps) {
    const size_t N = (size_t)k->B * k->T, HD = (size_t)k->H * k->dh, NL = (size_t)k->B * k->H * k->T;
    const int off = k->misalign ? 1 : 0;
    float *poison = poisoned(N * 3 * HD);
    float *qkv = dev_buf(N * 3 * HD, off, qkv0, poison), *out = dev_buf(N * HD, off, NULL, poison);
    float *lse = dev_buf(NL, 0, NULL, poison), *dO = dev_buf(N * HD, off, dout, poison);
    float *dqkv = dev_buf(N * 3 * HD, off, NULL, poison);
    int *dlo = lo ? dev_from(lo, sizeof(int) * (size_t)k->B * k->T) : NULL;
    SwaxAttnCall c = make_call(k, dlo, qkv + off, out + off, lse, dO + off, dqkv + off);
    G->attn_fwd(&c);
    G->attn_bwd(&c);
    G->sync();
    r->qkv = host_from(qkv + off, sizeof(float) * N * 3 * HD);
    r->out = host_from(out + off, sizeof(float) * N * HD);
    r->lse = host_from(lse, sizeof(float) * NL);
    r->dqkv = host_from(dqkv + off, sizeof(float) * N * 3 * HD);
    r->t_fwd = r->t_bwd = INFINITY;
    for (int i = 0; i < reps; i++) { /* q, k rotate again each time: same work */
        const double t0 = swax_time_sec();
        G->attn_fwd(&c);
        G->sync();
        const double t1 = swax_time_sec();
        G->attn_bwd(&c);
        G->sync();
        const double t2 = swax_time_sec();
        if (t1 - t0 < r->t_fwd) r->t_fwd = t1 - t0;
        if (t2 - t1 < r->t_bwd) r->t_bwd = t2 - t1;
    }
    G->free(qkv), G->free(out), G->free(lse), G->free(dO), G->free(dqkv);
    if (dlo) G->free(dlo);
    free(poison);
}

static void free_result(Result *r) { free(r->qkv), free(r->out), free(r->lse), free(r->dqkv); }

/* rel_err over columns [col0, col0 + ncols) of (N, ld) matrices, the
 * denominator at least `floor`. */
static double part_err(const float *got, const float *ref, size_t N, size_t ld, size_t col0, size_t ncols,
                       double floor) {
    const size_t n = N * ncols > 0 ? N * ncols : 1;
    float *g = malloc(sizeof(float) * n), *r = malloc(sizeof(float) * n);
    SWAX_ASSERT(g && r);
    for (size_t i = 0; i < N; i++) {
        memcpy(g + i * ncols, got + i * ld + col0, sizeof(float) * ncols);
        memcpy(r + i * ncols, ref + i * ld + col0, sizeof(float) * ncols);
    }
    double e = rel_err(g, r, N * ncols), mr = 0;
    for (size_t i = 0; i < N * ncols; i++)
        if (fabs(r[i]) > mr) mr = fabs(r[i]);
    if (isfinite(e) && mr < floor) e *= (mr > 1e-30 ? mr : 1e-30) / floor; /* rel_err divided by max |ref| */
    free(g), free(r);
    return e;
}

/* One case: fresh inputs, both backends, every output compared. */
static void check_case(const Case *k, int reps) {
    const size_t N = (size_t)k->B * k->T, HD = (size_t)k->H * k->dh, NL = (size_t)k->B * k->H * k->T;
    char name[160];
    describe(k, name, sizeof(name));
    float *qkv0 = malloc(sizeof(float) * N * 3 * HD), *dout = malloc(sizeof(float) * N * HD);
    SWAX_ASSERT(qkv0 && dout);
    fill_uniform(&rng, qkv0, N * 3 * HD, -k->amp, k->amp);
    fill_uniform(&rng, dout, N * HD, -1.0f, 1.0f);
    int *lo = k->docs ? make_doc_lo(k->B, k->T) : NULL;

    Result cpu, gpu;
    run_cpu(k, qkv0, dout, lo, &cpu);
    run_gpu(k, qkv0, dout, lo, &gpu, reps);

    double e[7];
    e[0] = part_err(gpu.qkv, cpu.qkv, N, 3 * HD, 0, HD, 0);
    e[1] = part_err(gpu.qkv, cpu.qkv, N, 3 * HD, HD, HD, 0);
    const double ev = part_err(gpu.qkv, qkv0, N, 3 * HD, 2 * HD, HD, 0); /* v must stay as it was */
    e[2] = rel_err(gpu.out, cpu.out, N * HD);
    e[3] = rel_err(gpu.lse, cpu.lse, NL);
    const double floor_qk = 0.05 * sqrt((double)k->dh) * k->amp * k->amp;
    e[4] = part_err(gpu.dqkv, cpu.dqkv, N, 3 * HD, 0, HD, floor_qk);
    e[5] = part_err(gpu.dqkv, cpu.dqkv, N, 3 * HD, HD, HD, floor_qk);
    e[6] = part_err(gpu.dqkv, cpu.dqkv, N, 3 * HD, 2 * HD, HD, 0);
    for (int i = 0; i < 7; i++)
        if (!(e[i] <= worst[i])) worst[i] = e[i];
    if (reps > 0)
        printf("  %s: gpu fwd %.3f ms, bwd %.3f ms; cpu fwd %.1f ms, bwd %.1f ms\n", name, 1e3 * gpu.t_fwd,
               1e3 * gpu.t_bwd, 1e3 * cpu.t_fwd, 1e3 * cpu.t_bwd);
    free_result(&cpu), free_result(&gpu);
    free(qkv0), free(dout), free(lo);

    CHECKF(ev == 0, "%s: v columns changed by the forward", name);
    for (int i = 0; i < 7; i++)
        CHECKF(e[i] <= TOL, "%s: %s rel err %.3g > %.3g", name, worst_name[i], e[i], TOL);
}

TEST(attn_small_shapes) {
    swax_rng_seed(&rng, 1, 0);
    const int Ts[] = {1, 37, 200};
    const int dhs[] = {8, 16, 64, 128};
    int n = 0;
    for (int ti = 0; ti < 3; ti++)
        for (int wi = 0; wi < 5; wi++)
            for (int docs = 0; docs < 2; docs++)
                for (int di = 0; di < 4; di++, n++) {
                    const int T = Ts[ti];
                    const int ws[] = {1, 7, T, T + 50, 1000000};
                    const Case k = {.B = 1 + n % 3, .T = T, .H = 1 + n % 5, .dh = dhs[di], .window = ws[wi],
                                    .docs = docs, .amp = 1.0f};
                    check_case(&k, 0);
                    if (g_test_failed) return;
                }
    report_worst("small shapes");
}

TEST(attn_any_even_head_dim) {
    swax_rng_seed(&rng, 2, 0);
    const int dhs[] = {2, 6, 10, 24, 40, 96, 136, 200, 256};
    for (int di = 0; di < 9; di++)
        for (int v = 0; v < 2; v++) {
            const Case k = {.B = 2, .T = v ? 200 : 37, .H = v ? 2 : 3, .dh = dhs[di], .window = v ? 45 : 300,
                            .docs = v, .amp = 1.0f};
            check_case(&k, 0);
            if (g_test_failed) return;
        }
    report_worst("odd head dims");
}

TEST(attn_long_sequences) {
    swax_rng_seed(&rng, 3, 0);
    const int dhs[] = {64, 128}, ws[] = {128, 333, 1000};
    for (int di = 0; di < 2; di++)
        for (int wi = 0; wi < 3; wi++)
            for (int docs = 0; docs < 2; docs++) {
                const Case k = {.B = 2, .T = 1000, .H = 3, .dh = dhs[di], .window = ws[wi], .docs = docs, .amp = 1.0f};
                check_case(&k, 0);
                if (g_test_failed) return;
            }
    report_worst("T = 1000");
}

TEST(attn_large_magnitude) {
    swax_rng_seed(&rng, 4, 0);
    const Case ks[] = {
        {.B = 2, .T = 200, .H = 2, .dh = 64, .window = 100, .docs = 1, .amp = 4.0f},
        {.B = 1, .T = 1000, .H = 4, .dh = 64, .window = 1000, .docs = 0, .amp = 4.0f},
        {.B = 2, .T = 333, .H = 2, .dh = 128, .window = 64, .docs = 0, .amp = 4.0f},
        {.B = 1, .T = 257, .H = 3, .dh = 16, .window = 300, .docs = 1, .amp = 4.0f},
    };
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
        check_case(&ks[i], 0);
        if (g_test_failed) return;
    }
    report_worst("amplitude 4");
}

TEST(attn_misaligned_buffers) {
    swax_rng_seed(&rng, 5, 0);
    const Case ks[] = {
        {.B = 2, .T = 200, .H = 2, .dh = 64, .window = 50, .docs = 1, .amp = 1.0f, .misalign = 1},
        {.B = 1, .T = 130, .H = 3, .dh = 128, .window = 200, .docs = 0, .amp = 1.0f, .misalign = 1},
        {.B = 3, .T = 37, .H = 4, .dh = 16, .window = 9, .docs = 1, .amp = 1.0f, .misalign = 1},
    };
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
        check_case(&ks[i], 0);
        if (g_test_failed) return;
    }
    report_worst("misaligned");
}

/* Same inputs twice: the same bits (no atomics, fixed reduction orders). */
TEST(attn_deterministic) {
    swax_rng_seed(&rng, 6, 0);
    const Case ks[] = {
        {.B = 2, .T = 300, .H = 3, .dh = 64, .window = 100, .docs = 1, .amp = 1.0f},
        {.B = 1, .T = 517, .H = 2, .dh = 128, .window = 517, .docs = 0, .amp = 2.0f},
    };
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
        const Case *k = &ks[i];
        const size_t N = (size_t)k->B * k->T, HD = (size_t)k->H * k->dh, NL = (size_t)k->B * k->H * k->T;
        float *qkv0 = malloc(sizeof(float) * N * 3 * HD), *dout = malloc(sizeof(float) * N * HD);
        SWAX_ASSERT(qkv0 && dout);
        fill_uniform(&rng, qkv0, N * 3 * HD, -k->amp, k->amp);
        fill_uniform(&rng, dout, N * HD, -1.0f, 1.0f);
        int *lo = k->docs ? make_doc_lo(k->B, k->T) : NULL;
        Result a, b;
        run_gpu(k, qkv0, dout, lo, &a, 0);
        run_gpu(k, qkv0, dout, lo, &b, 0);
        const int same = !memcmp(a.qkv, b.qkv, sizeof(float) * N * 3 * HD) &&
                         !memcmp(a.out, b.out, sizeof(float) * N * HD) && !memcmp(a.lse, b.lse, sizeof(float) * NL) &&
                         !memcmp(a.dqkv, b.dqkv, sizeof(float) * N * 3 * HD);
        free_result(&a), free_result(&b);
        free(qkv0), free(dout), free(lo);
        char name[160];
        describe(k, name, sizeof(name));
        CHECKF(same, "%s: two runs differ", name);
    }
}

/* The real shape: B2 H4 T2048 dh64, w 128 and 2048; checked, then timed. */
TEST(attn_realistic_timing) {
    swax_rng_seed(&rng, 7, 0);
    const int ws[] = {128, 2048};
    for (int wi = 0; wi < 2; wi++) {
        const Case k = {.B = 2, .T = 2048, .H = 4, .dh = 64, .window = ws[wi], .docs = 0, .amp = 1.0f};
        check_case(&k, 5);
        if (g_test_failed) return;
    }
    const Case k = {.B = 2, .T = 2048, .H = 4, .dh = 128, .window = 512, .docs = 1, .amp = 1.0f};
    check_case(&k, 5);
    report_worst("realistic");
}

RUN_CUDA_TESTS()
