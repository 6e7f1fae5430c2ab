/* tokenizer.c — tiktoken-format byte-level BPE: rank files, patterns,
 * encode and decode (see tokenizer.h). Training lives in bpe_train.c.
 *
 * Sections: patterns and built-in encodings · hashing and the rank table ·
 * base64 · construction and loading · pre-tokenisation · BPE merging ·
 * encode / decode · saving. */
#include "io/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"

/* Ids at or above this are refused: a corrupt rank file must not make us
 * allocate gigabytes for the id tables. */
#define MAX_TOKEN_ID (1 << 26)
#define NO_RANK INT32_MAX

/* ======================================================================
 * Patterns and built-in encodings
 * ====================================================================== */

/* tiktoken's patterns, with `\s` spelled \p{White_Space} (and `\S` as its
 * complement): PCRE2's \s under UCP also matches U+180E, which is not
 * White_Space in Unicode >= 6.3 nor in tiktoken's (Rust) regex. `$` is
 * compiled with PCRE2_DOLLAR_ENDONLY: end of the text, as in tiktoken. */
#define WS "\\p{White_Space}"
#define NWS "\\P{White_Space}"

static const char R50K_RE[] =
    "'(?:[sdmt]|ll|ve|re)| ?\\p{L}++| ?\\p{N}++| ?[^" WS "\\p{L}\\p{N}]++|" WS "+(?!" NWS ")|" WS "+";

static const char CL100K_RE[] =
    "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^" WS
    "\\p{L}\\p{N}]++[\\r\\n]*+|" WS "++$|" WS "*[\\r\\n]|" WS "+(?!" NWS ")|" WS;

static const char O200K_RE[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|" WS "*[\\r\\n]+|" WS "+(?!" NWS ")|" WS "+";

static const struct {
    const char *name, *canonical;
} pattern_aliases[] = {
    {"r50k", "r50k"},         {"r50k_base", "r50k"}, {"gpt2", "r50k"},
    {"p50k", "r50k"},         {"p50k_base", "r50k"}, {"p50k_edit", "r50k"},
    {"cl100k", "cl100k"},     {"cl100k_base", "cl100k"},
    {"o200k", "o200k"},       {"o200k_base", "o200k"},
};

const char *swax_pattern_canonical(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof pattern_aliases / sizeof pattern_aliases[0]; i++)
        if (!strcmp(name, pattern_aliases[i].name)) return pattern_aliases[i].canonical;
    return NULL;
}

const char *swax_pattern_regex(const char *name) {
    const char *c = swax_pattern_canonical(name);
    if (!c) return NULL;
    if (!strcmp(c, "r50k")) return R50K_RE;
    if (!strcmp(c, "cl100k")) return CL100K_RE;
    return O200K_RE;
}

/* Special-token ids as tiktoken defines them (openai_public.py).
 * gpt-tokenizer adds <|im_start|> etc. to cl100k/o200k and gives o200k's
 * <|endofprompt|> another id; we follow tiktoken. */
static const SwaxSpecialToken SP_R50K[] = {{"<|endoftext|>", 50256}};
static const SwaxSpecialToken SP_P50K_EDIT[] = {{"<|endoftext|>", 50256},
                                                {"<|fim_prefix|>", 50281},
                                                {"<|fim_middle|>", 50282},
                                                {"<|fim_suffix|>", 50283}};
static const SwaxSpecialToken SP_CL100K[] = {{"<|endoftext|>", 100257},
                                             {"<|fim_prefix|>", 100258},
                                             {"<|fim_middle|>", 100259},
                                             {"<|fim_suffix|>", 100260},
                                             {"<|endofprompt|>", 100276}};
static const SwaxSpecialToken SP_O200K[] = {{"<|endoftext|>", 199999},
                                            {"<|endofprompt|>", 200018}};

#define NSP(a) ((int)(sizeof a / sizeof a[0]))
static const struct {
    const char *name, *pattern, *rank_base;
    const SwaxSpecialToken *specials;
    int n_specials;
} builtins[] = {
    {"r50k_base", "r50k", "r50k_base", SP_R50K, NSP(SP_R50K)},
    {"gpt2", "r50k", "r50k_base", SP_R50K, NSP(SP_R50K)},
    {"p50k_base", "r50k", "p50k_base", SP_R50K, NSP(SP_R50K)},
    {"p50k_edit", "r50k", "p50k_base", SP_P50K_EDIT, NSP(SP_P50K_EDIT)},
    {"cl100k_base", "cl100k", "cl100k_base", SP_CL100K, NSP(SP_CL100K)},
    {"o200k_base", "o200k", "o200k_base", SP_O200K, NSP(SP_O200K)},
};
static const char *const builtin_names[] = {"r50k_base", "gpt2",        "p50k_base", "p50k_edit",
                                            "cl100k_base", "o200k_base", NULL};

const char *const *swax_builtin_encoding_names(void) { return builtin_names; }

int swax_builtin_encoding(const char *encoding, const char **pattern, const char **rank_base,
                          const SwaxSpecialToken **specials, int *n_specials) {
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        if (!encoding || strcmp(encoding, builtins[i].name)) continue;
        if (pattern) *pattern = builtins[i].pattern;
        if (rank_base) *rank_base = builtins[i].rank_base;
        if (specials) *specials = builtins[i].specials;
        if (n_specials) *n_specials = builtins[i].n_specials;
        return 0;
    }
    return swax_error(SWAX_E_USAGE,
                      "unknown encoding '%s' (known: r50k_base, gpt2, p50k_base, p50k_edit, "
                      "cl100k_base, o200k_base)",
                      encoding ? encoding : "(null)");
}

/* ======================================================================
 * Hashing and the rank table
 * ====================================================================== */

/* A multiply-xorshift hash over 8-byte words; tokens are short (a few bytes
 * on average), so this is the hot spot of every lookup. */
static inline uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
        h = (h ^ v) * 0x94d049bb133111ebull;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

uint64_t swax_hash_bytes(const void *p, size_t n) { return hash_bytes(p, n); }

typedef struct {
    uint32_t tag; /* high bits of the hash: most misses skip the memcmp */
    int32_t id;   /* -1 = empty */
} Slot;

