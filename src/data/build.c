/* build.c — text corpora into llm.c token shards; see build.h and docs/data.md.
 *
 * Flow: walk each source (sorted), read and tokenise its documents in batches
 * (documents of a batch are encoded in parallel, appended in order, so the
 * result never depends on the thread count), split each source (seeded
 * shuffle), weight the mix sources, shuffle the training list, write shards,
 * remove stale shards, write data.json last. */
#include "data/build.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "io/shard.h"

const char *const swax_data_extensions = ".txt,.py,.go,.c,.h,.md,.jsonl";

#define BATCH_BYTES (32u << 20)
#define BATCH_DOCS 8192
#define MAX_DEPTH 64
#define MAX_SHARDS 999999
#define BINARY_PROBE 8192

/* RNG streams (one per purpose and source: reordering nothing else moves them). */
#define STREAM_SPLIT 0x5350000000ull  /* + source */
#define STREAM_MIX 0x4d49000000ull    /* + source */
#define STREAM_TRAIN 0x5452000000ull
#define STREAM_VAL 0x5641000000ull

void swax_data_build_defaults(SwaxDataBuildOptions *o) {
    memset(o, 0, sizeof *o);
    o->val_fraction = 0.05;
    o->shard_tokens = 100000000;
    o->seed = 1;
}

