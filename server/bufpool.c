/* bufpool.c - reusable frame buffers (see bufpool.h). */
#include "bufpool.h"

#include <stdlib.h>

#include "error.h"

/* A free list longer than this returns buffers to the heap. */
#define NF_BUFPOOL_MAX_FREE 256

int nf_bufpool_init(struct nf_bufpool *p)
{
    p->free = NULL;
    p->n_free = 0;
    p->n_total = 0;
    p->bytes_total = 0;
    if (pthread_mutex_init(&p->lock, NULL) != 0)
        return NF_ENOMEM;
    return 0;
}

void nf_bufpool_free(struct nf_bufpool *p)
{
    struct nf_buf *b = p->free;
    while (b) {
        struct nf_buf *next = b->next;
        free(b->data);
        free(b);
        b = next;
    }
    p->free = NULL;
    pthread_mutex_destroy(&p->lock);
}

struct nf_buf *nf_bufpool_get(struct nf_bufpool *p, size_t min_cap)
{
    struct nf_buf *b, **pp, **best = NULL;

    pthread_mutex_lock(&p->lock);
    /* Best fit: the smallest free buffer that is large enough, else the
     * largest one, which nf_buf_reserve() then grows. */
    for (pp = &p->free; *pp; pp = &(*pp)->next) {
        size_t c = (*pp)->cap, bc;
        if (!best) {
            best = pp;
            continue;
        }
        bc = (*best)->cap;
        if (c >= min_cap ? (bc < min_cap || c < bc) : (bc < min_cap && c > bc))
            best = pp;
    }
    if (best) {
        b = *best;
        *best = b->next;
        p->n_free--;
        pthread_mutex_unlock(&p->lock);
        b->next = NULL;
        b->len = 0;
        if (nf_buf_reserve(p, b, min_cap) != 0) {
            nf_bufpool_put(p, b);
            return NULL;
        }
        return b;
    }
    pthread_mutex_unlock(&p->lock);

    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    pthread_mutex_lock(&p->lock);
    p->n_total++;
    pthread_mutex_unlock(&p->lock);
    if (nf_buf_reserve(p, b, min_cap ? min_cap : 1) != 0) {
        nf_bufpool_put(p, b);
        return NULL;
    }
    return b;
}

int nf_buf_reserve(struct nf_bufpool *p, struct nf_buf *b, size_t min_cap)
{
    size_t cap = b->cap ? b->cap : 4096;
    uint8_t *d;

    if (b->cap >= min_cap)
        return 0;
    while (cap < min_cap)
        cap = cap > SIZE_MAX / 2 ? min_cap : cap * 2;
    d = realloc(b->data, cap);
    if (!d)
        return NF_ENOMEM;
    pthread_mutex_lock(&p->lock);
    p->bytes_total += cap - b->cap;
    pthread_mutex_unlock(&p->lock);
    b->data = d;
    b->cap = cap;
    return 0;
}

void nf_bufpool_put(struct nf_bufpool *p, struct nf_buf *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->n_free >= NF_BUFPOOL_MAX_FREE) {
        p->n_total--;
        p->bytes_total -= b->cap;
        pthread_mutex_unlock(&p->lock);
        free(b->data);
        free(b);
        return;
    }
    b->next = p->free;
    p->free = b;
    p->n_free++;
    pthread_mutex_unlock(&p->lock);
}