struct SwaxPretok {
    pcre2_code *re;
    pcre2_match_context *mctx; /* only read while matching: shared by threads */
    int jit;
    char name[16];
};

struct SwaxTokenizer {
    char pattern[16];
    SwaxPretok pretok;
    int32_t vocab;     /* largest id + 1 */
    int32_t n_ranks;   /* ordinary tokens */
    uint8_t *bytes;    /* every token's bytes, ordinary then special */
    uint32_t *off;     /* (vocab) offset into bytes */
    int32_t *len;      /* (vocab) byte length, -1 for an id that is no token */
    uint8_t *special;  /* (vocab) 1 for a special token */
    Slot *slots;       /* ordinary tokens by bytes (open addressing) */
    uint64_t mask;
    int n_specials;
    SwaxSpecialToken *specials; /* texts point into `bytes` + NUL copies below */
    char *special_text;         /* NUL-terminated copies of the special texts */
};

static inline int32_t rank_lookup(const SwaxTokenizer *t, const uint8_t *p, size_t n) {
    uint64_t h = hash_bytes(p, n);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const Slot *s = &t->slots[i];
        if (s->id < 0) return -1;
        if (s->tag == tag && (size_t)t->len[s->id] == n && !memcmp(t->bytes + t->off[s->id], p, n))
            return s->id;
    }
}

int32_t swax_tokenizer_rank(const SwaxTokenizer *t, const void *bytes, size_t len) {
    if (!len) return -1;
    return rank_lookup(t, bytes, len);
}

/* ======================================================================
 * base64 (RFC 4648, standard alphabet, padded)
 * ====================================================================== */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes s[0..n) into out (room for 3*n/4 bytes). Returns the byte count,
 * or -1 if the text is not canonical padded base64. */
static long b64_decode(const char *s, size_t n, uint8_t *out) {
    if (n == 0 || n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_value(c)) < 0) {
                return -1; /* a bad character, or data after '=' */
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2) out[o++] = (uint8_t)(w >> 8);
        if (pad < 1) out[o++] = (uint8_t)w;
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff))) return -1; /* non-zero tail bits */
    }
    return (long)o;
}

static size_t b64_encode(const uint8_t *p, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16;
        if (i + 1 < n) w |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) w |= p[i + 2];
        out[o++] = B64[w >> 18 & 63];
        out[o++] = B64[w >> 12 & 63];
        out[o++] = i + 1 < n ? B64[w >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? B64[w & 63] : '=';
    }
    return o;
}

/* ======================================================================
 * Construction and loading
 * ====================================================================== */

static int pretok_init(SwaxPretok *p, const char *pattern);

static void pretok_release(SwaxPretok *p) {
    if (p->re) pcre2_code_free(p->re);
    if (p->mctx) pcre2_match_context_free(p->mctx);
    p->re = NULL;
    p->mctx = NULL;
}

void swax_tokenizer_free(SwaxTokenizer *t) {
    if (!t) return;
    pretok_release(&t->pretok);
    free(t->bytes);
    free(t->off);
    free(t->len);
    free(t->special);
    free(t->slots);
    free(t->specials);
    free(t->special_text);
    free(t);
}

/* Where token i comes from, for error messages: a line of a rank file when
 * lines are known, else its index. */
static const char *where(char *buf, size_t cap, const uint32_t *lines, size_t i) {
    if (lines) snprintf(buf, cap, "line %u", lines[i]);
    else snprintf(buf, cap, "token #%zu", i);
    return buf;
}

