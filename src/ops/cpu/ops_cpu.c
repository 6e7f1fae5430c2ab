/* ops_cpu.c — the CPU implementation of ops.h: oneDNN's sgemm (else OpenBLAS)
 * for the model's matrix products, OpenBLAS for the cells' tiles, OpenMP over
 * rows / (sequence, head) pairs, hand-written kernels elsewhere.
 * Determinism: every reduction runs in a fixed order that does not depend on
 * the thread count (column sums go through fixed row blocks). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/cpu/fastmath.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/gdn_layer.h"
#include "ops/cpu/mlstm_cell.h"
#include "ops/cpu/swa.h"
#include "ops/ops.h"

enum { ROWBLK = 64 };

static void *cpu_alloc(size_t bytes) { return swax_calloc(bytes, 1, "buffer"); }
static void cpu_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void cpu_sync(void) {}
static size_t cpu_mem_used(void) { return 0; }

/* The model's fp32 products: oneDNN's sgemm where libdnnl.so.2 loads (measured faster than
 * OpenBLAS 0.3.21 on bench-cpu: +8-16% on 2 Zen 4 cores, +19-28% on the GPU machine's 16 Xeon
 * cores; the same loss to 9 digits at 1, 2, 8 and 16 threads), else OpenBLAS; SWAX_SGEMM=openblas
 * or =onednn chooses (decided once, before the first product). The cells' small tiles stay on
 * OpenBLAS. The choice is made under pthread_once: decode's first products run inside a parallel
 * region (infer.c: mm), and a thread that saw the choice before oneDNN was loaded called a null
 * function pointer (bench infer at 2 threads crashed every time). */
static int use_onednn;
static pthread_once_t sgemm_once = PTHREAD_ONCE_INIT;

static void sgemm_choose(void) {
    const char *e = getenv("SWAX_SGEMM");
    const int asked = e && !strcmp(e, "onednn");
#if defined(__SANITIZE_ADDRESS__)
    /* the sanitizer build: OpenBLAS unless asked (LSan cannot scan a dlopen'd oneDNN's thread TLS) */
    int want = asked;
#else
    int want = !(e && !strcmp(e, "openblas"));
#endif
    if (want && swax_onednn_sgemm_init()) {
        if (asked) fprintf(stderr, "swax: SWAX_SGEMM=onednn: %s; OpenBLAS instead\n", swax_last_error());
        want = 0;
    }
    use_onednn = want;
}

static void sgemm(int ta, int tb, int M, int N, int K, const float *A, long lda, const float *B, long ldb, float beta,
                  float *Cm, long ldc) {
    pthread_once(&sgemm_once, sgemm_choose);
    if (use_onednn) swax_onednn_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, Cm, ldc);
    else
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                    (int)lda, B, (int)ldb, beta, Cm, (int)ldc);
}

static void matmul_fwd(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC) {
    sgemm(0, 1, N, OC, C, inp, ldi, w, C, 0.0f, out, ldo);
}

static void matmul_bwd(float *dinp, long lddi, float *dw, const float *dout, long lddo, const float *inp, long ldi,
                       const float *w, int N, int C, int OC, int acc) {
    if (dinp) sgemm(0, 0, N, C, OC, dout, lddo, w, C, acc ? 1.0f : 0.0f, dinp, lddi);
    if (dw) sgemm(1, 0, OC, C, N, dout, lddo, inp, ldi, 1.0f, dw, C);
}

static void embed_fwd(float *out, const int32_t *tok, const float *wte, int N, int D) {
#pragma omp parallel for
    for (int r = 0; r < N; r++) memcpy(out + (size_t)r * D, wte + (size_t)tok[r] * D, sizeof(float) * D);
}

static void embed_bwd(float *dwte, const float *dout, const int32_t *tok, int N, int D) {
    /* rows may share a token: sequential, in row order (deterministic) */
    for (int r = 0; r < N; r++) {
        float *d = dwte + (size_t)tok[r] * D;
        const float *g = dout + (size_t)r * D;
        for (int i = 0; i < D; i++) d[i] += g[i];
    }
}

