/* train_options.c — a run's options as JSON: RUN/train.json (what `--resume`
 * reads back) and the copy in every checkpoint. See train.h and
 * docs/training.md. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "io/config_json.h"
#include "train/train.h"

#define FORMAT "swax-train"
#define VERSION 1

typedef enum { K_STR, K_INT, K_LONG, K_DBL, K_FLT } Kind;

typedef struct {
    const char *name;
    Kind kind;
    size_t off, cap; /* cap: size of a string field */
} Key;

#define S(n, f) {n, K_STR, offsetof(SwaxTrainOptions, f), sizeof(((SwaxTrainOptions *)0)->f)}
#define I(n, f) {n, K_INT, offsetof(SwaxTrainOptions, f), 0}
#define L(n, f) {n, K_LONG, offsetof(SwaxTrainOptions, f), 0}
#define D(n, f) {n, K_DBL, offsetof(SwaxTrainOptions, f), 0}
#define F(n, f) {n, K_FLT, offsetof(SwaxTrainOptions, f), 0}

/* The scalar keys, in file order; set, windows, anneal_mode, doc_mask, seed
 * and nan are written by hand. */
static const Key k_keys[] = {
    S("train_data", train_data), S("val_data", val_data),     S("tokenizer", tokenizer),
    S("preset", preset),         S("config", config_path),    S("init_from", init_from),
    I("batch", B),               I("seq_len", T),             I("grad_accum", accum),
    L("steps", steps),           L("warmup", warmup),         D("lr", lr),
    D("min_lr", min_lr),         F("beta1", adam.beta1),      F("beta2", adam.beta2),
    F("eps", adam.eps),          F("weight_decay", adam.weight_decay), F("clip", clip),
    D("anneal", sched.anneal),   I("chunk", chunk),           L("eval_every", eval_every),
    L("eval_batches", eval_batches), L("ckpt_every", ckpt_every), I("keep", keep_ckpts),
};
#define N_KEYS ((int)(sizeof k_keys / sizeof k_keys[0]))

/* A JSON number that reads back to exactly v (raw text: cJSON may round). */
static cJSON *exact(double v, int is_float) {
    char buf[64];
    if (!isfinite(v)) return NULL;
    if (is_float) swax_json_fmt_float(buf, sizeof buf, (float)v);
    else swax_json_fmt_double(buf, sizeof buf, v);
    return cJSON_CreateRaw(buf);
}

static int add(cJSON *obj, const char *name, cJSON *item) {
    if (item && cJSON_AddItemToObject(obj, name, item)) return 1;
    cJSON_Delete(item);
    return 0;
}

static int make_abs(char *field, size_t cap, const char *name) {
    if (!field[0] || field[0] == '/') return 0;
    char cwd[4096], buf[8200];
    if (!getcwd(cwd, sizeof cwd)) return swax_error(SWAX_E_IO, "getcwd: %s", strerror(errno));
    int n = snprintf(buf, sizeof buf, "%s/%s", cwd, field[0] == '.' && field[1] == '/' ? field + 2 : field);
    if (n < 0 || (size_t)n >= cap) return swax_error(SWAX_E_USAGE, "%s: path too long as an absolute path", name);
    memcpy(field, buf, (size_t)n + 1);
    return 0;
}

int swax_train_options_absolute(SwaxTrainOptions *o) {
    SWAX_TRY(make_abs(o->train_data, sizeof o->train_data, "train data"));
    SWAX_TRY(make_abs(o->val_data, sizeof o->val_data, "validation data"));
    SWAX_TRY(make_abs(o->tokenizer, sizeof o->tokenizer, "tokenizer"));
    SWAX_TRY(make_abs(o->config_path, sizeof o->config_path, "config"));
    SWAX_TRY(make_abs(o->init_from, sizeof o->init_from, "init-from"));
    return 0;
}

