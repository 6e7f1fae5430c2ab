/* bench_lm.c — the model side of `swax eval bench`: log-likelihood of
 * continuations (lm-evaluation-harness's loglikelihood requests) and
 * generation with stop strings.
 *
 * Batching: the choices of an item share their context. A long context
 * (>= share_min tokens: few-shot prompts, RACE articles, LongBench v2) is
 * prefilled once into sequence 0 of the inference state and copied into
 * sequence 1 for each continuation (swax_state_copy); short ones run all
 * choices as the rows of one batched swax_forward. Both give the same sums to
 * float rounding (tests/test_bench_suite.c). Generation decodes up to
 * n_seqs prompts together; equal prompts in a row (pass@k samples) are
 * prefilled once and copied. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/bench.h"
#include "infer/infer.h"

int swax_bench_lm_init(SwaxBenchLM *lm, SwaxModel *m, const SwaxTokenizer *tok, int n_seqs, int window, int chunk) {
    memset(lm, 0, sizeof *lm);
    const SwaxConfig *c = swax_model_config(m);
    if (swax_tokenizer_vocab_size(tok) > c->vocab_used)
        return swax_error(SWAX_E_INPUT, "tokenizer has %d ids but the model only %d: not this model's tokenizer",
                          swax_tokenizer_vocab_size(tok), c->vocab_used);
    lm->model = m, lm->tok = tok, lm->chunk = chunk;
    lm->n_seqs = n_seqs < 2 ? 2 : n_seqs;
    SWAX_TRY(swax_state_create(m, lm->n_seqs, window, &lm->st));
    lm->window = swax_state_window(lm->st);
    lm->eot = swax_tokenizer_eot(tok);
    if (lm->eot < 0) lm->eot = c->eot_token;
    lm->share_min = 64;
    return 0;
}

void swax_bench_lm_free(SwaxBenchLM *lm) {
    swax_state_free(lm->st);
    lm->st = NULL;
}

/* ---- log-likelihood ------------------------------------------------------------------ */

/* Keeps the first and the last keep/2 tokens (LongBench's cut of long prompts). */
static void cut_middle(SwaxTokenBuf *b, long keep) {
    if (keep <= 0 || (long)b->n <= keep) return;
    size_t head = (size_t)keep / 2, tail = (size_t)keep - head;
    memmove(b->ids + head, b->ids + b->n - tail, tail * sizeof *b->ids);
    b->n = (size_t)keep;
}

/* Context and continuation tokens; the context's trailing spaces go to the continuation. */
static int encode_pair(const SwaxBenchLM *lm, const char *ctx, const char *cont, SwaxTokenBuf *c, SwaxTokenBuf *k) {
    size_t cl = strlen(ctx), keep = cl;
    while (keep && ctx[keep - 1] == ' ') keep--;
    if (keep) {
        SWAX_TRY(swax_tokenizer_encode(lm->tok, ctx, keep, 0, c));
    } else {
        if (lm->eot < 0) return swax_error(SWAX_E_INPUT, "empty context and no <|endoftext|> token");
        c->ids = malloc(sizeof *c->ids);
        if (!c->ids) return swax_error(SWAX_E_NOMEM, "context");
        c->ids[0] = lm->eot, c->n = c->cap = 1;
    }
    SwaxStr s = {0};
    int rc = swax_str_append(&s, ctx + keep, cl - keep);
    if (!rc) rc = swax_str_puts(&s, cont);
    if (!rc && !s.n) rc = swax_error(SWAX_E_INPUT, "empty continuation");
    if (!rc) rc = swax_tokenizer_encode(lm->tok, s.p, s.n, 0, k);
    swax_str_free(&s);
    if (!rc && !k->n) rc = swax_error(SWAX_E_INPUT, "continuation of no tokens");
    if (!rc && lm->max_prompt > 0) cut_middle(c, lm->max_prompt - (long)k->n > 1 ? lm->max_prompt - (long)k->n : 1);
    return rc;
}

static int argmax_used(const float *z, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (z[i] > z[b]) b = i;
    return b;
}

