/* build.h — text corpora into llm.c token shards (docs/data.md).
 *
 * A corpus is a list of sources; each source is a file or a folder (walked
 * recursively in sorted byte order; hidden entries skipped). A folder
 * contributes its .txt .py .go .c .h .md and .jsonl files; a file named on
 * its own is read whatever its extension. Files that look binary (a NUL in
 * the first 8 KiB) and empty documents are skipped and counted.
 *
 * One document per file; a .jsonl file holds one document per line, each
 * line a JSON object with a string "text" (blank lines are skipped; any
 * other line is an error naming FILE:LINE). Documents are encoded without
 * special tokens (a literal "<|endoftext|>" in a file is ordinary text) and
 * each is PRECEDED by the end-of-text id (llm.c's convention).
 *
 * Split: each source's documents are shuffled (seeded) and the first ones go
 * to validation until they hold val_fraction of the source's tokens (at
 * least one document when the fraction is > 0, never the source's last one).
 *
 * Mixing: an input source (weight 0) contributes its training documents
 * once. A mix source with weight W in (0, 1) makes up the fraction W of the
 * TRAINING tokens: with B the training tokens of all input sources and S the
 * sum of all mix weights (< 1), its target is W / (1 - S) * B tokens. Its
 * training documents are taken in passes, each pass a fresh seeded shuffle,
 * repeating them (target above their size) or stopping part-way (below); a
 * document is taken while that brings the total closer to the target, so the
 * error is at most half a document. Validation is never reweighted.
 *
 * The training documents of every source are then shuffled together (seeded)
 * and concatenated into OUT/train_000000.bin, ... of shard_tokens tokens each
 * (the last may be shorter; documents run across shard boundaries); the
 * validation documents likewise into OUT/val_000000.bin, ... Shards of an
 * older build beyond the new count are removed.
 *
 * Alignment (align = T > 0): the loader cuts the training stream into rows
 * of T + 1 tokens starting at multiples of T. A mix-source document (the
 * synthetic retrieval documents) split across two rows loses its needle from
 * the row that holds its question. With align, each mix document of at most
 * T + 1 tokens that would cross a row boundary is moved to the next row
 * start: the gap before it is filled with the beginning of the next input
 * document, whose rest follows as a document of its own (an end-of-text id
 * added before it), or with end-of-text ids once no input document is left.
 * Input and mix documents keep their shuffled order within each kind and are
 * merged in proportion (a mix document next while mix tokens are behind
 * their share), so both run out together and padding stays rare.
 * OUT/tokenizer.json and
 * OUT/tokenizer.tiktoken are a copy of the tokenizer; OUT/data.json (written
 * last) describes everything. Same inputs and options: same bytes. */
#ifndef SWAX_DATA_BUILD_H
#define SWAX_DATA_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "io/tokenizer.h"

typedef struct {
    const char *path; /* file or folder */
    double weight;    /* 0: an input source; (0, 1): a mix source's share of training tokens */
} SwaxDataSource;

typedef struct {
    const SwaxTokenizer *tokenizer; /* must have <|endoftext|> */
    const char *tokenizer_name;     /* recorded in data.json (e.g. the --tokenizer argument); may be NULL */
    const SwaxDataSource *sources;
    int n_sources;                  /* at least one input source (weight 0) */
    const char *out_dir;
    double val_fraction;            /* [0, 1); default 0.05 */
    uint64_t shard_tokens;          /* [1, INT32_MAX]; default 100,000,000 */
    uint64_t seed;                  /* default 1 */
    uint64_t align;                 /* 0 (default): off; T: mix-source documents of at most T + 1 tokens
                                     * lie inside one T-token training row (see swax_data_build) */
    int verbose;                    /* progress on stderr */
} SwaxDataBuildOptions;

typedef struct {
    uint64_t bytes;                 /* text bytes of every document read */
    uint64_t documents;             /* documents found (before split and mixing) */
    uint64_t train_tokens, val_tokens;
    uint64_t train_docs, val_docs;  /* train_docs counts repeats */
    int train_shards, val_shards;
    double seconds, read_seconds;   /* whole build; reading + tokenising */
} SwaxDataBuildResult;

/* The file extensions a folder contributes (".txt,.py,...") */
extern const char *const swax_data_extensions;

void swax_data_build_defaults(SwaxDataBuildOptions *o);
/* Errors: SWAX_E_USAGE bad options; SWAX_E_INPUT a missing or unreadable
 * source, a bad JSONL line, a source without documents; SWAX_E_IO an output
 * folder that cannot be created or written. `res` may be NULL. */
int swax_data_build(const SwaxDataBuildOptions *o, SwaxDataBuildResult *res);

/* "PATH:WEIGHT" (split at the last ':') into a path (malloc'd) and a weight
 * in (0, 1). SWAX_E_USAGE otherwise. */
int swax_data_parse_mix(const char *arg, char **path, double *weight);

#endif
