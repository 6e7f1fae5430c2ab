/* test_eval.c — the evaluations: NIAH samples (deterministic, at the asked
 * length and depth, RULER's templates), RULER scoring, multiple choice vs a
 * direct sum of log-probs from swax_forward, loss by position (buckets vs
 * overall, forward vs streaming), greedy generation vs a forward loop,
 * gen-data documents, the SVG heat-map, bad input, and the CLI. */
#include <ctype.h>
#include <omp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "eval/eval.h"
#include "eval/heatmap.h"
#include "infer/infer.h"
#include "io/shard.h"
#include "io/tokenizer.h"
#include "test.h"
#include "test_shell.h"

/* ---- fixtures ---------------------------------------------------------------------- */

/* Prose written for this test: short sentences, so a needle can sit close
 * to any depth. */
static const char k_essay[] =
    "The harbour town woke early. Fishing boats left before the sun was up. Gulls followed them past the "
    "breakwater. On the hill the baker lit his ovens. Bread was on the shelves by six. Children walked to "
    "school along the sea wall. Their teacher rang a brass bell at eight. In spring the meadows above the town "
    "turned yellow. Farmers drove sheep along the coast road. Tourists came in summer and filled the small "
    "hotels. They bought postcards and ate ice cream on the pier. In autumn storms rolled in from the west. "
    "Waves broke over the harbour wall. The lifeboat crew trained every Thursday evening. Nobody in the town "
    "forgot the winter of the great flood. Water stood in the square for three days. The church bells rang to "
    "call for help. Neighbours carried the old and the sick to higher ground. Afterwards the council built a "
    "higher wall. A plaque on it still names the volunteers. Visitors sometimes stop to read it. Most of them "
    "walk on to the lighthouse. From the top one can see the islands on a clear day. The keeper used to live "
    "there with his family. Now a machine turns the lamp. At night its beam sweeps across the water. Sailors "
    "far out at sea count the flashes. Each lighthouse has a pattern of its own. This one flashes twice every "
    "ten seconds. The old keeper wrote a book about his years in the tower. It sells well in the harbour shop.\n";

static SwaxTokenizer *byte_tok(void) {
    SwaxTokenizer *t = NULL;
    if (swax_byte_tokenizer(&t)) return NULL;
    return t;
}

/* A small BPE learnt from the test essay and the NIAH templates. */
static SwaxTokenizer *bpe_tok(void) {
    static const char extra[] =
        "Some special magic numbers are hidden within the following text. Make sure to memorize it. "
        "One of the special magic numbers for amber-falcon is: 1234567. What is the special magic number "
        "for amber-falcon mentioned in the provided text? The grass is green. The sky is blue.";
    SwaxBpeCounter *c = NULL;
    SwaxTokenizer *t = NULL;
    if (swax_bpe_counter_create("r50k", &c)) return NULL;
    for (int i = 0; i < 3; i++) {
        swax_bpe_counter_add(c, k_essay, sizeof k_essay - 1);
        swax_bpe_counter_add(c, extra, sizeof extra - 1);
    }
    if (swax_bpe_train(c, 400, 0, &t)) t = NULL;
    swax_bpe_counter_free(c);
    return t;
}

static char g_tmp[256];
static const char *tmpdir(void) {
    if (!g_tmp[0]) {
        snprintf(g_tmp, sizeof g_tmp, "/tmp/swax_test_eval_XXXXXX");
        if (!mkdtemp(g_tmp)) g_tmp[0] = 0;
    }
    return g_tmp;
}

static void tmp_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tmpdir(), name); }

static int write_text(const char *path, const char *text) {
    return swax_write_file_atomic(path, text, strlen(text));
}

/* A small random model over the byte tokenizer's 257 ids. */
static SwaxModel *small_model(int window) {
    SwaxConfig c;
    swax_config_default(&c, 257, 64, 2);
    c.attn_heads = 2, c.head_dim = 32, c.mlstm_heads = 2, c.ffn_dim = 128;
    c.window = window;
    c.eot_token = 256;
    c.igate_bias_init = 0; /* livelier gates than -10: the mLSTM path matters */
    SwaxModel *m = NULL;
    if (swax_model_create(&c, &m)) return NULL;
    swax_model_init(m, 7);
    return m;
}

/* log p(target) under softmax(logits[0..n)), written out here (no library helper). */
static double direct_logprob(const float *z, int n, int target) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    for (int i = 0; i < n; i++) s += exp(z[i] - mx);
    return z[target] - mx - log(s);
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* ---- NIAH generator ------------------------------------------------------------------ */

typedef struct {
    SwaxTokenizer *tok;
    SwaxWords words;
    SwaxEssay essay;
    SwaxNiahGen gen;
} GenFix;

static int gen_fix(GenFix *f, SwaxTokenizer *tok) {
    memset(f, 0, sizeof *f);
    f->tok = tok;
    if (!tok) return 1;
    swax_words_builtin(&f->words);
    if (swax_essay_from_text(k_essay, sizeof k_essay - 1, "test essay", tok, &f->essay)) return 1;
    f->gen.tok = tok, f->gen.words = &f->words, f->gen.essay = &f->essay;
    return 0;
}

static void gen_unfix(GenFix *f) {
    swax_essay_free(&f->essay);
    swax_tokenizer_free(f->tok);
}

TEST(niah_tasks_table) {
    CHECK(swax_niah_n_tasks() == 8);
    const char *names[] = {"single1", "single2", "single3", "multikey1", "multikey2", "multikey3", "multivalue",
                           "multiquery"};
    for (int i = 0; i < 8; i++) {
        const SwaxNiahTask *t = swax_niah_task(names[i]);
        CHECKF(t && swax_niah_task_index(t) == i, "%s", names[i]);
    }
    CHECK(swax_niah_task("single4") == NULL);
    CHECK(swax_niah_task("single1")->haystack == SWAX_HAY_NOISE);
    CHECK(swax_niah_task("multikey2")->haystack == SWAX_HAY_NEEDLE);
    CHECK(swax_niah_task("single3")->value_uuid && !swax_niah_task("single3")->key_uuid);
    CHECK(swax_niah_task("multikey3")->value_uuid && swax_niah_task("multikey3")->key_uuid);
}

TEST(niah_deterministic_for_a_seed) {
    GenFix f;
    CHECK(gen_fix(&f, byte_tok()) == 0);
    for (int ti = 0; ti < swax_niah_n_tasks(); ti++) {
        const SwaxNiahTask *t = swax_niah_task_at(ti);
        SwaxNiahSample a, b, c;
        CHECK(swax_niah_make(&f.gen, t, 1500, 0.5, 42, 7, &a) == 0);
        CHECK(swax_niah_make(&f.gen, t, 1500, 0.5, 42, 7, &b) == 0);
        CHECK(swax_niah_make(&f.gen, t, 1500, 0.5, 42, 8, &c) == 0);
        CHECKF(a.prompt.n == b.prompt.n && !memcmp(a.prompt.p, b.prompt.p, a.prompt.n), "%s: same seed differs", t->name);
        CHECK(a.tokens.n == b.tokens.n && !memcmp(a.tokens.ids, b.tokens.ids, a.tokens.n * sizeof(int32_t)));
        CHECKF(strcmp(a.prompt.p, c.prompt.p) != 0, "%s: another stream gives the same prompt", t->name);
        swax_niah_sample_free(&a);
        swax_niah_sample_free(&b);
        swax_niah_sample_free(&c);
    }
    /* the stream of a sample depends on (task, length, depth, index) only */
    CHECK(swax_niah_stream(1, 4096, 0.25, 3) == swax_niah_stream(1, 4096, 0.25, 3));
    CHECK(swax_niah_stream(1, 4096, 0.25, 3) != swax_niah_stream(1, 4096, 0.5, 3));
    CHECK(swax_niah_stream(1, 4096, 0.25, 3) != swax_niah_stream(2, 4096, 0.25, 3));
    gen_unfix(&f);
}

