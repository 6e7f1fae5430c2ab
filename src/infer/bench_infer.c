/* bench_infer.c — inference speed: prefill tokens/s by context length, decode
 * tokens/s at batch 1, and the decode bound of SPEC §3:
 *   tokens/s <= memory bandwidth / bytes per token,
 *   bytes per token = the weights read once (the embedding: one row, unless
 *   tied to the LM head) + every mLSTM state (C, n, m) read and written + every
 *   SWA ring read (w keys and values per layer) and one slot written.
 * Bandwidth is measured: a memcpy of a 256 MiB buffer split over one thread per
 * core, best of 10, counted as bytes read + bytes written per second. Weights
 * that fit in the last-level cache (tiny) can beat this DRAM bound: the JSON
 * line gives the L3 size beside the weight bytes. With a GPU device
 * (SwaxInferBenchOpts.device) see bench_gpu below. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "infer/infer.h"
#include "ops/cpu/host_bench.h"
#include "model/model.h"

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* floats of one recurrent layer's state that a decode step reads and writes: mLSTM C, n, m per
 * head; Gated DeltaNet's state matrix per head (its short-convolution tails are left out: a few
 * rows); 0 for heads the config leaves at 0 (a pattern without that layer) */
static size_t recurrent_state_floats(const SwaxConfig *c, char kind) {
    const size_t D = (size_t)c->d_model;
    if (kind == 'M' && c->mlstm_heads > 0) {
        const size_t NH = (size_t)c->mlstm_heads, dk = D / (2 * NH), dv = D / NH;
        return NH * (dk * dv + dk + 1);
    }
    if (kind == 'D' && swax_config_gdn_heads(c) > 0) {
        const size_t nh = (size_t)swax_config_gdn_heads(c);
        return nh * (D / (2 * nh)) * (D / nh);
    }
    return 0;
}

/* the host's copy bandwidth in bytes/s: one thread per processor, best of 10 */
static double copy_bandwidth(void) { return swax_host_copy_gbps(0, 10) * 1e9; }

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

/* Prefill at the three contexts (those above max_ctx reported as skipped; from
 * 64k on also the rate over the last 32k tokens), one JSON line each, with a
 * "device" field when device is non-NULL. */
static int prefill_sweep(SwaxModel *m, int window, int chunk, const long ctxs[3], long max_ctx, const char *device,
                         FILE *out) {
    if (device) { /* a first 4,096-token piece pays one-off costs (scratch growth, GEMM plans, module loads) */
        double secs = 0, tsecs = 0;
        const long warm = max_ctx < 4096 ? max_ctx : 4096;
        SWAX_TRY(time_prefill(m, window, chunk, warm, 0, &secs, &tsecs));
        fprintf(out, "{\"bench\": \"infer_prefill_warmup\", \"device\": \"%s\", \"context\": %ld, \"seconds\": %.3f}\n",
                device, warm, secs);
    }
    for (int i = 0; i < 3; i++) {
        const long ctx = ctxs[i];
        if (ctx > max_ctx) {
            fprintf(out, "{\"bench\": \"infer_prefill\", \"context\": %ld, \"skipped\": \"above max_context %ld\"}\n",
                    ctx, max_ctx);
            continue;
        }
        const long tail = ctx >= 65536 ? 32768 : 0;
        double secs = 0, tsecs = 0;
        const int prof = device && swax_ops_profile_on(); /* the device's ops table is the profiled one */
        if (prof) swax_ops_profile_reset(); /* this context's prefill only */
        SWAX_TRY(time_prefill(m, window, chunk, ctx, tail, &secs, &tsecs));
        fprintf(out, "{\"bench\": \"infer_prefill\", ");
        if (device) fprintf(out, "\"device\": \"%s\", ", device);
        fprintf(out, "\"context\": %ld, \"seconds\": %.3f, \"tokens_per_s\": %.1f", ctx, secs, ctx / secs);
        if (tail) fprintf(out, ", \"last_%ld_tokens_per_s\": %.1f", tail, tail / tsecs);
        fprintf(out, "}\n");
        if (prof) { /* per block of 4,096 tokens, so that contexts compare op by op */
            fprintf(out, "prefill profile, context %ld, per 4096 tokens (every op synchronised):\n", ctx);
            swax_ops_profile_report(out, (int)((ctx + 4095) / 4096));
        }
        fflush(out);
    }
    return 0;
}

