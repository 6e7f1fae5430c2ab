/* npy.h — NumPy .npy files (format version 1.0), for exchanging arrays with
 * Python (reference outputs, test fixtures). See docs/formats.md. */
#ifndef SWAX_IO_NPY_H
#define SWAX_IO_NPY_H

#include <stdint.h>

#include "io/safetensors.h" /* SwaxDType */

/* Writes a C-order little-endian array, atomically. dtype: SWAX_DT_F32 ('<f4'),
 * SWAX_DT_F64 ('<f8') or SWAX_DT_I32 ('<i4'); 0 <= ndim <= 8. The header is
 * padded with spaces and a newline so that the data starts at a multiple of
 * 64, as NumPy does. */
int swax_npy_write(const char *path, SwaxDType dtype, int ndim, const int64_t *shape, const void *data);

/* Reads '<f4' or '<f8' (converted to float), C order only, ndim <= 8; versions
 * 1.0, 2.0 and 3.0 of the format are accepted. *data is malloc'd (free() it;
 * never NULL on success, even for an empty array). The data must fill the file
 * exactly. On failure nothing is returned and the error names the file. */
int swax_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[8]);

#endif
