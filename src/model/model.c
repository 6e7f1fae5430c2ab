/* model.c — parameter layout, creation, initialisation (SPEC §2), and the
 * activation buffers. The forward/backward live in forward.c. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int add_tensor(SwaxModel *m, size_t *off, int cap, const char *name, int ndim, int64_t r, int64_t c,
                      int decay) {
    SWAX_ASSERT(m->n_tensors < cap);
    SwaxTensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = *off;
    t->ndim = ndim;
    t->shape[0] = r;
    t->shape[1] = ndim == 2 ? c : 1;
    t->decay = decay;
    *off += (size_t)r * (size_t)(ndim == 2 ? c : 1);
    return 0;
}

int swax_model_layout(SwaxModel *m) {
    const SwaxConfig *c = &m->cfg;
    const int D = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    const size_t plen = strlen(c->pattern);
    m->HD = c->attn_heads * c->head_dim;
    m->NH = c->mlstm_heads; /* 0 allowed (and unused) without 'M' layers; gdn_heads likewise without 'D' */
    m->dk = m->NH > 0 ? D / (2 * m->NH) : 0;
    m->dv = m->NH > 0 ? D / m->NH : 0;
    m->P_m = 3 * D + 2 * m->NH;
    m->NHd = swax_config_gdn_heads(c);
    m->dkd = m->NHd > 0 ? D / (2 * m->NHd) : 0;
    m->dvd = m->NHd > 0 ? D / m->NHd : 0;
    m->P_d = 3 * D + 2 * m->NHd;
    for (int i = 0; i < c->n_blocks; i++) m->kinds[i] = c->pattern[i % plen];
    m->kinds[c->n_blocks] = 0;
    const int cap = 3 + 20 * c->n_blocks;
    m->tensors = swax_calloc(cap, sizeof(SwaxTensor), "tensor table");
    if (!m->tensors) return SWAX_E_NOMEM;
    size_t off = 0;
    char nm[96];
    add_tensor(m, &off, cap, "embed.weight", 2, V, D, 1);
    for (int i = 0; i < c->n_blocks; i++) {
#define T2(suffix, r, cc) (snprintf(nm, sizeof nm, "blocks.%d.%s", i, suffix), add_tensor(m, &off, cap, nm, 2, r, cc, 1))
#define T1(suffix, r) (snprintf(nm, sizeof nm, "blocks.%d.%s", i, suffix), add_tensor(m, &off, cap, nm, 1, r, 1, 0))
        T1("norm1.weight", D);
        if (m->kinds[i] == 'A') {
            T2("attn.wq.weight", m->HD, D);
            T2("attn.wk.weight", m->HD, D);
            T2("attn.wv.weight", m->HD, D);
            T2("attn.wo.weight", D, m->HD);
        } else if (m->kinds[i] == 'D') {
            /* Gated DeltaNet: the projection rows [q; k; v; g; b; a] contiguous (w_mix) */
            T2("gdn.wq.weight", D / 2, D);
            T2("gdn.wk.weight", D / 2, D);
            T2("gdn.wv.weight", D, D);
            T2("gdn.wg.weight", D, D);
            T2("gdn.wb.weight", m->NHd, D);
            T2("gdn.wa.weight", m->NHd, D);
            /* conv weights: 2-D but no weight decay (SPEC §2) */
            snprintf(nm, sizeof nm, "blocks.%d.gdn.conv_q.weight", i), add_tensor(m, &off, cap, nm, 2, D / 2, 4, 0);
            snprintf(nm, sizeof nm, "blocks.%d.gdn.conv_k.weight", i), add_tensor(m, &off, cap, nm, 2, D / 2, 4, 0);
            snprintf(nm, sizeof nm, "blocks.%d.gdn.conv_v.weight", i), add_tensor(m, &off, cap, nm, 2, D, 4, 0);
            T1("gdn.A_log", m->NHd);
            T1("gdn.dt_bias", m->NHd);
            T1("gdn.norm.weight", D);
            T2("gdn.wo.weight", D, D);
        } else {
            T2("mlstm.wq.weight", D / 2, D);
            T2("mlstm.wk.weight", D / 2, D);
            T2("mlstm.wv.weight", D, D);
            T2("mlstm.wog.weight", D, D);
            T2("mlstm.wi.weight", m->NH, D);
            T2("mlstm.wf.weight", m->NH, D);
            T1("mlstm.wi.bias", m->NH);
            T1("mlstm.wf.bias", m->NH);
            T1("mlstm.norm.weight", D);
            T2("mlstm.wo.weight", D, D);
        }
        T1("norm2.weight", D);
        T2("ffn.w_gate.weight", F, D);
        T2("ffn.w_up.weight", F, D);
        T2("ffn.w_down.weight", D, F);
#undef T1
#undef T2
    }
    add_tensor(m, &off, cap, "norm.weight", 1, D, 1, 0);
    if (!c->tie_embeddings) add_tensor(m, &off, cap, "lm_head.weight", 2, V, D, 1);
    m->n_params = off;
    return 0;
}