static int build(const uint8_t *tokens, const size_t *offsets, const uint32_t *lengths,
                 const int32_t *ids, size_t n, const uint32_t *lines, const char *pattern,
                 const SwaxSpecialToken *specials, int n_specials, const char *origin,
                 SwaxTokenizer **out) {
    char w1[48], w2[48];
    *out = NULL;
    const char *canon = swax_pattern_canonical(pattern);
    if (!canon)
        return swax_error(SWAX_E_INPUT, "%s: unknown pattern '%s' (known: r50k, cl100k, o200k)", origin,
                          pattern ? pattern : "(null)");
    if (n_specials < 0) return swax_error(SWAX_E_USAGE, "%s: negative special-token count", origin);
    if (n == 0) return swax_error(SWAX_E_INPUT, "%s: no tokens", origin);

    /* Sizes: the vocabulary spans the largest id; bytes of all tokens. */
    int64_t max_id = -1;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= MAX_TOKEN_ID)
            return swax_error(SWAX_E_INPUT, "%s: %s: rank %d out of range [0, %d)", origin,
                              where(w1, sizeof w1, lines, i), (int)ids[i], MAX_TOKEN_ID);
        if (lengths[i] == 0)
            return swax_error(SWAX_E_INPUT, "%s: %s: empty token", origin, where(w1, sizeof w1, lines, i));
        if (ids[i] > max_id) max_id = ids[i];
        total += lengths[i];
    }
    for (int k = 0; k < n_specials; k++) {
        if (!specials[k].text || !specials[k].text[0])
            return swax_error(SWAX_E_INPUT, "%s: special token %d has no text", origin, k);
        if (specials[k].id < 0 || specials[k].id >= MAX_TOKEN_ID)
            return swax_error(SWAX_E_INPUT, "%s: special token '%s': id %d out of range [0, %d)", origin,
                              specials[k].text, (int)specials[k].id, MAX_TOKEN_ID);
        if (specials[k].id > max_id) max_id = specials[k].id;
        total += strlen(specials[k].text) + 1;
    }

    SwaxTokenizer *t = swax_calloc(1, sizeof *t, "tokenizer");
    if (!t) return SWAX_E_NOMEM;
    snprintf(t->pattern, sizeof t->pattern, "%s", canon);
    t->vocab = (int32_t)(max_id + 1);
    t->n_ranks = (int32_t)n;
    size_t cap = 1024;
    while (cap < 2 * n) cap *= 2;
    t->mask = cap - 1;
    t->bytes = swax_calloc(total + 1, 1, "token bytes");
    t->off = swax_calloc((size_t)t->vocab, sizeof *t->off, "token offsets");
    t->len = swax_calloc((size_t)t->vocab, sizeof *t->len, "token lengths");
    t->special = swax_calloc((size_t)t->vocab, 1, "token flags");
    t->slots = swax_calloc(cap, sizeof *t->slots, "rank table");
    t->specials = swax_calloc((size_t)n_specials + 1, sizeof *t->specials, "special tokens");
    t->special_text = swax_calloc(total + 1, 1, "special texts");
    if (!t->bytes || !t->off || !t->len || !t->special || !t->slots || !t->specials || !t->special_text) {
        swax_tokenizer_free(t);
        return SWAX_E_NOMEM;
    }
    for (int32_t i = 0; i < t->vocab; i++) t->len[i] = -1;
    for (size_t i = 0; i < cap; i++) t->slots[i].id = -1;

    /* Ordinary tokens: unique ids, unique bytes. */
    int rc = 0;
    size_t pos = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        int32_t id = ids[i];
        if (t->len[id] >= 0) {
            size_t first = 0;
            while (ids[first] != id) first++;
            rc = swax_error(SWAX_E_INPUT, "%s: %s: duplicate rank %d (also on %s)", origin,
                            where(w1, sizeof w1, lines, i), (int)id, where(w2, sizeof w2, lines, first));
            break;
        }
        const uint8_t *p = tokens + offsets[i];
        size_t len = lengths[i];
        memcpy(t->bytes + pos, p, len);
        t->off[id] = (uint32_t)pos;
        t->len[id] = (int32_t)len;
        uint64_t h = hash_bytes(p, len);
        uint64_t s = h & t->mask;
        for (; t->slots[s].id >= 0; s = (s + 1) & t->mask) {
            int32_t o = t->slots[s].id;
            if ((size_t)t->len[o] == len && !memcmp(t->bytes + t->off[o], p, len)) {
                rc = swax_error(SWAX_E_INPUT, "%s: %s: duplicate token (same bytes as rank %d)", origin,
                                where(w1, sizeof w1, lines, i), (int)o);
                break;
            }
        }
        if (rc) break;
        t->slots[s].id = id;
        t->slots[s].tag = (uint32_t)(h >> 32);
        pos += len;
    }
    if (rc) {
        swax_tokenizer_free(t);
        return rc;
    }
    if (pos > UINT32_MAX) {
        swax_tokenizer_free(t);
        return swax_error(SWAX_E_INPUT, "%s: token bytes exceed 4 GiB", origin);
    }
    /* Byte-level BPE starts from single bytes: every byte must be a token. */
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        if (rank_lookup(t, &c, 1) < 0) {
            swax_tokenizer_free(t);
            return swax_error(SWAX_E_INPUT,
                              "%s: no token for the single byte 0x%02x (a byte-level BPE rank file "
                              "needs all 256 bytes)",
                              origin, b);
        }
    }

    /* Special tokens: bytes after the ordinary ones; ids must be free. */
    size_t tpos = 0;
    for (int k = 0; k < n_specials; k++) {
        const char *s = specials[k].text;
        int32_t id = specials[k].id;
        size_t len = strlen(s);
        if (t->len[id] >= 0) {
            rc = swax_error(SWAX_E_INPUT, "%s: special token '%s' has id %d, already %s", origin, s,
                            (int)id, t->special[id] ? "another special token's" : "an ordinary token's (rank)");
            break;
        }
        memcpy(t->bytes + pos, s, len);
        t->off[id] = (uint32_t)pos;
        t->len[id] = (int32_t)len;
        t->special[id] = 1;
        pos += len;
        memcpy(t->special_text + tpos, s, len + 1);
        for (int j = 0; j < k; j++)
            if (!strcmp(t->specials[j].text, s))
                rc = swax_error(SWAX_E_INPUT, "%s: special token '%s' is listed twice", origin, s);
        t->specials[k].text = t->special_text + tpos;
        t->specials[k].id = id;
        tpos += len + 1;
        if (rc) break;
    }
    t->n_specials = n_specials;
    if (!rc) rc = pretok_init(&t->pretok, canon);
    if (rc) {
        swax_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int swax_tokenizer_from_tokens(const uint8_t *tokens, const size_t *offsets, const uint32_t *lengths,
                               const int32_t *ids, size_t n, const char *pattern,
                               const SwaxSpecialToken *specials, int n_specials,
                               const char *origin, SwaxTokenizer **out) {
    return build(tokens, offsets, lengths, ids, n, NULL, pattern, specials, n_specials,
                 origin ? origin : "tokenizer", out);
}

/* Parses rank-file text: `base64 rank` per line, blank lines skipped,
 * trailing spaces and CR tolerated (tiktoken splits on whitespace). */
int swax_tokenizer_load_mem(const char *data, size_t len, const char *origin, const char *pattern,
                            const SwaxSpecialToken *specials, int n_specials, SwaxTokenizer **out) {
    *out = NULL;
    if (!origin) origin = "(memory)";
    if (!swax_pattern_canonical(pattern))
        return swax_error(SWAX_E_INPUT, "%s: unknown pattern '%s' (known: r50k, cl100k, o200k)", origin,
                          pattern ? pattern : "(null)");
    size_t n_lines = 1;
    for (size_t i = 0; i < len; i++) n_lines += data[i] == '\n';
    uint8_t *tok = swax_calloc(len / 4 * 3 + 4, 1, "rank file tokens");
    size_t *offs = swax_calloc(n_lines, sizeof *offs, "rank file offsets");
    uint32_t *lens = swax_calloc(n_lines, sizeof *lens, "rank file lengths");
    int32_t *ids = swax_calloc(n_lines, sizeof *ids, "rank file ranks");
    uint32_t *lines = swax_calloc(n_lines, sizeof *lines, "rank file lines");
    int rc = 0;
    if (!tok || !offs || !lens || !ids || !lines) rc = SWAX_E_NOMEM;
    size_t n = 0, tpos = 0, p = 0;
    uint32_t line = 0;
    while (!rc && p < len) {
        size_t e = p;
        while (e < len && data[e] != '\n') e++;
        line++;
        size_t a = p, b = e;
        p = e + 1;
        while (b > a && (data[b - 1] == '\r' || data[b - 1] == ' ' || data[b - 1] == '\t')) b--;
        while (a < b && (data[a] == ' ' || data[a] == '\t')) a++;
        if (a == b) continue; /* blank line */
        size_t sp = a;
        while (sp < b && data[sp] != ' ' && data[sp] != '\t') sp++;
        size_t r = sp;
        while (r < b && (data[r] == ' ' || data[r] == '\t')) r++;
        if (sp == b || r == b) {
            rc = swax_error(SWAX_E_INPUT, "%s: line %u: expected 'base64 rank', got '%.*s'", origin, line,
                            (int)(b - a > 60 ? 60 : b - a), data + a);
            break;
        }
        long v = 0;
        for (size_t q = r; q < b; q++) {
            if (data[q] < '0' || data[q] > '9' || v > MAX_TOKEN_ID) {
                rc = swax_error(SWAX_E_INPUT, "%s: line %u: rank '%.*s' is not an integer in [0, %d)",
                                origin, line, (int)(b - r > 30 ? 30 : b - r), data + r, MAX_TOKEN_ID);
                break;
            }
            v = v * 10 + (data[q] - '0');
        }
        if (rc) break;
        long got = b64_decode(data + a, sp - a, tok + tpos);
        if (got <= 0) {
            rc = swax_error(SWAX_E_INPUT, "%s: line %u: bad base64 '%.*s'", origin, line,
                            (int)(sp - a > 60 ? 60 : sp - a), data + a);
            break;
        }
        offs[n] = tpos;
        lens[n] = (uint32_t)got;
        ids[n] = (int32_t)(v > MAX_TOKEN_ID ? MAX_TOKEN_ID : v);
        lines[n] = line;
        tpos += (size_t)got;
        n++;
    }
    if (!rc) rc = build(tok, offs, lens, ids, n, lines, pattern, specials, n_specials, origin, out);
    free(tok);
    free(offs);
    free(lens);
    free(ids);
    free(lines);
    return rc;
}

int swax_tokenizer_load(const char *ranks_path, const char *pattern,
                        const SwaxSpecialToken *specials, int n_specials, SwaxTokenizer **out) {
    char *data;
    size_t len;
    *out = NULL;
    SWAX_TRY(swax_read_file(ranks_path, &data, &len));
    int rc = swax_tokenizer_load_mem(data, len, ranks_path, pattern, specials, n_specials, out);
    free(data);
    return rc;
}

int swax_tokenizer_load_builtin(const char *encoding, const char *ranks_path, SwaxTokenizer **out) {
    const char *pattern = NULL;
    const SwaxSpecialToken *sp = NULL;
    int nsp = 0;
    *out = NULL;
    SWAX_TRY(swax_builtin_encoding(encoding, &pattern, NULL, &sp, &nsp));
    return swax_tokenizer_load(ranks_path, pattern, sp, nsp, out);
}

/* 1-based line of the first occurrence of needle in text (1 if absent). */
static int line_of(const char *text, const char *needle) {
    const char *p = strstr(text, needle);
    int line = 1;
    if (!p) return 1;
    for (const char *q = text; q < p; q++) line += *q == '\n';
    return line;
}

int swax_tokenizer_load_json(const char *path, SwaxTokenizer **out) {
    char jpath[4096], rpath[4096];
    struct stat st;
    *out = NULL;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        SWAX_TRY(swax_path_join(jpath, sizeof jpath, path, "tokenizer.json"));
    } else if ((size_t)snprintf(jpath, sizeof jpath, "%s", path) >= sizeof jpath) {
        return swax_error(SWAX_E_USAGE, "path too long: %s", path);
    }
    char *text;
    size_t len;
    SWAX_TRY(swax_read_file(jpath, &text, &len));
    cJSON *j = cJSON_ParseWithLength(text, len);
    int rc = 0;
    if (!j) {
        const char *e = cJSON_GetErrorPtr();
        int line = 1;
        if (e && e >= text && e <= text + len)
            for (const char *q = text; q < e; q++) line += *q == '\n';
        rc = swax_error(SWAX_E_INPUT, "%s: line %d: not valid JSON", jpath, line);
        goto done;
    }
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
    const cJSON *ranks = cJSON_GetObjectItemCaseSensitive(j, "ranks");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "specials");
    if (!cJSON_IsObject(j)) {
        rc = swax_error(SWAX_E_INPUT, "%s: line 1: expected a JSON object", jpath);
        goto done;
    }
    if (!cJSON_IsString(pat) || !cJSON_IsString(ranks)) {
        rc = swax_error(SWAX_E_INPUT, "%s: needs string fields \"pattern\" and \"ranks\"", jpath);
        goto done;
    }
    if (!swax_pattern_canonical(pat->valuestring)) {
        rc = swax_error(SWAX_E_INPUT, "%s: line %d: unknown pattern '%s' (known: r50k, cl100k, o200k)",
                        jpath, line_of(text, "\"pattern\""), pat->valuestring);
        goto done;
    }
    if (sp && !cJSON_IsObject(sp)) {
        rc = swax_error(SWAX_E_INPUT, "%s: line %d: \"specials\" must be an object of text: id", jpath,
                        line_of(text, "\"specials\""));
        goto done;
    }
    int nsp = cJSON_GetArraySize(sp);
    SwaxSpecialToken *list = swax_calloc((size_t)nsp + 1, sizeof *list, "special tokens");
    if (!list) {
        rc = SWAX_E_NOMEM;
        goto done;
    }
    int k = 0;
    for (const cJSON *it = sp ? sp->child : NULL; it; it = it->next, k++) {
        double v = it->valuedouble;
        if (!cJSON_IsNumber(it) || !(v >= 0 && v < MAX_TOKEN_ID) || v != (double)(int32_t)v) {
            rc = swax_error(SWAX_E_INPUT, "%s: line %d: special token '%s' needs a non-negative integer id",
                            jpath, line_of(text, it->string), it->string);
            break;
        }
        list[k].text = it->string;
        list[k].id = (int32_t)v;
    }
    /* "ranks" is relative to the JSON's folder. */
    if (!rc) {
        const char *r = ranks->valuestring;
        if (r[0] == '/') {
            snprintf(rpath, sizeof rpath, "%s", r);
        } else {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s", jpath);
            char *slash = strrchr(dir, '/');
            if (slash) *slash = 0;
            else snprintf(dir, sizeof dir, ".");
            rc = swax_path_join(rpath, sizeof rpath, dir, r);
        }
    }
    if (!rc) {
        rc = swax_tokenizer_load(rpath, pat->valuestring, list, k, out);
        if (rc) swax_error_wrap(rc, "%s", jpath);
    }
    /* An optional "vocab_size" must agree with the ranks and specials. */
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(j, "vocab_size");
    if (!rc && vs && (!cJSON_IsNumber(vs) || vs->valuedouble != (double)(*out)->vocab)) {
        if (!cJSON_IsNumber(vs))
            rc = swax_error(SWAX_E_INPUT, "%s: line %d: vocab_size must be a number", jpath,
                            line_of(text, "\"vocab_size\""));
        else
            rc = swax_error(SWAX_E_INPUT, "%s: line %d: vocab_size %g does not match the tokens (%d)",
                            jpath, line_of(text, "\"vocab_size\""), vs->valuedouble, (int)(*out)->vocab);
        swax_tokenizer_free(*out);
        *out = NULL;
    }
    free(list);