/* The haystack's span in the prompt: after the intro line, before the query line. */
static void hay_span(const SwaxNiahSample *s, size_t *lo, size_t *hi) {
    const char *nl = strchr(s->prompt.p, '\n');
    const char *q = strrchr(s->prompt.p, '\n');
    *lo = (size_t)(nl - s->prompt.p) + 1;
    *hi = (size_t)(q - s->prompt.p);
}

/* Where the asked needle sits among the haystack's bytes, needles not
 * counted (in a needle haystack only the asked one is a needle). */
static double needle_depth(const SwaxNiahSample *s, size_t lo, size_t hi, int all_needles, double *hay_bytes) {
    static const char pre[] = "One of the special magic ";
    size_t before = s->needle_byte - lo, total = hi - lo;
    for (const char *p = s->prompt.p + lo; (p = strstr(p, pre)) && p < s->prompt.p + hi; p++) {
        if (!all_needles && p != s->prompt.p + s->needle_byte) continue;
        size_t len = (size_t)(strchr(p, '.') - p) + 2; /* with its space */
        total -= len;
        if (p < s->prompt.p + s->needle_byte) before -= len;
    }
    *hay_bytes = (double)total;
    return (double)before / (double)total;
}

/* With byte tokens, lengths and depths are exact byte counts. */
TEST(niah_length_and_depth_bytes) {
    GenFix f;
    CHECK(gen_fix(&f, byte_tok()) == 0);
    const long lengths[] = {700, 1000, 4000};
    const double depths[] = {0, 0.1, 0.25, 0.5, 0.75, 0.9, 1};
    for (int ti = 0; ti < swax_niah_n_tasks(); ti++) {
        const SwaxNiahTask *t = swax_niah_task_at(ti);
        for (int li = 0; li < 3; li++) {
            for (int di = 0; di < 7; di++) {
                SwaxNiahSample s;
                int rc = swax_niah_make(&f.gen, t, lengths[li], depths[di], 1, (uint64_t)(li * 10 + di), &s);
                CHECKF(rc == 0, "%s %ld: %s", t->name, lengths[li], swax_last_error());
                CHECK(s.tokens.n == s.prompt.n);
                /* never over the asked length, at most a token or two under */
                CHECKF((long)s.tokens.n <= lengths[li] && (long)s.tokens.n >= lengths[li] - 2,
                       "%s: %zu tokens for %ld", t->name, s.tokens.n, lengths[li]);
                CHECK(!strncmp(s.prompt.p + s.needle_byte, "One of the special magic ", 25));
                /* the asked needle's value is the first gold */
                const char *end = strchr(s.prompt.p + s.needle_byte, '.');
                CHECK(end && !strncmp(end - strlen(s.golds[0]), s.golds[0], strlen(s.golds[0])));
                /* depth: bytes before the needle over the haystack without it; a
                 * needle sits at a sentence boundary, so it may be off by half a
                 * sentence, plus any other needles placed before it */
                size_t lo, hi;
                hay_span(&s, &lo, &hi);
                double hay;
                double at = needle_depth(&s, lo, hi, t->haystack != SWAX_HAY_NEEDLE, &hay);
                double tol = (t->haystack == SWAX_HAY_NOISE ? 24.0 : 140.0) / hay;
                CHECKF(fabs(at - depths[di]) <= tol + 1e-9, "%s len %ld depth %g: needle at %.3f (tol %.3f)", t->name,
                       lengths[li], depths[di], at, tol);
                CHECKF(fabs(s.depth_actual - at) < 3.0 / hay, /* a space or two */
                       "%s: depth_actual %.3f vs measured %.3f", t->name, s.depth_actual, at);
                if (depths[di] == 0 && t->n_keys == 1 && t->n_values == 1) CHECK(s.needle_byte == lo);
                /* every gold value is in the haystack exactly once */
                for (int g = 0; g < s.n_golds; g++) CHECK(count_of(s.prompt.p, s.golds[g]) == 1);
                swax_niah_sample_free(&s);
            }
        }
    }
    gen_unfix(&f);
}

/* With a BPE, within a few tokens of the length (never over). */
TEST(niah_length_bpe) {
    GenFix f;
    CHECK(gen_fix(&f, bpe_tok()) == 0);
    const long lengths[] = {400, 1024, 2048, 5000};
    for (int ti = 0; ti < swax_niah_n_tasks(); ti++) {
        const SwaxNiahTask *t = swax_niah_task_at(ti);
        for (int li = 0; li < 4; li++) {
            SwaxNiahSample s;
            CHECKF(swax_niah_make(&f.gen, t, lengths[li], 0.5, 3, (uint64_t)li, &s) == 0, "%s", swax_last_error());
            SwaxTokenBuf tb = {0};
            CHECK(swax_tokenizer_encode(f.tok, s.prompt.p, s.prompt.n, 0, &tb) == 0);
            CHECK(tb.n == s.tokens.n);
            swax_token_buf_free(&tb);
            CHECKF((long)s.tokens.n <= lengths[li] && (long)s.tokens.n >= lengths[li] - 3, "%s: %zu tokens for %ld",
                   t->name, s.tokens.n, lengths[li]);
            if (lengths[li] >= 2048) CHECKF(fabs(s.depth_actual - 0.5) < 0.05, "%s: depth %.3f", t->name, s.depth_actual);
            swax_niah_sample_free(&s);
        }
    }
    gen_unfix(&f);
}

