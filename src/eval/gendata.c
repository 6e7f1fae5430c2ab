/* gendata.c — synthetic retrieval documents for training small models
 * (SPEC §5: they cannot read English instructions, so they learn the NIAH
 * format, or plain key-value recall, from examples whose answer follows the
 * query). One {"text": ...} per line, for `swax data build --mix`. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

/* ---- NIAH documents ---------------------------------------------------------------- */

/* Tokens of an answer shaped like the task's (the values themselves are
 * drawn inside the sample). */
static long answer_tokens(const SwaxNiahGen *g, const SwaxNiahTask *t) {
    SwaxNiahSample s = {0};
    s.n_golds = t->n_values + t->n_queries - 1;
    for (int i = 0; i < s.n_golds; i++)
        snprintf(s.golds[i], SWAX_NIAH_KEY_MAX, "%s", t->value_uuid ? "3f2a9c1e-7b4d-4e8a-9c2f-1a5b6d7e8f90" : "4821937");
    SwaxStr a = {0};
    SwaxTokenBuf tb = {0};
    long n = 0;
    if (!swax_niah_answer(&s, &a) && !swax_tokenizer_encode(g->tok, a.p, a.n, 0, &tb)) n = (long)tb.n;
    swax_str_free(&a);
    swax_token_buf_free(&tb);
    return n;
}

/* Document `doc`'s draws (its own RNG stream): the task, the length and the depth. */
static const SwaxNiahTask *niah_draw(SwaxRng *r, const SwaxNiahTask *const *tasks, int n_tasks, long min_len,
                                     long max_len, uint64_t seed, uint64_t doc, long *len, double *depth) {
    swax_rng_seed(r, seed, 2 * doc);
    const SwaxNiahTask *t = tasks[swax_rng_u64(r) % (uint64_t)n_tasks];
    *len = min_len + (long)(swax_rng_u64(r) % (uint64_t)(max_len - min_len + 1));
    *depth = swax_rng_uniform(r);
    return t;
}

int swax_gen_niah_doc(const SwaxNiahGen *g, const SwaxNiahTask *const *tasks, int n_tasks, long min_len,
                      long max_len, uint64_t seed, uint64_t doc, SwaxStr *out) {
    SwaxRng r;
    long len;
    double depth;
    const SwaxNiahTask *t = niah_draw(&r, tasks, n_tasks, min_len, max_len, seed, doc, &len, &depth);
    SwaxNiahSample s;
    int rc = swax_niah_make(g, t, len - answer_tokens(g, t), depth, seed, 2 * doc + 1, &s);
    if (!rc) rc = swax_str_append(out, s.prompt.p, s.prompt.n);
    if (!rc) rc = swax_niah_answer(&s, out);
    swax_niah_sample_free(&s);
    return rc;
}

/* The shortest document `doc` of this seed can be (its draw of task and needles does not depend on
 * the lengths asked): the instructions and needles of its prompt, 8 tokens of haystack, and for a
 * training document the answer. 0: not known (another error than a length too short). */
static long niah_need(const SwaxNiahGen *g, const SwaxNiahTask *const *tasks, int n_tasks, int with_answer,
                      uint64_t seed, uint64_t doc) {
    SwaxRng r;
    long len;
    double depth;
    const SwaxNiahTask *t = niah_draw(&r, tasks, n_tasks, 1, 1, seed, doc, &len, &depth);
    SwaxNiahSample s;
    long need = 0;
    /* length 0 is always too short: swax_niah_make stops before it builds a haystack */
    if (swax_niah_make(g, t, 0, depth, seed, 2 * doc + 1, &s) == SWAX_E_USAGE && s.min_length > 0)
        need = s.min_length + (with_answer ? answer_tokens(g, t) : 0);
    swax_niah_sample_free(&s);
    return need;
}

/* A multiple-choice item: the prompt alone as the context, the answer and 3
 * distractors of the same shape (its values replaced by fresh draws of the
 * task's kind of value) in random order. */
