/* eval_util.c — strings, JSONL, progress bar, list flags, log-softmax and
 * tokenizer loading for the evaluations (eval_util.h). */
#include "eval/eval_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- growable string ----------------------------------------------------- */

static int str_reserve(SwaxStr *s, size_t extra) {
    if (s->failed) return SWAX_E_NOMEM;
    if (s->n + extra + 1 <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->n + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            s->failed = 1;
            return swax_error(SWAX_E_NOMEM, "string of %zu bytes", s->n + extra);
        }
        cap *= 2;
    }
    char *p = realloc(s->p, cap);
    if (!p) {
        s->failed = 1;
        return swax_error(SWAX_E_NOMEM, "string of %zu bytes", cap);
    }
    s->p = p;
    s->cap = cap;
    return 0;
}

int swax_str_append(SwaxStr *s, const char *text, size_t len) {
    SWAX_TRY(str_reserve(s, len));
    if (len) memcpy(s->p + s->n, text, len);
    s->n += len;
    s->p[s->n] = 0;
    return 0;
}

int swax_str_puts(SwaxStr *s, const char *text) { return swax_str_append(s, text, strlen(text)); }

int swax_str_printf(SwaxStr *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) return swax_error(SWAX_E_INTERNAL, "format error");
    SWAX_TRY(str_reserve(s, (size_t)need));
    va_start(ap, fmt);
    vsnprintf(s->p + s->n, (size_t)need + 1, fmt, ap);
    va_end(ap);
    s->n += (size_t)need;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t k = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!k || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    /* overlong, surrogate and out-of-range forms */
    if (k == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))) return 0;
    if (k == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))) return 0;
    return k;
}

int swax_str_append_utf8(SwaxStr *s, const char *text, size_t len) {
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_len(p + i, len - i);
        if (k) {
            SWAX_TRY(swax_str_append(s, text + i, k));
            i += k;
        } else {
            SWAX_TRY(swax_str_puts(s, "\xEF\xBF\xBD"));
            i++;
        }
    }
    return 0;
}

void swax_str_clear(SwaxStr *s) {
    s->n = 0;
    if (s->p) s->p[0] = 0;
}

void swax_str_free(SwaxStr *s) {
    free(s->p);
    memset(s, 0, sizeof *s);
}

int swax_str_write(const SwaxStr *s, const char *path) {
    if (s->failed) return swax_error(SWAX_E_NOMEM, "%s: output did not fit in memory", path);
    return swax_write_file_atomic(path, s->p ? s->p : "", s->n);
}

/* ---- JSONL --------------------------------------------------------------- */

int swax_jsonl_each(const char *path, SwaxJsonlFn fn, void *ctx) {
    char *data = NULL;
    size_t len = 0;
    SWAX_TRY(swax_read_file(path, &data, &len));
    int rc = 0;
    long line = 0;
    size_t p = 0;
    while (!rc && p < len) {
        size_t e = p;
        while (e < len && data[e] != '\n') e++;
        line++;
        size_t q = p;
        while (q < e && (data[q] == ' ' || data[q] == '\t' || data[q] == '\r')) q++;
        if (q < e) {
            const char *end = NULL;
            cJSON *item = cJSON_ParseWithLengthOpts(data + p, e - p, &end, 0);
            if (!item) {
                size_t col = end && end >= data + p ? (size_t)(end - (data + p)) + 1 : 1;
                rc = swax_error(SWAX_E_INPUT, "%s:%ld: not valid JSON (near column %zu)", path, line, col);
            } else {
                /* Trailing garbage after the value is malformed too. */
                const char *t = end ? end : data + e;
                while (t < data + e && (*t == ' ' || *t == '\t' || *t == '\r')) t++;
                if (t < data + e)
                    rc = swax_error(SWAX_E_INPUT, "%s:%ld: text after the JSON value (column %zu)", path, line,
                                    (size_t)(t - (data + p)) + 1);
                else
                    rc = fn(ctx, item, path, line);
                cJSON_Delete(item);
            }
        }
        p = e + 1;
    }
    free(data);
    return rc;
}

/* ---- progress ------------------------------------------------------------ */

static void fmt_dur(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

static void progress_print(SwaxProgress *p, int final) {
    double now = swax_time_sec(), el = now - p->t0;
    double frac = p->work_total > 0 ? p->work_done / p->work_total : 1.0;
    if (frac > 1) frac = 1;
    char e1[32], e2[32], bar[32];
    fmt_dur(e1, sizeof e1, el);
    fmt_dur(e2, sizeof e2, frac > 0 ? el * (1 - frac) / frac : -1);
    int w = 24, fill = (int)(frac * w);
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "%s%s [%s] %ld/%ld %5.1f%%  %s elapsed  ETA %s%s", p->tty ? "\r" : "", p->label, bar,
            p->items_done, p->items_total, 100 * frac, e1, final ? "0:00" : e2, p->tty ? "\033[K" : "\n");
    if (final && p->tty) fputc('\n', stderr);
    fflush(stderr);
    p->last_print = now;
}

void swax_progress_start(SwaxProgress *p, const char *label, long items, double work, int quiet) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->t0 = p->last_print = swax_time_sec();
    p->items_total = items;
    p->work_total = work;
    p->quiet = quiet;
    p->tty = isatty(2);
    if (!quiet) progress_print(p, 0);
}

