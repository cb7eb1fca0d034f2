/*
 * backend-impl.h - what a backend implements (implementer-only).
 *
 * As ggml splits ggml-backend.h from ggml-backend-impl.h, the public
 * backend.h sees opaque handles and this header defines them: a table of
 * function pointers per backend (struct nf_backend_i) plus the generic
 * handles that backend.c allocates and that carry each backend's private
 * context. backend.c validates arguments, keeps the list of open slots and
 * dispatches; a backend only does the work.
 *
 * Adding a backend: write kernels/<name>/backend-<name>.c defining a const
 * struct nf_backend_i, and list it in backend.c's registry (before "ref" if
 * "auto" or "cpu" should prefer it). A backend that must not be linked into
 * the server (CUDA) is a shared library exporting its table, loaded at run
 * time by backend-load.c.
 */
#ifndef NF_BACKEND_IMPL_H
#define NF_BACKEND_IMPL_H

#include <pthread.h>

#include "backend.h"
#include "model.h"

struct nf_backend_i {
    const char *name; /* "ref", "dnnl", "cuda". */

    /*
     * 1 if predict applies an item's struct nf_correction (backend.h and
     * kernels/correct.h say how); items that carry one are NF_EUNSUPPORTED
     * on a backend that does not.
     */
    int corrections;

    /*
     * 1 if predict also applies a correction's motion map and stabilization
     * (struct nf_corr_motion, struct nf_corr_stab); items that carry them
     * are NF_EUNSUPPORTED on a backend that does not.
     */
    int stabilizes;

    /*
     * Optional (NULL: always). Whether this machine can run the backend at
     * all, e.g. a CUDA device is present. Cheap; any thread.
     */
    int (*available)(void);

    /*
     * Optional. After available() returned 0: why, as one line ("no CUDA
     * device (cudaGetDeviceCount: ...)"), in static storage; NULL: no
     * reason known. Any thread.
     */
    const char *(*unavailable_reason)(void);

    /*
     * Optional (NULL: every model). Whether the backend implements every op
     * and attribute the model uses. "auto" skips backends that return 0.
     */
    int (*supports)(const struct nf_model *m);

    /*
     * Sets b->context. b->model and b->iface are already set. threads is
     * the caller's hint (0 = the backend's default). Returns 0, NF_ENOMEM or
     * NF_EBACKEND; on failure it leaves nothing allocated.
     */
    int (*init)(struct nf_backend *b, int threads);

    /* Frees b->context. Every slot has already been freed. */
    void (*free)(struct nf_backend *b);

    /*
     * Sets s->context to a new, cold slot. Returns 0 or NF_ENOMEM. May run
     * on any thread while predict runs on other slots: touch only the slot.
     */
    int (*slot_new)(struct nf_backend *b, struct nf_slot *s);

    /* Frees s->context. Same threading as slot_new. */
    void (*slot_free)(struct nf_backend *b, struct nf_slot *s);

    /* Makes the slot cold. Same threading as slot_new. */
    void (*slot_reset)(struct nf_backend *b, struct nf_slot *s);

    /*
     * Runs the items in order, with the semantics of nf_backend_predict().
     * backend.c has checked every item: those with status 0 are valid
     * (non-NULL images of equal, positive size at most NF_BACKEND_MAX_SIDE,
     * a slot of this backend, each slot at most once); those with a
     * negative status must be skipped. Sets each valid item's status and
     * returns 0 or the first error.
     */
    int (*predict)(struct nf_backend *b, struct nf_predict_item *items, int n);

    /*
     * Optional (NULL: the heap). Host memory of `bytes` that predict moves
     * faster than any other (cuda: page-locked, transferred without a
     * staging copy), zeroed, aligned to 64; and its release. Any thread.
     */
    void *(*host_alloc)(size_t bytes);
    void (*host_free)(void *p);
};

struct nf_backend {
    const struct nf_backend_i *iface; /* Immutable after init. */
    const struct nf_model *model;     /* Borrowed; outlives the backend. */
    void *context;                    /* The backend's own state. */
    struct nf_slot *slots;            /* Open slots; guarded by lock. */
    pthread_mutex_t lock;             /* Guards slots and the links. */
};

struct nf_slot {
    struct nf_backend *backend;  /* Owner; immutable. */
    void *context;               /* The backend's per-slot state. */
    struct nf_slot *prev, *next; /* In backend->slots; guarded by its lock. */
};

/*
 * Runs m's graph once on the CPU reference backend with float inputs and
 * returns the float output, for tests and tools that compare the reference
 * with another implementation (the golden tests against PyTorch). No
 * padding, clamping, rounding or cache update: frame and each cache[i] (i <
 * K = nf_model_cache_frames(m)) are (3, h, w) planar floats read as the
 * values "frame" and "cache.i"; out receives the graph's output value,
 * (3, h, w), as computed. cache may be NULL when K is 0. h and w must be
 * positive multiples of nf_model_size_multiple(m). Returns 0, NF_EINVAL or
 * NF_ENOMEM. Allocates and frees its own scratch; any thread.
 */
int nf__cpu_run_float(const struct nf_model *m, const float *frame,
                      const float *const *cache, int h, int w, float *out);

#endif /* NF_BACKEND_IMPL_H */
