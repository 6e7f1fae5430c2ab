/* test_window_study.c — the window study's pipeline cannot rot (issue 12): `scripts/window_study.sh
 * --cpu-mini` runs the whole thing CPU-sized (a tiny archive of this repository's text, a 512-id
 * BPE, synthetic retrieval documents, two schedules trained, NIAH at 1x..32x, loss by position, the
 * learning curve, one JSON per run, the report) and the outputs parse; `swax study report` works
 * with partial results and says so when there are none. Runs in the normal build only (the
 * sanitizer build would take minutes). */
#include <cjson/cJSON.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "test.h"
#include "test_shell.h"

static char tmp[256];
static char out_buf[65536];

static const char *bin(void) { return test_swax_bin(); }
static int sh(const char *cmd) { return test_sh(cmd, out_buf, sizeof out_buf); }



static cJSON *load(const char *path) {
    char *text;
    size_t len;
    if (swax_read_file(path, &text, &len)) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    return j;
}

static int sanitizer_build(void) { return strstr(bin(), "asan") != NULL; }

static int mini_ran;

static void run_mini(void) {
    if (mini_ran) return;
    mini_ran = 1;
    snprintf(tmp, sizeof tmp, "/tmp/swax_test_study_XXXXXX");
    SWAX_ASSERT(mkdtemp(tmp));
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "scripts/window_study.sh --cpu-mini --bin %s --out %s/results --work %s/work", bin(), tmp,
             tmp);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = sh(cmd);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    fprintf(stderr, "  window_study.sh --cpu-mini: exit %d in %.1f s\n", rc, s);
    if (rc) fprintf(stderr, "%s\n", out_buf);
}

TEST(cpu_mini_writes_one_json_per_run) {
    if (sanitizer_build()) {
        fprintf(stderr, "  (skipped in the sanitizer build)\n");
        return;
    }
    run_mini();
    const char *runs[] = {"swax-w128_s1", "swax-stoch-linear_s1"};
    for (int r = 0; r < 2; r++) {
        char path[512];
        snprintf(path, sizeof path, "%s/results/%s.json", tmp, runs[r]);
        cJSON *j = load(path);
        CHECKF(j, "%s missing or not JSON", path);
        const cJSON *f = cJSON_GetObjectItem(j, "format"), *n = cJSON_GetObjectItem(j, "niah"),
                    *lens = cJSON_GetObjectItem(n, "lengths"), *mean = cJSON_GetObjectItem(n, "mean"),
                    *far = cJSON_GetObjectItem(cJSON_GetObjectItem(n, "far"), "accuracy"),
                    *pos = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "loss_by_position"), "loss"),
                    *curve = cJSON_GetObjectItem(j, "learning_curve"), *tr = cJSON_GetObjectItem(j, "train"),
                    *params = cJSON_GetObjectItem(j, "params");
        int ok = cJSON_IsString(f) && !strcmp(f->valuestring, "swax-window-study") && cJSON_GetArraySize(lens) == 6 &&
                 cJSON_GetArraySize(mean) == 6 && cJSON_GetArraySize(far) == 6 &&
                 cJSON_GetArrayItem(lens, 5)->valuedouble == 32 * cJSON_GetArrayItem(lens, 0)->valuedouble &&
                 cJSON_IsNumber(cJSON_GetArrayItem(mean, 0)) && cJSON_GetArraySize(pos) >= 8 &&
                 cJSON_IsNumber(cJSON_GetArrayItem(pos, 0)) && cJSON_GetArraySize(curve) >= 2 &&
                 cJSON_GetObjectItem(tr, "steps") && cJSON_GetObjectItem(tr, "steps")->valuedouble == 24 &&
                 cJSON_IsNumber(params) && params->valuedouble > 1000 &&
                 cJSON_IsNumber(cJSON_GetObjectItem(j, "wall_s")) && cJSON_GetObjectItem(j, "config");
        /* every learning-curve point has the multiple-choice measure too, a percentage */
        const cJSON *pt;
        cJSON_ArrayForEach(pt, curve) {
            const cJSON *ch = cJSON_GetObjectItem(pt, "choice");
            ok = ok && cJSON_IsNumber(ch) && ch->valuedouble >= 0 && ch->valuedouble <= 100;
        }
        cJSON_Delete(j);
        CHECKF(ok, "%s: fields missing", path);
    }
}

