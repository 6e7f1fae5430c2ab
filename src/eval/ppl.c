/* ppl.c — `swax eval ppl`: loss and perplexity on held-out llm.c shards,
 * overall and by position bucket, past the training length if asked. Long
 * sequences stream through swax_prefill (memory independent of length);
 * short ones may take one swax_forward. */
#include <cjson/cJSON.h>
#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/svg.h"
#include "eval/eval.h"
#include "infer/infer.h"
#include "io/shard.h"

/* ---- statistics ---------------------------------------------------------------- */

int swax_ppl_stats_init(SwaxPplStats *s, long seq_len, long bucket) {
    memset(s, 0, sizeof *s);
    if (seq_len < 1 || bucket < 1)
        return swax_error(SWAX_E_USAGE, "ppl: sequence length %ld and bucket %ld must be >= 1", seq_len, bucket);
    s->bucket = bucket;
    s->n_buckets = (int)((seq_len + bucket - 1) / bucket);
    s->nll = calloc((size_t)s->n_buckets, sizeof *s->nll);
    s->count = calloc((size_t)s->n_buckets, sizeof *s->count);
    if (!s->nll || !s->count) {
        swax_ppl_stats_free(s);
        return swax_error(SWAX_E_NOMEM, "ppl buckets");
    }
    return 0;
}

void swax_ppl_stats_free(SwaxPplStats *s) {
    free(s->nll);
    free(s->count);
    memset(s, 0, sizeof *s);
}

void swax_ppl_stats_add(SwaxPplStats *s, long pos, double nll) {
    long b = pos / s->bucket;
    if (b >= s->n_buckets) b = s->n_buckets - 1; /* cannot happen for pos < seq_len */
    s->nll[b] += nll;
    s->count[b]++;
    s->total_nll += nll;
    s->total_count++;
}

double swax_ppl_bucket_loss(const SwaxPplStats *s, int b) {
    return s->count[b] ? s->nll[b] / (double)s->count[b] : NAN;
}

double swax_ppl_loss(const SwaxPplStats *s) { return s->total_count ? s->total_nll / (double)s->total_count : NAN; }

/* ---- one sequence ----------------------------------------------------------------- */

/* Rows of logits per prefill call: about 64 MB of them, a multiple of 64. */
static long default_slice(int V) {
    long s = (1L << 24) / V;
    s = s < 64 ? 64 : s > 2048 ? 2048 : s;
    return s / 64 * 64;
}

/* (eval.h) The log-softmaxes in parallel: a 16k vocabulary makes them ~10^4
 * exps a token, and on one core they outlasted a GPU's prefill. */
int swax_ppl_add_rows(SwaxPplStats *s, const float *lg, long p0, long len, int V, int Vu, const int32_t *tokens) {
    double *nll = malloc(sizeof(double) * (size_t)(len > 0 ? len : 1));
    if (!nll) return swax_error(SWAX_E_NOMEM, "ppl: %ld row losses", len);
#pragma omp parallel for schedule(static) if ((double)len * Vu > 1e6)
    for (long i = 0; i < len; i++) nll[i] = -swax_logprob(lg + (size_t)i * V, Vu, tokens[p0 + i + 1]);
    for (long i = 0; i < len; i++) swax_ppl_stats_add(s, p0 + i, nll[i]);
    free(nll);
    return 0;
}

int swax_ppl_sequence(SwaxModel *m, SwaxState *st, SwaxPplPath path, const int32_t *tokens, long n, int window,
                      int chunk, long slice, SwaxPplStats *s) {
    if (n < 2) return 0;
    const SwaxConfig *c = swax_model_config(m);
    const int V = c->vocab_size, Vu = c->vocab_used;
    const long T = n - 1;
    if (path == SWAX_PPL_AUTO) path = T <= 1024 || !st ? SWAX_PPL_FORWARD : SWAX_PPL_STREAM;
    if (path == SWAX_PPL_FORWARD) {
        if (T > INT32_MAX) return swax_error(SWAX_E_USAGE, "ppl: sequence of %ld tokens is too long for forward", T);
        SwaxBatch b = {.B = 1, .T = (int)T, .tokens = tokens, .window = window, .chunk = chunk};
        SWAX_TRY(swax_forward(m, &b, NULL));
        return swax_ppl_add_rows(s, swax_model_logits(m), 0, T, V, Vu, tokens);
    }
    if (!st) return swax_error(SWAX_E_USAGE, "ppl: streaming needs an inference state");
    if (slice <= 0) slice = default_slice(V);
    float *lg = swax_calloc((size_t)slice * V, sizeof(float), "ppl logits");
    if (!lg) return SWAX_E_NOMEM;
    swax_state_reset(st, 0);
    int rc = 0;
    for (long p0 = 0; !rc && p0 < T; p0 += slice) {
        const long len = T - p0 < slice ? T - p0 : slice;
        rc = swax_prefill(m, st, 0, tokens + p0, (size_t)len, chunk, NULL, lg);
        if (!rc) rc = swax_ppl_add_rows(s, lg, p0, len, V, Vu, tokens);
    }
    free(lg);
    return rc;
}

