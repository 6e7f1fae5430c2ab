/* train_internal.h — what the one-process loop (train.c) shares with the
 * data-parallel loop (train_dist.c): the log and curve, progress lines,
 * batches, validation, model construction. Not a public interface. */
#ifndef SWAX_TRAIN_INTERNAL_H
#define SWAX_TRAIN_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "core/progress.h"
#include "data/loader.h"
#include "dist/dist.h"
#include "train/train.h"
#include "train/train_state.h"

typedef struct {
    double *step, *loss, *vstep, *vloss;
    size_t n, nv, cap, capv;
} History;

typedef struct {
    int32_t *rows, *tokens, *targets;
    uint8_t *docs;
} Batch;

void swax_tr_hist_add(double **xs, double **ys, size_t *n, size_t *cap, double x, double y);
int swax_tr_log_reload(const char *path, long upto, History *h);
void swax_tr_write_curve(const char *out, const History *h);
void swax_tr_progress(const SwaxTrainOptions *o, long step, float loss, int w, double lr, double tps, double eta,
                      int tty, int edge, SwaxThrottle *thr);
/* RUN/log.jsonl opened for appending: on a resume its rows up to `upto` are
 * reloaded into h (the curve), else it starts empty. */
int swax_tr_open_log(const SwaxTrainOptions *o, long upto, History *h, FILE **log);
/* The batch buffers of B rows of T tokens; SWAX_E_NOMEM with a message. */
int swax_tr_batch_alloc(Batch *b, int B, int T);
int swax_tr_next_batch(SwaxLoader *ld, const SwaxTrainOptions *o, int eot, Batch *b);
int swax_tr_evaluate(SwaxModel *m, const SwaxTrainOptions *o, SwaxLoader *val, int eot, int window, Batch *b,
                     double *out);
int swax_tr_build_model(const SwaxTrainOptions *o, SwaxModel **m);
/* A resumed run at `step`: 0 steps left to train; -1 exactly complete (step == --steps; said on stderr
 * unless quiet: nothing to do, not an error); SWAX_E_USAGE when --steps or --stop-after lies below it. */
int swax_tr_check_steps_left(const SwaxTrainOptions *o, long step, const char *ckdir, int quiet);
/* A non-finite loss or gradient norm at `step`: under --nan skip, the 10 first times (*skipped counts
 * them), 0 and a line on stderr unless quiet; else SWAX_E_NUMERIC naming the checkpoint kept, or saying
 * that none was written. */
int swax_tr_nonfinite(const SwaxTrainOptions *o, long step, double loss, double gnorm, long *skipped, int quiet);
int swax_tr_stop_requested(void);
/* A one-process resume from a multi-GPU checkpoint (optim.json + shards): the full moments into opt. */
int swax_tr_load_sharded(const char *ckdir, SwaxModel *m, SwaxTrainProgress *p, SwaxAdamW *opt);
/* The model's buckets (swax_model_bucket) as ranges; malloc'd, *nb set. */
SwaxRange *swax_tr_buckets(const SwaxModel *m, int *nb);
/* The data-parallel loop (train_dist.c): d->world > 1. */
int swax_train_run_dist(const SwaxTrainOptions *o, const SwaxDistInfo *d);

#endif