TEST(niah_templates) {
    GenFix f;
    CHECK(gen_fix(&f, byte_tok()) == 0);
    SwaxNiahSample s;
    CHECK(swax_niah_make(&f.gen, swax_niah_task("single1"), 800, 0.5, 5, 0, &s) == 0);
    static const char intro[] = "Some special magic numbers are hidden within the following text. Make sure to "
                                "memorize it. I will quiz you about the numbers afterwards.\n";
    CHECK(!strncmp(s.prompt.p, intro, sizeof intro - 1));
    char want[512];
    snprintf(want, sizeof want,
             "\nWhat is the special magic number for %s mentioned in the provided text? The special magic number "
             "for %s mentioned in the provided text is",
             s.keys[0], s.keys[0]);
    CHECK(s.prompt.n > strlen(want) && !strcmp(s.prompt.p + s.prompt.n - strlen(want), want));
    snprintf(want, sizeof want, "One of the special magic numbers for %s is: %s.", s.keys[0], s.golds[0]);
    CHECK(count_of(s.prompt.p, want) == 1);
    /* adjective-noun key, 7-digit value */
    CHECK(strchr(s.keys[0], '-') && strlen(s.golds[0]) == 7);
    for (int i = 0; i < 7; i++) CHECK(isdigit((unsigned char)s.golds[0][i]));
    CHECK(s.golds[0][0] != '0');
    /* the noise haystack */
    CHECK(strstr(s.prompt.p, "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."));
    swax_niah_sample_free(&s);

    /* uuid values: "uuid(s)" wording */
    CHECK(swax_niah_make(&f.gen, swax_niah_task("single3"), 900, 0.5, 5, 0, &s) == 0);
    CHECK(strstr(s.prompt.p, "Some special magic uuids are hidden") && strstr(s.prompt.p, "the special magic uuid for "));
    CHECK(strlen(s.golds[0]) == 36 && s.golds[0][8] == '-' && s.golds[0][13] == '-' && s.golds[0][14] == '4');
    char start[24];
    snprintf(start, sizeof start, "%s", strchr(s.prompt.p, '\n') + 1);
    CHECKF(strstr(k_essay, start), "haystack starts '%s', not from the essay", start);
    swax_niah_sample_free(&s);

    /* several answers: plural wording; multiquery lists the keys */
    CHECK(swax_niah_make(&f.gen, swax_niah_task("multivalue"), 1200, 0.5, 5, 0, &s) == 0);
    CHECK(s.n_golds == 4 && s.n_queries == 1);
    snprintf(want, sizeof want,
             "What are all the special magic numbers for %s mentioned in the provided text? The special magic numbers "
             "for %s mentioned in the provided text are", s.keys[0], s.keys[0]);
    CHECK(strstr(s.prompt.p, want));
    CHECK(count_of(s.prompt.p, s.keys[0]) == 4 + 2);
    swax_niah_sample_free(&s);
    CHECK(swax_niah_make(&f.gen, swax_niah_task("multiquery"), 1200, 0.5, 5, 0, &s) == 0);
    CHECK(s.n_golds == 4 && s.n_queries == 4);
    snprintf(want, sizeof want, "for %s, %s, %s, and %s mentioned in the provided text are", s.keys[0], s.keys[1],
             s.keys[2], s.keys[3]);
    CHECK(strstr(s.prompt.p, want));
    swax_niah_sample_free(&s);

    /* multikey1: 4 needles, one key asked */
    CHECK(swax_niah_make(&f.gen, swax_niah_task("multikey1"), 1200, 0.5, 5, 0, &s) == 0);
    CHECK(s.n_golds == 1 && count_of(s.prompt.p, "One of the special magic numbers for ") == 4);
    swax_niah_sample_free(&s);

    /* multikey3: uuid keys and values; every sentence a needle */
    CHECK(swax_niah_make(&f.gen, swax_niah_task("multikey3"), 2000, 0.3, 5, 0, &s) == 0);
    CHECK(strlen(s.keys[0]) == 36 && strlen(s.golds[0]) == 36);
    CHECK(count_of(s.prompt.p, "One of the special magic uuids for ") > 10);
    CHECK(count_of(s.prompt.p, s.keys[0]) == 1 + 2); /* the needle and the query twice */
    swax_niah_sample_free(&s);

    /* too short for the instructions */
    CHECK(swax_niah_make(&f.gen, swax_niah_task("single1"), 100, 0.5, 5, 0, &s) == SWAX_E_USAGE);
    CHECK(strstr(swax_last_error(), "too short"));
    /* essay tasks need an essay */
    f.gen.essay = NULL;
    CHECK(swax_niah_make(&f.gen, swax_niah_task("single2"), 900, 0.5, 5, 0, &s) == SWAX_E_USAGE);
    CHECK(strstr(swax_last_error(), "essay"));
    f.gen.essay_as_noise = 1;
    CHECK(swax_niah_make(&f.gen, swax_niah_task("single2"), 900, 0.5, 5, 0, &s) == 0);
    CHECK(strstr(s.prompt.p, "The grass is green."));
    swax_niah_sample_free(&s);
    gen_unfix(&f);
}

TEST(niah_answer_in_order_of_appearance) {
    GenFix f;
    CHECK(gen_fix(&f, byte_tok()) == 0);
    SwaxNiahSample s;
    CHECK(swax_niah_make(&f.gen, swax_niah_task("multivalue"), 2000, 0.8, 9, 1, &s) == 0);
    SwaxStr a = {0};
    CHECK(swax_niah_answer(&s, &a) == 0);
    CHECK(a.p[0] == ' ' && a.p[a.n - 1] == '.');
    CHECK(a.n == 1 + 4 * 7 + 3 * 2 + 1); /* " 1234567, 2345678, 3456789, 4567890." */
    const char *prev = s.prompt.p;
    for (int i = 0; i < 4; i++) {
        char v[8];
        memcpy(v, a.p + 1 + 9 * i, 7);
        v[7] = 0;
        const char *at = strstr(s.prompt.p, v);
        CHECK(at && at >= prev);
        prev = at;
    }
    swax_str_free(&a);
    swax_niah_sample_free(&s);
    gen_unfix(&f);
}

/* ---- RULER scoring -------------------------------------------------------------------- */

TEST(niah_score_ruler_rule) {
    const char *one[] = {"1234567"};
    CHECK(swax_niah_score(" 1234567.", one, 1) == 1.0);
    CHECK(swax_niah_score("The number is 1234567 indeed", one, 1) == 1.0);
    CHECK(swax_niah_score("12345678", one, 1) == 1.0); /* substring, as RULER */
    CHECK(swax_niah_score("123456", one, 1) == 0.0);
    CHECK(swax_niah_score("", one, 1) == 0.0);
    CHECK(swax_niah_score("1 2 3 4 5 6 7", one, 1) == 0.0);
    const char *four[] = {"1111111", "2222222", "3333333", "4444444"};
    CHECK(swax_niah_score("1111111, 2222222, 3333333, 4444444.", four, 4) == 1.0);
    CHECK(swax_niah_score("4444444 and 2222222", four, 4) == 0.5);
    CHECK(swax_niah_score("3333333", four, 4) == 0.25);
    CHECK(swax_niah_score("none", four, 4) == 0.0);
    const char *uuid[] = {"3f2a9c1e-7b4d-4e8a-9c2f-1a5b6d7e8f90"};
    CHECK(swax_niah_score("The uuid is 3F2A9C1E-7B4D-4E8A-9C2F-1A5B6D7E8F90.", uuid, 1) == 1.0); /* case-insensitive */
    CHECK(swax_niah_score("3f2a9c1e-7b4d-4e8a-9c2f-1a5b6d7e8f9", uuid, 1) == 0.0);
}

/* ---- greedy generation ------------------------------------------------------------------ */

/* swax_generate_greedy (prefill + batched decode) equals a loop of full
 * forwards taking the argmax, with the same stop rules. */
TEST(generate_greedy_matches_forward_loop) {
    SwaxModel *m = small_model(16);
    SwaxTokenizer *tok = byte_tok();
    CHECK(m && tok);
    const SwaxConfig *c = swax_model_config(m);
    const char *texts[3] = {"Once upon a time, in a town by the sea, ", "The magic number is", "abc"};
    SwaxTokenBuf prompts[3] = {{0}, {0}, {0}};
    for (int i = 0; i < 3; i++) CHECK(swax_tokenizer_encode(tok, texts[i], strlen(texts[i]), 0, &prompts[i]) == 0);
    SwaxState *st = NULL;
    CHECK(swax_state_create(m, 3, 0, &st) == 0);
    SwaxStr outs[3] = {{0}, {0}, {0}};
    int n_new[3];
    const int max_new = 12;
    CHECK(swax_generate_greedy(m, st, tok, 256, prompts, 3, max_new, 0, outs, n_new) == 0);
    for (int i = 0; i < 3; i++) {
        int32_t seq[128];
        size_t n = prompts[i].n;
        memcpy(seq, prompts[i].ids, n * sizeof *seq);
        SwaxStr want = {0};
        int steps = 0;
        for (; steps < max_new; steps++) {
            SwaxBatch b = {.B = 1, .T = (int)n, .tokens = seq, .window = 16};
            CHECK(swax_forward(m, &b, NULL) == 0);
            const float *z = swax_model_logits(m) + (n - 1) * (size_t)c->vocab_size;
            int best = 0;
            for (int v = 1; v < c->vocab_used; v++)
                if (z[v] > z[best]) best = v;
            if (best == 256) {
                steps++;
                break;
            }
            char ch = (char)best;
            swax_str_append(&want, &ch, 1);
            seq[n++] = best;
            char *nl = strchr(want.p, '\n');
            int blank = 1;
            for (char *q = want.p; nl && q < nl; q++) blank = blank && isspace((unsigned char)*q);
            if (nl && !blank) {
                *nl = 0;
                want.n = (size_t)(nl - want.p);
                steps++;
                break;
            }
        }
        CHECKF(outs[i].n == want.n && !memcmp(outs[i].p, want.p, want.n), "prompt %d: '%s' vs '%s'", i,
               outs[i].p ? outs[i].p : "", want.p ? want.p : "");
        CHECKF(n_new[i] == steps, "prompt %d: %d vs %d new tokens", i, n_new[i], steps);
        swax_str_free(&want);
        swax_str_free(&outs[i]);
        swax_token_buf_free(&prompts[i]);
    }
    swax_state_free(st);
    swax_tokenizer_free(tok);
    swax_model_free(m);
}

