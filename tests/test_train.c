/* test_train.c — the window sampler and its anneal, the LR schedule, a tiny
 * run whose loss falls, bit-exact resume, checkpoints that survive a kill
 * during writing, and clean failures (NaN loss, bad data, unwritable output). */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "io/shard.h"
#include "test.h"
#include "test_train_util.h"
#include "train/train.h"
#include "train/train_state.h"

static char tmp[256];

static void make_tmp(void) {
    if (!tmp[0]) {
        snprintf(tmp, sizeof tmp, "/tmp/swax_test_train_XXXXXX");
        SWAX_ASSERT(mkdtemp(tmp));
    }
}

TEST(window_sampler_frequencies_and_anneal) {
    SwaxWindowSchedule s;
    CHECK(swax_window_schedule_parse(&s, "32:0.25,128:0.75") == 0);
    const long total = 40000;
    long n32 = 0, n = 0;
    for (long t = 0; t < 36000; t++, n++) n32 += swax_window_at(&s, 5, t, total) == 32;
    CHECKF(fabs((double)n32 / n - 0.25) < 0.01, "p(32) = %g", (double)n32 / n);
    /* linear anneal over the last 10%: p(short) falls linearly, last quarter of the phase ~ 0.25*0.125 */
    long a = 0, b = 0;
    for (long t = 36000; t < 37000; t++) a += swax_window_at(&s, 5, t, total) == 32;
    for (long t = 39000; t < 40000; t++) b += swax_window_at(&s, 5, t, total) == 32;
    CHECKF(fabs(a / 1000.0 - 0.25 * 0.875) < 0.04, "early anneal p(32) = %g", a / 1000.0);
    CHECKF(fabs(b / 1000.0 - 0.25 * 0.125) < 0.02, "late anneal p(32) = %g", b / 1000.0);
    CHECK(swax_window_at(&s, 5, total - 1, total) == 128); /* the last step: largest only */
    double probs[SWAX_MAX_WINDOWS];
    swax_window_probs_at(&s, 38000, total, probs);
    CHECKF(fabs(probs[0] - 0.25 * (1 - 2001.0 / 4000)) < 1e-9, "p = %g", probs[0]);
    /* switch: largest only in the phase */
    s.mode = SWAX_ANNEAL_SWITCH;
    for (long t = 36000; t < 40000; t++) CHECK(swax_window_at(&s, 5, t, total) == 128);
    /* seeded by (seed, step): reproducible, and another seed differs */
    int same = 1, diff = 0;
    for (long t = 0; t < 200; t++) {
        same &= swax_window_at(&s, 5, t, total) == swax_window_at(&s, 5, t, total);
        diff += swax_window_at(&s, 5, t, total) != swax_window_at(&s, 6, t, total);
    }
    CHECK(same && diff > 20);
    /* fixed window = one entry; equal split without probabilities */
    CHECK(swax_window_schedule_parse(&s, "64") == 0 && s.n == 1 && swax_window_at(&s, 1, 3, 10) == 64);
    CHECK(swax_window_schedule_parse(&s, "16,64") == 0 && fabs(s.probs[0] - 0.5) < 1e-12);
    CHECK(swax_window_schedule_parse(&s, "16:0.3,64:0.3") == SWAX_E_USAGE);
    CHECK(swax_window_schedule_parse(&s, "0") == SWAX_E_USAGE);
    CHECK(swax_window_schedule_parse(&s, "16:0.5,64") == SWAX_E_USAGE);
}

TEST(lr_schedule) {
    CHECK(fabs(swax_lr_at(0, 100, 10, 1.0, 0.1) - 0.1) < 1e-12);
    CHECK(fabs(swax_lr_at(9, 100, 10, 1.0, 0.1) - 1.0) < 1e-12);
    CHECK(fabs(swax_lr_at(10, 100, 10, 1.0, 0.1) - 1.0) < 1e-12);
    CHECK(fabs(swax_lr_at(55, 100, 10, 1.0, 0.1) - 0.55) < 1e-12);
    CHECK(fabs(swax_lr_at(100, 100, 10, 1.0, 0.1) - 0.1) < 1e-12);
}

static void make_shards(const char *dir, int vocab) { test_make_shards(dir, vocab); }

static void small_opts(SwaxTrainOptions *o, const char *out) {
    char data[512];
    snprintf(data, sizeof data, "%s/data", tmp);
    test_small_opts(o, data, out);
}

