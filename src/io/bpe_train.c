/* bpe_train.c — learning a byte-level BPE from a corpus (see tokenizer.h).
 *
 * 1. Count: every file is cut into pre-token pieces with the pattern; the
 *    distinct pieces ("words") and their frequencies go into a hash table.
 *    Merges never cross a piece, so the corpus shrinks to this table.
 * 2. Merge: each word is a sequence of token ids (bytes at first). Pair
 *    counts (summed over words, weighted by frequency) live in a hash table;
 *    each pair keeps the list of words it occurs in. A max-heap picks the
 *    most frequent pair (ties: smaller concatenated bytes, then shorter left
 *    part — a total order, so training is deterministic). Merging rewrites
 *    only the words on that pair's list and updates their pair counts; the
 *    heap is lazy (an entry whose count is out of date is skipped).
 * Token ids: 0..255 are the bytes, then one id per merge, then <|endoftext|>. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/progress.h"
#include "io/tokenizer.h"

/* ======================================================================
 * Interned byte strings with a 64-bit value each
 * ====================================================================== */

typedef struct {
    uint8_t *arena;
    size_t arena_n, arena_cap;
    size_t *off;
    uint32_t *len;
    uint64_t *hash;
    int64_t *val;
    size_t n, cap;   /* items */
    uint32_t *slots; /* item index + 1; 0 = empty */
    size_t nslots;   /* power of two */
} Strings;

static void strings_free(Strings *s) {
    free(s->arena);
    free(s->off);
    free(s->len);
    free(s->hash);
    free(s->val);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem, const char *what) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return swax_error(SWAX_E_NOMEM, "%s: cannot grow to %zu entries", what, c);
    *p = q;
    *cap = c;
    return 0;
}

static int strings_rehash(Strings *s, size_t nslots) {
    uint32_t *sl = swax_calloc(nslots, sizeof *sl, "string table");
    if (!sl) return SWAX_E_NOMEM;
    for (size_t i = 0; i < s->n; i++) {
        size_t j = s->hash[i] & (nslots - 1);
        while (sl[j]) j = (j + 1) & (nslots - 1);
        sl[j] = (uint32_t)(i + 1);
    }
    free(s->slots);
    s->slots = sl;
    s->nslots = nslots;
    return 0;
}

/* Index of bytes p[0..n), inserting them if new (*is_new = 1). -1 on error. */
static int64_t strings_intern(Strings *s, const void *p, size_t n, int *is_new) {
    uint64_t h = swax_hash_bytes(p, n);
    *is_new = 0;
    if (s->nslots) {
        for (size_t j = h & (s->nslots - 1); s->slots[j]; j = (j + 1) & (s->nslots - 1)) {
            size_t i = s->slots[j] - 1;
            if (s->hash[i] == h && s->len[i] == n && !memcmp(s->arena + s->off[i], p, n)) return (int64_t)i;
        }
    }
    if (s->n >= UINT32_MAX - 1 || n > UINT32_MAX) {
        swax_error(SWAX_E_NOMEM, "string table: too many or too long entries");
        return -1;
    }
    if ((s->n + 1) * 2 > s->nslots && strings_rehash(s, s->nslots ? s->nslots * 2 : 1024)) return -1;
    size_t cap_before = s->cap;
    if (s->n + 1 > s->cap) {
        size_t c = s->cap;
        if (grow((void **)&s->off, &c, s->n + 1, sizeof *s->off, "strings")) return -1;
        c = cap_before;
        if (grow((void **)&s->len, &c, s->n + 1, sizeof *s->len, "strings")) return -1;
        c = cap_before;
        if (grow((void **)&s->hash, &c, s->n + 1, sizeof *s->hash, "strings")) return -1;
        c = cap_before;
        if (grow((void **)&s->val, &c, s->n + 1, sizeof *s->val, "strings")) return -1;
        s->cap = c;
    }
    if (grow((void **)&s->arena, &s->arena_cap, s->arena_n + n + 1, 1, "string bytes")) return -1;
    memcpy(s->arena + s->arena_n, p, n);
    size_t i = s->n++;
    s->off[i] = s->arena_n;
    s->len[i] = (uint32_t)n;
    s->hash[i] = h;
    s->val[i] = 0;
    s->arena_n += n;
    size_t j = h & (s->nslots - 1);
    while (s->slots[j]) j = (j + 1) & (s->nslots - 1);
    s->slots[j] = (uint32_t)(i + 1);
    *is_new = 1;
    return (int64_t)i;
}

