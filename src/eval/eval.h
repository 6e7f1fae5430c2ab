/* eval.h — the evaluations behind `swax eval` (docs/evaluation.md):
 * perplexity by position, RULER NIAH, multiple choice, and the synthetic
 * retrieval documents for training. Each runner writes its outputs into a
 * folder; the CLI only parses flags. */
#ifndef SWAX_EVAL_H
#define SWAX_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "eval/eval_util.h"
#include "eval/niah.h"
#include "swax.h"

/* ---- greedy generation ----------------------------------------------------- */

struct SwaxState;
/* Greedy continuations of n prompts at once: prompt i is prefilled into
 * sequence i of st (reset first), then all decode together. A sequence
 * stops at end-of-text (`eot` >= 0), at a newline that follows non-blank
 * output (the text is cut there), or after max_new tokens. outs[i] gets the
 * text (appended), n_new[i] (may be NULL) the tokens generated. */
int swax_generate_greedy(SwaxModel *m, struct SwaxState *st, const SwaxTokenizer *tok, int32_t eot,
                         const SwaxTokenBuf *prompts, int n, int max_new, int chunk, SwaxStr *outs, int *n_new);

/* ---- NIAH ------------------------------------------------------------------ */

typedef struct {
    SwaxModel *model;
    const char *model_name;  /* for the reports */
    const SwaxTokenizer *tok;
    SwaxNiahGen gen;
    const SwaxNiahTask *const *tasks;
    int n_tasks;
    const long *lengths;     /* prompt lengths in tokens */
    int n_lengths;
    const double *depths;    /* in [0, 1] */
    int n_depths;
    int samples;             /* per (task, length, depth) */
    uint64_t seed;
    int window;              /* <= 0: the model's */
    int chunk;               /* prefill chunk, 0 = default */
    int max_new;
    int batch;               /* sequences decoded together */
    int save_prompts;        /* put the prompt text into samples.jsonl */
    double time_limit;       /* seconds, 0 = none: past it, no new batch starts */
    const char *out_dir;
    int quiet;
} SwaxNiahRunOpts;

/* Writes out_dir/samples.jsonl, results.md, results.json, heatmap.svg (and
 * heatmap_<task>.svg with several tasks). *mean_acc (may be NULL) gets the
 * accuracy (%) over everything. Lengths run shortest first (every task and
 * depth of one length, then the next); a run stopped by time_limit writes
 * what it finished ("truncated": true, cells not run are null) and returns 0. */
int swax_eval_niah(const SwaxNiahRunOpts *o, double *mean_acc);

/* ---- perplexity by position -------------------------------------------------- */

typedef struct {
    long bucket;   /* positions per bucket */
    int n_buckets;
    double *nll;   /* (n_buckets) summed negative log-likelihood, nats */
    long *count;   /* (n_buckets) predictions */
    double total_nll;
    long total_count;
} SwaxPplStats;

int swax_ppl_stats_init(SwaxPplStats *s, long seq_len, long bucket);
void swax_ppl_stats_free(SwaxPplStats *s);
/* A prediction made at input position pos (0 = first token of the sequence). */
void swax_ppl_stats_add(SwaxPplStats *s, long pos, double nll);
/* Adds the losses of rows p0 .. p0 + len - 1: row i's logits at lg + i V (the
 * first Vu count), its target tokens[p0 + i + 1]. The log-softmaxes run in
 * parallel over rows, the sums in position order: the same bits on any
 * number of threads. */
int swax_ppl_add_rows(SwaxPplStats *s, const float *lg, long p0, long len, int V, int Vu, const int32_t *tokens);
double swax_ppl_bucket_loss(const SwaxPplStats *s, int b); /* NaN when empty */
double swax_ppl_loss(const SwaxPplStats *s);               /* over every prediction */

typedef enum { SWAX_PPL_AUTO, SWAX_PPL_FORWARD, SWAX_PPL_STREAM } SwaxPplPath;

