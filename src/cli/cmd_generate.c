/* cmd_generate.c — `swax generate`: stream tokens from a model with constant
 * memory (src/infer/). See docs/inference.md. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "infer/infer.h"
#include "io/tokenizer.h"

#define CMD "generate"

static void usage(FILE *f) {
    fprintf(f,
            "usage: swax generate --model DIR [--prompt STR | --prompt-file F | --ids \"1 2 3\"]  (else stdin)\n"
            "                     [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
            "                     [--greedy] [--no-stop] [--window W] [--chunk L] [--threads N]\n"
            "                     [--save-state F] [--load-state F] [--print-ids]\n\n"
            "Feeds the prompt to the model (chunked prefill), then samples new tokens one at a\n"
            "time and streams them to stdout. Memory does not grow with the context.\n\n"
            "  --model DIR        checkpoint folder (config.json, model.safetensors; tokenizer.json\n"
            "                     beside them for text prompts and text output)\n"
            "  --prompt STR       prompt text (special tokens such as <|endoftext|> are recognised)\n"
            "  --prompt-file F    prompt text from a file ('-' = stdin), streamed: read, tokenized and\n"
            "                     fed in pieces, so memory does not grow with the file\n"
            "  --ids \"1 2 3\"      prompt as token ids (spaces or commas); no tokenizer needed\n"
            "  --max-tokens N     new tokens at most (default 256; 0 = only feed the prompt)\n"
            "  --temperature T    sampling temperature (default 0.8; 0 = greedy)\n"
            "  --top-k K          sample among the K most likely tokens (default off)\n"
            "  --top-p P          nucleus sampling: the smallest set with probability >= P (default off)\n"
            "  --seed S           sampler seed (default 0: the same command gives the same text)\n"
            "  --greedy           always the most likely token\n"
            "  --no-stop          do not stop at end-of-text (config eot_token)\n"
            "  --window W         SWA window to run at (default: config.json's window)\n"
            "  --chunk L          prefill chunk = mLSTM chunk size (default 64; speed only)\n"
            "  --threads N        threads (default: OpenMP's)\n"
            "  --device D         cpu (default), cpu-bf16 (CPU, bf16 matrix products: made for training; small\n"
            "                     decode steps run faster on cpu), cuda (GPU, bf16 matrix products) or\n"
            "                     cuda-fp32 (GPU, fp32):\n"
            "                     the state lives on the GPU; state files move between devices\n"
            "  --save-state F     after the prompt, save the state to F (prompt caching)\n"
            "  --load-state F     start from a saved state (same model and window), then feed the prompt\n"
            "  --print-ids        print token ids instead of text\n"
            "  --bench            instead of generating, benchmark inference on this model: prefill\n"
            "                     tokens/s at 1k/32k/1M context, decode tokens/s, bandwidth bound\n"
            "                     (JSON lines; --window, --chunk, --threads apply; see `swax bench infer`)\n\n"
            "Prefill and decode speeds go to stderr. Exit codes: 0 ok, 2 usage, 3 bad input\n"
            "(missing/mismatched model, state file or tokenizer; empty prompt; ids out of range).\n");
}

static int parse_ids(const char *s, SwaxTokenBuf *out) {
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX)
            return swax_error(SWAX_E_USAGE, "--ids expects integers separated by spaces or commas, got '%s'", s);
        if (out->n == out->cap) {
            size_t nc = out->cap ? 2 * out->cap : 64;
            int32_t *ni = realloc(out->ids, nc * sizeof *ni);
            if (!ni) return swax_error(SWAX_E_NOMEM, "prompt ids");
            out->ids = ni, out->cap = nc;
        }
        out->ids[out->n++] = (int32_t)v;
        p = end;
    }
    return 0;
}

/* Bytes read per piece of a prompt file (SWAX_PROMPT_PIECE overrides: tests
 * cut the text everywhere with tiny pieces). */
#define PROMPT_PIECE (64 << 10)

typedef struct {
    SwaxModel *m;
    SwaxState *s;
    int chunk;
    float *logits;
    size_t fed;       /* prompt tokens fed so far */
    double t_prefill; /* seconds inside swax_prefill */
} Feeder;

