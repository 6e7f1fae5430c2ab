/* gemm_bf16.c — bf16 matrix products on the CPU through oneDNN's matmul, loaded at run time
 * (gemm_bf16.h). The operands are rounded into two packed bf16 buffers (the stored layout kept,
 * so a transposed operand is a strided view, not a copy in another order), the product
 * accumulates in fp32 into C; beta = 1 is oneDNN's "sum" post-op. Primitives are made once per
 * shape and kept (a training step has ~20 shapes). One caller at a time (a mutex): the model's
 * products come from one thread, each running on all of OpenMP's. */
#include "ops/cpu/gemm_bf16.h"

#include <dlfcn.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#if defined(__has_include)
#if __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>
#if DNNL_VERSION_MAJOR == 2
#define SWAX_HAVE_DNNL 1
#endif
#endif
#endif

static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays a (quiet) NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

void swax_bf16_round(float *x, long n) {
#pragma omp parallel for if (n > 65536)
    for (long i = 0; i < n; i++) {
        const uint32_t u = (uint32_t)to_bf16(x[i]) << 16;
        memcpy(&x[i], &u, 4);
    }
}

#ifndef SWAX_HAVE_DNNL

int swax_bf16_gemm_init(void) {
    return swax_error(SWAX_E_USAGE, "this swax was built without the oneDNN 2.x headers for bf16 products "
                                    "(Debian: apt-get install libdnnl-dev, then make clean && make)");
}
const char *swax_bf16_gemm_impl(void) { return ""; }
void swax_bf16_gemm(int ta, int tb, int M, int N, int K, const float *A, long lda, const float *B, long ldb,
                    float beta, float *C, long ldc) {
    SWAX_ASSERT(!"swax_bf16_gemm without oneDNN");
}
void swax_bf16_gemm_ex(int ta, int tb, int M, int N, int K, const float *A, long lda, const float *B, long ldb,
                       float beta, float *C, long ldc, int reuse_a) {
    SWAX_ASSERT(!"swax_bf16_gemm_ex without oneDNN");
}
int swax_onednn_sgemm_init(void) { return swax_bf16_gemm_init(); }
void swax_onednn_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, long lda, const float *B,
                       long ldb, float beta, float *C, long ldc) {
    SWAX_ASSERT(!"swax_onednn_sgemm without oneDNN");
}

#else

/* the oneDNN entry points swax uses, found by dlsym */
#define DNNL_FNS(X)                                                                                     \
    X(dnnl_engine_create, dnnl_status_t, (dnnl_engine_t *, dnnl_engine_kind_t, size_t))                 \
    X(dnnl_stream_create, dnnl_status_t, (dnnl_stream_t *, dnnl_engine_t, unsigned))                    \
    X(dnnl_stream_wait, dnnl_status_t, (dnnl_stream_t))                                                 \
    X(dnnl_memory_desc_init_by_strides, dnnl_status_t,                                                  \
      (dnnl_memory_desc_t *, int, const dnnl_dims_t, dnnl_data_type_t, const dnnl_dims_t))               \
    X(dnnl_matmul_desc_init, dnnl_status_t,                                                             \
      (dnnl_matmul_desc_t *, const dnnl_memory_desc_t *, const dnnl_memory_desc_t *,                    \
       const dnnl_memory_desc_t *, const dnnl_memory_desc_t *))                                         \
    X(dnnl_primitive_attr_create, dnnl_status_t, (dnnl_primitive_attr_t *))                             \
    X(dnnl_primitive_attr_destroy, dnnl_status_t, (dnnl_primitive_attr_t))                              \
    X(dnnl_primitive_attr_set_post_ops, dnnl_status_t, (dnnl_primitive_attr_t, const_dnnl_post_ops_t))  \
    X(dnnl_post_ops_create, dnnl_status_t, (dnnl_post_ops_t *))                                         \
    X(dnnl_post_ops_destroy, dnnl_status_t, (dnnl_post_ops_t))                                          \
    X(dnnl_post_ops_append_sum, dnnl_status_t, (dnnl_post_ops_t, float))                                \
    X(dnnl_primitive_desc_create, dnnl_status_t,                                                        \
      (dnnl_primitive_desc_t *, const_dnnl_op_desc_t, const_dnnl_primitive_attr_t, dnnl_engine_t,      \
       const_dnnl_primitive_desc_t))                                                                    \
    X(dnnl_primitive_desc_query, dnnl_status_t, (const_dnnl_primitive_desc_t, dnnl_query_t, int, void *)) \
    X(dnnl_primitive_desc_destroy, dnnl_status_t, (dnnl_primitive_desc_t))                              \
    X(dnnl_primitive_create, dnnl_status_t, (dnnl_primitive_t *, const_dnnl_primitive_desc_t))          \
    X(dnnl_primitive_destroy, dnnl_status_t, (dnnl_primitive_t))                                        \
    X(dnnl_primitive_execute, dnnl_status_t, (const_dnnl_primitive_t, dnnl_stream_t, int, const dnnl_exec_arg_t *)) \
    X(dnnl_memory_create, dnnl_status_t, (dnnl_memory_t *, const dnnl_memory_desc_t *, dnnl_engine_t, void *)) \
    X(dnnl_memory_destroy, dnnl_status_t, (dnnl_memory_t))                                              \
    X(dnnl_sgemm, dnnl_status_t,                                                                        \
      (char, char, dnnl_dim_t, dnnl_dim_t, dnnl_dim_t, float, const float *, dnnl_dim_t, const float *,   \
       dnnl_dim_t, float, float *, dnnl_dim_t))

