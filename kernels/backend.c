/*
 * backend.c - the backend registry and the dispatch of backend.h calls.
 *
 * Everything common to all backends lives here: picking a backend by name,
 * argument checks, the list of open slots (so that nf_backend_free can close
 * them), and the validation of predict items. The backends in backend-impl.h
 * see only valid calls.
 *
 * Names: each backend answers to its own name ("cuda", the CUDA backend in
 * kernels/cuda/, a shared library loaded at run time by backend-load.c;
 * "dnnl", the oneDNN CPU backend in kernels/dnnl/; "ref", the reference in
 * kernels/cpu/). Two names choose among them, in the registry's order of
 * preference, skipping a backend that is not available on this machine or
 * does not support the model: "cpu" takes the best CPU backend, "auto" the
 * best of all.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend-impl.h"
#include "backend-load.h"
#include "correct.h"
#include "error.h"

extern const struct nf_backend_i nf__backend_cpu; /* "ref" */
#ifdef NF_HAVE_DNNL
extern const struct nf_backend_i nf__backend_dnnl; /* "dnnl" */
#endif

/* In order of preference for "auto" and "cpu"; faster backends go first. */
static const struct {
    const struct nf_backend_i *iface;
    int cpu; /* Runs on the host CPU: a candidate for "cpu". */
} registry[] = {
    {&nf__backend_cuda, 0},
#ifdef NF_HAVE_DNNL
    {&nf__backend_dnnl, 1},
#endif
    {&nf__backend_cpu, 1},
};
#define N_REGISTRY (sizeof registry / sizeof registry[0])

/* The available backends' names, filled once by list_names. */
static pthread_once_t names_once = PTHREAD_ONCE_INIT;
static const char *names[N_REGISTRY + 1];

static void list_names(void)
{
    size_t n = 0;
    for (size_t k = 0; k < N_REGISTRY; k++) {
        const struct nf_backend_i *i = registry[k].iface;
        if (i->available == NULL || i->available())
            names[n++] = i->name;
    }
    names[n] = NULL;
}

const char *const *nf_backend_list(void)
{
    pthread_once(&names_once, list_names);
    return names;
}

const char *nf_backend_why_unavailable(const char *name)
{
    for (size_t k = 0; name != NULL && k < N_REGISTRY; k++) {
        const struct nf_backend_i *i = registry[k].iface;
        if (strcmp(name, i->name) != 0 || i->available == NULL ||
            i->available())
            continue;
        const char *why =
            i->unavailable_reason ? i->unavailable_reason() : NULL;
        return why ? why : "not available on this machine";
    }
    return NULL;
}

static int usable(const struct nf_backend_i *i, const struct nf_model *m)
{
    return (i->available == NULL || i->available()) &&
           (i->supports == NULL || i->supports(m));
}

/* The first registry index from `from` on that name selects and that can
 * run m here, or -1. */
static int pick(const char *name, const struct nf_model *m, size_t from)
{
    int any = strcmp(name, "auto") == 0, cpu = strcmp(name, "cpu") == 0;
    for (size_t k = from; k < N_REGISTRY; k++) {
        const struct nf_backend_i *i = registry[k].iface;
        if ((any || (cpu && registry[k].cpu) || strcmp(name, i->name) == 0) &&
            usable(i, m))
            return (int)k;
    }
    return -1;
}