/* ---- small growable arrays ----------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem, const char *what) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return swax_error(SWAX_E_NOMEM, "%s: too many items", what);
        nc *= 2;
    }
    void *q = realloc(*p, nc * elem);
    if (!q) return swax_error(SWAX_E_NOMEM, "%s: cannot allocate %.1f MiB", what, (double)nc * elem / 1048576.0);
    *p = q;
    *cap = nc;
    return 0;
}

typedef struct {
    char **v;
    size_t n, cap;
} StrList;

static void strlist_free(StrList *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int strlist_push(StrList *l, const char *s) {
    SWAX_TRY(grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v, "file list"));
    char *c = strdup(s);
    if (!c) return swax_error(SWAX_E_NOMEM, "file list");
    l->v[l->n++] = c;
    return 0;
}

typedef struct {
    size_t *v;
    size_t n, cap;
} IdxList;

static int idx_push(IdxList *l, size_t x) {
    SWAX_TRY(grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v, "document list"));
    l->v[l->n++] = x;
    return 0;
}

/* Seeded Fisher-Yates (modulo bias < n / 2^64: irrelevant here). */
static void shuffle(size_t *v, size_t n, SwaxRng *r) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(swax_rng_u64(r) % i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* ---- walking a source ---------------------------------------------------- */

static int ext_accepted(const char *name) {
    static const char *const exts[] = {".txt", ".py", ".go", ".c", ".h", ".md", ".jsonl"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t m = strlen(exts[i]);
        if (n > m && !strcasecmp(name + n - m, exts[i])) return 1;
    }
    return 0;
}

static int is_jsonl(const char *path) {
    size_t n = strlen(path);
    return n >= 6 && !strcasecmp(path + n - 6, ".jsonl");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int walk(const char *path, int top, int depth, StrList *out) {
    struct stat st;
    if ((top ? stat(path, &st) : lstat(path, &st)) != 0)
        return swax_error(SWAX_E_INPUT, "%s: cannot read: %s", path, strerror(errno));
    if (S_ISLNK(st.st_mode)) { /* below the top: follow links to files only */
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    }
    if (S_ISREG(st.st_mode)) return (top || ext_accepted(path)) ? strlist_push(out, path) : 0;
    if (!S_ISDIR(st.st_mode)) {
        if (top) return swax_error(SWAX_E_INPUT, "%s: not a file or a folder", path);
        return 0;
    }
    if (depth > MAX_DEPTH) return swax_error(SWAX_E_INPUT, "%s: folders nested deeper than %d", path, MAX_DEPTH);
    DIR *d = opendir(path);
    if (!d) return swax_error(SWAX_E_INPUT, "%s: cannot open folder: %s", path, strerror(errno));
    StrList names = {0};
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') rc = strlist_push(&names, e->d_name); /* ., .., hidden */
    closedir(d);
    if (!rc && names.n) qsort(names.v, names.n, sizeof *names.v, cmp_str);
    char sub[4096];
    for (size_t i = 0; !rc && i < names.n; i++) {
        size_t pl = strlen(path);
        int slash = pl > 0 && path[pl - 1] == '/';
        if (snprintf(sub, sizeof sub, "%s%s%s", path, slash ? "" : "/", names.v[i]) >= (int)sizeof sub)
            rc = swax_error(SWAX_E_INPUT, "%s/%s: path too long", path, names.v[i]);
        else
            rc = walk(sub, 0, depth + 1, out);
    }
    strlist_free(&names);
    return rc;
}

/* ---- token store --------------------------------------------------------- */

typedef struct {
    uint64_t off, len; /* tokens [off, off + len) of the store; len counts the leading EOT */
} Doc;

typedef struct {
    uint32_t *tok;
    size_t ntok, captok;
    Doc *docs;
    size_t ndocs, capdocs;
} Store;

typedef struct {
    const char *path;
    double weight;
    uint64_t files, skipped_binary, skipped_empty, bytes;
    size_t doc_begin, doc_end;
    uint64_t tokens;
    uint64_t val_docs, val_tokens, train_docs_unique, train_tokens_unique;
    uint64_t train_docs, train_tokens;
    double target_tokens;
} Src;

/* A document waiting to be encoded (owns its text). */
typedef struct {
    char *text;
    size_t len;
} Pend;

typedef struct {
    const SwaxTokenizer *tok;
    int32_t eot;
    Pend *p;
    size_t n, cap, bytes;
    SwaxTokenBuf *bufs;
    size_t capbufs;
} Batch;

static void batch_clear(Batch *b) {
    for (size_t i = 0; i < b->n; i++) free(b->p[i].text);
    b->n = 0;
    b->bytes = 0;
}

static void batch_free(Batch *b) {
    batch_clear(b);
    free(b->p);
    for (size_t i = 0; i < b->capbufs; i++) swax_token_buf_free(&b->bufs[i]);
    free(b->bufs);
}

/* Encodes the batch (in parallel) and appends its documents in order. */
static int batch_flush(Batch *b, Store *st, Src *src) {
    if (!b->n) return 0;
    if (b->capbufs < b->n) {
        SwaxTokenBuf *nb = realloc(b->bufs, b->n * sizeof *nb);
        if (!nb) return swax_error(SWAX_E_NOMEM, "token buffers");
        memset(nb + b->capbufs, 0, (b->n - b->capbufs) * sizeof *nb);
        b->bufs = nb;
        b->capbufs = b->n;
    }
    long first_bad = -1;
    char msg[1024] = {0};
    long n = (long)b->n;
#pragma omp parallel for schedule(dynamic, 1)
    for (long i = 0; i < n; i++) {
        b->bufs[i].n = 0;
        int rc = swax_tokenizer_encode(b->tok, b->p[i].text, b->p[i].len, 0, &b->bufs[i]);
        if (rc) {
#pragma omp critical(swax_data_encode_error)
            {
                if (first_bad < 0 || i < first_bad) {
                    first_bad = i;
                    snprintf(msg, sizeof msg, "%s", swax_last_error());
                }
            }
        }
    }
    if (first_bad >= 0) return swax_error(SWAX_E_INTERNAL, "%s: encoding failed: %s", src->path, msg);
    for (size_t i = 0; i < b->n; i++) {
        size_t m = b->bufs[i].n + 1;
        SWAX_TRY(grow((void **)&st->tok, &st->captok, st->ntok + m, sizeof *st->tok, "token store"));
        SWAX_TRY(grow((void **)&st->docs, &st->capdocs, st->ndocs + 1, sizeof *st->docs, "document table"));
        uint32_t *o = st->tok + st->ntok;
        o[0] = (uint32_t)b->eot;
        for (size_t j = 0; j + 1 < m; j++) o[j + 1] = (uint32_t)b->bufs[i].ids[j];
        st->docs[st->ndocs].off = st->ntok;
        st->docs[st->ndocs].len = m;
        st->ndocs++;
        st->ntok += m;
        src->tokens += m;
        src->bytes += b->p[i].len;
    }
    batch_clear(b);
    return 0;
}

static int batch_add(Batch *b, char *text, size_t len, Store *st, Src *src) {
    if (len == 0) {
        free(text);
        src->skipped_empty++;
        return 0;
    }
    int rc = grow((void **)&b->p, &b->cap, b->n + 1, sizeof *b->p, "batch");
    if (rc) {
        free(text);
        return rc;
    }
    b->p[b->n].text = text;
    b->p[b->n].len = len;
    b->n++;
    b->bytes += len;
    if (b->bytes >= BATCH_BYTES || b->n >= BATCH_DOCS) return batch_flush(b, st, src);
    return 0;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

/* One document per line {"text": "..."}. Takes ownership of data. */
static int read_jsonl(const char *path, char *data, size_t len, Batch *b, Store *st, Src *src) {
    size_t line = 0, start = 0;
    int rc = 0;
    if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3)) start = 3; /* a UTF-8 byte order mark */
    for (size_t a = start; !rc && a < len;) {
        line++;
        const char *nl = memchr(data + a, '\n', len - a);
        size_t e = nl ? (size_t)(nl - data) : len;
        const char *s = data + a;
        size_t n = e - a;
        a = e + 1;
        if (is_blank(s, n)) continue;
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
        if (!j || (end && !is_blank(end, (size_t)(s + n - end)))) {
            cJSON_Delete(j);
            rc = swax_error(SWAX_E_INPUT, "%s:%zu: not a JSON object (a .jsonl line must be {\"text\": ...})", path, line);
            break;
        }
        const cJSON *t = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "text") : NULL;
        if (!cJSON_IsString(t) || !t->valuestring) {
            cJSON_Delete(j);
            rc = swax_error(SWAX_E_INPUT, "%s:%zu: no string \"text\" field (a .jsonl line must be {\"text\": ...})", path,
                            line);
            break;
        }
        char *text = strdup(t->valuestring);
        cJSON_Delete(j);
        if (!text) {
            rc = swax_error(SWAX_E_NOMEM, "%s:%zu: document", path, line);
            break;
        }
        rc = batch_add(b, text, strlen(text), st, src);
    }
    free(data);
    return rc;
}

