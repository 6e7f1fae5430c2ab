/* swa_blocked.c — the fast CPU sliding-window attention: query blocks of QB
 * rows against the key range they can see, as small matrix products through
 * BLAS (single-threaded inside the caller's OpenMP region), FlashAttention
 * style backward from the saved log-sum-exp. Computes the same function as
 * swax_swa_fwd_f / swax_swa_bwd_f (the readable reference in swa_impl.inc);
 * tests/test_swa.c holds the two together.
 *
 * Block of queries [q0, q1) sees keys [lo(q0), q1) — lo is non-decreasing in
 * i, so that range covers every row; entries outside a row's own window are
 * masked to probability 0. Wasted work is (QB + w - 1)/w, so QB follows w. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/cpu/fastmath.h"
#include "ops/cpu/swa.h"

static int block_rows(int window) { return window < 16 ? 16 : (window > 64 ? 64 : window); }

static inline int lo_of(const SwaArgs_f *a, int i) {
    int lo = i - a->window + 1;
    if (lo < 0) lo = 0;
    if (a->doc_lo && a->doc_lo[i] > lo) lo = a->doc_lo[i];
    return lo;
}

/* P (nq, kn) <- softmax rows of scale·S over each row's window; returns via lse if fwd. */
static void masked_probs(const SwaArgs_f *a, float *S, int q0, int nq, int k0, int kn, float scale, int forward) {
    for (int r = 0; r < nq; r++) {
        const int i = q0 + r, lo = lo_of(a, i) - k0, hi = i - k0; /* valid columns [lo, hi] */
        float *s = S + (size_t)r * kn;
        for (int j = 0; j < lo; j++) s[j] = 0;
        for (int j = hi + 1; j < kn; j++) s[j] = 0;
        if (forward) {
            float mx = -INFINITY;
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

void swax_swa_fwd_blocked_f(SwaArgs_f *a) {
    const int T = a->T, dh = a->dh, QB = block_rows(a->window);
    const float scale = 1.0f / sqrtf((float)dh);
    const int kmax = QB + (a->window < T ? a->window : T);
    float *S = malloc(sizeof(float) * (size_t)QB * kmax);
    SWAX_ASSERT(S);
    for (int q0 = 0; q0 < T; q0 += QB) {
        const int nq = q0 + QB < T ? QB : T - q0, k0 = lo_of(a, q0), kn = q0 + nq - k0;
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

void swax_swa_bwd_blocked_f(SwaArgs_f *a) {
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
        const int nq = q0 + QB < T ? QB : T - q0, k0 = lo_of(a, q0), kn = q0 + nq - k0;
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
