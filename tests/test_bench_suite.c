/* test_bench_suite.c — `swax eval bench` (docs/benchmarks.md): every reader on
 * fixture files this test writes in each release's format, bad files, the
 * metrics against hand-computed values, log-likelihood scoring against a
 * direct sum of log-probabilities on a tiny model (both batching paths), the
 * sandbox against an infinite loop, a fork bomb, a 10 GB allocation and a
 * network call, and the whole suite end to end through the CLI. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eval/bench.h"
#include "infer/infer.h"
#include "test.h"
#include "test_shell.h"

TEST_MAIN_DEFS

static char g_tmp[256];
static const char *tmpdir(void) {
    if (!g_tmp[0]) {
        snprintf(g_tmp, sizeof g_tmp, "/tmp/swax_bench_test_XXXXXX");
        if (!mkdtemp(g_tmp)) abort();
    }
    return g_tmp;
}
static void tmp_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tmpdir(), name); }
static int write_text(const char *path, const char *text) { return swax_write_file_atomic(path, text, strlen(text)); }

static SwaxTokenizer *byte_tok(void) {
    SwaxTokenizer *t = NULL;
    return swax_byte_tokenizer(&t) ? NULL : t;
}

static SwaxModel *small_model(int window) {
    SwaxConfig c;
    swax_config_default(&c, 257, 64, 2);
    c.attn_heads = 2, c.head_dim = 32, c.mlstm_heads = 2, c.ffn_dim = 128;
    c.window = window;
    c.eot_token = 256;
    c.igate_bias_init = 0;
    SwaxModel *m = NULL;
    if (swax_model_create(&c, &m)) return NULL;
    swax_model_init(m, 7);
    return m;
}

/* log p(target) under softmax(z[0..n)), written out here. */
static double direct_logprob(const float *z, int n, int target) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    for (int i = 0; i < n; i++) s += exp(z[i] - mx);
    return z[target] - mx - log(s);
}

/* Sum of log p(cont bytes | ctx bytes) by one forward of ctx ++ cont (byte tokens). */
static double direct_ll(SwaxModel *m, const char *ctx, const char *cont) {
    size_t a = strlen(ctx), b = strlen(cont), T = a + b - 1;
    int32_t *t = calloc(T, sizeof *t);
    for (size_t i = 0; i < a; i++) t[i] = (unsigned char)ctx[i];
    for (size_t i = 0; i + 1 < b; i++) t[a + i] = (unsigned char)cont[i];
    SwaxBatch bt = {.B = 1, .T = (int)T, .tokens = t, .window = swax_model_config(m)->window};
    double s = NAN;
    if (swax_forward(m, &bt, NULL) == 0) {
        s = 0;
        const float *lg = swax_model_logits(m);
        const int V = swax_model_config(m)->vocab_size;
        for (size_t j = 0; j < b; j++) s += direct_logprob(lg + (a + j - 1) * (size_t)V, 257, (unsigned char)cont[j]);
    }
    free(t);
    return s;
}

/* ---- metrics -------------------------------------------------------------------------------- */

