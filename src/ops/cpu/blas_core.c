/* blas_core.c — see blas_core.h */
#include "ops/cpu/blas_core.h"

#include <cblas.h>
#include <stdlib.h>
#include <strings.h>

const char *swax_blas_corename(void) {
    const char *n = openblas_get_corename();
    return n ? n : "unknown";
}

const char *swax_blas_better_core(const char *picked, int avx2_fma, int avx512) {
    /* OpenBLAS 0.3.x x86-64 kernel sets without AVX2 + FMA products (SSE only, or AVX without
     * FMA); the others (Haswell, Zen, SkylakeX, Cooperlake, SapphireRapids, Excavator) and names
     * not listed here are left alone */
    static const char *const weak[] = {"unknown",  "Katmai",  "Coppermine", "Northwood", "Prescott",
                                       "Banias",   "Atom",    "Core2",      "Penryn",    "Dunnington",
                                       "Nehalem",  "Athlon",  "Opteron",    "Opteron_SSE3", "Barcelona",
                                       "Nano",     "Sandybridge", "Bobcat", "Bulldozer", "Piledriver",
                                       "Steamroller"};
    if (!picked || !avx2_fma) return NULL;
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++)
        if (!strcasecmp(picked, weak[i])) return avx512 ? "SkylakeX" : "Haswell";
    return NULL;
}

const char *swax_blas_core_fix(const char **picked) {
    if (getenv("OPENBLAS_CORETYPE")) return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    const int avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    const char *t = getenv("SWAX_TEST_BLAS_CORENAME"); /* tests: stands in for OpenBLAS's pick */
    *picked = t && *t ? t : swax_blas_corename();
    return swax_blas_better_core(*picked, avx2_fma, avx512);
#else
    return NULL;
#endif
}
