/* shard.c — ZeRO-1 shard plan and the optimizer shard files, with
 * re-sharding on resume (any world size reads any other). See dist.h. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "dist/dist.h"
#include "train/train_state.h"

SwaxRange swax_shard_piece(SwaxRange b, int r, int n) {
    const size_t q = b.len / (size_t)n;
    SwaxRange p = {b.off + (size_t)r * q, r == n - 1 ? b.len - (size_t)r * q : q};
    return p;
}

size_t swax_shard_size(const SwaxRange *b, int nb, int r, int n) {
    size_t s = 0;
    for (int i = 0; i < nb; i++) s += swax_shard_piece(b[i], r, n).len;
    return s;
}

/* ---------------------------------------------------------------- files */

static const char SH_MAGIC[8] = {'S', 'W', 'A', 'X', 'O', 'S', 'H', '1'};
enum { SH_HEAD = 8 + 4 * 4 + 3 * 8 };
/* train_state.bin (train_state.h): the one-process layout */
#define TS_MAGIC SWAX_TRAIN_STATE_MAGIC
#define TS_HEAD SWAX_TRAIN_STATE_HEAD


static void shard_name(char *buf, size_t cap, const char *dir, int r, int n) {
    snprintf(buf, cap, "%s/optim_%d_of_%d.bin", dir, r, n);
}

int swax_optim_shard_save(const char *dir, const SwaxRange *b, int nb, size_t n_params, int r, int n,
                          uint64_t opt_step, const float *m, const float *v) {
    char path[4200];
    shard_name(path, sizeof path, dir, r, n);
    const size_t len = swax_shard_size(b, nb, r, n);
    unsigned char h[SH_HEAD];
    memcpy(h, SH_MAGIC, 8);
    uint32_t u[4] = {1, (uint32_t)r, (uint32_t)n, (uint32_t)nb};
    memcpy(h + 8, u, 16);
    uint64_t q[3] = {n_params, len, opt_step};
    memcpy(h + 24, q, 24);
    uint64_t *tab = malloc(sizeof(uint64_t) * 2 * (size_t)(nb ? nb : 1));
    if (!tab) return swax_error(SWAX_E_NOMEM, "shard table");
    for (int i = 0; i < nb; i++) tab[2 * i] = b[i].off, tab[2 * i + 1] = b[i].len;
    uint64_t ck = SWAX_FNV_OFFSET;
    ck = swax_fnv1a(ck, h, sizeof h);
    ck = swax_fnv1a(ck, tab, sizeof(uint64_t) * 2 * (size_t)nb);
    ck = swax_fnv1a(ck, m, len * sizeof(float));
    ck = swax_fnv1a(ck, v, len * sizeof(float));
    SwaxAtomicFile af;
    int rc = swax_atomic_open(&af, path);
    if (!rc) {
        rc = swax_atomic_write(&af, h, sizeof h);
        if (!rc) rc = swax_atomic_write(&af, tab, sizeof(uint64_t) * 2 * (size_t)nb);
        if (!rc) rc = swax_atomic_write(&af, m, len * sizeof(float));
        if (!rc) rc = swax_atomic_write(&af, v, len * sizeof(float));
        if (!rc) rc = swax_atomic_write(&af, &ck, 8);
        rc = rc ? (swax_atomic_abort(&af), rc) : swax_atomic_commit(&af);
    }
    free(tab);
    return rc;
}

int swax_optim_manifest_save(const char *dir, int world, size_t n_params, const SwaxDistProgress *p) {
    char path[4200], text[1024];
    snprintf(path, sizeof path, "%s/optim.json", dir);
    int k = snprintf(text, sizeof text,
                     "{\n  \"format\": \"swax-optim-shards\",\n  \"version\": 1,\n  \"world\": %d,\n"
                     "  \"n_params\": %zu,\n  \"step\": %llu,\n  \"data_pos\": %llu,\n  \"seed\": %llu,\n"
                     "  \"tokens_seen\": %llu,\n  \"opt_step\": %llu,\n  \"elapsed_s\": %.17g\n}\n",
                     world, n_params, (unsigned long long)p->step, (unsigned long long)p->data_pos,
                     (unsigned long long)p->seed, (unsigned long long)p->tokens_seen, (unsigned long long)p->opt_step,
                     p->elapsed_s);
    return swax_write_file_atomic(path, text, (size_t)k);
}

int swax_optim_is_sharded(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/optim.json", dir);
    return access(path, F_OK) == 0;
}

/* An integer field written as an exact integer (the raw text, no double rounding). */
static int json_u64(const char *text, const char *key, uint64_t *out) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(text, pat);
    if (!p) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p + strlen(pat), &end, 10);
    if (errno || end == p + strlen(pat)) return -1;
    *out = v;
    return 0;
}

