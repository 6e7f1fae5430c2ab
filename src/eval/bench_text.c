/* bench_text.c — answer normalisation and the metrics of `swax eval bench`
 * (docs/benchmarks.md): exact match and token F1 after SQuAD-style
 * normalisation, ROUGE-L, code edit similarity, LongBench's classification,
 * retrieval and counting scores, and the unbiased pass@k. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/bench.h"

/* ---- normalisation ----------------------------------------------------------------- */

static int is_punct(unsigned char c) { return c < 128 && ispunct(c); }

/* In place: lowercase, punctuation to nothing (drop) or a space (space_punct). */
static void lower_strip(char *s, int space_punct) {
    char *w = s;
    for (char *r = s; *r; r++) {
        unsigned char c = (unsigned char)*r;
        if (is_punct(c)) {
            if (space_punct) *w++ = ' ';
            continue;
        }
        *w++ = c < 128 ? (char)tolower(c) : (char)c;
    }
    *w = 0;
}

/* Splits s (modified) at ASCII whitespace; words into *out (malloc'd array). */
static int split_words(char *s, char ***out, int *n) {
    int cap = 16, k = 0;
    char **v = malloc((size_t)cap * sizeof *v);
    if (!v) return SWAX_E_NOMEM;
    char *p = s;
    for (;;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        if (k == cap) {
            char **nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                return SWAX_E_NOMEM;
            }
            v = nv;
        }
        v[k++] = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (*p) *p++ = 0;
    }
    *out = v, *n = k;
    return 0;
}

char *swax_bench_normalize(const char *s) {
    size_t n = strlen(s);
    char *t = malloc(n + 1), *out = malloc(n + 1);
    char **w = NULL;
    int nw = 0;
    if (!t || !out) goto fail;
    memcpy(t, s, n + 1);
    lower_strip(t, 0);
    if (split_words(t, &w, &nw)) goto fail;
    size_t o = 0;
    for (int i = 0; i < nw; i++) {
        if (!strcmp(w[i], "a") || !strcmp(w[i], "an") || !strcmp(w[i], "the")) continue;
        size_t l = strlen(w[i]);
        if (o) out[o++] = ' ';
        memcpy(out + o, w[i], l);
        o += l;
    }
    out[o] = 0;
    free(w);
    free(t);
    return out;
fail:
    free(t);
    free(out);
    return NULL;
}

double swax_bench_exact_match(const char *pred, const char *const *golds, int n) {
    char *p = swax_bench_normalize(pred);
    double best = 0;
    for (int i = 0; p && i < n && best < 1; i++) {
        char *g = swax_bench_normalize(golds[i]);
        if (g && !strcmp(p, g)) best = 1;
        free(g);
    }
    free(p);
    return best;
}

/* Token F1 of two word lists (a multiset overlap). */
static double f1_words(char **a, int na, char **b, int nb) {
    if (!na || !nb) return na == nb;
    char *used = calloc((size_t)nb, 1);
    if (!used) return 0;
    int common = 0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (!used[j] && !strcmp(a[i], b[j])) {
                used[j] = 1, common++;
                break;
            }
    free(used);
    if (!common) return 0;
    double p = (double)common / na, r = (double)common / nb;
    return 2 * p * r / (p + r);
}

double swax_bench_f1(const char *pred, const char *const *golds, int n) {
    char *p = swax_bench_normalize(pred), **pw = NULL;
    int np = 0;
    double best = 0;
    if (!p || split_words(p, &pw, &np)) goto done;
    for (int i = 0; i < n; i++) {
        char *g = swax_bench_normalize(golds[i]), **gw = NULL;
        int ng = 0;
        if (g && !split_words(g, &gw, &ng)) {
            double f = f1_words(pw, np, gw, ng);
            if (f > best) best = f;
        }
        free(gw);
        free(g);
    }
done:
    free(pw);
    free(p);
    return best;
}

/* ---- characters -------------------------------------------------------------------- */

/* Length of the UTF-8 sequence at p, 1 for an invalid byte. */
static int u8len(const unsigned char *p) {
    unsigned c = p[0];
    int k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    for (int i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80) return 1;
    return k;
}

long swax_bench_chars(const char *s) {
    long n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p += u8len(p)) n++;
    return n;
}

