/*
 * ws-client.c - one WebSocket client connection on libwebsockets 4.1.6.
 *
 * lws runs its own poll() loop here. The lws context carries a pointer to
 * struct nf_ws_client as its user data, so every callback finds its state
 * without lws allocating per-connection data. See ws-client.h.
 */
#include "ws-client.h"

#include <libwebsockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "error.h"
#include "wire.h"

_Static_assert(NF_WS_PRE >= LWS_PRE, "NF_WS_PRE must cover LWS_PRE");

#define DEFAULT_MAX_MESSAGE (64u << 20)
#define RX_BUFFER_SIZE      65536

/* All fields are touched only by the thread running the service loop. */
struct nf_ws_client {
    struct lws_context *ctx; /* Owned. */
    struct lws *wsi;         /* Owned by lws; NULL once closed. */
    struct lws_protocols protocols[2];
    const struct nf_ws_client_ops *ops; /* Borrowed. */
    void *user;                         /* Borrowed. */
    lws_sorted_usec_list_t sul;         /* The one user timer. */
    char host[256];
    char host_header[272]; /* host, plus :port unless it is 80. */
    char path[1024];
    char subprotocol[256]; /* May list a token too (access.h). */
    char origin[256];      /* Origin header, sent as is; "" sends none. */
    int port;
    int has_subprotocol;
    int connected;  /* TCP connected; the upgrade request went out. */
    int opened;     /* Handshake completed. */
    int destroying; /* In nf_ws_client_free(): no more callbacks. */
    /* Close handshake. */
    int close_pending; /* nf_ws_client_close() asked; not sent yet. */
    int close_sent;    /* Our close frame went out. */
    int local_code;    /* What we send, or sent. */
    char local_reason[124];
    int peer_closed; /* The peer's close frame arrived. */
    int peer_code;
    char peer_reason[124];
    struct nf_ws_end end;
    /* Message reassembly. */
    uint8_t *rx; /* Owned; grown to fit, never past max_message. */
    size_t rx_len;
    size_t rx_cap;
    size_t max_message;
    int rx_active; /* Inside a message. */
    int rx_binary;
    int in_writable; /* Inside on_writable: writing is allowed. */
    int wrote;       /* on_writable already wrote once. */
};

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/*
 * Splits "ws://host[:port][/path]" into c->host, c->port and c->path.
 * IPv6 hosts go in brackets ("ws://[::1]:8080/v1/stream").
 */
static int parse_url(struct nf_ws_client *c, const char *url, char *err,
                     size_t errlen)
{
    const char *p, *host_end, *port_start = NULL;
    size_t hlen;

    if (strncmp(url, "ws://", 5) != 0) {
        set_err(err, errlen,
                strncmp(url, "wss://", 6) == 0
                    ? "wss:// is not supported; use ws://"
                    : "URL must start with ws://");
        return NF_EINVAL;
    }
    p = url + 5;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (host_end == NULL)
            goto bad;
        p++;
        if (host_end[1] == ':')
            port_start = host_end + 2;
        else if (host_end[1] != '/' && host_end[1] != '\0')
            goto bad;
    } else {
        host_end = p + strcspn(p, ":/");
        if (*host_end == ':')
            port_start = host_end + 1;
    }
    hlen = (size_t)(host_end - p);
    if (hlen == 0 || hlen >= sizeof(c->host))
        goto bad;
    memcpy(c->host, p, hlen);
    c->host[hlen] = '\0';
    c->port = 80;
    if (port_start != NULL) {
        char *end;
        long port = strtol(port_start, &end, 10);

        if (end == port_start || port < 1 || port > 65535 ||
            (*end != '/' && *end != '\0'))
            goto bad;
        c->port = (int)port;
    }
    p = strchr(host_end, '/');
    if (p == NULL)
        p = "/";
    if (strlen(p) >= sizeof(c->path))
        goto bad;
    strcpy(c->path, p);
    return 0;

bad:
    set_err(err, errlen, "bad URL; expected ws://host:port/path");
    return NF_EINVAL;
}