/* Adds the predictions of one sequence (tokens[0..n), n-1 predictions) to s,
 * at positions pos0, pos0+1, ... Stream: prefill in slices of `slice` tokens
 * on sequence 0 of st (reset first), memory independent of n. Forward: one
 * swax_forward of n-1 tokens (st unused). */
int swax_ppl_sequence(SwaxModel *m, struct SwaxState *st, SwaxPplPath path, const int32_t *tokens, long n,
                      int window, int chunk, long slice, SwaxPplStats *s);

typedef struct {
    SwaxModel *model;
    const char *model_name;
    const char *data;   /* a glob of llm.c shards */
    long seq_len;       /* tokens per sequence (0: 4 × the window, at least 1024) */
    long bucket;        /* 0: 1024 */
    long max_tokens;    /* predictions to score, 0 = all */
    int docs;           /* one sequence per document (split at eot), positions from its start */
    long min_doc_len;   /* docs: shorter documents are skipped */
    int window, chunk;
    SwaxPplPath path;
    long train_len;     /* > 0: marked on the plot */
    const char *out_dir;
    int quiet;
} SwaxPplOpts;

/* Writes out_dir/ppl.md, ppl.json, ppl_by_position.svg. stats (may be NULL)
 * receives the numbers (free with swax_ppl_stats_free). */
int swax_eval_ppl(const SwaxPplOpts *o, SwaxPplStats *stats);

/* ---- multiple choice ---------------------------------------------------------- */

typedef struct {
    char *context;
    char **choices;
    int n_choices;
    int answer;
} SwaxChoiceItem;

/* Reads {"context": str, "choices": [str, ...], "answer": int} lines; errors
 * name the file and line. */
int swax_choice_load(const char *path, SwaxChoiceItem **items, long *n);
void swax_choice_free(SwaxChoiceItem *items, long n);

/* Log-likelihood of each choice given the context: the sum of the log-probs
 * of the continuation's tokens (lm-evaluation-harness). The context's
 * trailing spaces move to the continuation; an empty context is the eot
 * token. ll and n_tok: (n_choices); n_tok may be NULL. */
int swax_choice_score(SwaxModel *m, const SwaxTokenizer *tok, const SwaxChoiceItem *it, int window, double *ll,
                      int *n_tok);

typedef struct {
    SwaxModel *model;
    const char *model_name;
    const SwaxTokenizer *tok;
    const char *const *task_files;
    int n_tasks;
    long limit;   /* examples per task, 0 = all */
    int window;
    const char *out_dir;
    int quiet;
} SwaxChoiceOpts;

/* Writes out_dir/results.md, results.json and <task>.jsonl (per example). */
int swax_eval_choice(const SwaxChoiceOpts *o);

/* ---- synthetic training documents ------------------------------------------------ */

typedef struct {
    SwaxNiahGen gen;   /* gen.tok counts the lengths; essay tasks without an essay use noise */
    int kv;            /* 1: key-value recall documents; 0: NIAH documents */
    int choice;        /* 1 (with kv 0): NIAH multiple-choice items for `eval choice`: {"context": the
                        * prompt, "choices": the answer and 3 of the same shape with other values,
                        * "answer": its index}; a finer measure of retrieval than exact generation */
    int kv_queries;    /* kv: pairs recalled per document (0 = every pair; SWAX_KV_QUERIES by default) */
    const SwaxNiahTask *const *tasks;
    int n_tasks;
    long docs, min_len, max_len;
    uint64_t seed;
    const char *out_path; /* JSONL, one {"text": ...} per line, written atomically */
    int quiet;
} SwaxGenDataOpts;

int swax_gen_data(const SwaxGenDataOpts *o);
/* One NIAH multiple-choice item (JSON text) of length in [min_len, max_len] tokens (the prompt). */
int swax_gen_niah_choice(const SwaxNiahGen *g, const SwaxNiahTask *const *tasks, int n_tasks, long min_len,
                         long max_len, uint64_t seed, uint64_t doc, char **json);

#endif
