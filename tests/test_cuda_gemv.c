/* test_cuda_gemv.c — the batch-small bf16 product of decode (src/ops/cuda/
 * gemv.cu, swax_cuda_gemv_bf16) against the CPU's fp32 product of the same
 * operands rounded to bf16 on the host (C->matmul_fwd on bf16_rounded
 * copies): only the order of the fp32 sums differs, so rel_err <= 1e-5.
 * Fresh random inputs; N in {1, 2, 3, 5, 8}; C from one 16-byte vector (8)
 * through 136 (a multiple of 8, not of a warp's 256-element stride) to 4096;
 * OC from 1 to 6144 and the LM head's 50304 (small C only, to stay quick);
 * dense, strided (ldi > C, ldo > OC) and misaligned (inp one float off)
 * operands. Outputs start as NaN bytes: every element must be written and
 * the padding past OC never. A second call gives the same bits; a row gives
 * the same bits alone as in a batch. N = 9, C % 8 != 0, a misaligned weight
 * pointer and bad strides either run correctly or return nonzero and leave
 * the output untouched. Last, a timing print (2048x6144 and 2048x50304 at
 * N = 1 and 8): microseconds and GB/s of weights beside the device's copy
 * bandwidth.
 */
#include <stdint.h>

#include "ops/cuda/gemv.h"
#include "test_cuda.h"

/* the backend's stream (a cudaStream_t; ops_cuda.cu): the test's uploads and
 * downloads run on it, so the products must too */
void *swax_cuda_stream(void);
/* y += x on that stream (elementwise.cu; its kernel triggers dependents early) */
void swax_cuda_add(float *y, const float *x, size_t n);

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
static int all_poison(const float *x, size_t n) { /* every byte still 0xFF */
    const unsigned char *b = (const unsigned char *)x;
    for (size_t i = 0; i < n * sizeof(float); i++)
        if (b[i] != 0xFF) return 0;
    return 1;
}

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

/* The bf16 weights on the device: the bits of the host-rounded copy rw
 * (OC x C) uploaded as raw bytes, at byte offset 0 (16-byte aligned, from
 * cudaMalloc) and, in a second buffer, at byte offset 2 (one element off). */
typedef struct {
    void *base, *mis_base;
    const void *w, *mis;
} DWeights;
static DWeights dweights(const float *rw, int OC, int Cc) {
    const size_t n = (size_t)OC * Cc;
    uint16_t *bits = malloc(sizeof(uint16_t) * (n ? n : 1));
    SWAX_ASSERT(bits);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &rw[i], 4);
        bits[i] = (uint16_t)(u >> 16); /* rw is already bf16: the low half is zero */
    }
    DWeights d;
    d.base = G->alloc(2 * n + 32);
    d.mis_base = G->alloc(2 * n + 32);
    SWAX_ASSERT(d.base && d.mis_base);
    d.w = d.base;
    d.mis = (const char *)d.mis_base + 2;
    G->to_device(d.base, bits, 2 * n);
    G->to_device((char *)d.mis_base + 2, bits, 2 * n);
    free(bits);
    return d;
}
static void dweights_free(DWeights d) { G->free(d.base), G->free(d.mis_base); }

/* rows x cols of x (row stride ld) as a dense malloc copy */
static float *dense(const float *x, long ld, int rows, int cols) {
    float *r = malloc(sizeof(float) * (size_t)rows * cols + 4);
    SWAX_ASSERT(r);
    for (int i = 0; i < rows; i++) memcpy(r + (size_t)i * cols, x + (size_t)i * ld, sizeof(float) * cols);
    return r;
}

/* The padding of each row of got (N rows of ldo, OC used) is still poison. */
static int padding_untouched(const float *got, int N, int OC, long ldo) {
    for (int i = 0; i < N; i++)
        if (!all_poison(got + (size_t)i * ldo + OC, (size_t)(ldo - OC))) return 0;
    return 1;
}

/* One product: N rows against the weights of one (C, OC). variant 0: dense;
 * 1: ldi = C + 3, ldo = OC + 5, inp one float off (scalar staging); 2:
 * ldi = C + 4, ldo = OC + 2 (float4 staging of strided rows). */