/* Records how the connection ended and tells the user, once. */
static void finish(struct nf_ws_client *c, int how, int code,
                   const char *reason)
{
    if (c->end.how != NF_WS_OPEN)
        return;
    c->end.how = how;
    c->end.code = code;
    snprintf(c->end.reason, sizeof(c->end.reason), "%s",
             reason != NULL ? reason : "");
    c->wsi = NULL;
    if (!c->destroying && c->ops->on_end != NULL)
        c->ops->on_end(c, c->user, &c->end);
}

/*
 * lws 4.1's client rewrites the codes 1012-1015 of a server's close frame
 * to 1002 before we see them (later lws versions do not). A nextframe
 * server never sends 1002 and starts each reason with the table's text for
 * its code (NF_CLOSE_MAP), so the reason tells which code it was.
 */
static void repair_code(struct nf_ws_client *c)
{
    if (c->peer_code != 1002)
        return;
    for (int code = 1012; code <= 1015; code++) {
        const char *r = nf_wire_close_reason(code);

        if (r[0] != '\0' && strncmp(c->peer_reason, r, strlen(r)) == 0) {
            c->peer_code = code;
            return;
        }
    }
}

/* Decodes a close frame payload: 2-byte big-endian code, then UTF-8. */
static void on_peer_close(struct nf_ws_client *c, const uint8_t *in, size_t len)
{
    size_t rlen;

    c->peer_closed = 1;
    c->peer_code = 1005; /* "No status received", as RFC 6455 names it. */
    c->peer_reason[0] = '\0';
    if (in == NULL || len < 2)
        return;
    c->peer_code = (in[0] << 8) | in[1];
    rlen = len - 2;
    if (rlen >= sizeof(c->peer_reason))
        rlen = sizeof(c->peer_reason) - 1;
    memcpy(c->peer_reason, in + 2, rlen);
    c->peer_reason[rlen] = '\0';
    repair_code(c);
}

/*
 * After a failed write: looks for the peer's close frame among the bytes
 * still unread in the socket (a peer that refuses a message may close the
 * socket right after its close frame, and lws drops the connection on the
 * failed write without reading). Peeks only; frames from a server are not
 * masked. Best effort: it stops at anything it cannot parse.
 */
static void salvage_close(struct nf_ws_client *c, struct lws *wsi)
{
    uint8_t buf[4096];
    ssize_t n =
        recv(lws_get_socket_fd(wsi), buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    size_t i = 0;

    while (n > 0 && i + 2 <= (size_t)n) {
        size_t hl = 2, len = buf[i + 1] & 0x7f;

        if (buf[i + 1] & 0x80)
            return; /* Masked: not a server frame; out of step. */
        if (len == 126) {
            if (i + 4 > (size_t)n)
                return;
            len = ((size_t)buf[i + 2] << 8) | buf[i + 3];
            hl = 4;
        } else if (len == 127) {
            return; /* Far too big to hold a close frame we could see. */
        }
        if ((buf[i] & 0x0f) == 0x8) {
            if (i + hl + len <= (size_t)n)
                on_peer_close(c, buf + i + hl, len);
            return;
        }
        i += hl + len;
    }
}

/* Appends one received chunk; delivers the message when it is complete. */
static int on_rx(struct nf_ws_client *c, struct lws *wsi, const uint8_t *in,
                 size_t len)
{
    if (!c->rx_active) {
        c->rx_active = 1;
        c->rx_len = 0;
        c->rx_binary = lws_frame_is_binary(wsi);
    }
    if (len > c->max_message - c->rx_len) {
        nf_ws_client_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                           "message too big");
        c->rx_active = 0;
        return 0;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : RX_BUFFER_SIZE;
        uint8_t *p;

        while (cap < c->rx_len + len)
            cap *= 2;
        if (cap > c->max_message)
            cap = c->max_message;
        p = realloc(c->rx, cap);
        if (p == NULL)
            return -1;
        c->rx = p;
        c->rx_cap = cap;
    }
    if (len > 0)
        memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        c->rx_active = 0;
        if (c->ops->on_message != NULL)
            c->ops->on_message(c, c->user, c->rx, c->rx_len, c->rx_binary);
    }
    return 0;
}

/* True when the socket holds unread input (or a hang-up). */
static int input_pending(struct lws *wsi)
{
    struct pollfd pfd = {.fd = lws_get_socket_fd(wsi), .events = POLLIN};

    return pfd.fd >= 0 && poll(&pfd, 1, 0) > 0;
}

