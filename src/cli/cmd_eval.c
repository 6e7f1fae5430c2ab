/* cmd_eval.c — `swax eval ppl|niah|choice|gen-data` (docs/evaluation.md).
 * Flags only; the work is in src/eval. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "eval/eval.h"

#define CMD "eval"

/* The held-out prose scripts/fetch_corpus.sh sets aside (never trained on). */
static const char *const k_default_essays[] = {"data/corpus/heldout", ".cache/corpus/heldout", NULL};
static const char *const k_default_words = "/usr/share/dict/words";

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: swax eval <ppl|niah|choice|bench|gen-data> [options]   (--help on each)\n\n"
            "  ppl       loss and perplexity on held-out shards, by position bucket\n"
            "  niah      RULER needle-in-a-haystack: accuracy over tasks x lengths x depths\n"
            "  choice    multiple choice by log-likelihood (acc, acc_norm)\n"
            "  bench     the paper's benchmarks from their release files (HellaSwag ... LongBench, BABILong)\n"
            "  gen-data  synthetic retrieval documents (NIAH format or key-value recall) as JSONL\n\n"
            "ppl, niah, choice and bench take --device cpu (default), cpu-bf16 (CPU, bf16 matrix products),\n"
            "cuda (GPU, bf16 matrix products) or cuda-fp32 (GPU, fp32): with cuda*, the model, its forward\n"
            "and the inference state run on the GPU.\n");
}

static int usage_err(const char *msg) {
    fprintf(stderr, "swax eval: error: %s\n", msg);
    return SWAX_E_USAGE;
}

/* ---- shared pieces ------------------------------------------------------------------- */

typedef struct {
    const char *model_dir, *tokenizer, *out;
    long window, threads, chunk;
    int quiet;
    const char *device; /* NULL = cpu */
} Common;

enum { OPT_DEVICE = 0x100 }; /* --device (no short letter: 'd' and 'D' are taken) */

/* Handles a flag every subcommand shares; 1 if handled, -1 on a bad value. */
static int common_flag(Common *c, int opt, const char *arg) {
    long v;
    switch (opt) {
    case 'm': c->model_dir = arg; return 1;
    case 't': c->tokenizer = arg; return 1;
    case 'o': c->out = arg; return 1;
    case 'q': c->quiet = 1; return 1;
    case OPT_DEVICE: c->device = arg; return 1;
    case 'w':
        if (cli_parse_int(CMD, "--window", arg, 1, 1 << 30, &v)) return -1;
        c->window = v;
        return 1;
    case 'j':
        if (cli_parse_int(CMD, "--threads", arg, 1, 4096, &v)) return -1;
        c->threads = v;
        return 1;
    case 'c':
        if (cli_parse_int(CMD, "--chunk", arg, 1, 4096, &v)) return -1;
        c->chunk = v;
        return 1;
    }
    return 0;
}

#define COMMON_OPTS                                                                                  \
    {"model", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 't'},                 \
        {"out", required_argument, 0, 'o'}, {"window", required_argument, 0, 'w'},                   \
        {"threads", required_argument, 0, 'j'}, {"chunk", required_argument, 0, 'c'},                \
        {"quiet", no_argument, 0, 'q'}, {"device", required_argument, 0, OPT_DEVICE}, {"help", no_argument, 0, 'h'}

static int load_model(const Common *c, SwaxModel **m) {
    if (!c->model_dir) return usage_err("needs --model DIR");
    if (c->threads > 0) swax_set_threads((int)c->threads);
    int rc = swax_model_load(c->model_dir, m);
    if (!rc && c->device && (rc = swax_model_set_device(*m, c->device))) {
        swax_model_free(*m);
        *m = NULL;
    }
    return rc ? cli_fail(CMD, rc) : 0;
}

/* "0,25,50" (percent) -> fractions. */
static int parse_depths(const char *s, double **out, int *n) {
    size_t cap = 1;
    for (const char *q = s; *q; q++) cap += *q == ',';
    double *v = calloc(cap, sizeof *v);
    if (!v) return cli_fail(CMD, swax_error(SWAX_E_NOMEM, "depths"));
    int k = 0;
    for (const char *q = s;;) {
        char *end;
        double d = strtod(q, &end);
        if (end == q || !(d >= 0 && d <= 100) || (*end && *end != ',')) {
            free(v);
            fprintf(stderr, "swax eval: error: --depths expects percentages in [0, 100] separated by commas, got '%s'\n", s);
            return SWAX_E_USAGE;
        }
        v[k++] = d / 100;
        if (!*end) break;
        q = end + 1;
    }
    *out = v, *n = k;
    return 0;
}