/* ---- the data ------------------------------------------------------------------ */

/* The shards of a glob, read as one stream of tokens. */
typedef struct {
    SwaxShard *sh;
    int n;
    size_t *start; /* (n + 1) global index of each shard's first token */
} Stream;

static void stream_close(Stream *s) {
    for (int i = 0; s->sh && i < s->n; i++) swax_shard_close(&s->sh[i]);
    free(s->sh);
    free(s->start);
    memset(s, 0, sizeof *s);
}

static int stream_open(const char *pattern, int vocab, Stream *s) {
    memset(s, 0, sizeof *s);
    glob_t g;
    int grc = glob(pattern, 0, NULL, &g);
    if (grc == GLOB_NOMATCH) return swax_error(SWAX_E_INPUT, "%s: no shard matches", pattern);
    if (grc) return swax_error(SWAX_E_INPUT, "%s: cannot expand the pattern", pattern);
    s->sh = calloc(g.gl_pathc, sizeof *s->sh);
    s->start = calloc(g.gl_pathc + 1, sizeof *s->start);
    int rc = s->sh && s->start ? 0 : swax_error(SWAX_E_NOMEM, "shards");
    for (size_t i = 0; !rc && i < g.gl_pathc; i++) {
        rc = swax_shard_open(g.gl_pathv[i], &s->sh[i]);
        if (!rc) s->n++;
        if (!rc) rc = swax_shard_check_vocab(&s->sh[i], vocab);
        if (!rc) s->start[i + 1] = s->start[i] + s->sh[i].n_tokens;
    }
    globfree(&g);
    if (rc) stream_close(s);
    return rc;
}

static size_t stream_total(const Stream *s) { return s->start[s->n]; }

static void stream_read(const Stream *s, size_t g, size_t n, int32_t *out) {
    int i = 0;
    while (n) {
        while (g >= s->start[i + 1]) i++;
        size_t off = g - s->start[i], take = s->start[i + 1] - g;
        if (take > n) take = n;
        swax_shard_read(&s->sh[i], off, take, out);
        out += take, g += take, n -= take;
    }
}

typedef struct {
    size_t start;
    long len; /* tokens (predictions = len - 1) */
} Seq;

/* Appends a sequence; on failure frees the list. */
static int seq_push(Seq **v, long *n, size_t *cap, size_t start, size_t len) {
    if (*n == (long)*cap) {
        Seq *w = realloc(*v, 2 * *cap * sizeof *w);
        if (!w) {
            free(*v);
            *v = NULL;
            return swax_error(SWAX_E_NOMEM, "ppl sequences");
        }
        *v = w, *cap *= 2;
    }
    (*v)[(*n)++] = (Seq){start, (long)len};
    return 0;
}

/* Cuts the stream into sequences: windows of seq_len + 1 tokens overlapping
 * by one (every token after the first is predicted once), or documents (from
 * an eot to the next, at most seq_len + 1 tokens). Stops at max_tokens
 * predictions (0 = all). */