/* ---- multiple choice ---------------------------------------------------------------------- */

/* acc's log-likelihoods equal a direct sum over swax_forward's logits, one choice at a time. */
TEST(choice_equals_direct_logprob_sum) {
    SwaxModel *m = small_model(8);
    SwaxTokenizer *tok = byte_tok();
    CHECK(m && tok);
    const int V = swax_model_config(m)->vocab_size;
    char *ch1[] = {" mat", " moon and the stars", " a"};
    char *ch2[] = {"world", "there, friend"};
    char *ch3[] = {"Alpha", "Beta"};
    SwaxChoiceItem items[3] = {{"The cat sat on the", ch1, 3, 0}, {"Hello  ", ch2, 2, 1}, {"", ch3, 2, 0}};
    for (int it = 0; it < 3; it++) {
        double ll[3];
        int nt[3];
        CHECK(swax_choice_score(m, tok, &items[it], 8, ll, nt) == 0);
        for (int k = 0; k < items[it].n_choices; k++) {
            /* bytes: context without trailing spaces (or eot), then spaces + choice */
            int32_t seq[256];
            int n = 0, nctx;
            const char *ctx = items[it].context;
            size_t keep = strlen(ctx);
            while (keep && ctx[keep - 1] == ' ') keep--;
            if (!keep) seq[n++] = 256;
            for (size_t i = 0; i < keep; i++) seq[n++] = (unsigned char)ctx[i];
            nctx = n;
            for (size_t i = keep; ctx[i]; i++) seq[n++] = (unsigned char)ctx[i];
            for (const char *p = items[it].choices[k]; *p; p++) seq[n++] = (unsigned char)*p;
            CHECK(nt[k] == n - nctx);
            SwaxBatch b = {.B = 1, .T = n - 1, .tokens = seq, .window = 8};
            CHECK(swax_forward(m, &b, NULL) == 0);
            const float *z = swax_model_logits(m);
            double want = 0;
            for (int p = nctx; p < n; p++) want += direct_logprob(z + (size_t)(p - 1) * V, 257, seq[p]);
            CHECKF(fabs(ll[k] - want) <= 1e-4 * fabs(want) + 1e-5, "item %d choice %d: %.8f vs %.8f", it, k, ll[k],
                   want);
        }
    }
    swax_tokenizer_free(tok);
    swax_model_free(m);
}

TEST(choice_run_acc_and_acc_norm) {
    /* A task file whose answers are the model's own picks under acc gives acc 1. */
    SwaxModel *m = small_model(8);
    SwaxTokenizer *tok = byte_tok();
    CHECK(m && tok);
    char *ch[] = {" yes", " no", " maybe so"};
    SwaxChoiceItem it = {"Is the sea wet?", ch, 3, 0};
    double ll[3];
    CHECK(swax_choice_score(m, tok, &it, 8, ll, NULL) == 0);
    int best = 0, best_n = 0;
    for (int k = 1; k < 3; k++) {
        if (ll[k] > ll[best]) best = k;
        if (ll[k] / strlen(ch[k]) > ll[best_n] / strlen(ch[best_n])) best_n = k;
    }
    char path[512], out[512], line[256], res[600];
    tmp_path(path, sizeof path, "mc.jsonl");
    tmp_path(out, sizeof out, "mc_out");
    snprintf(line, sizeof line,
             "{\"context\": \"Is the sea wet?\", \"choices\": [\" yes\", \" no\", \" maybe so\"], \"answer\": %d}\n\n",
             best);
    CHECK(write_text(path, line) == 0);
    const char *files[] = {path};
    SwaxChoiceOpts o = {.model = m, .model_name = "test", .tok = tok, .task_files = files, .n_tasks = 1, .window = 8,
                        .out_dir = out, .quiet = 1};
    CHECK(swax_eval_choice(&o) == 0);
    snprintf(res, sizeof res, "%s/results.json", out);
    char *txt = NULL;
    size_t len;
    CHECK(swax_read_file(res, &txt, &len) == 0);
    CHECK(strstr(txt, "\"acc\":\t1"));
    CHECK(strstr(txt, best_n == best ? "\"acc_norm\":\t1" : "\"acc_norm\":\t0"));
    free(txt);
    snprintf(res, sizeof res, "%s/mc.jsonl", out);
    CHECK(swax_read_file(res, &txt, &len) == 0);
    CHECK(strstr(txt, "\"loglikelihoods\""));
    free(txt);
    swax_tokenizer_free(tok);
    swax_model_free(m);
}

TEST(choice_bad_input) {
    char path[512];
    SwaxChoiceItem *items;
    long n;
    tmp_path(path, sizeof path, "bad.jsonl");
    CHECK(write_text(path, "{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"answer\": 0}\n{\"context\": \"a\", "
                           "\"choices\": [\"b\", \"c\"], \"answer\": 0\n") == 0);
    CHECK(swax_choice_load(path, &items, &n) == SWAX_E_INPUT);
    char want[600];
    snprintf(want, sizeof want, "%s:2:", path);
    CHECKF(strstr(swax_last_error(), want), "%s", swax_last_error());
    CHECK(write_text(path, "{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"answer\": 2}\n") == 0);
    CHECK(swax_choice_load(path, &items, &n) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), ":1:") && strstr(swax_last_error(), "answer"));
    CHECK(write_text(path, "\n{\"context\": \"a\", \"choices\": \"b\", \"answer\": 0}\n") == 0);
    CHECK(swax_choice_load(path, &items, &n) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), ":2:") && strstr(swax_last_error(), "choices"));
    CHECK(write_text(path, "{\"context\": 3, \"choices\": [\"b\", \"c\"], \"answer\": 0}\n") == 0);
    CHECK(swax_choice_load(path, &items, &n) == SWAX_E_INPUT && strstr(swax_last_error(), "context"));
    CHECK(write_text(path, "{\"context\": \"a\", \"choices\": [\"b\", 1], \"answer\": 0}\n") == 0);
    CHECK(swax_choice_load(path, &items, &n) == SWAX_E_INPUT && strstr(swax_last_error(), "strings"));
    CHECK(write_text(path, "[1, 2]\n") == 0);
    CHECK(swax_choice_load(path, &items, &n) == SWAX_E_INPUT && strstr(swax_last_error(), "object"));
    CHECK(write_text(path, "{} trailing\n") == 0);
    CHECK(swax_choice_load(path, &items, &n) == SWAX_E_INPUT && strstr(swax_last_error(), ":1:"));
    CHECK(write_text(path, "\n\n") == 0);
    CHECK(swax_choice_load(path, &items, &n) == SWAX_E_INPUT && strstr(swax_last_error(), "no items"));
    tmp_path(path, sizeof path, "does_not_exist.jsonl");
    CHECK(swax_choice_load(path, &items, &n) != 0);
    CHECK(strstr(swax_last_error(), "does_not_exist.jsonl"));
    /* a good file loads */
    tmp_path(path, sizeof path, "good.jsonl");
    CHECK(write_text(path, "{\"context\": \"Q: 2+2?\\nA:\", \"choices\": [\" 4\", \" 5\", \" 22\"], \"answer\": 0}\r\n") == 0);
    CHECK(swax_choice_load(path, &items, &n) == 0);
    CHECK(n == 1 && items[0].n_choices == 3 && items[0].answer == 0 && !strcmp(items[0].context, "Q: 2+2?\nA:"));
    swax_choice_free(items, n);
}

/* ---- loss by position ------------------------------------------------------------------------ */

