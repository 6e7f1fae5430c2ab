/* ops_cuda.cu — the CUDA table of ops.h: the backend context (device, stream,
 * cuBLASLt handle and workspace, scratch arenas), memory slots, the matrix
 * products through cuBLASLt, and the table itself. The kernels live beside
 * this file (elementwise.cu, attn.cu, mlstm.cu).
 *
 * Precision, two tables: "cuda-fp32" — fp32 storage and fp32 arithmetic with
 * TF32 off (CUBLAS_COMPUTE_32F), held to the CPU path at 1e-4 relative; and
 * "cuda" — bf16 operands in every matrix product (fp32 accumulation, fp32
 * results): cuBLASLt with weights from a bf16 copy of the fp32 master
 * parameters refreshed after each optimizer step, and the tensor-core SWA and
 * mLSTM kernels (attn_tc.cu, mlstm_tc.cu). Activations stay fp32 in memory in
 * this version; gates, states, normalisers and softmax statistics are fp32.
 *
 * Determinism: cuBLASLt algorithms are chosen once per shape and cached, and
 * split-K is allowed only with a separate reduction of the partial results in
 * the workspace (reduction schemes COMPUTE_TYPE and OUTPUT_TYPE, not INPLACE),
 * so the same product on the same card gives the same bits every time (the
 * GPU tests run steps twice and compare bytes). */
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <string.h>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_slots.h"
#include "ops/cuda/gemv.h"
#include "ops/gemm_picks.h"

extern "C" {
#include "core/common.h"
}

/* ---------------------------------------------------------------- context */

typedef struct {
    int ready, failed;
    int device, sm_count;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace;
    size_t workspace_bytes;
    void *scratch[SWAX_SCRATCH_SLOTS];
    size_t scratch_bytes[SWAX_SCRATCH_SLOTS];
    char why[512];
} CudaCtx;

static CudaCtx ctx;
static unsigned long scratch_epoch; /* bumped whenever a scratch arena moves (captured graphs go stale) */

extern "C" unsigned long swax_cuda_scratch_epoch(void) { return scratch_epoch; }

extern "C" cudaStream_t swax_cuda_stream(void) { return ctx.stream; }
extern "C" int swax_cuda_sm_count(void) { return ctx.sm_count; }

extern "C" void swax_cuda_fatal(cudaError_t e, const char *what, const char *file, int line) {
    fprintf(stderr, "swax: CUDA error %s (%s) in %s at %s:%d\n", cudaGetErrorName(e), cudaGetErrorString(e), what,
            file, line);
    if (e == cudaErrorMemoryAllocation)
        fprintf(stderr, "swax: hint: the GPU is out of memory; try a smaller --batch or --seq, or --recompute\n");
    exit(SWAX_E_INTERNAL);
}

extern "C" void swax_cuda_require_failed(const char *cond, const char *file, int line) {
    fprintf(stderr, "swax: CUDA backend precondition failed: %s at %s:%d\n", cond, file, line);
    exit(SWAX_E_INTERNAL);
}

static void lt_check(cublasStatus_t s, const char *what, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    fprintf(stderr, "swax: cuBLASLt error %d in %s at %s:%d\n", (int)s, what, file, line);
    exit(SWAX_E_INTERNAL);
}
#define LT_CHECK(call) lt_check((call), #call, __FILE__, __LINE__)

extern "C" void *swax_cuda_scratch(int slot, size_t bytes) {
    SWAX_CUDA_REQUIRE(slot >= 0 && slot < SWAX_SCRATCH_SLOTS);
    if (bytes > ctx.scratch_bytes[slot]) {
        if (ctx.scratch[slot]) {
            /* the old buffer may still be in use by queued work */
            SWAX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
            SWAX_CUDA_CHECK(cudaFree(ctx.scratch[slot]));
        }
        scratch_epoch++;
        size_t grow = bytes + bytes / 4 + 256;
        SWAX_CUDA_CHECK(cudaMalloc(&ctx.scratch[slot], grow));
        ctx.scratch_bytes[slot] = grow;
    }
    return ctx.scratch[slot];
}

/* Initialises the device once. Returns 0, or a swax_error naming the reason. */
static int ctx_init(void) {
    if (ctx.ready) return 0;
    if (ctx.failed) return swax_error(SWAX_E_USAGE, "%s", ctx.why);
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1) {
        snprintf(ctx.why, sizeof ctx.why, "no usable CUDA device (the CUDA runtime says: %s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports 0 devices");
        cudaGetLastError(); /* clear the sticky-free error */
        ctx.failed = 1;
        return swax_error(SWAX_E_USAGE, "%s", ctx.why);
    }
    const char *env = getenv("SWAX_CUDA_DEVICE");
    ctx.device = env ? atoi(env) : 0;
    if (ctx.device < 0 || ctx.device >= n) {
        snprintf(ctx.why, sizeof ctx.why, "SWAX_CUDA_DEVICE=%s: this machine has %d CUDA device(s)", env, n);
        ctx.failed = 1;
        return swax_error(SWAX_E_USAGE, "%s", ctx.why);
    }
    cudaDeviceProp p;
    SWAX_CUDA_CHECK(cudaSetDevice(ctx.device));
    SWAX_CUDA_CHECK(cudaGetDeviceProperties(&p, ctx.device));
    if (p.major < 9) {
        snprintf(ctx.why, sizeof ctx.why, "CUDA device %d (%s) has compute capability %d.%d; swax is built for 9.0 (Hopper)",
                 ctx.device, p.name, p.major, p.minor);
        ctx.failed = 1;
        return swax_error(SWAX_E_USAGE, "%s", ctx.why);
    }
    ctx.sm_count = p.multiProcessorCount;
    SWAX_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));
    LT_CHECK(cublasLtCreate(&ctx.lt));
    ctx.workspace_bytes = 32u << 20;
    SWAX_CUDA_CHECK(cudaMalloc(&ctx.workspace, ctx.workspace_bytes));
    ctx.ready = 1;
    return 0;
}

/* ---------------------------------------------------------------- memory */

static void *cu_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        swax_error(SWAX_E_NOMEM, "GPU memory: cannot allocate %.1f MiB (%.1f of %.1f GiB free): %s", bytes / 1048576.0,
                   fr / 1073741824.0, tot / 1073741824.0, cudaGetErrorString(e));
        return NULL;
    }
    SWAX_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, ctx.stream));
    return p;
}

static void kept_forget(const void *p, size_t bytes);
static int env_is(const char *name, const char *value, int *cache);

/* Activations stored in bf16 (ops.h alloc_act; the "cuda" table only): the
 * model's normed block inputs, SwiGLU inputs and outputs, which only products,
 * RMSNorm and SwiGLU touch. The allocation holds n bf16 values; the ops that
 * take such a pointer look it up here and read or write bf16 (a product's
 * operand is then used as it is: no rounding pass, no kept copy; the gate/up
 * product writes its output in bf16). ~20 GB of traffic and ~20 GB of memory
 * less a bench-gpu step. SWAX_BF16_ACT=0: plain fp32 arrays (A/B timing). */
typedef struct {
    const void *p;
    size_t n;
} ActB;
enum { ACTB_CAP = 1024 };
static ActB actb[ACTB_CAP];
static int actb_used; /* entries [0, actb_used) may be live; p NULL: free */

