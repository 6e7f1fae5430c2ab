/* gen_corpus.c — writes the seed corpora of the fuzz targets into
 * DIR/<target>/ (default fuzz/corpus), using swax's own writers where there
 * is one. Names say what the replay test expects: valid_* must load (status
 * 0), bad_* must be refused with a clean status. Every file stays small.
 *
 *   build-fuzz/gen_corpus [DIR]        (scripts/fuzz.sh corpus) */
#include "targets.h"

static char g_root[1024];
static int g_files;

static void out_path(char *buf, size_t cap, const char *target, const char *name) {
    snprintf(buf, cap, "%s/%s", g_root, target);
    swax_mkdir_p(buf);
    snprintf(buf, cap, "%s/%s/%s", g_root, target, name);
}

static void put(const char *target, const char *name, const void *data, size_t n) {
    char p[2048];
    out_path(p, sizeof p, target, name);
    fuzz_write(p, data, n);
    g_files++;
}

static void put_str(const char *target, const char *name, const char *s) { put(target, name, s, strlen(s)); }

/* Copies a file written by a writer (at src) into the corpus; keeps only the
 * first `keep` bytes when keep > 0 (a truncated variant). */
static void put_file(const char *target, const char *name, const char *src, long keep) {
    char *data;
    size_t len;
    SWAX_ASSERT(swax_read_file(src, &data, &len) == 0);
    if (keep > 0 && (size_t)keep < len) len = (size_t)keep;
    put(target, name, data, len);
    free(data);
}

static void tmpname(char *buf, size_t cap, const char *name) { fuzz_path(buf, cap, name); }

/* ---- per target ---- */

static void gen_safetensors(void) {
    char p[1024];
    float a[6] = {1, 2, 3, 4, 5, 6};
    int64_t b[2] = {-1, 1LL << 40};
    uint8_t c[3] = {7, 8, 9};
    double s = 3.25;
    uint16_t h[4] = {0x3c00, 0xc000, 0x7bff, 0};
    int32_t i4[3] = {-5, 0, 5};
    SwaxSTTensor ts[] = {
        {"a", SWAX_DT_F32, 2, {2, 3}, a}, {"b", SWAX_DT_I64, 1, {2}, b},   {"c", SWAX_DT_U8, 1, {3}, c},
        {"empty", SWAX_DT_F32, 2, {0, 4}, NULL}, {"scalar", SWAX_DT_F64, 0, {0}, &s},
    };
    const char *meta[] = {"format", "pt", "producer", "swax", NULL};
    tmpname(p, sizeof p, "g.safetensors");
    SWAX_ASSERT(swax_st_write(p, ts, 5, meta) == 0);
    put_file("safetensors", "valid_mixed_meta.safetensors", p, 0);
    put_file("safetensors", "bad_truncated.safetensors", p, 150);
    SwaxSTTensor t2[] = {
        {"w.bf16", SWAX_DT_BF16, 2, {2, 2}, h}, {"w.f16", SWAX_DT_F16, 1, {4}, h},
        {"w.u16", SWAX_DT_U16, 1, {4}, h},      {"layers.0.i32", SWAX_DT_I32, 1, {3}, i4},
    };
    SWAX_ASSERT(swax_st_write(p, t2, 4, NULL) == 0);
    put_file("safetensors", "valid_half_types.safetensors", p, 0);
    SWAX_ASSERT(swax_st_write(p, NULL, 0, NULL) == 0);
    put_file("safetensors", "valid_no_tensors.safetensors", p, 0);

    /* Hand-made layouts the writer never produces: an unpadded header (the
     * data section starts at an odd offset: the reader realigns), and two
     * tensors that overlap. */
    const char *hdr[] = {
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[8,9]}}",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
    };
    const char *names[] = {"valid_unpadded_header.safetensors", "bad_overlap.safetensors"};
    for (int k = 0; k < 2; k++) {
        size_t hl = strlen(hdr[k]);
        uint8_t buf[512];
        size_t o = 0;
        size_t L = hl + (k == 0 && (8 + hl) % 4 == 0 ? 1 : 0); /* make 8 + L not a multiple of 4 */
        for (int i = 0; i < 8; i++) buf[o++] = (uint8_t)((uint64_t)L >> (8 * i));
        memcpy(buf + o, hdr[k], hl);
        o += hl;
        while (o < 8 + L) buf[o++] = ' ';
        float x[2] = {1.5f, -2.5f};
        memcpy(buf + o, x, 8);
        o += 8;
        buf[o++] = 42;
        put("safetensors", names[k], buf, o);
    }
}