#define DECL(name, ret, args) static ret(*p_##name) args;
DNNL_FNS(DECL)
#undef DECL

enum { NCACHE = 64 };
typedef struct {
    int ta, tb, M, N, K, beta;
    long ldc;
    dnnl_memory_desc_t a, b, c;
    dnnl_primitive_t prim;
} Prim;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int ready;    /* 1 loaded and checked, -1 failed (the message is kept) */
static int sg_ready; /* the same for the fp32 GEMM alone */
static char fail_msg[512], impl[128];
static dnnl_engine_t eng;
static dnnl_stream_t strm;
static Prim cache[NCACHE];
static int ncache, next_evict;
static uint16_t *abuf, *bbuf;
static size_t acap, bcap;

static int make_prim(Prim *p, int ta, int tb, int M, int N, int K, float beta, long ldc) {
    const dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    /* the packed buffers keep the stored layout: op(A) (M, K) is A (M, K) or the view of A (K, M) */
    const dnnl_dims_t as = {ta ? 1 : K, ta ? M : 1}, bs = {tb ? 1 : N, tb ? K : 1}, cs = {ldc, 1};
    memset(p, 0, sizeof *p);
    p->ta = ta, p->tb = tb, p->M = M, p->N = N, p->K = K, p->beta = beta != 0.0f, p->ldc = ldc;
    if (p_dnnl_memory_desc_init_by_strides(&p->a, 2, ad, dnnl_bf16, as) ||
        p_dnnl_memory_desc_init_by_strides(&p->b, 2, bd, dnnl_bf16, bs) ||
        p_dnnl_memory_desc_init_by_strides(&p->c, 2, cd, dnnl_f32, cs))
        return -1;
    dnnl_matmul_desc_t md;
    if (p_dnnl_matmul_desc_init(&md, &p->a, &p->b, NULL, &p->c)) return -1;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    int bad = 0;
    if (p->beta) {
        bad = p_dnnl_primitive_attr_create(&attr) || p_dnnl_post_ops_create(&po) ||
              p_dnnl_post_ops_append_sum(po, 1.0f) || p_dnnl_primitive_attr_set_post_ops(attr, po);
    }
    dnnl_primitive_desc_t pd = NULL;
    if (!bad) bad = p_dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL) != dnnl_success;
    if (!bad) {
        const char *s = NULL;
        if (!impl[0] && !p_dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) && s)
            snprintf(impl, sizeof impl, "%s", s);
        bad = p_dnnl_primitive_create(&p->prim, pd) != dnnl_success;
    }
    if (pd) p_dnnl_primitive_desc_destroy(pd);
    if (po) p_dnnl_post_ops_destroy(po);
    if (attr) p_dnnl_primitive_attr_destroy(attr);
    return bad ? -1 : 0;
}

static int load(void) {
    void *h = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(fail_msg, sizeof fail_msg,
                 "bf16 products need oneDNN 2.x at run time (libdnnl.so.2; Debian: apt-get install libdnnl2): %s",
                 dlerror());
        return -1;
    }
