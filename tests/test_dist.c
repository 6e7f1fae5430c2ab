/* test_dist.c — the multi-GPU pieces that run without a GPU (src/dist/,
 * src/train/train_dist.c): rank discovery from launchers' environments, the
 * TCP and file rendezvous between processes on this machine (a fake 128-byte
 * NCCL id) and its liveness link, the `--gpus` process supervisor with fake
 * children, the data mapping (the union over ranks is the 1-GPU order), the
 * ZeRO-1 shard plan, optimizer re-sharding between world sizes, the model's
 * gradient-ready hook, a one-process resume from a sharded checkpoint, and
 * clear errors without NCCL or a GPU. The GPU side: scripts/test_multigpu.sh. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/loader.h"
#include "dist/dist.h"
#include "model/model.h"
#include "ops/ops.h"
#include "test.h"
#include "test_train_util.h"
#include "train/train_state.h"

static char tmp[256];
static void make_tmp(void) {
    if (tmp[0]) return;
    snprintf(tmp, sizeof tmp, "/tmp/swax_test_dist_XXXXXX");
    SWAX_ASSERT(mkdtemp(tmp));
}

/* ---------------------------------------------------------------- environment */

typedef struct {
    const char *kv[32];
} Env;
static const char *fake_get(const char *name, void *ud) {
    const Env *e = ud;
    for (int i = 0; e->kv[i]; i += 2)
        if (!strcmp(e->kv[i], name)) return e->kv[i + 1];
    return NULL;
}

TEST(discover_from_launchers_and_flags) {
    SwaxDistInfo d;
    Env none = {{NULL}};
    CHECK(swax_dist_discover(&d, -1, -1, NULL, NULL, fake_get, &none) == 0);
    CHECK(d.world == 1 && d.rank == 0);
    Env ompi = {{"OMPI_COMM_WORLD_RANK", "3", "OMPI_COMM_WORLD_SIZE", "4", "OMPI_COMM_WORLD_LOCAL_RANK", "1",
                 "OMPI_COMM_WORLD_LOCAL_SIZE", "2", "PMIX_NAMESPACE", "prterun-x-123@1", NULL}};
    CHECK(swax_dist_discover(&d, -1, -1, NULL, NULL, fake_get, &ompi) == 0);
    CHECK(d.rank == 3 && d.world == 4 && d.local_rank == 1 && d.local_world == 2);
    CHECK(!strcmp(d.source, "OpenMPI") && !strcmp(d.job, "prterun-x-123@1"));
    CHECK(swax_dist_default_file(&d, "/runs/a") == 0);
    CHECK(!strcmp(d.file, "/runs/a/.dist-prterun-x-123@1"));
    Env slurm = {{"SLURM_PROCID", "5", "SLURM_STEP_NUM_TASKS", "8", "SLURM_LOCALID", "1", "SLURM_JOB_ID", "77",
                  "SLURM_STEP_ID", "0", NULL}};
    CHECK(swax_dist_discover(&d, -1, -1, NULL, NULL, fake_get, &slurm) == 0);
    CHECK(d.rank == 5 && d.world == 8 && d.local_rank == 1 && !strcmp(d.job, "slurm77.0"));
    /* a batch script (no srun step) is one process, whatever SLURM_NTASKS says */
    Env batch = {{"SLURM_PROCID", "0", "SLURM_NTASKS", "8", NULL}};
    CHECK(swax_dist_discover(&d, -1, -1, NULL, NULL, fake_get, &batch) == 0);
    CHECK(d.world == 1);
    /* flags win over the environment; master from the environment */
    Env m = {{"OMPI_COMM_WORLD_RANK", "1", "OMPI_COMM_WORLD_SIZE", "2", "SWAX_DIST_MASTER", "node7:29500", NULL}};
    CHECK(swax_dist_discover(&d, 2, 3, NULL, NULL, fake_get, &m) == 0);
    CHECK(d.rank == 2 && d.world == 3 && !strcmp(d.source, "flags") && !strcmp(d.master, "node7:29500"));
    /* the --gpus parent's variables */
    Env g = {{"SWAX_DIST_RANK", "1", "SWAX_DIST_WORLD", "2", "SWAX_DIST_FILE", "/tmp/x/r", "SWAX_DIST_JOB", "gpus9",
              NULL}};
    CHECK(swax_dist_discover(&d, -1, -1, NULL, NULL, fake_get, &g) == 0);
    CHECK(d.rank == 1 && d.world == 2 && d.local_rank == 1 && !strcmp(d.file, "/tmp/x/r"));
}

