/* swa_blocked.c — the fast CPU sliding-window attention. Computes the same function as
 * swax_swa_fwd_f / swax_swa_bwd_f (the readable reference in swa_impl.inc); tests/test_swa.c
 * holds both implementations here to it.
 *
 * tiled (swa_tiled.c; dh a multiple of 16 up to 256; the default on a CPU with AVX-512, also in a
 * build for a lesser x86-64, which compiles that file alone for AVX-512): query tiles
 * of RT = 32 rows against the keys they see, [lo(i0), i0 + 32), through register-blocked kernels
 * on 16-float vectors (fused multiply-adds) that follow the band more closely than a whole block
 * does: scores per 8 rows over the 16-column vectors those rows see, P·V and dS·K per 6 rows, dSᵀ·Q
 * and Pᵀ·dO per 6 keys over only the rows that see them; softmax, exp and dS in 16-lane passes
 * over each row's own vectors. Per call the scores' right operands Kᵀ (and Vᵀ for dP) are
 * transposed once, V (K for dQ) packed; dK and dV accumulate packed and go out as they become
 * final, written on their first touch (no zeroing pass). Memory: about 5·T·dh floats per call.
 * On bench-cpu's shapes (T 1024, w 128, dh 64) it takes half the time of the BLAS blocks
 * (docs/performance.md, "CPU SWA kernel (issue 9)").
 *
 * BLAS (any dh; SWAX_SWA=blas asks for it): query blocks of QB rows against the key range they
 * can see, as small matrix products through cblas_sgemm (single-threaded inside the caller's
 * OpenMP region), FlashAttention style backward from the saved log-sum-exp. Block of queries
 * [q0, q1) sees keys [lo(q0), q1) — lo is non-decreasing in i, so that range covers every row;
 * entries outside a row's own window are masked to probability 0. Wasted work is
 * (QB + w - 1)/w, so QB follows w. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/cpu/fastmath.h"
#include "ops/cpu/swa.h"

/* ------------------------------------------------------------------------------------------ */
/* BLAS blocks                                                                                 */

static int block_rows(int window) { return window < 16 ? 16 : (window > 64 ? 64 : window); }

/* P (nq, kn) <- softmax rows of scale·S over each row's window; returns via lse if fwd. */
static void masked_probs(const SwaArgs_f *a, float *S, int q0, int nq, int k0, int kn, float scale, int forward) {
    for (int r = 0; r < nq; r++) {
        const int i = q0 + r, lo = swax_swa_lo(a, i) - k0, hi = i - k0; /* valid columns [lo, hi] */
        float *s = S + (size_t)r * kn;
        for (int j = 0; j < lo; j++) s[j] = 0;
        for (int j = hi + 1; j < kn; j++) s[j] = 0;
        if (forward) {
            float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
            for (int j = lo; j <= hi; j++) mx = s[j] * scale > mx ? s[j] * scale : mx;
            float sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int j = lo; j <= hi; j++) {
                s[j] = swax_expf(s[j] * scale - mx);
                sum += s[j];
            }
            const float inv = 1.0f / sum;
#pragma omp simd
            for (int j = lo; j <= hi; j++) s[j] *= inv;
            a->lse[(long)i * a->ldl] = mx + logf(sum);
        } else {
            const float l = a->lse[(long)i * a->ldl];
#pragma omp simd
            for (int j = lo; j <= hi; j++) s[j] = swax_expf(s[j] * scale - l);
        }
    }
}

void swax_swa_fwd_blas_f(SwaArgs_f *a) {
    const int T = a->T, dh = a->dh, QB = block_rows(a->window);
    const float scale = 1.0f / sqrtf((float)dh);
    const int kmax = QB + (a->window < T ? a->window : T);
    float *S = malloc(sizeof(float) * (size_t)QB * kmax);
    SWAX_ASSERT(S);
    for (int q0 = 0; q0 < T; q0 += QB) {
        const int nq = q0 + QB < T ? QB : T - q0, k0 = swax_swa_lo(a, q0), kn = q0 + nq - k0;
        /* S = Q Kᵀ : {nq, dh} x {kn, dh}ᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, kn, dh, 1.0f, a->q + (long)q0 * a->ldq, (int)a->ldq,
                    a->k + (long)k0 * a->ldk, (int)a->ldk, 0.0f, S, kn);
        masked_probs(a, S, q0, nq, k0, kn, scale, 1);
        /* O = P V : {nq, kn} x {kn, dh} */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, dh, kn, 1.0f, S, kn, a->v + (long)k0 * a->ldv,
                    (int)a->ldv, 0.0f, a->out + (long)q0 * a->ldo, (int)a->ldo);
    }
    free(S);
}

