/* infer_gdn.h — the Gated DeltaNet layer (pattern D) in inference: chunkwise
 * prefill with the state carried in and out, the recurrent step in decode.
 * infer.c owns the state block and the projections; this file owns what lies
 * between them, for a model on the CPU (a device model's layers go to its
 * table's infer_gdn slot, ops.h, the same arithmetic over the same state).
 * State of one layer and sequence (floats):
 *   S (NH, dv, dk), then the convolution history (3, 2D): the q, k, v conv
 *   inputs of the last 3 positions, oldest first (zeros before position 0). */
#ifndef SWAX_INFER_GDN_H
#define SWAX_INFER_GDN_H

#include <stddef.h>

#include "model/model.h"

size_t swax_gdn_state_floats(const SwaxModel *m);
/* scratch floats per row that swax_gdn_infer needs */
size_t swax_gdn_scratch_floats(const SwaxModel *m);

/* Block l's middle on R rows: mix (R, ldm) holds the input projections. Prefill
 * (prefill = 1): the rows are positions pos0.. of one sequence, state[0] its
 * state; chunks are aligned to absolute multiples of L (so where a prefill is
 * split does not move them). Decode: row r is the next token of the sequence
 * whose state is state[r]. Writes y (R, D) (the input of W_o). Returns 0, or
 * -1 when the chunk scratch cannot be allocated. */
int swax_gdn_infer(const SwaxModel *m, int l, int R, const float *mix, long ldm, float *const *state, int prefill,
                   long pos0, int L, float *scratch, float *y);

#endif
