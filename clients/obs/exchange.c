/*
 * exchange.c - the OBS filter's frame exchange: slots, conversion, the
 * in-flight tracker, backoff and the network thread. See exchange.h.
 *
 * Threads: the render thread (OBS's graphics thread) only touches the two
 * slots and, through nf_obs_exchange_set(), the shared settings. The
 * network thread owns the lws client (clients/common/ws-client.h, which is
 * single-threaded), the TurboJPEG handle and every buffer used for
 * encoding and decoding. ws-client has no call another thread may use to
 * wake its poll(), so the network thread polls the outgoing slot from a
 * timer: every TICK_ACTIVE_US while frames are coming, TICK_IDLE_US
 * otherwise. The tick also guards against lws 4.1.6 leaving work
 * unserviced until the next network event (FACTS.md).
 */
#include "exchange.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control.h"
#include "error.h"
#include "jpeg.h"
#include "mono-clock.h"
#include "token.h"
#include "wire.h"
#include "ws-client.h"

#define MAX_IMAGE_DIM      16384
#define MAX_REPLY_DIM      4096
#define MAX_MESSAGE        (16u << 20)
#define TICK_ACTIVE_US     4000
#define TICK_IDLE_US       50000
#define ACTIVE_WINDOW_US   1000000 /* Fast ticks this long after a frame. */
#define CONNECT_TIMEOUT_US 5000000 /* Connect and welcome. */
#define STOP_GRACE_US      500000  /* Wait for the close handshake. */
#define LAZY_WAIT_US       100000  /* Idle: recheck stop this often. */

/* ---- Images and pixel conversion ---------------------------------------- */

int nf_obs_image_reserve(struct nf_obs_image *img, int width, int height)
{
    size_t need;

    if (width < 1 || height < 1 || width > MAX_IMAGE_DIM ||
        height > MAX_IMAGE_DIM)
        return NF_EINVAL;
    need = (size_t)width * (size_t)height * 4;
    if (need > img->cap) {
        uint8_t *p = malloc(need);

        if (p == NULL)
            return NF_ENOMEM;
        free(img->data);
        img->data = p;
        img->cap = need;
    }
    img->width = width;
    img->height = height;
    img->stride = width * 4;
    return 0;
}

/* Byte offsets of red and blue in a pixel of format; green is 1, alpha 3. */
static void channel_offsets(int format, int *r, int *b)
{
    *r = format == NF_OBS_BGRA ? 2 : 0;
    *b = format == NF_OBS_BGRA ? 0 : 2;
}

void nf_obs_to_rgb(const uint8_t *src, int src_stride, int format, int width,
                   int height, uint8_t *rgb, int rgb_stride)
{
    int ro, bo;

    channel_offsets(format, &ro, &bo);
    for (int y = 0; y < height; y++) {
        const uint8_t *s = src + (size_t)y * (size_t)src_stride;
        uint8_t *d = rgb + (size_t)y * (size_t)rgb_stride;

        for (int x = 0; x < width; x++, s += 4, d += 3) {
            d[0] = s[ro];
            d[1] = s[1];
            d[2] = s[bo];
        }
    }
}

int nf_obs_strength_q8(float strength)
{
    if (!(strength > 0.0f)) /* Also NaN. */
        return 0;
    if (strength >= 1.0f)
        return 256;
    return (int)(strength * 256.0f + 0.5f);
}

/* o + s/256 * (t - o), rounded; exact at s = 0 and s = 256. */
static inline uint8_t blend(int o, int t, int s)
{
    return (uint8_t)((o * (256 - s) + t * s + 128) >> 8);
}

/* One row of nf_obs_compose() with an original. */
static void compose_row(const uint8_t *o, int oro, int obo, const uint8_t *t,
                        int width, int s, uint8_t *d, int dro, int dbo)
{
    for (int x = 0; x < width; x++, o += 4, t += 3, d += 4) {
        int a = o[3], tr = t[0], tg = t[1], tb = t[2];

        if (a != 255) { /* Premultiply the stylized colour by alpha. */
            tr = (tr * a + 127) / 255;
            tg = (tg * a + 127) / 255;
            tb = (tb * a + 127) / 255;
        }
        d[dro] = blend(o[oro], tr, s);
        d[1] = blend(o[1], tg, s);
        d[dbo] = blend(o[obo], tb, s);
        d[3] = (uint8_t)a;
    }
}

void nf_obs_compose(const uint8_t *orig, int orig_stride, int orig_format,
                    const uint8_t *stylized, int stylized_stride, int width,
                    int height, int strength_q8, uint8_t *dst, int dst_stride,
                    int dst_format)
{
    int oro, obo, dro, dbo;

    channel_offsets(orig_format, &oro, &obo);
    channel_offsets(dst_format, &dro, &dbo);
    for (int y = 0; y < height; y++) {
        const uint8_t *t = stylized + (size_t)y * (size_t)stylized_stride;
        uint8_t *d = dst + (size_t)y * (size_t)dst_stride;

        if (orig != NULL) {
            compose_row(orig + (size_t)y * (size_t)orig_stride, oro, obo, t,
                        width, strength_q8, d, dro, dbo);
            continue;
        }
        for (int x = 0; x < width; x++, t += 3, d += 4) {
            d[dro] = t[0];
            d[1] = t[1];
            d[dbo] = t[2];
            d[3] = 255;
        }
    }
}

