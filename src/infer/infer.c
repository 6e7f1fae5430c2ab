/* infer.c — constant-memory inference (SPEC §3): the per-sequence state,
 * chunked prefill, batched one-token decode. See infer.h and docs/inference.md.
 *
 * State of one sequence (one contiguous float block, `per_seq` floats), layer
 * by layer in block order:
 *   SWA layer:   K ring (w, HD), then V ring (w, HD); position p lives in slot
 *                p mod w; keys are stored rotated (RoPE at their absolute position)
 *   mLSTM layer: C (NH, dk, dv), then n (NH, dk), then m (NH)
 *   Gated DeltaNet layer: S (NH, dv, dk), then the conv history (3, 2D) (infer_gdn.h)
 * plus the position (tokens consumed) kept beside it.
 *
 * Prefill cuts the tokens into pieces of up to `piece` rows: a multiple of the
 * mLSTM chunk L, as many rows as fit a 32 MiB scratch (1 GiB on a device; at least 256,
 * at most 4096) so that the matrix products are efficient and the per-call overheads
 * (thread wake-ups) are spread over many tokens. Every
 * layer runs on the whole piece; the mLSTM runs the chunkwise form with the
 * state carried in and out, its chunks aligned to absolute multiples of L (so
 * that where a prefill is split does not move the chunk boundaries, and a
 * prefill from position 0 chunks exactly as the training forward does); the SWA
 * queries of the piece attend over the ring (positions before the piece) and the
 * piece's own keys, then the ring takes the piece's last min(w, n) keys/values.
 * Decode runs the same layers on one row per sequence, with the recurrent mLSTM
 * step. All matrix products, norms, gates, SwiGLU and the mLSTM output go
 * through m->ops; the attention over ring + chunk is written here.
 *
 * A model on a device table (m->ops->is_device: "cuda", "cuda-fp32") keeps
 * the state (same layout, so state files move between devices) and all
 * scratch in device memory; positions stay on the host. It never takes the
 * CPU-only code below (mm's OpenMP slicing and gemv, attend, swax_rope_f, the
 * ring memcpy, mlstm_segment, swax_mlstm_step_f, swax_gdn_infer): the mixers
 * go to the table's inference slots (ops.h: infer_attn, infer_mlstm_step,
 * infer_gdn) and the mLSTM's chunkwise prefill to mlstm_cell_fwd with the
 * state carried in and out (C0 / C1), under a chunk table made here with the
 * same absolute alignment (the Gated DeltaNet slot makes its own). Token
 * ids, row sequences and positions are uploaded into fixed device buffers;
 * logits come back to the caller's host arrays through a device buffer of at
 * most LOGIT_ROWS rows. A decode step for n sequences runs as a graph
 * (ops->graph_run: warm-up, one capture per n and head variant, replays;
 * SWAX_CUDA_GRAPHS=0 or SWAX_PROFILE turn it off); graphs are dropped when
 * the state's device scratch is reallocated. */
#include "infer/infer.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "infer/infer_gdn.h"
#include "model/model.h"
#include "ops/cpu/fastmath.h"
#include "ops/cpu/mlstm_cell.h"
#include "ops/cpu/swa.h"

#define SWAX_STATE_MAGIC "SWAXSTAT"
#define SWAX_STATE_VERSION 1u
#define SWAX_STATE_HEADER 64u
#define PIECE_MIN_ROWS 256
#define PIECE_MAX_ROWS 4096
#define PIECE_SCRATCH_BYTES ((size_t)32 << 20)
#define PIECE_SCRATCH_BYTES_DEV ((size_t)1 << 30)
#define CHUNK_MAX 65536
#define LOGIT_ROWS 256 /* device: logits computed and copied back this many rows at a time */

struct SwaxState {
    int S, window, n_blocks;
    uint64_t cfg_fp;        /* swax_config_fingerprint of the model it was made for */
    int D, HD, H, dh, NH, dk, dv, F, V, P;
    size_t per_seq;         /* floats per sequence */
    double macs_row;        /* multiply-adds of the blocks' matrix products per token */
    size_t *layer_off;      /* (n_blocks) offset of each layer's state in a sequence block */
    char *kinds;            /* (n_blocks + 1) */
    float *data;            /* (S, per_seq) */
    long *pos;              /* (S) */
    /* scratch, sized by rows (prefill piece or decode batch), never by context */
    int cap_rows;
    float *x, *mid, *ln, *rstd, *mix, *att, *ig, *lf, *hn, *hmean, *hrstd, *y, *gu, *hf;
    long *rowpos;
    int *rowseq;
    /* device model: the table that owns data and scratch; token ids, row
     * sequences / positions, the prefill chunk table, logits and greedy ids in
     * device memory; decode graphs per (batch n, head variant) */
    int dev;
    const SwaxOps *ops;
    int32_t *d_tok, *d_next;
    int *d_rowseq, *d_chunks, *h_chunks;
    long *d_rowpos;
    float *d_logits;
    int cap_logit_rows;
    void **graphs; /* (3 (S + 1)) */
    /* Gated DeltaNet (pattern D): projection width, scratch floats per row, scratch, per-row states */
    int Pd;
    size_t gdn_row;
    float *gdn, **gdn_st;
};

/* ---- hashing ------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A fast 64-bit hash of bytes, continued from h (streaming: call repeatedly on
 * consecutive pieces whose lengths are multiples of 8, the last any length). */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = mix64(h ^ w) + 0x9E3779B97F4A7C15ull;
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, b + i, n - i);
        h = mix64(h ^ w ^ ((uint64_t)(n - i) << 56)) + 0x9E3779B97F4A7C15ull;
    }
    return h;
}