/* A source of the old state: one file whose m values of global range `piece`
 * start at byte m_at and v values at v_at. */
typedef struct {
    FILE *f;
    char path[4200];
} Src;

static int read_at(Src *s, uint64_t at, void *dst, size_t bytes) {
    if (fseeko(s->f, (off_t)at, SEEK_SET) != 0 || fread(dst, 1, bytes, s->f) != bytes)
        return swax_error(SWAX_E_INPUT, "%s: truncated optimizer state", s->path);
    return 0;
}

/* FNV over the whole file except the last 8 bytes, compared with them. */
static int verify_file(Src *s, size_t expect_len) {
    if (fseeko(s->f, 0, SEEK_END) != 0) return swax_error(SWAX_E_INPUT, "%s: cannot seek", s->path);
    const off_t len = ftello(s->f);
    if (len < 0 || (size_t)len != expect_len)
        return swax_error(SWAX_E_INPUT, "%s: size %lld, expected %zu (truncated or another model?)", s->path,
                          (long long)len, expect_len);
    rewind(s->f);
    unsigned char *buf = malloc(1 << 20);
    if (!buf) return swax_error(SWAX_E_NOMEM, "checksum buffer");
    uint64_t ck = SWAX_FNV_OFFSET;
    size_t left = expect_len - 8;
    while (left) {
        size_t k = left < (1u << 20) ? left : (1u << 20);
        if (fread(buf, 1, k, s->f) != k) {
            free(buf);
            return swax_error(SWAX_E_INPUT, "%s: read error", s->path);
        }
        ck = swax_fnv1a(ck, buf, k);
        left -= k;
    }
    uint64_t want;
    int ok = fread(&want, 1, 8, s->f) == 8 && want == ck;
    free(buf);
    return ok ? 0 : swax_error(SWAX_E_INPUT, "%s: checksum mismatch (corrupt file)", s->path);
}