static int plan_sequences(const Stream *s, const SwaxPplOpts *o, int32_t eot, Seq **out, long *n_out,
                          long *n_docs_skipped) {
    size_t total = stream_total(s), cap = 64;
    long n = 0, budget = o->max_tokens > 0 ? o->max_tokens : -1;
    *n_docs_skipped = 0;
    Seq *v = malloc(cap * sizeof *v);
    if (!v) return swax_error(SWAX_E_NOMEM, "ppl sequences");
    size_t g = 0;
    while (g + 1 < total && budget != 0) {
        size_t len;
        if (o->docs) {
            size_t e = g + 1;
            int i = 0;
            while (e < total) {
                while (e >= s->start[i + 1]) i++;
                if ((int32_t)swax_shard_token(&s->sh[i], e - s->start[i]) == eot) break;
                e++;
            }
            len = e - g;
            size_t next = e;
            if ((long)len - 1 < o->min_doc_len || len < 2) {
                (*n_docs_skipped)++;
                g = next;
                continue;
            }
            if (len > (size_t)o->seq_len + 1) len = (size_t)o->seq_len + 1;
            if (budget > 0 && (long)len - 1 > budget) len = (size_t)budget + 1;
            if (seq_push(&v, &n, &cap, g, len)) return SWAX_E_NOMEM;
            g = next;
        } else {
            len = total - g < (size_t)o->seq_len + 1 ? total - g : (size_t)o->seq_len + 1;
            if (budget > 0 && (long)len - 1 > budget) len = (size_t)budget + 1;
            if (seq_push(&v, &n, &cap, g, len)) return SWAX_E_NOMEM;
            g += len - 1;
        }
        if (budget > 0) budget -= (long)len - 1;
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* ---- reports ------------------------------------------------------------------- */

static int write_reports(const SwaxPplOpts *o, const SwaxPplStats *s, const char *desc, int window) {
    char path[4096], a[32], b[32];
    SwaxStr md = {0};
    swax_str_printf(&md, "# Loss by position\n\nmodel `%s`, window %d; %s\n\n", o->model_name, window, desc);
    swax_str_printf(&md, "**overall: loss %.4f, perplexity %.3f over %ld predictions** (the token-weighted mean of "
                    "the buckets)\n\n| positions | predictions | loss | perplexity |\n|---|---:|---:|---:|\n",
                    swax_ppl_loss(s), exp(swax_ppl_loss(s)), s->total_count);
    for (int i = 0; i < s->n_buckets; i++) {
        swax_fmt_tokens(a, sizeof a, i * s->bucket);
        swax_fmt_tokens(b, sizeof b, (i + 1) * s->bucket);
        double l = swax_ppl_bucket_loss(s, i);
        if (s->count[i]) swax_str_printf(&md, "| %s–%s | %ld | %.4f | %.3f |\n", a, b, s->count[i], l, exp(l));
        else swax_str_printf(&md, "| %s–%s | 0 | – | – |\n", a, b);
    }
    int rc = swax_path_join(path, sizeof path, o->out_dir, "ppl.md");
    if (!rc) rc = swax_str_write(&md, path);
    swax_str_free(&md);

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", o->model_name);
    cJSON_AddStringToObject(j, "data", o->data);
    cJSON_AddNumberToObject(j, "window", window);
    cJSON_AddNumberToObject(j, "seq_len", (double)o->seq_len);
    cJSON_AddStringToObject(j, "mode", o->docs ? "docs" : "windows");
    cJSON_AddNumberToObject(j, "predictions", (double)s->total_count);
    cJSON_AddNumberToObject(j, "loss", swax_ppl_loss(s));
    cJSON_AddNumberToObject(j, "ppl", exp(swax_ppl_loss(s)));
    cJSON *bs = cJSON_AddArrayToObject(j, "buckets");
    double *x = calloc((size_t)s->n_buckets, sizeof *x), *y = calloc((size_t)s->n_buckets, sizeof *y);
    for (int i = 0; i < s->n_buckets; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "from", (double)(i * s->bucket));
        cJSON_AddNumberToObject(e, "to", (double)((i + 1) * s->bucket));
        cJSON_AddNumberToObject(e, "predictions", (double)s->count[i]);
        if (s->count[i]) cJSON_AddNumberToObject(e, "loss", swax_ppl_bucket_loss(s, i));
        else cJSON_AddNullToObject(e, "loss");
        cJSON_AddItemToArray(bs, e);
        if (x && y) x[i] = (i + 0.5) * s->bucket, y[i] = swax_ppl_bucket_loss(s, i);
    }
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!rc && (!txt || !x || !y)) rc = swax_error(SWAX_E_NOMEM, "ppl.json");
    if (!rc) rc = swax_path_join(path, sizeof path, o->out_dir, "ppl.json");
    if (!rc) rc = swax_write_file_atomic(path, txt, strlen(txt));
    free(txt);

    /* loss vs position; the training length as a vertical line */
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; y && i < s->n_buckets; i++)
        if (isfinite(y[i])) lo = fmin(lo, y[i]), hi = fmax(hi, y[i]);
    double mx[2] = {(double)o->train_len, (double)o->train_len}, my[2] = {lo, hi};
    SwaxSvgSeries se[2] = {{.label = "loss", .x = x, .y = y, .n = (size_t)s->n_buckets, .color = "#1f77b4",
                            .points = s->n_buckets == 1},
                           {.label = "training length", .x = mx, .y = my, .n = 2, .color = "#d62728"}};
    char title[256];
    snprintf(title, sizeof title, "loss by position (bucket %ld, window %d)", s->bucket, window);
    if (!rc) rc = swax_path_join(path, sizeof path, o->out_dir, "ppl_by_position.svg");
    if (!rc)
        rc = swax_svg_line_chart(path, title, "position in the sequence (tokens)", "loss (nats/token)", se,
                                 o->train_len > 0 && isfinite(lo) ? 2 : 1);
    free(x);
    free(y);
    return rc;
}