/* Feeds the ids in b to the model: all of them if `all`, else those up to the
 * last absolute position that is a multiple of the prefill piece (so that the
 * pieces are cut where one prefill of the whole prompt cuts them: the same
 * numbers, bit for bit). What is fed leaves b. */
static int feed_ids(Feeder *f, SwaxTokenBuf *b, int all) {
    size_t k = b->n;
    if (!all) {
        const size_t piece = (size_t)swax_prefill_piece(f->s, f->chunk);
        const size_t pos = (size_t)swax_state_position(f->s, 0);
        const size_t end = (pos + b->n) / piece * piece;
        k = end > pos ? end - pos : 0;
    }
    if (!k) return 0;
    const double t0 = swax_time_sec();
    int rc = swax_prefill(f->m, f->s, 0, b->ids, k, f->chunk, f->logits, NULL);
    f->t_prefill += swax_time_sec() - t0;
    if (rc) return swax_error_wrap(rc, "prompt tokens %zu..%zu", f->fed, f->fed + k - 1);
    f->fed += k;
    memmove(b->ids, b->ids + k, (b->n - k) * sizeof *b->ids);
    b->n -= k;
    return 0;
}

/* The prompt text of a file (or stdin), streamed: read in pieces, encoded as
 * it comes (swax_encoder_*: the ids equal those of the whole text), and fed to
 * the model a prefill piece at a time. Memory does not grow with the file. */
static int stream_prompt(FILE *in, const char *name, const SwaxTokenizer *tok, Feeder *f) {
    size_t piece = PROMPT_PIECE;
    const char *env = getenv("SWAX_PROMPT_PIECE");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end || v < 1 || v > (1L << 30))
            return swax_error(SWAX_E_USAGE, "SWAX_PROMPT_PIECE must be a byte count in [1, 2^30], got '%s'", env);
        piece = (size_t)v;
    }
    char *buf = malloc(piece);
    SwaxEncoder *enc = NULL;
    SwaxTokenBuf ids = {0};
    int rc = buf ? swax_encoder_create(tok, 1, &enc) : swax_error(SWAX_E_NOMEM, "prompt buffer");
    size_t k;
    while (!rc && (k = fread(buf, 1, piece, in)) > 0) {
        rc = swax_encoder_feed(enc, buf, k, &ids);
        if (!rc) rc = feed_ids(f, &ids, 0);
    }
    if (!rc && ferror(in)) rc = swax_error(SWAX_E_INPUT, "%s: read failed: %s", name, strerror(errno));
    if (!rc) rc = swax_encoder_finish(enc, &ids);
    if (!rc) rc = feed_ids(f, &ids, 1);
    swax_token_buf_free(&ids);
    swax_encoder_free(enc);
    free(buf);
    return rc;
}

static void emit(const SwaxTokenizer *tok, int32_t id, int print_ids) {
    if (print_ids || !tok) {
        printf("%d ", id);
    } else {
        const char *b;
        size_t n;
        if (swax_tokenizer_token_bytes(tok, id, &b, &n) == 0) fwrite(b, 1, n, stdout);
        else printf("[%d]", id);
    }
    fflush(stdout);
}

