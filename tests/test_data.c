/* test_data.c — `swax data`: corpus -> llm.c shards (EOT before each document,
 * seeded split, --mix ratios, determinism), the training loader (consecutive
 * rows, wrap-around, exact resume), bad input (truncated shards, wrong magic,
 * ids >= vocab, empty corpus, unwritable output), the CLI and fetch_corpus.sh.
 *
 * Most tests use a byte-level tokenizer built in memory (ids 0..255 are the
 * bytes, <|endoftext|> = 256): a document's tokens are its bytes, so what
 * comes out of the shards can be compared with the files exactly. One test
 * trains a small BPE and goes through the CLI. Everything is offline. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "data/build.h"
#include "data/loader.h"
#include "io/shard.h"
#include "io/tokenizer.h"
#include "test.h"

/* ---- helpers -------------------------------------------------------------- */

static char g_tmp[256];

static const char *tmpdir(void) {
    if (!g_tmp[0]) {
        snprintf(g_tmp, sizeof g_tmp, "/tmp/swax_data_XXXXXX");
        if (!mkdtemp(g_tmp)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return g_tmp;
}

static void tpath(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tmpdir(), name); }

static int write_bytes(const char *path, const void *data, size_t n) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *s = strrchr(dir, '/');
    if (s) {
        *s = 0;
        if (swax_mkdir_p(dir)) return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int write_text(const char *dir, const char *name, const char *text) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return write_bytes(p, text, strlen(text));
}

static char *slurp(const char *path, size_t *n) {
    char *d = NULL;
    if (swax_read_file(path, &d, n)) return NULL;
    return d;
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static int run_capture(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = 0, got;
    char sink[4096];
    while ((got = fread(out && n + 1 < cap ? out + n : sink, 1, out && n + 1 < cap ? cap - 1 - n : sizeof sink, p)) > 0)
        if (out && n + 1 < cap) n += got;
    if (out && cap) out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The byte-level tokenizer: ids 0..255 = bytes, <|endoftext|> = eot. */
static SwaxTokenizer *byte_tok(int32_t eot) {
    uint8_t bytes[256];
    size_t off[256];
    uint32_t len[256];
    int32_t ids[256];
    for (int i = 0; i < 256; i++) {
        bytes[i] = (uint8_t)i;
        off[i] = (size_t)i;
        len[i] = 1;
        ids[i] = i;
    }
    SwaxSpecialToken sp = {"<|endoftext|>", eot};
    SwaxTokenizer *t = NULL;
    if (swax_tokenizer_from_tokens(bytes, off, len, ids, 256, "r50k", &sp, 1, "bytes", &t)) {
        fprintf(stderr, "byte tokenizer: %s\n", swax_last_error());
        return NULL;
    }
    return t;
}

static int build(const SwaxTokenizer *t, const char *out, const SwaxDataSource *src, int n, double val, uint64_t shard,
                 uint64_t seed, SwaxDataBuildResult *res) {
    SwaxDataBuildOptions o;
    swax_data_build_defaults(&o);
    o.tokenizer = t;
    o.tokenizer_name = "bytes";
    o.sources = src;
    o.n_sources = n;
    o.out_dir = out;
    o.val_fraction = val;
    if (shard) o.shard_tokens = shard;
    o.seed = seed;
    return swax_data_build(&o, res);
}

/* The whole stream of DIR/PREFIX_*.bin (NULL, n = 0 if none). */
static int32_t *read_stream(const char *dir, const char *prefix, int vocab, size_t *n) {
    char pat[4200];
    snprintf(pat, sizeof pat, "%s/%s_*.bin", dir, prefix);
    SwaxLoader *l;
    *n = 0;
    if (swax_loader_open(pat, vocab, &l)) return NULL;
    *n = swax_loader_total_tokens(l);
    int32_t *v = malloc(*n * sizeof *v);
    swax_loader_read(l, 0, *n, v);
    swax_loader_close(l);
    return v;
}

/* Documents of a byte-token stream: every document starts with eot; returns
 * the count (-1 if the stream does not start with eot), texts malloc'd. */
typedef struct {
    char *s[4096];
    size_t len[4096];
    int n;
} Docs;

static void docs_free(Docs *d) {
    for (int i = 0; i < d->n; i++) free(d->s[i]);
    d->n = 0;
}

static int split_docs(const int32_t *v, size_t n, int32_t eot, Docs *d) {
    if (n && v[0] != eot) return -1;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j] != eot) j++;
        if (d->n >= 4096) return -1;
        char *s = malloc(j - i);
        for (size_t k = i + 1; k < j; k++) s[k - i - 1] = (char)v[k];
        s[j - i - 1] = 0;
        d->s[d->n] = s;
        d->len[d->n++] = j - i - 1;
        i = j;
    }
    return d->n;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Same multiset of NUL-free strings. */
static int same_docs(char **a, int na, char **b, int nb) {
    if (na != nb) return 0;
    char **x = malloc(sizeof *x * (size_t)(na + 1)), **y = malloc(sizeof *y * (size_t)(nb + 1));
    memcpy(x, a, sizeof *x * (size_t)na);
    memcpy(y, b, sizeof *y * (size_t)nb);
    qsort(x, (size_t)na, sizeof *x, cmp_cstr);
    qsort(y, (size_t)nb, sizeof *y, cmp_cstr);
    int same = 1;
    for (int i = 0; i < na && same; i++)
        if (strcmp(x[i], y[i])) {
            fprintf(stderr, "  docs differ: '%s' vs '%s'\n", x[i], y[i]);
            same = 0;
        }
    free(x);
    free(y);
    return same;
}

static cJSON *read_json(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/data.json", dir);
    size_t n;
    char *s = slurp(p, &n);
    if (!s) return NULL;
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static double jnum(const cJSON *j, const char *path) {
    /* "a.b.c" or "sources.1.x" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = j;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(tok)) : cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cur && cJSON_IsNumber(cur) ? cur->valuedouble : -1;
}

/* A deterministic little text of n bytes that starts with `lead`. */
static char *gen_doc(char lead, int idx, size_t n) {
    char *s = malloc(n + 1);
    int k = snprintf(s, n + 1, "%c%d ", lead, idx);
    for (size_t i = (size_t)k; i < n; i++) s[i] = (char)('a' + (i * 7 + (size_t)idx) % 26);
    if (n) s[0] = lead;
    s[n] = 0;
    return s;
}

static const char *swax_bin(void) {
    static char bin[4200];
    const char *env = getenv("SWAX_BIN");
    struct stat st;
    if (env && *env) return env;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return "build/swax";
    exe[n] = 0;
    for (int up = 0; up < 2; up++) {
        char *s = strrchr(exe, '/');
        if (s) *s = 0;
    }
    snprintf(bin, sizeof bin, "%s/swax", exe); /* BUILD/tests/test_data -> BUILD/swax */
    if (stat(bin, &st) == 0) return bin;
    char *s = strrchr(exe, '/');
    if (s) *s = 0;
    snprintf(bin, sizeof bin, "%s/build/swax", exe); /* an ASan test binary may use the normal build's CLI */
    return bin;
}

static const char *repo_root(void) {
    static char root[4096];
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return ".";
    exe[n] = 0;
    for (int up = 0; up < 3; up++) {
        char *s = strrchr(exe, '/');
        if (s) *s = 0;
    }
    snprintf(root, sizeof root, "%s", exe);
    return root;
}

/* ---- shards ------------------------------------------------------------------ */

TEST(shard_roundtrip_16_and_32) {
    char p[512];
    tpath(p, sizeof p, "rt.bin");
    uint32_t tok[1000];
    int32_t back[1000];
    for (int i = 0; i < 1000; i++) tok[i] = (uint32_t)(i * 37 % 50257);
    CHECK(swax_shard_write(p, tok, 1000, 50257) == 0);
    SwaxShard s;
    CHECK(swax_shard_open(p, &s) == 0);
    CHECK(s.width == 2 && s.n_tokens == 1000);
    swax_shard_read(&s, 0, 1000, back);
    for (int i = 0; i < 1000; i++) CHECK(back[i] == (int32_t)tok[i]);
    swax_shard_close(&s);
    for (int i = 0; i < 1000; i++) tok[i] = (uint32_t)(i * 7919 % 100277);
    CHECK(swax_shard_write(p, tok, 1000, 100277) == 0);
    CHECK(swax_shard_open(p, &s) == 0);
    CHECK(s.width == 4 && s.n_tokens == 1000);
    swax_shard_read(&s, 0, 1000, back);
    for (int i = 0; i < 1000; i++) CHECK(back[i] == (int32_t)tok[i]);
    CHECK(swax_shard_check_vocab(&s, 100277) == 0);
    CHECK(swax_shard_check_vocab(&s, 50000) == SWAX_E_INPUT);
    swax_shard_close(&s);
}

/* ---- build: layout, EOT, file kinds ----------------------------------------- */

static void make_small_corpus(const char *root) {
    write_text(root, "a.txt", "alpha document\n");
    write_text(root, "sub/b.py", "def b():\n    return 'b'\n");
    write_text(root, "sub/deeper/c.md", "# c heading\n");
    write_text(root, "d.jsonl", "\xef\xbb\xbf{\"text\": \"json one\"}\n\n{\"text\": \"json \\u00e9 two\", \"id\": 3}\r\n{\"text\": \"\"}\n");
    write_text(root, ".hidden.txt", "hidden, never read");
    write_text(root, ".git/x.txt", "hidden folder, never read");
    write_text(root, "e.bin", "wrong extension in a folder");
    char p[4096];
    snprintf(p, sizeof p, "%s/f.txt", root);
    write_bytes(p, "bin\0ary", 7);
    write_text(root, "g.go", "package g\n");
    write_text(root, "h.c", "int h;\n");
    write_text(root, "i.h", "#define I 1\n");
    write_text(root, "empty.txt", "");
    write_text(root, "literal.txt", "has <|endoftext|> inside");
}

TEST(build_documents_eot_and_data_json) {
    SwaxTokenizer *t = byte_tok(256);
    CHECK(t);
    char root[512], out[512], ebin[600];
    tpath(root, sizeof root, "small");
    tpath(out, sizeof out, "small_out");
    make_small_corpus(root);
    snprintf(ebin, sizeof ebin, "%s/e.bin", root);
    SwaxDataSource src[2] = {{root, 0}, {ebin, 0}}; /* a file named on its own: any extension */
    SwaxDataBuildResult res;
    int rc = build(t, out, src, 2, 0.3, 0, 7, &res);
    CHECKF(rc == 0, "%s", swax_last_error());
    char *want[] = {"alpha document\n", "def b():\n    return 'b'\n", "# c heading\n", "json one", "json \xc3\xa9 two",
                    "package g\n", "int h;\n", "#define I 1\n", "has <|endoftext|> inside", "wrong extension in a folder"};
    int nwant = (int)(sizeof want / sizeof want[0]);
    CHECK(res.documents == (uint64_t)nwant);
    size_t ntr, nva;
    int32_t *tr = read_stream(out, "train", 257, &ntr), *va = read_stream(out, "val", 257, &nva);
    CHECK(tr && va);
    CHECK(ntr == res.train_tokens && nva == res.val_tokens);
    Docs d = {0};
    CHECK(split_docs(tr, ntr, 256, &d) > 0); /* starts with EOT */
    int ntrain = d.n;
    CHECK(split_docs(va, nva, 256, &d) > ntrain);
    CHECK((uint64_t)ntrain == res.train_docs && (uint64_t)(d.n - ntrain) == res.val_docs);
    CHECK(same_docs(d.s, d.n, want, nwant)); /* every document once, exactly its bytes */
    size_t total_bytes = 0;
    for (int i = 0; i < nwant; i++) total_bytes += strlen(want[i]);
    CHECK(ntr + nva == total_bytes + (size_t)nwant); /* one EOT per document */
    CHECK(res.bytes == total_bytes);
    docs_free(&d);
    free(tr);
    free(va);
    /* data.json */
    cJSON *j = read_json(out);
    CHECK(j);
    CHECK(jnum(j, "vocab_size") == 257 && jnum(j, "eot") == 256);
    CHECK(jnum(j, "train.tokens") == (double)res.train_tokens && jnum(j, "val.tokens") == (double)res.val_tokens);
    CHECK(jnum(j, "sources.0.files") == 9 && jnum(j, "sources.0.skipped_binary_files") == 1);
    CHECK(jnum(j, "sources.0.skipped_empty_documents") == 2 && jnum(j, "sources.0.documents") == 9);
    CHECK(jnum(j, "sources.1.documents") == 1 && jnum(j, "seed") == 7);
    CHECK(jnum(j, "train.shards.0.tokens") == (double)res.train_tokens);
    cJSON_Delete(j);
    /* the tokenizer copy loads */
    SwaxTokenizer *t2 = NULL;
    CHECKF(swax_tokenizer_load_json(out, &t2) == 0, "%s", swax_last_error());
    CHECK(swax_tokenizer_eot(t2) == 256 && swax_tokenizer_vocab_size(t2) == 257);
    swax_tokenizer_free(t2);
    swax_tokenizer_free(t);
}

/* A corpus of n docs, doc i of len_i bytes starting with `lead`. */
static void make_corpus(const char *root, char lead, int n, int minlen, int maxlen, uint64_t seed) {
    SwaxRng r;
    swax_rng_seed(&r, seed, 0);
    char name[64], p[4096];
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)minlen + (size_t)(swax_rng_u64(&r) % (uint64_t)(maxlen - minlen + 1));
        char *s = gen_doc(lead, i, len);
        snprintf(name, sizeof name, "doc%04d.txt", i);
        snprintf(p, sizeof p, "%s/%s", root, name);
        write_bytes(p, s, len);
        free(s);
    }
}

static int same_tree(const char *a, const char *b) {
    const char *names[] = {"data.json", "train_000000.bin", "train_000001.bin", "train_000002.bin", "val_000000.bin",
                           "tokenizer.json", "tokenizer.tiktoken"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char pa[4200], pb[4200];
        struct stat s1, s2;
        snprintf(pa, sizeof pa, "%s/%s", a, names[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, names[i]);
        int ea = stat(pa, &s1) == 0, eb = stat(pb, &s2) == 0;
        if (ea != eb) return 0;
        if (ea && !same_file(pa, pb)) {
            fprintf(stderr, "  %s differs\n", names[i]);
            return 0;
        }
    }
    return 1;
}

TEST(build_is_deterministic) {
    SwaxTokenizer *t = byte_tok(256);
    CHECK(t);
    char root[512], o1[512], o2[512], o3[512], o4[512];
    tpath(root, sizeof root, "det");
    tpath(o1, sizeof o1, "det_o1");
    tpath(o2, sizeof o2, "det_o2");
    tpath(o3, sizeof o3, "det_o3");
    tpath(o4, sizeof o4, "det_o4");
    make_corpus(root, 'a', 120, 20, 300, 3);
    SwaxDataSource src[1] = {{root, 0}};
    CHECK(build(t, o1, src, 1, 0.1, 9000, 42, NULL) == 0);
    swax_set_threads(1);
    CHECK(build(t, o2, src, 1, 0.1, 9000, 42, NULL) == 0);
    swax_set_threads(2);
    CHECK(build(t, o4, src, 1, 0.1, 9000, 42, NULL) == 0);
    CHECK(same_tree(o1, o2)); /* same bytes, whatever the thread count */
    CHECK(same_tree(o1, o4));
    CHECK(build(t, o3, src, 1, 0.1, 9000, 43, NULL) == 0);
    char p1[600], p3[600];
    snprintf(p1, sizeof p1, "%s/train_000000.bin", o1);
    snprintf(p3, sizeof p3, "%s/train_000000.bin", o3);
    CHECK(!same_file(p1, p3)); /* another seed: another order, another split */
    /* same documents in all: shuffled, never lost or duplicated */
    Docs a = {0}, b = {0};
    size_t n;
    int32_t *v = read_stream(o1, "train", 257, &n);
    split_docs(v, n, 256, &a);
    free(v);
    v = read_stream(o1, "val", 257, &n);
    split_docs(v, n, 256, &a);
    free(v);
    v = read_stream(o3, "train", 257, &n);
    split_docs(v, n, 256, &b);
    free(v);
    v = read_stream(o3, "val", 257, &n);
    split_docs(v, n, 256, &b);
    free(v);
    CHECK(a.n == 120);
    CHECK(same_docs(a.s, a.n, b.s, b.n));
    /* documents are shuffled: the train stream is not in file order */
    int in_order = 1;
    for (int i = 1; i < 20; i++)
        if (atoi(a.s[i] + 1) < atoi(a.s[i - 1] + 1)) in_order = 0;
    CHECK(!in_order);
    docs_free(&a);
    docs_free(&b);
    swax_tokenizer_free(t);
}

TEST(split_by_document_and_fraction) {
    SwaxTokenizer *t = byte_tok(256);
    CHECK(t);
    char r1[512], r2[512], out[512];
    tpath(r1, sizeof r1, "split_a");
    tpath(r2, sizeof r2, "split_b");
    tpath(out, sizeof out, "split_out");
    make_corpus(r1, 'p', 100, 10, 200, 5);
    make_corpus(r2, 'q', 40, 10, 200, 6);
    SwaxDataSource src[2] = {{r1, 0}, {r2, 0}};
    SwaxDataBuildResult res;
    CHECK(build(t, out, src, 2, 0.2, 0, 1, &res) == 0);
    cJSON *j = read_json(out);
    CHECK(j);
    for (int s = 0; s < 2; s++) {
        char k1[64], k2[64];
        snprintf(k1, sizeof k1, "sources.%d.tokens", s);
        snprintf(k2, sizeof k2, "sources.%d.val_tokens", s);
        double tok = jnum(j, k1), vt = jnum(j, k2);
        CHECKF(vt >= 0.2 * tok && vt <= 0.2 * tok + 201, "source %d: %g of %g tokens in val", s, vt, tok);
    }
    cJSON_Delete(j);
    /* no document in both; every val document whole */
    Docs tr = {0}, va = {0};
    size_t n;
    int32_t *v = read_stream(out, "train", 257, &n);
    split_docs(v, n, 256, &tr);
    free(v);
    v = read_stream(out, "val", 257, &n);
    split_docs(v, n, 256, &va);
    free(v);
    CHECK(tr.n + va.n == 140);
    for (int i = 0; i < va.n; i++)
        for (int k = 0; k < tr.n; k++) CHECK(strcmp(va.s[i], tr.s[k]) != 0);
    int pv = 0, qv = 0;
    for (int i = 0; i < va.n; i++) {
        if (va.s[i][0] == 'p')
            pv++;
        else
            qv++;
    }
    CHECK(pv > 0 && qv > 0); /* both sources in validation */
    docs_free(&tr);
    docs_free(&va);
    /* --val-fraction 0: no validation shard at all (and the old one is removed) */
    CHECK(build(t, out, src, 2, 0, 0, 1, &res) == 0);
    CHECK(res.val_tokens == 0 && res.val_shards == 0 && res.train_docs == 140);
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/val_000000.bin", out);
    CHECK(stat(p, &st) != 0);
    /* one document: it stays in training */
    char one[512], oneo[512];
    tpath(one, sizeof one, "split_one");
    tpath(oneo, sizeof oneo, "split_one_out");
    make_corpus(one, 'x', 1, 50, 50, 1);
    SwaxDataSource s1 = {one, 0};
    CHECK(build(t, oneo, &s1, 1, 0.5, 0, 1, &res) == 0);
    CHECK(res.train_docs == 1 && res.val_docs == 0);
    swax_tokenizer_free(t);
}

/* Fraction of training tokens in documents that start with `lead`. */
static double lead_fraction(const char *out, char lead, size_t *ntok) {
    size_t n;
    *ntok = 0;
    int32_t *v = read_stream(out, "train", 257, &n);
    if (!v) return -1;
    size_t in = 0;
    char cur = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == 256) cur = i + 1 < n ? (char)v[i + 1] : 0;
        if (cur == lead) in++;
    }
    free(v);
    *ntok = n;
    return (double)in / (double)n;
}

