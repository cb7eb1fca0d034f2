/*
 * nf-test.h - the tiny unit-test harness of nextframe.
 *
 * A test file defines tests with NF_TEST(name) { ... } and lists them in
 * NF_TEST_MAIN(NF_TEST_ENTRY(a) NF_TEST_ENTRY(b) ...). Each test prints one
 * line the runner (tests/run.sh) counts: "PASS name", "FAIL name: file:line:
 * what", or "SKIP name: why". NF_CHECK records a failure and returns from the
 * test. Running the binary with a test name runs only that test.
 */
#ifndef NF_TEST_H
#define NF_TEST_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct nf_test_ctx {
    int failed;
    int skipped;
    char why[512]; /* The reason given to NF_SKIP. */
};

#define NF_TEST(name) static void test_##name(struct nf_test_ctx *nf__t)

#define NF_CHECK(cond)                                                         \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            nf__t->failed = 1;                                                 \
            return;                                                            \
        }                                                                      \
    } while (0)

#define NF_CHECK_INT_EQ(a, b)                                                  \
    do {                                                                       \
        long long nf__a = (long long)(a), nf__b = (long long)(b);              \
        if (nf__a != nf__b) {                                                  \
            printf("  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__,     \
                   __LINE__, #a, nf__a, #b, nf__b);                            \
            nf__t->failed = 1;                                                 \
            return;                                                            \
        }                                                                      \
    } while (0)

#define NF_CHECK_NEAR(a, b, tol)                                               \
    do {                                                                       \
        double nf__a = (double)(a), nf__b = (double)(b);                       \
        if (!(fabs(nf__a - nf__b) <= (tol))) {                                 \
            printf("  %s:%d: %s == %.9g, expected %.9g (tol %g)\n", __FILE__,  \
                   __LINE__, #a, nf__a, nf__b, (double)(tol));                 \
            nf__t->failed = 1;                                                 \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Marks the test skipped with a reason (printed on the SKIP line). */
#define NF_SKIP(reason)                                                        \
    do {                                                                       \
        snprintf(nf__t->why, sizeof nf__t->why, "%s", reason);                 \
        nf__t->skipped = 1;                                                    \
        return;                                                                \
    } while (0)

struct nf_test_entry {
    const char *name;
    void (*fn)(struct nf_test_ctx *);
};

#define NF_TEST_ENTRY(name) {#name, test_##name},

/* ||a - b|| / ||b|| over n floats, in double (||a - b|| when b is all 0):
 * the normalized error the backend and golden tests bound. */
static inline double nf_test_rel_error(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline int nf_test_run(const struct nf_test_entry *t, int n, int argc,
                              char **argv)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        struct nf_test_ctx ctx = {0, 0, ""};
        if (argc > 1 && strcmp(argv[1], t[i].name) != 0)
            continue;
        fflush(stdout);
        t[i].fn(&ctx);
        if (ctx.failed)
            printf("FAIL %s\n", t[i].name);
        else if (ctx.skipped)
            printf("SKIP %s: %s\n", t[i].name, ctx.why);
        else
            printf("PASS %s\n", t[i].name);
        fflush(stdout);
        failed += ctx.failed;
    }
    return failed ? 1 : 0;
}

#define NF_TEST_MAIN(...)                                                      \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        static const struct nf_test_entry nf__tests[] = {__VA_ARGS__};         \
        return nf_test_run(nf__tests,                                          \
                           (int)(sizeof nf__tests / sizeof nf__tests[0]),      \
                           argc, argv);                                        \
    }

#endif /* NF_TEST_H */
