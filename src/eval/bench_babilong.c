/* bench_babilong.c — a BABILong-style generator: bAbI-like facts and a
 * question (tasks qa1..qa5, templates below and in docs/benchmarks.md) hidden
 * at random sentence boundaries of held-out prose, the prompt filled to a
 * length in tokens. The answer is one word.
 *
 *   qa1 single supporting fact   "Mary went to the kitchen."          Where is Mary?
 *   qa2 two supporting facts     "John picked up the apple." + moves  Where is the apple?
 *   qa3 three supporting facts   pick up, then two moves              Where was the apple before the garden?
 *   qa4 two-argument relations   "The office is north of the hallway." What is north of the hallway?
 *   qa5 three-argument relations "Mary gave the milk to Fred."        Who gave the milk to Fred? / What did ... / Who received ... */
#include <stdlib.h>
#include <string.h>

#include "eval/bench.h"

static const char *const k_people[] = {"Mary", "John", "Daniel", "Sandra", "Fred", "Bill", "Julie", "Jeff"};
static const char *const k_places[] = {"kitchen", "garden", "office", "bedroom", "hallway", "bathroom"};
static const char *const k_things[] = {"apple", "football", "milk", "book", "key", "cake"};
static const char *const k_moves[] = {"went to", "moved to", "travelled to", "journeyed to"};
static const char *const k_dirs[] = {"north", "south", "east", "west"};
#define NP 8
#define NL 6
#define NT 6

static int pick(SwaxRng *r, int n) { return (int)(swax_rng_u64(r) % (uint64_t)n); }

typedef struct {
    SwaxStr facts[12];
    int n;
    char q[160], a[32];
} Story;

static void fact(Story *s, const char *fmt, const char *a, const char *b, const char *c) {
    if (s->n < 12) swax_str_printf(&s->facts[s->n++], fmt, a, b, c);
}

static void make_story(int qa, SwaxRng *r, Story *s) {
    const char *p = k_people[pick(r, NP)], *o = k_people[pick(r, NP)];
    while (o == p) o = k_people[pick(r, NP)];
    int l1 = pick(r, NL), l2 = (l1 + 1 + pick(r, NL - 1)) % NL, l3 = (l2 + 1 + pick(r, NL - 1)) % NL;
    if (l3 == l1) l3 = (l3 + 1) % NL == l2 ? (l3 + 2) % NL : (l3 + 1) % NL;
    const char *t = k_things[pick(r, NT)];
    switch (qa) {
    case 1: /* a distractor person moves too; the asked person's last place counts */
        fact(s, "%s %s the %s.", p, k_moves[pick(r, 4)], k_places[l1]);
        fact(s, "%s %s the %s.", o, k_moves[pick(r, 4)], k_places[l2]);
        fact(s, "%s %s the %s.", p, k_moves[pick(r, 4)], k_places[l3]);
        snprintf(s->q, sizeof s->q, "Where is %s?", p);
        snprintf(s->a, sizeof s->a, "%s", k_places[l3]);
        break;
    case 2:
        fact(s, "%s %s the %s.", p, k_moves[pick(r, 4)], k_places[l1]);
        fact(s, "%s picked up the %s.%s", p, t, "");
        fact(s, "%s %s the %s.", o, k_moves[pick(r, 4)], k_places[l1]);
        fact(s, "%s %s the %s.", p, k_moves[pick(r, 4)], k_places[l2]);
        snprintf(s->q, sizeof s->q, "Where is the %s?", t);
        snprintf(s->a, sizeof s->a, "%s", k_places[l2]);
        break;
    case 3:
        fact(s, "%s %s the %s.", p, k_moves[pick(r, 4)], k_places[l1]);
        fact(s, "%s picked up the %s.%s", p, t, "");
        fact(s, "%s %s the %s.", p, k_moves[pick(r, 4)], k_places[l2]);
        fact(s, "%s %s the %s.", p, k_moves[pick(r, 4)], k_places[l3]);
        snprintf(s->q, sizeof s->q, "Where was the %s before the %s?", t, k_places[l3]);
        snprintf(s->a, sizeof s->a, "%s", k_places[l2]);
        break;
    case 4: {
        int d = pick(r, 4), d2 = (d + 1 + pick(r, 3)) % 4;
        fact(s, "The %s is %s of the %s.", k_places[l1], k_dirs[d], k_places[l2]);
        fact(s, "The %s is %s of the %s.", k_places[l3], k_dirs[d2], k_places[l2]);
        snprintf(s->q, sizeof s->q, "What is %s of the %s?", k_dirs[d], k_places[l2]);
        snprintf(s->a, sizeof s->a, "%s", k_places[l1]);
        break;
    }
    default: { /* 5 */
        const char *x = k_people[pick(r, NP)];
        while (x == p || x == o) x = k_people[pick(r, NP)];
        const char *t2 = k_things[pick(r, NT)];
        while (t2 == t) t2 = k_things[pick(r, NT)];
        fact(s, "%s gave the %s to %s.", x, t2, p);
        fact(s, "%s gave the %s to %s.", p, t, o);
        int form = pick(r, 3);
        if (form == 0) {
            snprintf(s->q, sizeof s->q, "Who gave the %s to %s?", t, o);
            snprintf(s->a, sizeof s->a, "%s", p);
        } else if (form == 1) {
            snprintf(s->q, sizeof s->q, "What did %s give to %s?", p, o);
            snprintf(s->a, sizeof s->a, "%s", t);
        } else {
            snprintf(s->q, sizeof s->q, "Who received the %s?", t);
            snprintf(s->a, sizeof s->a, "%s", o);
        }
    }
    }
}

