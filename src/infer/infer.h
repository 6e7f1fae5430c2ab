/* infer.h — constant-memory inference (SPEC §3).
 *
 * A SwaxState holds S independent sequences. Per sequence: for each SWA layer a
 * ring buffer of the last `window` keys and values (rotated keys), for each
 * mLSTM layer (C, n, m) in fp32. Memory does not grow with context: a 1M-token
 * context costs what a 10k one does.
 *
 * Prefill runs the chunkwise mLSTM form and windowed attention over the ring
 * plus the new chunk; decode runs the recurrent step. Both give the same logits
 * as the training forward (swax_forward) to float rounding (docs/inference.md:
 * the tolerances, the state layout, the state file format).
 *
 * One call at a time per SwaxState (its scratch is shared by its sequences);
 * different states may run concurrently. The state lives where the model's
 * ops table computes: host memory on the CPU, device memory for a model moved
 * with swax_model_set_device to "cuda" / "cuda-fp32" (same layout; positions
 * on the host; logits always come back in host arrays). A state belongs to the
 * table it was made with: move the model, make a new state (state files move
 * between devices). Status codes as everywhere: SWAX_E_USAGE for bad arguments,
 * SWAX_E_INPUT for bad token ids, empty prompts and bad state files. */
#ifndef SWAX_INFER_H
#define SWAX_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "swax.h"

typedef struct SwaxState SwaxState;

/* window: the SWA window to run at (<= 0: the model config's window). */
int swax_state_create(const SwaxModel *m, int n_seqs, int window, SwaxState **out);
void swax_state_free(SwaxState *s);
void swax_state_reset(SwaxState *s, int seq);         /* empty context */
long swax_state_position(const SwaxState *s, int seq);  /* tokens consumed so far */
int swax_state_window(const SwaxState *s);
size_t swax_state_bytes(const SwaxState *s);          /* state bytes per sequence (scratch not counted) */
int swax_state_n_seqs(const SwaxState *s);
/* Copies sequence src's state (and position) over sequence dst (in-memory prompt caching). */
int swax_state_copy(SwaxState *s, int dst, int src);

/* Feeds n tokens to sequence `seq` (any n >= 1). `chunk` is the mLSTM chunk
 * size L (0 = default 64; speed only, not the function); the work goes in
 * pieces of a multiple of L rows (a 32 MiB scratch). If last_logits is non-NULL
 * it receives the logits (V) after the last token; if all_logits is non-NULL
 * it receives (n, V). Logits are soft-capped, padded ids at -inf. Token ids are
 * checked first: on a bad id nothing is consumed. */
int swax_prefill(SwaxModel *m, SwaxState *s, int seq, const int32_t *tokens, size_t n, int chunk,
                 float *last_logits, float *all_logits);

/* The rows one prefill step runs (a multiple of the chunk; 0 = default 64).
 * Prefill cuts its work at absolute positions that are multiples of it, so a
 * prompt fed in several calls that end there gives exactly the state and
 * logits of one call (`swax generate` streams a prompt file so). */
int swax_prefill_piece(const SwaxState *s, int chunk);

/* One token for each of n sequences at once (batched decode): seqs[i] gets
 * tokens[i] (distinct sequences, any order, any subset); logits (n, V) or NULL. */
int swax_decode(SwaxModel *m, SwaxState *s, const int *seqs, const int32_t *tokens, int n, float *logits);
/* swax_decode, then next[i] = the greedy choice for row i (swax_sample with
 * no sampler) without handing out the logits: on a device the argmax runs
 * there and only n ids come back (no (n, V) copy). */
int swax_decode_greedy(SwaxModel *m, SwaxState *s, const int *seqs, const int32_t *tokens, int n, int32_t *next);

/* Prompt caching: the state of one sequence to / from a file (atomic write).
 * Loading checks that the file was made by a model of the same config, weights
 * and window (SWAX_E_INPUT naming the file otherwise), and that it is complete
 * (size, checksum); a failed load leaves the sequence as it was, except that a
 * payload found short or corrupt after the header checks resets it. */
int swax_state_save(const SwaxState *s, const SwaxModel *m, int seq, const char *path);
int swax_state_load(SwaxState *s, const SwaxModel *m, int seq, const char *path);
/* What a state file is checked against: a hash of the config fields that change
 * the function (all but window, eot_token, igate_bias_init), and a hash of
 * 65,536 evenly spaced parameters. */
uint64_t swax_config_fingerprint(const SwaxConfig *c);
uint64_t swax_weights_fingerprint(const SwaxModel *m);

/* Sampling (seeded): temperature <= 0 = greedy; top_k <= 0 = off; top_p >= 1 = off.
 * Order: temperature, top-k, then top-p on the renormalised top-k set. sp NULL
 * or rng NULL = greedy. Padded ids (>= vocab_used) are never drawn; NaN logits
 * count as -inf. Returns the id, or -1 (with swax_error) for no logits. */
typedef struct {
    float temperature;
    int top_k;
    float top_p;
} SwaxSampler;
int32_t swax_sample(const float *logits, int vocab_used, const SwaxSampler *sp, SwaxRng *rng);

/* Inference benchmark (bench_infer.c) of a preset name (random init) or a
 * checkpoint folder: prefill tokens/s at contexts 1k, 32k and 1M (the 1M run
 * also reports the rate over its last 32k tokens: flat = constant cost), decode
 * tokens/s at batch 1 and 8 (or the batches asked for), and the memory-bandwidth bound on decode (measured copy
 * bandwidth / bytes read and written per token), with the fraction reached.
 * One JSON line per figure on `out`. threads <= 0: leave as is. */
int swax_infer_bench(const char *preset_or_dir, int threads, FILE *out);
typedef struct {
    int threads;       /* <= 0: leave as is */
    int window;        /* <= 0: the config's */
    int chunk;         /* <= 0: 64 */
    long max_context;  /* contexts above it are skipped (reported as such); <= 0: 1M */
    int decode_tokens; /* <= 0: 256 */
    const char *device; /* NULL or "cpu"; "cuda" / "cuda-fp32": on the GPU (decode batch 1 and 64, prefill 4k, 32k, 1M) */
    const int *batches; /* CPU: decode batch sizes to time (NULL: 1 and 8); batch 1 first gives the ratios */
    int n_batches;
} SwaxInferBenchOpts;
int swax_infer_bench_ex(const char *preset_or_dir, const SwaxInferBenchOpts *o, FILE *out);

#endif