#define LOAD(name, ret, args)                                                                   \
    if (!(*(void **)&p_##name = dlsym(h, #name))) {                                             \
        snprintf(fail_msg, sizeof fail_msg, "libdnnl.so.2 has no %s (not oneDNN 2.x?)", #name); \
        return -1;                                                                              \
    }
    DNNL_FNS(LOAD)
#undef LOAD
    if (p_dnnl_engine_create(&eng, dnnl_cpu, 0) || p_dnnl_stream_create(&strm, eng, dnnl_stream_default_flags)) {
        snprintf(fail_msg, sizeof fail_msg, "oneDNN could not make a CPU engine");
        return -1;
    }
    /* a first product says which implementation this CPU gets; oneDNN's reference one (no
     * AVX-512) is ~100x slower than fp32 OpenBLAS: refuse it */
    Prim probe;
    if (make_prim(&probe, 0, 0, 64, 64, 64, 0.0f, 64) || !probe.prim) {
        snprintf(fail_msg, sizeof fail_msg,
                 "oneDNN has no bf16 matrix product for this CPU (it needs AVX-512; "
                 "AVX512-BF16 or AMX to be faster than fp32): use --device cpu");
        return -1;
    }
    p_dnnl_primitive_destroy(probe.prim);
    if (!strncmp(impl, "ref", 3) && !getenv("SWAX_BF16_ALLOW_REF")) {
        snprintf(fail_msg, sizeof fail_msg,
                 "oneDNN has only its reference bf16 product on this CPU (\"%s\"; it needs "
                 "AVX-512, and AVX512-BF16 or AMX to be faster than fp32): use --device cpu",
                 impl);
        return -1;
    }
    return 0;
}

/* load() once (under the lock): 1 or -1 */
static int loaded(void) {
    if (!ready) ready = load() ? -1 : 1;
    return ready;
}

int swax_bf16_gemm_init(void) {
    pthread_mutex_lock(&lock);
    const int r = loaded();
    pthread_mutex_unlock(&lock);
    return r > 0 ? 0 : swax_error(SWAX_E_USAGE, "%s", fail_msg);
}

const char *swax_bf16_gemm_impl(void) { return impl; }

int swax_onednn_sgemm_init(void) {
    pthread_mutex_lock(&lock);
    /* load() refuses a CPU without a bf16 product; the fp32 GEMM needs only the library */
    if (!sg_ready) sg_ready = loaded() > 0 || p_dnnl_sgemm ? 1 : -1;
    const int r = sg_ready;
    pthread_mutex_unlock(&lock);
    return r > 0 ? 0 : swax_error(SWAX_E_USAGE, "%s", fail_msg);
}

void swax_onednn_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, long lda, const float *B,
                       long ldb, float beta, float *C, long ldc) {
    SWAX_ASSERT(p_dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) ==
                dnnl_success);
}

static uint16_t *grow(uint16_t **buf, size_t *cap, size_t n) {
    if (n > *cap) {
        free(*buf);
        *cap = n + n / 4;
        *buf = malloc(*cap * sizeof(uint16_t));
        SWAX_ASSERT(*buf); /* the model's own activations are larger: out of memory before this */
    }
    return *buf;
}

/* rows × cols of src (row stride ld) rounded into dst (rows × cols, packed) */
static void pack(uint16_t *dst, const float *src, long ld, long rows, long cols) {
#pragma omp parallel for if (rows * cols > 32768)
    for (long r = 0; r < rows; r++) {
        const float *s = src + r * ld;
        uint16_t *d = dst + r * cols;
        for (long c = 0; c < cols; c++) d[c] = to_bf16(s[c]);
    }
}

/* the stored matrix whose packing abuf holds (reuse_a) */
static const float *a_src;
static long a_ld, a_rows, a_cols;

void swax_bf16_gemm(int ta, int tb, int M, int N, int K, const float *A, long lda, const float *B, long ldb,
                    float beta, float *C, long ldc) {
    swax_bf16_gemm_ex(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, 0);
}

void swax_bf16_gemm_ex(int ta, int tb, int M, int N, int K, const float *A, long lda, const float *B, long ldb,
                       float beta, float *C, long ldc, int reuse_a) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* an empty sum: C = beta·C */
        if (beta == 0.0f)
            for (int i = 0; i < M; i++) memset(C + (long)i * ldc, 0, sizeof(float) * (size_t)N);
        return;
    }
    SWAX_ASSERT(ready > 0);
    SWAX_ASSERT(beta == 0.0f || beta == 1.0f);
    pthread_mutex_lock(&lock);
    /* stored shapes: A is (M, K) or (K, M), B (K, N) or (N, K) */
    const long ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    const int same = reuse_a && a_src == A && a_ld == lda && a_rows == ar && a_cols == ac;
    uint16_t *a = same ? abuf : grow(&abuf, &acap, (size_t)ar * ac), *b = grow(&bbuf, &bcap, (size_t)br * bc);
    if (!same) pack(a, A, lda, ar, ac);
    a_src = A, a_ld = lda, a_rows = ar, a_cols = ac;
    pack(b, B, ldb, br, bc);
    Prim *p = NULL;
    for (int i = 0; i < ncache && !p; i++) {
        Prim *q = &cache[i];
        if (q->ta == ta && q->tb == tb && q->M == M && q->N == N && q->K == K && q->beta == (beta != 0.0f) &&
            q->ldc == ldc)
            p = q;
    }
    if (!p) {
        if (ncache < NCACHE) p = &cache[ncache++];
        else {
            p = &cache[next_evict];
            next_evict = (next_evict + 1) % NCACHE;
            p_dnnl_primitive_destroy(p->prim);
        }
        SWAX_ASSERT(make_prim(p, ta, tb, M, N, K, beta, ldc) == 0);
    }
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
    SWAX_ASSERT(!p_dnnl_memory_create(&ma, &p->a, eng, a) && !p_dnnl_memory_create(&mb, &p->b, eng, b) &&
                !p_dnnl_memory_create(&mc, &p->c, eng, C));
    const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
    SWAX_ASSERT(p_dnnl_primitive_execute(p->prim, strm, 3, args) == dnnl_success);
    p_dnnl_stream_wait(strm);
    p_dnnl_memory_destroy(ma);
    p_dnnl_memory_destroy(mb);
    p_dnnl_memory_destroy(mc);
    pthread_mutex_unlock(&lock);
}

#endif
