/* test_bf16.h — bf16 rounding for the tests of the bf16 tables ("cuda", "cpu-bf16"): the
 * yardstick of a bf16 product is the fp32 CPU product of the operands rounded to bf16. */
#ifndef SWAX_TEST_BF16_H
#define SWAX_TEST_BF16_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/ops.h"

/* float -> bf16 -> float, round to nearest even (Inf and NaN unchanged): what
 * the bf16 tables do to every matrix-product operand. */
static inline float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return x;
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* dense bf16-rounded copy (malloc) of rows x cols of x (row stride ld) */
static inline float *bf16_rounded(const float *x, long ld, int rows, int cols) {
    float *r = malloc(sizeof(float) * (size_t)rows * cols + 4);
    SWAX_ASSERT(r);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) r[(size_t)i * cols + j] = bf16_round(x[(size_t)i * ld + j]);
    return r;
}

/* The CPU table's matmul_fwd / matmul_bwd on bf16-rounded copies of their operands (ops.h's
 * signatures): a bf16 table's products without its own code. */
static inline void test_bf16emu_matmul_fwd(float *out, long ldo, const float *inp, long ldi, const float *w, int N,
                                           int Cc, int OC) {
    float *ri = bf16_rounded(inp, ldi, N, Cc), *rw = bf16_rounded(w, Cc, OC, Cc);
    swax_ops_cpu()->matmul_fwd(out, ldo, ri, Cc, rw, N, Cc, OC);
    free(ri), free(rw);
}

static inline void test_bf16emu_matmul_bwd(float *dinp, long lddi, float *dw, const float *dout, long lddo,
                                           const float *inp, long ldi, const float *w, int N, int Cc, int OC,
                                           int acc) {
    float *rg = bf16_rounded(dout, lddo, N, OC), *ri = bf16_rounded(inp, ldi, N, Cc);
    float *rw = bf16_rounded(w, Cc, OC, Cc);
    swax_ops_cpu()->matmul_bwd(dinp, lddi, dw, rg, OC, ri, Cc, rw, N, Cc, OC, acc);
    free(rg), free(ri), free(rw);
}

/* LeakSanitizer in a test that loads oneDNN (dlopen; the sanitizer build's library does not load it
 * otherwise, ops_cpu.c): GCC 12's LSan crashes scanning the dynamic TLS of a dlopen'd library's
 * threads ("Tracer caught signal 11" at exit), so TLS is not scanned here; what only TLS then holds
 * is glibc's per-thread dlerror state, suppressed by name. */
#if defined(__SANITIZE_ADDRESS__)
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "use_tls=0"; }
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:_dlerror_run\nleak:_dl_exception_create\n"; }
#endif

#endif