TEST(mix_ratio_is_achieved) {
    SwaxTokenizer *t = byte_tok(256);
    CHECK(t);
    char base[512], mz[512], my[512], out[512];
    tpath(base, sizeof base, "mix_base");
    tpath(mz, sizeof mz, "mix_z");
    tpath(my, sizeof my, "mix_y");
    tpath(out, sizeof out, "mix_out");
    make_corpus(base, 'a', 400, 50, 500, 11);
    make_corpus(mz, 'Z', 9, 30, 300, 12);   /* small: repeated many times */
    make_corpus(my, 'Y', 300, 30, 300, 13); /* large: subsampled */
    size_t n = 0;
    struct {
        double wz, wy;
    } cases[] = {{0.3, 0}, {0.5, 0}, {0.3, 0.1}, {0.1, 0.02}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        SwaxDataSource src[3] = {{base, 0}, {mz, cases[c].wz}, {my, cases[c].wy}};
        int ns = cases[c].wy > 0 ? 3 : 2;
        int rc = build(t, out, src, ns, 0.05, 0, 5, NULL);
        CHECKF(rc == 0, "%s", swax_last_error());
        double fz = lead_fraction(out, 'Z', &n);
        CHECKF(fabs(fz - cases[c].wz) < 0.01, "case %zu: Z makes up %.4f of %zu training tokens, want %.2f", c, fz, n,
               cases[c].wz);
        if (ns == 3) {
            double fy = lead_fraction(out, 'Y', &n);
            CHECKF(fabs(fy - cases[c].wy) < 0.01, "case %zu: Y makes up %.4f, want %.2f", c, fy, cases[c].wy);
        }
        double fa = lead_fraction(out, 'a', &n);
        CHECK(fa > 0.3);
        cJSON *j = read_json(out);
        CHECK(j);
        CHECK(fabs(jnum(j, "sources.1.train_fraction") - fz) < 1e-4);
        CHECK(jnum(j, "sources.1.weight") == cases[c].wz);
        if (cases[c].wz >= 0.3) CHECK(jnum(j, "sources.1.epochs") > 10); /* 9 short docs: repeated */
        if (ns == 3) CHECK(jnum(j, "sources.2.epochs") < 1);               /* subsampled */
        cJSON_Delete(j);
    }
    /* the input source's documents are in training exactly once */
    SwaxDataSource src[2] = {{base, 0}, {mz, 0.4}};
    CHECK(build(t, out, src, 2, 0, 0, 5, NULL) == 0);
    int32_t *v = read_stream(out, "train", 257, &n);
    Docs d = {0};
    split_docs(v, n, 256, &d);
    free(v);
    int na = 0;
    for (int i = 0; i < d.n; i++) na += d.s[i][0] == 'a';
    CHECK(na == 400);
    docs_free(&d);
    swax_tokenizer_free(t);
}

