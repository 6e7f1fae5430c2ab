/* test_cpu_bf16.c — the "cpu-bf16" table's products (oneDNN, src/ops/cpu/gemm_bf16.c) against
 * independent references on fresh random inputs: swax_bf16_gemm against a float64 product of the
 * bf16-rounded operands (every transpose, awkward sizes, padded strides, beta 0 and 1, K = 0),
 * and the table's matmul slots against OpenBLAS on rounded operands (test_bf16.h). The model on
 * cpu-bf16 is tested in test_model.c. Where oneDNN has only its reference bf16 product the tests
 * run it anyway (SWAX_BF16_ALLOW_REF: slow, the same answers); where it has none (a CPU without
 * AVX-512) they check that the refusal says so and names --device cpu. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/common.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/ops.h"
#include "test.h"
#include "test_bf16.h"

static SwaxRng rng;

static float *urand(size_t n, float lo, float hi) {
    float *x = malloc(sizeof(float) * n + 4);
    SWAX_ASSERT(x);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)swax_rng_uniform(&rng);
    return x;
}

/* 1: oneDNN has a bf16 product here; 0: it has none for this CPU (no AVX-512), and the refusal
 * names the way out (what a user without one sees is then what is checked); -1: anything else */
static int init_ok(void) {
    setenv("SWAX_BF16_ALLOW_REF", "1", 1);
    if (!swax_bf16_gemm_init()) return 1;
    const char *e = swax_last_error();
    printf("  no bf16 product here: %s\n", e);
    return strstr(e, "for this CPU") && strstr(e, "use --device cpu") ? 0 : -1;
}

TEST(gemm_matches_a_double_product_of_rounded_operands) {
    const int ok = init_ok();
    CHECK(ok >= 0);
    if (!ok) return;
    swax_rng_seed(&rng, 11, 0);
    printf("  oneDNN implementation: %s\n", swax_bf16_gemm_impl());
    static const int sizes[][3] = {{1, 1, 1}, {7, 33, 130}, {64, 17, 5}, {130, 96, 257}, {3, 200, 64}};
    int cases = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    const int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
                    /* stored shapes with padded row strides */
                    const long ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
                    const long lda = ac + 3, ldb = bc + 1, ldc = N + 5;
                    float *A = urand((size_t)ar * lda, -2, 2), *B = urand((size_t)br * ldb, -2, 2);
                    float *Cm = urand((size_t)M * ldc, -1, 1);
                    float *C0 = malloc(sizeof(float) * (size_t)M * ldc);
                    memcpy(C0, Cm, sizeof(float) * (size_t)M * ldc);
                    swax_bf16_gemm(ta, tb, M, N, K, A, lda, B, ldb, (float)beta, Cm, ldc);
                    double worst = 0;
                    int pad_ok = 1;
                    for (int i = 0; i < M; i++) {
                        for (int j = 0; j < N; j++) {
                            double acc = 0, mag = 0;
                            for (int k = 0; k < K; k++) {
                                const double a = bf16_round(ta ? A[(long)k * lda + i] : A[(long)i * lda + k]);
                                const double b = bf16_round(tb ? B[(long)j * ldb + k] : B[(long)k * ldb + j]);
                                acc += a * b, mag += fabs(a * b);
                            }
                            if (beta) acc += C0[(long)i * ldc + j], mag += fabs(C0[(long)i * ldc + j]);
                            /* fp32 accumulation: a few ulps of the magnitude per term, at most */
                            const double e = fabs(Cm[(long)i * ldc + j] - acc) / (mag * 1e-6 * (K + 2) + 1e-30);
                            if (!(e <= worst)) worst = e;
                        }
                        for (long j = N; j < ldc; j++) pad_ok &= Cm[(long)i * ldc + j] == C0[(long)i * ldc + j];
                    }
                    free(A), free(B), free(Cm), free(C0);
                    CHECKF(worst <= 1.0, "M %d N %d K %d ta %d tb %d beta %d: error %.3g of the bound", M, N, K,
                           ta, tb, beta, worst);
                    CHECKF(pad_ok, "M %d N %d K %d ta %d tb %d: wrote past N in a row of C", M, N, K, ta, tb);
                    cases++;
                }
    /* K = 0: beta 0 clears C, beta 1 keeps it */
    float c[6] = {1, 2, 3, 4, 5, 6}, a = 1, b = 1;
    swax_bf16_gemm(0, 0, 2, 2, 0, &a, 1, &b, 1, 1.0f, c, 3);
    CHECK(c[0] == 1 && c[4] == 5);
    swax_bf16_gemm(0, 0, 2, 2, 0, &a, 1, &b, 1, 0.0f, c, 3);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 3 && c[3] == 0 && c[4] == 0 && c[5] == 6);
    printf("  %d products within the fp32-accumulation bound\n", cases);
}