int swax_gen_niah_choice(const SwaxNiahGen *g, const SwaxNiahTask *const *tasks, int n_tasks, long min_len,
                         long max_len, uint64_t seed, uint64_t doc, char **json) {
    enum { NCHOICE = 4 };
    SwaxRng r;
    long len;
    double depth;
    const SwaxNiahTask *t = niah_draw(&r, tasks, n_tasks, min_len, max_len, seed, doc, &len, &depth);
    SwaxNiahSample s;
    *json = NULL;
    SWAX_TRY(swax_niah_make(g, t, len, depth, seed, 2 * doc + 1, &s));
    const int answer = (int)(swax_rng_u64(&r) % NCHOICE);
    SwaxStr ch[NCHOICE] = {{0}};
    int rc = 0;
    for (int c = 0; !rc && c < NCHOICE; c++) {
        SwaxNiahSample v = {0};
        v.n_golds = s.n_golds;
        for (int k = 0; k < s.n_golds; k++) {
            if (c == answer) snprintf(v.golds[k], SWAX_NIAH_KEY_MAX, "%s", s.golds[k]);
            else swax_niah_make_value(t->value_uuid, &r, v.golds[k]);
        }
        rc = swax_niah_answer(&v, &ch[c]);
    }
    cJSON *j = rc ? NULL : cJSON_CreateObject();
    if (j) {
        cJSON_AddStringToObject(j, "context", s.prompt.p);
        cJSON *a = cJSON_AddArrayToObject(j, "choices");
        for (int c = 0; c < NCHOICE; c++) cJSON_AddItemToArray(a, cJSON_CreateString(ch[c].p ? ch[c].p : ""));
        cJSON_AddNumberToObject(j, "answer", answer);
        cJSON_AddStringToObject(j, "task", t->name);
        cJSON_AddNumberToObject(j, "depth", depth);
        *json = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
    }
    if (!rc && !*json) rc = swax_error(SWAX_E_NOMEM, "choice item");
    for (int c = 0; c < NCHOICE; c++) swax_str_free(&ch[c]);
    swax_niah_sample_free(&s);
    return rc;
}

/* ---- key-value recall ----------------------------------------------------------------- */

/* A set of key hashes (open addressing; 0 = empty). */
typedef struct {
    uint64_t *h;
    size_t cap, n;
} KeySet;

static int keyset_add(KeySet *s, const char *key) {
    uint64_t h = swax_hash_bytes(key, strlen(key)) | 1;
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        uint64_t *t = calloc(cap, sizeof *t);
        if (!t) return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->h[i]) {
                size_t j = s->h[i] & (cap - 1);
                while (t[j]) j = (j + 1) & (cap - 1);
                t[j] = s->h[i];
            }
        free(s->h);
        s->h = t, s->cap = cap;
    }
    size_t j = h & (s->cap - 1);
    while (s->h[j]) {
        if (s->h[j] == h) return 0; /* present */
        j = (j + 1) & (s->cap - 1);
    }
    s->h[j] = h;
    s->n++;
    return 1;
}

int swax_gen_kv_doc(const SwaxNiahGen *g, long min_len, long max_len, int queries, uint64_t seed, uint64_t doc,
                    SwaxStr *out) {
    static const char head[] = "Key-value pairs:\n", recall[] = "Recall:\n";
    SwaxRng r;
    swax_rng_seed(&r, seed, 2 * doc);
    long len = min_len + (long)(swax_rng_u64(&r) % (uint64_t)(max_len - min_len + 1));
    KeySet set = {0};
    SwaxTokenBuf tb = {0};
    SwaxStr lines = {0};
    size_t *off = NULL; /* line starts in `lines` */
    size_t n = 0, cap = 0;
    long used = 0, line_tok = 0;
    int rc = swax_tokenizer_encode(g->tok, head, sizeof head - 1, 0, &tb);
    if (!rc) rc = swax_tokenizer_encode(g->tok, recall, sizeof recall - 1, 0, &tb);
    used = (long)tb.n;
    /* Pairs until the document, with its recall lines (about as long as the
     * pairs' lines on average), would pass `len`. */
    while (!rc) {
        char key[SWAX_NIAH_KEY_MAX], val[SWAX_NIAH_KEY_MAX], line[2 * SWAX_NIAH_KEY_MAX + 8];
        int fresh = 0;
        for (int tries = 0; tries < 64 && fresh == 0; tries++) {
            snprintf(key, sizeof key, "%s-%s", g->words->adj[swax_rng_u64(&r) % (uint64_t)g->words->n_adj],
                     g->words->noun[swax_rng_u64(&r) % (uint64_t)g->words->n_noun]);
            fresh = keyset_add(&set, key);
        }
        if (fresh < 0) rc = swax_error(SWAX_E_NOMEM, "kv keys");
        if (fresh <= 0) break; /* keys exhausted: a shorter document */
        swax_niah_make_value(0, &r, val);
        int ll = snprintf(line, sizeof line, "%s: %s\n", key, val);
        tb.n = 0;
        rc = swax_tokenizer_encode(g->tok, line, (size_t)ll, 0, &tb);
        if (rc) break;
        long nq = queries <= 0 || (long)n + 1 < queries ? (long)n + 1 : queries;
        long avg = (line_tok + (long)tb.n + (long)n) / (long)(n + 1);
        if (n > 0 && used + (long)tb.n + nq * avg > len) break;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            size_t *o = realloc(off, cap * sizeof *o);
            if (!o) {
                rc = swax_error(SWAX_E_NOMEM, "kv lines");
                break;
            }
            off = o;
        }
        off[n++] = lines.n;
        rc = swax_str_append(&lines, line, (size_t)ll);
        used += (long)tb.n;
        line_tok += (long)tb.n;
    }
    if (!rc) rc = swax_str_puts(out, head);
    if (!rc) rc = swax_str_append(out, lines.p, lines.n);
    if (!rc) rc = swax_str_puts(out, recall);
    /* Recall distinct pairs in random order: a partial Fisher-Yates over indices. */
    size_t nq = queries <= 0 || n < (size_t)queries ? n : (size_t)queries;
    size_t *idx = n ? malloc(n * sizeof *idx) : NULL;
    if (!rc && n && !idx) rc = swax_error(SWAX_E_NOMEM, "kv recall");
    for (size_t i = 0; !rc && i < n; i++) idx[i] = i;
    for (size_t q = 0; !rc && q < nq; q++) {
        size_t j = q + (size_t)(swax_rng_u64(&r) % (uint64_t)(n - q)), t = idx[q];
        idx[q] = idx[j], idx[j] = t;
        size_t a = off[idx[q]], b = idx[q] + 1 < n ? off[idx[q] + 1] : lines.n;
        rc = swax_str_append(out, lines.p + a, b - a);
    }
    free(idx);
    free(off);
    free(set.h);
    swax_token_buf_free(&tb);
    swax_str_free(&lines);
    return rc;
}

