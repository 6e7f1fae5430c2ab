/* cmd_data.c — `swax data build|info|check` (docs/data.md). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "data/build.h"
#include "io/shard.h"
#include "io/tokenizer.h"

#define CMD "data"

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: swax data <build|info|check> [options]   (--help on each)\n\n"
            "  build  text files and folders -> llm.c token shards + data.json\n"
            "  info   print a shard's header, token count and id range\n"
            "  check  validate shards (header, size, every id < --vocab)\n\n"
            "The default corpus (State of the Union, Python stdlib code, held-out Austen)\n"
            "comes from scripts/fetch_corpus.sh; see docs/data.md.\n");
}

/* ---- build --------------------------------------------------------------- */

static void usage_build(FILE *f) {
    fprintf(f,
            "usage: swax data build --tokenizer DIR|JSON|NAME --input PATH... [--mix PATH:WEIGHT ...]\n"
            "                       --out DIR [--val-fraction 0.05] [--shard-tokens 100000000]\n"
            "                       [--seed 1] [--align T] [--threads N] [--quiet]\n\n"
            "Reads files and folders (recursively, sorted; %s; hidden entries and\n"
            "binary files skipped; a file named on its own is read whatever its extension).\n"
            "One document per file, one per line of a .jsonl file ({\"text\": ...}); each\n"
            "document is preceded by <|endoftext|>. Each source's documents are shuffled\n"
            "(--seed) and the first ones, val-fraction of its tokens, go to validation.\n"
            "--mix PATH:WEIGHT adds a source that makes up the fraction WEIGHT of the\n"
            "training tokens (its documents repeated or subsampled to hit it; the --input\n"
            "sources share the rest at their natural sizes; the weights sum to < 1).\n"
            "--align T: each --mix document of at most T+1 tokens lies inside one training\n"
            "row of `swax train --seq-len T` (rows start at multiples of T): one that would\n"
            "cross a row boundary starts at the next row, the gap filled with the start of\n"
            "the next --input document (its rest follows as a document of its own).\n"
            "Writes DIR/train_000000.bin ..., DIR/val_000000.bin ... (llm.c format),\n"
            "DIR/tokenizer.json + tokenizer.tiktoken (a copy) and DIR/data.json.\n"
            "Same inputs and options give the same bytes. Extra arguments are inputs too.\n",
            swax_data_extensions);
}

static int cmd_build(int argc, char **argv) {
    static const struct option opts[] = {{"tokenizer", required_argument, 0, 't'},
                                         {"input", required_argument, 0, 'i'},
                                         {"mix", required_argument, 0, 'm'},
                                         {"out", required_argument, 0, 'o'},
                                         {"val-fraction", required_argument, 0, 'v'},
                                         {"shard-tokens", required_argument, 0, 's'},
                                         {"seed", required_argument, 0, 'S'},
                                         {"align", required_argument, 0, 'a'},
                                         {"threads", required_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    SwaxDataBuildOptions o;
    swax_data_build_defaults(&o);
    o.verbose = 1;
    SwaxDataSource *src = calloc((size_t)argc + 1, sizeof *src);
    char **owned = calloc((size_t)argc + 1, sizeof *owned);
    int nsrc = 0, nowned = 0, rc = 0, c;
    const char *spec = NULL;
    long threads = 0;
    if (!src || !owned) {
        free(src);
        free(owned);
        return cli_fail(CMD, swax_error(SWAX_E_NOMEM, "arguments"));
    }
    optind = 1;
    while (!rc && (c = getopt_long(argc, argv, "t:i:m:o:v:s:S:a:j:qh", opts, NULL)) != -1) {
        switch (c) {
        case 't': spec = optarg; break;
        case 'i': src[nsrc++] = (SwaxDataSource){optarg, 0}; break;
        case 'm': {
            char *p;
            double w;
            if (swax_data_parse_mix(optarg, &p, &w)) {
                fprintf(stderr, "swax data build: error: %s\n", swax_last_error());
                rc = SWAX_E_USAGE;
                break;
            }
            owned[nowned++] = p;
            src[nsrc++] = (SwaxDataSource){p, w};
            break;
        }
        case 'o': o.out_dir = optarg; break;
        case 'v':
            rc = cli_parse_double(CMD, "--val-fraction", optarg, &o.val_fraction);
            if (!rc && !(o.val_fraction >= 0 && o.val_fraction < 1)) {
                fprintf(stderr, "swax data build: error: --val-fraction must be in [0, 1), got '%s'\n", optarg);
                rc = SWAX_E_USAGE;
            }
            break;
        case 's': {
            long v;
            rc = cli_parse_int(CMD, "--shard-tokens", optarg, 1, INT32_MAX, &v);
            if (!rc) o.shard_tokens = (uint64_t)v;
            break;
        }
        case 'S': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-') {
                fprintf(stderr, "swax data build: error: --seed expects a non-negative integer, got '%s'\n", optarg);
                rc = SWAX_E_USAGE;
            }
            o.seed = v;
            break;
        }
        case 'a': {
            long v;
            rc = cli_parse_int(CMD, "--align", optarg, 1, 1 << 24, &v);
            if (!rc) o.align = (uint64_t)v;
            break;
        }
        case 'j': rc = cli_parse_int(CMD, "--threads", optarg, 0, 4096, &threads); break;
        case 'q': o.verbose = 0; break;
        case 'h': usage_build(stdout); goto done;
        default: rc = SWAX_E_USAGE;
        }
    }
    for (int i = optind; !rc && i < argc; i++) src[nsrc++] = (SwaxDataSource){argv[i], 0};
    if (!rc && (!spec || !o.out_dir || !nsrc)) {
        fprintf(stderr, "swax data build: error: needs --tokenizer, --input and --out (see --help)\n");
        rc = SWAX_E_USAGE;
    }
    if (rc) goto done;
    if (threads > 0) swax_set_threads((int)threads);
    SwaxTokenizer *tok = NULL;
    rc = cli_load_tokenizer(spec, &tok);
    if (!rc) {
        o.tokenizer = tok;
        o.tokenizer_name = spec;
        o.sources = src;
        o.n_sources = nsrc;
        rc = swax_data_build(&o, NULL);
    }
    swax_tokenizer_free(tok);
    if (rc) rc = cli_fail(CMD, rc);
done:
    for (int i = 0; i < nowned; i++) free(owned[i]);
    free(owned);
    free(src);
    return rc;
}

