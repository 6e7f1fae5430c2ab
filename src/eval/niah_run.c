/* niah_run.c — `swax eval niah`: greedy generation on the streaming state,
 * every (task, length, depth, sample), RULER scoring, and the reports
 * (samples.jsonl, results.md, results.json, heat-maps). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "eval/heatmap.h"
#include "infer/infer.h"

/* ---- greedy generation ----------------------------------------------------- */

/* Appends token id's bytes to out; 1 if the output now holds a newline
 * after non-blank text (then cut at that newline). */
static int append_token(const SwaxTokenizer *tok, int32_t id, SwaxStr *out, int *rc) {
    const char *b;
    size_t len;
    if (swax_tokenizer_token_bytes(tok, id, &b, &len) != 0) return 0; /* a hole: nothing to show */
    size_t old = out->n;
    *rc = swax_str_append(out, b, len);
    if (*rc) return 1;
    for (size_t i = old; i < out->n; i++) {
        if (out->p[i] != '\n') continue;
        int blank = 1;
        for (size_t j = 0; j < i && blank; j++)
            blank = out->p[j] == ' ' || out->p[j] == '\t' || out->p[j] == '\r' || out->p[j] == '\n';
        if (!blank) {
            out->n = i;
            out->p[i] = 0;
            return 1;
        }
    }
    return 0;
}

int swax_generate_greedy(SwaxModel *m, SwaxState *st, const SwaxTokenizer *tok, int32_t eot,
                         const SwaxTokenBuf *prompts, int n, int max_new, int chunk, SwaxStr *outs, int *n_new) {
    const SwaxConfig *c = swax_model_config(m);
    const size_t V = (size_t)c->vocab_size;
    float *logits = swax_calloc((size_t)n * V, sizeof(float), "generation logits");
    int *seqs = swax_calloc((size_t)n, sizeof(int), "generation rows");
    int32_t *next = swax_calloc((size_t)n, sizeof(int32_t), "generation tokens");
    int32_t *toks = swax_calloc((size_t)n, sizeof(int32_t), "generation tokens");
    int rc = logits && seqs && next && toks ? 0 : SWAX_E_NOMEM;
    if (!rc && n > swax_state_n_seqs(st))
        rc = swax_error(SWAX_E_USAGE, "generate: %d prompts for a state of %d sequences", n, swax_state_n_seqs(st));
    for (int i = 0; !rc && i < n; i++) {
        swax_state_reset(st, i);
        rc = swax_prefill(m, st, i, prompts[i].ids, prompts[i].n, chunk, logits + (size_t)i * V, NULL);
        if (!rc) next[i] = swax_sample(logits + (size_t)i * V, c->vocab_used, NULL, NULL);
        if (n_new) n_new[i] = 0;
    }
    /* active rows: seqs[0..na) */
    int na = 0;
    for (int i = 0; !rc && i < n; i++) seqs[na++] = i;
    for (int step = 0; !rc && step < max_new && na > 0; step++) {
        int k = 0;
        for (int r = 0; r < na; r++) {
            const int i = seqs[r];
            const int32_t t = next[i];
            if (n_new) n_new[i]++;
            if (t == eot) continue;
            int done = append_token(tok, t, &outs[i], &rc);
            if (rc) break;
            if (!done && step + 1 < max_new) seqs[k] = i, toks[k++] = t;
        }
        na = k;
        if (rc || !na) break;
        rc = swax_decode(m, st, seqs, toks, na, logits);
        for (int r = 0; !rc && r < na; r++) next[seqs[r]] = swax_sample(logits + (size_t)r * V, c->vocab_used, NULL, NULL);
    }
    free(logits);
    free(seqs);
    free(next);
    free(toks);
    return rc;
}

/* ---- the run ----------------------------------------------------------------- */

typedef struct {
    const SwaxNiahRunOpts *o;
    int window;   /* the one the state runs at */
    int truncated; /* stopped by the time limit */
    double *secs; /* (lengths) seconds spent on each length */
    long tokens;  /* prompt tokens run so far */
    double *sum;  /* (tasks, lengths, depths) summed scores */
    long *cnt;    /* same shape: samples */
    SwaxStr jsonl;
} Run;

