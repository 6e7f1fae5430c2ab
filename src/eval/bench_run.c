/* bench_run.c — `swax eval bench`: every task of a run, its few-shot prompts,
 * scoring, and the reports (samples.jsonl, results.md, results.json), with
 * progress and ETA on stderr. docs/benchmarks.md describes each task. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/bench.h"
#include "infer/infer.h"

/* ---- results --------------------------------------------------------------------------- */

typedef struct {
    char task[32], group[96], metric[32];
    double sum, sumsq;
    long n;
} Row;

typedef struct {
    const SwaxBenchOpts *o;
    SwaxBenchLM lm;
    Row *rows;
    int n_rows, cap_rows;
    SwaxStr jsonl;
    SwaxProgress pr;
    int sandbox_runs, net_isolated, pid_isolated, uid_dropped, warned;
} Run;

static int add(Run *r, const char *task, const char *group, const char *metric, double v) {
    for (int i = 0; i < r->n_rows; i++) {
        Row *w = &r->rows[i];
        if (!strcmp(w->task, task) && !strcmp(w->group, group) && !strcmp(w->metric, metric)) {
            w->sum += v, w->sumsq += v * v, w->n++;
            return 0;
        }
    }
    if (r->n_rows == r->cap_rows) {
        int cap = r->cap_rows ? 2 * r->cap_rows : 32;
        Row *nr = realloc(r->rows, (size_t)cap * sizeof *nr);
        if (!nr) return swax_error(SWAX_E_NOMEM, "results");
        r->rows = nr, r->cap_rows = cap;
    }
    Row *w = &r->rows[r->n_rows++];
    memset(w, 0, sizeof *w);
    snprintf(w->task, sizeof w->task, "%s", task);
    snprintf(w->group, sizeof w->group, "%s", group);
    snprintf(w->metric, sizeof w->metric, "%s", metric);
    w->sum = v, w->sumsq = v * v, w->n = 1;
    return 0;
}

/* A value for the task overall and for each part of its group ("hard/long": "hard" and "long"). */
static int add_all(Run *r, const char *task, const SwaxBenchItem *it, const char *metric, double v) {
    SWAX_TRY(add(r, task, "", metric, v));
    if (!it->group) return 0;
    char g[96];
    snprintf(g, sizeof g, "%s", it->group);
    if (strchr(g, '/'))
        for (char *s = strtok(g, "/"); s; s = strtok(NULL, "/")) SWAX_TRY(add(r, task, s, metric, v));
    else
        SWAX_TRY(add(r, task, g, metric, v));
    return 0;
}

static double row_mean(const Row *w) { return w->n ? w->sum / w->n : NAN; }
/* Standard error of the mean (for 0/1 values: sqrt(p(1-p)/(n-1)), as the harness reports). */
static double row_se(const Row *w) {
    if (w->n < 2) return NAN;
    double m = w->sum / w->n, var = (w->sumsq - w->n * m * m) / (w->n - 1);
    return var > 0 ? sqrt(var / w->n) : 0;
}

static int emit(Run *r, cJSON *j) {
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!t) return swax_error(SWAX_E_NOMEM, "samples.jsonl");
    int rc = swax_str_printf(&r->jsonl, "%s\n", t);
    free(t);
    return rc;
}

static void add_text(cJSON *j, const char *key, const char *s) {
    SwaxStr c = {0};
    swax_str_append_utf8(&c, s ? s : "", s ? strlen(s) : 0);
    cJSON_AddStringToObject(j, key, c.p ? c.p : "");
    swax_str_free(&c);
}

/* ---- few-shot ----------------------------------------------------------------------------- */

/* K solved examples other than item i, drawn with a fixed seed per (task, item);
 * MBPP with 3 shots uses its standard prompt problems 2, 3, 4 when present. */