done:
    cJSON_Delete(j);
    free(text);
    return rc;
}

/* ======================================================================
 * Pre-tokenisation
 * ====================================================================== */

static int pretok_init(SwaxPretok *p, const char *pattern) {
    memset(p, 0, sizeof *p);
    const char *canon = swax_pattern_canonical(pattern);
    const char *re = swax_pattern_regex(pattern);
    if (!re)
        return swax_error(SWAX_E_INPUT, "unknown pattern '%s' (known: r50k, cl100k, o200k)",
                          pattern ? pattern : "(null)");
    snprintf(p->name, sizeof p->name, "%s", canon);
    int err;
    PCRE2_SIZE eoff;
    /* MATCH_INVALID_UTF: arbitrary bytes are a valid subject; invalid
     * sequences never match and come back as gaps between matches. */
    p->re = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &err,
                          &eoff, NULL);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return swax_error(SWAX_E_INTERNAL, "pattern %s: PCRE2 compile error at %zu: %s", canon,
                          (size_t)eoff, (const char *)msg);
    }
    /* (partial matching: the streaming encoder's undecided tail, below) */
    p->jit = pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD) == 0;
    /* PCRE2's default match limit (10M steps) trips on one long run (20 MB
     * of spaces before a letter backtracks once through the run). These
     * patterns backtrack linearly, so lift the limit. */
    p->mctx = pcre2_match_context_create(NULL);
    if (!p->mctx) {
        pretok_release(p);
        return swax_error(SWAX_E_NOMEM, "pattern %s: no memory for a match context", canon);
    }
    pcre2_set_match_limit(p->mctx, UINT32_MAX);
    return 0;
}

