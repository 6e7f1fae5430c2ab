/* cmd_study.c — `swax study`: the window study's bookkeeping (issue 12, docs/window_study.md).
 *
 *   swax study collect  one trained + evaluated model -> ONE small JSON file (training log summary,
 *                       config, parameters, NIAH table, loss by position, learning curve)
 *   swax study report   every such JSON file of a folder -> report.md + SVG charts (mean and
 *                       spread over seeds per schedule); works with any subset of runs
 *
 * The training and evaluation themselves are scripts/window_study.sh's, through `swax train` and
 * `swax eval`; this file only reads their outputs (log.jsonl, train.json, config.json,
 * model.safetensors' header, results.json, samples.jsonl, ppl.json). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/svg.h"

#define STUDY_FORMAT "swax-window-study"
#define MAXL 16   /* NIAH lengths */
#define MAXC 64   /* learning-curve points */
#define MAXB 256  /* loss buckets */

/* ---- small helpers ------------------------------------------------------------------------ */

static cJSON *read_json(const char *path, int required) {
    char *text;
    size_t len;
    if (swax_read_file(path, &text, &len)) {
        if (required) swax_error(SWAX_E_INPUT, "%s: cannot read", path);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j && required) swax_error(SWAX_E_INPUT, "%s: not valid JSON", path);
    return j;
}

static double num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}
static const char *str(const cJSON *o, const char *k, const char *dflt) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : dflt;
}
static cJSON *item(const cJSON *o, const char *k) { return o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL; }

static int write_json(const char *path, const cJSON *j) {
    char *s = cJSON_Print(j);
    if (!s) return swax_error(SWAX_E_NOMEM, "JSON text");
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return swax_error(SWAX_E_NOMEM, "JSON text");
    }
    t[n] = '\n', t[n + 1] = 0;
    int rc = swax_write_file_atomic(path, t, n + 1);
    free(t);
    return rc;
}

/* Parameters of a checkpoint: the sum of the tensor sizes in its safetensors header. */
static double count_params(const char *ckpt) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/model.safetensors", ckpt) >= (int)sizeof path) return NAN;
    FILE *f = fopen(path, "rb");
    if (!f) return NAN;
    unsigned char h8[8];
    double total = NAN;
    if (fread(h8, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | h8[i];
        char *hdr = n < (1u << 28) ? malloc(n + 1) : NULL;
        if (hdr && fread(hdr, 1, n, f) == n) {
            cJSON *j = cJSON_ParseWithLength(hdr, n);
            const cJSON *t;
            total = 0;
            cJSON_ArrayForEach(t, j) {
                const cJSON *shape = item(t, "shape"), *d;
                if (!cJSON_IsArray(shape)) continue;
                double p = 1;
                cJSON_ArrayForEach(d, shape) p *= d->valuedouble;
                total += p;
            }
            cJSON_Delete(j);
        }
        free(hdr);
    }
    fclose(f);
    return total;
}

/* ---- collect -------------------------------------------------------------------------------- */

/* An input folder named by `flag` must exist (SWAX_E_INPUT naming it otherwise). */
static int need_dir(const char *flag, const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) return swax_error(SWAX_E_INPUT, "%s %s: cannot open: %s", flag, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return swax_error(SWAX_E_INPUT, "%s %s: not a folder", flag, dir);
    return 0;
}

/* ... and hold `name`, the JSON file that the flag's part of the output is made from. */
static int need_file(const char *flag, const char *dir, const char *name) {
    char path[4096];
    SWAX_TRY(swax_path_join(path, sizeof path, dir, name));
    if (access(path, R_OK) != 0)
        return swax_error(SWAX_E_INPUT, "%s %s: cannot read %s: %s", flag, dir, name, strerror(errno));
    cJSON *j = read_json(path, 1);
    if (!j) return swax_error_wrap(SWAX_E_INPUT, "%s", flag);
    cJSON_Delete(j);
    return 0;
}

/* log.jsonl -> a summary of training: steps, tokens, speed, a down-sampled loss curve, the
 * validation losses, the windows drawn. */