TEST(normalisation_cases) {
    const char *cases[][2] = {
        {"The Eiffel Tower!", "eiffel tower"},   {"  a  Cat,   an apple ", "cat apple"},
        {"THE", ""},                             {"U.S.A.", "usa"},
        {"theory of the atom", "theory of atom"}, {"Tab\tand\nnewline", "tab and newline"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *n = swax_bench_normalize(cases[i][0]);
        CHECKF(n && !strcmp(n, cases[i][1]), "'%s' -> '%s', want '%s'", cases[i][0], n, cases[i][1]);
        free(n);
    }
    const char *golds[] = {"Paris", "the City of Light"};
    CHECK(swax_bench_exact_match(" paris.", golds, 2) == 1);
    CHECK(swax_bench_exact_match("city of light", golds, 2) == 1);
    CHECK(swax_bench_exact_match("Paris, France", golds, 2) == 0);
    /* F1: "paris france" vs "paris": p = 1/2, r = 1 -> 2/3 */
    CHECK(fabs(swax_bench_f1("Paris, France", golds, 2) - 2.0 / 3) < 1e-12);
    CHECK(swax_bench_f1("london", golds, 2) == 0);
    CHECK(swax_bench_chars("caf\xc3\xa9") == 4 && strlen("caf\xc3\xa9") == 5);
}

TEST(pass_at_k_closed_form) {
    /* 1 - C(n-c, k) / C(n, k), written with binomials */
    for (int n = 1; n <= 12; n++)
        for (int c = 0; c <= n; c++)
            for (int k = 1; k <= n; k++) {
                double num = 1, den = 1; /* C(n-c, k) / C(n, k) as a product of ratios */
                if (n - c < k) num = 0;
                else
                    for (int i = 0; i < k; i++) num *= (double)(n - c - i), den *= (double)(n - i);
                double want = 1 - num / den;
                CHECKF(fabs(swax_bench_pass_at_k(n, c, k) - want) < 1e-12, "n %d c %d k %d", n, c, k);
            }
    CHECK(fabs(swax_bench_pass_at_k(10, 3, 5) - (1 - 21.0 / 252)) < 1e-12);
    CHECK(fabs(swax_bench_pass_at_k(5, 2, 1) - 0.4) < 1e-12);
}

TEST(longbench_metrics) {
    const char *g[] = {"the cat sat on the mat"};
    /* words: pred "cat sat mat" (3), gold 6 words, LCS 3 -> p 1, r 1/2, F 2/3 */
    CHECK(fabs(swax_bench_rouge_l("cat sat mat", g, 1) - 2.0 / 3) < 1e-12);
    /* code: first non-comment line; LCS("x = 1", "x = 2") = 4, 2*4/10 */
    CHECK(fabs(swax_bench_code_sim("# comment\nx = 1\ny", "x = 2") - 0.8) < 1e-12);
    const char *cls[] = {"Location", "Number", "Human being"};
    CHECK(swax_bench_classification("Number", "Number", cls, 3) == 1);
    CHECK(swax_bench_classification("Number or Location", "Number", cls, 3) == 0.5);
    CHECK(swax_bench_classification("Location", "Number", cls, 3) == 0);
    CHECK(swax_bench_retrieval("Paragraph 3, or paragraph 4", "Paragraph 3") == 0.5);
    CHECK(swax_bench_count("12", "12") == 1 && swax_bench_count("none", "12") == 0);
    const char *zh[] = {"\xe5\x8c\x97\xe4\xba\xac"};               /* 北京 */
    CHECK(swax_bench_f1_chars("\xe5\x8c\x97\xe4\xba\xac\xe3\x80\x82", zh, 1) == 1); /* 北京。 */
}

/* ---- fixtures in each release's format -------------------------------------------------------- */

typedef struct {
    const char *task, *file, *text;
    long n; /* items expected */
} Fixture;

static const Fixture k_fix[] = {
    {"hellaswag", "hellaswag_val.jsonl",
     "{\"ind\": 24, \"activity_label\": \"Roof shingle removal\", \"ctx_a\": \"A man is sitting on a roof.\", "
     "\"ctx_b\": \"he\", \"ctx\": \"A man is sitting on a roof. he\", \"split\": \"val\", \"split_type\": \"indomain\", "
     "\"label\": 3, \"endings\": [\"is using wrap to wrap a pair of skis.\", \"is ripping level tiles off.\", "
     "\"is holding a rubik's cube.\", \"starts pulling up roofing on a roof. [title] Be careful.\"], \"source_id\": \"x\"}\n"
     "{\"ind\": 92, \"activity_label\": \"Clean and jerk\", \"ctx_a\": \"A lady walks to a barbell.\", \"ctx_b\": \"she\", "
     "\"label\": \"1\", \"endings\": [\"lifts it.\", \"bends down.\", \"sits.\", \"runs.\"]}\n", 2},
    {"arc_easy", "ARC-Easy-Test.jsonl",
     "{\"id\": \"Mercury_7175875\", \"question\": {\"stem\": \"Which is a gas?\", \"choices\": [{\"text\": \"ice\", "
     "\"label\": \"A\"}, {\"text\": \"steam\", \"label\": \"B\"}, {\"text\": \"rock\", \"label\": \"C\"}]}, "
     "\"answerKey\": \"B\"}\n", 1},
    {"arc_challenge", "arc_challenge.jsonl", /* the datasets export */
     "{\"id\": \"q1\", \"question\": \"Two plus two?\", \"choices\": {\"text\": [\"3\", \"4\", \"5\", \"6\"], "
     "\"label\": [\"1\", \"2\", \"3\", \"4\"]}, \"answerKey\": \"2\"}\n", 1},
    {"piqa", "piqa/valid.jsonl",
     "{\"goal\": \"To open a jar\", \"sol1\": \"twist the lid.\", \"sol2\": \"eat the lid.\"}\n"
     "{\"goal\": \"To dry hands\", \"sol1\": \"use water.\", \"sol2\": \"use a towel.\"}\n", 2},
    {"siqa", "siqa.jsonl",
     "{\"context\": \"Tracy lent Bob a book.\", \"question\": \"How would Bob feel?\", \"answerA\": \"grateful\", "
     "\"answerB\": \"angry\", \"answerC\": \"sleepy\", \"label\": \"1\"}\n", 1},
    {"winogrande", "winogrande.jsonl",
     "{\"qID\": \"3QHITW7OYO\", \"sentence\": \"The trophy does not fit in the case because _ is too big.\", "
     "\"option1\": \"trophy\", \"option2\": \"case\", \"answer\": \"1\"}\n", 1},
    {"nq_open", "NQ-open.dev.jsonl",
     "{\"question\": \"when was the eiffel tower built\", \"answer\": [\"1887\", \"1889\"]}\n"
     "{\"question\": \"who wrote hamlet\", \"answer\": [\"William Shakespeare\"]}\n", 2},
    {"race", "race/high1.txt",
     "{\"answers\": [\"B\", \"A\"], \"options\": [[\"a\", \"b\", \"c\", \"d\"], [\"yes\", \"no\", \"maybe\", \"never\"]], "
     "\"questions\": [\"What is second?\", \"Is it true?\"], \"article\": \"An article about letters.\", \"id\": \"high1.txt\"}\n", 1},
    {"triviaqa", "triviaqa.json",
     "{\"Data\": [{\"Question\": \"Which planet is red?\", \"QuestionId\": \"tc_1\", \"Answer\": {\"Value\": \"Mars\", "
     "\"Aliases\": [\"Mars\", \"The Red Planet\"], \"NormalizedAliases\": [\"mars\"]}}], \"Version\": 1.0}\n", 1},
    {"humaneval", "HumanEval.jsonl",
     "{\"task_id\": \"HumanEval/0\", \"prompt\": \"def add(a, b):\\n\", \"canonical_solution\": \"    return a + b\\n\", "
     "\"test\": \"def check(candidate):\\n    assert candidate(1, 2) == 3\\n\", \"entry_point\": \"add\"}\n", 1},
    {"mbpp", "mbpp.jsonl",
     "{\"text\": \"Write a function to add two numbers.\", \"code\": \"def add(a, b):\\n    return a + b\", \"task_id\": 2, "
     "\"test_setup_code\": \"\", \"test_list\": [\"assert add(1, 2) == 3\"], \"challenge_test_list\": []}\n"
     "{\"text\": \"Write a function to double.\", \"code\": \"def dbl(a):\\n    return 2 * a\", \"task_id\": 3, "
     "\"test_setup_code\": \"\", \"test_list\": [\"assert dbl(2) == 4\"], \"challenge_test_list\": []}\n"
     "{\"text\": \"Write a function to negate.\", \"code\": \"def neg(a):\\n    return -a\", \"task_id\": 4, "
     "\"test_setup_code\": \"\", \"test_list\": [\"assert neg(2) == -2\"], \"challenge_test_list\": []}\n"
     "{\"text\": \"Write a function to square.\", \"code\": \"def sq(a):\\n    return a * a\", \"task_id\": 11, "
     "\"test_setup_code\": \"\", \"test_list\": [\"assert sq(3) == 9\"], \"challenge_test_list\": []}\n", 4},
    {"longbench", "longbench/data/hotpotqa.jsonl",
     "{\"input\": \"Who owns the cat?\", \"context\": \"Passage 1: Ann owns the cat.\", \"answers\": [\"Ann\"], "
     "\"length\": 6, \"dataset\": \"hotpotqa\", \"language\": \"en\", \"all_classes\": null, \"_id\": \"a1\"}\n", 1},
    {"longbench_v2", "longbench_v2.json",
     "[{\"_id\": \"66f\", \"domain\": \"Single-Document QA\", \"sub_domain\": \"x\", \"difficulty\": \"hard\", "
     "\"length\": \"short\", \"question\": \"What colour?\", \"choice_A\": \"red\", \"choice_B\": \"blue\", "
     "\"choice_C\": \"green\", \"choice_D\": \"grey\", \"answer\": \"B\", \"context\": \"The sky was blue.\"}]\n", 1},
};
#define N_FIX ((int)(sizeof k_fix / sizeof k_fix[0]))

static int write_fixtures(const char *dir) {
    char p[1024];
    swax_mkdir_p(dir);
    for (int i = 0; i < N_FIX; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, k_fix[i].file);
        char *slash = strrchr(p, '/');
        *slash = 0;
        if (swax_mkdir_p(p)) return 1;
        *slash = '/';
        if (write_text(p, k_fix[i].text)) return 1;
    }
    /* PIQA keeps its answers beside the data; LongBench gets a classification set too */
    snprintf(p, sizeof p, "%s/piqa/valid-labels.lst", dir);
    if (write_text(p, "0\n1\n")) return 1;
    snprintf(p, sizeof p, "%s/longbench/data/trec.jsonl", dir);
    return write_text(p, "{\"input\": \"What city?\", \"context\": \"Question: Who? Type: Individual\", \"answers\": "
                         "[\"City\"], \"dataset\": \"trec\", \"all_classes\": [\"City\", \"Individual\"], \"_id\": \"t1\"}\n");
}