static void gemv_case(const DWeights *dw, const float *rw, int N, int Cc, int OC, int variant) {
    const long ldi = Cc + (variant == 1 ? 3 : variant == 2 ? 4 : 0);
    const long ldo = OC + (variant == 1 ? 5 : variant == 2 ? 2 : 0);
    const int off = variant == 1;
    float *inp = urand((size_t)N * ldi, -2, 2), *ri = bf16_rounded(inp, ldi, N, Cc), *ref = nanbuf((size_t)N * OC);
    C->matmul_fwd(ref, OC, ri, Cc, rw, N, Cc, OC);
    DBuf d_inp = dbuf(inp, (size_t)N * ldi, off), d_out = dbuf(NULL, (size_t)N * ldo, 0);
    DBuf d_one = dbuf(NULL, (size_t)OC, 0);
    void *st = swax_cuda_stream();

    int rc = swax_cuda_gemv_bf16(d_out.p, ldo, d_inp.p, ldi, dw->w, N, Cc, OC, st);
    CHECKF(rc == 0, "gemv returned %d for N=%d C=%d OC=%d ldi=%ld ldo=%ld off=%d", rc, N, Cc, OC, ldi, ldo, off);
    float *got = dget(d_out), *gd = dense(got, ldo, N, OC);
    CHECK_REL(gd, ref, (size_t)N * OC, 1e-5, "gemv N=%d C=%d OC=%d ldi=%ld ldo=%ld off=%d", N, Cc, OC, ldi, ldo, off);
    CHECKF(padding_untouched(got, N, OC, ldo), "gemv wrote past OC: N=%d C=%d OC=%d ldo=%ld", N, Cc, OC, ldo);

    /* the same bits again */
    dset(d_out, NULL);
    rc = swax_cuda_gemv_bf16(d_out.p, ldo, d_inp.p, ldi, dw->w, N, Cc, OC, st);
    CHECKF(rc == 0, "second call returned %d", rc);
    float *again = dget(d_out);
    CHECKF(!memcmp(got, again, sizeof(float) * (size_t)N * ldo), "gemv not deterministic N=%d C=%d OC=%d", N, Cc,
           OC);

    /* with a residual (decode's output projections): the product's bits plus
     * one fp32 add, padding untouched; the residual may not be the output */
    {
        float *res = urand((size_t)N * ldo, -3, 3), *want = malloc(sizeof(float) * (size_t)N * ldo);
        SWAX_ASSERT(want);
        for (size_t i = 0; i < (size_t)N * ldo; i++) want[i] = got[i] + res[i];
        DBuf d_res = dbuf(res, (size_t)N * ldo, 0);
        dset(d_out, NULL);
        rc = swax_cuda_gemv_bf16_add(d_out.p, ldo, d_inp.p, ldi, dw->w, N, Cc, OC, d_res.p, st);
        CHECKF(rc == 0, "gemv with a residual returned %d", rc);
        float *ga = dget(d_out);
        int same = 1;
        for (int i = 0; i < N && same; i++)
            same = !memcmp(ga + (size_t)i * ldo, want + (size_t)i * ldo, sizeof(float) * OC);
        CHECKF(same, "gemv + residual differs from gemv then an add: N=%d C=%d OC=%d", N, Cc, OC);
        CHECKF(padding_untouched(ga, N, OC, ldo), "gemv + residual wrote past OC");
        CHECKF(swax_cuda_gemv_bf16_add(d_out.p, ldo, d_inp.p, ldi, dw->w, N, Cc, OC, d_out.p, st) != 0,
               "a residual that is the output was taken");
        free(res), free(want), free(ga);
        dfree(d_res);
    }

    /* the last row alone: the same bits as in the batch */
    rc = swax_cuda_gemv_bf16(d_one.p, OC, d_inp.p + (size_t)(N - 1) * ldi, ldi, dw->w, 1, Cc, OC, st);
    CHECKF(rc == 0, "single-row call returned %d", rc);
    float *one = dget(d_one);
    CHECKF(!memcmp(one, got + (size_t)(N - 1) * ldo, sizeof(float) * OC),
           "row %d alone differs from the batch of %d: C=%d OC=%d", N - 1, N, Cc, OC);

    free(inp), free(ri), free(ref), free(got), free(gd), free(again), free(one);
    dfree(d_inp), dfree(d_out), dfree(d_one);
}