int swax_pretok_create(const char *pattern, SwaxPretok **out) {
    *out = NULL;
    SwaxPretok *p = swax_calloc(1, sizeof *p, "pre-tokeniser");
    if (!p) return SWAX_E_NOMEM;
    int rc = pretok_init(p, pattern);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void swax_pretok_free(SwaxPretok *p) {
    if (!p) return;
    pretok_release(p);
    free(p);
}

int swax_pretok_split(const SwaxPretok *p, const char *text, size_t len, SwaxPieceFn fn, void *ctx) {
    if (!len) return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    if (!md) return swax_error(SWAX_E_NOMEM, "pre-tokeniser: no memory for match data");
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t pos = 0;
    int rc = 0;
    while (pos < len && !rc) {
        int m = pcre2_match(p->re, (PCRE2_SPTR)text, len, pos, 0, md, p->mctx);
        /* The JIT's stack is small; long runs may exhaust it. The
         * interpreter keeps its backtracking on the heap. */
        if (m == PCRE2_ERROR_JIT_STACKLIMIT)
            m = pcre2_match(p->re, (PCRE2_SPTR)text, len, pos, PCRE2_NO_JIT, md, p->mctx);
        if (m == PCRE2_ERROR_NOMATCH) {
            rc = fn(ctx, text + pos, len - pos);
            break;
        }
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = swax_error(SWAX_E_INPUT, "pre-tokeniser (%s): at byte %zu: %s", p->name, pos,
                            (const char *)msg);
            break;
        }
        size_t s = ov[0], e = ov[1];
        if (s > pos) rc = fn(ctx, text + pos, s - pos); /* bytes no pattern matches */
        if (rc) break;
        if (e <= s) e = s + 1; /* never happens with our patterns; never loop */
        rc = fn(ctx, text + s, e - s);
        pos = e;
    }
    pcre2_match_data_free(md);
    return rc;
}

/* ======================================================================
 * BPE merging (the hot spot)
 * ====================================================================== */

static int buf_reserve(SwaxTokenBuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    int32_t *p = realloc(b->ids, cap * sizeof *p);
    if (!p) return swax_error(SWAX_E_NOMEM, "token buffer: cannot grow to %zu ids", cap);
    b->ids = p;
    b->cap = cap;
    return 0;
}

void swax_token_buf_free(SwaxTokenBuf *b) {
    free(b->ids);
    b->ids = NULL;
    b->n = b->cap = 0;
}

static inline int32_t rank_of(const SwaxTokenizer *t, const uint8_t *p, size_t a, size_t b) {
    int32_t r = rank_lookup(t, p + a, b - a);
    return r < 0 ? NO_RANK : r;
}

/* Short pieces: parts in an array; each step merges the adjacent pair whose
 * concatenation has the lowest rank (leftmost on a tie) — O(n^2), tiny n.
 * start[k] is where part k begins; pr[k] the rank of parts k and k+1
 * joined; id[k] the token of part k. */
