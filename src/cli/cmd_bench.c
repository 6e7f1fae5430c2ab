/* cmd_bench.c — `swax bench`: throughput figures. Benchmarks are not tests;
 * scripts/bench.sh (`make bench`) prints each next to its baseline. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "ops/ops.h"
#include "infer/infer.h"
#include "train/optim.h"

/* Training-step throughput (forward, backward, clip, AdamW) on random tokens. */
enum { MAX_SETS = 32 };
static const char *bench_sets[MAX_SETS]; /* --set key=value over the preset (e.g. pattern=AD) */
static int n_bench_sets;

static int bench_train(const char *preset, int B, int T, int window, int chunk, int steps, int threads,
                       const char *device, int recompute) {
    SwaxConfig c;
    int rc = swax_config_preset(preset, &c);
    for (int i = 0; i < n_bench_sets && !rc; i++) rc = swax_config_set(&c, bench_sets[i]);
    if (!rc) rc = swax_config_validate(&c);
    if (rc) return cli_fail("bench", rc);
    SwaxModel *m;
    if ((rc = swax_model_create(&c, &m))) return cli_fail("bench", rc);
    swax_model_init(m, 1);
    if ((rc = swax_model_set_device(m, device))) {
        swax_model_free(m);
        return cli_fail("bench", rc);
    }
    swax_set_threads(threads);
    const size_t N = (size_t)B * T;
    int32_t *tok = malloc(4 * N), *tgt = malloc(4 * N);
    SwaxRng r;
    swax_rng_seed(&r, 7, 0);
    for (size_t i = 0; i < N; i++) tok[i] = (int32_t)(swax_rng_u64(&r) % c.vocab_used);
    for (size_t i = 0; i < N; i++) tgt[i] = i + 1 < N ? tok[i + 1] : 0;
    SwaxAdamW opt;
    if ((rc = swax_adamw_init(&opt, m, swax_adamw_defaults()))) return cli_fail("bench", rc);
    SwaxBatch b = {B, T, tok, tgt, NULL, window, chunk};
    swax_model_set_fused_head(m, 1); /* as swax train does */
    swax_model_set_recompute(m, recompute);
    double best = INFINITY, total = 0;
    for (int s = 0; s <= steps; s++) { /* step 0 is warm-up */
        double t0 = swax_time_sec();
        float loss;
        swax_zero_grad(m);
        if ((rc = swax_forward(m, &b, &loss)) || (rc = swax_backward(m, 1.0f))) return cli_fail("bench", rc);
        swax_adamw_step_scaled(&opt, m, 1e-4f, swax_clip_coef(swax_grad_norm(m), 1.0f));
        swax_model_sync(m);
        double dt = swax_time_sec() - t0;
        if (s == 0) swax_ops_profile_reset();
        if (s > 0) {
            total += dt;
            if (dt < best) best = dt;
        }
    }
    const double tps = N / (total / steps), fpt = swax_model_train_flops_per_token(&c, T, window, chunk);
    printf("{\"bench\": \"train\", \"device\": \"%s\", \"preset\": \"%s\", \"pattern\": \"%s\", \"params\": %zu, \"batch\": %d, "
           "\"seq\": %d, \"window\": %d, \"chunk\": %d, \"threads\": %d, \"steps\": %d, \"step_s\": %.4f, "
           "\"tokens_per_s\": %.1f, \"gflop_per_token\": %.4f, \"tflops\": %.2f, \"recompute\": %d, "
           "\"device_mem_gb\": %.2f}\n",
           device, preset, c.pattern, swax_model_num_params(m), B, T, window, chunk, threads, steps, total / steps, tps, fpt / 1e9,
           tps * fpt / 1e12, recompute, swax_model_device_memory(m) / 1e9);
    if (getenv("SWAX_PROFILE") && atoi(getenv("SWAX_PROFILE")) > 0) swax_ops_profile_report(stdout, steps);
    swax_adamw_free(&opt);
    swax_model_free(m);
    free(tok), free(tgt);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: swax bench train [--preset bench-cpu] [--batch 4] [--seq 1024] [--window 128] [--chunk 64]\n"
            "                        [--steps 3] [--threads N] [--device cpu|cuda|cuda-fp32] [--recompute]\n"
            "                        [--set key=value ...]   e.g. --set pattern=AD (Gated DeltaNet)\n"
            "       swax bench infer [--preset tiny] [--threads N] [--window W] [--chunk L] [--device cpu|cuda|cuda-fp32]\n"
            "                        (GPU: decode tokens/s at batch 1 and 64 beside the HBM bound, prefill at 4k,\n"
            "                        32k, 1M; try --preset 1.4b)\n"
            "       swax bench kernels [--device cuda]   SWA and mLSTM kernels at SPEC §8's shapes\n\n"
            "Prints one JSON line per figure. `make bench` runs these beside the PyTorch twin and\n"
            "prints ratios (scripts/bench.sh); results are recorded in docs/performance.md.\n");
}

int cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {{"preset", 1, 0, 'p'}, {"batch", 1, 0, 'b'}, {"seq", 1, 0, 's'},
                                         {"window", 1, 0, 'w'}, {"chunk", 1, 0, 'c'}, {"steps", 1, 0, 'n'},
                                         {"threads", 1, 0, 'j'}, {"device", 1, 0, 'd'}, {"recompute", 0, 0, 'r'},
                                         {"set", 1, 0, 'S'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? SWAX_E_USAGE : 0;
    }
    const char *what = argv[1], *preset = NULL, *device = "cpu";
    long B = 4, T = 1024, w = 128, L = 64, steps = 3, threads = 0;
    int recompute = 0;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': preset = optarg; break;
        case 'b': if (cli_parse_int("bench", "--batch", optarg, 1, 4096, &B)) return SWAX_E_USAGE; break;
        case 's': if (cli_parse_int("bench", "--seq", optarg, 1, 1 << 24, &T)) return SWAX_E_USAGE; break;
        case 'w': if (cli_parse_int("bench", "--window", optarg, 1, 1 << 24, &w)) return SWAX_E_USAGE; break;
        case 'c': if (cli_parse_int("bench", "--chunk", optarg, 1, 4096, &L)) return SWAX_E_USAGE; break;
        case 'n': if (cli_parse_int("bench", "--steps", optarg, 1, 1000, &steps)) return SWAX_E_USAGE; break;
        case 'j': if (cli_parse_int("bench", "--threads", optarg, 1, 1024, &threads)) return SWAX_E_USAGE; break;
        case 'd': device = optarg; break;
        case 'r': recompute = 1; break;
        case 'S':
            if (n_bench_sets == MAX_SETS) return cli_fail("bench", swax_error(SWAX_E_USAGE, "too many --set"));
            bench_sets[n_bench_sets++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return SWAX_E_USAGE;
        }
    }
    if (!strcmp(what, "train"))
        return bench_train(preset ? preset : "bench-cpu", (int)B, (int)T, (int)w, (int)L, (int)steps, (int)threads,
                           device, recompute);
    if (!strcmp(what, "kernels")) {
        const SwaxOps *ops = !strcmp(device, "cpu") ? swax_ops_cpu() : swax_ops_cuda_bf16();
        if (!ops) return cli_fail("bench", swax_error_wrap(SWAX_E_USAGE, "--device %s", device));
        int rc = swax_ops_bench(ops, stdout);
        return rc ? cli_fail("bench", rc) : 0;
    }
    if (!strcmp(what, "infer")) {
        SwaxInferBenchOpts o = {0};
        o.threads = (int)threads, o.device = device;
        for (int i = 2; i < argc; i++) /* --window / --chunk only when given (the defaults above are training's) */
            if (!strncmp(argv[i], "--window", 8)) o.window = (int)w;
            else if (!strncmp(argv[i], "--chunk", 7)) o.chunk = (int)L;
        int rc = swax_infer_bench_ex(preset ? preset : "tiny", &o, stdout);
        return rc ? cli_fail("bench", rc) : 0;
    }
    fprintf(stderr, "swax bench: unknown benchmark '%s'\n", what);
    usage(stderr);
    return SWAX_E_USAGE;
}