static void gemv_shape(int Cc, int OC) {
    static const int Ns[] = {1, 2, 3, 5, 8};
    float *w = urand((size_t)OC * Cc, -1, 1), *rw = bf16_rounded(w, Cc, OC, Cc);
    DWeights dw = dweights(rw, OC, Cc);
    for (size_t i = 0; i < sizeof Ns / sizeof Ns[0]; i++) {
        const int before = g_test_failed;
        gemv_case(&dw, rw, Ns[i], Cc, OC, (int)((i + (size_t)Cc + (size_t)OC) % 3));
        if (g_test_failed && !before) break;
    }
    free(w), free(rw);
    dweights_free(dw);
}

TEST(cuda_gemv_matches_cpu_product_of_rounded_operands) {
    swax_rng_seed(&rng, 131, 0);
    static const int Cs[] = {8, 64, 136, 2048, 4096};
    static const int OCs[] = {1, 7, 33, 6144};
    for (size_t i = 0; i < sizeof Cs / sizeof Cs[0]; i++)
        for (size_t j = 0; j < sizeof OCs / sizeof OCs[0]; j++) {
            gemv_shape(Cs[i], OCs[j]);
            if (g_test_failed) return;
        }
    /* the LM head's rows, with small C */
    for (size_t i = 0; i < 3; i++) {
        gemv_shape(Cs[i], 50304);
        if (g_test_failed) return;
    }
}

/* A call the kernel may refuse: it either returns nonzero with out untouched,
 * or returns 0 with the right product (ref: N x OC dense; out: ldo = OC). */
static void refused_or_right(int rc, DBuf d_out, const float *ref, int N, int OC, const char *what) {
    float *got = dget(d_out);
    if (rc != 0) {
        CHECKF(all_poison(got, (size_t)N * OC), "%s: returned %d but wrote the output", what, rc);
    } else {
        CHECK_REL(got, ref, (size_t)N * OC, 1e-5, "%s (ran)", what);
    }
    free(got);
}

TEST(cuda_gemv_refuses_what_it_cannot_do) {
    swax_rng_seed(&rng, 132, 0);
    void *st = swax_cuda_stream();
    const int Cc = 64, OC = 33;
    float *w = urand((size_t)OC * Cc, -1, 1), *rw = bf16_rounded(w, Cc, OC, Cc);
    DWeights dw = dweights(rw, OC, Cc);
    float *inp = urand((size_t)9 * Cc, -2, 2), *ri = bf16_rounded(inp, Cc, 9, Cc), *ref = nanbuf((size_t)9 * OC);
    C->matmul_fwd(ref, OC, ri, Cc, rw, 9, Cc, OC);
    DBuf d_inp = dbuf(inp, (size_t)9 * Cc, 0), d_out = dbuf(NULL, (size_t)9 * OC, 0);

    /* N = 9: nonzero, nothing written */
    int rc = swax_cuda_gemv_bf16(d_out.p, OC, d_inp.p, Cc, dw.w, 9, Cc, OC, st);
    CHECKF(rc != 0, "N=9 returned 0");
    float *got = dget(d_out);
    CHECKF(all_poison(got, (size_t)9 * OC), "N=9 wrote the output");
    free(got);
    /* nor N = 0, nor strides below the widths */
    CHECKF(swax_cuda_gemv_bf16(d_out.p, OC, d_inp.p, Cc, dw.w, 0, Cc, OC, st) != 0, "N=0 returned 0");
    CHECKF(swax_cuda_gemv_bf16(d_out.p, OC, d_inp.p, Cc - 1, dw.w, 1, Cc, OC, st) != 0, "ldi < C returned 0");
    CHECKF(swax_cuda_gemv_bf16(d_out.p, OC - 1, d_inp.p, Cc, dw.w, 1, Cc, OC, st) != 0, "ldo < OC returned 0");
    got = dget(d_out);
    CHECKF(all_poison(got, (size_t)9 * OC), "a refused call wrote the output");
    free(got);

    /* weights one bf16 off 16-byte alignment: refused or right */
    for (int n = 1; n <= 8; n += 7) {
        dset(d_out, NULL);
        rc = swax_cuda_gemv_bf16(d_out.p, OC, d_inp.p, Cc, dw.mis, n, Cc, OC, st);
        refused_or_right(rc, d_out, ref, n, OC, n == 1 ? "misaligned w, N=1" : "misaligned w, N=8");
        if (g_test_failed) return;
    }

    /* C % 8 != 0 (C = 12): refused or right */
    {
        const int C12 = 12;
        float *w12 = urand((size_t)OC * C12, -1, 1), *rw12 = bf16_rounded(w12, C12, OC, C12);
        DWeights dw12 = dweights(rw12, OC, C12);
        float *ri12 = bf16_rounded(inp, C12, 2, C12), *ref12 = nanbuf((size_t)2 * OC);
        C->matmul_fwd(ref12, OC, ri12, C12, rw12, 2, C12, OC);
        dset(d_out, NULL);
        rc = swax_cuda_gemv_bf16(d_out.p, OC, d_inp.p, C12, dw12.w, 2, C12, OC, st);
        refused_or_right(rc, d_out, ref12, 2, OC, "C=12");
        free(w12), free(rw12), free(ri12), free(ref12);
        dweights_free(dw12);
        if (g_test_failed) return;
    }
    free(w), free(rw), free(inp), free(ri), free(ref);
    dweights_free(dw);
    dfree(d_inp), dfree(d_out);
}

