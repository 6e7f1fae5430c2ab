/* choice.c — `swax eval choice`: multiple choice by log-likelihood, as
 * lm-evaluation-harness scores HellaSwag, ARC, PIQA: acc takes the choice
 * with the largest summed log-prob of its tokens, acc_norm divides that sum
 * by the choice's length in bytes first. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

/* ---- reading ------------------------------------------------------------------- */

typedef struct {
    SwaxChoiceItem *v;
    long n, cap;
} ItemList;

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int add_item(void *ctx, const cJSON *j, const char *path, long line) {
    ItemList *L = ctx;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "context");
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "answer");
    if (!cJSON_IsObject(j)) return swax_error(SWAX_E_INPUT, "%s:%ld: expected a JSON object", path, line);
    if (!cJSON_IsString(c)) return swax_error(SWAX_E_INPUT, "%s:%ld: \"context\" must be a string", path, line);
    if (!cJSON_IsArray(ch) || cJSON_GetArraySize(ch) < 2)
        return swax_error(SWAX_E_INPUT, "%s:%ld: \"choices\" must be an array of at least 2 strings", path, line);
    const int k = cJSON_GetArraySize(ch);
    const cJSON *e;
    cJSON_ArrayForEach(e, ch) if (!cJSON_IsString(e))
        return swax_error(SWAX_E_INPUT, "%s:%ld: \"choices\" must hold strings only", path, line);
    if (!cJSON_IsNumber(a) || a->valuedouble != floor(a->valuedouble) || a->valuedouble < 0 || a->valuedouble >= k)
        return swax_error(SWAX_E_INPUT, "%s:%ld: \"answer\" must be an integer index into the %d choices", path, line, k);
    if (L->n == L->cap) {
        long cap = L->cap ? 2 * L->cap : 64;
        SwaxChoiceItem *v = realloc(L->v, (size_t)cap * sizeof *v);
        if (!v) return swax_error(SWAX_E_NOMEM, "%s: items", path);
        L->v = v, L->cap = cap;
    }
    SwaxChoiceItem *it = &L->v[L->n];
    memset(it, 0, sizeof *it);
    it->context = dup_str(c->valuestring);
    it->choices = calloc((size_t)k, sizeof *it->choices);
    it->answer = (int)a->valuedouble;
    int ok = it->context && it->choices;
    if (ok) {
        cJSON_ArrayForEach(e, ch) {
            it->choices[it->n_choices] = dup_str(e->valuestring);
            if (!it->choices[it->n_choices++]) ok = 0;
        }
    }
    L->n++; /* counted even when half-built: swax_choice_free copes */
    return ok ? 0 : swax_error(SWAX_E_NOMEM, "%s:%ld: item", path, line);
}

int swax_choice_load(const char *path, SwaxChoiceItem **items, long *n) {
    ItemList L = {0};
    int rc = swax_jsonl_each(path, add_item, &L);
    if (!rc && !L.n) rc = swax_error(SWAX_E_INPUT, "%s: no items", path);
    if (rc) {
        swax_choice_free(L.v, L.n);
        *items = NULL, *n = 0;
        return rc;
    }
    *items = L.v, *n = L.n;
    return 0;
}

void swax_choice_free(SwaxChoiceItem *items, long n) {
    for (long i = 0; items && i < n; i++) {
        free(items[i].context);
        for (int k = 0; items[i].choices && k < items[i].n_choices; k++) free(items[i].choices[k]);
        free(items[i].choices);
    }
    free(items);
}

/* ---- scoring ------------------------------------------------------------------- */

/* Context and continuations as token sequences: ctx ++ cont_k. */
static int encode_item(const SwaxTokenizer *tok, const SwaxChoiceItem *it, SwaxTokenBuf *ctx, SwaxTokenBuf *conts) {
    size_t cl = strlen(it->context), keep = cl;
    while (keep && it->context[keep - 1] == ' ') keep--;
    if (keep) {
        SWAX_TRY(swax_tokenizer_encode(tok, it->context, keep, 0, ctx));
    } else {
        /* nothing to condition on: the end-of-text token, as the harness does */
        int32_t eot = swax_tokenizer_eot(tok);
        if (eot < 0) return swax_error(SWAX_E_INPUT, "empty context and a tokenizer without <|endoftext|>");
        ctx->ids = malloc(sizeof *ctx->ids);
        if (!ctx->ids) return swax_error(SWAX_E_NOMEM, "context");
        ctx->ids[0] = eot;
        ctx->n = ctx->cap = 1;
    }
    SwaxStr s = {0};
    int rc = 0;
    for (int k = 0; !rc && k < it->n_choices; k++) {
        swax_str_clear(&s);
        rc = swax_str_append(&s, it->context + keep, cl - keep);
        if (!rc) rc = swax_str_puts(&s, it->choices[k]);
        if (!rc && !s.n) rc = swax_error(SWAX_E_INPUT, "choice %d is empty", k);
        if (!rc) rc = swax_tokenizer_encode(tok, s.p, s.n, 0, &conts[k]);
    }
    swax_str_free(&s);
    return rc;
}

