/* test_portable.c — `make ARCH=portable` (x86-64-v3 code, for binaries that
 * travel to other machines: the GPU machines' CPUs) builds, the binary runs,
 * and nothing above x86-64-v3 leaked into it (an -march=native build on an
 * AVX-512 machine uses zmm registers, opmask registers k0-k7 and the EVEX-only
 * registers xmm16-31 / ymm16-31; a portable binary must use none of them outside
 * the one file it compiles for AVX-512 and runs only where the CPU has it:
 * swa_tiled.c, the tiled attention kernels).
 *
 * CPU-only build (CUDA=0) into build-portable/test-cpu/, which stays between
 * runs: the first run on a clean clone compiles everything (~1 minute on 2
 * cores), later runs only what changed. Run from the repository root, as
 * `make test` does; the sanitizer pass skips it (the same build, twice). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "core/common.h"
#include "test.h"
#include "test_shell.h"

#define OUTDIR "build-portable/test-cpu"

static char out_buf[1 << 16];

static int sh(const char *cmd) { return test_sh(cmd, out_buf, sizeof out_buf); }


static int skip_reason(void) {
    const char *b = getenv("SWAX_BUILD");
    if (b && strstr(b, "asan")) {
        printf("  skipped: the sanitizer pass (the normal pass builds and checks it)\n");
        return 1;
    }
    if (sh("test -f Makefile && test -d src") != 0) {
        printf("  skipped: not run from the repository root\n");
        return 1;
    }
#if !defined(__x86_64__)
    printf("  skipped: not an x86-64 host\n");
    return 1;
#endif
    if (sh("command -v objdump") != 0) {
        printf("  skipped: objdump not installed (binutils)\n");
        return 1;
    }
    return 0;
}

TEST(portable_build_runs_and_stays_x86_64_v3) {
    if (skip_reason()) return;
    const double t0 = swax_time_sec();
    int rc = sh("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -j2 ARCH=portable CUDA=0 OUT=" OUTDIR " " OUTDIR
                "/swax");
    const double t_build = swax_time_sec() - t0;
    CHECKF(rc == 0, "make ARCH=portable: rc %d: %.2000s", rc, out_buf);
    printf("  make ARCH=portable CUDA=0 OUT=%s: %.1f s\n", OUTDIR, t_build);
    /* it compiles for x86-64-v3 (what make would run, not run) */
    CHECKF(sh("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -n -B ARCH=portable CUDA=0 OUT=" OUTDIR " " OUTDIR
              "/src/core/common.o | grep -q -- '-march=x86-64-v3'") == 0,
           "the portable build does not compile with -march=x86-64-v3: %.2000s", out_buf);
    rc = sh(OUTDIR "/swax --help");
    CHECKF(rc == 0 && strstr(out_buf, "usage"), "swax --help: rc %d: %.500s", rc, out_buf);
    /* no AVX-512 register in the binary's code (AT&T syntax) outside the functions of swa_tiled.c,
     * which the portable build compiles for AVX-512 and runs only on a CPU that has it */
    rc = sh("nm --defined-only " OUTDIR "/src/ops/cpu/swa_tiled.o | awk '{print \"<\" $3 \">:\"}' > " OUTDIR
            "/avx512_ok.txt && test -s " OUTDIR "/avx512_ok.txt");
    CHECKF(rc == 0, "no symbols from swa_tiled.o: %.500s", out_buf);
#define AVX512_REGS "'%zmm|%k[0-7]\\b|%[xy]mm(1[6-9]|2[0-9]|3[01])\\b'"
#define BY_FUNCTION "objdump -d --no-show-raw-insn " OUTDIR "/swax | awk '/^[0-9a-f]+ </ {f = $2} {print f, $0}'"
    rc = sh(BY_FUNCTION " | grep -E " AVX512_REGS " | grep -v -F -f " OUTDIR "/avx512_ok.txt | head -n 5 | grep .");
    CHECKF(rc == 1, "instructions above x86-64-v3 in the portable binary:\n%.2000s", out_buf);
    /* the filter lets through what it should: swa_tiled.c's AVX-512 code is there */
    rc = sh(BY_FUNCTION " | grep -E " AVX512_REGS " | grep -c -F -f " OUTDIR "/avx512_ok.txt");
    CHECKF(rc == 0 && atoi(out_buf) > 0, "no AVX-512 code in swa_tiled.c's functions (rc %d): %.200s", rc, out_buf);
    const int n512 = atoi(out_buf);
    /* and the check can see what it looks for: AVX2 code is there */
    rc = sh("objdump -d --no-show-raw-insn " OUTDIR "/swax | grep -c -E 'vfmadd[0-9]+ps.*%ymm'");
    CHECKF(rc == 0 && atoi(out_buf) > 0, "no AVX2 FMA in the portable binary (rc %d): %.200s", rc, out_buf);
    printf("  %s/swax: --help runs; no zmm / k / xmm16-31 / ymm16-31 registers outside swa_tiled.c (%d "
           "instructions there); %d ymm FMAs\n", OUTDIR, n512, atoi(out_buf));
}

RUN_TESTS()