/* --tasks for NIAH: names from the table. */
static int parse_tasks(const char *s, const SwaxNiahTask ***out, int *n) {
    char **names;
    int k;
    int rc = swax_parse_name_list("--tasks", s, &names, &k);
    if (rc) return cli_fail(CMD, rc);
    const SwaxNiahTask **v = calloc((size_t)k, sizeof *v);
    for (int i = 0; v && i < k; i++) {
        v[i] = swax_niah_task(names[i]);
        if (!v[i]) {
            fprintf(stderr, "swax eval: error: unknown task '%s' (known: %s)\n", names[i], swax_niah_task_list());
            rc = SWAX_E_USAGE;
            break;
        }
    }
    swax_free_name_list(names, k);
    if (!v) return cli_fail(CMD, swax_error(SWAX_E_NOMEM, "tasks"));
    if (rc) {
        free(v);
        return rc;
    }
    *out = v, *n = k;
    return 0;
}

static int any_essay_task(const SwaxNiahTask *const *t, int n) {
    for (int i = 0; i < n; i++)
        if (t[i]->haystack == SWAX_HAY_ESSAY) return 1;
    return 0;
}

/* Key words: --words, else the system dictionary if present, else built-in. */
static int load_words(const char *path, SwaxWords *w) {
    struct stat st;
    if (!path && stat(k_default_words, &st) == 0) path = k_default_words;
    if (!path) {
        swax_words_builtin(w);
        return 0;
    }
    return swax_words_load(path, w);
}

/* Essays: the --essay paths, else the held-out corpus folder if present. */
static int load_essay(const char **paths, int n, const SwaxTokenizer *tok, SwaxEssay *e, int required) {
    struct stat st;
    const char *def = NULL;
    if (!n)
        for (int i = 0; k_default_essays[i] && !def; i++)
            if (stat(k_default_essays[i], &st) == 0) def = k_default_essays[i];
    if (!n && def) paths = &def, n = 1;
    if (!n) {
        if (!required) return 0;
        return usage_err("the essay tasks (single2, single3, multikey1, multivalue, multiquery) need --essay FILE|DIR: "
                         "prose the model was NOT trained on (scripts/fetch_corpus.sh keeps "
                         "data/corpus/heldout for this)");
    }
    int rc = swax_essay_load(paths, n, tok, e);
    return rc ? cli_fail(CMD, rc) : 0;
}

/* ---- ppl ------------------------------------------------------------------------------- */

