/* test_cli.c — the `swax` program as a user meets it: --help everywhere, and
 * bad input (truncated checkpoint, config/weights mismatch, token id out of
 * range, window 0, unknown flags) gives a clear message and the documented
 * exit code, never a crash. */
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "test.h"
#include "test_shell.h"

static char tmp[256];
static char out_buf[65536];

static const char *bin(void) { return test_swax_bin(); }
/* Runs a shell command / `swax ARGS`: output into out_buf, the exit code back. */
static int sh(const char *cmd) { return test_sh(cmd, out_buf, sizeof out_buf); }
static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s", bin(), args);
    return sh(cmd);
}



static void setup(void) {
    if (tmp[0]) return;
    snprintf(tmp, sizeof tmp, "/tmp/swax_test_cli_XXXXXX");
    SWAX_ASSERT(mkdtemp(tmp));
    char a[1024];
    snprintf(a, sizeof a, "init --preset tiny --set d_model=32 --set n_blocks=2 --set attn_heads=1 --set head_dim=16 "
                          "--set vocab_size=50 --set vocab_used=50 --set eot_token=0 --out %s/m", tmp);
    SWAX_ASSERT(run(a) == 0);
}

TEST(help_for_every_command) {
    const char *cmds[] = {"init", "info", "logits", "train", "generate", "eval", "data", "tokenizer", "bench"};
    CHECK(run("--help") == 0 && strstr(out_buf, "usage"));
    for (int i = 0; i < 9; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        int rc = run(a);
        CHECKF(rc == 0 && strstr(out_buf, "usage"), "swax %s --help: rc %d: %.200s", cmds[i], rc, out_buf);
    }
    CHECK(run("frobnicate") == SWAX_E_USAGE && strstr(out_buf, "unknown command"));
    CHECK(run("init --bogus-flag") == SWAX_E_USAGE);
}

TEST(logits_runs_and_rejects_bad_tokens_and_windows) {
    setup();
    char a[1024];
    snprintf(a, sizeof a, "logits --model %s/m --tokens '1, 2 3,4' --out %s/l.npy", tmp, tmp);
    CHECKF(run(a) == 0 && strstr(out_buf, "(4, 50)"), "%s", out_buf);
    snprintf(a, sizeof a, "logits --model %s/m --tokens '1,2,50' --out %s/l.npy", tmp, tmp);
    CHECKF(run(a) == SWAX_E_INPUT && strstr(out_buf, "token id 50"), "%s", out_buf);
    snprintf(a, sizeof a, "logits --model %s/m --tokens '1,2,x' --out %s/l.npy", tmp, tmp);
    CHECKF(run(a) == SWAX_E_INPUT, "%s", out_buf);
    snprintf(a, sizeof a, "logits --model %s/m --tokens '1,2' --window 0 --out %s/l.npy", tmp, tmp);
    CHECKF(run(a) == SWAX_E_USAGE && strstr(out_buf, "--window"), "%s", out_buf);
    snprintf(a, sizeof a, "logits --model %s/m --tokens '' --out %s/l.npy", tmp, tmp);
    CHECKF(run(a) == SWAX_E_INPUT, "%s", out_buf);
}

TEST(bad_checkpoints_exit_3_with_the_file_named) {
    setup();
    char a[2048];
    snprintf(a, sizeof a, "rm -rf %s/t && cp -r %s/m %s/t && truncate -s 1000 %s/t/model.safetensors", tmp, tmp, tmp,
             tmp);
    CHECK(system(a) == 0);
    snprintf(a, sizeof a, "info %s/t", tmp);
    CHECKF(run(a) == SWAX_E_INPUT && strstr(out_buf, "model.safetensors"), "%s", out_buf);
    snprintf(a, sizeof a, "rm -rf %s/t && cp -r %s/m %s/t && printf 'XXXXXXXX' | dd of=%s/t/model.safetensors conv=notrunc 2>/dev/null",
             tmp, tmp, tmp, tmp);
    CHECK(system(a) == 0);
    snprintf(a, sizeof a, "info %s/t", tmp);
    CHECKF(run(a) == SWAX_E_INPUT && strstr(out_buf, "model.safetensors"), "%s", out_buf);
    snprintf(a, sizeof a, "rm -rf %s/t && cp -r %s/m %s/t && sed -i 's/\"d_model\":[[:space:]]*32/\"d_model\": 48/' %s/t/config.json",
             tmp, tmp, tmp, tmp);
    CHECK(system(a) == 0);
    snprintf(a, sizeof a, "logits --model %s/t --tokens 1 --out %s/l.npy", tmp, tmp);
    CHECKF(run(a) == SWAX_E_INPUT && strstr(out_buf, "does not match"), "%s", out_buf);
    snprintf(a, sizeof a, "rm -rf %s/t && cp -r %s/m %s/t && sed -i 's/\"mlstm_heads\":[[:space:]]*2/\"mlstm_heads\": 5/' %s/t/config.json",
             tmp, tmp, tmp, tmp);
    CHECK(system(a) == 0);
    snprintf(a, sizeof a, "info %s/t", tmp);
    CHECKF(run(a) == SWAX_E_INPUT && strstr(out_buf, "mlstm_heads"), "%s", out_buf);
    snprintf(a, sizeof a, "info %s/does-not-exist", tmp);
    CHECKF(run(a) == SWAX_E_INPUT && strstr(out_buf, "config.json"), "%s", out_buf);
}

