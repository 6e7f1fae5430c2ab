/* cmd_train.c — `swax train`. */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "dist/dist.h"
#include "train/train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: swax train --preset NAME --data DIR --out DIR [options]\n"
            "       swax train --out DIR --resume [options]\n\n"
            "Trains a SWAX model with the stochastic window schedule (SPEC §4). Writes DIR/train.json (the\n"
            "options), DIR/ckpt_<step>/ (model.safetensors, config.json, train_state.bin), DIR/latest,\n"
            "DIR/log.jsonl, DIR/loss.svg (a DIR that holds a run is refused without --resume). Ctrl-C saves a\n"
            "checkpoint and exits; --resume continues\n"
            "bit-identically with the options in DIR/train.json. Flags given with --resume override those\n"
            "(and are listed): data, optimisation, schedule, eval/checkpoint cadence; the model (--preset,\n"
            "--config, --set, --init-from) and --seed cannot change. --threads, --stop-after, --quiet are\n"
            "not saved.\n\n"
            "data and model:\n"
            "  --preset NAME        model + training recipe: tiny, small, bench-cpu, bench-gpu, 1.4b, 7b\n"
            "  --data DIR           shards made by `swax data build` (DIR/train_*.bin, DIR/val_*.bin)\n"
            "  --train GLOB         training shards (instead of --data)\n"
            "  --val GLOB           validation shards (instead of --data; empty = none)\n"
            "  --tokenizer PATH     tokenizer copied into every checkpoint (default: DIR/tokenizer of --data)\n"
            "  --config FILE        model config instead of the preset's\n"
            "  --init-from CKPT     start from existing weights\n"
            "  --set key=value      override a model config field (repeatable), as config.json writes it\n"
            "optimisation:\n"
            "  --batch B  --seq-len T  --grad-accum N  --steps N  --warmup N\n"
            "  --lr X  --min-lr X  --weight-decay X (0.1)  --beta1 X (0.9)  --beta2 X (0.95)  --clip X (1.0)\n"
            "window schedule:\n"
            "  --windows SPEC       e.g. 128:0.5,2048:0.5 (or 128,2048 for equal; 128 = fixed)\n"
            "  --anneal F           final fraction of steps moved to the largest window (0.1)\n"
            "  --anneal-mode MODE   linear (short windows fade out; default) or switch (largest only)\n"
            "other:\n"
            "  --chunk L            mLSTM chunk (64)     --no-doc-mask   attend across documents\n"
            "  --eval-every N  --eval-batches N (8)  --ckpt-every N  --keep N (2)\n"
            "  --seed S (1)  --threads N  --resume  --quiet\n"
            "  --nan stop|skip      a non-finite loss or gradient: stop (exit 4; default), or skip that update\n"
            "                       (at most 10 times)\n"
            "  --stop-after N       end at step N with a checkpoint (--resume goes on to\n"
            "                       --steps; the schedule stays that of --steps)\n"
            "  --device D           where to compute: cpu (default), cpu-bf16 (CPU, bf16 matrix products through\n"
            "                       oneDNN, fp32 master weights: ~2x faster products with AVX512-BF16 or AMX),\n"
            "                       cuda (GPU, bf16 matrix products, fp32 master weights), cuda-fp32 (GPU, fp32\n"
            "                       everywhere, TF32 off)\n"
            "  --recompute          keep only each block's input; remake its activations in the backward\n"
            "                       (about 1/3 more compute, a fraction of the activation memory, same bits)\n"
            "multi-GPU (data parallel over NCCL, one process per GPU; docs/training.md):\n"
            "  --gpus N             start N processes on this node, one per GPU, and wait for them\n"
            "                       (each takes --batch x --grad-accum rows a step: global batch = N x that)\n"
            "  --rank R --world N   this process's rank, when no launcher sets it (mpirun and srun do:\n"
            "                       OMPI_COMM_WORLD_*, SLURM_PROCID/SLURM_STEP_NUM_TASKS/SLURM_LOCALID)\n"
            "  --master HOST:PORT   rendezvous over TCP at rank 0's address (several nodes)\n"
            "  --dist-file PATH     rendezvous through a file every rank sees (default under mpirun/srun:\n"
            "                       OUT/.dist-<job id>)\n"
            "  --dist-timeout S     watchdog: a rank that waits S seconds (300) for the others stops with a\n"
            "                       message naming the rank that died when known\n"
            "  e.g. swax train --gpus 2 --device cuda --preset bench-gpu --data D --out R\n"
            "       mpirun -np 4 --allow-run-as-root swax train --device cuda --preset 1.4b --data D --out R\n");
}

