/* niah.c — RULER NIAH samples: tasks, essays, haystacks cut to a token
 * length, needles at a depth, scoring (niah.h). Written from SPEC §5. */
#include "eval/niah.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- tasks --------------------------------------------------------------- */

/*  name          haystack         key_uuid value_uuid keys values queries */
static const SwaxNiahTask k_tasks[] = {
    {"single1", SWAX_HAY_NOISE, 0, 0, 1, 1, 1},
    {"single2", SWAX_HAY_ESSAY, 0, 0, 1, 1, 1},
    {"single3", SWAX_HAY_ESSAY, 0, 1, 1, 1, 1},
    {"multikey1", SWAX_HAY_ESSAY, 0, 0, 4, 1, 1},
    {"multikey2", SWAX_HAY_NEEDLE, 0, 0, 1, 1, 1},
    {"multikey3", SWAX_HAY_NEEDLE, 1, 1, 1, 1, 1},
    {"multivalue", SWAX_HAY_ESSAY, 0, 0, 1, 4, 1},
    {"multiquery", SWAX_HAY_ESSAY, 0, 0, 4, 1, 4},
};
#define N_TASKS ((int)(sizeof k_tasks / sizeof k_tasks[0]))

const SwaxNiahTask *swax_niah_task(const char *name) {
    for (int i = 0; i < N_TASKS; i++)
        if (!strcmp(k_tasks[i].name, name)) return &k_tasks[i];
    return NULL;
}
int swax_niah_task_index(const SwaxNiahTask *t) { return (int)(t - k_tasks); }
const SwaxNiahTask *swax_niah_task_at(int i) { return &k_tasks[i]; }
int swax_niah_n_tasks(void) { return N_TASKS; }
const char *swax_niah_task_list(void) {
    return "single1,single2,single3,multikey1,multikey2,multikey3,multivalue,multiquery";
}

/* ---- essays -------------------------------------------------------------- */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* A word ends a sentence if it ends in . ! or ? (before closing quotes and brackets). */
static int ends_sentence(const char *w, size_t n) {
    while (n && (w[n - 1] == '"' || w[n - 1] == '\'' || w[n - 1] == ')' || w[n - 1] == ']')) n--;
    return n && (w[n - 1] == '.' || w[n - 1] == '!' || w[n - 1] == '?');
}

#define ESSAY_MAX_SENTENCE_WORDS 100 /* longer runs are cut: needles need boundaries */

