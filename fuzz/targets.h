/* targets.h — the fuzz targets: one function per reader of untrusted input,
 * shared by the libFuzzer harnesses (fuzz/harness.c), the seed writer
 * (fuzz/gen_corpus.c) and the replay test (tests/test_fuzz_regress.c).
 *
 * A target takes raw bytes, hands them to a reader through its public entry
 * point (a temporary file where the reader takes a path), and returns the
 * reader's status. On success it checks what the reader promises (offsets in
 * range, round trips, decode(encode(x)) == x, ...) and releases everything,
 * so that LeakSanitizer sees every leak. A broken promise calls fuzz_violation()
 * (abort() under libFuzzer; a failed check in the replay test).
 *
 * The contract every target is checked against: no crash, no leak, no
 * sanitizer report, and a clean status — 0, or a SwaxStatus with a message in
 * swax_last_error().
 *
 * Temporary files live in one folder per process (under /dev/shm when it is
 * writable), removed at exit. Header-only on purpose: every user includes it
 * once. */
#ifndef SWAX_FUZZ_TARGETS_H
#define SWAX_FUZZ_TARGETS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "data/build.h"
#include "eval/bench.h"
#include "eval/eval.h"
#include "infer/infer.h"
#include "io/config_json.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/shard.h"
#include "io/tokenizer.h"
#include "ops/ops.h"
#include "swax.h"
#include "train/optim.h"
#include "train/train.h"
#include "train/train_state.h"

/* ---- violations -------------------------------------------------------------- */

static int fuzz_abort_on_violation = 1; /* the replay test sets 0 and reads fuzz_violations */
static int fuzz_violations;
static char fuzz_violation_msg[512];

static void fuzz_violation(const char *file, int line, const char *what) {
    fuzz_violations++;
    snprintf(fuzz_violation_msg, sizeof fuzz_violation_msg, "%s:%d: %s", file, line, what);
    fprintf(stderr, "fuzz: broken promise at %s (last error: %s)\n", fuzz_violation_msg, swax_last_error());
    if (fuzz_abort_on_violation) abort();
}
#define FUZZ_CHECK(cond)                                                      \
    do {                                                                      \
        if (!(cond)) fuzz_violation(__FILE__, __LINE__, #cond);               \
    } while (0)

/* A status is clean when it is a SwaxStatus and, unless 0, comes with a message. */
static int fuzz_status_ok(int rc) {
    switch (rc) {
    case SWAX_OK: return 1;
    case SWAX_E_INTERNAL: case SWAX_E_USAGE: case SWAX_E_INPUT: case SWAX_E_NUMERIC:
    case SWAX_E_NOMEM: case SWAX_E_IO: case SWAX_E_INTERRUPTED: {
        const char *m = swax_last_error();
        return m && m[0] && strcmp(m, "no error") != 0;
    }
    default: return 0;
    }
}

static volatile unsigned fuzz_sink; /* keeps reads of returned data from being optimised away */

/* ---- temporary files ---------------------------------------------------------- */

static char fuzz_dir[512];

static void fuzz_rm_rf(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    char sub[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        fuzz_rm_rf(sub);
    }
    closedir(d);
    rmdir(path);
}

static void fuzz_cleanup(void) {
    if (fuzz_dir[0]) fuzz_rm_rf(fuzz_dir);
    fuzz_dir[0] = 0;
}

static const char *fuzz_tmpdir(void) {
    if (fuzz_dir[0]) return fuzz_dir;
    const char *base = getenv("SWAX_FUZZ_TMP");
    if (!base || !base[0]) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/swax_fuzz_XXXXXX", base);
    if (!mkdtemp(fuzz_dir)) {
        snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/swax_fuzz_XXXXXX");
        SWAX_ASSERT(mkdtemp(fuzz_dir));
    }
    atexit(fuzz_cleanup);
    return fuzz_dir;
}

/* PATH = tmpdir/name (name may hold one folder level, created). */
static void fuzz_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", fuzz_tmpdir(), name);
    const char *slash = strchr(name, '/');
    if (slash) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%.*s", fuzz_tmpdir(), (int)(slash - name), name);
        mkdir(dir, 0700);
    }
}

