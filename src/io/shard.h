/* shard.h — llm.c token shards (docs/formats.md).
 *
 * A 256 x int32 little-endian header, then the tokens:
 *   uint16 tokens: header[0] = 20240520 (magic), header[1] = 1 (version)
 *   uint32 tokens: header[0] = 20240801 (magic), header[1] = 7 (version),
 *                  for vocabularies over 65,536
 *   header[2] = token count; the rest of the header is zero.
 * The file is exactly 1024 + count * width bytes. */
#ifndef SWAX_IO_SHARD_H
#define SWAX_IO_SHARD_H

#include <stddef.h>
#include <stdint.h>

#define SWAX_SHARD_MAGIC16 20240520
#define SWAX_SHARD_VERSION16 1
#define SWAX_SHARD_MAGIC32 20240801
#define SWAX_SHARD_VERSION32 7
#define SWAX_SHARD_HEADER_BYTES 1024

typedef struct {
    char path[1024];
    void *map;
    size_t map_len;
    int width;          /* 2 or 4 bytes */
    size_t n_tokens;
    const uint8_t *tokens;
} SwaxShard;

/* mmap; validates magic, version, count vs file size (exact). On failure *s is
 * zeroed (closing it is a no-op). */
int swax_shard_open(const char *path, SwaxShard *s);
uint32_t swax_shard_token(const SwaxShard *s, size_t i);
/* Tokens [start, start + n) into out; the caller guarantees the range. */
void swax_shard_read(const SwaxShard *s, size_t start, size_t n, int32_t *out);
/* Scans once: SWAX_E_INPUT naming the file and the first offending position if any token >= vocab. */
int swax_shard_check_vocab(const SwaxShard *s, int vocab);
void swax_shard_close(SwaxShard *s);
/* Picks uint16 when every token < 65536 and vocab_size <= 65536, else the
 * uint32 variant. Atomic. At most INT32_MAX tokens (the header's count is an
 * int32); when vocab_size > 0 every token must be < vocab_size (SWAX_E_USAGE). */
int swax_shard_write(const char *path, const uint32_t *tokens, size_t n, int vocab_size);

#endif