static float *cu_alloc_act(size_t n) {
    static int off = -1;
    if (env_is("SWAX_BF16_ACT", "0", &off)) return (float *)cu_alloc(sizeof(float) * n);
    int i = 0;
    while (i < actb_used && actb[i].p) i++;
    if (i == ACTB_CAP) return (float *)cu_alloc(sizeof(float) * n); /* full: fp32, as if switched off */
    void *p = cu_alloc(sizeof(__nv_bfloat16) * n);
    if (!p) return NULL;
    actb[i].p = p, actb[i].n = n;
    if (i == actb_used) actb_used++;
    return (float *)p;
}

extern "C" void *swax_cuda_act_bf16(const float *p, long ld, int rows, int cols) {
    if (!p) return NULL;
    for (int i = 0; i < actb_used; i++) {
        if (!actb[i].p) continue;
        const uintptr_t lo = (uintptr_t)actb[i].p, hi = lo + sizeof(__nv_bfloat16) * actb[i].n, q = (uintptr_t)p;
        if (q > lo && q < hi) { /* a pointer into one: read as fp32, garbage */
            fprintf(stderr, "swax: internal error: an op was given a pointer into a bf16-stored activation (ops.h "
                            "alloc_act: only whole arrays may be passed)\n");
            exit(SWAX_E_INTERNAL);
        }
        if (actb[i].p == (const void *)p) {
            if (ld != cols || rows < 0 || cols < 0 || (size_t)rows * (size_t)cols > actb[i].n) {
                fprintf(stderr, "swax: internal error: a bf16-stored activation (%zu values) used as %d x %d with "
                                "row stride %ld (ops.h alloc_act: whole rows, dense)\n",
                        actb[i].n, rows, cols, ld);
                exit(SWAX_E_INTERNAL);
            }
            return (void *)p;
        }
    }
    return NULL;
}

static void cu_free(void *p) {
    if (!p) return;
    for (int i = 0; i < actb_used; i++)
        if (actb[i].p == p) actb[i].p = NULL;
    kept_forget(NULL, 0); /* the allocation's extent is unknown here: forget every kept copy */
    /* queued work may still read it */
    SWAX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    swax_cuda_attn_keep_release(p);
    SWAX_CUDA_CHECK(cudaFree(p));
}

static void cu_to_device(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    kept_forget(dst, bytes);
    SWAX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx.stream));
    /* src is pageable host memory the caller may reuse at once */
    SWAX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

static void cu_to_host(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    SWAX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx.stream));
    SWAX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

static void cu_zero(void *p, size_t bytes) {
    kept_forget(p, bytes);
    if (bytes) SWAX_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, ctx.stream));
}

static void cu_copy(void *dst, const void *src, size_t bytes) {
    kept_forget(dst, bytes);
    if (bytes && dst != src) SWAX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream));
}

static void cu_sync(void) { SWAX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream)); }

/* ---------------------------------------------------------------- GEMM */

/* One cached cuBLASLt plan per (operand type, transa, transb, m, n, k, lda,
 * ldb, ldc, accumulate). bf16 = 0: operands fp32 (TF32 off); 1: operands bf16;
 * C fp32 in both; 2: operands and C (D) bf16 (a bf16-stored activation as the
 * output, ops.h alloc_act). */
typedef struct {
    int used;
    int bf16, ta, tb, m, n, k;
    long lda, ldb, ldc;
    int accumulate;
    int align_a, align_b, align_c; /* byte alignment of the pointers the plan was chosen for */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    size_t ws;
} GemmPlan;

enum { PLAN_CAP = 1024 };
static GemmPlan plans[PLAN_CAP];

/* Largest power of two (at most 256) dividing the address: cuBLASLt's
 * heuristics assume 256-byte-aligned operands unless told otherwise, and an
 * algorithm chosen for aligned operands refuses (status 15) misaligned ones,
 * e.g. the gate columns at offset 3D of a projection row. */
static int ptr_align(const void *p) {
    const uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 1 && (a & (uintptr_t)(al - 1))) al >>= 1;
    return al;
}

/* The algorithm preferences of every plan: the workspace, the alignments the
 * operands have, and split-K only with a separate, fixed-order reduction of
 * partial results in the workspace (never the in-place scheme): the same
 * product gives the same bits every time. Needed for the weight gradients,
 * whose K is the token count (32k) and whose output (e.g. 1024 x 1024) is too
 * small to fill the card without splitting K. */
static cublasLtMatmulPreference_t gemm_pref(int bf16, int aa, int ab, int ac) {
    cublasLtMatmulPreference_t pref;
    LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t wsb = ctx.workspace_bytes;
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
    uint32_t red = CUBLASLT_REDUCTION_SCHEME_NONE;
    if (bf16) /* the fp32 table is for tests: no split-K there, the CPU's order is closer */
        red |= CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    if (bf16 == 1) /* partial sums in the output type only where that is fp32: a bf16 output is rounded once */
        red |= CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &red, sizeof red));
    const uint32_t ua = (uint32_t)aa, ub = (uint32_t)ab, uc = (uint32_t)ac;
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &ua, sizeof ua));
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ub, sizeof ub));
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &uc, sizeof uc));
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &uc, sizeof uc));
    return pref;
}

/* SWAX_GEMM_PICKS=FILE (ops/gemm_picks.h): for a listed bf16 product, cuBLASLt's
 * index-th heuristic answer instead of its first (what `swax bench gemm` found
 * fastest; read from the file, not timed at run time, so reruns keep the same
 * bits). A file that cannot be read stops the program with its message. */
enum { GEMM_PICK_MAX = 31 };
static int gemm_pick(int ta, int tb, int m, int n, int k, int acc, int out16) {
    static int loaded, np;
    static SwaxGemmPick *picks;
    if (!loaded) {
        loaded = 1;
        const char *path = getenv("SWAX_GEMM_PICKS");
        if (path && *path && swax_gemm_picks_read(path, GEMM_PICK_MAX, &picks, &np)) {
            fprintf(stderr, "swax: SWAX_GEMM_PICKS: %s\n", swax_last_error());
            exit(SWAX_E_INPUT);
        }
    }
    return swax_gemm_pick_find(picks, np, ta, tb, m, n, k, acc, out16);
}

