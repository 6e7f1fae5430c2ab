/* test_fuzz_regress.c — replays every file of fuzz/corpus/<target>/ and
 * fuzz/regress/<target>/ through the fuzz targets (fuzz/targets.h: the same
 * reader entry points the libFuzzer harnesses call) and checks: no crash (the
 * ASan build runs this too), none of the target's promises broken, and a
 * clean status — 0, or a SwaxStatus with a message. Seeds named valid_* must
 * load (status 0: our writers and readers agree); bad_* must be refused.
 * fuzz/regress/ holds the inputs that once crashed a reader (see
 * docs/reliability.md). Run from the repository root (or set SWAX_FUZZ_DIR). */
#include <dirent.h>

#include "../fuzz/targets.h"
#include "test.h"

static const char *fuzz_root(void) {
    static char root[1024];
    if (root[0]) return root;
    const char *env = getenv("SWAX_FUZZ_DIR");
    const char *tries[] = {env, "fuzz", "../fuzz", "../../fuzz"};
    for (int i = 0; i < 4; i++) {
        char p[1100];
        if (!tries[i]) continue;
        snprintf(p, sizeof p, "%s/targets.h", tries[i]);
        if (access(p, R_OK) == 0) {
            snprintf(root, sizeof root, "%s", tries[i]);
            return root;
        }
    }
    return NULL;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Replays one folder; returns the number of files, -1 if it is missing.
 * *failed counts the files that broke the contract. */
static int replay_dir(const FuzzTarget *t, const char *dir, int regress, int *failed) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096)
        if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_name);
    for (int i = 0; i < n; i++) {
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        char *data;
        size_t len;
        if (swax_read_file(p, &data, &len)) {
            fprintf(stderr, "  cannot read %s: %s\n", p, swax_last_error());
            (*failed)++;
            free(names[i]);
            continue;
        }
        fuzz_violations = 0;
        int rc = fuzz_run_one(t, (const uint8_t *)data, len);
        const char *why = NULL;
        if (fuzz_violations) why = fuzz_violation_msg;
        else if (!regress && !strncmp(names[i], "valid_", 6) && rc != 0) why = "a valid_ seed was refused";
        else if (!regress && !strncmp(names[i], "bad_", 4) && rc == 0) why = "a bad_ seed was accepted";
        if (why) {
            fprintf(stderr, "  %s: %s (status %d: %s)\n", p, why, rc, rc ? swax_last_error() : "ok");
            (*failed)++;
        }
        free(data);
        free(names[i]);
    }
    return n;
}

static void replay(const char *name) {
    const char *root = fuzz_root();
    CHECKF(root != NULL, "fuzz/ not found (run from the repository root or set SWAX_FUZZ_DIR)");
    const FuzzTarget *t = fuzz_target_by_name(name);
    CHECKF(t != NULL, "no fuzz target '%s' in fuzz/targets.h", name);
    fuzz_abort_on_violation = 0;
    char dir[1200];
    int failed = 0;
    snprintf(dir, sizeof dir, "%s/corpus/%s", root, name);
    int seeds = replay_dir(t, dir, 0, &failed);
    snprintf(dir, sizeof dir, "%s/regress/%s", root, name);
    int regress = replay_dir(t, dir, 1, &failed);
    printf("  %-16s %3d seeds, %3d regression inputs\n", name, seeds < 0 ? 0 : seeds, regress < 0 ? 0 : regress);
    CHECKF(seeds > 0, "%s/corpus/%s: no seeds", root, name);
    CHECKF(failed == 0, "%d file(s) of %s broke the contract", failed, name);
}

#define REPLAY(name) \
    TEST(replay_##name) { replay(#name); }
REPLAY(safetensors)
REPLAY(config)
REPLAY(shard)
REPLAY(npy)
REPLAY(tokenizer_ranks)
REPLAY(tokenizer_json)
REPLAY(train_state)
REPLAY(infer_state)
REPLAY(model_load)
REPLAY(choice_jsonl)
REPLAY(bench)
REPLAY(words)
REPLAY(essay)
REPLAY(data_jsonl)
REPLAY(latest)

/* Every target of fuzz/targets.h has a REPLAY line above. */
TEST(every_target_replayed) {
    int replays = 0;
    for (int i = 0; i < g_ntests; i++) replays += !strncmp(g_tests[i].name, "replay_", 7);
    CHECKF(replays == FUZZ_N_TARGETS, "%d REPLAY tests for %d fuzz targets", replays, FUZZ_N_TARGETS);
}

RUN_TESTS()