/* ======================================================================
 * Counting pieces
 * ====================================================================== */

struct SwaxBpeCounter {
    SwaxPretok *pretok;
    char pattern[16];
    Strings pieces; /* val = frequency */
    uint64_t bytes, files, n_pieces;
};

int swax_bpe_counter_create(const char *pattern, SwaxBpeCounter **out) {
    *out = NULL;
    const char *canon = swax_pattern_canonical(pattern);
    if (!canon)
        return swax_error(SWAX_E_USAGE, "unknown pattern '%s' (known: r50k, cl100k, o200k)",
                          pattern ? pattern : "(null)");
    SwaxBpeCounter *c = swax_calloc(1, sizeof *c, "BPE counter");
    if (!c) return SWAX_E_NOMEM;
    snprintf(c->pattern, sizeof c->pattern, "%s", canon);
    int rc = swax_pretok_create(canon, &c->pretok);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void swax_bpe_counter_free(SwaxBpeCounter *c) {
    if (!c) return;
    swax_pretok_free(c->pretok);
    strings_free(&c->pieces);
    free(c);
}

static int count_piece(void *ctx, const char *piece, size_t len) {
    SwaxBpeCounter *c = ctx;
    int is_new;
    int64_t i = strings_intern(&c->pieces, piece, len, &is_new);
    if (i < 0) return SWAX_E_NOMEM;
    c->pieces.val[i]++;
    c->n_pieces++;
    return 0;
}

int swax_bpe_counter_add(SwaxBpeCounter *c, const char *text, size_t len) {
    c->bytes += len;
    return swax_pretok_split(c->pretok, text, len, count_piece, c);
}

static int has_ext(const char *name, const char *ext) {
    if (!ext || !*ext) return 1;
    size_t nl = strlen(name);
    for (const char *e = ext; *e;) {
        const char *comma = strchr(e, ',');
        size_t el = comma ? (size_t)(comma - e) : strlen(e);
        if (el && el <= nl && !memcmp(name + nl - el, e, el)) return 1;
        if (!comma) break;
        e = comma + 1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int add_file(SwaxBpeCounter *c, const char *path) {
    char *data;
    size_t len;
    SWAX_TRY(swax_read_file(path, &data, &len));
    /* A NUL in the first 8 KiB: a binary file (e.g. .pyc), not text. */
    if (memchr(data, 0, len < 8192 ? len : 8192)) {
        free(data);
        return 0;
    }
    int rc = swax_bpe_counter_add(c, data, len);
    if (rc) swax_error_wrap(rc, "%s", path);
    c->files++;
    free(data);
    return rc;
}

static int add_path(SwaxBpeCounter *c, const char *path, const char *ext, int top, int depth) {
    struct stat st;
    if ((top ? stat(path, &st) : lstat(path, &st)) != 0)
        return swax_error(SWAX_E_INPUT, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) return top || has_ext(path, ext) ? add_file(c, path) : 0;
    if (!S_ISDIR(st.st_mode)) {
        if (top) return swax_error(SWAX_E_INPUT, "%s: not a file or folder", path);
        return 0; /* symlinks, sockets... inside folders are skipped */
    }
    if (depth > 64) return swax_error(SWAX_E_INPUT, "%s: folders nested too deep", path);
    DIR *d = opendir(path);
    if (!d) return swax_error(SWAX_E_INPUT, "%s: cannot open folder: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue; /* ., .., hidden */
        if ((rc = grow((void **)&names, &cap, n + 1, sizeof *names, "folder listing"))) break;
        if (!(names[n] = strdup(e->d_name))) {
            rc = swax_error(SWAX_E_NOMEM, "folder listing");
            break;
        }
        n++;
    }
    closedir(d);
    if (!rc && n) qsort(names, n, sizeof *names, cmp_str); /* sorted: the same order everywhere */
    char sub[4096];
    for (size_t i = 0; i < n && !rc; i++) {
        rc = swax_path_join(sub, sizeof sub, path, names[i]);
        if (!rc) rc = add_path(c, sub, ext, 0, depth + 1);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int swax_bpe_counter_add_path(SwaxBpeCounter *c, const char *path, const char *ext) {
    return add_path(c, path, ext, 1, 0);
}

void swax_bpe_counter_stats(const SwaxBpeCounter *c, uint64_t *bytes, uint64_t *files,
                            uint64_t *pieces, uint64_t *distinct) {
    if (bytes) *bytes = c->bytes;
    if (files) *files = c->files;
    if (pieces) *pieces = c->n_pieces;
    if (distinct) *distinct = c->pieces.n;
}

/* ======================================================================
 * Merging
 * ====================================================================== */

typedef struct {
    int32_t a, b;
    int64_t count;
    int64_t before;  /* count when first touched in the current merge */
    uint32_t stamp;  /* merge that last touched it */
    uint32_t *words; /* words it occurs in (may hold stale entries) */
    uint32_t nw, cw;
} Pair;

typedef struct {
    int64_t count;
    uint32_t pair;
} HeapEnt;

typedef struct {
    Strings toks; /* token bytes; id == index */
    /* words: symbols (token ids) of each distinct piece, in one array */
    int32_t *sym;
    size_t *wstart;
    uint32_t *wlen, *wstamp;
    int64_t *wfreq;
    size_t nwords;
    /* pairs by (a, b) */
    Pair *pairs;
    size_t npairs, cpairs;
    uint32_t *pslots; /* pair index + 1 */
    size_t npslots;
    HeapEnt *heap;
    size_t nheap, cheap;
    uint32_t *touched;
    size_t ntouched, ctouched;
    uint32_t merge_no;
} Trainer;

static inline uint64_t pair_hash(int32_t a, int32_t b) {
    uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

static int pair_rehash(Trainer *T, size_t nslots) {
    uint32_t *sl = swax_calloc(nslots, sizeof *sl, "pair table");
    if (!sl) return SWAX_E_NOMEM;
    for (size_t i = 0; i < T->npairs; i++) {
        size_t j = pair_hash(T->pairs[i].a, T->pairs[i].b) & (nslots - 1);
        while (sl[j]) j = (j + 1) & (nslots - 1);
        sl[j] = (uint32_t)(i + 1);
    }
    free(T->pslots);
    T->pslots = sl;
    T->npslots = nslots;
    return 0;
}

/* Index of pair (a, b), created (count 0) if absent; -1 on error. */
static int64_t pair_get(Trainer *T, int32_t a, int32_t b) {
    uint64_t h = pair_hash(a, b);
    for (size_t j = h & (T->npslots - 1); T->pslots[j]; j = (j + 1) & (T->npslots - 1)) {
        Pair *p = &T->pairs[T->pslots[j] - 1];
        if (p->a == a && p->b == b) return T->pslots[j] - 1;
    }
    if ((T->npairs + 1) * 2 > T->npslots) {
        if (pair_rehash(T, T->npslots * 2)) return -1;
        return pair_get(T, a, b);
    }
    if (grow((void **)&T->pairs, &T->cpairs, T->npairs + 1, sizeof *T->pairs, "pairs")) return -1;
    size_t i = T->npairs++;
    memset(&T->pairs[i], 0, sizeof T->pairs[i]);
    T->pairs[i].a = a;
    T->pairs[i].b = b;
    size_t j = h & (T->npslots - 1);
    while (T->pslots[j]) j = (j + 1) & (T->npslots - 1);
    T->pslots[j] = (uint32_t)(i + 1);
    return (int64_t)i;
}

static int pair_add_word(Pair *p, uint32_t w) {
    if (p->nw && p->words[p->nw - 1] == w) return 0;
    if (p->nw == p->cw) {
        size_t c = p->cw;
        if (grow((void **)&p->words, &c, (size_t)p->nw + 1, sizeof *p->words, "pair word list")) return SWAX_E_NOMEM;
        p->cw = (uint32_t)c;
    }
    p->words[p->nw++] = w;
    return 0;
}

/* Adds d to the count of (a, b); records the pair as touched by this merge.
 * A pair that contains the new token `c` is new to word w: list w on it. */
static int pair_delta(Trainer *T, int32_t a, int32_t b, int64_t d, uint32_t w, int32_t c) {
    int64_t i = pair_get(T, a, b);
    if (i < 0) return SWAX_E_NOMEM;
    Pair *p = &T->pairs[i];
    if (p->stamp != T->merge_no) {
        p->stamp = T->merge_no;
        p->before = p->count;
        if (grow((void **)&T->touched, &T->ctouched, T->ntouched + 1, sizeof *T->touched, "touched pairs"))
            return SWAX_E_NOMEM;
        T->touched[T->ntouched++] = (uint32_t)i;
    }
    p->count += d;
    SWAX_ASSERT(p->count >= 0);
    if (d > 0 && (a == c || b == c)) return pair_add_word(p, w);
    return 0;
}

/* Heap order: larger count first; on a tie, the smaller concatenation of
 * the two tokens' bytes, then the shorter left token. */
static int pair_tie(const Trainer *T, const Pair *x, const Pair *y) {
    const Strings *s = &T->toks;
    const uint8_t *xa = s->arena + s->off[x->a], *xb = s->arena + s->off[x->b];
    const uint8_t *ya = s->arena + s->off[y->a], *yb = s->arena + s->off[y->b];
    size_t xal = s->len[x->a], xl = xal + s->len[x->b];
    size_t yal = s->len[y->a], yl = yal + s->len[y->b];
    for (size_t i = 0; i < xl && i < yl; i++) {
        uint8_t cx = i < xal ? xa[i] : xb[i - xal];
        uint8_t cy = i < yal ? ya[i] : yb[i - yal];
        if (cx != cy) return cx < cy ? -1 : 1;
    }
    if (xl != yl) return xl < yl ? -1 : 1;
    return xal < yal ? -1 : xal > yal ? 1 : 0;
}

static int heap_before(const Trainer *T, HeapEnt x, HeapEnt y) {
    if (x.count != y.count) return x.count > y.count;
    if (x.pair == y.pair) return 0;
    return pair_tie(T, &T->pairs[x.pair], &T->pairs[y.pair]) < 0;
}

static int heap_push(Trainer *T, int64_t count, uint32_t pair) {
    if (grow((void **)&T->heap, &T->cheap, T->nheap + 1, sizeof *T->heap, "pair heap")) return SWAX_E_NOMEM;
    HeapEnt v = {count, pair};
    size_t i = T->nheap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!heap_before(T, v, T->heap[up])) break;
        T->heap[i] = T->heap[up];
        i = up;
    }
    T->heap[i] = v;
    return 0;
}

static HeapEnt heap_pop(Trainer *T) {
    HeapEnt top = T->heap[0], v = T->heap[--T->nheap];
    size_t i = 0, n = T->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(T, T->heap[c + 1], T->heap[c])) c++;
        if (!heap_before(T, T->heap[c], v)) break;
        T->heap[i] = T->heap[c];
        i = c;
    }
    if (n) T->heap[i] = v;
    return top;
}

/* The most frequent pair (lazy heap: skip or refresh out-of-date entries). */
static int64_t best_pair(Trainer *T) {
    while (T->nheap) {
        HeapEnt e = heap_pop(T);
        int64_t cur = T->pairs[e.pair].count;
        if (cur == e.count && cur > 0) return e.pair;
        /* An entry above the true count is refreshed; one below it is a
         * leftover (an exact entry was pushed when the count rose). */
        if (cur > 0 && e.count > cur && heap_push(T, cur, e.pair)) return -2;
    }
    return -1;
}

/* Rewrites every word holding pair p = (a, b) with token c in its place. */
static int apply_merge(Trainer *T, uint32_t p, int32_t c) {
    int32_t a = T->pairs[p].a, b = T->pairs[p].b;
    uint32_t *wl = T->pairs[p].words, nw = T->pairs[p].nw;
    T->pairs[p].words = NULL;
    T->pairs[p].nw = T->pairs[p].cw = 0;
    T->merge_no++;
    T->ntouched = 0;
    int rc = 0;
    for (uint32_t k = 0; k < nw && !rc; k++) {
        uint32_t w = wl[k];
        if (T->wstamp[w] == T->merge_no) continue;
        T->wstamp[w] = T->merge_no;
        int32_t *s = T->sym + T->wstart[w];
        uint32_t L = T->wlen[w];
        int64_t f = T->wfreq[w];
        uint32_t i = 0;
        while (i + 1 < L && !(s[i] == a && s[i + 1] == b)) i++;
        if (i + 1 >= L) continue; /* stale entry: merged away earlier */
        /* Words are short pieces: recount the word's pairs, old out, new in. */
        for (uint32_t q = 0; q + 1 < L && !rc; q++) rc = pair_delta(T, s[q], s[q + 1], -f, w, c);
        uint32_t j = 0;
        for (i = 0; i < L;) {
            if (i + 1 < L && s[i] == a && s[i + 1] == b) {
                s[j++] = c;
                i += 2;
            } else {
                s[j++] = s[i++];
            }
        }
        T->wlen[w] = j;
        for (uint32_t q = 0; q + 1 < j && !rc; q++) rc = pair_delta(T, s[q], s[q + 1], f, w, c);
    }
    free(wl);
    SWAX_ASSERT(rc || T->pairs[p].count == 0);
    for (size_t k = 0; k < T->ntouched && !rc; k++) {
        Pair *q = &T->pairs[T->touched[k]];
        if (q->count > q->before) rc = heap_push(T, q->count, T->touched[k]);
    }
    return rc;
}

static void trainer_free(Trainer *T) {
    strings_free(&T->toks);
    free(T->sym);
    free(T->wstart);
    free(T->wlen);
    free(T->wstamp);
    free(T->wfreq);
    for (size_t i = 0; i < T->npairs; i++) free(T->pairs[i].words);
    free(T->pairs);
    free(T->pslots);
    free(T->heap);
    free(T->touched);
}

/* Printable form of a token for progress lines. */
static const char *show(const uint8_t *p, size_t n, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') buf[o++] = (char)p[i];
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", p[i]);
    }
    buf[o] = 0;
    return buf;
}

static int trainer_init(Trainer *T, const SwaxBpeCounter *c) {
    int is_new;
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        if (strings_intern(&T->toks, &byte, 1, &is_new) < 0) return SWAX_E_NOMEM;
    }
    const Strings *P = &c->pieces;
    size_t nw = 0, nsym = 0;
    for (size_t i = 0; i < P->n; i++)
        if (P->len[i] > 1) nw++, nsym += P->len[i];
    T->sym = swax_calloc(nsym + 1, sizeof *T->sym, "BPE words");
    T->wstart = swax_calloc(nw + 1, sizeof *T->wstart, "BPE words");
    T->wlen = swax_calloc(nw + 1, sizeof *T->wlen, "BPE words");
    T->wstamp = swax_calloc(nw + 1, sizeof *T->wstamp, "BPE words");
    T->wfreq = swax_calloc(nw + 1, sizeof *T->wfreq, "BPE words");
    if (!T->sym || !T->wstart || !T->wlen || !T->wstamp || !T->wfreq) return SWAX_E_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < P->n; i++) {
        if (P->len[i] <= 1) continue; /* a single byte never merges */
        const uint8_t *p = P->arena + P->off[i];
        T->wstart[T->nwords] = o;
        T->wlen[T->nwords] = P->len[i];
        T->wfreq[T->nwords] = P->val[i];
        for (uint32_t k = 0; k < P->len[i]; k++) T->sym[o++] = p[k];
        T->nwords++;
    }
    SWAX_TRY(pair_rehash(T, 1 << 16));
    /* Initial pair counts; every word is listed on each of its pairs. */
    for (size_t w = 0; w < T->nwords; w++) {
        const int32_t *s = T->sym + T->wstart[w];
        for (uint32_t q = 0; q + 1 < T->wlen[w]; q++) {
            int64_t i = pair_get(T, s[q], s[q + 1]);
            if (i < 0) return SWAX_E_NOMEM;
            T->pairs[i].count += T->wfreq[w];
            SWAX_TRY(pair_add_word(&T->pairs[i], (uint32_t)w));
        }
    }
    for (size_t i = 0; i < T->npairs; i++) SWAX_TRY(heap_push(T, T->pairs[i].count, (uint32_t)i));
    return 0;
}

