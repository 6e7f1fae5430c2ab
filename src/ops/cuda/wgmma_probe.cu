/* wgmma_probe.cu — one warpgroup runs each product form of wgmma.cuh once on
 * operands given by the caller, so that tests/test_cuda_wgmma.c can check the
 * descriptors, the swizzle and the fragment layouts against a host product
 * before any attention kernel relies on them. Not used by the model.
 *   form 0: D (64 × 128) = A (64 × 64) · Bᵀ, B (128 × 64)   (mma_ss_n128, K-major A and B)
 *   form 1: D (64 × 64)  = A (64 × 64) · Bᵀ, B (64 × 64)    (mma_ss_n64)
 *   form 2: D (64 × 64)  = A (64 × 128) · B, B (128 × 64)   (mma_rs_n64_t: A in registers, B MN-major)
 * Operands are fp32 on the host, rounded to bf16 (nearest even) on upload;
 * D is fp32. Returns 0, or -1 for an unknown form. */
#include <cuda_bf16.h>
#include <stdint.h>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/wgmma.cuh"

extern "C" int swax_cuda_wgmma_probe(int form, const float *A, const float *B, float *D);

namespace {

using namespace swax_wg;

__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* rows × 64 of src (row stride ld) into a swizzled tile at byte s */
__device__ void put_tile(unsigned char *s, const __nv_bfloat16 *src, int rows, int ld) {
    for (int i = threadIdx.x; i < rows * 64; i += blockDim.x) {
        const int r = i / 64, c = i % 64;
        *reinterpret_cast<__nv_bfloat16 *>(s + sw128_off(r, c)) = src[r * ld + c];
    }
}

/* the warpgroup's 64 × N accumulator (wgmma.cuh's layout) into D, row stride N */
template <int N> __device__ void store_d(float *D, const float (&d)[N / 2]) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int i = 0; i < N / 8; i++) {
        const int r = 16 * w + g, c = 8 * i + 2 * t;
        D[r * N + c] = d[4 * i], D[r * N + c + 1] = d[4 * i + 1];
        D[(r + 8) * N + c] = d[4 * i + 2], D[(r + 8) * N + c + 1] = d[4 * i + 3];
    }
}

__global__ void __launch_bounds__(128) probe_kernel(int form, const __nv_bfloat16 *A, const __nv_bfloat16 *B, float *D) {
    extern __shared__ unsigned char raw[];
    const uint32_t base = (uint32_t)__cvta_generic_to_shared(raw);
    unsigned char *sm = raw + ((1024 - (base & 1023)) & 1023); /* 1024-aligned */
    const uint32_t sa = (uint32_t)__cvta_generic_to_shared(sm);
    unsigned char *As = sm, *Bs = sm + 8192; /* A: 64 rows (8 KB); B: up to 128 rows (16 KB) */
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    if (form != 2) put_tile(As, A, 64, 64);
    put_tile(Bs, B, form == 1 ? 64 : 128, 64);
    fence_smem();
    __syncthreads();
    if (form == 0) {
        float d[64];
#pragma unroll
        for (int i = 0; i < 64; i++) d[i] = 0.f;
        fence();
#pragma unroll
        for (int ks = 0; ks < 4; ks++) mma_ss_n128(d, desc_sw128(sa + 32 * ks, 1024), desc_sw128(sa + 8192 + 32 * ks, 1024), ks > 0);
        commit();
        wait<0>();
        fence_regs(d);
        store_d<128>(D, d);
        return;
    }
    float d[32];
#pragma unroll
    for (int i = 0; i < 32; i++) d[i] = 0.f;
    if (form == 1) {
        fence();
#pragma unroll
        for (int ks = 0; ks < 4; ks++) mma_ss_n64(d, desc_sw128(sa + 32 * ks, 1024), desc_sw128(sa + 8192 + 32 * ks, 1024), ks > 0);
    } else {
        uint32_t a[8][4];
        const int r = 16 * w + g;
#pragma unroll
        for (int ks = 0; ks < 8; ks++) {
            const int c = 16 * ks + 2 * t;
            a[ks][0] = pack2(__bfloat162float(A[r * 128 + c]), __bfloat162float(A[r * 128 + c + 1]));
            a[ks][1] = pack2(__bfloat162float(A[(r + 8) * 128 + c]), __bfloat162float(A[(r + 8) * 128 + c + 1]));
            a[ks][2] = pack2(__bfloat162float(A[r * 128 + c + 8]), __bfloat162float(A[r * 128 + c + 9]));
            a[ks][3] = pack2(__bfloat162float(A[(r + 8) * 128 + c + 8]), __bfloat162float(A[(r + 8) * 128 + c + 9]));
        }
        fence();
#pragma unroll
        for (int ks = 0; ks < 8; ks++) mma_rs_n64_t(d, a[ks], desc_sw128(sa + 8192 + 2048 * ks, 1024), ks > 0);
    }
    commit();
    wait<0>();
    fence_regs(d);
    store_d<64>(D, d);
}

__global__ void to_bf16(const float *x, __nv_bfloat16 *y, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = __float2bfloat16_rn(x[i]);
}

} // namespace

extern "C" int swax_cuda_wgmma_probe(int form, const float *A, const float *B, float *D) {
    if (form < 0 || form > 2) return -1;
    const int na = form == 2 ? 64 * 128 : 64 * 64, nb = form == 1 ? 64 * 64 : 128 * 64;
    const int nd = form == 0 ? 64 * 128 : 64 * 64;
    float *fa, *fb, *fd;
    __nv_bfloat16 *ba, *bb;
    SWAX_CUDA_CHECK(cudaMalloc(&fa, sizeof(float) * (na + nb + nd)));
    SWAX_CUDA_CHECK(cudaMalloc(&ba, sizeof(__nv_bfloat16) * (na + nb)));
    fb = fa + na, fd = fb + nb, bb = ba + na;
    SWAX_CUDA_CHECK(cudaMemcpy(fa, A, sizeof(float) * na, cudaMemcpyHostToDevice));
    SWAX_CUDA_CHECK(cudaMemcpy(fb, B, sizeof(float) * nb, cudaMemcpyHostToDevice));
    SWAX_CUDA_CHECK(cudaMemset(fd, 0xFF, sizeof(float) * nd));
    to_bf16<<<(na + nb + 255) / 256, 256>>>(fa, ba, na + nb);
    SWAX_CUDA_LAUNCHED();
    const int smem = 8192 + 16384 + 1024;
    probe_kernel<<<1, 128, smem>>>(form, ba, bb, fd);
    SWAX_CUDA_LAUNCHED();
    SWAX_CUDA_CHECK(cudaMemcpy(D, fd, sizeof(float) * nd, cudaMemcpyDeviceToHost));
    SWAX_CUDA_CHECK(cudaFree(fa));
    SWAX_CUDA_CHECK(cudaFree(ba));
    return 0;
}