static float *tensor_ptr(const SwaxModel *m, float *base, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return base + m->tensors[i].offset;
    return NULL;
}

void swax_model_views(SwaxModel *m, float *base, ModelW *w) {
    char nm[96];
    w->embed = tensor_ptr(m, base, "embed.weight");
    w->norm_f = tensor_ptr(m, base, "norm.weight");
    w->lm_head = m->cfg.tie_embeddings ? w->embed : tensor_ptr(m, base, "lm_head.weight");
    for (int i = 0; i < m->cfg.n_blocks; i++) {
        BlockW *b = &w->blocks[i];
        memset(b, 0, sizeof *b);
#define P(field, suffix) (snprintf(nm, sizeof nm, "blocks.%d.%s", i, suffix), b->field = tensor_ptr(m, base, nm))
        P(norm1, "norm1.weight");
        P(norm2, "norm2.weight");
        P(w_gu, "ffn.w_gate.weight");
        P(w_down, "ffn.w_down.weight");
        if (m->kinds[i] == 'A') {
            P(w_mix, "attn.wq.weight");
            P(w_out, "attn.wo.weight");
        } else if (m->kinds[i] == 'D') {
            P(w_mix, "gdn.wq.weight");
            P(conv_w, "gdn.conv_q.weight");
            P(A_log, "gdn.A_log");
            P(dt_bias, "gdn.dt_bias");
            P(mix_norm, "gdn.norm.weight");
            P(w_out, "gdn.wo.weight");
        } else {
            P(w_mix, "mlstm.wq.weight");
            P(b_gates, "mlstm.wi.bias");
            P(mix_norm, "mlstm.norm.weight");
            P(w_out, "mlstm.wo.weight");
        }
#undef P
    }
}

int swax_model_create(const SwaxConfig *c, SwaxModel **out) {
    *out = NULL;
    SWAX_TRY(swax_config_validate(c));
    SwaxModel *m = swax_calloc(1, sizeof *m, "model");
    if (!m) return SWAX_E_NOMEM;
    m->cfg = *c;
    m->ops = swax_ops_cpu();
    int rc = swax_model_layout(m);
    if (!rc) {
        m->w.blocks = swax_calloc(c->n_blocks, sizeof(BlockW), "block table");
        m->g.blocks = swax_calloc(c->n_blocks, sizeof(BlockW), "block table");
        m->params = swax_calloc(m->n_params, sizeof(float), "parameters");
        if (!m->w.blocks || !m->g.blocks || !m->params) rc = SWAX_E_NOMEM;
    }
    if (rc) {
        swax_model_free(m);
        return rc;
    }
    swax_model_views(m, m->params, &m->w);
    /* norm weights 1, the rest 0 until init */
    for (int i = 0; i < m->n_tensors; i++)
        if (strstr(m->tensors[i].name, "norm")) {
            float *p = m->params + m->tensors[i].offset;
            for (int64_t j = 0; j < m->tensors[i].shape[0]; j++) p[j] = 1.0f;
        }
    *out = m;
    return 0;
}

