/* bench.h — `swax eval bench`: the paper's benchmark suite (docs/benchmarks.md).
 *
 * Three layers, one file each:
 *   bench_read.c     readers of each task's public release files -> SwaxBenchItem
 *   bench_text.c     answer normalisation and the metrics (EM, F1, ROUGE-L,
 *                    edit similarity, LongBench's scores, pass@k)
 *   bench_lm.c       log-likelihood of continuations and generation with stop
 *                    strings, batched, sharing a prompt's state (swax_state_copy)
 *   bench_sandbox.c  running model-written Python with its tests in a sandbox
 *   bench_babilong.c the BABILong-style generator (qa1..qa5 hidden in prose)
 *   bench_run.c      the run: prompts, few-shot, scoring, samples.jsonl,
 *                    results.md, results.json
 * The CLI (src/cli/cmd_eval_bench.c) only parses flags. */
#ifndef SWAX_BENCH_H
#define SWAX_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "eval/eval_util.h"
#include "eval/niah.h"
#include "swax.h"

/* ---- items ------------------------------------------------------------------- */

typedef enum {
    SWAX_BENCH_MC,      /* choices scored by log-likelihood after a shared context */
    SWAX_BENCH_PARTIAL, /* Winogrande: one shared suffix scored after each option-filled prefix */
    SWAX_BENCH_GEN,     /* greedy generation, scored against gold strings */
    SWAX_BENCH_CODE,    /* generated code run with its tests in the sandbox */
} SwaxBenchKind;

/* One example, as the task's prompt builder made it from the release record.
 * Every string is owned (malloc) and NUL-terminated. */
typedef struct {
    char *id;        /* the release's id (or "LINE") */
    char *context;   /* MC: the text before each choice; PARTIAL: unused */
    char **choices;  /* MC: continuations (" Paris"); PARTIAL: the option-filled prefixes */
    int n_choices;
    char *suffix;    /* PARTIAL: the continuation scored after each prefix */
    int answer;      /* MC / PARTIAL: gold index */
    char *prompt;    /* GEN / CODE: the text the model continues */
    char **golds;    /* GEN: accepted answers (at least one) */
    int n_golds;
    char **classes;  /* LongBench classification tasks: the label set */
    int n_classes;
    char *prelude;   /* CODE: what runs before the completion (HumanEval: the prompt; MBPP: imports) */
    char *program;   /* CODE: what follows the completion: the tests and the call that runs them */
    char *doc, *query; /* LongBench: the record's context and input (the prompt is made at run time) */
    char *shot;      /* this item written out as a solved example (few-shot) */
    char *group;     /* sub-task for the tables: LongBench dataset, "qa1@4k", "hard/long", ... */
    char *metric;    /* GEN: the metric of this item's group (LongBench), NULL = the task's */
    int code_id;     /* MBPP: task_id (picks the split and the standard shots); else -1 */
} SwaxBenchItem;

typedef struct {
    SwaxBenchItem *v;
    long n, cap;
} SwaxBenchSet;

void swax_bench_set_free(SwaxBenchSet *s);

/* ---- tasks -------------------------------------------------------------------- */

typedef struct SwaxBenchTask SwaxBenchTask;
struct SwaxBenchTask {
    const char *name;
    SwaxBenchKind kind;
    const char *metrics;      /* the published metric names, for --help and docs */
    int default_shots;
    const char *stops[6];     /* GEN / CODE: generation stops at the first of these */
    int max_new;              /* GEN / CODE: default new tokens */
    const char *files;        /* the file names --data-dir looks for, ':'-separated */
    /* Reads one release file into items (appended). */
    int (*read)(const char *path, SwaxBenchSet *set);
};

const SwaxBenchTask *swax_bench_task(const char *name);
const SwaxBenchTask *swax_bench_task_at(int i); /* NULL past the end */
const char *swax_bench_task_list(void);         /* "hellaswag,arc_easy,..." */

/* Reads FILE or DIR (a folder: its *.jsonl / *.json / *.txt files, recursively,
 * in sorted order) for a task. Errors name the file and, for JSONL, the line
 * (for a JSON list, the element). */