static void fuzz_write(const char *path, const void *data, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    SWAX_ASSERT(fd >= 0);
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        SWAX_ASSERT(w > 0);
        p += w, n -= (size_t)w;
    }
    close(fd);
}

/* ---- shared fixtures ------------------------------------------------------------ */

/* The small model the state and checkpoint targets read against (and the seed
 * writer writes with): 2 blocks "AM", window 4. */
static void fuzz_model_config(SwaxConfig *c) {
    swax_config_default(c, 32, 8, 2);
    snprintf(c->pattern, sizeof c->pattern, "AM");
    c->vocab_used = 30;
    c->attn_heads = 2;
    c->head_dim = 4;
    c->mlstm_heads = 2;
    c->ffn_dim = 16;
    c->window = 4;
    c->eot_token = 0;
}

static SwaxModel *fuzz_model(void) {
    static SwaxModel *m;
    if (!m) {
        SwaxConfig c;
        fuzz_model_config(&c);
        SWAX_ASSERT(swax_config_validate(&c) == 0);
        SWAX_ASSERT(swax_model_create(&c, &m) == 0);
        swax_model_init(m, 1234);
    }
    return m;
}

/* The rank file beside the fuzzed tokenizer.json: the 256 bytes, then a few
 * merges. Malloc'd text. */
static char *fuzz_rank_text(size_t *len) {
    static const char *merges[] = {"th", "he", "the", " t", " the", "in", "an", "er", "on", " a", "re", "at",
                                   "ing", "ed", "nd", " and", "ou", "es", "is", "it"};
    const int nm = (int)(sizeof merges / sizeof merges[0]);
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t cap = 256 * 16 + (size_t)nm * 32, o = 0;
    char *t = malloc(cap);
    SWAX_ASSERT(t);
    for (int id = 0; id < 256 + nm; id++) {
        const unsigned char *p;
        unsigned char one;
        size_t n;
        if (id < 256) {
            one = (unsigned char)id;
            p = &one, n = 1;
        } else {
            p = (const unsigned char *)merges[id - 256], n = strlen(merges[id - 256]);
        }
        for (size_t i = 0; i < n; i += 3) {
            uint32_t w = (uint32_t)p[i] << 16;
            if (i + 1 < n) w |= (uint32_t)p[i + 1] << 8;
            if (i + 2 < n) w |= p[i + 2];
            t[o++] = B64[w >> 18 & 63];
            t[o++] = B64[w >> 12 & 63];
            t[o++] = i + 1 < n ? B64[w >> 6 & 63] : '=';
            t[o++] = i + 2 < n ? B64[w & 63] : '=';
        }
        o += (size_t)snprintf(t + o, cap - o, " %d\n", id);
    }
    *len = o;
    return t;
}
#define FUZZ_RANK_VOCAB (256 + 20)

static const SwaxTokenizer *fuzz_byte_tokenizer(void) {
    static SwaxTokenizer *t;
    if (!t) SWAX_ASSERT(swax_byte_tokenizer(&t) == 0);
    return t;
}

/* decode(encode(text)) == text (any bytes); ids inside the vocabulary. */
static void fuzz_check_roundtrip(const SwaxTokenizer *t, const char *text, size_t n, int allow_special) {
    SwaxTokenBuf ids = {0};
    int rc = swax_tokenizer_encode(t, text, n, allow_special, &ids);
    FUZZ_CHECK(rc == 0);
    if (!rc) {
        for (size_t i = 0; i < ids.n; i++) FUZZ_CHECK(ids.ids[i] >= 0 && ids.ids[i] < swax_tokenizer_vocab_size(t));
        char *back = NULL;
        size_t bl = 0;
        rc = swax_tokenizer_decode(t, ids.ids, ids.n, &back, &bl);
        FUZZ_CHECK(rc == 0);
        if (!rc) FUZZ_CHECK(bl == n && (n == 0 || memcmp(back, text, n) == 0));
        free(back);
    }
    swax_token_buf_free(&ids);
}

/* ---- the targets ----------------------------------------------------------------- */

/* safetensors: open, touch every tensor's first and last byte, check alignment,
 * then write the tensors back and read them again (same names, shapes, bytes). */
