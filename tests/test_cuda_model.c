/* test_cuda_model.c — the whole model on the CUDA backend (fp32 mode) against
 * the CPU backend on the same weights and batches: loss, logits and every
 * parameter gradient; AdamW steps; determinism (same inputs → same bits);
 * checkpoints and optimizer states that move between the devices. Skipped
 * (and says so) without a CUDA device. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "infer/infer.h"
#include "model/model.h"
#include "test_cuda.h"
#include "test_util.h"
#include "train/optim.h"
#include "train/train_state.h"

static SwaxRng rng;

typedef struct {
    const char *pattern;
    int B, T, window, chunk, docs, tie, D, heads, hdim, nh, V, Vused, F;
} Case;

static SwaxModel *cpu_model(const Case *k, uint64_t seed) {
    SwaxConfig c;
    swax_config_default(&c, k->V, k->D, (int)strlen(k->pattern) + 1);
    snprintf(c.pattern, sizeof c.pattern, "%s", k->pattern);
    c.vocab_used = k->Vused;
    c.attn_heads = k->heads, c.head_dim = k->hdim, c.mlstm_heads = k->nh, c.ffn_dim = k->F;
    c.window = k->window, c.tie_embeddings = k->tie, c.eot_token = -1;
    c.gate_softcap = 5.0f, c.logit_softcap = 3.0f;
    SwaxModel *m;
    SWAX_ASSERT(swax_model_create(&c, &m) == 0);
    swax_model_init(m, seed);
    test_randomize_params(m, &rng, 0.4);
    return m;
}

/* A second model with the same config and weights, on the GPU ("cuda-fp32" or "cuda"). */
static SwaxModel *gpu_twin_on(SwaxModel *cm, const char *device) {
    SwaxModel *g;
    SWAX_ASSERT(swax_model_create(swax_model_config(cm), &g) == 0);
    memcpy(swax_model_params(g), swax_model_params(cm), sizeof(float) * swax_model_num_params(cm));
    SWAX_ASSERT(swax_model_set_device(g, device) == 0);
    return g;
}
static SwaxModel *gpu_twin(SwaxModel *cm) { return gpu_twin_on(cm, "cuda-fp32"); }

static void make_batch(const Case *k, int32_t *tok, int32_t *tgt, uint8_t *ds) {
    for (int i = 0; i < k->B * k->T; i++) {
        tok[i] = (int32_t)(swax_rng_u64(&rng) % k->Vused);
        tgt[i] = (swax_rng_uniform(&rng) < 0.15) ? -1 : (int32_t)(swax_rng_u64(&rng) % k->Vused);
        ds[i] = (i % k->T) > 0 && swax_rng_uniform(&rng) < 0.05;
    }
}

/* Worst per-tensor relative error of gradient a against b; names the tensor. */
static double grad_err(SwaxModel *m, const float *a, const float *b, const char **worst) {
    double w = 0;
    *worst = "";
    for (int i = 0; i < swax_model_num_tensors(m); i++) {
        const char *name;
        size_t off;
        int nd;
        int64_t sh[2];
        swax_model_tensor(m, i, &name, &off, &nd, sh);
        const double e = rel_err(a + off, b + off, (size_t)sh[0] * (size_t)sh[1]);
        if (!(e <= w)) w = e, *worst = name;
    }
    return w;
}

