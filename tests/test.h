/* test.h — a minimal test runner. Each test binary defines tests with TEST()
 * and calls RUN_TESTS() in main; it prints "N passed, N failed". A check that
 * fails marks its test failed and continues to the next test. */
#ifndef SWAX_TEST_H
#define SWAX_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
typedef struct {
    const char *name;
    test_fn fn;
} test_case;

extern test_case g_tests[256];
extern int g_ntests;
extern int g_test_failed;

#define TEST(tname)                                                  \
    static void tname(void);                                         \
    __attribute__((constructor)) static void reg_##tname(void) {     \
        g_tests[g_ntests].name = #tname;                             \
        g_tests[g_ntests++].fn = tname;                              \
    }                                                                \
    static void tname(void)

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            g_test_failed = 1;                                                      \
            return;                                                                 \
        }                                                                           \
    } while (0)

#define CHECKF(cond, ...)                                                           \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, "\n");                                                  \
            g_test_failed = 1;                                                      \
            return;                                                                 \
        }                                                                           \
    } while (0)

/* wi (a long) = the index of the element farthest outside |a-b| <= atol + rtol*|b|, or -1 */
#define WORST_OUTSIDE(a, b, n, atol, rtol, wi)                                      \
    do {                                                                            \
        double worst_ = 0; (wi) = -1;                                               \
        for (long i_ = 0; i_ < (long)(n); i_++) {                                   \
            double d_ = fabs((double)(a)[i_] - (double)(b)[i_]);                    \
            double lim_ = (atol) + (rtol) * fabs((double)(b)[i_]);                  \
            if (!(d_ <= lim_) && ((wi) < 0 || d_ - lim_ > worst_)) { worst_ = d_ - lim_; (wi) = i_; } \
        }                                                                           \
    } while (0)

/* |a-b| <= atol + rtol*|b| for every element; reports the worst. */
#define CHECK_CLOSE(a, b, n, atol, rtol)                                            \
    do {                                                                            \
        long wi_;                                                                   \
        WORST_OUTSIDE(a, b, n, atol, rtol, wi_);                                    \
        CHECKF(wi_ < 0, "%s vs %s: element %ld: %.9g vs %.9g", #a, #b, wi_,         \
               wi_ >= 0 ? (double)(a)[wi_] : 0.0, wi_ >= 0 ? (double)(b)[wi_] : 0.0); \
    } while (0)

#define TEST_MAIN_DEFS                      \
    test_case g_tests[256];                 \
    int g_ntests;                           \
    int g_test_failed;

static inline int run_tests(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (int i = 0; i < g_ntests; i++) {
        if (argc > 1 && !strstr(g_tests[i].name, argv[1])) continue;
        g_test_failed = 0;
        g_tests[i].fn();
        if (g_test_failed) {
            failed++;
            printf("FAIL %s\n", g_tests[i].name);
        } else {
            passed++;
            printf("ok   %s\n", g_tests[i].name);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define RUN_TESTS()                                   \
    TEST_MAIN_DEFS                                    \
    int main(int argc, char **argv) { return run_tests(argc, argv); }

#endif