TEST(readers_on_release_formats) {
    char dir[512], p[1024];
    tmp_path(dir, sizeof dir, "fix");
    CHECK(write_fixtures(dir) == 0);
    for (int i = 0; i < N_FIX; i++) {
        const SwaxBenchTask *t = swax_bench_task(k_fix[i].task);
        CHECK(t != NULL);
        snprintf(p, sizeof p, "%s/%s", dir, k_fix[i].file);
        if (!strcmp(t->name, "longbench") || !strcmp(t->name, "piqa") || !strcmp(t->name, "race"))
            *strrchr(p, '/') = 0; /* the folder as shipped */
        SwaxBenchSet s = {0};
        int rc = swax_bench_load(t, p, &s);
        long want = k_fix[i].n + !strcmp(t->name, "longbench");
        CHECKF(rc == 0 && s.n == want, "%s: rc %d (%s), %ld items", t->name, rc, swax_last_error(), s.n);
        for (long k = 0; k < s.n; k++) {
            const SwaxBenchItem *it = &s.v[k];
            if (t->kind == SWAX_BENCH_MC || t->kind == SWAX_BENCH_PARTIAL)
                CHECK(it->n_choices >= 2 && it->answer >= 0 && it->answer < it->n_choices && it->shot);
            if (t->kind == SWAX_BENCH_GEN) CHECK(it->n_golds >= 1 && (it->prompt || it->doc));
            if (t->kind == SWAX_BENCH_CODE) CHECK(it->prompt && it->program);
        }
        const SwaxBenchItem *a = &s.v[0];
        if (!strcmp(t->name, "hellaswag")) {
            CHECKF(!strcmp(a->context, "Roof shingle removal: A man is sitting on a roof. He"), "%s", a->context);
            CHECKF(!strcmp(a->choices[3], " starts pulling up roofing on a roof.. Be careful."), "%s", a->choices[3]);
            CHECKF(a->answer == 3 && s.v[1].answer == 1 && !strcmp(a->id, "24"), "%d %d %s", a->answer, s.v[1].answer, a->id);
        }
        if (!strcmp(t->name, "arc_easy"))
            CHECK(!strcmp(a->context, "Question: Which is a gas?\nAnswer:") && !strcmp(a->choices[1], " steam") && a->answer == 1);
        if (!strcmp(t->name, "arc_challenge")) CHECK(a->answer == 1 && !strcmp(a->choices[1], " 4"));
        if (!strcmp(t->name, "piqa")) CHECK(a->answer == 0 && s.v[1].answer == 1 && !strcmp(a->choices[0], " twist the lid."));
        if (!strcmp(t->name, "siqa"))
            CHECK(a->answer == 0 && !strcmp(a->context, "Q: Tracy lent Bob a book. How would Bob feel?\nA:"));
        if (!strcmp(t->name, "winogrande")) {
            CHECK(!strcmp(a->choices[0], "The trophy does not fit in the case because trophy"));
            CHECK(!strcmp(a->choices[1], "The trophy does not fit in the case because case"));
            CHECK(!strcmp(a->suffix, " is too big.") && a->answer == 0);
        }
        if (!strcmp(t->name, "nq_open"))
            CHECK(!strcmp(a->prompt, "Q: when was the eiffel tower built?\nA:") && a->n_golds == 2);
        if (!strcmp(t->name, "race")) {
            CHECKF(!strcmp(a->context, "Article: An article about letters.\n\nQuestion: What is second?\nAnswer: b\n\n"
                                       "Question: Is it true?\nAnswer:"), "%s", a->context);
            CHECK(a->answer == 0 && !strcmp(a->choices[0], " yes"));
        }
        if (!strcmp(t->name, "triviaqa"))
            CHECK(!strcmp(a->golds[0], "Mars") && a->n_golds == 3 && !strcmp(a->id, "tc_1"));
        if (!strcmp(t->name, "humaneval"))
            CHECK(!strcmp(a->prelude, "def add(a, b):\n") && strstr(a->program, "check(add)"));
        if (!strcmp(t->name, "mbpp"))
            CHECK(a->code_id == 2 && strstr(a->prompt, "[BEGIN]\n") && strstr(a->program, "assert add(1, 2) == 3"));
        if (!strcmp(t->name, "longbench")) {
            const SwaxBenchItem *h = !strcmp(s.v[0].group, "hotpotqa") ? &s.v[0] : &s.v[1];
            const SwaxBenchItem *c = h == &s.v[0] ? &s.v[1] : &s.v[0];
            CHECK(!strcmp(h->metric, "qa_f1") && !strcmp(c->metric, "classification") && c->n_classes == 2);
        }
        if (!strcmp(t->name, "longbench_v2")) CHECK(a->answer == 1 && !strcmp(a->group, "hard/short") && a->n_choices == 4);
        swax_bench_set_free(&s);
    }
}