int swax_essay_from_text(const char *text, size_t len, const char *origin, const SwaxTokenizer *tok,
                         SwaxEssay *e) {
    memset(e, 0, sizeof *e);
    /* Project Gutenberg: keep what lies between the START and END lines. */
    const char *lo = text, *hi = text + len;
    const char *s = memmem(text, len, "*** START OF", 12);
    if (s) {
        const char *nl = memchr(s, '\n', (size_t)(hi - s));
        lo = nl ? nl + 1 : hi;
    }
    const char *t = memmem(lo, (size_t)(hi - lo), "*** END OF", 10);
    if (t) hi = t;
    size_t cap_s = 16;
    e->text = malloc((size_t)(hi - lo) + 1);
    e->off = malloc(cap_s * sizeof *e->off);
    e->len = malloc(cap_s * sizeof *e->len);
    if (!e->text || !e->off || !e->len) goto nomem;
    size_t n = 0, start = 0;
    int words = 0;
    for (const char *p = lo; p < hi;) {
        while (p < hi && is_space(*p)) p++;
        if (p >= hi) break;
        const char *w = p;
        while (p < hi && !is_space(*p)) p++;
        if (words) e->text[n++] = ' ';
        else start = n;
        memcpy(e->text + n, w, (size_t)(p - w));
        n += (size_t)(p - w);
        words++;
        const char *rest = p; /* only white space left: the last sentence ends here too */
        while (rest < hi && is_space(*rest)) rest++;
        if (ends_sentence(w, (size_t)(p - w)) || words >= ESSAY_MAX_SENTENCE_WORDS || rest >= hi) {
            if (e->n == cap_s) {
                cap_s *= 2;
                size_t *o = realloc(e->off, cap_s * sizeof *o);
                if (o) e->off = o;
                uint32_t *l = realloc(e->len, cap_s * sizeof *l);
                if (l) e->len = l;
                if (!o || !l) goto nomem;
            }
            e->off[e->n] = start;
            e->len[e->n++] = (uint32_t)(n - start);
            e->text[n++] = ' ';
            words = 0;
        }
    }
    if (!e->n) {
        swax_essay_free(e);
        return swax_error(SWAX_E_INPUT, "%s: no prose in the essay text", origin);
    }
    e->text[n ? n - 1 : 0] = 0;
    e->ntok = malloc(e->n * sizeof *e->ntok);
    if (!e->ntok) goto nomem;
    SwaxTokenBuf tb = {0};
    SwaxStr piece = {0};
    int rc = 0;
    for (size_t i = 0; !rc && i < e->n; i++) {
        tb.n = 0;
        swax_str_clear(&piece);
        rc = swax_str_puts(&piece, " ");
        if (!rc) rc = swax_str_append(&piece, e->text + e->off[i], e->len[i]);
        if (!rc) rc = swax_tokenizer_encode(tok, piece.p, piece.n, 0, &tb);
        e->ntok[i] = (uint32_t)tb.n;
    }
    swax_token_buf_free(&tb);
    swax_str_free(&piece);
    if (rc) swax_essay_free(e);
    return rc;
nomem:
    swax_essay_free(e);
    return swax_error(SWAX_E_NOMEM, "%s: essay of %zu bytes", origin, len);
}

static int has_txt_ext(const struct dirent *d) {
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 4 && !strcmp(d->d_name + n - 4, ".txt");
}

/* Appends a file, or a folder's *.txt files in sorted order, to all. */
static int essay_read_path(const char *path, SwaxStr *all) {
    struct stat st;
    if (stat(path, &st) != 0) return swax_error(SWAX_E_INPUT, "%s: no such essay file or folder", path);
    if (!S_ISDIR(st.st_mode)) {
        char *data = NULL;
        size_t len = 0;
        SWAX_TRY(swax_read_file(path, &data, &len));
        int rc = swax_str_append(all, data, len);
        if (!rc) rc = swax_str_puts(all, "\n");
        free(data);
        return rc;
    }
    struct dirent **list = NULL;
    int n = scandir(path, &list, has_txt_ext, alphasort);
    if (n < 0) return swax_error(SWAX_E_INPUT, "%s: cannot list the folder", path);
    int rc = n ? 0 : swax_error(SWAX_E_INPUT, "%s: no .txt files in the essay folder", path);
    for (int i = 0; i < n; i++) {
        char p[4096];
        if (!rc) rc = swax_path_join(p, sizeof p, path, list[i]->d_name);
        if (!rc) rc = essay_read_path(p, all);
        free(list[i]);
    }
    free(list);
    return rc;
}

int swax_essay_load(const char *const *paths, int n_paths, const SwaxTokenizer *tok, SwaxEssay *e) {
    memset(e, 0, sizeof *e);
    SwaxStr all = {0};
    int rc = 0;
    for (int i = 0; !rc && i < n_paths; i++) rc = essay_read_path(paths[i], &all);
    if (!rc) rc = swax_essay_from_text(all.p ? all.p : "", all.n, n_paths ? paths[0] : "essay", tok, e);
    swax_str_free(&all);
    return rc;
}

void swax_essay_free(SwaxEssay *e) {
    free(e->text);
    free(e->off);
    free(e->len);
    free(e->ntok);
    memset(e, 0, sizeof *e);
}

/* ---- keys and values ----------------------------------------------------- */

