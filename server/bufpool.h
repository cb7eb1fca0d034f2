/*
 * bufpool.h - a pool of reusable byte buffers for frames.
 *
 * Frames are received into, and replies encoded into, buffers taken from
 * the pool and given back after use; a buffer keeps its capacity, so once
 * the pool has warmed up to the stream sizes no frame allocates memory.
 * Thread-safe: the loop thread and the worker both take and give back.
 */
#ifndef NF_BUFPOOL_H
#define NF_BUFPOOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct nf_buf {
    struct nf_buf *next; /* Free-list link; owned by the pool while free. */
    uint8_t *data;       /* cap bytes, owned by this buffer. */
    size_t cap;
    size_t len; /* Bytes in use; set by the holder. */
};

struct nf_bufpool {
    pthread_mutex_t lock;
    struct nf_buf *free; /* Guarded by lock. */
    size_t n_free;       /* Guarded by lock. */
    size_t n_total;      /* Guarded by lock: buffers alive. */
    size_t bytes_total;  /* Guarded by lock: capacity of all buffers. */
};

int nf_bufpool_init(struct nf_bufpool *p);
/* Frees every free buffer; all buffers must have been given back. */
void nf_bufpool_free(struct nf_bufpool *p);

/*
 * Takes a buffer with at least min_cap bytes (len 0), preferring a free one
 * that is large enough. Returns NULL when out of memory. Any thread.
 */
struct nf_buf *nf_bufpool_get(struct nf_bufpool *p, size_t min_cap);

/*
 * Grows b to at least min_cap bytes keeping its contents. Returns 0 or
 * NF_ENOMEM (b unchanged). The caller holds b exclusively.
 */
int nf_buf_reserve(struct nf_bufpool *p, struct nf_buf *b, size_t min_cap);

/* Gives b back to the pool; accepts NULL. Any thread. */
void nf_bufpool_put(struct nf_bufpool *p, struct nf_buf *b);

#endif /* NF_BUFPOOL_H */
