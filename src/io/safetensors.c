/* safetensors.c — see safetensors.h and docs/formats.md. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "swax assumes a little-endian host"
#endif

/* Integers in the header must be exact in a double (cJSON keeps numbers as double). */
#define ST_MAX_INT 9007199254740992.0 /* 2^53 */
/* At most this many JSON values in a header: bounds cJSON's memory (about 64
 * bytes a value) whatever the header holds; a real header needs 6 + ndim
 * values a tensor, so this is over a million tensors. */
#define ST_MAX_VALUES (8u * 1000u * 1000u)

static const struct {
    const char *name;
    size_t size;
} k_dtypes[] = {
    [SWAX_DT_F32] = {"F32", 4}, [SWAX_DT_F64] = {"F64", 8}, [SWAX_DT_I32] = {"I32", 4},
    [SWAX_DT_I64] = {"I64", 8}, [SWAX_DT_U8] = {"U8", 1},   [SWAX_DT_U16] = {"U16", 2},
    [SWAX_DT_BF16] = {"BF16", 2}, [SWAX_DT_F16] = {"F16", 2},
};
#define N_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

static int dtype_ok(SwaxDType t) { return (int)t >= 0 && (int)t < N_DTYPES; }

size_t swax_dtype_size(SwaxDType t) { return dtype_ok(t) ? k_dtypes[t].size : 0; }
const char *swax_dtype_name(SwaxDType t) { return dtype_ok(t) ? k_dtypes[t].name : "?"; }

static int dtype_from_name(const char *s, SwaxDType *t) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(s, k_dtypes[i].name) == 0) {
            *t = (SwaxDType)i;
            return 1;
        }
    return 0;
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
 * Returns the offset of the first bad byte, or len if all is well. */
static size_t utf8_check(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (len - i <= k) return i;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += k + 1;
    }
    return len;
}

/* ------------------------------------------------------------------ reader */

/* Checks the raw header bytes before cJSON sees them: no NUL byte, valid
 * UTF-8, and a bounded number of JSON values. */
static int header_prescan(const char *path, const uint8_t *h, size_t len) {
    const uint8_t *nul = memchr(h, 0, len);
    if (nul) return swax_error(SWAX_E_INPUT, "%s: safetensors header has a NUL byte at offset %zu", path, (size_t)(nul - h));
    size_t bad = utf8_check(h, len);
    if (bad != len) return swax_error(SWAX_E_INPUT, "%s: safetensors header is not valid UTF-8 (offset %zu)", path, bad);
    size_t values = 1;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = h[i];
        if (in_str) {
            if (c == '\\') {
                /* cJSON would cut a name at an escaped NUL, silently renaming it. */
                if (i + 5 < len && h[i + 1] == 'u' && !memcmp(h + i + 2, "0000", 4))
                    return swax_error(SWAX_E_INPUT, "%s: safetensors header has an escaped NUL (\\u0000) at offset %zu", path, i);
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ',' || c == '[' || c == '{') {
            if (++values > ST_MAX_VALUES)
                return swax_error(SWAX_E_INPUT, "%s: safetensors header has more than %u JSON values", path, ST_MAX_VALUES);
        }
    }
    return 0;
}

static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0 || d > ST_MAX_INT || floor(d) != d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct {
    size_t begin, end;
    int idx;
} Span;