TEST(rounding_is_nearest_even_and_keeps_nan_and_inf) {
    float x[6] = {1.0f + 1.0f / 256, 1.0f + 3.0f / 256, 1.0f + 1.0f / 512, INFINITY, NAN, -0.0f};
    uint32_t nan_low = 0x7f800001u; /* a NaN whose payload is below bf16's bits */
    float y[7];
    memcpy(y, x, sizeof x);
    memcpy(&y[6], &nan_low, 4);
    swax_bf16_round(y, 7);
    CHECK(y[0] == 1.0f);                 /* a tie: to the even neighbour */
    CHECK(y[1] == 1.0f + 4.0f / 256);    /* a tie: up, to the even one */
    CHECK(y[2] == 1.0f);                 /* below half an ulp */
    CHECK(isinf(y[3]) && isnan(y[4]) && isnan(y[6]));
    CHECK(y[5] == 0.0f && signbit(y[5]));
    for (int i = 0; i < 5; i++) CHECK(y[i] == bf16_round(x[i]) || (isnan(y[i]) && isnan(x[i])));
}

TEST(table_products_match_openblas_on_rounded_operands) {
    const int ok = init_ok();
    CHECK(ok >= 0);
    const SwaxOps *t = swax_ops_cpu_bf16();
    if (!ok) { /* the table is refused with the same message */
        CHECK(!t && strstr(swax_last_error(), "use --device cpu"));
        return;
    }
    swax_rng_seed(&rng, 12, 0);
    CHECK(t && !strcmp(t->name, "cpu-bf16") && !t->is_device);
    static const int sizes[][3] = {{1, 8, 3}, {37, 65, 129}, {256, 96, 48}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int N = sizes[s][0], Cc = sizes[s][1], OC = sizes[s][2];
        const long ldi = Cc + 2, ldo = OC + 3;
        float *inp = urand((size_t)N * ldi, -2, 2), *w = urand((size_t)OC * Cc, -1, 1);
        float *dout = urand((size_t)N * ldo, -1, 1);
        float *o1 = urand((size_t)N * ldo, 0, 1), *o2 = malloc(sizeof(float) * (size_t)N * ldo);
        memcpy(o2, o1, sizeof(float) * (size_t)N * ldo);
        t->matmul_fwd(o1, ldo, inp, ldi, w, N, Cc, OC);
        test_bf16emu_matmul_fwd(o2, ldo, inp, ldi, w, N, Cc, OC);
        CHECK_CLOSE(o1, o2, (size_t)N * ldo, 1e-5, 1e-5);
        for (int acc = 0; acc < 2; acc++) {
            float *di1 = urand((size_t)N * ldi, -1, 1), *dw1 = urand((size_t)OC * Cc, -1, 1);
            float *di2 = malloc(sizeof(float) * (size_t)N * ldi), *dw2 = malloc(sizeof(float) * (size_t)OC * Cc);
            memcpy(di2, di1, sizeof(float) * (size_t)N * ldi), memcpy(dw2, dw1, sizeof(float) * (size_t)OC * Cc);
            t->matmul_bwd(di1, ldi, dw1, dout, ldo, inp, ldi, w, N, Cc, OC, acc);
            test_bf16emu_matmul_bwd(di2, ldi, dw2, dout, ldo, inp, ldi, w, N, Cc, OC, acc);
            CHECK_CLOSE(di1, di2, (size_t)N * ldi, 1e-5, 1e-5);
            CHECK_CLOSE(dw1, dw2, (size_t)OC * Cc, 1e-5, 1e-5);
            /* dinp NULL: only dw */
            t->matmul_bwd(NULL, ldi, dw1, dout, ldo, inp, ldi, w, N, Cc, OC, acc);
            test_bf16emu_matmul_bwd(NULL, ldi, dw2, dout, ldo, inp, ldi, w, N, Cc, OC, acc);
            CHECK_CLOSE(dw1, dw2, (size_t)OC * Cc, 1e-5, 1e-5);
            free(di1), free(dw1), free(di2), free(dw2);
        }
        free(inp), free(w), free(dout), free(o1), free(o2);
    }
}

