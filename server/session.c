/*
 * session.c - one stream: the WebSocket protocol "nextframe.v1".
 *
 * Receives frame and control messages, checks each before anything large
 * is allocated (header at the first bytes, JPEG dimensions before
 * decoding), hands frames to the scheduler and writes the replies back.
 * Every way a session ends has its close code (protocol/wire.h). Loop
 * thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "model.h"
#include "error.h"
#include "server-impl.h"
#include "timeutil.h"
#include "wire.h"

static struct nf_server *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static void session_unref(struct nf_session *s)
{
    struct nf_server *srv = s->srv;

    if (--s->refs > 0)
        return;
    for (int i = 0; i < srv->n_styles; i++)
        nf_temporal_free(s->sc.temporal[i]);
    free(s);
}

/* Returns a job's buffers to the pool and the job to the free list. */
static void job_recycle(struct nf_server *srv, struct nf_job *job)
{
    nf_bufpool_put(&srv->pool, job->in);
    nf_bufpool_put(&srv->pool, job->out);
    memset(job, 0, sizeof *job);
    job->next = srv->free_jobs;
    srv->free_jobs = job;
}

static struct nf_job *job_get(struct nf_server *srv)
{
    struct nf_job *job = srv->free_jobs;

    if (job) {
        srv->free_jobs = job->next;
        job->next = NULL;
        return job;
    }
    return calloc(1, sizeof *job);
}

static void count_drop(struct nf_session *s, enum nf_drop_reason why)
{
    s->srv->metrics.frames_dropped[why]++;
    s->dropped++;
}

/*
 * Queues a control message (NUL-terminated text). A state message replaces
 * a state still waiting to be written (a state is a full snapshot: the
 * newest wins), so a burst of requests costs one slot.
 */
static void queue_ctrl_kind(struct nf_session *s, const char *text, int len,
                            int is_state)
{
    int slot;

    if (s->state != NF_SESSION_OPEN || len < 0)
        return;
    if (is_state && s->state_slot >= 0) {
        slot = s->state_slot;
    } else if (s->ctrl_count == NF_CTRL_QUEUE) {
        /* The client sends control messages faster than it reads. */
        nf__session_close(s, NF_CLOSE_POLICY,
                          "policy violation: control messages faster than "
                          "they are read");
        return;
    } else {
        slot = (s->ctrl_head + s->ctrl_count) % NF_CTRL_QUEUE;
        s->ctrl_count++;
        if (is_state)
            s->state_slot = slot;
    }
    memcpy(s->ctrl[slot] + LWS_PRE, text, (size_t)len);
    s->ctrl_len[slot] = len;
    lws_callback_on_writable(s->wsi);
}

static void queue_ctrl(struct nf_session *s, const char *text, int len)
{
    queue_ctrl_kind(s, text, len, 0);
}

static void queue_error(struct nf_session *s, const char *code,
                        const char *message)
{
    char buf[NF_CTRL_MSG_MAX];
    queue_ctrl(s, buf, nf_ctrl_format_error(buf, sizeof buf, code, message));
}

/* The full state: style, quality, drift, scale and every correction
 * parameter. */
static void queue_state(struct nf_session *s)
{
    char buf[NF_CTRL_MSG_MAX];
    struct nf_ctrl_param params[NF_CTRL_MAX_PARAMS];
    const char *name;
    int n_params = 0;

    for (int i = 0; (name = nf_temporal_param_name(i)) != NULL &&
                    n_params < NF_CTRL_MAX_PARAMS;
         i++) {
        struct nf_ctrl_param *p = &params[n_params];
        if (strlen(name) >= sizeof p->name ||
            nf_temporal_param_get(&s->params, name, &p->value) < 0)
            continue;
        strcpy(p->name, name);
        n_params++;
    }
    queue_ctrl_kind(s, buf,
                    nf_ctrl_format_state_with(
                        buf, sizeof buf, s->srv->styles[s->style].name,
                        s->quality, s->drift, s->scale8, params, n_params),
                    1);
}