static int cmd_ppl(int argc, char **argv) {
    static const struct option opts[] = {COMMON_OPTS,
                                         {"data", required_argument, 0, 'd'},
                                         {"seq-len", required_argument, 0, 'T'},
                                         {"buckets", required_argument, 0, 'b'},
                                         {"max-tokens", required_argument, 0, 'n'},
                                         {"docs", no_argument, 0, 'D'},
                                         {"min-doc-len", required_argument, 0, 'L'},
                                         {"path", required_argument, 0, 'p'},
                                         {"train-len", required_argument, 0, 'r'},
                                         {0, 0, 0, 0}};
    Common c = {0};
    SwaxPplOpts o = {0};
    int opt;
    long v;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int h = common_flag(&c, opt, optarg);
        if (h < 0) return SWAX_E_USAGE;
        if (h) continue;
        switch (opt) {
        case 'd': o.data = optarg; break;
        case 'T': if (cli_parse_int(CMD, "--seq-len", optarg, 1, 1L << 31, &v)) return SWAX_E_USAGE; o.seq_len = v; break;
        case 'b': if (cli_parse_int(CMD, "--buckets", optarg, 1, 1L << 31, &v)) return SWAX_E_USAGE; o.bucket = v; break;
        case 'n': if (cli_parse_int(CMD, "--max-tokens", optarg, 1, 1L << 50, &v)) return SWAX_E_USAGE; o.max_tokens = v; break;
        case 'D': o.docs = 1; break;
        case 'L': if (cli_parse_int(CMD, "--min-doc-len", optarg, 0, 1L << 40, &v)) return SWAX_E_USAGE; o.min_doc_len = v; break;
        case 'r': if (cli_parse_int(CMD, "--train-len", optarg, 1, 1L << 40, &v)) return SWAX_E_USAGE; o.train_len = v; break;
        case 'p':
            if (!strcmp(optarg, "auto")) o.path = SWAX_PPL_AUTO;
            else if (!strcmp(optarg, "forward")) o.path = SWAX_PPL_FORWARD;
            else if (!strcmp(optarg, "stream")) o.path = SWAX_PPL_STREAM;
            else return usage_err("--path must be auto, forward or stream");
            break;
        case 'h':
            printf("usage: swax eval ppl --model DIR --data 'DIR/val_*.bin' --out DIR\n"
                   "                     [--seq-len T] [--buckets 1024] [--max-tokens N] [--window W]\n"
                   "                     [--docs [--min-doc-len N]] [--train-len N] [--path auto|forward|stream]\n"
                   "                     [--threads N] [--chunk L] [--device cpu|cpu-bf16|cuda|cuda-fp32] [--quiet]\n\n"
                   "Loss (nats/token) and perplexity on llm.c token shards, overall and by position\n"
                   "bucket (0-1k, 1k-2k, ...). The shards are read as one stream cut into sequences of\n"
                   "T+1 tokens (T predictions each; default T = 4 x window, at least 1024) — T may be far\n"
                   "past the training length. --docs: one sequence per document instead (split at the\n"
                   "model's eot token, at most T+1 tokens), positions counted from the document start.\n"
                   "Long sequences stream through the constant-memory prefill; sequences up to 1024\n"
                   "tokens take one forward (--path forces one). The overall loss is the token-weighted\n"
                   "mean of the buckets. --train-len marks the training length on the plot.\n"
                   "Writes DIR/ppl.md, DIR/ppl.json, DIR/ppl_by_position.svg.\n");
            return 0;
        default: return SWAX_E_USAGE;
        }
    }
    if (optind < argc) return usage_err("unexpected argument (see --help)");
    if (!o.data || !c.out) return usage_err("ppl needs --model, --data and --out (see --help)");
    SwaxModel *m = NULL;
    int rc = load_model(&c, &m);
    if (rc) return rc;
    o.model = m, o.model_name = c.model_dir, o.window = (int)c.window, o.chunk = (int)c.chunk;
    o.out_dir = c.out, o.quiet = c.quiet;
    SwaxPplStats st;
    rc = swax_eval_ppl(&o, &st);
    if (!rc) {
        printf("loss %.4f  perplexity %.3f  over %ld predictions\n", swax_ppl_loss(&st), exp(swax_ppl_loss(&st)),
               st.total_count);
        for (int b = 0; b < st.n_buckets; b++)
            if (st.count[b])
                printf("  positions %ld-%ld: loss %.4f (%ld)\n", b * st.bucket, (b + 1) * st.bucket,
                       swax_ppl_bucket_loss(&st, b), st.count[b]);
        printf("wrote %s/ppl.md, ppl.json, ppl_by_position.svg\n", c.out);
        swax_ppl_stats_free(&st);
    }
    swax_model_free(m);
    return rc ? cli_fail(CMD, rc) : 0;
}

/* ---- niah ------------------------------------------------------------------------------ */