static int read_losses(const char *out, double *loss, int cap) { return test_read_losses(out, loss, cap); }

/* The common start of a test: the shards, OUT = tmp/name, the small options, and a first run of
 * `steps` steps (no evaluation; checkpoints every ckpt_every, 0 = at the end only). */
static void first_run(SwaxTrainOptions *o, char *out, size_t cap, const char *name, long steps, long ckpt_every) {
    make_tmp();
    char d[512];
    snprintf(d, sizeof d, "%s/data", tmp);
    make_shards(d, 64);
    snprintf(out, cap, "%s/%s", tmp, name);
    small_opts(o, out);
    o->steps = steps, o->ckpt_every = ckpt_every, o->eval_every = 0;
    CHECKF(swax_train_run(o) == 0, "%s", swax_last_error());
}

TEST(tiny_run_loss_decreases) {
    make_tmp();
    char d[512], out[512];
    snprintf(d, sizeof d, "%s/data", tmp);
    make_shards(d, 64);
    SwaxTrainOptions o;
    snprintf(out, sizeof out, "%s/run_a", tmp);
    small_opts(&o, out);
    CHECKF(swax_train_run(&o) == 0, "%s", swax_last_error());
    double loss[64];
    int n = read_losses(out, loss, 64);
    CHECK(n == 40);
    double first = (loss[0] + loss[1] + loss[2]) / 3, last = (loss[37] + loss[38] + loss[39]) / 3;
    printf("  loss %.3f -> %.3f\n", first, last);
    CHECKF(last < first - 1.0, "loss %g -> %g", first, last);
    char p[600];
    snprintf(p, sizeof p, "%s/loss.svg", out);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size > 500);
    char ck[4200];
    CHECK(swax_train_latest(out, ck, sizeof ck) == 0 && strstr(ck, "ckpt_00000040"));
    SwaxModel *m;
    CHECK(swax_model_load(ck, &m) == 0);
    CHECK(swax_model_config(m)->window == 32); /* inference default = largest training window */
    swax_model_free(m);
}

TEST(resume_is_bit_identical) {
    make_tmp();
    char d[512], a[512], b[512];
    snprintf(d, sizeof d, "%s/data", tmp);
    make_shards(d, 64);
    SwaxTrainOptions o;
    snprintf(a, sizeof a, "%s/full", tmp);
    small_opts(&o, a);
    o.steps = 24, o.ckpt_every = 0;
    CHECK(swax_train_run(&o) == 0);
    snprintf(b, sizeof b, "%s/resumed", tmp);
    small_opts(&o, b);
    o.steps = 24, o.ckpt_every = 0, o.stop_after = 11;
    CHECK(swax_train_run(&o) == 0);
    o.stop_after = 0, o.resume = 1;
    CHECKF(swax_train_run(&o) == 0, "%s", swax_last_error());
    double la[64], lb[64];
    CHECK(read_losses(a, la, 64) == 24 && read_losses(b, lb, 64) == 24);
    for (int i = 0; i < 24; i++) CHECKF(la[i] == lb[i], "step %d: %.9g vs %.9g", i + 1, la[i], lb[i]);
    char ca[4200], cb[4200];
    SwaxModel *ma, *mb;
    CHECK(swax_train_latest(a, ca, sizeof ca) == 0 && swax_train_latest(b, cb, sizeof cb) == 0);
    CHECK(swax_model_load(ca, &ma) == 0 && swax_model_load(cb, &mb) == 0);
    CHECK(memcmp(swax_model_params(ma), swax_model_params(mb), 4 * swax_model_num_params(ma)) == 0);
    swax_model_free(ma);
    swax_model_free(mb);
}

