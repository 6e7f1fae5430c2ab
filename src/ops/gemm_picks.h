/* gemm_picks.h — SWAX_GEMM_PICKS files: per product shape, which of cuBLASLt's
 * heuristic candidates the CUDA backend uses (docs/cuda.md). Plain C so that
 * the CPU tests read it too. */
#ifndef SWAX_GEMM_PICKS_H
#define SWAX_GEMM_PICKS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int ta, tb, m, n, k, accumulate, index;
    int out16; /* the product's output in bf16 (a bf16-stored activation), else fp32 */
} SwaxGemmPick;

/* Reads PATH: blank lines and lines starting with '#' are skipped; every other
 * line is "ta tb m n k accumulate index [out]" with ta, tb, accumulate 0 or 1,
 * m, n, k >= 1, index in [0, max_index] and out "f32" (the default) or "bf16"
 * (the output type: a plan of its own). Anything else is an error naming
 * PATH:LINE (SWAX_E_INPUT; SWAX_E_IO when it cannot be opened). *out is
 * malloc'ed (NULL when n is 0). */
int swax_gemm_picks_read(const char *path, int max_index, SwaxGemmPick **out, int *n);

/* The index picked for a shape, 0 (the heuristic's first) when none. */
int swax_gemm_pick_find(const SwaxGemmPick *picks, int n_picks, int ta, int tb, int m, int n, int k, int accumulate,
                        int out16);

#ifdef __cplusplus
}
#endif

#endif