/* ---- Newest-wins slot --------------------------------------------------- */

static void image_free(struct nf_obs_image *img)
{
    if (img != NULL) {
        free(img->data);
        free(img);
    }
}

/* Absolute CLOCK_MONOTONIC time timeout_us from now, for timed waits. */
static struct timespec deadline_after(uint64_t timeout_us)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(timeout_us / 1000000u);
    ts.tv_nsec += (long)(timeout_us % 1000000u) * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
static int cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int rc;

    if (pthread_condattr_init(&attr) != 0)
        return NF_ENOMEM;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return rc == 0 ? 0 : NF_ENOMEM;
}

int nf_obs_slot_init(struct nf_obs_slot *s)
{
    memset(s, 0, sizeof(*s));
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        return NF_ENOMEM;
    if (cond_init_monotonic(&s->cond) < 0) {
        pthread_mutex_destroy(&s->lock);
        return NF_ENOMEM;
    }
    return 0;
}

void nf_obs_slot_free(struct nf_obs_slot *s)
{
    if (s == NULL)
        return;
    image_free(s->pending);
    for (int i = 0; i < s->pool_n; i++)
        image_free(s->pool[i]);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

struct nf_obs_image *nf_obs_slot_acquire(struct nf_obs_slot *s)
{
    struct nf_obs_image *img = NULL;

    pthread_mutex_lock(&s->lock);
    if (s->pool_n > 0)
        img = s->pool[--s->pool_n];
    pthread_mutex_unlock(&s->lock);
    if (img == NULL)
        img = calloc(1, sizeof(*img)); /* Only until the pool has filled. */
    return img;
}

/* Puts img in the pool, or returns it when the pool is full. Locked. */
static struct nf_obs_image *pool_put(struct nf_obs_slot *s,
                                     struct nf_obs_image *img)
{
    if (s->pool_n < NF_OBS_POOL_MAX) {
        s->pool[s->pool_n++] = img;
        return NULL;
    }
    return img;
}

void nf_obs_slot_publish(struct nf_obs_slot *s, struct nf_obs_image *img)
{
    struct nf_obs_image *spill = NULL;

    pthread_mutex_lock(&s->lock);
    if (s->pending != NULL) {
        s->overwritten++;
        spill = pool_put(s, s->pending);
    }
    s->pending = img;
    s->published++;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    image_free(spill);
}

struct nf_obs_image *nf_obs_slot_take(struct nf_obs_slot *s)
{
    struct nf_obs_image *img;

    pthread_mutex_lock(&s->lock);
    img = s->pending;
    s->pending = NULL;
    pthread_mutex_unlock(&s->lock);
    return img;
}

void nf_obs_slot_release(struct nf_obs_slot *s, struct nf_obs_image *img)
{
    if (img == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    img = pool_put(s, img);
    pthread_mutex_unlock(&s->lock);
    image_free(img);
}

int nf_obs_slot_has_pending(struct nf_obs_slot *s)
{
    int r;

    pthread_mutex_lock(&s->lock);
    r = s->pending != NULL;
    pthread_mutex_unlock(&s->lock);
    return r;
}

int nf_obs_slot_wait(struct nf_obs_slot *s, uint64_t timeout_us)
{
    struct timespec until = deadline_after(timeout_us);
    int r;

    pthread_mutex_lock(&s->lock);
    while (s->pending == NULL && !s->kicked) {
        if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
            break;
    }
    r = s->pending != NULL;
    pthread_mutex_unlock(&s->lock);
    return r;
}

void nf_obs_slot_kick(struct nf_obs_slot *s)
{
    pthread_mutex_lock(&s->lock);
    s->kicked = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* ---- In-flight frames --------------------------------------------------- */

/*
 * Entries are indexed by seq % NF_OBS_MAX_INFLIGHT: a power of two divides
 * 2^32, so the index runs on unbroken when seq wraps, and at most
 * NF_OBS_MAX_INFLIGHT consecutive seqs are ever live.
 */
_Static_assert((NF_OBS_MAX_INFLIGHT & (NF_OBS_MAX_INFLIGHT - 1)) == 0,
               "NF_OBS_MAX_INFLIGHT must be a power of two");
#define SLOT_OF(seq) ((seq) % NF_OBS_MAX_INFLIGHT)

void nf_obs_inflight_init(struct nf_obs_inflight *t, int max,
                          uint32_t first_seq, struct nf_obs_slot *pool)
{
    memset(t, 0, sizeof(*t));
    t->max = max < 1                     ? 1
             : max > NF_OBS_MAX_INFLIGHT ? NF_OBS_MAX_INFLIGHT
                                         : max;
    t->next_seq = first_seq;
    t->oldest_seq = first_seq;
    t->pool = pool;
}

uint32_t nf_obs_inflight_count(const struct nf_obs_inflight *t)
{
    return t->next_seq - t->oldest_seq;
}

int nf_obs_inflight_can_send(const struct nf_obs_inflight *t)
{
    return nf_obs_inflight_count(t) < (uint32_t)t->max;
}

uint32_t nf_obs_inflight_push(struct nf_obs_inflight *t,
                              struct nf_obs_image *orig, uint64_t now_us)
{
    uint32_t seq = t->next_seq++;

    if (seq == t->oldest_seq) /* Nothing was outstanding. */
        t->progress_us = now_us;
    t->orig[SLOT_OF(seq)] = orig;
    return seq;
}

/* Drops the oldest outstanding frame, recycling its original. */
static void forget_oldest(struct nf_obs_inflight *t)
{
    uint32_t i = SLOT_OF(t->oldest_seq);

    nf_obs_slot_release(t->pool, t->orig[i]);
    t->orig[i] = NULL;
    t->oldest_seq++;
}

/* Seqs this far behind next_seq still count as sent, for late replies. */
#define LATE_WINDOW 4096u

int nf_obs_inflight_reply(struct nf_obs_inflight *t, uint32_t seq,
                          uint64_t now_us, struct nf_obs_image **orig)
{
    uint32_t older = seq - t->oldest_seq;

    *orig = NULL;
    if (older >= nf_obs_inflight_count(t))
        return t->next_seq - seq - 1 < LATE_WINDOW ? NF_EAGAIN : NF_ERANGE;
    t->progress_us = now_us;
    for (uint32_t k = 0; k < older; k++)
        forget_oldest(t);
    *orig = t->orig[SLOT_OF(seq)];
    t->orig[SLOT_OF(seq)] = NULL;
    t->oldest_seq = seq + 1;
    return (int)older;
}

uint32_t nf_obs_inflight_expire(struct nf_obs_inflight *t, uint64_t now_us,
                                uint64_t timeout_us)
{
    uint32_t n = nf_obs_inflight_count(t);

    if (n == 0)
        return 0;
    if (timeout_us != 0 && now_us - t->progress_us <= timeout_us)
        return 0;
    while (nf_obs_inflight_count(t) > 0)
        forget_oldest(t);
    return n;
}

/* ---- Reconnect backoff -------------------------------------------------- */

void nf_obs_backoff_init(struct nf_obs_backoff *b, uint32_t min_ms,
                         uint32_t max_ms)
{
    b->min_ms = min_ms > 0 ? min_ms : 1;
    b->max_ms = max_ms > b->min_ms ? max_ms : b->min_ms;
    nf_obs_backoff_reset(b);
}

uint32_t nf_obs_backoff_next(struct nf_obs_backoff *b)
{
    uint32_t d = b->next_ms;

    b->next_ms = d > b->max_ms / 2 ? b->max_ms : d * 2;
    b->failures++;
    return d;
}

void nf_obs_backoff_reset(struct nf_obs_backoff *b)
{
    b->next_ms = b->min_ms;
    b->failures = 0;
}

/* ---- The exchange ------------------------------------------------------- */

int nf_obs_style_valid(const char *style)
{
    size_t n = strlen(style);

    if (n < 1 || n >= NF_CTRL_STYLE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = style[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

enum phase {
    PHASE_CONNECTING, /* Until the WebSocket opens. */
    PHASE_WELCOME,    /* Open; waiting for welcome. */
    PHASE_STREAMING,
    PHASE_CLOSING, /* We asked to close; waiting for the end. */
};

#define CTRL_HELLO 1
#define CTRL_SET   2

struct nf_obs_exchange {
    struct nf_obs_exchange_config cfg; /* Read-only after init. */
    pthread_t thread;
    atomic_int stop;
    atomic_uint_fast64_t last_submit_us;
    struct nf_obs_slot out; /* Frames: render thread -> network thread. */
    struct nf_obs_slot in;  /* Results: network thread -> render thread. */
    pthread_mutex_t lock;   /* Guards settings, settings_gen and stats. */
    pthread_cond_t wake;    /* Signalled by set() and free(). */
    struct nf_obs_settings settings; /* Guarded by lock. */
    unsigned settings_gen;           /* Guarded by lock. */
    struct nf_obs_stats stats;       /* Guarded by lock. */
    /* Everything below: network thread only. */
    struct nf_obs_settings cur; /* The settings in use. */
    unsigned cur_gen;
    struct nf_ws_client *ws;
    struct nf_jpeg *jpeg;
    struct nf_obs_inflight fl;
    struct nf_obs_backoff backoff;
    enum phase phase;
    int ctrl_pending;  /* CTRL_* messages waiting for a writable. */
    int reconnect_now; /* The URL or token changed: no backoff. */
    int got_reply;     /* This session produced a result. */
    int failure_noted; /* This session's failure is counted already. */
    uint64_t connect_deadline_us;
    uint64_t stop_deadline_us; /* 0 until stopping. */
    uint64_t next_stats_us;
    uint8_t *tx; /* NF_WS_PRE + FRAME_IN header + JPEG. */
    size_t tx_cap;
    uint8_t *rgb; /* RGB for encoding and decoding. */
    size_t rgb_cap;
    char logged_error[128]; /* Last failure logged: log changes only. */
};

static void xlog(struct nf_obs_exchange *x, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void xlog(struct nf_obs_exchange *x, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (x->cfg.log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    x->cfg.log(x->cfg.log_user, level, line);
}

static void set_state(struct nf_obs_exchange *x, int state)
{
    pthread_mutex_lock(&x->lock);
    x->stats.state = state;
    pthread_mutex_unlock(&x->lock);
}

/* Copies src into dst (cap bytes), cut short if it must be. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void set_error(struct nf_obs_exchange *x, const char *what)
{
    pthread_mutex_lock(&x->lock);
    copy_str(x->stats.last_error, sizeof(x->stats.last_error), what);
    pthread_mutex_unlock(&x->lock);
}

/* Grows *buf to at least need bytes. Returns 0 or NF_ENOMEM. */
static int ensure(uint8_t **buf, size_t *cap, size_t need)
{
    uint8_t *p;

    if (need <= *cap)
        return 0;
    p = realloc(*buf, need);
    if (p == NULL)
        return NF_ENOMEM;
    *buf = p;
    *cap = need;
    return 0;
}

/*
 * Copies newer settings, if any, into x->cur. Returns CTRL_SET when the
 * style changed, and sets *reconnect when the URL or token did.
 */
static int pull_settings(struct nf_obs_exchange *x, int *reconnect)
{
    struct nf_obs_settings s;
    unsigned gen;
    int restyle;

    *reconnect = 0;
    pthread_mutex_lock(&x->lock);
    gen = x->settings_gen;
    s = x->settings;
    pthread_mutex_unlock(&x->lock);
    if (gen == x->cur_gen)
        return 0;
    x->cur_gen = gen;
    *reconnect =
        strcmp(s.url, x->cur.url) != 0 || strcmp(s.token, x->cur.token) != 0;
    restyle = strcmp(s.style, x->cur.style) != 0;
    x->cur = s;
    return restyle ? CTRL_SET : 0;
}

/* ---- Network thread: sending -------------------------------------------- */

/* Formats hello, with the style when set, at buf. */
static int format_hello(struct nf_obs_exchange *x, char *buf, size_t cap)
{
    json_t *o = json_object();
    size_t n;

    if (o == NULL)
        return NF_ENOMEM;
    json_object_set_new(o, "type", json_string("hello"));
    json_object_set_new(o, "version", json_integer(NF_WIRE_VERSION));
    if (nf_obs_style_valid(x->cur.style))
        json_object_set_new(o, "style", json_string(x->cur.style));
    else if (x->cur.style[0] != '\0')
        xlog(x, NF_OBS_LOG_WARN,
             "style '%s' is not a style name (A-Z a-z 0-9 _ . -, at most 63 "
             "bytes): using the server's default",
             x->cur.style);
    n = json_dumpb(o, buf, cap, JSON_COMPACT);
    json_decref(o);
    return n > 0 && n <= cap ? (int)n : NF_ERANGE;
}

/* Writes the first pending control message. Returns 1 if one was due. */
static int send_control(struct nf_obs_exchange *x, struct nf_ws_client *ws)
{
    uint8_t buf[NF_WS_PRE + 1024];
    char *msg = (char *)buf + NF_WS_PRE;
    size_t cap = sizeof(buf) - NF_WS_PRE;
    int n;

    if (x->ctrl_pending & CTRL_HELLO) {
        x->ctrl_pending &= ~CTRL_HELLO;
        n = format_hello(x, msg, cap);
    } else if (x->ctrl_pending & CTRL_SET) {
        x->ctrl_pending &= ~CTRL_SET;
        if (!nf_obs_style_valid(x->cur.style))
            return 0; /* Nothing to set: the server keeps its style. */
        n = nf_ctrl_format_set(msg, cap, x->cur.style, 0);
    } else {
        return 0;
    }
    if (n < 0 ||
        nf_ws_client_write(ws, (uint8_t *)msg, (size_t)n, NF_WS_TEXT) < 0)
        xlog(x, NF_OBS_LOG_WARN, "sending a control message failed");
    return 1;
}

/* Encodes img as one FRAME_IN and writes it; img moves to the tracker. */
static void send_frame(struct nf_obs_exchange *x, struct nf_ws_client *ws,
                       struct nf_obs_image *img)
{
    struct nf_frame_header h = {0};
    int w = img->width, hgt = img->height, n;
    size_t jcap = nf_jpeg_bound(w, hgt);
    uint8_t *msg;

    if (w > 65535 || hgt > 65535 ||
        ensure(&x->rgb, &x->rgb_cap, (size_t)w * (size_t)hgt * 3) < 0 ||
        ensure(&x->tx, &x->tx_cap, NF_WS_PRE + NF_WIRE_FRAME_IN_LEN + jcap) < 0)
        goto fail;
    msg = x->tx + NF_WS_PRE;
    nf_obs_to_rgb(img->data, img->stride, img->format, w, hgt, x->rgb, w * 3);
    n = nf_jpeg_encode_rgb(x->jpeg, x->rgb, w, hgt, w * 3, x->cfg.jpeg_quality,
                           msg + NF_WIRE_FRAME_IN_LEN, jcap);
    if (n < 0)
        goto fail;
    h.type = NF_MSG_FRAME_IN;
    h.seq = x->fl.next_seq;
    h.capture_us = img->stamp_us;
    h.width = (uint16_t)w;
    h.height = (uint16_t)hgt;
    h.format = NF_FORMAT_JPEG;
    h.payload_len = (uint32_t)n;
    if (nf_wire_encode_header(&h, msg, NF_WIRE_FRAME_IN_LEN) !=
            NF_WIRE_FRAME_IN_LEN ||
        nf_ws_client_write(ws, msg, NF_WIRE_FRAME_IN_LEN + (size_t)n,
                           NF_WS_BINARY) < 0)
        goto fail_write;
    nf_obs_inflight_push(&x->fl, img, nf_mono_us());
    pthread_mutex_lock(&x->lock);
    x->stats.sent++;
    pthread_mutex_unlock(&x->lock);
    return;

fail_write:
    /* The socket is broken: end the session; on_end follows. */
    x->phase = PHASE_CLOSING;
    nf_ws_client_close(ws, NF_CLOSE_NORMAL, "write failed");
fail:
    xlog(x, NF_OBS_LOG_WARN, "could not send a %dx%d frame", w, hgt);
    nf_obs_slot_release(&x->out, img);
}

static void on_writable(struct nf_ws_client *ws, void *user)
{
    struct nf_obs_exchange *x = user;
    struct nf_obs_image *img;

    if (x->phase == PHASE_CLOSING)
        return;
    if (send_control(x, ws)) {
        nf_ws_client_want_write(ws);
        return;
    }
    if (x->phase != PHASE_STREAMING || !nf_obs_inflight_can_send(&x->fl))
        return;
    img = nf_obs_slot_take(&x->out);
    if (img == NULL)
        return;
    send_frame(x, ws, img);
    if (nf_obs_inflight_can_send(&x->fl) && nf_obs_slot_has_pending(&x->out))
        nf_ws_client_want_write(ws);
}

/* ---- Network thread: receiving ------------------------------------------ */

static void bad_reply(struct nf_obs_exchange *x, const char *why)
{
    uint64_t n;

    pthread_mutex_lock(&x->lock);
    n = ++x->stats.bad_replies;
    pthread_mutex_unlock(&x->lock);
    if (n <= 3)
        xlog(x, NF_OBS_LOG_WARN, "ignoring a reply: %s", why);
}

/*
 * Decodes a reply's JPEG, blends it with the frame it answers (orig, may
 * be NULL) and publishes the result.
 */
static void publish_result(struct nf_obs_exchange *x,
                           const struct nf_frame_header *h, const uint8_t *jpg,
                           const struct nf_obs_image *orig)
{
    static const struct nf_jpeg_limits lim = {
        MAX_REPLY_DIM, MAX_REPLY_DIM, (uint64_t)MAX_REPLY_DIM * MAX_REPLY_DIM};
    struct nf_obs_image *img;
    uint64_t now;
    int w, hgt;

    if (nf_jpeg_probe(x->jpeg, jpg, h->payload_len, &lim, &w, &hgt) < 0 ||
        ensure(&x->rgb, &x->rgb_cap, (size_t)w * (size_t)hgt * 3) < 0 ||
        nf_jpeg_decode_rgb(x->jpeg, jpg, h->payload_len, x->rgb, w, hgt,
                           w * 3) < 0) {
        bad_reply(x, "unreadable JPEG");
        return;
    }
    img = nf_obs_slot_acquire(&x->in);
    if (img == NULL || nf_obs_image_reserve(img, w, hgt) < 0) {
        nf_obs_slot_release(&x->in, img);
        return;
    }
    if (orig != NULL && (orig->width != w || orig->height != hgt))
        orig = NULL; /* The server changed the size: show it as it is. */
    nf_obs_compose(orig != NULL ? orig->data : NULL,
                   orig != NULL ? orig->stride : 0,
                   orig != NULL ? orig->format : NF_OBS_RGBA, x->rgb, w * 3, w,
                   hgt, nf_obs_strength_q8(x->cur.strength), img->data,
                   img->stride, NF_OBS_RGBA);
    now = nf_mono_us();
    img->format = NF_OBS_RGBA;
    img->seq = h->seq;
    img->capture_us = h->capture_us;
    img->stamp_us = now;
    nf_obs_slot_publish(&x->in, img);
    pthread_mutex_lock(&x->lock);
    x->stats.received++;
    x->stats.last_latency_us = (uint32_t)(now - h->capture_us);
    pthread_mutex_unlock(&x->lock);
    if (!x->got_reply) {
        x->got_reply = 1;
        nf_obs_backoff_reset(&x->backoff); /* This server works. */
    }
}

static void on_frame(struct nf_obs_exchange *x, const uint8_t *msg, size_t len)
{
    struct nf_frame_header h;
    struct nf_obs_image *orig;
    int hl = nf_wire_decode_header(msg, len, &h);
    int older;

    if (hl <= 0 || h.type != NF_MSG_FRAME_OUT ||
        nf_wire_check_message(&h, (size_t)hl, len) < 0) {
        bad_reply(x, "malformed FRAME_OUT");
        return;
    }
    older = nf_obs_inflight_reply(&x->fl, h.seq, nf_mono_us(), &orig);
    if (older == NF_EAGAIN) {
        /* Counted as dropped when it expired; too late to show now. */
        nf_ws_client_want_write(x->ws);
        return;
    }
    if (older < 0) {
        bad_reply(x, "reply to a frame never sent");
        return;
    }
    if (older > 0) {
        pthread_mutex_lock(&x->lock);
        x->stats.dropped += (uint64_t)older;
        pthread_mutex_unlock(&x->lock);
    }
    publish_result(x, &h, msg + hl, orig);
    nf_obs_slot_release(&x->out, orig);
    nf_ws_client_want_write(x->ws); /* Credit came back. */
}

static const char *json_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s != NULL ? s : "?";
}

/* Logs the welcome: session, backend and the styles on offer. */
static void log_welcome(struct nf_obs_exchange *x, const uint8_t *msg,
                        size_t len)
{
    json_t *root = json_loadb((const char *)msg, len, 0, NULL);
    json_t *styles = json_object_get(root, "styles");
    char list[256] = "";
    size_t i, used = 0;
    json_t *v;

    json_array_foreach(styles, i, v)
    {
        if (json_is_string(v) && used < sizeof(list))
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                     i ? ", " : "", json_string_value(v));
    }
    xlog(x, NF_OBS_LOG_INFO, "connected to %s (session %s, backend %s, %s%s)",
         x->cur.url, json_str(root, "session"), json_str(root, "backend"),
         list[0] ? "styles: " : "no styles", list);
    json_decref(root);
}

static void on_control(struct nf_obs_exchange *x, const uint8_t *msg,
                       size_t len)
{
    struct nf_ctrl_msg m;

    if (nf_ctrl_parse((const char *)msg, len, &m) < 0) {
        bad_reply(x, "malformed control message");
        return;
    }
    switch (m.type) {
    case NF_CTRL_WELCOME:
        if (x->phase != PHASE_WELCOME)
            break;
        x->phase = PHASE_STREAMING;
        x->logged_error[0] = '\0';
        pthread_mutex_lock(&x->lock);
        x->stats.connects++;
        x->stats.state = NF_OBS_STREAMING;
        pthread_mutex_unlock(&x->lock);
        log_welcome(x, msg, len);
        nf_ws_client_want_write(x->ws);
        break;
    case NF_CTRL_STATE:
        xlog(x, NF_OBS_LOG_INFO, "style %s, quality %d", m.style, m.quality);
        break;
    case NF_CTRL_ERROR:
        xlog(x, NF_OBS_LOG_WARN, "server error %s: %s", m.code, m.message);
        set_error(x, m.message[0] ? m.message : m.code);
        break;
    default:
        break;
    }
}

static void on_message(struct nf_ws_client *ws, void *user, const uint8_t *msg,
                       size_t len, int binary)
{
    struct nf_obs_exchange *x = user;

    (void)ws;
    if (binary)
        on_frame(x, msg, len);
    else
        on_control(x, msg, len);
}

/* ---- Network thread: connection ----------------------------------------- */

static void on_open(struct nf_ws_client *ws, void *user)
{
    struct nf_obs_exchange *x = user;

    x->phase = PHASE_WELCOME;
    x->ctrl_pending = CTRL_HELLO;
    nf_ws_client_want_write(ws);
}

/*
 * Records a failed attempt, once per session; logs it when it differs from
 * the last failure logged.
 */
static void note_failure(struct nf_obs_exchange *x, const char *why)
{
    if (x->failure_noted)
        return;
    x->failure_noted = 1;
    pthread_mutex_lock(&x->lock);
    x->stats.connect_failures++;
    copy_str(x->stats.last_error, sizeof(x->stats.last_error), why);
    pthread_mutex_unlock(&x->lock);
    if (strncmp(why, x->logged_error, sizeof(x->logged_error) - 1) != 0) {
        copy_str(x->logged_error, sizeof(x->logged_error), why);
        xlog(x, NF_OBS_LOG_WARN,
             "cannot stream to %s: %s (retrying with backoff; frames pass "
             "through meanwhile)",
             x->cur.url, why);
    }
}

static void log_stats(struct nf_obs_exchange *x)
{
    struct nf_obs_stats st;

    nf_obs_exchange_get_stats(x, &st);
    xlog(x, NF_OBS_LOG_INFO,
         "frames: submitted %llu, superseded %llu, sent %llu, received %llu, "
         "dropped %llu; latency %.1f ms",
         (unsigned long long)st.submitted, (unsigned long long)st.superseded,
         (unsigned long long)st.sent, (unsigned long long)st.received,
         (unsigned long long)st.dropped, st.last_latency_us / 1000.0);
}

static void on_end(struct nf_ws_client *ws, void *user,
                   const struct nf_ws_end *end)
{
    struct nf_obs_exchange *x = user;
    char why[160];

    (void)ws;
    if (end->how == NF_WS_PEER_CLOSED)
        snprintf(why, sizeof(why), "server closed with %d (%s)", end->code,
                 end->reason);
    else
        snprintf(why, sizeof(why), "%s", end->reason);
    if (x->phase == PHASE_STREAMING || x->got_reply) {
        xlog(x, NF_OBS_LOG_INFO, "session with %s ended: %s", x->cur.url, why);
        log_stats(x);
        set_error(x, why);
    } else if (!atomic_load(&x->stop) && !x->reconnect_now) {
        note_failure(x, why);
    }
    x->phase = PHASE_CLOSING;
}

/* The periodic tick: stop, settings, deadlines, sending. */
static void on_timer(struct nf_ws_client *ws, void *user)
{
    struct nf_obs_exchange *x = user;
    uint64_t now = nf_mono_us(), tick = TICK_IDLE_US, n, last;
    int reconnect, ctrl;

    if (atomic_load(&x->stop) && x->stop_deadline_us == 0) {
        x->stop_deadline_us = now + STOP_GRACE_US;
        x->phase = PHASE_CLOSING;
        nf_ws_client_close(ws, NF_CLOSE_GOING_AWAY, "going away");
    }
    ctrl = pull_settings(x, &reconnect);
    if (reconnect && x->phase != PHASE_CLOSING) {
        x->reconnect_now = 1;
        x->phase = PHASE_CLOSING;
        nf_ws_client_close(ws, NF_CLOSE_NORMAL, "reconfigured");
    } else if (ctrl && x->phase != PHASE_CONNECTING) {
        x->ctrl_pending |= ctrl; /* Before open, hello will carry it. */
        nf_ws_client_want_write(ws);
    }
    if (x->phase < PHASE_STREAMING && now > x->connect_deadline_us) {
        note_failure(x, "no welcome within 5 s");
        x->phase = PHASE_CLOSING;
        nf_ws_client_close(ws, NF_CLOSE_NORMAL, "timeout");
    }
    n = nf_obs_inflight_expire(&x->fl, now,
                               (uint64_t)x->cfg.reply_timeout_ms * 1000);
    if (n > 0) {
        pthread_mutex_lock(&x->lock);
        x->stats.dropped += n;
        pthread_mutex_unlock(&x->lock);
    }
    if (x->phase == PHASE_STREAMING && nf_obs_inflight_can_send(&x->fl) &&
        nf_obs_slot_has_pending(&x->out))
        nf_ws_client_want_write(ws);
    if (x->cfg.stats_log_s > 0 && x->phase == PHASE_STREAMING &&
        now >= x->next_stats_us) {
        if (x->next_stats_us != 0)
            log_stats(x);
        x->next_stats_us = now + (uint64_t)x->cfg.stats_log_s * 1000000;
    }
    last = atomic_load(&x->last_submit_us);
    if (last >= now || now - last < ACTIVE_WINDOW_US)
        tick = TICK_ACTIVE_US;
    nf_ws_client_set_timer(ws, tick);
}

/* One connection, from connect to its end. */
static void run_session(struct nf_obs_exchange *x)
{
    static const struct nf_ws_client_ops ops = {
        .on_open = on_open,
        .on_message = on_message,
        .on_writable = on_writable,
        .on_timer = on_timer,
        .on_end = on_end,
    };
    struct nf_ws_client_config wc = {0};
    char err[256] = "";
    char offer[sizeof NF_WIRE_SUBPROTOCOL + sizeof NF_TOKEN_SUBPROTOCOL_PREFIX +
               NF_OBS_TOKEN_MAX];
    uint32_t n;

    x->phase = PHASE_CONNECTING;
    x->ctrl_pending = 0;
    x->got_reply = 0;
    x->failure_noted = 0;
    x->stop_deadline_us = 0;
    x->connect_deadline_us = nf_mono_us() + CONNECT_TIMEOUT_US;
    set_state(x, NF_OBS_CONNECTING);
    wc.url = x->cur.url;
    wc.subprotocol = NF_WIRE_SUBPROTOCOL;
    if (x->cur.token[0] != '\0') {
        /* The server's stream token rides in the subprotocol list. */
        if (nf_token_check(x->cur.token, err, sizeof err) < 0) {
            note_failure(x, err);
            return;
        }
        snprintf(offer, sizeof offer,
                 NF_WIRE_SUBPROTOCOL "," NF_TOKEN_SUBPROTOCOL_PREFIX "%s",
                 x->cur.token);
        wc.subprotocol = offer;
    }
    wc.max_message = MAX_MESSAGE;
    if (nf_ws_client_init(&x->ws, &wc, &ops, x, err, sizeof(err)) < 0) {
        note_failure(x, err[0] ? err : "cannot start the WebSocket client");
        return;
    }
    nf_ws_client_set_timer(x->ws, TICK_ACTIVE_US);
    while (nf_ws_client_end(x->ws)->how == NF_WS_OPEN) {
        if (x->stop_deadline_us != 0 && nf_mono_us() > x->stop_deadline_us)
            break;
        if (nf_ws_client_service(x->ws) < 0)
            break;
    }
    n = nf_obs_inflight_expire(&x->fl, 0, 0);
    pthread_mutex_lock(&x->lock);
    x->stats.dropped += n;
    pthread_mutex_unlock(&x->lock);
    nf_ws_client_free(x->ws);
    x->ws = NULL;
}

/* Waits up to ms, or until stopped or given new settings. */
static void backoff_sleep(struct nf_obs_exchange *x, uint32_t ms)
{
    struct timespec until = deadline_after((uint64_t)ms * 1000);

    pthread_mutex_lock(&x->lock);
    x->stats.state = NF_OBS_WAITING;
    while (!atomic_load(&x->stop) && x->settings_gen == x->cur_gen) {
        if (pthread_cond_timedwait(&x->wake, &x->lock, &until) == ETIMEDOUT)
            break;
    }
    x->stats.state = NF_OBS_IDLE;
    pthread_mutex_unlock(&x->lock);
}

static void *run(void *arg)
{
    struct nf_obs_exchange *x = arg;
    int reconnect;

    pthread_setname_np(pthread_self(), "nf-exchange"); /* For debuggers. */
    while (!atomic_load(&x->stop)) {
        if (pull_settings(x, &reconnect) || reconnect)
            nf_obs_backoff_reset(&x->backoff);
        /* Connect lazily: only once there is a frame to send. */
        if (!nf_obs_slot_wait(&x->out, LAZY_WAIT_US))
            continue;
        if (atomic_load(&x->stop))
            break;
        run_session(x);
        if (atomic_load(&x->stop))
            break;
        if (x->reconnect_now) {
            x->reconnect_now = 0;
            nf_obs_backoff_reset(&x->backoff);
            continue;
        }
        backoff_sleep(x, nf_obs_backoff_next(&x->backoff));
    }
    set_state(x, NF_OBS_IDLE);
    return NULL;
}

/* ---- Public calls ------------------------------------------------------- */

int nf_obs_exchange_init(struct nf_obs_exchange **out,
                         const struct nf_obs_exchange_config *cfg)
{
    struct nf_obs_exchange *x;
    int rc = NF_ENOMEM;

    *out = NULL;
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NF_ENOMEM;
    x->cfg = *cfg;
    if (x->cfg.max_inflight < 1 || x->cfg.max_inflight > NF_OBS_MAX_INFLIGHT)
        x->cfg.max_inflight = 2;
    if (x->cfg.jpeg_quality < 1 || x->cfg.jpeg_quality > 100)
        x->cfg.jpeg_quality = 85;
    if (x->cfg.reply_timeout_ms == 0)
        x->cfg.reply_timeout_ms = 2000;
    nf_obs_backoff_init(&x->backoff,
                        cfg->backoff_min_ms ? cfg->backoff_min_ms : 250,
                        cfg->backoff_max_ms ? cfg->backoff_max_ms : 5000);
    x->settings = cfg->settings;
    x->settings_gen = 1; /* cur_gen 0: the thread pulls them first. */
    atomic_init(&x->stop, 0);
    atomic_init(&x->last_submit_us, 0);
    if (nf_obs_slot_init(&x->out) < 0) {
        free(x);
        return NF_ENOMEM;
    }
    if (nf_obs_slot_init(&x->in) < 0)
        goto fail_in;
    if (pthread_mutex_init(&x->lock, NULL) != 0)
        goto fail_lock;
    if (cond_init_monotonic(&x->wake) < 0)
        goto fail_wake;
    nf_obs_inflight_init(&x->fl, x->cfg.max_inflight, 1, &x->out);
    if (nf_jpeg_init(&x->jpeg) < 0)
        goto fail_jpeg;
    if (pthread_create(&x->thread, NULL, run, x) != 0) {
        rc = NF_EIO;
        goto fail_thread;
    }
    *out = x;
    return 0;

fail_thread:
    nf_jpeg_free(x->jpeg);
fail_jpeg:
    pthread_cond_destroy(&x->wake);
fail_wake:
    pthread_mutex_destroy(&x->lock);
fail_lock:
    nf_obs_slot_free(&x->in);
fail_in:
    nf_obs_slot_free(&x->out);
    free(x);
    return rc;
}

void nf_obs_exchange_free(struct nf_obs_exchange *x)
{
    if (x == NULL)
        return;
    atomic_store(&x->stop, 1);
    nf_obs_slot_kick(&x->out);
    pthread_mutex_lock(&x->lock);
    pthread_cond_broadcast(&x->wake);
    pthread_mutex_unlock(&x->lock);
    pthread_join(x->thread, NULL);
    nf_obs_inflight_expire(&x->fl, 0, 0);
    nf_jpeg_free(x->jpeg);
    free(x->tx);
    free(x->rgb);
    pthread_cond_destroy(&x->wake);
    pthread_mutex_destroy(&x->lock);
    nf_obs_slot_free(&x->in);
    nf_obs_slot_free(&x->out);
    free(x);
}

void nf_obs_exchange_set(struct nf_obs_exchange *x,
                         const struct nf_obs_settings *s)
{
    pthread_mutex_lock(&x->lock);
    x->settings = *s;
    x->settings_gen++;
    pthread_cond_broadcast(&x->wake);
    pthread_mutex_unlock(&x->lock);
}

struct nf_obs_image *nf_obs_exchange_frame_acquire(struct nf_obs_exchange *x,
                                                   int width, int height,
                                                   int format)
{
    struct nf_obs_image *img = nf_obs_slot_acquire(&x->out);

    if (img == NULL)
        return NULL;
    if (nf_obs_image_reserve(img, width, height) < 0) {
        nf_obs_slot_release(&x->out, img);
        return NULL;
    }
    img->format = format;
    img->stamp_us = nf_mono_us();
    return img;
}

void nf_obs_exchange_frame_submit(struct nf_obs_exchange *x,
                                  struct nf_obs_image *img)
{
    atomic_store(&x->last_submit_us, nf_mono_us());
    nf_obs_slot_publish(&x->out, img);
}

struct nf_obs_image *nf_obs_exchange_result_take(struct nf_obs_exchange *x)
{
    return nf_obs_slot_take(&x->in);
}

void nf_obs_exchange_result_release(struct nf_obs_exchange *x,
                                    struct nf_obs_image *img)
{
    nf_obs_slot_release(&x->in, img);
}

void nf_obs_exchange_get_stats(struct nf_obs_exchange *x,
                               struct nf_obs_stats *st)
{
    pthread_mutex_lock(&x->lock);
    *st = x->stats;
    pthread_mutex_unlock(&x->lock);
    pthread_mutex_lock(&x->out.lock);
    st->submitted = x->out.published;
    st->superseded = x->out.overwritten;
    pthread_mutex_unlock(&x->out.lock);
}
