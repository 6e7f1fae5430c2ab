/* tokenizer.h — byte-level BPE in the tiktoken format (SPEC §6).
 *
 * A tokenizer is three things that travel together:
 *   - a rank file: one `base64(token_bytes) rank` per line (tiktoken's
 *     .tiktoken format); a token's rank is its id and its merge priority;
 *   - a pre-tokenisation pattern, by name: "r50k" (GPT-2; also p50k and
 *     p50k_edit), "cl100k" or "o200k" — a PCRE2 regex that cuts text into
 *     pieces that BPE never merges across;
 *   - special tokens (`<|endoftext|>` ...) with their ids.
 * On disk the last two live in a small JSON beside the ranks (tokenizer.json):
 *   {"pattern": "r50k", "ranks": "tokenizer.tiktoken",
 *    "specials": {"<|endoftext|>": 50256}}
 * ("ranks" is relative to the JSON's folder.) See docs/tokenizer.md.
 *
 * Encoding is tiktoken's: cut the text with the pattern; a piece that is a
 * token is that token; otherwise start from single bytes and repeatedly merge
 * the adjacent pair whose concatenation has the lowest rank (leftmost on a
 * tie) until no adjacent concatenation is a token. Any byte string encodes
 * (invalid UTF-8 included) and decode(encode(x)) == x.
 *
 * A loaded tokenizer is read-only: encode/decode may run on many threads. */
#ifndef SWAX_TOKENIZER_H
#define SWAX_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct SwaxTokenizer SwaxTokenizer;

typedef struct {
    const char *text; /* e.g. "<|endoftext|>" (NUL-terminated) */
    int32_t id;
} SwaxSpecialToken;

/* ---- pattern names ------------------------------------------------------ */

/* Canonical pattern names: "r50k", "cl100k", "o200k". Also accepted: the
 * encoding names "gpt2", "r50k_base", "p50k", "p50k_base", "p50k_edit",
 * "cl100k_base", "o200k_base". Returns the canonical name, NULL if unknown. */
const char *swax_pattern_canonical(const char *name);
/* The regex (PCRE2 syntax, compiled with UTF + UCP) of a pattern name, or NULL. */
const char *swax_pattern_regex(const char *name);

/* ---- loading ------------------------------------------------------------ */

/* From a rank file, a pattern name and special tokens (copied). Errors name
 * the file and line: bad base64, bad or duplicate rank, duplicate token,
 * a special id that collides with a rank, a missing single byte. */
int swax_tokenizer_load(const char *ranks_path, const char *pattern,
                        const SwaxSpecialToken *specials, int n_specials, SwaxTokenizer **out);
/* Same, from rank-file text in memory (`origin` names it in errors). */
int swax_tokenizer_load_mem(const char *data, size_t len, const char *origin, const char *pattern,
                            const SwaxSpecialToken *specials, int n_specials, SwaxTokenizer **out);
/* From tokenizer.json (a path to the JSON, or to a folder holding one). */
int swax_tokenizer_load_json(const char *path, SwaxTokenizer **out);
/* A named encoding of tiktoken/gpt-tokenizer ("gpt2" = "r50k_base",
 * "p50k_base", "p50k_edit", "cl100k_base", "o200k_base") from its rank file:
 * the pattern and the special-token ids are built in. */
int swax_tokenizer_load_builtin(const char *encoding, const char *ranks_path, SwaxTokenizer **out);
/* Built-in encoding table: pattern name and specials of an encoding name,
 * the rank file's base name ("r50k_base" for "gpt2"). Returns 0, or
 * SWAX_E_USAGE for an unknown name. Any out pointer may be NULL. */
int swax_builtin_encoding(const char *encoding, const char **pattern, const char **rank_base,
                          const SwaxSpecialToken **specials, int *n_specials);
const char *const *swax_builtin_encoding_names(void); /* NULL-terminated */

/* The in-memory constructor every loader and the trainer share: token i's
 * bytes are tokens + offsets[i], lengths[i], with id ids[i]. */
int swax_tokenizer_from_tokens(const uint8_t *tokens, const size_t *offsets, const uint32_t *lengths,
                               const int32_t *ids, size_t n, const char *pattern,
                               const SwaxSpecialToken *specials, int n_specials,
                               const char *origin, SwaxTokenizer **out);

/* Writes DIR/tokenizer.tiktoken and DIR/tokenizer.json (atomically). */
int swax_tokenizer_save(const SwaxTokenizer *t, const char *dir);

void swax_tokenizer_free(SwaxTokenizer *t);

/* ---- queries ------------------------------------------------------------ */