TEST(bad_files_name_file_and_line) {
    struct {
        const char *task, *text, *want;
    } bad[] = {
        {"hellaswag", "{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"endings\": [\"x\", \"y\"], \"label\": 0}\n{oops\n", ":2:"},
        {"hellaswag", "{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"endings\": [\"x\", \"y\"]}\n", "labels"},
        {"hellaswag", "{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"endings\": [\"x\", \"y\"], \"label\": 7}\n", "label 7"},
        {"arc_easy", "{\"question\": {\"stem\": \"q\", \"choices\": [{\"text\": \"a\", \"label\": \"A\"}, {\"text\": \"b\", "
                     "\"label\": \"B\"}]}, \"answerKey\": \"E\"}\n", "answerKey"},
        {"winogrande", "{\"sentence\": \"no blank\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": \"1\"}\n", "blank"},
        {"nq_open", "{\"question\": \"q\", \"answer\": []}\n", "answer"},
        {"nq_open", "[1, 2]\n", "record 1"},
        {"longbench", "{\"input\": \"q\", \"context\": \"c\", \"answers\": [\"a\"], \"dataset\": \"nope\"}\n", "nope"},
        {"longbench_v2", "[{\"question\": \"q\"},\n", ":2:"},
        {"humaneval", "{\"prompt\": \"p\", \"entry_point\": \"f; import os\", \"test\": \"t\"}\n", "entry_point"},
        {"race", "{\"article\": \"a\", \"questions\": [\"q\"], \"options\": [[\"a\"]], \"answers\": [\"A\"]}\n", "options"},
        {"mbpp", "", "empty"},
        {"siqa", "\"just a string\"\n", "object"},
    };
    char p[600];
    tmp_path(p, sizeof p, "bad.jsonl");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(write_text(p, bad[i].text) == 0);
        SwaxBenchSet s = {0};
        int rc = swax_bench_load(swax_bench_task(bad[i].task), p, &s);
        CHECKF(rc == SWAX_E_INPUT && strstr(swax_last_error(), "bad.jsonl") && strstr(swax_last_error(), bad[i].want),
               "case %zu (%s): rc %d, '%s'", i, bad[i].task, rc, swax_last_error());
        CHECK(s.n == 0 || s.v != NULL);
        swax_bench_set_free(&s);
    }
    /* a labels file that does not match its data */
    char d[600], l[600];
    tmp_path(d, sizeof d, "pq.jsonl");
    tmp_path(l, sizeof l, "pq-labels.lst");
    CHECK(write_text(d, "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}\n") == 0);
    CHECK(write_text(l, "0\n1\n") == 0);
    SwaxBenchSet s = {0};
    CHECK(swax_bench_load(swax_bench_task("piqa"), d, &s) == SWAX_E_INPUT && strstr(swax_last_error(), "labels"));
    swax_bench_set_free(&s);
    CHECK(swax_bench_load(swax_bench_task("piqa"), "/nonexistent/x.jsonl", &s) == SWAX_E_INPUT);
}

