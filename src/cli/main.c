/* main.c — `swax`: one program, many subcommands. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ops/cpu/blas_core.h"

/* Subcommands are linked weakly so that the program builds while a
 * subcommand's file is absent; an absent one says so. */
#pragma weak cmd_init
#pragma weak cmd_logits
#pragma weak cmd_train
#pragma weak cmd_generate
#pragma weak cmd_eval
#pragma weak cmd_data
#pragma weak cmd_tokenizer
#pragma weak cmd_bench
#pragma weak cmd_info
#pragma weak cmd_study

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} Command;

static const Command commands[] = {
    {"init", cmd_init, "write a freshly initialised model (preset or config)"},
    {"info", cmd_info, "print a checkpoint's config and parameter counts"},
    {"logits", cmd_logits, "run the forward pass on token ids, write logits as .npy"},
    {"train", cmd_train, "train a model (stochastic window schedule, resume)"},
    {"generate", cmd_generate, "stream text from a model with constant memory"},
    {"eval", cmd_eval, "perplexity by position, RULER NIAH, multiple choice"},
    {"data", cmd_data, "turn text into token shards; fetch the default corpus"},
    {"tokenizer", cmd_tokenizer, "train, encode, decode (tiktoken rank files)"},
    {"bench", cmd_bench, "benchmarks, each figure beside its baseline"},
    {"study", cmd_study, "the window study: one JSON per run, the report (issue 12)"},
};

static void usage(FILE *f) {
    fprintf(f,
            "swax %s — SWAX language models (sliding-window attention + mLSTM)\n\n"
            "usage: swax <command> [options]     (swax <command> --help for details)\n\ncommands:\n",
            swax_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].fn) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f,
            "\nexit codes: 0 ok, 1 internal error, 2 usage, 3 bad input file, 4 numeric failure\n"
            "            (NaN/Inf), 5 out of memory, 6 cannot write output, 130 interrupted\n");
}

int cli_fail(const char *cmd, int rc) {
    fprintf(stderr, "swax %s: error: %s\n", cmd, swax_last_error());
    return rc ? rc : SWAX_E_INTERNAL;
}

int cli_parse_int(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "swax %s: error: %s expects an integer in [%ld, %ld], got '%s'\n", cmd, flag,
                lo, hi, s);
        return SWAX_E_USAGE;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *flag, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v != v) {
        fprintf(stderr, "swax %s: error: %s expects a number, got '%s'\n", cmd, flag, s);
        return SWAX_E_USAGE;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    /* OpenMP threads that spin while waiting steal the core from the thread
     * doing the work when anything else runs on the machine (3x slower steps
     * measured on a shared 2-core VM; no difference on an idle one). libgomp
     * reads the policy when it loads, before main, so set it and start again
     * once. An explicit OMP_WAIT_POLICY is respected. */
    /* OpenBLAS picks its kernels when it loads, too: where its CPU detection falls back to old
     * (SSE or AVX-without-FMA) kernels on a CPU with AVX2 and FMA, as on VMs that hide the CPU
     * model, name the right set (ops/cpu/blas_core.h; 4.5x measured). An explicit
     * OPENBLAS_CORETYPE is respected. Both in one restart. */
    if (!getenv("SWAX_REEXEC")) {
        int again = 0;
        if (!getenv("OMP_WAIT_POLICY")) setenv("OMP_WAIT_POLICY", "PASSIVE", 1), again = 1;
        const char *picked = NULL, *core = swax_blas_core_fix(&picked);
        if (core) {
            fprintf(stderr, "swax: OpenBLAS chose its %s kernels on this CPU, which has AVX2 and FMA%s: using %s "
                    "(OPENBLAS_CORETYPE=%s; set OPENBLAS_CORETYPE to choose)\n",
                    picked, strcmp(core, "SkylakeX") ? "" : " and AVX-512", core, core);
            setenv("OPENBLAS_CORETYPE", core, 1), again = 1;
        }
        if (again) {
            setenv("SWAX_REEXEC", "1", 1);
            execv("/proc/self/exe", argv);
            /* exec failed: carry on with the default policy and kernels */
        }
    }
    /* Keep freed memory in the process: per-step scratch buffers would otherwise
     * be mmapped and unmapped every step, paying page faults each time. */
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? SWAX_E_USAGE : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("swax %s\n", swax_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        if (!commands[i].fn) {
            fprintf(stderr, "swax: '%s' is not built into this binary\n", argv[1]);
            return SWAX_E_USAGE;
        }
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "swax: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return SWAX_E_USAGE;
}
