/* config.c — defaults, presets and validation of SwaxConfig (SPEC §2, §4). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

void swax_config_default(SwaxConfig *c, int vocab_size, int d_model, int n_blocks) {
    memset(c, 0, sizeof *c);
    c->vocab_size = vocab_size;
    c->vocab_used = vocab_size;
    c->d_model = d_model;
    c->n_blocks = n_blocks;
    strcpy(c->pattern, "AM");
    c->head_dim = 64;
    c->attn_heads = d_model >= 64 ? d_model / 64 : 1;
    c->rope_theta = 10000.0;
    c->window = 2048;
    c->mlstm_heads = 4;
    c->gate_softcap = 15.0f;
    c->ffn_dim = round_up((int)ceil(8.0 * d_model / 3.0), 64);
    c->logit_softcap = 30.0f;
    c->norm_eps = 1e-6f;
    c->tie_embeddings = 0;
    c->igate_bias_init = -10.0f;
    c->eot_token = -1;
}

typedef struct {
    const char *name;
    int V, Vused, D, blocks, heads, hdim, nh, window, eot;
} Preset;

/* SPEC §4. `window` is the largest training window (the inference default). */
static const Preset presets[] = {
    {"tiny", 4096, 4096, 128, 4, 2, 64, 2, 128, 4095},
    {"small", 4096, 4096, 384, 8, 6, 64, 4, 512, 4095},
    {"bench-cpu", 4096, 4096, 256, 8, 4, 64, 2, 128, 4095},
    {"bench-gpu", 50304, 50257, 1024, 12, 16, 64, 4, 2048, 50256},
    {"1.4b", 50304, 50257, 2048, 24, 16, 128, 8, 2048, 50256},
    {"7b", 50304, 50257, 4096, 32, 32, 128, 8, 2048, 50256},
};
static const char *const preset_names[] = {"tiny", "small", "bench-cpu", "bench-gpu", "1.4b", "7b", NULL};

const char *const *swax_preset_names(void) { return preset_names; }

int swax_config_preset(const char *name, SwaxConfig *c) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const Preset *p = &presets[i];
        if (strcmp(p->name, name) != 0) continue;
        swax_config_default(c, p->V, p->D, p->blocks);
        c->vocab_used = p->Vused;
        c->attn_heads = p->heads;
        c->head_dim = p->hdim;
        c->mlstm_heads = p->nh;
        c->window = p->window;
        c->eot_token = p->eot;
        return 0;
    }
    return swax_error(SWAX_E_USAGE,
                      "unknown preset '%s' (known: tiny, small, bench-cpu, bench-gpu, 1.4b, 7b)", name);
}

#define BAD(...) return swax_error(SWAX_E_USAGE, __VA_ARGS__)

int swax_config_validate(const SwaxConfig *c) {
    if (c->vocab_size < 2 || c->vocab_size > (1 << 26))
        BAD("config: vocab_size %d out of range [2, 67108864]", c->vocab_size);
    if (c->vocab_used < 1 || c->vocab_used > c->vocab_size)
        BAD("config: vocab_used %d must be in [1, vocab_size=%d]", c->vocab_used, c->vocab_size);
    if (c->d_model < 2 || c->d_model > 65536) BAD("config: d_model %d out of range [2, 65536]", c->d_model);
    if (c->n_blocks < 1 || c->n_blocks > 4096) BAD("config: n_blocks %d out of range [1, 4096]", c->n_blocks);
    size_t plen = strnlen(c->pattern, SWAX_MAX_PATTERN + 1);
    if (plen == 0 || plen > SWAX_MAX_PATTERN) BAD("config: pattern must have 1..%d characters", SWAX_MAX_PATTERN);
    int has_a = 0, has_m = 0, has_d = 0;
    for (size_t i = 0; i < plen; i++) {
        if (c->pattern[i] == 'A') has_a = 1;
        else if (c->pattern[i] == 'M') has_m = 1;
        else if (c->pattern[i] == 'D') has_d = 1;
        else BAD("config: pattern '%s' may contain only 'A' (SWA), 'M' (mLSTM) and 'D' (Gated DeltaNet)", c->pattern);
    }
    if (has_a) {
        if (c->attn_heads < 1 || c->attn_heads > 1024) BAD("config: attn_heads %d out of range", c->attn_heads);
        if (c->head_dim < 2 || c->head_dim > 1024 || c->head_dim % 2)
            BAD("config: head_dim %d must be even and in [2, 1024] (RoPE rotates pairs)", c->head_dim);
        if (!(c->rope_theta > 1.0) || !isfinite(c->rope_theta)) BAD("config: rope_theta must be > 1");
    } else if (c->attn_heads < 0 || c->attn_heads > 1024 || c->head_dim < 0 || c->head_dim > 1024)
        /* unused without 'A' layers, but sized from: keep the product small and non-negative */
        BAD("config: attn_heads %d and head_dim %d must be in [0, 1024] (no 'A' layers use them)", c->attn_heads,
            c->head_dim);
    if (c->window < 1) BAD("config: window %d must be >= 1", c->window);
    if (has_m) {
        if (c->mlstm_heads < 1 || c->mlstm_heads > c->d_model / 2 || c->d_model % (2 * c->mlstm_heads))
            BAD("config: mlstm_heads %d must divide d_model/2 = %d", c->mlstm_heads, c->d_model / 2);
        if (!(c->gate_softcap > 0) || !isfinite(c->gate_softcap)) BAD("config: gate_softcap must be > 0");
        if (!isfinite(c->igate_bias_init)) BAD("config: igate_bias_init must be finite");
    } else if (c->mlstm_heads < 0 || c->mlstm_heads > 65536) {
        /* unused without 'M' layers (0 is fine), but read by the layout and, through gdn_heads = 0, by 'D' */
        BAD("config: mlstm_heads %d must be in [0, 65536] (no 'M' layers use it)", c->mlstm_heads);
    }
    if (c->gdn_heads < 0) BAD("config: gdn_heads %d must be >= 0 (0 = mlstm_heads)", c->gdn_heads);
    if (has_d) {
        const int nh = swax_config_gdn_heads(c);
        if (nh < 1 || nh > c->d_model / 2 || c->d_model % (2 * nh))
            BAD("config: gdn_heads %d%s must divide d_model/2 = %d (per head DK = D/(2 NH), DV = D/NH)", nh,
                c->gdn_heads > 0 ? "" : " (from mlstm_heads)", c->d_model / 2);
    }
    if (c->ffn_dim < 1 || c->ffn_dim > (1 << 20)) BAD("config: ffn_dim %d out of range", c->ffn_dim);
    if (!(c->logit_softcap >= 0) || !isfinite(c->logit_softcap)) BAD("config: logit_softcap must be >= 0");
    if (!(c->norm_eps > 0) || !(c->norm_eps < 1)) BAD("config: norm_eps must be in (0, 1)");
    if (c->tie_embeddings != 0 && c->tie_embeddings != 1) BAD("config: tie_embeddings must be 0 or 1");
    if (c->eot_token < -1 || c->eot_token >= c->vocab_used)
        BAD("config: eot_token %d must be -1 or a used id < %d", c->eot_token, c->vocab_used);
    return 0;
}

/* swax_config_set (--set key=value) lives in io/config_json.c: it reads the
 * value as config.json holds it. */