static void rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int N, int D, float eps) {
#pragma omp parallel for
    for (int r = 0; r < N; r++) {
        const float *x = inp + (size_t)r * D;
        float ss = 0;
#pragma omp simd reduction(+ : ss) /* lanes then a tree: vectorised; the order is fixed per build */
        for (int i = 0; i < D; i++) ss += x[i] * x[i];
        const float rs = 1.0f / sqrtf(ss / D + eps);
        rstd[r] = rs;
        float *o = out + (size_t)r * D;
        for (int i = 0; i < D; i++) o[i] = x[i] * rs * w[i];
    }
}

/* acc (D) += Σ over row blocks of partial (nblk, D), in block order */
static void reduce_blocks(float *acc, const float *partial, int nblk, int D) {
    for (int b = 0; b < nblk; b++)
        for (int i = 0; i < D; i++) acc[i] += partial[(size_t)b * D + i];
}

static void rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                        const float *rstd, int N, int D) {
    const int nblk = (N + ROWBLK - 1) / ROWBLK;
    float *part = calloc((size_t)nblk * D, sizeof(float));
    SWAX_ASSERT(part);
#pragma omp parallel for
    for (int b = 0; b < nblk; b++) {
        float *pd = part + (size_t)b * D;
        for (int r = b * ROWBLK; r < N && r < (b + 1) * ROWBLK; r++) {
            const float *x = inp + (size_t)r * D, *g = dout + (size_t)r * D;
            const float rs = rstd[r];
            float dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int i = 0; i < D; i++) {
                dot += g[i] * w[i] * x[i];
                pd[i] += g[i] * x[i] * rs;
            }
            const float c = dot * rs * rs * rs / D;
            float *dx = dinp + (size_t)r * D;
            for (int i = 0; i < D; i++) dx[i] += rs * g[i] * w[i] - c * x[i];
        }
    }
    reduce_blocks(dw, part, nblk, D);
    free(part);
}

static void add(float *y, const float *x, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

static void swiglu_fwd(float *h, const float *gu, int N, int F) {
#pragma omp parallel for
    for (int r = 0; r < N; r++) {
        const float *g = gu + (size_t)r * 2 * F, *u = g + F;
        float *o = h + (size_t)r * F;
#pragma omp simd
        for (int i = 0; i < F; i++) o[i] = g[i] * swax_sigmoidf(g[i]) * u[i];
    }
}

static void swiglu_bwd(float *dgu, const float *dh, const float *gu, int N, int F) {
#pragma omp parallel for
    for (int r = 0; r < N; r++) {
        const float *g = gu + (size_t)r * 2 * F, *u = g + F, *d = dh + (size_t)r * F;
        float *dg = dgu + (size_t)r * 2 * F, *du = dg + F;
#pragma omp simd
        for (int i = 0; i < F; i++) {
            const float s = swax_sigmoidf(g[i]), silu = g[i] * s;
            dg[i] = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] = d[i] * silu;
        }
    }
}

/* RoPE for attn_fwd / attn_bwd from a cached (cos, sin) table (swax_rope_table_f), built once
 * per (T, dh, theta) instead of 2 transcendentals per (position, pair) on every call (issue 9);
 * the same steps as swax_rope_f. One table, positions 0 .. T-1, replaced when dh or theta change
 * or a longer T comes (its prefix serves shorter T); T * dh floats. The lock covers the build
 * and the rotation, so a caller on another thread never sees the table replaced under it. */
static pthread_mutex_t rope_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    float *cs;
    int T, dh;
    double theta;
} rope_cache;

static void rope_qk(float *qkv, int B, int T, int H, int dh, double theta, int inverse) {
    const int HD = H * dh;
    const long ld = 3L * HD;
    if (B <= 0 || T <= 0 || dh < 2) return; /* nothing to rotate */
    pthread_mutex_lock(&rope_lock);
    if (!rope_cache.cs || rope_cache.dh != dh || rope_cache.theta != theta || rope_cache.T < T) {
        free(rope_cache.cs);
        rope_cache.cs = swax_calloc((size_t)T * dh, sizeof(float), "RoPE table");
        swax_rope_table_f(rope_cache.cs, T, dh, 0, theta);
        rope_cache.T = T, rope_cache.dh = dh, rope_cache.theta = theta;
    }
    const float *cs = rope_cache.cs;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int part = 0; part < 2; part++) /* q (part 0) and k (part 1) */
            swax_rope_apply_f(qkv + (size_t)b * T * ld + part * HD, ld, T, H, dh, cs, inverse);
    pthread_mutex_unlock(&rope_lock);
}

