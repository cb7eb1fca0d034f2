/*
 * scheduler.c - the inference worker thread and its mailboxes (see
 * scheduler.h).
 */
#include "scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "error.h"
#include "jpeg.h"
#include "timeutil.h"

#define NF_SCHED_MAX_BATCH 64

/* Per batch position: decoded input and output pixels, reused. */
struct worker_img {
    uint8_t *rgb_in;
    uint8_t *rgb_out;
    size_t cap; /* Bytes of each. */
};

struct nf_sched {
    /* Immutable after init. */
    uv_loop_t *loop;
    struct nf_bufpool *pool;
    struct nf_sched_config cfg;
    nf_sched_done_cb on_done;
    void *arg;
    pthread_t thread;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* Guarded by lock. */
    struct nf_sched_client *ready_head, *ready_tail;
    struct nf_job *done_head, *done_tail;
    int stop;
    int backlog;

    uv_async_t async; /* Loop thread (uv_async_send from any thread). */
    void (*close_cb)(void *);
    void *close_arg;

    /* Worker thread only. */
    struct nf_jpeg *jpeg;
    struct worker_img img[NF_SCHED_MAX_BATCH];
};

static int img_reserve(struct worker_img *w, size_t bytes)
{
    uint8_t *a, *b;

    if (w->cap >= bytes)
        return 0;
    a = realloc(w->rgb_in, bytes);
    if (!a)
        return NF_ENOMEM;
    w->rgb_in = a;
    b = realloc(w->rgb_out, bytes);
    if (!b)
        return NF_ENOMEM;
    w->rgb_out = b;
    w->cap = bytes;
    return 0;
}

/* Decodes job's JPEG into w->rgb_in. Worker thread. */
static int decode_job(struct nf_sched *s, struct nf_job *job,
                      struct worker_img *w)
{
    int wd = job->hdr.width, ht = job->hdr.height, err;
    uint64_t t0 = nf_now_us();

    err = img_reserve(w, (size_t)wd * ht * 3);
    if (err)
        return err;
    err = nf_jpeg_decode_rgb(s->jpeg, job->in->data + job->payload_off,
                             job->hdr.payload_len, w->rgb_in, wd, ht, wd * 3);
    job->decode_us = (uint32_t)(nf_now_us() - t0);
    return err;
}

/*
 * Gets or creates the job's temporal state (its slots) and applies
 * requested settings and reset.
 */
static int prepare_temporal(struct nf_job *job, struct nf_temporal **out)
{
    struct nf_temporal **t = &job->client->temporal[job->style];

    if (!*t) {
        int err = nf_temporal_new(job->backend, &job->params, t);
        if (err)
            return err;
    } else {
        if (job->params_set) {
            int err = nf_temporal_set_params(*t, &job->params);
            if (err)
                return err;
        }
        if (job->reset)
            nf_temporal_reset(*t);
    }
    *out = *t;
    return 0;
}

/* Encodes w->rgb_out into a reply buffer for job. Worker thread. */
static int encode_job(struct nf_sched *s, struct nf_job *job,
                      struct worker_img *w)
{
    int wd = job->hdr.width, ht = job->hdr.height, n;
    size_t off = s->cfg.out_headroom + NF_WIRE_FRAME_OUT_LEN;
    size_t bound = nf_jpeg_bound(wd, ht);
    uint64_t t0 = nf_now_us();

    job->out = nf_bufpool_get(s->pool, off + bound);
    if (!job->out)
        return NF_ENOMEM;
    n = nf_jpeg_encode_rgb(s->jpeg, w->rgb_out, wd, ht, wd * 3, job->quality,
                           job->out->data + off, bound);
    job->encode_us = (uint32_t)(nf_now_us() - t0);
    if (n < 0)
        return n;
    job->out_jpeg_len = (uint32_t)n;
    job->out->len = off + (size_t)n;
    return 0;
}

/*
 * Runs one batch: decode every job, predict the jobs of each backend
 * together (each job adds one item, two on its anchor frames), stabilize
 * each output (nf_temporal_end), encode every job. A failed job gets its
 * status and the others go on.
 */
