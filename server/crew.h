/*
 * crew.h - a fixed team of helper threads that runs a parallel loop
 * together with the thread that asks for it.
 *
 * The scheduler's codec thread uses one so that the JPEG decode, drift
 * correction and encode of a batch's frames run on several cores at once
 * (scheduler.c): on a machine whose GPU predicts faster than one core can
 * encode, that work is what limits the frames per second.
 *
 *   struct nf_crew *c;
 *   nf_crew_init(&c, 3);              // 3 helpers: 4 workers in all
 *   nf_crew_run(c, n, fn, arg);       // fn(arg, i, worker) for i < n
 *   nf_crew_free(c);
 *
 * Threads: nf_crew_run is called by one thread at a time (the owner); it
 * returns once every index has run. Worker 0 is the caller, 1..helpers the
 * helpers, so fn may keep per-worker state (a TurboJPEG handle, say)
 * indexed by worker.
 */
#ifndef NF_CREW_H
#define NF_CREW_H

/* Most workers a crew has (helpers + 1). */
#define NF_CREW_MAX 32

struct nf_crew;

typedef void (*nf_crew_fn)(void *arg, int index, int worker);

/*
 * Starts a crew of `helpers` threads (0..NF_CREW_MAX-1; 0 runs every loop
 * on the caller). Returns 0, NF_EINVAL, NF_ENOMEM or NF_EIO (a thread
 * could not start).
 */
int nf_crew_init(struct nf_crew **out, int helpers);

/* Runs fn(arg, i, worker) for every i in [0, n), spread over the caller
 * and the helpers; returns when all have returned. */
void nf_crew_run(struct nf_crew *c, int n, nf_crew_fn fn, void *arg);

/* Workers of the crew: helpers + 1. */
int nf_crew_size(const struct nf_crew *c);

/* Stops and joins the helpers; accepts NULL. Not during nf_crew_run. */
void nf_crew_free(struct nf_crew *c);

#endif /* NF_CREW_H */