static int fewshot(const Run *r, const SwaxBenchTask *t, const SwaxBenchSet *set, long i, int k, SwaxStr *out) {
    swax_str_clear(out);
    if (k <= 0 || set->n < 2) return 0;
    long picked[64];
    int n = 0;
    if (!strcmp(t->name, "mbpp") && k == 3) {
        for (int want = 2; want <= 4; want++)
            for (long j = 0; j < set->n; j++)
                if (set->v[j].code_id == want && j != i && n < 3) picked[n++] = j;
        if (n < 3) n = 0;
    }
    if (!n) {
        if (k > 64) k = 64;
        if (k > set->n - 1) k = (int)(set->n - 1);
        uint64_t h = 1469598103934665603ull;
        for (const char *p = t->name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
        SwaxRng rng;
        swax_rng_seed(&rng, r->o->seed, h ^ (uint64_t)i);
        while (n < k) {
            long j = (long)(swax_rng_u64(&rng) % (uint64_t)set->n);
            int dup = j == i;
            for (int q = 0; q < n; q++) dup |= picked[q] == j;
            if (!dup && set->v[j].shot) picked[n++] = j;
            else if (!set->v[j].shot) k--; /* items without a solved form (LongBench) */
        }
    }
    for (int q = 0; q < n; q++) swax_str_printf(out, "%s\n\n", set->v[picked[q]].shot);
    return out->failed ? swax_error(SWAX_E_NOMEM, "few-shot prompt") : 0;
}

/* ---- multiple choice ------------------------------------------------------------------------- */

static int argmax(const double *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static int run_mc(Run *r, const SwaxBenchTask *t, const SwaxBenchItem *it, const char *prefix) {
    const int K = it->n_choices, partial = t->kind == SWAX_BENCH_PARTIAL;
    const char **ctx = calloc((size_t)K, sizeof *ctx), **cont = calloc((size_t)K, sizeof *cont);
    double *ll = calloc((size_t)K * 3, sizeof *ll);
    SwaxStr *texts = calloc((size_t)K, sizeof *texts);
    int rc = ctx && cont && ll && texts ? 0 : swax_error(SWAX_E_NOMEM, "choices");
    for (int k = 0; !rc && k < K; k++) {
        swax_str_printf(&texts[k], "%s%s", prefix, partial ? it->choices[k] : it->context);
        if (texts[k].failed) rc = swax_error(SWAX_E_NOMEM, "context");
        ctx[k] = texts[k].p;
        cont[k] = partial ? it->suffix : it->choices[k];
    }
    if (!rc) rc = swax_bench_loglik(&r->lm, ctx, cont, K, ll, NULL, NULL);
    if (!rc) {
        double *nc = ll + K, *nb = ll + 2 * K;
        for (int k = 0; k < K; k++) {
            long ch = swax_bench_chars(cont[k]);
            nc[k] = ll[k] / (double)(ch > 0 ? ch : 1);
            nb[k] = ll[k] / (double)strlen(cont[k]);
        }
        int p = argmax(ll, K), pn = argmax(nc, K), pb = argmax(nb, K);
        rc = add_all(r, t->name, it, "acc", p == it->answer);
        if (!rc && !partial && strcmp(t->name, "longbench_v2")) {
            rc = add_all(r, t->name, it, "acc_norm", pn == it->answer);
            if (!rc) rc = add_all(r, t->name, it, "acc_bytes", pb == it->answer);
        }
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "task", t->name);
        add_text(j, "id", it->id);
        if (it->group) add_text(j, "group", it->group);
        cJSON_AddNumberToObject(j, "answer", it->answer);
        cJSON_AddNumberToObject(j, "pred", p);
        if (!partial) cJSON_AddNumberToObject(j, "pred_norm", pn), cJSON_AddNumberToObject(j, "pred_bytes", pb);
        cJSON_AddItemToObject(j, "loglikelihoods", cJSON_CreateDoubleArray(ll, K));
        cJSON_AddBoolToObject(j, "correct", p == it->answer);
        if (!rc) rc = emit(r, j);
        else cJSON_Delete(j);
    }
    for (int k = 0; texts && k < K; k++) swax_str_free(&texts[k]);
    free(texts), free(ctx), free(cont), free(ll);
    return rc;
}

/* ---- generation ---------------------------------------------------------------------------------- */

/* Our LongBench prompts by metric family ({context}, {input}); --prompts replaces them. */
static const char *lb_template(const char *metric) {
    if (!strcmp(metric, "rouge") || !strcmp(metric, "rouge_zh")) return "{context}\n\n{input}\nSummary:";
    if (!strcmp(metric, "classification")) return "{context}\n{input}";
    if (!strcmp(metric, "code_sim")) return "{context}{input}";
    return "Read the text below and answer the question as briefly as possible.\n\n{context}\n\nQuestion: {input}\nAnswer:";
}

static int fill_template(const char *tmpl, const char *ctx, const char *input, SwaxStr *out) {
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{context}", 9)) swax_str_puts(out, ctx), p += 9;
        else if (!strncmp(p, "{input}", 7)) swax_str_puts(out, input), p += 7;
        else swax_str_append(out, p++, 1);
    }
    return out->failed ? swax_error(SWAX_E_NOMEM, "prompt") : 0;
}

