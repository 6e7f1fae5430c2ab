/* train.h — the training loop (SPEC §4): AdamW, warm-up + cosine, clipping,
 * gradient accumulation, the stochastic window schedule, document masking,
 * periodic validation, atomic checkpoints and bit-exact resume. */
#ifndef SWAX_TRAIN_H
#define SWAX_TRAIN_H

#include <stdint.h>
#include <string.h>

#include "train/optim.h"
#include "train/schedule.h"

typedef enum { SWAX_NAN_STOP = 0, SWAX_NAN_SKIP = 1 } SwaxNanPolicy;

typedef struct {
    /* data */
    char train_data[1024];   /* glob of llm.c shards, e.g. data/tiny/train_*.bin */
    char val_data[1024];     /* glob, or empty for none */
    char tokenizer[1024];    /* optional: tokenizer folder/JSON copied into each checkpoint */
    /* model: a preset, a config file, or an existing checkpoint to start from */
    char preset[32];
    char config_path[1024];
    char init_from[1024];
    char sets[32][128];      /* config overrides key=value */
    int nsets;
    /* run */
    char out[1024];
    int B, T, accum;
    long steps, warmup;
    double lr, min_lr;
    SwaxAdamWConfig adam;
    float clip;
    SwaxWindowSchedule sched;
    int chunk;
    int doc_mask;
    long eval_every, eval_batches, ckpt_every;
    int keep_ckpts;
    uint64_t seed;
    int threads;
    char device[16];         /* "cpu" (or empty), "cuda" or "cuda-fp32" */
    int recompute;           /* activation recomputation (same bits, less memory) */
    SwaxNanPolicy nan_policy;
    int resume;
    long stop_after;         /* stop (with a checkpoint) after this step, 0 = run to `steps` (tests) */
    int quiet;
    /* multi-GPU (docs/training.md, "Multi-GPU"); how this invocation runs, not saved in train.json.
     * dist_world 0: the ranks come from the launcher's environment (or one process). */
    int dist_rank, dist_world;
    char dist_master[256];   /* "host:port" of rank 0 for the TCP rendezvous */
    char dist_file[1024];    /* rendezvous file (shared by every rank) */
    double dist_timeout;     /* watchdog seconds for rendezvous and collectives; 0 = 300 */
} SwaxTrainOptions;

/* The device's name: "cpu" for an empty device field (the default). */
static inline const char *swax_train_device(const char *device) { return device[0] ? device : "cpu"; }
/* Whether name is a device swax trains on: cpu, cpu-bf16, cuda or cuda-fp32. */
static inline int swax_train_device_known(const char *name) {
    return !strcmp(name, "cpu") || !strcmp(name, "cpu-bf16") || !strcmp(name, "cuda") || !strcmp(name, "cuda-fp32");
}

/* Fills options with the recipe of a preset (model and training share names). */
int swax_train_preset(const char *name, SwaxTrainOptions *o);
/* Runs (or resumes) training. Returns a SwaxStatus; SWAX_E_INTERRUPTED after
 * Ctrl-C (a checkpoint was saved), SWAX_E_NUMERIC on a non-finite loss. */
int swax_train_run(const SwaxTrainOptions *o);
/* Asks a running swax_train_run to checkpoint and stop (signal-safe). */
void swax_train_request_stop(void);

/* The run's options as JSON: OUT/train.json, written when a run starts (and
 * when it resumes, with what the resume changed), which `swax train --out OUT
 * --resume` reads back; and train.json in every checkpoint. Every field except
 * out, threads, resume, stop_after and quiet (where and how this invocation
 * runs); relative paths are made absolute. See docs/training.md. */
#define SWAX_TRAIN_OPTIONS_FILE "train.json"
int swax_train_options_json(const SwaxTrainOptions *o, char **out); /* malloc'd text */
int swax_train_options_save(const char *path, const SwaxTrainOptions *o); /* temp + fsync + rename */
/* Reads the file into *o, keeping o's out, threads, resume, stop_after and
 * quiet. A missing or corrupt file, a missing key or a wrong type:
 * SWAX_E_INPUT with a message naming the file (and the key). */
int swax_train_options_load(const char *path, SwaxTrainOptions *o);
/* Makes the relative paths (data globs, tokenizer, config, init-from) absolute. */
int swax_train_options_absolute(SwaxTrainOptions *o);

/* Without o->resume: SWAX_E_USAGE when o->out already holds a run (OUT/latest, or any ckpt_* folder):
 * training there would overwrite its log and options and mix the two runs' checkpoints. swax_train_run
 * checks it; `--gpus` checks it before starting the ranks. */
int swax_train_check_fresh(const SwaxTrainOptions *o);

/* The newest complete checkpoint folder of a run: OUT/<name in OUT/latest>. */
int swax_train_latest(const char *out, char *dir, size_t cap);

#endif
