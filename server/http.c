/*
 * http.c - the small HTTP routes: /livez, /readyz and /metrics.
 *
 * Static files are served by an lws file mount (server.c); these three
 * routes are callback mounts bound to the "nf-http" protocol. Each answer
 * is rendered into a per-request buffer and written in one piece. Loop
 * thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "server-impl.h"

#define NF_METRICS_MAX (64 * 1024)

int nf__server_ready(const struct nf_server *srv)
{
    return !srv->shutting_down && srv->n_sessions < srv->cfg.max_sessions;
}

/*
 * Appends the per-session drift gauge to the metrics text of len bytes in
 * p (cap bytes). Returns the new length or NF_ERANGE.
 */
static int render_session_drift(const struct nf_server *srv, char *p,
                                size_t len, size_t cap)
{
    int n = snprintf(p + len, cap - len,
                     "# HELP nf_session_drift Drift of each session's newest "
                     "reply (levels, docs/TEMPORAL.md).\n"
                     "# TYPE nf_session_drift gauge\n");
    for (const struct nf_session *s = srv->sessions; s; s = s->next) {
        if (n < 0 || (size_t)n >= cap - len)
            return NF_ERANGE;
        len += (size_t)n;
        n = snprintf(p + len, cap - len,
                     "nf_session_drift{session=\"%s\"} %g\n", s->id,
                     (double)s->drift);
    }
    if (n < 0 || (size_t)n >= cap - len)
        return NF_ERANGE;
    return (int)(len + (size_t)n);
}

/*
 * Appends the scheduler's counters to the metrics text of len bytes in p
 * (cap bytes). Returns the new length or NF_ERANGE.
 */
static int render_sched(const struct nf_server *srv, char *p, size_t len,
                        size_t cap)
{
    struct nf_sched_stats st;
    nf_sched_get_stats(srv->sched, &st);
    int n = snprintf(p + len, cap - len,
                     "# HELP nf_anchors_skipped_total Anchor passes not run "
                     "because the session's next frame already waited "
                     "(anchor_skip, docs/TEMPORAL.md).\n"
                     "# TYPE nf_anchors_skipped_total counter\n"
                     "nf_anchors_skipped_total %llu\n",
                     (unsigned long long)st.anchors_skipped);
    if (n < 0 || (size_t)n >= cap - len)
        return NF_ERANGE;
    return (int)(len + (size_t)n);
}

/* Renders the answer for uri into pss; returns the HTTP status. */
static int render(struct nf_server *srv, struct lws *wsi, const char *uri,
                  struct nf_http_pss *pss)
{
    char *buf = malloc(LWS_PRE + NF_METRICS_MAX);
    char *p;
    int n, status = 200;

    if (!buf)
        return 500;
    p = buf + LWS_PRE;
    if (strcmp(uri, "/livez") == 0) {
        n = snprintf(p, NF_METRICS_MAX, "ok\n");
    } else if (strcmp(uri, "/readyz") == 0) {
        int ready = nf__server_ready(srv);
        status = ready ? 200 : 503;
        n = snprintf(p, NF_METRICS_MAX, "%s\nsessions %d/%d\nbackend %s\n",
                     ready ? "ready"
                           : (srv->shutting_down ? "shutting down" : "full"),
                     srv->n_sessions, srv->cfg.max_sessions, srv->backend_name);
    } else if (strcmp(uri, "/metrics") == 0 && srv->metrics_vhost &&
               lws_get_vhost(wsi) != srv->metrics_vhost) {
        /* --metrics-port: served on the loopback listener only. */
        status = 404;
        n = snprintf(p, NF_METRICS_MAX, "not found\n");
    } else if (strcmp(uri, "/metrics") == 0) {
        n = nf_metrics_render(&srv->metrics, nf__server_ready(srv), p,
                              NF_METRICS_MAX);
        if (n >= 0)
            n = render_session_drift(srv, p, (size_t)n, NF_METRICS_MAX);
        if (n >= 0)
            n = render_sched(srv, p, (size_t)n, NF_METRICS_MAX);
        if (n < 0) {
            status = 500;
            n = snprintf(p, NF_METRICS_MAX, "metrics too large\n");
        }
    } else {
        status = 404;
        n = snprintf(p, NF_METRICS_MAX, "not found\n");
    }
    pss->body = buf;
    pss->len = (size_t)n;
    return status;
}

static int send_headers(struct lws *wsi, int status, struct nf_http_pss *pss,
                        const char *type)
{
    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start;
    unsigned char *end = hdr + sizeof hdr - 1;
    static const char nocache[] = "no-store";

    if (lws_add_http_common_headers(wsi, (unsigned int)status, type, pss->len,
                                    &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)nocache,
                                     (int)sizeof nocache - 1, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

int nf__http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                      void *user, void *in, size_t len)
{
    struct nf_http_pss *pss = user;
    struct nf_server *srv = lws_context_user(lws_get_context(wsi));
    char uri[64];
    int status;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0)
            uri[0] = '\0';
        if (strcmp(uri, "/view") == 0) {
            /* The viewer page: a file, at a path without an extension. */
            char path[sizeof srv->web_root + 16];
            if (!nf__access_view_token_ok(srv, wsi))
                return lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN,
                                              "viewer token missing or "
                                              "wrong: add &token=VIEW_TOKEN")
                           ? -1
                           : 0;
            snprintf(path, sizeof path, "%s/view.html", srv->web_root);
            if (lws_serve_http_file(wsi, path, "text/html", NULL, 0) < 0)
                return -1;
            return 0;
        }
        free(pss->body);
        pss->body = NULL;
        status = render(srv, wsi, uri, pss);
        if (!pss->body)
            return lws_return_http_status(wsi, 500, NULL) ? -1 : 0;
        return send_headers(wsi, status, pss,
                            strcmp(uri, "/metrics") == 0
                                ? "text/plain; version=0.0.4"
                                : "text/plain");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!pss->body)
            break;
        if (lws_write(wsi, (unsigned char *)pss->body + LWS_PRE, pss->len,
                      LWS_WRITE_HTTP_FINAL) != (int)pss->len)
            return -1;
        free(pss->body);
        pss->body = NULL;
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss) {
            free(pss->body);
            pss->body = NULL;
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
