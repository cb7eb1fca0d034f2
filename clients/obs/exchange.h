/*
 * exchange.h - the OBS filter's frame exchange with a nextframe server,
 * without libobs.
 *
 * The OBS glue (nextframe-filter.c) runs on OBS's graphics thread, which
 * must never wait for the network. It hands each captured frame to the
 * exchange and picks up the newest stylized result, both through
 * newest-wins single slots; a network thread owned by the exchange does
 * everything else: it connects (lazily, once there is a frame to send),
 * sends hello, keeps at most max_inflight frames unanswered using the seq
 * rule of PROTOCOL.md section 4.2, converts and JPEG-encodes frames,
 * decodes replies, blends them with their original frame by the strength
 * setting, and reconnects with exponential backoff when the server goes
 * away.
 *
 * The pieces are exposed one by one so that they can be tested alone:
 * pixel conversion and blending, the slot, the in-flight tracker, the
 * backoff policy, and the exchange that joins them.
 *
 * This is not a general WebSocket layer (clients/common/ws-client.h is),
 * and it knows nothing of OBS.
 */
#ifndef NF_OBS_EXCHANGE_H
#define NF_OBS_EXCHANGE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Images and pixel conversion ---------------------------------------- */

/* 32-bit pixel layouts, named by byte order in memory. */
enum nf_obs_pixfmt {
    NF_OBS_RGBA = 1, /* What OBS's GS_RGBA textures hold. */
    NF_OBS_BGRA = 2, /* GS_BGRA. */
};

/*
 * One image buffer: a captured frame on its way out, or a result on its way
 * back. Buffers circulate through a slot's pool and keep their memory, so
 * the steady state allocates nothing. Whoever holds the pointer (after
 * acquire or take, until publish or release) owns it.
 */
struct nf_obs_image {
    uint8_t *data; /* Owned; cap bytes. */
    size_t cap;
    int width;
    int height;
    int stride;          /* Bytes per row. */
    int format;          /* enum nf_obs_pixfmt */
    uint32_t seq;        /* Results: the seq of the frame answered. */
    uint64_t stamp_us;   /* Frames: capture time; results: arrival time. */
    uint64_t capture_us; /* Results: capture time of the frame answered. */
};

/*
 * Makes img hold width x height pixels of 4 bytes (stride width * 4),
 * growing its buffer only when it is too small. Returns 0, NF_EINVAL for a
 * size outside 1..16384, or NF_ENOMEM (img is unchanged then). Any thread
 * that owns img.
 */
int nf_obs_image_reserve(struct nf_obs_image *img, int width, int height);

/*
 * Converts width x height pixels of src (format, src_stride bytes per row)
 * to packed 8-bit RGB at rgb (rgb_stride bytes per row). Alpha is dropped.
 * Any thread.
 */
void nf_obs_to_rgb(const uint8_t *src, int src_stride, int format, int width,
                   int height, uint8_t *rgb, int rgb_stride);

/* strength 0..1 (clamped; NaN is 0) as a weight 0..256 for the blend. */
int nf_obs_strength_q8(float strength);

/*
 * Writes the filter's output: for each pixel,
 *
 *     out = orig + strength * (stylized - orig)
 *
 * per colour channel, rounded to nearest, with alpha taken from orig.
 * orig is the frame that was sent (format, orig_stride); stylized is the
 * server's RGB reply of the same size; dst gets dst_format. Where orig is
 * not opaque, stylized is first scaled by its alpha (OBS draws textures as
 * premultiplied), so transparent parts of the source stay transparent.
 * orig may be NULL (the original is gone): dst is then stylized, opaque.
 * strength_q8 comes from nf_obs_strength_q8(). dst may not overlap the
 * inputs. Any thread.
 */
void nf_obs_compose(const uint8_t *orig, int orig_stride, int orig_format,
                    const uint8_t *stylized, int stylized_stride, int width,
                    int height, int strength_q8, uint8_t *dst, int dst_stride,
                    int dst_format);

/* ---- Newest-wins slot --------------------------------------------------- */

#define NF_OBS_POOL_MAX 8 /* Spare buffers a slot keeps. */

/*
 * A single-item mailbox between one producer thread and one consumer
 * thread. publish() replaces an item that was not taken yet (newest wins:
 * the older one is recycled and counted); take() empties the slot. The
 * lock is held only to swap pointers, never while pixels are copied, so
 * neither side waits for the other's work. Buffers come from and return to
 * a small pool owned by the slot.
 */
struct nf_obs_slot {
    pthread_mutex_t lock;
    pthread_cond_t cond;          /* Signalled by publish() and kick(). */
    struct nf_obs_image *pending; /* Guarded by lock. NULL: empty. */
    struct nf_obs_image *pool[NF_OBS_POOL_MAX]; /* Guarded by lock. */
    int pool_n;                                 /* Guarded by lock. */
    int kicked;                                 /* Guarded by lock. */
    uint64_t published;   /* Guarded by lock. Items published. */
    uint64_t overwritten; /* Guarded by lock. Replaced before taken. */
};

