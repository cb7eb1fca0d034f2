/*
 * scheduler.h - the inference scheduler: a two-stage pipeline that decodes,
 * predicts and encodes frames off the loop thread.
 *
 * The loop thread submits one job per received frame. Each session has at
 * most one job waiting: a newer frame replaces the waiting one, which comes
 * back to the loop as dropped (newest wins), so latency never grows.
 *
 * Two threads share the work. The codec thread takes every waiting job of the
 * sessions that have no frame in flight, up to max_batch, in arrival order,
 * decodes them and opens their frames (drift-correction inputs) - the batch's
 * jobs spread over its crew of codec_threads - 1 helpers (crew.h), since they
 * belong to different sessions - and hands the batch to the predict thread,
 * which runs the model (the jobs of one backend as one nf_backend_predict()
 * call; the backend may run them as one forward pass). While it does, the codec
 * thread finishes the previous batch (closes its frames, encodes them) and
 * prepares the next, so decode and encode of some sessions overlap the forward
 * pass of others. At most one batch waits for the predict thread, so a batch
 * always holds the newest frames; a session has at most one frame in the
 * pipeline, since each frame's correction starts where the previous one ended.
 * On anchor frames (a second, cold-cache forward pass every anchor_every
 * frames) the frame is handed back first and its anchor runs after (config
 * on_release), so anchors never delay a reply; the session's next frame waits
 * for it, or, when it already waits, the anchor is skipped (anchor_skip,
 * kernels/temporal.h). A lone frame (the pipeline empty and one session
 * waiting: a single stream) runs start to finish on the predict thread, with no
 * hand-off between threads; if another session's frame is prepared meanwhile,
 * the lone one is finished by the codec thread as usual. Finished jobs go into
 * a locked mailbox and the loop is woken with uv_async_send(); its callback
 * drains the whole mailbox, since sends coalesce.
 */
#ifndef NF_SCHED_H
#define NF_SCHED_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "bufpool.h"
#include "temporal.h"
#include "wire.h"

struct nf_backend;
struct nf_sched;

/*
 * What a session exposes to the scheduler: its temporal state (rolling
 * cache slot, anchor slot, drift correction; kernels/temporal.h), one per
 * style. temporal[] is written only by the pipeline threads while a job of
 * the session is in flight, and read or freed by the loop thread only when
 * none is.
 */
struct nf_sched_client {
    struct nf_temporal *temporal[16];   /* Per style; made by the worker. */
    struct nf_job *pending;             /* Guarded by sched lock. */
    struct nf_sched_client *next_ready; /* Guarded by sched lock. */
    int in_ready;                       /* Guarded by sched lock. */
    int in_flight; /* A job is in the pipeline; guarded by sched lock. */
};

/* One frame on its way through the server. */
struct nf_job {
    /* Set by the loop thread before submit. */
    struct nf_job *next;              /* List link; owner's. */
    void *session;                    /* Opaque to the scheduler. */
    struct nf_sched_client *client;   /* The session's scheduler state. */
    struct nf_backend *backend;       /* Style's backend. */
    int style;                        /* Index into client->slots. */
    int reset;                        /* Reset the cache before this frame. */
    int quality;                      /* Output JPEG quality. */
    struct nf_temporal_params params; /* Correction settings... */
    int params_set;                   /* ...to apply before this frame. */
    struct nf_frame_header hdr;       /* Input header. */
    int width, height;                /* Decoded, predicted, encoded. */
    struct nf_buf *in;                /* Whole input message. */
    uint32_t payload_off;             /* JPEG starts here in in->data. */
    uint64_t t_first_us;              /* First byte received. */
    uint64_t t_recv_us;               /* Last byte received. */
    /* Set by the worker. */
    int status;         /* 0 or NF_E*. */
    struct nf_buf *out; /* LWS_PRE + header + JPEG. */
    uint32_t out_jpeg_len;
    uint64_t t_start_us;
    uint32_t decode_us, predict_us, encode_us;
    float drift; /* The session's drift after this frame (levels). */
    /* The scheduler still uses the session's temporal state (this frame's
     * anchor runs): keep the session alive until on_release(session). */
    int held;
};

/* Called on the loop thread with each finished or dropped job. */
typedef void (*nf_sched_done_cb)(struct nf_sched *s, struct nf_job *job,
                                 int dropped_superseded, void *arg);

/*
 * Called on the loop thread, after the on_done of a job that was held,
 * once the pipeline no longer uses that job's session.
 */
typedef void (*nf_sched_release_cb)(struct nf_sched *s, void *session,
                                    void *arg);

struct nf_sched_config {
    int max_batch; /* Jobs per batch, >= 1. */
    /* Threads that decode, correct and encode a batch's frames together
     * (the codec thread and its crew, server/crew.h); < 1 means 1. */
    int codec_threads;
    size_t out_headroom; /* Bytes reserved before the reply header (LWS_PRE). */
    /* Optional. Set, an anchor frame is handed back before its anchor runs
     * (the job is held); NULL, after. */
    nf_sched_release_cb on_release;
};

/*
 * Creates the scheduler on loop and starts its worker. on_done runs on the
 * loop thread for every job handed back. Returns 0, NF_ENOMEM, or NF_EIO
 * if the thread cannot start.
 */
int nf_sched_init(struct nf_sched **out, uv_loop_t *loop,
                  struct nf_bufpool *pool, const struct nf_sched_config *cfg,
                  nf_sched_done_cb on_done, void *arg);

/*
 * Submits job for its session (loop thread). If the session already has a
 * job waiting, that job is handed back through on_done with
 * dropped_superseded set, before this call returns.
 */
void nf_sched_submit(struct nf_sched *s, struct nf_job *job);

/*
 * Removes the session's waiting job, if any, and returns it (loop thread);
 * the worker will not see it. Used when a session closes.
 */
struct nf_job *nf_sched_cancel(struct nf_sched *s, struct nf_sched_client *c);

/*
 * Stops both threads (after the batches in the pipeline), hands every
 * finished job still in the mailbox to on_done, and closes the async
 * handle; then calls cb (may be NULL) from the loop once everything is
 * closed.
 */
void nf_sched_close(struct nf_sched *s, void (*cb)(void *), void *arg);

/* Counters since init (any thread). */
struct nf_sched_stats {
    uint64_t batches;    /* Batches finished. */
    uint64_t jobs;       /* Jobs in them. */
    uint64_t overlapped; /* Batches prepared while another was predicted. */
    uint64_t solo;       /* Lone frames the predict thread decoded and
                          * predicted itself (run_solo). */
    uint64_t anchors_skipped; /* Anchors not run: the session's next
                               * frame already waited (anchor_skip). */
};

void nf_sched_get_stats(struct nf_sched *s, struct nf_sched_stats *out);

/* Jobs waiting or running now (any thread; approximate). */
int nf_sched_backlog(struct nf_sched *s);

#endif /* NF_SCHED_H */
