/* cmd_init.c — `swax init`, `swax info`, `swax logits`: make, inspect and run a model. */
#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/config_json.h"
#include "io/npy.h"

static void init_usage(FILE *f) {
    fprintf(f,
            "usage: swax init (--preset NAME | --config FILE) [--seed S] [--set key=value]... --out DIR\n\n"
            "Writes a freshly initialised model (SPEC §2 initialisation, seeded) as DIR/config.json +\n"
            "DIR/model.safetensors.\n\n"
            "  --preset NAME     tiny, small, bench-cpu, bench-gpu, 1.4b, 7b\n"
            "  --config FILE     a config.json (see docs/checkpoint.md)\n"
            "  --set key=value   override one config field (repeatable), the value as config.json\n"
            "                    writes it: --set window=512, --set tie_embeddings=true\n"
            "  --seed S          initialisation seed (default 1)\n"
            "  --out DIR         output folder (created)\n");
}

int cmd_init(int argc, char **argv) {
    static const struct option opts[] = {{"preset", 1, 0, 'p'}, {"config", 1, 0, 'c'}, {"seed", 1, 0, 's'},
                                         {"set", 1, 0, 'S'},    {"out", 1, 0, 'o'},    {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *preset = NULL, *config = NULL, *out = NULL;
    const char *sets[64];
    int nsets = 0;
    long seed = 1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': preset = optarg; break;
        case 'c': config = optarg; break;
        case 'o': out = optarg; break;
        case 'S':
            if (nsets == 64) return cli_fail("init", swax_error(SWAX_E_USAGE, "too many --set"));
            sets[nsets++] = optarg;
            break;
        case 's':
            if (cli_parse_int("init", "--seed", optarg, 0, 2147483647L, &seed)) return SWAX_E_USAGE;
            break;
        case 'h': init_usage(stdout); return 0;
        default: init_usage(stderr); return SWAX_E_USAGE;
        }
    }
    if (!out || (!preset == !config)) {
        fprintf(stderr, "swax init: error: need --out and exactly one of --preset / --config\n");
        init_usage(stderr);
        return SWAX_E_USAGE;
    }
    SwaxConfig cfg;
    int rc = preset ? swax_config_preset(preset, &cfg) : swax_config_load(config, &cfg);
    for (int i = 0; !rc && i < nsets; i++) rc = swax_config_set(&cfg, sets[i]);
    if (rc) return cli_fail("init", rc);
    SwaxModel *m;
    if ((rc = swax_model_create(&cfg, &m))) return cli_fail("init", rc);
    swax_model_init(m, (uint64_t)seed);
    rc = swax_model_save(m, out);
    if (!rc)
        printf("wrote %s: %zu parameters (%.2f M), pattern %s, %d blocks, D %d, window %d\n", out,
               swax_model_num_params(m), swax_model_num_params(m) / 1e6, cfg.pattern, cfg.n_blocks, cfg.d_model,
               cfg.window);
    swax_model_free(m);
    return rc ? cli_fail("init", rc) : 0;
}

int cmd_info(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: swax info DIR\n\nPrints a checkpoint's config and its "
                                            "parameter counts by tensor.\n");
        return argc < 2 ? SWAX_E_USAGE : 0;
    }
    SwaxModel *m;
    int rc = swax_model_load(argv[1], &m);
    if (rc) return cli_fail("info", rc);
    char *json = NULL;
    if (!swax_config_to_json(swax_model_config(m), &json)) printf("%s\n", json);
    free(json);
    for (int i = 0; i < swax_model_num_tensors(m); i++) {
        const char *name;
        int nd;
        int64_t sh[2];
        swax_model_tensor(m, i, &name, NULL, &nd, sh);
        if (nd == 2) printf("  %-32s (%lld, %lld)\n", name, (long long)sh[0], (long long)sh[1]);
        else printf("  %-32s (%lld)\n", name, (long long)sh[0]);
    }
    printf("parameters: %zu (%.2f M)\n", swax_model_num_params(m), swax_model_num_params(m) / 1e6);
    swax_model_free(m);
    return 0;
}