TEST(ppl_buckets_weighted_mean_is_overall) {
    SwaxModel *m = small_model(8);
    CHECK(m);
    int32_t tok[301];
    SwaxRng r;
    swax_rng_seed(&r, 3, 0);
    for (int i = 0; i < 301; i++) tok[i] = (int32_t)(swax_rng_u64(&r) % 256);
    SwaxPplStats s;
    CHECK(swax_ppl_stats_init(&s, 300, 64) == 0);
    CHECK(s.n_buckets == 5);
    CHECK(swax_ppl_sequence(m, NULL, SWAX_PPL_FORWARD, tok, 301, 8, 0, 0, &s) == 0);
    CHECK(swax_ppl_sequence(m, NULL, SWAX_PPL_FORWARD, tok + 100, 150, 8, 0, 0, &s) == 0);
    CHECK(s.total_count == 300 + 149);
    double num = 0;
    long den = 0;
    for (int b = 0; b < s.n_buckets; b++) num += s.count[b] * swax_ppl_bucket_loss(&s, b), den += s.count[b];
    CHECK(den == s.total_count);
    CHECKF(fabs(num / den - swax_ppl_loss(&s)) < 1e-12, "%.15g vs %.15g", num / den, swax_ppl_loss(&s));
    /* 300 predictions: 64 64 64 64 44; 149: 64 64 21 */
    CHECK(s.count[0] == 128 && s.count[1] == 128 && s.count[2] == 85 && s.count[3] == 64 && s.count[4] == 44);
    swax_ppl_stats_free(&s);

    /* the overall loss is the model's own mean cross-entropy */
    CHECK(swax_ppl_stats_init(&s, 300, 100) == 0);
    CHECK(swax_ppl_sequence(m, NULL, SWAX_PPL_FORWARD, tok, 301, 8, 0, 0, &s) == 0);
    float loss;
    SwaxBatch b = {.B = 1, .T = 300, .tokens = tok, .targets = tok + 1, .window = 8};
    CHECK(swax_forward(m, &b, &loss) == 0);
    CHECKF(fabs(swax_ppl_loss(&s) - loss) < 1e-5 * loss, "%.8f vs %.8f", swax_ppl_loss(&s), loss);
    swax_ppl_stats_free(&s);
    swax_model_free(m);
}

TEST(ppl_stream_equals_forward) {
    SwaxModel *m = small_model(8);
    CHECK(m);
    int32_t tok[400];
    SwaxRng r;
    swax_rng_seed(&r, 4, 0);
    for (int i = 0; i < 400; i++) tok[i] = (int32_t)(swax_rng_u64(&r) % 256);
    SwaxState *st = NULL;
    CHECK(swax_state_create(m, 1, 8, &st) == 0);
    SwaxPplStats a, b;
    CHECK(swax_ppl_stats_init(&a, 399, 50) == 0 && swax_ppl_stats_init(&b, 399, 50) == 0);
    CHECK(swax_ppl_sequence(m, NULL, SWAX_PPL_FORWARD, tok, 400, 8, 0, 0, &a) == 0);
    CHECK(swax_ppl_sequence(m, st, SWAX_PPL_STREAM, tok, 400, 8, 16, 70, &b) == 0); /* slices cut chunks */
    CHECK(a.total_count == b.total_count);
    for (int k = 0; k < a.n_buckets; k++)
        CHECKF(fabs(swax_ppl_bucket_loss(&a, k) - swax_ppl_bucket_loss(&b, k)) < 1e-4, "bucket %d: %.6f vs %.6f", k,
               swax_ppl_bucket_loss(&a, k), swax_ppl_bucket_loss(&b, k));
    swax_ppl_stats_free(&a);
    swax_ppl_stats_free(&b);
    swax_state_free(st);
    swax_model_free(m);
}

/* The row losses run in parallel, their sums in position order: the same
 * bits on 1 and 3 threads (3000 rows x 700: past the parallel threshold). */
TEST(ppl_rows_same_bits_on_any_thread_count) {
    enum { R = 3000, V = 700, VU = 690 };
    float *lg = malloc(sizeof(float) * R * V);
    int32_t *tok = malloc(sizeof(int32_t) * (R + 1));
    CHECK(lg && tok);
    SwaxRng r;
    swax_rng_seed(&r, 5, 0);
    for (size_t i = 0; i < (size_t)R * V; i++) lg[i] = (float)(8 * swax_rng_uniform(&r) - 4);
    for (int i = 0; i <= R; i++) tok[i] = (int32_t)(swax_rng_u64(&r) % VU);
    SwaxPplStats a, b;
    CHECK(swax_ppl_stats_init(&a, R, 256) == 0 && swax_ppl_stats_init(&b, R, 256) == 0);
    const int keep = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK(swax_ppl_add_rows(&a, lg, 0, R, V, VU, tok) == 0);
    omp_set_num_threads(3);
    CHECK(swax_ppl_add_rows(&b, lg, 0, R, V, VU, tok) == 0);
    omp_set_num_threads(keep);
    CHECK(a.total_count == R && b.total_count == R);
    CHECKF(swax_ppl_loss(&a) == swax_ppl_loss(&b), "%.17g vs %.17g", swax_ppl_loss(&a), swax_ppl_loss(&b));
    for (int k = 0; k < a.n_buckets; k++) CHECK(swax_ppl_bucket_loss(&a, k) == swax_ppl_bucket_loss(&b, k));
    /* and the mean is that of each row's log-softmax at its target */
    double sum = 0;
    for (int i = 0; i < R; i++) sum += -swax_logprob(lg + (size_t)i * V, VU, tok[i + 1]);
    CHECKF(fabs(swax_ppl_loss(&a) - sum / R) <= 1e-12 * sum / R, "%.17g vs %.17g", swax_ppl_loss(&a), sum / R);
    swax_ppl_stats_free(&a);
    swax_ppl_stats_free(&b);
    free(lg), free(tok);
}

/* The whole run over shards: sequences overlap by one token, docs mode
 * splits at eot, reports agree with the numbers. */