/* ---- scoring on a tiny model -------------------------------------------------------------------- */

TEST(loglik_equals_direct_sum_both_paths) {
    SwaxModel *m = small_model(8);
    SwaxTokenizer *tok = byte_tok();
    CHECK(m && tok);
    const char *ctx[3] = {"Question: Which is a gas?\nAnswer:", "Question: Which is a gas?\nAnswer:",
                          "Question: Which is a gas?\nAnswer:"};
    const char *cont[3] = {" ice", " steam", " caf\xc3\xa9 rock"};
    double want[3], ll[3], ll2[3];
    for (int k = 0; k < 3; k++) want[k] = direct_ll(m, ctx[k], cont[k]);
    SwaxBenchLM lm;
    CHECK(swax_bench_lm_init(&lm, m, tok, 2, 0, 0) == 0);
    lm.share_min = 1000; /* one batched forward */
    CHECK(swax_bench_loglik(&lm, ctx, cont, 3, ll, NULL, NULL) == 0);
    CHECK_CLOSE(ll, want, 3, 1e-4, 1e-5);
    lm.share_min = 1; /* prefill once, copy the state per choice */
    CHECK(swax_bench_loglik(&lm, ctx, cont, 3, ll2, NULL, NULL) == 0);
    CHECK_CLOSE(ll2, want, 3, 1e-4, 1e-5);
    /* Winogrande: different prefixes, one suffix */
    const char *pre[2] = {"The trophy is", "The case is"}, *suf[2] = {" too big.", " too big."};
    double w[2] = {direct_ll(m, pre[0], suf[0]), direct_ll(m, pre[1], suf[1])}, wl[2];
    lm.share_min = 64;
    CHECK(swax_bench_loglik(&lm, pre, suf, 2, wl, NULL, NULL) == 0);
    CHECK_CLOSE(wl, w, 2, 1e-4, 1e-5);
    swax_bench_lm_free(&lm);
    swax_tokenizer_free(tok);
    swax_model_free(m);
}