static GemmPlan *gemm_plan(int bf16, int ta, int tb, int m, int n, int k, long lda, long ldb, long ldc,
                           int accumulate, int aa, int ab, int ac) {
    unsigned h = (unsigned)(bf16 * 5 + ta * 7 + tb * 13 + m * 31 + n * 131 + k * 1031 + (int)lda * 17 +
                            (int)ldb * 19 + (int)ldc * 23 + accumulate * 3 + aa * 37 + ab * 41 + ac * 43);
    for (int probe = 0; probe < PLAN_CAP; probe++) {
        GemmPlan *p = &plans[(h + probe) % PLAN_CAP];
        if (p->used && p->bf16 == bf16 && p->ta == ta && p->tb == tb && p->m == m && p->n == n && p->k == k &&
            p->lda == lda && p->ldb == ldb && p->ldc == ldc && p->accumulate == accumulate && p->align_a == aa &&
            p->align_b == ab && p->align_c == ac)
            return p;
        if (p->used) continue;
        p->used = 1;
        p->bf16 = bf16, p->ta = ta, p->tb = tb, p->m = m, p->n = n, p->k = k, p->lda = lda, p->ldb = ldb;
        p->ldc = ldc, p->accumulate = accumulate, p->align_a = aa, p->align_b = ab, p->align_c = ac;
        const cudaDataType_t dt = bf16 ? CUDA_R_16BF : CUDA_R_32F, ct = bf16 == 2 ? CUDA_R_16BF : CUDA_R_32F;
        LT_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
        LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
        LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
        /* column-major layouts: A is (ta ? k×m : m×k), B is (tb ? n×k : k×n), C is m×n */
        LT_CHECK(cublasLtMatrixLayoutCreate(&p->a, dt, ta ? k : m, ta ? m : k, lda));
        LT_CHECK(cublasLtMatrixLayoutCreate(&p->b, dt, tb ? n : k, tb ? k : n, ldb));
        LT_CHECK(cublasLtMatrixLayoutCreate(&p->c, ct, m, n, ldc));
        cublasLtMatmulPreference_t pref = gemm_pref(bf16, aa, ab, ac);
        /* the heuristic's first answer, or the pick of SWAX_GEMM_PICKS for this shape (bf16, all
         * operands 256-byte aligned: the preferences `swax bench gemm` ranks candidates under) */
        const int pick = bf16 && aa == 256 && ab == 256 && ac == 256
                             ? gemm_pick(ta, tb, m, n, k, accumulate, bf16 == 2)
                             : 0;
        cublasLtMatmulHeuristicResult_t res[GEMM_PICK_MAX + 1];
        int got = 0;
        LT_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx.lt, p->op, p->a, p->b, p->c, p->c, pref, pick + 1, res, &got));
        cublasLtMatmulPreferenceDestroy(pref);
        if (got < 1) {
            fprintf(stderr, "swax: cuBLASLt has no algorithm for a %dx%dx%d %s product (ta %d tb %d)\n", m, n, k,
                    bf16 ? "bf16" : "fp32", ta, tb);
            exit(SWAX_E_INTERNAL);
        }
        const int use = pick < got && res[pick].state == CUBLAS_STATUS_SUCCESS ? pick : 0;
        p->algo = res[use].algo;
        p->ws = res[use].workspaceSize;
        return p;
    }
    fprintf(stderr, "swax: too many distinct matrix shapes for the cuBLASLt plan cache (%d)\n", PLAN_CAP);
    exit(SWAX_E_INTERNAL);
}

/* Column-major C (m×n, ldc; fp32, bf16 when bf16 = 2) = op(A) op(B) (+ C when
 * accumulate; + Cin, with C's layout, when Cin: the epilogue's beta term, not
 * a separate pass). */
static void gemm_c(int bf16, int ta, int tb, int m, int n, int k, const void *A, long lda, const void *B, long ldb,
                   void *Cm, long ldc, int accumulate, const void *Cin) {
    if (m <= 0 || n <= 0) return;
    const size_t es = bf16 == 2 ? sizeof(__nv_bfloat16) : sizeof(float);
    /* every product's output (e.g. a new qkv): attn_tc.cu's kept staging there is stale */
    swax_cuda_attn_keep_forget(Cm, es * ((size_t)(n - 1) * ldc + m));
    if (Cin) accumulate = 1;
    const void *Csrc = Cin ? Cin : Cm;
    if (k <= 0) {
        if (Cin)
            SWAX_CUDA_CHECK(cudaMemcpy2DAsync(Cm, es * ldc, Cin, es * ldc, es * m, n, cudaMemcpyDeviceToDevice,
                                              ctx.stream));
        else if (!accumulate)
            SWAX_CUDA_CHECK(cudaMemset2DAsync(Cm, es * ldc, 0, es * m, n, ctx.stream));
        return;
    }
    /* Plans assume 256-byte alignment (cuBLASLt's default) for operands
     * aligned to at least 16 bytes, the true alignment below that; an
     * algorithm that still refuses an operand (status 15) is replaced by one
     * planned for the true alignment. */
    const int aa = ptr_align(A), ab = ptr_align(B), acd = ptr_align(Cm), acs = ptr_align(Csrc);
    const int ac = acd < acs ? acd : acs;
    GemmPlan *p = gemm_plan(bf16, ta, tb, m, n, k, lda, ldb, ldc, accumulate, aa >= 16 ? 256 : aa,
                            ab >= 16 ? 256 : ab, ac >= 16 ? 256 : ac);
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    cublasStatus_t st = cublasLtMatmul(ctx.lt, p->op, &alpha, A, p->a, B, p->b, &beta, Csrc, p->c, Cm, p->c, &p->algo,
                                       ctx.workspace, p->ws, ctx.stream);
    if (st == CUBLAS_STATUS_NOT_SUPPORTED) {
        p = gemm_plan(bf16, ta, tb, m, n, k, lda, ldb, ldc, accumulate, aa, ab, ac);
        st = cublasLtMatmul(ctx.lt, p->op, &alpha, A, p->a, B, p->b, &beta, Csrc, p->c, Cm, p->c, &p->algo,
                            ctx.workspace, p->ws, ctx.stream);
    }
    lt_check(st, "cublasLtMatmul", __FILE__, __LINE__);
}

static void gemm(int bf16, int ta, int tb, int m, int n, int k, const void *A, long lda, const void *B, long ldb,
                 float *Cm, long ldc, int accumulate) {
    gemm_c(bf16, ta, tb, m, n, k, A, lda, B, ldb, Cm, ldc, accumulate, NULL);
}

/* fp32 mode. Row-major out (N, OC) = inp (N, C) · w (OC, C)ᵀ; in column-major
 * terms outᵀ (OC×N) = op(w_cm)·inpᵀ with w_cm the C×OC view of w, transposed. */
extern "C" void swax_cuda_matmul_fwd(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C,
                                     int OC) {
    SWAX_CUDA_REQUIRE(ldo >= OC && ldi >= C);
    gemm(0, 1, 0, OC, N, C, w, C, inp, ldi, out, ldo, 0);
}

extern "C" void swax_cuda_matmul_fwd_add(float *out, long ldo, const float *inp, long ldi, const float *w, int N,
                                         int C, int OC, const float *resid) {
    SWAX_CUDA_REQUIRE(ldo >= OC && ldi >= C && resid && resid != out);
    gemm_c(0, 1, 0, OC, N, C, w, C, inp, ldi, out, ldo, 0, resid);
}

/* dinp (N, C) (+)= dout (N, OC) · w (OC, C):  column-major dinpᵀ (C×N) = w_cm (C×OC) · doutᵀ (OC×N)
 * dw (OC, C) += doutᵀ · inp:                   column-major dwᵀ (C×OC) = inpᵀ (C×N) · dout (N×OC) */
extern "C" void swax_cuda_matmul_bwd(float *dinp, long lddi, float *dw, const float *dout, long lddo,
                                     const float *inp, long ldi, const float *w, int N, int C, int OC, int acc) {
    if (dinp) gemm(0, 0, 0, C, N, OC, w, C, dout, lddo, dinp, lddi, acc);
    if (dw) gemm(0, 0, 1, C, OC, N, inp, ldi, dout, lddo, dw, C, 1);
}

/* ---- bf16 mode: the same products with bf16 operands, fp32 accumulation and
 * fp32 results. Weights come from a bf16 copy of the parameters refreshed by
 * params_updated (after every optimizer step); activations are rounded to
 * bf16 on their way into each product. */