/* Timing print: the decode shapes of the 1.4b preset's widest product and
 * its LM head, the device time of one call (median, L2 defeated by rotating
 * weight copies) against the device-to-device copy bandwidth. Passes when the
 * timing ran; the figures are for reading. */
/* SWAX_PDL=1 (programmatic dependent launch): a product may start while the
 * kernel before it runs, and must still read that kernel's output. Each
 * round adds a delta to a 32 MB buffer whose last N x C floats are the input
 * (written late in the add), then runs the product on them, then a second
 * product on the first one's output: against the CPU on the same operands. */
TEST(cuda_gemv_pdl_reads_what_the_previous_kernel_wrote) {
    setenv("SWAX_PDL", "1", 1);
    swax_rng_seed(&rng, 137, 0);
    enum { N = 2, CC = 2048, K = 6 };
    const size_t big = (size_t)8 << 20, nx = (size_t)N * CC, no = (size_t)N * CC;
    float *w = urand((size_t)CC * CC, -1, 1), *rw = bf16_rounded(w, CC, CC, CC);
    DWeights dw = dweights(rw, CC, CC);
    float *h = urand(big, -1, 1), *hd = urand(big, -0.5f, 0.5f);
    DBuf d_buf = dbuf(h, big, 0), d_delta = dbuf(hd, big, 0), d_o1 = dbuf(NULL, K * no, 0), d_o2 = dbuf(NULL, K * no, 0);
    float *x = d_buf.p + big - nx;
    void *st = swax_cuda_stream();
    for (int k = 0; k < K; k++) {
        swax_cuda_add(d_buf.p, d_delta.p, big);
        CHECK(swax_cuda_gemv_bf16(d_o1.p + (size_t)k * no, CC, x, CC, dw.w, N, CC, CC, st) == 0);
        CHECK(swax_cuda_gemv_bf16(d_o2.p + (size_t)k * no, CC, d_o1.p + (size_t)k * no, CC, dw.w, N, CC, CC, st) == 0);
    }
    float *o1 = dget(d_o1), *o2 = dget(d_o2), *xk = malloc(sizeof(float) * nx), *ref = malloc(sizeof(float) * no);
    SWAX_ASSERT(xk && ref);
    memcpy(xk, h + big - nx, sizeof(float) * nx);
    for (int k = 0; k < K && !g_test_failed; k++) {
        for (size_t i = 0; i < nx; i++) xk[i] += hd[big - nx + i]; /* the add kernel's one fp32 add a round */
        float *rx = bf16_rounded(xk, CC, N, CC);
        C->matmul_fwd(ref, CC, rx, CC, rw, N, CC, CC);
        CHECK_REL(o1 + (size_t)k * no, ref, no, 1e-5, "PDL round %d: the product of the add's output", k);
        float *r1 = bf16_rounded(o1 + (size_t)k * no, CC, N, CC);
        C->matmul_fwd(ref, CC, r1, CC, rw, N, CC, CC);
        CHECK_REL(o2 + (size_t)k * no, ref, no, 1e-5, "PDL round %d: the product of the product's output", k);
        free(rx), free(r1);
    }
    unsetenv("SWAX_PDL");
    free(w), free(rw), free(h), free(hd), free(o1), free(o2), free(xk), free(ref);
    dweights_free(dw);
    dfree(d_buf), dfree(d_delta), dfree(d_o1), dfree(d_o2);
}

