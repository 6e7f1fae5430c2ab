/* blas_core.h — which OpenBLAS kernels run, and a better choice where OpenBLAS's run-time CPU
 * detection falls back to old ones (a VM that hides its CPU model: measured on the GPU machine's
 * 16-core "Intel(R) Xeon(R) Processor", where swax trained 4.5x slower on one thread than the
 * same binary elsewhere, and 3x slower than with BLIS at 8 threads). */
#ifndef SWAX_BLAS_CORE_H
#define SWAX_BLAS_CORE_H

/* The kernel set OpenBLAS chose ("Haswell", "SkylakeX", "Prescott", ...). */
const char *swax_blas_corename(void);

/* The OPENBLAS_CORETYPE to use instead of `picked` on a CPU with (avx2, fma, avx512: F, BW, DQ
 * and VL) as given, or NULL where picked is good for that CPU (a kernel set with AVX2/FMA or
 * AVX-512 products), the CPU has no AVX2 and FMA, or picked is unknown to this list. */
const char *swax_blas_better_core(const char *picked, int avx2_fma, int avx512);

/* The same for this process, with *picked set to OpenBLAS's pick: NULL where OPENBLAS_CORETYPE
 * is set (the user's choice) or nothing is to gain. For tests, SWAX_TEST_BLAS_CORENAME stands in
 * for OpenBLAS's pick. */
const char *swax_blas_core_fix(const char **picked);

#endif