int swax_train_options_json(const SwaxTrainOptions *o, char **out) {
    *out = NULL;
    SwaxTrainOptions a = *o;
    SWAX_TRY(swax_train_options_absolute(&a));
    cJSON *root = cJSON_CreateObject(), *sets = NULL, *ws = NULL, *ps = NULL;
    int ok = root && cJSON_AddStringToObject(root, "format", FORMAT) && cJSON_AddNumberToObject(root, "version", VERSION);
    for (int i = 0; ok && i < N_KEYS; i++) {
        const Key *k = &k_keys[i];
        const char *p = (const char *)&a + k->off;
        if ((k->kind == K_DBL && !isfinite(*(const double *)p)) || (k->kind == K_FLT && !isfinite(*(const float *)p))) {
            cJSON_Delete(root);
            return swax_error(SWAX_E_USAGE, "training option %s is not a finite number", k->name);
        }
        switch (k->kind) {
        case K_STR: ok = cJSON_AddStringToObject(root, k->name, p) != NULL; break;
        case K_INT: ok = cJSON_AddNumberToObject(root, k->name, *(const int *)p) != NULL; break;
        case K_LONG: ok = cJSON_AddNumberToObject(root, k->name, (double)*(const long *)p) != NULL; break;
        case K_DBL: ok = add(root, k->name, exact(*(const double *)p, 0)); break;
        case K_FLT: ok = add(root, k->name, exact((double)*(const float *)p, 1)); break;
        }
    }
    ok = ok && (sets = cJSON_AddArrayToObject(root, "set")) && (ws = cJSON_AddArrayToObject(root, "windows")) &&
         (ps = cJSON_AddArrayToObject(root, "window_probs"));
    for (int i = 0; ok && i < a.nsets; i++) ok = cJSON_AddItemToArray(sets, cJSON_CreateString(a.sets[i]));
    for (int i = 0; ok && i < a.sched.n; i++)
        ok = cJSON_AddItemToArray(ws, cJSON_CreateNumber(a.sched.windows[i])) &&
             cJSON_AddItemToArray(ps, exact(a.sched.probs[i], 0));
    ok = ok && cJSON_AddStringToObject(root, "anneal_mode", a.sched.mode == SWAX_ANNEAL_SWITCH ? "switch" : "linear") &&
         cJSON_AddBoolToObject(root, "doc_mask", a.doc_mask != 0) &&
         cJSON_AddStringToObject(root, "nan", a.nan_policy == SWAX_NAN_SKIP ? "skip" : "stop") &&
         cJSON_AddStringToObject(root, "device", swax_train_device(a.device)) &&
         cJSON_AddBoolToObject(root, "recompute", a.recompute != 0);
    /* a seed past 2^53 would not survive a JSON number: digits in a string then */
    if (ok && a.seed <= (1ull << 53)) {
        ok = cJSON_AddNumberToObject(root, "seed", (double)a.seed) != NULL;
    } else if (ok) {
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)a.seed);
        ok = cJSON_AddStringToObject(root, "seed", buf) != NULL;
    }
    char *txt = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!txt) return swax_error(SWAX_E_NOMEM, "training options: out of memory");
    size_t n = strlen(txt);
    char *res = malloc(n + 2);
    if (res) memcpy(res, txt, n), res[n] = '\n', res[n + 1] = 0;
    cJSON_free(txt);
    if (!res) return swax_error(SWAX_E_NOMEM, "training options: out of memory");
    *out = res;
    return 0;
}

int swax_train_options_save(const char *path, const SwaxTrainOptions *o) {
    char *txt;
    SWAX_TRY(swax_train_options_json(o, &txt));
    int rc = swax_write_file_atomic(path, txt, strlen(txt));
    free(txt);
    return rc;
}

/* An integral JSON number in [lo, hi]. */
static int get_num(const cJSON *v, double lo, double hi, double *out) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || floor(v->valuedouble) != v->valuedouble ||
        v->valuedouble < lo || v->valuedouble > hi)
        return 0;
    *out = v->valuedouble;
    return 1;
}

