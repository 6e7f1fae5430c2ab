/* cmd_bench.c — `swax bench`: throughput figures. Benchmarks are not tests;
 * scripts/bench.sh (`make bench`) prints each next to its baseline. */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "ops/cpu/blas_core.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/host_bench.h"
#include "ops/ops.h"
#include "infer/infer.h"
#include "train/optim.h"

/* Training-step throughput (forward, backward, clip, AdamW) on random tokens. */
enum { MAX_SETS = 32 };
static const char *bench_sets[MAX_SETS]; /* --set key=value over the preset (e.g. pattern=AD) */
static int n_bench_sets;

/* A thread sweep's first count and what it measured: tokens/s, and on the CPU
 * the host's own fp32 product rate and copy bandwidth at that count. */
typedef struct {
    int threads; /* 0: not a sweep */
    double tps, sgemm_gflops, copy_gbps;
} SweepBase;

/* One bench-train figure at `threads`. In a sweep (base->threads > 0) the line
 * adds the speedup and scaling efficiency (speedup / thread ratio) relative to
 * the base count, and on the CPU the host's own ceilings at this count beside
 * their speedups: a 2048^3 fp32 product through the same library and a
 * parallel memcpy (host_bench.h), so that the training's scaling can be read
 * against what the machine gives. The first count fills *base. */
static int bench_train(const char *preset, int B, int T, int window, int chunk, int steps, int threads,
                       const char *device, int recompute, SweepBase *base) {
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
    float loss = 0;
    for (int s = 0; s <= steps; s++) { /* step 0 is warm-up */
        double t0 = swax_time_sec();
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
    /* without --threads, on the CPU: the count OpenMP used (OMP_NUM_THREADS, else the cores) */
    const int on_cpu = !strncmp(device, "cpu", 3); /* cpu or cpu-bf16 */
    const int threads_used = threads > 0 ? threads : on_cpu ? omp_get_max_threads() : 0;
    printf("{\"bench\": \"train\", \"device\": \"%s\", \"preset\": \"%s\", \"pattern\": \"%s\", \"params\": %zu, \"batch\": %d, "
           "\"seq\": %d, \"window\": %d, \"chunk\": %d, \"threads\": %d, \"steps\": %d, \"step_s\": %.4f, "
           "\"tokens_per_s\": %.1f, \"gflop_per_token\": %.4f, \"tflops\": %.2f, \"recompute\": %d, "
           "\"device_mem_gb\": %.2f, \"last_loss\": %.9g",
           device, preset, c.pattern, swax_model_num_params(m), B, T, window, chunk, threads_used, steps, total / steps, tps, fpt / 1e9,
           tps * fpt / 1e12, recompute, swax_model_device_memory(m) / 1e9, (double)loss);
    if (!strcmp(device, "cpu")) printf(", \"blas_core\": \"%s\"", swax_blas_corename());
    if (!strcmp(device, "cpu-bf16")) printf(", \"bf16_gemm\": \"%s\"", swax_bf16_gemm_impl());
    if (base) { /* a sweep; its first line is the base itself */
        const int first = base->threads == 0;
        if (first) base->threads = threads, base->tps = tps;
        const double sp = tps / base->tps;
        printf(", \"base_threads\": %d, \"speedup\": %.3f, \"efficiency\": %.3f", base->threads, sp,
               sp * base->threads / threads);
        if (on_cpu) {
            const double g = swax_host_sgemm_gflops(), bw = swax_host_copy_gbps(threads, 5);
            if (first) base->sgemm_gflops = g, base->copy_gbps = bw;
            printf(", \"host_sgemm_gflops\": %.1f, \"host_sgemm_speedup\": %.3f, \"host_copy_GBps\": %.1f, "
                   "\"host_copy_speedup\": %.3f",
                   g, base->sgemm_gflops > 0 ? g / base->sgemm_gflops : 0, bw,
                   base->copy_gbps > 0 ? bw / base->copy_gbps : 0);
        }
    }
    printf("}\n");
    fflush(stdout);
    if (swax_ops_profile_on()) swax_ops_profile_report(stdout, steps);
    swax_adamw_free(&opt);
    swax_model_free(m);
    free(tok), free(tgt);
    return 0;
}

/* "1,2,4": up to MAX_LIST integers in [1, hi] */
enum { MAX_LIST = 32 };
static int parse_list(const char *flag, const char *arg, long hi, long *out, int *n) {
    char buf[256];
    if (strlen(arg) >= sizeof buf) {
        fprintf(stderr, "swax bench: error: %s list too long\n", flag);
        return SWAX_E_USAGE;
    }
    strcpy(buf, arg);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST) {
            fprintf(stderr, "swax bench: error: %s takes at most %d values\n", flag, MAX_LIST);
            return SWAX_E_USAGE;
        }
        if (cli_parse_int("bench", flag, t, 1, hi, &out[*n])) return SWAX_E_USAGE;
        (*n)++;
    }
    if (*n == 0) {
        fprintf(stderr, "swax bench: error: %s needs a value (e.g. 1 or 1,2,4)\n", flag);
        return SWAX_E_USAGE;
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: swax bench train [--preset bench-cpu] [--batch 4] [--seq 1024] [--window 128] [--chunk 64]\n"
            "                        [--steps 3] [--threads N[,N...]] [--device cpu|cpu-bf16|cuda|cuda-fp32] [--recompute]\n"
            "                        [--set key=value ...]   e.g. --set pattern=AD (Gated DeltaNet)\n"
            "                        --threads 1,2,4,8,16: a thread sweep, one line per count with tokens/s,\n"
            "                        \"speedup\" and \"efficiency\" (speedup / thread ratio) relative to the first count;\n"
            "                        on the CPU also the host's own scaling at each count: a 2048^3 fp32 product\n"
            "                        (\"host_sgemm_gflops\") and a parallel memcpy (\"host_copy_GBps\"), with speedups\n"
            "       swax bench infer [--preset tiny] [--threads N] [--window W] [--chunk L] [--device cpu|cpu-bf16|cuda|cuda-fp32]\n"
            "                        [--batch 1,8,32] [--max-context N] [--steps N]\n"
            "                        (CPU: prefill at 1k, 32k, 1M (those <= --max-context), decode tokens/s at each\n"
            "                        batch (default 1,8; \"vs_batch1\" when 1 comes first), --steps decode tokens per\n"
            "                        batch size (default 256);\n"
            "                        GPU: decode tokens/s at batch 1 and 64 beside the HBM bound, a warm-up prefill\n"
            "                        (4k, printed apart), then prefill at 4k, 32k, 1M; try --preset 1.4b;\n"
            "                        SWAX_PROFILE=1: per-op decode and prefill tables)\n"
            "       swax bench kernels [--device cuda]   SWA and mLSTM kernels at SPEC §8's shapes\n"
            "       swax bench gemm [--steps K]          (CUDA) the bench-gpu step's products: the planned cuBLASLt\n"
            "                        algorithm beside its next K candidates (default 8), ms and the gain per step\n\n"
            "Prints one JSON line per figure. `make bench` runs these beside the PyTorch twin and\n"
            "prints ratios (scripts/bench.sh); results are recorded in docs/performance.md.\n");
}

int cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {{"preset", 1, 0, 'p'}, {"batch", 1, 0, 'b'}, {"seq", 1, 0, 's'},
                                         {"window", 1, 0, 'w'}, {"chunk", 1, 0, 'c'}, {"steps", 1, 0, 'n'},
                                         {"threads", 1, 0, 'j'}, {"device", 1, 0, 'd'}, {"recompute", 0, 0, 'r'},
                                         {"set", 1, 0, 'S'}, {"max-context", 1, 0, 'M'}, {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? SWAX_E_USAGE : 0;
    }
    const char *what = argv[1], *preset = NULL, *device = "cpu";
    long B = 4, T = 1024, w = 128, L = 64, steps = 3, threads = 0, max_ctx = 0;
    long tlist[MAX_LIST], blist[MAX_LIST];
    int n_tlist = 0, n_blist = 0, steps_given = 0;
    int recompute = 0;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': preset = optarg; break;
        case 'b':
            if (parse_list("--batch", optarg, 4096, blist, &n_blist)) return SWAX_E_USAGE;
            B = blist[0];
            break;
        case 's': if (cli_parse_int("bench", "--seq", optarg, 1, 1 << 24, &T)) return SWAX_E_USAGE; break;
        case 'w': if (cli_parse_int("bench", "--window", optarg, 1, 1 << 24, &w)) return SWAX_E_USAGE; break;
        case 'c': if (cli_parse_int("bench", "--chunk", optarg, 1, 4096, &L)) return SWAX_E_USAGE; break;
        case 'n': if (cli_parse_int("bench", "--steps", optarg, 1, 100000, &steps)) return SWAX_E_USAGE; steps_given = 1; break;
        case 'j':
            if (parse_list("--threads", optarg, 1024, tlist, &n_tlist)) return SWAX_E_USAGE;
            threads = tlist[0];
            break;
        case 'M': if (cli_parse_int("bench", "--max-context", optarg, 1, 1L << 40, &max_ctx)) return SWAX_E_USAGE; break;
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
    if (!strcmp(what, "train")) {
        if (n_blist > 1) {
            fprintf(stderr, "swax bench: error: bench train takes one --batch (a list is for bench infer)\n");
            return SWAX_E_USAGE;
        }
        if (n_tlist <= 1)
            return bench_train(preset ? preset : "bench-cpu", (int)B, (int)T, (int)w, (int)L, (int)steps,
                               (int)threads, device, recompute, NULL);
        SweepBase base = {0}; /* a sweep: one line per count, relative to the first */
        for (int i = 0; i < n_tlist; i++) {
            int rc = bench_train(preset ? preset : "bench-cpu", (int)B, (int)T, (int)w, (int)L, (int)steps,
                                 (int)tlist[i], device, recompute, &base);
            if (rc) return rc;
        }
        return 0;
    }
    if (!strcmp(what, "kernels")) {
        const SwaxOps *ops = !strcmp(device, "cpu")        ? swax_ops_cpu()
                             : !strcmp(device, "cpu-bf16") ? swax_ops_cpu_bf16()
                                                           : swax_ops_cuda_bf16();
        if (!ops) return cli_fail("bench", swax_error_wrap(SWAX_E_USAGE, "--device %s", device));
        int rc = swax_ops_bench(ops, stdout);
        return rc ? cli_fail("bench", rc) : 0;
    }
    if (!strcmp(what, "gemm")) {
        int rc = swax_cuda_gemm_tune(stdout, steps_given ? (int)steps : 8);
        return rc ? cli_fail("bench", rc) : 0;
    }
    if (!strcmp(what, "infer")) {
        SwaxInferBenchOpts o = {0};
        if (n_tlist > 1) {
            fprintf(stderr, "swax bench: error: bench infer takes one --threads (a list is for bench train)\n");
            return SWAX_E_USAGE;
        }
        int bs[MAX_LIST];
        for (int i = 0; i < n_blist; i++) bs[i] = (int)blist[i];
        o.threads = (int)threads, o.device = device;
        o.batches = n_blist ? bs : NULL, o.n_batches = n_blist;
        o.max_context = max_ctx;
        if (steps_given) o.decode_tokens = (int)steps;
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
