/*
 * scheduler.c - the inference pipeline (codec and predict threads) and its
 * mailboxes (see scheduler.h).
 */
#include "scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "crew.h"
#include "error.h"
#include "jpeg.h"
#include "timeutil.h"

#define NF_SCHED_MAX_BATCH 64
#define NF_SCHED_SLOTS     2 /* Batches in the pipeline at once. */

/* Per batch position: decoded input and output pixels, reused. */
struct worker_img {
    uint8_t *rgb_in;
    uint8_t *rgb_out;
    size_t cap; /* Bytes of each. */
};

/* Where a batch slot is in the pipeline. */
enum slot_state {
    SLOT_FREE,      /* Unused. */
    SLOT_PREP,      /* The codec thread decodes it. */
    SLOT_QUEUED,    /* Waits for the predict thread. */
    SLOT_PREDICT,   /* The predict thread runs it. */
    SLOT_PREDICTED, /* Waits for the codec thread to finish it. */
    SLOT_FINISH,    /* The codec thread finishes it (correct, encode). */
    SLOT_SENT,      /* Its frames are handed back; anchors still run. */
};

/*
 * One batch on its way through the pipeline. state is guarded by the
 * scheduler's lock; everything else belongs to the thread the state names
 * (codec thread in PREP and FINISH, predict thread in PREDICT).
 */
struct batch {
    enum slot_state state;
    uint64_t seq; /* Order of preparation: finished in this order. */
    int n;
    struct nf_job *jobs[NF_SCHED_MAX_BATCH];
    struct nf_predict_item items[NF_SCHED_MAX_BATCH][NF_TEMPORAL_MAX_ITEMS];
    struct nf_temporal *temporal[NF_SCHED_MAX_BATCH];
    struct nf_image in[NF_SCHED_MAX_BATCH], out[NF_SCHED_MAX_BATCH];
    int n_items[NF_SCHED_MAX_BATCH];
    int failed[NF_SCHED_MAX_BATCH]; /* Failed before predict. */
    struct worker_img img[NF_SCHED_MAX_BATCH];
    /* What outlives the jobs once they are handed back. */
    struct nf_sched_client *client[NF_SCHED_MAX_BATCH];
    void *session[NF_SCHED_MAX_BATCH];
    struct nf_backend *backend[NF_SCHED_MAX_BATCH];
    int anchored[NF_SCHED_MAX_BATCH]; /* Has an anchor item (items[1]). */
    /* Its anchor is skipped: the session's next frame already waits
     * (nf_temporal_anchor_skippable); items[1].status is NF_EAGAIN. */
    int skipped[NF_SCHED_MAX_BATCH];
    int n_anchored;
    int anchors_done; /* Guarded by lock: every anchor item has run. */
};

/* A session the pipeline no longer uses, released after the first
 * `after` jobs ever handed back (the loop delivers it in that order). */
struct release {
    void *session;
    uint64_t after;
};

struct nf_sched {
    /* Immutable after init. */
    uv_loop_t *loop;
    struct nf_bufpool *pool;
    struct nf_sched_config cfg;
    nf_sched_done_cb on_done;
    void *arg;
    pthread_t codec_thread, predict_thread;

    pthread_mutex_t lock;
    pthread_cond_t codec_cond;   /* Work for the codec thread. */
    pthread_cond_t predict_cond; /* Work for the predict thread. */
    /* Guarded by lock. */
    struct nf_sched_client *ready_head, *ready_tail;
    struct nf_job *done_head, *done_tail;
    uint64_t posted; /* Jobs ever put in the done list. */
    struct release released[NF_SCHED_SLOTS * NF_SCHED_MAX_BATCH];
    int n_released;
    int stop;
    int backlog;
    uint64_t next_seq;
    struct nf_sched_stats stats;

    uv_async_t async;   /* Loop thread (uv_async_send from any thread). */
    uint64_t delivered; /* Loop thread: jobs handed to on_done so far. */
    void (*close_cb)(void *);
    void *close_arg;

