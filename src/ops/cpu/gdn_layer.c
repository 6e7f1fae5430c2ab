/* gdn_layer.c — the CPU Gated DeltaNet layer between its projections (SPEC §2):
 *
 *   q, k, v = silu(causal_depthwise_conv4(proj[:, :2D]))   (no look-back across a document start)
 *   q̂ = q·rsqrt(Σq² + 1e-6)/√dk,  k̂ = k·rsqrt(Σk² + 1e-6)  per head
 *   β = sigmoid(b),  g = −e^A_log·softplus(a + dt_bias)     per head and token
 *   o = GatedDeltaNet_cell(q̂, k̂, v, β, g)                   (gdn_cell.h, chunkwise)
 *   y = RMSNorm_head(o)·w ⊙ silu(gate)
 *
 * Rows run in parallel, the cell over (sequence, head) pairs. The small
 * parameters' gradients (conv, A_log, dt_bias, norm) are summed per block of
 * ROWBLK rows, then over the blocks in order: deterministic at any thread count. */
#include "ops/cpu/gdn_layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/cpu/fastmath.h"
#include "ops/cpu/gdn_cell.h"

enum { ROWBLK = 64, KW = 4 };
#define QK_EPS 1e-6f

static inline float softplusf(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
static inline float sigmf(float x) { return 1.0f / (1.0f + expf(-x)); }

void swax_gdn_prep_row(const float *const x[4], int NH, int dk, int dv, const float *conv_w, const float *A_log,
                       const float *dt_bias, float *xc, float *qkv, float *rqk, float *beta, float *g) {
    const int D = NH * dv, C = 2 * D;
    for (int c = 0; c < C; c++) {
        const float *w = conv_w + (size_t)c * KW;
        float acc = 0;
        for (int j = 0; j < KW; j++)
            if (x[j]) acc += w[KW - 1 - j] * x[j][c];
        if (xc) xc[c] = acc;
        qkv[c] = acc * sigmf(acc);
    }
    const float qs = 1.0f / sqrtf((float)dk);
    for (int part = 0; part < 2; part++) /* q, then k */
        for (int h = 0; h < NH; h++) {
            float *u = qkv + (size_t)part * NH * dk + (size_t)h * dk;
            float ss = 0;
            for (int j = 0; j < dk; j++) ss += u[j] * u[j];
            const float r = 1.0f / sqrtf(ss + QK_EPS);
            rqk[part * NH + h] = r;
            const float s = part == 0 ? r * qs : r;
            for (int j = 0; j < dk; j++) u[j] *= s;
        }
    const float *pre = x[0] + 3 * (size_t)D;
    for (int h = 0; h < NH; h++) {
        beta[h] = sigmf(pre[h]);
        g[h] = -expf(A_log[h]) * softplusf(pre[NH + h] + dt_bias[h]);
    }
}

void swax_gdn_out_row(const float *o, const float *gate, const float *w, int NH, int dv, float eps, float *y,
                      float *orstd) {
    for (int h = 0; h < NH; h++) {
        const float *oh = o + (size_t)h * dv;
        float ss = 0;
        for (int e = 0; e < dv; e++) ss += oh[e] * oh[e];
        const float rs = 1.0f / sqrtf(ss / dv + eps);
        if (orstd) orstd[h] = rs;
        for (int e = 0; e < dv; e++) {
            const int col = h * dv + e;
            y[col] = oh[e] * rs * w[col] * gate[col] * swax_sigmoidf(gate[col]);
        }
    }
}

/* How far back (0..3 rows) position t of a sequence may look: not before 0,
 * not before the start of its document. */
static inline int look_back(const uint8_t *ds, int t) {
    int back = 0;
    while (back < KW - 1 && t - back > 0 && !(ds && ds[t - back])) back++;
    return back;
}

static GdnArgs_f cell_args(const SwaxGdnCall *c, int b, int h, float *dqkv, float *dbeta, float *dg,
                           const float *dout) {
    const int T = c->T, NH = c->NH, dk = c->dk, dv = c->dv, D = NH * dv;
    const size_t row0 = (size_t)b * T, bh = (size_t)b * NH + h;
    GdnArgs_f a;
    memset(&a, 0, sizeof a);
    a.T = T, a.dk = dk, a.dv = dv, a.L = c->L;
    a.q = c->qkv + row0 * 2 * D + (size_t)h * dk, a.ldq = 2L * D;
    a.k = c->qkv + row0 * 2 * D + (size_t)NH * dk + (size_t)h * dk, a.ldk = 2L * D;
    a.v = c->qkv + row0 * 2 * D + (size_t)D + (size_t)h * dv, a.ldv = 2L * D;
    a.beta = c->beta + row0 * NH + h, a.g = c->g + row0 * NH + h, a.ldg = NH;
    a.doc_start = c->doc_start ? c->doc_start + row0 : NULL;
    a.o = c->o + row0 * D + (size_t)h * dv, a.ldo = D;
    a.Ss = c->Ss + bh * c->max_chunks * dk * dv, a.max_chunks = c->max_chunks;
    if (dqkv) {
        a.dout = dout + row0 * D + (size_t)h * dv;
        a.dq = dqkv + row0 * 2 * D + (size_t)h * dk;
        a.dk_ = dqkv + row0 * 2 * D + (size_t)NH * dk + (size_t)h * dk;
        a.dv_ = dqkv + row0 * 2 * D + (size_t)D + (size_t)h * dv;
        a.dbeta = dbeta + row0 * NH + h, a.dg = dg + row0 * NH + h;
    }
    return a;
}

void swax_cpu_gdn_fwd(SwaxGdnCall *c) {
    const int B = c->B, T = c->T, NH = c->NH, dk = c->dk, dv = c->dv, D = NH * dv;
    const int N = B * T;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const int b = r / T, t = r % T;
        const int back = look_back(c->doc_start ? c->doc_start + (size_t)b * T : NULL, t);
        const float *x[4] = {NULL, NULL, NULL, NULL};
        for (int j = 0; j <= back; j++) x[j] = c->proj + (size_t)(r - j) * c->ldp;
        swax_gdn_prep_row(x, NH, dk, dv, c->conv_w, c->A_log, c->dt_bias, c->xc + (size_t)r * 2 * D,
                          c->qkv + (size_t)r * 2 * D, c->rqk + (size_t)r * 2 * NH, c->beta + (size_t)r * NH,
                          c->g + (size_t)r * NH);
    }
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            GdnArgs_f a = cell_args(c, b, h, NULL, NULL, NULL, NULL);
            SWAX_ASSERT(swax_gdn_chunkwise_fwd_f(&a) == 0);
        }
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++)
        swax_gdn_out_row(c->o + (size_t)r * D, c->proj + (size_t)r * c->ldp + 2 * (size_t)D, c->norm_w, NH, dv,
                         c->eps, c->y + (size_t)r * D, c->orstd + (size_t)r * NH);
}

