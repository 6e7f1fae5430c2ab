/* train_state.h — everything besides the weights that resume needs, in
 * train_state.bin, and checkpoint folders that are complete or absent.
 *
 * train_state.bin (little-endian):
 *   char magic[8] = "SWAXTST1"; u32 version = 1; u32 reserved;
 *   u64 step, n_params, data_pos, seed, tokens_seen, opt_step; f64 elapsed_s;
 *   f32 m[n_params]; f32 v[n_params];
 *   u64 checksum (FNV-1a 64 of every byte before it). */
#ifndef SWAX_TRAIN_STATE_H
#define SWAX_TRAIN_STATE_H

#include <stdint.h>

#include "train/optim.h"

/* train_state.bin: magic, then the header (version, progress, moments' count;
 * SWAX_TRAIN_STATE_HEAD bytes in all), the moments m then v (fp32), an FNV-1a
 * checksum of everything before it. (dist/shard.c reads it to re-shard.) */
#define SWAX_TRAIN_STATE_MAGIC "SWAXTST1"
enum { SWAX_TRAIN_STATE_HEAD = 8 + 4 + 4 + 6 * 8 + 8 };

typedef struct {
    uint64_t step, data_pos, seed, tokens_seen;
    double elapsed_s;
} SwaxTrainProgress;

int swax_train_state_save(const char *path, const SwaxTrainProgress *p, const SwaxAdamW *opt);
/* opt must be initialised for the model (n matches); fills it and p. */
int swax_train_state_load(const char *path, SwaxTrainProgress *p, SwaxAdamW *opt);

/* Writes OUT/ckpt_<step>/ (model, config, train state, extras) through a
 * temporary folder and a rename, then points OUT/latest at it and keeps the
 * newest `keep` checkpoints. tok (or NULL) is saved beside the model. A kill at any point leaves the previous one intact. */
struct SwaxTokenizer;
/* The same in two halves, for a multi-GPU run whose ranks each add their
 * optimizer shard: swax_checkpoint_tmpdir names (and with `fresh` empties and
 * makes) OUT/.ckpt_<step>.tmp; swax_checkpoint_commit writes the model,
 * train.json and tokenizer into it, renames it into place, updates latest and
 * keeps the newest `keep`. */
int swax_checkpoint_tmpdir(const char *out, long step, char *tmp, size_t cap, int fresh);
int swax_checkpoint_commit(const char *out, long step, const SwaxModel *m, const char *train_json,
                           const struct SwaxTokenizer *tok, int keep);
int swax_checkpoint_write(const char *out, long step, const SwaxModel *m, const SwaxTrainProgress *p,
                          const SwaxAdamW *opt, const char *train_json, const struct SwaxTokenizer *tok, int keep);

#endif