/* Token ids separated by commas or white space, inline or in a file. */
int cli_parse_ids(const char *cmd, const char *arg, int32_t **ids, size_t *n) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(arg, "rb");
    if (f) {
        fclose(f);
        int rc = swax_read_file(arg, &text, &len);
        if (rc) return cli_fail(cmd, rc);
    } else {
        text = strdup(arg);
    }
    size_t cap = 64, cnt = 0;
    int32_t *out = malloc(cap * sizeof *out);
    char *p = text;
    while (*p) {
        while (*p && (isspace((unsigned char)*p) || *p == ',')) p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 2147483647L) {
            fprintf(stderr, "swax %s: error: %s: not a token id near '%.16s'\n", cmd, f ? arg : "--tokens", p);
            free(text);
            free(out);
            return SWAX_E_INPUT;
        }
        if (cnt == cap) out = realloc(out, (cap *= 2) * sizeof *out);
        out[cnt++] = (int32_t)v;
        p = end;
    }
    free(text);
    if (cnt == 0) {
        fprintf(stderr, "swax %s: error: no token ids given\n", cmd);
        free(out);
        return SWAX_E_INPUT;
    }
    *ids = out;
    *n = cnt;
    return 0;
}

static void logits_usage(FILE *f) {
    fprintf(f,
            "usage: swax logits --model DIR --tokens IDS|FILE [--window W] [--chunk L] [--threads N] --out F.npy\n\n"
            "Runs the forward pass on one sequence of token ids (commas or white space, inline or in a\n"
            "file) and writes float32 logits of shape (T, V) after the soft cap as .npy (padded ids: -inf).\n\n"
            "  --window W   SWA window (default: the config's)\n"
            "  --chunk L    mLSTM chunk size (default 64; changes speed, not the result)\n"
            "  --device D   cpu (default), cuda (GPU, bf16 matrix products) or cuda-fp32\n");
}

int cmd_logits(int argc, char **argv) {
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"tokens", 1, 0, 't'}, {"window", 1, 0, 'w'},
                                         {"chunk", 1, 0, 'c'}, {"out", 1, 0, 'o'},    {"threads", 1, 0, 'j'},
                                         {"device", 1, 0, 'd'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL, *tokens = NULL, *out = NULL, *device = "cpu";
    long window = 0, chunk = 64, threads = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 't': tokens = optarg; break;
        case 'o': out = optarg; break;
        case 'w':
            if (cli_parse_int("logits", "--window", optarg, 1, 2147483647L, &window)) return SWAX_E_USAGE;
            break;
        case 'c':
            if (cli_parse_int("logits", "--chunk", optarg, 1, 65536, &chunk)) return SWAX_E_USAGE;
            break;
        case 'j':
            if (cli_parse_int("logits", "--threads", optarg, 1, 1024, &threads)) return SWAX_E_USAGE;
            break;
        case 'd': device = optarg; break;
        case 'h': logits_usage(stdout); return 0;
        default: logits_usage(stderr); return SWAX_E_USAGE;
        }
    }
    if (!model || !tokens || !out) {
        fprintf(stderr, "swax logits: error: need --model, --tokens and --out\n");
        logits_usage(stderr);
        return SWAX_E_USAGE;
    }
    swax_set_threads((int)threads);
    int32_t *ids;
    size_t n;
    int rc = cli_parse_ids("logits", tokens, &ids, &n);
    if (rc) return rc;
    SwaxModel *m;
    if ((rc = swax_model_load(model, &m))) {
        free(ids);
        return cli_fail("logits", rc);
    }
    SwaxBatch b = {1, (int)n, ids, NULL, NULL, window ? (int)window : swax_model_config(m)->window, (int)chunk};
    rc = swax_model_set_device(m, device);
    if (!rc) rc = swax_forward(m, &b, NULL);
    if (!rc) {
        int64_t shape[2] = {(int64_t)n, swax_model_config(m)->vocab_size};
        rc = swax_npy_write(out, SWAX_DT_F32, 2, shape, swax_model_logits(m));
    }
    if (!rc) printf("wrote %s: logits (%zu, %d)\n", out, n, swax_model_config(m)->vocab_size);
    swax_model_free(m);
    free(ids);
    return rc ? cli_fail("logits", rc) : 0;
}
