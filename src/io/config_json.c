/* config_json.c — see config_json.h. */
#include "io/config_json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"

#define CONFIG_MAX_BYTES (16u << 20)

typedef enum { F_INT, F_BOOL, F_FLOAT, F_DOUBLE, F_STR } FieldType;

typedef struct {
    const char *name;
    FieldType type;
    size_t off;
    int optional;
} Field;

#define FLD(n, t) {#n, t, offsetof(SwaxConfig, n), 0}
#define OPT(n, t) {#n, t, offsetof(SwaxConfig, n), 1}

static const Field k_fields[] = {
    FLD(vocab_size, F_INT),  OPT(vocab_used, F_INT),     FLD(d_model, F_INT),       FLD(n_blocks, F_INT),
    FLD(pattern, F_STR),     FLD(attn_heads, F_INT),     FLD(head_dim, F_INT),      FLD(rope_theta, F_DOUBLE),
    FLD(window, F_INT),      FLD(mlstm_heads, F_INT),    FLD(gate_softcap, F_FLOAT), FLD(ffn_dim, F_INT),
    FLD(logit_softcap, F_FLOAT), FLD(norm_eps, F_FLOAT), FLD(tie_embeddings, F_BOOL), OPT(igate_bias_init, F_FLOAT),
    OPT(eot_token, F_INT),   OPT(gdn_heads, F_INT),
};
#define N_FIELDS ((int)(sizeof k_fields / sizeof k_fields[0]))

/* Shortest "%.*g" text that reads back to the same value. */
void swax_json_fmt_float(char *buf, size_t cap, float v) {
    for (int p = 6; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}
void swax_json_fmt_double(char *buf, size_t cap, double v) {
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

int swax_config_to_json(const SwaxConfig *c, char **out) {
    *out = NULL;
    size_t plen = strnlen(c->pattern, sizeof c->pattern);
    if (plen > SWAX_MAX_PATTERN) return swax_error(SWAX_E_USAGE, "config: pattern is not a terminated string");
    cJSON *root = cJSON_CreateObject();
    if (!root) return swax_error(SWAX_E_NOMEM, "config: out of memory");
    int ok = cJSON_AddStringToObject(root, "format", SWAX_CONFIG_FORMAT) != NULL &&
             cJSON_AddNumberToObject(root, "version", SWAX_CONFIG_VERSION) != NULL;
    for (int i = 0; i < N_FIELDS && ok; i++) {
        const Field *f = &k_fields[i];
        const char *p = (const char *)c + f->off;
        char num[64];
        if (f->off == offsetof(SwaxConfig, gdn_heads) && c->gdn_heads == 0) continue; /* 0: as mlstm_heads */
        cJSON *item = NULL;
        switch (f->type) {
        case F_INT: item = cJSON_CreateNumber(*(const int *)p); break;
        case F_BOOL: item = cJSON_CreateBool(*(const int *)p != 0); break;
        case F_STR: item = cJSON_CreateString(p); break;
        case F_FLOAT:
        case F_DOUBLE: {
            double v = f->type == F_FLOAT ? (double)*(const float *)p : *(const double *)p;
            if (!isfinite(v)) {
                cJSON_Delete(root);
                return swax_error(SWAX_E_USAGE, "config: %s is %g, which JSON cannot hold", f->name, v);
            }
            if (f->type == F_FLOAT) swax_json_fmt_float(num, sizeof num, *(const float *)p);
            else swax_json_fmt_double(num, sizeof num, v);
            item = cJSON_CreateRaw(num);
            break;
        }
        }
        ok = item && cJSON_AddItemToObject(root, f->name, item);
        if (item && !ok) cJSON_Delete(item);
    }
    char *txt = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!txt) return swax_error(SWAX_E_NOMEM, "config: out of memory");
    size_t n = strlen(txt);
    char *res = malloc(n + 2);
    if (!res) {
        cJSON_free(txt);
        return swax_error(SWAX_E_NOMEM, "config: out of memory");
    }
    memcpy(res, txt, n);
    res[n] = '\n';
    res[n + 1] = 0;
    cJSON_free(txt);
    *out = res;
    return 0;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int get_int(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || floor(d) != d || d < (double)INT_MIN || d > (double)INT_MAX) return 0;
    *out = (int)d;
    return 1;
}

/* One field from its JSON value; errors (status `code`) name `origin` and the field. */
static int set_field(const Field *f, const cJSON *v, const char *origin, int code, SwaxConfig *c) {
    char *p = (char *)c + f->off;
    switch (f->type) {
    case F_INT:
        if (!get_int(v, (int *)p)) return swax_error(code, "%s: \"%s\" must be an integer in int range", origin, f->name);
        break;
    case F_BOOL:
        if (cJSON_IsBool(v)) *(int *)p = cJSON_IsTrue(v);
        else if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) *(int *)p = (int)v->valuedouble;
        else return swax_error(code, "%s: \"%s\" must be true or false", origin, f->name);
        break;
    case F_FLOAT:
        /* Below FLT_MAX + half an ulp, the value rounds to a finite float. */
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || !(fabs(v->valuedouble) < 0x1.ffffffp127))
            return swax_error(code, "%s: \"%s\" must be a number in float range", origin, f->name);
        *(float *)p = (float)v->valuedouble;
        break;
    case F_DOUBLE:
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return swax_error(code, "%s: \"%s\" must be a finite number", origin, f->name);
        *(double *)p = v->valuedouble;
        break;
    case F_STR:
        if (!cJSON_IsString(v)) return swax_error(code, "%s: \"%s\" must be a string", origin, f->name);
        if (strlen(v->valuestring) > SWAX_MAX_PATTERN)
            return swax_error(code, "%s: \"%s\" is longer than %d characters", origin, f->name, SWAX_MAX_PATTERN);
        memset(p, 0, SWAX_MAX_PATTERN + 1);
        memcpy(p, v->valuestring, strlen(v->valuestring));
        break;
    }
    return 0;
}