static void attn_fwd(SwaxAttnCall *c) {
    const int B = c->B, T = c->T, H = c->H, dh = c->dh, HD = H * dh;
    const long ld = 3L * HD;
    rope_qk(c->qkv, B, T, H, dh, c->rope_theta, 0); /* rotate q and k */
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            float *base = c->qkv + (size_t)b * T * ld + (size_t)h * dh;
            SwaArgs_f a = {0};
            a.T = T, a.dh = dh, a.window = c->window;
            a.q = base, a.ldq = ld, a.k = base + HD, a.ldk = ld, a.v = base + 2 * HD, a.ldv = ld;
            a.doc_lo = c->doc_lo ? c->doc_lo + (size_t)b * T : NULL;
            a.out = c->out + (size_t)b * T * HD + (size_t)h * dh, a.ldo = HD;
            a.lse = c->lse + ((size_t)b * H + h) * T, a.ldl = 1;
            swax_swa_fwd_blocked_f(&a);
        }
}

static void attn_bwd(SwaxAttnCall *c) {
    const int B = c->B, T = c->T, H = c->H, dh = c->dh, HD = H * dh;
    const long ld = 3L * HD;
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const size_t off = (size_t)b * T * ld + (size_t)h * dh;
            float *base = c->qkv + off, *dbase = c->dqkv + off;
            SwaArgs_f a = {0};
            a.T = T, a.dh = dh, a.window = c->window;
            a.q = base, a.ldq = ld, a.k = base + HD, a.ldk = ld, a.v = base + 2 * HD, a.ldv = ld;
            a.doc_lo = c->doc_lo ? c->doc_lo + (size_t)b * T : NULL;
            a.out = c->out + (size_t)b * T * HD + (size_t)h * dh, a.ldo = HD;
            a.lse = c->lse + ((size_t)b * H + h) * T, a.ldl = 1;
            a.dout = c->dout + (size_t)b * T * HD + (size_t)h * dh;
            a.dq = dbase, a.dk = dbase + HD, a.dv = dbase + 2 * HD;
            swax_swa_bwd_blocked_f(&a);
        }
    rope_qk(c->dqkv, B, T, H, dh, c->rope_theta, 1); /* rotate dq and dk back */
}

static inline float logsigmoidf(float x) { return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x)); }

static void mlstm_gates_fwd(float *ig, float *lf, const float *pre, long ldp, const float *bias, int N, int NH,
                            float cap) {
#pragma omp parallel for
    for (int r = 0; r < N; r++)
        for (int h = 0; h < NH; h++) {
            const float ui = pre[(size_t)r * ldp + h] + bias[h], uf = pre[(size_t)r * ldp + NH + h] + bias[NH + h];
            ig[(size_t)r * NH + h] = cap * tanhf(ui / cap);
            lf[(size_t)r * NH + h] = logsigmoidf(cap * tanhf(uf / cap));
        }
}

static void mlstm_gates_bwd(float *dpre, long ldp, float *dbias, const float *dig, const float *dlf,
                            const float *pre, long ldpre, const float *bias, int N, int NH, float cap) {
    const int nblk = (N + ROWBLK - 1) / ROWBLK;
    float *part = calloc((size_t)nblk * 2 * NH, sizeof(float));
    SWAX_ASSERT(part);
#pragma omp parallel for
    for (int b = 0; b < nblk; b++)
        for (int r = b * ROWBLK; r < N && r < (b + 1) * ROWBLK; r++)
            for (int h = 0; h < NH; h++) {
                const float ti = tanhf((pre[(size_t)r * ldpre + h] + bias[h]) / cap);
                const float tf = tanhf((pre[(size_t)r * ldpre + NH + h] + bias[NH + h]) / cap);
                const float ft = cap * tf;
                const float dui = dig[(size_t)r * NH + h] * (1.0f - ti * ti);
                const float sig_neg = 1.0f / (1.0f + expf(ft)); /* d logsigmoid(x)/dx = sigmoid(-x) */
                const float duf = dlf[(size_t)r * NH + h] * sig_neg * (1.0f - tf * tf);
                dpre[(size_t)r * ldp + h] = dui;
                dpre[(size_t)r * ldp + NH + h] = duf;
                part[(size_t)b * 2 * NH + h] += dui;
                part[(size_t)b * 2 * NH + NH + h] += duf;
            }
    reduce_blocks(dbias, part, nblk, 2 * NH);
    free(part);
}

