/* test_io.c — safetensors, .npy, token shards and config.json: round trips,
 * and every reader against truncated, corrupt and hostile files. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <float.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "io/config_json.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/shard.h"
#include "test.h"

/* ------------------------------------------------------------ helpers */

static char g_dir[256];

static void rm_dir(void) {
    if (!g_dir[0]) return;
    DIR *d = opendir(g_dir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(g_dir);
}

/* A path in this run's temporary folder (removed at exit). */
static const char *tpath(const char *name) {
    static char buf[8][600];
    static int k;
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/swax_test_io.XXXXXX");
        if (!mkdtemp(g_dir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(rm_dir);
    }
    char *b = buf[k++ % 8];
    snprintf(b, 600, "%s/%s", g_dir, name);
    return b;
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    fclose(f);
    return w == n ? 0 : -1;
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    char *d;
    if (swax_read_file(path, &d, n)) return NULL;
    return (uint8_t *)d;
}

static int err_names(const char *path) { return strstr(swax_last_error(), path) != NULL; }

static int count_files(void) {
    int n = 0;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

static uint64_t g_rng = 0x12345678u;
static uint32_t rnd(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_rng >> 33);
}
static void fill_random(void *p, size_t n) {
    for (size_t i = 0; i < n; i++) ((uint8_t *)p)[i] = (uint8_t)rnd();
}

/* A safetensors file from a header string and `dlen` data bytes (0..255 repeating). */
static void make_st(const char *path, const char *header, size_t dlen) {
    size_t hl = strlen(header);
    uint8_t *b = calloc(8 + hl + dlen + 1, 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < dlen; i++) b[8 + hl + i] = (uint8_t)i;
    write_bytes(path, b, 8 + hl + dlen);
    free(b);
}

/* Opening must fail with SWAX_E_INPUT and a message naming the file. */
static int st_rejects(const char *path) {
    SwaxSTFile f;
    swax_error_clear();
    int rc = swax_st_open(path, &f);
    int ok = rc == SWAX_E_INPUT && err_names(path) && f.map == NULL && f.entries == NULL;
    if (!ok) fprintf(stderr, "    st_open rc=%d msg=%s\n", rc, swax_last_error());
    swax_st_close(&f);
    return ok;
}

/* ------------------------------------------------------------ safetensors */

TEST(st_dtypes) {
    CHECK(swax_dtype_size(SWAX_DT_F32) == 4 && swax_dtype_size(SWAX_DT_F64) == 8 && swax_dtype_size(SWAX_DT_I64) == 8);
    CHECK(swax_dtype_size(SWAX_DT_U8) == 1 && swax_dtype_size(SWAX_DT_BF16) == 2 && swax_dtype_size(SWAX_DT_F16) == 2);
    CHECK(!strcmp(swax_dtype_name(SWAX_DT_BF16), "BF16") && !strcmp(swax_dtype_name(SWAX_DT_U16), "U16"));
    CHECK(!strcmp(swax_dtype_name(SWAX_DT_I32), "I32") && !strcmp(swax_dtype_name(SWAX_DT_F64), "F64"));
}

TEST(st_roundtrip) {
    enum { NT = 10 };
    SwaxSTTensor ts[NT] = {
        {"embed.weight", SWAX_DT_F32, 2, {3, 5}, NULL},
        {"bytes", SWAX_DT_U8, 1, {7}, NULL}, /* odd size: later tensors must stay aligned */
        {"d", SWAX_DT_F64, 1, {5}, NULL},
        {"scalar_i32", SWAX_DT_I32, 0, {0}, NULL},
        {"i64", SWAX_DT_I64, 2, {2, 2}, NULL},
        {"u16", SWAX_DT_U16, 3, {1, 1, 3}, NULL},
        {"bf", SWAX_DT_BF16, 1, {4}, NULL},
        {"empty_f16", SWAX_DT_F16, 2, {2, 0}, NULL},
        {"scalar_f32", SWAX_DT_F32, 0, {0}, NULL},
        {"blocks.0.attn.wq.weight \"quoted\" \\ \xc3\xa9", SWAX_DT_F32, 8, {1, 2, 1, 2, 1, 1, 1, 3}, NULL},
    };
    uint8_t *bufs[NT];
    size_t sizes[NT];
    for (int i = 0; i < NT; i++) {
        size_t c = 1;
        for (int d = 0; d < ts[i].ndim; d++) c *= (size_t)ts[i].shape[d];
        sizes[i] = c * swax_dtype_size(ts[i].dtype);
        bufs[i] = malloc(sizes[i] + 1);
        fill_random(bufs[i], sizes[i]);
        ts[i].data = sizes[i] ? bufs[i] : NULL;
    }
    const char *meta[] = {"format", "pt", "note", "tab\there \"q\" \\ \xe2\x82\xac", "empty", "", NULL};
    const char *path = tpath("rt.safetensors");
    CHECKF(swax_st_write(path, ts, NT, meta) == 0, "%s", swax_last_error());

    /* The raw layout: 8-byte little-endian N, JSON, data 8-aligned and contiguous. */
    size_t flen;
    uint8_t *raw = read_bytes(path, &flen);
    CHECK(raw && flen >= 8);
    uint64_t N = 0;
    for (int i = 7; i >= 0; i--) N = N << 8 | raw[i];
    size_t total = 0;
    for (int i = 0; i < NT; i++) total += sizes[i];
    CHECK((8 + N) % 8 == 0);
    CHECK(8 + N + total == flen);
    CHECK(raw[8] == '{');
    size_t j = 8 + N;
    while (raw[j - 1] == ' ') j--;
    CHECK(raw[j - 1] == '}');
    free(raw);

    SwaxSTFile f;
    CHECKF(swax_st_open(path, &f) == 0, "%s", swax_last_error());
    CHECK(f.n == NT);
    CHECK(f.data_len == total);
    for (int i = 0; i < NT; i++) {
        const SwaxSTEntry *e = &f.entries[i];
        CHECK(!strcmp(e->name, ts[i].name)); /* header order kept */
        CHECK(swax_st_find(&f, ts[i].name) == e);
        CHECK(e->dtype == ts[i].dtype && e->ndim == ts[i].ndim && e->nbytes == sizes[i]);
        for (int d = 0; d < e->ndim; d++) CHECK(e->shape[d] == ts[i].shape[d]);
        const void *p = swax_st_data(&f, e);
        CHECK((uintptr_t)p % swax_dtype_size(e->dtype) == 0);
        CHECK(memcmp(p, bufs[i], sizes[i]) == 0);
    }
    CHECK(swax_st_find(&f, "nope") == NULL);
    CHECK(swax_st_find(&f, "__metadata__") == NULL);
    CHECK(swax_st_meta(&f, "format") && !strcmp(swax_st_meta(&f, "format"), "pt"));
    CHECK(swax_st_meta(&f, "note") && !strcmp(swax_st_meta(&f, "note"), meta[3]));
    CHECK(swax_st_meta(&f, "empty") && !strcmp(swax_st_meta(&f, "empty"), ""));
    CHECK(swax_st_meta(&f, "pt") == NULL && swax_st_meta(&f, "missing") == NULL);
    CHECK(f.metadata_json && strstr(f.metadata_json, "\"format\":\"pt\""));
    swax_st_close(&f);
    CHECK(f.map == NULL && f.entries == NULL);
    swax_st_close(&f); /* twice is fine */
    for (int i = 0; i < NT; i++) free(bufs[i]);
    CHECK(count_files() >= 1);
    unlink(path);
}

TEST(st_exact_header) {
    float w[2] = {1.0f, -2.5f};
    SwaxSTTensor t = {"w", SWAX_DT_F32, 1, {2}, w};
    const char *path = tpath("exact.safetensors");
    CHECK(swax_st_write(path, &t, 1, NULL) == 0);
    size_t n;
    uint8_t *raw = read_bytes(path, &n);
    const char *js = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t jl = strlen(js), N = (jl + 7) / 8 * 8;
    CHECK(raw && n == 8 + N + 8);
    CHECK(raw[0] == (uint8_t)N && raw[1] == 0 && raw[2] == 0 && raw[7] == 0);
    CHECK(memcmp(raw + 8, js, jl) == 0);
    for (size_t i = jl; i < N; i++) CHECK(raw[8 + i] == ' ');
    CHECK(memcmp(raw + 8 + N, w, 8) == 0);
    free(raw);

    SwaxSTFile f;
    CHECK(swax_st_open(path, &f) == 0);
    CHECK(f.metadata_json == NULL && swax_st_meta(&f, "x") == NULL);
    swax_st_close(&f);

    /* No tensors at all. */
    CHECK(swax_st_write(path, NULL, 0, NULL) == 0);
    CHECK(swax_st_open(path, &f) == 0);
    CHECK(f.n == 0 && f.data_len == 0);
    swax_st_close(&f);
    unlink(path);
}

TEST(st_truncated) {
    float w[6] = {1, 2, 3, 4, 5, 6};
    SwaxSTTensor ts[2] = {{"a", SWAX_DT_F32, 2, {2, 2}, w}, {"b", SWAX_DT_F32, 1, {2}, w + 4}};
    const char *full = tpath("full.safetensors"), *cut = tpath("cut.safetensors");
    CHECK(swax_st_write(full, ts, 2, NULL) == 0);
    size_t n;
    uint8_t *raw = read_bytes(full, &n);
    CHECK(raw);
    /* Every shorter length fails cleanly. */
    for (size_t len = 0; len < n; len++) {
        CHECK(write_bytes(cut, raw, len) == 0);
        CHECKF(st_rejects(cut), "length %zu of %zu", len, n);
    }
    /* Header length larger than the file. */
    raw[0] = (uint8_t)(n + 1), raw[1] = 0;
    CHECK(write_bytes(cut, raw, n) == 0);
    CHECK(st_rejects(cut));
    /* Header length over 100 MB (and one that would overflow 8 + N). */
    raw[0] = 0, raw[1] = 0, raw[2] = 0, raw[3] = 0x10;
    CHECK(write_bytes(cut, raw, n) == 0);
    CHECK(st_rejects(cut));
    memset(raw, 0xFF, 8);
    CHECK(write_bytes(cut, raw, n) == 0);
    CHECK(st_rejects(cut));
    free(raw);
    /* A missing file, and a folder. */
    CHECK(st_rejects(tpath("does-not-exist.safetensors")));
    CHECK(st_rejects(g_dir));
    unlink(full);
    unlink(cut);
}

TEST(st_bad_headers) {
    const char *p = tpath("bad.safetensors");
    static const struct {
        const char *header;
        size_t dlen;
    } cases[] = {
        {"{not json", 0},
        {"", 0},
        {" ", 0},
        {"[1,2]", 0},
        {"\"str\"", 0},
        {"{} x", 0},
        {"{\"a\":{\"dtype\":\"Q8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1},                       /* unknown dtype */
        {"{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4},                      /* case matters */
        {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4},                                        /* no dtype */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 2},                       /* past the end */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,1]}}", 4},                       /* begin > end */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 8},                         /* overlap */
        {"{\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8},                         /* overlap, unsorted */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
         "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8},                         /* empty one inside */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8},                      /* size mismatch */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2},                         /* duplicate */
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 2},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}", 1},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", 1},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1},       /* ndim 9 */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,0]}}", 0},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952,8],\"data_offsets\":[0,0]}}", 0},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1e300],\"data_offsets\":[0,1]}}", 1},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", 1},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 1},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 2},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":\"0,1\"}}", 1},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1},
        {"{\"a\":[1]}", 1},
        {"{\"a\":null}", 1},
        {"{\"__metadata__\":{\"k\":1}}", 0},
        {"{\"__metadata__\":{\"k\":null}}", 0},
        {"{\"__metadata__\":[\"k\",\"v\"]}", 0},
        {"{\"__metadata__\":\"x\"}", 0},
        {"{\"\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1},                   /* not UTF-8 */
        {"{\"\xc0\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1},               /* overlong */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}", 1},                       /* unclosed */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}}", 1},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},}", 1},
        {"{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1},      /* escaped NUL */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_st(p, cases[i].header, cases[i].dlen);
        CHECKF(st_rejects(p), "case %zu: %s", i, cases[i].header);
    }
    /* A name of 256 bytes is too long; 255 is fine. */
    char hdr[1024], name[300];
    for (int len = 255; len <= 256; len++) {
        memset(name, 'n', (size_t)len);
        name[len] = 0;
        snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", name);
        make_st(p, hdr, 1);
        SwaxSTFile f;
        int rc = swax_st_open(p, &f);
        CHECK(rc == (len == 255 ? 0 : SWAX_E_INPUT));
        if (!rc) CHECK(swax_st_find(&f, name) != NULL);
        swax_st_close(&f);
    }
    /* An embedded NUL byte in the header. */
    char nul[] = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}  ";
    size_t hl = sizeof nul - 1;
    uint8_t b[128] = {(uint8_t)hl};
    memcpy(b + 8, nul, hl);
    b[8 + 3] = 0;
    write_bytes(p, b, 8 + hl + 1);
    CHECK(st_rejects(p));
    /* Deep nesting stops at cJSON's limit, not the stack. */
    size_t depth = 200000;
    char *deep = malloc(2 * depth + 16);
    size_t k = 0;
    k += (size_t)sprintf(deep, "{\"a\":");
    for (size_t i = 0; i < depth; i++) deep[k++] = '[';
    for (size_t i = 0; i < depth; i++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    make_st(p, deep, 0);
    free(deep);
    CHECK(st_rejects(p));
    unlink(p);
}

