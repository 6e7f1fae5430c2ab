/* npy.c — see npy.h and docs/formats.md. */
#include "io/npy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"

#define NPY_MAX_HEADER (1u << 20) /* far above anything NumPy writes for one array */

static const uint8_t k_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* ------------------------------------------------------------------ writer */

int swax_npy_write(const char *path, SwaxDType dtype, int ndim, const int64_t *shape, const void *data) {
    const char *descr;
    size_t isz;
    switch (dtype) {
    case SWAX_DT_F32: descr = "<f4", isz = 4; break;
    case SWAX_DT_F64: descr = "<f8", isz = 8; break;
    case SWAX_DT_I32: descr = "<i4", isz = 4; break;
    default: return swax_error(SWAX_E_USAGE, "%s: .npy writer supports F32, F64 and I32, not %s", path, swax_dtype_name(dtype));
    }
    if (ndim < 0 || ndim > 8 || (ndim > 0 && !shape))
        return swax_error(SWAX_E_USAGE, "%s: .npy writer: bad ndim %d", path, ndim);
    char hdr[512];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    size_t count = 1;
    int zero = 0, overflow = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return swax_error(SWAX_E_USAGE, "%s: .npy writer: shape[%d] = %lld", path, d, (long long)shape[d]);
        if (shape[d] == 0) zero = 1;
        if (swax_mul_size(&count, count, (size_t)shape[d])) overflow = 1;
        len += snprintf(hdr + len, sizeof hdr - (size_t)len, "%s%lld", d ? ", " : "", (long long)shape[d]);
    }
    if (zero) count = 0, overflow = 0;
    size_t nbytes;
    if (overflow || swax_mul_size(&nbytes, count, isz)) return swax_error(SWAX_E_USAGE, "%s: .npy writer: size overflows", path);
    if (nbytes && !data) return swax_error(SWAX_E_USAGE, "%s: .npy writer: no data", path);
    len += snprintf(hdr + len, sizeof hdr - (size_t)len, "%s), }", ndim == 1 ? "," : "");
    /* Pad with spaces, end with '\n', so that 10 + header length is a multiple of 64. */
    size_t total = ((size_t)10 + (size_t)len + 1 + 63) / 64 * 64;
    size_t hlen = total - 10;
    SWAX_ASSERT(hlen < sizeof hdr && hlen <= 65535);
    memset(hdr + len, ' ', hlen - (size_t)len - 1);
    hdr[hlen - 1] = '\n';

    uint8_t pre[10];
    memcpy(pre, k_magic, 6);
    pre[6] = 1, pre[7] = 0;
    pre[8] = (uint8_t)(hlen & 0xFF), pre[9] = (uint8_t)(hlen >> 8);
    SwaxAtomicFile af;
    SWAX_TRY(swax_atomic_open(&af, path));
    int rc = swax_atomic_write(&af, pre, sizeof pre);
    if (!rc) rc = swax_atomic_write(&af, hdr, hlen);
    if (!rc) rc = swax_atomic_write(&af, data, nbytes);
    if (rc) {
        swax_atomic_abort(&af);
        return rc;
    }
    return swax_atomic_commit(&af);
}

/* ------------------------------------------------------------------ reader */

typedef struct {
    const char *p, *e;
} Cur;