/* ---- on the GPU ----------------------------------------------------------
 * Decode at batch 1 and 64 (greedy ids from the device: no logits copy), each
 * beside its HBM bound: bytes per step = the weights as the table reads them
 * (bf16 for "cuda", fp32 for "cuda-fp32"; the embedding one row per sequence
 * unless tied) + batch x the state read and written (mLSTM C, n, m; SWA ring:
 * the keys and values in the window at the step's mean position — the filled
 * part of the ring, at most w — read, one slot written), over the device copy bandwidth
 * measured here (device-to-device copies of 1 GiB, best of 10, bytes read +
 * written per second). Prefill at 4k, 32k and 1M tokens (1M: also the rate
 * over its last 32k: flat = constant cost). */

static double device_bandwidth(const SwaxOps *ops) {
    const size_t n = (size_t)1 << 30;
    void *a = ops->alloc(n), *b = a ? ops->alloc(n) : NULL;
    if (!a || !b) {
        if (a) ops->free(a);
        return 0;
    }
    ops->copy(b, a, n); /* warm-up */
    ops->sync();
    double best = 1e30;
    for (int rep = 0; rep < 10; rep++) {
        const double t0 = swax_time_sec();
        ops->copy(b, a, n);
        ops->sync();
        const double dt = swax_time_sec() - t0;
        if (dt < best) best = dt;
    }
    ops->free(a), ops->free(b);
    return 2.0 * (double)n / best;
}

static int bench_gpu(SwaxModel *m, const char *spec, int window, int chunk, long max_ctx, int ndec, FILE *out) {
    const SwaxConfig *c = swax_model_config(m);
    const SwaxOps *ops = m->ops;
    const size_t nparams = swax_model_num_params(m), D = c->d_model, V = c->vocab_size;
    const int wsize = strcmp(ops->name, "cuda-fp32") ? 2 : 4;
    const size_t wbytes = (size_t)wsize * (nparams - (c->tie_embeddings ? 0 : (V - 1) * D));
    /* state bytes per sequence and step: mLSTM (and D) layers in full; SWA layers
     * per key in the window (ring_key) plus the slot written (ring_fix) */
    size_t state_rw = 0, ring_key = 0;
    {
        const size_t HD = (size_t)c->attn_heads * c->head_dim, plen = strlen(c->pattern);
        for (int l = 0; l < c->n_blocks; l++) {
            if (c->pattern[l % plen] == 'A') state_rw += 4 * 2 * HD, ring_key += 4 * 2 * HD;
            else state_rw += 2 * 4 * recurrent_state_floats(c, c->pattern[l % plen]);
        }
    }
    const long prompt_len = 192;
    const double bw = device_bandwidth(ops);
    fprintf(out,
            "{\"bench\": \"infer_model\", \"model\": \"%s\", \"device\": \"%s\", \"params\": %zu, \"d_model\": %d, "
            "\"n_blocks\": %d, \"pattern\": \"%s\", \"vocab\": %d, \"window\": %d, \"chunk\": %d, "
            "\"device_copy_bandwidth_GBps\": %.1f}\n",
            spec, ops->name, nparams, c->d_model, c->n_blocks, c->pattern, c->vocab_size, window, chunk, bw / 1e9);
    fflush(out);
    int rc = 0;
    const int batches[2] = {1, 64};
    for (int bi = 0; bi < 2 && !rc; bi++) {
        const int B = batches[bi];
        SwaxState *s = NULL;
        int32_t *prompt = malloc(sizeof(int32_t) * 256), toks[64], next[64];
        int seqs[64];
        rc = prompt ? swax_state_create(m, B, window, &s) : swax_error(SWAX_E_NOMEM, "bench buffers");
        for (int i = 0; i < 256 && !rc; i++) prompt[i] = (int32_t)((i * 7919) % c->vocab_used);
        for (int i = 0; i < B && !rc; i++) rc = swax_prefill(m, s, i, prompt + i % 64, (size_t)prompt_len, chunk, NULL, NULL);
        for (int i = 0; i < B; i++) seqs[i] = i, toks[i] = (int32_t)(i % c->vocab_used);
        for (int k = 0; k < 3 && !rc; k++) rc = swax_decode_greedy(m, s, seqs, toks, B, next); /* warm-up, capture */
        const int steps = ndec;
        const int prof = swax_ops_profile_on();
        if (prof) swax_ops_profile_reset(); /* the timed decode steps only */
        const double t0 = swax_time_sec();
        for (int k = 0; k < steps && !rc; k++) {
            rc = swax_decode_greedy(m, s, seqs, toks, B, next);
            memcpy(toks, next, sizeof(int32_t) * B);
        }
        const double dt = swax_time_sec() - t0;
        if (!rc) {
            /* keys in the window at the timed steps' mean position (after 3 warm-up steps) */
            const double mean_pos = (double)prompt_len + 3 + steps / 2.0;
            const double keys = mean_pos + 1 < window ? mean_pos + 1 : window;
            const double bytes = (double)wbytes + (double)B * ((double)state_rw + keys * (double)ring_key);
            const double bound = bw > 0 ? B * bw / bytes : 0, rate = B * steps / dt;
            fprintf(out,
                    "{\"bench\": \"infer_decode\", \"device\": \"%s\", \"batch\": %d, \"steps\": %d, "
                    "\"tokens_per_s\": %.1f, \"ms_per_step\": %.3f, \"weight_bytes\": %zu, \"state_bytes_rw\": %zu, "
                    "\"bound_tokens_per_s\": %.1f, \"fraction_of_bound\": %.3f}\n",
                    ops->name, B, steps, rate, 1e3 * dt / steps, wbytes, (size_t)(bytes - (double)wbytes), bound,
                    bound > 0 ? rate / bound : 0);
            if (prof) {
                fprintf(out, "decode profile, batch %d (every op synchronised, no CUDA graph):\n", B);
                swax_ops_profile_report(out, steps);
            }
            fflush(out);
        }
        swax_state_free(s);
        free(prompt);
    }
    const long ctxs[3] = {4096, 32768, 1L << 20};
    if (!rc) rc = prefill_sweep(m, window, chunk, ctxs, max_ctx, ops->name, out);
    return rc;
}