TEST(st_lenient_but_safe) {
    const char *p = tpath("ok.safetensors");
    SwaxSTFile f;
    /* Offsets in any order, gaps, whitespace, unknown keys inside an entry, an
     * unpadded header (data not 8-aligned) and an F32 tensor at an odd offset:
     * accepted, and every data pointer comes back aligned. */
    const char *hdr = "  {\"b\" : {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[9,17], \"x\": 1},\n"
                      " \"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                      " \"e\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[17,17]},"
                      " \"__metadata__\":{\"k\":\"v\"}}   ";
    make_st(p, hdr, 20);
    CHECKF(swax_st_open(p, &f) == 0, "%s", swax_last_error());
    CHECK(f.n == 3 && !strcmp(f.entries[0].name, "b") && !strcmp(f.entries[1].name, "a"));
    const SwaxSTEntry *b = swax_st_find(&f, "b"), *a = swax_st_find(&f, "a");
    CHECK(a && b);
    const uint8_t *pb = swax_st_data(&f, b), *pa = swax_st_data(&f, a);
    CHECK((uintptr_t)pb % 4 == 0);
    for (int i = 0; i < 8; i++) CHECK(pb[i] == 9 + i);
    for (int i = 0; i < 3; i++) CHECK(pa[i] == i);
    CHECK(b->offset + b->nbytes <= f.data_len && a->offset + a->nbytes <= f.data_len);
    CHECK(!strcmp(swax_st_meta(&f, "k"), "v"));
    swax_st_close(&f);
    unlink(p);
}