static void make_uuid(SwaxRng *r, char *out) {
    static const char hex[] = "0123456789abcdef";
    uint64_t a = swax_rng_u64(r), b = swax_rng_u64(r);
    char d[32];
    for (int i = 0; i < 16; i++) d[i] = hex[(a >> (4 * i)) & 15], d[16 + i] = hex[(b >> (4 * i)) & 15];
    d[12] = '4';                        /* version 4 */
    d[16] = hex[8 + ((b >> 2) & 3)];    /* variant 10xx */
    snprintf(out, SWAX_NIAH_KEY_MAX, "%.8s-%.4s-%.4s-%.4s-%.12s", d, d + 8, d + 12, d + 16, d + 20);
}

static void make_key(const SwaxWords *w, int uuid, SwaxRng *r, char *out) {
    if (uuid) {
        make_uuid(r, out);
        return;
    }
    const char *a = w->adj[swax_rng_u64(r) % (uint64_t)w->n_adj];
    const char *n = w->noun[swax_rng_u64(r) % (uint64_t)w->n_noun];
    snprintf(out, SWAX_NIAH_KEY_MAX, "%s-%s", a, n);
}

void swax_niah_make_value(int uuid, SwaxRng *r, char *out) {
    if (uuid)
        make_uuid(r, out);
    else
        snprintf(out, SWAX_NIAH_KEY_MAX, "%07llu", 1000000ull + (unsigned long long)(swax_rng_u64(r) % 9000000ull));
}

static int in_list(const char (*list)[SWAX_NIAH_KEY_MAX], int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i], s)) return 1;
    return 0;
}

/* ---- templates ----------------------------------------------------------- */

static const char *const k_noise[] = {"The grass is green.", "The sky is blue.", "The sun is yellow.",
                                      "Here we go.", "There and back again."};
#define N_NOISE 5

static int put_needle(SwaxStr *s, int value_uuid, const char *key, const char *value) {
    return swax_str_printf(s, "One of the special magic %s for %s is: %s.", value_uuid ? "uuids" : "numbers", key,
                           value);
}

static int put_intro(SwaxStr *s, int value_uuid) {
    const char *what = value_uuid ? "uuids" : "numbers";
    return swax_str_printf(s,
                           "Some special magic %s are hidden within the following text. Make sure to memorize "
                           "it. I will quiz you about the %s afterwards.\n",
                           what, what);
}

/* "\n" + question + " " + answer prefix; keys joined "a, b, c, and d". */
static int put_query(SwaxStr *s, const SwaxNiahSample *o, int value_uuid) {
    SwaxStr keys = {0};
    for (int i = 0; i < o->n_queries; i++) {
        if (i) swax_str_puts(&keys, o->n_queries == 2 ? " and " : i == o->n_queries - 1 ? ", and " : ", ");
        swax_str_puts(&keys, o->keys[i]);
    }
    int rc = keys.failed ? SWAX_E_NOMEM : 0;
    const char *one = value_uuid ? "uuid" : "number", *many = value_uuid ? "uuids" : "numbers";
    if (!rc && o->n_golds == 1)
        rc = swax_str_printf(s,
                             "\nWhat is the special magic %s for %s mentioned in the provided text? The special "
                             "magic %s for %s mentioned in the provided text is",
                             one, keys.p, one, keys.p);
    else if (!rc)
        rc = swax_str_printf(s,
                             "\nWhat are all the special magic %s for %s mentioned in the provided text? The "
                             "special magic %s for %s mentioned in the provided text are",
                             many, keys.p, many, keys.p);
    swax_str_free(&keys);
    return rc;
}

/* ---- haystack ------------------------------------------------------------ */

/* The haystack as a list of units (sentences), drawn on demand. */
typedef struct {
    SwaxHaystackKind kind;
    const SwaxEssay *essay;
    const SwaxWords *words;
    const SwaxTokenizer *tok;
    const SwaxNiahTask *task;
    const char (*avoid)[SWAX_NIAH_KEY_MAX]; /* needle keys and gold values distractors must not use */
    int n_avoid;
    SwaxRng rng;
    size_t next;          /* next essay sentence / noise sentence */
    uint32_t noise_tok[N_NOISE];
    SwaxStr pool;         /* unit texts back to back */
    size_t *off;          /* (n) */
    uint32_t *len, *ntok; /* (n) */
    size_t n, cap;
    long total;           /* sum of ntok */
    SwaxTokenBuf tb;
    SwaxStr tmp;
} Hay;

