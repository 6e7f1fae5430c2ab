/* swa.c — instantiates swa_impl.inc for float and double. */
#include "ops/cpu/swa.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#define REAL float
#define SFX f
#define EXP expf
#define LOG logf
#define SQRT sqrtf
#include "swa_impl.inc"
#undef REAL
#undef SFX
#undef EXP
#undef LOG
#undef SQRT

#define REAL double
#define SFX d
#define EXP exp
#define LOG log
#define SQRT sqrt
#include "swa_impl.inc"