TEST(init_refuses_absurd_configs) {
    setup();
    /* fields a pattern does not use are range-checked too: they size buffers (a negative mlstm_heads
     * without 'M' layers was accepted and later asked for 1.7e13 MiB) */
    const char *bad[] = {"--set d_model=0", "--set mlstm_heads=3", "--set window=0", "--set vocab_size=2147483647",
                         "--set pattern=AXM", "--set head_dim=7", "--set n_blocks=-1",
                         "--set pattern=A --set mlstm_heads=-3",
                         "--set pattern=M --set attn_heads=100000 --set head_dim=100000"};
    for (int i = 0; i < 9; i++) {
        char a[1024];
        snprintf(a, sizeof a, "init --preset tiny %s --out %s/bad", bad[i], tmp);
        int rc = run(a);
        CHECKF(rc == SWAX_E_USAGE && strstr(out_buf, "config"), "%s: rc %d: %s", bad[i], rc, out_buf);
    }
    char a[1024];
    snprintf(a, sizeof a, "init --preset nope --out %s/bad", tmp);
    CHECK(run(a) == SWAX_E_USAGE && strstr(out_buf, "unknown preset"));
    /* no mLSTM layers and mlstm_heads 0 (divided by in the layout: SIGFPE in every command before) */
    const char *none[] = {"--set pattern=A --set mlstm_heads=0",
                          "--set pattern=AD --set mlstm_heads=0 --set gdn_heads=2"};
    for (int i = 0; i < 2; i++) {
        char c[4096];
        snprintf(c, sizeof c,
                 "init --preset tiny %s --out %s/nohead%d >/dev/null && %s logits --model %s/nohead%d --tokens 1,2,3 "
                 "--out %s/nohead%d.npy && %s generate --model %s/nohead%d --ids '1 2 3' --max-tokens 3 >/dev/null",
                 none[i], tmp, i, bin(), tmp, i, tmp, i, bin(), tmp, i);
        const int rc = run(c);
        CHECKF(rc == 0, "%s: rc %d: %s", none[i], rc, out_buf);
    }
}

/* --set takes values as config.json writes them (true/false, quoted strings). */
TEST(set_takes_config_json_values) {
    setup();
    char a[1024];
    snprintf(a, sizeof a, "init --preset tiny --set tie_embeddings=true --set 'pattern=\"AMM\"' --set norm_eps=1e-05 "
                          "--out %s/set", tmp);
    CHECKF(run(a) == 0, "%s", out_buf);
    snprintf(a, sizeof a, "info %s/set", tmp);
    CHECKF(run(a) == 0 && strstr(out_buf, "\"tie_embeddings\":\ttrue") && strstr(out_buf, "\"AMM\"") &&
               strstr(out_buf, "1e-05"), "%s", out_buf);
    snprintf(a, sizeof a, "init --preset tiny --set tie_embeddings=yes --out %s/set2", tmp);
    CHECKF(run(a) == SWAX_E_USAGE && strstr(out_buf, "tie_embeddings") && strstr(out_buf, "true or false"), "%s",
           out_buf);
}


/* `make` on a machine without a library stops with one line naming it and the
 * command that installs it, before any compiler error (run from the repository
 * root, as `make test` does; the compiler is told to see a broken cJSON header). */
TEST(make_names_a_missing_library) {
    setup();
    CHECKF(sh("scripts/check_deps.sh") == 0 && out_buf[0] == 0, "%s", out_buf);
    char a[2048];
    snprintf(a, sizeof a, "mkdir -p %s/inc/cjson && echo '#error hidden' > %s/inc/cjson/cJSON.h", tmp, tmp);
    CHECK(sh(a) == 0);
    snprintf(a, sizeof a, "CC=\"${CC:-cc} -I%s/inc\" scripts/check_deps.sh", tmp);
    CHECKF(sh(a) == 1 && strstr(out_buf, "missing cJSON headers (cjson/cJSON.h)") && strstr(out_buf, "make deps") &&
               strstr(out_buf, "libcjson-dev") && !strstr(out_buf, "PCRE2") && !strchr(strchr(out_buf, '\n') + 1, '\n'),
           "%s", out_buf);
    /* through make: the check runs first (under -j too), nothing is compiled */
    snprintf(a, sizeof a, "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -j2 CC=\"${CC:-cc} -I%s/inc\" OUT=%s/out all",
             tmp, tmp);
    int rc = sh(a);
    CHECKF(rc != 0 && strstr(out_buf, "missing cJSON headers") && strstr(out_buf, "make deps") &&
               !strstr(out_buf, "#error"),
           "rc %d: %s", rc, out_buf);
    snprintf(a, sizeof a, "test ! -e %s/out", tmp);
    CHECK(sh(a) == 0);
}