static int count_tokens(Hay *h, const char *text, size_t len, uint32_t *out) {
    h->tb.n = 0;
    swax_str_clear(&h->tmp);
    SWAX_TRY(swax_str_puts(&h->tmp, " "));
    SWAX_TRY(swax_str_append(&h->tmp, text, len));
    SWAX_TRY(swax_tokenizer_encode(h->tok, h->tmp.p, h->tmp.n, 0, &h->tb));
    *out = (uint32_t)h->tb.n;
    return 0;
}

static int hay_push(Hay *h, const char *text, size_t len, uint32_t ntok) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 256;
        size_t *o = realloc(h->off, cap * sizeof *o);
        if (o) h->off = o;
        uint32_t *l = realloc(h->len, cap * sizeof *l);
        if (l) h->len = l;
        uint32_t *k = realloc(h->ntok, cap * sizeof *k);
        if (k) h->ntok = k;
        if (!o || !l || !k) return swax_error(SWAX_E_NOMEM, "haystack");
        h->cap = cap;
    }
    h->off[h->n] = h->pool.n;
    h->len[h->n] = (uint32_t)len;
    h->ntok[h->n] = ntok;
    SWAX_TRY(swax_str_append(&h->pool, text, len));
    h->n++;
    h->total += ntok;
    return 0;
}

static int hay_next(Hay *h) {
    switch (h->kind) {
    case SWAX_HAY_NOISE: {
        size_t i = h->next++ % N_NOISE;
        return hay_push(h, k_noise[i], strlen(k_noise[i]), h->noise_tok[i]);
    }
    case SWAX_HAY_ESSAY: {
        const SwaxEssay *e = h->essay;
        size_t i = h->next++ % e->n;
        return hay_push(h, e->text + e->off[i], e->len[i], e->ntok[i]);
    }
    case SWAX_HAY_NEEDLE: {
        char key[SWAX_NIAH_KEY_MAX], val[SWAX_NIAH_KEY_MAX];
        do make_key(h->words, h->task->key_uuid, &h->rng, key);
        while (in_list(h->avoid, h->n_avoid, key));
        do swax_niah_make_value(h->task->value_uuid, &h->rng, val);
        while (in_list(h->avoid, h->n_avoid, val));
        SwaxStr s = {0};
        int rc = put_needle(&s, h->task->value_uuid, key, val);
        uint32_t nt = 0;
        if (!rc) rc = count_tokens(h, s.p, s.n, &nt);
        if (!rc) rc = hay_push(h, s.p, s.n, nt);
        swax_str_free(&s);
        return rc;
    }
    }
    return swax_error(SWAX_E_INTERNAL, "haystack kind");
}

/* Draws units until their tokens exceed `need`. */
static int hay_extend(Hay *h, long need) {
    while (h->total <= need) SWAX_TRY(hay_next(h));
    return 0;
}

static void hay_free(Hay *h) {
    swax_str_free(&h->pool);
    free(h->off);
    free(h->len);
    free(h->ntok);
    swax_token_buf_free(&h->tb);
    swax_str_free(&h->tmp);
}

/* ---- one sample ---------------------------------------------------------- */

#define MAX_NEEDLES 8

typedef struct {
    char text[3 * SWAX_NIAH_KEY_MAX + 64];
    uint32_t ntok;
    double frac;  /* where it goes, as a fraction of the haystack */
    size_t bound; /* the boundary it sits at (before unit `bound`) */
} Needle;

/* One candidate prompt of the fitting loop. */
typedef struct {
    SwaxStr prompt;
    SwaxTokenBuf tokens;
    size_t needle_byte;
    long hay_tokens, diff; /* diff: tokens - asked length */
    double depth_actual;
} Fit;

/* Best: at most the asked length and as close as can be; over it, the least over. */
static int fit_better(long diff, long best) {
    if (best == LONG_MIN) return 1;
    if (diff <= 0) return best > 0 || diff > best;
    return best > 0 && diff < best;
}

