/* gdn_layer.h — the CPU Gated DeltaNet layer pieces between the input and the
 * output projections (ops.h: gdn_fwd / gdn_bwd), and the row-level pieces that
 * inference (src/infer/) runs with a convolution history instead of a batch. */
#ifndef SWAX_GDN_LAYER_H
#define SWAX_GDN_LAYER_H

#include "ops/ops.h"

void swax_cpu_gdn_fwd(SwaxGdnCall *c);
void swax_cpu_gdn_bwd(SwaxGdnCall *c);

/* One row: x[j] (j = 0..3) points at the projection row of position t − j (its
 * first 2D columns are the conv inputs) or is NULL (before the sequence or the
 * document). Writes xc (2D, or NULL), qkv (2D), rqk (2NH), beta, g (NH); the
 * gate pre-activations are read from x[0] + 3D. */
void swax_gdn_prep_row(const float *const x[4], int NH, int dk, int dv, const float *conv_w, const float *A_log,
                       const float *dt_bias, float *xc, float *qkv, float *rqk, float *beta, float *g);
/* One row of the gated RMSNorm: y (D) = RMSNorm_head(o)·w ⊙ silu(gate); orstd (NH) or NULL. */
void swax_gdn_out_row(const float *o, const float *gate, const float *w, int NH, int dv, float eps, float *y,
                      float *orstd);

#endif