int swax_bench_load(const SwaxBenchTask *t, const char *path, SwaxBenchSet *set);

/* A LongBench data set's metric name ("qa_f1", "rouge", ...; "<name>_e" too), NULL if unknown. */
const char *swax_longbench_metric(const char *dataset);

/* ---- text metrics ---------------------------------------------------------------- */

/* SQuAD-style answer normalisation: lowercase, punctuation removed, the
 * articles a/an/the removed, whitespace collapsed to single spaces, trimmed.
 * Returns a malloc'd string (NULL when out of memory). */
char *swax_bench_normalize(const char *s);
double swax_bench_exact_match(const char *pred, const char *const *golds, int n); /* 0/1, best gold */
double swax_bench_f1(const char *pred, const char *const *golds, int n);          /* token F1, best gold */
/* Characters (UTF-8 code points; invalid bytes count one each) — acc_norm's divisor. */
long swax_bench_chars(const char *s);
/* ROUGE-L F1 over whitespace tokens (lowercased, punctuation removed), best gold. */
double swax_bench_rouge_l(const char *pred, const char *const *golds, int n);
/* ROUGE-L over characters, punctuation and spaces dropped (for the Chinese sets). */
double swax_bench_rouge_l_chars(const char *pred, const char *const *golds, int n);
/* Token F1 over characters (Chinese QA), best gold. */
double swax_bench_f1_chars(const char *pred, const char *const *golds, int n);
/* Edit similarity of the first code line of pred (lines starting with ``` # //
 * skipped) to the gold: 1 - indel distance / (len a + len b). */
double swax_bench_code_sim(const char *pred, const char *gold);
/* LongBench classification: 1/m when the gold label is among the m labels
 * named in pred (labels that are substrings of the gold dropped), else 0. */
double swax_bench_classification(const char *pred, const char *gold, const char *const *classes, int n_classes);
/* LongBench retrieval: gold "Paragraph N" (or 段落N); fraction of numbers in pred equal to N. */
double swax_bench_retrieval(const char *pred, const char *gold);
/* LongBench counting: fraction of numbers in pred equal to the gold number. */
double swax_bench_count(const char *pred, const char *gold);
/* Unbiased pass@k from n samples of which c passed: 1 - C(n-c, k) / C(n, k). */
double swax_bench_pass_at_k(int n, int c, int k);

/* A metric by name: "exact_match", "f1", "qa_f1", "qa_f1_zh", "rouge", "rouge_zh",
 * "classification", "retrieval", "count", "code_sim", "contains". -1 if unknown. */
double swax_bench_metric(const char *name, const char *pred, const SwaxBenchItem *it);

/* ---- the model side ------------------------------------------------------------------ */

struct SwaxState;
typedef struct {
    SwaxModel *model;
    const SwaxTokenizer *tok;
    struct SwaxState *st;   /* at least 2 sequences (created by swax_bench_lm_init) */
    int n_seqs;
    int window;             /* the window the state runs at */
    int chunk;
    int32_t eot;
    long share_min;         /* contexts of at least this many tokens are prefilled once and
                             * copied to each choice (swax_state_copy); shorter ones run all
                             * choices in one batched forward. 0 = 64. */
    long max_prompt;        /* > 0: longer prompts are cut in the middle (LongBench's rule) */
    long tokens;            /* prompt tokens run so far (for the report) */
} SwaxBenchLM;

int swax_bench_lm_init(SwaxBenchLM *lm, SwaxModel *m, const SwaxTokenizer *tok, int n_seqs, int window, int chunk);
void swax_bench_lm_free(SwaxBenchLM *lm);

/* Log-likelihood of cont[i] after ctx[i] for n requests (requests in a row
 * with equal contexts share one prefill). The context's trailing spaces move
 * to the continuation; an empty context is <|endoftext|>. ll (n); n_tok (n,
 * may be NULL) the continuation's tokens; greedy (n, may be NULL): 1 when
 * every continuation token is the argmax. */