/* ---- info / check --------------------------------------------------------- */

static int shard_info(const char *path, long eot) {
    SwaxShard s;
    SWAX_TRY(swax_shard_open(path, &s));
    uint32_t lo = UINT32_MAX, hi = 0;
    uint64_t neot = 0;
    for (size_t i = 0; i < s.n_tokens; i++) {
        uint32_t t = swax_shard_token(&s, i);
        if (t < lo) lo = t;
        if (t > hi) hi = t;
        if (eot >= 0 && t == (uint32_t)eot) neot++;
    }
    printf("file: %s\n", path);
    printf("magic: %d (%s tokens)\n", s.width == 2 ? SWAX_SHARD_MAGIC16 : SWAX_SHARD_MAGIC32, s.width == 2 ? "uint16" : "uint32");
    printf("version: %d\n", s.width == 2 ? SWAX_SHARD_VERSION16 : SWAX_SHARD_VERSION32);
    printf("tokens: %zu\n", s.n_tokens);
    printf("bytes: %zu\n", s.map_len);
    if (s.n_tokens)
        printf("token ids: min %u, max %u (a vocabulary of at least %" PRIu64 ")\n", lo, hi, (uint64_t)hi + 1);
    else
        printf("token ids: none\n");
    if (eot >= 0) printf("documents (eot %ld): %" PRIu64 "\n", eot, neot);
    swax_shard_close(&s);
    return 0;
}

static int cmd_info_check(int argc, char **argv, int check) {
    static const struct option opts[] = {
        {"vocab", required_argument, 0, 'v'}, {"eot", required_argument, 0, 'e'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    long vocab = -1, eot = -1;
    int c, rc = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "v:e:h", opts, NULL)) != -1) {
        switch (c) {
        case 'v': rc = cli_parse_int(CMD, "--vocab", optarg, 1, INT32_MAX, &vocab); break;
        case 'e': rc = cli_parse_int(CMD, "--eot", optarg, 0, UINT32_MAX, &eot); break;
        case 'h':
            if (check)
                printf("usage: swax data check FILE.bin... --vocab N\n\n"
                       "Validates each shard: magic and version, size against the header's count,\n"
                       "every token id < N. Exit 0 if all are good, 3 (naming the file) otherwise.\n");
            else
                printf("usage: swax data info FILE.bin... [--eot ID]\n\n"
                       "Prints each shard's header fields, token count, size and id range\n"
                       "(--eot: also the number of documents, i.e. of that id).\n");
            return 0;
        default: return SWAX_E_USAGE;
        }
        if (rc) return rc;
    }
    if (optind >= argc || (check && vocab < 0)) {
        fprintf(stderr, "swax data %s: error: needs %s (see --help)\n", check ? "check" : "info",
                check ? "FILE.bin... and --vocab N" : "FILE.bin...");
        return SWAX_E_USAGE;
    }
    for (int i = optind; i < argc; i++) {
        if (!check) {
            if (i > optind) printf("\n");
            rc = shard_info(argv[i], eot);
            if (rc) return cli_fail(CMD, rc);
            continue;
        }
        SwaxShard s;
        rc = swax_shard_open(argv[i], &s);
        if (!rc) rc = swax_shard_check_vocab(&s, (int)vocab);
        if (!rc) printf("ok: %s: %zu tokens, all < %ld\n", argv[i], s.n_tokens, vocab);
        swax_shard_close(&s);
        if (rc) return cli_fail(CMD, rc);
    }
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? SWAX_E_USAGE : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "build")) return cmd_build(argc - 1, argv + 1);
    if (!strcmp(sub, "info")) return cmd_info_check(argc - 1, argv + 1, 0);
    if (!strcmp(sub, "check")) return cmd_info_check(argc - 1, argv + 1, 1);
    fprintf(stderr, "swax data: unknown subcommand '%s'\n\n", sub);
    usage_main(stderr);
    return SWAX_E_USAGE;
}