static int init_one(const struct nf_backend_i *iface, const struct nf_model *m,
                    int threads, struct nf_backend **out)
{
    struct nf_backend *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NF_ENOMEM;
    b->iface = iface;
    b->model = m;
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        free(b);
        return NF_ENOMEM;
    }
    int rc = iface->init(b, threads);
    if (rc < 0) {
        pthread_mutex_destroy(&b->lock);
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int nf_backend_init(const char *name, const struct nf_model *m, int threads,
                    struct nf_backend **out)
{
    if (out == NULL)
        return NF_EINVAL;
    *out = NULL;
    if (name == NULL || m == NULL || threads < 0)
        return NF_EINVAL;
    int choose = strcmp(name, "auto") == 0 || strcmp(name, "cpu") == 0;
    int rc = NF_ENO_BACKEND;
    /* A chosen backend whose device fails to start (NF_EBACKEND: a CUDA
     * device that is present but unusable) gives way to the next one. */
    for (int k = pick(name, m, 0); k >= 0; k = pick(name, m, (size_t)k + 1)) {
        rc = init_one(registry[k].iface, m, threads, out);
        if (rc == 0 || !choose || rc != NF_EBACKEND)
            break;
    }
    return rc;
}

void nf_backend_free(struct nf_backend *b)
{
    if (b == NULL)
        return;
    while (b->slots != NULL)
        nf_backend_slot_free(b, b->slots);
    b->iface->free(b);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

const char *nf_backend_name(const struct nf_backend *b)
{
    return b->iface->name;
}

int nf_backend_stabilizes(const struct nf_backend *b)
{
    return b->iface->corrections && b->iface->stabilizes;
}

const struct nf_model *nf_backend_model(const struct nf_backend *b)
{
    return b->model;
}

int nf_backend_slot_new(struct nf_backend *b, struct nf_slot **out)
{
    if (out == NULL)
        return NF_EINVAL;
    *out = NULL;
    if (b == NULL)
        return NF_EINVAL;
    struct nf_slot *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NF_ENOMEM;
    s->backend = b;
    int rc = b->iface->slot_new(b, s);
    if (rc < 0) {
        free(s);
        return rc;
    }
    pthread_mutex_lock(&b->lock);
    s->next = b->slots;
    if (b->slots != NULL)
        b->slots->prev = s;
    b->slots = s;
    pthread_mutex_unlock(&b->lock);
    *out = s;
    return 0;
}

/*
 * Host buffers: a 64-byte header before the caller's bytes holds the
 * function that frees the block, so nf_backend_host_free needs no backend
 * (the CUDA library's is never unloaded, backend-load.c).
 */
#define HOST_HEADER 64

typedef void (*host_free_fn)(void *);

static void heap_free(void *p)
{
    free(p);
}

void *nf_backend_host_alloc(const struct nf_backend *b, size_t bytes)
{
    const struct nf_backend_i *i = b != NULL ? b->iface : NULL;
    /* NF_CUDA_PINNED=0: the heap for every backend, to measure what the
     * page-locked path buys (bench/RESULTS.md). */
    const char *pin = getenv("NF_CUDA_PINNED");
    int own = i != NULL && i->host_alloc != NULL && i->host_free != NULL &&
              !(pin != NULL && strcmp(pin, "0") == 0);
    host_free_fn release = own ? i->host_free : heap_free;
    size_t total;
    uint8_t *base;
    if (bytes > SIZE_MAX - 2 * HOST_HEADER)
        return NULL;
    total = (bytes + HOST_HEADER + 63) / 64 * 64;
    base = own ? i->host_alloc(total) : aligned_alloc(64, total);
    if (base == NULL)
        return NULL;
    if (!own)
        memset(base, 0, total);
    memcpy(base, &release, sizeof release);
    return base + HOST_HEADER;
}

void nf_backend_host_free(void *p)
{
    host_free_fn release;
    if (p == NULL)
        return;
    memcpy(&release, (uint8_t *)p - HOST_HEADER, sizeof release);
    release((uint8_t *)p - HOST_HEADER);
}

void nf_backend_slot_free(struct nf_backend *b, struct nf_slot *s)
{
    if (b == NULL || s == NULL || s->backend != b)
        return;
    pthread_mutex_lock(&b->lock);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        b->slots = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&b->lock);
    b->iface->slot_free(b, s);
    free(s);
}

void nf_backend_slot_reset(struct nf_backend *b, struct nf_slot *s)
{
    if (b == NULL || s == NULL || s->backend != b)
        return;
    b->iface->slot_reset(b, s);
}

static int check_image(const struct nf_image *im)
{
    if (im == NULL || im->data == NULL || im->width <= 0 || im->height <= 0)
        return NF_EINVAL;
    if (im->width > NF_BACKEND_MAX_SIDE || im->height > NF_BACKEND_MAX_SIDE)
        return NF_ERANGE;
    if (im->stride < 3 * im->width)
        return NF_EINVAL;
    return 0;
}

/* Whether v lies in [lo, hi]; NaN does not. */
static int in_range(float v, float lo, float hi)
{
    return v >= lo && v <= hi;
}

/* A correction's values. */
static int check_corr(const struct nf_backend *b, const struct nf_correction *c)
{
    if (c == NULL)
        return 0;
    if (!in_range(c->decay, 0.0f, 1.0f))
        return NF_EINVAL;
    if (c->offset != NULL && (c->grid_w < 1 || c->grid_w > NF_CORR_MAX_GRID ||
                              c->grid_h < 1 || c->grid_h > NF_CORR_MAX_GRID))
        return NF_EINVAL;
    const struct nf_corr_motion *m = c->motion;
    if (m != NULL && (m->prev == NULL || m->copy == NULL || m->motion == NULL ||
                      !in_range(m->threshold, 0.0f, 255.0f) ||
                      !in_range(m->refresh, 0.0f, 1.0f)))
        return NF_EINVAL;
    const struct nf_corr_stab *st = c->stab;
    if (st != NULL && (st->motion == NULL || st->avg == NULL ||
                       st->shown == NULL || !in_range(st->blend, 0.0f, 1.0f) ||
                       !in_range(st->deadband, 0.0f, 255.0f)))
        return NF_EINVAL;
    if (!b->iface->corrections ||
        ((m != NULL || st != NULL) && !nf_backend_stabilizes(b)))
        return NF_EUNSUPPORTED;
    return 0;
}

static int check_item(const struct nf_backend *b,
                      const struct nf_predict_item *items, int i)
{
    const struct nf_predict_item *it = &items[i];
    if (it->slot == NULL || it->slot->backend != b)
        return NF_EINVAL;
    for (int j = 0; j < i; j++)
        if (items[j].slot == it->slot)
            return NF_EINVAL;
    int rc = check_image(it->in);
    if (rc == 0)
        rc = check_image(it->out);
    if (rc == 0 &&
        (it->in->width != it->out->width || it->in->height != it->out->height))
        rc = NF_EINVAL;
    if (rc == 0)
        rc = check_corr(b, it->corr);
    return rc;
}

int nf_backend_predict(struct nf_backend *b, struct nf_predict_item *items,
                       int n)
{
    if (b == NULL || n < 0 || (items == NULL && n > 0))
        return NF_EINVAL;
    int valid = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        items[i].status = check_item(b, items, i);
        valid += items[i].status == 0;
    }
    if (valid > 0)
        rc = b->iface->predict(b, items, n);
    for (int i = 0; i < n; i++)
        if (items[i].status < 0)
            return items[i].status;
    return rc;
}