TEST(report_from_all_and_from_partial_results) {
    if (sanitizer_build()) return;
    run_mini();
    char cmd[2048], path[512];
    snprintf(cmd, sizeof cmd, "%s study report --in %s/results --out %s/rep", bin(), tmp, tmp);
    CHECKF(sh(cmd) == 0, "%s", out_buf);
    snprintf(path, sizeof path, "%s/rep/report.md", tmp);
    char *md;
    size_t len;
    CHECK(swax_read_file(path, &md, &len) == 0);
    int ok = strstr(md, "| swax-w128 |") && strstr(md, "| swax-stoch-linear |") && strstr(md, "32×");
    free(md);
    CHECKF(ok, "%s lacks the rows", path);
    const char *svgs[] = {"niah_vs_length.svg", "niah_far_vs_length.svg", "learning_curves.svg", "loss_by_position.svg"};
    for (int i = 0; i < 4; i++) {
        char *s;
        snprintf(path, sizeof path, "%s/rep/%s", tmp, svgs[i]);
        CHECKF(swax_read_file(path, &s, &len) == 0, "%s missing", path);
        ok = len > 100 && !strncmp(s, "<svg", 4) && strstr(s, "</svg>");
        free(s);
        CHECKF(ok, "%s is not an SVG", path);
    }
    /* partial: one run and a file of another kind beside it */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/part && cp %s/results/swax-w128_s1.json %s/part/ && echo '{\"x\": 1}' > %s/part/other.json && "
             "%s study report --in %s/part",
             tmp, tmp, tmp, tmp, bin(), tmp);
    CHECKF(sh(cmd) == 0 && strstr(out_buf, "1 runs of 1 models"), "%s", out_buf);
    /* none */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/none && %s study report --in %s/none", tmp, bin(), tmp);
    CHECKF(sh(cmd) == SWAX_E_INPUT && strstr(out_buf, "no swax-window-study JSON"), "%s", out_buf);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    sh(cmd);
}

/* `study collect` with an input that is not there (a mistyped --run, --niah, --ppl or --curve) once
 * wrote a JSON with only format and version, which `study report` counted as a run: now exit 3
 * naming the path (the input before a missing --out folder), nothing written; and the report skips,
 * with a warning, a JSON that holds no results. */
TEST(collect_refuses_missing_inputs_report_skips_empty_runs) {
    char d[256], cmd[4096];
    snprintf(d, sizeof d, "/tmp/swax_test_study_in_XXXXXX");
    SWAX_ASSERT(mkdtemp(d));
    snprintf(cmd, sizeof cmd, "mkdir -p %s/run %s/niah_empty %s/SC && echo '{oops' > %s/niah_bad.json", d, d, d, d);
    CHECK(sh(cmd) == 0);
    struct {
        const char *args, *named;
    } cases[] = {
        {"--run %s/nonexist --out %s/SC/r3.json", "--run "},
        {"--run %s/nonexist --out %s/nofolder/r3.json", "--run "}, /* the input is named, not the output */
        {"--run %s/run --niah %s/nonexist --out %s/SC/r3.json", "--niah "},
        {"--run %s/run --niah %s/niah_empty --out %s/SC/r3.json", "results.json"},
        {"--run %s/run --ppl %s/nonexist --out %s/SC/r3.json", "--ppl "},
        {"--run %s/run --ppl %s/run --out %s/SC/r3.json", "ppl.json"},
        {"--run %s/run --curve %s/nonexist --out %s/SC/r3.json", "--curve "},
        {"--run %s/niah_bad.json --out %s/SC/r3.json", "not a folder"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1024];
        snprintf(args, sizeof args, cases[i].args, d, d, d);
        snprintf(cmd, sizeof cmd, "%s study collect %s", bin(), args);
        int rc = sh(cmd);
        CHECKF(rc == SWAX_E_INPUT && strstr(out_buf, cases[i].named) &&
                   (strstr(out_buf, "nonexist") || !strstr(args, "nonexist")),
               "%s: exit %d: %s", args, rc, out_buf);
        snprintf(cmd, sizeof cmd, "test ! -e %s/SC/r3.json && test ! -e %s/nofolder", d, d);
        CHECKF(sh(cmd) == 0, "%s: an output was written", args);
    }
    /* a run folder with nothing in it: a JSON without results, which the report skips */
    snprintf(cmd, sizeof cmd, "%s study collect --run %s/run --out %s/SC/r3.json", bin(), d, d);
    CHECKF(sh(cmd) == 0, "%s", out_buf);
    snprintf(cmd, sizeof cmd, "%s study report --in %s/SC", bin(), d);
    CHECKF(sh(cmd) == SWAX_E_INPUT && strstr(out_buf, "r3.json: no results") && strstr(out_buf, "skipped") &&
               strstr(out_buf, "no swax-window-study JSON files with results"),
           "%s", out_buf);
    /* beside a run with results: 1 run, the empty one skipped with a warning */
    snprintf(cmd, sizeof cmd,
             "echo '{\"format\": \"swax-window-study\", \"model\": \"m\", \"seed\": 1, "
             "\"train\": {\"steps\": 2, \"tokens\": 100, \"val\": []}}' > %s/SC/r1.json && "
             "%s study report --in %s/SC",
             d, bin(), d);
    CHECKF(sh(cmd) == 0 && strstr(out_buf, "1 runs of 1 models") && strstr(out_buf, "warning: ") &&
               strstr(out_buf, "r3.json: no results"),
           "%s", out_buf);
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    sh(cmd);
}

RUN_TESTS()
