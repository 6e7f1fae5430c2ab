/* shard.c — see shard.h and docs/formats.md. */
#include "io/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "swax assumes a little-endian host"
#endif

static int32_t rd_i32(const uint8_t *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t r;
    memcpy(&r, &v, 4);
    return r;
}

static int shard_open(const char *path, SwaxShard *s) {
    snprintf(s->path, sizeof s->path, "%s", path);
    void *map;
    size_t size;
    char hdr[64];
    snprintf(hdr, sizeof hdr, "the header alone is %d", SWAX_SHARD_HEADER_BYTES);
    SWAX_TRY(swax_map_file(path, SWAX_SHARD_HEADER_BYTES, "token shard", hdr, &map, &size));
    s->map = map;
    s->map_len = size;
    const uint8_t *h = map;
    int32_t magic = rd_i32(h), version = rd_i32(h + 4), count = rd_i32(h + 8);
    if (magic == SWAX_SHARD_MAGIC16) {
        if (version != SWAX_SHARD_VERSION16)
            return swax_error(SWAX_E_INPUT, "%s: token shard version %d with magic %d (expected %d)", path, version, magic,
                              SWAX_SHARD_VERSION16);
        s->width = 2;
    } else if (magic == SWAX_SHARD_MAGIC32) {
        if (version != SWAX_SHARD_VERSION32)
            return swax_error(SWAX_E_INPUT, "%s: token shard version %d with magic %d (expected %d)", path, version, magic,
                              SWAX_SHARD_VERSION32);
        s->width = 4;
    } else {
        return swax_error(SWAX_E_INPUT, "%s: not a token shard (magic %d, expected %d or %d)", path, magic, SWAX_SHARD_MAGIC16,
                          SWAX_SHARD_MAGIC32);
    }
    if (count < 0) return swax_error(SWAX_E_INPUT, "%s: token shard has a negative token count (%d)", path, count);
    size_t have = size - SWAX_SHARD_HEADER_BYTES, need = (size_t)count * (size_t)s->width;
    if (have != need)
        return swax_error(SWAX_E_INPUT, "%s: token shard header says %d tokens (%zu bytes) but the file has %zu bytes of tokens (%s)", path,
                          count, need, have, have < need ? "truncated" : "trailing bytes");
    s->n_tokens = (size_t)count;
    s->tokens = h + SWAX_SHARD_HEADER_BYTES;
    return 0;
}

int swax_shard_open(const char *path, SwaxShard *s) {
    memset(s, 0, sizeof *s);
    int rc = shard_open(path, s);
    if (rc) swax_shard_close(s);
    return rc;
}

uint32_t swax_shard_token(const SwaxShard *s, size_t i) {
    if (s->width == 2) {
        uint16_t v;
        memcpy(&v, s->tokens + 2 * i, 2);
        return v;
    }
    uint32_t v;
    memcpy(&v, s->tokens + 4 * i, 4);
    return v;
}

void swax_shard_read(const SwaxShard *s, size_t start, size_t n, int32_t *out) {
    if (s->width == 2) {
        const uint16_t *t = (const uint16_t *)(const void *)s->tokens + start; /* 1024-byte header keeps it aligned */
        for (size_t i = 0; i < n; i++) out[i] = t[i];
    } else {
        const uint32_t *t = (const uint32_t *)(const void *)s->tokens + start;
        for (size_t i = 0; i < n; i++) out[i] = (int32_t)t[i];
    }
}

int swax_shard_check_vocab(const SwaxShard *s, int vocab) {
    uint32_t lim = vocab > 0 ? (uint32_t)vocab : 0;
    size_t n = s->n_tokens;
    if (s->width == 2) {
        const uint16_t *t = (const uint16_t *)(const void *)s->tokens;
        for (size_t i = 0; i < n; i++)
            if (t[i] >= lim)
                return swax_error(SWAX_E_INPUT, "%s: token %u at position %zu is outside the vocabulary (%d)", s->path, t[i], i, vocab);
    } else {
        const uint32_t *t = (const uint32_t *)(const void *)s->tokens;
        for (size_t i = 0; i < n; i++)
            if (t[i] >= lim)
                return swax_error(SWAX_E_INPUT, "%s: token %u at position %zu is outside the vocabulary (%d)", s->path, t[i], i, vocab);
    }
    return 0;
}

void swax_shard_close(SwaxShard *s) {
    if (!s) return;
    if (s->map) munmap(s->map, s->map_len);
    memset(s, 0, sizeof *s);
}

static void put_i32(uint8_t *p, int32_t v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(u >> (8 * i));
}

int swax_shard_write(const char *path, const uint32_t *tokens, size_t n, int vocab_size) {
    if (n > (size_t)INT32_MAX)
        return swax_error(SWAX_E_USAGE, "%s: %zu tokens is more than a shard holds (%d)", path, n, INT32_MAX);
    if (n && !tokens) return swax_error(SWAX_E_USAGE, "%s: no tokens", path);
    int wide = vocab_size > 65536;
    for (size_t i = 0; i < n; i++) {
        if (vocab_size > 0 && tokens[i] >= (uint32_t)vocab_size)
            return swax_error(SWAX_E_USAGE, "%s: token %u at position %zu is outside the vocabulary (%d)", path, tokens[i], i,
                              vocab_size);
        if (tokens[i] > 65535) wide = 1;
    }
    uint8_t hdr[SWAX_SHARD_HEADER_BYTES] = {0};
    put_i32(hdr, wide ? SWAX_SHARD_MAGIC32 : SWAX_SHARD_MAGIC16);
    put_i32(hdr + 4, wide ? SWAX_SHARD_VERSION32 : SWAX_SHARD_VERSION16);
    put_i32(hdr + 8, (int32_t)n);
    SwaxAtomicFile af;
    SWAX_TRY(swax_atomic_open(&af, path));
    int rc = swax_atomic_write(&af, hdr, sizeof hdr);
    if (!rc && wide) rc = swax_atomic_write(&af, tokens, n * 4);
    if (!rc && !wide) {
        uint16_t buf[4096];
        for (size_t i = 0; i < n && !rc;) {
            size_t m = n - i < 4096 ? n - i : 4096;
            for (size_t j = 0; j < m; j++) buf[j] = (uint16_t)tokens[i + j];
            rc = swax_atomic_write(&af, buf, m * 2);
            i += m;
        }
    }
    if (rc) {
        swax_atomic_abort(&af);
        return rc;
    }
    return swax_atomic_commit(&af);
}