static void queue_welcome(struct nf_session *s)
{
    struct nf_server *srv = s->srv;
    struct nf_ctrl_welcome w = {0};
    char buf[NF_CTRL_MSG_MAX];

    w.session = s->id;
    w.backend = srv->backend_name;
    w.style = srv->styles[s->style].name;
    for (int i = 0; i < srv->n_styles && i < NF_CTRL_MAX_STYLES; i++)
        w.styles[w.n_styles++] = srv->styles[i].name;
    w.cache_frames = nf_model_cache_frames(srv->styles[s->style].model);
    w.quality = s->quality;
    w.scale8 = s->scale8;
    w.max_message_bytes = srv->cfg.max_message_bytes;
    w.max_width = srv->cfg.max_width;
    w.max_height = srv->cfg.max_height;
    w.idle_timeout_s = srv->cfg.idle_timeout_s;
    queue_ctrl(s, buf, nf_ctrl_format_welcome(buf, sizeof buf, &w));
}

void nf__session_close(struct nf_session *s, int code, const char *reason)
{
    if (s->state != NF_SESSION_OPEN)
        return;
    s->state = NF_SESSION_CLOSING;
    s->close_code = code;
    snprintf(s->close_reason, sizeof s->close_reason, "%s",
             reason ? reason : nf_wire_close_reason(code));
    if (code != NF_CLOSE_NORMAL && code != NF_CLOSE_GOING_AWAY)
        s->srv->metrics.sessions_ended[NF_SESSION_END_ERROR]++;
    lws_callback_on_writable(s->wsi);
    /* A client that never reads never makes us writeable: cut it off. */
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 2);
}

/*
 * Closes at once from a receive callback: returns -1 for lws to act on.
 * reason NULL uses the table's text for the code.
 */
static int close_now(struct nf_session *s, int err, const char *reason)
{
    int code = nf_wire_close_code_for(err);
    char buf[124];

    /* The reason says what was wrong: "malformed message: bad magic". */
    snprintf(buf, sizeof buf, "%s: %s", nf_wire_close_reason(code),
             reason ? reason : nf_strerror(err));
    s->state = NF_SESSION_CLOSING;
    s->close_code = code;
    s->srv->metrics.sessions_ended[NF_SESSION_END_ERROR]++;
    if (s->srv->cfg.verbose)
        lwsl_user("session %s: closing %d (%s)\n", s->id, code, buf);
    lws_close_reason(s->wsi, (enum lws_close_status)code, (unsigned char *)buf,
                     strlen(buf));
    return -1;
}

