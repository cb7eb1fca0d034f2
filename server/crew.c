/*
 * crew.c - the helper threads of a parallel loop (see crew.h).
 *
 * One loop at a time: the owner publishes it under the lock with a new
 * generation number and wakes the helpers; every worker, the owner
 * included, takes the next index under the lock until none is left; the
 * owner then waits until the helpers that joined have finished theirs.
 * Indexes are few (a batch's frames) and each is milliseconds of work, so
 * one lock is cheaper than it looks.
 */
#include "crew.h"

#include <pthread.h>
#include <stdlib.h>

#include "error.h"

/* Owned by its creator; the fields after lock are guarded by it. */
struct nf_crew {
    int helpers;
    pthread_t threads[NF_CREW_MAX];
    pthread_mutex_t lock;
    pthread_cond_t start; /* A new loop, or stop. */
    pthread_cond_t done;  /* The last busy helper finished. */
    unsigned long generation;
    int stop;
    /* The loop in progress. */
    nf_crew_fn fn;
    void *arg;
    int n, next;
    int busy; /* Helpers inside the current loop. */
};

struct helper_arg {
    struct nf_crew *crew;
    int worker;
};

/* Runs indexes of the current loop until none is left. Lock held on entry
 * and on return. */
static void work(struct nf_crew *c, int worker)
{
    while (c->next < c->n) {
        int i = c->next++;
        nf_crew_fn fn = c->fn;
        void *arg = c->arg;
        pthread_mutex_unlock(&c->lock);
        fn(arg, i, worker);
        pthread_mutex_lock(&c->lock);
    }
}

static void *helper_main(void *p)
{
    struct helper_arg ha = *(struct helper_arg *)p;
    struct nf_crew *c = ha.crew;
    unsigned long seen = 0;
    free(p);
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->stop && c->generation == seen)
            pthread_cond_wait(&c->start, &c->lock);
        if (c->stop)
            break;
        seen = c->generation;
        c->busy++;
        work(c, ha.worker);
        if (--c->busy == 0)
            pthread_cond_signal(&c->done);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int nf_crew_init(struct nf_crew **out, int helpers)
{
    struct nf_crew *c;
    *out = NULL;
    if (helpers < 0 || helpers >= NF_CREW_MAX)
        return NF_EINVAL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NF_ENOMEM;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NF_ENOMEM;
    }
    pthread_cond_init(&c->start, NULL);
    pthread_cond_init(&c->done, NULL);
    for (int i = 0; i < helpers; i++) {
        struct helper_arg *ha = malloc(sizeof *ha);
        if (ha == NULL) {
            nf_crew_free(c);
            return NF_ENOMEM;
        }
        *ha = (struct helper_arg){c, i + 1};
        if (pthread_create(&c->threads[i], NULL, helper_main, ha) != 0) {
            free(ha);
            nf_crew_free(c);
            return NF_EIO;
        }
        c->helpers++;
    }
    *out = c;
    return 0;
}

void nf_crew_run(struct nf_crew *c, int n, nf_crew_fn fn, void *arg)
{
    if (c->helpers == 0 || n <= 1) {
        for (int i = 0; i < n; i++)
            fn(arg, i, 0);
        return;
    }
    pthread_mutex_lock(&c->lock);
    c->fn = fn;
    c->arg = arg;
    c->n = n;
    c->next = 0;
    c->generation++;
    pthread_cond_broadcast(&c->start);
    work(c, 0);
    /* A helper that has not woken yet finds no index left and leaves
     * busy as it was; one inside the loop is waited for. */
    while (c->busy > 0)
        pthread_cond_wait(&c->done, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

int nf_crew_size(const struct nf_crew *c)
{
    return c->helpers + 1;
}

void nf_crew_free(struct nf_crew *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    pthread_cond_broadcast(&c->start);
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < c->helpers; i++)
        pthread_join(c->threads[i], NULL);
    pthread_cond_destroy(&c->start);
    pthread_cond_destroy(&c->done);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