/* Reads the value of "key" for a task's overall row from results.json. */
static double result_of(const char *out, const char *task, const char *key) {
    char p[700], *txt;
    size_t len;
    snprintf(p, sizeof p, "%s/results.json", out);
    if (swax_read_file(p, &txt, &len)) return NAN;
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "tasks"), task), key);
    double r = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(j);
    return r;
}

TEST(acc_and_acc_norm_by_hand) {
    SwaxModel *m = small_model(8);
    SwaxTokenizer *tok = byte_tok();
    char f[600], out[600];
    tmp_path(f, sizeof f, "hand_arc.jsonl");
    tmp_path(out, sizeof out, "hand_out");
    /* two items; choices whose lengths differ so that acc and acc_norm can disagree */
    CHECK(write_text(f, "{\"id\": \"a\", \"question\": {\"stem\": \"Pick\", \"choices\": [{\"text\": \"x\", \"label\": \"A\"}, "
                        "{\"text\": \"a much longer caf\xc3\xa9 answer\", \"label\": \"B\"}]}, \"answerKey\": \"A\"}\n"
                        "{\"id\": \"b\", \"question\": {\"stem\": \"Pick\", \"choices\": [{\"text\": \"x\", \"label\": \"A\"}, "
                        "{\"text\": \"a much longer caf\xc3\xa9 answer\", \"label\": \"B\"}]}, \"answerKey\": \"B\"}\n") == 0);
    const char *ctx = "Question: Pick\nAnswer:", *c0 = " x", *c1 = " a much longer caf\xc3\xa9 answer";
    double l0 = direct_ll(m, ctx, c0), l1 = direct_ll(m, ctx, c1);
    int p = l1 > l0, pn = l1 / 26 > l0 / 2; /* characters: " x" 2, c1 26 (27 bytes) */
    CHECK(swax_bench_chars(c1) == 26 && strlen(c1) == 27);
    SwaxBenchJob job = {swax_bench_task("arc_easy"), f};
    SwaxBenchOpts o = {.model = m, .model_name = "t", .tok = tok, .jobs = &job, .n_jobs = 1, .shots = 0, .out_dir = out,
                       .quiet = 1};
    CHECK(swax_eval_bench(&o) == 0);
    CHECK(fabs(result_of(out, "arc_easy", "acc") - 0.5) < 1e-12); /* one of the two is right, whichever p is */
    char sp[700], *txt;
    size_t len;
    snprintf(sp, sizeof sp, "%s/samples.jsonl", out);
    CHECK(swax_read_file(sp, &txt, &len) == 0);
    char want[64];
    snprintf(want, sizeof want, "\"pred\":%d,\"pred_norm\":%d", p, pn);
    CHECKF(strstr(txt, want), "%s in %s (ll %g %g)", want, txt, l0, l1);
    free(txt);
    /* acc_norm of item 1 (gold A) is pn == 0, of item 2 (gold B) pn == 1: one right either way */
    CHECK(fabs(result_of(out, "arc_easy", "acc_norm") - 0.5) < 1e-12);
    swax_tokenizer_free(tok);
    swax_model_free(m);
}

/* ---- the sandbox ---------------------------------------------------------------------------------- */

/* Processes whose working folder is `dir` (the sandbox's scratch folder; it
 * is removed after the run, so its link then reads "dir (deleted)"): only the
 * program's own processes, whatever else runs on the machine. */
static int count_in_dir(const char *dir) {
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    const size_t len = strlen(dir);
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p[300], cwd[4200];
        snprintf(p, sizeof p, "/proc/%s/cwd", e->d_name);
        const ssize_t k = readlink(p, cwd, sizeof cwd - 1);
        if (k <= 0) continue;
        cwd[k] = 0;
        if (!strncmp(cwd, dir, len) && (cwd[len] == 0 || cwd[len] == ' ')) n++;
    }
    if (d) closedir(d);
    return n;
}

