/* train_state.c — see train_state.h. */
#include "train/train_state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "io/tokenizer.h"

#define MAGIC SWAX_TRAIN_STATE_MAGIC
#define HEADER_BYTES SWAX_TRAIN_STATE_HEAD


static void put_u32(unsigned char *b, uint32_t v) { memcpy(b, &v, 4); }
static void put_u64(unsigned char *b, uint64_t v) { memcpy(b, &v, 8); }
static uint64_t get_u64(const unsigned char *b) {
    uint64_t v;
    memcpy(&v, b, 8);
    return v;
}

int swax_train_state_save(const char *path, const SwaxTrainProgress *p, const SwaxAdamW *opt) {
    /* the moments live where the model computes: a host copy to write */
    float *mv = swax_calloc(opt->n ? 2 * opt->n : 1, sizeof(float), "optimizer state copy");
    if (!mv) return SWAX_E_NOMEM;
    swax_adamw_get(opt, mv, mv + opt->n);
    unsigned char h[HEADER_BYTES];
    memset(h, 0, sizeof h);
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, 1);
    put_u64(h + 16, p->step);
    put_u64(h + 24, opt->n);
    put_u64(h + 32, p->data_pos);
    put_u64(h + 40, p->seed);
    put_u64(h + 48, p->tokens_seen);
    put_u64(h + 56, (uint64_t)opt->step);
    memcpy(h + 64, &p->elapsed_s, 8);
    uint64_t ck = SWAX_FNV_OFFSET;
    ck = swax_fnv1a(ck, h, sizeof h);
    ck = swax_fnv1a(ck, mv, 2 * opt->n * sizeof(float));
    SwaxAtomicFile af;
    int rc = swax_atomic_open(&af, path);
    if (rc) {
        free(mv);
        return rc;
    }
    rc = swax_atomic_write(&af, h, sizeof h);
    if (!rc) rc = swax_atomic_write(&af, mv, 2 * opt->n * sizeof(float));
    if (!rc) rc = swax_atomic_write(&af, &ck, 8);
    free(mv);
    if (rc) {
        swax_atomic_abort(&af);
        return rc;
    }
    return swax_atomic_commit(&af);
}

int swax_train_state_load(const char *path, SwaxTrainProgress *p, SwaxAdamW *opt) {
    char *data;
    size_t len;
    SWAX_TRY(swax_read_file(path, &data, &len));
    const unsigned char *b = (const unsigned char *)data;
    int rc = 0;
    if (len < HEADER_BYTES + 8 || memcmp(b, MAGIC, 8) != 0) {
        rc = swax_error(SWAX_E_INPUT, "%s: not a swax training state (bad magic or too short)", path);
    } else if (get_u64(b + 8) % (1ull << 32) != 1) {
        rc = swax_error(SWAX_E_INPUT, "%s: unsupported training-state version %u", path, (unsigned)(get_u64(b + 8)));
    } else if (get_u64(b + 24) != opt->n) {
        rc = swax_error(SWAX_E_INPUT, "%s: holds optimizer state for %llu parameters, the model has %zu", path,
                        (unsigned long long)get_u64(b + 24), opt->n);
    } else if (len != HEADER_BYTES + 2 * opt->n * sizeof(float) + 8) {
        rc = swax_error(SWAX_E_INPUT, "%s: size %zu, expected %zu (truncated?)", path, len,
                        HEADER_BYTES + 2 * opt->n * sizeof(float) + 8);
    } else {
        uint64_t ck = swax_fnv1a(SWAX_FNV_OFFSET, b, len - 8);
        if (ck != get_u64(b + len - 8)) {
            rc = swax_error(SWAX_E_INPUT, "%s: checksum mismatch (corrupt file)", path);
        } else {
            p->step = get_u64(b + 16);
            p->data_pos = get_u64(b + 32);
            p->seed = get_u64(b + 40);
            p->tokens_seen = get_u64(b + 48);
            opt->step = (long)get_u64(b + 56);
            memcpy(&p->elapsed_s, b + 64, 8);
            swax_adamw_set(opt, (const float *)(b + HEADER_BYTES),
                           (const float *)(b + HEADER_BYTES + opt->n * sizeof(float)));
        }
    }
    free(data);
    return rc;
}