static MlstmArgs_f cell_args(const SwaxMlstmCall *c, int b, int h) {
    const int T = c->T, NH = c->NH, dk = c->dk, dv = c->dv;
    const size_t row0 = (size_t)b * T, bh = (size_t)b * NH + h;
    MlstmArgs_f a = {0};
    a.T = T, a.dk = dk, a.dv = dv, a.L = c->L;
    a.q = c->proj + row0 * c->ldp + (size_t)h * dk, a.ldq = c->ldp;
    a.k = c->proj + row0 * c->ldp + (size_t)NH * dk + (size_t)h * dk, a.ldk = c->ldp;
    a.v = c->proj + row0 * c->ldp + 2 * (size_t)NH * dk + (size_t)h * dv, a.ldv = c->ldp;
    a.ig = c->ig + row0 * NH + h, a.lf = c->lf + row0 * NH + h, a.ldg = NH;
    a.doc_start = c->doc_start ? c->doc_start + row0 : NULL;
    a.eps = c->eps;
    a.h = c->h + row0 * NH * dv + (size_t)h * dv, a.ldh = (long)NH * dv;
    if (c->m_t) {
        a.m_t = c->m_t + bh * T, a.den_t = c->den_t + bh * T, a.arg_t = c->arg_t + bh * T, a.lds = 1;
        a.Cs = c->Cs + bh * c->max_chunks * dk * dv, a.ns = c->ns + bh * c->max_chunks * dk;
        a.ms = c->ms + bh * c->max_chunks, a.arg_end = c->arg_end + bh * c->max_chunks;
        a.max_chunks = c->max_chunks;
    }
    if (c->C0) { /* inference: the state carried in (chunks from token 0 in steps of L) */
        a.C0 = c->C0 + bh * dk * dv, a.n0 = c->n0 + bh * dk, a.m0 = c->m0[bh];
    }
    if (c->C1) a.C1 = c->C1 + bh * dk * dv, a.n1 = c->n1 + bh * dk, a.m1 = c->m1 + bh;
    if (c->dh) {
        SWAX_ASSERT(!c->C0 && !c->C1); /* the state in / out is inference-only */
        a.dh = c->dh + row0 * NH * dv + (size_t)h * dv;
        a.dq = c->dproj + row0 * c->ldp + (size_t)h * dk;
        a.dk_ = c->dproj + row0 * c->ldp + (size_t)NH * dk + (size_t)h * dk;
        a.dv_ = c->dproj + row0 * c->ldp + 2 * (size_t)NH * dk + (size_t)h * dv;
        a.dig = c->dig + row0 * NH + h, a.dlf = c->dlf + row0 * NH + h;
    }
    return a;
}

static void mlstm_cell_fwd(SwaxMlstmCall *c) {
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->NH; h++) {
            MlstmArgs_f a = cell_args(c, b, h);
            SWAX_ASSERT(swax_mlstm_chunkwise_fwd_f(&a) == 0);
        }
}

static void mlstm_cell_bwd(SwaxMlstmCall *c) {
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->NH; h++) {
            MlstmArgs_f a = cell_args(c, b, h);
            swax_mlstm_chunkwise_bwd_f(&a);
        }
}