static int session_open(struct lws *wsi, struct nf_session_pss *pss)
{
    struct nf_server *srv = server_of(wsi);
    struct nf_session *s;
    static const char full[] = "server full, try again later";
    static const char crowded[] =
        "server full, try again later: too many sessions from your address";
    static const char denied[] =
        "stream token missing or wrong: offer "
        "subprotocol " NF_TOKEN_SUBPROTOCOL_PREFIX "TOKEN";
    char peer[sizeof s->peer];

    if (pss->unauthorized) {
        srv->metrics.sessions_ended[NF_SESSION_END_REFUSED]++;
        lwsl_warn("refused a stream without the right token\n");
        lws_close_reason(wsi, (enum lws_close_status)NF_CLOSE_UNAUTHORIZED,
                         (unsigned char *)denied, sizeof denied - 1);
        return -1;
    }
    if (!nf__server_ready(srv)) {
        srv->metrics.sessions_ended[NF_SESSION_END_REFUSED]++;
        lws_close_reason(wsi, (enum lws_close_status)NF_CLOSE_TRY_AGAIN,
                         (unsigned char *)full, sizeof full - 1);
        return -1;
    }
    memcpy(peer, pss->peer, sizeof peer);
    if (nf__access_sessions_from(srv, peer) >= srv->cfg.max_sessions_per_addr) {
        srv->metrics.sessions_ended[NF_SESSION_END_REFUSED]++;
        lws_close_reason(wsi, (enum lws_close_status)NF_CLOSE_TRY_AGAIN,
                         (unsigned char *)crowded, sizeof crowded - 1);
        return -1;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    memcpy(s->peer, peer, sizeof s->peer);
    s->state_slot = -1;
    s->ctrl_tokens = srv->cfg.max_control_rate;
    s->srv = srv;
    s->wsi = wsi;
    s->refs = 1;
    s->state = NF_SESSION_OPEN;
    s->quality = srv->cfg.quality;
    s->scale8 = srv->cfg.scale8;
    s->params = srv->params;
    s->last_rx_us = nf_now_us();
    snprintf(s->id, sizeof s->id, "%llu-%04x",
             (unsigned long long)++srv->next_session_id,
             (unsigned)(s->last_rx_us & 0xffff));
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->n_sessions++;
    srv->metrics.sessions_active++;
    srv->metrics.sessions_total++;
    pss->s = s;
    if (srv->cfg.verbose)
        lwsl_user("session %s: open\n", s->id);
    queue_welcome(s);
    return 0;
}

static void session_closed(struct nf_session_pss *pss)
{
    struct nf_session *s = pss->s;
    struct nf_server *srv;

    if (!s)
        return;
    srv = s->srv;
    pss->s = NULL;
    if (srv->sched) {
        struct nf_job *job = nf_sched_cancel(srv->sched, &s->sc);
        if (job) {
            count_drop(s, NF_DROP_CLOSED);
            job_recycle(srv, job);
            s->refs--; /* The job's reference; the connection's remains. */
        }
    }
    if (s->out) {
        count_drop(s, NF_DROP_CLOSED);
        job_recycle(srv, s->out);
        s->out = NULL;
    }
    nf_bufpool_put(&srv->pool, s->rx);
    s->rx = NULL;
    nf__mjpeg_session_closed(s);
    if (s->state == NF_SESSION_OPEN || s->close_code == NF_CLOSE_GOING_AWAY)
        srv->metrics.sessions_ended[NF_SESSION_END_NORMAL]++;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->n_sessions--;
    srv->metrics.sessions_active--;
    s->wsi = NULL;
    s->state = NF_SESSION_DEAD;
    if (srv->cfg.verbose)
        lwsl_user("session %s: closed, %llu in, %llu out, %u dropped\n", s->id,
                  (unsigned long long)s->frames_in,
                  (unsigned long long)s->frames_out, s->dropped);
    session_unref(s);
}

static int find_style(const struct nf_server *srv, const char *name)
{
    for (int i = 0; i < srv->n_styles; i++)
        if (strcmp(srv->styles[i].name, name) == 0)
            return i;
    return -1;
}

/* Applies style, quality, scale and correction from a hello or set. */
static void apply_settings(struct nf_session *s, const struct nf_ctrl_msg *m)
{
    if (m->style[0]) {
        int i = find_style(s->srv, m->style);
        if (i < 0) {
            char text[NF_CTRL_TEXT_MAX];
            snprintf(text, sizeof text, "no style named '%s'", m->style);
            queue_error(s, "unknown_style", text);
        } else if (i != s->style) {
            s->style = i;
            s->reset_next = 1;
        }
    }
    if (m->quality)
        s->quality = m->quality;
    if (m->scale8 && m->scale8 != s->scale8) {
        s->scale8 = m->scale8;
        s->reset_next = 1; /* The model's frame size changes. */
    }
    for (int i = 0; i < m->n_params; i++) {
        const struct nf_ctrl_param *p = &m->params[i];
        int err = nf_temporal_param_set(&s->params, p->name, p->value);
        if (err) {
            char text[NF_CTRL_TEXT_MAX];
            snprintf(text, sizeof text,
                     err == NF_ERANGE ? "correction.%s: %g is out of range"
                                      : "correction.%s: no such parameter",
                     p->name, p->value);
            queue_error(s, "bad_field", text);
        } else {
            s->params_dirty = 1;
        }
    }
}

static int on_control(struct nf_session *s, const char *text, size_t len)
{
    struct nf_ctrl_msg m;
    int err = nf_ctrl_parse(text, len, &m);

    switch (err) {
    case 0:
        break;
    case NF_ECTRL_JSON:
        return close_now(s, err, "control message is not valid JSON");
    case NF_ECTRL_VERSION:
        return close_now(s, err,
                         "hello asks for a protocol version other "
                         "than 1");
    case NF_ECTRL_TYPE:
        queue_error(s, "unknown_type", nf_strerror(err));
        return 0;
    default:
        queue_error(s, "bad_field", nf_strerror(err));
        return 0;
    }
    switch (m.type) {
    case NF_CTRL_HELLO:
    case NF_CTRL_SET:
        apply_settings(s, &m);
        queue_state(s);
        break;
    case NF_CTRL_RESET:
        s->reset_next = 1;
        queue_state(s);
        break;
    default:
        queue_error(s, "unknown_type", "clients may send hello, set, reset");
        break;
    }
    return 0;
}

/*
 * Checks the header as soon as its bytes are in, so a bad or oversized
 * frame is refused before the rest is buffered. Returns 0 or -1 (closed).
 */
static int check_header_early(struct nf_session *s)
{
    const struct nf_config *cfg = &s->srv->cfg;
    struct nf_frame_header h;
    int n = nf_wire_decode_header(s->rx->data, s->rx->len, &h);

    if (n == NF_EWIRE_VERSION) {
        char why[64];
        snprintf(why, sizeof why, "frame version %u (this server speaks %d)",
                 s->rx->data[4], NF_WIRE_VERSION);
        return close_now(s, n, why);
    }
    if (n < 0)
        return close_now(s, n, NULL);
    if (n == 0)
        return 0;
    s->rx_checked = 1;
    if (h.type != NF_MSG_FRAME_IN)
        return close_now(s, NF_EWIRE_TYPE, "clients send FRAME_IN only");
    if ((uint64_t)n + h.payload_len > cfg->max_message_bytes)
        return close_now(s, NF_ETOO_BIG, "frame larger than the limit");
    if (h.width > cfg->max_width || h.height > cfg->max_height)
        return close_now(s, NF_EJPEG_DIMS, "frame size over the limit");
    return 0;
}

static int on_frame(struct nf_session *s)
{
    struct nf_server *srv = s->srv;
    struct nf_jpeg_limits lim = {srv->cfg.max_width, srv->cfg.max_height,
                                 (uint64_t)srv->cfg.max_width *
                                     srv->cfg.max_height};
    struct nf_frame_header h;
    struct nf_job *job;
    int n, err, w = 0, ht = 0;

    n = nf_wire_decode_header(s->rx->data, s->rx->len, &h);
    if (n == 0)
        return close_now(s, NF_EWIRE_HEADER_LEN,
                         "message shorter than its "
                         "header");
    if (n < 0)
        return close_now(s, n, NULL);
    err = nf_wire_check_message(&h, (size_t)n, s->rx->len);
    if (err)
        return close_now(s, err, NULL);
    err =
        nf_jpeg_probe(srv->jpeg, s->rx->data + n, h.payload_len, &lim, &w, &ht);
    if (err)
        return close_now(s, err, nf_jpeg_why(srv->jpeg));
    if (w != h.width || ht != h.height)
        return close_now(s, NF_EWIRE_DIMS,
                         "header size differs from the "
                         "JPEG's");
    srv->metrics.frames_received++;
    srv->metrics.bytes_received += s->rx->len;
    s->frames_in++;
    if (srv->shutting_down) {
        count_drop(s, NF_DROP_CLOSED);
        return 0;
    }
    job = job_get(srv);
    if (!job)
        return close_now(s, NF_ENOMEM, "out of memory");
    if (s->last_width && (s->last_width != w || s->last_height != ht))
        s->reset_next = 1; /* A new resolution starts a cold cache. */
    s->last_width = w;
    s->last_height = ht;
    job->session = s;
    job->client = &s->sc;
    job->style = s->style;
    job->backend = srv->styles[s->style].backend;
    job->reset = s->reset_next || (h.flags & NF_FLAG_RESET);
    job->quality = s->quality;
    job->params = s->params;
    job->params_set = s->params_dirty;
    s->params_dirty = 0;
    job->hdr = h;
    nf_jpeg_scaled_size(w, ht, s->scale8, &job->width, &job->height);
    job->in = s->rx;
    job->payload_off = (uint32_t)n;
    job->t_first_us = s->rx_first_us;
    job->t_recv_us = nf_now_us();
    s->reset_next = 0;
    s->rx = NULL;
    s->refs++;
    nf_sched_submit(srv->sched, job);
    return 0;
}

/*
 * The control-message rate limit: a bucket of max_control_rate messages,
 * refilled at max_control_rate per second. Returns 0 when it is empty.
 */
static int control_allowed(struct nf_session *s)
{
    double rate = s->srv->cfg.max_control_rate;
    uint64_t now = s->last_rx_us;

    s->ctrl_tokens += (double)(now - s->ctrl_refill_us) * 1e-6 * rate;
    if (s->ctrl_tokens > rate)
        s->ctrl_tokens = rate;
    s->ctrl_refill_us = now;
    if (s->ctrl_tokens < 1.0)
        return 0;
    s->ctrl_tokens -= 1.0;
    return 1;
}

static int on_receive(struct nf_session *s, struct lws *wsi, const void *in,
                      size_t len)
{
    struct nf_server *srv = s->srv;
    size_t remaining = lws_remaining_packet_payload(wsi);
    uint64_t limit;

    if (s->state != NF_SESSION_OPEN)
        return 0;
    s->last_rx_us = nf_now_us();
    if (lws_is_first_fragment(wsi)) {
        s->rx_binary = lws_frame_is_binary(wsi);
        s->rx_first_us = s->last_rx_us;
        s->rx_checked = 0;
        if (!s->rx)
            s->rx = nf_bufpool_get(&srv->pool, len + remaining);
        if (!s->rx)
            return close_now(s, NF_ENOMEM, "out of memory");
        s->rx->len = 0;
    }
    limit =
        s->rx_binary ? srv->cfg.max_message_bytes : srv->cfg.max_control_bytes;
    if ((uint64_t)s->rx->len + len + remaining > limit)
        return close_now(s, NF_ETOO_BIG,
                         s->rx_binary ? "frame larger than the limit"
                                      : "control message larger "
                                        "than the limit");
    if (nf_buf_reserve(&srv->pool, s->rx, s->rx->len + len + remaining + 1))
        return close_now(s, NF_ENOMEM, "out of memory");
    memcpy(s->rx->data + s->rx->len, in, len);
    s->rx->len += len;
    if (s->rx_binary && !s->rx_checked && check_header_early(s) < 0)
        return -1;
    if (!lws_is_final_fragment(wsi))
        return 0;
    if (s->rx_binary)
        return on_frame(s);
    if (!control_allowed(s))
        return close_now(s, NF_EPOLICY, "control messages too fast");
    return on_control(s, (const char *)s->rx->data, s->rx->len);
}

/* Fills and writes the reply header in front of the encoded JPEG. */
static int write_frame(struct nf_session *s, struct nf_job *job)
{
    struct nf_server *srv = s->srv;
    struct nf_frame_header h = job->hdr;
    uint8_t *p = job->out->data + LWS_PRE;
    uint64_t now = nf_now_us();
    size_t len = NF_WIRE_FRAME_OUT_LEN + job->out_jpeg_len;

    h.type = NF_MSG_FRAME_OUT;
    h.flags = 0;
    h.width = (uint16_t)job->width;
    h.height = (uint16_t)job->height;
    h.payload_len = job->out_jpeg_len;
    h.recv_us = (uint32_t)(job->t_recv_us - job->t_first_us);
    h.queue_us = (uint32_t)(job->t_start_us - job->t_recv_us);
    h.decode_us = job->decode_us;
    h.predict_us = job->predict_us;
    h.encode_us = job->encode_us;
    h.server_us = (uint32_t)(now - job->t_recv_us);
    h.dropped = s->dropped;
    h.drift = job->drift;
    if (nf_wire_encode_header(&h, p, NF_WIRE_FRAME_OUT_LEN) < 0)
        return -1;
    nf_metrics_observe(&srv->metrics, NF_STAGE_SERVER, h.server_us);
    if (lws_write(s->wsi, p, len, LWS_WRITE_BINARY) < (int)len)
        return -1;
    srv->metrics.frames_sent++;
    srv->metrics.bytes_sent += len;
    nf__mjpeg_on_frame(s, p + NF_WIRE_FRAME_OUT_LEN, job->out_jpeg_len);
    s->frames_out++;
    return 0;
}

/*
 * Starts the close once everything queued before it is written. lws 4.1.6
 * sends the frame prepared by lws_close_reason() only when a callback other
 * than a writeable one returns -1; from here -1 would drop the connection
 * without a close frame (the client sees 1006). So set the reason and
 * return -1 from the timer callback that fires at once.
 */
static int start_close(struct nf_session *s)
{
    lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
                     (unsigned char *)s->close_reason, strlen(s->close_reason));
    s->close_code = 0;
    s->close_sent = 1;
    lws_set_timer_usecs(s->wsi, 1);
    return 0;
}