static int fuzz_safetensors(const uint8_t *d, size_t n) {
    char path[1024], path2[1024];
    fuzz_path(path, sizeof path, "in.safetensors");
    fuzz_write(path, d, n);
    SwaxSTFile f;
    int rc = swax_st_open(path, &f);
    if (rc) {
        FUZZ_CHECK(f.map == NULL && f.entries == NULL && f.n == 0 && f.metadata_json == NULL);
        return rc;
    }
    unsigned acc = 0;
    SwaxSTTensor *ts = calloc((size_t)f.n + 1, sizeof *ts);
    SWAX_ASSERT(ts);
    for (int i = 0; i < f.n; i++) {
        const SwaxSTEntry *e = &f.entries[i];
        FUZZ_CHECK(swax_st_find(&f, e->name) == e);
        FUZZ_CHECK(e->offset <= f.data_len && e->nbytes <= f.data_len - e->offset);
        FUZZ_CHECK(e->ndim >= 0 && e->ndim <= SWAX_ST_MAX_DIMS);
        const uint8_t *p = swax_st_data(&f, e);
        if (e->nbytes) {
            acc += p[0] + p[e->nbytes - 1];
            FUZZ_CHECK((uintptr_t)p % swax_dtype_size(e->dtype) == 0);
        }
        ts[i].name = e->name;
        ts[i].dtype = e->dtype;
        ts[i].ndim = e->ndim;
        memcpy(ts[i].shape, e->shape, sizeof ts[i].shape);
        ts[i].data = p;
    }
    const char *fmt = swax_st_meta(&f, "format");
    if (fmt) acc += (unsigned)strlen(fmt);
    fuzz_sink = acc;
    /* round trip */
    fuzz_path(path2, sizeof path2, "rt.safetensors");
    int wrc = swax_st_write(path2, ts, f.n, NULL);
    FUZZ_CHECK(wrc == 0 || wrc == SWAX_E_USAGE);
    if (!wrc) {
        SwaxSTFile g;
        int rrc = swax_st_open(path2, &g);
        FUZZ_CHECK(rrc == 0);
        if (!rrc) {
            FUZZ_CHECK(g.n == f.n);
            for (int i = 0; i < f.n && g.n == f.n; i++) {
                const SwaxSTEntry *a = &f.entries[i], *b = swax_st_find(&g, a->name);
                FUZZ_CHECK(b != NULL);
                if (!b) break;
                FUZZ_CHECK(a->dtype == b->dtype && a->ndim == b->ndim && a->nbytes == b->nbytes &&
                           !memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->ndim));
                FUZZ_CHECK(a->nbytes == 0 || !memcmp(swax_st_data(&f, a), swax_st_data(&g, b), a->nbytes));
            }
            swax_st_close(&g);
        }
    }
    unlink(path2);
    free(ts);
    swax_st_close(&f);
    return 0;
}

/* config.json: parse, validate; to_json -> from_json -> to_json is a fixed point. */
static int fuzz_config(const uint8_t *d, size_t n) {
    SwaxConfig c;
    int rc = swax_config_from_json((const char *)d, n, "fuzz config", &c);
    if (rc) return rc;
    int v = swax_config_validate(&c);
    FUZZ_CHECK(v == 0 || v == SWAX_E_USAGE);
    char *t1 = NULL, *t2 = NULL;
    int r1 = swax_config_to_json(&c, &t1);
    FUZZ_CHECK(r1 == 0); /* from_json only accepts finite values */
    if (!r1) {
        SwaxConfig c2;
        int r2 = swax_config_from_json(t1, strlen(t1), "round trip", &c2);
        FUZZ_CHECK(r2 == 0);
        if (!r2) {
            FUZZ_CHECK(swax_config_to_json(&c2, &t2) == 0);
            FUZZ_CHECK(t2 && strcmp(t1, t2) == 0);
            FUZZ_CHECK(swax_config_validate(&c2) == v);
        }
    }
    free(t1);
    free(t2);
    return v;
}