static size_t cell(const Run *r, int t, int l, int d) {
    return ((size_t)t * r->o->n_lengths + l) * r->o->n_depths + d;
}

/* Mean score (%) over the cells selected by t, l, d (-1 = all). */
static double mean_acc(const Run *r, int t, int l, int d) {
    double s = 0;
    long n = 0;
    for (int a = 0; a < r->o->n_tasks; a++)
        for (int b = 0; b < r->o->n_lengths; b++)
            for (int c = 0; c < r->o->n_depths; c++)
                if ((t < 0 || a == t) && (l < 0 || b == l) && (d < 0 || c == d)) {
                    s += r->sum[cell(r, a, b, c)];
                    n += r->cnt[cell(r, a, b, c)];
                }
    return n ? 100 * s / n : NAN;
}

static int add_sample_json(Run *r, const SwaxNiahSample *s, int di, long k, const SwaxStr *answer, int n_new,
                           double score) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return swax_error(SWAX_E_NOMEM, "samples.jsonl");
    cJSON_AddStringToObject(j, "task", s->task->name);
    cJSON_AddNumberToObject(j, "length", (double)s->length);
    cJSON_AddNumberToObject(j, "depth", 100 * r->o->depths[di]);
    cJSON_AddNumberToObject(j, "sample", (double)k);
    cJSON_AddNumberToObject(j, "prompt_tokens", (double)s->tokens.n);
    cJSON_AddNumberToObject(j, "depth_actual", round(1e4 * s->depth_actual) / 100);
    cJSON *keys = cJSON_AddArrayToObject(j, "keys");
    for (int i = 0; i < s->n_queries; i++) cJSON_AddItemToArray(keys, cJSON_CreateString(s->keys[i]));
    cJSON *gold = cJSON_AddArrayToObject(j, "gold");
    for (int i = 0; i < s->n_golds; i++) cJSON_AddItemToArray(gold, cJSON_CreateString(s->golds[i]));
    SwaxStr clean = {0};
    int rc = swax_str_append_utf8(&clean, answer->p ? answer->p : "", answer->n);
    cJSON_AddStringToObject(j, "answer", clean.p ? clean.p : "");
    swax_str_free(&clean);
    cJSON_AddNumberToObject(j, "new_tokens", n_new);
    cJSON_AddNumberToObject(j, "score", score);
    cJSON_AddBoolToObject(j, "correct", score >= 1);
    if (r->o->save_prompts) cJSON_AddStringToObject(j, "prompt", s->prompt.p);
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!txt || rc) {
        free(txt);
        return rc ? rc : swax_error(SWAX_E_NOMEM, "samples.jsonl");
    }
    rc = swax_str_puts(&r->jsonl, txt);
    if (!rc) rc = swax_str_puts(&r->jsonl, "\n");
    free(txt);
    return rc;
}