TEST(st_fuzz) {
    /* Random byte flips and truncations of a valid file never crash (ASan/UBSan
     * watch this one); a failure is always SWAX_E_INPUT naming the file. */
    uint8_t w[64];
    fill_random(w, sizeof w);
    SwaxSTTensor ts[3] = {{"x", SWAX_DT_F32, 2, {2, 4}, w}, {"y", SWAX_DT_U8, 1, {5}, w + 32}, {"z", SWAX_DT_BF16, 0, {0}, w + 40}};
    const char *meta[] = {"a", "b", NULL};
    const char *src = tpath("fz_src.safetensors"), *p = tpath("fz.safetensors");
    CHECK(swax_st_write(src, ts, 3, meta) == 0);
    size_t n;
    uint8_t *raw = read_bytes(src, &n);
    uint8_t *m = malloc(n);
    int accepted = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(m, raw, n);
        int flips = 1 + (int)(rnd() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = rnd() % n;
            if (rnd() % 2) m[at] = (uint8_t)rnd();
            else m[at] = "{}[]\":,0123456789 e-."[rnd() % 22];
        }
        size_t len = rnd() % 8 ? n : rnd() % n;
        write_bytes(p, m, len);
        SwaxSTFile f;
        int rc = swax_st_open(p, &f);
        CHECKF(rc == 0 || (rc == SWAX_E_INPUT && err_names(p)), "iteration %d: rc %d: %s", it, rc, swax_last_error());
        if (!rc) {
            accepted++;
            for (int i = 0; i < f.n; i++) {
                const SwaxSTEntry *e = &f.entries[i];
                CHECK(e->offset <= f.data_len && e->nbytes <= f.data_len - e->offset);
                volatile uint8_t s = 0;
                const uint8_t *d = swax_st_data(&f, e);
                for (size_t j = 0; j < e->nbytes; j++) s ^= d[j];
                (void)s;
            }
        }
        swax_st_close(&f);
    }
    CHECK(accepted > 0);
    free(m);
    free(raw);
    unlink(src);
    unlink(p);
}

TEST(st_write_errors_and_atomicity) {
    float w[4] = {1, 2, 3, 4};
    const char *p = tpath("werr.safetensors");
    SwaxSTTensor good = {"g", SWAX_DT_F32, 1, {4}, w};
    CHECK(swax_st_write(p, &good, 1, NULL) == 0);
    size_t n0;
    uint8_t *before = read_bytes(p, &n0);
    int files = count_files();

    SwaxSTTensor dup[2] = {{"a", SWAX_DT_F32, 1, {2}, w}, {"a", SWAX_DT_F32, 1, {2}, w + 2}};
    CHECK(swax_st_write(p, dup, 2, NULL) == SWAX_E_USAGE && err_names(p));
    SwaxSTTensor badnd = {"a", SWAX_DT_F32, 9, {1, 1, 1, 1, 1, 1, 1, 1}, w};
    CHECK(swax_st_write(p, &badnd, 1, NULL) == SWAX_E_USAGE);
    SwaxSTTensor neg = {"a", SWAX_DT_F32, 1, {-1}, w};
    CHECK(swax_st_write(p, &neg, 1, NULL) == SWAX_E_USAGE);
    SwaxSTTensor nodata = {"a", SWAX_DT_F32, 1, {4}, NULL};
    CHECK(swax_st_write(p, &nodata, 1, NULL) == SWAX_E_USAGE);
    SwaxSTTensor mdname = {"__metadata__", SWAX_DT_F32, 1, {4}, w};
    CHECK(swax_st_write(p, &mdname, 1, NULL) == SWAX_E_USAGE);
    SwaxSTTensor badutf = {"\xff", SWAX_DT_F32, 1, {4}, w};
    CHECK(swax_st_write(p, &badutf, 1, NULL) == SWAX_E_USAGE);
    SwaxSTTensor baddt = {"a", (SwaxDType)42, 1, {4}, w};
    CHECK(swax_st_write(p, &baddt, 1, NULL) == SWAX_E_USAGE);
    char longname[300];
    memset(longname, 'x', 256);
    longname[256] = 0;
    SwaxSTTensor lname = {longname, SWAX_DT_F32, 1, {4}, w};
    CHECK(swax_st_write(p, &lname, 1, NULL) == SWAX_E_USAGE);
    const char *odd[] = {"k", NULL};
    CHECK(swax_st_write(p, &good, 1, odd) == SWAX_E_USAGE);
    const char *dupk[] = {"k", "1", "k", "2", NULL};
    CHECK(swax_st_write(p, &good, 1, dupk) == SWAX_E_USAGE);
    /* Nothing was touched, and no temporary file is left behind. */
    size_t n1;
    uint8_t *after = read_bytes(p, &n1);
    CHECK(after && n0 == n1 && memcmp(before, after, n0) == 0);
    CHECK(count_files() == files);
    free(before);
    free(after);
    /* An unwritable place is SWAX_E_IO. */
    CHECK(swax_st_write("/nonexistent-swax-dir/x.safetensors", &good, 1, NULL) == SWAX_E_IO);
    unlink(p);
}

/* ------------------------------------------------------------ npy */

static int npy_rejects(const char *path) {
    float *d = NULL;
    int nd = -1;
    int64_t sh[8];
    swax_error_clear();
    int rc = swax_npy_read_f32(path, &d, &nd, sh);
    int ok = rc == SWAX_E_INPUT && err_names(path) && d == NULL;
    if (!ok) fprintf(stderr, "    npy rc=%d msg=%s\n", rc, swax_last_error());
    if (!rc) free(d);
    return ok;
}