TEST(ppl_run_on_shards) {
    SwaxModel *m = small_model(8);
    CHECK(m);
    uint32_t toks[1000];
    SwaxRng r;
    swax_rng_seed(&r, 5, 0);
    for (int i = 0; i < 1000; i++) toks[i] = (uint32_t)(swax_rng_u64(&r) % 256);
    toks[0] = 256, toks[300] = 256, toks[350] = 256; /* documents of 300, 50 and 650 tokens */
    char sh1[512], sh2[512], glob_s[512], out[512], p[600];
    tmp_path(sh1, sizeof sh1, "val_000000.bin");
    tmp_path(sh2, sizeof sh2, "val_000001.bin");
    CHECK(swax_shard_write(sh1, toks, 600, 257) == 0);
    CHECK(swax_shard_write(sh2, toks + 600, 400, 257) == 0);
    tmp_path(glob_s, sizeof glob_s, "val_*.bin");
    tmp_path(out, sizeof out, "ppl_out");
    SwaxPplOpts o = {.model = m, .model_name = "test", .data = glob_s, .seq_len = 256, .bucket = 64, .window = 8,
                     .train_len = 128, .out_dir = out, .quiet = 1};
    SwaxPplStats s;
    CHECK(swax_eval_ppl(&o, &s) == 0);
    CHECK(s.total_count == 999); /* every token after the first, once */
    CHECK(s.count[0] == 4 * 64 && s.count[3] == 3 * 64 + (999 - 3 * 256 - 192));
    /* the same numbers by hand: windows of 257 tokens, stride 256 */
    SwaxPplStats h;
    CHECK(swax_ppl_stats_init(&h, 256, 64) == 0);
    int32_t buf[257];
    for (int g = 0; g + 1 < 1000; g += 256) {
        int n = 1000 - g < 257 ? 1000 - g : 257;
        for (int i = 0; i < n; i++) buf[i] = (int32_t)toks[g + i];
        CHECK(swax_ppl_sequence(m, NULL, SWAX_PPL_FORWARD, buf, n, 8, 0, 0, &h) == 0);
    }
    CHECKF(fabs(swax_ppl_loss(&h) - swax_ppl_loss(&s)) < 1e-4, "%.6f vs %.6f", swax_ppl_loss(&h), swax_ppl_loss(&s));
    swax_ppl_stats_free(&h);
    swax_ppl_stats_free(&s);
    const char *files[] = {"ppl.md", "ppl.json", "ppl_by_position.svg"};
    for (int i = 0; i < 3; i++) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        CHECKF(stat(p, &st) == 0 && st.st_size > 100, "%s", p);
    }
    char *txt;
    size_t len;
    snprintf(p, sizeof p, "%s/ppl_by_position.svg", out);
    CHECK(swax_read_file(p, &txt, &len) == 0);
    CHECK(strstr(txt, "<polyline") && strstr(txt, "training length") && strstr(txt, "</svg>"));
    free(txt);

    /* documents: 3 of them, positions from each start; --max-tokens caps */
    o.docs = 1, o.min_doc_len = 100;
    CHECK(swax_eval_ppl(&o, &s) == 0);
    CHECK(s.total_count == 256 + 256); /* the 50-token document skipped, the others cut at 257 tokens */
    swax_ppl_stats_free(&s);
    o.docs = 0, o.max_tokens = 300;
    CHECK(swax_eval_ppl(&o, &s) == 0);
    CHECK(s.total_count == 300);
    swax_ppl_stats_free(&s);

    /* bad input */
    tmp_path(glob_s, sizeof glob_s, "nothing_*.bin");
    o.data = glob_s;
    CHECK(swax_eval_ppl(&o, NULL) == SWAX_E_INPUT && strstr(swax_last_error(), "no shard matches"));
    tmp_path(sh1, sizeof sh1, "bad_000.bin");
    CHECK(write_text(sh1, "not a shard") == 0);
    tmp_path(glob_s, sizeof glob_s, "bad_*.bin");
    CHECK(swax_eval_ppl(&o, NULL) == SWAX_E_INPUT && strstr(swax_last_error(), "bad_000.bin"));
    swax_model_free(m);
}

/* ---- gen-data -------------------------------------------------------------------------------- */

TEST(gen_data_documents) {
    GenFix f;
    CHECK(gen_fix(&f, byte_tok()) == 0);
    const SwaxNiahTask *tasks[8];
    for (int i = 0; i < 8; i++) tasks[i] = swax_niah_task_at(i);
    for (uint64_t d = 0; d < 24; d++) {
        SwaxStr a = {0}, b = {0};
        CHECK(swax_gen_niah_doc(&f.gen, tasks, 8, 800, 1500, 11, d, &a) == 0);
        CHECK(swax_gen_niah_doc(&f.gen, tasks, 8, 800, 1500, 11, d, &b) == 0);
        CHECK(a.n == b.n && !memcmp(a.p, b.p, a.n));
        CHECKF(a.n >= 800 - 16 && a.n <= 1500 + 4, "doc %d: %zu bytes", (int)d, a.n);
        /* ends with the query's answer prefix, then the answer values, which are in the haystack */
        const char *is = strstr(a.p, " mentioned in the provided text is ");
        const char *are = strstr(a.p, " mentioned in the provided text are ");
        CHECK(is || are);
        const char *ans = is ? is + 34 : are + 35;
        CHECK(a.p[a.n - 1] == '.');
        char val[64];
        const char *q = ans;
        while (*q) {
            size_t k = strcspn(q, ",.");
            CHECK(k > 0 && k < sizeof val);
            memcpy(val, q, k);
            val[k] = 0;
            CHECKF(count_of(a.p, val) == 2, "value %s", val);
            q += k + (q[k] == ',' ? 2 : 1);
        }
        swax_str_free(&a);
        swax_str_free(&b);
    }
    /* recalls: the default 4, every pair (queries 0: dense recall, the window study's), or 2 */
    const int qs[] = {SWAX_KV_QUERIES, 0, 2};
    for (int qi = 0; qi < 3; qi++)
    for (uint64_t d = 0; d < 10; d++) {
        SwaxStr a = {0};
        CHECK(swax_gen_kv_doc(&f.gen, 200, 600, qs[qi], 3, d, &a) == 0);
        CHECKF(a.n >= 200 - 30 && a.n <= 600 + 4, "kv doc: %zu bytes", a.n);
        CHECK(!strncmp(a.p, "Key-value pairs:\n", 17));
        const char *rec = strstr(a.p, "Recall:\n");
        CHECK(rec);
        int nq = 0;
        for (const char *l = rec + 8; *l; nq++) {
            const char *e = strchr(l, '\n');
            CHECK(e);
            char line[128];
            snprintf(line, sizeof line, "\n%.*s\n", (int)(e - l), l);
            const char *at = strstr(a.p, line);
            CHECK(at && at < rec); /* a pair from the list, value included */
            CHECK(!strstr(rec, line + 1) || strstr(rec, line + 1) == l); /* each pair recalled once */
            l = e + 1;
        }
        int pairs = 0;
        for (const char *l = a.p + 17; l < rec; l++) pairs += *l == '\n';
        CHECKF(nq == (qs[qi] ? qs[qi] : pairs) && pairs >= 2, "kv doc: %d recalls of %d pairs (queries %d)", nq, pairs,
               qs[qi]);
        swax_str_free(&a);
    }
    /* the file: one {"text"} per line */
    char out[512];
    tmp_path(out, sizeof out, "gen.jsonl");
    SwaxGenDataOpts o = {.gen = f.gen, .tasks = tasks, .n_tasks = 8, .docs = 5, .min_len = 900, .max_len = 1000,
                         .seed = 1, .out_path = out, .quiet = 1};
    CHECK(swax_gen_data(&o) == 0);
    char *txt;
    size_t len;
    CHECK(swax_read_file(out, &txt, &len) == 0);
    CHECK(count_of(txt, "{\"text\":\"Some special magic") == 5 && count_of(txt, "\n") == 5);
    free(txt);
    o.min_len = 10, o.max_len = 20;
    CHECK(swax_gen_data(&o) == SWAX_E_USAGE && strstr(swax_last_error(), "document 0"));
    gen_unfix(&f);
}

/* ---- words, essays, lists, SVG ---------------------------------------------------------------- */

