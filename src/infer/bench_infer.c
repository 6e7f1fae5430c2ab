/* bench_infer.c — inference speed: prefill tokens/s by context length, decode
 * tokens/s at batch 1, and the decode bound of SPEC §3:
 *   tokens/s <= memory bandwidth / bytes per token,
 *   bytes per token = the weights read once (the embedding: one row, unless
 *   tied to the LM head) + every mLSTM state (C, n, m) read and written + every
 *   SWA ring read (w keys and values per layer) and one slot written.
 * Bandwidth is measured: a memcpy of a 256 MiB buffer split over one thread per
 * core, best of 10, counted as bytes read + bytes written per second. Weights
 * that fit in the last-level cache (tiny) can beat this DRAM bound: the JSON
 * line gives the L3 size beside the weight bytes. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "infer/infer.h"

static double copy_bandwidth(void) {
    const size_t n = (size_t)256 << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        free(a), free(b);
        return 0;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    double best = 1e30;
    for (int rep = 0; rep < 10; rep++) {
        const double t0 = swax_time_sec();
#pragma omp parallel num_threads(omp_get_num_procs())
        {
            const int nt = omp_get_num_threads(), id = omp_get_thread_num();
            const size_t lo = n / nt * id, hi = id == nt - 1 ? n : n / nt * (id + 1);
            memcpy(b + lo, a + lo, hi - lo);
        }
        const double dt = swax_time_sec() - t0;
        if (dt < best) best = dt;
    }
    volatile char sink = b[n / 2];
    (void)sink;
    free(a), free(b);
    return 2.0 * (double)n / best;
}

static int load_model(const char *spec, SwaxModel **m) {
    struct stat st;
    if (stat(spec, &st) == 0 && S_ISDIR(st.st_mode)) return swax_model_load(spec, m);
    SwaxConfig c;
    SWAX_TRY(swax_config_preset(spec, &c));
    SWAX_TRY(swax_model_create(&c, m));
    swax_model_init(*m, 1);
    return 0;
}

/* prefill of ctx random tokens in blocks; seconds in total and over the last `tail` tokens */
static int time_prefill(SwaxModel *m, int window, int chunk, long ctx, long tail, double *secs, double *tail_secs) {
    const SwaxConfig *c = swax_model_config(m);
    SwaxState *s;
    SWAX_TRY(swax_state_create(m, 1, window, &s));
    enum { BLK = 4096 };
    int32_t *buf = malloc(sizeof(int32_t) * BLK);
    float *last = malloc(sizeof(float) * (size_t)c->vocab_size);
    if (!buf || !last) {
        free(buf), free(last);
        swax_state_free(s);
        return swax_error(SWAX_E_NOMEM, "bench buffers");
    }
    SwaxRng r;
    swax_rng_seed(&r, 1, 2);
    int rc = 0;
    double t_tail = 0;
    const double t0 = swax_time_sec();
    for (long done = 0; done < ctx && !rc;) {
        const long k = ctx - done < BLK ? ctx - done : BLK;
        for (long i = 0; i < k; i++) buf[i] = (int32_t)(swax_rng_u64(&r) % (uint64_t)c->vocab_used);
        if (done == ctx - tail) t_tail = swax_time_sec();
        rc = swax_prefill(m, s, 0, buf, (size_t)k, chunk, done + k == ctx ? last : NULL, NULL);
        done += k;
    }
    const double t1 = swax_time_sec();
    *secs = t1 - t0;
    *tail_secs = t_tail > 0 ? t1 - t_tail : 0;
    free(buf), free(last);
    swax_state_free(s);
    return rc;
}

