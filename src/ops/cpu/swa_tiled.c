/* swa_tiled.c — the tiled CPU sliding-window attention kernels (swa_blocked.c dispatches to
 * them and describes them): query tiles of RT = 32 rows through register-blocked kernels on
 * 16-float vectors.
 *
 * They are written for AVX-512. A build that targets it (-march=native on an AVX-512 CPU) compiles
 * them as it compiles everything else. A build for a lesser x86-64 (ARCH=portable: x86-64-v3, what
 * travels to the GPU machines) compiles this file alone for AVX-512 (the pragma below) and
 * swa_blocked.c runs it only where the CPU has AVX-512 (swax_swa_tiled_runs); the portable test
 * allows AVX-512 instructions in this file's functions and nowhere else. Other compilers and
 * targets get the generic vector code (16-float vectors split into what the target has). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__AVX512F__) && \
    !defined(SWAX_TILED_GENERIC) /* -DSWAX_TILED_GENERIC: the generic code on x86 too (to check it) */
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl")
#define SWAX_TILED_DISPATCH 1
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "core/common.h"
#include "ops/cpu/fastmath.h"
#include "ops/cpu/swa.h"

/* 1 where these kernels may run: always in a build that targets AVX-512 or one that compiled them
 * generically, and where the CPU has AVX-512 in a build that compiled only this file for it */
int swax_swa_tiled_runs(void) {
#if defined(SWAX_TILED_DISPATCH)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    return 1;
#endif
}

/* 1 where they are the fast path (the default): AVX-512 code on an AVX-512 CPU */
int swax_swa_tiled_native(void) {
#if defined(__AVX512F__)
    return swax_swa_tiled_runs();
#else
    return 0;
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* tiled: vector kernels                                                                       */

/* 16 floats; the unaligned, aliasing view loads and stores go through (GCC's own __m512_u).
 * Without AVX-512 the compiler splits them into narrower vectors; its warning that returning them
 * by value would then differ from an AVX-512 build's ABI does not concern these inlined static
 * helpers (GCC 12 still prints a note about passing them, in the sanitizer build). */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));
#define AI static inline __attribute__((always_inline))