/* A .npy v1.0 file from a header dict (padded here) and raw data. */
static void make_npy(const char *path, int major, const char *dict, const void *data, size_t dlen) {
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64, hlen = total - pre;
    uint8_t *b = calloc(total + dlen + 1, 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', hlen - dl - 1);
    b[total - 1] = '\n';
    if (dlen) memcpy(b + total, data, dlen);
    write_bytes(path, b, total + dlen);
    free(b);
}

TEST(npy_header_by_hand) {
    float a[6] = {0, 1, 2, 3, 4, 5.5f};
    int64_t sh[2] = {2, 3};
    const char *p = tpath("a.npy");
    CHECK(swax_npy_write(p, SWAX_DT_F32, 2, sh, a) == 0);
    size_t n;
    uint8_t *raw = read_bytes(p, &n);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    size_t dl = strlen(dict); /* 59: 10 + 59 + 1 = 70, padded to 128 */
    CHECK(dl == 59);
    CHECK(raw && n == 128 + 24);
    CHECK(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0);
    CHECK(raw[8] == 118 && raw[9] == 0);
    CHECK(memcmp(raw + 10, dict, dl) == 0);
    for (size_t i = 10 + dl; i < 127; i++) CHECK(raw[i] == ' ');
    CHECK(raw[127] == '\n');
    CHECK(memcmp(raw + 128, a, 24) == 0);
    free(raw);

    /* 1-d shapes get the trailing comma; 0-d is (); I32 is '<i4'. */
    int32_t iv[3] = {-1, 0, 7};
    int64_t s1 = 3;
    CHECK(swax_npy_write(p, SWAX_DT_I32, 1, &s1, iv) == 0);
    raw = read_bytes(p, &n);
    CHECK(raw && n == 128 + 12);
    CHECK(strstr((char *)raw + 10, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }") == (char *)raw + 10);
    CHECK(memcmp(raw + 128, iv, 12) == 0);
    free(raw);
    double dv = 2.5;
    CHECK(swax_npy_write(p, SWAX_DT_F64, 0, NULL, &dv) == 0);
    raw = read_bytes(p, &n);
    CHECK(raw && n == 128 + 8);
    CHECK(strstr((char *)raw + 10, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }") == (char *)raw + 10);
    free(raw);
    CHECK(swax_npy_write(p, SWAX_DT_U8, 1, &s1, iv) == SWAX_E_USAGE);
    unlink(p);
}

TEST(npy_roundtrip) {
    const char *p = tpath("rt.npy");
    float *d;
    int nd;
    int64_t sh[8];
    /* f32, bit-exact (including NaN payloads and -0). */
    int64_t s3[3] = {2, 3, 4};
    float a[24];
    fill_random(a, sizeof a);
    a[0] = -0.0f;
    CHECK(swax_npy_write(p, SWAX_DT_F32, 3, s3, a) == 0);
    CHECKF(swax_npy_read_f32(p, &d, &nd, sh) == 0, "%s", swax_last_error());
    CHECK(nd == 3 && sh[0] == 2 && sh[1] == 3 && sh[2] == 4);
    CHECK(memcmp(d, a, sizeof a) == 0);
    free(d);
    /* f64 converted. */
    double b[5] = {1.0, -2.5, 1e-3, 3.14159265358979, 1e30};
    int64_t s1 = 5;
    CHECK(swax_npy_write(p, SWAX_DT_F64, 1, &s1, b) == 0);
    CHECK(swax_npy_read_f32(p, &d, &nd, sh) == 0);
    CHECK(nd == 1 && sh[0] == 5);
    for (int i = 0; i < 5; i++) CHECK(d[i] == (float)b[i]);
    free(d);
    /* A larger f64 array (more than one conversion chunk). */
    int64_t big = 3000;
    double *bb = malloc(3000 * sizeof *bb);
    for (int i = 0; i < 3000; i++) bb[i] = i * 0.25 - 7;
    CHECK(swax_npy_write(p, SWAX_DT_F64, 1, &big, bb) == 0);
    CHECK(swax_npy_read_f32(p, &d, &nd, sh) == 0);
    for (int i = 0; i < 3000; i++) CHECK(d[i] == (float)bb[i]);
    free(d);
    free(bb);
    /* 0-d and empty. */
    float s = 42.0f;
    CHECK(swax_npy_write(p, SWAX_DT_F32, 0, NULL, &s) == 0);
    CHECK(swax_npy_read_f32(p, &d, &nd, sh) == 0);
    CHECK(nd == 0 && d[0] == 42.0f);
    free(d);
    int64_t se[2] = {0, 5};
    CHECK(swax_npy_write(p, SWAX_DT_F32, 2, se, NULL) == 0);
    CHECK(swax_npy_read_f32(p, &d, &nd, sh) == 0);
    CHECK(nd == 2 && sh[0] == 0 && sh[1] == 5 && d != NULL);
    free(d);
    /* Headers as other writers make them: key order, double quotes, version 2.0, Python 2 longs. */
    float two[2] = {1.5f, -1.5f};
    const char *dicts[] = {
        "{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}",
        "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L,)}",
        "{'descr':'<f4','fortran_order':False,'shape':(1,2)}",
    };
    for (int i = 0; i < 3; i++) {
        make_npy(p, i == 2 ? 2 : 1, dicts[i], two, 8);
        CHECKF(swax_npy_read_f32(p, &d, &nd, sh) == 0, "%s: %s", dicts[i], swax_last_error());
        CHECK(d[0] == 1.5f && d[1] == -1.5f);
        free(d);
    }
    unlink(p);
}

TEST(npy_rejects_bad) {
    const char *p = tpath("bad.npy");
    float two[4] = {1, 2, 3, 4};
    static const char *bad_dicts[] = {
        "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }",
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",  /* data too short */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",  /* trailing data */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,3,4,5,6,7,8,9,10), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }", /* empty, but 8 bytes trail */
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,}",
        "{'descr': '<f4 , 'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }",
        "['descr', '<f4']",
        "",
    };
    for (size_t i = 0; i < sizeof bad_dicts / sizeof bad_dicts[0]; i++) {
        make_npy(p, 1, bad_dicts[i], two, 8);
        CHECKF(npy_rejects(p), "case %zu: %s", i, bad_dicts[i]);
    }
    /* Bad magic, bad version, truncated at every length, header length past the end. */
    int64_t s2 = 2;
    CHECK(swax_npy_write(p, SWAX_DT_F32, 1, &s2, two) == 0);
    size_t n;
    uint8_t *raw = read_bytes(p, &n);
    for (size_t len = 0; len < n; len++) {
        write_bytes(p, raw, len);
        CHECKF(npy_rejects(p), "length %zu", len);
    }
    raw[1] = 'X';
    write_bytes(p, raw, n);
    CHECK(npy_rejects(p));
    raw[1] = 'N';
    raw[6] = 4;
    write_bytes(p, raw, n);
    CHECK(npy_rejects(p));
    raw[6] = 1;
    raw[8] = 0xFF, raw[9] = 0xFF;
    write_bytes(p, raw, n);
    CHECK(npy_rejects(p));
    raw[6] = 2; /* v2: 4-byte length */
    raw[10] = 0xFF, raw[11] = 0x7F;
    write_bytes(p, raw, n);
    CHECK(npy_rejects(p));
    free(raw);
    CHECK(npy_rejects(tpath("missing.npy")));
    unlink(p);
}

/* ------------------------------------------------------------ shards */

static int shard_rejects(const char *path) {
    SwaxShard s;
    swax_error_clear();
    int rc = swax_shard_open(path, &s);
    int ok = rc == SWAX_E_INPUT && err_names(path) && s.map == NULL;
    if (!ok) fprintf(stderr, "    shard rc=%d msg=%s\n", rc, swax_last_error());
    swax_shard_close(&s);
    return ok;
}

static int32_t hdr_i32(const uint8_t *raw, int i) {
    int32_t v;
    memcpy(&v, raw + 4 * i, 4);
    return v;
}

TEST(shard_roundtrip_u16) {
    const char *p = tpath("s16.bin");
    enum { N = 10000 };
    uint32_t *t = malloc(N * sizeof *t);
    for (int i = 0; i < N; i++) t[i] = rnd() % 50257;
    t[5] = 0, t[6] = 50256;
    CHECK(swax_shard_write(p, t, N, 50257) == 0);
    size_t n;
    uint8_t *raw = read_bytes(p, &n);
    CHECK(raw && n == 1024 + 2 * N);
    CHECK(hdr_i32(raw, 0) == 20240520 && hdr_i32(raw, 1) == 1 && hdr_i32(raw, 2) == N);
    for (int i = 3; i < 256; i++) CHECK(hdr_i32(raw, i) == 0);
    uint16_t t7;
    memcpy(&t7, raw + 1024 + 14, 2);
    CHECK(t7 == t[7]);
    free(raw);

    SwaxShard s;
    CHECKF(swax_shard_open(p, &s) == 0, "%s", swax_last_error());
    CHECK(s.width == 2 && s.n_tokens == N);
    for (int i = 0; i < N; i++) CHECK(swax_shard_token(&s, (size_t)i) == t[i]);
    int32_t out[100];
    swax_shard_read(&s, 9900, 100, out);
    for (int i = 0; i < 100; i++) CHECK(out[i] == (int32_t)t[9900 + i]);
    CHECK(swax_shard_check_vocab(&s, 50257) == 0);
    swax_shard_close(&s);
    CHECK(s.map == NULL);

    /* vocab 65536 still fits uint16; empty shards are fine. */
    uint32_t edge[3] = {0, 65535, 1};
    CHECK(swax_shard_write(p, edge, 3, 65536) == 0);
    CHECK(swax_shard_open(p, &s) == 0);
    CHECK(s.width == 2 && s.n_tokens == 3 && swax_shard_token(&s, 1) == 65535);
    swax_shard_close(&s);
    CHECK(swax_shard_write(p, NULL, 0, 100) == 0);
    CHECK(swax_shard_open(p, &s) == 0);
    CHECK(s.width == 2 && s.n_tokens == 0 && swax_shard_check_vocab(&s, 1) == 0);
    swax_shard_close(&s);
    free(t);
    unlink(p);
}