static const Case cases[] = {
    /* pattern B  T    w    L   docs tie D   H hd nh V    Vu   F */
    {"AM", 2, 37, 5, 16, 0, 0, 32, 2, 16, 2, 61, 57, 40},      /* T not a multiple of the chunk */
    {"AM", 3, 64, 1, 8, 1, 1, 24, 3, 8, 3, 31, 31, 24},        /* window 1, documents, tied, odd widths */
    {"MA", 2, 100, 100, 64, 1, 0, 64, 4, 16, 2, 97, 90, 96},   /* window = T, blocks M A M */
    {"A", 1, 50, 200, 16, 0, 0, 32, 2, 16, 2, 41, 41, 40},     /* pure SWA, window > T */
    {"M", 2, 45, 3, 7, 1, 0, 48, 2, 8, 4, 29, 29, 40},         /* pure mLSTM, chunk 7 */
    {"AM", 2, 300, 64, 64, 1, 0, 128, 2, 64, 2, 257, 250, 352}, /* real head width 64 */
    {"AM", 1, 130, 48, 32, 0, 0, 256, 2, 128, 1, 64, 64, 128},  /* head width 128, mLSTM dk 128 / dv 256 */
};

TEST(fp32_loss_logits_and_every_gradient_match_the_cpu) {
    swax_rng_seed(&rng, 101, 0);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const Case *k = &cases[ci];
        SwaxModel *cm = cpu_model(k, 1 + ci), *gm = gpu_twin(cm);
        const int N = k->B * k->T;
        int32_t *tok = malloc(4 * N), *tgt = malloc(4 * N);
        uint8_t *ds = malloc(N);
        make_batch(k, tok, tgt, ds);
        SwaxBatch b = {k->B, k->T, tok, tgt, k->docs ? ds : NULL, k->window, k->chunk};
        float lc, lg;
        CHECK(swax_forward(cm, &b, &lc) == 0);
        CHECK(swax_forward(gm, &b, &lg) == 0);
        const size_t nl = (size_t)N * k->V;
        float *logc = host_copy(swax_model_logits(cm), nl);
        const float *logg = swax_model_logits(gm);
        CHECK(logg != NULL);
        const double el = rel_err(logg, logc, nl);
        CHECK(swax_backward(cm, 1.0f) == 0);
        CHECK(swax_backward(gm, 1.0f) == 0);
        const char *worst;
        const double eg = grad_err(cm, swax_model_grads(gm), swax_model_grads(cm), &worst);
        printf("  case %zu %-2s B%d T%-3d w%-3d L%-2d docs %d D%-3d: loss cpu %.7f gpu %.7f | logits %.1e | "
               "grads %.1e (%s)\n",
               ci, k->pattern, k->B, k->T, k->window, k->chunk, k->docs, k->D, lc, lg, el, eg, worst);
        CHECKF(fabs(lc - lg) <= 1e-5 * fabs(lc), "case %zu: loss %.8f vs %.8f", ci, lg, lc);
        CHECKF(el <= 1e-4, "case %zu: logits rel err %.3g", ci, el);
        CHECKF(eg <= 1e-4, "case %zu: gradient of %s rel err %.3g", ci, worst, eg);
        free(logc), free(tok), free(tgt), free(ds);
        swax_model_free(cm);
        swax_model_free(gm);
    }
}

/* bf16 products (the training mode): the rounding of every matrix operand to
 * 8 significant bits (2^-9 relative) compounds through the layers; stated
 * tolerances: loss 1e-2 relative, logits and every gradient 5e-2 relative to
 * each tensor's largest value. */
