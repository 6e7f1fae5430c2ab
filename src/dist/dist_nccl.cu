/* dist_nccl.cu — the communicator (dist.h): NCCL loaded with dlopen at run
 * time (types from nccl.h; no link-time dependency), a communication stream
 * beside the backend's compute stream, and waits that never hang silently.
 *
 * Streams: the compute stream is the CUDA backend's (swax_cuda_stream()).
 * A bucket's reduce-scatter waits (cudaStreamWaitEvent, device side) for an
 * event recorded on the compute stream when its gradients are final, so it
 * runs while the backward of the earlier blocks goes on. The compute stream
 * never waits on the comm stream on the device: the host waits instead
 * (swax_comm_wait), polling the comm stream's event, ncclCommGetAsyncError,
 * the liveness link and a watchdog deadline. So a dead or hung rank leaves no
 * host thread blocked in a CUDA call: the waiting rank aborts the
 * communicator and exits with a message.
 *
 * The communicator is non-blocking (ncclConfig_t.blocking = 0): an NCCL call
 * that returns ncclInProgress is polled to completion under the same watchdog. */
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/cuda/cuda_common.cuh"

extern "C" {
#include "core/common.h"
#include "dist/dist.h"
}

/* ---------------------------------------------------------------- dlopen */

static struct {
    void *h;
    ncclResult_t (*GetVersion)(int *);
    ncclResult_t (*GetUniqueId)(ncclUniqueId *);
    ncclResult_t (*CommInitRankConfig)(ncclComm_t *, int, ncclUniqueId, int, ncclConfig_t *);
    ncclResult_t (*CommDestroy)(ncclComm_t);
    ncclResult_t (*CommAbort)(ncclComm_t);
    ncclResult_t (*CommGetAsyncError)(ncclComm_t, ncclResult_t *);
    const char *(*GetErrorString)(ncclResult_t);
    const char *(*GetLastError)(ncclComm_t);
    ncclResult_t (*ReduceScatter)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*AllGather)(const void *, void *, size_t, ncclDataType_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*AllReduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*Broadcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
    ncclResult_t (*GroupStart)(void);
    ncclResult_t (*GroupEnd)(void);
    int version;
} N;

extern "C" int swax_nccl_open(const char *lib) {
    if (N.h) return 0;
    if (!lib) lib = "libnccl.so.2";
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return swax_error(SWAX_E_USAGE,
                          "multi-GPU training needs NCCL: cannot load %s (%s); install NCCL (libnccl2) or add its "
                          "folder to LD_LIBRARY_PATH",
                          lib, dlerror());
#define SYM(field, name)                                                                                     \
    if (!(*(void **)&N.field = dlsym(h, name))) {                                                            \
        dlclose(h);                                                                                          \
        memset(&N, 0, sizeof N);                                                                             \
        return swax_error(SWAX_E_USAGE, "%s has no %s: NCCL 2.14 or newer is needed", lib, name);           \
    }
    SYM(GetVersion, "ncclGetVersion");
    SYM(GetUniqueId, "ncclGetUniqueId");
    SYM(CommInitRankConfig, "ncclCommInitRankConfig");
    SYM(CommDestroy, "ncclCommDestroy");
    SYM(CommAbort, "ncclCommAbort");
    SYM(CommGetAsyncError, "ncclCommGetAsyncError");
    SYM(GetErrorString, "ncclGetErrorString");
    SYM(GetLastError, "ncclGetLastError");
    SYM(ReduceScatter, "ncclReduceScatter");
    SYM(AllGather, "ncclAllGather");
    SYM(AllReduce, "ncclAllReduce");
    SYM(Broadcast, "ncclBroadcast");
    SYM(GroupStart, "ncclGroupStart");
    SYM(GroupEnd, "ncclGroupEnd");
#undef SYM
    N.h = h;
    N.GetVersion(&N.version);
    return 0;
}

extern "C" int swax_nccl_unique_id(unsigned char *id) {
    SWAX_TRY(swax_nccl_open(NULL));
    static_assert(sizeof(ncclUniqueId) == SWAX_NCCL_ID_BYTES, "NCCL unique id size");
    ncclUniqueId u;
    ncclResult_t r = N.GetUniqueId(&u);
    if (r != ncclSuccess) return swax_error(SWAX_E_INTERNAL, "ncclGetUniqueId: %s", N.GetErrorString(r));
    memcpy(id, &u, sizeof u);
    return 0;
}

