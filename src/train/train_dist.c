/* train_dist.c — data-parallel training over NCCL, one process per GPU, with
 * a ZeRO-1 sharded optimizer (docs/training.md, "Multi-GPU"; src/dist/dist.h).
 *
 * One optimizer step on rank r of N:
 *   window w = schedule(seed, step)            (the same on every rank)
 *   micro-batches a = 0 .. accum-1: the rows of global micro-batch r·accum + a
 *       (swax_dist_batch_pos: the union over ranks is the 1-GPU order at
 *       --grad-accum N·accum), forward, backward with weight 1/(N·accum) —
 *       the weight a 1-GPU run of N·accum micro-batches gives each;
 *       on the last micro-batch, the model's gradient-ready hook launches each
 *       bucket's reduce-scatter (sum over ranks) on the comm stream as soon as
 *       the backward is done with that bucket (tail, blocks last to first, embedding)
 *   host waits for the comm stream (the exposed communication time)
 *   statistics all-gathered (fp64): each rank's sum of squares per bucket
 *       piece and its loss terms, summed in a fixed order (bucket, then rank;
 *       micro-batches in global order) — identical bits on every rank
 *   clip (PyTorch's rule) on the pieces this rank owns; AdamW on them with
 *       this rank's moments only (ZeRO-1: ~1/N of the optimizer state)
 *   all-gather of every rank's updated pieces into the full parameter array,
 *       then the backend's bf16 copy refreshes (params_updated).
 * Checkpoints: rank 0 writes the model (the one-process format), each rank its
 * optimizer shard, rank 0 a manifest (optim.json with the world size), all
 * in OUT/.ckpt_<step>.tmp/ which rank 0 renames into place after every rank
 * has written (a collective status check between the phases). */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/progress.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "train/train_internal.h"

SwaxRange *swax_tr_buckets(const SwaxModel *m, int *nb) {
    *nb = swax_model_num_buckets(m);
    SwaxRange *b = swax_calloc((size_t)*nb, sizeof *b, "bucket table");
    if (!b) return NULL;
    for (int i = 0; i < *nb; i++) swax_model_bucket(m, i, &b[i].off, &b[i].len);
    return b;
}

int swax_tr_load_sharded(const char *ckdir, SwaxModel *m, SwaxTrainProgress *p, SwaxAdamW *opt) {
    int nb;
    SwaxRange *b = swax_tr_buckets(m, &nb);
    if (!b) return SWAX_E_NOMEM;
    float *hm = swax_calloc(m->n_params ? 2 * m->n_params : 1, sizeof(float), "optimizer state");
    int rc = hm ? 0 : SWAX_E_NOMEM;
    SwaxDistProgress dp;
    if (!rc) rc = swax_optim_shard_load(ckdir, b, nb, m->n_params, 0, 1, hm, hm + m->n_params, &dp);
    if (!rc) {
        swax_adamw_set(opt, hm, hm + m->n_params);
        opt->step = (long)dp.opt_step;
        p->step = dp.step, p->data_pos = dp.data_pos, p->seed = dp.seed, p->tokens_seen = dp.tokens_seen;
        p->elapsed_s = dp.elapsed_s;
    }
    free(hm);
    free(b);
    return rc;
}

/* ---------------------------------------------------------------- the loop */

typedef struct {
    SwaxComm *comm;
    SwaxModel *m;
    const SwaxRange *b;
    int rc;
} Hook;

static void on_grad_ready(void *ud, int bucket) {
    Hook *h = ud;
    if (h->rc) return;
    h->rc = swax_comm_reduce_bucket(h->comm, h->m->grads, h->b[bucket]);
}

static void on_signal(int sig) {
    (void)sig;
    swax_train_request_stop();
}

/* Every rank's status; the worst (largest) comes back to all. */
static int agree(SwaxComm *c, int world, int mine, double *comm_s) {
    double in = mine, *all = malloc(sizeof(double) * (size_t)world);
    SWAX_ASSERT(all);
    int rc = swax_comm_allgather_f64(c, &in, 1, all, comm_s);
    int worst = 0;
    for (int r = 0; !rc && r < world; r++)
        if ((int)all[r] > worst) worst = (int)all[r];
    free(all);
    return rc ? rc : worst;
}

typedef struct {
    SwaxComm *comm;
    SwaxModel *m;
    const SwaxRange *b;
    int nb, rank, world;
    float *ms, *vs;          /* this rank's moments (device) */
    size_t S;                /* shard length */
} Shard;