/* --align T: every mix document of at most T + 1 tokens lies inside one
 * training row (tokens [kT, kT + T], as the loader reads them); without it
 * some cross a boundary; the input documents' text is all there (split ones
 * in two pieces), and the mix documents are the same ones. */
static void align_stats(const char *out, uint64_t T, int *crossing, int *aligned, size_t *a_bytes, size_t *z_docs) {
    size_t n = 0;
    int32_t *v = read_stream(out, "train", 257, &n);
    *crossing = *aligned = 0, *a_bytes = 0, *z_docs = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j] != 256) j++;
        const uint64_t len = j - i; /* with the EOT */
        if (j > i + 1 && v[i + 1] == 'Z') {
            (*z_docs)++;
            if (len <= T + 1) {
                if (i % T + len > T + 1) (*crossing)++;
                else (*aligned)++;
            }
        } else {
            *a_bytes += len - 1;
        }
        i = j;
    }
    free(v);
}

TEST(align_keeps_mix_documents_inside_rows) {
    SwaxTokenizer *t = byte_tok(256);
    CHECK(t);
    char base[512], mz[512], out[512];
    tpath(base, sizeof base, "align_base");
    tpath(mz, sizeof mz, "align_z");
    tpath(out, sizeof out, "align_out");
    make_corpus(base, 'a', 300, 20, 700, 21);
    make_corpus(mz, 'Z', 200, 30, 260, 22); /* some longer than a row of 200: left where they fall */
    const uint64_t T = 200;
    SwaxDataSource src[2] = {{base, 0}, {mz, 0.3}};
    int crossing0, aligned0, crossing1, aligned1;
    size_t a0, a1, z0, z1;
    CHECK(build(t, out, src, 2, 0, 0, 7, NULL) == 0);
    align_stats(out, T, &crossing0, &aligned0, &a0, &z0);
    SwaxDataBuildOptions o;
    swax_data_build_defaults(&o);
    o.tokenizer = t, o.tokenizer_name = "bytes", o.sources = src, o.n_sources = 2, o.out_dir = out;
    o.val_fraction = 0, o.seed = 7, o.align = T;
    SwaxDataBuildResult res;
    CHECKF(swax_data_build(&o, &res) == 0, "%s", swax_last_error());
    align_stats(out, T, &crossing1, &aligned1, &a1, &z1);
    printf("  T %d: mix documents crossing a row boundary %d of %d without --align, %d of %d with it\n", (int)T,
           crossing0, crossing0 + aligned0, crossing1, crossing1 + aligned1);
    CHECK(crossing0 > 10);           /* the test means something */
    CHECK(crossing1 == 0);           /* every short enough mix document inside one row */
    CHECK(z1 == z0 && aligned1 == crossing0 + aligned0); /* the same mix documents */
    CHECK(a1 == a0);                 /* the input documents' text all there */
    cJSON *j = read_json(out);
    CHECK(j && jnum(j, "align") == (double)T);
    cJSON_Delete(j);
    swax_tokenizer_free(t);
}

