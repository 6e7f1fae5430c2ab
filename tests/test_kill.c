/* test_kill.c — the kill test: `swax train` (the CLI, as a user runs it) on a
 * tiny model with a checkpoint every step is SIGKILLed at random moments and
 * resumed, N times. After every kill the newest checkpoint (OUT/latest) must
 * load — model and train_state.bin, at the step the folder names — and at the
 * end the resumed run must equal an uninterrupted one bit for bit: the final
 * weights, the AdamW moments and counters, and every line of log.jsonl
 * (loss, window, lr, grad norm, tokens, validation loss; not the timings).
 * Both runs use the same thread count.
 *
 * Prints "N kills (K inside a checkpoint write, B before the first
 * checkpoint), 0 unloadable checkpoints, 0 divergent".
 *
 * Environment: SWAX_BIN (the swax program, default build/swax), SWAX_KILL_N
 * (kills, default 8: the short version in `make test`; `make stress` runs 50),
 * SWAX_KILL_THREADS (default 1), SWAX_KILL_SEED (the kill moments, default 1),
 * SWAX_KILL_KEEP=1 keeps the scratch folder. */
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "io/shard.h"
#include "test.h"
#include "train/optim.h"
#include "train/train.h"
#include "train/train_state.h"

static char g_tmp[256];

static void cleanup(void) {
    if (g_tmp[0] && !getenv("SWAX_KILL_KEEP")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0) fprintf(stderr, "  (could not remove %s)\n", g_tmp);
    }
}

static long env_long(const char *name, long def, long lo, long hi) {
    const char *s = getenv(name);
    if (!s || !*s) return def;
    long v = strtol(s, NULL, 10);
    return v < lo ? lo : v > hi ? hi : v;
}

/* Documents of counting sequences separated by eot = 0 (as test_train.c). */
static void make_shards(const char *dir, int vocab) {
    SWAX_ASSERT(swax_mkdir_p(dir) == 0);
    SwaxRng r;
    swax_rng_seed(&r, 3, 0);
    const size_t n = 60000;
    uint32_t *t = malloc(4 * n);
    SWAX_ASSERT(t);
    size_t i = 0;
    while (i < n) {
        t[i++] = 0;
        int start = 1 + (int)(swax_rng_u64(&r) % (uint64_t)(vocab - 1)), len = 20 + (int)(swax_rng_u64(&r) % 60);
        for (int k = 0; k < len && i < n; k++) t[i++] = 1 + (uint32_t)((start + k * 3) % (vocab - 1));
    }
    char p[600];
    snprintf(p, sizeof p, "%.500s/train_000000.bin", dir);
    SWAX_ASSERT(swax_shard_write(p, t, n - 10000, vocab) == 0);
    snprintf(p, sizeof p, "%.500s/val_000000.bin", dir);
    SWAX_ASSERT(swax_shard_write(p, t + n - 10000, 10000, vocab) == 0);
    free(t);
}

/* ---- running swax train ---- */

#define MAX_ARGS 96
typedef struct {
    char *v[MAX_ARGS];
    int n;
    char buf[8192];
    size_t used;
} Argv;

