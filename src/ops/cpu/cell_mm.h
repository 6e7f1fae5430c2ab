/* cell_mm.h — the chunkwise cells' small matrix products (mlstm_cell_impl.inc,
 * gdn_cell_impl.inc): row-major C = alpha·op(A)·op(B) + beta·C through BLAS,
 * op(A) M×K, op(B) K×N, ta / tb nonzero for a transposed operand. GEMM is
 * cblas_sgemm or cblas_dgemm, defined by the file that instantiates a cell for
 * its REAL. Called inside the caller's OpenMP region over (sequence, head),
 * where OpenBLAS and BLIS run one thread. */
#ifndef SWAX_CELL_MM_H
#define SWAX_CELL_MM_H

#include <cblas.h>

#define MM(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)                                        \
    GEMM(CblasRowMajor, (ta) ? CblasTrans : CblasNoTrans, (tb) ? CblasTrans : CblasNoTrans, (M), (N), (K), \
         (alpha), (A), (lda), (B), (ldb), (beta), (C), (ldc))

#endif