/* One batch: samples [k0, k0 + nb) of a cell. */
static int run_batch(Run *r, SwaxState *st, int t, int l, int d, long k0, int nb, SwaxProgress *pr) {
    const SwaxNiahRunOpts *o = r->o;
    const SwaxNiahTask *task = o->tasks[t];
    SwaxNiahSample *s = calloc((size_t)nb, sizeof *s);
    SwaxTokenBuf *prompts = calloc((size_t)nb, sizeof *prompts);
    SwaxStr *outs = calloc((size_t)nb, sizeof *outs);
    int *n_new = calloc((size_t)nb, sizeof *n_new);
    int rc = s && prompts && outs && n_new ? 0 : swax_error(SWAX_E_NOMEM, "NIAH batch");
    for (int i = 0; !rc && i < nb; i++) {
        uint64_t stream = swax_niah_stream(swax_niah_task_index(task), o->lengths[l], o->depths[d], k0 + i);
        rc = swax_niah_make(&o->gen, task, o->lengths[l], o->depths[d], o->seed, stream, &s[i]);
        if (rc) rc = swax_error_wrap(rc, "%s at length %ld", task->name, o->lengths[l]);
        else prompts[i] = s[i].tokens;
    }
    int32_t eot = swax_tokenizer_eot(o->tok);
    if (eot < 0) eot = swax_model_config(o->model)->eot_token;
    if (!rc) rc = swax_generate_greedy(o->model, st, o->tok, eot, prompts, nb, o->max_new, o->chunk, outs, n_new);
    double work = 0;
    for (int i = 0; !rc && i < nb; i++) {
        const char *golds[SWAX_NIAH_MAX_GOLDS];
        for (int g = 0; g < s[i].n_golds; g++) golds[g] = s[i].golds[g];
        double score = swax_niah_score(outs[i].p ? outs[i].p : "", golds, s[i].n_golds);
        r->sum[cell(r, t, l, d)] += score;
        r->cnt[cell(r, t, l, d)]++;
        rc = add_sample_json(r, &s[i], d, k0 + i, &outs[i], n_new[i], score);
        work += (double)s[i].tokens.n + o->max_new;
        r->tokens += (long)s[i].tokens.n;
    }
    if (!rc) swax_progress_add(pr, nb, work);
    for (int i = 0; s && i < nb; i++) swax_niah_sample_free(&s[i]);
    for (int i = 0; outs && i < nb; i++) swax_str_free(&outs[i]);
    free(s);
    free(prompts);
    free(outs);
    free(n_new);
    return rc;
}