static void run_batch(struct nf_sched *s, struct nf_job **jobs, int n)
{
    struct nf_predict_item items[NF_SCHED_MAX_BATCH][NF_TEMPORAL_MAX_ITEMS];
    struct nf_temporal *temporal[NF_SCHED_MAX_BATCH];
    struct nf_image in[NF_SCHED_MAX_BATCH], out[NF_SCHED_MAX_BATCH];
    int n_items[NF_SCHED_MAX_BATCH] = {0};
    int done[NF_SCHED_MAX_BATCH] = {0};

    for (int i = 0; i < n; i++) {
        struct nf_job *j = jobs[i];
        j->t_start_us = nf_now_us();
        j->status = decode_job(s, j, &s->img[i]);
        if (j->status == 0)
            j->status = prepare_temporal(j, &temporal[i]);
        if (j->status == 0) {
            in[i] = (struct nf_image){s->img[i].rgb_in, j->hdr.width,
                                      j->hdr.height, j->hdr.width * 3};
            out[i] = (struct nf_image){s->img[i].rgb_out, j->hdr.width,
                                       j->hdr.height, j->hdr.width * 3};
            n_items[i] =
                nf_temporal_begin(temporal[i], &in[i], &out[i], items[i]);
            if (n_items[i] < 0)
                j->status = n_items[i];
        }
        if (j->status != 0)
            done[i] = 1;
    }
    /* Group the remaining jobs by backend, one predict call per group. */
    for (int i = 0; i < n; i++) {
        struct nf_predict_item
            group[NF_SCHED_MAX_BATCH * NF_TEMPORAL_MAX_ITEMS];
        int members[NF_SCHED_MAX_BATCH], m = 0, g = 0;
        uint64_t t0, dt;
        if (done[i])
            continue;
        for (int k = i; k < n; k++) {
            if (!done[k] && jobs[k]->backend == jobs[i]->backend) {
                members[m++] = k;
                memcpy(&group[g], items[k], sizeof items[k][0] * n_items[k]);
                g += n_items[k];
                done[k] = 1;
            }
        }
        t0 = nf_now_us();
        nf_backend_predict(jobs[i]->backend, group, g);
        dt = nf_now_us() - t0;
        g = 0;
        for (int k = 0; k < m; k++) {
            int x = members[k];
            struct nf_job *j = jobs[x];
            memcpy(items[x], &group[g], sizeof items[x][0] * n_items[x]);
            g += n_items[x];
            j->predict_us = (uint32_t)dt;
            j->status = nf_temporal_end(temporal[x], items[x], n_items[x]);
            j->drift = nf_temporal_drift(temporal[x]);
            if (j->status == 0)
                j->status = encode_job(s, j, &s->img[x]);
        }
    }
}

static void *worker_main(void *arg)
{
    struct nf_sched *s = arg;
    struct nf_job *jobs[NF_SCHED_MAX_BATCH];

    for (;;) {
        int n = 0;
        pthread_mutex_lock(&s->lock);
        while (!s->stop && !s->ready_head)
            pthread_cond_wait(&s->cond, &s->lock);
        if (s->stop) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        while (s->ready_head && n < s->cfg.max_batch) {
            struct nf_sched_client *c = s->ready_head;
            s->ready_head = c->next_ready;
            if (!s->ready_head)
                s->ready_tail = NULL;
            c->next_ready = NULL;
            c->in_ready = 0;
            jobs[n++] = c->pending;
            c->pending = NULL;
        }
        pthread_mutex_unlock(&s->lock);

        run_batch(s, jobs, n);

        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < n; i++) {
            jobs[i]->next = NULL;
            if (s->done_tail)
                s->done_tail->next = jobs[i];
            else
                s->done_head = jobs[i];
            s->done_tail = jobs[i];
        }
        pthread_mutex_unlock(&s->lock);
        uv_async_send(&s->async);
    }
    return NULL;
}

/* Loop thread: hands every finished job to on_done. */
static void on_async(uv_async_t *h)
{
    struct nf_sched *s = h->data;
    struct nf_job *j;

    pthread_mutex_lock(&s->lock);
    j = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    while (j) {
        struct nf_job *next = j->next;
        pthread_mutex_lock(&s->lock);
        s->backlog--;
        pthread_mutex_unlock(&s->lock);
        s->on_done(s, j, 0, s->arg);
        j = next;
    }
}

