/* dist_env.c — rank discovery, the TCP / file rendezvous with its liveness
 * link, `--gpus N` process management and the data mapping. See dist.h. */
#include "dist/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

/* ---------------------------------------------------------------- discovery */

static const char *env_get(const char *name, void *ud) {
    (void)ud;
    return getenv(name);
}

static int parse_nonneg(const char *var, const char *s, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < 0 || v > hi)
        return swax_error(SWAX_E_USAGE, "%s='%s': expected an integer in [0, %ld]", var, s, hi);
    *out = (int)v;
    return 0;
}

int swax_dist_parse_master(const char *s, char *host, size_t cap, int *port) {
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || (size_t)(colon - s) >= cap)
        return swax_error(SWAX_E_USAGE, "--master '%s': expected HOST:PORT (e.g. node001:29500)", s ? s : "");
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [v6]:port */
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    char var[300];
    snprintf(var, sizeof var, "--master %s: port", s);
    int p = 0;
    if (parse_nonneg(var, colon + 1, 65535, &p) || p < 1)
        return swax_error(SWAX_E_USAGE, "--master '%s': the port must be in 1..65535", s);
    *port = p;
    return 0;
}

int swax_dist_discover(SwaxDistInfo *d, int rank, int world, const char *master, const char *file, SwaxGetenv get,
                       void *ud) {
    if (!get) get = env_get;
    memset(d, 0, sizeof *d);
    d->rank = 0, d->world = 1, d->local_rank = 0, d->local_world = 0;
    snprintf(d->source, sizeof d->source, "none");
    const char *v, *w;
    if (rank >= 0 || world >= 0) {
        if (rank < 0 || world < 1)
            return swax_error(SWAX_E_USAGE, "--rank and --world go together (got --rank %d, --world %d)", rank, world);
        d->rank = rank, d->world = world, d->local_rank = -1;
        snprintf(d->source, sizeof d->source, "flags");
        if ((v = get("SWAX_DIST_LOCAL_RANK", ud)) && *v)
            SWAX_TRY(parse_nonneg("SWAX_DIST_LOCAL_RANK", v, SWAX_DIST_MAX_WORLD, &d->local_rank));
    } else if ((v = get("SWAX_DIST_RANK", ud)) && *v) {
        if (!(w = get("SWAX_DIST_WORLD", ud)) || !*w)
            return swax_error(SWAX_E_USAGE, "SWAX_DIST_RANK is set but SWAX_DIST_WORLD is not");
        SWAX_TRY(parse_nonneg("SWAX_DIST_RANK", v, SWAX_DIST_MAX_WORLD, &d->rank));
        SWAX_TRY(parse_nonneg("SWAX_DIST_WORLD", w, SWAX_DIST_MAX_WORLD, &d->world));
        d->local_rank = d->rank, d->local_world = d->world;
        if ((v = get("SWAX_DIST_LOCAL_RANK", ud)) && *v)
            SWAX_TRY(parse_nonneg("SWAX_DIST_LOCAL_RANK", v, SWAX_DIST_MAX_WORLD, &d->local_rank));
        snprintf(d->source, sizeof d->source, "swax --gpus");
        if ((v = get("SWAX_DIST_JOB", ud))) snprintf(d->job, sizeof d->job, "%s", v);
    } else if ((v = get("OMPI_COMM_WORLD_RANK", ud)) && *v) {
        if (!(w = get("OMPI_COMM_WORLD_SIZE", ud)) || !*w)
            return swax_error(SWAX_E_USAGE, "OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not");
        SWAX_TRY(parse_nonneg("OMPI_COMM_WORLD_RANK", v, SWAX_DIST_MAX_WORLD, &d->rank));
        SWAX_TRY(parse_nonneg("OMPI_COMM_WORLD_SIZE", w, SWAX_DIST_MAX_WORLD, &d->world));
        d->local_rank = -1;
        if ((v = get("OMPI_COMM_WORLD_LOCAL_RANK", ud)) && *v)
            SWAX_TRY(parse_nonneg("OMPI_COMM_WORLD_LOCAL_RANK", v, SWAX_DIST_MAX_WORLD, &d->local_rank));
        if ((v = get("OMPI_COMM_WORLD_LOCAL_SIZE", ud)) && *v)
            SWAX_TRY(parse_nonneg("OMPI_COMM_WORLD_LOCAL_SIZE", v, SWAX_DIST_MAX_WORLD, &d->local_world));
        snprintf(d->source, sizeof d->source, "OpenMPI");
        const char *jobvars[] = {"PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid", "OMPI_MCA_orte_ess_jobid"};
        for (int i = 0; i < 3 && !d->job[0]; i++)
            if ((v = get(jobvars[i], ud)) && *v) snprintf(d->job, sizeof d->job, "%s", v);
    } else if ((v = get("SLURM_PROCID", ud)) && *v && (w = get("SLURM_STEP_NUM_TASKS", ud)) && *w) {
        /* only inside an srun step: a batch script has SLURM_PROCID=0 for the whole allocation */
        SWAX_TRY(parse_nonneg("SLURM_PROCID", v, SWAX_DIST_MAX_WORLD, &d->rank));
        SWAX_TRY(parse_nonneg("SLURM_STEP_NUM_TASKS", w, SWAX_DIST_MAX_WORLD, &d->world));
        d->local_rank = -1;
        if ((v = get("SLURM_LOCALID", ud)) && *v) SWAX_TRY(parse_nonneg("SLURM_LOCALID", v, SWAX_DIST_MAX_WORLD, &d->local_rank));
        if ((v = get("SLURM_STEP_NUM_NODES", ud)) && !strcmp(v, "1")) d->local_world = d->world;
        snprintf(d->source, sizeof d->source, "SLURM");
        const char *job = get("SLURM_JOB_ID", ud), *step = get("SLURM_STEP_ID", ud);
        if (job && *job) snprintf(d->job, sizeof d->job, "slurm%s.%s", job, step ? step : "0");
    }
    if (d->world < 1 || d->rank >= d->world)
        return swax_error(SWAX_E_USAGE, "%s: rank %d of world %d: the rank must be below the world size", d->source,
                          d->rank, d->world);
    if (d->local_rank < 0) d->local_rank = d->local_world == d->world ? d->rank : -1;
    if (d->local_rank < 0) d->local_rank = 0; /* unknown: pick_device falls back to the visible GPU */
    if (!master || !*master) master = get("SWAX_DIST_MASTER", ud);
    if (!file || !*file) file = get("SWAX_DIST_FILE", ud);
    if (master && *master) {
        char host[256];
        int port;
        SWAX_TRY(swax_dist_parse_master(master, host, sizeof host, &port));
        snprintf(d->master, sizeof d->master, "%s", master);
    }
    if (file && *file) {
        if (strlen(file) >= sizeof d->file) return swax_error(SWAX_E_USAGE, "--dist-file: path too long");
        snprintf(d->file, sizeof d->file, "%s", file);
    }
    if (!d->job[0] && d->world > 1 && d->local_world == d->world && strcmp(d->source, "flags"))
        snprintf(d->job, sizeof d->job, "ppid%ld", (long)getppid()); /* one node: the launcher's daemon */
    return 0;
}