#define SMALL_PIECE 128
static void bpe_small(const SwaxTokenizer *t, const uint8_t *p, size_t n, int32_t *dst, size_t *nout) {
    uint32_t start[SMALL_PIECE + 1];
    int32_t pr[SMALL_PIECE], id[SMALL_PIECE];
    size_t m = n;
    for (size_t i = 0; i < n; i++) {
        start[i] = (uint32_t)i;
        id[i] = rank_of(t, p, i, i + 1);
        pr[i] = i + 1 < n ? rank_of(t, p, i, i + 2) : NO_RANK;
    }
    start[n] = (uint32_t)n;
    for (;;) {
        int32_t best = NO_RANK;
        size_t bi = 0;
        for (size_t k = 0; k + 1 < m; k++)
            if (pr[k] < best) {
                best = pr[k];
                bi = k;
            }
        if (best == NO_RANK) break;
        /* Parts bi and bi+1 become one. */
        id[bi] = best;
        memmove(start + bi + 1, start + bi + 2, (m - bi - 1) * sizeof *start);
        memmove(pr + bi + 1, pr + bi + 2, (m - bi - 2) * sizeof *pr);
        memmove(id + bi + 1, id + bi + 2, (m - bi - 2) * sizeof *id);
        m--;
        pr[bi] = bi + 1 < m ? rank_of(t, p, start[bi], start[bi + 2]) : NO_RANK;
        if (bi > 0) pr[bi - 1] = rank_of(t, p, start[bi - 1], start[bi + 1]);
    }
    memcpy(dst, id, m * sizeof *id);
    *nout = m;
}

/* Long pieces (a run of 10k letters is one piece): the same merges with a
 * linked list and a min-heap of (rank, start) keys — O(n log n). A heap
 * entry is stale when its part is gone or its pair's rank changed (a part
 * only grows, so a pair's rank never returns to an old value). */
static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (h[up] <= v) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (v <= h[c]) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
    return top;
}

static int bpe_large(const SwaxTokenizer *t, const uint8_t *p, size_t n, SwaxTokenBuf *out) {
    if (n >= UINT32_MAX) return swax_error(SWAX_E_INPUT, "a single pre-token of %zu bytes is too long", n);
    uint32_t *next = malloc(n * sizeof *next);
    uint32_t *prev = malloc(n * sizeof *prev);
    int32_t *id = malloc(n * sizeof *id);
    int32_t *pr = malloc(n * sizeof *pr);
    uint64_t *heap = malloc(4 * n * sizeof *heap);
    int rc = 0;
    if (!next || !prev || !id || !pr || !heap) {
        rc = swax_error(SWAX_E_NOMEM, "BPE of a %zu-byte piece: out of memory", n);
        goto done;
    }
    /* Node i is the part starting at byte i; next[] == n ends the list. */
    size_t hn = 0, hcap = 4 * n;
    for (size_t i = 0; i < n; i++) {
        next[i] = (uint32_t)(i + 1);
        prev[i] = (uint32_t)(i ? i - 1 : UINT32_MAX);
        id[i] = rank_of(t, p, i, i + 1);
        pr[i] = i + 1 < n ? rank_of(t, p, i, i + 2) : NO_RANK;
        if (pr[i] != NO_RANK) heap_push(heap, &hn, (uint64_t)pr[i] << 32 | i);
    }
    while (hn) {
        uint64_t top = heap_pop(heap, &hn);
        uint32_t i = (uint32_t)top, r = (uint32_t)(top >> 32);
        if (id[i] < 0 || (uint32_t)pr[i] != r) continue; /* stale */
        uint32_t j = next[i];                             /* merge j into i */
        id[i] = pr[i];
        id[j] = -1;
        next[i] = next[j];
        if (next[j] < n) prev[next[j]] = i;
        pr[i] = next[i] < n ? rank_of(t, p, i, next[next[i]]) : NO_RANK;
        if (pr[i] != NO_RANK) heap_push(heap, &hn, (uint64_t)pr[i] << 32 | i);
        if (prev[i] != UINT32_MAX) {
            uint32_t h = prev[i];
            pr[h] = rank_of(t, p, h, next[i]);
            if (pr[h] != NO_RANK) heap_push(heap, &hn, (uint64_t)pr[h] << 32 | h);
        }
        /* At most two pushes per merge and one pop: the heap stays < 4n,
         * but guard the invariant. */
        SWAX_ASSERT(hn + 2 <= hcap);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i = next[i]) m++;
    if ((rc = buf_reserve(out, m))) goto done;
    for (size_t i = 0; i < n; i = next[i]) out->ids[out->n++] = id[i];
done:
    free(next);
    free(prev);
    free(id);
    free(pr);
    free(heap);
    return rc;
}

/* One pre-token piece: whole-piece lookup first (most pieces are tokens). */
static int encode_piece(void *ctx, const char *piece, size_t n) {
    void **c = ctx;
    const SwaxTokenizer *t = c[0];
    SwaxTokenBuf *out = c[1];
    const uint8_t *p = (const uint8_t *)piece;
    int32_t whole = rank_lookup(t, p, n);
    SWAX_TRY(buf_reserve(out, n <= SMALL_PIECE ? n : 1));
    if (whole >= 0) {
        out->ids[out->n++] = whole;
        return 0;
    }
    if (n <= SMALL_PIECE) {
        size_t m;
        bpe_small(t, p, n, out->ids + out->n, &m);
        out->n += m;
        return 0;
    }
    return bpe_large(t, p, n, out);
}

/* ======================================================================
 * Encode / decode
 * ====================================================================== */

static int encode_ordinary(const SwaxTokenizer *t, const char *text, size_t len, SwaxTokenBuf *out) {
    void *ctx[2] = {(void *)t, out};
    return swax_pretok_split(&t->pretok, text, len, encode_piece, ctx);
}

