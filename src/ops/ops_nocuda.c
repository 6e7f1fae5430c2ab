/* ops_nocuda.c — swax_ops_cuda() for a build without the CUDA backend
 * (CUDA=0, no nvcc, or the sanitizer build): it says so. The Makefile leaves
 * this file out of CUDA builds. */
#include "core/common.h"
#include "ops/ops.h"

const SwaxOps *swax_ops_cuda(void) {
    swax_error(SWAX_E_USAGE, "this swax was built without the CUDA backend (no nvcc found, or CUDA=0); "
                             "rebuild with `make CUDA=1` on a machine with the CUDA toolkit");
    return NULL;
}
const SwaxOps *swax_ops_cuda_bf16(void) { return swax_ops_cuda(); }