int swax_tokenizer_vocab_size(const SwaxTokenizer *t); /* largest id + 1 */
int swax_tokenizer_n_ranks(const SwaxTokenizer *t);    /* ordinary (BPE) tokens */
const char *swax_tokenizer_pattern(const SwaxTokenizer *t); /* canonical name */
int swax_tokenizer_n_specials(const SwaxTokenizer *t);
const SwaxSpecialToken *swax_tokenizer_special(const SwaxTokenizer *t, int i);
/* Id of a special token by text, or -1. */
int32_t swax_tokenizer_special_id(const SwaxTokenizer *t, const char *text);
/* Id of "<|endoftext|>", or -1. */
int32_t swax_tokenizer_eot(const SwaxTokenizer *t);
/* Id of an ordinary token by its bytes, or -1. */
int32_t swax_tokenizer_rank(const SwaxTokenizer *t, const void *bytes, size_t len);

/* ---- encode / decode ---------------------------------------------------- */

/* A growable id buffer; encode appends to it. Zero-initialise before use. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} SwaxTokenBuf;
void swax_token_buf_free(SwaxTokenBuf *b);

/* Appends the ids of text[0..len) to out. With allow_special, occurrences
 * of the special tokens' texts become their ids; without, they are ordinary
 * text (tiktoken's encode_ordinary). */
int swax_tokenizer_encode(const SwaxTokenizer *t, const char *text, size_t len, int allow_special,
                          SwaxTokenBuf *out);
/* Streaming encode: text fed in pieces of any sizes (cut anywhere: inside a
 * word, a run of spaces, a UTF-8 character, a special token's text) gives
 * exactly the ids of swax_tokenizer_encode on the whole text. Each feed
 * appends the ids that no later text can change; the rest (the pre-token
 * piece reaching the end, a possible special token, a cut character) waits,
 * so memory is the longest pending piece, not the text. finish() encodes
 * what is left; the encoder can then take a new text. */
typedef struct SwaxEncoder SwaxEncoder;
int swax_encoder_create(const SwaxTokenizer *t, int allow_special, SwaxEncoder **out);
int swax_encoder_feed(SwaxEncoder *e, const char *text, size_t len, SwaxTokenBuf *out);
int swax_encoder_finish(SwaxEncoder *e, SwaxTokenBuf *out);
void swax_encoder_free(SwaxEncoder *e);

/* The bytes of one id (a pointer into the tokenizer; not NUL-terminated).
 * Error for an id outside the vocabulary or on a hole in it. */
int swax_tokenizer_token_bytes(const SwaxTokenizer *t, int32_t id, const char **bytes, size_t *len);
/* Concatenated bytes of ids, NUL-terminated for convenience (the text may
 * hold NULs: use *len). Caller frees *text. */
int swax_tokenizer_decode(const SwaxTokenizer *t, const int32_t *ids, size_t n, char **text,
                          size_t *len);

/* ---- pre-tokenisation (shared with the trainer) ------------------------- */

/* Calls fn for every piece of text[0..len) under a pattern, in order; the
 * pieces tile the text exactly (bytes the pattern cannot match, such as
 * invalid UTF-8, come as pieces of their own). A non-zero return from fn
 * stops and is returned. */
typedef struct SwaxPretok SwaxPretok;
int swax_pretok_create(const char *pattern, SwaxPretok **out);
void swax_pretok_free(SwaxPretok *p);
typedef int (*SwaxPieceFn)(void *ctx, const char *piece, size_t len);
int swax_pretok_split(const SwaxPretok *p, const char *text, size_t len, SwaxPieceFn fn, void *ctx);

/* The hash the rank table uses (shared with the trainer's tables). */
uint64_t swax_hash_bytes(const void *p, size_t n);

/* ---- training (bpe_train.c) -------------------------------------------- */

/* Counts pre-token pieces of a corpus, then learns merges. Usage:
 *   swax_bpe_counter_create("r50k", &c);
 *   swax_bpe_counter_add_path(c, "corpus/", NULL);   // files, folders (recursive)
 *   swax_bpe_train(c, 4096, 1, &tok);                 // 256 bytes, merges, <|endoftext|>
 *   swax_tokenizer_save(tok, "out/");
 * Ties between pairs of equal count go to the lexicographically smaller
 * concatenated bytes (then the shorter left part): training is deterministic. */
typedef struct SwaxBpeCounter SwaxBpeCounter;
int swax_bpe_counter_create(const char *pattern, SwaxBpeCounter **out);
void swax_bpe_counter_free(SwaxBpeCounter *c);
int swax_bpe_counter_add(SwaxBpeCounter *c, const char *text, size_t len);
/* A file, or a folder walked recursively in sorted order (hidden entries and
 * files that look binary — a NUL in the first 8 KiB — are skipped). If ext is
 * non-NULL (e.g. ".py,.txt"), only files ending in one of them are read. */
int swax_bpe_counter_add_path(SwaxBpeCounter *c, const char *path, const char *ext);
/* Totals so far: bytes read, files read, pieces, distinct pieces. */
void swax_bpe_counter_stats(const SwaxBpeCounter *c, uint64_t *bytes, uint64_t *files,
                            uint64_t *pieces, uint64_t *distinct);
/* vocab_size counts the 256 byte tokens and the final <|endoftext|>
 * (so >= 257). verbose: progress on stderr. */
int swax_bpe_train(SwaxBpeCounter *c, int vocab_size, int verbose, SwaxTokenizer **out);

#endif