int swax_dist_default_file(SwaxDistInfo *d, const char *dir) {
    if (d->master[0] || d->file[0] || d->world == 1) return 0; /* one rank: nobody to meet */
    if (!d->job[0])
        return swax_error(SWAX_E_USAGE,
                          "rank %d of %d (%s): no launcher job id to name a rendezvous file: give --master HOST:PORT "
                          "(rank 0's address) or --dist-file PATH (a file every rank can read)",
                          d->rank, d->world, d->source);
    char job[128];
    snprintf(job, sizeof job, "%s", d->job);
    for (char *p = job; *p; p++)
        if (*p == '/' || *p == ' ') *p = '_';
    int n = snprintf(d->file, sizeof d->file, "%s/.dist-%s", dir, job);
    if (n < 0 || (size_t)n >= sizeof d->file) return swax_error(SWAX_E_USAGE, "rendezvous file path too long");
    return 0;
}

uint64_t swax_dist_batch_pos(uint64_t step_pos, int rank, int accum, int B, int T, int a) {
    return step_pos + ((uint64_t)rank * (uint64_t)accum + (uint64_t)a) * (uint64_t)B * (uint64_t)T;
}

/* ---------------------------------------------------------------- sockets */

enum { HELLO_BYTES = 16, REPLY_BYTES = 16 + SWAX_NCCL_ID_BYTES };
static const char HELLO_MAGIC[8] = {'S', 'W', 'A', 'X', 'D', 'S', 'T', '1'};

