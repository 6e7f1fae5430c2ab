/* niah.h — RULER needle-in-a-haystack samples (SPEC §5), their scoring, and
 * synthetic retrieval documents for training (docs/evaluation.md).
 *
 * A sample is a prompt of a given length in tokens:
 *
 *   Some special magic numbers are hidden within the following text. Make sure
 *   to memorize it. I will quiz you about the numbers afterwards.\n
 *   <haystack sentences, with the needle sentence(s) between two of them>\n
 *   What is the special magic number for {key} mentioned in the provided text?
 *   The special magic number for {key} mentioned in the provided text is
 *
 * needle: "One of the special magic numbers for {key} is: {value}." With
 * several answers the question and the answer prefix are plural ("What are
 * all the special magic numbers for {key} ...? The special magic numbers for
 * {key} ... are"); uuid tasks say "uuid(s)" where the others say "number(s)".
 * The haystack is cut at a word to hit the length; the asked needle sits at
 * the sentence boundary nearest to the asked depth (a fraction of the
 * haystack's tokens, needles not counted); other needles (distractors, more
 * values or keys) at uniformly random depths. Everything is a function of
 * (seed, stream). */
#ifndef SWAX_EVAL_NIAH_H
#define SWAX_EVAL_NIAH_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "eval/eval_util.h"
#include "io/tokenizer.h"

#define SWAX_NIAH_MAX_GOLDS 4
#define SWAX_NIAH_KEY_MAX 64

typedef enum { SWAX_HAY_NOISE, SWAX_HAY_ESSAY, SWAX_HAY_NEEDLE } SwaxHaystackKind;

/* RULER's eight NIAH tasks. */
typedef struct {
    const char *name;
    SwaxHaystackKind haystack;
    int key_uuid, value_uuid; /* keys / values are uuids instead of words / 7-digit numbers */
    int n_keys;               /* needles with distinct keys; only key 0 is asked (multikey) */
    int n_values;             /* values of the asked key, all gold (multivalue) */
    int n_queries;            /* keys asked, each with one gold value (multiquery) */
} SwaxNiahTask;

const SwaxNiahTask *swax_niah_task(const char *name); /* NULL if unknown */
int swax_niah_task_index(const SwaxNiahTask *t);
const SwaxNiahTask *swax_niah_task_at(int i);         /* i < swax_niah_n_tasks() */
int swax_niah_n_tasks(void);
const char *swax_niah_task_list(void);                /* "single1,single2,..." */

/* ---- key words ------------------------------------------------------------ */

/* Keys are "{adjective}-{noun}". */
typedef struct {
    char **adj, **noun;
    int n_adj, n_noun;
    char *bufs[2]; /* the files' text the words point into (loaded lists) */
    int owned;     /* adj, noun and bufs are heap memory */
} SwaxWords;

void swax_words_builtin(SwaxWords *w); /* the built-in lists (nothing to free) */
/* A word list (one word a line, e.g. /usr/share/dict/words): lowercase ASCII
 * words of 3..12 letters; adjectives are told by their endings (-ous, -ful,
 * -ive, -able, ...; not -ment), nouns are the rest less verb forms, adverbs,
 * plurals and superlatives (-ed, -ing, -ly, -s, -est, ...). A WordNet dict
 * folder (index.adj, index.noun) gives real parts of speech. Fewer than 20 of
 * either is an error. */
int swax_words_load(const char *path, SwaxWords *w);
void swax_words_free(SwaxWords *w);

/* ---- essays -------------------------------------------------------------- */

/* Prose cut into sentences (whitespace collapsed to single spaces; a Project
 * Gutenberg header and footer are dropped), each with its token count. */
typedef struct {
    char *text;
    size_t *off;    /* (n) sentence starts in text */
    uint32_t *len;  /* (n) bytes */
    uint32_t *ntok; /* (n) tokens of " " + sentence */
    size_t n;
} SwaxEssay;

/* Files, or folders read for *.txt in sorted order, concatenated. */
int swax_essay_load(const char *const *paths, int n_paths, const SwaxTokenizer *tok, SwaxEssay *e);
int swax_essay_from_text(const char *text, size_t len, const char *origin, const SwaxTokenizer *tok,
                         SwaxEssay *e);
void swax_essay_free(SwaxEssay *e);

/* ---- samples ------------------------------------------------------------- */

typedef struct {
    const SwaxTokenizer *tok;
    const SwaxWords *words;
    const SwaxEssay *essay; /* NULL: essay tasks are an error, unless essay_as_noise */
    int essay_as_noise;
} SwaxNiahGen;

typedef struct {
    const SwaxNiahTask *task;
    long length;  /* asked prompt length (tokens) */
    double depth; /* asked depth of the (first) gold needle, in [0, 1] */
    SwaxStr prompt;
    SwaxTokenBuf tokens;  /* the prompt's tokens (<= length, within a few) */
    int n_golds, n_queries;
    char golds[SWAX_NIAH_MAX_GOLDS][SWAX_NIAH_KEY_MAX];
    char keys[SWAX_NIAH_MAX_GOLDS][SWAX_NIAH_KEY_MAX]; /* the asked keys */
    size_t needle_byte;   /* byte offset of the first gold needle in the prompt */
    long hay_tokens;      /* tokens of haystack + needles (estimated per sentence) */
    double depth_actual;  /* haystack tokens before the first gold needle / all haystack
                           * tokens, needles not counted (0 = first, 1 = last) */
    long min_length;      /* set when `length` was too short (SWAX_E_USAGE): the shortest prompt
                           * these needles allow (instructions + needles + 8 tokens of haystack) */
} SwaxNiahSample;

/* Makes one sample; `stream` tells samples of one seed apart. */
int swax_niah_make(const SwaxNiahGen *g, const SwaxNiahTask *t, long length, double depth, uint64_t seed,
                   uint64_t stream, SwaxNiahSample *out);
void swax_niah_sample_free(SwaxNiahSample *s);
/* The stream of sample i of (task, length, depth): the same sample whatever
 * else is evaluated beside it. */
uint64_t swax_niah_stream(int task_index, long length, double depth, long sample);

/* The expected answer as the model should continue the prompt:
 * " 1234567." or " 1234567, 2345678, 3456789, 4567890." */
int swax_niah_answer(const SwaxNiahSample *s, SwaxStr *out);
/* A needle value as the tasks draw it: 7 digits (1000000..9999999), or a random UUID (version 4). */
void swax_niah_make_value(int uuid, SwaxRng *r, char *out);

/* RULER's score: the fraction of gold values that occur in the output
 * (case-insensitive substring). */
double swax_niah_score(const char *output, const char *const *golds, int n_golds);

/* ---- synthetic training documents ----------------------------------------- */

/* kind "niah": a sample of a task drawn from `tasks` (length uniform in
 * [min_len, max_len], depth uniform) followed by its answer.
 * kind "kv": "Key-value pairs:\n" + "{key}: {value}\n" lines, then "Recall:\n"
 * and `queries` of the keys again (distinct, random order; queries <= 0: every
 * key), each followed by its value.
 * Lengths count tokens of g->tok. Appends the document's text to out. */
#define SWAX_KV_QUERIES 4 /* gen-data's default recalls per key-value document */
int swax_gen_niah_doc(const SwaxNiahGen *g, const SwaxNiahTask *const *tasks, int n_tasks, long min_len,
                      long max_len, uint64_t seed, uint64_t doc, SwaxStr *out);
int swax_gen_kv_doc(const SwaxNiahGen *g, long min_len, long max_len, int queries, uint64_t seed, uint64_t doc,
                    SwaxStr *out);

#endif