static int cmp_span(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

static int parse_entry(const char *path, const cJSON *item, size_t data_len, SwaxSTEntry *e) {
    const char *name = item->string;
    size_t nl = strlen(name);
    if (nl >= SWAX_ST_MAX_NAME)
        return swax_error(SWAX_E_INPUT, "%s: tensor name '%.64s...' is %zu bytes (at most %d)", path, name, nl, SWAX_ST_MAX_NAME - 1);
    memcpy(e->name, name, nl + 1);
    if (!cJSON_IsObject(item)) return swax_error(SWAX_E_INPUT, "%s: tensor '%s': entry is not a JSON object", path, name);

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dt)) return swax_error(SWAX_E_INPUT, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    if (!dtype_from_name(dt->valuestring, &e->dtype))
        return swax_error(SWAX_E_INPUT, "%s: tensor '%s': unknown dtype \"%.32s\"", path, name, dt->valuestring);

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
    if (!cJSON_IsArray(sh)) return swax_error(SWAX_E_INPUT, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
    int nd = cJSON_GetArraySize(sh);
    if (nd > SWAX_ST_MAX_DIMS)
        return swax_error(SWAX_E_INPUT, "%s: tensor '%s': shape has %d dimensions (at most %d)", path, name, nd, SWAX_ST_MAX_DIMS);
    e->ndim = nd;
    size_t count = 1;
    int overflow = 0, d = 0;
    for (const cJSON *x = sh->child; x; x = x->next, d++) {
        uint64_t v;
        if (!json_uint(x, &v))
            return swax_error(SWAX_E_INPUT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
        e->shape[d] = (int64_t)v;
        if (swax_mul_size(&count, count, (size_t)v)) overflow = 1;
    }
    /* A zero dimension makes the product 0 even when the others overflow. */
    for (int i = 0; i < nd; i++)
        if (e->shape[i] == 0) count = 0, overflow = 0;
    if (overflow || swax_mul_size(&e->nbytes, count, k_dtypes[e->dtype].size))
        return swax_error(SWAX_E_INPUT, "%s: tensor '%s': shape size overflows", path, name);

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    uint64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(off->child, &b) ||
        !json_uint(off->child->next, &en))
        return swax_error(SWAX_E_INPUT, "%s: tensor '%s': \"data_offsets\" must be [begin, end] of non-negative integers", path, name);
    if (b > en || en > data_len)
        return swax_error(SWAX_E_INPUT, "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section is %zu bytes)", path,
                          name, (unsigned long long)b, (unsigned long long)en, data_len);
    if ((size_t)(en - b) != e->nbytes)
        return swax_error(SWAX_E_INPUT, "%s: tensor '%s': data_offsets span %llu bytes but %s shape needs %zu", path, name,
                          (unsigned long long)(en - b), k_dtypes[e->dtype].name, e->nbytes);
    e->offset = (size_t)b;
    return 0;
}

/* metadata_json holds the compact JSON text, a NUL, then for each pair a 0x01
 * byte, key, NUL, value, NUL; a 0x00 byte ends the list. */
static int build_metadata(const char *path, const cJSON *meta, char **out) {
    if (!cJSON_IsObject(meta)) return swax_error(SWAX_E_INPUT, "%s: \"__metadata__\" is not a JSON object", path);
    size_t extra = 1;
    for (const cJSON *x = meta->child; x; x = x->next) {
        if (!cJSON_IsString(x))
            return swax_error(SWAX_E_INPUT, "%s: __metadata__ value of \"%.64s\" is not a string", path, x->string);
        extra += 3 + strlen(x->string) + strlen(x->valuestring);
    }
    char *js = cJSON_PrintUnformatted(meta);
    if (!js) return swax_error(SWAX_E_NOMEM, "%s: cannot print __metadata__", path);
    size_t jl = strlen(js);
    char *buf = swax_calloc(jl + 1 + extra, 1, "safetensors metadata");
    if (!buf) {
        cJSON_free(js);
        return SWAX_E_NOMEM;
    }
    memcpy(buf, js, jl + 1);
    cJSON_free(js);
    char *p = buf + jl + 1;
    for (const cJSON *x = meta->child; x; x = x->next) {
        size_t kl = strlen(x->string), vl = strlen(x->valuestring);
        *p++ = 1;
        memcpy(p, x->string, kl + 1);
        p += kl + 1;
        memcpy(p, x->valuestring, vl + 1);
        p += vl + 1;
    }
    *p = 0;
    *out = buf;
    return 0;
}

/* Copies the data section so that every tensor is aligned to its element
 * size: tensors in offset order, each at a multiple of 8. */
static int realign(const char *path, SwaxSTFile *f, Span *spans) {
    size_t total = 0;
    for (int i = 0; i < f->n; i++) {
        const SwaxSTEntry *e = &f->entries[spans[i].idx];
        total = (total + 7) & ~(size_t)7;
        if (e->nbytes > SIZE_MAX - total - 8) return swax_error(SWAX_E_INPUT, "%s: data section too large", path);
        total += e->nbytes;
    }
    if (total == 0) total = 1;
    void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return swax_error(SWAX_E_NOMEM, "%s: cannot allocate %zu bytes to align the tensors", path, total);
    size_t pos = 0;
    for (int i = 0; i < f->n; i++) {
        SwaxSTEntry *e = &f->entries[spans[i].idx];
        pos = (pos + 7) & ~(size_t)7;
        if (e->nbytes) memcpy((uint8_t *)m + pos, f->data + e->offset, e->nbytes);
        e->offset = pos;
        pos += e->nbytes;
    }
    mprotect(m, total, PROT_READ);
    munmap(f->map, f->map_len);
    f->map = m;
    f->map_len = total;
    f->data = m;
    f->data_len = total;
    return 0;
}

static int st_open(const char *path, SwaxSTFile *f, cJSON **root_out, char **hbuf_out) {
    snprintf(f->path, sizeof f->path, "%s", path);
    void *map;
    size_t size;
    SWAX_TRY(swax_map_file(path, 8, "safetensors file", "the header length alone is 8", &map, &size));
    f->map = map;
    f->map_len = size;
    const uint8_t *p = map;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | p[i];
    if (hl > SWAX_ST_MAX_HEADER)
        return swax_error(SWAX_E_INPUT, "%s: safetensors header length %llu is over the %u-byte limit", path,
                          (unsigned long long)hl, SWAX_ST_MAX_HEADER);
    if (hl > size - 8)
        return swax_error(SWAX_E_INPUT, "%s: safetensors header length %llu is larger than the file (%zu bytes): truncated or not safetensors",
                          path, (unsigned long long)hl, size);
    if (hl < 2) return swax_error(SWAX_E_INPUT, "%s: safetensors header is too short (%llu bytes)", path, (unsigned long long)hl);
    f->data = p + 8 + hl;
    f->data_len = size - 8 - (size_t)hl;
    SWAX_TRY(header_prescan(path, p + 8, (size_t)hl));

    char *hbuf = swax_calloc((size_t)hl + 1, 1, "safetensors header");
    if (!hbuf) return SWAX_E_NOMEM;
    *hbuf_out = hbuf;
    memcpy(hbuf, p + 8, (size_t)hl);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(hbuf, &end, 1);
    if (!root) {
        size_t at = end && end >= hbuf && end <= hbuf + hl ? (size_t)(end - hbuf) : 0;
        return swax_error(SWAX_E_INPUT, "%s: safetensors header is not valid JSON (near byte %zu of %llu)", path, at,
                          (unsigned long long)hl);
    }
    *root_out = root;
    if (!cJSON_IsObject(root)) return swax_error(SWAX_E_INPUT, "%s: safetensors header is not a JSON object", path);

    /* Names: unique (including __metadata__ against itself). */
    size_t nkeys = 0;
    for (const cJSON *x = root->child; x; x = x->next) nkeys++;
    const cJSON *meta = NULL;
    const char **keys = swax_calloc(nkeys, sizeof *keys, "safetensors names");
    if (!keys) return SWAX_E_NOMEM;
    size_t k = 0;
    for (const cJSON *x = root->child; x; x = x->next) {
        if (!x->string) {
            free(keys);
            return swax_error(SWAX_E_INPUT, "%s: safetensors header has an entry without a name", path);
        }
        keys[k++] = x->string;
        if (strcmp(x->string, "__metadata__") == 0) meta = x;
    }
    qsort(keys, nkeys, sizeof *keys, cmp_str_ptr);
    for (size_t i = 1; i < nkeys; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            int rc = swax_error(SWAX_E_INPUT, "%s: duplicate name '%.200s' in the safetensors header", path, keys[i]);
            free(keys);
            return rc;
        }
    free(keys);

    size_t nt = nkeys - (meta ? 1 : 0);
    if (nt > (size_t)INT32_MAX) return swax_error(SWAX_E_INPUT, "%s: too many tensors", path);
    f->entries = swax_calloc(nt, sizeof *f->entries, "safetensors entries");
    if (!f->entries) return SWAX_E_NOMEM;
    f->n = 0;
    for (const cJSON *x = root->child; x; x = x->next) {
        if (x == meta) continue;
        SWAX_TRY(parse_entry(path, x, f->data_len, &f->entries[f->n]));
        f->n++;
    }
    if (meta) SWAX_TRY(build_metadata(path, meta, &f->metadata_json));

    /* No two tensors share a byte; and find the ones that are misaligned. */
    Span *spans = swax_calloc((size_t)f->n, sizeof *spans, "safetensors spans");
    if (!spans) return SWAX_E_NOMEM;
    int misaligned = 0;
    for (int i = 0; i < f->n; i++) {
        const SwaxSTEntry *e = &f->entries[i];
        spans[i] = (Span){e->offset, e->offset + e->nbytes, i};
        if (e->nbytes && ((uintptr_t)(f->data + e->offset)) % k_dtypes[e->dtype].size) misaligned = 1;
    }
    qsort(spans, (size_t)f->n, sizeof *spans, cmp_span);
    for (int i = 1; i < f->n; i++)
        if (spans[i].begin < spans[i - 1].end) {
            const SwaxSTEntry *a = &f->entries[spans[i - 1].idx], *b = &f->entries[spans[i].idx];
            int rc = swax_error(SWAX_E_INPUT, "%s: tensors '%s' [%zu, %zu) and '%s' [%zu, %zu) overlap", path, a->name, spans[i - 1].begin,
                                spans[i - 1].end, b->name, spans[i].begin, spans[i].end);
            free(spans);
            return rc;
        }
    int rc = misaligned ? realign(path, f, spans) : 0;
    free(spans);
    return rc;
}

int swax_st_open(const char *path, SwaxSTFile *f) {
    memset(f, 0, sizeof *f);
    cJSON *root = NULL;
    char *hbuf = NULL;
    int rc = st_open(path, f, &root, &hbuf);
    cJSON_Delete(root);
    free(hbuf);
    if (rc) swax_st_close(f);
    return rc;
}

const SwaxSTEntry *swax_st_find(const SwaxSTFile *f, const char *name) {
    if (!f || !name) return NULL;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
    return NULL;
}

const void *swax_st_data(const SwaxSTFile *f, const SwaxSTEntry *e) { return f->data + e->offset; }

const char *swax_st_meta(const SwaxSTFile *f, const char *key) {
    if (!f || !key || !f->metadata_json) return NULL;
    const char *p = f->metadata_json + strlen(f->metadata_json) + 1;
    while (*p == 1) {
        const char *k = p + 1;
        const char *v = k + strlen(k) + 1;
        if (strcmp(k, key) == 0) return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

void swax_st_close(SwaxSTFile *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    free(f->entries);
    free(f->metadata_json);
    memset(f, 0, sizeof *f);
}

/* ------------------------------------------------------------------ writer */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }
static void buf_u64(Buf *b, uint64_t v) {
    char t[32];
    int n = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    buf_put(b, t, (size_t)n);
}
/* A JSON string literal. */
static void buf_json_str(Buf *b, const char *s) {
    buf_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char t[2] = {'\\', (char)*c};
            buf_put(b, t, 2);
        } else if (*c < 0x20) {
            char t[8];
            snprintf(t, sizeof t, "\\u%04x", *c);
            buf_put(b, t, 6);
        } else {
            buf_put(b, (const char *)c, 1);
        }
    }
    buf_put(b, "\"", 1);
}