int swax_infer_bench_ex(const char *spec, const SwaxInferBenchOpts *o, FILE *out) {
    SwaxInferBenchOpts d = {0};
    if (!o) o = &d;
    if (o->threads > 0) swax_set_threads(o->threads);
    SwaxModel *m;
    SWAX_TRY(load_model(spec, &m));
    if (o->device && strcmp(o->device, "cpu")) {
        int grc = swax_model_set_device(m, o->device);
        if (!grc && !swax_model_on_device(m)) goto host; /* cpu-bf16: the CPU benchmark on its table */
        if (!grc) {
            const SwaxConfig *gc = swax_model_config(m);
            grc = bench_gpu(m, spec, o->window > 0 ? o->window : gc->window, o->chunk > 0 ? o->chunk : 64,
                            o->max_context > 0 ? o->max_context : 1L << 20,
                            o->decode_tokens > 0 ? o->decode_tokens : 256, out);
        }
        swax_model_free(m);
        return grc;
    }
host:;
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
    if (!rc) rc = prefill_sweep(m, window, chunk, ctxs, max_ctx, NULL, out);
    /* decode at each batch size: B sequences, each after its own prompt of
     * max(256, w) tokens (the rings full, as in a long generation), greedy,
     * feeding back the picks; one call of swax_decode per step for all B rows.
     * Batch 1 is the baseline the others are divided by. */
    size_t state_rw = 0;
    {
        const size_t HD = (size_t)c->attn_heads * c->head_dim;
        const size_t plen = strlen(c->pattern);
        for (int l = 0; l < c->n_blocks; l++) {
            if (c->pattern[l % plen] == 'A') state_rw += 4 * (2 * (size_t)window * HD + 2 * HD);
            else state_rw += 2 * 4 * recurrent_state_floats(c, c->pattern[l % plen]);
        }
    }
    const size_t V = c->vocab_size, Dm = c->d_model;
    const size_t wbytes = 4 * (nparams - (c->tie_embeddings ? 0 : (V - 1) * Dm));
    const double bw = !rc ? copy_bandwidth() : 0;
    static const int default_batches[2] = {1, 8};
    const int *batches = o->batches && o->n_batches > 0 ? o->batches : default_batches;
    const int nb = o->batches && o->n_batches > 0 ? o->n_batches : 2;
    const int plen = window > 256 ? window : 256;
    double rate1 = 0;
    for (int bi = 0; bi < nb && !rc; bi++) {
        const int B = batches[bi];
        SwaxState *s = NULL;
        float *lg = malloc(sizeof(float) * (size_t)B * V);
        int32_t *prompt = malloc(sizeof(int32_t) * ((size_t)plen + 64)), *toks = malloc(sizeof(int32_t) * (size_t)B);
        int *seqs = malloc(sizeof(int) * (size_t)B);
        rc = (!lg || !prompt || !toks || !seqs) ? swax_error(SWAX_E_NOMEM, "bench buffers") : 0;
        if (!rc) rc = swax_state_create(m, B, window, &s);
        for (int i = 0; i < plen + 64; i++) prompt[i] = (int32_t)(((long)i * 7919) % c->vocab_used);
        for (int i = 0; i < B && !rc; i++) rc = swax_prefill(m, s, i, prompt + i % 64, (size_t)plen, chunk, lg + (size_t)i * V, NULL);
        for (int i = 0; i < B && !rc; i++) seqs[i] = i, toks[i] = swax_sample(lg + (size_t)i * V, c->vocab_used, NULL, NULL);
        const int steps = ndec / B > 16 ? ndec / B : 16;
        double dt = 0;
        double *st_s = malloc(sizeof(double) * (size_t)steps);
        if (!rc && !st_s) rc = swax_error(SWAX_E_NOMEM, "bench step times");
        for (int k = -1; k < steps && !rc; k++) { /* step -1: warm-up */
            const double t0 = swax_time_sec();
            rc = swax_decode(m, s, seqs, toks, B, lg);
            for (int i = 0; i < B; i++) toks[i] = swax_sample(lg + (size_t)i * V, c->vocab_used, NULL, NULL);
            if (k >= 0) dt += st_s[k] = swax_time_sec() - t0;
        }
        /* the median step as well: on a shared machine a few slow steps (another tenant's burst)
         * move the mean; batch ratios ("vs_batch1") are taken on medians */
        double med = 0;
        if (!rc) {
            qsort(st_s, (size_t)steps, sizeof *st_s, cmp_double);
            med = steps % 2 ? st_s[steps / 2] : 0.5 * (st_s[steps / 2 - 1] + st_s[steps / 2]);
        }
        free(st_s);
        if (!rc) {
            const double rate = (double)B * steps / dt, rate_med = med > 0 ? (double)B / med : 0;
            if (bi == 0 && B == 1) rate1 = rate_med;
            const double bytes = (double)wbytes + (double)B * (double)state_rw;
            const double bound = bw > 0 ? B * bw / bytes : 0;
            const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
            if (B == 1)
                fprintf(out,
                        "{\"bench\": \"infer_decode\", \"batch\": 1, \"tokens\": %d, \"tokens_per_s\": %.1f, "
                        "\"tokens_per_s_median\": %.1f, "
                        "\"weight_bytes\": %zu, \"state_bytes_rw\": %zu, \"l3_bytes\": %ld, \"copy_bandwidth_GBps\": %.2f, "
                        "\"bound_tokens_per_s\": %.1f, \"fraction_of_bound\": %.3f}\n",
                        steps, rate, rate_med, wbytes, state_rw, l3, bw / 1e9, bound, bound > 0 ? rate / bound : 0);
            else {
                fprintf(out,
                        "{\"bench\": \"infer_decode_batch\", \"batch\": %d, \"steps\": %d, \"tokens_per_s\": %.1f, "
                        "\"tokens_per_s_median\": %.1f, \"ms_per_step\": %.3f, \"bound_tokens_per_s\": %.1f",
                        B, steps, rate, rate_med, 1e3 * dt / steps, bound);
                if (rate1 > 0) fprintf(out, ", \"vs_batch1\": %.2f", rate_med / rate1);
                fprintf(out, "}\n");
            }
            fflush(out);
        }
        swax_state_free(s);
        free(lg), free(prompt), free(toks), free(seqs);
    }
    swax_model_free(m);
    return rc;
}

int swax_infer_bench(const char *preset_or_dir, int threads, FILE *out) {
    SwaxInferBenchOpts o = {0};
    o.threads = threads;
    return swax_infer_bench_ex(preset_or_dir, &o, out);
}