TEST(discover_errors_name_the_variable) {
    SwaxDistInfo d;
    Env bad = {{"OMPI_COMM_WORLD_RANK", "x1", "OMPI_COMM_WORLD_SIZE", "2", NULL}};
    CHECK(swax_dist_discover(&d, -1, -1, NULL, NULL, fake_get, &bad) == SWAX_E_USAGE);
    CHECK(strstr(swax_last_error(), "OMPI_COMM_WORLD_RANK='x1'"));
    Env big = {{"OMPI_COMM_WORLD_RANK", "2", "OMPI_COMM_WORLD_SIZE", "2", NULL}};
    CHECK(swax_dist_discover(&d, -1, -1, NULL, NULL, fake_get, &big) == SWAX_E_USAGE);
    CHECK(strstr(swax_last_error(), "below the world size"));
    Env none = {{NULL}};
    CHECK(swax_dist_discover(&d, 0, -1, NULL, NULL, fake_get, &none) == SWAX_E_USAGE);
    CHECK(swax_dist_discover(&d, 0, 2, "nohostport", NULL, fake_get, &none) == SWAX_E_USAGE);
    CHECK(strstr(swax_last_error(), "HOST:PORT"));
    CHECK(swax_dist_discover(&d, 0, 2, "h:99999", NULL, fake_get, &none) == SWAX_E_USAGE);
    /* flags without an address: no job id to name a file */
    CHECK(swax_dist_discover(&d, 0, 2, NULL, NULL, fake_get, &none) == 0);
    CHECK(swax_dist_default_file(&d, "/runs/a") == SWAX_E_USAGE);
    CHECK(strstr(swax_last_error(), "--master"));
    char host[64];
    int port;
    CHECK(swax_dist_parse_master("[::1]:2000", host, sizeof host, &port) == 0 && !strcmp(host, "::1") && port == 2000);
}

/* ---------------------------------------------------------------- rendezvous */

static int free_port(void) {
    /* an ephemeral port the kernel just handed out (then released) */
    SwaxDistInfo d = {0};
    (void)d;
    for (int p = 20000 + (getpid() % 20000);; p++) {
        char m[64];
        snprintf(m, sizeof m, "127.0.0.1:%d", p);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET, a.sin_port = htons((uint16_t)p), a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (ok) return p;
    }
}

/* Rank `rank` of `world` joins and checks the id; exits 0 on success. mode: 0 tcp, 1 file. */
static int child_join(int rank, int world, const char *master, const char *file, const unsigned char *want,
                      int exit_without_bye) {
    SwaxDistInfo d;
    Env none = {{NULL}};
    if (swax_dist_discover(&d, rank, world, master, file, fake_get, &none)) return 10;
    d.local_world = world; /* one node */
    unsigned char id[SWAX_NCCL_ID_BYTES];
    SwaxDistLink l;
    if (swax_dist_rendezvous(&d, 10, id, &l)) {
        fprintf(stderr, "child %d: %s\n", rank, swax_last_error());
        return 11;
    }
    if (memcmp(id, want, sizeof id)) return 12;
    usleep(100 * 1000);
    if (exit_without_bye) _exit(0); /* as a killed rank: the socket closes without goodbye */
    swax_dist_link_close(&l, 1);
    return 0;
}