static void progress(const Src *src, int isrc, int nsrc, const Store *st, double t0, int final) {
    double dt = swax_time_sec() - t0;
    fprintf(stderr, "data: [%d/%d] %s: %" PRIu64 " files, %zu docs, %.1f MB, %.2fM tokens, %.1f MB/s%s\n", isrc + 1, nsrc,
            src->path, src->files, (size_t)(st->ndocs - src->doc_begin), src->bytes / 1e6, src->tokens / 1e6,
            dt > 0 ? src->bytes / 1e6 / dt : 0.0, final ? "" : " ...");
}

static int read_source(const SwaxDataBuildOptions *o, int isrc, Src *src, Store *st, Batch *b) {
    StrList files = {0};
    int rc = walk(src->path, 1, 0, &files);
    double t0 = swax_time_sec(), last = t0;
    src->doc_begin = st->ndocs;
    for (size_t i = 0; !rc && i < files.n; i++) {
        char *data = NULL;
        size_t len = 0;
        rc = swax_read_file(files.v[i], &data, &len);
        if (rc) break;
        if (memchr(data, 0, len < BINARY_PROBE ? len : BINARY_PROBE)) {
            free(data);
            src->skipped_binary++;
            if (o->verbose) fprintf(stderr, "data: %s: looks binary (a NUL byte), skipped\n", files.v[i]);
            continue;
        }
        src->files++;
        if (is_jsonl(files.v[i]))
            rc = read_jsonl(files.v[i], data, len, b, st, src);
        else
            rc = batch_add(b, data, len, st, src);
        if (!rc && o->verbose && swax_time_sec() - last > 2.0) {
            last = swax_time_sec();
            progress(src, isrc, o->n_sources, st, t0, 0);
        }
    }
    if (!rc) rc = batch_flush(b, st, src);
    batch_clear(b);
    strlist_free(&files);
    src->doc_end = st->ndocs;
    if (!rc && src->doc_end == src->doc_begin)
        rc = swax_error(SWAX_E_INPUT,
                        "%s: no documents (a folder contributes non-empty %s files; found %" PRIu64
                        " files, %" PRIu64 " binary, %" PRIu64 " empty documents)",
                        src->path, swax_data_extensions, src->files, src->skipped_binary, src->skipped_empty);
    if (!rc && o->verbose) progress(src, isrc, o->n_sources, st, t0, 1);
    return rc;
}

/* ---- shards -------------------------------------------------------------- */

typedef struct {
    int n;
    uint64_t *tokens; /* per shard */
    uint64_t total, docs;
} SplitOut;

