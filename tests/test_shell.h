/* test_shell.h — the tests that run commands: the swax binary under test and
 * a shell command with its output captured. */
#ifndef SWAX_TEST_SHELL_H
#define SWAX_TEST_SHELL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The swax binary under test: $SWAX_BIN (scripts/run_tests.sh sets it), else build/swax. */
static inline const char *test_swax_bin(void) {
    const char *b = getenv("SWAX_BIN");
    return b ? b : "build/swax";
}

/* The swax binary beside the test binary (BUILD/tests/test_x -> BUILD/swax), or
 * $SWAX_BIN when that is an absolute path: for tests that change directory. */
static inline const char *test_swax_bin_beside(void) {
    static char bin[4200];
    const char *env = getenv("SWAX_BIN");
    if (env && *env && env[0] == '/') return env;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return "build/swax";
    exe[n] = 0;
    for (int up = 0; up < 2; up++) {
        char *s = strrchr(exe, '/');
        if (s) *s = 0;
    }
    snprintf(bin, sizeof bin, "%s/swax", exe);
    return bin;
}

/* Runs `cmd` in a shell with stderr joined to stdout; the first cap - 1 bytes
 * of the output go to out (NUL-terminated), the rest is read and dropped (so
 * the command never dies of a closed pipe). Returns the exit code, -1 when a
 * signal ended it, -2 when it could not start. */
static inline int test_sh(const char *cmd, char *out, size_t cap) {
    char full[8400];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -2;
    const size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    const int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