static int on_writeable(struct nf_ws_client *c, struct lws *wsi)
{
    if (c->close_pending) {
        c->close_pending = 0;
        c->close_sent = 1;
        lws_close_reason(wsi, (enum lws_close_status)c->local_code,
                         (unsigned char *)c->local_reason,
                         strlen(c->local_reason));
        return -1; /* lws sends the close frame and closes. */
    }
    if (c->ops->on_writable == NULL)
        return 0;
    /*
     * Read before writing more. A server that refuses a message sends its
     * close frame and drops the socket at once; our next write then fails
     * with EPIPE and lws closes without reading the close frame that is
     * already waiting in the socket. lws handles POLLIN right after this
     * callback, so deferring one round is enough.
     */
    if (input_pending(wsi)) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    c->in_writable = 1;
    c->wrote = 0;
    c->ops->on_writable(c, c->user);
    c->in_writable = 0;
    return 0;
}

static void on_closed(struct nf_ws_client *c)
{
    if (c->peer_closed)
        finish(c, NF_WS_PEER_CLOSED, c->peer_code, c->peer_reason);
    else if (c->close_sent)
        finish(c, NF_WS_LOCAL_CLOSED, c->local_code, c->local_reason);
    else
        finish(c, NF_WS_DROPPED, 1006, "connection lost without a close frame");
}