/* The metrics a generated answer gets: the task's, or the item's group's (LongBench). */
static void gen_metrics(const SwaxBenchTask *t, const SwaxBenchItem *it, const char **m, int *n) {
    if (it->metric && !strcmp(it->metric, "contains")) m[0] = "contains", *n = 1;
    else if (it->metric) m[0] = it->metric, *n = 1;
    else m[0] = "exact_match", m[1] = "f1", *n = 2;
    (void)t;
}

static int run_gen(Run *r, const SwaxBenchTask *t, const SwaxBenchSet *set, long a, long b, const cJSON *tmpls,
                   SwaxStr *prefixes) {
    const int n = (int)(b - a);
    const char **prompts = calloc((size_t)n, sizeof *prompts);
    SwaxStr *ps = calloc((size_t)n, sizeof *ps), *outs = calloc((size_t)n, sizeof *outs);
    int rc = prompts && ps && outs ? 0 : swax_error(SWAX_E_NOMEM, "generation");
    const char *stops[8];
    int ns = 0;
    for (int s = 0; s < 6 && t->stops[s]; s++) stops[ns++] = t->stops[s];
    for (int i = 0; !rc && i < n; i++) {
        const SwaxBenchItem *it = &set->v[a + i];
        swax_str_puts(&ps[i], prefixes[i].p ? prefixes[i].p : "");
        if (it->doc) {
            const char *tm = NULL;
            char ds[96];
            snprintf(ds, sizeof ds, "%s", it->group ? it->group : "");
            size_t dl = strlen(ds);
            if (dl > 2 && !strcmp(ds + dl - 2, "_e")) ds[dl - 2] = 0;
            const cJSON *tj = tmpls ? cJSON_GetObjectItemCaseSensitive(tmpls, ds) : NULL;
            tm = cJSON_IsString(tj) ? tj->valuestring : lb_template(it->metric);
            rc = fill_template(tm, it->doc, it->query, &ps[i]);
        } else {
            swax_str_puts(&ps[i], it->prompt);
        }
        prompts[i] = ps[i].p;
    }
    /* LongBench's few-shot sets and classification answer on one line */
    const SwaxBenchItem *first = &set->v[a];
    if (first->metric && (!strcmp(first->metric, "classification") || !strcmp(first->group, "samsum") ||
                          !strcmp(first->group, "triviaqa")))
        stops[ns++] = "\n";
    int max_new = r->o->max_new > 0 ? r->o->max_new : t->max_new;
    if (!r->o->max_new && first->metric && (!strcmp(first->metric, "rouge") || !strcmp(first->metric, "rouge_zh")))
        max_new = 256;
    SwaxBenchGenOpts g = {stops, ns, max_new, 0, 1};
    /* one batch per LongBench data set: stops and lengths are per set */
    if (!rc) rc = swax_bench_generate(&r->lm, prompts, n, &g, NULL, outs);
    for (int i = 0; !rc && i < n; i++) {
        const SwaxBenchItem *it = &set->v[a + i];
        const char *m[2];
        int nm = 0;
        gen_metrics(t, it, m, &nm);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "task", t->name);
        add_text(j, "id", it->id);
        if (it->group) add_text(j, "group", it->group);
        cJSON *gj = cJSON_AddArrayToObject(j, "golds");
        for (int k = 0; k < it->n_golds && k < 16; k++) {
            SwaxStr c = {0};
            swax_str_append_utf8(&c, it->golds[k], strlen(it->golds[k]));
            cJSON_AddItemToArray(gj, cJSON_CreateString(c.p ? c.p : ""));
            swax_str_free(&c);
        }
        add_text(j, "output", outs[i].p);
        cJSON *sj = cJSON_AddObjectToObject(j, "scores");
        for (int k = 0; !rc && k < nm; k++) {
            double v = swax_bench_metric(m[k], outs[i].p ? outs[i].p : "", it);
            const char *name = !strcmp(m[k], "contains") ? "acc" : m[k];
            cJSON_AddNumberToObject(sj, name, v);
            rc = add_all(r, t->name, it, name, v);
        }
        if (!rc) rc = emit(r, j);
        else cJSON_Delete(j);
    }
    for (int i = 0; ps && i < n; i++) swax_str_free(&ps[i]);
    for (int i = 0; outs && i < n; i++) swax_str_free(&outs[i]);
    free(ps), free(outs), free(prompts);
    return rc;
}