int swax_optim_shard_load(const char *dir, const SwaxRange *b, int nb, size_t n_params, int r, int n, float *m,
                          float *v, SwaxDistProgress *p) {
    char path[4200];
    int W = 1, rc = 0;
    const int sharded = swax_optim_is_sharded(dir);
    memset(p, 0, sizeof *p);
    if (sharded) {
        snprintf(path, sizeof path, "%s/optim.json", dir);
        char *text;
        size_t len;
        SWAX_TRY(swax_read_file(path, &text, &len));
        uint64_t w = 0, np = 0;
        cJSON *root = cJSON_ParseWithLength(text, len);
        const cJSON *fmt = root ? cJSON_GetObjectItemCaseSensitive(root, "format") : NULL;
        if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "swax-optim-shards") || json_u64(text, "world", &w) ||
            json_u64(text, "n_params", &np) || json_u64(text, "step", &p->step) ||
            json_u64(text, "data_pos", &p->data_pos) || json_u64(text, "seed", &p->seed) ||
            json_u64(text, "tokens_seen", &p->tokens_seen) || json_u64(text, "opt_step", &p->opt_step) ||
            !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "elapsed_s")))
            rc = swax_error(SWAX_E_INPUT, "%s: not a swax optimizer manifest (missing or bad keys)", path);
        else if (w < 1 || w > SWAX_DIST_MAX_WORLD)
            rc = swax_error(SWAX_E_INPUT, "%s: world %llu out of range", path, (unsigned long long)w);
        else if (np != n_params)
            rc = swax_error(SWAX_E_INPUT, "%s: optimizer state for %llu parameters, the model has %zu", path,
                            (unsigned long long)np, n_params);
        if (!rc) p->elapsed_s = cJSON_GetObjectItemCaseSensitive(root, "elapsed_s")->valuedouble;
        W = (int)w;
        cJSON_Delete(root);
        free(text);
        if (rc) return rc;
    }
    Src *src = calloc((size_t)W, sizeof(Src));
    size_t *prefix_old = calloc((size_t)W * (size_t)nb + 1, sizeof(size_t)); /* [w][k]: offset of piece k in w's shard */
    if (!src || !prefix_old) {
        free(src), free(prefix_old);
        return swax_error(SWAX_E_NOMEM, "re-shard tables");
    }
    for (int w = 0; w < W; w++) {
        size_t acc = 0;
        for (int k = 0; k < nb; k++) prefix_old[(size_t)w * nb + k] = acc, acc += swax_shard_piece(b[k], w, W).len;
    }
    /* open every old file lazily: only those that overlap our pieces */
    size_t at = 0; /* offset in our shard */
    for (int k = 0; !rc && k < nb; k++) {
        const SwaxRange P = swax_shard_piece(b[k], r, n);
        for (int w = 0; !rc && w < W && P.len; w++) {
            const SwaxRange Q = swax_shard_piece(b[k], w, W);
            const size_t lo = P.off > Q.off ? P.off : Q.off;
            const size_t hi = P.off + P.len < Q.off + Q.len ? P.off + P.len : Q.off + Q.len;
            if (lo >= hi) continue;
            Src *s = &src[w];
            const size_t qlen = swax_shard_size(b, nb, w, W);
            if (!s->f) {
                if (sharded) shard_name(s->path, sizeof s->path, dir, w, W);
                else snprintf(s->path, sizeof s->path, "%s/train_state.bin", dir);
                s->f = fopen(s->path, "rb");
                if (!s->f) {
                    rc = swax_error(SWAX_E_INPUT, "%s: cannot open: %s (the checkpoint of a %d-rank run needs every "
                                                  "rank's optimizer shard)", s->path, strerror(errno), W);
                    break;
                }
                const size_t head = sharded ? SH_HEAD + 16 * (size_t)nb : TS_HEAD;
                if ((rc = verify_file(s, head + 2 * qlen * sizeof(float) + 8))) break;
                unsigned char h[(int)SH_HEAD > (int)TS_HEAD ? (int)SH_HEAD : (int)TS_HEAD];
                if ((rc = read_at(s, 0, h, sharded ? SH_HEAD : TS_HEAD))) break;
                if (sharded) {
                    uint32_t u[4];
                    uint64_t q[3];
                    memcpy(u, h + 8, 16), memcpy(q, h + 24, 24);
                    if (memcmp(h, SH_MAGIC, 8) || u[0] != 1 || u[1] != (uint32_t)w || u[2] != (uint32_t)W ||
                        u[3] != (uint32_t)nb || q[0] != n_params || q[1] != qlen) {
                        rc = swax_error(SWAX_E_INPUT, "%s: header does not match rank %d of %d of this model", s->path,
                                        w, W);
                        break;
                    }
                    uint64_t *tab = malloc(16 * (size_t)nb + 1);
                    if (!tab) {
                        rc = swax_error(SWAX_E_NOMEM, "shard table");
                        break;
                    }
                    rc = read_at(s, SH_HEAD, tab, 16 * (size_t)nb);
                    for (int i = 0; !rc && i < nb; i++)
                        if (tab[2 * i] != b[i].off || tab[2 * i + 1] != b[i].len)
                            rc = swax_error(SWAX_E_INPUT, "%s: bucket %d is [%llu, +%llu), this model's is [%zu, +%zu)",
                                            s->path, i, (unsigned long long)tab[2 * i],
                                            (unsigned long long)tab[2 * i + 1], b[i].off, b[i].len);
                    free(tab);
                    if (rc) break;
                } else {
                    uint64_t f[6];
                    memcpy(f, h + 16, 48);
                    if (memcmp(h, TS_MAGIC, 8) || f[1] != n_params) {
                        rc = swax_error(SWAX_E_INPUT, "%s: not a training state of this model", s->path);
                        break;
                    }
                    p->step = f[0], p->data_pos = f[2], p->seed = f[3], p->tokens_seen = f[4], p->opt_step = f[5];
                    memcpy(&p->elapsed_s, h + 64, 8);
                }
            }
            const size_t head = sharded ? SH_HEAD + 16 * (size_t)nb : TS_HEAD;
            const size_t from = prefix_old[(size_t)w * nb + k] + (lo - Q.off), cnt = hi - lo;
            const size_t to = at + (lo - P.off);
            rc = read_at(s, head + from * sizeof(float), m + to, cnt * sizeof(float));
            if (!rc) rc = read_at(s, head + (qlen + from) * sizeof(float), v + to, cnt * sizeof(float));
        }
        at += P.len;
    }
    /* the progress lives in train_state.bin's header or the manifest: make sure it was read */
    if (!rc && !sharded && !src[0].f) {
        Src s = {0};
        snprintf(s.path, sizeof s.path, "%s/train_state.bin", dir);
        s.f = fopen(s.path, "rb");
        unsigned char h[TS_HEAD];
        if (!s.f) rc = swax_error(SWAX_E_INPUT, "%s: cannot open: %s", s.path, strerror(errno));
        else if (!(rc = read_at(&s, 0, h, TS_HEAD))) {
            uint64_t f[6];
            memcpy(f, h + 16, 48);
            if (memcmp(h, TS_MAGIC, 8) || f[1] != n_params) rc = swax_error(SWAX_E_INPUT, "%s: not a training state of this model", s.path);
            p->step = f[0], p->data_pos = f[2], p->seed = f[3], p->tokens_seen = f[4], p->opt_step = f[5];
            memcpy(&p->elapsed_s, h + 64, 8);
        }
        if (s.f) fclose(s.f);
    }
    for (int w = 0; w < W; w++)
        if (src[w].f) fclose(src[w].f);
    free(src);
    free(prefix_old);
    return rc;
}