TEST(shards_split_and_stale_removed) {
    SwaxTokenizer *t = byte_tok(256);
    CHECK(t);
    char root[512], out[512], p[600];
    tpath(root, sizeof root, "shards");
    tpath(out, sizeof out, "shards_out");
    make_corpus(root, 's', 60, 20, 200, 9);
    SwaxDataSource src = {root, 0};
    SwaxDataBuildResult res;
    CHECK(build(t, out, &src, 1, 0.1, 1000, 1, &res) == 0);
    CHECK(res.train_shards == (int)((res.train_tokens + 999) / 1000) && res.train_shards >= 3);
    size_t total = 0;
    for (int i = 0; i < res.train_shards; i++) {
        SwaxShard s;
        snprintf(p, sizeof p, "%s/train_%06d.bin", out, i);
        CHECK(swax_shard_open(p, &s) == 0);
        CHECK(s.n_tokens == (i + 1 < res.train_shards ? 1000 : res.train_tokens - 1000 * (size_t)i));
        total += s.n_tokens;
        swax_shard_close(&s);
    }
    CHECK(total == res.train_tokens);
    size_t n;
    int32_t *small = read_stream(out, "train", 257, &n);
    CHECK(small && n == total);
    /* rebuilt with big shards into the same folder: one shard, the same stream, stale ones gone */
    CHECK(build(t, out, &src, 1, 0.1, 0, 1, &res) == 0);
    CHECK(res.train_shards == 1);
    struct stat st;
    snprintf(p, sizeof p, "%s/train_000001.bin", out);
    CHECK(stat(p, &st) != 0);
    int32_t *big = read_stream(out, "train", 257, &n);
    CHECK(big && n == total && !memcmp(small, big, n * sizeof *big));
    free(small);
    free(big);
    swax_tokenizer_free(t);
}