static int parse_l(const char *flag, const char *s, long lo, long hi, long *out) {
    return cli_parse_int("train", flag, s, lo, hi, out);
}

enum { O_PRESET = 256, O_DATA, O_TRAIN, O_VAL, O_TOK, O_CONFIG, O_INIT, O_SET, O_OUT, O_BATCH, O_SEQ, O_ACC,
       O_STEPS, O_WARM, O_LR, O_MINLR, O_WD, O_B1, O_B2, O_CLIP, O_WIN, O_ANN, O_ANNM, O_CHUNK, O_NODOC,
       O_EVE, O_EVB, O_CKE, O_KEEP, O_SEED, O_THR, O_NAN, O_RESUME, O_STOPA, O_QUIET, O_DEVICE, O_RECOMP,
       O_GPUS, O_RANK, O_WORLD, O_MASTER, O_DFILE, O_DTIME };

/* "--flag NEW (was OLD)" appended to the list of overrides. */
static void note(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(char *buf, size_t cap, const char *fmt, ...) {
    size_t n = strlen(buf);
    if (n + 3 >= cap) return;
    if (n) memcpy(buf + n, ", ", 3), n += 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

/* --resume: the options saved in OUT/train.json, with the flags given now
 * on top where that is safe (listed on stderr); the model and the seed
 * cannot change. `cli` holds what the command line resolved to; `given`
 * which flags it had. Returns 0 with *cli replaced, or an exit code. */
static int resume_options(SwaxTrainOptions *cli, const unsigned char *given, int have_data) {
#define GIVEN(opt) given[(opt) - O_PRESET]
    char path[1200];
    snprintf(path, sizeof path, "%s/" SWAX_TRAIN_OPTIONS_FILE, cli->out);
    SwaxTrainOptions s = *cli; /* keeps out, threads, resume, stop_after, quiet */
    int rc = swax_train_options_load(path, &s);
    if (rc) {
        if (access(path, F_OK) == 0) return cli_fail("train", rc); /* corrupt: the message names the file */
        char latest[1200];
        snprintf(latest, sizeof latest, "%s/latest", cli->out);
        if (access(latest, F_OK) != 0) {
            fprintf(stderr, "swax train: error: %s: missing, and no checkpoint (%s): %s is not a run to resume\n",
                    path, latest, cli->out);
            return SWAX_E_INPUT;
        }
        if (cli->train_data[0]) { /* a run from before train.json: the command line has it all */
            fprintf(stderr, "swax train: note: %s is missing (a run from an older swax): resuming with the options "
                            "on the command line; this run saves them from now on\n", path);
            return 0;
        }
        fprintf(stderr,
                "swax train: error: %s: missing: the run's saved options are needed to resume with --out and "
                "--resume alone (a run from an older swax?); give its options again (--preset, --data, ...) "
                "with --resume\n", path);
        return SWAX_E_INPUT;
    }
    if ((rc = swax_train_options_absolute(cli))) return cli_fail("train", rc);
    /* what cannot change: the model comes from the checkpoint, the seed draws every step's window */
    const char *fixed = NULL, *now = NULL;
    char was[1200];
    if (GIVEN(O_PRESET) && strcmp(cli->preset, s.preset)) {
        fixed = "--preset", now = cli->preset;
        snprintf(was, sizeof was, "with --preset %s", s.preset);
    }
    if (GIVEN(O_CONFIG) && strcmp(cli->config_path, s.config_path)) {
        fixed = "--config", now = cli->config_path;
        snprintf(was, sizeof was, s.config_path[0] ? "with --config %s" : "without --config%s", s.config_path);
    }
    if (GIVEN(O_INIT) && strcmp(cli->init_from, s.init_from)) {
        fixed = "--init-from", now = cli->init_from;
        snprintf(was, sizeof was, s.init_from[0] ? "with --init-from %s" : "without --init-from%s", s.init_from);
    }
    for (int i = 0; GIVEN(O_SET) && i < cli->nsets; i++) {
        int found = 0;
        for (int j = 0; j < s.nsets; j++) found |= !strcmp(cli->sets[i], s.sets[j]);
        if (!found) {
            fixed = "--set", now = cli->sets[i];
            snprintf(was, sizeof was, "without --set %s", cli->sets[i]);
        }
    }
    char seed_now[32];
    if (GIVEN(O_SEED) && cli->seed != s.seed) {
        snprintf(seed_now, sizeof seed_now, "%llu", (unsigned long long)cli->seed);
        fixed = "--seed", now = seed_now;
        snprintf(was, sizeof was, "with --seed %llu", (unsigned long long)s.seed);
    }
    if (fixed) {
        fprintf(stderr,
                "swax train: error: %s %s on --resume: the run was started %s (%s), and a resumed run keeps its "
                "model (from its checkpoint) and its seed: leave %s out, or start a new run in another --out\n",
                fixed, now, was, path, fixed);
        return SWAX_E_USAGE;
    }
    /* what may change, said on stderr */
    char ov[4096] = "";
#define OV_STR(cond, flag, field)                                                  \
    if ((cond) && strcmp(cli->field, s.field)) {                                   \
        note(ov, sizeof ov, flag " %s (was %s)", cli->field, s.field[0] ? s.field : "none"); \
        memcpy(s.field, cli->field, sizeof s.field);                               \
    }
#define OV_NUM(opt, flag, field, fmt, T)                                           \
    if (GIVEN(opt) && cli->field != s.field) {                                     \
        note(ov, sizeof ov, flag " " fmt " (was " fmt ")", (T)cli->field, (T)s.field); \
        s.field = cli->field;                                                      \
    }
    OV_STR(GIVEN(O_TRAIN) || have_data, "--train", train_data)
    OV_STR(GIVEN(O_VAL) || have_data, "--val", val_data)
    OV_STR(GIVEN(O_TOK) || (have_data && cli->tokenizer[0]), "--tokenizer", tokenizer)
    OV_NUM(O_BATCH, "--batch", B, "%ld", long)
    OV_NUM(O_SEQ, "--seq-len", T, "%ld", long)
    OV_NUM(O_ACC, "--grad-accum", accum, "%ld", long)
    OV_NUM(O_STEPS, "--steps", steps, "%ld", long)
    OV_NUM(O_WARM, "--warmup", warmup, "%ld", long)
    OV_NUM(O_LR, "--lr", lr, "%.9g", double)
    OV_NUM(O_MINLR, "--min-lr", min_lr, "%.9g", double)
    OV_NUM(O_WD, "--weight-decay", adam.weight_decay, "%.9g", double)
    OV_NUM(O_B1, "--beta1", adam.beta1, "%.9g", double)
    OV_NUM(O_B2, "--beta2", adam.beta2, "%.9g", double)
    OV_NUM(O_CLIP, "--clip", clip, "%.9g", double)
    OV_NUM(O_ANN, "--anneal", sched.anneal, "%.9g", double)
    OV_NUM(O_CHUNK, "--chunk", chunk, "%ld", long)
    OV_NUM(O_EVE, "--eval-every", eval_every, "%ld", long)
    OV_NUM(O_EVB, "--eval-batches", eval_batches, "%ld", long)
    OV_NUM(O_CKE, "--ckpt-every", ckpt_every, "%ld", long)
    OV_NUM(O_KEEP, "--keep", keep_ckpts, "%ld", long)
#undef OV_STR
#undef OV_NUM
    if (GIVEN(O_WIN) && (cli->sched.n != s.sched.n ||
                         memcmp(cli->sched.windows, s.sched.windows, sizeof s.sched.windows[0] * (size_t)s.sched.n) ||
                         memcmp(cli->sched.probs, s.sched.probs, sizeof s.sched.probs[0] * (size_t)s.sched.n))) {
        char a[256], b[256];
        SwaxWindowSchedule x = cli->sched;
        x.anneal = s.sched.anneal, x.mode = s.sched.mode; /* only the list is compared here */
        swax_window_schedule_format(&x, a, sizeof a);
        swax_window_schedule_format(&s.sched, b, sizeof b);
        note(ov, sizeof ov, "--windows %s (was %s)", a, b);
        s.sched.n = cli->sched.n;
        memcpy(s.sched.windows, cli->sched.windows, sizeof s.sched.windows);
        memcpy(s.sched.probs, cli->sched.probs, sizeof s.sched.probs);
    }
    if (GIVEN(O_ANNM) && cli->sched.mode != s.sched.mode) {
        note(ov, sizeof ov, "--anneal-mode %s", cli->sched.mode == SWAX_ANNEAL_SWITCH ? "switch" : "linear");
        s.sched.mode = cli->sched.mode;
    }
    if (GIVEN(O_NODOC) && s.doc_mask) note(ov, sizeof ov, "--no-doc-mask"), s.doc_mask = 0;
    if (GIVEN(O_NAN) && cli->nan_policy != s.nan_policy) {
        note(ov, sizeof ov, "--nan %s", cli->nan_policy == SWAX_NAN_SKIP ? "skip" : "stop");
        s.nan_policy = cli->nan_policy;
    }
    /* where it computes: as before unless told otherwise (a run started on the GPU
     * continues on the CPU, or the other way round, with --device) */
    if (GIVEN(O_DEVICE) && strcmp(swax_train_device(cli->device), swax_train_device(s.device))) {
        note(ov, sizeof ov, "--device %s (was %s)", swax_train_device(cli->device), swax_train_device(s.device));
        memcpy(s.device, cli->device, sizeof s.device);
    }
    if (GIVEN(O_RECOMP) && !s.recompute) note(ov, sizeof ov, "--recompute"), s.recompute = 1;
    if (ov[0]) fprintf(stderr, "swax train: resuming with %s, overridden on the command line: %s\n", path, ov);
    else if (!s.quiet) fprintf(stderr, "swax train: resuming with the options in %s\n", path);
    *cli = s;
    return 0;
#undef GIVEN
}

/* --gpus N: one child process per GPU on this node, each a rank of the run
 * (SWAX_DIST_* in its environment); the rendezvous through a file in a
 * private temporary folder. A failing rank ends the others (dist.h). */
typedef struct {
    SwaxTrainOptions *o;
    int n;
    char file[256];
} GpusRun;

static int gpus_child(int rank, void *ud) {
    GpusRun *g = ud;
    char buf[32];
    snprintf(buf, sizeof buf, "%d", rank);
    setenv("SWAX_DIST_RANK", buf, 1);
    setenv("SWAX_DIST_LOCAL_RANK", buf, 1);
    snprintf(buf, sizeof buf, "%d", g->n);
    setenv("SWAX_DIST_WORLD", buf, 1);
    setenv("SWAX_DIST_FILE", g->file, 1);
    snprintf(buf, sizeof buf, "gpus%ld", (long)getppid());
    setenv("SWAX_DIST_JOB", buf, 1);
    if (rank != 0) g->o->quiet = 1;
    int rc = swax_train_run(g->o);
    return rc ? cli_fail("train", rc) : 0;
}

static int run_gpus(SwaxTrainOptions *o, int n) {
    GpusRun g = {o, n, ""};
    int rc = swax_train_check_fresh(o); /* once here, not once per rank */
    if (rc) return cli_fail("train", rc);
    char dir[] = "/tmp/swax-gpus-XXXXXX";
    if (!mkdtemp(dir)) return cli_fail("train", swax_error(SWAX_E_IO, "--gpus: cannot make a temporary folder in /tmp"));
    snprintf(g.file, sizeof g.file, "%s/rendezvous", dir);
    int failed = -1;
    rc = swax_dist_spawn(n, 15.0, gpus_child, &g, &failed);
    unlink(g.file);
    rmdir(dir);
    if (rc && failed >= 0 && rc != SWAX_E_INTERRUPTED)
        fprintf(stderr, "swax train: error: --gpus %d: rank %d failed (status %d); the last checkpoint in %s is kept\n",
                n, failed, rc, o->out);
    return rc;
}

int cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"preset", 1, 0, O_PRESET}, {"data", 1, 0, O_DATA}, {"train", 1, 0, O_TRAIN}, {"val", 1, 0, O_VAL},
        {"tokenizer", 1, 0, O_TOK}, {"config", 1, 0, O_CONFIG}, {"init-from", 1, 0, O_INIT}, {"set", 1, 0, O_SET},
        {"out", 1, 0, O_OUT}, {"batch", 1, 0, O_BATCH}, {"seq-len", 1, 0, O_SEQ}, {"grad-accum", 1, 0, O_ACC},
        {"steps", 1, 0, O_STEPS}, {"warmup", 1, 0, O_WARM}, {"lr", 1, 0, O_LR}, {"min-lr", 1, 0, O_MINLR},
        {"weight-decay", 1, 0, O_WD}, {"beta1", 1, 0, O_B1}, {"beta2", 1, 0, O_B2}, {"clip", 1, 0, O_CLIP},
        {"windows", 1, 0, O_WIN}, {"anneal", 1, 0, O_ANN}, {"anneal-mode", 1, 0, O_ANNM}, {"chunk", 1, 0, O_CHUNK},
        {"no-doc-mask", 0, 0, O_NODOC}, {"eval-every", 1, 0, O_EVE}, {"eval-batches", 1, 0, O_EVB},
        {"ckpt-every", 1, 0, O_CKE}, {"keep", 1, 0, O_KEEP}, {"seed", 1, 0, O_SEED}, {"threads", 1, 0, O_THR},
        {"nan", 1, 0, O_NAN}, {"resume", 0, 0, O_RESUME}, {"stop-after", 1, 0, O_STOPA}, {"quiet", 0, 0, O_QUIET},
        {"device", 1, 0, O_DEVICE}, {"recompute", 0, 0, O_RECOMP}, {"gpus", 1, 0, O_GPUS}, {"rank", 1, 0, O_RANK},
        {"world", 1, 0, O_WORLD}, {"master", 1, 0, O_MASTER}, {"dist-file", 1, 0, O_DFILE},
        {"dist-timeout", 1, 0, O_DTIME}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    SwaxTrainOptions o;
    memset(&o, 0, sizeof o);
    o.adam = swax_adamw_defaults();
    o.clip = 1.0f, o.chunk = 64, o.doc_mask = 1, o.eval_batches = 8, o.keep_ckpts = 2, o.seed = 1;
    /* first pass: the preset, so that later flags override it */
    const char *preset = "tiny", *data = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[i + 1];
        else if (!strncmp(argv[i], "--preset=", 9)) preset = argv[i] + 9;
    }
    int rc = swax_train_preset(preset, &o);
    if (rc) return cli_fail("train", rc);
    const char *windows = NULL, *anneal_mode = NULL;
    double anneal = -1, d;
    long v;
    int c, gpus = 0, rank_given = 0;
    unsigned char given[O_DTIME - O_PRESET + 1] = {0}; /* the flags on the command line */
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= O_PRESET && c <= O_DTIME) given[c - O_PRESET] = 1;
        switch (c) {
        case O_PRESET: break;
        case O_DATA: data = optarg; break;
        case O_TRAIN: snprintf(o.train_data, sizeof o.train_data, "%s", optarg); break;
        case O_VAL: snprintf(o.val_data, sizeof o.val_data, "%s", optarg); break;
        case O_TOK: snprintf(o.tokenizer, sizeof o.tokenizer, "%s", optarg); break;
        case O_CONFIG: snprintf(o.config_path, sizeof o.config_path, "%s", optarg); break;
        case O_INIT: snprintf(o.init_from, sizeof o.init_from, "%s", optarg); break;
        case O_SET:
            if (o.nsets == 32) return cli_fail("train", swax_error(SWAX_E_USAGE, "too many --set"));
            snprintf(o.sets[o.nsets++], sizeof o.sets[0], "%s", optarg);
            break;
        case O_OUT: snprintf(o.out, sizeof o.out, "%s", optarg); break;
        case O_RECOMP: o.recompute = 1; break;
        case O_GPUS:
            if (parse_l("--gpus", optarg, 1, 1024, &v)) return SWAX_E_USAGE;
            gpus = (int)v;
            break;
        case O_RANK:
            if (parse_l("--rank", optarg, 0, 4095, &v)) return SWAX_E_USAGE;
            o.dist_rank = (int)v, rank_given = 1;
            break;
        case O_WORLD:
            if (parse_l("--world", optarg, 1, 4096, &v)) return SWAX_E_USAGE;
            o.dist_world = (int)v;
            break;
        case O_MASTER: snprintf(o.dist_master, sizeof o.dist_master, "%s", optarg); break;
        case O_DFILE: snprintf(o.dist_file, sizeof o.dist_file, "%s", optarg); break;
        case O_DTIME:
            if (cli_parse_double("train", "--dist-timeout", optarg, &d)) return SWAX_E_USAGE;
            if (!(d > 0)) return cli_fail("train", swax_error(SWAX_E_USAGE, "--dist-timeout must be > 0 seconds"));
            o.dist_timeout = d;
            break;
        case O_DEVICE:
            if (!swax_train_device_known(optarg))
                return cli_fail("train", swax_error(SWAX_E_USAGE, "--device %s: expected cpu, cpu-bf16, cuda or cuda-fp32",
                                                    optarg));
            snprintf(o.device, sizeof o.device, "%s", optarg);
            break;
#define INTARG(field, lo, hi, flag)                                   \
    if (parse_l(flag, optarg, lo, hi, &v)) return SWAX_E_USAGE;       \
    o.field = v;                                                      \
    break;
#define DBLARG(field, flag)                                                        \
    if (cli_parse_double("train", flag, optarg, &d)) return SWAX_E_USAGE;          \
    o.field = d;                                                                   \
    break;
        case O_BATCH: INTARG(B, 1, 1 << 20, "--batch")
        case O_SEQ: INTARG(T, 1, 1 << 24, "--seq-len")
        case O_ACC: INTARG(accum, 1, 1 << 20, "--grad-accum")
        case O_STEPS: INTARG(steps, 1, 1L << 40, "--steps")
        case O_WARM: INTARG(warmup, 0, 1L << 40, "--warmup")
        case O_CHUNK: INTARG(chunk, 1, 4096, "--chunk")
        case O_EVE: INTARG(eval_every, 0, 1L << 40, "--eval-every")
        case O_EVB: INTARG(eval_batches, 1, 1L << 20, "--eval-batches")
        case O_CKE: INTARG(ckpt_every, 0, 1L << 40, "--ckpt-every")
        case O_KEEP: INTARG(keep_ckpts, 1, 1000, "--keep")
        case O_SEED: INTARG(seed, 0, 2147483647L, "--seed")
        case O_THR: INTARG(threads, 1, 1024, "--threads")
        case O_STOPA: INTARG(stop_after, 1, 1L << 40, "--stop-after")
        case O_LR: DBLARG(lr, "--lr")
        case O_MINLR: DBLARG(min_lr, "--min-lr")
        case O_WD: DBLARG(adam.weight_decay, "--weight-decay")
        case O_B1: DBLARG(adam.beta1, "--beta1")
        case O_B2: DBLARG(adam.beta2, "--beta2")
        case O_CLIP: DBLARG(clip, "--clip")
#undef INTARG
#undef DBLARG
        case O_WIN: windows = optarg; break;
        case O_ANN:
            if (cli_parse_double("train", "--anneal", optarg, &anneal)) return SWAX_E_USAGE;
            break;
        case O_ANNM: anneal_mode = optarg; break;
        case O_NODOC: o.doc_mask = 0; break;
        case O_NAN:
            if (!strcmp(optarg, "stop")) o.nan_policy = SWAX_NAN_STOP;
            else if (!strcmp(optarg, "skip")) o.nan_policy = SWAX_NAN_SKIP;
            else return cli_fail("train", swax_error(SWAX_E_USAGE, "--nan expects stop or skip"));
            break;
        case O_RESUME: o.resume = 1; break;
        case O_QUIET: o.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return SWAX_E_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "swax train: error: unexpected argument '%s'\n", argv[optind]);
        return SWAX_E_USAGE;
    }
    if (windows && (rc = swax_window_schedule_parse(&o.sched, windows))) return cli_fail("train", rc);
    if (anneal >= 0) o.sched.anneal = anneal;
    if (anneal_mode) {
        if (!strcmp(anneal_mode, "linear")) o.sched.mode = SWAX_ANNEAL_LINEAR;
        else if (!strcmp(anneal_mode, "switch")) o.sched.mode = SWAX_ANNEAL_SWITCH;
        else return cli_fail("train", swax_error(SWAX_E_USAGE, "--anneal-mode expects linear or switch"));
    }
    if (!o.out[0]) {
        fprintf(stderr, "swax train: error: --out DIR is required\n");
        usage(stderr);
        return SWAX_E_USAGE;
    }
    if (data) {
        if (!o.train_data[0]) snprintf(o.train_data, sizeof o.train_data, "%s/train_*.bin", data);
        if (!o.val_data[0]) snprintf(o.val_data, sizeof o.val_data, "%s/val_*.bin", data);
        /* the folder `swax data build` made: its tokenizer and end-of-text id */
        char path[2048];
        struct stat st;
        snprintf(path, sizeof path, "%s/tokenizer.json", data);
        if (!o.tokenizer[0] && stat(path, &st) == 0 && strlen(path) < sizeof o.tokenizer)
            memcpy(o.tokenizer, path, strlen(path) + 1);
        snprintf(path, sizeof path, "%s/data.json", data);
        char *text;
        size_t len;
        /* (a resumed run's model, eot_token included, comes from its checkpoint) */
        if (!o.resume && stat(path, &st) == 0 && swax_read_file(path, &text, &len) == 0) {
            cJSON *root = cJSON_ParseWithLength(text, len);
            const cJSON *eot = root ? cJSON_GetObjectItemCaseSensitive(root, "eot") : NULL;
            int user_set = 0;
            for (int i = 0; i < o.nsets; i++) user_set |= !strncmp(o.sets[i], "eot_token=", 10);
            if (cJSON_IsNumber(eot) && !user_set && o.nsets < 32)
                snprintf(o.sets[o.nsets++], sizeof o.sets[0], "eot_token=%d", eot->valueint);
            cJSON_Delete(root);
            free(text);
        }
    }
    if (o.resume) {
        rc = resume_options(&o, given, data != NULL);
        if (rc) return rc;
    }
    if (!o.train_data[0]) {
        fprintf(stderr, "swax train: error: give --data DIR (or --train GLOB)\n");
        return SWAX_E_USAGE;
    }
    if (rank_given != (o.dist_world > 0))
        return cli_fail("train", swax_error(SWAX_E_USAGE, "--rank and --world go together"));
    if (gpus && !o.device[0]) snprintf(o.device, sizeof o.device, "cuda");
    if (gpus > 1 && !o.dist_world && !getenv("SWAX_DIST_RANK")) return run_gpus(&o, gpus);
    rc = swax_train_run(&o);
    return rc ? cli_fail("train", rc) : 0;
}