/* Code points of s without whitespace and ASCII / CJK punctuation, as 32-bit keys. */
static uint32_t *code_points(const char *s, int *n, int cap) {
    uint32_t *v = malloc(((size_t)strlen(s) + 1) * sizeof *v);
    if (!v) return NULL;
    int k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && k < cap;) {
        int l = u8len(p);
        uint32_t cp = 0;
        for (int i = 0; i < l; i++) cp = cp << 8 | p[i];
        p += l;
        if (l == 1 && (isspace((int)cp) || is_punct((unsigned char)cp))) continue;
        /* the common full-width punctuation: 、 。 ， ！ ？ ； ： （ ） 《 》 “ ” */
        static const uint32_t cjk[] = {0xE38081, 0xE38082, 0xEFBC8C, 0xEFBC81, 0xEFBC9F, 0xEFBC9B, 0xEFBC9A,
                                       0xEFBC88, 0xEFBC89, 0xE3808A, 0xE3808B, 0xE2809C, 0xE2809D};
        int skip = 0;
        for (size_t i = 0; i < sizeof cjk / sizeof cjk[0]; i++) skip |= cp == cjk[i];
        if (!skip) v[k++] = cp;
    }
    *n = k;
    return v;
}

/* Longest common subsequence of two key arrays (two rows of DP). */
static long lcs_u32(const uint32_t *a, int na, const uint32_t *b, int nb) {
    long *prev = calloc((size_t)nb + 1, sizeof *prev), *cur = calloc((size_t)nb + 1, sizeof *cur);
    long r = 0;
    if (prev && cur) {
        for (int i = 1; i <= na; i++) {
            for (int j = 1; j <= nb; j++)
                cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
            long *t = prev;
            prev = cur, cur = t;
        }
        r = prev[nb];
    }
    free(prev);
    free(cur);
    return r;
}

static double lcs_f1(long l, int na, int nb) {
    if (!na || !nb) return na == nb;
    if (!l) return 0;
    double p = (double)l / na, r = (double)l / nb;
    return 2 * p * r / (p + r);
}

#define MAX_LCS 4000 /* longer texts are scored on their first 4000 words / characters */

/* Words of s (lowercased, punctuation as spaces) hashed to keys. */
static uint32_t *word_keys(const char *s, int *n) {
    char *t = malloc(strlen(s) + 1), **w = NULL;
    uint32_t *v = NULL;
    int nw = 0;
    if (t) {
        strcpy(t, s);
        lower_strip(t, 1);
    }
    if (t && !split_words(t, &w, &nw)) {
        if (nw > MAX_LCS) nw = MAX_LCS;
        v = malloc(((size_t)nw + 1) * sizeof *v);
        for (int i = 0; v && i < nw; i++) {
            uint32_t h = 2166136261u; /* FNV-1a */
            for (const unsigned char *p = (const unsigned char *)w[i]; *p; p++) h = (h ^ *p) * 16777619u;
            v[i] = h;
        }
    }
    *n = nw;
    free(w);
    free(t);
    return v;
}

double swax_bench_rouge_l(const char *pred, const char *const *golds, int n) {
    int np;
    uint32_t *p = word_keys(pred, &np);
    double best = 0;
    for (int i = 0; p && i < n; i++) {
        int ng;
        uint32_t *g = word_keys(golds[i], &ng);
        if (g) {
            double f = lcs_f1(lcs_u32(p, np, g, ng), np, ng);
            if (f > best) best = f;
        }
        free(g);
    }
    free(p);
    return best;
}

double swax_bench_rouge_l_chars(const char *pred, const char *const *golds, int n) {
    int np;
    uint32_t *p = code_points(pred, &np, MAX_LCS);
    double best = 0;
    for (int i = 0; p && i < n; i++) {
        int ng;
        uint32_t *g = code_points(golds[i], &ng, MAX_LCS);
        if (g) {
            double f = lcs_f1(lcs_u32(p, np, g, ng), np, ng);
            if (f > best) best = f;
        }
        free(g);
    }
    free(p);
    return best;
}

double swax_bench_f1_chars(const char *pred, const char *const *golds, int n) {
    int np;
    uint32_t *p = code_points(pred, &np, 1 << 20);
    double best = 0;
    for (int i = 0; p && i < n; i++) {
        int ng;
        uint32_t *g = code_points(golds[i], &ng, 1 << 20);
        char *used = g ? calloc((size_t)ng + 1, 1) : NULL;
        if (used) {
            int common = 0;
            for (int a = 0; a < np; a++)
                for (int b = 0; b < ng; b++)
                    if (!used[b] && p[a] == g[b]) {
                        used[b] = 1, common++;
                        break;
                    }
            double f = !np || !ng ? np == ng : common ? 2.0 * common / (np + ng) : 0;
            if (f > best) best = f;
        }
        free(used);
        free(g);
    }
    free(p);
    return best;
}