static int rm_rf(const char *path) {
    DIR *d = opendir(path);
    if (!d) return unlink(path);
    struct dirent *e;
    char sub[8192];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rm_rf(sub);
    }
    closedir(d);
    return rmdir(path);
}

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    fsync(fd);
    close(fd);
    return 0;
}

int swax_checkpoint_tmpdir(const char *out, long step, char *tmp, size_t cap, int fresh) {
    snprintf(tmp, cap, "%s/.ckpt_%08ld.tmp", out, step);
    if (!fresh) return 0;
    rm_rf(tmp);
    return swax_mkdir_p(tmp);
}

int swax_checkpoint_write(const char *out, long step, const SwaxModel *m, const SwaxTrainProgress *p,
                          const SwaxAdamW *opt, const char *train_json, const SwaxTokenizer *tok, int keep) {
    char tmp[4200], path[8400];
    SWAX_TRY(swax_checkpoint_tmpdir(out, step, tmp, sizeof tmp, 1));
    snprintf(path, sizeof path, "%s/train_state.bin", tmp);
    int rc = swax_train_state_save(path, p, opt);
    if (rc) {
        rm_rf(tmp);
        return rc;
    }
    return swax_checkpoint_commit(out, step, m, train_json, tok, keep);
}

int swax_checkpoint_commit(const char *out, long step, const SwaxModel *m, const char *train_json,
                           const SwaxTokenizer *tok, int keep) {
    char name[64], tmp[4200], fin[4200], path[8400];
    snprintf(name, sizeof name, "ckpt_%08ld", step);
    swax_checkpoint_tmpdir(out, step, tmp, sizeof tmp, 0);
    snprintf(fin, sizeof fin, "%s/%s", out, name);
    int rc = swax_model_save(m, tmp);
    if (!rc && train_json) {
        snprintf(path, sizeof path, "%s/train.json", tmp);
        rc = swax_write_file_atomic(path, train_json, strlen(train_json));
    }
    if (!rc && tok) rc = swax_tokenizer_save(tok, tmp);
    if (rc) {
        rm_rf(tmp);
        return rc;
    }
    fsync_path(tmp);
    rm_rf(fin); /* a checkpoint of the same step from an earlier, abandoned run */
    if (rename(tmp, fin) != 0) {
        rc = swax_error(SWAX_E_IO, "%s: cannot rename checkpoint folder: %s", fin, strerror(errno));
        rm_rf(tmp);
        return rc;
    }
    fsync_path(out);
    char latest[4200], line[80];
    snprintf(latest, sizeof latest, "%s/latest", out);
    snprintf(line, sizeof line, "%s\n", name);
    SWAX_TRY(swax_write_file_atomic(latest, line, strlen(line)));
    /* keep the newest `keep` checkpoints */
    if (keep > 0) {
        DIR *d = opendir(out);
        if (d) {
            long steps[4096];
            int n = 0;
            struct dirent *e;
            while ((e = readdir(d)) && n < 4096) {
                long s;
                char extra;
                if (sscanf(e->d_name, "ckpt_%ld%c", &s, &extra) == 1) steps[n++] = s;
            }
            closedir(d);
            for (int i = 0; i < n; i++) {
                int newer = 0;
                for (int j = 0; j < n; j++) newer += steps[j] > steps[i];
                if (newer >= keep && steps[i] != step) {
                    snprintf(path, sizeof path, "%s/ckpt_%08ld", out, steps[i]);
                    rm_rf(path);
                }
            }
        }
    }
    return 0;
}