/* llm.c token shards: open, read every token two ways, check against a vocabulary. */
static int fuzz_shard(const uint8_t *d, size_t n) {
    char path[1024];
    fuzz_path(path, sizeof path, "in.bin");
    fuzz_write(path, d, n);
    SwaxShard s;
    int rc = swax_shard_open(path, &s);
    if (rc) {
        FUZZ_CHECK(s.map == NULL);
        return rc;
    }
    FUZZ_CHECK(s.width == 2 || s.width == 4);
    FUZZ_CHECK(SWAX_SHARD_HEADER_BYTES + s.n_tokens * (size_t)s.width == n);
    int32_t buf[256];
    for (size_t i = 0; i < s.n_tokens; i += 256) {
        size_t k = s.n_tokens - i < 256 ? s.n_tokens - i : 256;
        swax_shard_read(&s, i, k, buf);
        for (size_t j = 0; j < k; j++) FUZZ_CHECK((uint32_t)buf[j] == swax_shard_token(&s, i + j));
    }
    int v = swax_shard_check_vocab(&s, 1000);
    FUZZ_CHECK(v == 0 || v == SWAX_E_INPUT);
    swax_shard_close(&s);
    return v;
}

/* .npy: read as float32. */
static int fuzz_npy(const uint8_t *d, size_t n) {
    char path[1024];
    fuzz_path(path, sizeof path, "in.npy");
    fuzz_write(path, d, n);
    float *data = NULL;
    int nd = -1;
    int64_t shape[8];
    int rc = swax_npy_read_f32(path, &data, &nd, shape);
    if (rc) {
        FUZZ_CHECK(data == NULL);
        return rc;
    }
    FUZZ_CHECK(data != NULL && nd >= 0 && nd <= 8);
    size_t count = 1;
    for (int i = 0; i < nd; i++) count *= (size_t)shape[i];
    unsigned acc = 0;
    if (count) {
        unsigned char first, last;
        memcpy(&first, data, 1);
        memcpy(&last, (const char *)(data + count) - 1, 1);
        acc = first + last;
    }
    fuzz_sink = acc;
    free(data);
    return 0;
}

/* tokenizer rank file (tiktoken format) from memory, with <|endoftext|> = 1000;
 * when it loads, the input itself and a fixed text round-trip. */
static int fuzz_tokenizer_ranks(const uint8_t *d, size_t n) {
    const SwaxSpecialToken sp[] = {{"<|endoftext|>", 1000}};
    SwaxTokenizer *t = NULL;
    int rc = swax_tokenizer_load_mem((const char *)d, n, "fuzz ranks", "r50k", sp, 1, &t);
    if (rc) {
        FUZZ_CHECK(t == NULL);
        return rc;
    }
    FUZZ_CHECK(swax_tokenizer_eot(t) == 1000);
    static const char text[] = "Hello world, the end.<|endoftext|> 123 \xff\xfe caf\xc3\xa9\n\n";
    fuzz_check_roundtrip(t, text, sizeof text - 1, 1);
    fuzz_check_roundtrip(t, (const char *)d, n < 512 ? n : 512, 0);
    swax_tokenizer_free(t);
    return 0;
}

/* tokenizer.json, with a fixed valid rank file "tokenizer.tiktoken" beside it. */
static int fuzz_tokenizer_json(const uint8_t *d, size_t n) {
    char path[1024], ranks[1024];
    fuzz_path(path, sizeof path, "tok/tokenizer.json");
    fuzz_path(ranks, sizeof ranks, "tok/tokenizer.tiktoken");
    if (access(ranks, F_OK) != 0) {
        size_t rl;
        char *rt = fuzz_rank_text(&rl);
        fuzz_write(ranks, rt, rl);
        free(rt);
    }
    fuzz_write(path, d, n);
    SwaxTokenizer *t = NULL;
    int rc = swax_tokenizer_load_json(path, &t);
    if (rc) {
        FUZZ_CHECK(t == NULL);
        return rc;
    }
    static const char text[] = "the thing and the other<|endoftext|>, it is \xc3\xa9t\xc3\xa9\r\n";
    fuzz_check_roundtrip(t, text, sizeof text - 1, 1);
    fuzz_check_roundtrip(t, text, sizeof text - 1, 0);
    for (int i = 0; i < swax_tokenizer_n_specials(t); i++) {
        const SwaxSpecialToken *s = swax_tokenizer_special(t, i);
        FUZZ_CHECK(s && s->text && swax_tokenizer_special_id(t, s->text) >= 0);
    }
    swax_tokenizer_free(t);
    return 0;
}

