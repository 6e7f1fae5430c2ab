/* cmd_eval_bench.c — `swax eval bench` (docs/benchmarks.md). Flags only; the
 * work is in src/eval/bench_*.c. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "eval/bench.h"

#define CMD "eval bench"

static const char *const k_heldout[] = {"data/corpus/heldout", ".cache/corpus/heldout", NULL};

static void usage(void) {
    printf("usage: swax eval bench --model DIR --out DIR (--task NAME --data FILE|DIR | --suite paper --data-dir DIR)\n"
           "                       [--limit N] [--shots K] [--seed S] [--tokenizer DIR|JSON] [--window W]\n"
           "                       [--batch 8] [--samples N] [--temperature 0.8] [--max-new N]\n"
           "                       [--max-prompt TOKENS] [--prompts dataset2prompt.json]\n"
           "                       [--essay FILE|DIR]... [--lengths 1k,2k,4k] [--babilong-n 10]\n"
           "                       [--timeout 10] [--mem-mb 2048] [--threads N] [--chunk L] [--quiet]\n"
           "                       [--device cpu|cpu-bf16|cuda|cuda-fp32]\n\n"
           "The paper's benchmarks, read from their public release files (docs/benchmarks.md: formats,\n"
           "prompts, metrics, where to get each). Tasks:\n"
           "  hellaswag arc_easy arc_challenge piqa siqa race   multiple choice: acc, acc_norm (log-likelihood /\n"
           "                                                    characters), acc_bytes (/ bytes)\n"
           "  winogrande                                         the shared suffix after each filled-in option: acc\n"
           "  nq_open triviaqa                                   greedy answer: exact_match, f1 (normalised)\n"
           "  humaneval mbpp                                     code run with its tests in a sandbox: pass@1,\n"
           "                                                     pass@k (--samples N > 1, unbiased estimator)\n"
           "  longbench                                          its JSONL files: each set's metric (qa_f1, rouge,\n"
           "                                                     classification, retrieval, count, code_sim)\n"
           "  longbench_v2                                       its data.json: acc overall, easy/hard, short/medium/long\n"
           "  babilong                                           generated: qa1..qa5 facts hidden in --essay prose at\n"
           "                                                     --lengths tokens: acc\n"
           "--suite paper runs every task whose file is in --data-dir (names in docs/benchmarks.md, e.g.\n"
           "hellaswag.jsonl or hellaswag_val.jsonl, longbench/ with its data/*.jsonl), and babilong when\n"
           "held-out prose is found. --shots: few-shot examples drawn from the same file with --seed\n"
           "(default: 0; mbpp 3, its standard prompt problems). --max-prompt cuts long prompts in the\n"
           "middle (LongBench's rule). Generated code runs only in the sandbox: a child process with a\n"
           "--timeout, RLIMIT_AS (--mem-mb), RLIMIT_FSIZE, RLIMIT_NPROC, a scratch folder and a new network\n"
           "namespace (a warning, and a line in results.md, when the kernel refuses one).\n"
           "Writes DIR/samples.jsonl, DIR/results.md, DIR/results.json. Progress with ETA on stderr.\n");
}

static int usage_err(const char *msg) {
    fprintf(stderr, "swax eval bench: error: %s\n", msg);
    return SWAX_E_USAGE;
}

/* The first of the task's documented names that exists in dir. */
static int find_in_dir(const SwaxBenchTask *t, const char *dir, char *out, size_t cap) {
    char names[256];
    snprintf(names, sizeof names, "%s", t->files);
    for (char *s = strtok(names, ":"); s; s = strtok(NULL, ":")) {
        struct stat st;
        snprintf(out, cap, "%s/%s", dir, s);
        if (stat(out, &st) == 0) return 1;
    }
    return 0;
}