#define BAD(...) (rc = swax_error(SWAX_E_INPUT, __VA_ARGS__))

static int from_json(const cJSON *root, const char *path, SwaxTrainOptions *o) {
    int rc = 0;
    if (!cJSON_IsObject(root)) return BAD("%s: not a JSON object", path);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, FORMAT) != 0)
        return BAD("%s: \"format\" is not \"" FORMAT "\": not the options of a swax training run", path);
    double d;
    if (!get_num(cJSON_GetObjectItemCaseSensitive(root, "version"), 1, INT_MAX, &d))
        return BAD("%s: \"version\" must be a positive integer", path);
    if (d > VERSION) return BAD("%s: version %g is newer than this swax reads (%d)", path, d, VERSION);
    for (int i = 0; i < N_KEYS; i++) {
        const Key *k = &k_keys[i];
        char *p = (char *)o + k->off;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, k->name);
        if (!v) return BAD("%s: missing \"%s\"", path, k->name);
        switch (k->kind) {
        case K_STR:
            if (!cJSON_IsString(v)) return BAD("%s: \"%s\" must be a string", path, k->name);
            if (strlen(v->valuestring) >= k->cap)
                return BAD("%s: \"%s\" is longer than %zu characters", path, k->name, k->cap - 1);
            memcpy(p, v->valuestring, strlen(v->valuestring) + 1);
            break;
        case K_INT:
            if (!get_num(v, INT_MIN, INT_MAX, &d)) return BAD("%s: \"%s\" must be an integer", path, k->name);
            *(int *)p = (int)d;
            break;
        case K_LONG:
            if (!get_num(v, -9007199254740992.0, 9007199254740992.0, &d))
                return BAD("%s: \"%s\" must be an integer", path, k->name);
            *(long *)p = (long)d;
            break;
        case K_DBL:
        case K_FLT:
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
                (k->kind == K_FLT && !(fabs(v->valuedouble) < 0x1.ffffffp127)))
                return BAD("%s: \"%s\" must be a finite number", path, k->name);
            if (k->kind == K_DBL) *(double *)p = v->valuedouble;
            else *(float *)p = (float)v->valuedouble;
            break;
        }
    }
    if (!o->train_data[0]) return BAD("%s: \"train_data\" is empty", path);
    const cJSON *sets = cJSON_GetObjectItemCaseSensitive(root, "set");
    if (!cJSON_IsArray(sets)) return BAD("%s: \"set\" must be an array of \"key=value\" strings", path);
    int n = cJSON_GetArraySize(sets);
    if (n > (int)(sizeof o->sets / sizeof o->sets[0])) return BAD("%s: \"set\" has %d entries (at most 32)", path, n);
    o->nsets = 0;
    for (const cJSON *s = sets->child; s; s = s->next) {
        if (!cJSON_IsString(s) || strlen(s->valuestring) >= sizeof o->sets[0] || !strchr(s->valuestring, '='))
            return BAD("%s: \"set\" entry %d is not a \"key=value\" string", path, o->nsets + 1);
        memcpy(o->sets[o->nsets++], s->valuestring, strlen(s->valuestring) + 1);
    }
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(root, "windows");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(root, "window_probs");
    n = cJSON_GetArraySize(ws);
    if (!cJSON_IsArray(ws) || !cJSON_IsArray(ps) || n < 1 || n > SWAX_MAX_WINDOWS || cJSON_GetArraySize(ps) != n)
        return BAD("%s: \"windows\" and \"window_probs\" must be arrays of the same length, 1 to %d", path,
                   SWAX_MAX_WINDOWS);
    o->sched.n = n;
    for (int i = 0; i < n; i++) {
        const cJSON *w = cJSON_GetArrayItem(ws, i), *q = cJSON_GetArrayItem(ps, i);
        if (!get_num(w, 1, 1 << 30, &d)) return BAD("%s: \"windows\" entry %d must be an integer >= 1", path, i + 1);
        o->sched.windows[i] = (int)d;
        if (!cJSON_IsNumber(q) || !(q->valuedouble >= 0 && q->valuedouble <= 1))
            return BAD("%s: \"window_probs\" entry %d must be in [0, 1]", path, i + 1);
        o->sched.probs[i] = q->valuedouble;
    }
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(root, "anneal_mode");
    if (cJSON_IsString(am) && !strcmp(am->valuestring, "linear")) o->sched.mode = SWAX_ANNEAL_LINEAR;
    else if (cJSON_IsString(am) && !strcmp(am->valuestring, "switch")) o->sched.mode = SWAX_ANNEAL_SWITCH;
    else return BAD("%s: \"anneal_mode\" must be \"linear\" or \"switch\"", path);
    const cJSON *dm = cJSON_GetObjectItemCaseSensitive(root, "doc_mask");
    if (!cJSON_IsBool(dm)) return BAD("%s: \"doc_mask\" must be true or false", path);
    o->doc_mask = cJSON_IsTrue(dm);
    const cJSON *np = cJSON_GetObjectItemCaseSensitive(root, "nan");
    if (cJSON_IsString(np) && !strcmp(np->valuestring, "stop")) o->nan_policy = SWAX_NAN_STOP;
    else if (cJSON_IsString(np) && !strcmp(np->valuestring, "skip")) o->nan_policy = SWAX_NAN_SKIP;
    else return BAD("%s: \"nan\" must be \"stop\" or \"skip\"", path);
    /* where it ran (optional: runs from before they were saved ran on the CPU, without recompute) */
    const cJSON *dv = cJSON_GetObjectItemCaseSensitive(root, "device");
    if (dv && !(cJSON_IsString(dv) && swax_train_device_known(dv->valuestring)))
        return BAD("%s: \"device\" must be \"cpu\", \"cpu-bf16\", \"cuda\" or \"cuda-fp32\"", path);
    snprintf(o->device, sizeof o->device, "%s", dv && strcmp(dv->valuestring, "cpu") ? dv->valuestring : "");
    const cJSON *rcp = cJSON_GetObjectItemCaseSensitive(root, "recompute");
    if (rcp && !cJSON_IsBool(rcp)) return BAD("%s: \"recompute\" must be true or false", path);
    o->recompute = cJSON_IsTrue(rcp);
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
    char *end = NULL;
    if (get_num(seed, 0, 9007199254740992.0, &d)) {
        o->seed = (uint64_t)d;
    } else if (cJSON_IsString(seed) && seed->valuestring[0] >= '0' && seed->valuestring[0] <= '9') {
        errno = 0;
        o->seed = strtoull(seed->valuestring, &end, 10);
        if (errno || *end) return BAD("%s: \"seed\" must be a non-negative integer", path);
    } else {
        return BAD("%s: \"seed\" must be a non-negative integer", path);
    }
    if (swax_window_schedule_validate(&o->sched)) return swax_error_wrap(SWAX_E_INPUT, "%s", path);
    return 0;
}

int swax_train_options_load(const char *path, SwaxTrainOptions *o) {
    struct stat st;
    if (stat(path, &st) != 0) return swax_error(SWAX_E_INPUT, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20))
        return swax_error(SWAX_E_INPUT, "%s: not a training options file (not a regular file under 1 MiB)", path);
    char *text;
    size_t len;
    SWAX_TRY(swax_read_file(path, &text, &len));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int rc;
    if (!root) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        rc = swax_error(SWAX_E_INPUT, "%s: not valid JSON (near byte %zu): corrupt or truncated", path, at);
    } else {
        SwaxTrainOptions t;
        memset(&t, 0, sizeof t);
        rc = from_json(root, path, &t);
        if (!rc) {
            /* what is not saved: where the run is and per-invocation choices */
            memcpy(t.out, o->out, sizeof t.out);
            t.threads = o->threads, t.resume = o->resume, t.stop_after = o->stop_after, t.quiet = o->quiet;
            *o = t;
        }
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}