static void gen_config(void) {
    static const char *presets[] = {"tiny", "small", "1.4b"};
    char name[64];
    for (int i = 0; i < 3; i++) {
        SwaxConfig c;
        char *t;
        SWAX_ASSERT(swax_config_preset(presets[i], &c) == 0);
        SWAX_ASSERT(swax_config_to_json(&c, &t) == 0);
        snprintf(name, sizeof name, "valid_%s.json", presets[i]);
        put_str("config", name, t);
        free(t);
    }
    SwaxConfig c;
    char *t;
    fuzz_model_config(&c);
    SWAX_ASSERT(swax_config_to_json(&c, &t) == 0);
    put_str("config", "valid_fixture.json", t);
    free(t);
    put_str("config", "valid_minimal.json",
            "{\"format\":\"swax\",\"version\":1,\"vocab_size\":64,\"d_model\":16,\"n_blocks\":1,\"pattern\":\"M\","
            "\"attn_heads\":1,\"head_dim\":2,\"rope_theta\":10000,\"window\":8,\"mlstm_heads\":2,\"gate_softcap\":15,"
            "\"ffn_dim\":32,\"logit_softcap\":0,\"norm_eps\":1e-6,\"tie_embeddings\":1}");
    put_str("config", "bad_missing_window.json",
            "{\"format\":\"swax\",\"version\":1,\"vocab_size\":64,\"d_model\":16,\"n_blocks\":1,\"pattern\":\"M\","
            "\"attn_heads\":1,\"head_dim\":2,\"rope_theta\":10000,\"mlstm_heads\":2,\"gate_softcap\":15,"
            "\"ffn_dim\":32,\"logit_softcap\":0,\"norm_eps\":1e-6,\"tie_embeddings\":true}");
    put_str("config", "bad_version.json", "{\"format\":\"swax\",\"version\":2}");
}

static void gen_shard(void) {
    char p[1024];
    uint32_t t[100];
    for (int i = 0; i < 100; i++) t[i] = (uint32_t)(i * 7 % 1000);
    tmpname(p, sizeof p, "g.bin");
    SWAX_ASSERT(swax_shard_write(p, t, 100, 1000) == 0);
    put_file("shard", "valid_u16.bin", p, 0);
    put_file("shard", "bad_truncated.bin", p, 1024 + 51);
    SWAX_ASSERT(swax_shard_write(p, t, 40, 70000) == 0);
    put_file("shard", "valid_u32.bin", p, 0);
    SWAX_ASSERT(swax_shard_write(p, t, 0, 1000) == 0);
    put_file("shard", "valid_empty.bin", p, 0);
    t[3] = 5000;
    SWAX_ASSERT(swax_shard_write(p, t, 10, 0) == 0);
    put_file("shard", "bad_token_over_vocab.bin", p, 0);
}