TEST(wide_vocabulary_uses_uint32_shards) {
    SwaxTokenizer *t = byte_tok(70000); /* ids 256..69999 are a hole: vocab 70001 */
    CHECK(t && swax_tokenizer_vocab_size(t) == 70001);
    char root[512], out[512], p[600];
    tpath(root, sizeof root, "wide");
    tpath(out, sizeof out, "wide_out");
    make_corpus(root, 'w', 5, 10, 40, 2);
    SwaxDataSource src = {root, 0};
    CHECK(build(t, out, &src, 1, 0, 0, 1, NULL) == 0);
    SwaxShard s;
    snprintf(p, sizeof p, "%s/train_000000.bin", out);
    CHECK(swax_shard_open(p, &s) == 0);
    CHECK(s.width == 4 && swax_shard_token(&s, 0) == 70000);
    swax_shard_close(&s);
    swax_tokenizer_free(t);
}

/* ---- loader ------------------------------------------------------------------ */

static int32_t stream_tok(uint64_t i) { return (int32_t)(i % 997); }

/* Shards of known content: token i of the concatenation = i % 997, with an empty shard in the middle. */
static void write_known_shards(const char *dir, const size_t *sizes, int n, uint64_t *total) {
    swax_mkdir_p(dir);
    uint64_t at = 0;
    char p[600];
    for (int s = 0; s < n; s++) {
        uint32_t *v = malloc((sizes[s] + 1) * sizeof *v);
        for (size_t i = 0; i < sizes[s]; i++) v[i] = (uint32_t)stream_tok(at + i);
        snprintf(p, sizeof p, "%s/train_%06d.bin", dir, s);
        swax_shard_write(p, v, sizes[s], 1000);
        free(v);
        at += sizes[s];
    }
    *total = at;
}

TEST(loader_rows_consecutive_wrap_and_resume) {
    char dir[512], pat[600];
    tpath(dir, sizeof dir, "loader");
    size_t sizes[] = {500, 1, 0, 777};
    uint64_t total;
    write_known_shards(dir, sizes, 4, &total);
    snprintf(pat, sizeof pat, "%s/train_*.bin", dir);
    SwaxLoader *l;
    CHECKF(swax_loader_open(pat, 1000, &l) == 0, "%s", swax_last_error());
    CHECK(swax_loader_total_tokens(l) == total && swax_loader_num_shards(l) == 4);
    const int B = 3, T = 16;
    int32_t row[3 * 17], again[3 * 17];
    uint64_t pos = 0;
    for (int step = 0; step < 200; step++) { /* 200 * 48 tokens: several passes */
        CHECK(swax_loader_position(l) == pos);
        CHECK(swax_loader_next(l, B, T, row) == 0);
        for (int b = 0; b < B; b++)
            for (int k = 0; k <= T; k++) {
                uint64_t at = (pos + (uint64_t)b * T + (uint64_t)k) % total;
                CHECKF(row[b * (T + 1) + k] == stream_tok(at), "step %d row %d col %d", step, b, k);
            }
        pos += (uint64_t)B * T;
    }
    CHECK(swax_loader_epoch(l) == pos / total && swax_loader_epoch(l) >= 7);
    /* resume: seek back, and a fresh loader seeking to a saved position, give the same rows */
    uint64_t saved = 12345;
    swax_loader_seek(l, saved);
    int32_t ref[5][3 * 17];
    for (int s = 0; s < 5; s++) CHECK(swax_loader_next(l, B, T, ref[s]) == 0);
    SwaxLoader *l2;
    CHECK(swax_loader_open(pat, 1000, &l2) == 0);
    swax_loader_seek(l2, saved);
    for (int s = 0; s < 5; s++) {
        CHECK(swax_loader_next(l2, B, T, again) == 0);
        CHECK(!memcmp(again, ref[s], sizeof again));
    }
    CHECK(swax_loader_position(l2) == saved + 5 * (uint64_t)B * T);
    swax_loader_close(l2);
    /* a batch needs B*(T+1) tokens */
    int32_t *big = malloc((total + 8) * sizeof *big);
    CHECK(swax_loader_next(l, 1, (int)total - 1, big) == 0); /* exactly the whole stream fits */
    CHECK(swax_loader_next(l, 1, (int)total, big) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), pat) && strstr(swax_last_error(), "fewer"), "%s", swax_last_error());
    CHECK(swax_loader_next(l, 0, 4, big) == SWAX_E_USAGE);
    free(big);
    swax_loader_close(l);
    /* no match names the pattern; a vocabulary too small names the file */
    char nopat[600];
    snprintf(nopat, sizeof nopat, "%s/nothing_*.bin", dir);
    CHECK(swax_loader_open(nopat, 1000, &l) == SWAX_E_INPUT && !l);
    CHECKF(strstr(swax_last_error(), nopat), "%s", swax_last_error());
    CHECK(swax_loader_open(pat, 500, &l) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), "train_000001.bin") && strstr(swax_last_error(), "vocabulary") /* token 500 */, "%s", swax_last_error());
}