/* The GPU call's scripts cannot be run here (no GPU), so what can rot without one is checked: the
 * shell scripts parse, and the Nsight Compute summary of a decode step (scripts/ncu_decode_step.py)
 * reads a raw CSV as ncu writes it (a units row, quoted names with arguments, a step per k_argmax)
 * and sums the last complete step per kernel, telling products apart by the bytes they read. */
TEST(gpu_call_scripts_parse_and_summarise) {
    setup();
    CHECKF(sh("bash -n scripts/gpu_session.sh && bash -n scripts/gpu_prepare.sh && bash -n scripts/gpu_bundle.sh") == 0,
           "%s", out_buf);
    char csv[512], a[1024];
    snprintf(csv, sizeof csv, "%s/ncu.csv", tmp);
    FILE *f = fopen(csv, "w");
    SWAX_ASSERT(f);
    fprintf(f, "\"ID\",\"Kernel Name\",\"dram__bytes_read.sum\",\"gpu__time_duration.sum\"\n\"\",\"\",\"Mbyte\",\"nsecond\"\n");
    int id = 0;
    fprintf(f, "\"%d\",\"embed_fwd_kernel<float>(float *, const int *, const float *, int)\",\"0.01\",\"1,500\"\n", id++);
    for (int step = 0; step < 3; step++) { /* the last complete step: products of 45 and 8 MB, a rope, an argmax */
        const double t45 = step == 2 ? 20000 : 99999;
        fprintf(f, "\"%d\",\"void k_gemv_bf16<1>(GemvArgs)\",\"45.1\",\"%.0f\"\n", id++, t45);
        fprintf(f, "\"%d\",\"k_rope_rows(SwaxInferAttnCall)\",\"0.01\",\"2000\"\n", id++);
        fprintf(f, "\"%d\",\"void k_gemv_bf16<1>(GemvArgs)\",\"8.4\",\"5000\"\n", id++);
        fprintf(f, "\"%d\",\"void k_gemv_bf16<1>(GemvArgs)\",\"8.4\",\"5000\"\n", id++);
        fprintf(f, "\"%d\",\"k_argmax(int *, const float *, int, int)\",\"0.2\",\"3000\"\n", id++);
    }
    fclose(f);
    snprintf(a, sizeof a, "${SWAX_PYTHON:-python3} scripts/ncu_decode_step.py %s", csv);
    const int rc = sh(a);
    /* the step after the second argmax: 20 + 2 + 5 + 5 + 3 = 35 us; 45.1 MB in 20 us = 2255 GB/s */
    CHECKF(rc == 0 && strstr(out_buf, "step of 5 kernels, their durations sum to 35.0 us") &&
               strstr(out_buf, "k_gemv_bf16 45 MB") && strstr(out_buf, "2255 GB/s") &&
               strstr(out_buf, "k_gemv_bf16 8 MB") && strstr(out_buf, "2 launches      10.0 us") &&
               strstr(out_buf, "steps seen: 3"),
           "rc %d: %s", rc, out_buf);
    snprintf(a, sizeof a, "echo 'no,rows' > %s/bad.csv && ${SWAX_PYTHON:-python3} scripts/ncu_decode_step.py %s/bad.csv",
             tmp, tmp);
    CHECKF(sh(a) == 1 && strstr(out_buf, "no kernel rows"), "%s", out_buf);
}

/* A CPU with AVX2 + FMA where OpenBLAS fell back to its SSE kernels (as on VMs that hide the
 * CPU model): swax says so and restarts with a better OPENBLAS_CORETYPE; an explicit one is kept */
