/* gdn_cell.h — the Gated DeltaNet cell (SPEC §2, pattern letter D) for one
 * (sequence, head), in two forms that compute the same function:
 *   chunkwise  (training, prefill): the WY / UT-transform representation of the
 *              products of (I − β k kᵀ) inside a chunk of L tokens, state carried
 *              between chunks; chunk size L at run time (speed, not the function)
 *   recurrent  (decode, the test oracle): one token at a time
 * and the exact backward of the chunkwise form. Each is compiled for float (_f)
 * and double (_d): the double versions let the tests hold the forms to rounding.
 *
 * Per token t (S is DV×DK, row-major (dv, dk)):
 *   S_t = α_t S_{t−1} (I − β_t k_t k_tᵀ) + β_t v_t k_tᵀ,   o_t = S_t q_t
 * with α_t = exp(g_t), g_t <= 0. q and k arrive L2-normalised (q also scaled by
 * 1/√DK) — the normalisation, the short convolutions and the gates live in
 * gdn_layer.c. Document starts reset the state (S ← 0 before the token); chunks
 * never cross them (the mLSTM's chunk rule, swax_mlstm_chunk_starts). */
#ifndef SWAX_GDN_CELL_H
#define SWAX_GDN_CELL_H

#include <stddef.h>
#include <stdint.h>

#define SWAX_GDN_DECL(REAL, SFX)                                                              \
    typedef struct {                                                                          \
        int T, dk, dv, L;                                                                     \
        const REAL *q; long ldq;          /* (T, ldq) head slice, normalised and scaled */    \
        const REAL *k; long ldk;          /* normalised */                                    \
        const REAL *v; long ldv;                                                              \
        const REAL *beta, *g; long ldg;   /* (T) with stride ldg: β ∈ (0,1), g = log α */     \
        const uint8_t *doc_start;         /* (T) or NULL */                                   \
        const REAL *S0;                   /* (dv, dk) initial state; NULL = zeros */          \
        REAL *o; long ldo;                /* out (T, ldo) */                                  \
        REAL *S1;                         /* final state (dv, dk), or NULL; may alias S0 */   \
        REAL *Ss; int max_chunks;         /* per chunk: its start state (backward), or NULL */\
        /* backward: in dout (ldo); out dq, dk_, dv_ (ld*), dbeta, dg (ldg); overwritten */   \
        const REAL *dout;                                                                     \
        REAL *dq, *dk_, *dv_, *dbeta, *dg;                                                    \
    } GdnArgs_##SFX;                                                                          \
    int swax_gdn_chunkwise_fwd_##SFX(GdnArgs_##SFX *a);                                       \
    int swax_gdn_chunkwise_bwd_##SFX(GdnArgs_##SFX *a);                                       \
    /* The recurrence over all T tokens (the oracle); S0/S1 as above. */                      \
    void swax_gdn_recurrent_fwd_##SFX(GdnArgs_##SFX *a);                                      \
    /* One token; state S (dv, dk) updated in place; reset=1 zeroes it first. */              \
    void swax_gdn_step_##SFX(int dk, int dv, const REAL *q, const REAL *k, const REAL *v,     \
                             REAL beta, REAL g, int reset, REAL *S, REAL *o);

SWAX_GDN_DECL(float, f)
SWAX_GDN_DECL(double, d)

#endif
