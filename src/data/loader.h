/* loader.h — training batches from llm.c token shards (docs/data.md).
 *
 * The shards matching a glob pattern, sorted by name (byte order), are one
 * stream of N tokens, read through mmap (io/shard.h). The stream is cyclic:
 * row r of the whole run starts at token (r * T) mod N and holds T + 1
 * consecutive tokens (wrapping from the last shard's end to the first
 * shard's start), so consecutive rows overlap by one token and every token is
 * a target exactly once per pass over the data. The state is one integer,
 * the position: the number of tokens the rows taken so far advanced by
 * (B * T per call), counted across passes; epoch = position / N.
 * Saving the position and seeking back to it gives the same rows, bit for bit. */
#ifndef SWAX_DATA_LOADER_H
#define SWAX_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>

typedef struct SwaxLoader SwaxLoader;

/* Opens every shard matching pattern (e.g. DIR/train_*.bin, sorted); checks
 * that every token is < vocab_size (skipped when vocab_size <= 0).
 * SWAX_E_INPUT: no shard matches (the message names the pattern), a bad
 * shard (the message names the file), no tokens at all. */
int swax_loader_open(const char *glob_pattern, int vocab_size, SwaxLoader **out);
/* Fills B rows of T+1 consecutive tokens (inputs = row[0..T), targets =
 * row[1..T]) from the current position, then advances it by B*T.
 * SWAX_E_USAGE for B or T < 1; SWAX_E_INPUT when the shards hold fewer than
 * B*(T+1) tokens. */
int swax_loader_next(SwaxLoader *l, int B, int T, int32_t *out /* B*(T+1) */);
uint64_t swax_loader_position(const SwaxLoader *l);
void swax_loader_seek(SwaxLoader *l, uint64_t pos);
uint64_t swax_loader_epoch(const SwaxLoader *l); /* position / total tokens */
size_t swax_loader_total_tokens(const SwaxLoader *l);
int swax_loader_num_shards(const SwaxLoader *l);
const char *swax_loader_shard_path(const SwaxLoader *l, int i);
/* Tokens [start, start + n) of the cyclic stream (start taken mod total). */
void swax_loader_read(const SwaxLoader *l, uint64_t start, size_t n, int32_t *out);
void swax_loader_close(SwaxLoader *l);

#endif
