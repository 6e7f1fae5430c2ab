/* forward.c — the SWAX forward and backward passes over a batch (SPEC §2).
 *
 *   x = embed(tokens)
 *   per block:  x += Mixer(RMSNorm1(x));  x += FFN(RMSNorm2(x))
 *   logits = softcap(W_lm · RMSNorm(x))
 *
 * Every intermediate is kept in BlockActs (named, so a debug dump can show
 * it); the backward walks the same list in reverse. All arithmetic goes
 * through m->ops (ops.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "ops/cpu/mlstm_cell.h" /* the chunk rule: swax_mlstm_num_chunks, swax_mlstm_chunk_starts */

/* Checks a batch at the library boundary: clean errors, never a crash. */
static int check_batch(const SwaxModel *m, const SwaxBatch *b) {
    if (b->B < 1 || b->T < 1) return swax_error(SWAX_E_USAGE, "batch: B=%d and T=%d must be >= 1", b->B, b->T);
    if ((size_t)b->B * (size_t)b->T > (size_t)1 << 31)
        return swax_error(SWAX_E_USAGE, "batch: B*T = %zu tokens is too large", (size_t)b->B * b->T);
    if (b->window < 1) return swax_error(SWAX_E_USAGE, "window %d: must be >= 1", b->window);
    if (b->chunk < 0) return swax_error(SWAX_E_USAGE, "chunk %d: must be >= 1 (0 = default)", b->chunk);
    if (!b->tokens) return swax_error(SWAX_E_USAGE, "batch: no tokens");
    const size_t N = (size_t)b->B * b->T;
    const int Vu = m->cfg.vocab_used;
    for (size_t i = 0; i < N; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= Vu)
            return swax_error(SWAX_E_INPUT, "token id %d at batch row %zu, position %zu is out of range [0, %d)",
                              b->tokens[i], i / b->T, i % b->T, Vu);
        if (b->targets && b->targets[i] >= Vu)
            return swax_error(SWAX_E_INPUT, "target id %d at batch row %zu, position %zu is out of range [0, %d)",
                              b->targets[i], i / b->T, i % b->T, Vu);
    }
    return 0;
}

static int max_chunks(const SwaxBatch *b, int L) {
    int mx = 0;
    for (int r = 0; r < b->B; r++) {
        int n = swax_mlstm_num_chunks(b->T, L, b->doc_start ? b->doc_start + (size_t)r * b->T : NULL);
        if (n > mx) mx = n;
    }
    return mx;
}

static void attn_call(SwaxModel *m, BlockActs *a, SwaxAttnCall *c) {
    memset(c, 0, sizeof *c);
    c->B = m->B, c->T = m->T, c->H = m->cfg.attn_heads, c->dh = m->cfg.head_dim, c->window = m->window;
    c->rope_theta = m->cfg.rope_theta;
    c->doc_lo = m->has_docs ? m->doc_lo : NULL;
    c->qkv = a->mix, c->out = a->att, c->lse = a->lse;
}

static void mlstm_call(SwaxModel *m, BlockActs *a, SwaxMlstmCall *c) {
    memset(c, 0, sizeof *c);
    c->B = m->B, c->T = m->T, c->NH = m->NH, c->dk = m->dk, c->dv = m->dv, c->L = m->chunk;
    c->eps = m->cfg.norm_eps;
    c->doc_start = m->has_docs ? m->doc_start : NULL;
    c->proj = a->mix, c->ldp = m->P_m, c->ig = a->ig, c->lf = a->lf, c->h = a->h;
    c->m_t = a->m_t, c->den_t = a->den_t, c->arg_t = a->arg_t;
    c->Cs = a->Cs, c->ns = a->ns, c->ms = a->ms, c->arg_end = a->arg_end, c->max_chunks = m->cap_chunks;
    c->chunks = m->chunks;
}