static void arg(Argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg(Argv *a, const char *fmt, ...) {
    SWAX_ASSERT(a->n + 1 < MAX_ARGS);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(a->buf + a->used, sizeof a->buf - a->used, fmt, ap);
    va_end(ap);
    SWAX_ASSERT(k >= 0 && a->used + (size_t)k + 1 < sizeof a->buf);
    a->v[a->n++] = a->buf + a->used;
    a->v[a->n] = NULL;
    a->used += (size_t)k + 1;
}

static const char *swax_bin(void) {
    const char *b = getenv("SWAX_BIN");
    return b && *b ? b : "build/swax";
}

static void train_args(Argv *a, const char *out, long steps, int threads, int resume) {
    memset(a, 0, sizeof *a);
    arg(a, "%s", swax_bin());
    arg(a, "train");
    arg(a, "--preset");
    arg(a, "tiny");
    arg(a, "--train");
    arg(a, "%s/data/train_*.bin", g_tmp);
    arg(a, "--val");
    arg(a, "%s/data/val_*.bin", g_tmp);
    arg(a, "--out");
    arg(a, "%s", out);
    static const char *sets[] = {"vocab_size=64", "vocab_used=64", "d_model=32", "n_blocks=2", "attn_heads=2",
                                 "head_dim=16", "mlstm_heads=2", "ffn_dim=64", "eot_token=0", "igate_bias_init=-3"};
    for (int i = 0; i < 10; i++) {
        arg(a, "--set");
        arg(a, "%s", sets[i]);
    }
    const char *rest[] = {"--batch", "4", "--seq-len", "64", "--grad-accum", "2", "--warmup", "5", "--lr", "1e-2",
                          "--min-lr", "1e-3", "--chunk", "16", "--eval-every", "10", "--eval-batches", "2",
                          "--ckpt-every", "1", "--keep", "2", "--seed", "9", "--windows", "8:0.5,32:0.5", "--quiet"};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) arg(a, "%s", rest[i]);
    arg(a, "--steps");
    arg(a, "%ld", steps);
    arg(a, "--threads");
    arg(a, "%d", threads);
    if (resume) arg(a, "--resume");
}

static pid_t spawn(const Argv *a, const char *errlog) {
    pid_t pid = fork();
    SWAX_ASSERT(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen(errlog, "a", stderr)) _exit(126);
        execv(a->v[0], a->v);
        _exit(127);
    }
    return pid;
}

/* Waits up to `sec` seconds; returns 1 with *status if the child exited. */
static int wait_for(pid_t pid, double sec, int *status) {
    double t0 = swax_time_sec();
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) return 1;
        double left = sec - (swax_time_sec() - t0);
        if (left <= 0) return 0;
        struct timespec ts = {0, (long)(1e9 * (left < 0.002 ? left : 0.002))};
        nanosleep(&ts, NULL);
    }
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Did the kill land inside a checkpoint write? Leftovers made during this
 * life (newer than `marker`, touched at its start): the temporary checkpoint
 * folder OUT/.ckpt_*.tmp (renamed away when complete) or a PATH.tmp.<pid> of
 * an atomic file write. */
static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    SWAX_ASSERT(f);
    fclose(f);
}

static int interrupted_write(const char *out, const char *marker, pid_t pid) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "find '%s' -newer '%s' \\( -name '.ckpt_*.tmp' -o -name '*.tmp.%ld' \\) 2>/dev/null | grep -q .", out,
             marker, (long)pid);
    return system(cmd) == 0;
}

/* The step OUT/latest names, 0 if none (yet). */
static long latest_step(const char *out) {
    char p[600], buf[64] = {0};
    snprintf(p, sizeof p, "%s/latest", out);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    long step = 0;
    if (fgets(buf, sizeof buf, f) && sscanf(buf, "ckpt_%ld", &step) != 1) step = 0;
    fclose(f);
    return step;
}

/* ---- checkpoints ---- */

typedef struct {
    SwaxModel *m;
    SwaxAdamW opt;
    SwaxTrainProgress p;
    char dir[4200];
} Ckpt;

static void ckpt_free(Ckpt *c) {
    swax_adamw_free(&c->opt);
    swax_model_free(c->m);
    memset(c, 0, sizeof *c);
}

/* The checkpoint OUT/latest names: model + train state, at the step of its name. */
static int ckpt_load(const char *out, Ckpt *c, char *why, size_t cap) {
    memset(c, 0, sizeof *c);
    char p[8400];
    long step = -1;
    if (swax_train_latest(out, c->dir, sizeof c->dir)) goto fail;
    if (swax_model_load(c->dir, &c->m)) goto fail;
    if (swax_adamw_init(&c->opt, c->m, swax_adamw_defaults())) goto fail;
    snprintf(p, sizeof p, "%s/train_state.bin", c->dir);
    if (swax_train_state_load(p, &c->p, &c->opt)) goto fail;
    const char *base = strrchr(c->dir, '/');
    if (!base || sscanf(base + 1, "ckpt_%ld", &step) != 1 || (uint64_t)step != c->p.step) {
        snprintf(why, cap, "%.1000s holds step %llu", c->dir, (unsigned long long)c->p.step);
        ckpt_free(c);
        return 1;
    }
    return 0;
fail:
    snprintf(why, cap, "%s", swax_last_error());
    ckpt_free(c);
    return 1;
}