    /* States guarded by lock; contents as struct batch says. */
    struct batch slot[NF_SCHED_SLOTS];
    /* Codec thread only: its crew, and a TurboJPEG handle per worker. */
    struct nf_crew *crew;
    struct nf_jpeg *jpeg[NF_CREW_MAX];
    /* Predict thread only: its TurboJPEG handle for solo frames. */
    struct nf_jpeg *solo_jpeg;
};

/* What a loop over a batch's jobs needs: jpeg[worker] is the worker's
 * TurboJPEG handle. */
struct batch_loop {
    struct nf_sched *s;
    struct batch *b;
    int anchors;
    struct nf_jpeg **jpeg;
};

/* Makes w hold bytes for each image, from backend b's host memory (so
 * that a GPU backend moves them without a staging copy). */
static int img_reserve(struct worker_img *w, size_t bytes,
                       const struct nf_backend *b)
{
    uint8_t *a, *c;

    if (w->cap >= bytes)
        return 0;
    a = nf_backend_host_alloc(b, bytes);
    c = nf_backend_host_alloc(b, bytes);
    if (!a || !c) {
        nf_backend_host_free(a);
        nf_backend_host_free(c);
        return NF_ENOMEM;
    }
    nf_backend_host_free(w->rgb_in);
    nf_backend_host_free(w->rgb_out);
    w->rgb_in = a;
    w->rgb_out = c;
    w->cap = bytes;
    return 0;
}

/* Decodes job's JPEG into w->rgb_in. Codec worker. */
static int decode_job(struct nf_jpeg *jpeg, struct nf_job *job,
                      struct worker_img *w)
{
    int wd = job->width, ht = job->height, err;
    uint64_t t0 = nf_now_us();