TEST(loader_reads_built_data) {
    SwaxTokenizer *t = byte_tok(256);
    CHECK(t);
    char root[512], out[512], pat[600];
    tpath(root, sizeof root, "ld");
    tpath(out, sizeof out, "ld_out");
    make_corpus(root, 'l', 30, 20, 100, 4);
    SwaxDataSource src = {root, 0};
    SwaxDataBuildResult res;
    CHECK(build(t, out, &src, 1, 0, 300, 1, &res) == 0);
    snprintf(pat, sizeof pat, "%s/train_*.bin", out);
    SwaxLoader *l;
    CHECK(swax_loader_open(pat, 257, &l) == 0);
    CHECK(swax_loader_num_shards(l) == res.train_shards && swax_loader_total_tokens(l) == res.train_tokens);
    int32_t row[2 * 65];
    CHECK(swax_loader_next(l, 2, 64, row) == 0);
    CHECK(row[0] == 256); /* the stream starts with a document's EOT */
    CHECK(row[64] == row[65]); /* rows overlap by one token */
    swax_loader_close(l);
    swax_tokenizer_free(t);
}

/* ---- bad input ---------------------------------------------------------------- */

TEST(bad_shards_name_the_file) {
    char good[512], trunc[512], magic[512], ids[512];
    tpath(good, sizeof good, "bad/good.bin");
    tpath(trunc, sizeof trunc, "bad/trunc.bin");
    tpath(magic, sizeof magic, "bad/magic.bin");
    tpath(ids, sizeof ids, "bad/ids.bin");
    char dir[512];
    tpath(dir, sizeof dir, "bad");
    swax_mkdir_p(dir);
    uint32_t v[100];
    for (int i = 0; i < 100; i++) v[i] = (uint32_t)i * 3;
    CHECK(swax_shard_write(good, v, 100, 0) == 0);
    size_t n;
    char *d = slurp(good, &n);
    CHECK(d && n == 1024 + 200);
    CHECK(write_bytes(trunc, d, n - 1) == 0);
    d[0] ^= 0x55;
    CHECK(write_bytes(magic, d, n) == 0);
    free(d);
    CHECK(swax_shard_write(ids, v, 100, 0) == 0);
    SwaxShard s;
    CHECK(swax_shard_open(trunc, &s) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), trunc) && strstr(swax_last_error(), "truncated"), "%s", swax_last_error());
    CHECK(swax_shard_open(magic, &s) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), magic) && strstr(swax_last_error(), "magic"), "%s", swax_last_error());
    SwaxLoader *l;
    char pat[600];
    snprintf(pat, sizeof pat, "%s/*.bin", dir);
    CHECK(swax_loader_open(pat, 1000, &l) == SWAX_E_INPUT); /* good.bin, ids.bin, then magic.bin fails */
    CHECKF(strstr(swax_last_error(), "magic.bin"), "%s", swax_last_error());
    /* through the CLI: exit 3, the message names the file */
    const char *bin = swax_bin();
    struct stat st;
    CHECKF(stat(bin, &st) == 0, "%s not built (make build/swax)", bin);
    char cmd[8192], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' data info '%s' 2>&1", bin, trunc);
    CHECK(run_capture(cmd, out, sizeof out) == SWAX_E_INPUT);
    CHECKF(strstr(out, trunc), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' data check '%s' --vocab 1000 2>&1", bin, magic);
    CHECK(run_capture(cmd, out, sizeof out) == SWAX_E_INPUT);
    CHECKF(strstr(out, magic), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' data check '%s' --vocab 200 2>&1", bin, ids); /* ids up to 297 */
    CHECK(run_capture(cmd, out, sizeof out) == SWAX_E_INPUT);
    CHECKF(strstr(out, ids) && strstr(out, "vocabulary"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' data check '%s' '%s' --vocab 298", bin, good, ids);
    CHECK(run_capture(cmd, out, sizeof out) == 0);
    CHECKF(strstr(out, "ok: ") && strstr(out, "100 tokens"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' data info '%s'", bin, good);
    CHECK(run_capture(cmd, out, sizeof out) == 0);
    CHECKF(strstr(out, "magic: 20240520") && strstr(out, "version: 1") && strstr(out, "tokens: 100") &&
               strstr(out, "min 0, max 297"),
           "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' data check '%s' 2>/dev/null", bin, good); /* no --vocab */
    CHECK(run_capture(cmd, NULL, 0) == SWAX_E_USAGE);
}

TEST(bad_corpus_and_output) {
    SwaxTokenizer *t = byte_tok(256);
    CHECK(t);
    char empty[512], out[512], file[512], under[600];
    tpath(empty, sizeof empty, "empty_corpus");
    tpath(out, sizeof out, "empty_out");
    write_text(empty, ".hidden.txt", "hidden");
    write_text(empty, "x.pdf", "not a text kind");
    write_text(empty, "blank.txt", "");
    SwaxDataSource src = {empty, 0};
    CHECK(build(t, out, &src, 1, 0.05, 0, 1, NULL) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), empty) && strstr(swax_last_error(), "no documents"), "%s", swax_last_error());
    char missing[600];
    snprintf(missing, sizeof missing, "%s/does_not_exist", empty);
    src.path = missing;
    CHECK(build(t, out, &src, 1, 0.05, 0, 1, NULL) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), missing), "%s", swax_last_error());
    /* an output folder that cannot be created: its parent is a file */
    char ok[512];
    tpath(ok, sizeof ok, "ok_corpus");
    make_corpus(ok, 'o', 3, 10, 20, 1);
    tpath(file, sizeof file, "a_file");
    write_bytes(file, "x", 1);
    snprintf(under, sizeof under, "%s/out", file);
    src.path = ok;
    CHECK(build(t, under, &src, 1, 0.05, 0, 1, NULL) == SWAX_E_IO);
    CHECKF(strstr(swax_last_error(), file), "%s", swax_last_error());
    if (geteuid() != 0) { /* root writes anywhere */
        char ro[512];
        tpath(ro, sizeof ro, "readonly");
        swax_mkdir_p(ro);
        chmod(ro, 0555);
        CHECK(build(t, ro, &src, 1, 0.05, 0, 1, NULL) == SWAX_E_IO);
        CHECKF(strstr(swax_last_error(), ro), "%s", swax_last_error());
        chmod(ro, 0755);
    }
    /* a bad JSONL line names the file and the line */
    char jl[512], jlf[600];
    tpath(jl, sizeof jl, "badjsonl");
    write_text(jl, "x.jsonl", "{\"text\": \"fine\"}\n{\"txt\": \"no text\"}\n");
    snprintf(jlf, sizeof jlf, "%s/x.jsonl:2", jl);
    src.path = jl;
    CHECK(build(t, out, &src, 1, 0.05, 0, 1, NULL) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), jlf), "%s", swax_last_error());
    write_text(jl, "x.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"cut\n");
    CHECK(build(t, out, &src, 1, 0.05, 0, 1, NULL) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), jlf), "%s", swax_last_error());
    /* options */
    SwaxDataSource two[2] = {{ok, 0.6}, {ok, 0.5}};
    CHECK(build(t, out, two, 2, 0.05, 0, 1, NULL) == SWAX_E_USAGE); /* only mix sources */
    two[0].weight = 0;
    two[1].weight = 1.0;
    CHECK(build(t, out, two, 2, 0.05, 0, 1, NULL) == SWAX_E_USAGE);
    CHECK(build(t, out, &src, 1, 1.0, 0, 1, NULL) == SWAX_E_USAGE);
    CHECK(build(t, out, &src, 0, 0.05, 0, 1, NULL) == SWAX_E_USAGE);
    /* a tokenizer without <|endoftext|> */
    uint8_t b[256];
    size_t off[256];
    uint32_t len[256];
    int32_t ids[256];
    for (int i = 0; i < 256; i++) b[i] = (uint8_t)i, off[i] = (size_t)i, len[i] = 1, ids[i] = i;
    SwaxTokenizer *noeot = NULL;
    CHECK(swax_tokenizer_from_tokens(b, off, len, ids, 256, "r50k", NULL, 0, "noeot", &noeot) == 0);
    CHECK(build(noeot, out, &src, 1, 0.05, 0, 1, NULL) == SWAX_E_USAGE);
    CHECKF(strstr(swax_last_error(), "endoftext"), "%s", swax_last_error());
    swax_tokenizer_free(noeot);
    swax_tokenizer_free(t);
}

