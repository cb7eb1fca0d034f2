/*
 * mjpeg.c - a session's output as an MJPEG stream, for OBS's Media Source,
 * VLC, ffplay and the viewer page.
 *
 * GET /mjpeg?session=ID answers multipart/x-mixed-replace, one JPEG part
 * per tick. Readers built on ffmpeg assume 25 fps for MJPEG and build up
 * delay when parts arrive faster, so the stream is paced by a timer to
 * exactly NF_MJPEG_FPS: each tick sends the session's newest output frame
 * (again, if no newer one came). A reader that cannot keep up loses parts,
 * never gains delay: a viewer holds at most one unsent part. Loop thread
 * only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server-impl.h"

#define NF_MJPEG_BOUNDARY "nfframe"

/* Finds an open session by id, or NULL. */
static struct nf_session *find_session(struct nf_server *srv, const char *id)
{
    for (struct nf_session *s = srv->sessions; s; s = s->next)
        if (s->state == NF_SESSION_OPEN && strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static void viewer_unlink(struct nf_viewer *v)
{
    if (!v->s)
        return;
    if (v->prev)
        v->prev->next = v->next;
    else
        v->s->viewers = v->next;
    if (v->next)
        v->next->prev = v->prev;
    v->s->n_viewers--;
    v->s = NULL;
    v->next = v->prev = NULL;
}

static int start_stream(struct lws *wsi, struct nf_viewer *v)
{
    struct nf_server *srv = lws_context_user(lws_get_context(wsi));
    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start;
    unsigned char *end = hdr + sizeof hdr - 1;
    static const char type[] =
        "multipart/x-mixed-replace; boundary=" NF_MJPEG_BOUNDARY;
    static const char nocache[] = "no-store";
    char id[sizeof v->s->id];
    struct nf_session *s;

    memset(v, 0, sizeof *v);
    if (!nf__access_view_token_ok(srv, wsi))
        return lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN,
                                      "viewer token missing or wrong: "
                                      "add &token=VIEW_TOKEN")
                   ? -1
                   : 0;
    if (nf__query_arg(wsi, "session", id, sizeof id) < 0 ||
        !(s = find_session(srv, id)))
        return lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND,
                                      "no such session")
                   ? -1
                   : 0;
    v->wsi = wsi;
    v->s = s;
    v->next = s->viewers;
    if (s->viewers)
        s->viewers->prev = v;
    s->viewers = v;
    s->n_viewers++;
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, type,
                                    LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)nocache,
                                     (int)sizeof nocache - 1, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    /* A stream has no end: lws would cut it after a few seconds. */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    return 0;
}

/* Writes the viewer's pending part, or ends the stream with its session. */
static int on_writeable(struct nf_server *srv, struct nf_viewer *v)
{
    struct nf_buf *b = v->part;
    size_t n;

    if (!v->s && !b)
        return -1; /* The session ended: so does the stream. */
    if (!b)
        return 0;
    v->part = NULL;
    n = b->len - LWS_PRE;
    if (lws_write(v->wsi, b->data + LWS_PRE, n, LWS_WRITE_HTTP) < (int)n) {
        nf_bufpool_put(&srv->pool, b);
        return -1;
    }
    nf_bufpool_put(&srv->pool, b);
    v->parts_sent++;
    if (!v->s)
        lws_callback_on_writable(v->wsi);
    return 0;
}

int nf__mjpeg_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len)
{
    struct nf_viewer *v = user;
    struct nf_server *srv = lws_context_user(lws_get_context(wsi));

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return start_stream(wsi, v);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return v->wsi ? on_writeable(srv, v) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (v && v->wsi) {
            viewer_unlink(v);
            nf_bufpool_put(&srv->pool, v->part);
            v->part = NULL;
            v->wsi = NULL;
        }
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* Builds one multipart part from the session's newest JPEG. */
static struct nf_buf *make_part(struct nf_server *srv,
                                const struct nf_session *s)
{
    char head[128];
    int n = snprintf(head, sizeof head,
                     "--" NF_MJPEG_BOUNDARY "\r\nContent-Type: image/jpeg\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     s->last_jpeg->len);
    size_t total = LWS_PRE + (size_t)n + s->last_jpeg->len + 2;
    struct nf_buf *b = nf_bufpool_get(&srv->pool, total);

    if (!b)
        return NULL;
    memcpy(b->data + LWS_PRE, head, (size_t)n);
    memcpy(b->data + LWS_PRE + n, s->last_jpeg->data, s->last_jpeg->len);
    memcpy(b->data + total - 2, "\r\n", 2);
    b->len = total;
    return b;
}

void nf__mjpeg_tick(struct nf_server *srv)
{
    for (struct nf_session *s = srv->sessions; s; s = s->next) {
        if (!s->viewers || !s->last_jpeg)
            continue;
        for (struct nf_viewer *v = s->viewers; v; v = v->next) {
            struct nf_buf *b = make_part(srv, s);
            if (!b)
                continue;
            /* Newest wins: an unsent part is replaced, never queued. */
            nf_bufpool_put(&srv->pool, v->part);
            v->part = b;
            lws_callback_on_writable(v->wsi);
        }
    }
}

void nf__mjpeg_on_frame(struct nf_session *s, const uint8_t *jpeg, size_t len)
{
    struct nf_server *srv = s->srv;

    if (!s->viewers)
        return;
    if (!s->last_jpeg)
        s->last_jpeg = nf_bufpool_get(&srv->pool, len);
    if (!s->last_jpeg || nf_buf_reserve(&srv->pool, s->last_jpeg, len))
        return;
    memcpy(s->last_jpeg->data, jpeg, len);
    s->last_jpeg->len = len;
}

void nf__mjpeg_session_closed(struct nf_session *s)
{
    while (s->viewers) {
        struct nf_viewer *v = s->viewers;
        viewer_unlink(v);
        lws_callback_on_writable(v->wsi);
    }
    nf_bufpool_put(&s->srv->pool, s->last_jpeg);
    s->last_jpeg = NULL;
}