static int on_writeable(struct nf_session *s)
{
    int rc = 0;

    if (s->close_sent)
        return 0;
    if (s->ctrl_count) {
        int i = s->ctrl_head;
        if (s->state_slot == i)
            s->state_slot = -1; /* Written: a new state takes a new slot. */
        unsigned char *p = (unsigned char *)s->ctrl[i] + LWS_PRE;
        s->ctrl_head = (s->ctrl_head + 1) % NF_CTRL_QUEUE;
        s->ctrl_count--;
        if (lws_write(s->wsi, p, (size_t)s->ctrl_len[i], LWS_WRITE_TEXT) <
            s->ctrl_len[i])
            return -1;
    } else if (s->close_code) {
        return start_close(s);
    } else if (s->out) {
        struct nf_job *job = s->out;
        s->out = NULL;
        rc = write_frame(s, job);
        job_recycle(s->srv, job);
    }
    s->pending_since_us = 0; /* The client reads: restart the clock. */
    if (rc == 0 && !s->close_sent && (s->ctrl_count || s->close_code || s->out))
        lws_callback_on_writable(s->wsi);
    return rc;
}

void nf__session_on_job(struct nf_sched *sched, struct nf_job *job,
                        int superseded, void *arg)
{
    struct nf_server *srv = arg;
    struct nf_session *s = job->session;
    int held = job->held; /* The scheduler keeps the job's reference. */

    if (superseded) {
        /* What the dropped frame was to carry, the next one carries. */
        s->params_dirty |= job->params_set;
        s->reset_next |= job->reset;
        count_drop(s, NF_DROP_SUPERSEDED);
        job_recycle(srv, job);
        session_unref(s);
        return;
    }
    nf_metrics_observe(&srv->metrics, NF_STAGE_RECV,
                       job->t_recv_us - job->t_first_us);
    if (job->t_start_us)
        nf_metrics_observe(&srv->metrics, NF_STAGE_QUEUE,
                           job->t_start_us - job->t_recv_us);
    if (job->status == 0) {
        nf_metrics_observe(&srv->metrics, NF_STAGE_DECODE, job->decode_us);
        nf_metrics_observe(&srv->metrics, NF_STAGE_PREDICT, job->predict_us);
        nf_metrics_observe(&srv->metrics, NF_STAGE_ENCODE, job->encode_us);
    }
    if (s->state != NF_SESSION_OPEN || job->status == NF_ECLOSED) {
        count_drop(s, NF_DROP_CLOSED);
        job_recycle(srv, job);
    } else if (job->status == NF_EJPEG) {
        /* The header looked right but the data is damaged (truncated,
         * corrupt entropy data): the same close as a bad header. */
        count_drop(s, NF_DROP_ERROR);
        job_recycle(srv, job);
        nf__session_close(s, NF_CLOSE_BAD_JPEG,
                          "corrupt or unsupported JPEG: "
                          "decoding failed");
    } else if (job->status != 0) {
        char text[NF_CTRL_TEXT_MAX];
        count_drop(s, NF_DROP_ERROR);
        snprintf(text, sizeof text, "frame %u failed: %s", job->hdr.seq,
                 nf_strerror(job->status));
        queue_error(s, "frame_failed", text);
        job_recycle(srv, job);
    } else {
        if (s->out) {
            count_drop(s, NF_DROP_SLOW_READER);
            job_recycle(srv, s->out);
        }
        s->out = job;
        s->drift = job->drift;
        lws_callback_on_writable(s->wsi);
    }
    if (!held)
        session_unref(s);
}