int swax_bench_loglik(SwaxBenchLM *lm, const char *const *ctx, const char *const *cont, int n, double *ll,
                      int *n_tok, int *greedy);

typedef struct {
    const char *const *stops; /* the output is cut at the first of these */
    int n_stops;
    int max_new;
    float temperature;        /* <= 0: greedy */
    float top_p;
} SwaxBenchGenOpts;

/* Continues n prompts together (n <= lm->n_seqs); equal prompts in a row are
 * prefilled once and copied. outs[i] gets the text, cut at a stop string. */
int swax_bench_generate(SwaxBenchLM *lm, const char *const *prompts, int n, const SwaxBenchGenOpts *g, SwaxRng *rng,
                        SwaxStr *outs);

/* ---- the sandbox ------------------------------------------------------------------------ */

typedef struct {
    double timeout;      /* wall seconds (0: 10) */
    long mem_bytes;      /* RLIMIT_AS (0: 2 GiB) */
    long fsize_bytes;    /* RLIMIT_FSIZE (0: 16 MiB) */
    long nproc;          /* RLIMIT_NPROC (0: 32) */
    const char *python;  /* NULL: $SWAX_PYTHON, else /usr/bin/python3, else python3 on PATH */
} SwaxSandboxOpts;

typedef struct {
    int passed;          /* exit status 0 within the time */
    int timed_out;
    int exit_code;       /* -1 when killed by a signal */
    int signal;
    double seconds;
    int net_isolated;    /* ran in a fresh network namespace (no network) */
    int pid_isolated;    /* ran in a fresh PID namespace (every process dies with it) */
    int uid_dropped;     /* ran as nobody (65534), not root */
    char output[1024];   /* the last bytes of stdout + stderr */
} SwaxSandboxResult;

/* Runs a Python program in a child process: a scratch folder as its working
 * directory (removed afterwards), the limits above, no network where the
 * kernel allows a new network namespace (else r->net_isolated = 0: the caller
 * warns), stdin from /dev/null, a minimal environment. Returns non-zero only
 * when the sandbox itself could not be set up; the program's failure is
 * r->passed = 0. */
int swax_sandbox_run(const SwaxSandboxOpts *o, const char *program, SwaxSandboxResult *r);

/* ---- BABILong-style generator -------------------------------------------------------------- */

/* n items of task qa1..qa5 (1-based `qa`) hidden in `essay` prose so that the
 * prompt is at most `length` tokens (within one sentence of it), appended to set.
 * essay NULL: no prose (the facts alone). Deterministic in (seed, qa, length, i). */
int swax_babilong_make(const SwaxTokenizer *tok, const SwaxEssay *essay, int qa, long length, int n, uint64_t seed,
                       SwaxBenchSet *set);

/* ---- the run ---------------------------------------------------------------------------------- */

typedef struct {
    const SwaxBenchTask *task;
    const char *data;    /* file or folder (unused for babilong) */
} SwaxBenchJob;

typedef struct {
    SwaxModel *model;
    const char *model_name;
    const SwaxTokenizer *tok;
    const SwaxBenchJob *jobs;
    int n_jobs;
    long limit;          /* items per task (0 = all) */
    int shots;           /* -1: each task's default */
    uint64_t seed;
    int window, chunk;
    int batch;           /* sequences generated together (0: 8) */
    int samples;         /* code: completions per problem (n of pass@k; 0: 1) */
    float temperature;   /* code with samples > 1 (0: 0.8) */
    int max_new;         /* 0: each task's default */
    long max_prompt;     /* LongBench: prompts cut in the middle to this many tokens (0: no cut) */
    const char *prompts_json; /* LongBench: dataset -> template ({context}, {input}), e.g. its dataset2prompt.json */
    /* babilong */
    const SwaxEssay *essay;
    const long *lengths;
    int n_lengths;
    int babilong_n;      /* items per (qa, length) (0: 10) */
    SwaxSandboxOpts sandbox;
    const char *out_dir;
    int quiet;
} SwaxBenchOpts;

/* Writes out_dir/samples.jsonl, results.md, results.json. */
int swax_eval_bench(const SwaxBenchOpts *o);

#endif