void swax_cpu_gdn_bwd(SwaxGdnCall *c) {
    const int B = c->B, T = c->T, NH = c->NH, dk = c->dk, dv = c->dv, D = NH * dv, C = 2 * D;
    const int N = B * T, nblk = (N + ROWBLK - 1) / ROWBLK;
    /* scratch: d o (N, D), then d qkv -> d xc in place (N, 2D), d β, d g (N, NH) */
    float *dO = c->scratch, *dX = dO + (size_t)N * D, *dB = dX + (size_t)N * C, *dG = dB + (size_t)N * NH;
    /* per row block: d norm_w (D), d conv_w (2D×4), d A_log, d dt_bias (NH each) */
    const size_t PW = (size_t)D + (size_t)C * KW + 2 * (size_t)NH;
    float *part = calloc((size_t)nblk * PW, sizeof(float));
    SWAX_ASSERT(part);
    const float qs = 1.0f / sqrtf((float)dk);
    /* 1. y = on·w ⊙ silu(gate), on = o·rs: d gate, d o, d norm_w */
#pragma omp parallel for schedule(static)
    for (int bl = 0; bl < nblk; bl++) {
        float *pn = part + (size_t)bl * PW;
        for (int r = bl * ROWBLK; r < N && r < (bl + 1) * ROWBLK; r++) {
            const float *o = c->o + (size_t)r * D, *dy = c->dy + (size_t)r * D;
            const float *gate = c->proj + (size_t)r * c->ldp + 2 * (size_t)D;
            float *dgate = c->dproj + (size_t)r * c->ldp + 2 * (size_t)D, *dor = dO + (size_t)r * D;
            for (int h = 0; h < NH; h++) {
                const float rs = c->orstd[(size_t)r * NH + h];
                float sdx = 0;
                for (int e = 0; e < dv; e++) {
                    const int col = h * dv + e;
                    const float s = swax_sigmoidf(gate[col]), silu = gate[col] * s, xh = o[col] * rs;
                    const float on = xh * c->norm_w[col];
                    dgate[col] = dy[col] * on * s * (1.0f + gate[col] * (1.0f - s));
                    const float don = dy[col] * silu;
                    pn[col] += don * xh;
                    sdx += don * c->norm_w[col] * xh;
                }
                sdx /= dv;
                for (int e = 0; e < dv; e++) {
                    const int col = h * dv + e;
                    const float silu = gate[col] * swax_sigmoidf(gate[col]);
                    dor[col] = rs * (dy[col] * silu * c->norm_w[col] - o[col] * rs * sdx);
                }
            }
        }
    }
    /* 2. the cell */
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            GdnArgs_f a = cell_args(c, b, h, dX, dB, dG, dO);
            SWAX_ASSERT(swax_gdn_chunkwise_bwd_f(&a) == 0);
        }
    /* 3. per row: gates; L2 norms and silu back to the conv outputs (in place in dX) */