/* Requests [a, b) share context tokens c: prefill once, copy per continuation. */
static int score_shared(SwaxBenchLM *lm, const SwaxTokenBuf *c, const SwaxTokenBuf *k, int a, int b, double *ll,
                        int *greedy) {
    const SwaxConfig *cf = swax_model_config(lm->model);
    const size_t V = (size_t)cf->vocab_size;
    size_t maxk = 1;
    for (int i = a; i < b; i++)
        if (k[i].n > maxk) maxk = k[i].n;
    float *last = swax_calloc(V, sizeof *last, "logits");
    float *rows = swax_calloc(maxk * V, sizeof *rows, "logits");
    int rc = last && rows ? 0 : SWAX_E_NOMEM;
    swax_state_reset(lm->st, 0);
    if (!rc) rc = swax_prefill(lm->model, lm->st, 0, c->ids, c->n, lm->chunk, last, NULL);
    lm->tokens += (long)c->n;
    for (int i = a; !rc && i < b; i++) {
        double s = swax_logprob(last, cf->vocab_used, k[i].ids[0]);
        int g = argmax_used(last, cf->vocab_used) == k[i].ids[0];
        if (k[i].n > 1) {
            rc = swax_state_copy(lm->st, 1, 0);
            if (!rc) rc = swax_prefill(lm->model, lm->st, 1, k[i].ids, k[i].n - 1, lm->chunk, NULL, rows);
            for (size_t j = 1; !rc && j < k[i].n; j++) {
                const float *z = rows + (j - 1) * V;
                s += swax_logprob(z, cf->vocab_used, k[i].ids[j]);
                g &= argmax_used(z, cf->vocab_used) == k[i].ids[j];
            }
            lm->tokens += (long)k[i].n - 1;
        }
        ll[i] = s;
        if (greedy) greedy[i] = g;
    }
    free(last);
    free(rows);
    return rc;
}

/* Requests [a, b) as the rows of one forward: context ++ continuation, minus
 * the last token, padded at the end (causal: padding never reaches a scored position). */
static int score_batch(SwaxBenchLM *lm, const SwaxTokenBuf *c, const SwaxTokenBuf *k, int a, int b, double *ll,
                       int *greedy) {
    const SwaxConfig *cf = swax_model_config(lm->model);
    const size_t V = (size_t)cf->vocab_size;
    size_t T = 1;
    for (int i = a; i < b; i++)
        if (c[i].n + k[i].n - 1 > T) T = c[i].n + k[i].n - 1;
    int32_t *tok = swax_calloc((size_t)(b - a) * T, sizeof *tok, "batch tokens");
    if (!tok) return SWAX_E_NOMEM;
    for (int i = a; i < b; i++) {
        int32_t *r = tok + (size_t)(i - a) * T;
        memcpy(r, c[i].ids, c[i].n * sizeof *r);
        memcpy(r + c[i].n, k[i].ids, (k[i].n - 1) * sizeof *r);
        lm->tokens += (long)(c[i].n + k[i].n - 1);
    }
    SwaxBatch bt = {.B = b - a, .T = (int)T, .tokens = tok, .window = lm->window};
    int rc = swax_forward(lm->model, &bt, NULL);
    if (!rc) {
        const float *lg = swax_model_logits(lm->model);
        for (int i = a; i < b; i++) {
            double s = 0;
            int g = 1;
            for (size_t j = 0; j < k[i].n; j++) {
                const float *z = lg + ((size_t)(i - a) * T + c[i].n + j - 1) * V;
                s += swax_logprob(z, cf->vocab_used, k[i].ids[j]);
                g &= argmax_used(z, cf->vocab_used) == k[i].ids[j];
            }
            ll[i] = s;
            if (greedy) greedy[i] = g;
        }
    }
    free(tok);
    return rc;
}

int swax_bench_loglik(SwaxBenchLM *lm, const char *const *ctx, const char *const *cont, int n, double *ll, int *n_tok,
                      int *greedy) {
    SwaxTokenBuf *c = calloc((size_t)n, sizeof *c), *k = calloc((size_t)n, sizeof *k);
    int rc = c && k ? 0 : swax_error(SWAX_E_NOMEM, "requests");
    for (int i = 0; !rc && i < n; i++) {
        rc = encode_pair(lm, ctx[i], cont[i], &c[i], &k[i]);
        if (!rc && n_tok) n_tok[i] = (int)k[i].n;
    }
    long share_min = lm->share_min > 0 ? lm->share_min : 64;
    for (int a = 0; !rc && a < n;) {
        int b = a + 1;
        while (b < n && !strcmp(ctx[b], ctx[a])) b++;
        int shared = (long)c[a].n >= share_min;
        /* short, distinct contexts (Winogrande) still go together through one forward */
        if (!shared && b == a + 1)
            while (b < n && (long)c[b].n < share_min && strcmp(ctx[b], ctx[b - 1])) b++;
        size_t longest = 0;
        for (int i = a; i < b; i++)
            if (c[i].n + k[i].n > longest) longest = c[i].n + k[i].n;
        if (shared || longest > 4096) {
            for (int i = a; !rc && i < b;) { /* runs of equal contexts */
                int e = i + 1;
                while (e < b && !strcmp(ctx[e], ctx[i])) e++;
                rc = score_shared(lm, &c[i], k, i, e, ll, greedy);
                i = e;
            }
        } else {
            rc = score_batch(lm, c, k, a, b, ll, greedy);
        }
        a = b;
    }
    for (int i = 0; c && k && i < n; i++) swax_token_buf_free(&c[i]), swax_token_buf_free(&k[i]);
    free(c);
    free(k);
    return rc;
}