/* The input transforms of decode's fused launches (swax_cuda_gemv_bf16_in):
 * SwiGLU in the staging gives the bits of the swiglu kernel then the gemv
 * (the same expressions), with and without a residual; RMSNorm in the staging
 * against the rmsnorm kernel then the gemv and against the CPU: only the sum
 * of squares is in another order, so a few operands may round the other way
 * (bound 2e-3 relative). A mode it does not know, or RMSNorm without weights,
 * is refused. */
static void gemv_in_case(int N, int Cc, int OC) {
    void *st = swax_cuda_stream();
    float *w = urand((size_t)OC * Cc, -1, 1), *rw = bf16_rounded(w, Cc, OC, Cc);
    DWeights dw = dweights(rw, OC, Cc);
    const size_t no = (size_t)N * OC;
    /* SwiGLU: rows of gate, up */
    {
        float *gu = urand((size_t)N * 2 * Cc, -3, 3), *res = urand(no, -2, 2);
        DBuf d_gu = dbuf(gu, (size_t)N * 2 * Cc, 0), d_h = dbuf(NULL, (size_t)N * Cc, 0), d_res = dbuf(res, no, 0);
        DBuf d_ref = dbuf(NULL, no, 0), d_got = dbuf(NULL, no, 0);
        G->swiglu_fwd(d_h.p, d_gu.p, N, Cc);
        for (int r = 0; r < 2; r++) {
            const float *rp = r ? d_res.p : NULL;
            CHECK(swax_cuda_gemv_bf16_add(d_ref.p, OC, d_h.p, Cc, dw.w, N, Cc, OC, rp, st) == 0);
            CHECK(swax_cuda_gemv_bf16_in(d_got.p, OC, d_gu.p, 2L * Cc, dw.w, N, Cc, OC, rp, GEMV_IN_SWIGLU, NULL, 0.0f,
                                         st) == 0);
            float *ref = dget(d_ref), *got = dget(d_got);
            CHECKF(!memcmp(ref, got, sizeof(float) * no),
                   "SwiGLU in the staging differs from the swiglu kernel then the gemv: N=%d C=%d OC=%d resid %d", N,
                   Cc, OC, r);
            free(ref), free(got);
        }
        CHECKF(swax_cuda_gemv_bf16_in(d_got.p, OC, d_gu.p, Cc, dw.w, N, Cc, OC, NULL, GEMV_IN_SWIGLU, NULL, 0.0f, st) !=
                   0,
               "a SwiGLU input with rows narrower than 2C was taken");
        free(gu), free(res);
        dfree(d_gu), dfree(d_h), dfree(d_res), dfree(d_ref), dfree(d_got);
    }
    /* RMSNorm */
    {
        const float eps = 1e-6f;
        float *x = urand((size_t)N * Cc, -2, 2), *nw = urand((size_t)Cc, 0.5f, 1.5f);
        float *xn = nanbuf((size_t)N * Cc), *rstd = nanbuf((size_t)N), *ref = nanbuf(no);
        C->rmsnorm_fwd(xn, rstd, x, nw, N, Cc, eps);
        float *rxn = bf16_rounded(xn, Cc, N, Cc);
        C->matmul_fwd(ref, OC, rxn, Cc, rw, N, Cc, OC);
        DBuf d_x = dbuf(x, (size_t)N * Cc, 0), d_nw = dbuf(nw, (size_t)Cc, 0), d_xn = dbuf(NULL, (size_t)N * Cc, 0);
        DBuf d_rs = dbuf(NULL, (size_t)N, 0), d_ref = dbuf(NULL, no, 0), d_got = dbuf(NULL, no, 0);
        G->rmsnorm_fwd(d_xn.p, d_rs.p, d_x.p, d_nw.p, N, Cc, eps);
        CHECK(swax_cuda_gemv_bf16(d_ref.p, OC, d_xn.p, Cc, dw.w, N, Cc, OC, st) == 0);
        CHECK(swax_cuda_gemv_bf16_in(d_got.p, OC, d_x.p, Cc, dw.w, N, Cc, OC, NULL, GEMV_IN_RMSNORM, d_nw.p, eps, st) ==
              0);
        float *gref = dget(d_ref), *got = dget(d_got);
        CHECK_REL(got, gref, no, 2e-3, "RMSNorm in the staging vs the rmsnorm kernel then the gemv: N=%d C=%d OC=%d", N,
                  Cc, OC);
        CHECK_REL(got, ref, no, 2e-3, "RMSNorm in the staging vs the CPU: N=%d C=%d OC=%d", N, Cc, OC);
        CHECKF(swax_cuda_gemv_bf16_in(d_got.p, OC, d_x.p, Cc, dw.w, N, Cc, OC, NULL, GEMV_IN_RMSNORM, NULL, eps, st) !=
                   0,
               "RMSNorm without weights was taken");
        CHECKF(swax_cuda_gemv_bf16_in(d_got.p, OC, d_x.p, Cc, dw.w, N, Cc, OC, NULL, 7, NULL, eps, st) != 0,
               "an unknown input transform was taken");
        free(x), free(nw), free(xn), free(rstd), free(ref), free(rxn), free(gref), free(got);
        dfree(d_x), dfree(d_nw), dfree(d_xn), dfree(d_rs), dfree(d_ref), dfree(d_got);
    }
    free(w), free(rw);
    dweights_free(dw);
}