/* ---- code ------------------------------------------------------------------------------------------- */

static int run_code(Run *r, const SwaxBenchTask *t, const SwaxBenchItem *it, const char *prefix, SwaxRng *rng) {
    const int ns = r->o->samples > 0 ? r->o->samples : 1;
    SwaxStr prompt = {0}, prog = {0};
    swax_str_printf(&prompt, "%s%s", prefix, it->prompt);
    SwaxStr *outs = calloc((size_t)ns, sizeof *outs);
    const char **ps = calloc((size_t)ns, sizeof *ps);
    int *passed = calloc((size_t)ns, sizeof *passed);
    int rc = outs && ps && passed && !prompt.failed ? 0 : swax_error(SWAX_E_NOMEM, "code");
    const char *stops[8];
    int nst = 0;
    for (int s = 0; s < 6 && t->stops[s]; s++) stops[nst++] = t->stops[s];
    SwaxBenchGenOpts g = {stops, nst, r->o->max_new > 0 ? r->o->max_new : t->max_new,
                          ns > 1 ? (r->o->temperature > 0 ? r->o->temperature : 0.8f) : 0, 0.95f};
    for (int i = 0; i < ns; i++) ps[i] = prompt.p;
    for (int a = 0; !rc && a < ns; a += r->lm.n_seqs) {
        int nb = ns - a < r->lm.n_seqs ? ns - a : r->lm.n_seqs;
        rc = swax_bench_generate(&r->lm, ps + a, nb, &g, rng, outs + a);
    }
    int c = 0;
    SwaxSandboxResult sr;
    memset(&sr, 0, sizeof sr);
    cJSON *j = cJSON_CreateObject(), *cj = cJSON_CreateArray(), *pj = cJSON_CreateArray();
    for (int i = 0; !rc && i < ns; i++) {
        swax_str_clear(&prog);
        swax_str_printf(&prog, "%s%s%s", it->prelude ? it->prelude : "", outs[i].p ? outs[i].p : "", it->program);
        if (prog.failed) rc = swax_error(SWAX_E_NOMEM, "program");
        if (!rc) rc = swax_sandbox_run(&r->o->sandbox, prog.p, &sr);
        if (rc) break;
        r->sandbox_runs++;
        r->net_isolated += sr.net_isolated, r->pid_isolated += sr.pid_isolated, r->uid_dropped += sr.uid_dropped;
        if (!sr.net_isolated && !r->warned) {
            r->warned = 1;
            swax_progress_note(&r->pr, "warning: the kernel refused a new network namespace: generated code runs "
                                       "WITH network access (reported in results.md)");
        }
        passed[i] = sr.passed;
        c += sr.passed;
        SwaxStr cl = {0};
        swax_str_append_utf8(&cl, outs[i].p ? outs[i].p : "", outs[i].n);
        cJSON_AddItemToArray(cj, cJSON_CreateString(cl.p ? cl.p : ""));
        swax_str_free(&cl);
        cJSON_AddItemToArray(pj, cJSON_CreateBool(sr.passed));
    }
    if (!rc) {
        cJSON_AddStringToObject(j, "task", t->name);
        add_text(j, "id", it->id);
        cJSON_AddItemToObject(j, "completions", cj);
        cJSON_AddItemToObject(j, "passed", pj);
        cj = pj = NULL;
        add_text(j, "last_output", sr.output);
        if (sr.timed_out) cJSON_AddBoolToObject(j, "timed_out", 1);
        double p1 = swax_bench_pass_at_k(ns, c, 1);
        cJSON_AddNumberToObject(j, "pass@1", p1);
        rc = add_all(r, t->name, it, "pass@1", p1);
        static const int ks[] = {5, 10, 100};
        for (int q = 0; !rc && q < 3; q++)
            if (ns >= ks[q]) {
                char name[16];
                snprintf(name, sizeof name, "pass@%d", ks[q]);
                rc = add_all(r, t->name, it, name, swax_bench_pass_at_k(ns, c, ks[q]));
            }
        if (!rc) rc = emit(r, j), j = NULL;
    }
    cJSON_Delete(j), cJSON_Delete(cj), cJSON_Delete(pj);
    for (int i = 0; outs && i < ns; i++) swax_str_free(&outs[i]);
    free(outs), free(ps), free(passed);
    swax_str_free(&prompt), swax_str_free(&prog);
    return rc;
}