AI v16 vld(const float *p) { return *(const v16u *)p; }
AI void vst(float *p, v16 x) { *(v16u *)p = x; }
AI v16 vbc(float x) { return (v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
AI v16 vzero(void) { return (v16){0}; }
/* c + a·b, fused where the target has it (the file is built -std=c11: no contraction) */
AI v16 vfma(v16 a, v16 b, v16 c) {
#if defined(__AVX512F__)
    return (v16)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#else
    return c + a * b;
#endif
}

enum {
    RT = 32,  /* query rows per tile */
    SR = 8,   /* score kernel rows (a tile is RT / SR groups) */
    OR = 6,   /* P·V / dS·K kernel rows (at most 8) */
    KG = 6,   /* dSᵀ·Q / Pᵀ·dO kernel keys */
    QS = 272, /* row stride of the tile copies of q and dout (the largest dh of this path, 256, and
                 16 more: rows 1088 bytes apart spread over L1's sets) */
    PADC = 16 /* columns a score kernel may compute past its range (Kᵀ, Vᵀ and S have them) */
};

/* The kernels keep one array of accumulators per vector column: GCC keeps such small arrays in
 * registers, where of one [rows][columns] array of 24 vectors it left a third on the stack. */

/* C[r][0, 16·NJ) = Σ_d A[r][d] Bt[d][0, 16·NJ) for r < SR: A (SR rows of stride QS), Bt rows of
 * stride ldb */
AI void k_scores(const int NJ, int dh, const float *A, const float *Bt, long ldb, float *C, long ldc) {
    v16 c0[SR], c1[SR], c2[SR];
#pragma GCC unroll 8
    for (int r = 0; r < SR; r++) c0[r] = c1[r] = c2[r] = vzero();
    for (int d = 0; d < dh; d++, Bt += ldb) {
        const v16 b0 = vld(Bt), b1 = NJ > 1 ? vld(Bt + 16) : vzero(), b2 = NJ > 2 ? vld(Bt + 32) : vzero();
#pragma GCC unroll 8
        for (int r = 0; r < SR; r++) {
            const v16 x = vbc(A[r * QS + d]);
            c0[r] = vfma(x, b0, c0[r]);
            if (NJ > 1) c1[r] = vfma(x, b1, c1[r]);
            if (NJ > 2) c2[r] = vfma(x, b2, c2[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < SR; r++) {
        vst(C + r * ldc, c0[r]);
        if (NJ > 1) vst(C + r * ldc + 16, c1[r]);
        if (NJ > 2) vst(C + r * ldc + 32, c2[r]);
    }
}

/* out[r][0, 16·NV) = rs[r] · Σ_{k < nk} P[r][k] B[k][0, 16·NV) for r < MR (rs NULL: 1) */
AI void k_pb(const int MR, const int NV, const float *P, long ldp, const float *B, long ldb, int nk, const float *rs,
             float *out, long ldo) {
    v16 c0[8], c1[8], c2[8], c3[8];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = c2[r] = c3[r] = vzero();
    for (int k = 0; k < nk; k++, B += ldb) {
        const v16 b0 = vld(B), b1 = NV > 1 ? vld(B + 16) : vzero(), b2 = NV > 2 ? vld(B + 32) : vzero(),
                  b3 = NV > 3 ? vld(B + 48) : vzero();
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const v16 x = vbc(P[r * ldp + k]);
            c0[r] = vfma(x, b0, c0[r]);
            if (NV > 1) c1[r] = vfma(x, b1, c1[r]);
            if (NV > 2) c2[r] = vfma(x, b2, c2[r]);
            if (NV > 3) c3[r] = vfma(x, b3, c3[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        const v16 s = vbc(rs ? rs[r] : 1.0f);
        float *o = out + r * ldo;
        vst(o, c0[r] * s);
        if (NV > 1) vst(o + 16, c1[r] * s);
        if (NV > 2) vst(o + 32, c2[r] * s);
        if (NV > 3) vst(o + 48, c3[r] * s);
    }
}

AI void pb_rows(const int MR, int dh, const float *P, long ldp, const float *B, long ldb, int nk, const float *rs,
                float *out, long ldo) {
    for (int c = 0; c < dh; c += 64) {
        switch ((dh - c) / 16) {
        case 1: k_pb(MR, 1, P, ldp, B + c, ldb, nk, rs, out + c, ldo); break;
        case 2: k_pb(MR, 2, P, ldp, B + c, ldb, nk, rs, out + c, ldo); break;
        case 3: k_pb(MR, 3, P, ldp, B + c, ldb, nk, rs, out + c, ldo); break;
        default: k_pb(MR, 4, P, ldp, B + c, ldb, nk, rs, out + c, ldo); break;
        }
    }
}

/* out rows i0 + [0, nr): rs[r] · Σ_k P[r][k] B[k], each group of rows over only the key columns
 * its rows see (P is zero outside a row's window) */
static void pb(const SwaArgs_f *a, int i0, int ja, int nr, int dh, const float *P, long ldp, const float *B, long ldb,
               const float *rs, float *out, long ldo) {
    for (int r = 0, m; r < nr; r += m) {
        m = nr - r; /* groups of OR rows; the last 7 or 8 as two */
        m = m > 8 ? OR : (m > OR ? m / 2 : m);
        const int k0 = swax_swa_lo(a, i0 + r) - ja, k1 = i0 + r + m - ja; /* columns [k0, k1) */
        const float *Pr = P + (size_t)r * ldp + k0, *Br = B + (long)k0 * ldb, *rr = rs ? rs + r : NULL;
        float *o = out + (long)r * ldo;
        switch (m) {
        case 1: pb_rows(1, dh, Pr, ldp, Br, ldb, k1 - k0, rr, o, ldo); break;
        case 2: pb_rows(2, dh, Pr, ldp, Br, ldb, k1 - k0, rr, o, ldo); break;
        case 3: pb_rows(3, dh, Pr, ldp, Br, ldb, k1 - k0, rr, o, ldo); break;
        case 4: pb_rows(4, dh, Pr, ldp, Br, ldb, k1 - k0, rr, o, ldo); break;
        case 5: pb_rows(5, dh, Pr, ldp, Br, ldb, k1 - k0, rr, o, ldo); break;
        default: pb_rows(OR, dh, Pr, ldp, Br, ldb, k1 - k0, rr, o, ldo); break;
        }
    }
}

/* acc[m][0, 16·NV) = Σ_{r < nrow} P[r][m] A[r][0, 16·NV) for m < MK; out row m += acc[m] (= where
 * m >= mnew: the key's first touch). A rows of stride QS. */
AI void k_ptb(const int MK, const int NV, const float *P, long ldp, const float *A, int nrow, float *out, long ldo,
              int mnew) {
    v16 c0[8], c1[8], c2[8], c3[8];
#pragma GCC unroll 8
    for (int m = 0; m < MK; m++) c0[m] = c1[m] = c2[m] = c3[m] = vzero();
    for (int r = 0; r < nrow; r++, P += ldp, A += QS) {
        const v16 x0 = vld(A), x1 = NV > 1 ? vld(A + 16) : vzero(), x2 = NV > 2 ? vld(A + 32) : vzero(),
                  x3 = NV > 3 ? vld(A + 48) : vzero();
#pragma GCC unroll 8
        for (int m = 0; m < MK; m++) {
            const v16 p = vbc(P[m]);
            c0[m] = vfma(p, x0, c0[m]);
            if (NV > 1) c1[m] = vfma(p, x1, c1[m]);
            if (NV > 2) c2[m] = vfma(p, x2, c2[m]);
            if (NV > 3) c3[m] = vfma(p, x3, c3[m]);
        }
    }
#pragma GCC unroll 8
    for (int m = 0; m < MK; m++) {
        float *o = out + (long)m * ldo;
        if (m < mnew) { /* accumulate */
            c0[m] += vld(o);
            if (NV > 1) c1[m] += vld(o + 16);
            if (NV > 2) c2[m] += vld(o + 32);
            if (NV > 3) c3[m] += vld(o + 48);
        }
        vst(o, c0[m]);
        if (NV > 1) vst(o + 16, c1[m]);
        if (NV > 2) vst(o + 32, c2[m]);
        if (NV > 3) vst(o + 48, c3[m]);
    }
}

AI void ptb_keys(const int MK, int dh, const float *P, long ldp, const float *A, int nrow, float *out, long ldo,
                 int mnew) {
    for (int c = 0; c < dh; c += 64) {
        switch ((dh - c) / 16) {
        case 1: k_ptb(MK, 1, P, ldp, A + c, nrow, out + c, ldo, mnew); break;
        case 2: k_ptb(MK, 2, P, ldp, A + c, nrow, out + c, ldo, mnew); break;
        case 3: k_ptb(MK, 3, P, ldp, A + c, nrow, out + c, ldo, mnew); break;
        default: k_ptb(MK, 4, P, ldp, A + c, nrow, out + c, ldo, mnew); break;
        }
    }
}

/* key rows ja + [0, kn) of out: += Σ_r P[r][k] A[r] over the tile's rows r < nr (rows i0 + r)
 * that see each group of KG keys; keys >= hwm are written instead (their first touch). */
static void ptb(const SwaArgs_f *a, int i0, int ja, int nr, int kn, int hwm, int dh, const float *P, long ldp,
                const float *A, float *out, long ldo) {
    int rend = 0; /* rows [0, rend) have lo <= the group's last key (lo non-decreasing) */
    for (int c = 0; c < kn; c += KG) {
        const int mk = kn - c < KG ? kn - c : KG, j0 = ja + c, jl = j0 + mk - 1;
        while (rend < nr && swax_swa_lo(a, i0 + rend) <= jl) rend++;
        const int rbeg = j0 > i0 ? j0 - i0 : 0; /* rows before j0 see none of the keys */
        const int nrow = rend > rbeg ? rend - rbeg : 0, mnew = hwm - j0;
        const float *Pc = P + (size_t)rbeg * ldp + c, *Ar = A + (size_t)rbeg * QS;
        float *o = out + (long)j0 * ldo;
        switch (mk) {
        case 1: ptb_keys(1, dh, Pc, ldp, Ar, nrow, o, ldo, mnew); break;
        case 2: ptb_keys(2, dh, Pc, ldp, Ar, nrow, o, ldo, mnew); break;
        case 3: ptb_keys(3, dh, Pc, ldp, Ar, nrow, o, ldo, mnew); break;
        case 4: ptb_keys(4, dh, Pc, ldp, Ar, nrow, o, ldo, mnew); break;
        case 5: ptb_keys(5, dh, Pc, ldp, Ar, nrow, o, ldo, mnew); break;
        default: ptb_keys(KG, dh, Pc, ldp, Ar, nrow, o, ldo, mnew); break;
        }
    }
}

#if defined(__AVX512F__)
/* r[c] <- column c of the 16 rows r[0..15] (four rounds of shuffles) */
AI void tr16(__m512 *r) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* lane l of r[4i + k]: column 4l + k of rows 4i .. 4i + 3 */
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        t[k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
        t[4 + k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xdd);
        t[8 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xdd);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xdd);
        r[4 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0x88);
        r[12 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0xdd);
    }
}
#endif

/* Xt (dh, ldt) <- X (T, dh; row stride ldx) transposed, columns [T, T + PADC) zero; Xc (T, dh)
 * <- the rows packed, unless NULL */
static void transpose(float *Xt, long ldt, float *Xc, const float *X, long ldx, int T, int dh) {
    for (int j0 = 0; j0 < T; j0 += 16) {
        const int nj = T - j0 < 16 ? T - j0 : 16;
        for (int jj = 0; jj < 16 && j0 + 32 + jj < T; jj++) /* two blocks ahead */
            for (int c = 0; c < dh; c += 16) __builtin_prefetch(X + (long)(j0 + 32 + jj) * ldx + c);
        for (int d0 = 0; d0 < dh; d0 += 16) {
#if defined(__AVX512F__)
            __m512 r[16];
            for (int jj = 0; jj < 16; jj++) {
                r[jj] = jj < nj ? _mm512_loadu_ps(X + (long)(j0 + jj) * ldx + d0) : _mm512_setzero_ps();
                if (Xc && jj < nj) _mm512_storeu_ps(Xc + (long)(j0 + jj) * dh + d0, r[jj]);
            }
            tr16(r);
            for (int dd = 0; dd < 16; dd++) _mm512_storeu_ps(Xt + (long)(d0 + dd) * ldt + j0, r[dd]);
#else
            for (int dd = 0; dd < 16; dd++) {
                float *t = Xt + (long)(d0 + dd) * ldt + j0;
                const float *x = X + (long)j0 * ldx + d0 + dd;
                for (int jj = 0; jj < 16; jj++) t[jj] = jj < nj ? x[(long)jj * ldx] : 0.0f;
            }
            if (Xc)
                for (int jj = 0; jj < nj; jj++)
                    memcpy(Xc + (long)(j0 + jj) * dh + d0, X + (long)(j0 + jj) * ldx + d0, sizeof(float) * 16);
#endif
        }
    }
    const int z = (T + 15) & ~15; /* written up to here */
    for (int d = 0; d < dh; d++) memset(Xt + (long)d * ldt + z, 0, sizeof(float) * (size_t)(T + PADC - z));
}

/* rows [i0, i0 + nr) of X (stride ldx) into the tile copy (RT rows of stride QS), zero rows past
 * nr; the next tile's rows of X and of Y (NULL: none) are prefetched */
static void tile_rows(float *dst, const float *X, long ldx, const float *Y, long ldy, int T, int i0, int nr, int dh) {
    for (int r = 0; r < RT; r++) {
        float *t = dst + r * QS;
        const float *x = X + (long)(i0 + r) * ldx;
        if (r < nr)
            for (int c = 0; c < dh; c += 16) vst(t + c, vld(x + c));
        else
            for (int c = 0; c < dh; c += 16) vst(t + c, vzero());
        if (i0 + RT + r < T)
            for (int c = 0; c < dh; c += 16) {
                __builtin_prefetch(x + (long)RT * ldx + c);
                if (Y) __builtin_prefetch(Y + (long)(i0 + RT + r) * ldy + c);
            }
    }
}

/* The scores of a tile, in groups of SR rows: group g over the 16-column vectors that hold the
 * columns its rows see, [lo(i0 + 8g) - ja, i0 + 8g + 8 - ja), three vectors at a time. */
static void tile_scores(const SwaArgs_f *a, int i0, int ja, int nr, int dh, const float *A, const float *Bt, long ldb,
                        float *S, long lds) {
    for (int r0 = 0; r0 < nr; r0 += SR) {
        const int rl = (r0 + SR < nr ? r0 + SR : nr) - 1;
        const int v0 = (swax_swa_lo(a, i0 + r0) - ja) / 16, v1 = (i0 + rl + 1 - ja + 15) / 16;
        const float *Ar = A + r0 * QS;
        float *Sr = S + (size_t)r0 * lds;
        int v = v0;
        for (; v1 - v >= 3; v += 3) k_scores(3, dh, Ar, Bt + ja + 16 * v, ldb, Sr + 16 * v, lds);
        if (v1 - v == 2) k_scores(2, dh, Ar, Bt + ja + 16 * v, ldb, Sr + 16 * v, lds);
        if (v1 - v == 1) k_scores(1, dh, Ar, Bt + ja + 16 * v, ldb, Sr + 16 * v, lds);
    }
}

typedef int vi16 __attribute__((vector_size(64)));

/* e^x: fastmath.h's swax_expf (the same reduction and degree-6 polynomial, relative error below
 * 2.5e-7); with AVX-512 in fused multiply-adds, 2^n by vscalefps, which also takes care of the
 * range (below x = -87.3 it goes on down to 0 as expf does, where swax_expf stops at e^-87.3).
 * Lanes masked off afterwards may hold anything. */
AI v16 vsel(vi16 m, v16 x, v16 y) { return (v16)(((vi16)x & m) | ((vi16)y & ~m)); }
AI v16 vand(vi16 m, v16 x) { return (v16)((vi16)x & m); }
AI v16 vexp(v16 x) {
#if defined(__AVX512F__)
    const __m512 v = (__m512)x;
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), v);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 720.0f), r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return (v16)_mm512_scalef_ps(p, n);
#else /* swax_expf lane by lane (the compiler vectorises it as it can) */
    v16 y;
    for (int l = 0; l < 16; l++) y[l] = swax_expf(x[l]);
    return y;
#endif
}

/* the sum and the max of the lanes (a tree: log2(16) dependent steps, not 15) */
AI float vsum(v16 x) {
#if defined(__AVX512F__)
    return _mm512_reduce_add_ps((__m512)x);
#else
    float t = 0;
    for (int l = 0; l < 16; l++) t += x[l];
    return t;
#endif
}
AI float vmax_all(v16 x) {
#if defined(__AVX512F__)
    return _mm512_reduce_max_ps((__m512)x);
#else
    float t = x[0];
    for (int l = 1; l < 16; l++) t = x[l] > t ? x[l] : t;
    return t;
#endif
}

/* lanes c + [0, 16) within [lo, hi] */
AI vi16 vvalid(int c, int lo, int hi) {
    const vi16 j = (vi16){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} + c;
    return (j >= lo) & (j <= hi);
}

/* forward row: s <- exp(scale·s − max) over columns [lo, hi], 0 elsewhere in [0, n) (n a multiple
 * of 16); returns the max of scale·s (the max of s, times scale > 0), *sum the sum */
static inline float fwd_row(float *s, int n, int lo, int hi, float scale, float *sum) {
    const int c0 = lo & ~15, c1 = (hi + 16) & ~15; /* the vectors that hold [lo, hi] */
    v16 m = vbc(-INFINITY), acc = vzero();
    for (int c = c0; c < c1; c += 16) {
        const v16 x = vsel(vvalid(c, lo, hi), vld(s + c), vbc(-INFINITY));
        m = vsel(x > m, x, m);
    }
    const float mxs = vmax_all(m) * scale;
    for (int c = 0; c < c0; c += 16) vst(s + c, vzero());
    for (int c = c0; c < c1; c += 16) {
        const v16 p = vand(vvalid(c, lo, hi), vexp(vld(s + c) * scale - mxs));
        vst(s + c, p);
        acc += p;
    }
    for (int c = c1; c < n; c += 16) vst(s + c, vzero());
    *sum = vsum(acc);
    return mxs;
}

/* backward row: p <- exp(scale·s − lse), dp <- p ∘ (dp − Δ) · scale over [lo, hi], both 0
 * elsewhere in [0, n) */
static inline void bwd_row(float *p, float *dp, int n, int lo, int hi, float scale, float lse, float delta) {
    const int c0 = lo & ~15, c1 = (hi + 16) & ~15;
    for (int c = 0; c < c0; c += 16) vst(p + c, vzero()), vst(dp + c, vzero());
    for (int c = c0; c < c1; c += 16) {
        const vi16 m = vvalid(c, lo, hi);
        const v16 e = vand(m, vexp(vld(p + c) * scale - lse));
        vst(p + c, e);
        vst(dp + c, vand(m, e * (vld(dp + c) - delta) * scale));
    }
    for (int c = c1; c < n; c += 16) vst(p + c, vzero()), vst(dp + c, vzero());
}

/* x · y over dh (a multiple of 16) */
static inline float vdot(const float *x, const float *y, int dh) {
    v16 acc = vzero();
    for (int c = 0; c < dh; c += 16) acc = vfma(vld(x + c), vld(y + c), acc);
    return vsum(acc);
}

/* rows [j0, j1) of X (dh wide, packed) to out (row stride ldo) */
static void unpack_rows(float *out, long ldo, const float *X, int j0, int j1, int dh) {
    for (int j = j0; j < j1; j++)
        for (int c = 0; c < dh; c += 16) vst(out + (long)j * ldo + c, vld(X + (size_t)j * dh + c));
}

/* rows [j0, j1) of out (row stride ldo, dh wide) are to be written soon */
static void prefetch_w(float *out, long ldo, int j0, int j1, int dh) {
    for (int j = j0; j < j1; j++)
        for (int c = 0; c < dh; c += 16) __builtin_prefetch(out + (long)j * ldo + c, 1);
}

/* n floats, 64-byte aligned (every part of a kernel's buffer is a multiple of 16 floats: rows of
 * Kᵀ and of the score tiles start on cache lines) */
static float *scratch(size_t n) {
    float *p = aligned_alloc(64, (sizeof(float) * n + 63) & ~(size_t)63);
    SWAX_ASSERT(p);
    return p;
}

typedef struct {
    int T, dh, ldt, lds;
    float scale;
} Geo;

static Geo geo(const SwaArgs_f *a) {
    Geo g;
    g.T = a->T, g.dh = a->dh;
    g.scale = 1.0f / sqrtf((float)a->dh);
    const int wm = a->window < a->T ? a->window : a->T;
    g.ldt = (a->T + PADC + 15) & ~15;         /* Kᵀ / Vᵀ rows */
    g.lds = (wm + RT - 1 + PADC + 15) & ~15; /* score rows: a tile's keys, plus the overrun */
    return g;
}

void swax_swa_fwd_tiled_f(SwaArgs_f *a) {
    const Geo g = geo(a);
    const int T = g.T, dh = g.dh;
    SWAX_ASSERT(swax_swa_tiled_ok(dh));
    const size_t nt = (size_t)dh * g.ldt, nc = (size_t)T * dh, ns = (size_t)RT * g.lds;
    float *buf = scratch(nt + nc + ns + RT * QS + RT);
    /* Kᵀ, V packed, scores, the tile's q rows, 1 / the rows' sums */
    float *Kt = buf, *Vc = Kt + nt, *S = Vc + nc, *Qc = S + ns, *inv = Qc + RT * QS;
    memset(S, 0, sizeof(float) * ns); /* the row pass reads columns no kernel wrote (and masks them) */
    transpose(Kt, g.ldt, NULL, a->k, a->ldk, T, dh);
    for (int j = 0; j < T; j++) {
        if (j + 32 < T)
            for (int c = 0; c < dh; c += 16) __builtin_prefetch(a->v + (long)(j + 32) * a->ldv + c);
        for (int c = 0; c < dh; c += 16) vst(Vc + (size_t)j * dh + c, vld(a->v + (long)j * a->ldv + c));
    }
    for (int i0 = 0; i0 < T; i0 += RT) {
        const int nr = T - i0 < RT ? T - i0 : RT, ja = swax_swa_lo(a, i0), kn = i0 + nr - ja;
        tile_rows(Qc, a->q, a->ldq, NULL, 0, T, i0, nr, dh);
        if (i0 + RT < T) prefetch_w(a->out, a->ldo, i0 + RT, i0 + RT + (T - i0 - RT < RT ? T - i0 - RT : RT), dh);
        tile_scores(a, i0, ja, nr, dh, Qc, Kt, g.ldt, S, g.lds);
        for (int r = 0; r < nr; r++) {
            const int i = i0 + r;
            float sum;
            const float mxs = fwd_row(S + (size_t)r * g.lds, (kn + 15) & ~15, swax_swa_lo(a, i) - ja, i - ja, g.scale, &sum);
            inv[r] = 1.0f / sum;
            a->lse[(long)i * a->ldl] = mxs + logf(sum);
        }
        pb(a, i0, ja, nr, dh, S, g.lds, Vc + (size_t)ja * dh, dh, inv, a->out + (long)i0 * a->ldo, a->ldo);
    }
    free(buf);
}

void swax_swa_bwd_tiled_f(SwaArgs_f *a) {
    const Geo g = geo(a);
    const int T = g.T, dh = g.dh;
    const float scale = g.scale;
    SWAX_ASSERT(swax_swa_tiled_ok(dh));
    const size_t nt = (size_t)dh * g.ldt, nc = (size_t)T * dh, ns = (size_t)RT * g.lds;
    float *buf = scratch(2 * nt + 3 * nc + 2 * ns + 2 * RT * QS);
    /* Kᵀ, Vᵀ, K packed, dK and dV packed, P, dP then dS, the tile's q and dout rows */
    float *Kt = buf, *Vt = Kt + nt, *Kc = Vt + nt, *dK = Kc + nc, *dV = dK + nc, *P = dV + nc, *D = P + ns;
    float *Qc = D + ns, *Gc = Qc + RT * QS;
    memset(P, 0, sizeof(float) * 2 * ns); /* the row pass reads columns no kernel wrote (and masks them) */
    transpose(Kt, g.ldt, Kc, a->k, a->ldk, T, dh);
    transpose(Vt, g.ldt, NULL, a->v, a->ldv, T, dh);
    int hwm = 0, done = 0; /* keys [0, hwm) of dK and dV are written, [0, done) copied out */
    for (int i0 = 0; i0 < T; i0 += RT) {
        const int nr = T - i0 < RT ? T - i0 : RT, ja = swax_swa_lo(a, i0), kn = i0 + nr - ja;
        if (ja > done) { /* keys before this tile's are final */
            unpack_rows(a->dk, a->ldk, dK, done, ja, dh);
            unpack_rows(a->dv, a->ldv, dV, done, ja, dh);
            done = ja;
        }
        tile_rows(Qc, a->q, a->ldq, a->out, a->ldo, T, i0, nr, dh);
        tile_rows(Gc, a->dout, a->ldo, NULL, 0, T, i0, nr, dh);
        if (i0 + RT < T) { /* the next tile's dq rows and (about) its dk, dv copy-out */
            const int n2 = T - i0 - RT < RT ? T - i0 - RT : RT, j2 = swax_swa_lo(a, i0 + RT);
            prefetch_w(a->dq, a->ldq, i0 + RT, i0 + RT + n2, dh);
            prefetch_w(a->dk, a->ldk, ja, j2, dh);
            prefetch_w(a->dv, a->ldv, ja, j2, dh);
        }
        tile_scores(a, i0, ja, nr, dh, Qc, Kt, g.ldt, P, g.lds); /* S */
        tile_scores(a, i0, ja, nr, dh, Gc, Vt, g.ldt, D, g.lds); /* dP = dO Vᵀ */
        for (int r = 0; r < nr; r++) { /* P, and dS over dP (Δ_i = dO_i · O_i) */
            const int i = i0 + r;
            bwd_row(P + (size_t)r * g.lds, D + (size_t)r * g.lds, (kn + 15) & ~15, swax_swa_lo(a, i) - ja, i - ja, scale,
                    a->lse[(long)i * a->ldl], vdot(Gc + r * QS, a->out + (long)i * a->ldo, dh));
        }
        /* dQ = dS K ; dK += dSᵀ Q ; dV += Pᵀ dO */
        pb(a, i0, ja, nr, dh, D, g.lds, Kc + (size_t)ja * dh, dh, NULL, a->dq + (long)i0 * a->ldq, a->ldq);
        ptb(a, i0, ja, nr, kn, hwm, dh, D, g.lds, Qc, dK, dh);
        ptb(a, i0, ja, nr, kn, hwm, dh, P, g.lds, Gc, dV, dh);
        hwm = i0 + nr;
    }
    unpack_rows(a->dk, a->ldk, dK, done, T, dh);
    unpack_rows(a->dv, a->ldv, dV, done, T, dh);
    free(buf);
}