static int from_json(const cJSON *root, const char *origin, SwaxConfig *c) {
    if (!cJSON_IsObject(root)) return swax_error(SWAX_E_INPUT, "%s: config is not a JSON object", origin);
    /* Duplicate keys would make the file ambiguous. */
    size_t nkeys = 0;
    for (const cJSON *x = root->child; x; x = x->next) nkeys++;
    const char **keys = swax_calloc(nkeys, sizeof *keys, "config keys");
    if (!keys) return SWAX_E_NOMEM;
    size_t k = 0;
    for (const cJSON *x = root->child; x; x = x->next) keys[k++] = x->string ? x->string : "";
    qsort(keys, nkeys, sizeof *keys, cmp_str_ptr);
    for (size_t i = 1; i < nkeys; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            int rc = swax_error(SWAX_E_INPUT, "%s: duplicate key \"%.64s\"", origin, keys[i]);
            free(keys);
            return rc;
        }
    free(keys);

    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!fmt) return swax_error(SWAX_E_INPUT, "%s: missing \"format\" (expected \"%s\")", origin, SWAX_CONFIG_FORMAT);
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, SWAX_CONFIG_FORMAT) != 0)
        return swax_error(SWAX_E_INPUT, "%s: \"format\" is not \"%s\": not a swax config", origin, SWAX_CONFIG_FORMAT);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    int version;
    if (!ver) return swax_error(SWAX_E_INPUT, "%s: missing \"version\"", origin);
    if (!get_int(ver, &version)) return swax_error(SWAX_E_INPUT, "%s: \"version\" is not an integer", origin);
    if (version > SWAX_CONFIG_VERSION)
        return swax_error(SWAX_E_INPUT, "%s: config version %d is newer than this swax reads (%d)", origin, version,
                          SWAX_CONFIG_VERSION);
    if (version < 1) return swax_error(SWAX_E_INPUT, "%s: config version %d is not valid", origin, version);

    int have_vocab_used = 0;
    for (int i = 0; i < N_FIELDS; i++) {
        const Field *f = &k_fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, f->name);
        if (!v) {
            if (f->optional) continue;
            return swax_error(SWAX_E_INPUT, "%s: missing field \"%s\"", origin, f->name);
        }
        if (strcmp(f->name, "vocab_used") == 0) have_vocab_used = 1;
        SWAX_TRY(set_field(f, v, origin, SWAX_E_INPUT, c));
    }
    if (!have_vocab_used) c->vocab_used = c->vocab_size;
    return 0;
}

