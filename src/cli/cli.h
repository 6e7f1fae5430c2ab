/* cli.h — the subcommands of the `swax` program. Each lives in its own
 * src/cli/cmd_<name>.c, parses its own flags with getopt_long, prints its own
 * --help, and returns a SwaxStatus as the exit code. */
#ifndef SWAX_CLI_H
#define SWAX_CLI_H

#include "core/common.h"

int cmd_init(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_eval_bench(int argc, char **argv); /* `swax eval bench` (cmd_eval_bench.c) */
int cmd_data(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_study(int argc, char **argv);

/* Prints "swax <cmd>: error: <swax_last_error()>" and returns rc. */
int cli_fail(const char *cmd, int rc);
/* Parsers for flag values; on failure print a usage error and return SWAX_E_USAGE. */
int cli_parse_int(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *flag, const char *s, double *out);
/* Token ids separated by commas or white space, inline or from a file; prints its own error. */
int cli_parse_ids(const char *cmd, const char *arg, int32_t **ids, size_t *n);

/* A tokenizer from a folder or tokenizer.json, a built-in rank file, or a
 * built-in encoding name (gpt2, cl100k_base, ...) through the npm cache
 * (cmd_tokenizer.c). */
typedef struct SwaxTokenizer SwaxTokenizer;
int cli_load_tokenizer(const char *spec, SwaxTokenizer **out);

#endif
