/* dist_nocuda.c — the communicator of dist.h in a build without the CUDA
 * backend (CUDA=0, no nvcc, the sanitizer build): every entry says so. The
 * Makefile leaves this file out of CUDA builds (dist_nccl.cu takes over). */
#include "core/common.h"
#include "dist/dist.h"

static int no_cuda(void) {
    return swax_error(SWAX_E_USAGE, "multi-GPU training needs the CUDA backend and NCCL: this swax was built "
                                    "without CUDA (no nvcc found, or CUDA=0); rebuild with `make CUDA=1`");
}

int swax_nccl_open(const char *lib) {
    (void)lib;
    return no_cuda();
}
int swax_nccl_unique_id(unsigned char *id) {
    (void)id;
    return no_cuda();
}
int swax_dist_pick_device(int local_rank) {
    (void)local_rank;
    return no_cuda();
}
int swax_comm_create(SwaxComm **out, int rank, int world, const unsigned char *id, double timeout_s,
                     SwaxDistLink *link) {
    (void)rank, (void)world, (void)id, (void)timeout_s, (void)link;
    *out = NULL;
    return no_cuda();
}
void swax_comm_destroy(SwaxComm *c, int abort_it) { (void)c, (void)abort_it; }
int swax_comm_reduce_bucket(SwaxComm *c, float *grads, SwaxRange b) {
    (void)c, (void)grads, (void)b;
    return no_cuda();
}
int swax_comm_gather_bucket(SwaxComm *c, float *params, SwaxRange b) {
    (void)c, (void)params, (void)b;
    return no_cuda();
}
int swax_comm_wait(SwaxComm *c, const char *what, double *waited_s) {
    (void)c, (void)what, (void)waited_s;
    return no_cuda();
}
int swax_comm_allgather_f64(SwaxComm *c, const double *in, int n, double *out, double *waited_s) {
    (void)c, (void)in, (void)n, (void)out, (void)waited_s;
    return no_cuda();
}
