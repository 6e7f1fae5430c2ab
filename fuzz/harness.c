/* harness.c — a libFuzzer harness for one target of fuzz/targets.h, chosen at
 * build time with -DSWAX_FUZZ_TARGET=<name> (fuzz/fuzz.mk builds one binary per
 * target), or, in a build without it (build-fuzz/fuzz_all), at run time by the
 * environment variable SWAX_FUZZ_TARGET. */
#include "targets.h"

#define SWAX_STR2(x) #x
#define SWAX_STR(x) SWAX_STR2(x)

static const FuzzTarget *g_target;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
#ifdef SWAX_FUZZ_TARGET
    const char *name = SWAX_STR(SWAX_FUZZ_TARGET);
#else
    const char *name = getenv("SWAX_FUZZ_TARGET");
#endif
    g_target = name ? fuzz_target_by_name(name) : NULL;
    if (!g_target) {
        fprintf(stderr, "fuzz: unknown target '%s'; known:", name ? name : "(SWAX_FUZZ_TARGET unset)");
        for (int i = 0; i < FUZZ_N_TARGETS; i++) fprintf(stderr, " %s", fuzz_targets[i].name);
        fprintf(stderr, "\n");
        exit(2);
    }
    fuzz_tmpdir();
    swax_set_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_run_one(g_target, data, size);
    return 0;
}