int swax_config_from_json(const char *json, size_t len, const char *origin, SwaxConfig *out) {
    if (!origin) origin = "config";
    if (!json) return swax_error(SWAX_E_INPUT, "%s: no config text", origin);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        return swax_error(SWAX_E_INPUT, "%s: not valid JSON (near byte %zu)", origin, at);
    }
    for (const char *p = end; p && p < json + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return swax_error(SWAX_E_INPUT, "%s: trailing characters after the JSON object (byte %zu)", origin, (size_t)(p - json));
        }
    SwaxConfig c;
    memset(&c, 0, sizeof c);
    c.igate_bias_init = -10.0f;
    c.eot_token = -1;
    int rc = from_json(root, origin, &c);
    cJSON_Delete(root);
    if (!rc) *out = c;
    return rc;
}

int swax_config_save(const char *path, const SwaxConfig *c) {
    char *txt;
    SWAX_TRY(swax_config_to_json(c, &txt));
    int rc = swax_write_file_atomic(path, txt, strlen(txt));
    free(txt);
    return rc;
}

int swax_config_load(const char *path, SwaxConfig *c) {
    struct stat st;
    if (stat(path, &st) != 0) return swax_error(SWAX_E_INPUT, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return swax_error(SWAX_E_INPUT, "%s: not a regular file", path);
    if ((uintmax_t)st.st_size > CONFIG_MAX_BYTES)
        return swax_error(SWAX_E_INPUT, "%s: %lld bytes is too large for a config", path, (long long)st.st_size);
    char *txt;
    size_t len;
    SWAX_TRY(swax_read_file(path, &txt, &len));
    int rc = swax_config_from_json(txt, len, path, c);
    free(txt);
    return rc;
}

/* --set key=value: the value is read as the JSON value config.json holds for
 * the key (true/false, a number, "a string"); a string field also takes its
 * text unquoted. So every value config.json writes can be given to --set. */
int swax_config_set(SwaxConfig *c, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return swax_error(SWAX_E_USAGE, "--set expects key=value, got '%s'", assignment);
    const size_t klen = (size_t)(eq - assignment);
    const Field *f = NULL;
    for (int i = 0; i < N_FIELDS && !f; i++)
        if (strlen(k_fields[i].name) == klen && !memcmp(k_fields[i].name, assignment, klen)) f = &k_fields[i];
    if (!f) {
        char known[512];
        size_t n = 0;
        for (int i = 0; i < N_FIELDS && n < sizeof known; i++)
            n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", k_fields[i].name);
        return swax_error(SWAX_E_USAGE, "--set: unknown config field '%.*s' (known: %s)", (int)klen, assignment,
                          known);
    }
    const char *val = eq + 1;
    char origin[160];
    snprintf(origin, sizeof origin, "--set '%.120s'", assignment);
    cJSON *v = cJSON_ParseWithOpts(val, NULL, 1);
    if (!v || (f->type == F_STR && !cJSON_IsString(v))) {
        /* not JSON (or a string field's bare text): the text itself, as a string */
        cJSON_Delete(v);
        v = cJSON_CreateString(val);
        if (!v) return swax_error(SWAX_E_NOMEM, "--set: out of memory");
    }
    SwaxConfig tmp = *c;
    int rc = set_field(f, v, origin, SWAX_E_USAGE, &tmp);
    cJSON_Delete(v);
    if (!rc) *c = tmp;
    return rc;
}