TEST(openblas_fallback_kernels_are_replaced) {
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        printf("  (skipped: this CPU has no AVX2 + FMA)\n");
        CHECK(1);
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env -u OPENBLAS_CORETYPE -u SWAX_REEXEC SWAX_TEST_BLAS_CORENAME=Prescott %s bench train --preset tiny "
             "--batch 1 --seq 32 --steps 1 --threads 1", bin());
    CHECKF(sh(cmd) == 0, "%s", out_buf);
    CHECKF(strstr(out_buf, "OpenBLAS chose its Prescott kernels") != NULL, "no message: %s", out_buf);
    CHECKF(strstr(out_buf, "\"blas_core\": \"Haswell\"") || strstr(out_buf, "\"blas_core\": \"SkylakeX\""),
           "kernels not replaced: %s", out_buf);
    snprintf(cmd, sizeof cmd,
             "env -u SWAX_REEXEC OPENBLAS_CORETYPE=Nehalem SWAX_TEST_BLAS_CORENAME=Prescott %s bench train --preset tiny "
             "--batch 1 --seq 32 --steps 1 --threads 1", bin());
    CHECKF(sh(cmd) == 0, "%s", out_buf);
    CHECKF(!strstr(out_buf, "OpenBLAS chose") && strstr(out_buf, "\"blas_core\": \"Nehalem\""),
           "an explicit OPENBLAS_CORETYPE was overridden: %s", out_buf);
}

/* Decode at a batch above infer.c's few-row product runs its first fp32 products inside a parallel
 * region: the choice between oneDNN and OpenBLAS was read there before it was made, and a thread called
 * oneDNN's sgemm before the library was loaded (a crash at 2 threads, every run, until ops_cpu.c made
 * the choice under pthread_once). */
TEST(batched_decode_bench_runs_on_two_threads) {
    for (int i = 0; i < 2; i++) {
        const int rc = run("bench infer --preset bench-cpu --threads 2 --batch 1,40 --max-context 1 --steps 4");
        CHECKF(rc == 0, "exit %d: %s", rc, out_buf);
        CHECKF(strstr(out_buf, "\"infer_decode_batch\", \"batch\": 40") != NULL, "no batch-40 line: %s", out_buf);
    }
}

/* A thread sweep: one line per count, the second relative to the first, each with the host's own
 * fp32 product rate and copy bandwidth at that count (what issue 9's scaling is read against). */
TEST(thread_sweep_reports_the_host_beside_the_step) {
    const int rc = run("bench train --preset tiny --batch 1 --seq 64 --steps 1 --threads 1,2");
    CHECKF(rc == 0, "exit %d: %s", rc, out_buf);
    const char *l2 = strstr(out_buf, "\"threads\": 2,");
    CHECKF(l2 && strstr(out_buf, "\"threads\": 1,") < l2, "no lines for 1 and 2 threads: %s", out_buf);
    if (!l2) return;
    double g = 0, bw = 0, sp = 0;
    const char *p = strstr(l2, "\"host_sgemm_gflops\": "), *q = strstr(l2, "\"host_copy_GBps\": "),
               *e = strstr(l2, "\"speedup\": ");
    CHECKF(p && q && e, "a sweep line without the host's figures: %s", l2);
    if (!p || !q || !e) return;
    sscanf(p, "\"host_sgemm_gflops\": %lf", &g);
    sscanf(q, "\"host_copy_GBps\": %lf", &bw);
    sscanf(e, "\"speedup\": %lf", &sp);
    CHECKF(g > 0.5 && bw > 0.1 && sp > 0, "implausible figures: sgemm %g GFLOP/s, copy %g GB/s, speedup %g", g, bw, sp);
}

/* OMP_DYNAMIC=true let the runtime give a team fewer threads than asked (above the core count, or
 * on a loaded machine): OpenBLAS's OpenMP build then hung under the mLSTM cell and oneDNN's products
 * came out wrong without an error; nesting (OMP_MAX_ACTIVE_LEVELS > 1) started a team in every small
 * loop of batched decode. swax now fixes both at load (ops_cpu.c: omp_policy): the same logits bit for
 * bit, in bounded time, with or without the variables. */
TEST(openmp_environment_does_not_change_results) {
    setup();
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "d=%s && %s init --preset bench-cpu --out $d/omp_m >/dev/null && "
             "ids=$(seq -s, 3 7 2800) && "
             "%s logits --model $d/omp_m --tokens \"$ids\" --out $d/plain.npy --threads 8 >/dev/null && "
             "OMP_DYNAMIC=true OMP_MAX_ACTIVE_LEVELS=4 timeout 120 %s logits --model $d/omp_m --tokens \"$ids\" "
             "--out $d/dyn.npy --threads 8 && cmp $d/plain.npy $d/dyn.npy",
             tmp, bin(), bin(), bin());
    const int rc = sh(cmd);
    CHECKF(rc == 0, "exit %d (124: hung): %s", rc, out_buf);
}

/* bench train without --threads reported "threads": 0: now the count OpenMP ran with. */
TEST(bench_train_reports_the_threads_used_without_threads_flag) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "env OMP_NUM_THREADS=3 %s bench train --preset tiny --batch 1 --seq 32 --steps 1", bin());
    const int rc = sh(cmd);
    CHECKF(rc == 0 && strstr(out_buf, "\"threads\": 3,"), "exit %d: %s", rc, out_buf);
}

RUN_TESTS()
