/* test_cuda_wgmma.c — the Hopper warpgroup products of src/ops/cuda/wgmma.cuh
 * (128-byte-swizzled tiles read through matrix descriptors, K-major and
 * MN-major, A from shared memory or from registers), run once each by
 * wgmma_probe.cu on fresh random operands, against the host product of the
 * same operands rounded to bf16 in double precision: only the fp32
 * accumulation differs, so rel_err <= 1e-5. Operands are distinct in every
 * element (no symmetric or repeated rows), so a wrong swizzle, a transposed
 * tile or a misplaced fragment shows as an error of order 1. The output
 * starts as NaN bytes: every element must be written. */
#include "test_cuda.h"

int swax_cuda_wgmma_probe(int form, const float *A, const float *B, float *D);

static SwaxRng rng;

/* D (M × N) = A (M × K) · op(B): form 2 B is K × N, else B is N × K (D = A·Bᵀ) */
static void host_product(int form, const float *A, const float *B, float *D, int M, int N, int K) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)bf16_round(A[i * K + k]) * bf16_round(form == 2 ? B[k * N + j] : B[j * K + k]);
            D[i * N + j] = (float)s;
        }
}

TEST(wgmma_products_match_host_products_of_rounded_operands) {
    static const struct {
        int M, N, K;
        const char *what;
    } forms[3] = {{64, 128, 64, "ss n128 (K-major A, B)"}, {64, 64, 64, "ss n64 (K-major A, B)"},
                  {64, 64, 128, "rs n64 (A in registers, B MN-major, transposed)"}};
    swax_rng_seed(&rng, 151, 0);
    for (int form = 0; form < 3; form++)
        for (int rep = 0; rep < 3; rep++) {
            const int M = forms[form].M, N = forms[form].N, K = forms[form].K;
            const size_t nb = (size_t)N * K;
            float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * nb);
            float *D = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
            SWAX_ASSERT(A && B && D && R);
            fill_uniform(&rng, A, (size_t)M * K, -1.f, 1.f);
            fill_uniform(&rng, B, nb, -1.f, 1.f);
            memset(D, 0xFF, sizeof(float) * M * N);
            CHECK(swax_cuda_wgmma_probe(form, A, B, D) == 0);
            host_product(form, A, B, R, M, N, K);
            CHECK_REL(D, R, (size_t)M * N, 1e-5, "form %d (%s), rep %d", form, forms[form].what, rep);
            free(A), free(B), free(D), free(R);
        }
    CHECK(swax_cuda_wgmma_probe(3, NULL, NULL, NULL) == -1);
}

RUN_CUDA_TESTS()