/* train_state.bin for an optimizer of 64 parameters. */
#define FUZZ_TS_PARAMS 64
static int fuzz_train_state(const uint8_t *d, size_t n) {
    char path[1024];
    fuzz_path(path, sizeof path, "train_state.bin");
    fuzz_write(path, d, n);
    SwaxAdamW opt = {.cfg = swax_adamw_defaults(), .n = FUZZ_TS_PARAMS, .ops = swax_ops_cpu()};
    opt.m = calloc(FUZZ_TS_PARAMS, sizeof(float));
    opt.v = calloc(FUZZ_TS_PARAMS, sizeof(float));
    SWAX_ASSERT(opt.m && opt.v);
    SwaxTrainProgress p;
    memset(&p, 0, sizeof p);
    int rc = swax_train_state_load(path, &p, &opt);
    FUZZ_CHECK(opt.n == FUZZ_TS_PARAMS);
    free(opt.m);
    free(opt.v);
    return rc;
}

/* inference state file, loaded into sequence 1 of a 2-sequence state of the
 * fixture model; a loaded state must decode. */
static int fuzz_infer_state(const uint8_t *d, size_t n) {
    static SwaxState *st;
    SwaxModel *m = fuzz_model();
    if (!st) SWAX_ASSERT(swax_state_create(m, 2, 0, &st) == 0);
    char path[1024];
    fuzz_path(path, sizeof path, "state.bin");
    fuzz_write(path, d, n);
    swax_state_reset(st, 1);
    int rc = swax_state_load(st, m, 1, path);
    if (rc) {
        FUZZ_CHECK(swax_state_position(st, 1) == 0); /* never half-loaded */
        return rc;
    }
    FUZZ_CHECK(swax_state_position(st, 1) >= 0);
    const int seq = 1;
    const int32_t tok = 3;
    float logits[32];
    FUZZ_CHECK(swax_decode(m, st, &seq, &tok, 1, logits) == 0);
    swax_state_reset(st, 1);
    return 0;
}

/* a checkpoint folder: the fixture config.json beside the fuzzed model.safetensors. */
static int fuzz_model_load(const uint8_t *d, size_t n) {
    char cfg[1024], path[1024], dir[1024];
    fuzz_path(cfg, sizeof cfg, "ckpt/config.json");
    fuzz_path(path, sizeof path, "ckpt/model.safetensors");
    snprintf(dir, sizeof dir, "%s/ckpt", fuzz_tmpdir());
    if (access(cfg, F_OK) != 0) SWAX_ASSERT(swax_config_save(cfg, swax_model_config(fuzz_model())) == 0);
    fuzz_write(path, d, n);
    SwaxModel *m = NULL;
    int rc = swax_model_load(dir, &m);
    if (rc) {
        FUZZ_CHECK(m == NULL);
        return rc;
    }
    FUZZ_CHECK(swax_model_num_params(m) == swax_model_num_params(fuzz_model()));
    swax_model_free(m);
    return 0;
}

/* multiple-choice JSONL (swax eval choice --tasks). */
static int fuzz_choice_jsonl(const uint8_t *d, size_t n) {
    char path[1024];
    fuzz_path(path, sizeof path, "task.jsonl");
    fuzz_write(path, d, n);
    SwaxChoiceItem *items = NULL;
    long k = -1;
    int rc = swax_choice_load(path, &items, &k);
    if (rc) {
        FUZZ_CHECK(items == NULL && k == 0);
        return rc;
    }
    FUZZ_CHECK(k >= 1);
    for (long i = 0; i < k; i++) {
        const SwaxChoiceItem *it = &items[i];
        FUZZ_CHECK(it->context != NULL && it->n_choices >= 2 && it->answer >= 0 && it->answer < it->n_choices);
        for (int c = 0; c < it->n_choices; c++) FUZZ_CHECK(it->choices[c] != NULL);
    }
    swax_choice_free(items, k);
    return 0;
}

/* The benchmark readers of `swax eval bench` (eval/bench_read.c): the input
 * goes through every task's reader (a JSONL line, a JSON list, TriviaQA's
 * {"Data": [...]}, one RACE article); whatever one accepts must hold items it
 * promises. 0 if any reader accepted it, else the last status. */