/* The first version: one element per thread, a 64-bit division and modulo per
 * element (kept for A/B timing: SWAX_BF16_CVT=old). */
static __global__ void to_bf16_kernel_old(__nv_bfloat16 *dst, const float *src, long ld, int rows, int cols) {
    const size_t n = (size_t)rows * cols;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const size_t r = i / (size_t)cols, c = i % (size_t)cols;
        dst[i] = __float2bfloat16_rn(src[r * (size_t)ld + c]);
    }
}

/* rows x cols of src (row stride ld) into dense dst (row stride cols), rounded
 * to nearest even: rows over blockIdx.y, columns over x, VEC floats per thread
 * (4: one 16-byte load, one 8-byte store; the caller checks the alignment).
 * The same bits as the old kernel; no integer division per element. */
template <int VEC>
static __global__ void to_bf16_rows_kernel(__nv_bfloat16 *__restrict__ dst, const float *__restrict__ src, long ld,
                                           long rows, long cols) {
    const long nv = cols / VEC;
    for (long r = blockIdx.y; r < rows; r += gridDim.y) {
        const float *s = src + r * ld;
        __nv_bfloat16 *d = dst + r * cols;
        for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < nv; c += (long)gridDim.x * blockDim.x) {
            if (VEC == 4) {
                const float4 v = reinterpret_cast<const float4 *>(s)[c];
                __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
                uint2 u;
                memcpy(&u.x, &lo, 4);
                memcpy(&u.y, &hi, 4);
                reinterpret_cast<uint2 *>(d)[c] = u;
            } else {
                d[c] = __float2bfloat16_rn(s[c]);
            }
        }
    }
}

/* An A/B switch read once: whether the environment variable `name` is set to
 * `value` (*cache: -1 until read). */
static int env_is(const char *name, const char *value, int *cache) {
    if (*cache < 0) {
        const char *e = getenv(name);
        *cache = e && !strcmp(e, value);
    }
    return *cache;
}

static int cvt_old(void) {
    static int v = -1;
    return env_is("SWAX_BF16_CVT", "old", &v);
}

static void to_bf16(__nv_bfloat16 *dst, const float *src, long ld, long rows, long cols) {
    const size_t n = (size_t)rows * (size_t)cols;
    if (!n) return;
    if (cvt_old()) {
        const unsigned grid = n / 256 + 1 < 4u * (unsigned)ctx.sm_count * 8 ? (unsigned)(n / 256 + 1) : 4u * ctx.sm_count * 8;
        to_bf16_kernel_old<<<grid, 256, 0, ctx.stream>>>(dst, src, ld, (int)rows, (int)cols);
        SWAX_CUDA_LAUNCHED();
        return;
    }
    if (ld == cols) cols = (long)n, rows = 1, ld = (long)n; /* dense: one long row */
    const int vec4 = cols % 4 == 0 && ld % 4 == 0 && ((uintptr_t)src & 15) == 0 && ((uintptr_t)dst & 7) == 0;
    const long nv = vec4 ? cols / 4 : cols;
    const long max_blocks = 16L * ctx.sm_count;
    long gx = (nv + 255) / 256;
    if (gx > max_blocks) gx = max_blocks;
    long gy = max_blocks / gx;
    if (gy < 1) gy = 1;
    if (gy > rows) gy = rows;
    if (gy > 65535) gy = 65535;
    const dim3 grid((unsigned)gx, (unsigned)gy);
    if (vec4)
        to_bf16_rows_kernel<4><<<grid, 256, 0, ctx.stream>>>(dst, src, ld, rows, cols);
    else
        to_bf16_rows_kernel<1><<<grid, 256, 0, ctx.stream>>>(dst, src, ld, rows, cols);
    SWAX_CUDA_LAUNCHED();
}

/* rows × cols of src (row stride ld) as a dense bf16 matrix in scratch slot `slot`. */
static const __nv_bfloat16 *as_bf16(int slot, const float *src, long ld, int rows, int cols) {
    __nv_bfloat16 *dst = (__nv_bfloat16 *)swax_cuda_scratch(slot, sizeof(__nv_bfloat16) * (size_t)rows * cols);
    to_bf16(dst, src, ld, rows, cols);
    return dst;
}

static struct {
    const float *base;
    size_t n;
    __nv_bfloat16 *copy;
} shadow;

static void bf16_params_updated(const float *params, size_t n) {
    if (shadow.base != params || shadow.n != n) {
        if (shadow.copy) SWAX_CUDA_CHECK(cudaFree(shadow.copy));
        scratch_epoch++; /* graphs may hold pointers into the old copy */
        SWAX_CUDA_CHECK(cudaMalloc(&shadow.copy, sizeof(__nv_bfloat16) * (n ? n : 1)));
        shadow.base = params, shadow.n = n;
    }
    to_bf16(shadow.copy, params, (long)n, 1, (long)n);
}

/* Whether the static bf16 shadow holds w (OC, C). */
static bool in_shadow(const float *w, int OC, int C) {
    return shadow.copy && w >= shadow.base && w + (size_t)OC * C <= shadow.base + shadow.n;
}

/* The bf16 copy of a weight matrix (OC, C): from the parameters' copy when w is
 * a parameter, else rounded now (scratch slot). */
static const __nv_bfloat16 *weight_bf16(const float *w, int OC, int C, int slot) {
    if (in_shadow(w, OC, C)) return shadow.copy + (w - shadow.base);
    return as_bf16(slot, w, C, OC, C);
}

/* GEMV_NO_PDL where weight_bf16 gave not w's static shadow but a copy just converted on the stream (gemv.h) */
static int weight_fresh(const float *w, int OC, int C) { return in_shadow(w, OC, C) ? 0 : GEMV_NO_PDL; }

/* A bf16 copy announced by the kernel that wrote src (rows x cols, stride ld):
 * taken by the next product that reads exactly that operand. */
typedef struct {
    const float *src;
    long ld;
    int rows, cols, valid;
} SideCopy;

static void side_set(SideCopy *c, const float *src, long ld, int rows, int cols) {
    c->src = src, c->ld = ld, c->rows = rows, c->cols = cols, c->valid = 1;
}

/* Whether c announced exactly this operand; either way it is used up. */
static int side_take(SideCopy *c, const float *src, long ld, int rows, int cols) {
    const int hit = c->valid && c->src == src && c->ld == ld && c->rows == rows && c->cols == cols;
    c->valid = 0;
    return hit;
}

/* A product backward's dout already rounded to bf16 by the kernel that wrote
 * it (the cross-entropy backward: d logits, 50,304 wide, ~10 GB a bench-gpu
 * step; the SwiGLU backward: d(gate, up), ~8.7 GB; not read and rounded
 * again). Valid for the next backward product with exactly that dout only;
 * SWAX_BF16_DOUT=0 turns it off (A/B timing). */
static SideCopy dside;
/* A producer that left its fp32 output unwritten (swax_cuda_dout_bf16_only):
 * the next backward product must take its copy. */
static const float *dside_only;

extern "C" void *swax_cuda_dout_bf16(const float *src, long ld, int rows, int cols) {
    static int off = -1;
    dside.valid = 0;
    dside_only = NULL;
    if (env_is("SWAX_BF16_DOUT", "0", &off) || rows <= 0 || cols <= 0) return NULL;
    void *p = swax_cuda_scratch(SWAX_SCRATCH_BF16_B, sizeof(__nv_bfloat16) * (size_t)rows * cols);
    side_set(&dside, src, ld, rows, cols);
    return p;
}