static int write_reports(const Run *r, double secs) {
    const SwaxNiahRunOpts *o = r->o;
    char path[4096], lb[32];
    SwaxStr md = {0};
    swax_str_printf(&md, "# RULER NIAH\n\nmodel `%s`, window %d, %d sample(s) per cell, seed %llu, up to %d new "
                    "tokens (greedy)\n\n", o->model_name, r->window, o->samples, (unsigned long long)o->seed, o->max_new);
    swax_str_puts(&md, "Accuracy (%) by task and prompt length (mean over depths and samples).\n\n| task |");
    for (int l = 0; l < o->n_lengths; l++) swax_fmt_tokens(lb, sizeof lb, o->lengths[l]), swax_str_printf(&md, " %s |", lb);
    swax_str_puts(&md, " mean |\n|---|");
    for (int l = 0; l <= o->n_lengths; l++) swax_str_puts(&md, "---:|");
    swax_str_puts(&md, "\n");
    for (int t = 0; t <= o->n_tasks; t++) {
        int tt = t < o->n_tasks ? t : -1;
        swax_str_printf(&md, "| %s |", tt >= 0 ? o->tasks[t]->name : "**mean**");
        for (int l = 0; l <= o->n_lengths; l++) swax_str_printf(&md, " %.1f |", mean_acc(r, tt, l < o->n_lengths ? l : -1, -1));
        swax_str_puts(&md, "\n");
    }
    swax_str_puts(&md, "\nAccuracy (%) by needle depth and prompt length (mean over tasks).\n\n| depth |");
    for (int l = 0; l < o->n_lengths; l++) swax_fmt_tokens(lb, sizeof lb, o->lengths[l]), swax_str_printf(&md, " %s |", lb);
    swax_str_puts(&md, "\n|---|");
    for (int l = 0; l < o->n_lengths; l++) swax_str_puts(&md, "---:|");
    swax_str_puts(&md, "\n");
    for (int d = 0; d < o->n_depths; d++) {
        swax_str_printf(&md, "| %g%% |", 100 * o->depths[d]);
        for (int l = 0; l < o->n_lengths; l++) swax_str_printf(&md, " %.1f |", mean_acc(r, -1, l, d));
        swax_str_puts(&md, "\n");
    }
    swax_str_printf(&md, "\n%ld prompt tokens in %.1f s (%.0f tokens/s including generation).\n", r->tokens, secs,
                    secs > 0 ? r->tokens / secs : 0);
    if (r->truncated)
        swax_str_printf(&md, "\n**Stopped at the time limit (%.0f s)**: cells not run are shown as nan.\n",
                        o->time_limit);
    int rc = swax_path_join(path, sizeof path, o->out_dir, "results.md");
    if (!rc) rc = swax_str_write(&md, path);
    swax_str_free(&md);

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", o->model_name);
    cJSON_AddNumberToObject(j, "window", r->window);
    cJSON_AddNumberToObject(j, "samples", o->samples);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "max_new", o->max_new);
    cJSON_AddNumberToObject(j, "accuracy", mean_acc(r, -1, -1, -1));
    cJSON_AddBoolToObject(j, "truncated", r->truncated);
    cJSON_AddNumberToObject(j, "seconds", secs);
    cJSON *ls = cJSON_AddArrayToObject(j, "lengths");
    for (int l = 0; l < o->n_lengths; l++) cJSON_AddItemToArray(ls, cJSON_CreateNumber((double)o->lengths[l]));
    cJSON *sl = cJSON_AddArrayToObject(j, "seconds_by_length");
    for (int l = 0; l < o->n_lengths; l++) cJSON_AddItemToArray(sl, cJSON_CreateNumber(r->secs[l]));
    cJSON *ds = cJSON_AddArrayToObject(j, "depths");
    for (int d = 0; d < o->n_depths; d++) cJSON_AddItemToArray(ds, cJSON_CreateNumber(100 * o->depths[d]));
    /* tasks: name -> {"accuracy": %, "by_length": [...], "cells": [[depth x] per length]} */
    cJSON *ts = cJSON_AddObjectToObject(j, "tasks");
    for (int t = 0; t < o->n_tasks; t++) {
        cJSON *tj = cJSON_AddObjectToObject(ts, o->tasks[t]->name);
        cJSON_AddNumberToObject(tj, "accuracy", mean_acc(r, t, -1, -1));
        cJSON *bl = cJSON_AddArrayToObject(tj, "by_length");
        cJSON *cs = cJSON_AddArrayToObject(tj, "cells");
        for (int l = 0; l < o->n_lengths; l++) {
            cJSON_AddItemToArray(bl, cJSON_CreateNumber(mean_acc(r, t, l, -1)));
            cJSON *row = cJSON_CreateArray();
            for (int d = 0; d < o->n_depths; d++) cJSON_AddItemToArray(row, cJSON_CreateNumber(mean_acc(r, t, l, d)));
            cJSON_AddItemToArray(cs, row);
        }
    }
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt && !rc) rc = swax_error(SWAX_E_NOMEM, "results.json");
    if (!rc) rc = swax_path_join(path, sizeof path, o->out_dir, "results.json");
    if (!rc) rc = swax_write_file_atomic(path, txt, strlen(txt));
    free(txt);

    /* heat-maps: all tasks, then each task when there are several */
    char **xt = calloc((size_t)o->n_lengths, sizeof *xt), **yt = calloc((size_t)o->n_depths, sizeof *yt);
    double *v = calloc((size_t)o->n_lengths * o->n_depths, sizeof *v);
    if (!rc && (!xt || !yt || !v)) rc = swax_error(SWAX_E_NOMEM, "heatmap");
    for (int l = 0; !rc && l < o->n_lengths; l++) {
        xt[l] = malloc(32);
        if (xt[l]) swax_fmt_tokens(xt[l], 32, o->lengths[l]);
        else rc = SWAX_E_NOMEM;
    }
    for (int d = 0; !rc && d < o->n_depths; d++) {
        yt[d] = malloc(32);
        if (yt[d]) snprintf(yt[d], 32, "%g%%", 100 * o->depths[d]);
        else rc = SWAX_E_NOMEM;
    }
    for (int t = -1; !rc && t < o->n_tasks; t++) {
        if (t >= 0 && o->n_tasks == 1) break;
        for (int d = 0; d < o->n_depths; d++)
            for (int l = 0; l < o->n_lengths; l++) v[(size_t)d * o->n_lengths + l] = mean_acc(r, t, l, d);
        char name[128], title[256];
        snprintf(name, sizeof name, t < 0 ? "heatmap.svg" : "heatmap_%s.svg", t < 0 ? "" : o->tasks[t]->name);
        snprintf(title, sizeof title, "NIAH accuracy (%%): %s, window %d", t < 0 ? "all tasks" : o->tasks[t]->name,
                 r->window);
        rc = swax_path_join(path, sizeof path, o->out_dir, name);
        if (!rc)
            rc = swax_svg_heatmap(path, title, "prompt length (tokens)", "needle depth", (const char *const *)xt,
                                  o->n_lengths, (const char *const *)yt, o->n_depths, v, 0, 100);
    }
    for (int l = 0; xt && l < o->n_lengths; l++) free(xt[l]);
    for (int d = 0; yt && d < o->n_depths; d++) free(yt[d]);
    free(xt);
    free(yt);
    free(v);
    return rc;
}