int cmd_eval_bench(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},     {"tokenizer", required_argument, 0, 't'},
        {"out", required_argument, 0, 'o'},       {"task", required_argument, 0, 'T'},
        {"data", required_argument, 0, 'd'},      {"suite", required_argument, 0, 'S'},
        {"data-dir", required_argument, 0, 'D'},  {"limit", required_argument, 0, 'n'},
        {"shots", required_argument, 0, 'k'},     {"seed", required_argument, 0, 's'},
        {"window", required_argument, 0, 'w'},    {"threads", required_argument, 0, 'j'},
        {"chunk", required_argument, 0, 'c'},     {"batch", required_argument, 0, 'B'},
        {"samples", required_argument, 0, 'N'},   {"temperature", required_argument, 0, 'E'},
        {"max-new", required_argument, 0, 'x'},   {"max-prompt", required_argument, 0, 'P'},
        {"prompts", required_argument, 0, 'p'},   {"essay", required_argument, 0, 'e'},
        {"lengths", required_argument, 0, 'l'},   {"babilong-n", required_argument, 0, 'b'},
        {"timeout", required_argument, 0, 'y'},   {"mem-mb", required_argument, 0, 'M'},
        {"quiet", no_argument, 0, 'q'},           {"help", no_argument, 0, 'h'},
        {"device", required_argument, 0, 'G'},
        {0, 0, 0, 0}};
    const char *device = NULL;
    const char *model = NULL, *tok_s = NULL, *out = NULL, *task_s = NULL, *data = NULL, *suite = NULL, *dir = NULL;
    const char *prompts = NULL, *lengths_s = "1k,2k,4k";
    const char **essays = calloc((size_t)argc + 1, sizeof *essays);
    int n_essays = 0, quiet = 0, opt, rc = 0;
    long limit = 0, shots = -1, seed = 0, window = 0, threads = 0, chunk = 0, batch = 8, samples = 1, max_new = 0;
    long max_prompt = 0, bab_n = 10, mem_mb = 2048;
    double temperature = 0.8, timeout = 10;
    if (!essays) return cli_fail(CMD, swax_error(SWAX_E_NOMEM, "arguments"));
    optind = 1;
    while (!rc && (opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'm': model = optarg; break;
        case 't': tok_s = optarg; break;
        case 'o': out = optarg; break;
        case 'T': task_s = optarg; break;
        case 'd': data = optarg; break;
        case 'S': suite = optarg; break;
        case 'D': dir = optarg; break;
        case 'n': rc = cli_parse_int(CMD, "--limit", optarg, 1, 1L << 40, &limit); break;
        case 'k': rc = cli_parse_int(CMD, "--shots", optarg, 0, 64, &shots); break;
        case 's': rc = cli_parse_int(CMD, "--seed", optarg, 0, 1L << 62, &seed); break;
        case 'w': rc = cli_parse_int(CMD, "--window", optarg, 1, 1 << 30, &window); break;
        case 'j': rc = cli_parse_int(CMD, "--threads", optarg, 1, 4096, &threads); break;
        case 'c': rc = cli_parse_int(CMD, "--chunk", optarg, 1, 4096, &chunk); break;
        case 'B': rc = cli_parse_int(CMD, "--batch", optarg, 1, 1024, &batch); break;
        case 'N': rc = cli_parse_int(CMD, "--samples", optarg, 1, 1024, &samples); break;
        case 'x': rc = cli_parse_int(CMD, "--max-new", optarg, 1, 1 << 20, &max_new); break;
        case 'P': rc = cli_parse_int(CMD, "--max-prompt", optarg, 16, 1L << 40, &max_prompt); break;
        case 'b': rc = cli_parse_int(CMD, "--babilong-n", optarg, 1, 1 << 20, &bab_n); break;
        case 'M': rc = cli_parse_int(CMD, "--mem-mb", optarg, 64, 1 << 20, &mem_mb); break;
        case 'E': rc = cli_parse_double(CMD, "--temperature", optarg, &temperature); break;
        case 'y': rc = cli_parse_double(CMD, "--timeout", optarg, &timeout); break;
        case 'p': prompts = optarg; break;
        case 'e': essays[n_essays++] = optarg; break;
        case 'l': lengths_s = optarg; break;
        case 'q': quiet = 1; break;
        case 'G': device = optarg; break;
        case 'h':
            usage();
            free(essays);
            return 0;
        default: rc = SWAX_E_USAGE;
        }
    }
    if (!rc && optind < argc) rc = usage_err("unexpected argument (see --help)");
    if (!rc && (!model || !out)) rc = usage_err("needs --model and --out (see --help)");
    if (!rc && !!task_s == !!suite) rc = usage_err("give either --task NAME or --suite paper");
    if (!rc && suite && strcmp(suite, "paper")) rc = usage_err("--suite knows one suite: paper");
    if (!rc && suite && !dir) rc = usage_err("--suite paper needs --data-dir DIR");
    if (!rc && !(timeout > 0 && timeout <= 3600)) rc = usage_err("--timeout must be in (0, 3600] seconds");
    if (!rc && !(temperature >= 0 && temperature <= 10)) rc = usage_err("--temperature must be in [0, 10]");

    const SwaxBenchTask *one = NULL;
    if (!rc && task_s) {
        one = swax_bench_task(task_s);
        if (!one) {
            fprintf(stderr, "swax eval bench: error: unknown task '%s' (known: %s)\n", task_s, swax_bench_task_list());
            rc = SWAX_E_USAGE;
        } else if (one->read && !data) {
            rc = usage_err("--task needs --data FILE|DIR (docs/benchmarks.md: where to get each release)");
        }
    }
    long *lengths = NULL;
    int n_lengths = 0;
    if (!rc && (rc = swax_parse_long_list("--lengths", lengths_s, 64, 1L << 30, &lengths, &n_lengths))) rc = cli_fail(CMD, rc);

    SwaxModel *m = NULL;
    SwaxTokenizer *tok = NULL;
    SwaxEssay essay = {0};
    if (!rc) {
        if (threads > 0) swax_set_threads((int)threads);
        if ((rc = swax_model_load(model, &m))) rc = cli_fail(CMD, rc);
        else if (device && (rc = swax_model_set_device(m, device))) rc = cli_fail(CMD, rc);
    }
    if (!rc && (rc = swax_eval_load_tokenizer(tok_s, model, &tok))) rc = cli_fail(CMD, rc);
    /* held-out prose for babilong: --essay, else the folder scripts/fetch_corpus.sh keeps */
    int want_essay = !rc && ((one && !one->read) || suite);
    if (want_essay) {
        struct stat st;
        const char *def = NULL;
        for (int i = 0; !n_essays && k_heldout[i] && !def; i++)
            if (stat(k_heldout[i], &st) == 0) def = k_heldout[i];
        if (def) essays[n_essays++] = def;
        if (n_essays && (rc = swax_essay_load(essays, n_essays, tok, &essay))) rc = cli_fail(CMD, rc);
        if (!rc && !n_essays && one)
            rc = usage_err("babilong needs --essay FILE|DIR: prose the model was NOT trained on "
                           "(scripts/fetch_corpus.sh keeps data/corpus/heldout for this)");
    }
    SwaxBenchJob jobs[32];
    char paths[32][4200];
    int n_jobs = 0;
    if (!rc && one) {
        jobs[n_jobs].task = one, jobs[n_jobs++].data = data;
    } else if (!rc) {
        for (int i = 0; swax_bench_task_at(i) && n_jobs < 32; i++) {
            const SwaxBenchTask *t = swax_bench_task_at(i);
            if (!t->read) {
                if (essay.n) jobs[n_jobs].task = t, jobs[n_jobs++].data = NULL;
                else if (!quiet) fprintf(stderr, "bench: babilong skipped (no held-out prose: --essay)\n");
                continue;
            }
            if (find_in_dir(t, dir, paths[n_jobs], sizeof paths[0])) {
                jobs[n_jobs].task = t, jobs[n_jobs].data = paths[n_jobs];
                n_jobs++;
            } else if (!quiet) {
                fprintf(stderr, "bench: %s skipped (none of %s in %s)\n", t->name, t->files, dir);
            }
        }
        if (!n_jobs) rc = usage_err("--suite paper: no task data found in --data-dir (docs/benchmarks.md lists the names)");
    }
    if (!rc) {
        SwaxBenchOpts o = {.model = m, .model_name = model, .tok = tok, .jobs = jobs, .n_jobs = n_jobs, .limit = limit,
                           .shots = (int)shots, .seed = (uint64_t)seed, .window = (int)window, .chunk = (int)chunk,
                           .batch = (int)batch, .samples = (int)samples, .temperature = (float)temperature,
                           .max_new = (int)max_new, .max_prompt = max_prompt, .prompts_json = prompts,
                           .essay = essay.n ? &essay : NULL, .lengths = lengths, .n_lengths = n_lengths,
                           .babilong_n = (int)bab_n, .out_dir = out, .quiet = quiet};
        o.sandbox.timeout = timeout, o.sandbox.mem_bytes = mem_mb << 20;
        rc = swax_eval_bench(&o);
        if (rc) rc = cli_fail(CMD, rc);
        else if (!quiet) fprintf(stderr, "wrote %s/results.md, results.json, samples.jsonl\n", out);
    }
    swax_essay_free(&essay);
    swax_tokenizer_free(tok);
    swax_model_free(m);
    free(lengths);
    free(essays);
    return rc;
}