void nf__session_on_release(struct nf_sched *sched, void *session, void *arg)
{
    (void)sched;
    (void)arg;
    session_unref(session);
}

/*
 * A session whose replies have waited unwritten for stall_timeout_s (the
 * client stopped reading: its TCP window is full) is cut off at once: no
 * close frame could reach it anyway.
 */
static void sweep_stalled(struct nf_session *s, uint64_t now_us, uint64_t limit)
{
    if (!(s->out || s->ctrl_count) || s->state == NF_SESSION_DEAD) {
        s->pending_since_us = 0;
        return;
    }
    if (!s->pending_since_us) {
        s->pending_since_us = now_us;
        return;
    }
    if (now_us - s->pending_since_us <= limit || s->stall_cut)
        return;
    s->stall_cut = 1;
    s->srv->metrics.sessions_ended[NF_SESSION_END_ERROR]++;
    if (s->srv->cfg.verbose)
        lwsl_user("session %s: not reading for %u s: cut off\n", s->id,
                  s->srv->cfg.stall_timeout_s);
    if (s->state == NF_SESSION_OPEN)
        s->state = NF_SESSION_CLOSING;
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void nf__session_sweep_idle(struct nf_server *srv, uint64_t now_us)
{
    uint64_t idle = (uint64_t)srv->cfg.idle_timeout_s * 1000000u;
    uint64_t stall = (uint64_t)srv->cfg.stall_timeout_s * 1000000u;

    for (struct nf_session *s = srv->sessions; s; s = s->next) {
        if (idle && s->state == NF_SESSION_OPEN &&
            now_us - s->last_rx_us > idle)
            nf__session_close(s, NF_CLOSE_IDLE, NULL);
        if (stall && s->wsi)
            sweep_stalled(s, now_us, stall);
    }
}

int nf__session_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len)
{
    struct nf_session_pss *pss = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        /* lws 4.1.6 would switch a plain port to HTTP/2 on "Upgrade:
         * h2c": only WebSocket upgrades are served. */
        if (in && strcmp((const char *)in, "websocket") != 0)
            return lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
                                          "only WebSocket upgrades")
                       ? -1
                       : 1;
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* lws accepts an upgrade on any path: streams live at one. */
        char uri[64];
        struct nf_server *srv = server_of(wsi);
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 ||
            strcmp(uri, NF_STREAM_PATH) != 0)
            return 1;
        /* Cross-site WebSocket hijacking: another site's page may not
         * open streams here. */
        if (!nf__access_origin_ok(srv, wsi)) {
            lwsl_warn("refused a stream from a foreign Origin\n");
            srv->metrics.sessions_ended[NF_SESSION_END_REFUSED]++;
            lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN,
                                   "this page's origin may not open streams "
                                   "here (server option --allow-origin)");
            return 1;
        }
        /* A missing token is told with a close code after the upgrade,
         * which a browser page can read (an HTTP status it cannot). */
        pss->unauthorized = !nf__access_stream_token_ok(srv, wsi);
        nf__access_peer(srv, wsi, pss->peer, sizeof pss->peer);
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        pss->s = NULL;
        return session_open(wsi, pss);
    case LWS_CALLBACK_RECEIVE:
        if (!pss || !pss->s)
            return 0;
        return on_receive(pss->s, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!pss || !pss->s)
            return 0;
        return on_writeable(pss->s);
    case LWS_CALLBACK_TIMER:
        /* Armed by start_close(): -1 makes lws send the close frame. */
        return pss && pss->s && pss->s->close_sent ? -1 : 0;
    case LWS_CALLBACK_CLOSED:
        if (pss)
            session_closed(pss);
        return 0;
    default:
        /* Plain HTTP on this protocol (the static file mount) is served
         * by lws's own handler. */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