TEST(shard_roundtrip_u32) {
    const char *p = tpath("s32.bin");
    enum { N = 5000 };
    uint32_t *t = malloc(N * sizeof *t);
    for (int i = 0; i < N; i++) t[i] = rnd() % 200019;
    t[0] = 200018;
    CHECK(swax_shard_write(p, t, N, 200019) == 0);
    size_t n;
    uint8_t *raw = read_bytes(p, &n);
    CHECK(raw && n == 1024 + 4 * N);
    CHECK(hdr_i32(raw, 0) == 20240801 && hdr_i32(raw, 1) == 7 && hdr_i32(raw, 2) == N);
    free(raw);
    SwaxShard s;
    CHECK(swax_shard_open(p, &s) == 0);
    CHECK(s.width == 4 && s.n_tokens == N);
    for (int i = 0; i < N; i++) CHECK(swax_shard_token(&s, (size_t)i) == t[i]);
    int32_t out[N];
    swax_shard_read(&s, 0, N, out);
    for (int i = 0; i < N; i++) CHECK(out[i] == (int32_t)t[i]);
    CHECK(swax_shard_check_vocab(&s, 200019) == 0);
    swax_shard_close(&s);
    /* Small vocab but one large token (vocab unknown = 0): uint32. Small tokens, vocab > 65536: uint32. */
    uint32_t big[2] = {1, 70000};
    CHECK(swax_shard_write(p, big, 2, 0) == 0);
    CHECK(swax_shard_open(p, &s) == 0);
    CHECK(s.width == 4 && swax_shard_token(&s, 1) == 70000);
    swax_shard_close(&s);
    uint32_t small[2] = {1, 2};
    CHECK(swax_shard_write(p, small, 2, 65537) == 0);
    CHECK(swax_shard_open(p, &s) == 0);
    CHECK(s.width == 4);
    swax_shard_close(&s);
    free(t);
    unlink(p);
}