extern "C" int swax_dist_pick_device(int local_rank) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1) {
        cudaGetLastError();
        return swax_error(SWAX_E_USAGE, "multi-GPU training: no usable CUDA device (%s)",
                          e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    int dev = local_rank < n ? local_rank : (n == 1 ? 0 : -1);
    if (dev < 0)
        return swax_error(SWAX_E_USAGE, "local rank %d needs GPU %d, but this node shows %d GPU(s): start at most %d "
                                        "ranks per node", local_rank, local_rank, n, n);
    char buf[16];
    snprintf(buf, sizeof buf, "%d", dev);
    setenv("SWAX_CUDA_DEVICE", buf, 1);
    return 0;
}

/* ---------------------------------------------------------------- communicator */

struct SwaxComm {
    ncclComm_t comm;
    int rank, world, failed;
    double timeout_s;
    cudaStream_t comm_stream;
    cudaEvent_t *ev; /* compute-side points the comm stream waits on (a ring) */
    int nev, next_ev;
    cudaEvent_t done;
    double *dbuf; /* small device buffer for allgather_f64 */
    int dcap;
    SwaxDistLink *link;
};

static void nap(void) {
    struct timespec ts = {0, 50 * 1000};
    nanosleep(&ts, NULL);
}

/* Ends in failure: the communicator is aborted; the message names a dead rank when the link knows one. */
static int fail(SwaxComm *c, const char *what, const char *fmt, const char *detail) {
    char extra[300] = "";
    if (c->link && swax_dist_link_poll(c->link)) snprintf(extra, sizeof extra, " (%s)", c->link->why);
    else if (c->link && c->link->dead_rank >= 0) snprintf(extra, sizeof extra, " (%s)", c->link->why);
    if (!c->failed && c->comm) N.CommAbort(c->comm);
    c->failed = 1;
    char msg[600];
    snprintf(msg, sizeof msg, fmt, detail);
    return swax_error(SWAX_E_INTERNAL, "rank %d: %s: %s%s; stopping (the last checkpoint is kept)", c->rank, what, msg,
                      extra);
}

/* An NCCL call's result: ncclInProgress is polled to completion (non-blocking communicator). */
static int settle(SwaxComm *c, ncclResult_t r, const char *what) {
    const double deadline = swax_time_sec() + c->timeout_s;
    while (r == ncclInProgress) {
        if (c->link && swax_dist_link_poll(c->link)) return fail(c, what, "%s", "a peer is gone");
        if (swax_time_sec() > deadline) {
            char t[64];
            snprintf(t, sizeof t, "%.0f", c->timeout_s);
            return fail(c, what, "no progress within the watchdog timeout of %s s (a rank is hung or dead; "
                                 "--dist-timeout sets it)", t);
        }
        nap();
        if (N.CommGetAsyncError(c->comm, &r) != ncclSuccess) break;
    }
    if (r != ncclSuccess) {
        char d[300];
        snprintf(d, sizeof d, "%s%s%s", N.GetErrorString(r), c->comm ? ": " : "", c->comm ? N.GetLastError(c->comm) : "");
        return fail(c, what, "NCCL error: %s", d);
    }
    return 0;
}

extern "C" int swax_comm_create(SwaxComm **out, int rank, int world, const unsigned char *id, double timeout_s,
                                SwaxDistLink *link) {
    *out = NULL;
    SWAX_TRY(swax_nccl_open(NULL));
    /* NVLink SHARP (multicast) off unless the user chose: on shared hosts it can take GPUs out of service (SPEC §9) */
    setenv("NCCL_NVLS_ENABLE", "0", 0);
    SwaxComm *c = (SwaxComm *)calloc(1, sizeof *c);
    if (!c) return swax_error(SWAX_E_NOMEM, "communicator");
    c->rank = rank, c->world = world, c->timeout_s = timeout_s, c->link = link;
    c->nev = 64;
    c->ev = (cudaEvent_t *)calloc((size_t)c->nev, sizeof(cudaEvent_t));
    SWAX_CUDA_CHECK(cudaStreamCreateWithFlags(&c->comm_stream, cudaStreamNonBlocking));
    for (int i = 0; i < c->nev; i++) SWAX_CUDA_CHECK(cudaEventCreateWithFlags(&c->ev[i], cudaEventDisableTiming));
    SWAX_CUDA_CHECK(cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming));
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    ncclResult_t r = N.CommInitRankConfig(&c->comm, world, u, rank, &cfg);
    if (r == ncclInProgress || r == ncclSuccess) {
        int rc = settle(c, r, "NCCL initialisation");
        if (rc) {
            swax_comm_destroy(c, 1);
            return rc;
        }
    } else {
        int rc = swax_error(SWAX_E_INTERNAL, "rank %d: ncclCommInitRankConfig: %s", rank, N.GetErrorString(r));
        swax_comm_destroy(c, 1);
        return rc;
    }
    *out = c;
    return 0;
}

extern "C" void swax_comm_destroy(SwaxComm *c, int abort_it) {
    if (!c) return;
    if (c->comm) {
        if (abort_it || c->failed) N.CommAbort(c->comm);
        else N.CommDestroy(c->comm);
    }
    if (!c->failed) {
        for (int i = 0; i < c->nev; i++)
            if (c->ev[i]) cudaEventDestroy(c->ev[i]);
        if (c->done) cudaEventDestroy(c->done);
        if (c->comm_stream) cudaStreamDestroy(c->comm_stream);
        if (c->dbuf) cudaFree(c->dbuf);
    }
    free(c->ev);
    free(c);
}

/* The comm stream waits (on the device) for the compute stream's work so far. */
static void after_compute(SwaxComm *c) {
    cudaEvent_t e = c->ev[c->next_ev];
    c->next_ev = (c->next_ev + 1) % c->nev;
    SWAX_CUDA_CHECK(cudaEventRecord(e, swax_cuda_stream()));
    SWAX_CUDA_CHECK(cudaStreamWaitEvent(c->comm_stream, e, 0));
}

