/*
 * fuzz-check.h - the one assertion the libFuzzer harnesses share.
 *
 * A harness checks properties that must hold for every input (a decoder
 * never reports success on a prefix, a parsed message formats back to the
 * same values, ...). A broken property is a bug like a crash: NF_FUZZ_CHECK
 * prints where and aborts, and libFuzzer saves the input as crash-<sha1>.
 * Header-only, for tests/fuzz/ files.
 */
#ifndef NF_FUZZ_CHECK_H
#define NF_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define NF_FUZZ_CHECK(cond)                                                    \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__,        \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif /* NF_FUZZ_CHECK_H */