void swax_model_init(SwaxModel *m, uint64_t seed) {
    const SwaxConfig *c = &m->cfg;
    float *params = swax_model_params(m);
    const double D = c->d_model;
    const double s_small = sqrt(2.0 / (5.0 * D));
    const double s_out = 2.0 / (c->n_blocks * sqrt(D));
    for (int i = 0; i < m->n_tensors; i++) {
        const SwaxTensor *t = &m->tensors[i];
        float *p = params + t->offset;
        const size_t n = (size_t)t->shape[0] * (size_t)t->shape[1];
        const char *nm = t->name;
        SwaxRng r;
        swax_rng_seed(&r, seed, (uint64_t)i + 1); /* one stream per tensor */
        double sd = 0;
        if (strstr(nm, "norm")) {
            for (size_t j = 0; j < n; j++) p[j] = 1.0f;
            continue;
        } else if (strstr(nm, "wi.bias")) {
            for (size_t j = 0; j < n; j++) p[j] = c->igate_bias_init;
            continue;
        } else if (strstr(nm, "wf.bias")) {
            for (size_t j = 0; j < n; j++) p[j] = n > 1 ? (float)(3.0 + 3.0 * (double)j / (double)(n - 1)) : 3.0f;
            continue;
        } else if (strstr(nm, "gdn.conv_")) { /* U(−1/√4, 1/√4) */
            for (size_t j = 0; j < n; j++) p[j] = (float)(swax_rng_uniform(&r) - 0.5);
            continue;
        } else if (strstr(nm, "gdn.A_log")) { /* log U[1, 16] */
            for (size_t j = 0; j < n; j++) p[j] = (float)log(1.0 + 15.0 * swax_rng_uniform(&r));
            continue;
        } else if (strstr(nm, "gdn.dt_bias")) { /* softplus⁻¹(dt), dt log-uniform in [0.001, 0.1] */
            for (size_t j = 0; j < n; j++) {
                const double dt = exp(log(0.001) + (log(0.1) - log(0.001)) * swax_rng_uniform(&r));
                p[j] = (float)(dt + log(-expm1(-dt)));
            }
            continue;
        } else if (strstr(nm, "wi.weight") || strstr(nm, "wf.weight") || strstr(nm, "wog.weight")) {
            sd = 0;
        } else if (strstr(nm, ".wo.weight") || strstr(nm, "w_down")) {
            sd = s_out;
        } else {
            sd = s_small; /* embed, wq/wk/wv, w_gate, w_up, lm_head */
        }
        for (size_t j = 0; j < n; j++) p[j] = sd > 0 ? (float)(sd * swax_rng_normal(&r)) : 0.0f;
    }
    swax_model_params_changed(m);
}

void swax_model_free_acts(SwaxModel *m) {
    const SwaxOps *ops = m->ops;
    if (m->res)
        for (int i = 0; i <= m->cfg.n_blocks; i++) ops->free(m->res[i]);
    free(m->res);
    m->res = NULL;
    if (m->acts)
        for (int i = 0; i < m->act_sets; i++) { /* with --recompute the blocks share set 0 */
            BlockActs *a = &m->acts[i];
            void *ptrs[] = {a->ln1, a->rstd1, a->mix, a->att, a->lse, a->ig, a->lf, a->h, a->hn, a->hmean,
                            a->hrstd, a->y, a->m_t, a->den_t, a->arg_t, a->Cs, a->ns, a->ms, a->arg_end,
                            a->res_mid, a->ln2, a->rstd2, a->gu, a->hf, a->gd_xc, a->gd_qkv, a->gd_rqk,
                            a->gd_beta, a->gd_g, a->gd_o, a->gd_orstd, a->gd_Ss};
            for (size_t j = 0; j < sizeof ptrs / sizeof ptrs[0]; j++) ops->free(ptrs[j]);
        }
    free(m->acts);
    m->acts = NULL;
    void *ptrs[] = {m->lnf, m->rstdf, m->logits, m->losses, m->lse, m->tokens, m->targets, m->doc_start, m->doc_lo,
                    m->chunks, m->dres, m->dln, m->dbig, m->dmid, m->dh2, m->dig, m->dlf, m->dhead, m->dgdn, m->dhf,
                    m->head_lg};
    for (size_t j = 0; j < sizeof ptrs / sizeof ptrs[0]; j++) ops->free(ptrs[j]);
    m->lnf = m->rstdf = m->logits = m->losses = m->lse = m->dhead = NULL;
    m->cap_logit_rows = 0;
    m->tokens = m->targets = NULL;
    m->doc_start = NULL;
    m->doc_lo = m->chunks = NULL;
    free(m->h_doc_start), free(m->h_doc_lo), free(m->h_chunks), free(m->h_losses), free(m->h_logits);
    m->h_doc_start = NULL;
    m->h_doc_lo = m->h_chunks = NULL;
    m->h_losses = m->h_logits = NULL;
    m->dres = m->dln = m->dbig = m->dmid = m->dh2 = m->dig = m->dlf = m->dgdn = m->dhf = m->head_lg = NULL;
    m->head_lg_rows = 0;
    m->cap_B = m->cap_T = m->cap_chunks = 0;
}