static int fuzz_bench(const uint8_t *d, size_t n) {
    char path[1024];
    fuzz_path(path, sizeof path, "bench/task.jsonl");
    fuzz_write(path, d, n);
    int rc = 0, any = 0;
    for (int i = 0; swax_bench_task_at(i); i++) {
        const SwaxBenchTask *t = swax_bench_task_at(i);
        if (!t->read) continue;
        SwaxBenchSet s = {0};
        int r = swax_bench_load(t, path, &s);
        if (!fuzz_status_ok(r)) FUZZ_CHECK(!"bench reader returned an unclean status");
        if (!r) {
            any = 1;
            FUZZ_CHECK(s.n >= 1);
            for (long k = 0; k < s.n; k++) {
                const SwaxBenchItem *it = &s.v[k];
                FUZZ_CHECK(it->id != NULL);
                if (t->kind == SWAX_BENCH_MC || t->kind == SWAX_BENCH_PARTIAL) {
                    FUZZ_CHECK(it->n_choices >= 2 && it->answer >= 0 && it->answer < it->n_choices && it->shot);
                    for (int c = 0; c < it->n_choices; c++) FUZZ_CHECK(it->choices[c] != NULL);
                    FUZZ_CHECK(t->kind == SWAX_BENCH_PARTIAL ? it->suffix != NULL : it->context != NULL);
                }
                if (t->kind == SWAX_BENCH_GEN) FUZZ_CHECK(it->n_golds >= 1 && (it->prompt || (it->doc && it->query)));
                if (t->kind == SWAX_BENCH_CODE) FUZZ_CHECK(it->prompt && it->program);
                for (int g = 0; g < it->n_golds; g++) fuzz_sink += (unsigned)swax_bench_metric(
                    it->metric ? it->metric : "f1", it->golds[g], it);
            }
        }
        rc = r;
        swax_bench_set_free(&s);
    }
    return any ? 0 : rc;
}

/* NIAH key words (swax eval niah --words FILE). */
static int fuzz_words(const uint8_t *d, size_t n) {
    char path[1024];
    fuzz_path(path, sizeof path, "words.txt");
    fuzz_write(path, d, n);
    SwaxWords w;
    int rc = swax_words_load(path, &w);
    if (rc) return rc;
    FUZZ_CHECK(w.n_adj >= 20 && w.n_noun >= 20);
    for (int i = 0; i < w.n_adj; i++) FUZZ_CHECK(strlen(w.adj[i]) >= 3 && strlen(w.adj[i]) <= 12);
    for (int i = 0; i < w.n_noun; i++) FUZZ_CHECK(strlen(w.noun[i]) >= 3 && strlen(w.noun[i]) <= 12);
    swax_words_free(&w);
    return 0;
}

/* NIAH essays (the haystack text), counted with the byte-level tokenizer. */
static int fuzz_essay(const uint8_t *d, size_t n) {
    SwaxEssay e;
    int rc = swax_essay_from_text((const char *)d, n, "fuzz essay", fuzz_byte_tokenizer(), &e);
    if (rc) return rc;
    FUZZ_CHECK(e.n >= 1 && e.off[0] == 0);
    for (size_t i = 0; i < e.n; i++) {
        FUZZ_CHECK(e.len[i] >= 1 && e.ntok[i] >= 1);
        if (i + 1 < e.n) FUZZ_CHECK(e.off[i] + e.len[i] < e.off[i + 1]);
        else FUZZ_CHECK(e.off[i] + e.len[i] <= n && e.text[e.off[i] + e.len[i]] == 0); /* nothing dropped */
    }
    swax_essay_free(&e);
    return 0;
}

/* `swax data build` on one .jsonl source ({"text": ...} per line), byte-level
 * tokenizer, tiny shards; the shards it writes must open. */