TEST(parse_mix) {
    char *p;
    double w;
    CHECK(swax_data_parse_mix("a:b/c:0.25", &p, &w) == 0);
    CHECK(!strcmp(p, "a:b/c") && w == 0.25);
    free(p);
    CHECK(swax_data_parse_mix("synthetic", &p, &w) == SWAX_E_USAGE && !p);
    CHECK(swax_data_parse_mix("x:1.5", &p, &w) == SWAX_E_USAGE);
    CHECK(swax_data_parse_mix("x:0", &p, &w) == SWAX_E_USAGE);
    CHECK(swax_data_parse_mix("x:0.2y", &p, &w) == SWAX_E_USAGE);
    CHECK(swax_data_parse_mix(":0.2", &p, &w) == SWAX_E_USAGE);
}

/* ---- CLI with a trained BPE -------------------------------------------------- */

TEST(cli_build_with_trained_bpe) {
    const char *bin = swax_bin();
    struct stat st;
    CHECKF(stat(bin, &st) == 0, "%s not built (make build/swax)", bin);
    char root[512], tdir[512], out[512], syn[512];
    tpath(root, sizeof root, "cli_corpus");
    tpath(tdir, sizeof tdir, "cli_tok");
    tpath(out, sizeof out, "cli_out");
    tpath(syn, sizeof syn, "cli_syn");
    /* some English-ish prose and code */
    static const char *words[] = {"the", "union", "state", "of", "congress", "people", "def", "return", "self", "import",
                                  "and", "year", "nation", "class", "for", "in"};
    SwaxRng r;
    swax_rng_seed(&r, 77, 0);
    char name[64], *text = malloc(4000);
    for (int i = 0; i < 25; i++) {
        size_t n = 0, want = 300 + swax_rng_u64(&r) % 3000;
        while (n + 12 < want) {
            const char *w = words[swax_rng_u64(&r) % 16];
            n += (size_t)sprintf(text + n, "%s%s", w, swax_rng_u64(&r) % 9 ? " " : ".\n");
        }
        snprintf(name, sizeof name, i % 3 ? "p%02d.txt" : "m%02d.py", i);
        write_text(root, name, text);
    }
    free(text);
    write_text(syn, "s.jsonl", "{\"text\": \"key alpha is 1234567\"}\n{\"text\": \"key beta is 7654321\"}\n");
    /* train a 300-token BPE on the corpus through the API */
    SwaxBpeCounter *c;
    SwaxTokenizer *t = NULL;
    CHECK(swax_bpe_counter_create("r50k", &c) == 0);
    CHECK(swax_bpe_counter_add_path(c, root, NULL) == 0);
    CHECK(swax_bpe_train(c, 300, 0, &t) == 0);
    swax_bpe_counter_free(c);
    CHECK(swax_tokenizer_save(t, tdir) == 0);
    char cmd[16384], o[16384];
    snprintf(cmd, sizeof cmd,
             "'%s' data build --tokenizer '%s/tokenizer.json' --input '%s' --mix '%s:0.1' --out '%s' "
             "--shard-tokens 2000 --val-fraction 0.1 --seed 3 2>&1",
             bin, tdir, root, syn, out);
    CHECKF(run_capture(cmd, o, sizeof o) == 0, "%s", o);
    CHECKF(strstr(o, "MB/s") && strstr(o, "docs"), "progress: %s", o);
    snprintf(cmd, sizeof cmd, "'%s' data check '%s'/train_*.bin '%s'/val_*.bin --vocab 300", bin, out, out);
    CHECK(run_capture(cmd, o, sizeof o) == 0);
    snprintf(cmd, sizeof cmd, "'%s' data check '%s'/train_000000.bin --vocab 299 2>&1", bin, out);
    CHECK(run_capture(cmd, o, sizeof o) == SWAX_E_INPUT); /* EOT is 299 */
    snprintf(cmd, sizeof cmd, "'%s' data info '%s/train_000000.bin' --eot 299", bin, out);
    CHECK(run_capture(cmd, o, sizeof o) == 0);
    CHECKF(strstr(o, "tokens: 2000") && strstr(o, "max 299") && strstr(o, "documents (eot 299)"), "%s", o);
    /* decode: every input document is there once (the mix source's as often as its weight asks) */
    size_t ntr, nva;
    int32_t *tr = read_stream(out, "train", 300, &ntr), *va = read_stream(out, "val", 300, &nva);
    CHECK(tr && va && tr[0] == 299 && va[0] == 299);
    int found = 0, mixdocs = 0, total = 0;
    for (int pass = 0; pass < 2; pass++) {
        int32_t *v = pass ? va : tr;
        size_t n = pass ? nva : ntr;
        for (size_t i = 0; i < n;) {
            size_t j = i + 1;
            while (j < n && v[j] != 299) j++;
            char *txt;
            size_t len;
            CHECK(swax_tokenizer_decode(t, v + i + 1, j - i - 1, &txt, &len) == 0);
            total++;
            if (!strncmp(txt, "key ", 4))
                mixdocs++;
            else
                found++;
            free(txt);
            i = j;
        }
    }
    CHECK(found == 25 && mixdocs >= 2);
    free(tr);
    free(va);
    /* same command again: same bytes */
    char out2[600];
    snprintf(out2, sizeof out2, "%s2", out);
    snprintf(cmd, sizeof cmd,
             "'%s' data build --tokenizer '%s' --input '%s' --mix '%s:0.1' --out '%s' --shard-tokens 2000 "
             "--val-fraction 0.1 --seed 3 --quiet --threads 1 && cmp '%s/train_000001.bin' '%s/train_000001.bin' && "
             "cmp '%s/val_000000.bin' '%s/val_000000.bin'",
             bin, tdir, root, syn, out2, out, out2, out, out2);
    CHECK(run_capture(cmd, NULL, 0) == 0);
    /* usage and input errors */
    snprintf(cmd, sizeof cmd, "'%s' data build --tokenizer '%s' --input '%s' 2>/dev/null", bin, tdir, root);
    CHECK(run_capture(cmd, NULL, 0) == SWAX_E_USAGE); /* no --out */
    snprintf(cmd, sizeof cmd, "'%s' data build --tokenizer '%s' --input '%s' --mix '%s' --out '%s' 2>/dev/null", bin, tdir,
             root, syn, out);
    CHECK(run_capture(cmd, NULL, 0) == SWAX_E_USAGE); /* --mix without a weight */
    snprintf(cmd, sizeof cmd, "'%s' data build --tokenizer /nonexistent/tok --input '%s' --out '%s' 2>/dev/null", bin,
             root, out);
    CHECK(run_capture(cmd, NULL, 0) == SWAX_E_INPUT);
    snprintf(cmd, sizeof cmd, "'%s' data build --tokenizer '%s' --input /nonexistent/corpus --out '%s' 2>&1", bin, tdir, out);
    CHECK(run_capture(cmd, o, sizeof o) == SWAX_E_INPUT);
    CHECKF(strstr(o, "/nonexistent/corpus"), "%s", o);
    snprintf(cmd, sizeof cmd,
             "'%s' data build --help >/dev/null && '%s' data info --help >/dev/null && '%s' data --help >/dev/null", bin,
             bin, bin);
    CHECK(run_capture(cmd, NULL, 0) == 0);
    snprintf(cmd, sizeof cmd, "'%s' data frobnicate 2>/dev/null", bin);
    CHECK(run_capture(cmd, NULL, 0) == SWAX_E_USAGE);
    swax_tokenizer_free(t);
}