int swax_choice_score(SwaxModel *m, const SwaxTokenizer *tok, const SwaxChoiceItem *it, int window, double *ll,
                      int *n_tok) {
    const SwaxConfig *c = swax_model_config(m);
    const int K = it->n_choices, V = c->vocab_size;
    SwaxTokenBuf ctx = {0};
    SwaxTokenBuf *conts = calloc((size_t)K, sizeof *conts);
    int32_t *rows = NULL;
    int rc = conts ? 0 : swax_error(SWAX_E_NOMEM, "choices");
    if (!rc) rc = encode_item(tok, it, &ctx, conts);
    /* All choices in one batch, padded at the end (causal: padding never
     * reaches the positions that are scored). Rows: ctx ++ cont, minus the
     * last token (nothing follows it). */
    size_t T = 0;
    for (int k = 0; !rc && k < K; k++)
        if (ctx.n + conts[k].n - 1 > T) T = ctx.n + conts[k].n - 1;
    if (!rc && T > (size_t)1 << 20) rc = swax_error(SWAX_E_INPUT, "context of %zu tokens is too long", T);
    if (!rc) rows = swax_calloc((size_t)K * T, sizeof *rows, "choice tokens");
    if (!rc && !rows) rc = SWAX_E_NOMEM;
    for (int k = 0; !rc && k < K; k++) {
        int32_t *r = rows + (size_t)k * T;
        memcpy(r, ctx.ids, ctx.n * sizeof *r);
        memcpy(r + ctx.n, conts[k].ids, (conts[k].n - 1) * sizeof *r);
        /* the rest stays 0: padding */
    }
    if (!rc) {
        SwaxBatch b = {.B = K, .T = (int)T, .tokens = rows, .window = window > 0 ? window : c->window};
        rc = swax_forward(m, &b, NULL);
    }
    if (!rc) {
        const float *lg = swax_model_logits(m);
        for (int k = 0; k < K; k++) {
            double s = 0;
            /* continuation token j sits at position ctx.n + j and is predicted at ctx.n + j - 1 */
            for (size_t j = 0; j < conts[k].n; j++)
                s += swax_logprob(lg + ((size_t)k * T + ctx.n + j - 1) * V, c->vocab_used, conts[k].ids[j]);
            ll[k] = s;
            if (n_tok) n_tok[k] = (int)conts[k].n;
        }
    }
    swax_token_buf_free(&ctx);
    for (int k = 0; conts && k < K; k++) swax_token_buf_free(&conts[k]);
    free(conts);
    free(rows);
    return rc;
}

/* ---- the run ----------------------------------------------------------------------- */

typedef struct {
    char name[256];
    long n;
    double acc, acc_norm; /* fractions */
} TaskResult;

