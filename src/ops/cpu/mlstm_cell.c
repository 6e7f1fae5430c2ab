/* mlstm_cell.c — instantiates mlstm_cell_impl.inc for float and double. */
#include "ops/cpu/mlstm_cell.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/cpu/cell_mm.h"

int swax_mlstm_chunk_starts(int T, int L, const uint8_t *doc_start, int *starts) {
    if (L < 1) L = 64;
    int n = 0;
    for (int c0 = 0; c0 < T; n++) {
        if (starts) starts[n] = c0;
        int e = c0 + L < T ? c0 + L : T;
        if (doc_start)
            for (int t = c0 + 1; t < e; t++)
                if (doc_start[t]) {
                    e = t;
                    break;
                }
        c0 = e;
    }
    return n;
}

int swax_mlstm_num_chunks(int T, int L, const uint8_t *doc_start) {
    return swax_mlstm_chunk_starts(T, L, doc_start, NULL);
}

#define REAL float
#define SFX f
#define EXP expf
#define FABS fabsf
#define SQRT sqrtf
#define GEMM cblas_sgemm
#include "mlstm_cell_impl.inc"
#undef REAL
#undef SFX
#undef EXP
#undef FABS
#undef SQRT
#undef GEMM

#define REAL double
#define SFX d
#define EXP exp
#define FABS fabs
#define SQRT sqrt
#define GEMM cblas_dgemm
#include "mlstm_cell_impl.inc"