int swax_bpe_train(SwaxBpeCounter *c, int vocab_size, int verbose, SwaxTokenizer **out) {
    *out = NULL;
    if (vocab_size < 257 || vocab_size > (1 << 24))
        return swax_error(SWAX_E_USAGE,
                          "vocab size %d: must be in [257, %d] (256 bytes + merges + <|endoftext|>)",
                          vocab_size, 1 << 24);
    double t0 = swax_time_sec();
    Trainer T;
    memset(&T, 0, sizeof T);
    int rc = trainer_init(&T, c);
    int target = vocab_size - 1; /* ordinary tokens; the last id is <|endoftext|> */
    int merges = 0, step = (target - 256) / 20 > 0 ? (target - 256) / 20 : 1;
    SwaxThrottle thr; /* a line per 5% of the merges, at most 4 a second, and the last */
    swax_throttle_start(&thr);
    if (!rc && verbose)
        fprintf(stderr, "bpe: %zu distinct pieces (%zu of 2+ bytes), %zu pairs; learning %d merges\n",
                c->pieces.n, T.nwords, T.npairs, target - 256);
    while (!rc && (int)T.toks.n < target) {
        int64_t p = best_pair(&T);
        if (p == -2) rc = SWAX_E_NOMEM;
        if (p < 0) break;
        const Pair *pp = &T.pairs[p];
        int64_t count = pp->count;
        /* The new token's bytes; the same bytes may already be a token
         * (reached through another split): then the merge reuses its id. */
        size_t la = T.toks.len[pp->a], lb = T.toks.len[pp->b];
        uint8_t stackbuf[256], *buf = la + lb <= sizeof stackbuf ? stackbuf : malloc(la + lb);
        if (!buf) {
            rc = swax_error(SWAX_E_NOMEM, "bpe: token bytes");
            break;
        }
        memcpy(buf, T.toks.arena + T.toks.off[pp->a], la);
        memcpy(buf + la, T.toks.arena + T.toks.off[pp->b], lb);
        int is_new;
        int64_t id = strings_intern(&T.toks, buf, la + lb, &is_new);
        if (buf != stackbuf) free(buf);
        if (id < 0) {
            rc = SWAX_E_NOMEM;
            break;
        }
        rc = apply_merge(&T, (uint32_t)p, (int32_t)id);
        merges += is_new;
        if (!rc && verbose && is_new &&
            ((int)T.toks.n == target || (merges % step == 0 && swax_throttle_due(&thr)))) {
            char sb[96];
            fprintf(stderr, "bpe: %d/%d merges, token %lld '%s' (count %lld), %.1f s\n", merges,
                    target - 256, (long long)id,
                    show(T.toks.arena + T.toks.off[id], T.toks.len[id], sb, sizeof sb), (long long)count,
                    swax_time_sec() - t0);
        }
    }
    if (!rc && (int)T.toks.n < target && verbose)
        fprintf(stderr, "bpe: the corpus ran out of pairs at %zu tokens (asked for %d)\n", T.toks.n + 1,
                vocab_size);
    if (!rc) {
        int32_t *ids = swax_calloc(T.toks.n, sizeof *ids, "token ids");
        if (!ids) rc = SWAX_E_NOMEM;
        for (size_t i = 0; !rc && i < T.toks.n; i++) ids[i] = (int32_t)i;
        SwaxSpecialToken eot = {"<|endoftext|>", (int32_t)T.toks.n};
        if (!rc)
            rc = swax_tokenizer_from_tokens(T.toks.arena, T.toks.off, T.toks.len, ids, T.toks.n,
                                            c->pattern, &eot, 1, "trained BPE", out);
        free(ids);
    }
    if (!rc && verbose)
        fprintf(stderr, "bpe: vocabulary of %d tokens in %.2f s\n", swax_tokenizer_vocab_size(*out),
                swax_time_sec() - t0);
    trainer_free(&T);
    return rc;
}
