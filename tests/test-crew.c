/*
 * test-crew.c - the codec crew's parallel loop (server/crew.h): every index
 * runs exactly once per loop, on a worker in range, the helpers do take
 * part, loops follow each other without mixing, and bad sizes are refused.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crew.h"
#include "error.h"
#include "nf-test.h"

#define N_MAX 64

struct tally {
    atomic_int runs[N_MAX];
    atomic_int bad_worker;
    atomic_int by_worker[NF_CREW_MAX];
    int workers;
    int nap_us; /* Each index sleeps this long. */
};

static void count(void *arg, int i, int worker)
{
    struct tally *t = arg;
    atomic_fetch_add(&t->runs[i], 1);
    if (worker < 0 || worker >= t->workers)
        atomic_fetch_add(&t->bad_worker, 1);
    else
        atomic_fetch_add(&t->by_worker[worker], 1);
    if (t->nap_us > 0) {
        struct timespec ts = {0, t->nap_us * 1000L};
        nanosleep(&ts, NULL);
    }
}

NF_TEST(crew_runs_every_index_once)
{
    for (int helpers = 0; helpers <= 3; helpers++) {
        struct nf_crew *c = NULL;
        NF_CHECK_INT_EQ(nf_crew_init(&c, helpers), 0);
        if (c == NULL)
            return;
        NF_CHECK_INT_EQ(nf_crew_size(c), helpers + 1);
        /* Many loops of every size, back to back on the same crew. */
        for (int round = 0; round < 200; round++) {
            struct tally t;
            memset(&t, 0, sizeof t);
            t.workers = helpers + 1;
            int n = round % (N_MAX + 1);
            nf_crew_run(c, n, count, &t);
            for (int i = 0; i < N_MAX; i++)
                NF_CHECK_INT_EQ(atomic_load(&t.runs[i]), i < n);
            NF_CHECK_INT_EQ(atomic_load(&t.bad_worker), 0);
        }
        nf_crew_free(c);
    }
}

NF_TEST(crew_helpers_take_part)
{
    struct nf_crew *c = NULL;
    struct tally t;
    memset(&t, 0, sizeof t);
    t.workers = 4;
    t.nap_us = 5000; /* 16 x 5 ms: the helpers wake long before the end. */
    NF_CHECK_INT_EQ(nf_crew_init(&c, 3), 0);
    if (c == NULL)
        return;
    nf_crew_run(c, 16, count, &t);
    nf_crew_free(c);
    int used = 0;
    for (int w = 0; w < 4; w++)
        used += atomic_load(&t.by_worker[w]) > 0;
    printf("  workers used: %d of 4\n", used);
    NF_CHECK(used >= 2);
    for (int i = 0; i < 16; i++)
        NF_CHECK_INT_EQ(atomic_load(&t.runs[i]), 1);
}

NF_TEST(crew_refuses_bad_sizes)
{
    struct nf_crew *c = (struct nf_crew *)&c;
    NF_CHECK_INT_EQ(nf_crew_init(&c, -1), NF_EINVAL);
    NF_CHECK(c == NULL);
    NF_CHECK_INT_EQ(nf_crew_init(&c, NF_CREW_MAX), NF_EINVAL);
    nf_crew_free(NULL);
}

NF_TEST_MAIN(NF_TEST_ENTRY(crew_runs_every_index_once)
                 NF_TEST_ENTRY(crew_helpers_take_part)
                     NF_TEST_ENTRY(crew_refuses_bad_sizes))
