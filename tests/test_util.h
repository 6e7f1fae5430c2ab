/* test_util.h — helpers shared by the model tests. */
#ifndef SWAX_TEST_UTIL_H
#define SWAX_TEST_UTIL_H

#include <string.h>

#include "core/common.h"

/* Random values in every parameter (init leaves the gates at 0, which would
 * hide bugs): norm weights 1 + 0.2 z, gate biases 1.5 z, weights weight_sd z. */
static inline void test_randomize_params(SwaxModel *m, SwaxRng *r, double weight_sd) {
    float *p = swax_model_params(m);
    for (int i = 0; i < swax_model_num_tensors(m); i++) {
        const char *name;
        size_t off;
        int nd;
        int64_t sh[2];
        swax_model_tensor(m, i, &name, &off, &nd, sh);
        const size_t n = (size_t)sh[0] * (size_t)sh[1];
        for (size_t j = 0; j < n; j++) {
            const double z = swax_rng_normal(r);
            if (strstr(name, "norm")) p[off + j] = (float)(1.0 + 0.2 * z);
            else if (strstr(name, "bias")) p[off + j] = (float)(1.5 * z);
            else p[off + j] = (float)(weight_sd * z);
        }
    }
}

#endif