static void fake_id(unsigned char *id) {
    for (int i = 0; i < SWAX_NCCL_ID_BYTES; i++) id[i] = (unsigned char)(i * 7 + 3);
}

static void rendezvous_case(int world, int use_file, int child_dies) {
    make_tmp();
    unsigned char id[SWAX_NCCL_ID_BYTES];
    fake_id(id);
    char master[64] = "", file[512] = "";
    if (use_file) snprintf(file, sizeof file, "%s/rdv_%d_%d", tmp, world, child_dies);
    else snprintf(master, sizeof master, "127.0.0.1:%d", free_port());
    pid_t kids[8];
    for (int r = 1; r < world; r++) {
        kids[r] = fork();
        if (kids[r] == 0) _exit(child_join(r, world, master, file, id, child_dies && r == world - 1));
    }
    SwaxDistInfo d;
    Env none = {{NULL}};
    CHECK(swax_dist_discover(&d, 0, world, master, file, fake_get, &none) == 0);
    d.local_world = world;
    SwaxDistLink l;
    int rc = swax_dist_rendezvous(&d, 10, id, &l);
    CHECKF(rc == 0, "%s", swax_last_error());
    if (use_file) CHECK(access(file, F_OK) != 0); /* served, then removed */
    for (int r = 1; r < world; r++) {
        int st;
        CHECK(waitpid(kids[r], &st, 0) == kids[r]);
        CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rank %d child status %d", r, st);
    }
    usleep(50 * 1000);
    rc = swax_dist_link_poll(&l);
    if (child_dies) {
        CHECK(rc == SWAX_E_INTERNAL);
        CHECKF(l.dead_rank == world - 1, "dead rank %d", l.dead_rank);
        char want[64];
        snprintf(want, sizeof want, "rank %d exited", world - 1);
        CHECKF(strstr(swax_last_error(), want), "%s", swax_last_error());
    } else {
        CHECKF(rc == 0, "%s", swax_last_error());
    }
    swax_dist_link_close(&l, 1);
}

TEST(tcp_rendezvous_two_processes) { rendezvous_case(2, 0, 0); }
TEST(file_rendezvous_three_processes) { rendezvous_case(3, 1, 0); }
TEST(link_names_a_rank_that_exits) { rendezvous_case(3, 0, 1); }

TEST(rendezvous_timeout_and_world_mismatch) {
    make_tmp();
    unsigned char id[SWAX_NCCL_ID_BYTES];
    fake_id(id);
    char master[64];
    snprintf(master, sizeof master, "127.0.0.1:%d", free_port());
    SwaxDistInfo d;
    Env none = {{NULL}};
    CHECK(swax_dist_discover(&d, 0, 3, master, NULL, fake_get, &none) == 0);
    SwaxDistLink l;
    double t0 = swax_time_sec();
    CHECK(swax_dist_rendezvous(&d, 0.5, id, &l) == SWAX_E_IO);
    CHECK(swax_time_sec() - t0 < 3);
    CHECKF(strstr(swax_last_error(), "missing rank(s): 1, 2"), "%s", swax_last_error());
    /* a rank started with another --world */
    snprintf(master, sizeof master, "127.0.0.1:%d", free_port());
    pid_t k = fork();
    if (k == 0) _exit(child_join(1, 3, master, NULL, id, 0));
    CHECK(swax_dist_discover(&d, 0, 2, master, NULL, fake_get, &none) == 0);
    int rc = swax_dist_rendezvous(&d, 10, id, &l);
    int st;
    waitpid(k, &st, 0);
    CHECK(rc == SWAX_E_USAGE);
    CHECKF(strstr(swax_last_error(), "same --world"), "%s", swax_last_error());
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 11);
    /* a rank whose rank 0 never comes */
    snprintf(master, sizeof master, "127.0.0.1:%d", free_port());
    CHECK(swax_dist_discover(&d, 1, 2, master, NULL, fake_get, &none) == 0);
    t0 = swax_time_sec();
    CHECK(swax_dist_rendezvous(&d, 0.5, id, &l) == SWAX_E_IO);
    CHECK(swax_time_sec() - t0 < 3);
    CHECKF(strstr(swax_last_error(), "cannot reach rank 0"), "%s", swax_last_error());
}