static void stop_worker(struct nf_sched *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
}

static void free_sched(struct nf_sched *s)
{
    for (int i = 0; i < NF_SCHED_MAX_BATCH; i++) {
        free(s->img[i].rgb_in);
        free(s->img[i].rgb_out);
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    nf_jpeg_free(s->jpeg);
    free(s);
}

int nf_sched_init(struct nf_sched **out, uv_loop_t *loop,
                  struct nf_bufpool *pool, const struct nf_sched_config *cfg,
                  nf_sched_done_cb on_done, void *arg)
{
    struct nf_sched *s = calloc(1, sizeof *s);

    *out = NULL;
    if (!s)
        return NF_ENOMEM;
    s->loop = loop;
    s->pool = pool;
    s->cfg = *cfg;
    if (s->cfg.max_batch < 1)
        s->cfg.max_batch = 1;
    if (s->cfg.max_batch > NF_SCHED_MAX_BATCH)
        s->cfg.max_batch = NF_SCHED_MAX_BATCH;
    s->on_done = on_done;
    s->arg = arg;
    if (nf_jpeg_init(&s->jpeg) != 0)
        goto fail;
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto fail_jpeg;
    if (pthread_cond_init(&s->cond, NULL) != 0)
        goto fail_lock;
    /* The worker sends on the async handle only after a submit, and no
     * submit can happen before this function returns. */
    if (pthread_create(&s->thread, NULL, worker_main, s) != 0)
        goto fail_cond;
    if (uv_async_init(loop, &s->async, on_async) != 0) {
        stop_worker(s);
        free_sched(s);
        return NF_EIO;
    }
    s->async.data = s;
    *out = s;
    return 0;

fail_cond:
    pthread_cond_destroy(&s->cond);
fail_lock:
    pthread_mutex_destroy(&s->lock);
fail_jpeg:
    nf_jpeg_free(s->jpeg);
fail:
    free(s);
    return NF_ENOMEM;
}

void nf_sched_submit(struct nf_sched *s, struct nf_job *job)
{
    struct nf_sched_client *c = job->client;
    struct nf_job *old;

    pthread_mutex_lock(&s->lock);
    old = c->pending;
    c->pending = job;
    if (!old)
        s->backlog++;
    if (!c->in_ready) {
        c->in_ready = 1;
        c->next_ready = NULL;
        if (s->ready_tail)
            s->ready_tail->next_ready = c;
        else
            s->ready_head = c;
        s->ready_tail = c;
    }
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (old)
        s->on_done(s, old, 1, s->arg);
}

struct nf_job *nf_sched_cancel(struct nf_sched *s, struct nf_sched_client *c)
{
    struct nf_job *job;

    pthread_mutex_lock(&s->lock);
    job = c->pending;
    c->pending = NULL;
    if (c->in_ready) {
        struct nf_sched_client **pp = &s->ready_head, *prev = NULL;
        while (*pp && *pp != c) {
            prev = *pp;
            pp = &(*pp)->next_ready;
        }
        if (*pp) {
            *pp = c->next_ready;
            if (s->ready_tail == c)
                s->ready_tail = prev;
        }
        c->in_ready = 0;
        c->next_ready = NULL;
    }
    if (job)
        s->backlog--;
    pthread_mutex_unlock(&s->lock);
    return job;
}

static void after_async_close(uv_handle_t *h)
{
    struct nf_sched *s = h->data;
    void (*cb)(void *) = s->close_cb;
    void *arg = s->close_arg;

    free_sched(s);
    if (cb)
        cb(arg);
}

void nf_sched_close(struct nf_sched *s, void (*cb)(void *), void *arg)
{
    stop_worker(s);
    /* Hand back what the worker finished before it stopped. */
    on_async(&s->async);
    s->close_cb = cb;
    s->close_arg = arg;
    uv_close((uv_handle_t *)&s->async, after_async_close);
}

int nf_sched_backlog(struct nf_sched *s)
{
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->backlog;
    pthread_mutex_unlock(&s->lock);
    return n;
}