static int write_checkpoint(const SwaxTrainOptions *o, Shard *sh, const SwaxDistProgress *dp, const char *tj,
                            const SwaxTokenizer *tok, double *comm_s) {
    char tmp[4200];
    int rc = 0;
    if (sh->rank == 0) rc = swax_checkpoint_tmpdir(o->out, (long)dp->step, tmp, sizeof tmp, 1);
    int all = agree(sh->comm, sh->world, rc ? rc : 0, comm_s);
    if (rc) return rc;
    if (all) return swax_error(all, "rank 0 could not make the checkpoint folder in %s", o->out);
    swax_checkpoint_tmpdir(o->out, (long)dp->step, tmp, sizeof tmp, 0);
    float *h = swax_calloc(sh->S ? 2 * sh->S : 1, sizeof(float), "optimizer shard copy");
    if (!h) rc = SWAX_E_NOMEM;
    else {
        sh->m->ops->to_host(h, sh->ms, sh->S * sizeof(float));
        sh->m->ops->to_host(h + sh->S, sh->vs, sh->S * sizeof(float));
        rc = swax_optim_shard_save(tmp, sh->b, sh->nb, sh->m->n_params, sh->rank, sh->world, dp->opt_step, h, h + sh->S);
        free(h);
    }
    all = agree(sh->comm, sh->world, rc, comm_s);
    if (rc) return rc;
    if (all) return swax_error(all, "another rank could not write its optimizer shard into %s: checkpoint abandoned "
                                    "(the previous one is kept)", tmp);
    if (sh->rank == 0) {
        rc = swax_optim_manifest_save(tmp, sh->world, sh->m->n_params, dp);
        if (!rc) rc = swax_checkpoint_commit(o->out, (long)dp->step, sh->m, tj, tok, o->keep_ckpts);
    }
    all = agree(sh->comm, sh->world, rc, comm_s);
    if (rc) return rc;
    if (all) return swax_error(all, "rank 0 could not complete the checkpoint of step %llu",
                               (unsigned long long)dp->step);
    return 0;
}