int swax_model_ensure_logits(SwaxModel *m, size_t rows) {
    if (rows <= m->cap_logit_rows && m->logits) return 0;
    const SwaxOps *ops = m->ops;
    ops->free(m->logits);
    m->logits = ops->alloc(sizeof(float) * rows * (size_t)m->cfg.vocab_size);
    free(m->h_logits);
    m->h_logits = NULL;
    m->cap_logit_rows = m->logits ? rows : 0;
    if (!m->logits)
        return swax_error_wrap(SWAX_E_NOMEM, "logits for %zu rows x %d", rows, m->cfg.vocab_size);
    return 0;
}

void swax_model_set_fused_head(SwaxModel *m, int on) { m->fused_head = on != 0; }

void swax_model_set_recompute(SwaxModel *m, int on) {
    if (m->recompute == (on != 0)) return;
    swax_model_free_acts(m); /* made again in the new layout at the next forward */
    m->recompute = on != 0;
    m->logits_valid = 0, m->fused_last = 0;
}

/* Allocates activations for B×T rows (and `chunks` mLSTM chunks per sequence),
 * reusing the current ones when they are large enough. */
int swax_model_ensure_acts(SwaxModel *m, int B, int T, int chunks) {
    if (m->acts && B <= m->cap_B && T <= m->cap_T && chunks <= m->cap_chunks && (size_t)B * T <= (size_t)m->cap_B * m->cap_T)
        return 0;
    int nB = B > m->cap_B ? B : m->cap_B, nT = T > m->cap_T ? T : m->cap_T;
    int nC = chunks > m->cap_chunks ? chunks : m->cap_chunks;
    swax_model_free_acts(m);
    const SwaxConfig *c = &m->cfg;
    const size_t N = (size_t)nB * nT, D = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    const size_t HD = m->HD, NH = m->NH, P = m->P_m, dk = m->dk, dv = m->dv;
    int fail = 0;
    const SwaxOps *ops = m->ops;
    /* ALLOC: where the ops compute; HALLOC: host memory (tables and staging) */
#define ALLOC(ptr, count, type) \
    do { if (!fail && !((ptr) = ops->alloc((count) * sizeof(type)))) fail = 1; } while (0)
/* activations that only products, RMSNorm and SwiGLU touch (ops.h alloc_act: maybe bf16) */
#define ACT_ALLOC(ptr, count)                                                                              \
    do {                                                                                                   \
        if (!fail && !((ptr) = ops->alloc_act ? ops->alloc_act(count) : ops->alloc((count) * sizeof(float)))) \
            fail = 1;                                                                                      \
    } while (0)
#define HALLOC(ptr, count, type) \
    do { if (!fail && !((ptr) = swax_calloc((count), sizeof(type), #ptr))) fail = 1; } while (0)
    HALLOC(m->res, (size_t)c->n_blocks + 1, float *);
    HALLOC(m->acts, (size_t)c->n_blocks, BlockActs);
    for (int i = 0; !fail && i <= c->n_blocks; i++) ALLOC(m->res[i], N * D, float);
    size_t bigw = 2 * F;
    /* --recompute: one set of activations (both kinds' fields) shared by every
     * block; the backward makes each block's again */
    const int nsets = m->recompute ? 1 : c->n_blocks;
    m->act_sets = m->acts ? nsets : 0;
    int has_a = 0, has_m = 0, has_d = 0;
    for (int i = 0; i < c->n_blocks; i++)
        has_a |= m->kinds[i] == 'A', has_m |= m->kinds[i] == 'M', has_d |= m->kinds[i] == 'D';
    for (int i = 0; !fail && i < nsets; i++) {
        BlockActs *a = &m->acts[i];
        const int want_a = m->recompute ? has_a : m->kinds[i] == 'A';
        const int want_m = m->recompute ? has_m : m->kinds[i] == 'M';
        const int want_d = m->recompute ? has_d : m->kinds[i] == 'D';
        ACT_ALLOC(a->ln1, N * D);
        ALLOC(a->rstd1, N, float);
        ALLOC(a->res_mid, N * D, float);
        ACT_ALLOC(a->ln2, N * D);
        ALLOC(a->rstd2, N, float);
        ACT_ALLOC(a->gu, N * 2 * F);
        ACT_ALLOC(a->hf, N * F);
        size_t mixw = want_a ? 3 * HD : 0;
        if (want_m && P > mixw) mixw = P;
        if (want_d && (size_t)m->P_d > mixw) mixw = m->P_d;
        ALLOC(a->mix, N * mixw, float);
        if (want_d) {
            const size_t NHd = m->NHd, S = (size_t)nB * NHd * nC;
            ALLOC(a->gd_xc, N * 2 * D, float);
            ALLOC(a->gd_qkv, N * 2 * D, float);
            ALLOC(a->gd_rqk, N * 2 * NHd, float);
            ALLOC(a->gd_beta, N * NHd, float);
            ALLOC(a->gd_g, N * NHd, float);
            ALLOC(a->gd_o, N * D, float);
            ALLOC(a->gd_orstd, N * NHd, float);
            ALLOC(a->gd_Ss, S * m->dkd * m->dvd, float);
            if (!want_m) ALLOC(a->y, N * D, float);
            if ((size_t)m->P_d > bigw) bigw = m->P_d;
        }
        if (want_a) {
            ALLOC(a->att, N * HD, float);
            ALLOC(a->lse, N * c->attn_heads, float);
            if (3 * HD > bigw) bigw = 3 * HD;
        }
        if (want_m) {
            const size_t S = (size_t)nB * NH * nC;
            ALLOC(a->ig, N * NH, float);
            ALLOC(a->lf, N * NH, float);
            ALLOC(a->h, N * D, float);
            ALLOC(a->hn, N * D, float);
            ALLOC(a->hmean, N * NH, float);
            ALLOC(a->hrstd, N * NH, float);
            ALLOC(a->y, N * D, float);
            ALLOC(a->m_t, N * NH, float);
            ALLOC(a->den_t, N * NH, float);
            ALLOC(a->arg_t, N * NH, int);
            ALLOC(a->Cs, S * dk * dv, float);
            ALLOC(a->ns, S * dk, float);
            ALLOC(a->ms, S, float);
            ALLOC(a->arg_end, S, int);
            if (P > bigw) bigw = P;
        }
    }
    for (int i = nsets; !fail && i < c->n_blocks; i++) m->acts[i] = m->acts[0];
    ALLOC(m->lnf, N * D, float);
    ALLOC(m->rstdf, N, float);
    (void)V; /* the logits: swax_model_ensure_logits, sized per call */
    ALLOC(m->losses, N, float);
    ALLOC(m->lse, N, float);
    ALLOC(m->tokens, N, int32_t);
    ALLOC(m->targets, N, int32_t);
    ALLOC(m->doc_start, N, uint8_t);
    ALLOC(m->doc_lo, N, int);
    ALLOC(m->chunks, (size_t)nB * (nC + 1), int);
    HALLOC(m->h_doc_start, N, uint8_t);
    HALLOC(m->h_doc_lo, N, int);
    HALLOC(m->h_chunks, (size_t)nB * (nC + 1), int);
    HALLOC(m->h_losses, N, float);
    ALLOC(m->dres, N * D, float);
    ALLOC(m->dln, N * D, float);
    ALLOC(m->dbig, N * bigw, float);
    ALLOC(m->dmid, N * (F > D ? F : D) + N * HD, float);
    ACT_ALLOC(m->dhf, N * F);
    ALLOC(m->dh2, N * D, float);
    ALLOC(m->dig, N * NH, float);
    ALLOC(m->dlf, N * NH, float);
    if (has_d) ALLOC(m->dgdn, N * (3 * D + 2 * (size_t)m->NHd), float);
#undef ALLOC
#undef ACT_ALLOC
#undef HALLOC
    if (fail) {
        swax_model_free_acts(m);
        return swax_error_wrap(SWAX_E_NOMEM, "activations for batch %d x %d", nB, nT);
    }
    m->cap_B = nB, m->cap_T = nT, m->cap_chunks = nC;
    return 0;
}

void swax_model_free(SwaxModel *m) {
    if (!m) return;
    swax_model_free_acts(m);
    m->ops->free(m->params);
    m->ops->free(m->grads);
    free(m->host_params);
    free(m->host_grads);
    free(m->tensors);
    free(m->w.blocks);
    free(m->g.blocks);
    free(m);
}

const SwaxConfig *swax_model_config(const SwaxModel *m) { return &m->cfg; }
size_t swax_model_num_params(const SwaxModel *m) { return m->n_params; }
const char *swax_model_device(const SwaxModel *m) { return m->ops->name; }
int swax_model_on_device(const SwaxModel *m) { return m->ops->is_device != 0; }

void swax_model_sync(SwaxModel *m) { m->ops->sync(); }
size_t swax_model_device_memory(const SwaxModel *m) { return m->ops->mem_used(); }

double swax_model_train_flops_per_token(const SwaxConfig *c, int T, int window, int chunk) {
    const double D = c->d_model, F = c->ffn_dim, V = c->vocab_size, HD = (double)c->attn_heads * c->head_dim;
    const double NH = c->mlstm_heads, dk = D / (2 * NH), dv = D / NH;
    const size_t plen = strlen(c->pattern);
    /* average keys a query sees: (1/T) Σ_t min(t + 1, w) */
    const double w = window < T ? window : T;
    const double w_eff = T > 0 ? (w * (w + 1) / 2 + (T - w) * w) / T : 0;
    const double L = chunk > 0 ? (chunk < T ? chunk : T) : 64;
    double mm = V * D; /* the LM head (tied or not: its product is done either way) */
    double cell = 0;
    for (int i = 0; i < c->n_blocks; i++) {
        mm += 3 * D * F;
        if (c->pattern[i % plen] == 'A') {
            mm += 4 * D * HD;
            cell += 4 * w_eff * HD; /* QKᵀ and PV per token, forward */
        } else if (c->pattern[i % plen] == 'D') {
            const double nh = swax_config_gdn_heads(c), gk = D / (2 * nh), gv = D / nh;
            mm += D * (3 * D + 2 * nh) + D * D;
            /* per head and token, forward (chunk of L): A, W, U, P Δ, QKᵀ over L/2 on
             * average, S0 w, S0 q and the state update (dk·dv each) */
            cell += nh * ((L / 2) * (2 * gk + 2 * gv + gk) + 3 * 2 * gk * gv);
        } else {
            mm += D * (3 * D + 2 * NH) + D * D;
            /* per head and token, forward: intra-chunk QKᵀ and PV over L/2 keys on
             * average, the inter-chunk Cᵀq and the chunk-end state update */
            cell += NH * (2 * (L / 2) * (dk + dv) + 4 * dk * dv);
        }
    }
    return 6 * mm + 3 * cell;
}

float *swax_model_params(SwaxModel *m) {
    if (!m->ops->is_device) return m->params;
    m->ops->to_host(m->host_params, m->params, sizeof(float) * m->n_params);
    return m->host_params;
}

const float *swax_model_params_view(const SwaxModel *m) { return swax_model_params((SwaxModel *)m); }

void swax_model_params_changed(SwaxModel *m) {
    if (m->ops->is_device) m->ops->to_device(m->params, m->host_params, sizeof(float) * m->n_params);
    if (m->ops->params_updated) m->ops->params_updated(m->params, m->n_params);
}

float *swax_model_grads_dev(SwaxModel *m) {
    if (!m->grads) {
        m->grads = m->ops->alloc(sizeof(float) * m->n_params);
        if (!m->grads) return NULL;
        swax_model_views(m, m->grads, &m->g);
    }
    return m->grads;
}

float *swax_model_grads(SwaxModel *m) {
    if (!swax_model_grads_dev(m)) return NULL;
    if (!m->ops->is_device) return m->grads;
    if (!m->host_grads && !(m->host_grads = swax_calloc(m->n_params, sizeof(float), "host gradients"))) return NULL;
    m->ops->to_host(m->host_grads, m->grads, sizeof(float) * m->n_params);
    return m->host_grads;
}

void swax_zero_grad(SwaxModel *m) {
    if (m->grads) m->ops->zero(m->grads, sizeof(float) * m->n_params);
}

int swax_model_set_device(SwaxModel *m, const char *device) {
    const SwaxOps *to;
    if (!strcmp(device, "cpu")) to = swax_ops_cpu();
    else if (!strcmp(device, "cpu-bf16")) to = swax_ops_cpu_bf16();
    else if (!strcmp(device, "cuda")) to = swax_ops_cuda_bf16();
    else if (!strcmp(device, "cuda-fp32")) to = swax_ops_cuda();
    else return swax_error(SWAX_E_USAGE, "device '%s': expected cpu, cpu-bf16 (bf16 products), cuda (bf16 products) or cuda-fp32", device);
    if (!to) return swax_error_wrap(SWAX_E_USAGE, "--device %s", device);
    if (swax_ops_profile_on()) to = swax_ops_profiled(to);
    if (to == m->ops) return 0;
    if (strchr(m->cfg.pattern, 'D') && (!to->gdn_fwd || !to->gdn_bwd))
        return swax_error(SWAX_E_USAGE,
                          "pattern '%s' has Gated DeltaNet (D) layers, which the %s backend does not have yet "
                          "(use --device cpu)", m->cfg.pattern, to->name);
    /* host copy of the parameters, then everything is made again on the new side */
    float *host = swax_calloc(m->n_params, sizeof(float), "parameters");
    if (!host) return SWAX_E_NOMEM;
    memcpy(host, swax_model_params(m), sizeof(float) * m->n_params);
    float *params = to->alloc(sizeof(float) * m->n_params);
    if (!params) {
        free(host);
        return swax_error_wrap(SWAX_E_NOMEM, "parameters on %s", to->name);
    }
    to->to_device(params, host, sizeof(float) * m->n_params);
    swax_model_free_acts(m);
    m->ops->free(m->params);
    m->ops->free(m->grads);
    free(m->host_params);
    free(m->host_grads);
    m->grads = m->host_grads = NULL;
    m->ops = to;
    m->params = params;
    if (to->is_device) {
        m->host_params = host;
    } else {
        m->host_params = NULL;
        free(host);
    }
    swax_model_views(m, m->params, &m->w);
    m->logits_valid = 0;
    if (to->params_updated) to->params_updated(m->params, m->n_params);
    return 0;
}

int swax_model_num_tensors(const SwaxModel *m) { return m->n_tensors; }

int swax_model_tensor(const SwaxModel *m, int i, const char **name, size_t *offset, int *ndim, int64_t shape[2]) {
    if (i < 0 || i >= m->n_tensors) return swax_error(SWAX_E_USAGE, "tensor index %d out of range", i);
    const SwaxTensor *t = &m->tensors[i];
    if (name) *name = t->name;
    if (offset) *offset = t->offset;
    if (ndim) *ndim = t->ndim;
    if (shape) shape[0] = t->shape[0], shape[1] = t->shape[1];
    return 0;
}

const float *swax_model_logits(const SwaxModel *m) {
    if (!m->logits_valid) return NULL;
    if (!m->ops->is_device) return m->logits;
    SwaxModel *mm = (SwaxModel *)m; /* the host copy is a cache of the device's logits */
    const size_t n = (size_t)m->B * m->T * m->cfg.vocab_size;
    if (!mm->h_logits && !(mm->h_logits = swax_calloc(m->cap_logit_rows * m->cfg.vocab_size, sizeof(float),
                                                      "host logits")))
        return NULL;
    m->ops->to_host(mm->h_logits, m->logits, sizeof(float) * n);
    return mm->h_logits;
}

int swax_model_num_buckets(const SwaxModel *m) { return m->cfg.n_blocks + 2; }

/* The layout (swax_model_layout) is embed, block 0 .. block n-1, norm, [lm_head]:
 * a bucket is the span of its tensors. */
void swax_model_bucket(const SwaxModel *m, int bucket, size_t *offset, size_t *count) {
    const int nb = m->cfg.n_blocks;
    SWAX_ASSERT(bucket >= 0 && bucket < nb + 2);
    char pre[32];
    snprintf(pre, sizeof pre, "blocks.%d.", bucket - 1);
    size_t lo = m->n_params, hi = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const SwaxTensor *t = &m->tensors[i];
        const int is_block = !strncmp(t->name, "blocks.", 7);
        int in;
        if (bucket == 0) in = !strcmp(t->name, "embed.weight");
        else if (bucket == nb + 1) in = !is_block && strcmp(t->name, "embed.weight") != 0;
        else in = !strncmp(t->name, pre, strlen(pre));
        if (!in) continue;
        const size_t n = (size_t)t->shape[0] * (size_t)t->shape[1];
        if (t->offset < lo) lo = t->offset;
        if (t->offset + n > hi) hi = t->offset + n;
    }
    SWAX_ASSERT(hi > lo);
    *offset = lo, *count = hi - lo;
}