/* ---------------------------------------------------------------- --gpus */

static int fake_rank(int rank, void *ud) {
    const int mode = *(int *)ud;
    if (mode == 0) return 0;
    if (mode == 1 && rank == 1) {
        usleep(50 * 1000);
        return 3;
    }
    if (mode == 2 && rank == 2) {
        usleep(50 * 1000);
        raise(SIGKILL);
    }
    sleep(30); /* a rank that would wait for the dead one */
    return 0;
}

TEST(gpus_supervisor_stops_the_others) {
    int mode = 0, failed;
    CHECK(swax_dist_spawn(3, 1.0, fake_rank, &mode, &failed) == 0 && failed == -1);
    mode = 1;
    double t0 = swax_time_sec();
    CHECK(swax_dist_spawn(3, 0.5, fake_rank, &mode, &failed) == 3);
    CHECK(failed == 1);
    CHECKF(swax_time_sec() - t0 < 5, "took %.1f s", swax_time_sec() - t0);
    mode = 2;
    t0 = swax_time_sec();
    CHECK(swax_dist_spawn(4, 0.5, fake_rank, &mode, &failed) == 128 + SIGKILL);
    CHECK(failed == 2);
    CHECK(swax_time_sec() - t0 < 5);
}

/* ---------------------------------------------------------------- data and shards */

TEST(data_slices_union_is_the_one_gpu_order) {
    make_tmp();
    char dir[400], glob[500];
    snprintf(dir, sizeof dir, "%s/data", tmp);
    test_make_shards(dir, 64);
    snprintf(glob, sizeof glob, "%s/train_*.bin", dir);
    SwaxLoader *l;
    CHECK(swax_loader_open(glob, 64, &l) == 0);
    const int B = 3, T = 17;
    int32_t *one = malloc(sizeof(int32_t) * 24 * B * (T + 1)), *got = malloc(sizeof(int32_t) * B * (T + 1));
    for (int N = 1; N <= 4; N++)
        for (int accum = 1; accum <= 3; accum++) {
            const uint64_t pos0 = 12345;
            /* one GPU at --grad-accum N*accum, two steps */
            swax_loader_seek(l, pos0);
            for (int j = 0; j < 2 * N * accum; j++) CHECK(swax_loader_next(l, B, T, one + (size_t)j * B * (T + 1)) == 0);
            CHECK(swax_loader_position(l) == pos0 + 2ull * N * accum * B * T);
            uint64_t step_pos = pos0;
            for (int s = 0; s < 2; s++) {
                for (int r = 0; r < N; r++)
                    for (int a = 0; a < accum; a++) {
                        swax_loader_seek(l, swax_dist_batch_pos(step_pos, r, accum, B, T, a));
                        CHECK(swax_loader_next(l, B, T, got) == 0);
                        const int j = s * N * accum + r * accum + a; /* rank-major global micro-batch */
                        CHECKF(!memcmp(got, one + (size_t)j * B * (T + 1), sizeof(int32_t) * B * (T + 1)),
                               "N %d accum %d step %d rank %d micro %d", N, accum, s, r, a);
                    }
                step_pos += (uint64_t)N * accum * B * T;
            }
        }
    free(one), free(got);
    swax_loader_close(l);
}