static void mlstm_out_fwd(float *y, float *hn, float *mean, float *rstd, const float *h, const float *og, long ldog,
                          const float *w, int N, int NH, int dv, float eps) {
    const int D = NH * dv;
#pragma omp parallel for
    for (int r = 0; r < N; r++)
        for (int hd = 0; hd < NH; hd++) {
            const float *x = h + (size_t)r * D + (size_t)hd * dv;
            float mu = 0, var = 0;
#pragma omp simd reduction(+ : mu)
            for (int e = 0; e < dv; e++) mu += x[e];
            mu /= dv;
#pragma omp simd reduction(+ : var)
            for (int e = 0; e < dv; e++) var += (x[e] - mu) * (x[e] - mu);
            const float rs = 1.0f / sqrtf(var / dv + eps);
            mean[(size_t)r * NH + hd] = mu;
            rstd[(size_t)r * NH + hd] = rs;
            for (int e = 0; e < dv; e++) {
                const int col = hd * dv + e;
                const float n = (x[e] - mu) * rs * w[col];
                const float o = og[(size_t)r * ldog + col];
                hn[(size_t)r * D + col] = n;
                y[(size_t)r * D + col] = n * swax_sigmoidf(o);
            }
        }
}

static void mlstm_out_bwd(float *dh, float *dog, long lddog, float *dw, const float *dy, const float *hn,
                          const float *h, const float *mean, const float *rstd, const float *og, long ldog,
                          const float *w, int N, int NH, int dv) {
    const int D = NH * dv;
    const int nblk = (N + ROWBLK - 1) / ROWBLK;
    float *part = calloc((size_t)nblk * D, sizeof(float));
    SWAX_ASSERT(part);
#pragma omp parallel for
    for (int b = 0; b < nblk; b++)
        for (int r = b * ROWBLK; r < N && r < (b + 1) * ROWBLK; r++)
            for (int hd = 0; hd < NH; hd++) {
                const float mu = mean[(size_t)r * NH + hd], rs = rstd[(size_t)r * NH + hd];
                const float *x = h + (size_t)r * D + (size_t)hd * dv;
                float sum_dx = 0, sum_dxx = 0;
                float *pb = part + (size_t)b * D;
#pragma omp simd reduction(+ : sum_dx, sum_dxx)
                for (int e = 0; e < dv; e++) {
                    const int col = hd * dv + e;
                    const float o = og[(size_t)r * ldog + col], s = swax_sigmoidf(o);
                    const float g = dy[(size_t)r * D + col];
                    dog[(size_t)r * lddog + col] = g * hn[(size_t)r * D + col] * s * (1.0f - s);
                    const float dn = g * s; /* d hn */
                    const float xh = (x[e] - mu) * rs;
                    pb[col] += dn * xh;
                    const float dxh = dn * w[col];
                    sum_dx += dxh;
                    sum_dxx += dxh * xh;
                }
                sum_dx /= dv;
                sum_dxx /= dv;
#pragma omp simd
                for (int e = 0; e < dv; e++) {
                    const int col = hd * dv + e;
                    const float o = og[(size_t)r * ldog + col], s = swax_sigmoidf(o);
                    const float dxh = dy[(size_t)r * D + col] * s * w[col];
                    const float xh = (x[e] - mu) * rs;
                    dh[(size_t)r * D + col] = rs * (dxh - sum_dx - xh * sum_dxx);
                }
            }
    reduce_blocks(dw, part, nblk, D);
    free(part);
}

static void xent_fwd(float *logits, float *lse, float *losses, const int32_t *targets, int N, int V, int Vused,
                     float cap) {
    const float inv_cap = cap > 0 ? 1.0f / cap : 0.0f;
#pragma omp parallel for
    for (int r = 0; r < N; r++) {
        float *z = logits + (size_t)r * V;
        /* The cap and the max in one pass, 16 lanes wide: lane-wise arithmetic and an exact max,
         * so the same bits as the two-pass form (issue 9: 29 -> ~18 ms per step on bench-cpu).
         * The sum below keeps its default width: a different width would reorder the sum. */
        float mx = -INFINITY;
        if (cap > 0) {
#pragma omp simd simdlen(16) reduction(max : mx)
            for (int i = 0; i < Vused; i++) {
                const float c = cap * swax_tanhf(z[i] * inv_cap);
                z[i] = c;
                mx = c > mx ? c : mx;
            }
        } else {
#pragma omp simd simdlen(16) reduction(max : mx)
            for (int i = 0; i < Vused; i++) mx = z[i] > mx ? z[i] : mx;
        }
        for (int i = Vused; i < V; i++) z[i] = -INFINITY;
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int i = 0; i < Vused; i++) sum += swax_expf(z[i] - mx);
        const float l = mx + logf(sum);
        if (lse) lse[r] = l;
        const int t = targets ? targets[r] : -1;
        if (losses && t >= 0) {
            losses[r] = l - z[t];
        } else if (losses) {
            losses[r] = 0;
        }
    }
}