static int fuzz_data_jsonl(const uint8_t *d, size_t n) {
    char path[1024], out[1024], shard[1100];
    fuzz_path(path, sizeof path, "src/docs.jsonl");
    snprintf(out, sizeof out, "%s/dataout", fuzz_tmpdir());
    fuzz_write(path, d, n);
    SwaxDataSource src = {path, 0};
    SwaxDataBuildOptions o;
    swax_data_build_defaults(&o);
    o.tokenizer = fuzz_byte_tokenizer();
    o.tokenizer_name = "bytes";
    o.sources = &src;
    o.n_sources = 1;
    o.out_dir = out;
    o.shard_tokens = 4096;
    o.verbose = 0;
    SwaxDataBuildResult res;
    int rc = swax_data_build(&o, &res);
    if (!rc) {
        FUZZ_CHECK(res.train_shards >= 0 && res.val_shards >= 0);
        if (res.train_shards > 0) {
            snprintf(shard, sizeof shard, "%s/train_000000.bin", out);
            SwaxShard s;
            FUZZ_CHECK(swax_shard_open(shard, &s) == 0);
            FUZZ_CHECK(swax_shard_check_vocab(&s, swax_tokenizer_vocab_size(o.tokenizer)) == 0);
            swax_shard_close(&s);
        }
    }
    return rc;
}

/* OUT/latest, the pointer resume follows. */
static int fuzz_latest(const uint8_t *d, size_t n) {
    char path[1024], out[1024], dir[4200];
    fuzz_path(path, sizeof path, "run/latest");
    snprintf(out, sizeof out, "%s/run", fuzz_tmpdir());
    fuzz_write(path, d, n);
    int rc = swax_train_latest(out, dir, sizeof dir);
    if (!rc) {
        size_t ol = strlen(out);
        const char *name = dir + ol + 1;
        FUZZ_CHECK(!strncmp(dir, out, ol) && dir[ol] == '/' && name[0] && !strchr(name, '/') && strcmp(name, ".") &&
                   strcmp(name, ".."));
    }
    return rc;
}

/* ---- the table -------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int (*fn)(const uint8_t *, size_t);
    const char *what;
} FuzzTarget;

/* One line per target (fuzz/fuzz.mk reads the names from these lines). */
#define FUZZ_TARGET(name, what) {#name, fuzz_##name, what},
static const FuzzTarget fuzz_targets[] = {
    FUZZ_TARGET(safetensors, "swax_st_open (+ write/read round trip)")
    FUZZ_TARGET(config, "swax_config_from_json + swax_config_validate (+ JSON round trip)")
    FUZZ_TARGET(shard, "swax_shard_open + read + check_vocab")
    FUZZ_TARGET(npy, "swax_npy_read_f32")
    FUZZ_TARGET(tokenizer_ranks, "swax_tokenizer_load_mem (+ encode/decode round trip)")
    FUZZ_TARGET(tokenizer_json, "swax_tokenizer_load_json (+ encode/decode round trip)")
    FUZZ_TARGET(train_state, "swax_train_state_load")
    FUZZ_TARGET(infer_state, "swax_state_load (+ one decode step)")
    FUZZ_TARGET(model_load, "swax_model_load (fixed config.json, fuzzed model.safetensors)")
    FUZZ_TARGET(choice_jsonl, "swax_choice_load")
    FUZZ_TARGET(bench, "swax_bench_load with every task's reader (eval bench)")
    FUZZ_TARGET(words, "swax_words_load")
    FUZZ_TARGET(essay, "swax_essay_from_text")
    FUZZ_TARGET(data_jsonl, "swax_data_build on a .jsonl source")
    FUZZ_TARGET(latest, "swax_train_latest")
};
#undef FUZZ_TARGET
#define FUZZ_N_TARGETS ((int)(sizeof fuzz_targets / sizeof fuzz_targets[0]))

static const FuzzTarget *fuzz_target_by_name(const char *name) {
    for (int i = 0; i < FUZZ_N_TARGETS; i++)
        if (!strcmp(fuzz_targets[i].name, name)) return &fuzz_targets[i];
    return NULL;
}

/* Runs one input through a target and checks the status contract. Returns the status. */
static int fuzz_run_one(const FuzzTarget *t, const uint8_t *d, size_t n) {
    swax_error_clear();
    int rc = t->fn(d, n);
    if (!fuzz_status_ok(rc)) {
        char what[160];
        snprintf(what, sizeof what, "target %s returned %d with message '%s'", t->name, rc, swax_last_error());
        fuzz_violation(__FILE__, __LINE__, what);
    }
    return rc;
}

#endif