/* log.jsonl without the timing fields (tok_per_s, time_s). */
static char *log_without_timings(const char *out) {
    char p[600], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/log.jsonl", out);
    if (swax_read_file(p, &text, &len)) return NULL;
    char *res = malloc(len + 1), *o = res;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) + 1 : strlen(line);
        char *cut = strstr(line, ", \"tok_per_s\":");
        size_t keep = cut && cut < line + ll ? (size_t)(cut - line) : ll;
        memcpy(o, line, keep);
        o += keep;
        if (keep < ll) *o++ = '\n';
        line += ll;
    }
    *o = 0;
    free(text);
    return res;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

TEST(kill_resume_bit_exact) {
    const int N = (int)env_long("SWAX_KILL_N", 8, 1, 100000);
    const int threads = (int)env_long("SWAX_KILL_THREADS", 1, 1, 256);
    const long steps = N * 6 > 60 ? N * 6 : 60;
    snprintf(g_tmp, sizeof g_tmp, "%s/swax_test_kill_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(g_tmp) != NULL);
    atexit(cleanup);
    CHECKF(access(swax_bin(), X_OK) == 0, "%s: not built (make all, or set SWAX_BIN)", swax_bin());
    char data[512], ref[512], run[512], errlog[512], marker[512];
    snprintf(data, sizeof data, "%s/data", g_tmp);
    snprintf(ref, sizeof ref, "%s/reference", g_tmp);
    snprintf(run, sizeof run, "%s/killed", g_tmp);
    snprintf(errlog, sizeof errlog, "%s/stderr.log", g_tmp);
    snprintf(marker, sizeof marker, "%s/life_start", g_tmp);
    make_shards(data, 64);

    /* the uninterrupted run, timed: kill moments are drawn from its length */
    Argv a;
    train_args(&a, ref, steps, threads, 0);
    double t0 = swax_time_sec();
    int st = 0;
    pid_t pid = spawn(&a, errlog);
    CHECK(wait_for(pid, 3600, &st));
    const double dref = swax_time_sec() - t0;
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reference run failed (status %d; see %s)", st, errlog);

    /* Kill moments, robust to how busy the machine is: kill k aims at a step
     * s_k (spread over the run: one uniform draw in each of N equal bins);
     * the life waits until OUT/latest reaches s_k - 1, then dies after a
     * uniform [0, 1.5) step times (mid-step, mid-checkpoint, ...). One life in
     * five instead dies within its first 50 ms (start-up, resume reading),
     * whatever its progress. The last life is never killed and finishes. */
    SwaxRng rng;
    swax_rng_seed(&rng, (uint64_t)env_long("SWAX_KILL_SEED", 1, 0, 1L << 40), 77);
    const double step_time = dref / (double)steps;
    int kills = 0, mid_write = 0, before_first = 0, unloadable = 0, lives = 0, seen_ckpt = 0, early = 0;
    long last_step = 0, max_step = 0;
    while (kills < N) {
        char lp[600];
        snprintf(lp, sizeof lp, "%s/latest", run);
        train_args(&a, run, steps, threads, exists(lp));
        const long target = 1 + (long)(((double)kills + swax_rng_uniform(&rng)) * (double)(steps - 4) / N);
        const int is_early = swax_rng_uniform(&rng) < 0.2;
        const double delay = is_early ? 0.05 * swax_rng_uniform(&rng) : 1.5 * step_time * swax_rng_uniform(&rng);
        touch(marker);
        pid = spawn(&a, errlog);
        lives++;
        int exited = 0;
        if (!is_early) { /* wait for step target - 1 */
            const double t_life = swax_time_sec();
            while (!(exited = waitpid(pid, &st, WNOHANG) == pid) && latest_step(run) < target - 1) {
                if (swax_time_sec() - t_life > 120 + 20 * dref) break; /* stuck: kill it, the checks tell */
                struct timespec ts = {0, 500000};
                nanosleep(&ts, NULL);
            }
        }
        if (!exited) exited = wait_for(pid, delay, &st);
        if (exited) {
            /* finished (or failed) before its kill */
            CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "life %d exited with status %d (see %s)", lives, st, errlog);
            break;
        }
        early += is_early;
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        kills++;
        mid_write += interrupted_write(run, marker, pid);
        if (!exists(lp)) {
            before_first++;
            if (seen_ckpt) {
                fprintf(stderr, "  kill %d: OUT/latest vanished\n", kills);
                unloadable++;
            }
            continue;
        }
        Ckpt c;
        char why[2048];
        if (ckpt_load(run, &c, why, sizeof why)) {
            fprintf(stderr, "  kill %d: unloadable checkpoint: %s\n", kills, why);
            unloadable++;
            continue;
        }
        seen_ckpt = 1;
        if ((long)c.p.step < last_step) {
            fprintf(stderr, "  kill %d: latest went back from step %ld to %llu\n", kills, last_step,
                    (unsigned long long)c.p.step);
            unloadable++;
        }
        last_step = (long)c.p.step;
        if (last_step > max_step) max_step = last_step;
        ckpt_free(&c);
    }
    if (kills == N) { /* the last life runs to the end */
        char lp[600];
        snprintf(lp, sizeof lp, "%s/latest", run);
        train_args(&a, run, steps, threads, exists(lp));
        pid = spawn(&a, errlog);
        lives++;
        CHECK(wait_for(pid, 3600, &st));
        CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "final life exited with status %d (see %s)", st, errlog);
    }

    /* bit for bit against the uninterrupted run */
    int divergent = 0;
    Ckpt x, y;
    char why[2048];
    CHECKF(ckpt_load(ref, &x, why, sizeof why) == 0, "reference: %s", why);
    CHECKF(ckpt_load(run, &y, why, sizeof why) == 0, "resumed: %s", why);
    const size_t np = swax_model_num_params(x.m);
    if (x.p.step != (uint64_t)steps || y.p.step != x.p.step || x.p.data_pos != y.p.data_pos ||
        x.p.tokens_seen != y.p.tokens_seen || x.opt.step != y.opt.step) {
        fprintf(stderr, "  counters differ: step %llu/%llu data_pos %llu/%llu\n", (unsigned long long)x.p.step,
                (unsigned long long)y.p.step, (unsigned long long)x.p.data_pos, (unsigned long long)y.p.data_pos);
        divergent++;
    }
    if (np != swax_model_num_params(y.m) || memcmp(swax_model_params(x.m), swax_model_params(y.m), np * 4)) {
        fprintf(stderr, "  final weights differ\n");
        divergent++;
    }
    if (memcmp(x.opt.m, y.opt.m, np * 4) || memcmp(x.opt.v, y.opt.v, np * 4)) {
        fprintf(stderr, "  AdamW moments differ\n");
        divergent++;
    }
    ckpt_free(&x);
    ckpt_free(&y);
    char *la = log_without_timings(ref), *lb = log_without_timings(run);
    CHECK(la && lb);
    int lines = count_lines(la);
    if (strcmp(la, lb)) {
        fprintf(stderr, "  log.jsonl differs (%d vs %d lines)\n", lines, count_lines(lb));
        divergent++;
    }
    free(la);
    free(lb);

    printf("  %d steps, %d threads, uninterrupted run %.1f s; %d lives, kills up to step %ld\n", (int)steps, threads,
           dref, lives, max_step);
    printf("  %d kills (%d inside a checkpoint write, %d within 50 ms of a start, %d before the first checkpoint), "
           "%d unloadable checkpoints, %d divergent (weights, moments, counters, %d log lines compared)\n",
           kills, mid_write, early, before_first, unloadable, divergent, lines);
    CHECKF(kills == N, "only %d of %d kills landed before the run finished", kills, N);
    CHECK(unloadable == 0);
    CHECK(divergent == 0);
}

RUN_TESTS()