int swax_eval_niah(const SwaxNiahRunOpts *o, double *mean) {
    if (o->n_tasks < 1 || o->n_lengths < 1 || o->n_depths < 1 || o->samples < 1 || o->max_new < 1 || o->batch < 1)
        return swax_error(SWAX_E_USAGE, "niah: needs tasks, lengths, depths, samples, max_new and batch >= 1");
    const SwaxConfig *c = swax_model_config(o->model);
    if (swax_tokenizer_vocab_size(o->tok) > c->vocab_used)
        return swax_error(SWAX_E_INPUT, "tokenizer has %d ids but the model only %d: not this model's tokenizer",
                          swax_tokenizer_vocab_size(o->tok), c->vocab_used);
    SWAX_TRY(swax_mkdir_p(o->out_dir));
    Run r = {0};
    r.o = o;
    const size_t ncell = (size_t)o->n_tasks * o->n_lengths * o->n_depths;
    r.sum = calloc(ncell, sizeof *r.sum);
    r.cnt = calloc(ncell, sizeof *r.cnt);
    r.secs = calloc((size_t)o->n_lengths, sizeof *r.secs);
    SwaxState *st = NULL;
    int batch = o->batch < o->samples ? o->batch : o->samples;
    int rc = r.sum && r.cnt && r.secs ? 0 : swax_error(SWAX_E_NOMEM, "NIAH results");
    if (!rc) rc = swax_state_create(o->model, batch, o->window, &st);
    if (!rc) r.window = swax_state_window(st);
    double work = 0;
    for (int t = 0; t < o->n_tasks; t++)
        for (int l = 0; l < o->n_lengths; l++) work += (double)(o->lengths[l] + o->max_new) * o->n_depths * o->samples;
    SwaxProgress pr;
    swax_progress_start(&pr, "niah", (long)ncell * o->samples, work, o->quiet);
    double t0 = swax_time_sec();
    /* shortest length first, so that a time limit keeps whole lengths (every task, every depth) */
    for (int l = 0; !rc && !r.truncated && l < o->n_lengths; l++) {
        const double tl = swax_time_sec();
        for (int t = 0; !rc && !r.truncated && t < o->n_tasks; t++)
            for (int d = 0; !rc && !r.truncated && d < o->n_depths; d++)
                for (long k = 0; !rc && k < o->samples; k += batch) {
                    if (o->time_limit > 0 && swax_time_sec() - t0 > o->time_limit) {
                        r.truncated = 1;
                        break;
                    }
                    int nb = (int)(o->samples - k < batch ? o->samples - k : batch);
                    rc = run_batch(&r, st, t, l, d, k, nb, &pr);
                }
        r.secs[l] = swax_time_sec() - tl;
    }
    if (!rc && r.truncated && !o->quiet)
        fprintf(stderr, "\nniah: stopped at the time limit (%.0f s); the cells finished are written\n", o->time_limit);
    if (!rc) {
        swax_progress_finish(&pr);
        char path[4096];
        rc = swax_path_join(path, sizeof path, o->out_dir, "samples.jsonl");
        if (!rc) rc = swax_str_write(&r.jsonl, path);
        if (!rc) rc = write_reports(&r, swax_time_sec() - t0);
        if (!rc && mean) *mean = mean_acc(&r, -1, -1, -1);
    }
    swax_state_free(st);
    swax_str_free(&r.jsonl);
    free(r.sum);
    free(r.cnt);
    free(r.secs);
    return rc;
}