static const char k_intro[] = "Some facts are hidden in the text below. Read it, then answer the question about them "
                              "with one word.\n";

static long ntok(const SwaxTokenizer *tok, const char *s) {
    SwaxTokenBuf b = {0};
    long n = swax_tokenizer_encode(tok, s, strlen(s), 0, &b) ? 0 : (long)b.n;
    swax_token_buf_free(&b);
    return n;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int swax_babilong_make(const SwaxTokenizer *tok, const SwaxEssay *essay, int qa, long length, int n, uint64_t seed,
                       SwaxBenchSet *set) {
    if (qa < 1 || qa > 5) return swax_error(SWAX_E_USAGE, "babilong: qa%d (qa1..qa5)", qa);
    char lb[32];
    swax_fmt_tokens(lb, sizeof lb, length);
    for (int i = 0; i < n; i++) {
        SwaxRng r;
        swax_rng_seed(&r, seed, ((uint64_t)qa << 48) ^ ((uint64_t)length << 16) ^ (uint64_t)i);
        Story s;
        memset(&s, 0, sizeof s);
        make_story(qa, &r, &s);
        char tail[256];
        snprintf(tail, sizeof tail, "\nQuestion: %s\nAnswer:", s.q);
        long used = ntok(tok, k_intro) + ntok(tok, tail);
        for (int f = 0; f < s.n; f++) used += ntok(tok, s.facts[f].p) + 1;
        /* prose sentences from a random start, wrapping, until the length is reached */
        size_t n_sent = 0, cap = 64;
        size_t *sent = malloc(cap * sizeof *sent);
        int rc = sent ? 0 : swax_error(SWAX_E_NOMEM, "babilong");
        if (!rc && essay && essay->n) {
            size_t at = (size_t)(swax_rng_u64(&r) % essay->n);
            while (!rc && used + (long)essay->ntok[at] <= length && n_sent < 4 * essay->n + 64) {
                if (n_sent == cap) {
                    size_t *ns = realloc(sent, (cap *= 2) * sizeof *sent);
                    if (!ns) rc = swax_error(SWAX_E_NOMEM, "babilong");
                    else sent = ns;
                }
                if (rc) break;
                used += essay->ntok[at];
                sent[n_sent++] = at;
                at = (at + 1) % essay->n;
            }
        }
        /* the facts go to sorted random boundaries, in story order */
        long pos[12];
        for (int f = 0; f < s.n; f++) pos[f] = (long)(swax_rng_u64(&r) % (n_sent + 1));
        qsort(pos, (size_t)s.n, sizeof pos[0], cmp_long);
        SwaxStr p = {0};
        swax_str_puts(&p, k_intro);
        int f = 0;
        for (size_t k = 0; !rc && k <= n_sent; k++) {
            while (f < s.n && pos[f] == (long)k) {
                if (p.n && p.p[p.n - 1] != '\n') swax_str_puts(&p, " ");
                swax_str_puts(&p, s.facts[f++].p);
            }
            if (k < n_sent) {
                if (p.n && p.p[p.n - 1] != '\n') swax_str_puts(&p, " ");
                swax_str_append(&p, essay->text + essay->off[sent[k]], essay->len[sent[k]]);
            }
        }
        swax_str_puts(&p, tail);
        free(sent);
        SwaxBenchItem *it = NULL;
        if (!rc && p.failed) rc = swax_error(SWAX_E_NOMEM, "babilong");
        if (!rc) {
            if (set->n == set->cap) {
                long nc = set->cap ? 2 * set->cap : 64;
                SwaxBenchItem *v = realloc(set->v, (size_t)nc * sizeof *v);
                if (!v) rc = swax_error(SWAX_E_NOMEM, "babilong");
                else set->v = v, set->cap = nc;
            }
        }
        if (!rc) {
            it = &set->v[set->n++];
            memset(it, 0, sizeof *it);
            it->code_id = -1;
            it->prompt = p.p, p.p = NULL;
            it->golds = calloc(1, sizeof *it->golds);
            if (it->golds) it->golds[0] = malloc(strlen(s.a) + 1);
            if (it->golds && it->golds[0]) strcpy(it->golds[0], s.a), it->n_golds = 1;
            char g[64], id[64];
            snprintf(g, sizeof g, "qa%d@%s", qa, lb);
            snprintf(id, sizeof id, "qa%d-%ld-%d", qa, length, i);
            it->group = malloc(strlen(g) + 1);
            it->id = malloc(strlen(id) + 1);
            it->metric = malloc(9);
            if (!it->n_golds || !it->group || !it->id || !it->metric) rc = swax_error(SWAX_E_NOMEM, "babilong");
            else strcpy(it->group, g), strcpy(it->id, id), strcpy(it->metric, "contains");
        }
        swax_str_free(&p);
        for (int k = 0; k < 12; k++) swax_str_free(&s.facts[k]);
        if (rc) return rc;
    }
    return 0;
}
