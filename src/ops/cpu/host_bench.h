/* host_bench.h — what the host itself gives at a thread count, to read a
 * training thread sweep against (issue 9: is 1 -> 16 threads limited by swax or
 * by the machine's all-core clocks and memory?). Both run on the calling
 * thread's OpenMP team size (swax_set_threads). */
#ifndef SWAX_HOST_BENCH_H
#define SWAX_HOST_BENCH_H

/* memcpy of a 256 MiB buffer split over `threads` OpenMP threads (0: one per
 * processor), best of `reps`, as bytes read + written per second (GB/s);
 * 0 when the buffers cannot be allocated. */
double swax_host_copy_gbps(int threads, int reps);

/* The CPU ops table's fp32 product (oneDNN's sgemm or OpenBLAS, as training
 * uses it) on a 2048 x 2048 x 2048 problem at the current thread count, best
 * of 3 after a warm-up, in GFLOP/s; 0 when out of memory. */
double swax_host_sgemm_gflops(void);

#endif