/* As swax_cuda_dout_bf16, for a producer that may then leave its fp32 output
 * unwritten (*only = 1: the cross-entropy's d logits, the SwiGLU's d(gate,
 * up); ~15 GB a bench-gpu step not written): the next backward product, which
 * reads exactly that dout, takes the copy; if that product would round the
 * dout afresh instead (the copy forgotten in between), it stops with an
 * internal error rather than read unwritten memory. SWAX_BF16_ONLY=0 keeps
 * the fp32 output too (A/B). */
extern "C" void *swax_cuda_dout_bf16_only(const float *src, long ld, int rows, int cols, int *only) {
    static int off = -1;
    void *p = swax_cuda_dout_bf16(src, ld, rows, cols);
    *only = p && !env_is("SWAX_BF16_ONLY", "0", &off);
    if (*only) dside_only = src;
    return p;
}

/* dout (rows x cols, stride ld) as bf16: the kernel-made copy when it is the
 * one announced, else rounded now; either way in scratch slot B. */
static const __nv_bfloat16 *dout_bf16(const float *dout, long ld, int rows, int cols) {
    const float *only = dside_only;
    dside_only = NULL;
    if (side_take(&dside, dout, ld, rows, cols))
        return (const __nv_bfloat16 *)swax_cuda_scratch(SWAX_SCRATCH_BF16_B,
                                                        sizeof(__nv_bfloat16) * (size_t)rows * cols);
    if (only && only == dout) {
        fprintf(stderr, "swax: internal error: a backward product needs d-out values that were kept only as a bf16 "
                        "copy, and the copy was forgotten (ops.h: xent_train / swiglu_bwd)\n");
        exit(SWAX_E_INTERNAL);
    }
    return as_bf16(SWAX_SCRATCH_BF16_B, dout, ld, rows, cols);
}

/* Kept bf16 copies of product inputs. A product's backward reads the same
 * activation as its forward (ops.h: the model does not change a product's
 * input between the two), so the forward's bf16 copy is kept, keyed by
 * (pointer, stride, rows, cols), and the backward reuses it instead of
 * rounding the activation again (one read of 4 and one write of 2 bytes per
 * element saved; ~14 GB a bench-gpu step). A forward always rounds afresh
 * into its key's copy; writes through to_device, zero and copy forget the
 * copies they overlap, free forgets all. Not under stream capture (a graph
 * keeps its scratch pointers), within a memory
 * budget (an eighth of the card; first come, first kept), and only once a
 * backward product has run (inference keeps nothing). SWAX_BF16_KEEP=0 turns
 * it off (A/B timing). */
typedef struct {
    const float *src;
    long ld;
    int rows, cols, valid;
    __nv_bfloat16 *buf;
    size_t cap;
} KeptCopy;
enum { KEPT_CAP = 128 };
static KeptCopy kept[KEPT_CAP];
static size_t kept_bytes;

/* A product forward's input already rounded by the kernel that produced it,
 * into the input's kept slot (swax_cuda_fwd_bf16: RMSNorm and SwiGLU outputs;
 * ~7.5 GB a bench-gpu step not read again to be rounded). Valid for the next
 * forward product with exactly that input only; SWAX_BF16_FWD=0 turns it off.
 * (The final norm's output goes to the head in row chunks, other keys: its copy
 * is made and not taken, 2 bytes an element of waste.) */
static SideCopy fside;

static void kept_forget(const void *p, size_t bytes) {
    dside.valid = 0;
    fside.valid = 0;
    swax_cuda_attn_keep_forget(p, bytes);
    const char *lo = (const char *)p, *hi = lo + bytes;
    for (int i = 0; i < KEPT_CAP; i++) {
        KeptCopy *e = &kept[i];
        if (!e->valid) continue;
        const char *a = (const char *)e->src, *b = (const char *)(e->src + ((size_t)e->rows - 1) * e->ld + e->cols);
        if (!p || (a < hi && lo < b)) e->valid = 0;
    }
}

static int kept_training; /* set by the first backward product: inference never keeps copies */

static int kept_enabled(void) {
    static int off = -1;
    if (!kept_training || env_is("SWAX_BF16_KEEP", "0", &off)) return 0;
    cudaStreamCaptureStatus cs;
    SWAX_CUDA_CHECK(cudaStreamIsCapturing(ctx.stream, &cs));
    return cs == cudaStreamCaptureStatusNone;
}

extern "C" int swax_cuda_keeps_training_copies(void) { return kept_enabled(); }

static size_t kept_budget(void) {
    static size_t b;
    if (!b) {
        size_t fr = 0, tot = 0;
        SWAX_CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
        b = tot / 8; /* at most an eighth of the card */
    }
    return b;
}

/* The kept slot of (src, ld, rows, cols): found, or made now; NULL when
 * copies are not kept (see above) or it does not fit. */
static KeptCopy *kept_slot(const float *src, long ld, int rows, int cols) {
    const size_t need = sizeof(__nv_bfloat16) * (size_t)rows * cols;
    if (!need || !kept_enabled() || need > kept_budget()) return NULL;
    KeptCopy *e = NULL, *fr = NULL;
    for (int i = 0; i < KEPT_CAP && !e; i++) {
        if (kept[i].buf && kept[i].src == src && kept[i].ld == ld && kept[i].rows == rows && kept[i].cols == cols)
            e = &kept[i];
        else if (!kept[i].buf && !fr)
            fr = &kept[i];
    }
    if (!e) { /* first come, first kept: no eviction (no allocation churn in a step) */
        if (!fr || kept_bytes + need > kept_budget()) return NULL;
        if (cudaMalloc(&fr->buf, need) != cudaSuccess) {
            cudaGetLastError();
            fr->buf = NULL;
            return NULL;
        }
        e = fr;
        e->cap = need;
        kept_bytes += need;
        e->src = src, e->ld = ld, e->rows = rows, e->cols = cols;
    }
    return e;
}

extern "C" void *swax_cuda_fwd_bf16(const float *src, long ld, int rows, int cols) {
    static int off = -1;
    fside.valid = 0;
    if (env_is("SWAX_BF16_FWD", "0", &off) || rows <= 0 || cols <= 0) return NULL;
    KeptCopy *e = kept_slot(src, ld, rows, cols);
    if (!e) return NULL;
    e->valid = 0; /* until the product that takes it */
    side_set(&fside, src, ld, rows, cols);
    return e->buf;
}

/* The forward's bf16 copy of inp: the producer's (announced just before), or
 * rounded now into its kept slot, or into scratch when it cannot be kept. */
static const __nv_bfloat16 *kept_round(const float *src, long ld, int rows, int cols) {
    const int made = side_take(&fside, src, ld, rows, cols);
    KeptCopy *e = kept_slot(src, ld, rows, cols);
    if (!e) return as_bf16(SWAX_SCRATCH_BF16_A, src, ld, rows, cols);
    if (!made) to_bf16(e->buf, src, ld, rows, cols);
    e->valid = 1;
    return e->buf;
}

/* The backward's bf16 copy of inp: the forward's kept copy when it is still
 * valid, else rounded now into scratch. */