static cJSON *summarise_log(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    cJSON *o = cJSON_CreateObject(), *val = cJSON_CreateArray();
    size_t cap = 1 << 16, n = 0;
    double *loss = malloc(cap * sizeof *loss), *stp = malloc(cap * sizeof *stp);
    long last_step = 0, wins[64] = {0}, winc[64] = {0};
    int nw = 0;
    double tokens = 0, time_s = 0, tps_sum = 0, tps_n = 0, last_window = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        double step = num(j, "step", -1);
        if (item(j, "val_loss")) {
            cJSON *v = cJSON_CreateObject();
            cJSON_AddNumberToObject(v, "step", step);
            cJSON_AddNumberToObject(v, "val_loss", num(j, "val_loss", NAN));
            cJSON_AddItemToArray(val, v);
        } else if (item(j, "loss")) {
            if (n == cap) {
                cap *= 2;
                loss = realloc(loss, cap * sizeof *loss), stp = realloc(stp, cap * sizeof *stp);
                SWAX_ASSERT(loss && stp);
            }
            loss[n] = num(j, "loss", NAN), stp[n] = step, n++;
            last_step = (long)step;
            tokens = num(j, "tokens", tokens), time_s = num(j, "time_s", time_s);
            if (n > 10 && item(j, "tok_per_s")) tps_sum += num(j, "tok_per_s", 0), tps_n++;
            long w = (long)num(j, "window", 0);
            last_window = (double)w;
            int k = 0;
            while (k < nw && wins[k] != w) k++;
            if (k == nw && nw < 64) wins[nw++] = w;
            if (k < 64) winc[k]++;
        }
        cJSON_Delete(j);
    }
    fclose(f);
    cJSON_AddNumberToObject(o, "steps", (double)last_step);
    cJSON_AddNumberToObject(o, "tokens", tokens);
    cJSON_AddNumberToObject(o, "time_s", time_s);
    cJSON_AddNumberToObject(o, "tok_per_s", tps_n ? tps_sum / tps_n : (time_s > 0 ? tokens / time_s : 0));
    double tail = 0;
    size_t m = n < 50 ? n : 50;
    for (size_t i = n - m; i < n; i++) tail += loss[i];
    cJSON_AddNumberToObject(o, "final_loss", m ? tail / (double)m : NAN);
    cJSON_AddNumberToObject(o, "final_window", last_window);
    cJSON *wo = cJSON_AddObjectToObject(o, "windows_drawn");
    for (int k = 0; k < nw; k++) {
        char key[32];
        snprintf(key, sizeof key, "%ld", wins[k]);
        cJSON_AddNumberToObject(wo, key, (double)winc[k]);
    }
    /* at most 100 points: means of equal runs of steps */
    cJSON *lc = cJSON_AddArrayToObject(o, "loss_curve");
    size_t per = n / 100 + 1;
    for (size_t i = 0; i < n; i += per) {
        double s = 0;
        size_t k = 0;
        for (; k < per && i + k < n; k++) s += loss[i + k];
        cJSON *p = cJSON_CreateArray();
        cJSON_AddItemToArray(p, cJSON_CreateNumber(stp[i + k - 1]));
        cJSON_AddItemToArray(p, cJSON_CreateNumber(round(1e4 * s / (double)k) / 1e4));
        cJSON_AddItemToArray(lc, p);
    }
    cJSON_AddItemToObject(o, "val", val);
    free(loss), free(stp);
    return o;
}

/* NIAH: results.json's table, plus from samples.jsonl the accuracy per length over the samples
 * whose asked needle lies more than `far` tokens before the end of the prompt. */
static cJSON *summarise_niah(const char *dir, double far) {
    char path[4096];
    snprintf(path, sizeof path, "%s/results.json", dir);
    cJSON *r = read_json(path, 0);
    if (!r) return NULL;
    cJSON *o = cJSON_CreateObject();
    const cJSON *lens = item(r, "lengths"), *t;
    int nl = cJSON_GetArraySize(lens);
    if (nl > MAXL) nl = MAXL;
    double L[MAXL], fs[MAXL] = {0}, fn[MAXL] = {0}, mean[MAXL] = {0};
    for (int i = 0; i < nl; i++) L[i] = cJSON_GetArrayItem(lens, i)->valuedouble;
    cJSON_AddItemToObject(o, "lengths", cJSON_Duplicate(lens, 1));
    cJSON_AddItemToObject(o, "depths", cJSON_Duplicate(item(r, "depths"), 1));
    cJSON_AddNumberToObject(o, "samples", num(r, "samples", 0));
    cJSON_AddNumberToObject(o, "window", num(r, "window", 0));
    cJSON_AddNumberToObject(o, "accuracy", num(r, "accuracy", NAN));
    /* a run stopped at its time limit has null cells (lengths not reached): the mean there is null too */
    const cJSON *tr = item(r, "truncated");
    cJSON_AddBoolToObject(o, "truncated", cJSON_IsTrue(tr));
    cJSON *to = cJSON_AddObjectToObject(o, "tasks");
    int nt = 0, missing[MAXL] = {0};
    cJSON_ArrayForEach(t, item(r, "tasks")) {
        const cJSON *bl = item(t, "by_length");
        cJSON_AddItemToObject(to, t->string, cJSON_Duplicate(bl, 1));
        for (int i = 0; i < nl; i++) {
            const cJSON *v = cJSON_GetArrayItem(bl, i);
            if (cJSON_IsNumber(v)) mean[i] += v->valuedouble;
            else missing[i] = 1;
        }
        nt++;
    }
    cJSON *mo = cJSON_AddArrayToObject(o, "mean");
    for (int i = 0; i < nl; i++)
        cJSON_AddItemToArray(mo, nt && !missing[i] ? cJSON_CreateNumber(mean[i] / nt) : cJSON_CreateNull());
    const cJSON *sec = item(r, "seconds_by_length");
    if (cJSON_IsArray(sec)) cJSON_AddItemToObject(o, "seconds_by_length", cJSON_Duplicate(sec, 1));
    snprintf(path, sizeof path, "%s/samples.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
            cJSON *s = cJSON_Parse(line);
            if (!s) continue;
            double len = num(s, "length", 0), pt = num(s, "prompt_tokens", 0), d = num(s, "depth_actual", 0);
            for (int i = 0; i < nl; i++)
                if (L[i] == len && pt * (1 - d / 100) > far) fs[i] += num(s, "score", 0), fn[i]++;
            cJSON_Delete(s);
        }
        free(line);
        fclose(f);
        cJSON *fo = cJSON_AddObjectToObject(o, "far");
        cJSON_AddNumberToObject(fo, "min_distance", far);
        cJSON *fa = cJSON_AddArrayToObject(fo, "accuracy"), *fc = cJSON_AddArrayToObject(fo, "samples");
        for (int i = 0; i < nl; i++) {
            cJSON_AddItemToArray(fa, fn[i] ? cJSON_CreateNumber(round(1e3 * fs[i] / fn[i]) / 10) : cJSON_CreateNull());
            cJSON_AddItemToArray(fc, cJSON_CreateNumber(fn[i]));
        }
    }
    cJSON_Delete(r);
    return o;
}