static int write_split(const char *dir, const char *prefix, const Store *st, const IdxList *list, uint64_t shard_tokens,
                       int vocab, SplitOut *out) {
    uint64_t total = 0;
    for (size_t i = 0; i < list->n; i++) total += st->docs[list->v[i]].len;
    out->total = total;
    out->docs = list->n;
    out->n = 0;
    if (!total) return 0;
    uint64_t nshards = (total + shard_tokens - 1) / shard_tokens;
    if (nshards > MAX_SHARDS)
        return swax_error(SWAX_E_USAGE, "%s: %" PRIu64 " %s shards of %" PRIu64 " tokens is more than %d: raise --shard-tokens",
                          dir, nshards, prefix, shard_tokens, MAX_SHARDS);
    out->tokens = calloc((size_t)nshards, sizeof *out->tokens);
    size_t cap = (size_t)(shard_tokens < total ? shard_tokens : total);
    uint32_t *buf = swax_calloc(cap, sizeof *buf, "shard buffer");
    if (!buf || !out->tokens) {
        free(buf);
        return swax_error(SWAX_E_NOMEM, "shard buffer");
    }
    size_t fill = 0;
    int rc = 0;
    char path[4200], name[64];
    for (size_t i = 0; !rc && i <= list->n; i++) {
        const uint32_t *src = NULL;
        uint64_t left = 0;
        if (i < list->n) {
            const Doc *d = &st->docs[list->v[i]];
            src = st->tok + d->off;
            left = d->len;
        }
        while (!rc && (left > 0 || (i == list->n && fill > 0))) {
            size_t m = (size_t)(left < cap - fill ? left : cap - fill);
            if (m) memcpy(buf + fill, src, m * sizeof *buf);
            fill += m;
            src += m;
            left -= m;
            if (fill == cap || (i == list->n && fill > 0)) {
                snprintf(name, sizeof name, "%s_%06d.bin", prefix, out->n);
                rc = swax_path_join(path, sizeof path, dir, name);
                if (!rc) rc = swax_shard_write(path, buf, fill, vocab);
                if (!rc) out->tokens[out->n++] = fill;
                fill = 0;
            }
        }
    }
    free(buf);
    return rc;
}

/* --align T (build.h): the training list reordered so that mix documents of at
 * most T + 1 tokens lie in one row. The input and the mix documents keep
 * their shuffled order within each kind; the two are merged in proportion
 * (the next document is a mix one while mix tokens are behind their share),
 * so both run out together. A mix document that would cross a row boundary
 * waits for the next row start: the gap is filled with the start of the next
 * input document (a new store document; its rest another, behind an added
 * end-of-text id, placed next), or, once no input document is left, with
 * end-of-text ids. is_mix[d] for the store's documents at entry. */
static int align_rows(Store *st, IdxList *train, const uint8_t *is_mix, uint64_t T, uint32_t eot, uint64_t *splits,
                      uint64_t *pad) {
    IdxList out = {0}, ord = {0}, mix = {0};
    int rc = 0;
    uint64_t ord_tok = 0, mix_tok = 0;
    for (size_t k = 0; !rc && k < train->n; k++) {
        const size_t d = train->v[k];
        rc = idx_push(is_mix[d] ? &mix : &ord, d);
        *(is_mix[d] ? &mix_tok : &ord_tok) += st->docs[d].len;
    }
    const double share = mix_tok + ord_tok ? (double)mix_tok / (double)(mix_tok + ord_tok) : 0;
    size_t oi = 0, mi = 0;
    uint64_t pos = 0, mix_done = 0;
    size_t eot_doc = (size_t)-1; /* a store document of one end-of-text id (padding) */
    *splits = *pad = 0;
    while (!rc && (oi < ord.n || mi < mix.n)) {
        const int take_mix = mi < mix.n && (oi >= ord.n || (double)mix_done < share * (double)(pos + 1));
        if (!take_mix) {
            rc = idx_push(&out, ord.v[oi]);
            pos += st->docs[ord.v[oi++]].len;
            continue;
        }
        const size_t d = mix.v[mi++];
        const uint64_t len = st->docs[d].len;
        while (!rc && len <= T + 1 && pos % T + len > T + 1) {
            const uint64_t gap = T - pos % T; /* tokens to the next row start */
            if (oi >= ord.n) { /* no input document left: pad with end-of-text ids */
                if (eot_doc == (size_t)-1) {
                    rc = grow((void **)&st->tok, &st->captok, st->ntok + 1, sizeof *st->tok, "token store");
                    if (!rc) rc = grow((void **)&st->docs, &st->capdocs, st->ndocs + 1, sizeof *st->docs, "document table");
                    if (rc) break;
                    st->tok[st->ntok] = eot;
                    st->docs[st->ndocs] = (Doc){st->ntok, 1};
                    eot_doc = st->ndocs++;
                    st->ntok++;
                }
                for (uint64_t g = 0; !rc && g < gap; g++) rc = idx_push(&out, eot_doc);
                pos += gap, *pad += gap;
                continue;
            }
            const size_t o = ord.v[oi];
            const Doc od = st->docs[o];
            if (od.len <= gap) { /* the whole input document fits in the gap */
                rc = idx_push(&out, o);
                pos += od.len, oi++;
                continue;
            }
            /* split: od[0, gap) here, then EOT + od[gap, len) as the next input document */
            const uint64_t rest = od.len - gap;
            rc = grow((void **)&st->tok, &st->captok, st->ntok + rest + 1, sizeof *st->tok, "token store");
            if (!rc) rc = grow((void **)&st->docs, &st->capdocs, st->ndocs + 2, sizeof *st->docs, "document table");
            if (rc) break;
            st->tok[st->ntok] = eot;
            memcpy(st->tok + st->ntok + 1, st->tok + od.off + gap, rest * sizeof *st->tok);
            st->docs[st->ndocs] = (Doc){od.off, gap};
            st->docs[st->ndocs + 1] = (Doc){st->ntok, rest + 1};
            st->ntok += rest + 1;
            rc = idx_push(&out, st->ndocs);
            pos += gap;
            ord.v[oi] = st->ndocs + 1;
            st->ndocs += 2;
            (*splits)++;
        }
        if (rc) break;
        rc = idx_push(&out, d);
        pos += len, mix_done += len;
    }
    if (!rc) {
        free(train->v);
        *train = out;
    } else {
        free(out.v);
    }
    free(ord.v);
    free(mix.v);
    return rc;
}

