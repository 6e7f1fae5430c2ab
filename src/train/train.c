/* train.c — the training loop. See train.h and docs/training.md.
 *
 * One optimizer step:
 *   window w = schedule(seed, step)        (same on every rank, and on resume)
 *   for each of `accum` micro-batches: rows of T+1 tokens from the loader,
 *       document starts at end-of-text tokens, forward, backward(1/accum)
 *   clip the global gradient norm, AdamW with lr = warm-up/cosine(step)
 * Everything that a step depends on is either in the checkpoint (weights,
 * moments, step, data position) or a function of (seed, step): resume is exact. */
#include "train/train.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/progress.h"
#include "core/svg.h"
#include "data/loader.h"
#include "io/config_json.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "train/train_state.h"
#include "train/train_internal.h"
#include "dist/dist.h"

static volatile sig_atomic_t g_stop;
void swax_train_request_stop(void) { g_stop = 1; }
int swax_tr_stop_requested(void) { return g_stop != 0; }
static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

typedef struct {
    const char *name;
    int T, B, accum;
    long steps, warmup;
    double lr;
    const char *windows;
    long eval_every, ckpt_every;
} TrainPreset;

/* Recipes (docs/training.md). `tiny` is the demo: a few minutes on 2 CPU cores. */
static const TrainPreset presets[] = {
    {"tiny", 256, 8, 1, 800, 50, 3e-3, "32:0.5,128:0.5", 100, 200},
    {"small", 1024, 8, 1, 3000, 100, 1.5e-3, "64:0.5,512:0.5", 250, 500},
    {"bench-cpu", 1024, 4, 1, 1000, 50, 1e-3, "128", 100, 500},
    {"bench-gpu", 4096, 8, 1, 20000, 500, 1e-3, "128:0.5,2048:0.5", 500, 2000},
    {"1.4b", 16384, 8, 4, 50000, 2000, 8e-4, "128:0.5,2048:0.5", 1000, 2000},
    {"7b", 16384, 8, 16, 50000, 2000, 5e-4, "128:0.75,2048:0.25", 1000, 2000},
};

int swax_train_preset(const char *name, SwaxTrainOptions *o) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const TrainPreset *p = &presets[i];
        if (strcmp(p->name, name) != 0) continue;
        snprintf(o->preset, sizeof o->preset, "%s", name);
        o->T = p->T, o->B = p->B, o->accum = p->accum, o->steps = p->steps, o->warmup = p->warmup;
        o->lr = p->lr, o->min_lr = p->lr * 0.1;
        o->eval_every = p->eval_every, o->ckpt_every = p->ckpt_every;
        return swax_window_schedule_parse(&o->sched, p->windows);
    }
    return swax_error(SWAX_E_USAGE, "unknown preset '%s' (known: tiny, small, bench-cpu, bench-gpu, 1.4b, 7b)", name);
}

int swax_train_latest(const char *out, char *dir, size_t cap) { return swax_run_latest(out, dir, cap); }

int swax_train_check_fresh(const SwaxTrainOptions *o) {
    if (o->resume) return 0;
    /* a run is there if OUT/latest exists (readable or not) or any checkpoint folder does (a run killed
     * before its first `latest`, or one whose `latest` was damaged) */
    char path[4200], found[512] = "";
    snprintf(path, sizeof path, "%s/latest", o->out);
    if (access(path, F_OK) == 0) snprintf(found, sizeof found, "%s", "latest");
    DIR *d = found[0] ? NULL : opendir(o->out);
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, "ckpt_", 5)) {
            snprintf(found, sizeof found, "%s", e->d_name);
            break;
        }
    if (d) closedir(d);
    if (!found[0]) return 0;
    return swax_error(SWAX_E_USAGE,
                      "%s already holds a training run (%s there): continue it with --resume, or train into another "
                      "--out (or delete the folder first); a new run here would overwrite its log and options and "
                      "mix its checkpoints with the old ones",
                      o->out, found);
}