static int cmd_niah(int argc, char **argv) {
    static const struct option opts[] = {COMMON_OPTS,
                                         {"tasks", required_argument, 0, 'T'},
                                         {"lengths", required_argument, 0, 'l'},
                                         {"depths", required_argument, 0, 'd'},
                                         {"n-depths", required_argument, 0, 'k'},
                                         {"samples", required_argument, 0, 'n'},
                                         {"seed", required_argument, 0, 's'},
                                         {"max-new", required_argument, 0, 'x'},
                                         {"batch", required_argument, 0, 'B'},
                                         {"essay", required_argument, 0, 'e'},
                                         {"words", required_argument, 0, 'W'},
                                         {"save-prompts", no_argument, 0, 'P'},
                                         {"time-limit", required_argument, 0, 'L'},
                                         {0, 0, 0, 0}};
    Common c = {0};
    double time_limit = 0;
    const char *tasks_s = swax_niah_task_list(), *lengths_s = "4k,8k,16k,32k,64k,128k", *depths_s = NULL;
    const char *words_path = NULL;
    const char **essays = calloc((size_t)argc + 1, sizeof *essays);
    int n_essays = 0, save_prompts = 0;
    long n_depths = 5, samples = 10, seed = 0, max_new = 128, batch = 8;
    int opt, rc = 0;
    if (!essays) return cli_fail(CMD, swax_error(SWAX_E_NOMEM, "arguments"));
    optind = 1;
    while (!rc && (opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int h = common_flag(&c, opt, optarg);
        if (h < 0) rc = SWAX_E_USAGE;
        if (h) continue;
        switch (opt) {
        case 'T': tasks_s = optarg; break;
        case 'l': lengths_s = optarg; break;
        case 'd': depths_s = optarg; break;
        case 'k': rc = cli_parse_int(CMD, "--n-depths", optarg, 1, 1000, &n_depths); break;
        case 'n': rc = cli_parse_int(CMD, "--samples", optarg, 1, 1L << 30, &samples); break;
        case 's': rc = cli_parse_int(CMD, "--seed", optarg, 0, 1L << 62, &seed); break;
        case 'x': rc = cli_parse_int(CMD, "--max-new", optarg, 1, 1 << 20, &max_new); break;
        case 'B': rc = cli_parse_int(CMD, "--batch", optarg, 1, 4096, &batch); break;
        case 'e': essays[n_essays++] = optarg; break;
        case 'W': words_path = optarg; break;
        case 'P': save_prompts = 1; break;
        case 'L': {
            char *end = NULL;
            time_limit = strtod(optarg, &end);
            if (!end || *end || !(time_limit > 0)) rc = usage_err("--time-limit: seconds > 0");
            break;
        }
        case 'h':
            printf("usage: swax eval niah --model DIR --out DIR [--tokenizer DIR|JSON]\n"
                   "                      [--tasks %s]\n"
                   "                      [--lengths 4k,8k,...,128k] [--depths 0,25,50,75,100 | --n-depths K]\n"
                   "                      [--samples 10] [--seed 0] [--window W] [--max-new 128] [--batch 8]\n"
                   "                      [--essay FILE|DIR]... [--words FILE|WORDNET_DIR] [--save-prompts]\n"
                   "                      [--time-limit SECONDS]\n"
                   "                      [--threads N] [--chunk L] [--device cpu|cpu-bf16|cuda|cuda-fp32] [--quiet]\n\n"
                   "RULER's NIAH tasks (SPEC 5): single1 (noise haystack), single2 (essay), single3 (essay,\n"
                   "uuid values), multikey1 (essay, 3 distractor needles), multikey2 (every sentence a\n"
                   "distractor needle), multikey3 (the same, uuid keys and values), multivalue (4 values\n"
                   "for the key), multiquery (4 keys asked). Each prompt is --lengths tokens (a few under\n"
                   "at most); the asked needle sits at each depth (%% of the haystack, at a sentence\n"
                   "boundary). The prompt is prefilled, then greedy decoding of up to --max-new tokens\n"
                   "(stops at end-of-text or a newline after the answer), --batch samples decoding\n"
                   "together. Score (RULER): the fraction of gold values found in the output.\n"
                   "--essay: prose the model was not trained on (default: data/corpus/heldout from\n"
                   "scripts/fetch_corpus.sh, if present). --words: key words (default\n"
                   "/usr/share/dict/words if present, else a built-in list). --tokenizer defaults to the\n"
                   "model folder's tokenizer.json.\n"
                   "Lengths run shortest first; --time-limit stops before the next batch once the time is\n"
                   "spent and writes the cells finished (results.json: \"truncated\": true, the rest null).\n"
                   "Writes DIR/samples.jsonl, DIR/results.md, DIR/results.json (with seconds by length),\n"
                   "DIR/heatmap.svg (and heatmap_<task>.svg per task). Progress with ETA on stderr.\n",
                   swax_niah_task_list());
            free(essays);
            return 0;
        default: rc = SWAX_E_USAGE;
        }
    }
    if (!rc && optind < argc) rc = usage_err("unexpected argument (see --help)");
    if (!rc && !c.out) rc = usage_err("niah needs --model and --out (see --help)");
    const SwaxNiahTask **tasks = NULL;
    long *lengths = NULL;
    double *depths = NULL;
    int n_tasks = 0, n_lengths = 0, nd = 0;
    if (!rc) rc = parse_tasks(tasks_s, &tasks, &n_tasks);
    if (!rc) {
        rc = swax_parse_long_list("--lengths", lengths_s, 64, 1L << 40, &lengths, &n_lengths);
        if (rc) rc = cli_fail(CMD, rc);
    }
    if (!rc && depths_s) rc = parse_depths(depths_s, &depths, &nd);
    if (!rc && !depths_s) {
        nd = (int)n_depths;
        depths = calloc((size_t)nd, sizeof *depths);
        if (!depths) rc = cli_fail(CMD, swax_error(SWAX_E_NOMEM, "depths"));
        for (int i = 0; depths && i < nd; i++) depths[i] = nd == 1 ? 0.5 : (double)i / (nd - 1);
    }
    SwaxModel *m = NULL;
    SwaxTokenizer *tok = NULL;
    SwaxWords words = {0};
    SwaxEssay essay = {0};
    if (!rc) rc = load_model(&c, &m);
    if (!rc && (rc = swax_eval_load_tokenizer(c.tokenizer, c.model_dir, &tok))) rc = cli_fail(CMD, rc);
    if (!rc && (rc = load_words(words_path, &words))) rc = cli_fail(CMD, rc);
    if (!rc) rc = load_essay(essays, n_essays, tok, &essay, any_essay_task(tasks, n_tasks));
    if (!rc) {
        SwaxNiahRunOpts o = {.model = m, .model_name = c.model_dir, .tok = tok, .tasks = tasks, .n_tasks = n_tasks,
                             .lengths = lengths, .n_lengths = n_lengths, .depths = depths, .n_depths = nd,
                             .samples = (int)samples, .seed = (uint64_t)seed, .window = (int)c.window,
                             .chunk = (int)c.chunk, .max_new = (int)max_new, .batch = (int)batch,
                             .save_prompts = save_prompts, .time_limit = time_limit, .out_dir = c.out,
                             .quiet = c.quiet};
        o.gen.tok = tok, o.gen.words = &words, o.gen.essay = essay.n ? &essay : NULL;
        double acc = 0;
        rc = swax_eval_niah(&o, &acc);
        if (rc) rc = cli_fail(CMD, rc);
        else printf("NIAH accuracy %.1f%% over %d task(s) x %d length(s) x %d depth(s) x %ld sample(s); wrote %s/results.md\n",
                    acc, n_tasks, n_lengths, nd, samples, c.out);
    }
    swax_essay_free(&essay);
    swax_words_free(&words);
    swax_tokenizer_free(tok);
    swax_model_free(m);
    free(tasks);
    free(lengths);
    free(depths);
    free(essays);
    return rc;
}

/* ---- choice ------------------------------------------------------------------------------ */

static int cmd_choice(int argc, char **argv) {
    static const struct option opts[] = {COMMON_OPTS,
                                         {"tasks", required_argument, 0, 'T'},
                                         {"limit", required_argument, 0, 'n'},
                                         {0, 0, 0, 0}};
    Common c = {0};
    const char *tasks_s = NULL;
    long limit = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int h = common_flag(&c, opt, optarg);
        if (h < 0) return SWAX_E_USAGE;
        if (h) continue;
        switch (opt) {
        case 'T': tasks_s = optarg; break;
        case 'n': if (cli_parse_int(CMD, "--limit", optarg, 1, 1L << 40, &limit)) return SWAX_E_USAGE; break;
        case 'h':
            printf("usage: swax eval choice --model DIR --tasks FILE.jsonl[,FILE2.jsonl...] --out DIR\n"
                   "                        [--tokenizer DIR|JSON] [--window W] [--limit N] [--threads N]\n"
                   "                        [--device cpu|cpu-bf16|cuda|cuda-fp32] [--quiet]\n\n"
                   "Multiple choice by log-likelihood (lm-evaluation-harness): each line of a task file is\n"
                   "{\"context\": str, \"choices\": [str, ...], \"answer\": int}. A choice's score is the sum\n"
                   "of the log-probs of its tokens after the context; acc picks the largest sum, acc_norm\n"
                   "the largest sum divided by the choice's length in bytes. Write choices with their\n"
                   "leading space (\" Paris\"). Writes DIR/results.md, DIR/results.json and\n"
                   "DIR/<task>.jsonl (every item's log-likelihoods).\n");
            return 0;
        default: return SWAX_E_USAGE;
        }
    }
    if (optind < argc) return usage_err("unexpected argument (see --help)");
    if (!tasks_s || !c.out) return usage_err("choice needs --model, --tasks and --out (see --help)");
    char **files = NULL;
    int n_files = 0;
    int rc = swax_parse_name_list("--tasks", tasks_s, &files, &n_files);
    if (rc) return cli_fail(CMD, rc);
    SwaxModel *m = NULL;
    SwaxTokenizer *tok = NULL;
    rc = load_model(&c, &m);
    if (!rc && (rc = swax_eval_load_tokenizer(c.tokenizer, c.model_dir, &tok))) rc = cli_fail(CMD, rc);
    if (!rc) {
        SwaxChoiceOpts o = {.model = m, .model_name = c.model_dir, .tok = tok, .task_files = (const char *const *)files,
                            .n_tasks = n_files, .limit = limit, .window = (int)c.window, .out_dir = c.out,
                            .quiet = c.quiet};
        rc = swax_eval_choice(&o);
        if (rc) rc = cli_fail(CMD, rc);
    }
    swax_tokenizer_free(tok);
    swax_model_free(m);
    swax_free_name_list(files, n_files);
    return rc;
}

