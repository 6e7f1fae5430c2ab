/* test_train_util.h — a small learnable dataset and training options shared by
 * the training tests (CPU: test_train.c; GPU: test_cuda_train.c). */
#ifndef SWAX_TEST_TRAIN_UTIL_H
#define SWAX_TEST_TRAIN_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "core/common.h"
#include "io/shard.h"
#include "train/train.h"

/* shards of a learnable stream in DIR: documents of counting sequences separated by eot = 0 */
static inline void test_make_shards(const char *dir, int vocab) {
    swax_mkdir_p(dir);
    SwaxRng r;
    swax_rng_seed(&r, 3, 0);
    const size_t n = 60000;
    uint32_t *t = malloc(4 * n);
    SWAX_ASSERT(t);
    size_t i = 0;
    while (i < n) {
        t[i++] = 0;
        int start = 1 + (int)(swax_rng_u64(&r) % (vocab - 1)), len = 20 + (int)(swax_rng_u64(&r) % 60);
        for (int k = 0; k < len && i < n; k++) t[i++] = 1 + (uint32_t)((start + k * 3) % (vocab - 1));
    }
    char p[2048];
    snprintf(p, sizeof p, "%s/train_000000.bin", dir);
    SWAX_ASSERT(swax_shard_write(p, t, n - 10000, vocab) == 0);
    snprintf(p, sizeof p, "%s/val_000000.bin", dir);
    SWAX_ASSERT(swax_shard_write(p, t + n - 10000, 10000, vocab) == 0);
    free(t);
}

/* a tiny model trained for 40 steps on DATA/{train,val}_*.bin, output in OUT */
static inline void test_small_opts(SwaxTrainOptions *o, const char *data, const char *out) {
    memset(o, 0, sizeof *o);
    SWAX_ASSERT(swax_train_preset("tiny", o) == 0);
    snprintf(o->train_data, sizeof o->train_data, "%s/train_*.bin", data);
    snprintf(o->val_data, sizeof o->val_data, "%s/val_*.bin", data);
    snprintf(o->out, sizeof o->out, "%s", out);
    const char *sets[] = {"vocab_size=64", "vocab_used=64", "d_model=32", "n_blocks=2", "attn_heads=2",
                          "head_dim=16", "mlstm_heads=2", "ffn_dim=64", "eot_token=0", "igate_bias_init=-3"};
    for (int i = 0; i < 10; i++) snprintf(o->sets[i], sizeof o->sets[0], "%s", sets[i]);
    o->nsets = 10;
    o->adam = swax_adamw_defaults();
    o->B = 4, o->T = 64, o->accum = 2, o->steps = 40, o->warmup = 5, o->lr = 1e-2, o->min_lr = 1e-3;
    o->clip = 1.0f, o->chunk = 16, o->doc_mask = 1, o->eval_every = 10, o->eval_batches = 2;
    o->ckpt_every = 10, o->keep_ckpts = 2, o->seed = 9, o->threads = 2, o->quiet = 1;
    SWAX_ASSERT(swax_window_schedule_parse(&o->sched, "8:0.5,32:0.5") == 0);
}

/* the "loss" values of a run's log (OUT/log.jsonl), at most cap; -1 if unreadable */
static inline int test_read_losses(const char *out, double *loss, int cap) {
    char p[2048], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/log.jsonl", out);
    if (swax_read_file(p, &text, &len)) return -1;
    int n = 0;
    for (char *s = strstr(text, "\"loss\": "); s && n < cap; s = strstr(s + 1, "\"loss\": "))
        loss[n++] = strtod(s + 8, NULL);
    free(text);
    return n;
}

#endif