static void skip_ws(Cur *c) {
    while (c->p < c->e && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}
static int eat(Cur *c, char ch) {
    skip_ws(c);
    if (c->p < c->e && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}
/* A quoted string ('...' or "..."), no escapes. */
static int get_str(Cur *c, const char **s, size_t *n) {
    skip_ws(c);
    if (c->p >= c->e || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    const char *start = c->p;
    while (c->p < c->e && *c->p != q) {
        if (*c->p == '\\') return 0;
        c->p++;
    }
    if (c->p >= c->e) return 0;
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return 1;
}
static int get_word(Cur *c, const char *w) {
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->e - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}
static int get_int(Cur *c, int64_t *v) {
    skip_ws(c);
    if (c->p >= c->e || *c->p < '0' || *c->p > '9') return 0;
    int64_t x = 0;
    while (c->p < c->e && *c->p >= '0' && *c->p <= '9') {
        if (x > (INT64_MAX - 9) / 10) return 0;
        x = x * 10 + (*c->p++ - '0');
    }
    if (c->p < c->e && *c->p == 'L') c->p++; /* Python 2 long */
    *v = x;
    return 1;
}

static int str_is(const char *s, size_t n, const char *w) { return strlen(w) == n && memcmp(s, w, n) == 0; }

/* Parses the header dict. Returns 0 or an error message (static). */
static const char *parse_header(Cur *c, size_t *isz, int *ndim, int64_t shape[8]) {
    int have_descr = 0, have_fo = 0, have_shape = 0;
    if (!eat(c, '{')) return "header is not a dict";
    for (;;) {
        if (eat(c, '}')) break;
        const char *k;
        size_t kn;
        if (!get_str(c, &k, &kn)) return "header: expected a quoted key";
        if (!eat(c, ':')) return "header: expected ':'";
        if (str_is(k, kn, "descr")) {
            const char *v;
            size_t vn;
            if (have_descr++) return "header: duplicate 'descr'";
            if (!get_str(c, &v, &vn)) return "header: 'descr' is not a simple type string";
            if (str_is(v, vn, "<f4")) *isz = 4;
            else if (str_is(v, vn, "<f8")) *isz = 8;
            else return "unsupported dtype (only '<f4' and '<f8' can be read)";
        } else if (str_is(k, kn, "fortran_order")) {
            if (have_fo++) return "header: duplicate 'fortran_order'";
            if (get_word(c, "True")) return "Fortran-order arrays are not supported (C order only)";
            if (!get_word(c, "False")) return "header: 'fortran_order' is not True or False";
        } else if (str_is(k, kn, "shape")) {
            if (have_shape++) return "header: duplicate 'shape'";
            if (!eat(c, '(')) return "header: 'shape' is not a tuple";
            int nd = 0;
            for (;;) {
                if (eat(c, ')')) break;
                int64_t v;
                if (!get_int(c, &v)) return "header: 'shape' holds something other than non-negative integers";
                if (nd == 8) return "more than 8 dimensions";
                shape[nd++] = v;
                if (eat(c, ',')) continue;
                if (eat(c, ')')) break;
                return "header: malformed 'shape' tuple";
            }
            *ndim = nd;
        } else {
            return "header: unknown key";
        }
        if (eat(c, ',')) continue;
        if (eat(c, '}')) break;
        return "header: expected ',' or '}'";
    }
    skip_ws(c);
    if (c->p != c->e) return "header: trailing characters after the dict";
    if (!have_descr || !have_fo || !have_shape) return "header: missing 'descr', 'fortran_order' or 'shape'";
    return NULL;
}

static int npy_read(FILE *fp, const char *path, float **data, int *ndim, int64_t shape[8]) {
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) return swax_error(SWAX_E_INPUT, "%s: not a regular file", path);
    size_t fsize = (size_t)st.st_size;
    uint8_t pre[12];
    if (fsize < 10 || fread(pre, 1, 10, fp) != 10) return swax_error(SWAX_E_INPUT, "%s: truncated .npy file (%zu bytes)", path, fsize);
    if (memcmp(pre, k_magic, 6) != 0) return swax_error(SWAX_E_INPUT, "%s: not a .npy file (bad magic)", path);
    size_t hlen, pos;
    if (pre[6] == 1 && pre[7] == 0) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        pos = 10;
    } else if ((pre[6] == 2 || pre[6] == 3) && pre[7] == 0) {
        if (fsize < 12 || fread(pre + 10, 1, 2, fp) != 2) return swax_error(SWAX_E_INPUT, "%s: truncated .npy file", path);
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        pos = 12;
    } else {
        return swax_error(SWAX_E_INPUT, "%s: unsupported .npy version %d.%d", path, pre[6], pre[7]);
    }
    if (hlen > NPY_MAX_HEADER) return swax_error(SWAX_E_INPUT, "%s: .npy header length %zu is implausible", path, hlen);
    if (hlen > fsize - pos)
        return swax_error(SWAX_E_INPUT, "%s: .npy header length %zu is past the end of the file (%zu bytes)", path, hlen, fsize);
    char *hdr = swax_calloc(hlen + 1, 1, ".npy header");
    if (!hdr) return SWAX_E_NOMEM;
    if (fread(hdr, 1, hlen, fp) != hlen) {
        free(hdr);
        return swax_error(SWAX_E_INPUT, "%s: cannot read the .npy header", path);
    }
    pos += hlen;
    size_t isz = 0;
    int nd = 0;
    int64_t sh[8] = {0};
    Cur c = {hdr, hdr + hlen};
    const char *msg = parse_header(&c, &isz, &nd, sh);
    free(hdr);
    if (msg) return swax_error(SWAX_E_INPUT, "%s: %s", path, msg);

    size_t count = 1;
    int zero = 0, overflow = 0;
    for (int d = 0; d < nd; d++) {
        if (sh[d] == 0) zero = 1;
        if ((uint64_t)sh[d] > SIZE_MAX || swax_mul_size(&count, count, (size_t)sh[d])) overflow = 1;
    }
    if (zero) count = 0, overflow = 0;
    size_t nbytes;
    if (overflow || swax_mul_size(&nbytes, count, isz)) return swax_error(SWAX_E_INPUT, "%s: .npy shape size overflows", path);
    if (fsize - pos != nbytes)
        return swax_error(SWAX_E_INPUT, "%s: .npy data is %zu bytes but the shape needs %zu (%s)", path, fsize - pos, nbytes,
                          fsize - pos < nbytes ? "truncated" : "trailing bytes");

    float *out = swax_calloc(count, sizeof(float), path);
    if (!out) return SWAX_E_NOMEM;
    if (isz == 4) {
        if (count && fread(out, 4, count, fp) != count) {
            free(out);
            return swax_error(SWAX_E_INPUT, "%s: .npy data read failed", path);
        }
    } else {
        double buf[1024];
        for (size_t i = 0; i < count;) {
            size_t m = count - i < 1024 ? count - i : 1024;
            if (fread(buf, 8, m, fp) != m) {
                free(out);
                return swax_error(SWAX_E_INPUT, "%s: .npy data read failed", path);
            }
            for (size_t j = 0; j < m; j++) out[i + j] = (float)buf[j];
            i += m;
        }
    }
    *data = out;
    *ndim = nd;
    for (int d = 0; d < 8; d++) shape[d] = d < nd ? sh[d] : 0;
    return 0;
}

int swax_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[8]) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return swax_error(SWAX_E_INPUT, "%s: cannot open: %s", path, strerror(errno));
    int rc = npy_read(fp, path, data, ndim, shape);
    fclose(fp);
    return rc;
}