static const __nv_bfloat16 *kept_find(const float *src, long ld, int rows, int cols) {
    if (kept_enabled())
        for (int i = 0; i < KEPT_CAP; i++) {
            KeptCopy *e = &kept[i];
            if (e->valid && e->src == src && e->ld == ld && e->rows == rows && e->cols == cols) {
                return e->buf;
            }
        }
    return as_bf16(SWAX_SCRATCH_BF16_A, src, ld, rows, cols);
}

/* SWAX_GEMV=0: decode products through cuBLASLt too (A/B timing) */
static int gemv_on(void) {
    static int off = -1;
    return !env_is("SWAX_GEMV", "0", &off);
}

/* out (+ resid, in the epilogue, when resid) = inp · wᵀ with bf16 operands.
 * Decode: N <= 8 rows in one pass over the weights, the residual added in the
 * gemv's store (gemv.cu; nonzero = not handled); not in training, where it
 * would make no kept copy of the input. */
static void bf16_forward(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC,
                         const float *resid) {
    dside.valid = 0;
    const __nv_bfloat16 *wb = weight_bf16(w, OC, C, SWAX_SCRATCH_BF16_W);
    /* bf16-stored activations (ops.h alloc_act): the input as it is, the output written in bf16 */
    const __nv_bfloat16 *ia = (const __nv_bfloat16 *)swax_cuda_act_bf16(inp, ldi, N, C);
    void *oa = swax_cuda_act_bf16(out, ldo, N, OC);
    SWAX_CUDA_REQUIRE(!(oa && resid));
    if (!ia && !oa && N <= 8 && !kept_training && gemv_on() &&
        swax_cuda_gemv_bf16_in(out, ldo, inp, ldi, wb, N, C, OC, resid, GEMV_IN_NONE | weight_fresh(w, OC, C), NULL, 0.0f,
                               ctx.stream) == 0)
        return;
    if (ia) fside.valid = 0;
    const __nv_bfloat16 *ib = ia ? ia : kept_round(inp, ldi, N, C);
    if (oa)
        gemm_c(2, 1, 0, OC, N, C, wb, C, ib, C, oa, ldo, 0, NULL);
    else
        gemm_c(1, 1, 0, OC, N, C, wb, C, ib, C, out, ldo, 0, resid);
}

static void bf16_matmul_fwd(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC) {
    SWAX_CUDA_REQUIRE(ldo >= OC && ldi >= C);
    bf16_forward(out, ldo, inp, ldi, w, N, C, OC, NULL);
}

/* Decode's RMSNorm -> product and SwiGLU -> product (+ residual) as one gemv
 * launch: the transform in its staging (gemv.cu, swax_cuda_gemv_bf16_in).
 * Nonzero (nothing done) where bf16_forward would not take the gemv, or with
 * SWAX_GEMV_IN=0 (A/B timing): the caller runs the two kernels. */
static int bf16_matmul_fwd_in(float *out, long ldo, const float *inp, long ldi, int mode, const float *nw, float eps,
                              const float *w, int N, int C, int OC, const float *resid) {
    static int off = -1;
    if (N < 1 || N > 8 || kept_training || !gemv_on() || env_is("SWAX_GEMV_IN", "0", &off)) return 1;
    if (mode != SWAX_MM_IN_RMSNORM && mode != SWAX_MM_IN_SWIGLU) return 1;
    if (C < 8 || C % 8 != 0 || (mode == SWAX_MM_IN_RMSNORM && !nw)) return 1; /* the gemv's refusals, before any work */
    const int cin = mode == SWAX_MM_IN_SWIGLU ? 2 * C : C;
    if (ldo < OC || ldi < cin || swax_cuda_act_bf16(inp, ldi, N, cin) || swax_cuda_act_bf16(out, ldo, N, OC)) return 1;
    dside.valid = 0;
    const __nv_bfloat16 *wb = weight_bf16(w, OC, C, SWAX_SCRATCH_BF16_W);
    return swax_cuda_gemv_bf16_in(out, ldo, inp, ldi, wb, N, C, OC, resid,
                                  (mode == SWAX_MM_IN_RMSNORM ? GEMV_IN_RMSNORM : GEMV_IN_SWIGLU) | weight_fresh(w, OC, C),
                                  nw, eps, ctx.stream);
}

/* Training's residual connections: the add in the product's epilogue. */
static void bf16_matmul_fwd_add(float *out, long ldo, const float *inp, long ldi, const float *w, int N, int C, int OC,
                                const float *resid) {
    SWAX_CUDA_REQUIRE(ldo >= OC && ldi >= C && resid && resid != out);
    bf16_forward(out, ldo, inp, ldi, w, N, C, OC, resid);
}

static void bf16_matmul_bwd(float *dinp, long lddi, float *dw, const float *dout, long lddo, const float *inp, long ldi,
                            const float *w, int N, int C, int OC, int acc) {
    kept_training = 1;
    fside.valid = 0;
    /* bf16-stored activations (ops.h alloc_act): a dinp (the SwiGLU's d h) is written in bf16, a dout (the
     * head's d logits, written over its logits chunk by xent_train) is the operand as it is */
    void *da = swax_cuda_act_bf16(dinp, lddi, N, C);
    const __nv_bfloat16 *ga = (const __nv_bfloat16 *)swax_cuda_act_bf16(dout, lddo, N, OC);
    SWAX_CUDA_REQUIRE(!(da && acc));
    if (ga) dside.valid = 0, dside_only = NULL;
    const __nv_bfloat16 *gb = ga ? ga : dout_bf16(dout, lddo, N, OC);
    if (dinp) {
        const __nv_bfloat16 *wb = weight_bf16(w, OC, C, SWAX_SCRATCH_BF16_W);
        if (da)
            gemm_c(2, 0, 0, C, N, OC, wb, C, gb, OC, da, lddi, 0, NULL);
        else
            gemm(1, 0, 0, C, N, OC, wb, C, gb, OC, dinp, lddi, acc);
    }
    if (dw) {
        const __nv_bfloat16 *ia = (const __nv_bfloat16 *)swax_cuda_act_bf16(inp, ldi, N, C);
        const __nv_bfloat16 *ib = ia ? ia : kept_find(inp, ldi, N, C);
        gemm(1, 0, 1, C, OC, N, ib, C, gb, OC, dw, C, 1);
    }
}

/* ---------------------------------------------------------------- product tuning study */

/* `swax bench gemm`: each bf16 product of a bench-gpu training step (B8 x
 * T4096 = 32,768 rows; D 1024, the FFN's 2 x 2752, the mixers' 3080 / 3072
 * columns, the head's 4096-row chunks x 50,304) timed with the algorithm the
 * plan cache uses (cuBLASLt's first heuristic answer under gemm_pref) beside
 * each of the next `count` answers under the same preferences: JSON lines.
 * Measures what a tuned choice would gain before deciding how to make such a
 * choice without losing same-bits reruns (a timing-based pick can differ
 * between runs). */