static int poll_fd(int fd, short ev, double deadline) {
    for (;;) {
        double left = deadline - swax_time_sec();
        if (left <= 0) return 0;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r > 0) return 1;
    }
}

/* All n bytes by the deadline: 0, -1 error/EOF, -2 timeout. */
static int send_all(int fd, const void *buf, size_t n, double deadline) {
    const char *p = buf;
    while (n) {
        int pr = poll_fd(fd, POLLOUT, deadline);
        if (pr == 0) return -2;
        if (pr < 0) return -1;
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return -1;
        p += k, n -= (size_t)k;
    }
    return 0;
}

static int recv_all(int fd, void *buf, size_t n, double deadline) {
    char *p = buf;
    while (n) {
        int pr = poll_fd(fd, POLLIN, deadline);
        if (pr == 0) return -2;
        if (pr < 0) return -1;
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return -1;
        p += k, n -= (size_t)k;
    }
    return 0;
}

static int listen_on(int port, int *fd_out, int *port_out) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int v6 = fd >= 0;
    if (!v6) fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return swax_error(SWAX_E_IO, "rendezvous: socket: %s", strerror(errno));
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (v6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6, a.sin6_addr = in6addr_any, a.sin6_port = htons((uint16_t)port);
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET, a.sin_addr.s_addr = htonl(INADDR_ANY), a.sin_port = htons((uint16_t)port);
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (rc != 0 || listen(fd, 256) != 0) {
        int e = errno;
        close(fd);
        return swax_error(SWAX_E_IO, "rank 0: cannot listen on port %d for the rendezvous: %s%s", port, strerror(e),
                          e == EADDRINUSE ? " (another run uses it? pick another --master port)" : "");
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    *fd_out = fd;
    return 0;
}

/* Connects to host:port, retrying until the deadline (rank 0 may start later). */
static int connect_to(const char *host, int port, int rank, double deadline, int *fd_out) {
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    char last[200] = "no attempt";
    while (swax_time_sec() < deadline) {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC, hints.ai_socktype = SOCK_STREAM;
        int g = getaddrinfo(host, ps, &hints, &res);
        if (g != 0) {
            snprintf(last, sizeof last, "cannot resolve '%s': %s", host, gai_strerror(g));
        } else {
            for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
                if (fd < 0) continue;
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
                    freeaddrinfo(res);
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    *fd_out = fd;
                    return 0;
                }
                snprintf(last, sizeof last, "%s", strerror(errno));
                close(fd);
            }
            freeaddrinfo(res);
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return swax_error(SWAX_E_IO,
                      "rank %d: cannot reach rank 0 at %s:%d for the rendezvous (%s): is rank 0 running, is the "
                      "address right, is the port open between the nodes?",
                      rank, host, port, last);
}

static void link_alloc(SwaxDistLink *l, int rank, int world) {
    memset(l, 0, sizeof *l);
    l->rank = rank, l->world = world, l->dead_rank = -1;
    l->fd = malloc(sizeof(int) * (size_t)world);
    l->gone = calloc((size_t)world, sizeof(int));
    SWAX_ASSERT(l->fd && l->gone);
    for (int i = 0; i < world; i++) l->fd[i] = -1;
}

/* Rank 0: accept world - 1 ranks, check each hello, send the id. */
static int serve(int lfd, const SwaxDistInfo *d, double deadline, const unsigned char *id, SwaxDistLink *l,
                 const char *where) {
    int joined = 0;
    while (joined < d->world - 1) {
        int pr = poll_fd(lfd, POLLIN, deadline);
        if (pr <= 0) {
            char missing[256] = "";
            size_t n = 0;
            for (int r = 1; r < d->world && n + 12 < sizeof missing; r++)
                if (l->fd[r] < 0) n += (size_t)snprintf(missing + n, sizeof missing - n, "%s%d", n ? ", " : "", r);
            return swax_error(SWAX_E_IO,
                              "rank 0: rendezvous at %s: %d of %d ranks joined before the timeout; missing rank(s): %s "
                              "(did they start? same --world? same address?)",
                              where, joined + 1, d->world, missing);
        }
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        unsigned char h[HELLO_BYTES];
        double hd = swax_time_sec() + 10 < deadline ? swax_time_sec() + 10 : deadline;
        if (recv_all(fd, h, sizeof h, hd) != 0 || memcmp(h, HELLO_MAGIC, 8) != 0) {
            close(fd); /* a stray connection (port scanner, old run): ignore */
            continue;
        }
        uint32_t r, w;
        memcpy(&r, h + 8, 4), memcpy(&w, h + 12, 4);
        unsigned char rep[REPLY_BYTES];
        memset(rep, 0, sizeof rep);
        memcpy(rep, HELLO_MAGIC, 8);
        uint32_t status = 0;
        if ((int)w != d->world) status = 1;
        else if (r < 1 || (int)r >= d->world || l->fd[r] >= 0) status = 2;
        memcpy(rep + 8, &status, 4);
        uint32_t myw = (uint32_t)d->world;
        memcpy(rep + 12, &myw, 4);
        if (!status) memcpy(rep + 16, id, SWAX_NCCL_ID_BYTES);
        send_all(fd, rep, sizeof rep, hd);
        if (status) {
            close(fd);
            if (status == 1)
                return swax_error(SWAX_E_USAGE, "rank 0: rank %u joined with world size %u, this run has %d: every "
                                                "rank needs the same --world", r, w, d->world);
            return swax_error(SWAX_E_USAGE, "rank 0: a second process claims rank %u (or it is out of range for world "
                                            "%d): each rank must be given once", r, d->world);
        }
        l->fd[r] = fd;
        joined++;
    }
    return 0;
}

static int join(const char *host, int port, const SwaxDistInfo *d, double deadline, unsigned char *id,
                SwaxDistLink *l) {
    int fd;
    SWAX_TRY(connect_to(host, port, d->rank, deadline, &fd));
    unsigned char h[HELLO_BYTES];
    memcpy(h, HELLO_MAGIC, 8);
    uint32_t r = (uint32_t)d->rank, w = (uint32_t)d->world;
    memcpy(h + 8, &r, 4), memcpy(h + 12, &w, 4);
    unsigned char rep[REPLY_BYTES];
    int rc = send_all(fd, h, sizeof h, deadline);
    if (!rc) rc = recv_all(fd, rep, sizeof rep, deadline);
    if (rc || memcmp(rep, HELLO_MAGIC, 8) != 0) {
        close(fd);
        return swax_error(SWAX_E_IO, "rank %d: the rendezvous with rank 0 at %s:%d failed (%s)", d->rank, host, port,
                          rc == -2 ? "timed out waiting for its answer" : "connection closed or not a swax rank 0");
    }
    uint32_t status, w0;
    memcpy(&status, rep + 8, 4), memcpy(&w0, rep + 12, 4);
    if (status) {
        close(fd);
        return swax_error(SWAX_E_USAGE, "rank %d: rank 0 refused: %s", d->rank,
                          status == 1 ? "its world size differs (every rank needs the same --world)"
                                      : "this rank is taken or out of range (each rank must be given once)");
    }
    (void)w0;
    memcpy(id, rep + 16, SWAX_NCCL_ID_BYTES);
    l->fd[0] = fd;
    return 0;
}

static int write_rendezvous_file(const char *path, const char *host, int port) {
    char text[512];
    int n = snprintf(text, sizeof text, "swax-rendezvous 1 %s %d\n", host, port);
    return swax_write_file_atomic(path, text, (size_t)n);
}

static int read_rendezvous_file(const char *path, int rank, double deadline, char *host, size_t cap, int *port) {
    for (;;) {
        char *text;
        size_t len;
        if (access(path, R_OK) == 0 && swax_read_file(path, &text, &len) == 0) {
            char h[256];
            int v = 0, p = 0;
            int ok = sscanf(text, "swax-rendezvous %d %255s %d", &v, h, &p) == 3 && v == 1 && p > 0;
            free(text);
            if (ok) {
                snprintf(host, cap, "%s", h);
                *port = p;
                return 0;
            }
        }
        swax_error_clear();
        if (swax_time_sec() >= deadline)
            return swax_error(SWAX_E_IO,
                              "rank %d: the rendezvous file %s did not appear before the timeout: is rank 0 running, "
                              "and is the file on a folder every rank sees?",
                              rank, path);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int swax_dist_rendezvous(const SwaxDistInfo *d, double timeout_s, unsigned char *id, SwaxDistLink *link) {
    link_alloc(link, d->rank, d->world);
    if (d->world == 1) return 0;
    const double deadline = swax_time_sec() + timeout_s;
    char host[256], where[1600];
    int port = 0, rc = 0;
    if (d->master[0]) {
        SWAX_TRY(swax_dist_parse_master(d->master, host, sizeof host, &port));
        snprintf(where, sizeof where, "%s", d->master);
    } else if (!d->file[0]) {
        return swax_error(SWAX_E_USAGE, "rank %d of %d: no rendezvous: give --master HOST:PORT or --dist-file PATH",
                          d->rank, d->world);
    }
    if (d->rank == 0) {
        int lfd = -1, bound = 0;
        SWAX_TRY(listen_on(d->master[0] ? port : 0, &lfd, &bound));
        if (!d->master[0]) {
            char hn[256] = "127.0.0.1";
            if (d->local_world != d->world && gethostname(hn, sizeof hn) != 0) snprintf(hn, sizeof hn, "127.0.0.1");
            hn[sizeof hn - 1] = 0;
            unlink(d->file);
            if ((rc = write_rendezvous_file(d->file, hn, bound))) {
                close(lfd);
                return swax_error_wrap(rc, "rank 0: rendezvous file");
            }
            snprintf(where, sizeof where, "%s (port %d, file %s)", hn, bound, d->file);
        }
        rc = serve(lfd, d, deadline, id, link, where);
        close(lfd);
        if (!d->master[0]) unlink(d->file); /* everyone has joined: the file has served */
    } else {
        if (!d->master[0]) {
            /* a stale file (an earlier run's) names a dead port: read it again until rank 0's own appears */
            for (;;) {
                SWAX_TRY(read_rendezvous_file(d->file, d->rank, deadline, host, sizeof host, &port));
                if (d->local_world == d->world) snprintf(host, sizeof host, "127.0.0.1");
                const double try_until = swax_time_sec() + 3 < deadline ? swax_time_sec() + 3 : deadline;
                int fd;
                if (connect_to(host, port, d->rank, try_until, &fd) == 0) {
                    close(fd);
                    break;
                }
                if (swax_time_sec() >= deadline) break;
            }
        }
        rc = join(host, port, d, deadline, id, link);
    }
    if (rc) swax_dist_link_close(link, 0);
    return rc;
}

/* ---------------------------------------------------------------- liveness */

enum { MSG_BYE = 'B', MSG_DEAD = 'D' };

static void mark_gone(SwaxDistLink *l, int r, const char *how) {
    if (l->gone[r]) return;
    l->gone[r] = 1;
    if (l->dead_rank < 0) {
        l->dead_rank = r;
        snprintf(l->why, sizeof l->why, "rank %d %s", r, how);
    }
}

int swax_dist_link_poll(SwaxDistLink *l) {
    if (!l || !l->fd || l->world <= 1) return 0;
    const int lo = l->rank == 0 ? 1 : 0, hi = l->rank == 0 ? l->world : 1;
    for (int r = lo; r < hi; r++) {
        int fd = l->fd[r];
        if (fd < 0) continue;
        for (;;) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 0) <= 0) break;
            unsigned char msg[5];
            ssize_t k = recv(fd, msg, 1, MSG_DONTWAIT);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                close(fd);
                l->fd[r] = -1;
                if (!l->gone[r]) mark_gone(l, r, "exited or was killed (its connection closed)");
                break;
            }
            if (k < 0) break;
            if (msg[0] == MSG_BYE) {
                l->gone[r] = 1; /* a clean exit: not an error */
            } else if (msg[0] == MSG_DEAD && l->rank != 0) {
                if (recv_all(fd, msg + 1, 4, swax_time_sec() + 1) == 0) {
                    int32_t who;
                    memcpy(&who, msg + 1, 4);
                    if (who >= 0 && who < l->world) mark_gone(l, who, "exited or was killed (reported by rank 0)");
                }
            }
        }
    }
    if (l->dead_rank >= 0 && l->rank == 0) { /* tell the others who it was */
        unsigned char msg[5] = {MSG_DEAD};
        int32_t who = l->dead_rank;
        memcpy(msg + 1, &who, 4);
        for (int r = 1; r < l->world; r++)
            if (l->fd[r] >= 0) send(l->fd[r], msg, 5, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (l->dead_rank >= 0) return swax_error(SWAX_E_INTERNAL, "%s", l->why);
    return 0;
}

void swax_dist_link_close(SwaxDistLink *l, int clean) {
    if (!l || !l->fd) return;
    for (int r = 0; r < l->world; r++) {
        if (l->fd[r] < 0) continue;
        if (clean) {
            unsigned char b = MSG_BYE;
            send(l->fd[r], &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        close(l->fd[r]);
    }
    free(l->fd);
    free(l->gone);
    l->fd = NULL, l->gone = NULL;
}

/* ---------------------------------------------------------------- --gpus N */

static volatile sig_atomic_t g_fwd_sig;
static void on_parent_signal(int sig) { g_fwd_sig = sig; }

int swax_dist_spawn(int n, double grace_s, int (*child)(int rank, void *ud), void *ud, int *failed_rank) {
    *failed_rank = -1;
    if (n < 1) return swax_error(SWAX_E_USAGE, "--gpus %d: must be >= 1", n);
    pid_t *pid = calloc((size_t)n, sizeof(pid_t));
    int *alive = calloc((size_t)n, sizeof(int));
    SWAX_ASSERT(pid && alive);
    fflush(NULL);
    g_fwd_sig = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_parent_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int status = 0;
    for (int r = 0; r < n; r++) {
        pid[r] = fork();
        if (pid[r] == 0) {
            sigaction(SIGINT, &old_int, NULL);
            sigaction(SIGTERM, &old_term, NULL);
            int code = child(r, ud);
            fflush(NULL);
            exit(code);
        }
        if (pid[r] < 0) {
            status = swax_error(SWAX_E_INTERNAL, "--gpus: fork of rank %d failed: %s", r, strerror(errno));
            *failed_rank = r;
            break;
        }
        alive[r] = 1;
    }
    int left = 0;
    for (int r = 0; r < n; r++) left += alive[r];
    double kill_at = status ? swax_time_sec() + grace_s : -1;
    int killed = 0, fwd_done = 0;
    while (left > 0) {
        if (g_fwd_sig && !fwd_done) { /* Ctrl-C reaches the children from the terminal; kill/timeout may not */
            for (int r = 0; r < n; r++)
                if (alive[r]) kill(pid[r], g_fwd_sig);
            fwd_done = 1;
        }
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            int r = 0;
            while (r < n && pid[r] != p) r++;
            if (r == n) continue;
            alive[r] = 0, left--;
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
            if (code != 0 && *failed_rank < 0) {
                *failed_rank = r;
                status = code;
                if (left > 0) {
                    if (WIFSIGNALED(st))
                        fprintf(stderr, "swax train: rank %d was killed by signal %d; stopping the other ranks\n", r,
                                WTERMSIG(st));
                    else
                        fprintf(stderr, "swax train: rank %d exited with status %d; stopping the other ranks\n", r,
                                code);
                }
                kill_at = swax_time_sec() + grace_s;
            }
            continue;
        }
        if (p < 0 && errno != EINTR) break;
        if (kill_at >= 0 && !killed && swax_time_sec() >= kill_at) {
            for (int r = 0; r < n; r++)
                if (alive[r]) {
                    fprintf(stderr, "swax train: rank %d still running %.0f s after rank %d failed: killing it\n", r,
                            grace_s, *failed_rank);
                    kill(pid[r], SIGKILL);
                }
            killed = 1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(pid);
    free(alive);
    return status;
}