/* ---- a task --------------------------------------------------------------------------------------------- */

typedef struct {
    const SwaxBenchTask *t;
    SwaxBenchSet set;
    long *eval;  /* indices of the items evaluated */
    long n_eval;
} Loaded;

static int load_job(const SwaxBenchOpts *o, const SwaxBenchJob *jb, Loaded *L) {
    L->t = jb->task;
    int rc = 0;
    if (!strcmp(jb->task->name, "babilong")) {
        if (!o->n_lengths) return swax_error(SWAX_E_USAGE, "babilong needs lengths");
        int per = o->babilong_n > 0 ? o->babilong_n : 10;
        for (int q = 1; !rc && q <= 5; q++)
            for (int l = 0; !rc && l < o->n_lengths; l++)
                rc = swax_babilong_make(o->tok, o->essay, q, o->lengths[l], per, o->seed, &L->set);
    } else {
        rc = swax_bench_load(jb->task, jb->data, &L->set);
    }
    if (rc) return rc;
    L->eval = calloc((size_t)L->set.n, sizeof *L->eval);
    if (!L->eval) return swax_error(SWAX_E_NOMEM, "items");
    /* MBPP: its test split (task ids 11..510) when the file holds the other splits too */
    int split = 0;
    if (!strcmp(jb->task->name, "mbpp"))
        for (long i = 0; i < L->set.n; i++) split |= L->set.v[i].code_id >= 0 && (L->set.v[i].code_id < 11 || L->set.v[i].code_id > 510);
    for (long i = 0; i < L->set.n; i++) {
        int id = L->set.v[i].code_id;
        if (split && (id < 11 || id > 510)) continue;
        L->eval[L->n_eval++] = i;
    }
    if (o->limit > 0 && L->n_eval > o->limit) L->n_eval = o->limit;
    if (!L->n_eval) return swax_error(SWAX_E_INPUT, "%s: no items to evaluate", jb->task->name);
    return 0;
}

