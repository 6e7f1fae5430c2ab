/* common.c — see common.h. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char g_err[2048];

const char *swax_last_error(void) { return g_err[0] ? g_err : "no error"; }
const char *swax_version(void) { return "0.1.0"; }
void swax_error_clear(void) { g_err[0] = 0; }

int swax_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return code;
}

int swax_error_wrap(int code, const char *fmt, ...) {
    char prefix[1024], old[sizeof g_err];
    int n;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_err, sizeof old);
    n = snprintf(g_err, sizeof g_err, "%s: ", prefix);
    if (n > 0 && (size_t)n < sizeof g_err) snprintf(g_err + n, sizeof g_err - (size_t)n, "%.*s", (int)(sizeof g_err - (size_t)n - 1), old);
    return code;
}

int swax_mul_size(size_t *out, size_t a, size_t b) {
    if (a != 0 && b > SIZE_MAX / a) return SWAX_E_NOMEM;
    *out = a * b;
    return 0;
}

void *swax_calloc(size_t n, size_t size, const char *what) {
    size_t total;
    if (swax_mul_size(&total, n, size)) {
        swax_error(SWAX_E_NOMEM, "%s: size %zu x %zu overflows", what, n, size);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        swax_error(SWAX_E_NOMEM, "%s: cannot allocate %.1f MiB (config too large for this machine?)",
                   what, (double)total / 1048576.0);
    return p;
}

/* Opens a regular file for reading: a folder would "size" to a bogus huge
 * length, and a FIFO or terminal would block (O_NONBLOCK keeps the open itself
 * from waiting on a FIFO; it has no effect on regular files). */
static int open_regular(const char *path, int *fd_out, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return swax_error(SWAX_E_INPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return swax_error(SWAX_E_INPUT, "%s: not a regular file", path);
    }
    *fd_out = fd;
    *size = (size_t)st.st_size;
    return 0;
}

int swax_read_file(const char *path, char **data, size_t *len) {
    int fd;
    size_t sz;
    SWAX_TRY(open_regular(path, &fd, &sz));
    char *buf = swax_calloc(sz + 1, 1, path);
    if (!buf) {
        close(fd);
        return SWAX_E_NOMEM;
    }
    size_t got = 0;
    while (got < sz) {
        ssize_t r = read(fd, buf + got, sz - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(buf);
            close(fd);
            return swax_error(SWAX_E_INPUT, "%s: read failed%s", path, r < 0 ? "" : " (file shrank)");
        }
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = sz;
    return 0;
}

static int fsync_dir_of(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return 0; /* best effort */
    fsync(fd);
    close(fd);
    return 0;
}

int swax_atomic_open(SwaxAtomicFile *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path)
        return swax_error(SWAX_E_USAGE, "%s: path too long", path);
    snprintf(af->path, sizeof af->path, "%s", path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) return swax_error(SWAX_E_IO, "%s: cannot write: %s", af->tmp, strerror(errno));
    return 0;
}

int swax_atomic_write(SwaxAtomicFile *af, const void *data, size_t len) {
    if (af->failed) return SWAX_E_IO;
    if (len && fwrite(data, 1, len, af->f) != len) {
        af->failed = 1;
        return swax_error(SWAX_E_IO, "%s: write failed: %s", af->tmp, strerror(errno));
    }
    return 0;
}

void swax_atomic_abort(SwaxAtomicFile *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    unlink(af->tmp);
}

int swax_atomic_commit(SwaxAtomicFile *af) {
    if (af->failed) {
        swax_atomic_abort(af);
        return SWAX_E_IO;
    }
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0) {
        int e = errno;
        swax_atomic_abort(af);
        return swax_error(SWAX_E_IO, "%s: flush failed: %s", af->path, strerror(e));
    }
    if (fclose(af->f) != 0) {
        af->f = NULL;
        unlink(af->tmp);
        return swax_error(SWAX_E_IO, "%s: close failed", af->path);
    }
    af->f = NULL;
    if (rename(af->tmp, af->path) != 0) {
        int e = errno;
        unlink(af->tmp);
        return swax_error(SWAX_E_IO, "%s: rename failed: %s", af->path, strerror(e));
    }
    return fsync_dir_of(af->path);
}

int swax_write_file_atomic(const char *path, const void *data, size_t len) {
    SwaxAtomicFile af;
    SWAX_TRY(swax_atomic_open(&af, path));
    if (swax_atomic_write(&af, data, len)) {
        swax_atomic_abort(&af);
        return SWAX_E_IO;
    }
    return swax_atomic_commit(&af);
}

int swax_mkdir_p(const char *path) {
    char tmp[4096];
    if (strlen(path) >= sizeof tmp) return swax_error(SWAX_E_USAGE, "%s: path too long", path);
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return swax_error(SWAX_E_IO, "%s: cannot create folder: %s", tmp, strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return swax_error(SWAX_E_IO, "%s: cannot create folder: %s", tmp, strerror(errno));
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
        return swax_error(SWAX_E_IO, "%s: exists and is not a folder", tmp);
    if (access(tmp, W_OK) != 0)
        return swax_error(SWAX_E_IO, "%s: folder is not writable", tmp);
    return 0;
}

int swax_path_join(char *buf, size_t cap, const char *dir, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return swax_error(SWAX_E_USAGE, "%s/%s: path too long", dir, name);
    return 0;
}

void swax_rng_seed(SwaxRng *r, uint64_t seed, uint64_t stream) {
    r->state = seed * 0x9E3779B97F4A7C15ull ^ (stream + 0xD1B54A32D192ED03ull) * 0xBF58476D1CE4E5B9ull;
}

uint64_t swax_rng_u64(SwaxRng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double swax_rng_uniform(SwaxRng *r) { return (double)(swax_rng_u64(r) >> 11) * 0x1.0p-53; }

double swax_rng_normal(SwaxRng *r) {
    double u1 = swax_rng_uniform(r), u2 = swax_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double swax_time_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int swax_map_file(const char *path, size_t min_bytes, const char *what, const char *need, void **map, size_t *len) {
    int fd;
    size_t size;
    SWAX_TRY(open_regular(path, &fd, &size));
    if (size < min_bytes || size == 0) {
        close(fd);
        return swax_error(SWAX_E_INPUT, "%s: truncated %s (%zu bytes, %s)", path, what, size, need);
    }
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return swax_error(SWAX_E_INPUT, "%s: cannot mmap: %s", path, strerror(errno));
    *map = m;
    *len = size;
    return 0;
}

uint64_t swax_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