/* Initialises an empty slot. Returns 0 or NF_ENOMEM. */
int nf_obs_slot_init(struct nf_obs_slot *s);

/* Frees the pending item and the pool (not s itself). NULL is fine. */
void nf_obs_slot_free(struct nf_obs_slot *s);

/*
 * Returns an image for the producer to fill: a pooled one, or a new empty
 * one (data NULL: call nf_obs_image_reserve()). NULL when out of memory.
 */
struct nf_obs_image *nf_obs_slot_acquire(struct nf_obs_slot *s);

/*
 * Puts img (from acquire) in the slot; ownership passes to the slot. An
 * item still pending is recycled into the pool and counted as overwritten.
 * Wakes a consumer blocked in nf_obs_slot_wait().
 */
void nf_obs_slot_publish(struct nf_obs_slot *s, struct nf_obs_image *img);

/* Takes the pending item (the caller owns it), or NULL when empty. */
struct nf_obs_image *nf_obs_slot_take(struct nf_obs_slot *s);

/* Returns an image from acquire or take to the pool. NULL is fine. */
void nf_obs_slot_release(struct nf_obs_slot *s, struct nf_obs_image *img);

/* 1 when an item is pending. */
int nf_obs_slot_has_pending(struct nf_obs_slot *s);

/*
 * Blocks up to timeout_us until an item is pending or the slot is kicked.
 * Returns 1 if an item is pending, 0 otherwise. Consumer thread only.
 */
int nf_obs_slot_wait(struct nf_obs_slot *s, uint64_t timeout_us);

/* Wakes every waiter for good (used to stop the consumer). */
void nf_obs_slot_kick(struct nf_obs_slot *s);

/* ---- In-flight frames (PROTOCOL.md 4.2) --------------------------------- */

#define NF_OBS_MAX_INFLIGHT 4

/*
 * The frames sent and not answered yet: seqs oldest_seq .. next_seq - 1,
 * each with its original image (kept to blend the reply with). A reply to
 * seq N answers N and means every older outstanding frame was dropped by
 * the server. Seqs wrap; comparisons use serial arithmetic. Originals that
 * are forgotten go back to the pool slot. One thread only.
 */
struct nf_obs_inflight {
    int max;              /* 1..NF_OBS_MAX_INFLIGHT */
    uint32_t next_seq;    /* Seq of the next frame to send. */
    uint32_t oldest_seq;  /* Oldest unanswered; == next_seq when none. */
    uint64_t progress_us; /* Last reply, or the send that ended an idle. */
    struct nf_obs_image *orig[NF_OBS_MAX_INFLIGHT]; /* Owned. */
    struct nf_obs_slot *pool;                       /* Borrowed. */
};

/* Starts empty with the first seq first_seq. */
void nf_obs_inflight_init(struct nf_obs_inflight *t, int max,
                          uint32_t first_seq, struct nf_obs_slot *pool);

/* Frames outstanding. */
uint32_t nf_obs_inflight_count(const struct nf_obs_inflight *t);

/* 1 when another frame may be sent. */
int nf_obs_inflight_can_send(const struct nf_obs_inflight *t);

/*
 * Records a frame sent at now_us with its original (ownership moves in;
 * may be NULL). Returns the seq it was sent with. Only when can_send().
 */
uint32_t nf_obs_inflight_push(struct nf_obs_inflight *t,
                              struct nf_obs_image *orig, uint64_t now_us);

/*
 * Handles the reply to seq, received at now_us. Returns the number of
 * older frames it shows were dropped (0 or more) and moves the original of
 * seq to *orig (NULL if none); or, changing nothing, NF_EAGAIN when seq
 * was sent but forgotten already (a late reply after expire()) and
 * NF_ERANGE when it was never sent.
 */
int nf_obs_inflight_reply(struct nf_obs_inflight *t, uint32_t seq,
                          uint64_t now_us, struct nf_obs_image **orig);

/*
 * Forgets every outstanding frame when no reply has come for timeout_us
 * while frames were outstanding (the last resort of PROTOCOL.md 4.2; a
 * server that is merely slow keeps making progress), or unconditionally
 * when timeout_us is 0. Returns how many were forgotten.
 */
uint32_t nf_obs_inflight_expire(struct nf_obs_inflight *t, uint64_t now_us,
                                uint64_t timeout_us);

/* ---- Reconnect backoff -------------------------------------------------- */

/*
 * Exponential backoff between connection attempts: min_ms, then doubling
 * up to max_ms, until reset (after a session that worked).
 */
struct nf_obs_backoff {
    uint32_t min_ms;
    uint32_t max_ms;
    uint32_t next_ms;  /* The delay the next call returns. */
    uint32_t failures; /* Calls since the last reset. */
};

void nf_obs_backoff_init(struct nf_obs_backoff *b, uint32_t min_ms,
                         uint32_t max_ms);

/* Returns the delay before the next attempt and doubles the next one. */
uint32_t nf_obs_backoff_next(struct nf_obs_backoff *b);