/* ---- the run ---------------------------------------------------------------------- */

int swax_eval_ppl(const SwaxPplOpts *o_in, SwaxPplStats *stats_out) {
    SwaxPplOpts o = *o_in;
    const SwaxConfig *c = swax_model_config(o.model);
    const int window = o.window > 0 ? o.window : c->window;
    if (o.seq_len <= 0) o.seq_len = 4L * window > 1024 ? 4L * window : 1024;
    if (o.bucket <= 0) o.bucket = 1024;
    if (o.docs && c->eot_token < 0)
        return swax_error(SWAX_E_USAGE, "ppl --docs: the model's config has no eot_token to split documents at");
    SWAX_TRY(swax_mkdir_p(o.out_dir));
    Stream s;
    SWAX_TRY(stream_open(o.data, c->vocab_used, &s));
    Seq *seqs = NULL;
    long n_seq = 0, skipped = 0;
    SwaxPplStats st = {0};
    SwaxState *state = NULL;
    int32_t *buf = NULL;
    int rc = plan_sequences(&s, &o, c->eot_token, &seqs, &n_seq, &skipped);
    if (!rc && !n_seq)
        rc = swax_error(SWAX_E_INPUT, "%s: no sequence to score (%zu tokens%s)", o.data, stream_total(&s),
                        o.docs ? ", no document long enough" : "");
    if (!rc) rc = swax_ppl_stats_init(&st, o.seq_len, o.bucket);
    if (!rc && o.path != SWAX_PPL_FORWARD) rc = swax_state_create(o.model, 1, window, &state);
    if (!rc) buf = swax_calloc((size_t)o.seq_len + 1, sizeof *buf, "ppl tokens");
    if (!rc && !buf) rc = SWAX_E_NOMEM;
    double work = 0;
    for (long i = 0; i < n_seq; i++) work += (double)seqs[i].len - 1;
    SwaxProgress pr;
    swax_progress_start(&pr, "ppl", n_seq, work, o.quiet);
    for (long i = 0; !rc && i < n_seq; i++) {
        stream_read(&s, seqs[i].start, (size_t)seqs[i].len, buf);
        rc = swax_ppl_sequence(o.model, state, o.path, buf, seqs[i].len, window, o.chunk, 0, &st);
        if (!rc && !isfinite(st.total_nll))
            rc = swax_error(SWAX_E_NUMERIC, "ppl: non-finite loss in sequence %ld (tokens %zu..)", i, seqs[i].start);
        swax_progress_add(&pr, 1, (double)seqs[i].len - 1);
    }
    if (!rc) {
        swax_progress_finish(&pr);
        char desc[1024];
        snprintf(desc, sizeof desc, "data `%s` (%d shard%s, %zu tokens); %ld %s of up to %ld tokens%s%s", o.data, s.n,
                 s.n == 1 ? "" : "s", stream_total(&s), n_seq, o.docs ? "documents" : "sequences", o.seq_len + 1,
                 o.docs && skipped ? ", shorter documents skipped" : "",
                 o.max_tokens > 0 && st.total_count >= o.max_tokens ? " (capped by --max-tokens)" : "");
        rc = write_reports(&o, &st, desc, window);
    }
    if (!rc && stats_out) *stats_out = st;
    else swax_ppl_stats_free(&st);
    swax_state_free(state);
    free(buf);
    free(seqs);
    stream_close(&s);
    return rc;
}