TEST(shard_pieces_partition_every_bucket) {
    const SwaxRange b[] = {{0, 10}, {10, 3}, {13, 1}, {14, 1000003}};
    for (int n = 1; n <= 7; n++) {
        size_t total = 0;
        for (int k = 0; k < 4; k++) {
            size_t at = b[k].off;
            for (int r = 0; r < n; r++) {
                SwaxRange p = swax_shard_piece(b[k], r, n);
                CHECK(p.off == at);
                if (r < n - 1) CHECK(p.len == b[k].len / n);
                at += p.len;
            }
            CHECK(at == b[k].off + b[k].len);
        }
        for (int r = 0; r < n; r++) total += swax_shard_size(b, 4, r, n);
        CHECK(total == 1000017);
    }
}

TEST(optimizer_reshards_between_world_sizes) {
    make_tmp();
    const SwaxRange b[] = {{0, 37}, {37, 64}, {101, 5}, {106, 211}};
    const int nb = 4;
    const size_t P = 317;
    float *m = malloc(P * 4), *v = malloc(P * 4), *sm = malloc(P * 4), *sv = malloc(P * 4);
    for (size_t i = 0; i < P; i++) m[i] = (float)i * 0.5f + 1, v[i] = (float)i * 0.25f + 2;
    SwaxDistProgress p = {40, 123456789012ull, 9, 999, 40, 12.5}, q;
    for (int W = 1; W <= 4; W++) {
        char dir[400];
        snprintf(dir, sizeof dir, "%s/ck_w%d", tmp, W);
        swax_mkdir_p(dir);
        for (int w = 0; w < W; w++) { /* each rank's shard: its pieces in bucket order */
            size_t at = 0;
            for (int k = 0; k < nb; k++) {
                SwaxRange pc = swax_shard_piece(b[k], w, W);
                memcpy(sm + at, m + pc.off, pc.len * 4), memcpy(sv + at, v + pc.off, pc.len * 4);
                at += pc.len;
            }
            CHECK(swax_optim_shard_save(dir, b, nb, P, w, W, 40, sm, sv) == 0);
        }
        CHECK(swax_optim_manifest_save(dir, W, P, &p) == 0);
        CHECK(swax_optim_is_sharded(dir));
        for (int n = 1; n <= 5; n++)
            for (int r = 0; r < n; r++) {
                const size_t S = swax_shard_size(b, nb, r, n);
                memset(sm, 0, P * 4), memset(sv, 0, P * 4);
                int rc = swax_optim_shard_load(dir, b, nb, P, r, n, sm, sv, &q);
                CHECKF(rc == 0, "W %d -> n %d r %d: %s", W, n, r, swax_last_error());
                CHECK(q.step == 40 && q.data_pos == 123456789012ull && q.seed == 9 && q.tokens_seen == 999 &&
                      q.opt_step == 40 && q.elapsed_s == 12.5);
                size_t at = 0;
                for (int k = 0; k < nb; k++) {
                    SwaxRange pc = swax_shard_piece(b[k], r, n);
                    CHECK(!memcmp(sm + at, m + pc.off, pc.len * 4) && !memcmp(sv + at, v + pc.off, pc.len * 4));
                    at += pc.len;
                }
                CHECK(at == S);
            }
    }
    /* a one-process train_state.bin re-shards too */
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/ck_single", tmp);
    swax_mkdir_p(dir);
    SwaxAdamW opt = {.cfg = swax_adamw_defaults(), .n = P, .m = m, .v = v, .step = 40, .ops = swax_ops_cpu()};
    SwaxTrainProgress tp = {40, 77, 9, 999, 1.5};
    snprintf(path, sizeof path, "%s/train_state.bin", dir);
    CHECK(swax_train_state_save(path, &tp, &opt) == 0);
    CHECK(!swax_optim_is_sharded(dir));
    CHECK(swax_optim_shard_load(dir, b, nb, P, 1, 2, sm, sv, &q) == 0);
    CHECK(q.step == 40 && q.data_pos == 77 && q.opt_step == 40 && q.elapsed_s == 1.5);
    SwaxRange p0 = swax_shard_piece(b[0], 1, 2);
    CHECK(!memcmp(sm, m + p0.off, p0.len * 4));
    /* corruption and another model are refused with the file named */
    snprintf(path, sizeof path, "%s/ck_w2/optim_1_of_2.bin", tmp);
    FILE *f = fopen(path, "r+b");
    CHECK(f);
    fseek(f, 200, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/ck_w2", tmp);
    CHECK(swax_optim_shard_load(dir, b, nb, P, 0, 1, sm, sv, &q) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), "optim_1_of_2.bin: checksum mismatch"), "%s", swax_last_error());
    const SwaxRange other[] = {{0, 38}, {38, 63}, {101, 5}, {106, 211}};
    snprintf(dir, sizeof dir, "%s/ck_w3", tmp);
    CHECK(swax_optim_shard_load(dir, other, nb, P, 0, 1, sm, sv, &q) == SWAX_E_INPUT);
    CHECKF(strstr(swax_last_error(), "bucket 0"), "%s", swax_last_error());
    free(m), free(v), free(sm), free(sv);
}

