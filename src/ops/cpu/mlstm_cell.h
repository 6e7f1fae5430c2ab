/* mlstm_cell.h — the mLSTM cell (SPEC §2) for one (sequence, head), in three
 * forms that compute the same function:
 *   chunkwise  (training, prefill): O(T·L·d + T·dk·dv), chunk size L at run time
 *   recurrent  (decode): one token, state (C, n, m)
 *   parallel   (test oracle): O(T²·d)
 * and the exact backward of the chunkwise form — including the gradient through
 * the stabiliser m and the normaliser max(|den|, e^-m), which public kernels
 * drop. Each is compiled for float (_f) and double (_d): the double versions let
 * the tests hold the forms to 1e-13.
 *
 * Gates arrive already soft-capped: ig = ĩ (input-gate pre-activation), lf =
 * logsigmoid(f̃). q is scaled by 1/sqrt(dk) inside. Document starts reset the
 * state (C, n <- 0, m <- 0) just before the token; chunks never cross them. */
#ifndef SWAX_MLSTM_CELL_H
#define SWAX_MLSTM_CELL_H

#include <stddef.h>
#include <stdint.h>

#define SWAX_MLSTM_DECL(REAL, SFX)                                                           \
    typedef struct {                                                                         \
        int T, dk, dv, L;                                                                    \
        const REAL *q; long ldq;          /* (T, ldq) head slice */                          \
        const REAL *k; long ldk;                                                             \
        const REAL *v; long ldv;                                                             \
        const REAL *ig, *lf; long ldg;    /* (T) with stride ldg */                          \
        const uint8_t *doc_start;         /* (T) or NULL */                                  \
        REAL eps;                                                                            \
        const REAL *C0, *n0; REAL m0;     /* initial state; C0 NULL = zeros, m0 ignored */   \
        REAL *h; long ldh;                /* out (T, ldh) */                                 \
        REAL *C1, *n1, *m1;               /* final state, or NULL */                         \
        /* saved for backward (NULL in inference) */                                         \
        REAL *m_t, *den_t; int *arg_t; long lds; /* per token, stride lds */                 \
        REAL *Cs, *ns, *ms; int *arg_end; int max_chunks; /* per chunk: start state, m' arg */\
        /* backward: in dh (ldh); out dq, dk, dv (ld*), dig, dlf (ldg); overwritten */       \
        const REAL *dh;                                                                      \
        REAL *dq, *dk_, *dv_, *dig, *dlf;                                                    \
    } MlstmArgs_##SFX;                                                                       \
    int swax_mlstm_chunkwise_fwd_##SFX(MlstmArgs_##SFX *a);                                  \
    void swax_mlstm_chunkwise_bwd_##SFX(MlstmArgs_##SFX *a);                                 \
    void swax_mlstm_parallel_fwd_##SFX(MlstmArgs_##SFX *a);                                 \
    /* One token; state (C dk×dv, n dk, m) updated in place; reset=1 zeroes it first. */     \
    void swax_mlstm_step_##SFX(int dk, int dv, const REAL *q, const REAL *k, const REAL *v,  \
                               REAL ig, REAL lf, int reset, REAL eps, REAL *C, REAL *n,      \
                               REAL *m, REAL *h);

SWAX_MLSTM_DECL(float, f)
SWAX_MLSTM_DECL(double, d)

/* Number of chunks the chunkwise form uses (chunks end at L tokens or a document start). */
int swax_mlstm_num_chunks(int T, int L, const uint8_t *doc_start);
/* The same chunks' start positions into starts (room for num_chunks); returns their count. */
int swax_mlstm_chunk_starts(int T, int L, const uint8_t *doc_start, int *starts);

#endif
