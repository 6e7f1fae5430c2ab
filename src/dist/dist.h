/* dist.h — multi-GPU data-parallel training (docs/training.md, "Multi-GPU"):
 * one process per GPU, NCCL for every collective, loaded at run time with
 * dlopen("libnccl.so.2") so that a swax binary runs where NCCL is absent and a
 * one-process run never touches it.
 *
 * Pieces (host code unless said):
 *  - rank discovery: flags (--rank/--world/--master/--dist-file), the
 *    `swax train --gpus N` parent (SWAX_DIST_*), OpenMPI (OMPI_COMM_WORLD_*),
 *    SLURM srun (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID);
 *  - rendezvous: rank 0 listens on TCP (the --master port, or an ephemeral
 *    port written to a rendezvous file) and sends the 128-byte NCCL unique id
 *    to every rank; the connections stay open as a liveness link (a rank that
 *    exits closes its socket: the others learn which rank it was);
 *  - `--gpus N`: fork one child per GPU, wait; a failing child ends the rest;
 *  - ZeRO-1 shard plan: buckets (contiguous parameter ranges, one per block,
 *    fixed by the model, never by the number of ranks) split into one piece
 *    per rank; optimizer shard files and re-sharding on resume;
 *  - the communicator (dist_nccl.cu; stubs in dist_nocuda.c): a comm stream,
 *    bucket reduce-scatter / all-gather, waits polled with NCCL's async error
 *    and a watchdog. */
#ifndef SWAX_DIST_H
#define SWAX_DIST_H

#include <stddef.h>
#include <stdint.h>

#define SWAX_NCCL_ID_BYTES 128
#define SWAX_DIST_MAX_WORLD 4096

/* ---------------------------------------------------------------- ranks */

typedef struct {
    int rank, world;          /* world 1: one process, no NCCL */
    int local_rank;           /* the GPU of this rank on its node */
    int local_world;          /* ranks on this node; 0 = unknown */
    char master[256];         /* "host:port" for the TCP rendezvous, or "" */
    char file[1024];          /* rendezvous file, or "" */
    char source[32];          /* flags, swax --gpus, OpenMPI, SLURM, none */
    char job[128];            /* the launcher's job id ("" = unknown) */
} SwaxDistInfo;

typedef const char *(*SwaxGetenv)(const char *name, void *ud);
/* Fills d. rank/world < 0: not given as flags; master/file NULL or "": not
 * given. Order: flags, then SWAX_DIST_RANK/WORLD/LOCAL_RANK (`--gpus`), then
 * OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK/LOCAL_SIZE, then SLURM_PROCID with
 * SLURM_STEP_NUM_TASKS (an srun step; SLURM_LOCALID), else one process.
 * SWAX_DIST_MASTER and SWAX_DIST_FILE stand for the flags. get = NULL reads
 * the process environment. SWAX_E_USAGE with a message naming the variable. */
int swax_dist_discover(SwaxDistInfo *d, int rank, int world, const char *master, const char *file, SwaxGetenv get,
                       void *ud);
/* The rendezvous a multi-rank run uses when neither --master nor --dist-file
 * was given: DIR/.dist-<job> (DIR: the run folder). SWAX_E_USAGE when no job
 * id is known (then --master or --dist-file is needed). */
int swax_dist_default_file(SwaxDistInfo *d, const char *dir);
/* "host:port" -> host, port (1..65535). */
int swax_dist_parse_master(const char *s, char *host, size_t cap, int *port);

/* ---------------------------------------------------------------- rendezvous + liveness */

typedef struct {
    int rank, world;
    int *fd;                  /* rank 0: fd[r] to rank r (r >= 1); others: fd[0] to rank 0 */
    int *gone;                /* ranks known to have exited (rank 0: every rank; others: as relayed) */
    int dead_rank;            /* the first rank known gone, or -1 */
    char why[256];
} SwaxDistLink;

/* Rank 0 gives id (SWAX_NCCL_ID_BYTES), the others receive it. Through d->master
 * (rank 0 listens on its port) or d->file (rank 0 listens on an ephemeral port
 * and writes "host port" there, atomically; the others wait for it). Every
 * wait is bounded by timeout_s; errors are SWAX_E_INPUT/SWAX_E_IO with a
 * message saying which rank, which address and what to check. */
int swax_dist_rendezvous(const SwaxDistInfo *d, double timeout_s, unsigned char *id, SwaxDistLink *link);
/* Non-blocking: 0 while every rank is alive; else SWAX_E_INTERNAL with a
 * message naming the rank that exited (link->dead_rank). */
int swax_dist_link_poll(SwaxDistLink *l);
/* clean: say goodbye first (the others do not report this rank as dead). */
void swax_dist_link_close(SwaxDistLink *l, int clean);

/* ---------------------------------------------------------------- --gpus N */

/* Forks n children; child(rank, ud) runs in each and its return value is the
 * child's exit status. Waits for all. When one exits non-zero (or is killed)
 * the parent says which rank, gives the others grace_s seconds to end on
 * their own, then SIGKILLs them. SIGINT/SIGTERM to the parent are passed on.
 * Returns 0, or the first failing rank's status (128 + signal when killed),
 * with *failed_rank set (-1 if none). */
