/* sample.c — the token sampler: greedy, temperature, top-k, top-p (nucleus),
 * seeded by a SwaxRng. Order: temperature, then top-k, then top-p on the
 * renormalised top-k set (the usual order). Ids >= vocab_used are never drawn;
 * NaN logits count as -inf. Ties sort by id (deterministic). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "infer/infer.h"

typedef struct {
    double p;
    int32_t id;
} Cand;

static int cand_cmp(const void *a, const void *b) {
    const Cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int32_t argmax(const float *z, int n) {
    int32_t best = 0;
    float bv = -INFINITY;
    for (int i = 0; i < n; i++)
        if (z[i] > bv) { /* NaN never compares greater */
            bv = z[i];
            best = i;
        }
    return best;
}

int32_t swax_sample(const float *logits, int vocab_used, const SwaxSampler *sp, SwaxRng *rng) {
    if (!logits || vocab_used < 1) {
        swax_error(SWAX_E_USAGE, "sample: no logits or vocab_used %d < 1", vocab_used);
        return -1;
    }
    const double T = sp ? sp->temperature : 0.0;
    const int k = sp ? sp->top_k : 0;
    const double top_p = sp ? sp->top_p : 1.0;
    if (!(T > 0) || k == 1 || !rng) return argmax(logits, vocab_used);
    const float mx = logits[argmax(logits, vocab_used)];
    if (!(mx > -INFINITY) || isinf(mx)) return argmax(logits, vocab_used);
    double *p = malloc(sizeof(double) * (size_t)vocab_used);
    if (!p) return argmax(logits, vocab_used);
    double total = 0;
    for (int i = 0; i < vocab_used; i++) {
        const float z = logits[i];
        p[i] = (z > -INFINITY) ? exp(((double)z - (double)mx) / T) : 0.0; /* NaN, -inf -> 0 */
        total += p[i];
    }
    const int use_k = k > 0 && k < vocab_used, use_p = top_p < 1.0;
    int32_t pick = -1;
    if (!use_k && !use_p) {
        const double u = swax_rng_uniform(rng) * total;
        double acc = 0;
        for (int i = 0; i < vocab_used && pick < 0; i++) {
            acc += p[i];
            if (p[i] > 0 && u < acc) pick = i;
        }
        if (pick < 0) pick = argmax(logits, vocab_used);
        free(p);
        return pick;
    }
    /* candidates: those with p >= tau, tau lowered until the set surely holds
     * the top-k (count >= k) and, without top-k, the nucleus (mass >= top_p) */
    Cand *c = malloc(sizeof(Cand) * (size_t)vocab_used);
    if (!c) {
        free(p);
        return argmax(logits, vocab_used);
    }
    int nc = 0;
    for (double tau = 1e-4;; tau = tau > 1e-30 ? tau * 1e-4 : 0) {
        nc = 0;
        double mass = 0;
        for (int i = 0; i < vocab_used; i++)
            if (p[i] > 0 && p[i] >= tau) {
                c[nc].p = p[i];
                c[nc++].id = i;
                mass += p[i];
            }
        const int enough = use_k ? nc >= k : mass >= top_p * total;
        if (enough || tau == 0) break;
    }
    qsort(c, (size_t)nc, sizeof *c, cand_cmp);
    if (use_k && nc > k) nc = k;
    double kept = 0;
    for (int i = 0; i < nc; i++) kept += c[i].p;
    if (use_p) {
        const double target = (top_p > 0 ? top_p : 0) * kept;
        double acc = 0;
        int n2 = 0;
        while (n2 < nc) {
            acc += c[n2++].p;
            if (acc >= target) break;
        }
        nc = n2 > 0 ? n2 : 1;
        kept = 0;
        for (int i = 0; i < nc; i++) kept += c[i].p;
    }
    const double u = swax_rng_uniform(rng) * kept;
    double acc = 0;
    pick = c[nc - 1].id;
    for (int i = 0; i < nc; i++) {
        acc += c[i].p;
        if (u < acc) {
            pick = c[i].id;
            break;
        }
    }
    free(c);
    free(p);
    return pick;
}