static int run_task(Run *r, const Loaded *L, const cJSON *tmpls) {
    const SwaxBenchTask *t = L->t;
    const SwaxBenchOpts *o = r->o;
    const int shots = o->shots >= 0 ? o->shots : t->default_shots;
    int rc = 0;
    SwaxStr prefix = {0};
    SwaxRng rng;
    swax_rng_seed(&rng, o->seed, 0xC0DE);
    if (t->kind == SWAX_BENCH_GEN) {
        const int B = r->lm.n_seqs;
        SwaxStr *pre = calloc((size_t)B, sizeof *pre);
        long *idx = calloc((size_t)B, sizeof *idx);
        SwaxBenchSet view = L->set; /* items in evaluation order, batched by group */
        if (!pre || !idx) rc = swax_error(SWAX_E_NOMEM, "batch");
        for (long a = 0; !rc && a < L->n_eval;) {
            long b = a + 1;
            const char *g0 = L->set.v[L->eval[a]].group;
            while (b < L->n_eval && b - a < B && ((!g0 && !L->set.v[L->eval[b]].group) ||
                                                   (g0 && L->set.v[L->eval[b]].group && !strcmp(g0, L->set.v[L->eval[b]].group))))
                b++;
            /* the batch's items, copied in a row */
            SwaxBenchItem *tmp = calloc((size_t)(b - a), sizeof *tmp);
            if (!tmp) {
                rc = swax_error(SWAX_E_NOMEM, "batch");
                break;
            }
            for (long i = a; !rc && i < b; i++) {
                tmp[i - a] = L->set.v[L->eval[i]];
                swax_str_clear(&pre[i - a]);
                rc = fewshot(r, t, &L->set, L->eval[i], shots, &pre[i - a]);
            }
            view.v = tmp, view.n = b - a;
            if (!rc) rc = run_gen(r, t, &view, 0, b - a, tmpls, pre);
            free(tmp);
            swax_progress_add(&r->pr, b - a, (double)(b - a));
            a = b;
        }
        for (int i = 0; pre && i < B; i++) swax_str_free(&pre[i]);
        free(pre), free(idx);
    } else {
        for (long e = 0; !rc && e < L->n_eval; e++) {
            const SwaxBenchItem *it = &L->set.v[L->eval[e]];
            rc = fewshot(r, t, &L->set, L->eval[e], shots, &prefix);
            if (!rc) rc = t->kind == SWAX_BENCH_CODE ? run_code(r, t, it, prefix.p ? prefix.p : "", &rng)
                                                     : run_mc(r, t, it, prefix.p ? prefix.p : "");
            if (rc) rc = swax_error_wrap(rc, "%s: item %s", t->name, it->id ? it->id : "?");
            swax_progress_add(&r->pr, 1, 1);
        }
    }
    swax_str_free(&prefix);
    return rc;
}

/* ---- reports --------------------------------------------------------------------------------------------- */

static int write_reports(Run *r, const Loaded *L, int n_tasks, double secs) {
    const SwaxBenchOpts *o = r->o;
    SwaxStr md = {0};
    swax_str_printf(&md, "# Benchmarks\n\nmodel `%s`, window %d, seed %llu, shots %s; %ld prompt tokens in %.1f s.\n\n",
                    o->model_name, r->lm.window, (unsigned long long)o->seed, o->shots >= 0 ? "as given" : "each task's default",
                    r->lm.tokens, secs);
    if (o->shots >= 0) swax_str_printf(&md, "Few-shot examples per prompt: %d.\n\n", o->shots);
    if (r->sandbox_runs) {
        swax_str_printf(&md, "Code ran in the sandbox %d time(s): network namespace %s, PID namespace %s, as nobody %s.\n\n",
                        r->sandbox_runs, r->net_isolated == r->sandbox_runs ? "yes" : "**NO: code had network access**",
                        r->pid_isolated == r->sandbox_runs ? "yes" : "no", r->uid_dropped == r->sandbox_runs ? "yes" : "no");
    }
    swax_str_puts(&md, "| task | group | metric | value | ± | n |\n|---|---|---|---:|---:|---:|\n");
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", o->model_name);
    cJSON_AddNumberToObject(j, "window", r->lm.window);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "shots", o->shots);
    cJSON_AddNumberToObject(j, "seconds", secs);
    cJSON_AddNumberToObject(j, "prompt_tokens", (double)r->lm.tokens);
    if (r->sandbox_runs) {
        cJSON *sb = cJSON_AddObjectToObject(j, "sandbox");
        cJSON_AddNumberToObject(sb, "runs", r->sandbox_runs);
        cJSON_AddBoolToObject(sb, "network_isolated", r->net_isolated == r->sandbox_runs);
        cJSON_AddBoolToObject(sb, "pid_namespace", r->pid_isolated == r->sandbox_runs);
        cJSON_AddBoolToObject(sb, "uid_dropped", r->uid_dropped == r->sandbox_runs);
    }
    cJSON *ts = cJSON_AddObjectToObject(j, "tasks");
    for (int t = 0; t < n_tasks; t++) {
        const char *name = L[t].t->name;
        cJSON *tj = cJSON_AddObjectToObject(ts, name);
        cJSON_AddNumberToObject(tj, "n", (double)L[t].n_eval);
        cJSON *gj = NULL;
        for (int pass = 0; pass < 2; pass++) /* the task's rows first, then its groups */
            for (int i = 0; i < r->n_rows; i++) {
                const Row *w = &r->rows[i];
                if (strcmp(w->task, name) || (pass == 0) != (w->group[0] == 0)) continue;
                double m = row_mean(w), se = row_se(w);
                swax_str_printf(&md, "| %s | %s | %s | %.4f | %s%.4f | %ld |\n", name, w->group[0] ? w->group : "–",
                                w->metric, m, isnan(se) ? "" : "", isnan(se) ? 0.0 : se, w->n);
                cJSON *dst = tj;
                if (w->group[0]) {
                    if (!gj) gj = cJSON_AddObjectToObject(tj, "groups");
                    dst = cJSON_GetObjectItemCaseSensitive(gj, w->group);
                    if (!dst) dst = cJSON_AddObjectToObject(gj, w->group);
                }
                char k[64];
                cJSON_AddNumberToObject(dst, w->metric, m);
                snprintf(k, sizeof k, "%s_stderr", w->metric);
                if (!isnan(se)) cJSON_AddNumberToObject(dst, k, se);
                snprintf(k, sizeof k, "%s_n", w->metric);
                cJSON_AddNumberToObject(dst, k, (double)w->n);
            }
    }
    char path[4096];
    int rc = swax_path_join(path, sizeof path, o->out_dir, "results.md");
    if (!rc) rc = swax_str_write(&md, path);
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!rc && !txt) rc = swax_error(SWAX_E_NOMEM, "results.json");
    if (!rc) rc = swax_path_join(path, sizeof path, o->out_dir, "results.json");
    if (!rc) rc = swax_write_file_atomic(path, txt, strlen(txt));
    if (!rc) rc = swax_path_join(path, sizeof path, o->out_dir, "samples.jsonl");
    if (!rc) rc = swax_str_write(&r->jsonl, path);
    if (!rc && !o->quiet) fputs(md.p, stdout);
    free(txt);
    swax_str_free(&md);
    return rc;
}