TEST(bf16_loss_logits_and_gradients_within_stated_tolerances) {
    swax_rng_seed(&rng, 111, 0);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const Case *k = &cases[ci];
        SwaxModel *cm = cpu_model(k, 1 + ci), *gm = gpu_twin_on(cm, "cuda");
        const int N = k->B * k->T;
        int32_t *tok = malloc(4 * N), *tgt = malloc(4 * N);
        uint8_t *ds = malloc(N);
        make_batch(k, tok, tgt, ds);
        SwaxBatch b = {k->B, k->T, tok, tgt, k->docs ? ds : NULL, k->window, k->chunk};
        float lc, lg;
        CHECK(swax_forward(cm, &b, &lc) == 0);
        CHECK(swax_forward(gm, &b, &lg) == 0);
        const size_t nl = (size_t)N * k->V;
        float *logc = host_copy(swax_model_logits(cm), nl);
        const double el = rel_err(swax_model_logits(gm), logc, nl);
        CHECK(swax_backward(cm, 1.0f) == 0);
        CHECK(swax_backward(gm, 1.0f) == 0);
        const char *worst;
        const double eg = grad_err(cm, swax_model_grads(gm), swax_model_grads(cm), &worst);
        printf("  bf16 case %zu: loss cpu %.6f gpu %.6f (%.1e) | logits %.1e | grads %.1e (%s)\n", ci, lc, lg,
               fabs(lc - lg) / fabs(lc), el, eg, worst);
        CHECKF(fabs(lc - lg) <= 1e-2 * fabs(lc), "case %zu: loss %.8f vs %.8f", ci, lg, lc);
        CHECKF(el <= 5e-2, "case %zu: logits rel err %.3g", ci, el);
        CHECKF(eg <= 5e-2, "case %zu: gradient of %s rel err %.3g", ci, worst, eg);
        free(logc), free(tok), free(tgt), free(ds);
        swax_model_free(cm);
        swax_model_free(gm);
    }
}

TEST(fp32_adamw_steps_follow_the_cpu_and_repeat_bit_for_bit) {
    swax_rng_seed(&rng, 202, 0);
    const Case *k = &cases[0];
    SwaxModel *cm = cpu_model(k, 9), *gm = gpu_twin(cm), *gm2 = gpu_twin(cm);
    SwaxAdamW oc, og, og2;
    CHECK(swax_adamw_init(&oc, cm, swax_adamw_defaults()) == 0);
    CHECK(swax_adamw_init(&og, gm, swax_adamw_defaults()) == 0);
    CHECK(swax_adamw_init(&og2, gm2, swax_adamw_defaults()) == 0);
    const int N = k->B * k->T;
    int32_t *tok = malloc(4 * N), *tgt = malloc(4 * N);
    uint8_t *ds = malloc(N);
    for (int step = 0; step < 5; step++) {
        make_batch(k, tok, tgt, ds);
        SwaxBatch b = {k->B, k->T, tok, tgt, ds, 1 + step, k->chunk};
        float l[3];
        SwaxModel *ms[3] = {cm, gm, gm2};
        SwaxAdamW *os[3] = {&oc, &og, &og2};
        for (int i = 0; i < 3; i++) {
            swax_zero_grad(ms[i]);
            CHECK(swax_forward(ms[i], &b, &l[i]) == 0);
            CHECK(swax_backward(ms[i], 1.0f) == 0);
            swax_grad_clip(ms[i], 1.0f);
            swax_adamw_step(os[i], ms[i], 1e-2f);
        }
        printf("  step %d: loss cpu %.7f gpu %.7f gpu again %.7f\n", step, l[0], l[1], l[2]);
        CHECKF(fabs(l[0] - l[1]) <= 1e-4 * fabs(l[0]), "step %d: loss %.8f vs %.8f", step, l[1], l[0]);
        CHECKF(memcmp(&l[1], &l[2], sizeof(float)) == 0, "step %d: two GPU runs differ: %.9g vs %.9g", step, l[1],
               l[2]);
    }
    const size_t n = swax_model_num_params(cm);
    float *pg = host_copy(swax_model_params(gm), n);
    CHECK(memcmp(pg, swax_model_params(gm2), sizeof(float) * n) == 0);
    const double ep = rel_err(pg, swax_model_params(cm), n);
    printf("  parameters after 5 steps: rel err %.2e\n", ep);
    CHECK(ep <= 1e-4);
    free(pg), free(tok), free(tgt), free(ds);
    swax_adamw_free(&oc), swax_adamw_free(&og), swax_adamw_free(&og2);
    swax_model_free(cm), swax_model_free(gm), swax_model_free(gm2);
}