static int check_text(const char *path, const char *what, const char *s) {
    size_t n = strlen(s);
    if (utf8_check((const uint8_t *)s, n) != n)
        return swax_error(SWAX_E_USAGE, "%s: %s '%.64s' is not valid UTF-8", path, what, s);
    return 0;
}

static int write_impl(const char *path, const SwaxSTTensor *ts, int n, const char *const *meta, Buf *hb, int *order,
                      size_t *nbytes, size_t *offs, const char **names) {
    /* Check the tensors. */
    for (int i = 0; i < n; i++) {
        const SwaxSTTensor *t = &ts[i];
        if (!t->name) return swax_error(SWAX_E_USAGE, "%s: tensor %d has no name", path, i);
        if (strlen(t->name) >= SWAX_ST_MAX_NAME)
            return swax_error(SWAX_E_USAGE, "%s: tensor name '%.64s...' is over %d bytes", path, t->name, SWAX_ST_MAX_NAME - 1);
        if (strcmp(t->name, "__metadata__") == 0) return swax_error(SWAX_E_USAGE, "%s: '__metadata__' is not a tensor name", path);
        SWAX_TRY(check_text(path, "tensor name", t->name));
        if (!dtype_ok(t->dtype)) return swax_error(SWAX_E_USAGE, "%s: tensor '%s': bad dtype %d", path, t->name, (int)t->dtype);
        if (t->ndim < 0 || t->ndim > SWAX_ST_MAX_DIMS)
            return swax_error(SWAX_E_USAGE, "%s: tensor '%s': ndim %d (0 to %d)", path, t->name, t->ndim, SWAX_ST_MAX_DIMS);
        size_t count = 1;
        int zero = 0, overflow = 0;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || (double)t->shape[d] > ST_MAX_INT)
                return swax_error(SWAX_E_USAGE, "%s: tensor '%s': shape[%d] = %lld", path, t->name, d, (long long)t->shape[d]);
            if (t->shape[d] == 0) zero = 1;
            if (swax_mul_size(&count, count, (size_t)t->shape[d])) overflow = 1;
        }
        if (zero) count = 0, overflow = 0;
        if (overflow || swax_mul_size(&nbytes[i], count, k_dtypes[t->dtype].size))
            return swax_error(SWAX_E_USAGE, "%s: tensor '%s': size overflows", path, t->name);
        if (nbytes[i] && !t->data) return swax_error(SWAX_E_USAGE, "%s: tensor '%s': no data", path, t->name);
        names[i] = t->name;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return swax_error(SWAX_E_USAGE, "%s: duplicate tensor name '%s'", path, names[i]);

    /* Layout: decreasing element size, stable; contiguous. */
    size_t k = 0;
    static const size_t sizes[] = {8, 4, 2, 1};
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < n; i++)
            if (k_dtypes[ts[i].dtype].size == sizes[s]) order[k++] = i;
    SWAX_ASSERT(k == (size_t)n);
    size_t pos = 0;
    for (int j = 0; j < n; j++) {
        int i = order[j];
        offs[i] = pos;
        if (nbytes[i] > SIZE_MAX - pos || (double)(pos + nbytes[i]) > ST_MAX_INT)
            return swax_error(SWAX_E_USAGE, "%s: tensors too large", path);
        pos += nbytes[i];
    }

    /* Header. */
    buf_str(hb, "{");
    int first = 1;
    if (meta && meta[0]) {
        int nm = 0;
        while (meta[nm]) nm += meta[nm + 1] ? 2 : 1;
        if (nm % 2) return swax_error(SWAX_E_USAGE, "%s: metadata key '%s' has no value", path, meta[nm - 1]);
        for (int i = 0; i < nm; i += 2) {
            SWAX_TRY(check_text(path, "metadata key", meta[i]));
            SWAX_TRY(check_text(path, "metadata value", meta[i + 1]));
            for (int j = 0; j < i; j += 2)
                if (strcmp(meta[i], meta[j]) == 0) return swax_error(SWAX_E_USAGE, "%s: duplicate metadata key '%s'", path, meta[i]);
        }
        buf_str(hb, "\"__metadata__\":{");
        for (int i = 0; i < nm; i += 2) {
            if (i) buf_str(hb, ",");
            buf_json_str(hb, meta[i]);
            buf_str(hb, ":");
            buf_json_str(hb, meta[i + 1]);
        }
        buf_str(hb, "}");
        first = 0;
    }
    for (int i = 0; i < n; i++) {
        const SwaxSTTensor *t = &ts[i];
        if (!first) buf_str(hb, ",");
        first = 0;
        buf_json_str(hb, t->name);
        buf_str(hb, ":{\"dtype\":\"");
        buf_str(hb, k_dtypes[t->dtype].name);
        buf_str(hb, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) buf_str(hb, ",");
            buf_u64(hb, (uint64_t)t->shape[d]);
        }
        buf_str(hb, "],\"data_offsets\":[");
        buf_u64(hb, offs[i]);
        buf_str(hb, ",");
        buf_u64(hb, offs[i] + nbytes[i]);
        buf_str(hb, "]}");
    }
    buf_str(hb, "}");
    while (!hb->oom && (8 + hb->len) % 8) buf_str(hb, " ");
    if (hb->oom) return swax_error(SWAX_E_NOMEM, "%s: cannot build the safetensors header", path);
    if (hb->len > SWAX_ST_MAX_HEADER) return swax_error(SWAX_E_USAGE, "%s: safetensors header over %u bytes", path, SWAX_ST_MAX_HEADER);

    /* File. */
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hb->len >> (8 * i));
    SwaxAtomicFile af;
    SWAX_TRY(swax_atomic_open(&af, path));
    int rc = swax_atomic_write(&af, len8, 8);
    if (!rc) rc = swax_atomic_write(&af, hb->p, hb->len);
    for (int j = 0; j < n && !rc; j++) rc = swax_atomic_write(&af, ts[order[j]].data, nbytes[order[j]]);
    if (rc) {
        swax_atomic_abort(&af);
        return rc;
    }
    return swax_atomic_commit(&af);
}

int swax_st_write(const char *path, const SwaxSTTensor *ts, int n, const char *const *meta) {
    if (!path) return swax_error(SWAX_E_USAGE, "safetensors write: no path");
    if (n < 0 || (n > 0 && !ts)) return swax_error(SWAX_E_USAGE, "%s: bad tensor list (n = %d)", path, n);
    Buf hb = {0};
    int *order = swax_calloc((size_t)n, sizeof *order, "safetensors order");
    size_t *nbytes = swax_calloc((size_t)n, sizeof *nbytes, "safetensors sizes");
    size_t *offs = swax_calloc((size_t)n, sizeof *offs, "safetensors offsets");
    const char **names = swax_calloc((size_t)n, sizeof *names, "safetensors names");
    int rc = (order && nbytes && offs && names) ? write_impl(path, ts, n, meta, &hb, order, nbytes, offs, names) : SWAX_E_NOMEM;
    free(order);
    free(nbytes);
    free(offs);
    free(names);
    free(hb.p);
    return rc;
}