TEST(shard_rejects_bad) {
    const char *p = tpath("bad.bin");
    uint32_t t[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(swax_shard_write(p, t, 8, 1000) == 0);
    size_t n;
    uint8_t *raw = read_bytes(p, &n);
    CHECK(raw && n == 1024 + 16);
    uint8_t *m = malloc(n + 8);
    int32_t v;
    /* wrong magic */
    memcpy(m, raw, n);
    v = 20240521;
    memcpy(m, &v, 4);
    write_bytes(p, m, n);
    CHECK(shard_rejects(p));
    /* wrong version (and the other variant's version) */
    memcpy(m, raw, n);
    v = 2;
    memcpy(m + 4, &v, 4);
    write_bytes(p, m, n);
    CHECK(shard_rejects(p));
    memcpy(m, raw, n);
    v = 7;
    memcpy(m + 4, &v, 4);
    write_bytes(p, m, n);
    CHECK(shard_rejects(p));
    memcpy(m, raw, n);
    v = 20240801; /* uint32 magic with version 1 */
    memcpy(m, &v, 4);
    write_bytes(p, m, n);
    CHECK(shard_rejects(p));
    /* count mismatch: more, fewer, negative */
    memcpy(m, raw, n);
    v = 9;
    memcpy(m + 8, &v, 4);
    write_bytes(p, m, n);
    CHECK(shard_rejects(p));
    v = 7;
    memcpy(m + 8, &v, 4);
    write_bytes(p, m, n);
    CHECK(shard_rejects(p));
    v = -1;
    memcpy(m + 8, &v, 4);
    write_bytes(p, m, n);
    CHECK(shard_rejects(p));
    /* trailing bytes */
    memcpy(m, raw, n);
    m[n] = 0, m[n + 1] = 0;
    write_bytes(p, m, n + 2);
    CHECK(shard_rejects(p));
    /* truncated at every length */
    for (size_t len = 0; len < n; len++) {
        write_bytes(p, raw, len);
        CHECKF(shard_rejects(p), "length %zu", len);
    }
    CHECK(shard_rejects(tpath("missing.bin")));
    CHECK(shard_rejects(g_dir));
    free(m);
    free(raw);
    unlink(p);
}

TEST(shard_vocab_check) {
    const char *p = tpath("voc.bin");
    uint32_t t[6] = {5, 9, 3, 120, 7, 130};
    CHECK(swax_shard_write(p, t, 6, 200) == 0);
    SwaxShard s;
    CHECK(swax_shard_open(p, &s) == 0);
    CHECK(swax_shard_check_vocab(&s, 200) == 0);
    CHECK(swax_shard_check_vocab(&s, 131) == 0);
    swax_error_clear();
    CHECK(swax_shard_check_vocab(&s, 100) == SWAX_E_INPUT);
    CHECK(err_names(p) && strstr(swax_last_error(), "position 3"));
    CHECK(swax_shard_check_vocab(&s, 130) == SWAX_E_INPUT && strstr(swax_last_error(), "position 5"));
    CHECK(swax_shard_check_vocab(&s, 0) == SWAX_E_INPUT && strstr(swax_last_error(), "position 0"));
    swax_shard_close(&s);
    uint32_t w[3] = {1, 100000, 2};
    CHECK(swax_shard_write(p, w, 3, 200000) == 0);
    CHECK(swax_shard_open(p, &s) == 0);
    CHECK(swax_shard_check_vocab(&s, 50000) == SWAX_E_INPUT && strstr(swax_last_error(), "position 1"));
    swax_shard_close(&s);
    /* The writer refuses tokens outside the vocabulary it is told. */
    CHECK(swax_shard_write(p, t, 6, 100) == SWAX_E_USAGE && err_names(p));
    unlink(p);
}

/* ------------------------------------------------------------ config.json */

static void sample_config(SwaxConfig *c) {
    memset(c, 0, sizeof *c);
    c->vocab_size = 50304;
    c->vocab_used = 50257;
    c->d_model = 1024;
    c->n_blocks = 12;
    strcpy(c->pattern, "AMMA");
    c->attn_heads = 16;
    c->head_dim = 64;
    c->rope_theta = 10000.123456789012;
    c->window = 2048;
    c->mlstm_heads = 4;
    c->gate_softcap = 15.0f;
    c->ffn_dim = 2752;
    c->logit_softcap = 0.1f;
    c->norm_eps = 1e-6f;
    c->tie_embeddings = 1;
    c->igate_bias_init = -7.3f;
    c->eot_token = 50256;
}

static int bits_eq_f(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }
static int bits_eq_d(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static int config_eq(const SwaxConfig *a, const SwaxConfig *b) {
    return a->vocab_size == b->vocab_size && a->vocab_used == b->vocab_used && a->d_model == b->d_model &&
           a->n_blocks == b->n_blocks && !strcmp(a->pattern, b->pattern) && a->attn_heads == b->attn_heads &&
           a->head_dim == b->head_dim && bits_eq_d(a->rope_theta, b->rope_theta) && a->window == b->window &&
           a->mlstm_heads == b->mlstm_heads && bits_eq_f(a->gate_softcap, b->gate_softcap) && a->ffn_dim == b->ffn_dim &&
           bits_eq_f(a->logit_softcap, b->logit_softcap) && bits_eq_f(a->norm_eps, b->norm_eps) &&
           a->tie_embeddings == b->tie_embeddings && bits_eq_f(a->igate_bias_init, b->igate_bias_init) &&
           a->eot_token == b->eot_token;
}

/* The sample config's JSON with one key changed (value = JSON text) or removed (value NULL). */
static char *config_variant(const char *key, const char *value) {
    SwaxConfig c;
    sample_config(&c);
    char *txt;
    if (swax_config_to_json(&c, &txt)) return NULL;
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    if (value) cJSON_AddItemToObject(root, key, cJSON_CreateRaw(value));
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

static int config_rejects(const char *json, const char *field) {
    SwaxConfig c;
    memset(&c, 0x5A, sizeof c);
    swax_error_clear();
    int rc = swax_config_from_json(json, strlen(json), "ORIGIN.json", &c);
    const char *msg = swax_last_error();
    int untouched = c.vocab_size == 0x5A5A5A5A;
    int ok = rc == SWAX_E_INPUT && strstr(msg, "ORIGIN.json") && (!field || strstr(msg, field)) && untouched;
    if (!ok) fprintf(stderr, "    config rc=%d msg=%s\n", rc, msg);
    return ok;
}

TEST(config_roundtrip) {
    SwaxConfig a, b;
    sample_config(&a);
    char *txt;
    CHECK(swax_config_to_json(&a, &txt) == 0);
    CHECK(strstr(txt, "\"format\":") && strstr(txt, "\"swax\"") && strstr(txt, "\"version\":"));
    CHECK(strstr(txt, "1e-06") && strstr(txt, "true")); /* shortest float text, a boolean */
    CHECK(txt[strlen(txt) - 1] == '\n');
    memset(&b, 0, sizeof b);
    CHECKF(swax_config_from_json(txt, strlen(txt), "mem", &b) == 0, "%s", swax_last_error());
    CHECK(config_eq(&a, &b));
    free(txt);
    /* Floats and doubles survive bit-exactly, whatever their value. */
    for (int i = 0; i < 2000; i++) {
        uint32_t u = rnd();
        uint64_t u64 = (uint64_t)rnd() << 32 | rnd();
        float f;
        double d;
        memcpy(&f, &u, 4);
        memcpy(&d, &u64, 8);
        if (!isfinite(f) || !isfinite(d)) continue;
        a.gate_softcap = f;
        a.norm_eps = f * 0.5f;
        a.logit_softcap = i % 2 ? FLT_MAX : FLT_MIN / 4; /* a subnormal too */
        a.rope_theta = d;
        a.tie_embeddings = i % 2;
        a.eot_token = i % 3 ? -1 : INT32_MAX;
        CHECK(swax_config_to_json(&a, &txt) == 0);
        int rc = swax_config_from_json(txt, strlen(txt), "mem", &b);
        CHECKF(rc == 0, "%s\n%s", swax_last_error(), txt);
        free(txt);
        CHECKF(config_eq(&a, &b), "float %.9g double %.17g", (double)f, d);
    }
    /* Through a file. */
    const char *p = tpath("config.json");
    sample_config(&a);
    CHECK(swax_config_save(p, &a) == 0);
    CHECK(swax_config_load(p, &b) == 0);
    CHECK(config_eq(&a, &b));
    unlink(p);
    CHECK(swax_config_load(p, &b) == SWAX_E_INPUT && err_names(p));
    /* NaN cannot be written. */
    a.norm_eps = NAN;
    CHECK(swax_config_to_json(&a, &txt) == SWAX_E_USAGE && strstr(swax_last_error(), "norm_eps"));
}

TEST(config_defaults_and_leniency) {
    SwaxConfig a, b;
    sample_config(&a);
    /* Optional fields default. */
    char *j = config_variant("vocab_used", NULL);
    cJSON *root = cJSON_Parse(j);
    free(j);
    cJSON_DeleteItemFromObjectCaseSensitive(root, "igate_bias_init");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "eot_token");
    cJSON_AddItemToObject(root, "some_future_field", cJSON_CreateString("ignored"));
    j = cJSON_Print(root);
    cJSON_Delete(root);
    CHECKF(swax_config_from_json(j, strlen(j), "mem", &b) == 0, "%s", swax_last_error());
    free(j);
    CHECK(b.vocab_used == a.vocab_size && b.igate_bias_init == -10.0f && b.eot_token == -1);
    CHECK(b.d_model == a.d_model && !strcmp(b.pattern, "AMMA"));
    /* tie_embeddings as 0/1, integers written as 1e3 or 1024.0, an older version. */
    j = config_variant("tie_embeddings", "0");
    CHECK(swax_config_from_json(j, strlen(j), "mem", &b) == 0 && b.tie_embeddings == 0);
    free(j);
    j = config_variant("d_model", "1.024e3");
    CHECK(swax_config_from_json(j, strlen(j), "mem", &b) == 0 && b.d_model == 1024);
    free(j);
    j = config_variant("pattern", "\"\"");
    CHECK(swax_config_from_json(j, strlen(j), "mem", &b) == 0 && b.pattern[0] == 0); /* validate's job */
    free(j);
    j = config_variant("d_model", "-5");
    CHECK(swax_config_from_json(j, strlen(j), "mem", &b) == 0 && b.d_model == -5); /* no range check here */
    free(j);
    /* Only `len` bytes are read: what follows is ignored. */
    char *txt;
    CHECK(swax_config_to_json(&a, &txt) == 0);
    size_t n = strlen(txt);
    char *ext = malloc(n + 8);
    memcpy(ext, txt, n);
    memcpy(ext + n, "garbage", 8);
    CHECK(swax_config_from_json(ext, n, "mem", &b) == 0 && config_eq(&a, &b));
    free(ext);
    free(txt);
}

TEST(config_rejects_bad) {
    static const char *required[] = {"vocab_size", "d_model", "n_blocks", "pattern", "attn_heads", "head_dim",
                                     "rope_theta", "window", "mlstm_heads", "gate_softcap", "ffn_dim",
                                     "logit_softcap", "norm_eps", "tie_embeddings"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char *j = config_variant(required[i], NULL);
        CHECKF(config_rejects(j, required[i]), "missing %s", required[i]);
        free(j);
    }
    static const struct {
        const char *key, *value;
    } wrong[] = {
        {"d_model", "\"1024\""}, {"d_model", "1024.5"},     {"d_model", "3e9"},      {"d_model", "-3e9"},
        {"d_model", "null"},     {"d_model", "true"},       {"d_model", "[1024]"},   {"vocab_used", "\"x\""},
        {"eot_token", "1.5"},    {"pattern", "5"},          {"pattern", "[\"A\"]"},  {"rope_theta", "\"1e4\""},
        {"norm_eps", "false"},   {"norm_eps", "1e39"},      {"gate_softcap", "{}"},  {"igate_bias_init", "\"-10\""},
        {"tie_embeddings", "\"yes\""}, {"tie_embeddings", "2"}, {"tie_embeddings", "null"},
        {"pattern", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAM\""}, /* 65 chars */
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char *j = config_variant(wrong[i].key, wrong[i].value);
        CHECKF(config_rejects(j, wrong[i].key), "%s = %s", wrong[i].key, wrong[i].value);
        free(j);
    }
    static const struct {
        const char *key, *value;
    } header[] = {
        {"format", "\"hf\""}, {"format", "\"SWAX\""}, {"format", "1"}, {"format", NULL},
        {"version", "2"},     {"version", "\"1\""},   {"version", "0"}, {"version", "1.5"}, {"version", NULL},
    };
    for (size_t i = 0; i < sizeof header / sizeof header[0]; i++) {
        char *j = config_variant(header[i].key, header[i].value);
        CHECKF(config_rejects(j, header[i].key), "%s = %s", header[i].key, header[i].value ? header[i].value : "(absent)");
        free(j);
    }
    CHECK(config_rejects("", NULL));
    CHECK(config_rejects("{", NULL));
    CHECK(config_rejects("[]", NULL));
    CHECK(config_rejects("\"swax\"", NULL));
    CHECK(config_rejects("{\"format\":\"swax\",\"version\":1}", "vocab_size"));
    /* Duplicate keys, trailing garbage. */
    char *j = config_variant("d_model", "64");
    size_t n = strlen(j);
    char *k = malloc(n + 32);
    memcpy(k, j, n - 1);
    strcpy(k + n - 1, ",\"d_model\":128}");
    CHECK(config_rejects(k, "d_model"));
    strcpy(k, j);
    strcat(k, " x");
    CHECK(config_rejects(k, NULL));
    free(k);
    free(j);
    /* A file that is not JSON. */
    const char *p = tpath("bad_config.json");
    write_bytes(p, "\x00\x01\x02", 3);
    SwaxConfig c;
    CHECK(swax_config_load(p, &c) == SWAX_E_INPUT && err_names(p));
    CHECK(swax_config_load(g_dir, &c) == SWAX_E_INPUT && err_names(g_dir));
    unlink(p);
}

/* --set takes every value exactly as config.json writes it: for each key of the
 * JSON, "key=<its JSON text>" turns a config that differs in that field back
 * into the same config. Keys come from the JSON itself, so a new field is covered. */
TEST(config_set_accepts_what_config_json_holds) {
    SwaxConfig a, other;
    sample_config(&a);
    /* another config that differs from `a` in every field */
    swax_config_default(&other, 4096, 128, 4);
    other.vocab_used = 4000, other.pattern[1] = 0, other.attn_heads = 2, other.head_dim = 32;
    other.rope_theta = 500000.5, other.window = 64, other.mlstm_heads = 2, other.gate_softcap = 7.5f;
    other.ffn_dim = 320, other.logit_softcap = 0, other.norm_eps = 1e-5f, other.igate_bias_init = -3;
    other.eot_token = 4095;
    for (int tie = 0; tie < 2; tie++) {
        a.tie_embeddings = tie;
        other.tie_embeddings = !tie;
        char *txt, *otxt;
        CHECK(swax_config_to_json(&a, &txt) == 0 && swax_config_to_json(&other, &otxt) == 0);
        cJSON *root = cJSON_Parse(txt), *oroot = cJSON_Parse(otxt);
        CHECK(root && oroot);
        int nfields = 0;
        for (const cJSON *it = root->child; it; it = it->next) {
            if (!strcmp(it->string, "format") || !strcmp(it->string, "version")) continue;
            const cJSON *oit = cJSON_GetObjectItemCaseSensitive(oroot, it->string);
            CHECK(oit);
            char *val = cJSON_PrintUnformatted(it), *oval = cJSON_PrintUnformatted(oit);
            char set[512], oset[512];
            snprintf(set, sizeof set, "%s=%s", it->string, val);
            snprintf(oset, sizeof oset, "%s=%s", it->string, oval);
            CHECKF(strcmp(val, oval) != 0, "%s: the two configs agree", it->string);
            SwaxConfig c = a;
            CHECKF(swax_config_set(&c, oset) == 0, "%s: %s", oset, swax_last_error());
            CHECKF(!config_eq(&c, &a), "%s changed nothing", oset);
            CHECKF(swax_config_set(&c, set) == 0, "%s: %s", set, swax_last_error());
            CHECKF(config_eq(&c, &a), "%s does not give the config back", set);
            /* a string also unquoted, as typed on a command line */
            if (cJSON_IsString(it)) {
                c = a;
                snprintf(oset, sizeof oset, "%s=%s", it->string, cJSON_GetStringValue(oit));
                snprintf(set, sizeof set, "%s=%s", it->string, cJSON_GetStringValue(it));
                CHECKF(swax_config_set(&c, oset) == 0 && swax_config_set(&c, set) == 0 && config_eq(&c, &a), "%s",
                       set);
            }
            cJSON_free(val);
            cJSON_free(oval);
            nfields++;
        }
        CHECK(nfields == 17);
        cJSON_Delete(root);
        cJSON_Delete(oroot);
        free(txt);
        free(otxt);
    }
    /* booleans also as 0/1; integers as JSON writes them in any form */
    SwaxConfig c = a;
    CHECK(swax_config_set(&c, "tie_embeddings=0") == 0 && c.tie_embeddings == 0);
    CHECK(swax_config_set(&c, "tie_embeddings=true") == 0 && c.tie_embeddings == 1);
    CHECK(swax_config_set(&c, "tie_embeddings=false") == 0 && c.tie_embeddings == 0);
    CHECK(swax_config_set(&c, "tie_embeddings=1") == 0 && c.tie_embeddings == 1);
    CHECK(swax_config_set(&c, "d_model=1.024e3") == 0 && c.d_model == 1024);
    CHECK(swax_config_set(&c, "norm_eps=1e-06") == 0 && c.norm_eps == 1e-6f);
    /* what the file would refuse, --set refuses, naming the field; the config is untouched */
    static const char *bad[] = {"tie_embeddings=yes", "tie_embeddings=2", "tie_embeddings=\"true\"",
                                "d_model=12.5",       "d_model=abc",      "d_model=\"32\"",
                                "d_model=3e9",        "norm_eps=nan",     "rope_theta="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = a;
        int rc = swax_config_set(&c, bad[i]);
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)(strchr(bad[i], '=') - bad[i]), bad[i]);
        CHECKF(rc == SWAX_E_USAGE && strstr(swax_last_error(), key) && config_eq(&c, &a), "%s: rc %d: %s", bad[i], rc,
               swax_last_error());
    }
    CHECK(swax_config_set(&c, "no_such_field=1") == SWAX_E_USAGE && strstr(swax_last_error(), "no_such_field"));
    CHECK(swax_config_set(&c, "d_model") == SWAX_E_USAGE && strstr(swax_last_error(), "key=value"));
}