/* Back to min_ms. */
void nf_obs_backoff_reset(struct nf_obs_backoff *b);

/* ---- The exchange ------------------------------------------------------- */

#define NF_OBS_URL_MAX   512
#define NF_OBS_STYLE_MAX 64
#define NF_OBS_TOKEN_MAX 256

/* What the user sets in the filter's properties. */
struct nf_obs_settings {
    char url[NF_OBS_URL_MAX];     /* ws://host:port/v1/stream */
    char style[NF_OBS_STYLE_MAX]; /* "" = the server's default. */
    char token[NF_OBS_TOKEN_MAX]; /* "" = none; offered as a subprotocol. */
    float strength;               /* 0..1 */
};

enum nf_obs_log_level {
    NF_OBS_LOG_INFO = 0,
    NF_OBS_LOG_WARN = 1,
};

struct nf_obs_exchange_config {
    struct nf_obs_settings settings;
    int max_inflight;          /* 1..NF_OBS_MAX_INFLIGHT; 0 = 2. */
    int jpeg_quality;          /* 1..100; 0 = 85. */
    uint32_t backoff_min_ms;   /* 0 = 250. */
    uint32_t backoff_max_ms;   /* 0 = 5000. */
    uint32_t reply_timeout_ms; /* 0 = 2000. */
    uint32_t stats_log_s;      /* Log counters this often; 0 = never. */
    /*
     * Log sink, called on the network thread with one line (no newline);
     * NULL discards. log_user is passed back.
     */
    void (*log)(void *log_user, int level, const char *line);
    void *log_user;
};

enum nf_obs_state {
    NF_OBS_IDLE = 0,   /* Not connected; nothing to send yet. */
    NF_OBS_CONNECTING, /* TCP connect, upgrade, waiting for welcome. */
    NF_OBS_STREAMING,  /* welcome received: frames flow. */
    NF_OBS_WAITING,    /* Backing off before the next attempt. */
};

/* Counters since init. */
struct nf_obs_stats {
    int state;                 /* enum nf_obs_state */
    uint64_t submitted;        /* Frames handed over by the render thread. */
    uint64_t superseded;       /* Replaced by a newer one before sending. */
    uint64_t sent;             /* FRAME_IN messages written. */
    uint64_t received;         /* FRAME_OUT replies turned into results. */
    uint64_t dropped;          /* Sent, never answered (server newest-wins,
                                  timeout, connection lost). */
    uint64_t bad_replies;      /* Malformed or unexpected replies. */
    uint64_t connects;         /* Sessions that reached welcome. */
    uint64_t connect_failures; /* Attempts that ended before welcome. */
    uint32_t last_latency_us;  /* Capture to result, the latest reply. */
    char last_error[128];      /* The latest connection error or server
                                  error message; "" if none. */
};

struct nf_obs_exchange;

/*
 * Starts the network thread. It connects only once a frame is submitted.
 * Returns 0 with *out set, or NF_ENOMEM / NF_EIO (no thread). The settings
 * are copied; a bad URL is not an error here: it is logged and retried
 * with backoff like a server that is down. Any thread.
 */
int nf_obs_exchange_init(struct nf_obs_exchange **out,
                         const struct nf_obs_exchange_config *cfg);

/*
 * Stops the network thread (closing the session with 1001, waiting at most
 * about half a second for the server) and frees everything. NULL is fine.
 * Any thread but the network thread.
 */
void nf_obs_exchange_free(struct nf_obs_exchange *x);

/*
 * Replaces the settings. A new URL or token reconnects at once; a new style
 * is sent with `set`; strength applies to the next reply. Any thread; does
 * not wait for the network.
 */
void nf_obs_exchange_set(struct nf_obs_exchange *x,
                         const struct nf_obs_settings *s);

/*
 * Render side. frame_acquire returns an image sized width x height in
 * format, to fill (stamp_us is set to now; overwrite it if the frame was
 * captured earlier), or NULL when out of memory. frame_submit hands it over
 * (newest wins). result_take returns the newest result not yet taken (RGBA,
 * the size the server answered with) or NULL; give it back with
 * result_release. None of them waits for the network thread's work: they
 * take a lock only to swap pointers. Call from one thread (the render
 * thread); the pool's buffers keep their memory between frames.
 */
struct nf_obs_image *nf_obs_exchange_frame_acquire(struct nf_obs_exchange *x,
                                                   int width, int height,
                                                   int format);
void nf_obs_exchange_frame_submit(struct nf_obs_exchange *x,
                                  struct nf_obs_image *img);
struct nf_obs_image *nf_obs_exchange_result_take(struct nf_obs_exchange *x);
void nf_obs_exchange_result_release(struct nf_obs_exchange *x,
                                    struct nf_obs_image *img);

/* Copies the counters. Any thread. */
void nf_obs_exchange_get_stats(struct nf_obs_exchange *x,
                               struct nf_obs_stats *st);

/* 1 when style is a valid style name (PROTOCOL.md section 6). */
int nf_obs_style_valid(const char *style);

#endif /* NF_OBS_EXCHANGE_H */