static cJSON *summarise_ppl(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/ppl.json", dir);
    cJSON *r = read_json(path, 0);
    if (!r) return NULL;
    cJSON *o = cJSON_CreateObject(), *b;
    cJSON_AddNumberToObject(o, "overall_loss", num(r, "loss", NAN));
    cJSON_AddNumberToObject(o, "predictions", num(r, "predictions", 0));
    cJSON_AddNumberToObject(o, "seq_len", num(r, "seq_len", 0));
    cJSON_AddNumberToObject(o, "window", num(r, "window", 0));
    cJSON_AddStringToObject(o, "mode", str(r, "mode", ""));
    cJSON *from = cJSON_AddArrayToObject(o, "from"), *loss = cJSON_AddArrayToObject(o, "loss"),
          *cnt = cJSON_AddArrayToObject(o, "predictions_per_bucket");
    cJSON_ArrayForEach(b, item(r, "buckets")) {
        cJSON_AddItemToArray(from, cJSON_CreateNumber(num(b, "from", 0)));
        double l = num(b, "loss", NAN);
        cJSON_AddItemToArray(loss, isfinite(l) ? cJSON_CreateNumber(round(1e4 * l) / 1e4) : cJSON_CreateNull());
        cJSON_AddItemToArray(cnt, cJSON_CreateNumber(num(b, "predictions", 0)));
    }
    cJSON_Delete(r);
    return o;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names of the entries of `dir` starting with `prefix` (and not ending in .tmp). */
static int list_dir(const char *dir, const char *prefix, const char *suffix, char ***out) {
    DIR *d = opendir(dir);
    *out = NULL;
    if (!d) return 0;
    struct dirent *e;
    int n = 0, cap = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), sl = suffix ? strlen(suffix) : 0;
        if (strncmp(e->d_name, prefix, strlen(prefix)) || e->d_name[0] == '.') continue;
        if (suffix && (l < sl || strcmp(e->d_name + l - sl, suffix))) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **t = realloc(*out, (size_t)cap * sizeof *t);
            SWAX_ASSERT(t);
            *out = t;
        }
        (*out)[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(*out, (size_t)n, sizeof **out, cmp_str);
    return n;
}
static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

/* The learning curve: CURVE/step_<N>/results.json (NIAH at the training length of checkpoint N)
 * and, when there, CURVE/step_<N>/choice/results.json (NIAH as multiple choice). */
static cJSON *summarise_curve(const char *dir, const cJSON *train) {
    char **names;
    int n = list_dir(dir, "step_", NULL, &names);
    if (!n) return NULL;
    cJSON *a = cJSON_CreateArray();
    double tok_per_step = train ? num(train, "tokens", 0) / fmax(1, num(train, "steps", 1)) : 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        cJSON *r = summarise_niah(path, 0);
        if (!r) continue;
        double step = atof(names[i] + 5);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "step", step);
        cJSON_AddNumberToObject(p, "tokens", step * tok_per_step);
        cJSON_AddNumberToObject(p, "niah", num(r, "accuracy", NAN));
        cJSON_AddItemToObject(p, "tasks", cJSON_Duplicate(item(r, "tasks"), 1));
        /* multiple choice over the answer and 3 distractors (step_<N>/choice: `eval choice`), if run:
         * partial retrieval that exact generation does not show (chance 0.25) */
        snprintf(path, sizeof path, "%s/%s/choice/results.json", dir, names[i]);
        cJSON *ch = read_json(path, 0);
        if (ch) {
            const cJSON *t0 = item(ch, "tasks") ? item(ch, "tasks")->child : NULL;
            if (t0) cJSON_AddNumberToObject(p, "choice", 100 * num(t0, "acc", NAN)); /* %, as niah */
            cJSON_Delete(ch);
        }
        /* the validation loss logged at the same step, if any */
        const cJSON *v;
        cJSON_ArrayForEach(v, item(train, "val")) if (num(v, "step", -1) == step)
            cJSON_AddNumberToObject(p, "val_loss", num(v, "val_loss", NAN));
        cJSON_AddItemToArray(a, p);
        cJSON_Delete(r);
    }
    free_list(names, n);
    return a;
}