int swax_tokenizer_encode(const SwaxTokenizer *t, const char *text, size_t len, int allow_special,
                          SwaxTokenBuf *out) {
    if (!allow_special || t->n_specials == 0) return encode_ordinary(t, text, len, out);
    /* Cut at special tokens (leftmost, then longest); the text between them
     * is pre-tokenised on its own, as tiktoken does. nextpos[k] caches where
     * special k next occurs (SIZE_MAX: nowhere; SIZE_MAX-1: not searched). */
    int ns = t->n_specials;
    size_t *nextpos = malloc((size_t)ns * sizeof *nextpos);
    if (!nextpos) return swax_error(SWAX_E_NOMEM, "encode: out of memory");
    for (int k = 0; k < ns; k++) nextpos[k] = SIZE_MAX - 1;
    size_t pos = 0;
    int rc = 0;
    while (pos < len && !rc) {
        size_t best = SIZE_MAX, blen = 0;
        int bk = -1;
        for (int k = 0; k < ns; k++) {
            const char *s = t->specials[k].text;
            size_t sl = (size_t)t->len[t->specials[k].id];
            if (nextpos[k] == SIZE_MAX - 1 || (nextpos[k] != SIZE_MAX && nextpos[k] < pos)) {
                const char *f = memmem(text + pos, len - pos, s, sl);
                nextpos[k] = f ? (size_t)(f - text) : SIZE_MAX;
            }
            if (nextpos[k] != SIZE_MAX && (nextpos[k] < best || (nextpos[k] == best && sl > blen))) {
                best = nextpos[k];
                blen = sl;
                bk = k;
            }
        }
        if (bk < 0) break;
        rc = encode_ordinary(t, text + pos, best - pos, out);
        if (!rc) rc = buf_reserve(out, 1);
        if (!rc) out->ids[out->n++] = t->specials[bk].id;
        pos = best + blen;
    }
    free(nextpos);
    if (rc) return rc;
    return pos < len ? encode_ordinary(t, text + pos, len - pos, out) : 0;
}

/* ======================================================================
 * Streaming encode: pieces of text in, the ids of the whole text out
 * ====================================================================== */

/* The pieces of text[0..len) that no text after `len` can change: with
 * PCRE2_PARTIAL_HARD a match that inspected the end of the subject (a run of
 * letters or spaces reaching it, a lookahead or `$` at it) comes back as
 * partial instead. Stops there, or at a stretch no match starts in (it may
 * go on), and returns in *done where the undecided rest begins. */
static int pretok_split_open(const SwaxPretok *p, const char *text, size_t len, SwaxPieceFn fn, void *ctx,
                             size_t *done) {
    *done = 0;
    if (!len) return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    if (!md) return swax_error(SWAX_E_NOMEM, "pre-tokeniser: no memory for match data");
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t pos = 0;
    int rc = 0;
    while (pos < len && !rc) {
        int m = pcre2_match(p->re, (PCRE2_SPTR)text, len, pos, PCRE2_PARTIAL_HARD, md, p->mctx);
        if (m == PCRE2_ERROR_JIT_STACKLIMIT)
            m = pcre2_match(p->re, (PCRE2_SPTR)text, len, pos, PCRE2_PARTIAL_HARD | PCRE2_NO_JIT, md, p->mctx);
        if (m == PCRE2_ERROR_NOMATCH || m == PCRE2_ERROR_PARTIAL) break;
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = swax_error(SWAX_E_INPUT, "pre-tokeniser (%s): at byte %zu: %s", p->name, pos, (const char *)msg);
            break;
        }
        size_t s = ov[0], e = ov[1];
        if (s > pos) rc = fn(ctx, text + pos, s - pos); /* bytes no pattern matches */
        if (rc) break;
        if (e <= s) e = s + 1;
        rc = fn(ctx, text + s, e - s);
        pos = e;
    }
    pcre2_match_data_free(md);
    *done = pos;
    return rc;
}

/* text[0..n) without a UTF-8 character cut at its end: the pattern would see
 * a cut character as invalid bytes, not as the letter it becomes. */
static size_t utf8_whole(const char *text, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)text[n - k];
        if ((c & 0xC0) == 0x80) continue; /* a continuation byte: look further back */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > k ? n - k : n;
    }
    return n;
}

struct SwaxEncoder {
    const SwaxTokenizer *t;
    int allow_special;
    char *buf; /* text fed and not yet encoded */
    size_t n, cap;
    size_t held; /* what the last pass left undecided: the next pass waits for as much new text */
};

int swax_encoder_create(const SwaxTokenizer *t, int allow_special, SwaxEncoder **out) {
    *out = NULL;
    SwaxEncoder *e = swax_calloc(1, sizeof *e, "encoder");
    if (!e) return SWAX_E_NOMEM;
    e->t = t;
    e->allow_special = allow_special && t->n_specials > 0;
    *out = e;
    return 0;
}

void swax_encoder_free(SwaxEncoder *e) {
    if (!e) return;
    free(e->buf);
    free(e);
}

/* One pass over the pending text: encodes what is decided, keeps the rest. */
static int encoder_pass(SwaxEncoder *e, SwaxTokenBuf *out) {
    const SwaxTokenizer *t = e->t;
    const char *text = e->buf;
    const size_t n = e->n;
    size_t pos = 0, hold = n; /* hold: the earliest start of a special token's text cut by the end */
    int rc = 0;
    if (e->allow_special) {
        for (int k = 0; k < t->n_specials; k++) {
            const char *s = t->specials[k].text;
            size_t sl = (size_t)t->len[t->specials[k].id];
            for (size_t l = sl ? sl - 1 : 0; l >= 1; l--) /* text[n-l..n) a proper prefix of special k? */
                if (l <= n && n - l < hold && !memcmp(text + n - l, s, l)) hold = n - l;
        }
        /* the complete specials before `hold`, leftmost then longest, as swax_tokenizer_encode cuts */
        while (!rc) {
            size_t best = SIZE_MAX, blen = 0;
            int bk = -1;
            for (int k = 0; k < t->n_specials; k++) {
                const char *s = t->specials[k].text;
                size_t sl = (size_t)t->len[t->specials[k].id];
                const char *f = memmem(text + pos, n - pos, s, sl);
                size_t at = f ? (size_t)(f - text) : SIZE_MAX;
                if (at < best || (at == best && at != SIZE_MAX && sl > blen)) best = at, blen = sl, bk = k;
            }
            if (bk < 0 || best >= hold) break;
            rc = encode_ordinary(t, text + pos, best - pos, out);
            if (!rc) rc = buf_reserve(out, 1);
            if (!rc) out->ids[out->n++] = t->specials[bk].id;
            pos = best + blen;
        }
    }
    if (rc) return rc;
    /* the open stretch: up to a possible special, without a cut character */
    size_t end = hold > pos ? hold : pos, done = 0;
    end = pos + utf8_whole(text + pos, end - pos);
    void *ctx[2] = {(void *)t, out};
    rc = pretok_split_open(&t->pretok, text + pos, end - pos, encode_piece, ctx, &done);
    if (rc) return rc;
    pos += done;
    memmove(e->buf, e->buf + pos, n - pos);
    e->n = n - pos;
    e->held = e->n;
    return 0;
}

