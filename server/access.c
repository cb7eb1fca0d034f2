/*
 * access.c - the Origin allowlist, the stream and viewer tokens and the
 * per-address session count (access.h). Loop thread only, except
 * nf__access_read_token() (start-up).
 *
 * Tokens are compared in constant time and never logged: a refused client
 * is told what was missing, the log line says only which check failed.
 */
#include "access.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "server-impl.h"
#include "token.h"

/* Equal strings, in time that depends only on the lengths. */
static int same_secret(const char *a, size_t na, const char *b, size_t nb)
{
    unsigned char diff = (unsigned char)(na != nb);
    for (size_t i = 0; i < na && i < nb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

int nf__access_origin_ok(const struct nf_server *srv, struct lws *wsi)
{
    char origin[256], host[256], self[300];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);

    if (n <= 0)
        return 1; /* Not a browser: Origin protects browsers only. */
    if (n >= (int)sizeof origin ||
        lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0)
        return 0;
    if (srv->cfg.n_origins > 0) {
        for (int i = 0; i < srv->cfg.n_origins; i++)
            if (strcmp(srv->cfg.origins[i], "*") == 0 ||
                strcmp(srv->cfg.origins[i], origin) == 0)
                return 1;
        return 0;
    }
    /* No allowlist: only pages this server (or a proxy in front of it,
     * which keeps Host) served may open streams. */
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0)
        return 0;
    snprintf(self, sizeof self, "http://%s", host);
    if (strcmp(origin, self) == 0)
        return 1;
    snprintf(self, sizeof self, "https://%s", host);
    return strcmp(origin, self) == 0;
}

int nf__access_stream_token_ok(const struct nf_server *srv, struct lws *wsi)
{
    static const char prefix[] = NF_TOKEN_SUBPROTOCOL_PREFIX;
    char list[1024];
    size_t want = strlen(srv->token);

    if (!srv->token[0])
        return 1;
    if (lws_hdr_copy(wsi, list, sizeof list, WSI_TOKEN_PROTOCOL) <= 0)
        return 0;
    /* A comma-separated list; entries may have spaces around them. */
    for (char *p = list; *p;) {
        size_t len;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        len = strcspn(p, ", \t");
        if (len > sizeof prefix - 1 &&
            strncmp(p, prefix, sizeof prefix - 1) == 0 &&
            same_secret(p + sizeof prefix - 1, len - (sizeof prefix - 1),
                        srv->token, want))
            return 1;
        p += len;
    }
    return 0;
}

int nf__access_view_token_ok(const struct nf_server *srv, struct lws *wsi)
{
    char got[NF_TOKEN_MAX + 1];

    if (!srv->view_token[0])
        return 1;
    if (nf__query_arg(wsi, "token", got, sizeof got) < 0)
        return 0;
    return same_secret(got, strlen(got), srv->view_token,
                       strlen(srv->view_token));
}

int nf__query_arg(struct lws *wsi, const char *name, char *buf, int len)
{
    char frag[256];
    size_t n = strlen(name);

    for (int i = 0;; i++) {
        if (lws_hdr_copy_fragment(wsi, frag, sizeof frag,
                                  WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
            return -1;
        if (strncmp(frag, name, n) == 0 && frag[n] == '=') {
            if (strlen(frag + n + 1) >= (size_t)len)
                return -1;
            memcpy(buf, frag + n + 1, strlen(frag + n + 1) + 1);
            return 0;
        }
    }
}

void nf__access_peer(const struct nf_server *srv, struct lws *wsi, char *buf,
                     size_t len)
{
    char xff[256];
    int trusted = 0;

    if (!lws_get_peer_simple(wsi, buf, len)) {
        snprintf(buf, len, "?");
        return;
    }
    /* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d. */
    if (strncmp(buf, "::ffff:", 7) == 0 && strchr(buf + 7, '.'))
        memmove(buf, buf + 7, strlen(buf + 7) + 1);
    for (int i = 0; i < srv->cfg.n_proxies; i++)
        trusted |= strcmp(srv->cfg.proxies[i], buf) == 0;
    /* A trusted proxy appends the address it saw: the last entry. */
    if (trusted &&
        lws_hdr_copy(wsi, xff, sizeof xff, WSI_TOKEN_X_FORWARDED_FOR) > 0) {
        char *last = strrchr(xff, ',');
        last = last ? last + 1 : xff;
        while (*last == ' ')
            last++;
        last[strcspn(last, " ")] = '\0';
        if (*last)
            snprintf(buf, len, "%s", last);
    }
}

int nf__access_sessions_from(const struct nf_server *srv, const char *peer)
{
    int n = 0;
    for (const struct nf_session *s = srv->sessions; s; s = s->next)
        if (s->state != NF_SESSION_DEAD && strcmp(s->peer, peer) == 0)
            n++;
    return n;
}