/* Removes PREFIX_NNNNNN.bin with NNNNNN >= keep (left by an older, bigger build). */
static int remove_stale(const char *dir, const char *prefix, int keep) {
    DIR *d = opendir(dir);
    if (!d) return swax_error(SWAX_E_IO, "%s: cannot list: %s", dir, strerror(errno));
    size_t pl = strlen(prefix);
    int rc = 0;
    char path[4200];
    for (struct dirent *e; !rc && (e = readdir(d)) != NULL;) {
        const char *s = e->d_name;
        if (strncmp(s, prefix, pl) || s[pl] != '_' || strlen(s) != pl + 1 + 6 + 4 || strcmp(s + pl + 7, ".bin")) continue;
        int idx = 0, ok = 1;
        for (int k = 0; k < 6; k++) {
            char c = s[pl + 1 + k];
            if (c < '0' || c > '9') ok = 0;
            idx = idx * 10 + (c - '0');
        }
        if (!ok || idx < keep) continue;
        rc = swax_path_join(path, sizeof path, dir, s);
        if (!rc && unlink(path) != 0) rc = swax_error(SWAX_E_IO, "%s: cannot remove a stale shard: %s", path, strerror(errno));
    }
    closedir(d);
    return rc;
}

/* ---- data.json ----------------------------------------------------------- */

static void add_u64(cJSON *o, const char *k, uint64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%" PRIu64, v);
    cJSON_AddRawToObject(o, k, b);
}

static void add_dbl(cJSON *o, const char *k, double v) {
    char b[40];
    snprintf(b, sizeof b, "%.6g", v);
    cJSON_AddRawToObject(o, k, b);
}

static cJSON *split_json(const char *prefix, const SplitOut *s) {
    cJSON *o = cJSON_CreateObject();
    add_u64(o, "tokens", s->total);
    add_u64(o, "documents", s->docs);
    cJSON *a = cJSON_AddArrayToObject(o, "shards");
    char name[64];
    for (int i = 0; i < s->n; i++) {
        cJSON *e = cJSON_CreateObject();
        snprintf(name, sizeof name, "%s_%06d.bin", prefix, i);
        cJSON_AddStringToObject(e, "file", name);
        add_u64(e, "tokens", s->tokens[i]);
        cJSON_AddItemToArray(a, e);
    }
    return o;
}

