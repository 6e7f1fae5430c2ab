/* gdn_cell.c — instantiates gdn_cell_impl.inc for float and double. */
#include "ops/cpu/gdn_cell.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/cpu/mlstm_cell.h" /* the chunk rule */

#define REAL float
#define SFX f
#define EXP expf
#include "gdn_cell_impl.inc"
#undef REAL
#undef SFX
#undef EXP

#define REAL double
#define SFX d
#define EXP exp
#include "gdn_cell_impl.inc"
