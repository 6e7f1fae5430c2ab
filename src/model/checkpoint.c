/* checkpoint.c — model save/load: DIR/config.json + DIR/model.safetensors.
 * Every mismatch between the config and the weights is an error that names the
 * file and the tensor; nothing already on disk is touched until a complete new
 * file is written (atomic writes in io/). */
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "io/config_json.h"
#include "io/safetensors.h"
#include "model/model.h"

int swax_model_save(const SwaxModel *m, const char *dir) {
    char path[4096];
    SWAX_TRY(swax_mkdir_p(dir));
    SwaxSTTensor *ts = swax_calloc(m->n_tensors, sizeof *ts, "tensor list");
    if (!ts) return SWAX_E_NOMEM;
    const float *params = swax_model_params_view(m); /* host copy of a device model's weights */
    for (int i = 0; i < m->n_tensors; i++) {
        const SwaxTensor *t = &m->tensors[i];
        ts[i].name = t->name;
        ts[i].dtype = SWAX_DT_F32;
        ts[i].ndim = t->ndim;
        ts[i].shape[0] = t->shape[0];
        ts[i].shape[1] = t->shape[1];
        ts[i].data = params + t->offset;
    }
    const char *meta[] = {"format", "pt", "producer", "swax", NULL};
    int rc = swax_path_join(path, sizeof path, dir, "model.safetensors");
    if (!rc) rc = swax_st_write(path, ts, m->n_tensors, meta);
    free(ts);
    if (rc) return rc;
    SWAX_TRY(swax_path_join(path, sizeof path, dir, "config.json"));
    return swax_config_save(path, &m->cfg);
}

/* A training run folder names its newest complete checkpoint in OUT/latest. */
int swax_run_latest(const char *out, char *dir, size_t cap) {
    char path[4200], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/latest", out);
    if (access(path, F_OK) != 0) return swax_error(SWAX_E_INPUT, "%s: no checkpoint to resume from", out);
    SWAX_TRY(swax_read_file(path, &text, &len));
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) text[--len] = 0;
    int rc = 0;
    if (!len || strlen(text) != len || strchr(text, '/') || !strcmp(text, ".") || !strcmp(text, "..") ||
        (size_t)snprintf(dir, cap, "%s/%s", out, text) >= cap)
        rc = swax_error(SWAX_E_INPUT, "%s: does not name a checkpoint folder", path);
    free(text);
    return rc;
}

int swax_checkpoint_dir(const char *dir_or_run, char *dir, size_t cap) {
    char path[8400], latest[8400];
    snprintf(path, sizeof path, "%s/config.json", dir_or_run);
    snprintf(latest, sizeof latest, "%s/latest", dir_or_run);
    if (access(path, F_OK) != 0 && access(latest, F_OK) == 0) return swax_run_latest(dir_or_run, dir, cap);
    if (strlen(dir_or_run) >= cap) return swax_error(SWAX_E_USAGE, "%s: path too long", dir_or_run);
    memcpy(dir, dir_or_run, strlen(dir_or_run) + 1);
    return 0;
}

int swax_model_load(const char *dir_or_run, SwaxModel **out) {
    char path[8400], dir[4200];
    SwaxConfig cfg;
    *out = NULL;
    SWAX_TRY(swax_checkpoint_dir(dir_or_run, dir, sizeof dir)); /* a checkpoint, or a run's newest */
    SWAX_TRY(swax_path_join(path, sizeof path, dir, "config.json"));
    SWAX_TRY(swax_config_load(path, &cfg));
    if (swax_config_validate(&cfg)) return swax_error_wrap(SWAX_E_INPUT, "%s", path);
    SwaxModel *m;
    SWAX_TRY(swax_model_create(&cfg, &m));
    SwaxSTFile st;
    int rc = swax_path_join(path, sizeof path, dir, "model.safetensors");
    if (!rc) rc = swax_st_open(path, &st);
    if (rc) {
        swax_model_free(m);
        return rc;
    }
    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const SwaxTensor *t = &m->tensors[i];
        const SwaxSTEntry *e = swax_st_find(&st, t->name);
        if (!e) {
            rc = swax_error(SWAX_E_INPUT, "%s: tensor '%s' is missing (does config.json match these weights?)", path,
                            t->name);
        } else if (e->dtype != SWAX_DT_F32) {
            rc = swax_error(SWAX_E_INPUT, "%s: tensor '%s' has dtype %s, expected F32", path, t->name,
                            swax_dtype_name(e->dtype));
        } else if (e->ndim != t->ndim || e->shape[0] != t->shape[0] || (t->ndim == 2 && e->shape[1] != t->shape[1])) {
            rc = swax_error(SWAX_E_INPUT,
                            "%s: tensor '%s' has shape [%lld%s%lld] but config.json implies [%lld, %lld] "
                            "(config does not match the weights)",
                            path, t->name, (long long)e->shape[0], e->ndim > 1 ? ", " : " ndim 1 ",
                            (long long)(e->ndim > 1 ? e->shape[1] : 0), (long long)t->shape[0],
                            (long long)t->shape[1]);
        } else {
            memcpy(m->params + t->offset, swax_st_data(&st, e), e->nbytes);
        }
    }
    if (!rc && st.n != m->n_tensors) {
        for (int i = 0; i < st.n; i++) {
            int found = 0;
            for (int j = 0; j < m->n_tensors && !found; j++) found = !strcmp(st.entries[i].name, m->tensors[j].name);
            if (!found) {
                rc = swax_error(SWAX_E_INPUT, "%s: unexpected tensor '%s' (does config.json match these weights?)",
                                path, st.entries[i].name);
                break;
            }
        }
    }
    swax_st_close(&st);
    if (rc) {
        swax_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