static int have_python(void) { return access("/usr/bin/python3", X_OK) == 0 || getenv("SWAX_PYTHON"); }

TEST(sandbox_pass_fail_and_limits) {
    if (!have_python()) {
        printf("  (skipped: no python3)\n");
        return;
    }
    SwaxSandboxOpts o = {.timeout = 2, .mem_bytes = 512L << 20, .nproc = 16};
    SwaxSandboxResult r;
    CHECK(swax_sandbox_run(&o, "assert 1 + 1 == 2\nprint('ok')\n", &r) == 0);
    CHECKF(r.passed && strstr(r.output, "ok"), "%s", r.output);
    CHECK(swax_sandbox_run(&o, "assert 1 + 1 == 3\n", &r) == 0);
    CHECK(!r.passed && r.exit_code == 1 && strstr(r.output, "AssertionError"));
    /* the program's files stay in its scratch folder */
    CHECK(swax_sandbox_run(&o, "import os\nopen('x.txt','w').write('1')\nprint(os.getcwd())\n", &r) == 0);
    CHECK(r.passed && strstr(r.output, "swax_sandbox_"));
    /* an infinite loop: killed at the time limit */
    o.timeout = 1;
    double t0 = swax_time_sec();
    CHECK(swax_sandbox_run(&o, "while True:\n    pass\n", &r) == 0);
    CHECK(r.timed_out && !r.passed && swax_time_sec() - t0 < 3);
    /* 10 GB: refused by RLIMIT_AS, quickly */
    o.timeout = 5;
    t0 = swax_time_sec();
    CHECK(swax_sandbox_run(&o, "b = bytearray(10 * 1024 ** 3)\nprint(len(b))\n", &r) == 0);
    CHECKF(!r.passed && !r.timed_out && strstr(r.output, "MemoryError"), "%s", r.output);
    CHECK(swax_time_sec() - t0 < 3);
    /* a file past RLIMIT_FSIZE */
    o.fsize_bytes = 1 << 20;
    CHECK(swax_sandbox_run(&o, "open('big','wb').write(b'x' * (8 << 20))\n", &r) == 0);
    CHECK(!r.passed);
}

TEST(sandbox_fork_bomb) {
    if (!have_python()) return;
    SwaxSandboxOpts o = {.timeout = 1.5, .mem_bytes = 256L << 20, .nproc = 16};
    SwaxSandboxResult r;
    double t0 = swax_time_sec();
    /* it names its scratch folder first, then forks for ever */
    CHECK(swax_sandbox_run(&o,
                           "import os\nprint('cwd=' + os.getcwd(), flush=True)\nwhile True:\n    try:\n"
                           "        os.fork()\n    except OSError:\n        pass\n",
                           &r) == 0);
    CHECK(!r.passed && swax_time_sec() - t0 < 4);
    /* nothing of it is left running */
    char dir[4200] = "";
    const char *c = strstr(r.output, "cwd=");
    CHECKF(c != NULL, "the program printed no cwd: %s", r.output);
    if (c) {
        snprintf(dir, sizeof dir, "%s", c + 4);
        dir[strcspn(dir, "\n")] = 0;
    }
    int left = dir[0] ? count_in_dir(dir) : 0;
    for (int i = 0; i < 50 && left > 0; i++) {
        usleep(20000);
        left = count_in_dir(dir);
    }
    CHECKF(left == 0, "%d processes of the fork bomb still run in %s", left, dir);
    printf("  fork bomb: pid namespace %d, as nobody %d, %.2f s\n", r.pid_isolated, r.uid_dropped, r.seconds);
}

TEST(sandbox_network_call) {
    if (!have_python()) return;
    SwaxSandboxOpts o = {.timeout = 5};
    SwaxSandboxResult r;
    CHECK(swax_sandbox_run(&o, "import socket\ns = socket.create_connection(('1.1.1.1', 80), timeout=2)\nprint('connected')\n",
                           &r) == 0);
    if (!r.net_isolated) {
        printf("  (the kernel refused a network namespace here: isolation not tested)\n");
        return;
    }
    CHECKF(!r.passed && !strstr(r.output, "connected") && strstr(r.output, "Error"), "%s", r.output);
    CHECK(r.seconds < 3);
}

/* ---- BABILong ------------------------------------------------------------------------------------- */

