/* gdn_cell.c — instantiates gdn_cell_impl.inc for float and double. */
#include "ops/cpu/gdn_cell.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/cpu/cell_mm.h"
#include "ops/cpu/mlstm_cell.h" /* the chunk rule */

#define REAL float
#define SFX f
#define EXP expf
#define GEMM cblas_sgemm
#include "gdn_cell_impl.inc"
#undef REAL
#undef SFX
#undef EXP
#undef GEMM

#define REAL double
#define SFX d
#define EXP exp
#define GEMM cblas_dgemm
#include "gdn_cell_impl.inc"