TEST(words_and_essays) {
    SwaxWords w;
    swax_words_builtin(&w);
    CHECK(w.n_adj >= 100 && w.n_noun >= 100);
    swax_words_free(&w);
    char p[512];
    tmp_path(p, sizeof p, "words.txt");
    SwaxStr s = {0};
    const char *adj[] = {"famous", "careful", "active", "capable", "visible", "endless", "childish", "magic",
                         "frequent", "hopeless", "ordinary", "curious", "hopeful", "massive", "durable",
                         "sensible", "careless", "foolish", "heroic", "patient", "joyous"};
    for (int i = 0; i < 21; i++) swax_str_printf(&s, "%s\n", adj[i]);
    for (int i = 0; i < 30; i++) swax_str_printf(&s, "noun%c%c\nthing%c\n", 'a' + i % 26, 'a' + i / 26, 'a' + i % 26);
    swax_str_puts(&s, "Proper\nit's\nab\nbasement\nwalked\nquickly\n");
    CHECK(swax_str_write(&s, p) == 0);
    swax_str_free(&s);
    CHECK(swax_words_load(p, &w) == 0);
    /* "things" is a plural: not a noun key; "basement" is no adjective */
    CHECKF(w.n_adj == 21 && w.n_noun == 60, "%d adjectives, %d nouns", w.n_adj, w.n_noun);
    swax_words_free(&w);
    tmp_path(p, sizeof p, "no_words.txt");
    CHECK(swax_words_load(p, &w) == SWAX_E_INPUT && strstr(swax_last_error(), "no_words.txt"));
    tmp_path(p, sizeof p, "few_words.txt");
    CHECK(write_text(p, "alpha\nbeta\n") == 0);
    CHECK(swax_words_load(p, &w) == SWAX_E_INPUT && strstr(swax_last_error(), "need 20"));

    SwaxTokenizer *tok = byte_tok();
    SwaxEssay e;
    const char *gut = "Header stuff.\n*** START OF THE BOOK ***\nFirst  line\nhere.   Second one!\n\"Third?\" "
                      "Yes.\n*** END OF THE BOOK ***\nLicence.";
    CHECK(swax_essay_from_text(gut, strlen(gut), "gut", tok, &e) == 0);
    CHECK(e.n == 4);
    CHECK(!strncmp(e.text + e.off[0], "First line here.", e.len[0]) && e.len[0] == 16);
    CHECK(!strncmp(e.text + e.off[2], "\"Third?\"", e.len[2]));
    CHECK(e.ntok[0] == 17); /* " " + sentence, bytes */
    swax_essay_free(&e);
    CHECK(swax_essay_from_text("   \n ", 5, "empty.txt", tok, &e) == SWAX_E_INPUT);
    CHECK(strstr(swax_last_error(), "empty.txt"));
    const char *missing[] = {"/nonexistent/essay.txt"};
    CHECK(swax_essay_load(missing, 1, tok, &e) == SWAX_E_INPUT && strstr(swax_last_error(), "/nonexistent/essay.txt"));
    /* a folder: its .txt files in order */
    char d[512], f1[600], f2[600];
    tmp_path(d, sizeof d, "essays");
    CHECK(swax_mkdir_p(d) == 0);
    snprintf(f1, sizeof f1, "%s/b.txt", d);
    snprintf(f2, sizeof f2, "%s/a.txt", d);
    CHECK(write_text(f1, "Second file.") == 0 && write_text(f2, "First file.") == 0);
    const char *dirs[] = {d};
    CHECK(swax_essay_load(dirs, 1, tok, &e) == 0);
    CHECK(e.n == 2 && !strncmp(e.text + e.off[0], "First file.", 11));
    swax_essay_free(&e);
    swax_tokenizer_free(tok);
}

TEST(lists_and_utf8) {
    long *v;
    int n;
    CHECK(swax_parse_long_list("--lengths", "4k,8K,1000", 1, 1L << 40, &v, &n) == 0);
    CHECK(n == 3 && v[0] == 4096 && v[1] == 8192 && v[2] == 1000);
    free(v);
    CHECK(swax_parse_long_list("--lengths", "4k,,8k", 1, 1L << 40, &v, &n) == SWAX_E_USAGE);
    CHECK(swax_parse_long_list("--lengths", "12x", 1, 1L << 40, &v, &n) == SWAX_E_USAGE);
    CHECK(swax_parse_long_list("--lengths", "0", 1, 10, &v, &n) == SWAX_E_USAGE);
    SwaxStr s = {0};
    CHECK(swax_str_append_utf8(&s, "ok \xc3\xa9 \xff\xe2\x82 end", 13) == 0);
    CHECK(!strcmp(s.p, "ok \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end") || !strcmp(s.p, "ok \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd end"));
    swax_str_free(&s);
}

TEST(heatmap_svg) {
    char p[512];
    tmp_path(p, sizeof p, "heat.svg");
    const char *xt[] = {"4k", "8k", "16k"}, *yt[] = {"0%", "50%", "100%"};
    double v[9] = {100, 80, 60, 90, 50, NAN, 70, 10, 0};
    CHECK(swax_svg_heatmap(p, "NIAH <test>", "length", "depth", xt, 3, yt, 3, v, 0, 100) == 0);
    char *txt;
    size_t len;
    CHECK(swax_read_file(p, &txt, &len) == 0);
    CHECK(!strncmp(txt, "<svg", 4) && strstr(txt, "</svg>"));
    CHECK(strstr(txt, "NIAH &lt;test&gt;"));
    CHECK(strstr(txt, ">16k<") && strstr(txt, ">100%<"));
    CHECK(count_of(txt, "fill=\"rgb(") == 9 + 20); /* cells + colour bar */
    CHECK(strstr(txt, "rgb(200,200,200)")); /* the missing cell */
    CHECK(strstr(txt, "rgb(26,152,80)") && strstr(txt, "rgb(215,48,39)")); /* 100 green, 0 red */
    free(txt);
}

/* ---- NIAH end to end and the CLI ------------------------------------------------------------- */

static const char *swax_bin(void) { return test_swax_bin_beside(); }

static int run_cmd(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = 0, got;
    char sink[4096];
    while ((got = fread(out && n + 1 < cap ? out + n : sink, 1, out && n + 1 < cap ? cap - 1 - n : sizeof sink, p)) > 0)
        if (out && n + 1 < cap) n += got;
    if (out) out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A model folder with the byte tokenizer beside it. */
static int model_dir(char *dir, size_t cap) {
    tmp_path(dir, cap, "model");
    SwaxModel *m = small_model(16);
    SwaxTokenizer *tok = byte_tok();
    int rc = m && tok ? 0 : 1;
    if (!rc) rc = swax_model_save(m, dir);
    if (!rc) rc = swax_tokenizer_save(tok, dir);
    swax_model_free(m);
    swax_tokenizer_free(tok);
    return rc;
}

TEST(niah_run_end_to_end) {
    SwaxModel *m = small_model(16);
    GenFix f;
    CHECK(m && gen_fix(&f, byte_tok()) == 0);
    const SwaxNiahTask *tasks[2] = {swax_niah_task("single1"), swax_niah_task("multivalue")};
    const long lengths[2] = {600, 900};
    const double depths[2] = {0, 1};
    char out[512], p[600];
    tmp_path(out, sizeof out, "niah_out");
    SwaxNiahRunOpts o = {.model = m, .model_name = "test", .tok = f.tok, .gen = f.gen, .tasks = tasks, .n_tasks = 2,
                         .lengths = lengths, .n_lengths = 2, .depths = depths, .n_depths = 2, .samples = 3,
                         .seed = 1, .max_new = 6, .batch = 2, .out_dir = out, .quiet = 1};
    double acc = -1;
    CHECK(swax_eval_niah(&o, &acc) == 0);
    CHECK(acc >= 0 && acc <= 100);
    snprintf(p, sizeof p, "%s/samples.jsonl", out);
    char *txt;
    size_t len;
    CHECK(swax_read_file(p, &txt, &len) == 0);
    CHECK(count_of(txt, "\n") == 2 * 2 * 2 * 3);
    CHECK(count_of(txt, "\"task\":\"multivalue\"") == 12 && count_of(txt, "\"length\":900") == 12);
    CHECK(strstr(txt, "\"gold\":[\"") && strstr(txt, "\"answer\":") && strstr(txt, "\"correct\":"));
    CHECK(strstr(txt, "\"prompt_tokens\":"));
    free(txt);
    const char *files[] = {"results.md", "results.json", "heatmap.svg", "heatmap_single1.svg", "heatmap_multivalue.svg"};
    for (int i = 0; i < 5; i++) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        CHECKF(stat(p, &st) == 0 && st.st_size > 100, "%s", p);
    }
    snprintf(p, sizeof p, "%s/results.md", out);
    CHECK(swax_read_file(p, &txt, &len) == 0);
    CHECK(strstr(txt, "| single1 |") && strstr(txt, "| multivalue |") && strstr(txt, "| 100% |"));
    free(txt);
    snprintf(p, sizeof p, "%s/results.json", out);
    CHECK(swax_read_file(p, &txt, &len) == 0);
    CHECKF(strstr(txt, "\"truncated\":\tfalse") && strstr(txt, "\"seconds_by_length\":\t["), "%s", txt);
    free(txt);
    /* a time limit already spent: nothing runs, the reports say so (cells null), and it is not an error */
    o.time_limit = 1e-9;
    CHECK(swax_eval_niah(&o, &acc) == 0);
    CHECK(swax_read_file(p, &txt, &len) == 0);
    CHECKF(strstr(txt, "\"truncated\":\ttrue") && strstr(txt, "\"by_length\":\t[null, null]"), "%s", txt);
    free(txt);
    snprintf(p, sizeof p, "%s/results.md", out);
    CHECK(swax_read_file(p, &txt, &len) == 0);
    CHECK(strstr(txt, "time limit"));
    free(txt);
    snprintf(p, sizeof p, "%s/samples.jsonl", out);
    CHECK(swax_read_file(p, &txt, &len) == 0);
    CHECK(len == 0);
    free(txt);
    gen_unfix(&f);
    swax_model_free(m);
}