static int study_collect(int argc, char **argv) {
    const char *run = NULL, *niah = NULL, *ppl = NULL, *curve = NULL, *meta = NULL, *out = NULL;
    double far = 0;
    static const struct option opts[] = {{"run", required_argument, 0, 'r'},   {"niah", required_argument, 0, 'n'},
                                         {"ppl", required_argument, 0, 'p'},   {"curve", required_argument, 0, 'c'},
                                         {"meta", required_argument, 0, 'm'},  {"far", required_argument, 0, 'f'},
                                         {"out", required_argument, 0, 'o'},   {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': run = optarg; break;
        case 'n': niah = optarg; break;
        case 'p': ppl = optarg; break;
        case 'c': curve = optarg; break;
        case 'm': meta = optarg; break;
        case 'f':
            if (cli_parse_double("study collect", "--far", optarg, &far)) return SWAX_E_USAGE;
            break;
        case 'o': out = optarg; break;
        case 'h':
            printf("usage: swax study collect --run DIR --out FILE.json [--meta FILE.json] [--niah DIR]\n"
                   "                          [--ppl DIR] [--curve DIR] [--far TOKENS]\n\n"
                   "One trained and evaluated model -> one small JSON file: the fields of --meta (name,\n"
                   "schedule, seed, wall time, ...), the training log's summary (DIR/log.jsonl), the run's\n"
                   "options (DIR/train.json), the checkpoint's config and parameter count (DIR/latest),\n"
                   "the NIAH table (--niah: an `eval niah` folder; `far` = accuracy over the samples whose\n"
                   "needle is more than --far tokens from the prompt's end), the loss by position (--ppl:\n"
                   "an `eval ppl` folder) and the learning curve (--curve: step_<N>/ `eval niah` folders).\n"
                   "Every folder named must exist, and --niah / --ppl must hold their results.json /\n"
                   "ppl.json: else exit 3 and nothing is written.\n");
            return 0;
        default: return SWAX_E_USAGE;
        }
    }
    if (!run || !out) {
        fprintf(stderr, "swax study collect: error: --run and --out are required\n");
        return SWAX_E_USAGE;
    }
    /* every input named must be there before anything is read or written (a path mistyped would
     * otherwise give a JSON without that part, which the report would count as a run) */
    int rc = need_dir("--run", run);
    if (!rc && niah && !(rc = need_dir("--niah", niah))) rc = need_file("--niah", niah, "results.json");
    if (!rc && ppl && !(rc = need_dir("--ppl", ppl))) rc = need_file("--ppl", ppl, "ppl.json");
    if (!rc && curve) rc = need_dir("--curve", curve);
    if (rc) return cli_fail("study collect", rc);
    cJSON *o = NULL;
    if (meta) {
        o = read_json(meta, 1);
        if (!o) return cli_fail("study collect", SWAX_E_INPUT);
    } else {
        o = cJSON_CreateObject();
    }
    char path[4096];
    if (!item(o, "format")) cJSON_AddStringToObject(o, "format", STUDY_FORMAT);
    if (!item(o, "version")) cJSON_AddNumberToObject(o, "version", 1);
    snprintf(path, sizeof path, "%s/train.json", run);
    cJSON *tj = read_json(path, 0);
    if (tj) {
        /* the options that define the run (paths are the machine's and left out) */
        static const char *keep[] = {"preset", "set", "batch", "seq_len", "grad_accum", "steps", "warmup", "lr", "min_lr",
                                     "weight_decay", "windows", "probs", "anneal", "anneal_mode", "chunk", "doc_mask",
                                     "seed", "eval_every", "eval_batches", "ckpt_every", "device"};
        cJSON *opt = cJSON_AddObjectToObject(o, "options");
        for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
            if (item(tj, keep[i])) cJSON_AddItemToObject(opt, keep[i], cJSON_Duplicate(item(tj, keep[i]), 1));
        cJSON_Delete(tj);
    }
    snprintf(path, sizeof path, "%s/latest", run);
    char *latest = NULL;
    size_t ll;
    if (!swax_read_file(path, &latest, &ll)) {
        while (ll && (latest[ll - 1] == '\n' || latest[ll - 1] == ' ')) latest[--ll] = 0;
        char ck[4096];
        snprintf(ck, sizeof ck, "%s/%s", run, latest);
        cJSON *cfg = snprintf(path, sizeof path, "%s/config.json", ck) < (int)sizeof path ? read_json(path, 0) : NULL;
        if (cfg) cJSON_AddItemToObject(o, "config", cfg);
        cJSON_AddNumberToObject(o, "params", count_params(ck));
        cJSON_AddStringToObject(o, "checkpoint", latest);
        free(latest);
    }
    snprintf(path, sizeof path, "%s/log.jsonl", run);
    cJSON *tr = summarise_log(path);
    if (tr) cJSON_AddItemToObject(o, "train", tr);
    if (niah) {
        cJSON *n = summarise_niah(niah, far);
        if (n) cJSON_AddItemToObject(o, "niah", n);
    }
    if (ppl) {
        cJSON *p = summarise_ppl(ppl);
        if (p) cJSON_AddItemToObject(o, "loss_by_position", p);
    }
    if (curve) {
        cJSON *cv = summarise_curve(curve, tr);
        if (cv) cJSON_AddItemToObject(o, "learning_curve", cv);
    }
    rc = write_json(out, o);
    cJSON_Delete(o);
    return rc ? cli_fail("study collect", rc) : 0;
}

