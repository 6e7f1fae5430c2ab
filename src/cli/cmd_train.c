/* cmd_train.c — `swax train`. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "train/train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: swax train --preset NAME --data DIR --out DIR [options]\n"
            "       swax train --out DIR --resume [options]\n\n"
            "Trains a SWAX model with the stochastic window schedule (SPEC §4). Writes DIR/ckpt_<step>/\n"
            "(model.safetensors, config.json, train_state.bin), DIR/latest, DIR/log.jsonl, DIR/loss.svg.\n"
            "Ctrl-C saves a checkpoint and exits; --resume continues bit-identically.\n\n"
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
            "  --seed S (1)  --threads N  --nan stop|skip  --resume  --stop-after N  --quiet\n");
}

static int parse_l(const char *flag, const char *s, long lo, long hi, long *out) {
    return cli_parse_int("train", flag, s, lo, hi, out);
}

int cmd_train(int argc, char **argv) {
    enum { O_PRESET = 256, O_DATA, O_TRAIN, O_VAL, O_TOK, O_CONFIG, O_INIT, O_SET, O_OUT, O_BATCH, O_SEQ, O_ACC,
           O_STEPS, O_WARM, O_LR, O_MINLR, O_WD, O_B1, O_B2, O_CLIP, O_WIN, O_ANN, O_ANNM, O_CHUNK, O_NODOC,
           O_EVE, O_EVB, O_CKE, O_KEEP, O_SEED, O_THR, O_NAN, O_RESUME, O_STOPA, O_QUIET };
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
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
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
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
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
        if (stat(path, &st) == 0 && swax_read_file(path, &text, &len) == 0) {
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
    if (!o.train_data[0]) {
        fprintf(stderr, "swax train: error: give --data DIR (or --train GLOB)\n");
        return SWAX_E_USAGE;
    }
    rc = swax_train_run(&o);
    return rc ? cli_fail("train", rc) : 0;
}
