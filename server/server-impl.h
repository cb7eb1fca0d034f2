/*
 * server-impl.h - the server's internal state, shared by server.c,
 * session.c and http.c. Not a public interface.
 */
#ifndef NF_SERVER_IMPL_H
#define NF_SERVER_IMPL_H

#include <libwebsockets.h>
#include <stdint.h>
#include <uv.h>

#include "access.h"
#include "bufpool.h"
#include "config.h"
#include "control.h"
#include "jpeg.h"
#include "metrics.h"
#include "scheduler.h"

struct nf_model;
struct nf_backend;
struct nf_session;

/* One loaded model and the backend that runs it. Immutable once running. */
struct nf_style {
    struct nf_model *model;
    struct nf_backend *backend;
    const char *name; /* Borrowed from model. */
};

struct nf_server {
    /* Immutable after start. */
    struct nf_config cfg;
    uv_loop_t loop;
    struct lws_context *ctx; /* NULLed by lws when destroyed (pcontext). */
    struct lws_vhost *vhost;
    struct nf_style styles[NF_MAX_MODELS];
    int n_styles;
    const char *backend_name;          /* The backend actually used. */
    struct nf_temporal_params params;  /* New sessions' correction. */
    int port;                          /* Bound port. */
    struct lws_vhost *metrics_vhost;   /* Loopback /metrics, or NULL. */
    char token[NF_TOKEN_MAX + 1];      /* Stream token; "" = none. */
    char view_token[NF_TOKEN_MAX + 1]; /* Viewer token; "" = none. */
    char web_root[4096]; /* Absolute path of the demo page files. */

    /* Loop thread only. */
    struct nf_sched *sched;
    struct nf_bufpool pool; /* Thread-safe itself. */
    struct nf_jpeg *jpeg;   /* Admission checks on the loop thread. */
    struct nf_metrics metrics;
    struct nf_session *sessions; /* All open sessions (list). */
    struct nf_job *free_jobs;    /* Recycled job structs. */
    int n_sessions;
    uint64_t next_session_id;
    int shutting_down;
    uint64_t shutdown_started_us;
    uv_signal_t sigint, sigterm;
    uv_timer_t tick;       /* Idle sweep, lws guard, shutdown deadline. */
    uv_timer_t mjpeg_tick; /* Paces the MJPEG streams. */
};

/* The WebSocket endpoint of protocol v1. */
#define NF_STREAM_PATH "/v1/stream"

/*
 * A reader of a session's MJPEG stream (mjpeg.c); lives in the lws
 * per-connection data of the "nf-mjpeg" protocol. Loop thread only.
 */
struct nf_viewer {
    struct nf_viewer *next, *prev; /* In the session's list. */
    struct nf_session *s;          /* NULL once the session has ended. */
    struct lws *wsi;               /* NULL before the stream starts. */
    struct nf_buf *part;           /* Next part to write, or NULL. */
    uint64_t parts_sent;
};

/* MJPEG streams are paced to this rate (ffmpeg's MJPEG default). */
#define NF_MJPEG_FPS 25

/* Session states. */
enum nf_session_state {
    NF_SESSION_OPEN,
    NF_SESSION_CLOSING, /* A close is queued; its frame goes out next. */
    NF_SESSION_DEAD,    /* lws closed the connection; awaiting last unref. */
};

#define NF_CTRL_QUEUE   4
#define NF_CTRL_MSG_MAX 2048

/*
 * One stream. Allocated at connection, freed when both lws has closed the
 * connection and no job of it is in flight (refs reaches 0).
 * Loop thread only, except `sc`, whose fields scheduler.h describes.
 */