uint64_t swax_config_fingerprint(const SwaxConfig *c) {
    /* the fields that change the function (not window, eot_token, igate_bias_init);
     * floats in hex so the text is exact */
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "swax-config-v1 V=%d Vu=%d D=%d blocks=%d pattern=%s heads=%d hdim=%d theta=%a nh=%d gcap=%a "
                     "ffn=%d lcap=%a eps=%a tie=%d",
                     c->vocab_size, c->vocab_used, c->d_model, c->n_blocks, c->pattern, c->attn_heads, c->head_dim,
                     c->rope_theta, c->mlstm_heads, (double)c->gate_softcap, c->ffn_dim, (double)c->logit_softcap,
                     (double)c->norm_eps, c->tie_embeddings);
    if (strchr(c->pattern, 'D') && n > 0 && (size_t)n < sizeof buf) /* only then: other fingerprints stay as they were */
        n += snprintf(buf + n, sizeof buf - (size_t)n, " gdn=%d", swax_config_gdn_heads(c));
    return hash_bytes(0x5357415853544154ull, buf, n > 0 && (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

uint64_t swax_weights_fingerprint(const SwaxModel *m) {
    /* 65,536 evenly spaced parameters plus the last one and the count */
    const size_t n = m->n_params;
    const size_t stride = n / 65536 > 0 ? n / 65536 : 1;
    const float *params = swax_model_params_view(m);
    uint64_t h = mix64(0x77656967687473ull ^ (uint64_t)n);
    for (size_t i = 0; i < n; i += stride) {
        uint32_t w;
        memcpy(&w, params + i, 4);
        h = mix64(h ^ w) + i;
    }
    if (n) {
        uint32_t w;
        memcpy(&w, params + n - 1, 4);
        h = mix64(h ^ w);
    }
    return h;
}

/* ---- threads ------------------------------------------------------------ */

/* Every call plans its threads: below ~4M multiply-adds of work (a decode
 * step of a small model) it runs on one thread, since waking threads for the
 * ~50 short parallel regions of a step costs more than it saves (and on a
 * loaded machine a spinning barrier can cost a scheduler slice each). The
 * matrix products are split over OpenMP threads by output columns (mm below),
 * each slice one single-threaded BLAS call: with a pthreads OpenBLAS, whose
 * own threads would fight OpenMP's for the cores (measured: up to 15x slower
 * on 2 cores), BLAS is held at one thread for the duration of the call. Both
 * settings are restored on return (omp_set_num_threads is per calling thread). */
typedef struct {
    int omp_prev, blas_prev;
} Threads;

static void threads_enter(Threads *t, double work_macs, double min_macs) {
    const char *e = getenv("SWAX_INFER_MIN_MACS"); /* tests: 0 = thread even the smallest model */
    if (e && *e) min_macs = atof(e);
    t->omp_prev = omp_get_max_threads();
    if (work_macs < min_macs && t->omp_prev > 1) omp_set_num_threads(1);
    t->blas_prev = 0;
    if (openblas_get_parallel() == 1) {
        const int b = openblas_get_num_threads();
        if (b != 1) {
            t->blas_prev = b;
            openblas_set_num_threads(1);
        }
    }
}

static void threads_exit(const Threads *t) {
    if (omp_get_max_threads() != t->omp_prev) omp_set_num_threads(t->omp_prev);
    if (t->blas_prev) openblas_set_num_threads(t->blas_prev);
}

/* ---- the few-row matrix product ------------------------------------------ */

/* out (R, o0..o1) = inp (R, C) · w (o0..o1, C)ᵀ for few rows (decode), without
 * BLAS: sgemm packs the whole weight matrix into its panel layout on every
 * call (measured: the packing took more time than the arithmetic at 8 rows),
 * gemv reads the weights once per row. Here a block of 4 weight rows stays in
 * L1 while every input row (R_BLK at a time) passes over it, so the weights
 * are read from memory once per call whatever R is.
 *
 * Each output element is the dot product of one input row and one weight row
 * with one fixed order of operations: vector lanes over c (fused multiply-add,
 * MMV lanes), the lanes summed in a fixed tree, then the scalar tail c >=
 * C - C % MMV. The blocking never changes it, so a row's result depends on
 * nothing but that row: batched decode equals one-at-a-time decode bit for bit,
 * and so does any split of the rows or columns over threads. */
#if defined(__AVX2__) && defined(__FMA__)
/* 256-bit vectors also where AVX-512 is there: measured faster here (Zen 5,
 * out-of-cache weights, 8 rows: 3.4 vs 4.3-5.9 ms for 34.6 MB of weights)
 * and the same arithmetic in the native and the portable (x86-64-v3) builds */
#include <immintrin.h>
#define MMV 8
#define R_BLK 2
typedef __m256 mmvec;
static inline mmvec mv_zero(void) { return _mm256_setzero_ps(); }
static inline mmvec mv_load(const float *p) { return _mm256_loadu_ps(p); }
static inline mmvec mv_fma(mmvec a, mmvec b, mmvec c) { return _mm256_fmadd_ps(a, b, c); }
static inline __m256 mv_half(mmvec v) { return v; }
#else /* any other target: one lane, plain C (the same order of operations everywhere) */
#define MMV 1
#define R_BLK 2
typedef float mmvec;
static inline mmvec mv_zero(void) { return 0.0f; }
static inline mmvec mv_load(const float *p) { return *p; }
static inline mmvec mv_fma(mmvec a, mmvec b, mmvec c) { return fmaf(a, b, c); }
#endif

/* the lane sums of 4 accumulators into y[0..3] (each sum uses only its own
 * vector's lanes, in a fixed tree), plus the scalar tails when C % MMV != 0 */
static inline void mv_store4(float *y, mmvec a0, mmvec a1, mmvec a2, mmvec a3, const float *x, const float *w,
                             int Cv, int C, int n) {
    float t[4];
#if MMV > 1
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(mv_half(a0), mv_half(a1)), _mm256_hadd_ps(mv_half(a2), mv_half(a3)));
    _mm_storeu_ps(t, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
#else
    t[0] = a0, t[1] = a1, t[2] = a2, t[3] = a3;
#endif
    for (int j = 0; j < n; j++) {
        float tail = 0;
        for (int c = Cv; c < C; c++) tail = fmaf(x[c], w[(size_t)j * C + c], tail);
        y[j] = Cv < C ? t[j] + tail : t[j];
    }
}

static void mm_rows(float *out, long ldo, const float *inp, long ldi, const float *w, int R, int C, int o0, int o1) {
    const int Cv = C - C % MMV;
    int o = o0;
    for (; o + 4 <= o1; o += 4) {
        const float *w0 = w + (size_t)o * C, *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
        /* the next block's rows are fetched while this one computes (a plain
         * stream of 4 rows at a time outran the hardware prefetcher: +40%) */
        const float *nx = o + 8 <= o1 ? w0 + 4 * (size_t)C : NULL;
        int r = 0;
        for (; r + R_BLK <= R; r += R_BLK) {
            mmvec a[R_BLK][4];
            for (int i = 0; i < R_BLK; i++) a[i][0] = a[i][1] = a[i][2] = a[i][3] = mv_zero();
            for (int c = 0; c < Cv; c += MMV) {
                if (nx && r == 0)
                    for (int j = 0; j < 4; j++) __builtin_prefetch(nx + (size_t)j * C + c);
                const mmvec v0 = mv_load(w0 + c), v1 = mv_load(w1 + c), v2 = mv_load(w2 + c), v3 = mv_load(w3 + c);
                for (int i = 0; i < R_BLK; i++) {
                    const mmvec x = mv_load(inp + (size_t)(r + i) * ldi + c);
                    a[i][0] = mv_fma(x, v0, a[i][0]);
                    a[i][1] = mv_fma(x, v1, a[i][1]);
                    a[i][2] = mv_fma(x, v2, a[i][2]);
                    a[i][3] = mv_fma(x, v3, a[i][3]);
                }
            }
            for (int i = 0; i < R_BLK; i++)
                mv_store4(out + (size_t)(r + i) * ldo + o, a[i][0], a[i][1], a[i][2], a[i][3],
                          inp + (size_t)(r + i) * ldi, w0, Cv, C, 4);
        }
        for (; r < R; r++) {
            const float *x = inp + (size_t)r * ldi;
            mmvec a0 = mv_zero(), a1 = mv_zero(), a2 = mv_zero(), a3 = mv_zero();
            for (int c = 0; c < Cv; c += MMV) {
                if (nx && r == 0)
                    for (int j = 0; j < 4; j++) __builtin_prefetch(nx + (size_t)j * C + c);
                const mmvec xv = mv_load(x + c);
                a0 = mv_fma(xv, mv_load(w0 + c), a0);
                a1 = mv_fma(xv, mv_load(w1 + c), a1);
                a2 = mv_fma(xv, mv_load(w2 + c), a2);
                a3 = mv_fma(xv, mv_load(w3 + c), a3);
            }
            mv_store4(out + (size_t)r * ldo + o, a0, a1, a2, a3, x, w0, Cv, C, 4);
        }
    }
    if (o < o1) { /* the last 1-3 columns: the same arithmetic, missing columns zero */
        const int n = o1 - o;
        const float *w0 = w + (size_t)o * C, *w1 = n > 1 ? w0 + C : w0, *w2 = n > 2 ? w0 + 2 * (size_t)C : w0;
        for (int r = 0; r < R; r++) {
            const float *x = inp + (size_t)r * ldi;
            mmvec a0 = mv_zero(), a1 = mv_zero(), a2 = mv_zero();
            for (int c = 0; c < Cv; c += MMV) {
                const mmvec xv = mv_load(x + c);
                a0 = mv_fma(xv, mv_load(w0 + c), a0);
                a1 = mv_fma(xv, mv_load(w1 + c), a1);
                a2 = mv_fma(xv, mv_load(w2 + c), a2);
            }
            mv_store4(out + (size_t)r * ldo + o, a0, a1, a2, mv_zero(), x, w0, Cv, C, n);
        }
    }
}

/* Rows up to this many go to mm_rows with the CPU table (decode batches, short
 * prefill tails); more rows amortise sgemm's packing. Kept at 32 although 16
 * is faster for a 1-thread batch of 32 (2,543-2,624 vs 2,270-2,314 tokens/s on
 * bench-cpu, idle, 2026-12-06): below the cut-over a row's logits do not
 * depend on the rest of the batch (batched = one-at-a-time decode, bit for
 * bit), and 32 rows per thread keeps that for the batches people use. */
#define MM_ROWS_MAX 32

/* out (R, OC) = inp (R, C) · w (OC, C)ᵀ, in column slices (multiples of 16)
 * over the OpenMP threads when the matrix is large. With the CPU ops table and
 * at most MM_ROWS_MAX rows: mm_rows; otherwise ops->matmul_fwd (sgemm; a
 * device table, or a test's table, always). */
static void mm(const SwaxOps *ops, float *out, long ldo, const float *inp, long ldi, const float *w, int R, int C,
               int OC) {
    const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    const int rows = R <= MM_ROWS_MAX && ops == swax_ops_cpu();
    if (ops->is_device || nt <= 1 || (double)C * OC < 65536.0 || OC < 32 * nt) {
        if (rows) mm_rows(out, ldo, inp, ldi, w, R, C, 0, OC);
        else ops->matmul_fwd(out, ldo, inp, ldi, w, R, C, OC);
        return;
    }
    const int blk = (OC + 16 * nt - 1) / (16 * nt) * 16;
#pragma omp parallel for schedule(static)
    for (int o0 = 0; o0 < OC; o0 += blk) {
        const int n = OC - o0 < blk ? OC - o0 : blk;
        if (rows) mm_rows(out, ldo, inp, ldi, w, R, C, o0, o0 + n);
        else ops->matmul_fwd(out + o0, ldo, inp, ldi, w + (size_t)o0 * C, R, C, n);
    }
}

/* ---- state -------------------------------------------------------------- */

/* memory where the state's table computes (device or host), zeroed */
static void *state_alloc(const SwaxState *s, size_t n, size_t size, const char *what) {
    if (!s->dev) return swax_calloc(n, size, what);
    size_t bytes;
    if (swax_mul_size(&bytes, n, size)) {
        swax_error(SWAX_E_NOMEM, "%s: size overflows", what);
        return NULL;
    }
    void *p = s->ops->alloc(bytes ? bytes : 1);
    if (!p) swax_error_wrap(SWAX_E_NOMEM, "%s", what);
    return p;
}
static void state_free(const SwaxState *s, void *p) {
    if (!p) return;
    if (s->dev) s->ops->free(p);
    else free(p);
}

/* device: the decode graphs hold pointers into the scratch; dropped when it moves */
static void free_graphs(SwaxState *s) {
    if (!s->graphs) return;
    for (int i = 0; i < 3 * (s->S + 1); i++) {
        if (s->graphs[i] && s->ops->graph_free) s->ops->graph_free(s->graphs[i]);
        s->graphs[i] = NULL;
    }
}

static void free_scratch(SwaxState *s) {
    float *bufs[] = {s->x, s->mid, s->ln, s->rstd, s->mix, s->att, s->ig, s->lf, s->hn, s->hmean, s->hrstd, s->y,
                     s->gu, s->hf};
    free_graphs(s);
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) state_free(s, bufs[i]);
    free(s->rowpos);
    free(s->rowseq);
    if (s->dev) {
        state_free(s, s->d_tok);
        state_free(s, s->d_rowseq);
        state_free(s, s->d_rowpos);
        state_free(s, s->d_chunks);
        free(s->h_chunks);
        s->d_tok = NULL, s->d_rowseq = NULL, s->d_rowpos = NULL, s->d_chunks = NULL, s->h_chunks = NULL;
    }
    free(s->gdn);
    free(s->gdn_st);
    s->gdn = NULL;
    s->gdn_st = NULL;
    s->x = s->mid = s->ln = s->rstd = s->mix = s->att = s->ig = s->lf = s->hn = s->hmean = s->hrstd = s->y = NULL;
    s->gu = s->hf = NULL;
    s->rowpos = NULL;
    s->rowseq = NULL;
    s->cap_rows = 0;
}

static size_t scratch_row_bytes(const SwaxState *s) {
    const size_t D = s->D, NH = s->NH, F = s->F;
    size_t mixw = 3 * (size_t)s->HD > (size_t)s->P ? 3 * (size_t)s->HD : (size_t)s->P;
    if ((size_t)s->Pd > mixw) mixw = s->Pd;
    const size_t attw = (size_t)s->HD > D ? (size_t)s->HD : D;
    return sizeof(float) * (6 * D + 1 + mixw + attw + 4 * NH + 3 * F + s->gdn_row) + sizeof(long) + sizeof(int) +
           (s->gdn_row ? sizeof(float *) : 0);
}

/* Scratch a prefill piece may take: PIECE_SCRATCH_BYTES on the CPU (the
 * piece's activations stay in cache), PIECE_SCRATCH_BYTES_DEV on a device,
 * where 32 MiB gave the 1.4b preset 256-row pieces: its prefill attention ran
 * 8 query tiles x 16 heads = 128 blocks of 4 warps, under one block per SM
 * (run 8, H100: attention 76% of a 4k prefill), and its products N = 256.
 * SWAX_PREFILL_SCRATCH_MB overrides both (A/B runs). */
static size_t piece_budget(const SwaxState *s) {
    const char *e = getenv("SWAX_PREFILL_SCRATCH_MB");
    const long mb = e ? strtol(e, NULL, 10) : 0;
    if (mb > 0 && mb <= 65536) return (size_t)mb << 20;
    return s->dev ? PIECE_SCRATCH_BYTES_DEV : PIECE_SCRATCH_BYTES;
}

/* prefill piece: a multiple of L, about piece_budget() of scratch */
static int piece_rows(const SwaxState *s, int L) {
    size_t rows = piece_budget(s) / scratch_row_bytes(s);
    if (rows < PIECE_MIN_ROWS) rows = PIECE_MIN_ROWS;
    if (rows > PIECE_MAX_ROWS) rows = PIECE_MAX_ROWS;
    rows = rows / (size_t)L * (size_t)L;
    return rows < (size_t)L ? L : (int)rows;
}

static int ensure_scratch(SwaxState *s, int rows) {
    if (rows <= s->cap_rows) return 0;
    free_scratch(s);
    const size_t R = (size_t)rows, D = s->D, NH = s->NH, F = s->F;
    size_t mixw = 3 * (size_t)s->HD > (size_t)s->P ? 3 * (size_t)s->HD : (size_t)s->P;
    if ((size_t)s->Pd > mixw) mixw = s->Pd;
    const size_t attw = (size_t)s->HD > D ? (size_t)s->HD : D;
    int fail = 0;
#define AL(p, n) \
    do { if (!fail && !((p) = state_alloc(s, (n), sizeof *(p), "inference scratch " #p))) fail = 1; } while (0)
    AL(s->x, R * D);
    AL(s->mid, R * D);
    AL(s->ln, R * D);
    AL(s->rstd, R);
    AL(s->mix, R * mixw);
    AL(s->att, R * attw);
    AL(s->ig, R * NH);
    AL(s->lf, R * NH);
    if (s->gdn_row && !s->dev) { /* host scratch of swax_gdn_infer (a device table has its own) */
        AL(s->gdn, R * s->gdn_row);
        AL(s->gdn_st, R);
    }
    AL(s->hn, R * D);
    AL(s->hmean, R * NH);
    AL(s->hrstd, R * NH);
    AL(s->y, R * D);
    AL(s->gu, R * 2 * F);
    AL(s->hf, R * F);
#undef AL
    if (!fail && !(s->rowpos = swax_calloc(R, sizeof(long), "inference scratch rowpos"))) fail = 1;
    if (!fail && !(s->rowseq = swax_calloc(R, sizeof(int), "inference scratch rowseq"))) fail = 1;
    if (s->dev) {
#define AL(p, n) \
    do { if (!fail && !((p) = state_alloc(s, (n), sizeof *(p), "inference scratch " #p))) fail = 1; } while (0)
        AL(s->d_tok, R);
        AL(s->d_rowseq, R);
        AL(s->d_rowpos, R);
        AL(s->d_chunks, R + 2);
#undef AL
        if (!fail && !(s->h_chunks = swax_calloc(R + 2, sizeof(int), "inference chunk table"))) fail = 1;
    }
    if (fail) {
        free_scratch(s);
        return SWAX_E_NOMEM;
    }
    s->cap_rows = rows;
    return 0;
}

/* device: the logits buffer with room for `rows` rows */
static int ensure_logits(SwaxState *s, int rows) {
    if (rows <= s->cap_logit_rows) return 0;
    free_graphs(s);
    state_free(s, s->d_logits);
    state_free(s, s->d_next);
    s->d_next = NULL;
    s->cap_logit_rows = 0;
    if (!(s->d_logits = state_alloc(s, (size_t)rows * (size_t)s->V, sizeof(float), "inference logits")))
        return SWAX_E_NOMEM;
    if (!(s->d_next = state_alloc(s, (size_t)rows, sizeof(int32_t), "inference greedy ids"))) return SWAX_E_NOMEM;
    s->cap_logit_rows = rows;
    return 0;
}

int swax_state_create(const SwaxModel *m, int n_seqs, int window, SwaxState **out) {
    *out = NULL;
    const SwaxConfig *c = &m->cfg;
    if (n_seqs < 1) return swax_error(SWAX_E_USAGE, "state: n_seqs %d must be >= 1", n_seqs);
    if (m->ops->is_device && (!m->ops->infer_attn || !m->ops->infer_mlstm_step || !m->ops->copy))
        return swax_error(SWAX_E_USAGE, "inference: the ops table %s has no inference slots (use --device cpu)",
                          m->ops->name);
    if (m->ops->is_device && strchr(c->pattern, 'D') && !m->ops->infer_gdn)
        return swax_error(SWAX_E_USAGE,
                          "inference: the ops table %s has no Gated DeltaNet inference slot (pattern %s; use --device "
                          "cpu)",
                          m->ops->name, c->pattern);
    if (window <= 0) window = c->window;
    if (window < 1) return swax_error(SWAX_E_USAGE, "state: window %d must be >= 1", window);
    SwaxState *s = swax_calloc(1, sizeof *s, "inference state");
    if (!s) return SWAX_E_NOMEM;
    s->S = n_seqs, s->window = window, s->n_blocks = c->n_blocks;
    s->dev = m->ops->is_device != 0, s->ops = m->ops;
    s->cfg_fp = swax_config_fingerprint(c);
    s->D = c->d_model, s->HD = m->HD, s->H = c->attn_heads, s->dh = c->head_dim;
    s->NH = m->NH, s->dk = m->dk, s->dv = m->dv, s->F = c->ffn_dim, s->V = c->vocab_size, s->P = m->P_m;
    s->layer_off = swax_calloc(c->n_blocks, sizeof(size_t), "state layout");
    s->kinds = swax_calloc((size_t)c->n_blocks + 1, 1, "state layout");
    s->pos = swax_calloc(n_seqs, sizeof(long), "state positions");
    if (s->dev) s->graphs = swax_calloc(3 * ((size_t)n_seqs + 1), sizeof(void *), "decode graphs");
    int rc = (!s->layer_off || !s->kinds || !s->pos || (s->dev && !s->graphs)) ? SWAX_E_NOMEM : 0;
    size_t off = 0;
    for (int l = 0; l < c->n_blocks && !rc; l++) {
        s->kinds[l] = m->kinds[l];
        s->layer_off[l] = off;
        size_t sz;
        if (m->kinds[l] == 'A') {
            if (swax_mul_size(&sz, (size_t)window, 2 * (size_t)s->HD))
                rc = swax_error(SWAX_E_NOMEM, "state: window %d x %d overflows", window, s->HD);
        } else if (m->kinds[l] == 'D') {
            sz = swax_gdn_state_floats(m);
            s->Pd = m->P_d;
            s->gdn_row = swax_gdn_scratch_floats(m);
        } else {
            sz = (size_t)s->NH * ((size_t)s->dk * s->dv + s->dk + 1);
        }
        if (!rc && off + sz < off) rc = swax_error(SWAX_E_NOMEM, "state: size overflows");
        off += sz;
    }
    if (!rc && off > SIZE_MAX / sizeof(float) / 2) rc = swax_error(SWAX_E_NOMEM, "state: size overflows");
    s->per_seq = off;
    {
        const double D = s->D, F = s->F;
        for (int l = 0; l < c->n_blocks; l++)
            s->macs_row += (m->kinds[l] == 'A'   ? 4.0 * s->HD * D
                            : m->kinds[l] == 'D' ? (double)m->P_d * D + D * D
                                                 : (double)s->P * D + D * D) +
                           3.0 * F * D;
    }
    if (!rc) {
        s->data = state_alloc(s, n_seqs, (off ? off : 1) * sizeof(float), "state arrays");
        if (!s->data) rc = swax_error_wrap(SWAX_E_NOMEM, "%d sequences at window %d", n_seqs, window);
    }
    if (rc) {
        swax_state_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void swax_state_free(SwaxState *s) {
    if (!s) return;
    free_scratch(s);
    state_free(s, s->d_logits);
    state_free(s, s->d_next);
    free(s->graphs);
    free(s->layer_off);
    free(s->kinds);
    free(s->pos);
    state_free(s, s->data);
    free(s);
}

static float *seq_data(const SwaxState *s, int seq) { return s->data + (size_t)seq * s->per_seq; }

void swax_state_reset(SwaxState *s, int seq) {
    if (!s || seq < 0 || seq >= s->S) return;
    if (s->dev) s->ops->zero(seq_data(s, seq), sizeof(float) * s->per_seq);
    else memset(seq_data(s, seq), 0, sizeof(float) * s->per_seq);
    s->pos[seq] = 0;
}

long swax_state_position(const SwaxState *s, int seq) {
    if (!s || seq < 0 || seq >= s->S) return -1;
    return s->pos[seq];
}

int swax_state_window(const SwaxState *s) { return s->window; }
int swax_state_n_seqs(const SwaxState *s) { return s->S; }
size_t swax_state_bytes(const SwaxState *s) { return s->per_seq * sizeof(float) + sizeof(long); }

int swax_state_copy(SwaxState *s, int dst, int src) {
    if (dst < 0 || dst >= s->S || src < 0 || src >= s->S)
        return swax_error(SWAX_E_USAGE, "state copy: sequences %d -> %d out of range [0, %d)", src, dst, s->S);
    if (dst != src && s->dev) s->ops->copy(seq_data(s, dst), seq_data(s, src), sizeof(float) * s->per_seq);
    else if (dst != src) memcpy(seq_data(s, dst), seq_data(s, src), sizeof(float) * s->per_seq);
    s->pos[dst] = s->pos[src];
    return 0;
}

static int check_model(const SwaxState *s, const SwaxModel *m) {
    if (!s || !m) return swax_error(SWAX_E_USAGE, "inference: NULL state or model");
    if (swax_config_fingerprint(&m->cfg) != s->cfg_fp || m->cfg.n_blocks != s->n_blocks)
        return swax_error(SWAX_E_USAGE, "inference: this state was created for a model with another config");
    if ((m->ops->is_device != 0) != s->dev || (s->dev && m->ops != s->ops))
        return swax_error(SWAX_E_USAGE, "inference: this state was created for the model on %s, the model is now on %s",
                          s->ops->name, m->ops->name);
    return 0;
}

/* ---- attention over ring + chunk ---------------------------------------- */

/* One query (head h, absolute position p) against keys at positions
 * max(0, p - w + 1) .. p: positions >= pos0 are rows (j - pos0) of the chunk
 * (stride ldc), earlier ones come from the ring (slot j mod w, stride HD).
 * Softmax of the scores scaled by 1/sqrt(dh), online over blocks of 64 keys
 * (block max, rescale, vectorised exp), accumulators in float. */
enum { ATT_KB = 64 };
static void attend(float *out, const float *q, long p, long pos0, const float *ck, const float *cv, long ldc,
                   const float *rk, const float *rv, int HD, int w, int dh, float scale) {
    float acc[1024], sc[ATT_KB];
    const float *vp[ATT_KB];
    long lo = p - w + 1;
    if (lo < 0) lo = 0;
    float mx = -INFINITY, sum = 0;
    for (int d = 0; d < dh; d++) acc[d] = 0;
    for (long j0 = lo; j0 <= p; j0 += ATT_KB) {
        const int nb = p - j0 + 1 < ATT_KB ? (int)(p - j0 + 1) : ATT_KB;
        float bmx = -INFINITY;
        for (int b = 0; b < nb; b++) {
            const long j = j0 + b;
            const float *k;
            if (j >= pos0) {
                k = ck + (j - pos0) * ldc;
                vp[b] = cv + (j - pos0) * ldc;
            } else {
                const size_t slot = (size_t)(j % w);
                k = rk + slot * HD;
                vp[b] = rv + slot * HD;
            }
            float dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int d = 0; d < dh; d++) dot += q[d] * k[d];
            sc[b] = dot * scale;
            bmx = sc[b] > bmx ? sc[b] : bmx;
        }
        if (bmx > mx) {
            const float r = mx == -INFINITY ? 0.0f : swax_expf(mx - bmx);
            sum *= r;
            for (int d = 0; d < dh; d++) acc[d] *= r;
            mx = bmx;
        }
#pragma omp simd
        for (int b = 0; b < nb; b++) sc[b] = swax_expf(sc[b] - mx);
        for (int b = 0; b < nb; b++) {
            const float e = sc[b], *v = vp[b];
            sum += e;
#pragma omp simd
            for (int d = 0; d < dh; d++) acc[d] += e * v[d];
        }
    }
    const float inv = 1.0f / sum;
    for (int d = 0; d < dh; d++) out[d] = acc[d] * inv;
}

/* ring slots of layer l in sequence seq */
static float *ring_k(SwaxState *s, int seq, int l) { return seq_data(s, seq) + s->layer_off[l]; }
static float *ring_v(SwaxState *s, int seq, int l) {
    return seq_data(s, seq) + s->layer_off[l] + (size_t)s->window * s->HD;
}
static float *mlstm_C(SwaxState *s, int seq, int l) { return seq_data(s, seq) + s->layer_off[l]; }
static float *mlstm_n(SwaxState *s, int seq, int l) {
    return seq_data(s, seq) + s->layer_off[l] + (size_t)s->NH * s->dk * s->dv;
}
static float *mlstm_m(SwaxState *s, int seq, int l) {
    return seq_data(s, seq) + s->layer_off[l] + (size_t)s->NH * ((size_t)s->dk * s->dv + s->dk);
}

/* ---- the mixers --------------------------------------------------------- */

/* SWA layer on R rows that are consecutive positions pos0.. of one sequence
 * (prefill) or one row per sequence (decode: rowseq/rowpos). s->ln holds the
 * normed input; the result (R, D) goes to s->mid. */
static void swa_layer(SwaxModel *m, SwaxState *s, int l, int R, int prefill_seq, long pos0) {
    const SwaxOps *ops = m->ops;
    const BlockW *w = &m->w.blocks[l];
    const int D = s->D, HD = s->HD, H = s->H, dh = s->dh, W = s->window;
    const long ld = 3L * HD;
    const double theta = m->cfg.rope_theta;
    const float scale = 1.0f / sqrtf((float)dh);
    mm(ops, s->mix, ld, s->ln, D, w->w_mix, R, D, 3 * HD);
    if (prefill_seq >= 0) {
        const int seq = prefill_seq;
        swax_rope_f(s->mix, ld, R, H, dh, pos0, theta, 0);
        swax_rope_f(s->mix + HD, ld, R, H, dh, pos0, theta, 0);
        const float *rk = ring_k(s, seq, l), *rv = ring_v(s, seq, l);
#pragma omp parallel for collapse(2) schedule(static)
        for (int t = 0; t < R; t++)
            for (int h = 0; h < H; h++)
                attend(s->att + (size_t)t * HD + (size_t)h * dh, s->mix + (size_t)t * ld + (size_t)h * dh, pos0 + t,
                       pos0, s->mix + HD + (size_t)h * dh, s->mix + 2 * HD + (size_t)h * dh, ld,
                       rk + (size_t)h * dh, rv + (size_t)h * dh, HD, W, dh, scale);
        /* the ring takes the last min(w, R) keys and values */
        float *wk = ring_k(s, seq, l), *wv = ring_v(s, seq, l);
        for (int t = R > W ? R - W : 0; t < R; t++) {
            const size_t slot = (size_t)((pos0 + t) % W);
            memcpy(wk + slot * HD, s->mix + (size_t)t * ld + HD, sizeof(float) * HD);
            memcpy(wv + slot * HD, s->mix + (size_t)t * ld + 2 * HD, sizeof(float) * HD);
        }
    } else {
#pragma omp parallel for schedule(static) if (R > 1)
        for (int r = 0; r < R; r++) {
            swax_rope_f(s->mix + (size_t)r * ld, ld, 1, H, dh, s->rowpos[r], theta, 0);
            swax_rope_f(s->mix + (size_t)r * ld + HD, ld, 1, H, dh, s->rowpos[r], theta, 0);
        }
#pragma omp parallel for collapse(2) schedule(static)
        for (int r = 0; r < R; r++)
            for (int h = 0; h < H; h++) {
                const int seq = s->rowseq[r];
                const long p = s->rowpos[r];
                const float *row = s->mix + (size_t)r * ld;
                attend(s->att + (size_t)r * HD + (size_t)h * dh, row + (size_t)h * dh, p, p, row + HD + (size_t)h * dh,
                       row + 2 * HD + (size_t)h * dh, ld, ring_k(s, seq, l) + (size_t)h * dh,
                       ring_v(s, seq, l) + (size_t)h * dh, HD, W, dh, scale);
            }
        for (int r = 0; r < R; r++) {
            const size_t slot = (size_t)(s->rowpos[r] % W);
            const float *row = s->mix + (size_t)r * ld;
            memcpy(ring_k(s, s->rowseq[r], l) + slot * HD, row + HD, sizeof(float) * HD);
            memcpy(ring_v(s, s->rowseq[r], l) + slot * HD, row + 2 * HD, sizeof(float) * HD);
        }
    }
    mm(ops, s->mid, D, s->att, HD, w->w_out, R, HD, D);
}

/* device: out = inp · wᵀ + resid, the residual added in the product where
 * the table can (matmul_fwd_add: the same bits as the product then the add,
 * one launch fewer: 48 of a 1.4b decode step's ~300) */
static void dev_mm_add(const SwaxOps *ops, float *out, const float *inp, int ldi, const float *w, int R, int C,
                       int OC, const float *resid) {
    if (ops->matmul_fwd_add) {
        ops->matmul_fwd_add(out, OC, inp, ldi, w, R, C, OC, resid);
    } else {
        ops->matmul_fwd(out, OC, inp, ldi, w, R, C, OC);
        ops->add(out, resid, (size_t)R * OC);
    }
}

/* device: out = f(inp) · wᵀ (+ resid) with the RMSNorm or SwiGLU f inside the
 * product where the table can (matmul_fwd_in; decode's gemv); 0: not done,
 * the caller runs f's kernel and the product */
static int dev_mm_in(const SwaxState *s, const SwaxOps *ops, float *out, long ldo, const float *inp, long ldi, int mode,
                     const float *nw, float eps, const float *w, int R, int C, int OC, const float *resid) {
    return s->dev && ops->matmul_fwd_in && ops->matmul_fwd_in(out, ldo, inp, ldi, mode, nw, eps, w, R, C, OC, resid) == 0;
}

/* out (R, OC) = RMSNorm(x; nw) · wᵀ: the norm inside the product where the
 * table can (a device's decode gemv), else into s->ln and then the product */
static void norm_mm(SwaxModel *m, SwaxState *s, float *out, long ldo, const float *x, const float *nw, const float *w,
                    int R, int OC) {
    const SwaxOps *ops = m->ops;
    const int D = s->D;
    if (dev_mm_in(s, ops, out, ldo, x, D, SWAX_MM_IN_RMSNORM, nw, m->cfg.norm_eps, w, R, D, OC, NULL)) return;
    ops->rmsnorm_fwd(s->ln, s->rstd, x, nw, R, D, m->cfg.norm_eps);
    mm(ops, out, ldo, s->ln, D, w, R, D, OC);
}

/* device: the SWA layer through the table's infer_attn (RoPE, attention over
 * ring + rows, ring update; ops.h); mid = x + its output */
static void swa_layer_dev(SwaxModel *m, SwaxState *s, int l, int R, int prefill_seq, long pos0) {
    const SwaxOps *ops = m->ops;
    const BlockW *w = &m->w.blocks[l];
    const int D = s->D, HD = s->HD;
    const long ld = 3L * HD;
    norm_mm(m, s, s->mix, ld, s->x, w->norm1, w->w_mix, R, 3 * HD); /* run_blocks left the norm to this product */
    SwaxInferAttnCall c;
    memset(&c, 0, sizeof c);
    c.R = R, c.H = s->H, c.dh = s->dh, c.window = s->window, c.rope_theta = m->cfg.rope_theta;
    c.qkv = s->mix, c.ldq = ld, c.out = s->att;
    c.state = s->data, c.per_seq = s->per_seq, c.ring_off = s->layer_off[l];
    c.seq = prefill_seq, c.pos0 = pos0;
    c.rowseq = s->d_rowseq, c.rowpos = s->d_rowpos;
    ops->infer_attn(&c);
    dev_mm_add(ops, s->mid, s->att, HD, w->w_out, R, HD, D, s->x);
}

/* device: the mLSTM layer. Prefill: mlstm_cell_fwd over the piece with the
 * sequence's state carried in and out, chunks aligned to absolute multiples
 * of L as on the CPU (a head segment to the next multiple, then L-sized ones);
 * decode: the table's recurrent step. */
static void mlstm_layer_dev(SwaxModel *m, SwaxState *s, int l, int R, int prefill_seq, long pos0, int L) {
    const SwaxOps *ops = m->ops;
    const BlockW *w = &m->w.blocks[l];
    const SwaxConfig *c = &m->cfg;
    const int D = s->D, NH = s->NH, dk = s->dk, dv = s->dv, P = s->P;
    norm_mm(m, s, s->mix, P, s->x, w->norm1, w->w_mix, R, P); /* run_blocks left the norm to this product */
    ops->mlstm_gates_fwd(s->ig, s->lf, s->mix + 3 * D, P, w->b_gates, R, NH, c->gate_softcap);
    if (prefill_seq >= 0) {
        const int head = (int)((L - pos0 % L) % L) < R ? (int)((L - pos0 % L) % L) : R;
        int nch = 0;
        if (head > 0) s->h_chunks[nch++] = 0;
        for (int c0 = head; c0 < R; c0 += L) s->h_chunks[nch++] = c0;
        s->h_chunks[nch] = R;
        ops->to_device(s->d_chunks, s->h_chunks, sizeof(int) * ((size_t)nch + 1));
        float *st = seq_data(s, prefill_seq) + s->layer_off[l];
        float *Cs = st, *ns = st + (size_t)NH * dk * dv, *ms = ns + (size_t)NH * dk;
        SwaxMlstmCall mc;
        memset(&mc, 0, sizeof mc);
        mc.B = 1, mc.T = R, mc.NH = NH, mc.dk = dk, mc.dv = dv, mc.L = L, mc.eps = c->norm_eps;
        mc.proj = s->mix, mc.ldp = P, mc.ig = s->ig, mc.lf = s->lf, mc.h = s->att;
        mc.chunks = s->d_chunks, mc.max_chunks = nch;
        mc.C0 = Cs, mc.n0 = ns, mc.m0 = ms, mc.C1 = Cs, mc.n1 = ns, mc.m1 = ms;
        ops->mlstm_cell_fwd(&mc);
    } else {
        SwaxInferStepCall sc;
        memset(&sc, 0, sizeof sc);
        sc.R = R, sc.NH = NH, sc.dk = dk, sc.dv = dv, sc.eps = c->norm_eps;
        sc.proj = s->mix, sc.ldp = P, sc.ig = s->ig, sc.lf = s->lf, sc.h = s->att;
        sc.state = s->data, sc.per_seq = s->per_seq, sc.off = s->layer_off[l], sc.rowseq = s->d_rowseq;
        ops->infer_mlstm_step(&sc);
    }
    ops->mlstm_out_fwd(s->y, s->hn, s->hmean, s->hrstd, s->att, s->mix + 2 * D, P, w->mix_norm, R, NH, dv,
                       c->norm_eps);
    dev_mm_add(ops, s->mid, s->y, D, w->w_out, R, D, D, s->x);
}

/* chunkwise mLSTM for one head over rows [r0, r0 + n) of the piece, state in/out */
static int mlstm_segment(SwaxState *s, float *C, float *nv, float *mp, int h, int r0, int n, int L, float eps) {
    const int NH = s->NH, dk = s->dk, dv = s->dv, D = s->D;
    const long P = s->P;
    MlstmArgs_f a;
    memset(&a, 0, sizeof a);
    a.T = n, a.dk = dk, a.dv = dv, a.L = L;
    a.q = s->mix + (size_t)r0 * P + (size_t)h * dk, a.ldq = P;
    a.k = s->mix + (size_t)r0 * P + (size_t)NH * dk + (size_t)h * dk, a.ldk = P;
    a.v = s->mix + (size_t)r0 * P + (size_t)D + (size_t)h * dv, a.ldv = P;
    a.ig = s->ig + (size_t)r0 * NH + h, a.lf = s->lf + (size_t)r0 * NH + h, a.ldg = NH;
    a.eps = eps;
    a.C0 = C, a.n0 = nv, a.m0 = *mp;
    a.h = s->att + (size_t)r0 * D + (size_t)h * dv, a.ldh = D;
    a.C1 = C, a.n1 = nv, a.m1 = mp;
    return swax_mlstm_chunkwise_fwd_f(&a);
}

static int mlstm_layer(SwaxModel *m, SwaxState *s, int l, int R, int prefill_seq, long pos0, int L) {
    const SwaxOps *ops = m->ops;
    const BlockW *w = &m->w.blocks[l];
    const SwaxConfig *c = &m->cfg;
    const int D = s->D, NH = s->NH, dk = s->dk, dv = s->dv, P = s->P;
    mm(ops, s->mix, P, s->ln, D, w->w_mix, R, D, P);
    ops->mlstm_gates_fwd(s->ig, s->lf, s->mix + 3 * D, P, w->b_gates, R, NH, c->gate_softcap);
    int fail = 0;
    if (prefill_seq >= 0) {
        const int seq = prefill_seq;
        /* chunks aligned to absolute multiples of L: a head segment up to the next
         * boundary, then the rest */
        const int head = (int)((L - pos0 % L) % L) < R ? (int)((L - pos0 % L) % L) : R;
        float *C = mlstm_C(s, seq, l), *nv = mlstm_n(s, seq, l), *mm = mlstm_m(s, seq, l);
#pragma omp parallel for schedule(static) reduction(| : fail)
        for (int h = 0; h < NH; h++) {
            float *Ch = C + (size_t)h * dk * dv, *nh = nv + (size_t)h * dk;
            if (head > 0) fail |= mlstm_segment(s, Ch, nh, mm + h, h, 0, head, L, c->norm_eps) != 0;
            if (R > head) fail |= mlstm_segment(s, Ch, nh, mm + h, h, head, R - head, L, c->norm_eps) != 0;
        }
    } else {
#pragma omp parallel for collapse(2) schedule(static)
        for (int r = 0; r < R; r++)
            for (int h = 0; h < NH; h++) {
                const int seq = s->rowseq[r];
                const float *row = s->mix + (size_t)r * P;
                swax_mlstm_step_f(dk, dv, row + (size_t)h * dk, row + (size_t)NH * dk + (size_t)h * dk,
                                  row + D + (size_t)h * dv, s->ig[(size_t)r * NH + h], s->lf[(size_t)r * NH + h], 0,
                                  c->norm_eps, mlstm_C(s, seq, l) + (size_t)h * dk * dv,
                                  mlstm_n(s, seq, l) + (size_t)h * dk, mlstm_m(s, seq, l) + h,
                                  s->att + (size_t)r * D + (size_t)h * dv);
            }
    }
    if (fail) return swax_error(SWAX_E_NOMEM, "mLSTM prefill: out of memory for the chunk scratch");
    ops->mlstm_out_fwd(s->y, s->hn, s->hmean, s->hrstd, s->att, s->mix + 2 * D, P, w->mix_norm, R, NH, dv,
                       c->norm_eps);
    mm(ops, s->mid, D, s->y, D, w->w_out, R, D, D);
    return 0;
}

/* Gated DeltaNet layer: projections here, the rest in infer_gdn.c */
static int gdn_layer(SwaxModel *m, SwaxState *s, int l, int R, int prefill_seq, long pos0, int L) {
    const BlockW *w = &m->w.blocks[l];
    const int D = s->D, P = s->Pd;
    mm(m->ops, s->mix, P, s->ln, D, w->w_mix, R, D, P);
    for (int r = 0; r < (prefill_seq >= 0 ? 1 : R); r++)
        s->gdn_st[r] = seq_data(s, prefill_seq >= 0 ? prefill_seq : s->rowseq[r]) + s->layer_off[l];
    if (swax_gdn_infer(m, l, R, s->mix, P, s->gdn_st, prefill_seq >= 0, pos0, L, s->gdn, s->y))
        return swax_error(SWAX_E_NOMEM, "Gated DeltaNet prefill: out of memory for the chunk scratch");
    mm(m->ops, s->mid, D, s->y, D, w->w_out, R, D, D);
    return 0;
}

/* device: the Gated DeltaNet layer through the table's infer_gdn (ops.h):
 * prefill chunkwise with S carried in and out, decode the recurrent step; the
 * convolution history lives in the state as on the CPU */
static void gdn_layer_dev(SwaxModel *m, SwaxState *s, int l, int R, int prefill_seq, long pos0, int L) {
    const SwaxOps *ops = m->ops;
    const BlockW *w = &m->w.blocks[l];
    const int D = s->D, P = s->Pd;
    ops->matmul_fwd(s->mix, P, s->ln, D, w->w_mix, R, D, P);
    SwaxInferGdnCall gc;
    memset(&gc, 0, sizeof gc);
    gc.R = R, gc.NH = m->NHd, gc.dk = m->dkd, gc.dv = m->dvd, gc.L = L, gc.eps = m->cfg.norm_eps;
    gc.proj = s->mix, gc.ldp = P;
    gc.conv_w = w->conv_w, gc.A_log = w->A_log, gc.dt_bias = w->dt_bias, gc.norm_w = w->mix_norm;
    gc.y = s->y;
    gc.state = s->data, gc.per_seq = s->per_seq, gc.off = s->layer_off[l];
    gc.seq = prefill_seq, gc.pos0 = pos0, gc.rowseq = s->d_rowseq;
    ops->infer_gdn(&gc);
    dev_mm_add(ops, s->mid, s->y, D, w->w_out, R, D, D, s->x);
}

/* All blocks on the R rows already embedded in s->x; the final residual stream
 * stays in s->x. */
static int run_blocks(SwaxModel *m, SwaxState *s, int R, int prefill_seq, long pos0, int L) {
    const SwaxOps *ops = m->ops;
    const SwaxConfig *c = &m->cfg;
    const int D = s->D, F = s->F;
    for (int l = 0; l < c->n_blocks; l++) {
        const BlockW *w = &m->w.blocks[l];
        /* the device SWA and mLSTM layers norm inside their first product (norm_mm) */
        if (!s->dev || s->kinds[l] == 'D') ops->rmsnorm_fwd(s->ln, s->rstd, s->x, w->norm1, R, D, c->norm_eps);
        if (s->dev && s->kinds[l] == 'A') swa_layer_dev(m, s, l, R, prefill_seq, pos0);
        else if (s->dev && s->kinds[l] == 'D') gdn_layer_dev(m, s, l, R, prefill_seq, pos0, L);
        else if (s->dev) mlstm_layer_dev(m, s, l, R, prefill_seq, pos0, L);
        else if (s->kinds[l] == 'A') swa_layer(m, s, l, R, prefill_seq, pos0);
        else if (s->kinds[l] == 'D') SWAX_TRY(gdn_layer(m, s, l, R, prefill_seq, pos0, L));
        else SWAX_TRY(mlstm_layer(m, s, l, R, prefill_seq, pos0, L));
        if (!s->dev) ops->add(s->mid, s->x, (size_t)R * D); /* the device layers added it in their product */
        norm_mm(m, s, s->gu, 2L * F, s->mid, w->norm2, w->w_gu, R, 2 * F);
        if (s->dev) {
            if (!dev_mm_in(s, ops, s->x, D, s->gu, 2L * F, SWAX_MM_IN_SWIGLU, NULL, 0.0f, w->w_down, R, F, D,
                           s->mid)) {
                ops->swiglu_fwd(s->hf, s->gu, R, F);
                dev_mm_add(ops, s->x, s->hf, F, w->w_down, R, F, D, s->mid);
            }
        } else {
            ops->swiglu_fwd(s->hf, s->gu, R, F);
            mm(ops, s->x, D, s->hf, F, w->w_down, R, F, D);
            ops->add(s->x, s->mid, (size_t)R * D);
        }
    }
    return 0;
}

/* logits (R, V) of the rows of s->x starting at row r0, into out (where the
 * table computes: device memory for a device model) */
static void lm_head_rows(SwaxModel *m, SwaxState *s, int r0, int R, float *out) {
    const SwaxOps *ops = m->ops;
    const SwaxConfig *c = &m->cfg;
    const int D = s->D, V = s->V;
    norm_mm(m, s, out, V, s->x + (size_t)r0 * D, m->w.norm_f, m->w.lm_head, R, V);
    ops->xent_fwd(out, NULL, NULL, NULL, R, V, c->vocab_used, c->logit_softcap);
}

/* logits (R, V) of the rows of s->x starting at row r0 into the host array
 * out; a device model computes them LOGIT_ROWS rows at a time and copies back */
static void lm_head(SwaxModel *m, SwaxState *s, int r0, int R, float *out) {
    if (!s->dev) {
        lm_head_rows(m, s, r0, R, out);
        return;
    }
    const size_t V = (size_t)s->V;
    for (int a = 0; a < R; a += s->cap_logit_rows) {
        const int n = R - a < s->cap_logit_rows ? R - a : s->cap_logit_rows;
        lm_head_rows(m, s, r0 + a, n, s->d_logits);
        m->ops->to_host(out + (size_t)a * V, s->d_logits, sizeof(float) * V * (size_t)n);
    }
}

static int check_tokens(const SwaxModel *m, const int32_t *tokens, size_t n, const char *what) {
    const int Vu = m->cfg.vocab_used;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= Vu)
            return swax_error(SWAX_E_INPUT, "%s: token id %d at index %zu is out of range [0, %d)", what, tokens[i], i,
                              Vu);
    return 0;
}

int swax_prefill_piece(const SwaxState *s, int chunk) {
    return piece_rows(s, chunk > 0 && chunk <= CHUNK_MAX ? chunk : 64);
}

int swax_prefill(SwaxModel *m, SwaxState *s, int seq, const int32_t *tokens, size_t n, int chunk, float *last_logits,
                 float *all_logits) {
    SWAX_TRY(check_model(s, m));
    if (seq < 0 || seq >= s->S) return swax_error(SWAX_E_USAGE, "prefill: sequence %d out of range [0, %d)", seq, s->S);
    if (n == 0 || !tokens) return swax_error(SWAX_E_INPUT, "prefill: empty prompt (no tokens)");
    if (chunk < 0 || chunk > CHUNK_MAX)
        return swax_error(SWAX_E_USAGE, "prefill: chunk %d must be in [1, %d] (0 = default 64)", chunk, CHUNK_MAX);
    SWAX_TRY(check_tokens(m, tokens, n, "prefill"));
    const int L = chunk > 0 ? chunk : 64;
    const int piece = piece_rows(s, L);
    SWAX_TRY(ensure_scratch(s, n < (size_t)piece ? (int)n : piece)); /* grows on demand, up to a piece */
    if (s->dev && (last_logits || all_logits))
        SWAX_TRY(ensure_logits(s, all_logits ? (n < LOGIT_ROWS ? (int)n : LOGIT_ROWS) : 1));
    const SwaxOps *ops = m->ops;
    const int D = s->D;
    const size_t V = (size_t)s->V;
    Threads th;
    threads_enter(&th, s->dev ? 0.0 : (double)(n < (size_t)piece ? n : (size_t)piece) * (s->macs_row + (double)V * D),
                  4e6);
    int rc = 0;
    size_t done = 0;
    while (done < n) {
        const long pos0 = s->pos[seq];
        /* pieces end at absolute multiples of `piece` (so a split prefill cuts
         * its pieces where an unsplit one would) */
        long room = piece - pos0 % piece;
        const int R = (int)((size_t)room < n - done ? (size_t)room : n - done);
        if (s->dev) {
            ops->to_device(s->d_tok, tokens + done, sizeof(int32_t) * (size_t)R);
            ops->embed_fwd(s->x, s->d_tok, m->w.embed, R, D);
        } else {
            ops->embed_fwd(s->x, tokens + done, m->w.embed, R, D);
        }
        rc = run_blocks(m, s, R, seq, pos0, L);
        if (rc) {
            swax_state_reset(s, seq); /* a half-updated state is useless: leave it empty */
            rc = swax_error_wrap(rc, "prefill at position %ld", pos0);
            break;
        }
        s->pos[seq] = pos0 + R;
        if (all_logits) lm_head(m, s, 0, R, all_logits + done * V);
        done += (size_t)R;
        if (done == n && last_logits) {
            if (all_logits) memcpy(last_logits, all_logits + (n - 1) * V, sizeof(float) * V);
            else lm_head(m, s, R - 1, 1, last_logits);
        }
    }
    threads_exit(&th);
    return rc;
}

/* device decode: one step of the n rows already in rowseq / rowpos. head 0:
 * state only; 1: logits to the host; 2: greedy ids (argmax on the device). */
typedef struct {
    SwaxModel *m;
    SwaxState *s;
    int n, head;
} DecodeStep;

static void decode_body(void *arg) {
    const DecodeStep *a = arg;
    SwaxModel *m = a->m;
    SwaxState *s = a->s;
    m->ops->embed_fwd(s->x, s->d_tok, m->w.embed, a->n, s->D);
    (void)run_blocks(m, s, a->n, -1, 0, 1); /* the device path cannot fail */
    if (a->head) lm_head_rows(m, s, 0, a->n, s->d_logits);
    if (a->head == 2) m->ops->argmax(s->d_next, s->d_logits, a->n, s->V, m->cfg.vocab_used);
}

static int graphs_on(const SwaxOps *ops) {
    const char *g = getenv("SWAX_CUDA_GRAPHS");
    if (!ops->graph_run || (g && !strcmp(g, "0")) || swax_ops_profile_on()) return 0;
    return 1;
}

static int decode_dev(SwaxModel *m, SwaxState *s, const int *seqs, const int32_t *tokens, int n, float *logits,
                      int32_t *next) {
    const SwaxOps *ops = m->ops;
    const int head = next ? 2 : logits ? 1 : 0;
    if (head) SWAX_TRY(ensure_logits(s, n));
    if (head == 2 && !ops->argmax) return swax_error(SWAX_E_USAGE, "decode: the ops table %s has no argmax", ops->name);
    /* the step's inputs into the fixed buffers the graph reads */
    ops->to_device(s->d_tok, tokens, sizeof(int32_t) * (size_t)n);
    ops->to_device(s->d_rowseq, s->rowseq, sizeof(int) * (size_t)n);
    ops->to_device(s->d_rowpos, s->rowpos, sizeof(long) * (size_t)n);
    DecodeStep st = {m, s, n, head};
    if (graphs_on(ops)) ops->graph_run(&s->graphs[3 * n + head], decode_body, &st);
    else decode_body(&st);
    for (int i = 0; i < n; i++) s->pos[seqs[i]]++;
    if (head == 1) ops->to_host(logits, s->d_logits, sizeof(float) * (size_t)n * (size_t)s->V);
    else if (head == 2) ops->to_host(next, s->d_next, sizeof(int32_t) * (size_t)n);
    else ops->sync();
    return 0;
}

/* CPU decode of rows r0 .. r0 + R - 1 of a step (rowseq / rowpos filled):
 * embedding, blocks, logits. It runs on a view of the state whose row scratch
 * starts at row r0 (every operation of a decode step is per row), so threads
 * can run disjoint row ranges at once. */
static int decode_rows(SwaxModel *m, const SwaxState *s, const int32_t *tokens, int r0, int R, float *logits) {
    SwaxState v = *s;
    const size_t D = s->D, NH = s->NH, F = s->F;
    size_t mixw = 3 * (size_t)s->HD > (size_t)s->P ? 3 * (size_t)s->HD : (size_t)s->P;
    if ((size_t)s->Pd > mixw) mixw = s->Pd;
    const size_t attw = (size_t)s->HD > D ? (size_t)s->HD : D, r = (size_t)r0;
    v.x += r * D, v.mid += r * D, v.ln += r * D, v.rstd += r, v.mix += r * mixw, v.att += r * attw;
    v.ig += r * NH, v.lf += r * NH, v.hn += r * D, v.hmean += r * NH, v.hrstd += r * NH, v.y += r * D;
    v.gu += r * 2 * F, v.hf += r * F, v.rowpos += r, v.rowseq += r;
    if (v.gdn) v.gdn += r * s->gdn_row, v.gdn_st += r;
    m->ops->embed_fwd(v.x, tokens + r0, m->w.embed, R, s->D);
    const int rc = run_blocks(m, &v, R, -1, 0, 1); /* decode cannot fail past the checks */
    if (!rc && logits) lm_head_rows(m, &v, 0, R, logits + r * (size_t)s->V);
    return rc;
}

/* The checks of a decode call (rows, distinct sequences, token ids), then the
 * scratch for n rows and each row's sequence and position. */
static int decode_begin(SwaxModel *m, SwaxState *s, const int *seqs, const int32_t *tokens, int n) {
    if (n < 1 || !seqs || !tokens) return swax_error(SWAX_E_USAGE, "decode: needs n >= 1 sequences and tokens");
    if (n > s->S) return swax_error(SWAX_E_USAGE, "decode: %d rows for a state of %d sequences", n, s->S);
    for (int i = 0; i < n; i++) {
        if (seqs[i] < 0 || seqs[i] >= s->S)
            return swax_error(SWAX_E_USAGE, "decode: sequence %d out of range [0, %d)", seqs[i], s->S);
        for (int j = 0; j < i; j++)
            if (seqs[j] == seqs[i])
                return swax_error(SWAX_E_USAGE, "decode: sequence %d appears twice in one call", seqs[i]);
    }
    SWAX_TRY(check_tokens(m, tokens, (size_t)n, "decode"));
    SWAX_TRY(ensure_scratch(s, n));
    for (int i = 0; i < n; i++) {
        s->rowseq[i] = seqs[i];
        s->rowpos[i] = s->pos[seqs[i]];
    }
    return 0;
}

int swax_decode(SwaxModel *m, SwaxState *s, const int *seqs, const int32_t *tokens, int n, float *logits) {
    SWAX_TRY(check_model(s, m));
    SWAX_TRY(decode_begin(m, s, seqs, tokens, n));
    if (s->dev) return decode_dev(m, s, seqs, tokens, n, logits, NULL);
    const double row_macs = s->macs_row + (logits ? (double)s->V * s->D : 0.0);
    /* one row: the products split by columns, ~50 parallel regions a step;
     * with the passive waiting swax sets, each wakes the sleeping threads
     * (~30 us on this VM): below ~32M multiply-adds one thread is faster
     * (bench-cpu, 7.4M: 870 tokens/s on 1 thread, 460 on 2). Several rows:
     * one region a step (below), worth it from ~4M. */
    Threads th;
    threads_enter(&th, n * row_macs, n == 1 ? 32e6 : 4e6);
    const int nt = omp_get_max_threads();
    int rc = 0;
    if (nt > 1 && n >= 2 && m->ops == swax_ops_cpu()) {
        /* the rows are independent: each thread runs the whole step on its own
         * share of them, in one parallel region (no barrier inside the step;
         * splitting every product by columns instead costs a region per
         * operation, ~50 a step, each a wake-up of the sleeping threads) */
        const int T = n < nt ? n : nt;
#pragma omp parallel num_threads(T) reduction(| : rc)
        {
            const int t = omp_get_thread_num(), nth = omp_get_num_threads();
            const int r0 = (int)((long)n * t / nth), r1 = (int)((long)n * (t + 1) / nth);
            if (r1 > r0) rc |= decode_rows(m, s, tokens, r0, r1 - r0, logits);
        }
    } else {
        rc = decode_rows(m, s, tokens, 0, n, logits);
    }
    if (!rc)
        for (int i = 0; i < n; i++) s->pos[seqs[i]]++;
    threads_exit(&th);
    return rc;
}

int swax_decode_greedy(SwaxModel *m, SwaxState *s, const int *seqs, const int32_t *tokens, int n, int32_t *next) {
    if (!next) return swax_error(SWAX_E_USAGE, "decode: greedy needs an output array");
    SWAX_TRY(check_model(s, m));
    if (!s->dev) {
        float *lg = swax_calloc((size_t)n > 0 ? (size_t)n : 1, (size_t)s->V * sizeof(float), "decode logits");
        if (!lg) return SWAX_E_NOMEM;
        int rc = swax_decode(m, s, seqs, tokens, n, lg);
        for (int i = 0; !rc && i < n; i++) next[i] = swax_sample(lg + (size_t)i * s->V, m->cfg.vocab_used, NULL, NULL);
        free(lg);
        return rc;
    }
    /* the checks of swax_decode, then the device step with the argmax on the device */
    SWAX_TRY(decode_begin(m, s, seqs, tokens, n));
    return decode_dev(m, s, seqs, tokens, n, NULL, next);
}

/* ---- state files -------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "state files store float32 little-endian: add byte swapping for this host"
#endif

int swax_state_save(const SwaxState *s, const SwaxModel *m, int seq, const char *path) {
    SWAX_TRY(check_model(s, m));
    if (seq < 0 || seq >= s->S) return swax_error(SWAX_E_USAGE, "state save: sequence %d out of range", seq);
    const size_t bytes = s->per_seq * sizeof(float);
    float *host = NULL;
    if (s->dev) { /* the sequence block to the host: the file is the same from any device */
        if (!(host = swax_calloc(s->per_seq ? s->per_seq : 1, sizeof(float), "state save"))) return SWAX_E_NOMEM;
        s->ops->to_host(host, seq_data(s, seq), bytes);
    }
    const float *d = s->dev ? host : seq_data(s, seq);
    unsigned char h[SWAX_STATE_HEADER];
    memset(h, 0, sizeof h);
    memcpy(h, SWAX_STATE_MAGIC, 8);
    put_u32(h + 8, SWAX_STATE_VERSION);
    put_u32(h + 12, SWAX_STATE_HEADER);
    put_u64(h + 16, s->cfg_fp);
    put_u64(h + 24, swax_weights_fingerprint(m));
    put_u64(h + 32, (uint64_t)s->pos[seq]);
    put_u32(h + 40, (uint32_t)s->window);
    put_u32(h + 44, (uint32_t)s->n_blocks);
    put_u64(h + 48, (uint64_t)bytes);
    put_u64(h + 56, hash_bytes(0, d, bytes));
    SwaxAtomicFile af;
    int rc = swax_atomic_open(&af, path);
    if (!rc && (swax_atomic_write(&af, h, sizeof h) || swax_atomic_write(&af, d, bytes))) {
        swax_atomic_abort(&af);
        rc = SWAX_E_IO;
    } else if (!rc) {
        rc = swax_atomic_commit(&af);
    }
    free(host);
    return rc;
}

int swax_state_load(SwaxState *s, const SwaxModel *m, int seq, const char *path) {
    SWAX_TRY(check_model(s, m));
    if (seq < 0 || seq >= s->S) return swax_error(SWAX_E_USAGE, "state load: sequence %d out of range", seq);
    FILE *f = fopen(path, "rb");
    if (!f) return swax_error(SWAX_E_INPUT, "%s: cannot open state file", path);
    unsigned char h[SWAX_STATE_HEADER];
    size_t got = fread(h, 1, sizeof h, f);
    int rc = 0;
    const size_t expect = s->per_seq * sizeof(float);
    if (got < 8 || memcmp(h, SWAX_STATE_MAGIC, 8) != 0) {
        rc = swax_error(SWAX_E_INPUT, "%s: not a swax state file (bad magic)", path);
    } else if (got < sizeof h) {
        rc = swax_error(SWAX_E_INPUT, "%s: truncated state file (%zu of %u header bytes)", path, got,
                        SWAX_STATE_HEADER);
    } else if (get_u32(h + 8) != SWAX_STATE_VERSION || get_u32(h + 12) != SWAX_STATE_HEADER) {
        rc = swax_error(SWAX_E_INPUT, "%s: state file version %u is not supported (expected %u)", path,
                        get_u32(h + 8), SWAX_STATE_VERSION);
    } else if (get_u32(h + 40) != (uint32_t)s->window) {
        rc = swax_error(SWAX_E_INPUT, "%s: state was saved at window %u, this state runs at window %d", path,
                        get_u32(h + 40), s->window);
    } else if (get_u64(h + 16) != s->cfg_fp || get_u32(h + 44) != (uint32_t)s->n_blocks) {
        rc = swax_error(SWAX_E_INPUT,
                        "%s: state was saved by a model with another config (fingerprint %016llx, this model "
                        "%016llx)",
                        path, (unsigned long long)get_u64(h + 16), (unsigned long long)s->cfg_fp);
    } else if (get_u64(h + 24) != swax_weights_fingerprint(m)) {
        rc = swax_error(SWAX_E_INPUT,
                        "%s: state was saved by a model with the same config but other weights "
                        "(weights fingerprint %016llx, this model %016llx)",
                        path, (unsigned long long)get_u64(h + 24), (unsigned long long)swax_weights_fingerprint(m));
    } else if (get_u64(h + 48) != (uint64_t)expect) {
        rc = swax_error(SWAX_E_INPUT, "%s: state payload of %llu bytes, expected %zu", path,
                        (unsigned long long)get_u64(h + 48), expect);
    } else if (get_u64(h + 32) > (uint64_t)1 << 62) {
        rc = swax_error(SWAX_E_INPUT, "%s: bad position %llu", path, (unsigned long long)get_u64(h + 32));
    }
    if (!rc) {
        /* the payload goes straight into the sequence; if it proves short or
         * corrupt the sequence is reset (never left half-loaded) */
        float *host = NULL;
        if (s->dev && !(host = swax_calloc(s->per_seq ? s->per_seq : 1, sizeof(float), "state load"))) {
            fclose(f);
            return SWAX_E_NOMEM;
        }
        float *d = s->dev ? host : seq_data(s, seq);
        got = fread(d, 1, expect, f);
        int extra = fgetc(f) != EOF;
        if (got != expect) {
            swax_state_reset(s, seq);
            rc = swax_error(SWAX_E_INPUT, "%s: truncated state file (%zu of %zu payload bytes)", path, got, expect);
        } else if (extra) {
            swax_state_reset(s, seq);
            rc = swax_error(SWAX_E_INPUT, "%s: trailing bytes after the state payload", path);
        } else if (hash_bytes(0, d, expect) != get_u64(h + 56)) {
            swax_state_reset(s, seq);
            rc = swax_error(SWAX_E_INPUT, "%s: state payload checksum mismatch (corrupt file)", path);
        } else {
            if (s->dev) s->ops->to_device(seq_data(s, seq), host, expect);
            s->pos[seq] = (long)get_u64(h + 32);
        }
        free(host);
    }
    fclose(f);
    return rc;
}
