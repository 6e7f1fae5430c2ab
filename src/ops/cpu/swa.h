/* swa.h — sliding-window softmax attention for one (sequence, head), O(T·w·d).
 * Query i sees key j iff lo_i <= j <= i with lo_i = max(i - w + 1, doc_lo[i]),
 * doc_lo[i] = the start of i's document (0 without document masking).
 * Float (_f) and double (_d) versions; q and k arrive already rotated (RoPE). */
#ifndef SWAX_SWA_H
#define SWAX_SWA_H

#define SWAX_SWA_DECL(REAL, SFX)                                                         \
    typedef struct {                                                                     \
        int T, dh, window;                                                               \
        const REAL *q; long ldq;                                                         \
        const REAL *k; long ldk;                                                         \
        const REAL *v; long ldv;                                                         \
        const int *doc_lo;        /* (T) or NULL */                                      \
        REAL *out; long ldo;      /* (T, ldo) */                                         \
        REAL *lse; long ldl;      /* (T) stride ldl: log-sum-exp of the scaled scores */  \
        const REAL *dout;         /* backward in (ldo) */                                \
        REAL *dq, *dk, *dv;       /* backward out (ldq/ldk/ldv), overwritten */           \
    } SwaArgs_##SFX;                                                                     \
    void swax_swa_fwd_##SFX(SwaArgs_##SFX *a);                                           \
    void swax_swa_bwd_##SFX(SwaArgs_##SFX *a);                                           \
    /* dense masked attention over the full T×T score matrix: the test oracle */         \
    void swax_swa_dense_fwd_##SFX(SwaArgs_##SFX *a);

SWAX_SWA_DECL(float, f)
SWAX_SWA_DECL(double, d)

/* The first key query i sees: max(i - w + 1, doc_lo[i], 0) */
static inline int swax_swa_lo(const SwaArgs_f *a, int i) {
    int lo = i - a->window + 1;
    if (lo < 0) lo = 0;
    if (a->doc_lo && a->doc_lo[i] > lo) lo = a->doc_lo[i];
    return lo;
}

/* The fast versions (swa_blocked.c); same function. They run the tiled kernels (swa_tiled.c) where
 * swax_swa_tiled_ok(dh) and swax_swa_tiled_native(), else the BLAS blocks; SWAX_SWA=blas (or
 * =tiled, where swax_swa_tiled_runs()) chooses. Both are callable directly (the tests hold each
 * to the reference; the tiled ones only where swax_swa_tiled_runs()). */
void swax_swa_fwd_blocked_f(SwaArgs_f *a);
void swax_swa_bwd_blocked_f(SwaArgs_f *a);
int swax_swa_tiled_ok(int dh); /* dh a multiple of 16, at most 256 */
int swax_swa_tiled_runs(void);   /* this CPU can run the tiled kernels as this build compiled them */
int swax_swa_tiled_native(void); /* ... and they are AVX-512 code: the default path */
void swax_swa_fwd_tiled_f(SwaArgs_f *a);
void swax_swa_bwd_tiled_f(SwaArgs_f *a);
void swax_swa_fwd_blas_f(SwaArgs_f *a);
void swax_swa_bwd_blas_f(SwaArgs_f *a);

/* RoPE, rotate-half, angles in float64: rows x[t*ld + h*dh ...] for t < T,
 * heads h < H, position pos0 + t. inverse = 1 rotates back (the backward). */
void swax_rope_f(float *x, long ld, int T, int H, int dh, long pos0, double theta, int inverse);
void swax_rope_d(double *x, long ld, int T, int H, int dh, long pos0, double theta, int inverse);
/* swax_rope_* in its two steps, for a caller that keeps the table: the (cos, sin) table of
 * positions pos0 .. pos0 + T - 1 (T * dh values; any prefix of it serves fewer positions), and
 * the rotation from it. */
void swax_rope_table_f(float *cs, int T, int dh, long pos0, double theta);
void swax_rope_table_d(double *cs, int T, int dh, long pos0, double theta);
void swax_rope_apply_f(float *x, long ld, int T, int H, int dh, const float *cs, int inverse);
void swax_rope_apply_d(double *x, long ld, int T, int H, int dh, const double *cs, int inverse);

#endif