/* ---- generation ------------------------------------------------------------------------- */

/* Cuts out at the first stop string found at or after `from`; 1 if cut. */
static int cut_at_stop(SwaxStr *out, size_t from, const char *const *stops, int n_stops) {
    size_t best = (size_t)-1;
    for (int s = 0; s < n_stops; s++) {
        size_t L = strlen(stops[s]);
        if (!L) continue;
        size_t f = from > L ? from - L + 1 : 0;
        const char *p = out->p ? strstr(out->p + f, stops[s]) : NULL;
        if (p && (size_t)(p - out->p) < best) best = (size_t)(p - out->p);
    }
    if (best == (size_t)-1) return 0;
    out->n = best;
    out->p[best] = 0;
    return 1;
}

static int32_t pick(const float *z, int vocab, const SwaxBenchGenOpts *g, SwaxRng *rng) {
    if (g->temperature <= 0 || !rng) return swax_sample(z, vocab, NULL, NULL);
    SwaxSampler sp = {g->temperature, 0, g->top_p > 0 ? g->top_p : 1.0f};
    return swax_sample(z, vocab, &sp, rng);
}

int swax_bench_generate(SwaxBenchLM *lm, const char *const *prompts, int n, const SwaxBenchGenOpts *g, SwaxRng *rng,
                        SwaxStr *outs) {
    if (n > lm->n_seqs) return swax_error(SWAX_E_USAGE, "generate: %d prompts for %d sequences", n, lm->n_seqs);
    const SwaxConfig *cf = swax_model_config(lm->model);
    const size_t V = (size_t)cf->vocab_size;
    float *logits = swax_calloc((size_t)n * V, sizeof(float), "logits");
    int *seqs = swax_calloc((size_t)n, sizeof(int), "rows");
    int32_t *next = swax_calloc((size_t)n, sizeof(int32_t), "tokens"), *toks = swax_calloc((size_t)n, sizeof(int32_t), "tokens");
    int rc = logits && seqs && next && toks ? 0 : SWAX_E_NOMEM;
    SwaxTokenBuf p = {0};
    for (int i = 0; !rc && i < n; i++) {
        if (i > 0 && !strcmp(prompts[i], prompts[i - 1])) {
            rc = swax_state_copy(lm->st, i, i - 1);
            memcpy(logits + (size_t)i * V, logits + (size_t)(i - 1) * V, V * sizeof(float));
        } else {
            swax_token_buf_free(&p);
            rc = swax_tokenizer_encode(lm->tok, prompts[i], strlen(prompts[i]), 0, &p);
            if (!rc && !p.n) {
                if (lm->eot < 0) rc = swax_error(SWAX_E_INPUT, "empty prompt");
                else if (swax_token_buf_free(&p), !(p.ids = malloc(sizeof *p.ids))) rc = swax_error(SWAX_E_NOMEM, "prompt");
                else p.ids[0] = lm->eot, p.n = p.cap = 1;
            }
            if (!rc) cut_middle(&p, lm->max_prompt);
            swax_state_reset(lm->st, i);
            if (!rc) rc = swax_prefill(lm->model, lm->st, i, p.ids, p.n, lm->chunk, logits + (size_t)i * V, NULL);
            lm->tokens += (long)p.n;
        }
        if (!rc) next[i] = pick(logits + (size_t)i * V, cf->vocab_used, g, rng);
    }
    swax_token_buf_free(&p);
    int na = 0;
    for (int i = 0; !rc && i < n; i++) seqs[na++] = i;
    for (int step = 0; !rc && step < g->max_new && na > 0; step++) {
        int k = 0;
        for (int r = 0; r < na; r++) {
            const int i = seqs[r];
            const int32_t t = next[i];
            if (t == lm->eot || t < 0) continue;
            const char *b;
            size_t len;
            int done = 0;
            if (swax_tokenizer_token_bytes(lm->tok, t, &b, &len) == 0) {
                size_t old = outs[i].n;
                rc = swax_str_append(&outs[i], b, len);
                if (rc) break;
                done = cut_at_stop(&outs[i], old, g->stops, g->n_stops);
            }
            if (!done && step + 1 < g->max_new) seqs[k] = i, toks[k++] = t;
        }
        na = k;
        if (rc || !na) break;
        rc = swax_decode(lm->model, lm->st, seqs, toks, na, logits);
        for (int r = 0; !rc && r < na; r++) next[seqs[r]] = pick(logits + (size_t)r * V, cf->vocab_used, g, rng);
    }
    free(logits);
    free(seqs);
    free(next);
    free(toks);
    return rc;
}
