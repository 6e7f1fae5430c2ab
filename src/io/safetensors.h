/* safetensors.h — read and write the safetensors format (docs/formats.md).
 *
 * File layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * (name -> {"dtype", "shape", "data_offsets": [begin, end]}, optional
 * "__metadata__": {string: string}), then the data section; offsets are
 * relative to the start of the data section.
 *
 * The reader mmaps the file read-only and validates the whole header before
 * returning; a truncated, corrupt or hostile file gives SWAX_E_INPUT with a
 * message naming the file and the problem. Every tensor's data pointer is
 * aligned to its element size: when a file's layout does not give that
 * (a header not padded to 8 bytes, odd offsets), the data section is copied
 * into a private aligned buffer and `data`, `data_len` and the entries'
 * `offset` describe that copy instead of the file.
 */
#ifndef SWAX_IO_SAFETENSORS_H
#define SWAX_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SWAX_DT_F32,
    SWAX_DT_F64,
    SWAX_DT_I32,
    SWAX_DT_I64,
    SWAX_DT_U8,
    SWAX_DT_U16,
    SWAX_DT_BF16,
    SWAX_DT_F16
} SwaxDType;

/* Bytes per element; 0 for a value outside the enum. */
size_t swax_dtype_size(SwaxDType t);
/* "F32", "F64", "I32", "I64", "U8", "U16", "BF16", "F16" (as in safetensors); "?" otherwise. */
const char *swax_dtype_name(SwaxDType t);

#define SWAX_ST_MAX_NAME 256   /* names are at most 255 bytes */
#define SWAX_ST_MAX_DIMS 8
#define SWAX_ST_MAX_HEADER (100u * 1000u * 1000u) /* bytes, as the reference library */

typedef struct {
    char name[SWAX_ST_MAX_NAME];
    SwaxDType dtype;
    int ndim;
    int64_t shape[SWAX_ST_MAX_DIMS];
    size_t offset; /* into the data section */
    size_t nbytes;
} SwaxSTEntry;

typedef struct {
    char path[1024];
    void *map;
    size_t map_len;
    const uint8_t *data;   /* the data section */
    size_t data_len;
    int n;                 /* tensors, in header order (without __metadata__) */
    SwaxSTEntry *entries;
    char *metadata_json;   /* __metadata__ as compact JSON text, or NULL if the file has none */
} SwaxSTFile;

/* mmap read-only; validates everything. On failure *f is zeroed (closing it is a no-op). */
int swax_st_open(const char *path, SwaxSTFile *f);
/* NULL if absent. */
const SwaxSTEntry *swax_st_find(const SwaxSTFile *f, const char *name);
const void *swax_st_data(const SwaxSTFile *f, const SwaxSTEntry *e);
/* Value of `key` in __metadata__, NULL if absent; the pointer is valid until close. */
const char *swax_st_meta(const SwaxSTFile *f, const char *key);
void swax_st_close(SwaxSTFile *f);

typedef struct {
    const char *name;
    SwaxDType dtype;
    int ndim;
    int64_t shape[SWAX_ST_MAX_DIMS];
    const void *data; /* product(shape) * dtype size bytes, little-endian */
} SwaxSTTensor;

/* Writes atomically (temp + fsync + rename). The header lists the tensors in
 * the given order; it is padded with spaces so that the data section starts
 * at a multiple of 8. The data is contiguous with no gaps (as the reference
 * library requires), laid out by decreasing element size (stable), so every
 * tensor is aligned to its element size.
 * meta: NULL or a NULL-terminated list key0, value0, key1, value1, ..., NULL.
 * Bad arguments (duplicate or over-long names, bad shapes) give SWAX_E_USAGE. */
int swax_st_write(const char *path, const SwaxSTTensor *ts, int n, const char *const *meta);

#endif