/* ------------------------------------------------------------ files from the reference libraries */

/* Written on the GPU machine by safetensors 0.8.0 (torch.save_file) and
 * numpy 2.5.2 (np.save):
 *   save_file({"b_f32": arange(6).reshape(2, 3), "a_u8": arange(5, uint8),
 *              "c_bf16": [1, -2], "d_i64": [-5, 6], "e_f16": [0.5],
 *              "f_empty": zeros(0, 3), "g_scalar": tensor(3.25), "h_f64": [1/3]},
 *             metadata={"format": "pt", "k": "v\u00e9"})
 *   np.save(arange(12, float32).reshape(3, 4) - 5.5) */
static const unsigned char k_py_safetensors[599] = {
    0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x22, 0x5f, 0x5f, 0x6d, 0x65, 0x74, 0x61,
    0x64, 0x61, 0x74, 0x61, 0x5f, 0x5f, 0x22, 0x3a, 0x7b, 0x22, 0x66, 0x6f, 0x72, 0x6d, 0x61, 0x74,
    0x22, 0x3a, 0x22, 0x70, 0x74, 0x22, 0x2c, 0x22, 0x6b, 0x22, 0x3a, 0x22, 0x76, 0xc3, 0xa9, 0x22,
    0x7d, 0x2c, 0x22, 0x64, 0x5f, 0x69, 0x36, 0x34, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70,
    0x65, 0x22, 0x3a, 0x22, 0x49, 0x36, 0x34, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22,
    0x3a, 0x5b, 0x32, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65,
    0x74, 0x73, 0x22, 0x3a, 0x5b, 0x30, 0x2c, 0x31, 0x36, 0x5d, 0x7d, 0x2c, 0x22, 0x68, 0x5f, 0x66,
    0x36, 0x34, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x36,
    0x34, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x31, 0x5d, 0x2c, 0x22,
    0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x31,
    0x36, 0x2c, 0x32, 0x34, 0x5d, 0x7d, 0x2c, 0x22, 0x62, 0x5f, 0x66, 0x33, 0x32, 0x22, 0x3a, 0x7b,
    0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c, 0x22, 0x73,
    0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x32, 0x2c, 0x33, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74,
    0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x32, 0x34, 0x2c, 0x34,
    0x38, 0x5d, 0x7d, 0x2c, 0x22, 0x66, 0x5f, 0x65, 0x6d, 0x70, 0x74, 0x79, 0x22, 0x3a, 0x7b, 0x22,
    0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c, 0x22, 0x73, 0x68,
    0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x30, 0x2c, 0x33, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61,
    0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x34, 0x38, 0x2c, 0x34, 0x38,
    0x5d, 0x7d, 0x2c, 0x22, 0x67, 0x5f, 0x73, 0x63, 0x61, 0x6c, 0x61, 0x72, 0x22, 0x3a, 0x7b, 0x22,
    0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c, 0x22, 0x73, 0x68,
    0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66,
    0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x34, 0x38, 0x2c, 0x35, 0x32, 0x5d, 0x7d, 0x2c,
    0x22, 0x63, 0x5f, 0x62, 0x66, 0x31, 0x36, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65,
    0x22, 0x3a, 0x22, 0x42, 0x46, 0x31, 0x36, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22,
    0x3a, 0x5b, 0x32, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65,
    0x74, 0x73, 0x22, 0x3a, 0x5b, 0x35, 0x32, 0x2c, 0x35, 0x36, 0x5d, 0x7d, 0x2c, 0x22, 0x65, 0x5f,
    0x66, 0x31, 0x36, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46,
    0x31, 0x36, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x31, 0x5d, 0x2c,
    0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b,
    0x35, 0x36, 0x2c, 0x35, 0x38, 0x5d, 0x7d, 0x2c, 0x22, 0x61, 0x5f, 0x75, 0x38, 0x22, 0x3a, 0x7b,
    0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x55, 0x38, 0x22, 0x2c, 0x22, 0x73, 0x68,
    0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x35, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f,
    0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x35, 0x38, 0x2c, 0x36, 0x33, 0x5d, 0x7d,
    0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0xd5, 0x3f,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40,
    0x00, 0x00, 0x80, 0x40, 0x00, 0x00, 0xa0, 0x40, 0x00, 0x00, 0x50, 0x40, 0x80, 0x3f, 0x00, 0xc0,
    0x00, 0x38, 0x00, 0x01, 0x02, 0x03, 0x04,
};
static const unsigned char k_py_f4_npy[176] = {
    0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63,
    0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74,
    0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73,
    0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x33, 0x2c, 0x20,
    0x34, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a,
    0x00, 0x00, 0xb0, 0xc0, 0x00, 0x00, 0x90, 0xc0, 0x00, 0x00, 0x60, 0xc0, 0x00, 0x00, 0x20, 0xc0,
    0x00, 0x00, 0xc0, 0xbf, 0x00, 0x00, 0x00, 0xbf, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0xc0, 0x3f,
    0x00, 0x00, 0x20, 0x40, 0x00, 0x00, 0x60, 0x40, 0x00, 0x00, 0x90, 0x40, 0x00, 0x00, 0xb0, 0x40,
};