static void gdn_call(SwaxModel *m, BlockActs *a, const BlockW *w, SwaxGdnCall *c) {
    memset(c, 0, sizeof *c);
    c->B = m->B, c->T = m->T, c->NH = m->NHd, c->dk = m->dkd, c->dv = m->dvd, c->L = m->chunk;
    c->eps = m->cfg.norm_eps;
    c->doc_start = m->has_docs ? m->doc_start : NULL;
    c->proj = a->mix, c->ldp = m->P_d;
    c->conv_w = w->conv_w, c->A_log = w->A_log, c->dt_bias = w->dt_bias, c->norm_w = w->mix_norm;
    c->y = a->y, c->xc = a->gd_xc, c->qkv = a->gd_qkv, c->rqk = a->gd_rqk, c->beta = a->gd_beta, c->g = a->gd_g;
    c->o = a->gd_o, c->orstd = a->gd_orstd, c->Ss = a->gd_Ss, c->max_chunks = m->cap_chunks;
}

/* out (N, D) = inp (N, K) · wᵀ + resid: one product with the add in its
 * epilogue where the backend has one, else the product and an add. */
static void residual_matmul(const SwaxOps *ops, float *out, const float *inp, int K, const float *w, int N, int D,
                            const float *resid) {
    if (ops->matmul_fwd_add) {
        ops->matmul_fwd_add(out, D, inp, K, w, N, K, D, resid);
    } else {
        ops->matmul_fwd(out, D, inp, K, w, N, K, D);
        ops->add(out, resid, (size_t)N * D);
    }
}

/* Block l: res[l + 1] = block(res[l]), its activations in acts[l] (with
 * --recompute every block shares one set, made again in the backward). */
static void block_fwd(SwaxModel *m, int l) {
    const SwaxOps *ops = m->ops;
    const SwaxConfig *c = &m->cfg;
    const int N = m->B * m->T, D = c->d_model, F = c->ffn_dim;
    const BlockW *w = &m->w.blocks[l];
    BlockActs *a = &m->acts[l];
    float *x = m->res[l];
    ops->rmsnorm_fwd(a->ln1, a->rstd1, x, w->norm1, N, D, c->norm_eps);
    const float *out_in = a->y; /* the output projection's input, K wide */
    int K = D;
    if (m->kinds[l] == 'A') {
        /* {N, D} @ {3HD, D}ᵀ -> {N, 3HD} ; attention -> {N, HD} ; @ {D, HD}ᵀ -> {N, D} */
        ops->matmul_fwd(a->mix, 3L * m->HD, a->ln1, D, w->w_mix, N, D, 3 * m->HD);
        SwaxAttnCall ac;
        attn_call(m, a, &ac);
        ops->attn_fwd(&ac);
        out_in = a->att, K = m->HD;
    } else if (m->kinds[l] == 'D') {
        /* {N, D} -> proj {N, 3D + 2NH} = [q D/2 | k D/2 | v D | gate D | b NH | a NH] ;
         * conv, norms, gates, cell, gated RMSNorm -> y {N, D} ; @ W_o -> {N, D} */
        ops->matmul_fwd(a->mix, m->P_d, a->ln1, D, w->w_mix, N, D, m->P_d);
        SwaxGdnCall gc;
        gdn_call(m, a, w, &gc);
        ops->gdn_fwd(&gc);
    } else {
        /* {N, D} -> proj {N, 3D + 2NH} = [q D/2 | k D/2 | v D | og D | i NH | f NH] */
        const int P = m->P_m;
        ops->matmul_fwd(a->mix, P, a->ln1, D, w->w_mix, N, D, P);
        ops->mlstm_gates_fwd(a->ig, a->lf, a->mix + 3 * D, P, w->b_gates, N, m->NH, c->gate_softcap);
        SwaxMlstmCall mc;
        mlstm_call(m, a, &mc);
        ops->mlstm_cell_fwd(&mc);
        ops->mlstm_out_fwd(a->y, a->hn, a->hmean, a->hrstd, a->h, a->mix + 2 * D, P, w->mix_norm, N, m->NH, m->dv,
                           c->norm_eps);
    }
    /* the mixer's output projection and the residual; the FFN and its residual */
    residual_matmul(ops, a->res_mid, out_in, K, w->w_out, N, D, x);
    ops->rmsnorm_fwd(a->ln2, a->rstd2, a->res_mid, w->norm2, N, D, c->norm_eps);
    /* SwiGLU: {N, D} -> {N, 2F} -> {N, F} -> {N, D} */
    ops->matmul_fwd(a->gu, 2L * F, a->ln2, D, w->w_gu, N, D, 2 * F);
    ops->swiglu_fwd(a->hf, a->gu, N, F);
    residual_matmul(ops, m->res[l + 1], a->hf, F, w->w_down, N, D, a->res_mid);
}