int swax_eval_bench(const SwaxBenchOpts *o) {
    if (o->n_jobs < 1) return swax_error(SWAX_E_USAGE, "bench: no tasks");
    SWAX_TRY(swax_mkdir_p(o->out_dir));
    Run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    Loaded *L = calloc((size_t)o->n_jobs, sizeof *L);
    cJSON *tmpls = NULL;
    int rc = L ? 0 : swax_error(SWAX_E_NOMEM, "tasks");
    if (!rc && o->prompts_json) {
        char *data;
        size_t len;
        rc = swax_read_file(o->prompts_json, &data, &len);
        if (!rc) {
            tmpls = cJSON_ParseWithLength(data, len);
            if (!cJSON_IsObject(tmpls)) rc = swax_error(SWAX_E_INPUT, "%s: expected a JSON object of data set -> prompt", o->prompts_json);
            free(data);
        }
    }
    /* every file is read (and checked) before the model runs */
    long total = 0;
    for (int t = 0; !rc && t < o->n_jobs; t++) {
        rc = load_job(o, &o->jobs[t], &L[t]);
        total += L[t].n_eval;
    }
    int batch = o->batch > 0 ? o->batch : 8;
    if (o->samples > batch) batch = o->samples;
    if (!rc) rc = swax_bench_lm_init(&r.lm, o->model, o->tok, batch, o->window, o->chunk);
    r.lm.max_prompt = o->max_prompt;
    double t0 = swax_time_sec();
    if (!rc) swax_progress_start(&r.pr, "bench", total, (double)total, o->quiet);
    for (int t = 0; !rc && t < o->n_jobs; t++) rc = run_task(&r, &L[t], tmpls);
    if (!rc) swax_progress_finish(&r.pr);
    if (!rc) rc = write_reports(&r, L, o->n_jobs, swax_time_sec() - t0);
    for (int t = 0; L && t < o->n_jobs; t++) swax_bench_set_free(&L[t].set), free(L[t].eval);
    free(L);
    cJSON_Delete(tmpls);
    swax_bench_lm_free(&r.lm);
    swax_str_free(&r.jsonl);
    free(r.rows);
    return rc;
}