void swax_swa_bwd_blas_f(SwaArgs_f *a) {
    const int T = a->T, dh = a->dh, QB = block_rows(a->window);
    const float scale = 1.0f / sqrtf((float)dh);
    const int kmax = QB + (a->window < T ? a->window : T);
    float *P = malloc(sizeof(float) * (size_t)QB * kmax), *dP = malloc(sizeof(float) * (size_t)QB * kmax);
    SWAX_ASSERT(P && dP);
    for (int i = 0; i < T; i++) {
        memset(a->dk + (long)i * a->ldk, 0, sizeof(float) * dh);
        memset(a->dv + (long)i * a->ldv, 0, sizeof(float) * dh);
    }
    for (int q0 = 0; q0 < T; q0 += QB) {
        const int nq = q0 + QB < T ? QB : T - q0, k0 = swax_swa_lo(a, q0), kn = q0 + nq - k0;
        const float *Q = a->q + (long)q0 * a->ldq, *K = a->k + (long)k0 * a->ldk, *V = a->v + (long)k0 * a->ldv;
        const float *dO = a->dout + (long)q0 * a->ldo;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, kn, dh, 1.0f, Q, (int)a->ldq, K, (int)a->ldk, 0.0f,
                    P, kn);
        masked_probs(a, P, q0, nq, k0, kn, scale, 0);
        /* dP = dO Vᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, kn, dh, 1.0f, dO, (int)a->ldo, V, (int)a->ldv, 0.0f,
                    dP, kn);
        /* dS = P ∘ (dP − Δ) · scale, Δ_i = dO_i · O_i */
        for (int r = 0; r < nq; r++) {
            const float *o = a->out + (long)(q0 + r) * a->ldo, *g = dO + (long)r * a->ldo;
            float delta = 0;
#pragma omp simd reduction(+ : delta)
            for (int d = 0; d < dh; d++) delta += g[d] * o[d];
            float *p = P + (size_t)r * kn, *dp = dP + (size_t)r * kn;
#pragma omp simd
            for (int j = 0; j < kn; j++) dp[j] = p[j] * (dp[j] - delta) * scale;
        }
        /* dQ = dS K ; dK += dSᵀ Q ; dV += Pᵀ dO */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, dh, kn, 1.0f, dP, kn, K, (int)a->ldk, 0.0f,
                    a->dq + (long)q0 * a->ldq, (int)a->ldq);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kn, dh, nq, 1.0f, dP, kn, Q, (int)a->ldq, 1.0f,
                    a->dk + (long)k0 * a->ldk, (int)a->ldk);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kn, dh, nq, 1.0f, P, kn, dO, (int)a->ldo, 1.0f,
                    a->dv + (long)k0 * a->ldv, (int)a->ldv);
    }
    free(P);
    free(dP);
}

/* ------------------------------------------------------------------------------------------ */

int swax_swa_tiled_ok(int dh) { return dh % 16 == 0 && dh > 0 && dh <= 256; }

/* the tiled kernels where they fit and they are AVX-512 code on an AVX-512 CPU (elsewhere the
 * 16-float vectors compile to narrower ones that spill, slower than BLAS); SWAX_SWA=blas or =tiled
 * chooses, =tiled only where this CPU can run them (else a warning and BLAS) */
static int use_tiled(int dh) {
    static int mode = -1; /* 0 BLAS, 1 tiled where it fits */
    int m = __atomic_load_n(&mode, __ATOMIC_RELAXED);
    if (m < 0) {
        const char *e = getenv("SWAX_SWA");
        m = swax_swa_tiled_native() ? !(e && !strcmp(e, "blas")) : (e && !strcmp(e, "tiled"));
        if (m && !swax_swa_tiled_runs()) {
            fprintf(stderr, "swax: SWAX_SWA=tiled: this build's tiled attention needs AVX-512, which this CPU lacks; "
                            "using the BLAS blocks\n");
            m = 0;
        }
        __atomic_store_n(&mode, m, __ATOMIC_RELAXED);
    }
    return m && swax_swa_tiled_ok(dh);
}

void swax_swa_fwd_blocked_f(SwaArgs_f *a) {
    if (use_tiled(a->dh)) swax_swa_fwd_tiled_f(a);
    else swax_swa_fwd_blas_f(a);
}

void swax_swa_bwd_blocked_f(SwaArgs_f *a) {
    if (use_tiled(a->dh)) swax_swa_bwd_tiled_f(a);
    else swax_swa_bwd_blas_f(a);
}