    err = img_reserve(w, (size_t)wd * ht * 3, job->backend);
    if (err)
        return err;
    err = nf_jpeg_decode_rgb(jpeg, job->in->data + job->payload_off,
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

/* Encodes w->rgb_out into a reply buffer for job. Codec worker. */
static int encode_job(struct nf_sched *s, struct nf_jpeg *jpeg,
                      struct nf_job *job, struct worker_img *w)
{
    int wd = job->width, ht = job->height, n;
    size_t off = s->cfg.out_headroom + NF_WIRE_FRAME_OUT_LEN;
    size_t bound = nf_jpeg_bound(wd, ht);
    uint64_t t0 = nf_now_us();

    job->out = nf_bufpool_get(s->pool, off + bound);
    if (!job->out)
        return NF_ENOMEM;
    n = nf_jpeg_encode_rgb(jpeg, w->rgb_out, wd, ht, wd * 3, job->quality,
                           job->out->data + off, bound);
    job->encode_us = (uint32_t)(nf_now_us() - t0);
    if (n < 0)
        return n;
    job->out_jpeg_len = (uint32_t)n;
    job->out->len = off + (size_t)n;
    return 0;
}

/*
 * Codec crew: decodes job i of the batch and opens its frame (nf_temporal_
 * begin: correction inputs, anchor item). A failed job keeps its status and
 * is skipped by predict. Jobs are of different sessions, so workers never
 * share a session's state.
 */
static void prepare_one(void *arg, int i, int worker)
{
    struct batch_loop *l = arg;
    struct batch *b = l->b;
    struct nf_job *j = b->jobs[i];
    struct worker_img *w = &b->img[i];
    j->t_start_us = nf_now_us();
    b->n_items[i] = 0;
    j->status = decode_job(l->jpeg[worker], j, w);
    if (j->status == 0)
        j->status = prepare_temporal(j, &b->temporal[i]);
    if (j->status == 0) {
        int wd = j->width, ht = j->height;
        b->in[i] = (struct nf_image){w->rgb_in, wd, ht, wd * 3};
        b->out[i] = (struct nf_image){w->rgb_out, wd, ht, wd * 3};
        b->n_items[i] = nf_temporal_begin(b->temporal[i], &b->in[i], &b->out[i],
                                          b->items[i]);
        if (b->n_items[i] < 0)
            j->status = b->n_items[i];
    }
    b->failed[i] = j->status != 0;
    b->anchored[i] = !b->failed[i] && b->n_items[i] == 2;
}

/* Codec thread: prepares every job of b on the crew. */
static void prepare_batch(struct nf_sched *s, struct batch *b)
{
    struct batch_loop l = {s, b, 0, s->jpeg};
    nf_crew_run(s->crew, b->n, prepare_one, &l);
    for (int i = 0; i < b->n; i++)
        b->n_anchored += b->anchored[i];
}

/*
 * Predict thread: runs item `which` of b's jobs (0: each stream's frame; 1:
 * the anchors of anchor frames), those of each backend as one
 * nf_backend_predict() call. Only items[k][which] is touched, so the codec
 * thread may finish the frames while the anchors run; and no job is
 * touched for the anchors, which may run after the jobs were handed back.
 */
static void predict_batch(struct batch *b, int which)
{
    int grouped[NF_SCHED_MAX_BATCH] = {0};
    for (int i = 0; i < b->n; i++) {
        struct nf_predict_item group[NF_SCHED_MAX_BATCH];
        int members[NF_SCHED_MAX_BATCH], m = 0;
        if (b->failed[i] || grouped[i] ||
            (which && (!b->anchored[i] || b->skipped[i])))
            continue;
        for (int k = i; k < b->n; k++) {
            if (!b->failed[k] && !grouped[k] &&
                (!which || (b->anchored[k] && !b->skipped[k])) &&
                b->backend[k] == b->backend[i]) {
                group[m] = b->items[k][which];
                members[m++] = k;
                grouped[k] = 1;
            }
        }
        uint64_t t0 = nf_now_us();
        nf_backend_predict(b->backend[i], group, m);
        uint32_t dt = (uint32_t)(nf_now_us() - t0);
        for (int k = 0; k < m; k++) {
            b->items[members[k]][which] = group[k];
            if (!which)
                b->jobs[members[k]]->predict_us = dt;
        }
    }
}

/*
 * Codec crew: closes predicted frame i (nf_temporal_end_frame: the
 * stabilizer, where the backend does not run it) and encodes it; with
 * anchors also finishes their part (drift, offset field), else
 * finish_anchors() does later.
 */
static void finish_one(void *arg, int i, int worker)
{
    struct batch_loop *l = arg;
    struct batch *b = l->b;
    struct nf_job *j = b->jobs[i];
    if (b->failed[i])
        return;
    j->status =
        nf_temporal_end_frame(b->temporal[i], b->items[i], b->n_items[i]);
    if (l->anchors)
        nf_temporal_end_anchor(b->temporal[i], b->items[i], b->n_items[i]);
    j->drift = nf_temporal_drift(b->temporal[i]);
    if (j->status == 0)
        j->status = encode_job(l->s, l->jpeg[worker], j, &b->img[i]);
}

static void finish_batch(struct nf_sched *s, struct batch *b, int anchors)
{
    struct batch_loop l = {s, b, anchors, s->jpeg};
    nf_crew_run(s->crew, b->n, finish_one, &l);
}

/* Codec crew: the anchors' part of frame i, already handed back. */
static void anchor_one(void *arg, int i, int worker)
{
    struct batch *b = ((struct batch_loop *)arg)->b;
    (void)worker;
    if (b->anchored[i])
        nf_temporal_end_anchor(b->temporal[i], b->items[i], b->n_items[i]);
}

static void finish_anchors(struct nf_sched *s, struct batch *b)
{
    struct batch_loop l = {s, b, 1, s->jpeg};
    nf_crew_run(s->crew, b->n, anchor_one, &l);
}

/* Hands the jobs of b to the loop's mailbox; a session whose anchor still
 * runs keeps its frame in flight and its job says so (held). Lock held. */
static void hand_back(struct nf_sched *s, struct batch *b, int anchors)
{
    for (int i = 0; i < b->n; i++) {
        struct nf_job *j = b->jobs[i];
        j->held = b->anchored[i] && !anchors;
        if (!j->held)
            b->client[i]->in_flight = 0;
        j->next = NULL;
        if (s->done_tail)
            s->done_tail->next = j;
        else
            s->done_head = j;
        s->done_tail = j;
        s->posted++;
        b->jobs[i] = NULL;
    }
    s->stats.batches++;
    s->stats.jobs += (uint64_t)b->n;
}

/*
 * After b's jobs or releases were posted: puts b in state st, lets the
 * other pipeline thread see it (a stopping one waits for the pipeline to
 * empty; a free slot may start a solo frame) and wakes the loop. Each
 * thread waits on its own condition only, so signalling both is exact.
 * Lock held on entry and return.
 */
static void posted(struct nf_sched *s, struct batch *b, enum slot_state st)
{
    b->state = st;
    pthread_cond_signal(&s->codec_cond);
    pthread_cond_signal(&s->predict_cond);
    pthread_mutex_unlock(&s->lock);
    uv_async_send(&s->async);
    pthread_mutex_lock(&s->lock);
}

/* The slot in state st prepared first, or NULL. Lock held. */
static struct batch *oldest(struct nf_sched *s, enum slot_state st)
{
    struct batch *best = NULL;
    for (int i = 0; i < NF_SCHED_SLOTS; i++)
        if (s->slot[i].state == st &&
            (best == NULL || s->slot[i].seq < best->seq))
            best = &s->slot[i];
    return best;
}

static int in_pipeline(const struct nf_sched *s)
{
    for (int i = 0; i < NF_SCHED_SLOTS; i++)
        if (s->slot[i].state != SLOT_FREE)
            return 1;
    return 0;
}

/*
 * A free slot to prepare into, when a batch may start now: none waits for
 * the predict thread already (so that the batch prepared next holds the
 * newest frames) and some session without a frame in flight has one
 * waiting. Lock held.
 */
static struct batch *slot_to_prepare(struct nf_sched *s)
{
    struct batch *free_slot = NULL;
    for (int i = 0; i < NF_SCHED_SLOTS; i++) {
        if (s->slot[i].state == SLOT_QUEUED || s->slot[i].state == SLOT_PREP)
            return NULL;
        if (s->slot[i].state == SLOT_FREE && free_slot == NULL)
            free_slot = &s->slot[i];
    }
    if (free_slot == NULL || s->stop)
        return NULL;
    for (struct nf_sched_client *c = s->ready_head; c; c = c->next_ready)
        if (!c->in_flight)
            return free_slot;
    return NULL;
}

/*
 * Whether the predict thread should run the next frame alone, start to
 * finish (decode, predict, encode): the pipeline is empty and exactly one
 * session has a frame waiting. Handing a lone frame from thread to thread
 * costs a wake-up of a sleeping thread at each hand-off (0.1-0.15 ms each
 * on this project's VM, bench/RESULTS.md); several frames waiting go to
 * the codec crew, which decodes them in parallel. Lock held.
 */
static int solo_ready(const struct nf_sched *s)
{
    int ready = 0;
    if (s->stop || in_pipeline(s))
        return 0;
    for (const struct nf_sched_client *c = s->ready_head; c; c = c->next_ready)
        ready += !c->in_flight;
    return ready == 1;
}

/* Moves waiting jobs of sessions with none in flight into b, in arrival
 * order, up to max_batch. Lock held. */
static void take_ready(struct nf_sched *s, struct batch *b)
{
    struct nf_sched_client **pp = &s->ready_head, *prev = NULL;
    b->n = 0;
    while (*pp && b->n < s->cfg.max_batch) {
        struct nf_sched_client *c = *pp;
        if (c->in_flight) {
            prev = c;
            pp = &c->next_ready;
            continue;
        }
        *pp = c->next_ready;
        if (s->ready_tail == c)
            s->ready_tail = prev;
        c->next_ready = NULL;
        c->in_ready = 0;
        c->in_flight = 1;
        b->client[b->n] = c;
        b->session[b->n] = c->pending->session;
        b->backend[b->n] = c->pending->backend;
        b->jobs[b->n++] = c->pending;
        c->pending = NULL;
    }
    b->n_anchored = 0;
    b->anchors_done = 0;
    memset(b->skipped, 0, sizeof b->skipped);
    b->seq = s->next_seq++;
}

/*
 * The codec thread, in order of priority: finishes the anchors of batches
 * already handed back (their sessions wait for them), finishes predicted
 * batches (their frames are the oldest), otherwise prepares the next batch
 * while the predict thread runs the previous one. A session has at most
 * one frame in the pipeline, since each frame's correction starts from the
 * previous frame's end.
 */
static void *codec_main(void *arg)
{
    struct nf_sched *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        struct batch *b = oldest(s, SLOT_SENT);
        if (b != NULL && b->anchors_done) {
            pthread_mutex_unlock(&s->lock);
            finish_anchors(s, b);
            pthread_mutex_lock(&s->lock);
            for (int i = 0; i < b->n; i++) {
                if (!b->anchored[i])
                    continue;
                b->client[i]->in_flight = 0;
                s->released[s->n_released++] =
                    (struct release){b->session[i], s->posted};
            }
            posted(s, b, SLOT_FREE);
            continue;
        }
        b = oldest(s, SLOT_PREDICTED);
        if (b != NULL) {
            int anchors = b->anchors_done;
            b->state = SLOT_FINISH;
            pthread_mutex_unlock(&s->lock);
            finish_batch(s, b, anchors);
            pthread_mutex_lock(&s->lock);
            hand_back(s, b, anchors);
            posted(s, b, anchors ? SLOT_FREE : SLOT_SENT);
            continue;
        }
        b = solo_ready(s) ? NULL : slot_to_prepare(s);
        if (b != NULL) {
            int overlap = oldest(s, SLOT_PREDICT) != NULL;
            take_ready(s, b);
            b->state = SLOT_PREP;
            pthread_mutex_unlock(&s->lock);
            prepare_batch(s, b);
            pthread_mutex_lock(&s->lock);
            s->stats.overlapped += (uint64_t)overlap;
            b->state = SLOT_QUEUED;
            pthread_cond_signal(&s->predict_cond);
            continue;
        }
        if (s->stop && !in_pipeline(s))
            break;
        if (solo_ready(s)) /* The predict thread's to run. */
            pthread_cond_signal(&s->predict_cond);
        pthread_cond_wait(&s->codec_cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/*
 * Predict thread: runs the frames of b, prepared (and their anchors first
 * unless early); anchors_done says whether anchors are left. Lock held on
 * entry and return.
 */
static void predict_frames(struct nf_sched *s, struct batch *b, int early)
{
    b->state = SLOT_PREDICT;
    /* The codec thread may prepare the next batch meanwhile. */
    pthread_cond_signal(&s->codec_cond);
    pthread_mutex_unlock(&s->lock);
    predict_batch(b, 0);
    if (!early && b->n_anchored)
        predict_batch(b, 1);
    pthread_mutex_lock(&s->lock);
    b->anchors_done = !early || b->n_anchored == 0;
}

/*
 * Predict thread: runs the anchors of b that predict_frames() left, after
 * its frames went on, but for those of sessions whose next frame already
 * waits, within the anchors their correction lets them skip in a row
 * (anchor_skip, kernels/temporal.h): a busy session's next frame would
 * wait for its anchor, a forward pass. Lock held on entry and return.
 */
static void predict_late_anchors(struct nf_sched *s, struct batch *b)
{
    if (b->anchors_done)
        return;
    for (int i = 0; i < b->n; i++) {
        b->skipped[i] = b->anchored[i] && !b->failed[i] &&
                        b->client[i]->pending != NULL &&
                        nf_temporal_anchor_skippable(b->temporal[i]);
        if (b->skipped[i]) {
            b->items[i][1].status = NF_EAGAIN;
            s->stats.anchors_skipped++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    predict_batch(b, 1);
    pthread_mutex_lock(&s->lock);
    b->anchors_done = 1;
    pthread_cond_signal(&s->codec_cond);
}

/*
 * Predict thread: runs a lone frame (solo_ready) start to finish on this
 * thread, through the same states as the pipeline, so that the codec
 * thread may prepare another session's frame while this one predicts. If
 * one is waiting when the forward pass ends, this frame goes to the codec
 * thread to finish as any other, and the predict thread moves on. Lock
 * held on entry and return.
 */
static void run_solo(struct nf_sched *s, int early)
{
    struct batch *b = slot_to_prepare(s);
    struct batch_loop l = {s, b, 0, &s->solo_jpeg};
    take_ready(s, b);
    b->state = SLOT_PREP;
    pthread_mutex_unlock(&s->lock);
    prepare_one(&l, 0, 0);
    b->n_anchored = b->anchored[0];
    pthread_mutex_lock(&s->lock);
    s->stats.solo++;
    predict_frames(s, b, early);
    l.anchors = b->anchors_done;
    if (oldest(s, SLOT_QUEUED) != NULL) {
        /* Another frame waits for the model: it goes first. */
        b->state = SLOT_PREDICTED;
        pthread_cond_signal(&s->codec_cond);
    } else {
        b->state = SLOT_FINISH;
        pthread_mutex_unlock(&s->lock);
        finish_one(&l, 0, 0);
        pthread_mutex_lock(&s->lock);
        hand_back(s, b, l.anchors);
        posted(s, b, l.anchors ? SLOT_FREE : SLOT_SENT);
    }
    predict_late_anchors(s, b);
}

/*
 * The predict thread: runs prepared batches in order, and lone frames
 * start to finish (run_solo). With on_release set, the frames of a batch
 * go to the codec thread before its anchors run, so an anchor (a second
 * forward pass every anchor_every frames) never delays a reply; without
 * it, anchors run first.
 */
static void *predict_main(void *arg)
{
    struct nf_sched *s = arg;
    int early = s->cfg.on_release != NULL;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (solo_ready(s)) {
            run_solo(s, early);
            continue;
        }
        struct batch *b = oldest(s, SLOT_QUEUED);
        if (b != NULL) {
            predict_frames(s, b, early);
            b->state = SLOT_PREDICTED;
            pthread_cond_signal(&s->codec_cond);
            predict_late_anchors(s, b);
            continue;
        }
        if (s->stop && !in_pipeline(s))
            break;
        pthread_cond_wait(&s->predict_cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/*
 * Loop thread: hands every finished job to on_done and every session the
 * pipeline no longer uses to on_release, in the order the pipeline posted
 * them: a held job before its session's release, and that release before
 * the session's next job (which may be finished before the loop wakes).
 */
static void on_async(uv_async_t *h)
{
    struct nf_sched *s = h->data;
    struct nf_job *j;
    struct release released[NF_SCHED_SLOTS * NF_SCHED_MAX_BATCH];
    int n_released, r = 0;

    pthread_mutex_lock(&s->lock);
    j = s->done_head;
    s->done_head = s->done_tail = NULL;
    n_released = s->n_released;
    memcpy(released, s->released, sizeof released[0] * (size_t)n_released);
    s->n_released = 0;
    pthread_mutex_unlock(&s->lock);
    for (;;) {
        for (; r < n_released && released[r].after <= s->delivered; r++)
            s->cfg.on_release(s, released[r].session, s->arg);
        if (j == NULL)
            break;
        struct nf_job *next = j->next;
        pthread_mutex_lock(&s->lock);
        s->backlog--;
        pthread_mutex_unlock(&s->lock);
        s->delivered++;
        s->on_done(s, j, 0, s->arg);
        j = next;
    }
    for (; r < n_released; r++) /* Posted after every job taken here. */
        s->cfg.on_release(s, released[r].session, s->arg);
}

/* Stops both threads once the batches in the pipeline are finished. */
static void stop_threads(struct nf_sched *s, int codec, int predict)
{
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_broadcast(&s->codec_cond);
    pthread_cond_broadcast(&s->predict_cond);
    pthread_mutex_unlock(&s->lock);
    if (codec)
        pthread_join(s->codec_thread, NULL);
    if (predict)
        pthread_join(s->predict_thread, NULL);
}

static void free_codec(struct nf_sched *s)
{
    nf_crew_free(s->crew);
    for (int i = 0; i < NF_CREW_MAX; i++)
        nf_jpeg_free(s->jpeg[i]);
    nf_jpeg_free(s->solo_jpeg);
}

/* The codec crew (cfg.codec_threads workers) and their JPEG handles, and
 * the predict thread's. */
static int init_codec(struct nf_sched *s)
{
    int workers = s->cfg.codec_threads;
    workers = workers < 1 ? 1 : workers > NF_CREW_MAX ? NF_CREW_MAX : workers;
    s->cfg.codec_threads = workers;
    for (int i = 0; i < workers; i++)
        if (nf_jpeg_init(&s->jpeg[i]) != 0)
            return NF_ENOMEM;
    if (nf_jpeg_init(&s->solo_jpeg) != 0)
        return NF_ENOMEM;
    return nf_crew_init(&s->crew, workers - 1);
}

static void free_sched(struct nf_sched *s)
{
    for (int k = 0; k < NF_SCHED_SLOTS; k++)
        for (int i = 0; i < NF_SCHED_MAX_BATCH; i++) {
            nf_backend_host_free(s->slot[k].img[i].rgb_in);
            nf_backend_host_free(s->slot[k].img[i].rgb_out);
        }
    pthread_cond_destroy(&s->codec_cond);
    pthread_cond_destroy(&s->predict_cond);
    pthread_mutex_destroy(&s->lock);
    free_codec(s);
    free(s);
}

static int start_threads(struct nf_sched *s)
{
    if (pthread_create(&s->codec_thread, NULL, codec_main, s) != 0)
        return NF_EIO;
    if (pthread_create(&s->predict_thread, NULL, predict_main, s) != 0) {
        stop_threads(s, 1, 0);
        return NF_EIO;
    }
#ifdef __linux__
    pthread_setname_np(s->codec_thread, "nf-codec");
    pthread_setname_np(s->predict_thread, "nf-predict");
#endif
    return 0;
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
    if (init_codec(s) != 0)
        goto fail;
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&s->codec_cond, NULL) != 0)
        goto fail_lock;
    if (pthread_cond_init(&s->predict_cond, NULL) != 0)
        goto fail_cond;
    /* The threads send on the async handle only after a submit, and no
     * submit can happen before this function returns. */
    if (start_threads(s) != 0)
        goto fail_cond2;
    if (uv_async_init(loop, &s->async, on_async) != 0) {
        stop_threads(s, 1, 1);
        free_sched(s);
        return NF_EIO;
    }
    s->async.data = s;
    *out = s;
    return 0;

fail_cond2:
    pthread_cond_destroy(&s->predict_cond);
fail_cond:
    pthread_cond_destroy(&s->codec_cond);
fail_lock:
    pthread_mutex_destroy(&s->lock);
fail:
    free_codec(s);
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
    /* A lone frame is the predict thread's (solo_ready), else the codec
     * thread's to prepare. */
    pthread_cond_signal(solo_ready(s) ? &s->predict_cond : &s->codec_cond);
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
    stop_threads(s, 1, 1);
    /* Hand back what the threads finished before they stopped. */
    on_async(&s->async);
    s->close_cb = cb;
    s->close_arg = arg;
    uv_close((uv_handle_t *)&s->async, after_async_close);
}

void nf_sched_get_stats(struct nf_sched *s, struct nf_sched_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}

int nf_sched_backlog(struct nf_sched *s)
{
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->backlog;
    pthread_mutex_unlock(&s->lock);
    return n;
}
