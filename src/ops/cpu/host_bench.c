/* host_bench.c — the host's own copy bandwidth and fp32 product rate at a
 * thread count (host_bench.h). */
#include "ops/cpu/host_bench.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/ops.h"

double swax_host_copy_gbps(int threads, int reps) {
    const size_t n = (size_t)256 << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        free(a), free(b);
        return 0;
    }
    const int nt_req = threads > 0 ? threads : omp_get_num_procs();
#pragma omp parallel num_threads(nt_req) /* first touch by the threads that copy */
    {
        const int nt = omp_get_num_threads(), id = omp_get_thread_num();
        const size_t lo = n / nt * id, hi = id == nt - 1 ? n : n / nt * (id + 1);
        memset(a + lo, 1, hi - lo);
        memset(b + lo, 2, hi - lo);
    }
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        const double t0 = swax_time_sec();
#pragma omp parallel num_threads(nt_req)
        {
            const int nt = omp_get_num_threads(), id = omp_get_thread_num();
            const size_t lo = n / nt * id, hi = id == nt - 1 ? n : n / nt * (id + 1);
            memcpy(b + lo, a + lo, hi - lo);
        }
        const double dt = swax_time_sec() - t0;
        if (dt < best) best = dt;
    }
    volatile char sink = b[n / 2];
    (void)sink;
    free(a), free(b);
    return 2.0 * (double)n / best / 1e9;
}

double swax_host_sgemm_gflops(void) {
    enum { S = 2048 };
    const size_t n = (size_t)S * S;
    float *a = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * n);
    if (!a || !w || !o) {
        free(a), free(w), free(o);
        return 0;
    }
    SwaxRng r;
    swax_rng_seed(&r, 11, 0);
    for (size_t i = 0; i < n; i++) a[i] = (float)swax_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < n; i++) w[i] = (float)swax_rng_uniform(&r) - 0.5f;
    const SwaxOps *ops = swax_ops_cpu();
    double best = 1e30;
    for (int rep = 0; rep < 4; rep++) { /* rep 0 warms up (library load, thread team, pages) */
        const double t0 = swax_time_sec();
        ops->matmul_fwd(o, S, a, S, w, S, S, S);
        const double dt = swax_time_sec() - t0;
        if (rep > 0 && dt < best) best = dt;
    }
    volatile float sink = o[n / 2];
    (void)sink;
    free(a), free(w), free(o);
    return 2.0 * (double)S * S * S / best / 1e9;
}
