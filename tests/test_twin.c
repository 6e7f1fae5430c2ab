/* test_twin.c — the PyTorch twin's own self-consistency checks (float64): its
 * three mLSTM forms agree, document resets equal separate runs, SWA equals a
 * naive loop, gradcheck, safetensors I/O (reference/swax_ref_selftest.py).
 * The C model is compared with the twin in test_model.c. */
#include "test.h"

TEST(twin_selftest) {
    const char *py = getenv("SWAX_PYTHON") ? getenv("SWAX_PYTHON") : "/usr/bin/python3";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s reference/swax_ref.py selftest > /tmp/swax_twin_selftest.log 2>&1", py);
    int rc = system(cmd);
    if (rc != 0) (void)!system("tail -20 /tmp/swax_twin_selftest.log");
    else (void)!system("tail -1 /tmp/swax_twin_selftest.log");
    CHECKF(rc == 0, "reference/swax_ref.py selftest failed (log: /tmp/swax_twin_selftest.log)");
}

RUN_TESTS()