int swax_encoder_feed(SwaxEncoder *e, const char *text, size_t len, SwaxTokenBuf *out) {
    if (!len) return 0;
    if (e->n + len > e->cap) {
        size_t cap = e->cap ? e->cap : 4096;
        while (cap < e->n + len) cap *= 2;
        char *b = realloc(e->buf, cap);
        if (!b) return swax_error(SWAX_E_NOMEM, "encoder: cannot hold %zu bytes of pending text", e->n + len);
        e->buf = b, e->cap = cap;
    }
    memcpy(e->buf + e->n, text, len);
    e->n += len;
    /* a long undecided piece (a megabyte of spaces) is scanned again only once
     * the text has doubled: linear time overall */
    if (e->n - e->held < e->held) return 0;
    return encoder_pass(e, out);
}

int swax_encoder_finish(SwaxEncoder *e, SwaxTokenBuf *out) {
    int rc = e->n ? swax_tokenizer_encode(e->t, e->buf, e->n, e->allow_special, out) : 0;
    e->n = e->held = 0;
    return rc;
}

int swax_tokenizer_token_bytes(const SwaxTokenizer *t, int32_t id, const char **bytes, size_t *len) {
    if (id < 0 || id >= t->vocab)
        return swax_error(SWAX_E_INPUT, "token id %d is out of range [0, %d)", (int)id, (int)t->vocab);
    if (t->len[id] < 0)
        return swax_error(SWAX_E_INPUT, "token id %d is not in the vocabulary (a gap between ranks)",
                          (int)id);
    *bytes = (const char *)t->bytes + t->off[id];
    *len = (size_t)t->len[id];
    return 0;
}

int swax_tokenizer_decode(const SwaxTokenizer *t, const int32_t *ids, size_t n, char **text,
                          size_t *len) {
    size_t total = 0;
    *text = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *b = NULL;
        size_t l = 0;
        int rc = swax_tokenizer_token_bytes(t, ids[i], &b, &l);
        if (rc) return swax_error_wrap(rc, "decode: position %zu", i);
        total += l;
    }
    char *s = swax_calloc(total + 1, 1, "decoded text");
    if (!s) return SWAX_E_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        memcpy(s + o, t->bytes + t->off[id], (size_t)t->len[id]);
        o += (size_t)t->len[id];
    }
    *text = s;
    *len = total;
    return 0;
}

/* ======================================================================
 * Queries and saving
 * ====================================================================== */

int swax_tokenizer_vocab_size(const SwaxTokenizer *t) { return t->vocab; }
int swax_tokenizer_n_ranks(const SwaxTokenizer *t) { return t->n_ranks; }
const char *swax_tokenizer_pattern(const SwaxTokenizer *t) { return t->pattern; }
int swax_tokenizer_n_specials(const SwaxTokenizer *t) { return t->n_specials; }

const SwaxSpecialToken *swax_tokenizer_special(const SwaxTokenizer *t, int i) {
    return i >= 0 && i < t->n_specials ? &t->specials[i] : NULL;
}

int32_t swax_tokenizer_special_id(const SwaxTokenizer *t, const char *text) {
    for (int k = 0; k < t->n_specials; k++)
        if (!strcmp(t->specials[k].text, text)) return t->specials[k].id;
    return -1;
}

int32_t swax_tokenizer_eot(const SwaxTokenizer *t) { return swax_tokenizer_special_id(t, "<|endoftext|>"); }

int swax_tokenizer_save(const SwaxTokenizer *t, const char *dir) {
    char path[4096];
    SWAX_TRY(swax_mkdir_p(dir));
    /* Ranks, in id order. */
    SWAX_TRY(swax_path_join(path, sizeof path, dir, "tokenizer.tiktoken"));
    SwaxAtomicFile af;
    SWAX_TRY(swax_atomic_open(&af, path));
    char line[1024];
    int rc = 0;
    for (int32_t id = 0; id < t->vocab && !rc; id++) {
        if (t->len[id] < 0 || t->special[id]) continue;
        size_t l = (size_t)t->len[id], o = 0;
        const uint8_t *p = t->bytes + t->off[id];
        /* Chunks of 3*200 bytes keep the line buffer small for long tokens. */
        for (size_t i = 0; i < l && !rc; i += 600) {
            size_t c = l - i < 600 ? l - i : 600;
            o = b64_encode(p + i, c, line);
            rc = swax_atomic_write(&af, line, o);
        }
        int k = snprintf(line, sizeof line, " %d\n", (int)id);
        if (!rc) rc = swax_atomic_write(&af, line, (size_t)k);
    }
    if (rc) {
        swax_atomic_abort(&af);
        return rc;
    }
    SWAX_TRY(swax_atomic_commit(&af));

    cJSON *j = cJSON_CreateObject(), *sp = cJSON_CreateObject();
    if (!j || !sp) {
        cJSON_Delete(j);
        cJSON_Delete(sp);
        return swax_error(SWAX_E_NOMEM, "tokenizer.json: out of memory");
    }
    cJSON_AddStringToObject(j, "pattern", t->pattern);
    cJSON_AddStringToObject(j, "ranks", "tokenizer.tiktoken");
    for (int k = 0; k < t->n_specials; k++) cJSON_AddNumberToObject(sp, t->specials[k].text, t->specials[k].id);
    cJSON_AddItemToObject(j, "specials", sp);
    cJSON_AddNumberToObject(j, "vocab_size", t->vocab);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) return swax_error(SWAX_E_NOMEM, "tokenizer.json: out of memory");
    size_t sl = strlen(s);
    char *s2 = realloc(s, sl + 2);
    if (!s2) {
        free(s);
        return swax_error(SWAX_E_NOMEM, "tokenizer.json: out of memory");
    }
    s2[sl] = '\n';
    s2[sl + 1] = 0;
    SWAX_TRY(swax_path_join(path, sizeof path, dir, "tokenizer.json"));
    rc = swax_write_file_atomic(path, s2, sl + 1);
    free(s2);
    return rc;
}