static void gen_npy(void) {
    char p[1024];
    float a[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    double b[4] = {1, 2, 3, 4};
    int32_t c[2] = {1, 2};
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s03[2] = {0, 3}, s2[1] = {2};
    tmpname(p, sizeof p, "g.npy");
    SWAX_ASSERT(swax_npy_write(p, SWAX_DT_F32, 2, s23, a) == 0);
    put_file("npy", "valid_f32_2x3.npy", p, 0);
    put_file("npy", "bad_truncated.npy", p, 80);
    SWAX_ASSERT(swax_npy_write(p, SWAX_DT_F64, 1, s4, b) == 0);
    put_file("npy", "valid_f64_4.npy", p, 0);
    SWAX_ASSERT(swax_npy_write(p, SWAX_DT_F32, 0, NULL, a) == 0);
    put_file("npy", "valid_scalar.npy", p, 0);
    SWAX_ASSERT(swax_npy_write(p, SWAX_DT_F32, 2, s03, a) == 0);
    put_file("npy", "valid_empty.npy", p, 0);
    SWAX_ASSERT(swax_npy_write(p, SWAX_DT_I32, 1, s2, c) == 0);
    put_file("npy", "bad_int32.npy", p, 0);
    /* NumPy's version 2.0 header (4-byte length), written by hand */
    const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    uint8_t buf[256];
    size_t hl = strlen(h), o = 0;
    size_t total = 12 + hl + 1;
    size_t pad = (64 - total % 64) % 64;
    memcpy(buf, "\x93NUMPY\x02\x00", 8);
    o = 8;
    uint32_t L = (uint32_t)(hl + pad + 1);
    for (int i = 0; i < 4; i++) buf[o++] = (uint8_t)(L >> (8 * i));
    memcpy(buf + o, h, hl);
    o += hl;
    memset(buf + o, ' ', pad);
    o += pad;
    buf[o++] = '\n';
    memcpy(buf + o, a, 8);
    o += 8;
    put("npy", "valid_v2_header.npy", buf, o);
}

static void gen_tokenizers(void) {
    size_t rl;
    char *rt = fuzz_rank_text(&rl);
    put("tokenizer_ranks", "valid_bytes_and_merges.tiktoken", rt, rl);
    /* the first 100 lines only: bytes are missing */
    size_t cut = 0;
    for (int lines = 0; cut < rl && lines < 100; cut++) lines += rt[cut] == '\n';
    put("tokenizer_ranks", "bad_missing_bytes.tiktoken", rt, cut);
    /* a rank listed twice */
    char *dup = malloc(rl + 64);
    memcpy(dup, rt, rl);
    size_t dl = rl + (size_t)snprintf(dup + rl, 64, "aGk= 5\n"); /* "hi" with rank 5 */
    put("tokenizer_ranks", "bad_duplicate_rank.tiktoken", dup, dl);
    free(dup);
    free(rt);
    /* a trained BPE (swax_bpe_train) through swax_tokenizer_save */
    static const char text[] =
        "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs on and on.\n"
        "def f(x):\n    return x * 2  # twice\n\nThe end, the end, the end.\r\n";
    SwaxBpeCounter *bc;
    SwaxTokenizer *tok;
    SWAX_ASSERT(swax_bpe_counter_create("cl100k", &bc) == 0);
    SWAX_ASSERT(swax_bpe_counter_add(bc, text, sizeof text - 1) == 0);
    SWAX_ASSERT(swax_bpe_train(bc, 300, 0, &tok) == 0);
    char dir[1024], p[1100];
    tmpname(dir, sizeof dir, "trained");
    SWAX_ASSERT(swax_tokenizer_save(tok, dir) == 0);
    snprintf(p, sizeof p, "%s/tokenizer.tiktoken", dir);
    put_file("tokenizer_ranks", "valid_trained.tiktoken", p, 0);
    swax_tokenizer_free(tok);
    swax_bpe_counter_free(bc);

    /* tokenizer.json beside the fixed rank file of fuzz_tokenizer_json */
    char js[512];
    snprintf(js, sizeof js,
             "{\n  \"pattern\": \"r50k\",\n  \"ranks\": \"tokenizer.tiktoken\",\n  \"specials\": {\n"
             "    \"<|endoftext|>\": %d\n  },\n  \"vocab_size\": %d\n}\n",
             FUZZ_RANK_VOCAB, FUZZ_RANK_VOCAB + 1);
    put_str("tokenizer_json", "valid_r50k.json", js);
    snprintf(js, sizeof js,
             "{\"pattern\": \"cl100k_base\", \"ranks\": \"tokenizer.tiktoken\", \"specials\": "
             "{\"<|endoftext|>\": 300, \"<|fim_prefix|>\": 301, \"<|endofprompt|>\": 400}}");
    put_str("tokenizer_json", "valid_cl100k_specials.json", js);
    put_str("tokenizer_json", "valid_o200k_no_specials.json", "{\"pattern\":\"o200k\",\"ranks\":\"tokenizer.tiktoken\"}");
    snprintf(js, sizeof js, "{\"pattern\": \"r50k\", \"ranks\": \"tokenizer.tiktoken\", \"vocab_size\": %d}",
             FUZZ_RANK_VOCAB + 5);
    put_str("tokenizer_json", "bad_vocab_size.json", js);
    put_str("tokenizer_json", "bad_special_on_rank.json",
            "{\"pattern\": \"r50k\", \"ranks\": \"tokenizer.tiktoken\", \"specials\": {\"<|endoftext|>\": 65}}");
    put_str("tokenizer_json", "bad_pattern.json", "{\"pattern\": \"bert\", \"ranks\": \"tokenizer.tiktoken\"}");
}

static void gen_train_state(void) {
    char p[1024];
    SwaxAdamW opt = {.cfg = swax_adamw_defaults(), .n = FUZZ_TS_PARAMS, .step = 17, .ops = swax_ops_cpu()};
    opt.m = calloc(FUZZ_TS_PARAMS, sizeof(float));
    opt.v = calloc(FUZZ_TS_PARAMS, sizeof(float));
    for (int i = 0; i < FUZZ_TS_PARAMS; i++) opt.m[i] = 0.01f * (float)(i - 32), opt.v[i] = 1e-4f * (float)i;
    SwaxTrainProgress pr = {17, 123456, 9, 17 * 512, 3.5};
    tmpname(p, sizeof p, "train_state.bin");
    SWAX_ASSERT(swax_train_state_save(p, &pr, &opt) == 0);
    put_file("train_state", "valid_64_params.bin", p, 0);
    put_file("train_state", "bad_truncated.bin", p, 200);
    char *data;
    size_t len;
    SWAX_ASSERT(swax_read_file(p, &data, &len) == 0);
    data[100] ^= 1;
    put("train_state", "bad_checksum.bin", data, len);
    free(data);
    opt.n = 32;
    SWAX_ASSERT(swax_train_state_save(p, &pr, &opt) == 0);
    put_file("train_state", "bad_32_params.bin", p, 0);
    free(opt.m);
    free(opt.v);
}

static void gen_infer_state(void) {
    char p[1024], name[64];
    SwaxModel *m = fuzz_model();
    SwaxState *st;
    SWAX_ASSERT(swax_state_create(m, 1, 0, &st) == 0);
    tmpname(p, sizeof p, "state.bin");
    const int32_t toks[10] = {1, 5, 9, 2, 0, 7, 7, 3, 29, 4};
    const int lens[] = {0, 3, 10};
    for (int k = 0; k < 3; k++) {
        swax_state_reset(st, 0);
        if (lens[k]) SWAX_ASSERT(swax_prefill(m, st, 0, toks, (size_t)lens[k], 0, NULL, NULL) == 0);
        SWAX_ASSERT(swax_state_save(st, m, 0, p) == 0);
        snprintf(name, sizeof name, "valid_pos%d.state", lens[k]);
        put_file("infer_state", name, p, 0);
    }
    put_file("infer_state", "bad_truncated.state", p, 100);
    swax_state_free(st);
    /* the same config, other weights */
    SwaxModel *m2;
    SWAX_ASSERT(swax_model_create(swax_model_config(m), &m2) == 0);
    swax_model_init(m2, 99);
    SWAX_ASSERT(swax_state_create(m2, 1, 0, &st) == 0);
    SWAX_ASSERT(swax_prefill(m2, st, 0, toks, 3, 0, NULL, NULL) == 0);
    SWAX_ASSERT(swax_state_save(st, m2, 0, p) == 0);
    put_file("infer_state", "bad_other_weights.state", p, 0);
    swax_state_free(st);
    swax_model_free(m2);
}

static void gen_model_load(void) {
    char dir[1024], p[1100];
    tmpname(dir, sizeof dir, "model");
    SWAX_ASSERT(swax_model_save(fuzz_model(), dir) == 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    put_file("model_load", "valid_fixture.safetensors", p, 0);
    /* every tensor but the last */
    SwaxModel *m = fuzz_model();
    int nt = swax_model_num_tensors(m);
    SwaxSTTensor *ts = calloc((size_t)nt, sizeof *ts);
    for (int i = 0; i < nt; i++) {
        const char *name;
        size_t off;
        int nd;
        int64_t shape[2];
        swax_model_tensor(m, i, &name, &off, &nd, shape);
        ts[i] = (SwaxSTTensor){name, SWAX_DT_F32, nd, {shape[0], shape[1]}, swax_model_params(m) + off};
    }
    SWAX_ASSERT(swax_st_write(p, ts, nt - 1, NULL) == 0);
    put_file("model_load", "bad_missing_tensor.safetensors", p, 0);
    int64_t s0 = ts[0].shape[0];
    ts[0].shape[0] = s0 > 1 ? s0 - 1 : s0;
    SWAX_ASSERT(swax_st_write(p, ts, nt, NULL) == 0);
    put_file("model_load", "bad_shape.safetensors", p, 0);
    free(ts);
}

static void gen_text_inputs(void) {
    put_str("choice_jsonl", "valid_three.jsonl",
            "{\"context\": \"The sky is\", \"choices\": [\" blue\", \" green\", \" loud\"], \"answer\": 0}\n"
            "\n"
            "{\"context\": \"2 + 2 =\", \"choices\": [\" 3\", \" 4\"], \"answer\": 1}\r\n"
            "{\"context\": \"\", \"choices\": [\"caf\\u00e9\", \"tea\", \"\"], \"answer\": 2, \"extra\": null}\n");
    put_str("choice_jsonl", "bad_answer.jsonl", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"answer\": 2}\n");
    put_str("choice_jsonl", "bad_trailing.jsonl", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"answer\": 1} x\n");
    /* eval bench: one seed per release format (tests/test_bench_suite.c has the full fixtures) */
    put_str("bench", "valid_hellaswag.jsonl",
            "{\"ind\": 1, \"activity_label\": \"Cooking\", \"ctx_a\": \"A man cuts.\", \"ctx_b\": \"he\", \"label\": 0, "
            "\"endings\": [\"cooks [title] it.\", \"runs.\"]}\n");
    put_str("bench", "valid_arc.jsonl",
            "{\"id\": \"q\", \"question\": {\"stem\": \"Gas?\", \"choices\": [{\"text\": \"ice\", \"label\": \"A\"}, "
            "{\"text\": \"steam\", \"label\": \"B\"}]}, \"answerKey\": \"B\"}\n");
    put_str("bench", "valid_winogrande.jsonl",
            "{\"qID\": \"x\", \"sentence\": \"A fits B because _ is small.\", \"option1\": \"A\", \"option2\": \"B\", \"answer\": \"1\"}\n");
    put_str("bench", "valid_triviaqa.json",
            "{\"Data\": [{\"Question\": \"Red planet?\", \"QuestionId\": \"t1\", \"Answer\": {\"Value\": \"Mars\", \"Aliases\": [\"Mars\"]}}]}\n");
    put_str("bench", "valid_race.txt",
            "{\"answers\": [\"A\"], \"options\": [[\"a\", \"b\", \"c\", \"d\"]], \"questions\": [\"Q?\"], \"article\": \"Text.\", \"id\": \"r1\"}\n");
    put_str("bench", "valid_humaneval.jsonl",
            "{\"task_id\": \"HumanEval/0\", \"prompt\": \"def f(a):\\n\", \"canonical_solution\": \"    return a\\n\", "
            "\"test\": \"def check(c):\\n    assert c(1) == 1\\n\", \"entry_point\": \"f\", \"plus_input\": [[2]], \"base_input\": [[1]]}\n");
    put_str("bench", "valid_mbpp.json",
            "[{\"prompt\": \"Add.\", \"code\": \"def add(a, b): return a + b\", \"task_id\": 2, \"test_imports\": [], "
            "\"test_list\": [\"assert add(1, 2) == 3\"]}]\n");
    put_str("bench", "valid_longbench.jsonl",
            "{\"input\": \"Q?\", \"context\": \"C.\", \"answers\": [\"Num\"], \"dataset\": \"trec_e\", "
            "\"all_classes\": [\"Num\", \"Loc\"], \"_id\": \"1\"}\n");
    put_str("bench", "valid_longbench_v2.json",
            "[{\"_id\": \"1\", \"difficulty\": \"easy\", \"length\": \"long\", \"question\": \"Q?\", \"choice_A\": \"a\", "
            "\"choice_B\": \"b\", \"choice_C\": \"c\", \"choice_D\": \"d\", \"answer\": \"C\", \"context\": \"x\"}]\n");
    put_str("bench", "bad_list.json", "[{\"question\": 1},\n");
    put_str("bench", "bad_scalar.jsonl", "\"text\"\n42\n");

    static const char *adj[] = {"famous", "joyful", "active", "capable", "visible", "careless", "reddish", "heroic",
                                "distant", "urgent", "primary", "nervous", "helpful", "massive", "portable",
                                "horrible", "endless", "foolish", "magic", "elegant", "ordinary", "generous"};
    static const char *noun[] = {"anchor", "apple", "arrow", "badger", "banana", "barrel", "basket", "beacon",
                                 "bear", "bell", "bicycle", "bird", "blanket", "boat", "bottle", "bridge",
                                 "bucket", "butter", "cabin", "camel", "candle", "canyon"};
    char buf[4096];
    size_t o = 0;
    for (int i = 0; i < 22; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\n%s 12\n", adj[i], noun[i]);
    o += (size_t)snprintf(buf + o, sizeof buf - o, "Capital\nab\nwaytoolongwordhere\n");
    put("words", "valid_list.txt", buf, o);
    put_str("words", "bad_too_few.txt", "famous\nanchor\napple\n");

    put_str("essay", "valid_plain.txt",
            "It was a bright cold day in April. The clocks were striking thirteen!\n\n"
            "Why?  Nobody knew.\tThe end \"of it.\" (Or not.)");
    put_str("essay", "valid_gutenberg.txt",
            "The Project Gutenberg eBook header\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n"
            "Call me Ishmael. Some years ago, never mind how long precisely, I went to sea.\n"
            "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nlicence text\n");
    put_str("essay", "bad_blank.txt", " \n\t\r\n ");

    put_str("data_jsonl", "valid_docs.jsonl",
            "{\"text\": \"The first document.\"}\n"
            "{\"text\": \"A second one, with \\\"quotes\\\" and \\u00e9.\"}\n\n"
            "{\"text\": \"def f():\\n    return 1\\n\", \"meta\": {\"lang\": \"py\"}}\n"
            "{\"text\": \"Fourth.\"}\r\n{\"text\": \"Fifth and last.\"}");
    put_str("data_jsonl", "bad_no_text.jsonl", "{\"text\": \"ok\"}\n{\"body\": \"missing text\"}\n");
    put_str("data_jsonl", "bad_not_json.jsonl", "{\"text\": \"ok\"}\nnot json\n");

    put_str("latest", "valid_latest.txt", "ckpt_00000005\n");
    put_str("latest", "bad_slash.txt", "../elsewhere/ckpt_00000005\n");
    put_str("latest", "bad_empty.txt", "\n");
}

int main(int argc, char **argv) {
    snprintf(g_root, sizeof g_root, "%s", argc > 1 ? argv[1] : "fuzz/corpus");
    SWAX_ASSERT(swax_mkdir_p(g_root) == 0);
    gen_safetensors();
    gen_config();
    gen_shard();
    gen_npy();
    gen_tokenizers();
    gen_train_state();
    gen_infer_state();
    gen_model_load();
    gen_text_inputs();
    printf("gen_corpus: %d seed files in %s\n", g_files, g_root);
    return 0;
}