TEST(babilong_lengths_and_answers) {
    SwaxTokenizer *tok = byte_tok();
    static const char prose[] = "It is a truth universally acknowledged. The days were long. She walked to town. "
                                "Nobody saw the rain. The house was quiet. A letter came at noon. They laughed.";
    SwaxEssay e;
    CHECK(swax_essay_from_text(prose, sizeof prose - 1, "prose", tok, &e) == 0);
    SwaxBenchSet s = {0};
    for (int qa = 1; qa <= 5; qa++) CHECK(swax_babilong_make(tok, &e, qa, 1024, 3, 1, &s) == 0);
    CHECK(s.n == 15);
    for (long i = 0; i < s.n; i++) {
        const SwaxBenchItem *it = &s.v[i];
        long n = (long)strlen(it->prompt); /* bytes = tokens here */
        CHECKF(n <= 1024 && n > 1024 - 120, "%ld", n);
        CHECK(strstr(it->prompt, "Question: ") && it->n_golds == 1 && strstr(it->prompt, "The days were long."));
        CHECK(swax_bench_metric("contains", it->golds[0], it) == 1);
        CHECK(swax_bench_metric("contains", "nothing", it) == 0);
    }
    /* qa1: the asked person's last move is the answer */
    const SwaxBenchItem *a = &s.v[0];
    CHECK(strstr(a->prompt, a->golds[0]) && !strcmp(a->group, "qa1@1k"));
    /* deterministic */
    SwaxBenchSet s2 = {0};
    CHECK(swax_babilong_make(tok, &e, 1, 1024, 3, 1, &s2) == 0);
    CHECK(!strcmp(s2.v[2].prompt, s.v[2].prompt));
    swax_bench_set_free(&s2);
    swax_bench_set_free(&s);
    swax_essay_free(&e);
    swax_tokenizer_free(tok);
}

/* ---- end to end ----------------------------------------------------------------------------------- */

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

TEST(cli_suite_on_fixtures) {
    char dir[512], model[512], cmd[8192], out[16384], essay[600];
    tmp_path(dir, sizeof dir, "suite");
    tmp_path(model, sizeof model, "model");
    tmp_path(essay, sizeof essay, "heldout.txt");
    CHECK(write_fixtures(dir) == 0);
    CHECK(write_text(essay, "It was a bright cold day. The clocks struck one. He walked home slowly. The rain fell.") == 0);
    SwaxModel *m = small_model(16);
    SwaxTokenizer *tok = byte_tok();
    CHECK(m && tok && swax_model_save(m, model) == 0 && swax_tokenizer_save(tok, model) == 0);
    swax_model_free(m);
    swax_tokenizer_free(tok);
    const char *bin = swax_bin();
    snprintf(cmd, sizeof cmd, "'%s' eval bench --help", bin);
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "longbench_v2") && strstr(out, "sandbox"));
    snprintf(cmd, sizeof cmd, "'%s' eval --help", bin);
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && strstr(out, "bench"));
    double t0 = swax_time_sec();
    snprintf(cmd, sizeof cmd,
             "'%s' eval bench --model '%s' --suite paper --data-dir '%s' --essay '%s' --lengths 256 --babilong-n 1 "
             "--max-new 16 --timeout 5 --out '%s/suite_out' 2>&1", bin, model, dir, essay, tmpdir());
    int rc = run_cmd(cmd, out, sizeof out);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    printf("  suite over the fixtures: %.1f s\n", swax_time_sec() - t0);
    const char *rows[] = {"| hellaswag | – | acc_norm |", "| winogrande | – | acc |", "| nq_open | – | exact_match |",
                          "| humaneval | – | pass@1 |", "| mbpp | – | pass@1 |", "| longbench | hotpotqa | qa_f1 |",
                          "| longbench | trec | classification |", "| longbench_v2 | hard | acc |",
                          "| babilong | qa5@256 | acc |", "| race | – | acc |", "| triviaqa | – | f1 |",
                          "network namespace yes"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) CHECKF(strstr(out, rows[i]), "%s missing in:\n%s", rows[i], out);
    snprintf(cmd, sizeof cmd, "wc -l < '%s/suite_out/samples.jsonl'", tmpdir());
    CHECK(run_cmd(cmd, out, sizeof out) == 0 && atoi(out) == 2 + 1 + 1 + 2 + 1 + 1 + 2 + 1 + 1 + 1 + 1 + 2 + 1 + 5);
    /* bad flags and a bad file */
    snprintf(cmd, sizeof cmd, "'%s' eval bench --model '%s' --task nope --data x --out y 2>&1", bin, model);
    CHECK(run_cmd(cmd, out, sizeof out) == SWAX_E_USAGE && strstr(out, "nope"));
    snprintf(cmd, sizeof cmd, "'%s' eval bench --model '%s' --task piqa --data '%s/hellaswag_val.jsonl' --out '%s/x' 2>&1",
             bin, model, dir, tmpdir());
    CHECK(run_cmd(cmd, out, sizeof out) == SWAX_E_INPUT && strstr(out, "hellaswag_val.jsonl:1"));
}

RUN_TESTS()