TEST(reference_library_files) {
    const char *p = tpath("py.safetensors");
    CHECK(write_bytes(p, k_py_safetensors, sizeof k_py_safetensors) == 0);
    SwaxSTFile f;
    CHECKF(swax_st_open(p, &f) == 0, "%s", swax_last_error());
    CHECK(f.n == 8);
    CHECK(!strcmp(swax_st_meta(&f, "format"), "pt") && !strcmp(swax_st_meta(&f, "k"), "v\xc3\xa9"));
    const SwaxSTEntry *e = swax_st_find(&f, "b_f32");
    CHECK(e && e->dtype == SWAX_DT_F32 && e->ndim == 2 && e->shape[0] == 2 && e->shape[1] == 3);
    const float *bf = swax_st_data(&f, e);
    for (int i = 0; i < 6; i++) CHECK(bf[i] == (float)i);
    e = swax_st_find(&f, "a_u8");
    CHECK(e && e->dtype == SWAX_DT_U8 && e->nbytes == 5 && !memcmp(swax_st_data(&f, e), "\0\1\2\3\4", 5));
    e = swax_st_find(&f, "c_bf16");
    const uint16_t *bb = swax_st_data(&f, e);
    CHECK(e && e->dtype == SWAX_DT_BF16 && bb[0] == 0x3f80 && bb[1] == 0xc000);
    e = swax_st_find(&f, "d_i64");
    const int64_t *ib = swax_st_data(&f, e);
    CHECK(e && e->dtype == SWAX_DT_I64 && ib[0] == -5 && ib[1] == 6);
    e = swax_st_find(&f, "e_f16");
    CHECK(e && e->dtype == SWAX_DT_F16 && *(const uint16_t *)swax_st_data(&f, e) == 0x3800);
    e = swax_st_find(&f, "f_empty");
    CHECK(e && e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 3 && e->nbytes == 0);
    e = swax_st_find(&f, "g_scalar");
    CHECK(e && e->ndim == 0 && e->nbytes == 4 && *(const float *)swax_st_data(&f, e) == 3.25f);
    e = swax_st_find(&f, "h_f64");
    CHECK(e && e->dtype == SWAX_DT_F64 && *(const double *)swax_st_data(&f, e) == 1.0 / 3);
    swax_st_close(&f);

    p = tpath("py.npy");
    CHECK(write_bytes(p, k_py_f4_npy, sizeof k_py_f4_npy) == 0);
    float *d;
    int nd;
    int64_t sh[8];
    CHECKF(swax_npy_read_f32(p, &d, &nd, sh) == 0, "%s", swax_last_error());
    CHECK(nd == 2 && sh[0] == 3 && sh[1] == 4);
    for (int i = 0; i < 12; i++) CHECK(d[i] == i - 5.5f);
    free(d);
    /* Our writer makes the same header bytes as NumPy for this array. */
    float v[12];
    for (int i = 0; i < 12; i++) v[i] = i - 5.5f;
    int64_t s34[2] = {3, 4};
    CHECK(swax_npy_write(p, SWAX_DT_F32, 2, s34, v) == 0);
    size_t n;
    uint8_t *raw = read_bytes(p, &n);
    CHECK(raw && n == sizeof k_py_f4_npy && memcmp(raw, k_py_f4_npy, n) == 0);
    free(raw);
    unlink(p);
}

RUN_TESTS()
