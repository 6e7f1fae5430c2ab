/* fastmath.h — exp, tanh and sigmoid in plain arithmetic so that loops over
 * them vectorise (glibc's expf/tanhf are scalar calls). Accuracy: relative
 * error below 2.5e-7 (about 2 ulp) on the range that matters; tests/test_ops.c
 * checks them against libm in double. The soft-capped cross-entropy over
 * B·T·V logits spends most of its time here. */
#ifndef SWAX_FASTMATH_H
#define SWAX_FASTMATH_H

#include <stdint.h>

/* e^x for x in [-87.3, 88.7] (clamped outside: 0-ish below, large above).
 * Written so that GCC vectorises it: round-to-nearest by the 1.5·2^23 trick
 * (exact arithmetic, no fast-math needed) and 2^n built in the exponent bits
 * through a union. */
static inline float swax_expf(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
    const float t = x * 1.44269504088896341f + 12582912.0f; /* 12582912 = 1.5·2^23 */
    const float n = t - 12582912.0f;                        /* round(x / ln2) */
    /* r = x - n ln2, ln2 split in two for accuracy */
    const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
    /* Taylor to degree 6 on |r| <= ln2/2: truncation ~1.2e-7 relative */
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        float f;
        int32_t i;
    } u = {t};
    u.i = (u.i - 0x4B400000 + 127) << 23; /* the bits of t hold n: 2^n */
    return p * u.f;
}

static inline float swax_sigmoidf(float x) { return 1.0f / (1.0f + swax_expf(-x)); }

/* tanh: its Taylor series to x^13 for |x| < 0.4 (where 1 - 2/(e^2x + 1)
 * would cancel), sign(x) (1 - 2 / (e^{2|x|} + 1)) elsewhere. */
static inline float swax_tanhf(float x) {
    const float a = x < 0 ? -x : x;
    const float x2 = x * x;
    float p = 21844.0f / 6081075.0f;
    p = p * x2 - 1382.0f / 155925.0f;
    p = p * x2 + 62.0f / 2835.0f;
    p = p * x2 - 17.0f / 315.0f;
    p = p * x2 + 2.0f / 15.0f;
    p = p * x2 - 1.0f / 3.0f;
    const float small = x + x * x2 * p;
    const float t = 1.0f - 2.0f / (swax_expf(2.0f * a) + 1.0f);
    const float big = x < 0 ? -t : t;
    return a < 0.4f ? small : big;
}

#endif