/* fetch_corpus.sh offline: no npm and nothing cached gives a clear message. */
TEST(fetch_corpus_script_offline) {
    char fb[512], cache[512], out[512], cmd[16384], o[8192];
    tpath(fb, sizeof fb, "fakebin");
    tpath(cache, sizeof cache, "fakecache");
    tpath(out, sizeof out, "fakecorpus");
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && for t in bash sh env sha256sum awk sed mktemp tar gzip dirname cat mv rm mkdir ls head "
             "printf echo cp find sort wc xargs chmod; do p=$(command -v $t) && ln -sf \"$p\" '%s'/$t; done",
             fb, fb);
    CHECK(run_capture(cmd, NULL, 0) == 0);
    snprintf(cmd, sizeof cmd, "PATH='%s' SWAX_CACHE='%s' '%s/scripts/fetch_corpus.sh' '%s' 2>&1", fb, cache, repo_root(), out);
    CHECK(run_capture(cmd, o, sizeof o) == 3);
    CHECKF(strstr(o, "npm is not installed") && strstr(o, "datasets-sotu"), "%s", o);
    snprintf(cmd, sizeof cmd, "'%s/scripts/fetch_corpus.sh' a b 2>/dev/null", repo_root());
    CHECK(run_capture(cmd, NULL, 0) == 2);
    snprintf(cmd, sizeof cmd, "'%s/scripts/fetch_corpus.sh' --help", repo_root());
    CHECK(run_capture(cmd, o, sizeof o) == 0);
    CHECK(strstr(o, "held out") || strstr(o, "HELD OUT"));
}

TEST(zz_cleanup) {
    if (g_tmp[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        CHECK(system(cmd) == 0);
    }
}

RUN_TESTS()
