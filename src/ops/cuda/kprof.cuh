/* kprof.cuh — SWAX_KERNEL_PROFILE=1: every launch made through KPROF_LAUNCH is
 * timed (CUDA events around it, then a synchronisation) and summed by kernel;
 * each file that includes this header keeps its own table and prints it to
 * stderr at exit under KPROF_TITLE (where a layer's time goes, kernel by
 * kernel, before tuning it). Not under stream capture (the events would be
 * captured); the synchronisations make the whole run slower, so the figures are
 * per kernel, not a step time. Define KPROF_TITLE before including. */
#ifndef SWAX_KPROF_CUH
#define SWAX_KPROF_CUH

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cuda/cuda_common.cuh"

#ifndef KPROF_TITLE
#error "define KPROF_TITLE (the table's first column heading) before including kprof.cuh"
#endif

namespace {

enum { KPROF_MAX = 32 };
struct KprofRow {
    const char *name;
    double ms;
    long calls;
};
KprofRow kprof_rows[KPROF_MAX];
cudaEvent_t kprof_ev[2];

void kprof_report(void) {
    double tot = 0;
    for (int i = 0; i < KPROF_MAX && kprof_rows[i].name; i++) tot += kprof_rows[i].ms;
    fprintf(stderr, "| %s | ms in all | calls | ms a call | share |\n|---|---:|---:|---:|---:|\n", KPROF_TITLE);
    for (int i = 0; i < KPROF_MAX && kprof_rows[i].name; i++)
        fprintf(stderr, "| %s | %.3f | %ld | %.4f | %.1f%% |\n", kprof_rows[i].name, kprof_rows[i].ms,
                kprof_rows[i].calls, kprof_rows[i].ms / (double)kprof_rows[i].calls,
                tot > 0 ? 100.0 * kprof_rows[i].ms / tot : 0.0);
}

/* 1 (and the start event recorded) when profiling */
int kprof_begin(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("SWAX_KERNEL_PROFILE");
        on = e && !strcmp(e, "1");
        if (on) {
            SWAX_CUDA_CHECK(cudaEventCreate(&kprof_ev[0]));
            SWAX_CUDA_CHECK(cudaEventCreate(&kprof_ev[1]));
            atexit(kprof_report);
        }
    }
    if (on) SWAX_CUDA_CHECK(cudaEventRecord(kprof_ev[0], swax_cuda_stream()));
    return on;
}

void kprof_end(const char *name) {
    float ms = 0;
    SWAX_CUDA_CHECK(cudaEventRecord(kprof_ev[1], swax_cuda_stream()));
    SWAX_CUDA_CHECK(cudaEventSynchronize(kprof_ev[1]));
    SWAX_CUDA_CHECK(cudaEventElapsedTime(&ms, kprof_ev[0], kprof_ev[1]));
    int i = 0;
    while (i < KPROF_MAX - 1 && kprof_rows[i].name && strcmp(kprof_rows[i].name, name)) i++;
    kprof_rows[i].name = name, kprof_rows[i].ms += ms, kprof_rows[i].calls++;
}

} // namespace

/* kern<<<grid, block, smem, the table's stream>>>(...), checked, and timed when profiling */
#define KPROF_LAUNCH(kern, grid, block, smem, ...)                                                                    \
    do {                                                                                                              \
        const int prof_ = kprof_begin();                                                                              \
        kern<<<(grid), (block), (smem), swax_cuda_stream()>>>(__VA_ARGS__);                                           \
        SWAX_CUDA_LAUNCHED();                                                                                         \
        if (prof_) kprof_end(#kern);                                                                                  \
    } while (0)

#endif