/* The fused head's logits chunk of R rows: a bf16-storable buffer of its own
 * where the table offers one (ops.h alloc_act: the logits go only from the
 * product through xent_train to the product's backward), else the logits
 * buffer. */
static int head_chunk(SwaxModel *m, int R, float **lg) {
    const SwaxOps *ops = m->ops;
    if (!ops->alloc_act || !ops->xent_train) {
        SWAX_TRY(swax_model_ensure_logits(m, (size_t)R));
        *lg = m->logits;
        return 0;
    }
    if (m->head_lg_rows < (size_t)R) {
        ops->free(m->head_lg);
        m->head_lg_rows = 0;
        if (!(m->head_lg = ops->alloc_act((size_t)R * m->cfg.vocab_size)))
            return swax_error_wrap(SWAX_E_NOMEM, "head logits buffer");
        m->head_lg_rows = (size_t)R;
    }
    *lg = m->head_lg;
    return 0;
}

int swax_forward(SwaxModel *m, const SwaxBatch *b, float *loss) {
    SWAX_TRY(check_batch(m, b));
    const SwaxOps *ops = m->ops;
    const SwaxConfig *c = &m->cfg;
    const int B = b->B, T = b->T, N = B * T, D = c->d_model, V = c->vocab_size;
    const int L = b->chunk > 0 ? b->chunk : 64;
    SWAX_TRY(swax_model_ensure_acts(m, B, T, max_chunks(b, L)));
    m->B = B, m->T = T, m->window = b->window, m->chunk = L;
    m->has_docs = b->doc_start != NULL, m->has_targets = b->targets != NULL;
    m->logits_valid = 0, m->fused_last = 0;
    ops->to_device(m->tokens, b->tokens, sizeof(int32_t) * N);
    if (b->targets) ops->to_device(m->targets, b->targets, sizeof(int32_t) * N);
    if (b->doc_start) {
        for (int r = 0; r < B; r++) {
            int lo = 0;
            for (int t = 0; t < T; t++) {
                const size_t i = (size_t)r * T + t;
                m->h_doc_start[i] = b->doc_start[i] ? 1 : 0;
                if (m->h_doc_start[i]) lo = t;
                m->h_doc_lo[i] = lo;
            }
        }
        ops->to_device(m->doc_start, m->h_doc_start, (size_t)N);
        ops->to_device(m->doc_lo, m->h_doc_lo, sizeof(int) * N);
    }
    if (ops->is_device) { /* the chunk table (ops.h); the CPU table makes its own */
        const int stride = m->cap_chunks + 1;
        for (int r = 0; r < B; r++) {
            const uint8_t *ds = b->doc_start ? m->h_doc_start + (size_t)r * T : NULL;
            int *row = m->h_chunks + (size_t)r * stride;
            int n = swax_mlstm_chunk_starts(T, L, ds, row); /* ensure_acts sized rows for these */
            SWAX_ASSERT(n <= m->cap_chunks);
            while (n < stride) row[n++] = T;
        }
        ops->to_device(m->chunks, m->h_chunks, sizeof(int) * (size_t)B * stride);
    }

    ops->embed_fwd(m->res[0], m->tokens, m->w.embed, N, D);
    for (int l = 0; l < c->n_blocks; l++) block_fwd(m, l);
    ops->rmsnorm_fwd(m->lnf, m->rstdf, m->res[c->n_blocks], m->w.norm_f, N, D, c->norm_eps);
    m->n_targets = 0;
    if (b->targets)
        for (int i = 0; i < N; i++) m->n_targets += b->targets[i] >= 0;
    m->fused_last = m->fused_head && b->targets;
    if (m->fused_last) {
        /* the head's forward and backward in row chunks: logits (R, V) at a time,
         * turned into d logits at once; d lnf and d W_head kept for swax_backward */
        const int R = N < SWAX_HEAD_ROWS ? N : SWAX_HEAD_ROWS;
        float *lg = NULL;
        SWAX_TRY(head_chunk(m, R, &lg));
        if (!m->dhead && !(m->dhead = ops->alloc(sizeof(float) * (size_t)V * D)))
            return swax_error_wrap(SWAX_E_NOMEM, "head gradient buffer");
        ops->zero(m->dhead, sizeof(float) * (size_t)V * D);
        const float s = m->n_targets > 0 ? 1.0f / (float)m->n_targets : 0.0f;
        for (int r0 = 0; r0 < N; r0 += R) {
            const int rows = N - r0 < R ? N - r0 : R;
            const float *x = m->lnf + (size_t)r0 * D;
            ops->matmul_fwd(lg, V, x, D, m->w.lm_head, rows, D, V);
            if (ops->xent_train) {
                ops->xent_train(lg, m->lse + r0, m->losses + r0, m->targets + r0, rows, V, c->vocab_used,
                                c->logit_softcap, s);
            } else {
                ops->xent_fwd(lg, m->lse + r0, m->losses + r0, m->targets + r0, rows, V, c->vocab_used,
                              c->logit_softcap);
                ops->xent_bwd(lg, m->lse + r0, m->targets + r0, rows, V, c->vocab_used, c->logit_softcap, s);
            }
            ops->matmul_bwd(m->dln + (size_t)r0 * D, D, m->dhead, lg, V, x, D, m->w.lm_head, rows, D, V, 0);
        }
        m->logits_valid = 0;
    } else {
        SWAX_TRY(swax_model_ensure_logits(m, (size_t)N));
        ops->matmul_fwd(m->logits, V, m->lnf, D, m->w.lm_head, N, D, V);
        ops->xent_fwd(m->logits, m->lse, m->losses, b->targets ? m->targets : NULL, N, V, c->vocab_used,
                      c->logit_softcap);
        m->logits_valid = 1;
    }
    if (loss) {
        double s = 0;
        if (b->targets) {
            ops->to_host(m->h_losses, m->losses, sizeof(float) * N);
            for (int i = 0; i < N; i++) s += m->h_losses[i];
        }
        *loss = m->n_targets > 0 ? (float)(s / (double)m->n_targets) : 0.0f;
    }
    return 0;
}