static void task_name(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, cap, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

static int argmax(const double *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int run_task(const SwaxChoiceOpts *o, const char *path, TaskResult *res) {
    SwaxChoiceItem *items = NULL;
    long n = 0;
    SWAX_TRY(swax_choice_load(path, &items, &n));
    if (o->limit > 0 && n > o->limit) n = o->limit;
    task_name(path, res->name, sizeof res->name);
    SwaxStr details = {0};
    SwaxProgress pr;
    swax_progress_start(&pr, res->name, n, (double)n, o->quiet);
    long hit = 0, hit_norm = 0;
    int rc = 0;
    for (long i = 0; !rc && i < n; i++) {
        const SwaxChoiceItem *it = &items[i];
        double *ll = calloc((size_t)it->n_choices * 2, sizeof *ll), *norm = ll ? ll + it->n_choices : NULL;
        if (!ll) {
            rc = swax_error(SWAX_E_NOMEM, "choices");
            break;
        }
        rc = swax_choice_score(o->model, o->tok, it, o->window, ll, NULL);
        if (rc) rc = swax_error_wrap(rc, "%s: item %ld", path, i + 1);
        for (int k = 0; !rc && k < it->n_choices; k++) norm[k] = ll[k] / (double)strlen(it->choices[k]);
        if (!rc) {
            int p = argmax(ll, it->n_choices), pn = argmax(norm, it->n_choices);
            hit += p == it->answer;
            hit_norm += pn == it->answer;
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "index", (double)i);
            cJSON_AddNumberToObject(j, "answer", it->answer);
            cJSON_AddNumberToObject(j, "pred", p);
            cJSON_AddNumberToObject(j, "pred_norm", pn);
            cJSON_AddItemToObject(j, "loglikelihoods", cJSON_CreateDoubleArray(ll, it->n_choices));
            char *t = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            if (!t) rc = swax_error(SWAX_E_NOMEM, "details");
            else swax_str_printf(&details, "%s\n", t);
            free(t);
        }
        free(ll);
        swax_progress_add(&pr, 1, 1);
    }
    if (!rc) {
        swax_progress_finish(&pr);
        res->n = n;
        res->acc = (double)hit / n;
        res->acc_norm = (double)hit_norm / n;
        char file[300], p[4096];
        snprintf(file, sizeof file, "%s.jsonl", res->name);
        rc = swax_path_join(p, sizeof p, o->out_dir, file);
        if (!rc) rc = swax_str_write(&details, p);
    }
    swax_str_free(&details);
    swax_choice_free(items, n < 0 ? 0 : n);
    return rc;
}

/* Standard error of a mean of 0/1 outcomes (as the harness reports). */
static double stderr01(double p, long n) { return n > 1 ? sqrt(p * (1 - p) / (double)(n - 1)) : NAN; }

int swax_eval_choice(const SwaxChoiceOpts *o) {
    SWAX_TRY(swax_mkdir_p(o->out_dir));
    const SwaxConfig *c = swax_model_config(o->model);
    if (swax_tokenizer_vocab_size(o->tok) > c->vocab_used)
        return swax_error(SWAX_E_INPUT, "tokenizer has %d ids but the model only %d: not this model's tokenizer",
                          swax_tokenizer_vocab_size(o->tok), c->vocab_used);
    TaskResult *res = calloc((size_t)o->n_tasks, sizeof *res);
    if (!res) return swax_error(SWAX_E_NOMEM, "results");
    int rc = 0;
    for (int t = 0; !rc && t < o->n_tasks; t++) rc = run_task(o, o->task_files[t], &res[t]);
    if (!rc) {
        const int window = o->window > 0 ? o->window : c->window;
        SwaxStr md = {0};
        swax_str_printf(&md, "# Multiple choice\n\nmodel `%s`, window %d; acc: largest summed log-likelihood of the "
                        "continuation; acc_norm: the sum divided by the continuation's length in bytes.\n\n"
                        "| task | n | acc | ± | acc_norm | ± |\n|---|---:|---:|---:|---:|---:|\n", o->model_name, window);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", o->model_name);
        cJSON_AddNumberToObject(j, "window", window);
        cJSON *ts = cJSON_AddObjectToObject(j, "tasks");
        for (int t = 0; t < o->n_tasks; t++) {
            const TaskResult *r = &res[t];
            swax_str_printf(&md, "| %s | %ld | %.4f | %.4f | %.4f | %.4f |\n", r->name, r->n, r->acc,
                            stderr01(r->acc, r->n), r->acc_norm, stderr01(r->acc_norm, r->n));
            cJSON *tj = cJSON_AddObjectToObject(ts, r->name);
            cJSON_AddNumberToObject(tj, "n", (double)r->n);
            cJSON_AddNumberToObject(tj, "acc", r->acc);
            cJSON_AddNumberToObject(tj, "acc_stderr", stderr01(r->acc, r->n));
            cJSON_AddNumberToObject(tj, "acc_norm", r->acc_norm);
            cJSON_AddNumberToObject(tj, "acc_norm_stderr", stderr01(r->acc_norm, r->n));
        }
        char *txt = cJSON_Print(j);
        cJSON_Delete(j);
        char p[4096];
        rc = swax_path_join(p, sizeof p, o->out_dir, "results.md");
        if (!rc) rc = swax_str_write(&md, p);
        if (!rc && !txt) rc = swax_error(SWAX_E_NOMEM, "results.json");
        if (!rc) rc = swax_path_join(p, sizeof p, o->out_dir, "results.json");
        if (!rc) rc = swax_write_file_atomic(p, txt, strlen(txt));
        if (!rc && !o->quiet) fputs(md.p, stdout);
        free(txt);
        swax_str_free(&md);
    }
    free(res);
    return rc;
}