static void fit_swap(Fit *a, Fit *b) {
    Fit t = *a;
    *a = *b;
    *b = t;
}

static void fit_free(Fit *f) {
    swax_str_free(&f->prompt);
    swax_token_buf_free(&f->tokens);
}

/* The boundary j in [0, nb] whose cumulative tokens cum[j] are nearest to x
 * (the first such). cum is non-decreasing. */
static size_t nearest_boundary(const long *cum, size_t nb, double x) {
    size_t lo = 0, hi = nb;
    while (lo < hi) { /* first j with cum[j] >= x */
        size_t mid = (lo + hi) / 2;
        if ((double)cum[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    if (lo > 0 && x - (double)cum[lo - 1] <= (double)cum[lo] - x) lo--;
    return lo;
}

/* Builds the prompt for a haystack budget of `budget` tokens: the whole
 * units that fit, then words of the next one, then characters of its next
 * word; needles at their boundaries. */
static int build_prompt(Hay *h, Needle *nd, int n_nd, long budget, const char *intro, const char *query,
                        Fit *o) {
    SWAX_TRY(hay_extend(h, budget));
    size_t full = 0;
    long used = 0;
    while (full < h->n && used + h->ntok[full] <= budget) used += h->ntok[full++];
    /* Words of unit `full` that still fit (each counted as " word"), then
     * as much of the next word as fits, cut at a character (RULER cuts its
     * haystack at a token): a uuid word alone can be 20+ tokens. */
    size_t part_bytes = 0;
    long part_tok = 0;
    if (full < h->n) {
        const char *u = h->pool.p + h->off[full];
        size_t ul = h->len[full], p = 0;
        while (p < ul) {
            size_t e = p;
            while (e < ul && u[e] != ' ') e++;
            uint32_t nt;
            SWAX_TRY(count_tokens(h, u + p, e - p, &nt));
            if (used + part_tok + nt > budget) {
                size_t c = p, best = 0;
                uint32_t best_tok = 0;
                while (c < e) {
                    c++;
                    while (c < e && ((unsigned char)u[c] & 0xC0) == 0x80) c++; /* whole UTF-8 characters */
                    SWAX_TRY(count_tokens(h, u + p, c - p, &nt));
                    if (used + part_tok + nt > budget) break;
                    best = c, best_tok = nt;
                }
                if (best) part_tok += best_tok, part_bytes = best;
                break;
            }
            part_tok += nt;
            part_bytes = e;
            p = e + 1;
        }
    }
    size_t nu = full + (part_bytes > 0);
    long *cum = malloc((nu + 1) * sizeof *cum);
    if (!cum) return swax_error(SWAX_E_NOMEM, "haystack");
    cum[0] = 0;
    for (size_t j = 0; j < full; j++) cum[j + 1] = cum[j] + h->ntok[j];
    if (part_bytes) cum[nu] = cum[full] + part_tok;
    for (int k = 0; k < n_nd; k++) nd[k].bound = nearest_boundary(cum, nu, nd[k].frac * (double)cum[nu]);

    swax_str_clear(&o->prompt);
    int rc = swax_str_puts(&o->prompt, intro);
    long needle_tok = 0;
    int first = 1;
    for (size_t j = 0; !rc && j <= nu; j++) {
        for (int k = 0; !rc && k < n_nd; k++) {
            if (nd[k].bound != j) continue;
            if (!first) rc = swax_str_puts(&o->prompt, " ");
            first = 0;
            if (k == 0) o->needle_byte = o->prompt.n;
            if (!rc) rc = swax_str_puts(&o->prompt, nd[k].text);
        }
        if (j == nu || rc) break;
        if (!first) rc = swax_str_puts(&o->prompt, " ");
        first = 0;
        size_t len = j < full ? h->len[j] : part_bytes;
        if (!rc) rc = swax_str_append(&o->prompt, h->pool.p + h->off[j], len);
    }
    for (int k = 0; k < n_nd; k++) needle_tok += nd[k].ntok;
    o->hay_tokens = cum[nu] + needle_tok;
    o->depth_actual = cum[nu] > 0 ? (double)cum[nd[0].bound] / (double)cum[nu] : 0;
    free(cum);
    if (!rc) rc = swax_str_puts(&o->prompt, query);
    o->tokens.n = 0;
    if (!rc) rc = swax_tokenizer_encode(h->tok, o->prompt.p, o->prompt.n, 0, &o->tokens);
    return rc;
}

uint64_t swax_niah_stream(int task_index, long length, double depth, long sample) {
    uint64_t s = (uint64_t)task_index;
    s = s * 1000003u + (uint64_t)length;
    s = s * 1000003u + (uint64_t)llround(depth * 10000);
    s = s * 1000003u + (uint64_t)sample;
    return s;
}

int swax_niah_make(const SwaxNiahGen *g, const SwaxNiahTask *t, long length, double depth, uint64_t seed,
                   uint64_t stream, SwaxNiahSample *o) {
    memset(o, 0, sizeof *o);
    o->task = t;
    o->length = length;
    o->depth = depth;
    if (!(depth >= 0 && depth <= 1)) return swax_error(SWAX_E_USAGE, "depth %g must be in [0, 1]", depth);
    SwaxHaystackKind kind = t->haystack;
    if (kind == SWAX_HAY_ESSAY && !g->essay) {
        if (!g->essay_as_noise)
            return swax_error(SWAX_E_USAGE, "task %s needs an essay haystack: give --essay FILE", t->name);
        kind = SWAX_HAY_NOISE;
    }
    SwaxRng rng;
    swax_rng_seed(&rng, seed, 2 * stream);

    /* Needles: keys 0..n_keys-1 (distinct); key 0 has n_values values; keys
     * below n_queries are asked and their values are gold. */
    int n_keys = t->n_keys > t->n_queries ? t->n_keys : t->n_queries;
    char keys[MAX_NEEDLES][SWAX_NIAH_KEY_MAX];
    char avoid[2 * MAX_NEEDLES][SWAX_NIAH_KEY_MAX];
    int n_avoid = 0;
    for (int i = 0; i < n_keys; i++) {
        do make_key(g->words, t->key_uuid, &rng, keys[i]);
        while (in_list(keys, i, keys[i]));
        memcpy(avoid[n_avoid++], keys[i], SWAX_NIAH_KEY_MAX);
    }
    Needle nd[MAX_NEEDLES];
    int n_nd = 0;
    for (int i = 0; i < n_keys; i++) {
        for (int v = 0; v < (i == 0 ? t->n_values : 1); v++) {
            char val[SWAX_NIAH_KEY_MAX];
            do swax_niah_make_value(t->value_uuid, &rng, val); /* never a gold value twice, nor a key */
            while (in_list(avoid, n_avoid, val));
            if (i < t->n_queries) {
                memcpy(o->golds[o->n_golds++], val, SWAX_NIAH_KEY_MAX);
                memcpy(avoid[n_avoid++], val, SWAX_NIAH_KEY_MAX);
            }
            SwaxStr s = {0};
            int rc = put_needle(&s, t->value_uuid, keys[i], val);
            if (!rc) snprintf(nd[n_nd].text, sizeof nd[n_nd].text, "%s", s.p);
            swax_str_free(&s);
            SWAX_TRY(rc);
            nd[n_nd].frac = n_nd == 0 ? depth : swax_rng_uniform(&rng);
            n_nd++;
        }
    }
    for (int i = 0; i < t->n_queries; i++) memcpy(o->keys[i], keys[i], SWAX_NIAH_KEY_MAX);
    o->n_queries = t->n_queries;

    Hay h = {0};
    h.kind = kind, h.essay = g->essay, h.words = g->words, h.tok = g->tok, h.task = t;
    h.avoid = (const char(*)[SWAX_NIAH_KEY_MAX])avoid, h.n_avoid = n_avoid;
    swax_rng_seed(&h.rng, seed, 2 * stream + 1);
    if (kind == SWAX_HAY_ESSAY) h.next = swax_rng_u64(&h.rng) % g->essay->n; /* start anywhere in the essay */

    SwaxStr intro = {0}, query = {0};
    int rc = put_intro(&intro, t->value_uuid);
    if (!rc) rc = put_query(&query, o, t->value_uuid);
    for (int i = 0; !rc && i < N_NOISE && kind == SWAX_HAY_NOISE; i++)
        rc = count_tokens(&h, k_noise[i], strlen(k_noise[i]), &h.noise_tok[i]);
    for (int k = 0; !rc && k < n_nd; k++) rc = count_tokens(&h, nd[k].text, strlen(nd[k].text), &nd[k].ntok);
    long fixed = 0;
    if (!rc) {
        h.tb.n = 0;
        rc = swax_tokenizer_encode(g->tok, intro.p, intro.n, 0, &h.tb);
        if (!rc) rc = swax_tokenizer_encode(g->tok, query.p, query.n, 0, &h.tb);
        fixed = (long)h.tb.n;
        for (int k = 0; k < n_nd; k++) fixed += nd[k].ntok;
    }
    if (!rc && length - fixed < 8) {
        o->min_length = fixed + 8;
        rc = swax_error(SWAX_E_USAGE, "length %ld is too short for task %s: instructions and needles take %ld tokens",
                        length, t->name, fixed);
    }

    /* Fit: the estimate adds per-sentence counts; the real count of the whole
     * prompt differs by a few tokens at the joins. Correct the budget until
     * the prompt has `length` tokens or a little fewer (never more). */
    Fit best = {0}, cur = {0};
    long budget = length - fixed;
    best.diff = LONG_MIN;
    for (int iter = 0; !rc && iter < 8; iter++) {
        rc = build_prompt(&h, nd, n_nd, budget, intro.p, query.p, &cur);
        if (rc) break;
        long diff = cur.diff = (long)cur.tokens.n - length;
        if (fit_better(diff, best.diff)) fit_swap(&cur, &best);
        if (diff <= 0 && diff >= -2) break;
        budget -= diff;
        if (budget < 0) budget = 0;
    }
    if (!rc) {
        o->prompt = best.prompt, o->tokens = best.tokens;
        o->needle_byte = best.needle_byte, o->hay_tokens = best.hay_tokens, o->depth_actual = best.depth_actual;
    } else {
        fit_free(&best);
    }
    fit_free(&cur);
    swax_str_free(&intro);
    swax_str_free(&query);
    hay_free(&h);
    return rc;
}

void swax_niah_sample_free(SwaxNiahSample *s) {
    swax_str_free(&s->prompt);
    swax_token_buf_free(&s->tokens);
    memset(s, 0, sizeof *s);
}

int swax_niah_answer(const SwaxNiahSample *s, SwaxStr *out) {
    /* In the order the needles appear in the prompt: what a reader would list. */
    int order[SWAX_NIAH_MAX_GOLDS];
    size_t at[SWAX_NIAH_MAX_GOLDS];
    for (int i = 0; i < s->n_golds; i++) {
        const char *p = s->prompt.p ? strstr(s->prompt.p, s->golds[i]) : NULL;
        at[i] = p ? (size_t)(p - s->prompt.p) : SIZE_MAX;
        int j = i;
        while (j > 0 && at[order[j - 1]] > at[i]) order[j] = order[j - 1], j--;
        order[j] = i;
    }
    for (int i = 0; i < s->n_golds; i++)
        SWAX_TRY(swax_str_printf(out, "%s%s", i ? ", " : " ", s->golds[order[i]]));
    return swax_str_puts(out, ".");
}

/* ---- scoring ------------------------------------------------------------- */

double swax_niah_score(const char *output, const char *const *golds, int n_golds) {
    if (n_golds <= 0) return 0;
    int hit = 0;
    for (int i = 0; i < n_golds; i++) hit += strcasestr(output, golds[i]) != NULL;
    return (double)hit / n_golds;
}