int swax_train_run_dist(const SwaxTrainOptions *o, const SwaxDistInfo *d0) {
    SwaxDistInfo d = *d0;
    const int R = d.rank, N = d.world;
    const double timeout = o->dist_timeout > 0 ? o->dist_timeout : 300;
    if (strcmp(o->device, "cuda") && strcmp(o->device, "cuda-fp32"))
        return swax_error(SWAX_E_USAGE, "rank %d of %d: multi-GPU training needs --device cuda or cuda-fp32 (got '%s')",
                          R, N, swax_train_device(o->device));
    SWAX_TRY(swax_dist_default_file(&d, o->out));
    unsigned char id[SWAX_NCCL_ID_BYTES];
    memset(id, 0, sizeof id);
    SWAX_TRY(swax_nccl_open(NULL)); /* a machine without NCCL says so before anything waits */
    if (R == 0) SWAX_TRY(swax_nccl_unique_id(id));
    SwaxDistLink link;
    SWAX_TRY(swax_dist_rendezvous(&d, timeout, id, &link));
    const int quiet = o->quiet || R != 0;
    if (!quiet)
        fprintf(stderr, "multi-GPU: %d ranks (%s), rendezvous %s%s\n", N, d.source, d.master[0] ? "tcp " : "file ",
                d.master[0] ? d.master : d.file);

    SwaxModel *m = NULL;
    SwaxLoader *train = NULL, *val = NULL;
    SwaxComm *comm = NULL;
    SwaxTokenizer *tok = NULL;
    SwaxRange *b = NULL;
    History hist = {0};
    Batch bt = {0};
    char *tj = NULL;
    char path[8400], ckdir[4200];
    FILE *log = NULL;
    SwaxDistProgress prog = {0, 0, o->seed, 0, 0, 0};
    Shard sh = {0};
    double *stats = NULL, *all = NULL;
    int nb = 0, rc = swax_dist_pick_device(d.local_rank);
    if (!rc) {
        if (o->resume) {
            rc = swax_train_latest(o->out, ckdir, sizeof ckdir);
            if (!rc) rc = swax_model_load(ckdir, &m);
        } else {
            rc = swax_tr_build_model(o, &m);
        }
    }
    if (!rc) rc = swax_model_set_device(m, o->device);
    if (!rc && o->tokenizer[0]) rc = swax_tokenizer_load_json(o->tokenizer, &tok);
    if (!rc) rc = swax_train_options_json(o, &tj);
    if (!rc) rc = swax_comm_create(&comm, R, N, id, timeout, &link);
    if (rc) goto done;
    const SwaxConfig *cfg = swax_model_config(m);
    if ((rc = swax_loader_open(o->train_data, cfg->vocab_used, &train))) goto done;
    if (R == 0 && o->val_data[0] && (rc = swax_loader_open(o->val_data, cfg->vocab_used, &val))) goto done;
    if (!(b = swax_tr_buckets(m, &nb)) || !swax_model_grads_dev(m)) {
        rc = SWAX_E_NOMEM;
        goto done;
    }
    sh.comm = comm, sh.m = m, sh.b = b, sh.nb = nb, sh.rank = R, sh.world = N;
    sh.S = swax_shard_size(b, nb, R, N);
    sh.ms = m->ops->alloc((sh.S ? sh.S : 1) * sizeof(float));
    sh.vs = sh.ms ? m->ops->alloc((sh.S ? sh.S : 1) * sizeof(float)) : NULL;
    if (!sh.vs) {
        rc = swax_error_wrap(SWAX_E_NOMEM, "AdamW moments of this rank's shard (%zu parameters)", sh.S);
        goto done;
    }
    if (o->resume) {
        float *h = swax_calloc(sh.S ? 2 * sh.S : 1, sizeof(float), "optimizer shard");
        if (!h) rc = SWAX_E_NOMEM;
        else rc = swax_optim_shard_load(ckdir, b, nb, m->n_params, R, N, h, h + sh.S, &prog);
        int left = rc ? 0 : swax_tr_check_steps_left(o, (long)prog.step, ckdir, quiet);
        if (left > 0) rc = left;
        if (!rc && !left) {
            m->ops->to_device(sh.ms, h, sh.S * sizeof(float));
            m->ops->to_device(sh.vs, h + sh.S, sh.S * sizeof(float));
            if (!quiet)
                fprintf(stderr, "resuming %s at step %llu on %d GPUs (optimizer state re-sharded as needed)\n", ckdir,
                        (unsigned long long)prog.step, N);
        }
        free(h);
        if (rc || left < 0) goto done; /* left < 0: complete, nothing to train (every rank alike) */
    }
    if (R == 0) {
        snprintf(path, sizeof path, "%s/" SWAX_TRAIN_OPTIONS_FILE, o->out);
        if ((rc = swax_write_file_atomic(path, tj, strlen(tj)))) goto done;
        if ((rc = swax_tr_open_log(o, (long)prog.step, &hist, &log))) goto done;
    }
    const size_t NT = (size_t)o->B * o->T;
    if ((rc = swax_tr_batch_alloc(&bt, o->B, o->T))) goto done;
    const int nst = nb + o->accum + 1; /* per rank: sumsq per bucket piece, loss terms, stop flag */
    stats = malloc(sizeof(double) * (size_t)nst);
    all = malloc(sizeof(double) * (size_t)nst * N);
    if (!stats || !all) {
        rc = swax_error(SWAX_E_NOMEM, "statistics buffers");
        goto done;
    }
    const int eot = cfg->eot_token;
    const int tty = isatty(2);
    void (*old_int)(int) = signal(SIGINT, on_signal);
    void (*old_term)(int) = signal(SIGTERM, on_signal);
    if (!quiet) {
        char sched[256];
        swax_window_schedule_format(&o->sched, sched, sizeof sched);
        fprintf(stderr,
                "training %.2fM parameters on %d x %s: %ld steps of %d ranks x %d x %d tokens (x%d accum) = %zu "
                "tokens, windows %s; optimizer shard %.2fM parameters per rank\n",
                swax_model_num_params(m) / 1e6, N, swax_model_device(m), o->steps, N, o->B, o->T, o->accum,
                NT * (size_t)o->accum * N, sched, sh.S / 1e6);
    }
    swax_model_set_fused_head(m, 1);
    swax_model_set_recompute(m, o->recompute);
    Hook hook = {comm, m, b, 0};
    const double t_start = swax_time_sec();
    SwaxThrottle thr;
    swax_throttle_start(&thr);
    const double elapsed0 = prog.elapsed_s;
    const long step0 = (long)prog.step;
    long skipped = 0;
    const float bw = 1.0f / (float)(o->accum * N); /* a 1-GPU run of N·accum micro-batches weighs each so */
    while ((long)prog.step < o->steps) {
        const long step = (long)prog.step;
        const int w = swax_window_at(&o->sched, o->seed, step, o->steps);
        const double lr = swax_lr_at(step, o->steps, o->warmup, o->lr, o->min_lr);
        const double t0 = swax_time_sec();
        double comm_s = 0;
        const uint64_t pos0 = prog.data_pos;
        swax_zero_grad(m);
        for (int a = 0; a < o->accum && !rc; a++) {
            swax_loader_seek(train, swax_dist_batch_pos(pos0, R, o->accum, o->B, o->T, a));
            rc = swax_tr_next_batch(train, o, eot, &bt);
            SwaxBatch sb = {o->B, o->T, bt.tokens, bt.targets, o->doc_mask ? bt.docs : NULL, w, o->chunk};
            float l = 0;
            if (!rc) rc = swax_forward(m, &sb, &l);
            if (a == o->accum - 1) m->grad_ready = on_grad_ready, m->grad_ready_ud = &hook;
            if (!rc) rc = swax_backward(m, bw);
            m->grad_ready = NULL, m->grad_ready_ud = NULL;
            if (!rc) rc = hook.rc;
            stats[nb + a] = (double)(l / (float)(o->accum * N)); /* the 1-GPU loop's term, bit for bit */
        }
        if (!rc) rc = swax_comm_wait(comm, "gradient reduce-scatter", &comm_s);
        if (rc) break;
        for (int k = 0; k < nb; k++) {
            const SwaxRange p = swax_shard_piece(b[k], R, N);
            stats[k] = p.len ? m->ops->sumsq(m->grads + p.off, p.len) : 0.0;
        }
        stats[nb + o->accum] = swax_tr_stop_requested();
        if ((rc = swax_comm_allgather_f64(comm, stats, nst, all, &comm_s))) break;
        double ss = 0, loss = 0;
        int stop = 0;
        for (int k = 0; k < nb; k++)
            for (int r = 0; r < N; r++) ss += all[(size_t)r * nst + k];
        for (int r = 0; r < N; r++)
            for (int a = 0; a < o->accum; a++) loss += all[(size_t)r * nst + nb + a];
        for (int r = 0; r < N; r++) stop |= all[(size_t)r * nst + nb + o->accum] != 0;
        const double gnorm = sqrt(ss);
        const int finite = isfinite(loss) && isfinite(gnorm);
        if (!finite && (rc = swax_tr_nonfinite(o, step, loss, gnorm, &skipped, quiet))) break;
        /* PyTorch's clip_grad_norm_ (as swax_grad_clip), on the pieces this rank owns */
        if (finite && o->clip > 0) {
            const double coef = o->clip / (gnorm + 1e-6);
            if (coef < 1.0)
                for (int k = 0; k < nb; k++) {
                    const SwaxRange p = swax_shard_piece(b[k], R, N);
                    if (p.len) m->ops->scale(m->grads + p.off, p.len, (float)coef);
                }
        }
        /* AdamW on the owned pieces, tensor by tensor (weight decay per tensor); a skipped step keeps the weights */
        if (finite) prog.opt_step++;
        size_t at = 0;
        for (int k = 0; k < nb && finite; k++) {
            const SwaxRange p = swax_shard_piece(b[k], R, N);
            for (int t = 0; t < m->n_tensors && p.len; t++) {
                const SwaxTensor *ten = &m->tensors[t];
                const size_t lo0 = ten->offset, hi0 = lo0 + (size_t)ten->shape[0] * (size_t)ten->shape[1];
                const size_t lo = lo0 > p.off ? lo0 : p.off, hi = hi0 < p.off + p.len ? hi0 : p.off + p.len;
                if (lo >= hi) continue;
                const size_t j = at + (lo - p.off);
                m->ops->adamw(m->params + lo, m->grads + lo, sh.ms + j, sh.vs + j, hi - lo, (float)lr,
                              o->adam.beta1, o->adam.beta2, o->adam.eps, ten->decay ? o->adam.weight_decay : 0.0f,
                              (int)prog.opt_step);
            }
            at += p.len;
        }
        if (finite) {
            for (int k = 0; k < nb && !rc; k++) rc = swax_comm_gather_bucket(comm, m->params, b[k]);
            if (!rc) rc = swax_comm_wait(comm, "weight all-gather", &comm_s);
            if (rc) break;
            if (m->ops->params_updated) m->ops->params_updated(m->params, m->n_params);
            prog.tokens_seen += (uint64_t)NT * o->accum * N;
        }
        prog.step++;
        prog.data_pos = pos0 + (uint64_t)NT * o->accum * N;
        const double dt = swax_time_sec() - t0, now = swax_time_sec() - t_start;
        prog.elapsed_s = elapsed0 + now; /* a skipped step's time counts too: it may be saved */
        const double tps = (double)NT * o->accum * N / dt;
        const double avg = now / (double)(prog.step - step0);
        /* a skipped step still ends the run, or saves, where it falls on the schedule */
        const int last = (long)prog.step == o->steps || (o->stop_after && (long)prog.step >= o->stop_after);
        if (R == 0 && finite) {
            fprintf(log,
                    "{\"step\": %llu, \"loss\": %.6f, \"window\": %d, \"lr\": %.6e, \"grad_norm\": %.6f, "
                    "\"tokens\": %llu, \"tok_per_s\": %.1f, \"time_s\": %.3f, \"world\": %d, \"comm_s\": %.4f, "
                    "\"step_s\": %.4f, \"mfu\": %.4f, \"gpu_mem_mb\": %.0f}\n",
                    (unsigned long long)prog.step, loss, w, lr, gnorm, (unsigned long long)prog.tokens_seen, tps,
                    prog.elapsed_s, N, comm_s, dt,
                    tps / N * swax_model_train_flops_per_token(cfg, o->T, w, o->chunk) / 989e12,
                    swax_model_device_memory(m) / 1048576.0);
            swax_tr_hist_add(&hist.step, &hist.loss, &hist.n, &hist.cap, (double)prog.step, loss);
        }
        if (!quiet && finite)
            swax_tr_progress(o, (long)prog.step, (float)loss, w, lr, tps, avg * (double)(o->steps - (long)prog.step),
                             tty, (long)prog.step == step0 + 1 || last || stop, &thr);
        if (R == 0 && val && o->eval_every > 0 && ((long)prog.step % o->eval_every == 0 || last)) {
            double vl;
            const int wv = swax_window_schedule_largest(&o->sched);
            if ((rc = swax_tr_evaluate(m, o, val, eot, wv, &bt, &vl))) break;
            fprintf(log, "{\"step\": %llu, \"val_loss\": %.6f, \"window\": %d}\n", (unsigned long long)prog.step, vl,
                    wv);
            swax_tr_hist_add(&hist.vstep, &hist.vloss, &hist.nv, &hist.capv, (double)prog.step, vl);
            if (!quiet)
                fprintf(stderr, "%sstep %llu: val loss %.4f (window %d)\n", tty ? "\n" : "",
                        (unsigned long long)prog.step, vl, wv);
        }
        if (log) fflush(log);
        if (last || stop || (o->ckpt_every > 0 && (long)prog.step % o->ckpt_every == 0)) {
            double cs = 0;
            if ((rc = write_checkpoint(o, &sh, &prog, tj, tok, &cs))) break;
            if (R == 0) swax_tr_write_curve(o->out, &hist);
        }
        if (stop) {
            rc = swax_error(SWAX_E_INTERRUPTED, "interrupted at step %llu: checkpoint saved in %s (resume with --resume)",
                            (unsigned long long)prog.step, o->out);
            break;
        }
        if (last) break;
    }
    signal(SIGINT, old_int);
    signal(SIGTERM, old_term);
    if (!quiet && tty) fprintf(stderr, "\n");
    if (!rc && !quiet)
        fprintf(stderr, "done: %llu steps on %d GPUs, %.2f M tokens, %.1f s; checkpoint in %s, curve in %s/loss.svg\n",
                (unsigned long long)prog.step, N, prog.tokens_seen / 1e6, prog.elapsed_s, o->out, o->out);
done:
    if (rc && rc != SWAX_E_INTERRUPTED && strncmp(swax_last_error(), "rank ", 5) != 0)
        swax_error_wrap(rc, "rank %d of %d", R, N); /* the launcher shows every rank's stderr: say whose it is */
    if (log) fclose(log);
    free(bt.rows), free(bt.tokens), free(bt.targets), free(bt.docs);
    free(hist.step), free(hist.loss), free(hist.vstep), free(hist.vloss);
    free(stats), free(all), free(tj), free(b);
    if (m) {
        m->ops->free(sh.ms);
        m->ops->free(sh.vs);
    }
    swax_comm_destroy(comm, rc != 0 && rc != SWAX_E_INTERRUPTED);
    swax_dist_link_close(&link, rc == 0 || rc == SWAX_E_INTERRUPTED);
    swax_tokenizer_free(tok);
    if (train) swax_loader_close(train);
    if (val) swax_loader_close(val);
    swax_model_free(m);
    return rc;
}