static float time_algo(GemmPlan *p, const cublasLtMatmulAlgo_t *algo, size_t ws, const void *A, const void *B,
                       const float *Cin, float *D, int reps) {
    const float alpha = 1.0f, beta = p->accumulate ? 1.0f : 0.0f;
    cudaEvent_t e0, e1;
    SWAX_CUDA_CHECK(cudaEventCreate(&e0));
    SWAX_CUDA_CHECK(cudaEventCreate(&e1));
    float ms = -1;
    for (int r = -2; r < reps; r++) {
        if (r == 0) SWAX_CUDA_CHECK(cudaEventRecord(e0, ctx.stream));
        cublasStatus_t st = cublasLtMatmul(ctx.lt, p->op, &alpha, A, p->a, B, p->b, &beta, Cin ? Cin : D, p->c, D,
                                           p->c, algo, ctx.workspace, ws, ctx.stream);
        if (st != CUBLAS_STATUS_SUCCESS) goto done;
    }
    SWAX_CUDA_CHECK(cudaEventRecord(e1, ctx.stream));
    SWAX_CUDA_CHECK(cudaEventSynchronize(e1));
    SWAX_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    ms /= (float)reps;
done:
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    return ms;
}

extern "C" int swax_cuda_gemm_tune(FILE *out, int count) {
    if (ctx_init()) return SWAX_E_USAGE;
    if (count < 1) count = 1;
    if (count > 32) count = 32;
    enum { NR = 32768, HR = 4096, D = 1024, F2 = 5504, F = 2752, PM = 3080, PA = 3072, V = 50304 };
    static const struct {
        const char *what;
        int ta, tb, m, n, k, acc, sepc; /* gemm()'s arguments; sepc: the residual as a separate C */
        int calls;                      /* per bench-gpu step */
        int out16;                      /* the output in bf16 (a bf16-stored activation, ops.h alloc_act) */
    } shapes[] = {
        {"fwd gate/up", 1, 0, F2, NR, D, 0, 0, 12, 1},   {"fwd down +res", 1, 0, D, NR, F, 0, 1, 12, 0},
        {"fwd mlstm mix", 1, 0, PM, NR, D, 0, 0, 6, 0},  {"fwd attn qkv", 1, 0, PA, NR, D, 0, 0, 6, 0},
        {"fwd out +res", 1, 0, D, NR, D, 0, 1, 12, 0},   {"fwd head chunk", 1, 0, V, HR, D, 0, 0, 8, 1},
        {"dinp gate/up", 0, 0, D, NR, F2, 0, 0, 12, 0},  {"dinp down", 0, 0, F, NR, D, 0, 0, 12, 1},
        {"dinp mlstm mix", 0, 0, D, NR, PM, 0, 0, 6, 0}, {"dinp attn qkv", 0, 0, D, NR, PA, 0, 0, 6, 0},
        {"dinp out", 0, 0, D, NR, D, 0, 0, 12, 0},       {"dinp head chunk", 0, 0, D, HR, V, 0, 0, 8, 0},
        {"dw gate/up", 0, 1, D, F2, NR, 1, 0, 12, 0},    {"dw down", 0, 1, F, D, NR, 1, 0, 12, 0},
        {"dw mlstm mix", 0, 1, D, PM, NR, 1, 0, 6, 0},   {"dw attn qkv", 0, 1, D, PA, NR, 1, 0, 6, 0},
        {"dw out", 0, 1, D, D, NR, 1, 0, 12, 0},         {"dw head chunk", 0, 1, D, V, HR, 1, 0, 8, 0},
    };
    size_t maxel = 0; /* the largest operand or result (the head chunk's 50,304 x 4,096 logits) */
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const size_t m = (size_t)shapes[si].m, n = (size_t)shapes[si].n, k = (size_t)shapes[si].k;
        if (m * n > maxel) maxel = m * n;
        if (m * k > maxel) maxel = m * k;
        if (k * n > maxel) maxel = k * n;
    }
    void *A = NULL, *B = NULL;
    float *Cm = NULL, *Cin = NULL;
    if (cudaMalloc(&A, 2 * maxel) != cudaSuccess || cudaMalloc(&B, 2 * maxel) != cudaSuccess ||
        cudaMalloc(&Cm, 4 * maxel) != cudaSuccess || cudaMalloc(&Cin, 4 * (size_t)NR * D) != cudaSuccess) {
        cudaGetLastError();
        cudaFree(A), cudaFree(B), cudaFree(Cm), cudaFree(Cin);
        return swax_error(SWAX_E_NOMEM, "bench gemm: device memory for the operands (~%.1f GB)", (8.0 * maxel + 4.0 * NR * D) / 1e9);
    }
    /* operands: small values as bf16 (0x3c00 = 0.0078125), results zeroed */
    SWAX_CUDA_CHECK(cudaMemsetAsync(A, 0x3c, 2 * maxel, ctx.stream));
    SWAX_CUDA_CHECK(cudaMemsetAsync(B, 0x3c, 2 * maxel, ctx.stream));
    SWAX_CUDA_CHECK(cudaMemsetAsync(Cm, 0, 4 * maxel, ctx.stream));
    SWAX_CUDA_CHECK(cudaMemsetAsync(Cin, 0, 4 * (size_t)NR * D, ctx.stream));
    double step_now = 0, step_best = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int ta = shapes[si].ta, tb = shapes[si].tb, m = shapes[si].m, n = shapes[si].n, k = shapes[si].k;
        const long lda = ta ? k : m, ldb = tb ? n : k, ldc = m;
        GemmPlan *p = gemm_plan(shapes[si].out16 ? 2 : 1, ta, tb, m, n, k, lda, ldb, ldc,
                                shapes[si].acc || shapes[si].sepc, 256, 256, 256);
        const float *cin = shapes[si].sepc ? Cin : NULL;
        const float t0 = time_algo(p, &p->algo, p->ws, A, B, cin, Cm, 10);
        cublasLtMatmulPreference_t pref = gemm_pref(1, 256, 256, 256);
        cublasLtMatmulHeuristicResult_t res[32];
        int got = 0;
        LT_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx.lt, p->op, p->a, p->b, p->c, p->c, pref, count, res, &got));
        cublasLtMatmulPreferenceDestroy(pref);
        const double gf = 2.0 * m * n * (double)k / 1e9;
        float best = t0;
        int besti = 0;
        fprintf(out, "{\"bench\": \"gemm\", \"what\": \"%s\", \"ta\": %d, \"tb\": %d, \"m\": %d, \"n\": %d, "
                     "\"k\": %d, \"accumulate\": %d, \"out\": \"%s\", \"calls\": %d, \"plan_ms\": %.4f, "
                     "\"plan_tflops\": %.1f, \"candidates_ms\": [",
                shapes[si].what, ta, tb, m, n, k, shapes[si].acc || shapes[si].sepc ? 1 : 0,
                shapes[si].out16 ? "bf16" : "f32", shapes[si].calls, t0, gf / t0);
        for (int i = 0; i < got; i++) {
            const float t = res[i].state == CUBLAS_STATUS_SUCCESS
                                ? time_algo(p, &res[i].algo, res[i].workspaceSize, A, B, cin, Cm, 10)
                                : -1;
            int splitk = 0;
            size_t wr = 0;
            cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk,
                                                 &wr);
            fprintf(out, "%s[%.4f, %d]", i ? ", " : "", t, splitk);
            if (t > 0 && t < best) best = t, besti = i;
        }
        fprintf(out, "], \"best_ms\": %.4f, \"best_index\": %d, \"gain_per_step_ms\": %.3f}\n", best, besti,
                (t0 - best) * shapes[si].calls);
        step_now += t0 * shapes[si].calls, step_best += best * shapes[si].calls;
        fflush(out);
    }
    fprintf(out, "{\"bench\": \"gemm_step\", \"plan_ms\": %.2f, \"best_ms\": %.2f}\n", step_now, step_best);
    SWAX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    cudaFree(A), cudaFree(B), cudaFree(Cm), cudaFree(Cin);
    return 0;
}