/* reuse_a: the previous call's packing of A is used only for the same stored matrix */
TEST(reused_packing_only_for_the_same_matrix) {
    const int ok = init_ok();
    CHECK(ok >= 0);
    if (!ok) return;
    swax_rng_seed(&rng, 14, 0);
    const int M = 20, N = 9, K = 33;
    float *A = urand((size_t)M * K, -1, 1), *A2 = urand((size_t)M * K, -1, 1), *B = urand((size_t)K * N, -1, 1);
    float *c1 = malloc(sizeof(float) * M * N), *c2 = malloc(sizeof(float) * M * N);
    float *ct = malloc(sizeof(float) * K * K), *ct2 = malloc(sizeof(float) * K * K);
    swax_bf16_gemm(0, 0, M, N, K, A2, K, B, N, 0.0f, c1, N);       /* reference for A2 */
    swax_bf16_gemm(0, 0, M, N, K, A, K, B, N, 0.0f, c2, N);        /* packs A */
    swax_bf16_gemm_ex(0, 0, M, N, K, A2, K, B, N, 0.0f, c2, N, 1); /* another matrix: must pack A2 */
    CHECK(memcmp(c1, c2, sizeof(float) * M * N) == 0);
    /* the same stored A read transposed (Aᵀ A, (K, K)): reused, the same bits as packed afresh */
    swax_bf16_gemm(1, 0, K, K, M, A2, K, A, K, 0.0f, ct, K);
    swax_bf16_gemm(0, 0, M, N, K, A2, K, B, N, 0.0f, c2, N);
    swax_bf16_gemm_ex(1, 0, K, K, M, A2, K, A, K, 0.0f, ct2, K, 1);
    CHECK(memcmp(ct, ct2, sizeof(float) * K * K) == 0);
    /* a changed stride is another matrix */
    swax_bf16_gemm(0, 0, M / 2, N, K, A2, 2L * K, B, N, 0.0f, c1, N);
    swax_bf16_gemm(0, 0, M, N, K, A2, K, B, N, 0.0f, c2, N);
    swax_bf16_gemm_ex(0, 0, M / 2, N, K, A2, 2L * K, B, N, 0.0f, c2, N, 1);
    CHECK(memcmp(c1, c2, sizeof(float) * (M / 2) * N) == 0);
    free(A), free(A2), free(B), free(c1), free(c2), free(ct), free(ct2);
}

/* the fp32 switch SWAX_SGEMM=onednn: oneDNN's sgemm against OpenBLAS's, every transpose, beta 0/1 */
TEST(onednn_sgemm_matches_openblas) {
    if (swax_onednn_sgemm_init()) {
        CHECKF(0, "oneDNN's sgemm: %s", swax_last_error());
    }
    swax_rng_seed(&rng, 13, 0);
    const int M = 37, N = 70, K = 129;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int beta = 0; beta < 2; beta++) {
                const long lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
                float *A = urand((size_t)(ta ? K : M) * lda, -1, 1), *B = urand((size_t)(tb ? N : K) * ldb, -1, 1);
                float *c1 = urand((size_t)M * ldc, -1, 1), *c2 = malloc(sizeof(float) * (size_t)M * ldc);
                memcpy(c2, c1, sizeof(float) * (size_t)M * ldc);
                swax_onednn_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, (float)beta, c1, ldc);
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                            1.0f, A, (int)lda, B, (int)ldb, (float)beta, c2, (int)ldc);
                CHECK_CLOSE(c1, c2, (size_t)M * ldc, 1e-5, 1e-5);
                free(A), free(B), free(c1), free(c2);
            }
}

RUN_TESTS()