TEST(cuda_gemv_input_transforms_match_the_kernels_they_replace) {
    swax_rng_seed(&rng, 139, 0);
    static const int shapes[][3] = {{1, 64, 33}, {3, 136, 7}, {8, 2048, 6144}, {1, 2048, 11008}, {2, 5504, 2048}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && !g_test_failed; i++)
        gemv_in_case(shapes[i][0], shapes[i][1], shapes[i][2]);
}

TEST(cuda_gemv_bandwidth) {
    const long copy_bytes = 256L << 20;
    const double copy_us = swax_cuda_copy_bench_us(copy_bytes, 20);
    CHECKF(copy_us > 0, "copy timing failed");
    const double copy_gbs = 2.0 * (double)copy_bytes / copy_us / 1e3; /* read + write */
    printf("  copy (device to device, %ld MiB): %.1f us, %.0f GB/s read+write\n", copy_bytes >> 20, copy_us, copy_gbs);
    static const int shapes[][3] = {{1, 2048, 6144}, {8, 2048, 6144}, {1, 2048, 50304}, {8, 2048, 50304}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int N = shapes[i][0], Cc = shapes[i][1], OC = shapes[i][2];
        const double us = swax_cuda_gemv_bench_us(N, Cc, OC, 200);
        CHECKF(us > 0, "gemv timing failed N=%d C=%d OC=%d", N, Cc, OC);
        const double gbs = 2.0 * (double)Cc * OC / us / 1e3;
        printf("  gemv N=%d C=%d OC=%d: %.2f us, %.0f GB/s of weights (%.0f%% of copy)\n", N, Cc, OC, us, gbs,
               100.0 * gbs / copy_gbs);
    }
    fflush(stdout);
}

RUN_CUDA_TESTS()