static void xent_bwd(float *logits, const float *lse, const int32_t *targets, int N, int V, int Vused, float cap,
                     float scale) {
    const float inv_cap = cap > 0 ? 1.0f / cap : 0.0f;
#pragma omp parallel for
    for (int r = 0; r < N; r++) {
        float *z = logits + (size_t)r * V;
        const int t = targets[r];
        if (t < 0) {
            memset(z, 0, sizeof(float) * V);
            continue;
        }
        const float l = lse[r], zt = z[t];
        /* 16 lanes: each element on its own, so the same bits at any width (issue 9) */
        if (cap > 0) {
#pragma omp simd simdlen(16)
            for (int i = 0; i < Vused; i++) {
                const float th = z[i] * inv_cap;
                z[i] = swax_expf(z[i] - l) * scale * (1.0f - th * th);
            }
            z[t] -= scale * (1.0f - zt * inv_cap * zt * inv_cap); /* the one-hot term */
        } else {
#pragma omp simd simdlen(16)
            for (int i = 0; i < Vused; i++) z[i] = swax_expf(z[i] - l) * scale;
            z[t] -= scale;
        }
        for (int i = Vused; i < V; i++) z[i] = 0;
    }
}

static void adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                  float wd, int step) {
    const float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
    const float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * (1.0f - lr * wd);
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        const float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = pi - step_size * m[i] / denom;
    }
}

static void adamw_segs(float *p, const float *g, float *m, float *v, size_t n, const size_t *start,
                       const uint8_t *decay, int nseg, float gscale, float lr, float b1, float b2, float eps, float wd,
                       int step) {
    const float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
    const float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
    SWAX_ASSERT(nseg >= 1 && start[0] == 0 && start[nseg] == n);
    for (int s = 0; s < nseg; s++) {
        const float dec = 1.0f - lr * (decay[s] ? wd : 0.0f);
#pragma omp parallel for
        for (size_t i = start[s]; i < start[s + 1]; i++) {
            const float gi = g[i] * gscale;
            float pi = p[i] * dec;
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            const float denom = sqrtf(v[i]) / bc2_sqrt + eps;
            p[i] = pi - step_size * m[i] / denom;
        }
    }
}

static double sumsq(const float *x, size_t n) {
    /* fixed blocks, summed in order: independent of the thread count */
    const size_t BLK = 1 << 16, nb = (n + BLK - 1) / BLK;
    double *part = calloc(nb ? nb : 1, sizeof(double));
    SWAX_ASSERT(part);
#pragma omp parallel for
    for (size_t b = 0; b < nb; b++) {
        /* 8 running sums per block, added in order at its end: a fixed order at any vector width
         * and thread count; one serial chain was add-latency bound (issue 9: ~8 -> ~3 ms on 8.5M) */
        const size_t lo = b * BLK, hi = lo + BLK < n ? lo + BLK : n;
        double acc[8] = {0};
        size_t i = lo;
        for (; i + 8 <= hi; i += 8)
#pragma omp simd
            for (int j = 0; j < 8; j++) acc[j] += (double)x[i + j] * x[i + j];
        double s = 0;
        for (int j = 0; j < 8; j++) s += acc[j];
        for (; i < hi; i++) s += (double)x[i] * x[i];
        part[b] = s;
    }
    double s = 0;
    for (size_t b = 0; b < nb; b++) s += part[b];
    free(part);
    return s;
}

static void scale(float *x, size_t n, float s) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