struct nf_session {
    struct nf_session *next, *prev; /* In server->sessions. */
    struct nf_server *srv;
    struct lws *wsi; /* NULL once lws has closed it. */
    int refs;        /* Connection + jobs in flight. */
    enum nf_session_state state;
    char id[24];
    char peer[48];                    /* Client address. */
    double ctrl_tokens;               /* Control-rate bucket. */
    uint64_t ctrl_refill_us;          /* Its last refill. */
    int style;                        /* Index into srv->styles. */
    int quality;                      /* Output JPEG quality. */
    int scale8;                       /* Model scale, 1/8ths (PROTOCOL 5). */
    int reset_next;                   /* Next job starts with a cold cache. */
    struct nf_temporal_params params; /* Drift correction settings. */
    int params_dirty;                 /* params changed since the last job. */
    float drift;                      /* Drift of the newest reply, levels. */
    int last_width, last_height;      /* Of the last accepted frame. */
    uint64_t last_rx_us;              /* Any message received. */
    uint32_t dropped;                 /* Frames dropped, all reasons. */
    uint64_t frames_in, frames_out;

    struct nf_sched_client sc;

    /* Receiving. */
    struct nf_buf *rx; /* Message being assembled. */
    int rx_binary;
    uint64_t rx_first_us;
    int rx_checked; /* Header checked at first bytes. */

    /* Sending, in priority order: close, control, frame. */
    int close_code; /* Non-zero: close with this. */
    int close_sent; /* The close frame is written. */
    char close_reason[124];
    char ctrl[NF_CTRL_QUEUE][NF_CTRL_MSG_MAX + LWS_PRE];
    int ctrl_len[NF_CTRL_QUEUE];
    int ctrl_head, ctrl_count;
    int state_slot;            /* Slot of a queued, unwritten state, or -1. */
    uint64_t pending_since_us; /* Replies waiting unwritten since (0: none). */
    int stall_cut;             /* Cut off for not reading. */
    struct nf_job *out;        /* Newest reply not yet written. */

    /* MJPEG readers of this session's output (mjpeg.c). */
    struct nf_viewer *viewers;
    int n_viewers;
    struct nf_buf *last_jpeg; /* Newest output JPEG, for viewers. */
};

/*
 * lws per-connection data of the stream protocol (its size is in the
 * protocol table, server.c): a pointer, since a session outlives its
 * connection, and what the upgrade request said.
 */
struct nf_session_pss {
    struct nf_session *s;
    int unauthorized; /* The upgrade lacked the stream token. */
    char peer[48];    /* Client address, read with the request headers. */
};

/* session.c: the stream protocol's lws callback. */
int nf__session_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len);
/* Hands a finished or dropped job back to its session (loop thread). */
void nf__session_on_job(struct nf_sched *sched, struct nf_job *job,
                        int superseded, void *arg);
/* The scheduler no longer uses a session it held (loop thread). */
void nf__session_on_release(struct nf_sched *sched, void *session, void *arg);
/* Queues a close of s with code (reason from the close-code table). */
void nf__session_close(struct nf_session *s, int code, const char *reason);
/* Closes sessions idle for longer than the limit and cuts off those that
 * stopped reading (loop thread). */
void nf__session_sweep_idle(struct nf_server *srv, uint64_t now_us);

/* Per HTTP request of the "nf-http" protocol: the rendered answer. */
struct nf_http_pss {
    char *body; /* malloc'ed, LWS_PRE bytes of headroom before the text. */
    size_t len;
};

/* http.c: /livez, /readyz, /metrics. */
int nf__http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                      void *user, void *in, size_t len);
/* mjpeg.c: GET /mjpeg?session=ID. */
int nf__mjpeg_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len);
/* Sends every viewer the newest frame of its session (the pacing timer). */
void nf__mjpeg_tick(struct nf_server *srv);
/* Keeps a copy of a session's newest output JPEG if it has viewers. */
void nf__mjpeg_on_frame(struct nf_session *s, const uint8_t *jpeg, size_t len);
/* Ends the streams of a session that closed. */
void nf__mjpeg_session_closed(struct nf_session *s);

/* 1 when a new session would be accepted. */
int nf__server_ready(const struct nf_server *srv);

#endif /* NF_SERVER_IMPL_H */