void swax_progress_add(SwaxProgress *p, long items, double work) {
    p->items_done += items;
    p->work_done += work;
    if (p->quiet) return;
    double now = swax_time_sec();
    int decile = p->work_total > 0 ? (int)(10 * p->work_done / p->work_total) : 10;
    /* (the 100% line is finish's); never more than one line per SWAX_PROGRESS_INTERVAL */
    if (now - p->last_print < SWAX_PROGRESS_INTERVAL) return;
    if (p->tty || (decile < 10 && (decile > p->last_decile || now - p->last_print >= 60))) {
        p->last_decile = decile;
        progress_print(p, 0);
    }
}

void swax_progress_note(SwaxProgress *p, const char *fmt, ...) {
    if (p->quiet) return;
    if (p->tty) fprintf(stderr, "\r\033[K");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (p->tty) progress_print(p, 0);
}

void swax_progress_finish(SwaxProgress *p) {
    if (!p->quiet) progress_print(p, 1);
}

/* ---- lists --------------------------------------------------------------- */

int swax_parse_long_list(const char *flag, const char *s, long lo, long hi, long **out, int *n) {
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *q = s; *q; q++) cap += *q == ',';
    long *v = swax_calloc(cap, sizeof *v, "list");
    if (!v) return SWAX_E_NOMEM;
    const char *q = s;
    int k = 0;
    for (;;) {
        char *end;
        long x = strtol(q, &end, 10);
        if (end == q) goto bad;
        if (*end == 'k' || *end == 'K') {
            if (x > hi / 1024) goto bad;
            x *= 1024;
            end++;
        }
        if (x < lo || x > hi || (*end != ',' && *end)) goto bad;
        v[k++] = x;
        if (!*end) break;
        q = end + 1;
    }
    *out = v;
    *n = k;
    return 0;
bad:
    free(v);
    return swax_error(SWAX_E_USAGE, "%s expects a comma-separated list of integers in [%ld, %ld] "
                      "(k = 1024), got '%s'", flag, lo, hi, s);
}

int swax_parse_name_list(const char *flag, const char *s, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *q = s; *q; q++) cap += *q == ',';
    char **v = swax_calloc(cap, sizeof *v, "list");
    if (!v) return SWAX_E_NOMEM;
    int k = 0;
    const char *q = s;
    for (;;) {
        const char *e = strchr(q, ',');
        size_t len = e ? (size_t)(e - q) : strlen(q);
        if (!len) {
            swax_free_name_list(v, k);
            return swax_error(SWAX_E_USAGE, "%s: empty name in '%s'", flag, s);
        }
        v[k] = swax_calloc(len + 1, 1, "name");
        if (!v[k]) {
            swax_free_name_list(v, k);
            return SWAX_E_NOMEM;
        }
        memcpy(v[k++], q, len);
        if (!e) break;
        q = e + 1;
    }
    *out = v;
    *n = k;
    return 0;
}

void swax_free_name_list(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

void swax_fmt_tokens(char *buf, size_t cap, long n) {
    if (n >= 1024 && n % 1024 == 0) snprintf(buf, cap, "%ldk", n / 1024);
    else snprintf(buf, cap, "%ld", n);
}

/* ---- numerics ------------------------------------------------------------ */

double swax_logprob(const float *logits, int vocab_used, int target) {
    float mx = logits[0];
    for (int v = 1; v < vocab_used; v++)
        if (logits[v] > mx) mx = logits[v];
    double s = 0;
    for (int v = 0; v < vocab_used; v++) s += exp((double)logits[v] - mx);
    return (double)logits[target] - mx - log(s);
}

/* ---- tokenizers ---------------------------------------------------------- */

int swax_eval_load_tokenizer(const char *spec, const char *model_dir, SwaxTokenizer **out) {
    *out = NULL;
    struct stat st;
    if (spec && *spec) {
        if (stat(spec, &st) != 0)
            return swax_error(SWAX_E_INPUT, "%s: no such tokenizer (give a folder with tokenizer.json, or the "
                              "JSON's path; `swax tokenizer` makes one)", spec);
        return swax_tokenizer_load_json(spec, out);
    }
    if (!model_dir) return swax_error(SWAX_E_USAGE, "no --tokenizer given");
    char path[8400], dir[4200];
    SWAX_TRY(swax_checkpoint_dir(model_dir, dir, sizeof dir)); /* a run folder: its newest checkpoint */
    SWAX_TRY(swax_path_join(path, sizeof path, dir, "tokenizer.json"));
    if (stat(path, &st) != 0)
        return swax_error(SWAX_E_USAGE, "%s has no tokenizer.json: give --tokenizer DIR|JSON", model_dir);
    return swax_tokenizer_load_json(path, out);
}

int swax_byte_tokenizer(SwaxTokenizer **out) {
    uint8_t bytes[256];
    size_t offs[256];
    uint32_t lens[256];
    int32_t ids[256];
    for (int i = 0; i < 256; i++) bytes[i] = (uint8_t)i, offs[i] = (size_t)i, lens[i] = 1, ids[i] = i;
    const SwaxSpecialToken eot = {"<|endoftext|>", 256};
    return swax_tokenizer_from_tokens(bytes, offs, lens, ids, 256, "r50k", &eot, 1, "byte-level", out);
}