/* The lws protocol callback: a flat dispatcher. */
static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *wsi_user, void *in, size_t len)
{
    struct nf_ws_client *c = lws_context_user(lws_get_context(wsi));

    (void)wsi_user;
    if (c == NULL || c->destroying)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        c->connected = 1;
        /* Not lws's ci.origin, which writes "http://" in front. */
        if (c->origin[0] && in != NULL &&
            lws_add_http_header_by_token(
                wsi, WSI_TOKEN_ORIGIN, (const unsigned char *)c->origin,
                (int)strlen(c->origin), (unsigned char **)in,
                (unsigned char *)in + len))
            return -1;
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        finish(c, c->connected ? NF_WS_REFUSED : NF_WS_CONNECT_FAILED, 1006,
               in != NULL ? (const char *)in : "connection failed");
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->opened = 1;
        if (c->ops->on_open != NULL)
            c->ops->on_open(c, c->user);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_rx(c, wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(c, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        on_peer_close(c, in, len);
        break; /* Returning 0 lets lws echo the close frame. */
    case LWS_CALLBACK_CLIENT_CLOSED:
        on_closed(c);
        break;
    default:
        break;
    }
    return 0;
}

static int create_context(struct nf_ws_client *c)
{
    struct lws_context_creation_info info;

    memset(&info, 0, sizeof(info));
    /*
     * Our one local protocol takes the name we offer, so that whatever the
     * server picks from our offer binds to it.
     */
    c->protocols[0].name = c->has_subprotocol ? c->subprotocol : "nf-client";
    c->protocols[0].callback = callback;
    c->protocols[0].rx_buffer_size = RX_BUFFER_SIZE;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = c->protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = c;
    c->ctx = lws_create_context(&info);
    return c->ctx != NULL ? 0 : NF_EIO;
}

static void connect_now(struct nf_ws_client *c)
{
    struct lws_client_connect_info ci;

    memset(&ci, 0, sizeof(ci));
    ci.context = c->ctx;
    ci.address = c->host;
    ci.port = c->port;
    ci.path = c->path;
    /* Host carries the port as browsers send it (RFC 7230 5.4): the
     * server compares it with Origin. */
    if (c->port == 80)
        snprintf(c->host_header, sizeof c->host_header, "%s", c->host);
    else
        snprintf(c->host_header, sizeof c->host_header, "%s:%d", c->host,
                 c->port);
    ci.host = c->host_header;
    ci.protocol = c->has_subprotocol ? c->subprotocol : NULL;
    ci.local_protocol_name = c->protocols[0].name;
    ci.pwsi = &c->wsi;
    if (lws_client_connect_via_info(&ci) == NULL)
        finish(c, NF_WS_CONNECT_FAILED, 1006, "connect failed");
}

int nf_ws_client_init(struct nf_ws_client **out,
                      const struct nf_ws_client_config *cfg,
                      const struct nf_ws_client_ops *ops, void *user, char *err,
                      size_t errlen)
{
    struct nf_ws_client *c;
    int rc;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NF_ENOMEM;
    c->ops = ops;
    c->user = user;
    c->max_message = cfg->max_message ? cfg->max_message : DEFAULT_MAX_MESSAGE;
    rc = parse_url(c, cfg->url, err, errlen);
    if (rc < 0)
        goto fail;
    if (cfg->subprotocol != NULL) {
        if (strlen(cfg->subprotocol) >= sizeof(c->subprotocol)) {
            set_err(err, errlen, "subprotocol name too long");
            rc = NF_EINVAL;
            goto fail;
        }
        strcpy(c->subprotocol, cfg->subprotocol);
        c->has_subprotocol = 1;
    }
    if (cfg->origin != NULL) {
        if (strlen(cfg->origin) >= sizeof(c->origin)) {
            set_err(err, errlen, "origin too long");
            rc = NF_EINVAL;
            goto fail;
        }
        strcpy(c->origin, cfg->origin);
    }
    lws_set_log_level(cfg->verbose ? LLL_ERR | LLL_WARN : 0, NULL);
    rc = create_context(c);
    if (rc < 0) {
        set_err(err, errlen, "cannot create the libwebsockets context");
        goto fail;
    }
    *out = c;
    connect_now(c);
    return 0;

fail:
    nf_ws_client_free(c);
    return rc;
}

void nf_ws_client_free(struct nf_ws_client *c)
{
    if (c == NULL)
        return;
    c->destroying = 1;
    if (c->ctx != NULL) {
        lws_sul_cancel(&c->sul);
        lws_context_destroy(c->ctx);
    }
    free(c->rx);
    free(c);
}

int nf_ws_client_service(struct nf_ws_client *c)
{
    return lws_service(c->ctx, 0) < 0 ? NF_EIO : 0;
}

const struct nf_ws_end *nf_ws_client_end(const struct nf_ws_client *c)
{
    return &c->end;
}

void nf_ws_client_want_write(struct nf_ws_client *c)
{
    if (c->wsi != NULL && c->opened)
        lws_callback_on_writable(c->wsi);
}

int nf_ws_client_write(struct nf_ws_client *c, uint8_t *data, size_t len,
                       int kind)
{
    enum lws_write_protocol wp;
    int n;

    if (!c->in_writable || c->wrote || c->wsi == NULL || len > 0x7fffffff)
        return NF_EINVAL;
    switch (kind & 0xff) {
    case NF_WS_TEXT:
        wp = LWS_WRITE_TEXT;
        break;
    case NF_WS_BINARY:
        wp = LWS_WRITE_BINARY;
        break;
    case NF_WS_CONTINUATION:
        wp = LWS_WRITE_CONTINUATION;
        break;
    default:
        return NF_EINVAL;
    }
    if (kind & NF_WS_NO_FIN)
        wp = (enum lws_write_protocol)(wp | LWS_WRITE_NO_FIN);
    c->wrote = 1;
    n = lws_write(c->wsi, data, len, wp);
    if (n < (int)len) {
        salvage_close(c, c->wsi);
        return NF_EIO;
    }
    return 0;
}

void nf_ws_client_close(struct nf_ws_client *c, int code, const char *reason)
{
    if (c->end.how != NF_WS_OPEN || c->close_pending || c->close_sent)
        return;
    c->local_code = code;
    snprintf(c->local_reason, sizeof(c->local_reason), "%s",
             reason != NULL ? reason : "");
    if (!c->opened || c->wsi == NULL) {
        /* Still connecting: abandon; nf_ws_client_free() reaps the wsi. */
        finish(c, NF_WS_LOCAL_CLOSED, code, c->local_reason);
        return;
    }
    c->close_pending = 1;
    lws_callback_on_writable(c->wsi);
}

static void on_sul(lws_sorted_usec_list_t *sul)
{
    struct nf_ws_client *c = lws_container_of(sul, struct nf_ws_client, sul);

    if (!c->destroying && c->ops->on_timer != NULL)
        c->ops->on_timer(c, c->user);
}

void nf_ws_client_set_timer(struct nf_ws_client *c, uint64_t us)
{
    if (us == 0)
        lws_sul_cancel(&c->sul);
    else
        lws_sul_schedule(c->ctx, 0, &c->sul, on_sul, (lws_usec_t)us);
}