/* ---- the file ------------------------------------------------------------------------ */

/* Whether document (or item) `failed` was drawn too short for its instructions and needles; if
 * so, sets a usage error in the units of --min-len that names the least --min-len fitting every
 * document of this run (of the first MAX_PROBE). */
static int too_short(const SwaxGenDataOpts *o, long failed) {
    enum { MAX_PROBE = 20000 };
    const int with_answer = !o->choice;
    const char *what = o->choice ? "item" : "document";
    const long need = niah_need(&o->gen, o->tasks, o->n_tasks, with_answer, o->seed, (uint64_t)failed);
    if (need <= 0) return 0;
    long most = need, probed = o->docs < MAX_PROBE ? o->docs : MAX_PROBE;
    for (long d = 0; d < probed; d++) {
        long n = niah_need(&o->gen, o->tasks, o->n_tasks, with_answer, o->seed, (uint64_t)d);
        if (n > most) most = n;
    }
    swax_error(SWAX_E_USAGE,
               "--min-len %ld is below the smallest %s this kind can make (%s %ld needs %ld tokens: the "
               "instructions and needles%s); --min-len %ld or more fits %s %ld %ss of this --seed and --tasks",
               o->min_len, what, what, failed, need, with_answer ? ", some haystack and the answer" : " and some haystack",
               most, probed < o->docs ? "the first" : "all", probed, what);
    return 1;
}

int swax_gen_data(const SwaxGenDataOpts *o) {
    if (o->min_len < 1 || o->max_len < o->min_len)
        return swax_error(SWAX_E_USAGE, "gen-data: needs 1 <= --min-len <= --max-len (got %ld, %ld)", o->min_len,
                          o->max_len);
    if (!o->kv && o->n_tasks < 1) return swax_error(SWAX_E_USAGE, "gen-data: no tasks");
    SwaxAtomicFile af;
    SWAX_TRY(swax_atomic_open(&af, o->out_path));
    SwaxStr doc = {0};
    SwaxProgress pr;
    swax_progress_start(&pr, "gen-data", o->docs, (double)o->docs, o->quiet);
    int rc = 0;
    for (long d = 0; !rc && d < o->docs; d++) {
        swax_str_clear(&doc);
        if (o->choice && !o->kv) {
            char *item = NULL;
            rc = swax_gen_niah_choice(&o->gen, o->tasks, o->n_tasks, o->min_len, o->max_len, o->seed, (uint64_t)d, &item);
            if (rc && !(rc == SWAX_E_USAGE && too_short(o, d))) rc = swax_error_wrap(rc, "item %ld", d);
            if (!rc) rc = swax_atomic_write(&af, item, strlen(item));
            if (!rc) rc = swax_atomic_write(&af, "\n", 1);
            free(item);
            swax_progress_add(&pr, 1, 1);
            continue;
        }
        rc = o->kv ? swax_gen_kv_doc(&o->gen, o->min_len, o->max_len, o->kv_queries, o->seed, (uint64_t)d, &doc)
                   : swax_gen_niah_doc(&o->gen, o->tasks, o->n_tasks, o->min_len, o->max_len, o->seed, (uint64_t)d,
                                       &doc);
        if (rc) {
            if (!(rc == SWAX_E_USAGE && !o->kv && too_short(o, d))) rc = swax_error_wrap(rc, "document %ld", d);
            break;
        }
        cJSON *j = cJSON_CreateObject();
        if (j) cJSON_AddStringToObject(j, "text", doc.p);
        char *line = j ? cJSON_PrintUnformatted(j) : NULL;
        cJSON_Delete(j);
        if (!line) rc = swax_error(SWAX_E_NOMEM, "document %ld", d);
        if (!rc) rc = swax_atomic_write(&af, line, strlen(line));
        if (!rc) rc = swax_atomic_write(&af, "\n", 1);
        free(line);
        swax_progress_add(&pr, 1, 1);
    }
    swax_str_free(&doc);
    if (rc) {
        swax_atomic_abort(&af);
        return rc;
    }
    swax_progress_finish(&pr);
    return swax_atomic_commit(&af);
}