double swax_bench_code_sim(const char *pred, const char *gold) {
    /* the first line that is not a fence or a comment */
    const char *line = NULL;
    size_t len = 0;
    for (const char *p = pred; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        const char *q = p;
        while (q < p + l && (*q == ' ' || *q == '\t')) q++;
        if (q < p + l && strncmp(q, "`", 1) && strncmp(q, "#", 1) && strncmp(q, "//", 2)) {
            line = p, len = l;
            break;
        }
        if (!e) break;
        p = e + 1;
    }
    size_t lg = strlen(gold);
    if (!line) return lg == 0;
    if (len > MAX_LCS) len = MAX_LCS;
    if (lg > MAX_LCS) lg = MAX_LCS;
    if (!len && !lg) return 1;
    uint32_t *a = malloc((len + 1) * sizeof *a), *b = malloc((lg + 1) * sizeof *b);
    double r = 0;
    if (a && b) {
        for (size_t i = 0; i < len; i++) a[i] = (unsigned char)line[i];
        for (size_t i = 0; i < lg; i++) b[i] = (unsigned char)gold[i];
        r = 2.0 * (double)lcs_u32(a, (int)len, b, (int)lg) / (double)(len + lg);
    }
    free(a);
    free(b);
    return r;
}

double swax_bench_classification(const char *pred, const char *gold, const char *const *classes, int n_classes) {
    int named = 0, gold_named = 0;
    for (int i = 0; i < n_classes; i++) {
        if (!classes[i][0] || !strstr(pred, classes[i])) continue;
        if (strcmp(classes[i], gold) && strstr(gold, classes[i])) continue; /* part of the gold label */
        named++;
        gold_named |= !strcmp(classes[i], gold);
    }
    return gold_named ? 1.0 / named : 0;
}

/* The numbers (digit runs) of s; at most cap. */
static int numbers(const char *s, long *v, int cap) {
    int k = 0;
    for (const char *p = s; *p && k < cap;) {
        if (isdigit((unsigned char)*p)) {
            long x = 0;
            while (isdigit((unsigned char)*p)) {
                if (x < 100000000) x = x * 10 + (*p - '0');
                p++;
            }
            v[k++] = x;
        } else {
            p++;
        }
    }
    return k;
}

static double number_score(const char *pred, long want) {
    long v[256];
    int k = numbers(pred, v, 256), right = 0;
    for (int i = 0; i < k; i++) right += v[i] == want;
    return k ? (double)right / k : 0;
}

double swax_bench_retrieval(const char *pred, const char *gold) {
    long g[1];
    if (numbers(gold, g, 1) < 1) return 0;
    return number_score(pred, g[0]);
}

double swax_bench_count(const char *pred, const char *gold) { return swax_bench_retrieval(pred, gold); }

double swax_bench_pass_at_k(int n, int c, int k) {
    if (k < 1 || n < 1 || k > n) return NAN;
    if (n - c < k) return 1.0;
    double prod = 1;
    for (int i = n - c + 1; i <= n; i++) prod *= 1.0 - (double)k / i;
    return 1.0 - prod;
}

/* BABILong: the gold word is one of the words of the answer's first line. */
static double contains_word(const char *pred, const char *gold) {
    size_t l = strcspn(pred, "\n");
    char *first = malloc(l + 1), **w = NULL;
    char *g = swax_bench_normalize(gold), *p = NULL;
    int nw = 0;
    double r = 0;
    if (first && g) {
        memcpy(first, pred, l);
        first[l] = 0;
        p = swax_bench_normalize(first);
    }
    if (p && !split_words(p, &w, &nw))
        for (int i = 0; i < nw && !r; i++) r = !strcmp(w[i], g);
    free(w);
    free(p);
    free(g);
    free(first);
    return r;
}

double swax_bench_metric(const char *name, const char *pred, const SwaxBenchItem *it) {
    const char *const *g = (const char *const *)it->golds;
    const int n = it->n_golds;
    if (!strcmp(name, "exact_match")) return swax_bench_exact_match(pred, g, n);
    if (!strcmp(name, "f1") || !strcmp(name, "qa_f1")) return swax_bench_f1(pred, g, n);
    if (!strcmp(name, "qa_f1_zh")) return swax_bench_f1_chars(pred, g, n);
    if (!strcmp(name, "rouge")) return swax_bench_rouge_l(pred, g, n);
    if (!strcmp(name, "rouge_zh")) return swax_bench_rouge_l_chars(pred, g, n);
    double best = 0, s;
    for (int i = 0; i < n; i++) {
        if (!strcmp(name, "classification"))
            s = swax_bench_classification(pred, g[i], (const char *const *)it->classes, it->n_classes);
        else if (!strcmp(name, "retrieval")) s = swax_bench_retrieval(pred, g[i]);
        else if (!strcmp(name, "count")) s = swax_bench_count(pred, g[i]);
        else if (!strcmp(name, "code_sim")) s = swax_bench_code_sim(pred, g[i]);
        else if (!strcmp(name, "contains")) s = contains_word(pred, g[i]);
        else return -1;
        if (s > best) best = s;
    }
    return best;
}