/* A resumed run must have steps left: 0 when it has; -1 when it is exactly complete (step == --steps:
 * nothing to do, said on stderr unless quiet; not an error, so that a finished run's resume command
 * stays harmless); an error when --steps or --stop-after lies below the checkpoint's step (it trained
 * nothing and saved the smaller --steps as the run's option). */
int swax_tr_check_steps_left(const SwaxTrainOptions *o, long step, const char *ckdir, int quiet) {
    if (step == o->steps) {
        if (!quiet) fprintf(stderr, "%s is at step %ld of --steps %ld: the run is complete, nothing to train\n", ckdir, step, o->steps);
        return -1;
    }
    if (step > o->steps)
        return swax_error(SWAX_E_USAGE, "%s is at step %ld, and --steps %ld leaves nothing to train (give a larger --steps)",
                          ckdir, step, o->steps);
    if (o->stop_after && step >= o->stop_after)
        return swax_error(SWAX_E_USAGE, "%s is at step %ld, and --stop-after %ld leaves nothing to train", ckdir, step,
                          o->stop_after);
    return 0;
}

int swax_tr_nonfinite(const SwaxTrainOptions *o, long step, double loss, double gnorm, long *skipped, int quiet) {
    if (o->nan_policy == SWAX_NAN_SKIP && ++*skipped <= 10) {
        if (!quiet)
            fprintf(stderr, "\nstep %ld: non-finite loss %g / grad norm %g: update skipped (%ld so far)\n", step, loss,
                    gnorm, *skipped);
        return 0;
    }
    char dir[4200];
    const int have = swax_train_latest(o->out, dir, sizeof dir) == 0;
    if (!have) swax_error_clear();
    return swax_error(SWAX_E_NUMERIC, "step %ld: loss %g, gradient norm %g: training diverged; %s%s%s; lower --lr or use --nan skip",
                      step, loss, gnorm, have ? "the last good checkpoint is kept (" : "no checkpoint was written before it",
                      have ? dir : "", have ? ")" : "");
}

/* ---- the run's log: JSONL of every step, and the loss curve ---- */

void swax_tr_hist_add(double **xs, double **ys, size_t *n, size_t *cap, double x, double y) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *xs = realloc(*xs, *cap * sizeof(double));
        *ys = realloc(*ys, *cap * sizeof(double));
        SWAX_ASSERT(*xs && *ys);
    }
    (*xs)[*n] = x, (*ys)[*n] = y, (*n)++;
}

/* Keeps log lines of steps <= upto (resume drops what the killed run logged after its checkpoint). */
int swax_tr_log_reload(const char *path, long upto, History *h) {
    char *text;
    size_t len;
    if (access(path, F_OK) != 0) return 0;
    SWAX_TRY(swax_read_file(path, &text, &len));
    char *out = malloc(len + 1);
    size_t olen = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line + 1) : strlen(line);
        long step = -1;
        double loss = NAN, vloss = NAN;
        char *p;
        if ((p = strstr(line, "\"step\":")) && p < line + ll) step = strtol(p + 7, NULL, 10);
        if (step >= 0 && step <= upto && nl) {
            memcpy(out + olen, line, ll);
            olen += ll;
            if ((p = strstr(line, "\"loss\":")) && p < line + ll) loss = strtod(p + 7, NULL);
            if ((p = strstr(line, "\"val_loss\":")) && p < line + ll) vloss = strtod(p + 11, NULL);
            if (isfinite(loss)) swax_tr_hist_add(&h->step, &h->loss, &h->n, &h->cap, (double)step, loss);
            if (isfinite(vloss)) swax_tr_hist_add(&h->vstep, &h->vloss, &h->nv, &h->capv, (double)step, vloss);
        }
        line = nl ? nl + 1 : NULL;
    }
    int rc = swax_write_file_atomic(path, out, olen);
    free(out);
    free(text);
    return rc;
}