TEST(checkpoint_and_optimizer_state_move_between_devices) {
    swax_rng_seed(&rng, 303, 0);
    char dir[] = "/tmp/swax_test_cuda_XXXXXX";
    CHECK(mkdtemp(dir));
    const Case *k = &cases[1];
    SwaxModel *cm = cpu_model(k, 3), *gm = gpu_twin(cm);
    SwaxAdamW og;
    CHECK(swax_adamw_init(&og, gm, swax_adamw_defaults()) == 0);
    const int N = k->B * k->T;
    int32_t *tok = malloc(4 * N), *tgt = malloc(4 * N);
    uint8_t *ds = malloc(N);
    make_batch(k, tok, tgt, ds);
    SwaxBatch b = {k->B, k->T, tok, tgt, ds, k->window, k->chunk};
    float l;
    CHECK(swax_forward(gm, &b, &l) == 0);
    CHECK(swax_backward(gm, 1.0f) == 0);
    swax_adamw_step(&og, gm, 1e-2f);
    /* GPU -> disk -> CPU: the same weights and moments */
    char path[512];
    CHECK(swax_model_save(gm, dir) == 0);
    snprintf(path, sizeof path, "%s/train_state.bin", dir);
    SwaxTrainProgress prog = {7, 11, 13, 17, 1.5};
    CHECK(swax_train_state_save(path, &prog, &og) == 0);
    SwaxModel *back;
    CHECK(swax_model_load(dir, &back) == 0);
    const size_t n = swax_model_num_params(back);
    CHECK(memcmp(swax_model_params(back), swax_model_params(gm), sizeof(float) * n) == 0);
    SwaxAdamW oc;
    CHECK(swax_adamw_init(&oc, back, swax_adamw_defaults()) == 0);
    SwaxTrainProgress p2;
    CHECK(swax_train_state_load(path, &p2, &oc) == 0);
    float *gmv = malloc(8 * n), *cmv = malloc(8 * n);
    swax_adamw_get(&og, gmv, gmv + n);
    swax_adamw_get(&oc, cmv, cmv + n);
    CHECK(memcmp(gmv, cmv, 8 * n) == 0);
    /* and CPU -> GPU: the next step agrees */
    CHECK(swax_model_set_device(back, "cuda-fp32") == 0);
    CHECK(strcmp(swax_model_device(back), "cuda-fp32") == 0);
    SwaxAdamW og2;
    CHECK(swax_adamw_init(&og2, back, swax_adamw_defaults()) == 0);
    swax_adamw_set(&og2, cmv, cmv + n);
    og2.step = oc.step;
    float l1, l2;
    SwaxModel *ms[2] = {gm, back};
    SwaxAdamW *os[2] = {&og, &og2};
    float *ls[2] = {&l1, &l2};
    for (int i = 0; i < 2; i++) {
        swax_zero_grad(ms[i]);
        CHECK(swax_forward(ms[i], &b, ls[i]) == 0);
        CHECK(swax_backward(ms[i], 1.0f) == 0);
        swax_adamw_step(os[i], ms[i], 1e-2f);
    }
    CHECK(memcmp(&l1, &l2, sizeof l1) == 0);
    float *pa = host_copy(swax_model_params(gm), n);
    CHECK(memcmp(pa, swax_model_params(back), sizeof(float) * n) == 0);
    free(pa), free(gmv), free(cmv), free(tok), free(tgt), free(ds);
    swax_adamw_free(&og), swax_adamw_free(&oc), swax_adamw_free(&og2);
    swax_model_free(cm), swax_model_free(gm), swax_model_free(back);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

TEST(inference_on_a_device_model_is_refused_with_a_message) {
    swax_rng_seed(&rng, 404, 0);
    SwaxModel *cm = cpu_model(&cases[0], 1), *gm = gpu_twin(cm);
    SwaxState *s = NULL;
    CHECK(swax_state_create(gm, 1, 4, &s) != 0);
    CHECK(strstr(swax_last_error(), "--device cpu") != NULL);
    swax_model_free(cm), swax_model_free(gm);
}

RUN_CUDA_TESTS()