/* ---------------------------------------------------------------- the model's hook */

static int g_order[64], g_norder;
static void record(void *ud, int bucket) {
    (void)ud;
    g_order[g_norder++] = bucket;
}

TEST(model_buckets_and_gradient_ready_hook) {
    SwaxConfig c;
    CHECK(swax_config_preset("tiny", &c) == 0);
    const char *sets[] = {"vocab_size=64", "vocab_used=64", "d_model=32", "n_blocks=3", "attn_heads=2",
                          "head_dim=16", "mlstm_heads=2", "ffn_dim=64", "eot_token=0"};
    for (int i = 0; i < 9; i++) CHECKF(swax_config_set(&c, sets[i]) == 0, "%s", swax_last_error());
    for (int tie = 0; tie <= 1; tie++) {
        c.tie_embeddings = tie;
        SwaxModel *m;
        CHECKF(swax_model_create(&c, &m) == 0, "%s", swax_last_error());
        swax_model_init(m, 1);
        const int nb = swax_model_num_buckets(m);
        CHECK(nb == c.n_blocks + 2);
        size_t at = 0;
        for (int k = 0; k < nb; k++) { /* contiguous, in array order, covering everything */
            size_t off, n;
            swax_model_bucket(m, k, &off, &n);
            CHECK(off == at && n > 0);
            at += n;
        }
        CHECK(at == m->n_params);
        int32_t tok[2 * 16], tgt[2 * 16];
        for (int i = 0; i < 32; i++) tok[i] = i % 64, tgt[i] = (i * 5) % 64;
        SwaxBatch sb = {2, 16, tok, tgt, NULL, 8, 8};
        float loss;
        /* the hook does not change a single bit of the gradients */
        CHECK(swax_forward(m, &sb, &loss) == 0);
        CHECK(swax_backward(m, 0.5f) == 0);
        float *g0 = malloc(m->n_params * 4);
        memcpy(g0, swax_model_grads(m), m->n_params * 4);
        swax_zero_grad(m);
        g_norder = 0;
        m->grad_ready = record, m->grad_ready_ud = NULL;
        CHECK(swax_forward(m, &sb, &loss) == 0);
        CHECK(swax_backward(m, 0.5f) == 0);
        m->grad_ready = NULL;
        CHECK(!memcmp(g0, swax_model_grads(m), m->n_params * 4));
        CHECK(g_norder == nb);
        CHECK(g_order[0] == nb - 1 && g_order[nb - 1] == 0); /* tail first, embedding last */
        for (int k = 1; k < nb - 1; k++) CHECK(g_order[k] == nb - 1 - k);
        free(g0);
        swax_model_free(m);
    }
}

/* ---------------------------------------------------------------- one process from a sharded checkpoint */

