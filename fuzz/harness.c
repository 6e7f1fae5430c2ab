/* harness.c — a libFuzzer harness for one target of fuzz/targets.h, chosen at
 * build time with -DSWAX_FUZZ_TARGET=<name> (see fuzz/fuzz.mk). */
#include "targets.h"

#define SWAX_STR2(x) #x
#define SWAX_STR(x) SWAX_STR2(x)

static const FuzzTarget *g_target;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_target = fuzz_target_by_name(SWAX_STR(SWAX_FUZZ_TARGET));
    SWAX_ASSERT(g_target);
    fuzz_tmpdir();
    swax_set_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_run_one(g_target, data, size);
    return 0;
}