/* ---------------------------------------------------------------- table */

static size_t cu_mem_used(void) { return swax_cuda_peak_bytes(); }

#define SWAX_CUDA_TABLE(NAME, MATMUL_FWD, MATMUL_BWD, MATMUL_FWD_ADD, PARAMS_UPDATED, ALLOC_ACT, ATTN_FWD, ATTN_BWD, CELL_FWD, \
                        CELL_BWD)                                                                                   \
    {                                                                                                     \
        .name = NAME, .is_device = 1, .sync = cu_sync, .mem_used = cu_mem_used,                           \
        .params_updated = PARAMS_UPDATED, .alloc = cu_alloc, .free = cu_free, .alloc_act = ALLOC_ACT,      \
        .to_device = cu_to_device, .to_host = cu_to_host, .zero = cu_zero, .matmul_fwd = MATMUL_FWD,      \
        .matmul_bwd = MATMUL_BWD,                                                                         \
        .matmul_fwd_add = MATMUL_FWD_ADD, .matmul_fwd_in = NULL,                                          \
        .embed_fwd = swax_cuda_embed_fwd, .embed_bwd = swax_cuda_embed_bwd,                               \
        .rmsnorm_fwd = swax_cuda_rmsnorm_fwd, .rmsnorm_bwd = swax_cuda_rmsnorm_bwd, .add = swax_cuda_add,  \
        .swiglu_fwd = swax_cuda_swiglu_fwd, .swiglu_bwd = swax_cuda_swiglu_bwd,                           \
        .attn_fwd = ATTN_FWD, .attn_bwd = ATTN_BWD,                                                       \
        .mlstm_gates_fwd = swax_cuda_mlstm_gates_fwd, .mlstm_gates_bwd = swax_cuda_mlstm_gates_bwd,       \
        .mlstm_cell_fwd = CELL_FWD, .mlstm_cell_bwd = CELL_BWD,                                           \
        .mlstm_out_fwd = swax_cuda_mlstm_out_fwd, .mlstm_out_bwd = swax_cuda_mlstm_out_bwd,               \
        .xent_fwd = swax_cuda_xent_fwd, .xent_bwd = swax_cuda_xent_bwd,                                   \
        .xent_train = swax_cuda_xent_train, .adamw = swax_cuda_adamw,                                     \
        .sumsq = swax_cuda_sumsq, .scale = swax_cuda_scale, .copy = cu_copy,                              \
        .infer_attn = swax_cuda_infer_attn, .infer_mlstm_step = swax_cuda_infer_mlstm_step,               \
        .graph_run = swax_cuda_graph_run, .graph_free = swax_cuda_graph_free, .argmax = swax_cuda_argmax,  \
        .adamw_segs = swax_cuda_adamw_segs,                                                               \
        .gdn_fwd = swax_cuda_gdn_fwd, .gdn_bwd = swax_cuda_gdn_bwd, /* fp32 kernels in both tables */      \
        .infer_gdn = swax_cuda_infer_gdn,                                                                 \
    }

/* "cuda": bf16 products (the training default); "cuda-fp32": everything fp32, TF32 off (tests). */
static const SwaxOps cuda_ops_bf16 =
    SWAX_CUDA_TABLE("cuda", bf16_matmul_fwd, bf16_matmul_bwd, bf16_matmul_fwd_add, bf16_params_updated, cu_alloc_act,
                    swax_cuda_attn_fwd_tc,
                    swax_cuda_attn_bwd_tc, swax_cuda_mlstm_cell_fwd_tc, swax_cuda_mlstm_cell_bwd_tc);
static const SwaxOps cuda_ops_fp32 =
    SWAX_CUDA_TABLE("cuda-fp32", swax_cuda_matmul_fwd, swax_cuda_matmul_bwd, swax_cuda_matmul_fwd_add, NULL, NULL,
                    swax_cuda_attn_fwd,
                    swax_cuda_attn_bwd, swax_cuda_mlstm_cell_fwd, swax_cuda_mlstm_cell_bwd);

extern "C" const SwaxOps *swax_ops_cuda(void) {
    if (ctx_init()) return NULL;
    return &cuda_ops_fp32;
}

extern "C" const SwaxOps *swax_ops_cuda_bf16(void) {
    if (ctx_init()) return NULL;
    /* the table above, with the kernels whose output a product reads next also writing it rounded to
     * bf16: backward (cross-entropy: d logits; SwiGLU: d(gate, up)) and, in training, forward (RMSNorm,
     * SwiGLU: the product's kept input copy) */
    static SwaxOps t;
    if (!t.name) {
        t = cuda_ops_bf16;
        t.xent_bwd = swax_cuda_xent_bwd_bf16;
        /* SWAX_XENT_FUSED=0: the head's cross-entropy as two kernels (A/B timing) */
        static int unfused = -1;
        t.xent_train = env_is("SWAX_XENT_FUSED", "0", &unfused) ? NULL : swax_cuda_xent_train_bf16;
        /* SWAX_RESID_FUSED=0: residual adds as their own kernel (A/B timing) */
        static int resid_sep = -1;
        if (env_is("SWAX_RESID_FUSED", "0", &resid_sep)) t.matmul_fwd_add = NULL;
        t.swiglu_bwd = swax_cuda_swiglu_bwd_bf16;
        t.swiglu_fwd = swax_cuda_swiglu_fwd_bf16;
        t.rmsnorm_fwd = swax_cuda_rmsnorm_fwd_bf16;
        t.infer_attn = swax_cuda_infer_attn_bf16; /* prefill attention may take the tensor-core forward */
        t.matmul_fwd_in = bf16_matmul_fwd_in; /* decode: norm / SwiGLU inside the gemv's staging */
        /* side copies from the SWA kernels, the mLSTM output norm and the RMSNorm backward
         * (SWAX_BF16_MIXER=0: without them, A/B timing; the same bits either way) */
        static int mixer_off = -1;
        if (!env_is("SWAX_BF16_MIXER", "0", &mixer_off)) {
            t.attn_fwd = swax_cuda_attn_fwd_tc_bf16;
            t.attn_bwd = swax_cuda_attn_bwd_tc_bf16;
            t.mlstm_out_fwd = swax_cuda_mlstm_out_fwd_bf16;
            t.rmsnorm_bwd = swax_cuda_rmsnorm_bwd_bf16;
        }
    }
    return &t;
}

extern "C" int swax_cuda_device_name(char *buf, size_t cap) {
    if (ctx_init()) return -1;
    cudaDeviceProp p;
    SWAX_CUDA_CHECK(cudaGetDeviceProperties(&p, ctx.device));
    size_t fr = 0, tot = 0;
    SWAX_CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
    snprintf(buf, cap, "%s (device %d, %d SMs, %.0f GiB)", p.name, ctx.device, p.multiProcessorCount,
             tot / 1073741824.0);
    return 0;
}

extern "C" size_t swax_cuda_peak_bytes(void) {
    /* the device's used memory now; a true peak needs an allocator of our own */
    size_t fr = 0, tot = 0;
    if (!ctx.ready || cudaMemGetInfo(&fr, &tot) != cudaSuccess) return 0;
    return tot - fr;
}