int swax_infer_bench_ex(const char *spec, const SwaxInferBenchOpts *o, FILE *out) {
    SwaxInferBenchOpts d = {0};
    if (!o) o = &d;
    if (o->threads > 0) swax_set_threads(o->threads);
    SwaxModel *m;
    SWAX_TRY(load_model(spec, &m));
    const SwaxConfig *c = swax_model_config(m);
    const int window = o->window > 0 ? o->window : c->window;
    const int chunk = o->chunk > 0 ? o->chunk : 64;
    const long max_ctx = o->max_context > 0 ? o->max_context : 1L << 20;
    const int ndec = o->decode_tokens > 0 ? o->decode_tokens : 256;
    const int threads = omp_get_max_threads();
    const size_t nparams = swax_model_num_params(m);
    double load1 = -1;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &load1) != 1) load1 = -1;
        fclose(lf);
    }
    fprintf(out,
            "{\"bench\": \"infer_model\", \"model\": \"%s\", \"params\": %zu, \"d_model\": %d, \"n_blocks\": %d, "
            "\"pattern\": \"%s\", \"vocab\": %d, \"window\": %d, \"chunk\": %d, \"threads\": %d, \"loadavg_1min\": %.2f}\n",
            spec, nparams, c->d_model, c->n_blocks, c->pattern, c->vocab_size, window, chunk, threads, load1);
    fflush(out);
    int rc = 0;
    const long ctxs[3] = {1024, 32768, 1L << 20};
    for (int i = 0; i < 3 && !rc; i++) {
        const long ctx = ctxs[i];
        if (ctx > max_ctx) {
            fprintf(out, "{\"bench\": \"infer_prefill\", \"context\": %ld, \"skipped\": \"above max_context %ld\"}\n",
                    ctx, max_ctx);
            continue;
        }
        const long tail = ctx >= 65536 ? 32768 : 0;
        double secs = 0, tsecs = 0;
        rc = time_prefill(m, window, chunk, ctx, tail, &secs, &tsecs);
        if (rc) break;
        fprintf(out, "{\"bench\": \"infer_prefill\", \"context\": %ld, \"seconds\": %.3f, \"tokens_per_s\": %.1f", ctx,
                secs, ctx / secs);
        if (tail) fprintf(out, ", \"last_%ld_tokens_per_s\": %.1f", tail, tail / tsecs);
        fprintf(out, "}\n");
        fflush(out);
    }
    /* decode at batch 1 after a 1k-token prompt, greedy, feeding back the pick */
    double dec_rate = 0;
    size_t state_rw = 0;
    if (!rc) {
        SwaxState *s = NULL;
        float *lg = malloc(sizeof(float) * (size_t)c->vocab_size);
        int32_t *prompt = malloc(sizeof(int32_t) * 1024);
        rc = (!lg || !prompt) ? swax_error(SWAX_E_NOMEM, "bench buffers") : 0;
        if (!rc) rc = swax_state_create(m, 1, window, &s);
        if (!rc) {
            for (int i = 0; i < 1024; i++) prompt[i] = (int32_t)((i * 7919) % c->vocab_used);
            rc = swax_prefill(m, s, 0, prompt, 1024, chunk, lg, NULL);
        }
        if (!rc) {
            int seq = 0;
            int32_t tok = swax_sample(lg, c->vocab_used, NULL, NULL);
            rc = swax_decode(m, s, &seq, &tok, 1, lg); /* warm-up */
            const double t0 = swax_time_sec();
            for (int i = 0; i < ndec && !rc; i++) {
                tok = swax_sample(lg, c->vocab_used, NULL, NULL);
                rc = swax_decode(m, s, &seq, &tok, 1, lg);
            }
            dec_rate = ndec / (swax_time_sec() - t0);
        }
        /* state traffic per token */
        const size_t D = c->d_model, NH = c->mlstm_heads, dk = D / (2 * NH), dv = D / NH;
        const size_t HD = (size_t)c->attn_heads * c->head_dim;
        const size_t plen = strlen(c->pattern);
        for (int l = 0; l < c->n_blocks; l++) {
            if (c->pattern[l % plen] == 'A') state_rw += 4 * (2 * (size_t)window * HD + 2 * HD);
            else state_rw += 2 * 4 * NH * (dk * dv + dk + 1);
        }
        swax_state_free(s);
        s = NULL;
        /* batched decode: 8 sequences, one token each per call */
        enum { NB = 8 };
        float *lgb = !rc ? malloc(sizeof(float) * NB * (size_t)c->vocab_size) : NULL;
        if (!rc && !lgb) rc = swax_error(SWAX_E_NOMEM, "bench buffers");
        if (!rc) rc = swax_state_create(m, NB, window, &s);
        for (int i = 0; i < NB && !rc; i++) rc = swax_prefill(m, s, i, prompt + 64 * i, 64, chunk, NULL, NULL);
        if (!rc) {
            int seqs[NB];
            int32_t toks[NB];
            for (int i = 0; i < NB; i++) seqs[i] = i, toks[i] = (int32_t)(i % c->vocab_used);
            const int steps = ndec / NB > 8 ? ndec / NB : 8;
            const double t0 = swax_time_sec();
            for (int k = 0; k < steps && !rc; k++) {
                rc = swax_decode(m, s, seqs, toks, NB, lgb);
                for (int i = 0; i < NB; i++) toks[i] = swax_sample(lgb + (size_t)i * c->vocab_size, c->vocab_used, NULL, NULL);
            }
            const double dt = swax_time_sec() - t0;
            if (!rc)
                fprintf(out, "{\"bench\": \"infer_decode_batch\", \"batch\": %d, \"steps\": %d, \"tokens_per_s\": %.1f}\n", NB,
                        steps, NB * steps / dt);
        }
        swax_state_free(s);
        free(lgb);
        free(lg), free(prompt);
    }
    if (!rc) {
        const size_t D = c->d_model, V = c->vocab_size;
        const size_t wbytes = 4 * (nparams - (c->tie_embeddings ? 0 : (V - 1) * D));
        const double bw = copy_bandwidth();
        const double bytes = (double)wbytes + (double)state_rw;
        const double bound = bw > 0 ? bw / bytes : 0;
        const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
        fprintf(out,
                "{\"bench\": \"infer_decode\", \"batch\": 1, \"tokens\": %d, \"tokens_per_s\": %.1f, "
                "\"weight_bytes\": %zu, \"state_bytes_rw\": %zu, \"l3_bytes\": %ld, \"copy_bandwidth_GBps\": %.2f, "
                "\"bound_tokens_per_s\": %.1f, \"fraction_of_bound\": %.3f}\n",
                ndec, dec_rate, wbytes, state_rw, l3, bw / 1e9, bound, bound > 0 ? dec_rate / bound : 0);
        fflush(out);
    }
    swax_model_free(m);
    return rc;
}

int swax_infer_bench(const char *preset_or_dir, int threads, FILE *out) {
    SwaxInferBenchOpts o = {0};
    o.threads = threads;
    return swax_infer_bench_ex(preset_or_dir, &o, out);
}