static int write_data_json(const SwaxDataBuildOptions *o, const Src *src, const SplitOut *tr, const SplitOut *va,
                           const char *path) {
    const SwaxTokenizer *t = o->tokenizer;
    cJSON *root = cJSON_CreateObject();
    if (!root) return swax_error(SWAX_E_NOMEM, "data.json");
    cJSON_AddStringToObject(root, "format", "llm.c token shards: 256 x int32 header (magic 20240520 uint16 / 20240801 uint32)");
    add_u64(root, "vocab_size", (uint64_t)swax_tokenizer_vocab_size(t));
    add_u64(root, "eot", (uint64_t)swax_tokenizer_eot(t));
    cJSON_AddStringToObject(root, "eot_placement", "before every document");
    cJSON *tk = cJSON_AddObjectToObject(root, "tokenizer");
    cJSON_AddStringToObject(tk, "name", o->tokenizer_name ? o->tokenizer_name : "");
    cJSON_AddStringToObject(tk, "pattern", swax_tokenizer_pattern(t));
    add_u64(tk, "vocab_size", (uint64_t)swax_tokenizer_vocab_size(t));
    add_u64(tk, "eot", (uint64_t)swax_tokenizer_eot(t));
    cJSON_AddStringToObject(tk, "copy", "tokenizer.json");
    add_u64(root, "seed", o->seed);
    add_dbl(root, "val_fraction", o->val_fraction);
    add_u64(root, "shard_tokens", o->shard_tokens);
    add_u64(root, "align", o->align);
    cJSON_AddItemToObject(root, "train", split_json("train", tr));
    cJSON_AddItemToObject(root, "val", split_json("val", va));
    cJSON *sa = cJSON_AddArrayToObject(root, "sources");
    for (int i = 0; i < o->n_sources; i++) {
        const Src *s = &src[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "path", s->path);
        cJSON_AddStringToObject(e, "kind", s->weight > 0 ? "mix" : "input");
        if (s->weight > 0)
            add_dbl(e, "weight", s->weight);
        else
            cJSON_AddNullToObject(e, "weight");
        add_u64(e, "files", s->files);
        add_u64(e, "skipped_binary_files", s->skipped_binary);
        add_u64(e, "skipped_empty_documents", s->skipped_empty);
        add_u64(e, "bytes", s->bytes);
        add_u64(e, "documents", (uint64_t)(s->doc_end - s->doc_begin));
        add_u64(e, "tokens", s->tokens);
        add_u64(e, "val_documents", s->val_docs);
        add_u64(e, "val_tokens", s->val_tokens);
        add_u64(e, "train_documents_unique", s->train_docs_unique);
        add_u64(e, "train_tokens_unique", s->train_tokens_unique);
        add_u64(e, "train_documents", s->train_docs);
        add_u64(e, "train_tokens", s->train_tokens);
        add_dbl(e, "train_fraction", tr->total ? (double)s->train_tokens / (double)tr->total : 0.0);
        add_dbl(e, "epochs", s->train_tokens_unique ? (double)s->train_tokens / (double)s->train_tokens_unique : 0.0);
        cJSON_AddItemToArray(sa, e);
    }
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) return swax_error(SWAX_E_NOMEM, "data.json");
    size_t n = strlen(txt);
    char *full = malloc(n + 2);
    int rc;
    if (!full) {
        rc = swax_error(SWAX_E_NOMEM, "data.json");
    } else {
        memcpy(full, txt, n);
        full[n] = '\n';
        rc = swax_write_file_atomic(path, full, n + 1);
    }
    free(full);
    cJSON_free(txt);
    return rc;
}

/* ---- the build ----------------------------------------------------------- */

int swax_data_parse_mix(const char *arg, char **path, double *weight) {
    *path = NULL;
    const char *c = strrchr(arg, ':');
    if (!c || c == arg || !c[1])
        return swax_error(SWAX_E_USAGE, "--mix expects PATH:WEIGHT (a fraction of training tokens in (0, 1)), got '%s'", arg);
    char *end;
    errno = 0;
    double w = strtod(c + 1, &end);
    if (errno || *end || !(w > 0 && w < 1))
        return swax_error(SWAX_E_USAGE, "--mix %s: WEIGHT must be a fraction of training tokens in (0, 1), got '%s'", arg, c + 1);
    *path = strndup(arg, (size_t)(c - arg));
    if (!*path) return swax_error(SWAX_E_NOMEM, "--mix");
    *weight = w;
    return 0;
}

static int check_options(const SwaxDataBuildOptions *o) {
    if (!o->tokenizer) return swax_error(SWAX_E_USAGE, "no tokenizer");
    if (swax_tokenizer_eot(o->tokenizer) < 0)
        return swax_error(SWAX_E_USAGE, "%s: the tokenizer has no <|endoftext|> token (documents are separated by it)",
                          o->tokenizer_name ? o->tokenizer_name : "tokenizer");
    if (!o->out_dir || !*o->out_dir) return swax_error(SWAX_E_USAGE, "no output folder");
    if (!(o->val_fraction >= 0 && o->val_fraction < 1))
        return swax_error(SWAX_E_USAGE, "val fraction %g is outside [0, 1)", o->val_fraction);
    if (o->shard_tokens < 1 || o->shard_tokens > (uint64_t)INT32_MAX)
        return swax_error(SWAX_E_USAGE, "shard tokens %" PRIu64 " is outside [1, %d]", o->shard_tokens, INT32_MAX);
    if (o->n_sources < 1 || !o->sources) return swax_error(SWAX_E_USAGE, "no input (give at least one input file or folder)");
    double sw = 0;
    int ninput = 0;
    for (int i = 0; i < o->n_sources; i++) {
        double w = o->sources[i].weight;
        if (!o->sources[i].path || !*o->sources[i].path) return swax_error(SWAX_E_USAGE, "source %d has no path", i + 1);
        if (w == 0)
            ninput++;
        else if (!(w > 0 && w < 1))
            return swax_error(SWAX_E_USAGE, "%s: mix weight %g is outside (0, 1)", o->sources[i].path, w);
        sw += w;
    }
    if (!ninput)
        return swax_error(SWAX_E_USAGE, "only mix sources: give at least one --input (mix weights are fractions of the total)");
    if (!(sw < 1)) return swax_error(SWAX_E_USAGE, "mix weights sum to %g: they must sum to less than 1", sw);
    return 0;
}

