/* common.h — errors, allocation, files and random numbers shared by every
 * part of libswax. Engine invariants use SWAX_ASSERT (a bug if it fires);
 * everything a user can get wrong returns a status with swax_error(). */
#ifndef SWAX_COMMON_H
#define SWAX_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "swax.h"

/* Records the message for swax_last_error() and returns `code`. */
int swax_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current error message with "ctx: ". Returns `code`. */
int swax_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void swax_error_clear(void);

#define SWAX_ASSERT(cond)                                                            \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "swax: internal error at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                          \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* Propagate a non-zero status. */
#define SWAX_TRY(expr)               \
    do {                             \
        int swax_rc_ = (expr);       \
        if (swax_rc_) return swax_rc_; \
    } while (0)

/* Allocation that reports, instead of crashing, when memory is refused.
 * Returns NULL with SWAX_E_NOMEM set; `what` names the buffer. Zeroed. */
void *swax_calloc(size_t n, size_t size, const char *what);
/* Overflow-checked product of sizes; returns 0 and sets *out on success. */
int swax_mul_size(size_t *out, size_t a, size_t b);

/* Whole file into memory (NUL-terminated as a convenience). */
int swax_read_file(const char *path, char **data, size_t *len);
/* FNV-1a 64 of n bytes continued from h (start from SWAX_FNV_OFFSET): the
 * checksum of the training-state and optimizer-shard files. */
#define SWAX_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t swax_fnv1a(uint64_t h, const void *data, size_t n);
/* Atomic write: PATH.tmp.PID, fsync, rename over PATH, fsync the folder.
 * Nothing already at PATH is touched unless every byte was written. */
int swax_write_file_atomic(const char *path, const void *data, size_t len);
/* Writers that stream into the temporary file, then commit or abort. */
typedef struct {
    FILE *f;
    char path[4096];
    char tmp[4200];
    int failed;
} SwaxAtomicFile;
int swax_atomic_open(SwaxAtomicFile *af, const char *path);
int swax_atomic_write(SwaxAtomicFile *af, const void *data, size_t len);
int swax_atomic_commit(SwaxAtomicFile *af);  /* fsync + rename + fsync(dir) */
void swax_atomic_abort(SwaxAtomicFile *af);  /* removes the temporary file */
/* Maps a regular file read-only (mmap). A file shorter than min_bytes is
 * refused: "<path>: truncated <what> (N bytes, <need>)". */
int swax_map_file(const char *path, size_t min_bytes, const char *what, const char *need, void **map, size_t *len);
/* mkdir -p; error if the path exists and is not a folder. */
int swax_mkdir_p(const char *path);
/* Joins a folder and a file name into buf (error if it does not fit). */
int swax_path_join(char *buf, size_t cap, const char *dir, const char *name);

/* Random numbers: a counter-based generator (SplitMix64) so that any stream
 * can be re-created from (seed, stream id) — what makes resume exact. */
typedef struct {
    uint64_t state;
} SwaxRng;
void swax_rng_seed(SwaxRng *r, uint64_t seed, uint64_t stream);
uint64_t swax_rng_u64(SwaxRng *r);
double swax_rng_uniform(SwaxRng *r);  /* [0, 1) with 53 bits */
double swax_rng_normal(SwaxRng *r);   /* N(0, 1), Box-Muller in double */

double swax_time_sec(void);  /* monotonic clock */

#endif
