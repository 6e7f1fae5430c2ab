/* loader.c — see loader.h. */
#include "data/loader.h"

#include <glob.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "io/shard.h"

struct SwaxLoader {
    char pattern[4096];
    int n;
    SwaxShard *shards;
    uint64_t *start; /* n + 1 cumulative token offsets */
    uint64_t total, pos;
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void swax_loader_close(SwaxLoader *l) {
    if (!l) return;
    for (int i = 0; i < l->n; i++) swax_shard_close(&l->shards[i]);
    free(l->shards);
    free(l->start);
    free(l);
}

int swax_loader_open(const char *pattern, int vocab_size, SwaxLoader **out) {
    *out = NULL;
    if (!pattern || !*pattern) return swax_error(SWAX_E_USAGE, "loader: empty shard pattern");
    glob_t g;
    memset(&g, 0, sizeof g);
    int gr = glob(pattern, GLOB_NOSORT, NULL, &g);
    if (gr == GLOB_NOMATCH || (gr == 0 && g.gl_pathc == 0)) {
        globfree(&g);
        return swax_error(SWAX_E_INPUT, "%s: no token shard matches this pattern", pattern);
    }
    if (gr != 0) {
        globfree(&g);
        return swax_error(SWAX_E_INPUT, "%s: cannot expand the pattern (%s)", pattern,
                          gr == GLOB_NOSPACE ? "out of memory" : "read error");
    }
    if (g.gl_pathc > (size_t)INT32_MAX) {
        globfree(&g);
        return swax_error(SWAX_E_INPUT, "%s: too many shards", pattern);
    }
    qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, cmp_str); /* byte order, whatever the locale */
    SwaxLoader *l = calloc(1, sizeof *l);
    int rc = l ? 0 : swax_error(SWAX_E_NOMEM, "loader");
    if (!rc) {
        snprintf(l->pattern, sizeof l->pattern, "%s", pattern);
        l->shards = swax_calloc(g.gl_pathc, sizeof *l->shards, "loader shards");
        l->start = swax_calloc(g.gl_pathc + 1, sizeof *l->start, "loader offsets");
        if (!l->shards || !l->start) rc = SWAX_E_NOMEM;
    }
    for (size_t i = 0; !rc && i < g.gl_pathc; i++) {
        rc = swax_shard_open(g.gl_pathv[i], &l->shards[i]);
        if (rc) break;
        l->n++;
        if (vocab_size > 0) rc = swax_shard_check_vocab(&l->shards[i], vocab_size);
        l->start[i + 1] = l->start[i] + l->shards[i].n_tokens;
    }
    if (!rc) {
        l->total = l->start[l->n];
        if (!l->total) rc = swax_error(SWAX_E_INPUT, "%s: the %d matching shard(s) hold no tokens", pattern, l->n);
    }
    globfree(&g);
    if (rc) {
        swax_loader_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* The shard holding stream offset off (< total): the last i with start[i] <= off. */
static int shard_of(const SwaxLoader *l, uint64_t off) {
    int lo = 0, hi = l->n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (l->start[mid] <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

void swax_loader_read(const SwaxLoader *l, uint64_t start, size_t n, int32_t *out) {
    uint64_t off = start % l->total;
    while (n > 0) {
        int s = shard_of(l, off);
        uint64_t in = off - l->start[s], avail = l->shards[s].n_tokens - in;
        size_t m = (size_t)(avail < n ? avail : n);
        swax_shard_read(&l->shards[s], (size_t)in, m, out);
        out += m;
        n -= m;
        off += m;
        if (off == l->total) off = 0;
    }
}

int swax_loader_next(SwaxLoader *l, int B, int T, int32_t *out) {
    if (B < 1 || T < 1) return swax_error(SWAX_E_USAGE, "loader: batch %d x %d: B and T must be >= 1", B, T);
    uint64_t need = (uint64_t)B * ((uint64_t)T + 1);
    if (need > l->total)
        return swax_error(SWAX_E_INPUT,
                          "%s: the %d shard(s) hold %" PRIu64 " tokens, fewer than one batch of B*(T+1) = %d*%d = %" PRIu64,
                          l->pattern, l->n, l->total, B, T + 1, need);
    for (int b = 0; b < B; b++) swax_loader_read(l, l->pos + (uint64_t)b * (uint64_t)T, (size_t)T + 1, out + (size_t)b * (T + 1));
    l->pos += (uint64_t)B * (uint64_t)T;
    return 0;
}

uint64_t swax_loader_position(const SwaxLoader *l) { return l->pos; }
void swax_loader_seek(SwaxLoader *l, uint64_t pos) { l->pos = pos; }
uint64_t swax_loader_epoch(const SwaxLoader *l) { return l->pos / l->total; }
size_t swax_loader_total_tokens(const SwaxLoader *l) { return (size_t)l->total; }
int swax_loader_num_shards(const SwaxLoader *l) { return l->n; }
const char *swax_loader_shard_path(const SwaxLoader *l, int i) { return i >= 0 && i < l->n ? l->shards[i].path : NULL; }