#pragma omp parallel for schedule(static)
    for (int bl = 0; bl < nblk; bl++) {
        float *pA = part + (size_t)bl * PW + D + (size_t)C * KW, *pdt = pA + NH;
        for (int r = bl * ROWBLK; r < N && r < (bl + 1) * ROWBLK; r++) {
            const float *pre = c->proj + (size_t)r * c->ldp + 3 * (size_t)D;
            float *dpre = c->dproj + (size_t)r * c->ldp + 3 * (size_t)D;
            for (int h = 0; h < NH; h++) {
                const float be = c->beta[(size_t)r * NH + h], gg = c->g[(size_t)r * NH + h];
                const float dg = dG[(size_t)r * NH + h];
                dpre[h] = dB[(size_t)r * NH + h] * be * (1.0f - be);
                /* g = −e^A·softplus(u), u = a + dt_bias: dg/du = −e^A·sigmoid(u), dg/dA_log = g */
                const float du = dg * -expf(c->A_log[h]) * sigmf(pre[NH + h] + c->dt_bias[h]);
                dpre[NH + h] = du;
                pA[h] += dg * gg;
                pdt[h] += du;
            }
            const float *u = c->qkv + (size_t)r * C, *xc = c->xc + (size_t)r * C;
            float *d = dX + (size_t)r * C;
            for (int part_ = 0; part_ < 2; part_++)
                for (int h = 0; h < NH; h++) {
                    /* u = s·q·rq (s = 1/√dk for q): dq = rq·(dq̂ − q̂ (q̂·dq̂)), q̂ = q·rq */
                    const size_t off = (size_t)part_ * NH * dk + (size_t)h * dk;
                    const float s = part_ == 0 ? qs : 1.0f, rq = c->rqk[(size_t)r * 2 * NH + part_ * NH + h];
                    float dot = 0;
                    for (int j = 0; j < dk; j++) dot += (u[off + j] / s) * (d[off + j] * s);
                    for (int j = 0; j < dk; j++) d[off + j] = rq * (d[off + j] * s - (u[off + j] / s) * dot);
                }
            for (int ch = 0; ch < C; ch++) {
                const float sg = sigmf(xc[ch]);
                d[ch] *= sg * (1.0f + xc[ch] * (1.0f - sg));
            }
        }
    }
    /* 4. the convolution: d proj[s] = Σ_j w[3−j] d xc[s + j] over the rows s + j
     *    that reach back to s; d w[3−j] += d xc[t]·x[t − j] */
#pragma omp parallel for schedule(static)
    for (int bl = 0; bl < nblk; bl++) {
        float *pw = part + (size_t)bl * PW + D;
        for (int r = bl * ROWBLK; r < N && r < (bl + 1) * ROWBLK; r++) {
            const int b = r / T, t = r % T;
            const uint8_t *ds = c->doc_start ? c->doc_start + (size_t)b * T : NULL;
            float *dx = c->dproj + (size_t)r * c->ldp;
            memset(dx, 0, sizeof(float) * C);
            for (int j = 0; j < KW && t + j < T; j++) {
                if (look_back(ds, t + j) < j) break; /* a document starts in (t, t + j] */
                const float *dxc = dX + (size_t)(r + j) * C;
                for (int ch = 0; ch < C; ch++) dx[ch] += c->conv_w[(size_t)ch * KW + KW - 1 - j] * dxc[ch];
            }
            const int back = look_back(ds, t);
            const float *dxc = dX + (size_t)r * C;
            for (int j = 0; j <= back; j++) {
                const float *x = c->proj + (size_t)(r - j) * c->ldp;
                for (int ch = 0; ch < C; ch++) pw[(size_t)ch * KW + KW - 1 - j] += dxc[ch] * x[ch];
            }
        }
    }
    for (int bl = 0; bl < nblk; bl++) {
        const float *p = part + (size_t)bl * PW;
        for (int i = 0; i < D; i++) c->dnorm_w[i] += p[i];
        for (size_t i = 0; i < (size_t)C * KW; i++) c->dconv_w[i] += p[D + i];
        for (int h = 0; h < NH; h++) {
            c->dA_log[h] += p[D + (size_t)C * KW + h];
            c->ddt_bias[h] += p[D + (size_t)C * KW + NH + h];
        }
    }
    free(part);
}