int swax_backward(SwaxModel *m, float scale) {
    if ((!m->logits_valid && !m->fused_last) || !m->has_targets)
        return swax_error(SWAX_E_USAGE, "backward needs a forward with targets first");
    if (!swax_model_grads_dev(m)) return SWAX_E_NOMEM;
    const SwaxOps *ops = m->ops;
    const SwaxConfig *c = &m->cfg;
    const int N = m->B * m->T, D = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    m->logits_valid = 0; /* the logits buffer becomes d logits */
    if (m->fused_last) { /* the forward left d lnf and d W_head at scale 1: apply `scale` */
        m->fused_last = 0;
        if (scale != 1.0f) {
            ops->scale(m->dln, (size_t)N * D, scale);
            ops->scale(m->dhead, (size_t)V * D, scale);
        }
        ops->add(m->g.lm_head, m->dhead, (size_t)V * D);
    } else {
        const float s = m->n_targets > 0 ? scale / (float)m->n_targets : 0.0f;
        ops->xent_bwd(m->logits, m->lse, m->targets, N, V, c->vocab_used, c->logit_softcap, s);
        ops->matmul_bwd(m->dln, D, m->g.lm_head, m->logits, V, m->lnf, D, m->w.lm_head, N, D, V, 0);
    }
    ops->zero(m->dres, sizeof(float) * N * D);
    ops->rmsnorm_bwd(m->dres, m->g.norm_f, m->dln, m->res[c->n_blocks], m->w.norm_f, m->rstdf, N, D);
    if (m->grad_ready) m->grad_ready(m->grad_ready_ud, c->n_blocks + 1); /* tail: final norm, LM head */
    for (int l = c->n_blocks - 1; l >= 0; l--) {
        const BlockW *w = &m->w.blocks[l];
        const BlockW *g = &m->g.blocks[l];
        BlockActs *a = &m->acts[l];
        /* recompute: the shared activations hold the last block's; make block
         * l's again from its input (same ops, same bits as the forward) */
        if (m->recompute && l < c->n_blocks - 1) block_fwd(m, l);
        /* FFN: res[l+1] = res_mid + W_down(swiglu(W_gu ln2)) ; dres flows through unchanged */
        ops->matmul_bwd(m->dhf, F, g->w_down, m->dres, D, a->hf, F, w->w_down, N, F, D, 0);
        ops->swiglu_bwd(m->dbig, m->dhf, a->gu, N, F);
        ops->matmul_bwd(m->dln, D, g->w_gu, m->dbig, 2L * F, a->ln2, D, w->w_gu, N, D, 2 * F, 0);
        ops->rmsnorm_bwd(m->dres, g->norm2, m->dln, a->res_mid, w->norm2, a->rstd2, N, D);
        /* Mixer: res_mid = res[l] + W_out(...) */
        if (m->kinds[l] == 'A') {
            const int HD = m->HD;
            ops->matmul_bwd(m->dmid, HD, g->w_out, m->dres, D, a->att, HD, w->w_out, N, HD, D, 0);
            SwaxAttnCall ac;
            attn_call(m, a, &ac);
            ac.dout = m->dmid, ac.dqkv = m->dbig;
            ops->attn_bwd(&ac);
            ops->matmul_bwd(m->dln, D, g->w_mix, m->dbig, 3L * HD, a->ln1, D, w->w_mix, N, D, 3 * HD, 0);
        } else if (m->kinds[l] == 'D') {
            const int P = m->P_d;
            ops->matmul_bwd(m->dmid, D, g->w_out, m->dres, D, a->y, D, w->w_out, N, D, D, 0);
            SwaxGdnCall gc;
            gdn_call(m, a, w, &gc);
            gc.dy = m->dmid, gc.dproj = m->dbig, gc.scratch = m->dgdn;
            gc.dconv_w = g->conv_w, gc.dA_log = g->A_log, gc.ddt_bias = g->dt_bias, gc.dnorm_w = g->mix_norm;
            ops->gdn_bwd(&gc);
            ops->matmul_bwd(m->dln, D, g->w_mix, m->dbig, P, a->ln1, D, w->w_mix, N, D, P, 0);
        } else {
            const int P = m->P_m;
            ops->matmul_bwd(m->dmid, D, g->w_out, m->dres, D, a->y, D, w->w_out, N, D, D, 0);
            /* dbig = d proj: og columns from the output gate, q/k/v from the cell, gates last */
            ops->mlstm_out_bwd(m->dh2, m->dbig + 2 * D, P, g->mix_norm, m->dmid, a->hn, a->h, a->hmean, a->hrstd,
                               a->mix + 2 * D, P, w->mix_norm, N, m->NH, m->dv);
            SwaxMlstmCall mc;
            mlstm_call(m, a, &mc);
            mc.dh = m->dh2, mc.dproj = m->dbig, mc.dig = m->dig, mc.dlf = m->dlf;
            ops->mlstm_cell_bwd(&mc);
            ops->mlstm_gates_bwd(m->dbig + 3 * D, P, g->b_gates, m->dig, m->dlf, a->mix + 3 * D, P, w->b_gates, N,
                                 m->NH, c->gate_softcap);
            ops->matmul_bwd(m->dln, D, g->w_mix, m->dbig, P, a->ln1, D, w->w_mix, N, D, P, 0);
        }
        ops->rmsnorm_bwd(m->dres, g->norm1, m->dln, m->res[l], w->norm1, a->rstd1, N, D);
        if (m->grad_ready) m->grad_ready(m->grad_ready_ud, 1 + l); /* block l's gradients are final */
    }
    ops->embed_bwd(m->g.embed, m->dres, m->tokens, N, D);
    if (m->grad_ready) m->grad_ready(m->grad_ready_ud, 0);
    return 0;
}