int swax_data_build(const SwaxDataBuildOptions *o, SwaxDataBuildResult *res) {
    double t0 = swax_time_sec();
    if (res) memset(res, 0, sizeof *res);
    SWAX_TRY(check_options(o));
    /* Fail early on an output folder we cannot use, and drop data.json so
     * that a build that fails half-way never looks complete. */
    SWAX_TRY(swax_mkdir_p(o->out_dir));
    char json_path[4200];
    SWAX_TRY(swax_path_join(json_path, sizeof json_path, o->out_dir, "data.json"));
    if (unlink(json_path) != 0 && errno != ENOENT)
        return swax_error(SWAX_E_IO, "%s: cannot remove the old data.json: %s", json_path, strerror(errno));

    int ns = o->n_sources, vocab = swax_tokenizer_vocab_size(o->tokenizer);
    Src *src = calloc((size_t)ns, sizeof *src);
    Store st = {0};
    Batch b = {0};
    IdxList train = {0}, val = {0}, perm = {0};
    SplitOut tr = {0}, va = {0};
    b.tok = o->tokenizer;
    b.eot = swax_tokenizer_eot(o->tokenizer);
    int rc = src ? 0 : swax_error(SWAX_E_NOMEM, "sources");

    /* 1. read and tokenise */
    for (int i = 0; !rc && i < ns; i++) {
        src[i].path = o->sources[i].path;
        src[i].weight = o->sources[i].weight;
        rc = read_source(o, i, &src[i], &st, &b);
    }
    double t_read = swax_time_sec() - t0;

    /* 2. split every source; input sources' training documents go in once */
    uint64_t base = 0;
    double wsum = 0;
    for (int i = 0; !rc && i < ns; i++) {
        Src *s = &src[i];
        perm.n = 0;
        for (size_t d = s->doc_begin; !rc && d < s->doc_end; d++) rc = idx_push(&perm, d);
        if (rc) break;
        SwaxRng r;
        swax_rng_seed(&r, o->seed, STREAM_SPLIT + (uint64_t)i);
        shuffle(perm.v, perm.n, &r);
        double target = o->val_fraction * (double)s->tokens;
        size_t nval = 0;
        if (o->val_fraction > 0)
            while (nval + 1 < perm.n && (double)s->val_tokens < target) s->val_tokens += st.docs[perm.v[nval++]].len;
        s->val_docs = nval;
        for (size_t k = 0; !rc && k < nval; k++) rc = idx_push(&val, perm.v[k]);
        for (size_t k = nval; k < perm.n; k++) s->train_tokens_unique += st.docs[perm.v[k]].len;
        s->train_docs_unique = perm.n - nval;
        if (s->weight == 0) {
            for (size_t k = nval; !rc && k < perm.n; k++) rc = idx_push(&train, perm.v[k]);
            s->train_docs = s->train_docs_unique;
            s->train_tokens = s->train_tokens_unique;
            base += s->train_tokens_unique;
        } else {
            wsum += s->weight; /* step 3 takes its training documents */
        }
    }
    /* 3. mix sources: their share of the training tokens */
    for (int i = 0; !rc && i < ns; i++) {
        Src *s = &src[i];
        if (s->weight == 0) continue;
        s->target_tokens = s->weight / (1.0 - wsum) * (double)base;
        /* this source's training documents: redo its split permutation */
        perm.n = 0;
        for (size_t d = s->doc_begin; !rc && d < s->doc_end; d++) rc = idx_push(&perm, d);
        if (rc) break;
        SwaxRng r;
        swax_rng_seed(&r, o->seed, STREAM_SPLIT + (uint64_t)i);
        shuffle(perm.v, perm.n, &r);
        size_t *docs = perm.v + s->val_docs, nd = (size_t)s->train_docs_unique;
        if (nd == 0) {
            rc = swax_error(SWAX_E_INPUT, "%s: no training documents left for --mix (all went to validation)", s->path);
            break;
        }
        swax_rng_seed(&r, o->seed, STREAM_MIX + (uint64_t)i);
        double cum = 0;
        for (int done = 0; !rc && !done;) {
            shuffle(docs, nd, &r);
            for (size_t k = 0; k < nd; k++) {
                double len = (double)st.docs[docs[k]].len;
                if (cum + len / 2 >= s->target_tokens) {
                    done = 1;
                    break;
                }
                rc = idx_push(&train, docs[k]);
                if (rc) break;
                cum += len;
                s->train_docs++;
                s->train_tokens += (uint64_t)len;
            }
        }
    }
    if (!rc && o->verbose) {
        for (int i = 0; i < ns; i++)
            if (src[i].weight > 0)
                fprintf(stderr, "data: mix %s: weight %g -> %.3gM training tokens (%.2f epochs of its %.3gM)\n", src[i].path,
                        src[i].weight, src[i].train_tokens / 1e6,
                        src[i].train_tokens_unique ? (double)src[i].train_tokens / (double)src[i].train_tokens_unique : 0.0,
                        src[i].train_tokens_unique / 1e6);
    }

    /* 4. order, write, clean up, describe */
    if (!rc) {
        SwaxRng r;
        swax_rng_seed(&r, o->seed, STREAM_TRAIN);
        shuffle(train.v, train.n, &r);
        if (o->align) {
            uint8_t *is_mix = calloc(st.ndocs ? st.ndocs : 1, 1);
            rc = is_mix ? 0 : swax_error(SWAX_E_NOMEM, "document kinds");
            for (int i = 0; !rc && i < ns; i++)
                if (src[i].weight > 0)
                    for (size_t d = src[i].doc_begin; d < src[i].doc_end; d++) is_mix[d] = 1;
            uint64_t splits = 0, pad = 0;
            if (!rc) rc = align_rows(&st, &train, is_mix, o->align, (uint32_t)b.eot, &splits, &pad);
            free(is_mix);
            if (!rc && o->verbose)
                fprintf(stderr, "data: --align %" PRIu64 ": mix documents kept inside training rows (%" PRIu64
                                " input documents split to fill gaps, %" PRIu64 " end-of-text ids of padding)\n",
                        o->align, splits, pad);
        }
        swax_rng_seed(&r, o->seed, STREAM_VAL);
        shuffle(val.v, val.n, &r);
        rc = write_split(o->out_dir, "train", &st, &train, o->shard_tokens, vocab, &tr);
    }
    if (!rc) rc = write_split(o->out_dir, "val", &st, &val, o->shard_tokens, vocab, &va);
    if (!rc) rc = remove_stale(o->out_dir, "train", tr.n);
    if (!rc) rc = remove_stale(o->out_dir, "val", va.n);
    if (!rc) rc = swax_tokenizer_save(o->tokenizer, o->out_dir);
    if (!rc) rc = write_data_json(o, src, &tr, &va, json_path);
    if (!rc && res) {
        for (int i = 0; i < ns; i++) res->bytes += src[i].bytes;
        res->documents = st.ndocs;
        res->train_tokens = tr.total;
        res->val_tokens = va.total;
        res->train_docs = tr.docs;
        res->val_docs = va.docs;
        res->train_shards = tr.n;
        res->val_shards = va.n;
        res->read_seconds = t_read;
        res->seconds = swax_time_sec() - t0;
    }
    if (!rc && o->verbose) {
        uint64_t bytes = 0;
        for (int i = 0; i < ns; i++) bytes += src[i].bytes;
        double dt = swax_time_sec() - t0;
        fprintf(stderr,
                "data: %s: train %" PRIu64 " tokens in %d shards (%" PRIu64 " docs), val %" PRIu64 " tokens in %d shards (%" PRIu64
                " docs); %.1f MB read at %.1f MB/s, %.2f s in all\n",
                o->out_dir, tr.total, tr.n, tr.docs, va.total, va.n, va.docs, bytes / 1e6, t_read > 0 ? bytes / 1e6 / t_read : 0.0,
                dt);
    }
    free(tr.tokens);
    free(va.tokens);
    free(train.v);
    free(val.v);
    free(perm.v);
    batch_free(&b);
    free(st.tok);
    free(st.docs);
    free(src);
    return rc;
}
