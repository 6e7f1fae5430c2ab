/* eval_util.h — small pieces the evaluations share: a growable string,
 * JSONL reading with file:line errors, a progress bar with ETA, list flags,
 * log-softmax over the used vocabulary, and tokenizer loading. */
#ifndef SWAX_EVAL_UTIL_H
#define SWAX_EVAL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/common.h"
#include "core/progress.h"
#include "io/tokenizer.h"

/* ---- growable string ----------------------------------------------------- */

typedef struct {
    char *p; /* NUL-terminated when non-NULL */
    size_t n, cap;
    int failed; /* an allocation failed: later appends are no-ops */
} SwaxStr;

int swax_str_append(SwaxStr *s, const char *text, size_t len);
int swax_str_puts(SwaxStr *s, const char *text);
int swax_str_printf(SwaxStr *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void swax_str_clear(SwaxStr *s); /* length 0, keeps the buffer */
void swax_str_free(SwaxStr *s);
/* Appends text with every invalid UTF-8 sequence replaced by U+FFFD (model
 * output cut at any byte must still make valid JSON text). */
int swax_str_append_utf8(SwaxStr *s, const char *text, size_t len);
/* Writes the string to PATH atomically. */
int swax_str_write(const SwaxStr *s, const char *path);

/* ---- JSONL --------------------------------------------------------------- */

struct cJSON;
/* Calls fn(ctx, item, path, line) for every non-blank line of a JSONL file;
 * a line that is not JSON is an error "PATH:LINE: ...". fn's non-zero return
 * stops the walk and is returned. */
typedef int (*SwaxJsonlFn)(void *ctx, const struct cJSON *item, const char *path, long line);
int swax_jsonl_each(const char *path, SwaxJsonlFn fn, void *ctx);

/* ---- progress ------------------------------------------------------------ */

/* A one-line bar on stderr: items done / total, a percentage of `work` (any
 * unit, e.g. tokens, that makes the ETA honest when items differ in size),
 * elapsed time and ETA. On a terminal it redraws in place; otherwise it prints
 * a line at every 10% or 60 s. Either way at most one line per
 * SWAX_PROGRESS_INTERVAL (0.25 s, core/progress.h), plus the final one. */
typedef struct {
    const char *label;
    double t0, last_print;
    double work_total, work_done;
    long items_total, items_done;
    int tty, quiet, last_decile;
} SwaxProgress;

void swax_progress_start(SwaxProgress *p, const char *label, long items, double work, int quiet);
void swax_progress_add(SwaxProgress *p, long items, double work);
void swax_progress_note(SwaxProgress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void swax_progress_finish(SwaxProgress *p);

/* ---- lists --------------------------------------------------------------- */

/* "1024,2048,4k,128K" -> longs (k/K = ×1024). SWAX_E_USAGE names the flag. */
int swax_parse_long_list(const char *flag, const char *s, long lo, long hi, long **out, int *n);
/* "a,b,c" -> owned copies. */
int swax_parse_name_list(const char *flag, const char *s, char ***out, int *n);
void swax_free_name_list(char **names, int n);

/* A token count or position for tables: "4k" when a multiple of 1024, else digits. */
void swax_fmt_tokens(char *buf, size_t cap, long n);

/* ---- numerics ------------------------------------------------------------ */

/* log p(target) under softmax over logits[0, vocab_used) (padded ids never
 * count), in double. */
double swax_logprob(const float *logits, int vocab_used, int target);

/* ---- tokenizers ---------------------------------------------------------- */

/* --tokenizer for the evaluations: a folder with tokenizer.json or the
 * JSON's path; NULL or "" = the model folder's tokenizer. */
int swax_eval_load_tokenizer(const char *spec, const char *model_dir, SwaxTokenizer **out);
/* A byte-level tokenizer: ids 0..255 are the bytes, 256 is <|endoftext|>.
 * Used by tests and by gen-data without --tokenizer (lengths in bytes). */
int swax_byte_tokenizer(SwaxTokenizer **out);

#endif
