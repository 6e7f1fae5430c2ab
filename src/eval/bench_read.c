/* bench_read.c — readers of the benchmark releases as their authors ship them
 * (docs/benchmarks.md lists each format, its fields and where to get it), and
 * the prompt each task builds from a record. Prompts follow lm-evaluation-
 * harness's templates as docs/benchmarks.md describes them.
 *
 * A file is JSONL (one record a line), a JSON list of records, a JSON object
 * holding its records under "Data" (TriviaQA), or one record (RACE's
 * per-article files); a folder is read file by file. Every problem is an
 * SWAX_E_INPUT error naming the file and the line (JSONL) or element. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/bench.h"

#define MAX_CHOICES 64

/* ---- items ------------------------------------------------------------------------ */

static void free_list(char **v, int n) {
    for (int i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

void swax_bench_set_free(SwaxBenchSet *s) {
    for (long i = 0; s->v && i < s->n; i++) {
        SwaxBenchItem *it = &s->v[i];
        free(it->id), free(it->context), free(it->suffix), free(it->prompt), free(it->prelude);
        free(it->program), free(it->shot), free(it->group), free(it->metric), free(it->doc), free(it->query);
        free_list(it->choices, it->n_choices);
        free_list(it->golds, it->n_golds);
        free_list(it->classes, it->n_classes);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

static SwaxBenchItem *new_item(SwaxBenchSet *s) {
    if (s->n == s->cap) {
        long cap = s->cap ? 2 * s->cap : 64;
        SwaxBenchItem *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        s->v = v, s->cap = cap;
    }
    SwaxBenchItem *it = &s->v[s->n++];
    memset(it, 0, sizeof *it);
    it->code_id = -1;
    return it;
}

static char *sdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static char *sfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sfmt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

#define OOM(where) swax_error(SWAX_E_NOMEM, "%s: out of memory", where)
#define BAD(where, ...) bad_record(where, __VA_ARGS__)

static int bad_record(const char *where, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_record(const char *where, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return swax_error(SWAX_E_INPUT, "%s: %s", where, msg);
}

/* ---- fields --------------------------------------------------------------------------- */

static const cJSON *field(const cJSON *j, const char *key) { return cJSON_GetObjectItemCaseSensitive(j, key); }

/* A required string field. */
static int get_str(const cJSON *j, const char *key, const char *where, const char **out) {
    const cJSON *f = field(j, key);
    *out = "";
    if (!cJSON_IsString(f) || !f->valuestring)
        return BAD(where, "field \"%s\" must be a string%s", key, f ? "" : " (missing)");
    *out = f->valuestring;
    return 0;
}

/* The first of several names that is a string (releases differ in their field names). */
static const char *any_str(const cJSON *j, const char *const *keys) {
    for (int i = 0; keys[i]; i++) {
        const cJSON *f = field(j, keys[i]);
        if (cJSON_IsString(f) && f->valuestring) return f->valuestring;
    }
    return NULL;
}

/* An integer given as a number or as a string of digits. */
static int as_int(const cJSON *f, long *out) {
    if (cJSON_IsNumber(f) && f->valuedouble == (double)(long)f->valuedouble && f->valuedouble > -1e15 &&
        f->valuedouble < 1e15) {
        *out = (long)f->valuedouble;
        return 1;
    }
    if (cJSON_IsString(f) && f->valuestring) {
        const char *s = f->valuestring;
        while (*s == ' ') s++;
        char *end;
        long v = strtol(s, &end, 10);
        while (*end == ' ' || *end == '\n' || *end == '\r') end++;
        if (end != s && !*end && v > -1000000000L && v < 1000000000L) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* A list of strings (at least `min`), copied. */
static int get_str_list(const cJSON *a, const char *key, const char *where, int min, char ***out, int *n) {
    if (!cJSON_IsArray(a)) return BAD(where, "field \"%s\" must be a list of strings", key);
    int k = cJSON_GetArraySize(a);
    if (k < 0 || k < min) return BAD(where, "field \"%s\" needs at least %d strings, has %d", key, min, k);
    if (k > 100000) return BAD(where, "field \"%s\" has %d entries", key, k);
    char **v = calloc((size_t)k + 1, sizeof *v);
    if (!v) return OOM(where);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!cJSON_IsString(e) || !e->valuestring) {
            free_list(v, i);
            return BAD(where, "field \"%s\": entry %d is not a string", key, i + 1);
        }
        if (!(v[i++] = sdup(e->valuestring))) {
            free_list(v, i);
            return OOM(where);
        }
    }
    *out = v, *n = k;
    return 0;
}

/* Choices are continuations: a space, then the text. */
static int set_choices(SwaxBenchItem *it, const char *const *texts, int n, const char *where) {
    if (n < 1 || n > MAX_CHOICES) return BAD(where, "%d choices", n);
    it->choices = calloc((size_t)n, sizeof *it->choices);
    if (!it->choices) return OOM(where);
    for (int i = 0; i < n; i++) {
        if (!(it->choices[i] = sfmt(" %s", texts[i]))) return OOM(where);
        it->n_choices = i + 1;
    }
    return 0;
}

static int finish_mc(SwaxBenchItem *it, const char *where) {
    if (it->answer < 0 || it->answer >= it->n_choices) return BAD(where, "answer out of range");
    it->shot = sfmt("%s%s", it->context, it->choices[it->answer]);
    return it->shot ? 0 : OOM(where);
}

static int set_id(SwaxBenchItem *it, const cJSON *j, const char *const *keys, const char *where) {
    long v;
    for (int i = 0; keys[i] && !it->id; i++) { /* the first key present, string or integer */
        const cJSON *f = field(j, keys[i]);
        if (cJSON_IsString(f) && f->valuestring) it->id = sdup(f->valuestring);
        else if (f && as_int(f, &v)) it->id = sfmt("%ld", v);
        else continue;
        return it->id ? 0 : OOM(where);
    }
    it->id = sdup(where);
    return it->id ? 0 : OOM(where);
}

/* ---- the per-file reader state ------------------------------------------------------------ */

typedef struct {
    char *q, *opts[4], *ans; /* RACE problem */
} RaceProblem;

typedef struct Rd Rd;
typedef int (*RecordFn)(Rd *r, const cJSON *j, const char *where);
struct Rd {
    SwaxBenchSet *set;
    const char *path;
    long rec;              /* records read from this file */
    long *labels;          /* a "-labels.lst" file beside the data (PIQA, SIQA) */
    long n_labels;
    RecordFn fn;
    /* RACE: the article being collected (one row per question) */
    char *article, *art_id;
    RaceProblem *probs;
    int n_probs, cap_probs;
};

/* PATH.jsonl -> PATH-labels.lst (PIQA's and SIQA's releases keep the answers there). */
static int load_labels(Rd *r) {
    const char *dot = strrchr(r->path, '.');
    const char *slash = strrchr(r->path, '/');
    if (!dot || (slash && dot < slash)) return 0;
    char lp[4200];
    snprintf(lp, sizeof lp, "%.*s-labels.lst", (int)(dot - r->path), r->path);
    struct stat st;
    if (stat(lp, &st) != 0) return 0;
    char *data;
    size_t len;
    SWAX_TRY(swax_read_file(lp, &data, &len));
    long cap = 1;
    for (size_t i = 0; i < len; i++) cap += data[i] == '\n';
    r->labels = calloc((size_t)cap, sizeof *r->labels);
    if (!r->labels) {
        free(data);
        return swax_error(SWAX_E_NOMEM, "%s", lp);
    }
    long line = 0;
    int rc = 0;
    for (char *p = data; !rc && *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        line++;
        char *q = p;
        while (*q == ' ' || *q == '\r' || *q == '\t') q++;
        if (*q) {
            char *end;
            long v = strtol(q, &end, 10);
            while (*end == ' ' || *end == '\r' || *end == '\t') end++;
            if (end == q || *end || v < 0 || v > 1000) rc = swax_error(SWAX_E_INPUT, "%s:%ld: expected a label number", lp, line);
            else r->labels[r->n_labels++] = v;
        }
        if (!e) break;
        p = e + 1;
    }
    free(data);
    return rc;
}

/* The gold index of record r->rec: its own field, else the labels file. */
static int label_of(Rd *r, const cJSON *j, const char *key, long base, int n, const char *where, int *out) {
    const cJSON *f = field(j, key);
    long v;
    if (f && !cJSON_IsNull(f)) {
        if (!as_int(f, &v)) return BAD(where, "field \"%s\" must be an integer", key);
    } else if (r->labels) {
        if (r->rec - 1 >= r->n_labels) return BAD(where, "no line for this record in the labels file beside it");
        v = r->labels[r->rec - 1];
    } else {
        return BAD(where, "no \"%s\" field and no -labels.lst file beside the data (the test split has no answers)", key);
    }
    v -= base;
    if (v < 0 || v >= n) return BAD(where, "label %ld is not one of the %d choices", v + base, n);
    *out = (int)v;
    return 0;
}

/* ---- HellaSwag ------------------------------------------------------------------------------- */

/* The harness's clean-up of WikiHow text: trim, " [title]" -> ". ", drop every
 * "[...]" span, then one pass of "  " -> " ". */
static char *hs_clean(const char *s) {
    size_t n = strlen(s);
    char *a = malloc(2 * n + 1), *b = malloc(2 * n + 1);
    if (!a || !b) {
        free(a);
        free(b);
        return NULL;
    }
    while (*s && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (!strncmp(s + i, " [title]", 8)) {
            memcpy(a + o, ". ", 2), o += 2, i += 8;
        } else {
            a[o++] = s[i++];
        }
    }
    a[o] = 0;
    size_t p = 0;
    for (size_t i = 0; i < o;) {
        if (a[i] == '[') {
            const char *e = strchr(a + i, ']');
            if (e) {
                i = (size_t)(e - a) + 1;
                continue;
            }
        }
        b[p++] = a[i++];
    }
    b[p] = 0;
    o = 0;
    for (size_t i = 0; i < p;) {
        if (b[i] == ' ' && b[i + 1] == ' ') a[o++] = ' ', i += 2;
        else a[o++] = b[i++];
    }
    a[o] = 0;
    free(b);
    return a;
}

static int rd_hellaswag(Rd *r, const cJSON *j, const char *where) {
    const char *label, *a = any_str(j, (const char *const[]){"ctx_a", "ctx", NULL}), *b = any_str(j, (const char *const[]){"ctx_b", NULL});
    SWAX_TRY(get_str(j, "activity_label", where, &label));
    if (!a) return BAD(where, "field \"ctx_a\" (or \"ctx\") must be a string");
    if (!b) b = "";
    char **ends = NULL;
    int ne = 0;
    SWAX_TRY(get_str_list(field(j, "endings"), "endings", where, 2, &ends, &ne));
    if (ne > MAX_CHOICES) {
        free_list(ends, ne);
        return BAD(where, "too many endings");
    }
    SwaxBenchItem *it = new_item(r->set);
    int rc = it ? 0 : OOM(where);
    if (!rc) rc = set_id(it, j, (const char *const[]){"ind", "source_id", NULL}, where);
    if (!rc) rc = label_of(r, j, "label", 0, ne, where, &it->answer);
    /* ctx_b with Python's str.capitalize(): first letter upper, the rest lower */
    char *cb = sdup(b), *raw = NULL;
    for (size_t i = 0; cb && cb[i]; i++) cb[i] = (char)(i ? tolower((unsigned char)cb[i]) : toupper((unsigned char)cb[i]));
    if (!rc && cb) raw = b[0] ? sfmt("%s: %s %s", label, a, cb) : sfmt("%s: %s", label, a);
    if (!rc && !(raw && (it->context = hs_clean(raw)))) rc = OOM(where);
    for (int i = 0; !rc && i < ne; i++) {
        char *c = hs_clean(ends[i]);
        if (!c) rc = OOM(where);
        else free(ends[i]), ends[i] = c;
    }
    if (!rc) rc = set_choices(it, (const char *const *)ends, ne, where);
    if (!rc) rc = finish_mc(it, where);
    free(cb);
    free(raw);
    free_list(ends, ne);
    return rc;
}

/* ---- ARC ------------------------------------------------------------------------------------- */

/* AI2's JSONL: {"question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}; the
 * `datasets` export: {"question": str, "choices": {"text": [...], "label": [...]}, "answerKey"}. */
static int rd_arc(Rd *r, const cJSON *j, const char *where) {
    const cJSON *q = field(j, "question");
    const char *stem = NULL, *key;
    const char *texts[MAX_CHOICES], *labels[MAX_CHOICES];
    int n = 0;
    SWAX_TRY(get_str(j, "answerKey", where, &key));
    if (cJSON_IsObject(q)) {
        SWAX_TRY(get_str(q, "stem", where, &stem));
        const cJSON *ch = field(q, "choices"), *e;
        if (!cJSON_IsArray(ch)) return BAD(where, "field \"question.choices\" must be a list");
        cJSON_ArrayForEach(e, ch) {
            if (n == MAX_CHOICES) return BAD(where, "too many choices");
            if (get_str(e, "text", where, &texts[n]) || get_str(e, "label", where, &labels[n])) return SWAX_E_INPUT;
            n++;
        }
    } else if (cJSON_IsString(q)) {
        stem = q->valuestring;
        const cJSON *ch = field(j, "choices");
        const cJSON *t = cJSON_IsObject(ch) ? field(ch, "text") : NULL, *l = cJSON_IsObject(ch) ? field(ch, "label") : NULL;
        if (!cJSON_IsArray(t) || !cJSON_IsArray(l) || cJSON_GetArraySize(t) != cJSON_GetArraySize(l))
            return BAD(where, "field \"choices\" must hold lists \"text\" and \"label\" of one length");
        const cJSON *e;
        cJSON_ArrayForEach(e, t) {
            if (n == MAX_CHOICES) return BAD(where, "too many choices");
            const cJSON *le = cJSON_GetArrayItem(l, n);
            if (!cJSON_IsString(e) || !cJSON_IsString(le)) return BAD(where, "choices must be strings");
            texts[n] = e->valuestring, labels[n] = le->valuestring;
            n++;
        }
    } else {
        return BAD(where, "field \"question\" must be an object (AI2's JSONL) or a string (datasets export)");
    }
    if (n < 2) return BAD(where, "needs at least 2 choices");
    int ans = -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(labels[i], key)) ans = i;
    if (ans < 0) return BAD(where, "answerKey \"%s\" is none of the choice labels", key);
    SwaxBenchItem *it = new_item(r->set);
    if (!it) return OOM(where);
    it->answer = ans;
    SWAX_TRY(set_id(it, j, (const char *const[]){"id", NULL}, where));
    if (!(it->context = sfmt("Question: %s\nAnswer:", stem))) return OOM(where);
    SWAX_TRY(set_choices(it, texts, n, where));
    return finish_mc(it, where);
}

/* ---- PIQA, SIQA ---------------------------------------------------------------------------------- */

static int rd_piqa(Rd *r, const cJSON *j, const char *where) {
    const char *goal, *s[2];
    SWAX_TRY(get_str(j, "goal", where, &goal));
    SWAX_TRY(get_str(j, "sol1", where, &s[0]));
    SWAX_TRY(get_str(j, "sol2", where, &s[1]));
    SwaxBenchItem *it = new_item(r->set);
    if (!it) return OOM(where);
    SWAX_TRY(set_id(it, j, (const char *const[]){"id", NULL}, where));
    SWAX_TRY(label_of(r, j, "label", 0, 2, where, &it->answer));
    if (!(it->context = sfmt("Question: %s\nAnswer:", goal))) return OOM(where);
    SWAX_TRY(set_choices(it, s, 2, where));
    return finish_mc(it, where);
}

static int rd_siqa(Rd *r, const cJSON *j, const char *where) {
    const char *c, *q, *s[3];
    SWAX_TRY(get_str(j, "context", where, &c));
    SWAX_TRY(get_str(j, "question", where, &q));
    SWAX_TRY(get_str(j, "answerA", where, &s[0]));
    SWAX_TRY(get_str(j, "answerB", where, &s[1]));
    SWAX_TRY(get_str(j, "answerC", where, &s[2]));
    SwaxBenchItem *it = new_item(r->set);
    if (!it) return OOM(where);
    if (!(it->id = sdup(where))) return OOM(where);
    SWAX_TRY(label_of(r, j, "label", 1, 3, where, &it->answer)); /* 1, 2, 3 */
    if (!(it->context = sfmt("Q: %s %s\nA:", c, q))) return OOM(where);
    SWAX_TRY(set_choices(it, s, 3, where));
    return finish_mc(it, where);
}

/* ---- Winogrande -------------------------------------------------------------------------------------- */

/* Partial scoring: prefix_k = the sentence up to "_" with option k filled in;
 * the shared suffix " " + (the rest, trimmed) is scored after each prefix. */
static int rd_winogrande(Rd *r, const cJSON *j, const char *where) {
    const char *s, *o[2];
    SWAX_TRY(get_str(j, "sentence", where, &s));
    SWAX_TRY(get_str(j, "option1", where, &o[0]));
    SWAX_TRY(get_str(j, "option2", where, &o[1]));
    const char *us = strchr(s, '_');
    if (!us) return BAD(where, "\"sentence\" has no \"_\" blank");
    const char *rest = us + 1;
    while (*rest && isspace((unsigned char)*rest)) rest++;
    size_t rl = strlen(rest);
    while (rl && isspace((unsigned char)rest[rl - 1])) rl--;
    SwaxBenchItem *it = new_item(r->set);
    if (!it) return OOM(where);
    SWAX_TRY(set_id(it, j, (const char *const[]){"qID", NULL}, where));
    SWAX_TRY(label_of(r, j, "answer", 1, 2, where, &it->answer));
    if (!(it->choices = calloc(2, sizeof *it->choices))) return OOM(where);
    for (int k = 0; k < 2; k++) {
        if (!(it->choices[k] = sfmt("%.*s%s", (int)(us - s), s, o[k]))) return OOM(where);
        it->n_choices = k + 1;
    }
    if (!(it->suffix = sfmt(" %.*s", (int)rl, rest))) return OOM(where);
    if (!(it->shot = sfmt("%s%s", it->choices[it->answer], it->suffix))) return OOM(where);
    return 0;
}

/* ---- NaturalQuestions-open, TriviaQA ----------------------------------------------------------------- */

static int gen_item(Rd *r, const cJSON *j, const char *where, const char *prompt_fmt, const char *question,
                    char **golds, int ng, const char *const *id_keys) {
    SwaxBenchItem *it = new_item(r->set);
    if (!it) {
        free_list(golds, ng);
        return OOM(where);
    }
    it->golds = golds, it->n_golds = ng;
    SWAX_TRY(set_id(it, j, id_keys, where));
    size_t ql = strlen(question);
    while (ql && isspace((unsigned char)question[ql - 1])) ql--;
    int has_q = ql && question[ql - 1] == '?';
    char *q = sfmt("%.*s%s", (int)ql, question, has_q ? "" : "?");
    if (!q) return OOM(where);
    it->prompt = sfmt(prompt_fmt, q);
    free(q);
    if (!it->prompt) return OOM(where);
    it->shot = sfmt("%s %s", it->prompt, golds[0]);
    return it->shot ? 0 : OOM(where);
}

static int rd_nq(Rd *r, const cJSON *j, const char *where) {
    const char *q;
    char **g;
    int ng;
    SWAX_TRY(get_str(j, "question", where, &q));
    SWAX_TRY(get_str_list(field(j, "answer"), "answer", where, 1, &g, &ng));
    return gen_item(r, j, where, "Q: %s\nA:", q, g, ng, (const char *const[]){"id", NULL});
}

/* Release: {"Question", "Answer": {"Value", "Aliases"}, "QuestionId"} inside "Data";
 * `datasets` export: {"question", "answer": {"value", "aliases"}, "question_id"}. */
static int rd_triviaqa(Rd *r, const cJSON *j, const char *where) {
    const char *q = any_str(j, (const char *const[]){"question", "Question", NULL});
    const cJSON *a = field(j, "answer");
    if (!a) a = field(j, "Answer");
    if (!q) return BAD(where, "field \"question\" (or \"Question\") must be a string");
    if (!cJSON_IsObject(a)) return BAD(where, "field \"answer\" (or \"Answer\") must be an object");
    const cJSON *al = field(a, "aliases");
    if (!al) al = field(a, "Aliases");
    const char *value = any_str(a, (const char *const[]){"value", "Value", NULL});
    char **g = NULL;
    int ng = 0;
    if (al) SWAX_TRY(get_str_list(al, "answer.aliases", where, 0, &g, &ng));
    if (value) {
        char **ng2 = realloc(g, ((size_t)ng + 2) * sizeof *g);
        if (!ng2) {
            free_list(g, ng);
            return OOM(where);
        }
        g = ng2;
        memmove(g + 1, g, (size_t)ng * sizeof *g); /* the value first: it is the few-shot answer */
        if (!(g[0] = sdup(value))) {
            free_list(g + 1, ng);
            return OOM(where);
        }
        ng++;
    }
    if (!ng) {
        free(g);
        return BAD(where, "no answer value or aliases");
    }
    return gen_item(r, j, where, "Question: %s\nAnswer:", q, g, ng, (const char *const[]){"question_id", "QuestionId", NULL});
}

/* ---- RACE ------------------------------------------------------------------------------------------ */

static void race_clear(Rd *r) {
    for (int i = 0; i < r->n_probs; i++) {
        free(r->probs[i].q), free(r->probs[i].ans);
        for (int k = 0; k < 4; k++) free(r->probs[i].opts[k]);
    }
    r->n_probs = 0;
    free(r->article), free(r->art_id);
    r->article = r->art_id = NULL;
}

/* One item per article, as the harness does: the earlier questions with their
 * answers, then the last question, whose options are the choices. */
static int race_flush(Rd *r, const char *where) {
    if (!r->n_probs) return 0;
    SwaxStr s = {0};
    swax_str_printf(&s, "Article: %s\n\n", r->article);
    for (int i = 0; i + 1 < r->n_probs; i++) {
        const RaceProblem *p = &r->probs[i];
        swax_str_printf(&s, "Question: %s\nAnswer: %s\n\n", p->q, p->opts[p->ans[0] - 'A']);
    }
    const RaceProblem *last = &r->probs[r->n_probs - 1];
    swax_str_printf(&s, "Question: %s\nAnswer:", last->q);
    SwaxBenchItem *it = new_item(r->set);
    int rc = it && !s.failed ? 0 : OOM(where);
    if (!rc) {
        it->context = s.p, s.p = NULL;
        it->answer = last->ans[0] - 'A';
        it->id = sdup(r->art_id ? r->art_id : where);
        rc = it->id ? set_choices(it, (const char *const *)last->opts, 4, where) : OOM(where);
    }
    if (!rc) rc = finish_mc(it, where);
    swax_str_free(&s);
    race_clear(r);
    return rc;
}

static int race_add(Rd *r, const char *where, const char *q, const cJSON *opts, const char *ans) {
    if (!cJSON_IsArray(opts) || cJSON_GetArraySize(opts) != 4) return BAD(where, "options must be a list of 4 strings");
    if (strlen(ans) != 1 || ans[0] < 'A' || ans[0] > 'D') return BAD(where, "answer must be A, B, C or D");
    if (r->n_probs == r->cap_probs) {
        int cap = r->cap_probs ? 2 * r->cap_probs : 8;
        RaceProblem *p = realloc(r->probs, (size_t)cap * sizeof *p);
        if (!p) return OOM(where);
        r->probs = p, r->cap_probs = cap;
    }
    RaceProblem *p = &r->probs[r->n_probs];
    memset(p, 0, sizeof *p);
    for (int k = 0; k < 4; k++) {
        const cJSON *o = cJSON_GetArrayItem(opts, k);
        if (!cJSON_IsString(o)) return BAD(where, "options must be strings");
    }
    r->n_probs++;
    p->q = sdup(q), p->ans = sdup(ans);
    int ok = p->q && p->ans;
    for (int k = 0; k < 4; k++) ok &= (p->opts[k] = sdup(cJSON_GetArrayItem(opts, k)->valuestring)) != NULL;
    return ok ? 0 : OOM(where);
}

/* The release: one article a file {"article", "questions", "options", "answers", "id"};
 * the `datasets` export: one question a line {"article", "question", "options", "answer",
 * "example_id"}, the rows of an article in a row. */
static int rd_race(Rd *r, const cJSON *j, const char *where) {
    const char *art;
    SWAX_TRY(get_str(j, "article", where, &art));
    const cJSON *qs = field(j, "questions");
    if (qs) {
        SWAX_TRY(race_flush(r, where));
        const cJSON *os = field(j, "options"), *as = field(j, "answers");
        int n = cJSON_IsArray(qs) ? cJSON_GetArraySize(qs) : -1;
        if (n < 1 || !cJSON_IsArray(os) || !cJSON_IsArray(as) || cJSON_GetArraySize(os) != n || cJSON_GetArraySize(as) != n)
            return BAD(where, "\"questions\", \"options\" and \"answers\" must be lists of one length");
        if (!(r->article = sdup(art))) return OOM(where);
        const char *id = any_str(j, (const char *const[]){"id", NULL});
        if (id && !(r->art_id = sdup(id))) return OOM(where);
        for (int i = 0; i < n; i++) {
            const cJSON *q = cJSON_GetArrayItem(qs, i), *a = cJSON_GetArrayItem(as, i);
            if (!cJSON_IsString(q) || !cJSON_IsString(a)) return BAD(where, "question %d: not a string", i + 1);
            SWAX_TRY(race_add(r, where, q->valuestring, cJSON_GetArrayItem(os, i), a->valuestring));
        }
        return race_flush(r, where);
    }
    const char *q, *a;
    SWAX_TRY(get_str(j, "question", where, &q));
    SWAX_TRY(get_str(j, "answer", where, &a));
    if (r->article && strcmp(r->article, art)) SWAX_TRY(race_flush(r, where));
    if (!r->article) {
        if (!(r->article = sdup(art))) return OOM(where);
        const char *id = any_str(j, (const char *const[]){"example_id", NULL});
        if (id && !(r->art_id = sdup(id))) return OOM(where);
    }
    return race_add(r, where, q, field(j, "options"), a);
}

/* ---- HumanEval(+), MBPP ------------------------------------------------------------------------------ */

/* A Python string literal of s (a JSON string is one). */
static char *py_literal(const char *s) {
    cJSON *j = cJSON_CreateString(s);
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return t;
}

/* HumanEval+ without a "test" field: compare the completion with the canonical
 * solution on the release's base_input + plus_input (atol for floats). */
static char *plus_program(const cJSON *j, const char *prompt, const char *canon, const char *entry) {
    cJSON *all = cJSON_CreateArray();
    const char *keys[] = {"base_input", "plus_input"};
    for (int k = 0; all && k < 2; k++) {
        const cJSON *a = field(j, keys[k]), *e;
        if (cJSON_IsArray(a)) cJSON_ArrayForEach(e, a) cJSON_AddItemToArray(all, cJSON_Duplicate(e, 1));
    }
    char *inputs = all ? cJSON_PrintUnformatted(all) : NULL;
    cJSON_Delete(all);
    const cJSON *at = field(j, "atol");
    double atol = cJSON_IsNumber(at) ? at->valuedouble : 0;
    char *ref = sfmt("%s%s", prompt, canon);
    char *lit_in = inputs ? py_literal(inputs) : NULL, *lit_ref = ref ? py_literal(ref) : NULL;
    char *p = NULL;
    if (lit_in && lit_ref)
        p = sfmt("\n\nimport json as _j, math as _m, copy as _c\n"
                 "def _same(a, b):\n"
                 "    if isinstance(a, float) or isinstance(b, float):\n"
                 "        try:\n"
                 "            return (a != a and b != b) or _m.isclose(a, b, rel_tol=1e-6, abs_tol=max(%.17g, 1e-6))\n"
                 "        except TypeError:\n"
                 "            return False\n"
                 "    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):\n"
                 "        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))\n"
                 "    return a == b\n"
                 "_ns = {}\n"
                 "exec(%s, _ns)\n"
                 "for _a in _j.loads(%s):\n"
                 "    assert _same(%s(*_c.deepcopy(_a)), _ns['%s'](*_c.deepcopy(_a))), _a\n",
                 atol, lit_ref, lit_in, entry, entry);
    free(inputs), free(ref), free(lit_in), free(lit_ref);
    return p;
}

static int rd_humaneval(Rd *r, const cJSON *j, const char *where) {
    const char *prompt, *entry, *test = any_str(j, (const char *const[]){"test", NULL});
    const char *canon = any_str(j, (const char *const[]){"canonical_solution", NULL});
    SWAX_TRY(get_str(j, "prompt", where, &prompt));
    SWAX_TRY(get_str(j, "entry_point", where, &entry));
    for (const char *p = entry; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return BAD(where, "\"entry_point\" is not a Python name");
    if (!entry[0]) return BAD(where, "\"entry_point\" is empty");
    int plus = cJSON_IsArray(field(j, "plus_input"));
    if (!test && !(plus && canon)) return BAD(where, "needs a \"test\" field (or HumanEval+'s plus_input and canonical_solution)");
    SwaxBenchItem *it = new_item(r->set);
    if (!it) return OOM(where);
    SWAX_TRY(set_id(it, j, (const char *const[]){"task_id", NULL}, where));
    if (!(it->prompt = sdup(prompt)) || !(it->prelude = sdup(prompt))) return OOM(where);
    if (plus && canon) {
        if (!(it->program = plus_program(j, prompt, canon, entry))) return OOM(where);
    } else {
        if (!(it->program = sfmt("\n\n%s\n\ncheck(%s)\n", test, entry))) return OOM(where);
    }
    it->shot = sfmt("%s%s", prompt, canon ? canon : "");
    return it->shot ? 0 : OOM(where);
}

/* mbpp.jsonl: {"text", "code", "task_id", "test_list", "test_setup_code"};
 * sanitized-mbpp.json (a list): {"prompt", "code", "task_id", "test_list", "test_imports"}. */
static int rd_mbpp(Rd *r, const cJSON *j, const char *where) {
    const char *text = any_str(j, (const char *const[]){"text", "prompt", NULL}), *code;
    if (!text) return BAD(where, "field \"text\" (or \"prompt\") must be a string");
    SWAX_TRY(get_str(j, "code", where, &code));
    char **tests = NULL, **imps = NULL;
    int nt = 0, ni = 0;
    SWAX_TRY(get_str_list(field(j, "test_list"), "test_list", where, 1, &tests, &nt));
    const cJSON *imp = field(j, "test_imports");
    const char *setup = any_str(j, (const char *const[]){"test_setup_code", NULL});
    int rc = cJSON_IsArray(imp) ? get_str_list(imp, "test_imports", where, 0, &imps, &ni) : 0;
    SwaxBenchItem *it = rc ? NULL : new_item(r->set);
    SwaxStr p = {0}, prog = {0}, pre = {0};
    if (!rc && !it) rc = OOM(where);
    if (!rc) {
        long id;
        const cJSON *tid = field(j, "task_id");
        it->code_id = tid && as_int(tid, &id) && id >= 0 && id < 1000000 ? (int)id : -1;
        rc = set_id(it, j, (const char *const[]){"task_id", NULL}, where);
    }
    if (!rc) {
        swax_str_printf(&p, "You are an expert Python programmer, and here is your task: %s Your code should pass these "
                        "tests:\n\n", text);
        for (int i = 0; i < nt; i++) swax_str_printf(&p, "%s\n", tests[i]);
        swax_str_puts(&p, "[BEGIN]\n");
        if (setup) swax_str_printf(&pre, "%s\n", setup);
        for (int i = 0; i < ni; i++) swax_str_printf(&pre, "%s\n", imps[i]);
        swax_str_puts(&pre, "");
        swax_str_puts(&prog, "\n\n");
        for (int i = 0; i < nt; i++) swax_str_printf(&prog, "%s\n", tests[i]);
        if (p.failed || pre.failed || prog.failed) rc = OOM(where);
    }
    if (!rc) {
        it->prompt = p.p, it->prelude = pre.p, it->program = prog.p;
        p.p = pre.p = prog.p = NULL;
        if (!(it->shot = sfmt("%s%s\n[DONE]", it->prompt, code))) rc = OOM(where);
    }
    swax_str_free(&p), swax_str_free(&pre), swax_str_free(&prog);
    free_list(tests, nt);
    free_list(imps, ni);
    return rc;
}

/* ---- LongBench, LongBench v2 -------------------------------------------------------------------------- */

/* Each LongBench data set's metric, as its release's evaluation assigns them
 * (the LongBench-E files, "<name>_e", share them). */
static const char *const k_lb_metric[][2] = {
    {"narrativeqa", "qa_f1"}, {"qasper", "qa_f1"}, {"multifieldqa_en", "qa_f1"}, {"multifieldqa_zh", "qa_f1_zh"},
    {"hotpotqa", "qa_f1"}, {"2wikimqa", "qa_f1"}, {"musique", "qa_f1"}, {"dureader", "rouge_zh"},
    {"gov_report", "rouge"}, {"qmsum", "rouge"}, {"multi_news", "rouge"}, {"vcsum", "rouge_zh"},
    {"trec", "classification"}, {"triviaqa", "qa_f1"}, {"samsum", "rouge"}, {"lsht", "classification"},
    {"passage_retrieval_en", "retrieval"}, {"passage_count", "count"}, {"passage_retrieval_zh", "retrieval"},
    {"lcc", "code_sim"}, {"repobench-p", "code_sim"},
};

const char *swax_longbench_metric(const char *dataset) {
    size_t l = strlen(dataset);
    for (size_t i = 0; i < sizeof k_lb_metric / sizeof k_lb_metric[0]; i++) {
        size_t m = strlen(k_lb_metric[i][0]);
        if (!strncmp(dataset, k_lb_metric[i][0], m) && (l == m || (l == m + 2 && !strcmp(dataset + m, "_e"))))
            return k_lb_metric[i][1];
    }
    return NULL;
}

static int rd_longbench(Rd *r, const cJSON *j, const char *where) {
    const char *input, *ctx, *ds;
    SWAX_TRY(get_str(j, "input", where, &input));
    SWAX_TRY(get_str(j, "context", where, &ctx));
    SWAX_TRY(get_str(j, "dataset", where, &ds));
    const char *metric = swax_longbench_metric(ds);
    if (!metric) return BAD(where, "unknown LongBench data set \"%s\"", ds);
    char **g;
    int ng;
    SWAX_TRY(get_str_list(field(j, "answers"), "answers", where, 1, &g, &ng));
    SwaxBenchItem *it = new_item(r->set);
    if (!it) {
        free_list(g, ng);
        return OOM(where);
    }
    it->golds = g, it->n_golds = ng;
    const cJSON *cl = field(j, "all_classes");
    if (cJSON_IsArray(cl)) SWAX_TRY(get_str_list(cl, "all_classes", where, 0, &it->classes, &it->n_classes));
    if (!strcmp(metric, "classification") && !it->n_classes) return BAD(where, "a classification set needs \"all_classes\"");
    SWAX_TRY(set_id(it, j, (const char *const[]){"_id", NULL}, where));
    if (!(it->doc = sdup(ctx)) || !(it->query = sdup(input)) || !(it->group = sdup(ds)) || !(it->metric = sdup(metric)))
        return OOM(where);
    return 0;
}

static int rd_longbench_v2(Rd *r, const cJSON *j, const char *where) {
    const char *q, *ctx, *ans, *c[4], *diff, *len;
    SWAX_TRY(get_str(j, "question", where, &q));
    SWAX_TRY(get_str(j, "context", where, &ctx));
    SWAX_TRY(get_str(j, "answer", where, &ans));
    SWAX_TRY(get_str(j, "difficulty", where, &diff));
    SWAX_TRY(get_str(j, "length", where, &len));
    const char *keys[4] = {"choice_A", "choice_B", "choice_C", "choice_D"};
    for (int k = 0; k < 4; k++) SWAX_TRY(get_str(j, keys[k], where, &c[k]));
    if (strlen(ans) != 1 || ans[0] < 'A' || ans[0] > 'D') return BAD(where, "\"answer\" must be A, B, C or D");
    SwaxBenchItem *it = new_item(r->set);
    if (!it) return OOM(where);
    it->answer = ans[0] - 'A';
    SWAX_TRY(set_id(it, j, (const char *const[]){"_id", NULL}, where));
    it->context = sfmt("Read the text below, then answer the question that follows it.\n\n%s\n\nQuestion: %s\n"
                       "(A) %s\n(B) %s\n(C) %s\n(D) %s\nAnswer:", ctx, q, c[0], c[1], c[2], c[3]);
    it->group = sfmt("%s/%s", diff, len);
    if (!it->context || !it->group) return OOM(where);
    static const char *const letters[4] = {"A", "B", "C", "D"};
    SWAX_TRY(set_choices(it, letters, 4, where));
    return finish_mc(it, where);
}

/* ---- files and folders ------------------------------------------------------------------------------------ */

static int each_jsonl(void *ctx, const cJSON *j, const char *path, long line) {
    Rd *r = ctx;
    char where[4200];
    snprintf(where, sizeof where, "%s:%ld", path, line);
    if (!cJSON_IsObject(j)) return BAD(where, "expected a JSON object");
    r->rec++;
    return r->fn(r, j, where);
}

static int load_file(Rd *r) {
    char *data = NULL;
    size_t len = 0;
    SWAX_TRY(swax_read_file(r->path, &data, &len));
    size_t p = 0;
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) p = 3; /* a byte-order mark */
    while (p < len && isspace((unsigned char)data[p])) p++;
    int rc = 0;
    if (p == len) {
        rc = swax_error(SWAX_E_INPUT, "%s: empty file", r->path);
    } else if (data[p] == '[' || data[p] == '{') {
        const char *end = NULL;
        cJSON *all = cJSON_ParseWithLengthOpts(data + p, len - p + 1, &end, 1); /* + its NUL */
        const cJSON *list = all && cJSON_IsArray(all) ? all : all ? field(all, "Data") : NULL;
        if (all && cJSON_IsArray(list)) {
            long i = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, list) {
                char where[4200];
                snprintf(where, sizeof where, "%s: record %ld of the list", r->path, ++i);
                if (!cJSON_IsObject(e)) rc = BAD(where, "expected a JSON object");
                else r->rec++, rc = r->fn(r, e, where);
                if (rc) break;
            }
        } else if (all && cJSON_IsObject(all)) {
            r->rec++;
            char where[4200];
            snprintf(where, sizeof where, "%s:1", r->path);
            rc = r->fn(r, all, where);
        } else if (!all && data[p] == '[') {
            long line = 1;
            for (const char *q = data; end && q < end && q < data + len; q++) line += *q == '\n';
            rc = swax_error(SWAX_E_INPUT, "%s:%ld: not a valid JSON list", r->path, line);
        } else if (all) {
            rc = swax_error(SWAX_E_INPUT, "%s: expected JSON objects", r->path);
        } else {
            rc = swax_jsonl_each(r->path, each_jsonl, r); /* JSONL: errors name the line */
        }
        cJSON_Delete(all);
    } else {
        rc = swax_jsonl_each(r->path, each_jsonl, r);
    }
    if (!rc && r->article) rc = race_flush(r, r->path);
    free(data);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_ext(const char *n, const char *e) {
    size_t a = strlen(n), b = strlen(e);
    return a > b && !strcmp(n + a - b, e);
}

/* The data files under dir (recursively, at most 4 levels), sorted. */
static int list_files(const char *dir, int depth, char ***v, int *n, int *cap) {
    DIR *d = opendir(dir);
    if (!d) return swax_error(SWAX_E_INPUT, "%s: cannot open the folder", dir);
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 4) rc = list_files(p, depth + 1, v, n, cap);
            continue;
        }
        if (!has_ext(e->d_name, ".jsonl") && !has_ext(e->d_name, ".json") && !has_ext(e->d_name, ".txt")) continue;
        if (*n == *cap) {
            int nc = *cap ? 2 * *cap : 64;
            char **nv = realloc(*v, (size_t)nc * sizeof *nv);
            if (!nv) {
                rc = swax_error(SWAX_E_NOMEM, "file list");
                break;
            }
            *v = nv, *cap = nc;
        }
        if (!((*v)[*n] = sdup(p))) rc = swax_error(SWAX_E_NOMEM, "file list");
        else (*n)++;
    }
    closedir(d);
    return rc;
}

int swax_bench_load(const SwaxBenchTask *t, const char *path, SwaxBenchSet *set) {
    if (!t->read) return swax_error(SWAX_E_USAGE, "%s has no data files (it is generated)", t->name);
    struct stat st;
    if (stat(path, &st) != 0) return swax_error(SWAX_E_INPUT, "%s: no such file or folder (%s data)", path, t->name);
    if (!S_ISDIR(st.st_mode)) return t->read(path, set);
    char **files = NULL;
    int n = 0, cap = 0;
    int rc = list_files(path, 0, &files, &n, &cap);
    if (!rc && !n) rc = swax_error(SWAX_E_INPUT, "%s: no .jsonl, .json or .txt files in the folder", path);
    if (!rc) qsort(files, (size_t)n, sizeof *files, cmp_str);
    for (int i = 0; !rc && i < n; i++) rc = t->read(files[i], set);
    free_list(files, n);
    return rc;
}

/* ---- the task table ------------------------------------------------------------------------------------------ */

static int read_with(const char *path, SwaxBenchSet *set, RecordFn fn) {
    Rd r = {0};
    r.set = set, r.path = path, r.fn = fn;
    long before = set->n;
    int rc = load_labels(&r);
    if (!rc) rc = load_file(&r);
    if (!rc && r.labels && r.n_labels != r.rec)
        rc = swax_error(SWAX_E_INPUT, "%s: %ld records but %ld lines in its -labels.lst", path, r.rec, r.n_labels);
    if (!rc && set->n == before) rc = swax_error(SWAX_E_INPUT, "%s: no records", path);
    race_clear(&r);
    free(r.probs);
    free(r.labels);
    return rc;
}

#define READER(name) \
    static int read_##name(const char *path, SwaxBenchSet *set) { return read_with(path, set, rd_##name); }
READER(hellaswag)
READER(arc)
READER(piqa)
READER(siqa)
READER(winogrande)
READER(nq)
READER(triviaqa)
READER(race)
READER(humaneval)
READER(mbpp)
READER(longbench)
READER(longbench_v2)

static const SwaxBenchTask k_tasks[] = {
    {"hellaswag", SWAX_BENCH_MC, "acc,acc_norm,acc_bytes", 0, {NULL}, 0, "hellaswag.jsonl:hellaswag_val.jsonl", read_hellaswag},
    {"arc_easy", SWAX_BENCH_MC, "acc,acc_norm,acc_bytes", 0, {NULL}, 0, "arc_easy.jsonl:ARC-Easy-Test.jsonl", read_arc},
    {"arc_challenge", SWAX_BENCH_MC, "acc,acc_norm,acc_bytes", 0, {NULL}, 0, "arc_challenge.jsonl:ARC-Challenge-Test.jsonl", read_arc},
    {"piqa", SWAX_BENCH_MC, "acc,acc_norm,acc_bytes", 0, {NULL}, 0, "piqa.jsonl:piqa", read_piqa},
    {"siqa", SWAX_BENCH_MC, "acc,acc_norm,acc_bytes", 0, {NULL}, 0, "siqa.jsonl:siqa", read_siqa},
    {"winogrande", SWAX_BENCH_PARTIAL, "acc", 0, {NULL}, 0, "winogrande.jsonl:winogrande", read_winogrande},
    {"nq_open", SWAX_BENCH_GEN, "exact_match,f1", 0, {"\n", ".", ",", NULL}, 32, "nq_open.jsonl:NQ-open.dev.jsonl", read_nq},
    {"race", SWAX_BENCH_MC, "acc,acc_norm,acc_bytes", 0, {NULL}, 0, "race.jsonl:race", read_race},
    {"triviaqa", SWAX_BENCH_GEN, "exact_match,f1", 0, {"\n", ".", ",", NULL}, 32, "triviaqa.jsonl:triviaqa.json", read_triviaqa},
    {"humaneval", SWAX_BENCH_CODE, "pass@1,pass@k", 0, {"\nclass", "\ndef", "\n#", "\nif", "\nprint", NULL}, 384, "humaneval.jsonl:HumanEval.jsonl:HumanEvalPlus.jsonl", read_humaneval},
    {"mbpp", SWAX_BENCH_CODE, "pass@1,pass@k", 3, {"[DONE]", NULL}, 384, "mbpp.jsonl:mbpp.json:sanitized-mbpp.json", read_mbpp},
    {"longbench", SWAX_BENCH_GEN, "per data set: qa_f1,rouge,classification,retrieval,count,code_sim", 0, {NULL}, 64, "longbench:longbench.jsonl", read_longbench},
    {"longbench_v2", SWAX_BENCH_MC, "acc (overall, easy, hard, short, medium, long)", 0, {NULL}, 0, "longbench_v2.json:data.json", read_longbench_v2},
    {"babilong", SWAX_BENCH_GEN, "acc (qa1..qa5 x length)", 0, {"\n", NULL}, 8, "", NULL},
};
#define N_TASKS ((int)(sizeof k_tasks / sizeof k_tasks[0]))

const SwaxBenchTask *swax_bench_task(const char *name) {
    for (int i = 0; i < N_TASKS; i++)
        if (!strcmp(k_tasks[i].name, name)) return &k_tasks[i];
    return NULL;
}

const SwaxBenchTask *swax_bench_task_at(int i) { return i >= 0 && i < N_TASKS ? &k_tasks[i] : NULL; }

const char *swax_bench_task_list(void) {
    return "hellaswag,arc_easy,arc_challenge,piqa,siqa,winogrande,nq_open,race,triviaqa,humaneval,mbpp,longbench,"
           "longbench_v2,babilong";
}