int swax_dist_spawn(int n, double grace_s, int (*child)(int rank, void *ud), void *ud, int *failed_rank);

/* ---------------------------------------------------------------- data */

/* The stream position of rank `rank`'s micro-batch a in a step that starts at
 * step_pos: the global batch of a step is world x accum micro-batches of B rows,
 * taken in the 1-GPU order; rank r takes micro-batches r*accum .. r*accum+accum-1
 * (rank-major), so the union over ranks is the 1-GPU run's data at
 * --grad-accum world*accum. The step advances the position by world*accum*B*T. */
uint64_t swax_dist_batch_pos(uint64_t step_pos, int rank, int accum, int B, int T, int a);

/* ---------------------------------------------------------------- ZeRO-1 shards */

typedef struct {
    size_t off, len;
} SwaxRange;

/* Rank r's piece of bucket b (of n ranks): q = len / n; ranks below n-1 own
 * [r q, (r+1) q), rank n-1 owns [(n-1) q, len) (the remainder too). */
SwaxRange swax_shard_piece(SwaxRange b, int r, int n);
/* Elements rank r owns over all buckets. */
size_t swax_shard_size(const SwaxRange *b, int nb, int r, int n);

/* Optimizer shard files (in a checkpoint folder):
 *   optim.json        {"format": "swax-optim-shards", "version": 1, "world": N, "n_params": P,
 *                      "step", "data_pos", "seed", "tokens_seen", "opt_step", "elapsed_s"}
 *   optim_<r>_of_<N>.bin: char magic[8] "SWAXOSH1"; u32 version 1, rank, world, nbuckets;
 *                      u64 n_params, shard_len, opt_step; nbuckets x (u64 off, u64 len);
 *                      f32 m[shard_len]; f32 v[shard_len]; u64 FNV-1a of every byte before.
 * The bucket table must equal the reader's: another model is refused. */
typedef struct {
    uint64_t step, data_pos, seed, tokens_seen, opt_step;
    double elapsed_s;
} SwaxDistProgress;
int swax_optim_shard_save(const char *dir, const SwaxRange *b, int nb, size_t n_params, int r, int n,
                          uint64_t opt_step, const float *m, const float *v);
int swax_optim_manifest_save(const char *dir, int world, size_t n_params, const SwaxDistProgress *p);
/* Reads the optimizer state of a checkpoint folder, whatever world size wrote
 * it (optim.json + shards, or a one-process train_state.bin), and fills rank
 * r-of-n's shard (swax_shard_size floats each in m and v, pieces in bucket
 * order) and p. SWAX_E_INPUT with a message naming the file on any mismatch. */
int swax_optim_shard_load(const char *dir, const SwaxRange *b, int nb, size_t n_params, int r, int n, float *m,
                          float *v, SwaxDistProgress *p);
/* 1 if DIR holds a sharded optimizer state (optim.json). */
int swax_optim_is_sharded(const char *dir);

/* ---------------------------------------------------------------- NCCL (dist_nccl.cu) */

/* Loads NCCL (lib: NULL = "libnccl.so.2"). A clear SWAX_E_USAGE when it cannot
 * (a build without CUDA, or no NCCL on this machine). */
int swax_nccl_open(const char *lib);
int swax_nccl_unique_id(unsigned char *id);
/* Picks the GPU of a local rank (SWAX_CUDA_DEVICE for the backend): local
 * rank, or 0 when the launcher made one GPU visible per rank. */
int swax_dist_pick_device(int local_rank);

typedef struct SwaxComm SwaxComm;
/* Sets NCCL_NVLS_ENABLE=0 when unset, then ncclCommInitRankConfig (non-blocking,
 * polled with the watchdog timeout_s). The CUDA backend must be initialised
 * (the model on its device). link (may be NULL) names dead ranks. */
int swax_comm_create(SwaxComm **out, int rank, int world, const unsigned char *id, double timeout_s,
                     SwaxDistLink *link);
/* abort: ncclCommAbort (after an error) instead of a clean destroy. */
void swax_comm_destroy(SwaxComm *c, int abort);
/* Bucket i's gradients [off, off+len) of `grads` are final on the compute
 * stream: the comm stream waits for that point (an event) and sums them over
 * the ranks into each rank's piece (reduce-scatter in place; the remainder of
 * len / world by an all-reduce). Returns at once. */
int swax_comm_reduce_bucket(SwaxComm *c, float *grads, SwaxRange b);
/* Every rank's updated piece of bucket b of `params` to every rank (all-gather
 * in place; the remainder broadcast from the last rank), after the compute
 * stream's work so far. Returns at once. */
int swax_comm_gather_bucket(SwaxComm *c, float *params, SwaxRange b);
/* Waits (host) for the comm stream, polling NCCL's async error, the liveness
 * link and the watchdog; *waited_s += the time spent. `what` names the step in
 * a message. SWAX_E_INTERNAL on a failure (the communicator is aborted). */
int swax_comm_wait(SwaxComm *c, const char *what, double *waited_s);
/* out[world * n] = every rank's in[n], rank-major (identical bits on every rank). */
int swax_comm_allgather_f64(SwaxComm *c, const double *in, int n, double *out, double *waited_s);

#endif