static const SwaxOps cpu_ops = {
    .name = "cpu",
    .is_device = 0,
    .sync = cpu_sync,
    .mem_used = cpu_mem_used,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .zero = cpu_zero,
    .matmul_fwd = matmul_fwd,
    .matmul_bwd = matmul_bwd,
    .embed_fwd = embed_fwd,
    .embed_bwd = embed_bwd,
    .rmsnorm_fwd = rmsnorm_fwd,
    .rmsnorm_bwd = rmsnorm_bwd,
    .add = add,
    .swiglu_fwd = swiglu_fwd,
    .swiglu_bwd = swiglu_bwd,
    .attn_fwd = attn_fwd,
    .attn_bwd = attn_bwd,
    .mlstm_gates_fwd = mlstm_gates_fwd,
    .mlstm_gates_bwd = mlstm_gates_bwd,
    .mlstm_cell_fwd = mlstm_cell_fwd,
    .mlstm_cell_bwd = mlstm_cell_bwd,
    .mlstm_out_fwd = mlstm_out_fwd,
    .mlstm_out_bwd = mlstm_out_bwd,
    .xent_fwd = xent_fwd,
    .xent_bwd = xent_bwd,
    .adamw = adamw,
    .adamw_segs = adamw_segs,
    .sumsq = sumsq,
    .scale = scale,
    .gdn_fwd = swax_cpu_gdn_fwd,
    .gdn_bwd = swax_cpu_gdn_bwd,
};

const SwaxOps *swax_ops_cpu(void) { return &cpu_ops; }

/* "cpu-bf16": the CPU table with bf16 operands in the model's matrix products (gemm_bf16.h) */
static void matmul_fwd_bf16(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC) {
    swax_bf16_gemm(0, 1, N, OC, C, inp, ldi, w, C, 0.0f, out, ldo);
}

static void matmul_bwd_bf16(float *dinp, long lddi, float *dw, const float *dout, long lddo, const float *inp,
                            long ldi, const float *w, int N, int C, int OC, int acc) {
    if (dinp) swax_bf16_gemm(0, 0, N, C, OC, dout, lddo, w, C, acc ? 1.0f : 0.0f, dinp, lddi);
    /* dout (N, OC) packed once for both products: here it is read as doutᵀ, the same stored layout */
    if (dw) swax_bf16_gemm_ex(1, 0, OC, C, N, dout, lddo, inp, ldi, 1.0f, dw, C, dinp != NULL);
}

const SwaxOps *swax_ops_cpu_bf16(void) {
    static SwaxOps t;
    static int made;
    if (swax_bf16_gemm_init()) return NULL;
    if (!made) {
        t = cpu_ops;
        t.name = "cpu-bf16";
        t.matmul_fwd = matmul_fwd_bf16;
        t.matmul_bwd = matmul_bwd_bf16;
        made = 1;
    }
    return &t;
}

/* OpenMP as swax's code and its libraries assume it: a team has the threads it asks for, and a
 * parallel region inside another runs on one thread. With OMP_DYNAMIC=true the runtime may give
 * fewer (on a loaded machine, or above the core count): OpenBLAS's OpenMP build then waits forever
 * for work no thread takes (a hang in exec_blas under the mLSTM cell), and oneDNN computed wrong
 * products without an error (eval ppl 7.68 against 6.94). With nesting allowed (OMP_NESTED,
 * OMP_MAX_ACTIVE_LEVELS > 1), every small loop inside batched decode's per-thread region started
 * its own team: ~140 threads, 110 tokens/s against 14,400. Set before main (the initial thread's
 * values are inherited by every team) and again by swax_set_threads. */
static void omp_policy(void) {
    /* only where the environment asked otherwise: a setter makes libgomp allocate the calling thread's
     * own ICV block, which LeakSanitizer reports in a program that then runs no parallel region */
    if (omp_get_dynamic()) omp_set_dynamic(0);
    if (omp_get_max_active_levels() > 1) omp_set_max_active_levels(1);
}
__attribute__((constructor)) static void omp_policy_at_load(void) { omp_policy(); }

void swax_set_threads(int n) {
    omp_policy();
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