int cmd_generate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", 1, 0, 'm'},      {"prompt", 1, 0, 'p'},     {"prompt-file", 1, 0, 'f'}, {"ids", 1, 0, 'i'},
        {"max-tokens", 1, 0, 'n'}, {"temperature", 1, 0, 't'}, {"top-k", 1, 0, 'k'},      {"top-p", 1, 0, 'P'},
        {"seed", 1, 0, 's'},       {"window", 1, 0, 'w'},     {"chunk", 1, 0, 'c'},       {"greedy", 0, 0, 'g'},
        {"no-stop", 0, 0, 'N'},    {"save-state", 1, 0, 'S'}, {"load-state", 1, 0, 'L'},  {"threads", 1, 0, 'j'},
        {"print-ids", 0, 0, 'I'},  {"bench", 0, 0, 'B'},      {"device", 1, 0, 'd'},      {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model_dir = NULL, *prompt = NULL, *prompt_file = NULL, *ids = NULL, *save = NULL, *load = NULL;
    const char *device = "cpu";
    long max_tokens = 256, top_k = 0, seed = 0, window = 0, chunk = 0, threads = 0;
    double temperature = 0.8, top_p = 1.0;
    int greedy = 0, no_stop = 0, print_ids = 0, bench = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'p': prompt = optarg; break;
        case 'f': prompt_file = optarg; break;
        case 'i': ids = optarg; break;
        case 'n': rc = cli_parse_int(CMD, "--max-tokens", optarg, 0, LONG_MAX, &max_tokens); break;
        case 't': rc = cli_parse_double(CMD, "--temperature", optarg, &temperature); break;
        case 'k': rc = cli_parse_int(CMD, "--top-k", optarg, 0, INT_MAX, &top_k); break;
        case 'P': rc = cli_parse_double(CMD, "--top-p", optarg, &top_p); break;
        case 's': rc = cli_parse_int(CMD, "--seed", optarg, 0, LONG_MAX, &seed); break;
        case 'w': rc = cli_parse_int(CMD, "--window", optarg, 1, INT_MAX, &window); break;
        case 'c': rc = cli_parse_int(CMD, "--chunk", optarg, 1, 65536, &chunk); break;
        case 'j': rc = cli_parse_int(CMD, "--threads", optarg, 1, 4096, &threads); break;
        case 'g': greedy = 1; break;
        case 'N': no_stop = 1; break;
        case 'S': save = optarg; break;
        case 'L': load = optarg; break;
        case 'I': print_ids = 1; break;
        case 'B': bench = 1; break;
        case 'd': device = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "swax " CMD ": error: unknown or incomplete option '%s'\n\n", argv[optind - 1]);
            usage(stderr);
            return SWAX_E_USAGE;
        }
        if (rc) return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "swax " CMD ": error: unexpected argument '%s' (a prompt goes after --prompt)\n", argv[optind]);
        return SWAX_E_USAGE;
    }
    if (!model_dir) {
        fprintf(stderr, "swax " CMD ": error: --model DIR is required\n\n");
        usage(stderr);
        return SWAX_E_USAGE;
    }
    if ((prompt != NULL) + (prompt_file != NULL) + (ids != NULL) > 1) {
        fprintf(stderr, "swax " CMD ": error: give one of --prompt, --prompt-file and --ids\n");
        return SWAX_E_USAGE;
    }
    if (!(temperature >= 0) || !(top_p > 0) || top_p > 1) {
        fprintf(stderr, "swax " CMD ": error: --temperature must be >= 0 and --top-p in (0, 1]\n");
        return SWAX_E_USAGE;
    }
    if (threads > 0) swax_set_threads((int)threads);
    if (bench) {
        SwaxInferBenchOpts bo = {0};
        bo.window = (int)window, bo.chunk = (int)chunk, bo.threads = (int)threads, bo.device = device;
        int brc = swax_infer_bench_ex(model_dir, &bo, stdout);
        return brc ? cli_fail(CMD, brc) : 0;
    }

    SwaxModel *m = NULL;
    SwaxTokenizer *tok = NULL;
    SwaxState *s = NULL;
    SwaxTokenBuf pbuf = {0};
    FILE *in = NULL; /* the prompt file or stdin, streamed */
    float *logits = NULL;
    int rc = swax_model_load(model_dir, &m);
    if (!rc) rc = swax_model_set_device(m, device);
    if (rc) goto done;
    const SwaxConfig *cfg = swax_model_config(m);
    {
        char tpath[8400], cdir[4200];
        struct stat st;
        if (swax_checkpoint_dir(model_dir, cdir, sizeof cdir) == 0 &&
            swax_path_join(tpath, sizeof tpath, cdir, "tokenizer.json") == 0 && stat(tpath, &st) == 0) {
            rc = swax_tokenizer_load_json(tpath, &tok);
            if (rc) goto done;
        }
    }
    /* the prompt: ids or a string in memory; a file or stdin streamed */
    const char *in_name = prompt_file && strcmp(prompt_file, "-") != 0 ? prompt_file : "stdin";
    if (ids) {
        rc = parse_ids(ids, &pbuf);
        if (rc) goto done;
    } else {
        if (!tok) {
            rc = swax_error(SWAX_E_INPUT, "%s has no tokenizer.json: give the prompt as --ids", model_dir);
            goto done;
        }
        if (prompt) {
            rc = swax_tokenizer_encode(tok, prompt, strlen(prompt), 1, &pbuf);
            if (rc) goto done;
        } else if (strcmp(in_name, "stdin") != 0) {
            struct stat st;
            if (!(in = fopen(prompt_file, "rb"))) {
                rc = swax_error(SWAX_E_INPUT, "%s: cannot open the prompt: %s", prompt_file, strerror(errno));
                goto done;
            }
            if (fstat(fileno(in), &st) == 0 && S_ISDIR(st.st_mode)) {
                rc = swax_error(SWAX_E_INPUT, "%s: is a folder, not a prompt file", prompt_file);
                goto done;
            }
        } else {
            in = stdin;
        }
    }
    if (!in && pbuf.n == 0) {
        rc = swax_error(SWAX_E_INPUT, "empty prompt: nothing to feed the model (give at least one token)");
        goto done;
    }
    int eot = cfg->eot_token;
    if (eot < 0 && tok) eot = swax_tokenizer_eot(tok);

    rc = swax_state_create(m, 1, (int)window, &s);
    if (rc) goto done;
    if (load) {
        rc = swax_state_load(s, m, 0, load);
        if (rc) goto done;
    }
    logits = malloc(sizeof(float) * (size_t)cfg->vocab_size);
    if (!logits) {
        rc = swax_error(SWAX_E_NOMEM, "logits");
        goto done;
    }
    Feeder feeder = {m, s, (int)chunk, logits, 0, 0.0};
    rc = in ? stream_prompt(in, in_name, tok, &feeder) : feed_ids(&feeder, &pbuf, 1);
    if (rc) goto done;
    if (feeder.fed == 0) {
        rc = swax_error(SWAX_E_INPUT, "%s: empty prompt: nothing to feed the model (give at least one token)", in_name);
        goto done;
    }
    const double t_prefill = feeder.t_prefill;
    if (save) {
        rc = swax_state_save(s, m, 0, save);
        if (rc) goto done;
    }
    SwaxSampler sp = {greedy ? 0.0f : (float)temperature, (int)top_k, (float)top_p};
    SwaxRng rng;
    swax_rng_seed(&rng, (uint64_t)seed, 0x67656e);
    long produced = 0, decoded = 0;
    /* greedy: the next id straight from the decode (on a GPU the argmax runs
     * there: no logits copy per token) */
    const int greedy_ids = sp.temperature <= 0;
    int32_t next_id = -1;
    const double t1 = swax_time_sec();
    while (produced < max_tokens) {
        int32_t id = next_id >= 0 ? next_id : swax_sample(logits, cfg->vocab_used, &sp, &rng);
        if (id < 0) {
            rc = SWAX_E_INTERNAL;
            goto done;
        }
        if (id == eot && !no_stop) break;
        emit(tok, id, print_ids);
        produced++;
        if (produced == max_tokens) break;
        int seq = 0;
        rc = greedy_ids ? swax_decode_greedy(m, s, &seq, &id, 1, &next_id) : swax_decode(m, s, &seq, &id, 1, logits);
        if (rc) goto done;
        decoded++;
    }
    const double t_decode = swax_time_sec() - t1;
    if (produced && (print_ids || !tok)) printf("\n");
    fflush(stdout);
    fprintf(stderr,
            "\n[swax generate] prefill: %zu tokens in %.3f s (%.1f tokens/s); decode: %ld tokens in %.3f s "
            "(%.1f tokens/s); context %ld tokens, window %d, state %.1f KiB\n",
            feeder.fed, t_prefill, t_prefill > 0 ? feeder.fed / t_prefill : 0.0, decoded, t_decode,
            t_decode > 0 ? decoded / t_decode : 0.0, swax_state_position(s, 0), swax_state_window(s),
            swax_state_bytes(s) / 1024.0);
done:
    if (in && in != stdin) fclose(in);
    swax_state_free(s);
    swax_tokenizer_free(tok);
    swax_token_buf_free(&pbuf);
    free(logits);
    swax_model_free(m);
    return rc ? cli_fail(CMD, rc) : 0;
}