void swax_tr_write_curve(const char *out, const History *h) {
    char path[4200];
    snprintf(path, sizeof path, "%s/loss.svg", out);
    SwaxSvgSeries s[2] = {{"train loss", h->step, h->loss, h->n, "#1f77b4", 0},
                          {"val loss", h->vstep, h->vloss, h->nv, "#d62728", 1}};
    swax_svg_line_chart(path, "SWAX training loss", "step", "cross-entropy (nats)", s, h->nv ? 2 : 1);
}

/* ---- progress ---- */

static void fmt_time(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

/* A line per 5% of the steps (redrawn in place on a terminal), at most 4 a
 * second (core/progress.h), plus the lines of the run's first and last steps (`edge`). */
void swax_tr_progress(const SwaxTrainOptions *o, long step, float loss, int w, double lr, double tps, double eta,
                     int tty, int edge, SwaxThrottle *thr) {
    if (o->quiet) return;
    long every = o->steps / 20 > 0 ? o->steps / 20 : 1;
    if (edge) swax_throttle_mark(thr);
    else if ((!tty && step % every != 0) || !swax_throttle_due(thr)) return;
    char e[32];
    fmt_time(e, sizeof e, eta);
    const int width = 24;
    int fill = (int)((double)step / o->steps * width);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    if (tty) {
        fprintf(stderr, "\rstep %ld/%ld [%s] loss %.4f  w %-5d lr %.2e  %.0f tok/s  ETA %s   ", step, o->steps,
                bar, loss, w, lr, tps, e);
    } else {
        fprintf(stderr, "step %ld/%ld loss %.4f w %d lr %.2e %.0f tok/s ETA %s\n", step, o->steps, loss, w, lr, tps, e);
    }
    fflush(stderr);
}

/* ---- batches ---- */

int swax_tr_next_batch(SwaxLoader *ld, const SwaxTrainOptions *o, int eot, Batch *b) {
    const int B = o->B, T = o->T;
    SWAX_TRY(swax_loader_next(ld, B, T, b->rows));
    for (int r = 0; r < B; r++)
        for (int t = 0; t < T; t++) {
            const int32_t *row = b->rows + (size_t)r * (T + 1);
            b->tokens[(size_t)r * T + t] = row[t];
            b->targets[(size_t)r * T + t] = row[t + 1];
            b->docs[(size_t)r * T + t] = o->doc_mask && eot >= 0 && row[t] == eot;
        }
    return 0;
}

int swax_tr_evaluate(SwaxModel *m, const SwaxTrainOptions *o, SwaxLoader *val, int eot, int window, Batch *b,
                    double *out) {
    swax_loader_seek(val, 0);
    swax_model_set_fused_head(m, 0); /* loss only: no head backward */
    double sum = 0;
    for (long i = 0; i < o->eval_batches; i++) {
        SWAX_TRY(swax_tr_next_batch(val, o, eot, b));
        SwaxBatch sb = {o->B, o->T, b->tokens, b->targets, o->doc_mask ? b->docs : NULL, window, o->chunk};
        float loss;
        SWAX_TRY(swax_forward(m, &sb, &loss));
        sum += loss;
    }
    *out = sum / (double)o->eval_batches;
    swax_model_set_fused_head(m, 1);
    return 0;
}

int swax_tr_build_model(const SwaxTrainOptions *o, SwaxModel **m) {
    if (o->init_from[0]) {
        SWAX_TRY(swax_model_load(o->init_from, m));
        /* the model comes from the checkpoint: a --set that would change it was silently ignored */
        const SwaxConfig *have = swax_model_config(*m);
        for (int i = 0; i < o->nsets; i++) {
            SwaxConfig c = *have;
            int rc = swax_config_set(&c, o->sets[i]);
            if (!rc && memcmp(&c, have, sizeof c) != 0)
                rc = swax_error(SWAX_E_USAGE,
                                "--set %s with --init-from %s: the model (its config.json) comes from the checkpoint "
                                "and --set cannot change it",
                                o->sets[i], o->init_from);
            if (rc) {
                swax_model_free(*m);
                *m = NULL;
                return rc;
            }
        }
        return 0;
    }
    SwaxConfig c;
    int rc = o->config_path[0] ? swax_config_load(o->config_path, &c) : swax_config_preset(o->preset, &c);
    for (int i = 0; !rc && i < o->nsets; i++) rc = swax_config_set(&c, o->sets[i]);
    if (rc) return rc;
    /* the default window at inference is the largest training window */
    c.window = swax_window_schedule_largest(&o->sched);
    SWAX_TRY(swax_model_create(&c, m));
    swax_model_init(*m, o->seed);
    return 0;
}

int swax_tr_open_log(const SwaxTrainOptions *o, long upto, History *h, FILE **log) {
    char path[4200];
    snprintf(path, sizeof path, "%s/log.jsonl", o->out);
    if (o->resume) SWAX_TRY(swax_tr_log_reload(path, upto, h));
    else unlink(path);
    if (!(*log = fopen(path, "a"))) return swax_error(SWAX_E_IO, "%s: cannot write the log", path);
    return 0;
}

int swax_tr_batch_alloc(Batch *b, int B, int T) {
    const size_t NT = (size_t)B * T;
    b->rows = malloc(sizeof(int32_t) * (size_t)B * (T + 1));
    b->tokens = malloc(sizeof(int32_t) * NT);
    b->targets = malloc(sizeof(int32_t) * NT);
    b->docs = malloc(NT);
    if (!b->rows || !b->tokens || !b->targets || !b->docs) return swax_error(SWAX_E_NOMEM, "batch buffers");
    return 0;
}

int swax_train_run(const SwaxTrainOptions *o) {
    if (o->B < 1 || o->T < 1 || o->accum < 1 || o->steps < 1)
        return swax_error(SWAX_E_USAGE, "batch, seq-len, grad-accum and steps must be >= 1");
    if (!(o->lr > 0) || !(o->min_lr >= 0)) return swax_error(SWAX_E_USAGE, "learning rates must be positive");
    SWAX_TRY(swax_window_schedule_validate(&o->sched));
    SWAX_TRY(swax_mkdir_p(o->out));
    SWAX_TRY(swax_train_check_fresh(o));
    swax_set_threads(o->threads);
    g_stop = 0;
    {
        /* several ranks (flags, `--gpus`, mpirun, srun): the data-parallel loop (train_dist.c) */
        SwaxDistInfo d;
        SWAX_TRY(swax_dist_discover(&d, o->dist_world > 0 ? o->dist_rank : -1, o->dist_world > 0 ? o->dist_world : -1,
                                    o->dist_master, o->dist_file, NULL, NULL));
        /* SWAX_DIST_FORCE=1: the data-parallel loop even for one rank (checks the NCCL path on one GPU) */
        const char *force = getenv("SWAX_DIST_FORCE");
        if (d.world > 1 || (force && atoi(force) > 0)) return swax_train_run_dist(o, &d);
    }

    SwaxModel *m = NULL;
    SwaxLoader *train = NULL, *val = NULL;
    SwaxAdamW opt = {0};
    SwaxTrainProgress prog = {0, 0, o->seed, 0, 0};
    SwaxTokenizer *tok = NULL; /* saved into every checkpoint */
    History hist = {0};
    Batch b = {0};
    char *tj = NULL; /* the options, saved as OUT/train.json and in every checkpoint */
    char path[8400], ckdir[4200];
    int rc = 0;
    FILE *log = NULL;

    if (o->resume) {
        rc = swax_train_latest(o->out, ckdir, sizeof ckdir);
        if (!rc) rc = swax_model_load(ckdir, &m);
    } else {
        rc = swax_tr_build_model(o, &m);
    }
    if (!rc && o->device[0]) rc = swax_model_set_device(m, o->device);
    if (!rc && o->tokenizer[0]) rc = swax_tokenizer_load_json(o->tokenizer, &tok);
    if (!rc) rc = swax_train_options_json(o, &tj);
    if (rc) goto done;
    const SwaxConfig *cfg = swax_model_config(m);
    if ((rc = swax_loader_open(o->train_data, cfg->vocab_used, &train))) goto done;
    if (o->val_data[0] && (rc = swax_loader_open(o->val_data, cfg->vocab_used, &val))) goto done;
    if ((rc = swax_adamw_init(&opt, m, o->adam))) goto done;
    if (o->resume) {
        snprintf(path, sizeof path, "%s/train_state.bin", ckdir);
        if (swax_optim_is_sharded(ckdir)) { /* written by a multi-GPU run: gather its shards */
            if ((rc = swax_tr_load_sharded(ckdir, m, &prog, &opt))) goto done;
        } else if ((rc = swax_train_state_load(path, &prog, &opt))) goto done;
        swax_loader_seek(train, prog.data_pos);
        if ((rc = swax_tr_check_steps_left(o, (long)prog.step, ckdir, o->quiet))) {
            if (rc < 0) rc = 0; /* complete: nothing written */
            goto done;
        }
        if (!o->quiet) fprintf(stderr, "resuming %s at step %llu\n", ckdir, (unsigned long long)prog.step);
    }
    if (!swax_model_grads_dev(m)) {
        rc = SWAX_E_NOMEM;
        goto done;
    }
    /* the run folder remembers its options: `--resume` alone continues */
    snprintf(path, sizeof path, "%s/" SWAX_TRAIN_OPTIONS_FILE, o->out);
    if ((rc = swax_write_file_atomic(path, tj, strlen(tj)))) goto done;
    if ((rc = swax_tr_open_log(o, (long)prog.step, &hist, &log))) goto done;
    const size_t NT = (size_t)o->B * o->T;
    if ((rc = swax_tr_batch_alloc(&b, o->B, o->T))) goto done;
    const int eot = cfg->eot_token;
    const int tty = isatty(2);
    void (*old_handler)(int) = signal(SIGINT, on_sigint);
    void (*old_term)(int) = signal(SIGTERM, on_sigint);
    if (!o->quiet) {
        char sched[256];
        swax_window_schedule_format(&o->sched, sched, sizeof sched);
        fprintf(stderr, "training %.2fM parameters on %s: %ld steps of %d x %d tokens (x%d accum), windows %s\n",
                swax_model_num_params(m) / 1e6, swax_model_device(m), o->steps, o->B, o->T, o->accum, sched);
    }
    swax_model_set_fused_head(m, 1); /* no (B·T, V) logits kept in training steps */
    swax_model_set_recompute(m, o->recompute);
    const double t_start = swax_time_sec();
    SwaxThrottle thr;
    swax_throttle_start(&thr);
    const double elapsed0 = prog.elapsed_s;
    const long step0 = (long)prog.step;
    long skipped = 0;
    while ((long)prog.step < o->steps) {
        const long step = (long)prog.step;
        const int w = swax_window_at(&o->sched, o->seed, step, o->steps);
        const double lr = swax_lr_at(step, o->steps, o->warmup, o->lr, o->min_lr);
        const double t0 = swax_time_sec();
        swax_zero_grad(m);
        double loss = 0;
        for (int a = 0; a < o->accum && !rc; a++) {
            rc = swax_tr_next_batch(train, o, eot, &b);
            SwaxBatch sb = {o->B, o->T, b.tokens, b.targets, o->doc_mask ? b.docs : NULL, w, o->chunk};
            float l = 0;
            if (!rc) rc = swax_forward(m, &sb, &l);
            if (!rc) rc = swax_backward(m, 1.0f / (float)o->accum);
            loss += l / o->accum;
        }
        if (rc) break;
        const double gnorm = swax_grad_norm(m); /* clipped inside the update (swax_adamw_step_scaled) */
        const int finite = isfinite(loss) && isfinite(gnorm);
        /* (the skip line is printed even with --quiet here, as it always was) */
        if (!finite && (rc = swax_tr_nonfinite(o, step, loss, gnorm, &skipped, 0))) break;
        if (finite) {
            swax_adamw_step_scaled(&opt, m, (float)lr, swax_clip_coef(gnorm, o->clip));
            prog.tokens_seen += NT * o->accum;
        }
        prog.step++;
        prog.data_pos = swax_loader_position(train);
        /* a skipped step still ends the run, or saves, where it falls on the schedule */
        const int last = (long)prog.step == o->steps || (o->stop_after && (long)prog.step >= o->stop_after);
        const double dt = swax_time_sec() - t0, now = swax_time_sec() - t_start;
        prog.elapsed_s = elapsed0 + now; /* a skipped step's time counts too: it may be saved */
        if (finite) {
            const double tps = (double)NT * o->accum / dt;
            const double avg = now / (double)(prog.step - step0);
            char devinfo[128] = "";
            if (swax_model_on_device(m)) /* MFU against 989 TFLOP/s dense bf16 (H100/H200) */
                snprintf(devinfo, sizeof devinfo, ", \"mfu\": %.4f, \"gpu_mem_mb\": %.0f",
                         tps * swax_model_train_flops_per_token(cfg, o->T, w, o->chunk) / 989e12,
                         swax_model_device_memory(m) / 1048576.0);
            fprintf(log,
                    "{\"step\": %llu, \"loss\": %.6f, \"window\": %d, \"lr\": %.6e, \"grad_norm\": %.6f, "
                    "\"tokens\": %llu, \"tok_per_s\": %.1f, \"time_s\": %.3f%s}\n",
                    (unsigned long long)prog.step, loss, w, lr, gnorm, (unsigned long long)prog.tokens_seen, tps,
                    prog.elapsed_s, devinfo);
            swax_tr_hist_add(&hist.step, &hist.loss, &hist.n, &hist.cap, (double)prog.step, loss);
            swax_tr_progress(o, (long)prog.step, (float)loss, w, lr, tps, avg * (double)(o->steps - (long)prog.step),
                             tty, (long)prog.step == step0 + 1 || last || g_stop, &thr);
        }
        if (val && o->eval_every > 0 && ((long)prog.step % o->eval_every == 0 || last)) {
            double vl;
            const int wv = swax_window_schedule_largest(&o->sched);
            if ((rc = swax_tr_evaluate(m, o, val, eot, wv, &b, &vl))) break;
            fprintf(log, "{\"step\": %llu, \"val_loss\": %.6f, \"window\": %d}\n", (unsigned long long)prog.step, vl,
                    wv);
            swax_tr_hist_add(&hist.vstep, &hist.vloss, &hist.nv, &hist.capv, (double)prog.step, vl);
            if (!o->quiet) fprintf(stderr, "%sstep %llu: val loss %.4f (window %d)\n", tty ? "\n" : "",
                                   (unsigned long long)prog.step, vl, wv);
        }
        fflush(log);
        if (last || g_stop || (o->ckpt_every > 0 && (long)prog.step % o->ckpt_every == 0)) {
            if ((rc = swax_checkpoint_write(o->out, (long)prog.step, m, &prog, &opt, tj, tok,
                                            o->keep_ckpts)))
                break;
            swax_tr_write_curve(o->out, &hist);
        }
        if (g_stop) {
            rc = swax_error(SWAX_E_INTERRUPTED, "interrupted at step %llu: checkpoint saved in %s (resume with --resume)",
                            (unsigned long long)prog.step, o->out);
            break;
        }
        if (last) break;
    }
    signal(SIGINT, old_handler);
    signal(SIGTERM, old_term);
    if (!o->quiet && tty) fprintf(stderr, "\n");
    if (!rc && !o->quiet)
        fprintf(stderr, "done: %llu steps, %.2f M tokens, %.1f s; checkpoint in %s, curve in %s/loss.svg\n",
                (unsigned long long)prog.step, prog.tokens_seen / 1e6, prog.elapsed_s, o->out, o->out);
done:
    if (log) fclose(log);
    free(b.rows), free(b.tokens), free(b.targets), free(b.docs);
    free(hist.step), free(hist.loss), free(hist.vstep), free(hist.vloss);
    free(tj);
    swax_adamw_free(&opt);
    swax_tokenizer_free(tok);
    if (train) swax_loader_close(train);
    if (val) swax_loader_close(val);
    swax_model_free(m);
    return rc;
}
