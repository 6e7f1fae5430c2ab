/* test_cuda.h — helpers for the GPU tests: each CUDA slot is run beside the
 * CPU slot (the reference) on the same fresh random inputs, and compared.
 *
 * RUN_CUDA_TESTS() replaces RUN_TESTS(): without a usable CUDA device (a CPU
 * machine, or a build without nvcc) it prints why, then
 * "0 passed, 0 failed, N skipped", and exits 0. */
#ifndef SWAX_TEST_CUDA_H
#define SWAX_TEST_CUDA_H

#include <stdint.h>
#include <string.h>

#include "core/common.h"
#include "ops/ops.h"
#include "test.h"
#include "test_bf16.h"

static const SwaxOps *G; /* the CUDA table */
static const SwaxOps *C; /* the CPU table */

#define RUN_CUDA_TESTS()                                                                   \
    TEST_MAIN_DEFS                                                                         \
    int main(int argc, char **argv) {                                                      \
        C = swax_ops_cpu();                                                                \
        G = swax_ops_cuda();                                                               \
        if (!G) {                                                                          \
            printf("skipped: %s\n", swax_last_error());                                    \
            printf("0 passed, 0 failed, %d skipped\n", g_ntests);                          \
            return 0;                                                                      \
        }                                                                                  \
        return run_tests(argc, argv);                                                      \
    }

/* Device copy of n bytes of host data. */
static inline void *dev_from(const void *host, size_t bytes) {
    void *d = G->alloc(bytes ? bytes : 1);
    SWAX_ASSERT(d);
    if (bytes) G->to_device(d, host, bytes);
    return d;
}
/* Host copy (malloc) of n bytes of device data. */
static inline void *host_from(const void *dev, size_t bytes) {
    void *h = malloc(bytes ? bytes : 1);
    SWAX_ASSERT(h);
    if (bytes) G->to_host(h, dev, bytes);
    return h;
}
static inline float *host_copy(const float *src, size_t n) {
    float *h = malloc(sizeof(float) * (n ? n : 1));
    SWAX_ASSERT(h);
    memcpy(h, src, sizeof(float) * n);
    return h;
}

/* Uniform in [lo, hi) from a test RNG. */
static inline void fill_uniform(SwaxRng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)swax_rng_uniform(r);
}

/* Relative error of got against ref: max|got - ref| / max(max|ref|, tiny).
 * Any NaN or Inf in got that ref does not have gives +inf. */
static inline double rel_err(const float *got, const float *ref, size_t n) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        const double g = got[i], r = ref[i];
        if (isnan(g) != isnan(r) || (isinf(g) && !(isinf(r) && g == r))) return INFINITY;
        if (isnan(r) || isinf(r)) continue;
        const double d = fabs(g - r);
        if (d > md) md = d;
        if (fabs(r) > mr) mr = fabs(r);
    }
    return md / (mr > 1e-30 ? mr : 1e-30);
}

static inline double maxabs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

/* rel_err with the scale max|ref| raised to at least floor_: for a tensor that can be
 * analytically zero (rounding noise on both sides), measured against a related one's scale. */
static inline double rel_err_floor(const float *got, const float *ref, size_t n, double floor_) {
    const double mr = maxabs(ref, n);
    if (!(mr < floor_)) return rel_err(got, ref, n);
    return rel_err(got, ref, n) * (mr > 1e-30 ? mr : 1e-30) / floor_;
}

/* Checks got (host) against ref (host) with rel_err <= tol; names the case. */
#define CHECK_REL(got, ref, n, tol, ...)                                                   \
    do {                                                                                   \
        const double e_ = rel_err((got), (ref), (n));                                      \
        if (!(e_ <= (tol))) {                                                              \
            fprintf(stderr, "  FAIL %s:%d: %s vs %s rel err %.3g > %.3g: ", __FILE__,      \
                    __LINE__, #got, #ref, e_, (double)(tol));                              \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
            g_test_failed = 1;                                                             \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#endif