TEST(checkpoint_survives_kill_while_writing) {
    make_tmp();
    char d[512], out[512];
    snprintf(d, sizeof d, "%s/data", tmp);
    make_shards(d, 64);
    snprintf(out, sizeof out, "%s/killed", tmp);
    SwaxTrainOptions o;
    small_opts(&o, out);
    o.steps = 400, o.ckpt_every = 1, o.eval_every = 0;
    o.stop_after = 3;
    CHECK(swax_train_run(&o) == 0); /* a first good checkpoint */
    o.stop_after = 0;
    SwaxRng r;
    swax_rng_seed(&r, 77, 0);
    int loads = 0;
    for (int k = 0; k < 6; k++) {
        o.resume = 1;
        pid_t pid = fork();
        if (pid == 0) {
            swax_train_run(&o);
            _exit(0);
        }
        usleep(100000 + (useconds_t)(swax_rng_u64(&r) % 400000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        char ck[4200], p[8400];
        CHECKF(swax_train_latest(out, ck, sizeof ck) == 0, "%s", swax_last_error());
        SwaxModel *m;
        CHECKF(swax_model_load(ck, &m) == 0, "kill %d: %s", k, swax_last_error());
        SwaxAdamW opt;
        SwaxTrainProgress pr;
        CHECK(swax_adamw_init(&opt, m, swax_adamw_defaults()) == 0);
        snprintf(p, sizeof p, "%s/train_state.bin", ck);
        CHECKF(swax_train_state_load(p, &pr, &opt) == 0, "kill %d: %s", k, swax_last_error());
        swax_adamw_free(&opt);
        swax_model_free(m);
        loads++;
    }
    CHECK(loads == 6);
}

TEST(nan_loss_stops_and_keeps_last_checkpoint) {
    make_tmp();
    char d[512], out[512];
    snprintf(d, sizeof d, "%s/data", tmp);
    make_shards(d, 64);
    snprintf(out, sizeof out, "%s/nan", tmp);
    SwaxTrainOptions o;
    small_opts(&o, out);
    o.steps = 6, o.ckpt_every = 3, o.stop_after = 3;
    CHECK(swax_train_run(&o) == 0);
    o.stop_after = 0, o.resume = 1;
    o.lr = 1e35, o.min_lr = 1e35, o.warmup = 0; /* weights overflow -> inf/NaN */
    o.clip = 0;
    int rc = swax_train_run(&o);
    CHECKF(rc == SWAX_E_NUMERIC, "rc %d: %s", rc, swax_last_error());
    CHECK(strstr(swax_last_error(), "diverged"));
    char ck[4200];
    CHECK(swax_train_latest(out, ck, sizeof ck) == 0 && strstr(ck, "ckpt_00000003"));
    SwaxModel *m;
    CHECK(swax_model_load(ck, &m) == 0);
    const float *p = swax_model_params(m);
    for (size_t i = 0; i < swax_model_num_params(m); i++) CHECK(isfinite(p[i]));
    swax_model_free(m);
}

/* A folder that holds a run is not trained over without --resume (that overwrote its log and options
 * and mixed two runs' checkpoints); a resume with no steps left says so and changes nothing; a run
 * whose last step is skipped (--nan skip) still saves it (none was written: "checkpoint in" lied and
 * --resume found nothing); --nan stop with no checkpoint yet does not claim one is kept. */
TEST(run_folders_are_kept_and_every_end_saves) {
    char out[512], p[700];
    SwaxTrainOptions o;
    first_run(&o, out, sizeof out, "guard", 6, 3);
    snprintf(p, sizeof p, "%s/train.json", out);
    char *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    CHECK(swax_read_file(p, &before, &nb) == 0);
    int rc = swax_train_run(&o); /* the same folder again, no --resume */
    CHECKF(rc == SWAX_E_USAGE && strstr(swax_last_error(), "already holds a training run") &&
               strstr(swax_last_error(), "--resume"),
           "rc %d: %s", rc, swax_last_error());
    char moved[700]; /* a run killed before its `latest` (or with it damaged) is a run too */
    snprintf(moved, sizeof moved, "%s/latest.away", out);
    snprintf(p, sizeof p, "%s/latest", out);
    CHECK(rename(p, moved) == 0);
    rc = swax_train_run(&o);
    CHECKF(rc == SWAX_E_USAGE && strstr(swax_last_error(), "ckpt_"), "rc %d: %s", rc, swax_last_error());
    CHECK(rename(moved, p) == 0);
    snprintf(p, sizeof p, "%s/train.json", out);
    o.resume = 1; /* at step 6: --steps 6 is complete (nothing to do, whatever --stop-after), --steps 5 and
                   * --stop-after 5 of a longer run are errors */
    rc = swax_train_run(&o);
    CHECKF(rc == 0, "a complete run's resume: rc %d: %s", rc, swax_last_error());
    o.stop_after = 4;
    rc = swax_train_run(&o);
    CHECKF(rc == 0, "a complete run's resume with --stop-after: rc %d: %s", rc, swax_last_error());
    o.stop_after = 0;
    o.steps = 5;
    rc = swax_train_run(&o);
    CHECKF(rc == SWAX_E_USAGE && strstr(swax_last_error(), "nothing to train"), "rc %d: %s", rc, swax_last_error());
    o.steps = 12, o.stop_after = 5;
    rc = swax_train_run(&o);
    CHECKF(rc == SWAX_E_USAGE && strstr(swax_last_error(), "--stop-after 5"), "rc %d: %s", rc, swax_last_error());
    CHECK(swax_read_file(p, &after, &na) == 0);
    CHECK(na == nb && before && after && memcmp(before, after, nb) == 0);
    free(before), free(after);
    double loss[16];
    CHECK(read_losses(out, loss, 16) == 6);
    char ck[4200];
    CHECK(swax_train_latest(out, ck, sizeof ck) == 0 && strstr(ck, "ckpt_00000006"));

    /* the weights overflow at the first update: steps 2 and 3 are skipped, the run ends at 3 */
    snprintf(out, sizeof out, "%s/skip_end", tmp);
    small_opts(&o, out);
    o.steps = 3, o.ckpt_every = 0, o.eval_every = 0, o.warmup = 0, o.clip = 0;
    o.lr = 1e35, o.min_lr = 1e35, o.nan_policy = SWAX_NAN_SKIP;
    rc = swax_train_run(&o);
    CHECKF(rc == 0, "rc %d: %s", rc, swax_last_error());
    CHECKF(swax_train_latest(out, ck, sizeof ck) == 0 && strstr(ck, "ckpt_00000003"), "no checkpoint at the end: %s",
           swax_last_error());

    snprintf(out, sizeof out, "%s/nan_first", tmp);
    o.nan_policy = SWAX_NAN_STOP;
    snprintf(o.out, sizeof o.out, "%s", out);
    rc = swax_train_run(&o);
    CHECKF(rc == SWAX_E_NUMERIC && strstr(swax_last_error(), "no checkpoint was written"), "rc %d: %s", rc,
           swax_last_error());
}

/* --init-from starts from a checkpoint's weights and config: the same --set values (as a full command
 * line repeats them) are fine, one that would change the model is refused (it was silently ignored,
 * and train.json recorded it). */
TEST(init_from_refuses_a_set_that_changes_the_model) {
    char a[512], ck[4200];
    SwaxTrainOptions o;
    first_run(&o, a, sizeof a, "init_src", 3, 0);
    CHECK(swax_train_latest(a, ck, sizeof ck) == 0);
    small_opts(&o, a);
    snprintf(o.out, sizeof o.out, "%s/init_same", tmp);
    CHECK(strlen(ck) < sizeof o.init_from);
    memcpy(o.init_from, ck, strlen(ck) + 1);
    o.steps = 2, o.ckpt_every = 0, o.eval_every = 0;
    int rc = swax_train_run(&o);
    CHECKF(rc == 0, "the checkpoint's own values: rc %d: %s", rc, swax_last_error());
    snprintf(o.out, sizeof o.out, "%s/init_changed", tmp);
    snprintf(o.sets[o.nsets++], sizeof o.sets[0], "d_model=48");
    rc = swax_train_run(&o);
    CHECKF(rc == SWAX_E_USAGE && strstr(swax_last_error(), "d_model=48") && strstr(swax_last_error(), "--init-from"),
           "rc %d: %s", rc, swax_last_error());
}

TEST(bad_data_and_outputs_fail_cleanly) {
    make_tmp();
    char d[512], out[512], p[600];
    snprintf(d, sizeof d, "%s/data", tmp);
    make_shards(d, 64);
    SwaxTrainOptions o;
    snprintf(out, sizeof out, "%s/bad", tmp);
    small_opts(&o, out);
    /* tokens >= vocab: the shards hold ids < 64, the model has 32 */
    snprintf(o.sets[0], sizeof o.sets[0], "vocab_size=32");
    snprintf(o.sets[1], sizeof o.sets[1], "vocab_used=32");
    int rc = swax_train_run(&o);
    CHECKF(rc == SWAX_E_INPUT, "rc %d: %s", rc, swax_last_error());
    /* truncated shard */
    small_opts(&o, out);
    snprintf(p, sizeof p, "%s/trunc", tmp);
    swax_mkdir_p(p);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "head -c 3000 %s/train_000000.bin > %s/train_000000.bin", d, p);
    CHECK(system(cmd) == 0);
    snprintf(o.train_data, sizeof o.train_data, "%s/train_*.bin", p);
    rc = swax_train_run(&o);
    CHECKF(rc == SWAX_E_INPUT && strstr(swax_last_error(), "train_000000.bin"), "rc %d: %s", rc, swax_last_error());
    /* no shards at all */
    snprintf(o.train_data, sizeof o.train_data, "%s/nothing_*.bin", tmp);
    CHECK(swax_train_run(&o) == SWAX_E_INPUT);
    /* an output path under a regular file */
    small_opts(&o, out);
    snprintf(o.out, sizeof o.out, "%s/data/train_000000.bin/run", tmp);
    rc = swax_train_run(&o);
    CHECKF(rc == SWAX_E_IO, "rc %d: %s", rc, swax_last_error());
    /* resume with nothing to resume */
    small_opts(&o, out);
    snprintf(o.out, sizeof o.out, "%s/never_ran", tmp);
    o.resume = 1;
    CHECK(swax_train_run(&o) == SWAX_E_INPUT);
}

/* ---- the run folder remembers its options (RUN/train.json) ---- */

static int opts_eq(const SwaxTrainOptions *a, const SwaxTrainOptions *b) {
    int ok = !strcmp(a->train_data, b->train_data) && !strcmp(a->val_data, b->val_data) &&
             !strcmp(a->tokenizer, b->tokenizer) && !strcmp(a->preset, b->preset) &&
             !strcmp(a->config_path, b->config_path) && !strcmp(a->init_from, b->init_from) && a->nsets == b->nsets &&
             a->B == b->B && a->T == b->T && a->accum == b->accum && a->steps == b->steps && a->warmup == b->warmup &&
             !memcmp(&a->lr, &b->lr, sizeof a->lr) && !memcmp(&a->min_lr, &b->min_lr, sizeof a->min_lr) &&
             !memcmp(&a->adam, &b->adam, sizeof a->adam) && !memcmp(&a->clip, &b->clip, sizeof a->clip) &&
             a->sched.n == b->sched.n && a->sched.mode == b->sched.mode &&
             !memcmp(&a->sched.anneal, &b->sched.anneal, sizeof(double)) && a->chunk == b->chunk &&
             a->doc_mask == b->doc_mask && a->eval_every == b->eval_every && a->eval_batches == b->eval_batches &&
             a->ckpt_every == b->ckpt_every && a->keep_ckpts == b->keep_ckpts && a->seed == b->seed &&
             a->nan_policy == b->nan_policy && !strcmp(a->device, b->device) && a->recompute == b->recompute;
    for (int i = 0; ok && i < a->nsets; i++) ok = !strcmp(a->sets[i], b->sets[i]);
    for (int i = 0; ok && i < a->sched.n; i++)
        ok = a->sched.windows[i] == b->sched.windows[i] && !memcmp(&a->sched.probs[i], &b->sched.probs[i], 8);
    return ok;
}

TEST(options_file_round_trips_and_names_bad_files) {
    make_tmp();
    char out[512], p[600], cmd[8800];
    snprintf(out, sizeof out, "%s/optfile", tmp);
    swax_mkdir_p(out);
    snprintf(p, sizeof p, "%s/train.json", out);
    SwaxTrainOptions a, b;
    small_opts(&a, out);
    a.lr = 3e-3, a.min_lr = a.lr * 0.1; /* not the double nearest 3e-4: must survive bit for bit */
    a.adam.beta2 = 0.999f, a.clip = 0.7f, a.sched.anneal = 1.0 / 3, a.sched.mode = SWAX_ANNEAL_SWITCH;
    CHECK(swax_window_schedule_parse(&a.sched, "8,16,32") == 0); /* probabilities 1/3 */
    a.sched.anneal = 1.0 / 3, a.sched.mode = SWAX_ANNEAL_SWITCH;
    a.seed = (1ull << 60) + 7, a.doc_mask = 0, a.nan_policy = SWAX_NAN_SKIP;
    snprintf(a.tokenizer, sizeof a.tokenizer, "tok \"quoted\"/dir"); /* relative, with quotes */
    snprintf(a.device, sizeof a.device, "cuda-fp32"), a.recompute = 1;   /* where it ran comes back too */
    CHECKF(swax_train_options_save(p, &a) == 0, "%s", swax_last_error());
    memset(&b, 0, sizeof b);
    b.threads = 3, b.quiet = 1;
    CHECKF(swax_train_options_load(p, &b) == 0, "%s", swax_last_error());
    CHECK(b.threads == 3 && b.quiet == 1 && b.out[0] == 0); /* not in the file: kept */
    CHECK(b.tokenizer[0] == '/' && strstr(b.tokenizer, "/tok \"quoted\"/dir")); /* made absolute */
    CHECK(swax_train_options_absolute(&a) == 0);
    CHECK(opts_eq(&a, &b));
    /* missing, corrupt, truncated, a wrong type: SWAX_E_INPUT naming the file (and the key) */
    snprintf(cmd, sizeof cmd, "cp %s %s.good && head -c 200 %s.good > %s", p, p, p, p);
    CHECK(system(cmd) == 0);
    int rc = swax_train_options_load(p, &b);
    CHECKF(rc == SWAX_E_INPUT && strstr(swax_last_error(), p) && strstr(swax_last_error(), "not valid JSON"), "%s",
           swax_last_error());
    snprintf(cmd, sizeof cmd, "sed 's/\"steps\":.*/\"steps\": \"many\",/' %s.good > %s", p, p);
    CHECK(system(cmd) == 0);
    rc = swax_train_options_load(p, &b);
    CHECKF(rc == SWAX_E_INPUT && strstr(swax_last_error(), p) && strstr(swax_last_error(), "\"steps\""), "%s",
           swax_last_error());
    snprintf(cmd, sizeof cmd, "sed '/\"windows\"/d' %s.good > %s", p, p);
    CHECK(system(cmd) == 0);
    rc = swax_train_options_load(p, &b);
    CHECKF(rc == SWAX_E_INPUT && strstr(swax_last_error(), "windows"), "%s", swax_last_error());
    snprintf(cmd, sizeof cmd, "sed 's/\"device\":.*/\"device\": \"gpu\",/' %s.good > %s", p, p);
    CHECK(system(cmd) == 0);
    rc = swax_train_options_load(p, &b);
    CHECKF(rc == SWAX_E_INPUT && strstr(swax_last_error(), p) && strstr(swax_last_error(), "\"device\""), "%s",
           swax_last_error());
    /* a file from before the device was saved: the CPU, no recompute */
    snprintf(cmd, sizeof cmd, "sed '/\"device\"\\|\"recompute\"/d' %s.good > %s", p, p);
    CHECK(system(cmd) == 0);
    CHECKF(swax_train_options_load(p, &b) == 0, "%s", swax_last_error());
    CHECK(b.device[0] == 0 && b.recompute == 0);
    snprintf(cmd, sizeof cmd, "echo '{\"format\": \"swax\", \"version\": 1}' > %s", p);
    CHECK(system(cmd) == 0);
    CHECK(swax_train_options_load(p, &b) == SWAX_E_INPUT && strstr(swax_last_error(), "swax-train"));
    unlink(p);
    CHECK(swax_train_options_load(p, &b) == SWAX_E_INPUT && strstr(swax_last_error(), p));
    /* the copy in each checkpoint is the same text */
    char out2[512], ck[4200], *t1, *t2;
    size_t l1, l2;
    snprintf(out2, sizeof out2, "%s/optrun", tmp);
    small_opts(&a, out2);
    char d[512];
    snprintf(d, sizeof d, "%s/data", tmp);
    make_shards(d, 64);
    a.steps = 2;
    CHECK(swax_train_run(&a) == 0);
    snprintf(p, sizeof p, "%s/train.json", out2);
    CHECK(swax_train_latest(out2, ck, sizeof ck) == 0);
    snprintf(cmd, sizeof cmd, "%s/train.json", ck);
    CHECK(swax_read_file(p, &t1, &l1) == 0 && swax_read_file(cmd, &t2, &l2) == 0);
    CHECK(l1 == l2 && !memcmp(t1, t2, l1) && strstr(t1, "\"format\":\t\"swax-train\""));
    free(t1), free(t2);
}

static char cli_out[65536];

/* Runs a shell command; stdout+stderr into cli_out; the exit code. */
static int shell(const char *cmd) {
    char full[8192];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -2;
    size_t n = fread(cli_out, 1, sizeof cli_out - 1, p);
    cli_out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *swax_bin(void) {
    static char abs_bin[4200];
    const char *b = getenv("SWAX_BIN");
    if (!b || !*b) b = "build/swax";
    if (b[0] != '/' && getcwd(abs_bin, 4000)) {
        size_t n = strlen(abs_bin);
        snprintf(abs_bin + n, sizeof abs_bin - n, "/%s", b);
        return abs_bin;
    }
    return b;
}

/* A fast run prints a few progress lines (at most one per 0.25 s, plus the
 * first and the last), not one per 5% of the steps. (Through the binary: a
 * forked child of this process could not use OpenMP again.) */
TEST(progress_lines_are_throttled) {
    make_tmp();
    char d[512], cmd[4096];
    snprintf(d, sizeof d, "%s/data", tmp);
    make_shards(d, 64);
    snprintf(cmd, sizeof cmd,
             "%s train --train '%s/train_*.bin' --out %s/progress --set vocab_size=64 --set vocab_used=64 "
             "--set d_model=32 --set n_blocks=2 --set attn_heads=2 --set head_dim=16 --set mlstm_heads=2 "
             "--set ffn_dim=64 --set eot_token=0 --batch 2 --seq-len 32 --steps 60 --eval-every 0 --ckpt-every 0 "
             "--windows 8,32",
             swax_bin(), d, tmp);
    double t0 = swax_time_sec();
    int rc = shell(cmd);
    double dt = swax_time_sec() - t0;
    int lines = 0;
    for (const char *p = strstr(cli_out, "/60 loss"); p; p = strstr(p + 1, "/60 loss")) lines++;
    int allowed = 2 + (int)(dt / 0.25);
    printf("  %d progress lines in %.2f s (at most %d allowed)\n", lines, dt, allowed);
    CHECKF(rc == 0 && lines >= 2 && lines <= allowed && strstr(cli_out, "step 1/60") && strstr(cli_out, "step 60/60"),
           "rc %d: %s", rc, cli_out);
}

/* `swax train --out RUN --resume` alone continues the run (its usage line),
 * from another folder, bit-identically; flags given with it override the
 * saved ones (and are listed), model flags and the seed are refused, a
 * missing or corrupt train.json is named. */
TEST(cli_resume_with_out_alone) {
    make_tmp();
    char d[512];
    snprintf(d, sizeof d, "%s/data", tmp);
    make_shards(d, 64);
    const char *args =
        "train --preset tiny --train 'data/train_*.bin' --val 'data/val_*.bin' --set vocab_size=64 "
        "--set vocab_used=64 --set d_model=32 --set n_blocks=2 --set attn_heads=2 --set head_dim=16 "
        "--set mlstm_heads=2 --set ffn_dim=64 --set eot_token=0 --set igate_bias_init=-3 --batch 4 --seq-len 64 "
        "--grad-accum 2 --warmup 5 --lr 1e-2 --min-lr 1e-3 --chunk 16 --eval-every 10 --eval-batches 2 "
        "--ckpt-every 0 --seed 9 --windows 8:0.5,32:0.5 --quiet --steps 24";
    char cmd[4096], a[600], b[600];
    snprintf(a, sizeof a, "%s/cli_full", tmp);
    snprintf(b, sizeof b, "%s/cli_resumed", tmp);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s --out cli_full", tmp, swax_bin(), args);
    CHECKF(shell(cmd) == 0, "%s", cli_out);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s --out cli_resumed --stop-after 11", tmp, swax_bin(), args);
    CHECKF(shell(cmd) == 0, "%s", cli_out);
    /* the usage line's form, from another folder */
    snprintf(cmd, sizeof cmd, "cd / && %s train --out %s --resume", swax_bin(), b);
    int rc = shell(cmd);
    CHECKF(rc == 0 && strstr(cli_out, "train.json") && !strstr(cli_out, "overridden"), "rc %d: %s", rc, cli_out);
    double la[64], lb[64];
    CHECK(read_losses(a, la, 64) == 24 && read_losses(b, lb, 64) == 24);
    for (int i = 0; i < 24; i++) CHECKF(la[i] == lb[i], "step %d: %.9g vs %.9g", i + 1, la[i], lb[i]);
    /* the whole command line again (what worked before): nothing overridden */
    snprintf(cmd, sizeof cmd, "cd %s && %s %s --out cli_resumed --resume", tmp, swax_bin(), args);
    rc = shell(cmd);
    CHECKF(rc == 0 && !strstr(cli_out, "overridden"), "rc %d: %s", rc, cli_out);
    /* flags given with --resume override, and are listed; the file follows */
    snprintf(cmd, sizeof cmd, "%s train --out %s --resume --steps 30 --eval-every 5 --keep 1 --quiet", swax_bin(), b);
    rc = shell(cmd);
    CHECKF(rc == 0 && strstr(cli_out, "--steps 30 (was 24)") && strstr(cli_out, "--eval-every 5 (was 10)") &&
               strstr(cli_out, "--keep 1 (was 2)"),
           "rc %d: %s", rc, cli_out);
    CHECK(read_losses(b, lb, 64) == 30);
    char p[700], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/train.json", b);
    CHECK(swax_read_file(p, &text, &len) == 0);
    CHECKF(strstr(text, "\"steps\":\t30") && strstr(text, "\"train_data\":\t\"/") &&
               strstr(text, "\"device\":\t\"cpu\""), "%s", text);
    free(text);
    /* the device is the run's too: a run saved as on the GPU resumes there (here, without one, the GPU's
     * error), and --device moves it (listed, saved) */
    snprintf(cmd, sizeof cmd, "sed -i 's/\"device\":.*/\"device\": \"cuda\",/' %s && %s train --out %s --resume",
             p, swax_bin(), b);
    rc = shell(cmd);
    CHECKF(rc != 0 ? strstr(cli_out, "--device cuda") != NULL : 1, "rc %d: %s", rc, cli_out);
    snprintf(cmd, sizeof cmd, "%s train --out %s --resume --device cpu --steps 31 --quiet", swax_bin(), b);
    rc = shell(cmd);
    CHECKF(rc == 0 && strstr(cli_out, "--device cpu (was cuda)"), "rc %d: %s", rc, cli_out);
    CHECK(swax_read_file(p, &text, &len) == 0);
    CHECKF(strstr(text, "\"device\":\t\"cpu\"") && strstr(text, "\"steps\":\t31"), "%s", text);
    free(text);
    snprintf(cmd, sizeof cmd, "ls -a %s | grep -c tmp", b);
    CHECKF(shell(cmd) == 1 && cli_out[0] == '0', "leftovers: %s", cli_out); /* atomic: no temporary files */
    /* the model and the seed cannot change */
    const char *fixed[] = {"--preset small", "--set d_model=64", "--seed 3", "--config /etc/hostname"};
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "%s train --out %s --resume %s", swax_bin(), b, fixed[i]);
        rc = shell(cmd);
        char flag[32];
        snprintf(flag, sizeof flag, "%.*s", (int)strcspn(fixed[i], " "), fixed[i]);
        CHECKF(rc == SWAX_E_USAGE && strstr(cli_out, flag) && strstr(cli_out, p), "%s: rc %d: %s", fixed[i], rc,
               cli_out);
    }
    /* a corrupt or missing train.json is named */
    snprintf(cmd, sizeof cmd, "cp %s %s.good && head -c 100 %s.good > %s && %s train --out %s --resume", p, p, p, p,
             swax_bin(), b);
    rc = shell(cmd);
    CHECKF(rc == SWAX_E_INPUT && strstr(cli_out, p) && strstr(cli_out, "not valid JSON"), "rc %d: %s", rc, cli_out);
    snprintf(cmd, sizeof cmd, "rm %s && %s train --out %s --resume", p, swax_bin(), b);
    rc = shell(cmd);
    CHECKF(rc == SWAX_E_INPUT && strstr(cli_out, p) && strstr(cli_out, "missing"), "rc %d: %s", rc, cli_out);
    snprintf(cmd, sizeof cmd, "%s train --out %s/nothing_here --resume", swax_bin(), tmp);
    rc = shell(cmd);
    CHECKF(rc == SWAX_E_INPUT && strstr(cli_out, "nothing_here/train.json"), "rc %d: %s", rc, cli_out);
    /* without the file, the whole command line still resumes (a run from an older swax), and saves it */
    snprintf(cmd, sizeof cmd, "cd %s && %s %s --out cli_resumed --resume --steps 32", tmp, swax_bin(), args);
    rc = shell(cmd);
    CHECKF(rc == 0 && strstr(cli_out, "older swax") && access(p, F_OK) == 0, "rc %d: %s", rc, cli_out);
}

RUN_TESTS()