TEST(one_process_resumes_a_sharded_checkpoint_bit_for_bit) {
    make_tmp();
    char data[400], out[400];
    snprintf(data, sizeof data, "%s/data", tmp);
    test_make_shards(data, 64);
    SwaxTrainOptions o;
    double full[64], res[64];
    snprintf(out, sizeof out, "%s/full", tmp);
    test_small_opts(&o, data, out);
    o.steps = 16, o.eval_every = 0, o.ckpt_every = 0;
    CHECKF(swax_train_run(&o) == 0, "%s", swax_last_error());
    CHECK(test_read_losses(out, full, 64) == 16);
    snprintf(out, sizeof out, "%s/resh", tmp);
    test_small_opts(&o, data, out);
    o.steps = 16, o.eval_every = 0, o.ckpt_every = 0, o.stop_after = 8;
    CHECK(swax_train_run(&o) == 0);
    /* turn its checkpoint into what a 3-rank run writes: optim.json + 3 shards, no train_state.bin */
    char ck[600];
    CHECK(swax_train_latest(out, ck, sizeof ck) == 0);
    SwaxModel *m;
    CHECK(swax_model_load(ck, &m) == 0);
    int nb = swax_model_num_buckets(m);
    SwaxRange b[64];
    for (int k = 0; k < nb; k++) swax_model_bucket(m, k, &b[k].off, &b[k].len);
    const size_t P = m->n_params;
    float *sm = malloc(P * 4), *sv = malloc(P * 4);
    SwaxDistProgress p;
    for (int r = 0; r < 3; r++) {
        CHECK(swax_optim_shard_load(ck, b, nb, P, r, 3, sm, sv, &p) == 0);
        CHECK(swax_optim_shard_save(ck, b, nb, P, r, 3, p.opt_step, sm, sv) == 0);
    }
    CHECK(swax_optim_manifest_save(ck, 3, P, &p) == 0);
    char path[700];
    snprintf(path, sizeof path, "%s/train_state.bin", ck);
    CHECK(unlink(path) == 0);
    swax_model_free(m);
    free(sm), free(sv);
    o.stop_after = 0, o.resume = 1;
    CHECKF(swax_train_run(&o) == 0, "%s", swax_last_error());
    CHECK(test_read_losses(out, res, 64) == 16);
    for (int i = 0; i < 16; i++) CHECKF(full[i] == res[i], "step %d: %.9g vs %.9g", i + 1, full[i], res[i]);
}

/* ---------------------------------------------------------------- without NCCL or a GPU */

TEST(clear_errors_without_nccl_or_gpu) {
    CHECK(swax_nccl_open("libnccl_not_here_swax_test.so.2") == SWAX_E_USAGE);
    CHECKF(strstr(swax_last_error(), "NCCL") || strstr(swax_last_error(), "without CUDA"), "%s", swax_last_error());
    SwaxComm *c = (SwaxComm *)1;
    unsigned char id[SWAX_NCCL_ID_BYTES] = {0};
    if (!swax_ops_cuda()) { /* no GPU here (or no CUDA build): creating a communicator says why */
        int rc = swax_dist_pick_device(0);
        CHECK(rc != 0 && strlen(swax_last_error()) > 10);
        if (swax_nccl_open(NULL) != 0) {
            CHECK(swax_comm_create(&c, 0, 2, id, 1, NULL) != 0);
            CHECK(c == NULL);
        }
    }
    /* a multi-rank CPU run is refused before anything waits */
    make_tmp();
    SwaxTrainOptions o;
    char data[400], out[400];
    snprintf(data, sizeof data, "%s/data", tmp);
    test_make_shards(data, 64);
    snprintf(out, sizeof out, "%s/cpu2", tmp);
    test_small_opts(&o, data, out);
    o.dist_rank = 0, o.dist_world = 2;
    snprintf(o.dist_master, sizeof o.dist_master, "127.0.0.1:1");
    CHECK(swax_train_run(&o) == SWAX_E_USAGE);
    CHECKF(strstr(swax_last_error(), "--device cuda"), "%s", swax_last_error());
}

RUN_TESTS()
