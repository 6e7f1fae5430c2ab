/* config_json.h — SwaxConfig <-> config.json (docs/checkpoint.md; plus
 * "format": "swax", "version": 1). See docs/formats.md. */
#ifndef SWAX_IO_CONFIG_JSON_H
#define SWAX_IO_CONFIG_JSON_H

#include <stddef.h>

#include "swax.h"

#define SWAX_CONFIG_FORMAT "swax"
#define SWAX_CONFIG_VERSION 1

/* malloc'd (free() it), pretty-printed, ends with a newline. Floats are
 * written with the fewest digits that read back to the same value.
 * SWAX_E_USAGE for a value JSON cannot hold (NaN, infinity). */
int swax_config_to_json(const SwaxConfig *c, char **out);
/* Parses; every field of docs/checkpoint.md is required except vocab_used
 * (default vocab_size), igate_bias_init (default -10), eot_token (default -1).
 * tie_embeddings is a boolean (0 or 1 also accepted). Unknown keys are
 * ignored. Wrong types, missing fields, duplicate keys, an unknown "format" or
 * a newer "version" give SWAX_E_INPUT naming `origin` and the field. Does not
 * range-check values (swax_config_validate does that). *out is written only
 * on success. */
int swax_config_from_json(const char *json, size_t len, const char *origin, SwaxConfig *out);
int swax_config_save(const char *path, const SwaxConfig *c); /* atomic */
int swax_config_load(const char *path, SwaxConfig *c);
/* swax_config_set (swax.h) is here too: --set reads a value by the rules above. */

/* The shortest "%.*g" text of a finite value that reads back bit-exactly (for
 * JSON numbers: cJSON's own printing may round a double by an ulp). */
void swax_json_fmt_float(char *buf, size_t cap, float v);
void swax_json_fmt_double(char *buf, size_t cap, double v);

#endif