/* ---- report --------------------------------------------------------------------------------- */

typedef struct {
    char name[96];
    char schedule[96];
    int order;
    int n;              /* runs (seeds) */
    char seeds[128];
    double params, tokens, gpu_min, wall_s, tok_per_s;
    int nl;             /* NIAH lengths */
    double len[MAXL];
    double acc[MAXL][16], far[MAXL][16];   /* [length][run] */
    int nacc[MAXL], nfar[MAXL];
    double val[16];     /* final validation loss (training length) per run */
    int nval;
    double pos_from[MAXB], pos_loss[MAXB];  /* summed over runs */
    int pos_n[MAXB], nb;
    double curve_x[16][MAXC], curve_y[16][MAXC], curve_c[16][MAXC]; /* c: multiple choice (NaN: not run) */
    int curve_n[16];
} Group;

static const char *const ORDER[] = {"swax-w128", "swax-w512", "swax-w2048", "swax-stoch-linear", "swax-stoch-switch",
                                    "swa-w2048", "mlstm", NULL};

static void mean_sd(const double *v, int n, double *m, double *sd) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *m = n ? s / n : NAN;
    for (int i = 0; i < n; i++) q += (v[i] - *m) * (v[i] - *m);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static const char *const COLORS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static int group_of(Group *g, int *ng, const char *name) {
    for (int i = 0; i < *ng; i++)
        if (!strcmp(g[i].name, name)) return i;
    if (*ng >= 32) return -1;
    Group *x = &g[(*ng)++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->order = 100 + *ng;
    for (int k = 0; ORDER[k]; k++)
        if (!strcmp(ORDER[k], name)) x->order = k;
    return *ng - 1;
}

static int cmp_group(const void *a, const void *b) {
    const Group *x = a, *y = b;
    return x->order != y->order ? x->order - y->order : strcmp(x->name, y->name);
}

static void add_run(Group *g, const cJSON *j, const char *file) {
    const int r = g->n;
    if (r >= 16) return;
    g->n++;
    snprintf(g->schedule, sizeof g->schedule, "%s", str(j, "schedule", ""));
    char s[32];
    snprintf(s, sizeof s, "%s%g", g->seeds[0] ? "," : "", num(j, "seed", 0));
    if (strlen(g->seeds) + strlen(s) < sizeof g->seeds) strcat(g->seeds, s);
    const cJSON *tr = item(j, "train");
    g->params = num(j, "params", g->params);
    g->tokens += num(tr, "tokens", 0) / 1;
    g->tok_per_s += num(tr, "tok_per_s", 0);
    g->gpu_min += num(j, "gpu_minutes", 0);
    g->wall_s += num(j, "wall_s", 0);
    const cJSON *v = item(tr, "val");
    int nv = cJSON_GetArraySize(v);
    if (nv && g->nval < 16) g->val[g->nval++] = num(cJSON_GetArrayItem(v, nv - 1), "val_loss", NAN);
    const cJSON *n = item(j, "niah");
    if (n) {
        const cJSON *lens = item(n, "lengths"), *mean = item(n, "mean"), *far = item(item(n, "far"), "accuracy");
        for (int i = 0; i < cJSON_GetArraySize(lens) && i < MAXL; i++) {
            double L = cJSON_GetArrayItem(lens, i)->valuedouble;
            int k = 0;
            while (k < g->nl && g->len[k] != L) k++;
            if (k == g->nl) {
                if (g->nl == MAXL) continue;
                g->len[g->nl++] = L;
            }
            const cJSON *a = cJSON_GetArrayItem(mean, i), *f = cJSON_GetArrayItem(far, i);
            if (cJSON_IsNumber(a) && g->nacc[k] < 16) g->acc[k][g->nacc[k]++] = a->valuedouble;
            if (cJSON_IsNumber(f) && g->nfar[k] < 16) g->far[k][g->nfar[k]++] = f->valuedouble;
        }
    }
    const cJSON *p = item(j, "loss_by_position");
    if (p) {
        const cJSON *from = item(p, "from"), *loss = item(p, "loss");
        for (int i = 0; i < cJSON_GetArraySize(from) && i < MAXB; i++) {
            const cJSON *l = cJSON_GetArrayItem(loss, i);
            if (!cJSON_IsNumber(l)) continue;
            g->pos_from[i] = cJSON_GetArrayItem(from, i)->valuedouble;
            g->pos_loss[i] += l->valuedouble;
            g->pos_n[i]++;
            if (i + 1 > g->nb) g->nb = i + 1;
        }
    }
    const cJSON *c, *cv = item(j, "learning_curve");
    int k = 0;
    cJSON_ArrayForEach(c, cv) {
        if (k == MAXC) break;
        g->curve_x[r][k] = num(c, "tokens", 0) / 1e6;
        g->curve_y[r][k] = num(c, "niah", NAN);
        g->curve_c[r][k] = num(c, "choice", NAN);
        k++;
    }
    g->curve_n[r] = k;
    (void)file;
}

static void fmt_len(char *b, size_t cap, double L) {
    if (L >= 1024 && fmod(L, 1024) == 0) snprintf(b, cap, "%gk", L / 1024);
    else snprintf(b, cap, "%g", L);
}

static int study_report(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    double T = 0;
    static const struct option opts[] = {{"in", required_argument, 0, 'i'}, {"out", required_argument, 0, 'o'},
                                         {"train-len", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 't':
            if (cli_parse_double("study report", "--train-len", optarg, &T)) return SWAX_E_USAGE;
            break;
        case 'h':
            printf("usage: swax study report --in DIR [--out DIR] [--train-len T]\n\n"
                   "Reads every *.json of DIR written by `swax study collect` (format %s;\n"
                   "other files, and such files that hold no results, are skipped) and writes into --out\n"
                   "(default DIR): report.md (NIAH by schedule x length, mean +- standard deviation over\n"
                   "seeds; the same for needles beyond the window; losses; budget), niah_vs_length.svg,\n"
                   "niah_far_vs_length.svg, learning_curves.svg, loss_by_position.svg. Any subset of runs\n"
                   "will do.\n",
                   STUDY_FORMAT);
            return 0;
        default: return SWAX_E_USAGE;
        }
    }
    if (!in) {
        fprintf(stderr, "swax study report: error: --in is required\n");
        return SWAX_E_USAGE;
    }
    if (!out) out = in;
    if (swax_mkdir_p(out)) return cli_fail("study report", SWAX_E_IO);
    char **files;
    int nf = list_dir(in, "", ".json", &files), ng = 0, nruns = 0, nempty = 0;
    Group *g = calloc(32, sizeof *g);
    SWAX_ASSERT(g);
    for (int i = 0; i < nf; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", in, files[i]);
        cJSON *j = read_json(path, 0);
        if (!j || strcmp(str(j, "format", ""), STUDY_FORMAT)) {
            cJSON_Delete(j);
            continue;
        }
        if (!item(j, "train") && !item(j, "niah") && !item(j, "loss_by_position") && !item(j, "learning_curve")) {
            /* a run's metadata without any of its results: not a run to count */
            fprintf(stderr,
                    "swax study report: warning: %s: no results (no train, niah, loss_by_position or "
                    "learning_curve): skipped\n",
                    path);
            cJSON_Delete(j);
            nempty++;
            continue;
        }
        if (T <= 0) T = num(j, "train_len", 0);
        int k = group_of(g, &ng, str(j, "model", files[i]));
        if (k >= 0) add_run(&g[k], j, files[i]), nruns++;
        cJSON_Delete(j);
    }
    free_list(files, nf);
    if (!nruns) {
        free(g);
        return cli_fail("study report", nempty ? swax_error(SWAX_E_INPUT, "%s: no %s JSON files with results (%d without)",
                                                           in, STUDY_FORMAT, nempty)
                                               : swax_error(SWAX_E_INPUT, "%s: no %s JSON files", in, STUDY_FORMAT));
    }
    qsort(g, (size_t)ng, sizeof *g, cmp_group);
    /* the union of the lengths, sorted */
    double lens[MAXL];
    int nl = 0;
    for (int k = 0; k < ng; k++)
        for (int i = 0; i < g[k].nl; i++) {
            int d = 0;
            while (d < nl && lens[d] != g[k].len[i]) d++;
            if (d == nl && nl < MAXL) lens[nl++] = g[k].len[i];
        }
    for (int a = 0; a < nl; a++)
        for (int b = a + 1; b < nl; b++)
            if (lens[b] < lens[a]) {
                double t = lens[a];
                lens[a] = lens[b], lens[b] = t;
            }
    /* report.md */
    size_t cap = 1 << 16, n = 0;
    char *md = malloc(cap);
    SWAX_ASSERT(md);
#define P(...)                                                              \
    do {                                                                    \
        int w_ = snprintf(md + n, cap - n, __VA_ARGS__);                    \
        while (w_ >= 0 && (size_t)w_ >= cap - n) {                          \
            cap *= 2;                                                       \
            md = realloc(md, cap);                                          \
            SWAX_ASSERT(md);                                                \
            w_ = snprintf(md + n, cap - n, __VA_ARGS__);                    \
        }                                                                   \
        n += (size_t)(w_ > 0 ? w_ : 0);                                     \
    } while (0)
    P("# Window study: results\n\n%d runs of %d models from `%s` (`swax study report`; "
      "docs/window_study.md). Training length T = %g. Accuracy in %%, mean ± standard deviation over the "
      "seeds (n = the runs with that cell).\n\n",
      nruns, ng, in, T);
    for (int pass = 0; pass < 2; pass++) {
        if (!pass)
            P("## NIAH accuracy by context length (all tasks, all depths)\n\n");
        else
            P("## NIAH accuracy, needle farther back than the largest training window\n\n"
              "(Only the samples whose asked needle lies more than the window from the end of the prompt; "
              "– where there are none.)\n\n");
        P("| model | schedule | seeds |");
        for (int i = 0; i < nl; i++) {
            char b[32];
            fmt_len(b, sizeof b, lens[i]);
            P(" %s%s |", b, T > 0 ? "" : "");
            (void)0;
        }
        P("\n|---|---|---|");
        for (int i = 0; i < nl; i++) P("---:|");
        P("\n");
        if (T > 0) {
            P("| | | |");
            for (int i = 0; i < nl; i++) P(" %g× |", lens[i] / T);
            P("\n");
        }
        for (int k = 0; k < ng; k++) {
            P("| %s | `%s` | %s |", g[k].name, g[k].schedule, g[k].seeds);
            for (int i = 0; i < nl; i++) {
                int d = 0;
                while (d < g[k].nl && g[k].len[d] != lens[i]) d++;
                int cnt = d < g[k].nl ? (pass ? g[k].nfar[d] : g[k].nacc[d]) : 0;
                if (!cnt) {
                    P(" – |");
                    continue;
                }
                double m, sd;
                mean_sd(pass ? g[k].far[d] : g[k].acc[d], cnt, &m, &sd);
                if (cnt > 1) P(" %.1f ± %.1f |", m, sd);
                else P(" %.1f |", m);
            }
            P("\n");
        }
        P("\n");
    }
    P("## Loss and budget\n\n| model | runs | params (M) | tokens / run (M) | tok/s (k) | GPU-min (all runs) | "
      "val loss at T | held-out loss, positions < T | last bucket | last bucket from |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    double gpu_total = 0;
    for (int k = 0; k < ng; k++) {
        Group *x = &g[k];
        double vm, vs;
        mean_sd(x->val, x->nval, &vm, &vs);
        double first = NAN, last = NAN, last_from = NAN;
        /* buckets starting below T; the last bucket with data from every run */
        double s = 0;
        int c0 = 0;
        for (int b = 0; b < x->nb; b++)
            if (x->pos_n[b] && (T <= 0 ? b == 0 : x->pos_from[b] < T)) s += x->pos_loss[b] / x->pos_n[b], c0++;
        if (c0) first = s / c0;
        for (int b = x->nb - 1; b >= 0; b--)
            if (x->pos_n[b] == x->pos_n[0] && x->pos_n[b]) {
                last = x->pos_loss[b] / x->pos_n[b], last_from = x->pos_from[b];
                break;
            }
        gpu_total += x->gpu_min;
        char cell[48] = "–";
        if (x->nval > 1) snprintf(cell, sizeof cell, "%.3f ± %.3f", vm, vs);
        else if (x->nval) snprintf(cell, sizeof cell, "%.3f", vm);
        P("| %s | %d | %.1f | %.2f | %.0f | %.1f | %s | %.3f | %.3f | %g |\n", x->name, x->n, x->params / 1e6,
          x->tokens / x->n / 1e6, x->tok_per_s / x->n / 1e3, x->gpu_min, cell, first, last, last_from);
    }
    P("\nGPU-minutes over all recorded runs: %.1f.\n\n", gpu_total);
    P("Charts: [NIAH vs length](niah_vs_length.svg), [needle beyond the window](niah_far_vs_length.svg), "
      "[learning curves](learning_curves.svg), [loss by position](loss_by_position.svg).\n");
    char path[4096];
    snprintf(path, sizeof path, "%s/report.md", out);
    int rc = swax_write_file_atomic(path, md, n);
    free(md);
    /* charts */
    SwaxSvgSeries *s = calloc(32 * 16, sizeof *s);
    double(*xs)[MAXB] = calloc(32 * 16, sizeof *xs), (*ys)[MAXB] = calloc(32 * 16, sizeof *ys);
    SWAX_ASSERT(s && xs && ys);
    for (int pass = 0; !rc && pass < 2; pass++) {
        int ns = 0;
        for (int k = 0; k < ng; k++) {
            int m = 0;
            for (int i = 0; i < g[k].nl; i++) {
                int cnt = pass ? g[k].nfar[i] : g[k].nacc[i];
                if (!cnt) continue;
                double mm, sd;
                mean_sd(pass ? g[k].far[i] : g[k].acc[i], cnt, &mm, &sd);
                xs[ns][m] = T > 0 ? log2(g[k].len[i] / T) : log2(g[k].len[i]);
                ys[ns][m] = mm;
                m++;
            }
            /* sort by x */
            for (int a = 0; a < m; a++)
                for (int b = a + 1; b < m; b++)
                    if (xs[ns][b] < xs[ns][a]) {
                        double t = xs[ns][a];
                        xs[ns][a] = xs[ns][b], xs[ns][b] = t;
                        t = ys[ns][a], ys[ns][a] = ys[ns][b], ys[ns][b] = t;
                    }
            s[ns] = (SwaxSvgSeries){g[k].name, xs[ns], ys[ns], (size_t)m, COLORS[ns % 10], 0};
            ns++;
        }
        snprintf(path, sizeof path, "%s/%s", out, pass ? "niah_far_vs_length.svg" : "niah_vs_length.svg");
        rc = swax_svg_line_chart(path,
                                 pass ? "NIAH accuracy, needle beyond the window (mean over seeds)"
                                      : "NIAH accuracy vs context length (mean over seeds)",
                                 T > 0 ? "log2(context length / training length): 0 = 1x ... 5 = 32x" : "log2(length)",
                                 "accuracy (%)", s, ns);
    }
    if (!rc) {
        int ns = 0;
        for (int k = 0; k < ng && ns < 32 * 16; k++)
            for (int r = 0; r < g[k].n && r < 16; r++) {
                if (!g[k].curve_n[r]) continue;
                s[ns] = (SwaxSvgSeries){r ? "" : g[k].name, g[k].curve_x[r], g[k].curve_y[r], (size_t)g[k].curve_n[r],
                                        COLORS[k % 10], 0};
                ns++;
                int has_c = 0;
                for (int i = 0; i < g[k].curve_n[r]; i++) has_c |= !isnan(g[k].curve_c[r][i]);
                if (has_c && ns < 32 * 16) { /* the multiple-choice measure: markers (chance 25%) */
                    s[ns] = (SwaxSvgSeries){r ? "" : "  (markers: choice of 4)", g[k].curve_x[r], g[k].curve_c[r],
                                            (size_t)g[k].curve_n[r], COLORS[k % 10], 1};
                    ns++;
                }
            }
        snprintf(path, sizeof path, "%s/learning_curves.svg", out);
        rc = swax_svg_line_chart(path,
                                 "NIAH at 1x along training: exact (lines), choice of 4 (markers, chance 25%)",
                                 "training tokens (M)", "accuracy (%)", s, ns);
    }
    if (!rc) {
        int ns = 0;
        for (int k = 0; k < ng; k++) {
            int m = 0;
            for (int b = 0; b < g[k].nb; b++)
                if (g[k].pos_n[b]) xs[ns][m] = g[k].pos_from[b], ys[ns][m] = g[k].pos_loss[b] / g[k].pos_n[b], m++;
            if (!m) continue;
            s[ns] = (SwaxSvgSeries){g[k].name, xs[ns], ys[ns], (size_t)m, COLORS[k % 10], 0};
            ns++;
        }
        snprintf(path, sizeof path, "%s/loss_by_position.svg", out);
        rc = swax_svg_line_chart(path, "Held-out loss by position (mean over seeds)", "position (bucket start, tokens)",
                                 "loss (nats/token)", s, ns);
    }
    free(s), free(xs), free(ys), free(g);
    if (rc) return cli_fail("study report", rc);
    fprintf(stderr, "swax study report: %d runs of %d models -> %s/report.md and 4 charts\n", nruns, ng, out);
    return 0;
}

int cmd_study(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: swax study <collect|report> [options]   (--help on each)\n\n"
                   "  collect  one trained + evaluated model -> one small JSON file\n"
                   "  report   all such JSON files of a folder -> report.md + SVG charts\n\n"
                   "The window study (issue 12): scripts/window_study.sh runs it; docs/window_study.md.\n");
        return argc < 2 ? SWAX_E_USAGE : 0;
    }
    if (!strcmp(argv[1], "collect")) return study_collect(argc - 1, argv + 1);
    if (!strcmp(argv[1], "report")) return study_report(argc - 1, argv + 1);
    fprintf(stderr, "swax study: error: unknown subcommand '%s'\n", argv[1]);
    return SWAX_E_USAGE;
}