extern "C" int swax_comm_reduce_bucket(SwaxComm *c, float *grads, SwaxRange b) {
    if (c->failed) return SWAX_E_INTERNAL;
    after_compute(c);
    const size_t q = b.len / (size_t)c->world, rem = b.len - q * (size_t)c->world;
    float *base = grads + b.off;
    SWAX_TRY(settle(c, N.GroupStart(), "reduce-scatter"));
    ncclResult_t r = ncclSuccess;
    if (q) r = N.ReduceScatter(base, base + (size_t)c->rank * q, q, ncclFloat32, ncclSum, c->comm, c->comm_stream);
    if ((r == ncclSuccess || r == ncclInProgress) && rem)
        r = N.AllReduce(base + q * (size_t)c->world, base + q * (size_t)c->world, rem, ncclFloat32, ncclSum, c->comm,
                        c->comm_stream);
    ncclResult_t e = N.GroupEnd();
    if (r != ncclSuccess && r != ncclInProgress) return settle(c, r, "reduce-scatter");
    return settle(c, e, "reduce-scatter");
}

extern "C" int swax_comm_gather_bucket(SwaxComm *c, float *params, SwaxRange b) {
    if (c->failed) return SWAX_E_INTERNAL;
    after_compute(c);
    const size_t q = b.len / (size_t)c->world, rem = b.len - q * (size_t)c->world;
    float *base = params + b.off;
    SWAX_TRY(settle(c, N.GroupStart(), "all-gather"));
    ncclResult_t r = ncclSuccess;
    if (q) r = N.AllGather(base + (size_t)c->rank * q, base, q, ncclFloat32, c->comm, c->comm_stream);
    if ((r == ncclSuccess || r == ncclInProgress) && rem)
        r = N.Broadcast(base + q * (size_t)c->world, base + q * (size_t)c->world, rem, ncclFloat32, c->world - 1,
                        c->comm, c->comm_stream);
    ncclResult_t e = N.GroupEnd();
    if (r != ncclSuccess && r != ncclInProgress) return settle(c, r, "all-gather");
    return settle(c, e, "all-gather");
}

extern "C" int swax_comm_wait(SwaxComm *c, const char *what, double *waited_s) {
    if (c->failed) return SWAX_E_INTERNAL;
    const double t0 = swax_time_sec(), deadline = t0 + c->timeout_s;
    SWAX_CUDA_CHECK(cudaEventRecord(c->done, c->comm_stream));
    int rc = 0;
    for (long it = 0;; it++) {
        cudaError_t q = cudaEventQuery(c->done);
        if (q == cudaSuccess) break;
        if (q != cudaErrorNotReady) swax_cuda_fatal(q, "cudaEventQuery (comm stream)", __FILE__, __LINE__);
        if ((it & 63) == 0) {
            ncclResult_t ae = ncclSuccess;
            N.CommGetAsyncError(c->comm, &ae);
            if (ae != ncclSuccess && ae != ncclInProgress) {
                rc = fail(c, what, "NCCL error: %s", N.GetErrorString(ae));
                break;
            }
            if (c->link && swax_dist_link_poll(c->link)) {
                rc = fail(c, what, "%s", "a rank is gone");
                break;
            }
            if (swax_time_sec() > deadline) {
                char t[64];
                snprintf(t, sizeof t, "%.0f", c->timeout_s);
                rc = fail(c, what, "no progress within the watchdog timeout of %s s (a rank is hung or dead; "
                                   "--dist-timeout sets it)", t);
                break;
            }
        }
        if (it > 1000) nap();
    }
    if (waited_s) *waited_s += swax_time_sec() - t0;
    return rc;
}

extern "C" int swax_comm_allgather_f64(SwaxComm *c, const double *in, int n, double *out, double *waited_s) {
    if (c->failed) return SWAX_E_INTERNAL;
    const int need = n * (c->world + 1);
    if (need > c->dcap) {
        if (c->dbuf) SWAX_CUDA_CHECK(cudaFree(c->dbuf));
        SWAX_CUDA_CHECK(cudaMalloc(&c->dbuf, sizeof(double) * (size_t)need));
        c->dcap = need;
    }
    double *send = c->dbuf + (size_t)n * c->world;
    SWAX_CUDA_CHECK(cudaMemcpyAsync(send, in, sizeof(double) * (size_t)n, cudaMemcpyHostToDevice, c->comm_stream));
    SWAX_TRY(settle(c, N.AllGather(send, c->dbuf, (size_t)n, ncclFloat64, c->comm, c->comm_stream), "all-gather of the step's statistics"));
    SWAX_TRY(swax_comm_wait(c, "all-gather of the step's statistics", waited_s));
    SWAX_CUDA_CHECK(cudaMemcpyAsync(out, c->dbuf, sizeof(double) * (size_t)n * c->world, cudaMemcpyDeviceToHost,
                                    c->comm_stream));
    return swax_comm_wait(c, "statistics copy", waited_s);
}