/* ---- gen-data ---------------------------------------------------------------------------- */

static int cmd_gen_data(int argc, char **argv) {
    static const struct option opts[] = {{"kind", required_argument, 0, 'K'},
                                         {"docs", required_argument, 0, 'n'},
                                         {"min-len", required_argument, 0, 'a'},
                                         {"max-len", required_argument, 0, 'b'},
                                         {"seed", required_argument, 0, 's'},
                                         {"tokenizer", required_argument, 0, 't'},
                                         {"tasks", required_argument, 0, 'T'},
                                         {"essay", required_argument, 0, 'e'},
                                         {"words", required_argument, 0, 'W'},
                                         {"queries", required_argument, 0, 'Q'},
                                         {"out", required_argument, 0, 'o'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    long queries = SWAX_KV_QUERIES;
    const char *kind = "niah", *tok_s = NULL, *tasks_s = swax_niah_task_list(), *words_path = NULL, *out = NULL;
    const char **essays = calloc((size_t)argc + 1, sizeof *essays);
    int n_essays = 0, quiet = 0, opt, rc = 0;
    long docs = -1, min_len = -1, max_len = -1, seed = 0;
    if (!essays) return cli_fail(CMD, swax_error(SWAX_E_NOMEM, "arguments"));
    optind = 1;
    while (!rc && (opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'K': kind = optarg; break;
        case 'n': rc = cli_parse_int(CMD, "--docs", optarg, 1, 1L << 40, &docs); break;
        case 'a': rc = cli_parse_int(CMD, "--min-len", optarg, 1, 1L << 40, &min_len); break;
        case 'b': rc = cli_parse_int(CMD, "--max-len", optarg, 1, 1L << 40, &max_len); break;
        case 's': rc = cli_parse_int(CMD, "--seed", optarg, 0, 1L << 62, &seed); break;
        case 't': tok_s = optarg; break;
        case 'T': tasks_s = optarg; break;
        case 'e': essays[n_essays++] = optarg; break;
        case 'W': words_path = optarg; break;
        case 'Q':
            if (!strcmp(optarg, "all")) queries = 0;
            else rc = cli_parse_int(CMD, "--queries", optarg, 1, 1L << 20, &queries);
            break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case 'h':
            printf("usage: swax eval gen-data --kind niah|kv|niah-choice --docs N --min-len L --max-len L --out FILE.jsonl\n"
                   "                          [--seed S] [--tokenizer DIR|JSON] [--tasks ...] [--essay FILE|DIR]...\n"
                   "                          [--words FILE] [--queries N|all] [--quiet]\n\n"
                   "Synthetic retrieval documents for training, one {\"text\": ...} per line (mix them into\n"
                   "shards with `swax data build --mix FILE.jsonl:WEIGHT`). Lengths are tokens of\n"
                   "--tokenizer (bytes without one), drawn uniformly in [min, max]; a NIAH document\n"
                   "cannot be shorter than its instructions, needles and answer: a --min-len below that\n"
                   "is an error that names the least one that fits.\n"
                   "  niah: a NIAH prompt of a task drawn from --tasks at a uniform depth, followed by its\n"
                   "        answer (\" 1234567.\"), so next-token training learns retrieval. Essay tasks use\n"
                   "        --essay (TRAINING prose — never the held-out essay NIAH is evaluated on), else\n"
                   "        the noise haystack.\n"
                   "  kv:   \"Key-value pairs:\" then \"{key}: {value}\" lines, then \"Recall:\" and up to\n"
                   "        --queries (default 4; all: every pair, in random order) of the keys again, each\n"
                   "        followed by its value.\n"
                   "  niah-choice: items for `swax eval choice` (not training documents): a NIAH prompt\n"
                   "        of --min-len..--max-len tokens as the context, its answer and 3 of the same\n"
                   "        shape with other values as the choices; use the held-out --essay, as eval niah.\n");
            free(essays);
            return 0;
        default: rc = SWAX_E_USAGE;
        }
    }
    if (!rc && optind < argc) rc = usage_err("unexpected argument (see --help)");
    if (!rc && (docs < 0 || min_len < 0 || max_len < 0 || !out))
        rc = usage_err("gen-data needs --docs, --min-len, --max-len and --out (see --help)");
    if (!rc && strcmp(kind, "niah") && strcmp(kind, "kv") && strcmp(kind, "niah-choice"))
        rc = usage_err("--kind must be niah, kv or niah-choice");
    const SwaxNiahTask **tasks = NULL;
    int n_tasks = 0;
    SwaxTokenizer *tok = NULL;
    SwaxWords words = {0};
    SwaxEssay essay = {0};
    if (!rc) rc = parse_tasks(tasks_s, &tasks, &n_tasks);
    if (!rc && (rc = tok_s ? swax_eval_load_tokenizer(tok_s, NULL, &tok) : swax_byte_tokenizer(&tok)))
        rc = cli_fail(CMD, rc);
    if (!rc && (rc = load_words(words_path, &words))) rc = cli_fail(CMD, rc);
    if (!rc && n_essays && (rc = swax_essay_load(essays, n_essays, tok, &essay))) rc = cli_fail(CMD, rc);
    if (!rc) {
        SwaxGenDataOpts o = {.kv = !strcmp(kind, "kv"), .choice = !strcmp(kind, "niah-choice"), .tasks = tasks, .n_tasks = n_tasks, .docs = docs,
                             .min_len = min_len, .max_len = max_len, .seed = (uint64_t)seed, .out_path = out,
                             .quiet = quiet, .kv_queries = (int)queries};
        o.gen.tok = tok, o.gen.words = &words, o.gen.essay = essay.n ? &essay : NULL, o.gen.essay_as_noise = 1;
        rc = swax_gen_data(&o);
        if (rc) rc = cli_fail(CMD, rc);
        else if (!quiet) fprintf(stderr, "wrote %ld %s documents to %s\n", docs, kind, out);
    }
    swax_essay_free(&essay);
    swax_words_free(&words);
    swax_tokenizer_free(tok);
    free(tasks);
    free(essays);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

int cmd_eval(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? SWAX_E_USAGE : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "ppl")) return cmd_ppl(argc - 1, argv + 1);
    if (!strcmp(sub, "niah")) return cmd_niah(argc - 1, argv + 1);
    if (!strcmp(sub, "choice")) return cmd_choice(argc - 1, argv + 1);
    if (!strcmp(sub, "bench")) return cmd_eval_bench(argc - 1, argv + 1);
    if (!strcmp(sub, "gen-data")) return cmd_gen_data(argc - 1, argv + 1);
    fprintf(stderr, "swax eval: unknown subcommand '%s'\n\n", sub);
    usage_main(stderr);
    return SWAX_E_USAGE;
}