TEST(cli_eval) {
    char dir[512], cmd[16384], out[8192], p[600];
    CHECK(model_dir(dir, sizeof dir) == 0);
    const char *bin = swax_bin();
    struct stat st;
    CHECKF(stat(bin, &st) == 0, "%s not built (make build/swax)", bin);
    snprintf(cmd, sizeof cmd, "'%s' eval --help", bin);
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "gen-data"));
    snprintf(cmd, sizeof cmd, "'%s' eval niah --help", bin);
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "multiquery"));
    snprintf(cmd, sizeof cmd, "'%s' eval bogus 2>/dev/null", bin);
    CHECK(run_cmd(cmd, NULL, 0) == SWAX_E_USAGE);

    /* niah: a noise task needs no essay */
    snprintf(cmd, sizeof cmd,
             "'%s' eval niah --model '%s' --tasks single1 --lengths 600 --n-depths 2 --samples 1 --max-new 4 "
             "--out '%s/cli_niah' --quiet", bin, dir, tmpdir());
    CHECKF(run_cmd(cmd, out, sizeof out) == 0, "%s", out);
    CHECK(strstr(out, "NIAH accuracy"));
    snprintf(p, sizeof p, "%s/cli_niah/heatmap.svg", tmpdir());
    CHECK(stat(p, &st) == 0);
    snprintf(cmd, sizeof cmd, "'%s' eval niah --model '%s' --tasks single9 --out x 2>&1", bin, dir);
    CHECK(run_cmd(cmd, out, sizeof out) == SWAX_E_USAGE && strstr(out, "single9"));
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' eval niah --model '%s' --tasks single2 --out x 2>&1", tmpdir(), bin, dir);
    CHECK(run_cmd(cmd, out, sizeof out) == SWAX_E_USAGE && strstr(out, "--essay"));
    snprintf(cmd, sizeof cmd, "'%s' eval niah --model '%s' --depths 0,150 --out x 2>&1", bin, dir);
    CHECK(run_cmd(cmd, out, sizeof out) == SWAX_E_USAGE && strstr(out, "--depths"));

    /* choice, with a malformed task file */
    snprintf(p, sizeof p, "%s/cli_mc.jsonl", tmpdir());
    CHECK(write_text(p, "{\"context\": \"A\", \"choices\": [\" b\", \" c\"], \"answer\": 1}\n{oops}\n") == 0);
    snprintf(cmd, sizeof cmd, "'%s' eval choice --model '%s' --tasks '%s' --out '%s/cli_mc' 2>&1", bin, dir, p,
             tmpdir());
    CHECK(run_cmd(cmd, out, sizeof out) == SWAX_E_INPUT && strstr(out, "cli_mc.jsonl:2:"));
    CHECK(write_text(p, "{\"context\": \"A\", \"choices\": [\" b\", \" c\"], \"answer\": 1}\n") == 0);
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "| cli_mc | 1 |"));
    snprintf(cmd, sizeof cmd, "'%s' eval choice --model '%s/nope' --tasks '%s' --out x 2>&1", bin, tmpdir(), p);
    CHECK(run_cmd(cmd, out, sizeof out) == SWAX_E_INPUT && strstr(out, "nope"));

    /* gen-data */
    snprintf(cmd, sizeof cmd,
             "'%s' eval gen-data --kind kv --docs 3 --min-len 100 --max-len 200 --seed 2 --out '%s/cli_kv.jsonl' "
             "--quiet && cat '%s/cli_kv.jsonl'", bin, tmpdir(), tmpdir());
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && count_of(out, "{\"text\":\"Key-value pairs:\\n") == 3);
    snprintf(cmd, sizeof cmd, "'%s' eval gen-data --kind xyz --docs 3 --min-len 1 --max-len 2 --out x 2>&1", bin);
    CHECK(run_cmd(cmd, out, sizeof out) == SWAX_E_USAGE);

    /* ppl */
    uint32_t toks[700];
    for (int i = 0; i < 700; i++) toks[i] = (uint32_t)(i * 7 % 256);
    snprintf(p, sizeof p, "%s/cli_val_000.bin", tmpdir());
    CHECK(swax_shard_write(p, toks, 700, 257) == 0);
    snprintf(cmd, sizeof cmd,
             "'%s' eval ppl --model '%s' --data '%s/cli_val_*.bin' --seq-len 300 --buckets 100 --out '%s/cli_ppl' "
             "--quiet", bin, dir, tmpdir(), tmpdir());
    CHECKF(run_cmd(cmd, out, sizeof out) == 0, "%s", out);
    CHECK(strstr(out, "over 699 predictions"));
    snprintf(cmd, sizeof cmd, "'%s' eval ppl --model '%s' --data '%s/zzz_*.bin' --out x 2>&1", bin, dir, tmpdir());
    CHECK(run_cmd(cmd, out, sizeof out) == SWAX_E_INPUT && strstr(out, "zzz_*.bin"));
}

/* gen-data with lengths below what a NIAH document needs (instructions, needles, answer): a usage
 * error in the units of --min-len (it once printed "length -35 is too short", the length minus the
 * answer), naming the least --min-len that fits, which then works. */
TEST(cli_gen_data_min_len_below_the_smallest_document) {
    const char *bin = swax_bin();
    const char *kinds[] = {"niah", "niah-choice"}, *unit[] = {"document", "item"};
    for (int k = 0; k < 2; k++) {
        char cmd[8192], out[8192], want[128], p[600];
        snprintf(p, sizeof p, "%s/gen_short_%d.jsonl", tmpdir(), k);
        snprintf(cmd, sizeof cmd, "'%s' eval gen-data --kind %s --docs 2 --min-len 1 --max-len 5 --quiet --out '%s' 2>&1",
                 bin, kinds[k], p);
        int rc = run_cmd(cmd, out, sizeof out);
        snprintf(want, sizeof want, "--min-len 1 is below the smallest %s this kind can make", unit[k]);
        CHECKF(rc == SWAX_E_USAGE && strstr(out, want) && !strstr(out, "length -"), "%s: rc %d: %s", kinds[k], rc, out);
        struct stat st;
        CHECK(stat(p, &st) != 0); /* nothing written */
        const char *fit = strstr(out, "; --min-len ");
        long least = 0;
        CHECKF(fit && sscanf(fit, "; --min-len %ld or more fits all 2 ", &least) == 1 && least > 5, "%s", out);
        /* the least --min-len named is enough, and one less is not (for these 2 documents) */
        snprintf(cmd, sizeof cmd, "'%s' eval gen-data --kind %s --docs 2 --min-len %ld --max-len %ld --quiet --out '%s' 2>&1",
                 bin, kinds[k], least, least, p);
        CHECKF(run_cmd(cmd, out, sizeof out) == 0, "--min-len %ld: %s", least, out);
        snprintf(cmd, sizeof cmd, "'%s' eval gen-data --kind %s --docs 2 --min-len %ld --max-len %ld --quiet --out '%s' 2>&1",
                 bin, kinds[k], least - 1, least - 1, p);
        CHECKF(run_cmd(cmd, out, sizeof out) == SWAX_E_USAGE && strstr(out, "is below the smallest"), "%s", out);
    }
}

RUN_TESTS()
